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
                        synced book) + Resynced delivered
        Gap (adapter-detected, e.g. a connection sequence) -> books invalidated
        OrderUpdate  -> L3Sync.on_update (same verdicts as BookSync; only
                        updates that changed the L3 book are delivered)
        L3Snapshot   -> L3Sync.on_snapshot -> SYNCED: L3Snapshot, the replayed
                        buffered updates, Resynced(channel=L3) delivered
        anything else -> delivered

Order-by-order (L3) books are kept beside the L2 ones (:meth:`Feed.add_l3`),
keyed by symbol, with their own REST snapshot (``FetchSnapshot.channel`` is
``Channel.L3``; see :mod:`wsmux.book._l3sync`).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from wsmux.adapter import Adapter, HttpRequest, Outgoing
from wsmux.book import BookSync, OrderBook, Verdict
from wsmux.book._l3sync import L3Sync
from wsmux.book.l3 import L3Book
from wsmux.errors import RemoteError, WsmuxError
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    L3Snapshot,
    OrderUpdate,
    Resynced,
)
from wsmux.subscriptions import Subscription

__all__ = ["FetchSnapshot", "Feed", "FeedStats", "Send"]


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


Action = Send | FetchSnapshot


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
        self.actions: list[Action] = []
        self.stats = FeedStats()
        self._fetching: set[str] = set()
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
        self.l3_syncs: dict[str, L3Sync] = {}
        self.l3_subs: dict[str, Subscription] = {}
        self._l3_fetching: set[str] = set()

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

    def remove_book(self, symbol: str) -> None:
        """Stop keeping the book of ``symbol``."""
        sync = self.syncs.pop(symbol, None)
        self.book_subs.pop(symbol, None)
        self._fetching.discard(symbol)
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
        if sync is not None:
            sync.invalidate()

    # --- input ----------------------------------------------------------------

    def on_frame(self, frame: bytes | str, recv_ns: int) -> None:
        """Process one received frame."""
        stats = self.stats
        stats.frames += 1
        stats.bytes += len(frame)
        try:
            events = self.adapter.parse(frame, recv_ns)
        except Exception as exc:  # WsmuxError, or an adapter bug: never kills the multiplexer
            self._parse_error(exc, recv_ns)
            self._consecutive_errors += 1
            if self._consecutive_errors == self.max_consecutive_errors:
                self._poisoned(recv_ns)
            return
        self._consecutive_errors = 0
        sink = self.sink
        syncs = self.syncs
        for event in events:
            cls = type(event)
            if cls is BookUpdate:
                sync = syncs.get(event.symbol)  # type: ignore[attr-defined]
                if sync is None:
                    sync = self._auto_book(event.symbol, recv_ns)  # type: ignore[attr-defined]
                    if sync is None:
                        stats.unknown_book += 1
                        continue
                verdict = sync.on_update(event)  # type: ignore[arg-type]
                if verdict is Verdict.APPLIED:
                    stats.events += 1
                    sink(event)
                elif verdict is Verdict.BUFFERED:
                    self._want_snapshot(event.symbol)  # type: ignore[attr-defined]
                elif verdict.broken:
                    self._broken(event.symbol, sync, verdict, recv_ns)  # type: ignore[attr-defined]
            elif cls is BookSnapshot:
                self._snapshot(event, recv_ns)  # type: ignore[arg-type]
            elif cls is Gap:
                self._venue_gap(event, recv_ns)  # type: ignore[arg-type]
            elif cls is OrderUpdate:
                self._l3_update(event, recv_ns)  # type: ignore[arg-type]
            elif cls is L3Snapshot:
                self._l3_snapshot(event, recv_ns)  # type: ignore[arg-type]
            else:
                stats.events += 1
                sink(event)

    def on_snapshot_body(self, symbol: str, body: bytes, recv_ns: int, channel: Channel | None = None) -> None:
        """Feed the body of a REST snapshot fetched for ``symbol``.

        ``channel`` is :attr:`FetchSnapshot.channel`; when omitted, an L3
        fetch outstanding for ``symbol`` (and no L2 one) routes the body to
        the L3 book.
        """
        if channel is Channel.L3 or (channel is None and symbol in self._l3_fetching and symbol not in self._fetching):
            self._l3_snapshot_body(symbol, body, recv_ns)
            return
        self._fetching.discard(symbol)
        if symbol not in self.syncs:
            return
        try:
            snapshot = self.adapter.parse_snapshot(symbol, body, recv_ns)
        except Exception as exc:
            self.on_snapshot_error(symbol, exc, recv_ns)
            return
        self._snapshot(snapshot, recv_ns)

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

    def on_disconnect(self, recv_ns: int) -> None:
        """The connection is gone: every valid book is now unverifiable."""
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
        self._l3_fetching.clear()
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
        if isinstance(exc, RemoteError) and not isinstance(exc, ValueError):
            kind = ErrorKind.VENUE_ERROR
        elif isinstance(exc, WsmuxError):
            kind = ErrorKind.MALFORMED
        else:
            kind = ErrorKind.MALFORMED
        self.sink(Error(self.venue, None, kind, f"{type(exc).__name__}: {exc}", recv_ns))

    def _want_snapshot(self, symbol: str) -> None:
        if symbol in self._fetching:
            return
        request = self.adapter.snapshot_request(symbol, self.book_subs[symbol].depth)
        if request is not None:
            self._fetching.add(symbol)
            self.actions.append(FetchSnapshot(symbol, request))

    def _snapshot(self, snapshot: BookSnapshot, recv_ns: int) -> None:
        symbol = snapshot.symbol
        sync = self.syncs.get(symbol) or self._auto_book(symbol, recv_ns)
        if sync is None:
            self.stats.unknown_book += 1
            return
        verdict = sync.on_snapshot(snapshot)
        if verdict is Verdict.SYNCED:
            book = sync.book
            bids, asks = book.depth()
            self.stats.resyncs += 1
            self.stats.events += 2
            checksum = sync.rule.checksum(book) if sync.rule.checksum is not None else None  # verified by the sync
            self.sink(BookSnapshot(self.venue, symbol, bids, asks, book.ts, recv_ns, book.seq, checksum))
            self.sink(Resynced(self.venue, symbol, Channel.BOOK, book.seq, recv_ns))
        elif verdict is Verdict.REFETCH:
            self._want_snapshot(symbol)
        elif verdict.broken:
            self._broken(symbol, sync, verdict, recv_ns)

    def _broken(
        self, symbol: str, sync: BookSync | L3Sync, verdict: Verdict, recv_ns: int, channel: Channel = Channel.BOOK
    ) -> None:
        """Report a broken verdict as a Gap (the sync already invalidated the
        book) and start the venue's resync for that book."""
        self.stats.gaps += 1
        self.sink(
            Gap(self.venue, symbol, channel, verdict.gap_reason, sync.expected, sync.received, recv_ns, sync.detail)
        )
        if channel is Channel.L3:
            self._l3_resync(symbol)
        else:
            self._resync(symbol)

    def _resync(self, symbol: str) -> None:
        if self.adapter.snapshot_request(symbol, self.book_subs[symbol].depth) is not None:
            # REST venue: the next buffered update triggers the fetch, which
            # guarantees the snapshot is taken after buffering began.
            return
        self.actions.append(Send(tuple(self.adapter.resync_messages(self.book_subs[symbol]))))

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
                self.sink(attrs.evolve(gap, symbol=symbol))
                self._l3_resync(symbol)
        elif gap.channel is Channel.BOOK:
            targets = list(self.syncs) if gap.symbol == "" else [gap.symbol]
            for symbol in targets:
                sync = self.syncs.get(symbol)
                if sync is None:
                    continue
                sync.invalidate()
                self.stats.gaps += 1
                self.sink(attrs.evolve(gap, symbol=symbol))
                self._resync(symbol)
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

    def _l3_resync(self, symbol: str) -> None:
        l3sync = self.l3_syncs[symbol]
        if l3sync.rest:
            # The next buffered update asks for the snapshot; a gap keeps the
            # update that revealed it buffered, so ask now.
            if l3sync.buffered:
                self._want_l3_snapshot(symbol)
            return
        self.actions.append(Send(tuple(self.adapter.resync_messages(self.l3_subs[symbol]))))
