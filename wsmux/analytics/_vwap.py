"""Volume-weighted average price (rolling window, session) and the volume profile.

All three follow one instrument's :class:`~wsmux.Trade` events by exchange
time (``Trade.ts``, or ``recv_ns`` when the venue sends none) and keep exact
sums (:class:`~wsmux.analytics.ExactSum`), so a window that adds and later
removes the same trades returns exactly to zero: no drift over a day.

* VWAP = Σ priceᵢ·sizeᵢ / Σ sizeᵢ over the trades in scope.
* Rolling: the trades with time in ``(t - window, t]``, ``t`` the newest
  trade's time. A late trade (older than the newest) is kept as if it arrived
  at the newest time (so it leaves the window with its neighbours).
* Session: the trades since the session boundary ``origin + k·session``
  (default: 00:00 UTC daily); a late trade from the previous session counts
  in the current one (same policy as :class:`~wsmux.analytics.TimeBars`).

Volume profile (theory of operation): trades are bucketed by price in
multiples of the instrument's tick (``bucket = round(price / tick) //
ticks_per_bucket``; a bucket is named by its lower edge); the window holds
the trades with time in ``(t - window, t]``. At each boundary of ``every``
(exchange time, aligned like time bars) crossed by an arriving trade, the
profile of the window as of that boundary is emitted (before the trade is
added): bucket volumes, the point of control (POC: the bucket with the most
volume, the lowest price on ties) and the value area: starting from the
POC, the adjacent non-empty bucket (above or below) with more volume is
added (the upper one on ties) until the area holds ``value_area`` (70 %) of
the volume — the Market Profile rule (J. P. Steidlmayer; CBOT, "Market
Profile", 1984), one bucket at a time.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

from wsmux.analytics._bars import _interval
from wsmux.analytics._exact import ExactSum
from wsmux.analytics._operator import NOTHING, AnalyticEvent, Operator
from wsmux.errors import ConfigError
from wsmux.model import Event, Instrument, Trade, event

__all__ = ["RollingVwap", "SessionVwap", "Vwap", "VolumeProfile", "Profile"]

_INF = math.inf


@event
class Vwap(AnalyticEvent):
    """The VWAP after a trade.

    Attributes:
        kind: ``"rolling:5m"`` or ``"session:1d"``.
        vwap: Σ price·size / Σ size over the trades in scope (the exact ratio, rounded once).
        volume: Σ size in scope (exact).
        trades: trades in scope.
        start_ts: the scope's start (rolling: ``t - window``, exclusive; session: the boundary).
    """

    venue: str
    symbol: str
    kind: str
    vwap: float
    volume: float
    trades: int
    start_ts: int
    ts: int | None
    recv_ns: int


@event
class Profile(AnalyticEvent):
    """The volume profile of a window.

    Attributes:
        window_ns: the window length; the profile covers ``(ts - window_ns, ts)``.
        bucket_size: the price width of a bucket (tick * ticks per bucket).
        prices: lower edge of each non-empty bucket, ascending.
        volumes: the volume of each bucket (exact sums).
        poc: the point of control (a bucket's lower edge), nan when empty.
        value_area_low: the lowest bucket of the value area, nan when empty.
        value_area_high: the highest bucket of the value area, nan when empty.
        volume: total volume in the window.
        ts: the emission boundary (exchange time) the profile is taken at.
    """

    venue: str
    symbol: str
    window_ns: int
    bucket_size: float
    prices: tuple[float, ...]
    volumes: tuple[float, ...]
    poc: float
    value_area_low: float
    value_area_high: float
    volume: float
    ts: int | None
    recv_ns: int


def _check_trade(trade: Trade) -> None:
    if not (0.0 < trade.price < _INF and 0.0 < trade.size < _INF):
        raise ConfigError(f"trade with price {trade.price!r} and size {trade.size!r}: both must be positive and finite")


class _TradeOperator(Operator):
    """One instrument's trades: the binding shared by the VWAP and profile operators."""

    accepts = (Trade,)

    def __init__(self, name: str) -> None:
        self.name = name
        self._venue = ""
        self._symbol = ""

    def _time(self, trade: Trade) -> int:
        """Check the trade (instrument, price, size) and return its time (exchange, else receive)."""
        if trade.symbol != self._symbol or trade.venue != self._venue:
            self._bind(trade)
        _check_trade(trade)
        return trade.ts if trade.ts is not None else trade.recv_ns

    def _bind(self, trade: Trade) -> None:
        if self._venue:
            raise ConfigError(
                f"operator {self.name} follows {self._venue} {self._symbol} but was fed {trade.venue} "
                f"{trade.symbol}: use one operator per instrument (wsmux.analytics.PerInstrument)"
            )
        self._venue, self._symbol = trade.venue, trade.symbol


class RollingVwap(_TradeOperator):
    """VWAP over the trailing ``window`` of exchange time, emitted after every trade.

    O(1) amortised per trade (each trade enters and leaves the window once).
    """

    def __init__(self, window: int | str) -> None:
        self.window, text = _interval(window)
        super().__init__(f"vwap-rolling:{text}")
        self.kind = f"rolling:{text}"
        self._trades: collections.deque[tuple[int, float, float]] = collections.deque()
        self._notional = ExactSum()
        self._volume = ExactSum()
        self._newest = -(2**63)

    def reset(self) -> None:
        self._trades.clear()
        self._notional.clear()
        self._volume.clear()
        self._newest = -(2**63)
        self._venue = self._symbol = ""

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        trade: Trade = event  # type: ignore[assignment]
        ts = self._time(trade)
        ts = max(ts, self._newest)  # a late trade is kept as if it arrived now
        self._newest = ts
        notional, volume = self._notional, self._volume
        price, size = trade.price, trade.size
        window = self._trades
        window.append((ts, price, size))
        notional.add_product(price, size)
        volume.add(size)
        start = ts - self.window
        while window[0][0] <= start:
            _, old_price, old_size = window.popleft()
            notional.add_product(-old_price, old_size)
            volume.add(-old_size)
        vwap = ExactSum.ratio(notional, volume)
        return (Vwap(self._venue, self._symbol, self.kind, vwap, volume.value, len(window), start, trade.ts,
                     trade.recv_ns),)  # fmt: skip


class SessionVwap(_TradeOperator):
    """VWAP since the start of the session (``origin_ns + k·session``; default
    daily from 00:00 UTC), emitted after every trade. O(1) per trade."""

    def __init__(self, session: int | str = "1d", *, origin_ns: int = 0) -> None:
        self.session, text = _interval(session)
        super().__init__(f"vwap-session:{text}")
        self.kind = f"session:{text}"
        self.origin_ns = origin_ns
        self._notional = ExactSum()
        self._volume = ExactSum()
        self._start = 0
        self._end = -(2**63)
        self._trades = 0

    def reset(self) -> None:
        self._notional.clear()
        self._volume.clear()
        self._start = 0
        self._end = -(2**63)
        self._trades = 0
        self._venue = self._symbol = ""

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        trade: Trade = event  # type: ignore[assignment]
        ts = self._time(trade)
        if ts >= self._end:
            self._notional.clear()
            self._volume.clear()
            self._trades = 0
            self._start = ts - (ts - self.origin_ns) % self.session
            self._end = self._start + self.session
        self._notional.add_product(trade.price, trade.size)
        self._volume.add(trade.size)
        self._trades += 1
        vwap = ExactSum.ratio(self._notional, self._volume)
        return (Vwap(self._venue, self._symbol, self.kind, vwap, self._volume.value, self._trades, self._start,
                     trade.ts, trade.recv_ns),)  # fmt: skip


def value_area(volumes: Sequence[float], share: float) -> tuple[int, int, int]:
    """``(poc, low, high)`` indexes into ``volumes`` (buckets in price order):
    the point of control and the value area holding ``share`` of the volume
    (see the module docstring for the rule). O(n).

    Raises:
        ValueError: ``volumes`` is empty.
    """
    if not volumes:
        raise ValueError("no buckets")
    poc = max(range(len(volumes)), key=volumes.__getitem__)  # first (lowest price) on ties
    target = share * math.fsum(volumes)
    area = ExactSum()
    area.add(volumes[poc])
    low = high = poc
    n = len(volumes)
    while area.value < target and (low > 0 or high < n - 1):
        below = volumes[low - 1] if low > 0 else -1.0
        above = volumes[high + 1] if high < n - 1 else -1.0
        if above >= below:
            high += 1
            area.add(above)
        else:
            low -= 1
            area.add(below)
    return poc, low, high


class VolumeProfile(_TradeOperator):
    """The volume by price bucket over a trailing window, emitted every ``every``.

    Args:
        tick: the instrument's tick size, or its :class:`~wsmux.Instrument`
            (its ``tick_size``).
        window: the window (ns or text like ``"1h"``).
        every: emit at each boundary of this much exchange time (default: the window).
        ticks_per_bucket: bucket width in ticks.
        value_area: the share of the volume the value area holds (default 0.7).

    Cost: O(1) amortised per trade; O(b log b) per emission, b the number of
    non-empty buckets.

    Raises:
        ConfigError: no usable tick size, or a bad window or share.
    """

    def __init__(
        self,
        tick: float | Instrument,
        window: int | str,
        *,
        every: int | str | None = None,
        ticks_per_bucket: int = 1,
        value_area: float = 0.7,
    ) -> None:
        tick_size = tick.tick_size if isinstance(tick, Instrument) else tick
        if tick_size is None or not (0.0 < tick_size < _INF):
            raise ConfigError(f"volume profile needs a positive tick size, not {tick_size!r}")
        if isinstance(ticks_per_bucket, bool) or not isinstance(ticks_per_bucket, int) or ticks_per_bucket <= 0:
            raise ConfigError(f"ticks_per_bucket must be a positive int, not {ticks_per_bucket!r}")
        if not (0.0 < value_area <= 1.0):
            raise ConfigError(f"value_area is a share in (0, 1], not {value_area!r}")
        self.window, text = _interval(window)
        self.every = self.window if every is None else _interval(every)[0]
        super().__init__(f"volume-profile:{text}")
        self.tick_size = tick_size
        self.ticks_per_bucket = ticks_per_bucket
        self.bucket_size = tick_size * ticks_per_bucket
        self.value_area = value_area
        self._trades: collections.deque[tuple[int, int, float]] = collections.deque()
        self._buckets: dict[int, ExactSum] = {}
        self._next_emit: int | None = None
        self._newest = -(2**63)

    def reset(self) -> None:
        self._trades.clear()
        self._buckets.clear()
        self._next_emit = None
        self._newest = -(2**63)
        self._venue = self._symbol = ""

    def _evict(self, start: int) -> None:
        window, buckets = self._trades, self._buckets
        while window and window[0][0] <= start:
            _, bucket, size = window.popleft()
            total = buckets[bucket]
            total.add(-size)
            if not total:
                del buckets[bucket]  # exactly empty: exact sums make this safe

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        trade: Trade = event  # type: ignore[assignment]
        ts = self._time(trade)
        ts = max(ts, self._newest)  # a late trade is kept as if it arrived now
        self._newest = ts
        out: Sequence[AnalyticEvent] = NOTHING
        next_emit = self._next_emit
        if next_emit is None:
            self._next_emit = ts - ts % self.every + self.every
        elif ts >= next_emit:
            self._evict(next_emit - self.window)
            out = (self.profile(next_emit, trade.recv_ns),)
            self._next_emit = ts - ts % self.every + self.every
        self._evict(ts - self.window)
        bucket = round(trade.price / self.tick_size) // self.ticks_per_bucket
        self._trades.append((ts, bucket, trade.size))
        total = self._buckets.get(bucket)
        if total is None:
            total = self._buckets[bucket] = ExactSum()
        total.add(trade.size)
        return out

    def profile(self, ts: int | None, recv_ns: int) -> Profile:
        """The profile of the trades now in the window (O(b log b))."""
        keys = sorted(self._buckets)
        width = self.bucket_size
        prices = tuple([k * width for k in keys])
        volumes = tuple([self._buckets[k].value for k in keys])
        if not keys:
            nan = math.nan
            return Profile(self._venue, self._symbol, self.window, width, (), (), nan, nan, nan, 0.0, ts, recv_ns)
        poc, low, high = value_area(volumes, self.value_area)
        total = ExactSum.total(*self._buckets.values())
        return Profile(self._venue, self._symbol, self.window, width, prices, volumes, prices[poc], prices[low],
                       prices[high], total, ts, recv_ns)  # fmt: skip
