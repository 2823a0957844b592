"""KuCoin classic public WebSocket: :class:`KucoinAdapter` (spot, venue id
``"kucoin"``) and :class:`KucoinFuturesAdapter` (perpetuals, ``"kucoin-futures"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/kucoin.md``; each
is restated where it is enforced:

* **Connecting takes a REST call.** ``POST /api/v1/bullet-public`` (spot on
  ``api.kucoin.com``, futures on ``api-futures.kucoin.com``) returns a token
  and ``instanceServers[0].endpoint``; the socket is
  ``{endpoint}?token={token}&connectId={unique}``, and a fresh token is fetched
  for every connection. The adapter models the call as data: it returns the
  request from :meth:`~wsmux.Adapter.connect_request`, learns the answer in
  :meth:`~wsmux.Adapter.use_connect_response`, and builds the URL in
  :meth:`connect_url`; the Connection performs the request. Without a bullet
  answer (replay, tools that connect by hand) :meth:`connect_url` falls back
  to :attr:`url`.
* **Subscribing.** ``{"id":..,"type":"subscribe","topic":"/market/level2:A,B",
  "privateChannel":false,"response":true}`` — one topic string names up to 100
  symbols (spot; futures topics take one symbol); ``{"type":"ack"}`` confirms,
  ``{"type":"error","code":..,"data":..}`` refuses
  (:class:`~wsmux.errors.SubscriptionRejected`). The server greets with
  ``{"type":"welcome"}``; the 2021 capture shows subscribes sent before the
  welcome being acknowledged, so wsmux does not wait for it.
* **Keep-alive.** The client sends ``{"id":..,"type":"ping"}`` at least every
  ``pingInterval`` (18 s typically) and gets a ``pong``; wsmux pings every
  15 s. No compression.
* **Spot book** (``/market/level2``). Updates carry ``sequenceStart``/
  ``sequenceEnd`` and per-price ``[price, size, sequence]`` (absolute sizes,
  ``"0"`` deletes; price ``"0"`` is a placeholder that advances the sequence
  and is dropped here). The snapshot is REST (``sequence``); continuity is
  :attr:`~wsmux.book.Continuity.UPDATE_ID` with ``first_seq = sequenceStart``
  and ``seq = sequenceEnd`` — exactly the sheet's ``start <= last + 1`` and
  ``end > last`` — and the first update after a snapshot ``S`` must satisfy
  ``start <= S + 1 <= end`` (``bridge_offset=1``). The sheet's "skip changes
  with per-price ``sequence <= S`` in the straddling message" is not needed:
  a price's entry is its *last* change in the message, so an entry at or
  below ``S`` is already in the snapshot with that same absolute size and
  re-applying it changes nothing (the replay test's independent rebuild
  applies the sheet's rule and agrees level for level). No checksum: the
  integrity level is SEQUENCE.
* **Spot snapshot depth.** The full-depth ``/api/v3/market/orderbook/level2``
  needs API-key auth (sheet); wsmux uses the public
  ``/api/v1/market/orderbook/level2_100`` (top 100 per side, same body). The
  diffs cover every price, so the book is exact in its top levels; deeper
  than 100 it holds only what changed since the snapshot (documented).
* **Futures book** (``/contractMarket/level2``): one ``"price,side,size"``
  change per message with a per-symbol ``sequence`` that grows by exactly 1
  (:attr:`~wsmux.book.Continuity.SEQUENCE`); REST snapshot
  ``/api/v1/level2/snapshot`` (full depth), messages at or below its
  ``sequence`` dropped, the next one must be ``sequence + 1``.
* **Units.** Futures sizes are contracts; ``multiplier`` from
  ``/api/v1/contracts/active`` is the base amount per contract of linear
  contracts. Inverse contracts (``XBTUSDM``; ``isInverse`` true, or a
  negative ``multiplier`` — the sheet's only word on them) are a fixed USD
  amount each; wsmux reads the face value as ``abs(multiplier)`` USD (real
  ``XBTUSDM``: ``-1``, 1 USD; the sheet does not say so: unconfirmed). After
  :meth:`~wsmux.Adapter.use_instruments` sizes are in base units: linear
  ``contracts * multiplier``; inverse ``contracts * face / price`` at the
  book level's, trade's or quote side's price (as Binance COIN-M and OKX
  inverse), through :class:`~wsmux.exchanges._contracts.ContractSizes`.
  Candle volume of inverse contracts stays in contracts (a candle's trades
  have many prices). The futures book has no checksum, so its levels need
  not keep the venue's text. Without the list sizes stay in contracts.
* **Timestamps.** Spot trades ``time`` and futures trades/tickers ``ts`` are
  ns; spot level2 ``time`` and futures ``timestamp`` are ms; candles start in s.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._contracts import ContractSizes
from wsmux.model import (
    BookSnapshot,
    Candle,
    Channel,
    Event,
    Funding,
    Instrument,
    Levels,
    Quote,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "FUTURES_RULE",
    "SPOT_RULE",
    "KucoinAdapter",
    "KucoinFuturesAdapter",
    "kucoin_futures_symbol",
]

SPOT_RULE = SyncRule(SnapshotSource.REST, Continuity.UPDATE_ID, bridge_offset=1)
"""Spot ``/market/level2`` (kucoin.md, "Spot L2 sync"): REST snapshot, ranges
``[sequenceStart, sequenceEnd]``, first update bridges ``S + 1``."""
FUTURES_RULE = SyncRule(SnapshotSource.REST, Continuity.SEQUENCE, bridge_offset=1)
"""Futures ``/contractMarket/level2`` (kucoin.md, "Futures L2 sync"): REST
snapshot, then ``sequence`` exactly ``+1``, the first one ``S + 1``."""

_MS = 1_000_000
_S = 1_000_000_000
_OK = "200000"  # the REST success code
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_PING = '{"id":"wsmux","type":"ping"}'
_QUIET_TYPES = frozenset({"welcome", "ack", "pong"})

_Handler = Callable[[str, Any, int], list[Event | Diff]]


def _int(value: Any, name: str) -> int:
    """An integer field the venue sends as a JSON integer or decimal-digit text."""
    if value.__class__ is int:
        return int(value)
    if value.__class__ is str and value.isascii() and value.isdigit():
        return int(value)
    raise TypeError(f"{name} must be an integer, not {value!r}")


def _text(value: Any, name: str) -> str:
    if value.__class__ is not str:
        raise TypeError(f"{name} must be a string, not {value!r}")
    return str(value)


def _body_data(venue: str, body: bytes, what: str) -> Any:
    """``data`` of a KuCoin REST body ``{"code":"200000","data":...}``."""
    try:
        msg = loads(body)
    except JSONDecodeError as exc:
        raise MalformedMessage(f"{venue}: {what} is not JSON", body) from exc
    if msg.__class__ is not dict:
        raise MalformedMessage(f"{venue}: {what} is not an object", body)
    if msg.get("code") != _OK:
        raise RemoteError(f"{venue} {what} error {msg.get('code')}: {msg.get('msg', '')}")
    if "data" not in msg:
        raise MalformedMessage(f"{venue}: {what} has no data", body)
    return msg["data"]


def _float_levels(raw: Any) -> Levels:
    return tuple([(float(level[0]), float(level[1])) for level in raw])


def kucoin_futures_symbol(symbol: str) -> str:
    """The KuCoin Futures symbol of a unified perpetual: ``BTC-USDT-PERP`` →
    ``XBTUSDTM``, ``BTC-USD-PERP`` → ``XBTUSDM`` (inverse); BTC is ``XBT``
    (kucoin.md, "Subscribing").

    Raises:
        UnknownSymbol: not a perpetual (dated futures are named by the
            instruments endpoint, see :meth:`KucoinFuturesAdapter.use_instruments`).
    """
    base, quote, kind = parse_symbol(symbol)
    if kind != "PERP":
        raise UnknownSymbol(
            f"kucoin-futures names perpetuals BASE-QUOTE-PERP; {symbol!r} is not one "
            "(dated futures need the instruments endpoint's reference data)"
        )
    return f"{'XBT' if base == 'BTC' else base}{quote}M"


class _KucoinBase(Adapter):
    """What spot and futures share: the bullet connect, the envelope, pings."""

    bullet_path: ClassVar[str] = "/api/v1/bullet-public"
    # GET /api/v1/timestamp -> {"code": "200000", "data": <ms>} on both hosts (the
    # venue's REST docs, "Get Server Time"; the sheet is silent on it)
    server_time_path: ClassVar[str | None] = "/api/v1/timestamp"
    server_time_field: ClassVar[tuple[str | int, ...]] = ("data",)
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=_PING, ping_interval=15.0, ws_ping_interval=None, silence_timeout=40.0
    )
    topics: ClassVar[dict[Channel, str]]
    symbols_per_topic: ClassVar[int]

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._endpoint: str | None = None
        self._token: str | None = None
        self.ping_interval_ms: int | None = None
        """``pingInterval`` of the last bullet answer (the venue's ping deadline)."""
        self._connects = itertools.count(1)
        self._ids = itertools.count(1)
        self._symbols: dict[str, str] = {}  # native -> unified
        self._handlers: dict[str, _Handler] = {}

    # --- connecting ----------------------------------------------------------------

    def connect_request(self) -> HttpRequest | None:
        """``POST <rest>/api/v1/bullet-public`` (kucoin.md, "Connecting")."""
        return HttpRequest(self.rest_url + self.bullet_path, method="POST")

    def use_connect_response(self, body: bytes) -> None:
        """Learn the token and endpoint of a bullet answer."""
        data = _body_data(self.venue, body, "bullet")
        try:
            server = data["instanceServers"][0]
            token = _text(data["token"], "token")
            endpoint = _text(server["endpoint"], "endpoint")
            interval = server.get("pingInterval")
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad bullet answer: {exc!r}", body) from exc
        if not token or not endpoint.startswith(("ws://", "wss://")):
            raise MalformedMessage(f"{self.venue}: bullet answer names no endpoint/token", body)
        self._token = token
        self._endpoint = endpoint
        self.ping_interval_ms = interval if interval.__class__ is int else None

    def reset(self) -> None:
        self._token = None
        self._endpoint = None

    def connect_url(self, subscriptions: Sequence[Subscription]) -> str:
        """``{endpoint}?token=..&connectId=..`` after a bullet answer, else :attr:`url`."""
        if self._endpoint is None or self._token is None:
            return self.url
        sep = "&" if "?" in self._endpoint else "?"
        return f"{self._endpoint}{sep}token={self._token}&connectId=wsmux-{id(self):x}-{next(self._connects)}"

    # --- subscriptions -------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _requests(self, kind: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        by_topic: dict[str, list[str]] = {}
        for sub in subscriptions:
            self.check(sub)
            native = self.to_native(sub.symbol, sub.channel)
            self._symbols[native] = sub.symbol
            suffix = "_1min" if sub.channel is Channel.CANDLES else ""
            by_topic.setdefault(self.topics[sub.channel], []).append(native + suffix)
        out: list[Outgoing] = []
        per = self.symbols_per_topic
        for topic, natives in by_topic.items():
            for i in range(0, len(natives), per):
                msg = {
                    "id": str(next(self._ids)),
                    "type": kind,
                    "topic": f"{topic}:{','.join(natives[i : i + per])}",
                    "privateChannel": False,
                    "response": True,
                }
                out.append(dumps(msg))
        return out

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native) if native.__class__ is str else None
        if symbol is None:
            raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}")
        return symbol

    # --- frames --------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        kind = msg.get("type")
        subject: Any = None
        try:
            if kind == "message":
                subject = msg["subject"]
                handler = self._handlers.get(subject) if subject.__class__ is str else None
                if handler is None:
                    raise unknown_message("subject", subject, frame)
                return handler(msg["topic"], msg["data"], recv_ns)
            if kind in _QUIET_TYPES:
                return []
            if kind == "error":
                raise SubscriptionRejected(f"{self.venue} error {msg.get('code', '?')}: {msg.get('data', '')}")
            if kind.__class__ is str:
                raise unknown_message("type", kind, frame)
            raise MalformedMessage("unknown message type: no type", frame)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise MalformedMessage(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad {subject or kind} message: {exc!r}", frame) from exc

    def _topic_symbol(self, topic: Any) -> str:
        """The unified symbol of a one-symbol topic ``/x/y:SYM`` (``SYM_1min`` for candles)."""
        native = topic.rpartition(":")[2].partition("_")[0]
        return self._unified(native)

    def _candle(self, data: Any, recv_ns: int, size_of: Callable[[str, Any], float]) -> list[Event | Diff]:
        # kucoin.md: candles = [start (s), open, close, high, low, volume, turnover];
        # the venue pushes the forming candle ("closed" is never said).
        symbol = self._unified(data["symbol"])
        start, open_, close, high, low, volume = data["candles"][:6]
        ts = data.get("time")
        return [
            Candle(
                self.venue,
                symbol,
                "1m",
                _int(start, "candle start") * _S,
                float(open_),
                float(high),
                float(low),
                float(close),
                size_of(symbol, volume),
                False,
                self._candle_ts(ts),
                recv_ns,
            )
        ]

    def _candle_ts(self, ts: Any) -> int | None:
        return None if ts is None else _int(ts, "time")


class KucoinAdapter(_KucoinBase):
    """KuCoin spot, venue id ``"kucoin"`` (sheet ``shared/exchanges/kucoin.md``).

    Channels → events:

    * ``/market/level2`` → book updates (REST snapshot, ``sequenceStart``/
      ``sequenceEnd``; see :data:`SPOT_RULE`).
    * ``/market/match`` → :class:`~wsmux.Trade` (``side`` is the taker's,
      ``trade_id = tradeId``, ``seq = sequence``, ``ts = time`` in ns).
    * ``/market/ticker`` → :class:`~wsmux.Quote` (best bid/ask with sizes,
      ``seq = sequence``).
    * ``/market/candles:SYM_1min`` → :class:`~wsmux.Candle` (forming candle,
      ``closed`` False).
    """

    venue: ClassVar[str] = "kucoin"
    topics: ClassVar[dict[Channel, str]] = {
        Channel.BOOK: "/market/level2",
        Channel.TRADES: "/market/match",
        Channel.QUOTES: "/market/ticker",
        Channel.CANDLES: "/market/candles",
    }
    channels: ClassVar[frozenset[Channel]] = frozenset(topics)
    default_url: ClassVar[str] = "wss://ws-api-spot.kucoin.com/"
    default_rest_url: ClassVar[str] = "https://api.kucoin.com"
    symbols_per_topic: ClassVar[int] = 100
    snapshot_path: ClassVar[str] = "/api/v1/market/orderbook/level2_100"
    """Public top-100 snapshot (the full-depth v3 endpoint needs an API key)."""
    # kucoin.md, "Keep-alive / limits": 400 topics per connection (spot), 100
    # per batch, 100 uplink messages per 10 s, 30 new connections per minute.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=400,
        topics_per_message=100,
        messages_per_second=10.0,
        connections_per_window=30,
        connection_window=60.0,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._handlers = {
            "trade.l2update": self._level2,
            "trade.l3match": self._match,
            "trade.ticker": self._ticker,
            "trade.candles.update": self._candles,
            "trade.candles.add": self._candles,
        }

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native) if native.__class__ is str else None
        if symbol is None:  # spot names are unified names (replay, unsubscribed leftovers)
            if native.__class__ is not str or not _unified_ok(native) or native.count("-") != 1:
                raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}")
            symbol = self._symbols[native] = native
        return symbol

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """Spot symbols are the unified ones (``BTC-USDT``); no derivatives here."""
        base, quote, kind = parse_symbol(symbol)
        if kind is not None:
            raise UnknownSymbol(f"kucoin is spot only; use venue 'kucoin-futures' for {symbol!r}")
        return f"{base}-{quote}"

    # --- books ---------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """:data:`SPOT_RULE`."""
        return SPOT_RULE

    def snapshot_request(self, symbol: str, depth: int | None = None) -> HttpRequest | None:
        """``GET <rest>/api/v1/market/orderbook/level2_100?symbol=BTC-USDT``."""
        return HttpRequest(self.rest_url + self.snapshot_path, (("symbol", self.to_native(symbol, Channel.BOOK)),))

    def parse_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> BookSnapshot:
        """``{"code":"200000","data":{"sequence":"..","time":ms,"bids":[[p,s]],..}}``."""
        data = _body_data(self.venue, body, "snapshot")
        try:
            ts = data.get("time")
            return BookSnapshot(
                self.venue,
                symbol,
                _float_levels(data["bids"]),
                _float_levels(data["asks"]),
                None if ts is None else _int(ts, "time") * _MS,
                recv_ns,
                _int(data["sequence"], "sequence"),
            )
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad snapshot: {exc!r}", body) from exc

    def _level2(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(data["symbol"])
        changes = data["changes"]
        bids = changes["bids"]
        asks = changes["asks"]
        if bids.__class__ is not list or asks.__class__ is not list:
            raise TypeError("changes.bids/asks must be lists")
        # kucoin.md: price "0" is a placeholder that only advances the sequence
        if any(level[0] == "0" for level in bids):
            bids = [level for level in bids if level[0] != "0"]
        if any(level[0] == "0" for level in asks):
            asks = [level for level in asks if level[0] != "0"]
        ts = data.get("time")
        return [
            Diff(
                symbol,
                bids,
                asks,
                None if ts is None else _int(ts, "time") * _MS,
                _int(data["sequenceEnd"], "sequenceEnd"),
                _int(data["sequenceStart"], "sequenceStart"),
            )
        ]

    def _match(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        return [
            Trade(
                self.venue,
                self._unified(data["symbol"]),
                float(data["price"]),
                float(data["size"]),
                _SIDES[data["side"]],
                _text(data["tradeId"], "tradeId"),
                _int(data["time"], "time"),
                recv_ns,
                _int(data["sequence"], "sequence"),
            )
        ]

    def _ticker(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        return [
            Quote(
                self.venue,
                self._topic_symbol(topic),
                float(data["bestBid"]),
                float(data["bestBidSize"]),
                float(data["bestAsk"]),
                float(data["bestAskSize"]),
                _int(data["time"], "time") * _MS,
                recv_ns,
                _int(data["sequence"], "sequence"),
            )
        ]

    def _candles(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        return self._candle(data, recv_ns, _plain_size)

    # --- reference data ------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/api/v2/symbols`` (kucoin.md, "Subscribing")."""
        return HttpRequest(self.rest_url + "/api/v2/symbols")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Every listed pair whose base/quote make a unified symbol (tick =
        ``priceIncrement``, lot = ``baseIncrement``; pairs with
        ``enableTrading`` false are left out)."""
        rows = _body_data(self.venue, body, "symbols")
        out: list[Instrument] = []
        try:
            for row in rows:
                if row.get("enableTrading") is False:
                    continue
                symbol = f"{row['baseCurrency']}-{row['quoteCurrency']}"
                if not _unified_ok(symbol):
                    continue
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        _text(row["symbol"], "symbol"),
                        "spot",
                        float(row["priceIncrement"]),
                        float(row["baseIncrement"]),
                    )
                )
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad symbols list: {exc!r}", body) from exc
        return out


def _plain_size(symbol: str, size: Any) -> float:
    return float(size)


def _unified_ok(symbol: str) -> bool:
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return False
    return True


class KucoinFuturesAdapter(_KucoinBase):
    """KuCoin Futures (perpetuals), venue id ``"kucoin-futures"`` (sheet
    ``shared/exchanges/kucoin.md``).

    Channels → events:

    * ``/contractMarket/level2`` → book updates (REST snapshot, ``sequence``
      +1; see :data:`FUTURES_RULE`).
    * ``/contractMarket/execution`` → :class:`~wsmux.Trade` (taker side,
      ``trade_id = tradeId``, ``seq = sequence``, ``ts`` ns).
    * ``/contractMarket/tickerV2`` → :class:`~wsmux.Quote`.
    * ``/contract/instrument`` ``funding.rate`` → :class:`~wsmux.Funding`
      (``mark.index.price`` frames carry no event).
    * ``/contractMarket/limitCandle:SYM_1min`` → :class:`~wsmux.Candle`.

    Sizes are in base units once :meth:`use_instruments` has learned the
    contracts' ``multiplier`` (inverse contracts: coins at the level's,
    trade's or quote's price; their candle volume stays in contracts);
    before that, in contracts.
    """

    venue: ClassVar[str] = "kucoin-futures"
    topics: ClassVar[dict[Channel, str]] = {
        Channel.BOOK: "/contractMarket/level2",
        Channel.TRADES: "/contractMarket/execution",
        Channel.QUOTES: "/contractMarket/tickerV2",
        Channel.FUNDING: "/contract/instrument",
        Channel.CANDLES: "/contractMarket/limitCandle",
    }
    channels: ClassVar[frozenset[Channel]] = frozenset(topics)
    default_url: ClassVar[str] = "wss://ws-api-futures.kucoin.com/"
    default_rest_url: ClassVar[str] = "https://api-futures.kucoin.com"
    symbols_per_topic: ClassVar[int] = 1  # kucoin.md: futures topics name one symbol
    # kucoin.md: no per-connection topic cap on futures (wsmux keeps 400, like
    # spot); 100 per batch; 100 uplink messages per 10 s; 30 connects/min.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=400,
        topics_per_message=1,
        messages_per_second=10.0,
        connections_per_window=30,
        connection_window=60.0,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._handlers = {
            "level2": self._level2,
            "match": self._match,
            "tickerV2": self._ticker,
            "funding.rate": self._funding,
            "mark.index.price": _no_event,
            "candle.stick": self._candles,
        }
        self._contracts = ContractSizes(self.venue)
        self._dated: dict[str, str] = {}  # unified dated future -> native

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`kucoin_futures_symbol`; dated futures once the instruments are known."""
        native = self._dated.get(symbol)
        return native if native is not None else kucoin_futures_symbol(symbol)

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native) if native.__class__ is str else None
        if symbol is None:  # a perpetual not subscribed here (replay): XBTUSDTM -> BTC-USDT-PERP
            symbol = _perp_unified(native) if native.__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"{self.venue}: unknown symbol {native!r}")
            self._symbols[native] = symbol
        return symbol

    def _size(self, symbol: str, contracts: Any, price: Any) -> float:
        return self._contracts.size(symbol, contracts, price)

    # --- books ---------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """:data:`FUTURES_RULE`."""
        return FUTURES_RULE

    def snapshot_request(self, symbol: str, depth: int | None = None) -> HttpRequest | None:
        """``GET <rest>/api/v1/level2/snapshot?symbol=XBTUSDTM`` (full depth)."""
        return HttpRequest(
            self.rest_url + "/api/v1/level2/snapshot", (("symbol", self.to_native(symbol, Channel.BOOK)),)
        )

    def parse_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> BookSnapshot:
        """``{"code":"200000","data":{"sequence":N,"ts":ns,"bids":[[p,s]],..}}``, sizes in contracts."""
        data = _body_data(self.venue, body, "snapshot")
        size = self._size
        try:
            ts = data.get("ts")
            return BookSnapshot(
                self.venue,
                symbol,
                tuple([(float(p), size(symbol, s, p)) for p, s in data["bids"]]),
                tuple([(float(p), size(symbol, s, p)) for p, s in data["asks"]]),
                None if ts is None else _int(ts, "ts"),
                recv_ns,
                _int(data["sequence"], "sequence"),
            )
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad snapshot: {exc!r}", body) from exc

    def _level2(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._topic_symbol(topic)
        price, side, contracts = _text(data["change"], "change").split(",")
        size: Any = self._contracts.size(symbol, contracts, price) if self._contracts.converts(symbol) else contracts
        level = ((price, size),)
        ts = data.get("timestamp")
        ts_ns = None if ts is None else _int(ts, "timestamp") * _MS
        seq = _int(data["sequence"], "sequence")
        if side == "buy":
            return [Diff(symbol, level, (), ts_ns, seq)]
        if side == "sell":
            return [Diff(symbol, (), level, ts_ns, seq)]
        raise ValueError(f"change side {side!r}")

    def _match(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(data["symbol"])
        price = data["price"]
        return [
            Trade(
                self.venue,
                symbol,
                float(price),
                self._size(symbol, data["size"], price),
                _SIDES[data["side"]],
                _text(data["tradeId"], "tradeId"),
                _int(data["ts"], "ts"),
                recv_ns,
                _int(data["sequence"], "sequence"),
            )
        ]

    def _ticker(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(data["symbol"])
        bid, ask = data["bestBidPrice"], data["bestAskPrice"]
        return [
            Quote(
                self.venue,
                symbol,
                float(bid),
                self._size(symbol, data["bestBidSize"], bid),
                float(ask),
                self._size(symbol, data["bestAskSize"], ask),
                _int(data["ts"], "ts"),
                recv_ns,
                _int(data["sequence"], "sequence"),
            )
        ]

    def _funding(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        rate = data["fundingRate"]
        if rate.__class__ not in (int, float):
            raise TypeError(f"fundingRate must be a number, not {rate!r}")
        ts = data.get("timestamp")
        return [
            Funding(
                self.venue,
                self._topic_symbol(topic),
                float(rate),
                None,
                None,
                None if ts is None else _int(ts, "timestamp") * _MS,
                recv_ns,
            )
        ]

    def _candles(self, topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
        return self._candle(data, recv_ns, self._contracts.to_base)  # inverse: contracts (see the class)

    def _candle_ts(self, ts: Any) -> int | None:
        return None if ts is None else _int(ts, "time") * _MS  # futures candle "time" is ms

    # --- reference data ------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/api/v1/contracts/active``."""
        return HttpRequest(self.rest_url + "/api/v1/contracts/active")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Perpetuals (``FFWCSX``) and dated futures (``FFICSX``, expiry from
        ``expireDate`` ms, UTC) with ``tickSize``, ``lotSize`` (contracts) and
        ``multiplier`` (``contract_size``: base units per contract, or for an
        inverse contract — ``isInverse``, or a negative multiplier — its face
        value ``abs(multiplier)`` USD, with ``inverse=True``)."""
        rows = _body_data(self.venue, body, "contracts")
        out: list[Instrument] = []
        try:
            for row in rows:
                base = _text(row["baseCurrency"], "baseCurrency")
                base = "BTC" if base == "XBT" else base
                quote = _text(row["quoteCurrency"], "quoteCurrency")
                kind = row.get("type")
                if kind == "FFWCSX":
                    symbol, unified_kind = f"{base}-{quote}-PERP", "perp"
                elif kind == "FFICSX" and row.get("expireDate"):
                    day = datetime.datetime.fromtimestamp(_int(row["expireDate"], "expireDate") / 1000, datetime.UTC)
                    symbol, unified_kind = f"{base}-{quote}-{day:%Y%m%d}", "future"
                else:
                    continue
                if not _unified_ok(symbol):
                    continue
                multiplier = float(row["multiplier"])
                inverse = row.get("isInverse") is True or multiplier < 0
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        _text(row["symbol"], "symbol"),
                        unified_kind,
                        float(row["tickSize"]),
                        float(row["lotSize"]),
                        abs(multiplier) if multiplier else None,
                        inverse,
                    )
                )
        except _ERRORS as exc:
            raise MalformedMessage(f"{self.venue}: bad contracts list: {exc!r}", body) from exc
        return out

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn contract multipliers and face values (sizes then in base
        units) and the native names of dated futures."""
        self._contracts.learn(instruments)
        for inst in instruments:
            if inst.venue != self.venue:
                continue
            if inst.kind == "future":
                self._dated[inst.symbol] = inst.native


def _perp_unified(native: str) -> str | None:
    """``XBTUSDTM`` → ``BTC-USDT-PERP`` (inverse of :func:`kucoin_futures_symbol`), or None."""
    if not native.endswith("M"):
        return None
    pair = native[:-1]
    for quote in ("USDT", "USDC", "USD"):
        if pair.endswith(quote) and len(pair) > len(quote):
            base = pair[: -len(quote)]
            symbol = f"{'BTC' if base == 'XBT' else base}-{quote}-PERP"
            return symbol if _unified_ok(symbol) else None
    return None


def _no_event(topic: str, data: Any, recv_ns: int) -> list[Event | Diff]:
    return []
