"""MEXC public market data: spot v3 (:class:`MexcAdapter`, venue id ``"mexc"``,
protobuf pushes) and USDT-M perpetual contracts (:class:`MexcFuturesAdapter`,
``"mexc-futures"``, JSON). Rules from ``shared/exchanges/mexc.md``; each is
restated where it is enforced.

Spot (``wss://wbs-api.mexc.com/ws``)
------------------------------------
* **Framing.** Client messages and the server's acks/pongs are JSON text;
  every market-data push is a binary protobuf ``PushDataV3ApiWrapper`` whose
  oneof body names the message (313 aggregated depth, 314 aggregated deals,
  315 aggregated book ticker, 308 kline). Unknown fields are skipped. A binary
  frame that does not decode is one :class:`~wsmux.errors.MalformedMessage`.
* **Decoding.** With the optional ``protobuf`` runtime (``pip install
  wsmux[mexc]``) frames are decoded by the generated ``_mexc_push_pb2``
  (from ``_mexc_push.proto``); without it by the pure-Python reader in
  :mod:`wsmux.exchanges._mexc_proto`, which gives identical results about
  2-3 times slower (``bench/bench_mexc_proto.py``). Because a binary frame's
  varints can look like non-ASCII UTF-8, the adapter sets
  :attr:`~wsmux.adapter.Adapter.binary_frames` and checks the number text it
  decodes itself: plain ASCII without ``_``, else the frame is malformed.
* **Subscribing.** ``{"method":"SUBSCRIPTION","params":[...],"id":N}``; the
  ack ``{"id":N,"code":0,"msg":"<streams>"}`` succeeds only when ``msg``
  echoes the streams (anything else, or a non-zero ``code``, is a
  :class:`~wsmux.errors.SubscriptionRejected`). Text frames are told from
  pushes by their first byte ``{`` (which no protobuf message of ours can
  start with), as transports may hand text over as bytes. At most 30 subscriptions per
  connection, connections live at most 24 h. ``{"method":"PING"}`` every 20 s,
  answered ``{"id":0,"code":0,"msg":"PONG"}``; 60 s without data closes the
  connection server-side.
* **Book** (``spot@public.aggre.depth.v3.api.pb@100ms@SYM``): absolute
  quantities (``"0"`` deletes) covering versions ``[fromVersion, toVersion]``
  (decimal strings). Anchor: ``GET /api/v3/depth?symbol=SYM&limit=1000``
  (``lastUpdateId``). The sheet's bridge is ``fromVersion <= lastUpdateId <=
  toVersion`` and afterwards ``fromVersion == previous toVersion + 1``. wsmux
  chains exactly that (``prev_seq = fromVersion - 1``,
  :attr:`~wsmux.book.Continuity.PREV_ID`) and bridges with offset 1
  (``fromVersion <= lastUpdateId + 1 <= toVersion``): the chain says the
  snapshot holds version ``lastUpdateId`` itself, so a push that starts right
  after it is the exact continuation (the sheet's literal rule would call it
  a gap) and a push ending at ``lastUpdateId`` is already in the snapshot. No
  checksum: integrity :attr:`~wsmux.Integrity.SEQUENCE`. Levels the snapshot
  did not include and that never change are never sent (sheet caveat).
* **Trades** (``...aggre.deals...``): ``tradeType`` 1 = the taker bought,
  2 = sold; ``tradeId`` where sent (newer frames), else no id.
* **Quotes** (``...aggre.bookTicker...``): best bid/ask with ``version`` as
  ``seq`` where sent.
* **Candles** (``spot@public.kline.v3.api.pb@SYM@Min1``): the forming
  one-minute candle, pushed about every second (``closed`` is always False;
  MEXC has no final flag). ``windowStart`` is read as seconds (values above
  ``1e11`` as milliseconds; the unit is unconfirmed).

Futures (``wss://contract.mexc.com/edge``)
------------------------------------------
* JSON both ways. ``{"method":"sub.depth","param":{"symbol":"BTC_USDT",
  "compress":false},"gzip":false}`` (unmerged depth, plain JSON); acks
  ``{"channel":"rs.sub.depth","data":"success"}``; ``rs.error`` is a refusal.
  Binary frames are gunzipped when they are gzip (the default compression is
  unconfirmed). Ping ``{"method":"ping"}`` every 15 s → ``{"channel":"pong"}``.
* **Book** (``push.depth``): ``[price, contracts, orders]`` levels, absolute,
  0 deletes, one ``version`` per push that must be the previous one + 1
  (:attr:`~wsmux.book.Continuity.SEQUENCE`); anchor ``GET
  /api/v1/contract/depth/SYM`` (``data.version``); pushes with ``version <=``
  the snapshot's are dropped. Integrity :attr:`~wsmux.Integrity.SEQUENCE`.
* **Trades** (``push.deal``): ``T`` 1 = buy, 2 = sell (taker); no trade id.
* **Funding** (``push.funding.rate``): ``rate`` (or ``fundingRate``),
  ``nextSettleTime``.
* **Quotes** (``sub.depth.full`` with ``limit`` 5, named by the sheet):
  ``push.depth.full`` carries the top five levels per side as a snapshot
  (``[price, contracts, orders]``, ``version``); the best of each side is a
  :class:`~wsmux.Quote` (``seq = version``). ``push.ticker`` has no sizes,
  so it is not used for quotes.
* **Open interest** (``sub.ticker``): ``push.ticker``'s ``holdVol`` (contracts
  held, per MEXC's contract API docs — the sheet names the channel, not its
  fields) → :class:`~wsmux.OpenInterest` with the ticker's ``timestamp``.
* **Candles** (``sub.kline`` with ``interval`` ``Min1``): ``push.kline``
  ``{t (start, s), o, h, l, c, q (contracts), a, interval}`` (field names
  from MEXC's contract API docs; not in the sheet) → :class:`~wsmux.Candle`,
  volume ``q`` in contracts converted like sizes; MEXC never marks a candle
  final (``closed`` False).
* **Units.** Sizes are in contracts on the wire; once the instruments endpoint
  (``GET /api/v1/contract/detail``, ``contractSize``) was handed to
  :meth:`~MexcFuturesAdapter.use_instruments`, book, trade, quote, open
  interest and candle volumes are reported in base units; before that, in
  contracts. Coin-settled (inverse) contracts, whose ``contractSize`` is USD,
  stay in contracts (not converted).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, ClassVar, Literal

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownSymbol,
    unknown_message,
)
from wsmux.exchanges import _mexc_proto as proto
from wsmux.exchanges._candles import build_candle
from wsmux.model import (
    BookSnapshot,
    Candle,
    Channel,
    Event,
    Funding,
    Instrument,
    Levels,
    OpenInterest,
    Quote,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

_pb2: Any
try:  # the optional fast decoder: pip install wsmux[mexc]
    from wsmux.exchanges import _mexc_push_pb2 as _pb2
except ImportError:  # pragma: no cover - depends on the environment
    _pb2 = None

__all__ = [
    "FUTURES_RULE",
    "SPOT_RULE",
    "Decoder",
    "MexcAdapter",
    "MexcFuturesAdapter",
    "protobuf_available",
]

SPOT_RULE = SyncRule(SnapshotSource.REST, Continuity.PREV_ID, bridge_offset=1)
"""Spot ``aggre.depth`` (mexc.md, "Spot book sync"): REST anchor, then each
push's ``fromVersion - 1`` equals the previous ``toVersion``; the first kept
push needs ``fromVersion <= lastUpdateId + 1 <= toVersion`` (see the module
docstring for why offset 1)."""

FUTURES_RULE = SyncRule(SnapshotSource.REST, Continuity.SEQUENCE, bridge_offset=1)
"""Futures ``push.depth`` (mexc.md, "Futures"): REST anchor ``version``; drop
pushes with ``version <= snapshot``; each next push has ``version ==
previous + 1``."""

Decoder = Literal["auto", "protobuf", "python"]

_MS = 1_000_000
_NAN = float("nan")
_INF = float("inf")
_S = 1_000_000_000
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_TAKER = {1: Side.BUY, 2: Side.SELL}
_SNAPSHOT_MAX = 5000  # mexc.md: /api/v3/depth limit max 5000


def protobuf_available() -> bool:
    """True when the ``protobuf`` runtime (``wsmux[mexc]``) is installed."""
    return _pb2 is not None


def _plain(text: str, frame: bytes | str) -> None:
    """Refuse number text Python's ``float``/``int`` would read but a venue never
    sends (non-ASCII digits, ``_``), as the Feed does for text frames."""
    if not text.isascii() or "_" in text:
        raise MalformedMessage("mexc: number text that is not plain ASCII decimal", frame)


def _ms_ns(ms: int | None) -> int | None:
    return ms * _MS if ms else None


# --- the two decoders: same results, see _mexc_proto ----------------------------------------


class _PythonDecoder:
    """The hand-written reader (:mod:`wsmux.exchanges._mexc_proto`)."""

    wrapper = staticmethod(proto.decode_wrapper)
    depths = staticmethod(proto.decode_depths)
    deals = staticmethod(proto.decode_deals)
    book_ticker = staticmethod(proto.decode_book_ticker)
    kline = staticmethod(proto.decode_kline)


class _ProtobufDecoder:
    """The ``protobuf`` runtime on the generated classes; the body is the parsed
    sub-message."""

    def __init__(self) -> None:
        assert _pb2 is not None
        self._parse = _pb2.PushDataV3ApiWrapper.FromString
        self._numbers = {
            "publicLimitDepths": proto.LIMIT_DEPTHS,
            "publicSpotKline": proto.SPOT_KLINE,
            "publicAggreDepths": proto.AGGRE_DEPTHS,
            "publicAggreDeals": proto.AGGRE_DEALS,
            "publicAggreBookTicker": proto.AGGRE_BOOK_TICKER,
        }

    def wrapper(self, frame: bytes) -> tuple[str, str | None, int | None, int, Any]:
        try:
            msg = self._parse(frame)
        except Exception as exc:  # google.protobuf.message.DecodeError
            raise proto.ProtoError(str(exc)) from exc
        name = msg.WhichOneof("body")
        if name is None:
            return msg.channel, msg.symbol or None, msg.sendTime or msg.createTime or None, 0, None
        return (
            msg.channel,
            msg.symbol or None,
            msg.sendTime or msg.createTime or None,
            self._numbers[name],
            getattr(msg, name),
        )

    @staticmethod
    def depths(body: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str, str]:
        return (
            [(i.price, i.quantity) for i in body.bids],
            [(i.price, i.quantity) for i in body.asks],
            body.fromVersion,
            body.toVersion,
        )

    @staticmethod
    def deals(body: Any) -> list[proto.Deal]:
        return [(d.price, d.quantity, d.tradeType, d.time, d.tradeId or None) for d in body.deals]

    @staticmethod
    def book_ticker(body: Any) -> tuple[str, str, str, str, str | None]:
        return body.bidPrice, body.bidQuantity, body.askPrice, body.askQuantity, body.version or None

    @staticmethod
    def kline(body: Any) -> proto.Kline:
        return (
            body.interval,
            body.windowStart,
            body.openingPrice,
            body.closingPrice,
            body.highestPrice,
            body.lowestPrice,
            body.volume,
            body.windowEnd,
        )


# --- spot --------------------------------------------------------------------------------------------

_SPOT_STREAMS = {
    Channel.BOOK: "spot@public.aggre.depth.v3.api.pb@100ms@{}",
    Channel.TRADES: "spot@public.aggre.deals.v3.api.pb@100ms@{}",
    Channel.QUOTES: "spot@public.aggre.bookTicker.v3.api.pb@100ms@{}",
    Channel.CANDLES: "spot@public.kline.v3.api.pb@{}@Min1",
}


class MexcAdapter(Adapter):
    """MEXC spot v3, venue id ``"mexc"``: protobuf pushes (see the module docstring).

    Channels → events: ``BOOK`` (aggregated depth diffs over a REST snapshot:
    :class:`~wsmux.BookUpdate`, ``first_seq = fromVersion``, ``seq =
    toVersion``), ``TRADES`` (:class:`~wsmux.Trade`, taker side),
    ``QUOTES`` (:class:`~wsmux.Quote`), ``CANDLES`` (:class:`~wsmux.Candle`).

    Args:
        url: WebSocket URL (mock servers, testnets).
        rest_url: REST base URL.
        decoder: ``"auto"`` (the ``protobuf`` runtime when installed, else the
            pure-Python reader), ``"protobuf"`` or ``"python"``.
    """

    venue: ClassVar[str] = "mexc"
    channels: ClassVar[frozenset[Channel]] = frozenset(_SPOT_STREAMS)
    default_url: ClassVar[str] = "wss://wbs-api.mexc.com/ws"
    default_rest_url: ClassVar[str] = "https://api.mexc.com"
    binary_frames: ClassVar[bool] = True
    # mexc.md: 30 subscriptions per connection, connections valid <= 24 h; the
    # client message-rate cap is unconfirmed ("~100/s, stay low").
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=30,
        topics_per_message=30,
        messages_per_second=10.0,
        max_connection_age=24 * 3600.0,
    )
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"method":"PING"}', ping_interval=20.0, ws_ping_interval=None, silence_timeout=60.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None, decoder: Decoder = "auto") -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.rest_url = self.rest_url.rstrip("/")
        if decoder not in ("auto", "protobuf", "python"):
            raise ConfigError(f"decoder must be 'auto', 'protobuf' or 'python', not {decoder!r}")
        if decoder == "protobuf" and _pb2 is None:
            raise ConfigError("decoder='protobuf' needs the protobuf runtime: pip install 'wsmux[mexc]'")
        use_pb = decoder == "protobuf" or (decoder == "auto" and _pb2 is not None)
        self.decoder: Literal["protobuf", "python"] = "protobuf" if use_pb else "python"
        self._decode: Any = _ProtobufDecoder() if use_pb else _PythonDecoder()
        self._symbols: dict[str, str] = {}  # BTCUSDT -> BTC-USDT
        self._next_id = 1
        self._requests: dict[int, tuple[str, tuple[str, ...]]] = {}
        self._handlers: dict[int, Callable[[str, Any, int | None, int, bytes], list[Any]]] = {
            proto.AGGRE_DEPTHS: self._on_depth,
            proto.AGGRE_DEALS: self._on_deals,
            proto.AGGRE_BOOK_TICKER: self._on_book_ticker,
            proto.SPOT_KLINE: self._on_kline,
        }

    # --- symbols ------------------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USDT`` → ``BTCUSDT`` (spot only)."""
        base, quote, kind = parse_symbol(symbol)
        if kind is not None:
            raise UnknownSymbol(f"mexc (spot) has no {symbol!r}; contracts are on 'mexc-futures'")
        native = base + quote
        self._symbols[native] = symbol
        return native

    def stream_name(self, subscription: Subscription) -> str:
        """The stream of ``subscription``, e.g. ``spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT``."""
        self.check(subscription)
        return _SPOT_STREAMS[subscription.channel].format(self.to_native(subscription.symbol))

    # --- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._messages("SUBSCRIPTION", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._messages("UNSUBSCRIPTION", subscriptions)

    def _messages(self, method: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        names = list(dict.fromkeys(self.stream_name(s) for s in subscriptions))
        per = self.limits.topics_per_message
        out: list[Outgoing] = []
        for i in range(0, len(names), per):
            chunk = tuple(names[i : i + per])
            req_id = self._next_id
            self._next_id += 1
            self._requests[req_id] = (method, chunk)
            out.append(dumps({"method": method, "params": list(chunk), "id": req_id}))
        return out

    def reset(self) -> None:
        """Forget the outstanding requests of the old connection."""
        self._requests.clear()

    # --- frames ------------------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        """Binary frames are pushes, text frames acks and pongs (module docstring)."""
        if isinstance(frame, str) or frame[:1] == b"{":
            # JSON text (the transport may hand text frames over as bytes): a
            # protobuf message cannot start with "{" (field 15, wire type 3)
            return self._on_text(frame)
        try:
            channel, native, ms, number, body = self._decode.wrapper(frame)
            handler = self._handlers.get(number)
            if handler is None:
                raise unknown_message("channel", channel, frame)
            symbol = self._symbols.get(native)
            if symbol is None:
                raise MalformedMessage(f"mexc: push for unsubscribed symbol {native!r}", frame)
            return handler(symbol, body, ms, recv_ns, frame)
        except MalformedMessage:
            raise
        except (proto.ProtoError, *_ERRORS) as exc:
            raise MalformedMessage(f"mexc: undecodable push: {exc!r}", frame) from exc

    def _on_text(self, frame: bytes | str) -> list[Event]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("mexc: invalid JSON", frame) from exc
        if type(msg) is not dict or "msg" not in msg:
            raise unknown_message("", msg.get("method") if type(msg) is dict else None, frame)
        text = msg["msg"]
        if text == "PONG":
            return []
        req_id = msg.get("id")
        request = self._requests.pop(req_id, None) if type(req_id) is int else None
        if request is None:
            raise unknown_message("reply", str(text) or None, frame)
        method, streams = request
        echoed = set(str(text).split(",")) if type(text) is str else set()
        if msg.get("code") == 0 and echoed.issuperset(streams):
            return []
        raise SubscriptionRejected(f"mexc rejected {method} {', '.join(streams)}: code {msg.get('code')}: {text}")

    # The handlers: hot path. A wrong type raises, which parse() wraps.

    def _on_depth(self, symbol: str, body: Any, ms: int | None, recv_ns: int, frame: bytes) -> list[Any]:
        bids, asks, first_text, last_text = self._decode.depths(body)
        _plain("".join([first_text, last_text, *chain.from_iterable(bids), *chain.from_iterable(asks)]), frame)
        first = int(first_text)
        last = int(last_text)
        if first > last:
            raise ValueError(f"fromVersion {first} > toVersion {last}")
        return [Diff(symbol, bids, asks, _ms_ns(ms), last, first, first - 1)]

    def _on_deals(self, symbol: str, body: Any, ms: int | None, recv_ns: int, frame: bytes) -> list[Any]:
        out: list[Event] = []
        for price, quantity, kind, time_ms, trade_id in self._decode.deals(body):
            _plain(price + quantity, frame)
            side = _TAKER.get(kind)
            if side is None:
                raise ValueError(f"tradeType {kind!r} is not 1 (buy) or 2 (sell)")
            out.append(
                Trade(self.venue, symbol, float(price), float(quantity), side, trade_id, _ms_ns(time_ms), recv_ns)
            )
        return out

    def _on_book_ticker(self, symbol: str, body: Any, ms: int | None, recv_ns: int, frame: bytes) -> list[Any]:
        bid, bid_qty, ask, ask_qty, version = self._decode.book_ticker(body)
        _plain(bid + bid_qty + ask + ask_qty + (version or ""), frame)
        seq = int(version) if version else None
        return [
            Quote(self.venue, symbol, float(bid), float(bid_qty), float(ask), float(ask_qty), _ms_ns(ms), recv_ns, seq)
        ]

    def _on_kline(self, symbol: str, body: Any, ms: int | None, recv_ns: int, frame: bytes) -> list[Any]:
        interval, start, open_, close, high, low, volume, _end = self._decode.kline(body)
        if interval != "Min1":
            raise unknown_message("kline interval", interval, frame)
        _plain(open_ + close + high + low + volume, frame)
        start_ns = start * _MS if start > 100_000_000_000 else start * _S
        return [
            Candle(
                self.venue,
                symbol,
                "1m",
                start_ns,
                float(open_),
                float(high),
                float(low),
                float(close),
                float(volume),
                False,
                _ms_ns(ms),
                recv_ns,
            )
        ]

    # --- books ---------------------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """See :data:`SPOT_RULE`."""
        return SPOT_RULE

    def snapshot_request(self, symbol: str, depth: int | None = None) -> HttpRequest | None:
        """``GET /api/v3/depth?symbol=SYM&limit=N``, N = max(1000, depth) up to 5000."""
        limit = min(max(1000, depth or 0), _SNAPSHOT_MAX)
        return HttpRequest(
            self.rest_url + "/api/v3/depth", (("symbol", self.to_native(symbol, Channel.BOOK)), ("limit", str(limit)))
        )

    def parse_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> BookSnapshot:
        """``{"lastUpdateId": N, "bids": [["p", "q"], ...], "asks": [...]}`` → BookSnapshot(seq=N)."""
        msg = _json_object(body, "snapshot")
        if "lastUpdateId" not in msg:
            raise RemoteError(f"mexc snapshot error {msg.get('code')}: {msg.get('msg')}")
        try:
            seq = msg["lastUpdateId"]
            if type(seq) is not int:
                raise TypeError("lastUpdateId must be an integer")
            ms = msg.get("timestamp")
            ts = ms * _MS if type(ms) is int else None
            return BookSnapshot(
                self.venue, symbol, _float_levels(msg["bids"]), _float_levels(msg["asks"]), ts, recv_ns, seq
            )
        except _ERRORS as exc:
            raise MalformedMessage(f"mexc: bad snapshot: {exc!r}", body) from exc

    # --- reference data --------------------------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET /api/v3/exchangeInfo``."""
        return HttpRequest(self.rest_url + "/api/v3/exchangeInfo", weight=10)

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``symbols[]``: ``baseAsset``/``quoteAsset``, ``quotePrecision`` (price
        decimals → tick), ``baseSizePrecision`` (lot, text)."""
        msg = _json_object(body, "exchangeInfo")
        out: list[Instrument] = []
        try:
            for row in msg["symbols"]:
                try:
                    symbol = f"{row['baseAsset']}-{row['quoteAsset']}"
                    parse_symbol(symbol)
                except UnknownSymbol:
                    continue
                decimals = row.get("quotePrecision")
                lot = row.get("baseSizePrecision")
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        row["symbol"],
                        "spot",
                        10.0**-decimals if type(decimals) is int else None,
                        float(lot) if lot not in (None, "", "0") else None,
                    )
                )
        except _ERRORS as exc:
            raise MalformedMessage(f"mexc: bad exchangeInfo: {exc!r}", body) from exc
        return out


def _json_object(body: bytes | str, what: str) -> dict[str, Any]:
    try:
        msg = loads(body)
    except JSONDecodeError as exc:
        raise MalformedMessage(f"mexc: {what} is not JSON", body) from exc
    if type(msg) is not dict:
        raise MalformedMessage(f"mexc: {what} is not an object", body)
    return msg


def _float_levels(raw: Any, scale: float = 1.0) -> Levels:
    """``[[price, size, ...], ...]`` (text or numbers) → float levels, sizes times ``scale``."""
    out = []
    for level in raw:
        price, size = level[0], level[1]
        if type(price) is str:
            _plain(price + size, "")
        out.append((float(price), float(size) * scale))
    return tuple(out)


# --- futures -------------------------------------------------------------------------------------------

_FUTURES_METHODS = {
    Channel.BOOK: "depth",
    Channel.TRADES: "deal",
    Channel.FUNDING: "funding.rate",
    Channel.QUOTES: "depth.full",
    Channel.OPEN_INTEREST: "ticker",
    Channel.CANDLES: "kline",
}
_FUTURES_PARAMS: dict[Channel, dict[str, Any]] = {
    Channel.BOOK: {"compress": False},  # mexc.md: unmerged updates keep version + 1
    Channel.QUOTES: {"limit": 5},  # mexc.md: depth.full snapshots of 5/10/20 levels
    Channel.CANDLES: {"interval": "Min1"},
}


class MexcFuturesAdapter(Adapter):
    """MEXC USDT-M perpetual contracts, venue id ``"mexc-futures"`` (symbols
    ``BTC-USDT-PERP`` ↔ ``BTC_USDT``); JSON (see the module docstring).

    Channels → events: ``BOOK`` (``push.depth`` diffs over a REST snapshot,
    ``seq = version``), ``TRADES`` (``push.deal``, taker side, no trade id),
    ``FUNDING`` (``push.funding.rate``), ``QUOTES`` (``push.depth.full``, top
    of a 5-level snapshot), ``OPEN_INTEREST`` (``push.ticker`` ``holdVol``),
    ``CANDLES`` (``push.kline`` ``Min1``).
    """

    venue: ClassVar[str] = "mexc-futures"
    channels: ClassVar[frozenset[Channel]] = frozenset(_FUTURES_METHODS)
    default_url: ClassVar[str] = "wss://contract.mexc.com/edge"
    default_rest_url: ClassVar[str] = "https://contract.mexc.com"
    compressed: ClassVar[bool] = True  # mexc.md: default compression unconfirmed, gunzip binary frames
    # mexc.md is silent on futures topic/message limits: wsmux's choice, one topic per message.
    limits: ClassVar[Limits] = Limits(streams_per_connection=100, topics_per_message=1, messages_per_second=10.0)
    # mexc.md: no ping within 1 min → closed; send every 10-20 s.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"method":"ping"}', ping_interval=15.0, ws_ping_interval=None, silence_timeout=60.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.rest_url = self.rest_url.rstrip("/")
        self._symbols: dict[str, str] = {}  # BTC_USDT -> BTC-USDT-PERP
        self._contract: dict[str, float] = {}  # BTC_USDT -> base units per contract
        self._handlers: dict[str, Callable[[str, Any, Any, int], list[Any]]] = {
            "push.depth": self._on_depth,
            "push.deal": self._on_deal,
            "push.funding.rate": self._on_funding,
            "push.depth.full": self._on_top,
            "push.ticker": self._on_ticker,
            "push.kline": self._on_kline,
        }

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USDT-PERP`` → ``BTC_USDT`` (perpetuals only)."""
        base, quote, kind = parse_symbol(symbol)
        if kind != "PERP":
            raise UnknownSymbol(f"mexc-futures lists perpetuals only (BASE-QUOTE-PERP), not {symbol!r}")
        native = f"{base}_{quote}"
        self._symbols[native] = symbol
        return native

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._messages("sub", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._messages("unsub", subscriptions)

    def _messages(self, op: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sub in subscriptions:
            self.check(sub)
            param: dict[str, Any] = {"symbol": self.to_native(sub.symbol, sub.channel)}
            param.update(_FUTURES_PARAMS.get(sub.channel, ()))
            out.append(dumps({"method": f"{op}.{_FUTURES_METHODS[sub.channel]}", "param": param, "gzip": False}))
        return out

    def decompress(self, frame: bytes) -> bytes:
        """Gunzip a gzip frame (magic ``1f 8b``); other binary frames pass unchanged."""
        if frame[:2] != b"\x1f\x8b":
            return frame
        try:
            return gzip.decompress(frame)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedMessage("mexc-futures: gzip frame does not decompress", frame) from exc

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        """``{"channel": .., "data": .., "symbol": .., "ts": ..}`` (module docstring)."""
        msg = _json_object(frame, "frame")
        channel = msg.get("channel")
        handler = self._handlers.get(channel)  # type: ignore[arg-type]
        if handler is None:
            return self._on_control(channel, msg, frame)
        try:
            native = msg.get("symbol") or msg["data"]["symbol"]
            symbol = self._symbols.get(native) or self._unified(native, frame)
            return handler(symbol, msg["data"], msg.get("ts"), recv_ns)
        except MalformedMessage:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"mexc-futures: bad {channel}: {exc!r}", frame) from exc

    def _unified(self, native: Any, frame: bytes | str) -> str:
        """``BTC_USDT`` → ``BTC-USDT-PERP`` (remembered)."""
        base, _, quote = native.partition("_") if type(native) is str else ("", "", "")
        try:
            symbol = f"{base}-{quote}-PERP"
            parse_symbol(symbol)
        except UnknownSymbol:
            raise MalformedMessage(f"mexc-futures: push for unknown contract {native!r}", frame) from None
        self._symbols[native] = symbol
        return symbol

    def _on_control(self, channel: Any, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        if channel == "pong":
            return []
        if channel == "rs.error":
            raise SubscriptionRejected(f"mexc-futures refused a request: {msg.get('data')}")
        if type(channel) is str and channel.startswith("rs."):
            if msg.get("data") == "success":
                return []
            raise SubscriptionRejected(f"mexc-futures: {channel}: {msg.get('data')}")
        raise unknown_message("channel", channel, frame)

    def _scale(self, native_symbol: str) -> float:
        return self._contract.get(native_symbol, 1.0)

    def _on_depth(self, symbol: str, data: Any, ts: Any, recv_ns: int) -> list[Any]:
        version = data["version"]
        if type(version) is not int or (ts is not None and type(ts) is not int):
            raise TypeError("version and ts must be integers")
        bids = data["bids"]
        asks = data["asks"]
        if type(bids) is not list or type(asks) is not list:
            raise TypeError("bids and asks must be lists")
        scale = self._scale(self.to_native(symbol))
        if scale != 1.0:
            bids = [(lv[0], lv[1] * scale) for lv in bids]
            asks = [(lv[0], lv[1] * scale) for lv in asks]
        return [Diff(symbol, bids, asks, _ms_ns(ts), version, version)]

    def _on_deal(self, symbol: str, data: Any, ts: Any, recv_ns: int) -> list[Any]:
        scale = self._scale(self.to_native(symbol))
        out: list[Event] = []
        for deal in data if type(data) is list else (data,):
            side = _TAKER.get(deal["T"])
            if side is None:
                raise ValueError(f"T {deal['T']!r} is not 1 (buy) or 2 (sell)")
            ms = deal["t"]
            if type(ms) is not int:
                raise TypeError("t must be an integer")
            out.append(
                Trade(self.venue, symbol, float(deal["p"]), float(deal["v"]) * scale, side, None, ms * _MS, recv_ns)
            )
        return out

    def _on_funding(self, symbol: str, data: Any, ts: Any, recv_ns: int) -> list[Any]:
        rate = data["rate"] if "rate" in data else data["fundingRate"]
        next_ms = data.get("nextSettleTime")
        if (next_ms is not None and type(next_ms) is not int) or (ts is not None and type(ts) is not int):
            raise TypeError("nextSettleTime and ts must be integers")
        return [Funding(self.venue, symbol, float(rate), _ms_ns(next_ms), None, _ms_ns(ts), recv_ns)]

    def _on_top(self, symbol: str, data: Any, ts: Any, recv_ns: int) -> list[Any]:
        version = data["version"]
        if type(version) is not int or (ts is not None and type(ts) is not int):
            raise TypeError("version and ts must be integers")
        scale = self._scale(self.to_native(symbol))
        bids = data["bids"]
        asks = data["asks"]
        bid_price, bid_size = (float(bids[0][0]), float(bids[0][1]) * scale) if bids else (_NAN, _NAN)
        ask_price, ask_size = (float(asks[0][0]), float(asks[0][1]) * scale) if asks else (_NAN, _NAN)
        return [Quote(self.venue, symbol, bid_price, bid_size, ask_price, ask_size, _ms_ns(ts), recv_ns, version)]

    def _on_ticker(self, symbol: str, data: Any, ts: Any, recv_ns: int) -> list[Any]:
        held = data["holdVol"]
        ms = data.get("timestamp", ts)
        if type(held) not in (int, float) or (ms is not None and type(ms) is not int):
            raise TypeError("holdVol must be a number and timestamp an integer")
        value = held * self._scale(self.to_native(symbol))
        if not 0.0 <= value < _INF:
            raise ValueError(f"holdVol {held!r}")
        return [OpenInterest(self.venue, symbol, float(value), _ms_ns(ms), recv_ns)]

    def _on_kline(self, symbol: str, data: Any, ts: Any, recv_ns: int) -> list[Any]:
        if data["interval"] != "Min1":  # another interval: well formed, not handled
            raise unknown_message("kline interval", data["interval"])
        start = data["t"]
        if type(start) is not int:
            raise TypeError("t must be an integer (seconds)")
        volume = float(data["q"]) * self._scale(self.to_native(symbol))
        prices = data["o"], data["h"], data["l"], data["c"]
        return [build_candle(self.venue, symbol, start * 1_000_000_000, *prices, volume, False, _ms_ns(ts), recv_ns)]

    # --- books ---------------------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """See :data:`FUTURES_RULE`."""
        return FUTURES_RULE

    def snapshot_request(self, symbol: str, depth: int | None = None) -> HttpRequest | None:
        """``GET /api/v1/contract/depth/SYM`` (the venue's full depth)."""
        return HttpRequest(f"{self.rest_url}/api/v1/contract/depth/{self.to_native(symbol, Channel.BOOK)}")

    def parse_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> BookSnapshot:
        """``{"success": true, "code": 0, "data": {"asks": .., "bids": .., "version": N,
        "timestamp": ms}}`` → BookSnapshot(seq=N), sizes in base units when known."""
        msg = _json_object(body, "snapshot")
        if msg.get("success") is not True or "data" not in msg:
            raise RemoteError(f"mexc-futures snapshot error {msg.get('code')}: {msg.get('message', msg.get('msg'))}")
        try:
            data = msg["data"]
            version = data["version"]
            ms = data.get("timestamp")
            if type(version) is not int or (ms is not None and type(ms) is not int):
                raise TypeError("version and timestamp must be integers")
            scale = self._scale(self.to_native(symbol, Channel.BOOK))
            return BookSnapshot(
                self.venue,
                symbol,
                _float_levels(data["bids"], scale),
                _float_levels(data["asks"], scale),
                _ms_ns(ms),
                recv_ns,
                version,
            )
        except _ERRORS as exc:
            raise MalformedMessage(f"mexc-futures: bad snapshot: {exc!r}", body) from exc

    # --- reference data --------------------------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET /api/v1/contract/detail`` (every contract)."""
        return HttpRequest(self.rest_url + "/api/v1/contract/detail")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``data[]``: ``symbol`` (``BTC_USDT``), ``contractSize``, ``priceUnit``
        (tick), ``volUnit`` (lot, contracts). A coin-settled contract
        (``settleCoin`` equal to ``baseCoin``: MEXC's contract API docs, not
        the sheet) is ``inverse``: its ``contractSize`` is a USD face value."""
        msg = _json_object(body, "contract detail")
        if msg.get("success") is not True:
            raise RemoteError(f"mexc-futures contract detail error {msg.get('code')}: {msg.get('message')}")
        out: list[Instrument] = []
        try:
            rows = msg["data"]
            for row in rows if type(rows) is list else [rows]:
                native = row["symbol"]
                base, _, quote = native.partition("_")
                symbol = f"{base}-{quote}-PERP"
                try:
                    parse_symbol(symbol)
                except UnknownSymbol:
                    continue
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        native,
                        "perp",
                        float(row["priceUnit"]),
                        float(row["volUnit"]),
                        float(row["contractSize"]),
                        row.get("settleCoin") is not None and row.get("settleCoin") == row.get("baseCoin"),
                    )
                )
        except _ERRORS as exc:
            raise MalformedMessage(f"mexc-futures: bad contract detail: {exc!r}", body) from exc
        return out

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn contract sizes: book and trade sizes are then in base units.
        Inverse contracts (a USD face value, no fixed base amount) are not
        converted: their sizes stay in contracts."""
        for inst in instruments:
            if inst.venue == self.venue and inst.contract_size and not inst.inverse:
                self._contract[inst.native] = inst.contract_size
