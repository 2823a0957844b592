"""What every adapter's candles share (private helper for adapters).

:attr:`~wsmux.Channel.CANDLES` carries one-minute candles. Each venue spells
that interval its own way on the wire — Binance ``kline_1m``, Bybit
``kline.1``, OKX ``candle1m``, Kraken ``ohlc`` interval ``1``, Bitfinex
``trade:1m``, Gate ``1m``, KuCoin ``1min``, HTX ``1min``, MEXC ``Min1``,
Deribit resolution ``1``, Bitget ``candle1m`` — and every adapter reports
it as :data:`CANDLE_INTERVAL` in :attr:`wsmux.Candle.interval`, so a caller
compares candles across venues without a venue table. A venue that has no
one-minute candle on its socket says so in its docs and reports its own
bucket in the same spelling (Coinbase Advanced Trade: :data:`FIVE_MINUTES`).

:func:`check_candle` is the sanity check every candle parser runs on the
numbers it read: a candle whose low is above its high, or whose open/close
lies outside ``[low, high]``, is the venue's (or the wire's) error, not a
candle.
"""

from __future__ import annotations

from wsmux.errors import MalformedMessage
from wsmux.model import Candle

__all__ = ["CANDLE_INTERVAL", "FIVE_MINUTES", "MINUTE_MS", "build_candle", "check_candle"]

CANDLE_INTERVAL = "1m"
"""The interval of :attr:`~wsmux.Channel.CANDLES` in :attr:`wsmux.Candle.interval`."""

FIVE_MINUTES = "5m"
"""The spelling of a five-minute bucket (Coinbase Advanced Trade's only candle)."""

MINUTE_MS = 60_000
"""One minute in milliseconds."""

_INF = float("inf")
_NINF = -_INF


def check_candle(venue: str, open_: float, high: float, low: float, close: float, volume: float) -> None:
    """Raise :class:`~wsmux.errors.MalformedMessage` unless ``low <= open,
    close <= high`` and ``volume >= 0`` (all finite: NaN fails every
    comparison)."""
    if not (_NINF < low <= open_ <= high < _INF and low <= close <= high and 0.0 <= volume < _INF):
        raise MalformedMessage(
            f"{venue}: impossible candle open={open_} high={high} low={low} close={close} volume={volume}"
        )


def build_candle(
    venue: str,
    symbol: str,
    start_ns: int,
    open_: str | float,
    high: str | float,
    low: str | float,
    close: str | float,
    volume: str | float,
    closed: bool,
    ts: int | None,
    recv_ns: int,
    interval: str = CANDLE_INTERVAL,
) -> Candle:
    """A :class:`~wsmux.Candle` from the venue's numbers (decimal text or JSON
    numbers, already in base units), checked with :func:`check_candle`.

    Raises:
        ValueError, TypeError: a number that is not one (the adapter wraps them).
        MalformedMessage: an impossible candle.
    """
    o, h, lo, c, v = float(open_), float(high), float(low), float(close), float(volume)
    check_candle(venue, o, h, lo, c, v)
    return Candle(venue, symbol, interval, start_ns, o, h, lo, c, v, closed, ts, recv_ns)
