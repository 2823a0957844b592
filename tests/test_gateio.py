"""GateSpotAdapter and GateFuturesAdapter on hand-written frames in the venue's
documented format (``shared/exchanges/gateio.md``): every message type, acks
and errors, and the Order Book V2 rule."""

from __future__ import annotations

import json

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
    OpenInterest,
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux import book as book_subs
from wsmux._pipeline import Feed, Send
from wsmux.book import Continuity, SnapshotSource
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownMessage,
    UnknownSymbol,
)
from wsmux.exchanges import get
from wsmux.exchanges.gateio import GateFuturesAdapter, GateSpotAdapter, gate_symbol
from wsmux.model import Instrument
from wsmux.subscriptions import Subscription
from wsmux.testing import parse_events

NS = 1_700_000_000_000_000_000


class FixedClock:
    def time_ns(self) -> int:
        return 1_747_054_611_123_456_789

    def monotonic(self) -> float:
        return 0.0


FULL = (
    '{"channel":"futures.obu","result":{"t":1743673026995,"full":true,"s":"ob.BTC_USDT.400","u":79072179673,'
    '"b":[["83705.9","30166"]],"a":[["83706","4208"]]},"time_ms":1743673026999}'
)
DELTA = (
    '{"channel":"futures.obu","result":{"t":1743673027017,"s":"ob.BTC_USDT.400","U":79072179674,"u":79072179694,'
    '"b":[["83702.2","62"],["83702.1","0"]]},"time_ms":1743673027020}'
)


def spot_obu(result: dict[str, object]) -> str:
    return json.dumps({"time": 1, "time_ms": 1747054611000, "channel": "spot.obu", "event": "update", "result": result})


def test_registered_and_symbols() -> None:
    assert get("gateio") is GateSpotAdapter and get("gateio-futures") is GateFuturesAdapter
    assert gate_symbol("BTC-USDT", perpetual=False) == "BTC_USDT"
    assert gate_symbol("BTC-USDT-PERP", perpetual=True) == "BTC_USDT"
    for symbol, perpetual in (("BTC-USDT-PERP", False), ("BTC-USDT", True), ("BTC-USD-PERP", True)):
        with pytest.raises(UnknownSymbol):
            gate_symbol(symbol, perpetual)
    with pytest.raises(UnknownChannel):
        GateSpotAdapter().check(Subscription("gateio", Channel.FUNDING, "BTC-USDT"))


def test_subscribe_requests_carry_the_time_and_the_obu_depth() -> None:
    adapter = GateSpotAdapter(clock=FixedClock())
    subs = [
        *book_subs("gateio", "BTC-USDT"),
        *book_subs("gateio", "ETH-USDT", depth=20),
        Subscription("gateio", Channel.TRADES, "BTC-USDT"),
        Subscription("gateio", Channel.TRADES, "ETH-USDT"),
        Subscription("gateio", Channel.CANDLES, "BTC-USDT"),
    ]
    messages = [json.loads(m) for m in adapter.subscribe(subs)]
    assert [(m["channel"], m["payload"]) for m in messages] == [
        ("spot.obu", ["ob.BTC_USDT.400"]),
        ("spot.obu", ["ob.ETH_USDT.50"]),
        ("spot.candlesticks", ["1m", "BTC_USDT"]),
        ("spot.trades", ["BTC_USDT", "ETH_USDT"]),
    ]
    assert all(m["time"] == 1747054611 and m["event"] == "subscribe" for m in messages)
    assert len({m["id"] for m in messages}) == 4
    assert adapter.book_rule_for(subs[1]).depth == 50 and adapter.book_rule_for(subs[0]).depth == 400
    futures = GateFuturesAdapter(clock=FixedClock())
    derivs = [Subscription("gateio-futures", ch, "BTC-USDT-PERP") for ch in
              (Channel.FUNDING, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS)]  # fmt: skip
    assert [(m["channel"], m["payload"]) for m in map(json.loads, futures.unsubscribe(derivs))] == [
        ("futures.tickers", ["BTC_USDT"]),
        ("futures.contract_stats", ["BTC_USDT", "1m"]),
        ("futures.public_liquidates", ["BTC_USDT"]),
    ]


