"""bitFlyer Lightning Realtime API: :class:`BitflyerAdapter` (venue id ``"bitflyer"``).

Rules from ``shared/exchanges/bitflyer.md`` (public client code and samples;
bitFlyer's own reference was not available to the sheet, so limits and
keep-alive are unconfirmed). Each is restated where it is enforced:

* **Endpoint.** ``wss://ws.lightstream.bitflyer.com/json-rpc``, JSON-RPC 2.0,
  no compression.
* **Symbols.** Spot ``BTC-JPY`` ↔ ``BTC_JPY`` (also ``ETH-BTC`` ↔ ``ETH_BTC``
  ...); the ``FX_BTC_JPY`` CFD (no expiry) is ``BTC-JPY-PERP``. Dated futures
  (``BTCJPY_MAT1WK`` aliases) are not offered: their product codes change
  with each expiry and the sheet gives no mapping.
* **Subscribing.** One channel per request: ``{"jsonrpc":"2.0","id":N,
  "method":"subscribe","params":{"channel":"lightning_ticker_BTC_JPY"}}``,
  answered ``{"jsonrpc":"2.0","id":N,"result":true}``; ``result`` false or an
  ``error`` object is a :class:`~wsmux.errors.SubscriptionRejected`. Data
  arrives as ``{"method":"channelMessage","params":{"channel":..,
  "message":..}}``.
* **Keep-alive.** No application heartbeat is documented: WebSocket pings
  every 20 s, and a connection silent for 60 s is dead (unconfirmed).
* **Book.** A book subscription is two channels: ``lightning_board_snapshot_{p}``
  (the full board, re-sent every few seconds) and ``lightning_board_{p}``
  (deltas: ``{"price", "size"}`` objects, absolute sizes, ``0`` deletes).
  Deltas before the first snapshot are dropped and **every snapshot replaces
  the whole book** (re-anchoring is the venue's only resync). There is no
  sequence number and no checksum, so a lost delta cannot be detected
  between two snapshots: the integrity level is
  :attr:`~wsmux.Integrity.UNVERIFIABLE`. A crossed board breaks the book
  until the next snapshot (the sheet says itayose auctions may cross it
  transiently, unconfirmed; wsmux treats every crossed board as broken).
* **Trades** (``lightning_executions_{p}``): a list of executions; ``side``
  is the taker's (``""`` for itayose fills: no side); ``id`` is the trade id
  (increasing, contiguity unconfirmed, so not used as a sequence);
  ``exec_date`` ISO-8601 with 100 ns digits, read exactly.
* **Quotes** (``lightning_ticker_{p}``): best bid/ask and sizes, ``seq =
  tick_id``.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, unknown_message
from wsmux.model import BookSnapshot, Channel, Event, Instrument, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BOOK_RULE", "BitflyerAdapter", "iso_ns"]

BOOK_RULE = SyncRule(SnapshotSource.STREAM, Continuity.NONE)
"""bitflyer.md, "Book handling": stream snapshots re-sent periodically, deltas
without ids or checksum; crossed boards are broken. Integrity UNVERIFIABLE."""

_SNAPSHOT = "lightning_board_snapshot_"
_BOARD = "lightning_board_"
_EXECUTIONS = "lightning_executions_"
_TICKER = "lightning_ticker_"
_PREFIXES = (_SNAPSHOT, _BOARD, _EXECUTIONS, _TICKER)  # snapshot before board: it is longer
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL, "": None}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_S = 1_000_000_000
_seconds_cache: dict[str, int] = {}


def iso_ns(text: str) -> int:
    """``2021-12-12T23:05:29.9692063Z`` → ns since the epoch, exactly (up to 9
    fraction digits; the ``Z`` may be missing, bitFlyer's REST omits it).

    Raises:
        ValueError: not such a timestamp.
    """
    if text[-1:] == "Z":
        text = text[:-1]
    head = text[:19]
    seconds = _seconds_cache.get(head)
    if seconds is None:
        if len(head) != 19 or head[4] != "-" or head[7] != "-" or head[10] != "T" or not head.isascii():
            raise ValueError(f"not an ISO-8601 UTC timestamp: {text!r}")
        seconds = calendar.timegm(
            (int(head[:4]), int(head[5:7]), int(head[8:10]), int(head[11:13]), int(head[14:16]), int(head[17:19]))
        )
        if len(_seconds_cache) > 4096:
            _seconds_cache.clear()
        _seconds_cache[head] = seconds
    fraction = text[20:]
    if len(text) > 19 and (text[19] != "." or not fraction.isdigit() or not fraction.isascii() or len(fraction) > 9):
        raise ValueError(f"bad fraction in {text!r}")
    return seconds * _S + (int(fraction.ljust(9, "0")) if fraction else 0)


def _pairs(raw: Any) -> list[tuple[Any, Any]]:
    """``[{"price": p, "size": s}, ...]`` → ``[(p, s), ...]`` (not converted)."""
    return [(level["price"], level["size"]) for level in raw]


class BitflyerAdapter(Adapter):
    """bitFlyer Lightning, venue id ``"bitflyer"``. See the module docstring
    (sheet: ``shared/exchanges/bitflyer.md``).

    Channels → events: ``BOOK`` (a :class:`~wsmux.BookSnapshot` per board
    snapshot, :class:`~wsmux.BookUpdate` per delta, no ids), ``TRADES``
    (:class:`~wsmux.Trade`, taker side, ``trade_id = id``), ``QUOTES``
    (:class:`~wsmux.Quote`, ``seq = tick_id``).
    """

    venue: ClassVar[str] = "bitflyer"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.TRADES, Channel.QUOTES})
    default_url: ClassVar[str] = "wss://ws.lightstream.bitflyer.com/json-rpc"
    default_rest_url: ClassVar[str] = "https://api.bitflyer.com"
    # bitflyer.md: subscription and message caps not found; one channel per
    # request. wsmux's conservative choice.
    limits: ClassVar[Limits] = Limits(streams_per_connection=50, topics_per_message=1, messages_per_second=5.0)
    heartbeat: ClassVar[Heartbeat] = Heartbeat(ping_message=None, ws_ping_interval=20.0, silence_timeout=60.0)

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.rest_url = self.rest_url.rstrip("/")
        self._symbols: dict[str, str] = {}  # BTC_JPY -> BTC-JPY
        self._next_id = 1
        self._requests: dict[int, tuple[str, str]] = {}  # id -> (method, channel)
        self._handlers: dict[str, Callable[[str, Any, int], list[Any]]] = {
            _SNAPSHOT: self._on_snapshot,
            _BOARD: self._on_board,
            _EXECUTIONS: self._on_executions,
            _TICKER: self._on_ticker,
        }

    # --- symbols ------------------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-JPY`` → ``BTC_JPY``; ``BTC-JPY-PERP`` → ``FX_BTC_JPY``."""
        base, quote, kind = parse_symbol(symbol)
        if kind is None:
            native = f"{base}_{quote}"
        elif kind == "PERP":
            native = f"FX_{base}_{quote}"
        else:
            raise UnknownSymbol(f"bitflyer: dated futures are not offered ({symbol!r})")
        self._symbols[native] = symbol
        return native

    def _unified(self, native: str) -> str:
        symbol = self._symbols.get(native)
        if symbol is not None:
            return symbol
        fx = native.startswith("FX_")
        base, _, quote = (native[3:] if fx else native).partition("_")
        symbol = f"{base}-{quote}-PERP" if fx else f"{base}-{quote}"
        try:
            parse_symbol(symbol)
        except UnknownSymbol:
            raise MalformedMessage(f"bitflyer: unknown product code {native!r}") from None
        self._symbols[native] = symbol
        return symbol

    def channel_names(self, subscription: Subscription) -> list[str]:
        """The channels of ``subscription`` (two for a book: snapshot and deltas)."""
        self.check(subscription)
        native = self.to_native(subscription.symbol, subscription.channel)
        if subscription.channel is Channel.BOOK:
            return [_SNAPSHOT + native, _BOARD + native]
        return [(_EXECUTIONS if subscription.channel is Channel.TRADES else _TICKER) + native]

    # --- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._messages("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._messages("unsubscribe", subscriptions)

    def _messages(self, method: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sub in subscriptions:
            for channel in self.channel_names(sub):
                req_id = self._next_id
                self._next_id += 1
                self._requests[req_id] = (method, channel)
                out.append(dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": {"channel": channel}}))
        return out

    def reset(self) -> None:
        """Forget the outstanding requests of the old connection."""
        self._requests.clear()

    # --- frames ---------------------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        """``channelMessage`` notifications and JSON-RPC results (module docstring)."""
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("bitflyer: invalid JSON", frame) from exc
        if type(msg) is not dict:
            raise MalformedMessage("bitflyer: expected a JSON object", frame)
        method = msg.get("method")
        if method != "channelMessage":
            if method is None and "id" in msg:
                return self._on_reply(msg, frame)
            raise unknown_message("method", method, frame)
        try:
            params = msg["params"]
            channel = params["channel"]
            for prefix in _PREFIXES:
                if channel.startswith(prefix):
                    return self._handlers[prefix](self._unified(channel[len(prefix) :]), params["message"], recv_ns)
        except MalformedMessage:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"bitflyer: bad channelMessage: {exc!r}", frame) from exc
        raise unknown_message("channel", channel, frame)

    def _on_reply(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        req_id = msg.get("id")
        request = self._requests.pop(req_id, None) if type(req_id) is int else None
        what = f"{request[0]} {request[1]}" if request else f"request id {req_id!r}"
        if msg.get("result") is True and "error" not in msg:
            return []
        error = msg.get("error")
        if error is None and "result" not in msg:
            raise MalformedMessage("bitflyer: reply without result or error", frame)
        raise SubscriptionRejected(f"bitflyer rejected {what}: {error if error is not None else msg.get('result')}")

    # Handlers (hot path); a wrong shape raises, which parse() wraps.

    def _on_snapshot(self, symbol: str, message: Any, recv_ns: int) -> list[Any]:
        bids = sorted([(float(p), float(s)) for p, s in _pairs(message["bids"]) if s], reverse=True)
        asks = sorted([(float(p), float(s)) for p, s in _pairs(message["asks"]) if s])
        return [BookSnapshot(self.venue, symbol, tuple(bids), tuple(asks), None, recv_ns)]

    def _on_board(self, symbol: str, message: Any, recv_ns: int) -> list[Any]:
        return [Diff(symbol, _pairs(message["bids"]), _pairs(message["asks"]), None)]

    def _on_executions(self, symbol: str, message: Any, recv_ns: int) -> list[Any]:
        if type(message) is not list:
            raise TypeError("executions must be a list")
        out: list[Event] = []
        for execution in message:
            trade_id = execution["id"]
            if type(trade_id) is not int:
                raise TypeError("id must be an integer")
            out.append(
                Trade(
                    self.venue,
                    symbol,
                    float(execution["price"]),
                    float(execution["size"]),
                    _SIDES[execution["side"]],
                    str(trade_id),
                    iso_ns(execution["exec_date"]),
                    recv_ns,
                )
            )
        return out

    def _on_ticker(self, symbol: str, message: Any, recv_ns: int) -> list[Any]:
        tick_id = message.get("tick_id")
        if tick_id is not None and type(tick_id) is not int:
            raise TypeError("tick_id must be an integer")
        return [
            Quote(
                self.venue,
                symbol,
                float(message["best_bid"]),
                float(message["best_bid_size"]),
                float(message["best_ask"]),
                float(message["best_ask_size"]),
                iso_ns(message["timestamp"]),
                recv_ns,
                tick_id,
            )
        ]

    # --- books and reference data -------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """See :data:`BOOK_RULE`."""
        return BOOK_RULE

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """Subscribe the snapshot channel again (the next periodic snapshot
        would re-anchor the book too; asking again may bring it sooner)."""
        native = self.to_native(subscription.symbol, Channel.BOOK)
        req_id = self._next_id
        self._next_id += 1
        channel = _SNAPSHOT + native
        self._requests[req_id] = ("subscribe", channel)
        return [dumps({"jsonrpc": "2.0", "id": req_id, "method": "subscribe", "params": {"channel": channel}})]

    def instruments_request(self) -> HttpRequest | None:
        """``GET /v1/getmarkets``."""
        return HttpRequest(self.rest_url + "/v1/getmarkets")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``[{"product_code", "market_type", "alias"?}, ...]``: spot and the FX CFD
        (no tick or lot sizes: the endpoint has none)."""
        try:
            rows = loads(body)
        except JSONDecodeError as exc:
            raise MalformedMessage("bitflyer: getmarkets is not JSON", body) from exc
        if type(rows) is not list:
            raise MalformedMessage("bitflyer: getmarkets is not a list", body)
        out: list[Instrument] = []
        try:
            for row in rows:
                market = row.get("market_type")
                native = row["product_code"]
                if market not in ("Spot", "FX"):
                    continue
                try:
                    symbol = self._unified(native)
                except MalformedMessage:
                    continue
                out.append(Instrument(self.venue, symbol, native, "spot" if market == "Spot" else "perp"))
        except _ERRORS as exc:
            raise MalformedMessage(f"bitflyer: bad getmarkets row: {exc!r}", body) from exc
        return out
