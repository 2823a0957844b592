"""Message-flow anomalies and the arrival-rate prediction of one connection,
and of one channel of a venue.

Theory of operation
-------------------
:class:`FlowBaseline` is fed, once per second (:meth:`FlowBaseline.tick`),
the number of data events a connection delivered in that second — the exact
per-connection counter the Feed keeps anyway, so this costs nothing per
message. It keeps

* an :class:`~wsmux.metrics.Ewma` of the per-second rate (mean and variance,
  half-life :attr:`~FlowBaseline.half_life` seconds, default 60: a new normal
  level is adopted within a few minutes, no daily seasonality), and
* a short ring of the last :data:`WINDOW` seconds' counts, whose sum is the
  rate the thresholds judge (10 seconds smooth out single quiet seconds).

States and thresholds (documented in the operations guide):

* ``NORMAL`` → ``COLLAPSE`` when the baseline is ready (≥ ``warmup`` seconds),
  its mean is at least :data:`MIN_RATE` msg/s (a feed that is quiet by nature
  is never judged) and the windowed rate falls below
  ``collapse_ratio * mean`` (default 10 %).
* ``NORMAL`` → ``SPIKE`` when the last second's rate exceeds both
  ``spike_ratio * mean`` (default 4x) and ``mean + spike_sigmas * std``
  (default 6 standard deviations), with at least :data:`MIN_SPIKE` events in that second.
* ``COLLAPSE``/``SPIKE`` → ``NORMAL`` (a ``RECOVERED`` anomaly) when the
  windowed rate is back within ``[mean / 2, 2 * mean]``.

While an episode lasts, the baseline is frozen so the anomaly does not
become the norm at once — for at most ``adopt_after`` seconds (default 300),
after which a lasting change is adopted as the new normal (and reported as
``RECOVERED`` once the baseline reaches it).

**Arrival-rate prediction.** :meth:`FlowBaseline.stall_timeout` turns the
baseline into the stale-data timer of the connection: with events arriving
as a Poisson process of rate λ, a silence of ``t`` seconds has probability
``exp(-λ t)``; the timer is the silence that should happen once in a million
(``t = 13.8 / λ``), clamped into ``[low, high]``. A busy feed is declared
stale sooner than the fixed default; a quiet one is not stale merely for
being quiet (it gets up to ``high``).

**Per venue and channel** (:class:`ChannelFlow`). One connection often
carries several channels (trades and the book of the same symbols): trades
that stop while the book flows leave the connection's count almost
unchanged. A :class:`ChannelFlow` keeps the same :class:`FlowBaseline` per
(venue, channel), fed once per second with the channel's events counted by
the latency sampler (:meth:`~wsmux.metrics.VenueLatency.sample`), which
already sees each sampled frame's events: nothing more is done per message.
A connection the registry finds quiet (fewer than ``dense_below`` frames a
second) samples every frame, so its channels' counts are **exact**; a busy
one samples one frame in ``w`` (32) and a sampled frame of ``n`` events
counts ``n * w``, an unbiased estimate whose noise is that of the number
``k`` of sampled frames (Poisson: relative error ``1 / sqrt(k)``). So a
channel estimated from samples is judged only when that number makes the
verdict meaningful:

* ``COLLAPSE`` only if the baseline expected, when the window began, at
  least :data:`MIN_WINDOW_SAMPLES` (30) sampled frames over the
  :data:`WINDOW`-s window (as of its start: the baseline drifts down with
  the quiet seconds it judges). Sampled frames in a window are then Poisson of mean ≥ 30, and a
  window at ≤ 10 % of that (≤ 3 frames) happens by chance with probability
  below 1e-9. A 1,000 msg/s feed sampled 1 in 32 gives ~310 sampled frames
  per window: judged. A 50 msg/s channel on a busy connection gives ~16:
  not judged for collapse (the connection's own exact baseline still is).
* ``SPIKE`` only with at least :data:`MIN_SPIKE_SAMPLES` (20) sampled frames
  in that second, on top of the ratio and sigma thresholds (the baseline's
  variance already includes the sampling noise, as it is fed estimates).
* ``RECOVERED`` is always judged (ending an episode raises no alarm).

Everything here is a pure function of the counts fed: no clock is read.
"""

from __future__ import annotations

import collections
import enum
import math
from typing import Any

from wsmux.metrics._ewma import Ewma
from wsmux.model import AnomalyKind

__all__ = [
    "MIN_RATE",
    "MIN_SPIKE",
    "MIN_SPIKE_SAMPLES",
    "MIN_WINDOW_SAMPLES",
    "WINDOW",
    "ChannelFlow",
    "FlowBaseline",
    "FlowState",
]

WINDOW = 10
"""Seconds of counts the collapse and recovery thresholds judge."""
MIN_RATE = 1.0
"""A baseline below this many msg/s is never judged collapsed."""
MIN_SPIKE = 20
"""A second with fewer events is never a spike."""
MIN_WINDOW_SAMPLES = 30
"""A channel estimated from samples is judged collapsed only if its baseline
expects at least this many sampled frames per :data:`WINDOW`."""
MIN_SPIKE_SAMPLES = 20
"""A second of a channel estimated from samples is a spike only with at least this many sampled frames."""
_ONE_IN_A_MILLION = -math.log(1e-6)


