"""KrakenFuturesAdapter / KrakenFuturesInverseAdapter: hand-written frames in the
documented format (kraken-futures.md), subscriptions, instruments and the book
rule through BookSync."""

from __future__ import annotations

import json
import math

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Funding,
    Integrity,
    Liquidation,
    MalformedMessage,
    OpenInterest,
    Quote,
    Side,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    funding,
    l3,
    liquidations,
    open_interest,
    quotes,
    trades,
)
from wsmux.book import BookSync, Continuity, SnapshotSource, Verdict
from wsmux.errors import UnknownMessage
from wsmux.exchanges import get
from wsmux.exchanges.kraken_futures import (
    KrakenFuturesAdapter,
    KrakenFuturesInverseAdapter,
    kraken_futures_symbol,
    kraken_futures_unified,
)
from wsmux.model import Instrument
from wsmux.testing import parse_events

MS = 1_000_000
RECV = 987_654_321
LIN = "kraken-futures"
INV = "kraken-futures-inverse"


def frame(**fields: object) -> str:
    return json.dumps(fields)


def snapshot_frame(product: str = "PF_XBTUSD", seq: int = 100) -> str:
    return frame(
        feed="book_snapshot",
        product_id=product,
        timestamp=1626994925378,
        seq=seq,
        tickSize=None,
        bids=[{"price": 30000.0, "qty": 1.5}, {"price": 30000.5, "qty": 2.0}],  # out of order on purpose
        asks=[{"price": 30001.0, "qty": 0.25}],
    )


def delta(seq: int, side: str = "buy", price: object = 29999.5, qty: object = 3.0, product: str = "PF_XBTUSD") -> str:
    return frame(feed="book", product_id=product, side=side, seq=seq, price=price, qty=qty, timestamp=1626994927744)


# --- registry, symbols --------------------------------------------------------------------


def test_registry() -> None:
    assert get(LIN) is KrakenFuturesAdapter
    assert get(INV) is KrakenFuturesInverseAdapter


@pytest.mark.parametrize(
    ("symbol", "linear", "native"),
    [
        ("BTC-USD-PERP", True, "PF_XBTUSD"),
        ("ETH-USD-PERP", True, "PF_ETHUSD"),
        ("BTC-USD-20260327", True, "FF_XBTUSD_260327"),
        ("BTC-USD-PERP", False, "PI_XBTUSD"),
        ("BCH-USD-20210730", False, "FI_BCHUSD_210730"),
    ],
)
def test_symbols_round_trip(symbol: str, linear: bool, native: str) -> None:
    assert kraken_futures_symbol(symbol, linear) == native
    assert kraken_futures_unified(native) == (symbol, linear)
    assert kraken_futures_unified(native.lower()) == (symbol, linear)  # the venue is case-insensitive


@pytest.mark.parametrize(
    "native", ["IN_XBTUSD", "RR_XBTUSD", "PF_XBTUSD_260327", "FF_XBTUSD", "FI_XBTUSD_2603", "PF_X"]
)
def test_products_without_a_unified_symbol(native: str) -> None:
    assert kraken_futures_unified(native) is None


def test_spot_and_dated_funding_are_refused() -> None:
    a = KrakenFuturesAdapter()
    with pytest.raises(UnknownSymbol):
        a.to_native("BTC-USD")
    with pytest.raises(UnknownSymbol):
        a.check(funding(LIN, "BTC-USD-20260327")[0])
    a.check(funding(LIN, "BTC-USD-PERP")[0])
    with pytest.raises(UnknownChannel):
        a.check(l3(LIN, "BTC-USD-PERP")[0])


# --- subscriptions --------------------------------------------------------------------------


