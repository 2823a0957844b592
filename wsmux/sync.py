"""The synchronous API: the same composition for code without asyncio.

::

    from wsmux import book, trades
    from wsmux.sync import Multiplexer

    with Multiplexer() as mux:
        stream = mux.subscribe(trades("binance", "BTC-USDT"), book("binance", "BTC-USDT"))
        for event in stream:          # plain blocking iteration
            ...
        mux.book("binance", "BTC-USDT").best_bid()   # a consistent copy

Callback-only programs (the cryptofeed pattern) register callbacks and block
in :meth:`Multiplexer.run`::

    with Multiplexer() as mux:
        mux.subscribe(trades("binance", "BTC-USDT")).on(Trade, print)
        mux.run(duration=60)          # or mux.run_forever(); Ctrl-C returns

The asyncio multiplexer runs on an event loop in a background daemon thread.
Iteration fetches events from it in batches (one thread hop per batch, not
per event). A stream buffers events for reading until its first callback is
registered; from then on it buffers only once it is read (:meth:`SyncStream.get`
or iteration), so a stream that only has callbacks never fills up and never
pauses its venues. Callbacks registered with :meth:`SyncStream.on` run in
that background thread, inline, like async-API sync callbacks: keep them
short or hand work off. Leaving the ``with`` block — normally, by an
exception or by Ctrl-C (``KeyboardInterrupt``) — closes every stream and
connection and joins the thread; no signal handlers are installed.

If the background thread dies (``SystemExit`` or ``KeyboardInterrupt``
raised inside a callback), every waiting call wakes at once with
:class:`~wsmux.errors.LoopThreadDied` (the cause chained), and ``close()``
cleans up without waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from wsmux._endpoints import EndpointPolicy
from wsmux._retry import Backoff
from wsmux.adapter import Adapter, Endpoint
from wsmux.book import ConsolidatedBBO, OrderBook
from wsmux.book.l3 import L3Book
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.connection import Transport
from wsmux.errors import ClosedError, LoopThreadDied
from wsmux.health import Health, HostHealth
from wsmux.model import BookSide, Channel, Event, Instrument
from wsmux.multiplexer import Multiplexer as AsyncMultiplexer
from wsmux.reliability import QualityGate
from wsmux.stream import Overflow, Stream, StreamStats
from wsmux.subscriptions import Subscription

if TYPE_CHECKING:
    from wsmux.analytics import Operator
    from wsmux.metrics._prometheus import MetricsServer

__all__ = ["Multiplexer", "SyncStream"]

T = TypeVar("T")
E = TypeVar("E", bound=Event)
_POLL = 0.25  # seconds: how often a blocked wait wakes to let Ctrl-C through


def _ignore_loop_errors(_loop: asyncio.AbstractEventLoop, _context: dict[str, Any]) -> None:
    return None


class _LoopThread:
    """The background event loop; knows when it died and wakes every waiter."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.died: BaseException | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="wsmux-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        except BaseException as exc:  # SystemExit/KeyboardInterrupt from a callback: report it
            self.died = exc
            # The tasks that carried it would log "exception was never retrieved"
            # from a finalizer, at any later point of any thread; the death is
            # reported by LoopThreadDied (cause chained) instead.
            self.loop.set_exception_handler(_ignore_loop_errors)
            return
        self.loop.close()

    def _dead_error(self) -> LoopThreadDied:
        exc = self.died
        what = f"{type(exc).__name__}({exc})" if exc is not None else "it stopped"
        err = LoopThreadDied(
            f"the wsmux background loop thread is gone ({what} raised in a callback?); "
            "the multiplexer cannot continue: close it and create a new one"
        )
        err.__cause__ = exc
        return err

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and self.died is None and not self.stopped

    def check(self) -> None:
        """Raise if no more calls can run: LoopThreadDied, or ClosedError after stop()."""
        if self.died is not None or (not self.thread.is_alive() and not self.stopped):
            raise self._dead_error()
        if self.stopped or self.loop.is_closed():
            raise ClosedError("the multiplexer is closed")

    def call(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = None) -> T:
        """Run the coroutine ``make()`` builds on the loop and wait for it.
        The coroutine is only created once the loop can run it (never left
        un-awaited)."""
        self.check()
        if self.in_loop():
            raise RuntimeError(
                "a blocking wsmux.sync call from a callback (the loop thread) would deadlock; "
                "call it from your own thread, or use the async API inside callbacks"
            )
        future = asyncio.run_coroutine_threadsafe(make(), self.loop)
        return self._wait(future, timeout)

    def in_loop(self) -> bool:
        """True in the loop thread itself (inside callbacks)."""
        return threading.current_thread() is self.thread

    def _wait(self, future: concurrent.futures.Future[T], timeout: float | None) -> T:
        """Wait in short slices so Ctrl-C is honoured and a dead loop is noticed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic()))
            try:
                return future.result(timeout=wait)
            except concurrent.futures.TimeoutError:
                if not self.thread.is_alive():
                    future.cancel()
                    raise self._dead_error() from self.died
                if deadline is not None and time.monotonic() >= deadline:
                    future.cancel()
                    raise TimeoutError(f"no result within {timeout} s") from None
            except BaseException:
                if not future.done():
                    future.cancel()
                raise

    def stop(self, cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``cleanup()`` on the loop and stop it; if the loop thread died,
        clean up on a helper thread, bounded (never blocks for long)."""
        self.stopped = True
        if self.thread.is_alive() and self.died is None:
            try:
                if cleanup is not None:
                    future = asyncio.run_coroutine_threadsafe(cleanup(), self.loop)
                    self._wait(future, 30)
            finally:
                if self.loop.is_running():
                    self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=10)
            return
        # the loop thread died: its loop is stopped but intact; close the
        # sockets from a helper thread (what the dead loop raised stays there)
        self.thread.join(timeout=1)
        if self.loop.is_closed():
            return
        helper = threading.Thread(target=self._cleanup_dead, args=(cleanup,), name="wsmux-cleanup", daemon=True)
        helper.start()
        helper.join(timeout=10)

    def _cleanup_dead(self, cleanup: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
        try:
            if cleanup is not None:
                self.loop.run_until_complete(asyncio.wait_for(cleanup(), 5))
        except BaseException:  # best effort: the loop already failed once
            pass
        finally:
            with contextlib.suppress(Exception):
                self.loop.close()


class SyncStream:
    """A :class:`~wsmux.Stream` read from plain threads. Iterate it or use
    :meth:`get`; register callbacks with :meth:`on`; it ends when closed."""

    def __init__(self, stream: Stream, runner: _LoopThread, batch: int = 1024) -> None:
        self._stream = stream
        self._runner = runner
        self._batch = batch
        self._pending: list[Event] = []
        self._index = 0

    @property
    def stats(self) -> StreamStats:
        """The underlying stream's counters."""
        return self._stream.stats

    @property
    def name(self) -> str:
        return self._stream.name

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._stream.subscriptions

    def on(self, event_type: type[E], callback: Callable[[E], object]) -> SyncStream:
        """Register a callback (it runs in the background thread). Chainable.

        Registered before the stream is first read, it makes the stream a
        callback stream: nothing is buffered for reading until :meth:`get`
        or iteration starts (so callback-only programs never stall).

        The loop runs in another thread, so events can arrive between
        :meth:`Multiplexer.subscribe` and this call: those that arrived
        before the *first* ``on()`` are handed to each callback registered
        while the stream is unread; once one callback is registered, events
        of a type that has no callback yet are not kept. Register the
        callback for the events you must not miss first."""

        if self._runner.in_loop():  # from a callback: we are on the loop already
            self._stream.on(event_type, callback)
            return self

        async def register() -> None:
            self._stream.on(event_type, callback)

        self._runner.call(register, timeout=30)
        return self

    def get(self, timeout: float | None = None) -> Event:
        """The next event; blocks up to ``timeout`` seconds (None: forever).

        Raises:
            TimeoutError: nothing arrived in time.
            ClosedError: the stream (or the multiplexer) is closed and drained.
            LoopThreadDied: the background loop thread is gone.
        """
        if self._index < len(self._pending):
            event = self._pending[self._index]
            self._index += 1
            return event
        stream = self._stream

        async def fetch() -> list[Event]:
            stream.__aiter__()  # reading: buffer from now on
            return await stream.get_batch(self._batch)

        try:
            self._pending = self._runner.call(fetch, timeout)
        except StopAsyncIteration:
            raise ClosedError(f"stream {stream.name} is closed and drained") from None
        self._index = 1
        return self._pending[0]

    def __iter__(self) -> Iterator[Event]:
        """Events until the stream is closed (then the loop ends)."""
        while True:
            try:
                yield self.get()
            except ClosedError as exc:
                if isinstance(exc, LoopThreadDied):
                    raise
                return

    def close(self) -> None:
        """Unsubscribe (idempotent)."""
        if self._runner.alive and not self._stream.closed:
            self._runner.call(self._stream.aclose, timeout=10)

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SyncStream of {self._stream!r}>"


def _l3_copy(book: L3Book) -> L3Book:
    out = L3Book(book.venue, book.symbol)
    out.snapshot(
        order
        for side in (BookSide.BID, BookSide.ASK)
        for price, _size in book.levels(side)
        for order in book.orders_at(price, side)
    )
    out.valid = book.valid
    out.seq = book.seq
    return out


class Multiplexer:
    """The synchronous multiplexer: the arguments of :class:`wsmux.Multiplexer`
    (see there), the same methods, blocking. Use it as a context manager."""

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
        stale_after: float | None = None,
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
        kwargs: dict[str, Any] = {
            "endpoints": endpoints,
            "adapters": adapters,
            "http": http,
            "clock": clock,
            "backoff": backoff,
            "transport": transport,
            "connect_timeout": connect_timeout,
            "stale_after": stale_after,
            "stable_after": stable_after,
            "snapshot_wait": snapshot_wait,
            "record": record,
            "redundancy": redundancy,
            "quality": quality,
            "breaker": breaker,
            "trade_gaps": trade_gaps,
            "rollover_margin": rollover_margin,
            "stale_channels": stale_channels,
            "backfill_trades": backfill_trades,
            "validate_symbols": validate_symbols,
            "instruments_ttl": instruments_ttl,
            "instruments_timeout": instruments_timeout,
            "endpoint_choice": endpoint_choice,
            "metrics": metrics,
        }
        AsyncMultiplexer(**kwargs)  # validate now, in the caller's thread (typed errors at once)
        self._kwargs = kwargs
        self._runner: _LoopThread | None = None
        self._mux: AsyncMultiplexer | None = None
        self._closed = False
        self._stop = threading.Event()

    def __enter__(self) -> Multiplexer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the background loop and the multiplexer.

        Raises:
            ClosedError: the multiplexer was closed (create a new one).
        """
        if self._closed:
            raise ClosedError("multiplexer is closed; create a new Multiplexer")
        if self._runner is not None:
            return
        self._runner = _LoopThread()

        async def make() -> AsyncMultiplexer:
            mux = AsyncMultiplexer(**self._kwargs)
            await mux.start()
            return mux

        try:
            self._mux = self._runner.call(make, timeout=30)
        except BaseException:
            self._runner.stop()
            self._runner = None
            raise

    def close(self) -> None:
        """Close everything and join the background thread (idempotent; prompt
        even if the background thread died)."""
        runner, mux = self._runner, self._mux
        self._runner = self._mux = None
        self._closed = True
        self._stop.set()
        if runner is None:
            return
        runner.stop(mux.close if mux is not None else None)

    def _parts(self) -> tuple[_LoopThread, AsyncMultiplexer]:
        if self._closed:
            raise ClosedError("multiplexer is closed; create a new Multiplexer")
        if self._runner is None or self._mux is None:
            raise ClosedError("use 'with Multiplexer() as mux' (or mux.start()) first")
        self._runner.check()
        return self._runner, self._mux

    def _call(self, fn: Callable[[AsyncMultiplexer], T], timeout: float | None = 30) -> T:
        """``fn(mux)`` on the loop thread (every read of live state happens there)."""
        runner, mux = self._parts()
        if runner.in_loop():  # from a callback: read the live state directly
            return fn(mux)

        async def run() -> T:
            return fn(mux)

        return runner.call(run, timeout)

    # --- running ------------------------------------------------------------------

    def run(self, duration: float | None = None) -> None:
        """Block while callbacks run: for ``duration`` seconds (None: until
        :meth:`stop`, Ctrl-C or :meth:`close` from another thread).

        Raises:
            LoopThreadDied: the background loop thread died meanwhile.
            KeyboardInterrupt: Ctrl-C (leave the ``with`` block to clean up).
        """
        runner, _ = self._parts()
        deadline = None if duration is None else time.monotonic() + duration
        while True:
            wait = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
            if wait <= 0 or self._stop.wait(wait):
                break
            if not runner.thread.is_alive() or runner.died is not None:
                runner.check()
        if self._runner is runner:  # not closed meanwhile: a stop() is used up
            self._stop.clear()
            runner.check()

    def run_forever(self) -> None:
        """:meth:`run` with no time limit."""
        self.run(None)

    def stop(self) -> None:
        """Make :meth:`run` return (safe from callbacks and other threads; a
        stop() before run() makes that run() return at once)."""
        self._stop.set()

    # --- subscriptions ------------------------------------------------------------

    def subscribe(
        self,
        *subscriptions: Subscription | str | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
    ) -> SyncStream:
        """Like :meth:`wsmux.Multiplexer.asubscribe` (an unknown symbol raises
        :class:`~wsmux.errors.UnknownSymbol` here, once the venue's instrument
        list is loaded); returns a :class:`SyncStream`. From a callback (the
        loop thread) it is :meth:`wsmux.Multiplexer.subscribe`."""
        runner, mux = self._parts()
        if runner.in_loop():
            stream = mux.subscribe(*subscriptions, maxsize=maxsize, overflow=overflow, name=name)
        else:
            stream = runner.call(
                lambda: mux.asubscribe(*subscriptions, maxsize=maxsize, overflow=overflow, name=name),
                mux.instruments_timeout + 30,
            )
        return SyncStream(stream, runner)

    def subscribe_consolidated(
        self,
        symbol: str,
        venues: Iterable[str],
        *,
        channel: Channel | str = Channel.BOOK,
        maxsize: int = 10_000,
        overflow: Overflow | str = Overflow.CONFLATE,
        name: str = "",
    ) -> SyncStream:
        """Like :meth:`wsmux.Multiplexer.subscribe_consolidated`."""
        runner, _ = self._parts()
        venue_list = (venues,) if isinstance(venues, str) else tuple(venues)
        stream = self._call(
            lambda mux: mux.subscribe_consolidated(
                symbol, venue_list, channel=channel, maxsize=maxsize, overflow=overflow, name=name
            )
        )
        return SyncStream(stream, runner)

    def analyze(
        self,
        operator: Operator,
        *subscriptions: Subscription | str | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
    ) -> SyncStream:
        """Like :meth:`wsmux.Multiplexer.analyze`: a stream of ``operator``'s
        outputs (the operator runs on the loop thread)."""
        runner, _ = self._parts()
        subs = tuple(subscriptions)
        stream = self._call(
            lambda mux: mux.analyze(operator, *subs, maxsize=maxsize, overflow=overflow, name=name)
        )
        return SyncStream(stream, runner)

    # --- books --------------------------------------------------------------------

    def book(self, venue: str, symbol: str) -> OrderBook:
        """A consistent copy of the live book (check ``.valid``); errors as
        :meth:`wsmux.Multiplexer.book`."""
        return self._call(lambda mux: mux.book(venue, symbol).copy())

    @property
    def books(self) -> dict[tuple[str, str], OrderBook]:
        """Consistent copies of every subscribed book by ``(venue, symbol)``."""
        return self._call(lambda mux: {key: view.copy() for key, view in mux.books.items()})

    def l3_book(self, venue: str, symbol: str) -> L3Book:
        """A consistent copy of the live order-by-order book (check ``.valid``)."""
        return self._call(lambda mux: _l3_copy(mux.l3_book(venue, symbol)._book))

    def consolidated(self, symbol: str) -> tuple[tuple[float, float, str] | None, tuple[float, float, str] | None]:
        """The consolidated best bid and best ask ``(price, size, venue)`` of ``symbol``."""

        def read(mux: AsyncMultiplexer) -> Any:
            cons: ConsolidatedBBO = mux.consolidated(symbol)
            return cons.best_bid(), cons.best_ask()

        result: tuple[tuple[float, float, str] | None, tuple[float, float, str] | None] = self._call(read)
        return result

    def synced(self, venue: str, symbol: str, timeout: float | None = 30.0) -> OrderBook:
        """Block until the subscribed book is valid; return a consistent copy.

        Raises:
            SyncTimeout: not valid within ``timeout`` seconds (the message says why).
        """
        runner, mux = self._parts()

        async def wait() -> OrderBook:
            return (await mux.synced(venue, symbol, timeout)).copy()

        return runner.call(wait, None)

    def watch_order_book(self, venue: str, symbol: str, timeout: float | None = None) -> OrderBook:
        """A copy of the next consistent book (see :meth:`wsmux.Multiplexer.watch_order_book`)."""
        runner, mux = self._parts()

        async def wait() -> OrderBook:
            return (await mux.watch_order_book(venue, symbol, timeout)).copy()

        return runner.call(wait, None)

    def load_instruments(self, *venues: str) -> dict[str, dict[str, Instrument]]:
        """See :meth:`wsmux.Multiplexer.load_instruments` (blocks while fetching)."""
        runner, mux = self._parts()
        return runner.call(lambda: mux.load_instruments(*venues), None)

    def instrument(self, venue: str, symbol: str) -> Instrument | None:
        """See :meth:`wsmux.Multiplexer.instrument`."""
        return self._call(lambda mux: mux.instrument(venue, symbol))
    def serve_metrics(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve Prometheus metrics (see :meth:`wsmux.Multiplexer.serve_metrics`)."""

        return self._call(lambda mux: mux.serve_metrics(port, host))

    def health(self) -> Health:
        """See :meth:`wsmux.Multiplexer.health`."""
        return self._call(lambda mux: mux.health())

    def endpoint_hosts(self, venue: str) -> list[HostHealth]:
        """See :meth:`wsmux.Multiplexer.endpoint_hosts`."""
        return self._call(lambda mux: mux.endpoint_hosts(venue))
