"""BookSync: keeps one :class:`OrderBook` provably in step with a venue.

Theory of operation
-------------------
Every venue's book rule is a :class:`SyncRule` — data, not code — and one
state machine enforces all of them. The machine has two states:

``WAITING`` (the book is invalid)
    Updates arrive before the snapshot that anchors them. For REST-snapshot
    venues (``SnapshotSource.REST``: Binance, KuCoin, MEXC...) they are buffered
    because diffs newer than the snapshot must be applied after it: at most
    :data:`PRE_REQUEST_BUFFER` while the request waits for the venue's REST
    budget (:meth:`BookSync.request_sent` marks it sent), then at most
    ``SyncRule.max_buffer``; the oldest are dropped and counted. For
    stream-snapshot venues they are ignored until the venue's snapshot comes —
    except while a snapshot the stream already sent is being built in steps
    (:meth:`BookSync.begin_snapshot` on a waiting book): the diffs that
    follow it on the stream are buffered (at most ``SyncRule.max_buffer``;
    one more supersedes the build and is a ``GAP``: a dropped diff could not
    be bridged) and replayed on top of it.

Updates come as :class:`~wsmux.BookUpdate` events or, on the hot path, as
:class:`Diff` objects carrying the venue's decoded level lists: their levels
are converted, checked and applied in one pass (:attr:`BookSync.applied`
holds them as floats for the event the pipeline builds).

``SYNCED`` (the book is valid)
    Every update is checked before it is applied:

    * ``Continuity.UPDATE_ID`` — updates cover id ranges ``[first_seq, seq]``.
      ``seq <= last`` is stale (ignored); ``first_seq > last + 1`` is a gap.
    * ``Continuity.PREV_ID`` — each update names the id it follows
      (``prev_seq``); it must equal the last applied ``seq``.
    * ``Continuity.SEQUENCE`` — ``seq`` must be ``last + 1``.
    * ``Continuity.MONOTONIC`` — ``seq`` must grow (no gap detection possible).
    * ``Continuity.NONE`` — no ids; only checksums and sanity checks protect it.

    After a REST snapshot with id ``S`` the first update must *bridge* it:
    updates with ``seq < S + bridge_offset`` are stale, and the first kept one
    needs ``first_seq <= S + bridge_offset <= seq`` (Binance spot:
    ``bridge_offset=1``, i.e. ``U <= S+1 <= u``; Binance futures: ``0``).
    If the first buffered update starts after that, the snapshot is too old
    and the verdict is ``REFETCH`` (ask for another; not a gap).

    After applying, the machine checks the levels were valid (positive price,
    non-negative size), that the book is not crossed (``check_crossed``) and,
    when the update carries one, the venue's checksum (``SyncRule.checksum``
    computes it over the local book).

Snapshots are built beside the live book (:class:`SnapshotJob`): the
machine stays where it was — ``WAITING``, buffering diffs — while a big REST
snapshot is converted and checked in bounded steps (the I/O layer lets other
work run between them), and only :meth:`BookSync.finish_snapshot` touches the
book: the bridge check over everything buffered so far (diffs that arrived
during the build included), the swap, the replay. Every snapshot begun,
:meth:`BookSync.invalidate` and every broken verdict starts a new *epoch*; a
job from an older epoch is never applied (``SUPERSEDED``), so a build
overtaken by a disconnect, an unsubscribe or a newer snapshot is abandoned.
:meth:`BookSync.on_snapshot` is the same job run to the end at once.

Any broken rule makes the book invalid *before* the verdict is returned — the
levels are cleared and ``book.valid`` is False — so no caller can read a
silently wrong book. The caller (the pipeline) turns the verdict into a
:class:`~wsmux.Gap` event and starts a resync (new REST snapshot or
resubscribe); ``SYNCED`` from the next snapshot becomes :class:`~wsmux.Resynced`.

The machine is sans-I/O: it never fetches, sleeps or reads a clock.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import Any

import attrs

from wsmux.book._orderbook import SNAPSHOT_STEP_LEVELS, OrderBook, SnapshotBuild, UnreadRows
from wsmux.model import BookSnapshot, BookUpdate, GapReason, Integrity, Levels

__all__ = [
    "PRE_REQUEST_BUFFER",
    "BookSync",
    "Continuity",
    "Diff",
    "SnapshotJob",
    "SnapshotSource",
    "SyncRule",
    "SyncState",
    "SyncStats",
    "Verdict",
]


class SnapshotSource(enum.Enum):
    """Where a venue's book snapshot comes from."""

    REST = "rest"
    """A REST request (the I/O layer performs it); diffs are buffered meanwhile."""
    STREAM = "stream"
    """The WebSocket sends it (on subscribe, or periodically)."""


