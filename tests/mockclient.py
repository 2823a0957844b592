"""A Feed-level client for mock-exchange tests: one websockets connection, one
adapter, one :class:`wsmux._pipeline.Feed`, httpx for REST snapshots.

Every received frame goes to the Feed (gunzipped first where the adapter is
``compressed``, as the Connection does) and the Feed's actions are carried
out. Tests synchronise on data with :meth:`MockFeedClient.pump_until`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.adapter import Adapter
from wsmux.errors import SnapshotFailed
from wsmux.model import Channel, Event
from wsmux.subscriptions import Subscription
from wsmux.testing import MockExchange

__all__ = ["MockFeedClient"]


class MockFeedClient:
    """Use as ``async with MockFeedClient(mock, adapter, subs) as client``."""

    def __init__(self, mock: Any, adapter: Adapter, subs: Sequence[Subscription]) -> None:
        self.mock = mock
        self.adapter = adapter
        self.subs = list(subs)
        self.events: list[Event] = []
        self.feed = Feed(adapter, self.events.append)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        self.ws: ClientConnection | None = None
        self.http = httpx.AsyncClient()
        self.frames = 0
        self.binary_frames = 0

    async def __aenter__(self) -> Any:
        await self.open()
        return self

    async def open(self, messages: Sequence[str | bytes] | None = None) -> None:
        """Connect and subscribe: send ``messages``, by default the adapter's own."""
        # max_queue=None: after a REST resync the client may stop reading with
        # stale pushes still queued; an unbounded queue lets the close through
        self.ws = await connect(self.adapter.connect_url(self.subs), max_queue=None)
        self.adapter.reset()
        for message in self.adapter.subscribe(self.subs) if messages is None else messages:
            await self.ws.send(message)

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.aclose()

    async def pump_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Read frames (doing the Feed's actions) until ``done()``."""
        assert self.ws is not None

        async def run() -> None:
            while not done():
                frame = await self.ws.recv()  # type: ignore[union-attr]
                self.frames += 1
                if isinstance(frame, bytes):
                    self.binary_frames += 1
                    if self.adapter.compressed:
                        frame = self.adapter.decompress(frame)
                self.feed.on_frame(frame, 0)
                await self.do_actions()

        await asyncio.wait_for(run(), timeout)

    async def do_actions(self) -> None:
        for action in self.feed.take_actions():
            if isinstance(action, Send):
                for message in action.messages:
                    await self.ws.send(message)  # type: ignore[union-attr]
            elif isinstance(action, FetchSnapshot):
                r = await self.http.get(action.request.url, params=list(action.request.params))
                if r.status_code != 200:
                    self.feed.on_snapshot_error(action.symbol, SnapshotFailed(f"HTTP {r.status_code}"), 0)
                else:
                    self.feed.on_snapshot_body(action.symbol, r.content, 0)

    def assert_books_equal(self, scale: float = 1.0) -> None:
        """Every book is valid and equals the mock's market level by level
        (the mock's sizes times ``scale``)."""
        mock: MockExchange = self.mock
        for symbol, sync in self.feed.syncs.items():
            assert sync.valid, symbol
            bids, asks = mock.markets[symbol].depth()
            if scale != 1.0:
                bids = tuple((p, s * scale) for p, s in bids)
                asks = tuple((p, s * scale) for p, s in asks)
            assert sync.book.depth() == (bids, asks), symbol
            sync.book._check()

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]
