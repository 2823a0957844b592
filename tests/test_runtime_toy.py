"""The runtime (Connection, Multiplexer, Stream) end to end on a toy venue."""

from __future__ import annotations

import asyncio

import pytest
from toyvenue import MockToy, ToyAdapter

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Channel,
    Connected,
    Disconnected,
    Error,
    Gap,
    GapReason,
    Multiplexer,
    Resynced,
    Subscription,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    UnknownVenue,
    book,
    trades,
)
from wsmux.testing import collect_until

FAST = Backoff(initial=0.01, cap=0.05)


def mux_for(mock: MockToy, **kw: object) -> Multiplexer:
    return Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST, **kw)  # type: ignore[arg-type]


async def wait_seq(stream, symbol: str, seq: int) -> list:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def test_book_matches_mock_after_many_updates() -> None:
    async with MockToy(["BTC-USD", "ETH-USD"]) as mock, mux_for(mock) as mux:
        stream = mux.subscribe(book("toy", "BTC-USD", "ETH-USD"), trades("toy", "BTC-USD"))
        seen = await collect_until(stream, lambda e: isinstance(e, Resynced) and e.symbol == "ETH-USD")
        await collect_until(stream, lambda e: isinstance(e, Resynced) and e.symbol == "BTC-USD") if not any(
            isinstance(e, Resynced) and e.symbol == "BTC-USD" for e in seen
        ) else None
        await mock.publish(300)
        conn = next(iter(mock.connections.values()))
        for sym in ("BTC-USD", "ETH-USD"):
            await wait_seq(stream, sym, conn.state["seq"][sym])
            view = mux.book("toy", sym)
            assert view.valid
            assert view.depth() == mock.markets[sym].depth()
            assert view.seq == conn.state["seq"][sym]
        health = mux.health()
        assert health["connections"][0]["books"]["BTC-USD"]["gaps"] == 0
        await stream.aclose()


