"""Gemini market data: :class:`GeminiAdapter` (venue id ``"gemini"``, the current
WebSocket API at ``wss://ws.gemini.com``) and :class:`GeminiV2Adapter`
(``"gemini-v2"``, the archived market data v2 feed).

Venue rules come from the wsmux fact sheet ``shared/exchanges/gemini.md``
(Gemini's developer documentation, 2026; cryptofeed and its 2021 v2
recording). Each rule is restated where it is enforced.

Current API (``gemini``)
------------------------
* **Endpoint.** ``wss://ws.gemini.com``; wsmux connects with ``?snapshot=-1``
  so that subscribing a differential depth stream first sends the full book.
* **Requests.** ``{"id":"1","method":"subscribe","params":[streams]}`` (also
  ``unsubscribe``, ``ping``); answers ``{"id":"1","status":200,"result":..}``
  or ``{"id":"1","status":4xx,"error":{"code":-1013,"msg":".."}}``
  (:class:`~wsmux.errors.SubscriptionRejected`, naming the streams of that
  request). The ``params`` shape (a list of stream names) is unconfirmed in
  the sheet; wsmux sends that reading.
* **Streams** (symbols lower case, ``btcusd``; perpetuals ``btcgusdperp``,
  unconfirmed): ``{symbol}@depth@100ms`` (``depthUpdate``: ``U`` first and
  ``u`` last update id, ``b``/``a`` ``[price, qty]`` text, ``"0"`` deletes,
  ``E`` event time in **ns**), ``{symbol}@bookTicker`` (``u``, ``E``,
  ``b``/``B``/``a``/``A``) and ``{symbol}@trade``.
* **Book.** The snapshot (``lastUpdateId``, ``bids``, ``asks``) arrives on the
  stream after subscribing; then updates chain by update ids
  (:attr:`~wsmux.book.Continuity.UPDATE_ID`: ``u <= lastUpdateId`` is stale,
  the first kept update has ``U <= last + 1``, then ``U == previous u + 1``).
  The sheet marks this rule *expected, unconfirmed*; wsmux enforces it (the
  strictest reading) and resubscribes the depth stream on a break. No
  checksum. A snapshot without ``s`` (the documented partial-depth shape
  carries no symbol) belongs to the oldest book subscription of the
  connection still waiting for one: snapshots answer subscriptions in order.
* **Trades** (fields unconfirmed): ``t`` trade id, ``p`` price, ``q``
  quantity, ``T`` (else ``E``) time in ns; the taker side from ``m`` (buyer
  is maker → the taker sold), else from ``S``/``side`` (``buy``/``sell``).
* **Keep-alive.** wsmux sends the ``ping`` method every 20 s (its answer
  keeps the connection from looking silent) and WebSocket pings. Rate-limit
  refusals come as error ``-1003`` (status 429).

Archived v2 (``gemini-v2``)
---------------------------
* ``wss://api.gemini.com/v2/marketdata``; ``{"type":"subscribe",
  "subscriptions":[{"name":"l2","symbols":["BTCUSD"]}]}`` (symbols upper case).
  One ``l2`` subscription carries the book *and* the trades of a symbol.
* The first ``l2_updates`` of a symbol (it has a ``trades`` key: the last
  trades, history, dropped) is the full book; later ones are changes
  ``[side, price, qty]`` (``buy``/``sell``, absolute, ``"0"`` deletes).
  **No sequence number and no checksum**: a lost update cannot be detected,
  so the book's integrity is UNVERIFIABLE (only a crossed book gives a loss
  away). Deleting a price the book does not hold happens in real traffic and
  is harmless.
* ``trade``: ``event_id``/``tid``, ``timestamp`` (ms), ``price``,
  ``quantity``, ``side`` (the taker's). ``heartbeat`` about every 5 s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
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
from wsmux.exchanges._feeds import SharedFeeds
from wsmux.model import BookSnapshot, Channel, Event, Instrument, Levels, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["GeminiAdapter", "GeminiV2Adapter", "gemini_symbol", "gemini_unified"]

_MS = 1_000_000
_SIDES = {"buy": Side.BUY, "sell": Side.SELL, "BUY": Side.BUY, "SELL": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
# Quote currencies a Gemini symbol can end with, tried in this order (GUSD before USD).
_QUOTES = ("GUSD", "USDT", "USDC", "RLUSD", "DAI", "USD", "EUR", "GBP", "SGD", "AUD", "CAD", "BTC", "ETH", "LTC", "BCH")
_PERP = "PERP"


def gemini_symbol(symbol: str) -> str:
    """Gemini's symbol (upper case) of a unified one: ``BTC-USD`` → ``BTCUSD``,
    ``BTC-GUSD-PERP`` → ``BTCGUSDPERP`` (gemini.md: perpetual naming
    unconfirmed). Dated futures do not exist.

    Raises:
        UnknownSymbol: malformed or dated symbol.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is None:
        return f"{base}{quote}"
    if kind == "PERP":
        return f"{base}{quote}{_PERP}"
    raise UnknownSymbol(f"gemini lists no dated futures ({symbol!r})")