class Continuity(enum.Enum):
    """How consecutive updates prove nothing was missed."""

    NONE = "none"
    UPDATE_ID = "update_id"
    PREV_ID = "prev_id"
    SEQUENCE = "sequence"
    MONOTONIC = "monotonic"


class SyncState(enum.Enum):
    """State of a :class:`BookSync`."""

    WAITING = "waiting"
    SYNCED = "synced"


class Verdict(enum.Enum):
    """What :meth:`BookSync.on_update` / :meth:`BookSync.on_snapshot` did."""

    __hash__ = object.__hash__  # identity hash in C (members are singletons)

    APPLIED = "applied"
    """Applied to a valid book: deliver the update."""
    BUFFERED = "buffered"
    """Held until the snapshot arrives."""
    IGNORED = "ignored"
    """Dropped while waiting for a stream snapshot."""
    STALE = "stale"
    """Older than the book; dropped (not a gap)."""
    SYNCED = "synced"
    """A snapshot made the book valid (buffered updates replayed)."""
    REFETCH = "refetch"
    """The REST snapshot is older than the buffered updates: fetch another."""
    SUPERSEDED = "superseded"
    """A :class:`SnapshotJob` was overtaken (the book was invalidated, broke,
    or another snapshot began) before it finished: nothing was applied."""
    GAP = "gap"
    BRIDGE = "bridge"
    CHECKSUM = "checksum"
    CROSSED = "crossed"
    BAD_DATA = "bad_data"

    @property
    def broken(self) -> bool:
        """True for the verdicts that invalidated the book."""
        return self in _BROKEN

    @property
    def gap_reason(self) -> GapReason:
        """The :class:`~wsmux.GapReason` for a broken verdict."""
        return _REASONS[self]


_WAITING = SyncState.WAITING
_APPLIED = Verdict.APPLIED
_STALE = Verdict.STALE
_UPDATE_ID = Continuity.UPDATE_ID
_PREV_ID = Continuity.PREV_ID
_SEQUENCE = Continuity.SEQUENCE
_MONOTONIC = Continuity.MONOTONIC
_BROKEN = frozenset({Verdict.GAP, Verdict.BRIDGE, Verdict.CHECKSUM, Verdict.CROSSED, Verdict.BAD_DATA})
_REASONS = {
    Verdict.GAP: GapReason.SEQUENCE,
    Verdict.BRIDGE: GapReason.BRIDGE,
    Verdict.CHECKSUM: GapReason.CHECKSUM,
    Verdict.CROSSED: GapReason.CROSSED,
    Verdict.BAD_DATA: GapReason.BAD_DATA,
}


@attrs.frozen(slots=True)
class SyncRule:
    """A venue's book-sync rule, declared as data.

    Attributes:
        snapshot: where snapshots come from.
        continuity: how updates chain.
        bridge_offset: REST venues: the first update must satisfy
            ``first_seq <= snapshot_seq + bridge_offset <= seq``.
        checksum: computes the venue's checksum from the local book; compared
            with ``BookUpdate.checksum``/``BookSnapshot.checksum`` when those
            are not None.
        checksum_depth: the levels per side ``checksum`` reads (Kraken 10,
            OKX 25): the local checksum is recomputed only when a level within
            that depth changed (``None``: after every update).
        depth: trim the book to this many levels per side after each change
            (venues whose checksum is over a truncated book, e.g. Kraken).
        keep_text: keep each level's text (needed by ``checksum``).
        check_crossed: treat a crossed book as broken.
        max_buffer: most updates buffered while waiting for a REST snapshot.
    """

    snapshot: SnapshotSource
    continuity: Continuity = Continuity.NONE
    bridge_offset: int = 1
    checksum: Callable[[OrderBook], int] | None = None
    checksum_depth: int | None = None
    depth: int | None = None
    keep_text: bool = False
    check_crossed: bool = True
    max_buffer: int = 10_000
    integrity: Integrity | None = None
    """Override of the derived :meth:`level`, for venues whose adapter checks
    a sequence the rule cannot see (a connection-wide sequence number)."""

    def level(self) -> Integrity:
        """The book's :class:`~wsmux.Integrity`: the override, else derived from
        the rule (UPDATE_ID, PREV_ID and SEQUENCE continuity prove sequence;
        a checksum function proves the checksum)."""
        if self.integrity is not None:
            return self.integrity
        sequenced = self.continuity in (Continuity.UPDATE_ID, Continuity.PREV_ID, Continuity.SEQUENCE)
        if self.checksum is not None:
            return Integrity.SEQUENCE_AND_CHECKSUM if sequenced else Integrity.CHECKSUM
        return Integrity.SEQUENCE if sequenced else Integrity.UNVERIFIABLE


