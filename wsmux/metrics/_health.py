"""Build the per-venue health records from the registry and the live counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wsmux.book._sync import public_name
from wsmux.health import VenueHealth
from wsmux.metrics._registry import MetricsRegistry, VenueMetrics

if TYPE_CHECKING:
    from wsmux._reliability.limits import RestLimiter
    from wsmux.connection import Connection
    from wsmux.multiplexer import BookView

__all__ = ["venue_health"]

_FEED_COUNTERS = (
    "frames",
    "bytes",
    "events",
    "parse_errors",
    "gaps",
    "resyncs",
    "snapshot_failures",
    "snapshot_reasks",
    "unknown_book",
)
_CONN_COUNTERS = (
    "connects",
    "reconnects",
    "connect_failures",
    "snapshot_requests",
    "rest_waits",
    "rate_limited",
    "stale",
    "resubscribes",
    "decompress_errors",
)
_BOOK_COUNTERS = ("checksums_ok", "checksum_mismatches", "buffer_overflow", "crossed", "bad_data")


def venue_health(
    metrics: MetricsRegistry | None,
    connections: Sequence[Connection],
    breakers: Mapping[str, Mapping[str, Any]],
    books: Mapping[tuple[str, str], BookView],
    rest_limiters: Mapping[str, RestLimiter] | None = None,
) -> list[VenueHealth]:
    """One :class:`~wsmux.health.VenueHealth` per venue with a connection
    (read at call time: nothing here is counted on the hot path)."""
    by_venue: dict[str, list[Connection]] = {}
    for conn in connections:
        by_venue.setdefault(conn.venue, []).append(conn)
    out = []
    for venue, conns in sorted(by_venue.items()):
        counters = dict.fromkeys((*_FEED_COUNTERS, *_CONN_COUNTERS, *_BOOK_COUNTERS), 0)
        for conn in conns:
            for key in _FEED_COUNTERS:
                counters[key] += getattr(conn.feed.stats, key)
            for key in _CONN_COUNTERS:
                counters[key] += getattr(conn.stats, key)
            for sync in conn.feed.syncs.values():
                for key in _BOOK_COUNTERS:
                    counters[key] += getattr(sync.stats, key)
        limiter = (rest_limiters or {}).get(venue)
        if limiter is not None:
            counters["rest_weight"] = int(limiter.weight_used)
            counters["rest_penalties"] = limiter.penalties
        reasons: dict[str, int] = {}
        for conn in conns:
            for kind, n in conn.stats.failures_by_reason.items():
                reasons[kind] = reasons.get(kind, 0) + n
        states = [c.state for c in conns]
        state = "open" if "open" in states else states[0]
        errors = [c.stats for c in conns if c.stats.last_error]
        last = max(errors, key=lambda st: st.last_error_ns or 0).last_error if errors else None
        book_states = {
            symbol: {"valid": view.valid, "integrity": view.integrity.value if view.integrity else None}
            for (v, symbol), view in sorted(books.items())
            if v == venue
        }
        breaker = breakers.get(venue)
        vm = metrics.venues.get(venue) if metrics is not None else None
        flows: dict[int, dict[str, Any]] = {}
        if metrics is not None:
            for conn in conns:
                flow = metrics.flows.get(conn.conn_id)
                if flow is not None:
                    flows[conn.conn_id] = {
                        "state": flow.state.value,
                        "rate": flow.window_rate,
                        "expected": flow.expected,
                        "stall_timeout": conn.liveness.stall_timeout,
                    }
        out.append(
            VenueHealth(
                venue=venue,
                state=state,
                connections=len(conns),
                open_connections=states.count("open"),
                breaker=None if breaker is None else str(breaker.get("state")),
                counters=counters,
                failures_by_reason=dict(sorted(reasons.items())),
                books=book_states,
                flows=flows,
                last_error=last,
                channel_flows=_channel_flows(vm),
                **_latency_part(vm, metrics.interval if metrics is not None else None),
            )
        )
    return out


def _channel_flows(vm: VenueMetrics | None) -> dict[str, dict[str, Any]]:
    if vm is None:
        return {}
    return {
        channel.value: {
            "state": flow.baseline.state.value,
            "rate": flow.baseline.window_rate,
            "expected": flow.baseline.expected,
            "exact": flow.exact,
        }
        for channel, flow in sorted(vm.channels.items(), key=lambda item: item[0].value)
    }


def _by_public_name(counts: Mapping[type, int]) -> dict[str, int]:
    """Counts by event class name; an adapter's raw book ``Diff`` is the
    ``BookUpdate`` it becomes, a ``RawSnapshot`` the ``BookSnapshot``."""
    out: dict[str, int] = {}
    for cls, n in counts.items():
        name = public_name(cls)
        out[name] = out.get(name, 0) + n
    return dict(sorted(out.items()))


def _latency_part(vm: VenueMetrics | None, tick_s: float | None) -> dict[str, Any]:
    if vm is None:
        return {
            "rates": {},
            "per_second": [],
            "latency": {},
            "jitter_ns": None,
            "clock": {},
            "ahead": False,
            "no_ts": 0,
            "bad_ts": 0,
            "events_by_type": {},
        }
    lat = vm.latency
    latency = {}
    for channel in sorted(lat.histograms, key=lambda c: c.value):
        recent = lat.recent(channel)
        latency[channel.value] = {"count": recent.total, **recent.quantiles(), "max": recent.max or None}
    merged = lat.recent()
    p10, p90 = merged.quantile(0.1), merged.quantile(0.9)
    return {
        "rates": vm.rates(tick_s or 1.0),
        "per_second": list(vm.per_second),
        "latency": latency,
        "jitter_ns": None if p10 is None or p90 is None else p90 - p10,
        "clock": lat.clock.to_dict(),
        "ahead": lat.clock.ahead_ns > 0,
        "no_ts": lat.no_ts,
        "bad_ts": lat.bad_ts,
        "events_by_type": _by_public_name(lat.events_by_type),
    }
