"""The log-linear latency histogram and the EWMA baseline."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsmux.metrics import Ewma, LatencyHistogram, bucket_bounds, bucket_index
from wsmux.metrics._hist import BUCKETS, MAX_VALUE


@given(st.integers(min_value=0, max_value=MAX_VALUE))
def test_every_value_falls_in_its_bucket_within_a_sixteenth(value: int) -> None:
    index = bucket_index(value)
    low, high = bucket_bounds(index)
    assert 0 <= index < BUCKETS
    assert low <= value < high
    assert high - low <= max(1, low // 16)


def test_buckets_are_contiguous() -> None:
    previous_high = 0
    for index in range(BUCKETS):
        low, high = bucket_bounds(index)
        assert low == previous_high
        assert bucket_index(low) == index and bucket_index(high - 1) == index
        previous_high = high


def test_quantiles_within_bucket_error_of_exact() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(14, 1.2)) for _ in range(20_000)]  # ~1 ms, heavy tail
    hist = LatencyHistogram()
    for v in values:
        hist.record(v)
    values.sort()
    for q in (0.5, 0.9, 0.99):
        exact = values[int(q * len(values)) - 1]
        got = hist.quantile(q)
        assert got is not None
        assert abs(got - exact) <= exact / 16 + 1, (q, got, exact)
    assert hist.max == values[-1]
    assert hist.total == len(values)


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(3)
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(5000):
        v = rng.randrange(0, 10**9)
        (a if i % 2 else b).record(v)
        both.record(v)
    a.merge(b)
    assert a.counts == both.counts
    assert (a.total, a.sum, a.max) == (both.total, both.sum, both.max)


def test_since_gives_the_window() -> None:
    hist = LatencyHistogram()
    for _ in range(100):
        hist.record(1_000)
    before = hist.copy()
    for _ in range(10):
        hist.record(50_000_000)
    window = hist.since(before)
    assert window.total == 10
    assert window.quantile(0.5) == pytest.approx(50_000_000, rel=1 / 16)


def test_out_of_range_values_are_clamped_and_counted() -> None:
    hist = LatencyHistogram()
    hist.record(-5)
    hist.record(MAX_VALUE * 4)
    assert hist.clamped == 1
    assert hist.counts[0] == 1 and hist.counts[BUCKETS - 1] == 1
    assert hist.max == MAX_VALUE


def test_cumulative_never_overstates() -> None:
    hist = LatencyHistogram()
    for v in (1_000, 2_000, 1_000_000, 3_000_000):
        hist.record(v)
    assert hist.cumulative([1_500, 1_000_000, 10_000_000]) == [1, 2, 4]
    assert LatencyHistogram().quantile(0.5) is None


def test_ewma_follows_a_new_level_within_a_few_half_lives() -> None:
    ewma = Ewma(half_life=10, warmup=5)
    for _ in range(100):
        ewma.update(100.0)
    assert ewma.mean == pytest.approx(100.0)
    assert ewma.std == pytest.approx(0.0, abs=1e-9)
    for _ in range(40):  # four half-lives at the new level
        ewma.update(200.0)
    assert 190.0 < ewma.mean < 200.0


def test_ewma_warmup_and_spread() -> None:
    ewma = Ewma(half_life=30, warmup=5)
    rng = random.Random(1)
    for i in range(4):
        ewma.update(rng.gauss(50, 5))
        assert not ewma.ready, i
    for _ in range(2000):
        ewma.update(rng.gauss(50, 5))
    assert ewma.ready
    assert 46 < ewma.mean < 54
    assert 3 < ewma.std < 7
    assert ewma.zscore(ewma.mean + 2 * ewma.std) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        Ewma(half_life=0)
