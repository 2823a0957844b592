"""BithumbAdapter against MockBithumb, end to end.

Feed level: a plain websockets client into a Feed (tests/feedclient_top.py),
synchronised by the venue's ``PING`` / ``{"status":"UP"}``. Multiplexer level:
the real runtime, synchronised on the timestamp of the last orderbook message.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from feedclient_top import FeedClient, feed_client, mock_top, publish_until_top_changes, wait_book_time

from wsmux import (
    Backoff,
    Channel,
    Error,
    ErrorKind,
    Gap,
    GapReason,
    Integrity,
    Multiplexer,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    quotes,
    trades,
)
from wsmux.exchanges.bithumb import BithumbAdapter
from wsmux.testing import MockBithumb, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
BTC, ETH = "BTC-KRW", "ETH-KRW"


def is_pong(frame: str | bytes) -> bool:
    return frame in (b'{"status":"UP"}', '{"status":"UP"}')


@contextlib.asynccontextmanager
async def client(mock: MockBithumb, subs: list[Subscription]) -> AsyncIterator[FeedClient]:
    async with feed_client(mock, BithumbAdapter(url=mock.ws_url), subs, is_pong) as c:
        yield c


def assert_same_book(c: FeedClient, mock: MockBithumb, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock_top(mock, symbol)
    assert len(local.depth()[0]) == 15
    local._check()


# --- Feed level ------------------------------------------------------------------------


async def test_books_trades_quotes_equal_the_mock_after_many_steps() -> None:
    async with MockBithumb([BTC, ETH]) as mock:
        subs = [*book("bithumb", BTC, ETH), *trades("bithumb", BTC), *quotes("bithumb", BTC)]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(300)
            await c.sync()
            for symbol in (BTC, ETH):
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.book.integrity is Integrity.UNVERIFIABLE
                assert sync.stats.gaps == 0 and sync.stats.snapshots == 1  # one snapshot, then diffs only
                assert sync.stats.applied > 150
            assert not c.of(Gap) and not c.of(Error)
            market = mock.markets[BTC]
            tape = c.of(Trade)
            assert len(tape) == market.next_trade_id - 1 > 50
            assert [t.trade_id for t in tape] == [
                str(17_000_000_000_000 + 13 * i) for i in range(1, market.next_trade_id)
            ]
            last_quote = c.of(Quote)[-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (last_quote.bid_price, last_quote.bid_size, last_quote.ask_price, last_quote.ask_size) == (
                market.price(bb),
                market.size(market.bids[bb]),
                market.price(ba),
                market.size(market.asks[ba]),
            )


@pytest.mark.parametrize("fault", ["skip_seq", "duplicate", "reorder"])
async def test_undetectable_faults_heal_with_the_next_message(fault: str) -> None:
    async with MockBithumb([BTC]) as mock:
        async with client(mock, list(book("bithumb", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(20)
            setattr(mock.faults, fault, 1)
            await mock.publish(3)
            await c.sync()
            assert_same_book(c, mock, BTC)
            assert c.count(Gap) == 0 and getattr(mock.faults, fault) == 0


async def test_crossed_book_is_a_gap_and_heals() -> None:
    async with MockBithumb([BTC]) as mock:
        async with client(mock, [*book("bithumb", BTC), *trades("bithumb", BTC)]) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(20)
            mock.faults.crossed = 1
            await mock.publish(1)
            await c.wait(lambda: c.count(Resynced) == 2)
            [gap] = c.of(Gap)
            assert (gap.reason, gap.symbol, gap.channel) == (GapReason.CROSSED, BTC, Channel.BOOK)
            await mock.publish(50)
            await c.sync()
            assert_same_book(c, mock, BTC)
            assert c.count(Gap) == 1
            # the resync re-sent the whole set: trades still flow
            assert c.count(Trade) == mock.markets[BTC].next_trade_id - 1


async def test_garbage_and_rejections_are_reported() -> None:
    async with MockBithumb([BTC]) as mock:
        async with client(mock, list(book("bithumb", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            assert [e.kind for e in c.of(Error)] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert_same_book(c, mock, BTC)
        mock.faults.reject_subscriptions = True
        async with client(mock, list(trades("bithumb", BTC))) as c:
            await c.wait(lambda: c.count(Error) == 1)
            [error] = c.of(Error)
            assert error.kind is ErrorKind.VENUE_ERROR and "INVALID_AUTH" in error.message


async def test_dropped_trades_are_missing_and_not_claimed() -> None:
    async with MockBithumb([BTC]) as mock:
        async with client(mock, list(trades("bithumb", BTC))) as c:
            await c.sync()
            mock.faults.drop_trades = 2
            await mock.publish(100)
            await c.sync()
            assert c.count(Trade) == mock.markets[BTC].next_trade_id - 1 - 2
            assert c.count(Gap) == 0


# --- Multiplexer level ---------------------------------------------------------------------


async def test_multiplexer_book_matches_mock_and_heals() -> None:
    async with MockBithumb([BTC, ETH]) as mock:
        async with Multiplexer(endpoints={"bithumb": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bithumb", BTC, ETH), trades("bithumb", BTC))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            for symbol in (BTC, ETH):
                await wait_book_time(stream, symbol, await publish_until_top_changes(mock, symbol))
                view = mux.book("bithumb", symbol)
                assert view.valid and view.integrity is Integrity.UNVERIFIABLE
                assert view.depth() == mock_top(mock, symbol)
            mock.faults.crossed = 1
            await mock.publish(1, [BTC])
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.CROSSED
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(30)
            await wait_book_time(stream, BTC, await publish_until_top_changes(mock, BTC))
            view = mux.book("bithumb", BTC)
            assert view.valid and view.depth() == mock_top(mock, BTC)
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    subs = [Subscription("bithumb", c, BTC) for c in sorted(BithumbAdapter.channels, key=lambda c: c.value)]
    async with MockBithumb([BTC], seed=3) as mock:
        frames = await capture_frames(mock, BithumbAdapter, subs, steps=60)
    report = check_adapter(BithumbAdapter, symbol=BTC, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
