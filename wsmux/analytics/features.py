"""Book and order-flow features: each an :class:`~wsmux.analytics.Operator`
fed one venue's book events.

* :class:`OrderFlowImbalance` — order-flow imbalance from best-level changes
  (Cont, Kukanov, Stoikov 2014) and its multi-level form (Xu, Gould, Howison
  2019), summed over event windows or clock buckets → :class:`OrderFlow`.
* :class:`BookImbalance` — (bid - ask) / (bid + ask) depth over the best
  N levels → :class:`Imbalance`.
* :class:`WeightedMid` — mid and size-weighted mid (the simple "microprice";
  *not* Stoikov's adjusted microprice) → :class:`WeightedMidPrice`.
* :class:`SpreadDepth` — time-weighted spread and depth statistics per
  clock bucket → :class:`SpreadDepthStats`.
* :class:`MidVolatility` — realized volatility of the mid on a clock grid →
  :class:`Volatility`.

Each reads its own book built from the events or a live book
(``book=mux.book(venue, symbol)``), suspends on an invalid or stale book
(:class:`~wsmux.analytics.Suspended`) and never bridges a gap: state that
compares one book with the previous one starts again after a resync. Times
are the venue's event times (the receive time where a venue sends none).

Formulas and references: ``docs/analytics/features.rst``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from wsmux.analytics._bookfed import BookFed, BookSource, event_time
from wsmux.analytics._operator import NOTHING, AnalyticEvent
from wsmux.analytics.stats import RealizedVolatility
from wsmux.convert import register_event
from wsmux.errors import ConfigError
from wsmux.model import BookSnapshot, BookUpdate, Levels, event

__all__ = [
    "BookImbalance",
    "Imbalance",
    "MidVolatility",
    "OrderFlow",
    "OrderFlowImbalance",
    "SpreadDepth",
    "SpreadDepthStats",
    "Volatility",
    "WeightedMid",
    "WeightedMidPrice",
]

_INF = math.inf
_NAN = math.nan


def _positive_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{what} must be a positive int, not {value!r}")
    return value


# --- output events -------------------------------------------------------------------


@event
class OrderFlow(AnalyticEvent):
    """Order-flow imbalance summed over one window.

    Attributes:
        ofi: the best-level OFI (Cont-Kukanov-Stoikov), in base units:
            positive = net buying pressure.
        ofi_levels: the OFI of each of the best ``levels`` levels (Xu-Gould-
            Howison), best first; ``ofi_levels[0] == ofi``.
        start_ts: clock buckets: the bucket's start (ns, aligned to multiples
            of the interval); event windows: the time of the first event.
        end_ts: clock buckets: the bucket's end (exclusive); event windows:
            the time of the last event.
        events: the book changes summed (pairs of consecutive books).
        complete: False when the window was cut short by a suspension (a
            gap, a stale or disconnected book): it covers only the changes
            before it.
    """

    venue: str
    symbol: str
    ofi: float
    ofi_levels: tuple[float, ...]
    start_ts: int
    end_ts: int
    events: int
    complete: bool
    ts: int | None
    recv_ns: int


@event
class Imbalance(AnalyticEvent):
    """Depth imbalance over the best ``levels`` levels: ``value`` =
    ``(bid_size - ask_size) / (bid_size + ask_size)``, in [-1, 1]."""

    venue: str
    symbol: str
    levels: int
    value: float
    bid_size: float
    ask_size: float
    ts: int | None
    recv_ns: int


@event
class WeightedMidPrice(AnalyticEvent):
    """Mid and size-weighted mid of the best bid and ask.

    Attributes:
        mid: ``(bid + ask) / 2``.
        weighted_mid: ``(bid * ask_size + ask * bid_size) / (bid_size + ask_size)``,
            in [bid, ask]: the side with more size pushes the price towards
            the other side.
        spread: ``ask - bid``.
    """

    venue: str
    symbol: str
    bid: float
    ask: float
    mid: float
    weighted_mid: float
    spread: float
    ts: int | None
    recv_ns: int


@event
class SpreadDepthStats(AnalyticEvent):
    """Spread and depth over one clock bucket ``[start_ts, end_ts)``, each
    state weighted by how long it held (time-weighted means).

    Attributes:
        mean_spread: time-weighted mean of ``ask - bid``.
        min_spread, max_spread: extremes of the spread over the bucket.
        mean_bid_depth, mean_ask_depth: time-weighted mean size on the best
            ``levels`` levels of each side.
        covered_ns: how much of the bucket a usable book covered (less than
            the bucket when the book was suspended or started mid-bucket).
        changes: book changes in the bucket.
    """

    venue: str
    symbol: str
    levels: int
    start_ts: int
    end_ts: int
    mean_spread: float
    min_spread: float
    max_spread: float
    mean_bid_depth: float
    mean_ask_depth: float
    covered_ns: int
    changes: int
    ts: int | None
    recv_ns: int


@event
class Volatility(AnalyticEvent):
    """Realized volatility of the mid (``sqrt(sum r^2)`` of the last
    ``returns`` log returns on the grid of ``interval_ns``), emitted when a
    grid point closes; ``annualized`` scales it to a 365-day year."""

    venue: str
    symbol: str
    interval_ns: int
    returns: int
    value: float
    annualized: float
    ts: int | None
    recv_ns: int


for _cls, _tag in (
    (OrderFlow, "order_flow"),
    (Imbalance, "imbalance"),
    (WeightedMidPrice, "weighted_mid"),
    (SpreadDepthStats, "spread_depth"),
    (Volatility, "volatility"),
):
    register_event(_cls, _tag)


# --- order-flow imbalance ---------------------------------------------------------------------


class OrderFlowImbalance(BookFed):
    """Order-flow imbalance (OFI) of the best ``levels`` levels.

    For consecutive books ``n-1``, ``n`` and each level ``m`` (the m-th best
    price ``P`` and its size ``q`` on each side; a missing level has size 0
    and price -inf for bids, +inf for asks)::

        e_n = 1{Pb_n >= Pb_n-1} qb_n - 1{Pb_n <= Pb_n-1} qb_n-1
            - 1{Pa_n <= Pa_n-1} qa_n + 1{Pa_n >= Pa_n-1} qa_n-1

    and the window's OFI is the sum of ``e_n`` over its book changes. Level 1
    is Cont, Kukanov & Stoikov (2014); levels 1..M the multi-level OFI of Xu,
    Gould & Howison (2019). Windows are either clock buckets of
    ``interval_ns`` by event time (aligned to multiples of the interval; a
    bucket closes when the first event at or past its end arrives, and only
    buckets with at least one change are emitted) or ``events`` book changes.
    An event older than its bucket's start is summed into the open bucket.

    The first book after a (re)sync has no predecessor: it contributes
    nothing. A suspension emits the open window with ``complete=False``.

    Cost: O(levels) per book event (O(1) for ``levels=1``).
    """

    name = "ofi"

    def __init__(
        self,
        levels: int = 1,
        *,
        interval_ns: int | None = None,
        events: int | None = None,
        book: BookSource | None = None,
    ) -> None:
        self.levels = _positive_int(levels, "OrderFlowImbalance levels")
        if (interval_ns is None) == (events is None):
            raise ConfigError("OrderFlowImbalance: give exactly one of interval_ns (clock buckets) or events")
        self.interval_ns = None if interval_ns is None else _positive_int(interval_ns, "interval_ns")
        self.events = None if events is None else _positive_int(events, "events")
        self.name = f"ofi-{levels}"
        super().__init__(book=book)
        self._watch = _TopWatch(levels)
        self._prev: tuple[tuple[float, float, float, float], ...] | None = None
        self._sums = [0.0] * levels
        self._n = 0
        self._start = 0
        self._end = 0
        self._last_ts: int | None = None
        self._last_recv = 0

    def reset(self) -> None:
        super().reset()
        self._prev = None
        self._watch.forget()
        self._sums = [0.0] * self.levels
        self._n = 0

    def _tops(self) -> tuple[tuple[float, float, float, float], ...]:
        """``(bid price, bid size, ask price, ask size)`` of each of the best levels."""
        book = self.book
        assert book is not None
        m = self.levels
        if m == 1:
            top = book.bbo()  # one tuple, no copy, when both sides are there
            if top[0] != top[0] or top[2] != top[2]:
                top = _fill(top)
            return (top,)
        bids, asks = book.depth(m)
        self._watch.read(bids, asks)
        bids += ((-_INF, 0.0),) * (m - len(bids))
        asks += ((_INF, 0.0),) * (m - len(asks))
        return tuple((b[0], b[1], a[0], a[1]) for b, a in zip(bids, asks, strict=True))

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        prev = self._prev
        # an update below the top levels changes nothing there: every term is 0
        now = prev if prev is not None and self.levels > 1 and self._watch.unchanged(ev) else self._tops()
        self._prev = now
        t = event_time(ev.ts, ev.recv_ns)
        out: Sequence[AnalyticEvent] = NOTHING
        step = self.interval_ns
        if step is not None:
            if self._n and t >= self._end:
                out = (self._emit(True, ev.ts, ev.recv_ns),)
            if self._n == 0:
                self._start = t - t % step
                self._end = self._start + step
        elif self._n == 0:
            self._start = t
        if prev is None:
            return out
        sums = self._sums
        for m in range(self.levels):
            pb, qb, pa, qa = now[m]
            pb0, qb0, pa0, qa0 = prev[m]
            e = qb if pb >= pb0 else 0.0
            if pb <= pb0:
                e -= qb0
            if pa <= pa0:
                e -= qa
            if pa >= pa0:
                e += qa0
            sums[m] += e
        self._n += 1
        self._last_ts = ev.ts
        self._last_recv = ev.recv_ns
        if step is None:
            self._end = t
            if self._n >= self.events:  # type: ignore[operator]
                return (self._emit(True, ev.ts, ev.recv_ns),)
        return out

    def _emit(self, complete: bool, ts: int | None, recv_ns: int) -> OrderFlow:
        sums = tuple(self._sums)
        out = OrderFlow(
            self._bound[0] if self._bound else "",
            self._bound[1] if self._bound else "",
            sums[0],
            sums,
            self._start,
            self._end,
            self._n,
            complete,
            ts,
            recv_ns,
        )
        self._sums = [0.0] * self.levels
        self._n = 0
        return out

    def _suspend(self) -> Sequence[AnalyticEvent]:
        self._prev = None
        self._watch.forget()
        return self.flush()

    def flush(self) -> Sequence[AnalyticEvent]:
        """End of data: the open window, marked ``complete=False`` (if it has changes)."""
        if self._n:
            return (self._emit(False, self._last_ts, self._last_recv),)
        return NOTHING


class _TopWatch:
    """Whether a book update can have changed the best ``n`` levels last read.

    A level strictly worse than the n-th best of its side (lower for bids,
    higher for asks) can neither be in the top n nor enter it, nor can its
    removal change it: an update that touches only such levels leaves the
    top n as it was, and a feature over the top n need not read the book
    again. With fewer than n levels on a side every change counts.
    """

    __slots__ = ("n", "worst_ask", "worst_bid")

    def __init__(self, n: int) -> None:
        self.n = n
        self.forget()

    def forget(self) -> None:
        """Nothing is known: the next update counts whatever it touches."""
        self.worst_bid = -_INF
        self.worst_ask = _INF

    def read(self, bids: Levels, asks: Levels) -> None:
        """The top n just read (best first)."""
        n = self.n
        self.worst_bid = bids[n - 1][0] if len(bids) >= n else -_INF
        self.worst_ask = asks[n - 1][0] if len(asks) >= n else _INF

    def unchanged(self, ev: BookUpdate | BookSnapshot) -> bool:
        """True if ``ev`` cannot have changed the top n last read."""
        if type(ev) is not BookUpdate:
            return False
        wb = self.worst_bid
        wa = self.worst_ask
        return all(level[0] < wb for level in ev.bids) and all(level[0] > wa for level in ev.asks)


def _fill(top: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A top of book with an empty side as a level of size 0 at -inf (bid) / +inf (ask)."""
    bp, bs, ap, as_ = top
    if bp != bp:  # noqa: PLR0124
        bp, bs = -_INF, 0.0
    if ap != ap:  # noqa: PLR0124
        ap, as_ = _INF, 0.0
    return (bp, bs, ap, as_)


