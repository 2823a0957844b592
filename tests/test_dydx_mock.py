"""DydxAdapter against MockDydx, end to end.

Feed level: a plain websockets client into a Feed (tests/feedclient_top.py). dYdX
has no application ping, so a test synchronises on the connection's
``message_id``: once the adapter has taken the last id the mock assigned,
every message before it has been processed. Multiplexer level: the real
runtime, synchronised on the ``seq`` (the message id) of the last book update.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from feedclient_top import FeedClient, feed_client

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Integrity,
    Liquidation,
    Multiplexer,
    OpenInterest,
    Resynced,
    Subscription,
    Trade,
    book,
    candles,
    funding,
    liquidations,
    open_interest,
    trades,
)
from wsmux.exchanges.dydx import DydxAdapter
from wsmux.testing import MockDydx, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
BTC, ETH = "BTC-USD-PERP", "ETH-USD-PERP"


def never_pong(frame: str | bytes) -> bool:
    return False


@contextlib.asynccontextmanager
async def client(mock: MockDydx, subs: list[Subscription]) -> AsyncIterator[FeedClient]:
    async with feed_client(mock, DydxAdapter(url=mock.ws_url), subs, never_pong) as c:
        yield c


def conn_of(mock: MockDydx) -> Any:
    [conn] = mock.connections.values()
    return conn


async def sync(c: FeedClient, mock: MockDydx) -> None:
    """Every message the mock sent so far has been processed."""
    adapter = c.adapter
    assert isinstance(adapter, DydxAdapter)
    await c.wait(lambda: adapter.message_id == conn_of(mock).state["mid"])


async def barrier(c: FeedClient, mock: MockDydx) -> None:
    """Send a request the mock answers at once and in order (an unsubscribe of
    the markets channel, never subscribed here: it takes the next id) and wait
    for its answer: every request before it has been read."""
    adapter = c.adapter
    assert isinstance(adapter, DydxAdapter)
    await c.ws.send('{"type":"unsubscribe","channel":"v4_markets"}')
    await c.wait(lambda: 0 < (adapter.message_id or 0) == conn_of(mock).state["mid"])


def assert_same_book(c: FeedClient, mock: MockDydx, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.markets[symbol].depth()
    local._check()


# --- Feed level ------------------------------------------------------------------------


@pytest.mark.parametrize("late", [False, True], ids=["answered-at-once", "answered-late-like-the-indexer"])
async def test_books_and_trades_equal_the_mock_after_many_steps(late: bool) -> None:
    async with MockDydx([BTC, ETH], late_subscribed=late) as mock:
        subs = [*book("dydx", BTC, ETH), *trades("dydx", BTC)]
        async with client(mock, subs) as c:
            if late:
                await barrier(c, mock)  # the mock has read the subscribes
                await mock.publish(1)  # ... and answers them after a step
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(300)
            await sync(c, mock)
            for symbol in (BTC, ETH):
                assert_same_book(c, mock, symbol)
                sync_ = c.feed.syncs[symbol]
                assert sync_.book.integrity is Integrity.SEQUENCE
                assert sync_.stats.gaps == 0 and sync_.stats.applied >= 295
            assert not c.of(Gap) and not c.of(Error)
            market = mock.markets[BTC]
            tape = c.of(Trade)
            first = market.next_trade_id - len(
                tape
            )  # with late answers, the first step's trade precedes the subscription
            assert len(tape) > 50 and first in (1, 2)
            assert [t.trade_id[:8] for t in tape] == [f"{i:08x}" for i in range(first, market.next_trade_id)]
            assert isinstance(c.adapter, DydxAdapter) and c.adapter.history_dropped == 1


@pytest.mark.parametrize("fault", ["skip_seq", "reorder"])
async def test_lost_or_reordered_messages_are_gaps_and_heal(fault: str) -> None:
    async with MockDydx([BTC]) as mock:
        async with client(mock, list(book("dydx", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(30)
            setattr(mock.faults, fault, 1)
            await mock.publish(5)
            await c.wait(lambda: c.count(Gap) == 1 and c.count(Resynced) == 2)
            [gap] = c.of(Gap)
            assert (gap.symbol, gap.channel, gap.reason) == (BTC, Channel.BOOK, GapReason.SEQUENCE)
            assert gap.expected is not None and gap.received is not None and gap.received > gap.expected
            await mock.publish(100)
            await sync(c, mock)
            assert_same_book(c, mock, BTC)
            assert c.count(Gap) == 1


async def test_duplicates_are_dropped_not_gaps() -> None:
    async with MockDydx([BTC]) as mock:
        async with client(mock, list(book("dydx", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(50)
            await sync(c, mock)
            assert c.count(Gap) == 0
            assert isinstance(c.adapter, DydxAdapter) and c.adapter.duplicates == 3
            assert_same_book(c, mock, BTC)


async def test_a_stale_crossing_level_is_uncrossed_then_withdrawn() -> None:
    async with MockDydx([BTC]) as mock:
        async with client(mock, list(book("dydx", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(20)
            mock.faults.crossed = 1
            await mock.publish(1)
            await sync(c, mock)
            local = c.feed.book(BTC)
            assert local is not None and local.valid and not local.crossed()
            assert isinstance(c.adapter, DydxAdapter) and c.adapter.uncrossed == 1
            await mock.publish(1)  # the venue withdraws the stale bid and restates the ask
            await sync(c, mock)
            assert_same_book(c, mock, BTC)
            assert c.count(Gap) == 0


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockDydx([BTC]) as mock:
        async with client(mock, list(book("dydx", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await sync(c, mock)
            assert [e.kind for e in c.of(Error)] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert c.count(Gap) == 0
            assert_same_book(c, mock, BTC)


async def test_rejected_subscription_is_reported_and_not_a_gap() -> None:
    async with MockDydx([BTC]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book("dydx", BTC), *trades("dydx", BTC)]) as c:
            await c.wait(lambda: c.count(Error) == 2)
            assert all(e.kind is ErrorKind.VENUE_ERROR and "Invalid subscription" in e.message for e in c.of(Error))
            assert not c.feed.syncs[BTC].valid
            mock.faults.reject_subscriptions = False
            await c.ws.send(c.adapter.subscribe(list(book("dydx", BTC)))[0])
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(10)
            await sync(c, mock)
            assert c.count(Gap) == 0  # the errors' reserved ids were answers, not losses


async def test_liquidations_funding_open_interest_candles() -> None:
    async with MockDydx([BTC, ETH]) as mock:
        subs = [
            *liquidations("dydx", BTC),
            *funding("dydx", BTC),
            *open_interest("dydx", BTC, ETH),
            *candles("dydx", BTC),
        ]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Funding) == 1)
            await mock.publish(100)
            await sync(c, mock)
            assert c.count(Trade) == 0  # v4_trades carries only the liquidations asked for
            liqs = c.of(Liquidation)
            assert len(liqs) == (mock.markets[BTC].next_trade_id - 1) // 5 > 2
            assert c.count(Funding) == 1 + 10  # on subscribe, then every 10 steps, BTC only
            ois = c.of(OpenInterest)
            assert len(ois) == 2 * 11 and {e.symbol for e in ois} == {BTC, ETH}
            bars = c.of(Candle)
            assert len(bars) == mock.markets[BTC].next_trade_id - 1 and {b.interval for b in bars} == {"1m"}
            t, o, h, low, close, volume, _ = mock.candles[BTC]
            market = mock.markets[BTC]
            last = bars[-1]
            assert (last.start_ts, last.open, last.high, last.low, last.close, last.volume) == (
                t * 1_000_000,
                market.price(o),
                market.price(h),
                market.price(low),
                market.price(close),
                market.size(volume),
            )
            assert not c.of(Error) and not c.of(Gap)


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def publish_book_step(mock: MockDydx, symbol: str) -> int:
    """Publish one step of ``symbol`` only; the message id of its book update."""
    conn = conn_of(mock)
    before = conn.state["mid"]
    await mock.publish(1, [symbol])
    assert conn.state["mid"] == before + 1  # one book update, nothing else subscribed for it
    return int(conn.state["mid"])


async def test_multiplexer_book_matches_mock_and_heals_a_gap() -> None:
    async with MockDydx([BTC, ETH]) as mock:
        async with Multiplexer(endpoints={"dydx": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("dydx", BTC, ETH), trades("dydx", ETH))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(200)
            await wait_seq(stream, BTC, await publish_book_step(mock, BTC))
            for symbol in (BTC, ETH):
                view = mux.book("dydx", symbol)
                assert view.valid and view.integrity is Integrity.SEQUENCE
                assert view.depth() == mock.markets[symbol].depth()
            mock.faults.skip_seq = 1
            await mock.publish(3)
            gaps = [e for e in await collect_until(stream, lambda e: isinstance(e, Gap)) if isinstance(e, Gap)]
            assert gaps[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced) and e.symbol == BTC)
            await mock.publish(50)
            await wait_seq(stream, BTC, await publish_book_step(mock, BTC))
            view = mux.book("dydx", BTC)
            assert view.valid and view.depth() == mock.markets[BTC].depth()
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    subs = [Subscription("dydx", c, BTC) for c in sorted(DydxAdapter.channels, key=lambda c: c.value)]
    async with MockDydx([BTC], seed=3) as mock:
        frames = await capture_frames(mock, DydxAdapter, subs, steps=60)
    report = check_adapter(DydxAdapter, symbol=BTC, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
