"""Instruments of the original venues: each adapter's instruments request and
its parse of a body in the venue's documented shape, and the sizes in base
units that the contract sizes make possible (OKX swaps, Binance COIN-M).

The bodies follow the schemas the sheets name (shared/exchanges/binance-*.md
"Instruments", okx-v5.md "ctVal", bitfinex.md "Symbols", kraken-spot.md
"wsname") with the rest of each row as the venues' REST docs give it.
"""

from __future__ import annotations

import json
import math
import zlib

import pytest

from wsmux import BookSnapshot, BookUpdate, Instrument, Liquidation, MalformedMessage, Quote, Trade
from wsmux.book import BookSync, Diff, Verdict
from wsmux.errors import RemoteError
from wsmux.exchanges import get
from wsmux.exchanges.binance import BinanceCoinmAdapter, BinanceSpotAdapter, BinanceUsdmAdapter
from wsmux.exchanges.bitfinex import BitfinexAdapter
from wsmux.exchanges.bybit import BybitLinearAdapter, BybitSpotAdapter
from wsmux.exchanges.coinbase import CoinbaseAdapter, CoinbaseAdvancedAdapter
from wsmux.exchanges.kraken import KrakenAdapter, KrakenV1Adapter
from wsmux.exchanges.okx import OkxAdapter
from wsmux.subscriptions import book, liquidations, quotes, trades

RECV = 1_000


def _filters(tick: str, lot: str) -> list[dict[str, str]]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": lot, "maxQty": "9000.00", "stepSize": lot},
    ]


BINANCE_SPOT = json.dumps(
    {
        "timezone": "UTC",
        "symbols": [
            {
                "symbol": "BTCUSDT",
                "status": "TRADING",
                "baseAsset": "BTC",
                "quoteAsset": "USDT",
                "filters": _filters("0.01000000", "0.00001000"),
            },
            {"symbol": "LUNAUSDT", "status": "BREAK", "baseAsset": "LUNA", "quoteAsset": "USDT", "filters": []},
            {"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC", "filters": []},
        ],
    }
).encode()

BINANCE_COINM = json.dumps(
    {
        "symbols": [
            {
                "symbol": "BTCUSD_PERP",
                "pair": "BTCUSD",
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "contractStatus": "TRADING",
                "contractSize": 100,
                "baseAsset": "BTC",
                "quoteAsset": "USD",
                "marginAsset": "BTC",
                "filters": _filters("0.1", "1"),
            },
            {
                "symbol": "BTCUSD_261225",
                "pair": "BTCUSD",
                "contractType": "CURRENT_QUARTER",
                "deliveryDate": 1798185600000,  # 2026-12-25 08:00 UTC
                "contractStatus": "TRADING",
                "contractSize": 100,
                "baseAsset": "BTC",
                "quoteAsset": "USD",
                "filters": _filters("0.1", "1"),
            },
            {
                "symbol": "BCHUSD_PERP",
                "contractType": "PERPETUAL",
                "contractStatus": "TRADING",
                "contractSize": 10,
                "baseAsset": "BCH",
                "quoteAsset": "USD",
                "filters": _filters("0.01", "1"),
            },
        ]
    }
).encode()


def test_binance_spot_lists_trading_pairs_with_tick_and_lot() -> None:
    a = BinanceSpotAdapter(rest_url="http://h")
    request = a.instruments_request()
    assert request is not None and request.url == "http://h/api/v3/exchangeInfo" and request.weight == 20
    got = a.parse_instruments(BINANCE_SPOT)
    assert got == [
        Instrument("binance", "BTC-USDT", "BTCUSDT", "spot", 0.01, 0.00001),
        Instrument("binance", "ETH-BTC", "ETHBTC", "spot", None, None),
    ]  # LUNAUSDT (status BREAK) is not listed


