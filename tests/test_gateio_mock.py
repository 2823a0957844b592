"""GateSpotAdapter / GateFuturesAdapter against MockGate / MockGateFutures, end to end.

* Feed level: a bare ``websockets`` client reading into a
  :class:`wsmux._pipeline.Feed` and carrying out its actions (resubscribes).
  A ``<prefix>.ping``/``pong`` round trip synchronises: the mock answers in
  order, after every frame it published before.
* Multiplexer level: the real runtime, synchronised on the ``u`` of the last
  Order Book V2 delta the mock rendered.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import pytest
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
    Liquidation,
    Multiplexer,
    OpenInterest,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    trades,
)
from wsmux.adapter import Adapter
from wsmux.exchanges.gateio import GateFuturesAdapter, GateSpotAdapter
from wsmux.testing import MockGate, MockGateFutures, capture_frames, check_adapter, collect_until
from wsmux.testing.gateio import _MockGateBase

FAST = Backoff(initial=0.01, cap=0.05)
SPOT = (MockGate, GateSpotAdapter, "BTC-USDT")
FUTURES = (MockGateFutures, GateFuturesAdapter, "BTC-USDT-PERP")
VENUES = pytest.mark.parametrize(("mock_cls", "adapter_cls", "symbol"), [SPOT, FUTURES], ids=["spot", "futures"])


@contextlib.asynccontextmanager
async def client(mock: _MockGateBase, adapter_cls: type[Adapter], subs: list[Subscription]) -> Any:
    """The shared Feed client, synced by Gate's application ping."""
    adapter = adapter_cls(url=mock.ws_url, rest_url=mock.rest_url)
    probe = f'{{"time":{int(time.time())},"channel":"{mock.prefix}.ping"}}'
    async with feed_client(mock, adapter, subs, probe, lambda frame: '.pong"' in frame) as c:
        yield c


def assert_same_book(c: FeedClient, mock: _MockGateBase, symbol: str, depth: int = 400) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.book_view(symbol, depth)
    assert local.seq == mock.streams[symbol, depth].id
    local._check()


# --- Feed level ------------------------------------------------------------------------------


@VENUES
@pytest.mark.parametrize("depth", [None, 50])
async def test_book_equals_mock_after_many_steps(mock_cls: Any, adapter_cls: Any, symbol: str, depth: Any) -> None:
    async with mock_cls([symbol], levels=100) as mock:
        venue = adapter_cls.venue
        subs = [*book(venue, symbol, depth=depth), *trades(venue, symbol)]
        async with client(mock, adapter_cls, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 1)  # the full snapshot came with the ack
            for _ in range(3):
                await mock.publish(100)
                await c.sync()
                assert_same_book(c, mock, symbol, depth or 400)
            assert c.count(Gap) == 0 and c.count(Error) == 0
            assert c.count(BookUpdate) >= 200 and c.count(Trade) > 30
            assert mock.book_view(symbol, 400) != mock.book_view(symbol, 50)  # the depths differ


