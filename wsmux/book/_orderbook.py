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
* snapshot: built in bulk, beside the live book, by a :class:`SnapshotBuild`
  — per chunk of levels, C-level passes only (``map(float, ...)``, ``sum``/``min``/``max``
  to check, ``dict.update(zip(...))``), then one ``sorted`` per side (a reversed
  sorted run, linear for Timsort) — and swapped in at once (:meth:`OrderBook.install`).
  The build works in steps of at most :data:`SNAPSHOT_STEP_LEVELS` levels, so
  the I/O layer can let other venues' frames through between steps; the live
  book is untouched until the finished build is installed. A side may also
  come unread (:class:`UnreadRows`: the venue's rows and the adapter's
  reader), and a step then reads that many of the venue's rows too.

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

Kept text, compacted
~~~~~~~~~~~~~~~~~~~~
A ``(price text, size text)`` pair costs about 200 bytes a level (a tuple,
two strings and a dict entry), twice what the level's floats cost, while a
checksum reads only the top few levels. Venues spell their numbers
regularly (Kraken: a fixed number of decimals per pair), so a book does not
keep text it can *prove* it can re-create:

* after a snapshot, a *renderer* per side and field is chosen from the best
  levels' text (``"{:.Nf}"`` with the first text's decimals, or ``repr``),
  or none if neither reproduces them all;
* text of a level beyond the top :meth:`~OrderBook.text_keep` levels whose
  price and size texts are exactly what the renderers print for its floats
  is dropped, in bulk (C-level passes) — never text that differs, never the
  top;
* an update stores its levels' text as given; when a side's kept text
  outgrows a bound, the same check drops the provable deep entries again
  (the bound then doubles from what is left, so text that cannot be dropped
  costs amortised O(1));
* :meth:`~OrderBook.text_depth` renders a level with no kept text, and keeps
  the result when the level is within the top (so a level rising into the
  checksummed top is rendered once; a full-depth read keeps nothing more);
* levels set without their text (``apply_update`` without ``*_text``) make
  that side's renderers unusable: its missing text stays missing (a
  ``KeyError`` on read), never guessed.

So a level's text is always the venue's latest spelling: either kept, or
equal to it by the check that dropped it.

The book itself never decides whether it is in sync: :class:`~wsmux.book.BookSync`
does, and sets :attr:`OrderBook.valid`. A reader must check ``valid`` (or
``state``): an invalid book is visibly flagged, never silently wrong.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress
from operator import and_, eq, itemgetter
from typing import Any

from wsmux._display import plain
from wsmux.model import BookSide, BookSnapshot, Channel, Integrity, Level, Levels, Resynced, TextLevels

__all__ = ["MAX_VALUE", "SNAPSHOT_STEP_LEVELS", "OrderBook", "SnapshotBuild", "UnreadRows"]

_NAN = math.nan
_NEG_INF = -math.inf
_INF = math.inf
_isfinite = math.isfinite
_PRICE = itemgetter(0)
_SIZE = itemgetter(1)

MAX_VALUE = 1e15
"""Largest price or size a book accepts (exclusive). Far above any real
market (a price of 10^15 quote units, a size of 10^15 base units); a number
at or above it — ``1e400`` and ``Infinity`` included — is bad data."""

TEXT_KEPT_BEYOND_TOP = 128
"""Entries of kept text a side may hold beyond its top before the provable
deep ones are dropped again (see "Kept text, compacted" above): with about
200 bytes an entry, the bound on what churn adds to a compacted book."""

Render = Callable[[float], str]
"""A number's text from its float: one of :func:`_renderer_for`'s candidates."""

