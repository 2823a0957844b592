"""Prometheus exporter (extra ``wsmux[prometheus]``): a custom collector that
reads the multiplexer's health and histograms at scrape time.

Theory of operation
-------------------
``prometheus_client``'s HTTP server runs in a thread of its own. On each
scrape the collector (in that thread) asks the multiplexer's event loop for a
:class:`Snapshot` — ``mux.health()`` plus copies of the latency histograms —
with :meth:`asyncio.loop.call_soon_threadsafe`, and waits up to
:data:`SNAPSHOT_TIMEOUT` seconds. The loop only runs one short callback per
scrape; the thread never touches live state. If the loop does not answer in
time (blocked by user code) the last snapshot is served again and
``wsmux_scrape_stale`` is 1, so a scrape never hangs and never blocks the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from wsmux.errors import ConfigError
from wsmux.health import Health
from wsmux.metrics._hist import LatencyHistogram

if TYPE_CHECKING:
    from wsmux.multiplexer import Multiplexer

__all__ = ["BUCKETS_S", "SNAPSHOT_TIMEOUT", "MetricsServer", "Snapshot", "WsmuxCollector", "take_snapshot"]

SNAPSHOT_TIMEOUT = 2.0
"""Seconds a scrape waits for the event loop's snapshot."""
BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""``le`` bounds (seconds) of the exported latency histograms."""
_BOUNDS_NS = [int(b * 1e9) for b in BUCKETS_S]


@attrs.frozen
class Snapshot:
    """What one scrape exports, copied on the event loop."""

    health: Health
    latency: dict[tuple[str, str], LatencyHistogram]
    """Per (venue, channel): exchange time → receive, net of the offset (cumulative)."""
    stream_latency: dict[str, LatencyHistogram]
    """Per stream: receive → consumer (cumulative)."""


def take_snapshot(mux: Multiplexer) -> Snapshot:
    """Copy what an export needs (call on the multiplexer's loop)."""
    latency: dict[tuple[str, str], LatencyHistogram] = {}
    streams: dict[str, LatencyHistogram] = {}
    if mux.metrics is not None:
        for venue, vm in mux.metrics.venues.items():
            for channel, hist in vm.latency.histograms.items():
                latency[venue, channel.value] = hist.copy()
        streams = {name: hist.copy() for name, hist in mux.metrics.stream_latency.items()}
    return Snapshot(mux.health(), latency, streams)


def _import_prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigError("the Prometheus exporter needs prometheus_client: pip install 'wsmux[prometheus]'") from exc
    return prometheus_client


class WsmuxCollector:
    """A ``prometheus_client`` collector over a snapshot source (see the module docstring).

    Args:
        mux: the multiplexer.
        loop: its event loop.
    """

    def __init__(self, mux: Multiplexer, loop: asyncio.AbstractEventLoop) -> None:
        self.mux = mux
        self.loop = loop
        self.last: Snapshot | None = None
        self.stale = False
        self.timeout = SNAPSHOT_TIMEOUT

    def _snapshot(self) -> Snapshot | None:
        future: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def copy() -> None:  # runs on the loop: one short callback per scrape
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(take_snapshot(self.mux))
                except Exception as exc:
                    future.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(copy)
        except RuntimeError:  # the loop is closed
            self.stale = True
            return self.last
        try:
            self.last = future.result(self.timeout)
            self.stale = False
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            future.cancel()  # a late callback then does nothing
            self.stale = True
        return self.last

    def describe(self) -> list[Any]:
        return []  # no scrape at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        snap = self._snapshot()
        stale = GaugeMetricFamily(
            "wsmux_scrape_stale", "1 if the event loop did not answer in time (last snapshot served)"
        )
        stale.add_metric([], 1.0 if self.stale else 0.0)
        yield stale
        if snap is not None:
            yield from _families(snap)


def _families(snap: Snapshot) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    health = snap.health
    conn_labels = ["venue", "conn"]
    feed_counters = {
        "frames": "frames received",
        "bytes": "bytes received",
        "events": "events delivered by the feed",
        "parse_errors": "frames or events that could not be read",
        "gaps": "book and sequence gaps",
        "resyncs": "books (re)synced from a snapshot",
        "snapshot_failures": "REST snapshots that failed",
        "snapshot_reasks": "stream snapshots asked for again (none came, or it failed, in time)",
    }
    conn_counters = {
        "reconnects": "reconnections",
        "connect_failures": "connection attempts that never opened",
        "snapshot_requests": "REST requests made",
        "rest_waits": "REST requests delayed by the venue's budget",
        "rate_limited": "REST answers 418/429",
        "stale": "stale-data detections",
    }
    families = {
        key: CounterMetricFamily(f"wsmux_{key}", f"Connection: {doc}.", labels=conn_labels)
        for key, doc in {**feed_counters, **conn_counters}.items()
    }
    up = GaugeMetricFamily("wsmux_connection_up", "1 if the connection is open.", labels=[*conn_labels, "state"])
    failures = CounterMetricFamily(
        "wsmux_connection_failures",
        "Failed attempts and lost connections, by kind (exception class, stalled, dead_peer).",
        labels=[*conn_labels, "reason"],
    )
    for conn in health.connections:
        labels = [conn.venue, str(conn.conn_id)]
        for key in feed_counters:
            families[key].add_metric(labels, float(conn.feed.get(key, 0)))
        for key in conn_counters:
            families[key].add_metric(labels, float(conn.connection.get(key, 0)))
        up.add_metric([*labels, conn.state], 1.0 if conn.state == "open" else 0.0)
        for reason, n in conn.connection.get("failures_by_reason", {}).items():
            failures.add_metric([*labels, reason], float(n))
    yield from families.values()
    yield up
    yield failures

    valid = GaugeMetricFamily("wsmux_book_valid", "1 if the book is in sync.", labels=["venue", "symbol", "integrity"])
    checks = CounterMetricFamily(
        "wsmux_book_checksums", "Book checksums verified.", labels=["venue", "symbol", "result"]
    )
    book_gaps = CounterMetricFamily("wsmux_book_gaps", "Gaps found in the book.", labels=["venue", "symbol"])
    for conn in health.connections:
        for symbol, book in conn.books.items():
            book_gaps.add_metric([conn.venue, symbol], float(book.get("gaps", 0)))
            valid.add_metric([conn.venue, symbol, str(book.get("integrity"))], 1.0 if book.get("valid") else 0.0)
            checks.add_metric([conn.venue, symbol, "ok"], float(book.get("checksums_ok", 0)))
            checks.add_metric([conn.venue, symbol, "bad"], float(book.get("checksum_mismatches", 0)))
    yield valid
    yield checks
    yield book_gaps

    received = CounterMetricFamily("wsmux_stream_received", "Events routed to the stream.", labels=["stream"])
    delivered = CounterMetricFamily("wsmux_stream_delivered", "Events the consumer took.", labels=["stream"])
    dropped = CounterMetricFamily("wsmux_stream_dropped", "Events dropped, by reason.", labels=["stream", "reason"])
    buffered = GaugeMetricFamily("wsmux_stream_buffered", "Events waiting in the stream's buffer.", labels=["stream"])
    for s in health.streams:
        received.add_metric([s.name], float(s.received))
        delivered.add_metric([s.name], float(s.delivered))
        buffered.add_metric([s.name], float(s.buffered))
        for reason, n in s.dropped_by_reason.items():
            dropped.add_metric([s.name, reason], float(n))
    yield from (received, delivered, dropped, buffered)

    breaker = GaugeMetricFamily("wsmux_breaker_state", "1 for the breaker's current state.", labels=["venue", "state"])
    for venue, b in health.breakers.items():
        breaker.add_metric([venue, str(b.get("state"))], 1.0)
    yield breaker

    mux_counters = CounterMetricFamily("wsmux_multiplexer", "Multiplexer counters by name.", labels=["name"])
    for name, n in health.counters.items():
        mux_counters.add_metric([name], float(n))
    yield mux_counters

    rate = GaugeMetricFamily("wsmux_event_rate", "Data events per second.", labels=["venue", "window"])
    offset = GaugeMetricFamily(
        "wsmux_clock_offset_seconds", "Venue clock minus local clock (estimate).", labels=["venue", "source"]
    )
    uncertainty = GaugeMetricFamily(
        "wsmux_clock_offset_uncertainty_seconds", "± bound of the offset (REST: RTT/2).", labels=["venue"]
    )
    ahead = GaugeMetricFamily(
        "wsmux_clock_ahead_seconds", "How far the venue's timestamps run ahead of receipt.", labels=["venue"]
    )
    bad_ts = CounterMetricFamily("wsmux_bad_timestamps", "Sampled events with absurd timestamps.", labels=["venue"])
    no_ts = CounterMetricFamily("wsmux_missing_timestamps", "Sampled events without a timestamp.", labels=["venue"])
    rest_weight = CounterMetricFamily(
        "wsmux_rest_weight", "REST weight spent from the venue's budget.", labels=["venue"]
    )
    by_type = CounterMetricFamily(
        "wsmux_events_by_type_estimated",
        "Data events per type, estimated from the sampled frames.",
        labels=["venue", "type"],
    )
    flow = GaugeMetricFamily(
        "wsmux_flow_anomaly", "1 while the flow is in this state.", labels=["venue", "conn", "state"]
    )
    channel_flow = GaugeMetricFamily(
        "wsmux_channel_flow_anomaly",
        "1 while the venue's flow on this channel is in this state.",
        labels=["venue", "channel", "state"],
    )
    stall = GaugeMetricFamily(
        "wsmux_stall_timeout_seconds", "The connection's stale-data timer (adaptive).", labels=["venue", "conn"]
    )
    for vh in health.venue_health:
        for window, value in vh.rates.get("events", {}).items():
            rate.add_metric([vh.venue, window], value)
        if vh.clock:
            offset.add_metric([vh.venue, str(vh.clock["source"])], vh.clock["offset_ns"] / 1e9)
            if vh.clock["uncertainty_ns"] is not None:
                uncertainty.add_metric([vh.venue], vh.clock["uncertainty_ns"] / 1e9)
            ahead.add_metric([vh.venue], vh.clock["ahead_ns"] / 1e9)
        bad_ts.add_metric([vh.venue], float(vh.bad_ts))
        if "rest_weight" in vh.counters:
            rest_weight.add_metric([vh.venue], float(vh.counters["rest_weight"]))
        for kind, n in vh.events_by_type.items():
            by_type.add_metric([vh.venue, kind], float(n))
        no_ts.add_metric([vh.venue], float(vh.no_ts))
        for cid, f in vh.flows.items():
            flow.add_metric([vh.venue, str(cid), str(f["state"])], 1.0)
            if f["stall_timeout"] is not None:
                stall.add_metric([vh.venue, str(cid)], float(f["stall_timeout"]))
        for channel, f in vh.channel_flows.items():
            channel_flow.add_metric([vh.venue, channel, str(f["state"])], 1.0)
    yield from (rate, offset, uncertainty, ahead, bad_ts, no_ts, rest_weight, by_type, flow, channel_flow, stall)

    latency = HistogramMetricFamily(
        "wsmux_latency_seconds",
        "Exchange timestamp to receive, net of the clock offset (sampled).",
        labels=["venue", "channel"],
    )
    for (venue, channel), hist in sorted(snap.latency.items()):
        latency.add_metric([venue, channel], _buckets(hist), sum_value=hist.sum / 1e9)
    yield latency
    consumer = HistogramMetricFamily(
        "wsmux_consumer_latency_seconds",
        "Receive to the stream's consumer (sync callback returned or iterator read; sampled).",
        labels=["stream"],
    )
    for name, hist in sorted(snap.stream_latency.items()):
        consumer.add_metric([name], _buckets(hist), sum_value=hist.sum / 1e9)
    yield consumer


def _buckets(hist: LatencyHistogram) -> list[tuple[str, float]]:
    counts = hist.cumulative(_BOUNDS_NS)
    return [*((repr(b), float(n)) for b, n in zip(BUCKETS_S, counts, strict=True)), ("+Inf", float(hist.total))]


class MetricsServer:
    """The running exporter (see :meth:`wsmux.Multiplexer.serve_metrics`).

    Attributes:
        host, port: where it listens (``port`` is the bound one: pass 0 for any).
    """

    def __init__(self, httpd: Any, thread: Any, host: str, port: int) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = host
        self.port = port

    @classmethod
    def start(cls, mux: Multiplexer, loop: asyncio.AbstractEventLoop, port: int, host: str) -> MetricsServer:
        """Bind and serve in a daemon thread.

        Raises:
            ConfigError: the port is in use or cannot be bound, or ``prometheus_client`` is missing.
        """
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"metrics port must be an int in 0..65535, not {port!r}")
        prometheus = _import_prometheus()
        registry = prometheus.CollectorRegistry(auto_describe=False)
        registry.register(WsmuxCollector(mux, loop))
        try:
            httpd, thread = prometheus.start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        return cls(httpd, thread, host, int(httpd.server_address[1]))

    @property
    def url(self) -> str:
        """The scrape URL."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (blocks until the server thread has stopped)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
