"""The adapter contract: a sans-I/O translator between one venue and wsmux.

An :class:`Adapter` never opens a socket, sleeps or reads a clock. It turns

* subscriptions into the messages to send (:meth:`Adapter.subscribe`),
* received frames into events (:meth:`Adapter.parse`, given the receive time),
* a book's need for a REST snapshot into a request description
  (:meth:`Adapter.snapshot_request`) and the response body into a
  :class:`~wsmux.BookSnapshot` (:meth:`Adapter.parse_snapshot`),

and declares the venue's rules as data: endpoints, per-connection limits,
subscribe pacing, heartbeats, compression, and each book's sync rule
(:meth:`Adapter.book_rule`). The :class:`~wsmux.connection.Connection` and the
multiplexer carry out the I/O; replay and benchmarks drive the same adapter
from a log.

One adapter instance serves one connection: it may keep per-connection state
(channel-id maps, connection sequence numbers); :meth:`Adapter.reset` clears it
when the connection is replaced.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Generator, Sequence
from typing import ClassVar, TypeVar

import attrs

from wsmux.book import SNAPSHOT_STEP_LEVELS, Continuity, Diff, RawSnapshot, SnapshotSource, SyncRule
from wsmux.errors import UnknownChannel
from wsmux.model import BookSnapshot, Channel, Event, Instrument, L3Snapshot, Trade
from wsmux.subscriptions import Subscription

__all__ = [
    "Adapter",
    "Endpoint",
    "Heartbeat",
    "HttpRequest",
    "Limits",
    "Outgoing",
    "Reply",
    "finish_steps",
]

_T = TypeVar("_T")


def finish_steps(steps: Generator[None, None, _T]) -> _T:
    """Run a stepwise computation (``yield`` between bounded steps, ``return``
    the result) to its end at once, e.g. :meth:`Adapter.parse_snapshot_steps`."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: _T = done.value
            return result

Outgoing = str | bytes
"""A message to send on the socket: text or binary frame."""


class Reply(Event):
    """A message an adapter asks the connection to send in answer to a frame:
    returned from :meth:`Adapter.parse` among the events, never delivered.

    For venues whose server pings at the application level and drops clients
    that do not answer in kind (HTX ``{"ping": n}`` → ``{"pong": n}``): the
    answer must echo the frame, so it cannot be a timed
    :attr:`Heartbeat.ping_message`. The pipeline turns it into a send action.
    """

    __slots__ = ("message",)

    def __init__(self, message: Outgoing) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Reply({self.message!r})"


@attrs.frozen(slots=True)
class Endpoint:
    """Where to connect: a WebSocket URL and a REST base URL (either may be
    ``None`` to keep the adapter's default). Used to point an adapter at a
    mock server or a testnet: ``Multiplexer(endpoints={"binance": mock.endpoint})``."""

    url: str | None = None
    rest_url: str | None = None


@attrs.frozen(slots=True)
class HttpRequest:
    """A REST request the I/O layer performs for an adapter (GET unless said)."""

    url: str
    params: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    weight: int = 1
    """The request's cost in the venue's REST rate-limit units."""
    body: bytes | None = None
    """The request body (JSON) for venues whose REST endpoints take POST
    bodies (Hyperliquid's ``/info``); ``None`` sends none."""


@attrs.frozen(slots=True)
class Limits:
    """A venue's documented connection and subscription limits.

    Attributes:
        streams_per_connection: most subscriptions (topics) one connection may carry.
        topics_per_message: most topics one subscribe message may name.
        messages_per_second: most client messages per second per connection
            (subscribe, unsubscribe, pings all count where the venue says so).
        connections_per_window: most connection attempts per ``connection_window`` s.
        connection_window: the window of ``connections_per_window``, seconds.
        max_connection_age: the venue closes connections older than this (s).
        rest_weight_per_minute: REST budget in the venue's weight units.
        rest_deadline: seconds a whole REST request (snapshot, trade backfill)
            may take, connect to last body byte; past it the request is
            abandoned and reported (a peer that drips one byte per second
            never trips a per-read timeout, it trips this).
        max_rest_body: most bytes of one REST response body (after content
            decoding); a larger body is abandoned unread and reported. Full
            depth snapshots of the largest books are a few MiB.
    """

    streams_per_connection: int = 100
    topics_per_message: int = 50
    messages_per_second: float = 5.0
    connections_per_window: int = 300
    connection_window: float = 300.0
    max_connection_age: float | None = None
    rest_weight_per_minute: int = 1200
    rest_deadline: float = 15.0
    max_rest_body: int = 32 * 2**20