SNAPSHOT_STEP_LEVELS = 2000
"""Most levels one :meth:`SnapshotBuild.step` converts and checks (about
0.2-0.3 ms of C-level work on a 2-core machine): the bound on how long a
stepwise snapshot build holds the event loop per step."""


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
        "_ask_render",
        "_ask_text_cap",
        "_ask_watch",
        "_asks",
        "_asks_text",
        "_bid_keys",
        "_bid_render",
        "_bid_text_cap",
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
        # (price renderer, size renderer) that re-create a side's dropped text,
        # None while nothing proved one (module docstring, "Kept text, compacted")
        self._bid_render: tuple[Render, Render] | None = None
        self._ask_render: tuple[Render, Render] | None = None
        self._bid_text_cap = self._ask_text_cap = self.text_keep() + TEXT_KEPT_BEYOND_TOP
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
        self._bid_render = self._ask_render = None
        self._bid_text_cap = self._ask_text_cap = self.text_keep() + TEXT_KEPT_BEYOND_TOP
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
        """Replace the book with a snapshot, built in bulk (:meth:`start_build`,
        run to the end, then :meth:`install`). O(n log n) at worst, O(n) for
        levels already in best-first order.

        Levels are ``(price, size, ...)`` sequences of floats or of the venue's
        number text (``keep_text`` books keep that text; ``bids_text`` and
        ``asks_text`` give it separately when the levels are floats).

        Returns:
            False if a level had a bad price or size (see the module
            docstring); the book is then left cleared.

        Raises:
            ValueError, TypeError: a price or size is not a number.
        """
        return self.install(self.start_build(bids, asks, bids_text, asks_text))

    def start_build(
        self,
        bids: Iterable[Sequence[Any]],
        asks: Iterable[Sequence[Any]],
        bids_text: Iterable[Sequence[Any]] | None = None,
        asks_text: Iterable[Sequence[Any]] | None = None,
        step_levels: int = SNAPSHOT_STEP_LEVELS,
    ) -> SnapshotBuild:
        """A :class:`SnapshotBuild` of this snapshot (same arguments as
        :meth:`apply_snapshot`), to be run in steps of at most ``step_levels``
        levels and then :meth:`install`-ed. The book is not touched. O(1)."""
        if not self.keep_text:
            return SnapshotBuild(bids, asks, None, None, step_levels)
        bids = _as_sequence(bids)
        asks = _as_sequence(asks)
        return SnapshotBuild(
            bids,
            asks,
            bids if bids_text is None else bids_text,
            asks if asks_text is None else asks_text,
            step_levels,
            text_keep=self.text_keep(),
        )

    def install(self, build: SnapshotBuild) -> bool:
        """Replace the book's levels with those of ``build`` (finishing it
        first if it is not done). O(1) plus the trimming to ``max_depth``.

        Returns:
            False if a level of the snapshot was bad; the book is then left
            cleared.
        """
        build.finish()
        self.clear()
        if not build.ok:
            return False
        self._bids = build.bids
        self._asks = build.asks
        self._bid_keys = build.bid_keys
        self._ask_keys = build.ask_keys
        if self.keep_text:
            self._bids_text = build.bids_text
            self._asks_text = build.asks_text
            self._bid_render = build.bid_render
            self._ask_render = build.ask_render
            self._bid_text_cap = max(self._bid_text_cap, 2 * len(build.bids_text))
            self._ask_text_cap = max(self._ask_text_cap, 2 * len(build.asks_text))
        if self.max_depth is not None:
            self._trim(self.max_depth)
        return True

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
        if self.keep_text:
            if not text:
                self._unproved(out_bids, out_asks)
            self._bound_text()
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
            self._unproved(out_bids if bids_text is None else None, out_asks if asks_text is None else None)
            self._bound_text()
        if self.max_depth is not None:
            self._trim(self.max_depth)
        return out_bids is not None and out_asks is not None

    def _unproved(self, bids: Levels | None, asks: Levels | None) -> None:
        """Levels were set without their text: a side that got any can no
        longer re-create missing text (it would be a guess)."""
        if bids:
            self._bid_render = None
        if asks:
            self._ask_render = None

    def text_keep(self) -> int:
        """How many top levels a side always keeps the text of: twice the
        checksummed depth (``watch_depth``, 25 when unset), so levels shifting
        by a few places are not re-rendered."""
        return 2 * (self.watch_depth or 25)

    def _bound_text(self) -> None:
        """Drop the provable deep entries of kept text from a side that holds
        more than its bound (module docstring, "Kept text, compacted").
        O(1) while under the bound; amortised O(1) per stored level."""
        if len(self._bids_text) > self._bid_text_cap:
            keys = self._bid_keys
            edge = keys[-self.text_keep()] if len(keys) >= self.text_keep() else _NEG_INF
            deep = [p for p in self._bids_text if p < edge]
            self._bids_text, self._bid_text_cap = self._compacted(self._bids_text, self._bids, deep, self._bid_render)
        if len(self._asks_text) > self._ask_text_cap:
            keys = self._ask_keys
            edge = keys[self.text_keep() - 1] if len(keys) >= self.text_keep() else _INF
            deep = [p for p in self._asks_text if p > edge]
            self._asks_text, self._ask_text_cap = self._compacted(self._asks_text, self._asks, deep, self._ask_render)

    def _compacted(
        self,
        text: dict[float, tuple[str, str]],
        sizes: dict[float, float],
        deep: list[float],
        render: tuple[Render, Render] | None,
    ) -> tuple[dict[float, tuple[str, str]], int]:
        """``text`` without the provable entries among ``deep`` (a new dict: a
        dict never shrinks its table by deletes), and the side's next bound."""
        if render is not None:
            _drop_provable(text, sizes, deep, render)
            text = dict(text)
        return text, max(self.text_keep() + TEXT_KEPT_BEYOND_TOP, 2 * len(text))

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
        O(n); a level whose text was dropped as provable is rendered (and kept
        again if it is within the top :meth:`text_keep` levels).

        Raises:
            KeyError: a level's text is missing (it was set without it).
        """
        if n <= 0:
            return []
        try:  # the common case: all kept (zero cost for the try in 3.11)
            if side is BookSide.BID:
                return list(map(self._bids_text.__getitem__, self._bid_keys[: -n - 1 : -1]))
            return list(map(self._asks_text.__getitem__, self._ask_keys[:n]))
        except KeyError:
            return self._render_text(side, n)

    def _render_text(self, side: BookSide, n: int) -> list[tuple[str, str]]:
        """:meth:`text_depth` where some text is not kept: rendered."""
        if side is BookSide.BID:
            prices = self._bid_keys[: -n - 1 : -1]
            text, sizes, render = self._bids_text, self._bids, self._bid_render
        else:
            prices = self._ask_keys[:n]
            text, sizes, render = self._asks_text, self._asks, self._ask_render
        keep = self.text_keep()
        out = []
        for i, price in enumerate(prices):
            pair = text.get(price)
            if pair is None:
                if render is None:
                    raise KeyError(price)
                pair = (render[0](price), render[1](sizes[price]))
                if i < keep:  # the top is read again and again: keep it
                    text[price] = pair
            out.append(pair)
        return out

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
        other._bid_render = self._bid_render
        other._ask_render = self._ask_render
        other._bid_text_cap = self._bid_text_cap
        other._ask_text_cap = self._ask_text_cap
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
            sides = (
                ("bid", self._bids, self._bids_text, self._bid_render),
                ("ask", self._asks, self._asks_text, self._ask_render),
            )
            for name, sizes, text, render in sides:
                assert text.keys() <= sizes.keys(), f"{name} text out of step: text of absent levels"
                if render is None:
                    assert text.keys() == sizes.keys(), f"{name} text out of step"
                for price, size in sizes.items():
                    ptext, stext = text[price] if price in text else (render[0](price), render[1](size))  # type: ignore[index]
                    assert float(ptext) == price, f"{name} text {ptext!r} is not the price {price}"
                    assert float(stext) == size, f"{name} text {stext!r} is not the size {size} at {price}"


def _forget(prices: list[float], sizes: dict[float, float], text: dict[float, tuple[str, str]]) -> None:
    for price in prices:
        del sizes[price]
        if text:
            text.pop(price, None)


def _renderer_for(texts: Sequence[str]) -> Render | None:
    """The formatter that prints every one of ``texts`` from its float:
    ``"{:.Nf}"`` with the first text's number of decimals, else ``repr``;
    None if neither does."""
    first = texts[0]
    dot = first.find(".")
    fixed = f"{{:.{len(first) - dot - 1 if dot >= 0 else 0}f}}".format
    for render in (fixed, repr):
        if all(render(float(text)) == text for text in texts):
            return render
    return None


def _drop_provable(
    text: dict[float, tuple[str, str]], sizes: dict[float, float], prices: list[float], render: tuple[Render, Render]
) -> None:
    """Forget the kept text of those ``prices`` whose price and size texts are
    exactly what ``render`` prints for the level's floats. C-level passes."""
    kept = list(map(text.__getitem__, prices))
    same_price = map(eq, map(render[0], prices), map(_PRICE, kept))
    same_size = map(eq, map(render[1], map(sizes.__getitem__, prices)), map(_SIZE, kept))
    for price in compress(prices, map(and_, same_price, same_size)):
        del text[price]