def gemini_unified(native: str) -> str | None:
    """The unified symbol of a Gemini symbol (any case), or ``None`` when its
    quote currency is not recognised. Inverse of :func:`gemini_symbol`."""
    pair = native.upper()
    suffix = ""
    if pair.endswith(_PERP) and len(pair) > len(_PERP):
        pair = pair[: -len(_PERP)]
        suffix = "-PERP"
    for quote in _QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            symbol = f"{pair[: -len(quote)]}-{quote}{suffix}"
            try:
                parse_symbol(symbol)
            except UnknownSymbol:
                return None
            return symbol
    return None


def _text_levels(raw: Any) -> Levels:
    """``[[price, qty], ...]`` text → float levels (snapshots)."""
    out = []
    for level in raw:
        price = level[0]
        qty = level[1]
        if price.__class__ is not str or qty.__class__ is not str:
            raise TypeError(f"level {level!r}: price and quantity must be text")
        out.append((float(price), float(qty)))
    return tuple(out)


def _split_changes(changes: Any) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """v2 ``[[side, price, qty], ...]`` changes → bid and ask ``(price, qty)``
    text rows, converted and checked by the book sync."""
    bids: list[tuple[Any, Any]] = []
    asks: list[tuple[Any, Any]] = []
    for change in changes:
        side = change[0]
        price = change[1]
        qty = change[2]
        if price.__class__ is not str or qty.__class__ is not str:
            raise TypeError(f"change {change!r}: price and quantity must be text")
        if side == "buy":
            bids.append((price, qty))
        elif side == "sell":
            asks.append((price, qty))
        else:
            raise ValueError(f"unknown side {side!r}")
    return bids, asks


def _ns(value: Any, name: str) -> int:
    if value.__class__ is not int:
        raise TypeError(f"{name} must be an integer, not {value!r}")
    return int(value)


class _GeminiBase(Adapter):
    """What both Gemini feeds share: symbols and the instruments endpoint."""

    default_rest_url: ClassVar[str] = "https://api.gemini.com"
    lower_case: ClassVar[bool] = True
    """Symbols in lower case on the wire (the current API) or upper (v2)."""

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # wire symbol -> unified symbol

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`gemini_symbol` (lower case on the current API)."""
        native = gemini_symbol(symbol)
        return native.lower() if self.lower_case else native

    def _native_of(self, sub: Subscription) -> str:
        if sub.channel not in self.channels:
            raise UnknownChannel(f"{self.venue} does not offer {sub.channel.value!r}")
        native = self.to_native(sub.symbol, sub.channel)
        self._symbols[native] = sub.symbol
        return native

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            found = gemini_unified(native) if native.__class__ is str else None
            if found is None:
                raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}")
            symbol = self._symbols[native] = found
        return symbol

    def instruments_request(self) -> HttpRequest:
        """``GET /v1/symbols`` (gemini.md, "Instruments / REST"): the symbol
        names (tick and lot sizes are per symbol, ``/v1/symbols/details/{symbol}``)."""
        return HttpRequest(f"{self.rest_url}/v1/symbols")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Spot pairs and perpetuals whose quote currency wsmux recognises."""
        try:
            names = loads(body)
            if names.__class__ is not list:
                raise TypeError(f"expected a list of symbols, not {names.__class__.__name__}")
            out: list[Instrument] = []
            for name in names:
                if name.__class__ is not str:
                    raise TypeError(f"symbol {name!r} is not text")
                symbol = gemini_unified(name)
                if symbol is not None:
                    kind = "perp" if symbol.endswith("-PERP") else "spot"
                    out.append(Instrument(self.venue, symbol, name.lower() if self.lower_case else name.upper(), kind))
            return out
        except (*_ERRORS, JSONDecodeError) as exc:
            raise MalformedMessage(f"{self.venue}: bad instruments body: {exc!r}", body) from exc


