"""Per venue: exchange-timestamp → receive latency and the clock offset.

Theory of operation
-------------------
Every event carries the venue's timestamp ``ts`` and the local receive time
``recv_ns``. Their difference ``d = recv_ns - ts`` is the one-way latency
*minus* the offset ``θ`` of the venue's clock to ours (``θ > 0``: the venue's
clock runs ahead)::

    d = latency - θ          latency = d + θ

**Sampling (the hot path).** The connection's :class:`~wsmux._pipeline.Feed`
calls :meth:`VenueLatency.sample` for one frame in ``sample_every`` (a power
of two; a bit test on the feed's frame counter), with that frame's events;
the last event stands for the frame. A sample costs a few integer operations
and one :meth:`~wsmux.metrics.LatencyHistogram.record`; the frames between
samples cost one bit test. A connection that received fewer than
``dense_below`` frames in the last second samples every frame (set by
:meth:`~wsmux.metrics.MetricsRegistry.tick`): a quiet feed would otherwise
give too few samples for its envelope, and its total cost is small anyway.

**Bad timestamps** never reach the histogram or the offset: an event without
a timestamp counts in :attr:`~VenueLatency.no_ts`; a timestamp that is not an
integer, zero, negative, or puts ``|d|`` beyond :data:`MAX_SKEW_NS` (an hour:
a far-future stamp, milliseconds where nanoseconds are expected or the
reverse) counts in :attr:`~VenueLatency.bad_ts` and is dropped.

**The offset.** Two sources, the better one wins:

* ``rest`` — NTP-style from the venue's REST server-time endpoint
  (:meth:`~wsmux.Adapter.time_request`): with ``t0`` sent, ``t3`` received
  and ``s`` the server's time, ``θ = s - (t0 + t3) / 2`` within ``± RTT/2``.
  Of the last :data:`REST_SAMPLES` estimates the one with the smallest
  round trip is used (the least queueing, the tightest bound).
* ``envelope`` — without a server time, the lower envelope of ``d``: the
  minimum of ``d`` in each :data:`WINDOW_S`-second window (:meth:`rotate`),
  and the median of the last :data:`WINDOWS` window minima as the floor
  ``e`` (one absurd sample spoils one window, not the estimate). Causality
  (latency ≥ 0) bounds ``θ ≥ -e``; wsmux takes the smallest offset
  consistent with it, ``θ = max(0, -e)``: clocks are assumed to agree unless
  the data proves the venue's runs ahead. The offset is then a *lower bound*
  (``uncertainty_ns`` is None).

The histograms record ``d + θ`` (latency net of the offset, clamped at 0)
with the θ current at the time; the offset moves slowly, so the histogram
stays meaningful. A venue is flagged *ahead* when its timestamps come after
their own receipt by more than the offset's uncertainty — a skewed venue
clock (no REST time) or a venue that stamps late.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

from wsmux.metrics._hist import LatencyHistogram
from wsmux.model import Channel

__all__ = ["MAX_SKEW_NS", "REST_SAMPLES", "WINDOWS", "WINDOW_S", "ClockOffset", "VenueLatency"]

MAX_SKEW_NS = 3_600_000_000_000
"""``|recv_ns - ts|`` beyond this (one hour) is an absurd timestamp."""
WINDOW_S = 10.0
"""Seconds per envelope window."""
WINDOWS = 6
"""Envelope windows kept (the floor is the median of their minima)."""
REST_SAMPLES = 8
"""REST server-time estimates kept (the smallest round trip is used)."""
_NO_MIN = 1 << 62


class ClockOffset:
    """A venue clock's offset to ours: see the module docstring.

    Attributes:
        offset_ns: θ, the venue's clock minus ours (ns; > 0: the venue runs ahead).
        uncertainty_ns: ± bound of ``offset_ns`` (RTT/2 for ``rest``), None
            for ``envelope`` (a lower bound) and ``none``.
        source: ``"rest"``, ``"envelope"`` or ``"none"`` (no estimate yet).
        floor_ns: the envelope floor ``e`` (the smallest ``recv - ts`` seen
            recently, robustly), None before the first window closes.
        rtt_ns: the round trip of the REST estimate in use.
    """

    __slots__ = ("_rest", "floor_ns", "offset_ns", "rtt_ns", "source", "uncertainty_ns")

    def __init__(self) -> None:
        self.offset_ns = 0
        self.uncertainty_ns: int | None = None
        self.source = "none"
        self.floor_ns: int | None = None
        self.rtt_ns: int | None = None
        self._rest: collections.deque[tuple[int, int]] = collections.deque(maxlen=REST_SAMPLES)

    def rest_sample(self, sent_ns: int, received_ns: int, server_ns: int, resolution_ns: int = 0) -> bool:
        """Add one server-time exchange (local send and receive times, the
        server's time, truncated to ``resolution_ns``: it is read as the middle
        of its unit, and half a unit widens the bound). Returns False (and
        ignores it) if it is absurd."""
        rtt = received_ns - sent_ns
        theta = server_ns + resolution_ns // 2 - (sent_ns + received_ns) // 2
        if rtt < 0 or rtt > 60 * 10**9 or abs(theta) > MAX_SKEW_NS:
            return False
        self._rest.append((rtt + resolution_ns, theta))
        best, best_theta = min(self._rest)
        self.offset_ns, self.uncertainty_ns = best_theta, best // 2
        self.rtt_ns = best - resolution_ns
        self.source = "rest"
        return True

    def envelope(self, floor_ns: int | None) -> None:
        """A new envelope floor (or None: no samples); used unless REST estimates exist."""
        self.floor_ns = floor_ns
        if self.source == "rest" or floor_ns is None:
            return
        self.offset_ns = max(0, -floor_ns)
        self.uncertainty_ns = None
        self.source = "envelope"

    @property
    def ahead_ns(self) -> int:
        """How far the venue's timestamps come after their receipt beyond the
        offset's uncertainty (0: not ahead). With an envelope offset: how far
        the raw floor is below zero (the venue's clock, or its stamping, is
        at least that far ahead)."""
        if self.floor_ns is None:
            return 0
        if self.source == "rest":
            net_floor = self.floor_ns + self.offset_ns
            return max(0, -net_floor - (self.uncertainty_ns or 0))
        return max(0, -self.floor_ns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset_ns": self.offset_ns,
            "uncertainty_ns": self.uncertainty_ns,
            "source": self.source,
            "floor_ns": self.floor_ns,
            "rtt_ns": self.rtt_ns,
            "ahead_ns": self.ahead_ns,
        }


class VenueLatency:
    """Exchange-time → receive latency of one venue, per channel, and its
    clock offset (see the module docstring).

    Args:
        channel_of: event class → channel (the events that carry market data).
        sample_every: sample one frame in this many (a power of two).

    Attributes:
        mask: ``sample_every - 1`` (the feed tests ``frames & mask``).
        histograms: per channel, latency net of the offset (ns), cumulative.
        clock: the :class:`ClockOffset`.
        samples, no_ts, bad_ts: frames sampled, sampled events without a
            timestamp, sampled events with an absurd one (dropped).
    """

    __slots__ = (
        "_by_class",
        "_channel_of",
        "_mins",
        "_snapshots",
        "_window_min",
        "bad_ts",
        "clock",
        "events_by_type",
        "frames_by_type",
        "histograms",
        "mask",
        "no_ts",
        "offset_ns",
        "samples",
    )

    def __init__(self, channel_of: Mapping[type, Channel], sample_every: int = 16) -> None:
        if sample_every < 1 or sample_every & (sample_every - 1):
            raise ValueError(f"sample_every must be a power of two, not {sample_every}")
        self.mask = sample_every - 1
        self._channel_of = dict(channel_of)
        self._by_class: dict[type, LatencyHistogram | None] = {}
        self.histograms: dict[Channel, LatencyHistogram] = {}
        self.clock = ClockOffset()
        self.offset_ns = 0
        """The offset the hot path adds (a copy of ``clock.offset_ns``, refreshed by :meth:`rotate`)."""
        self._window_min = _NO_MIN
        self._mins: collections.deque[int] = collections.deque(maxlen=WINDOWS)
        self._snapshots: collections.deque[dict[Channel, LatencyHistogram]] = collections.deque(maxlen=WINDOWS)
        self.events_by_type: dict[type, int] = {}
        """Market events per class, estimated from the samples (weighted by the sampling rate)."""
        self.frames_by_type: dict[type, int] = {}
        """Sampled frames per class (of their last event): the size of the sample behind ``events_by_type``."""
        self.samples = 0
        self.no_ts = 0
        self.bad_ts = 0

    def sample(self, events: Sequence[Any], recv_ns: int, weight: int = 1) -> None:
        """Record the frame whose parsed events are ``events``, one of ``weight``
        frames (the sampling rate). O(1)."""
        if not events:
            return
        event = events[-1]
        cls = type(event)
        hist = self._by_class.get(cls)
        if hist is None:
            hist = self._histogram_for(cls)
            if hist is None:
                return
        by_type = self.events_by_type
        by_type[cls] = by_type.get(cls, 0) + len(events) * weight
        frames = self.frames_by_type
        frames[cls] = frames.get(cls, 0) + 1
        ts = event.ts
        if type(ts) is not int:  # None: the venue sends none; anything else is an adapter's bug
            if ts is None:
                self.no_ts += 1
            else:
                self.bad_ts += 1
            return
        d = recv_ns - ts
        # |d| within MAX_SKEW_NS (spelled out: a global lookup costs more than the compare)
        if ts <= 0 or not -3_600_000_000_000 <= d <= 3_600_000_000_000:
            self.bad_ts += 1
            return
        self.samples += 1
        if d < self._window_min:
            self._window_min = d
            if self.clock.source == "none":  # the first samples: no floor yet
                self.offset_ns = max(0, -d)
        hist.record(d + self.offset_ns)

    def _histogram_for(self, cls: type) -> LatencyHistogram | None:
        channel = self._channel_of.get(cls)
        hist = None
        if channel is not None:
            hist = self.histograms.get(channel)
            if hist is None:
                hist = self.histograms[channel] = LatencyHistogram()
        self._by_class[cls] = hist
        return hist

    def rotate(self) -> None:
        """Close the current envelope window (call every :data:`WINDOW_S`
        seconds) and refresh the offset."""
        if self._window_min != _NO_MIN:
            self._mins.append(self._window_min)
            self._window_min = _NO_MIN
        if self._mins:
            ordered = sorted(self._mins)
            self.clock.envelope(ordered[(len(ordered) - 1) // 2])
        self.offset_ns = self.clock.offset_ns
        self._snapshots.append({channel: hist.copy() for channel, hist in self.histograms.items()})

    def recent(self, channel: Channel | None = None) -> LatencyHistogram:
        """The values recorded since :data:`WINDOWS` - 1 envelope windows ago
        (50-60 s; everything, until that many windows have closed), of
        ``channel`` or (None) of every channel."""
        channels = [channel] if channel is not None else list(self.histograms)
        out = LatencyHistogram()
        full = len(self._snapshots) == self._snapshots.maxlen
        oldest = self._snapshots[0] if full else {}
        for ch in channels:
            hist = self.histograms.get(ch)
            if hist is None:
                continue
            before = oldest.get(ch)
            out.merge(hist.since(before) if before is not None else hist)
        return out

    def rest_sample(self, sent_ns: int, received_ns: int, server_ns: int, resolution_ns: int = 0) -> bool:
        """A REST server-time exchange (see :meth:`ClockOffset.rest_sample`)."""
        ok = self.clock.rest_sample(sent_ns, received_ns, server_ns, resolution_ns)
        if ok:
            self.offset_ns = self.clock.offset_ns
        return ok

    def merged(self) -> LatencyHistogram:
        """Every channel's histogram added up."""
        out = LatencyHistogram()
        for hist in self.histograms.values():
            out.merge(hist)
        return out


_NO_HIST: Any = object()
