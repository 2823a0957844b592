"""Bars: time bars aligned to clock boundaries by exchange time, tick, volume
and dollar bars.

Every bar operator follows one instrument (wrap it in
:class:`~wsmux.analytics.PerInstrument` for several) and reads
:class:`~wsmux.Trade` events only. A bar holds OHLC, volume, notional, VWAP,
trade count, buy/sell (aggressor) volume and the first/last trade times.
Volumes and notionals are exact sums (:class:`~wsmux.analytics.ExactSum`): a
bar's volume is the exact sum of its trades' sizes and its notional the exact
sum of the products ``price * size`` (products not rounded either), each
correctly rounded once when the bar is emitted.

Time bars (theory of operation)
-------------------------------
Bars are the half-open intervals ``[origin + k·interval, origin + (k+1)·interval)``
of *exchange* time (``Trade.ts``; the receive time ``recv_ns`` for a trade
whose venue sends none). No clock is read, so a bar closes when the first
trade at or past its end arrives (or at :meth:`TimeBars.flush`): the emitted
bar's ``ts`` is that trade's time. Intervals without trades emit no bar.

Late trades: a trade whose time falls before the open bar's start (its own
bar is already closed) is *not* reopened into it. It is aggregated into the
open bar — volume, notional, count, buy/sell volume, high and low — and
counted in that bar's ``late``; it does not change the bar's open, close or
first/last times. So every traded unit is in exactly one bar (bar volumes
sum to the traded volume) and the VWAP stays within [low, high].

Activity bars
-------------
Tick bars close after ``n`` trades; volume bars when their volume reaches
``threshold``; dollar bars when their notional reaches ``threshold``. Trades
are never split: the trade that reaches the threshold closes its bar (the
overshoot stays in it). These bars close on the input that completes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from wsmux.analytics._exact import ExactSum
from wsmux.analytics._operator import NOTHING, AnalyticEvent, Operator
from wsmux.errors import ConfigError
from wsmux.model import Event, Side, Trade, event

__all__ = ["Bar", "DollarBars", "TickBars", "TimeBars", "VolumeBars", "format_interval", "parse_interval"]

_INF = math.inf
_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
          "d": 86_400_000_000_000}  # fmt: skip


def parse_interval(text: str) -> int:
    """``"1s"``, ``"250ms"``, ``"5m"``, ``"1h"``, ``"1d"`` → nanoseconds.

    Raises:
        ConfigError: not a positive whole number followed by ns/us/ms/s/m/h/d.
    """
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            number = text[: -len(unit)]
            if number.isdigit() and int(number) > 0:
                return int(number) * _UNITS[unit]
            break
    raise ConfigError(f"bad interval {text!r}: use a positive whole number and ns, us, ms, s, m, h or d (e.g. 1s, 5m)")


def format_interval(ns: int) -> str:
    """Nanoseconds as the largest whole unit: ``1_000_000_000`` → ``"1s"``, ``90 s`` → ``"90s"``."""
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"  # pragma: no cover (every int is a whole number of ns)


def _interval(value: int | str) -> tuple[int, str]:
    """``(ns, text)`` of an interval given in ns or as text."""
    if isinstance(value, str):
        return parse_interval(value), value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"an interval is a positive number of ns or text like '1s', not {value!r}")
    return value, format_interval(value)


@event
class Bar(AnalyticEvent):
    """One bar of trades.

    Attributes:
        kind: what closed it: ``"time:1s"``, ``"tick:100"``, ``"volume:10"``, ``"dollar:1000000"``.
        start_ts: time bars: the interval's start; other bars: the first trade's time (ns).
        end_ts: time bars: the interval's (exclusive) end; other bars: the last trade's time.
        volume: exact sum of the trades' sizes.
        notional: exact sum of price * size.
        vwap: Σ price·size / Σ size: the exact ratio, rounded once (so within [low, high]).
        trades: number of trades.
        buy_volume: volume of trades whose taker bought (venue-reported side).
        sell_volume: volume of trades whose taker sold; trades without a side are in neither.
        first_ts: time of the first (in-order) trade; last_ts: of the last.
        late: trades aggregated here whose time is before ``start_ts`` (time bars).
        ts: exchange time of the input that closed the bar.
        recv_ns: receive time of that input.
    """

    venue: str
    symbol: str
    kind: str
    start_ts: int
    end_ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    notional: float
    vwap: float
    trades: int
    buy_volume: float
    sell_volume: float
    first_ts: int
    last_ts: int
    late: int
    ts: int | None
    recv_ns: int


class _Accumulator:
    """The open bar's state. ``add`` costs O(1) amortised (an exact-sum step per
    trade for its side's volume and one for its notional)."""

    __slots__ = ("approx_notional", "approx_volume", "buy", "close", "first_ts", "high", "last_recv", "last_ts",
                 "late", "low", "notional", "open", "sell", "trades", "unsided")  # fmt: skip

    def __init__(self) -> None:
        self.buy = ExactSum()
        self.sell = ExactSum()
        self.unsided = ExactSum()
        self.notional = ExactSum()
        self.clear()

    def clear(self) -> None:
        self.buy.clear()
        self.sell.clear()
        self.unsided.clear()
        self.notional.clear()
        self.trades = 0
        self.late = 0
        self.open = self.close = math.nan
        self.high = -_INF
        self.low = _INF
        self.first_ts = self.last_ts = self.last_recv = 0
        self.approx_volume = self.approx_notional = 0.0
        """Plain running sums, only to decide cheaply that a threshold is not reached yet."""

    def add(self, price: float, size: float, side: Side | None, ts: int) -> None:
        if not (0.0 < price < _INF and 0.0 < size < _INF):
            raise ConfigError(f"trade with price {price!r} and size {size!r}: both must be positive and finite")
        if side is Side.BUY:
            self.buy.add(size)
        elif side is Side.SELL:
            self.sell.add(size)
        else:
            self.unsided.add(size)
        self.approx_volume += size
        self.approx_notional += price * size
        self.notional.add_product(price, size)
        if price > self.high:  # noqa: PLR1730 (an if is cheaper than max() per trade)
            self.high = price
        if price < self.low:  # noqa: PLR1730
            self.low = price
        if self.trades == 0:
            self.open = price
            self.first_ts = ts
        self.trades += 1
        self.close = price
        self.last_ts = ts

    def add_late(self, price: float, size: float, side: Side | None, ts: int) -> None:
        """A trade from before this bar: volumes, count, high/low and ``late``, not open/close/times."""
        if self.trades == 0:  # nothing in order yet: it opens the bar's prices, not its times
            self.add(price, size, side, ts)
            self.first_ts = self.last_ts = 0
        else:
            close, last = self.close, self.last_ts
            self.add(price, size, side, ts)
            self.close, self.last_ts = close, last
        self.late += 1

    def volume(self) -> float:
        return ExactSum.merged(self.buy, self.sell, self.unsided).value

    def bar(self, venue: str, symbol: str, kind: str, start: int, end: int, ts: int | None, recv_ns: int) -> Bar:
        sizes = ExactSum.merged(self.buy, self.sell, self.unsided)
        volume = sizes.value
        notional = self.notional.value
        vwap = ExactSum.ratio(self.notional, sizes)  # the exact ratio rounded once: within [low, high]
        return Bar(
            venue, symbol, kind, start, end, self.open, self.high, self.low, self.close, volume, notional, vwap,
            self.trades, self.buy.value, self.sell.value, self.first_ts, self.last_ts, self.late, ts, recv_ns,
        )  # fmt: skip