@VENUES
@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
async def test_fault_detected_and_healed_by_resubscribing(
    mock_cls: Any, adapter_cls: Any, symbol: str, fault: str, reason: GapReason
) -> None:
    async with mock_cls([symbol]) as mock:
        async with client(mock, adapter_cls, list(book(adapter_cls.venue, symbol))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(10)
            setattr(mock.faults, fault, 1)
            await mock.publish(3)
            await c.sync()
            gaps = [e for e in c.events if isinstance(e, Gap)]
            assert len(gaps) == 1 and gaps[0].reason is reason
            await c.wait(lambda: c.count(Resynced) == 2)  # unsubscribe + subscribe: a new full snapshot
            await mock.publish(30)
            await c.sync()
            assert_same_book(c, mock, symbol)
            subscribes = [m for m in mock.received if '.obu"' in str(m) and '"event":"subscribe"' in str(m)]
            assert len(subscribes) == 2


@VENUES
async def test_duplicates_are_stale_not_gaps(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
    async with mock_cls([symbol]) as mock:
        async with client(mock, adapter_cls, list(book(adapter_cls.venue, symbol))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(10)
            await c.sync()
            assert c.count(Gap) == 0 and c.feed.syncs[symbol].stats.stale >= 3
            assert_same_book(c, mock, symbol)


async def test_garbage_rejections_and_duplicate_streams_are_reported() -> None:
    async with MockGate(["BTC-USDT"]) as mock:
        async with client(mock, GateSpotAdapter, list(book("gateio", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(10)
            await c.sync()
            assert [e.kind for e in c.events if isinstance(e, Error)] == [ErrorKind.MALFORMED] * 2
            assert_same_book(c, mock, "BTC-USDT")
            for message in c.adapter.subscribe(list(book("gateio", "BTC-USDT"))):  # the venue refuses a second one
                await c.ws.send(message)
            mock.faults.reject_subscriptions = True
            for message in c.adapter.subscribe(list(trades("gateio", "BTC-USDT"))):
                await c.ws.send(message)
            await c.sync()
            refused = [e for e in c.events if isinstance(e, Error) and e.kind is ErrorKind.VENUE_ERROR]
            assert len(refused) == 2 and "Alert sub" in refused[0].message


async def test_every_futures_channel_in_base_units() -> None:
    async with MockGateFutures(["ETH-USDT-PERP"]) as mock:
        subs = [Subscription("gateio-futures", ch, "ETH-USDT-PERP") for ch in GateFuturesAdapter.channels]
        async with client(mock, GateFuturesAdapter, subs) as c:
            request = c.adapter.instruments_request()
            assert request is not None
            async with httpx.AsyncClient() as http:
                instruments = c.adapter.parse_instruments((await http.get(request.url)).content)
            assert [(i.symbol, i.native, i.contract_size) for i in instruments] == [
                ("ETH-USDT-PERP", "ETH_USDT", 0.0001)
            ]
            c.adapter.use_instruments(instruments)
            # resubscribe the book so its full snapshot is in base units too
            for message in c.adapter.resync_messages(book("gateio-futures", "ETH-USDT-PERP")[0]):
                await c.ws.send(message)
            await mock.publish(60)
            await c.sync()
            market = mock.markets["ETH-USDT-PERP"]
            local = c.feed.book("ETH-USDT-PERP")
            assert local is not None and local.valid
            bids, asks = market.depth()
            assert local.depth() == (
                tuple((p, s / 10000) for p, s in bids),
                tuple((p, s / 10000) for p, s in asks),
            )
            quote = [e for e in c.events if isinstance(e, Quote)][-1]
            assert quote.bid_size == market.bids[market.best_bid()] / 10000
            for cls in (Trade, Funding, OpenInterest, Liquidation, Candle):
                assert c.count(cls) > 0, cls
            assert c.count(Error) == 0 and c.count(Gap) == 0


@VENUES
async def test_conformance_on_every_channel(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
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
async def test_multiplexer_book_matches_mock_and_heals_a_gap(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
    venue = adapter_cls.venue
    async with mock_cls([symbol]) as mock:
        async with Multiplexer(endpoints={venue: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(venue, symbol), trades(venue, symbol))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            await wait_seq(stream, symbol, mock.streams[symbol, 400].id)
            view = mux.book(venue, symbol)
            # futures: the multiplexer loaded the contract sizes, its book is in base units
            assert view.valid
            assert_same_depth(view.depth(), in_base_units(mux, venue, symbol, mock.book_view(symbol)))
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert events[-1].reason is GapReason.SEQUENCE  # type: ignore[attr-defined]
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            await wait_seq(stream, symbol, mock.streams[symbol, 400].id)
            assert view.valid
            assert_same_depth(view.depth(), in_base_units(mux, venue, symbol, mock.book_view(symbol)))
            await stream.aclose()
