"""Sans-I/O reliability machinery (private; the public names are in :mod:`wsmux.reliability`).

One structure per module:

* :mod:`._ring` — :class:`KeyRing`, the bounded FIFO map every "have I seen
  this?" question uses;
* :mod:`.dedup` — :class:`Deduplicator`, exactly-once delivery of market
  events that arrive from redundant connections;
* :mod:`.arbiter` — :class:`Arbiter`, redundant connections of one feed:
  dedup, book authority, lead/lag and stalls;
* :mod:`.quality` — :class:`QualityGate`, hot-path sanity checks;
* :mod:`.breaker` — :class:`CircuitBreaker`;
* :mod:`.trades` — :class:`TradeSequencer` and :class:`Backfill`;
* :mod:`.liveness` — :class:`LivenessTimers` and :class:`RecoveryTracker`;
* :mod:`.limits` — :class:`ConnectLimiter`, :class:`RestLimiter`,
  :func:`parse_retry_after`.

Nothing here imports asyncio, websockets or httpx, sleeps, or reads a clock:
time is always passed in.
"""

from __future__ import annotations

__all__: list[str] = []
