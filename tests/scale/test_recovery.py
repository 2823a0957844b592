"""Consumer crashes: unacknowledged events come back (Redis: own pending
entries re-read, a dead peer's claimed; NATS: redelivered after ack_wait),
and a consumer that joins late gets a consistent book from the worker's
periodic snapshot."""

from __future__ import annotations

import asyncio
import io

from conftest import Engine

from wsmux import book, trades
from wsmux.model import BookUpdate, Event, Resynced, Side, Trade
from wsmux.sinks import Source
from wsmux.sinks.nats import NatsReader, nats_subjects
from wsmux.sinks.redis import RedisReader, redis_keys
from wsmux.testing import MockBinance, collect_until
from wsmux.worker import WorkerConfig, run_worker

SYMBOL = "BTC-USDT"


async def publish_trades(engine: Engine, n: int) -> None:
    sink = engine.sink(worker="p")
    await sink.start()
    for i in range(1, n + 1):  # one engine message each
        await sink.publish([Trade("binance", SYMBOL, 1.0, 1.0, Side.BUY, str(i), None, i)])
    await sink.close()


async def read_without_ack(engine: Engine, consumer: str, group: str, count: int) -> int:
    """A consumer that reads ``count`` messages and dies before acknowledging them."""
    subs = tuple(trades("binance", SYMBOL))
    if engine.kind == "redis":
        reader: RedisReader | NatsReader = RedisReader(
            engine.server.url, redis_keys(subs), group, consumer, "all", 30.0, 5.0
        )
    else:
        reader = NatsReader(engine.server.url, nats_subjects(subs), "WSMUX", consumer, "all", 1.0, 5.0)
    await reader.connect()
    got = await reader.read(count)
    await reader.close()
    return len(got)


async def trade_ids(source: Source, n: int) -> list[str]:
    ids: list[str] = []
    async with source as stream:
        await collect_until(stream, lambda e: isinstance(e, Trade) and ids.append(e.trade_id) is None and len(ids) == n)  # type: ignore[arg-type]
    return ids


async def test_a_crashed_consumers_events_come_back_to_it(engine: Engine) -> None:
    await publish_trades(engine, 10)
    assert await read_without_ack(engine, "c1", "c1", 4) == 4
    # the same consumer (name) again: the unacknowledged four first, then the rest, each once
    kw = {"ack_wait": 1.0} if engine.kind == "nats" else {}
    ids = await trade_ids(engine.source(trades("binance", SYMBOL), consumer="c1", start="all", **kw), 10)
    assert sorted(ids, key=int) == [str(i) for i in range(1, 11)]
    assert len(set(ids)) == 10


async def test_a_dead_peers_unacknowledged_entries_are_claimed(engine: Engine) -> None:
    if engine.kind == "nats":
        return  # JetStream redelivers to whichever process runs the durable consumer: the test above
    await publish_trades(engine, 10)
    assert await read_without_ack(engine, "dead", "g", 4) == 4
    source = engine.source(trades("binance", SYMBOL), consumer="alive", group="g", start="all", claim_idle=0.05)
    ids = await trade_ids(source, 10)
    assert sorted(ids, key=int) == [str(i) for i in range(1, 11)]


async def test_a_late_consumer_gets_a_consistent_book(engine: Engine) -> None:
    async with MockBinance([SYMBOL]) as mock:
        config = WorkerConfig(
            worker="late",
            subscriptions=tuple(book("binance", SYMBOL)),
            endpoints={"binance": mock.endpoint},
            sink={"kind": engine.kind, "url": engine.server.url},
            snapshot_every=0.3,
        )
        stop = asyncio.Event()
        worker = asyncio.get_running_loop().create_task(run_worker(config, stop=stop, out=io.StringIO()))
        early = engine.source(book("binance", SYMBOL), consumer="early", start="all")
        async with early as stream:
            await collect_until(stream, lambda e: isinstance(e, Resynced), timeout=30)
            await mock.publish(100)
            last = mock.update_id(SYMBOL)
            await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == last)
        # joins now, reading only what comes from now on: no snapshot of the sync, only updates...
        late = engine.source(book("binance", SYMBOL), consumer="late", start="new")
        async with late as stream:
            seen: list[Event] = []
            await collect_until(stream, lambda e: seen.append(e) is None and isinstance(e, Resynced), timeout=10)
            view = late.book("binance", SYMBOL)  # ...until the worker's periodic snapshot
            assert view.valid and view.seq == last
            assert view.depth() == mock.markets[SYMBOL].depth()
        stop.set()
        assert await asyncio.wait_for(worker, 30) == 0