PRE_REQUEST_BUFFER = 64
"""Diffs a REST-snapshot book keeps while its snapshot request waits for the
venue's REST budget (after a mass disconnect hundreds of books may queue for
minutes): only diffs from about the time of the request can bridge the
snapshot, so older ones are dropped (counted in ``buffer_overflow``; at worst a
REFETCH, never a wrong book). Once the request is sent the bound is
``SyncRule.max_buffer``."""


class Diff:
    """One book update as an adapter hands it over, before it is checked.

    The hot-path form of :class:`~wsmux.BookUpdate`: the same fields, but the
    levels are the venue's own decoded lists (``[price, size, ...]`` as text or
    numbers), so :class:`BookSync` converts, validates and applies them in one
    pass and the public event is built once, from the applied levels. Not an
    event: callers never see it. Mutable on purpose (no construction cost
    beyond plain stores); nothing keeps it after the frame.
    """

    __slots__ = ("asks", "bids", "checksum", "first_seq", "prev_seq", "seq", "symbol", "ts")

    def __init__(
        self,
        symbol: str,
        bids: Sequence[Sequence[Any]],
        asks: Sequence[Sequence[Any]],
        ts: int | None,
        seq: int | None = None,
        first_seq: int | None = None,
        prev_seq: int | None = None,
        checksum: int | None = None,
    ) -> None:
        self.symbol = symbol
        self.bids = bids
        self.asks = asks
        self.ts = ts
        self.seq = seq
        self.first_seq = first_seq
        self.prev_seq = prev_seq
        self.checksum = checksum

    def __repr__(self) -> str:
        return (
            f"Diff({self.symbol!r}, seq={self.seq}, first_seq={self.first_seq}, prev_seq={self.prev_seq}, "
            f"bids={len(self.bids)}, asks={len(self.asks)})"
        )