def _side_renderer(text: dict[float, tuple[str, str]], best: Sequence[float]) -> tuple[Render, Render] | None:
    """Renderers that re-create the text of the ``best`` levels' (a sample of
    a side's top), or None."""
    if not best:
        return None
    sample = list(map(text.get, best))
    if not all(sample):
        return None
    price = _renderer_for(list(map(_PRICE, sample)))  # type: ignore[arg-type]
    size = _renderer_for(list(map(_SIZE, sample)))  # type: ignore[arg-type]
    return None if price is None or size is None else (price, size)


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


class SnapshotBuild:
    """A book snapshot being built beside the live book, in bounded steps.

    Made by :meth:`OrderBook.start_build`; :meth:`step` does the next piece of
    work (converting and checking at most ``step_levels`` levels; the last
    step also sorts each side's prices, a linear pass for a snapshot in
    best-first order) and says whether the build is complete; :meth:`OrderBook.install`
    swaps the result into the book. Nothing is shared with the live book, so
    a build that is overtaken (a disconnect, another snapshot) is simply
    dropped.

    The result is the one applying the levels in order would give: a later
    duplicate price wins, a zero size deletes, and one bad level (see the
    :mod:`module docstring <wsmux.book._orderbook>`) fails the whole snapshot
    (:attr:`ok` False). A price or size that is not a number raises
    ``ValueError``/``TypeError`` from :meth:`step`.
    """

    __slots__ = (
        "_work",
        "ask_keys",
        "ask_render",
        "asks",
        "asks_text",
        "bid_keys",
        "bid_render",
        "bids",
        "bids_text",
        "done",
        "ok",
    )

    def __init__(
        self,
        bids: Iterable[Sequence[Any]],
        asks: Iterable[Sequence[Any]],
        bids_text: Iterable[Sequence[Any]] | None,
        asks_text: Iterable[Sequence[Any]] | None,
        step_levels: int = SNAPSHOT_STEP_LEVELS,
        *,
        text_keep: int | None = None,
    ) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bid_keys: list[float] = []
        self.ask_keys: list[float] = []
        self.bids_text: dict[float, tuple[str, str]] = {}
        self.asks_text: dict[float, tuple[str, str]] = {}
        self.bid_render: tuple[Render, Render] | None = None
        self.ask_render: tuple[Render, Render] | None = None
        """With ``text_keep``: the renderers that re-create the text dropped
        beyond the top ``text_keep`` levels of a side (see :class:`OrderBook`)."""
        self.ok = True
        """False once a level was bad."""
        self.done = False
        """True when every step is done."""
        self._work = self._steps(bids, asks, bids_text, asks_text, max(1, step_levels), text_keep)

    def step(self) -> bool:
        """Do the next step (at most ``step_levels`` levels converted and
        checked; the last one also sorts). Returns True when the build is complete."""
        if not self.done:
            next(self._work, None)
        return self.done

    def finish(self) -> None:
        """Do every remaining step."""
        while not self.step():
            pass

    def _steps(
        self,
        bids: Iterable[Sequence[Any]],
        asks: Iterable[Sequence[Any]],
        bids_text: Iterable[Sequence[Any]] | None,
        asks_text: Iterable[Sequence[Any]] | None,
        step: int,
        text_keep: int | None,
    ) -> Iterator[None]:
        sides = ((bids, self.bids, bids_text, self.bids_text), (asks, self.asks, asks_text, self.asks_text))
        budget = step  # levels this step may still handle: a small snapshot is one step
        complete: list[bool] = []  # per side: text was given for every level
        for levels, sizes, text_levels, text in sides:
            levels = _as_sequence(levels)
            start = 0
            count = len(levels)
            while start < count:
                # advanced by the rows sliced, not the levels they held: a
                # side of UnreadRows may find none of its levels in a slice
                end = min(start + budget, count)
                if not _add_levels(sizes, levels[start:end]):
                    self.ok = False
                budget -= end - start
                start = end
                if not budget:
                    budget = step
                    yield
            if text_levels is not None:
                text_levels = _as_sequence(text_levels)
                gathered: dict[float, tuple[str, str]] = {}
                start = 0
                count = len(text_levels)
                while start < count:  # by the rows sliced, as above
                    end = min(start + budget, count)
                    _add_text(gathered, text_levels[start:end])
                    budget -= end - start
                    start = end
                    if not budget:
                        budget = step
                        yield
                # keyed by the book's own price objects (one float per price,
                # not two: 24 bytes a level), without the text of deleted levels
                if gathered.keys() >= sizes.keys():
                    text.update(zip(sizes, map(gathered.__getitem__, sizes), strict=True))
                    complete.append(True)
                else:  # text missing for some levels: keep what there is
                    text.update([(price, gathered[price]) for price in sizes if price in gathered])
                    complete.append(False)
        self.bid_keys = bid_keys = sorted(self.bids)  # a descending run: linear
        self.ask_keys = ask_keys = sorted(self.asks)  # an ascending run: linear
        for keys in (bid_keys, ask_keys):
            # every price in the dicts came through _add_levels, which let no
            # NaN or infinity through: the ends bound them all
            if keys and not (keys[0] > 0.0 and keys[-1] < MAX_VALUE):
                self.ok = False
        if text_keep is not None and complete == [True, True] and self.ok:
            # drop the text the renderers provably re-create, beyond the top
            # (formatting a number costs ~0.3 us: a quarter of a step's levels)
            per_step = max(1, step // 4)
            bid_deep = bid_keys[:-text_keep] if len(bid_keys) > text_keep else []
            ask_deep = ask_keys[text_keep:]
            self.bid_render = _side_renderer(self.bids_text, bid_keys[-1:-9:-1])
            self.ask_render = _side_renderer(self.asks_text, ask_keys[:8])
            work = (
                (self.bids_text, self.bids, bid_deep, self.bid_render),
                (self.asks_text, self.asks, ask_deep, self.ask_render),
            )
            for text, sizes, deep, render in work:
                if render is None or not deep:
                    continue
                for start in range(0, len(deep), per_step):
                    yield
                    _drop_provable(text, sizes, deep[start : start + per_step], render)
                # a dict never shrinks its table by deletes: copy what is left
                if text is self.bids_text:
                    self.bids_text = dict(text)
                else:
                    self.asks_text = dict(text)
        self.done = True


_Sides = tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]]


