"""OKX v5 public market data: :class:`OkxAdapter` (venue id ``"okx"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/okx-v5.md``
(which cites cryptofeed's OKX implementation and 2022 recording, OKX's 2023
endpoint notice and third-party 2026 live checks; the OKX v5 docs themselves
were not available, so rules the sheet marks UNCONFIRMED are flagged here too).
Each rule is restated where it is enforced:

* **Endpoint.** ``wss://ws.okx.com:8443/ws/v5/public`` carries every channel
  used here (``books``, ``bbo-tbt``, ``trades``, ``funding-rate``,
  ``open-interest``, ``liquidation-orders``); ``wsaws.okx.com`` is the AWS
  mirror.
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
the base currency. **Sizes of SWAP and FUTURES instruments (book levels,
trades, liquidations) are in contracts**, as OKX sends them: the sheet gives no
contract values (``ctVal`` comes from the instruments REST endpoint), so wsmux
does not convert them; multiply by the instrument's ``ctVal`` for base units
(OKX lists e.g. ``BTC-USDT-SWAP`` with a contract value in BTC). Open interest
uses ``oiCcy`` (base currency) when present, else ``oi`` (contracts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, Limits, Outgoing
from wsmux.book import Continuity, Diff, OrderBook, SnapshotSource, SyncRule
from wsmux.book.checksum import INTERLEAVED_DEPTH, okx_checksum
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.model import (
    BookSide,
    BookSnapshot,
    Channel,
    Event,
    Funding,
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
}
# Events that carry no market data, and those that report a refusal.
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

    **Sizes of swaps and futures are in contracts** (not converted: the sheet
    gives no contract values).
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
        # instType -> instIds whose liquidations were asked for on this connection
        self._liquidations: dict[str, set[str]] = {}
        self._handlers: dict[str, _Handler] = {
            "books": self._books,
            "bbo-tbt": self._bbo,
            "trades": self._trades,
            "funding-rate": self._funding,
            "open-interest": self._open_interest,
            "liquidation-orders": self._liquidation,
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
                out.append(BookSnapshot(venue, symbol, bids, asks, ts, recv_ns, seq, checksum, bids_text, asks_text))
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
            seq = _int_or_none(entry.get("seqId"), "seqId")
            out.append(Quote(self.venue, symbol, bp, bs, ap, az, int(entry["ts"]) * _MS, recv_ns, seq))
        return out

    def _trades(self, msg: Any, arg: Any, data: Any, recv_ns: int) -> list[Event]:
        venue = self.venue
        unified = self._unified
        return [
            Trade(
                venue,
                unified(entry["instId"]),
                float(entry["px"]),
                float(entry["sz"]),
                _SIDES[entry["side"]],
                str(entry["tradeId"]),
                int(entry["ts"]) * _MS,
                recv_ns,
            )
            for entry in data
        ]

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
            oi = entry.get("oiCcy") or entry["oi"]
            ts = entry.get("ts")
            out.append(OpenInterest(self.venue, symbol, float(oi), int(ts) * _MS if ts else None, recv_ns))
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
                        float(item["sz"]),
                        int(item["ts"]) * _MS,
                        recv_ns,
                    )
                )
        return out
