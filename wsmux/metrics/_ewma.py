"""Exponentially weighted moving mean and variance (streaming baselines).

Theory of operation
-------------------
:class:`Ewma` keeps a mean and a variance of a stream of samples, each new
sample weighing ``alpha`` and the past ``1 - alpha`` (West's incremental
form: ``diff = x - mean; incr = alpha * diff; mean += incr;
var = (1 - alpha) * (var + diff * incr)``). The *half-life* — the number of
samples after which an old sample's weight has halved — is the friendlier
knob: ``alpha = 1 - 2 ** (-1 / half_life)``. Sampled once per second with a
half-life of 60 samples, a baseline follows a new normal level within a few
minutes and forgets a spike as quickly, with no daily seasonality model.

Until ``warmup`` samples have been seen the baseline is not trusted
(:attr:`Ewma.ready` is False): callers must not raise alarms from it.

Everything is O(1), allocation-free and a pure function of the samples fed:
no clock is read here.
"""

from __future__ import annotations

import math

__all__ = ["Ewma", "alpha_for_half_life"]


def alpha_for_half_life(half_life: float) -> float:
    """The weight of a new sample for a half-life of ``half_life`` samples (> 0)."""
    if not half_life > 0:
        raise ValueError(f"half_life must be positive, not {half_life}")
    return 1.0 - float(2.0 ** (-1.0 / half_life))


class Ewma:
    """EWMA mean and variance of a stream of floats (see the module docstring).

    Args:
        half_life: samples after which a sample's weight has halved.
        warmup: samples before :attr:`ready` turns True.

    Attributes:
        mean: the weighted mean (0.0 before the first sample).
        var: the weighted variance.
        count: samples seen.
    """

    __slots__ = ("alpha", "count", "mean", "var", "warmup")

    def __init__(self, half_life: float = 60.0, warmup: int = 10) -> None:
        self.alpha = alpha_for_half_life(half_life)
        self.warmup = warmup
        self.mean = 0.0
        self.var = 0.0
        self.count = 0

    def update(self, x: float) -> None:
        """Feed one sample. O(1)."""
        self.count += 1
        if self.count == 1:
            self.mean = x
            self.var = 0.0
            return
        # during warm-up weigh samples equally (a plain running mean), so the
        # first sample does not dominate the baseline for a half-life
        alpha = max(self.alpha, 1.0 / self.count)
        diff = x - self.mean
        incr = alpha * diff
        self.mean += incr
        self.var = (1.0 - alpha) * (self.var + diff * incr)

    @property
    def std(self) -> float:
        """The weighted standard deviation."""
        return math.sqrt(self.var) if self.var > 0 else 0.0

    @property
    def ready(self) -> bool:
        """Whether enough samples were seen to trust the baseline."""
        return self.count >= self.warmup

    def zscore(self, x: float) -> float:
        """How many standard deviations ``x`` lies from the mean (0 if no spread)."""
        std = self.std
        return (x - self.mean) / std if std > 0 else 0.0

    def __repr__(self) -> str:
        return f"<Ewma mean={self.mean:.4g} std={self.std:.4g} n={self.count}>"
