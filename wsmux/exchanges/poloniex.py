"""Poloniex public market data, the current v3 API: :class:`PoloniexAdapter`
(spot, venue id ``"poloniex"``) and :class:`PoloniexFuturesAdapter` (futures
V3 perpetuals, venue id ``"poloniex-futures"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/poloniex.md``
(api-docs.poloniex.com, cryptofeed's 2022 recording, gocryptotrader/ccxt
futures V3 code; verified 2026-12). Each rule is restated where it is enforced:

* **Endpoints.** Spot ``wss://ws.poloniex.com/ws/public``; futures V3
  ``wss://ws.poloniex.com/ws/v3/public`` (futures v1/v2 went offline
  2024-11-30; the legacy numeric-channel API is retired). Symbols: spot
  ``BTC_USDT``, futures ``BTC_USDT_PERP``.
* **Subscribing.** ``{"event":"subscribe","channel":[..],"symbols":[..]}``
  (``book`` also takes ``"depth"``); ack ``{"event":"subscribe","channel":..,
  "symbols":[..]}``; ``{"event":"error","message":..}`` is a refusal
  (:class:`~wsmux.errors.SubscriptionRejected`). Data frames are
  ``{"channel":..,"data":[..]}`` (books add ``"action"``).
* **Keep-alive.** The server ends a session that sent nothing for 30 s
  without warning: wsmux sends ``{"event":"ping"}`` every 20 s; the answer
  ``{"event":"pong"}`` is ignored. At most 500 requests per second per
  connection and 2000 connections per IP per endpoint. No compression.
* **Book (``book_lv2``).** A ``snapshot`` (which may come again at any time
  and replaces the book), then ``update``\\ s with absolute sizes (``"0"``
  removes). Each message names the id it follows — spot ``lastId``, futures
  ``lid`` — which must equal the previous message's ``id``
  (:attr:`~wsmux.book.Continuity.PREV_ID`); a break resubscribes. The feed
  carries the top 20 levels (futures: documented; spot: unconfirmed), and a
  level pushed beyond them gets no delete, so books are trimmed to 20 — the
  safe reading for both: a trimmed book never holds a stale level. No
  checksum: the integrity level is ``SEQUENCE``.
* **Quotes** come from the ``book`` channel at depth 5 (a top-of-book
  snapshot per push); **trades** carry the taker side (spot ``takerSide``,
  futures ``side``).

**Units.** Spot sizes are base units (trades use ``quantity``, not the quote
notional ``amount``). Futures sizes are *contracts*; once
:meth:`PoloniexFuturesAdapter.use_instruments` has learnt an instrument's
contract value (``ctVal`` from ``/v3/market/allInstruments``, field names
unconfirmed), book, quote and trade sizes are reported in base units; an
inverse contract (``ctType`` ``"INVERSE"``) stays in contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.model import BookSnapshot, Candle, Channel, Event, Funding, Instrument, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "BOOK_DEPTH",
    "PoloniexAdapter",
    "PoloniexFuturesAdapter",
    "poloniex_symbol",
    "poloniex_unified",
]

BOOK_DEPTH = 20
"""Levels per side of ``book_lv2`` (poloniex.md, "Book sync")."""
QUOTE_DEPTH = 5
"""Depth of the ``book`` channel subscribed for quotes."""

_MS = 1_000_000  # ns per ms
_NAN = float("nan")
_SIDES = {"buy": Side.BUY, "sell": Side.SELL, "BUY": Side.BUY, "SELL": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_QUIET_EVENTS = frozenset({"subscribe", "unsubscribe", "pong", "unsubscribe_all", "list_subscriptions"})
_CANDLE_INTERVAL = "1m"

_Handler = Callable[[Any, Any, int], Sequence[Event | Diff]]


def poloniex_symbol(symbol: str, *, futures: bool) -> str:
    """Poloniex symbol: spot ``BTC-USDT`` → ``BTC_USDT``; futures
    ``BTC-USDT-PERP`` → ``BTC_USDT_PERP`` (poloniex.md, "Endpoints").

    Raises:
        UnknownSymbol: malformed, or not of the adapter's market (futures V3
            lists perpetuals only).
    """
    base, quote, kind = parse_symbol(symbol)
    if futures:
        if kind != "PERP":
            raise UnknownSymbol(f"poloniex-futures lists perpetuals (BASE-QUOTE-PERP), not {symbol!r}")
        return f"{base}_{quote}_PERP"
    if kind is not None:
        raise UnknownSymbol(f"poloniex (spot) lists spot symbols only, not {symbol!r}; use poloniex-futures")
    return f"{base}_{quote}"


def poloniex_unified(native: str) -> str | None:
    """The unified symbol of a Poloniex symbol, or ``None``."""
    parts = native.split("_")
    if len(parts) == 2:
        symbol = f"{parts[0]}-{parts[1]}"
    elif len(parts) == 3 and parts[2] == "PERP":
        symbol = f"{parts[0]}-{parts[1]}-PERP"
    else:
        return None
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return None
    return symbol


def _ms(value: Any) -> int:
    if value.__class__ is int:
        return value * _MS
    if value.__class__ is str and value.isdigit():
        return int(value) * _MS
    raise TypeError(f"bad timestamp {value!r}")


def _id(value: Any, name: str) -> int:
    if value.__class__ is int:
        return value
    raise TypeError(f"{name} must be an integer, not {value!r}")


def _side(raw: Any) -> Any:
    if raw.__class__ is not list:
        raise TypeError("book side must be a list")
    return raw


class _PoloniexBase(Adapter):
    """The v3 WebSocket protocol shared by spot and futures."""

    default_rest_url: ClassVar[str] = "https://api.poloniex.com"
    # poloniex.md, "Keep-alive / limits": <= 500 requests/s per connection,
    # <= 2000 connections per IP per endpoint. Topics per connection and per
    # message are wsmux's choice.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=50,
        messages_per_second=50.0,
        connections_per_window=2000,
        connection_window=60.0,
    )
    # poloniex.md: a message or ping at least every 30 s, else the session ends.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"event":"ping"}', ping_interval=20.0, ws_ping_interval=None, silence_timeout=45.0
    )
    _futures: ClassVar[bool]
    _channels: ClassVar[dict[Channel, str]]
    _symbol_key: ClassVar[str]
    _prev_key: ClassVar[str]

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # native -> unified
        self._contract_values: dict[str, float] = {}  # native -> base units per contract
        self._handlers: dict[str, _Handler] = {
            "book_lv2": self._book_lv2,
            "book": self._quote,
            "trades": self._trades,
            "candles_minute_1": self._candles,
            "funding_rate": self._funding,
        }

    # --- symbols ------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`poloniex_symbol`."""
        return poloniex_symbol(symbol, futures=self._futures)

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            symbol = poloniex_unified(native) if native.__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}")
            self._symbols[native] = symbol
        return symbol

    # --- books ----------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """``book_lv2`` (poloniex.md, "Book sync"): stream snapshot, each
        message's previous id equals the last ``id`` (PREV_ID), 20 levels per
        side, no checksum."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.PREV_ID, depth=BOOK_DEPTH)

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _requests(self, event: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        by_channel: dict[str, list[str]] = {}
        for sub in subscriptions:
            self.check(sub)
            native = self.to_native(sub.symbol, sub.channel)
            self._symbols[native] = sub.symbol
            by_channel.setdefault(self._channels[sub.channel], []).append(native)
        per = self.limits.topics_per_message
        out: list[Outgoing] = []
        for channel, symbols in by_channel.items():
            for i in range(0, len(symbols), per):
                body: dict[str, Any] = {"event": event, "channel": [channel], "symbols": symbols[i : i + per]}
                if channel == "book":
                    body["depth"] = QUOTE_DEPTH
                out.append(dumps(body))
        return out

    # --- parsing --------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        channel: Any = None
        try:
            data = msg.get("data")
            if data is None:
                return self._event(msg, frame)
            channel = msg["channel"]
            handler = self._handlers.get(channel) if channel.__class__ is str else None
            if handler is None:
                raise unknown_message("channel", channel, frame)
            if data.__class__ is not list:
                raise TypeError("data must be a list")
            return handler(msg, data, recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise exc.__class__(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad {channel or 'event'} message: {exc!r}", frame) from exc

    def _event(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        event = msg.get("event")
        if event in _QUIET_EVENTS:
            return []
        if event == "error":
            raise SubscriptionRejected(f"{self.venue} error: {msg.get('message', '')}")
        raise unknown_message("event", event, frame)

    def _book_lv2(self, msg: Any, data: Any, recv_ns: int) -> list[Event | Diff]:
        action = msg["action"]
        if action == "update":
            snapshot = False
        elif action == "snapshot":
            snapshot = True
        else:
            raise unknown_message("book_lv2 action", action)
        out: list[Event | Diff] = []
        prev_key = self._prev_key
        for entry in data:
            native = entry[self._symbol_key]
            symbol = self._unified(native)
            seq = _id(entry["id"], "id")
            ts = _ms(entry["ts"])
            bids = _side(entry["bids"])
            asks = _side(entry["asks"])
            contract = self._contract_values.get(native)
            if contract is not None:  # contracts -> base units; (price, size) pairs, converted by the book sync
                bids = [(level[0], float(level[1]) * contract) for level in bids]
                asks = [(level[0], float(level[1]) * contract) for level in asks]
            if snapshot:
                out.append(
                    BookSnapshot(
                        self.venue,
                        symbol,
                        tuple([(float(level[0]), float(level[1])) for level in bids]),
                        tuple([(float(level[0]), float(level[1])) for level in asks]),
                        ts,
                        recv_ns,
                        seq,
                    )
                )
            else:
                # the decoded levels go to the book sync as they are
                out.append(Diff(symbol, bids, asks, ts, seq, None, _id(entry[prev_key], prev_key)))
        return out

    def _quote(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        out: list[Event] = []
        for entry in data:
            native = entry[self._symbol_key]
            bids = entry["bids"]
            asks = entry["asks"]
            bp, bs = (float(bids[0][0]), self._base(native, bids[0][1])) if bids else (_NAN, _NAN)
            ap, az = (float(asks[0][0]), self._base(native, asks[0][1])) if asks else (_NAN, _NAN)
            seq = entry.get("id")
            out.append(
                Quote(
                    self.venue,
                    self._unified(native),
                    bp,
                    bs,
                    ap,
                    az,
                    _ms(entry["ts"]),
                    recv_ns,
                    _id(seq, "id") if seq is not None else None,
                )
            )
        return out

    def _base(self, native: str, size: Any) -> float:
        contract = self._contract_values.get(native)
        return float(size) * contract if contract is not None else float(size)

    def _trades(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        raise NotImplementedError

    def _candles(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        raise unknown_message("channel", msg["channel"])

    def _funding(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        raise unknown_message("channel", msg["channel"])


class PoloniexAdapter(_PoloniexBase):
    """Poloniex spot (v3 WebSocket), venue id ``"poloniex"``. See the module
    docstring for the venue rules (sheet: ``shared/exchanges/poloniex.md``).

    Channels → events:

    * ``book_lv2`` → :class:`BookSnapshot` / :class:`BookUpdate` (``seq =
      id``, ``prev_seq = lastId``).
    * ``book`` (depth 5) → :class:`Quote` (``seq = id``).
    * ``trades`` → :class:`Trade` (``takerSide``, ``quantity`` in base units,
      ``trade_id = id``).
    * ``candles_minute_1`` → :class:`Candle` (``startTime``; ``quantity`` is
      the base volume).
    """

    venue: ClassVar[str] = "poloniex"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.QUOTES, Channel.TRADES, Channel.CANDLES})
    default_url: ClassVar[str] = "wss://ws.poloniex.com/ws/public"
    _futures: ClassVar[bool] = False
    _channels: ClassVar[dict[Channel, str]] = {
        Channel.BOOK: "book_lv2",
        Channel.QUOTES: "book",
        Channel.TRADES: "trades",
        Channel.CANDLES: "candles_minute_1",
    }
    _symbol_key: ClassVar[str] = "symbol"
    _prev_key: ClassVar[str] = "lastId"

    def _trades(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        venue = self.venue
        unified = self._unified
        return [
            Trade(
                venue,
                unified(entry["symbol"]),
                float(entry["price"]),
                float(entry["quantity"]),  # poloniex.md: base size (``amount`` is the quote notional)
                _SIDES[entry["takerSide"]],
                str(entry["id"]),
                _ms(entry["ts"]),
                recv_ns,
            )
            for entry in data
        ]

    def _candles(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        """Spot candle items: ``symbol``, ``open``, ``high``, ``low``,
        ``close``, ``quantity`` (base volume), ``startTime``, ``closeTime``,
        ``ts``; the forming candle is pushed repeatedly (never closed)."""
        return [
            Candle(
                self.venue,
                self._unified(entry["symbol"]),
                _CANDLE_INTERVAL,
                _ms(entry["startTime"]),
                float(entry["open"]),
                float(entry["high"]),
                float(entry["low"]),
                float(entry["close"]),
                float(entry["quantity"]),
                False,
                _ms(entry["ts"]),
                recv_ns,
            )
            for entry in data
        ]

    def instruments_request(self) -> HttpRequest | None:
        """``GET /markets`` (poloniex.md, "Endpoints")."""
        return HttpRequest(f"{self.rest_url}/markets")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``symbol``, ``symbolTradeLimit.{priceScale, quantityScale}``."""
        out: list[Instrument] = []
        try:
            items = loads(body)
            if items.__class__ is not list:
                raise MalformedMessage(f"{self.venue}: instruments request failed: {str(items)[:200]}")
            for item in items:
                native = item["symbol"]
                symbol = poloniex_unified(native)
                if symbol is None or "-PERP" in symbol:
                    continue
                self._symbols[native] = symbol
                limits = item["symbolTradeLimit"]
                tick = 10.0 ** -int(limits["priceScale"])
                lot = 10.0 ** -int(limits["quantityScale"])
                out.append(Instrument(self.venue, symbol, native, "spot", tick, lot))
        except WsmuxError:
            raise
        except (JSONDecodeError, *_ERRORS) as exc:
            raise MalformedMessage(f"{self.venue}: bad instruments answer: {exc!r}") from exc
        return out


class PoloniexFuturesAdapter(_PoloniexBase):
    """Poloniex futures V3 perpetuals, venue id ``"poloniex-futures"``.

    Channels → events:

    * ``book_lv2`` → :class:`BookSnapshot` / :class:`BookUpdate` (``seq = id``,
      ``prev_seq = lid``; symbol field ``s``).
    * ``book`` (depth 5) → :class:`Quote`.
    * ``trades`` → :class:`Trade` (``side`` taker side, ``px``, ``qty``
      contracts; field names unconfirmed).
    * ``funding_rate`` → :class:`Funding` (``fR``, next funding time ``fT``;
      channel and field names unconfirmed).
    """

    venue: ClassVar[str] = "poloniex-futures"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.QUOTES, Channel.TRADES, Channel.FUNDING})
    default_url: ClassVar[str] = "wss://ws.poloniex.com/ws/v3/public"
    _futures: ClassVar[bool] = True
    _channels: ClassVar[dict[Channel, str]] = {
        Channel.BOOK: "book_lv2",
        Channel.QUOTES: "book",
        Channel.TRADES: "trades",
        Channel.FUNDING: "funding_rate",
    }
    _symbol_key: ClassVar[str] = "s"
    _prev_key: ClassVar[str] = "lid"

    def _trades(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        venue = self.venue
        unified = self._unified
        return [
            Trade(
                venue,
                unified(entry["s"]),
                float(entry["px"]),
                self._base(entry["s"], entry["qty"]),
                _SIDES[entry["side"]],
                str(entry["id"]),
                _ms(entry["ts"]),
                recv_ns,
            )
            for entry in data
        ]

    def _funding(self, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        out: list[Event] = []
        for entry in data:
            next_time = entry.get("fT")
            out.append(
                Funding(
                    self.venue,
                    self._unified(entry["s"]),
                    float(entry["fR"]),
                    _ms(next_time) if next_time is not None else None,
                    None,
                    _ms(entry["ts"]),
                    recv_ns,
                )
            )
        return out

    def instruments_request(self) -> HttpRequest | None:
        """``GET /v3/market/allInstruments`` (poloniex.md, "Endpoints")."""
        return HttpRequest(f"{self.rest_url}/v3/market/allInstruments")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``symbol``, ``tSz`` (tick), ``lSz`` (lot), ``ctVal`` (base units per
        contract) — field names unconfirmed by the sheet. ``ctType``
        ``"INVERSE"`` (Poloniex's docs) marks an inverse contract, whose
        ``ctVal`` is a quote-currency face value."""
        out: list[Instrument] = []
        try:
            msg = loads(body)
            if msg.__class__ is not dict or msg.get("code") != 200 or msg.get("data").__class__ is not list:
                raise MalformedMessage(f"{self.venue}: instruments request failed: {str(msg)[:200]}")
            for item in msg["data"]:
                native = item["symbol"]
                symbol = poloniex_unified(native)
                if symbol is None or not symbol.endswith("-PERP"):
                    continue
                self._symbols[native] = symbol
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        native,
                        "perp",
                        float(item["tSz"]),
                        float(item["lSz"]),
                        float(item["ctVal"]),
                        item.get("ctType") == "INVERSE",
                    )
                )
        except WsmuxError:
            raise
        except (JSONDecodeError, *_ERRORS) as exc:
            raise MalformedMessage(f"{self.venue}: bad instruments answer: {exc!r}") from exc
        return out

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn contract values: book, quote and trade sizes are then reported
        in base units (``contracts * ctVal``). Inverse contracts (a face value,
        no fixed base amount) are not converted: they stay in contracts."""
        for instrument in instruments:
            if instrument.venue == self.venue and instrument.contract_size and not instrument.inverse:
                self._contract_values[instrument.native] = instrument.contract_size
