"""KucoinAdapter / KucoinFuturesAdapter against MockKucoin / MockKucoinFutures, end to end.

Two layers:

* Feed level: a bare ``websockets`` client that first makes the bullet call
  (``POST /api/v1/bullet-public``) with httpx, connects to the endpoint and
  token it returned, reads into a :class:`wsmux._pipeline.Feed` and carries
  out its actions (REST snapshots, sends). A ``ping``/``pong`` round trip
  synchronises: the mock answers in order, after every frame it published
  before.
* Multiplexer level: the real runtime (its Connection makes the bullet call
  through the adapter's pre-connect hook), synchronised on the sequence of
  the last book update the mock rendered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from baseunits import assert_same_depth, in_base_units
from feedclient import FeedClient, feed_client

from wsmux import (
    Backoff,
    BookUpdate,
    Candle,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Multiplexer,
    Quote,
    Resynced,
    Side,
    Subscription,
    Trade,
    book,
    trades,
)
from wsmux.adapter import Adapter
from wsmux.exchanges.kucoin import KucoinAdapter, KucoinFuturesAdapter
from wsmux.testing import MockKucoin, MockKucoinFutures, capture_frames, check_adapter, collect_until
from wsmux.testing.kucoin import _MockKucoinBase

FAST = Backoff(initial=0.01, cap=0.05)
SPOT = (MockKucoin, KucoinAdapter, "BTC-USDT")
FUTURES = (MockKucoinFutures, KucoinFuturesAdapter, "BTC-USDT-PERP")
VENUES = pytest.mark.parametrize(("mock_cls", "adapter_cls", "symbol"), [SPOT, FUTURES], ids=["spot", "futures"])


def _is_pong(frame: str | bytes) -> bool:
    return isinstance(frame, str) and '"type":"pong"' in frame


@contextlib.asynccontextmanager
async def client(
    mock: _MockKucoinBase, adapter_cls: type[Adapter], subs: list[Subscription]
) -> AsyncIterator[FeedClient]:
    """A Feed client connected with a bullet token (the client makes the
    adapter's ``connect_request`` first, as the runtime does)."""
    adapter = adapter_cls(url=mock.ws_url, rest_url=mock.rest_url)
    async with feed_client(mock, adapter, subs, '{"id":"sync","type":"ping"}', _is_pong, url_from_adapter=True) as c:
        assert adapter.connect_url(subs).startswith(mock.ws_url + "?token=mock-token-")
        yield c


def assert_same_book(c: FeedClient, mock: _MockKucoinBase, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.markets[symbol].depth()
    assert local.seq == mock.seq[symbol]
    local._check()


async def synced(c: FeedClient, mock: _MockKucoinBase, symbol: str) -> None:
    """Publish until the book is synced (the first diff triggers the REST snapshot)."""
    async with asyncio.timeout(10):
        while not any(isinstance(e, Resynced) for e in c.events):
            await mock.publish(1)
            await c.sync()


# --- Feed level ------------------------------------------------------------------------------


@VENUES
async def test_book_equals_mock_after_many_steps(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
    async with mock_cls([symbol]) as mock:
        venue = adapter_cls.venue
        subs = [*book(venue, symbol), *trades(venue, symbol)]
        async with client(mock, adapter_cls, subs) as c:
            await synced(c, mock, symbol)
            for _ in range(3):
                await mock.publish(100)
                await c.sync()
                assert_same_book(c, mock, symbol)
            assert c.count(Gap) == 0 and c.count(Error) == 0
            assert c.count(BookUpdate) >= 300
            assert c.count(Trade) > 30
            assert mock.bullets == 1


@VENUES
@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
async def test_fault_detected_and_healed(
    mock_cls: Any, adapter_cls: Any, symbol: str, fault: str, reason: GapReason
) -> None:
    async with mock_cls([symbol]) as mock:
        async with client(mock, adapter_cls, list(book(adapter_cls.venue, symbol))) as c:
            await synced(c, mock, symbol)
            await mock.publish(10)
            setattr(mock.faults, fault, 1)
            await mock.publish(3)
            await c.sync()
            gaps = [e for e in c.events if isinstance(e, Gap)]
            assert len(gaps) == 1 and gaps[0].reason is reason
            await c.wait(lambda: c.count(Resynced) >= 2)  # a fresh REST snapshot
            await mock.publish(30)
            await c.sync()
            assert_same_book(c, mock, symbol)


@VENUES
async def test_duplicates_are_stale_not_gaps(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
    async with mock_cls([symbol]) as mock:
        async with client(mock, adapter_cls, list(book(adapter_cls.venue, symbol))) as c:
            await synced(c, mock, symbol)
            mock.faults.duplicate = 3
            await mock.publish(10)
            await c.sync()
            assert c.count(Gap) == 0
            assert c.feed.syncs[symbol].stats.stale >= 3
            assert_same_book(c, mock, symbol)


async def test_garbage_and_snapshot_failures_are_reported_and_healed() -> None:
    async with MockKucoin(["BTC-USDT"]) as mock:
        async with client(mock, KucoinAdapter, list(book("kucoin", "BTC-USDT"))) as c:
            mock.faults.snapshot_garbage = 1
            await synced(c, mock, "BTC-USDT")
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors] == [ErrorKind.SNAPSHOT]
            mock.faults.garbage = 2
            await mock.publish(10)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors[1:]] == [ErrorKind.MALFORMED] * 2
            assert_same_book(c, mock, "BTC-USDT")


async def test_rejected_subscription_is_reported() -> None:
    async with MockKucoin(["BTC-USDT"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, KucoinAdapter, list(trades("kucoin", "BTC-USDT"))) as c:
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert len(errors) == 1 and errors[0].kind is ErrorKind.VENUE_ERROR
            assert "509" in errors[0].message


async def test_every_spot_channel() -> None:
    async with MockKucoin(["ETH-USDT"]) as mock:
        subs = [Subscription("kucoin", ch, "ETH-USDT") for ch in KucoinAdapter.channels]
        async with client(mock, KucoinAdapter, subs) as c:
            await synced(c, mock, "ETH-USDT")
            await mock.publish(40)
            await c.sync()
            market = mock.markets["ETH-USDT"]
            quote = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (quote.bid_price, quote.bid_size) == (market.price(bb), market.size(market.bids[bb]))
            assert (quote.ask_price, quote.ask_size) == (market.price(ba), market.size(market.asks[ba]))
            trade = [e for e in c.events if isinstance(e, Trade)][-1]
            assert trade.side in (Side.BUY, Side.SELL) and len(trade.trade_id or "") == 24
            assert c.count(Candle) >= 8
            assert c.count(Error) == 0 and c.count(Gap) == 0


async def test_every_futures_channel_and_contract_sizes() -> None:
    async with MockKucoinFutures(["ETH-USDT-PERP"]) as mock:
        subs = [Subscription("kucoin-futures", ch, "ETH-USDT-PERP") for ch in KucoinFuturesAdapter.channels]
        async with client(mock, KucoinFuturesAdapter, subs) as c:
            async with httpx.AsyncClient() as http:
                request = c.adapter.instruments_request()
                assert request is not None
                body = (await http.get(request.url)).content
            instruments = c.adapter.parse_instruments(body)
            assert [(i.symbol, i.native, i.contract_size) for i in instruments] == [
                ("ETH-USDT-PERP", "ETHUSDTM", 0.001)
            ]
            c.adapter.use_instruments(instruments)  # sizes in ETH from now on
            await synced(c, mock, "ETH-USDT-PERP")
            await mock.publish(40)
            await c.sync()
            market = mock.markets["ETH-USDT-PERP"]
            local = c.feed.book("ETH-USDT-PERP")
            assert local is not None and local.valid
            bids, asks = market.depth()
            assert local.depth() == (
                tuple((p, s / 1000) for p, s in bids),
                tuple((p, s / 1000) for p, s in asks),
            )
            quote = [e for e in c.events if isinstance(e, Quote)][-1]
            bb = market.best_bid()
            assert quote.bid_size == market.bids[bb] / 1000
            assert c.count(Funding) >= 4 and c.count(Candle) >= 8
            assert c.count(Trade) > 0 and c.count(Error) == 0 and c.count(Gap) == 0


async def test_mock_refuses_a_connection_without_a_bullet_token() -> None:
    async with MockKucoin(["BTC-USDT"]) as mock:
        async with websockets.connect(mock.ws_url + "?token=forged") as ws:
            adapter = KucoinAdapter()
            with pytest.raises(Exception, match="401"):
                adapter.parse(await ws.recv(), 1)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()


@VENUES
async def test_conformance_on_every_channel(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
    """The shared suite, on frames of every channel (the registry-wide test
    covers book/trades/quotes only)."""
    venue = adapter_cls.venue
    subs = [Subscription(venue, c, symbol) for c in sorted(adapter_cls.channels, key=lambda c: c.value)]
    async with mock_cls([symbol], seed=3) as mock:
        frames = await capture_frames(mock, adapter_cls, subs, steps=60)
    report = check_adapter(adapter_cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=400)
    assert report.events > 60 and report.mutations == 400


# --- Multiplexer level -----------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream, lambda e: isinstance(e, BookUpdate) and e.symbol == symbol and (e.seq or 0) >= seq
    )


@VENUES
async def test_multiplexer_book_matches_mock_and_reconnects_with_a_fresh_token(
    mock_cls: Any, adapter_cls: Any, symbol: str
) -> None:
    venue = adapter_cls.venue
    async with mock_cls([symbol]) as mock:
        async with Multiplexer(endpoints={venue: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(venue, symbol), trades(venue, symbol))
            await asyncio.wait_for(mock.subscribed.wait(), 10)  # nothing to publish to before
            await mock.publish(1)
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            await wait_seq(stream, symbol, mock.seq[symbol])
            view = mux.book(venue, symbol)
            assert view.valid  # futures: the multiplexer loaded the contract sizes, its book is in base units
            assert_same_depth(view.depth(), in_base_units(mux, venue, symbol, mock.markets[symbol].depth()))
            assert view.seq == mock.seq[symbol]
            assert mock.bullets == 1 and len(mock.tokens) == 1
            # a dropped connection reconnects with a new bullet token and resyncs
            mock.subscribed.clear()
            await mock.drop_connections()
            await collect_until(stream, lambda e: isinstance(e, Gap))
            await asyncio.wait_for(mock.subscribed.wait(), 10)
            await mock.publish(1)
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            assert mock.bullets == 2
            await mock.publish(50)
            await wait_seq(stream, symbol, mock.seq[symbol])
            assert view.valid  # futures: the multiplexer loaded the contract sizes, its book is in base units
            assert_same_depth(view.depth(), in_base_units(mux, venue, symbol, mock.markets[symbol].depth()))
            await stream.aclose()


class MockKucoinInverseTenUsd(MockKucoinFutures):
    inverse_face = "10"  # a non-trivial face value (the real XBTUSDM is 1 USD)


async def test_multiplexer_inverse_book_and_trades_in_coins() -> None:
    """An inverse perpetual (``XBTUSDM``): with the instruments list the
    multiplexer's book is the mock's book in coins, ``contracts * face /
    price`` per level, and trades convert at their price."""
    venue, symbol = "kucoin-futures", "BTC-USD-PERP"
    async with MockKucoinInverseTenUsd([symbol]) as mock:
        async with Multiplexer(endpoints={venue: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(venue, symbol), trades(venue, symbol))
            await asyncio.wait_for(mock.subscribed.wait(), 10)
            inst = mux.instrument(venue, symbol)
            assert inst is not None and inst.inverse and inst.contract_size == 10.0
            await mock.publish(1)
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            seen += await wait_seq(stream, symbol, mock.seq[symbol])
            view = mux.book(venue, symbol)
            assert view.valid
            assert_same_depth(view.depth(), in_base_units(mux, venue, symbol, mock.markets[symbol].depth()))
            sizes = [(e.price, e.size) for e in seen if isinstance(e, Trade)]
            assert sizes  # whole contracts of 10 USD, reported as coins at the trade's price
            for price, size in sizes:
                contracts = size * price / 10.0
                assert contracts >= 1 and abs(contracts - round(contracts)) < 1e-9, (price, size)
            await stream.aclose()


async def test_multiplexer_retries_a_failed_bullet_call() -> None:
    async with MockKucoin(["BTC-USDT"]) as mock:
        mock.bullet_failures = 2
        async with Multiplexer(endpoints={"kucoin": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(trades("kucoin", "BTC-USDT"))
            await asyncio.wait_for(mock.subscribed.wait(), 10)
            await mock.publish(20)
            await collect_until(stream, lambda e: isinstance(e, Trade))
            assert mock.bullet_failures == 0 and mock.bullets == 1  # two refused, the third served
            conn = mux.health()["connections"][0]
            assert conn["connection"]["connect_failures"] == 2
            await stream.aclose()


@VENUES
async def test_refused_snapshot_is_reported_and_refetched(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
    async with mock_cls([symbol]) as mock:
        mock.faults.snapshot_status = 429
        async with client(mock, adapter_cls, list(book(adapter_cls.venue, symbol))) as c:
            await mock.publish(1)
            await c.wait(lambda: c.count(Error) == 1)
            (error,) = [e for e in c.events if isinstance(e, Error)]
            assert error.kind is ErrorKind.SNAPSHOT and not c.feed.syncs[symbol].valid
            mock.faults.snapshot_status = 200
            await synced(c, mock, symbol)  # the next buffered update asks again
            await mock.publish(20)
            await c.sync()
            assert_same_book(c, mock, symbol)
            assert mock.snapshots_served == 1
