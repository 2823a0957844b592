"""PoloniexAdapter / PoloniexFuturesAdapter on hand-written frames in the format
of ``shared/exchanges/poloniex.md`` (its examples where it has them)."""

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
    Quote,
    Side,
    Subscription,
    Trade,
    exchanges,
)
from wsmux.book import BookSync, Continuity, OrderBook, SnapshotSource, Verdict
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownChannel, UnknownMessage, UnknownSymbol
from wsmux.exchanges.poloniex import PoloniexAdapter, PoloniexFuturesAdapter, poloniex_symbol, poloniex_unified
from wsmux.model import Instrument
from wsmux.testing import parse_events

RECV = 1_700_000_000_123_456_789
SPOT_UPDATE = (
    '{"channel":"book_lv2","data":[{"symbol":"BTC_USDT","createTime":1661123517832,"asks":[["21617.15","0.34"]],'
    '"bids":[],"lastId":4485675,"id":4485676,"ts":1661123517837}],"action":"update"}'
)
SPOT_TRADE = (
    '{"channel":"trades","data":[{"symbol":"BTC_USDT","amount":"248.3516391","quantity":"0.01149","takerSide":"sell",'
    '"createTime":1661123520381,"price":"21614.59","id":"60184114","ts":1661123520386}]}'
)
FUTURES_SNAPSHOT = (
    '{"channel":"book_lv2","data":[{"asks":[["46100","9284"]],"bids":[["34400.089","1"]],"lid":953,"id":954,'
    '"ts":1718870001418,"s":"BTC_USDT_PERP","cT":1718869676555}],"action":"snapshot"}'
)


def spot_book(action: str, last: int, seq: int, bids: Any, asks: Any) -> str:
    entry = {"symbol": "BTC_USDT", "createTime": 1, "asks": asks, "bids": bids, "lastId": last, "id": seq, "ts": 2}
    return json.dumps({"channel": "book_lv2", "data": [entry], "action": action})


# --- registry, symbols, subscribing ------------------------------------------------------


def test_registry_and_declarations() -> None:
    assert exchanges.get("poloniex") is PoloniexAdapter
    assert exchanges.get("poloniex-futures") is PoloniexFuturesAdapter
    assert PoloniexAdapter.default_url == "wss://ws.poloniex.com/ws/public"
    assert PoloniexFuturesAdapter.default_url == "wss://ws.poloniex.com/ws/v3/public"
    hb = PoloniexAdapter.heartbeat
    assert json.loads(hb.ping_message or "") == {"event": "ping"} and hb.ping_interval < 30
    assert not PoloniexAdapter.compressed


@pytest.mark.parametrize(
    ("unified", "native", "futures"), [("BTC-USDT", "BTC_USDT", False), ("BTC-USDT-PERP", "BTC_USDT_PERP", True)]
)
def test_symbols_round_trip(unified: str, native: str, futures: bool) -> None:
    assert poloniex_symbol(unified, futures=futures) == native
    assert poloniex_unified(native) == unified


@pytest.mark.parametrize(
    ("symbol", "futures"), [("BTC-USDT-PERP", False), ("BTC-USDT", True), ("BTC-USDT-20261225", True)]
)
def test_symbols_outside_the_market(symbol: str, futures: bool) -> None:
    with pytest.raises(UnknownSymbol):
        poloniex_symbol(symbol, futures=futures)
    assert poloniex_unified("BTC_USDT_20261225") is None


def test_channels_not_offered() -> None:
    with pytest.raises(UnknownChannel):
        PoloniexAdapter().subscribe([Subscription("poloniex", Channel.FUNDING, "BTC-USDT")])
    with pytest.raises(UnknownChannel):
        PoloniexFuturesAdapter().subscribe([Subscription("poloniex-futures", Channel.CANDLES, "BTC-USDT-PERP")])


