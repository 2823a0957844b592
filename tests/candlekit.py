"""What the venue mocks' candle tests share: the prices of a client's
:class:`~wsmux.Candle` and those of the mock's own candle, in one order.

Volumes are compared by each test: venues differ in units (contracts, base
coins, turnover) and that difference is what those tests check.
"""

from __future__ import annotations

from wsmux.model import Event
from wsmux.testing._candles import MockCandle
from wsmux.testing._market import Market

__all__ = ["mock_prices", "prices"]


def prices(candle: Event) -> tuple[int, float, float, float, float]:
    """``(start_ts, open, high, low, close)`` of a client's candle."""
    return (candle.start_ts, candle.open, candle.high, candle.low, candle.close)  # type: ignore[attr-defined]


def mock_prices(market: Market, want: MockCandle) -> tuple[int, float, float, float, float]:
    """The same fields of the mock's candle ``want`` of ``market``, as the client should see them."""
    return (
        want.start_ms * 1_000_000,
        market.price(want.open),
        market.price(want.high),
        market.price(want.low),
        market.price(want.close),
    )
