"""Hardening of the hot path (hostile input, hostile callers).

Each test pins one promise that broke when wsmux was attacked from outside
its own suite (the hardening issue): absurd numbers, non-ASCII digits, an
exception anywhere in a frame's processing, unknown messages, the quality
gate's sequence state, slow or raising callbacks. Everything is sans-I/O or
in-process; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import attrs
import pytest

from wsmux import book, quotes
from wsmux._pipeline import Feed, number_text_problem
from wsmux._reliability.quality import Quality, QualityGate
from wsmux.book import Diff, OrderBook
from wsmux.exchanges import get as get_adapter
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.exchanges.kraken import KrakenV1Adapter
from wsmux.exchanges.okx import OkxAdapter
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Integrity,
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux.multiplexer import BookView
from wsmux.stream import Overflow, Stream

SNAPSHOT = b'{"lastUpdateId":100,"bids":[["100.0","1.0"],["99.0","2.0"]],"asks":[["101.0","1.0"],["102.0","2.0"]]}'


def depth(u: int, bids: str = '[["100.5","1.0"]]', asks: str = "[]") -> str:
    return (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT",'
        f'"U":{u},"u":{u},"b":{bids},"a":{asks}}}}}'
    )


def synced_binance() -> tuple[Feed, list[Event]]:
    adapter = BinanceSpotAdapter()
    sub = book("binance", "BTC-USDT")[0]
    adapter.connect_url([sub])
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    feed.add_book(sub)
    feed.on_frame(depth(101), 1)
    for action in feed.take_actions():
        feed.on_snapshot_body(action.symbol, SNAPSHOT, 1)  # type: ignore[union-attr]
    assert feed.syncs["BTC-USDT"].valid
    events.clear()
    return feed, events


# --- 1. absurd numbers never sit in a valid book ---------------------------------------------


@pytest.mark.parametrize(
    "level",
    [
        '[["1e400","1.0"]]',  # price overflows to inf
        '[["100.5","Infinity"]]',
        '[["100.5","inf"]]',
        '[["NaN","1.0"]]',
        '[["' + "9" * 500 + '","1.0"]]',  # 500-digit price
        '[["100.5","' + "9" * 401 + '"]]',  # 401-digit size
        '[["1e15","1.0"]]',  # at the range limit
        '[["0","1.0"]]',
        '[["-5","1.0"]]',
        '[["100.5","-1"]]',
        '[[100.5]]',  # not [price, size]
        '[["x","1"]]',
    ],
)
def test_absurd_numbers_flag_the_book_and_resync(level: str) -> None:
    feed, events = synced_binance()
    feed.on_frame(depth(102, bids=level), 2)
    sync = feed.syncs["BTC-USDT"]
    assert not sync.valid and not sync.book.valid
    gaps = [e for e in events if isinstance(e, Gap)]
    assert [g.reason for g in gaps] == [GapReason.BAD_DATA]
    assert not any(isinstance(e, BookUpdate) for e in events)  # the bad update is never delivered
    sync.book._check()


def test_book_rejects_out_of_range_numbers_directly() -> None:
    book_ = OrderBook()
    for bad in [(float("inf"), 1.0), (1.0, float("inf")), (1e15, 1.0), (1.0, 1e16), (float("nan"), 1.0)]:
        assert book_.apply([bad], []) is None
    assert book_.apply([(1.0, 2.0)], [(3.0, 4.0)]) == (((1.0, 2.0),), ((3.0, 4.0),))
    book_._check()


# --- 2. non-ASCII digits; any exception stays with its frame ---------------------------------


def test_number_text_problem_finds_what_float_would_accept() -> None:
    assert number_text_problem('{"p":"\u0665\u0660.05"}') is not None  # Arabic-Indic digits
    assert number_text_problem(b'{"p":"\\u0665"}') is not None  # the same, escaped
    assert number_text_problem('{"p":"1_000.5"}') is not None
    assert number_text_problem('{"p":"\u20035"}') is not None  # EM SPACE
    assert number_text_problem('{"s":"BTC_USDT","e":"kline_1m"}') is None
    assert number_text_problem('{"name":"caf\u00e9","x":"\\u00e9"}') is None


@pytest.mark.parametrize(
    ("adapter", "sub", "frame"),
    [
        (
            KrakenV1Adapter(),
            book("kraken-v1", "BTC-USD", depth=10)[0],
            '[336,{"a":[["\u0665\u0660\u0660\u0660\u0660.05000","0.1","1618678145.920470"]],"c":"123"},'
            '"book-10","XBT/USD"]',
        ),
        (
            OkxAdapter(),
            book("okx", "BTC-USDT")[0],
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
            '[["\u0665\u0660\u0660\u0660\u0660.5","1","0","1"]],"bids":[],"ts":"1700000000000",'
            '"checksum":1,"seqId":2,"prevSeqId":1}]}',
        ),
    ],
)
def test_non_ascii_digits_are_one_error_not_a_disconnect(adapter: Any, sub: Any, frame: str) -> None:
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    feed.add_book(sub)
    for _ in range(3):
        feed.on_frame(frame, 1)  # must not raise (it used to: UnicodeEncodeError in the checksum)
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 3 and all(e.kind is ErrorKind.MALFORMED for e in errors)
    assert "non-ASCII" in errors[0].message
    assert not feed.poisoned


def test_an_exception_while_applying_is_contained_to_its_book() -> None:
    feed, events = synced_binance()

    def explode(book_: OrderBook) -> int:
        raise UnicodeEncodeError("ascii", "x", 0, 1, "boom")

    sync = feed.syncs["BTC-USDT"]
    sync.rule = attrs.evolve(sync.rule, checksum=explode)
    # a Diff carrying a checksum makes the sync call the (exploding) checksum function
    feed.adapter.parse = lambda frame, recv_ns: [  # type: ignore[method-assign]
        Diff("BTC-USDT", [["100.5", "1"]], [], 1, 102, 102, None, 7)
    ]
    feed.on_frame("{}", 5)
    assert [type(e) for e in events] == [Error, Gap]
    assert isinstance(events[0], Error) and "UnicodeEncodeError" in events[0].message
    assert isinstance(events[1], Gap) and events[1].reason is GapReason.BAD_DATA
    assert not sync.valid


# --- 15. unknown is not unreadable ------------------------------------------------------------


def test_unknown_messages_are_reported_as_unknown_and_never_poison_the_connection() -> None:
    feed, events = synced_binance()
    unknown = '{"stream":"btcusdt@continuousKline_1m","data":{"e":"continuous_kline","E":1,"ps":"BTCUSDT","k":{}}}'
    for _ in range(feed.max_consecutive_errors * 2):
        feed.on_frame(unknown, 1)
    assert not feed.poisoned
    assert feed.syncs["BTC-USDT"].valid
    kinds = {e.kind for e in events if isinstance(e, Error)}
    assert kinds == {ErrorKind.UNKNOWN_MESSAGE}
    # unreadable frames still count
    for _ in range(feed.max_consecutive_errors):
        feed.on_frame("{not json", 1)
    assert feed.poisoned


# --- 14. sequence state belongs to a connection -----------------------------------------------


def bbo(seq: int) -> str:
    data = f'{{"u":{seq},"s":"BTCUSDT","b":"100.0","B":"1","a":"101.0","A":"1"}}'
    return f'{{"stream":"btcusdt@bookTicker","data":{data}}}'



def quote_feed(gate: QualityGate, flagged: list[Quality]) -> tuple[Feed, list[Event]]:
    adapter = BinanceSpotAdapter()
    adapter.connect_url(quotes("binance", "BTC-USDT"))
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    feed.gate = gate
    feed.on_quality = lambda event, verdict: flagged.append(verdict)
    return feed, events


def test_quality_gate_sequence_state_is_per_connection_and_reset_on_reconnect() -> None:
    template = QualityGate()
    flagged: list[Quality] = []
    a, a_events = quote_feed(template.fresh(), flagged)
    b, b_events = quote_feed(template.fresh(), flagged)
    a.on_frame(bbo(500), 1)
    b.on_frame(bbo(7), 1)  # another connection's numbering: not "backwards"
    assert flagged == [] and len(a_events) == len(b_events) == 1
    a.on_frame(bbo(499), 1)  # backwards on the same connection: withheld
    assert flagged == [Quality.SEQ_BACKWARDS] and len(a_events) == 1
    a.on_disconnect(2)
    a.on_frame(bbo(3), 3)  # a new connection starts over
    assert flagged == [Quality.SEQ_BACKWARDS] and isinstance(a_events[-1], Quote)


# --- 4, 5 and first-hour 3: hostile callbacks --------------------------------------------------


def trade(i: int) -> Trade:
    return Trade("v", "A-B", 100.0 + i, 1.0, Side.BUY, str(i), None, i)


def accounting(stream: Stream) -> None:
    s = stream.stats
    assert s.received == s.delivered + s.dropped + stream.buffered, s


async def test_slow_async_callback_backlog_obeys_the_bound_and_policy() -> None:
    stream = Stream((), maxsize=10, overflow=Overflow.DROP_OLDEST, name="slow")
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(event: Trade) -> None:
        await release.wait()
        seen.append(event.recv_ns)

    stream.on(Trade, slow)
    for i in range(100):
        stream._put(trade(i))
        accounting(stream)
    assert stream.callback_backlog <= 10
    assert stream.stats.dropped >= 89
    assert stream.stats.delivered <= 1  # handed to the consumer, not merely received
    release.set()
    while stream.callback_backlog:
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    accounting(stream)
    assert seen[-1] == 99 and len(seen) == stream.stats.delivered
    await stream.aclose()


async def test_block_policy_pauses_the_producer_on_a_full_async_backlog() -> None:
    stream = Stream((), maxsize=5, overflow=Overflow.BLOCK, name="block")
    release = asyncio.Event()

    async def slow(event: Trade) -> None:
        await release.wait()

    stream.on(Trade, slow)
    for i in range(6):
        stream._put(trade(i))
    assert stream.blocked
    waiter = asyncio.ensure_future(stream._wait_space())
    await asyncio.sleep(0)
    assert not waiter.done()
    release.set()
    await asyncio.wait_for(waiter, 5)
    assert stream.stats.dropped == 0
    await stream.aclose()


async def test_cancelled_error_from_callbacks_is_the_users_error() -> None:
    stream = Stream((), maxsize=100, overflow=Overflow.DROP_OLDEST, name="c")
    sync_calls: list[int] = []
    async_calls: list[int] = []

    def sync_cb(event: Trade) -> None:
        sync_calls.append(event.recv_ns)
        if event.recv_ns % 2 == 0:
            raise asyncio.CancelledError("user code raised it")

    async def async_cb(event: Trade) -> None:
        async_calls.append(event.recv_ns)
        if event.recv_ns % 2 == 1:
            raise asyncio.CancelledError("user code raised it")

    errors: list[Error] = []
    stream.on(Trade, sync_cb).on(Trade, async_cb).on(Error, errors.append)
    for i in range(10):
        stream._put(trade(i))
    while stream.callback_backlog:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sync_calls == list(range(10)) and async_calls == list(range(10))  # nothing stopped
    assert stream.stats.callback_errors == 10
    assert len(errors) == 10 and all(e.kind is ErrorKind.CALLBACK for e in errors)
    assert all(isinstance(e.exception, asyncio.CancelledError) for e in errors)
    accounting(stream)
    await stream.aclose()


async def test_callback_errors_reach_error_callbacks_with_the_exception_and_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = Stream((), maxsize=100, overflow=Overflow.DROP_OLDEST, name="cb")
    errors: list[Error] = []

    def boom(event: Trade) -> None:
        raise ValueError(f"bad {event.trade_id}")

    def also_bad(event: Error) -> None:
        errors.append(event)
        raise RuntimeError("the error handler itself fails")  # counted, logged, not re-reported

    stream.on(Trade, boom).on(Error, also_bad)
    with caplog.at_level(logging.ERROR, logger="wsmux.stream"):
        for i in range(3):
            stream._put(trade(i))
    assert [str(e.exception) for e in errors] == ["bad 0", "bad 1", "bad 2"]
    assert errors[0].exception is not None and errors[0].exception.__traceback__ is not None
    assert stream.stats.callback_errors == 6
    logged = [r for r in caplog.records if r.name == "wsmux.stream"]
    assert logged and logged[0].exc_info is not None  # with the traceback
    assert len(logged) < 6  # rate-limited (1st, 2nd, 4th...)
    accounting(stream)


def test_snapshot_and_resync_are_delivered_after_sync() -> None:
    feed, events = synced_binance()
    feed.on_disconnect(3)
    feed.on_frame(depth(200), 4)
    for action in feed.take_actions():
        feed.on_snapshot_body(
            action.symbol,  # type: ignore[union-attr]
            SNAPSHOT.replace(b"100,", b"199,"),
            4,
        )
    assert [type(e) for e in events][-2:] == [BookSnapshot, Resynced]


# --- 17. integrity levels: "valid" never claims more than the venue allows ---------------------


@pytest.mark.parametrize(
    ("venue", "symbol", "level"),
    [
        ("binance", "BTC-USDT", Integrity.SEQUENCE),
        ("binance-usdm", "BTC-USDT-PERP", Integrity.SEQUENCE),
        ("bybit", "BTC-USDT", Integrity.SEQUENCE),
        ("okx", "BTC-USDT", Integrity.SEQUENCE),
        ("kraken", "BTC-USD", Integrity.CHECKSUM),
        ("kraken-v1", "BTC-USD", Integrity.CHECKSUM),
        ("bitfinex", "BTC-USD", Integrity.SEQUENCE_AND_CHECKSUM),
        ("coinbase", "BTC-USD", Integrity.UNVERIFIABLE),
        ("coinbase-advanced", "BTC-USD", Integrity.SEQUENCE),
    ],
)
def test_every_book_carries_its_integrity_level(venue: str, symbol: str, level: Integrity) -> None:
    adapter = get_adapter(venue)()
    sub = book(venue, symbol)[0]
    assert adapter.book_rule_for(sub).level() is level
    feed = Feed(adapter, lambda event: None)
    assert feed.add_book(sub).integrity is level


def test_resync_events_and_the_book_view_say_the_integrity_level() -> None:
    feed, events = synced_binance()
    feed.on_disconnect(3)
    feed.on_frame(depth(200), 4)
    for action in feed.take_actions():
        feed.on_snapshot_body(action.symbol, SNAPSHOT.replace(b"100,", b"199,"), 4)  # type: ignore[union-attr]
    snapshot, resynced = events[-2:]
    assert isinstance(snapshot, BookSnapshot) and snapshot.integrity is Integrity.SEQUENCE
    assert isinstance(resynced, Resynced) and resynced.integrity is Integrity.SEQUENCE
    assert BookView(feed.syncs["BTC-USDT"].book).integrity is Integrity.SEQUENCE


def test_the_per_frame_pre_check_is_narrow() -> None:
    """Only frames that could hold such number text reach the full check (keys with
    underscores, e.g. dYdX's ``message_id``, must not cost a regex scan per frame)."""
    from wsmux._pipeline import _digit_underscore_digit

    assert not _digit_underscore_digit('{"message_id":5,"orderbook_units":[]}')
    assert _digit_underscore_digit(b'{"p":"1_000.5"}') and _digit_underscore_digit('{"p":"2_0"}')
    assert not _digit_underscore_digit("_1") and not _digit_underscore_digit("1_")
