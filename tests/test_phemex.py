"""PhemexAdapter: hand-written frames in the documented format
(shared/exchanges/phemex.md): scaled integers for spot and inverse
contracts, decimal text for USDT perpetuals, the MONOTONIC book rule with
snapshots that re-anchor, acks and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Funding,
    Integrity,
    MalformedMessage,
    Side,
    Subscription,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    candles,
    funding,
    open_interest,
    trades,
)
from wsmux.book import BookSync, Continuity, SnapshotSource, Verdict
from wsmux.errors import UnknownMessage, WsmuxError
from wsmux.exchanges import get
from wsmux.exchanges.phemex import BOOK_DEPTH, PhemexAdapter, phemex_symbol, phemex_unified
from wsmux.model import OpenInterest
from wsmux.testing import parse_events

RECV = 123_456_789

# phemex.md, "Examples"
INVERSE = (
    '{"book":{"asks":[[30170,42007]],"bids":[]},"depth":30,"sequence":4899654234,"symbol":"XTZUSD",'
    '"timestamp":1625342241732802237,"type":"incremental"}'
)
PERP = (
    '{"depth":30,"orderbook_p":{"asks":[["20702.9","0.718"],["20704.9","0"]],"bids":[["20700.5","1.622"]]},'
    '"sequence":77668172,"symbol":"BTCUSDT","timestamp":1666854171201355264,"type":"incremental"}'
)
PERP_TRADE = (
    '{"sequence":77702250,"symbol":"BTCUSDT","trades_p":[[1666856076819029800,"Sell","20700.3","0.649"]],'
    '"type":"incremental"}'
)


def scaled_book(kind: str, bids: list[Any], asks: list[Any], sequence: int, symbol: str = "sBTCUSDT") -> str:
    return json.dumps(
        {
            "book": {"asks": asks, "bids": bids},
            "depth": 30,
            "sequence": sequence,
            "symbol": symbol,
            "timestamp": 1_700_000_000_000_000_000,
            "type": kind,
        }
    )


def test_registry_and_symbols() -> None:
    assert get("phemex") is PhemexAdapter
    assert PhemexAdapter.default_url == "wss://phemex.com/ws"
    for unified, native in (("BTC-USDT", "sBTCUSDT"), ("BTC-USD-PERP", "BTCUSD"), ("BTC-USDT-PERP", "BTCUSDT")):
        assert phemex_symbol(unified) == native and phemex_unified(native) == unified
    for bad in ("sbtcusdt", "BTCEUR", "s", "", "XTZ-USD"):
        assert phemex_unified(bad) is None
    with pytest.raises(UnknownSymbol):
        phemex_symbol("BTC-USD-20261225")
    with pytest.raises(UnknownChannel):
        PhemexAdapter().check(Subscription("phemex", Channel.QUOTES, "BTC-USDT"))


def test_subscribe_messages_pick_the_channel_family() -> None:
    adapter = PhemexAdapter()
    subs = [*book("phemex", "BTC-USDT", "BTC-USD-PERP", "BTC-USDT-PERP"), *trades("phemex", "BTC-USDT-PERP")]
    assert [json.loads(m) for m in adapter.subscribe(subs)] == [
        {"id": 1, "method": "orderbook.subscribe", "params": ["sBTCUSDT"]},
        {"id": 2, "method": "orderbook.subscribe", "params": ["BTCUSD"]},
        {"id": 3, "method": "orderbook_p.subscribe", "params": ["BTCUSDT"]},
        {"id": 4, "method": "trade_p.subscribe", "params": ["BTCUSDT"]},
    ]
    assert json.loads(adapter.unsubscribe(subs[:1])[0])["method"] == "orderbook.unsubscribe"
    ping = PhemexAdapter.heartbeat.ping_message
    assert ping is not None and json.loads(ping)["method"] == "server.ping"
    assert PhemexAdapter.heartbeat.ping_interval < 30


def test_acks_pong_and_errors() -> None:
    adapter = PhemexAdapter()
    assert adapter.parse('{"error":null,"id":1,"result":{"status":"success"}}', RECV) == []
    assert adapter.parse('{"error":null,"id":0,"result":"pong"}', RECV) == []
    with pytest.raises(SubscriptionRejected, match="6001"):
        adapter.parse('{"error":{"code":6001,"message":"invalid argument"},"id":3,"result":null}', RECV)


@pytest.mark.parametrize(
    "frame",
    [
        "nope",
        "[]",
        '{"x":1}',
        scaled_book("incremental", [["3000000000000", 1]], [], 5),  # a scaled price as text
        scaled_book("incremental", [[3000000000000]], [], 5),
        scaled_book("incremental", [[True, 1]], [], 5),
        scaled_book("incremental", [], [], "5"),
        PERP.replace('"20702.9"', "20702.9"),  # a USDT-perp price as a number
        PERP_TRADE.replace('"Sell"', '"Short"'),
        PERP_TRADE.replace('"20700.3"', "20700.3"),
        scaled_book("incremental", [], [], 5, symbol="sbtc"),
    ],
)
def test_malformed_frames(frame: str) -> None:
    with pytest.raises(MalformedMessage):
        PhemexAdapter().parse(frame, RECV)


def test_unknown_messages_say_so() -> None:
    with pytest.raises(UnknownMessage, match="market24h"):
        PhemexAdapter().parse('{"market24h":{"symbol":"BTCUSD"},"timestamp":1}', RECV)
    with pytest.raises(UnknownMessage, match="book type"):
        PhemexAdapter().parse(scaled_book("delta", [], [], 5), RECV)


def test_no_foreign_exception_escapes() -> None:
    adapter = PhemexAdapter()
    for frame in (INVERSE, PERP, PERP_TRADE):
        for cut in range(0, len(frame), 3):
            for mutated in (frame[:cut], frame[:cut] + "null" + frame[cut + 4 :]):
                try:
                    adapter.parse(mutated, RECV)
                except WsmuxError:
                    pass


def test_inverse_incremental_from_the_sheet() -> None:
    """XTZUSD: price 30170 / 10^4 = 3.017; 42007 contracts of 1 USD = 42007 / 3.017 XTZ."""
    (update,) = parse_events(PhemexAdapter(), INVERSE, RECV)
    assert isinstance(update, BookUpdate) and update.symbol == "XTZ-USD-PERP"
    assert update.asks == ((3.017, 42007 / 3.017),) and update.bids == ()
    assert (update.seq, update.ts) == (4899654234, 1625342241732802237)


def test_price_scale_from_the_products_list() -> None:
    adapter = PhemexAdapter(rest_url="http://127.0.0.1:9")
    assert adapter.instruments_request().url == "http://127.0.0.1:9/public/products"
    body = {
        "code": 0,
        "data": {
            "products": [
                {"symbol": "XTZUSD", "type": "Perpetual", "priceScale": 2, "tickSize": "0.01", "lotSize": 1},
                {"symbol": "sBTCUSDT", "type": "Spot", "tickSize": "0.01", "lotSize": "0.000001"},
                {"symbol": "BTCUSDT", "type": "PerpetualV2", "tickSize": "0.1", "lotSize": "0.001"},
                {"symbol": "cBTCUSD", "type": "Perpetual", "priceScale": 4},
            ]
        },
    }
    got = adapter.parse_instruments(json.dumps(body).encode())
    assert [(i.symbol, i.native, i.kind, i.tick_size) for i in got] == [
        ("XTZ-USD-PERP", "XTZUSD", "perp", 0.01),
        ("BTC-USDT", "sBTCUSDT", "spot", 0.01),
        ("BTC-USDT-PERP", "BTCUSDT", "perp", 0.1),
    ]
    (update,) = parse_events(adapter, INVERSE, RECV)
    assert isinstance(update, BookUpdate) and update.asks[0][0] == 301.7  # priceScale 2 now
    for bad in (b"{", b'{"data":{}}', b'{"data":{"products":[{"symbol":"XTZUSD","priceScale":"4"}]}}'):
        with pytest.raises(MalformedMessage):
            adapter.parse_instruments(bad)


def test_a_connection_adapter_learns_the_price_scale_from_the_instruments() -> None:
    """The multiplexer parses the products list with one adapter and hands the
    instruments to each connection's adapter: the scale must travel with them."""
    body = {"code": 0, "data": {"products": [{"symbol": "XTZUSD", "type": "Perpetual", "priceScale": 2}]}}
    listed = PhemexAdapter().parse_instruments(json.dumps(body).encode())
    assert [i.price_scale for i in listed] == [2]
    live = PhemexAdapter()
    live.use_instruments(listed)
    (update,) = parse_events(live, INVERSE, RECV)
    assert isinstance(update, BookUpdate) and update.asks[0][0] == 301.7  # not 3.017 (scale 4)


