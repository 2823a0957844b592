"""Kraken spot adapters: WebSocket v2 (``"kraken"``) and v1 (``"kraken-v1"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/kraken-spot.md``
(which cites docs.kraken.com ``spot-websocket``, ``book-checksum-v1``,
``book-checksum-v2`` and cryptofeed's v1 implementation). Each rule is restated
where it is enforced. The two protocol versions share the book rule and the
symbol conventions:

* **Symbols.** Unified ``BTC-USD`` is ``BTC/USD`` on v2 and ``XBT/USD`` on v1
  (v1 also spells Dogecoin ``XDG``). Only spot pairs exist here.
* **Book rule.** The WebSocket sends the snapshot on subscribe (no REST), there
  are no sequence numbers (``Continuity.NONE``), and a CRC32 checksum of the top
  10 levels per side guards every update (v2 also guards the snapshot). After
  each message the book is truncated to the *subscribed* depth, because Kraken
  sends no delete for levels pushed out of range; the rule's ``depth`` is that
  subscribed depth. The checksum is computed over the venue's own text of each
  number (trailing zeros matter), so books keep the text (``keep_text``).
  On a mismatch wsmux unsubscribes and subscribes again for a new snapshot.
* **Depths.** Kraken offers 10, 25, 100, 500 and 1000 levels; a requested depth
  is rounded up to the next of these, and ``depth=None`` ("full book") asks for
  1000, the deepest Kraken serves.

**v2 number text.** v2 sends prices and quantities as JSON *numbers* written
with the pair's full precision (``"qty":0.10000000``). A float loses the
trailing zeros, and rendering a float with the pair's precision is only exact
up to ~15 significant digits (a 17-digit quantity such as
``123456789.12345678`` would render wrongly). The v2 adapter therefore keeps
the exact text: it scans the frame once for the ``"price"``/``"qty"`` number
tokens (one C-level regex pass) and pairs them, in document order, with the
levels decoded by orjson, checking that each text parses to the decoded value.
This is the same text that ``json.loads(frame, parse_float=Decimal)`` (the
sheet's and Kraken's recommendation) would keep, without the Decimal cost, and
it needs no precision table or ``instrument`` subscription.
"""

from __future__ import annotations

import calendar
import math
import re
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, OrderBook, SnapshotSource, SyncRule
from wsmux.book.checksum import KRAKEN_DEPTH, kraken_strip
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._candles import build_candle
from wsmux.exchanges._reference import BODY_ERRORS, json_body, step, step_of_decimals, unified_or_none
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Channel,
    Event,
    Instrument,
    Quote,
    Side,
    TextLevels,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "DEPTHS",
    "KrakenAdapter",
    "KrakenV1Adapter",
    "book_depth",
    "kraken_book_checksum",
]

DEPTHS = (10, 25, 100, 500, 1000)
"""Book depths Kraken serves (kraken-spot.md, "Endpoints": 10, 25, 100, 500, 1000)."""

