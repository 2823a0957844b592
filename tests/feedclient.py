"""A Feed fed by a plain ``websockets`` connection: the layer under the
runtime, for end-to-end tests of one adapter against its mock.

The client reads frames in a background task into a
:class:`wsmux._pipeline.Feed` and carries out the Feed's actions
(resubscribes). :meth:`FeedClient.sync` sends the venue's own round-trip
request (a ``ping`` or a JSON-RPC ``public/test``) and waits for its answer:
the mock answers in order, after every frame it published before, so no test
sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets

from wsmux._pipeline import Feed, Send
from wsmux.adapter import Adapter
from wsmux.model import Channel, Event
from wsmux.subscriptions import Subscription
from wsmux.testing import MockExchange

__all__ = ["FeedClient", "feed_client"]


class FeedClient:
    """One connection of ``adapter`` to ``mock``, its frames fed to a Feed.

    Args:
        mock: the running mock.
        adapter: the adapter (one per connection).
        probe: the message :meth:`sync` sends.
        is_answer: tells the answer to ``probe`` among the frames.
    """

    def __init__(
        self, mock: MockExchange, adapter: Adapter, probe: str, is_answer: Callable[[str | bytes], bool]
    ) -> None:
        self.mock = mock
        self.adapter = adapter
        self.probe = probe
        self.is_answer = is_answer
        self.events: list[Event] = []
        self.frames: list[str | bytes] = []
        self.feed = Feed(adapter, self.events.append)
        self.ws: Any = None
        self.answers = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.mock.ws_url, max_size=2**24)
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
                self.frames.append(frame)
                if self.is_answer(frame):
                    self.answers += 1
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
        """Wait (at most 10 s) until ``predicate()`` holds after a frame."""
        async with asyncio.timeout(10):
            while not predicate():
                if self._error is not None:
                    raise self._error
                self._changed.clear()
                await self._changed.wait()

    async def sync(self) -> None:
        """Every frame the mock published before this call has been processed."""
        n = self.answers
        await self.ws.send(self.probe)
        await self.wait(lambda: self.answers > n)

    def count(self, cls: type) -> int:
        return sum(isinstance(e, cls) for e in self.events)


@contextlib.asynccontextmanager
async def feed_client(
    mock: MockExchange,
    adapter: Adapter,
    subs: list[Subscription],
    probe: str,
    is_answer: Callable[[str | bytes], bool],
) -> AsyncIterator[FeedClient]:
    """An open :class:`FeedClient`, closed on exit."""
    c = FeedClient(mock, adapter, probe, is_answer)
    await c.open(subs)
    try:
        yield c
    finally:
        await c.close()
