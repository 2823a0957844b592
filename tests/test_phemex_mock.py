"""PhemexAdapter against MockPhemex, end to end: spot and inverse books in
scaled integers, USDT perpetuals in decimal text, the 60 s snapshots that
re-anchor the book, and the faults a MONOTONIC sequence can and cannot see.
Feed level (synchronised by ``server.ping``) and Multiplexer level."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from candlekit import mock_prices, prices
from feedclient import FeedClient, feed_client

from wsmux import (
    Backoff,
    Candle,
    Error,
    ErrorKind,
    Funding,
    Gap,
    GapReason,
    Integrity,
    Multiplexer,
    OpenInterest,
    Resynced,
    Side,
    Subscription,
    Trade,
    book,
    candles,
    funding,
    open_interest,
    trades,
)
from wsmux.exchanges.phemex import PhemexAdapter
from wsmux.testing import MockPhemex, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
PROBE = json.dumps({"id": 777, "method": "server.ping", "params": []})
SYMBOLS = ["BTC-USDT", "BTC-USD-PERP", "ETH-USDT-PERP"]


def is_pong(frame: str | bytes) -> bool:
    return isinstance(frame, str) and '"id":777,' in frame


def client(mock: MockPhemex, subs: list[Subscription]) -> Any:
    return feed_client(mock, PhemexAdapter(url=mock.ws_url), subs, PROBE, is_pong)


def expected_depth(mock: MockPhemex, symbol: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The mock's best 30 levels in the client's units (inverse: USD contracts / price)."""
    bids, asks = mock.markets[symbol].depth()
    bids, asks = bids[:30], asks[:30]
    if not mock.is_inverse(symbol):
        return bids, asks
    return tuple((p, s / p) for p, s in bids), tuple((p, s / p) for p, s in asks)


def assert_same_book(c: FeedClient, mock: MockPhemex, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == expected_depth(mock, symbol)
    assert local.integrity is Integrity.UNVERIFIABLE
    local._check()


async def test_books_equal_mock_after_many_steps() -> None:
    async with MockPhemex(SYMBOLS, levels=40) as mock:
        subs = [*book("phemex", *SYMBOLS), *trades("phemex", "BTC-USDT", "BTC-USD-PERP", "ETH-USDT-PERP")]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 3)
            await mock.publish(300)
            await c.sync()
            for symbol in SYMBOLS:
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.stats.snapshots == 1 + 300 // 60  # the periodic snapshots re-anchor it
                assert sync.stats.stale == 0 and sync.stats.gaps == 0
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            for symbol in SYMBOLS:
                tape = [e for e in c.events if isinstance(e, Trade) and e.symbol == symbol]
                assert len(tape) == mock.markets[symbol].next_trade_id - 1 > 50  # the history snapshot is skipped
                assert {t.side for t in tape} == {Side.BUY, Side.SELL}
            inverse = [e for e in c.events if isinstance(e, Trade) and e.symbol == "BTC-USD-PERP"]
            assert all(t.size * t.price == pytest.approx(round(t.size * t.price)) for t in inverse)  # whole USD


