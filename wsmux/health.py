"""Typed health records: what :meth:`wsmux.Multiplexer.health` returns.

Each record is a frozen ``attrs`` class; :meth:`Health.to_dict` gives the
plain-dict form (JSON-ready, the keys earlier versions returned). For
compatibility a :class:`Health` also answers ``health["connections"]`` (the
dict form's entries).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["ConnectionHealth", "Health", "ShardHealth", "StreamHealth"]


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
class ShardHealth:
    """One shard: the connections carrying one set of subscriptions."""

    venue: str
    route: str
    connections: list[int]
    subscriptions: int
    rollovers: int
    arbiter: dict[str, Any] | None

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
        }

    def __getitem__(self, key: str) -> Any:
        """``health["connections"]``...: the dict form, for code written against it."""
        return self.to_dict()[key]