def test_subscribe_groups_symbols_per_channel() -> None:
    a = PoloniexAdapter()
    subs = [
        Subscription("poloniex", Channel.BOOK, "BTC-USDT"),
        Subscription("poloniex", Channel.BOOK, "ETH-USDT"),
        Subscription("poloniex", Channel.QUOTES, "BTC-USDT"),
        Subscription("poloniex", Channel.CANDLES, "BTC-USDT"),
    ]
    assert [json.loads(m) for m in a.subscribe(subs)] == [
        {"event": "subscribe", "channel": ["book_lv2"], "symbols": ["BTC_USDT", "ETH_USDT"]},
        {"event": "subscribe", "channel": ["book"], "symbols": ["BTC_USDT"], "depth": 5},
        {"event": "subscribe", "channel": ["candles_minute_1"], "symbols": ["BTC_USDT"]},
    ]
    assert json.loads(a.unsubscribe(subs[:1])[0]) == {
        "event": "unsubscribe",
        "channel": ["book_lv2"],
        "symbols": ["BTC_USDT"],
    }
    many = [Subscription("poloniex", Channel.TRADES, f"C{i}-USDT") for i in range(60)]
    assert [len(json.loads(m)["symbols"]) for m in a.subscribe(many)] == [50, 10]


# --- control frames -----------------------------------------------------------------------