def test_binance_usdm_names_perpetuals_and_dated_futures() -> None:
    body = json.dumps(
        {
            "symbols": [
                {
                    "symbol": "BTCUSDT",
                    "contractType": "PERPETUAL",
                    "status": "TRADING",
                    "baseAsset": "BTC",
                    "quoteAsset": "USDT",
                    "filters": _filters("0.10", "0.001"),
                },
                {
                    "symbol": "BTCUSDT_261225",
                    "contractType": "CURRENT_QUARTER",
                    "deliveryDate": 1798185600000,
                    "status": "TRADING",
                    "baseAsset": "BTC",
                    "quoteAsset": "USDT",
                    "filters": [],
                },
                {  # a symbol that does not map back to itself is left out
                    "symbol": "BTCDOMUSDT",
                    "contractType": "PERPETUAL",
                    "status": "TRADING",
                    "baseAsset": "BTC",
                    "quoteAsset": "USDT",
                    "filters": [],
                },
            ]
        }
    ).encode()
    a = BinanceUsdmAdapter(rest_url="http://h")
    assert a.instruments_request().url == "http://h/fapi/v1/exchangeInfo"  # type: ignore[union-attr]
    assert [(i.symbol, i.native, i.kind, i.tick_size, i.lot_size) for i in a.parse_instruments(body)] == [
        ("BTC-USDT-PERP", "BTCUSDT", "perp", 0.1, 0.001),
        ("BTC-USDT-20261225", "BTCUSDT_261225", "future", None, None),
    ]


def test_binance_coinm_contract_size_is_an_inverse_face_value() -> None:
    a = BinanceCoinmAdapter(rest_url="http://h")
    assert a.instruments_request().url == "http://h/dapi/v1/exchangeInfo"  # type: ignore[union-attr]
    got = a.parse_instruments(BINANCE_COINM)
    assert got[0] == Instrument("binance-coinm", "BTC-USD-PERP", "BTCUSD_PERP", "perp", 0.1, 1.0, 100.0, True)
    assert got[1].symbol == "BTC-USD-20261225" and got[1].kind == "future"
    assert got[2].symbol == "BCH-USD-PERP" and got[2].contract_size == 10.0


def test_binance_error_body_is_a_remote_error() -> None:
    with pytest.raises(RemoteError, match="-1121"):
        BinanceSpotAdapter().parse_instruments(b'{"code": -1121, "msg": "Invalid symbol."}')
    with pytest.raises(MalformedMessage):
        BinanceSpotAdapter().parse_instruments(b'{"symbols": [{"status": "TRADING"}]}')
    with pytest.raises(MalformedMessage):
        BinanceSpotAdapter().parse_instruments(b"<html>")


# --- Binance COIN-M sizes in coins ------------------------------------------------------------


def _coinm() -> BinanceCoinmAdapter:
    a = BinanceCoinmAdapter()
    subs = (book, trades, quotes, liquidations)
    a.connect_url([sub for helper in subs for sub in helper("binance-coinm", "BCH-USD-PERP")])
    return a


# binance-coinm-futures.md, "Examples (2021 recording)"
COINM_DIFF = (
    '{"stream":"bchusd_perp@depth@100ms","data":{"e":"depthUpdate","E":1626916403873,"T":1626916403864,'
    '"s":"BCHUSD_PERP","ps":"BCHUSD","U":167006084465,"u":167006084895,"pu":167006084238,'
    '"b":[["427.27","0"],["427.53","260"]],"a":[["427.90","669"]]}}'
)
COINM_TRADE = (
    '{"stream":"bchusd_perp@aggTrade","data":{"e":"aggTrade","E":1626916404006,"a":11285749,"s":"BCHUSD_PERP",'
    '"p":"427.91","q":"3","f":16034449,"l":16034449,"T":1626916403852,"m":true}}'
)
COINM_BBO = (
    '{"stream":"bchusd_perp@bookTicker","data":{"u":167006084895,"e":"bookTicker","s":"BCHUSD_PERP",'
    '"ps":"BCHUSD","b":"427.84","B":"24","a":"427.90","A":"669","T":1626916403864,"E":1626916403871}}'
)
COINM_SNAPSHOT = (
    b'{"lastUpdateId":167006089178,"E":1626916404580,"T":1626916404574,"symbol":"BCHUSD_PERP",'
    b'"pair":"BCHUSD","bids":[["427.90","169"],["427.89","515"]],"asks":[["427.91","24"]]}'
)