def test_spot_is_scaled_by_1e8() -> None:
    frame = scaled_book("snapshot", [[3_000_050_000_000, 12_345_000]], [[3_000_100_000_000, 100_000_000]], 9)
    (snap,) = PhemexAdapter().parse(frame, RECV)
    assert isinstance(snap, BookSnapshot) and snap.symbol == "BTC-USDT"
    assert snap.bids == ((30000.5, 0.12345),) and snap.asks == ((30001.0, 1.0),) and snap.seq == 9


def test_usdt_perp_incremental_from_the_sheet() -> None:
    (update,) = parse_events(PhemexAdapter(), PERP, RECV)
    assert isinstance(update, BookUpdate) and update.symbol == "BTC-USDT-PERP"
    assert update.asks == ((20702.9, 0.718), (20704.9, 0.0)) and update.bids == ((20700.5, 1.622),)


def test_trades() -> None:
    (trade,) = PhemexAdapter().parse(PERP_TRADE, RECV)
    assert trade == Trade("phemex", "BTC-USDT-PERP", 20700.3, 0.649, Side.SELL, None, 1666856076819029800, RECV)
    history = PERP_TRADE.replace('"incremental"', '"snapshot"')
    assert PhemexAdapter().parse(history, RECV) == []
    inverse = (
        '{"sequence":1,"symbol":"BTCUSD","trades":[[1700000000000000000,"Buy",300005000,600]],"type":"incremental"}'
    )
    (trade,) = PhemexAdapter().parse(inverse, RECV)
    assert isinstance(trade, Trade) and (trade.price, trade.size, trade.side) == (30000.5, 600 / 30000.5, Side.BUY)


