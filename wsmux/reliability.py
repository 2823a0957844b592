"""Reliability machinery: redundancy, data quality, breakers, trade tapes, liveness, rate limits.

Every piece is sans-I/O — no asyncio, no sockets, no clock reads: time comes
in as ``now`` (monotonic seconds) or as the events' ``recv_ns`` — so each is
tested without waiting and reused unchanged by live connections and replay.

* :class:`Deduplicator`, :class:`Arbiter` — one feed from redundant
  connections: exactly-once market events, an authoritative book per symbol,
  which connection leads and which stalls.
* :class:`QualityGate` — hot-path sanity checks with a :class:`Quality` verdict.
* :class:`CircuitBreaker` — CLOSED → OPEN → HALF_OPEN with growing cooldowns
  and recorded :class:`Transition` s.
* :class:`TradeSequencer`, :class:`Backfill` — trade-id holes, duplicates and
  order per venue :class:`IdPolicy`; REST backfill planning and merging.
* :class:`LivenessTimers`, :class:`RecoveryTracker` — dead/stalled
  connections; when a reconnect counts as recovered.
* :class:`ConnectLimiter`, :class:`RestLimiter`, :func:`parse_retry_after`.

The implementation lives in the private package ``wsmux._reliability``; each
module there opens with its theory of operation, knobs and costs.
"""

from __future__ import annotations

from wsmux._reliability._ring import KeyRing
from wsmux._reliability.arbiter import Arbiter, ArbiterStats, SourceChange
from wsmux._reliability.breaker import BreakerState, BreakerStats, CircuitBreaker, Transition
from wsmux._reliability.dedup import DEFAULT_CONNECTION_SEQ_VENUES, ConnStats, Deduplicator, DedupStats
from wsmux._reliability.limits import ConnectLimiter, RestLimiter, parse_retry_after
from wsmux._reliability.liveness import Liveness, LivenessAction, LivenessTimers, RecoveryTracker
from wsmux._reliability.quality import Quality, QualityGate
from wsmux._reliability.trades import (
    DEFAULT_ID_POLICIES,
    Backfill,
    IdPolicy,
    IdRange,
    TradeGap,
    TradeSequencer,
    TradeStats,
    TradeVerdict,
    plan_requests,
)

__all__ = [
    "DEFAULT_CONNECTION_SEQ_VENUES",
    "DEFAULT_ID_POLICIES",
    "Arbiter",
    "ArbiterStats",
    "Backfill",
    "BreakerState",
    "BreakerStats",
    "CircuitBreaker",
    "ConnStats",
    "ConnectLimiter",
    "DedupStats",
    "Deduplicator",
    "IdPolicy",
    "IdRange",
    "KeyRing",
    "Liveness",
    "LivenessAction",
    "LivenessTimers",
    "Quality",
    "QualityGate",
    "RecoveryTracker",
    "RestLimiter",
    "SourceChange",
    "TradeGap",
    "TradeSequencer",
    "TradeStats",
    "TradeVerdict",
    "Transition",
    "parse_retry_after",
    "plan_requests",
]
