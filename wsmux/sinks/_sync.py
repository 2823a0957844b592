"""Sources for code without asyncio: :class:`SyncSource`.

The source runs on a background event-loop thread (the one
:mod:`wsmux.sync` uses) and its stream is handed out as a
:class:`~wsmux.sync.SyncStream`: plain iteration, ``get()``, callbacks."""

from __future__ import annotations

from collections.abc import Callable

from wsmux.book import OrderBook
from wsmux.errors import ClosedError
from wsmux.sinks._base import Source
from wsmux.sync import SyncStream, _LoopThread

__all__ = ["SyncSource"]


class SyncSource:
    """Run a source for synchronous code::

        from wsmux.sinks import RedisStreamSource, SyncSource

        with SyncSource(lambda: RedisStreamSource(book("binance", "BTC-USDT"))) as stream:
            for event in stream:
                ...

    Args:
        make: builds the source (called on the background loop).
    """

    def __init__(self, make: Callable[[], Source]) -> None:
        self._make = make
        self._runner: _LoopThread | None = None
        self._source: Source | None = None
        self.stream: SyncStream | None = None

    def start(self) -> SyncStream:
        """Start the loop thread and the source; returns its stream."""
        if self._runner is not None:
            raise ClosedError("SyncSource already started")
        runner = self._runner = _LoopThread()

        async def start() -> Source:
            source = self._make()
            await source.start()
            return source

        try:
            self._source = runner.call(start, timeout=60)
        except BaseException:
            runner.stop()
            raise
        self.stream = SyncStream(self._source.stream, runner)
        return self.stream

    def book(self, venue: str, symbol: str) -> OrderBook:
        """A copy of the consumer-side book (see :meth:`Source.book`)."""
        runner, source = self._runner, self._source
        if runner is None or source is None:
            raise ClosedError("SyncSource not started")

        async def copy() -> OrderBook:
            return source.book(venue, symbol).copy()

        return runner.call(copy, timeout=30)

    def close(self) -> None:
        """Close the source and join the loop thread (idempotent)."""
        runner, source = self._runner, self._source
        self._source = None
        if runner is not None and not runner.stopped:
            runner.stop(source.close if source is not None else None)

    def __enter__(self) -> SyncStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
