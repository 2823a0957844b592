"""Stream: overflow policies, accounting, callbacks and closing, driven by
calling ``Stream._put`` directly (the multiplexer's side of the stream)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from wsmux import StreamOverflow
from wsmux.errors import ClosedError, ConfigError
from wsmux.model import (
    Dropped,
    Error,
    ErrorKind,
    Event,
    Funding,
    MarketEvent,
    Quote,
    Side,
    StatusEvent,
    Trade,
)
from wsmux.stream import Overflow, Stream, StreamStats


def trade(i: int, symbol: str = "A-B") -> Trade:
    return Trade("v", symbol, 100.0 + i, 1.0, Side.BUY, str(i), None, i)


def quote(symbol: str, i: int, venue: str = "v") -> Quote:
    return Quote(venue, symbol, 100.0, 1.0, 101.0 + i, 1.0, None, i)


def make(maxsize: int, overflow: Overflow, **kw: object) -> Stream:
    return Stream((), maxsize=maxsize, overflow=overflow, name="s", **kw)  # type: ignore[arg-type]


def blocked(stream: Stream) -> bool:
    return stream.blocked  # (a call, so that mypy does not narrow the property)


def check_accounting(stream: Stream) -> None:
    s = stream.stats
    assert s.received == s.delivered + s.dropped + stream.buffered, s
    assert s.max_buffered >= stream.buffered


async def read(stream: Stream, n: int) -> list[Event]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(stream.__anext__(), 5))
        check_accounting(stream)
    return out


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``predicate`` holds (bounded: a hang is a failure)."""
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        Stream((), maxsize=0)


# --- DROP_OLDEST ------------------------------------------------------------------------------


async def test_drop_oldest_keeps_the_newest_and_reports_the_loss_first() -> None:
    stream = make(3, Overflow.DROP_OLDEST, clock_ns=lambda: 777)
    stream.__aiter__()
    for i in range(5):
        stream._put(trade(i))
        check_accounting(stream)
    assert stream.buffered == 3 and stream.stats.dropped == 2
    assert stream.stats.dropped_by_reason == {"overflow": 2}
    assert not stream.blocked  # only BLOCK streams block
    events = await read(stream, 4)
    assert events == [Dropped("s", 2, "overflow", 777), trade(2), trade(3), trade(4)]
    assert stream.stats.delivered == 3
    # a later loss is reported before the next event again
    for i in range(5, 9):
        stream._put(trade(i))
    assert await read(stream, 4) == [Dropped("s", 1, "overflow", 777), trade(6), trade(7), trade(8)]
    assert stream.stats == type(stream.stats)(
        received=9, delivered=6, dropped=3, max_buffered=3, dropped_by_reason={"overflow": 3}
    )


async def test_drop_oldest_without_pressure_drops_nothing() -> None:
    stream = make(3, Overflow.DROP_OLDEST)
    for i in range(3):
        stream._put(trade(i))
        assert await read(stream, 1) == [trade(i)]
    assert stream.stats.dropped == 0 and stream.stats.delivered == 3


# --- CONFLATE -----------------------------------------------------------------------------------


async def test_conflate_keeps_the_latest_quote_per_key_and_drops_oldest_otherwise() -> None:
    stream = make(3, Overflow.CONFLATE)
    qa1, qb1, t1 = quote("A", 1), quote("B", 1), trade(1)
    for e in (qa1, qb1, t1):
        stream._put(e)
    assert stream.stats.dropped == 0
    qa2 = quote("A", 2)
    stream._put(qa2)  # replaces A's quote where it waits
    check_accounting(stream)
    assert list(stream._buf) == [qa2, qb1, t1]
    qb2 = quote("B", 2)
    stream._put(qb2)
    assert list(stream._buf) == [qa2, qb2, t1]
    assert stream.stats.conflated == 2 and stream.stats.dropped_by_reason == {"conflated": 2}
    t2 = trade(2)
    stream._put(t2)  # a trade is never conflated: the oldest event goes
    check_accounting(stream)
    assert list(stream._buf) == [qb2, t1, t2]
    assert stream.stats.dropped_by_reason == {"conflated": 2, "overflow": 1}
    events = await read(stream, 4)
    assert events == [Dropped("s", 3, "conflated:2,overflow:1", 0), qb2, t1, t2]


