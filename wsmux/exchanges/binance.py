"""Binance family adapters: spot, Binance.US, USDⓈ-M and COIN-M futures.

All four speak one protocol, implemented once in
:mod:`wsmux.exchanges._binance_common` (read its docstring for the wire rules);
the classes here declare what differs: hosts and paths, limits, symbol
spelling, channels and the order-book rule.

* ``"binance"`` (:class:`BinanceSpotAdapter`): ``BTC-USDT`` ↔ ``BTCUSDT``;
  REST snapshot + ``U``/``u`` update-id ranges.
* ``"binance-us"`` (:class:`BinanceUSAdapter`): ``BTC-USD`` ↔ ``BTCUSD``; as spot.
* ``"binance-usdm"`` (:class:`BinanceUsdmAdapter`): ``BTC-USDT-PERP`` ↔
  ``BTCUSDT``; REST snapshot + ``pu`` chain; ``/public`` vs ``/market`` URLs.
* ``"binance-coinm"`` (:class:`BinanceCoinmAdapter`): ``BTC-USD-PERP`` ↔
  ``BTCUSD_PERP``; as USD-M; sizes in contracts, or in base units (coins)
  once the instruments list is known.

Every adapter lists its instruments from ``exchangeInfo`` (symbol validation,
tick and lot sizes; COIN-M contract sizes).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, ClassVar

import attrs

from wsmux.adapter import Heartbeat, Limits
from wsmux.book import Diff
from wsmux.errors import UnknownSymbol
from wsmux.exchanges._binance_common import FUTURES_RULE, SPOT_RULE, BinanceAdapterBase, TradeStream
from wsmux.model import BookSnapshot, Channel, Event, Instrument
from wsmux.subscriptions import Subscription

__all__ = [
    "BinanceCoinmAdapter",
    "BinanceSpotAdapter",
    "BinanceUSAdapter",
    "BinanceUsdmAdapter",
]

_HEARTBEAT = Heartbeat(ping_message=None, ws_ping_interval=20.0, silence_timeout=600.0, stale_after=60.0)
"""Binance sends WebSocket ping frames (spot every 20 s, futures every 3 min) that
the ``websockets`` library answers; there is no application ping. The client also
sends its own WebSocket ping every 20 s (one control frame, far under the message
rate) because the server's pings are invisible to the Connection: that is what
detects a dead peer on a quiet feed. ``silence_timeout`` is long (10 min) since a
quiet symbol may legitimately send no data for minutes. ``stale_after`` (60 s, armed
by book and quote subscriptions only) catches a subscription that went silent: a
listed symbol's depth/bookTicker moves within seconds, but a resubscribe returns no
snapshot here (books come over REST), so the bar is higher than on venues whose
resubscribe answers with data."""


def _spot_native(venue: str, base: str, quote: str, kind: str | None) -> str:
    if kind is not None:
        raise UnknownSymbol(f"{venue} is a spot venue: use BASE-QUOTE, not a {kind} symbol")
    return base + quote


def _spot_weight(limit: int) -> int:
    # REST weights of /api/v3/depth by limit (Binance spot REST docs; not in the sheet).
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _futures_weight(limit: int) -> int:
    # REST weights of /fapi/v1/depth and /dapi/v1/depth by limit (venue REST docs; not in the sheets).
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


class BinanceSpotAdapter(BinanceAdapterBase):
    """Binance spot (sheet: shared/exchanges/binance-spot.md).

    * Endpoint ``wss://stream.binance.com:9443`` (backups ``:443`` and the
      market-data-only mirror ``wss://data-stream.binance.vision``), combined
      streams under ``/stream``; REST ``https://api.binance.com``.
    * Channels: trades (``@aggTrade``, or ``@trade`` with
      ``trade_stream="trade"``), quotes (``@bookTicker``, which has no ``e``
      field nor timestamp: ``Quote.ts`` is None and ``seq`` is the book update
      id ``u``), book (``@depth@100ms``), candles (``@kline_1m`` →
      :class:`~wsmux.Candle`; stream listed in binance-us.md, fields from the
      Binance stream docs and the 2021 recording).
    * Limits (sheet, "Limits and keep-alive"): at most 1024 streams per
      connection; at most 5 incoming messages per second, where pings, pongs
      and (un)subscribe messages all count and exceeding closes the socket
      (1008). wsmux declares 2/s: the Connection's token bucket lets a burst
      of ``rate`` messages through and then ``rate`` per second, so a sliding
      one-second window may see ``2 * rate`` = 4 messages, leaving room for a
      pong; 300
      connection attempts per 5 minutes; connections live at most 24 h.
      Topics per message: the sheet gives no cap; 100 is used because a
      437-stream ``SUBSCRIBE`` was reported to fail silently (ccxws #161).
    * Book (sheet, "Order-book sync"): buffer diffs, fetch
      ``/api/v3/depth?limit=1000`` (``lastUpdateId``), drop diffs with
      ``u <= lastUpdateId``, the first kept one needs
      ``U <= lastUpdateId + 1 <= u``, then a diff with ``U > last u + 1`` is a
      gap. :data:`~wsmux.exchanges._binance_common.SPOT_RULE`:
      ``Continuity.UPDATE_ID``, ``bridge_offset=1``. No checksum.
    """

    venue: ClassVar[str] = "binance"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.TRADES, Channel.QUOTES, Channel.BOOK, Channel.CANDLES})
    default_url: ClassVar[str] = "wss://stream.binance.com:9443"
    default_rest_url: ClassVar[str] = "https://api.binance.com"
    backup_urls: ClassVar[tuple[str, ...]] = ("wss://stream.binance.com:443", "wss://data-stream.binance.vision")
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=1024,
        topics_per_message=100,
        messages_per_second=2.0,
        connections_per_window=300,
        connection_window=300.0,
        max_connection_age=86_400.0,
        rest_weight_per_minute=6000,
    )
    heartbeat: ClassVar[Heartbeat] = _HEARTBEAT
    depth_path: ClassVar[str] = "/api/v3/depth"
    server_time_path: ClassVar[str | None] = "/api/v3/time"
    max_snapshot_limit: ClassVar[int] = 5000
    exchange_info_weight: ClassVar[int] = 20
    book_rule_value = SPOT_RULE

    def native_symbol(self, base: str, quote: str, kind: str | None) -> str:
        """``BTC-USDT`` → ``BTCUSDT``; derivatives symbols raise UnknownSymbol."""
        return _spot_native(self.venue, base, quote, kind)

    def snapshot_weight(self, limit: int) -> int:
        return _spot_weight(limit)


class BinanceUSAdapter(BinanceSpotAdapter):
    """Binance.US (sheet: shared/exchanges/binance-us.md).

    The Binance spot protocol on other hosts: ``wss://stream.binance.us:9443``,
    REST ``https://api.binance.us``; same streams, same book rule as
    :class:`BinanceSpotAdapter` (``U``/``u``, bridge ``lastUpdateId + 1``).

    The sheet marks the .US limits and live ``SUBSCRIBE`` support UNCONFIRMED
    and says to assume the Binance spot values and stay well under them, so:
    at most 200 streams per connection, which is also the number the adapter
    names in the connection URL (the method the recordings prove) — a
    connection's initial streams therefore never need a ``SUBSCRIBE``
    message; 2 messages/s (as spot); 24 h connection age; REST weight 1200/min.
    """

    venue: ClassVar[str] = "binance-us"
    exchange: ClassVar[str] = "binance-us"  # a separate exchange (its own company, hosts and limits)
    default_url: ClassVar[str] = "wss://stream.binance.us:9443"
    default_rest_url: ClassVar[str] = "https://api.binance.us"
    backup_urls: ClassVar[tuple[str, ...]] = ()
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=100,
        messages_per_second=2.0,
        connections_per_window=300,
        connection_window=300.0,
        max_connection_age=86_400.0,
        rest_weight_per_minute=1200,
    )
    # thinner books than Binance.com: a quiet symbol's depth may rest for a minute
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ws_ping_interval=20.0, silence_timeout=600.0, stale_after=120.0
    )


_FUTURES_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def _dated(kind: str) -> str:
    """``YYYYMMDD`` → Binance's ``YYMMDD`` contract suffix."""
    return kind[2:]


class BinanceUsdmAdapter(BinanceAdapterBase):
    """Binance USDⓈ-M futures (sheet: shared/exchanges/binance-usdm-futures.md).

    * Symbols: ``BTC-USDT-PERP`` → ``BTCUSDT``; dated ``BTC-USDT-20261225`` →
      ``BTCUSDT_261225``. Sizes are in base units (the sheet's examples).
    * **URL split (sheet, "Endpoints", 2026).** High-frequency public streams
      (``@depth*``, ``@bookTicker``) are served under
      ``wss://fstream.binance.com/public``, the others (``@aggTrade``,
      ``@markPrice``, ``@forceOrder``) under ``/market``; the legacy root was
      retired on 2026-04-23. One connection has one URL, so it cannot carry
      both kinds: :meth:`route` returns ``"public"`` for books and quotes and
      ``"market"`` for trades, funding and liquidations, and the multiplexer
      keeps subscriptions of different routes on different connections.
      :meth:`connect_url` refuses (ConfigError) a mixed set rather than
      silently subscribing a stream where it gets no data. Pass
      ``split_routes=False`` for a host without the split (the testnet, whose
      layout the sheet marks UNCONFIRMED): everything then goes to
      ``<url>/stream``.
    * Channels: trades (``@aggTrade``), quotes (``@bookTicker``, with ``T``
      as ``ts``), book (``@depth@100ms``), funding (``@markPrice@1s`` →
      :class:`~wsmux.Funding` with rate ``r``, next funding ``T``, mark
      ``p``), liquidations (``@forceOrder`` → :class:`~wsmux.Liquidation`
      at the average fill price ``ap`` and filled size ``z``, falling back to
      ``p``/``q`` while nothing is filled), candles (``@kline_1m``, on
      ``/market`` per the sheet's endpoint table). Open interest is **not** offered:
      it is not on the public WebSocket feed (REST ``/fapi/v1/openInterest``
      only), so wsmux does not poll it.
    * Limits (sheet): 1024 streams per connection; 10 incoming messages/s
      (declared 4/s: a burst plus refill stays at most 8 per sliding second);
      24 h connection age;
      server ping every 3 min. Topics per message 100 (no documented cap).
    * Book (sheet, "Order-book sync — uses pu"): snapshot
      ``/fapi/v1/depth?limit=1000``; drop diffs with ``u < lastUpdateId``; the
      first applied diff needs ``U <= lastUpdateId <= u``; then each diff's
      ``pu`` must equal the previous ``u``.
      :data:`~wsmux.exchanges._binance_common.FUTURES_RULE`:
      ``Continuity.PREV_ID``, ``bridge_offset=0``. No checksum.

    Args:
        split_routes: use the 2026 ``/public`` + ``/market`` layout (default).
    """

    venue: ClassVar[str] = "binance-usdm"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.TRADES, Channel.QUOTES, Channel.BOOK, Channel.FUNDING, Channel.LIQUIDATIONS, Channel.CANDLES}
    )
    default_url: ClassVar[str] = "wss://fstream.binance.com"
    default_rest_url: ClassVar[str] = "https://fapi.binance.com"
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=1024,
        topics_per_message=100,
        messages_per_second=4.0,
        connections_per_window=300,
        connection_window=300.0,
        max_connection_age=86_400.0,
        rest_weight_per_minute=2400,
    )
    heartbeat: ClassVar[Heartbeat] = _HEARTBEAT
    depth_path: ClassVar[str] = "/fapi/v1/depth"
    server_time_path: ClassVar[str | None] = "/fapi/v1/time"
    futures: ClassVar[bool] = True
    snapshot_limits: ClassVar[tuple[int, ...] | None] = _FUTURES_LIMITS
    book_rule_value = FUTURES_RULE

    _PUBLIC: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.QUOTES})

    def __init__(
        self,
        *,
        url: str | None = None,
        rest_url: str | None = None,
        trade_stream: TradeStream = "aggTrade",
        url_stream_limit: int = 200,
        split_routes: bool = True,
    ) -> None:
        super().__init__(url=url, rest_url=rest_url, trade_stream=trade_stream, url_stream_limit=url_stream_limit)
        self.split_routes = split_routes
        for tail in ("/public", "/market"):
            if self.url.endswith(tail):
                self.url = self.url[: -len(tail)]

    def route(self, subscription: Subscription) -> str:
        """``"public"`` for books and quotes, ``"market"`` for the rest
        (``""`` with ``split_routes=False``)."""
        if not self.split_routes:
            return ""
        return "public" if subscription.channel in self._PUBLIC else "market"

    def ws_base(self, route: str) -> str:
        return f"{self.url}/{route}" if route else self.url

    def native_symbol(self, base: str, quote: str, kind: str | None) -> str:
        """``BTC-USDT-PERP`` → ``BTCUSDT``; ``BTC-USDT-20261225`` → ``BTCUSDT_261225``."""
        if kind is None:
            raise UnknownSymbol(f"{self.venue} lists futures only: use BASE-QUOTE-PERP (e.g. 'BTC-USDT-PERP')")
        if kind == "PERP":
            return base + quote
        return f"{base}{quote}_{_dated(kind)}"

    def snapshot_weight(self, limit: int) -> int:
        return _futures_weight(limit)