# --- book imbalance and weighted mid -------------------------------------------------------


class BookImbalance(BookFed):
    """Depth imbalance over the best ``levels`` levels, emitted as an
    :class:`Imbalance` on every book change that moves it::

        value = (sum of bid sizes - sum of ask sizes) / (their sum)  in [-1, 1]

    A book with no size on either side emits nothing. Cost: O(levels) per
    book event.
    """

    name = "imbalance"

    def __init__(self, levels: int = 5, *, book: BookSource | None = None) -> None:
        self.levels = _positive_int(levels, "BookImbalance levels")
        self.name = f"imbalance-{levels}"
        super().__init__(book=book)
        self._last = _NAN
        self._watch = _TopWatch(levels)

    def reset(self) -> None:
        super().reset()
        self._last = _NAN
        self._watch.forget()

    def _suspend(self) -> Sequence[AnalyticEvent]:
        self._watch.forget()
        return NOTHING

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        book = self.book
        assert book is not None
        if self.levels == 1:
            _, bv, _, av = book.bbo()
            bv = 0.0 if bv != bv else bv  # noqa: PLR0124
            av = 0.0 if av != av else av  # noqa: PLR0124
        else:
            watch = self._watch
            if watch.unchanged(ev):
                return NOTHING
            bids, asks = book.depth(self.levels)
            watch.read(bids, asks)
            bv = math.fsum([s for _, s in bids])
            av = math.fsum([s for _, s in asks])
        total = bv + av
        if total <= 0.0:
            return NOTHING
        value = (bv - av) / total
        if value == self._last:
            return NOTHING
        self._last = value
        bound = self._bound
        assert bound is not None
        return (Imbalance(bound[0], bound[1], self.levels, value, bv, av, ev.ts, ev.recv_ns),)


