"""Books of venues that push a complete top-of-book snapshot in every message.

Some venues (Hyperliquid ``l2Book``, Bithumb ``orderbook``) never send diffs:
each message is the whole (venue-capped) book. Delivering each as a
:class:`~wsmux.BookSnapshot` would re-sync the book, and announce a
:class:`~wsmux.Resynced`, several times a second. :class:`SnapshotDiffer`
instead remembers, per connection, the levels it last handed over for each
book and turns every later snapshot into a :class:`~wsmux.book.Diff` against
them: levels that left the snapshot are deleted (size ``"0"``/``0``), new or
changed levels are set. Applied in order, the diffs leave the client's book
equal to the venue's last snapshot, level by level.

Rules the adapters rely on:

* The first snapshot of a book, and the first after :meth:`SnapshotDiffer.forget`
  (the adapter's ``reset`` and ``resync_messages``), is delivered as a
  ``BookSnapshot``, so a book invalidated for any reason is rebuilt from the
  next message.
* Within a side, deletes come before sets, so a venue that spells one price
  two ways (``"100"`` then ``"100.0"``) never deletes the level it just set.
* Nothing is converted on the diff path: the venue's decoded values go to the
  book sync, which converts and checks them in one pass.
"""

from __future__ import annotations

from typing import Any

from wsmux.book import Diff
from wsmux.model import BookSnapshot

__all__ = ["SnapshotDiffer"]

_Side = dict[Any, Any]  # venue price value -> venue size value


class SnapshotDiffer:
    """Per-connection memory of the last snapshot of each book (see the module docstring).

    Args:
        venue: the venue id written into the ``BookSnapshot`` events.
        zero: the venue's "deleted" size (``"0"`` for text venues, ``0`` for numbers).
    """

    __slots__ = ("_last", "venue", "zero")

    def __init__(self, venue: str, zero: Any = "0") -> None:
        self.venue = venue
        self.zero = zero
        self._last: dict[str, tuple[_Side, _Side]] = {}

    def forget(self, symbol: str | None = None) -> None:
        """Forget ``symbol``'s last snapshot (``None``: every book): its next
        snapshot is delivered whole."""
        if symbol is None:
            self._last.clear()
        else:
            self._last.pop(symbol, None)

    def update(
        self,
        symbol: str,
        bids: dict[Any, Any],
        asks: dict[Any, Any],
        ts: int | None,
        recv_ns: int,
        seq: int | None = None,
    ) -> BookSnapshot | Diff | None:
        """The event that brings the client's book to the snapshot ``bids``/``asks``
        (dicts price → size, best first, as the venue wrote them; kept, not
        copied): a ``BookSnapshot`` the first time, then a ``Diff`` (``None``
        when nothing changed).

        Raises:
            ValueError, TypeError: a level of a first snapshot is not a number
                (the adapter reports it as a malformed message; nothing is kept).
        """
        last = self._last.get(symbol)
        if last is None:
            snapshot = BookSnapshot(
                self.venue,
                symbol,
                tuple([(float(p), float(s)) for p, s in bids.items()]),
                tuple([(float(p), float(s)) for p, s in asks.items()]),
                ts,
                recv_ns,
                seq,
            )
            self._last[symbol] = (bids, asks)
            return snapshot
        old_bids, old_asks = last
        bid_changes = () if old_bids == bids else self._changes(old_bids, bids)
        ask_changes = () if old_asks == asks else self._changes(old_asks, asks)
        self._last[symbol] = (bids, asks)
        if not bid_changes and not ask_changes:
            return None
        return Diff(symbol, bid_changes, ask_changes, ts, seq)

    def _changes(self, old: _Side, new: _Side) -> list[tuple[Any, Any]]:
        """Deletes first (levels gone from ``new``), then new or changed levels.
        (List comprehensions: about twice as fast as set operations on the
        dict views for books of 15-20 levels.)"""
        zero = self.zero
        changes = [(price, zero) for price in old if price not in new]
        get = old.get
        changes.extend([(price, size) for price, size in new.items() if get(price) != size])
        return changes
