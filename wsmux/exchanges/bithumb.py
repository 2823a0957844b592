"""Bithumb public market data (the new, Upbit-compatible API): :class:`BithumbAdapter`
(venue id ``"bithumb"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/bithumb.md``
(which cites apidocs.bithumb.com, ccxt and cryptofeed). The sheet recommends
the new API and describes it as Upbit-compatible; where it says so without
giving details, Upbit's reading is taken and flagged. Each rule is restated
where it is enforced:

* **Endpoint.** ``wss://ws-api.bithumb.com/websocket/v1`` (public). The
  legacy ``wss://pubwss.bithumb.com/pub/ws`` is not used: its book deltas
  carry no sequence number and cannot be bridged to a snapshot. Markets list:
  ``GET https://api.bithumb.com/v1/market/all``. No compression; frames may be
  text or binary, both carrying JSON (Upbit sends binary; UNCONFIRMED for
  Bithumb, so both are read).
* **Symbols.** Spot only. Markets are ``QUOTE-BASE``: ``BTC-KRW`` is
  ``KRW-BTC``, ``ETH-BTC`` is ``BTC-ETH``.
* **Subscribing.** One JSON array per request:
  ``[{"ticket":..},{"type":"orderbook","codes":[..]},{"type":"trade","codes":[..],
  "is_only_realtime":true},{"format":"DEFAULT"}]``. **A request replaces the
  connection's whole subscription set**, so the adapter keeps the set and
  every subscribe or unsubscribe sends all of it (an unsubscribe that would
  leave nothing sends nothing: the last channel's data keeps coming, and the
  multiplexer drops what no subscription asked for). Errors (shape UNCONFIRMED, Upbit's read):
  ``{"error":{"name":..,"message":..}}`` → :class:`~wsmux.errors.SubscriptionRejected`.
* **Keep-alive.** The server closes a connection idle for about 120 s; wsmux
  sends the text ``PING`` every 30 s and the server answers
  ``{"status":"UP"}`` (ignored).
* **Limits.** At most 10 connection requests a second per IP (HTTP 429,
  then a 10-minute block on persistent excess). Messages per second and
  codes per connection are not documented: wsmux sends at most 5 requests a
  second and carries at most 100 subscriptions per connection.
* **Book (``orderbook``).** Every message (``stream_type`` ``SNAPSHOT`` or
  ``REALTIME``) is the complete top of the book: ``orderbook_units`` rows of
  ``{ask_price, bid_price, ask_size, bid_size}`` (numbers), best first, 15 or
  30 rows (UNCONFIRMED), and ``timestamp`` (ms). No sequence, no checksum. As
  for Hyperliquid, the first message of a book is a
  :class:`~wsmux.BookSnapshot` and each later one a :class:`~wsmux.book.Diff`
  against the previous (:mod:`wsmux.exchanges._snapshots`). Integrity
  ``UNVERIFIABLE``; a lost message heals with the next; crossed books are
  broken and resynced by sending the subscription set again.
* **Quotes.** From the first ``orderbook_units`` row (the ``orderbook``
  subscription serves books and quotes). A side whose size is 0 is ``nan``.
* **Trades (``trade``).** ``ask_bid`` is the taker's side (``BID`` buy,
  ``ASK`` sell; Upbit's definition, UNCONFIRMED for Bithumb);
  ``sequential_id`` is a unique trade id (not contiguous: no trade-id gap
  check); ``trade_timestamp`` (ms). ``is_only_realtime`` is requested; a
  ``SNAPSHOT`` trade (the last trade before subscribing) is dropped anyway
  (counted in :attr:`BithumbAdapter.history_dropped`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.exchanges._snapshots import SnapshotDiffer
from wsmux.model import Channel, Event, Instrument, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BithumbAdapter", "bithumb_code"]

_MS = 1_000_000
_NAN = math.nan
_TAKER = {"BID": Side.BUY, "ASK": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_TYPES = {Channel.BOOK: "orderbook", Channel.QUOTES: "orderbook", Channel.TRADES: "trade"}


def bithumb_code(symbol: str) -> str:
    """``BTC-KRW`` → ``KRW-BTC`` (bithumb.md: markets are ``QUOTE-BASE``).

    Raises:
        UnknownSymbol: not a spot pair.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is not None:
        raise UnknownSymbol(f"bithumb lists spot pairs only (BASE-QUOTE, e.g. 'BTC-KRW'), not {symbol!r}")
    return f"{quote}-{base}"


