"""HTX (formerly Huobi) public market data: :class:`HtxAdapter` (spot, venue
id ``"htx"``) and :class:`HtxSwapAdapter` (USDT-margined swaps and futures,
venue id ``"htx-swap"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/htx-huobi.md``
(HTX's spot and USDT-M swap API docs, copies of Nov 2025, and cryptofeed;
verified 2026-12). Each rule is restated where it is enforced:

* **Framing.** Every server frame is binary gzip (:attr:`Adapter.compressed`,
  :meth:`decompress`); client frames are JSON text. Numbers are JSON numbers,
  sometimes in exponent form (``9.2E-7``), read as floats (the nearest double
  of the text, as ``float(text)`` gives; no checksum needs the text).
* **Endpoints.** Spot market data on ``wss://api.huobi.pro/ws``; the
  incremental MBP book only on ``wss://api.huobi.pro/feed`` — so spot books
  have their own route (:meth:`HtxAdapter.route`); AWS mirrors
  ``api-aws.huobi.pro``. Swaps on ``wss://api.hbdm.com/linear-swap-ws``.
* **Subscribing.** ``{"sub": topic, "id": id}`` → ``{"id","status":"ok",
  "subbed"}``; ``{"unsub": ..}`` → ``unsubbed``; ``{"req": topic, "id": id}``
  → ``{"id","rep","status":"ok","data":{..}}``; ``{"status":"error",
  "err-code","err-msg"}`` is a refusal. ``sub`` accepts an array of topics but
  all-or-nothing, so wsmux sends one topic per message: a refusal names its
  topic and spares the others.
* **Keep-alive.** The server sends ``{"ping": n}`` every ~5 s and drops a
  client that leaves two (spot) or five (swaps) unanswered; the adapter
  answers each with ``{"pong": n}`` (a :class:`~wsmux.adapter.Reply`). A
  ``{"pong": n}`` from the server (the answer to a client ping) is ignored.
* **Spot book (``market.$symbol.mbp.150``, on ``/feed``).** Updates carry
  ``seqNum`` and ``prevSeqNum`` (sizes absolute, ``0`` deletes; a side may
  be absent). The snapshot is *requested on the stream*: wsmux subscribes,
  buffers updates (the rule's ``SnapshotSource.REST`` behaviour), sends
  ``req`` for the same topic, and bridges the answer: buffered updates up to
  the one with ``prevSeqNum == snapshot seqNum`` are dropped, then each
  update's ``prevSeqNum`` must equal the previous ``seqNum``
  (``Continuity.PREV_ID``); a break sends ``req`` again. ``mbp.400`` has no
  ``req`` (it cannot be bootstrapped) and ``depth.step0`` is snapshots only,
  so 150 is the strictest verifiable feed. 150-level books get no deletes for
  levels that fall outside the 150 (unconfirmed): the book is trimmed to 150.
* **Swap book (``market.$contract.depth.size_150.high_freq``,
  ``data_type: "incremental"``).** The first message after (re)subscribing is
  ``event: "snapshot"``, then ``"update"``s whose ``version`` is the previous
  + 1 (``Continuity.SEQUENCE``; the sheet says it counts per connection —
  wsmux reads it per topic, see the docs page); a break resubscribes.
* **Swap funding and liquidations** are served only on
  ``wss://api.hbdm.com/linear-swap-notification`` (their own route), with
  another protocol: ``{"op":"sub","cid","topic":"public.$c.funding_rate"}``,
  ``{"op":"ping","ts"}`` answered ``{"op":"pong","ts"}``, data
  ``{"op":"notify","topic","ts","data":[..]}`` (field names unconfirmed).
* **No checksum** on either book: the integrity level is ``SEQUENCE``.

**Units.** Spot sizes are in the base currency. Swap book sizes are in
*contracts*; once :meth:`HtxSwapAdapter.use_instruments` has learnt the
``contract_size`` (base units per contract) of a contract from
``swap_contract_info``, book sizes are reported in base units; until then they
stay in contracts. Swap trades carry ``quantity`` in base units.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing, Reply
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.model import BookSnapshot, Candle, Channel, Event, Funding, Instrument, Liquidation, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "BOOK_DEPTH",
    "HtxAdapter",
    "HtxSwapAdapter",
    "htx_spot_symbol",
    "htx_swap_symbol",
]

BOOK_DEPTH = 150
"""Levels per side of the HTX books wsmux keeps (htx-huobi.md: ``mbp.150``, ``size_150``)."""

_MS = 1_000_000  # ns per ms
_S = 1_000_000_000  # ns per s
_NAN = float("nan")
_GZIP_MAGIC = b"\x1f\x8b"
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_SPOT_QUOTES = ("usdt", "usdc", "usdd", "btc", "eth", "ht", "trx", "eur")
_CANDLE_INTERVAL = "1m"
# htx-huobi.md: swap funding and liquidations live on the notification endpoint
_NOTIFY = {Channel.FUNDING: "funding_rate", Channel.LIQUIDATIONS: "liquidation_orders"}
_MARKET_PATH = "/linear-swap-ws"
_NOTIFY_PATH = "/linear-swap-notification"

_Handler = Callable[[str, Any, Any, int], Sequence[Event | Diff]]


def htx_spot_symbol(symbol: str) -> str:
    """HTX spot symbol of a unified one: ``BTC-USDT`` → ``btcusdt``
    (htx-huobi.md, "Endpoints").

    Raises:
        UnknownSymbol: malformed, or not a spot symbol.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is not None:
        raise UnknownSymbol(f"htx (spot) lists spot symbols only, not {symbol!r}; use htx-swap")
    return (base + quote).lower()


