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
from collections.abc import Sequence
from typing import ClassVar

import attrs

from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
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
]

Outgoing = str | bytes
"""A message to send on the socket: text or binary frame."""


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
    """

    streams_per_connection: int = 100
    topics_per_message: int = 50
    messages_per_second: float = 5.0
    connections_per_window: int = 300
    connection_window: float = 300.0
    max_connection_age: float | None = None
    rest_weight_per_minute: int = 1200


@attrs.frozen(slots=True)
class Heartbeat:
    """How liveness works on a venue.

    Attributes:
        ping_message: application-level ping to send, or ``None``.
        ping_interval: seconds between application pings.
        ws_ping_interval: seconds between WebSocket protocol pings sent by
            the client (``None``: rely on the server's pings).
        silence_timeout: no frame of any kind for this long → dead connection.
    """

    ping_message: Outgoing | None = None
    ping_interval: float = 20.0
    ws_ping_interval: float | None = 20.0
    silence_timeout: float = 60.0


class Adapter(abc.ABC):
    """Translate one venue's WebSocket protocol. Subclass per venue.

    Subclasses set the class attributes and implement the abstract methods.
    Symbols in and out are unified (``BTC-USDT``); the adapter maps them.

    Args:
        url: override the WebSocket endpoint (mock servers, testnets).
        rest_url: override the REST base URL.
    """

    venue: ClassVar[str]
    """Venue id used in events and the registry (``"binance"``)."""
    channels: ClassVar[frozenset[Channel]]
    """Channels this adapter supports."""
    default_url: ClassVar[str]
    default_rest_url: ClassVar[str] = ""
    backup_urls: ClassVar[tuple[str, ...]] = ()
    limits: ClassVar[Limits] = Limits()
    heartbeat: ClassVar[Heartbeat] = Heartbeat()
    compressed: ClassVar[bool] = False
    """True if the venue compresses frames: the Connection then passes every
    binary frame through :meth:`decompress` before :meth:`parse`."""

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        self.url = url or self.default_url
        self.rest_url = rest_url or self.default_rest_url
        self.replies: list[Outgoing] = []
        """Messages the venue expects in answer to a received frame (Crypto.com's
        ``public/respond-heartbeat``): :meth:`parse` appends them, the
        Connection sends them right after the frame and clears the list (in
        place: never rebind it). An adapter keeps it bounded where nobody
        sends (replay, benchmarks), e.g. by holding only the latest reply."""

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

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget per-connection state (called when a connection is replaced)."""

    # --- frames -------------------------------------------------------------

    @abc.abstractmethod
    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        """Translate one received frame into events.

        Returns an empty list for frames that carry no market data (acks,
        heartbeats). A book update is best returned as a
        :class:`~wsmux.book.Diff` holding the venue's decoded level lists: the
        book sync then converts, checks and applies them in one pass and
        builds the :class:`~wsmux.BookUpdate` once (the hot path); a
        ready-made ``BookUpdate`` is accepted too. A well-formed message of a
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