class BithumbAdapter(Adapter):
    """Bithumb spot (``wss://ws-api.bithumb.com/websocket/v1``), venue id ``"bithumb"``.

    Channels: books and quotes (``orderbook``, top 15-30 levels), trades. See
    the module docstring for the rules (sheet: ``shared/exchanges/bithumb.md``).

    Attributes:
        history_dropped: ``SNAPSHOT`` trades dropped (trades from before the subscription).
    """

    venue: ClassVar[str] = "bithumb"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.QUOTES, Channel.TRADES})
    default_url: ClassVar[str] = "wss://ws-api.bithumb.com/websocket/v1"
    default_rest_url: ClassVar[str] = "https://api.bithumb.com"
    # bithumb.md, "New API": <= 10 connection requests a second per IP. The rest is wsmux's choice.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=100,
        messages_per_second=5.0,
        connections_per_window=10,
        connection_window=1.0,
    )
    # bithumb.md: idle timeout ~120 s; text PING -> {"status":"UP"}.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message="PING", ping_interval=30.0, ws_ping_interval=None, silence_timeout=120.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # code -> unified (learned at subscribe)
        self._depths: dict[str, int] = {}  # unified -> subscribed book depth
        self.history_dropped = 0
        # Per-connection state:
        self._wanted: dict[tuple[str, str], set[Channel]] = {}  # (type, code) -> channels using it
        self._tickets = 0
        self._books = SnapshotDiffer(self.venue, zero=0)

    def reset(self) -> None:
        self._wanted.clear()
        self._books.forget()

    # --- symbols and books ----------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-KRW`` → ``KRW-BTC`` (see :func:`bithumb_code`)."""
        return bithumb_code(symbol)

    def _unified(self, code: Any) -> str:
        symbol = self._symbols.get(code)
        if symbol is None:
            raise MalformedMessage(f"bithumb: data for a market never subscribed: {code!r}")
        return symbol

    def book_rule(self, symbol: str) -> SyncRule:
        """Bithumb's book rule (bithumb.md, "New API"): every message is a full
        top-N snapshot, turned into diffs by the adapter; no sequence, no
        checksum (``UNVERIFIABLE``); crossed books are broken."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.NONE)

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """The book rule for ``subscription``. A ``depth`` keeps the best
        ``depth`` rows of each message: the adapter cuts every message before
        diffing, so a level moving up into the kept range is sent."""
        if subscription.depth is not None:
            self._depths[subscription.symbol] = subscription.depth
        else:
            self._depths.pop(subscription.symbol, None)
        return self.book_rule(subscription.symbol)

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """Forget the book's last snapshot and send the subscription set again
        (a request replaces the set and starts with a ``SNAPSHOT``)."""
        self._books.forget(subscription.symbol)
        return [self._request()] if self._wanted else []

    # --- reference data ---------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``GET /v1/market/all`` (bithumb.md, "New API")."""
        return HttpRequest(f"{self.rest_url}/v1/market/all")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """The spot pairs of a ``market/all`` response (``[{"market":"KRW-BTC",..}]``).
        Tick sizes follow a price-band table the sheet does not give, so none
        is set; markets with no unified name are left out."""
        try:
            markets = loads(body)
            if markets.__class__ is not list:
                raise TypeError("expected a JSON array of markets")
            out: list[Instrument] = []
            for entry in markets:
                code = entry["market"]
                quote, _, base = code.partition("-")
                symbol = f"{base}-{quote}"
                try:
                    if bithumb_code(symbol) != code:
                        continue
                except UnknownSymbol:
                    continue
                out.append(Instrument(self.venue, symbol, code, "spot"))
            return out
        except (JSONDecodeError, *_ERRORS) as exc:
            raise MalformedMessage(f"bithumb: bad market/all response: {exc!r}", body) from exc

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        changed = False
        for sub in subscriptions:
            self.check(sub)
            code = self.to_native(sub.symbol, sub.channel)
            self._symbols[code] = sub.symbol
            key = (_TYPES[sub.channel], code)
            users = self._wanted.setdefault(key, set())
            changed |= not users
            users.add(sub.channel)
            if sub.channel is Channel.BOOK:
                self._books.forget(sub.symbol)  # the request starts with a SNAPSHOT
                changed = True
        return [self._request()] if changed else []

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        changed = False
        for sub in subscriptions:
            self.check(sub)
            key = (_TYPES[sub.channel], self.to_native(sub.symbol, sub.channel))
            users = self._wanted.get(key)
            if users is None or sub.channel not in users:
                continue
            users.discard(sub.channel)
            if not users:
                del self._wanted[key]
                changed = True
        return [self._request()] if changed and self._wanted else []

    def _request(self) -> str:
        """The request that sets the connection's whole subscription set."""
        self._tickets += 1
        codes: dict[str, list[str]] = {}
        for kind, code in self._wanted:
            codes.setdefault(kind, []).append(code)
        request: list[dict[str, Any]] = [{"ticket": f"wsmux-{self._tickets}"}]
        for kind in sorted(codes):
            entry: dict[str, Any] = {"type": kind, "codes": codes[kind]}
            if kind == "trade":
                entry["is_only_realtime"] = True
            request.append(entry)
        request.append({"format": "DEFAULT"})
        return dumps(request)

    # --- parsing ----------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        kind: Any = msg.get("type")
        try:
            if kind == "orderbook":
                return self._orderbook(msg, recv_ns)
            if kind == "trade":
                return self._trade(msg, recv_ns)
            if kind is None:
                if "error" in msg:
                    error = msg["error"]
                    name = error.get("name") if error.__class__ is dict else None
                    text = error.get("message") if error.__class__ is dict else error
                    raise SubscriptionRejected(f"bithumb refused the request: {name}: {text}"[:300])
                if msg.get("status") == "UP":
                    return []
            raise unknown_message("type", kind, frame)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise MalformedMessage(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"bithumb: bad {kind} message: {exc!r}", frame) from exc

    def _orderbook(self, msg: dict[str, Any], recv_ns: int) -> list[Event | Diff]:
        code = msg["code"]
        symbol = self._unified(code)
        units = msg["orderbook_units"]
        ts = _ms(msg["timestamp"])
        # the channels using this orderbook (both when unknown, e.g. data after the last unsubscribe)
        wanted = self._wanted.get(("orderbook", code)) or _TYPES.keys()
        out: list[Event | Diff] = []
        if Channel.QUOTES in wanted:
            top = units[0] if units else None
            out.append(self._quote(symbol, top, ts, recv_ns))
        if Channel.BOOK in wanted:
            depth = self._depths.get(symbol)
            if depth is not None:  # rows are best first
                units = units[:depth]
            bids = {u["bid_price"]: u["bid_size"] for u in units if u["bid_size"]}
            asks = {u["ask_price"]: u["ask_size"] for u in units if u["ask_size"]}
            event = self._books.update(symbol, bids, asks, ts, recv_ns)
            if event is not None:
                out.append(event)
        return out

    def _quote(self, symbol: str, top: Any, ts: int, recv_ns: int) -> Quote:
        if top is None:
            return Quote(self.venue, symbol, _NAN, _NAN, _NAN, _NAN, ts, recv_ns)
        bid_size = float(top["bid_size"])
        ask_size = float(top["ask_size"])
        return Quote(
            self.venue,
            symbol,
            float(top["bid_price"]) if bid_size else _NAN,
            bid_size if bid_size else _NAN,
            float(top["ask_price"]) if ask_size else _NAN,
            ask_size if ask_size else _NAN,
            ts,
            recv_ns,
        )

    def _trade(self, msg: dict[str, Any], recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(msg["code"])
        side = _TAKER[msg["ask_bid"]]
        trade_id = msg["sequential_id"]
        if trade_id.__class__ is not int and not (trade_id.__class__ is str and trade_id.isdigit()):
            raise TypeError(f"sequential_id must be an integer, not {trade_id!r}")
        price = float(msg["trade_price"])
        size = float(msg["trade_volume"])
        ts = _ms(msg["trade_timestamp"])
        if msg.get("stream_type") == "SNAPSHOT":
            self.history_dropped += 1
            return []
        return [Trade(self.venue, symbol, price, size, side, str(int(trade_id)), ts, recv_ns)]


def _ms(value: Any) -> int:
    """Bithumb millisecond time (an integer) to integer ns."""
    if value.__class__ is not int:
        raise TypeError(f"timestamp must be integer milliseconds, not {value!r}")
    return value * _MS