def test_binance_coinm_sizes_stay_contracts_without_instruments() -> None:
    a = _coinm()
    (diff,) = a.parse(COINM_DIFF, RECV)
    assert isinstance(diff, Diff) and diff.bids == [["427.27", "0"], ["427.53", "260"]]
    (trade,) = a.parse(COINM_TRADE, RECV)
    assert isinstance(trade, Trade) and trade.size == 3.0


def test_binance_coinm_sizes_in_coins_with_instruments() -> None:
    a = _coinm()
    a.use_instruments(a.parse_instruments(BINANCE_COINM))  # BCH: 10 USD per contract
    (diff,) = a.parse(COINM_DIFF, RECV)
    assert isinstance(diff, Diff)
    assert diff.bids == (("427.27", 0.0), ("427.53", 260 * 10 / 427.53))
    assert diff.asks == (("427.90", 669 * 10 / 427.90),)
    (trade,) = a.parse(COINM_TRADE, RECV)
    assert isinstance(trade, Trade) and trade.size == 3 * 10 / 427.91 and trade.trade_id == "11285749"
    (quote,) = a.parse(COINM_BBO, RECV)
    assert isinstance(quote, Quote) and quote.bid_size == 24 * 10 / 427.84 and quote.ask_size == 669 * 10 / 427.90
    snap = a.parse_snapshot("BCH-USD-PERP", COINM_SNAPSHOT, RECV)
    assert snap.bids == ((427.90, 169 * 10 / 427.90), (427.89, 515 * 10 / 427.89)) and snap.seq == 167006089178
    liq = (
        '{"stream":"bchusd_perp@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BCHUSD_PERP","S":"SELL",'
        '"q":"5","p":"400.00","ap":"0","z":"0","X":"NEW","T":1626916403852}}}'
    )
    (liquidation,) = a.parse(liq, RECV)
    assert isinstance(liquidation, Liquidation) and liquidation.size == 5 * 10 / 400.0
    # the book takes the converted diff: snapshot, then the diff bridges it
    sync = BookSync(a.book_rule("BCH-USD-PERP"))
    anchor = b'{"lastUpdateId":167006084500,"bids":[["427.20","169"]],"asks":[["428.00","24"]]}'
    sync.on_snapshot(a.parse_snapshot("BCH-USD-PERP", anchor, RECV))
    assert sync.on_update(diff) is Verdict.APPLIED and sync.book.valid
    assert dict(sync.book.depth()[0])[427.53] == 260 * 10 / 427.53


def test_binance_coinm_zero_price_level_is_refused_not_a_crash() -> None:
    a = _coinm()
    a.use_instruments(a.parse_instruments(BINANCE_COINM))
    (diff,) = a.parse(COINM_DIFF.replace('"427.53"', '"0"'), RECV)
    assert isinstance(diff, Diff) and math.isnan(diff.bids[1][1])


# --- OKX ------------------------------------------------------------------------------------

OKX_SWAPS = json.dumps(
    {
        "code": "0",
        "msg": "",
        "data": [
            {
                "instType": "SWAP",
                "instId": "BTC-USDT-SWAP",
                "ctVal": "0.01",
                "ctMult": "1",
                "ctValCcy": "BTC",
                "ctType": "linear",
                "tickSz": "0.1",
                "lotSz": "0.01",
                "state": "live",
            },
            {
                "instType": "SWAP",
                "instId": "BTC-USD-SWAP",
                "ctVal": "100",
                "ctMult": "1",
                "ctValCcy": "USD",
                "ctType": "inverse",
                "tickSz": "0.1",
                "lotSz": "1",
                "state": "live",
            },
            {"instType": "OPTION", "instId": "BTC-USD-261225-100000-C", "ctVal": "0.01", "tickSz": "0.0005"},
        ],
    }
).encode()
OKX_SPOT = json.dumps(
    {
        "code": "0",
        "data": [
            {
                "instType": "SPOT",
                "instId": "BTC-USDT",
                "baseCcy": "BTC",
                "quoteCcy": "USDT",
                "ctVal": "",
                "tickSz": "0.1",
                "lotSz": "0.00000001",
                "state": "live",
            },
        ],
    }
).encode()


