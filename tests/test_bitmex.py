"""BitmexAdapter: hand-written frames in the documented format
(shared/exchanges/bitmex.md), symbols, the id → price map of ``orderBookL2``
and the losses it proves, and the (unverifiable) book rule."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Funding,
    Gap,
    GapReason,
    Integrity,
    Liquidation,
    MalformedMessage,
    OpenInterest,
    Quote,
    Side,
    Subscription,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    quotes,
    trades,
)
from wsmux._pipeline import Feed, Send
from wsmux.book import Continuity, SnapshotSource
from wsmux.errors import UnknownMessage, WsmuxError
from wsmux.exchanges import get
from wsmux.exchanges.bitmex import BitmexAdapter, bitmex_symbol, bitmex_unified, iso_ns
from wsmux.model import Instrument
from wsmux.reliability import TradeSequencer, TradeVerdict
from wsmux.testing import parse_events

RECV = 123_456_789
NS = 1_000_000_000

# bitmex.md, "Examples (2021 recording)"
PARTIAL = (
    '{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],"types":{"symbol":"symbol",'
    '"id":"long","side":"symbol","size":"long","price":"float"},"filter":{"symbol":"XRPU21"},"data":'
    '[{"symbol":"XRPU21","id":56799989301,"side":"Sell","size":3000,"price":0.00010699}]}'
)
TRADE = (
    '{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z","symbol":"UNIUSDT",'
    '"side":"Buy","size":52,"price":17.297,"tickDirection":"PlusTick",'
    '"trdMatchID":"39744121-c20e-44ba-8cc8-a6b8cdf72885","grossValue":899444,"homeNotional":16.731,'
    '"foreignNotional":289.396}]}'
)


def frame(table: str, action: str, data: list[Any], **extra: Any) -> str:
    return json.dumps({"table": table, "action": action, "data": data, **extra})


def partial(native: str, rows: list[tuple[int, str, int, float]]) -> str:
    data = [{"symbol": native, "id": i, "side": side, "size": size, "price": price} for i, side, size, price in rows]
    return frame("orderBookL2", "partial", data, keys=["symbol", "id", "side"], filter={"symbol": native})


def rows(native: str, items: list[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"symbol": native, "id": i, "side": side, **fields} for i, side, fields in items]


def synced(native: str = "SOLUSDT", symbol: str = "SOL-USDT-PERP") -> tuple[BitmexAdapter, Feed, list[Any]]:
    adapter = BitmexAdapter()
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    sub = Subscription("bitmex", Channel.BOOK, symbol)
    feed.add_book(sub)
    adapter.subscribe([sub])
    feed.on_frame(partial(native, [(1, "Sell", 10, 27.6), (2, "Sell", 20, 27.55), (3, "Buy", 30, 27.5)]), RECV)
    assert feed.syncs[symbol].valid
    events.clear()
    return adapter, feed, events


# --- registry, symbols -----------------------------------------------------------------------


def test_registry() -> None:
    assert get("bitmex") is BitmexAdapter
    assert BitmexAdapter.default_url == "wss://ws.bitmex.com/realtime"


@pytest.mark.parametrize(
    ("unified", "native"),
    [
        ("BTC-USD-PERP", "XBTUSD"),
        ("BTC-USDT-PERP", "XBTUSDT"),
        ("SOL-USDT-PERP", "SOLUSDT"),
        ("ETH-USD-PERP", "ETHUSD"),
        ("BTC-USDT", "XBT_USDT"),
    ],
)
def test_symbols_round_trip(unified: str, native: str) -> None:
    assert bitmex_symbol(unified) == native
    assert bitmex_unified(native) == unified


@pytest.mark.parametrize(
    ("unified", "native"),
    [
        ("BTC-USD-20210924", "XBTU21"),
        ("XRP-BTC-20210924", "XRPU21"),
        ("ETH-USD-20210924", "ETHUSDU21"),
        ("BTC-EUR-20210924", "XBTEURU21"),
        ("ETH-USDT-20261225", "ETHUSDTZ26"),
    ],
)
def test_dated_futures(unified: str, native: str) -> None:
    assert bitmex_symbol(unified) == native
    assert bitmex_unified(native) != unified  # the day is not in the name: learnt from subscriptions


def test_dated_future_learnt_from_the_subscription() -> None:
    adapter = BitmexAdapter()
    adapter.subscribe(quotes("bitmex", "XRP-BTC-20210924"))
    row = {
        "timestamp": "2021-07-22T22:36:10.014Z",
        "symbol": "XRPU21",
        "bidSize": 15,
        "bidPrice": 0.00001814,
        "askPrice": 0.0000182,
        "askSize": 10,
    }
    (quote,) = adapter.parse(frame("quote", "insert", [row]), RECV)
    assert isinstance(quote, Quote) and quote.symbol == "XRP-BTC-20210924"
    assert (quote.bid_price, quote.bid_size, quote.ask_size) == (0.00001814, 15.0, 10.0)


@pytest.mark.parametrize(
    ("channel", "symbol"),
    [(Channel.FUNDING, "BTC-USD-20210924"), (Channel.FUNDING, "BTC-USDT"), (Channel.LIQUIDATIONS, "BTC-USDT")],
)
def test_channels_the_instrument_lacks(channel: Channel, symbol: str) -> None:
    with pytest.raises(UnknownSymbol):
        BitmexAdapter().check(Subscription("bitmex", channel, symbol))


def test_check_refuses_l3_and_options() -> None:
    with pytest.raises(UnknownChannel):
        BitmexAdapter().check(Subscription("bitmex", Channel.L3, "BTC-USD-PERP"))
    with pytest.raises(UnknownSymbol):
        BitmexAdapter().check(Subscription("bitmex", Channel.TRADES, "BTC-USD-20210924-8000-P"))


def test_iso_timestamps() -> None:
    assert iso_ns("2021-07-22T22:36:10.014Z") == 1626993370014 * 1_000_000
    for bad in ("2021-07-22T22:36:10.014", "yesterday", 1626993370, "2021-07-22T22:36:10.014Z\u0660"):
        with pytest.raises(ValueError):
            iso_ns(bad)


# --- subscriptions and control messages ------------------------------------------------------------


def test_subscribe_messages() -> None:
    adapter = BitmexAdapter()
    subs = [*book("bitmex", "BTC-USD-PERP"), *trades("bitmex", "BTC-USD-PERP", "SOL-USDT-PERP")]
    assert [json.loads(m) for m in adapter.subscribe(subs)] == [
        {"op": "subscribe", "args": ["orderBookL2:XBTUSD", "trade:XBTUSD", "trade:SOLUSDT"]}
    ]
    assert json.loads(adapter.unsubscribe(subs[:1])[0]) == {"op": "unsubscribe", "args": ["orderBookL2:XBTUSD"]}
    many = book("bitmex", *[f"A{i}-USDT-PERP" for i in range(120)])
    assert [len(json.loads(m)["args"]) for m in adapter.subscribe(many)] == [50, 50, 20]


def test_welcome_acks_and_pong_are_quiet() -> None:
    adapter = BitmexAdapter()
    welcome = (
        '{"info":"Welcome to the BitMEX Realtime API.","version":"2021-07-14T01:26:29.000Z",'
        '"timestamp":"2021-07-22T22:36:07.865Z","docs":"https://www.bitmex.com/app/wsAPI","limit":{"remaining":39}}'
    )
    assert adapter.parse(welcome, RECV) == []
    assert adapter.parse('{"success":true,"subscribe":"orderBookL2:XRPU21","request":{}}', RECV) == []
    assert adapter.parse("pong", RECV) == []


def test_error_is_a_rejected_subscription() -> None:
    error = '{"status":400,"error":"Unknown table: orderBookL3","meta":{},"request":{"op":"subscribe"}}'
    with pytest.raises(SubscriptionRejected, match="Unknown table"):
        BitmexAdapter().parse(error, RECV)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1]",
        '{"hello":1}',
        '{"table":"trade","action":"insert"}',
        '{"table":"trade","action":"insert","data":{}}',
        frame("trade", "insert", [{"symbol": "XBTUSD", "price": 1.0}]),
        frame(
            "trade",
            "insert",
            [
                {
                    "timestamp": "2021-07-22T22:36:10.014Z",
                    "symbol": "XBTUSD",
                    "side": "Buy",
                    "size": "5",
                    "price": 30000.0,
                    "trdMatchID": "x",
                }
            ],
        ),
        frame(
            "trade",
            "insert",
            [
                {
                    "timestamp": "2021-07-22T22:36:10.014Z",
                    "symbol": "XBTUSD",
                    "side": "Up",
                    "size": 5,
                    "price": 30000.0,
                    "trdMatchID": "x",
                }
            ],
        ),
        partial("XBTUSD", [(1, "Middle", 5, 1.0)]),
        partial("XBTUSD", [(1, "Buy", True, 1.0)]),  # type: ignore[list-item]
        frame("orderBookL2", "partial", [], keys=[]),  # no filter: whose book?
    ],
)
def test_malformed_frames_raise_malformed_message(text: str) -> None:
    with pytest.raises(MalformedMessage):
        BitmexAdapter().parse(text, RECV)


def test_unknown_messages_say_so() -> None:
    adapter = BitmexAdapter()
    with pytest.raises(UnknownMessage, match="settlement"):
        adapter.parse(frame("settlement", "insert", []), RECV)
    with pytest.raises(UnknownMessage, match="trade action"):
        adapter.parse(frame("trade", "remove", []), RECV)


def test_no_foreign_exception_escapes() -> None:
    adapter, _, _ = synced()
    for text in (PARTIAL, TRADE, frame("orderBookL2", "update", rows("SOLUSDT", [(1, "Sell", {"size": 5})]))):
        for cut in range(0, len(text), 5):
            for mutated in (text[:cut], text[:cut] + "null" + text[cut + 4 :]):
                try:
                    adapter.parse(mutated, RECV)
                except WsmuxError:
                    pass


# --- book ------------------------------------------------------------------------------------------


def test_partial_from_the_sheet() -> None:
    adapter = BitmexAdapter()
    adapter.subscribe(book("bitmex", "XRP-BTC-20210924"))
    (snap,) = parse_events(adapter, PARTIAL, RECV)
    assert isinstance(snap, BookSnapshot) and snap.symbol == "XRP-BTC-20210924"
    assert snap.bids == () and snap.asks == ((0.00010699, 3000.0),)


def test_updates_and_deletes_take_their_price_from_the_id_map() -> None:
    _adapter, feed, events = synced()
    feed.on_frame(
        frame("orderBookL2", "update", rows("SOLUSDT", [(2, "Sell", {"size": 25}), (3, "Buy", {"size": 7})])), RECV
    )
    feed.on_frame(frame("orderBookL2", "delete", rows("SOLUSDT", [(1, "Sell", {})])), RECV)
    feed.on_frame(frame("orderBookL2", "insert", rows("SOLUSDT", [(4, "Buy", {"size": 9, "price": 27.45})])), RECV)
    updates = [e for e in events if isinstance(e, BookUpdate)]
    assert [(u.bids, u.asks) for u in updates] == [
        (((27.5, 7.0),), ((27.55, 25.0),)),
        ((), ((27.6, 0.0),)),
        (((27.45, 9.0),), ()),
    ]
    assert feed.syncs["SOL-USDT-PERP"].book.depth() == (((27.5, 7.0), (27.45, 9.0)), ((27.55, 25.0),))
    # a later delete of the inserted level finds its price too
    feed.on_frame(frame("orderBookL2", "delete", rows("SOLUSDT", [(4, "Buy", {})])), RECV)
    assert feed.syncs["SOL-USDT-PERP"].book.depth() == (((27.5, 7.0),), ((27.55, 25.0),))


def test_price_on_updates_is_used_when_present() -> None:
    _adapter, feed, events = synced()
    update = rows("SOLUSDT", [(2, "Sell", {"size": 25, "price": 27.55, "timestamp": "2026-01-01T00:00:00.000Z"})])
    feed.on_frame(frame("orderBookL2", "update", update), RECV)
    (event,) = [e for e in events if isinstance(e, BookUpdate)]
    assert event.asks == ((27.55, 25.0),)


def test_same_id_on_both_sides_is_two_levels() -> None:
    """Rows are keyed by (symbol, id, side): a bid and an ask may share an id."""
    _adapter, feed, events = synced()
    feed.on_frame(frame("orderBookL2", "insert", rows("SOLUSDT", [(1, "Buy", {"size": 1, "price": 27.52})])), RECV)
    feed.on_frame(frame("orderBookL2", "delete", rows("SOLUSDT", [(1, "Buy", {})])), RECV)
    assert not any(isinstance(e, Gap) for e in events)
    assert feed.syncs["SOL-USDT-PERP"].book.depth() == (((27.5, 30.0),), ((27.55, 20.0), (27.6, 10.0)))


@pytest.mark.parametrize(
    ("action", "row", "detail"),
    [
        ("update", (99, "Sell", {"size": 5}), "update of unknown level id 99"),
        ("delete", (99, "Buy", {}), "delete of unknown level id 99"),
        ("insert", (3, "Buy", {"size": 5, "price": 27.5}), "insert of level id 3"),
    ],
)
def test_what_the_id_map_proves_lost_is_a_gap(action: str, row: Any, detail: str) -> None:
    _adapter, feed, events = synced()
    feed.on_frame(frame("orderBookL2", action, rows("SOLUSDT", [row])), RECV)
    (gap,) = [e for e in events if isinstance(e, Gap)]
    assert gap.reason is GapReason.SEQUENCE and gap.symbol == "SOL-USDT-PERP" and detail in gap.detail
    assert not feed.syncs["SOL-USDT-PERP"].valid
    (action_,) = feed.take_actions()
    assert isinstance(action_, Send)
    assert [json.loads(m) for m in action_.messages] == [
        {"op": "unsubscribe", "args": ["orderBookL2:SOLUSDT"]},
        {"op": "subscribe", "args": ["orderBookL2:SOLUSDT"]},
    ]
    # rows before the new partial are ignored, the partial heals the book
    feed.on_frame(frame("orderBookL2", "update", rows("SOLUSDT", [(1, "Sell", {"size": 5})])), RECV)
    assert feed.stats.gaps == 1
    feed.on_frame(partial("SOLUSDT", [(1, "Sell", 10, 27.6), (3, "Buy", 30, 27.5)]), RECV)
    assert feed.syncs["SOL-USDT-PERP"].valid


def test_rows_before_the_partial_are_ignored() -> None:
    adapter = BitmexAdapter()
    adapter.subscribe(book("bitmex", "SOL-USDT-PERP"))
    assert adapter.parse(frame("orderBookL2", "update", rows("SOLUSDT", [(1, "Sell", {"size": 5})])), RECV) == []


def test_inverse_sizes_are_base_units() -> None:
    adapter = BitmexAdapter()
    adapter.subscribe(book("bitmex", "BTC-USD-PERP"))
    (snap,) = parse_events(adapter, partial("XBTUSD", [(1, "Sell", 300, 30000.0), (2, "Buy", 100, 25000.0)]), RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.asks == ((30000.0, 0.01),) and snap.bids == ((25000.0, 0.004),)
    (update,) = parse_events(
        adapter, frame("orderBookL2", "update", rows("XBTUSD", [(1, "Sell", {"size": 600})])), RECV
    )
    assert isinstance(update, BookUpdate) and update.asks == ((30000.0, 0.02),)


def test_several_symbols_in_one_message() -> None:
    adapter = BitmexAdapter()
    adapter.subscribe(book("bitmex", "SOL-USDT-PERP", "ADA-USDT-PERP"))
    adapter.parse(partial("SOLUSDT", [(1, "Sell", 10, 27.6)]), RECV)
    adapter.parse(partial("ADAUSDT", [(7, "Buy", 10, 1.2)]), RECV)
    data = rows("SOLUSDT", [(1, "Sell", {"size": 4})]) + rows("ADAUSDT", [(7, "Buy", {"size": 3})])
    diffs = adapter.parse(frame("orderBookL2", "update", data), RECV)
    assert [(d.symbol, d.bids, d.asks) for d in diffs] == [  # type: ignore[union-attr]
        ("SOL-USDT-PERP", [], [(27.6, 4.0)]),
        ("ADA-USDT-PERP", [(1.2, 3.0)], []),
    ]


def test_rule_is_unverifiable() -> None:
    rule = BitmexAdapter().book_rule("BTC-USD-PERP")
    assert rule.snapshot is SnapshotSource.STREAM and rule.continuity is Continuity.NONE
    assert rule.checksum is None and rule.level() is Integrity.UNVERIFIABLE


def test_reset_forgets_the_id_maps() -> None:
    adapter, _, _ = synced()
    adapter.reset()
    assert adapter.parse(frame("orderBookL2", "delete", rows("SOLUSDT", [(1, "Sell", {})])), RECV) == []


# --- other tables ------------------------------------------------------------------------------------


def test_trade_from_the_sheet() -> None:
    (trade,) = BitmexAdapter().parse(TRADE, RECV)
    assert trade == Trade(
        "bitmex",
        "UNI-USDT-PERP",
        17.297,
        52.0,
        Side.BUY,
        "39744121-c20e-44ba-8cc8-a6b8cdf72885",
        1626993370014 * 1_000_000,
        RECV,
    )


def test_trade_partial_is_history() -> None:
    assert BitmexAdapter().parse(TRADE.replace('"insert"', '"partial"'), RECV) == []


def test_inverse_trade_and_empty_quote_side() -> None:
    adapter = BitmexAdapter()
    row = {
        "timestamp": "2021-07-22T22:36:10.014Z",
        "symbol": "XBTUSD",
        "side": "Sell",
        "size": 300,
        "price": 30000.0,
        "trdMatchID": "t1",
    }
    (trade,) = adapter.parse(frame("trade", "insert", [row]), RECV)
    assert isinstance(trade, Trade) and trade.size == 0.01 and trade.side is Side.SELL
    quote_row = {
        "timestamp": "2021-07-22T22:36:10.014Z",
        "symbol": "XBTUSD",
        "bidSize": 600,
        "bidPrice": 30000.0,
        "askPrice": None,
        "askSize": None,
    }
    (quote,) = adapter.parse(frame("quote", "insert", [quote_row]), RECV)
    assert isinstance(quote, Quote) and quote.bid_size == 0.02 and math.isnan(quote.ask_price)


def test_funding_open_interest_liquidation_candle() -> None:
    adapter = BitmexAdapter()
    fund = {
        "timestamp": "2021-07-23T04:00:00.000Z",
        "symbol": "XBTUSD",
        "fundingInterval": "2000-01-01T08:00:00.000Z",
        "fundingRate": 0.0001,
        "fundingRateDaily": 0.0003,
    }
    (f,) = adapter.parse(frame("funding", "insert", [fund]), RECV)
    assert f == Funding("bitmex", "BTC-USD-PERP", 0.0001, None, None, iso_ns(fund["timestamp"]), RECV)
    inst = [
        {"symbol": "SOLUSDT", "openInterest": 604643, "timestamp": "2021-07-22T22:36:10.014Z"},
        {"symbol": "SOLUSDT", "markPrice": 27.5, "timestamp": "2021-07-22T22:36:10.014Z"},
    ]
    (oi,) = adapter.parse(frame("instrument", "update", inst), RECV)
    assert isinstance(oi, OpenInterest) and oi.open_interest == 604643.0 and oi.symbol == "SOL-USDT-PERP"
    liq = {"orderID": "o1", "symbol": "SOLUSDT", "side": "Sell", "price": 27.0, "leavesQty": 12}
    (liquidation,) = adapter.parse(frame("liquidation", "insert", [liq]), RECV)
    assert liquidation == Liquidation("bitmex", "SOL-USDT-PERP", Side.SELL, 27.0, 12.0, None, RECV)
    assert adapter.parse(frame("liquidation", "update", [{"orderID": "o1", "leavesQty": 2}]), RECV) == []
    assert adapter.parse(frame("liquidation", "delete", [{"orderID": "o1"}]), RECV) == []
    bin_ = {
        "timestamp": "2021-07-22T22:37:00.000Z",
        "symbol": "SOLUSDT",
        "open": 27.5,
        "high": 27.7,
        "low": 27.4,
        "close": 27.6,
        "trades": 3,
        "volume": 99,
    }
    (candle,) = adapter.parse(frame("tradeBin1m", "insert", [bin_]), RECV)
    end = iso_ns(bin_["timestamp"])
    assert candle == Candle(
        "bitmex", "SOL-USDT-PERP", "1m", end - 60 * NS, 27.5, 27.7, 27.4, 27.6, 99.0, True, end, RECV
    )


# --- instruments ----------------------------------------------------------------------------------------


def test_open_interest_in_base_units() -> None:
    """``instrument.openInterest`` counts contracts: XBTUSD's (1 USD each) are
    coins at the last ``markPrice`` the table sent; a linear contract's are
    multiplied by its contract size once the instruments are known."""
    adapter = BitmexAdapter()
    ts = "2021-07-22T22:36:10.014Z"
    first = [{"symbol": "XBTUSD", "openInterest": 600_000_000}]
    (unpriced,) = adapter.parse(frame("instrument", "partial", first), RECV)
    assert isinstance(unpriced, OpenInterest) and math.isnan(unpriced.open_interest)  # no mark yet: dropped and counted
    rows = [{"symbol": "XBTUSD", "markPrice": 30000.0, "openInterest": 600_000_000, "timestamp": ts}]
    (oi,) = adapter.parse(frame("instrument", "update", rows), RECV)
    assert oi == OpenInterest("bitmex", "BTC-USD-PERP", 20_000.0, iso_ns(ts), RECV)
    (oi,) = adapter.parse(frame("instrument", "update", [{"symbol": "XBTUSD", "openInterest": 660_000_000}]), RECV)
    assert isinstance(oi, OpenInterest) and oi.open_interest == 22_000.0  # at the last mark price
    adapter.use_instruments([Instrument("bitmex", "BTC-USDT-PERP", "XBTUSDT", "perp", 0.5, 1000.0, 1e-06)])
    (oi,) = adapter.parse(frame("instrument", "update", [{"symbol": "XBTUSDT", "openInterest": 5_000_000}]), RECV)
    assert isinstance(oi, OpenInterest) and oi.open_interest == pytest.approx(5.0)


def test_xbteur_is_inverse_once_the_list_says_so() -> None:
    """``XBTEUR`` contracts are 1 EUR each (``isInverse`` in the list): with
    the list its sizes are coins at the price; without it, contracts."""
    row = {"timestamp": "2021-07-22T22:36:10.014Z", "symbol": "XBTEUR", "side": "Buy", "size": 5000,
           "price": 25000.0, "trdMatchID": "t"}  # fmt: skip
    adapter = BitmexAdapter()
    (plain,) = adapter.parse(frame("trade", "insert", [row]), RECV)
    assert isinstance(plain, Trade) and plain.size == 5000.0
    adapter.use_instruments([Instrument("bitmex", "BTC-EUR-PERP", "XBTEUR", "perp", 0.5, 1.0, 1.0, True)])
    (trade,) = adapter.parse(frame("trade", "insert", [row]), RECV)
    assert isinstance(trade, Trade) and trade.size == 0.2


def test_instruments_and_contract_sizes() -> None:
    adapter = BitmexAdapter(rest_url="http://127.0.0.1:9")
    assert adapter.instruments_request().url == "http://127.0.0.1:9/api/v1/instrument/active"
    body = [
        {
            "symbol": "XBTUSD",
            "typ": "FFWCSX",
            "underlying": "XBT",
            "quoteCurrency": "USD",
            "tickSize": 0.5,
            "lotSize": 100,
            "isInverse": True,
            "isQuanto": False,
            "underlyingToPositionMultiplier": None,
        },
        {
            "symbol": "XBTUSDT",
            "typ": "FFWCSX",
            "underlying": "XBT",
            "quoteCurrency": "USDT",
            "tickSize": 0.5,
            "lotSize": 1000,
            "isInverse": False,
            "isQuanto": False,
            "underlyingToPositionMultiplier": 1000000,
        },
        {
            "symbol": "XRPU21",
            "typ": "FFCCSX",
            "underlying": "XRP",
            "quoteCurrency": "XBT",
            "tickSize": 1e-08,
            "lotSize": 1,
            "isInverse": False,
            "isQuanto": False,
            "underlyingToPositionMultiplier": 1,
            "expiry": "2021-09-24T12:00:00.000Z",
        },
        {
            "symbol": "ETHUSD",
            "typ": "FFWCSX",
            "underlying": "ETH",
            "quoteCurrency": "USD",
            "tickSize": 0.05,
            "lotSize": 1,
            "isInverse": False,
            "isQuanto": True,
            "underlyingToPositionMultiplier": None,
        },
        {
            "symbol": ".BXBT",
            "typ": "MRCXXX",
            "underlying": "XBT",
            "quoteCurrency": "USD",
            "tickSize": 0.01,
            "lotSize": 0,
        },
    ]
    got = adapter.parse_instruments(json.dumps(body).encode())
    assert [(i.symbol, i.native, i.kind, i.contract_size, i.inverse) for i in got] == [
        ("BTC-USD-PERP", "XBTUSD", "perp", 1.0, True),  # 1 USD a contract
        ("BTC-USDT-PERP", "XBTUSDT", "perp", 1e-06, False),
        ("XRP-BTC-20210924", "XRPU21", "future", 1.0, False),
        ("ETH-USD-PERP", "ETHUSD", "perp", None, False),
    ]
    adapter.use_instruments(got)
    row = {
        "timestamp": "2021-07-22T22:36:10.014Z",
        "symbol": "XBTUSDT",
        "side": "Buy",
        "size": 5000,
        "price": 30000.0,
        "trdMatchID": "t",
    }
    (trade,) = adapter.parse(frame("trade", "insert", [row]), RECV)
    assert isinstance(trade, Trade) and trade.size == pytest.approx(0.005)  # 5000 contracts of 1e-6 XBT
    row.update(symbol="XRPU21", price=0.0000181)
    (trade,) = adapter.parse(frame("trade", "insert", [row]), RECV)
    assert isinstance(trade, Trade) and trade.symbol == "XRP-BTC-20210924"
    for bad in (b"{", b"[{}]", b'[{"typ": "FFWCSX"}]'):
        with pytest.raises(MalformedMessage):
            adapter.parse_instruments(bad)


def test_trade_ids_are_opaque_to_the_trade_sequencer() -> None:
    """trdMatchID is a UUID: the multiplexer's sequencer dedupes it instead of
    counting every trade as a bad id."""
    sequencer = TradeSequencer()
    (trade,) = BitmexAdapter().parse(TRADE, RECV)
    assert isinstance(trade, Trade)
    assert sequencer.on_trade(trade) is TradeVerdict.NEW
    assert sequencer.on_trade(trade) is TradeVerdict.DUPLICATE
    assert sequencer.stats.bad_ids == 0