async def test_crossed_is_detected_and_healed() -> None:
    async with MockPhemex(["BTC-USDT"]) as mock:
        async with client(mock, list(book("phemex", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(10)
            mock.faults.crossed = 1
            await mock.publish(1)
            await c.wait(lambda: c.count(Gap) == 1)
            gap = next(e for e in c.events if isinstance(e, Gap))
            assert gap.reason is GapReason.CROSSED
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(50)
            await c.sync()
            assert_same_book(c, mock, "BTC-USDT")


async def test_duplicates_and_reorders_are_stale() -> None:
    async with MockPhemex(["BTC-USDT"]) as mock:
        async with client(mock, list(book("phemex", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 2
            await mock.publish(20)
            await c.sync()
            assert c.feed.syncs["BTC-USDT"].stats.stale == 2 and c.count(Gap) == 0
            assert_same_book(c, mock, "BTC-USDT")


async def test_a_lost_incremental_is_undetected_until_the_next_snapshot() -> None:
    """What UNVERIFIABLE means here: the engine-wide sequence cannot show a
    loss; the venue's periodic snapshot repairs the book."""
    async with MockPhemex(["BTC-USDT"], snapshot_every=30) as mock:
        async with client(mock, list(book("phemex", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(5)
            mock.faults.skip_seq = 1
            await mock.publish(1)
            await c.sync()
            assert c.count(Gap) == 0
            local = c.feed.book("BTC-USDT")
            assert local is not None and local.valid and local.depth() != expected_depth(mock, "BTC-USDT")
            await mock.publish(24)  # step 30: the periodic snapshot
            await c.sync()
            assert_same_book(c, mock, "BTC-USDT")


async def test_garbage_and_rejections_are_reported() -> None:
    async with MockPhemex(["BTC-USDT"]) as mock:
        async with client(mock, list(book("phemex", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(10)
            await c.sync()
            assert [e.kind for e in c.events if isinstance(e, Error)] == [ErrorKind.MALFORMED] * 2
            assert_same_book(c, mock, "BTC-USDT")
        mock.faults.reject_subscriptions = True
        async with client(mock, list(trades("phemex", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Error) == 1)
            (error,) = [e for e in c.events if isinstance(e, Error)]
            assert error.kind is ErrorKind.VENUE_ERROR and "10500" in error.message


async def test_more_than_20_subscriptions_are_refused() -> None:
    symbols = [f"A{i}-USDT" for i in range(21)]
    async with MockPhemex(symbols) as mock:
        async with client(mock, list(trades("phemex", *symbols))) as c:
            await c.wait(lambda: c.count(Error) == 1)
            assert "too many" in next(e for e in c.events if isinstance(e, Error)).message
    assert PhemexAdapter.limits.streams_per_connection == 20  # the runtime never asks for more


async def test_rest_products() -> None:
    async with MockPhemex(SYMBOLS, price_scale=2) as mock:
        adapter = PhemexAdapter(rest_url=mock.rest_url)
        async with httpx.AsyncClient() as http:
            body = (await http.get(adapter.instruments_request().url)).content
        assert [(i.symbol, i.kind) for i in adapter.parse_instruments(body)] == [
            ("BTC-USDT", "spot"),
            ("BTC-USD-PERP", "perp"),
            ("ETH-USDT-PERP", "perp"),
        ]


async def test_multiplexer_book_matches_mock() -> None:
    async with MockPhemex(["BTC-USD-PERP"]) as mock:
        async with Multiplexer(endpoints={"phemex": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("phemex", "BTC-USD-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(200)
            conn = next(iter(mock.connections.values()))
            last = conn.state["seq"]["BTC-USD-PERP"]
            await collect_until(stream, lambda e: getattr(e, "seq", None) == last)
            view = mux.book("phemex", "BTC-USD-PERP")
            assert view.valid and view.depth() == expected_depth(mock, "BTC-USD-PERP")
            await stream.aclose()


async def test_funding_of_usdt_perpetuals() -> None:
    async with MockPhemex(["BTC-USDT-PERP", "ETH-USDT-PERP", "BTC-USD-PERP"]) as mock:
        async with client(mock, list(funding("phemex", "BTC-USDT-PERP"))) as c:
            await c.wait(lambda: c.count(Funding) == 1)  # from the snapshot of every symbol
            await mock.publish(50)
            await c.sync()
            fundings = [e for e in c.events if isinstance(e, Funding)]
            assert len(fundings) == 1 + 5 and {f.symbol for f in fundings} == {"BTC-USDT-PERP"}
            assert fundings[-1].rate == float(mock.funding_rate("BTC-USDT-PERP"))
            assert not any(isinstance(e, Error) for e in c.events)


async def test_open_interest_of_usdt_perpetuals() -> None:
    async with MockPhemex(["BTC-USDT-PERP", "ETH-USDT-PERP"]) as mock:
        subs = [*open_interest("phemex", "BTC-USDT-PERP"), *funding("phemex", "ETH-USDT-PERP")]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(OpenInterest) == 1 and c.count(Funding) == 1)
            await mock.publish(30)
            await c.sync()
            ois = [e for e in c.events if isinstance(e, OpenInterest)]
            assert len(ois) == 1 + 3 and {e.symbol for e in ois} == {"BTC-USDT-PERP"}
            assert ois[-1].open_interest == float(mock.open_interest("BTC-USDT-PERP"))
            assert {e.symbol for e in c.events if isinstance(e, Funding)} == {"ETH-USDT-PERP"}
            assert not any(isinstance(e, Error) for e in c.events)


async def test_candles_of_every_kind_equal_the_mock() -> None:
    async with MockPhemex(SYMBOLS, seed=4) as mock:
        async with client(mock, [*candles("phemex", *SYMBOLS), *trades("phemex", *SYMBOLS)]) as c:
            await c.sync()
            await mock.publish(120)
            await c.sync()
            assert not any(isinstance(e, Error) for e in c.events)
            for symbol in SYMBOLS:
                market = mock.markets[symbol]
                bars = [e for e in c.events if isinstance(e, Candle) and e.symbol == symbol]
                assert len(bars) == market.next_trade_id - 1 > 0
                want = mock.candles.forming[symbol]
                last = bars[-1]
                assert (*prices(last), last.closed) == (
                    *mock_prices(market, want),
                    False,
                )
                if mock.is_inverse(symbol):  # contracts of 1 USD, reported in BTC
                    assert last.volume == round(want.volume / market.price(want.close) * 10**8) / 10**8
                else:
                    assert last.volume == market.size(want.volume)
        # a later subscriber gets the forming candle in the snapshot, final flag off
        async with client(mock, list(candles("phemex", "ETH-USDT-PERP"))) as late:
            await late.wait(lambda: late.count(Candle) == 1)
            (first,) = [e for e in late.events if isinstance(e, Candle)]
            assert first.close == mock.markets["ETH-USDT-PERP"].price(mock.candles.forming["ETH-USDT-PERP"].close)
            assert first.closed is False


async def test_conformance_on_every_channel() -> None:
    symbol = "BTC-USDT-PERP"
    subs = [Subscription("phemex", c, symbol) for c in sorted(PhemexAdapter.channels, key=lambda c: c.value)]
    async with MockPhemex([symbol], seed=3) as mock:
        frames = await capture_frames(mock, PhemexAdapter, subs, steps=60)
    report = check_adapter(PhemexAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
