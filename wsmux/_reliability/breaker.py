"""CircuitBreaker: cut a misbehaving venue or stream off, visibly, and let it back gradually.

Theory of operation
-------------------
The breaker is a three-state machine driven only by the calls it receives
and the ``now`` (monotonic seconds) passed to each:

``CLOSED`` (normal)
    :meth:`CircuitBreaker.allow` says True. :meth:`~CircuitBreaker.record_bad`
    stores the time of each bad event (or error) in a ring of the last
    ``threshold`` times. When the ring is full and its oldest entry is no
    more than ``window`` seconds old — ``threshold`` bad events within
    ``window`` seconds — the breaker *trips* to ``OPEN``.
``OPEN`` (cut off)
    :meth:`~CircuitBreaker.allow` says False for ``cooldown`` seconds. The
    caller must not deliver those events and must count them (the breaker
    counts its refusals too, in ``stats.denied``): blocking is reported,
    never silent. Bad or good events recorded while open change nothing.
``HALF_OPEN`` (probing)
    Entered by the first call after the cooldown. Events are let through
    again — at first a ``probe_fraction`` of them, ramping linearly to all
    of them over ``probe_seconds`` (an even, deterministic spacing: a credit
    counter, no randomness). The probe is *clean* after ``probe_events``
    good events, or after ``probe_seconds`` with at least one good event and
    no bad one → ``CLOSED``. One bad event during the probe → ``OPEN`` again
    with a longer cooldown.

Cooldowns grow geometrically: the n-th consecutive trip waits
``min(max_cooldown, cooldown * cooldown_factor**n)``. The count n grows on
every failed probe and on every trip that happens less than
``reset_after`` seconds after the breaker last closed (a venue that flaps
keeps its long cooldown); a trip after ``reset_after`` calm seconds starts
again at ``cooldown``.

Every state change is recorded as a :class:`Transition` ``(now, old, new,
reason)``; :meth:`~CircuitBreaker.take_transitions` hands them to the
multiplexer, which turns them into events. At most ``max_transitions`` are
kept between takes (older ones are dropped and counted).

Knobs (defaults)
----------------
``threshold`` 20 bad events within ``window`` 10 s trip it; ``cooldown``
5 s, ``cooldown_factor`` 2, ``max_cooldown`` 300 s; ``probe_events`` 20,
``probe_seconds`` 5 s, ``probe_fraction`` 1.0 (market data: deliver every
probe event; lower it for things like request attempts); ``reset_after`` 60 s.

Costs: every method is O(1); memory is O(threshold + max_transitions).
"""

from __future__ import annotations

import enum
import math
from collections import deque

import attrs

from wsmux.errors import ConfigError

__all__ = ["BreakerState", "BreakerStats", "CircuitBreaker", "Transition"]