def test_subscribe_groups_by_feed_and_adds_the_heartbeat_once() -> None:
    a = KrakenFuturesAdapter()
    out = [
        json.loads(m) for m in a.subscribe([*book(LIN, "BTC-USD-PERP", "ETH-USD-PERP"), *quotes(LIN, "BTC-USD-PERP")])
    ]
    assert out == [
        {"event": "subscribe", "feed": "heartbeat"},
        {"event": "subscribe", "feed": "book", "product_ids": ["PF_XBTUSD", "PF_ETHUSD"]},
        {"event": "subscribe", "feed": "ticker_lite", "product_ids": ["PF_XBTUSD"]},
    ]
    again = [json.loads(m) for m in a.subscribe(list(trades(LIN, "BTC-USD-PERP")))]
    assert again == [{"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]}]
    a.reset()  # a new connection subscribes the heartbeat again
    assert json.loads(a.subscribe(list(trades(LIN, "BTC-USD-PERP")))[0])["feed"] == "heartbeat"


def test_shared_feeds_are_subscribed_once_and_dropped_with_the_last_channel() -> None:
    a = KrakenFuturesAdapter()
    a.subscribe(list(trades(LIN, "BTC-USD-PERP")))
    assert a.subscribe(list(liquidations(LIN, "BTC-USD-PERP"))) == []  # the trade feed is already on
    assert a.unsubscribe(list(trades(LIN, "BTC-USD-PERP"))) == []  # liquidations still need it
    (last,) = a.unsubscribe(list(liquidations(LIN, "BTC-USD-PERP")))
    assert json.loads(last) == {"event": "unsubscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]}
    (ticker,) = a.subscribe([*funding(LIN, "BTC-USD-PERP"), *open_interest(LIN, "BTC-USD-PERP")])
    assert json.loads(ticker) == {"event": "subscribe", "feed": "ticker", "product_ids": ["PF_XBTUSD"]}
    assert a.unsubscribe(list(trades(LIN, "BTC-USD-PERP"))) == []  # never subscribed: nothing to send


def test_resync_unsubscribes_and_subscribes_the_book() -> None:
    a = KrakenFuturesInverseAdapter()
    sub = book(INV, "BTC-USD-PERP")[0]
    a.subscribe([sub])
    msgs = [json.loads(m) for m in a.resync_messages(sub)]
    assert msgs == [
        {"event": "unsubscribe", "feed": "book", "product_ids": ["PI_XBTUSD"]},
        {"event": "subscribe", "feed": "book", "product_ids": ["PI_XBTUSD"]},
    ]


def test_subscribe_splits_at_the_topic_limit() -> None:
    a = KrakenFuturesAdapter()
    symbols = [f"A{i}-USD-PERP" for i in range(KrakenFuturesAdapter.limits.topics_per_message + 3)]
    out = [json.loads(m) for m in a.subscribe(list(book(LIN, *symbols)))][1:]
    assert [len(m["product_ids"]) for m in out] == [KrakenFuturesAdapter.limits.topics_per_message, 3]


# --- events, acks, errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        frame(event="info", version=1),
        frame(event="subscribed", feed="book", product_ids=["PF_XBTUSD"]),
        frame(event="unsubscribed", feed="book", product_ids=["PF_XBTUSD"]),
        frame(event="subscribed", feed="heartbeat"),
        frame(feed="heartbeat", time=1626994927744),
    ],
)
def test_quiet_messages(text: str) -> None:
    assert KrakenFuturesAdapter().parse(text, RECV) == []


@pytest.mark.parametrize(
    "text",
    [
        frame(event="subscribed_failed", feed="book", product_ids=["PF_NOPEUSD"]),
        frame(event="unsubscribed_failed", feed="trade", product_ids=["PF_XBTUSD"]),
        frame(event="error", message="Invalid product id"),
    ],
)
def test_refusals(text: str) -> None:
    with pytest.raises(SubscriptionRejected):
        KrakenFuturesAdapter().parse(text, RECV)


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        (frame(event="challenge", message="x"), True),
        (frame(feed="open_orders", orders=[]), True),
        ("not json", False),
        ("[1, 2]", False),
        (frame(feed=7), False),
        (frame(data=1), False),
    ],
)
def test_unknown_and_malformed(text: str, unknown: bool) -> None:
    with pytest.raises(MalformedMessage) as info:
        KrakenFuturesAdapter().parse(text, RECV)
    assert isinstance(info.value, UnknownMessage) is unknown


