"""BitgetAdapter / BitgetFuturesAdapter on hand-written frames in the format of
``shared/exchanges/bitget-v2.md``."""

from __future__ import annotations

import json
import random
import zlib
from typing import Any

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Funding,
    Integrity,
    OpenInterest,
    Quote,
    Side,
    Subscription,
    Trade,
    exchanges,
)
from wsmux.book import BookSync, OrderBook, Verdict
from wsmux.book.checksum import bitget_checksum
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownChannel, UnknownMessage, UnknownSymbol
from wsmux.exchanges.bitget import (
    BitgetAdapter,
    BitgetFuturesAdapter,
    bitget_book_checksum,
    bitget_native,
    bitget_unified,
)
from wsmux.testing import parse_events

RECV = 1_700_000_000_123_456_789
ARG = {"instType": "SPOT", "channel": "books", "instId": "BTCUSDT"}


def crc_signed(text: str) -> int:
    value = zlib.crc32(text.encode())
    return value - 2**32 if value >= 2**31 else value


def books(action: str, bids: list[list[str]], asks: list[list[str]], **fields: Any) -> str:
    entry = {"asks": asks, "bids": bids, "ts": "1695710946294", **fields}
    return json.dumps({"action": action, "arg": ARG, "data": [entry], "ts": 1695710946294})


def spot(*subs: Subscription) -> BitgetAdapter:
    a = BitgetAdapter()
    a.subscribe(list(subs) or [Subscription("bitget", Channel.BOOK, "BTC-USDT")])
    return a


# --- registry, symbols, subscribing ------------------------------------------------------


def test_registry() -> None:
    assert exchanges.get("bitget") is BitgetAdapter
    assert exchanges.get("bitget-futures") is BitgetFuturesAdapter
    assert BitgetAdapter.default_url == BitgetFuturesAdapter.default_url == "wss://ws.bitget.com/v2/ws/public"


@pytest.mark.parametrize(
    ("unified", "native", "futures"),
    [
        ("BTC-USDT", ("SPOT", "BTCUSDT"), False),
        ("ETH-BTC", ("SPOT", "ETHBTC"), False),
        ("BTC-USDT-PERP", ("USDT-FUTURES", "BTCUSDT"), True),
        ("BTC-USD-PERP", ("COIN-FUTURES", "BTCUSD"), True),
        ("ETH-USD-20231229", ("COIN-FUTURES", "ETHUSD_231229"), True),
        ("BTC-USDC-PERP", ("USDC-FUTURES", "BTCPERP"), True),
    ],
)
def test_symbols_round_trip(unified: str, native: tuple[str, str], futures: bool) -> None:
    assert bitget_native(unified, futures=futures) == native
    assert bitget_unified(*native) == unified


@pytest.mark.parametrize(
    ("symbol", "futures"),
    [("BTC-USDT-PERP", False), ("BTC-USDT", True), ("BTC-EUR-PERP", True), ("BTC-USDT-20261225", True)],
)
def test_symbols_outside_the_market(symbol: str, futures: bool) -> None:
    with pytest.raises(UnknownSymbol):
        bitget_native(symbol, futures=futures)


def test_unified_of_unknown_instruments() -> None:
    assert bitget_unified("SPOT", "XYZ") is None
    assert bitget_unified("USDT-FUTURES", "BTCUSD") is None
    assert bitget_unified("OPTIONS", "BTCUSDT") is None


def test_check_refuses_what_the_market_lacks() -> None:
    with pytest.raises(UnknownChannel):
        BitgetAdapter().check(Subscription("bitget", Channel.FUNDING, "BTC-USDT"))
    with pytest.raises(UnknownChannel):
        BitgetFuturesAdapter().check(Subscription("bitget-futures", Channel.LIQUIDATIONS, "BTC-USDT-PERP"))
    with pytest.raises(UnknownSymbol):
        BitgetFuturesAdapter().check(Subscription("bitget-futures", Channel.FUNDING, "BTC-USD-20261225"))