class BreakerState(enum.Enum):
    """The state of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@attrs.frozen(slots=True)
class Transition:
    """One state change of a breaker.

    Attributes:
        now: monotonic seconds when it happened (the ``now`` of the call).
        old, new: the states.
        reason: why (e.g. ``"20 bad events in 3.2 s: crossed_quote"``).
    """

    now: float
    old: BreakerState
    new: BreakerState
    reason: str


@attrs.define(slots=True)
class BreakerStats:
    """Counters of a breaker (cumulative).

    Attributes:
        allowed: ``allow`` calls answered True.
        denied: ``allow`` calls answered False.
        bad: bad events recorded (any state).
        ok: good events recorded (any state).
        trips: transitions to ``OPEN``.
        transitions_dropped: transitions discarded because nobody took them.
    """

    allowed: int = 0
    denied: int = 0
    bad: int = 0
    ok: int = 0
    trips: int = 0
    transitions_dropped: int = 0


class CircuitBreaker:
    """A circuit breaker for one venue or stream (see the module docstring).

    Args:
        name: a label for reasons and reports.
        threshold: bad events within ``window`` that trip it.
        window: seconds.
        cooldown: first ``OPEN`` period, seconds.
        cooldown_factor: growth of the cooldown per consecutive trip (≥ 1).
        max_cooldown: cap of the cooldown, seconds.
        probe_events: good events that close a half-open breaker.
        probe_seconds: clean seconds that close it (None: events only); also
            the length of the ramp from ``probe_fraction`` to everything.
        probe_fraction: share of events let through when the probe starts.
        reset_after: calm seconds after closing that reset the cooldown growth.
        max_transitions: transitions kept between :meth:`take_transitions` calls.
    """

    def __init__(
        self,
        name: str = "",
        *,
        threshold: int = 20,
        window: float = 10.0,
        cooldown: float = 5.0,
        cooldown_factor: float = 2.0,
        max_cooldown: float = 300.0,
        probe_events: int = 20,
        probe_seconds: float | None = 5.0,
        probe_fraction: float = 1.0,
        reset_after: float = 60.0,
        max_transitions: int = 256,
    ) -> None:
        if threshold < 1:
            raise ConfigError(f"threshold must be >= 1, not {threshold}")
        if not window > 0 or not cooldown > 0 or not max_cooldown >= cooldown:
            raise ConfigError(
                f"need window > 0 and 0 < cooldown <= max_cooldown, not {window}, {cooldown}, {max_cooldown}"
            )
        if not cooldown_factor >= 1:
            raise ConfigError(f"cooldown_factor must be >= 1, not {cooldown_factor}")
        if probe_events < 1 or (probe_seconds is not None and not probe_seconds > 0):
            raise ConfigError(f"need probe_events >= 1 and probe_seconds > 0, not {probe_events}, {probe_seconds}")
        if not 0 < probe_fraction <= 1:
            raise ConfigError(f"probe_fraction must be in (0, 1], not {probe_fraction}")
        if not reset_after >= 0 or max_transitions < 1:
            raise ConfigError("need reset_after >= 0 and max_transitions >= 1")
        self.name = name
        self.threshold = threshold
        self.window = window
        self.cooldown = cooldown
        self.cooldown_factor = cooldown_factor
        self.max_cooldown = max_cooldown
        self.probe_events = probe_events
        self.probe_seconds = probe_seconds
        self.probe_fraction = probe_fraction
        self.reset_after = reset_after
        self.stats = BreakerStats()
        self._state = BreakerState.CLOSED
        self._bad_times: deque[float] = deque(maxlen=threshold)
        self._level = 0
        self._open_until = 0.0
        self._closed_since = -math.inf
        self._probe_since = 0.0
        self._probe_ok = 0
        self._credit = 0.0
        self._transitions: deque[Transition] = deque(maxlen=max_transitions)

    # --- state --------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The state as of the last call (time moves only through calls)."""
        return self._state

    def state_at(self, now: float) -> BreakerState:
        """The state at ``now`` (performs a due ``OPEN → HALF_OPEN`` or probe closing)."""
        self._advance(now)
        return self._state

    @property
    def current_cooldown(self) -> float:
        """The cooldown the next trip would use (or the current one while open)."""
        return min(self.max_cooldown, self.cooldown * self.cooldown_factor**self._level)

    @property
    def open_until(self) -> float:
        """When the current ``OPEN`` period ends (meaningful while open)."""
        return self._open_until

    # --- the calls ------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """Whether to deliver the next event. O(1).

        CLOSED: True. OPEN: False until the cooldown ends. HALF_OPEN: True for
        the ramping share of events.
        """
        state = self._state
        if state is BreakerState.CLOSED:
            self.stats.allowed += 1
            return True
        self._advance(now)
        state = self._state
        if state is BreakerState.OPEN:
            self.stats.denied += 1
            return False
        if state is BreakerState.HALF_OPEN:
            fraction = self.probe_fraction
            if fraction < 1.0 and self.probe_seconds is not None:
                fraction += (1.0 - fraction) * min(1.0, (now - self._probe_since) / self.probe_seconds)
            self._credit += fraction
            if self._credit < 1.0:
                self.stats.denied += 1
                return False
            self._credit -= 1.0
        self.stats.allowed += 1
        return True

    def record_bad(self, now: float, reason: str = "") -> None:
        """A bad event or an error happened. O(1)."""
        self.stats.bad += 1
        self._advance(now)
        state = self._state
        if state is BreakerState.CLOSED:
            times = self._bad_times
            times.append(now)
            if len(times) == self.threshold and now - times[0] <= self.window:
                if now - self._closed_since < self.reset_after:
                    self._level += 1
                else:
                    self._level = 0
                span = now - times[0]
                detail = f"{self.threshold} bad events in {span:.3g} s" + (f": {reason}" if reason else "")
                self._open(now, detail)
        elif state is BreakerState.HALF_OPEN:
            self._level += 1
            self._open(now, "probe failed" + (f": {reason}" if reason else ""))

    def record_error(self, now: float, reason: str = "") -> None:
        """Same as :meth:`record_bad` (an error counts as a bad event)."""
        self.record_bad(now, reason)

    def record_ok(self, now: float) -> None:
        """A good event was delivered. O(1)."""
        self.stats.ok += 1
        if self._state is BreakerState.CLOSED:
            return
        self._advance(now)
        if self._state is BreakerState.HALF_OPEN:
            self._probe_ok += 1
            if self._probe_ok >= self.probe_events:
                self._close(now, f"{self._probe_ok} clean probe events")
            elif self.probe_seconds is not None and now - self._probe_since >= self.probe_seconds:
                self._close(now, f"clean for {now - self._probe_since:.3g} s")

    def trip(self, now: float, reason: str) -> None:
        """Open now, whatever the state (e.g. the venue reported an outage)."""
        self._advance(now)
        if self._state is not BreakerState.OPEN:
            if self._state is BreakerState.HALF_OPEN or now - self._closed_since < self.reset_after:
                self._level += 1
            else:
                self._level = 0
            self._open(now, reason)

    def reset(self, now: float, reason: str = "reset") -> None:
        """Close now and forget the cooldown growth."""
        self._level = 0
        if self._state is not BreakerState.CLOSED:
            self._close(now, reason)
        self._bad_times.clear()

    def take_transitions(self) -> list[Transition]:
        """Return and clear the recorded transitions (oldest first)."""
        out = list(self._transitions)
        self._transitions.clear()
        return out

    # --- internals --------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        state = self._state
        if state is BreakerState.OPEN and now >= self._open_until:
            self._move(now, BreakerState.HALF_OPEN, "cooldown elapsed")
            self._probe_since = now
            self._probe_ok = 0
            self._credit = 0.0
            state = BreakerState.HALF_OPEN
        if (
            state is BreakerState.HALF_OPEN
            and self.probe_seconds is not None
            and self._probe_ok > 0
            and now - self._probe_since >= self.probe_seconds
        ):
            self._close(now, f"clean for {now - self._probe_since:.3g} s")

    def _open(self, now: float, reason: str) -> None:
        self._open_until = now + self.current_cooldown
        self.stats.trips += 1
        self._bad_times.clear()
        self._probe_ok = 0
        self._move(now, BreakerState.OPEN, reason)

    def _close(self, now: float, reason: str) -> None:
        self._closed_since = now
        self._bad_times.clear()
        self._probe_ok = 0
        self._move(now, BreakerState.CLOSED, reason)

    def _move(self, now: float, new: BreakerState, reason: str) -> None:
        transitions = self._transitions
        if len(transitions) == transitions.maxlen:
            self.stats.transitions_dropped += 1
        transitions.append(Transition(now, self._state, new, f"{self.name}: {reason}" if self.name else reason))
        self._state = new

    def _check(self) -> None:
        """Assert invariants (tests)."""
        assert len(self._bad_times) <= self.threshold
        assert list(self._bad_times) == sorted(self._bad_times)
        assert self.cooldown <= self.current_cooldown <= self.max_cooldown
        if self._state is not BreakerState.HALF_OPEN:
            assert self._probe_ok == 0