def test_rule_and_integrity() -> None:
    rule = GateSpotAdapter().book_rule("BTC-USDT")
    assert (rule.snapshot, rule.continuity, rule.depth, rule.checksum) == (
        SnapshotSource.STREAM, Continuity.PREV_ID, 400, None,
    )  # fmt: skip
    assert rule.level() is Integrity.SEQUENCE


@pytest.mark.parametrize(
    "frame",
    [
        '{"time":1747054611,"time_ms":1747054611001,"id":1,"conn_id":"c","channel":"spot.obu","event":"subscribe",'
        '"payload":["ob.BTC_USDT.400"],"result":{"status":"success"}}',
        '{"time":1,"channel":"spot.trades","event":"unsubscribe","error":null,"result":{"status":"success"}}',
        '{"time":1,"channel":"spot.pong","event":"","result":null}',
        '{"time":1,"channel":"futures.pong","result":null}',
    ],
)
def test_acks_and_pongs_carry_no_events(frame: str) -> None:
    assert GateSpotAdapter().parse(frame, NS) == []


def test_refusals_errors_unknown_and_malformed() -> None:
    adapter = GateSpotAdapter()
    with pytest.raises(SubscriptionRejected, match="Alert sub"):
        adapter.parse(
            '{"time":1,"id":1,"channel":"spot.obu","event":"subscribe","payload":["ob.BTC_USDT.50"],'
            '"error":{"code":2,"message":"Alert sub ob.BTC_USDT.50"},"result":{"status":"fail"}}',
            NS,
        )
    with pytest.raises(RemoteError):
        adapter.parse('{"time":1,"channel":"spot.trades","event":"update","error":{"code":3},"result":null}', NS)
    with pytest.raises(UnknownMessage):
        adapter.parse('{"time":1,"channel":"spot.order_book","event":"update","result":{}}', NS)
    for frame in ("[]", "{", '{"time":1}', '{"channel":"spot.obu","event":"update","result":{"s":"x"}}'):
        with pytest.raises(MalformedMessage):
            adapter.parse(frame, NS)


def test_obu_full_snapshot_and_delta_from_the_sheet() -> None:
    adapter = GateFuturesAdapter()
    (snap,) = adapter.parse(FULL, NS)
    assert isinstance(snap, BookSnapshot)
    assert (snap.symbol, snap.seq, snap.bids, snap.asks, snap.ts) == (
        "BTC-USDT-PERP", 79072179673, ((83705.9, 30166.0),), ((83706.0, 4208.0),), 1743673026995 * 10**6,
    )  # fmt: skip
    (update,) = parse_events(adapter, DELTA, NS)
    assert isinstance(update, BookUpdate)
    assert (update.seq, update.first_seq, update.prev_seq) == (79072179694, 79072179674, 79072179673)
    assert update.bids == ((83702.2, 62.0), (83702.1, 0.0)) and update.asks == ()


