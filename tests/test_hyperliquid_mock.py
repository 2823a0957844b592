"""HyperliquidAdapter against MockHyperliquid, end to end.

Feed level: a plain websockets client into a Feed (tests/feedclient_top.py),
synchronised by the venue's ping/pong. Multiplexer level: the real runtime,
synchronised on the ``time`` of the last book message the mock rendered.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from feedclient_top import FeedClient, feed_client, mock_top, publish_until_top_changes, wait_book_time

from wsmux import (
    Backoff,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Funding,
    Gap,
    GapReason,
    Integrity,
    Multiplexer,
    OpenInterest,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    candles,
    funding,
    open_interest,
    quotes,
    trades,
)
from wsmux.exchanges.hyperliquid import HyperliquidAdapter
from wsmux.testing import MockHyperliquid, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
BTC, ETH = "BTC-USD-PERP", "ETH-USD-PERP"


def is_pong(frame: str | bytes) -> bool:
    return frame in ('{"channel":"pong"}', b'{"channel":"pong"}')


@contextlib.asynccontextmanager
async def client(mock: MockHyperliquid, subs: list[Subscription]) -> AsyncIterator[FeedClient]:
    async with feed_client(mock, HyperliquidAdapter(url=mock.ws_url), subs, is_pong) as c:
        yield c


def assert_same_book(c: FeedClient, mock: MockHyperliquid, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock_top(mock, symbol)
    assert len(local.depth()[0]) == 20
    local._check()


# --- Feed level ------------------------------------------------------------------------


async def test_book_trades_quotes_equal_the_mock_after_many_steps() -> None:
    async with MockHyperliquid([BTC, ETH]) as mock:
        subs = [*book("hyperliquid", BTC, ETH), *trades("hyperliquid", BTC), *quotes("hyperliquid", BTC)]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(300)
            await c.sync()
            for symbol in (BTC, ETH):
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.book.integrity is Integrity.UNVERIFIABLE
                assert sync.stats.gaps == 0 and sync.stats.snapshots == 1  # one snapshot, then diffs only
                updates = [e for e in c.of(BookUpdate) if e.symbol == symbol]
                # steps that changed only levels beyond the top 20 send an unchanged book: no update
                assert sync.stats.applied == len(updates) > 150
                stamps = [u.ts for u in updates]
                assert stamps == sorted(set(stamps)) and stamps[-1] <= mock.time[symbol] * 1_000_000
            assert not c.of(Gap) and not c.of(Error)
            market = mock.markets[BTC]
            tape = [e for e in c.of(Trade) if e.symbol == BTC]
            assert len(tape) == market.next_trade_id - 1 > 50
            assert [t.trade_id for t in tape] == [str(10**14 + 7 * i) for i in range(1, market.next_trade_id)]
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
    """No sequence: a lost, repeated or late message cannot be detected (the
    book says UNVERIFIABLE), but the next full snapshot repairs the book."""
    async with MockHyperliquid([BTC]) as mock:
        async with client(mock, list(book("hyperliquid", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(20)
            setattr(mock.faults, fault, 1)
            await mock.publish(3)
            await c.sync()
            assert_same_book(c, mock, BTC)
            assert c.count(Gap) == 0 and getattr(mock.faults, fault) == 0
            assert c.feed.syncs[BTC].book.integrity is Integrity.UNVERIFIABLE


async def test_crossed_book_is_a_gap_and_heals() -> None:
    async with MockHyperliquid([BTC]) as mock:
        async with client(mock, list(book("hyperliquid", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(20)
            mock.faults.crossed = 1
            await mock.publish(1)
            await c.wait(lambda: c.count(Resynced) == 2)
            [gap] = c.of(Gap)
            assert gap.reason is GapReason.CROSSED and gap.symbol == BTC and gap.channel is Channel.BOOK
            await mock.publish(50)
            await c.sync()
            assert_same_book(c, mock, BTC)
            assert c.count(Gap) == 1
            # the resync re-subscribed
            assert sum('"unsubscribe"' in str(m) for m in mock.received) == 1


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockHyperliquid([BTC]) as mock:
        async with client(mock, list(book("hyperliquid", BTC))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            assert [e.kind for e in c.of(Error)] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert c.count(Gap) == 0
            assert_same_book(c, mock, BTC)


async def test_rejected_subscription_is_reported() -> None:
    async with MockHyperliquid([BTC]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book("hyperliquid", BTC), *trades("hyperliquid", BTC)]) as c:
            await c.wait(lambda: c.count(Error) == 2)
            assert all(e.kind is ErrorKind.VENUE_ERROR and "Invalid subscription" in e.message for e in c.of(Error))
            assert not c.feed.syncs[BTC].valid


async def test_dropped_trades_are_missing_and_not_claimed() -> None:
    """tid is not contiguous on Hyperliquid: a dropped trade cannot be detected
    from the tape (no trade-id gap is invented either)."""
    async with MockHyperliquid([BTC]) as mock:
        async with client(mock, list(trades("hyperliquid", BTC))) as c:
            await c.sync()  # the mock answers in order: the subscription is in place
            mock.faults.drop_trades = 2
            await mock.publish(100)
            await c.sync()
            assert c.count(Trade) == mock.markets[BTC].next_trade_id - 1 - 2
            assert c.count(Gap) == 0


async def test_funding_open_interest_and_candles() -> None:
    async with MockHyperliquid([BTC]) as mock:
        subs = [*funding("hyperliquid", BTC), *open_interest("hyperliquid", BTC), *candles("hyperliquid", BTC)]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Funding) == 1 and c.count(OpenInterest) == 1)
            await mock.publish(130)
            await c.sync()
            assert c.count(Funding) == c.count(OpenInterest) == 14  # on subscribe, then every 10 steps
            assert all(0 < e.rate < 0.001 and e.mark_price for e in c.of(Funding))
            bars = c.of(Candle)
            assert len(bars) == mock.markets[BTC].next_trade_id - 1  # one push per trade
            assert {b.interval for b in bars} == {"1m"} and len({b.start_ts for b in bars}) >= 2
            t, o, h, low, close, volume, _ = mock.candles[BTC]
            market = mock.markets[BTC]
            assert (bars[-1].start_ts, bars[-1].open, bars[-1].high, bars[-1].low, bars[-1].close, bars[-1].volume) == (
                t * 1_000_000,
                market.price(o),
                market.price(h),
                market.price(low),
                market.price(close),
                market.size(volume),
            )
            assert not c.of(Error)


# --- Multiplexer level ---------------------------------------------------------------------


async def test_multiplexer_book_matches_mock() -> None:
    async with MockHyperliquid([BTC, ETH]) as mock:
        async with Multiplexer(endpoints={"hyperliquid": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("hyperliquid", BTC, ETH), trades("hyperliquid", BTC))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            for symbol in (BTC, ETH):
                await wait_book_time(stream, symbol, await publish_until_top_changes(mock, symbol))
                view = mux.book("hyperliquid", symbol)
                assert view.valid and view.integrity is Integrity.UNVERIFIABLE
                assert view.depth() == mock_top(mock, symbol)
            await stream.aclose()


async def test_multiplexer_heals_a_crossed_book() -> None:
    async with MockHyperliquid([BTC]) as mock:
        async with Multiplexer(endpoints={"hyperliquid": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("hyperliquid", BTC))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            mock.faults.crossed = 1
            await mock.publish(1)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.CROSSED
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            await wait_book_time(stream, BTC, await publish_until_top_changes(mock, BTC))
            view = mux.book("hyperliquid", BTC)
            assert view.valid and view.depth() == mock_top(mock, BTC)
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    subs = [Subscription("hyperliquid", c, BTC) for c in sorted(HyperliquidAdapter.channels, key=lambda c: c.value)]
    async with MockHyperliquid([BTC], seed=3) as mock:
        frames = await capture_frames(mock, HyperliquidAdapter, subs, steps=60)
    report = check_adapter(HyperliquidAdapter, symbol=BTC, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
