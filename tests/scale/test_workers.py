"""Done means: two ``wsmux run`` workers (subprocesses) on different venue
shards publish into one real engine; one consumer reads the merged stream;
counts, ids and final books match the mocks exactly; a worker killed with
SIGKILL and restarted shows markers and resynced books."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Engine

from wsmux import book, trades
from wsmux.model import Disconnected, Event, Gap, GapReason, Resynced, Trade
from wsmux.sinks import EventId
from wsmux.testing import MockBinance, MockKraken, collect_until
from wsmux.worker import shard_venues

SYMBOLS = {"binance": "BTC-USDT", "kraken": "BTC-USD"}


def write_config(path: Path, engine: Engine, mocks: dict[str, Any]) -> Path:
    lines = [
        'worker = "t"',
        "snapshot_every = 2.0",
        "heartbeat_every = 0.5",
        "[sink]",
        f'kind = "{engine.kind}"',
        f'url = "{engine.server.url}"',
        "batch = 500",
    ]
    for venue, mock in mocks.items():
        lines += [
            "[[subscribe]]",
            f'venue = "{venue}"',
            f'symbols = ["{SYMBOLS[venue]}"]',
            'channels = ["book", "trades"]',
            f'url = "{mock.ws_url}"',
            f'rest_url = "{mock.rest_url}"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_worker(config: Path, shard: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "wsmux", "run", str(config), "--shard", shard],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


async def test_two_workers_one_consumer_then_sigkill_and_restart(engine: Engine, tmp_path: Path) -> None:
    assert shard_venues(list(SYMBOLS), 0, 2) == ["binance"]  # the kill below targets binance's worker
    ids: list[EventId] = []
    async with MockBinance([SYMBOLS["binance"]]) as binance, MockKraken([SYMBOLS["kraken"]]) as kraken:
        mocks: dict[str, Any] = {"binance": binance, "kraken": kraken}
        config = write_config(tmp_path / "worker.toml", engine, mocks)
        source = engine.source(
            *(book(v, s) for v, s in SYMBOLS.items()),
            *(trades(v, s) for v, s in SYMBOLS.items()),
            start="all",
            on_id=lambda i, e: ids.append(i),
        )
        workers = [start_worker(config, "0/2"), start_worker(config, "1/2")]
        try:
            async with source as stream:
                trade_ids: dict[str, list[int]] = {v: [] for v in SYMBOLS}
                seen: list[Event] = []

                def record(e: Event) -> None:
                    seen.append(e)
                    if isinstance(e, Trade):
                        trade_ids[e.venue].append(int(e.trade_id))  # type: ignore[arg-type]

                def books_match() -> bool:
                    for venue, symbol in SYMBOLS.items():
                        market = mocks[venue].markets[symbol]
                        try:
                            view = source.book(venue, symbol)
                        except KeyError:
                            return False
                        if not (view.valid and view.depth() == market.depth()):
                            return False
                        if len(trade_ids[venue]) != market.next_trade_id - 1:
                            return False
                    return True

                synced: set[str] = set()

                def both_synced(e: Event) -> bool:
                    record(e)
                    if isinstance(e, Resynced):
                        synced.add(e.venue)
                    return synced == set(SYMBOLS)

                await collect_until(stream, both_synced, timeout=30)
                for mock in mocks.values():
                    await mock.publish(200)
                await collect_until(stream, lambda e: record(e) or books_match(), timeout=20)
                for venue, symbol in SYMBOLS.items():
                    assert trade_ids[venue] == list(range(1, mocks[venue].markets[symbol].next_trade_id))
                assert len(set(ids)) == len(ids)
                assert {i.venue for i in ids} >= set(SYMBOLS)
                assert not any(isinstance(e, Gap) for e in seen)

                # SIGKILL binance's worker: its heartbeat stops; restart it: end markers, then a resynced book
                assert await source.worker_alive("t-0of2") and await source.worker_alive("t-1of2")
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait(10)
                async with asyncio.timeout(10):
                    while await source.worker_alive("t-0of2"):
                        await asyncio.sleep(0.1)  # polls the engine until the heartbeat is older than its ttl
                assert await source.worker_alive("t-1of2")
                workers[0] = start_worker(config, "0/2")
                after: list[Event] = []

                def resynced_after_marker(e: Event) -> bool:
                    record(e)
                    after.append(e)
                    gaps = [x for x in after if isinstance(x, Gap) and x.venue == "binance"]
                    return bool(gaps) and isinstance(e, Resynced) and e.venue == "binance"

                await collect_until(stream, resynced_after_marker, timeout=30)
                assert any(isinstance(e, Disconnected) and e.venue == "binance" for e in after)
                gap = next(e for e in after if isinstance(e, Gap))
                assert gap.reason is GapReason.DISCONNECT
                assert len({i.epoch for i in ids if i.venue == "binance"}) == 2  # the restart is a new epoch
                for mock in mocks.values():
                    await mock.publish(100)
                await collect_until(stream, lambda e: record(e) or books_match(), timeout=20)
                for venue, symbol in SYMBOLS.items():
                    assert trade_ids[venue] == list(range(1, mocks[venue].markets[symbol].next_trade_id))
                assert source.stats.malformed == 0

                # SIGTERM: clean exit 0, with end markers for its subscriptions
                for worker in workers:
                    worker.send_signal(signal.SIGTERM)
                for worker in workers:
                    output = worker.communicate(timeout=20)[0]
                    assert worker.returncode == 0, output
                    assert "stopped:" in output
                await collect_until(
                    stream,
                    lambda e: isinstance(e, Gap) and e.venue == "kraken" and e.reason is GapReason.DISCONNECT,
                    timeout=20,
                )
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(10)
