"""Bitget v2 public market data: :class:`BitgetAdapter` (spot, venue id
``"bitget"``) and :class:`BitgetFuturesAdapter` (perpetual and coin-margined
delivery futures, venue id ``"bitget-futures"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/bitget-v2.md``
(Bitget's api-doc pages, change log, ccxt and Bitget.Net, verified 2026-12).
Each rule is restated where it is enforced:

* **Endpoint.** ``wss://ws.bitget.com/v2/ws/public`` serves spot and every
  futures market; the subscription's ``instType`` selects the market
  (``SPOT``, ``USDT-FUTURES``, ``COIN-FUTURES``, ``USDC-FUTURES``). wsmux
  declares two adapters over the same host because the venue's instruments
  endpoints and symbol spaces differ (spot ``BTCUSDT`` and the USDT perpetual
  ``BTCUSDT`` share an ``instId``).
* **Symbols.** Spot ``BTC-USDT`` is ``BTCUSDT``; ``BTC-USDT-PERP`` is
  ``USDT-FUTURES`` ``BTCUSDT``; ``BTC-USD-PERP`` is ``COIN-FUTURES``
  ``BTCUSD``; ``BTC-USD-20261225`` is ``COIN-FUTURES`` ``BTCUSD_261225``
  (the delivery suffix is read from Bitget's REST ticker examples — the sheet
  is silent); ``BTC-USDC-PERP`` is ``USDC-FUTURES`` ``BTCPERP`` (Bitget's
  USDC-M naming; the sheet is silent: unconfirmed).
* **Subscribing.** ``{"op":"subscribe","args":[{"instType":..,"channel":..,
  "instId":..}]}``, one ``{"event":"subscribe"}`` ack per arg;
  ``{"event":"error","code":30001,...}`` is a refusal
  (:class:`~wsmux.errors.SubscriptionRejected`). Data frames are
  ``{"action":"snapshot"|"update","arg":{..},"data":[..],"ts":ms}``.
* **Keep-alive.** The client sends the text ``ping`` every 30 s and the
  server answers ``pong``; no ``ping`` for 2 minutes disconnects. Connections
  are force-closed after 24 h. At most 10 client messages per second, 240
  subscribe requests per hour and 1000 channels per connection (Bitget
  recommends fewer than 50). No compression.
* **Book (``books``).** A snapshot first (and possibly again at any time: it
  replaces the book), then ``update`` deltas with absolute sizes (``"0"``
  deletes). Each frame carries ``seq``; 2026 frames carry ``pseq``, the
  previous ``seq``: the chain rule is ``update.pseq == last seq``
  (:attr:`~wsmux.book.Continuity.PREV_ID`). Whether ``seq`` grows by one is
  unconfirmed, so only ``pseq`` is compared. An update *without* ``pseq``
  (pre-2026 frames) cannot be chained: it is passed with no ids, so the book
  sync checks only its checksum (and the crossed-book rule).
* **Checksum.** CRC32 of the top 25 bids and asks interleaved
  ``bidPx:bidSz:askPx:askSz:...`` on the exact strings received, compared as
  a signed 32-bit integer (:func:`bitget_book_checksum`). The sheet reports
  that 2026 frames may carry ``checksum: 0`` or none: a ``0`` means "no
  checksum" and is not verified, a non-zero value always is.
* **Depth.** The venue's cap is unconfirmed ("all levels", "books 400
  levels"); wsmux trims the book to 400 levels per side like OKX's identical
  protocol, so levels pushed beyond the venue's view never linger.

**Units.** Prices are in the quote currency. Sizes (book, trades) of spot and
of futures are in the base coin (Bitget v2 quotes futures sizes in coins;
the sheet marks this unconfirmed): :meth:`use_instruments` keeps contract
sizes at ``None``. Open interest is the futures ticker's ``holdingAmount``
(base coin).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, OrderBook, SnapshotSource, SyncRule
from wsmux.book.checksum import INTERLEAVED_DEPTH
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.model import (
    BookSide,
    BookSnapshot,
    Candle,
    Channel,
    Event,
    Funding,
    Instrument,
    Integrity,
    Levels,
    OpenInterest,
    Quote,
    Side,
    TextLevels,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "BOOK_DEPTH",
    "BitgetAdapter",
    "BitgetFuturesAdapter",
    "bitget_book_checksum",
    "bitget_native",
    "bitget_unified",
]

BOOK_DEPTH = 400
"""Levels per side wsmux keeps of a Bitget ``books`` book (bitget-v2.md, "Book sync", Depth)."""

_MS = 1_000_000  # ns per ms
_NAN = float("nan")
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_QUIET_EVENTS = frozenset({"subscribe", "unsubscribe", "login"})
# Quote currencies of spot instIds, longest first (for instIds wsmux did not subscribe).
_SPOT_QUOTES = ("USDT", "USDC", "USDE", "EUR", "BRL", "BTC", "ETH", "BGB")
_CANDLE_INTERVAL = "1m"
# wsmux channel -> Bitget channel. FUNDING and OPEN_INTEREST share ``ticker``.
_CHANNELS = {
    Channel.BOOK: "books",
    Channel.QUOTES: "books1",
    Channel.TRADES: "trade",
    Channel.CANDLES: "candle1m",
    Channel.FUNDING: "ticker",
    Channel.OPEN_INTEREST: "ticker",
}

_Handler = Callable[[str, Any, Any, int], Sequence[Event | Diff]]


def bitget_native(symbol: str, channel: Channel = Channel.TRADES, *, futures: bool) -> tuple[str, str]:
    """``(instType, instId)`` of a unified symbol.

    Rule (bitget-v2.md, "Endpoint and symbols"): spot ``BTCUSDT`` (``SPOT``);
    ``BTC-USDT-PERP`` → ``USDT-FUTURES`` ``BTCUSDT``; ``BTC-USD-PERP`` →
    ``COIN-FUTURES`` ``BTCUSD``; ``BTC-USD-YYYYMMDD`` → ``COIN-FUTURES``
    ``BTCUSD_YYMMDD``; ``BTC-USDC-PERP`` → ``USDC-FUTURES`` ``BTCPERP``.
    Funding exists only for perpetuals.

    Raises:
        UnknownSymbol: malformed symbol, or one the adapter's market lacks.
    """
    base, quote, kind = parse_symbol(symbol)
    if not futures:
        if kind is not None:
            raise UnknownSymbol(f"bitget (spot) lists spot symbols only, not {symbol!r}; use bitget-futures")
        return "SPOT", base + quote
    if kind is None:
        raise UnknownSymbol(f"bitget-futures lists perpetuals and futures, not spot {symbol!r}; use bitget")
    if kind == "PERP":
        if quote == "USDT":
            return "USDT-FUTURES", base + quote
        if quote == "USD":
            return "COIN-FUTURES", base + quote
        if quote == "USDC":
            return "USDC-FUTURES", base + "PERP"
        raise UnknownSymbol(f"bitget-futures has perpetuals in USDT, USD and USDC, not {symbol!r}")
    if quote != "USD":
        raise UnknownSymbol(f"bitget-futures lists dated futures only coin-margined (BASE-USD-DATE), not {symbol!r}")
    if channel is Channel.FUNDING:
        raise UnknownSymbol(f"bitget-futures has funding only for perpetuals, not {symbol!r}")
    return "COIN-FUTURES", f"{base}{quote}_{kind[2:]}"


def bitget_unified(inst_type: str, inst_id: str) -> str | None:
    """The unified symbol of a Bitget ``(instType, instId)``, or ``None``
    when it has none. Inverse of :func:`bitget_native` (spot quotes are
    recognised from a list of common quote currencies)."""
    symbol: str | None = None
    if inst_type == "SPOT":
        for quote in _SPOT_QUOTES:
            if inst_id.endswith(quote) and len(inst_id) > len(quote):
                symbol = f"{inst_id[: -len(quote)]}-{quote}"
                break
    elif inst_type == "USDT-FUTURES" and inst_id.endswith("USDT"):
        symbol = f"{inst_id[:-4]}-USDT-PERP"
    elif inst_type == "USDC-FUTURES" and inst_id.endswith("PERP"):
        symbol = f"{inst_id[:-4]}-USDC-PERP"
    elif inst_type == "COIN-FUTURES":
        coin, _, expiry = inst_id.partition("_")
        if coin.endswith("USD"):
            symbol = f"{coin[:-3]}-USD-" + (f"20{expiry}" if expiry else "PERP")
    if symbol is None:
        return None
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return None
    return symbol


def bitget_book_checksum(book: OrderBook) -> int:
    """Bitget's checksum of a live book: the ``SyncRule.checksum`` of both adapters.

    Rule (bitget-v2.md, "Book sync", Checksum): CRC32 of the top 25 bids and 25
    asks interleaved ``bidPx:bidSz:askPx:askSz:...`` (a shorter side's missing
    entries skipped) on the exact strings received, as a signed 32-bit
    integer — :func:`wsmux.book.checksum.bitget_checksum` computed straight
    from the book's kept text: one list of the 100 strings and one join, no
    per-level rewriting. The book keeps the venue's text (``keep_text=True``)
    and the rule's ``checksum_depth`` (25) means it is recomputed only when a
    level among the top 25 changed. O(1) in book depth.
    """
    bids = book.text_depth(BookSide.BID, INTERLEAVED_DEPTH)
    asks = book.text_depth(BookSide.ASK, INTERLEAVED_DEPTH)
    n = min(len(bids), len(asks))
    parts: list[str] = []
    for i in range(n):
        parts += bids[i]
        parts += asks[i]
    for level in bids[n:] if len(bids) > n else asks[n:]:
        parts += level
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 0x1_0000_0000 if crc & 0x8000_0000 else crc


def _levels(raw: Any) -> tuple[Levels, TextLevels]:
    """``[[px, sz], ...]`` (text) → float levels and their text, one pass."""
    levels = []
    text = []
    for level in raw:
        price = level[0]
        size = level[1]
        if price.__class__ is not str or size.__class__ is not str:
            raise TypeError(f"level {level!r}: price and size must be strings")
        levels.append((float(price), float(size)))
        text.append((price, size))
    return tuple(levels), tuple(text)


def _opt_int(value: Any, name: str) -> int | None:
    """An optional integer id that Bitget may send as a number or as text."""
    if value is None or value.__class__ is int:
        return value
    if value.__class__ is str and (value[1:] if value[:1] == "-" else value).isdigit():
        return int(value)
    raise TypeError(f"{name} must be an integer, not {value!r}")


def _ms(value: Any) -> int:
    """A millisecond timestamp (text or number) in ns."""
    if value.__class__ is int:
        return value * _MS
    if value.__class__ is str and value.isdigit():
        return int(value) * _MS
    raise TypeError(f"bad timestamp {value!r}")


class _BitgetBase(Adapter):
    """The v2 public protocol, shared by the spot and futures adapters."""

    default_url: ClassVar[str] = "wss://ws.bitget.com/v2/ws/public"
    default_rest_url: ClassVar[str] = "https://api.bitget.com"
    # bitget-v2.md, "Keep-alive and limits": <= 1000 channels per connection
    # (Bitget recommends < 50: wsmux keeps 50), <= 10 messages per second
    # (pings count: wsmux sends 5), <= 300 connection attempts per 5 min,
    # forced close after 24 h. Args per message are not limited by the sheet;
    # 240 subscribe requests per hour favour few large messages.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=50,
        topics_per_message=50,
        messages_per_second=5.0,
        connections_per_window=300,
        connection_window=300.0,
        max_connection_age=86_400.0,
        rest_weight_per_minute=1200,
    )
    # bitget-v2.md: text "ping" every 30 s, text "pong" back; no ping for 2 min
    # → disconnected. The pong keeps even a quiet connection audible.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message="ping", ping_interval=30.0, ws_ping_interval=None, silence_timeout=75.0
    )
    _futures: ClassVar[bool]

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[tuple[str, str], str] = {}  # (instType, instId) -> unified
        # ticker topics: (instType, instId) -> the wsmux channels that asked for it
        self._tickers: dict[tuple[str, str], set[Channel]] = {}
        self._handlers: dict[str, _Handler] = {
            "books": self._books,
            "books1": self._bbo,
            "trade": self._trades,
            "candle1m": self._candles,
            "ticker": self._ticker,
        }

    def reset(self) -> None:
        self._tickers.clear()

    # --- symbols ------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """The ``instId`` (see :func:`bitget_native`)."""
        return bitget_native(symbol, channel, futures=self._futures)[1]

    def _unified(self, arg: Any) -> str:
        key = (arg["instType"], arg["instId"])
        symbol = self._symbols.get(key)
        if symbol is None:
            symbol = bitget_unified(*key) if key[0].__class__ is str and key[1].__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"{self.venue}: unknown instrument {key!r}")
            self._symbols[key] = symbol
        return symbol

    # --- books ----------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """Bitget's ``books`` rule (bitget-v2.md, "Book sync"): stream snapshot;
        each update's ``pseq`` equals the previous ``seq`` (PREV_ID); CRC32 of
        the top 25 levels on the kept text whenever the venue sends a non-zero
        checksum; 400 levels per side."""
        return SyncRule(
            snapshot=SnapshotSource.STREAM,
            continuity=Continuity.PREV_ID,
            checksum=bitget_book_checksum,
            checksum_depth=INTERLEAVED_DEPTH,
            depth=BOOK_DEPTH,
            keep_text=True,
            # bitget-v2.md: 2026 frames may carry checksum 0 or none; the pseq
            # chain is what proves the book (a non-zero checksum is verified)
            integrity=Integrity.SEQUENCE,
        )

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _requests(self, op: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        args: list[dict[str, str]] = []
        for sub in subscriptions:
            channel = _CHANNELS.get(sub.channel)
            if channel is None or sub.channel not in self.channels:
                self.check(sub)  # raises UnknownChannel
                continue
            inst_type, inst_id = key = bitget_native(sub.symbol, sub.channel, futures=self._futures)
            self._symbols[key] = sub.symbol
            if channel == "ticker" and not self._ticker_wanted(op, key, sub.channel):
                continue  # the shared ticker topic is already (or still) subscribed
            args.append({"instType": inst_type, "channel": channel, "instId": inst_id})
        per = self.limits.topics_per_message
        return [dumps({"op": op, "args": args[i : i + per]}) for i in range(0, len(args), per)]

    def _ticker_wanted(self, op: str, key: tuple[str, str], channel: Channel) -> bool:
        """Funding and open interest share one ``ticker`` topic: subscribe it for
        the first of them, unsubscribe it with the last."""
        wanted = self._tickers.setdefault(key, set())
        if op == "subscribe":
            first = not wanted
            wanted.add(channel)
            return first
        if channel not in wanted:
            return False
        wanted.discard(channel)
        return not wanted

    # --- parsing --------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        if frame in ("pong", b"pong"):  # bitget-v2.md: the text reply to "ping"
            return []
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
            arg = msg["arg"]
            channel = arg["channel"]
            handler = self._handlers.get(channel) if channel.__class__ is str else None
            if handler is None:
                raise unknown_message("channel", channel, frame)
            if data.__class__ is not list:
                raise TypeError("data must be a list")
            return handler(msg["action"], arg, data, recv_ns)
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
            raise SubscriptionRejected(
                f"{self.venue} error {msg.get('code', '?')}: {msg.get('msg', '')} (arg {msg.get('arg')})"
            )
        raise unknown_message("event", event, frame)

    def _books(self, action: Any, arg: Any, data: Any, recv_ns: int) -> list[Event | Diff]:
        if action == "update":
            snapshot = False
        elif action == "snapshot":
            snapshot = True
        else:
            raise unknown_message("books action", action)
        symbol = self._unified(arg)
        venue = self.venue
        out: list[Event | Diff] = []
        for entry in data:
            ts = _ms(entry["ts"])
            seq = _opt_int(entry.get("seq"), "seq")
            # bitget-v2.md: a checksum of 0 (or none) means "not sent"
            checksum = _opt_int(entry.get("checksum"), "checksum") or None
            if snapshot:
                bids, bids_text = _levels(entry["bids"])
                asks, asks_text = _levels(entry["asks"])
                out.append(BookSnapshot(venue, symbol, bids, asks, ts, recv_ns, seq, checksum, bids_text, asks_text))
                continue
            prev = _opt_int(entry.get("pseq"), "pseq")
            if prev is None:
                seq = None  # no pseq (pre-2026 frames): cannot be chained, checksum only
            raw_bids = entry["bids"]
            raw_asks = entry["asks"]
            if raw_bids.__class__ is not list or raw_asks.__class__ is not list:
                raise TypeError("bids and asks must be lists")
            # the decoded text levels go to the book sync as they are: it converts,
            # checks and applies them in one pass, keeping their text
            out.append(Diff(symbol, raw_bids, raw_asks, ts, seq, None, prev, checksum))
        return out

    def _bbo(self, action: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(arg)
        out: list[Event] = []
        for entry in data:
            bids = entry["bids"]
            asks = entry["asks"]
            bp, bs = (float(bids[0][0]), float(bids[0][1])) if bids else (_NAN, _NAN)
            ap, az = (float(asks[0][0]), float(asks[0][1])) if asks else (_NAN, _NAN)
            seq = _opt_int(entry.get("seq"), "seq")
            out.append(Quote(self.venue, symbol, bp, bs, ap, az, _ms(entry["ts"]), recv_ns, seq))
        return out

    def _trades(self, action: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(arg)
        if action == "snapshot":
            # bitget-v2.md: the first push replays recent (past) trades; every
            # Trade wsmux delivers is live, so the replay is dropped
            return []
        if action != "update":
            raise unknown_message("trade action", action)
        venue = self.venue
        return [
            Trade(
                venue,
                symbol,
                float(entry["price"]),
                float(entry["size"]),
                _SIDES[entry["side"]],  # bitget-v2.md: the taker's side
                str(entry["tradeId"]),
                _ms(entry["ts"]),
                recv_ns,
            )
            for entry in data
        ]

    def _candles(self, action: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        """``[[startMs, open, high, low, close, baseVolume, ...], ...]``. The
        venue pushes the forming candle again and again; a snapshot lists
        history, of which all but the newest candle are final."""
        symbol = self._unified(arg)
        if action not in ("snapshot", "update"):
            raise unknown_message("candle action", action)
        newest = max((_ms(row[0]) for row in data), default=0)
        history = action == "snapshot"
        out: list[Event] = []
        for row in data:
            start = _ms(row[0])
            out.append(
                Candle(
                    self.venue,
                    symbol,
                    _CANDLE_INTERVAL,
                    start,
                    float(row[1]),
                    float(row[2]),
                    float(row[3]),
                    float(row[4]),
                    float(row[5]),
                    history and start < newest,
                    None,
                    recv_ns,
                )
            )
        return out

    def _ticker(self, action: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(arg)
        wanted = self._tickers.get((arg["instType"], arg["instId"]), ())
        out: list[Event] = []
        for entry in data:
            ts = _ms(entry["ts"])
            if Channel.FUNDING in wanted:
                next_time = entry.get("nextFundingTime")
                mark = entry.get("markPrice")
                out.append(
                    Funding(
                        self.venue,
                        symbol,
                        float(entry["fundingRate"]),
                        _ms(next_time) if next_time not in (None, "", "0") else None,
                        float(mark) if mark not in (None, "") else None,
                        ts,
                        recv_ns,
                    )
                )
            if Channel.OPEN_INTEREST in wanted:
                out.append(OpenInterest(self.venue, symbol, float(entry["holdingAmount"]), ts, recv_ns))
        return out

    # --- reference data -----------------------------------------------------------

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Instruments of a spot ``symbols`` or futures ``contracts`` answer
        (bitget-v2.md, "Endpoint and symbols"; futures field names
        unconfirmed). Instruments wsmux cannot name are left out."""
        try:
            msg = loads(body)
            if msg.__class__ is not dict or msg.get("code") != "00000":
                raise MalformedMessage(f"{self.venue}: instruments request failed: {str(msg)[:200]}")
            return [i for i in map(self._instrument, msg["data"]) if i is not None]
        except WsmuxError:
            raise
        except (JSONDecodeError, *_ERRORS) as exc:
            raise MalformedMessage(f"{self.venue}: bad instruments answer: {exc!r}") from exc

    def _instrument(self, item: Any) -> Instrument | None:
        raise NotImplementedError


