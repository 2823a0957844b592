"""Sinks and sources against a real redis-server and a real nats-server (JetStream)."""

from __future__ import annotations

import asyncio

from conftest import Engine

from wsmux import book, trades
from wsmux.model import BookUpdate, Error, Event, Gap, Resynced, Trade
from wsmux.multiplexer import Multiplexer
from wsmux.sinks import EventId, SyncSource
from wsmux.stream import Stream
from wsmux.testing import MockBinance, collect_until


async def test_events_round_trip_with_ids_and_books(engine: Engine) -> None:
    ids: list[EventId] = []
    async with MockBinance(["BTC-USDT"]) as mock, Multiplexer(endpoints={"binance": mock.endpoint}) as mux:
        sink = engine.sink(worker="w1")
        await sink.start()
        local = mux.subscribe(book("binance", "BTC-USDT"), trades("binance", "BTC-USDT"), overflow="drop_oldest")
        sink.attach(local)
        source = engine.source(
            book("binance", "BTC-USDT"),
            trades("binance", "BTC-USDT"),
            start="all",
            on_id=lambda i, e: ids.append(i),
        )
        async with source as remote:
            await collect_until(remote, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            n_trades = mock.markets["BTC-USDT"].next_trade_id - 1
            last = mock.update_id("BTC-USDT")
            got_trades: list[int] = []
            got_update = False

            def done(e: Event) -> bool:
                nonlocal got_update
                if isinstance(e, Trade):
                    got_trades.append(int(e.trade_id))  # type: ignore[arg-type]
                if isinstance(e, BookUpdate) and e.seq == last:
                    got_update = True
                return got_update and len(got_trades) == n_trades

            seen = await collect_until(remote, done)
            assert got_trades == list(range(1, n_trades + 1))
            view = source.book("binance", "BTC-USDT")
            assert view.valid and view.seq == last
            assert view.depth() == mock.markets["BTC-USDT"].depth()
            assert not any(isinstance(e, Gap | Error) for e in seen)
        await sink.close()
    assert ids and all(i.venue == "binance" and i.epoch == 1 for i in ids)
    seqs = [i.seq for i in ids]
    assert len(set(seqs)) == len(seqs)  # every id once: no duplicate delivered
    assert sink.stats.published >= len(ids)


async def test_two_workers_on_one_venue_never_share_ids(engine: Engine) -> None:
    """Epochs are unique across workers, so ids are too (JetStream would
    otherwise drop the second worker's messages as duplicates)."""
    first, second = engine.sink(worker="a"), engine.sink(worker="b")
    await first.start()
    await second.start()
    assert first.epoch != second.epoch
    ids: list[EventId] = []
    source = engine.source(trades("binance", "BTC-USDT"), start="all", on_id=lambda i, e: ids.append(i))
    async with source as stream:
        for n, sink in enumerate((first, second)):
            await sink.publish([Trade("binance", "BTC-USDT", 1.0, 1.0, None, str(n), None, 1)])
        got = await collect_until(stream, lambda e: isinstance(e, Trade) and e.trade_id == "1")
    assert [e.trade_id for e in got if isinstance(e, Trade)] == ["0", "1"]
    assert len(set(ids)) == 2
    await first.close()
    await second.close()


def test_the_sync_facade_reads_a_source(engine: Engine) -> None:
    """Plain threads: SyncSource runs the source on a background loop."""

    async def publish() -> None:
        sink = engine.sink(worker="s")
        await sink.start()
        await sink.publish([Trade("binance", "BTC-USDT", 1.0, 1.0, None, str(n), None, 1) for n in range(5)])
        await sink.close()

    asyncio.run(publish())
    with SyncSource(lambda: engine.source(trades("binance", "BTC-USDT"), start="all")) as stream:
        got = [stream.get(timeout=10) for _ in range(5)]
    assert [e.trade_id for e in got if isinstance(e, Trade)] == ["0", "1", "2", "3", "4"]


async def test_close_publishes_what_a_closed_stream_still_buffers(engine: Engine) -> None:
    sink = engine.sink(worker="f")
    await sink.start()
    local = Stream(tuple(trades("binance", "BTC-USDT")), name="local")
    sink.attach(local)
    for n in range(300):
        local._put(Trade("binance", "BTC-USDT", 1.0, 1.0, None, str(n), None, 1))
    await local.aclose()  # the multiplexer closed first, as at a worker's shutdown
    await sink.close()
    assert sink.stats.published == 300


async def test_linger_lets_a_small_batch_grow(engine: Engine) -> None:
    batches = []
    for linger in (0.0, 0.5):
        sink = engine.sink(worker=f"l{int(linger * 10)}", linger=linger)
        await sink.start()
        local = Stream(tuple(trades("binance", "BTC-USDT")), name="local")
        sink.attach(local)
        local._put(Trade("binance", "BTC-USDT", 1.0, 1.0, None, "1", None, 1))
        await asyncio.sleep(0)  # one loop turn: the sink takes the first event (and lingers, if it does)
        local._put(Trade("binance", "BTC-USDT", 1.0, 1.0, None, "2", None, 1))
        local._put(Trade("binance", "BTC-USDT", 1.0, 1.0, None, "3", None, 1))
        await sink.close()
        assert sink.stats.published == 3
        batches.append(sink.stats.batches)
    assert batches == [2, 1]


async def test_a_cancelled_close_ends_cancelled(engine: Engine) -> None:
    """``close`` cancels its stream readers and waits for them; a cancel of
    the closer itself that lands meanwhile must end the closer, not be
    swallowed with the readers' (``suppress(CancelledError)`` did that, so
    whoever cancelled the closer waited on a task that went on)."""
    sink = engine.sink(worker="x")
    await sink.start()
    local = Stream(tuple(trades("binance", "BTC-USDT")), name="local")
    sink.attach(local)
    await asyncio.sleep(0)  # the reader waits for events
    closer = asyncio.create_task(sink.close(flush=False))
    while not sink._closed:  # the closer has cancelled the reader and waits for it
        await asyncio.sleep(0)
    assert closer.cancel()
    try:
        await closer
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the closer's cancel was swallowed")
    await sink.engine.close()