def test_okx_lists_each_instrument_type() -> None:
    a = OkxAdapter(rest_url="http://h")
    assert [(r.url, r.params) for r in a.instruments_requests()] == [
        ("http://h/api/v5/public/instruments", (("instType", t),)) for t in ("SPOT", "SWAP", "FUTURES")
    ]
    assert a.parse_instruments(OKX_SPOT) == [Instrument("okx", "BTC-USDT", "BTC-USDT", "spot", 0.1, 1e-8)]
    assert a.parse_instruments(OKX_SWAPS) == [
        Instrument("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP", "perp", 0.1, 0.01, 0.01),
        Instrument("okx", "BTC-USD-PERP", "BTC-USD-SWAP", "perp", 0.1, 1.0, 100.0, True),
    ]
    with pytest.raises(RemoteError, match="50011"):
        a.parse_instruments(b'{"code":"50011","msg":"Too Many Requests","data":[]}')


def _okx_books(action: str, bids: list[list[str]], asks: list[list[str]], seq: int, prev: int, cs: int) -> str:
    entry = {"asks": asks, "bids": bids, "ts": "1652459225360", "checksum": cs, "seqId": seq, "prevSeqId": prev}
    return json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}, "action": action, "data": [entry]})


def _crc(text: str) -> int:
    value = zlib.crc32(text.encode())
    return value - 2**32 if value >= 2**31 else value


def test_okx_swap_book_in_base_units_keeps_the_venue_text_for_the_checksum() -> None:
    a = OkxAdapter()
    a.subscribe(list(book("okx", "BTC-USDT-PERP")))
    a.use_instruments(a.parse_instruments(OKX_SWAPS))  # 0.01 BTC per contract
    sync = BookSync(a.book_rule("BTC-USDT-PERP"))
    snap_frame = _okx_books(
        "snapshot", [["30000.1", "452", "0", "1"]], [["30000.2", "7", "0", "1"]], 1, -1, _crc("30000.1:452:30000.2:7")
    )
    (snap,) = a.parse(snap_frame, RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == ((30000.1, 4.52),) and snap.bids_text == (("30000.1", "452"),)
    assert sync.on_snapshot(snap) is Verdict.SYNCED and sync.stats.checksums_ok == 1
    upd_frame = _okx_books("update", [["30000.0", "30", "0", "1"]], [], 2, 1, _crc("30000.1:452:30000.2:7:30000.0:30"))
    (update,) = a.parse(upd_frame, RECV)
    assert isinstance(update, BookUpdate) and update.bids == ((30000.0, 0.3),)
    assert sync.on_update(update) is Verdict.APPLIED and sync.stats.checksums_ok == 2
    assert sync.book.depth() == (((30000.1, 4.52), (30000.0, 0.3)), ((30000.2, 0.07),))
    # a wrong checksum is still caught on the converted book
    bad = _okx_books("update", [["29999", "1", "0", "1"]], [], 3, 2, 12345)
    (update,) = a.parse(bad, RECV)
    assert sync.on_update(update) is Verdict.CHECKSUM


def test_okx_trades_quotes_liquidations_in_base_units() -> None:
    a = OkxAdapter()
    a.subscribe(
        [
            *trades("okx", "BTC-USD-PERP"),
            *quotes("okx", "BTC-USD-PERP"),
            *liquidations("okx", "BTC-USD-PERP"),
            *trades("okx", "BTC-USDT-PERP"),
        ]
    )
    a.use_instruments(a.parse_instruments(OKX_SWAPS))
    trade = (
        '{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
        '"tradeId":"1","px":"30000","sz":"284","side":"buy","ts":"1"}]}'
    )
    (t,) = a.parse(trade, RECV)
    assert isinstance(t, Trade) and t.size == 2.84  # 284 contracts of 0.01 BTC, divided (exact)
    inverse = trade.replace("BTC-USDT-SWAP", "BTC-USD-SWAP").replace('"sz":"284"', '"sz":"3"')
    (t,) = a.parse(inverse, RECV)
    assert isinstance(t, Trade) and t.size == 3 * 100 / 30000  # 300 USD of BTC at 30000
    bbo = (
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USD-SWAP"},"data":[{"asks":[["30001","5","0","1"]],'
        '"bids":[["30000","6","0","1"]],"ts":"1","seqId":5}]}'
    )
    (q,) = a.parse(bbo, RECV)
    assert isinstance(q, Quote) and q.bid_size == 6 * 100 / 30000 and q.ask_size == 5 * 100 / 30001
    liq = (
        '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"BTC-USD-SWAP",'
        '"details":[{"side":"sell","bkPx":"25000","sz":"10","ts":"1"}]}]}'
    )
    (lq,) = a.parse(liq, RECV)
    assert isinstance(lq, Liquidation) and lq.size == 10 * 100 / 25000


def test_okx_spot_unchanged_by_instruments() -> None:
    a = OkxAdapter()
    a.subscribe(list(trades("okx", "BTC-USDT")))
    a.use_instruments(a.parse_instruments(OKX_SPOT))
    frame = (
        '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        '"tradeId":"1","px":"30000","sz":"0.5","side":"buy","ts":"1"}]}'
    )
    (t,) = a.parse(frame, RECV)
    assert isinstance(t, Trade) and t.size == 0.5