def _places(decimals: Any) -> float:
    return float(10.0 ** -int(decimals))


class BitgetAdapter(_BitgetBase):
    """Bitget v2 spot, venue id ``"bitget"``. See the module docstring for the
    venue rules (sheet: ``shared/exchanges/bitget-v2.md``).

    Channels → events:

    * ``books`` → :class:`BookSnapshot` / :class:`BookUpdate` with ``seq``,
      ``prev_seq = pseq``, ``checksum`` (``None`` when Bitget sends ``0``) and
      the venue's text of every level.
    * ``books1`` (top of book, a snapshot per push) → :class:`Quote` (``seq``).
    * ``trade`` → :class:`Trade` (taker side, ``trade_id = tradeId``); the
      subscribe-time snapshot of past trades is dropped.
    * ``candle1m`` → :class:`Candle` (``interval="1m"``).
    """

    venue: ClassVar[str] = "bitget"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.QUOTES, Channel.TRADES, Channel.CANDLES})
    _futures: ClassVar[bool] = False

    def instruments_request(self) -> HttpRequest | None:
        """``GET /api/v2/spot/public/symbols`` (bitget-v2.md)."""
        return HttpRequest(f"{self.rest_url}/api/v2/spot/public/symbols")

    def _instrument(self, item: Any) -> Instrument | None:
        native = item["symbol"]
        symbol = f"{item['baseCoin']}-{item['quoteCoin']}"
        try:
            parse_symbol(symbol)
        except UnknownSymbol:
            return None
        self._symbols[("SPOT", native)] = symbol
        return Instrument(
            self.venue, symbol, native, "spot", _places(item["pricePrecision"]), _places(item["quantityPrecision"])
        )