def test_rule_and_snapshots_re_anchor() -> None:
    adapter = PhemexAdapter()
    rule = adapter.book_rule("BTC-USDT")
    assert rule.snapshot is SnapshotSource.STREAM and rule.continuity is Continuity.MONOTONIC
    assert rule.depth == BOOK_DEPTH and rule.level() is Integrity.UNVERIFIABLE
    sync = BookSync(rule)
    frames = [
        scaled_book("snapshot", [[100 * 10**8, 10**8]], [[101 * 10**8, 10**8]], 10),
        scaled_book("incremental", [[100 * 10**8, 2 * 10**8]], [], 15),
        scaled_book("incremental", [[100 * 10**8, 9 * 10**8]], [], 12),  # older: dropped
        scaled_book("incremental", [[99 * 10**8, 10**8]], [], 15),  # same sequence: dropped
        scaled_book("snapshot", [[98 * 10**8, 10**8]], [[102 * 10**8, 10**8]], 20),  # the 60 s snapshot
    ]
    verdicts = []
    for frame in frames:
        for event in adapter.parse(frame, RECV):
            verdicts.append(sync.on_snapshot(event) if isinstance(event, BookSnapshot) else sync.on_update(event))  # type: ignore[arg-type]
        if len(verdicts) == 4:
            assert sync.book.depth() == (((100.0, 2.0),), ((101.0, 1.0),))
    assert verdicts == [Verdict.SYNCED, Verdict.APPLIED, Verdict.STALE, Verdict.STALE, Verdict.SYNCED]
    assert sync.book.depth() == (((98.0, 1.0),), ((102.0, 1.0),))


PACK_FIELDS = [
    "symbol",
    "openRp",
    "highRp",
    "lowRp",
    "lastRp",
    "volumeRq",
    "turnoverRv",
    "openInterestRv",
    "indexRp",
    "markRp",
    "fundingRateRr",
    "predFundingRateRr",
]
PACK_SNAPSHOT = {
    "data": [
        [
            "ETHUSDT",
            "1533.72",
            "1594.17",
            "1510.05",
            "1547.52",
            "545942.34",
            "848127644.5712",
            "0",
            "1548.31694379",
            "1548.44513153",
            "0.0001",
            "0.0001",
        ],
        [
            "BTCUSDT",
            "20614.5",
            "21628.4",
            "19258.6",
            "20626.3",
            "8819.819",
            "182892627.4297",
            "0",
            "20641.8167574",
            "20643.52572781",
            "0.0001",
            "0.0001",
        ],
    ],
    "fields": PACK_FIELDS,
    "method": "perp_market24h_pack_p.update",
    "timestamp": 1666862556850547000,
    "type": "snapshot",
}


