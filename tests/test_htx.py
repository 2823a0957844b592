"""HtxAdapter / HtxSwapAdapter on hand-written frames in the format of
``shared/exchanges/htx-huobi.md`` (examples from the sheet where it has them)."""

from __future__ import annotations

import gzip
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
    Liquidation,
    Quote,
    Side,
    Subscription,
    Trade,
    exchanges,
)
from wsmux._pipeline import Feed, Send
from wsmux.adapter import Reply
from wsmux.book import BookSync, Continuity, OrderBook, SnapshotSource, Verdict
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownMessage,
    UnknownSymbol,
)
from wsmux.exchanges.htx import HtxAdapter, HtxSwapAdapter, htx_spot_symbol, htx_swap_symbol
from wsmux.model import Instrument
from wsmux.testing import parse_events

RECV = 1_700_000_000_123_456_789
MBP = "market.btcusdt.mbp.150"
DEPTH = "market.BTC-USDT.depth.size_150.high_freq"


def spot(*subs: Subscription) -> HtxAdapter:
    a = HtxAdapter()
    a.subscribe(list(subs) or [Subscription("htx", Channel.BOOK, "BTC-USDT")])
    return a


def swap(*subs: Subscription) -> HtxSwapAdapter:
    a = HtxSwapAdapter()
    a.subscribe(list(subs) or [Subscription("htx-swap", Channel.BOOK, "BTC-USDT-PERP")])
    return a


def mbp(seq: int, prev: int, bids: Any = None, asks: Any = None, ts: int = 1573199608679) -> str:
    tick: dict[str, Any] = {"seqNum": seq, "prevSeqNum": prev}
    if bids is not None:
        tick["bids"] = bids
    if asks is not None:
        tick["asks"] = asks
    return json.dumps({"ch": MBP, "ts": ts, "tick": tick})


def rep(seq: int, bids: Any, asks: Any) -> str:
    data = {"seqNum": seq, "bids": bids, "asks": asks}
    return json.dumps({"id": f"req:{MBP}", "rep": MBP, "status": "ok", "ts": 1573199608000, "data": data})


# --- registry, symbols, subscribing ------------------------------------------------------


def test_registry_and_declarations() -> None:
    assert exchanges.get("htx") is HtxAdapter and exchanges.get("htx-swap") is HtxSwapAdapter
    assert HtxAdapter.compressed and HtxSwapAdapter.compressed
    assert HtxAdapter.default_url == "wss://api.huobi.pro/ws"
    assert HtxSwapAdapter.default_url == "wss://api.hbdm.com/linear-swap-ws"
    assert HtxAdapter.heartbeat.ping_message is None  # the server pings; wsmux answers
    assert HtxAdapter.limits.topics_per_message == 1


@pytest.mark.parametrize(("unified", "native"), [("BTC-USDT", "btcusdt"), ("TRIO-ETH", "trioeth")])
def test_spot_symbols(unified: str, native: str) -> None:
    assert htx_spot_symbol(unified) == native
    a = spot(Subscription("htx", Channel.TRADES, unified))
    assert a._unified(native) == unified
    assert HtxAdapter()._guess_unified(native) == unified


@pytest.mark.parametrize(
    ("unified", "native"), [("BTC-USDT-PERP", "BTC-USDT"), ("BTC-USDT-20210625", "BTC-USDT-210625")]
)
def test_swap_symbols(unified: str, native: str) -> None:
    assert htx_swap_symbol(unified) == native
    assert HtxSwapAdapter()._guess_unified(native) == unified


@pytest.mark.parametrize(
    ("adapter", "symbol"),
    [(HtxAdapter, "BTC-USDT-PERP"), (HtxSwapAdapter, "BTC-USDT"), (HtxSwapAdapter, "BTC-USD-PERP")],
)
def test_symbols_outside_the_market(adapter: type[Any], symbol: str) -> None:
    with pytest.raises(UnknownSymbol):
        adapter().to_native(symbol)


def test_check_refuses_channels_not_offered() -> None:
    with pytest.raises(UnknownChannel):
        HtxAdapter().subscribe([Subscription("htx", Channel.FUNDING, "BTC-USDT")])