_STREAMS = {Channel.BOOK: "depth@100ms", Channel.TRADES: "trade", Channel.QUOTES: "bookTicker"}


class GeminiAdapter(_GeminiBase):
    """Gemini's current WebSocket API, venue id ``"gemini"``. See the module
    docstring (sheet: ``shared/exchanges/gemini.md``).

    Channels → events:

    * ``{symbol}@depth@100ms`` → :class:`~wsmux.BookSnapshot` (on subscribe)
      / :class:`~wsmux.BookUpdate` (``first_seq = U``, ``seq = u``).
    * ``{symbol}@bookTicker`` → :class:`~wsmux.Quote` (``seq = u``).
    * ``{symbol}@trade`` → :class:`~wsmux.Trade` (taker side).
    """

    venue: ClassVar[str] = "gemini"
    channels: ClassVar[frozenset[Channel]] = frozenset(_STREAMS)
    default_url: ClassVar[str] = "wss://ws.gemini.com"
    # gemini.md: rate limits unconfirmed (refusals are error -1003); wsmux's
    # choice, kept modest.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=50,
        messages_per_second=5.0,
        connections_per_window=10,
        connection_window=60.0,
    )
    # gemini.md: the ping method exists; server idle timeout unconfirmed.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"id":"ping","method":"ping"}', ping_interval=20.0, ws_ping_interval=20.0, silence_timeout=60.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._next_id = 1
        self._requests: dict[str, list[str]] = {}  # request id -> its streams
        self._awaiting: deque[str] = deque()  # books waiting for their snapshot, in subscribe order

    def reset(self) -> None:
        self._requests.clear()
        self._awaiting.clear()

    def connect_url(self, subscriptions: Sequence[Subscription]) -> str:
        """The endpoint with ``snapshot=-1``: a full book snapshot on subscribing
        a differential depth stream (gemini.md, "Initial snapshot")."""
        return f"{self.url}{'&' if '?' in self.url else '?'}snapshot=-1"

    def book_rule(self, symbol: str) -> SyncRule:
        """Stream snapshot (``lastUpdateId``), then ``U``/``u`` update-id ranges
        (UPDATE_ID; gemini.md: expected, unconfirmed); no checksum."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.UPDATE_ID)

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        streams = []
        for sub in subscriptions:
            native = self._native_of(sub)
            if sub.channel is Channel.BOOK:
                self._awaiting.append(sub.symbol)
            streams.append(f"{native}@{_STREAMS[sub.channel]}")
        return self._messages("subscribe", streams)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        streams = []
        for sub in subscriptions:
            native = self._native_of(sub)
            if sub.channel is Channel.BOOK and sub.symbol in self._awaiting:
                self._awaiting.remove(sub.symbol)
            streams.append(f"{native}@{_STREAMS[sub.channel]}")
        return self._messages("unsubscribe", streams)

    def _messages(self, method: str, streams: list[str]) -> list[Outgoing]:
        out: list[Outgoing] = []
        per = self.limits.topics_per_message
        for i in range(0, len(streams), per):
            request_id = str(self._next_id)
            self._next_id += 1
            self._requests[request_id] = streams[i : i + per]
            out.append(dumps({"id": request_id, "method": method, "params": streams[i : i + per]}))
        return out

    # --- parsing ---------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        try:
            kind = msg.get("e")
            if kind == "depthUpdate":
                return self._depth(msg)
            if kind == "trade":
                return self._trade(msg, recv_ns)
            if kind is not None:
                raise unknown_message("event", kind, frame)
            if "lastUpdateId" in msg:
                return self._snapshot(msg, recv_ns)
            if "status" in msg:
                return self._reply(msg)
            if "u" in msg and "B" in msg and "A" in msg:
                return self._book_ticker(msg, recv_ns)
            raise MalformedMessage("unknown message type")
        except MalformedMessage as exc:
            if exc.frame is None:
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"gemini: bad message: {exc!r}", frame) from exc

    def _reply(self, msg: dict[str, Any]) -> list[Event]:
        request_id = msg.get("id")
        status = msg["status"]
        if status == 200:
            self._requests.pop(request_id, None)  # type: ignore[arg-type]
            return []
        error = msg.get("error") or {}
        streams = self._requests.pop(request_id, None) if request_id.__class__ is str else None
        text = f"gemini request {request_id!r} refused ({status}, {error.get('code')}: {error.get('msg', '')})"
        if streams:
            text += f"; streams {', '.join(streams)}"
        if status == 429 or error.get("code") == -1003:
            raise RemoteError(text + " (rate limit)")
        raise SubscriptionRejected(text)

    def _depth(self, msg: dict[str, Any]) -> list[Diff]:
        symbol = self._unified(msg["s"])
        bids = msg["b"]
        asks = msg["a"]
        if bids.__class__ is not list or asks.__class__ is not list:
            raise TypeError("b and a must be lists")
        return [Diff(symbol, bids, asks, _ns(msg["E"], "E"), _ns(msg["u"], "u"), _ns(msg["U"], "U"))]

    def _snapshot(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        native = msg.get("s")
        if native is not None:
            symbol = self._unified(native)
            if symbol in self._awaiting:
                self._awaiting.remove(symbol)
        elif self._awaiting:
            symbol = self._awaiting.popleft()
        else:
            raise MalformedMessage("gemini: a book snapshot without a symbol, and no book waits for one")
        ts = msg.get("E")
        return [
            BookSnapshot(
                self.venue,
                symbol,
                _text_levels(msg["bids"]),
                _text_levels(msg["asks"]),
                _ns(ts, "E") if ts is not None else None,
                recv_ns,
                _ns(msg["lastUpdateId"], "lastUpdateId"),
            )
        ]

    def _book_ticker(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        ts = msg.get("E")
        return [
            Quote(
                self.venue,
                self._unified(msg["s"]),
                float(msg["b"]),
                float(msg["B"]),
                float(msg["a"]),
                float(msg["A"]),
                _ns(ts, "E") if ts is not None else None,
                recv_ns,
                _ns(msg["u"], "u"),
            )
        ]

    def _trade(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        maker = msg.get("m")
        if maker is True or maker is False:
            side = Side.SELL if maker else Side.BUY  # buyer is maker: the taker sold
        else:
            side = _SIDES[msg.get("S") or msg["side"]]
        ts = msg.get("T")
        if ts is None:
            ts = msg.get("E")
        price = msg["p"]
        qty = msg["q"]
        if price.__class__ is not str or qty.__class__ is not str:
            raise TypeError("trade price and quantity must be text")
        trade_id = msg["t"]
        return [
            Trade(
                self.venue,
                self._unified(msg["s"]),
                float(price),
                float(qty),
                side,
                str(trade_id),
                _ns(ts, "T") if ts is not None else None,
                recv_ns,
            )
        ]


# --- archived v2 ----------------------------------------------------------------------------------

_L2 = "l2"


class GeminiV2Adapter(_GeminiBase):
    """Gemini's archived market data v2, venue id ``"gemini-v2"``. See the
    module docstring (sheet: ``shared/exchanges/gemini.md``, "Archived v2").

    Channels → events (both from the one ``l2`` subscription):

    * ``l2_updates`` → :class:`~wsmux.BookSnapshot` (the first, full book) /
      :class:`~wsmux.BookUpdate` (no ids: integrity UNVERIFIABLE).
    * ``trade`` → :class:`~wsmux.Trade` (taker side, ``trade_id`` =
      ``tid``, else ``event_id``); the trades inside the first
      ``l2_updates`` are history and are dropped.
    """

    venue: ClassVar[str] = "gemini-v2"
    lower_case: ClassVar[bool] = False
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.TRADES})
    default_url: ClassVar[str] = "wss://api.gemini.com/v2/marketdata"
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=50,
        messages_per_second=1.0,
        connections_per_window=12,
        connection_window=60.0,
    )
    # gemini.md: a heartbeat about every 5 s (interval unconfirmed).
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ping_interval=20.0, ws_ping_interval=20.0, silence_timeout=30.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._feeds = SharedFeeds()
        self._handlers: dict[str, Callable[[dict[str, Any], int], Sequence[Event | Diff | RawSnapshot]]] = {
            "l2_updates": self._l2,
            "trade": self._trade,
            "heartbeat": self._nothing,
        }

    def reset(self) -> None:
        self._feeds.clear()

    def book_rule(self, symbol: str) -> SyncRule:
        """Stream snapshot (the first ``l2_updates``), no ids, no checksum:
        UNVERIFIABLE; a crossed book is broken (gemini.md, "Archived v2")."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.NONE)

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        symbols = [native for sub in subscriptions if self._feeds.add(_L2, native := self._native_of(sub), sub.channel)]
        return self._messages("subscribe", symbols)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        symbols = [
            native for sub in subscriptions if self._feeds.remove(_L2, native := self._native_of(sub), sub.channel)
        ]
        return self._messages("unsubscribe", symbols)

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """Unsubscribe and subscribe the symbol's ``l2`` (whatever else it
        carries): the venue then sends the full book again."""
        native = self._native_of(subscription)
        return [*self._messages("unsubscribe", [native]), *self._messages("subscribe", [native])]

    def _messages(self, verb: str, symbols: list[str]) -> list[Outgoing]:
        unique = list(dict.fromkeys(symbols))
        per = self.limits.topics_per_message
        return [
            dumps({"type": verb, "subscriptions": [{"name": _L2, "symbols": unique[i : i + per]}]})
            for i in range(0, len(unique), per)
        ]

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff | RawSnapshot]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        kind: Any = None
        try:
            kind = msg.get("type")
            if kind == "error" or msg.get("result") == "error":
                raise SubscriptionRejected(f"gemini-v2 error: {msg.get('reason', '')} {msg.get('message', '')}".strip())
            handler = self._handlers.get(kind) if kind.__class__ is str else None
            if handler is None:
                raise unknown_message("type", kind, frame)
            return handler(msg, recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"gemini-v2: bad {kind or 'message'}: {exc!r}", frame) from exc

    @staticmethod
    def _nothing(msg: dict[str, Any], recv_ns: int) -> list[Event]:
        return []

    def _l2(self, msg: dict[str, Any], recv_ns: int) -> list[Event | Diff | RawSnapshot]:
        native = msg["symbol"]
        symbol = self._unified(native)
        if not self._feeds.wants(_L2, native, Channel.BOOK):
            return []
        changes = msg["changes"]
        if "trades" not in msg:
            bids, asks = _split_changes(changes)
            return [Diff(symbol, bids, asks, None)]
        # the first l2_updates of a subscription: the full book (its trades are
        # history), converted and sorted by the book's build, in steps; on a
        # live Feed, a deep one is split into sides by those steps too
        if self.reads_rows_later(changes):
            unread_bids, unread_asks = UnreadRows.split(changes, _split_changes)
            return [RawSnapshot(symbol, unread_bids, unread_asks, None)]
        bids, asks = _split_changes(changes)
        return [RawSnapshot(symbol, bids, asks, None)]

    def _trade(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        native = msg["symbol"]
        symbol = self._unified(native)
        if not self._feeds.wants(_L2, native, Channel.TRADES):
            return []
        price = msg["price"]
        qty = msg["quantity"]
        if price.__class__ is not str or qty.__class__ is not str:
            raise TypeError("trade price and quantity must be text")
        trade_id = msg.get("tid")
        if trade_id is None:
            trade_id = msg["event_id"]
        ts = msg.get("timestamp")
        return [
            Trade(
                self.venue,
                symbol,
                float(price),
                float(qty),
                _SIDES[msg["side"]],
                str(trade_id),
                _ns(ts, "timestamp") * _MS if ts is not None else None,
                recv_ns,
            )
        ]
