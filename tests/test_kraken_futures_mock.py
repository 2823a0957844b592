"""Kraken Futures adapters against their mocks, end to end.

Two layers:

* Feed level: a bare ``websockets`` client reading in a background task into
  a :class:`wsmux._pipeline.Feed`, whose actions (resubscribes) it carries out.
  Subscribing the ``heartbeat`` feed again synchronises: the mock answers in
  order, after every frame it published before.
* Multiplexer level: the real runtime, synchronised on the ``seq`` of the
  last book message the mock rendered.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from baseunits import assert_same_depth, in_base_units
from feedclient import FeedClient, fault_detected_and_healed, feed_client

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
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
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    funding,
    liquidations,
    open_interest,
    quotes,
    trades,
)
from wsmux._json import loads
from wsmux.exchanges.kraken_futures import KrakenFuturesAdapter, KrakenFuturesInverseAdapter
from wsmux.testing import (
    MockKrakenFutures,
    MockKrakenFuturesInverse,
    capture_frames,
    check_adapter,
    collect_until,
)

FAST = Backoff(initial=0.01, cap=0.05)
LIN = "kraken-futures"
SYNC = '{"event":"subscribe","feed":"heartbeat"}'


def _is_heartbeat_ack(frame: str | bytes) -> bool:
    return isinstance(frame, str) and '"heartbeat"' in frame and '"event"' in frame


@contextlib.asynccontextmanager
async def client(mock: MockKrakenFutures, subs: list[Subscription]) -> AsyncIterator[FeedClient]:
    adapter_cls = KrakenFuturesAdapter if mock.linear else KrakenFuturesInverseAdapter
    async with feed_client(mock, adapter_cls(url=mock.ws_url), subs, SYNC, _is_heartbeat_ack) as c:
        # The mock answers in order: the ack of a second heartbeat subscription
        # comes after every subscription sent before it was handled.
        await c.send(SYNC)
        await c.wait(lambda: c.answers >= 2)
        yield c


def assert_same_book(c: FeedClient, mock: MockKrakenFutures, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.markets[symbol].depth()
    local._check()


# --- Feed level ---------------------------------------------------------------------------


@pytest.mark.parametrize("mock_cls", [MockKrakenFutures, MockKrakenFuturesInverse], ids=["linear", "inverse"])
async def test_book_equals_mock_after_many_steps(mock_cls: type[MockKrakenFutures]) -> None:
    venue = mock_cls.venue
    symbols = ("BTC-USD-PERP", "ETH-USD-20260327")
    async with mock_cls(symbols) as mock:
        subs = [*book(venue, *symbols), *trades(venue, "BTC-USD-PERP"), *quotes(venue, "BTC-USD-PERP")]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            assert all(e.integrity is Integrity.SEQUENCE for e in c.events if isinstance(e, Resynced))
            await mock.publish(300)
            await c.sync()
            conn = next(iter(mock.connections.values()))
            for symbol in symbols:
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.last == conn.state["seq"][symbol]
                assert sync.stats.gaps == 0 and sync.stats.applied > 300  # one message per level
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets["BTC-USD-PERP"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert len(tape) == market.next_trade_id - 1 and len(tape) > 50
            assert [t.trade_id for t in tape] == [
                f"00000000-0000-4000-8000-{i:012d}" for i in range(1, market.next_trade_id)
            ]
            assert [t.seq for t in tape] == list(range(101, 101 + len(tape)))
            last_quote = [e for e in c.events if isinstance(e, Quote)][-1]
            assert (last_quote.bid_price, last_quote.ask_price) == (
                market.price(market.best_bid()),
                market.price(market.best_ask()),
            )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("skip_seq", GapReason.SEQUENCE),
        ("reorder", GapReason.SEQUENCE),
        ("crossed", GapReason.CROSSED),
    ],
)
async def test_fault_detected_and_healed(fault: str, reason: GapReason) -> None:
    async with MockKrakenFutures(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(book(LIN, "BTC-USD-PERP"))) as c:
            await fault_detected_and_healed(
                c, mock, "BTC-USD-PERP", fault, reason, lambda: assert_same_book(c, mock, "BTC-USD-PERP")
            )


async def test_bad_checksum_fault_has_nothing_to_corrupt() -> None:
    """The venue sends no checksum: the fault is a no-op and the book's
    integrity level says so (SEQUENCE, not SEQUENCE_AND_CHECKSUM)."""
    async with MockKrakenFutures(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(book(LIN, "BTC-USD-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.bad_checksum = 1
            await mock.publish(30)
            await c.sync()
            assert c.count(Gap) == 0
            assert c.feed.syncs["BTC-USD-PERP"].book.integrity is Integrity.SEQUENCE
            assert_same_book(c, mock, "BTC-USD-PERP")


async def test_duplicates_are_stale_not_gaps() -> None:
    async with MockKrakenFutures(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(book(LIN, "BTC-USD-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(50)
            await c.sync()
            assert c.count(Gap) == 0
            assert c.feed.syncs["BTC-USD-PERP"].stats.stale == 3
            assert_same_book(c, mock, "BTC-USD-PERP")


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockKrakenFutures(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(book(LIN, "BTC-USD-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert c.count(Gap) == 0
            assert_same_book(c, mock, "BTC-USD-PERP")


async def test_rejected_subscription_is_reported() -> None:
    async with MockKrakenFutures(["BTC-USD-PERP"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book(LIN, "BTC-USD-PERP"), *trades(LIN, "BTC-USD-PERP")]) as c:
            await c.wait(lambda: c.count(Error) == 2)
            assert all(e.kind is ErrorKind.VENUE_ERROR and "subscribed_failed" in e.message for e in c.events)  # type: ignore[attr-defined]
            assert not c.feed.syncs["BTC-USD-PERP"].valid


async def test_trade_history_is_not_replayed_as_live() -> None:
    async with MockKrakenFutures(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(trades(LIN, "BTC-USD-PERP"))) as first:
            await mock.publish(40)
            await first.sync()
            before = first.count(Trade)
        async with client(mock, list(trades(LIN, "BTC-USD-PERP"))) as c:
            await c.sync()
            assert c.count(Trade) == 0  # the trade_snapshot (history) was dropped
            await mock.publish(40)
            await c.sync()
            assert before > 0 and c.count(Trade) == mock.markets["BTC-USD-PERP"].next_trade_id - 1 - before


async def test_derivative_channels() -> None:
    async with MockKrakenFutures(["BTC-USD-PERP", "ETH-USD-PERP"]) as mock:
        subs = [
            *funding(LIN, "BTC-USD-PERP"),
            *open_interest(LIN, "BTC-USD-PERP"),
            *liquidations(LIN, "BTC-USD-PERP"),
            *trades(LIN, "BTC-USD-PERP", "ETH-USD-PERP"),
        ]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Funding) == 1 and c.count(OpenInterest) == 1)
            await mock.publish(100)
            await c.sync()
            fundings = [e for e in c.events if isinstance(e, Funding)]
            ois = [e for e in c.events if isinstance(e, OpenInterest)]
            liqs = [e for e in c.events if isinstance(e, Liquidation)]
            assert len(fundings) == len(ois) == 11  # on subscribe, then every 10 steps
            assert all(e.symbol == "BTC-USD-PERP" for e in [*fundings, *ois, *liqs])
            assert fundings[0].next_funding_ts is not None and 0 < fundings[0].rate < 0.001
            assert fundings[0].mark_price is not None
            btc = [e for e in c.events if isinstance(e, Trade) and e.symbol == "BTC-USD-PERP"]
            expected = [t for t in btc if int(t.trade_id.rsplit("-", 1)[1]) % 5 == 0]
            assert len(liqs) == len(expected) > 0
            for liq, trade in zip(liqs, expected, strict=True):
                assert (liq.side, liq.price, liq.size, liq.ts) == (trade.side, trade.price, trade.size, trade.ts)


async def test_instruments_endpoint() -> None:
    async with MockKrakenFuturesInverse(["BTC-USD-PERP", "ETH-USD-20260327"]) as mock, httpx.AsyncClient() as http:
        adapter = KrakenFuturesInverseAdapter(rest_url=mock.rest_url)
        request = adapter.instruments_request()
        r = await http.get(request.url)
        instruments = adapter.parse_instruments(r.content)
        assert [(i.symbol, i.native, i.kind, i.tick_size, i.lot_size) for i in instruments] == [
            ("BTC-USD-PERP", "PI_XBTUSD", "perp", 0.5, 1.0),
            ("ETH-USD-20260327", "FI_ETHUSD_260327", "future", 0.5, 1.0),
        ]
        assert KrakenFuturesAdapter().parse_instruments(r.content) == []  # another family
        mock.faults.snapshot_garbage = 1
        r = await http.get(request.url)
        with pytest.raises(Exception, match="bad instruments body"):
            adapter.parse_instruments(r.content)


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def test_multiplexer_book_matches_mock() -> None:
    symbols = ("BTC-USD-PERP", "ETH-USD-PERP")
    async with MockKrakenFutures(symbols) as mock:
        async with Multiplexer(endpoints={LIN: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(LIN, *symbols), trades(LIN, "BTC-USD-PERP"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            conn = next(iter(mock.connections.values()))
            for symbol in symbols:
                await wait_seq(stream, symbol, conn.state["seq"][symbol])
                view = mux.book(LIN, symbol)
                assert view.valid
                assert view.depth() == mock.markets[symbol].depth()
                assert view.seq == conn.state["seq"][symbol]
            await stream.aclose()


class MockInverseTenUsd(MockKrakenFuturesInverse):
    contract_size = "10"  # a non-trivial face value (the real PI_XBTUSD is 1 USD)


async def test_multiplexer_inverse_sizes_in_coins() -> None:
    """With the instruments list, an inverse product's book is the mock's book
    in coins (``contracts * face / price`` per level), and trades, quotes and
    open interest convert at their own price (open interest: the mark price)."""
    venue, symbol = "kraken-futures-inverse", "BTC-USD-PERP"
    async with MockInverseTenUsd([symbol]) as mock:
        async with Multiplexer(endpoints={venue: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(venue, symbol), trades(venue, symbol), open_interest(venue, symbol))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            inst = mux.instrument(venue, symbol)
            assert inst is not None and inst.inverse and inst.contract_size == 10.0
            market = mock.markets[symbol]  # not stepped yet: as the ticker sent on subscribing saw it
            mark = market.price((market.best_bid() + market.best_ask()) // 2)
            oi_contracts = market.size(500_000 + 37 * market.next_trade_id)
            await mock.publish(300)
            conn = next(iter(mock.connections.values()))
            seen += await wait_seq(stream, symbol, conn.state["seq"][symbol])
            view = mux.book(venue, symbol)
            assert view.valid
            assert_same_depth(view.depth(), in_base_units(mux, venue, symbol, mock.markets[symbol].depth()))
            trades_seen = [e for e in seen if isinstance(e, Trade)]
            assert trades_seen
            for trade in trades_seen:  # whole contracts of 10 USD, as coins at the trade's price
                contracts = trade.size * trade.price / 10.0
                assert contracts >= 1 and abs(contracts - round(contracts)) < 1e-9, trade
            (oi, *_) = [e for e in seen if isinstance(e, OpenInterest)]  # the ticker sent on subscribing
            assert oi.open_interest == pytest.approx(oi_contracts * 10.0 / mark, rel=1e-12)
            await stream.aclose()


async def test_multiplexer_heals_a_gap() -> None:
    async with MockKrakenFutures(["BTC-USD-PERP"]) as mock:
        async with Multiplexer(endpoints={LIN: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(LIN, "BTC-USD-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            conn = next(iter(mock.connections.values()))
            await wait_seq(stream, "BTC-USD-PERP", conn.state["seq"]["BTC-USD-PERP"])
            view = mux.book(LIN, "BTC-USD-PERP")
            assert view.valid and view.depth() == mock.markets["BTC-USD-PERP"].depth()
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    """The shared suite, on frames of every channel (the registry-wide test covers
    book/trades/quotes only)."""
    symbol = "BTC-USD-PERP"
    subs = [Subscription(LIN, c, symbol) for c in sorted(KrakenFuturesAdapter.channels, key=lambda c: c.value)]
    async with MockKrakenFutures([symbol], seed=3) as mock:
        frames = await capture_frames(mock, KrakenFuturesAdapter, subs, steps=60)
    assert any(loads(f).get("feed") == "ticker" for f in frames)
    report = check_adapter(KrakenFuturesAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500


async def test_level_messages_never_show_a_crossed_book_in_between() -> None:
    """One message per level: when the bid moves up through the old best ask,
    the ask's removal must come first, or the client sees a crossed book for a
    moment and resyncs for nothing (found by the benchmark's generated stream)."""
    async with MockKrakenFutures(["BTC-USD-PERP"], seed=1, levels=300) as mock:
        async with client(mock, list(book(LIN, "BTC-USD-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            for _ in range(30):
                await mock.publish(100)
                await c.sync()
            assert not [e for e in c.events if isinstance(e, Gap)]
            assert_same_book(c, mock, "BTC-USD-PERP")
