"""Normalized, immutable event types.

Every event a :class:`wsmux.Stream` yields is one of the classes below. They are
frozen ``attrs`` classes with slots: values, never live state. Market events
carry

* ``venue`` — the venue id (``"binance"``, ``"kraken"``, ...),
* ``symbol`` — the unified symbol (``"BTC-USDT"``, ``"BTC-USDT-PERP"``),
* ``ts`` — the venue's own timestamp in integer nanoseconds since the epoch,
  or ``None`` when the venue sends none,
* ``recv_ns`` — the local receive time of the frame that carried the event,
  ``time.time_ns()`` stamped once when the frame arrived,
* ``seq`` — the venue's sequence/update id where it has one, else ``None``.

Prices and sizes are ``float`` in base units: the same decimal text always
gives the same float, so level identity is exact (see ``docs/design``).
Checksum venues additionally carry the venue's original text of each level in
``bids_text``/``asks_text`` so checksums are computed from the venue's text,
never from ``str(float)``.

Conversion to and from plain dicts lives in :mod:`wsmux.convert`; these
classes know nothing about serialization.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

import attrs

__all__ = [
    "Backfilled",
    "BookSide",
    "BookSnapshot",
    "BookUpdate",
    "Channel",
    "ConnectFailed",
    "ConsolidatedQuote",
    "Connected",
    "Disconnected",
    "Dropped",
    "Error",
    "ErrorKind",
    "Event",
    "Funding",
    "Gap",
    "GapReason",
    "L3Snapshot",
    "Level",
    "Levels",
    "Liquidation",
    "MarketEvent",
    "OpenInterest",
    "OrderAction",
    "OrderUpdate",
    "Quote",
    "Resynced",
    "Side",
    "SlowConsumer",
    "Stale",
    "StatusEvent",
    "TextLevels",
    "Trade",
]

Level: TypeAlias = tuple[float, float]
"""One book level: ``(price, size)``. A size of ``0.0`` in an update deletes the level."""
Levels: TypeAlias = tuple[Level, ...]
TextLevels: TypeAlias = tuple[tuple[str, str], ...]
"""The venue's own text of ``(price, size)`` per level, kept only for checksums."""


class Side(enum.Enum):
    """The aggressor (taker) side of a trade or the side of a liquidation order."""

    BUY = "buy"
    SELL = "sell"


class BookSide(enum.Enum):
    """A side of an order book."""

    BID = "bid"
    ASK = "ask"


class Channel(enum.Enum):
    """A kind of market data a caller subscribes to."""

    TRADES = "trades"
    QUOTES = "quotes"
    """Best bid and offer (top of book)."""
    BOOK = "book"
    """Full-depth L2 book, kept in sync by wsmux."""
    L3 = "l3"
    """Order-by-order book."""
    FUNDING = "funding"
    OPEN_INTEREST = "open_interest"
    LIQUIDATIONS = "liquidations"


class OrderAction(enum.Enum):
    """What an L3 :class:`OrderUpdate` does to the order book."""

    ADD = "add"
    CHANGE = "change"
    """``size`` is the order's new remaining size (``price`` may move it)."""
    REMOVE = "remove"
    FILL = "fill"
    """``size`` is the amount just traded against the resting order: its
    remaining size drops by that much (removed at zero). Venues that report
    fills rather than remaining sizes (Coinbase ``full`` ``match``) emit it;
    the pipeline's L3 sync delivers it to callers as ``CHANGE``/``REMOVE``."""


class GapReason(enum.Enum):
    """Why a book or stream lost continuity."""

    SEQUENCE = "sequence"
    """An update id / sequence number was skipped."""
    BRIDGE = "bridge"
    """The first update after a snapshot does not connect to it."""
    CHECKSUM = "checksum"
    """The venue's checksum disagrees with the local book."""
    CROSSED = "crossed"
    """Best bid >= best ask on a book the venue says is consistent."""
    DISCONNECT = "disconnect"
    """The connection carrying the feed was lost."""
    SNAPSHOT_FAILED = "snapshot_failed"
    """The REST snapshot needed to (re)build the book could not be fetched."""
    BAD_DATA = "bad_data"
    """An update could not be applied (malformed levels)."""
    TRADE_ID = "trade_id"
    """Trade ids are not contiguous: trades were missed."""


