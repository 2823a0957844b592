"""Crypto.com Exchange API v1 market data: :class:`CryptocomAdapter` (venue id
``"cryptocom"``; spot, perpetuals and dated futures on one endpoint).

Venue rules come from the wsmux fact sheet ``shared/exchanges/cryptocom.md``;
each is restated where it is enforced:

* **Endpoint.** ``wss://stream.crypto.com/exchange/v1/market`` (the ``v2``
  host of older libraries is legacy). REST ``https://api.crypto.com/exchange/v1``.
* **Symbols.** Spot ``BTC-USDT`` is ``BTC_USDT``; perpetual ``BTC-USD-PERP``
  is ``BTCUSD-PERP``; dated future ``BTC-USD-20250328`` is ``BTCUSD-250328``.
* **Subscribing.** ``{"id", "method": "subscribe", "params": {"channels":
  [...], "book_subscription_type": "SNAPSHOT_AND_UPDATE",
  "book_update_frequency": 10}, "nonce": ms}`` (the nonce is read from the
  injected ``clock``); the reply has ``code`` 0, any other code is a refusal
  (:class:`~wsmux.errors.SubscriptionRejected`). Data frames are
  ``{"id": -1, "method": "subscribe", "code": 0, "result": {"instrument_name",
  "subscription", "channel", "data": [...]}}``.
* **Keep-alive.** The server sends ``{"id": n, "method": "public/heartbeat"}``
  and closes the connection unless it gets ``{"id": n, "method":
  "public/respond-heartbeat"}``: :meth:`parse` puts that answer in
  a :class:`~wsmux.adapter.Reply` (the Feed turns it into a message to send) and the
  Connection sends it. The interval is unconfirmed (about 30 s); a connection
  silent for 65 s is replaced.
* **Book** (``book.{inst}.{depth}``, depth 10 or 50 — 50 unless the
  subscription asks for at most 10; ``SNAPSHOT_AND_UPDATE``, 10 ms). The first
  frame (``channel: "book"``) is the top-N snapshot with update id ``u``; then
  ``book.update`` deltas carry ``u`` and ``pu``: ``pu`` must equal the last
  applied ``u`` (:attr:`~wsmux.book.Continuity.PREV_ID`). When the book does
  not change the venue sends an empty delta that still advances ``u``/``pu``
  (chained like any other). Sizes are absolute, ``"0"`` deletes; the book is
  trimmed to the subscribed depth (whether levels leaving the window are
  deleted is unconfirmed). A broken chain unsubscribes and resubscribes (a new
  snapshot). The ``cs`` checksum's algorithm is undocumented (sheet), so it is
  not verified: the integrity level is SEQUENCE.
* **Trades.** ``s`` is the taker's side (documented 2024-02-12); ``d`` the
  trade id (contiguity unconfirmed); ``tn`` the time in ns where present.
* **Limits.** 100 requests/s per connection, pro-rated from the calendar
  second the socket opened (the venue advises waiting ~1 s before the first
  request; wsmux sends all channels in few messages and paces at 10/s).
  Per-connection subscription caps exist but are not published (wsmux keeps
  200 channels per connection).
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing, Reply
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.exchanges._contracts import ContractSizes
from wsmux.model import BookSnapshot, Candle, Channel, Event, Funding, Instrument, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BOOK_DEPTHS", "CryptocomAdapter", "cryptocom_symbol", "cryptocom_unified"]

BOOK_DEPTHS = (10, 50)
"""Depths of the ``book`` channel (cryptocom.md, "Subscribing")."""

_MS = 1_000_000
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_QUOTES = ("USDT", "USDC", "USD")
_RULES = {depth: SyncRule(SnapshotSource.STREAM, Continuity.PREV_ID, depth=depth) for depth in BOOK_DEPTHS}

_Handler = Callable[[str, Any, int], list[Event | Diff]]


def cryptocom_symbol(symbol: str) -> str:
    """Crypto.com's instrument name of a unified symbol (cryptocom.md, "Endpoints").

    Raises:
        UnknownSymbol: malformed.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is None:
        return f"{base}_{quote}"
    if kind == "PERP":
        return f"{base}{quote}-PERP"
    return f"{base}{quote}-{kind[2:]}"


