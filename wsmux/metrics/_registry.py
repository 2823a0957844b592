"""The metrics registry of a multiplexer: what it keeps, what it reads.

Theory of operation
-------------------
Most counters already exist where the work is done — the Feed's
(:class:`~wsmux._pipeline.FeedStats`: frames, bytes, events, gaps, resyncs,
parse errors), the connection's (:class:`~wsmux.connection.ConnectionStats`:
reconnects and their last reason, REST requests and waits), the books'
(checksums, integrity level), the streams' (:class:`~wsmux.StreamStats`:
drops by reason, buffer depth) and the breakers'. The registry does **not**
count them again on the hot path: it reads them when asked (a scrape, the
dashboard, :meth:`wsmux.Multiplexer.health`) and once per second in
:meth:`MetricsRegistry.tick`.

What it adds:

* per venue, a :class:`~wsmux.metrics.VenueLatency` (exchange time →
  receive, per channel, sampled one frame in ``sample_every``; the clock
  offset) that the venue's Feeds sample into;
* per stream, a receive → consumer histogram (sampled in ``Stream._put``);
* per venue, a ring of per-second totals (frames, bytes, events) from which
  rates over 1 s, 10 s and 60 s windows and the dashboard's sparkline come;
* per connection, a :class:`~wsmux.metrics.FlowBaseline` whose anomalies
  :meth:`tick` returns and whose rate prediction sets the connection's
  stale-data timer (within bounds);
* per venue and channel, a :class:`~wsmux.metrics.ChannelFlow` fed from the
  per-class counts the latency sampler keeps (exact where a connection
  samples every frame, an estimate from one frame in ``sample_every``
  otherwise, judged only when the sample is large enough: see
  :mod:`wsmux.metrics._anomaly`), so trades that stop while the book keeps
  the connection busy are reported. Its anomalies name the venue and the
  channel, and the connection when exactly one open connection carries the
  channel. A channel that is the only one of the only connection carrying it
  is judged by that connection's exact baseline alone (no double report).
  A venue with a connection that is not open has its channels left unjudged
  for that second (a reconnect is not a collapse of the market).

:meth:`tick` is a pure function of the connections' counters and the times
it is handed, so tests drive it with a manual clock.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from wsmux.metrics._anomaly import ChannelFlow, FlowBaseline
from wsmux.metrics._hist import LatencyHistogram
from wsmux.metrics._latency import WINDOW_S, VenueLatency
from wsmux.model import Anomaly, AnomalyKind, Channel

if TYPE_CHECKING:
    from wsmux.connection import Connection

__all__ = ["DISABLED_MASK", "RATE_WINDOWS", "MetricsRegistry", "VenueMetrics"]

DISABLED_MASK = (1 << 62) - 1
"""A sampling mask that never fires (``n & DISABLED_MASK`` is ``n`` for any count ≥ 1)."""
RATE_WINDOWS = (1, 10, 60)
"""Seconds of the rate windows."""
_HISTORY = 61


@attrs.define(slots=True)
class _Totals:
    frames: int = 0
    bytes: int = 0
    events: int = 0


class VenueMetrics:
    """What the registry keeps for one venue.

    Attributes:
        latency: exchange time → receive histograms and the clock offset.
        history: per-second cumulative totals ``(frames, bytes, events)``, oldest first.
        per_second: data events in each of the last 60 seconds (the sparkline).
        channels: per subscribed channel, its flow baseline.
    """

    __slots__ = ("_channel_seen", "channels", "history", "latency", "per_second", "totals")

    def __init__(self, latency: VenueLatency) -> None:
        self.latency = latency
        self.totals = _Totals()
        self.history: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=_HISTORY)
        self.per_second: collections.deque[int] = collections.deque(maxlen=60)
        self.channels: dict[Channel, ChannelFlow] = {}
        self._channel_seen: dict[Channel, tuple[int, int]] = {}

    def channel_counts(self, channel_of: Mapping[type, Channel]) -> dict[Channel, tuple[int, int]]:
        """Per channel, the (events, sampled frames) the sampler counted since
        the previous call (events weighted by the sampling rate)."""
        lat = self.latency
        totals: dict[Channel, tuple[int, int]] = {}
        for cls, events in lat.events_by_type.items():
            channel = channel_of.get(cls)
            if channel is not None:
                e, f = totals.get(channel, (0, 0))
                totals[channel] = (e + events, f + lat.frames_by_type.get(cls, 0))
        seen = self._channel_seen
        out = {}
        for channel, (events, frames) in totals.items():
            e0, f0 = seen.get(channel, (0, 0))
            out[channel] = (events - e0, frames - f0)
        self._channel_seen = totals
        return out

    def rates(self, tick_s: float = 1.0) -> dict[str, dict[str, float]]:
        """``{"events": {"1s": r, "10s": r, "60s": r}, "frames": ..., "bytes": ...}``
        per second over each window of ticks (shorter if the history is
        shorter), ticks being ``tick_s`` seconds apart."""
        out: dict[str, dict[str, float]] = {"frames": {}, "bytes": {}, "events": {}}
        hist = self.history
        if len(hist) < 2:
            return {k: {f"{w}s": 0.0 for w in RATE_WINDOWS} for k in out}
        last = hist[-1]
        for window in RATE_WINDOWS:
            back = min(window, len(hist) - 1)
            first = hist[-1 - back]
            for i, key in enumerate(("frames", "bytes", "events")):
                out[key][f"{window}s"] = (last[i] - first[i]) / (back * tick_s)
        return out


class MetricsRegistry:
    """Metrics of one multiplexer (see the module docstring).

    Args:
        channel_of: event class → channel (the market-data events).
        sample_every: latency sampling on busy connections, one frame (and
            one stream event) in this many; a power of two.
        dense_below: a connection that received fewer frames than this in
            the last tick samples every frame (quiet feeds need every
            sample for their clock envelope, and cost little in total).
        adaptive_stale: let the arrival-rate prediction set each connection's
            stale-data timer, within ``[stale_after / 4, stale_after * 4]``
            of the timer it was given (never on a connection without one).
        baseline: keyword arguments of each connection's :class:`FlowBaseline`.
        interval: seconds between the multiplexer's :meth:`tick` calls;
            None: the multiplexer runs no ticker (the caller ticks — tests).
    """

    def __init__(
        self,
        channel_of: Mapping[type, Channel],
        *,
        sample_every: int = 32,
        dense_below: int = 100,
        adaptive_stale: bool = True,
        baseline: Mapping[str, Any] | None = None,
        interval: float | None = 1.0,
    ) -> None:
        if sample_every < 1 or sample_every & (sample_every - 1):
            raise ValueError(f"sample_every must be a power of two, not {sample_every}")
        if interval is not None and not interval > 0:
            raise ValueError(f"interval must be positive seconds or None, not {interval}")
        self.interval = interval
        self.channel_of = dict(channel_of)
        self.sample_every = sample_every
        self.dense_below = dense_below
        self.adaptive_stale = adaptive_stale
        self.baseline_args = dict(baseline or {})
        self.venues: dict[str, VenueMetrics] = {}
        self.flows: dict[int, FlowBaseline] = {}
        self.stream_latency: dict[str, LatencyHistogram] = {}
        """Per stream name: receive → consumer (callback returned, or read by the iterator)."""
        self._last: dict[int, _Totals] = {}
        self._base_stall: dict[int, float] = {}
        self._ticks = 0
        self.last_tick_ns = 0
        self.clock_probe_every = 60
        """Ticks (seconds) between REST server-time probes of a venue."""
        self._probed: dict[str, int | None] = {}

    def venue(self, venue: str) -> VenueMetrics:
        """The metrics of ``venue`` (created on first use)."""
        vm = self.venues.get(venue)
        if vm is None:
            vm = self.venues[venue] = VenueMetrics(VenueLatency(self.channel_of, self.sample_every))
        return vm

    def clock_probe_due(self, venue: str) -> bool:
        """Whether ``venue``'s server time should be probed now (the first
        tick it is seen, then every :attr:`clock_probe_every` ticks; never
        once :meth:`no_server_time` said it has none). Records the probe."""
        last = self._probed.get(venue, -(1 << 30))
        if last is None or self._ticks - last < self.clock_probe_every:
            return False
        self._probed[venue] = self._ticks
        return True

    def no_server_time(self, venue: str) -> None:
        """``venue`` has no REST server time: stop probing it."""
        self._probed[venue] = None

    def stream_histogram(self, name: str) -> LatencyHistogram:
        """The receive → consumer histogram of the stream ``name`` (created on first use)."""
        hist = self.stream_latency.get(name)
        if hist is None:
            hist = self.stream_latency[name] = LatencyHistogram()
        return hist

    def tick(self, now_ns: int, connections: Iterable[Connection]) -> list[Anomaly]:
        """One second passed: sample every connection's counters, feed the
        baselines and rate rings, rotate the latency envelopes every
        :data:`~wsmux.metrics._latency.WINDOW_S` ticks, adapt the stale
        timers. Returns the anomalies to report."""
        self._ticks += 1
        self.last_tick_ns = now_ns
        anomalies: list[Anomaly] = []
        per_venue: dict[str, int] = {}
        seen: set[int] = set()
        carriers: dict[str, dict[Channel, list[Connection]]] = {}
        unsettled: set[str] = set()
        sampled: set[str] = set()
        for conn in connections:
            cid = conn.conn_id
            seen.add(cid)
            fs = conn.feed.stats
            last = self._last.get(cid)
            if last is None:
                last = self._last[cid] = _Totals()
            vm = self.venue(conn.venue)
            frames = fs.frames - last.frames
            if conn.feed.sample_mask:
                sampled.add(conn.venue)  # some frames of the last second were not seen
            conn.feed.sample_mask = 0 if frames < self.dense_below else self.sample_every - 1
            events = fs.events - last.events
            vm.totals.frames += frames
            vm.totals.bytes += fs.bytes - last.bytes
            vm.totals.events += events
            last.frames, last.bytes, last.events = fs.frames, fs.bytes, fs.events
            per_venue[conn.venue] = per_venue.get(conn.venue, 0) + events
            if conn.state != "open":
                unsettled.add(conn.venue)
                continue  # a reconnecting connection is not a collapse of the market
            by_channel = carriers.setdefault(conn.venue, {})
            for sub in conn.subscriptions:
                conns = by_channel.setdefault(sub.channel, [])
                if not conns or conns[-1] is not conn:
                    conns.append(conn)
            flow = self.flows.get(cid)
            if flow is None:
                flow = self.flows[cid] = FlowBaseline(**self.baseline_args)
            kind = flow.tick(events)
            if kind is not None:
                channels = {s.channel for s in conn.subscriptions}
                channel = next(iter(channels)) if len(channels) == 1 else None
                rate = float(events) if kind is AnomalyKind.SPIKE else round(flow.window_rate, 3)
                anomalies.append(Anomaly(conn.venue, cid, channel, kind, rate, flow.expected, now_ns))
            if self.adaptive_stale:
                self._adapt_stall(conn, flow)
        for venue, vm in self.venues.items():
            anomalies += self._tick_channels(
                now_ns, venue, vm, carriers.get(venue, {}), venue in unsettled, venue not in sampled
            )
        for gone in set(self._last) - seen:
            del self._last[gone]
            self.flows.pop(gone, None)
            self._base_stall.pop(gone, None)
        for venue, vm in self.venues.items():
            vm.history.append((vm.totals.frames, vm.totals.bytes, vm.totals.events))
            vm.per_second.append(per_venue.get(venue, 0))
            if self._ticks % int(WINDOW_S) == 0:
                vm.latency.rotate()
        return anomalies

    def _tick_channels(
        self,
        now_ns: int,
        venue: str,
        vm: VenueMetrics,
        carriers: Mapping[Channel, list[Connection]],
        unsettled: bool,
        exact: bool,
    ) -> list[Anomaly]:
        """Feed the channel baselines of ``venue`` one second of counts."""
        counts = vm.channel_counts(self.channel_of)
        for channel in set(vm.channels) - set(carriers):
            del vm.channels[channel]  # no longer subscribed
        if unsettled:
            return []
        out = []
        for channel, conns in carriers.items():
            flow = vm.channels.get(channel)
            if flow is None:
                flow = vm.channels[channel] = ChannelFlow(**self.baseline_args)
            events, frames = counts.get(channel, (0, 0))
            kind = flow.tick(events, frames, exact)
            if kind is None:
                continue
            sole = conns[0] if len(conns) == 1 else None
            if sole is not None and {s.channel for s in sole.subscriptions} == {channel}:
                continue  # the connection's exact baseline reports it
            base = flow.baseline
            rate = float(events) if kind is AnomalyKind.SPIKE else round(base.window_rate, 3)
            conn_id = sole.conn_id if sole is not None else None
            out.append(Anomaly(venue, conn_id, channel, kind, rate, base.expected, now_ns))
        return out

    def symbol_stale_after(self, venue: str, channel: Channel, configured: float, symbols: int) -> float:
        """The seconds of silence after which one subscribed symbol of
        ``venue``'s ``channel`` is reported stale (the ``stale_channels``
        watcher), given the ``configured`` timer and how many symbols of that
        channel the venue has subscribed.

        The channel's baseline predicts the silence expected once in a
        million (:meth:`FlowBaseline.stall_timeout`), clamped to
        ``[configured / 4, configured * 4]``. The rate is the channel's, over
        all its symbols: it is the symbol's own only when ``symbols`` is 1,
        and then the timer follows it both ways. With several symbols a
        symbol's rate is unknown (only at most the channel's), so the timer
        may only lengthen — when even the whole channel is too quiet to be
        expected within the configured time; a busy channel never makes its
        quiet symbols stale sooner. ``configured`` until the baseline is
        ready, or with ``adaptive_stale`` off."""
        vm = self.venues.get(venue)
        flow = vm.channels.get(channel) if vm is not None and self.adaptive_stale else None
        predicted = flow.baseline.stall_timeout(configured / 4, configured * 4) if flow is not None else None
        if predicted is None:
            return configured
        return predicted if symbols == 1 else max(configured, predicted)

    def _adapt_stall(self, conn: Connection, flow: FlowBaseline) -> None:
        live = conn.liveness
        base = self._base_stall.get(conn.conn_id)
        if base is None:
            if live.stall_timeout is None:
                return
            base = self._base_stall[conn.conn_id] = live.stall_timeout
        predicted = flow.stall_timeout(base / 4, base * 4)
        if predicted is not None:
            live.stall_timeout = predicted
