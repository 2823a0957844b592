"""OKX v5 public market data: :class:`OkxAdapter` (venue id ``"okx"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/okx-v5.md``
(which cites cryptofeed's OKX implementation and 2022 recording, OKX's 2023
endpoint notice and third-party 2026 live checks; the OKX v5 docs themselves
were not available, so rules the sheet marks UNCONFIRMED are flagged here too).
Each rule is restated where it is enforced:

* **Endpoints.** ``wss://ws.okx.com:8443/ws/v5/public`` carries ``books``,
  ``bbo-tbt``, ``trades``, ``funding-rate``, ``open-interest`` and
  ``liquidation-orders``; candles moved to the *business* endpoint
  ``wss://ws.okx.com:8443/ws/v5/business`` in June 2023 (the sheet,
  "Endpoints"; OKX answers a candle subscription on ``/public`` with error
  60018 "Wrong URL or channel"). One connection has one URL, so
  :meth:`OkxAdapter.route` puts candles on route ``"business"`` and the
  multiplexer keeps them on connections of their own, opened at the adapter's
  URL with its last path part ``public`` replaced by ``business``.
  ``wsaws.okx.com`` is the AWS mirror.
* **Symbols.** Spot ``BTC-USDT`` is ``BTC-USDT``; the perpetual swap
  ``BTC-USDT-PERP`` is ``BTC-USDT-SWAP``; the dated future
  ``BTC-USD-20220527`` is ``BTC-USD-220527``.
* **Subscribing.** ``{"op":"subscribe","args":[{"channel":"books","instId":
  "BTC-USDT"}, ...]}``, one ack per arg; ``{"event":"error",...}`` is a refused
  request (:class:`~wsmux.errors.SubscriptionRejected`). ``liquidation-orders``
  is subscribed per *instrument type* (``{"channel":"liquidation-orders",
  "instType":"SWAP"}``), so the adapter subscribes the type once per
  connection and keeps only the instruments that were asked for.
* **Keep-alive.** The client sends the literal text ``ping``; the server
  answers the text ``pong``. OKX closes a connection after 30 s without
  traffic (UNCONFIRMED), so wsmux pings every 20 s.
* **Book (``books``, 400 levels).** The WebSocket sends the snapshot on
  subscribe (``action: "snapshot"``, ``prevSeqId = -1``), then updates with
  absolute sizes (``"0"`` deletes). Continuity is ``seqId``/``prevSeqId``: each
  update's ``prevSeqId`` must equal the ``seqId`` of the message before it
  (:attr:`~wsmux.book.Continuity.PREV_ID`); a keep-alive update with empty
  sides may repeat the id (``prevSeqId == seqId``), which is that same rule;
  after maintenance ``seqId`` may restart lower than ``prevSeqId``
  (UNCONFIRMED), which the rule also accepts because only ``prevSeqId`` is
  compared. A broken chain resubscribes for a new snapshot.
* **Checksum.** CRC32 of the top 25 bids and asks interleaved
  (``bidPx:bidSz:askPx:askSz:...``, the venue's exact text), compared as a
  signed 32-bit integer (:func:`wsmux.book.checksum.okx_checksum`). **Since
  2026 OKX sends ``checksum: 0`` on every ``books`` frame** (verified live by
  third parties, 2026-08/09): a ``0`` means "no checksum", so events carry
  ``checksum=None`` and only a non-zero value is verified.

**Units.** Prices are in the quote currency. Sizes of spot instruments are in
the base currency. OKX sends sizes of SWAP and FUTURES instruments (book
levels, quotes, trades, liquidations) in **contracts** (okx-v5.md, "Book
sync": "see instrument ``ctVal``"). Once the instruments list is known
(``GET /api/v5/public/instruments?instType=SPOT|SWAP|FUTURES``, passed to
:meth:`OkxAdapter.use_instruments` by the multiplexer or a replay), they are
reported in **base units**: ``contracts * ctVal * ctMult`` for linear
contracts (``ctType: "linear"``, ``ctValCcy`` the base currency), and
``contracts * ctVal / price`` for inverse ones (``ctValCcy: "USD"``: the
coins the contracts are worth at that price). Book levels keep the venue's
*text* (contracts) beside the converted float, so the checksum is still
computed from what OKX sent. Without the list, sizes stay in contracts.
Open interest uses ``oiCcy`` (base currency) when present, else ``oi``
(converted like a size).
Candle volumes are always in the base currency: a candle row is ``[ts, o, h,
l, c, vol, volCcy, volCcyQuote, confirm]`` where ``vol`` is base currency on
spot but contracts on swaps and futures, whose base-currency volume is
``volCcy`` (OKX v5 docs, "Candlesticks channel"; not in the sheet).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, OrderBook, SnapshotSource, SyncRule
from wsmux.book.checksum import INTERLEAVED_DEPTH, okx_checksum
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._candles import build_candle
from wsmux.exchanges._contracts import ContractSizes
from wsmux.exchanges._reference import BODY_ERRORS, json_body, step
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Channel,
    Event,
    Funding,
    Instrument,
    Integrity,
    Levels,
    Liquidation,
    OpenInterest,
    Quote,
    Side,
    TextLevels,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "BOOK_DEPTH",
    "BUSINESS",
    "OkxAdapter",
    "okx_book_checksum",
    "okx_symbol",
    "okx_unified",
]

BOOK_DEPTH = 400
"""Levels per side of the OKX ``books`` channel (okx-v5.md, "Subscribing")."""

_MS = 1_000_000  # ns per ms
_NAN = math.nan
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_CHANNELS = {
    Channel.BOOK: "books",
    Channel.QUOTES: "bbo-tbt",
    Channel.TRADES: "trades",
    Channel.FUNDING: "funding-rate",
    Channel.OPEN_INTEREST: "open-interest",
    Channel.LIQUIDATIONS: "liquidation-orders",
    Channel.CANDLES: "candle1m",
}
BUSINESS = "business"
"""The route of subscriptions served on the business endpoint (candles)."""
# Events that carry no market data, and those that report a refusal.
_INST_KINDS = {"SPOT": "spot", "SWAP": "perp", "FUTURES": "future"}
"""OKX ``instType`` → :attr:`~wsmux.Instrument.kind` (options are not mapped)."""
_QUIET_EVENTS = frozenset({"subscribe", "unsubscribe", "notice", "channel-conn-count", "login"})
_ERROR_EVENTS = frozenset({"error", "channel-conn-count-error"})

_Handler = Callable[[Any, Any, Any, int], Sequence[Event | Diff]]


def okx_symbol(symbol: str, channel: Channel = Channel.TRADES) -> str:
    """OKX ``instId`` of a unified symbol.

    Rule (okx-v5.md, "Endpoints"): spot ``BTC-USDT``, perpetual swap
    ``BTC-USDT-SWAP``, dated future ``BTC-USD-YYMMDD``. Funding exists only for
    swaps; open interest and liquidations only for swaps and futures.

    Raises:
        UnknownSymbol: malformed symbol, or a channel the instrument kind lacks.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is None:
        if channel in (Channel.FUNDING, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS):
            raise UnknownSymbol(f"okx has no {channel.value} for spot {symbol!r}; use {symbol}-PERP")
        return f"{base}-{quote}"
    if kind == "PERP":
        return f"{base}-{quote}-SWAP"
    if channel is Channel.FUNDING:
        raise UnknownSymbol(f"okx has funding only for perpetual swaps, not {symbol!r}")
    return f"{base}-{quote}-{kind[2:]}"


