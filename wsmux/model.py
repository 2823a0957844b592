"""Normalized, immutable event types.

Every event a :class:`wsmux.Stream` yields is one of the classes below. They are
immutable ``attrs`` classes with slots: values, never live state (assigning or
deleting an attribute raises :class:`attrs.exceptions.FrozenInstanceError`).
Market events carry

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

How immutability costs nothing per event
----------------------------------------
A frozen attrs class stores each field through ``object.__setattr__`` (0.7 to 0.9 µs
for a nine-field event on the reference machine), three to four times the cost
of a plain slotted class. Events are built at the message rate, so
:func:`event` gives every class two layers: the attrs class with slots, plain
``self.x = x`` stores and field-wise ``__eq__``/``__hash__`` (the *layout*),
and the public class, a subclass with no slots of its own whose
``__setattr__``/``__delattr__`` raise. Construction builds the layout and
then re-labels the object with the public class (``obj.__class__ = cls``, one C
store, allowed because the two layouts are identical). ``attrs.fields``,
``attrs.evolve``, ``attrs.asdict``, cattrs, ``copy`` and ``pickle`` all work on
the public class, and mypy sees a frozen class (``dataclass_transform``).
"""

from __future__ import annotations

import enum
from typing import Any, TypeAlias, TypeVar, dataclass_transform

import attrs
from attrs.exceptions import FrozenInstanceError

from wsmux._display import by_step, plain