@attrs.frozen(slots=True)
class Heartbeat:
    """How liveness works on a venue.

    Attributes:
        ping_message: application-level ping to send, or ``None``.
        ping_interval: seconds between application pings.
        ws_ping_interval: seconds between WebSocket protocol pings sent by
            the client (``None``: rely on the server's pings).
        silence_timeout: no frame of any kind for this long → dead connection.
        stale_after: the venue's default data-stall timeout (what
            ``Multiplexer(stale_after=None)`` uses): a connection carrying a
            subscription of :attr:`stale_channels` that delivered no data
            event for this long while frames (heartbeats, pongs) still arrive
            is resubscribed, then reconnected if still silent. ``None``: off.
            30 s unless the venue declares otherwise: above the normal silence
            of a quiet symbol's book or quotes (see ``docs/guarantees.rst``).
        stale_channels: the channels whose subscriptions arm the default stall
            timer. Books and quotes of a listed symbol move every few seconds,
            and a resubscribe returns their snapshot; the trades of an illiquid
            symbol may legitimately be silent for hours, so trades (and the
            other event-driven channels) never arm it by default.
    """

    ping_message: Outgoing | None = None
    ping_interval: float = 20.0
    ws_ping_interval: float | None = 20.0
    silence_timeout: float = 60.0
    stale_after: float | None = 30.0
    stale_channels: frozenset[Channel] = frozenset({Channel.BOOK, Channel.QUOTES, Channel.L3})


