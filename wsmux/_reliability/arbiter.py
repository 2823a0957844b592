"""Arbiter: one logical feed from redundant connections.

Theory of operation
-------------------
A redundancy group is two or more connections to one venue carrying the same
subscriptions. Each connection keeps running its own
:class:`~wsmux._pipeline.Feed` — its own adapter state and its own synced
books — and every event each feed emits goes through
:meth:`Arbiter.accept` with the connection id. The arbiter answers "deliver
this copy to the caller?" so that the caller sees one feed:

* market events that are not book events go to a
  :class:`~wsmux._reliability.dedup.Deduplicator` (exactly once per trade id,
  quote ``seq`` high-water mark, or payload fingerprint);
* book events (L2 ``BookSnapshot``/``BookUpdate`` and their ``Gap``/
  ``Resynced``, and the same for L3 ``L3Snapshot``/``OrderUpdate``) follow
  the *book rule* below, per ``(venue, symbol, channel)``;
* other status events (``Connected``, ``Disconnected``, ``Stale``,
  ``Error``, trade-channel ``Gap``) always pass: they are about one
  connection, and carry its id where the model has one. ``Connected`` and
  ``Disconnected`` also mark the connection up or down.

The book rule
-------------
Per book the arbiter tracks, for each connection, whether that connection's
book is valid and the ``seq`` it reached (a ``BookUpdate`` or snapshot from a
connection means its feed is synced; a ``Gap`` means it is not; a
``Resynced`` means it is again). It also tracks the *merged view*: whether
the caller's book (built from the delivered events) is valid, and the
highest ``seq`` delivered to it (the mark).

A venue is *ordered* when its ``seq`` is the venue's per-symbol update id,
comparable across connections (every venue not in
``connection_seq_venues``) and the event carries one.

1. Update, ordered: delivered iff the merged view is valid and ``seq`` is
   above the mark (or equal to it, from the connection that set it, in the
   same frame: one frame may carry several updates with one ``seq``). The
   delivering connection becomes the book source. A copy at or below the
   mark is suppressed: the caller already has that state. Because sizes are
   absolute, an update from any synced connection with ``seq`` above the mark
   takes the caller's book exactly to ``seq`` even if the connections batch
   updates differently.
2. Update, not ordered: delivered iff the merged view is valid and it comes
   from the current book source. Other connections' copies are suppressed.
3. Snapshot: if the merged view is invalid, the snapshot is delivered, makes
   it valid, sets the mark and makes its connection the source; the
   ``Resynced`` that the same connection's feed sends next is delivered
   too. If the view is valid, an ordered snapshot above the mark is
   delivered (it moves the caller forward; later copies below it are
   suppressed); any other snapshot is suppressed — a backup connection
   (re)synced.
4. ``Gap`` from a connection that is not the source: suppressed (a backup
   broke; the caller's book is unaffected). ``Gap`` from the source: the
   arbiter falls back to the best other valid connection — ordered: highest
   ``seq``, then most recent update, then lowest connection id; not ordered:
   most recent update, then lowest id — and suppresses the gap, recording a
   :class:`SourceChange`. Only when no valid connection is left is the
   ``Gap`` delivered and the merged view marked invalid (rule 3 revalidates
   it).
5. ``Resynced``: delivered only as the companion of a snapshot that
   revalidated the merged view (rule 3).

:meth:`Arbiter.book_source` is the connection whose live book is
authoritative: the source while the merged view is valid, else None. After
an ordered fallback the new source's updates are suppressed until they pass
the mark, then continue the caller's stream seamlessly. After a fallback on a
venue that is not ordered the caller's update stream cannot continue by
``seq``: the :class:`SourceChange` has ``rebase=True`` and the multiplexer
must deliver the new source's book as a ``BookSnapshot`` before its next
update (which rule 2 delivers).

Lead, lag and stalls
--------------------
The deduplicator's :class:`~wsmux._reliability.dedup.ConnStats` are shared:
book updates add lag samples the same way quotes do. :meth:`Arbiter.primary`
is the up connection with the lowest average lag among those not stalled;
:meth:`Arbiter.stalled` lists up connections silent for ``after_s`` while at
least one other connection carried market data within ``after_s`` (when all
are silent the market is quiet, or all are dead: that is the liveness
timers' call, not the arbiter's). Time is the events' ``recv_ns`` (wall
clock, stamped once per frame): no clock is read on the hot path, and
``now_ns`` for the queries is ``clock.time_ns()``.

Costs: :meth:`accept` is O(1) per event (dict lookups and comparisons);
fallback scans the book's connections, O(connections). Memory per book is
O(connections).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from wsmux._reliability.dedup import _SAMPLE_MASK, ConnStats, Deduplicator
from wsmux.errors import ConfigError
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Connected,
    Disconnected,
    Event,
    Gap,
    GapReason,
    L3Snapshot,
    OrderUpdate,
    Quote,
    Resynced,
    StatusEvent,
    Trade,
    evolve,
)

__all__ = ["Arbiter", "ArbiterStats", "SourceChange"]

_BOOK_CHANNELS = (Channel.BOOK, Channel.L3)
_BOOK = Channel.BOOK
_L3 = Channel.L3


@attrs.frozen(slots=True)
class SourceChange:
    """The authoritative connection of a book changed because the old one broke.

    Attributes:
        venue, symbol, channel: the book (``channel`` is ``BOOK`` or ``L3``).
        old: the connection that was the source.
        new: the connection that is the source now.
        rebase: the caller's update stream cannot continue by ``seq`` (venue
            not ordered): deliver ``new``'s book as a snapshot first.
        recv_ns: receive stamp of the event that caused the change.
    """

    venue: str
    symbol: str
    channel: Channel
    old: int
    new: int
    rebase: bool
    recv_ns: int


@attrs.define(slots=True)
class ArbiterStats:
    """Counters of an :class:`Arbiter` (cumulative; market-event counters are in ``dedup.stats``).

    Attributes:
        book_passed: book events delivered (updates, snapshots).
        book_suppressed: book event copies suppressed.
        gaps_passed: book gaps delivered (no valid connection was left).
        gaps_masked: book gaps suppressed because another connection was valid.
        resyncs_passed: ``Resynced`` events delivered.
        resyncs_suppressed: ``Resynced`` events of backup connections.
        source_changes: fallbacks to another connection's book.
        status_passed: other status events passed.
        jumps: delivered ordered updates whose ``first_seq`` was beyond
            mark + 1 (cannot happen while each feed is continuous; counted
            as a canary).
    """

    book_passed: int = 0
    book_suppressed: int = 0
    gaps_passed: int = 0
    gaps_masked: int = 0
    resyncs_passed: int = 0
    resyncs_suppressed: int = 0
    source_changes: int = 0
    status_passed: int = 0
    jumps: int = 0


class _ConnBook:
    __slots__ = ("last_ns", "seq", "valid")

    def __init__(self) -> None:
        self.valid = False
        self.seq: int | None = None
        self.last_ns = 0


class _Book:
    __slots__ = ("conns", "hwm", "hwm_conn", "hwm_ns", "ordered", "pending_resynced", "source", "valid")

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self.conns: dict[int, _ConnBook] = {}
        self.valid = False
        self.source: int | None = None
        self.hwm: int | None = None
        self.hwm_ns = 0
        self.hwm_conn = -1
        self.pending_resynced: int | None = None


class Arbiter:
    """Merges redundant connections of one feed (see the module docstring).

    Args:
        dedup: the deduplicator for non-book market events (a default one if omitted).
        stall_after_s: default ``after_s`` of :meth:`stalled`, and the silence
            that excludes a connection from :meth:`primary`.
        connection_seq_venues: venues whose ``seq`` is per connection (books
            of these venues are not ordered); default: the deduplicator's.
    """

    def __init__(
        self,
        *,
        dedup: Deduplicator | None = None,
        stall_after_s: float = 5.0,
        connection_seq_venues: Iterable[str] | None = None,
    ) -> None:
        if stall_after_s <= 0:
            raise ConfigError(f"stall_after_s must be positive, not {stall_after_s}")
        self.dedup = dedup if dedup is not None else Deduplicator()
        self.stall_after_s = stall_after_s
        self.connection_seq_venues = (
            frozenset(connection_seq_venues) if connection_seq_venues is not None else self.dedup.connection_seq_venues
        )
        self.stats = ArbiterStats()
        self._books: dict[tuple[str, str, Channel], _Book] = {}
        self._changes: list[SourceChange] = []

    # --- connections ------------------------------------------------------------

    def add_connection(self, conn_id: int, now_ns: int) -> None:
        """Register a connection (optional: unknown ids register on first event).

        ``now_ns`` starts its silence clock, so a connection that never
        delivers is reported by :meth:`stalled`.
        """
        conn = self.dedup.conn(conn_id)
        conn.up = True
        if conn.last_ns == 0:
            conn.last_ns = now_ns

    def remove_connection(self, conn_id: int, now_ns: int) -> list[Gap]:
        """Forget a connection (closed for good). O(books).

        Its books stop counting; where it was the source, the arbiter falls
        back as on a gap. Returns the ``Gap`` events (reason ``DISCONNECT``)
        the caller must now see: books for which no valid connection is left.
        """
        gaps: list[Gap] = []
        for (venue, symbol, channel), book in self._books.items():
            if conn_id not in book.conns:
                continue
            gap = Gap(venue, symbol, channel, GapReason.DISCONNECT, None, None, now_ns, "connection removed")
            if self._gap(conn_id, book, gap):
                gaps.append(gap)
            del book.conns[conn_id]
        self.dedup.remove_connection(conn_id)
        return gaps

    # --- the hot path -----------------------------------------------------------

    def accept(self, conn_id: int, event: Event) -> bool:
        """Whether to deliver this copy of ``event`` carried by ``conn_id``. O(1)."""
        cls = type(event)
        if cls is BookUpdate or cls is OrderUpdate:
            return self._update(conn_id, event)  # type: ignore[arg-type]
        if cls is Trade or cls is Quote:
            return self.dedup.accept(conn_id, event)
        if cls is BookSnapshot or cls is L3Snapshot:
            return self._snapshot(conn_id, event)  # type: ignore[arg-type]
        if isinstance(event, StatusEvent):
            return self._status(conn_id, event)
        return self.dedup.accept(conn_id, event)

    # --- queries ----------------------------------------------------------------

    def book_source(self, venue: str, symbol: str, channel: Channel = Channel.BOOK) -> int | None:
        """The connection whose book is authoritative, or None if none is valid. O(1)."""
        book = self._books.get((venue, symbol, channel))
        if book is None or not book.valid:
            return None
        return book.source

    def book_valid(self, venue: str, symbol: str, channel: Channel = Channel.BOOK) -> bool:
        """Whether the caller's merged view of the book is valid. O(1)."""
        book = self._books.get((venue, symbol, channel))
        return book is not None and book.valid

    def valid_sources(self, venue: str, symbol: str, channel: Channel = Channel.BOOK) -> list[int]:
        """The connections whose book of ``symbol`` is valid, sorted. O(connections)."""
        book = self._books.get((venue, symbol, channel))
        if book is None:
            return []
        return sorted(cid for cid, cb in book.conns.items() if cb.valid)

    def conn(self, conn_id: int) -> ConnStats:
        """Lead/lag statistics of a connection."""
        return self.dedup.conn(conn_id)

    def primary(self, now_ns: int) -> int | None:
        """The up connection that is ahead: lowest average lag among those that
        carried data within ``stall_after_s`` (all up ones if none did); ties:
        most first copies, then lowest id. None when no connection is up.
        O(connections)."""
        after_ns = int(self.stall_after_s * 1e9)
        up = [c for c in self.dedup.conns.values() if c.up]
        fresh = [c for c in up if now_ns - c.last_ns < after_ns] or up
        if not fresh:
            return None
        best = min(fresh, key=lambda c: (c.lag_ns, -c.firsts, c.conn_id))
        return best.conn_id

    def stalled(self, now_ns: int, after_s: float | None = None) -> list[int]:
        """Up connections silent for ``after_s`` (default ``stall_after_s``) while
        another connection carried market data within ``after_s``; sorted.
        O(connections)."""
        after_ns = int((self.stall_after_s if after_s is None else after_s) * 1e9)
        up = [c for c in self.dedup.conns.values() if c.up]
        if not any(now_ns - c.last_ns < after_ns for c in up):
            return []
        return sorted(c.conn_id for c in up if now_ns - c.last_ns >= after_ns)

    def take_changes(self) -> list[SourceChange]:
        """Return and clear the recorded source changes (oldest first)."""
        changes = self._changes
        self._changes = []
        return changes

    def forget(self, venue: str, symbol: str | None = None) -> None:
        """Drop all state of ``venue`` (and ``symbol``): after an unsubscribe."""
        for key in [k for k in self._books if k[0] == venue and (symbol is None or k[1] == symbol)]:
            del self._books[key]
        self.dedup.forget(venue, symbol)

    # --- internals --------------------------------------------------------------

    def _book(self, venue: str, symbol: str, channel: Channel) -> _Book:
        key = (venue, symbol, channel)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = _Book(venue not in self.connection_seq_venues)
        return book

    def _update(self, conn_id: int, event: BookUpdate | OrderUpdate) -> bool:
        dedup = self.dedup
        conn = dedup.conns.get(conn_id) or dedup.conn(conn_id)
        recv_ns = event.recv_ns
        conn.last_ns = recv_ns
        channel = _BOOK if type(event) is BookUpdate else _L3
        book = self._books.get((event.venue, event.symbol, channel)) or self._book(event.venue, event.symbol, channel)
        cb = book.conns.get(conn_id)
        if cb is None:
            cb = book.conns[conn_id] = _ConnBook()
        seq = event.seq
        cb.valid = True
        cb.seq = seq
        cb.last_ns = recv_ns
        stats = self.stats
        if not book.valid:
            stats.book_suppressed += 1
            return False
        if seq is not None and book.ordered:
            hwm = book.hwm
            if hwm is None or seq > hwm or (seq == hwm and conn_id == book.hwm_conn and recv_ns == book.hwm_ns):
                first_seq = event.first_seq
                if hwm is not None and first_seq is not None and first_seq > hwm + 1:
                    stats.jumps += 1
                book.hwm = seq
                book.hwm_ns = recv_ns
                book.hwm_conn = conn_id
                book.source = conn_id
                stats.book_passed += 1
                conn.firsts += 1
                conn.lag_ns -= conn.lag_ns * dedup.lag_alpha
                return True
            conn.duplicates += 1
            lag = recv_ns - book.hwm_ns
            conn.lag_ns += (lag - conn.lag_ns) * dedup.lag_alpha
            # exact only for a copy of the newest update (older copies give a lower bound)
            if seq == hwm and not conn.duplicates & _SAMPLE_MASK:
                conn.lag_hist.record(lag)
            stats.book_suppressed += 1
            return False
        if book.source == conn_id:
            stats.book_passed += 1
            conn.firsts += 1
            return True
        conn.duplicates += 1  # no lag sample: unordered copies cannot be matched
        stats.book_suppressed += 1
        return False

    def _snapshot(self, conn_id: int, event: BookSnapshot | L3Snapshot) -> bool:
        conn = self.dedup.conn(conn_id)
        recv_ns = event.recv_ns
        conn.last_ns = recv_ns
        channel = Channel.BOOK if type(event) is BookSnapshot else Channel.L3
        book = self._book(event.venue, event.symbol, channel)
        cb = book.conns.get(conn_id)
        if cb is None:
            cb = book.conns[conn_id] = _ConnBook()
        seq = event.seq
        cb.valid = True
        cb.seq = seq
        cb.last_ns = recv_ns
        ordered = seq is not None and book.ordered
        if not book.valid:
            book.valid = True
            book.pending_resynced = conn_id
        elif not (ordered and (book.hwm is None or seq > book.hwm)):  # type: ignore[operator]
            self.stats.book_suppressed += 1
            return False
        book.source = conn_id
        book.hwm = seq if ordered else None
        book.hwm_ns = recv_ns
        book.hwm_conn = conn_id
        self.stats.book_passed += 1
        return True

    def _status(self, conn_id: int, event: StatusEvent) -> bool:
        cls = type(event)
        if cls is Gap:
            gap: Gap = event  # type: ignore[assignment]
            if gap.channel in _BOOK_CHANNELS:
                if gap.symbol == "":
                    return self._venue_gap(conn_id, gap)
                return self._gap(conn_id, self._book(gap.venue, gap.symbol, gap.channel), gap)
        elif cls is Resynced:
            resynced: Resynced = event  # type: ignore[assignment]
            if resynced.channel in _BOOK_CHANNELS:
                return self._resynced(conn_id, resynced)
        elif cls is Connected:
            conn = self.dedup.conn(conn_id)
            conn.up = True
            conn.last_ns = event.recv_ns  # type: ignore[attr-defined]
        elif cls is Disconnected:
            self.dedup.conn(conn_id).up = False
        self.stats.status_passed += 1
        return True

    def _gap(self, conn_id: int, book: _Book, gap: Gap) -> bool:
        cb = book.conns.get(conn_id)
        if cb is None:
            cb = book.conns[conn_id] = _ConnBook()
        cb.valid = False
        stats = self.stats
        if not book.valid:
            stats.gaps_masked += 1
            return False
        if book.source != conn_id:
            stats.gaps_masked += 1
            return False
        new = self._best(book)
        if new is None:
            book.valid = False
            book.source = None
            book.hwm = None
            book.hwm_conn = -1
            book.pending_resynced = None
            stats.gaps_passed += 1
            return True
        book.source = new
        new_seq = book.conns[new].seq
        rebase = not book.ordered or new_seq is None
        self._changes.append(SourceChange(gap.venue, gap.symbol, gap.channel, conn_id, new, rebase, gap.recv_ns))
        stats.source_changes += 1
        stats.gaps_masked += 1
        return False

    def _venue_gap(self, conn_id: int, gap: Gap) -> bool:
        """A gap for every book of ``conn_id`` on ``gap.channel`` (symbol ``""``)."""
        passed = False
        for (venue, symbol, channel), book in self._books.items():
            if venue == gap.venue and channel is gap.channel and conn_id in book.conns:
                passed |= self._gap(conn_id, book, evolve(gap, symbol=symbol))
        return passed

    def _resynced(self, conn_id: int, event: Resynced) -> bool:
        book = self._book(event.venue, event.symbol, event.channel)
        cb = book.conns.get(conn_id)
        if cb is None:
            cb = book.conns[conn_id] = _ConnBook()
        cb.valid = True
        if event.seq is not None:
            cb.seq = event.seq
        if book.pending_resynced == conn_id:
            book.pending_resynced = None
            self.stats.resyncs_passed += 1
            return True
        self.stats.resyncs_suppressed += 1
        return False

    def _best(self, book: _Book) -> int | None:
        best: int | None = None
        best_key: tuple[float, int, int] | None = None
        for cid, cb in book.conns.items():
            if not cb.valid:
                continue
            seq = cb.seq if (book.ordered and cb.seq is not None) else float("-inf")
            key = (seq, cb.last_ns, -cid)
            if best_key is None or key > best_key:
                best, best_key = cid, key
        return best

    def _check(self) -> None:
        """Assert invariants (tests): a valid merged view has a valid source."""
        for book in self._books.values():
            if book.valid:
                assert book.source is not None
                assert book.source in book.conns
                assert book.conns[book.source].valid
            else:
                assert book.pending_resynced is None
