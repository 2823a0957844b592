"""L3Sync: keeps one order-by-order :class:`~wsmux.book.l3.L3Book` in step with a venue.

Theory of operation
-------------------
The L3 counterpart of :class:`~wsmux.book.BookSync`, for feeds that send one
message per order event (Coinbase Exchange ``full``; Bitfinex raw books). It
has the same two states:

The venue's rule is a :class:`~wsmux.book.SyncRule` (``Adapter.l3_rule``),
of which L3 uses ``snapshot``, ``continuity``, ``check_crossed`` and
``max_buffer``.

``WAITING`` (the book is invalid)
    REST-snapshot venues (``SnapshotSource.REST``: Coinbase, whose level-3
    book comes from ``GET /products/<id>/book?level=3``) buffer every
    :class:`~wsmux.OrderUpdate` (bounded by ``max_buffer``; the oldest are
    dropped and counted) until the snapshot arrives. Stream-snapshot venues
    ignore updates until the venue's own :class:`~wsmux.L3Snapshot` comes.

``SYNCED`` (the book is valid)
    With ``Continuity.UPDATE_ID`` or ``SEQUENCE``, updates with a sequence
    number are checked before they are applied. An update covers the sequence
    range ``[first_seq, seq]`` (``first_seq`` defaults to ``seq``): venues
    such as Coinbase number messages that do not touch the book
    (``received``) and the adapter folds those numbers into the next
    book-changing update. So ``seq <= last`` is stale (dropped) and
    ``first_seq > last + 1`` is a gap. ``MONOTONIC`` only drops stale
    updates; ``NONE`` ignores ``seq`` (e.g. a connection-wide sequence that
    the adapter checks itself). After a REST snapshot with sequence
    ``S`` the buffered updates with ``seq <= S`` are dropped and the first
    kept one must cover ``S + 1``; if it starts later the snapshot is older
    than the buffered stream and the verdict is ``REFETCH`` (not a gap).

Applying an update:

* ``ADD`` adds the order (an id already in the book is replaced: the venue's
  latest word wins; counted as a conflict).
* ``CHANGE`` sets the remaining size (and moves the order when the price or
  side differs); an unknown id is a no-op (Coinbase sends ``change`` for
  orders that never rested).
* ``REMOVE`` removes the order; an unknown id is a no-op (Coinbase ``done``
  for orders that never rested).
* ``FILL`` lowers the resting order's size by the traded size, removing it
  at zero. A fill against an order the book does not hold, or larger than
  what rests, proves the book wrong: ``BAD_DATA``. The update delivered to
  the caller is rewritten to the absolute ``CHANGE`` (or ``REMOVE``) that was
  applied, so callers only ever see ``ADD``/``CHANGE``/``REMOVE``.

Only updates that changed the book are delivered; no-ops are counted. After
each applied update the book must not be crossed (``check_crossed``).

Any broken rule invalidates the book *before* the verdict is returned (orders
cleared, ``book.valid`` False). On a sequence gap (or a failed bridge) the
update that revealed it starts the new buffer, because it is the first of an
unbroken run, so the caller can request the next snapshot at once
(:attr:`L3Sync.buffered`).

The machine is sans-I/O: it never fetches, sleeps or reads a clock.

Costs: an update costs what the :class:`L3Book` operation costs (O(1), or
O(log L) when a level opens or closes); a snapshot O(N log L) for N orders
plus the replay of the buffer.
"""

from __future__ import annotations

from collections import deque

import attrs

from wsmux.book._sync import Continuity, SnapshotSource, SyncRule, SyncState, Verdict
from wsmux.book.l3 import L3Book
from wsmux.model import L3Snapshot, OrderAction, OrderUpdate, evolve

__all__ = ["L3Sync", "L3SyncStats"]

_ADD = OrderAction.ADD
_CHANGE = OrderAction.CHANGE
_REMOVE = OrderAction.REMOVE
_FILL = OrderAction.FILL
_FILL_DECIMALS = 10
"""Remaining sizes after a fill are rounded to this many decimals: venue sizes
have at most 8, and the rounding removes the float residue of a subtraction
(``0.3 - 0.1``) so the result equals the venue's own text of the size."""


