"""Candles that mock exchanges build from their own trades.

A mock serving :attr:`~wsmux.Channel.CANDLES` keeps a :class:`MinuteCandles`
(one-minute buckets unless told otherwise: Coinbase Advanced Trade's are five
minutes) and feeds it every trade of its market with the mock's time; it
renders what :meth:`MinuteCandles.on_trade` returns in the venue's format:
the candle a new bucket closed (if any, final), then the forming candle. Prices and sizes
stay integer ticks and lots, so a test can compare the client's
:class:`~wsmux.Candle` with the mock's candle exactly.
"""

from __future__ import annotations

import attrs

from wsmux.exchanges._candles import MINUTE_MS

__all__ = ["MinuteCandles", "MockCandle"]


@attrs.define(slots=True)
class MockCandle:
    """A mock's candle (integer ticks and lots; times in ms)."""

    start_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int = 1
    last_ms: int = 0
    """Time of the candle's last trade."""
    period_ms: int = MINUTE_MS

    @property
    def end_ms(self) -> int:
        """The last millisecond of the candle (Binance's ``T``, Bybit's ``end``)."""
        return self.start_ms + self.period_ms - 1


class MinuteCandles:
    """The forming candle of each symbol, built from trades.

    Args:
        period_ms: the candles' length (one minute by default).
    """

    def __init__(self, period_ms: int = MINUTE_MS) -> None:
        self.period_ms = period_ms
        self.forming: dict[str, MockCandle] = {}
        """Symbol -> its candle of the current minute."""
        self.closed: dict[str, list[MockCandle]] = {}
        """Symbol -> its final candles, oldest first."""
        self._counted: dict[str, tuple[int, tuple[MockCandle | None, MockCandle]]] = {}

    def on_trade_once(
        self, symbol: str, trade_id: int, t_ms: int, price: int, size: int
    ) -> tuple[MockCandle | None, MockCandle]:
        """:meth:`on_trade` for mocks that render each step once per
        connection: the trade ``trade_id`` is counted the first time only,
        later calls for it return the same answer."""
        seen = self._counted.get(symbol)
        if seen is not None and seen[0] == trade_id:
            return seen[1]
        answer = self.on_trade(symbol, t_ms, price, size)
        self._counted[symbol] = (trade_id, answer)
        return answer

    def on_trade(self, symbol: str, t_ms: int, price: int, size: int) -> tuple[MockCandle | None, MockCandle]:
        """Add a trade at ``t_ms``; return the candle the trade's bucket
        closed (``None`` if the bucket did not change) and the forming one."""
        start = t_ms - t_ms % self.period_ms
        candle = self.forming.get(symbol)
        finished = None
        if candle is not None and candle.start_ms != start:
            finished = candle
            self.closed.setdefault(symbol, []).append(candle)
            candle = None
        if candle is None:
            candle = self.forming[symbol] = MockCandle(start, price, price, price, price, size, 1, t_ms, self.period_ms)
        else:
            candle.high = max(candle.high, price)
            candle.low = min(candle.low, price)
            candle.close = price
            candle.volume += size
            candle.trades += 1
            candle.last_ms = t_ms
        return finished, candle
