"""Gate (Gate.io) API v4 public WebSocket: :class:`GateSpotAdapter` (venue id
``"gateio"``) and :class:`GateFuturesAdapter` (USDT perpetuals,
``"gateio-futures"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/gateio.md``; each
is restated where it is enforced:

* **Endpoints.** Spot ``wss://api.gateio.ws/ws/v4/``; USDT perpetuals
  ``wss://fx-ws.gateio.ws/v4/ws/usdt``. REST ``https://api.gateio.ws/api/v4``.
* **Envelope.** ``{"time": s, "id": n, "channel": "spot.obu", "event":
  "subscribe", "payload": [...]}``. ``time`` is required and must be within
  60 s of the server's clock, so the adapter reads the injected ``clock``
  (the system clock by default) when it builds a request. The ack echoes the
  request with ``result.status == "success"``; a non-null ``error`` is a
  refusal (:class:`~wsmux.errors.SubscriptionRejected`). Data frames carry
  ``event: "update"`` (``futures.obu`` frames carry no ``event``).
* **Keep-alive.** The server sends protocol pings; wsmux also pings at the
  WebSocket level every 20 s. No compression.
* **Book: Order Book V2** (``spot.obu`` / ``futures.obu``, payload
  ``ob.<PAIR>.400`` at 100 ms or ``ob.<PAIR>.50`` at 20 ms; 50 is used when a
  subscription asks for at most 50 levels). The first push is a full
  snapshot (``full: true``, id ``u``); the server may send another full one at
  any time (the sync treats it as a fresh snapshot). Deltas carry ``U``/``u``
  and must satisfy ``U == last u + 1`` exactly: the rule is
  :attr:`~wsmux.book.Continuity.PREV_ID` with ``prev_seq = U - 1`` (an
  update entirely at or below the book's id is stale). A gap unsubscribes
  and resubscribes for a new full snapshot; no REST call is involved. Levels
  are ``[price, amount]`` text, ``"0"`` deletes; the book is trimmed to the
  stream's depth (the sheet expects no deletes for levels that leave the
  window; unconfirmed). No checksum: the integrity level is SEQUENCE.
  The legacy ``*.order_book_update`` + REST bridge is not used.
* **Units.** Futures sizes are contracts; ``quanto_multiplier`` from
  ``/futures/usdt/contracts`` is the base amount per contract. After
  :meth:`~wsmux.Adapter.use_instruments` sizes (book, trades, quotes,
  liquidations, open interest) are in base units.
* **Trades.** Spot ``side`` is the taker's; futures ``size`` > 0 is a taker
  buy, < 0 a taker sell. Spot ``id`` is the global trade id (``trade_id``)
  and ``id_market`` (contiguous per market, sheet) is ``seq``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.exchanges._contracts import ContractSizes
from wsmux.model import (
    BookSnapshot,
    Candle,
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

__all__ = ["OBU_DEPTHS", "GateFuturesAdapter", "GateSpotAdapter", "gate_symbol"]

OBU_DEPTHS = (50, 400)
"""Depths of the Order Book V2 streams (gateio.md, "Channels")."""

_MS = 1_000_000
_S = 1_000_000_000
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}

_Handler = Callable[[Any, Any, int], list[Event | Diff]]


def gate_symbol(symbol: str, perpetual: bool) -> str:
    """Gate's name of a unified symbol: ``BTC-USDT`` (spot) and
    ``BTC-USDT-PERP`` (USDT perpetual) are both ``BTC_USDT``.

    Raises:
        UnknownSymbol: the wrong kind for the adapter, or a non-USDT perpetual.
    """
    base, quote, kind = parse_symbol(symbol)
    if perpetual:
        if kind != "PERP" or quote != "USDT":
            raise UnknownSymbol(f"gateio-futures serves USDT perpetuals BASE-USDT-PERP, not {symbol!r}")
    elif kind is not None:
        raise UnknownSymbol(f"gateio is spot only; use venue 'gateio-futures' for {symbol!r}")
    return f"{base}_{quote}"


def _int(value: Any, name: str) -> int:
    if value.__class__ is int:
        return int(value)
    if value.__class__ is str and value.isascii() and value.isdigit():
        return int(value)
    raise TypeError(f"{name} must be an integer, not {value!r}")


def _ms_text_ns(value: Any) -> int:
    """ns of a ms time given as an integer or decimal text with a fraction
    (``"1606292218213.4578"``), exactly."""
    if value.__class__ is int:
        return int(value) * _MS
    whole, _, fraction = _text(value).partition(".")
    if not (whole.isascii() and whole.isdigit()) or (fraction and not (fraction.isascii() and fraction.isdigit())):
        raise ValueError(f"bad ms time {value!r}")
    return int(whole) * _MS + int((fraction + "000000")[:6])


def _text(value: Any) -> str:
    if value.__class__ is not str:
        raise TypeError(f"expected text, not {value!r}")
    return str(value)


def _depth_for(sub: Subscription) -> int:
    return OBU_DEPTHS[0] if sub.depth is not None and sub.depth <= OBU_DEPTHS[0] else OBU_DEPTHS[1]


class _GateBase(Adapter):
    """What spot and futures share: envelope, Order Book V2, candles, instruments."""

    prefix: ClassVar[str]
    """Channel prefix: ``spot`` or ``futures``."""
    perpetual: ClassVar[bool]
    # GET /api/v4/spot/time -> {"server_time": <ms>} (the venue's REST docs, "Get
    # server current time"; the sheet is silent on it): one clock for both markets
    server_time_path: ClassVar[str | None] = "/spot/time"
    server_time_field: ClassVar[tuple[str | int, ...]] = ("server_time",)
    heartbeat: ClassVar[Heartbeat] = Heartbeat(ping_message=None, ws_ping_interval=20.0, silence_timeout=60.0)
    # gateio.md, "Keep-alive / limits": <= 300 connections per IP; no documented
    # cap on public subscriptions or messages (wsmux keeps 200 topics and 10/s).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=50,
        messages_per_second=10.0,
        connections_per_window=300,
        connection_window=300.0,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.clock = clock if clock is not None else SYSTEM_CLOCK
        self._ids = itertools.count(1)
        self._symbols: dict[str, str] = {}  # native -> unified
        self._depths: dict[str, int] = {}  # unified -> obu depth subscribed
        self._contracts = ContractSizes(self.venue)
        self._handlers: dict[str, _Handler] = {}

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`gate_symbol`."""
        return gate_symbol(symbol, self.perpetual)

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native) if native.__class__ is str else None
        if symbol is None:
            if native.__class__ is not str or native.count("_") != 1:
                raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}")
            symbol = native.replace("_", "-") + ("-PERP" if self.perpetual else "")
            try:
                gate_symbol(symbol, self.perpetual)
            except UnknownSymbol as exc:
                raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}") from exc
            self._symbols[native] = symbol
        return symbol

    def _size(self, symbol: str, amount: Any) -> float:
        return self._contracts.to_base(symbol, amount)

    # --- books ---------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """Order Book V2 at 400 levels (see :meth:`book_rule_for`)."""
        return _RULES[OBU_DEPTHS[1]]

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """Stream snapshot (``full``), ``U == last u + 1`` (PREV_ID with
        ``prev_seq = U - 1``), trimmed to the stream's depth: 50 when the
        subscription asks for at most 50 levels, else 400."""
        return _RULES[_depth_for(subscription)]

    # --- subscriptions -------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _payloads(self, sub: Subscription, native: str) -> tuple[str, list[str]]:
        """``(channel, payload)`` of one subscription."""
        prefix = self.prefix
        channel = sub.channel
        if channel is Channel.BOOK:
            depth = self._depths[sub.symbol] = _depth_for(sub)
            return f"{prefix}.obu", [f"ob.{native}.{depth}"]
        if channel is Channel.TRADES:
            return f"{prefix}.trades", [native]
        if channel is Channel.QUOTES:
            return f"{prefix}.book_ticker", [native]
        if channel is Channel.CANDLES:
            return f"{prefix}.candlesticks", ["1m", native]
        return self._derivative_payload(channel, native)

    def _derivative_payload(self, channel: Channel, native: str) -> tuple[str, list[str]]:
        raise AssertionError(f"unreachable: {channel}")  # check() refused the channel

    def _requests(self, event: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        now = self.clock.time_ns() // _S
        grouped: dict[str, list[str]] = {}
        out: list[Outgoing] = []
        for sub in subscriptions:
            self.check(sub)
            native = self.to_native(sub.symbol, sub.channel)
            self._symbols[native] = sub.symbol
            channel, payload = self._payloads(sub, native)
            if channel.endswith((".trades", ".book_ticker")) or channel == "futures.public_liquidates":
                grouped.setdefault(channel, []).extend(payload)  # these take a list of symbols
            else:
                out.append(
                    dumps({"time": now, "id": next(self._ids), "channel": channel, "event": event, "payload": payload})
                )
        per = self.limits.topics_per_message
        for channel, natives in grouped.items():
            for i in range(0, len(natives), per):
                msg = {"time": now, "id": next(self._ids), "channel": channel, "event": event}
                msg["payload"] = natives[i : i + per]
                out.append(dumps(msg))
        return out

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """gateio.md: a gap → unsubscribe and resubscribe the ``obu`` stream (a new full snapshot)."""
        return [*self.unsubscribe([subscription]), *self.subscribe([subscription])]

    # --- frames --------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        channel: Any = msg.get("channel")
        try:
            event = msg.get("event")
            if event in ("subscribe", "unsubscribe"):
                error = msg.get("error")
                if error is not None:
                    raise SubscriptionRejected(
                        f"{self.venue} {event} {msg.get('payload')}: {error.get('code')} {error.get('message')}"
                    )
                return []
            if channel.__class__ is not str:
                raise MalformedMessage("unknown message type: no channel", frame)
            if channel.endswith(".pong"):
                return []
            handler = self._handlers.get(channel)
            if handler is None:
                raise unknown_message("channel", channel, frame)
            if msg.get("error") is not None:
                raise RemoteError(f"{self.venue} {channel} error: {msg['error']}")
            ts = msg.get("time_ms")
            return handler(msg["result"], None if ts is None else _int(ts, "time_ms") * _MS, recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise MalformedMessage(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad {channel} message: {exc!r}", frame) from exc

    def _obu(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        stream = result["s"]  # "ob.BTC_USDT.400"
        _, native, _ = stream.split(".")
        symbol = self._unified(native)
        t = _int(result["t"], "t") * _MS
        last = _int(result["u"], "u")
        bids = result.get("b", [])
        asks = result.get("a", [])
        if bids.__class__ is not list or asks.__class__ is not list:
            raise TypeError("b and a must be lists")
        if self.perpetual and self._contracts.known(symbol):
            bids = [(price, self._size(symbol, amount)) for price, amount in bids]
            asks = [(price, self._size(symbol, amount)) for price, amount in asks]
        if result.get("full") is True:
            depth = self._depths.get(symbol, OBU_DEPTHS[1])
            return [
                BookSnapshot(
                    self.venue,
                    symbol,
                    tuple([(float(p), float(a)) for p, a in bids[:depth]]),
                    tuple([(float(p), float(a)) for p, a in asks[:depth]]),
                    t,
                    recv_ns,
                    last,
                )
            ]
        first = _int(result["U"], "U")
        return [Diff(symbol, bids, asks, t, last, first, first - 1)]

    def _candle(self, row: Any, ts: int | None, recv_ns: int) -> Candle:
        # gateio.md: n = "1m_<PAIR>", t in s, a = base amount, w = window closed
        interval, _, native = row["n"].partition("_")
        symbol = self._unified(native)
        amount = row.get("a")
        volume = self._size(symbol, row["v"]) if amount is None else float(amount)
        closed = row.get("w")
        return Candle(
            self.venue,
            symbol,
            interval,
            _int(row["t"], "t") * _S,
            float(row["o"]),
            float(row["h"]),
            float(row["l"]),
            float(row["c"]),
            volume,
            closed is True,
            ts,
            recv_ns,
        )

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn contract sizes (futures sizes then in base units)."""
        self._contracts.learn(instruments)


_RULES = {depth: SyncRule(SnapshotSource.STREAM, Continuity.PREV_ID, depth=depth) for depth in OBU_DEPTHS}


class GateSpotAdapter(_GateBase):
    """Gate spot, venue id ``"gateio"`` (sheet ``shared/exchanges/gateio.md``).

    Channels → events: ``spot.obu`` → book (SEQUENCE-checked);
    ``spot.trades`` → :class:`~wsmux.Trade` (taker side, ``trade_id = id``,
    ``seq = id_market``); ``spot.book_ticker`` → :class:`~wsmux.Quote`
    (``seq = u``); ``spot.candlesticks`` ``1m`` → :class:`~wsmux.Candle`.

    Args:
        url, rest_url: endpoint overrides (mock servers, testnet).
        clock: where the request ``time`` is read (default: the system clock).
    """

    venue: ClassVar[str] = "gateio"
    prefix: ClassVar[str] = "spot"
    perpetual: ClassVar[bool] = False
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.TRADES, Channel.QUOTES, Channel.CANDLES})
    default_url: ClassVar[str] = "wss://api.gateio.ws/ws/v4/"
    default_rest_url: ClassVar[str] = "https://api.gateio.ws/api/v4"

    def __init__(self, *, url: str | None = None, rest_url: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url, clock=clock)
        self._handlers = {
            "spot.obu": self._obu,
            "spot.trades": self._trades,
            "spot.book_ticker": self._book_ticker,
            "spot.candlesticks": self._candles,
        }

    def _trades(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        ms = result["create_time_ms"]
        return [
            Trade(
                self.venue,
                self._unified(result["currency_pair"]),
                float(result["price"]),
                float(result["amount"]),
                _SIDES[result["side"]],
                str(_int(result["id"], "id")),
                _ms_text_ns(ms),
                recv_ns,
                _int(result["id_market"], "id_market"),
            )
        ]

    def _book_ticker(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        return [
            Quote(
                self.venue,
                self._unified(result["s"]),
                float(result["b"]),
                float(result["B"]),
                float(result["a"]),
                float(result["A"]),
                _int(result["t"], "t") * _MS,
                recv_ns,
                _int(result["u"], "u"),
            )
        ]

    def _candles(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        return [self._candle(result, ts, recv_ns)]

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/spot/currency_pairs``."""
        return HttpRequest(self.rest_url + "/spot/currency_pairs")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Tradable pairs: tick ``10**-precision``, lot ``10**-amount_precision``."""
        rows = _rest_list(self.venue, body)
        out: list[Instrument] = []
        try:
            for row in rows:
                if row.get("trade_status", "tradable") != "tradable":
                    continue
                symbol = f"{row['base']}-{row['quote']}"
                if not _valid(symbol):
                    continue
                tick = 10.0 ** -_int(row["precision"], "precision")
                lot = 10.0 ** -_int(row["amount_precision"], "amount_precision")
                out.append(Instrument(self.venue, symbol, str(row["id"]), "spot", tick, lot))
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad currency_pairs: {exc!r}", body) from exc
        return out


class GateFuturesAdapter(_GateBase):
    """Gate USDT perpetuals, venue id ``"gateio-futures"`` (sheet
    ``shared/exchanges/gateio.md``).

    Channels → events: ``futures.obu`` → book (SEQUENCE-checked);
    ``futures.trades`` → :class:`~wsmux.Trade` (side from the sign of
    ``size``); ``futures.book_ticker`` → :class:`~wsmux.Quote`;
    ``futures.tickers`` → :class:`~wsmux.Funding` (``funding_rate``,
    ``mark_price``); ``futures.contract_stats`` (``1m``) →
    :class:`~wsmux.OpenInterest`; ``futures.public_liquidates`` →
    :class:`~wsmux.Liquidation` (side: a negative ``size`` is read as a sell,
    i.e. a long liquidated — the sheet marks the sign unconfirmed);
    ``futures.candlesticks`` ``1m`` → :class:`~wsmux.Candle`. Sizes are in
    base units once :meth:`use_instruments` learned ``quanto_multiplier``.

    Args:
        url, rest_url: endpoint overrides (mock servers, testnet).
        clock: where the request ``time`` is read (default: the system clock).
    """

    venue: ClassVar[str] = "gateio-futures"
    prefix: ClassVar[str] = "futures"
    perpetual: ClassVar[bool] = True
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {
            Channel.BOOK,
            Channel.TRADES,
            Channel.QUOTES,
            Channel.CANDLES,
            Channel.FUNDING,
            Channel.OPEN_INTEREST,
            Channel.LIQUIDATIONS,
        }
    )
    default_url: ClassVar[str] = "wss://fx-ws.gateio.ws/v4/ws/usdt"
    default_rest_url: ClassVar[str] = "https://api.gateio.ws/api/v4"

    def __init__(self, *, url: str | None = None, rest_url: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url, clock=clock)
        self._handlers = {
            "futures.obu": self._obu,
            "futures.trades": self._trades,
            "futures.book_ticker": self._book_ticker,
            "futures.candlesticks": self._candles,
            "futures.tickers": self._tickers,
            "futures.contract_stats": self._contract_stats,
            "futures.public_liquidates": self._liquidates,
        }

    def _derivative_payload(self, channel: Channel, native: str) -> tuple[str, list[str]]:
        if channel is Channel.FUNDING:
            return "futures.tickers", [native]
        if channel is Channel.OPEN_INTEREST:
            return "futures.contract_stats", [native, "1m"]
        return "futures.public_liquidates", [native]

    def _trades(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        out: list[Event | Diff] = []
        for row in result:
            symbol = self._unified(row["contract"])
            size = row["size"]
            if size.__class__ is not int or size == 0:
                raise TypeError(f"size must be a non-zero integer, not {size!r}")
            ms = row.get("create_time_ms")
            out.append(
                Trade(
                    self.venue,
                    symbol,
                    float(row["price"]),
                    self._size(symbol, abs(size)),
                    Side.BUY if size > 0 else Side.SELL,
                    str(_int(row["id"], "id")),
                    _int(ms, "create_time_ms") * _MS
                    if ms is not None
                    else _int(row["create_time"], "create_time") * _S,
                    recv_ns,
                )
            )
        return out

    def _book_ticker(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(result["s"])
        return [
            Quote(
                self.venue,
                symbol,
                float(result["b"]),
                self._size(symbol, result["B"]),
                float(result["a"]),
                self._size(symbol, result["A"]),
                _int(result["t"], "t") * _MS,
                recv_ns,
                _int(result["u"], "u"),
            )
        ]

    def _candles(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        return [self._candle(row, ts, recv_ns) for row in result]

    def _tickers(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        out: list[Event | Diff] = []
        for row in result:
            mark = row.get("mark_price")
            out.append(
                Funding(
                    self.venue,
                    self._unified(row["contract"]),
                    float(row["funding_rate"]),
                    None,
                    None if mark is None else float(mark),
                    ts,
                    recv_ns,
                )
            )
        return out

    def _contract_stats(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(result["contract"])
        stamp = result.get("time")
        return [
            OpenInterest(
                self.venue,
                symbol,
                self._size(symbol, result["open_interest"]),
                ts if stamp is None else _int(stamp, "time") * _S,
                recv_ns,
            )
        ]

    def _liquidates(self, result: Any, ts: int | None, recv_ns: int) -> list[Event | Diff]:
        out: list[Event | Diff] = []
        for row in result:
            symbol = self._unified(row["contract"])
            size = row["size"]
            if size.__class__ is not int or size == 0:
                raise TypeError(f"size must be a non-zero integer, not {size!r}")
            out.append(
                Liquidation(
                    self.venue,
                    symbol,
                    Side.SELL if size < 0 else Side.BUY,
                    float(row["price"]),
                    self._size(symbol, abs(size)),
                    _int(row["time_ms"], "time_ms") * _MS,
                    recv_ns,
                )
            )
        return out

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/futures/usdt/contracts``."""
        return HttpRequest(self.rest_url + "/futures/usdt/contracts")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Trading contracts: tick ``order_price_round``, lot 1 contract,
        ``contract_size = quanto_multiplier`` (base per contract)."""
        rows = _rest_list(self.venue, body)
        out: list[Instrument] = []
        try:
            for row in rows:
                if row.get("in_delisting") is True or row.get("status", "trading") != "trading":
                    continue
                name = str(row["name"])
                symbol = name.replace("_", "-") + "-PERP"
                if name.count("_") != 1 or not _valid(symbol):
                    continue
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        name,
                        "perp",
                        float(row["order_price_round"]),
                        1.0,
                        float(row["quanto_multiplier"]),
                    )
                )
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad contracts: {exc!r}", body) from exc
        return out


def _rest_list(venue: str, body: bytes) -> list[Any]:
    try:
        rows = loads(body)
    except JSONDecodeError as exc:
        raise MalformedMessage(f"{venue}: REST body is not JSON", body) from exc
    if rows.__class__ is dict and "label" in rows:
        raise RemoteError(f"{venue} REST error {rows.get('label')}: {rows.get('message', '')}")
    if rows.__class__ is not list:
        raise MalformedMessage(f"{venue}: REST body is not a list", body)
    return list(rows)


def _valid(symbol: str) -> bool:
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return False
    return True
