"""Engine-independent halves of sinks and sources.

A *sink* (:class:`Sink`) reads a :class:`~wsmux.Stream` and writes its events
into an engine (Redis Streams, NATS JetStream) through an :class:`Engine`;
a *source* (:class:`Source`) reads them back through a :class:`Reader` and
yields them through a real :class:`~wsmux.Stream`. The engine modules
(:mod:`wsmux.sinks.redis`, :mod:`wsmux.sinks.nats`) only move bytes; a Kafka
sink would be one more module implementing :class:`Engine` and
:class:`Reader`.

Theory of operation — sink
--------------------------
The sink's one task reads the stream in batches (``Stream.get_batch``: what
is buffered, up to ``batch`` events, so batches grow by themselves while a
write is in flight) and writes each batch in one engine round trip. Each
event gets its key (:func:`key_parts`), its id ``(venue, epoch, seq)`` and
the ``seq`` of the previous event on its key (see :mod:`wsmux.sinks._codec`).
A failed write is retried — the same envelopes, the same ids, so the engine
(NATS) or the consumer (Redis) drops what was already stored — after a delay
from the venue connections' :class:`~wsmux._retry.Backoff`, forever, until
the sink is closed. Meanwhile the stream is not read: its overflow policy
applies on the worker side (``BLOCK`` pauses the venue connections,
``DROP_OLDEST`` drops, counted). Every failure is counted
(:attr:`SinkStats.engine_errors`), logged, and reported in band as an
:class:`~wsmux.Error` (kind ``TRANSPORT``) written with the next batch that
gets through. A :class:`~wsmux.Dropped` read from the stream means events
were lost on the worker: the sink writes it, then a
:class:`~wsmux.Gap` on every subscription of the stream (consumers' books
turn invalid) and calls ``on_loss`` (the worker publishes fresh book
snapshots, which make them valid again).

Theory of operation — source
----------------------------
The source's one task reads batches of ``(key, payload, handle)`` from the
reader, decodes each envelope and checks its id against what it read of the
same key and epoch: an id among the last :data:`DEDUP_WINDOW` read is a
duplicate (dropped, counted in :attr:`SourceStats.duplicates`); a ``prev``
beyond the highest ``seq`` read means the engine lost events on that key
(trimmed): a ``Gap`` (reason ``SEQUENCE``) is delivered before the event
and that book turns invalid; an event below the highest ``seq`` read (a
message redelivered after a consumer crash, behind newer ones) is delivered
but never applied to a book — a book that missed it turns invalid; a new
epoch on a book key means a restarted worker: the book waits for its
snapshot. Events then update the consumer-side books (:class:`SourceBooks`:
``BookSnapshot`` replaces a book, ``BookUpdate`` applies to a book that has a
base, ``Gap`` invalidates, ``Resynced`` restores one that has a base) and go
into the stream with ``_put`` — callbacks, buffer, overflow policy and
accounting exactly as for a local stream. The batch is acknowledged after
that (at-least-once: a consumer that crashes before acknowledging gets the
events again). While a ``BLOCK`` stream is full the task waits for room
before reading more, so backpressure pauses the reads. Reader failures are
counted, reported as ``Error`` events and retried with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs

from wsmux._aio import reap
from wsmux._retry import Backoff
from wsmux.book import OrderBook
from wsmux.errors import ClosedError, ConfigError, MalformedMessage
from wsmux.model import (
    Backfilled,
    BookSnapshot,
    BookUpdate,
    Channel,
    Disconnected,
    Dropped,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Resynced,
    Stale,
)
from wsmux.multiplexer import _CHANNEL_OF, BookView
from wsmux.sinks._codec import Decoded, EventId, Format, decode_message, message_encoder
from wsmux.stream import Overflow, Stream
from wsmux.subscriptions import Subscription

__all__ = [
    "WORKER_VENUE",
    "Engine",
    "Reader",
    "Sink",
    "SinkStats",
    "Source",
    "SourceBooks",
    "SourceStats",
    "disconnect_markers",
    "flatten_subscriptions",
    "key_parts",
    "subscription_parts",
]

_log = logging.getLogger("wsmux.sinks")

WORKER_VENUE = "_worker"
"""The ``venue`` part of the key and id of events that belong to no venue
(a worker stream's ``Dropped``, venue-less ``Error``)."""
STATUS = "status"
"""The ``channel`` part of the key of a venue's connection events."""


def key_parts(event: Event, worker: str) -> tuple[str, ...]:
    """The parts of the key an event is written to: ``(venue, channel,
    symbol)`` for market data and for a book's or tape's ``Gap``/``Resynced``/
    ``Stale`` (so they stay in order with the data they concern),
    ``(venue, "status")`` for a venue's connection events, and
    ``("_worker", worker)`` for the rest."""
    channel = _CHANNEL_OF.get(type(event))
    if channel is not None:
        return (event.venue, channel.value, event.symbol)  # type: ignore[attr-defined]
    if isinstance(event, Gap | Resynced):
        return (event.venue, event.channel.value, event.symbol)
    if isinstance(event, Stale) and event.channel is not None and event.symbol is not None:
        return (event.venue, event.channel.value, event.symbol)
    if isinstance(event, Backfilled):
        return (event.venue, Channel.TRADES.value, event.symbol)
    venue = getattr(event, "venue", None)
    if isinstance(venue, str) and venue:
        return (venue, STATUS)
    return (WORKER_VENUE, worker)


def flatten_subscriptions(items: Iterable[Subscription | str | Iterable[Subscription]]) -> tuple[Subscription, ...]:
    """Subscriptions from what ``Multiplexer.subscribe`` accepts (objects,
    iterables of them, ``"VENUE:CHANNEL:SYMBOL"`` text), without repeats."""
    out: list[Subscription] = []
    for item in items:
        if isinstance(item, Subscription):
            out.append(item)
        elif isinstance(item, str):
            out.extend(Subscription.parse(item))
        else:
            out.extend(item)
    return tuple(dict.fromkeys(out))


def subscription_parts(sub: Subscription) -> tuple[str, ...]:
    """The key parts of ``sub``'s events (see :func:`key_parts`)."""
    return (sub.venue, sub.channel.value, sub.symbol)


class Engine(Protocol):
    """What a sink needs from an engine (one module per engine)."""

    name: str

    async def connect(self) -> None:
        """Connect (and create what must exist: a JetStream stream)."""

    async def close(self) -> None:
        """Disconnect."""

    def key(self, parts: tuple[str, ...]) -> str:
        """The engine's key/subject for key parts."""

    async def write(self, batch: Sequence[tuple[str, bytes, str]]) -> None:
        """Store ``(key, payload, id)`` messages in order, in one round trip
        where the engine allows. Raises on failure (the batch is retried)."""

    async def begin_epoch(self, worker: str) -> tuple[int, dict[str, Any] | None]:
        """A new epoch for ``worker`` and the state its previous epoch saved."""

    async def save_state(self, worker: str, state: dict[str, Any]) -> None:
        """Remember ``worker``'s state (keys written, clean shutdown)."""

    async def heartbeat(self, worker: str, epoch: int, ttl: float) -> None:
        """Say ``worker`` is alive for ``ttl`` seconds."""


class Reader(Protocol):
    """What a source needs from an engine."""

    name: str

    async def connect(self) -> None:
        """Connect and attach the durable consumer (group)."""

    async def close(self) -> None:
        """Disconnect (unacknowledged messages are redelivered later)."""

    async def read(self, count: int) -> list[tuple[str, bytes, Any]]:
        """Up to ``count`` messages ``(key, payload, handle)``, waiting a
        short while (about a second) when there are none."""

    async def ack(self, handles: Sequence[Any]) -> None:
        """Acknowledge read messages (they are not redelivered)."""

    async def heartbeat(self, worker: str) -> dict[str, Any] | None:
        """The last heartbeat of ``worker`` (``{"epoch", "ts", "ttl"}``), or
        None when there is none or it expired."""


@attrs.define(slots=True)
class SinkStats:
    """Counters of one sink."""

    published: int = 0
    """Events written (acknowledged by the engine)."""
    batches: int = 0
    engine_errors: int = 0
    """Failed writes (each retried)."""
    loss_markers: int = 0
    """``Gap`` markers written because the worker's stream dropped events."""


class Sink:
    """Write the events of streams into an engine (see the module docstring).

    Args:
        engine: the engine (``RedisStreamSink``/``NatsSink`` pass theirs).
        worker: the name of the publishing worker (ids, state, heartbeat).
        format: ``"json"`` or ``"msgpack"``.
        batch: most events per engine write.
        linger: seconds to wait for more events when fewer than ``batch``
            are buffered (0: write what is there at once; batches still
            grow while a write is in flight).
        backoff: delays between retries of a failed write.
        on_loss: called after the sink wrote loss markers.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        worker: str = "wsmux",
        format: Format = "json",
        batch: int = 1000,
        linger: float = 0.0,
        backoff: Backoff | None = None,
        on_loss: Callable[[], object] | None = None,
    ) -> None:
        if not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a positive int, not {batch!r}")
        if isinstance(linger, bool) or not isinstance(linger, int | float) or not 0 <= linger < 60:
            raise ConfigError(f"linger must be seconds in [0, 60), not {linger!r}")
        self.linger = float(linger)
        if not worker or any(c in worker for c in ".:*> "):
            raise ConfigError(f"worker name must be non-empty without '.', ':', '*', '>' or spaces: {worker!r}")
        self.engine = engine
        self.worker = worker
        self.batch = batch
        self.backoff = backoff or Backoff()
        self.on_loss = on_loss
        self.stats = SinkStats()
        self.epoch = 0
        """This worker's epoch (set by :meth:`start`)."""
        self.previous: dict[str, Any] | None = None
        """The state the previous epoch of this worker saved (``None``: first run)."""
        self._encode = message_encoder(format)
        self._seq: dict[str, int] = {}
        self._last_on_key: dict[str, int] = {}
        self._keys: dict[tuple[str, ...], str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: list[Stream] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0
        self._closed = False
        self._started = False

    async def start(self) -> None:
        """Connect (retrying with backoff) and take a new epoch."""
        await self._retrying(self.engine.connect)
        self.epoch, self.previous = await self._retrying(lambda: self.engine.begin_epoch(self.worker))
        self._started = True

    def attach(self, stream: Stream) -> None:
        """Publish every event of ``stream`` from now on (read by iteration)."""
        if not self._started or self._closed:
            raise ClosedError("sink not started (await sink.start()) or closed")
        self._streams.append(stream)
        self._tasks.append(asyncio.get_running_loop().create_task(self._pump(stream), name=f"wsmux-sink-{stream.name}"))

    async def _pump(self, stream: Stream) -> None:
        while True:
            try:
                events = await stream.get_batch(self.batch)
                if self.linger and len(events) < self.batch:
                    await asyncio.sleep(self.linger)  # let a small batch grow (fewer, larger writes)
                    while len(events) < self.batch and stream.buffered:
                        events += await stream.get_batch(self.batch - len(events))
            except StopAsyncIteration:
                return
            self._busy += 1
            self._idle.clear()
            try:
                await self._publish_events(events, stream)
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

    async def _publish_events(self, events: list[Event], stream: Stream | None) -> None:
        lost = False
        for event in events:
            if isinstance(event, Dropped) and stream is not None:
                lost = True
        if lost and stream is not None:
            now = time.time_ns()
            for sub in stream.subscriptions:
                events.append(
                    Gap(
                        sub.venue,
                        sub.symbol,
                        sub.channel,
                        GapReason.SEQUENCE,
                        None,
                        None,
                        now,
                        "worker stream dropped events",
                    )
                )
                self.stats.loss_markers += 1
        await self.publish(events)
        if lost and self.on_loss is not None:
            self.on_loss()

    async def publish(self, events: Iterable[Event]) -> None:
        """Write ``events`` now (in order per key), retrying until they are
        stored or the sink is closed. Each key's events become one message."""
        by_key: dict[str, list[tuple[Event, EventId, int]]] = {}
        count = 0
        for event in events:
            key, item = self._envelope(event)
            items = by_key.get(key)
            if items is None:
                by_key[key] = [item]
            else:
                items.append(item)
            count += 1
        if not count:
            return
        encode = self._encode
        batch = []
        for key, items in by_key.items():
            first, last = items[0][1], items[-1][1]
            message_id = str(first) if len(items) == 1 else f"{first}-{last.seq}"
            batch.append((key, encode(items), message_id))
        await self._retrying(lambda: self.engine.write(batch))
        self.stats.published += count
        self.stats.batches += 1

    def key_of(self, parts: tuple[str, ...]) -> str:
        """The engine key of ``parts`` (cached)."""
        key = self._keys.get(parts)
        if key is None:
            key = self._keys[parts] = self.engine.key(parts)
        return key

    def _envelope(self, event: Event) -> tuple[str, tuple[Event, EventId, int]]:
        parts = key_parts(event, self.worker)
        key = self.key_of(parts)
        venue = parts[0]
        seq = self._seq.get(venue, 0) + 1
        self._seq[venue] = seq
        prev = self._last_on_key.get(key, 0)
        self._last_on_key[key] = seq
        return key, (event, EventId(venue, self.epoch, seq), prev)

    async def _retrying(self, op: Callable[[], Any]) -> Any:
        delays = self.backoff.delays()
        while True:
            try:
                return await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closed and self._started:
                    raise
                self.stats.engine_errors += 1
                delay = next(delays)
                n = self.stats.engine_errors
                if n & (n - 1) == 0:
                    _log.warning(
                        "%s sink of %s: %s: %s; retrying in %.2f s (%d failures so far)",
                        self.engine.name,
                        self.worker,
                        type(exc).__name__,
                        exc,
                        delay,
                        n,
                    )
                for stream in self._streams:
                    if not stream.closed:
                        message = f"{self.engine.name} engine: {type(exc).__name__}: {exc}"
                        stream._put(Error(None, None, ErrorKind.TRANSPORT, message, time.time_ns(), exc))
                await asyncio.sleep(delay)

    @property
    def keys(self) -> list[str]:
        """The keys this sink has written to in this epoch."""
        return sorted(self._last_on_key)

    async def flush(self) -> None:
        """Wait until every event buffered in the attached streams (closed
        ones too: they are read to the end) is written."""
        while True:
            await self._idle.wait()
            if not self._idle.is_set():
                continue  # a pump started its next write before this task woke up
            if not any(s.buffered and not t.done() for s, t in zip(self._streams, self._tasks, strict=True)):
                return
            await asyncio.sleep(0)  # the pump takes the next batch on its next turn

    async def close(self, *, flush: bool = True) -> None:
        """Flush (unless ``flush`` is False), stop reading the streams and disconnect."""
        if self._closed:
            return
        if self._started and flush:
            await self.flush()
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await reap(task, errors=False)
        with contextlib.suppress(Exception):
            await self.engine.close()


@attrs.define(slots=True)
class SourceStats:
    """Counters of one source (the stream's own counters are in ``stream.stats``)."""

    read: int = 0
    """Events read from the engine (an engine message holds one or more)."""
    duplicates: int = 0
    """Events with an id already read (a retried write, a redelivery): dropped."""
    late: int = 0
    """Events read after later events of their key (a redelivery after a
    consumer crash, an older epoch): delivered, never applied to the books."""
    holes: int = 0
    """Places where the engine lost events (each reported as a ``Gap``/``Error``)."""
    malformed: int = 0
    """Messages that are not wsmux envelopes (reported as ``Error``, acknowledged)."""
    newer_schema: int = 0
    """Envelopes of a newer schema version (read, unknown fields ignored)."""
    engine_errors: int = 0
    """Failed reads/acknowledgements (each retried)."""


class SourceBooks:
    """Consumer-side L2 books rebuilt from the events of a source, with the
    multiplexer's validity rules: a ``BookSnapshot`` replaces the book (its
    base), ``BookUpdate`` applies to a book that has a base, ``Gap``
    invalidates it (the base is gone until the next snapshot) and
    ``Resynced`` makes a book with a base valid."""

    def __init__(self) -> None:
        self._books: dict[tuple[str, str], OrderBook] = {}
        self._based: set[tuple[str, str]] = set()

    def on_event(self, event: Event) -> None:
        """Update the books with ``event`` (other events are ignored). O(levels)."""
        cls = type(event)
        if cls is BookUpdate:
            key = (event.venue, event.symbol)  # type: ignore[attr-defined]
            if key in self._based:
                book = self._books[key]
                if not book.apply_update(event.bids, event.asks):  # type: ignore[attr-defined]
                    self.invalidate(key)
                    return
                book.seq = event.seq  # type: ignore[attr-defined]
                book.ts = event.ts  # type: ignore[attr-defined]
        elif cls is BookSnapshot:
            snap: BookSnapshot = event  # type: ignore[assignment]
            key = (snap.venue, snap.symbol)
            book = self._book(key)
            if book.apply_snapshot(snap.bids, snap.asks):
                book.seq, book.ts = snap.seq, snap.ts
                book.integrity = snap.integrity
                self._based.add(key)
            else:
                self.invalidate(key)
        elif cls is Gap:
            gap: Gap = event  # type: ignore[assignment]
            if gap.channel is Channel.BOOK:
                self.invalidate((gap.venue, gap.symbol))
        elif cls is Resynced:
            done: Resynced = event  # type: ignore[assignment]
            key = (done.venue, done.symbol)
            if done.channel is Channel.BOOK and key in self._based:
                book = self._books[key]
                book.valid = True
                if done.integrity is not None:
                    book.integrity = done.integrity

    def _book(self, key: tuple[str, str]) -> OrderBook:
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = OrderBook(*key)
        return book

    def invalidate(self, key: tuple[str, str]) -> None:
        """Mark a book invalid until its next snapshot."""
        self._based.discard(key)
        book = self._books.get(key)
        if book is not None:
            book.valid = False

    def valid(self, key: tuple[str, str]) -> bool:
        book = self._books.get(key)
        return book is not None and book.valid

    def book(self, venue: str, symbol: str) -> BookView:
        """A read-only view of the book (see :class:`~wsmux.multiplexer.BookView`).

        Raises:
            KeyError: no event of that book was read yet.
        """
        return BookView(self._books[venue, symbol])

    def keys(self) -> list[tuple[str, str]]:
        return sorted(self._books)


class _KeyState:
    """What a source read of one key in one epoch: the highest ``seq`` and
    the last :data:`DEDUP_WINDOW` ids (duplicates are recent: a retried
    batch, a redelivered one)."""

    __slots__ = ("last", "order", "seen")

    def __init__(self) -> None:
        self.last = 0
        self.seen: set[int] = set()
        self.order: collections.deque[int] = collections.deque()

    def remember(self, seq: int) -> bool:
        """False if ``seq`` was read already."""
        seen = self.seen
        if seq in seen:
            return False
        seen.add(seq)
        order = self.order
        order.append(seq)
        if len(order) > DEDUP_WINDOW:
            seen.discard(order.popleft())
        return True


DEDUP_WINDOW = 65_536
"""Ids remembered per key and epoch to drop duplicates."""

_NO_STATE = _KeyState()  # a placeholder, replaced at the first envelope of every message


class Source:
    """Read events back from an engine through a real :class:`~wsmux.Stream`
    (see the module docstring). The engine modules build it.

    Attributes:
        stream: the stream to consume (``async for``, ``on()``, ``get()``).
        books: the consumer-side books.
    """

    def __init__(
        self,
        reader: Reader,
        subscriptions: tuple[Subscription, ...],
        *,
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
        batch: int = 1000,
        backoff: Backoff | None = None,
        on_id: Callable[[EventId, Event], object] | None = None,
    ) -> None:
        if not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a positive int, not {batch!r}")
        self.reader = reader
        self.batch = batch
        self.backoff = backoff or Backoff()
        self.on_id = on_id
        self.stats = SourceStats()
        self.books = SourceBooks()
        self.stream = Stream(
            subscriptions,
            maxsize=maxsize,
            overflow=overflow if isinstance(overflow, Overflow) else Overflow(overflow),
            name=name or f"{reader.name}-source",
            on_close=self._stream_closed,
            clock_ns=time.time_ns,
        )
        self._keys: dict[tuple[str, int], _KeyState] = {}
        """Per key and epoch: what was read."""
        self._epoch_of: dict[str, int] = {}
        """Per key: the newest epoch read."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> Stream:
        """Connect and start reading; returns :attr:`stream`."""
        await self.reader.connect()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"wsmux-{self.stream.name}")
        return self.stream

    async def worker_alive(self, worker: str) -> bool:
        """Whether ``worker`` (a shard: ``{worker}-{i}of{n}``) wrote a
        heartbeat within its time to live (three heartbeat intervals): a
        worker that was killed stops being alive within that time."""
        beat = await self.reader.heartbeat(worker)
        if beat is None:
            return False
        return time.time_ns() - int(beat["ts"]) <= float(beat["ttl"]) * 1e9

    @property
    def stopping(self) -> bool:
        """:meth:`close` was called."""
        return self._stopping

    def book(self, venue: str, symbol: str) -> BookView:
        """The consumer-side book of ``venue``/``symbol`` (see :class:`SourceBooks`)."""
        return self.books.book(venue, symbol)

    async def _run(self) -> None:
        stream = self.stream
        delays = None
        while not stream.closed and not self._stopping:
            if stream.blocked:
                await stream._wait_space()  # BLOCK: the engine is not read while the consumer is behind
                continue
            try:
                messages = await self.reader.read(self.batch)
                for key, payload, _ in messages:
                    if key:  # an empty key only carries an acknowledgement
                        self._deliver(key, payload)
                if messages:
                    await self.reader.ack([handle for _, _, handle in messages])
                delays = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if stream.closed or self.stopping:
                    return
                self.stats.engine_errors += 1
                delays = delays or self.backoff.delays()
                delay = next(delays)
                _log.warning("%s: %s: %s; retrying in %.2f s", stream.name, type(exc).__name__, exc, delay)
                message = f"{self.reader.name} engine: {type(exc).__name__}: {exc}"
                stream._put(Error(None, None, ErrorKind.TRANSPORT, message, time.time_ns(), exc))
                await asyncio.sleep(delay)

    def _deliver(self, key: str, payload: bytes) -> None:
        try:
            envelopes = decode_message(payload)
        except MalformedMessage as exc:
            self.stats.read += 1
            self.stats.malformed += 1
            self.stream._put(Error(None, None, ErrorKind.MALFORMED, f"{key}: {exc}", time.time_ns(), exc))
            return
        # One message is one key's share of a batch, almost always of one
        # epoch: the key's state is looked up once per run of an epoch, not
        # per envelope (the consumer's hot path).
        stats = self.stats
        on_book_event = self.books.on_event
        on_id = self.on_id
        put = self.stream._put
        state = _NO_STATE
        state_epoch: int | None = None
        current = False
        for decoded in envelopes:
            event_id, prev, version, event = decoded
            stats.read += 1
            if version > 1:
                stats.newer_schema += 1
            epoch, seq = event_id.epoch, event_id.seq
            if epoch != state_epoch:
                state, current = self._key_state(key, epoch, event)
                state_epoch = epoch
            if not state.remember(seq):
                stats.duplicates += 1
                continue
            if current and seq > state.last:
                if state.last and prev > state.last:
                    self._hole(key, event, state.last, decoded)
                state.last = seq
                on_book_event(event)
            else:  # redelivered late (after later events of its key) or from an older epoch
                stats.late += 1
                self._late(key, event)
            if on_id is not None:
                on_id(event_id, event)
            put(event)

    def _key_state(self, key: str, epoch: int, event: Event) -> tuple[_KeyState, bool]:
        """What was read of ``key`` in ``epoch``, and whether ``epoch`` is the
        newest of ``key`` (``event``, the first read of a newer epoch, marks
        the books of the older one)."""
        newest = self._epoch_of.get(key)
        if newest is None or epoch > newest:
            if newest is not None:
                self._new_epoch(event)
            self._epoch_of[key] = newest = epoch
        state = self._keys.get((key, epoch))
        if state is None:
            state = self._keys[key, epoch] = _KeyState()
        return state, epoch == newest

    def _late(self, key: str, event: Event) -> None:
        """A book event that comes after later ones of its key: the book
        missed it; it waits for its next snapshot."""
        if isinstance(event, BookUpdate | BookSnapshot):
            book = (event.venue, event.symbol)
            if self.books.valid(book):
                now = time.time_ns()
                gap = Gap(book[0], book[1], Channel.BOOK, GapReason.SEQUENCE, None, None, now, f"late event on {key}")
                self.books.on_event(gap)
                self.stream._put(gap)

    def _hole(self, key: str, event: Event, expected: int, decoded: Decoded) -> None:
        self.stats.holes += 1
        now = time.time_ns()
        channel = _CHANNEL_OF.get(type(event))
        symbol = getattr(event, "symbol", None)
        if channel is None and isinstance(event, Gap | Resynced):
            channel = event.channel
        if channel is not None and isinstance(symbol, str):
            gap = Gap(
                event.venue,  # type: ignore[attr-defined]
                symbol,
                channel,
                GapReason.SEQUENCE,
                expected,
                decoded.prev,
                now,
                f"engine lost events on {key}",
            )
            self.books.on_event(gap)
            self.stream._put(gap)
        else:
            venue = getattr(event, "venue", None)
            message = f"engine lost events on {key} (after id seq {expected}, next follows {decoded.prev})"
            self.stream._put(Error(venue, None, ErrorKind.TRANSPORT, message, now))

    def _new_epoch(self, event: Event) -> None:
        """A restarted worker writes this key: its book starts over from its snapshot."""
        if isinstance(event, BookUpdate):
            key = (event.venue, event.symbol)
            if self.books.valid(key):
                now = time.time_ns()
                gap = Gap(key[0], key[1], Channel.BOOK, GapReason.DISCONNECT, None, None, now, "worker restarted")
                self.books.on_event(gap)
                self.stream._put(gap)

    async def _stream_closed(self, _stream: Stream) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading, close the stream and disconnect (idempotent)."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            # let the current read end by itself (reads wait at most about a
            # second): cancelling a client in the middle of a blocking read
            # can leave it stuck
            done, _ = await asyncio.wait({task}, timeout=5.0)
            if not done:
                task.cancel()
            await reap(task)
        if not self.stream.closed:
            self.stream._on_close = None
            await self.stream.aclose()
        with contextlib.suppress(Exception):
            await self.reader.close()

    async def __aenter__(self) -> Stream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def disconnect_markers(state: dict[str, Any], now: int) -> list[Event]:
    """The markers a restarted worker writes for its previous epoch's
    subscriptions: per venue a ``Disconnected``, per subscription a ``Gap``
    (reason ``DISCONNECT``)."""
    out: list[Event] = []
    subs = [Subscription.parse(text)[0] for text in state.get("subscriptions", ())]
    for venue in sorted({s.venue for s in subs}):
        out.append(Disconnected(venue, 0, f"worker epoch {state.get('epoch')} ended", False, now))
    for sub in subs:
        out.append(Gap(sub.venue, sub.symbol, sub.channel, GapReason.DISCONNECT, None, None, now, "worker ended"))
    return out
