"""A Feed fed by a plain ``websockets`` connection: the layer under the
runtime, for end-to-end tests of one adapter against its mock. One client for
every venue's mock tests (``feedclient_top`` and ``feedclient_gz`` only add
their venues' helpers and ``feed_client`` spellings).

The client reads frames in a background task, decompresses binary frames for
compressed venues (as :class:`wsmux.connection.Connection` does), hands them
to a :class:`wsmux._pipeline.Feed` and carries out its ``Send`` actions
(resubscribes, answers). :meth:`FeedClient.sync` sends a round-trip request
(the venue's application ping, or a given probe) and waits for its answer:
the mock answers in order, after every frame it published before, so no test
sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import websockets

from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.adapter import Adapter, Outgoing
from wsmux.model import Channel, Event
from wsmux.subscriptions import Subscription
from wsmux.testing import MockExchange

__all__ = ["FeedClient", "feed_client"]


class FeedClient:
    """One connection of ``adapter`` to ``mock``, its frames fed to a Feed.

    Args:
        mock: the running mock.
        adapter: the adapter (one per connection).
        probe: the message :meth:`sync` sends (None: the adapter's
            application ping, ``adapter.heartbeat.ping_message``).
        is_answer: tells the answer to ``probe`` among the (decoded) frames.
        url_from_adapter: connect to ``adapter.connect_url(subs)`` (venues
            that name streams in the URL) rather than ``mock.ws_url``.

    The client also performs what the adapter asks of REST, as the runtime
    does: its ``connect_request()`` before connecting (a token, then
    ``use_connect_response``) and the Feed's ``FetchSnapshot`` actions.
    """

    def __init__(
        self,
        mock: MockExchange,
        adapter: Adapter,
        probe: Outgoing | None,
        is_answer: Callable[[str | bytes], bool],
        *,
        url_from_adapter: bool = True,
    ) -> None:
        self.mock = mock
        self.adapter = adapter
        self.probe = probe
        self.is_answer = is_answer
        self.url_from_adapter = url_from_adapter
        self.events: list[Event] = []
        self.frames: list[str | bytes] = []
        """Every frame received (decoded)."""
        self.feed = Feed(adapter, self.events.append)
        self.ws: Any = None
        self.answers = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fetches: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._error: BaseException | None = None

    @property
    def pongs(self) -> int:
        """Answers to :meth:`sync` received so far."""
        return self.answers

    async def open(self, subs: Sequence[Subscription], messages: Sequence[Outgoing] | None = None) -> None:
        """Connect, keep books for ``subs`` and send ``messages`` (default: the
        adapter's subscribe messages for ``subs``)."""
        request = self.adapter.connect_request()
        if request is not None:
            response = await self._client().request(request.method, request.url, content=request.body)
            response.raise_for_status()
            self.adapter.use_connect_response(response.content)
        url = self.adapter.connect_url(subs) if self.url_from_adapter else self.mock.ws_url
        self.ws = await websockets.connect(url, max_size=2**24)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        for message in self.adapter.subscribe(subs) if messages is None else messages:
            await self.ws.send(message)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        await self.ws.close()
        for task in [self._task, *self._fetches]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._http is not None:
            await self._http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self._http

    async def send(self, message: str | bytes) -> None:
        await self.ws.send(message)

    async def _read(self) -> None:
        adapter = self.adapter
        try:
            async for frame in self.ws:
                if adapter.compressed and isinstance(frame, bytes):
                    try:
                        frame = adapter.decompress(frame)
                    except Exception:
                        self.feed.stats.parse_errors += 1
                        self._changed.set()
                        continue
                self.frames.append(frame)
                if self.is_answer(frame):
                    self.answers += 1
                self.feed.on_frame(frame, time.time_ns())
                await self._act()
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        except BaseException as exc:  # surfaced by wait()
            self._error = exc
            self._changed.set()
            raise

    async def _act(self) -> None:
        for action in self.feed.take_actions():
            if isinstance(action, Send):
                for message in action.messages:
                    await self.ws.send(message)
            else:
                assert isinstance(action, FetchSnapshot), action
                task = asyncio.get_running_loop().create_task(self._fetch(action))
                self._fetches.add(task)
                task.add_done_callback(self._fetches.discard)

    async def _fetch(self, action: FetchSnapshot) -> None:
        request = action.request
        try:
            response = await self._client().request(request.method, request.url, params=list(request.params))
            if response.status_code == 200:
                self.feed.on_snapshot_body(action.symbol, response.content, time.time_ns(), action.channel)
            else:
                error = RuntimeError(f"HTTP {response.status_code}")
                self.feed.on_snapshot_error(action.symbol, error, time.time_ns(), action.channel)
            await self._act()
        except BaseException as exc:  # surfaced by wait()
            self._error = exc
            raise
        finally:
            self._changed.set()

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (bounded) until ``predicate()`` holds after a frame."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._error is not None:
                    raise self._error
                self._changed.clear()
                await self._changed.wait()

    async def sync(self) -> None:
        """Every frame the mock published before this call has been processed."""
        probe = self.probe if self.probe is not None else self.adapter.heartbeat.ping_message
        assert probe is not None, "no probe and the adapter has no application ping"
        n = self.answers
        await self.ws.send(probe)
        await self.wait(lambda: self.answers > n)

    def of(self, cls: type) -> list[Any]:
        """The events of type ``cls`` so far."""
        return [e for e in self.events if isinstance(e, cls)]

    def count(self, cls: type) -> int:
        return sum(isinstance(e, cls) for e in self.events)


@contextlib.asynccontextmanager
async def feed_client(
    mock: MockExchange,
    adapter: Adapter,
    subs: Sequence[Subscription],
    probe: Outgoing | None,
    is_answer: Callable[[str | bytes], bool],
    *,
    url_from_adapter: bool = False,
    messages: Sequence[Outgoing] | None = None,
) -> AsyncIterator[FeedClient]:
    """An open :class:`FeedClient`, closed on exit."""
    c = FeedClient(mock, adapter, probe, is_answer, url_from_adapter=url_from_adapter)
    await c.open(subs, messages)
    try:
        yield c
    finally:
        await c.close()


async def fault_detected_and_healed(
    c: Any, mock: MockExchange, symbol: str, fault: str, reason: Any, same_book: Callable[[], None]
) -> None:
    """The shared fault scenario of the venue mock tests: a synced book, one
    injected ``fault``, exactly one Gap of ``reason`` on ``symbol``'s book,
    a resync, and a book equal to the mock's after more steps (``same_book``
    asserts it). ``c`` is a Feed client (``wait``, ``count``, ``events``, ``sync``)."""
    from wsmux.model import Gap, GapReason, Resynced

    await c.wait(lambda: c.count(Resynced) == 1)
    await mock.publish(30)
    setattr(mock.faults, fault, 1)
    await mock.publish(5)
    await c.wait(lambda: c.count(Gap) == 1)
    gap = next(e for e in c.events if isinstance(e, Gap))
    assert gap.reason is reason and gap.symbol == symbol and gap.channel is Channel.BOOK
    if reason is GapReason.SEQUENCE:
        assert gap.expected is not None and gap.received is not None and gap.received != gap.expected
    await c.wait(lambda: c.count(Resynced) == 2)  # resubscribed, new snapshot
    await mock.publish(100)
    await c.sync()
    same_book()
    assert c.count(Gap) == 1
