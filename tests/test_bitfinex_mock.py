"""Bitfinex end to end against MockBitfinex: at the Feed level (our own
websockets client pumping frames into wsmux._pipeline.Feed) and through the
Multiplexer. Synchronisation is on the connection sequence: after a publish,
frames are read until the adapter has seen the mock's last sequence number."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from candlekit import mock_prices, prices
from websockets.asyncio.client import ClientConnection, connect

from wsmux import Backoff, Multiplexer
from wsmux._pipeline import Feed, Send
from wsmux.exchanges.bitfinex import BitfinexAdapter
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Resynced,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, book, candles, l3, trades
from wsmux.testing import MockBitfinex, collect_until

STEPS = 300


class Client:
    """A websockets client driving one Feed (no Multiplexer)."""

    def __init__(self, mock: MockBitfinex, subs: list[Subscription]) -> None:
        self.mock = mock
        self.subs = subs
        self.adapter = BitfinexAdapter(url=mock.ws_url)
        self.events: list[Event] = []
        self.feed = Feed(self.adapter, self.events.append)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
            elif sub.channel is Channel.L3:
                self.feed.add_l3(sub)
        self.ws: ClientConnection | None = None

    async def __aenter__(self) -> Client:
        self.ws = await connect(self.mock.ws_url)
        for message in self.adapter.subscribe(self.subs):
            await self.ws.send(message)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None
        await self.ws.close()

    async def pump_until(self, done: Callable[[], bool], *, timeout: float = 10.0) -> None:
        assert self.ws is not None
        ws = self.ws

        async def run() -> None:
            while not done():
                frame = await ws.recv()
                self.feed.on_frame(frame, time.time_ns())
                for action in self.feed.take_actions():
                    assert isinstance(action, Send)
                    for message in action.messages:
                        await ws.send(message)

        await asyncio.wait_for(run(), timeout)

    def caught_up(self) -> bool:
        return self.adapter.seq is not None and self.adapter.seq == self.mock.last_seq()

    def books_valid(self) -> bool:
        return all(s.valid for s in self.feed.syncs.values()) and all(s.valid for s in self.feed.l3_syncs.values())

    async def settle(self) -> None:
        """Read until every book is valid and every sent frame is processed."""
        await self.pump_until(lambda: self.books_valid() and self.caught_up())

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


def book_equal(client: Client, mock: MockBitfinex, symbol: str, length: int = 100) -> bool:
    got = client.feed.book(symbol)
    assert got is not None
    return got.valid and got.depth() == mock.window(symbol, length)


# --- Feed level ---------------------------------------------------------------------------


async def test_book_and_trades_follow_the_mock() -> None:
    async with MockBitfinex(["BTC-USD", "ETH-USD"]) as mock:
        subs = [*book("bitfinex", "BTC-USD", "ETH-USD"), *trades("bitfinex", "BTC-USD")]
        async with Client(mock, subs) as client:
            await client.settle()
            first_trade_id = mock.markets["BTC-USD"].next_trade_id
            await mock.publish(STEPS)
            await client.settle()
            for symbol in ("BTC-USD", "ETH-USD"):
                assert book_equal(client, mock, symbol)
                sync = client.feed.syncs[symbol]
                assert sync.stats.checksum_mismatches == 0 and sync.stats.gaps == 0
                assert sync.stats.checksums_ok > STEPS // 2
            assert client.of(Gap) == []
            assert client.feed.stats.parse_errors == 0
            got = client.of(Trade)
            assert [int(t.trade_id) for t in got] == list(range(first_trade_id, mock.markets["BTC-USD"].next_trade_id))
            # the last trades exactly as the mock rendered them (history rows)
            rows = [json.loads(r) for r in mock._trades["BTC-USD"]]
            for trade, (tid, mts, amount, price) in zip(got[-len(rows) :], rows, strict=True):
                assert trade == Trade(
                    "bitfinex",
                    "BTC-USD",
                    price,
                    abs(amount),
                    Side.BUY if amount > 0 else Side.SELL,
                    str(tid),
                    mts * 1_000_000,
                    trade.recv_ns,
                )
            assert client.adapter.stats.history_dropped == 1  # the subscribe-time trade snapshot


async def test_candles_follow_the_mock_and_the_snapshot_resumes_them() -> None:
    async with MockBitfinex(["BTC-USD"], seed=9) as mock:
        subs = [*candles("bitfinex", "BTC-USD"), *trades("bitfinex", "BTC-USD")]
        async with Client(mock, subs) as client:
            await client.settle()
            await mock.publish(120)
            await client.settle()
            market = mock.markets["BTC-USD"]
            bars = client.of(Candle)
            assert len(bars) == market.next_trade_id - 1 > 0 and client.feed.stats.parse_errors == 0
            want = mock.candles.forming["BTC-USD"]
            expected = (
                *mock_prices(market, want),
                market.size(want.volume),
                False,
            )
            last = bars[-1]
            assert (*prices(last), last.volume, last.closed) == expected
        # a later subscriber gets the forming candle in the snapshot
        async with Client(mock, list(candles("bitfinex", "BTC-USD"))) as late:
            await late.pump_until(lambda: bool(late.of(Candle)))
            (first,) = late.of(Candle)
            assert (*prices(first), first.volume, first.closed) == (expected)


async def test_short_window_len_25() -> None:
    async with MockBitfinex(["BTC-USD"]) as mock:
        subs = [Subscription("bitfinex", Channel.BOOK, "BTC-USD", depth=25)]
        async with Client(mock, subs) as client:
            await client.settle()
            await mock.publish(STEPS)
            await client.settle()
            assert book_equal(client, mock, "BTC-USD", 25)
            assert client.feed.syncs["BTC-USD"].stats.checksum_mismatches == 0


class TinyLotBitfinex(MockBitfinex):
    """Sizes down to 1e-8: JavaScript writes many of them as ``5.5e-7``."""

    lot = "0.00000001"


async def test_exponent_form_amounts_keep_checksums_right() -> None:
    async with TinyLotBitfinex(["BTC-USD"]) as mock:
        async with Client(mock, list(book("bitfinex", "BTC-USD"))) as client:
            await client.settle()
            await mock.publish(STEPS)
            await client.settle()
            assert book_equal(client, mock, "BTC-USD")
            sync = client.feed.syncs["BTC-USD"]
            assert sync.stats.checksum_mismatches == 0 and sync.stats.checksums_ok > STEPS // 2
            texts = [t for side in BookSide for _, t in sync.book.text_depth(side, 100)]
            assert any("e-" in t for t in texts)


async def test_raw_book_follows_the_mock() -> None:
    async with MockBitfinex(["BTC-USD"]) as mock:
        subs = [*l3("bitfinex", "BTC-USD"), *book("bitfinex", "BTC-USD")]
        async with Client(mock, subs) as client:
            await client.settle()
            await mock.publish(STEPS)
            await client.settle()
            l3book = client.feed.l3_book("BTC-USD")
            assert l3book is not None and l3book.valid
            assert l3book.depth() == mock.window("BTC-USD", 100)
            assert book_equal(client, mock, "BTC-USD")
            l3sync = client.feed.l3_syncs["BTC-USD"]
            assert l3sync.stats.gaps == 0 and l3sync.stats.applied > STEPS
            assert client.adapter.stats.l3_checksums > STEPS // 2


async def test_raw_book_checksum_helper_matches_the_mock() -> None:
    from wsmux.exchanges.bitfinex import l3_checksum

    async with MockBitfinex(["BTC-USD"]) as mock:
        async with Client(mock, list(l3("bitfinex", "BTC-USD"))) as client:
            await client.settle()
            await mock.publish(40)
            await client.settle()
            chan = next(iter(mock._chans(next(iter(mock.connections.values()))).values()))
            l3book = client.feed.l3_book("BTC-USD")
            assert l3book is not None
            assert l3_checksum(l3book) == mock._checksum(chan)


async def test_heartbeats_advance_the_sequence_only() -> None:
    async with MockBitfinex(["BTC-USD"]) as mock:
        subs = [*book("bitfinex", "BTC-USD"), *trades("bitfinex", "BTC-USD")]
        async with Client(mock, subs) as client:
            await client.settle()
            before = len(client.events)
            await mock.heartbeat()
            await mock.heartbeat()
            await client.settle()
            assert len(client.events) == before
            assert client.adapter.stats.seq_gaps == 0


# --- faults ----------------------------------------------------------------------------


async def run_fault(fault: str, *, symbols: tuple[str, ...] = ("BTC-USD",), with_trades: bool = False) -> Client:
    mock = MockBitfinex(list(symbols))
    await mock.start()
    subs = [*book("bitfinex", *symbols)]
    if with_trades:
        subs += trades("bitfinex", *symbols)
    client = Client(mock, subs)
    await client.__aenter__()
    try:
        await client.settle()
        await mock.publish(30)
        await client.settle()
        setattr(mock.faults, fault, 1)
        await mock.publish(10)
        await client.pump_until(client.caught_up)
        await client.settle()  # resynced (if it broke)
        await mock.publish(STEPS)
        await client.settle()
        for symbol in symbols:
            assert book_equal(client, mock, symbol)
        assert getattr(mock.faults, fault) == 0  # it fired
    finally:
        await client.__aexit__()
        await mock.stop()
    return client


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("skip_seq", GapReason.SEQUENCE),
        ("reorder", GapReason.SEQUENCE),
        ("bad_checksum", GapReason.CHECKSUM),
        ("crossed", GapReason.CHECKSUM),  # crossing is checked by the checksum (module docstring)
    ],
)
async def test_fault_is_detected_and_healed(fault: str, reason: GapReason) -> None:
    client = await run_fault(fault)
    gaps = client.of(Gap)
    assert [(g.symbol, g.channel, g.reason) for g in gaps] == [("BTC-USD", Channel.BOOK, reason)]
    resynced = client.of(Resynced)
    assert len(resynced) == 2  # initial sync + after the gap
    assert client.events.index(gaps[0]) < client.events.index(resynced[1])


async def test_sequence_gap_resyncs_every_book_and_flags_trades() -> None:
    client = await run_fault("skip_seq", symbols=("BTC-USD", "ETH-USD"), with_trades=True)
    gaps = client.of(Gap)
    # the skipped number is found on whichever message comes next; both books
    # are resynced and each trade channel is told trades may be missing
    assert {(g.symbol, g.channel) for g in gaps} == {
        ("BTC-USD", Channel.BOOK),
        ("ETH-USD", Channel.BOOK),
        ("BTC-USD", Channel.TRADES),
        ("ETH-USD", Channel.TRADES),
    }
    assert all(g.reason is GapReason.SEQUENCE for g in gaps)
    assert len(client.of(Resynced)) == 4


async def test_duplicate_is_dropped_without_a_gap() -> None:
    client = await run_fault("duplicate")
    assert client.of(Gap) == []
    assert client.adapter.stats.duplicates == 1
    assert len(client.of(Resynced)) == 1


async def test_garbage_is_reported_and_costs_no_book() -> None:
    client = await run_fault("garbage")
    assert client.of(Gap) == []
    errors = client.of(Error)
    assert [e.kind for e in errors] == [ErrorKind.MALFORMED]


async def test_rejected_subscriptions_are_reported() -> None:
    async with MockBitfinex(["BTC-USD"]) as mock:
        mock.faults.reject_subscriptions = True
        async with Client(mock, list(book("bitfinex", "BTC-USD"))) as client:
            await client.pump_until(lambda: bool(client.of(Error)))
            (error,) = client.of(Error)
            assert error.kind is ErrorKind.VENUE_ERROR and "10300" in error.message
            assert not client.feed.syncs["BTC-USD"].valid


async def test_maintenance_end_resubscribes_books() -> None:
    async with MockBitfinex(["BTC-USD"]) as mock:
        async with Client(mock, list(book("bitfinex", "BTC-USD"))) as client:
            await client.settle()
            await mock.send_info(20060, "maintenance start")
            await mock.send_info(20061, "maintenance end")
            await client.pump_until(lambda: bool(client.of(Gap)))
            await client.settle()
            await mock.publish(50)
            await client.settle()
            assert book_equal(client, mock, "BTC-USD")
            assert len(client.of(Resynced)) == 2


# --- through the Multiplexer ---------------------------------------------------------------------


FAST = Backoff(initial=0.01, cap=0.05)


def seq_reached(mock: MockBitfinex, symbol: str) -> Callable[[Event], bool]:
    target = mock.last_book_seq(symbol)
    return lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= target


async def test_multiplexer_book_trades_and_gap() -> None:
    async with MockBitfinex(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"bitfinex": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bitfinex", "BTC-USD"), trades("bitfinex", "BTC-USD"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(STEPS)
            seen = await collect_until(stream, seq_reached(mock, "BTC-USD"))
            view = mux.book("bitfinex", "BTC-USD")
            assert view.valid
            assert view.depth() == mock.window("BTC-USD")
            assert any(isinstance(e, Trade) for e in seen)
            assert not any(isinstance(e, Gap) for e in seen)

            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap) and e.channel is Channel.BOOK)
            gap = events[-1]
            assert isinstance(gap, Gap) and gap.reason is GapReason.SEQUENCE and gap.symbol == "BTC-USD"
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(100)
            await collect_until(stream, seq_reached(mock, "BTC-USD"))
            assert view.valid and view.depth() == mock.window("BTC-USD")
            await stream.aclose()


async def test_multiplexer_reconnect_resubscribes_with_conf() -> None:
    async with MockBitfinex(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"bitfinex": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bitfinex", "BTC-USD"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.drop_connections()
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(100)
            await collect_until(stream, seq_reached(mock, "BTC-USD"))
            view = mux.book("bitfinex", "BTC-USD")
            assert view.valid and view.depth() == mock.window("BTC-USD")
            confs = [m for m in mock.received if json.loads(m).get("event") == "conf"]
            assert len(confs) == 2  # one per connection
            await stream.aclose()


async def test_multiplexer_raw_book_events() -> None:
    from wsmux.model import L3Snapshot, OrderUpdate

    async with MockBitfinex(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"bitfinex": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(l3("bitfinex", "BTC-USD"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced) and e.channel is Channel.L3)
            assert any(isinstance(e, L3Snapshot) for e in seen)
            await mock.publish(50)
            target = mock.last_seq() - 1  # the last frame is a (dropped) raw-book cs
            got = await collect_until(stream, lambda e: isinstance(e, OrderUpdate) and (e.seq or 0) >= target)
            assert any(isinstance(e, OrderUpdate) for e in got)
            assert not any(isinstance(e, Gap) for e in got)
            await stream.aclose()
