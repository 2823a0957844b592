"""CryptocomAdapter against MockCryptocom, end to end.

* Feed level: a bare ``websockets`` client reading into a
  :class:`wsmux._pipeline.Feed`, sending the adapter's heartbeat replies and
  carrying out the feed's actions (resubscribes). Synchronised by an
  ``unsubscribe`` round trip (the mock answers in order).
* Multiplexer level: the real runtime, whose Connection sends the heartbeat
  replies (the mock closes a connection that does not answer).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import pytest
import websockets
from feedclient import FeedClient, feed_client

from wsmux import (
    Backoff,
    BookUpdate,
    Candle,
    Disconnected,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Multiplexer,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    trades,
)
from wsmux.exchanges.cryptocom import CryptocomAdapter
from wsmux.testing import MockCryptocom, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
SYMBOLS = pytest.mark.parametrize("symbol", ["BTC-USDT", "BTC-USD-PERP"])
_SYNC_ID = 10**9
"""The id of the round-trip request :meth:`FeedClient.sync` sends (no test uses it)."""


def _is_sync_answer(frame: str | bytes) -> bool:
    return isinstance(frame, str) and '"method":"unsubscribe"' in frame and json.loads(frame).get("id") == _SYNC_ID


@contextlib.asynccontextmanager
async def client(mock: MockCryptocom, subs: list[Subscription]) -> Any:
    """The shared Feed client (heartbeats answered through the Feed's Reply),
    synced by an unsubscribe round trip the venue acknowledges in order."""
    adapter = CryptocomAdapter(url=mock.ws_url, rest_url=mock.rest_url)
    native = next(iter(mock.natives.values()))
    probe = json.dumps({"id": _SYNC_ID, "method": "unsubscribe", "params": {"channels": [f"ticker.{native}"]}})
    async with feed_client(mock, adapter, subs, probe, _is_sync_answer) as c:
        yield c


def assert_same_book(c: FeedClient, mock: MockCryptocom, symbol: str, depth: int = 50) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.book_view(symbol, depth)
    assert local.seq == mock.streams[symbol, depth].id
    local._check()


# --- Feed level ------------------------------------------------------------------------------


@SYMBOLS
@pytest.mark.parametrize("depth", [None, 10])
async def test_book_equals_mock_after_many_steps_with_heartbeats(symbol: str, depth: Any) -> None:
    async with MockCryptocom([symbol], heartbeat_every=20) as mock:
        subs = [*book("cryptocom", symbol, depth=depth), *trades("cryptocom", symbol)]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            for _ in range(3):
                await mock.publish(100)
                await c.sync()
                assert_same_book(c, mock, symbol, depth or 50)
            assert c.count(Gap) == 0 and c.count(Error) == 0
            assert c.count(BookUpdate) >= 250 and c.count(Trade) > 30
            await mock.wait_heartbeats_answered()
            assert mock.heartbeats_sent >= 3 and mock.closed_for_heartbeat == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
async def test_fault_detected_and_healed_by_resubscribing(fault: str, reason: GapReason) -> None:
    async with MockCryptocom(["BTC-USDT"]) as mock:
        async with client(mock, list(book("cryptocom", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(10)
            setattr(mock.faults, fault, 1)
            await mock.publish(3)
            await c.sync()
            gaps = [e for e in c.events if isinstance(e, Gap)]
            assert len(gaps) == 1 and gaps[0].reason is reason
            await c.wait(lambda: c.count(Resynced) == 2)  # unsubscribe + subscribe: a new snapshot
            await mock.publish(30)
            await c.sync()
            assert_same_book(c, mock, "BTC-USDT")


async def test_duplicates_garbage_and_rejections() -> None:
    async with MockCryptocom(["BTC-USDT"]) as mock:
        async with client(mock, list(book("cryptocom", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            mock.faults.garbage = 2
            await mock.publish(10)
            await c.sync()
            assert c.count(Gap) == 0 and c.feed.syncs["BTC-USDT"].stats.stale >= 3
            assert [e.kind for e in c.events if isinstance(e, Error)] == [ErrorKind.MALFORMED] * 2
            assert_same_book(c, mock, "BTC-USDT")
            mock.faults.reject_subscriptions = True
            for message in c.adapter.subscribe(list(trades("cryptocom", "BTC-USDT"))):
                await c.ws.send(message)
            await c.sync()
            refused = [e for e in c.events if isinstance(e, Error) and e.kind is ErrorKind.VENUE_ERROR]
            assert len(refused) == 1 and "10004" in refused[0].message


async def test_every_channel() -> None:
    async with MockCryptocom(["ETH-USD-PERP"]) as mock:
        subs = [Subscription("cryptocom", ch, "ETH-USD-PERP") for ch in CryptocomAdapter.channels]
        async with client(mock, subs) as c:
            request = c.adapter.instruments_request()
            assert request is not None
            async with httpx.AsyncClient() as http:
                instruments = c.adapter.parse_instruments((await http.get(request.url)).content)
            assert [(i.symbol, i.native, i.kind, i.contract_size) for i in instruments] == [
                ("ETH-USD-PERP", "ETHUSD-PERP", "perp", None)
            ]
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(60)
            await c.sync()
            market = mock.markets["ETH-USD-PERP"]
            quote = [e for e in c.events if isinstance(e, Quote)][-1]
            bb = market.best_bid()
            assert (quote.bid_price, quote.bid_size) == (market.price(bb), market.size(market.bids[bb]))
            for cls in (Trade, Funding, Candle, BookUpdate):
                assert c.count(cls) > 0, cls
            assert c.count(Error) == 0 and c.count(Gap) == 0


async def test_a_client_that_does_not_answer_heartbeats_is_closed() -> None:
    async with MockCryptocom(["BTC-USDT"], heartbeat_every=1, heartbeat_timeout=0.0) as mock:
        async with websockets.connect(mock.ws_url) as ws:
            for message in CryptocomAdapter().subscribe(list(trades("cryptocom", "BTC-USDT"))):
                await ws.send(message)
            assert json.loads(await ws.recv())["code"] == 0  # the ack: subscribed
            await mock.publish(2)  # a heartbeat, then (unanswered) the close
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await ws.recv()
            assert mock.closed_for_heartbeat == 1


async def test_conformance_on_every_channel() -> None:
    symbol = "BTC-USD-PERP"
    subs = [Subscription("cryptocom", c, symbol) for c in sorted(CryptocomAdapter.channels, key=lambda c: c.value)]
    async with MockCryptocom([symbol], seed=3, heartbeat_every=10) as mock:
        frames = await capture_frames(mock, CryptocomAdapter, subs, steps=60)
    report = check_adapter(CryptocomAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=400)
    assert report.events > 60 and report.mutations == 400


# --- Multiplexer level -----------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream, lambda e: isinstance(e, BookUpdate) and e.symbol == symbol and (e.seq or 0) >= seq
    )


async def test_multiplexer_answers_heartbeats_keeps_the_book_and_heals_a_gap() -> None:
    async with MockCryptocom(["BTC-USDT"], heartbeat_every=10) as mock:
        async with Multiplexer(endpoints={"cryptocom": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("cryptocom", "BTC-USDT"), trades("cryptocom", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            for _ in range(6):  # 300 steps, 30 heartbeats; each must be answered before the next
                await mock.publish(50)
                seen = await wait_seq(stream, "BTC-USDT", mock.streams["BTC-USDT", 50].id)
                assert not any(isinstance(e, Disconnected) for e in seen)
            await mock.wait_heartbeats_answered()
            assert mock.heartbeats_sent >= 6 and mock.closed_for_heartbeat == 0
            view = mux.book("cryptocom", "BTC-USDT")
            assert view.valid and view.depth() == mock.book_view("BTC-USDT")
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert events[-1].reason is GapReason.SEQUENCE  # type: ignore[attr-defined]
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            await wait_seq(stream, "BTC-USDT", mock.streams["BTC-USDT", 50].id)
            assert view.valid and view.depth() == mock.book_view("BTC-USDT")
            await stream.aclose()