async def test_gap_is_reported_and_healed() -> None:
    async with MockToy(["BTC-USD"]) as mock, mux_for(mock) as mux:
        stream = mux.subscribe(book("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(20)
        mock.faults.skip_seq = 1
        await mock.publish(5)
        events = await collect_until(stream, lambda e: isinstance(e, Gap))
        gap = events[-1]
        assert isinstance(gap, Gap) and gap.reason is GapReason.SEQUENCE and gap.channel is Channel.BOOK
        assert gap.received == gap.expected + 1  # type: ignore[operator]
        assert not mux.book("toy", "BTC-USD").valid  # flagged before anyone can read it
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(50)
        conn = next(iter(mock.connections.values()))
        await wait_seq(stream, "BTC-USD", conn.state["seq"]["BTC-USD"])
        view = mux.book("toy", "BTC-USD")
        assert view.valid and view.depth() == mock.markets["BTC-USD"].depth()


async def test_reconnect_resubscribes_and_resyncs() -> None:
    async with MockToy(["BTC-USD"]) as mock, mux_for(mock) as mux:
        stream = mux.subscribe(book("toy", "BTC-USD"), trades("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(10)
        await mock.drop_connections()
        events = await collect_until(stream, lambda e: isinstance(e, Resynced))
        kinds = [type(e) for e in events]
        assert Disconnected in kinds and Connected in kinds
        assert kinds.index(Disconnected) < kinds.index(Connected) < kinds.index(Resynced)
        gaps = [e for e in events if isinstance(e, Gap)]
        assert gaps and gaps[0].reason is GapReason.DISCONNECT
        # the new connection carries exactly the current subscriptions
        conn = next(iter(mock.connections.values()))
        assert conn.topics == {"book:BTC-USD", "trades:BTC-USD"}
        await mock.publish(30)
        await wait_seq(stream, "BTC-USD", conn.state["seq"]["BTC-USD"])
        assert mux.book("toy", "BTC-USD").depth() == mock.markets["BTC-USD"].depth()


async def test_garbage_is_reported_not_fatal() -> None:
    async with MockToy(["BTC-USD"]) as mock, mux_for(mock) as mux:
        stream = mux.subscribe(trades("toy", "BTC-USD"), book("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        mock.faults.garbage = 3
        await mock.publish(40)
        errors = []
        conn = next(iter(mock.connections.values()))
        events = await wait_seq(stream, "BTC-USD", conn.state["seq"]["BTC-USD"])
        errors = [e for e in events if isinstance(e, Error)]
        assert len(errors) == 3
        assert mux.health()["connections"][0]["feed"]["parse_errors"] == 3
        assert mux.book("toy", "BTC-USD").valid


async def test_shards_over_connections_by_limit() -> None:
    symbols = [f"S{i}-USD" for i in range(4)]
    async with MockToy(symbols) as mock, mux_for(mock) as mux:
        stream = mux.subscribe(book("toy", *symbols), trades("toy", *symbols))  # 8 subs, 3 per connection
        synced: set[str] = set()
        while len(synced) < 4:
            ev = await asyncio.wait_for(stream.__anext__(), 10)
            if isinstance(ev, Resynced):
                synced.add(ev.symbol)
        assert len(mux.connections()) == 3
        assert sorted(len(c.topics) for c in mock.connections.values()) == [2, 3, 3]


async def test_unsubscribe_when_last_stream_closes() -> None:
    async with MockToy(["BTC-USD"]) as mock, mux_for(mock) as mux:
        a = mux.subscribe(trades("toy", "BTC-USD"))
        b = mux.subscribe(trades("toy", "BTC-USD"), book("toy", "BTC-USD"))
        await collect_until(b, lambda e: isinstance(e, Resynced))
        conn = next(iter(mock.connections.values()))
        await a.aclose()
        assert conn.topics == {"trades:BTC-USD", "book:BTC-USD"}  # still wanted by b
        await b.aclose()
        assert mux.connections() == []


async def test_trade_callbacks_sync_and_async() -> None:
    async with MockToy(["BTC-USD"]) as mock, mux_for(mock) as mux:
        got_sync: list[Trade] = []
        got_async: list[Trade] = []
        done = asyncio.Event()

        async def on_trade(t: Trade) -> None:
            got_async.append(t)
            if len(got_async) >= 5:
                done.set()

        stream = mux.subscribe(trades("toy", "BTC-USD"))
        stream.on(Trade, got_sync.append).on(Trade, on_trade)
        await mock.connected.wait()
        while not done.is_set():
            await mock.publish(10)
            await asyncio.sleep(0)
            if len(got_sync) >= 5:
                await asyncio.wait_for(done.wait(), 5)
        assert got_sync[: len(got_async)] == got_async
        assert [t.trade_id for t in got_sync] == sorted(set(t.trade_id for t in got_sync), key=int)
        assert stream.buffered == 0  # callback-only streams do not buffer


async def test_subscribe_validates_arguments() -> None:
    async with Multiplexer(adapters={"toy": ToyAdapter}) as mux:
        with pytest.raises(UnknownVenue):
            mux.subscribe(trades("nope", "BTC-USD"))
        with pytest.raises(UnknownChannel):
            mux.subscribe(Subscription("toy", Channel.QUOTES, "BTC-USD"))
        with pytest.raises(UnknownSymbol):
            mux.subscribe(trades("toy", "btcusd"))
        assert mux.connections() == []


async def test_compressed_frames_are_decompressed_and_bad_ones_reported() -> None:
    from toyvenue import MockToyGzip, ToyGzipAdapter

    async with (
        MockToyGzip(["BTC-USD"]) as mock,
        Multiplexer(endpoints={"toyz": mock.endpoint}, adapters={"toyz": ToyGzipAdapter}, backoff=FAST) as mux,
    ):
        stream = mux.subscribe(book("toyz", "BTC-USD"), trades("toyz", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(30)
        conn = next(iter(mock.connections.values()))
        await wait_seq(stream, "BTC-USD", conn.state["seq"]["BTC-USD"])
        assert mux.book("toyz", "BTC-USD").depth() == mock.markets["BTC-USD"].depth()
        await conn.send(b"\x1f\x8b\x08\x00garbage-that-is-not-gzip")
        errors = await collect_until(stream, lambda e: isinstance(e, Error))
        assert "decompress" in errors[-1].message  # type: ignore[attr-defined]
        assert mux.health()["connections"][0]["connection"]["decompress_errors"] == 1
        assert mux.book("toyz", "BTC-USD").valid


async def test_stalled_feed_resubscribes_then_reconnects() -> None:
    from wsmux import Stale

    async with MockToy(["BTC-USD"]) as mock, mux_for(mock, stale_after=0.3) as mux:
        stream = mux.subscribe(book("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        # step 1: the socket lives but no data comes -> Stale, resubscribe on the same socket
        events = await collect_until(stream, lambda e: isinstance(e, Resynced), timeout=10)
        assert isinstance(events[0], Stale)
        assert not any(isinstance(e, Disconnected) for e in events)
        assert mock.connections_total == 1
        assert [m for m in mock.received if b"unsub" in (m if isinstance(m, bytes) else m.encode())]
        # step 2: the venue acknowledges resubscriptions but still sends nothing -> reconnect
        mock.faults.reject_subscriptions = True
        events = await collect_until(stream, lambda e: isinstance(e, Disconnected), timeout=10)
        assert sum(isinstance(e, Stale) for e in events) >= 2
        assert "stalled feed" in events[-1].reason  # type: ignore[attr-defined]
        mock.faults.reject_subscriptions = False
        await collect_until(stream, lambda e: isinstance(e, Resynced), timeout=10)
        assert mock.connections_total == 2
        health = mux.health()["connections"][0]["connection"]
        assert health["resubscribes"] >= 2 and health["silent"] == 0


async def test_silent_peer_is_declared_dead() -> None:
    from wsmux import Stale

    class QuickDeath(ToyAdapter):
        heartbeat = __import__("wsmux").Heartbeat(ping_message=None, ws_ping_interval=None, silence_timeout=0.3)

    async with (
        MockToy(["BTC-USD"]) as mock,
        Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": QuickDeath}, backoff=FAST) as mux,
    ):
        stream = mux.subscribe(trades("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Connected))
        mock.faults.silent = True  # the server stops sending anything but keeps the socket
        events = await collect_until(stream, lambda e: isinstance(e, Disconnected), timeout=10)
        assert any(isinstance(e, Stale) for e in events)
        assert "dead peer" in events[-1].reason  # type: ignore[attr-defined]
        mock.faults.silent = False
        await collect_until(stream, lambda e: isinstance(e, Connected), timeout=10)
        assert mux.health()["connections"][0]["connection"]["silent"] == 1


async def test_subscription_added_while_connecting_is_sent() -> None:
    from wsmux.connection import WebsocketsTransport

    started = asyncio.Event()
    gate = asyncio.Event()

    class GatedTransport(WebsocketsTransport):
        async def connect(self, url, **kw):  # type: ignore[no-untyped-def,override]
            started.set()
            await gate.wait()
            return await super().connect(url, **kw)

    async with MockToy(["BTC-USD"]) as mock, mux_for(mock, transport=GatedTransport()) as mux:
        first = mux.subscribe(trades("toy", "BTC-USD"))
        await asyncio.wait_for(started.wait(), 5)
        second = mux.subscribe(book("toy", "BTC-USD"))  # lands on the connection being opened
        await asyncio.sleep(0)
        gate.set()
        await collect_until(second, lambda e: isinstance(e, Resynced))
        conn = next(iter(mock.connections.values()))
        assert conn.topics == {"trades:BTC-USD", "book:BTC-USD"}
        assert len(mux.connections()) == 1
        await first.aclose()
