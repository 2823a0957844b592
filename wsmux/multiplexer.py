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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import httpx

from wsmux import exchanges
from wsmux._pipeline import Feed
from wsmux._reliability.breaker import BreakerState, CircuitBreaker
from wsmux._reliability.limits import ConnectLimiter, RestLimiter
from wsmux._reliability.quality import Quality, QualityGate
from wsmux._reliability.trades import IdPolicy, TradeSequencer, TradeVerdict
from wsmux._retry import Backoff
from wsmux._shard import Shard
from wsmux.adapter import Adapter, Endpoint
from wsmux.book import ConsolidatedBBO, OrderBook
from wsmux.book.l3 import L3Book, L3Order
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.connection import ConnectGate, Connection, Transport
from wsmux.errors import ClosedError, ConfigError, SnapshotFailed, WsmuxError
from wsmux.model import (
    Backfilled,
    BookSide,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Connected,
    ConsolidatedQuote,
    Disconnected,
    Dropped,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Integrity,
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
    Candle: Channel.CANDLES,
}
_VENUE_WIDE = (Connected, Disconnected, Error, Stale)
_OK = Quality.OK
_CLOSED = BreakerState.CLOSED
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
    def integrity(self) -> Integrity | None:
        """What the venue's feed lets wsmux prove about this book: ``valid``
        never claims more (see :class:`~wsmux.Integrity`)."""
        return self._book.integrity

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
            subscriptions before it is declared stalled: it is resubscribed,
            then reconnected if still silent (None: off).
        stable_after: seconds a connection must stay up (then deliver data)
            before its reconnect backoff starts over.
        record: a directory: record every raw frame to the message log there.
        redundancy: connections per set of subscriptions (2+: redundant
            connections merged exactly once by the arbiter, with failover).
        quality: a :class:`~wsmux.reliability.QualityGate` checking every
            market event (``True``: defaults; ``None``/``False``: off). Events
            with a bad price, size or value, or a crossed quote, are dropped and
            reported as ``Error`` (kind ``BAD_DATA``); odd timestamps are
            delivered and counted.
        breaker: per-venue circuit breaker settings (keyword arguments of
            :class:`~wsmux.reliability.CircuitBreaker`; ``None`` for defaults,
            ``False`` for off). While a venue's breaker is open its market
            events are withheld (counted) and ``Error`` events say so.
        trade_gaps: check trade ids per venue policy: duplicates are dropped
            (counted), holes are reported as ``Gap`` (reason ``TRADE_ID``).
        rollover_margin: seconds before a venue's documented maximum
            connection age to replace a connection by a warmed-up one.
        backfill_trades: on a trade-id hole, fetch the missing trades over
            REST where the venue has an endpoint (rate-limited by the venue's
            REST budget), deliver the ones recovered (deduplicated against the
            live tape) and a :class:`~wsmux.Backfilled` event listing exactly
            what is still missing.
        stale_channels: per channel, seconds without an event for one
            subscribed symbol before a ``Stale`` event names it (e.g.
            ``{Channel.BOOK: 30}``). Venue heartbeats keep a *connection*
            alive; they do not make a silent book fresh. Reported once per
            silence, again after data resumed and stopped again.
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
        stable_after: float = 10.0,
        record: str | None = None,
        redundancy: int = 1,
        quality: QualityGate | bool | None = True,
        breaker: Mapping[str, Any] | bool | None = None,
        trade_gaps: bool = True,
        rollover_margin: float = 300.0,
        stale_channels: Mapping[Channel, float] | None = None,
        backfill_trades: bool = False,
    ) -> None:
        if not isinstance(redundancy, int) or redundancy < 1:
            raise ConfigError(f"redundancy must be a positive int, not {redundancy!r}")
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
        self.stable_after = stable_after
        self.redundancy = redundancy
        self.rollover_margin = rollover_margin
        self._gate: QualityGate | None = (
            quality if isinstance(quality, QualityGate) else (QualityGate() if quality is True else None)
        )
        self._breaker_args: dict[str, Any] | None = (
            None if breaker is False else dict(breaker) if isinstance(breaker, Mapping) else {}
        )
        self._breakers: dict[str, CircuitBreaker] = {}
        self._sequencer: TradeSequencer | None = TradeSequencer() if trade_gaps else None
        self.counters: dict[str, int] = {
            "bad_data": 0,
            "odd_timestamps": 0,
            "breaker_withheld": 0,
            "duplicate_trades": 0,
        }
        """Multiplexer-level counters (also in :meth:`health`)."""
        self.backfill_trades = backfill_trades
        self._backfilling: set[tuple[str, str]] = set()
        self._stale_after_by_channel = dict(stale_channels or {})
        for channel_, seconds in self._stale_after_by_channel.items():
            if not isinstance(channel_, Channel) or not seconds > 0:
                raise ConfigError(f"stale_channels needs Channel -> positive seconds, not {channel_!r}: {seconds!r}")
        self._last_seen: dict[tuple[str, Channel, str], int] = {}
        self._stale_reported: set[tuple[str, Channel, str]] = set()
        self._connect_gates: dict[str, ConnectGate] = {}
        self._rest_limiters: dict[str, RestLimiter] = {}
        self._record_dir = record
        self._recorders: dict[str, Any] = {}
        self._shards: dict[str, list[Shard]] = {}
        self._sub_refs: dict[Subscription, set[Stream]] = {}
        self._sub_conn: dict[Subscription, Shard] = {}
        self._routes: dict[tuple[str, Channel, str], list[Stream]] = {}
        self._puts: dict[tuple[str, Channel, str], tuple[Callable[[Event], None], ...]] = {}
        """The dispatch table: per route, the ``_put`` of every stream on it.
        Built on first use, cleared whenever a route changes."""
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
        if self._stale_after_by_channel:
            self._spawn(self._stale_watch())

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
        for shards in self._shards.values():
            for shard in shards:
                await shard.close()
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
            slow_consumer_events=True,
        )
        self._attach_stream(stream)
        fresh: list[Subscription] = []
        for sub in unique:
            refs = self._sub_refs.setdefault(sub, set())
            if not refs:
                fresh.append(sub)
            refs.add(stream)
        if fresh:
            self._spawn(self._place(fresh))
        # Books already synced for earlier streams: give the new stream the state now.
        for sub in unique:
            if sub.channel is Channel.BOOK and sub not in fresh:
                shard = self._sub_conn.get(sub)
                book = shard.book(sub.symbol) if shard else None
                if book is not None and book.valid:
                    now = self.clock.time_ns()
                    stream._put(book.snapshot_event(now))
                    stream._put(book.resynced_event(now))
        return stream

    def _attach_stream(self, stream: Stream) -> None:
        """Route the events of ``stream``'s subscriptions (and the status
        events of their venues) to it."""
        self._streams.append(stream)
        if stream.overflow is Overflow.BLOCK:
            self._blocking.append(stream)
        venues = set()
        for sub in stream.subscriptions:
            self._routes.setdefault((sub.venue, sub.channel, sub.symbol), []).append(stream)
            venues.add(sub.venue)
        self._puts.clear()
        for venue in venues:
            self._venue_streams.setdefault(venue, []).append(stream)

    async def _place(self, subs: list[Subscription]) -> None:
        by_venue: dict[str, list[Subscription]] = {}
        for sub in subs:
            by_venue.setdefault(sub.venue, []).append(sub)
        for venue, all_subs in by_venue.items():
            shards = self._shards.setdefault(venue, [])
            router = self._new_adapter(venue)
            by_route: dict[str, list[Subscription]] = {}
            for sub in all_subs:
                by_route.setdefault(router.route(sub), []).append(sub)
            for route, vsubs in by_route.items():
                await self._place_route(venue, route, shards, vsubs)

    async def _place_route(self, venue: str, route: str, shards: list[Shard], vsubs: list[Subscription]) -> None:
        """Put subscriptions of one route on shards with room (new ones as needed)."""
        while vsubs:
            shard = next((s for s in shards if s.room > 0 and s.route == route), None)
            if shard is None:
                shard = Shard(
                    venue,
                    route,
                    lambda sink, venue=venue: self._new_connection(venue, sink),  # type: ignore[misc]
                    self._deliver,
                    redundancy=self.redundancy,
                    rollover_margin=self.rollover_margin,
                    now_ns=self.clock.time_ns,
                )
                shards.append(shard)
            take, vsubs = vsubs[: shard.room], vsubs[shard.room :]
            for sub in take:
                self._sub_conn[sub] = shard
            await shard.add(take)
            shard.start()

    def _new_connection(self, venue: str, sink: Callable[[Event], object]) -> Connection:
        conn_id = next(_ids)
        adapter = self._new_adapter(venue)
        gate = self._connect_gates.get(venue)
        if gate is None:
            gate = self._connect_gates[venue] = ConnectGate(ConnectLimiter.for_limits(adapter.limits), self.clock)
        rest = self._rest_limiters.get(venue)
        if rest is None:
            rest = self._rest_limiters[venue] = RestLimiter.for_limits(adapter.limits)
        conn = Connection(
            conn_id,
            adapter,
            sink,
            http=self._http,  # type: ignore[arg-type]
            clock=self.clock,
            backoff=self.backoff,
            transport=self.transport,
            connect_timeout=self.connect_timeout,
            stale_after=self.stale_after,
            stable_after=self.stable_after,
            wait_unblocked=lambda venue=venue: self._wait_unblocked(venue),  # type: ignore[misc]
            recorder=self._recorder(venue) if self._record_dir else None,
            connect_gate=gate,
            rest_limiter=rest,
        )
        self._wire_feed(conn.feed)
        return conn

    def _wire_feed(self, feed: Feed) -> None:
        """Give a connection's Feed its own data-quality gate (sequence state
        belongs to a connection: one gate each, reset on reconnect)."""
        if self._gate is not None:
            feed.gate = self._gate.fresh()
            feed.on_quality = self._on_quality

    def _on_quality(self, event: Event, verdict: Quality) -> None:
        """A connection's quality gate flagged ``event``: odd timestamps are
        counted (the event is delivered), anything else is withheld and reported."""
        if verdict is Quality.TS_FUTURE or verdict is Quality.TS_PAST:
            self.counters["odd_timestamps"] += 1
        else:
            self._bad(event, event.venue, verdict)  # type: ignore[attr-defined]

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
            self._puts.clear()
            refs = self._sub_refs.get(sub)
            if refs is not None:
                refs.discard(stream)
                if not refs:
                    del self._sub_refs[sub]
                    orphaned.append(sub)
        by_shard: dict[Shard, list[Subscription]] = {}
        for sub in orphaned:
            shard = self._sub_conn.pop(sub, None)
            if shard is not None:
                by_shard.setdefault(shard, []).append(sub)
            if sub.channel is Channel.TRADES and self._sequencer is not None:
                self._sequencer.forget(sub.venue, sub.symbol)
        for shard, subs in by_shard.items():
            await shard.remove(subs)
            if not shard.subscriptions:
                await shard.close()
                with contextlib.suppress(ValueError):
                    self._shards[shard.venue].remove(shard)

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
        shard = self._sub_conn.get(Subscription(venue, Channel.BOOK, symbol))
        return shard.book(symbol) if shard is not None else None

    # --- dispatch -----------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        """The checks between the connections and the streams: data quality,
        the venue's circuit breaker, trade-id continuity. Then dispatch."""
        cls = type(event)
        channel = _CHANNEL_OF.get(cls)
        if channel is not None:
            venue: str = event.venue  # type: ignore[attr-defined]
            # (the data-quality gate ran in the connection's Feed: see _on_quality)
            if self._breaker_args is not None:
                breaker = self._breakers.get(venue) or self._breaker(venue)
                # fast path: a closed breaker needs neither the clock nor a call per event
                if breaker._state is not _CLOSED:
                    now = self.clock.monotonic()
                    if not breaker.allow(now) and cls is not BookSnapshot:
                        # snapshots pass: Resynced passes too, and a stream must
                        # never see Resynced without the book it announces
                        self.counters["breaker_withheld"] += 1
                        self._breaker_events(breaker, venue)
                        return
                    breaker.record_ok(now)
                    if breaker._transitions:
                        self._breaker_events(breaker, venue)
            if cls is Trade and self._sequencer is not None:
                verdict_t = self._sequencer.on_trade(event)  # type: ignore[arg-type]
                if verdict_t is not TradeVerdict.NEW:
                    if not verdict_t.deliver:
                        self.counters["duplicate_trades"] += 1
                        return
                    holes = self._sequencer.take_gaps(event.recv_ns)  # type: ignore[attr-defined]
                    if holes and self.backfill_trades:
                        for key in {(h.venue, h.symbol) for h in holes if h.exact}:
                            if key not in self._backfilling:
                                self._backfilling.add(key)
                                self._spawn(self._backfill(*key))
                    for hole in holes:
                        self._dispatch(
                            Gap(
                                hole.venue,
                                hole.symbol,
                                Channel.TRADES,
                                GapReason.TRADE_ID,
                                hole.first_missing,
                                None if hole.last_missing is None else hole.last_missing + 1,
                                event.recv_ns,  # type: ignore[attr-defined]
                                f"trades {hole.first_missing}..{hole.last_missing} missing"
                                if hole.exact
                                else "trades may be missing (feed interrupted)",
                            )
                        )
            # dispatch, inlined for market data: one precomputed tuple per route
            route = (venue, channel, event.symbol)  # type: ignore[attr-defined]
            if self._stale_after_by_channel:
                self._last_seen[route] = event.recv_ns  # type: ignore[attr-defined]
            puts = self._puts.get(route)
            if puts is None:
                puts = self._puts[route] = tuple(stream._put for stream in self._routes.get(route, ()))
            for put in puts:
                put(event)
            return
        elif cls is Gap:
            gap: Gap = event  # type: ignore[assignment]
            if (
                gap.channel is Channel.TRADES
                and gap.reason is GapReason.TRADE_ID
                and self._sequencer is not None
                and self._sequencer.policy(gap.venue) is IdPolicy.CONTIGUOUS
            ):
                return  # the trade sequencer reports this hole itself (once)
        elif cls is Disconnected:
            if self._sequencer is not None:
                self._sequencer.interrupted(event.venue, event.recv_ns)  # type: ignore[attr-defined]
        elif cls is Error and self._breaker_args is not None:
            err: Error = event  # type: ignore[assignment]
            if err.venue is not None and err.kind in (ErrorKind.MALFORMED, ErrorKind.VENUE_ERROR):
                breaker = self._breakers.get(err.venue) or self._breaker(err.venue)
                breaker.record_error(self.clock.monotonic(), err.kind.value)
                self._dispatch(event)
                self._breaker_events(breaker, err.venue)
                return
        self._dispatch(event)

    async def _backfill(self, venue: str, symbol: str) -> None:
        """Fetch the trades of the tape's holes over REST (see ``backfill_trades``)."""
        sequencer = self._sequencer
        assert sequencer is not None
        try:
            shard = self._sub_conn.get(Subscription(venue, Channel.TRADES, symbol))
            if shard is None or not shard.conns:
                return
            adapter = shard.conns[0].adapter
            limiter = self._rest_limiters.get(venue)
            plan = sequencer.backfill(venue, symbol, 1000)
            recovered = 0
            for request in plan.pending():
                http_request = adapter.trades_request(symbol, request.first, len(request))
                if http_request is None:
                    break
                if limiter is not None:
                    delay = limiter.acquire(self.clock.monotonic(), http_request.weight)
                    while delay > 0:
                        await asyncio.sleep(delay)
                        delay = limiter.blocked_for(self.clock.monotonic())
                assert self._http is not None
                try:
                    response = await self._http.request(
                        http_request.method,
                        http_request.url,
                        params=list(http_request.params),
                        content=http_request.body,
                    )
                    recv_ns = self.clock.time_ns()
                    if response.status_code != 200:
                        if limiter is not None and response.status_code in (418, 429):
                            limiter.on_status(
                                self.clock.monotonic(),
                                response.status_code,
                                response.headers.get("Retry-After"),
                                recv_ns / 1e9,
                            )
                        raise SnapshotFailed(f"HTTP {response.status_code} from {http_request.url}")
                    fetched = adapter.parse_trades(symbol, response.content, recv_ns)
                except (httpx.HTTPError, WsmuxError) as exc:
                    self._dispatch(
                        Error(
                            venue,
                            symbol,
                            ErrorKind.SNAPSHOT,
                            f"trade backfill: {type(exc).__name__}: {exc}",
                            self.clock.time_ns(),
                        )
                    )
                    plan.done(request)
                    continue
                for trade in plan.merge(fetched):
                    recovered += 1
                    self._dispatch(trade)
                plan.done(request)
            missing = tuple((r.first, r.last) for r in plan.missing())
            self._dispatch(Backfilled(venue, symbol, recovered, missing, self.clock.time_ns()))
        finally:
            self._backfilling.discard((venue, symbol))

    def _breaker(self, venue: str) -> CircuitBreaker:
        breaker = CircuitBreaker(venue, **(self._breaker_args or {}))
        self._breakers[venue] = breaker
        return breaker

    def _breaker_events(self, breaker: CircuitBreaker, venue: str) -> None:
        for t in breaker.take_transitions():
            if t.old is BreakerState.OPEN:
                self._rebase_books(venue)  # updates were withheld: hand the books over afresh
            self._dispatch(
                Error(
                    venue,
                    None,
                    ErrorKind.CIRCUIT,
                    f"circuit {t.old.value} -> {t.new.value}: {t.reason}",
                    self.clock.time_ns(),
                )
            )

    def _rebase_books(self, venue: str) -> None:
        """Deliver every valid book of ``venue`` as BookSnapshot + Resynced."""
        now = self.clock.time_ns()
        for sub, shard in list(self._sub_conn.items()):
            if sub.venue != venue or sub.channel is not Channel.BOOK:
                continue
            book = shard.book(sub.symbol)
            if book is not None and book.valid:
                self._dispatch(book.snapshot_event(now))
                self._dispatch(book.resynced_event(now))

    def _bad(self, event: Event, venue: str, verdict: Quality) -> None:
        self.counters["bad_data"] += 1
        key = f"bad_data.{verdict.value}"
        n = self.counters.get(key, 0) + 1
        self.counters[key] = n
        if self._breaker_args is not None:
            breaker = self._breakers.get(venue) or self._breaker(venue)
            breaker.record_bad(self.clock.monotonic(), verdict.value)
            self._breaker_events(breaker, venue)
        if n & (n - 1) == 0:  # report the 1st, 2nd, 4th, 8th... occurrence: bounded, never silent
            self._dispatch(
                Error(
                    venue,
                    getattr(event, "symbol", None),
                    ErrorKind.BAD_DATA,
                    f"{verdict.value}: {type(event).__name__} withheld ({n} so far): {event!r}"[:400],
                    getattr(event, "recv_ns", 0),
                )
            )

    def _dispatch(self, event: Event) -> None:
        channel = _CHANNEL_OF.get(type(event))
        if channel is not None:
            key = (event.venue, channel, event.symbol)  # type: ignore[attr-defined]
            if self._stale_after_by_channel:
                self._last_seen[key] = event.recv_ns  # type: ignore[attr-defined]
            puts = self._puts.get(key)
            if puts is None:
                puts = self._puts[key] = tuple(stream._put for stream in self._routes.get(key, ()))
            for put in puts:
                put(event)
            return
        if isinstance(event, Gap | Resynced):
            for stream in self._routes.get((event.venue, event.channel, event.symbol), ()):
                stream._put(event)
            return
        if isinstance(event, Backfilled):
            for stream in self._routes.get((event.venue, Channel.TRADES, event.symbol), ()):
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

    async def _stale_watch(self) -> None:
        """Per (venue, channel, symbol): report a subscribed channel that went silent."""
        tick = min(self._stale_after_by_channel.values()) / 4
        started = self.clock.time_ns()
        while not self._closed:
            await asyncio.sleep(tick)
            now = self.clock.time_ns()
            for sub, shard in list(self._sub_conn.items()):
                limit = self._stale_after_by_channel.get(sub.channel)
                if limit is None:
                    continue
                key = (sub.venue, sub.channel, sub.symbol)
                last = self._last_seen.get(key)
                if last is None:
                    # never seen: measure from the shard's connection, else from start
                    since = shard.conns[0].stats.connected_since if shard.conns else None
                    last = started if since is None else max(started, now - int((self.clock.monotonic() - since) * 1e9))
                silent = now - last
                if silent >= limit * 1e9:
                    if key not in self._stale_reported:
                        self._stale_reported.add(key)
                        self._dispatch_stale(Stale(sub.venue, sub.symbol, sub.channel, silent, now))
                else:
                    self._stale_reported.discard(key)

    def _dispatch_stale(self, event: Stale) -> None:
        for stream in self._routes.get((event.venue, event.channel, event.symbol or ""), ()):  # type: ignore[arg-type]
            stream._put(event)

    def _wait_unblocked(self, venue: str) -> Any:
        """Backpressure for one connection: wait only for a full BLOCK stream
        that this connection's venue feeds (other venues keep flowing).
        Decided per frame, so a BLOCK stream added later is honoured too."""
        if not self._blocking:
            return None
        for stream in self._blocking:
            if stream.blocked and any(sub.venue == venue for sub in stream.subscriptions):
                return stream._wait_space()
        return None

    def book(self, venue: str, symbol: str) -> BookView:
        """The live L2 book of ``symbol`` on ``venue`` (read-only view).

        Raises:
            KeyError: no stream subscribes to that book.
        """
        for sub, shard in self._sub_conn.items():
            if sub.venue == venue and sub.symbol == symbol and sub.channel is Channel.BOOK:
                book = shard.book(symbol)
                if book is not None:
                    return BookView(book)
        raise KeyError(f"no book subscription for {venue}:{symbol}")

    def l3_book(self, venue: str, symbol: str) -> L3BookView:
        """The live order-by-order book of ``symbol`` on ``venue`` (read-only view).

        Raises:
            KeyError: no stream subscribes to that L3 book.
        """
        shard = self._sub_conn.get(Subscription(venue, Channel.L3, symbol))
        book = shard.l3_book(symbol) if shard is not None else None
        if book is None:
            raise KeyError(f"no L3 subscription for {venue}:{symbol}")
        return L3BookView(book)

    @property
    def books(self) -> dict[tuple[str, str], BookView]:
        """Every subscribed book by ``(venue, symbol)``."""
        out: dict[tuple[str, str], BookView] = {}
        for sub, shard in self._sub_conn.items():
            if sub.channel is Channel.BOOK:
                book = shard.book(sub.symbol)
                if book is not None:
                    out[sub.venue, sub.symbol] = BookView(book)
        return out

    def connections(self) -> list[Connection]:
        """All connections (for inspection)."""
        return [c for shards in self._shards.values() for shard in shards for c in shard.conns]

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
        breakers = {
            venue: {"state": b.state.value, **attrs.asdict(b.stats)} for venue, b in sorted(self._breakers.items())
        }
        shards = [
            {
                "venue": sh.venue,
                "route": sh.route,
                "connections": [c.conn_id for c in sh.conns],
                "subscriptions": len(sh.subscriptions),
                "rollovers": sh.rollovers,
                "arbiter": attrs.asdict(sh.arbiter.stats) if sh.arbiter is not None else None,
            }
            for shards in self._shards.values()
            for sh in shards
        ]
        trades = attrs.asdict(self._sequencer.stats) if self._sequencer is not None else None
        return {
            "connections": [c.health() for c in self.connections()],
            "streams": streams,
            "shards": shards,
            "breakers": breakers,
            "trades": trades,
            "counters": dict(self.counters),
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
