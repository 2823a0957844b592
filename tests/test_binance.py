"""Binance family adapters, sans-I/O: subscriptions, frames → exact events,
malformed input, REST snapshots and the book rules through BookSync."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from wsmux import book, candles, funding, liquidations, open_interest, quotes, trades
from wsmux.book import BookSync, Continuity, SnapshotSource, SyncState, Verdict
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownMessage,
    UnknownSymbol,
)
from wsmux.exchanges import get
from wsmux.exchanges.binance import (
    BinanceCoinmAdapter,
    BinanceSpotAdapter,
    BinanceUSAdapter,
    BinanceUsdmAdapter,
)
from wsmux.model import BookSnapshot, BookUpdate, Candle, Channel, Funding, Liquidation, Quote, Side, Trade
from wsmux.testing import parse_events

NS = 1_000_000  # ns per ms


def spot(*symbols: str) -> BinanceSpotAdapter:
    adapter = BinanceSpotAdapter()
    for s in symbols:
        adapter.to_native(s)
    return adapter


# --- registry and symbols ---------------------------------------------------------------


def test_registry_ids() -> None:
    assert get("binance") is BinanceSpotAdapter
    assert get("binance-us") is BinanceUSAdapter
    assert get("binance-usdm") is BinanceUsdmAdapter
    assert get("binance-coinm") is BinanceCoinmAdapter


def test_symbol_mapping() -> None:
    assert BinanceSpotAdapter().to_native("BTC-USDT") == "BTCUSDT"
    assert BinanceUSAdapter().to_native("BTC-USD") == "BTCUSD"
    assert BinanceUsdmAdapter().to_native("BTC-USDT-PERP") == "BTCUSDT"
    assert BinanceUsdmAdapter().to_native("BTC-USDT-20261225") == "BTCUSDT_261225"
    assert BinanceCoinmAdapter().to_native("BTC-USD-PERP") == "BTCUSD_PERP"
    assert BinanceCoinmAdapter().to_native("ETH-USD-20261225") == "ETHUSD_261225"


@pytest.mark.parametrize(
    ("adapter", "symbol"),
    [
        (BinanceSpotAdapter(), "BTC-USDT-PERP"),
        (BinanceUSAdapter(), "BTC-USD-20261225"),
        (BinanceUsdmAdapter(), "BTC-USDT"),
        (BinanceCoinmAdapter(), "BTC-USD"),
        (BinanceCoinmAdapter(), "BTC-USDT-PERP"),
        (BinanceSpotAdapter(), "btc-usdt"),
    ],
)
def test_unmappable_symbols(adapter: BinanceSpotAdapter, symbol: str) -> None:
    with pytest.raises(UnknownSymbol):
        adapter.to_native(symbol)


def test_channels_offered() -> None:
    BinanceSpotAdapter().check(book("binance", "BTC-USDT")[0])
    with pytest.raises(UnknownChannel):
        BinanceSpotAdapter().check(funding("binance", "BTC-USDT")[0])
    with pytest.raises(UnknownChannel):  # not on the public WS feed
        BinanceUsdmAdapter().check(open_interest("binance-usdm", "BTC-USDT-PERP")[0])
    BinanceUsdmAdapter().check(liquidations("binance-usdm", "BTC-USDT-PERP")[0])
    BinanceCoinmAdapter().check(funding("binance-coinm", "BTC-USD-PERP")[0])


def test_trade_stream_option() -> None:
    sub = trades("binance", "BTC-USDT")[0]
    assert BinanceSpotAdapter().stream_name(sub) == "btcusdt@aggTrade"
    assert BinanceSpotAdapter(trade_stream="trade").stream_name(sub) == "btcusdt@trade"
    with pytest.raises(ConfigError):
        BinanceUsdmAdapter(trade_stream="trade")
    with pytest.raises(ConfigError):
        BinanceSpotAdapter(trade_stream="fills")  # type: ignore[arg-type]


# --- connecting and subscribing ---------------------------------------------------------------


def test_connect_url_names_streams_and_subscribe_skips_them() -> None:
    adapter = BinanceSpotAdapter()
    subs = [*book("binance", "BTC-USDT"), *trades("binance", "BTC-USDT"), *quotes("binance", "ETH-USDT")]
    url = adapter.connect_url(subs)
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade/ethusdt@bookTicker"
    adapter.reset()  # the Connection resets after connecting; the URL streams are kept
    assert adapter.subscribe(subs) == []
    # a later addition is a SUBSCRIBE message; ids start at 1 and increase
    assert [json.loads(m) for m in adapter.subscribe(trades("binance", "ETH-USDT"))] == [
        {"method": "SUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": 1}
    ]
    assert [json.loads(m) for m in adapter.unsubscribe(book("binance", "BTC-USDT"))] == [
        {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 2}
    ]
    # once consumed, a URL stream is subscribed by message again (e.g. after an unsubscribe)
    assert json.loads(adapter.subscribe(book("binance", "BTC-USDT"))[0])["id"] == 3


def test_reconnect_flow_and_reset() -> None:
    adapter = BinanceSpotAdapter()
    subs = [*book("binance", "BTC-USDT"), *trades("binance", "BTC-USDT")]
    for _ in range(2):  # connect, then reconnect: the Connection calls connect_url, reset, subscribe
        assert "streams=btcusdt@depth@100ms/btcusdt@aggTrade" in adapter.connect_url(subs)
        adapter.reset()
        assert adapter.subscribe(subs) == []
    (message,) = adapter.subscribe(quotes("binance", "BTC-USDT"))
    assert json.loads(message)["id"] == 1
    adapter.reset()  # the old connection's requests are forgotten; ids keep increasing
    with pytest.raises(SubscriptionRejected, match="request id 1"):
        adapter.parse('{"error":{"code":2,"msg":"x"},"id":1}', 0)
    assert json.loads(adapter.subscribe(quotes("binance", "ETH-USDT"))[0])["id"] == 2
    # the symbol map survives a reset: data still maps to unified symbols
    assert adapter.parse('{"data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}', 0)[0].symbol == "BTC-USDT"  # type: ignore[attr-defined]


def test_connect_url_without_streams_and_url_limit() -> None:
    adapter = BinanceSpotAdapter(url="ws://127.0.0.1:9/stream", url_stream_limit=1)
    assert adapter.connect_url([]) == "ws://127.0.0.1:9/stream"
    subs = [*trades("binance", "BTC-USDT", "ETH-USDT")]
    assert adapter.connect_url(subs) == "ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade"
    assert [json.loads(m)["params"] for m in adapter.subscribe(subs)] == [["ethusdt@aggTrade"]]


def test_subscribe_chunks_by_topics_per_message() -> None:
    adapter = BinanceSpotAdapter(url_stream_limit=0)
    symbols = [f"C{i}-USDT" for i in range(250)]
    messages = [json.loads(m) for m in adapter.subscribe(trades("binance", *symbols))]
    assert [len(m["params"]) for m in messages] == [100, 100, 50]
    assert [m["id"] for m in messages] == [1, 2, 3]
    assert messages[2]["params"][-1] == "c249usdt@aggTrade"


def test_reply_handling() -> None:
    adapter = BinanceSpotAdapter(url_stream_limit=0)
    adapter.subscribe(book("binance", "BTC-USDT"))
    adapter.subscribe(book("binance", "ETH-USDT"))
    assert adapter.parse('{"result":null,"id":1}', 1) == []
    assert adapter.parse(b'{"result":["btcusdt@depth@100ms"],"id":7}', 1) == []
    with pytest.raises(SubscriptionRejected, match=r"SUBSCRIBE ethusdt@depth@100ms: code 2: Invalid request"):
        adapter.parse('{"error":{"code":2,"msg":"Invalid request: bad stream"},"id":2}', 1)
    with pytest.raises(SubscriptionRejected, match="code 1: Invalid value type"):
        adapter.parse('{"code":1,"msg":"Invalid value type: expected Boolean","id":9}', 1)
    with pytest.raises(SubscriptionRejected, match="request id None"):
        adapter.parse('{"error":{"code":3,"msg":"Invalid JSON"},"id":null}', 1)
    with pytest.raises(MalformedMessage, match="reply without result"):
        adapter.parse('{"id":5}', 1)


def test_limits_and_heartbeat() -> None:
    assert BinanceSpotAdapter.limits.streams_per_connection == 1024
    assert BinanceSpotAdapter.limits.max_connection_age == 86_400.0
    assert BinanceSpotAdapter.limits.messages_per_second < 5  # pings/pongs count too
    assert BinanceUsdmAdapter.limits.messages_per_second < 10
    assert BinanceCoinmAdapter.limits.streams_per_connection == 200
    assert BinanceSpotAdapter.heartbeat.ping_message is None


# --- USD-M routes ---------------------------------------------------------------------------


def test_usdm_routes() -> None:
    adapter = BinanceUsdmAdapter()
    public = [*book("binance-usdm", "BTC-USDT-PERP"), *quotes("binance-usdm", "BTC-USDT-PERP")]
    market = [
        *trades("binance-usdm", "BTC-USDT-PERP"),
        *funding("binance-usdm", "BTC-USDT-PERP"),
        *liquidations("binance-usdm", "BTC-USDT-PERP"),
        *candles("binance-usdm", "BTC-USDT-PERP"),
    ]
    assert {adapter.route(s) for s in public} == {"public"}
    assert {adapter.route(s) for s in market} == {"market"}
    assert (
        adapter.connect_url(public)
        == "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker"
    )
    assert adapter.connect_url(market) == (
        "wss://fstream.binance.com/market/stream?streams="
        "btcusdt@aggTrade/btcusdt@markPrice@1s/btcusdt@forceOrder/btcusdt@kline_1m"
    )
    with pytest.raises(ConfigError, match="cannot share one connection"):
        adapter.connect_url([*public, *market])
    with pytest.raises(ConfigError, match="belongs on route 'public'"):
        adapter.subscribe(book("binance-usdm", "ETH-USDT-PERP"))  # this connection is on /market
    legacy = BinanceUsdmAdapter(url="wss://stream.binancefuture.com", split_routes=False)
    assert legacy.connect_url([*public, *market]).startswith("wss://stream.binancefuture.com/stream?streams=")
    assert BinanceUsdmAdapter(url="ws://h:1/public").url == "ws://h:1"


def test_other_venues_have_one_route() -> None:
    for adapter, sub in [
        (BinanceSpotAdapter(), book("binance", "BTC-USDT")[0]),
        (BinanceCoinmAdapter(), trades("binance-coinm", "BTC-USD-PERP")[0]),
    ]:
        assert adapter.route(sub) == ""
    coinm = BinanceCoinmAdapter()
    url = coinm.connect_url([*book("binance-coinm", "BTC-USD-PERP"), *trades("binance-coinm", "BTC-USD-PERP")])
    assert url == "wss://dstream.binance.com/stream?streams=btcusd_perp@depth@100ms/btcusd_perp@aggTrade"


# --- frames -> events (sheet examples) ---------------------------------------------------------------


def test_spot_depth_update() -> None:
    frame = (
        '{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512568,"s":"NKNUSDT",'
        '"U":499869753,"u":499869754,"b":[["0.35170000","4265.00000000"]],"a":[["0.35290000","10968.00000000"]]}}'
    )
    assert parse_events(spot("NKN-USDT"), frame, 42) == [
        BookUpdate(
            "binance",
            "NKN-USDT",
            ((0.3517, 4265.0),),
            ((0.3529, 10968.0),),
            1633998512568 * NS,
            42,
            seq=499869754,
            first_seq=499869753,
            prev_seq=None,
        )
    ]


def test_spot_agg_trade_and_taker_side() -> None:
    frame = (
        '{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,'
        '"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}'
    )
    expected = Trade("binance", "NKN-USDT", 0.3528, 58.0, Side.BUY, "15683430", 1633998523963 * NS, 7, 15683430)
    assert spot("NKN-USDT").parse(frame, 7) == [expected]
    # m (buyer is maker) true -> the taker sold
    sold = spot("NKN-USDT").parse(frame.replace('"m":false', '"m":true'), 7)
    assert sold[0].side is Side.SELL  # type: ignore[attr-defined]


def test_spot_raw_trade_stream() -> None:
    frame = (
        '{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000001,"s":"BTCUSDT","t":12345,'
        '"p":"30000.01","q":"0.5","T":1700000000000,"m":true,"M":true}}'
    )
    assert spot("BTC-USDT").parse(frame, 1) == [
        Trade("binance", "BTC-USDT", 30000.01, 0.5, Side.SELL, "12345", 1700000000000 * NS, 1, 12345)
    ]


def test_spot_book_ticker_has_no_event_type() -> None:
    frame = (
        '{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000",'
        '"B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}'
    )
    assert spot("NKN-USDT").parse(frame, 3) == [
        Quote("binance", "NKN-USDT", 0.3521, 672.0, 0.3526, 3199.0, None, 3, 499869768)
    ]


def test_raw_stream_format() -> None:
    frame = '{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[],"a":[["1.5","0.00000000"]]}'
    assert parse_events(spot("BTC-USDT"), frame, 0) == [
        BookUpdate("binance", "BTC-USDT", (), ((1.5, 0.0),), NS, 0, seq=6, first_seq=5)
    ]


def test_server_shutdown_is_not_data() -> None:
    assert spot().parse('{"e":"serverShutdown","E":1700000000000}', 0) == []


def test_usdm_depth_update_with_pu() -> None:
    frame = (
        '{"stream":"sushiusdt@depth@100ms","data":{"e":"depthUpdate","E":1626992741140,"T":1626992741123,'
        '"s":"SUSHIUSDT","U":600859601193,"u":600859602861,"pu":600859600917,'
        '"b":[["7.5980","1433"],["7.6100","7"]],"a":[["7.6170","534"]]}}'
    )
    adapter = BinanceUsdmAdapter()
    adapter.to_native("SUSHI-USDT-PERP")
    assert parse_events(adapter, frame, 9) == [
        BookUpdate(
            "binance-usdm",
            "SUSHI-USDT-PERP",
            ((7.598, 1433.0), (7.61, 7.0)),
            ((7.617, 534.0),),
            1626992741123 * NS,  # transaction time T
            9,
            seq=600859602861,
            first_seq=600859601193,
            prev_seq=600859600917,
        )
    ]


def test_usdm_book_ticker_trade_funding_liquidation() -> None:
    adapter = BinanceUsdmAdapter()
    adapter.to_native("SUSHI-USDT-PERP")
    adapter.to_native("BTC-USDT-PERP")
    ticker = (
        '{"stream":"sushiusdt@bookTicker","data":{"e":"bookTicker","u":600859600576,"s":"SUSHIUSDT",'
        '"b":"7.6110","B":"2","a":"7.6120","A":"297","T":1626992741012,"E":1626992741017}}'
    )
    assert adapter.parse(ticker, 1) == [
        Quote("binance-usdm", "SUSHI-USDT-PERP", 7.611, 2.0, 7.612, 297.0, 1626992741012 * NS, 1, 600859600576)
    ]
    trade = (
        '{"e":"aggTrade","E":1626992741200,"a":12345678,"s":"SUSHIUSDT","p":"7.6110","q":"5",'
        '"f":2000001,"l":2000002,"T":1626992741190,"m":true}'
    )
    assert adapter.parse(trade, 2) == [
        Trade("binance-usdm", "SUSHI-USDT-PERP", 7.611, 5.0, Side.SELL, "12345678", 1626992741190 * NS, 2, 12345678)
    ]
    mark = (
        '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT",'
        '"p":"11185.87786614","i":"11784.62659091","P":"11784.25641265","r":"0.00030000","T":1562306400000}}'
    )
    assert adapter.parse(mark, 3) == [
        Funding(
            "binance-usdm",
            "BTC-USDT-PERP",
            0.0003,
            1562306400000 * NS,
            11185.87786614,
            1562305380000 * NS,
            3,
        )
    ]
    force = (
        '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT",'
        '"S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014",'
        '"z":"0.014","T":1568014460893}}}'
    )
    assert adapter.parse(force, 4) == [
        Liquidation("binance-usdm", "BTC-USDT-PERP", Side.SELL, 9910.0, 0.014, 1568014460893 * NS, 4)
    ]
    new = force.replace('"ap":"9910"', '"ap":"0"').replace('"z":"0.014"', '"z":"0"').replace('"p":"9910"', '"p":"9900"')
    assert adapter.parse(new, 4)[0] == Liquidation(
        "binance-usdm", "BTC-USDT-PERP", Side.SELL, 9900.0, 0.014, 1568014460893 * NS, 4
    )


def test_coinm_frames_are_in_contracts() -> None:
    adapter = BinanceCoinmAdapter()
    adapter.to_native("BCH-USD-PERP")
    depth = (
        '{"stream":"bchusd_perp@depth@100ms","data":{"e":"depthUpdate","E":1626916403873,"T":1626916403864,'
        '"s":"BCHUSD_PERP","ps":"BCHUSD","U":167006084465,"u":167006084895,"pu":167006084238,'
        '"b":[["427.27","0"],["427.53","260"]],"a":[["427.90","669"]]}}'
    )
    assert parse_events(adapter, depth, 5) == [
        BookUpdate(
            "binance-coinm",
            "BCH-USD-PERP",
            ((427.27, 0.0), (427.53, 260.0)),
            ((427.9, 669.0),),
            1626916403864 * NS,
            5,
            seq=167006084895,
            first_seq=167006084465,
            prev_seq=167006084238,
        )
    ]
    trade = (
        '{"stream":"bchusd_perp@aggTrade","data":{"e":"aggTrade","E":1626916404006,"a":11285749,'
        '"s":"BCHUSD_PERP","p":"427.91","q":"3","f":16034449,"l":16034449,"T":1626916403852,"m":true}}'
    )
    assert adapter.parse(trade, 6)[0].size == 3.0  # type: ignore[attr-defined]  # contracts
    ticker = (
        '{"stream":"bchusd_perp@bookTicker","data":{"u":167006084895,"e":"bookTicker","s":"BCHUSD_PERP",'
        '"ps":"BCHUSD","b":"427.84","B":"24","a":"427.90","A":"669","T":1626916403864,"E":1626916403871}}'
    )
    assert adapter.parse(ticker, 7) == [
        Quote("binance-coinm", "BCH-USD-PERP", 427.84, 24.0, 427.9, 669.0, 1626916403864 * NS, 7, 167006084895)
    ]
    dated = '{"e":"markPriceUpdate","E":1,"s":"BCHUSD_PERP","p":"427.9","P":"427.9","r":"","T":0}'  # delivery: no rate
    assert adapter.parse(dated, 8) == []


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ('{"this is": not json', "invalid JSON"),
        ("[1,2]", "expected a JSON object"),
        ('"text"', "expected a JSON object"),
        ('{"stream":"x","data":[1]}', "'data' is not an object"),
        ('{"stream":"x","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{}}}', "bad kline"),
        ('{"stream":"x","data":{"e":"continuous_kline","E":1,"ps":"BTCUSDT","k":{}}}', "unknown message type"),
        ('{"stream":"x","data":{"e":"somethingNew"}}', "unknown message type 'somethingNew'"),
        ('{"foo":1}', "unknown message type None"),
        ('{"data":{"e":["depthUpdate"]}}', "bad"),
        ('{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"b":[],"a":[]}}', "bad depthUpdate"),
        ('{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":"1","u":2,"b":[],"a":[]}}', "bad depthUpdate"),
        ('{"data":{"e":"depthUpdate","E":"1","s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}', "bad depthUpdate"),
        ('{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1"]],"a":[]}}', "bad book level"),
        ('{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["x","1"]],"a":[]}}', "bad book level"),
        ('{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":5,"a":[]}}', "bad depthUpdate"),
        ('{"data":{"e":"depthUpdate","E":1,"s":"XRPUSDT","U":1,"u":2,"b":[],"a":[]}}', "unsubscribed symbol"),
        ('{"data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"1","q":"1","T":1,"m":"yes"}}', "bad aggTrade"),
        ('{"data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":true,"p":"1","q":"1","T":1,"m":true}}', "bad aggTrade"),
        ('{"data":{"e":"trade","E":1,"s":"BTCUSDT","p":"1","q":"1","T":1,"m":true}}', "bad trade"),
        ('{"data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"x","A":"1"}}', "bad message"),
        ('{"data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"LONG","q":"1","p":"1","T":1}}}', "bad forceOrder"),
    ],
)
def test_malformed_frames(frame: str, match: str) -> None:
    with pytest.raises(MalformedMessage, match=match):
        parse_events(spot("BTC-USDT"), frame, 0)


def test_malformed_frames_as_bytes() -> None:
    with pytest.raises(MalformedMessage):
        spot("BTC-USDT").parse(b"\xff\xfe", 0)


# --- REST snapshots ---------------------------------------------------------------------------


def test_snapshot_requests() -> None:
    req = BinanceSpotAdapter(rest_url="http://127.0.0.1:1/").snapshot_request("BTC-USDT")
    assert req is not None
    assert req.url == "http://127.0.0.1:1/api/v3/depth"
    assert req.params == (("symbol", "BTCUSDT"), ("limit", "1000"))
    assert req.weight == 50
    deep = BinanceSpotAdapter().snapshot_request("BTC-USDT", depth=3000)
    assert deep is not None and deep.params[1] == ("limit", "3000") and deep.weight == 250
    # a shallow book still takes a deep snapshot (levels moving to the top must be known)
    shallow = BinanceSpotAdapter().snapshot_request("BTC-USDT", depth=10)
    assert shallow is not None and shallow.params[1] == ("limit", "1000")
    usdm = BinanceUsdmAdapter().snapshot_request("BTC-USDT-PERP", depth=5000)
    assert usdm is not None
    assert usdm.url == "https://fapi.binance.com/fapi/v1/depth"
    assert usdm.params == (("symbol", "BTCUSDT"), ("limit", "1000"))
    assert usdm.weight == 20
    coinm = BinanceCoinmAdapter().snapshot_request("BTC-USD-PERP")
    assert coinm is not None
    assert coinm.url == "https://dapi.binance.com/dapi/v1/depth"
    assert coinm.params == (("symbol", "BTCUSD_PERP"), ("limit", "1000"))
    us = BinanceUSAdapter().snapshot_request("BTC-USD")
    assert us is not None and us.url == "https://api.binance.us/api/v3/depth"


def test_parse_snapshots() -> None:
    body = (
        b'{"lastUpdateId":499869752,"bids":[["0.35210000","672.00000000"],["0.35200000","1144.00000000"]],'
        b'"asks":[["0.35260000","3199.00000000"]]}'
    )
    assert BinanceSpotAdapter().parse_snapshot("NKN-USDT", body, 11) == BookSnapshot(
        "binance", "NKN-USDT", ((0.3521, 672.0), (0.352, 1144.0)), ((0.3526, 3199.0),), None, 11, 499869752
    )
    fut = (
        b'{"lastUpdateId":600859605926,"E":1626992741264,"T":1626992741261,'
        b'"bids":[["7.6110","6"]],"asks":[["7.6120","297"]]}'
    )
    assert BinanceUsdmAdapter().parse_snapshot("SUSHI-USDT-PERP", fut, 12) == BookSnapshot(
        "binance-usdm", "SUSHI-USDT-PERP", ((7.611, 6.0),), ((7.612, 297.0),), 1626992741261 * NS, 12, 600859605926
    )
    coin = (
        b'{"lastUpdateId":167006089178,"E":1626916404580,"T":1626916404574,"symbol":"BCHUSD_PERP",'
        b'"pair":"BCHUSD","bids":[["427.90","169"]],"asks":[["427.91","24"]]}'
    )
    snap = BinanceCoinmAdapter().parse_snapshot("BCH-USD-PERP", coin, 13)
    assert snap.seq == 167006089178 and snap.bids == ((427.9, 169.0),)
    with pytest.raises(MalformedMessage, match="snapshot of 'BCHUSD_PERP'"):
        BinanceCoinmAdapter().parse_snapshot("BTC-USD-PERP", coin, 13)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"code":-1121,"msg":"Invalid symbol."}', RemoteError),
        (b'{"lastUpdateId":', MalformedMessage),
        (b"[]", MalformedMessage),
        (b'{"lastUpdateId":"1","bids":[],"asks":[]}', MalformedMessage),
        (b'{"lastUpdateId":1,"bids":[["a","1"]],"asks":[]}', MalformedMessage),
        (b'{"lastUpdateId":1,"asks":[]}', MalformedMessage),
    ],
)
def test_bad_snapshots(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        BinanceSpotAdapter().parse_snapshot("BTC-USDT", body, 0)


# --- book rules through BookSync ------------------------------------------------------------------


def upd(first: int, last: int, prev: int | None = None, bids: tuple[tuple[float, float], ...] = ()) -> BookUpdate:
    return BookUpdate("binance", "BTC-USDT", bids, (), None, 0, seq=last, first_seq=first, prev_seq=prev)


def snap(seq: int) -> BookSnapshot:
    return BookSnapshot("binance", "BTC-USDT", ((100.0, 1.0),), ((101.0, 1.0),), None, 0, seq)


def test_rules_declared() -> None:
    rule = BinanceSpotAdapter().book_rule("BTC-USDT")
    assert (rule.snapshot, rule.continuity, rule.bridge_offset) == (SnapshotSource.REST, Continuity.UPDATE_ID, 1)
    assert rule.checksum is None and not rule.keep_text
    frule = BinanceUsdmAdapter().book_rule("BTC-USDT-PERP")
    assert (frule.snapshot, frule.continuity, frule.bridge_offset) == (SnapshotSource.REST, Continuity.PREV_ID, 0)
    assert BinanceCoinmAdapter().book_rule("BTC-USD-PERP") == frule
    assert BinanceUSAdapter().book_rule("BTC-USD") == rule


def test_spot_rule_stale_bridge_and_continuity() -> None:
    sync = BookSync(BinanceSpotAdapter().book_rule("BTC-USDT"))
    assert sync.on_update(upd(95, 99)) is Verdict.BUFFERED  # u <= lastUpdateId: dropped
    assert sync.on_update(upd(100, 100)) is Verdict.BUFFERED  # u == lastUpdateId: dropped
    assert sync.on_update(upd(101, 104, bids=((99.0, 2.0),))) is Verdict.BUFFERED  # bridges 100 + 1
    assert sync.on_snapshot(snap(100)) is Verdict.SYNCED
    assert sync.stats.stale == 2
    assert sync.book.seq == 104 and sync.book.depth()[0] == ((100.0, 1.0), (99.0, 2.0))
    assert sync.on_update(upd(103, 104)) is Verdict.STALE  # duplicate
    assert sync.on_update(upd(104, 106)) is Verdict.APPLIED  # overlapping range: U <= last + 1
    assert sync.on_update(upd(107, 107)) is Verdict.APPLIED
    assert sync.on_update(upd(109, 110)) is Verdict.GAP  # 108 missing
    assert sync.state is SyncState.WAITING and not sync.book.valid and len(sync.book) == 0


def test_spot_rule_bridge_failure_and_refetch() -> None:
    sync = BookSync(BinanceSpotAdapter().book_rule("BTC-USDT"))
    sync.on_update(upd(110, 112))
    assert sync.on_snapshot(snap(100)) is Verdict.REFETCH  # snapshot older than the first buffered U
    assert sync.state is SyncState.WAITING
    assert sync.on_snapshot(snap(111)) is Verdict.SYNCED  # U=110 <= 112 <= u=112
    # a snapshot with an empty buffer, then a diff that starts past lastUpdateId + 1
    sync2 = BookSync(BinanceSpotAdapter().book_rule("BTC-USDT"))
    assert sync2.on_snapshot(snap(100)) is Verdict.SYNCED
    assert sync2.on_update(upd(100, 101)) is Verdict.APPLIED  # U <= 101 <= u
    sync3 = BookSync(BinanceSpotAdapter().book_rule("BTC-USDT"))
    sync3.on_snapshot(snap(100))
    assert sync3.on_update(upd(102, 103)) is Verdict.BRIDGE


def test_futures_rule_bridge_and_pu_chain() -> None:
    rule = BinanceUsdmAdapter().book_rule("BTC-USDT-PERP")
    sync = BookSync(rule)
    sync.on_update(upd(90, 99, 89))  # u < lastUpdateId: dropped
    sync.on_update(upd(100, 105, 99))  # U <= 102 <= u: the bridge
    sync.on_update(upd(106, 108, 105))
    assert sync.on_snapshot(snap(102)) is Verdict.SYNCED
    assert sync.stats.stale == 1 and sync.book.seq == 108
    assert sync.on_update(upd(106, 108, 105)) is Verdict.STALE  # duplicate
    assert sync.on_update(upd(109, 111, 108)) is Verdict.APPLIED
    assert sync.on_update(upd(115, 118, 113)) is Verdict.GAP  # pu 113 != 111
    assert sync.expected == 111 and sync.received == 113
    # the diff whose u equals lastUpdateId is kept (futures: drop only u < lastUpdateId)
    edge = BookSync(rule)
    edge.on_update(upd(95, 102, 94))
    assert edge.on_snapshot(snap(102)) is Verdict.SYNCED and edge.stats.applied == 1
    # ... and a first diff starting after lastUpdateId does not bridge
    late = BookSync(rule)
    late.on_snapshot(snap(102))
    assert late.on_update(upd(103, 104, 102)) is Verdict.BRIDGE


def test_crossed_update_breaks_the_book() -> None:
    sync = BookSync(BinanceSpotAdapter().book_rule("BTC-USDT"))
    sync.on_snapshot(snap(100))
    assert sync.on_update(upd(101, 101, bids=((101.5, 1.0),))) is Verdict.CROSSED
    assert not sync.book.valid


# --- sans-I/O -----------------------------------------------------------------------------------


def test_adapters_are_sans_io() -> None:
    root = Path(__file__).resolve().parents[1] / "wsmux" / "exchanges"
    banned = {"asyncio", "websockets", "httpx", "socket", "time", "threading"}
    for name in ("binance.py", "_binance_common.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                mods = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not mods & banned, f"{name} imports {mods & banned}"


def test_event_types_for_channels() -> None:
    # every offered channel maps to a stream name
    adapter = BinanceUsdmAdapter()
    names = {c: adapter.stream_name(s) for c, s in ((s.channel, s) for s in _all_subs())}
    assert names == {
        Channel.TRADES: "btcusdt@aggTrade",
        Channel.QUOTES: "btcusdt@bookTicker",
        Channel.BOOK: "btcusdt@depth@100ms",
        Channel.FUNDING: "btcusdt@markPrice@1s",
        Channel.LIQUIDATIONS: "btcusdt@forceOrder",
        Channel.CANDLES: "btcusdt@kline_1m",
    }


def _all_subs() -> list[object]:
    return [
        *trades("binance-usdm", "BTC-USDT-PERP"),
        *quotes("binance-usdm", "BTC-USDT-PERP"),
        *book("binance-usdm", "BTC-USDT-PERP"),
        *funding("binance-usdm", "BTC-USDT-PERP"),
        *liquidations("binance-usdm", "BTC-USDT-PERP"),
        *candles("binance-usdm", "BTC-USDT-PERP"),
    ]


# --- candles (@kline_1m) --------------------------------------------------------------------


def kline(symbol: str, closed: bool, **fields: object) -> str:
    """A ``kline`` frame in the Binance stream docs' layout (values illustrative)."""
    k: dict[str, object] = {
        "t": 1700000040000,
        "T": 1700000099999,
        "s": symbol,
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "0.0016",
        "c": "0.0020",
        "h": "0.0025",
        "l": "0.0015",
        "v": "1000",
        "n": 100,
        "x": closed,
        "q": "1.0000",
        "V": "500",
        "Q": "0.500",
        "B": "123456",
    }
    k.update(fields)
    return json.dumps(
        {"stream": f"{symbol.lower()}@kline_1m", "data": {"e": "kline", "E": 1700000061234, "s": symbol, "k": k}}
    )


