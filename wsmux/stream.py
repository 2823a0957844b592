"""Stream: what a caller consumes — an async iterator with callbacks.

A :class:`Stream` receives the events of its subscriptions (and the status
events of their venues) from the multiplexer. Consume it by iteration::

    async for event in stream: ...

or with callbacks, ``stream.on(Trade, fn)`` (sync functions run inline as the
event is dispatched — lowest latency; async functions run in order on one
task per stream). Both can be used together.

Memory is bounded: events wait in a buffer of ``maxsize`` and an
:class:`Overflow` policy decides what happens when the consumer falls behind.
Every drop is counted by reason (:attr:`Stream.stats`) and reported in-band:
the iterator yields a :class:`~wsmux.Dropped` event before the next event
after a loss. Accounting always holds:
``received == delivered + dropped + buffered``.

A stream that has callbacks and has never been iterated does not buffer (its
callbacks are its consumer), so callback-only use never overflows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from wsmux.errors import ClosedError, ConfigError, StreamOverflow
from wsmux.metrics._hist import LatencyHistogram
from wsmux.metrics._registry import DISABLED_MASK
from wsmux.model import (
    ConsolidatedQuote,
    Dropped,
    Error,
    ErrorKind,
    Event,
    Funding,
    OpenInterest,
    Quote,
    SlowConsumer,
)

if TYPE_CHECKING:
    from wsmux.subscriptions import Subscription

__all__ = ["Overflow", "Stream", "StreamStats"]

E = TypeVar("E", bound=Event)
Callback = Callable[[Any], object] | Callable[[Any], Awaitable[object]]

_CONFLATABLE = (Quote, Funding, OpenInterest, ConsolidatedQuote)
_log = logging.getLogger("wsmux.stream")
_Resolved = tuple[list[Callable[[Any], object]], tuple[Callable[[Any], Awaitable[object]], ...]]
"""Per event class: the sync callbacks and the async callbacks that take it."""


class Overflow(enum.Enum):
    """What a full stream buffer does with a new event.

    * ``BLOCK`` — backpressure: the connections feeding the stream pause
      reading (TCP pushes back on the venue) until the consumer catches up.
      Nothing is dropped; the buffer may exceed ``maxsize`` by one frame's events.
    * ``DROP_OLDEST`` — discard the oldest buffered event (counted, reported).
    * ``CONFLATE`` — keep only the latest state-like event (Quote, Funding,
      OpenInterest) per venue and symbol; other events drop the oldest.
    * ``RAISE`` — the next read raises :class:`~wsmux.errors.StreamOverflow`;
      events that do not fit are dropped (counted).
    """

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    CONFLATE = "conflate"
    RAISE = "raise"


@attrs.define(slots=True)
class StreamStats:
    """Counters of one stream.

    ``received`` (events routed to the stream) and ``delivered`` (events its
    consumer took) are read-only: an event handed straight to the sync
    callbacks of a callback stream is both at once and is counted once, not
    twice (the per-event cost of a callback stream is mostly its counting).
    """

    _received: int = 0
    """Received and not passed straight to the callbacks: buffered, dropped,
    delivered later or to async callbacks."""
    _delivered: int = 0
    """Delivered and not passed straight to the callbacks."""
    _passed: int = attrs.field(default=0, init=False)
    """Handed straight to the sync callbacks, in no buffer: received and delivered."""
    dropped: int = 0
    conflated: int = 0
    callback_errors: int = 0
    callback_dropped: int = 0
    """Events the iterator got but the async callbacks missed (their backlog
    was full)."""
    max_buffered: int = 0
    slow_episodes: int = 0
    dropped_by_reason: dict[str, int] = attrs.field(factory=dict)

    @property
    def received(self) -> int:
        """Events routed to the stream."""
        return self._received + self._passed

    @property
    def delivered(self) -> int:
        """Events its consumer took (a sync callback returned, the iterator
        read it, or the async callbacks were handed it)."""
        return self._delivered + self._passed

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{a.name.lstrip('_')}={getattr(self, a.name.lstrip('_'))!r}"
            for a in attrs.fields(StreamStats)
            if a.name != "_passed"
        )
        return f"StreamStats({fields})"


class Stream:
    """Events of a set of subscriptions. Created by
    :meth:`wsmux.Multiplexer.subscribe`, not directly.

    Args:
        subscriptions: what the stream carries.
        maxsize: buffer bound (events).
        overflow: policy when the buffer is full.
        name: a label for health and ``Dropped`` events.
        on_close: called once when the stream is closed (unsubscribes).
        slow_consumer_events: yield a :class:`~wsmux.SlowConsumer` event (in
            band, outside the accounting, like ``Dropped``) when the buffer
            passes 80 % of ``maxsize``; re-armed below 50 %.
    """

    def __init__(
        self,
        subscriptions: tuple[Subscription, ...],
        *,
        maxsize: int = 100_000,
        overflow: Overflow = Overflow.BLOCK,
        name: str = "",
        on_close: Callable[[Stream], Awaitable[None]] | None = None,
        clock_ns: Callable[[], int] | None = None,
        slow_consumer_events: bool = False,
    ) -> None:
        if maxsize <= 0:
            raise ConfigError(f"maxsize must be positive, not {maxsize}")
        self.subscriptions = subscriptions
        self.maxsize = maxsize
        self.overflow = overflow
        self.name = name or f"stream-{id(self):x}"
        self.stats = StreamStats()
        self._buf: collections.deque[Event] = collections.deque()
        self._conflate: dict[tuple[type, str, str], Event] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._space: asyncio.Event | None = None
        self._sync_cbs: dict[type, list[Callable[[Any], object]]] = {}
        self._async_cbs: dict[type, list[Callable[[Any], Awaitable[object]]]] = {}
        self._async_queue: collections.deque[
            tuple[Event, tuple[Callable[[Any], Awaitable[object]], ...], bool]
        ] = collections.deque()
        self._async_owed = 0
        """Queued events whose consumer is the async callbacks (counted in the accounting)."""
        self._reporting_error = False
        self._async_task: asyncio.Task[None] | None = None
        self._async_wake: asyncio.Event | None = None
        self._iterated = False
        self._buffering = True
        self._early: list[Event] = []
        """Events that arrived before the first callback of an unread stream
        (handed to each callback registered until the stream is read; at most
        ``maxsize``, since the buffer stops growing at the first callback)."""
        self._dependents: list[Stream] = []
        """Streams fed from this one's callbacks (analytics outputs): closed with it."""
        self._pending_drops = 0
        self._pending_reasons: dict[str, int] = {}
        self._overflowed = False
        self._closed = False
        self._on_close = on_close
        self._clock_ns = clock_ns
        self._dispatch_cache: dict[type, _Resolved] = {}
        self._callbacks_changed: Callable[[], object] | None = None
        """Told when callbacks are added or removed, when the stream starts
        buffering for a reader, and when it closes (the multiplexer drops the
        puts it built with :meth:`_put_for` and its list of the streams that
        can hold a venue back)."""
        self._high = max(1, maxsize * 8 // 10)
        self._low = maxsize // 2
        self._slow = False
        self._slow_pending = 0
        self.slow_consumer_events = slow_consumer_events
        self.latency: LatencyHistogram | None = None
        """Receive → consumer latency (a sync callback returned, or the
        iterator read the event), sampled one event in ``_sample_mask + 1``;
        set by the multiplexer's metrics (needs ``clock_ns``)."""
        self._sample_mask = DISABLED_MASK

    # --- callbacks ------------------------------------------------------------------

    def on(self, event_type: type[E], callback: Callable[[E], object]) -> Stream:
        """Call ``callback(event)`` for every event of ``event_type`` (or a subclass).

        Sync callbacks run inline during dispatch; async callbacks run in
        order on one task of this stream. An exception in a callback is
        reported as an :class:`~wsmux.Error` event (kind ``CALLBACK``) and
        counted; it never stops the stream. Returns the stream (chainable).

        On a stream nobody has read yet, the events that arrived before the
        first registration (between :meth:`~wsmux.Multiplexer.subscribe` and
        ``on()`` — with :mod:`wsmux.sync` the loop runs in another thread, so
        the first events can beat ``on()``) are handed to ``callback`` at
        once, in order, and to each callback registered later until the
        stream is read; they leave the buffer (a callback stream buffers
        nothing) and count as delivered.
        """
        if self._closed:
            raise ClosedError("stream is closed")
        is_async = False
        if inspect.iscoroutinefunction(callback):
            is_async = True
            self._async_cbs.setdefault(event_type, []).append(callback)
        else:
            self._sync_cbs.setdefault(event_type, []).append(callback)
        if not self._iterated:
            if self._buffering and self._buf:  # the first callback of an unread stream
                self._early = list(self._buf)
                self._buf.clear()
                self._conflate.clear()
                self.stats._delivered += len(self._early)
                if self._space is not None:
                    self._space.set()
            self._buffering = False
            if self._early:
                self._replay_early(event_type, callback, is_async)
        self._dispatch_cache.clear()
        if self._callbacks_changed is not None:
            self._callbacks_changed()
        return self

    def _replay_early(self, event_type: type, callback: Callable[[Any], object], is_async: bool) -> None:
        """Hand the events that arrived before the first callback to a new one."""
        for event in [e for e in self._early if isinstance(e, event_type)]:
            if is_async:  # already counted as delivered: not owed to the callbacks
                self._async_queue.append((event, (callback,), False))  # type: ignore[arg-type]
                self._wake_async()
                continue
            try:
                callback(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self._callback_error(callback, exc)

    def off(self, event_type: type[E], callback: Callable[[E], object]) -> None:
        """Remove a callback registered with :meth:`on` for ``event_type``
        (nothing happens if it is not registered)."""
        for table in (self._sync_cbs, self._async_cbs):
            fns: list[Any] | None = table.get(event_type)
            if fns is not None and callback in fns:
                fns.remove(callback)
                if not fns:
                    del table[event_type]
        self._dispatch_cache.clear()
        if self._callbacks_changed is not None:
            self._callbacks_changed()

    # --- producer side (called by the multiplexer) -----------------------------------

    def _put(self, event: Event) -> None:
        """Deliver ``event``: run callbacks and buffer it. Never raises
        (except ``KeyboardInterrupt``/``SystemExit`` from a callback)."""
        if self._closed:
            return
        stats = self.stats
        stats._received += 1
        cls = type(event)
        cached = self._dispatch_cache.get(cls)
        if cached is None:
            cached = self._resolve(cls)
        sync_cbs, async_cbs = cached
        for fn in sync_cbs:
            try:
                fn(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # CancelledError raised by user code is the user's error too
                self._callback_error(fn, exc)
        if not stats._received & self._sample_mask and sync_cbs:
            self._sample(event)
        if async_cbs:
            self._queue_async(event, async_cbs)
            if not self._buffering:
                return  # delivered when the async callbacks are handed it
        if not self._buffering:
            stats._delivered += 1
            return
        self._buffer(event)

    def _put_for(self, cls: type) -> Callable[[Event], None]:
        """What the multiplexer calls to deliver events of class ``cls``: :meth:`_put`,
        or, for a stream whose only consumers of ``cls`` are sync callbacks (the
        common callback stream), the same steps without the ones that cannot
        apply — no per-event look-up of the callbacks, no async queue. Valid
        until the callbacks change or the stream is closed (then
        :attr:`_callbacks_changed` fires and the caller asks again, getting
        :meth:`_put`); reading the stream is checked per event."""
        sync_cbs, async_cbs = self._dispatch_cache.get(cls) or self._resolve(cls)
        if self._closed or self._buffering or async_cbs or not sync_cbs:
            return self._put
        stream = self
        stats = self.stats
        fns = tuple(sync_cbs)
        error = self._callback_error
        sample = self._sample

        def put_to_callbacks(event: Event) -> None:
            stats._passed += 1
            for fn in fns:
                try:
                    fn(event)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # as in _put: the user's error, reported
                    error(fn, exc)
            if not stats._passed & stream._sample_mask:
                sample(event)
            if stream._buffering:  # a callback started reading the stream: received, buffered
                stats._passed -= 1
                stats._received += 1
                stream._buffer(event)

        if len(fns) > 1:
            return put_to_callbacks
        only = fns[0]

        def put_to_callback(event: Event) -> None:  # the same for one callback, without the loop
            stats._passed += 1
            try:
                only(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                error(only, exc)
            if not stats._passed & stream._sample_mask:
                sample(event)
            if stream._buffering:
                stats._passed -= 1
                stats._received += 1
                stream._buffer(event)

        return put_to_callback

    def _sample(self, event: Event) -> None:
        recv_ns = getattr(event, "recv_ns", 0)
        if self.latency is not None and self._clock_ns is not None and recv_ns > 0:
            self.latency.record(self._clock_ns() - recv_ns)

    def _resolve(self, cls: type) -> _Resolved:
        cached = (self._matching(self._sync_cbs, cls), tuple(self._matching(self._async_cbs, cls)))
        self._dispatch_cache[cls] = cached
        return cached

    @staticmethod
    def _matching(table: dict[type, list[Any]], cls: type) -> list[Any]:
        out: list[Any] = []
        for base in cls.__mro__:
            out.extend(table.get(base, ()))
        return out

    def _buffer(self, event: Event) -> None:
        buf = self._buf
        if len(buf) >= self.maxsize:
            policy = self.overflow
            if policy is Overflow.CONFLATE and isinstance(event, _CONFLATABLE):
                key = (type(event), getattr(event, "venue", ""), getattr(event, "symbol", ""))
                old = self._conflate.get(key)
                if old is not None:
                    # replace the older state event in place: latest wins
                    for i in range(len(buf) - 1, -1, -1):
                        if buf[i] is old:
                            buf[i] = event
                            self._conflate[key] = event
                            self.stats.conflated += 1
                            self._drop(1, "conflated")
                            return
            if policy is Overflow.DROP_OLDEST or policy is Overflow.CONFLATE:
                gone = buf.popleft()
                if self._conflate and isinstance(gone, _CONFLATABLE):
                    key = (type(gone), getattr(gone, "venue", ""), getattr(gone, "symbol", ""))
                    if self._conflate.get(key) is gone:
                        del self._conflate[key]
                self._drop(1, "overflow")
            elif policy is Overflow.RAISE:
                self._overflowed = True
                self._drop(1, "overflow")
                return
            # BLOCK: accept (bounded by one frame) and let the producer pause.
        buf.append(event)
        if self.overflow is Overflow.CONFLATE and isinstance(event, _CONFLATABLE):
            self._conflate[(type(event), getattr(event, "venue", ""), getattr(event, "symbol", ""))] = event
        n = len(buf)
        self.stats.max_buffered = max(self.stats.max_buffered, n)
        if n >= self._high and not self._slow and self.slow_consumer_events:
            self._slow = True
            self.stats.slow_episodes += 1
            self._slow_pending = n
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop(self, count: int, reason: str) -> None:
        self.stats.dropped += count
        by = self.stats.dropped_by_reason
        by[reason] = by.get(reason, 0) + count
        self._pending_drops += count
        self._pending_reasons[reason] = self._pending_reasons.get(reason, 0) + count

    def _callback_error(self, fn: object, exc: BaseException) -> None:
        """A callback raised: count it, log it (with its traceback, rate-limited),
        and deliver an ``Error`` (kind CALLBACK) carrying the exception to the
        stream: to its iterator and to its ``Error`` callbacks."""
        stats = self.stats
        stats.callback_errors += 1
        name = getattr(fn, "__qualname__", repr(fn))
        n = stats.callback_errors
        if n & (n - 1) == 0:  # the 1st, 2nd, 4th, 8th...: a raising callback cannot flood the log
            _log.error(
                "stream %s: callback %s raised %s (%d callback errors so far)",
                self.name,
                name,
                type(exc).__name__,
                n,
                exc_info=exc,
            )
        if self._reporting_error:
            return  # an Error callback raised while handling an Error: counted and logged, not re-reported
        now = self._clock_ns() if self._clock_ns else 0
        err = Error(None, None, ErrorKind.CALLBACK, f"callback {name} raised {type(exc).__name__}: {exc}", now, exc)
        cached = self._dispatch_cache.get(Error) or self._resolve(Error)
        if not (self._buffering or cached[0] or cached[1]):
            return  # nobody consumes Error events on this stream: counted and logged
        self._reporting_error = True
        try:
            self._put(err)
        finally:
            self._reporting_error = False

    @property
    def callback_backlog(self) -> int:
        """Events waiting for this stream's async callbacks."""
        return len(self._async_queue)

    @property
    def blocked(self) -> bool:
        """True while a BLOCK stream's buffer, or its async callbacks' backlog,
        is full (producers should pause)."""
        return self.overflow is Overflow.BLOCK and (
            len(self._buf) >= self.maxsize or len(self._async_queue) >= self.maxsize
        )

    async def _wait_space(self) -> None:
        """Wait until a BLOCK stream has room again (or is closed)."""
        while self.blocked and not self._closed:
            if self._space is None:
                self._space = asyncio.Event()
            self._space.clear()
            await self._space.wait()

    # --- async callbacks -----------------------------------------------------------

    def _queue_async(self, event: Event, fns: tuple[Callable[[Any], Awaitable[object]], ...]) -> None:
        """Queue ``event`` for the async callbacks ``fns``, within the stream's
        bound: when the backlog is full the overflow policy applies to it
        (BLOCK: the producer pauses; DROP_OLDEST/CONFLATE: the oldest waiting
        event is dropped; RAISE: the new one is), counted and reported."""
        queue = self._async_queue
        counted = not self._buffering  # the callbacks are this event's consumer
        if len(queue) >= self.maxsize and self.overflow is not Overflow.BLOCK:
            if self.overflow is Overflow.RAISE:
                self._async_dropped(counted)
                self._wake_async()
                return
            _, _, was_counted = queue.popleft()
            self._async_dropped(was_counted)
        queue.append((event, fns, counted))
        if counted:
            self._async_owed += 1
            waiting = len(self._buf) + self._async_owed
            self.stats.max_buffered = max(self.stats.max_buffered, waiting)
        self._wake_async()

    def _async_dropped(self, counted: bool) -> None:
        if counted:
            self._async_owed -= 1
            self._drop(1, "callback_overflow")
        else:  # the iterator got the event; only the async callbacks miss it
            self.stats.callback_dropped += 1

    def _wake_async(self) -> None:
        if self._async_task is None:
            self._async_wake = asyncio.Event()
            self._async_task = asyncio.get_running_loop().create_task(self._run_async_callbacks())
        assert self._async_wake is not None
        self._async_wake.set()

    async def _run_async_callbacks(self) -> None:
        queue = self._async_queue
        assert self._async_wake is not None
        wake = self._async_wake
        task = asyncio.current_task()
        while not self._closed:
            while queue:
                event, fns, counted = queue.popleft()
                if counted:
                    self._async_owed -= 1
                    self.stats._delivered += 1
                if self._space is not None and len(queue) < self.maxsize:
                    self._space.set()
                for fn in fns:
                    try:
                        await fn(event)
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except asyncio.CancelledError as exc:
                        if task is not None and task.cancelling():
                            raise  # the stream is closing: this task is being cancelled
                        self._callback_error(fn, exc)  # raised by the callback itself
                    except Exception as exc:
                        self._callback_error(fn, exc)
            wake.clear()
            await wake.wait()

    # --- consumer side ------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        self._iterated = True
        self._early = []
        if not self._buffering:
            self._buffering = True
            if self._callbacks_changed is not None:  # it buffers now: it can hold its venues back
                self._callbacks_changed()
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._overflowed:  # RAISE: the very next read raises (then reports the loss)
                self._overflowed = False
                raise StreamOverflow(
                    f"stream {self.name} overflowed its buffer of {self.maxsize} events "
                    f"({self.stats.dropped} dropped so far)"
                )
            if self._slow_pending:
                buffered, self._slow_pending = self._slow_pending, 0
                now = self._clock_ns() if self._clock_ns else 0
                return SlowConsumer(self.name, buffered, self.maxsize, now)
            if self._pending_drops:
                count = self._pending_drops
                reasons = self._pending_reasons
                self._pending_drops = 0
                self._pending_reasons = {}
                now = self._clock_ns() if self._clock_ns else 0
                reason = (
                    ",".join(f"{r}:{n}" for r, n in sorted(reasons.items()))
                    if len(reasons) > 1
                    else next(iter(reasons))
                )
                return Dropped(self.name, count, reason, now)
            if self._buf:
                event = self._buf.popleft()
                self.stats._delivered += 1
                if not self.stats._delivered & self._sample_mask:
                    self._sample(event)
                if self._conflate:
                    key = (type(event), getattr(event, "venue", ""), getattr(event, "symbol", ""))
                    if self._conflate.get(key) is event:
                        del self._conflate[key]
                if self._space is not None and len(self._buf) < self.maxsize:
                    self._space.set()
                if self._slow and len(self._buf) < self._low:
                    self._slow = False
                return event
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def get(self, timeout: float | None = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (None: forever).
        Like one step of ``async for`` (it makes the stream buffer for reading).

        Raises:
            TimeoutError: nothing arrived in time (nothing is lost).
            ClosedError: the stream is closed and every buffered event was read.
            StreamOverflow: a ``RAISE`` stream overflowed.
        """
        if not self._iterated:
            self.__aiter__()
        try:
            if timeout is None:
                return await self.__anext__()
            # not asyncio.wait_for: on Python 3.11 it swallows a cancel of the
            # caller that lands in the turn in which the event arrived
            async with asyncio.timeout(timeout):
                return await self.__anext__()
        except StopAsyncIteration:
            raise ClosedError(f"stream {self.name} is closed and drained") from None

    async def get_batch(self, max_events: int = 1024) -> list[Event]:
        """Wait for at least one event and return up to ``max_events``
        (the sync facade reads this way to amortise thread hops).

        Raises:
            StopAsyncIteration: the stream is closed and drained.
        """
        first = await self.__anext__()
        out = [first]
        while len(out) < max_events and (self._buf or self._pending_drops) and not self._overflowed:
            out.append(await self.__anext__())
        return out

    @property
    def buffered(self) -> int:
        """Events waiting for this stream's consumer: to be read, or (a
        callback-only stream) to be handed to its async callbacks."""
        return len(self._buf) + self._async_owed

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Unsubscribe and end iteration (buffered events can still be read)."""
        if self._closed:
            return
        self._closed = True
        if self._callbacks_changed is not None:  # no put built for the open stream is used again
            self._callbacks_changed()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._space is not None:
            self._space.set()
        if self._async_task is not None:
            self._async_task.cancel()
            try:
                await self._async_task
            except asyncio.CancelledError:
                pass
            self._async_task = None
        if self._on_close is not None:
            await self._on_close(self)
        for dependent in list(self._dependents):  # streams fed only by this one end with it
            await dependent.aclose()

    def _close_with_me(self, dependent: Stream) -> None:
        """Close ``dependent`` (a stream fed from this one's callbacks, e.g. an
        analytics output) when this stream closes; undone by
        :meth:`_forget_dependent`."""
        self._dependents.append(dependent)

    def _forget_dependent(self, dependent: Stream) -> None:
        with contextlib.suppress(ValueError):
            self._dependents.remove(dependent)

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"<Stream {self.name} subs={len(self.subscriptions)} buffered={len(self._buf)} "
            f"overflow={self.overflow.value} closed={self._closed}>"
        )