def test_funding_subscribes_the_pack_once_per_connection() -> None:
    adapter = PhemexAdapter()
    (first,) = adapter.subscribe(funding("phemex", "BTC-USDT-PERP"))
    assert json.loads(first) == {"id": 1, "method": "perp_market24h_pack_p.subscribe", "params": []}
    assert adapter.subscribe(funding("phemex", "ETH-USDT-PERP")) == []
    assert adapter.unsubscribe(funding("phemex", "BTC-USDT-PERP")) == []
    (last,) = adapter.unsubscribe(funding("phemex", "ETH-USDT-PERP"))
    assert json.loads(last)["method"] == "perp_market24h_pack_p.unsubscribe"
    for symbol in ("BTC-USD-PERP", "BTC-USDT"):
        with pytest.raises(UnknownSymbol):
            adapter.check(Subscription("phemex", Channel.FUNDING, symbol))


def test_funding_from_the_pack_of_the_docs() -> None:
    adapter = PhemexAdapter()
    adapter.subscribe(funding("phemex", "BTC-USDT-PERP"))
    (fund,) = adapter.parse(json.dumps(PACK_SNAPSHOT), RECV)  # ETHUSDT is not watched
    assert fund == Funding("phemex", "BTC-USDT-PERP", 0.0001, None, 20643.52572781, 1666862556850547000, RECV)
    # incrementals carry no field list: the snapshot's is kept for the connection
    row = ["BTCUSDT", "1", "1", "1", "1", "0", "0", "0", "20000.5", "20001.5", "0.00025", "0.0001"]
    update = {
        "data": [row],
        "method": "perp_market24h_pack_p.update",
        "timestamp": 1666862557850547000,
        "type": "incremental",
    }
    (fund,) = adapter.parse(json.dumps(update), RECV)
    assert isinstance(fund, Funding) and (fund.rate, fund.mark_price) == (0.00025, 20001.5)
    adapter.reset()
    adapter.subscribe(funding("phemex", "BTC-USDT-PERP"))
    with pytest.raises(MalformedMessage, match="field list"):
        adapter.parse(json.dumps(update), RECV)


# --- open interest (the pack's openInterestRv) ----------------------------------------------


def test_open_interest_and_funding_share_one_pack_subscription() -> None:
    adapter = PhemexAdapter()
    (first,) = adapter.subscribe(open_interest("phemex", "BTC-USDT-PERP"))
    assert json.loads(first)["method"] == "perp_market24h_pack_p.subscribe"
    assert adapter.subscribe(funding("phemex", "BTC-USDT-PERP")) == []
    assert adapter.unsubscribe(open_interest("phemex", "BTC-USDT-PERP")) == []  # funding still wants it
    (last,) = adapter.unsubscribe(funding("phemex", "BTC-USDT-PERP"))
    assert json.loads(last)["method"] == "perp_market24h_pack_p.unsubscribe"
    with pytest.raises(UnknownSymbol):
        adapter.check(Subscription("phemex", Channel.OPEN_INTEREST, "BTC-USD-PERP"))


def test_open_interest_from_the_pack_in_base_units() -> None:
    adapter = PhemexAdapter()
    adapter.subscribe(open_interest("phemex", "BTC-USDT-PERP"))
    snapshot = json.loads(json.dumps(PACK_SNAPSHOT))
    at_oi = PACK_FIELDS.index("openInterestRv")
    btc = next(row for row in snapshot["data"] if row[0] == "BTCUSDT")
    btc[at_oi] = "1323.596"  # ccxt's recorded BTCUSDT value
    (oi,) = adapter.parse(json.dumps(snapshot), RECV)  # funding not wanted: no Funding
    assert oi == OpenInterest("phemex", "BTC-USDT-PERP", 1323.596, 1666862556850547000, RECV)
    btc[at_oi] = "-1"
    with pytest.raises(MalformedMessage):
        adapter.parse(json.dumps(snapshot), RECV)


