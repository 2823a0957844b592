"""Venue adapters and the registry that finds them by venue id.

>>> from wsmux import exchanges
>>> exchanges.get("binance")            # the adapter class
<class 'wsmux.exchanges.binance.BinanceSpotAdapter'>
"""

from __future__ import annotations

import importlib

import attrs

from wsmux.adapter import Adapter
from wsmux.book import SnapshotSource, SyncRule
from wsmux.errors import ConfigError, UnknownVenue, WsmuxError
from wsmux.model import Channel, Integrity

__all__ = ["VenueInfo", "describe", "exchange_of", "get", "names", "register"]

# venue id -> "module:Class", imported on first use so `import wsmux` stays cheap.
_LAZY: dict[str, str] = {
    "binance": "wsmux.exchanges.binance:BinanceSpotAdapter",
    "binance-coinm": "wsmux.exchanges.binance:BinanceCoinmAdapter",
    "binance-us": "wsmux.exchanges.binance:BinanceUSAdapter",
    "binance-usdm": "wsmux.exchanges.binance:BinanceUsdmAdapter",
    "bitfinex": "wsmux.exchanges.bitfinex:BitfinexAdapter",
    "bitmex": "wsmux.exchanges.bitmex:BitmexAdapter",
    "bithumb": "wsmux.exchanges.bithumb:BithumbAdapter",
    "bitstamp": "wsmux.exchanges.bitstamp:BitstampAdapter",
    "bitget": "wsmux.exchanges.bitget:BitgetAdapter",
    "bitget-futures": "wsmux.exchanges.bitget:BitgetFuturesAdapter",
    "bitflyer": "wsmux.exchanges.bitflyer:BitflyerAdapter",
    "bybit": "wsmux.exchanges.bybit:BybitSpotAdapter",
    "bybit-linear": "wsmux.exchanges.bybit:BybitLinearAdapter",
    "coinbase": "wsmux.exchanges.coinbase:CoinbaseAdapter",
    "coinbase-advanced": "wsmux.exchanges.coinbase:CoinbaseAdvancedAdapter",
    "deribit": "wsmux.exchanges.deribit:DeribitAdapter",
    "dydx": "wsmux.exchanges.dydx:DydxAdapter",
    "hyperliquid": "wsmux.exchanges.hyperliquid:HyperliquidAdapter",
    "gemini": "wsmux.exchanges.gemini:GeminiAdapter",
    "gemini-v2": "wsmux.exchanges.gemini:GeminiV2Adapter",
    "htx": "wsmux.exchanges.htx:HtxAdapter",
    "htx-swap": "wsmux.exchanges.htx:HtxSwapAdapter",
    "cryptocom": "wsmux.exchanges.cryptocom:CryptocomAdapter",
    "gateio": "wsmux.exchanges.gateio:GateSpotAdapter",
    "gateio-futures": "wsmux.exchanges.gateio:GateFuturesAdapter",
    "kraken": "wsmux.exchanges.kraken:KrakenAdapter",
    "kraken-futures": "wsmux.exchanges.kraken_futures:KrakenFuturesAdapter",
    "kraken-futures-inverse": "wsmux.exchanges.kraken_futures:KrakenFuturesInverseAdapter",
    "kraken-v1": "wsmux.exchanges.kraken:KrakenV1Adapter",
    "mexc": "wsmux.exchanges.mexc:MexcAdapter",
    "mexc-futures": "wsmux.exchanges.mexc:MexcFuturesAdapter",
    "kucoin": "wsmux.exchanges.kucoin:KucoinAdapter",
    "kucoin-futures": "wsmux.exchanges.kucoin:KucoinFuturesAdapter",
    "okx": "wsmux.exchanges.okx:OkxAdapter",
    "phemex": "wsmux.exchanges.phemex:PhemexAdapter",
    "poloniex": "wsmux.exchanges.poloniex:PoloniexAdapter",
    "poloniex-futures": "wsmux.exchanges.poloniex:PoloniexFuturesAdapter",
    "upbit": "wsmux.exchanges.upbit:UpbitAdapter",
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


def exchange_of(venue: str) -> str:
    """The exchange behind ``venue`` (see :attr:`wsmux.Adapter.exchange`)."""
    cls = get(venue)
    return cls.exchange or venue.partition("-")[0]


@attrs.frozen
class VenueInfo:
    """What an adapter declares about its venue (for ``wsmux venues`` and the docs).

    Attributes:
        venue: the venue id.
        exchange: the exchange behind it (several ids may share one).
        adapter: the adapter class name.
        channels: the channels it offers, sorted.
        snapshot: ``"REST"`` (fetched over REST while diffs are buffered),
            ``"requested"`` (buffered until a snapshot asked for on the socket,
            HTX ``req``) or ``"stream"`` (the venue sends it on subscribe);
            ``None`` without a book channel.
        continuity: the book rule's continuity check.
        checksum: whether the venue's book checksum is verified.
        integrity: the book's :class:`~wsmux.Integrity` level.
        streams_per_connection: subscriptions one connection may carry.
        messages_per_second: client messages per second per connection.
    """

    venue: str
    exchange: str
    adapter: str
    channels: tuple[str, ...]
    snapshot: str | None
    continuity: str | None
    checksum: bool
    integrity: Integrity | None
    streams_per_connection: int
    messages_per_second: float


_SAMPLE_SYMBOLS = ("BTC-USDT", "BTC-USD", "BTC-USDT-PERP", "BTC-USD-PERP", "BTC-USDC", "BTC-KRW", "BTC-JPY")


def describe(venue: str) -> VenueInfo:
    """The :class:`VenueInfo` of ``venue``, read from its adapter's declarations."""
    cls = get(venue)
    rule = None
    symbol = ""
    adapter = cls()
    if Channel.BOOK in cls.channels:
        for symbol in _SAMPLE_SYMBOLS:
            try:
                rule = adapter.book_rule(symbol)
                break
            except WsmuxError:
                continue
    return VenueInfo(
        venue=venue,
        exchange=exchange_of(venue),
        adapter=cls.__name__,
        channels=tuple(sorted(c.value for c in cls.channels)),
        snapshot=None if rule is None else _snapshot_kind(adapter, rule, symbol),
        continuity=None if rule is None else rule.continuity.value,
        checksum=rule is not None and rule.checksum is not None,
        integrity=None if rule is None else rule.level(),
        streams_per_connection=cls.limits.streams_per_connection,
        messages_per_second=cls.limits.messages_per_second,
    )


def _snapshot_kind(adapter: Adapter, rule: SyncRule, symbol: str) -> str:
    if rule.snapshot is not SnapshotSource.REST:
        return "stream"
    try:
        fetched = adapter.snapshot_request(symbol) is not None
    except WsmuxError:  # the probe symbol is not one the venue lists: it fetches over REST
        fetched = True
    return "REST" if fetched else "requested"
