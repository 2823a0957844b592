"""Gemini adapters against their mocks, end to end.

Feed level: a bare ``websockets`` client feeding a :class:`wsmux._pipeline.Feed`
and carrying out its resubscribes. It synchronises on a marker the mock
answers in order, after every frame published before: the ``ping`` method on
the current API, an on-demand heartbeat (:meth:`MockGeminiV2.heartbeat`) on v2.
Multiplexer level: the real runtime, synchronised on the last update id.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from feedclient import FeedClient

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
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
from wsmux.adapter import Adapter
from wsmux.exchanges.gemini import GeminiAdapter, GeminiV2Adapter
from wsmux.testing import MockGemini, MockGeminiV2, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)


_PING = '{"id":"sync","method":"ping"}'


def _is_pong(frame: str | bytes) -> bool:
    return isinstance(frame, str) and '"id":"sync"' in frame


class Client(FeedClient):
    """The shared Feed client; the v2 mock has no ping, so :meth:`sync` waits
    for a heartbeat the mock sends after everything it published before."""

    async def sync(self) -> None:
        if isinstance(self.mock, MockGeminiV2):
            marker = f'"timestamp":{await self.mock.heartbeat()}'
            await self.wait(lambda: any(isinstance(f, str) and marker in f for f in self.frames[-50:]))
        else:
            await super().sync()


def gemini_client(mock: MockGemini | MockGeminiV2, adapter: Adapter, *, url_from_adapter: bool = True) -> Client:
    return Client(mock, adapter, _PING, _is_pong, url_from_adapter=url_from_adapter)


@contextlib.asynccontextmanager
async def client(mock: MockGemini | MockGeminiV2, subs: list[Subscription]) -> AsyncIterator[Client]:
    cls = GeminiV2Adapter if isinstance(mock, MockGeminiV2) else GeminiAdapter
    c = gemini_client(mock, cls(url=mock.ws_url))
    await c.open(subs)
    if cls is GeminiAdapter:
        await c.sync()  # the ping is answered after the subscribe request was handled
    try:
        yield c
    finally:
        await c.close()


def assert_same_book(c: Client, mock: MockGemini | MockGeminiV2, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.markets[symbol].depth()
    local._check()


MOCKS = [MockGemini, MockGeminiV2]


# --- Feed level, both feeds -------------------------------------------------------------------------


@pytest.mark.parametrize("mock_cls", MOCKS, ids=["gemini", "gemini-v2"])
async def test_book_equals_mock_after_many_steps(mock_cls: type[MockGemini]) -> None:
    venue = mock_cls.venue
    async with mock_cls(["BTC-USD", "ETH-USD"]) as mock:
        subs = [*book(venue, "BTC-USD", "ETH-USD"), *trades(venue, "BTC-USD")]
        if venue == "gemini":
            subs.extend(quotes(venue, "BTC-USD"))
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            level = Integrity.SEQUENCE if venue == "gemini" else Integrity.UNVERIFIABLE
            assert all(e.integrity is level for e in c.events if isinstance(e, Resynced))
            await mock.publish(300)
            await c.sync()
            for symbol in ("BTC-USD", "ETH-USD"):
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.stats.gaps == 0 and sync.stats.applied >= 290
                if venue == "gemini":
                    conn = next(iter(mock.connections.values()))
                    assert sync.last == conn.state["ids"][symbol]
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets["BTC-USD"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert len(tape) == market.next_trade_id - 1 > 50
            if venue == "gemini":
                assert [t.trade_id for t in tape] == [str(i) for i in range(1, market.next_trade_id)]
                last_quote = [e for e in c.events if isinstance(e, Quote)][-1]
                bb, ba = market.best_bid(), market.best_ask()
                assert (last_quote.bid_price, last_quote.bid_size, last_quote.ask_price, last_quote.ask_size) == (
                    market.price(bb),
                    market.size(market.bids[bb]),
                    market.price(ba),
                    market.size(market.asks[ba]),
                )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
async def test_faults_detected_and_healed(fault: str, reason: GapReason) -> None:
    async with MockGemini(["BTC-USD"]) as mock:
        async with client(mock, list(book("gemini", "BTC-USD"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(30)
            setattr(mock.faults, fault, 1)
            await mock.publish(5)
            await c.wait(lambda: c.count(Gap) == 1)
            gap = next(e for e in c.events if isinstance(e, Gap))
            assert gap.reason is reason and gap.symbol == "BTC-USD" and gap.channel is Channel.BOOK
            await c.wait(lambda: c.count(Resynced) == 2)  # resubscribed: a new snapshot
            await mock.publish(100)
            await c.sync()
            assert_same_book(c, mock, "BTC-USD")
            assert c.count(Gap) == 1


async def test_duplicates_are_stale_not_gaps() -> None:
    async with MockGemini(["BTC-USD"]) as mock:
        async with client(mock, list(book("gemini", "BTC-USD"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(50)
            await c.sync()
            assert c.count(Gap) == 0 and c.feed.syncs["BTC-USD"].stats.stale == 3
            assert_same_book(c, mock, "BTC-USD")


async def test_v2_crossed_is_detected_and_healed() -> None:
    async with MockGeminiV2(["BTC-USD"]) as mock:
        async with client(mock, list(book("gemini-v2", "BTC-USD"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(30)
            mock.faults.crossed = 1
            await mock.publish(5)
            await c.wait(lambda: c.count(Resynced) == 2)
            (gap,) = [e for e in c.events if isinstance(e, Gap)]
            assert gap.reason is GapReason.CROSSED
            await mock.publish(50)
            await c.sync()
            assert_same_book(c, mock, "BTC-USD")


async def test_v2_lost_update_is_undetectable_and_the_book_says_so() -> None:
    """v2 has no ids: a lost update leaves a wrong book that still looks valid —
    exactly what its integrity level (UNVERIFIABLE) warns of."""
    async with MockGeminiV2(["BTC-USD"]) as mock:
        async with client(mock, list(book("gemini-v2", "BTC-USD"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.skip_seq = 1
            await mock.publish(1)
            await c.sync()
            local = c.feed.book("BTC-USD")
            assert local is not None and local.valid and local.integrity is Integrity.UNVERIFIABLE
            assert local.depth() != mock.markets["BTC-USD"].depth()
            assert c.count(Gap) == 0


@pytest.mark.parametrize("mock_cls", MOCKS, ids=["gemini", "gemini-v2"])
async def test_garbage_is_reported_and_the_book_survives(mock_cls: type[MockGemini]) -> None:
    async with mock_cls(["BTC-USD"]) as mock:
        async with client(mock, list(book(mock.venue, "BTC-USD"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert c.count(Gap) == 0
            assert_same_book(c, mock, "BTC-USD")


@pytest.mark.parametrize("mock_cls", MOCKS, ids=["gemini", "gemini-v2"])
async def test_rejected_subscription_is_reported(mock_cls: type[MockGemini]) -> None:
    async with mock_cls(["BTC-USD"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book(mock.venue, "BTC-USD"), *trades(mock.venue, "BTC-USD")]) as c:
            await c.wait(lambda: c.count(Error) >= 1)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert errors and all(e.kind is ErrorKind.VENUE_ERROR for e in errors)
            assert not c.feed.syncs["BTC-USD"].valid


async def test_without_the_snapshot_parameter_the_book_never_syncs() -> None:
    """The venue's default (``snapshot=0``) sends updates only: the book stays
    invalid rather than being built from diffs alone."""
    async with MockGemini(["BTC-USD"]) as mock:
        adapter = GeminiAdapter(url=mock.ws_url)
        c = gemini_client(mock, adapter, url_from_adapter=False)
        await c.open(list(book("gemini", "BTC-USD")))  # mock.ws_url: no ?snapshot=-1
        try:
            await c.sync()
            await mock.publish(20)
            await c.sync()
            assert c.count(Resynced) == 0 and c.feed.syncs["BTC-USD"].stats.ignored > 0
        finally:
            await c.close()


async def test_v2_trade_history_is_not_replayed() -> None:
    async with MockGeminiV2(["BTC-USD"]) as mock:
        async with client(mock, list(trades("gemini-v2", "BTC-USD"))) as first:
            await first.wait(lambda: any('"l2_updates"' in f for f in first.frames))  # subscribed
            await mock.publish(40)
            await first.sync()
            seen = first.count(Trade)
        async with client(mock, list(trades("gemini-v2", "BTC-USD"))) as c:
            await c.wait(lambda: any('"l2_updates"' in f for f in c.frames))
            assert seen > 0 and c.count(Trade) == 0
            assert any('"trades":[{' in f for f in c.frames)  # history was sent, and dropped


@pytest.mark.parametrize("mock_cls", MOCKS, ids=["gemini", "gemini-v2"])
async def test_instruments_endpoint(mock_cls: type[MockGemini]) -> None:
    async with mock_cls(["BTC-USD", "ETH-BTC"]) as mock, httpx.AsyncClient() as http:
        adapter = (GeminiV2Adapter if mock_cls is MockGeminiV2 else GeminiAdapter)(rest_url=mock.rest_url)
        r = await http.get(adapter.instruments_request().url)
        assert [i.symbol for i in adapter.parse_instruments(r.content)] == ["BTC-USD", "ETH-BTC"]


# --- Multiplexer level ------------------------------------------------------------------------------


async def test_multiplexer_book_matches_mock_and_heals() -> None:
    async with MockGemini(["BTC-USD", "ETH-USD"]) as mock:
        async with Multiplexer(endpoints={"gemini": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("gemini", "BTC-USD", "ETH-USD"), trades("gemini", "BTC-USD"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            conn = next(iter(mock.connections.values()))

            async def caught_up(symbol: str) -> None:
                target = conn.state["ids"][symbol]
                await collect_until(
                    stream,
                    lambda e: (
                        isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= target
                    ),
                )

            for symbol in ("BTC-USD", "ETH-USD"):
                await caught_up(symbol)
                view = mux.book("gemini", symbol)
                assert view.valid and view.depth() == mock.markets[symbol].depth()
            mock.faults.skip_seq = 1
            await mock.publish(5, ["BTC-USD"])
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50, ["BTC-USD"])
            await caught_up("BTC-USD")
            view = mux.book("gemini", "BTC-USD")
            assert view.valid and view.depth() == mock.markets["BTC-USD"].depth()
            await stream.aclose()


async def test_multiplexer_v2() -> None:
    """No ids to wait on: the test publishes until a step ends with a trade
    (the mock sends a step's book changes before its trade), then waits for
    that trade — by then the book holds every change published."""
    async with MockGeminiV2(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"gemini-v2": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("gemini-v2", "BTC-USD"), trades("gemini-v2", "BTC-USD"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            market = mock.markets["BTC-USD"]
            await mock.publish(200)
            trades_before = market.next_trade_id
            while market.next_trade_id == trades_before:
                await mock.publish(1)
            last = str(mock.history["BTC-USD"][-1]["event_id"])
            events = await collect_until(stream, lambda e: isinstance(e, Trade) and e.trade_id == last)
            view = mux.book("gemini-v2", "BTC-USD")
            assert view.valid and view.integrity is Integrity.UNVERIFIABLE
            assert view.depth() == market.depth()
            assert sum(isinstance(e, Trade) for e in events) > 20
            await stream.aclose()


@pytest.mark.parametrize(
    ("adapter_cls", "mock_cls"), [(GeminiAdapter, MockGemini), (GeminiV2Adapter, MockGeminiV2)], ids=["gemini", "v2"]
)
async def test_conformance_on_every_channel(adapter_cls: type[Adapter], mock_cls: type[MockGemini]) -> None:
    symbol = "BTC-USD"
    subs = [Subscription(adapter_cls.venue, c, symbol) for c in sorted(adapter_cls.channels, key=lambda c: c.value)]
    async with mock_cls([symbol], seed=3) as mock:
        frames = await capture_frames(mock, adapter_cls, subs, steps=60)
    report = check_adapter(adapter_cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