def okx_unified(inst_id: str) -> str | None:
    """The unified symbol of an OKX ``instId``, or ``None`` if it has none
    (options, malformed ids). Inverse of :func:`okx_symbol`."""
    parts = inst_id.split("-")
    n = len(parts)
    if n == 2:
        symbol = inst_id
    elif n == 3 and parts[2] == "SWAP":
        symbol = f"{parts[0]}-{parts[1]}-PERP"
    elif n == 3 and len(parts[2]) == 6 and parts[2].isdigit():
        symbol = f"{parts[0]}-{parts[1]}-20{parts[2]}"
    else:
        return None
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return None
    return symbol


def okx_book_checksum(book: OrderBook) -> int:
    """OKX's checksum of a live book: the ``SyncRule.checksum`` of :class:`OkxAdapter`.

    Rule (okx-v5.md, "Book sync", Checksum): CRC32 of the top 25 bids and 25
    asks interleaved ``bidPx:bidSz:askPx:askSz:...`` with the exact strings
    received, as a signed 32-bit integer (see
    :func:`wsmux.book.checksum.okx_checksum`). The book keeps the venue's text
    (``keep_text=True``). O(1) in book depth (25 levels per side).
    """
    return okx_checksum(
        book.text_depth(BookSide.BID, INTERLEAVED_DEPTH), book.text_depth(BookSide.ASK, INTERLEAVED_DEPTH)
    )