def test_spot_subscribe_routes_and_req() -> None:
    a = HtxAdapter(url="ws://127.0.0.1:1/ws")
    book = Subscription("htx", Channel.BOOK, "BTC-USDT")
    trade = Subscription("htx", Channel.TRADES, "BTC-USDT")
    assert a.route(book) == "feed" and a.route(trade) == ""
    assert a.connect_url([book]) == "ws://127.0.0.1:1/feed" and a.connect_url([trade]) == "ws://127.0.0.1:1/ws"
    assert HtxAdapter().connect_url([book]) == "wss://api.huobi.pro/feed"
    assert [json.loads(m) for m in a.subscribe([book, trade])] == [
        {"sub": MBP, "id": f"sub:{MBP}"},
        {"req": MBP, "id": f"req:{MBP}"},  # the snapshot, after buffering began
        {"sub": "market.btcusdt.trade.detail", "id": "sub:market.btcusdt.trade.detail"},
    ]
    assert [json.loads(m) for m in a.resync_messages(book)] == [{"req": MBP, "id": f"req:{MBP}"}]
    assert [json.loads(m) for m in a.unsubscribe([book])] == [{"unsub": MBP, "id": f"unsub:{MBP}"}]


def test_swap_subscribe_asks_for_incremental_depth() -> None:
    a = HtxSwapAdapter()
    subs = [
        Subscription("htx-swap", Channel.BOOK, "BTC-USDT-PERP"),
        Subscription("htx-swap", Channel.QUOTES, "ETH-USDT-PERP"),
    ]
    assert [json.loads(m) for m in a.subscribe(subs)] == [
        {"sub": DEPTH, "id": f"sub:{DEPTH}", "data_type": "incremental"},
        {"sub": "market.ETH-USDT.bbo", "id": "sub:market.ETH-USDT.bbo"},
    ]
    unsub, sub = a.resync_messages(subs[0])  # the default: unsubscribe, subscribe again
    assert json.loads(unsub)["unsub"] == DEPTH and json.loads(sub)["sub"] == DEPTH


# --- framing and control frames ------------------------------------------------------------


def test_decompress_and_raw_gzip_frames() -> None:
    a = spot()
    frame = gzip.compress(b'{"ping":1618678073643}')
    assert a.decompress(frame) == b'{"ping":1618678073643}'
    (reply,) = a.parse(frame, RECV)  # a raw frame (a replayed capture) is gunzipped too
    assert isinstance(reply, Reply) and json.loads(reply.message) == {"pong": 1618678073643}
    with pytest.raises(MalformedMessage):
        a.decompress(b"\x1f\x8b not gzip")
    with pytest.raises(MalformedMessage):
        a.parse(b"\x1f\x8b not gzip", RECV)


