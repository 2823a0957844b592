"""Injectable time.

Two timestamps, one source each (STYLE.md): the *receive* stamp of a frame is
``clock.time_ns()`` read once when it arrives; timers (heartbeats, stale feeds,
backoff) use ``clock.monotonic()``. Tests pass a :class:`ManualClock` so timer
logic is a pure function of "now" and needs no real waiting.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "SYSTEM_CLOCK"]


class Clock(Protocol):
    """Where wsmux reads time."""

    def time_ns(self) -> int:
        """Wall-clock time in integer nanoseconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds, for timers."""
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    # the C functions themselves: read once or more per frame, a Python-level
    # wrapper method would add a call each time
    time_ns = staticmethod(time.time_ns)
    """Wall-clock nanoseconds (``time.time_ns``)."""
    monotonic = staticmethod(time.monotonic)
    """Monotonic seconds (``time.monotonic``)."""


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told to (for tests)."""

    __slots__ = ("_mono", "_wall_ns")

    def __init__(self, wall_ns: int = 1_700_000_000_000_000_000, mono: float = 1000.0) -> None:
        self._wall_ns = wall_ns
        self._mono = mono

    def time_ns(self) -> int:
        return self._wall_ns

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        self._mono += seconds
        self._wall_ns += int(seconds * 1e9)
