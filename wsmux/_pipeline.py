"""Feed: one connection's adapter and book syncs, driven by frames (sans-I/O).

A :class:`Feed` turns received frames into the events a caller sees. It owns
the adapter instance of one connection and a :class:`~wsmux.book.BookSync` per
subscribed book, and reports what needs I/O as *actions* (messages to send,
REST snapshots to fetch) in :attr:`Feed.actions`, which the live connection
and the replayer carry out. Nothing here awaits, sleeps or reads a clock, so
live, replay and benchmarks run exactly the same code.

Event flow per frame::

    adapter.parse(frame) -> events
        BookUpdate   -> BookSync.on_update -> APPLIED: delivered
                                              BUFFERED: first one triggers FetchSnapshot
                                              broken: Gap delivered, resync requested
        BookSnapshot -> BookSync.on_snapshot -> SYNCED: BookSnapshot (of the
        (or RawSnapshot)                        synced book) + Resynced delivered
        Gap (adapter-detected, e.g. a connection sequence) -> books invalidated
        OrderUpdate  -> L3Sync.on_update (same verdicts as BookSync; only
                        updates that changed the L3 book are delivered)
        L3Snapshot   -> L3Sync.on_snapshot -> SYNCED: L3Snapshot, the replayed
                        buffered updates, Resynced(channel=L3) delivered
        anything else -> delivered

A REST snapshot body can be fed in bounded steps (:meth:`Feed.snapshot_body_steps`):
the connection lets other frames through between them, and the book waits,
buffering diffs, until the last step swaps the built snapshot in (see
:class:`~wsmux.book.SnapshotJob`). With :attr:`Feed.step_snapshots` (set by
live connections), a deep snapshot the *stream* sends (more than
:data:`~wsmux.book.SNAPSHOT_STEP_LEVELS` levels, for a book that waits for
it) is built the same way: ``on_frame`` only begins it and asks, with a
:class:`BuildSnapshot` action, for its steps to be run; the diffs that
follow it on the stream are buffered meanwhile and replayed on top of it.
An adapter may also hand over such a snapshot with its rows still to be read,
when the Feed turned the adapter's :attr:`~wsmux.Adapter.defer_snapshot_rows`
on. Where its later frames do not depend on the rows (Deribit, Kraken Futures,
Gemini v2, Coinbase Advanced), each side is a :class:`~wsmux.book.UnreadRows`
and the book's build steps read them: nothing changes here. Where they do
(BitMEX, whose later frames name levels by id only), the rows come with a
generator that reads them (:attr:`~wsmux.book.RawSnapshot.prepare`), and every
frame that follows is *held* (a ``_Hold``, before any parsing) while the steps
read the rows; when they end the book's build begins, and the held frames are
handled in order, their diffs held by the book as above. A hold never loses a
frame: a disconnect, steps closed early, or :data:`HOLD_MAX_FRAMES` held
frames (or :data:`HOLD_MAX_BYTES` of them) finish the reading at once
(:meth:`Feed._release`), and a bad row is reported as the frame's parse error,
as if read inside ``parse``.

Order-by-order (L3) books are kept beside the L2 ones (:meth:`Feed.add_l3`),
keyed by symbol, with their own REST snapshot (``FetchSnapshot.channel`` is
``Channel.L3``; see :mod:`wsmux.book._l3sync`).

A book whose snapshot the *stream* brings (a stream-snapshot rule, or HTX's
``req`` answer) is re-synced by asking the venue again (``Send`` of
:meth:`~wsmux.Adapter.resync_messages`). The venue may drop that request or
answer with a snapshot that cannot be read or applied, while the diffs go on:
so an update that arrives for such a waiting book checks how long ago the
snapshot was last asked for and, past :attr:`Feed.snapshot_wait_ns` of
receive time, asks again (a *re-ask*: an ``Error`` of kind ``SNAPSHOT``,
counted in :attr:`FeedStats.snapshot_reasks`). A stream snapshot that fails
on a waiting book asks again at once when that much time has passed since
the last ask, else the next update does once it has: at most one ask per
interval per book, whatever the venue sends. A book holding the diffs that
follow a snapshot being built in steps waits for no snapshot and is never
re-asked. Time is the frames' ``recv_ns``: no clock, no timer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from typing import Any

import attrs

from wsmux._reliability.quality import Quality, QualityGate
from wsmux.adapter import Adapter, HttpRequest, Outgoing, Reply
from wsmux.book import (
    SNAPSHOT_STEP_LEVELS,
    BookSync,
    Diff,
    OrderBook,
    RawSnapshot,
    SnapshotJob,
    SnapshotSource,
    Verdict,
)
from wsmux.book._l3sync import L3Sync
from wsmux.book._sync import public_name
from wsmux.book.l3 import L3Book
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownMessage, WsmuxError
from wsmux.metrics._registry import DISABLED_MASK
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    L3Snapshot,
    Liquidation,
    OpenInterest,
    OrderUpdate,
    Quote,
    Resynced,
    TextLevels,
    Trade,
    evolve,
    layout_of,
)
from wsmux.subscriptions import Subscription

__all__ = ["SNAPSHOT_WAIT_NS", "BuildSnapshot", "FetchSnapshot", "Feed", "FeedStats", "Send", "number_text_problem"]

SNAPSHOT_WAIT_NS = 10_000_000_000
"""The default :attr:`Feed.snapshot_wait_ns`: 10 s of receive time. Venues
answer a subscribe with the snapshot within a round trip (well under a
second; bitFlyer re-sends its board every few seconds anyway), so 10 s is far
beyond a slow answer, still brings a stuck book back within seconds, and
limits a venue that never answers to one request per book every 10 s."""

_APPLIED = Verdict.APPLIED
_BOOK_UPDATE = layout_of(BookUpdate)
_OK = Quality.OK
_TS_FUTURE = Quality.TS_FUTURE
_TS_PAST = Quality.TS_PAST
_GATED: frozenset[type] = frozenset({Trade, Quote, Funding, OpenInterest, Liquidation})
_BUFFERED = Verdict.BUFFERED
_IGNORED = Verdict.IGNORED
_ESCAPE_MARK: dict[type, Any] = {str: "\\u", bytes: b"\\u", bytearray: b"\\u", memoryview: b"\\u"}
# One character/byte each, looked for first: ``int in bytes`` is a memchr,
# while ``bytes in bytes`` first tries the needle as an int and raises and
# clears a TypeError inside CPython (~3K instructions per test, per frame).
_BACKSLASH: dict[type, Any] = {str: "\\", bytes: 0x5C, bytearray: 0x5C, memoryview: 0x5C}
_UNDERSCORE: dict[type, Any] = {str: "_", bytes: 0x5F, bytearray: 0x5F, memoryview: 0x5F}
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")
_UNDERSCORED_NUMBER = re.compile(r'"[-+0-9.eE]*[0-9]_[0-9][-+0-9._eE]*"')


def _no_sample(events: Sequence[Any], recv_ns: int, weight: int) -> None:
    """The latency sampler of a feed without metrics."""


def _digit_underscore_digit(frame: Any) -> bool:
    """True if ``frame`` has ``_`` between two ASCII digits (``float()`` reads
    ``"1_000"`` as 1000). A regex with a literal ``_`` prefix (a C-level fast
    search) finds ``_<digit>``, then the character before is checked: keys
    written with underscores (``sequence_num``, ``message_id``) cost ~0.2 µs."""
    pattern = _UNDERSCORE_DIGIT[type(frame) is str]
    match = pattern.search(frame)
    while match is not None:
        i = match.start()
        if i > 0 and frame[i - 1 : i].isdigit():
            return True
        match = pattern.search(frame, i + 1)
    return False


_UNDERSCORE_DIGIT: dict[bool, Any] = {True: re.compile(r"_[0-9]"), False: re.compile(rb"_[0-9]")}


def _job_steps(sync: BookSync, job: SnapshotJob) -> Generator[None, None, bool]:
    """Run ``job``'s steps, yielding between two; False as soon as it was overtaken."""
    while not job.step():
        yield
        if not sync.current(job):
            return False
    return True


