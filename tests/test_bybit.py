"""Bybit v5 adapters: hand-written frames in the documented format
(bybit-v5.md), subscribe limits, and the book rule through BookSync."""

from __future__ import annotations

import json
import math

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    ConfigError,
    Funding,
    Gap,
    Liquidation,
    MalformedMessage,
    OpenInterest,
    Quote,
    RemoteError,
    Side,
    Subscription,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    candles,
    funding,
    liquidations,
    open_interest,
    quotes,
    trades,
)
from wsmux._pipeline import Feed, Send
from wsmux.book import BookSync, Continuity, Diff, SnapshotSource, Verdict
from wsmux.errors import WsmuxError
from wsmux.exchanges import get
from wsmux.exchanges.bybit import BybitLinearAdapter, BybitSpotAdapter, book_depth
from wsmux.testing import parse_events

MS = 1_000_000
RECV = 987_654_321


def ob_frame(
    typ: str,
    u: int,
    bids: list[list[str]],
    asks: list[list[str]],
    *,
    depth: int = 200,
    native: str = "BTCUSDT",
    ts: int = 1671179923046,
    cts: int | None = 1671179923044,
) -> str:
    msg: dict[str, object] = {
        "topic": f"orderbook.{depth}.{native}",
        "type": typ,
        "ts": ts,
        "data": {"s": native, "b": bids, "a": asks, "u": u, "seq": 22520573251},
    }
    if cts is not None:
        msg["cts"] = cts
    return json.dumps(msg)


def spot(*subs: Subscription) -> BybitSpotAdapter:
    a = BybitSpotAdapter()
    a.subscribe(list(subs) or [*book("bybit", "BTC-USDT"), *trades("bybit", "BTC-USDT"), *quotes("bybit", "BTC-USDT")])
    return a


def linear(*subs: Subscription) -> BybitLinearAdapter:
    a = BybitLinearAdapter()
    a.subscribe(
        list(subs)
        or [
            *book("bybit-linear", "BTC-USDT-PERP"),
            *trades("bybit-linear", "BTC-USDT-PERP"),
            *funding("bybit-linear", "BTC-USDT-PERP"),
            *open_interest("bybit-linear", "BTC-USDT-PERP"),
            *liquidations("bybit-linear", "BTC-USDT-PERP"),
        ]
    )
    return a


# --- registry, symbols, subscribe ------------------------------------------------------


def test_registry_and_endpoints() -> None:
    assert get("bybit") is BybitSpotAdapter
    assert get("bybit-linear") is BybitLinearAdapter
    assert BybitSpotAdapter().url == "wss://stream.bybit.com/v5/public/spot"
    assert BybitLinearAdapter().url == "wss://stream.bybit.com/v5/public/linear"


def test_symbols() -> None:
    assert BybitSpotAdapter().to_native("BTC-USDT") == "BTCUSDT"
    assert BybitLinearAdapter().to_native("BTC-USDT-PERP") == "BTCUSDT"
    for bad in ("BTC-USDT-PERP", "BTC-USD-20250627"):
        with pytest.raises(UnknownSymbol):
            BybitSpotAdapter().to_native(bad)
    for bad in ("BTC-USDT", "BTC-USDC-PERP", "BTC-USDT-20250627"):
        with pytest.raises(UnknownSymbol):
            BybitLinearAdapter().to_native(bad)


def test_spot_has_no_derivative_channels() -> None:
    for channel in (Channel.FUNDING, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS, Channel.L3):
        with pytest.raises(UnknownChannel):
            BybitSpotAdapter().check(Subscription("bybit", channel, "BTC-USDT"))
    BybitLinearAdapter().check(Subscription("bybit-linear", Channel.LIQUIDATIONS, "BTC-USDT-PERP"))


@pytest.mark.parametrize(("asked", "served"), [(None, 200), (1, 50), (50, 50), (51, 200), (200, 200), (201, 1000)])
def test_book_depths(asked: int | None, served: int) -> None:
    assert book_depth(asked) == served
    a = BybitSpotAdapter()
    (sub,) = book("bybit", "BTC-USDT", depth=asked)
    assert a.book_rule_for(sub).depth == served
    assert json.loads(a.subscribe([sub])[0])["args"] == [f"orderbook.{served}.BTCUSDT"]