def htx_swap_symbol(symbol: str) -> str:
    """HTX USDT-M contract code: ``BTC-USDT-PERP`` → ``BTC-USDT``; the dated
    future ``BTC-USDT-20210625`` → ``BTC-USDT-210625`` (htx-huobi.md).

    Raises:
        UnknownSymbol: malformed, spot, or not USDT-margined.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is None:
        raise UnknownSymbol(f"htx-swap lists swaps and futures, not spot {symbol!r}; use htx")
    if quote != "USDT":
        raise UnknownSymbol(f"htx-swap lists USDT-margined contracts only, not {symbol!r}")
    return f"{base}-{quote}" if kind == "PERP" else f"{base}-{quote}-{kind[2:]}"


def _levels(raw: Any) -> Any:
    """A book side as sent (``[[price, size], ...]`` numbers), or ``()`` when absent."""
    if raw is None:
        return ()
    if raw.__class__ is not list:
        raise TypeError("book side must be a list")
    return raw


def _trade_id(item: Any) -> str:
    """``tradeId`` (spot; htx-huobi.md: the new unique id — ``id`` is the old
    huge one), else the swap's ``trade_id`` / ``id``."""
    for key in ("tradeId", "trade_id", "id"):
        value = item.get(key)
        if value is not None:
            return str(value)
    raise KeyError("tradeId")


def _float_levels(raw: Any) -> tuple[tuple[float, float], ...]:
    return tuple([(float(level[0]), float(level[1])) for level in _levels(raw)])


