"""Online statistics: the building blocks of the analytics operators.

Everything here is sans-I/O and clock-free: times are *event* times in
integer nanoseconds, handed in with each sample, so a replay of a day of data
gives the same numbers as the live run. Every ``add`` is O(1) amortized.

* :class:`EWMA` — exponentially weighted mean and variance, decayed by event
  time (a half-life, not a sample count).
* :class:`RollingWindow` — exact sum, mean and variance over the last *n*
  samples or the last *span* nanoseconds.
* :class:`RollingMinMax` — exact minimum and maximum over the same windows
  (monotonic deques).
* :class:`QuantileSketch` — streaming quantiles with a guaranteed relative
  error (log-spaced buckets, the DDSketch scheme).
* :class:`GridSampler` and :class:`RealizedVolatility` — previous-tick
  sampling on a clock grid and realized volatility of its log returns.

Theory of operation of the exact windows
----------------------------------------
A rolling sum kept by adding the new sample and subtracting the evicted one
accumulates rounding error without bound over a long run (a day of prices
near 10^5 loses digits every few million updates). :class:`RollingWindow`
keeps the sum with Neumaier's compensated summation and the variance with
Welford's add/remove updates, and *rebuilds* both exactly from the samples in
the window (``math.fsum`` and a two-pass variance) once per window length of
evictions. The rebuild costs O(n) once per n evictions — O(1) amortized — and
caps the error at what one window's worth of compensated updates can
accumulate (a few ulps), so nothing drifts however long it runs.

The full formulas, error bounds and references are in ``docs/analytics/stats.rst``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from wsmux.errors import ConfigError

__all__ = [
    "EWMA",
    "GridSampler",
    "QuantileSketch",
    "RealizedVolatility",
    "RollingMinMax",
    "RollingWindow",
]

_LN2 = math.log(2.0)


def _check_window(size: int | None, span_ns: int | None, who: str) -> None:
    if (size is None) == (span_ns is None):
        raise ConfigError(f"{who}: give exactly one of size (a sample count) or span_ns (a duration)")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise ConfigError(f"{who}: size must be a positive int, not {size!r}")
    if span_ns is not None and (not isinstance(span_ns, int) or span_ns < 1):
        raise ConfigError(f"{who}: span_ns must be a positive int (nanoseconds), not {span_ns!r}")


class EWMA:
    """Exponentially weighted mean and variance, decayed by event time.

    A sample observed at time ``t_i`` weighs ``2 ** (-(t - t_i) / halflife_ns)``
    at time ``t``: the weight halves every ``halflife_ns`` of *event* time,
    however many samples arrive. :attr:`mean` is the weighted mean and
    :attr:`variance` the weighted (population) variance
    ``sum(w_i (x_i - mean)^2) / sum(w_i)``, updated with the weighted
    Welford/West recurrence (stable; no sum of squares).

    A sample older than the last one (``t`` going backwards) is weighed as if
    it arrived at the last time and counted in :attr:`late`.

    Args:
        halflife_ns: the half-life of a sample's weight, in nanoseconds.

    Cost: O(1) per :meth:`add` (one ``exp``).
    """

    __slots__ = ("_k", "_last_t", "_s", "_w", "count", "halflife_ns", "late", "mean")

    def __init__(self, halflife_ns: int) -> None:
        if not isinstance(halflife_ns, int) or halflife_ns < 1:
            raise ConfigError(f"EWMA: halflife_ns must be a positive int, not {halflife_ns!r}")
        self.halflife_ns = halflife_ns
        self._k = -_LN2 / halflife_ns
        self.reset()

    def reset(self) -> None:
        """Forget every sample."""
        self.mean = math.nan
        self._w = 0.0
        self._s = 0.0
        self._last_t: int | None = None
        self.count = 0
        self.late = 0

    def add(self, x: float, t_ns: int) -> None:
        """Add sample ``x`` observed at event time ``t_ns``.

        Raises:
            ConfigError: ``x`` is not finite (it would poison every later mean).
        """
        if not math.isfinite(x):
            raise ConfigError(f"EWMA.add: {x!r} is not a finite number")
        last = self._last_t
        if last is None:
            self.mean = x
            self._w = 1.0
            self._s = 0.0
            self._last_t = t_ns
            self.count = 1
            return
        if t_ns < last:
            self.late += 1
        elif t_ns > last:
            decay = math.exp(self._k * (t_ns - last))
            self._w *= decay
            self._s *= decay
            self._last_t = t_ns
        w = self._w + 1.0
        old = self.mean
        mean = old + (x - old) / w
        self._s += (x - old) * (x - mean)
        self._w = w
        self.mean = mean
        self.count += 1

    @property
    def variance(self) -> float:
        """The weighted population variance (``nan`` before the first sample)."""
        return self._s / self._w if self._w > 0.0 else math.nan

    @property
    def std(self) -> float:
        """The square root of :attr:`variance`."""
        v = self.variance
        return math.sqrt(v) if v > 0.0 else (0.0 if v == 0.0 else math.nan)

    @property
    def weight(self) -> float:
        """The total weight of the samples, as of the last sample's time."""
        return self._w