# --- book -----------------------------------------------------------------------------------


def test_book_snapshot_and_delta() -> None:
    a = KrakenFuturesAdapter()
    (snap,) = a.parse(snapshot_frame(), RECV)
    assert isinstance(snap, BookSnapshot)
    assert (snap.venue, snap.symbol, snap.seq, snap.ts, snap.recv_ns) == (
        LIN,
        "BTC-USD-PERP",
        100,
        1626994925378 * MS,
        RECV,
    )
    assert snap.bids == ((30000.5, 2.0), (30000.0, 1.5)) and snap.asks == ((30001.0, 0.25),)
    (bid,) = parse_events(a, delta(101), RECV)
    assert isinstance(bid, BookUpdate)
    assert (bid.symbol, bid.seq, bid.bids, bid.asks, bid.ts) == (
        "BTC-USD-PERP",
        101,
        ((29999.5, 3.0),),
        (),
        1626994927744 * MS,
    )
    (ask,) = parse_events(a, delta(102, "sell", 30001.0, 0), RECV)
    assert isinstance(ask, BookUpdate) and ask.bids == () and ask.asks == ((30001.0, 0.0),)


@pytest.mark.parametrize(
    "text",
    [
        delta(101, price="29999.5"),  # numbers are JSON numbers, never text
        delta(101, qty=True),
        delta(101, side="bid"),
        delta("101"),  # type: ignore[arg-type]
        frame(feed="book", product_id="PF_XBTUSD", side="buy", price=1.0, qty=1.0),  # no seq
        delta(101, product="PI_XBTUSD"),  # an inverse product on the linear adapter
        delta(101, product="XYZ"),
        frame(feed="book_snapshot", product_id="PF_XBTUSD", seq=1, bids=[{"price": 1.0}], asks=[]),
    ],
)
def test_bad_book_messages_are_malformed(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_events(KrakenFuturesAdapter(), text, RECV)


def test_book_rule_is_sequence_checked() -> None:
    a = KrakenFuturesAdapter()
    rule = a.book_rule("BTC-USD-PERP")
    assert (rule.snapshot, rule.continuity, rule.checksum, rule.depth) == (
        SnapshotSource.STREAM,
        Continuity.SEQUENCE,
        None,
        None,
    )
    assert rule.level() is Integrity.SEQUENCE
    sync = BookSync(rule)
    (snap,) = a.parse(snapshot_frame(seq=100), RECV)
    assert isinstance(snap, BookSnapshot)
    assert sync.on_snapshot(snap) is Verdict.SYNCED
    assert sync.on_update(a.parse(delta(101), RECV)[0]) is Verdict.APPLIED  # type: ignore[arg-type]
    assert sync.on_update(a.parse(delta(101), RECV)[0]) is Verdict.STALE  # type: ignore[arg-type]
    assert sync.on_update(a.parse(delta(103), RECV)[0]) is Verdict.GAP  # type: ignore[arg-type]
    assert (sync.expected, sync.received) == (102, 103)
    assert not sync.valid


# --- trades, quotes, ticker -------------------------------------------------------------------


def trade_frame(kind: str = "fill", side: str = "sell", product: str = "PF_XBTUSD") -> str:
    return frame(
        feed="trade",
        product_id=product,
        uid="8b3e7e72-950c-4c4e-8ab8-24aebcab80d2",
        side=side,
        type=kind,
        seq=1487,
        time=1626994887094,
        qty=0.5,
        price=30000.5,
    )


def test_trade_and_liquidation() -> None:
    a = KrakenFuturesAdapter()
    (trade,) = a.parse(trade_frame(), RECV)
    assert trade == Trade(
        LIN,
        "BTC-USD-PERP",
        30000.5,
        0.5,
        Side.SELL,
        "8b3e7e72-950c-4c4e-8ab8-24aebcab80d2",
        1626994887094 * MS,
        RECV,
        1487,
    )
    # unsubscribed parse (replay without subscriptions): both events
    trade2, liq = a.parse(trade_frame("liquidation", "buy"), RECV)
    assert isinstance(trade2, Trade) and trade2.side is Side.BUY
    assert liq == Liquidation(LIN, "BTC-USD-PERP", Side.BUY, 30000.5, 0.5, 1626994887094 * MS, RECV)


def test_trade_feed_serves_only_the_channels_asked_for() -> None:
    a = KrakenFuturesAdapter()
    a.subscribe(list(liquidations(LIN, "BTC-USD-PERP")))
    assert a.parse(trade_frame(), RECV) == []
    assert [type(e) for e in a.parse(trade_frame("liquidation"), RECV)] == [Liquidation]
    a.subscribe(list(trades(LIN, "BTC-USD-PERP")))
    assert [type(e) for e in a.parse(trade_frame("liquidation"), RECV)] == [Trade, Liquidation]


def test_trade_snapshot_is_history_and_dropped() -> None:
    history = frame(feed="trade_snapshot", product_id="PF_XBTUSD", trades=[json.loads(trade_frame())])
    assert KrakenFuturesAdapter().parse(history, RECV) == []


def test_ticker_lite_quote() -> None:
    lite = frame(
        feed="ticker_lite",
        product_id="FI_BCHUSD_210730",
        bid=439.3,
        ask=439.6,
        change=2.64,
        premium=0.3,
        volume=3413476.0,
        tag="month",
        pair="BCH:USD",
        dtm=7,
        maturityTime=1627657200000,
    )
    (quote,) = KrakenFuturesInverseAdapter().parse(lite, RECV)
    assert isinstance(quote, Quote)
    assert (quote.venue, quote.symbol, quote.bid_price, quote.ask_price, quote.ts) == (
        INV,
        "BCH-USD-20210730",
        439.3,
        439.6,
        None,
    )
    assert math.isnan(quote.bid_size) and math.isnan(quote.ask_size)  # sizes unknown on ticker_lite


def test_ticker_funding_and_open_interest() -> None:
    a = KrakenFuturesAdapter()
    a.subscribe([*funding(LIN, "BTC-USD-PERP"), *open_interest(LIN, "BTC-USD-PERP")])
    ticker = frame(
        feed="ticker",
        product_id="PF_XBTUSD",
        time=1700000000000,
        funding_rate=0.5,
        relative_funding_rate=0.00001,
        next_funding_rate_time=1700003600000,
        markPrice=30000.25,
        openInterest=1234.5,
        bid=1.0,
        ask=2.0,
    )
    fund, oi = a.parse(ticker, RECV)
    assert fund == Funding(LIN, "BTC-USD-PERP", 0.00001, 1700003600000 * MS, 30000.25, 1700000000000 * MS, RECV)
    assert oi == OpenInterest(LIN, "BTC-USD-PERP", 1234.5, 1700000000000 * MS, RECV)
    no_relative = json.loads(ticker)
    del no_relative["relative_funding_rate"]
    assert a.parse(json.dumps(no_relative), RECV)[0].rate == 0.5  # type: ignore[union-attr]
    a.unsubscribe(list(funding(LIN, "BTC-USD-PERP")))
    assert [type(e) for e in a.parse(ticker, RECV)] == [OpenInterest]


def test_dated_ticker_has_no_funding() -> None:
    a = KrakenFuturesInverseAdapter()
    ticker = frame(
        feed="ticker", product_id="FI_XBTUSD_210924", time=1626994927000, openInterest=5000.0, markPrice=32000.0
    )
    (oi,) = a.parse(ticker, RECV)
    assert isinstance(oi, OpenInterest) and oi.symbol == "BTC-USD-20210924"


# --- instruments, contract sizes --------------------------------------------------------------

INSTRUMENTS = json.dumps(
    {
        "result": "success",
        "instruments": [
            {"symbol": "pi_xbtusd", "type": "futures_inverse", "tickSize": 0.5, "contractSize": 1, "tradeable": True},
            {
                "symbol": "FI_ETHUSD_210730",
                "type": "futures_inverse",
                "tickSize": 0.05,
                "contractSize": 1,
                "tradeable": True,
            },
            {
                "symbol": "PF_XBTUSD",
                "type": "flexible_futures",
                "tickSize": 1,
                "contractSize": 1,
                "contractValuePrecision": 4,
                "tradeable": True,
            },
            {
                "symbol": "PF_SHIBUSD",
                "type": "flexible_futures",
                "tickSize": 1e-8,
                "contractSize": 1000,
                "contractValuePrecision": 0,
                "tradeable": True,
            },
            {
                "symbol": "FF_XBTUSD_260327",
                "type": "futures_vanilla",
                "tickSize": 1,
                "contractSize": 1,
                "tradeable": False,
            },
            {"symbol": "in_xbtusd", "type": "spot index", "tradeable": False},
        ],
    }
).encode()


def test_instruments_per_family() -> None:
    lin = KrakenFuturesAdapter(rest_url="http://127.0.0.1:1")
    assert lin.instruments_request().url == "http://127.0.0.1:1/derivatives/api/v3/instruments"
    assert lin.parse_instruments(INSTRUMENTS) == [
        Instrument(LIN, "BTC-USD-PERP", "PF_XBTUSD", "perp", 1.0, 0.0001, 1.0),
        Instrument(LIN, "SHIB-USD-PERP", "PF_SHIBUSD", "perp", 1e-8, 1.0, 1000.0),
    ]
    inv = KrakenFuturesInverseAdapter().parse_instruments(INSTRUMENTS)
    assert [(i.symbol, i.native, i.kind) for i in inv] == [
        ("BTC-USD-PERP", "PI_XBTUSD", "perp"),
        ("ETH-USD-20210730", "FI_ETHUSD_210730", "future"),
    ]


@pytest.mark.parametrize("body", [b"{", b'{"result":"success"}', b'{"result":"success","instruments":[{"symbol":1}]}'])
def test_bad_instruments_bodies(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        KrakenFuturesAdapter().parse_instruments(body)


def test_instruments_error_is_remote() -> None:
    from wsmux.errors import RemoteError

    with pytest.raises(RemoteError, match="maintenance"):
        KrakenFuturesAdapter().parse_instruments(b'{"result":"error","error":"maintenance"}')


def test_contract_sizes_become_base_units() -> None:
    a = KrakenFuturesAdapter()
    a.use_instruments(a.parse_instruments(INSTRUMENTS))
    (snap,) = a.parse(snapshot_frame("PF_SHIBUSD"), RECV)
    assert isinstance(snap, BookSnapshot) and snap.asks == ((30001.0, 250.0),)
    (update,) = parse_events(a, delta(101, qty=3, product="PF_SHIBUSD"), RECV)
    assert isinstance(update, BookUpdate) and update.bids == ((29999.5, 3000.0),)
    (trade,) = a.parse(trade_frame(product="PF_SHIBUSD"), RECV)
    assert isinstance(trade, Trade) and trade.size == 500.0
    (plain,) = a.parse(trade_frame(), RECV)  # contractSize 1: unchanged
    assert isinstance(plain, Trade) and plain.size == 0.5


FACE = 10.0  # USD per contract: a non-trivial face value (the real PI_XBTUSD is 1 USD)


def coins(contracts: float, price: float) -> float:
    return contracts * FACE / price


def inverse_adapter() -> KrakenFuturesInverseAdapter:
    a = KrakenFuturesInverseAdapter()
    a.use_instruments([Instrument(INV, "BTC-USD-PERP", "PI_XBTUSD", "perp", 0.5, None, FACE, True)])
    return a


def test_inverse_instruments_carry_their_usd_face_value() -> None:
    inv = KrakenFuturesInverseAdapter().parse_instruments(INSTRUMENTS)
    assert [(i.contract_size, i.inverse) for i in inv] == [(1.0, True), (1.0, True)]
    assert not any(i.inverse for i in KrakenFuturesAdapter().parse_instruments(INSTRUMENTS))


def test_inverse_book_sizes_become_coins_at_each_level_price() -> None:
    """kraken-futures.md: a ``PI_`` contract is ``contractSize`` USD; with the
    list, a level of ``qty`` contracts at ``price`` is ``qty * face / price`` coins."""
    a = inverse_adapter()
    (snap,) = a.parse(snapshot_frame("PI_XBTUSD"), RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == ((30000.5, coins(2.0, 30000.5)), (30000.0, coins(1.5, 30000.0)))
    assert snap.asks == ((30001.0, coins(0.25, 30001.0)),)
    (update,) = parse_events(a, delta(101, qty=3, product="PI_XBTUSD"), RECV)
    assert isinstance(update, BookUpdate) and update.bids == ((29999.5, coins(3, 29999.5)),)
    (removal,) = parse_events(a, delta(102, side="sell", price=30001.0, qty=0, product="PI_XBTUSD"), RECV)
    assert isinstance(removal, BookUpdate) and removal.asks == ((30001.0, 0.0),)
    # a product without a known face value keeps contracts
    (other,) = parse_events(a, delta(7, qty=3, product="PI_ETHUSD"), RECV)
    assert isinstance(other, BookUpdate) and other.bids == ((29999.5, 3.0),)


def test_inverse_trades_liquidations_quotes_and_open_interest_in_coins() -> None:
    a = inverse_adapter()
    trade, liq = a.parse(trade_frame("liquidation", product="PI_XBTUSD"), RECV)
    assert isinstance(trade, Trade) and trade.size == coins(0.5, 30000.5)
    assert isinstance(liq, Liquidation) and liq.size == coins(0.5, 30000.5)
    lite = frame(feed="ticker_lite", product_id="PI_XBTUSD", bid=30000.0, ask=30002.0, bid_size=40.0, ask_size=8.0)
    (quote,) = a.parse(lite, RECV)
    assert isinstance(quote, Quote)
    assert (quote.bid_size, quote.ask_size) == (coins(40.0, 30000.0), coins(8.0, 30002.0))
    ticker = frame(feed="ticker", product_id="PI_XBTUSD", time=1700000000000, markPrice=32000.0, openInterest=6400.0)
    (oi,) = a.parse(ticker, RECV)
    assert oi == OpenInterest(INV, "BTC-USD-PERP", coins(6400.0, 32000.0), 1700000000000 * MS, RECV)
    # no mark price: the coins cannot be known; nan, which the quality gate drops and counts
    (unpriced,) = a.parse(frame(feed="ticker", product_id="PI_XBTUSD", openInterest=6400.0), RECV)
    assert isinstance(unpriced, OpenInterest) and math.isnan(unpriced.open_interest)


def test_inverse_sizes_stay_contracts_without_the_list() -> None:
    a = KrakenFuturesInverseAdapter()
    (trade,) = a.parse(trade_frame(product="PI_XBTUSD"), RECV)
    assert isinstance(trade, Trade) and trade.size == 0.5
    (snap,) = a.parse(snapshot_frame("PI_XBTUSD"), RECV)
    assert isinstance(snap, BookSnapshot) and snap.asks == ((30001.0, 0.25),)


def test_trade_uids_are_opaque_ids_to_the_trade_sequencer() -> None:
    """``uid`` is a UUID: the multiplexer's trade sequencer must treat it as an
    opaque id (duplicates only), not count every trade as a bad integer id."""
    from wsmux.reliability import TradeSequencer, TradeVerdict

    sequencer = TradeSequencer()
    for venue, adapter in ((LIN, KrakenFuturesAdapter()), (INV, KrakenFuturesInverseAdapter())):
        product = "PF_XBTUSD" if venue == LIN else "PI_XBTUSD"
        (trade,) = adapter.parse(trade_frame(product=product), RECV)
        assert isinstance(trade, Trade)
        assert sequencer.on_trade(trade) is TradeVerdict.NEW
        assert sequencer.on_trade(trade) is TradeVerdict.DUPLICATE
    assert sequencer.stats.bad_ids == 0
