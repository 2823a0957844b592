"""Bitfinex WebSocket v2 public market data (``wss://api-pub.bitfinex.com/ws/2``).

Every rule below restates the venue fact sheet ``shared/exchanges/bitfinex.md``
(which cites docs.bitfinex.com ``ws-general``, ``ws-public``,
``ws-websocket-checksum`` and Bitfinex's own checksum samples).

Connection flow (sheet, "Connection flow")
    The server greets with ``{"event":"info","version":2,...}``. The client
    sends one ``{"event":"conf","flags":196608}`` per connection, before
    subscribing: ``131072`` (OB_CHECKSUM) makes the venue send
    ``[chanId,"cs",checksum,seq]`` after book changes and ``65536`` (SEQ_ALL)
    appends one per-connection sequence number to every array message. The
    adapter puts the ``conf`` in front of the first :meth:`subscribe` batch of
    a connection (:meth:`reset` re-arms it). Each subscription is answered by
    ``{"event":"subscribed","chanId":N,...}``; data messages then start with
    that ``chanId``, so the adapter keeps a per-connection ``chanId -> channel``
    map (cleared by :meth:`reset`). Unsubscribing names the ``chanId``.

Sequence (sheet, "Sequencing (SEQ_ALL)")
    The sequence is per **connection**, across all channels, heartbeats and
    checksum messages: every array message must carry previous + 1. A jump is a
    loss of unknown messages of unknown channels, so the adapter emits
    ``Gap(venue, "", Channel.BOOK, GapReason.SEQUENCE, ...)`` (the pipeline
    invalidates and resubscribes every book of the connection), one
    ``Gap(..., Channel.TRADES, ...)`` per trade subscription (trades may have
    been lost; they cannot be recovered, so no ``Resynced`` follows) and one
    ``Gap(..., Channel.L3, ...)`` per raw book. A number at or below the last
    one is a duplicate or a late message: it is dropped and counted
    (:attr:`BitfinexStats.duplicates`), never applied twice. The sequence
    element is read at its documented position (after the payload), not as
    "the last element", because Bitfinex may append fields.

Books, precision P0 (sheet, "Message shapes")
    Snapshot ``[chanId, [[PRICE,COUNT,AMOUNT], ...], seq]``, then one level per
    message ``[chanId, [PRICE,COUNT,AMOUNT], seq]``. AMOUNT > 0 is a bid,
    AMOUNT < 0 an ask (size = ``abs``). COUNT 0 deletes the level, AMOUNT 1 or
    -1 telling the side. Snapshots become :class:`~wsmux.BookSnapshot`, levels
    :class:`~wsmux.BookUpdate` (seq = the connection sequence, used as a
    ``MONOTONIC`` book id). There is no per-book sequence on Bitfinex.

Checksum (sheet, "Checksum")
    ``[chanId,"cs",CHECKSUM,seq]`` follows book changes; the value is a signed
    CRC32 over the top 25 bids and asks, interleaved, with asks' amounts
    negative, on **JavaScript number text**. The adapter turns it into a
    zero-level :class:`~wsmux.BookUpdate` whose ``checksum`` is the venue's
    value: :class:`~wsmux.book.BookSync` applies nothing and compares the
    checksum of the local book (:func:`wsmux.book.checksum.bitfinex_checksum`
    over ``OrderBook.text_depth``); a mismatch invalidates the book and the
    pipeline resubscribes it. Callers therefore see, after book changes, empty
    ``BookUpdate`` events carrying only ``checksum``.

    The rule does not treat a crossed book as broken (``check_crossed=False``):
    levels come one per message, so the book can be crossed *between* the
    messages of one change (a bid placed above an ask that the next message
    deletes). A book that is still crossed when the ``cs`` arrives disagrees
    with the venue's top 25 and fails the checksum (``GapReason.CHECKSUM``).

Number text
    Bitfinex sends JSON numbers, and orjson keeps only their float value.
    :func:`js_text` re-renders a float as JavaScript's ``Number#toString``
    does: the shortest digits that round-trip (Python's ``repr`` digits,
    the same for every double), plain notation in ``[1e-6, 1e21)``, exponent
    form (``1e-7``) outside. Bitfinex's servers write JSON with JavaScript, so
    the re-rendered text equals the text on the wire for every value that
    JavaScript wrote; the tests prove it against Node.js where available. A
    number written by anything else with extra digits (``0.10``) would not
    survive; Bitfinex does not send such text in the documented examples.

Raw books, precision R0 (sheet, "Message shapes")
    ``[ORDER_ID, PRICE, AMOUNT]``; PRICE 0 removes the order, otherwise the
    order is added or replaced (it may move price). They become
    :class:`~wsmux.L3Snapshot` and :class:`~wsmux.OrderUpdate` events:
    ``ADD`` for an id new on this channel, ``CHANGE`` for a known id (the
    price may differ: apply with :meth:`wsmux.book.l3.L3Book.upsert`),
    ``REMOVE`` for PRICE 0 (price = the order's last known price). ``seq`` is
    the connection sequence and ``first_seq`` the number after the channel's
    previous event, so the pipeline's L3 sync sees each raw book as an
    unbroken run although other channels interleave. Their ``cs`` messages
    are counted and dropped: no L3 event carries a checksum (see
    :func:`l3_checksum` to check an :class:`~wsmux.book.l3.L3Book`).

Trades (sheet, "Message shapes")
    Live trades come twice, as ``"te"`` (executed) and then ``"tu"`` (update):
    the adapter uses ``te`` (first to arrive) and drops ``tu``. The snapshot of
    recent trades sent on subscribing is history, not live data, and is
    dropped (counted in :attr:`BitfinexStats.history_dropped`). AMOUNT < 0
    means the taker sold. ``MTS`` (ms) becomes ``ts`` in ns. ``Trade.seq`` is
    ``None``: the connection sequence is not a per-symbol sequence.

Candles (Bitfinex's "Candles" page; the sheet does not list the channel)
    Channel ``candles`` with key ``trade:1m:tBTCUSD``; the subscribed ack names
    the ``key``, not a ``symbol``. Rows are ``[MTS,
    OPEN, CLOSE, HIGH, LOW, VOLUME]`` (note the order: close before high).
    The snapshot on subscribing is the recent history (newest first): it
    becomes one :class:`~wsmux.Candle` per row, oldest first, ``closed`` for
    all but the newest (a later candle exists, so they are final). An update
    row is the forming (or a just-corrected) candle: ``closed`` False, as
    Bitfinex never says a candle is final. ``ts`` is None (``MTS`` is the
    candle's start). Candles carry no sequence of their own; the connection
    sequence is checked as for every message.

Symbols (sheet, "Endpoints")
    ``BTC-USD`` is ``tBTCUSD``; when a side is longer than 3 characters the
    colon form is used (``tTESTBTC:TESTUSD``); perpetuals are ``tBTCF0:USTF0``
    (``BTC-USDT-PERP``). Bitfinex calls USDT ``UST`` (not in the sheet; seen in
    Bitfinex's own pair lists). Amounts are in base units on spot and perps.

Events (sheet, "Connection flow")
    ``info`` code 20051 (server restarting: reconnect) raises
    :class:`~wsmux.errors.RemoteError` so it is reported; 20060 (maintenance
    start) is ignored; 20061 (maintenance end: resubscribe) yields the same
    connection-wide gaps as a sequence jump, so every book is resubscribed.
    ``error`` events raise :class:`~wsmux.errors.SubscriptionRejected`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, OrderBook, SnapshotSource, SyncRule
from wsmux.book.checksum import INTERLEAVED_DEPTH, bitfinex_checksum, bitfinex_format
from wsmux.book.l3 import L3Book
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownSymbol
from wsmux.exchanges._candles import build_candle
from wsmux.exchanges._reference import BODY_ERRORS, json_body
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Event,
    Gap,
    GapReason,
    Instrument,
    Integrity,
    L3Snapshot,
    OrderAction,
    OrderUpdate,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "CONF_FLAGS",
    "BitfinexAdapter",
    "BitfinexStats",
    "book_checksum",
    "from_native",
    "js_text",
    "l3_checksum",
    "to_native",
]

#: OB_CHECKSUM (131072) | SEQ_ALL (65536), sheet "Connection flow".
CONF_FLAGS = 131072 | 65536

_BID = BookSide.BID
_ASK = BookSide.ASK
_NAN = float("nan")
_MAX_SAFE = 2**53

# Channel kinds in the chanId map.
_BOOK = 0
_RAW = 1
_TRADES = 2
_CANDLES = 3
_OTHER = 4
_CANDLE_KEY = "trade:1m:"
"""Prefix of the ``candles`` key of one-minute trade candles (``trade:1m:tBTCUSD``)."""

#: Unified asset code -> Bitfinex code, where they differ.
_ALIASES = {"USDT": "UST"}
_UNALIASES = {v: k for k, v in _ALIASES.items()}


# --- numbers ---------------------------------------------------------------------


def js_text(value: Any) -> str:
    """JavaScript's ``Number#toString`` text of a number decoded from JSON.

    ``60400 -> "60400"``, ``0.68826974 -> "0.68826974"``, ``-0.5 -> "-0.5"``,
    ``1e-07 -> "1e-7"``, ``1e16 -> "10000000000000000"``. Floats in the common
    range take a fast path (``repr``, ``.0`` dropped); the rest go through
    :func:`wsmux.book.checksum.bitfinex_format`. Integers beyond 2**53 are
    rendered as the double JavaScript would hold.

    Raises:
        TypeError: ``value`` is not an ``int`` or ``float`` (``bool`` and
            strings included).
        ConfigError: ``value`` is not finite.
    """
    cls = type(value)
    if cls is float:
        text = repr(value)
        if text[-2:] == ".0":
            return text[:-2] if value else "0"  # -0.0 prints "0" in JavaScript
        if "e" in text:
            return bitfinex_format(value)
        return text
    if cls is int:
        if -_MAX_SAFE <= value <= _MAX_SAFE:
            return str(value)
        return js_text(float(value))
    raise TypeError(f"expected a JSON number, got {cls.__name__}")


def _number(value: Any) -> float:
    """A JSON number as float (``bool`` and strings rejected with TypeError)."""
    cls = type(value)
    if cls is float or cls is int:
        return float(value)
    raise TypeError(f"expected a JSON number, got {cls.__name__}")


def _amount(value: Any) -> tuple[float, str]:
    """``(abs value, text of abs value)`` of a signed Bitfinex amount."""
    text = js_text(value)
    if text[0] == "-":
        return -float(value), text[1:]
    return float(value), text


# --- symbols ---------------------------------------------------------------------


def to_native(symbol: str) -> str:
    """Bitfinex's trading symbol for a unified one.

    ``BTC-USD -> tBTCUSD``, ``TESTBTC-TESTUSD -> tTESTBTC:TESTUSD``,
    ``BTC-USDT -> tBTCUST``, ``BTC-USDT-PERP -> tBTCF0:USTF0``.

    Raises:
        UnknownSymbol: malformed, or a dated future (Bitfinex lists none).
    """
    base, quote, kind = parse_symbol(symbol)
    base = _ALIASES.get(base, base)
    quote = _ALIASES.get(quote, quote)
    if kind == "PERP":
        return f"t{base}F0:{quote}F0"
    if kind is not None:
        raise UnknownSymbol(f"bitfinex lists no dated futures: {symbol!r}")
    if len(base) == 3 and len(quote) == 3:
        return f"t{base}{quote}"
    return f"t{base}:{quote}"


def from_native(native: str) -> str:
    """The unified symbol of a Bitfinex trading symbol (inverse of :func:`to_native`).

    Raises:
        UnknownSymbol: not a trading pair in one of the documented forms.
    """
    if not native.startswith("t") or len(native) < 7:
        raise UnknownSymbol(f"not a bitfinex trading pair: {native!r}")
    body = native[1:]
    if ":" in body:
        base, _, quote = body.partition(":")
    elif len(body) == 6:
        base, quote = body[:3], body[3:]
    else:
        raise UnknownSymbol(f"not a bitfinex trading pair: {native!r}")
    suffix = ""
    if base.endswith("F0") and quote.endswith("F0") and len(base) > 2 and len(quote) > 2:
        base, quote, suffix = base[:-2], quote[:-2], "-PERP"
    unified = f"{_UNALIASES.get(base, base)}-{_UNALIASES.get(quote, quote)}{suffix}"
    parse_symbol(unified)  # validates the shape
    return unified


# --- checksums -------------------------------------------------------------------


def book_checksum(book: OrderBook) -> int:
    """Bitfinex's P0 checksum of a ``keep_text`` :class:`~wsmux.book.OrderBook`.

    The rule's ``SyncRule.checksum``: top 25 levels per side of the kept
    venue text, :func:`wsmux.book.checksum.bitfinex_checksum`. O(25).
    """
    return bitfinex_checksum(book.text_depth(_BID, INTERLEAVED_DEPTH), book.text_depth(_ASK, INTERLEAVED_DEPTH))


def l3_checksum(book: L3Book) -> int:
    """Bitfinex's R0 (raw book) checksum of an :class:`~wsmux.book.l3.L3Book`.

    Sheet, "Checksum": for raw books the ORDER_ID takes the place of the
    price. Orders are taken best price first and, within one price, in the
    book's arrival order (the venue's tie-break is UNCONFIRMED in the sheet).
    Order ids and sizes are rendered with :func:`js_text`, which reproduces the
    venue's text for values decoded from its JSON. O(25).
    """
    sides: list[list[tuple[str, str]]] = []
    for side in (_BID, _ASK):
        out: list[tuple[str, str]] = []
        for price, _size in book.levels(side):
            for order in book.orders_at(price, side):
                oid = order.order_id
                out.append((oid if isinstance(oid, str) else js_text(oid), js_text(order.size)))
                if len(out) >= INTERLEAVED_DEPTH:
                    break
            if len(out) >= INTERLEAVED_DEPTH:
                break
        sides.append(out)
    return bitfinex_checksum(sides[0], sides[1])


# --- adapter ---------------------------------------------------------------------


@attrs.define(slots=True)
class BitfinexStats:
    """Counters of one adapter (cumulative across :meth:`BitfinexAdapter.reset`).

    Attributes:
        duplicates: array messages whose connection sequence was not above the
            last one (dropped).
        seq_gaps: connection-sequence jumps (each produced Gap events).
        unsequenced: array messages without a sequence number (the ``conf``
            was not honoured; continuity cannot be checked for them).
        unknown_channel: data for a ``chanId`` not (or no longer) subscribed.
        history_dropped: trade-history snapshots dropped on subscribing.
        l3_checksums: raw-book ``cs`` messages dropped (no L3 checksum event).
    """

    duplicates: int = 0
    seq_gaps: int = 0
    unsequenced: int = 0
    unknown_channel: int = 0
    history_dropped: int = 0
    l3_checksums: int = 0


class _Chan:
    """One subscribed channel of the connection."""

    __slots__ = ("kind", "last", "orders", "symbol")

    def __init__(self, kind: int, symbol: str) -> None:
        self.kind = kind
        self.symbol = symbol
        self.last: int | None = None
        """R0: connection sequence of this channel's last event."""
        self.orders: dict[Any, float] = {}
        """R0: order id -> last price (to tell ADD from CHANGE and price removals)."""