class ErrorKind(enum.Enum):
    """The class of an :class:`Error` event."""

    MALFORMED = "malformed"
    """A frame could not be decoded or lacked required fields."""
    UNKNOWN_MESSAGE = "unknown_message"
    """A well-formed message of a type the adapter does not know."""
    VENUE_ERROR = "venue_error"
    """The venue reported an error (e.g. a rejected subscription)."""
    SNAPSHOT = "snapshot"
    """A REST snapshot request failed."""
    TRANSPORT = "transport"
    """The connection failed."""
    CALLBACK = "callback"
    """A user callback raised; the exception is reported, not propagated."""
    BAD_DATA = "bad_data"
    """An event failed a data-quality check (bad price/size, crossed quote,
    sequence going backwards) and was withheld."""
    CIRCUIT = "circuit"
    """A venue's circuit breaker changed state (open: its market data is
    withheld until it recovers)."""


class Event:
    """Base class of every event (market data and status)."""

    __slots__ = ()


class MarketEvent(Event):
    """Base class of market-data events."""

    __slots__ = ()


class StatusEvent(Event):
    """Base class of events about the feed itself (connection, gaps, errors)."""

    __slots__ = ()


# --- market data ---------------------------------------------------------------


@attrs.frozen(slots=True)
class Trade(MarketEvent):
    """One trade (a fill between a taker and a maker).

    Attributes:
        side: the taker's side, or ``None`` when the venue does not say.
        trade_id: the venue's trade id as text (unique per venue and symbol).
    """

    venue: str
    symbol: str
    price: float
    size: float
    side: Side | None
    trade_id: str | None
    ts: int | None
    recv_ns: int
    seq: int | None = None


@attrs.frozen(slots=True)
class Quote(MarketEvent):
    """Best bid and offer. A side with no order has price and size ``nan``."""

    venue: str
    symbol: str
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    ts: int | None
    recv_ns: int
    seq: int | None = None


@attrs.frozen(slots=True)
class BookSnapshot(MarketEvent):
    """A full (or venue-capped) book: replaces whatever was there.

    Levels are best first: bids descending, asks ascending.
    """

    venue: str
    symbol: str
    bids: Levels
    asks: Levels
    ts: int | None
    recv_ns: int
    seq: int | None = None
    checksum: int | None = None
    bids_text: TextLevels | None = None
    asks_text: TextLevels | None = None


@attrs.frozen(slots=True)
class BookUpdate(MarketEvent):
    """Changes to some levels of a book. Sizes are absolute; ``0.0`` deletes.

    Attributes:
        seq: the last update id covered by this update (Binance ``u``,
            OKX ``seqId``, ...).
        first_seq: the first update id covered (Binance ``U``), if any.
        prev_seq: the update id this update follows (Binance futures ``pu``,
            OKX ``prevSeqId``), if any.
        checksum: the venue's checksum of the book after this update.
    """

    venue: str
    symbol: str
    bids: Levels
    asks: Levels
    ts: int | None
    recv_ns: int
    seq: int | None = None
    first_seq: int | None = None
    prev_seq: int | None = None
    checksum: int | None = None
    bids_text: TextLevels | None = None
    asks_text: TextLevels | None = None


@attrs.frozen(slots=True)
class L3Snapshot(MarketEvent):
    """A full order-by-order book: ``orders`` are ``(order_id, side, price, size)``."""

    venue: str
    symbol: str
    orders: tuple[tuple[str, BookSide, float, float], ...]
    ts: int | None
    recv_ns: int
    seq: int | None = None


@attrs.frozen(slots=True)
class OrderUpdate(MarketEvent):
    """One change to an order-by-order book.

    Attributes:
        seq: the venue sequence number of the message carrying the change.
        first_seq: where the venue numbers messages that do not change the
            book (Coinbase ``received``), the first sequence number this
            update covers: the update stands for ``[first_seq, seq]``, so
            continuity is ``first_seq == previous seq + 1``. ``None``: only
            ``seq``.
    """

    venue: str
    symbol: str
    action: OrderAction
    order_id: str
    side: BookSide
    price: float
    size: float
    ts: int | None
    recv_ns: int
    seq: int | None = None
    first_seq: int | None = None


@attrs.frozen(slots=True)
class Funding(MarketEvent):
    """Funding rate of a perpetual swap.

    Attributes:
        rate: the current (or predicted) funding rate as a fraction (0.0001 = 1 bp).
        next_funding_ts: when the next funding happens (ns), if the venue says.
        mark_price: the mark price, where the venue sends it with the rate.
    """

    venue: str
    symbol: str
    rate: float
    next_funding_ts: int | None
    mark_price: float | None
    ts: int | None
    recv_ns: int