async def test_conflate_keys_by_type_venue_and_symbol() -> None:
    stream = make(2, Overflow.CONFLATE)
    qa = quote("A", 1)
    stream._put(qa)
    stream._put(quote("A", 1, venue="w"))  # another venue: another key
    f = Funding("v", "A", 0.0001, None, None, None, 5)
    stream._put(f)  # another type: another key -> the oldest goes
    check_accounting(stream)
    assert list(stream._buf) == [quote("A", 1, venue="w"), f]
    f2 = Funding("v", "A", 0.0002, None, None, None, 6)
    stream._put(f2)
    assert list(stream._buf) == [quote("A", 1, venue="w"), f2]
    assert stream.stats.conflated == 1


async def test_conflate_after_the_conflated_event_was_read() -> None:
    stream = make(2, Overflow.CONFLATE)
    stream._put(quote("A", 1))
    stream._put(trade(1))
    assert await read(stream, 1) == [quote("A", 1)]
    stream._put(trade(2))
    stream._put(quote("A", 2))  # full, and A's old quote is gone: drop the oldest
    check_accounting(stream)
    assert await read(stream, 3) == [Dropped("s", 1, "overflow", 0), trade(2), quote("A", 2)]


async def test_conflate_a_quote_whose_older_twin_was_dropped() -> None:
    stream = make(2, Overflow.CONFLATE)
    stream._put(quote("A", 1))
    stream._put(trade(1))
    stream._put(trade(2))  # drops quote A1
    stream._put(quote("A", 2))  # A1 is not buffered any more: drop the oldest (trade 1)
    check_accounting(stream)
    assert list(stream._buf) == [trade(2), quote("A", 2)]
    stream._put(quote("A", 3))  # now conflates with A2
    assert list(stream._buf) == [trade(2), quote("A", 3)]
    check_accounting(stream)


# --- RAISE ----------------------------------------------------------------------------------------


async def test_raise_raises_on_the_next_read() -> None:
    stream = make(2, Overflow.RAISE)
    for i in range(3):
        stream._put(trade(i))
    check_accounting(stream)
    assert stream.stats.dropped == 1 and stream.buffered == 2
    with pytest.raises(StreamOverflow, match="overflowed its buffer of 2 events") as info:
        await stream.__anext__()
    assert isinstance(info.value, BufferError)
    check_accounting(stream)
    # the stream is still readable: the loss, then what was kept
    assert await read(stream, 3) == [Dropped("s", 1, "overflow", 0), trade(0), trade(1)]


async def test_raise_in_a_batch_read() -> None:
    stream = make(2, Overflow.RAISE)
    stream._put(trade(0))
    assert await stream.get_batch() == [trade(0)]
    for i in range(1, 5):
        stream._put(trade(i))
    with pytest.raises(StreamOverflow):
        await stream.get_batch()
    assert await stream.get_batch() == [Dropped("s", 2, "overflow", 0), trade(1), trade(2)]
    check_accounting(stream)


# --- BLOCK ------------------------------------------------------------------------------------------