def test_obu_rule_through_the_feed_full_delta_stale_gap_and_a_new_full() -> None:
    adapter = GateSpotAdapter()
    events: list[object] = []
    feed = Feed(adapter, events.append)
    feed.add_book(book_subs("gateio", "BTC-USDT")[0])
    feed.on_frame(
        spot_obu({"t": 1, "s": "ob.BTC_USDT.400", "U": 5, "u": 6, "b": [["9", "1"]]}), NS
    )  # before the snapshot
    feed.on_frame(
        spot_obu({"t": 1, "full": True, "s": "ob.BTC_USDT.400", "u": 10, "b": [["10", "1"]], "a": [["11", "2"]]}), NS
    )
    book = feed.book("BTC-USDT")
    assert book is not None and book.valid and book.seq == 10
    feed.on_frame(spot_obu({"t": 2, "s": "ob.BTC_USDT.400", "U": 11, "u": 12, "b": [["10", "0"], ["9.5", "3"]]}), NS)
    assert book.depth() == (((9.5, 3.0),), ((11.0, 2.0),)) and book.seq == 12
    feed.on_frame(spot_obu({"t": 2, "s": "ob.BTC_USDT.400", "U": 11, "u": 12, "b": [["9.5", "7"]]}), NS)  # again: stale
    assert book.depth() == (((9.5, 3.0),), ((11.0, 2.0),)) and not any(isinstance(e, Gap) for e in events)
    feed.on_frame(spot_obu({"t": 3, "s": "ob.BTC_USDT.400", "U": 14, "u": 15, "a": [["12", "1"]]}), NS)  # 13 lost
    (gap,) = [e for e in events if isinstance(e, Gap)]
    assert gap.reason is GapReason.SEQUENCE and not book.valid
    (action,) = feed.take_actions()
    assert isinstance(action, Send)
    assert [json.loads(m)["event"] for m in action.messages] == ["unsubscribe", "subscribe"]
    feed.on_frame(spot_obu({"t": 4, "full": True, "s": "ob.BTC_USDT.400", "u": 20, "b": [["10", "4"]], "a": []}), NS)
    assert book.valid and book.depth() == (((10.0, 4.0),), ())
    assert sum(isinstance(e, Resynced) for e in events) == 2


def test_spot_trade_and_book_ticker_from_the_sheet() -> None:
    adapter = GateSpotAdapter()
    trade_frame = (
        '{"time":1606292218,"channel":"spot.trades","event":"update","result":{"id":309143071,"id_market":5736713,'
        '"create_time":1606292218,"create_time_ms":"1606292218213.4578","side":"sell","currency_pair":"GT_USDT",'
        '"amount":"16.47","price":"0.4705","range":"2390902-2390902"}}'
    )
    (trade,) = adapter.parse(trade_frame, NS)
    assert trade == Trade("gateio", "GT-USDT", 0.4705, 16.47, Side.SELL, "309143071", 1606292218213457800, NS, 5736713)
    ticker = (
        '{"time":1606293275,"time_ms":1606293275723,"channel":"spot.book_ticker","event":"update","result":'
        '{"t":1606293275123,"u":1002,"s":"BTC_USDT","b":"19177.79","B":"0.0003341504","a":"19179.38","A":"0.09"}}'
    )
    (quote,) = adapter.parse(ticker, NS)
    assert quote == Quote("gateio", "BTC-USDT", 19177.79, 0.0003341504, 19179.38, 0.09, 1606293275123 * 10**6, NS, 1002)
    candle = (
        '{"time":1606292600,"time_ms":1606292600376,"channel":"spot.candlesticks","event":"update","result":'
        '{"t":"1606292580","v":"2362.32035","c":"19128.1","h":"19128.1","l":"19128.1","o":"19128.1",'
        '"n":"1m_BTC_USDT","a":"3.8283","w":true}}'
    )
    (bar,) = adapter.parse(candle, NS)
    assert bar == Candle("gateio", "BTC-USDT", "1m", 1606292580 * 10**9, 19128.1, 19128.1, 19128.1, 19128.1, 3.8283,
                         True, 1606292600376 * 10**6, NS)  # fmt: skip


