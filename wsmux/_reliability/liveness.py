"""Liveness timers and reconnect recovery, as pure functions of "now".

Theory of operation
-------------------
A connection can fail in two ways that the socket does not report:

* **Dead** — nothing arrives at all (a half-open TCP connection, a venue
  that stopped answering). No frame of any kind — data, heartbeat, pong —
  for ``silence_timeout`` seconds → :attr:`Liveness.DEAD`, action
  ``RECONNECT``.
* **Stalled** — the connection is alive (heartbeats and pongs arrive) but
  the data stopped: the venue dropped our subscriptions, or a matching
  engine froze. Frames but no data event for ``stall_timeout`` seconds →
  :attr:`Liveness.STALLED`, action ``RESUBSCRIBE`` (cheap, keeps the
  socket). If there is still no data ``resubscribe_grace`` seconds later,
  resubscribe again up to ``max_resubscribes`` times in all, then
  → ``DEAD`` and ``RECONNECT``. Any data event makes it ``ALIVE`` again.

:class:`LivenessTimers` holds the two timestamps and answers
:meth:`~LivenessTimers.check` with a :class:`LivenessAction`;
:meth:`~LivenessTimers.next_deadline` says when the next check can change
anything, so a watchdog sleeps exactly that long. A connection with no data
subscriptions (``expect_data = False``) only runs the silence timer: a quiet
market is not a stall. ``stall_timeout`` is off by default — set it per
venue above the quietest subscribed symbol's normal silence (a book of a
liquid pair: tens of seconds; trades of an illiquid one: never).

:class:`RecoveryTracker` decides when a reconnect *worked*. It owns the
backoff attempt counter (the exponent of :class:`~wsmux._retry.Backoff`):
each :meth:`~RecoveryTracker.next_delay` draws the next delay and counts an
attempt. The counter resets only when a connection has been up for
``stable_after`` seconds *and* delivers data after that — the first data
event at or after ``opened + stable_after`` declares it recovered. A venue
that accepts connections and drops them (or never sends data) keeps its
growing backoff instead of restarting from the shortest delay each time.

Costs: every method is O(1) and allocation-free except ``next_delay`` (the
backoff generator) and ``reset``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator

from wsmux._retry import Backoff
from wsmux.errors import ConfigError

__all__ = ["Liveness", "LivenessAction", "LivenessTimers", "RecoveryTracker"]


class Liveness(enum.Enum):
    """The liveness state of a connection."""

    IDLE = "idle"
    """Not open."""
    ALIVE = "alive"
    STALLED = "stalled"
    """Frames arrive but data does not; resubscribed, waiting for data."""
    DEAD = "dead"
    """Must reconnect."""


class LivenessAction(enum.Enum):
    """What :meth:`LivenessTimers.check` asks the connection to do."""

    NONE = "none"
    RESUBSCRIBE = "resubscribe"
    RECONNECT = "reconnect"


class LivenessTimers:
    """The silence and stall timers of one connection (see the module docstring).

    Args:
        silence_timeout: no frame for this long → dead (seconds).
        stall_timeout: no data for this long → stalled (None: off).
        resubscribe_grace: after a resubscribe, how long to wait for data
            before the next step (default: ``stall_timeout``).
        max_resubscribes: resubscribes before giving up and reconnecting (≥ 0;
            0: reconnect at once on a stall).

    Attributes:
        state: the current :class:`Liveness`.
        reason: why the last ``RECONNECT`` was asked for.
        expect_data: whether the connection has data subscriptions.
        last_frame, last_data: monotonic seconds of the last frame / data event.
        resubscribes: resubscribes asked for in the current stall.
    """

    __slots__ = (
        "expect_data",
        "last_data",
        "last_frame",
        "max_resubscribes",
        "reason",
        "resubscribe_grace",
        "resubscribes",
        "silence_timeout",
        "stall_timeout",
        "stalled_at",
        "state",
    )

    def __init__(
        self,
        *,
        silence_timeout: float = 60.0,
        stall_timeout: float | None = None,
        resubscribe_grace: float | None = None,
        max_resubscribes: int = 1,
    ) -> None:
        if not silence_timeout > 0:
            raise ConfigError(f"silence_timeout must be positive, not {silence_timeout}")
        if stall_timeout is not None and not stall_timeout > 0:
            raise ConfigError(f"stall_timeout must be positive, not {stall_timeout}")
        if resubscribe_grace is not None and not resubscribe_grace > 0:
            raise ConfigError(f"resubscribe_grace must be positive, not {resubscribe_grace}")
        if max_resubscribes < 0:
            raise ConfigError(f"max_resubscribes must be >= 0, not {max_resubscribes}")
        self.silence_timeout = silence_timeout
        self.stall_timeout = stall_timeout
        self.resubscribe_grace = resubscribe_grace if resubscribe_grace is not None else stall_timeout
        self.max_resubscribes = max_resubscribes
        self.state = Liveness.IDLE
        self.reason = ""
        self.expect_data = True
        self.last_frame = 0.0
        self.last_data = 0.0
        self.stalled_at = 0.0
        self.resubscribes = 0

    def opened(self, now: float) -> None:
        """The connection opened: both timers start at ``now``."""
        self.state = Liveness.ALIVE
        self.reason = ""
        self.last_frame = self.last_data = now
        self.resubscribes = 0

    def closed(self) -> None:
        """The connection is gone: no checks until :meth:`opened`."""
        self.state = Liveness.IDLE

    def frame(self, now: float) -> None:
        """A frame of any kind arrived (data, heartbeat, pong)."""
        self.last_frame = now

    def data(self, now: float) -> None:
        """A frame carried data events (implies a frame)."""
        self.last_frame = self.last_data = now
        if self.state is Liveness.STALLED:
            self.state = Liveness.ALIVE
            self.resubscribes = 0

    def check(self, now: float) -> LivenessAction:
        """What to do at ``now``. Asks for each step once; O(1)."""
        state = self.state
        if state is not Liveness.ALIVE and state is not Liveness.STALLED:
            return LivenessAction.NONE
        # deadlines are compared as "now >= last + timeout", exactly as
        # next_deadline computes them, so a watchdog woken at the deadline acts
        if now >= self.last_frame + self.silence_timeout:
            self.state = Liveness.DEAD
            self.reason = f"no frame for {now - self.last_frame:.1f} s (dead peer)"
            return LivenessAction.RECONNECT
        stall = self.stall_timeout
        if stall is None or not self.expect_data:
            return LivenessAction.NONE
        if state is Liveness.ALIVE:
            if now < self.last_data + stall:
                return LivenessAction.NONE
            self.state = Liveness.STALLED
            self.stalled_at = now
        elif now < self.stalled_at + self.resubscribe_grace:  # type: ignore[operator]
            return LivenessAction.NONE
        if self.resubscribes < self.max_resubscribes:
            self.resubscribes += 1
            self.stalled_at = now
            return LivenessAction.RESUBSCRIBE
        self.state = Liveness.DEAD
        self.reason = f"no data for {now - self.last_data:.1f} s (stalled feed)"
        return LivenessAction.RECONNECT

    def next_deadline(self) -> float | None:
        """The earliest monotonic time at which :meth:`check` may act (None: never)."""
        state = self.state
        if state is not Liveness.ALIVE and state is not Liveness.STALLED:
            return None
        deadline = self.last_frame + self.silence_timeout
        stall = self.stall_timeout
        if stall is not None and self.expect_data:
            if state is Liveness.ALIVE:
                deadline = min(deadline, self.last_data + stall)
            else:
                deadline = min(deadline, self.stalled_at + self.resubscribe_grace)  # type: ignore[operator]
        return deadline


class RecoveryTracker:
    """Backoff attempts and when a reconnect counts as recovered (see the module docstring).

    Args:
        backoff: the delay schedule (full jitter, see :class:`~wsmux._retry.Backoff`).
        stable_after: seconds a connection must be up, and still delivering
            data, to count as recovered.
        rng: random source of the jitter (tests pass a seeded one).

    Attributes:
        attempt: delays drawn since the last recovery (the backoff exponent).
        recovered: whether the current connection has been declared recovered.
        opened_at: monotonic seconds the current connection opened (None: down).
        recoveries: how many times a connection was declared recovered.
    """

    __slots__ = ("_delays", "attempt", "backoff", "opened_at", "recovered", "recoveries", "rng", "stable_after")

    def __init__(
        self, backoff: Backoff | None = None, *, stable_after: float = 10.0, rng: random.Random | None = None
    ) -> None:
        if not stable_after >= 0:
            raise ConfigError(f"stable_after must be >= 0, not {stable_after}")
        self.backoff = backoff if backoff is not None else Backoff()
        self.stable_after = stable_after
        self.rng = rng if rng is not None else random.Random()
        self._delays: Iterator[float] = self.backoff.delays(self.rng)
        self.attempt = 0
        self.recovered = False
        self.opened_at: float | None = None
        self.recoveries = 0

    def next_delay(self) -> float:
        """The delay before the next connection attempt (seconds); counts the attempt."""
        self.attempt += 1
        return next(self._delays)

    def opened(self, now: float) -> None:
        """A connection opened at ``now``."""
        self.opened_at = now
        self.recovered = False

    def data(self, now: float) -> bool:
        """The connection delivered data at ``now``. True exactly when this
        declares it recovered (and resets the attempt counter). O(1)."""
        if self.recovered:
            return False
        opened_at = self.opened_at
        if opened_at is None or now - opened_at < self.stable_after:
            return False
        self.recovered = True
        self.recoveries += 1
        self.reset()
        return True

    def closed(self) -> None:
        """The connection is gone (the attempt counter is kept unless it had recovered)."""
        self.opened_at = None
        self.recovered = False

    def reset(self) -> None:
        """Start the backoff schedule again from its first delay."""
        self.attempt = 0
        self._delays = self.backoff.delays(self.rng)
