"""Kraken adapters against the Kraken mocks, end to end.

Two layers:

* Feed level: a bare ``websockets`` client, the adapter and a
  :class:`wsmux._pipeline.Feed`, with the feed's actions carried out here. A
  ping/pong round trip synchronises (the mock answers in order, after every
  frame it published before).
* Multiplexer level: the real runtime; synchronised on the ``ts`` of the last
  book update the mock rendered (Kraken has no sequence numbers).

Both run for v2 (``kraken``/``MockKraken``) and v1 (``kraken-v1``/``MockKrakenV1``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from candlekit import mock_prices, prices

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Multiplexer,
    Quote,
    Resynced,
    Side,
    Subscription,
    Trade,
    book,
    candles,
    quotes,
    trades,
)
from wsmux._pipeline import Feed, Send
from wsmux.adapter import Adapter
from wsmux.exchanges.kraken import KrakenAdapter, KrakenV1Adapter
from wsmux.testing import MockKraken, MockKrakenV1, collect_until
from wsmux.testing.kraken import _KrakenMockBase

VERSIONS = [
    pytest.param(KrakenAdapter, MockKraken, id="v2"),
    pytest.param(KrakenV1Adapter, MockKrakenV1, id="v1"),
]


def top(mock: _KrakenMockBase, symbol: str, depth: int) -> tuple[Any, Any]:
    bids, asks = mock.markets[symbol].depth()
    return bids[:depth], asks[:depth]


class Client:
    """A Feed driven by a plain websockets connection (the pre-runtime layer)."""

    def __init__(self, adapter: Adapter, mock: _KrakenMockBase) -> None:
        self.adapter = adapter
        self.mock = mock
        self.events: list[Event] = []
        self.frames: list[str | bytes] = []
        self.feed = Feed(adapter, self.events.append)
        self.ws: Any = None
        self._ping = 0

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.mock.ws_url, max_size=2**24)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        for message in self.adapter.subscribe(subs):
            await self.ws.send(message)

    async def close(self) -> None:
        await self.ws.close()

    async def pump_until(self, predicate: Callable[[str | bytes], bool]) -> None:
        """Read frames into the feed (doing its actions) until ``predicate(frame)``."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), 10)
            self.frames.append(frame)
            self.feed.on_frame(frame, time.time_ns())
            for action in self.feed.take_actions():
                assert isinstance(action, Send)
                for message in action.messages:
                    await self.ws.send(message)
            if predicate(frame):
                return

    async def until_event(self, predicate: Callable[[Event], bool]) -> Event:
        start = len(self.events)

        def seen(_: str | bytes) -> bool:
            return any(predicate(e) for e in self.events[start:])

        if not any(predicate(e) for e in self.events[start:]):
            await self.pump_until(seen)
        return next(e for e in self.events[start:] if predicate(e))

    async def sync(self) -> None:
        """Ping and read until the pong: every frame published before is in."""
        self._ping += 1
        reqid = 9000 + self._ping
        if isinstance(self.adapter, KrakenAdapter):
            await self.ws.send(json.dumps({"method": "ping", "req_id": reqid}))
            marker = f'"req_id":{reqid}'
        else:
            await self.ws.send(json.dumps({"event": "ping", "reqid": reqid}))
            marker = f'"reqid":{reqid}'
        await self.pump_until(lambda f: "pong" in str(f) and marker in str(f))


async def open_client(adapter_cls: type[Adapter], mock: _KrakenMockBase, subs: list[Subscription]) -> Client:
    client = Client(adapter_cls(url=mock.ws_url), mock)
    await client.open(subs)
    return client


def venue(adapter_cls: type[Adapter]) -> str:
    return adapter_cls.venue


