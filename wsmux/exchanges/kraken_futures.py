"""Kraken Futures WebSocket v1: :class:`KrakenFuturesAdapter` (venue id
``"kraken-futures"``, linear contracts) and :class:`KrakenFuturesInverseAdapter`
(``"kraken-futures-inverse"``, inverse contracts).

Venue rules come from the wsmux fact sheet ``shared/exchanges/kraken-futures.md``
(Kraken's futures WebSocket reference, cryptofeed and its 2021 recording).
Each rule is restated where it is enforced:

* **Endpoint.** ``wss://futures.kraken.com/ws/v1``; streaming only; REST
  reference data at ``https://futures.kraken.com/derivatives/api/v3/instruments``.
* **Two contract families, two adapter ids.** Product ids ``PF_XBTUSD``
  (linear perpetual) / ``FF_XBTUSD_YYMMDD`` (linear dated) and ``PI_XBTUSD``
  (inverse perpetual) / ``FI_XBTUSD_YYMMDD`` (inverse dated) would all be
  ``BTC-USD-PERP`` / ``BTC-USD-YYYYMMDD`` in unified form, so each family is
  its own venue id (as Binance USD-M and COIN-M are). ``XBT`` is ``BTC``.
* **Subscribing.** ``{"event":"subscribe","feed":F,"product_ids":[...]}``,
  answered per product with ``subscribed`` or ``subscribed_failed``
  (:class:`~wsmux.errors.SubscriptionRejected`); ``{"event":"error"}`` is a
  refused request. On connect the venue sends ``{"event":"info","version":1}``.
  wsmux also subscribes the ``heartbeat`` feed once per connection so a quiet
  product still shows the connection alive.
* **Feeds → channels.** ``book`` → BOOK; ``trade`` → TRADES and LIQUIDATIONS
  (a trade with ``type == "liquidation"``); ``ticker_lite`` → QUOTES;
  ``ticker`` → FUNDING and OPEN_INTEREST. Feeds that serve two channels are
  subscribed once and unsubscribed when the last of them goes.
* **Keep-alive.** A ping at least every 60 s or the venue closes the
  connection; WebSocket pings are accepted.
* **Book.** ``book_snapshot`` (full depth, ``seq``) on subscribe; then one
  ``book`` message per changed level (``side``, ``price``, absolute ``qty``,
  ``0`` deletes) whose ``seq`` is the previous one + 1 per product
  (:attr:`~wsmux.book.Continuity.SEQUENCE`; the first delta is the
  snapshot's ``seq`` + 1). No checksum. A broken sequence resubscribes for a
  new snapshot. The sheet marks the "+1" wording unconfirmed in Kraken's own
  reference; cryptofeed, nautilus_trader and the 2021 capture (7,014 deltas,
  no exception) follow it, so wsmux enforces it.
* **Numbers** are JSON numbers (not text); prices and sizes must be numbers.
* **Trades.** ``side`` is the taker's side; ``uid`` is the trade id (a UUID);
  ``seq`` numbers the product's trades. The ``trade_snapshot`` sent on
  subscribing is history, not live data, and is dropped.
* **Units.** Sizes are converted once the instruments list is known
  (:meth:`KrakenFuturesAdapter.use_instruments`; the multiplexer passes the
  list before a venue's first connection), through
  :class:`~wsmux.exchanges._contracts.ContractSizes`. Linear contracts count
  the base currency (``contractSize`` multiplies sizes when it is not 1).
  Inverse contracts count USD (one contract = ``contractSize`` USD): their
  sizes become coins, ``contracts * contractSize / price`` at the price of
  the book level, trade, liquidation or quote side (as Binance COIN-M and
  OKX inverse), and open interest at the ticker's ``markPrice`` (a ticker
  without one gives a ``nan`` open interest, which the quality gate drops
  and counts). Without the list, sizes stay in contracts. The book has no
  checksum, so its levels need not keep the venue's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, RawSnapshot, SnapshotSource, SyncRule, UnreadRows
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._contracts import ContractSizes
from wsmux.exchanges._feeds import SharedFeeds
from wsmux.model import (
    BookSnapshot,
    Channel,
    Event,
    Funding,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "KrakenFuturesAdapter",
    "KrakenFuturesInverseAdapter",
    "kraken_futures_symbol",
    "kraken_futures_unified",
]

_MS = 1_000_000  # ns per ms
_NAN = math.nan
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_NUMBER = (int, float)
# kraken-futures.md, "Endpoints": BTC is XBT in product ids.
_ASSET = {"BTC": "XBT"}
_UNIFIED_ASSET = {v: k for k, v in _ASSET.items()}
# Quote currencies a product's pair can end with, longest first.
_QUOTES = ("USDT", "USDC", "USD", "EUR", "GBP")
_FEEDS = {
    Channel.BOOK: "book",
    Channel.TRADES: "trade",
    Channel.LIQUIDATIONS: "trade",
    Channel.QUOTES: "ticker_lite",
    Channel.FUNDING: "ticker",
    Channel.OPEN_INTEREST: "ticker",
}
_QUIET_EVENTS = frozenset({"info", "subscribed", "unsubscribed", "alert"})
_REFUSALS = frozenset({"subscribed_failed", "unsubscribed_failed"})


def kraken_futures_symbol(symbol: str, linear: bool = True) -> str:
    """The Kraken Futures product id of a unified symbol.

    Rule (kraken-futures.md, "Endpoints"): ``BTC-USD-PERP`` is ``PF_XBTUSD``
    (linear) or ``PI_XBTUSD`` (inverse); ``BTC-USD-20260327`` is
    ``FF_XBTUSD_260327`` or ``FI_XBTUSD_260327``. Spot pairs do not exist.

    Raises:
        UnknownSymbol: malformed or spot symbol.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is None:
        raise UnknownSymbol(f"kraken futures lists no spot pairs; use {symbol}-PERP or {symbol}-YYYYMMDD")
    pair = f"{_ASSET.get(base, base)}{quote}"
    if kind == "PERP":
        return f"{'PF' if linear else 'PI'}_{pair}"
    return f"{'FF' if linear else 'FI'}_{pair}_{kind[2:]}"


