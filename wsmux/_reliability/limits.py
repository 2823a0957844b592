"""Connection-attempt and REST rate limiting, as pure functions of "now".

Theory of operation
-------------------
Venues ban clients that connect too often or call REST too hard (Binance:
HTTP 429, then 418 with an IP ban of minutes to days). Both limiters follow
the ``acquire(now) -> delay`` contract of :class:`~wsmux._retry.TokenBucket`:
the call *reserves* capacity and returns how many seconds the caller must
wait before using it (0.0: go now). Reservations queue in call order, so
waiting callers are served first come, first served. Nothing sleeps here.

:class:`ConnectLimiter` (one per venue) enforces two limits at once:

* at most ``max_concurrent`` attempts in flight: :meth:`~ConnectLimiter.acquire`
  returns ``math.inf`` and reserves nothing when all slots are taken — wait
  for a :meth:`~ConnectLimiter.release` and call again;
* at most ``attempts`` attempt starts within any ``window`` seconds — an
  exact sliding window (a log of the last start times, at most
  ``attempts + max_concurrent`` entries), not a token bucket: a bucket
  refilled at ``attempts/window`` with a burst of ``attempts`` lets
  ``2 * attempts`` through in a window, which is what gets an IP banned.

:class:`RestLimiter` (one per venue REST host) spends request *weights* from
a :class:`~wsmux._retry.TokenBucket` refilled at ``weight_per_minute / 60``
per second (burst: a full minute). On HTTP 429 or 418 the caller reports the
answer with :meth:`~RestLimiter.penalize` (or :meth:`~RestLimiter.on_status`),
which honours ``Retry-After`` — delay-seconds or an HTTP-date, see
:func:`parse_retry_after` — or ``default_penalty_s`` when it is absent: no
request may start before the penalty ends, and the bucket restarts empty.
Callers that reserved before the penalty arrived must check
:meth:`~RestLimiter.blocked_for` after their sleep.

Costs: every call is O(1) amortised (the sliding-window log is pruned from
its front).
"""

from __future__ import annotations

import math
import re
from collections import deque
from datetime import UTC, datetime

from wsmux._retry import TokenBucket
from wsmux.adapter import Limits
from wsmux.errors import ConfigError

__all__ = ["ConnectLimiter", "RestLimiter", "parse_retry_after"]


class ConnectLimiter:
    """Connection attempts of one venue: concurrency and a sliding window.

    Args:
        max_concurrent: attempts in flight at once.
        attempts: attempt starts allowed within ``window``.
        window: seconds.

    Attributes:
        in_flight: slots taken (acquired and not released).
        granted: cumulative successful acquires.
        refused: cumulative acquires refused for lack of a slot.
    """

    __slots__ = ("_starts", "attempts", "granted", "in_flight", "max_concurrent", "refused", "window")

    def __init__(self, *, max_concurrent: int = 2, attempts: int = 300, window: float = 300.0) -> None:
        if max_concurrent < 1 or attempts < 1 or not window > 0:
            raise ConfigError(
                f"need max_concurrent >= 1, attempts >= 1, window > 0; not {max_concurrent}, {attempts}, {window}"
            )
        self.max_concurrent = max_concurrent
        self.attempts = attempts
        self.window = window
        self.in_flight = 0
        self.granted = 0
        self.refused = 0
        self._starts: deque[float] = deque()

    @classmethod
    def for_limits(cls, limits: Limits, *, max_concurrent: int = 2) -> ConnectLimiter:
        """A limiter from an adapter's :class:`~wsmux.adapter.Limits`."""
        return cls(
            max_concurrent=max_concurrent, attempts=limits.connections_per_window, window=limits.connection_window
        )

    def acquire(self, now: float) -> float:
        """Reserve an attempt; return the seconds to wait before starting it.

        ``math.inf``: no slot is free and nothing was reserved — call again
        after a :meth:`release`. Otherwise a slot is held until :meth:`release`,
        and the attempt start is booked at ``now + delay``. O(1) amortised.
        """
        if self.in_flight >= self.max_concurrent:
            self.refused += 1
            return math.inf
        starts = self._starts
        horizon = now - self.window
        while starts and starts[0] <= horizon:
            starts.popleft()
        start = now
        if len(starts) >= self.attempts:
            # the attempts-th most recent booking must leave the window first
            start = max(now, starts[-self.attempts] + self.window)
        starts.append(start)
        self.in_flight += 1
        self.granted += 1
        return start - now

    def release(self) -> None:
        """The attempt ended (connected, failed or abandoned): free its slot."""
        if self.in_flight <= 0:
            raise ConfigError("release() without a matching acquire()")
        self.in_flight -= 1

    def booked(self, now: float) -> int:
        """Attempt starts booked in the window ``(now - window, now]``. O(entries)."""
        horizon = now - self.window
        return sum(1 for t in self._starts if horizon < t <= now)


