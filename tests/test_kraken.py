"""Kraken spot adapters (v2 ``kraken`` and v1 ``kraken-v1``) on hand-written frames.

Frames follow the shapes in shared/exchanges/kraken-spot.md ("v1 protocol",
"v2 protocol", "Examples"). Expected checksums are computed here from the
checksum string written out by hand, independently of wsmux.book.checksum.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import pytest

from wsmux import exchanges
from wsmux.book import BookSync, Continuity, SnapshotSource, Verdict
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownSymbol,
)
from wsmux.exchanges.kraken import (
    KrakenAdapter,
    KrakenV1Adapter,
    book_depth,
    kraken_book_checksum,
)
from wsmux.model import BookSnapshot, BookUpdate, Candle, Channel, Quote, Side, Trade
from wsmux.subscriptions import Subscription, book, candles, l3, quotes, trades
from wsmux.testing import parse_events

RECV = 1_700_000_000_123_456_789


def ns(*date: int, micros: int = 0) -> int:
    whole = int(datetime(*date, tzinfo=UTC).timestamp())  # type: ignore[misc]
    return whole * 1_000_000_000 + micros * 1000


def crc(text: str) -> int:
    return zlib.crc32(text.encode())


# --- registry, symbols, depths -------------------------------------------------------


def test_registry_finds_both_adapters() -> None:
    assert exchanges.get("kraken") is KrakenAdapter
    assert exchanges.get("kraken-v1") is KrakenV1Adapter
    assert KrakenAdapter.default_url == "wss://ws.kraken.com/v2"
    assert KrakenV1Adapter.default_url == "wss://ws.kraken.com"


def test_symbols() -> None:
    v2, v1 = KrakenAdapter(), KrakenV1Adapter()
    assert v2.to_native("BTC-USD") == "BTC/USD"
    assert v2.to_native("DOGE-USD") == "DOGE/USD"
    assert v1.to_native("BTC-USD") == "XBT/USD"
    assert v1.to_native("DOGE-EUR") == "XDG/EUR"
    assert v1.to_native("KSM-BTC") == "KSM/XBT"
    assert v1.to_native("ETH-CHF") == "ETH/CHF"
    for adapter in (v1, v2):
        with pytest.raises(UnknownSymbol):
            adapter.to_native("BTC-USD-PERP")
        with pytest.raises(UnknownSymbol):
            adapter.to_native("BTC-USD-20250627")
        with pytest.raises(UnknownSymbol):
            adapter.to_native("btc/usd")


def test_book_depth_rounds_up_to_a_kraken_depth() -> None:
    assert book_depth(None) == 1000
    assert [book_depth(d) for d in (1, 10, 11, 25, 26, 100, 101, 500, 501, 1000)] == [
        10,
        10,
        25,
        25,
        100,
        100,
        500,
        500,
        1000,
        1000,
    ]
    with pytest.raises(ConfigError):
        book_depth(1001)


def test_check_rejects_what_kraken_cannot_serve() -> None:
    adapter = KrakenAdapter()
    adapter.check(book("kraken", "BTC-USD", depth=10)[0])
    with pytest.raises(ConfigError):
        adapter.check(book("kraken", "BTC-USD", depth=5000)[0])
    with pytest.raises(UnknownChannel):
        adapter.check(l3("kraken", "BTC-USD")[0])
    with pytest.raises(UnknownSymbol):
        adapter.check(trades("kraken", "BTC-USD-PERP")[0])


def test_book_rule() -> None:
    adapter = KrakenAdapter()
    rule = adapter.book_rule_for(book("kraken", "BTC-USD", depth=25)[0])
    assert rule.snapshot is SnapshotSource.STREAM
    assert rule.continuity is Continuity.NONE
    assert rule.depth == 25
    assert rule.keep_text is True
    assert rule.checksum is kraken_book_checksum
    assert adapter.book_rule("BTC-USD").depth == 25
    assert adapter.book_rule("ETH-USD").depth == 1000  # not subscribed: full depth


# --- v2: outgoing ---------------------------------------------------------------------


def test_v2_subscribe_messages() -> None:
    adapter = KrakenAdapter()
    out = adapter.subscribe(
        [
            *book("kraken", "BTC-USD", "ETH-USD", depth=10),
            *book("kraken", "SOL-USD"),
            *trades("kraken", "BTC-USD"),
            *quotes("kraken", "BTC-USD"),
        ]
    )
    assert [json.loads(m) for m in out] == [
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 10, "snapshot": True},
            "req_id": 1,
        },
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": ["SOL/USD"], "depth": 1000, "snapshot": True},
            "req_id": 2,
        },
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": False}, "req_id": 3},
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo", "snapshot": True},
            "req_id": 4,
        },
    ]
    assert adapter.book_rule("BTC-USD").depth == 10
    assert adapter.book_rule("SOL-USD").depth == 1000


def test_v2_unsubscribe_and_resync_messages() -> None:
    adapter = KrakenAdapter()
    sub = book("kraken", "BTC-USD", depth=100)[0]
    assert [json.loads(m) for m in adapter.resync_messages(sub)] == [
        {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 100}, "req_id": 1},
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 100, "snapshot": True},
            "req_id": 2,
        },
    ]
    adapter.reset()
    assert json.loads(adapter.subscribe(trades("kraken", "BTC-USD"))[0])["req_id"] == 1


def test_v2_at_most_20_pairs_per_message() -> None:
    adapter = KrakenAdapter()
    symbols = [f"A{i}-USD" for i in range(45)]
    out = adapter.subscribe(trades("kraken", *symbols))
    assert [len(json.loads(m)["params"]["symbol"]) for m in out] == [20, 20, 5]


def test_v2_heartbeat_rule() -> None:
    hb = KrakenAdapter.heartbeat
    assert json.loads(hb.ping_message or "") == {"method": "ping"}
    assert hb.ping_interval < 60  # the sheet: ping if idle for less than ~60 s


# --- v2: parsing ------------------------------------------------------------------------

V2_SNAPSHOT = (
    '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD",'
    '"bids":[{"price":45283.5,"qty":0.10000000},{"price":45283.4,"qty":1.54582015}],'
    '"asks":[{"price":45285.2,"qty":0.00100000},{"price":45286.4,"qty":1.54571953}],'
    '"checksum":CHECKSUM}]}'
)
# asks first (low to high), then bids (high to low); "." and leading zeros removed.
V2_SNAPSHOT_STRING = "452852100000" + "452864154571953" + "452835" + "10000000" + "452834154582015"


def v2_snapshot() -> str:
    return V2_SNAPSHOT.replace("CHECKSUM", str(crc(V2_SNAPSHOT_STRING)))


def test_v2_book_snapshot_keeps_the_venue_text() -> None:
    adapter = KrakenAdapter()
    (event,) = adapter.parse(v2_snapshot(), RECV)
    assert event == BookSnapshot(
        "kraken",
        "BTC-USD",
        bids=((45283.5, 0.1), (45283.4, 1.54582015)),
        asks=((45285.2, 0.001), (45286.4, 1.54571953)),
        ts=None,
        recv_ns=RECV,
        seq=None,
        checksum=crc(V2_SNAPSHOT_STRING),
        bids_text=(("45283.5", "0.10000000"), ("45283.4", "1.54582015")),
        asks_text=(("45285.2", "0.00100000"), ("45286.4", "1.54571953")),
    )


def test_v2_book_update_from_the_sheet() -> None:
    frame = (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,'
        '"qty":0.10000000}],"asks":[],"checksum":3310070434,"timestamp":"2024-05-01T12:00:00.123456Z"}]}'
    )
    (event,) = KrakenAdapter().parse(frame, RECV)
    assert event == BookUpdate(
        "kraken",
        "BTC-USD",
        bids=((45283.5, 0.1),),
        asks=(),
        ts=ns(2024, 5, 1, 12, micros=123456),
        recv_ns=RECV,
        checksum=3310070434,
        bids_text=(("45283.5", "0.10000000"),),
        asks_text=(),
    )


def test_v2_text_is_paired_in_document_order() -> None:
    # asks before bids, qty before price, a delete written as 0, odd whitespace, bytes.
    frame = (
        b'{"channel":"book","type":"update","data":[{"symbol":"ETH/USD","asks":[{"qty":0,"price":3001.50}],'
        b'"bids":[{"qty" : 2.000, "price" : 2999.10},{"price":2999.00,"qty":987654321.98765432}],'
        b'"checksum":7,"timestamp":"2024-05-01T12:00:00Z"}]}'
    )
    (event,) = KrakenAdapter().parse(frame, RECV)
    assert isinstance(event, BookUpdate)
    assert event.asks_text == (("3001.50", "0"),)
    assert event.bids_text == (("2999.10", "2.000"), ("2999.00", "987654321.98765432"))
    assert event.asks == ((3001.5, 0.0),)
    assert event.ts == ns(2024, 5, 1, 12)
    # The 17-digit quantity is why the text is kept: the float cannot give it back.
    assert f"{event.bids[1][1]:.8f}" != "987654321.98765432"


def test_v2_several_symbols_in_one_message() -> None:
    frame = (
        '{"channel":"book","type":"update","data":['
        '{"symbol":"BTC/USD","bids":[{"price":1.5,"qty":2.50}],"asks":[],"checksum":1},'
        '{"symbol":"ETH/USD","bids":[],"asks":[{"price":3.25,"qty":4.0}],"checksum":2}]}'
    )
    a, b = KrakenAdapter().parse(frame, RECV)
    assert isinstance(a, BookUpdate) and isinstance(b, BookUpdate)
    assert (a.symbol, a.bids_text, a.checksum) == ("BTC-USD", (("1.5", "2.50"),), 1)
    assert (b.symbol, b.asks_text, b.checksum) == ("ETH-USD", (("3.25", "4.0"),), 2)


def test_v2_trade_from_the_sheet() -> None:
    frame = (
        '{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,'
        '"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}'
    )
    assert KrakenAdapter().parse(frame, RECV) == [
        Trade(
            "kraken",
            "MATIC-USD",
            0.5117,
            40.0,
            Side.SELL,
            "4665906",
            ns(2023, 9, 25, 7, 49, 37, micros=708706),
            RECV,
        )
    ]


def test_v2_trade_snapshot_is_history_and_dropped() -> None:
    frame = (
        '{"channel":"trade","type":"snapshot","data":[{"symbol":"BTC/USD","side":"buy","price":1.0,'
        '"qty":1.0,"ord_type":"limit","trade_id":1,"timestamp":"2023-09-25T07:49:37.708706Z"}]}'
    )
    assert KrakenAdapter().parse(frame, RECV) == []


def test_v2_ticker_is_a_quote() -> None:
    frame = (
        '{"channel":"ticker","type":"update","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,'
        '"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,'
        '"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17,'
        '"timestamp":"2025-01-02T03:04:05.000001Z"}]}'
    )
    assert KrakenAdapter().parse(frame, RECV) == [
        Quote("kraken", "ALGO-USD", 0.10025, 740.0, 0.10036, 1361.44813783, ns(2025, 1, 2, 3, 4, 5, micros=1), RECV)
    ]
    no_time = frame.replace(',"timestamp":"2025-01-02T03:04:05.000001Z"', "")
    (quote,) = KrakenAdapter().parse(no_time, RECV)
    assert isinstance(quote, Quote) and quote.ts is None


@pytest.mark.parametrize(
    "frame",
    [
        '{"channel":"heartbeat"}',
        '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",'
        '"api_version":"v2","connection_id":12393906104898154338}]}',
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},'
        '"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}',
        '{"method":"unsubscribe","result":{"channel":"book","depth":10,"symbol":"BTC/USD"},"success":true,'
        '"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z","req_id":3}',
        '{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z",'
        '"time_out":"2023-09-24T14:10:23.799703Z"}',
    ],
)
def test_v2_control_frames_give_no_events(frame: str) -> None:
    assert KrakenAdapter().parse(frame, RECV) == []


def test_v2_subscription_error_is_rejected() -> None:
    frame = (
        '{"error":"Currency pair not supported ABC/USD","method":"subscribe","success":false,'
        '"symbol":"ABC/USD","time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}'
    )
    with pytest.raises(SubscriptionRejected, match="ABC/USD"):
        KrakenAdapter().parse(frame, RECV)


def test_v2_other_errors_are_remote_errors() -> None:
    with pytest.raises(RemoteError, match="Exceeded msg rate") as info:
        KrakenAdapter().parse('{"method":"ping","success":false,"error":"Exceeded msg rate"}', RECV)
    assert not isinstance(info.value, SubscriptionRejected)
    with pytest.raises(RemoteError, match="boom"):
        KrakenAdapter().parse('{"error":"boom"}', RECV)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1,2,3]", "unknown message type"),
        ('{"channel":"level9","type":"update","data":[]}', "unknown message type"),
        ('{"channel":7}', "unknown message type"),
        ('{"something":"else"}', "unknown message type"),
        ('{"method":"teleport","success":true}', "unknown message type"),
        ('{"channel":"book","type":"delta","data":[]}', "unknown message type"),
        ('{"channel":"book","type":"update"}', "bad kraken book"),
        ('{"channel":"book","type":"update","data":[{"bids":[],"asks":[]}]}', "bad kraken book"),
        ('{"channel":"book","type":"update","data":[{"symbol":"BTCUSD","bids":[],"asks":[]}]}', "bad kraken book"),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.0}],"asks":[]}]}',
            "bad kraken book",
        ),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":"x","qty":1.0}],'
            '"asks":[]}]}',
            "bad kraken book",
        ),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":"12"}]}',
            "bad kraken book",
        ),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],'
            '"timestamp":"yesterday"}]}',
            "bad kraken book",
        ),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],'
            '"timestamp":"2024-13-01T00:00:00Z"}]}',
            "bad kraken book",
        ),
        ('{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","price":1.0}]}', "bad kraken trade"),
        (
            '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":"1.0","qty":1.0,'
            '"trade_id":1,"timestamp":"2023-09-25T07:49:37Z"}]}',
            "bad kraken trade",
        ),
        ('{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":1.0}]}', "bad kraken ticker"),
        ('{"channel":"ticker","type":"weird","data":[]}', "unknown message type"),
    ],
)
def test_v2_malformed_frames(frame: str, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        KrakenAdapter().parse(frame, RECV)


def test_v2_text_that_does_not_match_the_number_is_malformed() -> None:
    # A "price" key hidden in the symbol would shift the scan: caught, never misapplied.
    frame = (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","note":{"price":9.0,"qty":9.0},'
        '"bids":[{"price":1.5,"qty":2.5}],"asks":[],"checksum":1}]}'
    )
    with pytest.raises(MalformedMessage):
        KrakenAdapter().parse(frame, RECV)


# --- v1: outgoing --------------------------------------------------------------------------


def test_v1_subscribe_messages() -> None:
    adapter = KrakenV1Adapter()
    out = adapter.subscribe(
        [
            *book("kraken-v1", "BTC-USD", "ETH-USD", depth=1000),
            *trades("kraken-v1", "BTC-USD"),
            *quotes("kraken-v1", "DOGE-USD"),
        ]
    )
    assert [json.loads(m) for m in out] == [
        {"event": "subscribe", "pair": ["XBT/USD", "ETH/USD"], "subscription": {"name": "book", "depth": 1000}},
        {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "trade"}},
        {"event": "subscribe", "pair": ["XDG/USD"], "subscription": {"name": "spread"}},
    ]
    assert [json.loads(m) for m in adapter.unsubscribe(book("kraken-v1", "BTC-USD", depth=10))] == [
        {"event": "unsubscribe", "pair": ["XBT/USD"], "subscription": {"name": "book", "depth": 10}},
    ]
    assert json.loads(KrakenV1Adapter.heartbeat.ping_message or "") == {"event": "ping"}


# --- v1: parsing ---------------------------------------------------------------------------


def test_v1_snapshot() -> None:
    frame = (
        '[1360,{"as":[["0.000022900","13355.87450757","1618678123.481570"],'
        '["0.000022910","15283.79025460","1618678132.136369"]],'
        '"bs":[["0.000022880","500.00000000","1618678120.100000"]]},"book-1000","OCEAN/XBT"]'
    )
    (event,) = parse_events(KrakenV1Adapter(), frame, RECV)
    assert event == BookSnapshot(
        "kraken-v1",
        "OCEAN-BTC",
        bids=((0.00002288, 500.0),),
        asks=((0.0000229, 13355.87450757), (0.00002291, 15283.7902546)),
        ts=1618678132_136369000,
        recv_ns=RECV,
        bids_text=(("0.000022880", "500.00000000"),),
        asks_text=(("0.000022900", "13355.87450757"), ("0.000022910", "15283.79025460")),
    )


def test_v1_update_with_two_dicts_from_the_sheet() -> None:
    frame = (
        '[1920,{"a":[["0.042990","364630.28272081","1618678145.920470"]]},'
        '{"b":[["0.042990","0.00000000","1618678145.920708"]],"c":"4105471083"},"book-1000","SC/EUR"]'
    )
    (event,) = parse_events(KrakenV1Adapter(), frame, RECV)
    assert event == BookUpdate(
        "kraken-v1",
        "SC-EUR",
        bids=((0.04299, 0.0),),
        asks=((0.04299, 364630.28272081),),
        ts=1618678145_920708000,
        recv_ns=RECV,
        checksum=4105471083,
        bids_text=(("0.042990", "0.00000000"),),
        asks_text=(("0.042990", "364630.28272081"),),
    )


def test_v1_republish_flag_is_a_plain_level() -> None:
    frame = (
        '[0,{"a":[["5541.30000","0.00000000","1534614335.345903"],'
        '["5541.90000","0.40000000","1534614335.345913","r"]],"c":"123"},"book-10","XBT/USD"]'
    )
    (event,) = parse_events(KrakenV1Adapter(), frame, RECV)
    assert isinstance(event, BookUpdate)
    assert event.symbol == "BTC-USD"
    assert event.asks == ((5541.3, 0.0), (5541.9, 0.4))
    assert event.asks_text == (("5541.30000", "0.00000000"), ("5541.90000", "0.40000000"))
    assert event.checksum == 123
    assert event.ts == 1534614335_345913000


def test_v1_update_without_checksum() -> None:
    frame = '[0,{"b":[["1.0","2.0","1534614335.5"]]},"book-10","XBT/USD"]'
    (event,) = parse_events(KrakenV1Adapter(), frame, RECV)
    assert isinstance(event, BookUpdate) and event.checksum is None and event.ts == 1534614335_500000000


def test_v1_trade_from_the_sheet() -> None:
    frame = '[993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]'
    assert parse_events(KrakenV1Adapter(), frame, RECV) == [
        Trade("kraken-v1", "XMR-USD", 354.11, 0.89594024, Side.SELL, None, 1618678142_557535000, RECV)
    ]
    two = '[1,[["1.5","2","1618678142.1","b","m",""],["1.6","3","1618678142.25","s","l",""]],"trade","XBT/USD"]'
    a, b = parse_events(KrakenV1Adapter(), two, RECV)
    assert a == Trade("kraken-v1", "BTC-USD", 1.5, 2.0, Side.BUY, None, 1618678142_100000000, RECV)
    assert b == Trade("kraken-v1", "BTC-USD", 1.6, 3.0, Side.SELL, None, 1618678142_250000000, RECV)


def test_v1_ticker_and_spread_are_quotes() -> None:
    ticker = (
        '[1668,{"a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"],'
        '"c":["13.253900","3.71672000"],"v":["26560.85364463","72035.05488104"],'
        '"p":["13.529003","13.734728"],"t":[640,1353],"l":["13.021800","13.021800"],'
        '"h":["13.942000","14.211200"],"o":["13.804000","13.428300"]},"ticker","WAVES/EUR"]'
    )
    assert parse_events(KrakenV1Adapter(), ticker, RECV) == [
        Quote("kraken-v1", "WAVES-EUR", 13.2329, 185.18432037, 13.2539, 35.72892241, None, RECV)
    ]
    spread = '[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],"spread","XBT/USD"]'
    assert parse_events(KrakenV1Adapter(), spread, RECV) == [
        Quote("kraken-v1", "BTC-USD", 5698.4, 1.01234567, 5700.0, 0.98765432, 1542057299_545897000, RECV)
    ]


@pytest.mark.parametrize(
    "frame",
    [
        '{"event":"heartbeat"}',
        '{"event":"pong","reqid":42}',
        '{"connectionID":18239578009413566319,"event":"systemStatus","status":"online","version":"1.8.3"}',
        '{"channelID":992,"channelName":"book-1000","event":"subscriptionStatus","pair":"XMR/USD",'
        '"status":"subscribed","subscription":{"depth":1000,"name":"book"}}',
        '{"channelID":992,"channelName":"book-1000","event":"subscriptionStatus","pair":"XMR/USD",'
        '"status":"unsubscribed","subscription":{"depth":1000,"name":"book"}}',
    ],
)
def test_v1_control_frames_give_no_events(frame: str) -> None:
    assert parse_events(KrakenV1Adapter(), frame, RECV) == []


def test_v1_errors() -> None:
    rejected = (
        '{"errorMessage":"Currency pair not in ISO 4217-A3 format foo","event":"subscriptionStatus",'
        '"pair":"foo","status":"error","subscription":{"name":"ticker"}}'
    )
    with pytest.raises(SubscriptionRejected, match="ticker foo: Currency pair not in ISO"):
        parse_events(KrakenV1Adapter(), rejected, RECV)
    with pytest.raises(RemoteError, match="Exceeded msg rate"):
        parse_events(KrakenV1Adapter(), '{"event":"error","errorMessage":"Exceeded msg rate"}', RECV)


@pytest.mark.parametrize(
    "frame",
    [
        "[1,2",
        "42",
        '"text"',
        "[]",
        '[1,{"a":[]},7,"XBT/USD"]',
        '[1,{"a":[]},"ohlc-5","XBT/USD"]',
        '{"event":"bogus"}',
        '{"event":"subscriptionStatus","status":"maybe"}',
        '{"event":"subscriptionStatus"}',
        '[1,{"a":[["1.0","2.0"]]},"book-10","XBT/USD"]',
        '[1,{"a":[[1.0,2.0,"1.0"]]},"book-10","XBT/USD"]',
        '[1,{"a":[["x","2.0","1.0"]]},"book-10","XBT/USD"]',
        '[1,{"a":[["1.0","2.0","1.0"]],"c":"abc"},"book-10","XBT/USD"]',
        '[1,{"z":[]},"book-10","XBT/USD"]',
        '[1,{"a":[["1.0","2.0","-5"]]},"book-10","XBT/USD"]',
        '[1,{"a":[["1.0","2.0","1.0"]]},"book-10","XBTUSD"]',
        '[1,[["1.0","2.0","nope","s","l",""]],"trade","XBT/USD"]',
        '[1,[["1.0"]],"trade","XBT/USD"]',
        '[1,["1.0","2.0"],"spread","XBT/USD"]',
        '[1,{"a":["1.0"]},"ticker","XBT/USD"]',
    ],
)
def test_v1_malformed_frames(frame: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_events(KrakenV1Adapter(), frame, RECV)


def test_v1_unknown_pairs_map_by_kraken_convention() -> None:
    adapter = KrakenV1Adapter()
    frame = '[1,[["1.0","2.0","1.0","b","l",""]],"trade","XDG/XBT"]'
    (trade,) = adapter.parse(frame, RECV)
    assert isinstance(trade, Trade) and trade.symbol == "DOGE-BTC"


# --- the book rule through BookSync ---------------------------------------------------------


def v2_sync(depth: int = 10) -> tuple[KrakenAdapter, BookSync]:
    adapter = KrakenAdapter()
    return adapter, BookSync(adapter.book_rule_for(Subscription("kraken", Channel.BOOK, "BTC-USD", depth)))


def v2_update(bids: str, asks: str, checksum: int) -> str:
    return (
        f'{{"channel":"book","type":"update","data":[{{"symbol":"BTC/USD","bids":[{bids}],"asks":[{asks}],'
        f'"checksum":{checksum},"timestamp":"2024-05-01T12:00:00.5Z"}}]}}'
    )


def test_sync_updates_before_the_snapshot_are_ignored() -> None:
    adapter, sync = v2_sync()
    (update,) = adapter.parse(v2_update('{"price":45283.5,"qty":1.0}', "", 1), RECV)
    assert sync.on_update(update) is Verdict.IGNORED  # type: ignore[arg-type]


def test_sync_snapshot_and_update_checksums_verified() -> None:
    adapter, sync = v2_sync()
    (snap,) = adapter.parse(v2_snapshot(), RECV)
    assert sync.on_snapshot(snap) is Verdict.SYNCED  # type: ignore[arg-type]
    assert sync.stats.checksums_ok == 1
    # Delete the best ask; change the best bid to a value with trailing zeros.
    expected = "452864154571953" + "452835" + "250000000" + "452834154582015"
    frame = v2_update('{"price":45283.5,"qty":2.50000000}', '{"price":45285.2,"qty":0}', crc(expected))
    (update,) = adapter.parse(frame, RECV)
    assert sync.on_update(update) is Verdict.APPLIED  # type: ignore[arg-type]
    assert sync.stats.checksums_ok == 2
    assert sync.book.depth() == (((45283.5, 2.5), (45283.4, 1.54582015)), ((45286.4, 1.54571953),))
    assert sync.book.ts == ns(2024, 5, 1, 12, micros=500000)


def test_sync_checksum_mismatch_breaks_the_book() -> None:
    adapter, sync = v2_sync()
    (snap,) = adapter.parse(v2_snapshot(), RECV)
    sync.on_snapshot(snap)  # type: ignore[arg-type]
    (update,) = adapter.parse(v2_update('{"price":45283.5,"qty":2.0}', "", 12345), RECV)
    assert sync.on_update(update) is Verdict.CHECKSUM  # type: ignore[arg-type]
    assert not sync.book.valid and len(sync.book) == 0
    assert sync.expected == 12345


def test_sync_snapshot_with_a_wrong_checksum_is_rejected() -> None:
    adapter, sync = v2_sync()
    (snap,) = adapter.parse(V2_SNAPSHOT.replace("CHECKSUM", "99"), RECV)
    assert sync.on_snapshot(snap) is Verdict.CHECKSUM  # type: ignore[arg-type]


def test_sync_crossed_update_breaks_the_book() -> None:
    adapter, sync = v2_sync()
    (snap,) = adapter.parse(v2_snapshot(), RECV)
    sync.on_snapshot(snap)  # type: ignore[arg-type]
    (update,) = adapter.parse(v2_update('{"price":45290.0,"qty":1.0}', "", 1), RECV)
    assert sync.on_update(update) is Verdict.CROSSED  # type: ignore[arg-type]


def test_sync_truncates_to_the_subscribed_depth_before_the_checksum() -> None:
    # Depth 10: an 11th bid inserted at the top pushes the worst one out without a delete.
    adapter, sync = v2_sync(depth=10)
    bids = [(f"{100 - i}.0", "1.00") for i in range(10)]
    asks = [(f"{200 + i}.0", "2.00") for i in range(10)]

    def levels(side: list[tuple[str, str]]) -> str:
        return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side)

    def string(b: list[tuple[str, str]], a: list[tuple[str, str]]) -> str:
        return "".join(p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0") for p, q in a + b)

    snapshot = (
        f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"BTC/USD","bids":[{levels(bids)}],'
        f'"asks":[{levels(asks)}],"checksum":{crc(string(bids, asks))}}}]}}'
    )
    (snap,) = adapter.parse(snapshot, RECV)
    assert sync.on_snapshot(snap) is Verdict.SYNCED  # type: ignore[arg-type]
    new_bids = [("100.5", "3.00"), *bids[:9]]
    (update,) = adapter.parse(v2_update('{"price":100.5,"qty":3.00}', "", crc(string(new_bids, asks))), RECV)
    assert sync.on_update(update) is Verdict.APPLIED  # type: ignore[arg-type]
    assert len(sync.book.depth()[0]) == 10
    assert sync.book.depth()[0][-1] == (92.0, 1.0)
    sync.book._check()


def test_sync_v1_update_applies_both_dicts_then_checks() -> None:
    adapter = KrakenV1Adapter()
    sync = BookSync(adapter.book_rule_for(Subscription("kraken-v1", Channel.BOOK, "SC-EUR", 1000)))
    snapshot = (
        '[1920,{"as":[["0.043000","10.00000000","1618678140.000000"]],'
        '"bs":[["0.042990","5.00000000","1618678140.000000"],["0.042980","7.50000000","1618678140.000000"]]},'
        '"book-1000","SC/EUR"]'
    )
    (snap,) = adapter.parse(snapshot, RECV)
    assert snap.checksum is None  # type: ignore[attr-defined]
    assert sync.on_snapshot(snap) is Verdict.SYNCED  # type: ignore[arg-type]
    # An ask at 0.042990 and the bid there deleted, in two dicts.
    expected = "42990" + "36463028272081" + "43000" + "1000000000" + "42980" + "750000000"
    update = (
        '[1920,{"a":[["0.042990","364630.28272081","1618678145.920470"]]},'
        f'{{"b":[["0.042990","0.00000000","1618678145.920708"]],"c":"{crc(expected)}"}},"book-1000","SC/EUR"]'
    )
    (event,) = adapter.parse(update, RECV)
    assert sync.on_update(event) is Verdict.APPLIED  # type: ignore[arg-type]
    assert sync.stats.checksums_ok == 1
    assert sync.book.best_bid() == (0.04298, 7.5)
    assert sync.book.best_ask() == (0.04299, 364630.28272081)


def test_v2_frames_with_escaped_key_names_are_the_same_json() -> None:
    """Hardening item 13: ``\\u`` escapes in key names (valid JSON) used to give
    MalformedMessage (the number-text scan did not see the keys)."""
    plain = v2_snapshot()
    escaped = plain.replace('"price"', '"\\u0070rice"').replace('"qty"', '"\\u0071ty"').replace(
        '"symbol"', '"\\u0073ymbol"'
    )
    assert escaped != plain
    assert KrakenAdapter().parse(escaped, RECV) == KrakenAdapter().parse(plain, RECV)
    update = v2_update('{"price":45283.5,"qty":1.0}', "", 1)
    assert KrakenAdapter().parse(update.replace('"qty"', '"\\u0071ty"'), RECV) == KrakenAdapter().parse(update, RECV)


# --- v1 candles (ohlc) ----------------------------------------------------------------------

OHLC = (
    '[42,["1542057314.748456","1542057360.435743","3586.70000","3586.70000","3586.60000","3586.60000",'
    '"3586.68894","0.03373000",2],"ohlc-1","XBT/USD"]'
)
"""Kraken's v1 "ohlc" example (its channel name changed to the one-minute ``ohlc-1``)."""