def test_acks_pong_and_errors() -> None:
    a = PoloniexAdapter()
    assert a.parse('{"event":"subscribe","channel":"book_lv2","symbols":["BTC_USDT"]}', RECV) == []
    assert a.parse('{"event":"pong"}', RECV) == []
    with pytest.raises(SubscriptionRejected, match="bad symbol"):
        a.parse('{"event":"error","message":"bad symbol"}', RECV)
    with pytest.raises(UnknownMessage):
        a.parse('{"event":"maintenance"}', RECV)
    with pytest.raises(UnknownMessage):
        a.parse('{"channel":"ticker","data":[]}', RECV)
    with pytest.raises(UnknownMessage):
        a.parse(SPOT_UPDATE.replace('"update"', '"partial"'), RECV)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1]",
        '{"channel":"book_lv2","data":{},"action":"update"}',
        SPOT_UPDATE.replace('"lastId":4485675', '"lastId":"4485675"'),
        SPOT_UPDATE.replace('"id":4485676', '"id":null'),
        SPOT_UPDATE.replace('"asks":[["21617.15","0.34"]]', '"asks":{"a":1}'),
        SPOT_TRADE.replace('"takerSide":"sell"', '"takerSide":"hold"'),
        SPOT_TRADE.replace('"symbol":"BTC_USDT"', '"symbol":"BTCUSDT"'),
    ],
)
def test_malformed_frames(frame: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        PoloniexAdapter().parse(frame, RECV)
    assert not isinstance(info.value, UnknownMessage)


# --- channels -----------------------------------------------------------------------------


def test_spot_update_from_the_sheet() -> None:
    (update,) = parse_events(PoloniexAdapter(), SPOT_UPDATE, RECV)
    assert isinstance(update, BookUpdate)
    assert (update.symbol, update.bids, update.asks) == ("BTC-USDT", (), ((21617.15, 0.34),))
    assert (update.seq, update.prev_seq, update.ts) == (4485676, 4485675, 1661123517837 * 10**6)


def test_spot_trade_from_the_sheet_uses_quantity() -> None:
    (trade,) = PoloniexAdapter().parse(SPOT_TRADE, RECV)
    assert trade == Trade("poloniex", "BTC-USDT", 21614.59, 0.01149, Side.SELL, "60184114", 1661123520386 * 10**6, RECV)


def test_futures_snapshot_from_the_docs_in_contracts_then_base_units() -> None:
    a = PoloniexFuturesAdapter()
    (snap,) = a.parse(FUTURES_SNAPSHOT, RECV)
    assert isinstance(snap, BookSnapshot)
    assert (snap.symbol, snap.bids, snap.asks, snap.seq) == (
        "BTC-USDT-PERP",
        ((34400.089, 1.0),),
        ((46100.0, 9284.0),),
        954,
    )
    a.use_instruments([Instrument("poloniex-futures", "BTC-USDT-PERP", "BTC_USDT_PERP", "perp", 0.01, 1.0, 0.001)])
    (snap,) = a.parse(FUTURES_SNAPSHOT, RECV)
    assert snap.asks == ((46100.0, 9284 * 0.001),)  # type: ignore[union-attr]
    update = FUTURES_SNAPSHOT.replace('"snapshot"', '"update"').replace('"lid":953,"id":954', '"lid":954,"id":955')
    (event,) = parse_events(a, update, RECV)
    assert isinstance(event, BookUpdate) and (event.seq, event.prev_seq) == (955, 954)
    assert event.bids == ((34400.089, 0.001),)


def test_futures_inverse_contracts_stay_in_contracts() -> None:
    """``ctType: "INVERSE"``: ``ctVal`` is a face value in the quote currency,
    not base units, so the sizes are not multiplied by it."""
    body = {
        "code": 200,
        "data": [{"symbol": "BTC_USDT_PERP", "tSz": "0.1", "lSz": "1", "ctVal": "100", "ctType": "INVERSE"}],
    }
    a = PoloniexFuturesAdapter()
    (inst,) = a.parse_instruments(json.dumps(body).encode())
    assert (inst.inverse, inst.contract_size) == (True, 100.0)
    a.use_instruments([inst])
    (snap,) = a.parse(FUTURES_SNAPSHOT, RECV)
    assert isinstance(snap, BookSnapshot) and snap.asks == ((46100.0, 9284.0),)


def test_quotes_from_the_book_channel() -> None:
    entry = {
        "symbol": "BTC_USDT",
        "createTime": 1,
        "asks": [["10.2", "3"], ["10.3", "1"]],
        "bids": [["10.1", "2"]],
        "id": 77,
        "ts": 1661123517837,
    }
    (quote,) = PoloniexAdapter().parse(json.dumps({"channel": "book", "data": [entry]}), RECV)
    assert quote == Quote("poloniex", "BTC-USDT", 10.1, 2.0, 10.2, 3.0, 1661123517837 * 10**6, RECV, 77)
    entry["bids"] = []
    (quote,) = PoloniexAdapter().parse(json.dumps({"channel": "book", "data": [entry]}), RECV)
    assert quote.bid_price != quote.bid_price  # type: ignore[attr-defined]  # nan: empty side


def test_spot_candle() -> None:
    entry = {
        "symbol": "BTC_USDT",
        "amount": "1000",
        "high": "21620",
        "quantity": "0.05",
        "tradeCount": 3,
        "low": "21600",
        "closeTime": 1661123579999,
        "startTime": 1661123520000,
        "close": "21610",
        "open": "21605",
        "ts": 1661123530000,
    }
    (bar,) = PoloniexAdapter().parse(json.dumps({"channel": "candles_minute_1", "data": [entry]}), RECV)
    assert bar == Candle(
        "poloniex",
        "BTC-USDT",
        "1m",
        1661123520000 * 10**6,
        21605.0,
        21620.0,
        21600.0,
        21610.0,
        0.05,
        False,
        1661123530000 * 10**6,
        RECV,
    )


def test_futures_trade_and_funding() -> None:
    a = PoloniexFuturesAdapter()
    trade = {
        "id": 291,
        "ts": 1718871802553,
        "s": "BTC_USDT_PERP",
        "px": "34400",
        "qty": "3",
        "amt": "0",
        "side": "buy",
        "cT": 1718871802534,
    }
    (t,) = a.parse(json.dumps({"channel": "trades", "data": [trade]}), RECV)
    assert t == Trade("poloniex-futures", "BTC-USDT-PERP", 34400.0, 3.0, Side.BUY, "291", 1718871802553 * 10**6, RECV)
    rate = {"s": "BTC_USDT_PERP", "fR": "0.0001", "fT": 1718899200000, "ts": 1718871802553}
    (f,) = a.parse(json.dumps({"channel": "funding_rate", "data": [rate]}), RECV)
    assert f == Funding(
        "poloniex-futures", "BTC-USDT-PERP", 0.0001, 1718899200000 * 10**6, None, 1718871802553 * 10**6, RECV
    )


def test_instruments() -> None:
    body = [
        {
            "symbol": "BTC_USDT",
            "state": "NORMAL",
            "symbolTradeLimit": {"symbol": "BTC_USDT", "priceScale": 2, "quantityScale": 6, "amountScale": 2},
        },
        {"symbol": "weird", "state": "NORMAL", "symbolTradeLimit": {"priceScale": 2, "quantityScale": 6}},
    ]
    (btc,) = PoloniexAdapter().parse_instruments(json.dumps(body).encode())
    assert (btc.symbol, btc.native, btc.tick_size, btc.lot_size) == ("BTC-USDT", "BTC_USDT", 0.01, 1e-6)
    futures = {
        "code": 200,
        "msg": "Success",
        "data": [{"symbol": "BTC_USDT_PERP", "tSz": "0.1", "lSz": "1", "minSz": "1", "ctVal": "0.001"}],
    }
    (perp,) = PoloniexFuturesAdapter().parse_instruments(json.dumps(futures).encode())
    assert (perp.symbol, perp.kind, perp.tick_size, perp.lot_size, perp.contract_size) == (
        "BTC-USDT-PERP",
        "perp",
        0.1,
        1.0,
        0.001,
    )
    with pytest.raises(MalformedMessage):
        PoloniexFuturesAdapter().parse_instruments(b'{"code":400,"msg":"no"}')
    with pytest.raises(MalformedMessage):
        PoloniexAdapter().parse_instruments(b"{")


# --- book rule ------------------------------------------------------------------------------


def test_rule_declares_the_sheet() -> None:
    for cls in (PoloniexAdapter, PoloniexFuturesAdapter):
        rule = cls().book_rule("BTC-USDT")
        assert (rule.snapshot, rule.continuity, rule.depth, rule.checksum) == (
            SnapshotSource.STREAM,
            Continuity.PREV_ID,
            20,
            None,
        )
        assert rule.level() is Integrity.SEQUENCE


def test_last_id_chain_snapshot_included() -> None:
    a = PoloniexAdapter()
    rule = a.book_rule("BTC-USDT")
    sync = BookSync(rule, OrderBook("poloniex", "BTC-USDT", max_depth=rule.depth))

    def offer(frame: str) -> Verdict:
        (event,) = a.parse(frame, RECV)
        return sync.on_snapshot(event) if isinstance(event, BookSnapshot) else sync.on_update(event)  # type: ignore[arg-type]

    assert offer(spot_book("update", 9, 10, [["1", "1"]], [])) is Verdict.IGNORED
    assert offer(spot_book("snapshot", 99, 100, [["10", "1"]], [["11", "1"]])) is Verdict.SYNCED
    assert offer(spot_book("update", 100, 101, [["10", "2"]], [])) is Verdict.APPLIED
    assert offer(spot_book("update", 100, 101, [["10", "3"]], [])) is Verdict.STALE
    # a later snapshot resets the book
    assert offer(spot_book("snapshot", 150, 151, [["9", "1"]], [["12", "1"]])) is Verdict.SYNCED
    assert sync.book.depth() == (((9.0, 1.0),), ((12.0, 1.0),))
    assert offer(spot_book("update", 152, 153, [["9", "2"]], [])) is Verdict.GAP
    assert (sync.expected, sync.received) == (151, 152)


def test_book_trimmed_to_20_levels() -> None:
    a = PoloniexAdapter()
    rule = a.book_rule("BTC-USDT")
    sync = BookSync(rule, OrderBook("poloniex", "BTC-USDT", max_depth=rule.depth))
    bids = [[str(100 - i), "1"] for i in range(20)]
    (snap,) = a.parse(spot_book("snapshot", 0, 1, bids, [["101", "1"]]), RECV)
    sync.on_snapshot(snap)  # type: ignore[arg-type]
    (diff,) = a.parse(spot_book("update", 1, 2, [["100.5", "1"]], []), RECV)
    assert sync.on_update(diff) is Verdict.APPLIED  # type: ignore[arg-type]
    depth = sync.book.depth()[0]
    assert len(depth) == 20 and depth[0] == (100.5, 1.0) and depth[-1] == (82.0, 1.0)