class BinanceCoinmAdapter(BinanceAdapterBase):
    """Binance COIN-M (delivery) futures (sheet: shared/exchanges/binance-coinm-futures.md).

    * Endpoint ``wss://dstream.binance.com`` (``/stream``; the sheet saw no
      ``/public``/``/market`` split for COIN-M), REST ``https://dapi.binance.com``.
    * Symbols: ``BTC-USD-PERP`` → ``BTCUSD_PERP``; dated ``BTC-USD-20261225``
      → ``BTCUSD_261225``. Only USD-quoted contracts exist.
    * **Sizes: base units (coins) once the instruments are known, else
      contracts.** The venue counts whole contracts of a fixed USD face value
      (``contractSize`` of ``/dapi/v1/exchangeInfo``: 100 USD for BTC, 10 USD
      for the others; sheet, "Endpoints"). After
      :meth:`~wsmux.Adapter.use_instruments` (the multiplexer passes the list
      it fetched; replay passes a recorded one) book levels, trade, quote and
      liquidation sizes are ``contracts * contractSize / price`` — the coins
      the contracts are worth at that level's (or trade's) price, so a
      book's ``cost_to_fill`` and a trade's ``price * size`` are USD notionals.
      A float division: the coin amount is exact to float precision, not to
      the venue's integer contract count. Without the list, sizes stay in
      contracts (multiply by the face value for a USD notional).
    * Channels and book rule as :class:`BinanceUsdmAdapter` (``pu`` chain,
      ``bridge_offset=0``; snapshot ``/dapi/v1/depth?limit=1000``). Dated
      contracts' ``markPriceUpdate`` has an empty funding rate: no
      :class:`~wsmux.Funding` is emitted for them.
    * Candles (``@kline_1m``): the kline's ``v`` counts contracts, so
      :attr:`Candle.volume <wsmux.Candle.volume>` is its ``q``, the volume in
      the base coin (Binance COIN-M stream docs; not in the sheet).
    * Limits (sheet): 24 h connection age; 10 incoming messages/s (declared
      4/s, as for USDⓈ-M); 1024 streams per connection per the current docs but 200 in
      older ones — the sheet says to treat 200 as the safe value, so 200.
    """

    venue: ClassVar[str] = "binance-coinm"
    kline_volume: ClassVar[str] = "q"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.TRADES, Channel.QUOTES, Channel.BOOK, Channel.FUNDING, Channel.LIQUIDATIONS, Channel.CANDLES}
    )
    default_url: ClassVar[str] = "wss://dstream.binance.com"
    default_rest_url: ClassVar[str] = "https://dapi.binance.com"
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=100,
        messages_per_second=4.0,
        connections_per_window=300,
        connection_window=300.0,
        max_connection_age=86_400.0,
        rest_weight_per_minute=2400,
    )
    heartbeat: ClassVar[Heartbeat] = _HEARTBEAT
    depth_path: ClassVar[str] = "/dapi/v1/depth"
    server_time_path: ClassVar[str | None] = "/dapi/v1/time"
    futures: ClassVar[bool] = True
    snapshot_limits: ClassVar[tuple[int, ...] | None] = _FUTURES_LIMITS
    book_rule_value = FUTURES_RULE
    inverse_contracts: ClassVar[bool] = True

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn each contract's USD face value: sizes are then in coins."""
        self._contracts.learn(instruments)

    # Size conversion (see the class docstring): each override lets the shared
    # handler decode the message, then converts only symbols with a known face
    # value, so the unconverted path is the shared one, unchanged.

    def _on_depth(self, d: dict[str, Any], recv_ns: int) -> list[Any]:
        out = super()._on_depth(d, recv_ns)
        diff: Diff = out[0]
        if self._contracts.face(diff.symbol) is not None:
            diff.bids = self._coins(diff.symbol, diff.bids)
            diff.asks = self._coins(diff.symbol, diff.asks)
        return out

    def _coins(self, symbol: str, levels: Sequence[Sequence[Any]]) -> tuple[tuple[Any, float], ...]:
        """Levels as ``(price, coins)``; the price keeps its form (the venue's
        text or a float). A price not above zero gives a NaN size, which the
        book refuses (see :meth:`ContractSizes.inverse_to_base`)."""
        to_base = self._contracts.inverse_to_base
        return tuple([(level[0], to_base(symbol, level[1], level[0])) for level in levels])

    def _trade(self, d: dict[str, Any], trade_id: Any, recv_ns: int) -> list[Event]:
        return [self._converted(event, "size") for event in super()._trade(d, trade_id, recv_ns)]

    def _on_force_order(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        return [self._converted(event, "size") for event in super()._on_force_order(d, recv_ns)]

    def _on_book_ticker(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        out = super()._on_book_ticker(d, recv_ns)
        quote: Any = out[0]
        if self._contracts.face(quote.symbol) is None:
            return out
        to_base = self._contracts.inverse_to_base
        return [
            attrs.evolve(
                quote,
                bid_size=to_base(quote.symbol, quote.bid_size, quote.bid_price),
                ask_size=to_base(quote.symbol, quote.ask_size, quote.ask_price),
            )
        ]

    def _converted(self, event: Any, field: str) -> Event:
        if self._contracts.face(event.symbol) is None:
            return event  # type: ignore[no-any-return]
        size = self._contracts.inverse_to_base(event.symbol, getattr(event, field), event.price)
        return attrs.evolve(event, **{field: size})  # type: ignore[no-any-return]

    def parse_snapshot_steps(self, symbol: str, body: bytes, recv_ns: int) -> Generator[None, None, BookSnapshot]:
        """As the base, sizes in coins when the face value is known."""
        snapshot = yield from super().parse_snapshot_steps(symbol, body, recv_ns)
        if self._contracts.face(symbol) is None:
            return snapshot
        return attrs.evolve(  # type: ignore[misc]
            snapshot, bids=self._coins(symbol, snapshot.bids), asks=self._coins(symbol, snapshot.asks)
        )

    def native_symbol(self, base: str, quote: str, kind: str | None) -> str:
        """``BTC-USD-PERP`` → ``BTCUSD_PERP``; ``BTC-USD-20261225`` → ``BTCUSD_261225``."""
        if kind is None:
            raise UnknownSymbol(f"{self.venue} lists futures only: use BASE-USD-PERP (e.g. 'BTC-USD-PERP')")
        if quote != "USD":
            raise UnknownSymbol(f"{self.venue} contracts are quoted in USD, not {quote}")
        suffix = "PERP" if kind == "PERP" else _dated(kind)
        return f"{base}{quote}_{suffix}"

    def snapshot_weight(self, limit: int) -> int:
        return _futures_weight(limit)