def _texts(diff: Any) -> tuple[TextLevels, TextLevels]:
    """The venue's text of a Diff's levels, for the event of a checksum venue."""
    return tuple([(lv[0], lv[1]) for lv in diff.bids]), tuple([(lv[0], lv[1]) for lv in diff.asks])


def number_text_problem(frame: bytes | str) -> str | None:
    """Why ``frame`` may carry number text that is not plain ASCII decimal, or None.

    Python's ``float()`` accepts more than JSON's number grammar: digits of
    any script (Arabic-Indic ``"\\u0665\\u0660.05"`` parses as 50.05), Unicode
    spaces and ``_`` between digits.
    A venue never sends those; a frame that could carry them (non-ASCII
    characters, ``\\u`` escapes, or a quoted number with ``_``) is checked
    here and refused as a whole, so such text can never become a price,
    a size or checksum input. Frames of plain ASCII without those marks —
    every normal frame — pass the caller's O(1)/memchr pre-check and never
    reach this function.
    """
    text = frame if isinstance(frame, str) else bytes(frame).decode("utf-8", "replace")
    if not text.isascii():
        for ch in text:
            if ord(ch) > 127 and (ch.isdecimal() or ch.isspace() or ch.isdigit()):
                return f"non-ASCII digit or space U+{ord(ch):04X} in the frame"
    for match in _ESCAPED.finditer(text):
        ch = chr(int(match.group(1), 16))
        if ord(ch) > 127 and (ch.isdecimal() or ch.isspace() or ch.isdigit()):
            return f"escaped non-ASCII digit or space \\u{match.group(1)} in the frame"
    if "_" in text and _UNDERSCORED_NUMBER.search(text):
        return "a number written with '_' in the frame"
    return None


@attrs.frozen(slots=True)
class Send:
    """Action: send these messages on the connection (paced by the caller)."""

    messages: tuple[Outgoing, ...]


@attrs.frozen(slots=True)
class FetchSnapshot:
    """Action: perform ``request`` and hand the body to :meth:`Feed.on_snapshot_body`."""

    symbol: str
    request: HttpRequest
    channel: Channel = Channel.BOOK
    """``Channel.L3`` for an order-by-order snapshot; pass it back to
    :meth:`Feed.on_snapshot_body`."""


@attrs.frozen(slots=True, eq=False)
class BuildSnapshot:
    """Action: run ``steps`` to the end, letting other work run between two
    ``next()`` calls (each is one bounded step of a deep stream snapshot's
    build; the last applies it and delivers its events). Closing ``steps``
    early abandons the snapshot (the book stays invalid)."""

    symbol: str
    steps: Generator[None, None, None]


Action = Send | FetchSnapshot | BuildSnapshot


@attrs.define(slots=True)
class _SnapshotWait:
    """A book waiting for a snapshot its stream must bring (receive times, ns).

    Made when the book asks the venue for its snapshot (a resync) or, when
    that ask went out with no frame to time it (the subscription itself, or a
    reconnect), when the first update for the waiting book arrives; dropped
    when the book syncs (and on disconnect and unsubscribe)."""

    since_ns: int
    """The wait began (its first known ask)."""
    asked_ns: int
    """The last ask: a resync or a re-ask."""
    reasks: int = 0
    """Re-asks during this wait."""


HOLD_MAX_FRAMES = 1000
"""Most frames a Feed holds while its adapter reads a deep snapshot's rows in
steps; past it the reading is finished at once (the steps are not being run)."""

HOLD_MAX_BYTES = 32 * 1024 * 1024
"""Most bytes (characters, for text frames) of frames a Feed holds while its
adapter reads a deep snapshot's rows in steps; past it the reading is finished
at once, as past :data:`HOLD_MAX_FRAMES`. A live connection runs the steps
within milliseconds, so this bounds only a flood of large frames."""


