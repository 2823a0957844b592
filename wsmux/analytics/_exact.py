"""Exact running sums of floats (no drift, however many terms).

A running ``total += x`` loses the low bits of every addition: over a day of
trades the rounding errors accumulate (drift), and a rolling window that adds
and later subtracts the same values does not come back to zero. ``ExactSum``
keeps the sum as a list of non-overlapping floats (Shewchuk's expansion, the
algorithm behind :func:`math.fsum`), so the represented sum is *exactly* the
sum of every value added (subtracting a value removes it exactly), and
:attr:`ExactSum.value` is that exact sum correctly rounded to the nearest
float — the same float :func:`math.fsum` returns for the same values in any
order.

Reference: J. R. Shewchuk, "Adaptive Precision Floating-Point Arithmetic and
Fast Robust Geometric Predicates", Discrete & Computational Geometry 18
(1997); the ``msum`` recipe (R. Hettinger) for Python.

Cost: O(k) per addition, k the length of the expansion (1-3 for sums of
positive prices and sizes in practice).
"""

from __future__ import annotations

import math

__all__ = ["ExactSum"]


class ExactSum:
    """The exact sum of the floats added (and subtracted) so far."""

    __slots__ = ("partials",)

    def __init__(self) -> None:
        self.partials: list[float] = []
        """Non-overlapping floats, increasing magnitude, whose exact sum is the total."""

    def add(self, x: float) -> None:
        """Add ``x`` exactly (``add(-x)`` removes it exactly). O(k).

        Non-finite values make the sum non-finite (``value`` is then nan or ±inf)."""
        partials = self.partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x] if x else []

    @property
    def value(self) -> float:
        """The sum, correctly rounded to the nearest float. O(k)."""
        return math.fsum(self.partials)

    def clear(self) -> None:
        """Back to zero."""
        self.partials.clear()

    def __bool__(self) -> bool:
        """True unless the sum is exactly zero."""
        return bool(self.partials)

    def __repr__(self) -> str:
        return f"ExactSum({self.value!r})"
