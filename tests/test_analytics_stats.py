"""Online statistics (wsmux.analytics.stats) against batch numpy computations."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from wsmux.analytics.stats import (
    EWMA,
    GridSampler,
    QuantileSketch,
    RealizedVolatility,
    RollingMinMax,
    RollingWindow,
)
from wsmux.errors import ConfigError

SEC = 1_000_000_000


def irregular_series(n: int, seed: int, level: float = 50_000.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` prices (a random walk near ``level``) at irregular, sometimes equal, times."""
    rng = np.random.default_rng(seed)
    gaps = rng.choice([0, 1, 3, 250_000_000, 2 * SEC], size=n, p=[0.1, 0.2, 0.3, 0.3, 0.1])
    times = 1_700_000_000 * SEC + np.cumsum(gaps)
    prices = level * np.exp(np.cumsum(rng.normal(0.0, 1e-4, size=n)))
    return times.astype(np.int64), prices


# --- EWMA -------------------------------------------------------------------------


def test_ewma_equals_batch_age_weighted_mean_and_variance() -> None:
    times, xs = irregular_series(3_000, seed=1)
    halflife = 5 * SEC
    ewma = EWMA(halflife)
    for i, (t, x) in enumerate(zip(times.tolist(), xs.tolist(), strict=True)):
        ewma.add(x, t)
        if i % 97 == 0 or i == len(xs) - 1:
            w = 2.0 ** (-(t - times[: i + 1]) / halflife)
            mean = float(np.sum(w * xs[: i + 1]) / np.sum(w))
            var = float(np.sum(w * (xs[: i + 1] - mean) ** 2) / np.sum(w))
            assert ewma.mean == pytest.approx(mean, rel=1e-12)
            assert ewma.variance == pytest.approx(var, rel=1e-7, abs=1e-9)
            assert ewma.weight == pytest.approx(float(np.sum(w)), rel=1e-9)


def test_ewma_halflife_halves_weight_and_late_samples_are_counted() -> None:
    ewma = EWMA(SEC)
    ewma.add(0.0, 0)
    ewma.add(3.0, SEC)  # first sample weighs 1/2 now: mean = 3 / 1.5
    assert ewma.mean == pytest.approx(2.0)
    ewma.add(100.0, SEC // 2)  # backwards in time: weighed at the last time
    assert ewma.late == 1
    assert ewma.count == 3
    ewma.reset()
    assert math.isnan(ewma.mean) and ewma.count == 0
    with pytest.raises(ConfigError):
        EWMA(0)


# --- rolling windows -----------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 100])
def test_count_window_matches_numpy(size: int) -> None:
    _, xs = irregular_series(2_000, seed=size)
    win = RollingWindow(size=size)
    for i, x in enumerate(xs.tolist()):
        win.add(x)
        ref = xs[max(0, i - size + 1) : i + 1]
        assert len(win) == len(ref)
        assert win.sum == pytest.approx(math.fsum(ref.tolist()), rel=1e-15, abs=0)
        assert win.mean == pytest.approx(float(ref.mean()), rel=1e-14)
        assert win.variance == pytest.approx(float(ref.var()), rel=1e-6, abs=1e-9)
        if len(ref) > 1:
            assert win.sample_variance == pytest.approx(float(ref.var(ddof=1)), rel=1e-6, abs=1e-9)


def test_time_window_matches_numpy() -> None:
    times, xs = irregular_series(3_000, seed=7)
    span = 3 * SEC
    win = RollingWindow(span_ns=span)
    mm = RollingMinMax(span_ns=span)
    for i, (t, x) in enumerate(zip(times.tolist(), xs.tolist(), strict=True)):
        win.add(x, t)
        mm.add(x, t)
        mask = times[: i + 1] > t - span
        ref = xs[: i + 1][mask]
        assert len(win) == len(ref)
        assert win.mean == pytest.approx(float(ref.mean()), rel=1e-14)
        assert win.variance == pytest.approx(float(ref.var()), rel=1e-6, abs=1e-9)
        assert mm.min == ref.min() and mm.max == ref.max()
    # expiry without a sample
    win.expire(int(times[-1]) + span)
    mm.expire(int(times[-1]) + span)
    assert len(win) == 0 and math.isnan(win.mean) and math.isnan(mm.min)


def test_rolling_sum_does_not_drift_over_a_long_run() -> None:
    """A million adds and evictions of values near 1e5 (prices) with tiny
    fractional parts: the window sum still equals the exact sum (fsum)."""
    rng = random.Random(3)
    win = RollingWindow(size=1_000)
    naive = 0.0
    values = [100_000.0 + rng.random() * 1e-3 for _ in range(1_000_000)]
    for i, x in enumerate(values):
        win.add(x)
        naive += x
        if i >= 1_000:
            naive -= values[i - 1_000]
    exact = math.fsum(values[-1_000:])
    assert abs(win.sum - exact) <= 4 * math.ulp(exact)
    # the uncompensated running sum is visibly off, so the test can fail
    assert abs(naive - exact) > 4 * math.ulp(exact)


@pytest.mark.parametrize("size", [1, 3, 50])
def test_count_minmax_matches_numpy(size: int) -> None:
    _, xs = irregular_series(1_500, seed=11)
    mm = RollingMinMax(size=size)
    for i, x in enumerate(xs.tolist()):
        mm.add(x)
        ref = xs[max(0, i - size + 1) : i + 1]
        assert (mm.min, mm.max) == (ref.min(), ref.max())


def test_non_finite_samples_are_refused() -> None:
    for add in (EWMA(SEC).add, RollingWindow(size=3).add, RollingWindow(span_ns=SEC).add):
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(ConfigError):
                add(bad, 1)
    with pytest.raises(ConfigError):
        RollingMinMax(size=3).add(math.nan)
    for price in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ConfigError):
            RealizedVolatility(SEC, 5).add(price, 1)