class Adapter(abc.ABC):
    """Translate one venue's WebSocket protocol. Subclass per venue.

    Subclasses set the class attributes and implement the abstract methods.
    Symbols in and out are unified (``BTC-USDT``); the adapter maps them.

    Args:
        url: override the WebSocket endpoint (mock servers, testnets).
        rest_url: override the REST base URL.
        allow_insecure_loopback: let an adapter that :attr:`signs` use a
            ``ws://`` endpoint on a loopback host (mock servers in tests); a
            plain-text endpoint is refused otherwise (see :meth:`check_transport`).
    """

    venue: ClassVar[str]
    """Venue id used in events and the registry (``"binance"``)."""
    exchange: ClassVar[str] = ""
    """The exchange this adapter speaks to, when several adapters serve one
    exchange (``binance-usdm`` and ``binance-us`` are ``"binance"``); empty:
    the venue id up to its first ``-``. See :func:`wsmux.exchanges.exchange_of`."""
    channels: ClassVar[frozenset[Channel]]
    """Channels this adapter supports."""
    default_url: ClassVar[str]
    default_rest_url: ClassVar[str] = ""
    server_time_path: ClassVar[str | None] = None
    """The venue's REST server-time path under :attr:`rest_url` (None: it has
    none), for the NTP-style clock offset of :mod:`wsmux.metrics`."""
    server_time_field: ClassVar[tuple[str | int, ...]] = ()
    """Where the server's time is in that answer's JSON (keys and list indexes)."""
    server_time_unit_ns: ClassVar[int] = 1_000_000
    """Nanoseconds per unit of that field (ms: 1_000_000; s: 1_000_000_000)."""
    server_time_resolution_ns: ClassVar[int | None] = None
    """How coarse the server's time is (None: one unit); half of it widens the offset's bound."""
    backup_urls: ClassVar[tuple[str, ...]] = ()
    limits: ClassVar[Limits] = Limits()
    heartbeat: ClassVar[Heartbeat] = Heartbeat()
    compressed: ClassVar[bool] = False
    """True if the venue compresses frames: the Connection then passes every
    binary frame through :meth:`decompress` before :meth:`parse`."""
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    """Names of the fields of an outgoing JSON message that carry credentials or
    a signature made with them; :meth:`redact_outgoing` blanks them (at any depth)."""
    binary_frames: ClassVar[bool] = False
    """True if the venue's binary frames are a binary encoding (protobuf), not
    text: the Feed then skips its text check for non-ASCII digits on them
    (varint bytes can look like such characters), and the adapter must refuse
    number text that is not plain ASCII decimal itself."""
    defer_snapshot_rows = False
    """Set by a Feed that builds deep stream snapshots in steps (a live
    connection's): the adapter may then hand over a snapshot of more than
    :data:`~wsmux.book.SNAPSHOT_STEP_LEVELS` rows in lists (:meth:`reads_rows_later`)
    whose rows are still to be read, in either of two ways:

    * each side as :class:`~wsmux.book.UnreadRows`, read by the book's own
      build steps: only that book waits (it holds its diffs) while the
      connection's other frames flow (Deribit, Kraken Futures, Gemini v2,
      Coinbase Advanced);
    * with a generator that reads them in bounded steps
      (:attr:`wsmux.book.RawSnapshot.prepare`), when the adapter's reading
      of the *next* frame depends on them (BitMEX's id map): the Feed then
      holds the connection's later frames until it has run.

    Off, every snapshot is read inside :meth:`parse` (replays, tests, direct
    use), and a bad row raises there."""

    def __init__(
        self, *, url: str | None = None, rest_url: str | None = None, allow_insecure_loopback: bool = False
    ) -> None:
        self.url = url or self.default_url
        self.rest_url = rest_url or self.default_rest_url
        self.allow_insecure_loopback = allow_insecure_loopback

    # --- credentials ----------------------------------------------------------

    @property
    def signs(self) -> bool:
        """True if this adapter sends credentials or signatures on the socket
        (the default: never; venues with private channels override it)."""
        return False

    def check_transport(self, url: str | None = None) -> None:
        """Refuse (:class:`~wsmux.errors.ConfigError`) to send this adapter's
        credentials over a plain-text ``url`` (default :attr:`url`); see
        :func:`wsmux.credentials.require_tls`. A no-op unless :attr:`signs`.
        The connection calls it before every connect."""
        if self.signs:
            from wsmux.credentials import require_tls

            require_tls(self.url if url is None else url, allow_insecure_loopback=self.allow_insecure_loopback)

    def redact_outgoing(self, message: Outgoing) -> Outgoing:
        """``message`` as the message log may record it: every
        :attr:`secret_fields` value of a JSON object message replaced by
        ``"<redacted>"``, at any depth. Messages without such a field (and every
        message of an adapter with no secret fields) are returned unchanged;
        one that cannot be decoded is replaced by a placeholder, never recorded
        raw. Override for venues whose secrets are not JSON fields."""
        fields = self.secret_fields
        if not fields:
            return message
        from wsmux import _json

        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        try:
            decoded = _json.loads(text)
        except Exception:
            if any(name in text for name in fields):
                return "<redacted: undecodable message naming a secret field>"
            return message
        redacted = _json.dumps(_redact(decoded, fields))
        return redacted.encode() if isinstance(message, bytes) else redacted

    # --- connection ---------------------------------------------------------

    def connect_url(self, subscriptions: Sequence[Subscription]) -> str:
        """The URL to open for a connection that will carry ``subscriptions``.

        Venues that take streams in the URL embed them here; the default is
        :attr:`url`.
        """
        return self.url

    def connect_request(self) -> HttpRequest | None:
        """A REST request the I/O layer performs before *each* connection
        attempt, or ``None`` (the default: connect straight away).

        For venues that hand out the WebSocket address or a token over REST
        (KuCoin's ``bullet-public``). The Connection calls :meth:`reset`, then
        this, gives a 200 response's body to :meth:`use_connect_response`, and
        only then calls :meth:`connect_url`; a failed request is a failed
        connection attempt (reported and retried with backoff).
        """
        return None

    def use_connect_response(self, body: bytes) -> None:  # noqa: B027 - optional hook
        """Learn the body of the :meth:`connect_request` response (e.g. the
        endpoint and token that :meth:`connect_url` then uses). Raises
        :class:`~wsmux.errors.RemoteError` when the venue refused it and
        :class:`~wsmux.errors.MalformedMessage` when it cannot be read."""

    def route(self, subscription: Subscription) -> str:
        """The group of connections that may carry ``subscription``.

        Subscriptions with different routes must never share a connection
        (Binance USD-M serves depth/BBO on ``/public`` and trades/funding on
        ``/market``, two URLs). The default is one group, ``""``.
        """
        return ""

    @abc.abstractmethod
    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """Messages that subscribe to ``subscriptions`` on an open connection.

        Respects :attr:`limits.topics_per_message`; the Connection paces them.
        """

    @abc.abstractmethod
    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        """Messages that cancel ``subscriptions``."""

    def decompress(self, frame: bytes) -> bytes:
        """Undo the venue's frame compression (venues with ``compressed``)."""
        return frame

    def reads_rows_later(self, *row_lists: object) -> bool:
        """True if a stream snapshot whose venue rows are ``row_lists`` (its
        sides, or its one list of both) is to be handed over unread (see
        :attr:`defer_snapshot_rows`): on, every one a list, and more rows in
        all than one build step handles. Anything else is read at once, so a
        malformed snapshot raises inside :meth:`parse` as before."""
        if not self.defer_snapshot_rows:
            return False
        rows = 0
        for row_list in row_lists:
            if row_list.__class__ is not list:
                return False
            rows += len(row_list)
        return rows > SNAPSHOT_STEP_LEVELS

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget per-connection state (called when a connection is replaced)."""

    # --- frames -------------------------------------------------------------

    @abc.abstractmethod
    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff | RawSnapshot]:
        """Translate one received frame into events.

        Returns an empty list for frames that carry no market data (acks,
        heartbeats). A book update is best returned as a
        :class:`~wsmux.book.Diff` holding the venue's decoded level lists: the
        book sync then converts, checks and applies them in one pass and
        builds the :class:`~wsmux.BookUpdate` once (the hot path); a
        ready-made ``BookUpdate`` is accepted too. Likewise a deep snapshot the
        stream sends is best returned as a :class:`~wsmux.book.RawSnapshot`
        (rows as decoded, any order): the book's build converts, checks and
        sorts them in bounded steps, outside the frame; a ``BookSnapshot`` is
        accepted too. A well-formed message of a
        kind the adapter does not handle raises
        :class:`~wsmux.errors.UnknownMessage`. Raises :class:`~wsmux.errors.MalformedMessage` for a frame
        that cannot be decoded or lacks required fields, and
        :class:`~wsmux.errors.RemoteError` subclasses for venue errors; the
        caller counts and reports them.
        """

    # --- books ----------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """The sync rule for ``symbol``'s L2 book on this venue."""
        raise UnknownChannel(f"{self.venue} has no L2 book channel")

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """The sync rule for the book of ``subscription``.

        Venues whose rule depends on the subscribed depth (Kraken truncates the
        book to it) override this; the default is :meth:`book_rule`.
        """
        return self.book_rule(subscription.symbol)

    def snapshot_request(self, symbol: str, depth: int | None = None) -> HttpRequest | None:
        """The REST request for a book snapshot, or ``None`` where the
        snapshot comes on the WebSocket (then resync is :meth:`resync_messages`)."""
        return None

    def parse_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> BookSnapshot:
        """Translate a REST snapshot response body."""
        raise NotImplementedError(f"{self.venue} takes no REST snapshots")

    def parse_snapshot_steps(self, symbol: str, body: bytes, recv_ns: int) -> Generator[None, None, BookSnapshot]:
        """:meth:`parse_snapshot` in bounded steps (``yield`` between them,
        ``return`` the snapshot), so a deep book's REST body does not hold the
        event loop in one piece (:meth:`wsmux._pipeline.Feed.snapshot_body_steps`).
        The default is one step; venues with deep REST books split the level
        conversion (Binance)."""
        yield from ()
        return self.parse_snapshot(symbol, body, recv_ns)

    def time_request(self) -> HttpRequest | None:
        """The venue's REST server-time request (``GET`` :attr:`server_time_path`),
        for the NTP-style clock offset of :mod:`wsmux.metrics`; ``None`` where
        the venue has none (the offset then comes from the lower envelope of
        receive - exchange time)."""
        if self.server_time_path is None:
            return None
        return HttpRequest(self.rest_url + self.server_time_path)

    def parse_server_time(self, body: bytes) -> int:
        """The server's time (ns since the epoch) in the body answering
        :meth:`time_request`: the number (or numeric text) at
        :attr:`server_time_field`, in units of :attr:`server_time_unit_ns`.

        Raises:
            MalformedMessage: the body is not a server-time answer.
        """
        from wsmux._json import JSONDecodeError, loads
        from wsmux.errors import MalformedMessage

        try:
            value = loads(body)
            for key in self.server_time_field:
                value = value[key]
            if isinstance(value, str):
                value = float(value) if "." in value else int(value)
            if type(value) not in (int, float) or not math.isfinite(value):  # bool, None, nan
                raise TypeError(f"not a number: {value!r}")
        except (JSONDecodeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise MalformedMessage(f"{self.venue}: not a server-time answer ({exc})", body) from exc
        if isinstance(value, int):
            return value * self.server_time_unit_ns
        return round(float(value) * self.server_time_unit_ns)

    def l3_rule(self, symbol: str) -> SyncRule:
        """The sync rule for ``symbol``'s order-by-order (L3) book.

        The default: snapshots come on the stream, no sequence check (the
        adapter checks any connection-wide sequence itself), crossed books
        are broken. See :mod:`wsmux.book._l3sync`.
        """
        return SyncRule(SnapshotSource.STREAM, Continuity.NONE)

    def l3_snapshot_request(self, symbol: str) -> HttpRequest | None:
        """The REST request for an order-by-order (L3) snapshot, or ``None``
        where the L3 snapshot comes on the WebSocket (then resync is
        :meth:`resync_messages`)."""
        return None

    def parse_l3_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> L3Snapshot:
        """Translate a REST L3 snapshot response body."""
        raise NotImplementedError(f"{self.venue} takes no REST L3 snapshots")

    def trades_request(self, symbol: str, first_id: int, limit: int) -> HttpRequest | None:
        """A REST request for the trades of ``symbol`` from id ``first_id``
        (at most ``limit``), for backfilling a trade-id gap; ``None`` where
        the venue has no such endpoint (the default)."""
        return None

    def parse_trades(self, symbol: str, body: bytes, recv_ns: int) -> list[Trade]:
        """Translate a :meth:`trades_request` response body."""
        raise NotImplementedError(f"{self.venue} has no trade-history endpoint")

    # --- reference data --------------------------------------------------------

    def instruments_request(self) -> HttpRequest | None:
        """The REST request listing the venue's instruments (symbol
        validation at subscribe time, tick/lot/contract sizes); ``None`` where
        the venue has no such endpoint (the default)."""
        return None

    def instruments_requests(self) -> list[HttpRequest]:
        """Every request that lists the venue's instruments: the multiplexer
        performs each and gives every body to :meth:`parse_instruments`. The
        default is :meth:`instruments_request` alone; venues that list each
        instrument type separately (OKX ``instType``) return one per type."""
        request = self.instruments_request()
        return [] if request is None else [request]

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Translate an :meth:`instruments_request` response body. Instruments
        wsmux cannot name with a unified symbol are left out."""
        raise NotImplementedError(f"{self.venue} has no instruments endpoint")

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:  # noqa: B027 - optional hook
        """Learn reference data fetched by the I/O layer (e.g. contract sizes,
        so that sizes in contracts are reported in base units). The default
        ignores it."""

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """Messages that make the venue send a fresh book snapshot.

        The default unsubscribes and subscribes again.
        """
        return [*self.unsubscribe([subscription]), *self.subscribe([subscription])]

    # --- symbols --------------------------------------------------------------

    @abc.abstractmethod
    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """The venue's symbol for a unified one (raises UnknownSymbol)."""

    def check(self, subscription: Subscription) -> None:
        """Raise a :class:`~wsmux.errors.LocalError` if ``subscription`` is not
        servable by this venue (unknown channel, unmappable symbol)."""
        if subscription.channel not in self.channels:
            offered = ", ".join(sorted(c.value for c in self.channels))
            raise UnknownChannel(f"{self.venue} does not offer {subscription.channel.value!r} (offers: {offered})")
        self.to_native(subscription.symbol, subscription.channel)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"


def _redact(value: object, fields: frozenset[str]) -> object:
    if isinstance(value, dict):
        return {k: "<redacted>" if k in fields else _redact(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, fields) for v in value]
    return value