def test_too_deep_book_is_refused() -> None:
    with pytest.raises(ConfigError):
        BybitSpotAdapter().check(book("bybit", "BTC-USDT", depth=5000)[0])


def test_subscribe_messages() -> None:
    a = BybitLinearAdapter()
    msgs = a.subscribe(
        [
            *book("bybit-linear", "BTC-USDT-PERP"),
            *quotes("bybit-linear", "BTC-USDT-PERP"),
            *trades("bybit-linear", "BTC-USDT-PERP"),
            *funding("bybit-linear", "BTC-USDT-PERP"),
            *open_interest("bybit-linear", "BTC-USDT-PERP"),
            *liquidations("bybit-linear", "BTC-USDT-PERP"),
        ]
    )
    assert [json.loads(m) for m in msgs] == [
        {
            "req_id": "sub-1",
            "op": "subscribe",
            "args": [
                "orderbook.200.BTCUSDT",
                "orderbook.1.BTCUSDT",
                "publicTrade.BTCUSDT",
                "tickers.BTCUSDT",  # once for funding and open interest
                "allLiquidation.BTCUSDT",
            ],
        }
    ]
    # The tickers topic stays while open interest is still wanted.
    assert a.unsubscribe(list(funding("bybit-linear", "BTC-USDT-PERP"))) == []
    last = a.unsubscribe(list(open_interest("bybit-linear", "BTC-USDT-PERP")))
    assert json.loads(last[0]) == {"req_id": "uns-2", "op": "unsubscribe", "args": ["tickers.BTCUSDT"]}


def test_subscribe_splits_into_messages_of_10_args() -> None:
    symbols = [f"C{i}-USDT" for i in range(23)]
    msgs = BybitSpotAdapter().subscribe(list(trades("bybit", *symbols)))
    assert [len(json.loads(m)["args"]) for m in msgs] == [10, 10, 3]
    assert BybitSpotAdapter.limits.topics_per_message == 10


def test_heartbeat() -> None:
    for cls in (BybitSpotAdapter, BybitLinearAdapter):
        hb = cls.heartbeat
        assert hb.ping_interval == 20.0
        assert json.loads(hb.ping_message)["op"] == "ping"  # type: ignore[arg-type]


# --- parsing: control frames -------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        '{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}',
        '{"req_id":"ping","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0-1b"}',
        '{"success":true,"ret_msg":"","conn_id":"abc","req_id":"sub-1","op":"subscribe"}',
        '{"success":true,"ret_msg":"","conn_id":"abc","req_id":"uns-1","op":"unsubscribe"}',
    ],
)
def test_quiet_control_frames(frame: str) -> None:
    assert parse_events(BybitSpotAdapter(), frame, RECV) == []


def test_refusals() -> None:
    refused = '{"success":false,"ret_msg":"error:handler not found","conn_id":"a","req_id":"sub-1","op":"subscribe"}'
    with pytest.raises(SubscriptionRejected, match="handler not found"):
        parse_events(BybitSpotAdapter(), refused, RECV)
    with pytest.raises(RemoteError) as info:
        parse_events(BybitSpotAdapter(), refused.replace('"subscribe"', '"unsubscribe"'), RECV)
    assert not isinstance(info.value, SubscriptionRejected)


@pytest.mark.parametrize(
    "frame",
    [
        "nope",
        b"\x00\x01",
        "[]",
        "{}",
        '{"op":"auth","success":true}',
        '{"topic":"insurance.USDT","type":"snapshot","ts":1,"data":[]}',
        '{"topic":7,"data":{}}',
        '{"topic":"orderbook.200.BTCUSDT","type":"partial","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":5}}',
        '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":"5"}}',
        '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"u":5}}',
        '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["1"]],"a":[],"u":5}}',
        '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["x","1"]],"a":[],"u":5}}',
        '{"topic":"orderbook.200.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[],"a":[],"u":5}}',
        '{"topic":"orderbook.200.ETHUSDT","type":"delta","ts":1,"data":{"s":"ETHUSDT","b":[],"a":[],"u":5}}',
        '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Up",'
        '"v":"1","p":"1","i":"x"}]}',
        '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy",'
        '"p":"1","i":"x"}]}',
        '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":{"T":1}}',
    ],
)
def test_malformed_frames_raise_malformed_message(frame: str | bytes) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_events(spot(), frame, RECV)
    assert info.value.frame is not None