def cryptocom_unified(name: str) -> str | None:
    """The unified symbol of an instrument name, or ``None`` (inverse of
    :func:`cryptocom_symbol`; the base/quote split of derivatives assumes a
    USD, USDT or USDC quote)."""
    if "_" in name:
        symbol = name.replace("_", "-")
    else:
        pair, _, suffix = name.partition("-")
        quote = next((q for q in _QUOTES if pair.endswith(q) and len(pair) > len(q)), None)
        if quote is None:
            return None
        base = pair[: -len(quote)]
        if suffix == "PERP":
            symbol = f"{base}-{quote}-PERP"
        elif len(suffix) == 6 and suffix.isascii() and suffix.isdigit():
            symbol = f"{base}-{quote}-20{suffix}"
        else:
            return None
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return None
    return symbol


def _int(value: Any, name: str) -> int:
    if value.__class__ is int:
        return int(value)
    if value.__class__ is str and value.isascii() and value.isdigit():
        return int(value)
    raise TypeError(f"{name} must be an integer, not {value!r}")


def _depth_for(sub: Subscription) -> int:
    return BOOK_DEPTHS[0] if sub.depth is not None and sub.depth <= BOOK_DEPTHS[0] else BOOK_DEPTHS[1]


class CryptocomAdapter(Adapter):
    """Crypto.com Exchange v1 market data, venue id ``"cryptocom"`` (sheet
    ``shared/exchanges/cryptocom.md``).

    Channels → events: ``book.{inst}.{depth}`` → book (SEQUENCE-checked);
    ``trade.{inst}`` → :class:`~wsmux.Trade` (taker side, ``trade_id = d``);
    ``ticker.{inst}`` → :class:`~wsmux.Quote`; ``candlestick.1m.{inst}`` →
    :class:`~wsmux.Candle` (``closed`` is never said: False);
    ``funding.{inst}`` (perpetuals) → :class:`~wsmux.Funding`.

    Args:
        url, rest_url: endpoint overrides (mock servers, UAT sandbox).
        clock: where the request ``nonce`` is read (default: the system clock).
    """

    venue: ClassVar[str] = "cryptocom"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.BOOK, Channel.TRADES, Channel.QUOTES, Channel.CANDLES, Channel.FUNDING}
    )
    default_url: ClassVar[str] = "wss://stream.crypto.com/exchange/v1/market"
    default_rest_url: ClassVar[str] = "https://api.crypto.com/exchange/v1"
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=100,
        messages_per_second=10.0,
    )
    heartbeat: ClassVar[Heartbeat] = Heartbeat(ping_message=None, ws_ping_interval=None, silence_timeout=65.0)

    def __init__(self, *, url: str | None = None, rest_url: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.clock = clock if clock is not None else SYSTEM_CLOCK
        self._ids = itertools.count(1)
        self._symbols: dict[str, str] = {}  # instrument name -> unified
        self._contracts = ContractSizes(self.venue)
        self._handlers: dict[str, _Handler] = {
            "book": self._book,
            "book.update": self._book_update,
            "trade": self._trade,
            "ticker": self._ticker,
            "candlestick": self._candlestick,
            "funding": self._funding,
        }

    # --- symbols -------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`cryptocom_symbol`; funding exists only for perpetuals."""
        native = cryptocom_symbol(symbol)
        if channel is Channel.FUNDING and not native.endswith("-PERP"):
            raise UnknownSymbol(f"cryptocom has funding only for perpetuals, not {symbol!r}")
        return native

    def _unified(self, name: Any) -> str:
        symbol = self._symbols.get(name) if name.__class__ is str else None
        if symbol is None:
            symbol = cryptocom_unified(name) if name.__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"cryptocom: unknown instrument {name!r}")
            self._symbols[name] = symbol
        return symbol

    # --- books ---------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """The 50-level book (see :meth:`book_rule_for`)."""
        return _RULES[BOOK_DEPTHS[1]]

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """Stream snapshot, ``pu`` == last ``u`` (PREV_ID), trimmed to 10 levels
        when the subscription asks for at most 10, else 50."""
        return _RULES[_depth_for(subscription)]

    # --- subscriptions -------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _channel(self, sub: Subscription) -> str:
        self.check(sub)
        native = self.to_native(sub.symbol, sub.channel)
        self._symbols[native] = sub.symbol
        channel = sub.channel
        if channel is Channel.BOOK:
            return f"book.{native}.{_depth_for(sub)}"
        if channel is Channel.TRADES:
            return f"trade.{native}"
        if channel is Channel.QUOTES:
            return f"ticker.{native}"
        if channel is Channel.CANDLES:
            return f"candlestick.1m.{native}"
        return f"funding.{native}"

    def _requests(self, method: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        names = [self._channel(sub) for sub in subscriptions]
        nonce = self.clock.time_ns() // _MS
        per = self.limits.topics_per_message
        out: list[Outgoing] = []
        for i in range(0, len(names), per):
            params: dict[str, Any] = {"channels": names[i : i + per]}
            if method == "subscribe" and any(name.startswith("book.") for name in params["channels"]):
                params["book_subscription_type"] = "SNAPSHOT_AND_UPDATE"
                params["book_update_frequency"] = 10
            out.append(dumps({"id": next(self._ids), "method": method, "params": params, "nonce": nonce}))
        return out

    # --- frames --------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        method = msg.get("method")
        channel: Any = None
        try:
            if method == "public/heartbeat":
                # cryptocom.md: answer with the same id or the venue closes the connection
                return [Reply(dumps({"id": msg["id"], "method": "public/respond-heartbeat"}))]
            code = msg.get("code", 0)
            if code != 0:
                raise SubscriptionRejected(f"cryptocom {method} error {code}: {msg.get('message', '')}")
            result = msg.get("result")
            if result is None:
                if method in ("subscribe", "unsubscribe", "public/respond-heartbeat"):
                    return []  # the acknowledgement
                if method.__class__ is str:
                    raise unknown_message("method", method, frame)
                raise MalformedMessage("unknown message type: no method", frame)
            channel = result["channel"]
            handler = self._handlers.get(channel) if channel.__class__ is str else None
            if handler is None:
                raise unknown_message("channel", channel, frame)
            return handler(result["instrument_name"], result["data"], recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise MalformedMessage(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"cryptocom: bad {channel or method} message: {exc!r}", frame) from exc

    def _levels(self, symbol: str, raw: Any) -> Any:
        if raw.__class__ is not list:
            raise TypeError("levels must be a list")
        if self._contracts.known(symbol):
            to_base = self._contracts.to_base
            return [(level[0], to_base(symbol, level[1])) for level in raw]
        return raw  # [price, qty, num_orders]: [0]/[1] are price/size

    def _book(self, name: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(name)
        entry = data[0]
        bids = self._levels(symbol, entry["bids"])
        asks = self._levels(symbol, entry["asks"])
        return [
            BookSnapshot(
                self.venue,
                symbol,
                tuple([(float(level[0]), float(level[1])) for level in bids]),
                tuple([(float(level[0]), float(level[1])) for level in asks]),
                _int(entry["t"], "t") * _MS,
                recv_ns,
                _int(entry["u"], "u"),
            )
        ]

    def _book_update(self, name: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(name)
        entry = data[0]
        update = entry["update"]
        return [
            Diff(
                symbol,
                self._levels(symbol, update.get("bids", [])),
                self._levels(symbol, update.get("asks", [])),
                _int(entry["t"], "t") * _MS,
                _int(entry["u"], "u"),
                None,
                _int(entry["pu"], "pu"),
            )
        ]

    def _trade(self, name: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        out: list[Event | Diff] = []
        for item in data:
            symbol = self._unified(item.get("i", name))
            tn = item.get("tn")
            out.append(
                Trade(
                    self.venue,
                    symbol,
                    float(item["p"]),
                    self._contracts.to_base(symbol, item["q"]),
                    _SIDES[item["s"]],
                    str(item["d"]),
                    _int(tn, "tn") if tn is not None else _int(item["t"], "t") * _MS,
                    recv_ns,
                )
            )
        return out

    def _ticker(self, name: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        out: list[Event | Diff] = []
        to_base = self._contracts.to_base
        for item in data:
            symbol = self._unified(item.get("i", name))
            bid_size = item.get("bs")
            ask_size = item.get("ks")
            out.append(
                Quote(
                    self.venue,
                    symbol,
                    float(item["b"]),
                    float("nan") if bid_size is None else to_base(symbol, bid_size),
                    float(item["k"]),
                    float("nan") if ask_size is None else to_base(symbol, ask_size),
                    _int(item["t"], "t") * _MS,
                    recv_ns,
                )
            )
        return out

    def _candlestick(self, name: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(name)
        return [
            Candle(
                self.venue,
                symbol,
                "1m",
                _int(item["t"], "t") * _MS,
                float(item["o"]),
                float(item["h"]),
                float(item["l"]),
                float(item["c"]),
                self._contracts.to_base(symbol, item["v"]),
                False,
                None,
                recv_ns,
            )
            for item in data
        ]

    def _funding(self, name: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(name)
        return [
            Funding(self.venue, symbol, float(item["v"]), None, None, _int(item["t"], "t") * _MS, recv_ns)
            for item in data
        ]

    # --- reference data ------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/public/get-instruments``."""
        return HttpRequest(self.rest_url + "/public/get-instruments")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Tradable spot pairs (``CCY_PAIR``), perpetuals (``PERPETUAL_SWAP``) and
        futures (``FUTURE``), with ``price_tick_size``, ``qty_tick_size`` and
        ``contract_size`` (``None`` where it is 1 or absent)."""
        try:
            msg = loads(body)
        except JSONDecodeError as exc:
            raise MalformedMessage("cryptocom: get-instruments is not JSON", body) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("cryptocom: get-instruments is not an object", body)
        if msg.get("code", 0) != 0:
            raise RemoteError(f"cryptocom get-instruments error {msg.get('code')}: {msg.get('message', '')}")
        kinds = {"CCY_PAIR": "spot", "PERPETUAL_SWAP": "perp", "FUTURE": "future"}
        out: list[Instrument] = []
        try:
            for row in msg["result"]["data"]:
                kind = kinds.get(row.get("inst_type"))
                if kind is None or row.get("tradable") is False:
                    continue
                native = str(row["symbol"])
                symbol = cryptocom_unified(native)
                if symbol is None:
                    continue
                if kind == "future" and row.get("expiry_timestamp_ms"):
                    expiry = _int(row["expiry_timestamp_ms"], "expiry_timestamp_ms") / 1000
                    day = datetime.datetime.fromtimestamp(expiry, datetime.UTC)
                    if symbol[-8:] != f"{day:%Y%m%d}":
                        continue  # the name and the expiry disagree: do not guess
                size = row.get("contract_size")
                contract = float(size) if size is not None and kind != "spot" and float(size) != 1.0 else None
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        native,
                        kind,
                        float(row["price_tick_size"]),
                        float(row["qty_tick_size"]),
                        contract,
                    )
                )
        except _ERRORS as exc:
            raise MalformedMessage(f"cryptocom: bad get-instruments: {exc!r}", body) from exc
        return out

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn contract sizes other than 1 (sizes then in base units)."""
        self._contracts.learn(instruments)