__all__ = [
    "event",
    "evolve",
    "layout_of",
    "Anomaly",
    "AnomalyKind",
    "Backfilled",
    "BookSide",
    "BookSnapshot",
    "BookUpdate",
    "Candle",
    "Instrument",
    "Channel",
    "ConnectFailed",
    "ConsolidatedQuote",
    "Connected",
    "Disconnected",
    "Dropped",
    "Error",
    "EndpointChanged",
    "EndpointReason",
    "ErrorKind",
    "Event",
    "Funding",
    "Gap",
    "GapReason",
    "Integrity",
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


class _Enum(enum.Enum):
    """An enum whose members hash by identity in C (``enum.Enum.__hash__`` is a
    Python function: a measurable cost where enums key hot dictionaries, such
    as routes by channel). Members are singletons compared by identity, so
    identity hashing is consistent with equality."""

    __hash__ = object.__hash__


class Side(_Enum):
    """The aggressor (taker) side of a trade or the side of a liquidation order."""

    BUY = "buy"
    SELL = "sell"


class BookSide(_Enum):
    """A side of an order book."""

    BID = "bid"
    ASK = "ask"


class Channel(_Enum):
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
    CANDLES = "candles"
    """One-minute OHLCV candles as the venue computes them (``Candle.interval``
    ``"1m"``; Coinbase Advanced Trade, whose only WebSocket candles are
    five-minute buckets, gives ``"5m"``)."""


class OrderAction(_Enum):
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


class Integrity(_Enum):
    """What a venue lets a client prove about a book it keeps.

    A valid book never claims more than this: with ``UNVERIFIABLE`` only a
    crossed book gives a loss away, so a "valid" book of such a feed may still
    miss an update the venue dropped.
    """

    SEQUENCE_AND_CHECKSUM = "sequence+checksum"
    """Every update is sequence-checked and the venue's checksum verified."""
    SEQUENCE = "sequence"
    """Every update is sequence-checked (a lost update is always detected)."""
    CHECKSUM = "checksum"
    """The venue's checksum is verified (a wrong book is detected at the next
    checksum); no sequence numbers."""
    UNVERIFIABLE = "unverifiable"
    """Neither: only a crossed book reveals a loss."""


class AnomalyKind(_Enum):
    """What an :class:`Anomaly` reports (thresholds: see :mod:`wsmux.metrics`)."""

    COLLAPSE = "collapse"
    """The message rate fell far below its baseline."""
    SPIKE = "spike"
    """The message rate rose far above its baseline."""
    RECOVERED = "recovered"
    """The rate is back within its baseline's bounds (ends a COLLAPSE or SPIKE)."""


class GapReason(_Enum):
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


class EndpointReason(_Enum):
    """Why connections moved to another host of a venue (:class:`EndpointChanged`)."""

    FASTER = "faster"
    """Another host measured faster by the policy's margin."""
    DEGRADED = "degraded"
    """The active host's latency forecast rose well above its baseline and
    another host measured faster: moved before the slowdown became a disconnect."""
    FAILOVER = "failover"
    """Connection attempts to the active host failed repeatedly."""


class ErrorKind(_Enum):
    """The class of an :class:`Error` event."""

    MALFORMED = "malformed"
    """A frame could not be decoded or lacked required fields."""
    UNKNOWN_MESSAGE = "unknown_message"
    """A well-formed message of a type the adapter does not know."""
    VENUE_ERROR = "venue_error"
    """The venue reported an error (e.g. a rejected subscription)."""
    SNAPSHOT = "snapshot"
    """A snapshot could not be had: a REST snapshot request failed, or a book
    waiting for a snapshot its stream must bring got none (or only one that
    failed) within 10 s of asking, and the venue is asked again."""
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
    UNKNOWN_SYMBOL = "unknown_symbol"
    """A subscribed symbol is not in the venue's instrument list: it was not
    subscribed (``exception`` is the :class:`~wsmux.errors.UnknownSymbol`,
    with close symbols in ``suggestions``)."""


class Event:
    """Base class of every event (market data and status)."""

    __slots__ = ()


class MarketEvent(Event):
    """Base class of market-data events."""

    __slots__ = ()


class StatusEvent(Event):
    """Base class of events about the feed itself (connection, gaps, errors)."""

    __slots__ = ()


_T = TypeVar("_T")


def _frozen_setattr(self: object, name: str, value: object = None) -> None:
    raise FrozenInstanceError()


def _shown(value: object) -> str:
    """A field's value in an event repr: floats (also inside level tuples) as
    a person reads them (``29999.99``, ``0.00005``; see :mod:`wsmux._display`)."""
    if value.__class__ is float:
        return plain(value)
    if value.__class__ is tuple:
        items = [_shown(item) for item in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return repr(value)


def _event_repr(self: Any) -> str:
    fields = ", ".join(f"{a.name}={_shown(getattr(self, a.name))}" for a in attrs.fields(type(self)) if a.repr)
    return f"{type(self).__name__}({fields})"


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def event(cls: type[_T]) -> type[_T]:
    """Make ``cls`` (annotated fields, like a dataclass) an immutable event class
    whose construction costs what a mutable slotted class costs. See the
    module docstring ("How immutability costs nothing per event")."""
    layout: Any = attrs.define(slots=True, unsafe_hash=True, weakref_slot=False)(cls)
    layout.__qualname__ = f"{cls.__qualname__}Layout"
    layout.__name__ = f"{cls.__name__}Layout"
    make = layout  # the attrs __init__ with plain stores

    def __new__(__event_cls: type, /, *args: Any, **kwargs: Any) -> Any:
        obj = make(*args, **kwargs)
        obj.__class__ = __event_cls
        return obj

    def __init__(__event_self: object, /, *args: Any, **kwargs: Any) -> None:
        """Built by ``__new__``; nothing left to do."""

    def __reduce__(self: Any) -> tuple[Any, ...]:
        return (type(self), tuple([getattr(self, a.name) for a in attrs.fields(type(self))]))

    public: Any = type(
        cls.__name__,
        (layout,),
        {
            "__slots__": (),
            "__doc__": cls.__doc__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__new__": __new__,
            "__init__": __init__,
            "__setattr__": _frozen_setattr,
            "__delattr__": _frozen_setattr,
            "__reduce__": __reduce__,
            "__repr__": _event_repr,
        },
    )
    _LAYOUTS[public] = layout
    return public  # type: ignore[no-any-return]


_LAYOUTS: dict[type, Any] = {}


def layout_of(cls: type[_E]) -> Any:
    """The constructor behind event class ``cls``, for the few hottest
    construction sites: ``ev = layout(...); ev.__class__ = cls`` builds the
    same immutable event as ``cls(...)`` without two Python-level calls
    (``__new__`` and the no-op ``__init__``). Internal: everything else calls
    ``cls(...)``."""
    return _LAYOUTS[cls]


_E = TypeVar("_E", bound="Event")


def evolve(event: _E, **changes: Any) -> _E:
    """A copy of ``event`` with ``changes`` (``attrs.evolve`` for events)."""
    return attrs.evolve(event, **changes)  # type: ignore[misc]


# --- market data ---------------------------------------------------------------


@event
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


@event
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


@event
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
    integrity: Integrity | None = None
    """What the venue's feed lets wsmux prove about this book (set on the
    snapshots wsmux delivers after a sync; ``None`` on an adapter's raw one)."""


@event
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


@event
class L3Snapshot(MarketEvent):
    """A full order-by-order book: ``orders`` are ``(order_id, side, price, size)``."""

    venue: str
    symbol: str
    orders: tuple[tuple[str, BookSide, float, float], ...]
    ts: int | None
    recv_ns: int
    seq: int | None = None


@event
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


@event
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


@event
class OpenInterest(MarketEvent):
    """Open interest, in base units (contracts converted where the venue uses them)."""

    venue: str
    symbol: str
    open_interest: float
    ts: int | None
    recv_ns: int


@event
class Liquidation(MarketEvent):
    """A forced liquidation order. ``side`` is the side of the liquidation order."""

    venue: str
    symbol: str
    side: Side
    price: float
    size: float
    ts: int | None
    recv_ns: int


@event
class Candle(MarketEvent):
    """An OHLCV candle as the venue computes it (one-minute candles for
    ``Channel.CANDLES``).

    Attributes:
        interval: the candle's length as the venue names it (``"1m"``).
        start_ts: the candle's open time (ns).
        volume: traded volume in base units.
        closed: True once the venue says the candle is final; venues that
            push the forming candle send it repeatedly with ``closed`` False.
    """

    venue: str
    symbol: str
    interval: str
    start_ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool
    ts: int | None
    recv_ns: int


@event
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


@event
class Connected(StatusEvent):
    """A connection to a venue is open and its subscriptions were sent."""

    venue: str
    conn_id: int
    url: str
    recv_ns: int


@event
class Disconnected(StatusEvent):
    """A connection was lost (or closed); ``reconnecting`` says whether wsmux will retry."""

    venue: str
    conn_id: int
    reason: str
    reconnecting: bool
    recv_ns: int


@event
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


@event
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


@event
class Resynced(StatusEvent):
    """The book for ``symbol`` is valid again after a :class:`Gap` (or initial sync)."""

    venue: str
    symbol: str
    channel: Channel
    seq: int | None
    recv_ns: int
    integrity: Integrity | None = None
    """What the venue's feed lets wsmux prove about the book now valid."""


@event
class Stale(StatusEvent):
    """No data arrived for ``silent_ns`` nanoseconds (``symbol`` None: whole connection)."""

    venue: str
    symbol: str | None
    channel: Channel | None
    silent_ns: int
    recv_ns: int


@event
class Anomaly(StatusEvent):
    """A connection's message rate, or a venue's on one channel, left (or came
    back into) the bounds of its own streaming baseline (see :mod:`wsmux.metrics`).

    Attributes:
        conn_id: the connection whose flow it is; for a channel's flow, the one
            connection carrying the channel, None if several carry it.
        channel: for a channel's flow, that channel; for a connection's flow,
            the channel it carries, or None if it carries several.
        rate: messages per second observed: over the last second for a
            SPIKE, over the detector's 10-s window otherwise.
        expected: the baseline's mean rate (messages per second).
    """

    venue: str
    conn_id: int | None
    channel: Channel | None
    kind: AnomalyKind
    rate: float
    expected: float
    recv_ns: int


@event
class Error(StatusEvent):
    """A reported, non-fatal problem: bad data from a venue, a failed snapshot, a
    callback that raised. The multiplexer keeps running."""

    venue: str | None
    symbol: str | None
    kind: ErrorKind
    message: str
    recv_ns: int
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    """The exception behind the error, where there is one (a callback's,
    with its traceback). In process only: the dict/JSON form holds its
    ``repr`` and reads back as ``None``; not part of equality."""


@event
class Dropped(StatusEvent):
    """Events were dropped by a stream's overflow policy (reported, never silent)."""

    stream: str
    count: int
    reason: str
    recv_ns: int


@event
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


@event
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


@event
class EndpointChanged(StatusEvent):
    """A connection of ``venue`` moved to another host (latency-based endpoint
    choice, see ``docs/endpoints.rst``). With a warm switch the books stay
    valid across it: the new connection's books arrive as ``BookSnapshot`` +
    ``Resynced``, never after a ``Gap``.

    Attributes:
        conn_id: the connection now on ``new_url`` (with a warm switch, the
            replacement; with a failover, the same connection reconnecting).
        old_url, new_url: the hosts (the venue's base URLs, not per-subscription paths).
        reason: why.
        detail: the figures behind the decision, in words.
    """

    venue: str
    conn_id: int
    old_url: str
    new_url: str
    reason: EndpointReason
    detail: str
    recv_ns: int


# --- reference data ------------------------------------------------------------------


@attrs.frozen(slots=True)
class Instrument:
    """One tradable instrument as the venue's instruments endpoint lists it
    (reference data, not an event: fetched rarely, kept by the multiplexer).

    Attributes:
        symbol: the unified symbol (``BTC-USDT``, ``BTC-USDT-PERP``,
            ``BTC-USD-20261225``, ``BTC-USD-20261225-100000-C``).
        native: the venue's own symbol.
        kind: ``"spot"``, ``"perp"``, ``"future"`` or ``"option"``.
        tick_size: the price increment, where the venue says.
        lot_size: the size increment (in the venue's size unit), where it says.
        contract_size: base units per contract for venues that count
            contracts (``None``: sizes are already in base units); for an
            ``inverse`` contract, its face value in the quote currency.
        inverse: the contract is inverse (a fixed quote-currency amount per
            contract, Binance COIN-M ``contractSize`` USD, OKX inverse swaps):
            its size in base units is ``contracts * contract_size / price``.
        price_scale: venues that send prices as scaled integers (Phemex inverse
            contracts): the price is the integer / 10**price_scale.
    """

    venue: str
    symbol: str
    native: str
    kind: str
    tick_size: float | None = None
    lot_size: float | None = None
    contract_size: float | None = None
    inverse: bool = False
    price_scale: int | None = None

    def format_price(self, price: float) -> str:
        """``price`` with the decimals of the tick size (``29999.99`` for a
        tick of 0.01), or 15 significant digits when the tick is unknown."""
        return by_step(price, self.tick_size)

    def format_size(self, size: float) -> str:
        """A size in base units with the decimals of the lot size in base units
        (a linear contract's lot times its contract size), or 15 significant
        digits when that is unknown (inverse contracts, no lot size)."""
        lot = self.lot_size
        if lot is not None and self.contract_size is not None:
            lot = None if self.inverse else lot * self.contract_size
        return by_step(size, lot)