async def test_block_never_drops_and_signals_space() -> None:
    stream = make(2, Overflow.BLOCK)
    await asyncio.wait_for(stream._wait_space(), 5)  # room: returns at once
    stream._put(trade(0))
    assert not blocked(stream)
    stream._put(trade(1))
    assert blocked(stream)
    stream._put(trade(2))  # a frame's worth beyond maxsize is accepted, not dropped
    assert blocked(stream) and stream.buffered == 3 and stream.stats.dropped == 0
    check_accounting(stream)
    waiter = asyncio.ensure_future(stream._wait_space())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiter.done()
    assert await read(stream, 1) == [trade(0)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert blocked(stream) and not waiter.done()  # 2 of 2: still full
    assert await read(stream, 1) == [trade(1)]
    await asyncio.wait_for(waiter, 5)
    assert not blocked(stream)
    assert await read(stream, 1) == [trade(2)]
    assert stream.stats.dropped == 0 and stream.stats.delivered == 3


async def test_block_wait_ends_when_the_stream_closes() -> None:
    stream = make(1, Overflow.BLOCK)
    stream._put(trade(0))
    waiter = asyncio.ensure_future(stream._wait_space())
    await asyncio.sleep(0)
    await stream.aclose()
    await asyncio.wait_for(waiter, 5)


# --- callbacks ----------------------------------------------------------------------------------------


async def test_sync_callback_errors_become_error_events() -> None:
    stream = make(10, Overflow.DROP_OLDEST)
    stream.__aiter__()
    seen: list[Event] = []

    def boom(event: Trade) -> None:
        seen.append(event)
        raise ValueError("no")

    stream.on(Trade, boom)
    stream._put(trade(1))
    check_accounting(stream)
    assert seen == [trade(1)]
    assert stream.stats.callback_errors == 1
    err, t = await read(stream, 2)
    assert isinstance(err, Error) and err.kind is ErrorKind.CALLBACK
    assert "ValueError: no" in err.message and "boom" in err.message
    assert t == trade(1)


async def test_callbacks_match_by_type_and_base_class() -> None:
    stream = make(10, Overflow.DROP_OLDEST)
    got: dict[str, list[Event]] = {"trade": [], "market": [], "status": [], "all": []}
    stream.on(Trade, got["trade"].append)
    stream.on(MarketEvent, got["market"].append)
    stream.on(StatusEvent, got["status"].append)
    stream.on(Event, got["all"].append)
    q, t, d = quote("A", 1), trade(1), Dropped("x", 1, "overflow", 0)
    for e in (q, t, d):
        stream._put(e)
    assert got == {"trade": [t], "market": [q, t], "status": [d], "all": [q, t, d]}


async def test_async_callbacks_run_in_order() -> None:
    stream = make(10, Overflow.DROP_OLDEST)
    order: list[tuple[str, int]] = []

    async def first(event: Trade) -> None:
        await asyncio.sleep(0)  # yield between callbacks: order must still hold
        order.append(("first", int(event.trade_id or 0)))

    async def second(event: Trade) -> None:
        order.append(("second", int(event.trade_id or 0)))

    stream.on(Trade, first).on(Trade, second)
    for i in range(5):
        stream._put(trade(i))
    await until(lambda: len(order) == 10, "ten callbacks")
    assert order == [(name, i) for i in range(5) for name in ("first", "second")]
    await stream.aclose()


async def test_async_callback_errors_are_reported_and_do_not_stop_later_ones() -> None:
    stream = make(10, Overflow.DROP_OLDEST)
    stream.__aiter__()
    calls: list[int] = []

    async def bad(event: Trade) -> None:
        raise RuntimeError(f"bad {event.trade_id}")

    async def good(event: Trade) -> None:
        calls.append(int(event.trade_id or 0))

    stream.on(Trade, bad).on(Trade, good)
    stream._put(trade(1))
    stream._put(trade(2))
    await until(lambda: calls == [1, 2], "both good callbacks")
    assert stream.stats.callback_errors == 2
    check_accounting(stream)
    events = await read(stream, 4)
    assert events[:2] == [trade(1), trade(2)]
    assert all(isinstance(e, Error) and e.kind is ErrorKind.CALLBACK for e in events[2:])
    assert "RuntimeError: bad 1" in events[2].message  # type: ignore[attr-defined]
    await stream.aclose()


async def test_callback_only_stream_does_not_buffer() -> None:
    stream = make(2, Overflow.RAISE)
    got: list[Event] = []

    def record(event: Event) -> None:
        got.append(event)
        if len(got) == 3:
            raise KeyError("third")

    stream.on(Trade, record)
    for i in range(10):
        stream._put(trade(i))
        check_accounting(stream)
    assert len(got) == 10
    assert stream.buffered == 0 and stream.stats.dropped == 0
    assert stream.stats.delivered == 10 and stream.stats.callback_errors == 1


async def test_iterating_turns_buffering_back_on() -> None:
    stream = make(5, Overflow.DROP_OLDEST)
    got: list[Event] = []
    stream.on(Trade, got.append)
    stream._put(trade(0))  # callback only: not buffered
    stream.__aiter__()
    stream._put(trade(1))
    assert got == [trade(0), trade(1)]
    assert await read(stream, 1) == [trade(1)]
    check_accounting(stream)


# --- closing ------------------------------------------------------------------------------------------


async def test_aclose_ends_iteration_after_the_buffer() -> None:
    closed: list[Stream] = []

    async def on_close(s: Stream) -> None:
        closed.append(s)

    stream = Stream((), maxsize=10, name="s", on_close=on_close)
    stream._put(trade(0))
    got: list[Event] = []

    async def consume() -> None:
        async for event in stream:
            got.append(event)

    task = asyncio.ensure_future(consume())
    await until(lambda: got == [trade(0)], "the first event")
    assert not task.done()  # waiting for more
    await stream.aclose()
    await asyncio.wait_for(task, 5)
    assert got == [trade(0)]
    assert stream.closed and closed == [stream]
    await stream.aclose()  # idempotent
    assert closed == [stream]
    stream._put(trade(1))  # ignored after close
    assert stream.stats.received == 1
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    with pytest.raises(ClosedError):
        stream.on(Trade, got.append)


async def test_buffered_events_are_readable_after_close() -> None:
    stream = make(10, Overflow.BLOCK)
    for i in range(3):
        stream._put(trade(i))
    await stream.aclose()
    assert [e async for e in stream] == [trade(0), trade(1), trade(2)]


async def test_context_manager_closes() -> None:
    async with make(10, Overflow.BLOCK) as stream:
        stream._put(trade(0))
    assert stream.closed


async def test_get_batch() -> None:
    stream = make(10, Overflow.DROP_OLDEST)
    for i in range(5):
        stream._put(trade(i))
    assert await stream.get_batch(3) == [trade(0), trade(1), trade(2)]
    assert await stream.get_batch() == [trade(3), trade(4)]
    check_accounting(stream)
    waiting = asyncio.ensure_future(stream.get_batch())
    await asyncio.sleep(0)
    assert not waiting.done()
    stream._put(trade(5))
    assert await asyncio.wait_for(waiting, 5) == [trade(5)]


# --- the accounting identity under a random mix of everything -------------------------------------


@pytest.mark.parametrize("policy", list(Overflow))
@pytest.mark.parametrize("seed", range(5))
async def test_accounting_identity_under_random_load(policy: Overflow, seed: int) -> None:
    rng = random.Random(seed)
    stream = make(rng.randrange(1, 6), policy)
    stream.__aiter__()
    if rng.random() < 0.5:

        def sometimes_fails(event: Event) -> None:
            if rng.random() < 0.2:
                raise ValueError("x")

        stream.on(Event, sometimes_fails)
    dropped_seen = 0
    delivered_seen = 0
    for _ in range(400):
        if rng.random() < 0.6:
            stream._put(rng.choice([trade(rng.randrange(9)), quote(rng.choice("AB"), rng.randrange(9))]))
        else:
            try:
                if stream.buffered or stream._pending_drops or stream._overflowed:
                    e = await stream.__anext__()
                    if isinstance(e, Dropped):
                        dropped_seen += e.count
                    else:
                        delivered_seen += 1
            except StreamOverflow:
                assert policy is Overflow.RAISE
        check_accounting(stream)
        if policy is Overflow.BLOCK:
            assert stream.stats.dropped == 0
    while stream.buffered or stream._pending_drops or stream._overflowed:
        try:
            e = await stream.__anext__()
        except StreamOverflow:
            continue
        if isinstance(e, Dropped):
            dropped_seen += e.count
        else:
            delivered_seen += 1
    check_accounting(stream)
    # every drop was reported in-band, every delivery counted
    assert dropped_seen == stream.stats.dropped
    assert delivered_seen == stream.stats.delivered == stream.stats.received - stream.stats.dropped


async def test_a_callback_registered_after_the_first_events_still_gets_them() -> None:
    """With wsmux.sync the loop runs in another thread: events can arrive
    between subscribe() and on(). Every callback registered while the stream
    is unread gets them, in order, each of its own type; they leave the
    buffer (a callback stream buffers nothing) and count as delivered."""
    stream = make(100, Overflow.BLOCK)
    stream._put(trade(1))
    stream._put(quote("A-B", 1))
    stream._put(trade(2))
    trades_seen: list[Event] = []
    quotes_seen: list[Event] = []
    later_async: list[Event] = []
    done = asyncio.Event()

    async def on_trade_async(event: Trade) -> None:
        later_async.append(event)
        if len(later_async) == 3:
            done.set()

    stream.on(Trade, trades_seen.append).on(Quote, quotes_seen.append)
    assert trades_seen == [trade(1), trade(2)] and quotes_seen == [quote("A-B", 1)]
    stream._put(trade(3))
    assert trades_seen == [trade(1), trade(2), trade(3)]
    stream.on(Trade, on_trade_async)
    stream._put(trade(4))
    async with asyncio.timeout(5):
        await done.wait()
    assert later_async == [trade(1), trade(2), trade(4)]
    assert stream.buffered == 0 and stream.stats.delivered == 5
    check_accounting(stream)


# --- the multiplexer's per-class puts (Stream._put_for) ------------------------------------


def _routed() -> tuple[object, Stream]:
    from wsmux import Multiplexer, trades

    mux = Multiplexer(metrics=False)
    stream = Stream(tuple(trades("v", "A-B")), name="routed")
    mux._attach_stream(stream)
    return mux, stream


async def test_callbacks_added_or_removed_after_events_flowed_are_honoured_at_once() -> None:
    # the multiplexer keeps a put per (event class, venue, symbol) built from the
    # stream's callbacks; adding or removing one must rebuild it
    mux, stream = _routed()
    deliver = mux._deliver  # type: ignore[attr-defined]
    first: list[int] = []
    second: list[int] = []
    stream.on(Trade, lambda e: first.append(e.seq))
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "1", None, 1, 1))
    stream.on(Trade, lambda e: second.append(e.seq))
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "2", None, 2, 2))
    assert first == [1, 2] and second == [2]
    stream.off(Trade, stream._sync_cbs[Trade][0])
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "3", None, 3, 3))
    assert first == [1, 2] and second == [2, 3]
    assert stream.stats.received == stream.stats.delivered == 3