def _levels(raw: Any) -> tuple[Levels, TextLevels]:
    """``[[px, sz, "0", orders], ...]`` → float levels and their text, one pass."""
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


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None or value.__class__ is int:
        return value
    raise TypeError(f"{name} must be an integer, not {value!r}")


class OkxAdapter(Adapter):
    """OKX v5 public WebSocket, venue id ``"okx"``. See the module docstring
    for the venue rules (sheet: ``shared/exchanges/okx-v5.md``).

    Channels → events:

    * ``books`` → :class:`BookSnapshot` / :class:`BookUpdate` with ``seq =
      seqId``, ``prev_seq = prevSeqId``, ``checksum`` (``None`` when OKX sends
      ``0``) and the venue's text of every level.
    * ``bbo-tbt`` (tick-by-tick best bid/offer) → :class:`Quote` (``seq = seqId``).
    * ``trades`` → :class:`Trade` (``side`` is the taker's side, ``trade_id`` =
      ``tradeId``).
    * ``funding-rate`` → :class:`Funding`: ``rate = fundingRate``,
      ``next_funding_ts = fundingTime`` (when the current rate is settled).
    * ``open-interest`` → :class:`OpenInterest` (``oiCcy``, base currency;
      ``oi`` in contracts if ``oiCcy`` is absent).
    * ``liquidation-orders`` → :class:`Liquidation` per ``details`` entry
      (``side`` = the liquidation order's side, ``price = bkPx``, ``size = sz``
      in contracts). The message shape is UNCONFIRMED in the sheet.
    * ``candle1m`` (business endpoint, route ``"business"``) →
      :class:`~wsmux.Candle` per row, ``closed`` from ``confirm``, volume in
      the base currency (``vol`` on spot, ``volCcy`` on swaps and futures),
      ``ts`` None (a row carries only its start time).

    **Sizes of swaps and futures are in base units** once
    :meth:`use_instruments` gave their contract values, in contracts before
    (see the module docstring, "Units").
    """

    venue: ClassVar[str] = "okx"
    channels: ClassVar[frozenset[Channel]] = frozenset(_CHANNELS)
    default_url: ClassVar[str] = "wss://ws.okx.com:8443/ws/v5/public"
    default_rest_url: ClassVar[str] = "https://www.okx.com"
    # GET /api/v5/public/time -> {"code": "0", "data": [{"ts": "<ms>"}]} (the venue's
    # REST docs, "Get system time"; the sheet is silent on it)
    server_time_path: ClassVar[str | None] = "/api/v5/public/time"
    server_time_field: ClassVar[tuple[str | int, ...]] = ("data", 0, "ts")
    backup_urls: ClassVar[tuple[str, ...]] = ("wss://wsaws.okx.com:8443/ws/v5/public",)
    # okx-v5.md, "Keep-alive and limits" (all UNCONFIRMED): 3 new connections/s
    # per IP; <= 480 subscribe/unsubscribe/login requests per hour per
    # connection; args payload <= 64 KB. Topics per connection and per message
    # are wsmux's choice (well under 64 KB).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=50,
        messages_per_second=3.0,
        connections_per_window=3,
        connection_window=1.0,
    )
    # okx-v5.md: send text "ping" when nothing arrived for < 30 s; reply "pong".
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message="ping", ping_interval=20.0, ws_ping_interval=None, silence_timeout=45.0, stale_after=30.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # instId -> unified symbol
        self._contracts = ContractSizes(self.venue)
        # instType -> instIds whose liquidations were asked for on this connection
        self._liquidations: dict[str, set[str]] = {}
        self._handlers: dict[str, _Handler] = {
            "books": self._books,
            "bbo-tbt": self._bbo,
            "trades": self._trades,
            "funding-rate": self._funding,
            "open-interest": self._open_interest,
            "liquidation-orders": self._liquidation,
            "candle1m": self._candles,
        }

    def reset(self) -> None:
        self._liquidations.clear()

    # --- symbols --------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`okx_symbol`."""
        return okx_symbol(symbol, channel)

    def _unified(self, inst_id: Any) -> str:
        symbol = self._symbols.get(inst_id)
        if symbol is None:
            symbol = okx_unified(inst_id) if inst_id.__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"okx: unknown instId {inst_id!r}")
            self._symbols[inst_id] = symbol
        return symbol

    # --- books ------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """OKX's ``books`` rule (okx-v5.md, "Book sync"): stream snapshot on
        subscribe; each update's ``prevSeqId`` equals the previous ``seqId``
        (PREV_ID); CRC32 of the top 25 levels checked whenever the venue sends a
        non-zero checksum; 400 levels per side (levels beyond are trimmed)."""
        return SyncRule(
            snapshot=SnapshotSource.STREAM,
            continuity=Continuity.PREV_ID,
            checksum=okx_book_checksum,
            checksum_depth=INTERLEAVED_DEPTH,
            depth=BOOK_DEPTH,
            # okx-v5.md: checksum 0 on every frame since 2026 ("none"); the
            # sequence chain is what proves the book (a non-zero checksum is
            # still verified)
            integrity=Integrity.SEQUENCE,
            keep_text=True,
        )

    # --- reference data --------------------------------------------------------------

    def instruments_request(self, inst_type: str = "SWAP") -> HttpRequest | None:
        """``GET <rest>/api/v5/public/instruments?instType=SWAP`` (one type per
        request: :meth:`instruments_requests` lists all three)."""
        return HttpRequest(self.rest_url + "/api/v5/public/instruments", (("instType", inst_type),))

    def instruments_requests(self) -> list[HttpRequest]:
        """The instruments of each type wsmux maps: ``SPOT``, ``SWAP``, ``FUTURES``."""
        return [r for r in (self.instruments_request(t) for t in _INST_KINDS) if r is not None]

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``{"code": "0", "data": [{"instType", "instId", "tickSz", "lotSz",
        "ctVal", "ctMult", "ctValCcy", "ctType", "state"}]}`` → instruments
        (options and ids without a unified symbol are left out). ``lot_size``
        is ``lotSz`` in OKX's size unit (contracts for swaps and futures).
        ``contract_size``: linear ``ctVal * ctMult`` when ``ctValCcy`` is the
        base currency; inverse (``ctType: "inverse"``) ``ctVal`` in
        ``ctValCcy`` (USD), with ``inverse=True``.

        Raises:
            RemoteError: OKX answered with an error code.
            MalformedMessage: the body is not an instruments list.
        """
        msg = json_body(self.venue, body)
        out: list[Instrument] = []
        try:
            if msg.get("code") not in ("0", 0):
                raise RemoteError(f"okx instruments error {msg.get('code')}: {msg.get('msg')}")
            for row in msg["data"]:
                kind = _INST_KINDS.get(row["instType"])
                symbol = okx_unified(row["instId"])
                if kind is None or symbol is None:
                    continue
                contract_size, inverse = None, False
                if kind != "spot" and row.get("ctVal"):
                    base = symbol.partition("-")[0]
                    inverse = row.get("ctType") == "inverse"
                    if inverse or row.get("ctValCcy") == base:
                        contract_size = float(row["ctVal"]) * (1.0 if inverse else float(row.get("ctMult") or 1))
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        row["instId"],
                        kind,
                        step(row.get("tickSz")),
                        step(row.get("lotSz")),
                        contract_size,
                        inverse,
                    )
                )
        except RemoteError:
            raise
        except BODY_ERRORS as exc:
            raise MalformedMessage(f"okx: bad instruments body: {exc!r}", body) from exc
        return out

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn contract values: sizes of swaps and futures are then in base units."""
        self._contracts.learn(instruments)

    def _base_levels(self, symbol: str, levels: Levels) -> Levels:
        size = self._contracts.size
        return tuple([(price, size(symbol, contracts, price)) for price, contracts in levels])
    # --- connections --------------------------------------------------------------------

    def route(self, subscription: Subscription) -> str:
        """``"business"`` for candles (the business endpoint), ``""`` for the rest."""
        return BUSINESS if subscription.channel is Channel.CANDLES else ""

    def business_url(self) -> str:
        """The business endpoint: :attr:`url` with a last path part ``public``
        replaced by ``business`` (``.../ws/v5/business``); :attr:`url` itself
        if it does not end in ``/public``."""
        url = self.url.rstrip("/")
        return url[: -len("public")] + BUSINESS if url.endswith("/public") else url

    def connect_url(self, subscriptions: Sequence[Subscription]) -> str:
        """:meth:`business_url` for a connection of candles, :attr:`url` otherwise.

        Raises:
            ConfigError: ``subscriptions`` mix candles with other channels.
        """
        routes = {self.route(s) for s in subscriptions}
        if len(routes) > 1:
            raise ConfigError(
                "okx: candles (business endpoint) and other channels (public endpoint) cannot share one "
                "connection (shard them by Adapter.route())"
            )
        return self.business_url() if routes == {BUSINESS} else self.url

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _requests(self, op: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        args: list[dict[str, str]] = []
        for sub in subscriptions:
            channel = _CHANNELS.get(sub.channel)
            if channel is None:
                self.check(sub)  # raises UnknownChannel
                continue
            inst_id = okx_symbol(sub.symbol, sub.channel)
            self._symbols[inst_id] = sub.symbol
            if sub.channel is Channel.LIQUIDATIONS:
                arg = self._liquidation_arg(op, inst_id)
                if arg is not None:
                    args.append(arg)
            else:
                args.append({"channel": channel, "instId": inst_id})
        per = self.limits.topics_per_message
        return [dumps({"op": op, "args": args[i : i + per]}) for i in range(0, len(args), per)]

    def _liquidation_arg(self, op: str, inst_id: str) -> dict[str, str] | None:
        # okx-v5.md: liquidation-orders is subscribed per instType; send the arg
        # when the first instrument of a type is added / the last one removed.
        inst_type = "SWAP" if inst_id.endswith("-SWAP") else "FUTURES"
        watched = self._liquidations.setdefault(inst_type, set())
        arg = {"channel": "liquidation-orders", "instType": inst_type}
        if op == "subscribe":
            first = not watched
            watched.add(inst_id)
            return arg if first else None
        if inst_id not in watched:
            return None
        watched.discard(inst_id)
        return None if watched else arg

    # --- parsing ------------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        if frame in ("pong", b"pong"):  # okx-v5.md: the text reply to "ping"
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
            return handler(msg, arg, data, recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise MalformedMessage(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"okx: bad {channel or 'event'} message: {exc!r}", frame) from exc

    def _event(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        event = msg.get("event")
        if event in _QUIET_EVENTS:
            return []
        if event in _ERROR_EVENTS:
            raise SubscriptionRejected(
                f"okx {event} {msg.get('code', '?')}: {msg.get('msg', '')} (arg {msg.get('arg')})"
            )
        raise MalformedMessage("unknown message type", frame)

    def _books(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event | Diff]:
        action = msg["action"]
        if action == "update":
            snapshot = False
        elif action == "snapshot":
            snapshot = True
        else:
            raise MalformedMessage(f"unknown message type: books action {action!r}")
        symbol = self._unified(arg["instId"])
        venue = self.venue
        out: list[Event | Diff] = []
        for entry in data:
            ts = int(entry["ts"]) * _MS
            seq = _int_or_none(entry.get("seqId"), "seqId")
            # okx-v5.md: checksum 0 (every frame since 2026) means "none".
            checksum = _int_or_none(entry.get("checksum"), "checksum") or None
            if snapshot:
                bids, bids_text = _levels(entry["bids"])
                asks, asks_text = _levels(entry["asks"])
                if self._contracts.converts(symbol):
                    bids, asks = self._base_levels(symbol, bids), self._base_levels(symbol, asks)
                out.append(BookSnapshot(venue, symbol, bids, asks, ts, recv_ns, seq, checksum, bids_text, asks_text))
            elif self._contracts.converts(symbol):
                # sizes in base units, the venue's text (contracts) kept beside
                # them for the checksum: a ready-made update, off the Diff path
                bids, bids_text = _levels(entry["bids"])
                asks, asks_text = _levels(entry["asks"])
                prev = _int_or_none(entry.get("prevSeqId"), "prevSeqId")
                out.append(
                    BookUpdate(
                        venue,
                        symbol,
                        self._base_levels(symbol, bids),
                        self._base_levels(symbol, asks),
                        ts,
                        recv_ns,
                        seq,
                        None,
                        prev,
                        checksum,
                        bids_text,
                        asks_text,
                    )
                )
            else:
                prev = _int_or_none(entry.get("prevSeqId"), "prevSeqId")
                raw_bids = entry["bids"]
                raw_asks = entry["asks"]
                if raw_bids.__class__ is not list or raw_asks.__class__ is not list:
                    raise TypeError("bids and asks must be lists")
                # the decoded levels go to the book sync as they are: it converts,
                # checks and applies them in one pass, keeping their text
                out.append(Diff(symbol, raw_bids, raw_asks, ts, seq, None, prev, checksum))
        return out

    def _bbo(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        symbol = self._unified(arg["instId"])
        out: list[Event] = []
        for entry in data:
            bids = entry["bids"]
            asks = entry["asks"]
            bp, bs = (float(bids[0][0]), float(bids[0][1])) if bids else (_NAN, _NAN)
            ap, az = (float(asks[0][0]), float(asks[0][1])) if asks else (_NAN, _NAN)
            if self._contracts.converts(symbol):
                bs, az = self._contracts.size(symbol, bs, bp), self._contracts.size(symbol, az, ap)
            seq = _int_or_none(entry.get("seqId"), "seqId")
            out.append(Quote(self.venue, symbol, bp, bs, ap, az, int(entry["ts"]) * _MS, recv_ns, seq))
        return out

    def _trades(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        venue = self.venue
        unified = self._unified
        out: list[Event] = []
        for entry in data:
            symbol = unified(entry["instId"])
            size = entry["sz"]
            if self._contracts.converts(symbol):
                size = self._contracts.size(symbol, size, entry["px"])
            out.append(
                Trade(
                    venue,
                    symbol,
                    float(entry["px"]),
                    float(size),
                    _SIDES[entry["side"]],
                    str(entry["tradeId"]),
                    int(entry["ts"]) * _MS,
                    recv_ns,
                )
            )
        return out

    def _funding(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        out: list[Event] = []
        for entry in data:
            symbol = self._unified(entry.get("instId") or arg["instId"])
            funding_time = entry.get("fundingTime")
            ts = entry.get("ts")
            out.append(
                Funding(
                    self.venue,
                    symbol,
                    float(entry["fundingRate"]),
                    int(funding_time) * _MS if funding_time else None,
                    None,
                    int(ts) * _MS if ts else None,
                    recv_ns,
                )
            )
        return out

    def _open_interest(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        out: list[Event] = []
        for entry in data:
            symbol = self._unified(entry.get("instId") or arg["instId"])
            oi_ccy = entry.get("oiCcy")
            # oiCcy is in base units already; oi is contracts (converted for
            # linear contracts; an inverse contract's oi needs a price: left as is)
            oi = float(oi_ccy) if oi_ccy else self._contracts.to_base(symbol, entry["oi"])
            ts = entry.get("ts")
            out.append(OpenInterest(self.venue, symbol, oi, int(ts) * _MS if ts else None, recv_ns))
        return out

    def _candles(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        inst_id = arg["instId"]
        symbol = self._unified(inst_id)
        # vol is contracts on swaps and futures; volCcy is their base-currency volume
        volume_at = 5 if inst_id.count("-") == 1 else 6
        out: list[Event] = []
        for row in data:
            confirm = row[8]
            if confirm == "1":
                closed = True
            elif confirm == "0":
                closed = False
            else:
                raise ValueError(f"confirm must be '0' or '1', not {confirm!r}")
            start = int(row[0]) * _MS
            prices = row[1], row[2], row[3], row[4]
            out.append(build_candle(self.venue, symbol, start, *prices, row[volume_at], closed, None, recv_ns))
        return out

    def _liquidation(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        watched = self._liquidations.get(arg["instType"])
        if not watched:
            return []
        out: list[Event] = []
        for entry in data:
            inst_id = entry["instId"]
            if inst_id not in watched:
                continue  # the instType channel carries every instrument
            symbol = self._unified(inst_id)
            for item in entry["details"]:
                out.append(
                    Liquidation(
                        self.venue,
                        symbol,
                        _SIDES[item["side"]],
                        float(item["bkPx"]),
                        self._contracts.size(symbol, item["sz"], item["bkPx"]),
                        int(item["ts"]) * _MS,
                        recv_ns,
                    )
                )
        return out