class _BarOperator(Operator):
    """Shared by the bar operators: the instrument binding and the accumulator."""

    accepts = (Trade,)

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"bars-{kind}"
        self._acc = _Accumulator()
        self._venue = ""
        self._symbol = ""

    def _bind(self, trade: Trade) -> None:
        if self._venue == "":
            self._venue, self._symbol = trade.venue, trade.symbol
        else:
            raise ConfigError(
                f"operator {self.name} follows {self._venue} {self._symbol} but was fed {trade.venue} "
                f"{trade.symbol}: use one operator per instrument (wsmux.analytics.PerInstrument)"
            )

    def reset(self) -> None:
        self._acc.clear()
        self._venue = self._symbol = ""
        self._reset_more()

    def _reset_more(self) -> None:
        """Subclasses' own state."""

    def flush(self) -> Sequence[AnalyticEvent]:
        """Close and return the open bar, if it has trades (end of data)."""
        acc = self._acc
        if acc.trades == 0:
            return NOTHING
        return (self._close(acc.last_ts or None, acc.last_recv),)

    def _close(self, ts: int | None, recv_ns: int) -> Bar:
        acc = self._acc
        bar = acc.bar(self._venue, self._symbol, self.kind, acc.first_ts, acc.last_ts, ts, recv_ns)
        acc.clear()
        return bar