def test_subscribe_messages() -> None:
    a = BitgetFuturesAdapter()
    subs = [
        Subscription("bitget-futures", Channel.BOOK, "BTC-USDT-PERP"),
        Subscription("bitget-futures", Channel.QUOTES, "BTC-USD-PERP"),
        Subscription("bitget-futures", Channel.TRADES, "BTC-USDT-PERP"),
        Subscription("bitget-futures", Channel.CANDLES, "BTC-USDT-PERP"),
    ]
    (message,) = a.subscribe(subs)
    assert json.loads(message) == {
        "op": "subscribe",
        "args": [
            {"instType": "USDT-FUTURES", "channel": "books", "instId": "BTCUSDT"},
            {"instType": "COIN-FUTURES", "channel": "books1", "instId": "BTCUSD"},
            {"instType": "USDT-FUTURES", "channel": "trade", "instId": "BTCUSDT"},
            {"instType": "USDT-FUTURES", "channel": "candle1m", "instId": "BTCUSDT"},
        ],
    }
    (message,) = a.unsubscribe(subs[:1])
    assert json.loads(message)["op"] == "unsubscribe"


def test_subscribe_splits_into_messages_of_50_args() -> None:
    a = BitgetAdapter()
    subs = [Subscription("bitget", Channel.TRADES, f"C{i}-USDT") for i in range(120)]
    assert [len(json.loads(m)["args"]) for m in a.subscribe(subs)] == [50, 50, 20]


def test_funding_and_open_interest_share_one_ticker_topic() -> None:
    a = BitgetFuturesAdapter()
    f = Subscription("bitget-futures", Channel.FUNDING, "BTC-USDT-PERP")
    oi = Subscription("bitget-futures", Channel.OPEN_INTEREST, "BTC-USDT-PERP")
    ticker = {"instType": "USDT-FUTURES", "channel": "ticker", "instId": "BTCUSDT"}
    assert [json.loads(m)["args"] for m in a.subscribe([f])] == [[ticker]]
    assert a.subscribe([oi]) == []  # already subscribed
    assert a.unsubscribe([f]) == []  # open interest still wants it
    assert [json.loads(m)["args"] for m in a.unsubscribe([oi])] == [[ticker]]
    assert a.unsubscribe([oi]) == []


def test_heartbeat_and_limits() -> None:
    hb = BitgetAdapter.heartbeat
    assert (hb.ping_message, hb.ping_interval, hb.ws_ping_interval) == ("ping", 30.0, None)
    assert hb.silence_timeout > hb.ping_interval
    limits = BitgetAdapter.limits
    assert limits.messages_per_second <= 10 and limits.streams_per_connection <= 1000
    assert limits.max_connection_age == 86_400.0
    assert (limits.connections_per_window, limits.connection_window) == (300, 300.0)
    assert not BitgetAdapter.compressed


# --- control frames -----------------------------------------------------------------------


def test_pong_and_acks_are_quiet() -> None:
    a = spot()
    assert a.parse("pong", RECV) == []
    assert a.parse(b"pong", RECV) == []
    assert a.parse(json.dumps({"event": "subscribe", "arg": ARG}), RECV) == []
    assert a.parse(json.dumps({"event": "unsubscribe", "arg": ARG}), RECV) == []