class RollingWindow:
    """Exact sum, mean and variance over a sliding window of samples.

    The window holds either the last ``size`` samples or the samples of the
    last ``span_ns`` nanoseconds of event time (a sample at ``t`` leaves when
    a sample or :meth:`expire` at ``t' >= t + span_ns`` arrives: the window is
    ``(now - span_ns, now]``). Give exactly one.

    Sums are compensated and periodically rebuilt (see the module docstring):
    the error does not grow with the length of the run.

    Cost: O(1) amortized per :meth:`add`; O(1) reads.
    """

    __slots__ = (
        "_c",
        "_m2",
        "_mean",
        "_s",
        "_since_rebuild",
        "_times",
        "_values",
        "size",
        "span_ns",
    )

    def __init__(self, *, size: int | None = None, span_ns: int | None = None) -> None:
        _check_window(size, span_ns, "RollingWindow")
        self.size = size
        self.span_ns = span_ns
        self._values: deque[float] = deque()
        self._times: deque[int] = deque()
        self.reset()

    def reset(self) -> None:
        """Empty the window."""
        self._values.clear()
        self._times.clear()
        self._s = 0.0
        self._c = 0.0
        self._mean = 0.0
        self._m2 = 0.0
        self._since_rebuild = 0

    def add(self, x: float, t_ns: int = 0) -> None:
        """Add sample ``x`` (at event time ``t_ns``; needed for time windows).

        Raises:
            ConfigError: ``x`` is not finite.
        """
        if not math.isfinite(x):
            raise ConfigError(f"RollingWindow.add: {x!r} is not a finite number")
        values = self._values
        values.append(x)
        # Neumaier: keep the low-order bits lost by the float sum in _c
        s = self._s
        t = s + x
        self._c += (s - t) + x if abs(s) >= abs(x) else (x - t) + s
        self._s = t
        n = len(values)
        delta = x - self._mean
        self._mean += delta / n
        self._m2 += delta * (x - self._mean)
        if self.span_ns is not None:
            self._times.append(t_ns)
            self._evict_before(t_ns - self.span_ns)
        elif n > self.size:  # type: ignore[operator]
            self._pop()

    def expire(self, now_ns: int) -> None:
        """Drop the samples a time window no longer holds at ``now_ns``."""
        if self.span_ns is not None:
            self._evict_before(now_ns - self.span_ns)

    def _evict_before(self, cutoff: int) -> None:
        times = self._times
        while times and times[0] <= cutoff:
            times.popleft()
            self._pop()

    def _pop(self) -> None:
        values = self._values
        x = values.popleft()
        n = len(values)
        if n == 0:
            self._s = self._c = self._mean = self._m2 = 0.0
            self._since_rebuild = 0
            return
        s = self._s
        t = s - x
        self._c += (s - t) - x if abs(s) >= abs(x) else (-x - t) + s
        self._s = t
        old = self._mean
        self._mean = old - (x - old) / n
        self._m2 -= (x - old) * (x - self._mean)
        self._since_rebuild += 1
        if self._since_rebuild >= n:
            self._rebuild()

    def _rebuild(self) -> None:
        values = self._values
        n = len(values)
        total = math.fsum(values)
        mean = total / n
        self._s = total
        self._c = 0.0
        self._mean = mean
        self._m2 = math.fsum((v - mean) * (v - mean) for v in values)
        self._since_rebuild = 0

    def __len__(self) -> int:
        return len(self._values)

    @property
    def sum(self) -> float:
        """The sum of the samples in the window (0.0 when empty)."""
        return self._s + self._c

    @property
    def mean(self) -> float:
        """The mean of the window (``nan`` when empty)."""
        n = len(self._values)
        return (self._s + self._c) / n if n else math.nan

    @property
    def variance(self) -> float:
        """The population variance of the window (``nan`` when empty)."""
        n = len(self._values)
        return max(self._m2, 0.0) / n if n else math.nan

    @property
    def sample_variance(self) -> float:
        """The sample (n-1) variance (``nan`` with fewer than two samples)."""
        n = len(self._values)
        return max(self._m2, 0.0) / (n - 1) if n > 1 else math.nan

    @property
    def std(self) -> float:
        """The population standard deviation."""
        return math.sqrt(self.variance)

    def values(self) -> tuple[float, ...]:
        """The samples in the window, oldest first (a copy; O(n))."""
        return tuple(self._values)