class _Hold:
    """The frames a Feed holds while its adapter reads a deep stream snapshot's
    rows in steps (:attr:`~wsmux.book.RawSnapshot.prepare`), and the snapshot
    they follow. See :meth:`Feed._release`."""

    __slots__ = ("epoch", "error", "frame", "frames", "held_bytes", "job", "prepare", "recv_ns", "snapshot", "sync")

    def __init__(self, snapshot: RawSnapshot, sync: BookSync | None, frame: bytes | str, recv_ns: int) -> None:
        assert snapshot.prepare is not None
        self.prepare = snapshot.prepare
        self.snapshot = snapshot
        self.sync = sync
        self.epoch = sync.epoch if sync is not None else 0
        self.frame = frame[:200]
        """The start of the snapshot's frame, for the report of a bad row (as ``parse`` would)."""
        self.recv_ns = recv_ns
        self.frames: list[tuple[bytes | str, int]] = []
        self.held_bytes = 0
        self.error: Exception | None = None
        self.job: SnapshotJob | None = None

    def step(self) -> bool:
        """One step of the reading; True once it is over (every row read, or a bad one)."""
        if self.error is not None:
            return True
        try:
            next(self.prepare)
        except StopIteration:
            return True
        except Exception as exc:
            if isinstance(exc, MalformedMessage) and exc.frame is None:
                exc = MalformedMessage(exc.reason, self.frame)
            self.error = exc
            return True
        return False

    def finish(self) -> None:
        while not self.step():
            pass


@attrs.define(slots=True)
class FeedStats:
    """Counters of one feed (cumulative over reconnects)."""

    frames: int = 0
    bytes: int = 0
    events: int = 0
    parse_errors: int = 0
    unknown_book: int = 0
    snapshot_failures: int = 0
    gaps: int = 0
    resyncs: int = 0
    snapshot_reasks: int = 0
    """Snapshots asked for again because a waiting book's stream snapshot did
    not come (or failed) within :attr:`Feed.snapshot_wait_ns`."""