class FlowState(enum.Enum):
    """Where a flow stands against its baseline."""

    NORMAL = "normal"
    COLLAPSE = "collapse"
    SPIKE = "spike"


class FlowBaseline:
    """Streaming baseline of one connection's message rate (see the module docstring).

    Args:
        half_life: seconds after which a second's weight in the baseline halves.
        warmup: seconds before the baseline is judged (and predicts).
        collapse_ratio, spike_ratio, spike_sigmas: the thresholds.
        adopt_after: seconds of an episode after which the baseline follows again.
    """

    __slots__ = (
        "_episode",
        "_window",
        "adopt_after",
        "collapse_ratio",
        "ewma",
        "spike_ratio",
        "spike_sigmas",
        "state",
    )

    def __init__(
        self,
        *,
        half_life: float = 60.0,
        warmup: int = 30,
        collapse_ratio: float = 0.1,
        spike_ratio: float = 4.0,
        spike_sigmas: float = 6.0,
        adopt_after: float = 300.0,
    ) -> None:
        self.ewma = Ewma(half_life=half_life, warmup=warmup)
        self.collapse_ratio = collapse_ratio
        self.spike_ratio = spike_ratio
        self.spike_sigmas = spike_sigmas
        self.adopt_after = adopt_after
        self.state = FlowState.NORMAL
        self._window: collections.deque[int] = collections.deque(maxlen=WINDOW)
        self._episode = 0

    @property
    def window_rate(self) -> float:
        """Messages per second over the last :data:`WINDOW` seconds (or fewer)."""
        return sum(self._window) / len(self._window) if self._window else 0.0

    @property
    def expected(self) -> float:
        """The baseline's mean rate (msg/s)."""
        return self.ewma.mean

    def tick(self, count: int, *, judge_collapse: bool = True, judge_spike: bool = True) -> AnomalyKind | None:
        """Feed the events of the last second; the anomaly it starts or ends, if any. O(WINDOW).

        ``judge_collapse``/``judge_spike`` False: the count is too uncertain to
        start that episode (it still feeds the baseline and can end one)."""
        self._window.append(count)
        ewma = self.ewma
        mean = ewma.mean
        out: AnomalyKind | None = None
        if self.state is FlowState.NORMAL:
            if ewma.ready:
                if (
                    judge_collapse
                    and mean >= MIN_RATE
                    and len(self._window) == WINDOW
                    and self.window_rate < self.collapse_ratio * mean
                ):
                    self.state, out = FlowState.COLLAPSE, AnomalyKind.COLLAPSE
                elif (
                    judge_spike
                    and count >= MIN_SPIKE
                    and count > self.spike_ratio * mean
                    and count > mean + self.spike_sigmas * ewma.std
                ):
                    self.state, out = FlowState.SPIKE, AnomalyKind.SPIKE
        else:
            rate = count if self.state is FlowState.SPIKE else self.window_rate
            if mean / 2 <= rate <= 2 * mean:
                self.state, out = FlowState.NORMAL, AnomalyKind.RECOVERED
        if self.state is FlowState.NORMAL:
            self._episode = 0
            ewma.update(count)
        else:
            self._episode += 1
            if self._episode > self.adopt_after:
                ewma.update(count)  # a lasting change: follow it
        return out

    def stall_timeout(self, low: float, high: float) -> float | None:
        """The stale-data timer this flow's rate predicts, within ``[low, high]``
        seconds; None until the baseline is ready."""
        if not self.ewma.ready:
            return None
        rate = self.ewma.mean
        if rate <= 0:
            return high
        return min(high, max(low, _ONE_IN_A_MILLION / rate))


class ChannelFlow:
    """The baseline of one (venue, channel), fed counts that are exact or
    estimated from sampled frames (see the module docstring).

    Args:
        baseline: keyword arguments of its :class:`FlowBaseline`.

    Attributes:
        baseline: the rate baseline (its ``state``, ``window_rate``, ``expected``).
        sampled: baseline of sampled frames per second (what makes an estimate meaningful).
        exact: whether the last second's count was exact (every frame sampled).
    """

    __slots__ = ("_past", "baseline", "exact", "sampled")

    def __init__(self, **baseline: Any) -> None:
        self.baseline = FlowBaseline(**baseline)
        self.sampled = Ewma(half_life=float(baseline.get("half_life", 60.0)), warmup=1)
        self.exact = True
        self._past: collections.deque[float] = collections.deque(maxlen=WINDOW)

    def tick(self, events: int, frames: int, exact: bool) -> AnomalyKind | None:
        """Feed one second: ``events`` (exact, or the weighted estimate),
        ``frames`` the sampled frames behind it, ``exact`` whether every frame
        was sampled. The anomaly it starts or ends, if any."""
        self.exact = exact
        past = self._past  # the sampled-frame baseline of the last WINDOW seconds, oldest first
        expected_frames = WINDOW * max(past[0] if past else 0.0, self.sampled.mean) if self.sampled.ready else 0.0
        kind = self.baseline.tick(
            events,
            judge_collapse=exact or expected_frames >= MIN_WINDOW_SAMPLES,
            judge_spike=exact or frames >= MIN_SPIKE_SAMPLES,
        )
        if self.baseline.state is FlowState.NORMAL:
            self.sampled.update(frames)
        past.append(self.sampled.mean)
        return kind
