"""The synchronous API: the same composition for code without asyncio.

::

    from wsmux.sync import Multiplexer
    from wsmux import trades, book

    with Multiplexer() as mux:
        stream = mux.subscribe(trades("binance", "BTC-USDT"), book("binance", "BTC-USDT"))
        for event in stream:          # plain blocking iteration
            ...
        mux.book("binance", "BTC-USDT").best_bid()   # a consistent copy

The asyncio multiplexer runs on an event loop in a background daemon thread.
Iteration fetches events from it in batches (one thread hop per batch, not
per event). Callbacks registered with :meth:`SyncStream.on` run in that
background thread, inline, like async-API sync callbacks: keep them short or
hand work off. Leaving the ``with`` block — normally, by an exception or by
Ctrl-C (``KeyboardInterrupt``) — closes every stream and connection and joins
the thread; no signal handlers are installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

from wsmux.book import OrderBook
from wsmux.errors import ClosedError
from wsmux.model import Event
from wsmux.multiplexer import Multiplexer as AsyncMultiplexer
from wsmux.stream import Overflow, Stream
from wsmux.subscriptions import Subscription

__all__ = ["Multiplexer", "SyncStream"]

T = TypeVar("T")
E = TypeVar("E", bound=Event)
_POLL = 0.25  # seconds: how often a blocked wait wakes to let Ctrl-C through


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="wsmux-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return _wait(future, timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _wait(future: concurrent.futures.Future[T], timeout: float | None) -> T:
    """Wait for a cross-thread future in short slices so Ctrl-C is honoured."""
    waited = 0.0
    while True:
        try:
            return future.result(timeout=_POLL)
        except concurrent.futures.TimeoutError:
            waited += _POLL
            if timeout is not None and waited >= timeout:
                future.cancel()
                raise TimeoutError(f"no result within {timeout} s") from None
        except BaseException:
            if not future.done():
                future.cancel()
            raise


class SyncStream:
    """A :class:`~wsmux.Stream` read from plain threads. Iterate it or use
    :meth:`get`; it ends when closed."""

    def __init__(self, stream: Stream, runner: _LoopThread, batch: int = 1024) -> None:
        self._stream = stream
        self._runner = runner
        self._batch = batch
        self._pending: list[Event] = []
        self._index = 0

    @property
    def stats(self) -> Any:
        """The underlying stream's counters."""
        return self._stream.stats

    @property
    def name(self) -> str:
        return self._stream.name

    def on(self, event_type: type[E], callback: Callable[[E], object]) -> SyncStream:
        """Register a callback (runs in the background thread). Chainable."""
        self._runner.loop.call_soon_threadsafe(self._stream.on, event_type, callback)
        return self

    def get(self, timeout: float | None = None) -> Event:
        """The next event; blocks up to ``timeout`` seconds (None: forever).

        Raises:
            TimeoutError: nothing arrived in time.
            StopIteration: the stream is closed and drained.
        """
        if self._index < len(self._pending):
            event = self._pending[self._index]
            self._index += 1
            return event
        try:
            self._pending = self._runner.call(self._stream.get_batch(self._batch), timeout)
        except StopAsyncIteration:
            raise StopIteration from None
        self._index = 1
        return self._pending[0]

    def __iter__(self) -> Iterator[Event]:
        while True:
            try:
                yield self.get()
            except StopIteration:
                return

    def close(self) -> None:
        """Unsubscribe (idempotent)."""
        if self._runner.loop.is_running():
            self._runner.call(self._stream.aclose(), timeout=10)

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Multiplexer:
    """The synchronous multiplexer. Takes the same keyword arguments as
    :class:`wsmux.Multiplexer`. Use it as a context manager."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._runner: _LoopThread | None = None
        self._mux: AsyncMultiplexer | None = None

    def __enter__(self) -> Multiplexer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the background loop and the multiplexer."""
        if self._runner is not None:
            return
        self._runner = _LoopThread()

        async def make() -> AsyncMultiplexer:
            mux = AsyncMultiplexer(**self._kwargs)
            await mux.start()
            return mux

        try:
            self._mux = self._runner.call(make(), timeout=30)
        except BaseException:
            self._runner.stop()
            self._runner = None
            raise

    def close(self) -> None:
        """Close everything and join the background thread (idempotent)."""
        runner, mux = self._runner, self._mux
        self._runner = self._mux = None
        if runner is None:
            return
        try:
            if mux is not None:
                runner.call(mux.close(), timeout=30)
        finally:
            runner.stop()

    def _parts(self) -> tuple[_LoopThread, AsyncMultiplexer]:
        if self._runner is None or self._mux is None:
            raise ClosedError("use 'with Multiplexer() as mux' first")
        return self._runner, self._mux

    def subscribe(
        self,
        *subscriptions: Subscription | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow = Overflow.BLOCK,
        name: str = "",
    ) -> SyncStream:
        """Like :meth:`wsmux.Multiplexer.subscribe`; returns a :class:`SyncStream`."""
        runner, mux = self._parts()

        async def sub() -> Stream:
            stream = mux.subscribe(*subscriptions, maxsize=maxsize, overflow=overflow, name=name)
            stream.__aiter__()  # the sync stream is read by iteration: buffer from now on
            return stream

        return SyncStream(runner.call(sub(), timeout=30), runner)

    def book(self, venue: str, symbol: str) -> OrderBook:
        """A consistent copy of the live book (check ``.valid``)."""
        runner, mux = self._parts()

        async def copy() -> OrderBook:
            return mux.book(venue, symbol).copy()

        return runner.call(copy(), timeout=30)

    def health(self) -> dict[str, Any]:
        """See :meth:`wsmux.Multiplexer.health`."""
        runner, mux = self._parts()

        async def health() -> dict[str, Any]:
            return mux.health()

        return runner.call(health(), timeout=30)