class Feed:
    """Adapter + book syncs of one connection. See the module docstring.

    Args:
        adapter: this connection's adapter instance.
        sink: called with every event, in order.
    """

    def __init__(self, adapter: Adapter, sink: Callable[[Event], object]) -> None:
        self.adapter = adapter
        self.venue = adapter.venue
        self.sink = sink
        self.syncs: dict[str, BookSync] = {}
        self.book_subs: dict[str, Subscription] = {}
        self.subscriptions: set[Subscription] = set()
        """What the connection subscribed (the Connection shares its set): a
        venue's rejection is mapped to the symbol it names."""
        self.actions: list[Action] = []
        self.stats = FeedStats()
        self._fetching: set[str] = set()
        self._building: dict[str, object] = {}
        """REST snapshots being applied in steps (no new fetch for them meanwhile)."""
        self.max_consecutive_errors = 20
        """This many unreadable frames in a row make the connection suspect:
        every book is invalidated (Gap, reason BAD_DATA) and :attr:`poisoned`
        asks the connection to reconnect — a book without sequence numbers
        must not stay valid while nothing it receives can be read."""
        self.poisoned = False
        self._consecutive_errors = 0
        self.auto_books = False
        """Replay of logs without subscription records: start a book for any
        symbol whose book events appear."""
        self.gate: QualityGate | None = None
        """This connection's data-quality gate (sequence state is per
        connection, reset on reconnect), set by the multiplexer. Book updates
        are checked by their :class:`~wsmux.book.BookSync` (levels, ids), so
        the gate looks only at their timestamps; every other market event
        goes through :meth:`QualityGate.check`."""
        self.on_quality: Callable[[Event, Quality], object] | None = None
        """Told of every verdict other than OK; ``TS_*`` events are still
        delivered, the others are withheld."""
        self.l3_syncs: dict[str, L3Sync] = {}
        self.l3_subs: dict[str, Subscription] = {}
        self._l3_fetching: set[str] = set()
        self.sample_mask = DISABLED_MASK
        """Latency sampling: the frames whose count ``& sample_mask`` is 0 go
        to :attr:`sample_latency` (set with it by the multiplexer's metrics;
        the default never fires)."""
        self.sample_latency: Callable[[Sequence[Any], int, int], None] = _no_sample
        """Called with a sampled frame's events, receive time and the sampling
        rate (:meth:`wsmux.metrics.VenueLatency.sample`)."""
        self._step_snapshots = False
        self._hold: _Hold | None = None
        self.snapshot_wait_ns = SNAPSHOT_WAIT_NS
        """How long (``recv_ns`` time) a book waiting for a snapshot its
        stream must bring goes without one, after the last ask, before it asks
        again (see the module docstring). One value for every book of the
        feed: a venue's snapshot comes within a round trip of the ask, so the
        bound is about a venue that dropped the ask, not about its rules."""
        self._waits: dict[tuple[Channel, str], _SnapshotWait] = {}
        """The books waiting for a snapshot their stream must bring, by (channel, symbol)."""

    # --- subscriptions ----------------------------------------------------------

    def add_book(self, sub: Subscription) -> OrderBook:
        """Start keeping a book for ``sub`` (call before subscribing)."""
        # sub.depth is passed to the venue (subscribe/snapshot size); the book
        # is never trimmed locally beyond the rule's own depth, because a
        # diff stream over the full book cannot refill a locally cut tail.
        rule = self.adapter.book_rule_for(sub)
        book = OrderBook(self.venue, sub.symbol, max_depth=rule.depth, keep_text=rule.keep_text)
        self.syncs[sub.symbol] = BookSync(rule, book)
        self.book_subs[sub.symbol] = sub
        return book

    @property
    def step_snapshots(self) -> bool:
        """Build a waiting book's deep stream snapshot in steps (a
        :class:`BuildSnapshot` action) instead of inside :meth:`on_frame`,
        and let the adapter read a deep snapshot's rows in steps too
        (:attr:`~wsmux.Adapter.defer_snapshot_rows`; the frames that follow
        it are held until then). Off by default, so a replay or a test
        applies every snapshot at once, in frame order; live connections
        turn it on."""
        return self._step_snapshots

    @step_snapshots.setter
    def step_snapshots(self, on: bool) -> None:
        self._step_snapshots = on
        self.adapter.defer_snapshot_rows = on

    def remove_book(self, symbol: str) -> None:
        """Stop keeping the book of ``symbol``."""
        sync = self.syncs.pop(symbol, None)
        self.book_subs.pop(symbol, None)
        self._fetching.discard(symbol)
        self._building.pop(symbol, None)
        self._waits.pop((Channel.BOOK, symbol), None)
        if sync is not None:
            sync.invalidate()

    def add_l3(self, sub: Subscription) -> L3Book:
        """Start keeping an order-by-order book for ``sub`` (``Channel.L3``)."""
        book = L3Book(self.venue, sub.symbol)
        self.l3_syncs[sub.symbol] = L3Sync(book, self.adapter.l3_rule(sub.symbol))
        self.l3_subs[sub.symbol] = sub
        return book

    def remove_l3(self, symbol: str) -> None:
        """Stop keeping the L3 book of ``symbol``."""
        sync = self.l3_syncs.pop(symbol, None)
        self.l3_subs.pop(symbol, None)
        self._l3_fetching.discard(symbol)
        self._waits.pop((Channel.L3, symbol), None)
        if sync is not None:
            sync.invalidate()

    # --- input ----------------------------------------------------------------

    def on_frame(self, frame: bytes | str, recv_ns: int) -> None:
        """Process one received frame.

        Never raises: whatever goes wrong with one frame — it does not decode,
        carries number text wsmux does not accept (see :func:`number_text_problem`),
        or an adapter, book or checksum step fails — is contained to that
        frame (an :class:`~wsmux.Error`) and, where a book was being changed,
        to that book (a :class:`~wsmux.Gap`, then a resync).
        """
        hold = self._hold
        if hold is not None:  # the adapter is reading a deep snapshot's rows in steps
            hold.frames.append((frame, recv_ns))
            hold.held_bytes += len(frame)
            if len(hold.frames) >= HOLD_MAX_FRAMES or hold.held_bytes >= HOLD_MAX_BYTES:
                self._release(hold, begin=True)
            return
        stats = self.stats
        stats.frames += 1
        stats.bytes += len(frame)
        try:
            kind = type(frame)
            if (
                not frame.isascii()
                or (_BACKSLASH[kind] in frame and _ESCAPE_MARK[kind] in frame)
                or (_UNDERSCORE[kind] in frame and _digit_underscore_digit(frame))
            ):
                # binary encodings (protobuf) are not text: their adapter checks number text itself
                problem = None if self.adapter.binary_frames and kind is not str else number_text_problem(frame)
                if problem is not None:
                    raise MalformedMessage(f"{self.venue}: {problem}", frame)
            events = self.adapter.parse(frame, recv_ns)
        except Exception as exc:  # WsmuxError, or an adapter bug: never kills the multiplexer
            self._frame_failed(exc, recv_ns)
            return
        self._consecutive_errors = 0
        if not stats.frames & self.sample_mask:
            self.sample_latency(events, recv_ns, self.sample_mask + 1)
        sink = self.sink
        syncs = self.syncs
        venue = self.venue
        gate = self.gate
        for event in events:
            cls = type(event)
            try:
                if cls in _GATED:  # trades, quotes...: the commonest events first
                    if gate is not None:
                        quality = gate.check(event)  # type: ignore[arg-type]
                        if quality is not _OK:
                            if self.on_quality is not None:
                                self.on_quality(event, quality)  # type: ignore[arg-type]
                            if quality is not _TS_FUTURE and quality is not _TS_PAST:
                                continue
                    stats.events += 1
                    sink(event)  # type: ignore[arg-type]
                elif cls is Diff or cls is BookUpdate:
                    symbol = event.symbol  # type: ignore[union-attr]
                    sync = syncs.get(symbol)
                    if sync is None:
                        sync = self._auto_book(symbol, recv_ns)
                        if sync is None:
                            stats.unknown_book += 1
                            continue
                    verdict = sync.on_update(event)  # type: ignore[arg-type]
                    if verdict is _APPLIED:
                        stats.events += 1
                        if cls is Diff:
                            diff: Any = event
                            bids, asks = sync.applied
                            event = _BOOK_UPDATE(
                                venue,
                                symbol,
                                bids,
                                asks,
                                diff.ts,
                                recv_ns,
                                diff.seq,
                                diff.first_seq,
                                diff.prev_seq,
                                diff.checksum,
                                *(_texts(diff) if sync.book.keep_text else ()),
                            )
                            event.__class__ = BookUpdate
                        ts = event.ts  # type: ignore[union-attr]
                        if gate is not None and ts is not None:  # QualityGate.ts_verdict, inlined
                            drift = ts - recv_ns
                            if (drift > gate._future_ns or drift < gate._neg_past_ns) and self.on_quality is not None:
                                self.on_quality(event, gate.ts_verdict(ts, recv_ns))  # type: ignore[arg-type]
                        sink(event)  # type: ignore[arg-type]
                    elif verdict is _IGNORED:  # waiting for the stream's snapshot: has it been too long?
                        self._waiting(Channel.BOOK, symbol, recv_ns)
                    elif verdict is _BUFFERED:
                        self._want_snapshot(symbol, recv_ns)
                    elif verdict.broken:
                        self._broken(symbol, sync, verdict, recv_ns)
                elif cls is BookSnapshot or cls is RawSnapshot:
                    self._snapshot(event, recv_ns, frame)  # type: ignore[arg-type]
                elif cls is Gap:
                    self._venue_gap(event, recv_ns)  # type: ignore[arg-type]
                elif cls is OrderUpdate:
                    self._l3_update(event, recv_ns)  # type: ignore[arg-type]
                elif cls is L3Snapshot:
                    self._l3_snapshot(event, recv_ns)  # type: ignore[arg-type]
                elif cls is Reply:  # the venue's frame wants an answer (a server ping)
                    self.actions.append(Send((event.message,)))  # type: ignore[union-attr]
                else:
                    stats.events += 1
                    sink(event)  # type: ignore[arg-type]
            except Exception as exc:  # a book step failed on this event: contain it to its book
                self._event_failed(event, exc, recv_ns)

    def on_snapshot_body(self, symbol: str, body: bytes, recv_ns: int, channel: Channel | None = None) -> None:
        """Feed the body of a REST snapshot fetched for ``symbol`` (all of
        :meth:`snapshot_body_steps` at once).

        ``channel`` is :attr:`FetchSnapshot.channel`; when omitted, an L3
        fetch outstanding for ``symbol`` (and no L2 one) routes the body to
        the L3 book.
        """
        for _ in self.snapshot_body_steps(symbol, body, recv_ns, channel):
            pass

    def snapshot_body_steps(
        self, symbol: str, body: bytes, recv_ns: int, channel: Channel | None = None
    ) -> Generator[None, None, None]:
        """:meth:`on_snapshot_body` in bounded steps: each ``next()`` does one
        (parsing the body, then about :data:`~wsmux.book.SNAPSHOT_STEP_LEVELS`
        levels converted and checked per step; a small snapshot is one step)
        and the last applies the snapshot and delivers its events. Between steps the caller may run
        other work — frames of this connection included: the book stays
        invalid and buffers its diffs, which the last step bridges and
        replays. A build overtaken meanwhile (disconnect, unsubscribe,
        another snapshot) is dropped, never applied. Closing the iterator
        early abandons the snapshot.
        """
        if channel is Channel.L3 or (channel is None and symbol in self._l3_fetching and symbol not in self._fetching):
            self._l3_snapshot_body(symbol, body, recv_ns)
            return
        self._fetching.discard(symbol)
        sync = self.syncs.get(symbol)
        if sync is None:
            return
        epoch = sync.epoch
        building = self._building
        token = building[symbol] = object()  # no second fetch while this one is applied
        try:
            snapshot = yield from self.adapter.parse_snapshot_steps(symbol, body, recv_ns)
            if self.syncs.get(snapshot.symbol) is not sync or sync.epoch != epoch:
                return  # overtaken while parsing (disconnect, unsubscribe, another snapshot)
            job = sync.begin_snapshot(snapshot)
            if len(snapshot.bids) + len(snapshot.asks) > SNAPSHOT_STEP_LEVELS:
                yield  # the parse was a step of its own
            if not (yield from _job_steps(sync, job)):
                return  # overtaken: stop building (finish_snapshot would not apply it)
        except Exception as exc:  # refused by the adapter, or a level that is not a number
            self.on_snapshot_error(symbol, exc, recv_ns)
            return
        finally:
            if building.get(symbol) is token:
                del building[symbol]
        self._snapshot_verdict(snapshot.symbol, sync, sync.finish_snapshot(job), recv_ns)

    def on_fetch_started(self, symbol: str, channel: Channel = Channel.BOOK) -> None:
        """The REST snapshot for ``symbol`` is being requested now (the I/O
        layer calls this after the venue's REST rate limit let it go): its
        book may buffer diffs up to ``SyncRule.max_buffer`` from here on
        (before, only the last :data:`~wsmux.book.PRE_REQUEST_BUFFER`)."""
        sync = self.syncs.get(symbol) if channel is Channel.BOOK else None
        if sync is not None:
            sync.request_sent()

    def on_snapshot_error(self, symbol: str, exc: BaseException, recv_ns: int, channel: Channel | None = None) -> None:
        """Report a failed REST snapshot; the book stays invalid and the next
        buffered update asks for another snapshot. ``channel`` None: whichever
        fetch (L2 or L3) is outstanding for ``symbol``."""
        if channel is not Channel.BOOK:
            self._l3_fetching.discard(symbol)
        if channel is Channel.L3:
            self.stats.snapshot_failures += 1
            self.sink(Error(self.venue, symbol, ErrorKind.SNAPSHOT, f"{type(exc).__name__}: {exc}", recv_ns))
            return
        self._fetching.discard(symbol)
        self.stats.snapshot_failures += 1
        self.sink(Error(self.venue, symbol, ErrorKind.SNAPSHOT, f"{type(exc).__name__}: {exc}", recv_ns))

    def release_held(self) -> None:
        """Handle the frames held while an adapter reads a deep snapshot's rows
        (the reading finished at once; the snapshot is not applied, its book
        stays invalid). The connection calls it when it is lost, before it
        reports the loss, since those frames arrived before it."""
        if self._hold is not None:
            self._release(self._hold, begin=False)

    def on_disconnect(self, recv_ns: int) -> None:
        """The connection is gone: every valid book is now unverifiable (the
        frames it held for a snapshot's rows are handled first)."""
        self.release_held()
        for symbol, sync in self.syncs.items():
            if sync.valid:
                sync.invalidate()
                self.stats.gaps += 1
                self.sink(Gap(self.venue, symbol, Channel.BOOK, GapReason.DISCONNECT, sync.last, None, recv_ns))
            else:
                sync.invalidate()
        for symbol, l3sync in self.l3_syncs.items():
            if l3sync.valid:
                self.stats.gaps += 1
                self.sink(Gap(self.venue, symbol, Channel.L3, GapReason.DISCONNECT, l3sync.last, None, recv_ns))
            l3sync.invalidate()
        self._fetching.clear()
        self._building.clear()
        self._l3_fetching.clear()
        self._waits.clear()  # the reconnect subscribes again, at a time no frame tells yet
        if self.gate is not None:
            self.gate.reset_seq()
        self.poisoned = False
        self._consecutive_errors = 0
        self.adapter.reset()

    def take_actions(self) -> list[Action]:
        """Return and clear the pending actions."""
        actions = self.actions
        self.actions = []
        return actions

    def book(self, symbol: str) -> OrderBook | None:
        """The live book of ``symbol`` (read it; never mutate it)."""
        sync = self.syncs.get(symbol)
        return sync.book if sync is not None else None

    def l3_book(self, symbol: str) -> L3Book | None:
        """The live L3 book of ``symbol`` (read it; never mutate it)."""
        l3sync = self.l3_syncs.get(symbol)
        return l3sync.book if l3sync is not None else None

    # --- internals ------------------------------------------------------------

    def _poisoned(self, recv_ns: int) -> None:
        self.poisoned = True
        for symbol, sync in self.syncs.items():
            if sync.valid:
                sync.invalidate()
                self.stats.gaps += 1
                self.sink(
                    Gap(
                        self.venue,
                        symbol,
                        Channel.BOOK,
                        GapReason.BAD_DATA,
                        None,
                        None,
                        recv_ns,
                        f"{self.max_consecutive_errors} unreadable frames in a row",
                    )
                )

    def _event_failed(self, event: object, exc: Exception, recv_ns: int) -> None:
        """Processing ``event`` raised: report it, and if it belonged to a
        book, that book can no longer be vouched for (Gap BAD_DATA, resync).
        A snapshot that failed on a book already waiting for one asks again
        when the last ask is due (:meth:`_snapshot_failed`)."""
        self.stats.parse_errors += 1
        symbol = getattr(event, "symbol", None)
        self.sink(
            Error(
                self.venue,
                symbol,
                ErrorKind.MALFORMED,
                f"{public_name(type(event))} could not be processed: {type(exc).__name__}: {exc}"[:400],
                recv_ns,
            )
        )
        if not isinstance(symbol, str):
            return
        channel = Channel.L3 if isinstance(event, OrderUpdate | L3Snapshot) else Channel.BOOK
        sync: BookSync | L3Sync | None = (self.l3_syncs if channel is Channel.L3 else self.syncs).get(symbol)
        if sync is None:
            return
        was_valid = sync.valid
        sync.invalidate()
        if was_valid:
            sync.expected = sync.received = None
            sync.detail = f"{type(exc).__name__} while applying {public_name(type(event))}"
            self._broken(symbol, sync, Verdict.BAD_DATA, recv_ns, channel)
        elif isinstance(event, BookSnapshot | RawSnapshot | L3Snapshot) and self._asks_on_stream(channel, symbol):
            self._snapshot_failed(channel, symbol, recv_ns)

    def _auto_book(self, symbol: str, recv_ns: int) -> BookSync | None:
        if not self.auto_books:
            return None
        try:
            self.add_book(Subscription(self.venue, Channel.BOOK, symbol))
        except WsmuxError as exc:  # a symbol no book can have: that frame's error, not the feed's end
            self.sink(Error(self.venue, symbol, ErrorKind.BAD_DATA, f"{type(exc).__name__}: {exc}", recv_ns))
            return None
        return self.syncs[symbol]

    def _parse_error(self, exc: BaseException, recv_ns: int) -> None:
        self.stats.parse_errors += 1
        if isinstance(exc, UnknownMessage):
            kind = ErrorKind.UNKNOWN_MESSAGE
        elif isinstance(exc, RemoteError) and not isinstance(exc, ValueError):
            kind = ErrorKind.VENUE_ERROR
        else:
            kind = ErrorKind.MALFORMED
        symbol = self._rejected_symbol(str(exc)) if isinstance(exc, SubscriptionRejected) else None
        self.sink(Error(self.venue, symbol, kind, f"{type(exc).__name__}: {exc}", recv_ns))

    def _rejected_symbol(self, text: str) -> str | None:
        """The subscribed symbol a venue's rejection names (its native
        spelling in the venue's text; the longest match, so ``BTC-USDT`` wins
        over ``BTC-USD``), or None when none or several do."""
        found: dict[str, int] = {}
        for sub in self.subscriptions:
            try:
                native = self.adapter.to_native(sub.symbol, sub.channel)
            except Exception:
                continue
            if native and native in text:
                found[sub.symbol] = max(found.get(sub.symbol, 0), len(native))
        if not found:
            return None
        longest = max(found.values())
        named = [symbol for symbol, length in found.items() if length == longest]
        return named[0] if len(named) == 1 else None

    def _want_snapshot(self, symbol: str, recv_ns: int) -> None:
        """A book buffers diffs: fetch its REST snapshot unless one is on its way."""
        if symbol in self._fetching or symbol in self._building:
            return
        request = self.adapter.snapshot_request(symbol, self.book_subs[symbol].depth)
        if request is not None:
            self._fetching.add(symbol)
            self.actions.append(FetchSnapshot(symbol, request))
        elif self.syncs[symbol].rule.snapshot is SnapshotSource.REST:
            # buffered for a snapshot the stream brings on request (HTX ``req``). A
            # stream-rule book buffers only the diffs after a snapshot being built:
            # it waits for no snapshot then.
            self._waiting(Channel.BOOK, symbol, recv_ns)

    def _frame_failed(self, exc: Exception, recv_ns: int) -> None:
        """A frame could not be read (``exc``): reported, and counted toward
        :attr:`max_consecutive_errors` unless it was only of an unknown kind."""
        self._parse_error(exc, recv_ns)
        if not isinstance(exc, UnknownMessage):
            self._consecutive_errors += 1
            if self._consecutive_errors == self.max_consecutive_errors:
                self._poisoned(recv_ns)

    def _snapshot(self, snapshot: BookSnapshot | RawSnapshot, recv_ns: int, frame: bytes | str = "") -> None:
        symbol = snapshot.symbol
        sync = self.syncs.get(symbol) or self._auto_book(symbol, recv_ns)
        if snapshot.__class__ is RawSnapshot and snapshot.prepare is not None:
            hold = _Hold(snapshot, sync, frame, recv_ns)
            if sync is not None and self.step_snapshots and not sync.valid:
                self._hold = hold  # the frames that follow wait for the rows to be read
                self.actions.append(BuildSnapshot(symbol, self._prepared_build(hold)))
                return
            hold.finish()  # read at once, as if inside parse()
            if hold.error is not None:
                self._frame_failed(hold.error, recv_ns)
                return
        if sync is None:
            self.stats.unknown_book += 1
            return
        if (
            self.step_snapshots
            and not sync.valid
            and len(snapshot.bids) + len(snapshot.asks) > SNAPSHOT_STEP_LEVELS
        ):
            job = sync.begin_snapshot(snapshot)  # from here the book holds the diffs that follow
            self.actions.append(BuildSnapshot(symbol, self._build_steps(sync, job, recv_ns)))
            return
        self._snapshot_verdict(symbol, sync, sync.on_snapshot(snapshot), recv_ns)

    def _prepared_build(self, hold: _Hold) -> Generator[None, None, None]:
        """The steps of a deep stream snapshot whose rows the adapter reads in
        steps: the reading, with this connection's frames held meanwhile, then
        the build as for any deep stream snapshot (:meth:`_build_steps`)."""
        read = False
        try:
            while not hold.step():
                yield
            read = True
        finally:
            self._release(hold, begin=read)  # also when closed early: nothing held is lost
        if hold.job is not None and hold.sync is not None:
            yield from self._build_steps(hold.sync, hold.job, hold.recv_ns)

    def _release(self, hold: _Hold, begin: bool) -> None:
        """End ``hold``: the adapter's reading finished (at once if it was not:
        a disconnect, too many frames held, its steps closed), a bad row
        reported as the snapshot frame's parse error; with ``begin``, the
        book's build begun (from here the book holds the diffs that follow, so
        none of the held frames' diffs is lost to the snapshot), unless the
        book was invalidated or removed meanwhile; then the held frames
        handled in order (one of them may start a new hold: the rest go to it)."""
        if self._hold is not hold:
            return
        self._hold = None
        hold.finish()
        sync = hold.sync
        if hold.error is not None:
            self._frame_failed(hold.error, hold.recv_ns)
        elif begin and sync is not None and sync.epoch == hold.epoch:
            hold.job = sync.begin_snapshot(hold.snapshot)
        frames, hold.frames = hold.frames, []
        for frame, recv_ns in frames:
            self.on_frame(frame, recv_ns)

    def _build_steps(self, sync: BookSync, job: SnapshotJob, recv_ns: int) -> Generator[None, None, None]:
        """The steps of a stream snapshot's build (see :class:`BuildSnapshot`)."""
        symbol = job.snapshot.symbol
        building = self._building
        token = building[symbol] = object()
        try:
            if not (yield from _job_steps(sync, job)):
                return  # overtaken: a disconnect, an unsubscribe, a newer snapshot, a lost diff
        except Exception as exc:  # a level that is not a number: as if applied at once in on_frame
            if sync.current(job):
                self._event_failed(job.snapshot, exc, recv_ns)
            return
        finally:
            if building.get(symbol) is token:
                del building[symbol]
        self._snapshot_verdict(symbol, sync, sync.finish_snapshot(job), recv_ns)

    def _snapshot_verdict(self, symbol: str, sync: BookSync, verdict: Verdict, recv_ns: int) -> None:
        if verdict is Verdict.SYNCED:
            self._waits.pop((Channel.BOOK, symbol), None)
            book = sync.book
            self.stats.resyncs += 1
            self.stats.events += 2
            checksum = sync.rule.checksum(book) if sync.rule.checksum is not None else None  # verified by the sync
            self.sink(book.snapshot_event(recv_ns, checksum))
            self.sink(book.resynced_event(recv_ns))
        elif verdict is Verdict.REFETCH:
            if self.adapter.snapshot_request(symbol, self.book_subs[symbol].depth) is None:
                # a snapshot requested on the stream (HTX ``req``): ask again there
                self._ask_on_stream(Channel.BOOK, symbol, recv_ns)
            else:
                self._want_snapshot(symbol, recv_ns)
        elif verdict.broken:
            self._broken(symbol, sync, verdict, recv_ns)

    def _broken(
        self, symbol: str, sync: BookSync | L3Sync, verdict: Verdict, recv_ns: int, channel: Channel = Channel.BOOK
    ) -> None:
        """Report a broken verdict as a Gap (the sync already invalidated the
        book) and start the venue's resync for that book (a book that already
        waits for a snapshot from its stream asks at most once per interval:
        :meth:`_ask_due`)."""
        self.stats.gaps += 1
        self.sink(
            Gap(self.venue, symbol, channel, verdict.gap_reason, sync.expected, sync.received, recv_ns, sync.detail)
        )
        if channel is Channel.L3:
            self._l3_resync(symbol, recv_ns)
        else:
            self._resync(symbol, recv_ns)

    def _resync(self, symbol: str, recv_ns: int) -> None:
        if self.adapter.snapshot_request(symbol, self.book_subs[symbol].depth) is not None:
            # REST venue: the next buffered update triggers the fetch, which
            # guarantees the snapshot is taken after buffering began.
            return
        if self._ask_due(Channel.BOOK, symbol, recv_ns):
            self._ask_on_stream(Channel.BOOK, symbol, recv_ns)

    # --- snapshots the stream must bring: ask, wait, ask again ----------------------------

    def _asks_on_stream(self, channel: Channel, symbol: str) -> bool:
        """True if the book's snapshot comes on the stream when asked for there."""
        if channel is Channel.L3:
            l3sync = self.l3_syncs.get(symbol)
            return l3sync is not None and not l3sync.rest
        sub = self.book_subs.get(symbol)
        return sub is not None and self.adapter.snapshot_request(symbol, sub.depth) is None

    def _ask_due(self, channel: Channel, symbol: str, recv_ns: int) -> bool:
        """False while a waiting book's last ask is younger than :attr:`snapshot_wait_ns`.

        A book that breaks again while it waits (its snapshot was refused: a
        bad level, crossed, a checksum; a hole in the diffs held for it) then
        asks no sooner: the first update past the interval asks again
        (:meth:`_waiting`), so a venue that keeps sending bad snapshots is
        asked at most once per interval. A book that was valid has no wait:
        it asks at once."""
        wait = self._waits.get((channel, symbol))
        return wait is None or recv_ns - wait.asked_ns >= self.snapshot_wait_ns

    def _ask_on_stream(self, channel: Channel, symbol: str, recv_ns: int) -> None:
        """Send the venue's resync messages for a book; its wait is timed from now."""
        wait = self._waits.get((channel, symbol))
        if wait is None:
            self._waits[(channel, symbol)] = _SnapshotWait(recv_ns, recv_ns)
        else:
            wait.asked_ns = recv_ns
        sub = self.l3_subs[symbol] if channel is Channel.L3 else self.book_subs[symbol]
        self.actions.append(Send(tuple(self.adapter.resync_messages(sub))))

    def _waiting(self, channel: Channel, symbol: str, recv_ns: int) -> None:
        """An update arrived for a book waiting for a snapshot its stream must
        bring: ask again once the last ask is :attr:`snapshot_wait_ns` old."""
        wait = self._waits.get((channel, symbol))
        if wait is None:  # asked when subscribing, at a time no frame told: time it from here
            self._waits[(channel, symbol)] = _SnapshotWait(recv_ns, recv_ns)
            return
        waited = recv_ns - wait.asked_ns
        if waited >= self.snapshot_wait_ns:
            self._reask(channel, symbol, wait, "still no snapshot", recv_ns)
        elif waited < 0:  # the receive clock (wall time) stepped back: count the interval from here
            wait.asked_ns = recv_ns

    def _snapshot_failed(self, channel: Channel, symbol: str, recv_ns: int) -> None:
        """The snapshot the stream brought a waiting book failed: ask again now
        if the last ask is due (or untimed: the subscription's own), else leave
        it to :meth:`_waiting`."""
        if self._ask_due(channel, symbol, recv_ns):
            self._reask(channel, symbol, self._waits.get((channel, symbol)), "its snapshot failed", recv_ns)

    def _reask(self, channel: Channel, symbol: str, wait: _SnapshotWait | None, why: str, recv_ns: int) -> None:
        """Ask the venue again for a waiting book's snapshot, and say so."""
        if wait is None:
            wait = self._waits[(channel, symbol)] = _SnapshotWait(recv_ns, recv_ns)
            waited = "since it was subscribed"
        else:
            since_s, asked_s = (recv_ns - wait.since_ns) / 1e9, (recv_ns - wait.asked_ns) / 1e9
            waited = f"for {since_s:.1f} s, last asked {asked_s:.1f} s ago"
        wait.reasks += 1
        self.stats.snapshot_reasks += 1
        text = f"{channel.value} {symbol}: {why}; invalid {waited}; asking again (re-ask {wait.reasks})"
        self.sink(Error(self.venue, symbol, ErrorKind.SNAPSHOT, text, recv_ns))
        self._ask_on_stream(channel, symbol, recv_ns)

    def _venue_gap(self, gap: Gap, recv_ns: int) -> None:
        """The adapter found a gap it alone can see (e.g. a connection-wide
        sequence). ``symbol == ""`` means every book of the connection."""
        if gap.channel is Channel.L3:
            targets = list(self.l3_syncs) if gap.symbol == "" else [gap.symbol]
            for symbol in targets:
                l3sync = self.l3_syncs.get(symbol)
                if l3sync is None:
                    continue
                l3sync.invalidate()
                self.stats.gaps += 1
                self.sink(evolve(gap, symbol=symbol))
                self._l3_resync(symbol, recv_ns)
        elif gap.channel is Channel.BOOK:
            targets = list(self.syncs) if gap.symbol == "" else [gap.symbol]
            for symbol in targets:
                sync = self.syncs.get(symbol)
                if sync is None:
                    continue
                sync.invalidate()
                self.stats.gaps += 1
                self.sink(evolve(gap, symbol=symbol))
                self._resync(symbol, recv_ns)
        else:
            self.stats.gaps += 1
            self.sink(gap)

    # --- L3 (order-by-order) books ---------------------------------------------------

    def _l3_update(self, update: OrderUpdate, recv_ns: int) -> None:
        symbol = update.symbol
        l3sync = self.l3_syncs.get(symbol)
        if l3sync is None:
            self.stats.unknown_book += 1
            return
        verdict, event = l3sync.on_update(update)
        if event is not None:
            self.stats.events += 1
            self.sink(event)
        elif verdict is Verdict.BUFFERED:
            self._want_l3_snapshot(symbol)
        elif verdict is Verdict.IGNORED:  # waiting for the stream's snapshot: has it been too long?
            self._waiting(Channel.L3, symbol, recv_ns)
        elif verdict.broken:
            self._broken(symbol, l3sync, verdict, recv_ns, Channel.L3)

    def _l3_snapshot(self, snapshot: L3Snapshot, recv_ns: int) -> None:
        symbol = snapshot.symbol
        l3sync = self.l3_syncs.get(symbol)
        if l3sync is None:
            self.stats.unknown_book += 1
            return
        verdict, replayed = l3sync.on_snapshot(snapshot)
        if verdict is Verdict.SYNCED:
            self._waits.pop((Channel.L3, symbol), None)
            sink = self.sink
            self.stats.resyncs += 1
            self.stats.events += 2 + len(replayed)
            sink(snapshot)
            for event in replayed:
                sink(event)
            sink(Resynced(self.venue, symbol, Channel.L3, l3sync.last, recv_ns))
        elif verdict is Verdict.REFETCH:
            self._want_l3_snapshot(symbol)
        elif verdict.broken:
            self._broken(symbol, l3sync, verdict, recv_ns, Channel.L3)

    def _l3_snapshot_body(self, symbol: str, body: bytes, recv_ns: int) -> None:
        self._l3_fetching.discard(symbol)
        if symbol not in self.l3_syncs:
            return
        try:
            snapshot = self.adapter.parse_l3_snapshot(symbol, body, recv_ns)
        except Exception as exc:
            self.on_snapshot_error(symbol, exc, recv_ns, Channel.L3)
            return
        self._l3_snapshot(snapshot, recv_ns)

    def _want_l3_snapshot(self, symbol: str) -> None:
        if symbol in self._l3_fetching:
            return
        request = self.adapter.l3_snapshot_request(symbol)
        if request is not None:
            self._l3_fetching.add(symbol)
            self.actions.append(FetchSnapshot(symbol, request, Channel.L3))

    def _l3_resync(self, symbol: str, recv_ns: int) -> None:
        l3sync = self.l3_syncs[symbol]
        if l3sync.rest:
            # The next buffered update asks for the snapshot; a gap keeps the
            # update that revealed it buffered, so ask now.
            if l3sync.buffered:
                self._want_l3_snapshot(symbol)
            return
        if self._ask_due(Channel.L3, symbol, recv_ns):
            self._ask_on_stream(Channel.L3, symbol, recv_ns)