def _length(depth: int | None, default: str) -> str:
    """The Bitfinex ``len`` for a requested depth: 1, 25, 100 or 250 (sheet)."""
    if depth is None:
        return default
    for allowed in (1, 25, 100):
        if depth <= allowed:
            return str(allowed)
    return "250"


_BOOK_RULE = SyncRule(
    snapshot=SnapshotSource.STREAM,
    continuity=Continuity.MONOTONIC,
    checksum=book_checksum,
    keep_text=True,
    # One level per message: between two messages of one engine step the book
    # may be crossed (a new bid arrives before the delete of the ask it
    # crossed). The ``cs`` after every change checks the top 25 of both sides,
    # so a book that stays crossed fails the checksum instead.
    check_crossed=False,
    # the connection's SEQ_ALL numbers (always on, see CONF_FLAGS) are checked by the
    # adapter, and every change is followed by a checksum
    integrity=Integrity.SEQUENCE_AND_CHECKSUM,
)
_RULES_BY_LENGTH: dict[int, SyncRule] = {}


class BitfinexAdapter(Adapter):
    """Bitfinex WS v2 public channels: P0 books (L2), R0 raw books (L3), trades, candles.

    See the module docstring for every venue rule and its source. One instance
    per connection; :meth:`reset` forgets the connection's channel ids,
    sequence and ``conf`` state.

    Attributes:
        stats: cumulative counters (:class:`BitfinexStats`).
    """

    venue: ClassVar[str] = "bitfinex"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.BOOK, Channel.L3, Channel.TRADES, Channel.CANDLES})
    default_url: ClassVar[str] = "wss://api-pub.bitfinex.com/ws/2"
    default_rest_url: ClassVar[str] = "https://api-pub.bitfinex.com"
    # Sheet "Limits": 25 channels per connection, 20 connections per minute per
    # IP. One subscribe message names one channel. The client message-rate cap
    # is UNCONFIRMED; 5/s is a conservative pace.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=25,
        topics_per_message=1,
        messages_per_second=5.0,
        connections_per_window=20,
        connection_window=60.0,
    )
    # Sheet "Heartbeat": the server sends [chanId,"hb",seq] per channel about
    # every 15 s; no client ping is needed.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ws_ping_interval=20.0, silence_timeout=45.0, stale_after=30.0
    )

    book_length: ClassVar[str] = "100"
    """``len`` of P0 subscriptions without a depth (sheet: 25/100 safe)."""
    raw_length: ClassVar[str] = "100"
    """``len`` of R0 subscriptions without a depth."""

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self.stats = BitfinexStats()
        self._native: dict[str, str] = {}
        self._chans: dict[int, _Chan] = {}
        self._seq: int | None = None
        self._conf_sent = False

    # --- connection ---------------------------------------------------------------

    def reset(self) -> None:
        """Forget the connection: channel ids, sequence, ``conf`` sent."""
        self._chans.clear()
        self._seq = None
        self._conf_sent = False

    @property
    def seq(self) -> int | None:
        """The last connection sequence number seen (None before the first)."""
        return self._seq

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """One message per subscription, preceded by the connection's ``conf``
        on the first call after connecting (sheet: conf before subscribing)."""
        out: list[Outgoing] = []
        if not self._conf_sent:
            out.append(dumps({"event": "conf", "flags": CONF_FLAGS}))
            self._conf_sent = True
        for sub in subscriptions:
            self.check(sub)
            native = to_native(sub.symbol)
            self._native[native] = sub.symbol
            if sub.channel is Channel.BOOK:
                msg: dict[str, Any] = {
                    "event": "subscribe",
                    "channel": "book",
                    "symbol": native,
                    "prec": "P0",
                    "freq": "F0",
                    "len": _length(sub.depth, self.book_length),
                }
            elif sub.channel is Channel.L3:
                msg = {
                    "event": "subscribe",
                    "channel": "book",
                    "symbol": native,
                    "prec": "R0",
                    "len": _length(sub.depth, self.raw_length),
                }
            elif sub.channel is Channel.CANDLES:
                msg = {"event": "subscribe", "channel": "candles", "key": _CANDLE_KEY + native}
            else:
                msg = {"event": "subscribe", "channel": "trades", "symbol": native}
            out.append(dumps(msg))
        return out

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """``{"event":"unsubscribe","chanId":N}`` for each subscription whose
        ``chanId`` is known on this connection (none otherwise)."""
        out: list[Outgoing] = []
        for sub in subscriptions:
            kind = _KIND_OF_CHANNEL.get(sub.channel)
            for chan_id, chan in self._chans.items():
                if chan.kind == kind and chan.symbol == sub.symbol:
                    out.append(dumps({"event": "unsubscribe", "chanId": chan_id}))
        return out

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """Bitfinex's symbol (``tBTCUSD``); see :func:`to_native`."""
        return to_native(symbol)

    # --- reference data ---------------------------------------------------------------

    def instruments_request(self, kind: str = "exchange") -> HttpRequest | None:
        """``GET <rest>/v2/conf/pub:list:pair:exchange`` (bitfinex.md, "Symbols";
        ``kind="futures"`` lists the perpetuals)."""
        return HttpRequest(f"{self.rest_url}/v2/conf/pub:list:pair:{kind}")

    def instruments_requests(self) -> list[HttpRequest]:
        """The spot pairs and the perpetuals (``pub:list:pair:futures``)."""
        return [r for r in (self.instruments_request("exchange"), self.instruments_request("futures")) if r]

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """``[["BTCUSD", "TESTBTC:TESTUSD", "BTCF0:USTF0", ...]]`` → instruments
        named by :func:`from_native` (unmappable names are left out). The
        lists carry no tick or lot sizes: Bitfinex prices have five
        significant digits, not a fixed tick."""
        msg = json_body(self.venue, body)
        out: list[Instrument] = []
        try:
            if msg.__class__ is not list or len(msg) != 1 or msg[0].__class__ is not list:
                raise TypeError("expected [[pair, ...]]")
            for name in msg[0]:
                native = "t" + name
                try:
                    symbol = from_native(native)
                except UnknownSymbol:
                    continue
                out.append(Instrument(self.venue, symbol, native, "perp" if symbol.endswith("-PERP") else "spot"))
        except BODY_ERRORS as exc:
            raise MalformedMessage(f"bitfinex: bad pair list: {exc!r}", body) from exc
        return out

    def book_rule(self, symbol: str) -> SyncRule:
        """Stream snapshots, connection sequence as a monotonic id, checksum on
        the kept text of the top 25 levels (module docstring)."""
        self.to_native(symbol)
        return _BOOK_RULE

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """:meth:`book_rule` with ``depth`` = the subscription's ``len``: the
        venue shows only that many levels per side, so the local book is cut
        to the same window (a no-op while the venue deletes the levels that
        leave it, a guard against stale deep levels otherwise)."""
        self.to_native(subscription.symbol)
        length = int(_length(subscription.depth, self.book_length))
        rule = _RULES_BY_LENGTH.get(length)
        if rule is None:
            rule = _RULES_BY_LENGTH[length] = attrs.evolve(_BOOK_RULE, depth=length)
        return rule

    # --- frames -------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> list[Event]:
        """Translate one frame (see the module docstring for each rule)."""
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        try:
            if type(msg) is list:
                return self._data(msg, frame, recv_ns)
            if type(msg) is dict:
                return self._event(msg, frame, recv_ns)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            if isinstance(exc, RemoteError):
                raise
            raise MalformedMessage(f"bad bitfinex message ({type(exc).__name__}: {exc})", frame) from exc
        raise MalformedMessage("unknown message type", frame)

    def _data(self, msg: list[Any], frame: bytes | str, recv_ns: int) -> list[Event]:
        chan_id = msg[0]
        body = msg[1]
        # Position of the SEQ_ALL number: after the payload.
        seq_at = 3 if type(body) is str and body != "hb" else 2
        events: list[Event] = []
        seq: int | None = None
        if len(msg) > seq_at:
            seq = msg[seq_at]
            if type(seq) is not int:
                raise MalformedMessage("sequence number is not an integer", frame)
            last = self._seq
            if last is not None and seq != last + 1:
                if seq <= last:
                    self.stats.duplicates += 1
                    return events
                self.stats.seq_gaps += 1
                events = self._gaps(last + 1, seq, recv_ns, f"connection sequence {seq} after {last}")
            self._seq = seq
        else:
            self.stats.unsequenced += 1
        chan = self._chans.get(chan_id)
        if chan is None:
            self.stats.unknown_channel += 1
            return events
        kind = chan.kind
        if type(body) is str:
            if body == "hb":
                return events
            if body == "cs":
                if kind == _BOOK:
                    checksum = msg[2]
                    if type(checksum) is not int:
                        raise MalformedMessage("checksum is not an integer", frame)
                    events.append(
                        BookUpdate(self.venue, chan.symbol, (), (), None, recv_ns, seq=seq, checksum=checksum)
                    )
                elif kind == _RAW:
                    self.stats.l3_checksums += 1
                elif kind == _TRADES:
                    raise MalformedMessage("unknown message type (checksum on a trades channel)", frame)
                return events
            if kind == _TRADES:
                if body == "te":
                    events.append(self._trade(chan.symbol, msg[2], recv_ns))
                    return events
                if body == "tu":
                    return events
            elif kind == _OTHER:
                return events
            raise MalformedMessage("unknown message type", frame)
        if type(body) is not list:
            raise MalformedMessage("payload is not a list", frame)
        if kind == _BOOK:
            if body and type(body[0]) is list:
                events.append(self._book_snapshot(chan.symbol, body, recv_ns, seq))
            elif body:
                events.append(self._book_update(chan.symbol, body, recv_ns, seq))
            else:
                events.append(BookSnapshot(self.venue, chan.symbol, (), (), None, recv_ns, seq, None, (), ()))
        elif kind == _RAW:
            if body and type(body[0]) is list:
                events.append(self._l3_snapshot(chan, body, recv_ns, seq))
            elif body:
                events.append(self._l3_update(chan, body, recv_ns, seq))
            else:
                chan.orders.clear()
                chan.last = seq
                events.append(L3Snapshot(self.venue, chan.symbol, (), None, recv_ns, seq))
        elif kind == _TRADES:
            self.stats.history_dropped += 1
        elif kind == _CANDLES:
            if body and type(body[0]) is list:  # the history snapshot, newest first
                rows = sorted(body, key=lambda row: _number(row[0]))
                events.extend(self._candle(chan.symbol, row, recv_ns, i < len(rows) - 1) for i, row in enumerate(rows))
            elif body:
                events.append(self._candle(chan.symbol, body, recv_ns, False))
        return events

    def _gaps(self, expected: int | None, received: int | None, recv_ns: int, detail: str) -> list[Event]:
        """Gap events for a loss of unknown messages on the whole connection."""
        venue = self.venue
        reason = GapReason.SEQUENCE
        events: list[Event] = [Gap(venue, "", Channel.BOOK, reason, expected, received, recv_ns, detail)]
        for chan in self._chans.values():
            if chan.kind == _TRADES:
                events.append(Gap(venue, chan.symbol, Channel.TRADES, reason, expected, received, recv_ns, detail))
            elif chan.kind == _RAW:
                events.append(Gap(venue, chan.symbol, Channel.L3, reason, expected, received, recv_ns, detail))
        return events

    # --- P0 books -----------------------------------------------------------------

    def _book_snapshot(self, symbol: str, body: list[Any], recv_ns: int, seq: int | None) -> BookSnapshot:
        bids: list[tuple[float, float, str, str]] = []
        asks: list[tuple[float, float, str, str]] = []
        for level in body:
            price = level[0]
            count = level[1]
            amount = level[2]
            if count == 0:
                continue  # a delete in a snapshot: nothing to delete
            ptext = js_text(price)
            size, stext = _amount(amount)
            if amount > 0:
                bids.append((float(price), size, ptext, stext))
            elif amount < 0:
                asks.append((float(price), size, ptext, stext))
            else:
                bids.append((float(price), _NAN, ptext, stext))  # BookSync: BAD_DATA
        bids.sort(key=lambda lv: -lv[0])
        asks.sort(key=lambda lv: lv[0])
        return BookSnapshot(
            self.venue,
            symbol,
            tuple([(lv[0], lv[1]) for lv in bids]),
            tuple([(lv[0], lv[1]) for lv in asks]),
            None,
            recv_ns,
            seq,
            None,
            tuple([(lv[2], lv[3]) for lv in bids]),
            tuple([(lv[2], lv[3]) for lv in asks]),
        )

    def _book_update(self, symbol: str, level: list[Any], recv_ns: int, seq: int | None) -> BookUpdate:
        price = level[0]
        count = level[1]
        amount = level[2]
        ptext = js_text(price)
        fprice = float(price)
        if type(count) is not int:
            raise TypeError("COUNT is not an integer")
        venue = self.venue
        if count == 0:
            # Delete: AMOUNT 1 names the bid side, -1 the ask side.
            entry = ((fprice, 0.0),)
            text = ((ptext, "0"),)
            if amount > 0:
                return BookUpdate(venue, symbol, entry, (), None, recv_ns, seq, None, None, None, text, ())
            if amount < 0:
                return BookUpdate(venue, symbol, (), entry, None, recv_ns, seq, None, None, None, (), text)
            size, stext = _NAN, "0"
        else:
            size, stext = _amount(amount)
            if amount < 0:
                return BookUpdate(
                    venue, symbol, (), ((fprice, size),), None, recv_ns,
                    seq, None, None, None, (), ((ptext, stext),),
                )  # fmt: skip
            if amount == 0:
                size = _NAN  # a live level of size 0: BookSync reports BAD_DATA
        return BookUpdate(
            venue, symbol, ((fprice, size),), (), None, recv_ns,
            seq, None, None, None, ((ptext, stext),), (),
        )  # fmt: skip

    # --- R0 raw books ---------------------------------------------------------------

    def _l3_snapshot(self, chan: _Chan, body: list[Any], recv_ns: int, seq: int | None) -> L3Snapshot:
        orders_map = chan.orders
        orders_map.clear()
        chan.last = seq
        orders: list[tuple[str, BookSide, float, float]] = []
        for entry in body:
            oid = entry[0]
            price = _number(entry[1])
            amount = _number(entry[2])
            if type(oid) is not int:
                raise TypeError("ORDER_ID is not an integer")
            if price == 0.0:
                continue
            orders_map[oid] = price
            if amount >= 0.0:
                orders.append((str(oid), _BID, price, amount))
            else:
                orders.append((str(oid), _ASK, price, -amount))
        return L3Snapshot(self.venue, chan.symbol, tuple(orders), None, recv_ns, seq)

    def _l3_update(self, chan: _Chan, entry: list[Any], recv_ns: int, seq: int | None) -> OrderUpdate:
        oid = entry[0]
        price = _number(entry[1])
        amount = _number(entry[2])
        if type(oid) is not int:
            raise TypeError("ORDER_ID is not an integer")
        # The update stands for every connection number since this channel's
        # previous event (other channels' messages, heartbeats, checksums).
        last = chan.last
        first = last + 1 if last is not None and seq is not None else seq
        chan.last = seq
        side = _BID if amount > 0.0 else _ASK
        orders = chan.orders
        oid_text = str(oid)
        if price == 0.0:
            old = orders.pop(oid, 0.0)
            return OrderUpdate(
                self.venue, chan.symbol, OrderAction.REMOVE, oid_text, side, old, 0.0, None, recv_ns, seq, first
            )
        action = OrderAction.CHANGE if oid in orders else OrderAction.ADD
        orders[oid] = price
        return OrderUpdate(
            self.venue, chan.symbol, action, oid_text, side, price, abs(amount), None, recv_ns, seq, first
        )

    # --- trades ---------------------------------------------------------------------

    def _trade(self, symbol: str, row: list[Any], recv_ns: int) -> Trade:
        trade_id = row[0]
        mts = row[1]
        amount = row[2]
        price = row[3]
        if type(mts) is not int:
            raise TypeError("MTS is not an integer")
        if type(trade_id) is not int:
            raise TypeError("trade ID is not an integer")
        famount = _number(amount)
        if famount > 0.0:
            side: Side | None = Side.BUY
        elif famount < 0.0:
            side = Side.SELL
            famount = -famount
        else:
            side = None
        return Trade(self.venue, symbol, _number(price), famount, side, str(trade_id), mts * 1_000_000, recv_ns)

    # --- candles --------------------------------------------------------------------

    def _candle(self, symbol: str, row: list[Any], recv_ns: int, closed: bool) -> Candle:
        mts = row[0]
        if type(mts) is not int:
            raise TypeError("MTS is not an integer")
        open_, close, high, low, volume = (_number(v) for v in row[1:6])
        return build_candle(self.venue, symbol, mts * 1_000_000, open_, high, low, close, volume, closed, None, recv_ns)

    # --- events ---------------------------------------------------------------------

    def _event(self, msg: dict[str, Any], frame: bytes | str, recv_ns: int) -> list[Event]:
        event = msg["event"]
        if event == "subscribed":
            chan_id = msg["chanId"]
            if type(chan_id) is not int:
                raise TypeError("chanId is not an integer")
            channel = msg["channel"]
            if channel == "candles":
                key = msg["key"]
                # one-minute trade candles; another key (interval) is kept as _OTHER
                native = key[len(_CANDLE_KEY) :] if key.startswith(_CANDLE_KEY) else None
            else:
                native = msg["symbol"]
            symbol = "" if native is None else self._native.get(native) or from_native(native)
            if channel == "book":
                prec = msg.get("prec", "P0")
                kind = _RAW if prec == "R0" else _BOOK if prec == "P0" else _OTHER
            elif channel == "trades":
                kind = _TRADES
            elif channel == "candles" and native is not None:
                kind = _CANDLES
            else:
                kind = _OTHER
            self._chans[chan_id] = _Chan(kind, symbol)
            return []
        if event == "unsubscribed":
            self._chans.pop(msg["chanId"], None)
            return []
        if event == "info":
            code = msg.get("code")
            if code is None:
                return []  # greeting: {"event":"info","version":2,"platform":{"status":1}}
            if code == 20051:
                raise RemoteError(f"bitfinex asks clients to reconnect (info 20051): {msg.get('msg', '')}")
            if code == 20061:
                return self._gaps(None, None, recv_ns, "maintenance ended (info 20061): resubscribing")
            return []  # 20060 maintenance start: data pauses
        if event == "conf":
            if msg.get("status") != "OK":
                raise RemoteError(f"bitfinex refused the conf flags: {msg!r}")
            return []
        if event == "error":
            raise SubscriptionRejected(
                f"bitfinex error {msg.get('code')}: {msg.get('msg')} "
                f"(channel={msg.get('channel')!r}, symbol={msg.get('symbol')!r})"
            )
        if event == "pong":
            return []
        raise MalformedMessage("unknown message type", frame)


_KIND_OF_CHANNEL = {Channel.BOOK: _BOOK, Channel.L3: _RAW, Channel.TRADES: _TRADES, Channel.CANDLES: _CANDLES}