@attrs.frozen(slots=True)
class OpenInterest(MarketEvent):
    """Open interest, in base units (contracts converted where the venue uses them)."""

    venue: str
    symbol: str
    open_interest: float
    ts: int | None
    recv_ns: int


@attrs.frozen(slots=True)
class Liquidation(MarketEvent):
    """A forced liquidation order. ``side`` is the side of the liquidation order."""

    venue: str
    symbol: str
    side: Side
    price: float
    size: float
    ts: int | None
    recv_ns: int


@attrs.frozen(slots=True)
class ConsolidatedQuote(MarketEvent):
    """Best bid and offer across venues for one unified symbol.

    ``venue`` is ``"*"``; ``bid_venue``/``ask_venue`` say where the best
    prices are. A side with no valid venue has price and size ``nan`` and
    venue ``""``.
    """

    venue: str
    symbol: str
    bid_price: float
    bid_size: float
    bid_venue: str
    ask_price: float
    ask_size: float
    ask_venue: str
    recv_ns: int


# --- status --------------------------------------------------------------------


@attrs.frozen(slots=True)
class Connected(StatusEvent):
    """A connection to a venue is open and its subscriptions were sent."""

    venue: str
    conn_id: int
    url: str
    recv_ns: int


@attrs.frozen(slots=True)
class Disconnected(StatusEvent):
    """A connection was lost (or closed); ``reconnecting`` says whether wsmux will retry."""

    venue: str
    conn_id: int
    reason: str
    reconnecting: bool
    recv_ns: int


@attrs.frozen(slots=True)
class ConnectFailed(StatusEvent):
    """An attempt to open a connection failed (DNS failure, refused connection,
    handshake timeout or rejection...): sent for every failed attempt.

    Attributes:
        reason: what went wrong, in words.
        attempt: failed attempts in a row (1 for the first).
        retry_in: seconds until the next attempt, or None if wsmux gave up
            (a final error such as HTTP 401/403 on the handshake).
    """

    venue: str
    conn_id: int
    url: str
    reason: str
    attempt: int
    retry_in: float | None
    recv_ns: int


@attrs.frozen(slots=True)
class Gap(StatusEvent):
    """Continuity was lost: the book (or trade tape) for ``symbol`` is now invalid.

    A :class:`Resynced` for the same venue, symbol and channel follows once the
    book is rebuilt.

    Attributes:
        expected: the sequence/update id wsmux expected next, where known.
        received: the id that arrived instead, where known.
    """

    venue: str
    symbol: str
    channel: Channel
    reason: GapReason
    expected: int | None
    received: int | None
    recv_ns: int
    detail: str = ""


@attrs.frozen(slots=True)
class Resynced(StatusEvent):
    """The book for ``symbol`` is valid again after a :class:`Gap` (or initial sync)."""

    venue: str
    symbol: str
    channel: Channel
    seq: int | None
    recv_ns: int


@attrs.frozen(slots=True)
class Stale(StatusEvent):
    """No data arrived for ``silent_ns`` nanoseconds (``symbol`` None: whole connection)."""

    venue: str
    symbol: str | None
    channel: Channel | None
    silent_ns: int
    recv_ns: int


@attrs.frozen(slots=True)
class Error(StatusEvent):
    """A reported, non-fatal problem: bad data from a venue, a failed snapshot, a
    callback that raised. The multiplexer keeps running."""

    venue: str | None
    symbol: str | None
    kind: ErrorKind
    message: str
    recv_ns: int


@attrs.frozen(slots=True)
class Dropped(StatusEvent):
    """Events were dropped by a stream's overflow policy (reported, never silent)."""

    stream: str
    count: int
    reason: str
    recv_ns: int


@attrs.frozen(slots=True)
class SlowConsumer(StatusEvent):
    """A stream's consumer fell behind: ``buffered`` events wait (of ``maxsize``).

    Delivered in-band to that stream when its buffer passes the high-water
    mark (80 %), once per episode (re-armed when it drains below 50 %).
    Other streams are unaffected.
    """

    stream: str
    buffered: int
    maxsize: int
    recv_ns: int


@attrs.frozen(slots=True)
class Backfilled(StatusEvent):
    """A REST backfill of missing trades finished.

    The recovered trades were delivered (as ordinary ``Trade`` events, older
    than the live ones around them) just before this event. ``missing``
    lists the id ranges ``(first, last)``, inclusive, that the venue could
    not supply: the exact remaining holes of the tape.
    """

    venue: str
    symbol: str
    recovered: int
    missing: tuple[tuple[int, int], ...]
    recv_ns: int
