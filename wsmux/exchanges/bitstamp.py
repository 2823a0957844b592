"""Bitstamp WebSocket API v2: :class:`BitstampAdapter` (venue id ``"bitstamp"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/bitstamp.md``
(Bitstamp's WebSocket API v2 and HTTP API v2 pages, cryptofeed, ccxt). Each
rule is restated where it is enforced:

* **Endpoint.** ``wss://ws.bitstamp.net``; REST ``https://www.bitstamp.net``.
* **Subscribing**, one channel per message: ``{"event":"bts:subscribe",
  "data":{"channel":"diff_order_book_btcusd"}}``; ack
  ``bts:subscription_succeeded``; ``bts:unsubscribe``; refusals come as
  ``bts:error`` (:class:`~wsmux.errors.SubscriptionRejected`). The server may
  send ``bts:request_reconnect``: reported as a :class:`~wsmux.errors.RemoteError`
  (the connection layer reconnects on repeated errors; the sheet leaves the
  payload unconfirmed).
* **Channels.** ``live_trades_{pair}`` → TRADES (``type`` 0: the taker bought,
  1: sold); ``diff_order_book_{pair}`` → BOOK; ``live_orders_{pair}`` → L3.
  Symbols are the lower-case ``url_symbol`` (``btcusd``). No BBO, candle or
  public liquidation channel; ``funding_rate_{market}`` (perpetuals) is left
  out: its fields are unconfirmed in the sheet.
* **Time is the only order.** Neither the diffs nor the order events carry a
  sequence number or a checksum; each carries ``microtimestamp`` (µs, text).
  Several messages can share a microsecond, so the adapter numbers them with
  an ordering key ``seq = microtimestamp * 1000 + k`` (``k`` counts the
  messages of one symbol with the same microtimestamp on this connection,
  below 1000) and each update's ``first_seq`` is the key after the previous
  one's. A REST snapshot's ``seq`` is ``microtimestamp * 1000 + 999``.
* **L2 book** (``diff_order_book_{pair}``, full depth, absolute amounts,
  ``"0.00000000"`` deletes): buffer the diffs, fetch ``GET
  /api/v2/order_book/{pair}/`` and drop the diffs with ``microtimestamp <=``
  the snapshot's (the bridge rule of the sheet, as data:
  ``SnapshotSource.REST``, ``Continuity.MONOTONIC`` on the ordering key). A
  snapshot older than the first buffered diff is fetched again. **A lost diff
  cannot be detected**: the book's integrity is UNVERIFIABLE; only a crossed
  book gives a loss away.
* **L3 book** (``live_orders_{pair}``: ``order_created`` / ``order_changed`` /
  ``order_deleted`` with ``id``, ``order_type`` 0 buy / 1 sell, ``price_str``,
  ``amount_str`` = remaining amount): buffered until the REST snapshot
  ``GET /api/v2/order_book/{pair}/?group=2`` (``[price, amount, order_id]``)
  arrives, events at or before its microtimestamp dropped. UNVERIFIABLE too.
  The ``*_str`` fields are used (the float fields lose precision).
* **Keep-alive.** WebSocket pings; the optional ``bts:heartbeat`` answer is
  ignored. Maximum connection age 90 days (secondary source).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.model import (
    BookSide,
    BookSnapshot,
    Channel,
    Event,
    Instrument,
    L3Snapshot,
    OrderAction,
    OrderUpdate,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BitstampAdapter", "bitstamp_symbol"]

_Handler = Callable[[str, Any, int, str, str], Sequence[Event | Diff]]
_Route = tuple[_Handler, str, str]
_MAX_ROUTES = 10_000

_US = 1_000  # ns per µs
_KEY = 1_000  # ordering keys per microsecond
_PREFIXES = {Channel.TRADES: "live_trades_", Channel.BOOK: "diff_order_book_", Channel.L3: "live_orders_"}
_CHANNEL_OF = {v: k for k, v in _PREFIXES.items()}
_TAKER = {0: Side.BUY, 1: Side.SELL}
_ORDER_SIDE = {0: BookSide.BID, 1: BookSide.ASK}
_ACTIONS = {"order_created": OrderAction.ADD, "order_changed": OrderAction.CHANGE, "order_deleted": OrderAction.REMOVE}
_QUIET = frozenset({"bts:subscription_succeeded", "bts:unsubscription_succeeded", "bts:heartbeat"})
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_QUOTES = ("USDT", "USDC", "PYUSD", "RLUSD", "USD", "EUR", "GBP", "BTC", "ETH")


def bitstamp_symbol(symbol: str) -> str:
    """Bitstamp's ``url_symbol`` of a unified spot symbol: ``BTC-USD`` → ``btcusd``.

    Raises:
        UnknownSymbol: malformed symbol, or not a spot pair.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is not None:
        raise UnknownSymbol(f"bitstamp: only spot pairs are supported, not {symbol!r}")
    return f"{base}{quote}".lower()


