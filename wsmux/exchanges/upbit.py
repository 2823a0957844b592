"""Upbit WebSocket quotation API: :class:`UpbitAdapter` (venue id ``"upbit"``).

Rules from ``shared/exchanges/upbit.md``; each is restated where it is enforced:

* **Endpoint.** ``wss://api.upbit.com/websocket/v1`` (public quotation). The
  server may send **binary frames carrying UTF-8 JSON**; they are parsed like
  text. No compression.
* **Symbols.** Upbit markets are ``QUOTE-BASE``: unified ``BTC-KRW`` ↔
  ``KRW-BTC``, ``XRP-BTC`` ↔ ``BTC-XRP``, ``BTC-USDT`` ↔ ``USDT-BTC``. Spot only.
* **Subscribing.** One JSON array per request, and **a new request replaces
  the connection's whole set**: ``[{"ticket":..},{"type":"orderbook",
  "codes":[..]},{"type":"trade","codes":[..],"is_only_realtime":true},
  {"format":"SIMPLE"}]``. The adapter therefore keeps the connection's
  subscriptions and every (un)subscribe sends the complete new set (removing
  the last one sends nothing: Upbit has no unsubscribe; data that still
  arrives is delivered like any other and dropped by the multiplexer's
  routing). wsmux asks for the ``SIMPLE``
  format (abbreviated keys, smaller frames) and reads ``DEFAULT`` keys too.
  Errors ``{"error":{"name":..,"message":..}}`` are
  :class:`~wsmux.errors.SubscriptionRejected`.
* **Keep-alive.** Idle connections close after about 120 s: the text
  ``PING`` every 30 s, answered ``{"status":"UP"}``.
* **Book.** Every ``orderbook`` message is the complete top-30 book (30 is
  the default and largest unit; full depth is not available) with no
  sequence and no checksum: the integrity level is
  :attr:`~wsmux.Integrity.UNVERIFIABLE` (nothing can be verified; a lost
  message is healed by the next). The first message of a symbol becomes a
  :class:`~wsmux.BookSnapshot`; each later one is turned into the
  difference with the previous message (changed levels, and size 0 for levels
  that left the top 30), so subscribers see ordinary
  :class:`~wsmux.BookUpdate` events and the book always equals the venue's
  last message. The adapter keeps that previous message per symbol
  (per-connection state, cleared by :meth:`~UpbitAdapter.reset`, and for one
  symbol by :meth:`~UpbitAdapter.resync_messages`, after which the next
  message is a snapshot again).
* **Quotes** come from the same ``orderbook`` stream (its first unit): the
  venue's ``ticker`` has no best bid/ask sizes.
* **Trades.** ``ab`` ``BID`` = the taker bought, ``ASK`` = sold; ``sid``
  (unique, not contiguous) is the trade id; ``ttms`` (ms) the trade time.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, unknown_message
from wsmux.model import BookSnapshot, Channel, Event, Instrument, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BOOK_DEPTH", "BOOK_RULE", "UpbitAdapter"]

BOOK_DEPTH = 30
"""Levels per side of an Upbit ``orderbook`` message (upbit.md: units 1/5/15/30, default 30)."""

BOOK_RULE = SyncRule(SnapshotSource.STREAM, Continuity.NONE)
"""upbit.md, "Book handling": every message is the complete top-30 book; no
sequence, no checksum (integrity UNVERIFIABLE); a crossed book is broken."""

_MS = 1_000_000
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_SIDES = {"BID": Side.BUY, "ASK": Side.SELL}
# (type, code, timestamp, units, ask price, bid price, ask size, bid size,
#  trade price, trade volume, ask/bid, trade timestamp, sequential id) in SIMPLE and DEFAULT
_SIMPLE = ("ty", "cd", "tms", "obu", "ap", "bp", "as", "bs", "tp", "tv", "ab", "ttms", "sid")
_DEFAULT = (
    "type",
    "code",
    "timestamp",
    "orderbook_units",
    "ask_price",
    "bid_price",
    "ask_size",
    "bid_size",
    "trade_price",
    "trade_volume",
    "ask_bid",
    "trade_timestamp",
    "sequential_id",
)

_Side = dict[Any, Any]  # price -> size, as decoded
_GETTERS: dict[tuple[str, ...], tuple[Any, Any]] = {
    keys: (itemgetter(keys[5], keys[7]), itemgetter(keys[4], keys[6])) for keys in (_SIMPLE, _DEFAULT)
}
"""(bid price, bid size) and (ask price, ask size) getters of a unit, per key set."""


class UpbitAdapter(Adapter):
    """Upbit, venue id ``"upbit"``. See the module docstring (sheet:
    ``shared/exchanges/upbit.md``).

    Channels → events: ``BOOK`` (a :class:`~wsmux.BookSnapshot`, then
    :class:`~wsmux.BookUpdate` differences between consecutive top-30
    books), ``QUOTES`` (:class:`~wsmux.Quote` from each book's top),
    ``TRADES`` (:class:`~wsmux.Trade`, taker side, ``trade_id = sid``).
    """

    venue: ClassVar[str] = "upbit"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.TRADES, Channel.QUOTES})
    default_url: ClassVar[str] = "wss://api.upbit.com/websocket/v1"
    default_rest_url: ClassVar[str] = "https://api.upbit.com"
    # upbit.md: connection requests 5/s and 100/min per IP (unconfirmed); the
    # per-connection code cap and client message rate are not in the sheet
    # (wsmux's choice). The whole set goes in one request.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=100,
        messages_per_second=2.0,
        connections_per_window=100,
        connection_window=60.0,
    )
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message="PING", ping_interval=30.0, ws_ping_interval=None, silence_timeout=60.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.rest_url = self.rest_url.rstrip("/")
        self._symbols: dict[str, str] = {}  # KRW-BTC -> BTC-KRW
        # unified symbols subscribed per channel on this connection
        self._wanted: dict[Channel, set[str]] = {Channel.BOOK: set(), Channel.QUOTES: set(), Channel.TRADES: set()}
        self._last: dict[str, tuple[_Side, _Side]] = {}  # symbol -> previous book (bids, asks)
        self._tickets = 0

    # --- symbols ------------------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-KRW`` → ``KRW-BTC`` (spot only)."""
        base, quote, kind = parse_symbol(symbol)
        if kind is not None:
            raise UnknownSymbol(f"upbit lists spot markets only, not {symbol!r}")
        native = f"{quote}-{base}"
        self._symbols[native] = symbol
        return native

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            quote, _, base = native.partition("-") if type(native) is str else ("", "", "")
            symbol = f"{base}-{quote}"
            try:
                parse_symbol(symbol)
            except UnknownSymbol:
                raise MalformedMessage(f"upbit: unknown market code {native!r}") from None
            self._symbols[native] = symbol
        return symbol

    # --- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """The request for the connection's whole new set (see the module docstring)."""
        for sub in subscriptions:
            self.check(sub)
            self._wanted[sub.channel].add(sub.symbol)
        return self._request()

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """The request for the remaining set (nothing when none remains)."""
        for sub in subscriptions:
            self._wanted[sub.channel].discard(sub.symbol)
        return self._request()

    def _request(self) -> list[Outgoing]:
        books = sorted(self.to_native(s) for s in self._wanted[Channel.BOOK] | self._wanted[Channel.QUOTES])
        deals = sorted(self.to_native(s) for s in self._wanted[Channel.TRADES])
        if not books and not deals:
            return []
        self._tickets += 1
        request: list[dict[str, Any]] = [{"ticket": f"wsmux-{self._tickets}"}]
        if books:
            request.append({"type": "orderbook", "codes": books})
        if deals:
            request.append({"type": "trade", "codes": deals, "is_only_realtime": True})
        request.append({"format": "SIMPLE"})
        return [dumps(request)]

    def reset(self) -> None:
        """A new connection: its first book message of every symbol is a snapshot."""
        self._last.clear()

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """Nothing to send: the next ``orderbook`` message of the symbol is
        turned into a snapshot."""
        self._last.pop(subscription.symbol, None)
        return []

    # --- frames ---------------------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        """``orderbook`` and ``trade`` messages (binary or text), errors and
        ``{"status":"UP"}`` (module docstring)."""
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("upbit: invalid JSON", frame) from exc
        if type(msg) is not dict:
            raise MalformedMessage("upbit: expected a JSON object", frame)
        keys = _SIMPLE if "ty" in msg else _DEFAULT
        kind = msg.get(keys[0])
        try:
            if kind == "orderbook":
                return self._on_orderbook(msg, keys, recv_ns)
            if kind == "trade":
                return self._on_trade(msg, keys, recv_ns)
        except MalformedMessage:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"upbit: bad {kind}: {exc!r}", frame) from exc
        if kind is None:
            if msg.get("status") == "UP":
                return []
            error = msg.get("error")
            if type(error) is dict:
                raise SubscriptionRejected(f"upbit error {error.get('name')}: {error.get('message')}")
        raise unknown_message("type", kind, frame)

    def _on_orderbook(self, msg: dict[str, Any], keys: tuple[str, ...], recv_ns: int) -> list[Any]:
        symbol = self._unified(msg[keys[1]])
        ms = msg[keys[2]]
        if type(ms) is not int:
            raise TypeError("timestamp must be an integer")
        units = msg[keys[3]]
        if type(units) is not list:
            raise TypeError("orderbook units must be a list")
        ap, bp, asz, bsz = keys[4], keys[5], keys[6], keys[7]
        # i-th ask paired with i-th bid; a side may run out (size 0 or missing)
        try:  # the usual full units, in C
            getters = _GETTERS[keys]
            bids = dict(map(getters[0], units))
            asks = dict(map(getters[1], units))
        except KeyError:
            bids = {u[bp]: u[bsz] for u in units if bsz in u}
            asks = {u[ap]: u[asz] for u in units if asz in u}
        if 0 in bids.values():
            bids = {p: z for p, z in bids.items() if z}
        if 0 in asks.values():
            asks = {p: z for p, z in asks.items() if z}
        ts = ms * _MS
        out: list[Any] = []
        # what the orderbook stream serves for this symbol: book, quotes or both
        # (both when neither is subscribed: a replay, or data after unsubscribing)
        quotes = symbol in self._wanted[Channel.QUOTES]
        books = symbol in self._wanted[Channel.BOOK]
        if quotes or not books:
            top = units[0] if units else {}
            out.append(
                Quote(
                    self.venue,
                    symbol,
                    float(top.get(bp, "nan")),
                    float(top.get(bsz, "nan")),
                    float(top.get(ap, "nan")),
                    float(top.get(asz, "nan")),
                    ts,
                    recv_ns,
                )
            )
        if quotes and not books:
            return out
        last = self._last.get(symbol)
        self._last[symbol] = (bids, asks)
        if last is None:
            out.append(
                BookSnapshot(
                    self.venue,
                    symbol,
                    tuple(sorted([(float(p), float(s)) for p, s in bids.items()], reverse=True)),
                    tuple(sorted([(float(p), float(s)) for p, s in asks.items()])),
                    ts,
                    recv_ns,
                )
            )
        else:
            out.append(Diff(symbol, _changes(last[0], bids), _changes(last[1], asks), ts))
        return out

    def _on_trade(self, msg: dict[str, Any], keys: tuple[str, ...], recv_ns: int) -> list[Any]:
        symbol = self._unified(msg[keys[1]])
        ms = msg.get(keys[11]) or msg[keys[2]]
        sid = msg[keys[12]]
        if type(ms) is not int or type(sid) is not int:
            raise TypeError("trade timestamp and sequential id must be integers")
        side = _SIDES[msg[keys[10]]]
        return [Trade(self.venue, symbol, float(msg[keys[8]]), float(msg[keys[9]]), side, str(sid), ms * _MS, recv_ns)]

    # --- books and reference data -------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """See :data:`BOOK_RULE`."""
        return BOOK_RULE

    def instruments_request(self) -> HttpRequest | None:
        """``GET /v1/market/all?is_details=true``."""
        return HttpRequest(self.rest_url + "/v1/market/all", (("is_details", "true"),))

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``[{"market": "KRW-BTC", ...}, ...]`` (no tick or lot sizes in this endpoint)."""
        try:
            rows = loads(body)
        except JSONDecodeError as exc:
            raise MalformedMessage("upbit: market list is not JSON", body) from exc
        if type(rows) is not list:
            raise MalformedMessage("upbit: market list is not a list", body)
        out: list[Instrument] = []
        try:
            for row in rows:
                native = row["market"]
                try:
                    symbol = self._unified(native)
                except MalformedMessage:
                    continue
                out.append(Instrument(self.venue, symbol, native, "spot"))
        except _ERRORS as exc:
            raise MalformedMessage(f"upbit: bad market row: {exc!r}", body) from exc
        return out


def _changes(old: _Side, new: _Side) -> list[tuple[Any, Any]]:
    """The levels of ``new`` that differ from ``old``, and ``(price, 0)`` for the
    prices that left (set operations on the dicts' views, in C)."""
    out = list(new.items() - old.items())
    gone = old.keys() - new.keys()
    if gone:
        out += [(p, 0) for p in gone]
    return out