class UnreadRows:
    """One side of a snapshot as the venue sent it, read a slice at a time.

    A deep stream snapshot's side, handed to the book's build without being
    read: slicing it (``rows[i:j]``, which is all a :class:`SnapshotBuild`
    does, one step at a time) runs ``read`` on those rows of the venue's and
    returns the ``(price, size)`` levels they hold. So turning a venue's rows
    into levels (Deribit's ``[action, price, amount]``, Kraken Futures'
    ``{"price", "qty"}``, a list of both sides in one) runs in the build's
    bounded steps, not inside the frame, and only the book being built waits
    for it. ``read`` raises what the adapter's parse would have raised for a
    bad row; the build then fails as for any unreadable level.

    ``len()`` is the number of the venue's rows, which is the work a step
    bounds: where both sides share one list (each side's ``read`` keeps its
    own), each side counts every row.
    """

    __slots__ = ("_read", "_rows")

    def __init__(self, rows: Sequence[Any], read: Callable[[Sequence[Any]], Sequence[Sequence[Any]]]) -> None:
        self._rows = rows
        self._read = read

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: slice) -> Sequence[Sequence[Any]]:
        return self._read(self._rows[index])

    def __iter__(self) -> Iterator[Sequence[Any]]:
        return iter(self._read(self._rows))

    def __repr__(self) -> str:
        return f"UnreadRows({len(self._rows)} rows)"

    @classmethod
    def split(cls, rows: Sequence[Any], read: Callable[[Sequence[Any]], _Sides]) -> tuple[UnreadRows, UnreadRows]:
        """Bids and asks from one list of rows of both sides: ``read`` turns
        rows into ``(bid levels, ask levels)``; each side keeps its own."""
        return cls(rows, lambda chunk: read(chunk)[0]), cls(rows, lambda chunk: read(chunk)[1])