def _text(value: Any, name: str) -> str:
    if value.__class__ is not str:
        raise TypeError(f"{name} must be text, not {value!r}")
    return value


def _micros(value: Any) -> int:
    """``microtimestamp``: µs as decimal text (ints are accepted too)."""
    if value.__class__ is int:
        return int(value)
    text = _text(value, "microtimestamp")
    if not text.isdigit():
        raise ValueError(f"bad microtimestamp {text!r}")
    return int(text)


def _levels(raw: Any) -> tuple[tuple[float, float], ...]:
    out = []
    for level in raw:
        out.append((float(_text(level[0], "price")), float(_text(level[1], "amount"))))
    return tuple(out)


class BitstampAdapter(Adapter):
    """Bitstamp WebSocket API v2, venue id ``"bitstamp"``. See the module
    docstring (sheet: ``shared/exchanges/bitstamp.md``).

    Channels → events:

    * ``live_trades_{pair}`` → :class:`~wsmux.Trade` (taker side from ``type``,
      ``trade_id`` = ``id``).
    * ``diff_order_book_{pair}`` → :class:`~wsmux.BookUpdate` over a REST
      :class:`~wsmux.BookSnapshot` (``seq``: the microtimestamp ordering key).
    * ``live_orders_{pair}`` → :class:`~wsmux.OrderUpdate` over a REST
      :class:`~wsmux.L3Snapshot` (``group=2``).
    """

    venue: ClassVar[str] = "bitstamp"
    channels: ClassVar[frozenset[Channel]] = frozenset(_PREFIXES)
    default_url: ClassVar[str] = "wss://ws.bitstamp.net"
    default_rest_url: ClassVar[str] = "https://www.bitstamp.net"
    # bitstamp.md: subscription and message caps are not documented; one
    # channel per subscribe message (the protocol's own shape).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=1,
        messages_per_second=10.0,
        connections_per_window=10,
        connection_window=60.0,
        rest_weight_per_minute=480,
    )
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ping_interval=20.0, ws_ping_interval=20.0, silence_timeout=60.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # url_symbol -> unified symbol
        # (channel prefix, url_symbol) -> (last microtimestamp, last ordering key)
        self._keys: dict[tuple[str, str], tuple[int, int]] = {}
        self._routes: dict[str, _Route] = {}  # data channel -> (handler, pair, unified symbol)
        self._handlers: dict[str, _Handler] = {
            "live_trades_": self._trade,
            "diff_order_book_": self._diff,
            "live_orders_": self._order,
        }

    def reset(self) -> None:
        self._keys.clear()

    # --- symbols ------------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`bitstamp_symbol`."""
        return bitstamp_symbol(symbol)

    def _unified(self, native: str) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            upper = native.upper()
            quote = next((q for q in _QUOTES if upper.endswith(q) and len(upper) > len(q)), None)
            if quote is None:
                raise MalformedMessage(f"bitstamp: unknown pair {native!r}")
            symbol = f"{upper[: -len(quote)]}-{quote}"
            parse_symbol(symbol)
            self._symbols[native] = symbol
        return symbol

    # --- reference data -------------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``GET /api/v2/trading-pairs-info/`` (bitstamp.md, "Endpoints")."""
        return HttpRequest(f"{self.rest_url}/api/v2/trading-pairs-info/")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Pairs with ``trading == "Enabled"``: tick ``10**-counter_decimals``,
        lot ``10**-base_decimals`` (the ``name`` ``BTC/USD`` gives the symbol)."""
        try:
            items = loads(body)
            out: list[Instrument] = []
            for item in items:
                if item.get("trading", "Enabled") != "Enabled":
                    continue
                base, _, quote = _text(item["name"], "name").partition("/")
                symbol = f"{base}-{quote}".upper()
                try:
                    parse_symbol(symbol)
                except UnknownSymbol:
                    continue
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        _text(item["url_symbol"], "url_symbol"),
                        "spot",
                        10.0 ** -int(item["counter_decimals"]),
                        10.0 ** -int(item["base_decimals"]),
                    )
                )
            return out
        except (*_ERRORS, JSONDecodeError) as exc:
            raise MalformedMessage(f"bitstamp: bad trading-pairs-info body: {exc!r}", body) from exc

    # --- books ----------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """REST snapshot bridged by time: buffered diffs at or before the
        snapshot's microtimestamp are dropped (``bridge_offset=1`` on the
        ordering key); then keys only grow (MONOTONIC). No ids, no checksum:
        UNVERIFIABLE (bitstamp.md, "L2 book sync")."""
        return SyncRule(snapshot=SnapshotSource.REST, continuity=Continuity.MONOTONIC, bridge_offset=1)

    def l3_rule(self, symbol: str) -> SyncRule:
        """The L3 rule: REST snapshot (``group=2``), events at or before its
        microtimestamp dropped, then keys only grow (bitstamp.md, "L3")."""
        return SyncRule(snapshot=SnapshotSource.REST, continuity=Continuity.MONOTONIC)

    def snapshot_request(self, symbol: str, depth: int | None = None) -> HttpRequest:
        """``GET /api/v2/order_book/{pair}/`` (full depth, grouped by price)."""
        return HttpRequest(f"{self.rest_url}/api/v2/order_book/{bitstamp_symbol(symbol)}/")

    def l3_snapshot_request(self, symbol: str) -> HttpRequest:
        """``GET /api/v2/order_book/{pair}/?group=2`` (orders with their ids)."""
        return HttpRequest(f"{self.rest_url}/api/v2/order_book/{bitstamp_symbol(symbol)}/", (("group", "2"),))

    def parse_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> BookSnapshot:
        """``{"timestamp", "microtimestamp", "bids", "asks"}``; ``seq`` is the
        microtimestamp's last ordering key."""
        msg = self._rest_book(body)
        try:
            micros = _micros(msg["microtimestamp"])
            bids = _levels(msg["bids"])
            asks = _levels(msg["asks"])
        except _ERRORS as exc:
            raise MalformedMessage(f"bitstamp: bad order book: {exc!r}", body) from exc
        return BookSnapshot(self.venue, symbol, bids, asks, micros * _US, recv_ns, micros * _KEY + _KEY - 1)

    def parse_l3_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> L3Snapshot:
        """``group=2`` book: ``[price, amount, order_id]`` per order."""
        msg = self._rest_book(body)
        try:
            micros = _micros(msg["microtimestamp"])
            orders: list[tuple[str, BookSide, float, float]] = []
            for side, key in ((BookSide.BID, "bids"), (BookSide.ASK, "asks")):
                for price, amount, order_id in msg[key]:
                    orders.append((str(order_id), side, float(_text(price, "price")), float(_text(amount, "amount"))))
        except _ERRORS as exc:
            raise MalformedMessage(f"bitstamp: bad level-3 order book: {exc!r}", body) from exc
        return L3Snapshot(self.venue, symbol, tuple(orders), micros * _US, recv_ns, micros * _KEY + _KEY - 1)

    @staticmethod
    def _rest_book(body: bytes) -> Any:
        try:
            msg = loads(body)
        except JSONDecodeError as exc:
            raise MalformedMessage("bitstamp: invalid JSON in order book", body) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("bitstamp: order book is not a JSON object", body)
        if "bids" not in msg and ("status" in msg or "error" in msg or "code" in msg):
            raise RemoteError(f"bitstamp order book refused: {msg.get('reason') or msg.get('message') or msg}")
        return msg

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [self._request("bts:subscribe", sub) for sub in subscriptions]

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [self._request("bts:unsubscribe", sub) for sub in subscriptions]

    def _request(self, event: str, sub: Subscription) -> str:
        prefix = _PREFIXES.get(sub.channel)
        if prefix is None:
            raise UnknownChannel(f"bitstamp does not offer {sub.channel.value!r}")
        native = bitstamp_symbol(sub.symbol)
        self._symbols[native] = sub.symbol
        return dumps({"event": event, "data": {"channel": f"{prefix}{native}"}})

    # --- parsing ---------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        channel: Any = None
        try:
            event = msg["event"]
            channel = msg.get("channel")
            if event.__class__ is str and event.startswith("bts:"):
                return self._control(event, channel, msg)
            route = self._routes.get(channel) if channel.__class__ is str else None
            if route is None:  # a data channel not seen before
                if channel.__class__ is not str:
                    raise TypeError(f"channel must be text, not {channel!r}")
                route = self._route(channel, frame)
            return route[0](event, msg["data"], recv_ns, route[1], route[2])
        except MalformedMessage as exc:
            if exc.frame is None:
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"bitstamp: bad {channel or 'event'} message: {exc!r}", frame) from exc

    @staticmethod
    def _control(event: str, channel: Any, msg: dict[str, Any]) -> list[Event]:
        """``bts:`` events: acks and heartbeats (nothing), errors, reconnect requests."""
        if event in _QUIET:
            return []
        if event == "bts:error":
            data = msg.get("data") or {}
            raise SubscriptionRejected(f"bitstamp error on {channel!r}: {data.get('message', data)}")
        if event == "bts:request_reconnect":
            raise RemoteError("bitstamp asks the client to reconnect (bts:request_reconnect)")
        raise unknown_message("event", event)

    def _route(self, channel: str, frame: bytes | str) -> _Route:
        """Handler, pair and unified symbol of a data channel (cached)."""
        prefix, native = _split(channel)
        handler = self._handlers.get(prefix) if prefix is not None else None
        if handler is None:
            raise unknown_message("channel", channel, frame)
        route = (handler, _channel_key(native), self._unified(native))
        if len(self._routes) >= _MAX_ROUTES:  # bound what a hostile stream can make us keep
            self._routes.clear()
        self._routes[channel] = route
        return route

    def _key(self, prefix: str, native: str, micros: int) -> tuple[int, int]:
        """``(first_seq, seq)``: this message's ordering key and the key after
        the previous message of the same channel (see the module docstring)."""
        slot = (prefix, native)
        last = self._keys.get(slot)
        key = micros * _KEY
        if last is not None and last[0] == micros and last[1] % _KEY < _KEY - 2:
            key = last[1] + 1  # another message of the same microsecond
        self._keys[slot] = (micros, key)
        return (last[1] + 1 if last is not None else key), key

    def _trade(self, event: str, data: Any, recv_ns: int, native: str, symbol: str) -> list[Event]:
        if event != "trade":
            raise unknown_message("live_trades event", event)
        micros = _micros(data["microtimestamp"])
        return [
            Trade(
                self.venue,
                symbol,
                float(_text(data["price_str"], "price_str")),
                float(_text(data["amount_str"], "amount_str")),
                _TAKER[data["type"]],
                str(data["id"]),
                micros * _US,
                recv_ns,
            )
        ]

    def _diff(self, event: str, data: Any, recv_ns: int, native: str, symbol: str) -> list[Diff]:
        if event != "data":
            raise unknown_message("diff_order_book event", event)
        micros = _micros(data["microtimestamp"])
        bids = data["bids"]
        asks = data["asks"]
        if bids.__class__ is not list or asks.__class__ is not list:
            raise TypeError("bids and asks must be lists")
        first, key = self._key("diff_order_book_", native, micros)
        # the decoded [price, amount] text lists go to the book sync as they are
        return [Diff(symbol, bids, asks, micros * _US, key, first)]

    def _order(self, event: str, data: Any, recv_ns: int, native: str, symbol: str) -> list[Event]:
        action = _ACTIONS.get(event)
        if action is None:
            raise unknown_message("live_orders event", event)
        micros = _micros(data["microtimestamp"])
        first, key = self._key("live_orders_", native, micros)
        order_id = data.get("id_str")
        if order_id is None:
            order_id = str(data["id"])
        return [
            OrderUpdate(
                self.venue,
                symbol,
                action,
                _text(order_id, "id_str"),
                _ORDER_SIDE[data["order_type"]],
                float(_text(data["price_str"], "price_str")),
                0.0 if action is OrderAction.REMOVE else float(_text(data["amount_str"], "amount_str")),
                micros * _US,
                recv_ns,
                key,
                first,
            )
        ]


def _split(channel: str) -> tuple[str | None, str]:
    """``"diff_order_book_btcusd"`` → ``("diff_order_book_", "btcusd")``."""
    for prefix in _CHANNEL_OF:
        if channel.startswith(prefix):
            return prefix, channel[len(prefix) :]
    return None, channel


def _channel_key(native: str) -> str:
    if not native or not native.isalnum() or not native.islower():
        raise ValueError(f"bad pair {native!r} in channel")
    return native
