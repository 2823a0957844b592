"""Endpoint choice: which of a venue's hosts to connect to, by measured latency.

Theory of operation
-------------------
A venue may be served by several interchangeable hosts (Binance spot on ports
9443 and 443 and the data-only mirror ``data-stream.binance.vision``, OKX's
AWS host, HTX's AWS hosts...: the adapter's ``default_url`` and
``backup_urls``, or the list a user passes). An :class:`EndpointChooser` holds
one :class:`HostStats` per candidate host, in the user's order, and answers
three questions; it does no I/O and reads no clock (the multiplexer measures
and hands it the figures):

* *Where should a new connection go?* (:meth:`EndpointChooser.pick`) The
  best-ranked host, or with redundancy ``r`` the least-loaded of the ``r``
  best, so that redundant connections compare hosts on live data (A/B).
* *Is another host better now?* (:meth:`EndpointChooser.verdict`) Hosts are
  ranked by their latency *forecast* — the upper quantile of recent one-way
  latency samples (receive time minus the venue's own timestamp of each
  event; the venue's clock offset is the same for every host of one venue,
  so it cancels in the comparison). A host with no latency samples (a venue
  without timestamps) is ranked by its handshake round-trip time instead.
  A host that failed ``failover_after`` connection attempts in a row ranks
  last until a later measurement succeeds. The active host is left only for
  a host whose forecast is lower by ``switch_margin`` (relative) *and*
  ``min_gain_s`` (absolute): hysteresis, so noise never makes it flap.
* *Is the active host degrading?* (:meth:`EndpointChooser.degraded`) Its
  forecast rose to ``degrade_ratio`` times its own baseline (the slow EWMA of
  its medians) or above another host's: the multiplexer then re-evaluates at
  once instead of waiting for the next period, so it moves before a slow
  link becomes a disconnect.

Every measurement goes through :class:`LatencyForecast`: an exponentially
weighted mean and variance plus streaming estimates of the median and the
90th percentile (stochastic-approximation quantile tracking: each sample
nudges the estimate up by ``q·step`` or down by ``(1-q)·step``, the step
scaled to the recent spread), O(1) memory and time per sample.

Costs: nothing per market event. Latency samples are taken by briefly
wrapping one connection's event sink for a bounded number of events, once per
check period (see :class:`~wsmux.EndpointPolicy`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from wsmux.errors import ConfigError
from wsmux.metrics._ewma import Ewma
from wsmux.model import EndpointReason

__all__ = ["EndpointChooser", "EndpointPolicy", "HostStats", "LatencyForecast"]


@attrs.frozen(slots=True)
class EndpointPolicy:
    """How the multiplexer chooses among a venue's hosts
    (``Multiplexer(endpoint_choice=EndpointPolicy(...))``).

    Attributes:
        check_every: seconds between latency checks of the active host(s)
            (each samples up to ``sample_events`` events of one connection).
        reevaluate_every: seconds between probes of the other hosts (a short
            connection to each: handshake time and the latency of its first
            ``sample_events`` events); sooner when the active host degrades.
        sample_events: latency samples taken per check or probe.
        probe_timeout: longest a probe waits for its samples (seconds).
        switch_margin: a host must be this much faster (relative, 0.2 = 20 %)
            than the active one to replace it.
        min_gain_s: ...and faster by at least this many seconds.
        degrade_ratio: the active host counts as degrading when its forecast
            exceeds this multiple of its own baseline.
        failover_after: connection attempts failed in a row on one host before
            its connection moves to the next host.
    """

    check_every: float = 5.0
    reevaluate_every: float = 60.0
    sample_events: int = 20
    probe_timeout: float = 10.0
    switch_margin: float = 0.2
    min_gain_s: float = 0.002
    degrade_ratio: float = 2.0
    failover_after: int = 3

    def __attrs_post_init__(self) -> None:
        for name in ("check_every", "reevaluate_every", "probe_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ConfigError(f"EndpointPolicy.{name} must be a finite number of seconds > 0, not {value!r}")
        for name in ("switch_margin", "min_gain_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ConfigError(f"EndpointPolicy.{name} must be a finite number >= 0, not {value!r}")
        if isinstance(self.degrade_ratio, bool) or not 1 < self.degrade_ratio < math.inf:
            raise ConfigError(f"EndpointPolicy.degrade_ratio must be a finite number > 1, not {self.degrade_ratio!r}")
        for name in ("sample_events", "failover_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"EndpointPolicy.{name} must be an int >= 1, not {value!r}")


class LatencyForecast:
    """Short-horizon forecast of one host's latency (see the module docstring).

    The mean and variance are an :class:`~wsmux.metrics.Ewma`; the quantiles
    are tracked here (the histogram of :mod:`wsmux.metrics` is cumulative, a
    forecast must forget).

    Args:
        half_life: samples after which a sample's weight in the mean has halved.
        baseline_half_life: checks after which a check's median's weight in
            the baseline has halved.
    """

    __slots__ = ("_baseline", "_ewma", "baseline_half_life", "half_life", "p50", "p90")

    def __init__(self, half_life: float = 7.0, baseline_half_life: float = 14.0) -> None:
        self.half_life = half_life
        self.baseline_half_life = baseline_half_life
        self._ewma = Ewma(half_life=half_life, warmup=1)
        self._baseline = Ewma(half_life=baseline_half_life, warmup=1)
        self.p50 = 0.0
        self.p90 = 0.0

    @property
    def n(self) -> int:
        """Samples taken."""
        return self._ewma.count

    @property
    def mean(self) -> float:
        return self._ewma.mean

    @property
    def std(self) -> float:
        return self._ewma.std

    @property
    def baseline(self) -> float | None:
        """Slow EWMA of the per-check medians: the host's normal latency."""
        return self._baseline.mean if self._baseline.count else None

    def add(self, sample: float) -> None:
        """One latency sample (seconds). O(1)."""
        if not math.isfinite(sample):
            return
        first = self._ewma.count == 0
        self._ewma.update(sample)
        if first:
            self.p50 = self.p90 = sample
            return
        step = max(self._ewma.std, abs(self._ewma.mean) * 0.01, 1e-6) * 0.3
        self.p50 += step * (0.5 if sample > self.p50 else -0.5)
        self.p90 += step * (0.9 if sample > self.p90 else -0.1)
        self.p90 = max(self.p90, self.p50)

    def add_batch(self, samples: Sequence[float]) -> None:
        """A check's samples: each one, then the batch median into the baseline."""
        finite = sorted(s for s in samples if math.isfinite(s))
        if not finite:
            return
        median = finite[len(finite) // 2]
        if self._ewma.count == 0:
            # seed the quantile trackers from the batch itself, not from its first sample
            self._ewma.update(median)
            self.p50 = median
            self.p90 = finite[min(len(finite) - 1, (len(finite) * 9) // 10)]
        for sample in samples:
            self.add(sample)
        self._baseline.update(median)

    def restart(self, samples: Sequence[float]) -> None:
        """Forget the past and seed from ``samples`` (a fresh probe of a host)."""
        self._ewma = Ewma(half_life=self.half_life, warmup=1)
        self._baseline = Ewma(half_life=self.baseline_half_life, warmup=1)
        self.add_batch(samples)

    @property
    def forecast(self) -> float | None:
        """The latency to expect in the next period (s): the 90th-percentile
        estimate, never below the mean. None before the first sample."""
        if self._ewma.count == 0:
            return None
        return max(self.p90, self._ewma.mean)


@attrs.define(slots=True)
class HostStats:
    """What wsmux measured of one host (mutable; :meth:`EndpointChooser.hosts`).

    Attributes:
        url: the host's WebSocket URL.
        rest_url: the REST base URL used with it (None: the adapter's).
        rank: the user's order (0 first).
        handshake_s: last connect time (TCP + TLS + WebSocket upgrade), seconds.
        first_data_s: last time from open to the first data event, seconds.
        latency: the latency forecast of its events.
        failures: connection attempts failed in a row.
        probes: probes made.
        switches_to: times it became the active host.
        degraded: its last live check was well above its baseline.
        absurd: latency samples left out (beyond ±60 s: a timestamp in the
            wrong unit, a stuck venue clock).
    """

    url: str
    rest_url: str | None = None
    rank: int = 0
    handshake_s: float | None = None
    first_data_s: float | None = None
    latency: LatencyForecast = attrs.field(factory=LatencyForecast)
    failures: int = 0
    probes: int = 0
    switches_to: int = 0
    degraded: bool = False
    absurd: int = 0


class EndpointChooser:
    """The ranking of one venue's hosts (see the module docstring).

    Args:
        venue: the venue id.
        hosts: ``(url, rest_url)`` per candidate, in order of preference.
        policy: the knobs.
        redundancy: connections per set of subscriptions (spread over this many best hosts).

    Raises:
        ConfigError: no host, or the same URL twice.
    """

    def __init__(
        self,
        venue: str,
        hosts: Sequence[tuple[str, str | None]],
        policy: EndpointPolicy,
        *,
        redundancy: int = 1,
    ) -> None:
        if not hosts:
            raise ConfigError(f"endpoints[{venue!r}] lists no host")
        urls = [url for url, _ in hosts]
        dup = next((u for u in urls if urls.count(u) > 1), None)
        if dup is not None:
            raise ConfigError(f"endpoints[{venue!r}] lists {dup!r} twice")
        self.venue = venue
        self.policy = policy
        self.redundancy = redundancy
        self._hosts = {url: HostStats(url, rest, i) for i, (url, rest) in enumerate(hosts)}
        self.active = urls[0]
        """The host new connections go to (the best one, once measured)."""

    @property
    def hosts(self) -> list[HostStats]:
        """Every host, in the user's order."""
        return list(self._hosts.values())

    def host(self, url: str) -> HostStats:
        return self._hosts[url]

    def __contains__(self, url: object) -> bool:
        return url in self._hosts

    # --- ranking ----------------------------------------------------------------

    def score(self, host: HostStats) -> tuple[int, float, float, int]:
        """Sort key: healthy before failing, then the latency forecast, then the
        handshake time (all a venue without timestamps has), unmeasured last,
        then the user's order."""
        failing = 1 if host.failures >= self.policy.failover_after else 0
        forecast = host.latency.forecast
        handshake = host.handshake_s
        return (
            failing,
            math.inf if forecast is None else forecast,
            math.inf if handshake is None else handshake,
            host.rank,
        )

    def ranking(self) -> list[HostStats]:
        """The hosts, best first."""
        return sorted(self._hosts.values(), key=self.score)

    def pick(self, load: dict[str, int]) -> str:
        """The host for a new connection, given the live connections per host:
        the active host with redundancy 1, else the least-loaded of the
        ``redundancy`` best (the active host first on a tie)."""
        if self.redundancy <= 1:
            return self.active
        ranked = [self.active, *(h.url for h in self.ranking() if h.url != self.active)][: self.redundancy]
        return min(ranked, key=lambda url: (load.get(url, 0), ranked.index(url)))

    # --- measurements -----------------------------------------------------------

    def record_probe(
        self, url: str, handshake_s: float | None, first_data_s: float | None, samples: Sequence[float]
    ) -> None:
        """A probe of ``url`` finished (figures None where it got none)."""
        host = self._hosts[url]
        host.probes += 1
        if handshake_s is not None:
            host.handshake_s = handshake_s
            host.failures = 0
        if first_data_s is not None:
            host.first_data_s = first_data_s
        if samples:
            host.latency.restart(samples)
            host.degraded = False

    def record_samples(self, url: str, samples: Sequence[float]) -> None:
        """Latency samples of a live connection to ``url`` (one check). The
        check counts as degraded when its median exceeds ``degrade_ratio``
        times the baseline as it stood *before* the check (the baseline then
        absorbs it, slowly: a lasting change becomes the new normal)."""
        host = self._hosts[url]
        before = host.latency.baseline
        host.latency.add_batch(samples)
        finite = sorted(x for x in samples if math.isfinite(x))
        if finite and before is not None:
            median = finite[len(finite) // 2]
            policy = self.policy
            host.degraded = median > before * policy.degrade_ratio and median - before >= policy.min_gain_s

    def record_handshake(self, url: str, handshake_s: float) -> None:
        host = self._hosts[url]
        host.handshake_s = handshake_s
        host.failures = 0

    def record_failure(self, url: str) -> bool:
        """A connection attempt to ``url`` failed; True when that makes
        ``failover_after`` in a row (time to move its connections)."""
        host = self._hosts[url]
        host.failures += 1
        return host.failures == self.policy.failover_after

    def next_after(self, url: str) -> str | None:
        """The best other host that is not failing, for a failover from ``url``."""
        for host in self.ranking():
            if host.url != url and host.failures < self.policy.failover_after:
                return host.url
        return None

    # --- decisions ----------------------------------------------------------------

    def verdict(self) -> tuple[str, EndpointReason] | None:
        """``(better host, reason)`` when the active host should be left, else None.

        Two hosts are compared on a figure both have: the latency forecast,
        or where neither has one the handshake time. Nothing is decided while
        the active host is unmeasured."""
        current = self._hosts[self.active]
        mine = self.score(current)
        policy = self.policy
        for host in self.ranking():
            if host.url == self.active:
                return None
            theirs = self.score(host)
            if mine[0] > theirs[0]:
                return host.url, EndpointReason.FAILOVER
            if not math.isinf(mine[1]) and not math.isinf(theirs[1]):
                mine_s, theirs_s = mine[1], theirs[1]
            elif (
                math.isinf(mine[1]) and math.isinf(theirs[1]) and not math.isinf(mine[2]) and not math.isinf(theirs[2])
            ):
                mine_s, theirs_s = mine[2], theirs[2]
            else:
                continue
            if theirs_s < mine_s * (1 - policy.switch_margin) and mine_s - theirs_s >= policy.min_gain_s:
                return host.url, EndpointReason.DEGRADED if self.degraded() else EndpointReason.FASTER
        return None

    def degraded(self) -> bool:
        """Whether the active host is degrading: its last check's median, or its
        forecast, rose to ``degrade_ratio`` times its baseline."""
        host = self._hosts[self.active]
        if host.degraded:
            return True
        latency = host.latency
        forecast = latency.forecast
        baseline = latency.baseline
        if forecast is None or baseline is None:
            return False
        return forecast > baseline * self.policy.degrade_ratio and forecast - baseline >= self.policy.min_gain_s

    def switch(self, url: str) -> None:
        """Make ``url`` the active host."""
        self.active = url
        self._hosts[url].switches_to += 1