# --- Bybit, Coinbase, Kraken, Bitfinex ------------------------------------------------------


def test_bybit_spot_and_linear() -> None:
    spot = json.dumps(
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "category": "spot",
                "list": [
                    {
                        "symbol": "BTCUSDT",
                        "baseCoin": "BTC",
                        "quoteCoin": "USDT",
                        "status": "Trading",
                        "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001"},
                        "priceFilter": {"tickSize": "0.01"},
                    },
                ],
            },
        }
    ).encode()
    linear = json.dumps(
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "category": "linear",
                "nextPageCursor": "",
                "list": [
                    {
                        "symbol": "BTCUSDT",
                        "contractType": "LinearPerpetual",
                        "status": "Trading",
                        "baseCoin": "BTC",
                        "quoteCoin": "USDT",
                        "priceFilter": {"tickSize": "0.10"},
                        "lotSizeFilter": {"qtyStep": "0.001"},
                    },
                    {
                        "symbol": "BTC-26DEC26",
                        "contractType": "LinearFutures",
                        "status": "Trading",
                        "baseCoin": "BTC",
                        "quoteCoin": "USDT",
                        "priceFilter": {"tickSize": "0.50"},
                        "lotSizeFilter": {"qtyStep": "0.001"},
                    },
                    {
                        "symbol": "OLDUSDT",
                        "contractType": "LinearPerpetual",
                        "status": "Closed",
                        "baseCoin": "OLD",
                        "quoteCoin": "USDT",
                    },
                ],
            },
        }
    ).encode()
    s = BybitSpotAdapter(rest_url="http://h")
    request = s.instruments_request()
    assert request is not None and request.url == "http://h/v5/market/instruments-info"
    assert dict(request.params)["category"] == "spot"
    assert s.parse_instruments(spot) == [Instrument("bybit", "BTC-USDT", "BTCUSDT", "spot", 0.01, 1e-6)]
    lin = BybitLinearAdapter()
    assert dict(lin.instruments_request().params)["category"] == "linear"  # type: ignore[union-attr]
    # sizes are base coin already: no contract size
    assert lin.parse_instruments(linear) == [Instrument("bybit-linear", "BTC-USDT-PERP", "BTCUSDT", "perp", 0.1, 0.001)]
    with pytest.raises(RemoteError, match="10001"):
        s.parse_instruments(b'{"retCode":10001,"retMsg":"params error","result":{}}')


def test_coinbase_exchange_and_advanced_products() -> None:
    exchange = json.dumps(
        [
            {
                "id": "BTC-USD",
                "base_currency": "BTC",
                "quote_currency": "USD",
                "quote_increment": "0.01",
                "base_increment": "0.00000001",
                "status": "online",
                "trading_disabled": False,
            },
            {
                "id": "OLD-USD",
                "base_currency": "OLD",
                "quote_currency": "USD",
                "quote_increment": "0.01",
                "base_increment": "1",
                "status": "delisted",
                "trading_disabled": True,
            },
        ]
    ).encode()
    a = CoinbaseAdapter(rest_url="http://h")
    assert a.instruments_request().url == "http://h/products"  # type: ignore[union-attr]
    assert a.parse_instruments(exchange) == [Instrument("coinbase", "BTC-USD", "BTC-USD", "spot", 0.01, 1e-8)]
    advanced = json.dumps(
        {
            "products": [
                {
                    "product_id": "ETH-USD",
                    "base_currency_id": "ETH",
                    "quote_currency_id": "USD",
                    "price_increment": "0.01",
                    "base_increment": "0.00000001",
                    "status": "online",
                    "product_type": "SPOT",
                    "is_disabled": False,
                },
                {"product_id": "BIT-31JAN25-CDE", "product_type": "FUTURE", "status": "online"},
            ],
            "num_products": 2,
        }
    ).encode()
    b = CoinbaseAdvancedAdapter(rest_url="http://h")
    assert b.instruments_request().url == "http://h/api/v3/brokerage/market/products"  # type: ignore[union-attr]
    assert b.parse_instruments(advanced) == [Instrument("coinbase-advanced", "ETH-USD", "ETH-USD", "spot", 0.01, 1e-8)]