def test_kline_stream_names_and_routes() -> None:
    assert BinanceSpotAdapter().stream_name(candles("binance", "BTC-USDT")[0]) == "btcusdt@kline_1m"
    assert BinanceUSAdapter().stream_name(candles("binance-us", "BTC-USD")[0]) == "btcusd@kline_1m"
    assert BinanceCoinmAdapter().stream_name(candles("binance-coinm", "BTC-USD-PERP")[0]) == "btcusd_perp@kline_1m"
    # binance-usdm-futures.md, "Endpoints": @kline_* is served under /market
    usdm = BinanceUsdmAdapter(url="ws://127.0.0.1:1")
    sub = candles("binance-usdm", "BTC-USDT-PERP")[0]
    assert usdm.route(sub) == "market"
    assert usdm.connect_url([sub]) == "ws://127.0.0.1:1/market/stream?streams=btcusdt@kline_1m"


def test_kline_forming_and_final_candles() -> None:
    adapter = spot("BTC-USDT")
    forming = adapter.parse(kline("BTCUSDT", False), 7)
    assert forming == [
        Candle(
            "binance",
            "BTC-USDT",
            "1m",
            1700000040000 * NS,
            0.0016,
            0.0025,
            0.0015,
            0.002,
            1000.0,
            False,
            1700000061234 * NS,
            7,
        )
    ]
    final = adapter.parse(kline("BTCUSDT", True), 8)
    assert len(final) == 1 and final[0].closed is True  # type: ignore[attr-defined]