class RawSnapshot:
    """One stream snapshot as an adapter hands it over, before it is checked.

    The snapshot counterpart of :class:`Diff`: the fields of
    :class:`~wsmux.BookSnapshot`, but the levels are the venue's decoded
    ``[price, size, ...]`` rows (text or numbers) in any order, a repeated
    price counting as if applied in turn (or, for a deep snapshot on a live
    connection, a side still in the venue's own layout:
    :class:`~wsmux.book.UnreadRows`). The book's build
    (:class:`~wsmux.book.SnapshotBuild`) converts, checks and sorts them once,
    in bounded steps on a live connection, instead of the adapter doing all
    of it inside the frame that carried the snapshot (a full-depth Coinbase or
    BitMEX snapshot is thousands of rows). What the caller sees is the
    :class:`~wsmux.BookSnapshot` of the synced book, as for any snapshot.
    Not an event; nothing keeps it after the build.
    """

    __slots__ = ("asks", "asks_text", "bids", "bids_text", "checksum", "prepare", "seq", "symbol", "ts")

    def __init__(
        self,
        symbol: str,
        bids: Sequence[Sequence[Any]] | UnreadRows,
        asks: Sequence[Sequence[Any]] | UnreadRows,
        ts: int | None,
        seq: int | None = None,
        checksum: int | None = None,
        bids_text: Sequence[Sequence[Any]] | None = None,
        asks_text: Sequence[Sequence[Any]] | None = None,
        prepare: Generator[None, None, None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.bids = bids
        self.asks = asks
        self.ts = ts
        self.seq = seq
        self.checksum = checksum
        self.bids_text = bids_text
        self.asks_text = asks_text
        self.prepare = prepare
        """None, or (an adapter with :attr:`~wsmux.Adapter.defer_snapshot_rows`)
        the generator that fills ``bids`` and ``asks`` from the venue's rows,
        one bounded step per ``next()``, and completes the adapter's own state
        for the book (BitMEX's id map) when it ends. It raises what
        :meth:`~wsmux.Adapter.parse` would have raised for a bad row. Nothing
        may read the levels, nor the adapter parse another frame of the
        connection, before it has run to the end."""

    def to_snapshot(self, venue: str, recv_ns: int) -> BookSnapshot:
        """The :class:`~wsmux.BookSnapshot` these rows stand for (floats,
        best first, repeats merged, zero sizes dropped; text kept where
        given), built by the same code as a book's snapshot. O(n log n).

        Raises:
            ValueError: a row is not ``[price, size, ...]`` with numbers, or a
                price or size the book refuses (see :class:`~wsmux.book.OrderBook`).
        """
        build = SnapshotBuild(self.bids, self.asks, self.bids_text, self.asks_text, len(self.bids) + len(self.asks))
        try:
            build.finish()
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"bad snapshot row: {exc!r}") from exc
        if not build.ok:
            raise ValueError("snapshot has a level with a bad price or size")
        bid_keys = build.bid_keys[::-1]
        ask_keys = build.ask_keys
        texts = (build.bids_text, build.asks_text)
        return BookSnapshot(
            venue,
            self.symbol,
            tuple([(p, build.bids[p]) for p in bid_keys]),
            tuple([(p, build.asks[p]) for p in ask_keys]),
            self.ts,
            recv_ns,
            self.seq,
            self.checksum,
            tuple(map(texts[0].__getitem__, bid_keys)) if self.bids_text is not None else None,
            tuple(map(texts[1].__getitem__, ask_keys)) if self.asks_text is not None else None,
        )

    def __repr__(self) -> str:
        return f"RawSnapshot({self.symbol!r}, seq={self.seq}, bids={len(self.bids)}, asks={len(self.asks)})"


def public_name(cls: type) -> str:
    """The name of the event ``cls`` stands for: a :class:`Diff` is the
    ``BookUpdate`` and a :class:`RawSnapshot` the ``BookSnapshot`` it becomes
    (what reports and metrics show the caller)."""
    return _PUBLIC_NAMES.get(cls) or cls.__name__


_PUBLIC_NAMES = {Diff: "BookUpdate", RawSnapshot: "BookSnapshot"}


class SnapshotJob:
    """A snapshot offered to a :class:`BookSync` in bounded steps.

    Made by :meth:`BookSync.begin_snapshot`; call :meth:`step` until it returns
    True (letting other work run in between), then
    :meth:`BookSync.finish_snapshot`. Not an event; nothing keeps it after.
    """

    __slots__ = ("build", "epoch", "snapshot")

    def __init__(self, snapshot: BookSnapshot | RawSnapshot, build: SnapshotBuild, epoch: int) -> None:
        self.snapshot = snapshot
        self.build = build
        self.epoch = epoch

    def step(self) -> bool:
        """Build the next bounded piece (:meth:`SnapshotBuild.step`); True when done."""
        return self.build.step()


@attrs.define(slots=True)
class SyncStats:
    """Counters of one :class:`BookSync` (cumulative)."""

    applied: int = 0
    buffered: int = 0
    buffer_overflow: int = 0
    ignored: int = 0
    stale: int = 0
    snapshots: int = 0
    refetches: int = 0
    gaps: int = 0
    checksums_ok: int = 0
    checksum_mismatches: int = 0
    crossed: int = 0
    bad_data: int = 0


class BookSync:
    """The sync state machine for one book. See the module docstring.

    Args:
        rule: the venue's rule.
        book: the book to maintain (a new one if omitted).
    """

    __slots__ = (
        "_bridging",
        "_buffer",
        "_epoch",
        "_holding",
        "_local_checksum",
        "_requested",
        "applied",
        "book",
        "detail",
        "expected",
        "last",
        "received",
        "rule",
        "state",
        "stats",
    )

    def __init__(self, rule: SyncRule, book: OrderBook | None = None) -> None:
        self.rule = rule
        if book is None:
            book = OrderBook(max_depth=rule.depth, keep_text=rule.keep_text, watch_depth=rule.checksum_depth)
            book.integrity = rule.level()
            book.crossed_ok = not rule.check_crossed
        else:
            book.max_depth = rule.depth
            book.keep_text = rule.keep_text
            book.watch_depth = rule.checksum_depth
        book.integrity = rule.level()
        book.crossed_ok = not rule.check_crossed
        self.book = book
        self._local_checksum: int | None = None
        """The last checksum computed over the book (reused while its top is unchanged)."""
        self._requested = False
        """The REST snapshot was requested (see :meth:`request_sent`)."""
        self.applied: tuple[Levels, Levels] = ((), ())
        """The levels (as floats) of the last applied update."""
        self.state = SyncState.WAITING
        self.last: int | None = None
        self.stats = SyncStats()
        self._buffer: deque[BookUpdate | Diff] = deque()
        self._bridging = False
        self._holding = False
        """A stream snapshot is being built in steps: buffer the diffs that follow it."""
        self._epoch = 0
        """Bumped by every snapshot begun, invalidation and broken verdict: a
        :class:`SnapshotJob` of an older epoch is stale."""
        # Details of the last broken verdict, for the Gap event:
        self.expected: int | None = None
        self.received: int | None = None
        self.detail = ""

    # --- public --------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """True when the book is in sync."""
        return self.state is SyncState.SYNCED

    def invalidate(self) -> None:
        """Mark the book invalid and wait for a new snapshot (e.g. after a
        disconnect). Clears the levels and the buffer; a snapshot job in
        progress is abandoned. O(n)."""
        self._epoch += 1
        self.state = SyncState.WAITING
        self.book.valid = False
        self.book.clear()
        self.book.seq = None
        self.last = None
        self._buffer.clear()
        self._bridging = False
        self._holding = False
        self._local_checksum = None
        self._requested = False

    def request_sent(self) -> None:
        """The REST snapshot this book waits for was just requested: from now on
        buffer up to ``SyncRule.max_buffer`` diffs (see :data:`PRE_REQUEST_BUFFER`)."""
        self._requested = True

    def on_update(self, update: BookUpdate | Diff) -> Verdict:
        """Offer one update: a :class:`~wsmux.BookUpdate`, or a :class:`Diff`
        straight from an adapter (its levels converted, checked and applied in
        one pass; :attr:`applied` then holds them as floats for the event).
        O(k log n) when applied. A broken verdict has already invalidated the
        book when it is returned; ``STALE`` is counted and changes nothing."""
        if self.state is _WAITING:
            return self._wait(update)
        # the hot path, one call per update: continuity, levels, crossed/checksum
        rule = self.rule
        seq = update.seq
        last = self.last
        if last is not None and seq is not None:
            if self._bridging:
                threshold = last + rule.bridge_offset
                if seq < threshold:
                    self.stats.stale += 1
                    return _STALE
                first = update.first_seq if update.first_seq is not None else seq
                if first > threshold:
                    self.expected, self.received = threshold, first
                    self.detail = f"first update [{first}, {seq}] does not bridge snapshot {last}"
                    return self._fail(Verdict.BRIDGE)
                self._bridging = False
            else:
                continuity = rule.continuity
                if continuity is _UPDATE_ID:
                    if seq <= last:
                        self.stats.stale += 1
                        return _STALE
                    first = update.first_seq if update.first_seq is not None else seq
                    if first > last + 1:
                        self.expected, self.received = last + 1, first
                        self.detail = f"update [{first}, {seq}] after {last}"
                        return self._fail(Verdict.GAP)
                elif continuity is _PREV_ID:
                    if update.prev_seq != last:
                        if seq <= last:
                            self.stats.stale += 1
                            return _STALE
                        self.expected, self.received = last, update.prev_seq
                        self.detail = f"update {seq} follows {update.prev_seq}, book is at {last}"
                        return self._fail(Verdict.GAP)
                elif continuity is _SEQUENCE:
                    if seq != last + 1:
                        if seq <= last:
                            self.stats.stale += 1
                            return _STALE
                        self.expected, self.received = last + 1, seq
                        self.detail = f"sequence {seq} after {last}"
                        return self._fail(Verdict.GAP)
                elif continuity is _MONOTONIC and seq <= last:
                    self.stats.stale += 1
                    return _STALE
        book = self.book
        if type(update) is BookUpdate:
            # an adapter that builds the public event itself (floats + text)
            ok = book.apply_update(update.bids, update.asks, update.bids_text, update.asks_text)
            applied: tuple[Levels, Levels] | None = (update.bids, update.asks) if ok else None
        else:
            # the hot path: OrderBook.apply, inlined (one call per side)
            text = book.keep_text
            try:
                bids = book._apply_bids(update.bids, book._bids_text if text else None)
                asks = book._apply_asks(update.asks, book._asks_text if text else None)
            except (TypeError, ValueError, IndexError, KeyError):  # a level that is not [price, size]
                bids = asks = None
            if text and (len(book._bids_text) > book._bid_text_cap or len(book._asks_text) > book._ask_text_cap):
                book._bound_text()
            if book.max_depth is not None:
                book._trim(book.max_depth)
            applied = None if bids is None or asks is None else (bids, asks)
        if applied is None:
            self.expected = self.received = seq
            self.detail = "update has a level with a bad price or size"
            return self._fail(Verdict.BAD_DATA)
        self.applied = applied
        checksum = update.checksum
        if checksum is not None or rule.check_crossed:
            bid_keys = book._bid_keys
            ask_keys = book._ask_keys
            if checksum is not None or (bid_keys and ask_keys and bid_keys[-1] >= ask_keys[0]):
                verdict = self._post_checks(checksum)
                if verdict is not _APPLIED:
                    return self._fail(verdict)
        if seq is not None:
            self.last = seq
            book.seq = seq
        book.ts = update.ts
        self.stats.applied += 1
        return _APPLIED

    def _wait(self, update: BookUpdate | Diff) -> Verdict:
        """An update while the book waits for its snapshot: buffered (REST
        snapshot venues) or ignored (the venue's stream sends the snapshot)."""
        if self.rule.snapshot is SnapshotSource.REST:
            buf = self._buffer
            limit = self.rule.max_buffer
            if not self._requested and limit > PRE_REQUEST_BUFFER:
                limit = PRE_REQUEST_BUFFER
            if len(buf) >= limit:
                buf.popleft()
                self.stats.buffer_overflow += 1
            buf.append(update)
            self.stats.buffered += 1
            return Verdict.BUFFERED
        if self._holding:  # diffs after a stream snapshot being built: all of them, or none
            if len(self._buffer) >= self.rule.max_buffer:
                self.stats.buffer_overflow += 1
                self.expected = self.received = None
                self.detail = f"more than {self.rule.max_buffer} updates arrived while a snapshot was being built"
                return self._fail(Verdict.GAP)
            self._buffer.append(update)
            self.stats.buffered += 1
            return Verdict.BUFFERED
        self.stats.ignored += 1
        return Verdict.IGNORED

    def on_snapshot(self, snapshot: BookSnapshot | RawSnapshot) -> Verdict:
        """Offer a snapshot (REST response or stream snapshot), applied at once
        (:meth:`begin_snapshot` and :meth:`finish_snapshot` without pauses).

        Returns SYNCED when the book became valid, REFETCH when a REST
        snapshot is older than the buffered updates, or a broken verdict if
        the snapshot (or a replayed buffered update) broke a rule.
        """
        return self.finish_snapshot(self.begin_snapshot(snapshot))

    def begin_snapshot(
        self, snapshot: BookSnapshot | RawSnapshot, step_levels: int = SNAPSHOT_STEP_LEVELS
    ) -> SnapshotJob:
        """Start offering a snapshot in steps of at most ``step_levels`` levels
        (see :class:`SnapshotJob`). Nothing changes until :meth:`finish_snapshot`:
        the book keeps its state (a ``WAITING`` book buffers the diffs that
        arrive meanwhile). Any job begun before is abandoned. O(1).

        On a waiting book of a stream-snapshot venue, the updates that arrive
        until :meth:`finish_snapshot` are buffered (they follow the snapshot
        on the stream) and replayed on top of it."""
        self._epoch += 1
        if self._holding:  # diffs held for an overtaken stream snapshot precede this one
            self._buffer.clear()
        self._holding = self.state is _WAITING and self.rule.snapshot is SnapshotSource.STREAM
        build = self.book.start_build(snapshot.bids, snapshot.asks, snapshot.bids_text, snapshot.asks_text, step_levels)
        return SnapshotJob(snapshot, build, self._epoch)

    def current(self, job: SnapshotJob) -> bool:
        """False once ``job`` was overtaken (see :data:`Verdict.SUPERSEDED`)."""
        return job.epoch == self._epoch

    @property
    def epoch(self) -> int:
        """Bumped by every snapshot begun, :meth:`invalidate` and broken verdict
        (see :class:`SnapshotJob`): work started for an older epoch is stale."""
        return self._epoch

    def finish_snapshot(self, job: SnapshotJob) -> Verdict:
        """Apply a :class:`SnapshotJob` (its remaining steps are done first):
        the verdicts of :meth:`on_snapshot`, or ``SUPERSEDED`` (nothing
        applied) if the job was overtaken. O(n) for the swap's clear plus the
        replay of the buffered updates."""
        if job.epoch != self._epoch:
            return Verdict.SUPERSEDED
        self._holding = False
        rule = self.rule
        snapshot = job.snapshot
        self.stats.snapshots += 1
        seq = snapshot.seq
        if rule.snapshot is SnapshotSource.REST and seq is not None:
            threshold = seq + rule.bridge_offset
            buf = self._buffer
            while buf and (buf[0].seq is None or buf[0].seq < threshold):
                buf.popleft()
                self.stats.stale += 1
            if buf:
                first = buf[0].first_seq if buf[0].first_seq is not None else buf[0].seq
                if first is not None and first > threshold:
                    self.stats.refetches += 1
                    self.expected, self.received = threshold, first
                    self.detail = f"snapshot id {seq} is older than the first buffered update {first}"
                    self._requested = False  # the next request waits for the REST budget again
                    return Verdict.REFETCH
        book = self.book
        self._local_checksum = None
        ok = book.install(job.build)
        book.seq = seq
        book.ts = snapshot.ts
        self.last = seq
        self.state = SyncState.SYNCED
        book.valid = True
        if not ok:
            self.detail = "snapshot has a level with a bad price or size"
            return self._fail(Verdict.BAD_DATA)
        verdict = self._post_checks(snapshot.checksum)
        if verdict is not Verdict.APPLIED:
            return self._fail(verdict)
        self._bridging = rule.snapshot is SnapshotSource.REST and seq is not None
        while self._buffer:
            verdict = self.on_update(self._buffer.popleft())
            if verdict is not _APPLIED and verdict is not _STALE:
                return verdict  # on_update has failed the book
        return Verdict.SYNCED

    # --- internals -----------------------------------------------------------

    def _fail(self, verdict: Verdict) -> Verdict:
        stats = self.stats
        if verdict is Verdict.CHECKSUM:
            stats.checksum_mismatches += 1
        elif verdict is Verdict.CROSSED:
            stats.crossed += 1
        elif verdict is Verdict.BAD_DATA:
            stats.bad_data += 1
        else:
            stats.gaps += 1
        self._epoch += 1
        self.state = SyncState.WAITING
        self.book.valid = False
        self.book.clear()
        self.book.seq = None
        self.last = None
        self._buffer.clear()
        self._bridging = False
        self._holding = False
        self._local_checksum = None
        self._requested = False
        return verdict

    def _post_checks(self, checksum: int | None) -> Verdict:
        rule = self.rule
        book = self.book
        if rule.check_crossed and book.crossed():
            bp, _, ap, _ = book.bbo()
            self.expected = self.received = None
            self.detail = f"crossed book: bid {bp} >= ask {ap}"
            return Verdict.CROSSED
        if checksum is not None and rule.checksum is not None:
            if book.top_changed or self._local_checksum is None:
                local = self._local_checksum = rule.checksum(book)
                book.mark_top_seen()
            else:
                local = self._local_checksum
            if local != checksum:
                self.expected, self.received = checksum, local
                self.detail = f"venue checksum {checksum} != local {local}"
                return Verdict.CHECKSUM
            self.stats.checksums_ok += 1
        return Verdict.APPLIED
