"""Memory during a resync storm (issue 10, item 16): where the heap goes.

Syncs N Binance books on the mock (127.0.0.1) with the real REST budget (6,000
weight a minute, 50 per snapshot: two snapshots a second), keeps the market moving,
drops every connection at once and samples, every few seconds, the books still
waiting for their snapshot, the diffs they buffer, the traced heap and the RSS;
then prints the allocation sites that grew most (tracemalloc, by line)::

    python bench/storm_memory.py --symbols 300 --seconds 40
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import tracemalloc

from wsmux import Backoff, Multiplexer, book
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.testing import MockBinance

__all__ = ["main"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def storm(symbols: int, seconds: float) -> None:
    names = [f"S{i:03d}-USDT" for i in range(symbols)]
    async with MockBinance(names, seed=5) as mock:
        for symbol in list(getattr(mock, "trade_history", {})):
            mock.trade_history[symbol].clear()
        async with Multiplexer(
            endpoints={"binance": mock.endpoint},
            adapters={"binance": BinanceSpotAdapter},
            backoff=Backoff(initial=0.01, cap=0.05),
        ) as mux:
            stream = mux.subscribe(book("binance", *names), maxsize=100_000)

            async def drain() -> None:
                async for _ in stream:
                    pass

            running = True

            async def market() -> None:
                while running:
                    await mock.publish(1)
                    await asyncio.sleep(0.005)

            tasks = [asyncio.create_task(drain()), asyncio.create_task(market())]

            def syncs() -> list:  # type: ignore[type-arg]
                return [s for c in mux.connections() for s in c.feed.syncs.values()]

            while not (len(syncs()) == symbols and all(s.valid for s in syncs())):
                await asyncio.sleep(0.2)
            gc.collect()
            tracemalloc.start(1)
            before = tracemalloc.take_snapshot()
            base = tracemalloc.get_traced_memory()[0]
            print(f"synced {symbols} books: RSS {_rss_mb():.1f} MB")
            await mock.drop_connections()
            started = time.monotonic()
            worst: tuple[int, tracemalloc.Snapshot | None] = (0, None)
            while time.monotonic() - started < seconds:
                await asyncio.sleep(4)
                waiting = [len(s._buffer) for s in syncs() if not s.valid]
                heap = tracemalloc.get_traced_memory()[0] - base
                fetched = sum(c.stats.snapshot_requests for c in mux.connections())
                print(
                    f"t+{time.monotonic() - started:4.0f} s: {len(waiting):3d} books waiting, "
                    f"{sum(waiting):7d} diffs buffered (max {max(waiting, default=0):5d} a book), "
                    f"heap {heap / 2**20:+6.1f} MiB, RSS {_rss_mb():6.1f} MB, snapshots requested {fetched}"
                )
                if heap > worst[0]:
                    worst = (heap, tracemalloc.take_snapshot())
            running = False
            if worst[1] is not None:
                print("grew most (vs synced):")
                for stat in worst[1].compare_to(before, "lineno")[:10]:
                    frame = stat.traceback[0]
                    print(f"  {stat.size_diff / 2**20:7.2f} MiB {stat.count_diff:+9d}  {frame.filename}:{frame.lineno}")
            tracemalloc.stop()
            for task in tasks:
                task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    asyncio.run(storm(args.symbols, args.seconds))


if __name__ == "__main__":
    main()