def kraken_futures_unified(product_id: str) -> tuple[str, bool] | None:
    """``(unified symbol, linear)`` of a Kraken Futures product id (any case),
    or ``None`` when it has none (indices, other product kinds). Inverse of
    :func:`kraken_futures_symbol`."""
    parts = product_id.upper().split("_")
    if len(parts) not in (2, 3) or len(parts[0]) != 2:
        return None
    prefix = parts[0]
    linear = prefix in ("PF", "FF")
    if prefix not in ("PF", "FF", "PI", "FI") or (prefix[0] == "P") != (len(parts) == 2):
        return None
    pair = parts[1]
    quote = next((q for q in _QUOTES if pair.endswith(q) and len(pair) > len(q)), None)
    if quote is None:
        return None
    base = pair[: -len(quote)]
    symbol = f"{_UNIFIED_ASSET.get(base, base)}-{quote}"
    if len(parts) == 2:
        symbol += "-PERP"
    elif len(parts[2]) == 6 and parts[2].isdigit():
        symbol += f"-20{parts[2]}"
    else:
        return None
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return None
    return symbol, linear


def _number(value: Any) -> Any:
    """A JSON number of the venue (never text or a bool)."""
    if value.__class__ is float or value.__class__ is int:
        return value
    raise TypeError(f"expected a JSON number, not {value!r}")


def _ms(value: Any) -> int | None:
    """A millisecond timestamp as ns (``None`` when absent)."""
    if value is None:
        return None
    if value.__class__ is not int:
        raise TypeError(f"timestamp must be integer milliseconds, not {value!r}")
    return value * _MS