def _as_sequence(levels: Iterable[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    cls = type(levels)
    if cls is tuple or cls is list or cls is UnreadRows:
        return levels  # type: ignore[return-value]  # UnreadRows: slices only, as the build reads it
    return list(levels)


def _add_levels(sizes: dict[float, float], levels: Sequence[Sequence[Any]]) -> bool:
    """Apply ``(price, size, ...)`` levels to ``sizes`` as if one by one (a
    zero size deletes); False if one is bad (a price that stays in the book
    is checked by the caller, from the sorted ends). C-level passes only,
    unless a zero size makes the order of deletes matter."""
    prices = list(map(float, map(_PRICE, levels)))
    amounts = list(map(float, map(_SIZE, levels)))
    if not prices:
        return True
    # a NaN or an infinity anywhere makes its sum non-finite
    if not (_isfinite(sum(prices)) and _isfinite(sum(amounts))):
        return False
    low = min(amounts)
    if low < 0.0 or max(amounts) >= MAX_VALUE:
        return False
    if low:  # no deletes: every price ends up in the dict (the later duplicate wins)
        sizes.update(zip(prices, amounts, strict=True))
        return True
    for price, size in zip(prices, amounts, strict=True):
        if not 0.0 < price < MAX_VALUE:  # a deleted price never reaches the dict: check it here
            return False
        if size:
            sizes[price] = size
        else:
            sizes.pop(price, None)
    return True


def _add_text(text: dict[float, tuple[str, str]], levels: Sequence[Sequence[Any]]) -> None:
    """Keep the venue's ``(price text, size text)`` of each level, by price (the later wins)."""
    ptexts = list(map(_PRICE, levels))
    text.update(zip(map(float, ptexts), zip(ptexts, map(_SIZE, levels), strict=True), strict=True))
