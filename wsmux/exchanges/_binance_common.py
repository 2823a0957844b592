"""The Binance WebSocket market-data protocol, shared by the Binance family.

Binance spot, Binance.US, USDⓈ-M futures and COIN-M futures speak one
protocol (sheets: shared/exchanges/binance-spot.md, binance-us.md,
binance-usdm-futures.md, binance-coinm-futures.md); the venue modules in
:mod:`wsmux.exchanges.binance` only set hosts, paths, limits, symbol
spelling and the book rule. This module is private; the adapters are public.

Protocol, as implemented here
-----------------------------
* **Streams.** A stream is ``<native symbol in lower case>@<name>``:
  ``@aggTrade`` (or ``@trade`` on spot), ``@bookTicker``, ``@depth@100ms``,
  ``@markPrice@1s`` and ``@forceOrder`` (futures), ``@kline_1m`` (candles).
* **Connecting.** Frames are always asked for in the *combined* format
  (``{"stream": name, "data": {...}}``) by opening ``<base>/stream``. The
  streams of the connection being opened go into the URL
  (``/stream?streams=a/b/c``, what the 2021 recordings show working on every
  Binance host, including Binance.US where live ``SUBSCRIBE`` is unconfirmed),
  at most :attr:`BinanceAdapterBase.url_stream_limit` of them; the rest, and
  every later addition, are sent as ``{"method": "SUBSCRIBE", "params": [...],
  "id": N}`` messages with ids increasing per adapter instance. Streams
  already named in the URL are skipped once by the following
  :meth:`~BinanceAdapterBase.subscribe` call, so nothing is subscribed twice.
* **Replies.** ``{"result": null, "id": N}`` (and ``LIST_SUBSCRIPTIONS``
  results) are acknowledgements and give no events. ``{"error": {"code": C,
  "msg": M}, "id": N}`` (or the flat ``{"code": C, "msg": M, "id": N}``)
  raises :class:`~wsmux.errors.SubscriptionRejected` naming the streams of
  request ``N``.
* **Events.** Dispatch is on the payload's ``e`` key (``depthUpdate``,
  ``aggTrade``, ``trade``, ``bookTicker``, ``markPriceUpdate``,
  ``forceOrder``, ``kline``); spot's ``bookTicker`` has no ``e`` and is recognised by its
  keys (``u``, ``b``, ``B``, ``a``, ``A``). ``m`` (buyer is maker) true means
  the taker sold: :attr:`~wsmux.Side.SELL`. Venue times are epoch
  milliseconds, converted to integer nanoseconds exactly.
* **Candles.** ``kline`` carries the candle in ``k``: start ``t``, interval
  ``i``, ``o``/``h``/``l``/``c``, ``x`` true once the candle is final (the
  forming candle is pushed every ~2 s with ``x`` false). The base-unit volume
  is ``v`` on spot and USD-M; on COIN-M ``v`` counts contracts and ``q`` is
  the base-asset volume (Binance COIN-M stream docs; the sheets list the
  stream but not its fields), so COIN-M reads ``q``
  (:attr:`BinanceAdapterBase.kline_volume`). ``Candle.ts`` is the event time
  ``E``.
* **Books.** ``depthUpdate`` gives :class:`~wsmux.BookUpdate` with
  ``first_seq=U``, ``seq=u`` and, on futures, ``prev_seq=pu``; quantities are
  absolute, ``0`` deletes. The anchor is a REST snapshot (``lastUpdateId`` →
  ``seq``). The sync rule (spot ``U``/``u`` ranges, futures ``pu`` chain) is
  declared by each adapter's :meth:`~BinanceAdapterBase.book_rule`.

Everything here is sans-I/O: no sockets, no sleeping, no clock.
"""

from __future__ import annotations