async def test_a_routed_callback_stream_reports_callback_errors_and_buffers_once_read() -> None:
    mux, stream = _routed()
    deliver = mux._deliver  # type: ignore[attr-defined]
    seen: list[int] = []

    def fails(event: Trade) -> None:
        seen.append(event.seq or 0)
        raise RuntimeError("boom")

    stream.on(Trade, fails)
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "1", None, 1, 1))
    assert seen == [1] and stream.stats.callback_errors == 1
    stream.__aiter__()  # now read as well: later events are buffered for the reader
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "2", None, 2, 2))
    assert seen == [1, 2]
    report = await asyncio.wait_for(stream.__anext__(), 1)  # the callback's error, reported in band
    assert isinstance(report, Error) and report.kind is ErrorKind.CALLBACK
    event = await asyncio.wait_for(stream.__anext__(), 1)
    assert isinstance(event, Trade) and event.seq == 2
    await stream.aclose()
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "3", None, 3, 3))
    assert seen == [1, 2]  # a closed stream's callbacks get nothing more


@pytest.mark.parametrize("callbacks", [1, 2])
async def test_a_routed_stream_counts_an_event_read_from_its_own_callback_as_buffered(callbacks: int) -> None:
    # a routed callback stream counts each event once, as received and
    # delivered at once; the event during which a callback starts reading the
    # stream is buffered for the reader instead: received, not yet delivered
    mux, stream = _routed()
    deliver = mux._deliver  # type: ignore[attr-defined]

    def reads_at_two(event: Trade) -> None:
        if event.seq == 2:
            stream.__aiter__()

    stream.on(Trade, reads_at_two)
    for _ in range(callbacks - 1):
        stream.on(Trade, lambda event: None)
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "1", None, 1, 1))
    assert (stream.stats.received, stream.stats.delivered, stream.buffered) == (1, 1, 0)
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "2", None, 2, 2))
    assert (stream.stats.received, stream.stats.delivered, stream.buffered) == (2, 1, 1)
    check_accounting(stream)
    event = await asyncio.wait_for(stream.__anext__(), 1)
    assert isinstance(event, Trade) and event.seq == 2
    assert (stream.stats.received, stream.stats.delivered, stream.buffered) == (2, 2, 0)
    deliver(Trade("v", "A-B", 1.0, 1.0, None, "3", None, 3, 3))
    assert (stream.stats.received, stream.stats.delivered, stream.buffered) == (3, 2, 1)
    check_accounting(stream)
    await stream.aclose()