class BitgetFuturesAdapter(_BitgetBase):
    """Bitget v2 futures (USDT-M, coin-M and USDC-M perpetuals, coin-M
    delivery futures), venue id ``"bitget-futures"``. The channels of
    :class:`BitgetAdapter`, plus the ``ticker`` channel →
    :class:`Funding` (``fundingRate``, ``nextFundingTime``, ``markPrice``)
    and :class:`OpenInterest` (``holdingAmount``); one ``ticker`` topic serves
    both. Bitget has no public liquidation channel (bitget-v2.md)."""

    venue: ClassVar[str] = "bitget-futures"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.BOOK, Channel.QUOTES, Channel.TRADES, Channel.CANDLES, Channel.FUNDING, Channel.OPEN_INTEREST}
    )
    _futures: ClassVar[bool] = True

    def instruments_request(self, product_type: str = "USDT-FUTURES") -> HttpRequest | None:
        """``GET /api/v2/mix/market/contracts?productType=...`` (bitget-v2.md);
        one product type per request (``USDT-FUTURES`` by default,
        ``COIN-FUTURES``, ``USDC-FUTURES``)."""
        return HttpRequest(f"{self.rest_url}/api/v2/mix/market/contracts", (("productType", product_type),))

    def _instrument(self, item: Any) -> Instrument | None:
        native = item["symbol"]
        quote = item["quoteCoin"]
        inst_type = {"USDT": "USDT-FUTURES", "USDC": "USDC-FUTURES"}.get(quote, "COIN-FUTURES")
        symbol = bitget_unified(inst_type, native)
        if symbol is None:
            return None
        self._symbols[(inst_type, native)] = symbol
        tick = float(item.get("priceEndStep") or 1) * _places(item["pricePlace"])
        kind = "future" if item.get("symbolType") == "delivery" else "perp"
        return Instrument(self.venue, symbol, native, kind, tick, float(item["sizeMultiplier"]))
