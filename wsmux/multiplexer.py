"""Multiplexer: composes connections, feeds and streams in the caller's loop.

::

    async with Multiplexer() as mux:
        stream = mux.subscribe(*trades("binance", "BTC-USDT"), *book("kraken", "BTC-USD"))
        async for event in stream:
            ...
        mux.book("kraken", "BTC-USD").best_bid()

The multiplexer validates subscriptions at :meth:`Multiplexer.subscribe`
(unknown venue, channel or symbol raise at once), spreads them over as many
connections per venue as the venue's ``streams_per_connection`` limit needs,
shares a subscription between streams (reference-counted), routes each event
to the streams that asked for it, and exposes read-only live books and a
health snapshot. It never installs signal handlers or configures logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from wsmux import exchanges
from wsmux._retry import Backoff
from wsmux.adapter import Adapter, Endpoint
from wsmux.book import ConsolidatedBBO, OrderBook
from wsmux.book.l3 import L3Book, L3Order
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.connection import Connection, Transport
from wsmux.errors import ClosedError, ConfigError
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Channel,
    Connected,
    ConsolidatedQuote,
    Disconnected,
    Dropped,
    Error,
    Event,
    Funding,
    Gap,
    L3Snapshot,
    Level,
    Levels,
    Liquidation,
    OpenInterest,
    OrderUpdate,
    Quote,
    Resynced,
    Stale,
    Trade,
)
from wsmux.stream import Overflow, Stream
from wsmux.subscriptions import Subscription

__all__ = ["BookView", "L3BookView", "Multiplexer"]

_CHANNEL_OF: dict[type, Channel] = {
    Trade: Channel.TRADES,
    Quote: Channel.QUOTES,
    BookSnapshot: Channel.BOOK,
    BookUpdate: Channel.BOOK,
    L3Snapshot: Channel.L3,
    OrderUpdate: Channel.L3,
    Funding: Channel.FUNDING,
    OpenInterest: Channel.OPEN_INTEREST,
    Liquidation: Channel.LIQUIDATIONS,
}
_VENUE_WIDE = (Connected, Disconnected, Error, Stale)
_ids = itertools.count(1)


class BookView:
    """A read-only view of a live order book.

    Reads are consistent between events (the event loop runs one thing at a
    time). Check :attr:`valid`: an invalid book (before its first sync or
    after a gap) is empty and flagged, never silently wrong. Use
    :meth:`copy` to keep a snapshot or to hand the book to another thread.
    """

    __slots__ = ("_book",)

    def __init__(self, book: OrderBook) -> None:
        self._book = book

    @property
    def venue(self) -> str:
        return self._book.venue

    @property
    def symbol(self) -> str:
        return self._book.symbol

    @property
    def valid(self) -> bool:
        """True while wsmux vouches that the book matches the venue."""
        return self._book.valid

    @property
    def seq(self) -> int | None:
        """The venue update id the book reflects, where the venue has one."""
        return self._book.seq

    @property
    def ts(self) -> int | None:
        return self._book.ts

    def best_bid(self) -> Level | None:
        return self._book.best_bid()

    def best_ask(self) -> Level | None:
        return self._book.best_ask()

    def bbo(self) -> tuple[float, float, float, float]:
        return self._book.bbo()

    def spread(self) -> float:
        return self._book.spread()

    def mid(self) -> float:
        return self._book.mid()

    def crossed(self) -> bool:
        return self._book.crossed()

    def depth(self, n: int | None = None) -> tuple[Levels, Levels]:
        return self._book.depth(n)

    def imbalance(self, n: int = 5) -> float:
        return self._book.imbalance(n)

    def cost_to_fill(self, size: float, side: BookSide) -> tuple[float, float]:
        return self._book.cost_to_fill(size, side)

    def copy(self) -> OrderBook:
        """An independent copy of the book."""
        return self._book.copy()

    def __len__(self) -> int:
        return len(self._book)

    def __repr__(self) -> str:
        return f"<BookView of {self._book!r}>"


class L3BookView:
    """A read-only view of a live order-by-order (L3) book; check :attr:`valid`."""

    __slots__ = ("_book",)

    def __init__(self, book: L3Book) -> None:
        self._book = book

    @property
    def valid(self) -> bool:
        return self._book.valid

    @property
    def seq(self) -> int | None:
        return self._book.seq

    def best_bid(self) -> Level | None:
        return self._book.best_bid()

    def best_ask(self) -> Level | None:
        return self._book.best_ask()

    def depth(self, n: int | None = None) -> tuple[Levels, Levels]:
        """Aggregated levels (price, total size), best first."""
        return self._book.depth(n)

    def orders_at(self, price: float, side: BookSide) -> tuple[L3Order, ...]:
        """The orders resting at ``price`` in arrival (queue) order."""
        return self._book.orders_at(price, side)

    def get(self, order_id: str) -> L3Order | None:
        return self._book.get(order_id)

    def __len__(self) -> int:
        """Number of orders."""
        return len(self._book)

    def __repr__(self) -> str:
        return f"<L3BookView of {self._book!r}>"


class Multiplexer:
    """Many venues' feeds, one process, your event loop.

    Args:
        endpoints: per venue id, an :class:`~wsmux.Endpoint` (or a WebSocket
            URL string) overriding the adapter's default — mock servers,
            testnets.
        adapters: extra or replacement adapter classes by venue id.
        http: an ``httpx.AsyncClient`` for REST snapshots (tests pass one with
            ``httpx.MockTransport``); one is created if omitted.
        clock: time source (tests pass a manual clock).
        backoff: reconnect delays.
        transport: WebSocket client (``websockets`` by default).
        connect_timeout: seconds to open a connection.
        stale_after: seconds without data on a connection that has
            subscriptions before it is declared stale and reconnected (None: off).
        record: a directory: record every raw frame to the message log there.
    """

    def __init__(
        self,
        *,
        endpoints: Mapping[str, Endpoint | str] | None = None,
        adapters: Mapping[str, type[Adapter]] | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff | None = None,
        transport: Transport | None = None,
        connect_timeout: float = 10.0,
        stale_after: float | None = None,
        record: str | None = None,
    ) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        for venue, ep in (endpoints or {}).items():
            self._endpoints[venue] = ep if isinstance(ep, Endpoint) else Endpoint(url=ep)
        self._adapters = dict(adapters or {})
        self._own_http = http is None
        self._http = http
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.transport = transport
        self.connect_timeout = connect_timeout
        self.stale_after = stale_after
        self._record_dir = record
        self._recorders: dict[str, Any] = {}
        self._connections: dict[str, list[Connection]] = {}
        self._sub_refs: dict[Subscription, set[Stream]] = {}
        self._sub_conn: dict[Subscription, Connection] = {}
        self._routes: dict[tuple[str, Channel, str], list[Stream]] = {}
        self._venue_streams: dict[str, list[Stream]] = {}
        self._streams: list[Stream] = []
        self._blocking: list[Stream] = []
        self._pending: set[asyncio.Task[Any]] = set()
        self._consolidated: dict[str, ConsolidatedBBO] = {}
        self._started = False
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Multiplexer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Prepare (creates the HTTP client). ``async with`` calls it."""
        if self._closed:
            raise ClosedError("multiplexer is closed")
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=True)
        self._started = True

    async def close(self) -> None:
        """Close every stream and connection."""
        if self._closed:
            return
        self._closed = True
        for stream in list(self._streams):
            stream._on_close = None
            await stream.aclose()
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for conns in self._connections.values():
            for conn in conns:
                await conn.close()
        for writer in self._recorders.values():
            with contextlib.suppress(Exception):
                writer.close()
        if self._own_http and self._http is not None:
            await self._http.aclose()

    # --- subscriptions -----------------------------------------------------------

    def adapter_class(self, venue: str) -> type[Adapter]:
        """The adapter class used for ``venue`` (raises UnknownVenue)."""
        return self._adapters.get(venue) or exchanges.get(venue)

    def _new_adapter(self, venue: str) -> Adapter:
        ep = self._endpoints.get(venue, Endpoint())
        return self.adapter_class(venue)(url=ep.url, rest_url=ep.rest_url)

    def subscribe(
        self,
        *subscriptions: Subscription | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow = Overflow.BLOCK,
        name: str = "",
    ) -> Stream:
        """A new :class:`~wsmux.Stream` of ``subscriptions``.

        Validates everything first: an unknown venue, channel or symbol raises
        (:class:`~wsmux.errors.LocalError` subclasses) and nothing is
        subscribed. Connections open in the background; the stream yields
        :class:`~wsmux.Connected` when they are up.
        """
        if self._closed:
            raise ClosedError("multiplexer is closed")
        if not self._started:
            raise ClosedError("use 'async with Multiplexer() as mux' (or await mux.start()) first")
        subs: list[Subscription] = []
        for item in subscriptions:
            if isinstance(item, Subscription):
                subs.append(item)
            elif isinstance(item, Iterable):
                subs.extend(item)
            else:
                raise ConfigError(f"not a subscription: {item!r}")
        if not subs:
            raise ConfigError("subscribe() needs at least one subscription")
        checkers: dict[str, Adapter] = {}
        for sub in subs:
            if not isinstance(sub, Subscription):
                raise ConfigError(f"not a subscription: {sub!r}")
            checker = checkers.get(sub.venue) or self._new_adapter(sub.venue)
            checkers[sub.venue] = checker
            checker.check(sub)
        unique = tuple(dict.fromkeys(subs))
        stream = Stream(
            unique,
            maxsize=maxsize,
            overflow=overflow,
            name=name,
            on_close=self._stream_closed,
            clock_ns=self.clock.time_ns,
        )
        self._streams.append(stream)
        if overflow is Overflow.BLOCK:
            self._blocking.append(stream)
        venues = set()
        fresh: list[Subscription] = []
        for sub in unique:
            key = (sub.venue, sub.channel, sub.symbol)
            self._routes.setdefault(key, []).append(stream)
            venues.add(sub.venue)
            refs = self._sub_refs.setdefault(sub, set())
            if not refs:
                fresh.append(sub)
            refs.add(stream)
        for venue in venues:
            self._venue_streams.setdefault(venue, []).append(stream)
        if fresh:
            self._spawn(self._place(fresh))
        # Books already synced for earlier streams: give the new stream the state now.
        for sub in unique:
            if sub.channel is Channel.BOOK and sub not in fresh:
                conn = self._sub_conn.get(sub)
                book = conn.feed.book(sub.symbol) if conn else None
                if book is not None and book.valid:
                    bids, asks = book.depth()
                    now = self.clock.time_ns()
                    stream._put(BookSnapshot(sub.venue, sub.symbol, bids, asks, book.ts, now, book.seq))
                    stream._put(Resynced(sub.venue, sub.symbol, Channel.BOOK, book.seq, now))
        return stream

    async def _place(self, subs: list[Subscription]) -> None:
        by_venue: dict[str, list[Subscription]] = {}
        for sub in subs:
            by_venue.setdefault(sub.venue, []).append(sub)
        for venue, all_subs in by_venue.items():
            conns = self._connections.setdefault(venue, [])
            router = self._new_adapter(venue)
            by_route: dict[str, list[Subscription]] = {}
            for sub in all_subs:
                by_route.setdefault(router.route(sub), []).append(sub)
            for route, vsubs in by_route.items():
                await self._place_route(venue, route, conns, vsubs)

    async def _place_route(self, venue: str, route: str, conns: list[Connection], vsubs: list[Subscription]) -> None:
        """Put subscriptions of one route on connections with room (new ones as needed)."""
        while vsubs:
            conn = next((c for c in conns if c.room > 0 and c.route == route), None)
            if conn is None:
                conn = self._new_connection(venue)
                conn.route = route
                conns.append(conn)
            take, vsubs = vsubs[: conn.room], vsubs[conn.room :]
            for sub in take:
                self._sub_conn[sub] = conn
            await conn.add(take)
            conn.start()

    def _new_connection(self, venue: str) -> Connection:
        conn_id = next(_ids)
        return Connection(
            conn_id,
            self._new_adapter(venue),
            self._dispatch,
            http=self._http,  # type: ignore[arg-type]
            clock=self.clock,
            backoff=self.backoff,
            transport=self.transport,
            connect_timeout=self.connect_timeout,
            stale_after=self.stale_after,
            wait_unblocked=self._wait_unblocked if self._blocking else self._maybe_wait,
            recorder=self._recorder(venue) if self._record_dir else None,
        )

    def _recorder(self, venue: str) -> Any:
        from wsmux.log import open_recorder  # the log is optional: imported on use

        assert self._record_dir is not None
        if venue not in self._recorders:
            self._recorders[venue] = open_recorder(self._record_dir, venue, self._new_adapter(venue).url)
        return self._recorders[venue].record

    async def _stream_closed(self, stream: Stream) -> None:
        with contextlib.suppress(ValueError):
            self._streams.remove(stream)
        with contextlib.suppress(ValueError):
            self._blocking.remove(stream)
        for lst in self._venue_streams.values():
            with contextlib.suppress(ValueError):
                lst.remove(stream)
        orphaned: list[Subscription] = []
        for sub in stream.subscriptions:
            key = (sub.venue, sub.channel, sub.symbol)
            lst = self._routes.get(key, [])
            with contextlib.suppress(ValueError):
                lst.remove(stream)
            if not lst:
                self._routes.pop(key, None)
            refs = self._sub_refs.get(sub)
            if refs is not None:
                refs.discard(stream)
                if not refs:
                    del self._sub_refs[sub]
                    orphaned.append(sub)
        by_conn: dict[Connection, list[Subscription]] = {}
        for sub in orphaned:
            conn = self._sub_conn.pop(sub, None)
            if conn is not None:
                by_conn.setdefault(conn, []).append(sub)
        for conn, subs in by_conn.items():
            await conn.remove(subs)
            if not conn.subscriptions:
                await conn.close()
                with contextlib.suppress(ValueError):
                    self._connections[conn.venue].remove(conn)

    def subscribe_consolidated(
        self,
        symbol: str,
        venues: Iterable[str],
        *,
        channel: Channel = Channel.BOOK,
        maxsize: int = 10_000,
        overflow: Overflow = Overflow.CONFLATE,
        name: str = "",
    ) -> Stream:
        """A stream of :class:`~wsmux.ConsolidatedQuote` events: the best bid
        and offer for ``symbol`` across ``venues``, emitted whenever it changes.

        ``channel`` is where each venue's top of book comes from: ``BOOK`` (a
        synced L2 book: invalid books are left out until resynced) or
        ``QUOTES`` (the venue's BBO feed). The live object is
        :meth:`consolidated`. Closing the stream unsubscribes.
        """
        venue_list = tuple(dict.fromkeys(venues))
        if channel not in (Channel.BOOK, Channel.QUOTES):
            raise ConfigError(f"consolidation reads BOOK or QUOTES, not {channel.value}")
        if len(venue_list) < 1:
            raise ConfigError("subscribe_consolidated needs at least one venue")
        feeder = self.subscribe(
            *(Subscription(v, channel, symbol) for v in venue_list), name=f"{name or 'consolidated'}-feed"
        )
        cons = ConsolidatedBBO(symbol, venue_list)
        self._consolidated[symbol] = cons

        async def close_feeder(_stream: Stream) -> None:
            await feeder.aclose()
            if self._consolidated.get(symbol) is cons:
                del self._consolidated[symbol]

        out = Stream(
            (),
            maxsize=maxsize,
            overflow=overflow,
            name=name or f"consolidated-{symbol}",
            on_close=close_feeder,
            clock_ns=self.clock.time_ns,
        )
        self._streams.append(out)

        def publish(recv_ns: int) -> None:
            bid = cons.best_bid()
            ask = cons.best_ask()
            out._put(
                ConsolidatedQuote(
                    "*",
                    symbol,
                    bid[0] if bid else math.nan,
                    bid[1] if bid else math.nan,
                    bid[2] if bid else "",
                    ask[0] if ask else math.nan,
                    ask[1] if ask else math.nan,
                    ask[2] if ask else "",
                    recv_ns,
                )
            )

        def on_event(event: Event) -> None:
            cls = type(event)
            if cls is BookUpdate or cls is BookSnapshot:
                book = self._live_book(event.venue, symbol)  # type: ignore[attr-defined]
                if book is None:
                    return
                bp, bs, ap, as_ = book.bbo()
                if cons.update(event.venue, bp, bs, ap, as_, book.valid, event.recv_ns):  # type: ignore[attr-defined]
                    publish(event.recv_ns)  # type: ignore[attr-defined]
            elif cls is Quote:
                q: Quote = event  # type: ignore[assignment]
                if cons.update(q.venue, q.bid_price, q.bid_size, q.ask_price, q.ask_size, True, q.recv_ns):
                    publish(q.recv_ns)
            elif isinstance(event, Gap | Disconnected) and cons.invalidate(event.venue, event.recv_ns):
                publish(event.recv_ns)

        feeder.on(Event, on_event)
        return out

    def consolidated(self, symbol: str) -> ConsolidatedBBO:
        """The live consolidated BBO of ``symbol`` (see :meth:`subscribe_consolidated`).

        Raises:
            KeyError: no consolidated stream for ``symbol``.
        """
        return self._consolidated[symbol]

    def _live_book(self, venue: str, symbol: str) -> OrderBook | None:
        conn = self._sub_conn.get(Subscription(venue, Channel.BOOK, symbol))
        return conn.feed.book(symbol) if conn is not None else None

    # --- dispatch -----------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        channel = _CHANNEL_OF.get(type(event))
        if channel is not None:
            streams = self._routes.get((event.venue, channel, event.symbol))  # type: ignore[attr-defined]
            if streams:
                for stream in streams:
                    stream._put(event)
            return
        if isinstance(event, Gap | Resynced):
            for stream in self._routes.get((event.venue, event.channel, event.symbol), ()):
                stream._put(event)
            return
        if isinstance(event, _VENUE_WIDE) and event.venue is not None:
            for stream in self._venue_streams.get(event.venue, ()):
                stream._put(event)
            return
        if isinstance(event, Dropped):
            return
        for stream in self._streams:  # venue-less errors
            stream._put(event)

    def _maybe_wait(self) -> None:
        return None

    def _wait_unblocked(self) -> Any:
        for stream in self._blocking:
            if stream.blocked:
                return stream._wait_space()
        return None

    # --- reading ------------------------------------------------------------------

    def book(self, venue: str, symbol: str) -> BookView:
        """The live L2 book of ``symbol`` on ``venue`` (read-only view).

        Raises:
            KeyError: no stream subscribes to that book.
        """
        for sub, conn in self._sub_conn.items():
            if sub.venue == venue and sub.symbol == symbol and sub.channel is Channel.BOOK:
                book = conn.feed.book(symbol)
                if book is not None:
                    return BookView(book)
        raise KeyError(f"no book subscription for {venue}:{symbol}")

    def l3_book(self, venue: str, symbol: str) -> L3BookView:
        """The live order-by-order book of ``symbol`` on ``venue`` (read-only view).

        Raises:
            KeyError: no stream subscribes to that L3 book.
        """
        conn = self._sub_conn.get(Subscription(venue, Channel.L3, symbol))
        book = conn.feed.l3_book(symbol) if conn is not None else None
        if book is None:
            raise KeyError(f"no L3 subscription for {venue}:{symbol}")
        return L3BookView(book)

    @property
    def books(self) -> dict[tuple[str, str], BookView]:
        """Every subscribed book by ``(venue, symbol)``."""
        out: dict[tuple[str, str], BookView] = {}
        for sub, conn in self._sub_conn.items():
            if sub.channel is Channel.BOOK:
                book = conn.feed.book(sub.symbol)
                if book is not None:
                    out[sub.venue, sub.symbol] = BookView(book)
        return out

    def connections(self) -> list[Connection]:
        """All connections (for inspection)."""
        return [c for conns in self._connections.values() for c in conns]

    def health(self) -> dict[str, Any]:
        """A snapshot of every connection, book and stream: state, ages,
        counters (frames, parse errors, gaps, resyncs, drops)."""
        streams = []
        for s in self._streams:
            st = s.stats
            streams.append(
                {
                    "name": s.name,
                    "subscriptions": [str(x) for x in s.subscriptions],
                    "buffered": s.buffered,
                    "received": st.received,
                    "delivered": st.delivered,
                    "dropped": st.dropped,
                    "dropped_by_reason": dict(st.dropped_by_reason),
                    "callback_errors": st.callback_errors,
                    "max_buffered": st.max_buffered,
                }
            )
        return {"connections": [c.health() for c in self.connections()], "streams": streams}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