class WeightedMid(BookFed):
    """Mid and size-weighted mid of the best bid and ask, emitted as a
    :class:`WeightedMidPrice` whenever the best bid or ask (price or size)
    changes::

        weighted_mid = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)

    This is the size-weighted mid that is often called "microprice"; it is
    *not* Stoikov's (2018) microprice, which adjusts the mid by the expected
    future mid given imbalance and spread, estimated from data. A book with
    an empty side emits nothing. Cost: O(1) per book event.
    """

    name = "weighted-mid"

    def __init__(self, *, book: BookSource | None = None) -> None:
        super().__init__(book=book)
        self._last: tuple[float, float, float, float] | None = None

    def reset(self) -> None:
        super().reset()
        self._last = None

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        book = self.book
        assert book is not None
        top = book.bbo()
        if top == self._last:
            return NOTHING
        self._last = top
        bp, bs, ap, as_ = top
        total = bs + as_
        if not total > 0.0:  # nan (an empty side) or no size
            return NOTHING
        wmid = (bp * as_ + ap * bs) / total
        bound = self._bound
        assert bound is not None
        return (WeightedMidPrice(bound[0], bound[1], bp, ap, (bp + ap) / 2.0, wmid, ap - bp, ev.ts, ev.recv_ns),)


# --- spread and depth statistics ------------------------------------------------------------


