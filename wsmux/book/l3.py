"""L3 (order-by-order) book, for feeds that send individual orders.

Used for Coinbase Exchange ``full`` (``open``/``change``/``done`` by
``order_id``) and Bitfinex raw books (``prec="R0"``: ``[ORDER_ID, PRICE,
AMOUNT]``). The venue adapter maps its messages onto :meth:`L3Book.add`,
:meth:`L3Book.change`, :meth:`L3Book.remove` and :meth:`L3Book.snapshot`; the
book itself knows nothing about any venue.

Theory of operation
-------------------
* ``_orders`` maps each order id to an immutable :class:`L3Order`.
* Each side is a :class:`sortedcontainers.SortedDict` from price (ascending, on
  both sides) to a ``_Level``. A level holds its orders in an insertion-ordered
  ``dict`` (arrival/FIFO order, O(1) removal) and a running total of their sizes.
  The best bid is the last key of the bid ladder, the best ask the first key of
  the ask ladder.
* A level exists exactly while it holds at least one order: the last removal
  deletes it, so the aggregated (L2) view never shows an empty level.
* The running total uses Neumaier compensated summation. It is reset to the
  exact size when a level is left with one order, and re-summed exactly
  (``math.fsum``, O(k)) when a removal or size cut takes away more than what
  remains at the level, the one case where cancellation could expose rounding.
  So the aggregate equals the sum of its orders up to floating-point rounding
  of that sum (``_check`` allows a relative 1e-9), without drift over millions
  of changes.
* A size change keeps the order's queue position; moving an order to another
  price or side (:meth:`L3Book.upsert`) puts it at the back of the new level.

Bad input never raises by default: a duplicate ``add``, an unknown id or an
invalid number makes the method return ``False`` (the caller counts it) and
leaves the book unchanged. With ``strict=True`` the same cases raise a
:class:`~wsmux.errors.BookError` subclass: :class:`DuplicateOrder`,
:class:`UnknownOrder` or :class:`InvalidOrder`.

Costs use *L* for the number of price levels on the side concerned, *k* for
the number of orders at one price and *N* for the number of orders in the
book. Creating or deleting a level costs O(log L) (amortised, sortedcontainers);
the rest of add/change/remove is O(1) dict work, except the occasional exact
re-sum described above.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import NamedTuple, TypeAlias

from sortedcontainers import SortedDict

from wsmux.errors import BookError
from wsmux.model import BookSide, Level, Levels

__all__ = [
    "DuplicateOrder",
    "InvalidOrder",
    "L3Book",
    "L3Order",
    "OrderId",
    "UnknownOrder",
]

OrderId: TypeAlias = str | int
"""A venue order id: Coinbase uses UUID strings, Bitfinex integers."""

_INF = math.inf
_REL_TOL = 1e-9


class DuplicateOrder(BookError):
    """:meth:`L3Book.add` was given an id that is already in the book."""


class UnknownOrder(BookError):
    """:meth:`L3Book.change` or :meth:`L3Book.remove` was given an unknown id."""


class InvalidOrder(BookError):
    """A price or size is not a finite number, a size is not positive, or the
    side is not a :class:`~wsmux.model.BookSide`."""


class L3Order(NamedTuple):
    """One resting order (an immutable value)."""

    order_id: OrderId
    side: BookSide
    price: float
    size: float


class _Level:
    """The orders resting at one price, in arrival order, and their total."""

    __slots__ = ("comp", "orders", "price", "total")

    def __init__(self, price: float) -> None:
        self.price = price
        self.orders: dict[OrderId, L3Order] = {}
        self.total = 0.0  # running sum of sizes
        self.comp = 0.0  # Neumaier compensation: the true sum is total + comp

    def add_size(self, x: float) -> None:
        t = self.total + x
        if abs(self.total) >= abs(x):
            self.comp += (self.total - t) + x
        else:
            self.comp += (x - t) + self.total
        self.total = t

    def resum(self) -> None:
        self.total = math.fsum(o.size for o in self.orders.values())
        self.comp = 0.0

    def size(self) -> float:
        return self.total + self.comp


class L3Book:
    """A live order-by-order book for one symbol, with an aggregated L2 view.

    Args:
        venue: venue id (informational).
        symbol: unified symbol (informational).

    Attributes:
        valid: True while the sync machine vouches for the book (set by the
            caller, e.g. :class:`~wsmux.book.BookSync`; the book never sets it).
        seq: the venue sequence the book reflects, where there is one.
    """

    __slots__ = ("_asks", "_bids", "_orders", "seq", "symbol", "valid", "venue")

    def __init__(self, venue: str = "", symbol: str = "") -> None:
        self.venue = venue
        self.symbol = symbol
        self.valid = False
        self.seq: int | None = None
        self._orders: dict[OrderId, L3Order] = {}
        self._bids: SortedDict[float, _Level] = SortedDict()
        self._asks: SortedDict[float, _Level] = SortedDict()

    # --- writing -----------------------------------------------------------------

    def add(
        self,
        order_id: OrderId,
        side: BookSide,
        price: float,
        size: float,
        *,
        strict: bool = False,
    ) -> bool:
        """Add a new order at the back of its price level's queue.

        Cost: O(1), or O(log L) when the price opens a new level.

        Args:
            order_id: the venue's order id; must not be in the book.
            side: :attr:`BookSide.BID` or :attr:`BookSide.ASK`.
            price: a finite price.
            size: a finite size > 0.
            strict: raise instead of returning False.

        Returns:
            True if added; False (book unchanged) for a duplicate id or an
            invalid side, price or size.

        Raises:
            DuplicateOrder: ``strict`` and the id is already in the book.
            InvalidOrder: ``strict`` and the side, price or size is invalid.
        """
        if order_id in self._orders:
            if strict:
                raise DuplicateOrder(f"order {order_id!r} is already in the book")
            return False
        try:
            price = float(price)
            size = float(size)
        except (TypeError, ValueError):
            price = size = math.nan
        side_obj: object = side  # checked at run time: callers may pass anything
        if side_obj is BookSide.BID:
            ladder = self._bids
        elif side_obj is BookSide.ASK:
            ladder = self._asks
        else:
            return _invalid(strict, f"side {side!r} is not a BookSide")
        if not (0.0 < size < _INF and -_INF < price < _INF):
            return _invalid(strict, f"order {order_id!r}: price {price!r} size {size!r}")
        self._insert(ladder, L3Order(order_id, side, price, size))
        return True

    def change(self, order_id: OrderId, new_size: float, *, strict: bool = False) -> bool:
        """Set the remaining size of an order, keeping its queue position.

        A ``new_size`` of 0 removes the order (a resting order of size zero is
        not on any venue's book).

        Cost: O(1); O(log L) when a removal empties the level; O(k) when
        the cut exceeds the rest of the level's size (exact re-sum).

        Args:
            order_id: an id in the book.
            new_size: the new remaining size, finite and >= 0.
            strict: raise instead of returning False.

        Returns:
            True if applied; False (book unchanged) for an unknown id or an
            invalid size.

        Raises:
            UnknownOrder: ``strict`` and the id is not in the book.
            InvalidOrder: ``strict`` and ``new_size`` is negative or not finite.
        """
        old = self._orders.get(order_id)
        if old is None:
            if strict:
                raise UnknownOrder(f"order {order_id!r} is not in the book")
            return False
        try:
            new_size = float(new_size)
        except (TypeError, ValueError):
            new_size = math.nan
        if not (0.0 <= new_size < _INF):
            return _invalid(strict, f"order {order_id!r}: new size {new_size!r}")
        if new_size == 0.0:
            self._delete(old)
            return True
        new = old._replace(size=new_size)
        level = self._ladder(old.side)[old.price]
        level.orders[order_id] = new  # same key: keeps its FIFO position
        self._orders[order_id] = new
        if len(level.orders) == 1:
            level.total, level.comp = new_size, 0.0
        else:
            # Two exact terms: ``new_size - old.size`` would round before summing.
            level.add_size(-old.size)
            level.add_size(new_size)
            if old.size > level.total:
                level.resum()  # most of the level cancelled: re-sum exactly
        return True

    def remove(self, order_id: OrderId, *, strict: bool = False) -> bool:
        """Remove an order (filled or cancelled).

        Cost: O(1); O(log L) when the level becomes empty and is deleted;
        O(k) when the order was larger than the rest of its level (exact
        re-sum).

        Args:
            order_id: an id in the book.
            strict: raise instead of returning False.

        Returns:
            True if removed; False for an unknown id (normal on Coinbase
            ``full``: ``done`` arrives for orders that never rested).

        Raises:
            UnknownOrder: ``strict`` and the id is not in the book.
        """
        old = self._orders.get(order_id)
        if old is None:
            if strict:
                raise UnknownOrder(f"order {order_id!r} is not in the book")
            return False
        self._delete(old)
        return True

    def upsert(
        self,
        order_id: OrderId,
        side: BookSide,
        price: float,
        size: float,
        *,
        strict: bool = False,
    ) -> bool:
        """Add an order, or replace the order with that id (Bitfinex R0 rule).

        If the id is resting at the same side and price, only its size changes
        and it keeps its queue position; otherwise the old order is removed and
        the new one joins the back of its level's queue.

        Cost: as :meth:`change` for a size change at the same price, else as
        :meth:`remove` plus :meth:`add`.

        Returns:
            True if applied; False (book unchanged) for an invalid side, price
            or size.

        Raises:
            InvalidOrder: ``strict`` and the side, price or size is invalid.
        """
        old = self._orders.get(order_id)
        if old is None:
            return self.add(order_id, side, price, size, strict=strict)
        try:
            fprice = float(price)
            fsize = float(size)
        except (TypeError, ValueError):
            return _invalid(strict, f"order {order_id!r}: price {price!r} size {size!r}")
        side_obj: object = side  # checked at run time: callers may pass anything
        if side_obj is not BookSide.BID and side_obj is not BookSide.ASK:
            return _invalid(strict, f"side {side!r} is not a BookSide")
        if not (0.0 < fsize < _INF and -_INF < fprice < _INF):
            return _invalid(strict, f"order {order_id!r}: price {price!r} size {size!r}")
        if old.side is side and old.price == fprice:
            return self.change(order_id, fsize, strict=strict)
        self._delete(old)
        self._insert(self._ladder(side), L3Order(order_id, side, fprice, fsize))
        return True

    def clear(self) -> None:
        """Remove every order. O(1) (the old structures are dropped)."""
        self._orders = {}
        self._bids = SortedDict()
        self._asks = SortedDict()

    def snapshot(
        self,
        orders: Iterable[tuple[OrderId, BookSide, float, float]],
        *,
        strict: bool = False,
    ) -> int:
        """Replace the whole book with ``orders`` (``(id, side, price, size)``
        each, e.g. :class:`L3Order` values), in arrival order.

        The new book is built aside and swapped in at the end, so with
        ``strict=True`` a bad entry raises and leaves the previous book intact.

        Cost: O(N log L) for N orders.

        Returns:
            The number of entries rejected (duplicates or invalid values; 0
            for a clean snapshot). Rejected entries are skipped.

        Raises:
            DuplicateOrder: ``strict`` and an id appears twice.
            InvalidOrder: ``strict`` and an entry is invalid.
        """
        fresh = L3Book(self.venue, self.symbol)
        rejected = 0
        for order_id, side, price, size in orders:
            if not fresh.add(order_id, side, price, size, strict=strict):
                rejected += 1
        self._orders = fresh._orders
        self._bids = fresh._bids
        self._asks = fresh._asks
        return rejected

    # --- reading -----------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """``(price, total size)`` of the best bid, or None. O(1)."""
        if not self._bids:
            return None
        level: _Level = self._bids.peekitem(-1)[1]
        return (level.price, level.size())

    def best_ask(self) -> Level | None:
        """``(price, total size)`` of the best ask, or None. O(1)."""
        if not self._asks:
            return None
        level: _Level = self._asks.peekitem(0)[1]
        return (level.price, level.size())

    def crossed(self) -> bool:
        """True if both sides are present and best bid >= best ask. O(1)."""
        if not self._bids or not self._asks:
            return False
        bid: float = self._bids.peekitem(-1)[0]
        ask: float = self._asks.peekitem(0)[0]
        return bid >= ask

    def depth(self, n: int | None = None) -> tuple[Levels, Levels]:
        """The aggregated best ``n`` levels per side (all if None), best first.

        Returns:
            ``(bids, asks)``, each a tuple of ``(price, total size)``.

        Cost: O(n) (O(L) for all levels).
        """
        return tuple(self.levels(BookSide.BID, n)), tuple(self.levels(BookSide.ASK, n))

    def levels(self, side: BookSide, n: int | None = None) -> Iterator[Level]:
        """Iterate ``(price, total size)`` of one side, best first.

        Cost: O(1) per level yielded. The book must not change while iterating.
        """
        for level in self._iter_levels(side, n):
            yield (level.price, level.size())

    def level(self, side: BookSide, price: float) -> tuple[float, int] | None:
        """``(total size, order count)`` at ``price`` on ``side``, or None.

        Cost: O(1).
        """
        lvl: _Level | None = self._ladder(side).get(price)
        if lvl is None:
            return None
        return (lvl.size(), len(lvl.orders))

    def size_at(self, side: BookSide, price: float) -> float:
        """Total size at ``price`` on ``side`` (0.0 if no level). O(1)."""
        lvl: _Level | None = self._ladder(side).get(price)
        return 0.0 if lvl is None else lvl.size()

    def orders_at(self, price: float, side: BookSide) -> tuple[L3Order, ...]:
        """The orders resting at ``price`` on ``side`` in arrival (FIFO) order.

        Returns ``()`` when there is no such level. Cost: O(k).
        """
        lvl: _Level | None = self._ladder(side).get(price)
        if lvl is None:
            return ()
        return tuple(lvl.orders.values())

    def get(self, order_id: OrderId) -> L3Order | None:
        """The order with that id, or None. O(1)."""
        return self._orders.get(order_id)

    def level_count(self, side: BookSide) -> int:
        """Number of price levels on ``side``. O(1)."""
        return len(self._ladder(side))

    def __contains__(self, order_id: object) -> bool:
        """Whether an order id is in the book. O(1)."""
        return order_id in self._orders

    def __len__(self) -> int:
        """Number of orders in the book (both sides). O(1)."""
        return len(self._orders)

    def __repr__(self) -> str:
        state = "valid" if self.valid else "invalid"
        return (
            f"<L3Book {self.venue}:{self.symbol} {state} seq={self.seq} "
            f"orders={len(self._orders)} bid_levels={len(self._bids)} "
            f"ask_levels={len(self._asks)}>"
        )

    # --- internals -----------------------------------------------------------------

    def _ladder(self, side: BookSide) -> SortedDict[float, _Level]:
        return self._bids if side is BookSide.BID else self._asks

    def _iter_levels(self, side: BookSide, n: int | None) -> Iterator[_Level]:
        if side is BookSide.BID:
            ladder = self._bids
            keys: Iterator[float] = reversed(ladder)
        else:
            ladder = self._asks
            keys = iter(ladder)
        if n is not None:
            keys = islice(keys, max(n, 0))
        for price in keys:
            level: _Level = ladder[price]
            yield level

    def _insert(self, ladder: SortedDict[float, _Level], order: L3Order) -> None:
        level: _Level | None = ladder.get(order.price)
        if level is None:
            level = _Level(order.price)
            ladder[order.price] = level
        level.orders[order.order_id] = order
        level.add_size(order.size)
        self._orders[order.order_id] = order

    def _delete(self, order: L3Order) -> None:
        ladder = self._ladder(order.side)
        level: _Level = ladder[order.price]
        del level.orders[order.order_id]
        del self._orders[order.order_id]
        remaining = len(level.orders)
        if remaining == 0:
            del ladder[order.price]
        elif remaining == 1:
            last = next(iter(level.orders.values()))
            level.total, level.comp = last.size, 0.0
        else:
            level.add_size(-order.size)
            if order.size > level.total:
                level.resum()  # most of the level cancelled: re-sum exactly

    def _check(self) -> None:
        """Assert every internal invariant (for tests). Cost: O(N + L).

        * each ladder is sorted and every key equals its level's price;
        * no level is empty; every order in a level has that side and price
          and is the same value as in the id index;
        * every size is finite and > 0 and every level total equals the sum of
          its orders (relative tolerance 1e-9 for float rounding);
        * the ids across all levels are unique and are exactly the id index.
        """
        seen: set[OrderId] = set()
        for side, ladder in ((BookSide.BID, self._bids), (BookSide.ASK, self._asks)):
            prev: float | None = None
            for price, level in ladder.items():
                assert prev is None or prev < price, f"{side} ladder not sorted"
                prev = price
                assert isinstance(level, _Level)
                assert level.price == price, f"level key {price} != {level.price}"
                assert level.orders, f"empty {side} level at {price}"
                for order_id, order in level.orders.items():
                    assert order.order_id == order_id, f"order {order_id!r} keyed wrongly"
                    assert order.side is side, f"order {order_id!r} on wrong side"
                    assert order.price == price, f"order {order_id!r} at wrong price"
                    assert 0.0 < order.size < _INF, f"order {order_id!r} size {order.size}"
                    assert order_id not in seen, f"order id {order_id!r} twice"
                    seen.add(order_id)
                    assert self._orders.get(order_id) is order, f"index stale: {order_id!r}"
                exact = math.fsum(o.size for o in level.orders.values())
                agg = level.size()
                assert agg > 0.0, f"{side} level {price} total {agg}"
                assert abs(agg - exact) <= _REL_TOL * exact, (
                    f"{side} level {price}: total {agg} != sum of orders {exact}"
                )
        assert len(seen) == len(self._orders), "id index holds orders not in any level"


def _invalid(strict: bool, message: str) -> bool:
    if strict:
        raise InvalidOrder(message)
    return False