KRAKEN_PAIRS = json.dumps(
    {
        "error": [],
        "result": {
            "XXBTZUSD": {
                "altname": "XBTUSD",
                "wsname": "XBT/USD",
                "base": "XXBT",
                "quote": "ZUSD",
                "pair_decimals": 1,
                "lot_decimals": 8,
                "tick_size": "0.1",
                "status": "online",
            },
            "XDGUSD": {
                "altname": "XDGUSD",
                "wsname": "XDG/USD",
                "base": "XXDG",
                "quote": "ZUSD",
                "pair_decimals": 7,
                "lot_decimals": 8,
                "status": "online",
            },
            "XXBTZUSD.d": {"altname": "XBTUSD.d", "base": "XXBT", "quote": "ZUSD", "pair_decimals": 1},
        },
    }
).encode()


def test_kraken_asset_pairs_in_each_protocol_spelling() -> None:
    v2 = KrakenAdapter(rest_url="http://h")
    assert v2.instruments_request().url == "http://h/0/public/AssetPairs"  # type: ignore[union-attr]
    assert v2.parse_instruments(KRAKEN_PAIRS) == [
        Instrument("kraken", "BTC-USD", "BTC/USD", "spot", 0.1, 1e-8),
        Instrument("kraken", "DOGE-USD", "DOGE/USD", "spot", 1e-7, 1e-8),
    ]
    assert [i.native for i in KrakenV1Adapter().parse_instruments(KRAKEN_PAIRS)] == ["XBT/USD", "XDG/USD"]
    with pytest.raises(RemoteError, match="EGeneral"):
        v2.parse_instruments(b'{"error":["EGeneral:Invalid arguments"]}')


def test_bitfinex_pair_lists() -> None:
    a = BitfinexAdapter(rest_url="http://h")
    assert [r.url for r in a.instruments_requests()] == [
        "http://h/v2/conf/pub:list:pair:exchange",
        "http://h/v2/conf/pub:list:pair:futures",
    ]
    got = a.parse_instruments(b'[["BTCUSD","TESTBTC:TESTUSD","BTCUST","ETHUSD"]]')
    assert [(i.symbol, i.native, i.kind) for i in got] == [
        ("BTC-USD", "tBTCUSD", "spot"),
        ("TESTBTC-TESTUSD", "tTESTBTC:TESTUSD", "spot"),
        ("BTC-USDT", "tBTCUST", "spot"),
        ("ETH-USD", "tETHUSD", "spot"),
    ]
    assert [i.symbol for i in a.parse_instruments(b'[["BTCF0:USTF0"]]')] == ["BTC-USDT-PERP"]
    with pytest.raises(MalformedMessage):
        a.parse_instruments(b'{"error": "ERR_RATE_LIMIT"}')


ORIGINAL_VENUES = (
    "binance",
    "binance-us",
    "binance-usdm",
    "binance-coinm",
    "okx",
    "bybit",
    "bybit-linear",
    "coinbase",
    "coinbase-advanced",
    "kraken",
    "kraken-v1",
    "bitfinex",
)
"""The adapters of the seven original exchanges (this branch gave them instruments hooks)."""


@pytest.mark.parametrize("venue", ORIGINAL_VENUES)
def test_every_original_venue_has_an_instruments_endpoint(venue: str) -> None:
    assert get(venue)().instruments_requests()