# --- Feed level ------------------------------------------------------------------------


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
@pytest.mark.parametrize("depth", [None, 10, 25])
async def test_feed_book_trades_quotes_match_the_mock(
    adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase], depth: int | None
) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD", "ETH-USD"], seed=3) as mock:
        subs = [*book(v, "BTC-USD", "ETH-USD", depth=depth), *trades(v, "BTC-USD"), *quotes(v, "BTC-USD")]
        client = await open_client(adapter_cls, mock, subs)
        for _ in range(2):
            await client.until_event(lambda e: isinstance(e, Resynced))
        await mock.publish(300)
        await client.sync()
        kraken_depth = 1000 if depth is None else depth
        for symbol in ("BTC-USD", "ETH-USD"):
            sync = client.feed.syncs[symbol]
            assert sync.valid
            assert sync.book.depth() == top(mock, symbol, kraken_depth)
            updates = [e for e in client.events if isinstance(e, BookUpdate) and e.symbol == symbol]
            assert len(updates) > 100
            assert sync.stats.checksums_ok == len(updates) + (1 if v == "kraken" else 0)  # v2 snapshots too
            assert sync.stats.checksum_mismatches == 0
            sync.book._check()
        if depth is not None:
            assert len(client.feed.syncs["BTC-USD"].book.depth()[0]) == depth
        assert not [e for e in client.events if isinstance(e, Gap | Error)]
        trade_events = [e for e in client.events if isinstance(e, Trade)]
        market = mock.markets["BTC-USD"]
        assert len(trade_events) == market.next_trade_id - 1
        assert all(t.symbol == "BTC-USD" and t.side in (Side.BUY, Side.SELL) for t in trade_events)
        if v == "kraken":
            assert [t.trade_id for t in trade_events] == [str(i) for i in range(1, market.next_trade_id)]
        last_quote = [e for e in client.events if isinstance(e, Quote)][-1]
        bb, ba = market.best_bid(), market.best_ask()
        assert (last_quote.bid_price, last_quote.bid_size, last_quote.ask_price, last_quote.ask_size) == (
            market.price(bb),
            market.size(market.bids[bb]),
            market.price(ba),
            market.size(market.asks[ba]),
        )
        await client.close()


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
@pytest.mark.parametrize(
    ("fault", "reason"),
    [("bad_checksum", GapReason.CHECKSUM), ("skip_seq", GapReason.CHECKSUM), ("crossed", GapReason.CROSSED)],
)
async def test_feed_fault_is_detected_and_healed(
    adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase], fault: str, reason: GapReason
) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"], seed=5) as mock:
        client = await open_client(adapter_cls, mock, list(book(v, "BTC-USD", depth=10)))
        await client.until_event(lambda e: isinstance(e, Resynced))
        await mock.publish(20)
        setattr(mock.faults, fault, 1)
        await mock.publish(20)
        gap = await client.until_event(lambda e: isinstance(e, Gap))
        assert isinstance(gap, Gap) and gap.reason is reason and gap.symbol == "BTC-USD"
        assert not client.feed.syncs["BTC-USD"].valid
        resynced = await client.until_event(lambda e: isinstance(e, Resynced))
        assert isinstance(resynced, Resynced)
        await mock.publish(100)
        await client.sync()
        sync = client.feed.syncs["BTC-USD"]
        assert sync.valid and sync.book.depth() == top(mock, "BTC-USD", 10)
        assert client.feed.stats.gaps == 1 and client.feed.stats.resyncs == 2
        # the resync was an unsubscribe followed by a subscribe
        sent = [json.loads(m) for m in mock.received]
        verbs = [m.get("method") or m.get("event") for m in sent]
        assert verbs[-2:] == ["unsubscribe", "subscribe"] or verbs[-3:-1] == ["unsubscribe", "subscribe"]
        await client.close()


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
async def test_feed_reorder_is_detected_and_healed(adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase]) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"], seed=5) as mock:
        client = await open_client(adapter_cls, mock, list(book(v, "BTC-USD", depth=10)))
        await client.until_event(lambda e: isinstance(e, Resynced))
        mock.faults.reorder = 3
        await mock.publish(40)
        gap = await client.until_event(lambda e: isinstance(e, Gap))
        assert isinstance(gap, Gap) and gap.reason is GapReason.CHECKSUM
        await client.until_event(lambda e: isinstance(e, Resynced))
        await mock.publish(50)
        await client.sync()
        sync = client.feed.syncs["BTC-USD"]
        assert sync.valid and sync.book.depth() == top(mock, "BTC-USD", 10)
        await client.close()


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
async def test_feed_duplicates_and_garbage_do_not_break_the_book(
    adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase]
) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"], seed=8) as mock:
        client = await open_client(adapter_cls, mock, list(book(v, "BTC-USD")))
        await client.until_event(lambda e: isinstance(e, Resynced))
        mock.faults.duplicate = 5
        mock.faults.garbage = 2
        await mock.publish(60)
        await client.sync()
        sync = client.feed.syncs["BTC-USD"]
        assert sync.valid and sync.book.depth() == top(mock, "BTC-USD", 1000)
        errors = [e for e in client.events if isinstance(e, Error)]
        assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
        assert client.feed.stats.parse_errors == 2
        assert not [e for e in client.events if isinstance(e, Gap)]
        await client.close()


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
async def test_feed_rejected_subscription_is_a_venue_error(
    adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase]
) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"]) as mock:
        mock.faults.reject_subscriptions = True
        client = await open_client(adapter_cls, mock, [*book(v, "BTC-USD"), *trades(v, "BTC-USD")])
        await client.pump_until(lambda _: sum(isinstance(e, Error) for e in client.events) == 2)
        errors = [e for e in client.events if isinstance(e, Error)]
        assert len(errors) == 2
        assert all(e.kind is ErrorKind.VENUE_ERROR and "SubscriptionRejected" in e.message for e in errors)
        assert not client.feed.syncs["BTC-USD"].valid
        await client.close()


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
async def test_feed_unknown_pair_is_rejected_by_the_mock(
    adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase]
) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"]) as mock:
        client = await open_client(adapter_cls, mock, list(trades(v, "ABC-USD")))
        error = await client.until_event(lambda e: isinstance(e, Error))
        assert isinstance(error, Error) and error.kind is ErrorKind.VENUE_ERROR and "ABC/USD" in error.message
        await client.close()


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
async def test_feed_heartbeats_and_pongs_are_silent(
    adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase]
) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"]) as mock:
        client = await open_client(adapter_cls, mock, list(trades(v, "BTC-USD")))
        await client.sync()
        await mock.heartbeat()
        await mock.heartbeat()
        ping = adapter_cls.heartbeat.ping_message
        assert ping is not None
        await client.ws.send(ping)
        await client.sync()
        assert sum("heartbeat" in str(f) for f in client.frames) == 2
        assert sum("pong" in str(f) for f in client.frames) == 3
        assert client.events == []
        assert client.feed.stats.parse_errors == 0
        await client.close()