def test_v1_ohlc_subscription_and_v2_has_no_candles() -> None:
    assert json.loads(KrakenV1Adapter().subscribe(candles("kraken-v1", "BTC-USD"))[0]) == {
        "event": "subscribe",
        "pair": ["XBT/USD"],
        "subscription": {"name": "ohlc", "interval": 1},
    }
    with pytest.raises(UnknownChannel):
        KrakenAdapter().check(candles("kraken", "BTC-USD")[0])


def test_v1_ohlc_is_a_forming_candle() -> None:
    assert parse_events(KrakenV1Adapter(), OHLC, RECV) == [
        Candle(
            "kraken-v1", "BTC-USD", "1m", 1542057300 * 10**9, 3586.7, 3586.7, 3586.6, 3586.6, 0.03373, False,
            1542057314_748456000, RECV,
        )
    ]  # fmt: skip
    # an etime on the minute boundary ends the candle that started a minute before
    on_boundary = OHLC.replace("1542057360.435743", "1542057360.000000")
    (bar,) = parse_events(KrakenV1Adapter(), on_boundary, RECV)
    assert bar.start_ts == 1542057300 * 10**9  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"3586.70000","3586.70000"', '"3586.70000","3586.00000"'),  # high below the open
        ('"0.03373000"', '"-1"'),
        ('"1542057360.435743"', '"later"'),
        ('"1542057314.748456",', ""),  # a column missing
        ('"XBT/USD"', '"XBTUSD"'),
    ],
)
def test_v1_malformed_ohlc(old: str, new: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_events(KrakenV1Adapter(), OHLC.replace(old, new), RECV)
