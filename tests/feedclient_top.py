"""A Feed driven by a plain websockets connection (the layer under the runtime),
for mock end-to-end tests of venues added on the new adapter contract.

The client reads frames in a background task into a :class:`wsmux._pipeline.Feed`
and carries out its actions (resubscribes). :meth:`FeedClient.sync` sends the
venue's application ping and waits for its pong: the mock answers in order,
after every frame it published before, so once the pong is processed every
earlier frame has been too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets

from wsmux import BookSnapshot, BookUpdate, Channel, Event, Subscription
from wsmux._pipeline import Feed, Send
from wsmux.adapter import Adapter
from wsmux.testing import MockExchange, collect_until

__all__ = ["FeedClient", "deletes_first", "feed_client", "mock_top", "publish_until_top_changes", "wait_book_time"]


class FeedClient:
    """One connection's Feed against a mock (see the module docstring).

    Args:
        mock: the running mock.
        adapter: the adapter instance of the connection.
        is_pong: tells the venue's pong frame (answer to ``adapter.heartbeat.ping_message``).
    """

    def __init__(self, mock: MockExchange, adapter: Adapter, is_pong: Callable[[str | bytes], bool]) -> None:
        self.mock = mock
        self.adapter = adapter
        self.is_pong = is_pong
        self.events: list[Event] = []
        self.feed = Feed(adapter, self.events.append)
        self.ws: Any = None
        self.pongs = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.adapter.connect_url(subs), max_size=2**24)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        for message in self.adapter.subscribe(subs):
            await self.ws.send(message)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if self.is_pong(frame):
                    self.pongs += 1
                self.feed.on_frame(frame, time.time_ns())
                for action in self.feed.take_actions():
                    assert isinstance(action, Send)
                    for message in action.messages:
                        await self.ws.send(message)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        except BaseException as exc:  # surfaced by wait()
            self._error = exc
            self._changed.set()
            raise

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (bounded) until ``predicate()`` holds after some frame."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._error is not None:
                    raise self._error
                self._changed.clear()
                await self._changed.wait()

    async def sync(self) -> None:
        """Every frame the mock published before this call has been processed."""
        ping = self.adapter.heartbeat.ping_message
        assert ping is not None
        n = self.pongs
        await self.ws.send(ping)
        await self.wait(lambda: self.pongs > n)

    def of(self, cls: type) -> list[Any]:
        """The events of type ``cls`` so far."""
        return [e for e in self.events if isinstance(e, cls)]

    def count(self, cls: type) -> int:
        return sum(isinstance(e, cls) for e in self.events)


@contextlib.asynccontextmanager
async def feed_client(
    mock: MockExchange, adapter: Adapter, subs: list[Subscription], is_pong: Callable[[str | bytes], bool]
) -> AsyncIterator[FeedClient]:
    """A connected :class:`FeedClient` subscribed to ``subs``; closed on exit."""
    client = FeedClient(mock, adapter, is_pong)
    await client.open(subs)
    try:
        yield client
    finally:
        await client.close()


async def publish_until_top_changes(mock: Any, symbol: str) -> int:
    """For mocks of snapshot-only venues (``top(symbol)`` and ``time``): publish
    steps of ``symbol`` until its published top of book changes, so that the
    client gets an update stamped with the returned mock time (ms). An
    unchanged top sends the client nothing to wait for."""
    before = mock.top(symbol)
    for _ in range(1000):
        await mock.publish(1, [symbol])
        if mock.top(symbol) != before:
            return int(mock.time[symbol])
    raise AssertionError(f"the top of {symbol} did not change in 1000 steps")


def mock_top(mock: Any, symbol: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The top of book a snapshot-only mock publishes (``top(symbol)``), as floats."""
    market = mock.markets[symbol]
    bids, asks = mock.top(symbol)
    return (
        tuple((market.price(p), market.size(s)) for p, s in bids),
        tuple((market.price(p), market.size(s)) for p, s in asks),
    )


async def wait_book_time(stream: Any, symbol: str, time_ms: int) -> list[Event]:
    """Read ``stream`` until a book event of ``symbol`` stamped ``time_ms`` or later."""
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.ts or 0) >= time_ms * 10**6,
    )


def deletes_first(levels: tuple[tuple[float, float], ...]) -> tuple[set[tuple[float, float]], set[tuple[float, float]]]:
    """An update's (deletes, sets), checking that every delete comes before every set."""
    n = sum(1 for _, size in levels if size == 0.0)
    assert all(size == 0.0 for _, size in levels[:n]), levels
    return set(levels[:n]), set(levels[n:])
