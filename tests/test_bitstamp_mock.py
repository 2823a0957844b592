"""BitstampAdapter against MockBitstamp, end to end.

Feed level: a bare ``websockets`` client feeding a :class:`wsmux._pipeline.Feed`,
carrying out its actions (REST snapshots with httpx, resubscribes). It
synchronises on ``bts:heartbeat``: the mock answers in order, after every
frame published before. Multiplexer level: the real runtime, synchronised on
the trade of the last step (a step's book messages go out before its trade).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from wsmux import (
    Backoff,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Integrity,
    Multiplexer,
    Resynced,
    Subscription,
    Trade,
    book,
    l3,
    trades,
)
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.errors import SnapshotFailed
from wsmux.exchanges.bitstamp import BitstampAdapter
from wsmux.model import BookSide, OrderUpdate
from wsmux.testing import MockBitstamp, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
HEARTBEAT = '{"event":"bts:heartbeat"}'


class Client:
    """A Feed fed by a plain websockets connection, with REST by httpx."""

    def __init__(self, mock: MockBitstamp) -> None:
        self.mock = mock
        self.adapter = BitstampAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        self.events: list[Event] = []
        self.feed = Feed(self.adapter, self.events.append)
        self.ws: Any = None
        self.http = httpx.AsyncClient()
        self.beats = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.mock.ws_url, max_size=2**24)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
            elif sub.channel is Channel.L3:
                self.feed.add_l3(sub)
        for message in self.adapter.subscribe(subs):
            await self.ws.send(message)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        await self.ws.close()
        await self.http.aclose()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if '"bts:heartbeat"' in frame:
                    self.beats += 1
                self.feed.on_frame(frame, time.time_ns())
                await self._act()
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        except BaseException as exc:
            self._error = exc
            self._changed.set()
            raise

    async def _act(self) -> None:
        while actions := self.feed.take_actions():
            for action in actions:
                if isinstance(action, Send):
                    for message in action.messages:
                        await self.ws.send(message)
                elif isinstance(action, FetchSnapshot):
                    r = await self.http.get(action.request.url, params=list(action.request.params))
                    if r.status_code != 200:
                        error = SnapshotFailed(f"HTTP {r.status_code}")
                        self.feed.on_snapshot_error(action.symbol, error, time.time_ns(), action.channel)
                    else:
                        self.feed.on_snapshot_body(action.symbol, r.content, time.time_ns(), action.channel)

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                if self._error is not None:
                    raise self._error
                self._changed.clear()
                await self._changed.wait()

    async def sync(self) -> None:
        """Every frame the mock published before this call has been processed."""
        n = self.beats
        await self.ws.send(HEARTBEAT)
        await self.wait(lambda: self.beats > n)

    def count(self, cls: type) -> int:
        return sum(isinstance(e, cls) for e in self.events)


@contextlib.asynccontextmanager
async def client(mock: MockBitstamp, subs: list[Subscription]) -> Any:
    c = Client(mock)
    await c.open(subs)
    await c.sync()  # the subscriptions are answered before the heartbeat
    try:
        yield c
    finally:
        await c.close()


def assert_same_book(c: Client, mock: MockBitstamp, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.markets[symbol].depth()
    local._check()


def assert_same_l3(c: Client, mock: MockBitstamp, symbol: str) -> None:
    local = c.feed.l3_book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.markets[symbol].depth()
    orders = mock.orders[symbol]
    market = mock.markets[symbol]
    for side, book_side in ((orders.bids, BookSide.BID), (orders.asks, BookSide.ASK)):
        for price, order_id in side.items():  # the same order ids at the same prices
            order = local.get(str(order_id))
            assert order is not None and (order.side, order.price) == (book_side, market.price(price))
    assert len(local) == len(orders.bids) + len(orders.asks)


# --- Feed level -----------------------------------------------------------------------------------


async def test_l2_and_l3_books_equal_the_mock_after_many_steps() -> None:
    async with MockBitstamp(["BTC-USD", "ETH-USD"]) as mock:
        subs = [*book("bitstamp", "BTC-USD", "ETH-USD"), *l3("bitstamp", "BTC-USD"), *trades("bitstamp", "BTC-USD")]
        async with client(mock, subs) as c:
            await mock.publish(3)  # the first diffs make the Feed fetch the REST books
            await c.wait(lambda: c.count(Resynced) == 3)
            resynced = [e for e in c.events if isinstance(e, Resynced)]
            assert all(e.integrity is Integrity.UNVERIFIABLE for e in resynced if e.channel is Channel.BOOK)
            await mock.publish(300)
            await c.sync()
            for symbol in ("BTC-USD", "ETH-USD"):
                assert_same_book(c, mock, symbol)
                assert c.feed.syncs[symbol].stats.gaps == 0
            assert_same_l3(c, mock, "BTC-USD")
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            assert c.count(OrderUpdate) > 300
            tape = [e for e in c.events if isinstance(e, Trade)]
            market = mock.markets["BTC-USD"]
            assert len(tape) == market.next_trade_id - 1 > 50
            assert [int(t.trade_id) for t in tape] == sorted({int(t.trade_id) for t in tape})


async def test_crossed_diff_is_detected_and_healed_by_a_new_rest_book() -> None:
    async with MockBitstamp(["BTC-USD"]) as mock:
        async with client(mock, list(book("bitstamp", "BTC-USD"))) as c:
            await mock.publish(3)
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(20)
            mock.faults.crossed = 1
            await mock.publish(3)
            await c.wait(lambda: c.count(Gap) == 1)
            (gap,) = [e for e in c.events if isinstance(e, Gap)]
            assert gap.reason is GapReason.CROSSED and gap.channel is Channel.BOOK
            await mock.publish(3)
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(50)
            await c.sync()
            assert_same_book(c, mock, "BTC-USD")


@pytest.mark.parametrize("fault", ["skip_seq", "reorder"])
async def test_lost_or_late_diffs_are_undetectable_and_the_book_says_so(fault: str) -> None:
    """No ids: a lost (or overtaken, hence dropped as older) diff leaves a wrong
    book that still looks valid — what UNVERIFIABLE warns of."""
    async with MockBitstamp(["BTC-USD"]) as mock:
        async with client(mock, list(book("bitstamp", "BTC-USD"))) as c:
            await mock.publish(3)
            await c.wait(lambda: c.count(Resynced) == 1)
            setattr(mock.faults, fault, 1)
            await mock.publish(2)
            await c.sync()
            local = c.feed.book("BTC-USD")
            assert local is not None and local.valid and local.integrity is Integrity.UNVERIFIABLE
            assert local.depth() != mock.markets["BTC-USD"].depth()
            assert c.count(Gap) == 0


async def test_duplicates_are_harmless() -> None:
    async with MockBitstamp(["BTC-USD"]) as mock:
        async with client(mock, list(book("bitstamp", "BTC-USD"))) as c:
            await mock.publish(3)
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(30)
            await c.sync()
            assert c.count(Gap) == 0
            assert_same_book(c, mock, "BTC-USD")


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockBitstamp(["BTC-USD"]) as mock:
        async with client(mock, list(book("bitstamp", "BTC-USD"))) as c:
            await mock.publish(3)
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert_same_book(c, mock, "BTC-USD")


async def test_failed_rest_book_is_reported_and_retried() -> None:
    async with MockBitstamp(["BTC-USD"]) as mock:
        mock.faults.snapshot_garbage = 1
        async with client(mock, list(book("bitstamp", "BTC-USD"))) as c:
            await mock.publish(1)
            await c.wait(lambda: c.count(Error) == 1)
            await mock.publish(2)  # the next buffered diff asks again
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(30)
            await c.sync()
            assert_same_book(c, mock, "BTC-USD")


async def test_rejected_subscription_is_reported() -> None:
    async with MockBitstamp(["BTC-USD"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book("bitstamp", "BTC-USD"), *trades("bitstamp", "BTC-USD")]) as c:
            errors = [e for e in c.events if isinstance(e, Error)]
            assert len(errors) == 2 and all(e.kind is ErrorKind.VENUE_ERROR for e in errors)
            assert not c.feed.syncs["BTC-USD"].valid


async def test_rest_endpoints() -> None:
    async with MockBitstamp(["BTC-USD"]) as mock, httpx.AsyncClient() as http:
        adapter = BitstampAdapter(rest_url=mock.rest_url)
        r = await http.get(adapter.instruments_request().url)
        (instrument,) = adapter.parse_instruments(r.content)
        assert (instrument.symbol, instrument.native, instrument.tick_size) == ("BTC-USD", "btcusd", 0.01)
        request = adapter.l3_snapshot_request("BTC-USD")
        r = await http.get(request.url, params=list(request.params))
        snap = adapter.parse_l3_snapshot("BTC-USD", r.content, 0)
        assert len(snap.orders) == len(mock.markets["BTC-USD"].bids) + len(mock.markets["BTC-USD"].asks)
        assert snap.seq == mock.micros["BTC-USD"] * 1000 + 999


# --- Multiplexer level --------------------------------------------------------------------------------


async def test_multiplexer_l2_and_l3() -> None:
    async with MockBitstamp(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"bitstamp": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(
                book("bitstamp", "BTC-USD"), l3("bitstamp", "BTC-USD"), trades("bitstamp", "BTC-USD")
            )
            market = mock.markets["BTC-USD"]
            await mock.wait_acks(3)
            await mock.publish(5)  # buffered diffs and order events make the REST books be fetched
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(200)
            trades_before = market.next_trade_id
            while market.next_trade_id == trades_before:
                await mock.publish(1)
            await collect_until(stream, lambda e: isinstance(e, Trade) and e.trade_id == str(mock._trade_id))
            view = mux.book("bitstamp", "BTC-USD")
            assert view.valid and view.depth() == market.depth()
            l3_view = mux.l3_book("bitstamp", "BTC-USD")
            assert l3_view.valid and l3_view.depth() == market.depth()
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    symbol = "BTC-USD"
    subs = [Subscription("bitstamp", c, symbol) for c in sorted(BitstampAdapter.channels, key=lambda c: c.value)]
    async with MockBitstamp([symbol], seed=3) as mock:
        frames = await capture_frames(mock, BitstampAdapter, subs, steps=60)
    report = check_adapter(BitstampAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