class _HtxBase(Adapter):
    """The market-WebSocket protocol shared by spot and swaps."""

    compressed: ClassVar[bool] = True
    # htx-huobi.md, "Keep-alive": the server pings ({"ping": n}) every 5 s and
    # wsmux answers each (Reply); no client ping is needed or documented.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ping_interval=20.0, ws_ping_interval=None, silence_timeout=30.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # native symbol -> unified
        self._handlers: dict[str, _Handler] = {
            "trade.detail": self._trades,
            "bbo": self._bbo,
            "kline.1min": self._candle,
        }

    # --- frames -----------------------------------------------------------------------

    def decompress(self, frame: bytes) -> bytes:
        """Gunzip one server frame (htx-huobi.md, "Framing").

        Raises:
            MalformedMessage: the frame is not gzip.
        """
        try:
            return zlib.decompress(frame, 16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise MalformedMessage(f"{self.venue}: frame does not gunzip: {exc}", frame) from exc

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        if isinstance(frame, bytes) and frame[:2] == _GZIP_MAGIC:
            frame = self.decompress(frame)  # a raw frame (replay of a capture)
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        topic: Any = None
        try:
            topic = msg.get("ch")
            if topic is None:
                return self._control(msg, frame, recv_ns)
            if topic.__class__ is not str:
                raise TypeError(f"ch {topic!r}")
            # market.$symbol.$kind...: the symbol never contains a dot
            _, native, kind = topic.split(".", 2)
            handler = self._handlers.get(kind) or self._book_handler(kind)
            if handler is None:
                raise unknown_message("topic", topic, frame)
            return handler(native, msg, msg["tick"], recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise exc.__class__(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad {topic or 'control'} message: {exc!r}", frame) from exc

    def _book_handler(self, kind: str) -> _Handler | None:
        return None

    def _control(self, msg: dict[str, Any], frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        ping = msg.get("ping")
        if ping is not None:
            return [Reply(dumps({"pong": ping}))]  # htx-huobi.md: echo the server's number
        if "pong" in msg:
            return []
        status = msg.get("status")
        if status == "ok":
            if "rep" in msg:
                return self._reply(msg, recv_ns)
            return []  # subbed / unsubbed acks
        if status == "error":
            text = f"{self.venue} {msg.get('err-code', '?')}: {msg.get('err-msg', '')} (id {msg.get('id')})"
            if str(msg.get("id", "")).startswith("sub:"):
                raise SubscriptionRejected(text)
            raise RemoteError(text)
        # a well-formed message of another kind names itself (notification ``op``s...)
        raise unknown_message("message", msg.get("op") or msg.get("type") or msg.get("event"), frame)

    def _reply(self, msg: dict[str, Any], recv_ns: int) -> Sequence[Event | Diff]:
        raise unknown_message("rep", msg["rep"])

    def _unified(self, native: str) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            symbol = self._guess_unified(native)
            if symbol is None:
                raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}")
            self._symbols[native] = symbol
        return symbol

    def _guess_unified(self, native: str) -> str | None:
        raise NotImplementedError

    # --- channels ----------------------------------------------------------------------

    def _trade_size(self, native: str, item: Any) -> float:
        return float(item["amount"])

    def _trades(self, native: str, msg: Any, tick: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(native)
        venue = self.venue
        return [
            Trade(
                venue,
                symbol,
                float(item["price"]),
                self._trade_size(native, item),
                _SIDES[item["direction"]],  # htx-huobi.md: the taker's side
                _trade_id(item),
                int(item["ts"]) * _MS,
                recv_ns,
            )
            for item in tick["data"]
        ]

    def _bbo(self, native: str, msg: Any, tick: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(native)
        bid = tick["bid"]
        ask = tick["ask"]
        if bid.__class__ is list or ask.__class__ is list:
            # swaps: "bid": [price, size] (empty when the side is empty)
            bp, bs = (float(bid[0]), self._size(native, bid[1])) if bid else (_NAN, _NAN)
            ap, az = (float(ask[0]), self._size(native, ask[1])) if ask else (_NAN, _NAN)
            seq = tick.get("version")
            ts = tick.get("ts", msg.get("ts"))
        else:  # spot: bid, bidSize, ask, askSize, seqId, quoteTime
            bp, bs = (float(bid), float(tick["bidSize"])) if bid is not None else (_NAN, _NAN)
            ap, az = (float(ask), float(tick["askSize"])) if ask is not None else (_NAN, _NAN)
            seq = tick.get("seqId")
            ts = tick.get("quoteTime", msg.get("ts"))
        if seq is not None and seq.__class__ is not int:
            raise TypeError(f"bbo sequence {seq!r}")
        return [Quote(self.venue, symbol, bp, bs, ap, az, int(ts) * _MS if ts is not None else None, recv_ns, seq)]

    def _candle(self, native: str, msg: Any, tick: Any, recv_ns: int) -> list[Event]:
        """``tick``: ``id`` (open time, s), ``open``, ``high``, ``low``,
        ``close``, ``amount`` (base volume). HTX pushes the forming candle
        again and again: never marked closed."""
        symbol = self._unified(native)
        start = tick["id"]
        if start.__class__ is not int:
            raise TypeError(f"candle id {start!r}")
        ts = msg.get("ts")
        return [
            Candle(
                self.venue,
                symbol,
                _CANDLE_INTERVAL,
                start * _S,
                float(tick["open"]),
                float(tick["high"]),
                float(tick["low"]),
                float(tick["close"]),
                float(tick["amount"]),
                False,
                int(ts) * _MS if ts is not None else None,
                recv_ns,
            )
        ]

    def _size(self, native: str, size: Any) -> float:
        return float(size)

    # --- subscriptions ---------------------------------------------------------------

    def _topic(self, sub: Subscription) -> str:
        self.check(sub)  # raises UnknownChannel / UnknownSymbol
        native = self.to_native(sub.symbol, sub.channel)
        self._symbols[native] = sub.symbol
        return f"market.{native}.{self._kinds[sub.channel]}"

    _kinds: ClassVar[dict[Channel, str]]

    def _sub(self, op: str, topic: str) -> str:
        return dumps({op: topic, "id": f"{op}:{topic}"})

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [self._sub("sub", self._topic(sub)) for sub in subscriptions]

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [self._sub("unsub", self._topic(sub)) for sub in subscriptions]


class HtxAdapter(_HtxBase):
    """HTX spot, venue id ``"htx"``. See the module docstring for the venue
    rules (sheet: ``shared/exchanges/htx-huobi.md``).

    Channels → events:

    * ``market.$s.mbp.150`` (on ``/feed``) → :class:`BookUpdate` with ``seq =
      seqNum``, ``prev_seq = prevSeqNum``, ``first_seq = prevSeqNum + 1``; the
      ``req`` answer → :class:`BookSnapshot` (``seq = seqNum``).
    * ``market.$s.bbo`` → :class:`Quote` (``seq = seqId``, ``ts = quoteTime``).
    * ``market.$s.trade.detail`` → :class:`Trade` (taker side ``direction``,
      ``trade_id = tradeId``).
    * ``market.$s.kline.1min`` → :class:`Candle` (the forming candle).
    """

    venue: ClassVar[str] = "htx"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.QUOTES, Channel.TRADES, Channel.CANDLES})
    default_url: ClassVar[str] = "wss://api.huobi.pro/ws"
    default_rest_url: ClassVar[str] = "https://api.huobi.pro"
    backup_urls: ClassVar[tuple[str, ...]] = ("wss://api-aws.huobi.pro/ws",)
    # htx-huobi.md, "Subscribing": req <= 1 per 100 ms per connection; sub is
    # not limited by the sheet. One topic per message (all-or-nothing arrays).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=1,
        messages_per_second=10.0,
    )
    _kinds: ClassVar[dict[Channel, str]] = {
        Channel.BOOK: f"mbp.{BOOK_DEPTH}",
        Channel.QUOTES: "bbo",
        Channel.TRADES: "trade.detail",
        Channel.CANDLES: "kline.1min",
    }

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`htx_spot_symbol`."""
        return htx_spot_symbol(symbol)

    def _guess_unified(self, native: str) -> str | None:
        for quote in _SPOT_QUOTES:
            if native.endswith(quote) and len(native) > len(quote):
                symbol = f"{native[: -len(quote)]}-{quote}".upper()
                try:
                    parse_symbol(symbol)
                except UnknownSymbol:
                    return None
                return symbol
        return None

    # --- routes: the MBP book lives on /feed ---------------------------------------------

    def route(self, subscription: Subscription) -> str:
        """Spot MBP books are served only on ``/feed`` (htx-huobi.md, "Endpoints")."""
        return "feed" if subscription.channel is Channel.BOOK else ""

    def connect_url(self, subscriptions: Sequence[Subscription]) -> str:
        if subscriptions and self.route(subscriptions[0]) == "feed":
            return self.url[: -len("/ws")] + "/feed" if self.url.endswith("/ws") else self.url
        return self.url

    # --- books -------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """HTX spot ``mbp.150`` (htx-huobi.md, "Spot MBP sync"): updates are
        buffered until the ``req`` snapshot; the first applied update has
        ``prevSeqNum == snapshot seqNum`` (``first_seq = prevSeqNum + 1``
        bridges ``snapshot + 1``), then ``prevSeqNum == previous seqNum``; no
        checksum; 150 levels per side."""
        return SyncRule(
            snapshot=SnapshotSource.REST,  # buffered until the snapshot, which `req` brings on the stream
            continuity=Continuity.PREV_ID,
            bridge_offset=1,
            depth=BOOK_DEPTH,
        )

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sub in subscriptions:
            topic = self._topic(sub)
            out.append(self._sub("sub", topic))
            if sub.channel is Channel.BOOK:
                out.append(self._sub("req", topic))  # the snapshot, after buffering began
        return out

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """A new ``req`` (the subscription itself goes on; updates are buffered)."""
        return [self._sub("req", self._topic(subscription))]

    def _book_handler(self, kind: str) -> _Handler | None:
        return self._mbp if kind == self._kinds[Channel.BOOK] else None

    def _mbp(self, native: str, msg: Any, tick: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(native)
        seq = tick["seqNum"]
        prev = tick["prevSeqNum"]
        if seq.__class__ is not int or prev.__class__ is not int:
            raise TypeError("seqNum and prevSeqNum must be integers")
        ts = int(msg["ts"]) * _MS
        # the decoded number levels go to the book sync as they are
        return [Diff(symbol, _levels(tick.get("bids")), _levels(tick.get("asks")), ts, seq, prev + 1, prev)]

    def _reply(self, msg: dict[str, Any], recv_ns: int) -> Sequence[Event | Diff]:
        topic = msg["rep"]
        if topic.__class__ is not str:
            raise TypeError(f"rep {topic!r}")
        _, native, kind = topic.split(".", 2)
        if kind != self._kinds[Channel.BOOK]:
            raise unknown_message("rep", topic)
        data = msg["data"]
        seq = data["seqNum"]
        if seq.__class__ is not int:
            raise TypeError("seqNum must be an integer")
        ts = msg.get("ts")
        return [
            BookSnapshot(
                self.venue,
                self._unified(native),
                _float_levels(data.get("bids")),
                _float_levels(data.get("asks")),
                int(ts) * _MS if ts is not None else None,
                recv_ns,
                seq,
            )
        ]

    # --- reference data ------------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET /v2/settings/common/symbols`` (htx-huobi.md, "Endpoints")."""
        return HttpRequest(f"{self.rest_url}/v2/settings/common/symbols")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``sc`` (symbol), ``bc``/``qc`` (base/quote, where sent), ``tpp``
        (price decimals), ``tap`` (amount decimals)."""
        out: list[Instrument] = []
        try:
            for item in _ok_data(self.venue, body):
                native = item["sc"]
                base, quote = item.get("bc"), item.get("qc")
                symbol = f"{base}-{quote}".upper() if base and quote else self._guess_unified(native)
                try:
                    parse_symbol(symbol)  # type: ignore[arg-type]
                except UnknownSymbol:
                    continue
                assert symbol is not None
                self._symbols[native] = symbol
                out.append(
                    Instrument(self.venue, symbol, native, "spot", 10.0 ** -int(item["tpp"]), 10.0 ** -int(item["tap"]))
                )
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad instruments answer: {exc!r}") from exc
        return out


def _ok_data(venue: str, body: bytes) -> list[Any]:
    try:
        msg = loads(body)
    except JSONDecodeError as exc:
        raise MalformedMessage(f"{venue}: instruments answer is not JSON") from exc
    if msg.__class__ is not dict or msg.get("status", "ok") != "ok" or msg.get("data").__class__ is not list:
        raise MalformedMessage(f"{venue}: instruments request failed: {str(msg)[:200]}")
    data: list[Any] = msg["data"]
    return data


class HtxSwapAdapter(_HtxBase):
    """HTX USDT-margined swaps and futures, venue id ``"htx-swap"``.

    Channels → events:

    * ``market.$c.depth.size_150.high_freq`` (``data_type: "incremental"``) →
      :class:`BookSnapshot` (``event: "snapshot"``) and :class:`BookUpdate`
      (``seq = version``, +1 each).
    * ``market.$c.bbo`` → :class:`Quote` (``seq = version``).
    * ``market.$c.trade.detail`` → :class:`Trade` (size = ``quantity``, base units).
    * ``market.$c.kline.1min`` → :class:`Candle` (volume = ``amount``, base units).

    On the notification endpoint (``linear-swap-notification``: its own route
    and connection, ``{"op":"sub","cid","topic"}`` requests, ``{"op":"ping"}``
    answered ``{"op":"pong"}``, data as ``{"op":"notify","topic","data"}``;
    field names unconfirmed in the sheet):

    * ``public.$c.funding_rate`` → :class:`Funding` (``funding_rate``, next
      funding at ``settlement_time``).
    * ``public.$c.liquidation_orders`` → :class:`Liquidation` (``direction``
      is the liquidation order's side, ``price``, size ``amount`` in base
      units, else ``volume`` contracts converted where the contract size is
      known).
    """

    venue: ClassVar[str] = "htx-swap"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.BOOK, Channel.QUOTES, Channel.TRADES, Channel.CANDLES, Channel.FUNDING, Channel.LIQUIDATIONS}
    )
    default_url: ClassVar[str] = "wss://api.hbdm.com/linear-swap-ws"
    default_rest_url: ClassVar[str] = "https://api.hbdm.com"
    backup_urls: ClassVar[tuple[str, ...]] = (
        "wss://api.hbdm.vn/linear-swap-ws",
        "wss://api.btcgateway.pro/linear-swap-ws",
    )
    # htx-huobi.md, "Subscribing": <= 40 subscriptions per second per
    # connection, req <= 50/s; one topic per message.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=1,
        messages_per_second=20.0,
    )
    _kinds: ClassVar[dict[Channel, str]] = {
        Channel.BOOK: f"depth.size_{BOOK_DEPTH}.high_freq",
        Channel.QUOTES: "bbo",
        Channel.TRADES: "trade.detail",
        Channel.CANDLES: "kline.1min",
    }

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._contract_sizes: dict[str, float] = {}  # contract code -> base units per contract

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`htx_swap_symbol`."""
        return htx_swap_symbol(symbol)

    def _guess_unified(self, native: str) -> str | None:
        parts = native.split("-")
        if len(parts) == 2:
            symbol = f"{native}-PERP"
        elif len(parts) == 3 and len(parts[2]) == 6 and parts[2].isdigit():
            symbol = f"{parts[0]}-{parts[1]}-20{parts[2]}"
        else:
            return None
        try:
            parse_symbol(symbol)
        except UnknownSymbol:
            return None
        return symbol

    # --- the notification endpoint: funding and liquidations ------------------------------

    def route(self, subscription: Subscription) -> str:
        """Funding and liquidations are served only on ``linear-swap-notification``."""
        return "notification" if subscription.channel in _NOTIFY else ""

    def connect_url(self, subscriptions: Sequence[Subscription]) -> str:
        if subscriptions and self.route(subscriptions[0]) == "notification" and self.url.endswith(_MARKET_PATH):
            return self.url[: -len(_MARKET_PATH)] + _NOTIFY_PATH
        return self.url

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [self._request("sub", sub) for sub in subscriptions]

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [self._request("unsub", sub) for sub in subscriptions]

    def _request(self, op: str, sub: Subscription) -> str:
        kind = _NOTIFY.get(sub.channel)
        if kind is None:
            return self._sub(op, self._topic(sub))
        self.check(sub)
        native = self.to_native(sub.symbol, sub.channel)
        self._symbols[native] = sub.symbol
        topic = f"public.{native}.{kind}"
        return dumps({"op": op, "cid": f"{op}:{topic}", "topic": topic})

    def _control(self, msg: dict[str, Any], frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        op = msg.get("op")
        if op is None:
            return super()._control(msg, frame, recv_ns)
        if op == "notify":
            _, native, kind = msg["topic"].split(".", 2)
            if kind == _NOTIFY[Channel.FUNDING]:
                return self._funding(native, msg, recv_ns)
            if kind == _NOTIFY[Channel.LIQUIDATIONS]:
                return self._liquidations(native, msg, recv_ns)
            raise unknown_message("topic", msg["topic"], frame)
        if op == "ping":  # the notification endpoint's ping: echo its ts
            return [Reply(dumps({"op": "pong", "ts": msg["ts"]}))]
        if op in ("sub", "unsub", "pong"):
            code = msg.get("err-code", 0)
            if code in (0, "0"):
                return []
            text = f"{self.venue} {code}: {msg.get('err-msg', '')} (topic {msg.get('topic')})"
            raise SubscriptionRejected(text) if op == "sub" else RemoteError(text)
        raise unknown_message("op", op, frame)

    def _funding(self, native: str, msg: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(native)
        ts = int(msg["ts"]) * _MS
        out: list[Event] = []
        for item in msg["data"]:
            settles = item.get("settlement_time")
            out.append(
                Funding(
                    self.venue,
                    symbol,
                    float(item["funding_rate"]),
                    int(settles) * _MS if settles not in (None, "") else None,
                    None,
                    ts,
                    recv_ns,
                )
            )
        return out

    def _liquidations(self, native: str, msg: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(native)
        out: list[Event] = []
        for item in msg["data"]:
            amount = item.get("amount")  # base units; volume is contracts
            size = float(amount) if amount is not None else self._size(native, item["volume"])
            out.append(
                Liquidation(
                    self.venue,
                    symbol,
                    _SIDES[item["direction"]],
                    float(item["price"]),
                    size,
                    int(item["created_at"]) * _MS,
                    recv_ns,
                )
            )
        return out

    def _sub(self, op: str, topic: str) -> str:
        if topic.endswith(".high_freq"):
            # htx-huobi.md: the incremental book needs data_type "incremental"
            return dumps({op: topic, "id": f"{op}:{topic}", "data_type": "incremental"})
        return super()._sub(op, topic)

    def book_rule(self, symbol: str) -> SyncRule:
        """HTX swap incremental depth (htx-huobi.md, "USDT swap channels", FAQ
        Q13): stream snapshot after (re)subscribing, then ``version`` + 1 per
        update (SEQUENCE); no checksum; 150 levels per side."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.SEQUENCE, depth=BOOK_DEPTH)

    def _book_handler(self, kind: str) -> _Handler | None:
        return self._depth if kind == self._kinds[Channel.BOOK] else None

    def _depth(self, native: str, msg: Any, tick: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(native)
        version = tick["version"]
        if version.__class__ is not int:
            raise TypeError("version must be an integer")
        ts = int(tick.get("ts", msg.get("ts"))) * _MS
        event = tick["event"]
        size = self._contract_sizes.get(native)
        if event == "snapshot":
            bids = _float_levels(tick.get("bids"))
            asks = _float_levels(tick.get("asks"))
            if size is not None:
                bids = tuple([(p, s * size) for p, s in bids])
                asks = tuple([(p, s * size) for p, s in asks])
            return [BookSnapshot(self.venue, symbol, bids, asks, ts, recv_ns, version)]
        if event != "update":
            raise unknown_message("depth event", event)
        raw_bids = _levels(tick.get("bids"))
        raw_asks = _levels(tick.get("asks"))
        if size is not None:  # contracts -> base units; (price, size) pairs, not converted to float here
            raw_bids = [(level[0], level[1] * size) for level in raw_bids]
            raw_asks = [(level[0], level[1] * size) for level in raw_asks]
        return [Diff(symbol, raw_bids, raw_asks, ts, version)]

    def _size(self, native: str, size: Any) -> float:
        contract = self._contract_sizes.get(native)
        return float(size) * contract if contract is not None else float(size)

    def _trade_size(self, native: str, item: Any) -> float:
        quantity = item.get("quantity")  # base units (swaps); "amount" is contracts
        return float(quantity) if quantity is not None else self._size(native, item["amount"])

    # --- reference data ------------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET /linear-swap-api/v1/swap_contract_info`` (htx-huobi.md)."""
        return HttpRequest(f"{self.rest_url}/linear-swap-api/v1/swap_contract_info")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``contract_code``, ``price_tick``, ``contract_size`` (base per contract)."""
        out: list[Instrument] = []
        try:
            for item in _ok_data(self.venue, body):
                native = item["contract_code"]
                symbol = self._guess_unified(native)
                if symbol is None:
                    continue
                self._symbols[native] = symbol
                kind = "perp" if symbol.endswith("-PERP") else "future"
                size = float(item["contract_size"])
                out.append(Instrument(self.venue, symbol, native, kind, float(item["price_tick"]), 1.0, size))
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad instruments answer: {exc!r}") from exc
        return out

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn contract sizes: swap book and quote sizes are then reported in
        base units (``contracts * contract_size``)."""
        for instrument in instruments:
            if instrument.venue == self.venue and instrument.contract_size:
                self._contract_sizes[instrument.native] = instrument.contract_size
