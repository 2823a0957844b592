"""L2 order book: two sorted sides of price levels.

Theory of operation: each side is a :class:`sortedcontainers.SortedDict` from a
sort key to the level's size. Asks are keyed by price, bids by *negated*
price, so that on both sides index 0 is the best level and ``peekitem(0)`` is
O(1)-ish. Prices are floats: the same decimal text always parses to the same
float, so ``"0.3513"`` and ``"0.35130000"`` are one level.

Where a venue sends a checksum, the book also keeps the venue's text of each
level (``keep_text=True``), because checksums are defined over that text.

The book itself never decides whether it is in sync: :class:`~wsmux.book.BookSync`
does, and sets :attr:`OrderBook.valid`. A reader must check ``valid`` (or
``state``): an invalid book is visibly flagged, never silently wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from sortedcontainers import SortedDict

from wsmux.model import BookSide, Level, Levels, TextLevels

__all__ = ["OrderBook"]

_NAN = math.nan


class OrderBook:
    """A live L2 book for one symbol.

    Args:
        venue: venue id (informational).
        symbol: unified symbol (informational).
        max_depth: keep at most this many levels per side (trimming the worst),
            ``None`` for unbounded.
        keep_text: also keep the venue's text of every level (for checksums).

    Costs below use *n* for the number of levels on a side and *k* for the
    number of levels in an update.
    """

    __slots__ = (
        "_asks",
        "_asks_text",
        "_bids",
        "_bids_text",
        "keep_text",
        "max_depth",
        "seq",
        "symbol",
        "ts",
        "valid",
        "venue",
    )

    def __init__(
        self,
        venue: str = "",
        symbol: str = "",
        *,
        max_depth: int | None = None,
        keep_text: bool = False,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.max_depth = max_depth
        self.keep_text = keep_text
        self._bids: SortedDict = SortedDict()  # -price -> size
        self._asks: SortedDict = SortedDict()  # price -> size
        self._bids_text: dict[float, tuple[str, str]] = {}
        self._asks_text: dict[float, tuple[str, str]] = {}
        self.valid = False
        """True while the sync machine vouches for the book."""
        self.seq: int | None = None
        """The venue update id/sequence the book reflects, where there is one."""
        self.ts: int | None = None
        """Venue timestamp (ns) of the last applied snapshot/update."""

    # --- mutation (used by BookSync) ------------------------------------------

    def clear(self) -> None:
        """Remove every level. O(n)."""
        self._bids.clear()
        self._asks.clear()
        self._bids_text.clear()
        self._asks_text.clear()

    def apply_snapshot(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        bids_text: TextLevels | None = None,
        asks_text: TextLevels | None = None,
    ) -> bool:
        """Replace the book with a snapshot. O((n) log n).

        Returns:
            False if a level had a negative or NaN size or a non-positive price
            (the book is then left cleared).
        """
        self.clear()
        ok = self.apply_update(bids, asks, bids_text, asks_text)
        if not ok:
            self.clear()
        return ok

    def apply_update(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        bids_text: TextLevels | None = None,
        asks_text: TextLevels | None = None,
    ) -> bool:
        """Apply absolute level sizes; size ``0.0`` deletes (deleting an absent
        level is not an error). O(k log n).

        Returns:
            False if any level was invalid (negative/NaN size, price <= 0 or
            NaN); the valid levels of the update are still applied, so the
            caller must treat the book as broken.
        """
        ok = True
        side = self._bids
        for price, size in bids:
            if size > 0.0 and price > 0.0:
                side[-price] = size
            elif size == 0.0 and price > 0.0:
                side.pop(-price, None)
            else:
                ok = False
        side = self._asks
        for price, size in asks:
            if size > 0.0 and price > 0.0:
                side[price] = size
            elif size == 0.0 and price > 0.0:
                side.pop(price, None)
            else:
                ok = False
        if self.keep_text:
            self._apply_text(self._bids_text, bids_text)
            self._apply_text(self._asks_text, asks_text)
        if self.max_depth is not None:
            self._trim(self.max_depth)
        return ok

    @staticmethod
    def _apply_text(store: dict[float, tuple[str, str]], levels: TextLevels | None) -> None:
        if not levels:
            return
        for ptext, stext in levels:
            price = float(ptext)
            if float(stext) == 0.0:
                store.pop(price, None)
            else:
                store[price] = (ptext, stext)

    def _trim(self, depth: int) -> None:
        for side, text, sign in ((self._bids, self._bids_text, -1.0), (self._asks, self._asks_text, 1.0)):
            while len(side) > depth:
                key, _ = side.popitem(-1)
                if text:
                    text.pop(sign * key, None)

    def trim(self, depth: int) -> None:
        """Drop levels beyond ``depth`` on each side. O(removed log n)."""
        self._trim(depth)

    # --- reading ---------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """``(price, size)`` of the best bid, or None. O(1)."""
        if not self._bids:
            return None
        key, size = self._bids.peekitem(0)
        return (-key, size)

    def best_ask(self) -> Level | None:
        """``(price, size)`` of the best ask, or None. O(1)."""
        if not self._asks:
            return None
        return self._asks.peekitem(0)  # type: ignore[no-any-return]

    def bbo(self) -> tuple[float, float, float, float]:
        """``(bid_price, bid_size, ask_price, ask_size)``; ``nan`` for an empty side. O(1)."""
        b = self.best_bid()
        a = self.best_ask()
        return (
            b[0] if b else _NAN,
            b[1] if b else _NAN,
            a[0] if a else _NAN,
            a[1] if a else _NAN,
        )

    def spread(self) -> float:
        """Best ask minus best bid (``nan`` if a side is empty). O(1)."""
        bp, _, ap, _ = self.bbo()
        return ap - bp

    def mid(self) -> float:
        """Mid price (``nan`` if a side is empty). O(1)."""
        bp, _, ap, _ = self.bbo()
        return (ap + bp) / 2.0

    def crossed(self) -> bool:
        """True if best bid >= best ask. O(1)."""
        if not self._bids or not self._asks:
            return False
        return bool(-self._bids.peekitem(0)[0] >= self._asks.peekitem(0)[0])

    def depth(self, n: int | None = None) -> tuple[Levels, Levels]:
        """The best ``n`` levels per side (all if None), best first. O(n)."""
        bids = self._bids.items()
        asks = self._asks.items()
        if n is not None:
            bids = bids[:n]
            asks = asks[:n]
        return tuple((-p, s) for p, s in bids), tuple(asks)

    def levels(self, side: BookSide) -> Iterator[Level]:
        """Iterate one side best first. O(1) per level."""
        if side is BookSide.BID:
            return ((-p, s) for p, s in self._bids.items())
        return iter(self._asks.items())

    def size_at(self, side: BookSide, price: float) -> float:
        """Size at ``price`` on ``side`` (0.0 if no level). O(log n)."""
        if side is BookSide.BID:
            return float(self._bids.get(-price, 0.0))
        return float(self._asks.get(price, 0.0))

    def text_depth(self, side: BookSide, n: int) -> list[tuple[str, str]]:
        """The venue's text of the best ``n`` levels of ``side`` (``keep_text`` books).
        O(n)."""
        if side is BookSide.BID:
            text = self._bids_text
            return [text[-p] for p in self._bids.keys()[:n]]
        text = self._asks_text
        return [text[p] for p in self._asks.keys()[:n]]

    def imbalance(self, n: int = 5) -> float:
        """(bid volume - ask volume) / total over the best ``n`` levels, in [-1, 1].
        ``nan`` for an empty book. O(n)."""
        bids, asks = self.depth(n)
        bv = sum(s for _, s in bids)
        av = sum(s for _, s in asks)
        total = bv + av
        return (bv - av) / total if total else _NAN

    def cost_to_fill(self, size: float, side: BookSide) -> tuple[float, float]:
        """Walk the book to fill ``size`` by taking liquidity from ``side``
        (ASK to buy, BID to sell). O(levels walked).

        Returns:
            ``(filled, notional)``: ``filled < size`` when the book is too thin.
        """
        filled = 0.0
        notional = 0.0
        for price, level_size in self.levels(side):
            take = min(level_size, size - filled)
            filled += take
            notional += take * price
            if filled >= size:
                break
        return filled, notional

    def copy(self) -> OrderBook:
        """An independent copy (for handing to another thread). O(n)."""
        other = OrderBook(self.venue, self.symbol, max_depth=self.max_depth, keep_text=self.keep_text)
        other._bids = self._bids.copy()
        other._asks = self._asks.copy()
        other._bids_text = dict(self._bids_text)
        other._asks_text = dict(self._asks_text)
        other.valid = self.valid
        other.seq = self.seq
        other.ts = self.ts
        return other

    def __len__(self) -> int:
        """Total number of levels on both sides. O(1)."""
        return len(self._bids) + len(self._asks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderBook):
            return NotImplemented
        return self.depth() == other.depth()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        state = "valid" if self.valid else "INVALID"
        return (
            f"<OrderBook {self.venue}:{self.symbol} {state} seq={self.seq} "
            f"bids={len(self._bids)} asks={len(self._asks)} bbo={self.bbo()}>"
        )

    def _check(self) -> None:
        """Assert the internal invariants (for tests). O(n)."""
        for key, size in self._bids.items():
            assert size > 0.0, f"bid {-key} has size {size}"
        for key, size in self._asks.items():
            assert size > 0.0, f"ask {key} has size {size}"
        if self.max_depth is not None:
            assert len(self._bids) <= self.max_depth and len(self._asks) <= self.max_depth
        if self.valid:
            assert not self.crossed(), f"valid book is crossed: {self.bbo()}"
        if self.keep_text:
            assert {-k for k in self._bids} == set(self._bids_text), "bid text out of step"
            assert set(self._asks) == set(self._asks_text), "ask text out of step"