async def test_v1_candles_equal_the_mock_candle() -> None:
    async with MockKrakenV1(["BTC-USD"], seed=8) as mock:
        client = await open_client(
            KrakenV1Adapter, mock, [*candles("kraken-v1", "BTC-USD"), *trades("kraken-v1", "BTC-USD")]
        )
        await client.sync()  # the subscriptions are in
        await mock.publish(150)
        await client.sync()
        market = mock.markets["BTC-USD"]
        bars = [e for e in client.events if isinstance(e, Candle)]
        assert len(bars) == market.next_trade_id - 1 > 0
        assert not [e for e in client.events if isinstance(e, Error)]
        want = mock.candles.forming["BTC-USD"]
        last = bars[-1]
        assert (last.symbol, *prices(last), last.volume, last.closed) == (
            "BTC-USD",
            *mock_prices(market, want),
            market.size(want.volume),
            False,
        )
        assert last.ts == want.last_ms * 1_000_000
        await client.close()


async def test_v1_mock_refuses_other_ohlc_intervals() -> None:
    async with MockKrakenV1(["BTC-USD"]) as mock:
        client = await open_client(KrakenV1Adapter, mock, [])
        await client.ws.send(
            json.dumps({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ohlc", "interval": 5}})
        )
        await client.pump_until(lambda f: '"status":"error"' in str(f))
        (error,) = [e for e in client.events if isinstance(e, Error)]
        assert "ohlc interval" in error.message
        await client.close()


async def test_silent_fault_stops_everything() -> None:
    async with MockKraken(["BTC-USD"]) as mock:
        client = await open_client(KrakenAdapter, mock, list(book("kraken", "BTC-USD")))
        await client.until_event(lambda e: isinstance(e, Resynced))
        mock.faults.silent = True
        await mock.publish(10)
        await mock.heartbeat()
        before = mock.sent_frames
        received = len(mock.received)
        await client.ws.send('{"method":"ping","req_id":1}')
        await wait_for(lambda: len(mock.received) > received)  # the mock has read (and ignored) it
        mock.faults.silent = False
        await client.sync()  # the first ping went unanswered; only the second pong arrives
        assert sum('"pong"' in str(f) for f in client.frames) == 1
        assert mock.sent_frames == before
        await client.close()


async def wait_for(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), 10)


# --- Multiplexer level --------------------------------------------------------------------

FAST = Backoff(initial=0.01, cap=0.05)


async def wait_book(stream: Any, mock: _KrakenMockBase, symbol: str) -> None:
    stamp = mock.last_book_ns(symbol)
    await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.symbol == symbol and (e.ts or 0) >= stamp)


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
async def test_multiplexer_book_equals_the_mock(adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase]) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"], seed=11) as mock, Multiplexer(endpoints={v: mock.endpoint}, backoff=FAST) as mux:
        stream = mux.subscribe(book(v, "BTC-USD", depth=25), trades(v, "BTC-USD"))
        seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
        snapshot = next(e for e in seen if isinstance(e, BookSnapshot))
        assert snapshot.bids == top(mock, "BTC-USD", 25)[0]
        await mock.publish(300)
        await wait_book(stream, mock, "BTC-USD")
        view = mux.book(v, "BTC-USD")
        assert view.valid
        assert view.depth() == top(mock, "BTC-USD", 25)
        await stream.aclose()