@pytest.mark.parametrize(
    "frame",
    [
        '{"topic":"tickers.BTCUSDT","type":"patch","ts":1,"data":{"symbol":"BTCUSDT"}}',
        '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"symbol":"BTCUSDT","fundingRate":"abc"}}',
        '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Long",'
        '"v":"1","p":"1"}]}',
        '{"topic":"liquidation.BTCUSDT","type":"snapshot","ts":1,"data":{}}',
    ],
)
def test_malformed_linear_frames(frame: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_events(linear(), frame, RECV)


def test_unknown_message_types_say_so() -> None:
    for frame in ('{"op":"auth"}', '{"topic":"insurance.USDT","data":[]}', KLINE.replace("kline.1.", "kline.5.")):
        with pytest.raises(MalformedMessage, match="unknown message type"):
            parse_events(spot(), frame, RECV)


def test_no_foreign_exception_escapes() -> None:
    frames = [
        ob_frame("delta", 13079593, [], [["17440.50", "78.857"], ["17442.00", "1.510"]], depth=200),
        '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","fundingRate":"-0.0002",'
        '"openInterest":"5"},"cs":1,"ts":1673272861686}',
    ]
    a = linear()
    for frame in frames:
        for cut in range(len(frame)):
            try:
                parse_events(a, frame[:cut], RECV)
            except WsmuxError:
                pass


# --- parsing: market data ---------------------------------------------------------------


def test_orderbook_snapshot_from_the_sheet() -> None:
    frame = (
        '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1671179923028,"data":{"s":"BTCUSDT",'
        '"b":[["17440.00","40.833"],["17439.50","0.513"]],"a":[["17440.50","78.815"],["17441.00","8.858"]],'
        '"u":13079592,"seq":22520573250},"cts":1671179923025}'
    )
    a = spot(*book("bybit", "BTC-USDT", depth=50))
    assert parse_events(a, frame, RECV) == [
        BookSnapshot(
            "bybit",
            "BTC-USDT",
            bids=((17440.0, 40.833), (17439.5, 0.513)),
            asks=((17440.5, 78.815), (17441.0, 8.858)),
            ts=1671179923025 * MS,  # cts, the matching engine's time
            recv_ns=RECV,
            seq=13079592,
        )
    ]


def test_orderbook_delta_from_the_sheet() -> None:
    frame = (
        '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1671179923046,"data":{"s":"BTCUSDT","b":[],'
        '"a":[["17440.50","78.857"],["17442.00","1.510"]],"u":13079593,"seq":22520573251},'
        '"cts":1671179923044}'
    )
    a = linear(*book("bybit-linear", "BTC-USDT-PERP", depth=50))
    assert parse_events(a, frame, RECV) == [
        BookUpdate(
            "bybit-linear",
            "BTC-USDT-PERP",
            bids=(),
            asks=((17440.5, 78.857), (17442.0, 1.51)),
            ts=1671179923044 * MS,
            recv_ns=RECV,
            seq=13079593,
        )
    ]
    # Without cts the message ts is the venue time.
    (event,) = parse_events(a, frame.replace(',"cts":1671179923044', ""), RECV)
    assert event.ts == 1671179923046 * MS  # type: ignore[attr-defined]


def test_u_equal_one_is_a_snapshot() -> None:
    """bybit-v5.md: u == 1 means the service restarted: replace the book."""
    (event,) = parse_events(spot(), ob_frame("delta", 1, [["100", "1"]], [["101", "2"]]), RECV)
    assert event == BookSnapshot("bybit", "BTC-USDT", ((100.0, 1.0),), ((101.0, 2.0),), 1671179923044 * MS, RECV, 1)


def test_level_one_book_is_a_quote() -> None:
    a = spot()
    frame = ob_frame("snapshot", 77, [["17440.00", "40.833"]], [["17440.50", "78.815"]], depth=1)
    assert parse_events(a, frame, RECV) == [
        Quote("bybit", "BTC-USDT", 17440.0, 40.833, 17440.5, 78.815, 1671179923044 * MS, RECV, 77)
    ]
    # A level-1 delta (not expected, but handled): the new top replaces the old.
    (q,) = parse_events(a, ob_frame("delta", 78, [["17440.00", "0"], ["17439.50", "2"]], [], depth=1), RECV)
    assert isinstance(q, Quote) and (q.bid_price, q.bid_size, q.ask_price) == (17439.5, 2.0, 17440.5)
    (q,) = parse_events(a, ob_frame("delta", 79, [], [["17440.50", "0"]], depth=1), RECV)
    assert isinstance(q, Quote) and math.isnan(q.ask_price) and q.bid_price == 17439.5
    (q,) = parse_events(a, ob_frame("snapshot", 80, [], [], depth=1), RECV)
    assert isinstance(q, Quote) and math.isnan(q.bid_price) and math.isnan(q.ask_size)


def test_public_trade_from_the_sheet() -> None:
    frame = (
        '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
        '"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
        '"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false},{"T":1672304486866,"s":"BTCUSDT","S":"Sell",'
        '"v":"0.5","p":"16578.00","L":"MinusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023b0","BT":false,'
        '"seq":123}]}'
    )
    assert parse_events(spot(), frame, RECV) == [
        Trade(
            "bybit",
            "BTC-USDT",
            16578.5,
            0.001,
            Side.BUY,
            "20f43950-d8dd-5b31-9112-a178eb6023af",
            1672304486865 * MS,
            RECV,
        ),
        Trade(
            "bybit",
            "BTC-USDT",
            16578.0,
            0.5,
            Side.SELL,
            "20f43950-d8dd-5b31-9112-a178eb6023b0",
            1672304486866 * MS,
            RECV,
            123,
        ),
    ]


def test_tickers_snapshot_then_partial_deltas() -> None:
    a = linear()
    snap = (
        '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","markPrice":"17217.33",'
        '"fundingRate":"-0.000212","nextFundingTime":"1673280000000","bid1Price":"17215.50",'
        '"bid1Size":"84.489","ask1Price":"17216.00","ask1Size":"83.020","openInterest":"68047.45"},'
        '"cs":24987956059,"ts":1673272861686}'
    )
    ts = 1673272861686 * MS
    assert parse_events(a, snap, RECV) == [
        Funding("bybit-linear", "BTC-USDT-PERP", -0.000212, 1673280000000 * MS, 17217.33, ts, RECV),
        OpenInterest("bybit-linear", "BTC-USDT-PERP", 68047.45, ts, RECV),
    ]
    # A delta with only a new mark price and best bid: nothing we report changed.
    quiet = '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"17218.00",'
    quiet += '"bid1Price":"17216"},"cs":1,"ts":1673272861786}'
    assert parse_events(a, quiet, RECV) == []
    # A funding change: the merged mark price and next time come from the cache.
    rate = '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","fundingRate":"-0.0003"},'
    rate += '"cs":2,"ts":1673272861886}'
    assert parse_events(a, rate, RECV) == [
        Funding("bybit-linear", "BTC-USDT-PERP", -0.0003, 1673280000000 * MS, 17218.0, 1673272861886 * MS, RECV)
    ]
    oi = '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","openInterest":"68050"},'
    oi += '"cs":3,"ts":1673272861986}'
    expected = OpenInterest("bybit-linear", "BTC-USDT-PERP", 68050.0, 1673272861986 * MS, RECV)
    assert parse_events(a, oi, RECV) == [expected]


def test_tickers_emit_only_subscribed_channels() -> None:
    a = linear(*open_interest("bybit-linear", "BTC-USDT-PERP"))
    frame = (
        '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","fundingRate":"0.0001",'
        '"nextFundingTime":"1","openInterest":"7"},"ts":1}'
    )
    assert [type(e) for e in parse_events(a, frame, RECV)] == [OpenInterest]
    # Empty fundingRate ("" on contracts without funding) yields no Funding.
    b = linear(*funding("bybit-linear", "BTC-USDT-PERP"))
    assert b.parse(frame.replace('"0.0001"', '""'), RECV) == []


def test_all_liquidation_side_is_the_order_side() -> None:
    """S is the liquidated position's side: "Buy" = a long was closed by a sell order."""
    frame = (
        '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303204,"data":['
        '{"T":1739502302929,"s":"BTCUSDT","S":"Buy","v":"0.003","p":"43511.70"},'
        '{"T":1739502302930,"s":"BTCUSDT","S":"Sell","v":"20000","p":"43600"}]}'
    )
    assert parse_events(linear(), frame, RECV) == [
        Liquidation("bybit-linear", "BTC-USDT-PERP", Side.SELL, 43511.7, 0.003, 1739502302929 * MS, RECV),
        Liquidation("bybit-linear", "BTC-USDT-PERP", Side.BUY, 43600.0, 20000.0, 1739502302930 * MS, RECV),
    ]


# --- the book rule through BookSync -------------------------------------------------------


def offer(sync: BookSync, a: BybitSpotAdapter, frame: str) -> Verdict:
    (event,) = parse_events(a, frame, RECV)
    if isinstance(event, BookSnapshot):
        return sync.on_snapshot(event)
    assert isinstance(event, BookUpdate | Diff)  # adapters hand book updates over as Diffs
    return sync.on_update(event)


def test_rule_declares_the_sheet() -> None:
    rule = BybitSpotAdapter().book_rule("BTC-USDT")
    assert rule.snapshot is SnapshotSource.STREAM
    assert rule.continuity is Continuity.SEQUENCE
    assert rule.checksum is None and not rule.keep_text and rule.depth == 200


def test_u_continuity() -> None:
    a = spot()
    sync = BookSync(a.book_rule("BTC-USDT"))
    assert offer(sync, a, ob_frame("snapshot", 100, [["100", "1"]], [["101", "1"]])) is Verdict.SYNCED
    assert offer(sync, a, ob_frame("delta", 101, [["99", "2"]], [])) is Verdict.APPLIED
    assert offer(sync, a, ob_frame("delta", 101, [["99", "2"]], [])) is Verdict.STALE  # duplicate
    assert offer(sync, a, ob_frame("delta", 102, [["99", "0"]], [["102", "3"]])) is Verdict.APPLIED
    assert sync.book.depth() == (((100.0, 1.0),), ((101.0, 1.0), (102.0, 3.0)))
    assert offer(sync, a, ob_frame("delta", 104, [], [])) is Verdict.GAP
    assert (sync.expected, sync.received) == (103, 104)
    assert not sync.book.valid


def test_later_snapshot_and_restart_replace_the_book() -> None:
    a = spot()
    sync = BookSync(a.book_rule("BTC-USDT"))
    offer(sync, a, ob_frame("snapshot", 100, [["100", "1"], ["99", "1"]], [["101", "1"]]))
    assert offer(sync, a, ob_frame("snapshot", 500, [["98", "1"]], [["103", "1"]])) is Verdict.SYNCED
    assert sync.book.depth() == (((98.0, 1.0),), ((103.0, 1.0),))
    # The service restarted: a delta with u == 1 carries the whole book.
    assert offer(sync, a, ob_frame("delta", 1, [["97", "2"]], [["104", "2"]])) is Verdict.SYNCED
    assert sync.book.depth() == (((97.0, 2.0),), ((104.0, 2.0),))
    assert offer(sync, a, ob_frame("delta", 2, [["96", "1"]], [])) is Verdict.APPLIED


def test_book_truncated_to_the_subscribed_depth() -> None:
    (sub,) = book("bybit", "BTC-USDT", depth=50)
    a = spot(sub)
    sync = BookSync(a.book_rule_for(sub))
    bids = [[f"{1000 - i}", "1"] for i in range(50)]
    offer(sync, a, ob_frame("snapshot", 10, bids, [["2000", "1"]], depth=50))
    # A better bid enters; Bybit sends no delete for the level pushed out.
    offer(sync, a, ob_frame("delta", 11, [["1000.5", "1"]], [], depth=50))
    got, _ = sync.book.depth()
    assert len(got) == 50 and got[0] == (1000.5, 1.0) and got[-1] == (952.0, 1.0)


def test_crossed_delta_breaks_the_book() -> None:
    a = spot()
    sync = BookSync(a.book_rule("BTC-USDT"))
    offer(sync, a, ob_frame("snapshot", 10, [["100", "1"]], [["101", "1"]]))
    assert offer(sync, a, ob_frame("delta", 11, [["101.5", "1"]], [])) is Verdict.CROSSED


def test_feed_gap_resubscribes_the_book() -> None:
    events: list[object] = []
    a = BybitLinearAdapter()
    feed = Feed(a, events.append)
    (sub,) = book("bybit-linear", "BTC-USDT-PERP", depth=50)
    feed.add_book(sub)
    a.subscribe([sub])
    feed.on_frame(ob_frame("snapshot", 10, [["1", "1"]], [["2", "1"]], depth=50), 1)
    feed.on_frame(ob_frame("delta", 12, [["1", "2"]], [], depth=50), 2)
    (action,) = feed.take_actions()
    assert isinstance(action, Send)
    assert [json.loads(m)["op"] for m in action.messages] == ["unsubscribe", "subscribe"]
    assert all(json.loads(m)["args"] == ["orderbook.50.BTCUSDT"] for m in action.messages)
    gap = events[-1]
    assert isinstance(gap, Gap) and gap.symbol == "BTC-USDT-PERP" and (gap.expected, gap.received) == (11, 12)


# --- candles (kline.1) --------------------------------------------------------------------------

KLINE = (
    '{"topic":"kline.1.BTCUSDT","data":[{"start":1672324800000,"end":1672324859999,"interval":"1",'
    '"open":"16649.5","close":"16677","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005",'
    '"confirm":false,"timestamp":1672324848882}],"ts":1672324848882,"type":"snapshot"}'
)
"""The v5 docs' kline push (as shaped there; the interval changed to 1)."""


def test_kline_topic_on_both_endpoints() -> None:
    assert json.loads(BybitSpotAdapter().subscribe(candles("bybit", "BTC-USDT"))[0])["args"] == ["kline.1.BTCUSDT"]
    sub = candles("bybit-linear", "BTC-USDT-PERP")
    assert json.loads(BybitLinearAdapter().subscribe(sub)[0])["args"] == ["kline.1.BTCUSDT"]
    assert json.loads(BybitLinearAdapter().unsubscribe(sub)[0])["op"] == "unsubscribe"


def test_kline_forming_and_confirmed() -> None:
    a = spot(*candles("bybit", "BTC-USDT"))
    assert parse_events(a, KLINE, RECV) == [
        Candle(
            "bybit", "BTC-USDT", "1m", 1672324800000 * MS, 16649.5, 16677.0, 16608.0, 16677.0, 2.081, False,
            1672324848882 * MS, RECV,
        )
    ]  # fmt: skip
    (final,) = parse_events(a, KLINE.replace('"confirm":false', '"confirm":true'), RECV)
    assert final.closed is True  # type: ignore[attr-defined]
    (bar,) = parse_events(linear(*candles("bybit-linear", "BTC-USDT-PERP")), KLINE, RECV)
    assert bar.symbol == "BTC-USDT-PERP" and bar.volume == 2.081  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"confirm":false', '"confirm":0'),
        ('"high":"16677"', '"high":"16600"'),  # below the open
        ('"volume":"2.081"', '"volume":"-2"'),
        ('"start":1672324800000', '"start":null'),
        ('"open":"16649.5",', ""),
        ("kline.1.BTCUSDT", "kline.1.ETHUSDT"),  # never subscribed
    ],
)
def test_malformed_klines(old: str, new: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_events(spot(*candles("bybit", "BTC-USDT")), KLINE.replace(old, new), RECV)
