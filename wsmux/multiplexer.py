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
import collections
import contextlib
import difflib
import functools
import itertools
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from wsmux import exchanges
from wsmux._aio import reap
from wsmux._display import plain
from wsmux._endpoints import EndpointChooser, EndpointPolicy
from wsmux._hosts import HostDriver, lag_histograms, member_health
from wsmux._instruments import InstrumentCache, VenueInstruments, fetch_instruments
from wsmux._pipeline import Feed
from wsmux._reliability.breaker import BreakerState, CircuitBreaker
from wsmux._reliability.limits import ConnectLimiter, RestLimiter
from wsmux._reliability.quality import Quality, QualityGate
from wsmux._reliability.trades import IdPolicy, TradeSequencer, TradeVerdict
from wsmux._retry import Backoff
from wsmux._shard import Shard
from wsmux.adapter import Adapter, Endpoint
from wsmux.book import ConsolidatedBBO, Diff, OrderBook, RawSnapshot
from wsmux.book.l3 import L3Book, L3Order
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.connection import ConnectGate, Connection, Transport, fetch_rest
from wsmux.errors import (
    ClosedError,
    ConfigError,
    NotStarted,
    NotSubscribed,
    SnapshotFailed,
    SyncTimeout,
    UnknownSymbol,
    UnknownVenue,
    WsmuxError,
)
from wsmux.health import ConnectionHealth, Health, HostHealth, ShardHealth, StreamHealth
from wsmux.metrics._health import venue_health
from wsmux.metrics._registry import MetricsRegistry
from wsmux.model import (
    Anomaly,
    AnomalyKind,
    Backfilled,
    BookSide,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Connected,
    ConnectFailed,
    ConsolidatedQuote,
    Disconnected,
    Dropped,
    EndpointChanged,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Instrument,
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
from wsmux.subscriptions import Subscription, to_channel

if TYPE_CHECKING:
    from wsmux.analytics import Operator
    from wsmux.metrics._prometheus import MetricsServer

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
_VENUE_WIDE = (Connected, ConnectFailed, Disconnected, Error, Stale, Anomaly, EndpointChanged)
_OK = Quality.OK
_CLOSED = BreakerState.CLOSED
_ids = itertools.count(1)
_log = logging.getLogger("wsmux.multiplexer")

ENDPOINTS_ENV = "WSMUX_ENDPOINTS"
"""Environment variable read when ``Multiplexer(endpoints=...)`` is not given:
a JSON object of venue id -> WebSocket URL or ``{"url": ..., "rest_url": ...}``
(point unchanged programs at mock exchanges or a testnet), or a list of those:
the venue's candidate hosts for endpoint choice."""


INSTRUMENTS_RETRY_AFTER = 60.0
"""Seconds after a venue's instrument list failed (or did not answer in
time) before a new subscription fetches it again."""


def _endpoint_from_json(value: Any) -> Endpoint | str:
    return value if isinstance(value, str) else Endpoint(url=value.get("url"), rest_url=value.get("rest_url"))


def _endpoints_from_env() -> dict[str, Endpoint | str | list[Endpoint | str]]:
    text = os.environ.get(ENDPOINTS_ENV, "").strip()
    if not text:
        return {}
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        return {
            str(venue): [_endpoint_from_json(v) for v in value]
            if isinstance(value, list)
            else _endpoint_from_json(value)
            for venue, value in raw.items()
        }
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{ENDPOINTS_ENV} must be a JSON object of venue -> URL or {{'url': ..., 'rest_url': ...}} "
            f"or a list of them ({exc})"
        ) from None


def _host_list(venue: str, hosts: Sequence[Endpoint | str]) -> list[Endpoint]:
    """Validate ``endpoints[venue]`` given as a list of candidate hosts."""
    out: list[Endpoint] = []
    for host in hosts:
        ep = Endpoint(url=host) if isinstance(host, str) else host
        if not isinstance(ep, Endpoint) or not isinstance(ep.url, str) or not ep.url.startswith(("ws://", "wss://")):
            raise ConfigError(
                f"endpoints[{venue!r}] lists {host!r}: each host must be a ws:// or wss:// URL "
                "or an Endpoint with one"
            )
        out.append(ep)
    if not out:
        raise ConfigError(f"endpoints[{venue!r}] is an empty list: give at least one host")
    return out


def _check_seconds(name: str, value: object, *, positive: bool = False, optional: bool = False) -> None:
    """Reject non-numbers, NaN, infinities and negative (or zero) durations."""
    if value is None and optional:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):  # type: ignore[operator]
        need = "a finite number of seconds > 0" if positive else "a finite number of seconds >= 0"
        raise ConfigError(f"{name} must be {need}{' or None' if optional else ''}, not {value!r}")


class _BookWatch:
    """The state behind watch_order_book(): how often the valid book changed
    and how many of those changes a call has already returned."""

    __slots__ = ("_event", "returned", "version")

    def __init__(self) -> None:
        self.version = 0
        self.returned = 0
        self._event = asyncio.Event()

    def changed(self) -> None:
        self.version += 1
        self._event.set()

    async def wait(self) -> None:
        while self.version == self.returned:
            self._event.clear()
            await self._event.wait()
        self.returned = self.version


def _connection_health(conn: Connection) -> ConnectionHealth:
    d = conn.health()
    return ConnectionHealth(
        conn_id=conn.conn_id,
        venue=conn.venue,
        url=conn.url,
        state=conn.state,
        subscriptions=len(conn.subscriptions),
        last_frame_age_s=d["last_frame_age_s"],
        last_data_age_s=d["last_data_age_s"],
        last_error=conn.stats.last_error,
        last_error_ns=conn.stats.last_error_ns,
        connect_failures=conn.stats.connect_failures,
        failed_attempts=conn.stats.failed_attempts,
        paused=conn.paused,
        connection=d["connection"],
        feed=d["feed"],
        books=d["books"],
    )


def _to_overflow(value: Overflow | str) -> Overflow:
    if isinstance(value, Overflow):
        return value
    if isinstance(value, str):
        for policy in Overflow:
            if value.strip().lower() in (policy.value, policy.name.lower()):
                return policy
    names = ", ".join(repr(p.value) for p in Overflow)
    raise ConfigError(f"unknown overflow policy {value!r}: use a wsmux.Overflow or one of {names}")