@pytest.mark.parametrize(("adapter_cls", "mock_cls"), VERSIONS)
async def test_multiplexer_heals_a_bad_checksum(adapter_cls: type[Adapter], mock_cls: type[_KrakenMockBase]) -> None:
    v = venue(adapter_cls)
    async with mock_cls(["BTC-USD"], seed=12) as mock, Multiplexer(endpoints={v: mock.endpoint}, backoff=FAST) as mux:
        stream = mux.subscribe(book(v, "BTC-USD", depth=10))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(10)
        mock.faults.bad_checksum = 1
        await mock.publish(10)
        events = await collect_until(stream, lambda e: isinstance(e, Gap))
        gap = events[-1]
        assert isinstance(gap, Gap) and gap.reason is GapReason.CHECKSUM
        assert not mux.book(v, "BTC-USD").valid
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(100)
        await wait_book(stream, mock, "BTC-USD")
        view = mux.book(v, "BTC-USD")
        assert view.valid and view.depth() == top(mock, "BTC-USD", 10)
        await stream.aclose()


async def test_multiplexer_crossed_book_is_detected_and_healed() -> None:
    async with (
        MockKraken(["ETH-USD"], seed=13) as mock,
        Multiplexer(endpoints={"kraken": mock.endpoint}, backoff=FAST) as mux,
    ):
        stream = mux.subscribe(book("kraken", "ETH-USD"), quotes("kraken", "ETH-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        mock.faults.crossed = 1
        await mock.publish(5)
        events = await collect_until(stream, lambda e: isinstance(e, Gap))
        assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.CROSSED
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(50)
        await wait_book(stream, mock, "ETH-USD")
        assert mux.book("kraken", "ETH-USD").depth() == top(mock, "ETH-USD", 1000)
        await stream.aclose()
