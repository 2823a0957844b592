"""Coinbase adapters: Coinbase Exchange (``"coinbase"``) and Advanced Trade
(``"coinbase-advanced"``).

Venue rules come from the wsmux fact sheets ``shared/exchanges/coinbase-exchange.md``
(which cites docs.cdp.coinbase.com ``exchange/websocket-feed``, its
``channels``, ``authentication`` and ``rate-limits`` pages, and the 2021
cryptofeed recording ``COINBASE.ws.28.0``) and
``shared/exchanges/coinbase-advanced-trade.md`` (docs.cdp.coinbase.com
``advanced-trade-apis/websocket`` and the Advanced Trade AsyncAPI spec). Each
rule is restated where it is enforced.

Coinbase Exchange (``wss://ws-feed.exchange.coinbase.com``)
    * **Subscribe** within 5 s of connecting, with channel objects
      ``{"name": ..., "product_ids": [...]}``; the reply is a
      ``subscriptions`` message, errors are ``{"type": "error", ...}``.
    * **Channels.** ``Channel.BOOK`` is ``level2_batch`` (public, 50 ms
      batches) or ``level2`` (every change; needs credentials), ``TRADES`` is
      ``matches``, ``QUOTES`` is ``ticker``, ``L3`` is ``full`` (needs
      credentials). The ``heartbeat`` channel (1/s per product) is added to
      every product so a quiet product still shows the connection is alive.
    * **L2 book.** A ``snapshot`` then ``l2update`` messages whose
      ``changes`` are ``[side, price, size]`` with ``buy``/``sell`` sides and
      absolute sizes (``"0"`` removes). There is *no sequence and no
      checksum*: nothing can detect a lost ``l2update``, so the rule is
      ``Continuity.NONE`` with the crossed-book check as the only guard; a
      resync unsubscribes and subscribes the product's L2 channel again.
    * **Sequence numbers.** ``matches``, ``ticker``, ``heartbeat`` and every
      ``full`` message carry ``sequence``, a per-*product* counter of the
      matching engine that advances on *every* order event (received, open,
      done, match, change). Only the ``full`` channel sees every number; on
      ``matches`` and ``ticker`` the sequence jumps between messages as a
      matter of course (the recording shows jumps of hundreds), so a jump
      there is not a gap. What ``matches`` does number contiguously is
      ``trade_id`` (per product): a ``trade_id`` above ``last + 1`` emits
      ``Gap(channel=TRADES, reason=TRADE_ID, expected=last+1,
      received=trade_id)`` before the trade; a ``trade_id <= last`` is a
      duplicate and dropped. ``ticker`` messages with ``sequence <= last`` are
      stale and dropped (the ticker batches cascading matches, so its
      ``trade_id`` may skip and proves nothing).
    * **last_match.** Sent once on subscribing to ``matches``: the last trade
      *before* the subscription. It is history, so it is **dropped** (no
      event); its ``trade_id`` seeds the trade-id continuity check, so the
      first live ``match`` is already checked.
    * **Trade side.** ``match.side`` is the *maker's* side: ``sell`` means the
      taker bought. ``Trade.side`` is the taker's side.
    * **L3 book (``full``).** Buffer messages, fetch
      ``GET /products/<id>/book?level=3`` (``sequence`` field), drop messages
      with ``sequence <= `` the snapshot's, then every message must be
      ``last + 1`` per product; a gap means resync. The adapter sees every
      ``full`` message, so it numbers the book events: an
      :class:`~wsmux.OrderUpdate` covers ``[first_seq, seq]``, the sequence
      numbers of the non-book messages (``received``, ``activate``, ``change``
      of funds) since the previous book event included, and a jump restarts
      the range so the L3 sync sees it (``Continuity.UPDATE_ID``). Messages
      with ``sequence <= last`` (duplicates, late arrivals) are dropped.
      ``open`` is ``ADD`` (``remaining_size``), ``done`` is ``REMOVE`` (by
      order id: the ``done`` price may differ from the ``open`` price),
      ``match`` is ``FILL`` of the maker order by the traded ``size``, a
      ``change`` with ``new_size`` is ``CHANGE`` (``new_price`` moves it).
    * **Authentication.** ``level2``/``full``/``level3`` need a signed
      subscribe: ``signature``, ``key``, ``passphrase``, ``timestamp`` added
      to the message, signed like REST ``GET /users/self/verify``
      (base64 HMAC-SHA256, keyed with the base64-decoded secret, of
      ``timestamp + "GET" + "/users/self/verify"``). The timestamp comes from
      the clock handed to the adapter.
    * **Timestamps** are ISO-8601 with microseconds (``...37.075687Z``),
      converted to integer ns exactly (:func:`iso_to_ns`).

Coinbase Advanced Trade (``wss://advanced-trade-ws.coinbase.com``)
    * **Subscribe** one channel per message (field ``channel``), many
      products; always also ``heartbeats`` (no products), because the server
      closes channels after 60-90 s without updates.
    * **Envelope** ``{"channel", "timestamp", "sequence_num", "events"}``.
      ``sequence_num`` grows by one per message *per connection*, across all
      channels and products. A jump means a lost message of unknown content:
      the adapter emits ``Gap(venue, "", Channel.BOOK, SEQUENCE, expected,
      received)`` so the pipeline invalidates and resyncs every book of the
      connection (and ``Gap(venue, "", Channel.TRADES, ...)`` when the
      connection carries trades). Messages with ``sequence_num`` below the
      expected one are dropped.
    * **Book** ``level2`` arrives on channel ``l2_data``: a ``snapshot`` event
      then ``update`` events; ``updates`` entries have ``side``
      (``bid``/``offer``), ``price_level`` and ``new_quantity`` (absolute,
      ``"0"`` removes). No checksum, no per-book sequence: ``Continuity.NONE``
      plus the connection sequence above.
    * **Trades** ``market_trades``: the first event (``snapshot``) is recent
      history and dropped; ``update`` trades become :class:`~wsmux.Trade`
      (``side`` taken as the taker's side, as cryptofeed does; the sheet
      marks this UNCONFIRMED).
    * **Ticker** ``ticker``: ``best_bid``/``best_bid_quantity``/``best_ask``/
      ``best_ask_quantity`` become a :class:`~wsmux.Quote`.
    * **Candles** ``candles``: Coinbase groups them into **five-minute**
      buckets, its only WebSocket candle (docs.cdp.coinbase.com, Advanced
      Trade "Candles" channel; the sheet only lists the channel). Each entry
      ``{start (epoch seconds), open, high, low, close, volume, product_id}``
      becomes a :class:`~wsmux.Candle` with ``interval="5m"`` (not the
      one-minute candles of the other venues), ``ts`` the envelope time.
      Coinbase never says a candle is final: ``closed`` is False, except for
      the older candles of an event that lists several (a later bucket exists).
    * **ts** of book and ticker events is the envelope ``timestamp`` (one
      parse per message); trades use their own ``time``.

Symbols: both venues use ``BASE-QUOTE`` product ids (``BTC-USD``), the same
as wsmux's unified spot symbols. Only spot products exist here.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, RawSnapshot, SnapshotSource, SyncRule, UnreadRows
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.credentials import Credentials
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._candles import FIVE_MINUTES, build_candle
from wsmux.exchanges._reference import BODY_ERRORS, json_body, step, unified_or_none
from wsmux.model import (
    BookSide,
    Channel,
    Event,
    Gap,
    GapReason,
    Instrument,
    Integrity,
    L3Snapshot,
    OrderAction,
    OrderUpdate,
    Quote,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "CoinbaseAdapter",
    "CoinbaseAdvancedAdapter",
    "CoinbaseStats",
    "coinbase_auth_fields",
    "iso_to_ns",
]

_NAN = math.nan
_BID = BookSide.BID
_ASK = BookSide.ASK
_BUY = Side.BUY
_SELL = Side.SELL
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)

# --- timestamps -------------------------------------------------------------------------

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_SECOND_NS: dict[str, int] = {}
_POW10: tuple[int, ...] = tuple(10**k for k in range(10))
_CACHE_SIZE = 4096


def _second_ns(prefix: str) -> int:
    """ns of ``YYYY-MM-DDTHH:MM:SS`` (validated), cached: one entry per second seen."""
    if (
        len(prefix) != 19
        or prefix[4] != "-"
        or prefix[7] != "-"
        or prefix[10] not in "T "
        or prefix[13] != ":"
        or prefix[16] != ":"
        or not (prefix[:4] + prefix[5:7] + prefix[8:10] + prefix[11:13] + prefix[14:16] + prefix[17:19]).isdigit()
    ):
        raise ValueError(f"bad timestamp {prefix!r}")
    hh = int(prefix[11:13])
    mm = int(prefix[14:16])
    ss = int(prefix[17:19])
    if hh > 23 or mm > 59 or ss > 60:
        raise ValueError(f"bad time of day in {prefix!r}")
    try:
        ordinal = datetime.date(int(prefix[:4]), int(prefix[5:7]), int(prefix[8:10])).toordinal()
    except ValueError as exc:
        raise ValueError(f"bad date in {prefix!r}: {exc}") from exc
    ns = ((ordinal - _EPOCH_ORDINAL) * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000_000
    if len(_SECOND_NS) >= _CACHE_SIZE:
        _SECOND_NS.clear()
    _SECOND_NS[prefix] = ns
    return ns


def iso_to_ns(text: str) -> int:
    """Convert an ISO-8601/RFC 3339 UTC timestamp to integer ns since the epoch, exactly.

    Accepts ``YYYY-MM-DDTHH:MM:SS[.f…]`` followed by ``Z`` or a ``±HH:MM``
    offset, with 0 to 9 fraction digits (more are truncated to ns); a space
    may stand for the ``T``. The ``YYYY-MM-DDTHH:MM:SS`` prefix is validated
    once and cached (a feed's messages share their second), so a call costs a
    dict lookup and one ``int()`` of the fraction: no ``datetime`` objects, no
    ``dateutil``.

    Raises:
        ValueError: ``text`` is not such a timestamp.
    """
    prefix = text[:19]
    base = _SECOND_NS.get(prefix)
    if base is None:
        base = _second_ns(prefix)
    last = text[-1]
    if last == "Z" or last == "z":  # noqa: PLR1714 - faster than a membership test
        end = len(text) - 1
    elif len(text) >= 25 and text[-3] == ":" and text[-6] in "+-":
        end = len(text) - 6
        offset = (int(text[-5:-3]) * 3600 + int(text[-2:]) * 60) * 1_000_000_000
        base += -offset if text[-6] == "+" else offset
    else:
        raise ValueError(f"bad timestamp {text!r}: no Z or offset")
    if end == 19:
        return base
    frac = text[20:end]
    if text[19] != "." or not frac.isdigit():
        raise ValueError(f"bad fraction in {text!r}")
    digits = len(frac)
    if digits == 6:
        return base + int(frac) * 1000
    if digits >= 9:
        return base + int(frac[:9])
    return base + int(frac) * _POW10[9 - digits]


def _opt_ts(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError("time is not a string")
    return iso_to_ns(value)


def _opt_float(value: object) -> float:
    if value is None or value == "":
        return _NAN
    return float(value)  # type: ignore[arg-type]


# --- authentication ------------------------------------------------------------------------

_VERIFY_PATH = "/users/self/verify"


def coinbase_auth_fields(credentials: Credentials, timestamp: str) -> dict[str, str]:
    """The fields a signed Coinbase Exchange subscribe message carries.

    Rule (sheet "Subscribing"; Coinbase ``exchange/websocket-feed/authentication``):
    sign like REST ``GET /users/self/verify`` — the signature is the base64
    HMAC-SHA256, keyed with the base64-decoded API secret, of
    ``timestamp + "GET" + "/users/self/verify"``.

    Args:
        credentials: key, base64 secret and passphrase.
        timestamp: seconds since the epoch as text (within 30 s of Coinbase's clock).

    Raises:
        ConfigError: the secret is not base64 or the passphrase is missing.
    """
    if credentials.passphrase is None:
        raise ConfigError("Coinbase Exchange credentials need a passphrase")
    try:
        secret = base64.b64decode(credentials.secret, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("Coinbase Exchange API secret is not valid base64") from exc
    message = f"{timestamp}GET{_VERIFY_PATH}".encode()
    signature = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()
    return {
        "signature": signature,
        "key": credentials.key,
        "passphrase": credentials.passphrase,
        "timestamp": timestamp,
    }


# --- shared helpers --------------------------------------------------------------------------


def _spot_native(venue: str, symbol: str) -> str:
    _base, _quote, kind = parse_symbol(symbol)
    if kind is not None:
        raise UnknownSymbol(f"{venue} lists spot products only (BASE-QUOTE), not {symbol!r}")
    return symbol


def _wrap(frame: bytes | str, exc: BaseException, what: str) -> MalformedMessage:
    return MalformedMessage(f"bad {what} message ({type(exc).__name__}: {exc})", frame)


def _products(venue: str, rows: Any, keys: tuple[str, str, str, str, str], body: bytes) -> list[Instrument]:
    """Spot instruments of a Coinbase product list. ``keys`` name the id,
    base, quote, price-increment and size-increment fields; products that are
    not ``online`` or whose id is not ``BASE-QUOTE`` are left out."""
    id_key, base_key, quote_key, tick_key, lot_key = keys
    out: list[Instrument] = []
    try:
        for row in rows:
            if row.get("status", "online") != "online" or row.get("trading_disabled") or row.get("is_disabled"):
                continue
            native = row[id_key]
            if unified_or_none(native) is None or native != f"{row[base_key]}-{row[quote_key]}":
                continue
            out.append(Instrument(venue, native, native, "spot", step(row.get(tick_key)), step(row.get(lot_key))))
    except BODY_ERRORS as exc:
        raise MalformedMessage(f"{venue}: bad products list: {exc!r}", body) from exc
    return out


class CoinbaseStats:
    """Counters of drops an adapter makes on purpose (per adapter instance)."""

    __slots__ = ("duplicates", "history_dropped", "stale")

    def __init__(self) -> None:
        self.duplicates = 0
        """Messages dropped because their sequence/trade id was already seen."""
        self.stale = 0
        """Ticker messages older than the last one."""
        self.history_dropped = 0
        """``last_match`` / ``market_trades`` snapshots (history, not live)."""

    def __repr__(self) -> str:
        return (
            f"CoinbaseStats(duplicates={self.duplicates}, stale={self.stale}, history_dropped={self.history_dropped})"
        )


# =============================================================================================
# Coinbase Exchange
# =============================================================================================

_L2_CHANNELS = ("level2_batch", "level2")
_AUTH_CHANNELS = frozenset({"level2", "full", "level3"})
_BOOK_SIDE = {"buy": _BID, "sell": _ASK}
_TAKER_FROM_MAKER = {"sell": _BUY, "buy": _SELL}
_NOT_BOOK = frozenset({"received", "activate"})


class CoinbaseAdapter(Adapter):
    """Coinbase Exchange market data (sheet: ``shared/exchanges/coinbase-exchange.md``).

    See the module docstring for every rule. One instance per connection.

    Args:
        url: WebSocket URL override (mock servers, sandbox).
        rest_url: REST base URL override.
        credentials: API key, base64 secret and passphrase, for the channels
            that need a signed subscribe (``level2``, ``full``). Without them
            ``Channel.BOOK`` uses ``level2_batch`` and ``Channel.L3`` is refused.
        clock: where the signing timestamp is read (default: the system clock).
        l2_channel: ``"level2_batch"`` or ``"level2"``; default ``level2`` when
            credentials are given, else ``level2_batch``.
        heartbeats: also subscribe every product to ``heartbeat`` (1 message/s
            per product). Without it a quiet product can stay silent past the
            30 s ``heartbeat.silence_timeout`` and the connection is replaced.
        allow_insecure_loopback: with credentials, accept a ``ws://`` URL on a
            loopback host (a mock server); any other plain-text URL is refused.

    To hand options to the :class:`~wsmux.Multiplexer` (which builds adapters
    from a class), use :meth:`configured`.

    Raises:
        ConfigError: ``l2_channel`` is unknown, or ``level2`` without credentials,
            or credentials without a passphrase, or credentials with a
            plain-text ``ws://`` URL (see :func:`wsmux.credentials.require_tls`).
    """

    venue: ClassVar[str] = "coinbase"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"key", "passphrase", "signature"})
    """Recorded as ``"<redacted>"`` in the message log (the signed subscribe)."""
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.TRADES, Channel.QUOTES, Channel.BOOK, Channel.L3})
    default_url: ClassVar[str] = "wss://ws-feed.exchange.coinbase.com"
    default_rest_url: ClassVar[str] = "https://api.exchange.coinbase.com"
    # GET /time -> {"iso": "...", "epoch": <s with ms decimals>} (the venue's REST
    # docs, "Get the API server time"; the sheet is silent on it)
    server_time_path: ClassVar[str | None] = "/time"
    server_time_field: ClassVar[tuple[str | int, ...]] = ("epoch",)
    server_time_unit_ns: ClassVar[int] = 1_000_000_000
    server_time_resolution_ns: ClassVar[int | None] = 1_000_000
    # Sheet "Limits": 8 requests/s per IP (bursts to 20), <= 100 client messages/s
    # per IP; per-connection topic caps are not documented (wsmux keeps 100).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=100,
        messages_per_second=8.0,
        rest_weight_per_minute=480,
    )
    # Sheet: no app-level ping; standard WS ping/pong; heartbeat channel 1/s.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ws_ping_interval=20.0, silence_timeout=30.0, stale_after=30.0
    )

    def __init__(
        self,
        *,
        url: str | None = None,
        rest_url: str | None = None,
        credentials: Credentials | None = None,
        clock: Clock | None = None,
        l2_channel: str | None = None,
        heartbeats: bool = True,
        allow_insecure_loopback: bool = False,
    ) -> None:
        super().__init__(url=url, rest_url=rest_url, allow_insecure_loopback=allow_insecure_loopback)
        if credentials is not None:
            if not isinstance(credentials, Credentials):
                raise ConfigError("credentials must be a wsmux.credentials.Credentials")
            if credentials.passphrase is None:
                raise ConfigError("Coinbase Exchange credentials need a passphrase")
        if l2_channel is None:
            l2_channel = "level2" if credentials is not None else "level2_batch"
        if l2_channel not in _L2_CHANNELS:
            raise ConfigError(f"l2_channel must be one of {_L2_CHANNELS}, not {l2_channel!r}")
        if l2_channel in _AUTH_CHANNELS and credentials is None:
            raise ConfigError(f"Coinbase {l2_channel!r} needs credentials; use 'level2_batch'")
        self.credentials = credentials
        self.check_transport()
        self.clock = clock if clock is not None else SYSTEM_CLOCK
        self.l2_channel = l2_channel
        self.heartbeats = heartbeats
        self.stats = CoinbaseStats()
        self._names = {
            Channel.BOOK: l2_channel,
            Channel.TRADES: "matches",
            Channel.QUOTES: "ticker",
            Channel.L3: "full",
        }
        self._native: dict[str, str] = {}
        self._l3_products: set[str] = set()
        self._trade_products: set[str] = set()
        # per-connection sequence state
        self._last_trade: dict[str, int] = {}
        self._ticker_seq: dict[str, int] = {}
        self._l3_last: dict[str, int] = {}
        self._l3_run: dict[str, int] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], int], Sequence[Event | Diff | RawSnapshot]]] = {
            "l2update": self._l2update,
            "snapshot": self._snapshot,
            "match": self._match,
            "ticker": self._ticker,
            "last_match": self._last_match,
            "received": self._l3_other,
            "activate": self._l3_other,
            "open": self._open,
            "done": self._done,
            "change": self._change,
            "heartbeat": _ignore,
            "subscriptions": _ignore,
            "status": _ignore,
        }

    @classmethod
    def configured(
        cls,
        *,
        credentials: Credentials | None = None,
        clock: Clock | None = None,
        l2_channel: str | None = None,
        heartbeats: bool = True,
        allow_insecure_loopback: bool = False,
    ) -> type[CoinbaseAdapter]:
        """A subclass whose instances use these options, for places that take an
        adapter *class* (``Multiplexer(adapters={"coinbase": ...})``)::

            Multiplexer(adapters={"coinbase": CoinbaseAdapter.configured(credentials=creds)})

        The options are checked now (ConfigError), not at the first connection.
        """
        cls(credentials=credentials, clock=clock, l2_channel=l2_channel, heartbeats=heartbeats)

        class _Configured(cls):  # type: ignore[valid-type,misc]
            def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
                super().__init__(
                    url=url,
                    rest_url=rest_url,
                    credentials=credentials,
                    clock=clock,
                    l2_channel=l2_channel,
                    heartbeats=heartbeats,
                    allow_insecure_loopback=allow_insecure_loopback,
                )

        _Configured.__name__ = _Configured.__qualname__ = f"{cls.__name__}.configured"
        return _Configured

    # --- symbols / subscriptions -----------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        return _spot_native(self.venue, symbol)

    @property
    def signs(self) -> bool:
        """True with credentials: the subscribe of ``level2``/``full`` is signed."""
        return self.credentials is not None

    def check(self, subscription: Subscription) -> None:
        super().check(subscription)
        if subscription.channel is Channel.L3 and self.credentials is None:
            raise ConfigError("Coinbase 'full' (Channel.L3) needs credentials")

    def _topics(self, subscriptions: Sequence[Subscription], *, register: bool) -> dict[str, list[str]]:
        """channel name -> product ids, in first-seen order."""
        topics: dict[str, list[str]] = {}
        for sub in subscriptions:
            self.check(sub)
            native = self.to_native(sub.symbol, sub.channel)
            name = self._names[sub.channel]
            products = topics.setdefault(name, [])
            if native not in products:
                products.append(native)
            if register:
                self._native[native] = sub.symbol
                if sub.channel is Channel.L3:
                    self._l3_products.add(native)
                elif sub.channel is Channel.TRADES:
                    self._trade_products.add(native)
        return topics

    def _messages(self, kind: str, topics: dict[str, list[str]]) -> list[Outgoing]:
        per_message = self.limits.topics_per_message
        pairs = [(name, product) for name, products in topics.items() for product in products]
        out: list[Outgoing] = []
        for start in range(0, len(pairs), per_message):
            chunk: dict[str, list[str]] = {}
            for name, product in pairs[start : start + per_message]:
                chunk.setdefault(name, []).append(product)
            msg: dict[str, Any] = {
                "type": kind,
                "channels": [{"name": name, "product_ids": products} for name, products in chunk.items()],
            }
            if kind == "subscribe" and self.credentials is not None and not _AUTH_CHANNELS.isdisjoint(chunk):
                timestamp = str(self.clock.time_ns() // 1_000_000_000)
                msg.update(coinbase_auth_fields(self.credentials, timestamp))
            out.append(dumps(msg))
        return out

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """Subscribe messages: channel objects, signed when they name an
        authenticated channel; ``heartbeat`` added for every product."""
        topics = self._topics(subscriptions, register=True)
        if self.heartbeats and topics:
            products: list[str] = []
            for names in topics.values():
                products.extend(p for p in names if p not in products)
            topics["heartbeat"] = products
        return self._messages("subscribe", topics)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        topics = self._topics(subscriptions, register=False)
        for sub in subscriptions:
            native = self.to_native(sub.symbol, sub.channel)
            if sub.channel is Channel.L3:
                self._l3_products.discard(native)
                self._l3_last.pop(native, None)
                self._l3_run.pop(native, None)
            elif sub.channel is Channel.TRADES:
                self._trade_products.discard(native)
        return self._messages("unsubscribe", topics)

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """Unsubscribe and subscribe the product's L2 channel only (a fresh
        ``snapshot`` follows); the heartbeat and other channels are left alone."""
        topics = self._topics([subscription], register=False)
        return [*self._messages("unsubscribe", topics), *self._messages("subscribe", topics)]

    def reset(self) -> None:
        """Forget the per-connection sequence state (trade ids, ticker and full sequences)."""
        self._last_trade.clear()
        self._ticker_seq.clear()
        self._l3_last.clear()
        self._l3_run.clear()

    # --- reference data ---------------------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/products`` (coinbase-exchange.md: product ids ``BTC-USD``;
        the list's schema is Coinbase Exchange's REST docs, not the sheet)."""
        return HttpRequest(self.rest_url + "/products")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``[{"id", "base_currency", "quote_currency", "quote_increment",
        "base_increment", "status", "trading_disabled"}]`` → online products."""
        rows = json_body(self.venue, body)
        if rows.__class__ is dict and "message" in rows:
            raise RemoteError(f"coinbase products error: {rows['message']}")
        if rows.__class__ is not list:
            raise MalformedMessage("coinbase: products body is not a list", body)
        return _products(
            self.venue, rows, ("id", "base_currency", "quote_currency", "quote_increment", "base_increment"), body
        )

    # --- books ---------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """``level2``/``level2_batch``: stream snapshot, no sequence, no checksum
        (sheet "Book sync"): only a crossed book can reveal a problem."""
        return SyncRule(SnapshotSource.STREAM, Continuity.NONE, check_crossed=True)

    def l3_rule(self, symbol: str) -> SyncRule:
        """``full``: REST level-3 snapshot, per-product ``sequence`` (sheet
        "Book sync"); OrderUpdates cover ``[first_seq, seq]``."""
        return SyncRule(SnapshotSource.REST, Continuity.UPDATE_ID, bridge_offset=1, max_buffer=100_000)

    def l3_snapshot_request(self, symbol: str) -> HttpRequest | None:
        """``GET /products/<id>/book?level=3`` (sheet "Endpoints")."""
        native = self.to_native(symbol, Channel.L3)
        return HttpRequest(f"{self.rest_url}/products/{native}/book", (("level", "3"),))

    def parse_l3_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> L3Snapshot:
        """``{"sequence": N, "bids": [[price, size, order_id], ...], "asks": [...]}``."""
        try:
            msg = loads(body)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON in level-3 book", body) from exc
        try:
            seq = msg["sequence"]
            if type(seq) is not int:
                raise TypeError("sequence is not an integer")
            orders: list[tuple[str, BookSide, float, float]] = []
            append = orders.append
            for price, size, order_id in msg["bids"]:
                append((str(order_id), _BID, float(price), float(size)))
            for price, size, order_id in msg["asks"]:
                append((str(order_id), _ASK, float(price), float(size)))
            ts = _opt_ts(msg.get("time"))
        except _ERRORS as exc:
            raise _wrap(body, exc, "level-3 book") from exc
        return L3Snapshot(self.venue, symbol, tuple(orders), ts, recv_ns, seq)

    # --- frames ------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff | RawSnapshot]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        try:
            # the hot path: one dict lookup; anything odd lands in _bad()
            return self._handlers[msg["type"]](msg, recv_ns)
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise self._bad(msg, frame, exc) from exc

    def _bad(self, msg: Any, frame: bytes | str, exc: BaseException) -> WsmuxError:
        """The error for a frame that failed to parse (slow path)."""
        if type(msg) is not dict:
            return MalformedMessage("unknown message type: expected a JSON object", frame)
        kind = msg.get("type")
        if type(kind) is not str or kind not in self._handlers:
            if kind == "error":
                return self._error(msg)
            return unknown_message("", kind, frame)
        return _wrap(frame, exc, kind)

    @staticmethod
    def _error(msg: dict[str, Any]) -> RemoteError:
        text = f"coinbase error: {msg.get('message')!r} (reason: {msg.get('reason')!r})"
        if "subscribe" in str(msg.get("message", "")).lower():
            return SubscriptionRejected(text)
        return RemoteError(text)

    def _symbol(self, product: str) -> str:
        symbol = self._native.get(product)
        if symbol is None:
            if type(product) is not str:
                raise TypeError("product_id is not a string")
            return product
        return symbol

    # L2 ------------------------------------------------------------------------------

    def _snapshot(self, msg: dict[str, Any], recv_ns: int) -> list[RawSnapshot]:
        bids = msg["bids"]
        asks = msg["asks"]
        if type(bids) is not list or type(asks) is not list:
            raise TypeError("bids and asks must be lists")
        # the full book's rows as decoded: the book's build converts and checks them, in steps
        return [RawSnapshot(self._symbol(msg["product_id"]), bids, asks, _opt_ts(msg.get("time")))]

    def _l2update(self, msg: dict[str, Any], recv_ns: int) -> list[Event | Diff]:
        # the level texts go to the book sync, which converts, checks and
        # applies them in one pass
        bids: list[tuple[Any, Any]] = []
        asks: list[tuple[Any, Any]] = []
        for side, price, size in msg["changes"]:
            if side == "buy":
                bids.append((price, size))
            elif side == "sell":
                asks.append((price, size))
            else:
                raise ValueError(f"unknown side {side!r}")
        return [Diff(self._symbol(msg["product_id"]), bids, asks, iso_to_ns(msg["time"]))]

    # trades / ticker ---------------------------------------------------------------------

    def _last_match(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        trade_id = msg["trade_id"]
        if type(trade_id) is not int:
            raise TypeError("trade_id is not an integer")
        last = self._last_trade.get(product)
        if last is None or trade_id > last:
            self._last_trade[product] = trade_id
        self.stats.history_dropped += 1
        return []

    def _match(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        # Every field is read and checked before any state changes: a malformed
        # message is dropped whole, and the next one then reveals it as a gap.
        product = msg["product_id"]
        seq = msg["sequence"]
        trade_id = msg["trade_id"]
        if type(seq) is not int or type(trade_id) is not int:
            raise TypeError("sequence or trade_id is not an integer")
        ts = iso_to_ns(msg["time"])
        price = float(msg["price"])
        size = float(msg["size"])
        maker_side = msg["side"]
        taker = _TAKER_FROM_MAKER[maker_side]
        symbol = self._symbol(product)
        events: list[Event] = []
        if product in self._l3_products:
            maker_order = msg["maker_order_id"]
            if type(maker_order) is not str:
                raise TypeError("maker_order_id is not a string")
            first = self._l3_sequence(product, seq)
            if first is None:
                return []
            events.append(
                OrderUpdate(
                    self.venue,
                    symbol,
                    OrderAction.FILL,
                    maker_order,
                    _BOOK_SIDE[maker_side],
                    price,
                    size,
                    ts,
                    recv_ns,
                    seq,
                    first,
                )
            )
            if product not in self._trade_products:
                return events
        last = self._last_trade.get(product)
        if last is not None:
            if trade_id <= last:
                self.stats.duplicates += 1
                return events
            if trade_id != last + 1:
                events.append(
                    Gap(
                        self.venue,
                        symbol,
                        Channel.TRADES,
                        GapReason.TRADE_ID,
                        last + 1,
                        trade_id,
                        recv_ns,
                        f"trade ids {last + 1}..{trade_id - 1} missing",
                    )
                )
        self._last_trade[product] = trade_id
        events.append(Trade(self.venue, symbol, price, size, taker, str(trade_id), ts, recv_ns, seq))
        return events

    def _ticker(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        seq = msg["sequence"]
        if type(seq) is not int:
            raise TypeError("sequence is not an integer")
        last = self._ticker_seq.get(product)
        if last is not None and seq <= last:
            self.stats.stale += 1
            return []
        self._ticker_seq[product] = seq
        return [
            Quote(
                self.venue,
                self._symbol(product),
                _opt_float(msg["best_bid"]),
                _opt_float(msg.get("best_bid_size")),
                _opt_float(msg["best_ask"]),
                _opt_float(msg.get("best_ask_size")),
                _opt_ts(msg.get("time")),
                recv_ns,
                seq,
            )
        ]

    # L3 (full) ---------------------------------------------------------------------------

    def _l3_sequence(self, product: str, seq: int) -> int | None:
        """Track the product's ``full`` sequence. Returns the first sequence of
        the unbroken run that ``seq`` ends, or None for a duplicate/late message."""
        last = self._l3_last.get(product)
        if last is not None and seq <= last:
            self.stats.duplicates += 1
            return None
        self._l3_last[product] = seq
        if last is None or seq != last + 1:
            self._l3_run.pop(product, None)
            return seq
        return self._l3_run.pop(product, seq)

    def _l3_skip(self, product: str, seq: int) -> None:
        """A sequenced ``full`` message that does not change the book: fold its
        number into the next book event."""
        first = self._l3_sequence(product, seq)
        if first is not None:
            self._l3_run[product] = first

    def _l3_other(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        seq = msg.get("sequence")
        if seq is not None and product in self._l3_products:
            if type(seq) is not int:
                raise TypeError("sequence is not an integer")
            self._l3_skip(product, seq)
        return []

    def _open(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        if product not in self._l3_products:
            return []
        seq = msg["sequence"]
        if type(seq) is not int:
            raise TypeError("sequence is not an integer")
        side = _BOOK_SIDE[msg["side"]]
        price = float(msg["price"])
        size = float(msg["remaining_size"])
        order_id = msg["order_id"]
        if type(order_id) is not str:
            raise TypeError("order_id is not a string")
        ts = iso_to_ns(msg["time"])
        symbol = self._symbol(product)
        first = self._l3_sequence(product, seq)
        if first is None:
            return []
        return [
            OrderUpdate(
                self.venue,
                symbol,
                OrderAction.ADD,
                order_id,
                side,
                price,
                size,
                ts,
                recv_ns,
                seq,
                first,
            )
        ]

    def _done(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        if product not in self._l3_products:
            return []
        seq = msg["sequence"]
        if type(seq) is not int:
            raise TypeError("sequence is not an integer")
        side = _BOOK_SIDE[msg["side"]]
        order_id = msg["order_id"]
        if type(order_id) is not str:
            raise TypeError("order_id is not a string")
        price = _opt_float(msg.get("price"))  # market orders have none
        ts = iso_to_ns(msg["time"])
        symbol = self._symbol(product)
        first = self._l3_sequence(product, seq)
        if first is None:
            return []
        return [
            OrderUpdate(
                self.venue,
                symbol,
                OrderAction.REMOVE,
                order_id,
                side,
                price,
                0.0,
                ts,
                recv_ns,
                seq,
                first,
            )
        ]

    def _change(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        product = msg["product_id"]
        if product not in self._l3_products:
            return []
        seq = msg["sequence"]
        if type(seq) is not int:
            raise TypeError("sequence is not an integer")
        new_size = msg.get("new_size")
        price = msg.get("new_price", msg.get("price"))
        iso_to_ns(msg["time"])
        if new_size is None or price is None:
            # a change of funds (market order): never on the book
            self._l3_skip(product, seq)
            return []
        side = _BOOK_SIDE[msg["side"]]
        order_id = msg["order_id"]
        if type(order_id) is not str:
            raise TypeError("order_id is not a string")
        fprice = float(price)
        fsize = float(new_size)
        ts = iso_to_ns(msg["time"])
        symbol = self._symbol(product)
        first = self._l3_sequence(product, seq)
        if first is None:
            return []
        return [
            OrderUpdate(
                self.venue,
                symbol,
                OrderAction.CHANGE,
                order_id,
                side,
                fprice,
                fsize,
                ts,
                recv_ns,
                seq,
                first,
            )
        ]


def _ignore(msg: dict[str, Any], recv_ns: int) -> list[Event]:
    return []


# =============================================================================================
# Coinbase Advanced Trade
# =============================================================================================

_ADV_CHANNELS = {
    Channel.BOOK: "level2",
    Channel.TRADES: "market_trades",
    Channel.QUOTES: "ticker",
    Channel.CANDLES: "candles",
}
_ADV_BOOK_SIDE = {"bid": True, "offer": False, "ask": False}
_ADV_TAKER = {"BUY": _BUY, "SELL": _SELL, "buy": _BUY, "sell": _SELL}


def _split_updates(updates: Any) -> tuple[list[Any], list[Any]]:
    """``level2`` updates of both sides → bid and ask ``(price, size)`` text
    rows, converted and checked by the book sync."""
    bids: list[Any] = []
    asks: list[Any] = []
    for u in updates:
        level = (u["price_level"], u["new_quantity"])
        if _ADV_BOOK_SIDE[u["side"]]:
            bids.append(level)
        else:
            asks.append(level)
    return bids, asks


class CoinbaseAdvancedAdapter(Adapter):
    """Coinbase Advanced Trade market data (sheet:
    ``shared/exchanges/coinbase-advanced-trade.md``). See the module docstring.

    No credentials are needed for ``level2``, ``market_trades``, ``ticker``
    and ``candles`` (the docs recommend a CDP JWT for reliability; not
    supported here). ``Channel.CANDLES`` gives five-minute candles here.
    """

    venue: ClassVar[str] = "coinbase-advanced"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.TRADES, Channel.QUOTES, Channel.BOOK, Channel.CANDLES})
    default_url: ClassVar[str] = "wss://advanced-trade-ws.coinbase.com"
    default_rest_url: ClassVar[str] = "https://api.coinbase.com"
    # Sheet "Limits": 8 new connections/s per IP; 8 unauthenticated messages/s per IP.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=100,
        topics_per_message=100,
        messages_per_second=8.0,
        connections_per_window=8,
        connection_window=1.0,
    )
    # The heartbeats channel sends one message per second.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ws_ping_interval=20.0, silence_timeout=30.0, stale_after=30.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.stats = CoinbaseStats()
        self._native: dict[str, str] = {}
        self._has_trades = False
        self._heartbeats_sent = False
        self._next_seq: int | None = None
        self._handlers: dict[str, Callable[[dict[str, Any], int], Sequence[Event | Diff | RawSnapshot]]] = {
            "l2_data": self._l2,
            "market_trades": self._trades,
            "ticker": self._ticker,
            "ticker_batch": self._ticker,
            "heartbeats": _ignore,
            "subscriptions": _ignore,
            "status": _ignore,
            "candles": self._candles,
        }

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        return _spot_native(self.venue, symbol)

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/api/v3/brokerage/market/products`` (the public product
        list of Coinbase's Advanced Trade REST docs; not in the sheet)."""
        return HttpRequest(self.rest_url + "/api/v3/brokerage/market/products")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``{"products": [{"product_id", "base_currency_id",
        "quote_currency_id", "price_increment", "base_increment", "status",
        "is_disabled"}]}`` → online spot products."""
        msg = json_body(self.venue, body)
        if msg.__class__ is not dict or msg.get("products").__class__ is not list:
            raise MalformedMessage("coinbase-advanced: products body has no product list", body)
        rows = [r for r in msg["products"] if r.__class__ is not dict or r.get("product_type", "SPOT") == "SPOT"]
        return _products(
            self.venue,
            rows,
            ("product_id", "base_currency_id", "quote_currency_id", "price_increment", "base_increment"),
            body,
        )

    def _topics(self, subscriptions: Sequence[Subscription], *, register: bool) -> dict[str, list[str]]:
        topics: dict[str, list[str]] = {}
        for sub in subscriptions:
            self.check(sub)
            native = self.to_native(sub.symbol, sub.channel)
            products = topics.setdefault(_ADV_CHANNELS[sub.channel], [])
            if native not in products:
                products.append(native)
            if register:
                self._native[native] = sub.symbol
                if sub.channel is Channel.TRADES:
                    self._has_trades = True
        return topics

    def _messages(self, kind: str, topics: dict[str, list[str]]) -> list[Outgoing]:
        per_message = self.limits.topics_per_message
        out: list[Outgoing] = []
        for name, products in topics.items():
            for start in range(0, len(products), per_message):
                out.append(dumps({"type": kind, "product_ids": products[start : start + per_message], "channel": name}))
        return out

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """One message per channel; ``heartbeats`` once per connection."""
        out = self._messages("subscribe", self._topics(subscriptions, register=True))
        if out and not self._heartbeats_sent:
            self._heartbeats_sent = True
            out.append(dumps({"type": "subscribe", "channel": "heartbeats"}))
        return out

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._messages("unsubscribe", self._topics(subscriptions, register=False))

    def reset(self) -> None:
        """Forget the connection sequence (a new connection starts its own)."""
        self._next_seq = None
        self._heartbeats_sent = False

    def book_rule(self, symbol: str) -> SyncRule:
        """``level2``: stream snapshot, no per-book sequence, no checksum; the
        connection-wide ``sequence_num`` is checked by the adapter."""
        # the connection-wide sequence_num is checked by the adapter (a Gap for
        # every book of the connection on a hole): sequence-checked
        return SyncRule(SnapshotSource.STREAM, Continuity.NONE, check_crossed=True, integrity=Integrity.SEQUENCE)

    # --- frames ------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff | RawSnapshot]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if type(msg) is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        channel = msg.get("channel")
        try:
            handler = self._handlers.get(channel) if type(channel) is str else None
            if handler is None:
                if msg.get("type") == "error":
                    text = f"coinbase-advanced error: {msg.get('message')!r}"
                    if "subscri" in str(msg.get("message", "")).lower():
                        raise SubscriptionRejected(text)
                    raise RemoteError(text)
                raise unknown_message("channel", channel, frame)
            seq = msg["sequence_num"]
            if type(seq) is not int:
                raise TypeError("sequence_num is not an integer")
            expected = self._next_seq
            gaps: list[Event | Diff | RawSnapshot] | None = None
            if expected is not None and seq != expected:
                if seq < expected:
                    self.stats.duplicates += 1
                    return []
                detail = f"connection sequence_num {seq} after {expected - 1}: {seq - expected} message(s) lost"
                gaps = [Gap(self.venue, "", Channel.BOOK, GapReason.SEQUENCE, expected, seq, recv_ns, detail)]
                if self._has_trades:
                    gaps.append(Gap(self.venue, "", Channel.TRADES, GapReason.SEQUENCE, expected, seq, recv_ns, detail))
            events = handler(msg, recv_ns)
            # Advanced only after the message parsed: a malformed message counts
            # as lost, and the next one reports the gap.
            self._next_seq = seq + 1
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise _wrap(frame, exc, str(channel)) from exc
        if gaps is not None:
            return [*gaps, *events]
        return events

    def _symbol(self, product: str) -> str:
        symbol = self._native.get(product)
        if symbol is None:
            if type(product) is not str:
                raise TypeError("product_id is not a string")
            return product
        return symbol

    def _l2(self, msg: dict[str, Any], recv_ns: int) -> list[Event | Diff | RawSnapshot]:
        ts = iso_to_ns(msg["timestamp"])
        seq = msg["sequence_num"]
        out: list[Event | Diff | RawSnapshot] = []
        for event in msg["events"]:
            updates = event["updates"]
            symbol = self._symbol(event["product_id"])
            kind = event["type"]
            if kind == "update":
                bids, asks = _split_updates(updates)
                out.append(Diff(symbol, bids, asks, ts, seq))
            elif kind != "snapshot":
                raise ValueError(f"unknown l2_data event type {kind!r}")
            elif self.reads_rows_later(updates):
                # a live Feed: a deep book is split into sides by the book's build steps too
                unread_bids, unread_asks = UnreadRows.split(updates, _split_updates)
                out.append(RawSnapshot(symbol, unread_bids, unread_asks, ts, seq))
            else:  # the full book: converted and sorted by the book's build, in steps
                bids, asks = _split_updates(updates)
                out.append(RawSnapshot(symbol, bids, asks, ts, seq))
        return out

    def _trades(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        out: list[Event] = []
        for event in msg["events"]:
            kind = event["type"]
            trades = event["trades"]
            if kind == "snapshot":
                self.stats.history_dropped += 1
                continue
            if kind != "update":
                raise ValueError(f"unknown market_trades event type {kind!r}")
            for t in trades:
                trade_id = t["trade_id"]
                out.append(
                    Trade(
                        self.venue,
                        self._symbol(t["product_id"]),
                        float(t["price"]),
                        float(t["size"]),
                        _ADV_TAKER[t["side"]],
                        trade_id if type(trade_id) is str else str(int(trade_id)),
                        iso_to_ns(t["time"]),
                        recv_ns,
                    )
                )
        return out

    def _ticker(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        ts = iso_to_ns(msg["timestamp"])
        seq = msg["sequence_num"]
        out: list[Event] = []
        for event in msg["events"]:
            for t in event["tickers"]:
                if "best_bid" not in t:
                    continue  # ticker_batch carries no BBO
                out.append(
                    Quote(
                        self.venue,
                        self._symbol(t["product_id"]),
                        _opt_float(t["best_bid"]),
                        _opt_float(t.get("best_bid_quantity")),
                        _opt_float(t["best_ask"]),
                        _opt_float(t.get("best_ask_quantity")),
                        ts,
                        recv_ns,
                        seq,
                    )
                )
        return out

    def _candles(self, msg: dict[str, Any], recv_ns: int) -> list[Event]:
        ts = iso_to_ns(msg["timestamp"])
        out: list[Event] = []
        for event in msg["events"]:
            rows = sorted(event["candles"], key=lambda row: int(row["start"]))
            newest = int(rows[-1]["start"]) if rows else 0
            for row in rows:
                start = int(row["start"])
                prices = row["open"], row["high"], row["low"], row["close"]
                symbol = self._symbol(row["product_id"])
                final = start < newest  # a later bucket of the same event exists
                out.append(
                    build_candle(
                        self.venue, symbol, start * 1_000_000_000, *prices, row["volume"], final, ts, recv_ns,
                        FIVE_MINUTES,
                    )
                )  # fmt: skip
        return out