class RestLimiter:
    """REST weight budget of one venue, with 429/418 penalties.

    Args:
        weight_per_minute: the venue's budget (``Limits.rest_weight_per_minute``).
        burst: most weight spendable at once (default: a full minute).
        default_penalty_s: penalty when a 429/418 has no usable ``Retry-After``.
        max_penalty_s: cap of any penalty (a venue's or a parser's absurd value).

    Attributes:
        penalties: how many penalties were applied.
        weight_used: weight reserved by :meth:`acquire` so far (the metrics read it).
    """

    __slots__ = ("_blocked_until", "bucket", "default_penalty_s", "max_penalty_s", "penalties", "weight_used")

    def __init__(
        self,
        weight_per_minute: float = 1200,
        *,
        burst: float | None = None,
        default_penalty_s: float = 60.0,
        max_penalty_s: float = 3 * 86400.0,
    ) -> None:
        if not weight_per_minute > 0 or not default_penalty_s >= 0 or not max_penalty_s >= default_penalty_s:
            raise ConfigError("need weight_per_minute > 0 and 0 <= default_penalty_s <= max_penalty_s")
        self.bucket = TokenBucket(weight_per_minute / 60.0, burst if burst is not None else float(weight_per_minute))
        self.default_penalty_s = default_penalty_s
        self.max_penalty_s = max_penalty_s
        self.penalties = 0
        self.weight_used = 0.0
        self._blocked_until = -math.inf

    @classmethod
    def for_limits(cls, limits: Limits, **kwargs: float) -> RestLimiter:
        """A limiter from an adapter's :class:`~wsmux.adapter.Limits`."""
        return cls(limits.rest_weight_per_minute, **kwargs)

    def acquire(self, now: float, weight: float = 1.0) -> float:
        """Reserve ``weight``; return the seconds to wait before sending. O(1)."""
        if weight < 0:
            raise ConfigError(f"weight must be >= 0, not {weight}")
        delay = self.bucket.take(now, weight)
        self.weight_used += weight
        return max(delay, self._blocked_until - now, 0.0)

    def blocked_for(self, now: float) -> float:
        """Seconds until the current penalty ends (0.0: none)."""
        return max(0.0, self._blocked_until - now)

    def penalize(self, now: float, retry_after_s: float | None) -> float:
        """The venue said "slow down": block for ``retry_after_s`` (None: the
        default penalty), capped at ``max_penalty_s``; return the seconds applied."""
        seconds = self.default_penalty_s if retry_after_s is None else retry_after_s
        seconds = min(max(seconds, 0.0), self.max_penalty_s)
        self._blocked_until = max(self._blocked_until, now + seconds)
        self.bucket.penalize(now, seconds)
        self.penalties += 1
        return seconds

    def on_status(self, now: float, status: int, retry_after: str | None, wall_now: float) -> float | None:
        """Feed a response's status and ``Retry-After`` header text.

        429 (too many requests) and 418 (Binance: IP banned) apply a penalty,
        returned in seconds; any other status returns None. ``wall_now`` is
        Unix seconds, to resolve an HTTP-date.
        """
        if status not in (429, 418):
            return None
        return self.penalize(now, parse_retry_after(retry_after, wall_now))


def parse_retry_after(value: str | None, wall_now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3).

    Accepts delay-seconds (``"120"``; a decimal such as ``"1.5"`` is
    tolerated) and HTTP-date in its three forms (RFC 9110 §5.6.7):
    IMF-fixdate ``Sun, 06 Nov 1994 08:49:37 GMT``, RFC 850
    ``Sunday, 06-Nov-94 08:49:37 GMT`` (a two-digit year more than 50 years
    ahead is read as the previous century) and asctime
    ``Sun Nov  6 08:49:37 1994`` (GMT). A date in the past gives 0.0.
    ``wall_now`` is the current Unix time in seconds. Returns None when the
    value is absent, negative or unreadable. (Parsed here rather than with
    :mod:`email.utils`, which imports :mod:`socket`, and locale-independent,
    unlike ``strptime``.)
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text[0].isdigit() or text[0] in "+-.":
        try:
            seconds = float(text)
        except ValueError:
            return None
        if not seconds >= 0 or seconds == math.inf:
            return None
        return seconds
    when = _http_date(text, wall_now)
    if when is None:
        return None
    return max(0.0, when - wall_now)


_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_IMF = re.compile(r"[a-z]{3}, (\d{1,2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt", re.IGNORECASE)
_RFC850 = re.compile(r"[a-z]{6,9}, (\d{1,2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt", re.IGNORECASE)
_ASCTIME = re.compile(r"[a-z]{3} ([a-z]{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})", re.IGNORECASE)


def _http_date(text: str, wall_now: float) -> float | None:
    """An HTTP-date as Unix seconds, or None."""
    text = " ".join(text.split())  # tolerate doubled spaces
    if m := _IMF.fullmatch(text):
        day, month, year, hh, mm, ss = m.groups()
        y = int(year)
    elif m := _RFC850.fullmatch(text):
        day, month, year, hh, mm, ss = m.groups()
        this_year = datetime.fromtimestamp(wall_now, UTC).year
        y = 2000 + int(year) if 2000 + int(year) <= this_year + 50 else 1900 + int(year)
    elif m := _ASCTIME.fullmatch(text):
        month, day, hh, mm, ss, year = m.groups()
        y = int(year)
    else:
        return None
    month_no = _MONTHS.get(month.lower())
    if month_no is None:
        return None
    try:
        return datetime(y, month_no, int(day), int(hh), int(mm), int(ss), tzinfo=UTC).timestamp()
    except ValueError:  # 31 Feb, 25:00, ...
        return None
