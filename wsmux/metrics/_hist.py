"""HDR-style log-linear latency histogram: fixed memory, mergeable.

Theory of operation
-------------------
A value ``v`` (a non-negative integer, nanoseconds for latencies) falls in
one of a fixed set of buckets laid out like HdrHistogram's: below
``2**SUB_BITS`` every integer has its own bucket; above, each power of two
(an *octave*) is cut into ``2**SUB_BITS`` equal sub-buckets. With
``SUB_BITS = 4`` a bucket is at most 1/16 (6.25 %) of its lower bound wide,
so a quantile read from the buckets is within 6.25 % of the true one, at any
magnitude from nanoseconds to minutes.

The index of ``v`` is two integer operations (``bit_length`` and a shift),
no float maths and no allocation besides the int result, and the counts live
in one preallocated ``list`` of :data:`BUCKETS` ints (≈ 5 KiB). Values above
:data:`MAX_VALUE` (≈ 18 minutes in ns) are clamped into the last bucket and
counted in :attr:`LatencyHistogram.clamped`; the caller decides what a
negative or absurd value means before recording (see :mod:`wsmux.metrics`).

Two histograms merge by adding their count lists (:meth:`~LatencyHistogram.merge`),
so per-connection histograms add up to a venue's, and per-interval copies
subtract to a window (:meth:`~LatencyHistogram.since`).

Costs: :meth:`~LatencyHistogram.record` O(1); :meth:`~LatencyHistogram.quantile`
O(:data:`BUCKETS`); :meth:`~LatencyHistogram.merge` O(:data:`BUCKETS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["BUCKETS", "MAX_VALUE", "SUB_BITS", "LatencyHistogram", "bucket_index", "bucket_bounds"]

SUB_BITS = 4
"""Sub-buckets per octave, as a power of two (16: ≤ 6.25 % relative error)."""
_SUB = 1 << SUB_BITS
MAX_BITS = 40
"""Values are clamped below ``2**MAX_BITS`` (≈ 1100 s in ns)."""
MAX_VALUE = (1 << MAX_BITS) - 1
BUCKETS = (MAX_BITS - SUB_BITS) * _SUB + _SUB
"""Number of buckets (index of :data:`MAX_VALUE` + 1)."""
assert (_SUB, MAX_VALUE) == (16, 1_099_511_627_775), "LatencyHistogram.record spells these constants out"


def bucket_index(value: int) -> int:
    """The bucket of ``value`` (0 ≤ value ≤ :data:`MAX_VALUE`). O(1)."""
    if value < _SUB:
        return value
    shift = value.bit_length() - SUB_BITS - 1
    return shift * _SUB + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """``(low, high)`` of bucket ``index``: it holds ``low <= v < high``. O(1)."""
    if index < _SUB:
        return index, index + 1
    shift = index // _SUB - 1
    top = index - shift * _SUB
    return top << shift, (top + 1) << shift


class LatencyHistogram:
    """Counts of values (ns) in log-linear buckets (see the module docstring).

    Attributes:
        counts: per bucket, the number of values recorded (read-only for callers).
        total: values recorded.
        sum: their sum (of the clamped values), for the mean.
        max: the largest value recorded (clamped), 0 if none.
        clamped: values above :data:`MAX_VALUE` (recorded as :data:`MAX_VALUE`).
    """

    __slots__ = ("clamped", "counts", "max", "sum", "total")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * BUCKETS
        self.total = 0
        self.sum = 0
        self.max = 0
        self.clamped = 0

    def record(self, value: int) -> None:
        """Count one non-negative ``value`` (negative values count as 0). O(1)."""
        # the common case with the constants written out (SUB_BITS = 4, MAX_BITS = 40;
        # checked at import): global lookups cost more than the arithmetic here
        if 16 <= value <= 1_099_511_627_775:
            shift = value.bit_length() - 5
            self.counts[(shift << 4) + (value >> shift)] += 1
        else:
            value = self._edge(value)
        self.total += 1
        self.sum += value
        if value > self.max:  # noqa: PLR1730 (a compare is cheaper than max() on the hot path)
            self.max = value

    def _edge(self, value: int) -> int:
        """Count a value below ``2**SUB_BITS`` or above :data:`MAX_VALUE`
        (clamped); returns the value counted."""
        if value > MAX_VALUE:
            self.clamped += 1
            self.counts[BUCKETS - 1] += 1
            return MAX_VALUE
        value = max(value, 0)
        self.counts[value] += 1
        return value

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to this one. O(:data:`BUCKETS`)."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total
        self.sum += other.sum
        self.clamped += other.clamped
        self.max = max(self.max, other.max)

    def copy(self) -> LatencyHistogram:
        """An independent copy. O(:data:`BUCKETS`)."""
        out = LatencyHistogram()
        out.counts = list(self.counts)
        out.total, out.sum, out.max, out.clamped = self.total, self.sum, self.max, self.clamped
        return out

    def since(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """The values recorded after ``earlier`` (a :meth:`copy` of this
        histogram taken before); ``max`` is the cumulative one."""
        out = LatencyHistogram()
        out.counts = [a - b for a, b in zip(self.counts, earlier.counts, strict=True)]
        out.total = self.total - earlier.total
        out.sum = self.sum - earlier.sum
        out.clamped = self.clamped - earlier.clamped
        out.max = self.max
        return out

    def quantile(self, q: float) -> int | None:
        """The value at quantile ``q`` (0..1): the midpoint of the bucket that
        holds it (within 6.25 %), capped at :attr:`max`; None if empty. O(:data:`BUCKETS`)."""
        if self.total == 0:
            return None
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], not {q}")
        rank = max(1, int(q * self.total + 0.999999))
        seen = 0
        for index, count in enumerate(self.counts):
            if count:
                seen += count
                if seen >= rank:
                    low, high = bucket_bounds(index)
                    mid = low if high - low == 1 else (low + high) // 2
                    return mid if self.max == 0 else min(mid, self.max)
        return self.max  # pragma: no cover - rank <= total always reached above

    def quantiles(self, qs: Iterable[float] = (0.5, 0.9, 0.99)) -> dict[str, int | None]:
        """``{"p50": ..., "p90": ..., "p99": ...}`` (ns, None if empty)."""
        return {f"p{q * 100:g}": self.quantile(q) for q in qs}

    def cumulative(self, bounds: Sequence[int]) -> list[int]:
        """For each upper bound in ``bounds`` (ascending, ns), the number of
        values in buckets that lie wholly at or below it (Prometheus ``le``
        buckets; a bucket straddling a bound counts for the next bound, so a
        count is never over-stated). O(:data:`BUCKETS`)."""
        out: list[int] = []
        seen = 0
        i = 0
        for bound in bounds:
            while i < BUCKETS:
                if self.counts[i]:
                    _, high = bucket_bounds(i)
                    if high - 1 > bound:
                        break
                    seen += self.counts[i]
                i += 1
            out.append(seen)
        return out

    def mean(self) -> float | None:
        """The mean value (ns), None if empty."""
        return self.sum / self.total if self.total else None

    def __repr__(self) -> str:
        q = self.quantiles()
        return f"<LatencyHistogram n={self.total} p50={q['p50']} p99={q['p99']} max={self.max}>"
