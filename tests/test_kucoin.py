"""KucoinAdapter and KucoinFuturesAdapter on hand-written frames in the venue's
documented format (``shared/exchanges/kucoin.md``): every message type,
acks and errors, the bullet answer, REST bodies and the book rules."""

from __future__ import annotations

import json

import pytest

from wsmux import BookUpdate, Candle, Channel, Funding, Gap, GapReason, Integrity, Quote, Resynced, Side, Trade
from wsmux import book as book_subs
from wsmux import candles as candle_subs
from wsmux._pipeline import Feed, FetchSnapshot
from wsmux.book import Continuity, Diff, SnapshotSource
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownMessage,
    UnknownSymbol,
)
from wsmux.exchanges import get
from wsmux.exchanges.kucoin import KucoinAdapter, KucoinFuturesAdapter, kucoin_futures_symbol
from wsmux.model import Instrument
from wsmux.subscriptions import Subscription
from wsmux.testing import parse_events

NS = 1_700_000_000_000_000_000
BULLET = json.dumps(
    {
        "code": "200000",
        "data": {
            "token": "2neAiuYvAU61ZD",
            "instanceServers": [
                {
                    "endpoint": "wss://ws-api-spot.kucoin.com/",
                    "encrypt": True,
                    "protocol": "websocket",
                    "pingInterval": 18000,
                    "pingTimeout": 10000,
                }
            ],
        },
    }
).encode()


def l2(start: int, end: int, bids: list[list[str]], asks: list[list[str]], symbol: str = "BTC-USDT") -> str:
    data = {"changes": {"asks": asks, "bids": bids}, "sequenceEnd": end, "sequenceStart": start, "symbol": symbol}
    data["time"] = 1663747970273
    return json.dumps(
        {"type": "message", "topic": f"/market/level2:{symbol}", "subject": "trade.l2update", "data": data}
    )


def fl2(seq: int, change: str, symbol: str = "XBTUSDTM") -> str:
    data = {"sequence": seq, "change": change, "timestamp": 1551770400000}
    return json.dumps(
        {"type": "message", "topic": f"/contractMarket/level2:{symbol}", "subject": "level2", "data": data}
    )


# --- registry, symbols, connecting -----------------------------------------------------------


def test_registered_with_their_venue_ids() -> None:
    assert get("kucoin") is KucoinAdapter
    assert get("kucoin-futures") is KucoinFuturesAdapter


def test_symbols() -> None:
    spot = KucoinAdapter()
    assert spot.to_native("BTC-USDT") == "BTC-USDT"
    with pytest.raises(UnknownSymbol):
        spot.to_native("BTC-USDT-PERP")
    assert kucoin_futures_symbol("BTC-USDT-PERP") == "XBTUSDTM"
    assert kucoin_futures_symbol("BTC-USD-PERP") == "XBTUSDM"
    assert kucoin_futures_symbol("ETH-USDT-PERP") == "ETHUSDTM"
    with pytest.raises(UnknownSymbol, match="instruments"):
        KucoinFuturesAdapter().to_native("BTC-USD-20260327")
    with pytest.raises(UnknownChannel):
        spot.check(Subscription("kucoin", Channel.FUNDING, "BTC-USDT"))


