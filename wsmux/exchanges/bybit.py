"""Bybit v5 public market data: spot (``"bybit"``) and USDT perpetuals (``"bybit-linear"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/bybit-v5.md``
(which cites bybit-exchange.github.io ``docs/v5/ws/connect`` and the v5
orderbook page, and cryptofeed's v5 implementation). Each rule is restated
where it is enforced:

* **Endpoints.** Spot ``wss://stream.bybit.com/v5/public/spot``; USDT/USDC
  perpetuals and USDT futures ``wss://stream.bybit.com/v5/public/linear``.
* **Symbols.** Spot ``BTC-USDT`` is ``BTCUSDT``; on the linear endpoint the
  USDT perpetual ``BTC-USDT-PERP`` is ``BTCUSDT``. (USDC perpetuals and dated
  futures use other spellings the sheet does not give, so they are refused.)
  Native symbols are ambiguous to split, so the adapter learns them at
  subscribe time.
* **Subscribing.** ``{"req_id":..,"op":"subscribe","args":["orderbook.200.BTCUSDT",
  ...]}``, one ack per request (``"success": false`` with the reason in
  ``ret_msg`` is a refusal → :class:`~wsmux.errors.SubscriptionRejected`). At
  most 10 args per subscribe message on spot; on derivatives the args of one
  connection must total at most 21,000 characters (both UNCONFIRMED): wsmux
  sends 10 per message on both and caps a linear connection at 500 topics.
* **Keep-alive.** Send ``{"req_id":"ping","op":"ping"}`` every 20 s; the reply
  is ``{"success":true,"ret_msg":"pong",...,"op":"ping"}`` (spot) or
  ``{"op":"pong",...}`` (linear). Both are ignored.
* **Book (``orderbook.{depth}.{symbol}``).** The first message after subscribe
  is a ``snapshot`` that replaces the book; so does any later ``snapshot``, and
  a message with ``u == 1`` (the service restarted) is treated as a snapshot
  whatever its type. ``delta`` sizes are absolute, ``"0"`` deletes. ``u``
  (update id) is consecutive per topic, so ``u != last + 1`` is a gap
  (:attr:`~wsmux.book.Continuity.SEQUENCE`, the sheet: "generally continuous")
  and wsmux resubscribes for a new snapshot. Bybit sends no delete for levels
  pushed beyond the subscribed depth, so the book is truncated to that depth
  after every message. No checksum.
* **Depths.** Books are served at 50, 200 and 1000 levels (and 1 for the top
  of book): a requested depth is rounded up to the next of 50/200/1000, and
  ``depth=None`` asks for 200.
* **Quotes.** From the level-1 book ``orderbook.1.{symbol}`` (10 ms; only
  snapshots in practice, re-sent every 3 s unchanged): best bid/ask, ``seq = u``.
  (Spot ``tickers`` carry no bid/ask, so one source serves both markets.)
* **Trades.** ``publicTrade.{symbol}``: ``S`` is the taker side.
* **Tickers (linear).** ``tickers.{symbol}``: a ``snapshot`` then ``delta``
  messages with **only the changed fields**, merged into a per-connection
  cache. ``fundingRate``/``nextFundingTime`` (with ``markPrice``) →
  :class:`Funding`; ``openInterest`` (base coin) → :class:`OpenInterest`; an
  event is emitted when its fields are in the message.
* **Liquidations (linear).** ``allLiquidation.{symbol}`` (the sheet leaves open
  which topic is current; pybit PR #291 and ccxt PR #27941 moved to
  ``allLiquidation`` and deprecated ``liquidation``). Each entry ``{T, s, S, v,
  p}``. ``S`` is the side of the *liquidated position* ("Buy": a long was
  liquidated — cryptofeed issue #985 found Bybit's side inverted against other
  venues), so :attr:`Liquidation.side` — the side of the liquidation order —
  is the opposite of ``S``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.model import (
    BookSnapshot,
    Channel,
    Event,
    Funding,
    Liquidation,
    OpenInterest,
    Quote,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["DEPTHS", "BybitLinearAdapter", "BybitSpotAdapter", "book_depth"]

DEPTHS = (50, 200, 1000)
"""Book depths used for ``Channel.BOOK`` (bybit-v5.md, "Order book": spot and
linear serve 1, 50, 200 and 1000 levels; level 1 is used for quotes)."""

_DEFAULT_DEPTH = 200
_MS = 1_000_000  # ns per ms
_NAN = math.nan
_TOPICS_PER_MESSAGE = 10
_TAKER = {"Buy": Side.BUY, "Sell": Side.SELL}
# allLiquidation "S" is the liquidated position's side; the order closing it is the other side.
_LIQUIDATION_ORDER = {"Buy": Side.SELL, "Sell": Side.BUY}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_TICKER_CHANNELS = frozenset({Channel.FUNDING, Channel.OPEN_INTEREST})

_Handler = Callable[[Any, str, str, int], Sequence[Event | Diff]]


def book_depth(depth: int | None) -> int:
    """The Bybit book depth to subscribe for a requested ``depth``.

    Rule (bybit-v5.md, "Order book" table): spot and linear serve 50, 200 and
    1000 levels; round up to the next of these; ``None`` is 200.

    Raises:
        ConfigError: ``depth`` is larger than 1000.
    """
    if depth is None:
        return _DEFAULT_DEPTH
    for venue_depth in DEPTHS:
        if depth <= venue_depth:
            return venue_depth
    raise ConfigError(f"bybit serves at most {DEPTHS[-1]} book levels per side, not {depth}")


def _ms(value: Any) -> int:
    """Bybit millisecond time (int or digit string) to integer ns."""
    return int(value) * _MS


class _BybitAdapter(Adapter):
    """Shared protocol of the Bybit v5 public endpoints (see the module docstring)."""

    default_rest_url: ClassVar[str] = "https://api.bybit.com"
    # GET /v5/market/time -> {"result": {"timeNano": "<ns>", ...}, "time": <ms>} (the
    # venue's REST docs, "Get Bybit Server Time"; the sheet is silent on it)
    server_time_path: ClassVar[str | None] = "/v5/market/time"
    server_time_field: ClassVar[tuple[str | int, ...]] = ("result", "timeNano")
    server_time_unit_ns: ClassVar[int] = 1
    server_time_resolution_ns: ClassVar[int | None] = 1_000_000  # nanosecond text, millisecond clock
    # bybit-v5.md, "Keep-alive": {"op":"ping"} every 20 s; idle connections are
    # closed after ~10 min (UNCONFIRMED).
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"req_id":"ping","op":"ping"}',
        ping_interval=20.0,
        ws_ping_interval=None,
        silence_timeout=60.0,
        stale_after=30.0,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # native -> unified (learned at subscribe)
        self._depths: dict[str, int] = {}  # unified -> subscribed book depth
        self._req_id = 0
        # Per-connection state:
        self._tops: dict[str, list[float]] = {}  # native -> [bid px, bid sz, ask px, ask sz] (orderbook.1)
        self._tickers: dict[str, dict[str, Any]] = {}  # native -> merged tickers fields
        self._ticker_channels: dict[str, set[Channel]] = {}  # native -> FUNDING/OPEN_INTEREST wanted
        self._handlers: dict[str, _Handler] = {
            "orderbook": self._orderbook,
            "publicTrade": self._trades,
            "tickers": self._ticker,
            "allLiquidation": self._liquidation,
        }

    def reset(self) -> None:
        self._req_id = 0
        self._tops.clear()
        self._tickers.clear()
        self._ticker_channels.clear()

    # --- symbols -------------------------------------------------------------------

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            raise MalformedMessage(f"{self.venue}: data for a symbol never subscribed: {native!r}")
        return symbol

    # --- books ---------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """Bybit's book rule (bybit-v5.md, "Order book"): stream snapshot on
        subscribe (and whenever ``u == 1``), ``u`` consecutive (SEQUENCE), no
        checksum, book truncated to the subscribed depth (the depth last
        subscribed for ``symbol``, else 200)."""
        return SyncRule(
            snapshot=SnapshotSource.STREAM,
            continuity=Continuity.SEQUENCE,
            depth=self._depths.get(symbol, _DEFAULT_DEPTH),
        )

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """The book rule for ``subscription``, truncated to the Bybit depth it
        asks for (see :func:`book_depth`)."""
        self._depths[subscription.symbol] = book_depth(subscription.depth)
        return self.book_rule(subscription.symbol)

    def check(self, subscription: Subscription) -> None:
        super().check(subscription)
        if subscription.channel is Channel.BOOK:
            book_depth(subscription.depth)

    # --- subscriptions -------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _topic(self, op: str, sub: Subscription, native: str) -> str | None:
        channel = sub.channel
        if channel is Channel.BOOK:
            depth = book_depth(sub.depth)
            self._depths[sub.symbol] = depth
            return f"orderbook.{depth}.{native}"
        if channel is Channel.QUOTES:
            return f"orderbook.1.{native}"
        if channel is Channel.TRADES:
            return f"publicTrade.{native}"
        if channel is Channel.LIQUIDATIONS:
            return f"allLiquidation.{native}"
        # FUNDING and OPEN_INTEREST share the tickers topic: subscribe it once.
        wanted = self._ticker_channels.setdefault(native, set())
        if op == "subscribe":
            first = not wanted
            wanted.add(channel)
            return f"tickers.{native}" if first else None
        if channel not in wanted:
            return None
        wanted.discard(channel)
        return None if wanted else f"tickers.{native}"

    def _requests(self, op: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        topics: list[str] = []
        for sub in subscriptions:
            self.check(sub)
            native = self.to_native(sub.symbol, sub.channel)
            self._symbols[native] = sub.symbol
            topic = self._topic(op, sub, native)
            if topic is not None and topic not in topics:
                topics.append(topic)
        out: list[Outgoing] = []
        per = self.limits.topics_per_message
        for i in range(0, len(topics), per):
            self._req_id += 1
            out.append(dumps({"req_id": f"{op[:3]}-{self._req_id}", "op": op, "args": topics[i : i + per]}))
        return out

    # --- parsing -------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        topic: Any = msg.get("topic")
        try:
            if topic is None:
                return self._control(msg, frame)
            kind, _, rest = topic.partition(".")
            handler = self._handlers.get(kind)
            if handler is None:
                raise unknown_message("topic", topic, frame)
            return handler(msg, kind, rest, recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise MalformedMessage(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad {topic or 'control'} message: {exc!r}", frame) from exc

    def _control(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        op = msg.get("op")
        if op in ("ping", "pong"):
            return []  # bybit-v5.md, "Keep-alive": the pong reply, in either shape
        if op in ("subscribe", "unsubscribe"):
            if msg.get("success") is True:
                return []
            reason = msg.get("ret_msg") or "no reason given"
            if op == "subscribe":
                raise SubscriptionRejected(f"{self.venue} refused to subscribe: {reason}")
            raise RemoteError(f"{self.venue} refused to unsubscribe: {reason}")
        raise MalformedMessage("unknown message type", frame)

    def _orderbook(self, msg: Any, kind: str, rest: str, recv_ns: int) -> list[Event | Diff]:
        depth, _, native = rest.partition(".")
        data = msg["data"]
        u = data["u"]
        if u.__class__ is not int:
            raise TypeError(f"u must be an integer, not {u!r}")
        raw_bids = data["b"]
        raw_asks = data["a"]
        if raw_bids.__class__ is not list or raw_asks.__class__ is not list:
            raise TypeError("b and a must be lists")
        typ = msg["type"]
        # bybit-v5.md: a later snapshot, or u == 1 (service restart), replaces the book.
        if typ == "snapshot" or u == 1:
            snapshot = True
        elif typ == "delta":
            snapshot = False
        else:
            raise MalformedMessage(f"unknown message type: orderbook type {typ!r}")
        ts = _ms(msg.get("cts") or msg["ts"])
        symbol = self._unified(native)
        if snapshot or depth == "1":
            bids = tuple([(float(p), float(q)) for p, q in raw_bids])
            asks = tuple([(float(p), float(q)) for p, q in raw_asks])
            if depth == "1":
                return [self._quote(symbol, native, bids, asks, snapshot, ts, recv_ns, u)]
            return [BookSnapshot(self.venue, symbol, bids, asks, ts, recv_ns, u)]
        # a delta: the decoded levels go to the book sync as they are (one pass there)
        return [Diff(symbol, raw_bids, raw_asks, ts, u)]

    def _quote(
        self,
        symbol: str,
        native: str,
        bids: tuple[tuple[float, float], ...],
        asks: tuple[tuple[float, float], ...],
        snapshot: bool,
        ts: int,
        recv_ns: int,
        u: int,
    ) -> Quote:
        top = self._tops.get(native)
        if snapshot or top is None:
            top = [_NAN, _NAN, _NAN, _NAN]
            self._tops[native] = top
            if bids:
                top[0], top[1] = bids[0]
            if asks:
                top[2], top[3] = asks[0]
        else:
            # A level-1 delta: a positive size is the new top; a zero at the
            # current top price empties the side until the next level arrives.
            for i, levels in ((0, bids), (2, asks)):
                for price, size in levels:
                    if size > 0.0:
                        top[i], top[i + 1] = price, size
                    elif price == top[i]:
                        top[i] = top[i + 1] = _NAN
        return Quote(self.venue, symbol, top[0], top[1], top[2], top[3], ts, recv_ns, u)

    def _trades(self, msg: Any, kind: str, rest: str, recv_ns: int) -> list[Event]:
        venue = self.venue
        unified = self._unified
        out: list[Event] = []
        for entry in msg["data"]:
            seq = entry.get("seq")
            out.append(
                Trade(
                    venue,
                    unified(entry["s"]),
                    float(entry["p"]),
                    float(entry["v"]),
                    _TAKER[entry["S"]],
                    str(entry["i"]),
                    _ms(entry["T"]),
                    recv_ns,
                    int(seq) if seq is not None else None,
                )
            )
        return out

    def _ticker(self, msg: Any, kind: str, rest: str, recv_ns: int) -> list[Event]:
        data = msg["data"]
        native = data.get("symbol") or rest
        symbol = self._unified(native)
        typ = msg["type"]
        if typ == "snapshot":
            state = dict(data)
            self._tickers[native] = state
        elif typ == "delta":
            state = self._tickers.setdefault(native, {})
            state.update(data)
        else:
            raise MalformedMessage(f"unknown message type: tickers type {typ!r}")
        wanted = self._ticker_channels.get(native, _TICKER_CHANNELS)
        ts = _ms(msg["ts"])
        out: list[Event] = []
        if Channel.FUNDING in wanted and ("fundingRate" in data or "nextFundingTime" in data):
            rate = state.get("fundingRate")
            if rate:  # "" for contracts without funding
                next_time = state.get("nextFundingTime")
                mark = state.get("markPrice")
                out.append(
                    Funding(
                        self.venue,
                        symbol,
                        float(rate),
                        _ms(next_time) if next_time else None,
                        float(mark) if mark else None,
                        ts,
                        recv_ns,
                    )
                )
        if Channel.OPEN_INTEREST in wanted and "openInterest" in data:
            oi = data["openInterest"]
            if oi:
                out.append(OpenInterest(self.venue, symbol, float(oi), ts, recv_ns))
        return out

    def _liquidation(self, msg: Any, kind: str, rest: str, recv_ns: int) -> list[Event]:
        venue = self.venue
        return [
            Liquidation(
                venue,
                self._unified(entry["s"]),
                _LIQUIDATION_ORDER[entry["S"]],
                float(entry["p"]),
                float(entry["v"]),
                _ms(entry["T"]),
                recv_ns,
            )
            for entry in msg["data"]
        ]


class BybitSpotAdapter(_BybitAdapter):
    """Bybit v5 spot (``wss://stream.bybit.com/v5/public/spot``), venue id ``"bybit"``.

    Channels: books (``orderbook.{50|200|1000}``), quotes (``orderbook.1``),
    trades (``publicTrade``). Sizes are in the base currency. See the module
    docstring for the rules (sheet: ``shared/exchanges/bybit-v5.md``).
    """

    venue: ClassVar[str] = "bybit"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.QUOTES, Channel.TRADES})
    default_url: ClassVar[str] = "wss://stream.bybit.com/v5/public/spot"
    # bybit-v5.md, "Subscribing" (UNCONFIRMED): spot <= 10 args per subscribe
    # message. Topics per connection is wsmux's choice.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=_TOPICS_PER_MESSAGE,
        messages_per_second=5.0,
        connections_per_window=500,
        connection_window=300.0,
    )

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USDT`` → ``BTCUSDT`` (bybit-v5.md, spot symbols)."""
        base, quote, kind = parse_symbol(symbol)
        if kind is not None:
            raise UnknownSymbol(f"bybit spot has no {symbol!r}; perpetuals are on venue 'bybit-linear'")
        return base + quote


class BybitLinearAdapter(_BybitAdapter):
    """Bybit v5 linear (USDT perpetuals, ``wss://stream.bybit.com/v5/public/linear``),
    venue id ``"bybit-linear"``.

    Channels: books, quotes, trades as on spot, plus funding and open interest
    (``tickers``) and liquidations (``allLiquidation``). Only USDT perpetuals
    (``BTC-USDT-PERP`` ↔ ``BTCUSDT``) are mapped. Sizes are in the base coin
    (Bybit quotes linear contracts in the base coin). See the module docstring
    for the rules (sheet: ``shared/exchanges/bybit-v5.md``).
    """

    venue: ClassVar[str] = "bybit-linear"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {
            Channel.BOOK,
            Channel.QUOTES,
            Channel.TRADES,
            Channel.FUNDING,
            Channel.OPEN_INTEREST,
            Channel.LIQUIDATIONS,
        }
    )
    default_url: ClassVar[str] = "wss://stream.bybit.com/v5/public/linear"
    # bybit-v5.md, "Subscribing" (UNCONFIRMED): derivatives args total <= 21,000
    # characters per connection; 500 topics of <= 40 characters stay under it.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=500,
        topics_per_message=_TOPICS_PER_MESSAGE,
        messages_per_second=5.0,
        connections_per_window=500,
        connection_window=300.0,
    )

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USDT-PERP`` → ``BTCUSDT`` (bybit-v5.md: linear symbols)."""
        base, quote, kind = parse_symbol(symbol)
        if kind != "PERP" or quote != "USDT":
            raise UnknownSymbol(
                f"bybit-linear maps USDT perpetuals only (BASE-USDT-PERP), not {symbol!r}; "
                "spot pairs are on venue 'bybit'"
            )
        return base + quote