def test_futures_channels_and_contract_sizes() -> None:
    adapter = GateFuturesAdapter()
    adapter.use_instruments([Instrument("gateio-futures", "BTC-USDT-PERP", "BTC_USDT", "perp", 0.1, 1.0, 0.0001)])
    trades_frame = (
        '{"channel":"futures.trades","event":"update","time":1541503698,"time_ms":1541503698001,"result":[{"size":-108,'
        '"id":27753479,"create_time":1545136464,"create_time_ms":1545136464123,"price":"96.4","contract":"BTC_USDT"}]}'
    )
    (trade,) = adapter.parse(trades_frame, NS)
    assert trade == Trade(
        "gateio-futures", "BTC-USDT-PERP", 96.4, 0.0108, Side.SELL, "27753479", 1545136464123 * 10**6, NS
    )
    ticker = (
        '{"time":1684930165,"time_ms":1684930165631,"channel":"futures.book_ticker","event":"update","result":'
        '{"t":1684930165621,"u":6159967,"s":"BTC_USDT","b":"0.7379","B":814,"a":"0.739","A":677}}'
    )
    (quote,) = adapter.parse(ticker, NS)
    assert (quote.bid_size, quote.ask_size, quote.seq) == (0.0814, 0.0677, 6159967)
    tickers = (
        '{"time":1541659086,"time_ms":1541659086001,"channel":"futures.tickers","event":"update","result":[{'
        '"contract":"BTC_USDT","last":"118.4","funding_rate":"0.000035","mark_price":"118.35","index_price":"118.36",'
        '"total_size":"73648"}]}'
    )
    (funding,) = adapter.parse(tickers, NS)
    assert funding == Funding("gateio-futures", "BTC-USDT-PERP", 0.000035, None, 118.35, 1541659086001 * 10**6, NS)
    stats = (
        '{"time":1541659086,"time_ms":1541659086001,"channel":"futures.contract_stats","event":"update","result":'
        '{"time":1603865400,"contract":"BTC_USDT","open_interest":20000,"open_interest_usd":10000.5}}'
    )
    (oi,) = adapter.parse(stats, NS)
    assert oi == OpenInterest("gateio-futures", "BTC-USDT-PERP", 2.0, 1603865400 * 10**9, NS)
    liq = (
        '{"channel":"futures.public_liquidates","event":"update","time":1541505434,"time_ms":1541505434123,"result":'
        '[{"price":215.1,"size":-124,"time_ms":1541486601123,"contract":"BTC_USDT"}]}'
    )
    (liquidation,) = adapter.parse(liq, NS)
    assert liquidation == Liquidation(
        "gateio-futures", "BTC-USDT-PERP", Side.SELL, 215.1, 0.0124, 1541486601123 * 10**6, NS
    )
    candle = (
        '{"time":1542162490,"time_ms":1542162490123,"channel":"futures.candlesticks","event":"update","result":[{'
        '"t":1545129300,"v":27525555,"c":"95.4","h":"96.9","l":"89.5","o":"94.3","n":"1m_BTC_USDT"}]}'
    )
    (bar,) = adapter.parse(candle, NS)
    assert isinstance(bar, Candle) and bar.volume == 2752.5555 and bar.closed is False
    (full,) = adapter.parse(FULL, NS)
    assert isinstance(full, BookSnapshot) and full.bids == ((83705.9, 3.0166),)
    (update,) = parse_events(adapter, DELTA, NS)
    assert isinstance(update, BookUpdate) and update.bids == ((83702.2, 0.0062), (83702.1, 0.0))
    with pytest.raises(MalformedMessage):  # a trade of size 0 has no side
        adapter.parse(trades_frame.replace('"size":-108', '"size":0'), NS)


def test_instruments() -> None:
    spot = GateSpotAdapter()
    pair = {"id": "ETH_USDT", "base": "ETH", "quote": "USDT", "precision": 2, "amount_precision": 4}
    pairs = json.dumps([
        {**pair, "trade_status": "tradable"},
        {**pair, "id": "OLD_USDT", "base": "OLD", "trade_status": "untradable"},
    ]).encode()  # fmt: skip
    assert spot.instruments_request().url == "https://api.gateio.ws/api/v4/spot/currency_pairs"  # type: ignore[union-attr]
    assert spot.parse_instruments(pairs) == [Instrument("gateio", "ETH-USDT", "ETH_USDT", "spot", 0.01, 0.0001)]
    futures = GateFuturesAdapter()
    contracts = json.dumps([
        {"name": "BTC_USDT", "quanto_multiplier": "0.0001", "order_price_round": "0.1", "status": "trading",
         "in_delisting": False},
        {"name": "LUNA_USDT", "quanto_multiplier": "1", "order_price_round": "0.1", "in_delisting": True},
    ]).encode()  # fmt: skip
    assert futures.parse_instruments(contracts) == [
        Instrument("gateio-futures", "BTC-USDT-PERP", "BTC_USDT", "perp", 0.1, 1.0, 0.0001)
    ]
    with pytest.raises(RemoteError):
        futures.parse_instruments(b'{"label":"INVALID_PARAM_VALUE","message":"bad"}')