def test_acks_pongs_and_errors() -> None:
    a = spot()
    ack = {"id": "sub:" + MBP, "status": "ok", "subbed": MBP, "ts": 1489474081631}
    assert a.parse(json.dumps(ack), RECV) == []
    assert a.parse(json.dumps({"id": "x", "status": "ok", "unsubbed": MBP, "ts": 1}), RECV) == []
    assert a.parse('{"pong":5}', RECV) == []
    error = {"id": "sub:market.nope.bbo", "status": "error", "err-code": "bad-request", "err-msg": "invalid topic"}
    with pytest.raises(SubscriptionRejected, match="invalid topic"):
        a.parse(json.dumps(error), RECV)
    error["id"] = "unsub:market.nope.bbo"
    error["err-msg"] = "unsub with not subbed topic"
    with pytest.raises(RemoteError, match="not subbed") as info:
        a.parse(json.dumps(error), RECV)
    assert not isinstance(info.value, SubscriptionRejected)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        mbp(5, "4", [[1, 1]]),  # type: ignore[arg-type]
        json.dumps({"ch": MBP, "ts": 1, "tick": {"seqNum": 5}}),
        json.dumps({"ch": MBP, "ts": 1, "tick": {"seqNum": 5, "prevSeqNum": 4, "bids": {"a": 1}}}),
        json.dumps({"ch": 5, "tick": {}}),
        json.dumps({"ch": "market.btcusdt.trade.detail", "ts": 1, "tick": {"data": [{"price": 1}]}}),
        json.dumps({"id": "r", "rep": MBP, "status": "ok", "data": {"seqNum": "5"}}),
    ],
)
def test_malformed_frames_raise_malformed_message(frame: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        spot().parse(frame, RECV)
    assert not isinstance(info.value, UnknownMessage)


def test_unknown_messages_say_so() -> None:
    a = spot()
    with pytest.raises(UnknownMessage):
        a.parse(json.dumps({"ch": "market.btcusdt.mbp.5", "ts": 1, "tick": {"seqNum": 1, "prevSeqNum": 0}}), RECV)
    with pytest.raises(UnknownMessage):
        a.parse(json.dumps({"ch": "market.btcusdt.depth.step0", "ts": 1, "tick": {}}), RECV)
    with pytest.raises(UnknownMessage):
        a.parse(json.dumps({"op": "notify", "topic": "x"}), RECV)


# --- channels -----------------------------------------------------------------------------


def test_trade_from_the_2021_recording() -> None:
    frame = (
        '{"ch":"market.trioeth.trade.detail","ts":1618678027942,"tick":{"id":100182534526,"ts":1618678027940,'
        '"data":[{"id":100182534526255757567432481,"ts":1618678027940,"tradeId":100045088885,"amount":20995.88,'
        '"price":9.2E-7,"direction":"buy"}]}}'
    )
    a = spot(Subscription("htx", Channel.TRADES, "TRIO-ETH"))
    assert a.parse(frame, RECV) == [
        Trade("htx", "TRIO-ETH", 9.2e-7, 20995.88, Side.BUY, "100045088885", 1618678027940 * 10**6, RECV)
    ]


def test_mbp_update_from_the_docs() -> None:
    # the sheet's example is mbp.5 (a side absent); the same fields on mbp.150
    frame = mbp(100020146795, 100020146794, asks=[[645.14, 26.75597395914065]])
    (update,) = parse_events(spot(), frame, RECV)
    assert isinstance(update, BookUpdate)
    assert update.bids == () and update.asks == ((645.14, 26.75597395914065),)
    assert (update.seq, update.first_seq, update.prev_seq) == (100020146795, 100020146795, 100020146794)
    assert update.ts == 1573199608679 * 10**6 and update.checksum is None and update.bids_text is None


def test_req_answer_is_the_snapshot() -> None:
    (snap,) = spot().parse(rep(100, [[10.5, 1], [10.4, 2e-7]], [[10.6, 3]]), RECV)
    assert isinstance(snap, BookSnapshot)
    assert (snap.symbol, snap.seq, snap.bids, snap.asks) == (
        "BTC-USDT",
        100,
        ((10.5, 1.0), (10.4, 2e-7)),
        ((10.6, 3.0),),
    )


def test_spot_bbo_and_candle() -> None:
    a = spot(Subscription("htx", Channel.QUOTES, "BTC-USDT"))
    tick = {
        "seqId": 11,
        "ask": 10.6,
        "askSize": 1.5,
        "bid": 10.5,
        "bidSize": 2,
        "quoteTime": 1630000000001,
        "symbol": "btcusdt",
    }
    (quote,) = a.parse(json.dumps({"ch": "market.btcusdt.bbo", "ts": 1630000000002, "tick": tick}), RECV)
    assert quote == Quote("htx", "BTC-USDT", 10.5, 2.0, 10.6, 1.5, 1630000000001 * 10**6, RECV, 11)
    kline = {
        "id": 1630000020,
        "open": 1.0,
        "close": 1.5,
        "low": 0.5,
        "high": 2.0,
        "amount": 7.5,
        "vol": 10.0,
        "count": 3,
    }
    (bar,) = a.parse(json.dumps({"ch": "market.btcusdt.kline.1min", "ts": 1630000030000, "tick": kline}), RECV)
    assert bar == Candle(
        "htx", "BTC-USDT", "1m", 1630000020 * 10**9, 1.0, 2.0, 0.5, 1.5, 7.5, False, 1630000030000 * 10**6, RECV
    )


def test_swap_incremental_snapshot_from_the_docs_then_updates() -> None:
    snapshot = (
        '{"ch":"market.BTC-USDT.depth.size_20.high_freq","tick":{"asks":[[13081.9,206]],"bids":[[13071.9,38]],'
        '"ch":"market.BTC-USDT.depth.size_20.high_freq","event":"snapshot","id":131597620,"mrid":131597620,'
        '"ts":1603707712356,"version":1512467},"ts":1603707712357}'
    ).replace("size_20", "size_150")
    a = swap()
    (snap,) = a.parse(snapshot, RECV)
    assert isinstance(snap, BookSnapshot)
    assert (snap.bids, snap.asks, snap.seq, snap.ts) == (
        ((13071.9, 38.0),),
        ((13081.9, 206.0),),
        1512467,
        1603707712356 * 10**6,
    )
    update = json.dumps(
        {
            "ch": DEPTH,
            "tick": {
                "asks": [[13081.9, 0]],
                "bids": [],
                "event": "update",
                "version": 1512468,
                "ts": 1603707712400,
                "ch": DEPTH,
                "id": 1,
                "mrid": 1,
            },
            "ts": 1,
        }
    )
    (event,) = parse_events(a, update, RECV)
    assert isinstance(event, BookUpdate) and event.asks == ((13081.9, 0.0),) and event.seq == 1512468
    # contract sizes learnt from the instruments endpoint: sizes in base units
    a.use_instruments([Instrument("htx-swap", "BTC-USDT-PERP", "BTC-USDT", "perp", 0.1, 1.0, 0.001)])
    (snap,) = a.parse(snapshot, RECV)
    assert snap.bids == ((13071.9, 38 * 0.001),) and snap.asks == ((13081.9, 206 * 0.001),)  # type: ignore[union-attr]
    (event,) = parse_events(a, update.replace("[13081.9, 0]", "[13081.9, 5]"), RECV)
    assert event.asks == ((13081.9, 5 * 0.001),)  # type: ignore[attr-defined]


def test_swap_bbo_trades_in_base_units() -> None:
    a = swap(Subscription("htx-swap", Channel.QUOTES, "BTC-USDT-PERP"))
    tick = {"mrid": 1, "id": 1, "bid": [13071.9, 38], "ask": [], "ts": 1603707712356, "version": 9}
    (quote,) = a.parse(json.dumps({"ch": "market.BTC-USDT.bbo", "ts": 1, "tick": tick}), RECV)
    assert (quote.bid_price, quote.bid_size, quote.seq) == (13071.9, 38.0, 9)  # type: ignore[attr-defined]
    assert quote.ask_price != quote.ask_price  # nan: empty side  # type: ignore[attr-defined]
    trade = {
        "id": 5,
        "ts": 1,
        "amount": 38,
        "quantity": 0.038,
        "trade_turnover": 1,
        "price": 13071.9,
        "direction": "sell",
    }
    frame = json.dumps({"ch": "market.BTC-USDT.trade.detail", "ts": 1, "tick": {"id": 1, "ts": 1, "data": [trade]}})
    (t,) = a.parse(frame, RECV)
    assert (t.size, t.side, t.trade_id) == (0.038, Side.SELL, "5")  # type: ignore[attr-defined]


def test_instruments() -> None:
    spot_body = {
        "status": "ok",
        "data": [
            {"sc": "btcusdt", "bc": "btc", "qc": "usdt", "tpp": 2, "tap": 6, "state": "online"},
            {"sc": "ethbtc", "tpp": 6, "tap": 4, "state": "online"},  # no bc/qc: split on the quote
            {"sc": "x", "bc": "", "qc": "", "tpp": 1, "tap": 1},
        ],
    }
    btc, eth = HtxAdapter().parse_instruments(json.dumps(spot_body).encode())
    assert (btc.symbol, btc.native, btc.tick_size, btc.lot_size) == ("BTC-USDT", "btcusdt", 0.01, 1e-6)
    assert eth.symbol == "ETH-BTC"
    swap_body = {
        "status": "ok",
        "data": [
            {"contract_code": "BTC-USDT", "contract_size": 0.001, "price_tick": 0.1, "contract_status": 1},
            {"contract_code": "BTC-USDT-210625", "contract_size": 0.001, "price_tick": 0.1, "contract_status": 1},
        ],
    }
    perp, dated = HtxSwapAdapter().parse_instruments(json.dumps(swap_body).encode())
    assert (perp.symbol, perp.kind, perp.contract_size) == ("BTC-USDT-PERP", "perp", 0.001)
    assert (dated.symbol, dated.kind) == ("BTC-USDT-20210625", "future")
    with pytest.raises(MalformedMessage):
        HtxAdapter().parse_instruments(b'{"status":"error","err-msg":"x"}')


# --- book rules -----------------------------------------------------------------------------


def test_rules() -> None:
    rule = HtxAdapter().book_rule("BTC-USDT")
    assert (rule.snapshot, rule.continuity, rule.bridge_offset, rule.depth) == (
        SnapshotSource.REST,
        Continuity.PREV_ID,
        1,
        150,
    )
    assert rule.level() is Integrity.SEQUENCE and not rule.keep_text
    swap_rule = HtxSwapAdapter().book_rule("BTC-USDT-PERP")
    assert (swap_rule.snapshot, swap_rule.continuity, swap_rule.depth) == (
        SnapshotSource.STREAM,
        Continuity.SEQUENCE,
        150,
    )
    assert swap_rule.level() is Integrity.SEQUENCE


def offer(sync: BookSync, a: HtxAdapter, frame: str) -> Verdict:
    (event,) = a.parse(frame, RECV)
    if isinstance(event, BookSnapshot):
        return sync.on_snapshot(event)
    return sync.on_update(event)  # type: ignore[arg-type]


def test_spot_bridge_procedure() -> None:
    """htx-huobi.md, "Spot MBP sync": buffer, req, drop up to prevSeqNum ==
    snapshot seqNum, then chain on prevSeqNum (seqNum need not grow by one)."""
    a = spot()
    rule = a.book_rule("BTC-USDT")
    sync = BookSync(rule, OrderBook("htx", "BTC-USDT", max_depth=rule.depth))
    assert offer(sync, a, mbp(101, 100, [[10, 1]], [])) is Verdict.BUFFERED
    assert offer(sync, a, mbp(104, 101, [[10, 2]], [])) is Verdict.BUFFERED
    assert offer(sync, a, mbp(106, 104, [], [[12, 1]])) is Verdict.BUFFERED
    assert offer(sync, a, rep(104, [[10, 2], [9, 1]], [[11, 1]])) is Verdict.SYNCED
    assert sync.stats.stale == 2 and sync.book.depth() == (((10.0, 2.0), (9.0, 1.0)), ((11.0, 1.0), (12.0, 1.0)))
    assert offer(sync, a, mbp(109, 106, [[9, 0]], [])) is Verdict.APPLIED
    assert offer(sync, a, mbp(111, 110, [[9, 3]], [])) is Verdict.GAP
    assert (sync.expected, sync.received) == (109, 110)


def test_spot_snapshot_older_than_the_buffer_asks_again_on_the_stream() -> None:
    a = HtxAdapter()
    sent: list[Any] = []
    feed = Feed(a, sent.append)
    feed.add_book(Subscription("htx", Channel.BOOK, "BTC-USDT"))
    a.subscribe([Subscription("htx", Channel.BOOK, "BTC-USDT")])
    feed.on_frame(mbp(120, 115, [[10, 1]], [[11, 1]]), RECV)
    assert feed.take_actions() == []  # buffered: no REST snapshot to fetch
    feed.on_frame(rep(100, [[10, 2]], [[11, 1]]), RECV)  # older than the buffered update
    assert feed.take_actions() == [Send((json.dumps({"req": MBP, "id": f"req:{MBP}"}, separators=(",", ":")),))]
    assert not feed.syncs["BTC-USDT"].valid


def test_server_ping_becomes_a_send_action() -> None:
    feed = Feed(HtxAdapter(), [].append)
    feed.on_frame(b'{"ping":1618678073643}', RECV)
    assert feed.take_actions() == [Send(('{"pong":1618678073643}',))]
    assert feed.stats.events == 0


def test_swap_version_chain() -> None:
    a = swap()
    rule = a.book_rule("BTC-USDT-PERP")
    sync = BookSync(rule, OrderBook("htx-swap", "BTC-USDT-PERP", max_depth=rule.depth))

    def depth(event: str, version: int, bids: Any, asks: Any) -> str:
        return json.dumps(
            {"ch": DEPTH, "ts": 1, "tick": {"event": event, "version": version, "bids": bids, "asks": asks, "ts": 1}}
        )

    assert offer(sync, a, depth("update", 5, [[10, 1]], [])) is Verdict.IGNORED  # before the snapshot
    assert offer(sync, a, depth("snapshot", 7, [[10, 1]], [[11, 1]])) is Verdict.SYNCED
    assert offer(sync, a, depth("update", 8, [[10, 2]], [])) is Verdict.APPLIED
    assert offer(sync, a, depth("update", 8, [[10, 3]], [])) is Verdict.STALE
    assert offer(sync, a, depth("update", 10, [[10, 4]], [])) is Verdict.GAP


# --- the swap notification endpoint ------------------------------------------------------------


def test_notification_route_and_requests() -> None:
    a = HtxSwapAdapter(url="ws://127.0.0.1:1/linear-swap-ws")
    f = Subscription("htx-swap", Channel.FUNDING, "BTC-USDT-PERP")
    liq = Subscription("htx-swap", Channel.LIQUIDATIONS, "BTC-USDT-PERP")
    assert (
        a.route(f) == a.route(liq) == "notification" != a.route(Subscription("htx-swap", Channel.BOOK, "BTC-USDT-PERP"))
    )
    assert a.connect_url([f]) == "ws://127.0.0.1:1/linear-swap-notification"
    assert HtxSwapAdapter().connect_url([liq]) == "wss://api.hbdm.com/linear-swap-notification"
    topic = "public.BTC-USDT.funding_rate"
    assert [json.loads(m) for m in a.subscribe([f])] == [{"op": "sub", "cid": f"sub:{topic}", "topic": topic}]
    assert json.loads(a.unsubscribe([liq])[0])["topic"] == "public.BTC-USDT.liquidation_orders"


def test_notification_frames() -> None:
    a = HtxSwapAdapter()
    (reply,) = a.parse('{"op":"ping","ts":"1603699200000"}', RECV)
    assert isinstance(reply, Reply) and json.loads(reply.message) == {"op": "pong", "ts": "1603699200000"}
    assert a.parse('{"op":"sub","cid":"x","topic":"public.BTC-USDT.funding_rate","ts":1,"err-code":0}', RECV) == []
    with pytest.raises(SubscriptionRejected, match="4001"):
        a.parse('{"op":"sub","cid":"x","topic":"public.X.funding_rate","ts":1,"err-code":4001,"err-msg":"bad"}', RECV)
    funding = {
        "op": "notify",
        "topic": "public.BTC-USDT.funding_rate",
        "ts": 1603778748166,
        "data": [
            {
                "symbol": "BTC",
                "contract_code": "BTC-USDT",
                "fee_asset": "USDT",
                "funding_time": "1603778700000",
                "funding_rate": "-0.000220068774978695",
                "estimated_rate": "-0.000684397270430250",
                "settlement_time": "1603785600000",
            }
        ],
    }
    (f,) = a.parse(json.dumps(funding), RECV)
    assert f == Funding(
        "htx-swap", "BTC-USDT-PERP", -0.000220068774978695, 1603785600000 * 10**6, None, 1603778748166 * 10**6, RECV
    )
    liquidation = {
        "op": "notify",
        "topic": "public.BTC-USDT.liquidation_orders",
        "ts": 1,
        "data": [
            {
                "contract_code": "BTC-USDT",
                "symbol": "BTC",
                "direction": "sell",
                "offset": "close",
                "volume": 12,
                "price": 13000.5,
                "created_at": 1603778748000,
                "amount": 0.012,
            }
        ],
    }
    (liq,) = a.parse(json.dumps(liquidation), RECV)
    assert liq == Liquidation("htx-swap", "BTC-USDT-PERP", Side.SELL, 13000.5, 0.012, 1603778748000 * 10**6, RECV)
    del liquidation["data"][0]["amount"]  # type: ignore[index, attr-defined]
    a.use_instruments([Instrument("htx-swap", "BTC-USDT-PERP", "BTC-USDT", "perp", 0.1, 1.0, 0.001)])
    (liq,) = a.parse(json.dumps(liquidation), RECV)
    assert liq.size == 12 * 0.001  # type: ignore[attr-defined]
    with pytest.raises(UnknownMessage):
        a.parse('{"op":"notify","topic":"public.BTC-USDT.contract_info","ts":1,"data":[]}', RECV)
    with pytest.raises(UnknownMessage):
        a.parse('{"op":"auth","ts":1}', RECV)
