"""A Feed fed by a plain ``websockets`` connection: the layer under the
runtime, for end-to-end tests of an adapter against its mock.

The client reads in a background task, decompresses binary frames for
compressed venues (as :class:`wsmux.connection.Connection` does), hands frames
to a :class:`wsmux._pipeline.Feed` and carries out its ``Send`` actions
(resubscribes). :meth:`FeedClient.sync` synchronises on an application
ping/pong round trip: the mock answers in order, after every frame it
published before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import websockets

from wsmux import Channel, Event, Subscription
from wsmux._pipeline import Feed, Send
from wsmux.adapter import Adapter, Outgoing
from wsmux.testing import MockExchange

__all__ = ["FeedClient", "assert_same_book", "feed_client"]


class FeedClient:
    """See the module docstring.

    Args:
        mock: a started mock exchange.
        adapter: the adapter (pointed at the mock).
        ping: the application ping to send for :meth:`sync`.
        is_pong: recognises the mock's answer to ``ping`` (a decoded frame).
    """

    def __init__(self, mock: MockExchange, adapter: Adapter, ping: str, is_pong: Callable[[str | bytes], bool]) -> None:
        self.mock = mock
        self.adapter = adapter
        self.events: list[Event] = []
        self.feed = Feed(adapter, self.events.append)
        self.ws: Any = None
        self.pongs = 0
        self.frames = 0
        self._ping = ping
        self._is_pong = is_pong
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def open(self, subs: Sequence[Subscription], messages: Sequence[Outgoing] | None = None) -> None:
        """Connect, keep books for ``subs`` and send ``messages`` (default: the
        adapter's subscribe messages for ``subs``)."""
        self.ws = await websockets.connect(self.adapter.connect_url(subs), max_size=2**24)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        for message in self.adapter.subscribe(subs) if messages is None else messages:
            await self.ws.send(message)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def send(self, message: str | bytes) -> None:
        await self.ws.send(message)

    async def _read(self) -> None:
        adapter = self.adapter
        try:
            async for frame in self.ws:
                self.frames += 1
                if adapter.compressed and isinstance(frame, bytes):
                    try:
                        frame = adapter.decompress(frame)
                    except Exception:
                        self.feed.stats.parse_errors += 1
                        self._changed.set()
                        continue
                if self._is_pong(frame):
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

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                if self._error is not None:
                    raise self._error
                self._changed.clear()
                await self._changed.wait()

    async def sync(self) -> None:
        """Every frame the mock published before this call has been processed."""
        n = self.pongs
        await self.ws.send(self._ping)
        await self.wait(lambda: self.pongs > n)

    def count(self, cls: type) -> int:
        return sum(isinstance(e, cls) for e in self.events)


@contextlib.asynccontextmanager
async def feed_client(
    mock: MockExchange,
    adapter: Adapter,
    subs: Sequence[Subscription],
    *,
    ping: str = "ping",
    is_pong: Callable[[str | bytes], bool] = lambda f: f in ("pong", b"pong"),
    messages: Sequence[Outgoing] | None = None,
) -> AsyncIterator[FeedClient]:
    c = FeedClient(mock, adapter, ping, is_pong)
    await c.open(subs, messages)
    try:
        yield c
    finally:
        await c.close()


def assert_same_book(c: FeedClient, mock: MockExchange, symbol: str, depth: int | None = None) -> None:
    """The client's book equals the mock's own market level by level (its
    best ``depth`` levels per side, for venues that send only those)."""
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    bids, asks = mock.markets[symbol].depth()
    assert local.depth() == (bids[:depth], asks[:depth])
    local._check()