# --- candles (kline / kline_p) -------------------------------------------------------------------


def test_kline_subscriptions_name_the_resolution() -> None:
    adapter = PhemexAdapter()
    (spot,) = adapter.subscribe(candles("phemex", "BTC-USDT"))
    (perp,) = adapter.subscribe(candles("phemex", "BTC-USDT-PERP"))
    (inverse,) = adapter.subscribe(candles("phemex", "BTC-USD-PERP"))
    assert json.loads(spot)["method"] == "kline.subscribe" and json.loads(spot)["params"] == ["sBTCUSDT", 60]
    assert json.loads(perp)["method"] == "kline_p.subscribe" and json.loads(perp)["params"] == ["BTCUSDT", 60]
    assert json.loads(inverse)["method"] == "kline.subscribe"


def kline(key: str, symbol: str, kind: str, rows: list[list[Any]]) -> str:
    return json.dumps({key: rows, "sequence": 1, "symbol": symbol, "type": kind})


def test_usdt_perp_klines_are_text_and_the_history_is_final_but_the_newest() -> None:
    rows = [
        [1666857360, 60, "20692.7", "20692.7", "20700.0", "20690.0", "20695.5", "0.649", "13431.4"],
        [1666857300, 60, "20690.0", "20690.0", "20692.7", "20688.0", "20692.7", "0.004", "82.7708"],
    ]
    bars = PhemexAdapter().parse(kline("kline_p", "BTCUSDT", "snapshot", rows), RECV)
    assert bars == [
        Candle("phemex", "BTC-USDT-PERP", "1m", 1666857300 * 10**9, 20690.0, 20692.7, 20688.0, 20692.7, 0.004, True,
               None, RECV),
        Candle("phemex", "BTC-USDT-PERP", "1m", 1666857360 * 10**9, 20692.7, 20700.0, 20690.0, 20695.5, 0.649, False,
               None, RECV),
    ]  # fmt: skip
    (forming,) = PhemexAdapter().parse(kline("kline_p", "BTCUSDT", "incremental", rows[:1]), RECV)
    assert isinstance(forming, Candle) and forming.closed is False


def test_spot_and_inverse_klines_are_scaled() -> None:
    spot_row = [1666857300, 60, 2069270000000, 2069270000000, 2070000000000, 2068800000000, 2069500000000, 64900000,
                1343140000000]  # fmt: skip
    (bar,) = PhemexAdapter().parse(kline("kline", "sBTCUSDT", "incremental", [spot_row]), RECV)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (20692.7, 20700.0, 20688.0, 20695.0, 0.649)  # type: ignore[attr-defined]
    # inverse: 1000 contracts of 1 USD at ~20000 = 0.05 BTC, the turnoverEv (x 10^8)
    inverse_row = [1666857300, 60, 206927000, 206927000, 207000000, 206880000, 206950000, 1000, 5000000]
    (bar,) = PhemexAdapter().parse(kline("kline", "BTCUSD", "incremental", [inverse_row]), RECV)
    assert (bar.symbol, bar.close, bar.volume) == ("BTC-USD-PERP", 20695.0, 0.05)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "frame",
    [
        kline("kline_p", "BTCUSDT", "incremental", [[1666857300, 60, "1", "1", "0.5", "0.9", "1", "1", "1"]]),
        kline("kline_p", "BTCUSDT", "incremental", [[1666857300, 60, 1, 1, 1, 1, 1, 1, 1]]),
        kline("kline", "sBTCUSDT", "incremental", [[1666857300, 60, "1", "1", "1", "1", "1", "1", "1"]]),
        kline("kline_p", "BTCUSDT", "partial", []),
        kline("kline_p", "BTCUSDT", "incremental", [["1666857300", 60, "1", "1", "1", "1", "1", "1", "1"]]),
    ],
)
def test_malformed_klines(frame: str) -> None:
    with pytest.raises(MalformedMessage):
        PhemexAdapter().parse(frame, RECV)


def test_klines_of_another_resolution_are_unknown() -> None:
    row = [1666857300, 300, "1", "1", "1", "1", "1", "1", "1"]
    with pytest.raises(UnknownMessage):
        PhemexAdapter().parse(kline("kline_p", "BTCUSDT", "incremental", [row]), RECV)