class SpreadDepth(BookFed):
    """Time-weighted spread and depth statistics per clock bucket of
    ``interval_ns`` (aligned to multiples of it), emitted as
    :class:`SpreadDepthStats` when the first event at or after the bucket's
    end arrives.

    Each book state holds from its event time until the next book event's,
    so a bucket's mean spread is ``sum(spread_i * held_i) / sum(held_i)``
    (a state that spans a bucket boundary is split between the buckets;
    a long quiet stretch closes at most one bucket per state with data,
    empty buckets are not emitted). A suspension drops the current state
    (its end is not known in event time, so it is not credited) and the time
    until the book is usable again is not covered (``covered_ns`` says how
    much was). An event older than the latest one (a venue's
    snapshot without a timestamp filed at its receive time, say) changes the
    state without time credit: a state holds from the latest time seen.
    Depth is the summed size of the best ``levels`` levels per side.
    Cost: O(levels) per book event.
    """

    name = "spread-depth"

    def __init__(self, interval_ns: int, levels: int = 5, *, book: BookSource | None = None) -> None:
        self.interval_ns = _positive_int(interval_ns, "SpreadDepth interval_ns")
        self.levels = _positive_int(levels, "SpreadDepth levels")
        super().__init__(book=book)
        self._state: tuple[float, float, float] | None = None  # spread, bid depth, ask depth
        self._watch = _TopWatch(levels)
        self._state_t = 0
        self._last_event: tuple[int | None, int] = (None, 0)
        self._clear_bucket(0)

    def _clear_bucket(self, start: int) -> None:
        self._start = start
        self._held = 0
        self._spread_w = 0.0
        self._bid_w = 0.0
        self._ask_w = 0.0
        self._min = _INF
        self._max = -_INF
        self._changes = 0

    def reset(self) -> None:
        super().reset()
        self._state = None
        self._watch.forget()
        self._clear_bucket(0)

    def _accrue(self, until: int, ts: int | None, recv_ns: int) -> list[AnalyticEvent]:
        """Credit the current state with the time from its start up to
        ``until``, closing the buckets it passes."""
        state = self._state
        assert state is not None
        out: list[AnalyticEvent] = []
        step = self.interval_ns
        spread, bid_depth, ask_depth = state
        t = self._state_t
        while t < until:
            end = self._start + step
            upto = min(until, end)
            held = upto - t
            self._held += held
            self._spread_w += spread * held
            self._bid_w += bid_depth * held
            self._ask_w += ask_depth * held
            t = upto
            if t == end:
                out.append(self._emit(ts, recv_ns))
                # buckets the unchanged state held throughout are not emitted
                nxt = until - until % step if until >= end + step else end
                self._clear_bucket(nxt)
                self._min = self._max = spread
                t = nxt
        self._state_t = until
        return out

    def _emit(self, ts: int | None, recv_ns: int) -> SpreadDepthStats:
        held = self._held
        bound = self._bound
        assert bound is not None
        return SpreadDepthStats(
            bound[0],
            bound[1],
            self.levels,
            self._start,
            self._start + self.interval_ns,
            # a weighted mean lies within the extremes: clamp the last-bit rounding
            min(max(self._spread_w / held, self._min), self._max) if held else _NAN,
            self._min,
            self._max,
            self._bid_w / held if held else _NAN,
            self._ask_w / held if held else _NAN,
            held,
            self._changes,
            ts,
            recv_ns,
        )

    def flush(self) -> Sequence[AnalyticEvent]:
        """End of data: the open bucket, covering up to the last book event."""
        if not self._changes:
            return NOTHING
        ts, recv_ns = self._last_event
        out = self._emit(ts, recv_ns)
        self._state = None
        self._clear_bucket(self._start + self.interval_ns)
        return (out,)

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        t = event_time(ev.ts, ev.recv_ns)
        self._last_event = (ev.ts, ev.recv_ns)
        out: Sequence[AnalyticEvent] = NOTHING
        if self._state is not None:
            if t > self._state_t:
                out = self._accrue(t, ev.ts, ev.recv_ns)
        else:
            # no state carried over (the first book, or after a suspension): time starts counting now
            if t >= self._start + self.interval_ns or not self._changes:
                if self._changes:
                    out = (self._emit(ev.ts, ev.recv_ns),)
                self._clear_bucket(t - t % self.interval_ns)
            self._state_t = max(t, self._start)
        if self._state is not None and self._watch.unchanged(ev):
            self._changes += 1  # a change below the top levels: the state holds on
            return out
        book = self.book
        assert book is not None
        bids, asks = book.depth(self.levels)
        self._watch.read(bids, asks)
        if not bids or not asks:
            self._state = None
            return out
        spread = asks[0][0] - bids[0][0]
        self._state = (spread, math.fsum([s for _, s in bids]), math.fsum([s for _, s in asks]))
        self._min = min(self._min, spread)
        self._max = max(self._max, spread)
        self._changes += 1
        return out

    def _suspend(self) -> Sequence[AnalyticEvent]:
        self._state = None
        self._watch.forget()
        return NOTHING