_FULL_DEPTH = 1000
_TOPICS_PER_MESSAGE = 20
_NS = 1_000_000_000
_SIDES = {"b": Side.BUY, "s": Side.SELL, "buy": Side.BUY, "sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
# v1 spells two assets its own way (kraken-spot.md, "Endpoints": XBT/USD, XDG/USD).
_V1_ASSET = {"BTC": "XBT", "DOGE": "XDG"}
_V1_UNIFIED = {v: k for k, v in _V1_ASSET.items()}


def book_depth(depth: int | None) -> int:
    """The Kraken depth to subscribe for a requested ``depth``.

    Rule (kraken-spot.md, "Endpoints": book depths 10, 25, 100, 500, 1000): round
    up to the next depth Kraken serves; ``None`` (full book) is 1000.

    Raises:
        ConfigError: ``depth`` is larger than 1000, the deepest Kraken book.
    """
    if depth is None:
        return _FULL_DEPTH
    for venue_depth in DEPTHS:
        if depth <= venue_depth:
            return venue_depth
    raise ConfigError(f"kraken serves at most {_FULL_DEPTH} book levels per side, not {depth}")


_ESCAPED_ASCII = re.compile(r"\\u00([2-7][0-9a-fA-F])")
"""A ``\\u`` escape of a printable ASCII character."""


def _unescape_ascii(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return match.group(0) if char in '"\\' else char  # quotes and backslashes stay escaped


def kraken_book_checksum(book: OrderBook) -> int:
    """Kraken's checksum of a live book: the ``SyncRule.checksum`` of both adapters.

    Rule (kraken-spot.md, "Checksum algorithm"): CRC32 over the top 10 asks then
    the top 10 bids, each price and size with ``.`` and leading zeros removed;
    the algorithm itself is :func:`wsmux.book.checksum.kraken_checksum`. The
    book must keep the venue's text (``keep_text=True``). O(1) in book depth.

    Each level's stripped text is computed once and remembered (a level's text
    is the same object for as long as the level is unchanged), so a checksum
    costs 20 dict look-ups and one CRC32 instead of 40 string rewrites.
    """
    cache = _STRIPPED
    if len(cache) > _STRIPPED_MAX:
        cache.clear()
    levels = book.text_depth(BookSide.ASK, KRAKEN_DEPTH)
    levels += book.text_depth(BookSide.BID, KRAKEN_DEPTH)
    pieces: list[str | None] = list(map(cache.get, levels))  # the look-ups in C: no Python loop
    if not all(pieces):  # a level not seen before (a stripped piece is never empty)
        for i, piece in enumerate(pieces):
            if not piece:
                level = levels[i]
                pieces[i] = cache[level] = kraken_strip(level[0]) + kraken_strip(level[1])
    return zlib.crc32("".join(pieces).encode())  # type: ignore[arg-type]


_STRIPPED: dict[tuple[str, str], str] = {}
"""``(price text, size text)`` → both stripped and joined (see :func:`kraken_book_checksum`)."""
_STRIPPED_MAX = 200_000


def _secs_ns(text: str) -> int:
    """v1 timestamp text ``"1618678145.920470"`` (seconds) to integer ns, exactly."""
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad timestamp {text!r}")
    return int(whole) * _NS + (int(frac[:9].ljust(9, "0")) if frac else 0)


class _Rfc3339:
    """RFC 3339 ``2023-09-25T07:49:37.708706Z`` to integer ns, exactly.

    The date-and-minute prefix is converted once and cached (a few hundred
    entries at most per day of data), so the hot path is two ``int()`` calls.
    """

    __slots__ = ("_minutes",)

    def __init__(self) -> None:
        self._minutes: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if len(text) < 20 or text[-1] != "Z" or text[16] != ":" or text[10] != "T":
            return self._slow(text)
        base = self._minutes.get(text[:16])
        if base is None:
            base = self._minute(text[:16])
        sec = text[17:19]
        if not sec.isdigit():
            raise ValueError(f"bad timestamp {text!r}")
        ns = base + int(sec) * _NS
        if len(text) > 20:
            if text[19] != ".":
                raise ValueError(f"bad timestamp {text!r}")
            frac = text[20:-1]
            if not frac.isdigit():
                raise ValueError(f"bad timestamp {text!r}")
            ns += int(frac[:9].ljust(9, "0"))
        return ns

    def _minute(self, prefix: str) -> int:
        # "YYYY-MM-DDTHH:MM"
        if prefix[4] != "-" or prefix[7] != "-" or prefix[13] != ":":
            raise ValueError(f"bad timestamp {prefix!r}")
        fields = (prefix[0:4], prefix[5:7], prefix[8:10], prefix[11:13], prefix[14:16])
        if not all(f.isdigit() for f in fields):
            raise ValueError(f"bad timestamp {prefix!r}")
        year, month, day, hour, minute = (int(f) for f in fields)
        datetime(year, month, day, hour, minute)  # validates the calendar date
        base = calendar.timegm((year, month, day, hour, minute, 0)) * _NS
        if len(self._minutes) >= 4096:
            self._minutes.clear()
        self._minutes[prefix] = base
        return base

    @staticmethod
    def _slow(text: str) -> int:
        # Other RFC 3339 spellings (offsets, lower-case separators); microsecond precision.
        stamp = datetime.fromisoformat(text)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return calendar.timegm(stamp.utctimetuple()) * _NS + stamp.microsecond * 1000


def _wrap(frame: bytes | str, exc: Exception, what: str) -> MalformedMessage:
    return MalformedMessage(f"bad kraken {what} message ({type(exc).__name__}: {exc})", frame)


class _KrakenBase(Adapter):
    """What the v1 and v2 adapters share: channels, symbols, depths, the book rule."""

    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.TRADES, Channel.QUOTES, Channel.BOOK})
    default_rest_url: ClassVar[str] = "https://api.kraken.com"
    # GET /0/public/Time -> {"error": [], "result": {"unixtime": <s>, "rfc1123": ...}}
    # (the venue's REST docs, "Get Server Time"; the sheet is silent on it): whole
    # seconds, so a REST offset is only good to +-0.5 s plus RTT/2
    server_time_path: ClassVar[str | None] = "/0/public/Time"
    server_time_field: ClassVar[tuple[str | int, ...]] = ("result", "unixtime")
    server_time_unit_ns: ClassVar[int] = 1_000_000_000
    limits: ClassVar[Limits] = Limits(
        # kraken-spot.md, "Limits / keep-alive": the message rate is dynamic (not
        # documented as a number); cryptofeed sends <= 20 pairs per subscribe and
        # paces requests. Connection attempts are limited by Cloudflare
        # (UNCONFIRMED number): keep reconnects slow.
        streams_per_connection=200,
        topics_per_message=_TOPICS_PER_MESSAGE,
        messages_per_second=5.0,
        connections_per_window=15,
        connection_window=60.0,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._native: dict[str, str] = {}  # native pair -> unified symbol
        self._depths: dict[str, int] = {}  # unified symbol -> subscribed venue depth

    # --- symbols ----------------------------------------------------------------

    def _pair(self, symbol: str) -> tuple[str, str]:
        base, quote, kind = parse_symbol(symbol)
        if kind is not None:
            raise UnknownSymbol(f"{self.venue} is a spot venue; {symbol!r} is not a spot pair")
        return base, quote

    def _unified(self, native: str) -> str:
        """The unified symbol of a native pair (learned at subscribe, else derived)."""
        symbol = self._native.get(native)
        if symbol is None:
            symbol = self._derive(native)
            self._native[native] = symbol
        return symbol

    def _derive(self, native: str) -> str:
        base, sep, quote = native.partition("/")
        if not sep or not base or not quote:
            raise ValueError(f"bad kraken pair {native!r}")
        return f"{base}-{quote}"

    # --- books --------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """Kraken's book rule (kraken-spot.md, "v1 protocol", "v2 protocol",
        "Checksum algorithm"): stream snapshot, no sequence numbers, CRC32 of the
        top 10 levels verified after every message, book truncated to the
        subscribed depth (the depth last subscribed for ``symbol``, else 1000)."""
        return SyncRule(
            snapshot=SnapshotSource.STREAM,
            continuity=Continuity.NONE,
            checksum=kraken_book_checksum,
            checksum_depth=KRAKEN_DEPTH,
            depth=self._depths.get(symbol, _FULL_DEPTH),
            keep_text=True,
        )

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """The book rule for ``subscription``: its depth is the Kraken depth the
        subscription asks for (see :func:`book_depth`)."""
        self._depths[subscription.symbol] = book_depth(subscription.depth)
        return self.book_rule(subscription.symbol)

    def check(self, subscription: Subscription) -> None:
        super().check(subscription)
        if subscription.channel is Channel.BOOK:
            book_depth(subscription.depth)

    # --- reference data -----------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """``GET <rest>/0/public/AssetPairs`` (kraken-spot.md: the v1 names
        are its ``wsname``)."""
        return HttpRequest(self.rest_url + "/0/public/AssetPairs")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``{"error": [], "result": {"XXBTZUSD": {"wsname": "XBT/USD",
        "tick_size", "pair_decimals", "lot_decimals", "status"}}}`` → online
        pairs, named from ``wsname`` (``XBT`` → ``BTC``, ``XDG`` → ``DOGE``);
        ``native`` is this adapter's spelling (v2 ``BTC/USD``, v1 ``XBT/USD``).
        The tick is ``tick_size``, else ``10^-pair_decimals``; the lot
        ``10^-lot_decimals``. Dark-pool pairs (``.d``) have no ``wsname``.

        Raises:
            RemoteError: Kraken's ``error`` list is not empty.
            MalformedMessage: the body is not an asset-pair list.
        """
        msg = json_body(self.venue, body)
        out: list[Instrument] = []
        try:
            if msg["error"]:
                raise RemoteError(f"kraken AssetPairs error: {', '.join(map(str, msg['error']))}")
            for row in msg["result"].values():
                wsname = row.get("wsname")
                if not wsname or row.get("status", "online") not in ("online", "post_only", "limit_only"):
                    continue
                base, _, quote = wsname.partition("/")
                symbol = unified_or_none(f"{_V1_UNIFIED.get(base, base)}-{_V1_UNIFIED.get(quote, quote)}")
                if symbol is None:
                    continue
                tick = step(row.get("tick_size")) or step_of_decimals(row.get("pair_decimals"))
                lot = step_of_decimals(row.get("lot_decimals"))
                out.append(Instrument(self.venue, symbol, self.to_native(symbol), "spot", tick, lot))
        except RemoteError:
            raise
        except BODY_ERRORS as exc:
            raise MalformedMessage(f"kraken: bad AssetPairs body: {exc!r}", body) from exc
        return out

    # --- subscriptions ------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _requests(self, verb: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        # Group by (channel, depth), at most 20 pairs per message (kraken-spot.md,
        # "Limits / keep-alive").
        groups: dict[tuple[Channel, int | None], list[str]] = {}
        for sub in subscriptions:
            if sub.channel not in self.channels:
                raise UnknownChannel(f"{self.venue} does not offer {sub.channel.value!r}")
            native = self.to_native(sub.symbol, sub.channel)
            self._native[native] = sub.symbol
            depth = None
            if sub.channel is Channel.BOOK:
                depth = book_depth(sub.depth)
                self._depths[sub.symbol] = depth
            pairs = groups.setdefault((sub.channel, depth), [])
            if native not in pairs:
                pairs.append(native)
        out: list[Outgoing] = []
        for (channel, depth), pairs in groups.items():
            for i in range(0, len(pairs), _TOPICS_PER_MESSAGE):
                out.append(self._request(verb, channel, depth, pairs[i : i + _TOPICS_PER_MESSAGE]))
        return out

    def _request(self, verb: str, channel: Channel, depth: int | None, pairs: list[str]) -> str:
        raise NotImplementedError


