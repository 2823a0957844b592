"""CircuitBreaker: tripping, cooldowns, probing, ramp, growth, transitions."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from wsmux.errors import ConfigError
from wsmux.reliability import BreakerState, CircuitBreaker, Transition

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def test_trips_at_threshold_bad_events_within_the_window() -> None:
    b = CircuitBreaker(threshold=3, window=10.0)
    b.record_bad(0.0)
    b.record_bad(5.0)
    b.record_bad(10.5)  # the first is 10.5 s old: 3 in 10 s not reached
    assert b.state is CLOSED
    b.record_bad(12.0, "crossed_quote")  # 5.0, 10.5, 12.0 within 7 s
    assert b.state is OPEN
    assert b.take_transitions() == [Transition(12.0, CLOSED, OPEN, "3 bad events in 7 s: crossed_quote")]
    assert b.take_transitions() == []
    assert b.stats.trips == 1 and b.stats.bad == 4


def test_open_blocks_for_the_cooldown_then_probes_and_closes() -> None:
    b = CircuitBreaker("binance", threshold=1, cooldown=5.0, probe_events=3, probe_seconds=None)
    assert b.allow(0.0)
    b.record_bad(1.0)
    assert b.open_until == 6.0
    assert [b.allow(t) for t in (1.0, 3.0, 5.999)] == [False, False, False]
    assert b.stats.denied == 3
    b.record_bad(2.0)  # ignored while open: no extension
    b.record_ok(2.5)
    assert b.state_at(5.0) is OPEN and b.open_until == 6.0
    assert b.allow(6.0)  # cooldown over: half-open, the probe starts
    assert b.state is HALF
    b.record_ok(6.1)
    b.record_ok(6.2)
    assert b.state is HALF
    b.record_ok(6.3)
    assert b.state is CLOSED
    assert [(t.now, t.old, t.new, t.reason) for t in b.take_transitions()] == [
        (1.0, CLOSED, OPEN, "binance: 1 bad events in 0 s"),
        (6.0, OPEN, HALF, "binance: cooldown elapsed"),
        (6.3, HALF, CLOSED, "binance: 3 clean probe events"),
    ]
    b._check()


def test_failed_probes_grow_the_cooldown_up_to_the_cap() -> None:
    b = CircuitBreaker(threshold=1, cooldown=2.0, cooldown_factor=3.0, max_cooldown=30.0, probe_seconds=None)
    now = 0.0
    b.record_bad(now)
    opens = []
    for _ in range(5):
        opens.append(b.open_until - now)
        now = b.open_until
        assert b.allow(now)  # half-open
        b.record_bad(now, "still bad")
        assert b.state is OPEN
    assert opens == [2.0, 6.0, 18.0, 30.0, 30.0]
    assert b.current_cooldown == 30.0
    b._check()


def test_the_cooldown_growth_resets_after_a_calm_period() -> None:
    b = CircuitBreaker(threshold=1, cooldown=1.0, probe_events=1, probe_seconds=None, reset_after=60.0)
    b.record_bad(0.0)
    assert b.allow(1.0)
    b.record_ok(1.0)
    assert b.state is CLOSED
    b.record_bad(30.0)  # tripped 29 s after closing: a flapping venue, the cooldown grows
    assert b.open_until == 32.0
    assert b.allow(32.0)
    b.record_ok(32.0)
    b.record_bad(100.0)  # 68 s of calm: back to the base cooldown
    assert b.open_until == 101.0


def test_probe_seconds_close_after_a_clean_period_with_traffic() -> None:
    b = CircuitBreaker(threshold=1, cooldown=1.0, probe_events=1000, probe_seconds=5.0)
    b.record_bad(0.0)
    assert b.allow(1.0)
    assert b.state_at(7.0) is HALF  # no good event yet: not proven clean
    b.record_ok(7.0)  # a good event after 6 s of probing
    assert b.state is CLOSED


def test_the_probe_ramp_is_even_and_deterministic() -> None:
    b = CircuitBreaker(threshold=1, cooldown=1.0, probe_fraction=0.25, probe_seconds=8.0, probe_events=10**6)
    b.record_bad(0.0)
    # at the start of the probe a quarter of the events pass, evenly spaced
    assert [b.allow(1.0) for _ in range(8)] == [False, False, False, True] * 2
    # halfway through the ramp (4 s of 8): 0.25 + 0.75 * 0.5 = 62.5 %
    got = [b.allow(5.0) for _ in range(16)]
    assert sum(got) == 10
    # at the end of the ramp everything passes
    assert all(b.allow(9.0) for _ in range(10))


def test_manual_trip_and_reset() -> None:
    b = CircuitBreaker(cooldown=10.0, reset_after=60.0)
    b.trip(0.0, "venue maintenance")
    assert b.state is OPEN and b.open_until == 10.0
    b.trip(1.0, "again")  # already open: nothing
    b.reset(2.0)
    assert b.state is CLOSED and b.allow(2.0)
    b.trip(3.0, "flap")  # tripped soon after closing: growth
    assert b.open_until == 23.0
    assert [t.reason for t in b.take_transitions()] == ["venue maintenance", "reset", "flap"]
    b.reset(4.0)
    b.reset(4.5)  # already closed: no transition
    assert len(b.take_transitions()) == 1


def test_unclaimed_transitions_are_bounded_and_counted() -> None:
    b = CircuitBreaker(threshold=1, cooldown=1.0, probe_seconds=None, max_transitions=4)
    now = 0.0
    for _ in range(5):
        b.record_bad(now)
        now += 1.0
        b.allow(now)  # half-open
        b.record_bad(now)
    assert len(b.take_transitions()) == 4
    assert b.stats.transitions_dropped > 0


def test_record_error_is_a_bad_event() -> None:
    b = CircuitBreaker(threshold=2)
    b.record_error(0.0, "MalformedMessage")
    b.record_error(0.1, "MalformedMessage")
    assert b.state is OPEN


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0},
        {"window": 0.0},
        {"cooldown": 0.0},
        {"cooldown": 10.0, "max_cooldown": 5.0},
        {"cooldown_factor": 0.5},
        {"probe_events": 0},
        {"probe_seconds": 0.0},
        {"probe_fraction": 0.0},
        {"probe_fraction": 1.5},
        {"reset_after": -1.0},
        {"max_transitions": 0},
    ],
)
def test_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


class BreakerMachine(RuleBasedStateMachine):
    """Random calls with a moving clock: invariants hold, transitions chain,
    and ``allow`` says False only while open or (ramping) half-open."""

    def __init__(self) -> None:
        super().__init__()
        self.b = CircuitBreaker(
            threshold=3,
            window=2.0,
            cooldown=1.0,
            max_cooldown=8.0,
            probe_events=3,
            probe_seconds=2.0,
            probe_fraction=0.5,
            reset_after=5.0,
        )
        self.now = 0.0
        self.state = CLOSED

    @rule(dt=st.floats(0.0, 3.0))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def allow(self) -> None:
        before = self.b.state
        allowed = self.b.allow(self.now)
        if before is CLOSED:
            assert allowed
        if not allowed:
            assert self.b.state in (OPEN, HALF)

    @rule()
    def bad(self) -> None:
        self.b.record_bad(self.now, "x")

    @rule()
    def ok(self) -> None:
        self.b.record_ok(self.now)

    @invariant()
    def consistent(self) -> None:
        self.b._check()
        for t in self.b.take_transitions():
            assert t.old is self.state and t.new is not t.old
            assert (t.old, t.new) in {(CLOSED, OPEN), (OPEN, HALF), (HALF, CLOSED), (HALF, OPEN)}
            self.state = t.new
        assert self.state is self.b.state


BreakerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)
test_breaker_state_machine = BreakerMachine.TestCase
