"""Coinbase Exchange adapter against MockCoinbase, end to end.

Two layers:

* Feed level: a bare ``websockets`` client, the adapter and a
  :class:`wsmux._pipeline.Feed`, the feed's actions (messages, REST snapshots
  through httpx) carried out here. Synchronisation: the mock answers every
  subscribe/unsubscribe with one ``subscriptions`` (or ``error``) message,
  after every frame it published before; so re-subscribing an existing topic
  and reading until every request is answered is a barrier.
* Multiplexer level: the real runtime, synchronised on sequence numbers / trade
  ids of the mock.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from wsmux import (
    BookUpdate,
    Channel,
    Error,
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
    quotes,
    trades,
)
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.credentials import Credentials
from wsmux.exchanges.coinbase import CoinbaseAdapter
from wsmux.model import L3Snapshot, OrderAction, OrderUpdate
from wsmux.subscriptions import l3
from wsmux.testing import MockCoinbase, collect_until

SECRET = "d3NtdXgtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
CREDS = Credentials("my-key", SECRET, "my-passphrase")


class Client:
    """A Feed driven by a plain websockets connection (the pre-runtime layer)."""

    def __init__(self, adapter: CoinbaseAdapter, mock: MockCoinbase) -> None:
        self.adapter = adapter
        self.mock = mock
        self.events: list[Event] = []
        self.feed = Feed(adapter, self.events.append)
        self.ws: Any = None
        self.http = httpx.AsyncClient()
        self.barrier_topic: dict[str, Any] | None = None
        self.subs: list[Subscription] = []
        self.requests = 0
        self.replies = 0

    async def send(self, message: str | bytes) -> None:
        self.requests += 1
        await self.ws.send(message)

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.mock.ws_url, max_size=2**24)
        self.subs = subs
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
            elif sub.channel is Channel.L3:
                self.feed.add_l3(sub)
        for message in self.adapter.subscribe(subs):
            await self.send(message)
        self.barrier_topic = {"type": "subscribe", "channels": [{"name": "heartbeat", "product_ids": [subs[0].symbol]}]}

    async def close(self) -> None:
        await self.ws.close()
        await self.http.aclose()

    async def _actions(self) -> None:
        for action in self.feed.take_actions():
            if isinstance(action, Send):
                for message in action.messages:
                    await self.send(message)
            else:
                assert isinstance(action, FetchSnapshot)
                response = await self.http.get(action.request.url, params=list(action.request.params))
                if response.status_code == 200:
                    self.feed.on_snapshot_body(action.symbol, response.content, time.time_ns(), action.channel)
                else:
                    self.feed.on_snapshot_error(
                        action.symbol, RuntimeError(response.text), time.time_ns(), action.channel
                    )
                await self._actions()

    async def pump_until(self, predicate: Callable[[str | bytes], bool]) -> None:
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), 10)
            text = str(frame)
            if '"type":"subscriptions"' in text or '"type":"error"' in text:
                self.replies += 1
            self.feed.on_frame(frame, time.time_ns())
            await self._actions()
            if predicate(frame):
                return

    async def until_event(self, predicate: Callable[[Event], bool]) -> Event:
        start = len(self.events)

        def seen(_: str | bytes) -> bool:
            return any(predicate(e) for e in self.events[start:])

        if not seen(""):
            await self.pump_until(seen)
        return next(e for e in self.events[start:] if predicate(e))

    async def sync(self) -> None:
        """Read until the answer to a no-op subscribe: every frame published before is in."""
        while True:
            await self.send(json.dumps(self.barrier_topic))
            sent = self.requests
            await self.pump_until(lambda f: self.replies >= self.requests)
            if self.requests == sent:  # no resync was sent meanwhile: done
                return


async def open_client(mock: MockCoinbase, subs: list[Subscription], **kwargs: Any) -> Client:
    if "credentials" in kwargs:  # the mock is plain ws:// on 127.0.0.1: opt in explicitly
        kwargs.setdefault("allow_insecure_loopback", True)
    client = Client(CoinbaseAdapter(url=mock.ws_url, rest_url=mock.rest_url, **kwargs), mock)
    await client.open(subs)
    return client


def close_enough(a: Any, b: Any) -> bool:
    """Books equal level by level; L3 level totals are float sums of orders."""
    (ab, aa), (bb, ba) = a, b
    if len(ab) != len(bb) or len(aa) != len(ba):
        return False
    return all(
        p == q and math.isclose(s, t, rel_tol=1e-12) for (p, s), (q, t) in zip([*ab, *aa], [*bb, *ba], strict=True)
    )


# --- Feed level: L2 + trades + quotes ------------------------------------------------------


async def test_feed_l2_trades_quotes_match_the_mock() -> None:
    async with MockCoinbase(["BTC-USD", "ETH-USD"], seed=3) as mock:
        subs = [*book("coinbase", "BTC-USD", "ETH-USD"), *trades("coinbase", "BTC-USD"), *quotes("coinbase", "BTC-USD")]
        client = await open_client(mock, subs)
        for _ in range(2):
            await client.until_event(lambda e: isinstance(e, Resynced))
        await mock.publish(400)
        await client.sync()
        for symbol in ("BTC-USD", "ETH-USD"):
            sync = client.feed.syncs[symbol]
            assert sync.valid
            assert sync.book.depth() == mock.markets[symbol].depth()
            sync.book._check()
            updates = [e for e in client.events if isinstance(e, BookUpdate) and e.symbol == symbol]
            assert len(updates) == 400
        assert not [e for e in client.events if isinstance(e, Gap | Error)]
        trade_events = [e for e in client.events if isinstance(e, Trade)]
        assert [t.trade_id for t in trade_events] == [str(i) for i in range(1, mock.last_trade_id("BTC-USD") + 1)]
        assert all(t.symbol == "BTC-USD" and t.side in (Side.BUY, Side.SELL) for t in trade_events)
        seqs = [t.seq for t in trade_events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        quote_events = [e for e in client.events if isinstance(e, Quote)]
        market = mock.markets["BTC-USD"]
        bb, ba = market.best_bid(), market.best_ask()
        last = quote_events[-1]
        assert (last.bid_price, last.bid_size, last.ask_price, last.ask_size) == (
            market.price(bb),
            market.size(market.bids[bb]),
            market.price(ba),
            market.size(market.asks[ba]),
        )
        await client.close()


async def test_feed_trade_gap_is_reported_with_the_missing_range() -> None:
    async with MockCoinbase(["BTC-USD"], seed=4) as mock:
        await mock.publish(50)  # trades happen before: last_match seeds continuity
        client = await open_client(mock, list(trades("coinbase", "BTC-USD")))
        await client.sync()
        seeded = mock.last_trade_id("BTC-USD")
        assert seeded > 0
        mock.skip_trades = 1
        await mock.publish(100)
        await client.sync()
        gaps = [e for e in client.events if isinstance(e, Gap)]
        trade_ids = [int(e.trade_id) for e in client.events if isinstance(e, Trade)]  # type: ignore[arg-type]
        missing = sorted(set(range(seeded + 1, mock.last_trade_id("BTC-USD") + 1)) - set(trade_ids))
        assert len(missing) == 1
        [gap] = gaps
        assert (gap.channel, gap.reason, gap.expected, gap.received) == (
            Channel.TRADES,
            GapReason.TRADE_ID,
            missing[0],
            missing[0] + 1,
        )
        # the history (last_match, trade `seeded`) was not delivered, and seeded the check
        assert sorted(trade_ids + missing) == list(range(seeded + 1, mock.last_trade_id("BTC-USD") + 1))
        await client.close()


@pytest.mark.parametrize("fault", ["crossed", "duplicate", "garbage"])
async def test_feed_l2_faults(fault: str) -> None:
    async with MockCoinbase(["BTC-USD"], seed=5) as mock:
        client = await open_client(mock, [*book("coinbase", "BTC-USD"), *trades("coinbase", "BTC-USD")])
        await client.until_event(lambda e: isinstance(e, Resynced))
        await mock.publish(20)
        setattr(mock.faults, fault, 1)
        await mock.publish(20)
        await client.sync()
        gaps = [e for e in client.events if isinstance(e, Gap)]
        errors = [e for e in client.events if isinstance(e, Error)]
        if fault == "crossed":
            [gap] = gaps
            assert gap.reason is GapReason.CROSSED and gap.channel is Channel.BOOK
            assert len([e for e in client.events if isinstance(e, Resynced)]) == 2  # healed by resubscribing
        elif fault == "duplicate":
            assert gaps == [] and errors == []
            trade_ids = [int(e.trade_id) for e in client.events if isinstance(e, Trade)]  # type: ignore[arg-type]
            assert trade_ids == list(range(1, mock.last_trade_id("BTC-USD") + 1))  # duplicates dropped
        else:
            assert gaps == [] and len(errors) == 1 and "invalid JSON" in errors[0].message
        await mock.publish(100)
        await client.sync()
        sync = client.feed.syncs["BTC-USD"]
        assert sync.valid and sync.book.depth() == mock.markets["BTC-USD"].depth()
        await client.close()


async def test_subscription_rejected_is_reported() -> None:
    async with MockCoinbase(["BTC-USD"]) as mock:
        mock.faults.reject_subscriptions = True
        client = await open_client(mock, list(trades("coinbase", "BTC-USD")))
        error = await client.until_event(lambda e: isinstance(e, Error))
        assert isinstance(error, Error) and error.kind.value == "venue_error"
        assert "SubscriptionRejected" in error.message and "mock fault: rejected" in error.message
        await client.close()


async def test_unknown_product_is_rejected_by_the_venue() -> None:
    async with MockCoinbase(["BTC-USD"]) as mock:
        client = await open_client(mock, list(trades("coinbase", "DOGE-USD")))
        error = await client.until_event(lambda e: isinstance(e, Error))
        assert "DOGE-USD is not a valid product" in error.message  # type: ignore[attr-defined]
        await client.close()


# --- Feed level: L3 (full) -----------------------------------------------------------------


def l3_view(client: Client, symbol: str) -> Any:
    l3book = client.feed.l3_book(symbol)
    assert l3book is not None
    return l3book


async def test_feed_l3_book_matches_the_mock_order_by_order() -> None:
    async with MockCoinbase(["BTC-USD", "ETH-USD"], seed=7, credentials=CREDS) as mock:
        await mock.publish(30)
        subs = [*l3("coinbase", "BTC-USD", "ETH-USD"), *trades("coinbase", "BTC-USD")]
        client = await open_client(mock, subs, credentials=CREDS)
        await client.sync()  # subscribed
        await mock.publish(5)  # the first book event triggers the REST snapshot
        for _ in range(2):
            await client.until_event(lambda e: isinstance(e, Resynced))
        await mock.publish(400)
        await client.sync()
        for symbol in ("BTC-USD", "ETH-USD"):
            l3book = l3_view(client, symbol)
            mock._check(symbol)
            assert l3book.valid and l3book.seq == mock.last_seq(symbol)
            assert close_enough(l3book.depth(), mock.markets[symbol].depth())
            expected = mock.l3_orders(symbol)
            got = [
                (o.order_id, "buy" if side == "bid" else "sell", o.price, o.size)
                for side in ("bid", "ask")
                for p, _ in l3book.levels(getattr(__import__("wsmux").BookSide, side.upper()))
                for o in l3book.orders_at(p, getattr(__import__("wsmux").BookSide, side.upper()))
            ]
            assert got == expected  # same orders, same FIFO order
            l3book._check()
        assert not [e for e in client.events if isinstance(e, Gap | Error)]
        snaps = [e for e in client.events if isinstance(e, L3Snapshot)]
        assert len(snaps) == 2
        updates = [e for e in client.events if isinstance(e, OrderUpdate)]
        assert {u.action for u in updates} == {OrderAction.ADD, OrderAction.CHANGE, OrderAction.REMOVE}
        trade_ids = [e.trade_id for e in client.events if isinstance(e, Trade)]
        assert trade_ids == [str(i) for i in range(int(trade_ids[0]), mock.last_trade_id("BTC-USD") + 1)]
        await client.close()


@pytest.mark.parametrize("fault", ["skip_seq", "reorder", "duplicate", "snapshot_garbage", "snapshot_status"])
async def test_feed_l3_faults_are_detected_and_healed(fault: str) -> None:
    async with MockCoinbase(["BTC-USD"], seed=11, credentials=CREDS) as mock:
        client = await open_client(mock, list(l3("coinbase", "BTC-USD")), credentials=CREDS)
        await client.sync()  # subscribed
        if fault.startswith("snapshot"):
            if fault == "snapshot_status":
                mock.faults.snapshot_status = 503
            else:
                mock.faults.snapshot_garbage = 1
            await mock.publish(3)
            await client.sync()
            errors = [e for e in client.events if isinstance(e, Error)]
            assert errors and errors[0].kind.value == "snapshot"
            mock.faults.snapshot_status = 200
        else:
            await mock.publish(3)
            await client.until_event(lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            setattr(mock.faults, fault, 1)
            await mock.publish(20)
            await client.sync()
            gaps = [e for e in client.events if isinstance(e, Gap)]
            if fault == "duplicate":
                assert gaps == []
                assert client.adapter.stats.duplicates == 1
            else:
                [gap] = gaps
                assert gap.channel is Channel.L3 and gap.reason is GapReason.SEQUENCE
                assert gap.received is not None and gap.expected is not None and gap.received > gap.expected
        await mock.publish(50)
        await client.sync()
        l3book = l3_view(client, "BTC-USD")
        assert l3book.valid and l3book.seq == mock.last_seq("BTC-USD")
        assert close_enough(l3book.depth(), mock.markets["BTC-USD"].depth())
        l3book._check()
        await client.close()


async def test_full_needs_a_valid_signature() -> None:
    async with MockCoinbase(["BTC-USD"], credentials=CREDS) as mock:
        wrong = Credentials("my-key", "b3RoZXItc2VjcmV0", "my-passphrase")
        client = await open_client(mock, list(l3("coinbase", "BTC-USD")), credentials=wrong)
        error = await client.until_event(lambda e: isinstance(e, Error))
        assert "authentication is required" in error.message  # type: ignore[attr-defined]
        await client.close()


# --- Multiplexer level ----------------------------------------------------------------------


async def test_multiplexer_book_trades_quotes() -> None:
    async with MockCoinbase(["BTC-USD", "ETH-USD"], seed=21) as mock:
        async with Multiplexer(endpoints={"coinbase": mock.endpoint}) as mux:
            stream = mux.subscribe(
                *book("coinbase", "BTC-USD", "ETH-USD"), *trades("coinbase", "BTC-USD"), *quotes("coinbase", "BTC-USD")
            )
            seen = 0

            def resynced(e: Event) -> bool:
                nonlocal seen
                seen += isinstance(e, Resynced)
                return seen == 2

            await collect_until(stream, resynced)
            await mock.publish(300)
            last_trade = str(mock.last_trade_id("BTC-USD"))
            events = await collect_until(stream, lambda e: isinstance(e, Trade) and e.trade_id == last_trade)
            # the last trade comes with its step's l2update and ticker; read to the end of the step
            await mock.publish(1, symbols=["ETH-USD"])
            events += await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.symbol == "ETH-USD")
            assert not [e for e in events if isinstance(e, Gap | Error)]
            for symbol in ("BTC-USD", "ETH-USD"):
                view = mux.book("coinbase", symbol)
                assert view.valid
                assert view.depth() == mock.markets[symbol].depth()
            trade_ids = [e.trade_id for e in events if isinstance(e, Trade)]
            assert trade_ids == [str(i) for i in range(1, mock.last_trade_id("BTC-USD") + 1)]
            await stream.aclose()


async def test_multiplexer_crossed_book_heals() -> None:
    async with MockCoinbase(["BTC-USD"], seed=22) as mock:
        async with Multiplexer(endpoints={"coinbase": mock.endpoint}) as mux:
            stream = mux.subscribe(*book("coinbase", "BTC-USD"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            mock.faults.crossed = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Resynced))
            gaps = [e for e in events if isinstance(e, Gap)]
            assert [g.reason for g in gaps] == [GapReason.CROSSED]
            await mock.publish(50)
            await mock.publish(1)
            await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.ts == mock._now_ns)
            view = mux.book("coinbase", "BTC-USD")
            assert view.valid and view.depth() == mock.markets["BTC-USD"].depth()
            await stream.aclose()


async def test_multiplexer_l3_with_credentials() -> None:
    async with MockCoinbase(["BTC-USD"], seed=23, credentials=CREDS) as mock:
        adapter_cls = CoinbaseAdapter.configured(credentials=CREDS, allow_insecure_loopback=True)
        async with Multiplexer(endpoints={"coinbase": mock.endpoint}, adapters={"coinbase": adapter_cls}) as mux:
            stream = mux.subscribe(*l3("coinbase", "BTC-USD"), *book("coinbase", "BTC-USD"))
            await collect_until(stream, lambda e: isinstance(e, Resynced) and e.channel is Channel.BOOK)
            await mock.publish(3)  # book events: the L3 sync asks for the REST snapshot
            await collect_until(stream, lambda e: isinstance(e, Resynced) and e.channel is Channel.L3)
            await mock.publish(200)
            last = mock.last_seq("BTC-USD")
            events = await collect_until(stream, lambda e: isinstance(e, OrderUpdate) and e.seq == last)
            assert not [e for e in events if isinstance(e, Gap | Error)]
            l3view = mux.l3_book("coinbase", "BTC-USD")
            assert l3view.valid and l3view.seq == last
            assert close_enough(l3view.depth(), mock.markets["BTC-USD"].depth())
            # the L2 channel is `level2` (authenticated) and agrees with the L3 book
            assert "level2" in {name for name, _ in next(iter(mock.connections.values())).topics}
            await stream.aclose()


def test_configured_checks_options_at_once() -> None:
    with pytest.raises(ValueError, match="needs credentials"):
        CoinbaseAdapter.configured(l2_channel="level2")
    cls = CoinbaseAdapter.configured(credentials=CREDS, heartbeats=False)
    adapter = cls(url="wss://x")
    assert isinstance(adapter, CoinbaseAdapter) and adapter.url == "wss://x"
    assert adapter.credentials is CREDS and adapter.l2_channel == "level2" and not adapter.heartbeats
    assert cls.venue == "coinbase" and SECRET not in repr(adapter)


def test_mock_full_stream_long_run_never_crosses_and_matches() -> None:
    """Sans sockets: 4,000 steps of the mock's ``full`` stream into an L3 feed
    (seed 1 once produced a transiently crossed order sequence at step 3075)."""
    from wsmux.testing._server import MockConnection

    mock = MockCoinbase(["BTC-USD"], seed=1, heartbeat_every=0)
    conn = MockConnection(None, 1)  # type: ignore[arg-type]
    conn.topics.update({("full", "BTC-USD"), ("matches", "BTC-USD")})
    answer = mock.http("/products/BTC-USD/book", {"level": "3"})
    assert answer is not None and answer[0] == 200
    adapter = CoinbaseAdapter(credentials=CREDS)
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    subs = [*l3("coinbase", "BTC-USD"), *trades("coinbase", "BTC-USD")]
    feed.add_l3(subs[0])
    adapter.subscribe(subs)
    market = mock.markets["BTC-USD"]
    for _ in range(4000):
        for frame in mock._deliver(conn, "BTC-USD", mock._advance("BTC-USD", market.step())):
            feed.on_frame(frame, 0)
            for action in feed.take_actions():
                assert isinstance(action, FetchSnapshot)
                feed.on_snapshot_body(action.symbol, answer[1], 0, action.channel)
    mock._check("BTC-USD")
    assert not [e for e in events if isinstance(e, Gap | Error)]
    l3book = feed.l3_book("BTC-USD")
    assert l3book is not None and l3book.valid and l3book.seq == mock.last_seq("BTC-USD")
    assert close_enough(l3book.depth(), market.depth())
    l3book._check()
    trade_ids = [int(e.trade_id) for e in events if isinstance(e, Trade)]  # type: ignore[arg-type]
    assert trade_ids == list(range(1, mock.last_trade_id("BTC-USD") + 1))


async def test_conformance_suite() -> None:
    from wsmux.testing import capture_frames, check_adapter

    adapter_cls = CoinbaseAdapter.configured(credentials=CREDS, allow_insecure_loopback=True)
    subs = [Subscription("coinbase", c, "BTC-USD") for c in sorted(CoinbaseAdapter.channels, key=lambda c: c.value)]
    async with MockCoinbase(["BTC-USD"], seed=3, credentials=CREDS, heartbeat_every=5) as mock:
        await mock.publish(10)  # so that last_match and the ticker exist on subscribing
        frames = await capture_frames(mock, adapter_cls, subs, steps=60)
    kinds = {json.loads(f)["type"] for f in frames}
    assert {"subscriptions", "snapshot", "l2update", "match", "last_match", "ticker", "heartbeat"} <= kinds
    assert {"received", "open", "done"} <= kinds
    report = check_adapter(adapter_cls, symbol="BTC-USD", frames=frames, subscriptions=subs, mutations=500)
    # (the suite unsubscribes before parsing: `full` messages then carry no events)
    assert report.events > 50 and report.mutations == 500 and report.frames == len(frames)