def test_bullet_answer_builds_the_connect_url_and_each_connection_gets_a_new_id() -> None:
    adapter = KucoinAdapter()
    request = adapter.connect_request()
    assert request is not None
    assert (request.method, request.url) == ("POST", "https://api.kucoin.com/api/v1/bullet-public")
    assert KucoinFuturesAdapter().connect_request().url == (  # type: ignore[union-attr]
        "https://api-futures.kucoin.com/api/v1/bullet-public"
    )
    assert adapter.connect_url([]) == adapter.url  # no bullet yet (replay, tools)
    adapter.use_connect_response(BULLET)
    assert adapter.ping_interval_ms == 18000
    first = adapter.connect_url([])
    assert first.startswith("wss://ws-api-spot.kucoin.com/?token=2neAiuYvAU61ZD&connectId=wsmux-")
    assert adapter.connect_url([]) != first
    adapter.reset()  # a new connection needs a new token
    assert adapter.connect_url([]) == adapter.url


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"code":"400003","msg":"KC-API-KEY not exists"}', RemoteError),
        (b'{"code":"200000","data":{"token":"t","instanceServers":[]}}', MalformedMessage),
        (b'{"code":"200000","data":{"token":"t","instanceServers":[{"endpoint":"http://x"}]}}', MalformedMessage),
        (b"<html>", MalformedMessage),
    ],
)
def test_bad_bullet_answers_are_typed_errors(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        KucoinAdapter().use_connect_response(body)


def test_subscribe_batches_up_to_100_symbols_per_topic_and_one_per_futures_topic() -> None:
    adapter = KucoinAdapter()
    symbols = [f"C{i}-USDT" for i in range(150)]
    messages = [json.loads(m) for m in adapter.subscribe(list(book_subs("kucoin", *symbols)))]
    assert [m["topic"].count(",") + 1 for m in messages] == [100, 50]
    assert messages[0]["topic"].startswith("/market/level2:C0-USDT,C1-USDT,")
    assert all(m["type"] == "subscribe" and m["response"] is True and m["privateChannel"] is False for m in messages)
    assert len({m["id"] for m in messages}) == 2
    (candle,) = [json.loads(m) for m in adapter.unsubscribe(list(candle_subs("kucoin", "BTC-USDT")))]
    assert (candle["type"], candle["topic"]) == ("unsubscribe", "/market/candles:BTC-USDT_1min")
    futures = KucoinFuturesAdapter()
    topics = [
        json.loads(m)["topic"]
        for m in futures.subscribe(list(book_subs("kucoin-futures", "BTC-USDT-PERP", "ETH-USDT-PERP")))
    ]
    assert topics == ["/contractMarket/level2:XBTUSDTM", "/contractMarket/level2:ETHUSDTM"]


# --- control messages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    ['{"id":"hQvf8jkno","type":"welcome"}', '{"id":"1545910660739","type":"ack"}', '{"id":"wsmux","type":"pong"}'],
)
def test_welcome_ack_and_pong_carry_no_events(frame: str) -> None:
    assert KucoinAdapter().parse(frame, NS) == []


