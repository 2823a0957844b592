"""LivenessTimers, RecoveryTracker, ConnectLimiter, RestLimiter, parse_retry_after."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmux._retry import Backoff
from wsmux.adapter import Limits
from wsmux.errors import ConfigError
from wsmux.reliability import (
    ConnectLimiter,
    Liveness,
    LivenessAction,
    LivenessTimers,
    RecoveryTracker,
    RestLimiter,
    parse_retry_after,
)

NONE, RESUB, RECONNECT = LivenessAction.NONE, LivenessAction.RESUBSCRIBE, LivenessAction.RECONNECT

# --- LivenessTimers ----------------------------------------------------------------


def test_silence_means_dead() -> None:
    lt = LivenessTimers(silence_timeout=10.0)
    assert lt.check(100.0) is NONE and lt.next_deadline() is None  # not open yet
    lt.opened(0.0)
    assert lt.next_deadline() == 10.0
    lt.frame(4.0)  # a heartbeat
    assert lt.check(13.9) is NONE and lt.next_deadline() == 14.0
    assert lt.check(14.0) is RECONNECT
    assert lt.state is Liveness.DEAD and lt.reason == "no frame for 10.0 s (dead peer)"
    assert lt.check(20.0) is NONE  # asked once
    lt.closed()
    assert lt.state is Liveness.IDLE and lt.check(30.0) is NONE


def test_a_stall_resubscribes_then_reconnects() -> None:
    lt = LivenessTimers(silence_timeout=60.0, stall_timeout=20.0, resubscribe_grace=10.0, max_resubscribes=1)
    lt.opened(0.0)
    for now in range(1, 20):
        lt.frame(float(now))  # heartbeats, no data
        assert lt.check(float(now)) is NONE
    assert lt.next_deadline() == 20.0
    assert lt.check(20.0) is RESUB and lt.state is Liveness.STALLED and lt.resubscribes == 1
    lt.frame(25.0)
    assert lt.next_deadline() == 30.0
    assert lt.check(29.9) is NONE
    assert lt.check(30.0) is RECONNECT
    assert lt.state is Liveness.DEAD and lt.reason == "no data for 30.0 s (stalled feed)"


def test_data_after_a_resubscribe_recovers() -> None:
    lt = LivenessTimers(stall_timeout=5.0, max_resubscribes=2)
    lt.opened(0.0)
    assert lt.check(5.0) is RESUB
    assert lt.check(10.0) is RESUB and lt.resubscribes == 2
    lt.data(12.0)
    assert lt.state is Liveness.ALIVE and lt.resubscribes == 0
    assert lt.check(16.9) is NONE
    assert lt.check(17.0) is RESUB
    assert lt.check(22.0) is RESUB
    assert lt.check(27.0) is RECONNECT


def test_no_resubscribe_and_no_data_expected() -> None:
    lt = LivenessTimers(stall_timeout=5.0, max_resubscribes=0)
    lt.opened(0.0)
    assert lt.check(5.0) is RECONNECT
    quiet = LivenessTimers(silence_timeout=30.0, stall_timeout=5.0)
    quiet.expect_data = False  # no data subscriptions: only the silence timer runs
    quiet.opened(0.0)
    quiet.frame(20.0)
    assert quiet.check(25.0) is NONE and quiet.next_deadline() == 50.0
    off = LivenessTimers(silence_timeout=30.0)  # stall timer off by default
    off.opened(0.0)
    off.frame(29.0)
    assert off.check(58.0) is NONE and off.next_deadline() == 59.0


def test_liveness_config_errors() -> None:
    for kwargs in (
        {"silence_timeout": 0.0},
        {"stall_timeout": 0.0},
        {"resubscribe_grace": -1.0},
        {"max_resubscribes": -1},
    ):
        with pytest.raises(ConfigError):
            LivenessTimers(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 8.0), st.sampled_from(["frame", "data", "check"])), max_size=80))
def test_liveness_never_acts_before_its_deadline(steps: list[tuple[float, str]]) -> None:
    lt = LivenessTimers(silence_timeout=10.0, stall_timeout=4.0, resubscribe_grace=3.0, max_resubscribes=2)
    now = 0.0
    lt.opened(now)
    for dt, what in steps:
        now += dt
        if what == "frame":
            lt.frame(now)
        elif what == "data":
            lt.data(now)
        else:
            deadline = lt.next_deadline()
            action = lt.check(now)
            if deadline is None or now < deadline:
                assert action is NONE
            else:
                assert action is not NONE
            if action is RECONNECT:
                lt.opened(now)  # a new connection


# --- RecoveryTracker ----------------------------------------------------------------


def ceilings(tracker: RecoveryTracker, n: int) -> list[float]:
    return [tracker.next_delay() for _ in range(n)]


def test_a_flapping_venue_keeps_its_backoff_exponent() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=60.0)
    tracker = RecoveryTracker(backoff, stable_after=10.0, rng=random.Random(7))
    reference = list(zip(range(6), backoff.delays(random.Random(7)), strict=False))
    delays = []
    for _ in range(3):  # connects, gets data, drops after 3 s: never recovered
        delays.append(tracker.next_delay())
        tracker.opened(0.0)
        assert not tracker.data(3.0)
        tracker.closed()
    delays += ceilings(tracker, 3)
    assert delays == [d for _, d in reference]  # one uninterrupted schedule
    assert tracker.attempt == 6 and tracker.recoveries == 0


def test_recovery_needs_uptime_and_data_after_it() -> None:
    tracker = RecoveryTracker(Backoff(initial=1.0), stable_after=10.0, rng=random.Random(1))
    ceilings(tracker, 4)
    tracker.opened(100.0)
    assert not tracker.data(105.0)
    assert tracker.attempt == 4
    assert tracker.data(110.0)  # up 10 s and still delivering
    assert tracker.recovered and tracker.attempt == 0 and tracker.recoveries == 1
    assert not tracker.data(111.0)  # declared once
    tracker.closed()
    first = tracker.next_delay()
    assert first <= 1.0 and tracker.attempt == 1  # the schedule restarted
    assert not tracker.data(200.0)  # not open: nothing to declare
    with pytest.raises(ConfigError):
        RecoveryTracker(stable_after=-1.0)
    assert RecoveryTracker().backoff == Backoff()


# --- ConnectLimiter -----------------------------------------------------------------


def test_connect_limiter_concurrency() -> None:
    lim = ConnectLimiter(max_concurrent=2, attempts=100, window=60.0)
    assert lim.acquire(0.0) == 0.0
    assert lim.acquire(0.0) == 0.0
    assert lim.acquire(0.0) == math.inf  # no slot: nothing reserved
    assert lim.refused == 1 and lim.in_flight == 2
    lim.release()
    assert lim.acquire(1.0) == 0.0
    lim.release()
    lim.release()
    with pytest.raises(ConfigError):
        lim.release()
        lim.release()


def test_connect_limiter_window_is_exact() -> None:
    lim = ConnectLimiter(max_concurrent=100, attempts=3, window=10.0)
    assert [lim.acquire(0.0), lim.acquire(1.0), lim.acquire(2.0)] == [0.0, 0.0, 0.0]
    assert lim.acquire(3.0) == 7.0  # the first start (0.0) leaves the window at 10.0
    assert lim.acquire(3.0) == 8.0
    assert lim.acquire(3.0) == 9.0
    assert lim.acquire(3.0) == 17.0  # queued behind the bookings at 10, 11, 12
    assert lim.booked(3.0) == 3 and lim.booked(12.0) == 3
    limits = Limits(connections_per_window=5, connection_window=300.0)
    lim = ConnectLimiter.for_limits(limits, max_concurrent=1)
    assert (lim.attempts, lim.window, lim.max_concurrent) == (5, 300.0, 1)
    for kwargs in ({"max_concurrent": 0}, {"attempts": 0}, {"window": 0.0}):
        with pytest.raises(ConfigError):
            ConnectLimiter(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.floats(0.5, 20.0), st.lists(st.floats(0.0, 5.0), max_size=60))
def test_no_window_ever_holds_more_than_the_allowed_starts(attempts: int, window: float, gaps: list[float]) -> None:
    lim = ConnectLimiter(max_concurrent=10**6, attempts=attempts, window=window)
    now = 0.0
    starts = []
    for dt in gaps:
        now += dt
        delay = lim.acquire(now)
        assert delay >= 0.0
        starts.append(now + delay)
    starts.sort()
    for i, s in enumerate(starts):
        # starts within (s - window, s]
        inside = [x for x in starts[: i + 1] if x > s - window + 1e-9]
        assert len(inside) <= attempts


# --- RestLimiter and Retry-After ------------------------------------------------------


def test_rest_weights_and_penalties() -> None:
    lim = RestLimiter(weight_per_minute=60)  # 1 weight/s, burst 60
    assert lim.acquire(0.0, 50) == 0.0
    assert lim.acquire(0.0, 10) == 0.0
    assert lim.acquire(0.0, 5) == pytest.approx(5.0)
    assert lim.on_status(1.0, 200, None, 0.0) is None
    assert lim.on_status(1.0, 429, "30", 0.0) == 30.0
    assert lim.blocked_for(1.0) == 31.0 - 1.0
    assert lim.acquire(2.0, 1) >= 29.0
    assert lim.on_status(2.0, 418, None, 0.0) == 60.0  # no Retry-After: the default penalty
    assert lim.blocked_for(2.0) == 60.0
    assert lim.penalize(3.0, 10**9) == 3 * 86400.0  # capped
    assert lim.penalties == 3
    with pytest.raises(ConfigError):
        lim.acquire(0.0, -1)
    assert RestLimiter.for_limits(Limits(rest_weight_per_minute=6000)).bucket.rate == 100.0
    for kwargs in ({"weight_per_minute": 0}, {"default_penalty_s": -1.0}, {"max_penalty_s": 1.0}):
        with pytest.raises(ConfigError):
            RestLimiter(**kwargs)  # type: ignore[arg-type]


WALL = datetime(2015, 10, 21, 7, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1680.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 1680.0),  # RFC 850
        ("Wed Oct 21 07:28:00 2015", 1680.0),  # asctime: no zone, GMT
        ("Wed, 21 Oct 2015 06:00:00 GMT", 0.0),  # in the past
        ("Thu Oct  1 07:28:00 2015", 0.0),  # asctime, single-digit day, in the past
        ("wed, 21 oct 2015 07:28:00 gmt", 1680.0),  # case-insensitive
        ("Wed,  21 Oct 2015 07:28:00 GMT", 1680.0),  # doubled space
        ("Wed, 31 Feb 2015 07:28:00 GMT", None),  # no such day
        ("Wed, 21 Foo 2015 07:28:00 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00 CET", None),  # HTTP-dates are GMT
        ("Thursday, 21-Oct-60 07:00:00 GMT", (datetime(2060, 10, 21, 7, tzinfo=UTC).timestamp() - WALL)),
        ("Friday, 21-Oct-94 07:00:00 GMT", 0.0),  # 2094 is > 50 years ahead: 1994
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, WALL) == seconds


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2060, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    )
)
def test_the_three_http_date_forms_agree(when: datetime) -> None:
    wall = datetime(2015, 1, 1, tzinfo=UTC).timestamp()
    expected = max(0.0, when.replace(tzinfo=UTC).timestamp() - wall)
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    day, month = days[when.weekday()], months[when.month - 1]
    clock = f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    imf = f"{day[:3]}, {when.day:02d} {month} {when.year} {clock} GMT"
    asctime = f"{day[:3]} {month} {when.day:2d} {clock} {when.year}"
    assert parse_retry_after(imf, wall) == expected
    assert parse_retry_after(asctime, wall) == expected
    if when.year < 2065:  # RFC 850 two-digit years: 1966..2065 seen from 2015
        rfc850 = f"{day}, {when.day:02d}-{month}-{when.year % 100:02d} {clock} GMT"
        assert parse_retry_after(rfc850, wall) == expected