class RollingMinMax:
    """Exact minimum and maximum over a sliding window (count or time, as
    :class:`RollingWindow`), with two monotonic deques.

    Each deque holds the candidates for the extreme in window order; a new
    sample pops every candidate it dominates from the back, so each sample
    is pushed and popped at most once: O(1) amortized per :meth:`add`,
    O(1) reads.
    """

    __slots__ = ("_count", "_maxq", "_minq", "_n", "size", "span_ns")

    def __init__(self, *, size: int | None = None, span_ns: int | None = None) -> None:
        _check_window(size, span_ns, "RollingMinMax")
        self.size = size
        self.span_ns = span_ns
        # entries: (sample index, time, value)
        self._minq: deque[tuple[int, int, float]] = deque()
        self._maxq: deque[tuple[int, int, float]] = deque()
        self.reset()

    def reset(self) -> None:
        """Empty the window."""
        self._minq.clear()
        self._maxq.clear()
        self._n = 0
        self._count = 0

    def add(self, x: float, t_ns: int = 0) -> None:
        """Add sample ``x`` (at event time ``t_ns``; needed for time windows).

        Raises:
            ConfigError: ``x`` is ``nan``.
        """
        if x != x:  # noqa: PLR0124 - nan
            raise ConfigError("RollingMinMax.add: nan is not a value")
        i = self._n
        self._n = i + 1
        entry = (i, t_ns, x)
        minq = self._minq
        while minq and minq[-1][2] >= x:
            minq.pop()
        minq.append(entry)
        maxq = self._maxq
        while maxq and maxq[-1][2] <= x:
            maxq.pop()
        maxq.append(entry)
        self._expire(i, t_ns)

    def expire(self, now_ns: int) -> None:
        """Drop what a time window no longer holds at ``now_ns``."""
        if self.span_ns is not None:
            self._expire(self._n - 1, now_ns)

    def _expire(self, last: int, now_ns: int) -> None:
        if self.size is not None:
            first = last - self.size + 1
            for q in (self._minq, self._maxq):
                while q and q[0][0] < first:
                    q.popleft()
        else:
            cutoff = now_ns - self.span_ns  # type: ignore[operator]
            for q in (self._minq, self._maxq):
                while q and q[0][1] <= cutoff:
                    q.popleft()

    @property
    def min(self) -> float:
        """The smallest sample in the window (``nan`` when empty)."""
        return self._minq[0][2] if self._minq else math.nan

    @property
    def max(self) -> float:
        """The largest sample in the window (``nan`` when empty)."""
        return self._maxq[0][2] if self._maxq else math.nan