async def test_a_route_of_several_streams_delivers_in_order_each_with_its_own_accounting() -> None:
    # on one route, a stream that is read, or whose callback fails, or that
    # starts reading in its own callback, keeps its own behaviour and
    # accounting, and the streams get each event in the route's order
    from wsmux import Multiplexer, trades

    mux = Multiplexer(metrics=False)
    order: list[str] = []
    streams = [Stream(tuple(trades("v", "A-B")), name=f"s{i}") for i in range(5)]
    for stream in streams:
        mux._attach_stream(stream)
    streams[0].on(Trade, lambda e: order.append("s0"))
    streams[1].__aiter__()  # read: buffered, in the middle of the route

    def fails(event: Trade) -> None:
        order.append("s2")
        raise RuntimeError("boom")

    def reads_at_two(event: Trade) -> None:
        order.append("s3")
        if event.seq == 2:
            streams[3].__aiter__()

    streams[2].on(Trade, fails)
    streams[3].on(Trade, reads_at_two).on(Trade, lambda e: order.append("s3b"))
    streams[4].on(Trade, lambda e: order.append("s4"))
    deliver = mux._deliver  # type: ignore[attr-defined]
    for seq in (1, 2, 3):
        deliver(Trade("v", "A-B", 1.0, 1.0, None, str(seq), None, seq, seq))
    assert order == ["s0", "s2", "s3", "s3b", "s4"] * 3
    received = [s.stats.received for s in streams]
    delivered = [s.stats.delivered for s in streams]
    assert received == [3] * 5
    assert delivered == [3, 0, 3, 1, 3]  # s3 read from its callback at 2: 2 and 3 buffered
    assert streams[2].stats.callback_errors == 3
    for stream in streams:
        check_accounting(stream)
    event = await asyncio.wait_for(streams[3].__anext__(), 1)
    assert isinstance(event, Trade) and event.seq == 2 and streams[3].stats.delivered == 2
    for stream in streams:
        await stream.aclose()


