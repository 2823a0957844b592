"""Soak: a seeded schedule of mixed faults against three venues for
``WSMUX_SOAK_SECONDS`` seconds (default 5, the CI version).

Every round picks a venue and a fault (drop, garbage, lost / duplicated /
reordered / crossed updates, a bad checksum, failing REST snapshots, a flood, a
silent peer), injects it and heals that venue to a barrier where its books must
equal the mock's; every few rounds all venues are healed. At the end: the
ledger invariants, the health counters, and the Python heap of the last third
of the run compared with the first third (tracemalloc).

    WSMUX_SOAK_SECONDS=600 pytest -m soak -s tests/chaos/test_chaos_soak.py
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
from collections import Counter

import pytest
from chaoskit import BinanceVenue, FastKraken, Harness, KrakenVenue, OkxVenue, Venue, lean, make_mux, repeat_until

from wsmux import Stale
from wsmux.testing import MemoryMeter, MockBinance, MockKraken, MockOkx

SOAK_SECONDS = float(os.environ.get("WSMUX_SOAK_SECONDS", "5"))


class FastKrakenVenue(KrakenVenue):
    adapter = FastKraken


FAULTS = {
    "binance": ["drop", "garbage", "skip_seq", "duplicate", "reorder", "crossed", "snapshot_500", "flood"],
    "kraken": ["drop", "garbage", "skip_seq", "duplicate", "reorder", "crossed", "bad_checksum", "silent"],
    "okx": ["drop", "garbage", "skip_seq", "duplicate", "reorder", "crossed", "bad_checksum", "flood"],
}


@pytest.mark.soak
async def test_soak_mixed_faults_three_venues() -> None:
    rng = random.Random(20260501)
    async with (
        MockBinance(["BTC-USDT", "ETH-USDT"], seed=141) as binance,
        MockKraken(["BTC-USD"], seed=142) as kraken,
        MockOkx(["BTC-USDT"], seed=143) as okx,
    ):
        lean(binance)
        venues: list[Venue] = [BinanceVenue(binance), FastKrakenVenue(kraken), OkxVenue(okx)]
        by_name = {v.name: v for v in venues}
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            loop = asyncio.get_running_loop()
            applied: Counter[str] = Counter()
            last_garbage: dict[str, float] = {}
            samples: list[tuple[float, int]] = []
            rounds = 0
            with MemoryMeter() as meter:
                start = loop.time()
                end = start + SOAK_SECONDS
                while loop.time() < end:
                    name = rng.choice(list(by_name))
                    venue = by_name[name]
                    fault = rng.choice(FAULTS[name])
                    if fault == "garbage" and loop.time() - last_garbage.get(name, -9.0) < 1.0:
                        fault = "skip_seq"  # stay under the circuit breaker's 20 errors in 10 s
                    await inject(h, venue, fault)
                    if fault == "garbage":
                        last_garbage[name] = loop.time()
                    applied[f"{name}:{fault}"] += 1
                    await h.settle(name)
                    rounds += 1
                    if rounds % 5 == 0:
                        await h.settle_all()
                    for v in venues:
                        v.mock.received.clear()  # the mock's own log of client messages
                    if rounds % 10 == 0:
                        samples.append((loop.time() - start, meter.sample(collect=True)))
                peak = meter.peak
            await h.settle_all()
            h.check()
            third = max(1, len(samples) // 3)
            first = statistics.mean(s for _, s in samples[:third]) if samples else 0.0
            last = statistics.mean(s for _, s in samples[-third:]) if samples else 0.0
            print(
                f"\nsoak {SOAK_SECONDS:.0f} s: {rounds} rounds, {sum(applied.values())} faults "
                f"({len(applied)} kinds), events {h.ledger.n}, trades {dict(h.ledger.trades)}, "
                f"book gaps {dict(h.ledger.book_gaps)}, reconnects "
                f"{sum(c.stats.reconnects for c in mux.connections())}; heap growth: first third "
                f"{first / 1024:.0f} KiB, last third {last / 1024:.0f} KiB, peak {peak / 1024:.0f} KiB "
                f"({len(samples)} samples)"
            )
            print("faults:", dict(sorted(applied.items())))
            assert rounds >= 10 and len(applied) >= 6
            assert samples, "the soak ran too briefly to sample memory"
            assert last <= first + 1024 * 1024, (first, last)  # no growth beyond 1 MiB over the run
            for v in venues:
                for symbol in v.symbols:
                    assert mux.book(v.name, symbol).valid
            await h.stream.aclose()


async def inject(h: Harness, venue: Venue, fault: str) -> None:
    mock = venue.mock
    faults = mock.faults
    if fault == "drop":
        await mock.drop_connections()
    elif fault in ("garbage", "skip_seq", "duplicate", "reorder", "crossed", "bad_checksum"):
        setattr(faults, fault, 1)
    elif fault == "snapshot_500":
        # a lost diff forces a REST resync while the endpoint fails, then it recovers
        faults.snapshot_status = 500
        faults.skip_seq = 1
        before = h.ledger.error_kinds[venue.name, _snapshot_kind()]
        await venue.drain_faults()

        async def more() -> None:  # the diff after the gap asks for a snapshot, which fails
            await venue.publish(1)
            await h.until(lambda e: e is not None)  # read (at least) what it caused

        await repeat_until(lambda: h.ledger.error_kinds[venue.name, _snapshot_kind()] > before, more)
        faults.snapshot_status = 200
    elif fault == "flood":
        await venue.publish(300)
    elif fault == "silent":
        stale = h.ledger.count(Stale, venue.name)
        faults.silent = True
        await h.until(lambda _: h.ledger.count(Stale, venue.name) > stale)
        faults.silent = False


def _snapshot_kind() -> object:
    from wsmux import ErrorKind

    return ErrorKind.SNAPSHOT