class BookView:
    """A read-only view of a live order book.

    Reads are consistent between events (the event loop runs one thing at a
    time). Check :attr:`valid`: an invalid book (before its first sync or
    after a gap) is empty and flagged, never silently wrong. Use
    :meth:`copy` to keep a snapshot or to hand the book to another thread.
    """

    __slots__ = ("_book", "instrument")

    def __init__(self, book: OrderBook, instrument: Instrument | None = None) -> None:
        self._book = book
        self.instrument = instrument
        """The venue's instrument metadata (tick, lot, contract size) when its
        list is loaded (see :meth:`Multiplexer.instrument`), else ``None``."""

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
        """Best bid and ask by the instrument's tick and lot size where known
        (``29999.99 x 0.5``), else with 15 significant digits."""
        book = self._book
        state = "valid" if book.valid else "INVALID"
        price, size = (self.instrument.format_price, self.instrument.format_size) if self.instrument else (plain, plain)
        bid, ask = book.best_bid(), book.best_ask()
        sides = [f"{side} {price(lv[0])} x {size(lv[1])}" for side, lv in (("bid", bid), ("ask", ask)) if lv]
        return f"<BookView {book.venue}:{book.symbol} {state} seq={book.seq} {' / '.join(sides) or 'empty'}>"


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
            testnets — or a list of them: the venue's candidate hosts, in
            order of preference, among which endpoint choice picks the
            fastest (see ``endpoint_choice``). One endpoint pins the venue.
        endpoint_choice: latency-based choice among a venue's hosts (see
            ``docs/endpoints.rst``). ``None`` (the default): on for the venues
            given a list in ``endpoints``, with the default
            :class:`~wsmux.EndpointPolicy`. ``True`` or an ``EndpointPolicy``:
            on also for every venue whose adapter lists ``backup_urls`` and that
            is not pinned. ``False``: off (a list then means its first host).
        adapters: extra or replacement adapter classes by venue id.
        http: an ``httpx.AsyncClient`` for REST snapshots (tests pass one with
            ``httpx.MockTransport``); one is created if omitted.
        clock: time source (tests pass a manual clock).
        backoff: reconnect delays.
        transport: WebSocket client (``websockets`` by default).
        connect_timeout: seconds to open a connection.
        stale_after: seconds without data on a connection that has
            subscriptions before it is declared stalled: it is resubscribed,
            then reconnected if still silent. ``None`` (the default): each
            venue's own default (:attr:`~wsmux.adapter.Heartbeat.stale_after`,
            armed by book, quote and L3 subscriptions only; tabulated in
            ``docs/guarantees.rst``). A number: that many seconds for every
            connection with any subscription. ``False``: off.
        stable_after: seconds a connection must stay up (then deliver data)
            before its reconnect backoff starts over.
        snapshot_wait: seconds of receive time a book whose snapshot the
            venue's stream brings waits for it (after its subscription or a
            resync asked) before asking again; at most one ask per book per
            that many seconds (see ``docs/guarantees.rst``). Default 10.
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
        validate_symbols: fetch each venue's instrument list (its REST
            instruments endpoint, once per multiplexer, cached for
            ``instruments_ttl`` s) and refuse symbols it does not list, with
            close matches (see :meth:`asubscribe`). The list also gives
            contract sizes, so sizes of contract venues are in base units.
            ``False``: no instruments request at all (offline use, replays of
            your own mocks without an instruments endpoint); sizes then stay
            in each venue's own unit. A list that cannot be fetched never
            blocks data: it is logged once per venue (WARNING), counted
            (``counters["instruments_failures"]``) and the symbols go ahead
            unvalidated.
        instruments_ttl: seconds an instrument list stays fresh.
        instruments_timeout: seconds placing a subscription waits for its
            venue's list before going ahead unvalidated (the fetch goes on
            and validates later subscriptions).
        metrics: keep metrics (:mod:`wsmux.metrics`: latency histograms,
            clock offsets, rates, flow anomalies reported as
            :class:`~wsmux.Anomaly` events, an adaptive stale-data timer);
            ``False``: off (no sampling on the hot path); a mapping: keyword
            arguments of :class:`~wsmux.metrics.MetricsRegistry`
            (``sample_every``, ``adaptive_stale``, ``baseline``).
    """

    def __init__(
        self,
        *,
        endpoints: Mapping[str, Endpoint | str | Sequence[Endpoint | str]] | None = None,
        adapters: Mapping[str, type[Adapter]] | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff | None = None,
        transport: Transport | None = None,
        connect_timeout: float = 10.0,
        stale_after: float | bool | None = None,
        stable_after: float = 10.0,
        snapshot_wait: float = 10.0,
        record: str | None = None,
        redundancy: int = 1,
        quality: QualityGate | bool | None = True,
        breaker: Mapping[str, Any] | bool | None = None,
        trade_gaps: bool = True,
        rollover_margin: float = 300.0,
        stale_channels: Mapping[Channel, float] | None = None,
        backfill_trades: bool = False,
        validate_symbols: bool = True,
        instruments_ttl: float = 3600.0,
        instruments_timeout: float = 10.0,
        endpoint_choice: EndpointPolicy | bool | None = None,
        metrics: bool | Mapping[str, Any] = True,
    ) -> None:
        if not isinstance(redundancy, int) or redundancy < 1:
            raise ConfigError(f"redundancy must be a positive int, not {redundancy!r}")
        _check_seconds("connect_timeout", connect_timeout, positive=True)
        if not (stale_after is None or stale_after is False or (type(stale_after) in (int, float) and stale_after > 0)):
            raise ConfigError(f"stale_after must be seconds > 0, None (venue default) or False, not {stale_after!r}")
        _check_seconds("stable_after", stable_after)
        _check_seconds("snapshot_wait", snapshot_wait, positive=True)
        _check_seconds("rollover_margin", rollover_margin)
        _check_seconds("instruments_ttl", instruments_ttl, positive=True)
        _check_seconds("instruments_timeout", instruments_timeout, positive=True)
        self.validate_symbols = bool(validate_symbols)
        self.instruments_timeout = instruments_timeout
        self._instrument_cache = InstrumentCache(instruments_ttl)
        self._instrument_loads: dict[str, asyncio.Task[VenueInstruments | None]] = {}
        self._instruments_warned: set[str] = set()
        self._instruments_failed_at: dict[str, float] = {}
        self._units: dict[str, tuple[Instrument, ...]] = {}
        """Per venue, the instruments its connections were given (fixed at
        its first connection: a live book never changes units)."""
        self._adapters = dict(adapters or {})
        if endpoints is None:
            endpoints = _endpoints_from_env()
        self._endpoints: dict[str, Endpoint] = {}
        self._host_lists: dict[str, list[Endpoint]] = {}
        for venue, ep in endpoints.items():
            self._check_venue(venue, "endpoints")
            if isinstance(ep, Endpoint | str):
                self._endpoints[venue] = ep if isinstance(ep, Endpoint) else Endpoint(url=ep)
            elif isinstance(ep, Sequence):
                self._host_lists[venue] = _host_list(venue, ep)
            else:
                raise ConfigError(
                    f"endpoints[{venue!r}] must be an Endpoint, a URL string or a list of them, not {ep!r}"
                )
        if not (endpoint_choice is None or isinstance(endpoint_choice, bool | EndpointPolicy)):
            raise ConfigError(f"endpoint_choice must be None, a bool or an EndpointPolicy, not {endpoint_choice!r}")
        self._endpoint_policy: EndpointPolicy | None = (
            None if endpoint_choice is False
            else endpoint_choice if isinstance(endpoint_choice, EndpointPolicy)
            else EndpointPolicy()
        )
        self._choose_backups = endpoint_choice is True or isinstance(endpoint_choice, EndpointPolicy)
        self._drivers: dict[str, HostDriver | None] = {}
        """Endpoint choice per venue (None: off for that venue)."""
        self._host_of: dict[int, str] = {}
        """The host (a candidate URL) of each connection placed by endpoint choice."""
        self._own_http = http is None
        self._http = http
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.transport = transport
        self.connect_timeout = connect_timeout
        self.stale_after = stale_after
        self.stable_after = stable_after
        self.snapshot_wait = snapshot_wait
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
            "instruments_failures": 0,
            "unknown_symbols": 0,
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
        self._puts: dict[tuple[type, str, str], tuple[Callable[[Event], None], ...]] = {}
        """The dispatch table: per (event class, venue, symbol), the ``_put`` of
        every stream routed that event. Built on first use, cleared whenever a
        route changes."""
        self._venue_streams: dict[str, list[Stream]] = {}
        self._streams: list[Stream] = []
        self._blocking: list[Stream] = []
        self._blocking_for: dict[str, tuple[Stream, ...]] = {}
        """Per venue, the BLOCK streams it feeds (cleared when ``_blocking`` changes)."""
        self._pending: set[asyncio.Task[Any]] = set()
        self._consolidated: dict[str, ConsolidatedBBO] = {}
        self._placing = asyncio.Lock()
        self.stall_report_after = 5.0
        """Seconds a connection may stay paused by a full BLOCK stream before
        the stall is logged and counted (``counters["stalls"]``)."""
        self._book_watchers: dict[tuple[str, str], _BookWatch] = {}
        self.metrics: MetricsRegistry | None = None
        """The metrics registry (None with ``metrics=False``)."""
        if metrics is not False:
            try:
                self.metrics = MetricsRegistry(
                    {**_CHANNEL_OF, Diff: Channel.BOOK, RawSnapshot: Channel.BOOK},
                    **(dict(metrics) if isinstance(metrics, Mapping) else {}),
                )
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"metrics: {exc}") from exc
        self._metrics_server: Any = None
        self._started = False
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Multiplexer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_usable(self) -> None:
        if self._closed:
            raise ClosedError("multiplexer is closed; create a new Multiplexer")
        if not self._started:
            raise NotStarted(
                "multiplexer not started: use 'async with Multiplexer() as mux' (or await mux.start()) first"
            )

    async def start(self) -> None:
        """Prepare (creates the HTTP client). ``async with`` calls it.

        Raises:
            ClosedError: the multiplexer was closed (it cannot be restarted).
        """
        if self._closed:
            raise ClosedError("multiplexer is closed; create a new Multiplexer")
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=True)
        self._started = True
        if self._stale_after_by_channel:
            self._spawn(self._stale_watch())
        if self.metrics is not None and self.metrics.interval is not None:
            self._spawn(self._metrics_loop(self.metrics.interval))

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
            await reap(task)
        for shards in self._shards.values():
            for shard in shards:
                await shard.close()
        for writer in self._recorders.values():
            with contextlib.suppress(Exception):
                writer.close()
        if self._own_http and self._http is not None:
            await self._http.aclose()
        if self._metrics_server is not None:
            await asyncio.to_thread(self._metrics_server.close)

    # --- subscriptions -----------------------------------------------------------

    def adapter_class(self, venue: str) -> type[Adapter]:
        """The adapter class used for ``venue`` (raises UnknownVenue)."""
        return self._adapters.get(venue) or exchanges.get(venue)

    def _check_venue(self, venue: object, where: str) -> None:
        """Raise UnknownVenue (with close matches) unless ``venue`` has an adapter."""
        known = sorted({*exchanges.names(), *self._adapters})
        if isinstance(venue, str) and venue in known:
            return
        close = difflib.get_close_matches(str(venue).lower(), known, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise UnknownVenue(f"unknown venue {venue!r} in {where}: {hint}known venues: {', '.join(known)}")

    def _new_adapter(self, venue: str) -> Adapter:
        ep = self._endpoints.get(venue)
        if ep is None:
            hosts = self._host_lists.get(venue)
            ep = hosts[0] if hosts else Endpoint()
        return self.adapter_class(venue)(url=ep.url, rest_url=ep.rest_url)

    def subscribe(
        self,
        *subscriptions: Subscription | str | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
    ) -> Stream:
        """A new :class:`~wsmux.Stream` of ``subscriptions``.

        Each item is a :class:`~wsmux.Subscription`, an iterable of them (what
        :func:`~wsmux.trades`, :func:`~wsmux.book`... return) or the CLI's text
        form ``"VENUE:CHANNEL:SYMBOL[,SYMBOL...]"``. ``overflow`` is an
        :class:`~wsmux.Overflow` or its value (``"drop_oldest"``).

        Validates everything first: an unknown venue, channel or symbol raises
        (:class:`~wsmux.errors.LocalError` subclasses) and nothing is
        subscribed. Connections open in the background; the stream yields
        :class:`~wsmux.Connected` when they are up (or
        :class:`~wsmux.ConnectFailed` for every attempt that fails).
        """
        self._check_usable()
        overflow = _to_overflow(overflow)
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize <= 0:
            raise ConfigError(f"maxsize must be a positive int, not {maxsize!r}")
        subs = self._collect(subscriptions)
        checkers: dict[str, Adapter] = {}
        for sub in subs:
            listed = self._instrument_cache.get(sub.venue) if self.validate_symbols else None
            checker = checkers.get(sub.venue)
            if checker is None:
                checker = checkers[sub.venue] = self._new_adapter(sub.venue)
                if listed is not None:  # symbols spelled from the list (Hyperliquid spot coins)
                    checker.use_instruments(tuple(listed.by_symbol.values()))
            if listed is not None:  # first: the list knows the symbols (did you mean)
                listed.check(sub.symbol)  # UnknownSymbol with close matches
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
            self._spawn(self._reconcile())
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

    def _collect(self, subscriptions: Iterable[Subscription | str | Iterable[Subscription]]) -> list[Subscription]:
        """The subscriptions of :meth:`subscribe`'s arguments, flattened, with
        their venues checked (typed errors for anything else)."""
        subs: list[Subscription] = []
        for item in subscriptions:
            if isinstance(item, Subscription):
                subs.append(item)
            elif isinstance(item, str):
                subs.extend(Subscription.parse(item))
            elif isinstance(item, Iterable):
                subs.extend(item)
            else:
                raise ConfigError(
                    f"not a subscription: {item!r}; pass wsmux.trades(...)/wsmux.book(...) results, "
                    "Subscription objects or 'VENUE:CHANNEL:SYMBOL' strings"
                )
        if not subs:
            raise ConfigError("subscribe() needs at least one subscription")
        for sub in subs:
            if not isinstance(sub, Subscription):
                raise ConfigError(f"not a subscription: {sub!r}")
            self._check_venue(sub.venue, "subscribe()")
        return subs

    async def asubscribe(
        self,
        *subscriptions: Subscription | str | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
    ) -> Stream:
        """:meth:`subscribe`, after loading the instrument list of every venue
        named (from the cache when fresh): an unknown symbol raises
        :class:`~wsmux.errors.UnknownSymbol` here, with close matches in its
        message and ``suggestions``, and nothing is subscribed.

        ``subscribe()`` itself is synchronous: it validates against lists
        already loaded (by an earlier ``asubscribe``/:meth:`load_instruments`
        or an earlier subscription of the venue). A symbol of a venue whose
        list is not loaded yet is checked when its connection is placed: if
        unlisted it is not subscribed, and the stream gets an
        :class:`~wsmux.Error` (kind ``UNKNOWN_SYMBOL``) carrying the same
        ``UnknownSymbol``. With ``validate_symbols=False`` this is ``subscribe()``.
        A venue whose list cannot be fetched within ``instruments_timeout``
        goes ahead unvalidated (logged once, counted).
        """
        self._check_usable()
        subs = self._collect(subscriptions)
        if self.validate_symbols:
            await self._instrument_lists({sub.venue for sub in subs}, self.instruments_timeout)
        return self.subscribe(*subs, maxsize=maxsize, overflow=overflow, name=name)

    async def load_instruments(self, *venues: str) -> dict[str, dict[str, Instrument]]:
        """The instrument lists of ``venues`` by unified symbol, fetched (once,
        then from the cache until ``instruments_ttl`` passes) from each venue's
        REST instruments endpoint. Works with ``validate_symbols=False`` too.

        Venues without an instruments endpoint, or whose list could not be
        fetched (logged once, counted in ``counters["instruments_failures"]``),
        are missing from the result.

        Raises:
            UnknownVenue, NotStarted, ClosedError.
        """
        self._check_usable()
        for venue in venues:
            self._check_venue(venue, "load_instruments()")
        lists = await self._instrument_lists(set(venues), None)
        return {venue: dict(listed.by_symbol) for venue, listed in lists.items()}

    def instrument(self, venue: str, symbol: str) -> Instrument | None:
        """The loaded instrument of ``symbol`` on ``venue`` (tick, lot and
        contract sizes), or ``None`` when its list is not loaded or lacks it."""
        listed = self._instrument_cache.get(venue)
        return None if listed is None else listed.by_symbol.get(symbol)

    async def _instrument_lists(self, venues: set[str], timeout: float | None) -> dict[str, VenueInstruments]:
        """The lists of ``venues`` with an instruments endpoint: fresh ones from
        the cache, the others fetched (one fetch per venue in flight, shared),
        waiting at most ``timeout`` s (the fetches go on after it)."""
        now = self.clock.monotonic()
        waiting: list[asyncio.Task[VenueInstruments | None]] = []
        for venue in venues:
            if self._instrument_cache.fresh(venue, now):
                continue
            failed_at = self._instruments_failed_at.get(venue)
            if failed_at is not None and now - failed_at < INSTRUMENTS_RETRY_AFTER:
                continue  # failed a moment ago: do not make every subscription wait for it again
            task = self._instrument_loads.get(venue)
            if task is None or task.done():
                adapter = self._new_adapter(venue)
                if not adapter.instruments_requests():
                    continue
                task = asyncio.get_running_loop().create_task(self._fetch_instruments(venue, adapter))
                self._instrument_loads[venue] = task
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
            waiting.append(task)
        if waiting:
            _done, late = await asyncio.wait(waiting, timeout=timeout)
            for task in late:
                venue = next(v for v, t in self._instrument_loads.items() if t is task)
                self._instruments_unavailable(venue, f"no answer within {timeout} s (still fetching)")
        lists = {venue: self._instrument_cache.get(venue) for venue in venues}
        return {venue: listed for venue, listed in lists.items() if listed is not None}

    async def _fetch_instruments(self, venue: str, adapter: Adapter) -> VenueInstruments | None:
        """Fetch and cache ``venue``'s list; ``None`` (logged, counted) on failure."""
        rest = self._rest_limiters.get(venue)
        if rest is None:
            rest = self._rest_limiters[venue] = RestLimiter.for_limits(adapter.limits)
        assert self._http is not None
        bodies: list[tuple[str, bytes]] = []
        try:
            instruments = await fetch_instruments(self._http, adapter, clock=self.clock, limiter=rest, bodies=bodies)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never a crash: any failure means "unvalidated"
            self._instruments_unavailable(venue, f"{type(exc).__name__}: {exc}")
            return None
        if not instruments:
            self._instruments_unavailable(venue, "the venue listed no instrument wsmux can name")
            return None
        if self._record_dir and venue not in self._units:  # the list the connections will use: logged for replay
            record = self._recorder(venue)
            for url, body in bodies:
                record("rest", 0, self.clock.time_ns(), body, url)
        return self._instrument_cache.put(venue, instruments, self.clock.monotonic())

    def _instruments_unavailable(self, venue: str, reason: str) -> None:
        self.counters["instruments_failures"] += 1
        self._instruments_failed_at[venue] = self.clock.monotonic()
        if venue not in self._instruments_warned:  # once per venue: no log storm
            self._instruments_warned.add(venue)
            _log.warning(
                "%s: instrument list unavailable (%s); subscribing without symbol validation, "
                "sizes in the venue's own unit",
                venue,
                reason,
            )

    async def _validated(self, fresh: list[Subscription]) -> list[Subscription]:
        """``fresh`` without the symbols their venue's list does not have; each
        of those is unsubscribed from its streams and reported to them."""
        if not self.validate_symbols:
            return fresh
        lists = await self._instrument_lists({sub.venue for sub in fresh}, self.instruments_timeout)
        keep: list[Subscription] = []
        placed: dict[str, Adapter] = {}
        for sub in fresh:
            listed = lists.get(sub.venue)
            try:
                if listed is not None:
                    listed.check(sub.symbol)
                    self._placed_check(sub, placed)
            except UnknownSymbol as exc:
                self._refuse(sub, exc)
            else:
                keep.append(sub)
        return keep

    def _placed_check(self, sub: Subscription, placed: dict[str, Adapter]) -> None:
        """Check ``sub`` with the list the venue's connections were given
        (fixed by its first connection): a symbol listed since then may be
        unknown to them (a Hyperliquid spot pair spelled from the list).

        Raises:
            UnknownSymbol: the connections' adapters cannot map ``sub``.
        """
        units = self._units.get(sub.venue)
        if units is None:  # no connection yet: it will get the current list
            return
        checker = placed.get(sub.venue)
        if checker is None:
            checker = placed[sub.venue] = self._new_adapter(sub.venue)
            checker.use_instruments(units)
        try:
            checker.check(sub)
        except UnknownSymbol as exc:
            raise UnknownSymbol(
                f"{exc} (listed since the venue's first connection, whose instrument list its connections keep; "
                "a new Multiplexer knows it)",
                venue=sub.venue,
                symbol=sub.symbol,
            ) from exc

    def _refuse(self, sub: Subscription, exc: UnknownSymbol) -> None:
        """Drop ``sub`` (an unlisted symbol) and tell the streams that asked for it."""
        self.counters["unknown_symbols"] += 1
        streams = self._sub_refs.pop(sub, set())
        key = (sub.venue, sub.channel, sub.symbol)
        routed = self._routes.get(key, [])
        for stream in streams:
            with contextlib.suppress(ValueError):
                routed.remove(stream)
        if not routed:
            self._routes.pop(key, None)
        self._puts.clear()
        _log.warning("%s:%s:%s not subscribed: %s", sub.venue, sub.channel.value, sub.symbol, exc)
        error = Error(sub.venue, sub.symbol, ErrorKind.UNKNOWN_SYMBOL, str(exc), self.clock.time_ns(), exc)
        for stream in streams:
            stream._put(error)

    async def _reconcile(self) -> None:
        """Make the placed subscriptions equal the referenced ones.

        The only code that places or removes venue subscriptions. It runs
        under one lock and compares the wanted set (a stream refers to it)
        with the placed set, so no interleaving of subscribe() and aclose()
        — even with no loop turn in between — can leave an orphan or a
        subscription placed twice.
        """
        async with self._placing:
            orphaned = [sub for sub in self._sub_conn if sub not in self._sub_refs]
            if orphaned:
                await self._unplace(orphaned)
            fresh = [sub for sub in self._sub_refs if sub not in self._sub_conn]
            if fresh and not self._closed:
                fresh = await self._validated(fresh)
            if fresh and not self._closed:
                await self._place(fresh)

    async def _unplace(self, orphaned: list[Subscription]) -> None:
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

    def _attach_stream(self, stream: Stream) -> None:
        """Route the events of ``stream``'s subscriptions (and the status
        events of their venues) to it."""
        self._streams.append(stream)
        if stream.overflow is Overflow.BLOCK:
            self._blocking.append(stream)
            self._blocking_for.clear()
        venues = set()
        for sub in stream.subscriptions:
            self._routes.setdefault((sub.venue, sub.channel, sub.symbol), []).append(stream)
            venues.add(sub.venue)
        self._puts.clear()
        stream._callbacks_changed = self._stream_changed  # its puts and backpressure depend on its consumers
        for venue in venues:
            self._venue_streams.setdefault(venue, []).append(stream)
        if self.metrics is not None and stream._clock_ns is not None:
            stream.latency = self.metrics.stream_histogram(stream.name)
            stream._sample_mask = self.metrics.sample_every - 1

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
                    replay_trades=self._sequencer is not None,
                )
                shards.append(shard)
            take, vsubs = vsubs[: shard.room], vsubs[shard.room :]
            for sub in take:
                self._sub_conn[sub] = shard
            await shard.add(take)
            shard.start()

    def _driver(self, venue: str) -> HostDriver | None:
        """The endpoint choice of ``venue``, made on first use (None: off)."""
        if venue in self._drivers:
            return self._drivers[venue]
        driver = None
        policy = self._endpoint_policy
        hosts = self._host_lists.get(venue)
        if hosts is None and self._choose_backups and venue not in self._endpoints:
            cls = self.adapter_class(venue)
            if cls.backup_urls:
                hosts = [Endpoint(url) for url in (cls.default_url, *cls.backup_urls)]
        if policy is not None and hosts is not None and len(hosts) > 1:
            chooser = EndpointChooser(
                venue, [(h.url or "", h.rest_url) for h in hosts], policy, redundancy=self.redundancy
            )
            driver = HostDriver(self, venue, chooser)
            self._spawn(driver.run())
        self._drivers[venue] = driver
        return driver

    def endpoint_hosts(self, venue: str) -> list[HostHealth]:
        """What endpoint choice measured of each host of ``venue`` (empty when
        it is off for the venue), in the order of preference given."""
        driver = self._drivers.get(venue)
        if driver is None:
            return []
        shards = self._shards.get(venue, ())
        members = [m for sh in shards for m in member_health(sh, self._host_of)]
        return driver.health(members, {cid: h for sh in shards for cid, h in lag_histograms(sh).items()})

    def _new_connection(self, venue: str, sink: Callable[[Event], object]) -> Connection:
        conn_id = next(_ids)
        driver = self._driver(venue)
        if driver is None:
            adapter = self._new_adapter(venue)
        else:
            chooser = driver.chooser
            url = chooser.pick(driver.load())
            adapter = self.adapter_class(venue)(url=url, rest_url=chooser.host(url).rest_url)
        conn = self._connection(venue, conn_id, adapter, sink)
        if driver is not None:
            driver.placed(conn, url)
        return conn

    def _connection(
        self, venue: str, conn_id: int, adapter: Adapter, sink: Callable[[Event], object], **settings: Any
    ) -> Connection:
        """A Connection to ``venue`` that shares the venue's connect gate and
        REST budget; ``settings`` override the Connection's other arguments."""
        units = self._units.get(venue)
        if units is None:  # the venue's first connection fixes its units
            listed = self._instrument_cache.get(venue) if self.validate_symbols else None
            units = self._units[venue] = tuple(listed.by_symbol.values()) if listed is not None else ()
        if units:
            adapter.use_instruments(units)
        gate = self._connect_gates.get(venue)
        if gate is None:
            gate = self._connect_gates[venue] = ConnectGate(ConnectLimiter.for_limits(adapter.limits), self.clock)
        rest = self._rest_limiters.get(venue)
        if rest is None:
            rest = self._rest_limiters[venue] = RestLimiter.for_limits(adapter.limits)
        options: dict[str, Any] = {
            "http": self._http,
            "clock": self.clock,
            "backoff": self.backoff,
            "transport": self.transport,
            "connect_timeout": self.connect_timeout,
            **self._stall_settings(adapter),
            "stable_after": self.stable_after,
            "wait_unblocked": functools.partial(self._wait_unblocked, venue),
            "recorder": self._recorder(venue) if self._record_dir else None,
            "connect_gate": gate,
            "rest_limiter": rest,
        }
        options.update(settings)
        conn = Connection(conn_id, adapter, sink, **options)
        self._wire_feed(conn.feed)
        return conn

    def _wire_feed(self, feed: Feed) -> None:
        """Give a connection's Feed its own data-quality gate (sequence state
        belongs to a connection: one gate each, reset on reconnect), and the
        multiplexer's ``snapshot_wait``."""
        feed.snapshot_wait_ns = round(self.snapshot_wait * 1e9)
        if self._gate is not None:
            feed.gate = self._gate.fresh()
            feed.on_quality = self._on_quality
        if self.metrics is not None:
            feed.sample_mask = 0  # every frame until a tick finds the connection busy
            feed.sample_latency = self.metrics.venue(feed.venue).latency.sample

    def _on_quality(self, event: Event, verdict: Quality) -> None:
        """A connection's quality gate flagged ``event``: odd timestamps are
        counted (the event is delivered), anything else is withheld and reported."""
        if verdict is Quality.TS_FUTURE or verdict is Quality.TS_PAST:
            self.counters["odd_timestamps"] += 1
        else:
            self._bad(event, event.venue, verdict)  # type: ignore[attr-defined]

    def _stall_settings(self, adapter: Adapter) -> dict[str, Any]:
        """``stale_after``/``stall_channels`` of a new connection (see ``stale_after``)."""
        if self.stale_after is None:
            hb = adapter.heartbeat
            return {"stale_after": hb.stale_after, "stall_channels": hb.stale_channels}
        if self.stale_after is False:
            return {"stale_after": None, "stall_channels": None}
        return {"stale_after": float(self.stale_after), "stall_channels": None}

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
            self._blocking_for.clear()
        for lst in self._venue_streams.values():
            with contextlib.suppress(ValueError):
                lst.remove(stream)
        orphaned = False
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
                    orphaned = True
        if orphaned:
            await self._reconcile()

    def subscribe_consolidated(
        self,
        symbol: str,
        venues: Iterable[str],
        *,
        channel: Channel | str = Channel.BOOK,
        maxsize: int = 10_000,
        overflow: Overflow | str = Overflow.CONFLATE,
        name: str = "",
    ) -> Stream:
        """A stream of :class:`~wsmux.ConsolidatedQuote` events: the best bid
        and offer for ``symbol`` across ``venues``, emitted whenever it changes.

        ``channel`` is where each venue's top of book comes from: ``BOOK`` (a
        synced L2 book: invalid books are left out until resynced) or
        ``QUOTES`` (the venue's BBO feed). The live object is
        :meth:`consolidated`. Closing the stream unsubscribes.
        """
        self._check_usable()
        channel = to_channel(channel)
        overflow = _to_overflow(overflow)
        venue_list = (venues,) if isinstance(venues, str) else tuple(dict.fromkeys(venues))
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
            NotSubscribed: no consolidated stream for ``symbol`` (a ``KeyError``).
        """
        cons = self._consolidated.get(symbol)
        if cons is None:
            raise NotSubscribed(f"no consolidated stream for {symbol!r}: call mux.subscribe_consolidated() first")
        return cons

    def analyze(
        self,
        operator: Operator,
        *subscriptions: Subscription | str | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
    ) -> Stream:
        """A stream of the outputs of ``operator`` (a
        :class:`wsmux.analytics.Operator`) fed by ``subscriptions``.

        Subscribes like :meth:`subscribe` and attaches the operator with
        :func:`wsmux.analytics.attach`. With ``BLOCK`` (the default) a full
        output stream pauses the venues feeding it, like any BLOCK stream.
        Closing the returned stream detaches the operator and unsubscribes.
        """
        from wsmux.analytics import attach  # analytics is a layer above: imported on use

        self._check_usable()
        overflow = _to_overflow(overflow)
        feeder = self.subscribe(*subscriptions, name=f"{name or 'analytics'}-feed")

        async def close_feeder(stream: Stream) -> None:
            with contextlib.suppress(ValueError):
                self._streams.remove(stream)
            with contextlib.suppress(ValueError):
                self._blocking.remove(stream)
                self._blocking_for.clear()
            await feeder.aclose()

        try:
            out = attach(feeder, operator, maxsize=maxsize, overflow=overflow, name=name, on_close=close_feeder)
        except BaseException:
            self._spawn(feeder.aclose())
            raise
        self._streams.append(out)
        if overflow is Overflow.BLOCK:
            self._blocking.append(out)
            self._blocking_for.clear()
            out._callbacks_changed = self._stream_changed  # whether it can hold its venues back
        return out

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
            symbol: str = event.symbol  # type: ignore[attr-defined]
            if self._stale_after_by_channel:
                self._last_seen[venue, channel, symbol] = event.recv_ns  # type: ignore[attr-defined]
            puts = self._puts.get((cls, venue, symbol))
            if puts is None:
                puts = self._puts_for(cls, venue, channel, symbol)
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
        elif (cls is ConnectFailed or cls is Connected) and self._drivers:
            driver = self._drivers.get(event.venue)  # type: ignore[attr-defined]
            if driver is not None:
                if cls is Connected:
                    driver.on_connected(event)  # type: ignore[arg-type]
                else:
                    driver.on_connect_failed(event)  # type: ignore[arg-type]
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
                    response = await fetch_rest(
                        self._http,
                        http_request,
                        deadline=adapter.limits.rest_deadline,
                        max_body=adapter.limits.max_rest_body,
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
                    fetched = adapter.parse_trades(symbol, response.body, recv_ns)
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
        cls = type(event)
        channel = _CHANNEL_OF.get(cls)
        if channel is not None:
            venue: str = event.venue  # type: ignore[attr-defined]
            symbol: str = event.symbol  # type: ignore[attr-defined]
            if self._stale_after_by_channel:
                self._last_seen[venue, channel, symbol] = event.recv_ns  # type: ignore[attr-defined]
            puts = self._puts.get((cls, venue, symbol))
            if puts is None:
                puts = self._puts_for(cls, venue, channel, symbol)
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

    def _puts_for(
        self, cls: type, venue: str, channel: Channel, symbol: str
    ) -> tuple[Callable[[Event], None], ...]:
        """Build the dispatch-table entry of (``cls``, ``venue``, ``symbol``)."""
        puts = self._puts[cls, venue, symbol] = tuple(
            stream._put_for(cls) for stream in self._routes.get((venue, channel, symbol), ())
        )
        return puts

    async def _stale_watch(self) -> None:
        """Per (venue, channel, symbol): report a subscribed channel that went silent."""
        tick = min(self._stale_after_by_channel.values()) / 4
        started = self.clock.time_ns()
        while not self._closed:
            await asyncio.sleep(tick)
            now = self.clock.time_ns()
            symbols = collections.Counter((sub.venue, sub.channel) for sub in self._sub_conn)
            for sub, shard in list(self._sub_conn.items()):
                limit = self._stale_after_by_channel.get(sub.channel)
                if limit is None:
                    continue
                if self.metrics is not None:  # the channel's predicted arrival rate, within bounds
                    limit = self.metrics.symbol_stale_after(
                        sub.venue, sub.channel, limit, symbols[sub.venue, sub.channel]
                    )
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

    def _stream_changed(self) -> None:
        """A stream's callbacks changed, it started being read, or it closed:
        the puts built from it, and whether it can hold its venues back."""
        self._puts.clear()
        self._blocking_for.clear()

    def _wait_unblocked(self, venue: str) -> Any:
        """Backpressure for one connection: wait only for a full BLOCK stream
        that this connection's venue feeds (other venues keep flowing).
        Decided per frame, so a BLOCK stream added later is honoured too.
        Only streams that can fill are looked at per frame: those that buffer
        (read, or not yet given a callback) or have async callbacks; a stream
        whose only consumers are sync callbacks holds nothing. A stream tells
        (``_callbacks_changed``) when that may change."""
        streams = self._blocking_for.get(venue)
        if streams is None:
            streams = self._blocking_for[venue] = tuple(
                stream
                for stream in self._blocking
                if (stream._buffering or stream._async_cbs) and any(sub.venue == venue for sub in stream.subscriptions)
            )
        for stream in streams:
            if stream.blocked:
                return self._paused(stream, venue)
        return None

    async def _paused(self, stream: Stream, venue: str) -> None:
        """Wait for room in ``stream``; a pause longer than ``stall_report_after``
        is a stall: logged (WARNING, ``wsmux.multiplexer``) and counted."""
        waiting = asyncio.ensure_future(stream._wait_space())
        try:
            done, _ = await asyncio.wait({waiting}, timeout=self.stall_report_after)
            if done:
                return
            self.counters["stalls"] = self.counters.get("stalls", 0) + 1
            _log.warning(
                "stream %r is full (%d events, overflow=block) and not read: %s is paused until it is read; "
                "read it (async for / get()), or give it another overflow policy, or only callbacks",
                stream.name,
                stream.maxsize,
                venue,
            )
            started = self.clock.monotonic()
            await waiting
            _log.warning(
                "stream %r read again: %s resumed after %.1f s", stream.name, venue, self.clock.monotonic() - started
            )
        finally:
            waiting.cancel()

    def _subscribed(self, venue: str, symbol: str, channel: Channel) -> list[Subscription]:
        """The subscriptions of ``venue:channel:symbol`` some stream holds, or a typed error."""
        self._check_usable()
        self._check_venue(venue, f"{'l3_book' if channel is Channel.L3 else 'book'}()")
        wanted = [s for s in self._sub_refs if s.venue == venue and s.symbol == symbol and s.channel is channel]
        if not wanted:
            helper = "l3" if channel is Channel.L3 else "book"
            raise NotSubscribed(
                f"no stream subscribes to the {channel.value} of {venue}:{symbol}: "
                f"subscribe first, e.g. mux.subscribe(wsmux.{helper}({venue!r}, {symbol!r}))"
            )
        return wanted

    def _find_book(self, venue: str, symbol: str, channel: Channel) -> Shard:
        """The shard carrying ``venue:channel:symbol``, or a typed error saying why not."""
        for sub in self._subscribed(venue, symbol, channel):
            shard = self._sub_conn.get(sub)
            if shard is not None:
                return shard
        raise NotSubscribed(
            f"the {channel.value} of {venue}:{symbol} is being subscribed (the event loop has not run yet); "
            f"await mux.synced({venue!r}, {symbol!r}) to wait for a valid book"
        )

    def book(self, venue: str, symbol: str) -> BookView:
        """The live L2 book of ``symbol`` on ``venue`` (read-only view).

        Raises:
            NotSubscribed: no stream subscribes to that book (a ``KeyError``).
            UnknownVenue: no adapter has that venue id (a ``KeyError``).
            NotStarted, ClosedError: the multiplexer is not started or closed.
        """
        shard = self._find_book(venue, symbol, Channel.BOOK)
        book = shard.book(symbol)
        if book is None:
            raise NotSubscribed(f"the book of {venue}:{symbol} has no connection yet; retry after the loop ran")
        return BookView(book, self.instrument(venue, symbol))

    def l3_book(self, venue: str, symbol: str) -> L3BookView:
        """The live order-by-order book of ``symbol`` on ``venue`` (read-only view).

        Raises:
            NotSubscribed: no stream subscribes to that L3 book (a ``KeyError``).
            UnknownVenue: no adapter has that venue id (a ``KeyError``).
            NotStarted, ClosedError: the multiplexer is not started or closed.
        """
        shard = self._find_book(venue, symbol, Channel.L3)
        book = shard.l3_book(symbol)
        if book is None:
            raise NotSubscribed(f"the L3 book of {venue}:{symbol} has no connection yet; retry after the loop ran")
        return L3BookView(book)

    async def synced(self, venue: str, symbol: str, timeout: float | None = 30.0) -> BookView:
        """Wait until the subscribed L2 book of ``symbol`` on ``venue`` is valid
        (in sync with the venue) and return its live view.

        Returns at once if it is valid already. Use it before reading a book
        or driving a mock exchange right after ``subscribe()``::

            mux.subscribe(book("binance", "BTC-USDT"))
            view = await mux.synced("binance", "BTC-USDT", timeout=10)

        Raises:
            SyncTimeout: not valid within ``timeout`` seconds (None: wait
                forever); the message has the connection's state and last error.
            NotSubscribed, UnknownVenue, NotStarted, ClosedError: as :meth:`book`.
        """
        _check_seconds("timeout", timeout, positive=True, optional=True)
        self._subscribed(venue, symbol, Channel.BOOK)
        view = self._valid_view(venue, symbol)
        if view is not None:
            return view
        ready = asyncio.Event()

        def check(_event: Event) -> None:
            if self._valid_view(venue, symbol) is not None:
                ready.set()

        waiter = self.subscribe(Subscription(venue, Channel.BOOK, symbol), name=f"synced-{venue}:{symbol}")
        waiter.on(Resynced, check).on(BookSnapshot, check).on(BookUpdate, check)
        try:
            if self._valid_view(venue, symbol) is not None:
                ready.set()
            try:
                async with asyncio.timeout(timeout):  # not wait_for: see Stream.get
                    await ready.wait()
            except TimeoutError:
                raise SyncTimeout(
                    f"the book of {venue}:{symbol} was not in sync within {timeout} s; {self._why(venue)}"
                ) from None
        finally:
            await waiter.aclose()
        view = self._valid_view(venue, symbol)
        if view is None:  # pragma: no cover - closed meanwhile
            raise ClosedError("multiplexer closed while waiting for a book")
        return view

    async def watch_order_book(self, venue: str, symbol: str, timeout: float | None = None) -> BookView:
        """The next consistent view of the L2 book of ``symbol`` on ``venue``
        (the ccxt.pro idiom ``await exchange.watch_order_book(symbol)``).

        The first call subscribes (the subscription lives until :meth:`close`)
        and returns once the book is valid. Each later call returns as soon as
        the valid book changed since the previous call returned (at once if it
        already did), so a loop of calls never misses the latest state. The
        view is live: read it before the next ``await`` (or keep ``view.copy()``).

        Raises:
            SyncTimeout: no consistent book within ``timeout`` seconds.
            UnknownVenue, UnknownSymbol, NotStarted, ClosedError.
        """
        _check_seconds("timeout", timeout, positive=True, optional=True)
        self._check_usable()
        key = (venue, symbol)
        watch = self._book_watchers.get(key)
        if watch is None:
            watch = self._book_watchers[key] = _BookWatch()
            stream = self.subscribe(
                Subscription(venue, Channel.BOOK, symbol), name=f"watch_order_book-{venue}:{symbol}"
            )

            def changed(_event: Event, watch: _BookWatch = watch) -> None:
                if self._valid_view(venue, symbol) is not None:
                    watch.changed()

            stream.on(BookSnapshot, changed).on(BookUpdate, changed)
            if self._valid_view(venue, symbol) is not None:
                watch.changed()
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see Stream.get
                await watch.wait()
        except TimeoutError:
            raise SyncTimeout(
                f"no consistent book of {venue}:{symbol} within {timeout} s; {self._why(venue)}"
            ) from None
        view = self._valid_view(venue, symbol)
        if view is None:  # invalidated between the change and this task resuming: wait for the resync
            return await self.watch_order_book(venue, symbol, timeout)
        return view

    def _valid_view(self, venue: str, symbol: str) -> BookView | None:
        shard = self._sub_conn.get(Subscription(venue, Channel.BOOK, symbol))
        book = shard.book(symbol) if shard is not None else None
        return BookView(book, self.instrument(venue, symbol)) if book is not None and book.valid else None

    def _why(self, venue: str) -> str:
        """The state and last error of ``venue``'s connections, for error messages."""
        conns = [c for c in self.connections() if c.venue == venue]
        if not conns:
            return "no connection to the venue yet"
        parts = []
        for c in conns:
            err = c.stats.last_error
            parts.append(f"connection {c.conn_id} {c.state}" + (f", last error: {err}" if err else ""))
        return "; ".join(parts)

    @property
    def books(self) -> dict[tuple[str, str], BookView]:
        """Every subscribed book by ``(venue, symbol)``."""
        out: dict[tuple[str, str], BookView] = {}
        for sub, shard in self._sub_conn.items():
            if sub.channel is Channel.BOOK:
                book = shard.book(sub.symbol)
                if book is not None:
                    out[sub.venue, sub.symbol] = BookView(book, self.instrument(sub.venue, sub.symbol))
        return out

    def connections(self) -> list[Connection]:
        """All connections (for inspection)."""
        return [c for shards in self._shards.values() for shard in shards for c in shard.conns]

    def health(self) -> Health:
        """A snapshot of every connection, book and stream: state, last error
        and when, ages, counters (frames, parse errors, gaps, resyncs, drops).
        A typed :class:`~wsmux.health.Health` record; ``.to_dict()`` for a dict."""
        streams = [
            StreamHealth(
                name=s.name,
                subscriptions=[str(x) for x in s.subscriptions],
                buffered=s.buffered,
                received=s.stats.received,
                delivered=s.stats.delivered,
                dropped=s.stats.dropped,
                dropped_by_reason=dict(s.stats.dropped_by_reason),
                callback_errors=s.stats.callback_errors,
                max_buffered=s.stats.max_buffered,
                blocked=s.blocked,
            )
            for s in self._streams
        ]
        breakers = {
            venue: {"state": b.state.value, **attrs.asdict(b.stats)} for venue, b in sorted(self._breakers.items())
        }
        shards = [
            ShardHealth(
                venue=sh.venue,
                route=sh.route,
                connections=[c.conn_id for c in sh.conns],
                subscriptions=len(sh.subscriptions),
                rollovers=sh.rollovers,
                arbiter=attrs.asdict(sh.arbiter.stats) if sh.arbiter is not None else None,
                members=member_health(sh, self._host_of),
            )
            for shards in self._shards.values()
            for sh in shards
        ]
        trades = attrs.asdict(self._sequencer.stats) if self._sequencer is not None else None
        conns = self.connections()
        return Health(
            venue_health=venue_health(self.metrics, conns, breakers, self.books, self._rest_limiters),
            connections=[_connection_health(c) for c in conns],
            streams=streams,
            shards=shards,
            breakers=breakers,
            trades=trades,
            counters=dict(self.counters),
            endpoints=[h for venue in sorted(self._drivers) for h in self.endpoint_hosts(venue)],
        )

    # --- metrics ------------------------------------------------------------------

    def serve_metrics(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve the metrics in the Prometheus text format on ``http://host:port/metrics``
        from a thread of its own (extra ``wsmux[prometheus]``). Each scrape
        asks this event loop for a :meth:`health` snapshot (never blocking
        the loop; a loop that does not answer within 2 s gets the last
        snapshot served). Stopped by :meth:`close` (or the returned server's ``close()``).

        Raises:
            ConfigError: ``port`` is in use or cannot be bound, metrics are
                off, or ``prometheus_client`` is not installed.
        """
        self._check_usable()
        if self.metrics is None:
            raise ConfigError("metrics are off (Multiplexer(metrics=False)): nothing to serve")
        from wsmux.metrics._prometheus import MetricsServer

        if self._metrics_server is not None:
            self._metrics_server.close()
        self._metrics_server = MetricsServer.start(self, asyncio.get_running_loop(), port, host)
        return self._metrics_server  # type: ignore[no-any-return]

    async def _metrics_loop(self, interval: float) -> None:
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                self._metrics_tick()
            except Exception:  # a metrics bug must not end the metrics, nor anything else
                _log.exception("metrics tick failed")

    def _metrics_tick(self) -> None:
        """One second of metrics (see :meth:`MetricsRegistry.tick`): report the anomalies."""
        if self.metrics is None:
            return
        conns = self.connections()
        for venue in {c.venue for c in conns}:
            if self.metrics.clock_probe_due(venue):
                self._spawn(self._probe_clock(venue))
        for anomaly in self.metrics.tick(self.clock.time_ns(), conns):
            level = logging.INFO if anomaly.kind is AnomalyKind.RECOVERED else logging.WARNING
            _log.log(
                level,
                "%s connection %s channel %s: message rate %s (%.1f msg/s, baseline %.1f)",
                anomaly.venue,
                anomaly.conn_id,
                anomaly.channel.value if anomaly.channel is not None else "all",
                anomaly.kind.value,
                anomaly.rate,
                anomaly.expected,
            )
            self._dispatch(anomaly)

    async def _probe_clock(self, venue: str) -> None:
        """One NTP-style exchange with the venue's REST server time (where it
        has one): feeds its clock offset. A failure is logged and skipped."""
        if self.metrics is None or self._http is None:
            return
        adapter = self._new_adapter(venue)
        request = adapter.time_request()
        if request is None:
            self.metrics.no_server_time(venue)
            return
        limiter = self._rest_limiters.get(venue)
        if limiter is not None and limiter.acquire(self.clock.monotonic(), request.weight) > 0:
            return  # the REST budget is spent: the next probe tries again
        try:
            sent = self.clock.time_ns()
            response = await fetch_rest(self._http, request, deadline=5.0, max_body=64 * 1024)
            received = self.clock.time_ns()
            if response.status_code != 200:
                raise SnapshotFailed(f"HTTP {response.status_code}")
            server = adapter.parse_server_time(response.body)
        except (WsmuxError, httpx.HTTPError) as exc:
            _log.info("%s: server-time probe failed: %s: %s", venue, type(exc).__name__, exc)
            return
        resolution = adapter.server_time_resolution_ns or adapter.server_time_unit_ns
        if not self.metrics.venue(venue).latency.rest_sample(sent, received, server, resolution):
            _log.info("%s: absurd server time ignored (offset over an hour or slow answer)", venue)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