@pytest.mark.parametrize("then", ["read", "async callback"])
async def test_a_callback_stream_that_can_fill_later_still_holds_its_venue_back(then: str) -> None:
    # a BLOCK stream whose only consumers are sync callbacks never fills, so the
    # per-frame backpressure check skips it; once it is read, or gets an async
    # callback, it can fill, and a full one must pause its venue again
    from wsmux import Multiplexer, trades

    mux = Multiplexer(metrics=False)
    stream = Stream(tuple(trades("v", "A-B")), maxsize=3, name="late")
    mux._attach_stream(stream)
    stream.on(Trade, lambda event: None)
    assert mux._wait_unblocked("v") is None  # type: ignore[attr-defined]
    assert mux._blocking_for["v"] == ()  # type: ignore[attr-defined]
    release = asyncio.Event()

    async def slow(event: Trade) -> None:
        await release.wait()

    if then == "read":
        stream.__aiter__()
    else:
        stream.on(Trade, slow)
    deliver = mux._deliver  # type: ignore[attr-defined]
    for seq in range(1, 5):
        deliver(Trade("v", "A-B", 1.0, 1.0, None, str(seq), None, seq, seq))
    assert stream.blocked
    waiter = mux._wait_unblocked("v")  # type: ignore[attr-defined]
    assert waiter is not None
    waiter.close()  # (a coroutine: not awaited here)
    release.set()
    await stream.aclose()


def test_stream_stats_read_as_before() -> None:
    stats = StreamStats(received=3, delivered=2, dropped=1)
    assert (stats.received, stats.delivered, stats.dropped) == (3, 2, 1)
    assert repr(stats).startswith("StreamStats(received=3, delivered=2, dropped=1, ")


async def test_a_cancel_accepted_during_get_with_a_timeout_is_never_swallowed() -> None:
    """Python 3.11's ``asyncio.wait_for`` returns the inner result when the
    caller is cancelled in the loop turn in which the inner wait finished:
    ``task.cancel()`` said True and the task went on as if never cancelled
    (an ``asyncio.timeout`` or TaskGroup around it then misfires). The window
    is hit deterministically: the event is put, the reader takes it, and the
    reader's task is cancelled before it resumes."""
    stream = make(10, Overflow.BLOCK)
    stream.__aiter__()
    task = asyncio.create_task(stream.get(timeout=30))
    await until(lambda: stream._waiter is not None, "the reader waits")
    stream._put(trade(1))
    await until(lambda: not stream._buf, "the reader took the event")
    accepted = task.cancel()
    if accepted:  # the cancel reached a task that had not returned: it must end cancelled
        with pytest.raises(asyncio.CancelledError):
            await task
    else:  # the task had already returned the event
        assert await task == trade(1)
