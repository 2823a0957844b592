"""Typed health records: what :meth:`wsmux.Multiplexer.health` returns.

Each record is a frozen ``attrs`` class; :meth:`Health.to_dict` gives the
plain-dict form (JSON-ready, the keys earlier versions returned). For
compatibility a :class:`Health` also answers ``health["connections"]`` (the
dict form's entries).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["ConnectionHealth", "Health", "HostHealth", "MemberHealth", "ShardHealth", "StreamHealth", "VenueHealth"]


@attrs.frozen(slots=True)
class ConnectionHealth:
    """One connection.

    Attributes:
        state: ``idle``, ``connecting``, ``open``, ``reconnecting``, ``failed`` or ``closed``.
        last_error: why the last attempt failed or the last connection was
            lost (None: no failure yet).
        last_error_ns: when, wall clock in ns since the epoch.
        connect_failures: attempts that never opened (cumulative).
        failed_attempts: attempts that failed in a row (0 once one opens).
        paused: the connection waits for a full ``BLOCK`` stream (backpressure).
        connection, feed, books: the detailed counters (dicts).
    """

    conn_id: int
    venue: str
    url: str
    state: str
    subscriptions: int
    last_frame_age_s: float | None
    last_data_age_s: float | None
    last_error: str | None
    last_error_ns: int | None
    connect_failures: int
    failed_attempts: int
    paused: bool
    connection: dict[str, Any]
    feed: dict[str, Any]
    books: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


@attrs.frozen(slots=True)
class StreamHealth:
    """One stream (see :class:`~wsmux.StreamStats`).

    Attributes:
        blocked: a ``BLOCK`` stream whose buffer is full: the venues feeding
            it are paused until it is read (a stall, also logged).
    """

    name: str
    subscriptions: list[str]
    buffered: int
    received: int
    delivered: int
    dropped: int
    dropped_by_reason: dict[str, int]
    callback_errors: int
    max_buffered: int
    blocked: bool

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


@attrs.frozen(slots=True)
class MemberHealth:
    """One connection of a redundant shard: what it contributed (A/B).

    Attributes:
        conn_id: the connection.
        host: the host it is on (the adapter's base URL).
        firsts: copies it delivered first.
        duplicates: copies another connection had delivered already.
        first_share: its share of the group's first copies (0..1).
        lag_ms: average (EWMA) of how far its copies trailed the first, ms.
        lag_p50_ms, lag_p90_ms, lag_p99_ms: quantiles of how far its copies
            trailed the first copy (exact lags only, see
            :attr:`~wsmux.reliability.ConnStats.lag_hist`): the distribution of
            the other connections' *lead* over this one. None: no sample.
        lag_buckets: that distribution as ``(upper bound ms, count)`` for
            each non-empty histogram bucket (≤ 6.25 % wide), ascending.
    """

    conn_id: int
    host: str
    firsts: int
    duplicates: int
    first_share: float
    lag_ms: float
    lag_p50_ms: float | None
    lag_p90_ms: float | None
    lag_p99_ms: float | None
    lag_buckets: list[tuple[float, int]]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


@attrs.frozen(slots=True)
class ShardHealth:
    """One shard: the connections carrying one set of subscriptions
    (``members``: per connection, with redundancy, who delivered first)."""

    venue: str
    route: str
    connections: list[int]
    subscriptions: int
    rollovers: int
    arbiter: dict[str, Any] | None
    members: list[MemberHealth] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["members"] = [m.to_dict() for m in self.members]
        return out


@attrs.frozen(slots=True)
class HostHealth:
    """One candidate host of a venue under endpoint choice (see ``docs/endpoints.rst``).

    Latency figures are one-way latency as the venue's timestamps show it
    (receive time minus event time), so they include the venue's clock
    offset; the offset is the same for every host of a venue, so the
    figures rank its hosts exactly. None: not measured yet.

    Attributes:
        venue, url: the host.
        active: new connections go here.
        connections: live connections on it.
        handshake_ms: last connect time (TCP + TLS + upgrade).
        first_data_ms: last probe's time from open to the first data event.
        latency_ms: mean latency (EWMA).
        latency_p50_ms, latency_p90_ms: streaming quantile estimates.
        forecast_ms: the latency expected next (what ranking uses).
        baseline_ms: the host's normal latency (slow average of check medians).
        samples: latency samples taken.
        failures: connection attempts failed in a row.
        absurd_samples: latency samples left out (beyond ±60 s: a timestamp
            in the wrong unit, a stuck venue clock): counted, never ranked.
        probes: probe connections made to it.
        switches_to: times it became the active host.
        first_share: with redundancy, its connections' share of first copies.
        lag_p50_ms, lag_p90_ms: with redundancy, how far its connections'
            copies trailed the first copy (see :class:`MemberHealth`).
    """

    venue: str
    url: str
    active: bool
    connections: int
    handshake_ms: float | None
    first_data_ms: float | None
    latency_ms: float | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    forecast_ms: float | None
    baseline_ms: float | None
    samples: int
    failures: int
    absurd_samples: int
    probes: int
    switches_to: int
    first_share: float | None
    lag_p50_ms: float | None
    lag_p90_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


@attrs.frozen(slots=True)
class VenueHealth:
    """One venue, across its connections: rates, latency, clock, integrity
    (see :mod:`wsmux.metrics` and the operations guide).

    Attributes:
        state: ``open`` if any connection is open, else the first one's state.
        rates: per kind (``events``, ``frames``, ``bytes``), per window
            (``1s``, ``10s``, ``60s``), per second.
        per_second: data events in each of the last (up to) 60 seconds.
        latency: per channel, one-way latency net of the clock offset over
            about the last minute: ``count``, ``p50``, ``p90``, ``p99``,
            ``max`` (ns; sampled one frame in ``sample_every``).
        jitter_ns: ``p90 - p10`` of that latency (all channels), None if no sample.
        clock: the clock offset (:meth:`wsmux.metrics.ClockOffset.to_dict`).
        ahead: the venue's timestamps come after their receipt (skew or late stamping).
        no_ts, bad_ts: sampled events without a timestamp / with an absurd one (dropped).
        counters: gaps, resyncs, reconnects, parse errors, checksums,
            REST requests... summed over the venue's connections and books;
            ``rest_weight`` (REST weight spent) and ``rest_penalties`` (418/429
            penalties) of the venue's REST budget.
        failures_by_reason: failed connection attempts and lost connections
            by kind (exception class name, ``stalled``, ``dead_peer``).
        events_by_type: data events per event type, estimated from the
            sampled frames (each counted as its last event's type, weighted
            by the sampling rate; exact on connections that sample every frame).
        books: per symbol, ``{"valid": ..., "integrity": ...}``.
        breaker: the circuit breaker's state, None if it has none.
        flows: per connection id, ``{"state", "rate", "expected", "stall_timeout"}``.
        channel_flows: per subscribed channel (its value), ``{"state", "rate",
            "expected", "exact"}``: the channel's flow baseline (``exact``:
            the last second was counted in full, not estimated from samples).
        last_error: the last reconnect reason of any of its connections.
    """

    venue: str
    state: str
    connections: int
    open_connections: int
    rates: dict[str, dict[str, float]]
    per_second: list[int]
    latency: dict[str, dict[str, int | None]]
    jitter_ns: int | None
    clock: dict[str, Any]
    ahead: bool
    no_ts: int
    bad_ts: int
    counters: dict[str, int]
    failures_by_reason: dict[str, int]
    events_by_type: dict[str, int]
    books: dict[str, dict[str, Any]]
    breaker: str | None
    flows: dict[int, dict[str, Any]]
    last_error: str | None
    channel_flows: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


@attrs.frozen(slots=True)
class Health:
    """A snapshot of every connection, shard and stream, with the breakers,
    the trade-tape counters and the multiplexer's counters."""

    connections: list[ConnectionHealth]
    streams: list[StreamHealth]
    shards: list[ShardHealth]
    breakers: dict[str, dict[str, Any]]
    trades: dict[str, Any] | None
    counters: dict[str, int]
    endpoints: list[HostHealth] = attrs.field(factory=list)
    """Endpoint choice: every candidate host of the venues where it is on."""
    venue_health: list[VenueHealth] = attrs.field(factory=list)
    """Per venue (empty with ``Multiplexer(metrics=False)``... the rates,
    latency and clock figures need metrics; the counters do not)."""

    def venue(self, venue: str) -> VenueHealth | None:
        """The :class:`VenueHealth` of ``venue``, None if it has no connection."""
        return next((v for v in self.venue_health if v.venue == venue), None)

    def venues(self) -> dict[str, str]:
        """Per venue, one word: ``open`` if any connection is open, else the
        state of its first connection, with its last error if any."""
        out: dict[str, str] = {}
        for conn in self.connections:
            if out.get(conn.venue, "").startswith("open"):
                continue
            state = conn.state
            if conn.state != "open" and conn.last_error:
                state = f"{conn.state}: {conn.last_error}"
            out[conn.venue] = state
        return out

    def to_dict(self) -> dict[str, Any]:
        """The plain-dict form (JSON-ready)."""
        return {
            "connections": [c.to_dict() for c in self.connections],
            "streams": [s.to_dict() for s in self.streams],
            "shards": [s.to_dict() for s in self.shards],
            "breakers": self.breakers,
            "trades": self.trades,
            "counters": self.counters,
            "endpoints": [h.to_dict() for h in self.endpoints],
            "venue_health": [v.to_dict() for v in self.venue_health],
        }

    def __getitem__(self, key: str) -> Any:
        """``health["connections"]``...: the dict form, for code written against it."""
        return self.to_dict()[key]
