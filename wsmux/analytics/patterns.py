"""Pattern detectors on one venue's book and trades, each an
:class:`~wsmux.analytics.Operator` emitting a typed event.

* :class:`QuoteStuffing` — bursts of book/quote updates without trades →
  :class:`QuoteBurst`.
* :class:`FleetingWalls` — large levels near the touch that appear and
  vanish (not traded away) within a short time → :class:`FleetingWall`.
* :class:`HiddenLiquidity` — trades larger than the size displayed at the
  touch (an iceberg or hidden order hint) → :class:`HiddenFill`.

These are *hints*, not verdicts: every threshold is a parameter, documented
with its default in ``docs/analytics/patterns.rst``. Times are the venue's
event times (the receive time where a venue sends none).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence

from wsmux.analytics._bookfed import BOOK_EVENTS, BookFed, BookSource, event_time
from wsmux.analytics._operator import NOTHING, AnalyticEvent, Operator, _instrument_check
from wsmux.convert import register_event
from wsmux.errors import ConfigError
from wsmux.model import BookSide, BookSnapshot, BookUpdate, Event, Quote, Side, Trade, event

__all__ = [
    "FleetingWall",
    "FleetingWalls",
    "HiddenFill",
    "HiddenLiquidity",
    "QuoteBurst",
    "QuoteStuffing",
]


def _positive(value: object, what: str, *, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not value > 0:  # type: ignore[operator]
        raise ConfigError(f"{what} must be a positive {'int' if integer else 'number'}, not {value!r}")


# --- output events -------------------------------------------------------------------------


@event
class QuoteBurst(AnalyticEvent):
    """At least ``updates`` book/quote updates and at most ``trades`` trades
    arrived within ``window_ns`` (ending at ``ts``); ``start_ts`` is the
    time of the oldest update in the window. One event per burst."""

    venue: str
    symbol: str
    updates: int
    trades: int
    window_ns: int
    start_ts: int
    ts: int | None
    recv_ns: int


@event
class FleetingWall(AnalyticEvent):
    """A large level near the touch vanished soon after it appeared.

    Attributes:
        side: the book side of the wall.
        price: its price.
        size: its largest size while it stood.
        median_size: the median level size when it appeared.
        distance_ticks: its distance from the same side's best price when
            it appeared, in ticks.
        lifetime_ns: from appearance to vanishing.
        traded: the volume traded at its price and side while it stood.
    """

    venue: str
    symbol: str
    side: BookSide
    price: float
    size: float
    median_size: float
    distance_ticks: int
    lifetime_ns: int
    traded: float
    ts: int | None
    recv_ns: int


@event
class HiddenFill(AnalyticEvent):
    """A taker traded more at ``price`` than the book showed there at the touch.

    Attributes:
        side: the taker's side (BUY took asks).
        traded: the volume of the taker's trades at this price and time
            (consecutive trades of one side, price and timestamp are summed).
        displayed: the largest size the touch showed at ``price`` within
            the look-back before the trade.
    """

    venue: str
    symbol: str
    side: Side
    price: float
    traded: float
    displayed: float
    ts: int | None
    recv_ns: int


for _cls, _tag in ((QuoteBurst, "quote_burst"), (FleetingWall, "fleeting_wall"), (HiddenFill, "hidden_fill")):
    register_event(_cls, _tag)


# --- quote stuffing --------------------------------------------------------------------------------


class QuoteStuffing(Operator):
    """Bursts of quote/book updates without trades.

    Over a sliding window of ``window_ns`` of event time (``(t - window, t]``),
    counts book updates (``BookUpdate``, ``Quote``) and trades. When the
    updates reach ``min_updates`` while the trades are at most
    ``max_trades``, emits one :class:`QuoteBurst`; the detector re-arms
    once the updates in the window fall below half of ``min_updates`` or
    trades exceed ``max_trades``. Reads no book, so it needs no validity.
    O(1) amortized per event.

    Defaults: 200 updates in 1 s with no trade.
    """

    name = "quote-stuffing"
    accepts = (BookUpdate, Quote, Trade)

    def __init__(self, *, window_ns: int = 1_000_000_000, min_updates: int = 200, max_trades: int = 0) -> None:
        _positive(window_ns, "QuoteStuffing window_ns", integer=True)
        _positive(min_updates, "QuoteStuffing min_updates", integer=True)
        if not isinstance(max_trades, int) or max_trades < 0:
            raise ConfigError(f"QuoteStuffing max_trades must be a non-negative int, not {max_trades!r}")
        self.window_ns = window_ns
        self.min_updates = min_updates
        self.max_trades = max_trades
        self._updates: deque[int] = deque()
        self._trades: deque[int] = deque()
        self._bound: tuple[str, str] | None = None
        self._armed = True
        self.bursts = 0

    def reset(self) -> None:
        self._updates.clear()
        self._trades.clear()
        self._bound = None
        self._armed = True
        self.bursts = 0

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        ev: BookUpdate | Quote | Trade = event  # type: ignore[assignment]
        bound = self._bound
        if bound is None:
            self._bound = bound = (ev.venue, ev.symbol)
        elif ev.venue != bound[0] or ev.symbol != bound[1]:
            _instrument_check(bound, ev, self.name)
        t = event_time(ev.ts, ev.recv_ns)
        ups, trs = self._updates, self._trades
        (trs if type(ev) is Trade else ups).append(t)
        cutoff = t - self.window_ns
        while ups and ups[0] <= cutoff:
            ups.popleft()
        while trs and trs[0] <= cutoff:
            trs.popleft()
        n, m = len(ups), len(trs)
        if self._armed:
            if n >= self.min_updates and m <= self.max_trades:
                self._armed = False
                self.bursts += 1
                return (QuoteBurst(bound[0], bound[1], n, m, self.window_ns, ups[0], ev.ts, ev.recv_ns),)
        elif n < self.min_updates / 2 or m > self.max_trades:
            self._armed = True
        return NOTHING


# --- walls that appear and vanish -------------------------------------------------------------


class _Wall:
    __slots__ = ("distance", "median", "peak", "since", "traded")

    def __init__(self, size: float, since: int, median: float, distance: int) -> None:
        self.peak = size
        self.since = since
        self.median = median
        self.distance = distance
        self.traded = 0.0


class FleetingWalls(BookFed):
    """Large levels near the touch that vanish soon after they appear.

    A level *is a wall* when its size is at least ``k`` times the median
    size of the best ``median_levels`` levels of both sides, and it *appears*
    when a book update sets it so while it is within ``within_ticks`` ticks
    of its side's best price. It *vanishes* when an update takes it below
    ``k`` times the (current) median or deletes it. A vanished wall whose
    lifetime is under ``max_lifetime_ns`` and of which less than
    ``max_traded`` (a fraction of its largest size) traded at its price
    while it stood — it was pulled, not filled — is emitted as a
    :class:`FleetingWall`. Walls older than ``max_lifetime_ns`` are
    forgotten; a suspension forgets all (nothing is known across a gap).

    Defaults: k = 5, within 10 ticks, median over 20 levels, lifetime under
    2 s, less than half traded.

    Cost: O(changed levels) per update; the median (O(m log m) for m =
    ``median_levels``) is computed once per update that changes a level
    near the touch, so this is a few µs per such update, not ~1 µs.
    """

    name = "fleeting-walls"
    accepts = (*BOOK_EVENTS, Trade)

    def __init__(
        self,
        tick_size: float,
        *,
        k: float = 5.0,
        within_ticks: int = 10,
        max_lifetime_ns: int = 2_000_000_000,
        median_levels: int = 20,
        max_traded: float = 0.5,
        book: BookSource | None = None,
    ) -> None:
        _positive(tick_size, "FleetingWalls tick_size")
        _positive(k, "FleetingWalls k")
        _positive(within_ticks, "FleetingWalls within_ticks", integer=True)
        _positive(max_lifetime_ns, "FleetingWalls max_lifetime_ns", integer=True)
        _positive(median_levels, "FleetingWalls median_levels", integer=True)
        _positive(max_traded, "FleetingWalls max_traded")
        self.tick_size = float(tick_size)
        self.k = float(k)
        self.within_ticks = within_ticks
        self.max_lifetime_ns = max_lifetime_ns
        self.median_levels = median_levels
        self.max_traded = float(max_traded)
        super().__init__(book=book)
        self._walls: dict[tuple[BookSide, float], _Wall] = {}

    def reset(self) -> None:
        super().reset()
        self._walls.clear()

    def _suspend(self) -> Sequence[AnalyticEvent]:
        self._walls.clear()
        return NOTHING

    def _median(self) -> float:
        book = self.book
        assert book is not None
        bids, asks = book.depth(self.median_levels)
        sizes = [s for _, s in bids]
        sizes.extend(s for _, s in asks)
        return statistics.median(sizes) if sizes else 0.0

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        t = event_time(ev.ts, ev.recv_ns)
        walls = self._walls
        if type(ev) is BookSnapshot:
            walls.clear()
            return NOTHING
        if walls:
            old = [key for key, w in walls.items() if t - w.since >= self.max_lifetime_ns]
            for key in old:
                del walls[key]
        book = self.book
        assert book is not None
        bp, _, ap, _ = book.bbo()
        reach = self.within_ticks * self.tick_size * (1 + 1e-9)
        median = -1.0
        out: list[AnalyticEvent] = []
        for side, levels, best in ((BookSide.BID, ev.bids, bp), (BookSide.ASK, ev.asks, ap)):
            for price, size in levels:
                key = (side, price)
                wall = walls.get(key)
                near = abs(price - best) <= reach
                if wall is None and not near:
                    continue
                if median < 0.0:
                    median = self._median()
                big = size > 0.0 and median > 0.0 and size >= self.k * median
                if wall is None:
                    if big:
                        walls[key] = _Wall(size, t, median, round(abs(price - best) / self.tick_size))
                elif big:
                    wall.peak = max(wall.peak, size)
                else:
                    del walls[key]
                    lifetime = t - wall.since
                    if lifetime < self.max_lifetime_ns and wall.traded < self.max_traded * wall.peak:
                        bound = self._bound
                        assert bound is not None
                        out.append(
                            FleetingWall(
                                bound[0],
                                bound[1],
                                side,
                                price,
                                wall.peak,
                                wall.median,
                                wall.distance,
                                lifetime,
                                wall.traded,
                                ev.ts,
                                ev.recv_ns,
                            )
                        )
        return out or NOTHING

    def _on_other(self, ev: Event) -> Sequence[AnalyticEvent]:
        if type(ev) is Trade:
            tr: Trade = ev
            self._check_instrument(tr)
            side = BookSide.ASK if tr.side is Side.BUY else BookSide.BID if tr.side is Side.SELL else None
            keys = [(side, tr.price)] if side is not None else [(BookSide.ASK, tr.price), (BookSide.BID, tr.price)]
            for key in keys:
                wall = self._walls.get(key)
                if wall is not None:
                    wall.traded += tr.size
        return NOTHING


# --- hidden liquidity ---------------------------------------------------------------------------


class HiddenLiquidity(BookFed):
    """Trades larger than the size displayed at the touch.

    The operator keeps each side's touch (best price and size) as it was
    over the last ``lookback_ns`` of event time. For a trade (taker BUY
    takes asks, SELL bids; a trade without a side is placed by its price:
    at or above the best ask a buy, at or below the best bid a sell, else
    skipped), ``displayed`` is the largest size the touch showed *at the
    trade's price* within ``(t - lookback_ns, t]`` — the look-back absorbs
    a book that reflects the fill before the trade arrives. Consecutive
    trades of one side at one price and timestamp are summed (one taker
    order). When that sum exceeds ``ratio * displayed`` a
    :class:`HiddenFill` is emitted (once per such group). A trade at a price
    the touch never showed within the look-back is not judged (counted in
    :attr:`unjudged`): a sweep through several levels is not hidden
    liquidity. Trades while the book is unusable (or older than
    ``max_age_ns`` past the book's last change) are not judged either: a
    :class:`~wsmux.analytics.Suspended` says so.

    Defaults: ratio 1 (any excess), look-back 1 s. O(1) amortized per
    event (a short deque of touch changes per side).
    """

    name = "hidden-liquidity"
    accepts = (*BOOK_EVENTS, Trade)

    def __init__(
        self,
        *,
        ratio: float = 1.0,
        lookback_ns: int = 1_000_000_000,
        max_age_ns: int | None = None,
        book: BookSource | None = None,
    ) -> None:
        _positive(ratio, "HiddenLiquidity ratio")
        _positive(lookback_ns, "HiddenLiquidity lookback_ns", integer=True)
        self.ratio = float(ratio)
        self.lookback_ns = lookback_ns
        super().__init__(book=book, max_age_ns=max_age_ns)
        # per side: (time, price, size) of each touch change, oldest first
        self._touch: tuple[deque[tuple[int, float, float]], deque[tuple[int, float, float]]] = (deque(), deque())
        self._group: tuple[Side, float, int | None] | None = None
        self._group_size = 0.0
        self._group_flagged = False
        self.unjudged = 0

    def reset(self) -> None:
        super().reset()
        for d in self._touch:
            d.clear()
        self._group = None
        self._group_size = 0.0
        self._group_flagged = False
        self.unjudged = 0

    def _suspend(self) -> Sequence[AnalyticEvent]:
        for d in self._touch:
            d.clear()
        self._group = None
        return NOTHING

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        book = self.book
        assert book is not None
        t = event_time(ev.ts, ev.recv_ns)
        bp, bs, ap, as_ = book.bbo()
        for hist, price, size in ((self._touch[0], bp, bs), (self._touch[1], ap, as_)):
            if price == price and (not hist or hist[-1][1] != price or hist[-1][2] != size):  # noqa: PLR0124
                hist.append((t, price, size))
            cutoff = t - self.lookback_ns
            # keep the last state that began before the cutoff: it was shown within the look-back
            while len(hist) > 1 and hist[1][0] <= cutoff:
                hist.popleft()
        return NOTHING

    def _displayed(self, side_index: int, price: float, t: int) -> float:
        cutoff = t - self.lookback_ns
        best = 0.0
        hist = self._touch[side_index]
        for i, (since, p, size) in enumerate(hist):
            # state i held from `since` until the next state's start
            until = hist[i + 1][0] if i + 1 < len(hist) else None
            if until is not None and until <= cutoff:
                continue
            if since > t:
                break
            if p == price and size > best:
                best = size
        return best

    def _on_other(self, ev: Event) -> Sequence[AnalyticEvent]:
        if type(ev) is not Trade:
            return NOTHING
        tr: Trade = ev
        self._check_instrument(tr)
        blocked = self._require_book(tr.ts, tr.recv_ns)
        if blocked is not None:
            return blocked
        side = tr.side
        if side is None:
            book = self.book
            assert book is not None
            bp, _, ap, _ = book.bbo()
            side = Side.BUY if tr.price >= ap else Side.SELL if tr.price <= bp else None
            if side is None:
                self.unjudged += 1
                return NOTHING
        key = (side, tr.price, tr.ts)
        if key == self._group:
            self._group_size += tr.size
        else:
            self._group = key
            self._group_size = tr.size
            self._group_flagged = False
        if self._group_flagged:
            return NOTHING
        t = event_time(tr.ts, tr.recv_ns)
        displayed = self._displayed(1 if side is Side.BUY else 0, tr.price, t)
        if displayed <= 0.0:
            self.unjudged += 1
            return NOTHING
        if self._group_size > self.ratio * displayed:
            self._group_flagged = True
            assert self._bound is not None
            return (
                HiddenFill(
                    self._bound[0], self._bound[1], side, tr.price, self._group_size, displayed, tr.ts, tr.recv_ns
                ),
            )
        return NOTHING