def test_window_config_errors() -> None:
    for bad in ({}, {"size": 3, "span_ns": 5}, {"size": 0}, {"span_ns": -1}):
        with pytest.raises(ConfigError):
            RollingWindow(**bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            RollingMinMax(**bad)  # type: ignore[arg-type]


# --- quantiles ------------------------------------------------------------------------


@pytest.mark.parametrize("accuracy", [0.01, 0.05])
def test_quantile_sketch_within_relative_error_of_numpy(accuracy: float) -> None:
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.lognormal(0.0, 2.0, 20_000), -rng.lognormal(1.0, 1.0, 5_000), np.zeros(100)])
    rng.shuffle(xs)
    sk = QuantileSketch(accuracy)
    for x in xs.tolist():
        sk.add(x)
    for q in (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0):
        true = float(np.quantile(xs, q, method="lower"))
        assert abs(sk.quantile(q) - true) <= accuracy * abs(true) + 1e-12, q


def test_quantile_sketch_remove_and_merge() -> None:
    rng = np.random.default_rng(9)
    xs = rng.exponential(10.0, 4_000)
    a, b, whole = QuantileSketch(0.02), QuantileSketch(0.02), QuantileSketch(0.02)
    for i, x in enumerate(xs.tolist()):
        (a if i % 2 else b).add(x)
        whole.add(x)
    a.merge(b)
    assert a.count == whole.count
    assert a.quantiles([0.1, 0.5, 0.9]) == whole.quantiles([0.1, 0.5, 0.9])
    for x in xs[:2_000].tolist():
        whole.remove(x)
    rest = xs[2_000:]
    true = float(np.quantile(rest, 0.5, method="lower"))
    assert abs(whole.quantile(0.5) - true) <= 0.02 * true
    with pytest.raises(ConfigError):
        QuantileSketch().remove(1.0)
    with pytest.raises(ConfigError):
        QuantileSketch().add(math.nan)
    with pytest.raises(ConfigError):
        a.merge(QuantileSketch(0.01))
    assert math.isnan(QuantileSketch().quantile(0.5))


# --- grid sampling and realized volatility ------------------------------------------------


def batch_grid(times: np.ndarray, prices: np.ndarray, step: int, until: int) -> tuple[np.ndarray, np.ndarray]:
    """Previous-tick samples at every grid point in (first tick, until]."""
    first = (int(times[0]) // step + 1) * step
    points = np.arange(first, until + 1, step, dtype=np.int64)
    idx = np.searchsorted(times, points, side="left") - 1  # last tick strictly before the point
    return points, prices[idx]


def test_grid_sampler_matches_batch_previous_tick() -> None:
    times, xs = irregular_series(2_000, seed=13)
    step = SEC
    sampler = GridSampler(step)
    got_points: list[int] = []
    got_prices: list[float] = []
    for t, x in zip(times.tolist(), xs.tolist(), strict=True):
        closed = sampler.observe(x, t)
        if closed is not None:
            first, count, price = closed
            got_points.extend(first + k * step for k in range(count))
            got_prices.extend([price] * count)
    points, ref = batch_grid(times, xs, step, int(times[-1]))
    assert got_points == points.tolist()
    assert got_prices == ref.tolist()
    assert sampler.observe(1.0, int(times[0])) is None and sampler.late == 1


def test_realized_volatility_matches_batch() -> None:
    times, xs = irregular_series(4_000, seed=17)
    step, window = SEC, 60
    rv = RealizedVolatility(step, window)
    for i, (t, x) in enumerate(zip(times.tolist(), xs.tolist(), strict=True)):
        rv.add(x, t)
        if i % 211 == 0 or i == len(xs) - 1:
            _, samples = batch_grid(times[: i + 1], xs[: i + 1], step, t)
            rets = np.diff(np.log(samples))
            if len(rets) == 0:
                assert math.isnan(rv.value)
                continue
            ref = math.sqrt(float(np.sum(rets[-window:] ** 2)))
            assert rv.value == pytest.approx(ref, rel=1e-9)
            assert rv.returns == len(rets)
    year = 365 * 24 * 3600 * SEC
    n = min(window, rv.returns)
    assert rv.annualized() == pytest.approx(rv.value * math.sqrt(year / (n * step)))


def test_realized_volatility_long_silence_is_bounded_and_zero() -> None:
    rv = RealizedVolatility(SEC, 10)
    rv.add(100.0, 0)
    rv.add(101.0, SEC // 2)
    rv.add(102.0, 3 * SEC // 2)  # closes the point at 1 s (101): first point, no return
    assert math.isnan(rv.value)
    rv.add(102.0, 10**9 * SEC)  # a billion empty intervals: at most `window` zeros are added
    assert rv.value == 0.0
    assert rv.returns == 10**9 - 1
