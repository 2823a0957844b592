"""Backoff, TokenBucket and should_retry: pure functions of their inputs."""

from __future__ import annotations

import itertools
import math
import random

import httpx
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from wsmux._retry import Backoff, TokenBucket, should_retry
from wsmux.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosed,
    ConnectTimeout,
    MalformedMessage,
    SnapshotFailed,
    SubscriptionRejected,
    TransportError,
    UnknownSymbol,
    UnknownVenue,
)


class Ceiling(random.Random):
    """A Random whose ``uniform`` always returns the upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


# --- Backoff ------------------------------------------------------------------------------


def test_defaults() -> None:
    b = Backoff()
    assert (b.initial, b.factor, b.cap, b.min_delay) == (0.5, 2.0, 30.0, 0.0)


def test_ceilings_grow_geometrically_to_the_cap() -> None:
    delays = list(itertools.islice(Backoff(initial=0.5, factor=2.0, cap=30.0).delays(Ceiling()), 10))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    delays = list(itertools.islice(Backoff(initial=1.0, factor=3.0, cap=10.0, min_delay=0.25).delays(Ceiling()), 4))
    assert delays == [1.25, 3.25, 9.25, 10.25]


def test_factor_one_is_a_constant_ceiling() -> None:
    delays = list(itertools.islice(Backoff(initial=2.0, factor=1.0, cap=2.0).delays(Ceiling()), 5))
    assert delays == [2.0] * 5


@pytest.mark.parametrize("seed", range(5))
def test_full_jitter_is_uniform_below_each_ceiling(seed: int) -> None:
    backoff = Backoff(initial=0.5, factor=2.0, cap=8.0, min_delay=0.1)
    got = list(itertools.islice(backoff.delays(random.Random(seed)), 12))
    # exactly the seeded draws: uniform(0, ceiling_n) + min_delay
    rng = random.Random(seed)
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert got == [0.1 + rng.uniform(0.0, c) for c in ceilings]
    for delay, ceiling in zip(got, ceilings, strict=True):
        assert 0.1 <= delay <= 0.1 + ceiling


def test_jitter_spreads_over_the_whole_range() -> None:
    # many connections dropped at once must not reconnect in lockstep
    rng = random.Random(7)
    firsts = [next(Backoff(initial=1.0, cap=1.0).delays(rng)) for _ in range(2000)]
    assert min(firsts) < 0.05 and max(firsts) > 0.95
    assert 0.45 < sum(firsts) / len(firsts) < 0.55


def test_each_iterator_starts_over() -> None:
    backoff = Backoff(initial=1.0, cap=4.0)
    a = backoff.delays(Ceiling())
    assert [next(a), next(a), next(a)] == [1.0, 2.0, 4.0]
    assert next(backoff.delays(Ceiling())) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0.0},
        {"initial": -1.0},
        {"factor": 0.5},
        {"cap": 0.1, "initial": 0.5},
        {"min_delay": -0.1},
        {"initial": math.nan},
        {"factor": math.nan},
        {"cap": math.nan},
        {"min_delay": math.nan},
        {"cap": math.inf},
        {"initial": math.inf, "cap": math.inf},
    ],
)
def test_invalid_backoff_is_a_config_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError) as info:
        Backoff(**kwargs)
    assert isinstance(info.value, ValueError)


# --- TokenBucket --------------------------------------------------------------------------


def test_burst_then_paced() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # the bucket is empty: each further token is due 1/rate after the previous one
    assert [bucket.take(10.0) for _ in range(3)] == [0.5, 1.0, 1.5]


def test_refill_is_linear_and_capped_at_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    for _ in range(3):
        bucket.take(0.0)
    assert bucket.take(0.5) == 0.0  # one token came back in 0.5 s
    assert bucket.take(0.5) == 0.5
    # a long idle time refills only up to the burst
    assert [bucket.take(100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def test_default_burst() -> None:
    assert TokenBucket(rate=5.0).burst == 5.0
    assert TokenBucket(rate=0.5).burst == 1.0  # at least one message can always go at once
    slow = TokenBucket(rate=0.5)
    assert slow.take(0.0) == 0.0
    assert slow.take(0.0) == 2.0


def test_taking_several_tokens() -> None:
    bucket = TokenBucket(rate=4.0, burst=4.0)
    assert bucket.take(0.0, 3.0) == 0.0
    assert bucket.take(0.0, 3.0) == 0.5  # 2 tokens short at 4/s


def test_time_going_backwards_does_not_refill() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0)
    assert bucket.take(5.0) == 0.0
    assert bucket.take(4.0) == 1.0
    assert bucket.take(5.0) == 2.0


def test_penalize_empties_the_bucket_for_a_while() -> None:
    bucket = TokenBucket(rate=2.0, burst=4.0)
    bucket.penalize(10.0, 3.0)
    # nothing for 3 s, then the bucket refills from empty at 2 tokens/s
    assert bucket.take(10.0) == 3.5
    bucket = TokenBucket(rate=2.0, burst=4.0)
    bucket.penalize(10.0, 3.0)
    assert bucket.take(13.0) == 0.5
    assert bucket.take(13.5) == 0.5
    assert bucket.take(15.0) == 0.0


def test_penalize_on_top_of_a_debt() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0)
    bucket.take(0.0)
    bucket.take(0.0)  # one token in debt
    bucket.penalize(0.0, 5.0)
    assert bucket.take(0.0) == 7.0  # the debt, the penalty, then this token


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan])
def test_invalid_rate_is_a_config_error(rate: float) -> None:
    with pytest.raises(ConfigError):
        TokenBucket(rate)


@pytest.mark.parametrize("burst", [0.0, -1.0, math.nan])
def test_invalid_burst_is_a_config_error(burst: float) -> None:
    with pytest.raises(ConfigError):
        TokenBucket(1.0, burst)


def test_infinite_rate_or_burst_means_unlimited() -> None:
    assert [TokenBucket(math.inf).take(0.0) for _ in range(3)] == [0.0] * 3
    unlimited = TokenBucket(math.inf)
    assert [unlimited.take(1.0) for _ in range(100)] == [0.0] * 100
    deep = TokenBucket(1.0, math.inf)
    assert [deep.take(1.0) for _ in range(100)] == [0.0] * 100


# --- should_retry -------------------------------------------------------------------------


def ws_status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "status", Headers(), b""))


def http_status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/depth")
    response = httpx.Response(code, request=request)
    return httpx.HTTPStatusError(f"HTTP {code}", request=request, response=response)


def wrapped(cause: BaseException) -> TransportError:
    """What the Connection raises: the foreign error wrapped at the boundary."""
    try:
        raise TransportError(f"cannot connect: {cause}") from cause
    except TransportError as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        ConfigError("bad"),
        UnknownVenue("nope"),
        UnknownSymbol("nope"),
        ClosedError("closed"),
        ws_status(401),
        ws_status(403),
        http_status(401),
        http_status(403),
        wrapped(ws_status(403)),
        wrapped(http_status(401)),
        wrapped(ConfigError("bad url")),
    ],
    ids=repr,
)
def test_final_failures_are_not_retried(exc: BaseException) -> None:
    assert should_retry(exc) is False


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        ConnectTimeout("slow"),
        ConnectionClosed("reset"),
        ConnectionResetError(),
        OSError("unreachable"),
        SnapshotFailed("500"),
        MalformedMessage("garbage"),
        SubscriptionRejected("no"),
        RuntimeError("adapter bug"),
        ws_status(429),
        ws_status(500),
        ws_status(503),
        http_status(429),
        http_status(502),
        wrapped(ws_status(503)),
        wrapped(OSError("refused")),
    ],
    ids=repr,
)
def test_transient_failures_are_retried(exc: BaseException) -> None:
    assert should_retry(exc) is True


def test_a_cause_cycle_terminates() -> None:
    a, b = TransportError("a"), TransportError("b")
    a.__cause__, b.__cause__ = b, a
    assert should_retry(a) is True