def test_error_event_is_a_rejected_subscription() -> None:
    frame = json.dumps({"event": "error", "code": 30001, "msg": "instType:SPOT,channel:books,instId:X doesn't exist"})
    with pytest.raises(SubscriptionRejected, match="30001"):
        spot().parse(frame, RECV)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        b"\xff\xfe",
        "[]",
        json.dumps({"action": "update", "arg": ARG, "data": {"bids": []}}),
        json.dumps({"action": "update", "arg": ARG, "data": [{"bids": [], "asks": []}]}),  # no ts
        books("update", [["1", "2"]], [], seq=2, pseq=1, checksum="abc"),
        books("snapshot", [[1, "2"]], [], seq=2),  # a number where the venue sends text
        json.dumps({"action": "update", "arg": {"instType": "SPOT", "channel": "books"}, "data": []}),
    ],
)
def test_malformed_frames_raise_malformed_message(frame: str | bytes) -> None:
    with pytest.raises(MalformedMessage) as info:
        spot().parse(frame, RECV)
    assert not isinstance(info.value, UnknownMessage)


def test_unknown_message_types_say_so() -> None:
    a = spot()
    with pytest.raises(UnknownMessage):
        a.parse(json.dumps({"event": "notice", "msg": "maintenance"}), RECV)
    with pytest.raises(UnknownMessage):
        a.parse(json.dumps({"action": "snapshot", "arg": {**ARG, "channel": "books15"}, "data": []}), RECV)
    with pytest.raises(UnknownMessage):
        a.parse(books("partial", [], []), RECV)


# --- channels -----------------------------------------------------------------------------


def test_books_update_from_the_sheet() -> None:
    frame = (
        '{"action":"update","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},"data":[{"asks":'
        '[["26274.9","0.0009"],["26275.0","0"]],"bids":[["26273.5","0.5120"]],"checksum":-750266015,'
        '"seq":3419212,"pseq":3419211,"ts":"1695710946294"}],"ts":1695710946294}'
    )
    (update,) = parse_events(spot(), frame, RECV)
    assert isinstance(update, BookUpdate)
    assert update.symbol == "BTC-USDT"
    assert update.bids == ((26273.5, 0.512),)
    assert update.asks == ((26274.9, 0.0009), (26275.0, 0.0))
    assert update.bids_text == (("26273.5", "0.5120"),)  # the text as sent: trailing zeros kept
    assert update.asks_text == (("26274.9", "0.0009"), ("26275.0", "0"))
    assert (update.seq, update.prev_seq, update.checksum) == (3419212, 3419211, -750266015)
    assert update.ts == 1695710946294 * 1_000_000 and update.recv_ns == RECV


