"""Faults: the engine restarted mid-stream, a slow consumer (BLOCK pauses the
source's reads), an unavailable engine with a small worker-side buffer
(counted drops, reported errors, loss markers) — against real servers."""

from __future__ import annotations

import asyncio

from conftest import Engine

from wsmux import book, trades
from wsmux._retry import Backoff
from wsmux.model import Dropped, Error, ErrorKind, Event, Gap, GapReason, Resynced, Side, Trade
from wsmux.multiplexer import Multiplexer
from wsmux.sinks import Source
from wsmux.testing import MockBinance, collect_until

FAST = Backoff(initial=0.05, factor=2.0, cap=0.2)
SYMBOL = "BTC-USDT"


async def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a state condition of another task with a bounded deadline."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def book_matches(source: Source, mock: MockBinance, trade_ids: list[int]) -> bool:
    try:
        view = source.book("binance", SYMBOL)
    except KeyError:
        return False
    market = mock.markets[SYMBOL]
    return view.valid and view.depth() == market.depth() and len(trade_ids) == market.next_trade_id - 1


async def test_engine_restart_mid_stream_is_survived(engine: Engine) -> None:
    async with MockBinance([SYMBOL]) as mock, Multiplexer(endpoints={"binance": mock.endpoint}) as mux:
        sink = engine.sink(worker="w", backoff=FAST, timeout=1.0)
        await sink.start()
        local = mux.subscribe(book("binance", SYMBOL), trades("binance", SYMBOL), overflow="drop_oldest")
        sink.attach(local)
        source = engine.source(
            book("binance", SYMBOL), trades("binance", SYMBOL), start="all", backoff=FAST, workers=("w",)
        )
        trade_ids: list[int] = []
        seen: list[Event] = []

        def record(e: Event) -> bool:
            seen.append(e)
            if isinstance(e, Trade):
                trade_ids.append(int(e.trade_id))  # type: ignore[arg-type]
            return book_matches(source, mock, trade_ids)

        async with source as stream:
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(100)
            await collect_until(stream, record)
            engine.server.stop()
            await mock.publish(100)  # the worker keeps receiving while the engine is down
            await wait_for(lambda: sink.stats.engine_errors > 0)
            engine.server.start()  # same port, same data directory
            await collect_until(stream, record, timeout=30)
            await mock.publish(50)
            await collect_until(stream, record, timeout=20)
        await sink.close()
        assert trade_ids == list(range(1, mock.markets[SYMBOL].next_trade_id))
        assert local.stats.dropped == 0
        # the worker reported the outage in band: published on its own key once the engine was back
        assert any(isinstance(e, Error) and e.kind is ErrorKind.TRANSPORT and "engine" in e.message for e in seen)
        assert not any(isinstance(e, Gap) for e in seen)


async def test_block_pauses_the_source_reads(engine: Engine) -> None:
    sink = engine.sink(worker="w")
    await sink.start()
    events = [Trade("binance", SYMBOL, 100.0 + i, 1.0, Side.BUY, str(i), None, i) for i in range(1, 501)]
    for i in range(0, 500, 10):
        await sink.publish(events[i : i + 10])  # 50 engine messages of 10 events
    source = engine.source(trades("binance", SYMBOL), start="all", maxsize=50, overflow="block", batch=2)
    async with source as stream:
        await wait_for(lambda: stream.blocked)
        assert source.stats.read <= 70  # one read (2 messages) past the bound at most: the rest waits in the engine
        got: list[int] = []
        async for e in stream:
            if isinstance(e, Trade):
                got.append(int(e.trade_id))  # type: ignore[arg-type]
                if len(got) == 500:
                    break
        assert got == list(range(1, 501))
        assert stream.stats.dropped == 0
        assert stream.stats.received == stream.stats.delivered + stream.stats.dropped + stream.buffered
    await sink.close()


async def test_unavailable_engine_drops_on_the_worker_side_counted_and_marked(engine: Engine) -> None:
    async with MockBinance([SYMBOL]) as mock, Multiplexer(endpoints={"binance": mock.endpoint}) as mux:
        sink = engine.sink(worker="w", backoff=FAST, timeout=1.0)
        await sink.start()
        local = mux.subscribe(book("binance", SYMBOL), maxsize=20, overflow="drop_oldest")
        sink.attach(local)
        source = engine.source(book("binance", SYMBOL), start="all", backoff=FAST, workers=("w",))
        async with source as stream:
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            engine.server.stop()
            await mock.publish(200)
            await wait_for(lambda: local.stats.dropped > 0 and sink.stats.engine_errors > 0)
            engine.server.start()
            kinds: set[type] = set()

            def marked(e: Event) -> bool:
                if isinstance(e, Dropped) or (isinstance(e, Gap) and e.reason is GapReason.SEQUENCE):
                    kinds.add(type(e))
                return kinds == {Dropped, Gap}

            seen = await collect_until(stream, marked, timeout=30)
            assert not source.book("binance", SYMBOL).valid  # the consumer's book says it is behind
        await sink.close()
        assert sink.stats.loss_markers >= 1
        assert local.stats.dropped_by_reason.get("overflow", 0) == local.stats.dropped
        dropped = [e for e in seen if isinstance(e, Dropped)]
        assert sum(d.count for d in dropped) <= local.stats.dropped