class QuantileSketch:
    """Streaming quantiles with a relative-error guarantee (DDSketch).

    Values go into log-spaced buckets: a positive ``x`` into bucket
    ``ceil(log(x) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``, negatives
    into a mirrored set, zeros into their own count. :meth:`quantile` walks
    the buckets to the rank ``floor(q * (n - 1))`` and returns the bucket's
    centre ``2 * gamma**i / (gamma + 1)``, which is within a relative error
    ``a`` of the sample at that rank (the "lower" quantile): for any ``q``,
    ``|estimate - x| <= a * |x|``. Values with ``|x| < min_value`` count as
    zero (absolute error ``min_value``).

    Reference: C. Masson, J. E. Rim, H. K. Lee, "DDSketch: a fast and
    fully-mergeable quantile sketch with relative-error guarantees",
    PVLDB 12(12), 2019.

    Args:
        relative_accuracy: ``a``, in (0, 1).
        min_value: the smallest magnitude told apart from zero.

    Cost: O(1) :meth:`add` and :meth:`remove` (one ``log``); memory and
    :meth:`quantile` O(number of buckets) — about ``log(max/min) / (2a)``
    (a 1% sketch covers 1e-6…1e6 in about 1,400 buckets).
    """

    __slots__ = ("_inv_log_gamma", "_neg", "_pos", "count", "gamma", "min_value", "relative_accuracy", "zeros")

    def __init__(self, relative_accuracy: float = 0.01, min_value: float = 1e-12) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ConfigError(f"QuantileSketch: relative_accuracy must be in (0, 1), not {relative_accuracy!r}")
        if not min_value > 0.0:
            raise ConfigError(f"QuantileSketch: min_value must be positive, not {min_value!r}")
        self.relative_accuracy = relative_accuracy
        self.min_value = min_value
        self.gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        self._pos: dict[int, int] = {}
        self._neg: dict[int, int] = {}
        self.count = 0
        self.zeros = 0

    def reset(self) -> None:
        """Forget every value."""
        self._pos.clear()
        self._neg.clear()
        self.count = 0
        self.zeros = 0

    def _key(self, magnitude: float) -> int:
        return math.ceil(math.log(magnitude) * self._inv_log_gamma)

    def add(self, x: float) -> None:
        """Add value ``x`` (a ``nan`` raises :class:`~wsmux.errors.ConfigError`)."""
        if x > self.min_value:
            k = self._key(x)
            self._pos[k] = self._pos.get(k, 0) + 1
        elif x < -self.min_value:
            k = self._key(-x)
            self._neg[k] = self._neg.get(k, 0) + 1
        elif not math.isnan(x):
            self.zeros += 1
        else:
            raise ConfigError("QuantileSketch.add: nan is not a value")
        self.count += 1

    def remove(self, x: float) -> None:
        """Remove one earlier-added value ``x`` (for sliding windows).

        Raises:
            ConfigError: no value in ``x``'s bucket (a ``ValueError``).
        """
        if x > self.min_value:
            store, k = self._pos, self._key(x)
        elif x < -self.min_value:
            store, k = self._neg, self._key(-x)
        else:
            if self.zeros == 0:
                raise ConfigError(f"QuantileSketch.remove: {x!r} was not added")
            self.zeros -= 1
            self.count -= 1
            return
        n = store.get(k, 0)
        if n == 0:
            raise ConfigError(f"QuantileSketch.remove: {x!r} was not added")
        if n == 1:
            del store[k]
        else:
            store[k] = n - 1
        self.count -= 1

    def merge(self, other: QuantileSketch) -> None:
        """Add every value of ``other`` (same accuracy) to this sketch."""
        if other.gamma != self.gamma or other.min_value != self.min_value:
            raise ConfigError("QuantileSketch.merge: sketches of different accuracy")
        for mine, theirs in ((self._pos, other._pos), (self._neg, other._neg)):
            for k, n in theirs.items():
                mine[k] = mine.get(k, 0) + n
        self.zeros += other.zeros
        self.count += other.count

    def _value(self, k: int) -> float:
        return 2.0 * self.gamma**k / (self.gamma + 1.0)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1) of the values, ``nan`` when empty."""
        if not 0.0 <= q <= 1.0:
            raise ConfigError(f"QuantileSketch.quantile: q must be in [0, 1], not {q!r}")
        if self.count == 0:
            return math.nan
        rank = int(q * (self.count - 1))
        seen = 0
        for k in sorted(self._neg, reverse=True):  # most negative first
            seen += self._neg[k]
            if seen > rank:
                return -self._value(k)
        seen += self.zeros
        if seen > rank:
            return 0.0
        for k in sorted(self._pos):
            seen += self._pos[k]
            if seen > rank:
                return self._value(k)
        raise AssertionError("QuantileSketch counts disagree")  # pragma: no cover

    def quantiles(self, qs: Iterable[float]) -> list[float]:
        """Several quantiles (each O(buckets))."""
        return [self.quantile(q) for q in qs]


class GridSampler:
    """Previous-tick sampling of a price on a clock grid aligned to the epoch.

    The grid points are the multiples of ``interval_ns``. The sample at grid
    point ``b`` is the last price observed at a time ``< b`` (a tick exactly
    on ``b`` belongs to the interval that starts there). :meth:`observe`
    returns the grid points it closed as ``(first_point, count, price)``:
    ``count`` consecutive points starting at ``first_point`` all sample
    ``price`` (with previous-tick sampling every point in a run of empty
    intervals has the same price). Ticks before the first grid point after the
    first tick only set the starting price.

    A tick older than the last one (event time going backwards) is ignored and
    counted in :attr:`late`: a closed grid point is never revised.
    """

    __slots__ = ("_last_t", "_next", "interval_ns", "last_price", "late")

    def __init__(self, interval_ns: int) -> None:
        if not isinstance(interval_ns, int) or interval_ns < 1:
            raise ConfigError(f"GridSampler: interval_ns must be a positive int, not {interval_ns!r}")
        self.interval_ns = interval_ns
        self.reset()

    def reset(self) -> None:
        """Forget the price and the grid position."""
        self.last_price = math.nan
        self._next: int | None = None
        self._last_t: int | None = None
        self.late = 0

    def observe(self, price: float, t_ns: int) -> tuple[int, int, float] | None:
        """Record a tick; returns the grid points closed by time ``t_ns``
        (``(first_point_ns, count, price)``) or None."""
        if self._last_t is not None and t_ns < self._last_t:
            self.late += 1
            return None
        self._last_t = t_ns
        nxt = self._next
        step = self.interval_ns
        closed = None
        if nxt is None:
            self._next = (t_ns // step + 1) * step
        elif t_ns >= nxt:
            count = (t_ns - nxt) // step + 1
            closed = (nxt, count, self.last_price)
            self._next = nxt + count * step
        self.last_price = price
        return closed

    def close_until(self, now_ns: int) -> tuple[int, int, float] | None:
        """Close the grid points up to ``now_ns`` without a new tick (for a
        quiet market: a timer or another venue's event says time moved on)."""
        nxt = self._next
        if nxt is None or now_ns < nxt or (self._last_t is not None and now_ns < self._last_t):
            return None
        count = (now_ns - nxt) // self.interval_ns + 1
        self._next = nxt + count * self.interval_ns
        self._last_t = now_ns
        return (nxt, count, self.last_price)


class RealizedVolatility:
    """Realized volatility of log returns sampled on a clock grid.

    Prices are sampled previous-tick on the grid of ``interval_ns``
    (:class:`GridSampler`); ``r_k = log(p_k / p_{k-1})`` between consecutive
    grid points. :attr:`value` is ``sqrt(sum of r_k^2)`` over the last
    ``window`` returns — the realized volatility over ``window * interval_ns``,
    not annualised (:meth:`annualized` scales it) — with the sum kept
    exactly by a :class:`RollingWindow`.

    Reference: T. G. Andersen, T. Bollerslev, F. X. Diebold, P. Labys,
    "Modeling and Forecasting Realized Volatility", Econometrica 71(2), 2003.

    Cost: O(1) amortized per tick; a jump over many empty intervals adds at
    most ``window`` zero returns.
    """

    __slots__ = ("_prev", "_sampler", "_sq", "returns", "window")

    def __init__(self, interval_ns: int, window: int) -> None:
        self._sampler = GridSampler(interval_ns)
        self._sq = RollingWindow(size=window)
        self.window = window
        self._prev = math.nan
        self.returns = 0

    def reset(self) -> None:
        """Forget every price and return."""
        self._sampler.reset()
        self._sq.reset()
        self._prev = math.nan
        self.returns = 0

    @property
    def interval_ns(self) -> int:
        """The grid interval."""
        return self._sampler.interval_ns

    def add(self, price: float, t_ns: int) -> int:
        """Add a price tick; returns how many grid returns it completed.

        Raises:
            ConfigError: ``price`` is not a positive finite number (no log return).
        """
        if not 0.0 < price < math.inf:
            raise ConfigError(f"RealizedVolatility.add: price {price!r} is not positive and finite")
        closed = self._sampler.observe(price, t_ns)
        return 0 if closed is None else self._closed(closed[1], closed[2])

    def close_until(self, now_ns: int) -> int:
        """Close the grid points up to ``now_ns`` with no new tick."""
        closed = self._sampler.close_until(now_ns)
        return 0 if closed is None else self._closed(closed[1], closed[2])

    def _closed(self, count: int, price: float) -> int:
        prev = self._prev
        self._prev = price
        first = math.isnan(prev)
        if first:  # first grid point: no return yet
            count -= 1
            if count == 0:
                return 0
        else:
            r = math.log(price / prev)
            self._sq.add(r * r)
            count -= 1
            self.returns += 1
        zeros = min(count, self.window)
        for _ in range(zeros):
            self._sq.add(0.0)
        self.returns += count
        return count + (0 if first else 1)

    @property
    def value(self) -> float:
        """``sqrt(sum r^2)`` over the last ``window`` returns (``nan`` before
        the first return)."""
        if len(self._sq) == 0:
            return math.nan
        return math.sqrt(max(self._sq.sum, 0.0))

    def annualized(self, year_ns: int = 365 * 24 * 3600 * 10**9) -> float:
        """:attr:`value` scaled to a year: ``value * sqrt(year / (n * interval))``
        for the ``n`` returns in the window (crypto trades all year)."""
        n = len(self._sq)
        if n == 0:
            return math.nan
        return self.value * math.sqrt(year_ns / (n * self.interval_ns))