def test_books_snapshot_keeps_text_and_treats_checksum_0_as_none() -> None:
    frame = books("snapshot", [["100.10", "1.50"]], [["100.20", "2"]], seq=7, pseq=0, checksum=0)
    (snap,) = spot().parse(frame, RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == ((100.1, 1.5),) and snap.asks == ((100.2, 2.0),)
    assert snap.bids_text == (("100.10", "1.50"),) and snap.asks_text == (("100.20", "2"),)
    assert (snap.seq, snap.checksum) == (7, None)


def test_uta_style_text_ids() -> None:
    """2025 frames (ccxt) carry ``seq`` as text: read as integers."""
    frame = books("update", [], [["1", "1"]], seq="1343064377779269632", pseq="1343064377779269631", checksum=0)
    (diff,) = spot().parse(frame, RECV)
    assert (diff.seq, diff.prev_seq, diff.checksum) == (1343064377779269632, 1343064377779269631, None)  # type: ignore[union-attr]


def test_trades_from_the_sheet() -> None:
    a = spot(Subscription("bitget", Channel.TRADES, "BTC-USDT"))
    arg = {"instType": "SPOT", "channel": "trade", "instId": "BTCUSDT"}
    item = {
        "ts": "1701910980366",
        "price": "43854.01",
        "size": "0.0535",
        "side": "buy",
        "tradeId": "1116461060594286593",
    }
    # the subscribe-time snapshot replays past trades: not delivered
    assert a.parse(json.dumps({"action": "snapshot", "arg": arg, "data": [item], "ts": 1701910980730}), RECV) == []
    sell = {**item, "side": "sell", "tradeId": "1116461060594286594"}
    events = a.parse(json.dumps({"action": "update", "arg": arg, "data": [item, sell], "ts": 1701910980730}), RECV)
    assert events == [
        Trade("bitget", "BTC-USDT", 43854.01, 0.0535, Side.BUY, "1116461060594286593", 1701910980366 * 10**6, RECV),
        Trade("bitget", "BTC-USDT", 43854.01, 0.0535, Side.SELL, "1116461060594286594", 1701910980366 * 10**6, RECV),
    ]


def test_books1_is_a_quote() -> None:
    a = spot(Subscription("bitget", Channel.QUOTES, "BTC-USDT"))
    entry = {"asks": [["26274.9", "0.0009"]], "bids": [["26273.5", "0.512"]], "checksum": 0, "seq": 5, "ts": "1"}
    frame = json.dumps({"action": "snapshot", "arg": {**ARG, "channel": "books1"}, "data": [entry], "ts": 1})
    (quote,) = a.parse(frame, RECV)
    assert quote == Quote("bitget", "BTC-USDT", 26273.5, 0.512, 26274.9, 0.0009, 1_000_000, RECV, 5)


def test_candles() -> None:
    a = spot(Subscription("bitget", Channel.CANDLES, "BTC-USDT"))
    arg = {**ARG, "channel": "candle1m"}
    rows = [
        ["1695685440000", "27000", "27001", "26999", "27000.5", "0.5", "13500", "13500"],
        ["1695685500000", "27000.5", "27002", "27000", "27001", "0.057", "1539", "1539"],
    ]
    events = a.parse(json.dumps({"action": "snapshot", "arg": arg, "data": rows, "ts": 1}), RECV)
    assert all(isinstance(e, Candle) for e in events)
    assert [(e.start_ts, e.closed) for e in events] == [  # type: ignore[attr-defined]
        (1695685440000 * 10**6, True),
        (1695685500000 * 10**6, False),
    ]
    (bar,) = a.parse(json.dumps({"action": "update", "arg": arg, "data": rows[1:], "ts": 1}), RECV)
    assert bar == Candle(
        "bitget", "BTC-USDT", "1m", 1695685500000 * 10**6, 27000.5, 27002, 27000, 27001, 0.057, False, None, RECV
    )


def test_ticker_gives_funding_and_open_interest_as_subscribed() -> None:
    a = BitgetFuturesAdapter()
    a.subscribe([Subscription("bitget-futures", Channel.OPEN_INTEREST, "BTC-USDT-PERP")])
    entry = {
        "instId": "BTCUSDT",
        "lastPr": "27000",
        "bidPr": "26999",
        "askPr": "27000",
        "markPrice": "27000.1",
        "indexPrice": "27000.2",
        "fundingRate": "0.0001",
        "nextFundingTime": "1695722400000",
        "holdingAmount": "1234.5",
        "ts": "1695702438018",
    }
    frame = json.dumps(
        {
            "action": "snapshot",
            "arg": {"instType": "USDT-FUTURES", "channel": "ticker", "instId": "BTCUSDT"},
            "data": [entry],
            "ts": 1,
        }
    )
    assert a.parse(frame, RECV) == [
        OpenInterest("bitget-futures", "BTC-USDT-PERP", 1234.5, 1695702438018 * 10**6, RECV)
    ]
    a.subscribe([Subscription("bitget-futures", Channel.FUNDING, "BTC-USDT-PERP")])
    funding, _ = a.parse(frame, RECV)
    assert funding == Funding(
        "bitget-futures", "BTC-USDT-PERP", 0.0001, 1695722400000 * 10**6, 27000.1, 1695702438018 * 10**6, RECV
    )


def test_instruments_from_the_documented_shapes() -> None:
    spot_body = {
        "code": "00000",
        "msg": "success",
        "data": [
            {
                "symbol": "BTCUSDT",
                "baseCoin": "BTC",
                "quoteCoin": "USDT",
                "pricePrecision": "2",
                "quantityPrecision": "6",
                "minTradeAmount": "0",
                "status": "online",
            },
            {"symbol": "odd", "baseCoin": "odd", "quoteCoin": "x", "pricePrecision": "2", "quantityPrecision": "6"},
        ],
    }
    (btc,) = BitgetAdapter().parse_instruments(json.dumps(spot_body).encode())
    assert (btc.symbol, btc.native, btc.kind, btc.tick_size, btc.lot_size) == (
        "BTC-USDT",
        "BTCUSDT",
        "spot",
        0.01,
        1e-06,
    )
    mix_body = {
        "code": "00000",
        "data": [
            {
                "symbol": "BTCUSDT",
                "baseCoin": "BTC",
                "quoteCoin": "USDT",
                "pricePlace": "1",
                "priceEndStep": "5",
                "volumePlace": "3",
                "sizeMultiplier": "0.001",
                "minTradeNum": "0.001",
                "symbolType": "perpetual",
            },
            {
                "symbol": "ETHUSD_231229",
                "baseCoin": "ETH",
                "quoteCoin": "USD",
                "pricePlace": "2",
                "priceEndStep": "1",
                "volumePlace": "2",
                "sizeMultiplier": "0.01",
                "symbolType": "delivery",
            },
        ],
    }
    perp, dated = BitgetFuturesAdapter().parse_instruments(json.dumps(mix_body).encode())
    assert (perp.symbol, perp.kind, perp.tick_size, perp.lot_size, perp.contract_size) == (
        "BTC-USDT-PERP",
        "perp",
        0.5,
        0.001,
        None,
    )
    assert (dated.symbol, dated.kind) == ("ETH-USD-20231229", "future")
    with pytest.raises(MalformedMessage):
        BitgetAdapter().parse_instruments(b'{"code":"40001","msg":"nope"}')
    with pytest.raises(MalformedMessage):
        BitgetAdapter().parse_instruments(b"{")


# --- book rule and checksum -------------------------------------------------------------------


def sync_for(a: BitgetAdapter) -> BookSync:
    rule = a.book_rule("BTC-USDT")
    return BookSync(rule, OrderBook("bitget", "BTC-USDT", max_depth=rule.depth, keep_text=rule.keep_text))


def offer(sync: BookSync, a: BitgetAdapter, frame: str) -> Verdict:
    (event,) = a.parse(frame, RECV)
    if isinstance(event, BookSnapshot):
        return sync.on_snapshot(event)
    return sync.on_update(event)  # type: ignore[arg-type]


def test_rule_declares_the_sheet() -> None:
    rule = BitgetAdapter().book_rule("BTC-USDT")
    assert rule.keep_text and rule.checksum is bitget_book_checksum and rule.checksum_depth == 25
    assert rule.depth == 400
    assert rule.level() is Integrity.SEQUENCE  # checksums may be 0 in 2026: the pseq chain proves it


def test_pseq_chain_and_a_broken_chain() -> None:
    a = spot()
    sync = sync_for(a)
    assert offer(sync, a, books("snapshot", [["10", "1"]], [["11", "1"]], seq=100, pseq=0)) is Verdict.SYNCED
    assert offer(sync, a, books("update", [["10", "2"]], [], seq=101, pseq=100)) is Verdict.APPLIED
    assert offer(sync, a, books("update", [["10", "3"]], [], seq=101, pseq=100)) is Verdict.STALE  # duplicate
    # seq need not grow by one: only pseq is compared
    assert offer(sync, a, books("update", [["9", "1"]], [], seq=150, pseq=101)) is Verdict.APPLIED
    assert offer(sync, a, books("update", [["9", "2"]], [], seq=152, pseq=151)) is Verdict.GAP
    assert (sync.expected, sync.received) == (150, 151)
    assert not sync.valid


def test_updates_without_pseq_are_checked_by_checksum_only() -> None:
    a = spot()
    sync = sync_for(a)
    assert offer(sync, a, books("snapshot", [["10", "1"]], [["11", "1"]], seq=100)) is Verdict.SYNCED
    good = crc_signed("10:2:11:1")
    assert offer(sync, a, books("update", [["10", "2"]], [], seq=105, checksum=good)) is Verdict.APPLIED
    assert offer(sync, a, books("update", [["10", "3"]], [], seq=106, checksum=good)) is Verdict.CHECKSUM


def test_checksum_of_a_hand_built_book() -> None:
    """The documented string, built by hand: top 25 interleaved, exact text,
    signed CRC32; a shorter side's missing entries skipped."""
    a = spot()
    sync = sync_for(a)
    bids = [[f"{100 - i}.50", f"{i + 1}.000"] for i in range(30)]
    asks = [[f"{101 + i}.0", f"{i + 1}0"] for i in range(3)]
    assert offer(sync, a, books("snapshot", bids, asks, seq=1)) is Verdict.SYNCED
    parts = []
    for i in range(25):
        parts += bids[i]
        if i < 3:
            parts += asks[i]
    expected = crc_signed(":".join(parts))
    assert bitget_book_checksum(sync.book) == expected
    assert offer(sync, a, books("update", [], [], seq=2, pseq=1, checksum=expected)) is Verdict.APPLIED
    assert sync.stats.checksums_ok == 1


def test_book_checksum_equals_the_reference_on_random_books() -> None:
    rng = random.Random(5)
    for _ in range(50):
        book = OrderBook("bitget", "X-Y", keep_text=True)
        nb, na = rng.randint(0, 40), rng.randint(0, 40)
        bids = [
            (f"{1000 - i}.{rng.randint(0, 9)}", f"{rng.randint(1, 99)}.{'0' * rng.randint(0, 3)}1") for i in range(nb)
        ]
        asks = [(f"{1001 + i}.{rng.randint(0, 9)}", str(rng.randint(1, 99))) for i in range(na)]
        book.apply_snapshot(
            tuple((float(p), float(s)) for p, s in bids),
            tuple((float(p), float(s)) for p, s in asks),
            tuple(bids),
            tuple(asks),
        )
        assert bitget_book_checksum(book) == bitget_checksum(bids, asks)


def test_checksum_mismatch_breaks_and_zero_is_not_verified() -> None:
    a = spot()
    sync = sync_for(a)
    assert offer(sync, a, books("snapshot", [["10", "1"]], [["11", "1"]], seq=1)) is Verdict.SYNCED
    assert offer(sync, a, books("update", [["10", "2"]], [], seq=2, pseq=1, checksum=0)) is Verdict.APPLIED
    assert sync.stats.checksums_ok == 0
    assert offer(sync, a, books("update", [["10", "3"]], [], seq=3, pseq=2, checksum=12345)) is Verdict.CHECKSUM
    assert not sync.valid


def test_crossed_update_breaks_the_book() -> None:
    a = spot()
    sync = sync_for(a)
    offer(sync, a, books("snapshot", [["10", "1"]], [["11", "1"]], seq=1))
    assert offer(sync, a, books("update", [["11", "1"]], [], seq=2, pseq=1)) is Verdict.CROSSED


def test_book_trimmed_to_400_levels() -> None:
    a = spot()
    sync = sync_for(a)
    bids = [[str(1000 - i), "1"] for i in range(400)]
    asks = [[str(1001 + i), "1"] for i in range(400)]
    offer(sync, a, books("snapshot", bids, asks, seq=1))
    assert offer(sync, a, books("update", [["1000.5", "1"]], [], seq=2, pseq=1)) is Verdict.APPLIED
    depth = sync.book.depth()
    assert len(depth[0]) == 400 and depth[0][0] == (1000.5, 1.0) and depth[0][-1] == (602.0, 1.0)