class KrakenFuturesAdapter(Adapter):
    """Kraken Futures WebSocket v1, linear contracts (``PF_``/``FF_``), venue id
    ``"kraken-futures"``. See the module docstring (sheet:
    ``shared/exchanges/kraken-futures.md``).

    Channels → events:

    * ``book`` → :class:`~wsmux.BookSnapshot` / :class:`~wsmux.BookUpdate`
      (``seq`` per product, +1 per update; one level per update).
    * ``trade`` → :class:`~wsmux.Trade` (taker side, ``trade_id = uid``,
      ``seq``) and, for ``type == "liquidation"``, :class:`~wsmux.Liquidation`.
    * ``ticker_lite`` → :class:`~wsmux.Quote` (best bid/ask prices; sizes are
      ``nan`` — "unknown" — unless the message carries ``bid_size``/``ask_size``).
    * ``ticker`` → :class:`~wsmux.Funding` (perpetuals; ``relative_funding_rate``
      when present, else ``funding_rate``; ``next_funding_rate_time``;
      ``markPrice``) and :class:`~wsmux.OpenInterest` (``openInterest``).
    """

    venue: ClassVar[str] = "kraken-futures"
    exchange: ClassVar[str] = "kraken-futures"  # its own platform (formerly Crypto Facilities), not Kraken spot
    linear: ClassVar[bool] = True
    """True: ``PF_``/``FF_`` products; False: ``PI_``/``FI_``."""
    channels: ClassVar[frozenset[Channel]] = frozenset(_FEEDS)
    default_url: ClassVar[str] = "wss://futures.kraken.com/ws/v1"
    default_rest_url: ClassVar[str] = "https://futures.kraken.com"
    # kraken-futures.md, "Keep-alive / limits": ~100 requests/s per connection
    # (secondary source); topics per connection and per message are not
    # documented: wsmux's choice.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=50,
        messages_per_second=50.0,
        connections_per_window=20,
        connection_window=60.0,
    )
    # kraken-futures.md: a ping at least every 60 s (WS ping frames are fine);
    # the heartbeat feed (subscribed once per connection) sends a message
    # every ~5 s (interval unconfirmed), so 30 s of silence means a dead peer.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ping_interval=30.0, ws_ping_interval=30.0, silence_timeout=30.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # product id -> unified symbol
        self._contracts = ContractSizes(self.venue)  # sizes in base units once instruments are known
        self._feeds = SharedFeeds()  # the channels wanted per (feed, product) on this connection
        self._heartbeat = False
        self._handlers: dict[str, Callable[[dict[str, Any], int], Sequence[Event | Diff | RawSnapshot]]] = {
            "book": self._book,
            "book_snapshot": self._book_snapshot,
            "trade": self._trade,
            "trade_snapshot": self._nothing,
            "ticker_lite": self._ticker_lite,
            "ticker": self._ticker,
            "heartbeat": self._nothing,
        }

    def reset(self) -> None:
        self._feeds.clear()
        self._heartbeat = False

    # --- symbols ----------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`kraken_futures_symbol`; funding exists for perpetuals only."""
        native = kraken_futures_symbol(symbol, self.linear)
        if channel is Channel.FUNDING and not native.startswith("P"):
            raise UnknownSymbol(f"{self.venue} has funding only for perpetuals, not {symbol!r}")
        return native

    def _unified(self, product_id: Any) -> str:
        symbol = self._symbols.get(product_id)
        if symbol is None:
            found = kraken_futures_unified(product_id) if product_id.__class__ is str else None
            if found is None or found[1] is not self.linear:
                raise MalformedMessage(f"{self.venue}: unknown product_id {product_id!r}")
            symbol = self._symbols[product_id] = found[0]
        return symbol

    # --- reference data ------------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``GET /derivatives/api/v3/instruments`` (kraken-futures.md, "Endpoints")."""
        return HttpRequest(f"{self.rest_url}/derivatives/api/v3/instruments")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """The instruments of this adapter's contract family: ``tickSize``,
        ``contractSize`` and, where given, the size step from
        ``contractValuePrecision`` (decimals). Untradeable instruments and
        other product kinds are left out."""
        try:
            msg = loads(body)
            if msg.get("result") != "success":
                raise RemoteError(f"{self.venue} instruments: {msg.get('error', msg.get('result'))!r}")
            out: list[Instrument] = []
            for item in msg["instruments"]:
                native = item["symbol"].upper()
                found = kraken_futures_unified(native)
                if found is None or found[1] is not self.linear or item.get("tradeable") is False:
                    continue
                precision = item.get("contractValuePrecision")
                tick = item.get("tickSize")
                size = item.get("contractSize")
                out.append(
                    Instrument(
                        self.venue,
                        found[0],
                        native,
                        "perp" if native.startswith("P") else "future",
                        float(_number(tick)) if tick is not None else None,
                        10.0**-precision if precision.__class__ is int else None,
                        float(_number(size)) if size is not None else None,
                        not self.linear,
                    )
                )
            return out
        except WsmuxError:
            raise
        except (*_ERRORS, JSONDecodeError) as exc:
            raise MalformedMessage(f"{self.venue}: bad instruments body: {exc!r}", body) from exc

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Report sizes in base units: a linear contract of ``contractSize``
        other than 1 multiplies every book, trade, quote and open-interest
        size of its product; an inverse contract's sizes become coins at
        their price (see the module docstring)."""
        # a linear contract of 1 base unit needs no conversion (the usual case: skip the per-message work)
        self._contracts.learn([item for item in instruments if not self.linear or item.contract_size != 1.0])

    # --- books -------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """Kraken Futures' ``book`` rule (kraken-futures.md, "Book sync"): stream
        snapshot on subscribe; each update's ``seq`` is the previous + 1 per
        product (SEQUENCE); no checksum; full depth; a crossed book is broken."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.SEQUENCE)

    # --- subscriptions -------------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out = self._requests("subscribe", subscriptions)
        if not self._heartbeat and out:
            self._heartbeat = True
            out.insert(0, dumps({"event": "subscribe", "feed": "heartbeat"}))
        return out

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _requests(self, verb: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        groups: dict[str, list[str]] = {}
        for sub in subscriptions:
            feed = _FEEDS.get(sub.channel)
            if feed is None:
                raise UnknownChannel(f"{self.venue} does not offer {sub.channel.value!r}")
            native = self.to_native(sub.symbol, sub.channel)
            self._symbols[native] = sub.symbol
            # a feed serving two channels is sent when the first arrives / the last goes
            if verb == "subscribe":
                send = self._feeds.add(feed, native, sub.channel)
            else:
                send = self._feeds.remove(feed, native, sub.channel)
            products = groups.setdefault(feed, [])
            if send and native not in products:
                products.append(native)
        per = self.limits.topics_per_message
        return [
            dumps({"event": verb, "feed": feed, "product_ids": products[i : i + per]})
            for feed, products in groups.items()
            for i in range(0, len(products), per)
        ]

    # --- parsing -------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff | RawSnapshot]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        feed: Any = None
        try:
            feed = msg.get("feed")
            event = msg.get("event")
            if event is not None:
                return self._event(event, msg, frame)
            handler = self._handlers.get(feed) if feed.__class__ is str else None
            if handler is None:
                raise unknown_message("feed", feed, frame)
            return handler(msg, recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad {feed or 'event'} message: {exc!r}", frame) from exc

    def _event(self, event: Any, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        if event in _QUIET_EVENTS:
            return []
        if event in _REFUSALS:
            raise SubscriptionRejected(
                f"{self.venue} {event}: feed {msg.get('feed')!r} products {msg.get('product_ids')!r}"
                f"{': ' + str(msg['message']) if 'message' in msg else ''}"
            )
        if event == "error":
            raise SubscriptionRejected(f"{self.venue} error: {msg.get('message', '')}")
        raise unknown_message("event", event, frame)

    @staticmethod
    def _nothing(msg: dict[str, Any], recv_ns: int) -> list[Event]:
        return []

    def _book_snapshot(self, msg: dict[str, Any], recv_ns: int) -> list[Event | RawSnapshot]:
        product = msg["product_id"]
        symbol = self._unified(product)
        seq = msg["seq"]
        if seq.__class__ is not int:
            raise TypeError(f"seq must be an integer, not {seq!r}")
        ts = _ms(msg.get("timestamp"))
        raw_bids = msg["bids"]
        raw_asks = msg["asks"]
        if self.reads_rows_later(raw_bids, raw_asks):  # a live Feed: the book's build steps read the rows
            read = partial(self._snapshot_levels, symbol)
            return [RawSnapshot(symbol, UnreadRows(raw_bids, read), UnreadRows(raw_asks, read), ts, seq)]
        bids = self._snapshot_levels(symbol, raw_bids)
        asks = self._snapshot_levels(symbol, raw_asks)
        bids.sort(reverse=True)
        asks.sort()
        return [BookSnapshot(self.venue, symbol, tuple(bids), tuple(asks), ts, recv_ns, seq)]

    def _snapshot_levels(self, symbol: str, rows: Any) -> list[tuple[float, float]]:
        """A snapshot side's ``{"price", "qty"}`` rows as ``(price, size)``, sizes in base units."""
        levels = [(float(_number(lv["price"])), float(_number(lv["qty"]))) for lv in rows]
        if self._contracts.converts(symbol):
            size = self._contracts.size
            levels = [(p, size(symbol, q, p)) for p, q in levels]
        return levels

    def _book(self, msg: dict[str, Any], recv_ns: int) -> list[Diff]:
        product = msg["product_id"]
        symbol = self._unified(product)
        seq = msg["seq"]
        if seq.__class__ is not int:
            raise TypeError(f"seq must be an integer, not {seq!r}")
        price = msg["price"]
        qty = msg["qty"]
        if (price.__class__ is not float and price.__class__ is not int) or (
            qty.__class__ is not float and qty.__class__ is not int
        ):
            raise TypeError(f"price and qty must be JSON numbers: {price!r}, {qty!r}")
        if self._contracts.converts(symbol):
            qty = self._contracts.size(symbol, qty, price)
        level = ((price, qty),)
        side = msg["side"]
        if side == "buy":
            return [Diff(symbol, level, (), _ms(msg.get("timestamp")), seq)]
        if side == "sell":
            return [Diff(symbol, (), level, _ms(msg.get("timestamp")), seq)]
        raise ValueError(f"unknown book side {side!r}")

    def _trade(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        symbol = self._unified(product)
        feeds = self._feeds
        price = float(_number(msg["price"]))
        size = self._contracts.size(symbol, _number(msg["qty"]), price)
        side = _SIDES[msg["side"]]
        ts = _ms(msg.get("time"))
        out: list[Event] = []
        if feeds.wants("trade", product, Channel.TRADES):
            seq = msg.get("seq")
            if seq is not None and seq.__class__ is not int:
                raise TypeError(f"seq must be an integer, not {seq!r}")
            out.append(Trade(self.venue, symbol, price, size, side, str(msg["uid"]), ts, recv_ns, seq))
        if msg.get("type") == "liquidation" and feeds.wants("trade", product, Channel.LIQUIDATIONS):
            out.append(Liquidation(self.venue, symbol, side, price, size, ts, recv_ns))
        return out

    def _ticker_lite(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        symbol = self._unified(msg["product_id"])
        bid = msg.get("bid")
        ask = msg.get("ask")
        bid_size = msg.get("bid_size")
        ask_size = msg.get("ask_size")
        bid_price = float(_number(bid)) if bid is not None else _NAN
        ask_price = float(_number(ask)) if ask is not None else _NAN
        size = self._contracts.size
        return [
            Quote(
                self.venue,
                symbol,
                bid_price,
                size(symbol, _number(bid_size), bid_price) if bid_size is not None else _NAN,
                ask_price,
                size(symbol, _number(ask_size), ask_price) if ask_size is not None else _NAN,
                _ms(msg.get("time")),
                recv_ns,
            )
        ]

    def _ticker(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        symbol = self._unified(product)
        feeds = self._feeds
        ts = _ms(msg.get("time"))
        out: list[Event] = []
        mark = msg.get("markPrice")
        rate = msg.get("relative_funding_rate")
        if rate is None:
            rate = msg.get("funding_rate")
        if rate is not None and feeds.wants("ticker", product, Channel.FUNDING):
            out.append(
                Funding(
                    self.venue,
                    symbol,
                    float(_number(rate)),
                    _ms(msg.get("next_funding_rate_time")),
                    float(_number(mark)) if mark is not None else None,
                    ts,
                    recv_ns,
                )
            )
        oi = msg.get("openInterest")
        if oi is not None and feeds.wants("ticker", product, Channel.OPEN_INTEREST):
            # inverse contracts: coins at the mark price (none: nan, dropped by the quality gate)
            size = self._contracts.size(symbol, _number(oi), _number(mark) if mark is not None else _NAN)
            out.append(OpenInterest(self.venue, symbol, size, ts, recv_ns))
        return out


class KrakenFuturesInverseAdapter(KrakenFuturesAdapter):
    """Kraken Futures inverse contracts (``PI_``/``FI_``), venue id
    ``"kraken-futures-inverse"``: the same protocol as
    :class:`KrakenFuturesAdapter`. The venue counts contracts of
    ``contractSize`` USD each; once :meth:`use_instruments` has the list,
    sizes are coins (``contracts * contractSize / price``), before that
    contracts."""

    venue: ClassVar[str] = "kraken-futures-inverse"
    linear: ClassVar[bool] = False
