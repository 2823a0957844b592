"""Pure pieces of reconnection and pacing: backoff delays, retry
classification and a token bucket. None of them sleeps or reads a clock: they
are given "now" and return how long to wait, so they are tested without time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import attrs

from wsmux.errors import ConfigError, LocalError

__all__ = ["Backoff", "TokenBucket", "should_retry"]


@attrs.frozen(slots=True)
class Backoff:
    """Exponential backoff with full jitter.

    The n-th delay (n from 0) is drawn uniformly from
    ``[0, min(cap, initial * factor**n)]`` ("full jitter"), which spreads
    reconnects of many connections dropped at once (no thundering herd).

    Attributes:
        initial: ceiling of the first delay, seconds.
        factor: growth of the ceiling per attempt.
        cap: largest ceiling, seconds.
        min_delay: floor added to every delay, seconds.
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    min_delay: float = 0.0

    def __attrs_post_init__(self) -> None:
        # finite values only (NaN fails every comparison; an infinite delay never ends)
        finite = all(math.isfinite(v) for v in (self.initial, self.factor, self.cap, self.min_delay))
        if not (finite and self.initial > 0 and self.factor >= 1 and self.cap >= self.initial and self.min_delay >= 0):
            raise ConfigError(f"invalid backoff {self!r}")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """An endless iterator of delays (seconds)."""
        rng = rng or random.Random()
        ceiling = self.initial
        while True:
            yield self.min_delay + rng.uniform(0.0, ceiling)
            ceiling = min(self.cap, ceiling * self.factor)


def should_retry(exc: BaseException) -> bool:
    """Whether a connection failure is worth retrying.

    Caller misuse (:class:`~wsmux.errors.LocalError`) and HTTP 401/403 on the
    handshake are final; everything else (timeouts, resets, 5xx, 429) is
    retried with backoff. ``exc`` and its chain of ``__cause__`` are judged,
    so a wrapped ``TransportError(...) from InvalidStatus(403)`` is final too.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    # The Connection wraps foreign errors (``raise TransportError(...) from
    # exc``): judge the whole chain of causes, not only the wrapper.
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, LocalError):
            return False
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if status in (401, 403):
            return False
        cause = cause.__cause__
    return True


class TokenBucket:
    """Token bucket: ``rate`` tokens per second, at most ``burst`` stored.

    :meth:`take` is pure given ``now`` (monotonic seconds): it returns how
    long the caller must wait before the token it takes is due (0.0: send now).
    Taking always succeeds, so waiting callers queue in order.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if not rate > 0:  # NaN too
            raise ConfigError(f"rate must be positive, not {rate}")
        if burst is not None and not burst > 0:
            raise ConfigError(f"burst must be positive, not {burst}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._stamp: float | None = None

    def take(self, now: float, tokens: float = 1.0) -> float:
        """Take ``tokens``; return the seconds to wait before using them."""
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        self._tokens -= tokens
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    def penalize(self, now: float, seconds: float) -> None:
        """Empty the bucket for ``seconds`` (a venue said "slow down")."""
        self.take(now, 0.0)
        self._tokens = min(self._tokens, 0.0) - seconds * self.rate
