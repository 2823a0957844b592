"""Memory across resync storms (issue 10, item 16).

Finding (tracemalloc, 300 Binance books on the mock, the real REST budget): after a
mass disconnect every book asks for a REST snapshot at once; at 50 weight per
snapshot and 6,000 weight a minute the last of 300 books waits ~150 s, and each
waiting book keeps *every* diff it receives in its pre-snapshot buffer
(``BookSync._buffer``, up to ``SyncRule.max_buffer`` = 10,000 per book, no total
bound): 26,000 buffered BookUpdates (+20 MiB of heap, 98 -> 212 MB RSS under
tracemalloc) 40 s into the storm, growing linearly until the queue drains. The
heap returns once the books resync, RSS does not (freed small objects leave
pymalloc arenas fragmented): the steps of the soak. Stream buffers, the arbiter
and the dedup memory did not show up. The fix lies in the hot path (see
``test_buffered_diffs_are_bounded_while_snapshots_queue``). To see it:
``python bench/storm_memory.py --symbols 300 --seconds 40``.

* the soak: storms again and again (``WSMUX_SOAK_SECONDS``, default 4 s); the heap
  after each healed storm must plateau (second half's growth vs the first's);
* a test pins the bound on pre-snapshot buffering while requests queue (was unbounded).
"""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
from typing import ClassVar

import attrs
import pytest
from chaoskit import FAST, lean

from wsmux import Multiplexer, Stream, book
from wsmux.adapter import Limits
from wsmux.book import PRE_REQUEST_BUFFER
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.testing import MockBinance

SOAK_SECONDS = float(os.environ.get("WSMUX_SOAK_SECONDS", "4"))
WAIT = 60.0


class StormBinance(BinanceSpotAdapter):
    """Binance spot with room for storms of reconnects (the mock has no connection limit)."""

    limits: ClassVar[Limits] = attrs.evolve(
        BinanceSpotAdapter.limits, rest_weight_per_minute=10_000_000, connections_per_window=100_000
    )


class QueuedRestBinance(BinanceSpotAdapter):
    """Binance spot whose REST budget (2,500 weight a minute, 50 per snapshot) lets 50
    snapshots go at once, then one every 1.2 s: a storm's snapshots queue."""

    limits: ClassVar[Limits] = attrs.evolve(
        BinanceSpotAdapter.limits, rest_weight_per_minute=2_500, connections_per_window=100_000
    )


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _drain(stream: Stream) -> None:
    async for _ in stream:
        pass


async def _until_synced(mux: Multiplexer, mock: MockBinance, symbols: list[str]) -> None:
    """Publish until every book is valid (each publish is a diff per book)."""
    async with asyncio.timeout(WAIT):
        while True:
            syncs = [s for c in mux.connections() for s in c.feed.syncs.values()]
            if len(syncs) == len(symbols) and all(s.valid for s in syncs):
                return
            await mock.publish(1)
            await asyncio.sleep(0.005)


@pytest.mark.soak
async def test_soak_resync_storms_heap_plateaus() -> None:
    symbols = [f"S{i:02d}-USDT" for i in range(24)]
    async with MockBinance(symbols, seed=160, levels=20) as mock:
        lean(mock)
        async with Multiplexer(
            endpoints={"binance": mock.endpoint}, adapters={"binance": StormBinance}, backoff=FAST
        ) as mux:
            stream = mux.subscribe(book("binance", *symbols), maxsize=10_000)
            reader = asyncio.create_task(_drain(stream))
            await _until_synced(mux, mock, symbols)
            loop = asyncio.get_running_loop()
            started = tracemalloc.is_tracing()
            if not started:
                tracemalloc.start(1)
            try:
                gc.collect()
                base = tracemalloc.get_traced_memory()[0]
                heap: list[int] = []
                rss: list[float] = [_rss_mb()]
                end = loop.time() + SOAK_SECONDS
                while loop.time() < end or len(heap) < 4:
                    await mock.drop_connections()  # a mass disconnect: every book resyncs at once
                    for _ in range(5):
                        await mock.publish(2)  # diffs while reconnecting: buffered, then bridged
                    await _until_synced(mux, mock, symbols)
                    gc.collect()
                    heap.append(tracemalloc.get_traced_memory()[0] - base)
                    rss.append(_rss_mb())
            finally:
                if not started:
                    tracemalloc.stop()
            steps = (len(heap) - 1) // 2  # as many storms in each half
            first, second = heap[steps] - heap[0], heap[-1] - heap[-1 - steps]
            print(
                f"\n{len(heap)} storms; heap after each (KiB): {[h // 1024 for h in heap]}; "
                f"RSS MB start {rss[0]:.1f} peak {max(rss):.1f} end {rss[-1]:.1f}"
            )
            # a plateau: the second half grows at most half as much as the first (a
            # steady leak grows both alike), with 256 KiB of slack for noise
            assert second <= max(first, 0) / 2 + 256 * 1024, (first, second)
            reader.cancel()
            await stream.aclose()


async def test_buffered_diffs_are_bounded_while_snapshots_queue() -> None:
    symbols = [f"S{i:02d}-USDT" for i in range(40)]
    async with MockBinance(symbols, seed=161, levels=20) as mock:
        lean(mock)
        async with Multiplexer(
            endpoints={"binance": mock.endpoint}, adapters={"binance": QueuedRestBinance}, backoff=FAST
        ) as mux:
            stream = mux.subscribe(book("binance", *symbols), maxsize=10_000)
            reader = asyncio.create_task(_drain(stream))
            await _until_synced(mux, mock, symbols)  # 40 snapshots of the 50-snapshot burst
            await mock.drop_connections()
            async with asyncio.timeout(WAIT):  # reconnected: the books are waiting for snapshots
                while not any(c.state == "open" and c.feed.syncs for c in mux.connections()):
                    await asyncio.sleep(0.005)
            for _ in range(200):  # 200 diffs per book while ~30 snapshots wait in the REST queue
                await mock.publish(1)
                await asyncio.sleep(0)
            syncs = [s for c in mux.connections() for s in c.feed.syncs.values()]
            # queued: the REST request not sent yet; in flight: sent, the answer awaited
            waiting = [len(s._buffer) for s in syncs if not s.valid and not s._requested]
            in_flight = [(len(s._buffer), s.rule.max_buffer) for s in syncs if not s.valid and s._requested]
            reader.cancel()
            await stream.aclose()
    assert waiting, "no book was waiting: the storm did not queue snapshots"
    # a bound tied to one REST round trip (a few diffs), not to the length of the queue
    assert max(waiting) <= PRE_REQUEST_BUFFER, f"{len(waiting)} waiting books buffer up to {max(waiting)} diffs each"
    # a book whose request is on the wire keeps what arrives meanwhile (the answer may need it), within its rule
    assert all(n <= limit for n, limit in in_flight), in_flight