def test_kline_volume_is_base_units_on_every_venue() -> None:
    # spot and USD-M: v is the base-asset volume
    usdm = BinanceUsdmAdapter()
    usdm.to_native("BTC-USDT-PERP")
    (candle,) = usdm.parse(kline("BTCUSDT", False), 1)
    assert candle.volume == 1000.0  # type: ignore[attr-defined]
    # COIN-M: v counts contracts, q is the base-asset volume
    coinm = BinanceCoinmAdapter()
    coinm.to_native("BTC-USD-PERP")
    (candle,) = coinm.parse(kline("BTCUSD_PERP", False), 1)
    assert candle.volume == 1.0 and candle.symbol == "BTC-USD-PERP"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"i": "5m"}, "unknown message type: kline interval '5m'"),
        ({"i": None}, "unknown message type: kline interval None"),
        ({"x": "false"}, "bad kline"),
        ({"h": "0.0012"}, "impossible candle"),  # high below the close
        ({"l": "0.0030"}, "impossible candle"),
        ({"v": "-1"}, "impossible candle"),
        ({"o": "nan"}, "impossible candle"),
        ({"t": "1700000040000"}, "bad kline"),
        ({"s": "ETHUSDT"}, "unsubscribed symbol"),
    ],
)
def test_malformed_klines(fields: dict[str, object], match: str) -> None:
    with pytest.raises(MalformedMessage, match=match):
        spot("BTC-USDT").parse(kline("BTCUSDT", False, **fields), 1)


def test_kline_of_another_interval_is_unknown_not_malformed() -> None:
    with pytest.raises(UnknownMessage):
        spot("BTC-USDT").parse(kline("BTCUSDT", False, i="5m"), 1)


def test_kline_without_candle_body_is_malformed() -> None:
    frame = json.dumps({"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "s": "BTCUSDT"}})
    with pytest.raises(MalformedMessage, match="bad kline"):
        spot("BTC-USDT").parse(frame, 1)