@attrs.define(slots=True)
class L3SyncStats:
    """Counters of one :class:`L3Sync` (cumulative)."""

    applied: int = 0
    noops: int = 0
    conflicts: int = 0
    buffered: int = 0
    buffer_overflow: int = 0
    ignored: int = 0
    stale: int = 0
    snapshots: int = 0
    refetches: int = 0
    gaps: int = 0
    crossed: int = 0
    bad_data: int = 0


class L3Sync:
    """The sync state machine for one L3 book. See the module docstring.

    Args:
        book: the book to maintain.
        rule: the venue's L3 rule (snapshot source, continuity,
            ``check_crossed``, ``max_buffer``; the other fields are unused).
    """

    __slots__ = (
        "_bridging",
        "_buffer",
        "book",
        "check_crossed",
        "detail",
        "expected",
        "last",
        "max_buffer",
        "received",
        "rest",
        "rule",
        "sequenced",
        "state",
        "stats",
        "strict_seq",
    )

    def __init__(self, book: L3Book, rule: SyncRule) -> None:
        self.book = book
        self.rule = rule
        self.rest = rule.snapshot is SnapshotSource.REST
        self.check_crossed = rule.check_crossed
        self.max_buffer = rule.max_buffer
        self.sequenced = rule.continuity is not Continuity.NONE
        self.strict_seq = rule.continuity in (Continuity.UPDATE_ID, Continuity.SEQUENCE)
        self.state = SyncState.WAITING
        self.last: int | None = None
        self.stats = L3SyncStats()
        self._buffer: deque[OrderUpdate] = deque()
        self._bridging = False
        self.expected: int | None = None
        self.received: int | None = None
        self.detail = ""

    # --- public --------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """True when the book is in sync."""
        return self.state is SyncState.SYNCED

    @property
    def buffered(self) -> int:
        """Number of updates waiting for a snapshot."""
        return len(self._buffer)

    def invalidate(self) -> None:
        """Mark the book invalid, clear it and the buffer. O(1)."""
        self.state = SyncState.WAITING
        self.book.valid = False
        self.book.clear()
        self.book.seq = None
        self.last = None
        self._buffer.clear()
        self._bridging = False

    def on_update(self, update: OrderUpdate) -> tuple[Verdict, OrderUpdate | None]:
        """Offer one update.

        Returns:
            ``(verdict, event)``: ``event`` is the update to deliver (rewritten
            for fills) when the verdict is APPLIED and the book changed, else
            None. Broken verdicts have already invalidated the book.
        """
        if self.state is SyncState.WAITING:
            if self.rest:
                self._buffer_one(update)
                return Verdict.BUFFERED, None
            self.stats.ignored += 1
            return Verdict.IGNORED, None
        verdict, event = self._check_and_apply(update)
        if verdict is Verdict.STALE:
            self.stats.stale += 1
        elif verdict is not Verdict.APPLIED:
            self._fail(verdict, update)
        return verdict, event

    def on_snapshot(self, snapshot: L3Snapshot) -> tuple[Verdict, list[OrderUpdate]]:
        """Offer a snapshot (REST response or stream snapshot).

        Returns:
            ``(verdict, replayed)``: SYNCED with the buffered updates that were
            applied after the snapshot (to deliver after it, in order),
            REFETCH when a REST snapshot is older than the buffered updates,
            or a broken verdict.
        """
        self.stats.snapshots += 1
        seq = snapshot.seq
        buf = self._buffer
        if self.rest and seq is not None and self.sequenced:
            while buf and (buf[0].seq is None or buf[0].seq <= seq):
                buf.popleft()
                self.stats.stale += 1
            if buf and self.strict_seq:
                head = buf[0]
                first = head.first_seq if head.first_seq is not None else head.seq
                if first is not None and first > seq + 1:
                    self.stats.refetches += 1
                    self.expected, self.received = seq + 1, first
                    self.detail = f"snapshot sequence {seq} is older than the first buffered update {first}"
                    return Verdict.REFETCH, []
        book = self.book
        rejected = book.snapshot(snapshot.orders)
        book.seq = seq
        self.last = seq if self.sequenced else None
        self.state = SyncState.SYNCED
        book.valid = True
        if rejected:
            self.expected = self.received = seq
            self.detail = f"snapshot has {rejected} invalid or duplicate orders"
            return self._fail(Verdict.BAD_DATA, None), []
        if self.check_crossed and book.crossed():
            self.expected = self.received = None
            self.detail = f"crossed snapshot: bid {book.best_bid()} >= ask {book.best_ask()}"
            return self._fail(Verdict.CROSSED, None), []
        self._bridging = self.rest and seq is not None and self.strict_seq
        replayed: list[OrderUpdate] = []
        while buf:
            update = buf.popleft()
            verdict, event = self._check_and_apply(update)
            if verdict is Verdict.STALE:
                self.stats.stale += 1
            elif verdict is not Verdict.APPLIED:
                return self._fail(verdict, update), []
            elif event is not None:
                replayed.append(event)
        return Verdict.SYNCED, replayed

    # --- internals -------------------------------------------------------------------

    def _buffer_one(self, update: OrderUpdate) -> None:
        buf = self._buffer
        if len(buf) >= self.max_buffer:
            buf.popleft()
            self.stats.buffer_overflow += 1
        buf.append(update)
        self.stats.buffered += 1

    def _fail(self, verdict: Verdict, update: OrderUpdate | None) -> Verdict:
        stats = self.stats
        if verdict is Verdict.CROSSED:
            stats.crossed += 1
        elif verdict is Verdict.BAD_DATA:
            stats.bad_data += 1
        else:
            stats.gaps += 1
        rest_of_buffer = list(self._buffer)
        self.invalidate()
        if self.rest and update is not None and verdict in (Verdict.GAP, Verdict.BRIDGE):
            # The update that revealed the gap is the first of an unbroken run
            # (the adapter restarted its run there): keep it and what follows.
            self._buffer_one(update)
            for later in rest_of_buffer:
                self._buffer_one(later)
        return verdict

    def _check_and_apply(self, update: OrderUpdate) -> tuple[Verdict, OrderUpdate | None]:
        seq = update.seq if self.sequenced else None
        last = self.last
        if last is not None and seq is not None:
            if seq <= last:
                return Verdict.STALE, None
            first = update.first_seq if update.first_seq is not None else seq
            if first > last + 1 and self.strict_seq:
                self.expected, self.received = last + 1, first
                if self._bridging:
                    self.detail = f"first update [{first}, {seq}] does not bridge snapshot {last}"
                    return Verdict.BRIDGE, None
                self.detail = f"update [{first}, {seq}] after {last}"
                return Verdict.GAP, None
        self._bridging = False
        book = self.book
        action = update.action
        event: OrderUpdate | None = update
        oid = update.order_id
        if action is _REMOVE:
            if not book.remove(oid):
                event = None
        elif action is _FILL:
            old = book.get(oid)
            if old is None:
                self.expected = self.received = seq
                self.detail = f"fill of {update.size} against order {oid!r}, which the book does not hold"
                return Verdict.BAD_DATA, None
            remaining = round(old.size - update.size, _FILL_DECIMALS)
            if remaining < 0.0:
                self.expected = self.received = seq
                self.detail = f"fill of {update.size} exceeds order {oid!r} size {old.size}"
                return Verdict.BAD_DATA, None
            book.change(oid, remaining)
            event = evolve(
                update,
                action=_CHANGE if remaining > 0.0 else _REMOVE,
                side=old.side,
                price=old.price,
                size=remaining,
            )
        elif action is _ADD:
            if oid in book:
                self.stats.conflicts += 1
                ok = book.upsert(oid, update.side, update.price, update.size)
            else:
                ok = book.add(oid, update.side, update.price, update.size)
            if not ok:
                self.expected = self.received = seq
                self.detail = f"bad order: {oid!r} {update.side} {update.price} x {update.size}"
                return Verdict.BAD_DATA, None
        else:  # CHANGE
            old = book.get(oid)
            if old is None:
                event = None
            elif update.size == 0.0:
                book.remove(oid)
            else:
                if old.side is update.side and old.price == update.price:
                    ok = book.change(oid, update.size)
                else:
                    ok = book.upsert(oid, update.side, update.price, update.size)
                if not ok:
                    self.expected = self.received = seq
                    self.detail = f"bad change: {oid!r} {update.side} {update.price} x {update.size}"
                    return Verdict.BAD_DATA, None
        if event is None:
            self.stats.noops += 1
        else:
            if self.check_crossed and book.crossed():
                self.expected = self.received = None
                self.detail = f"crossed book: bid {book.best_bid()} >= ask {book.best_ask()}"
                return Verdict.CROSSED, None
            self.stats.applied += 1
        if seq is not None:
            self.last = seq
            book.seq = seq
        return Verdict.APPLIED, event