class KrakenAdapter(_KrakenBase):
    """Kraken spot, WebSocket v2 (``wss://ws.kraken.com/v2``), venue id ``"kraken"``.

    Source: ``shared/exchanges/kraken-spot.md`` ("v2 protocol"). Messages are
    JSON objects: data on ``{"channel": ..., "type": "snapshot"|"update",
    "data": [...]}``, requests and their acks on ``{"method": ...}``.

    * ``book`` → :class:`BookSnapshot` / :class:`BookUpdate` with the ``checksum``
      (present on snapshots and updates) and the exact text of every level
      (see the module docstring); ``timestamp`` (RFC 3339) → ``ts``.
    * ``trade`` → :class:`Trade` (``trade_id`` kept). Subscribed without the
      snapshot of recent trades, which would repeat old fills after a reconnect.
    * ``ticker`` subscribed with ``event_trigger: "bbo"`` (an update on every
      best-bid/offer change) → :class:`Quote`.
    * ``heartbeat`` and ``status`` → nothing; ``pong`` and successful acks →
      nothing; ``"success": false`` on subscribe/unsubscribe →
      :class:`~wsmux.errors.SubscriptionRejected`, on other methods →
      :class:`~wsmux.errors.RemoteError`.

    Keep-alive (sheet, "Limits / keep-alive"): the server sends a heartbeat about
    once a second when idle; the client sends ``{"method":"ping"}`` (answered by
    ``pong``) well inside the ~60 s idle window.
    """

    venue: ClassVar[str] = "kraken"
    default_url: ClassVar[str] = "wss://ws.kraken.com/v2"
    backup_urls: ClassVar[tuple[str, ...]] = ("wss://beta-ws.kraken.com/v2",)
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"method":"ping"}',
        ping_interval=30.0,
        ws_ping_interval=None,
        silence_timeout=15.0,
        stale_after=30.0,
    )

    # One regex pass over a book frame finds every price and qty number token.
    _NUMBER = re.compile(r'"(price|qty)"\s*:\s*"?(-?[0-9][0-9.eE+-]*)')

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._req_id = 0
        self._ts = _Rfc3339()
        self._handlers: dict[str, Callable[[dict[str, Any], bytes | str, int], list[Event]]] = {
            "book": self._book,
            "trade": self._trade,
            "ticker": self._ticker,
            "heartbeat": _nothing,
            "status": _nothing,
        }

    def reset(self) -> None:
        self._req_id = 0

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USD`` → ``BTC/USD`` (kraken-spot.md: v2 uses ``BTC/USD``, ``DOGE/USD``)."""
        base, quote = self._pair(symbol)
        return f"{base}/{quote}"

    def _request(self, verb: str, channel: Channel, depth: int | None, pairs: list[str]) -> str:
        # kraken-spot.md, "v2 protocol": {"method":"subscribe","params":{"channel":
        # "book","symbol":[...],"depth":10,"snapshot":true},"req_id":1}
        self._req_id += 1
        params: dict[str, object]
        if channel is Channel.BOOK:
            params = {"channel": "book", "symbol": pairs, "depth": depth}
            if verb == "subscribe":
                params["snapshot"] = True
        elif channel is Channel.TRADES:
            params = {"channel": "trade", "symbol": pairs}
            if verb == "subscribe":
                params["snapshot"] = False
        else:
            params = {"channel": "ticker", "symbol": pairs}
            if verb == "subscribe":
                params["event_trigger"] = "bbo"
                params["snapshot"] = True
        return dumps({"method": verb, "params": params, "req_id": self._req_id})

    # --- parsing ------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> list[Event]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if type(msg) is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        channel = msg.get("channel")
        try:
            if channel is not None:
                handler = self._handlers.get(channel) if type(channel) is str else None
                if handler is None:
                    raise unknown_message("channel", channel, frame)
                return handler(msg, frame, recv_ns)
            if "method" in msg:
                return self._method(msg, frame)
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise _wrap(frame, exc, str(channel or msg.get("method"))) from exc
        if "error" in msg:
            raise RemoteError(f"kraken error: {msg['error']}")
        raise MalformedMessage("unknown message type", frame)

    def _method(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        method = msg["method"]
        if msg.get("success", True) is not False:
            if method in ("subscribe", "unsubscribe", "pong", "ping"):
                return []
            raise unknown_message("method", method, frame)
        error = msg.get("error", "no error text")
        if method in ("subscribe", "unsubscribe"):
            target = msg.get("symbol") or (msg.get("result") or {}).get("symbol") or "?"
            raise SubscriptionRejected(f"kraken refused to {method} {target}: {error}")
        raise RemoteError(f"kraken {method} failed: {error}")

    def _book(self, msg: dict[str, Any], frame: bytes | str, recv_ns: int) -> list[Event]:
        kind = msg["type"]
        if kind == "update":
            snapshot = False
        elif kind == "snapshot":
            snapshot = True
        else:
            raise MalformedMessage(f"unknown message type: book type {kind!r}", frame)
        text = frame if isinstance(frame, str) else frame.decode()
        if "\\u" in text:  # the same JSON with \u escapes (e.g. in key names): scan it unescaped
            text = _ESCAPED_ASCII.sub(_unescape_ascii, text)
        tokens: list[tuple[str, str]] = self._NUMBER.findall(text)
        pos = 0
        out: list[Event] = []
        venue = self.venue
        for entry in msg["data"]:
            symbol = self._unified(entry["symbol"])
            bids: tuple[tuple[float, float], ...] = ()
            asks: tuple[tuple[float, float], ...] = ()
            bids_text: TextLevels = ()
            asks_text: TextLevels = ()
            # Tokens come in document order: walk the entry's keys in the same order.
            for key in entry:
                if key == "bids":
                    bids, bids_text, pos = _levels(entry["bids"], tokens, pos)
                elif key == "asks":
                    asks, asks_text, pos = _levels(entry["asks"], tokens, pos)
            checksum = entry.get("checksum")
            if checksum is not None and type(checksum) is not int:
                raise ValueError(f"checksum {checksum!r} is not an integer")
            stamp = entry.get("timestamp")
            ts = self._ts(stamp) if stamp is not None else None
            if snapshot:
                out.append(BookSnapshot(venue, symbol, bids, asks, ts, recv_ns, None, checksum, bids_text, asks_text))
            else:
                out.append(
                    BookUpdate(
                        venue,
                        symbol,
                        bids,
                        asks,
                        ts,
                        recv_ns,
                        checksum=checksum,
                        bids_text=bids_text,
                        asks_text=asks_text,
                    )
                )
        if pos != len(tokens):
            raise ValueError(f"{len(tokens) - pos} price/qty numbers outside any level")
        return out

    def _trade(self, msg: dict[str, Any], frame: bytes | str, recv_ns: int) -> list[Event]:
        kind = msg["type"]
        if kind == "snapshot":
            return []  # recent history on subscribe, not live fills (not requested)
        if kind != "update":
            raise MalformedMessage(f"unknown message type: trade type {kind!r}", frame)
        venue = self.venue
        ts = self._ts
        out: list[Event] = []
        for t in msg["data"]:
            trade_id = t.get("trade_id")
            out.append(
                Trade(
                    venue,
                    self._unified(t["symbol"]),
                    _number(t["price"]),
                    _number(t["qty"]),
                    _SIDES.get(t.get("side")),
                    str(trade_id) if trade_id is not None else None,
                    ts(t["timestamp"]),
                    recv_ns,
                )
            )
        return out

    def _ticker(self, msg: dict[str, Any], frame: bytes | str, recv_ns: int) -> list[Event]:
        kind = msg["type"]
        if kind not in ("snapshot", "update"):
            raise MalformedMessage(f"unknown message type: ticker type {kind!r}", frame)
        out: list[Event] = []
        for t in msg["data"]:
            stamp = t.get("timestamp")
            out.append(
                Quote(
                    self.venue,
                    self._unified(t["symbol"]),
                    _number(t["bid"]),
                    _number(t["bid_qty"]),
                    _number(t["ask"]),
                    _number(t["ask_qty"]),
                    self._ts(stamp) if stamp is not None else None,
                    recv_ns,
                )
            )
        return out


def _nothing(msg: dict[str, Any], frame: bytes | str, recv_ns: int) -> list[Event]:
    return []


def _number(value: object) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")


def _levels(
    levels: list[dict[str, Any]], tokens: list[tuple[str, str]], pos: int
) -> tuple[tuple[tuple[float, float], ...], TextLevels, int]:
    """Pair decoded v2 levels with their number texts (``tokens`` from ``pos``).

    Each level consumes its two tokens (price and qty, in either order); the
    texts must parse to exactly the decoded numbers, so a misaligned scan can
    never put a wrong text into a book. O(k).
    """
    floats: list[tuple[float, float]] = []
    texts: list[tuple[str, str]] = []
    for level in levels:
        key, first = tokens[pos]
        other, second = tokens[pos + 1]
        pos += 2
        if key == "price" and other == "qty":
            ptext, qtext = first, second
        elif key == "qty" and other == "price":
            ptext, qtext = second, first
        else:
            raise ValueError("level without one price and one qty")
        price = float(ptext)
        qty = float(qtext)
        if price != level["price"] or qty != level["qty"]:
            raise ValueError(f"level text {ptext}/{qtext} does not match {level!r}")
        floats.append((price, qty))
        texts.append((ptext, qtext))
    return tuple(floats), tuple(texts), pos


class KrakenV1Adapter(_KrakenBase):
    """Kraken spot, WebSocket v1 (``wss://ws.kraken.com``), venue id ``"kraken-v1"``.

    Source: ``shared/exchanges/kraken-spot.md`` ("v1 protocol"). v1 is frozen but
    maintained; its recordings are what the checksum replay test uses. Data
    frames are arrays ``[channelID, payload..., channelName, pair]``; the adapter
    reads the channel name and pair from the frame itself, so it needs no
    channel-id table. Numbers are strings, kept verbatim for the checksum.

    * ``book-N``: a payload with ``as``/``bs`` is the snapshot (no checksum); an
      update has one or two dicts with ``a`` and/or ``b`` entries
      ``[price, volume, timestamp(, "r")]`` (``"r"``: republished because of
      depth truncation — applied like any level), volume ``0`` deletes, and the
      **last** dict holds ``"c"``, the checksum as a decimal string. ``ts`` is the
      newest level timestamp of the message.
    * ``trade``: ``[[price, volume, time, side b/s, orderType, misc], ...]`` →
      one :class:`Trade` each (v1 has no trade id).
    * ``spread`` ``[bid, ask, time, bidVolume, askVolume]`` → :class:`Quote`
      (what :attr:`Channel.QUOTES` subscribes); ``ticker`` (``b``/``a`` =
      ``[price, wholeLotVolume, lotVolume]``) → :class:`Quote` without a time.
    * ``ohlc-1`` (subscribed as ``{"name":"ohlc","interval":1}``; the sheet
      names the channel, the layout is Kraken's v1 "ohlc" page) ``[time,
      etime, open, high, low, close, vwap, volume, count]`` →
      :class:`~wsmux.Candle`. ``time`` is the candle's last update
      (``Candle.ts``), ``etime`` its end, so its start is the minute before
      ``etime``'s minute boundary. v1 never says a candle is final:
      ``closed`` is always False (a later start means the earlier candle
      ended). Other intervals (``ohlc-5``) are not handled.
    * ``heartbeat``, ``pong``, ``systemStatus`` and ``subscriptionStatus``
      (subscribed/unsubscribed) → nothing; ``subscriptionStatus`` with
      ``status: "error"`` → :class:`~wsmux.errors.SubscriptionRejected`;
      ``{"event":"error"}`` → :class:`~wsmux.errors.RemoteError`.

    No sequence numbers exist in v1: the checksum is the only integrity check.
    Keep-alive: server heartbeat about once a second when idle; the client pings
    with ``{"event":"ping"}`` (answered by ``pong``).
    """

    venue: ClassVar[str] = "kraken-v1"
    default_url: ClassVar[str] = "wss://ws.kraken.com"
    backup_urls: ClassVar[tuple[str, ...]] = ("wss://beta-ws.kraken.com",)
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"event":"ping"}',
        ping_interval=30.0,
        ws_ping_interval=None,
        silence_timeout=15.0,
        stale_after=30.0,
    )

    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.TRADES, Channel.QUOTES, Channel.BOOK, Channel.CANDLES})
    _NAMES: ClassVar[dict[Channel, str]] = {
        Channel.BOOK: "book",
        Channel.TRADES: "trade",
        Channel.QUOTES: "spread",
        Channel.CANDLES: "ohlc",
    }

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USD`` → ``XBT/USD``, ``DOGE-EUR`` → ``XDG/EUR`` (kraken-spot.md:
        v1 uses the REST ``AssetPairs`` ``wsname``, ``XBT/USD``, ``XDG/USD``)."""
        base, quote = self._pair(symbol)
        return f"{_V1_ASSET.get(base, base)}/{_V1_ASSET.get(quote, quote)}"

    def _derive(self, native: str) -> str:
        base, sep, quote = native.partition("/")
        if not sep or not base or not quote:
            raise ValueError(f"bad kraken pair {native!r}")
        return f"{_V1_UNIFIED.get(base, base)}-{_V1_UNIFIED.get(quote, quote)}"

    def _request(self, verb: str, channel: Channel, depth: int | None, pairs: list[str]) -> str:
        # kraken-spot.md, "v1 protocol": {"event":"subscribe","pair":[...],
        # "subscription":{"name":"book","depth":1000}}
        subscription: dict[str, object] = {"name": self._NAMES[channel]}
        if depth is not None:
            subscription["depth"] = depth
        if channel is Channel.CANDLES:
            subscription["interval"] = 1  # minutes
        return dumps({"event": verb, "pair": pairs, "subscription": subscription})

    # --- parsing ------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        cls = type(msg)
        try:
            if cls is list:
                name = msg[-2]
                if type(name) is not str:
                    raise MalformedMessage("unknown message type: no channel name", frame)
                if name[:5] == "book-":
                    return self._book(msg, recv_ns)
                if name == "trade":
                    return self._trade(msg, recv_ns)
                if name == "spread":
                    return self._spread(msg, recv_ns)
                if name == "ticker":
                    return self._ticker(msg, recv_ns)
                if name == "ohlc-1":
                    return self._ohlc(msg, recv_ns)
                raise unknown_message("channel", name, frame)
            if cls is dict:
                return self._event(msg, frame)
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise _wrap(frame, exc, "v1") from exc
        raise MalformedMessage("unknown message type", frame)

    def _event(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        event = msg.get("event")
        if event in ("heartbeat", "pong", "systemStatus"):
            return []
        if event == "subscriptionStatus":
            status = msg["status"]
            if status == "error":
                sub = msg.get("subscription") or {}
                raise SubscriptionRejected(
                    f"kraken refused {sub.get('name', '?')} {msg.get('pair', '?')}: "
                    f"{msg.get('errorMessage', 'no error text')}"
                )
            if status in ("subscribed", "unsubscribed"):
                return []
            raise MalformedMessage(f"unknown message type: subscription status {status!r}", frame)
        if event == "error":
            raise RemoteError(f"kraken error: {msg.get('errorMessage', 'no error text')}")
        raise unknown_message("event", event, frame)

    def _book(self, msg: list[Any], recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(msg[-1])
        payloads = msg[1:-2]
        first = payloads[0]
        if "as" in first or "bs" in first:
            bids, bids_text, bid_ts = _v1_levels(first.get("bs", ()))
            asks, asks_text, ask_ts = _v1_levels(first.get("as", ()))
            stamp = bid_ts if bid_ts[0] >= ask_ts[0] else ask_ts
            return [
                BookSnapshot(
                    self.venue,
                    symbol,
                    bids,
                    asks,
                    _secs_ns(stamp[1]) if stamp[1] else None,
                    recv_ns,
                    None,
                    None,
                    bids_text,
                    asks_text,
                )
            ]
        # an update: the decoded level lists go to the book sync as they are
        # (it converts, checks and applies them in one pass, keeping their text)
        raw_bids: list[Any] = []
        raw_asks: list[Any] = []
        checksum: int | None = None
        for payload in payloads:
            for key, value in payload.items():
                if key == "a":
                    if type(value) is not list:
                        raise TypeError("'a' is not a list")
                    raw_asks += value
                elif key == "b":
                    if type(value) is not list:
                        raise TypeError("'b' is not a list")
                    raw_bids += value
                elif key == "c":
                    checksum = int(value)
                else:
                    raise ValueError(f"unknown book key {key!r}")
        newest = -math.inf
        newest_text = ""
        for level in (*raw_bids, *raw_asks):
            text = level[2]
            secs = float(text)
            if secs > newest:
                newest, newest_text = secs, text
        ts = _secs_ns(newest_text) if newest_text else None
        return [Diff(symbol, raw_bids, raw_asks, ts, None, None, None, checksum)]

    def _trade(self, msg: list[Any], recv_ns: int) -> list[Event]:
        venue = self.venue
        symbol = self._unified(msg[-1])
        out: list[Event] = []
        for t in msg[1]:
            out.append(Trade(venue, symbol, float(t[0]), float(t[1]), _SIDES.get(t[3]), None, _secs_ns(t[2]), recv_ns))
        return out

    def _spread(self, msg: list[Any], recv_ns: int) -> list[Event]:
        s = msg[1]
        return [
            Quote(
                self.venue,
                self._unified(msg[-1]),
                float(s[0]),
                float(s[3]),
                float(s[1]),
                float(s[4]),
                _secs_ns(s[2]),
                recv_ns,
            )
        ]

    def _ticker(self, msg: list[Any], recv_ns: int) -> list[Event]:
        t = msg[1]
        bid = t["b"]
        ask = t["a"]
        return [
            Quote(
                self.venue,
                self._unified(msg[-1]),
                float(bid[0]),
                float(bid[2]),
                float(ask[0]),
                float(ask[2]),
                None,
                recv_ns,
            )
        ]

    def _ohlc(self, msg: list[Any], recv_ns: int) -> list[Event]:
        time_text, end_text, open_text, high_text, low_text, close_text, _vwap, volume_text, _count = msg[1][:9]
        minute = 60 * _NS
        start_ns = _secs_ns(end_text) // minute * minute - minute
        prices = open_text, high_text, low_text, close_text
        symbol = self._unified(msg[-1])
        return [build_candle(self.venue, symbol, start_ns, *prices, volume_text, False, _secs_ns(time_text), recv_ns)]


def _v1_levels(
    entries: Sequence[Sequence[str]],
) -> tuple[tuple[tuple[float, float], ...], TextLevels, tuple[float, str]]:
    """v1 ``[price, volume, timestamp(, "r")]`` entries → levels, texts and the
    newest ``(seconds, timestamp text)``. O(k)."""
    levels: list[tuple[float, float]] = []
    texts: list[tuple[str, str]] = []
    newest = -math.inf
    newest_text = ""
    for entry in entries:
        ptext = entry[0]
        vtext = entry[1]
        if type(ptext) is not str or type(vtext) is not str:
            raise TypeError(f"level {entry!r} is not text")
        levels.append((float(ptext), float(vtext)))
        texts.append((ptext, vtext))
        stamp = entry[2]
        secs = float(stamp)
        if secs > newest:
            newest = secs
            newest_text = stamp
    return tuple(levels), tuple(texts), (newest, newest_text)
