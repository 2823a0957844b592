"""The shared plumbing of operators that read one venue's order book.

Theory of operation
-------------------
A :class:`BookFed` operator follows one (venue, symbol), bound by the first
event it reads (or by the live book it is given). It reads the book from one
of two sources:

* its own :class:`~wsmux.book.OrderBook`, rebuilt from the events: a
  ``BookSnapshot`` replaces it, a ``BookUpdate`` applies its level diffs
  (absolute sizes, 0 deletes). This works on any event source — a live
  stream, a replayed log, a list — at the cost of a second book (about
  1.5 µs per diff);
* a live :class:`~wsmux.BookView` (``mux.book(venue, symbol)``) or
  :class:`~wsmux.book.OrderBook` handed in as ``book=``: the multiplexer has
  already applied each update when the stream's callbacks run, so the
  operator only reads it (no second book).

A :class:`~wsmux.analytics.BookValidity` follows ``Gap``/``Resynced``/
``Stale``/``Disconnected`` and the book events; while it says the book is
unusable the operator computes nothing, emits one
:class:`~wsmux.analytics.Suspended` per episode and calls :meth:`BookFed._suspend`
(subclasses drop state that must not bridge the hole, e.g. the previous
top of book of an order-flow imbalance). A book update that the own book
rejects (a bad price or size) suspends it too, until the next snapshot.

Subclasses implement :meth:`BookFed._on_book` (called after each applied
book event while the book is usable) and may accept more event classes
(trades) through :meth:`BookFed._on_other`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wsmux.analytics._operator import NOTHING, AnalyticEvent, BookValidity, Operator, _instrument_check
from wsmux.book import OrderBook
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Disconnected,
    Event,
    Gap,
    Integrity,
    Levels,
    Resynced,
    Stale,
    Trade,
)

__all__ = ["BOOK_EVENTS", "BookFed", "BookSource", "event_time"]

BOOK_EVENTS: tuple[type[Event], ...] = (BookSnapshot, BookUpdate, Gap, Resynced, Stale, Disconnected)
"""What a book-fed operator reads: the book events and the status events
that make a book unusable or usable again."""


class BookSource(Protocol):
    """What an operator reads from a book: :class:`~wsmux.book.OrderBook`
    and :class:`~wsmux.BookView` both provide it."""

    @property
    def venue(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def valid(self) -> bool: ...

    @property
    def integrity(self) -> Integrity | None: ...

    def bbo(self) -> tuple[float, float, float, float]: ...

    def depth(self, n: int | None = None) -> tuple[Levels, Levels]: ...

    def size_at(self, side: BookSide, price: float) -> float: ...


def event_time(ts: int | None, recv_ns: int) -> int:
    """The time an operator files an event under: the venue's time, or the
    local receive time for venues that send none."""
    return recv_ns if ts is None else ts


class BookFed(Operator):
    """Base of the operators that read one venue's book (see the module docstring).

    Args:
        book: a live book to read (``mux.book(venue, symbol)``); ``None``
            (default) keeps an own book built from the events.
        max_age_ns: suspend when an input's venue time is more than this past
            the book's last update (for operators that also read trades).
    """

    accepts: tuple[type[Event], ...] = BOOK_EVENTS

    def __init__(self, *, book: BookSource | None = None, max_age_ns: int | None = None) -> None:
        self._validity = BookValidity(self.name, max_age_ns=max_age_ns)
        self._given = book
        self._own: OrderBook | None = None
        self._bound: tuple[str, str] | None = None
        self._broken = False
        if book is not None and book.venue:
            self._bind(book.venue, book.symbol)

    @property
    def book(self) -> BookSource | None:
        """The book the operator reads (``None`` before the first event of an own book)."""
        return self._given if self._given is not None else self._own

    @property
    def suspended(self) -> bool:
        """True while the book is unusable (see :attr:`reason`)."""
        return not self._validity.valid

    @property
    def reason(self) -> str:
        """Why the operator is suspended (``""`` while it computes)."""
        return self._validity.reason

    def _bind(self, venue: str, symbol: str) -> None:
        self._bound = (venue, symbol)
        self._validity.venue = venue
        self._validity.symbol = symbol
        if self._given is None:
            self._own = OrderBook(venue, symbol)

    def _check_instrument(self, ev: BookUpdate | BookSnapshot | Trade) -> None:
        """Bind to the first instrument seen; another one is a ConfigError."""
        bound = self._bound
        if bound is None:
            self._bind(ev.venue, ev.symbol)
        elif ev.venue != bound[0] or ev.symbol != bound[1]:
            _instrument_check(bound, ev, self.name)

    def reset(self) -> None:
        """Forget the book and the validity state (subclasses extend it to
        their own state)."""
        self._validity.reset()
        if self._own is not None:
            self._own.clear()
        self._broken = False

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        cls = type(event)
        if cls is BookUpdate or cls is BookSnapshot:
            return self._book_event(event)  # type: ignore[arg-type]
        if cls in _STATUS:
            change = self._validity.observe(event)
            if self._validity.valid:
                return NOTHING if change is None else (change,)
            return _join(self._suspend(), change)
        return self._on_other(event)

    def _book_event(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        self._check_instrument(ev)
        own = self._own
        if own is not None:
            if type(ev) is BookSnapshot:
                self._broken = not own.apply_snapshot(ev.bids, ev.asks)
            elif not self._broken:
                self._broken = not own.apply_update(ev.bids, ev.asks)
            if self._broken:
                # a level the book refused: unusable until the next snapshot
                return _join(self._suspend(), self._validity._invalidate("bad book data", ev.ts, ev.recv_ns))
        validity = self._validity
        change = validity.observe(ev)
        if not validity.valid or (self._given is not None and not self._given.valid):
            return _join(self._suspend(), validity.require(ev.ts, ev.recv_ns))
        result = self._on_book(ev)
        if change is None:
            return result
        return (change, *result)

    def _require_book(self, ts: int | None, recv_ns: int) -> Sequence[AnalyticEvent] | None:
        """For a non-book input (a trade) that needs the book now: ``None``
        if the book is usable, else the outputs to return instead (the
        Suspended, the first time in an episode)."""
        out = self._validity.require(ts, recv_ns)
        if out is None and self._validity.valid:
            return None
        return _join(self._suspend(), out)

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        """The book changed (and is usable): return the outputs."""
        raise NotImplementedError

    def _on_other(self, ev: Event) -> Sequence[AnalyticEvent]:
        """An accepted event that is neither a book event nor a status event."""
        return NOTHING

    def _suspend(self) -> Sequence[AnalyticEvent]:
        """The book is unusable (called on every input while it is): drop
        what must not bridge the hole; return outputs to flush (a partial
        window), emitted before the Suspended."""
        return NOTHING


def _join(first: Sequence[AnalyticEvent], last: AnalyticEvent | None) -> Sequence[AnalyticEvent]:
    if last is None:
        return first
    return (*first, last) if first else (last,)


_STATUS = frozenset({Gap, Resynced, Stale, Disconnected})