def test_error_frame_is_a_rejected_subscription() -> None:
    with pytest.raises(SubscriptionRejected, match="509"):
        KucoinAdapter().parse('{"id":"1","type":"error","code":509,"data":"exceed max subscription count"}', NS)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ('{"type":"notice","id":"1"}', UnknownMessage),
        ('{"type":"message","topic":"/market/snapshot:BTC-USDT","subject":"trade.snapshot","data":{}}', UnknownMessage),
        ('{"id":"1"}', MalformedMessage),
        ("[1,2]", MalformedMessage),
        ("{not json", MalformedMessage),
        ('{"type":"message","subject":"trade.l2update","topic":"/market/level2:BTC-USDT","data":{}}', MalformedMessage),
    ],
)
def test_unknown_and_malformed_frames(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        KucoinAdapter().parse(frame, NS)


# --- spot data ---------------------------------------------------------------------------------


def test_spot_level2_is_a_diff_with_the_sequence_range_and_placeholders_dropped() -> None:
    adapter = KucoinAdapter()
    frame = l2(
        14103844, 14103846, [["18906", "0.00331", "14103845"]], [["0", "0", "14103844"], ["18907", "0", "14103846"]]
    )
    (diff,) = adapter.parse(frame, NS)
    assert isinstance(diff, Diff)
    assert (diff.symbol, diff.first_seq, diff.seq, diff.ts) == ("BTC-USDT", 14103844, 14103846, 1663747970273 * 10**6)
    (update,) = parse_events(adapter, frame, NS)
    assert isinstance(update, BookUpdate)
    assert update.bids == ((18906.0, 0.00331),) and update.asks == ((18907.0, 0.0),)


def test_spot_trade_ticker_and_candle() -> None:
    adapter = KucoinAdapter()
    match = {
        "sequence": "1545896669147", "type": "match", "symbol": "BTC-USDT", "side": "sell",
        "price": "0.082", "size": "0.0102", "tradeId": "5c24c5da03aa673885cd67aa",
        "takerOrderId": "5c24c5d903aa6772d55b371e", "makerOrderId": "5c2187d003aa677bd09d5c93",
        "time": "1545913818099033203",
    }  # fmt: skip
    frame = {"type": "message", "topic": "/market/match:BTC-USDT", "subject": "trade.l3match", "data": match}
    (trade,) = adapter.parse(json.dumps(frame), NS)
    assert trade == Trade("kucoin", "BTC-USDT", 0.082, 0.0102, Side.SELL, "5c24c5da03aa673885cd67aa",
                          1545913818099033203, NS, 1545896669147)  # fmt: skip
    ticker = {
        "sequence": "1545896668986", "price": "0.08", "size": "0.011", "bestAsk": "0.08",
        "bestAskSize": "0.18", "bestBid": "0.049", "bestBidSize": "0.036", "time": 1704873323416,
    }  # fmt: skip
    frame = {"type": "message", "topic": "/market/ticker:BTC-USDT", "subject": "trade.ticker", "data": ticker}
    (quote,) = adapter.parse(json.dumps(frame), NS)
    assert quote == Quote("kucoin", "BTC-USDT", 0.049, 0.036, 0.08, 0.18, 1704873323416 * 10**6, NS, 1545896668986)
    data = {"symbol": "BTC-USDT", "candles": ["1589968800", "9786.9", "9740.8", "9806.1", "9732", "27.45", "268280"],
            "time": 1589970010253893337}  # fmt: skip
    frame = {
        "type": "message",
        "topic": "/market/candles:BTC-USDT_1min",
        "subject": "trade.candles.update",
        "data": data,
    }
    (candle,) = adapter.parse(json.dumps(frame), NS)
    assert candle == Candle("kucoin", "BTC-USDT", "1m", 1589968800 * 10**9, 9786.9, 9806.1, 9732.0, 9740.8, 27.45,
                            False, 1589970010253893337, NS)  # fmt: skip


def test_spot_snapshot_body_and_errors() -> None:
    adapter = KucoinAdapter()
    request = adapter.snapshot_request("BTC-USDT")
    assert request is not None
    assert request.url == "https://api.kucoin.com/api/v1/market/orderbook/level2_100"
    assert request.params == (("symbol", "BTC-USDT"),)
    body = b'{"code":"200000","data":{"time":1550653727731,"sequence":"16","bids":[["6500.12","0.45"]],"asks":[["6500.16","0.57"]]}}'  # noqa: E501
    snap = adapter.parse_snapshot("BTC-USDT", body, NS)
    assert (snap.seq, snap.bids, snap.asks, snap.ts) == (
        16,
        ((6500.12, 0.45),),
        ((6500.16, 0.57),),
        1550653727731 * 10**6,
    )
    with pytest.raises(RemoteError, match="400100"):
        adapter.parse_snapshot("BTC-USDT", b'{"code":"400100","msg":"symbol not exists"}', NS)
    with pytest.raises(MalformedMessage):
        adapter.parse_snapshot("BTC-USDT", b'{"code":"200000","data":{"bids":[]}}', NS)


def test_spot_instruments() -> None:
    body = json.dumps({"code": "200000", "data": [
        {"symbol": "BTC-USDT", "baseCurrency": "BTC", "quoteCurrency": "USDT", "priceIncrement": "0.1",
         "baseIncrement": "0.00000001", "enableTrading": True},
        {"symbol": "OLD-USDT", "baseCurrency": "OLD", "quoteCurrency": "USDT", "priceIncrement": "0.1",
         "baseIncrement": "1", "enableTrading": False},
        {"symbol": "1INCH-USDT", "baseCurrency": "1inch", "quoteCurrency": "USDT", "priceIncrement": "0.1",
         "baseIncrement": "1", "enableTrading": True},
    ]}).encode()  # fmt: skip
    adapter = KucoinAdapter()
    assert adapter.instruments_request().url == "https://api.kucoin.com/api/v2/symbols"  # type: ignore[union-attr]
    assert adapter.parse_instruments(body) == [Instrument("kucoin", "BTC-USDT", "BTC-USDT", "spot", 0.1, 1e-08)]


# --- spot book rule, through the Feed ---------------------------------------------------------


def spot_feed() -> tuple[Feed, list[object], KucoinAdapter]:
    adapter = KucoinAdapter()
    events: list[object] = []
    feed = Feed(adapter, events.append)
    feed.add_book(book_subs("kucoin", "BTC-USDT")[0])
    return feed, events, adapter


SNAP = b'{"code":"200000","data":{"time":1,"sequence":"100","bids":[["10","1"],["9","2"]],"asks":[["11","1"]]}}'


def test_spot_rule_and_integrity() -> None:
    rule = KucoinAdapter().book_rule("BTC-USDT")
    assert (rule.snapshot, rule.continuity, rule.bridge_offset) == (SnapshotSource.REST, Continuity.UPDATE_ID, 1)
    assert rule.level() is Integrity.SEQUENCE
    futures = KucoinFuturesAdapter().book_rule("BTC-USDT-PERP")
    assert (futures.snapshot, futures.continuity) == (SnapshotSource.REST, Continuity.SEQUENCE)
    assert futures.level() is Integrity.SEQUENCE


def test_spot_snapshot_bridge_straddle_and_gap() -> None:
    feed, events, _ = spot_feed()
    feed.on_frame(l2(95, 99, [["8", "1", "99"]], []), NS)  # older than the snapshot: dropped
    feed.on_frame(l2(100, 102, [["9", "5", "100"], ["10", "0", "102"]], []), NS)  # straddles 100
    (action,) = feed.take_actions()
    assert isinstance(action, FetchSnapshot)
    feed.on_snapshot_body("BTC-USDT", SNAP, NS)
    book = feed.book("BTC-USDT")
    assert book is not None and book.valid and book.seq == 102
    assert book.depth() == (((9.0, 5.0),), ((11.0, 1.0),))
    feed.on_frame(l2(103, 103, [], [["12", "3", "103"]]), NS)
    feed.on_frame(l2(103, 104, [], [["0", "0", "104"]]), NS)  # overlaps (start <= last + 1): applied
    assert book.seq == 104 and not any(isinstance(e, Gap) for e in events)
    feed.on_frame(l2(106, 106, [["9", "1", "106"]], []), NS)  # 105 is missing
    (gap,) = [e for e in events if isinstance(e, Gap)]
    assert gap.reason is GapReason.SEQUENCE and not book.valid


def test_spot_snapshot_older_than_the_buffer_is_refetched() -> None:
    feed, events, _ = spot_feed()
    feed.on_frame(l2(102, 103, [["9", "5", "103"]], []), NS)
    feed.take_actions()
    feed.on_snapshot_body("BTC-USDT", SNAP, NS)  # 100: update 101 is missing
    assert not any(isinstance(e, Resynced) for e in events)
    assert any(isinstance(a, FetchSnapshot) for a in feed.take_actions())


# --- futures -----------------------------------------------------------------------------------


def test_futures_level2_change_is_one_level() -> None:
    adapter = KucoinFuturesAdapter()
    (bid,) = parse_events(adapter, fl2(18, "5000.0,buy,83"), NS)
    assert isinstance(bid, BookUpdate)
    assert (bid.symbol, bid.seq, bid.bids, bid.asks, bid.ts) == (
        "BTC-USDT-PERP", 18, ((5000.0, 83.0),), (), 1551770400000 * 10**6,
    )  # fmt: skip
    (ask,) = parse_events(adapter, fl2(19, "5001.0,sell,0"), NS)
    assert isinstance(ask, BookUpdate) and ask.asks == ((5001.0, 0.0),) and ask.bids == ()
    with pytest.raises(MalformedMessage):
        adapter.parse(fl2(20, "5001.0,up,1"), NS)
    with pytest.raises(MalformedMessage):
        adapter.parse(fl2(20, "5001.0,sell"), NS)


def test_futures_sequence_rule_through_the_feed() -> None:
    adapter = KucoinFuturesAdapter()
    events: list[object] = []
    feed = Feed(adapter, events.append)
    feed.add_book(book_subs("kucoin-futures", "BTC-USDT-PERP")[0])
    feed.on_frame(fl2(10, "99,buy,1"), NS)
    feed.on_frame(fl2(11, "101,sell,4"), NS)
    (action,) = feed.take_actions()
    assert isinstance(action, FetchSnapshot)
    assert action.request.url == "https://api-futures.kucoin.com/api/v1/level2/snapshot"
    assert action.request.params == (("symbol", "XBTUSDTM"),)
    snap = b'{"code":"200000","data":{"symbol":"XBTUSDTM","sequence":10,"asks":[[101.0,5]],"bids":[[99.0,1]],"ts":1}}'
    feed.on_snapshot_body("BTC-USDT-PERP", snap, NS)
    book = feed.book("BTC-USDT-PERP")
    assert book is not None and book.valid and book.seq == 11 and book.depth() == (((99.0, 1.0),), ((101.0, 4.0),))
    feed.on_frame(fl2(13, "100,buy,1"), NS)
    (gap,) = [e for e in events if isinstance(e, Gap)]
    assert gap.reason is GapReason.SEQUENCE


def test_futures_trade_ticker_funding_mark_candle_and_contract_sizes() -> None:
    adapter = KucoinFuturesAdapter()
    adapter.use_instruments([Instrument("kucoin-futures", "BTC-USDT-PERP", "XBTUSDTM", "perp", 0.1, 1.0, 0.001)])
    execution = {"symbol": "XBTUSDTM", "sequence": 36, "side": "buy", "size": 1000, "price": "3600.0",
                 "takerOrderId": "5c9dd00870744d71c43f5e25", "makerOrderId": "5c9d852070744d0976909a0c",
                 "tradeId": "5c9dd00970744d6f5a3d32fc", "ts": 1553846281766256031}  # fmt: skip
    frame = {"type": "message", "topic": "/contractMarket/execution:XBTUSDTM", "subject": "match", "data": execution}
    (trade,) = adapter.parse(json.dumps(frame), NS)
    assert trade == Trade("kucoin-futures", "BTC-USDT-PERP", 3600.0, 1.0, Side.BUY, "5c9dd00970744d6f5a3d32fc",
                          1553846281766256031, NS, 36)  # fmt: skip
    ticker = {"symbol": "XBTUSDTM", "sequence": 1638, "bestBidSize": 795, "bestBidPrice": "3200.0",
              "bestAskPrice": "3600.0", "bestAskSize": 284, "ts": 1553846081210004941}  # fmt: skip
    frame = {"type": "message", "topic": "/contractMarket/tickerV2:XBTUSDTM", "subject": "tickerV2", "data": ticker}
    (quote,) = adapter.parse(json.dumps(frame), NS)
    assert quote == Quote(
        "kucoin-futures", "BTC-USDT-PERP", 3200.0, 0.795, 3600.0, 0.284, 1553846081210004941, NS, 1638
    )
    funding = {"granularity": 60000, "fundingRate": -0.002966, "timestamp": 1551770400000}
    frame = {"type": "message", "topic": "/contract/instrument:XBTUSDTM", "subject": "funding.rate", "data": funding}
    (event,) = adapter.parse(json.dumps(frame), NS)
    assert event == Funding("kucoin-futures", "BTC-USDT-PERP", -0.002966, None, None, 1551770400000 * 10**6, NS)
    mark = {"granularity": 1000, "indexPrice": 4000.23, "markPrice": 4010.52, "timestamp": 1551770400000}
    frame = {"type": "message", "topic": "/contract/instrument:XBTUSDTM", "subject": "mark.index.price", "data": mark}
    assert adapter.parse(json.dumps(frame), NS) == []
    data = {"symbol": "XBTUSDTM", "candles": ["1707232560", "42500", "42510", "42520", "42490", "2000", "85000"],
            "time": 1707232576021}  # fmt: skip
    frame = {
        "type": "message",
        "topic": "/contractMarket/limitCandle:XBTUSDTM_1min",
        "subject": "candle.stick",
        "data": data,
    }
    (candle,) = adapter.parse(json.dumps(frame), NS)
    assert isinstance(candle, Candle)
    assert (candle.start_ts, candle.volume, candle.ts) == (1707232560 * 10**9, 2.0, 1707232576021 * 10**6)
    (update,) = parse_events(adapter, fl2(5, "42500.0,buy,250"), NS)
    assert isinstance(update, BookUpdate) and update.bids == ((42500.0, 0.25),)
    with pytest.raises(MalformedMessage):  # fundingRate must be a number
        adapter.parse(json.dumps({**frame, "topic": "/contract/instrument:XBTUSDTM", "subject": "funding.rate",
                                  "data": {"fundingRate": "x"}}), NS)  # fmt: skip


def test_futures_instruments_perp_dated_and_inverse() -> None:
    body = json.dumps({"code": "200000", "data": [
        {"symbol": "XBTUSDTM", "type": "FFWCSX", "baseCurrency": "XBT", "quoteCurrency": "USDT",
         "multiplier": 0.001, "tickSize": 0.1, "lotSize": 1},
        {"symbol": "XBTUSDM", "type": "FFWCSX", "baseCurrency": "XBT", "quoteCurrency": "USD",
         "multiplier": -1, "tickSize": 0.1, "lotSize": 1},
        {"symbol": "XBTMH26", "type": "FFICSX", "baseCurrency": "XBT", "quoteCurrency": "USD",
         "multiplier": -1, "tickSize": 1, "lotSize": 1, "expireDate": 1774598400000},
    ]}).encode()  # fmt: skip
    adapter = KucoinFuturesAdapter()
    instruments = adapter.parse_instruments(body)
    # kucoin.md: multiplier is negative for inverse contracts; its magnitude is the USD face value
    assert [(i.symbol, i.native, i.kind, i.contract_size, i.inverse) for i in instruments] == [
        ("BTC-USDT-PERP", "XBTUSDTM", "perp", 0.001, False),
        ("BTC-USD-PERP", "XBTUSDM", "perp", 1.0, True),
        ("BTC-USD-20260327", "XBTMH26", "future", 1.0, True),
    ]
    adapter.use_instruments(instruments)
    assert adapter.to_native("BTC-USD-20260327") == "XBTMH26"
    (update,) = parse_events(adapter, fl2(5, "42500.0,buy,250", symbol="XBTUSDM"), NS)
    assert isinstance(update, BookUpdate) and update.bids == ((42500.0, 250 * 1.0 / 42500.0),)  # coins


def test_futures_is_inverse_flag_marks_an_inverse_contract() -> None:
    """The live endpoint also says ``isInverse``; either sign of the multiplier then reads as its face value."""
    body = json.dumps({"code": "200000", "data": [
        {"symbol": "XBTUSDM", "type": "FFWCSX", "baseCurrency": "XBT", "quoteCurrency": "USD",
         "multiplier": 10, "isInverse": True, "tickSize": 0.1, "lotSize": 1},
    ]}).encode()  # fmt: skip
    (inst,) = KucoinFuturesAdapter().parse_instruments(body)
    assert (inst.contract_size, inst.inverse) == (10.0, True)


FACE = 10.0  # USD per contract: a non-trivial face value (the real XBTUSDM is 1 USD)


def inverse_futures_adapter() -> KucoinFuturesAdapter:
    adapter = KucoinFuturesAdapter()
    adapter.use_instruments([Instrument("kucoin-futures", "BTC-USD-PERP", "XBTUSDM", "perp", 0.1, 1.0, FACE, True)])
    return adapter


def test_futures_inverse_book_in_coins_at_each_level_price() -> None:
    adapter = inverse_futures_adapter()
    snap_body = (b'{"code":"200000","data":{"symbol":"XBTUSDM","sequence":10,'
                 b'"asks":[[40001.0,500]],"bids":[[39999.5,800],[39990,0.5]],"ts":1}}')  # fmt: skip
    snap = adapter.parse_snapshot("BTC-USD-PERP", snap_body, NS)
    assert snap.bids == ((39999.5, 800 * FACE / 39999.5), (39990.0, 0.5 * FACE / 39990))
    assert snap.asks == ((40001.0, 500 * FACE / 40001.0),)
    (ask,) = parse_events(adapter, fl2(11, "40001.0,sell,250", symbol="XBTUSDM"), NS)
    assert isinstance(ask, BookUpdate) and ask.asks == ((40001.0, 250 * FACE / 40001.0),)
    (gone,) = parse_events(adapter, fl2(12, "40001.0,sell,0", symbol="XBTUSDM"), NS)
    assert isinstance(gone, BookUpdate) and gone.asks == ((40001.0, 0.0),)
    # a linear contract without a known multiplier still reports its text unchanged
    (linear,) = parse_events(adapter, fl2(5, "5000.0,buy,83"), NS)
    assert isinstance(linear, BookUpdate) and linear.bids == ((5000.0, 83.0),)


def test_futures_inverse_trade_and_quote_in_coins_candle_volume_in_contracts() -> None:
    adapter = inverse_futures_adapter()
    execution = {"symbol": "XBTUSDM", "sequence": 36, "side": "sell", "size": 1000, "price": "40000.0",
                 "tradeId": "5c9dd00970744d6f5a3d32fc", "ts": 1553846281766256031}  # fmt: skip
    frame = {"type": "message", "topic": "/contractMarket/execution:XBTUSDM", "subject": "match", "data": execution}
    (trade,) = adapter.parse(json.dumps(frame), NS)
    assert isinstance(trade, Trade) and trade.size == 1000 * FACE / 40000.0 == 0.25
    ticker = {"symbol": "XBTUSDM", "sequence": 1638, "bestBidSize": 795, "bestBidPrice": "39999.5",
              "bestAskPrice": "40001.0", "bestAskSize": 284, "ts": 1553846081210004941}  # fmt: skip
    frame = {"type": "message", "topic": "/contractMarket/tickerV2:XBTUSDM", "subject": "tickerV2", "data": ticker}
    (quote,) = adapter.parse(json.dumps(frame), NS)
    assert isinstance(quote, Quote)
    assert (quote.bid_size, quote.ask_size) == (795 * FACE / 39999.5, 284 * FACE / 40001.0)
    data = {"symbol": "XBTUSDM", "candles": ["1707232560", "40000", "40010", "40020", "39990", "2000", "0.5"],
            "time": 1707232576021}  # fmt: skip
    frame = {"type": "message", "topic": "/contractMarket/limitCandle:XBTUSDM_1min", "subject": "candle.stick",
             "data": data}  # fmt: skip
    (candle,) = adapter.parse(json.dumps(frame), NS)
    assert isinstance(candle, Candle) and candle.volume == 2000.0  # many prices in one candle: contracts


def test_futures_frames_of_unknown_contracts_are_malformed() -> None:
    with pytest.raises(MalformedMessage, match="unknown symbol"):
        KucoinFuturesAdapter().parse(fl2(1, "1,buy,1", symbol="NOTAPERP"), NS)