# --- realized volatility of the mid --------------------------------------------------------


class MidVolatility(BookFed):
    """Realized volatility of the mid price on a clock grid (see
    :class:`~wsmux.analytics.stats.RealizedVolatility`): the mid is sampled
    previous-tick at multiples of ``interval_ns`` and a :class:`Volatility`
    is emitted whenever a book event closes grid points. A suspension starts
    the grid again (no return spans a gap). Cost: O(1) amortized per book event.
    """

    name = "mid-volatility"

    def __init__(self, interval_ns: int, window: int, *, book: BookSource | None = None) -> None:
        self._rv = RealizedVolatility(
            _positive_int(interval_ns, "MidVolatility interval_ns"), _positive_int(window, "MidVolatility window")
        )
        super().__init__(book=book)

    def reset(self) -> None:
        super().reset()
        self._rv.reset()

    def _on_book(self, ev: BookUpdate | BookSnapshot) -> Sequence[AnalyticEvent]:
        book = self.book
        assert book is not None
        bp, _, ap, _ = book.bbo()
        mid = (bp + ap) / 2.0
        if not mid > 0.0:
            return NOTHING
        rv = self._rv
        if not rv.add(mid, event_time(ev.ts, ev.recv_ns)) or math.isnan(rv.value):
            return NOTHING
        bound = self._bound
        assert bound is not None
        n = min(rv.returns, rv.window)
        return (Volatility(bound[0], bound[1], rv.interval_ns, n, rv.value, rv.annualized(), ev.ts, ev.recv_ns),)

    def _suspend(self) -> Sequence[AnalyticEvent]:
        self._rv.reset()
        return NOTHING