import datetime
from collections.abc import Generator, Sequence
from typing import Any, ClassVar, Literal

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, HttpRequest, Outgoing, finish_steps
from wsmux.book import SNAPSHOT_STEP_LEVELS, Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._candles import build_candle
from wsmux.exchanges._contracts import ContractSizes
from wsmux.exchanges._reference import BODY_ERRORS, json_body, step, unified_or_none
from wsmux.model import (
    BookSnapshot,
    Channel,
    Event,
    Funding,
    Instrument,
    Level,
    Levels,
    Liquidation,
    Quote,
    Side,
    Trade,
    layout_of,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["SPOT_RULE", "FUTURES_RULE", "BinanceAdapterBase", "TradeStream"]

TradeStream = Literal["aggTrade", "trade"]

SPOT_RULE = SyncRule(SnapshotSource.REST, Continuity.UPDATE_ID, bridge_offset=1)
"""Spot (binance-spot.md, "Order-book sync"): drop diffs with ``u <= lastUpdateId``;
the first kept diff needs ``U <= lastUpdateId + 1 <= u``; then each diff's ``U``
must be ``<=`` the previous ``u`` + 1 (else gap → resync), stale ``u`` are ignored."""

FUTURES_RULE = SyncRule(SnapshotSource.REST, Continuity.PREV_ID, bridge_offset=0)
"""USDⓈ-M and COIN-M (binance-usdm-futures.md / binance-coinm-futures.md,
"Order-book sync"): drop diffs with ``u < lastUpdateId``; the first applied diff
needs ``U <= lastUpdateId <= u``; afterwards each diff's ``pu`` must equal the
previous diff's ``u`` (else gap → resync)."""

_MS = 1_000_000  # ns per ms
_TRADE = layout_of(Trade)
_QUOTE = layout_of(Quote)
_BUY = Side.BUY
_SELL = Side.SELL
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_LISTED = frozenset({"TRADING", "PENDING_TRADING", "PRE_TRADING"})

_STREAM_SUFFIX = {
    Channel.QUOTES: "@bookTicker",
    Channel.BOOK: "@depth@100ms",
    Channel.FUNDING: "@markPrice@1s",
    Channel.LIQUIDATIONS: "@forceOrder",
    Channel.CANDLES: "@kline_1m",
}


def _int(value: object) -> int:
    """``value`` if it is a JSON integer (not a bool, not text), else TypeError."""
    if type(value) is int:
        return value
    raise TypeError(f"expected an integer, got {value!r}")


def _levels(raw: Any) -> Levels:
    """``[["price", "qty"], ...]`` → ``((price, qty), ...)`` as floats. One pass."""
    return tuple([(float(p), float(q)) for p, q in raw])


class BinanceAdapterBase(Adapter):
    """The shared Binance protocol. Subclasses set the class attributes below
    and implement :meth:`native_symbol`.

    Args:
        url: WebSocket *base* URL (scheme, host, port; a trailing ``/stream``
            or ``/ws`` is ignored). Mock servers pass their own.
        rest_url: REST base URL.
        trade_stream: ``"aggTrade"`` (default; aggregated by taker order and
            price, the only trade stream on futures) or ``"trade"`` (every
            fill; spot only).
        url_stream_limit: most streams named in the connection URL; the rest
            are subscribed with messages. ``0`` subscribes everything by
            message.
    """

    exchange: ClassVar[str] = "binance"
    depth_path: ClassVar[str]
    server_time_field: ClassVar[tuple[str | int, ...]] = ("serverTime",)
    """``GET <rest>/api/v3/time`` (``/fapi/v1/time``, ``/dapi/v1/time``; weight 1)
    answers ``{"serverTime": ms}`` (the venue's REST docs, "Check Server Time";
    the sheets are silent on it)."""
    """REST depth snapshot path, e.g. ``/api/v3/depth``."""
    futures: ClassVar[bool] = False
    snapshot_limits: ClassVar[tuple[int, ...] | None] = None
    """Allowed ``limit`` values of the depth request (None: any up to ``max_snapshot_limit``)."""
    max_snapshot_limit: ClassVar[int] = 1000
    book_rule_value: ClassVar[SyncRule] = SPOT_RULE
    exchange_info_weight: ClassVar[int] = 1
    """REST weight of ``exchangeInfo`` (spot: 20; venue REST docs, not the sheets)."""
    inverse_contracts: ClassVar[bool] = False
    """True where ``contractSize`` is a quote-currency face value (COIN-M)."""
    kline_volume: ClassVar[str] = "v"
    """The ``kline`` field holding the volume in base units (``q`` on COIN-M)."""

    def __init__(
        self,
        *,
        url: str | None = None,
        rest_url: str | None = None,
        trade_stream: TradeStream = "aggTrade",
        url_stream_limit: int = 200,
    ) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.url = _strip_path(self.url)
        self.rest_url = self.rest_url.rstrip("/")
        if trade_stream not in ("aggTrade", "trade"):
            raise ConfigError(f"trade_stream must be 'aggTrade' or 'trade', not {trade_stream!r}")
        if trade_stream == "trade" and self.futures:
            raise ConfigError(f"{self.venue} has no raw 'trade' stream; use 'aggTrade'")
        if url_stream_limit < 0:
            raise ConfigError("url_stream_limit must be >= 0")
        self.trade_stream: TradeStream = trade_stream
        self.url_stream_limit = url_stream_limit
        self._contracts = ContractSizes(self.venue)
        """Contract face values learnt from the instruments (COIN-M converts with them)."""
        self._symbols: dict[str, str] = {}
        """Native symbol (upper case, as in payloads) -> unified symbol."""
        self._next_id = 1
        self._requests: dict[int, tuple[str, tuple[str, ...]]] = {}
        """Request id -> (method, streams), to name the streams of a rejection."""
        self._url_streams: set[str] = set()
        """Streams named in the URL of the connection being opened."""
        self._route: str | None = None
        """Route of the connection being opened (None: not known)."""
        self._handlers: dict[object, Any] = {
            "depthUpdate": self._on_depth,
            "aggTrade": self._on_agg_trade,
            "trade": self._on_trade,
            "bookTicker": self._on_book_ticker,
            "markPriceUpdate": self._on_mark_price,
            "forceOrder": self._on_force_order,
            "kline": self._on_kline,
        }

    # --- symbols -------------------------------------------------------------------

    def native_symbol(self, base: str, quote: str, kind: str | None) -> str:
        """The venue's (upper-case) symbol; raise UnknownSymbol if unsupported."""
        raise NotImplementedError

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """The venue's symbol as written in payloads (``BTCUSDT``). Remembers the
        mapping so payloads can be translated back. O(1)."""
        base, quote, kind = parse_symbol(symbol)
        native = self.native_symbol(base, quote, kind)
        self._symbols[native] = symbol
        return native

    def stream_name(self, subscription: Subscription) -> str:
        """The stream carrying ``subscription`` (``btcusdt@depth@100ms``)."""
        channel = subscription.channel
        native = self.to_native(subscription.symbol, channel).lower()
        if channel is Channel.TRADES:
            return f"{native}@{self.trade_stream}"
        suffix = _STREAM_SUFFIX.get(channel)
        if suffix is None or channel not in self.channels:
            raise ConfigError(f"{self.venue} does not offer {channel.value!r}")
        return native + suffix

    # --- connection -----------------------------------------------------------------

    def ws_base(self, route: str) -> str:
        """The WebSocket base URL for connections of ``route``."""
        return self.url

    def connect_url(self, subscriptions: Sequence[Subscription]) -> str:
        """``<base>/stream?streams=a/b/...`` naming up to ``url_stream_limit``
        streams; the following :meth:`subscribe` skips those."""
        names = list(dict.fromkeys(self.stream_name(s) for s in subscriptions))
        routes = {self.route(s) for s in subscriptions}
        if len(routes) > 1:
            raise ConfigError(
                f"{self.venue}: subscriptions of routes {sorted(routes)} cannot share one connection "
                "(shard them by Adapter.route())"
            )
        route = routes.pop() if routes else ""
        self._route = route if subscriptions else None
        in_url = names[: self.url_stream_limit]
        self._url_streams = set(in_url)
        base = self.ws_base(route) + "/stream"
        return f"{base}?streams={'/'.join(in_url)}" if in_url else base

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """``SUBSCRIBE`` messages of at most ``limits.topics_per_message`` streams
        each, skipping the streams already named in the connection URL."""
        names: list[str] = []
        for sub in subscriptions:
            name = self.stream_name(sub)
            if self._route is not None and self.route(sub) != self._route:
                raise ConfigError(
                    f"{self.venue}: {sub} belongs on route {self.route(sub)!r}, this connection is on {self._route!r}"
                )
            if name in self._url_streams:
                self._url_streams.discard(name)
                continue
            names.append(name)
        return self._requests_for("SUBSCRIBE", names)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """``UNSUBSCRIBE`` messages for ``subscriptions``."""
        names = [self.stream_name(s) for s in subscriptions]
        self._url_streams.difference_update(names)
        return self._requests_for("UNSUBSCRIBE", names)

    def _requests_for(self, method: str, names: list[str]) -> list[Outgoing]:
        names = list(dict.fromkeys(names))
        size = self.limits.topics_per_message
        out: list[Outgoing] = []
        for i in range(0, len(names), size):
            chunk = names[i : i + size]
            req_id = self._next_id
            self._next_id += 1
            self._requests[req_id] = (method, tuple(chunk))
            out.append(dumps({"method": method, "params": chunk, "id": req_id}))
        return out

    def reset(self) -> None:
        """Forget the outstanding requests of the old connection. Request ids
        keep increasing; the symbol map and the streams named in the URL of the
        connection being opened (set by :meth:`connect_url`) are kept."""
        self._requests.clear()

    # --- frames ---------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        """Translate one frame (combined or raw format). See the module docstring."""
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage(f"{self.venue}: invalid JSON", frame) from exc
        if type(msg) is not dict:
            raise MalformedMessage(f"{self.venue}: expected a JSON object", frame)
        data = msg.get("data")
        if data is None:
            if "id" in msg and "e" not in msg:
                return self._on_reply(msg, frame)
            data = msg  # raw (/ws) format
        elif type(data) is not dict:
            raise MalformedMessage(f"{self.venue}: 'data' is not an object", frame)
        try:
            handler = self._handlers.get(data.get("e"))
            if handler is not None:
                return handler(data, recv_ns)  # type: ignore[no-any-return]
            if "e" not in data and "u" in data and "A" in data:
                return self._on_book_ticker(data, recv_ns)
        except MalformedMessage:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise MalformedMessage(f"{self.venue}: bad {data.get('e', 'message')!s}: {exc!r}", frame) from exc
        kind = data.get("e")
        if kind == "serverShutdown":
            return []  # the venue closes the socket next; the Connection reconnects
        raise unknown_message("", kind, frame)

    def _on_reply(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        req_id = msg.get("id")
        error = msg.get("error")
        if error is None and "code" in msg and "result" not in msg:
            error = msg
        request = self._requests.pop(req_id, None) if type(req_id) is int else None
        if error is None:
            if "result" in msg:
                return []  # ack (null) or a LIST_SUBSCRIPTIONS answer
            raise MalformedMessage(f"{self.venue}: reply without result or error", frame)
        if type(error) is dict:
            code, text = error.get("code"), error.get("msg")
        else:
            code, text = None, error
        what = f"{request[0]} {', '.join(request[1])}" if request else f"request id {req_id!r}"
        raise SubscriptionRejected(f"{self.venue} rejected {what}: code {code}: {text}")

    def _unknown(self, native: Any) -> str:
        raise MalformedMessage(f"{self.venue}: data for unsubscribed symbol {native!r}")

    # The handlers below are the hot path: one pass, inlined checks. A wrong
    # type raises TypeError/ValueError/KeyError, which parse() wraps.

    def _on_depth(self, d: dict[str, Any], recv_ns: int) -> list[Any]:
        symbol = self._symbols.get(d["s"]) or self._unknown(d["s"])
        first = d["U"]
        last = d["u"]
        ms = d.get("T") or d["E"]
        pu = d.get("pu")
        if type(first) is not int or type(last) is not int or type(ms) is not int:
            raise TypeError("U, u and E/T must be integers")
        if pu is not None and type(pu) is not int:
            raise TypeError("pu must be an integer")
        bids = d["b"]
        asks = d["a"]
        if type(bids) is not list or type(asks) is not list:
            raise TypeError("b and a must be lists")
        # the levels go to the book as decoded: BookSync converts, checks and
        # applies them in one pass, then builds the BookUpdate event
        return [Diff(symbol, bids, asks, ms * _MS, last, first, pu)]

    def _on_agg_trade(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        return self._trade(d, d["a"], recv_ns)

    def _on_trade(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        return self._trade(d, d["t"], recv_ns)

    def _trade(self, d: dict[str, Any], trade_id: Any, recv_ns: int) -> list[Event]:
        symbol = self._symbols.get(d["s"]) or self._unknown(d["s"])
        ms = d["T"]
        m = d["m"]
        if type(trade_id) is not int or type(ms) is not int:
            raise TypeError("trade id and T must be integers")
        if m is True:
            side = _SELL  # the buyer was the maker: the taker sold
        elif m is False:
            side = _BUY
        else:
            raise TypeError(f"'m' must be true or false, not {m!r}")
        price = float(d["p"])
        size = float(d["q"])
        trade = _TRADE(self.venue, symbol, price, size, side, str(trade_id), ms * _MS, recv_ns, trade_id)
        trade.__class__ = Trade  # see wsmux.model.layout_of: the event, without two Python calls
        return [trade]

    def _on_book_ticker(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        symbol = self._symbols.get(d["s"]) or self._unknown(d["s"])
        ms = d.get("T") or d.get("E")
        seq = d["u"]
        if type(seq) is not int or (ms is not None and type(ms) is not int):
            raise TypeError("u and T/E must be integers")
        quote = _QUOTE(
            self.venue,
            symbol,
            float(d["b"]),
            float(d["B"]),
            float(d["a"]),
            float(d["A"]),
            None if ms is None else ms * _MS,
            recv_ns,
            seq,
        )
        quote.__class__ = Quote
        return [quote]

    def _on_mark_price(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        rate = d["r"]
        if rate == "":
            return []  # delivery (dated) contracts have no funding
        next_ts = _int(d["T"])
        return [
            Funding(
                self.venue,
                (self._symbols.get(d["s"]) or self._unknown(d["s"])),
                float(rate),
                next_ts * _MS if next_ts > 0 else None,
                float(d["p"]),
                _int(d["E"]) * _MS,
                recv_ns,
            )
        ]

    def _on_force_order(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        o = d["o"]
        avg = float(o.get("ap") or 0)
        filled = float(o.get("z") or 0)
        return [
            Liquidation(
                self.venue,
                (self._symbols.get(o["s"]) or self._unknown(o["s"])),
                _SIDES[o["S"]],
                avg if avg > 0 else float(o["p"]),
                filled if filled > 0 else float(o["q"]),
                _int(o["T"]) * _MS,
                recv_ns,
            )
        ]

    def _on_kline(self, d: dict[str, Any], recv_ns: int) -> list[Event]:
        k = d["k"]
        if k["i"] != "1m":  # another interval (a capture's kline_5m): well formed, not handled
            raise unknown_message("kline interval", k["i"])
        closed = k["x"]
        if type(closed) is not bool:
            raise TypeError(f"'x' must be true or false, not {closed!r}")
        symbol = self._symbols.get(k["s"]) or self._unknown(k["s"])
        start = _int(k["t"]) * _MS
        volume = k[self.kline_volume]
        return [
            build_candle(
                self.venue, symbol, start, k["o"], k["h"], k["l"], k["c"], volume, closed, _int(d["E"]) * _MS, recv_ns
            )
        ]

    # --- books ------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """The venue's sync rule (see :data:`SPOT_RULE`, :data:`FUTURES_RULE`)."""
        return self.book_rule_value

    def snapshot_limit(self, depth: int | None) -> int:
        """The ``limit`` of the depth request for a book of ``depth`` levels.

        Never below 1000 (the sheets' and cryptofeed's choice): the diff stream
        covers the whole book, so a shallow snapshot would leave levels that
        later move to the top missing from the local book.
        """
        want = max(1000, depth or 0)
        allowed = self.snapshot_limits
        if allowed is None:
            return min(want, self.max_snapshot_limit)
        return next((n for n in allowed if n >= want), allowed[-1])

    def snapshot_weight(self, limit: int) -> int:
        """REST weight of a depth request with ``limit`` (venue docs, not the sheets)."""
        return 1

    def snapshot_request(self, symbol: str, depth: int | None = None) -> HttpRequest | None:
        """``GET <rest>/<depth_path>?symbol=NATIVE&limit=N`` (see :meth:`snapshot_limit`)."""
        limit = self.snapshot_limit(depth)
        return HttpRequest(
            self.rest_url + self.depth_path,
            (("symbol", self.to_native(symbol, Channel.BOOK)), ("limit", str(limit))),
            weight=self.snapshot_weight(limit),
        )

    def parse_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> BookSnapshot:
        """``{"lastUpdateId": N, "bids": [...], "asks": [...]}`` → BookSnapshot(seq=N).

        Raises:
            RemoteError: the body is a Binance error (``{"code": .., "msg": ..}``).
            MalformedMessage: anything else that is not a snapshot.
        """
        return finish_steps(self.parse_snapshot_steps(symbol, body, recv_ns))

    def parse_snapshot_steps(self, symbol: str, body: bytes, recv_ns: int) -> Generator[None, None, BookSnapshot]:
        """:meth:`parse_snapshot` in steps: the JSON, then the levels in
        pieces of at most :data:`~wsmux.book.SNAPSHOT_STEP_LEVELS` (a 5,000-level
        body is 2-3 ms of work in one piece)."""
        try:
            msg = loads(body)
        except JSONDecodeError as exc:
            raise MalformedMessage(f"{self.venue}: snapshot is not JSON", body) from exc
        if type(msg) is not dict:
            raise MalformedMessage(f"{self.venue}: snapshot is not an object", body)
        if "lastUpdateId" not in msg and "code" in msg:
            raise RemoteError(f"{self.venue} snapshot error {msg.get('code')}: {msg.get('msg')}")
        try:
            native = msg.get("symbol")
            if native is not None and native != self.to_native(symbol, Channel.BOOK):
                raise MalformedMessage(f"{self.venue}: snapshot of {native!r}, asked for {symbol}", body)
            sides: list[Levels] = []
            for side in ("bids", "asks"):
                raw = msg[side]
                if len(raw) <= SNAPSHOT_STEP_LEVELS:
                    sides.append(_levels(raw))
                    continue
                pieces: list[Level] = []
                for start in range(0, len(raw), SNAPSHOT_STEP_LEVELS):
                    yield
                    pieces += _levels(raw[start : start + SNAPSHOT_STEP_LEVELS])
                sides.append(tuple(pieces))
            ts = msg.get("T") or msg.get("E")
            return BookSnapshot(
                self.venue,
                symbol,
                sides[0],
                sides[1],
                None if ts is None else _int(ts) * _MS,
                recv_ns,
                _int(msg["lastUpdateId"]),
            )
        except MalformedMessage:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise MalformedMessage(f"{self.venue}: bad snapshot: {exc!r}", body) from exc

    def trades_request(self, symbol: str, first_id: int, limit: int) -> HttpRequest | None:
        """``GET <rest>/<aggTrades path>?symbol=NATIVE&fromId=N&limit=L`` (at most
        1000), for backfilling aggregate-trade ids; ``None`` with the raw
        ``trade`` stream (its history endpoint needs an API key).

        Binance documents ``aggTrades`` ids as consecutive per symbol (the
        venue's REST docs; the sheets are silent on it)."""
        if self.trade_stream != "aggTrade":
            return None
        return HttpRequest(
            self.rest_url + self.depth_path.replace("depth", "aggTrades"),
            (
                ("symbol", self.to_native(symbol, Channel.TRADES)),
                ("fromId", str(first_id)),
                ("limit", str(max(1, min(limit, 1000)))),
            ),
            weight=4,
        )

    def parse_trades(self, symbol: str, body: bytes, recv_ns: int) -> list[Trade]:
        """``[{"a": id, "p": .., "q": .., "T": ms, "m": bool, ...}, ...]`` → trades
        in the same form as the live ``aggTrade`` stream."""
        try:
            rows = loads(body)
        except JSONDecodeError as exc:
            raise MalformedMessage(f"{self.venue}: aggTrades is not JSON", body) from exc
        if type(rows) is dict and "code" in rows:
            raise RemoteError(f"{self.venue} aggTrades error {rows.get('code')}: {rows.get('msg')}")
        if type(rows) is not list:
            raise MalformedMessage(f"{self.venue}: aggTrades is not a list", body)
        out: list[Trade] = []
        try:
            for row in rows:
                trade_id, ms, m = row["a"], row["T"], row["m"]
                if type(trade_id) is not int or type(ms) is not int or type(m) is not bool:
                    raise TypeError("a/T must be integers and m a boolean")
                side = _SELL if m else _BUY
                out.append(
                    Trade(
                        self.venue,
                        symbol,
                        float(row["p"]),
                        float(row["q"]),
                        side,
                        str(trade_id),
                        ms * _MS,
                        recv_ns,
                        trade_id,
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"{self.venue}: bad aggTrades row: {exc!r}", body) from exc
        return out

    # --- reference data ----------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/<exchangeInfo path>`` (the sheets' "Instruments" lines:
        ``/api/v3/exchangeInfo``, ``/fapi/v1/exchangeInfo``, ``/dapi/v1/exchangeInfo``)."""
        return HttpRequest(
            self.rest_url + self.depth_path.replace("depth", "exchangeInfo"), weight=self.exchange_info_weight
        )

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``{"symbols": [{"symbol", "baseAsset", "quoteAsset", "status" (COIN-M:
        ``contractStatus``), "contractType", "deliveryDate", "contractSize",
        "filters": [{"filterType": "PRICE_FILTER", "tickSize"}, {"filterType":
        "LOT_SIZE", "stepSize"}]}]}`` → instruments that trade or are about to
        (``TRADING``, ``PENDING_TRADING``, ``PRE_TRADING``) and whose symbol
        maps back to the same native symbol (see :meth:`instrument_symbol`).

        Raises:
            RemoteError: the body is a Binance error (``{"code": .., "msg": ..}``).
            MalformedMessage: anything else that is not an exchange info.
        """
        msg = json_body(self.venue, body)
        if type(msg) is dict and "symbols" not in msg and "code" in msg:
            raise RemoteError(f"{self.venue} exchangeInfo error {msg.get('code')}: {msg.get('msg')}")
        out: list[Instrument] = []
        try:
            for row in msg["symbols"]:
                status = row.get("status", row.get("contractStatus"))
                if status not in _LISTED:
                    continue
                named = self.instrument_symbol(row)
                if named is None:
                    continue
                symbol, kind = named
                filters = {f.get("filterType"): f for f in row.get("filters") or ()}
                size = row.get("contractSize") if self.inverse_contracts else None
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        row["symbol"],
                        kind,
                        step(filters.get("PRICE_FILTER", {}).get("tickSize")),
                        step(filters.get("LOT_SIZE", {}).get("stepSize")),
                        None if size is None else float(size),
                        inverse=self.inverse_contracts,
                    )
                )
        except BODY_ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad exchangeInfo: {exc!r}", body) from exc
        return out

    def instrument_symbol(self, row: dict[str, Any]) -> tuple[str, str] | None:
        """The unified symbol and kind of one ``exchangeInfo`` row, or ``None``
        when wsmux cannot name it: spot ``BASE-QUOTE``; futures ``PERPETUAL``
        → ``-PERP``, a delivery contract → ``-YYYYMMDD`` of ``deliveryDate``
        (UTC). Kept only if :meth:`native_symbol` gives the row's own symbol
        back (so ``to_native`` and the list agree)."""
        base, quote = row["baseAsset"], row["quoteAsset"]
        if not self.futures:
            symbol, kind = f"{base}-{quote}", "spot"
        elif row.get("contractType") == "PERPETUAL":
            symbol, kind = f"{base}-{quote}-PERP", "perp"
        elif row.get("contractType") and type(row.get("deliveryDate")) is int:
            day = datetime.datetime.fromtimestamp(row["deliveryDate"] / 1000, datetime.UTC)
            symbol, kind = f"{base}-{quote}-{day:%Y%m%d}", "future"
        else:
            return None
        if unified_or_none(symbol) is None:
            return None
        try:
            native = self.native_symbol(*parse_symbol(symbol))
        except WsmuxError:
            return None
        return (symbol, kind) if native == row["symbol"] else None


def _strip_path(url: str) -> str:
    url = url.rstrip("/")
    for tail in ("/stream", "/ws"):
        if url.endswith(tail):
            return url[: -len(tail)]
    return url
