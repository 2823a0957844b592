"""Venue adapters and the registry that finds them by venue id.

>>> from wsmux import exchanges
>>> exchanges.get("binance")            # the adapter class
<class 'wsmux.exchanges.binance.BinanceSpotAdapter'>
"""

from __future__ import annotations

import importlib

from wsmux.adapter import Adapter
from wsmux.errors import ConfigError, UnknownVenue

__all__ = ["get", "names", "register"]

# venue id -> "module:Class", imported on first use so `import wsmux` stays cheap.
_LAZY: dict[str, str] = {
    "binance": "wsmux.exchanges.binance:BinanceSpotAdapter",
    "binance-coinm": "wsmux.exchanges.binance:BinanceCoinmAdapter",
    "binance-us": "wsmux.exchanges.binance:BinanceUSAdapter",
    "binance-usdm": "wsmux.exchanges.binance:BinanceUsdmAdapter",
    "bitfinex": "wsmux.exchanges.bitfinex:BitfinexAdapter",
    "bybit": "wsmux.exchanges.bybit:BybitSpotAdapter",
    "bybit-linear": "wsmux.exchanges.bybit:BybitLinearAdapter",
    "coinbase": "wsmux.exchanges.coinbase:CoinbaseAdapter",
    "coinbase-advanced": "wsmux.exchanges.coinbase:CoinbaseAdvancedAdapter",
    "cryptocom": "wsmux.exchanges.cryptocom:CryptocomAdapter",
    "gateio": "wsmux.exchanges.gateio:GateSpotAdapter",
    "gateio-futures": "wsmux.exchanges.gateio:GateFuturesAdapter",
    "kraken": "wsmux.exchanges.kraken:KrakenAdapter",
    "kraken-v1": "wsmux.exchanges.kraken:KrakenV1Adapter",
    "kucoin": "wsmux.exchanges.kucoin:KucoinAdapter",
    "kucoin-futures": "wsmux.exchanges.kucoin:KucoinFuturesAdapter",
    "okx": "wsmux.exchanges.okx:OkxAdapter",
}
_LOADED: dict[str, type[Adapter]] = {}


def register(adapter: type[Adapter], *, replace: bool = False) -> None:
    """Register an adapter class under its ``venue`` id.

    Raises:
        ConfigError: the id is taken and ``replace`` is false.
    """
    venue = adapter.venue
    same = _LOADED.get(venue) is adapter or _LAZY.get(venue) == f"{adapter.__module__}:{adapter.__qualname__}"
    if not replace and not same and (venue in _LOADED or venue in _LAZY):
        raise ConfigError(f"venue id {venue!r} is already registered")
    _LOADED[venue] = adapter


def get(venue: str) -> type[Adapter]:
    """The adapter class for ``venue``.

    Raises:
        UnknownVenue: no adapter has that id.
    """
    cls = _LOADED.get(venue)
    if cls is not None:
        return cls
    target = _LAZY.get(venue)
    if target is None:
        raise UnknownVenue(f"unknown venue {venue!r}; known venues: {', '.join(names())}")
    module, _, name = target.partition(":")
    loaded: type[Adapter] = getattr(importlib.import_module(module), name)
    _LOADED[venue] = loaded
    return loaded


def names() -> list[str]:
    """All registered venue ids, sorted."""
    return sorted({*_LAZY, *_LOADED})
