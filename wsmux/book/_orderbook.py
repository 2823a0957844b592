"""L2 order book: two sides of price levels, best price always at hand.

Theory of operation
-------------------
Each side is a plain ``dict`` from price to size plus a Python ``list`` of the
side's prices kept sorted ascending: the best bid is the *last* element of its
list, the best ask the *first* of its. A size change at an existing price
touches only the dict; a new or removed level is a binary search and a
``memmove`` (near the top for bids; up to the whole list for asks — 8 KiB
for 1,000 levels, a fraction of a microsecond — the price of holding ask keys
without a second, negated float object per level). Costs, with *n* levels on a side
and *k* levels in an update:

* size change of an existing level: O(1) (one dict store);
* new or removed level: O(log n) search + a ``memmove`` of the entries
  *better* than it (a handful near the top);
* best bid/ask, crossed check: O(1);
* ``depth(n)``: O(n) slice of the sorted keys (no sorting);
* snapshot: built in bulk — one pass to validate, one ``dict``, one
  ``sorted`` (a reversed sorted run, linear for Timsort).

Prices are floats: the same decimal text always parses to the same float, so
``"0.3513"`` and ``"0.35130000"`` are one level.

Every number is checked as it is applied: a price must be finite, positive
and below :data:`MAX_VALUE`; a size finite, non-negative and below it. A level
that fails makes :meth:`OrderBook.apply` return ``None``; the caller
(:class:`~wsmux.book.BookSync`) then invalidates the book.

Where a venue sends a checksum, the book also keeps the venue's text of each
level (``keep_text=True``), because checksums are defined over that text, and
tracks whether anything within the checksummed depth (``watch_depth``)
changed since the last checksum (:attr:`OrderBook.top_changed`), so an
unchanged top is never hashed twice.

The book itself never decides whether it is in sync: :class:`~wsmux.book.BookSync`
does, and sets :attr:`OrderBook.valid`. A reader must check ``valid`` (or
``state``): an invalid book is visibly flagged, never silently wrong.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wsmux._display import plain
from wsmux.model import BookSide, BookSnapshot, Channel, Integrity, Level, Levels, Resynced, TextLevels

__all__ = ["MAX_VALUE", "OrderBook"]

_NAN = math.nan
_NEG_INF = -math.inf
_INF = math.inf

MAX_VALUE = 1e15
"""Largest price or size a book accepts (exclusive). Far above any real
market (a price of 10^15 quote units, a size of 10^15 base units); a number
at or above it — ``1e400`` and ``Infinity`` included — is bad data."""


class OrderBook:
    """A live L2 book for one symbol.

    Args:
        venue: venue id (informational).
        symbol: unified symbol (informational).
        max_depth: keep at most this many levels per side (trimming the worst),
            ``None`` for unbounded.
        keep_text: also keep the venue's text of every level (for checksums).
        watch_depth: with ``keep_text``, the number of top levels per side
            whose changes set :attr:`top_changed` (the checksummed depth).

    Costs below use *n* for the number of levels on a side and *k* for the
    number of levels in an update.
    """

    __slots__ = (
        "_ask_keys",
        "_ask_watch",
        "_asks",
        "_asks_text",
        "_bid_keys",
        "_bid_watch",
        "_bids",
        "_bids_text",
        "crossed_ok",
        "integrity",
        "keep_text",
        "max_depth",
        "seq",
        "symbol",
        "top_changed",
        "ts",
        "valid",
        "venue",
        "watch_depth",
    )

    def __init__(
        self,
        venue: str = "",
        symbol: str = "",
        *,
        max_depth: int | None = None,
        keep_text: bool = False,
        watch_depth: int | None = None,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.max_depth = max_depth
        self.keep_text = keep_text
        self.watch_depth = watch_depth
        self._bids: dict[float, float] = {}  # price -> size
        self._asks: dict[float, float] = {}  # price -> size
        self._bid_keys: list[float] = []  # prices ascending: best bid last
        self._ask_keys: list[float] = []  # prices ascending: best ask first
        self._bids_text: dict[float, tuple[str, str]] = {}
        self._asks_text: dict[float, tuple[str, str]] = {}
        self.top_changed = True
        """Something within ``watch_depth`` changed since :meth:`mark_top_seen`."""
        self._bid_watch = _NEG_INF  # a bid at or above this price is in the watched top
        self._ask_watch = _INF  # an ask at or below this price is in the watched top
        self.valid = False
        """True while the sync machine vouches for the book."""
        self.crossed_ok = False
        """The venue's rule allows a valid book to be crossed between messages
        (Bitfinex sends one level per message and a checksum after them)."""
        self.integrity: Integrity | None = None
        """What the venue's feed lets the sync prove about this book (set by
        :class:`~wsmux.book.BookSync` from its rule)."""
        self.seq: int | None = None
        """The venue update id/sequence the book reflects, where there is one."""
        self.ts: int | None = None
        """Venue timestamp (ns) of the last applied snapshot/update."""

    # --- mutation (used by BookSync) ------------------------------------------

    def clear(self) -> None:
        """Remove every level. O(n)."""
        self._bids.clear()
        self._asks.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()
        self._bids_text.clear()
        self._asks_text.clear()
        self.top_changed = True
        self._bid_watch = _NEG_INF
        self._ask_watch = _INF

    def apply_snapshot(
        self,
        bids: Iterable[Sequence[Any]],
        asks: Iterable[Sequence[Any]],
        bids_text: TextLevels | None = None,
        asks_text: TextLevels | None = None,
    ) -> bool:
        """Replace the book with a snapshot, built in bulk. O(n log n) at
        worst, O(n) for levels already in best-first order.

        Levels are ``(price, size, ...)`` sequences of floats or of the venue's
        number text (``keep_text`` books keep that text; ``bids_text`` and
        ``asks_text`` give it separately when the levels are floats).

        Returns:
            False if a level had a bad price or size (see the module
            docstring); the book is then left cleared.
        """
        self.clear()
        bid_map = _build_side(bids)
        ask_map = _build_side(asks)
        if bid_map is None or ask_map is None:
            return False
        self._bids = bid_map
        self._asks = ask_map
        self._bid_keys = sorted(bid_map)
        self._ask_keys = sorted(ask_map)
        if self.keep_text:
            self._load_text(self._bids_text, bid_map, bids_text if bids_text is not None else bids)
            self._load_text(self._asks_text, ask_map, asks_text if asks_text is not None else asks)
        if self.max_depth is not None:
            self._trim(self.max_depth)
        return True

    @staticmethod
    def _load_text(store: dict[float, tuple[str, str]], sizes: dict[float, float], levels: Iterable[Any]) -> None:
        for level in levels:
            price = float(level[0])
            if price in sizes:
                store[price] = (level[0], level[1])

    def apply(
        self, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]], *, with_text: bool = True
    ) -> tuple[Levels, Levels] | None:
        """Apply absolute level sizes; size ``0`` deletes (deleting an absent
        level is not an error). O(k log n).

        Each level is a sequence whose first two items are the price and the
        size, as floats or as the venue's number text (further items are
        ignored): the venue's decoded lists go in without copying, and a
        ``keep_text`` book keeps their text (unless ``with_text`` is False).
        One pass converts, checks and applies every level.

        Returns:
            The applied levels as floats (for the event that reports them),
            or ``None`` if a level had a bad price or size — the good levels
            are still applied, so the caller must treat the book as broken.
        """
        text = with_text and self.keep_text
        out_bids = self._apply_bids(bids, self._bids_text if text else None)
        out_asks = self._apply_asks(asks, self._asks_text if text else None)
        if out_bids is None or out_asks is None:
            return None
        if self.max_depth is not None:
            self._trim(self.max_depth)
        return out_bids, out_asks

    def _apply_bids(
        self, levels: Iterable[Sequence[Any]], text: dict[float, tuple[str, str]] | None
    ) -> Levels | None:
        sizes = self._bids
        keys = self._bid_keys
        watch = self._bid_watch
        top = False
        ok = True
        out: list[Level] = []
        for level in levels:
            price = float(level[0])
            size = float(level[1])
            if not (0.0 < price < MAX_VALUE and 0.0 <= size < MAX_VALUE):
                ok = False
                continue
            if text is not None and (type(level[0]) is not str or type(level[1]) is not str):
                ok = False  # a checksum venue's level must be the venue's text
                continue
            out.append((price, size))
            if price >= watch:
                top = True
            if size:
                if price not in sizes:
                    insort(keys, price)
                sizes[price] = size
                if text is not None:
                    text[price] = (level[0], level[1])
            elif price in sizes:
                del sizes[price]
                del keys[bisect_left(keys, price)]
                if text is not None:
                    text.pop(price, None)
        if top:
            self.top_changed = True
        return tuple(out) if ok else None

    def _apply_asks(
        self, levels: Iterable[Sequence[Any]], text: dict[float, tuple[str, str]] | None
    ) -> Levels | None:
        sizes = self._asks
        keys = self._ask_keys
        watch = self._ask_watch
        top = False
        ok = True
        out: list[Level] = []
        for level in levels:
            price = float(level[0])
            size = float(level[1])
            if not (0.0 < price < MAX_VALUE and 0.0 <= size < MAX_VALUE):
                ok = False
                continue
            if text is not None and (type(level[0]) is not str or type(level[1]) is not str):
                ok = False
                continue
            out.append((price, size))
            if price <= watch:
                top = True
            if size:
                if price not in sizes:
                    insort(keys, price)
                sizes[price] = size
                if text is not None:
                    text[price] = (level[0], level[1])
            elif price in sizes:
                del sizes[price]
                del keys[bisect_left(keys, price)]
                if text is not None:
                    text.pop(price, None)
        if top:
            self.top_changed = True
        return tuple(out) if ok else None

    def apply_update(
        self,
        bids: Iterable[Sequence[Any]],
        asks: Iterable[Sequence[Any]],
        bids_text: TextLevels | None = None,
        asks_text: TextLevels | None = None,
    ) -> bool:
        """:meth:`apply`, returning only whether every level was good.

        ``bids_text``/``asks_text``: the venue's text of the float levels, kept
        by a ``keep_text`` book.
        """
        out_bids = self._apply_bids(bids, None)
        out_asks = self._apply_asks(asks, None)
        if self.keep_text:
            _store_text(self._bids_text, self._bids, bids_text)
            _store_text(self._asks_text, self._asks, asks_text)
        if self.max_depth is not None:
            self._trim(self.max_depth)
        return out_bids is not None and out_asks is not None

    def _trim(self, depth: int) -> None:
        keys = self._bid_keys
        extra = len(keys) - depth
        if extra > 0:  # the worst bids are the first keys
            _forget(keys[:extra], self._bids, self._bids_text)
            del keys[:extra]
        keys = self._ask_keys
        if len(keys) > depth:  # the worst asks are the last keys
            _forget(keys[depth:], self._asks, self._asks_text)
            del keys[depth:]

    def trim(self, depth: int) -> None:
        """Drop levels beyond ``depth`` on each side. O(removed + n)."""
        self._trim(depth)

    def mark_top_seen(self) -> None:
        """Record that the watched top (``watch_depth`` levels a side) was just
        read (hashed): :attr:`top_changed` turns False until a level at or better than
        the current ``watch_depth``-th best price on either side changes. O(1).

        Correct because a change strictly below the ``d``-th best level can
        neither enter nor leave nor alter the top ``d``.
        """
        depth = self.watch_depth
        self.top_changed = depth is None
        if depth is None:
            return
        keys = self._bid_keys
        self._bid_watch = keys[-depth] if len(keys) >= depth else _NEG_INF
        keys = self._ask_keys
        self._ask_watch = keys[depth - 1] if len(keys) >= depth else _INF

    # --- reading ---------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """``(price, size)`` of the best bid, or None. O(1)."""
        keys = self._bid_keys
        if not keys:
            return None
        price = keys[-1]
        return (price, self._bids[price])

    def best_ask(self) -> Level | None:
        """``(price, size)`` of the best ask, or None. O(1)."""
        keys = self._ask_keys
        if not keys:
            return None
        price = keys[0]
        return (price, self._asks[price])

    def bbo(self) -> tuple[float, float, float, float]:
        """``(bid_price, bid_size, ask_price, ask_size)``; ``nan`` for an empty side. O(1)."""
        bk = self._bid_keys
        ak = self._ask_keys
        if bk:
            bp = bk[-1]
            bs = self._bids[bp]
        else:
            bp = bs = _NAN
        if ak:
            ap = ak[0]
            asz = self._asks[ap]
        else:
            ap = asz = _NAN
        return (bp, bs, ap, asz)

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
        bk = self._bid_keys
        ak = self._ask_keys
        return bool(bk and ak and bk[-1] >= ak[0])

    def depth(self, n: int | None = None) -> tuple[Levels, Levels]:
        """The best ``n`` levels per side (all if None), best first. O(n)."""
        bk = self._bid_keys
        ak = self._ask_keys
        if n is None:
            top_b = bk[::-1]
            top_a = ak
        elif n <= 0:
            return (), ()
        else:
            top_b = bk[: -n - 1 : -1]
            top_a = ak[:n]
        return (
            tuple(zip(top_b, map(self._bids.__getitem__, top_b), strict=True)),
            tuple(zip(top_a, map(self._asks.__getitem__, top_a), strict=True)),
        )

    def levels(self, side: BookSide) -> Iterator[Level]:
        """Iterate one side best first. O(1) per level (the side must not
        change while iterating)."""
        if side is BookSide.BID:
            bids = self._bids
            return ((p, bids[p]) for p in reversed(self._bid_keys))
        asks = self._asks
        return ((p, asks[p]) for p in self._ask_keys)

    def size_at(self, side: BookSide, price: float) -> float:
        """Size at ``price`` on ``side`` (0.0 if no level). O(1)."""
        if side is BookSide.BID:
            return self._bids.get(price, 0.0)
        return self._asks.get(price, 0.0)

    def text_depth(self, side: BookSide, n: int) -> list[tuple[str, str]]:
        """The venue's text of the best ``n`` levels of ``side`` (``keep_text`` books).
        O(n)."""
        if n <= 0:
            return []
        if side is BookSide.BID:
            return list(map(self._bids_text.__getitem__, self._bid_keys[: -n - 1 : -1]))
        return list(map(self._asks_text.__getitem__, self._ask_keys[:n]))

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
        other = OrderBook(
            self.venue, self.symbol, max_depth=self.max_depth, keep_text=self.keep_text, watch_depth=self.watch_depth
        )
        other._bids = dict(self._bids)
        other._asks = dict(self._asks)
        other._bid_keys = list(self._bid_keys)
        other._ask_keys = list(self._ask_keys)
        other._bids_text = dict(self._bids_text)
        other._asks_text = dict(self._asks_text)
        other.valid = self.valid
        other.integrity = self.integrity
        other.seq = self.seq
        other.ts = self.ts
        return other

    def snapshot_event(self, recv_ns: int, checksum: int | None = None) -> BookSnapshot:
        """The whole book as the :class:`~wsmux.BookSnapshot` a caller is handed
        after a sync (with the book's integrity level). O(n)."""
        bids, asks = self.depth()
        return BookSnapshot(
            self.venue, self.symbol, bids, asks, self.ts, recv_ns, self.seq, checksum, None, None, self.integrity
        )

    def resynced_event(self, recv_ns: int) -> Resynced:
        """The :class:`~wsmux.Resynced` that announces this book valid. O(1)."""
        return Resynced(self.venue, self.symbol, Channel.BOOK, self.seq, recv_ns, self.integrity)

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
        bbo = ", ".join(plain(v) for v in self.bbo())  # 29999.99, not 29999.989999999998
        return (
            f"<OrderBook {self.venue}:{self.symbol} {state} seq={self.seq} "
            f"bids={len(self._bids)} asks={len(self._asks)} bbo=({bbo})>"
        )

    def _check(self) -> None:
        """Assert the internal invariants (for tests). O(n log n)."""
        assert self._bid_keys == sorted(self._bids), "bid keys out of step with the bid levels"
        assert self._ask_keys == sorted(self._asks), "ask keys out of step with the ask levels"
        for price, size in self._bids.items():
            assert 0.0 < price < MAX_VALUE and 0.0 < size < MAX_VALUE, f"bid {price} has size {size}"
        for price, size in self._asks.items():
            assert 0.0 < price < MAX_VALUE and 0.0 < size < MAX_VALUE, f"ask {price} has size {size}"
        if self.max_depth is not None:
            assert len(self._bids) <= self.max_depth and len(self._asks) <= self.max_depth
        if self.valid and not self.crossed_ok:
            assert not self.crossed(), f"valid book is crossed: {self.bbo()}"
        if self.keep_text:
            assert set(self._bids) == set(self._bids_text), "bid text out of step"
            assert set(self._asks) == set(self._asks_text), "ask text out of step"


def _forget(prices: list[float], sizes: dict[float, float], text: dict[float, tuple[str, str]]) -> None:
    for price in prices:
        del sizes[price]
        if text:
            text.pop(price, None)


def _store_text(store: dict[float, tuple[str, str]], sizes: dict[float, float], levels: TextLevels | None) -> None:
    """Keep the text of the levels that are in the book, forget the others."""
    if not levels:
        return
    for ptext, stext in levels:
        price = float(ptext)
        if price in sizes:
            store[price] = (ptext, stext)
        else:
            store.pop(price, None)


def _build_side(levels: Iterable[Sequence[Any]]) -> dict[float, float] | None:
    """``{price: size}`` of a snapshot side (zero sizes skipped, a later
    duplicate wins, as if applied in order), or None if a level is bad.

    Levels that are already ``(float, float)`` pairs (an adapter's
    :class:`~wsmux.BookSnapshot`) are taken by ``dict()`` in C and only
    checked here; anything else (the venue's text) is converted level by level.
    """
    try:
        sizes: dict[float, float] = dict(levels)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # levels of three or more items, or not pairs
        pass
    else:
        zeros: list[float] = []
        for price, size in sizes.items():
            if type(price) is not float or type(size) is not float:
                break  # text (or ints): the converting path below
            if not (0.0 < price < MAX_VALUE and 0.0 <= size < MAX_VALUE):
                return None
            if not size:
                zeros.append(price)
        else:
            for price in zeros:
                del sizes[price]
            return sizes
    out: dict[float, float] = {}
    for level in levels:
        price = float(level[0])
        size = float(level[1])
        if not (0.0 < price < MAX_VALUE and 0.0 <= size < MAX_VALUE):
            return None
        if size:
            out[price] = size
        else:
            out.pop(price, None)
    return out