class TimeBars(_BarOperator):
    """Time bars of ``interval`` aligned to ``origin_ns + k·interval`` of exchange time.

    See the module docstring for when a bar closes and the late-trade policy.

    Args:
        interval: the bar length in ns, or text (``"1s"``, ``"5m"``).
        origin_ns: the alignment origin (default 0: the Unix epoch, so ``1m``
            bars start on the minute and ``1d`` bars at 00:00 UTC).
    """

    def __init__(self, interval: int | str, *, origin_ns: int = 0) -> None:
        self.interval, text = _interval(interval)
        super().__init__(f"time:{text}")
        self.origin_ns = origin_ns
        self._start = 0
        self._end = -1  # no open bar

    def _reset_more(self) -> None:
        self._start = 0
        self._end = -1

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        """O(1) amortised."""
        trade: Trade = event  # type: ignore[assignment]
        if trade.symbol != self._symbol or trade.venue != self._venue:
            self._bind(trade)
        ts = trade.ts
        if ts is None:
            ts = trade.recv_ns
        acc = self._acc
        acc.last_recv = trade.recv_ns
        if ts < self._end:
            if ts >= self._start:
                acc.add(trade.price, trade.size, trade.side, ts)
            else:
                acc.add_late(trade.price, trade.size, trade.side, ts)
            return NOTHING
        out: Sequence[AnalyticEvent] = NOTHING
        if acc.trades:
            out = (acc.bar(self._venue, self._symbol, self.kind, self._start, self._end, trade.ts, trade.recv_ns),)
            acc.clear()
        interval = self.interval
        self._start = ts - (ts - self.origin_ns) % interval
        self._end = self._start + interval
        acc.add(trade.price, trade.size, trade.side, ts)
        return out

    def flush(self) -> Sequence[AnalyticEvent]:
        acc = self._acc
        if acc.trades == 0:
            return NOTHING
        bar = acc.bar(self._venue, self._symbol, self.kind, self._start, self._end, acc.last_ts or None, acc.last_recv)
        acc.clear()
        self._end = -1
        return (bar,)


class _ActivityBars(_BarOperator):
    """Bars that close on the trade that completes them (:meth:`_full`)."""

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        """O(1) amortised."""
        trade: Trade = event  # type: ignore[assignment]
        if trade.symbol != self._symbol or trade.venue != self._venue:
            self._bind(trade)
        acc = self._acc
        acc.add(trade.price, trade.size, trade.side, trade.ts if trade.ts is not None else trade.recv_ns)
        acc.last_recv = trade.recv_ns
        if not self._full():
            return NOTHING
        return (self._close(trade.ts, trade.recv_ns),)

    def _full(self) -> bool:
        """True once the open bar is complete."""
        raise NotImplementedError


class TickBars(_ActivityBars):
    """A bar every ``n`` trades."""

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ConfigError(f"tick bars need a positive whole number of trades, not {n!r}")
        super().__init__(f"tick:{n}")
        self.n = n

    def _full(self) -> bool:
        return self._acc.trades >= self.n


class _ThresholdBars(_ActivityBars):
    def __init__(self, what: str, threshold: float) -> None:
        if not (0.0 < threshold < _INF):
            raise ConfigError(f"{what} bars need a positive finite threshold, not {threshold!r}")
        super().__init__(f"{what}:{threshold:g}")
        self.threshold = threshold


_MARGIN = 1.0 - 1e-9
"""A running float sum of up to millions of positive terms is within 1e-9 (relative)
of the exact sum: below ``threshold * _MARGIN`` the exact comparison is not needed."""


class VolumeBars(_ThresholdBars):
    """A bar each time the volume reaches ``threshold`` (base units; trades are not split)."""

    def __init__(self, threshold: float) -> None:
        super().__init__("volume", threshold)

    def _full(self) -> bool:
        acc = self._acc
        return acc.approx_volume >= self.threshold * _MARGIN and acc.volume() >= self.threshold


class DollarBars(_ThresholdBars):
    """A bar each time the notional (price * size, quote units) reaches ``threshold``."""

    def __init__(self, threshold: float) -> None:
        super().__init__("dollar", threshold)

    def _full(self) -> bool:
        acc = self._acc
        return acc.approx_notional >= self.threshold * _MARGIN and acc.notional.value >= self.threshold
