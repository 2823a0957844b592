"""Fairness: does one venue flooding at saturation starve another?

A bench server in another process (``bench_server.py``) floods a Binance
connection as fast as TCP takes it; in the same multiplexer a mock Kraken
(v2) in this process publishes a book update every 10 ms. For every Kraken
book update the callback records *callback time - the mock's own timestamp*
(``event.ts``, stamped with the wall clock by the mock): the time the update waited — in the
socket, for the event loop, in wsmux — before the user saw it. The pull pump
yields to the event loop every 64 frames, so the flooding connection cannot
hold it for long. Printed: the Kraken latency percentiles during the flood,
and without it, for comparison. Run::

    .venv/bin/python bench/bench_fairness.py [--seconds 4] [--steps 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench_e2e import BenchServer
from benchlib import generate_script, percentiles

from wsmux import Multiplexer, book
from wsmux.adapter import Endpoint
from wsmux.model import BookUpdate
from wsmux.testing import MockKraken

__all__ = ["main"]


class WallClockKraken(MockKraken):
    """The Kraken mock stamping its frames with the wall clock (its own clock
    ticks 1 ms a frame from a fixed epoch), so ``callback - event.ts`` is the
    time an update waited before the user saw it."""

    def _tick_ns(self) -> int:
        return time.time_ns()


async def _measure(server: BenchServer | None, script: Any, seconds: float) -> tuple[list[int], int]:
    """Kraken update latencies (ns) while the flood lasted (all of them
    without a flood) and the number of flood events."""
    lat: list[tuple[int, int]] = []  # (callback time, latency)
    flood = [0, 0, 0]  # events, first, last
    async with WallClockKraken(["BTC-USD"], rate=100.0) as kraken:
        endpoints: dict[str, Endpoint] = {"kraken": kraken.endpoint}
        if server is not None:
            endpoints["binance"] = Endpoint(
                url=f"ws://127.0.0.1:{server.port}{script.ws_path}", rest_url=f"http://127.0.0.1:{server.port}"
            )
        async with Multiplexer(endpoints=endpoints) as mux:
            subs = list(book("kraken", "BTC-USD"))
            if server is not None:
                subs += list(script.subscriptions)
            stream = mux.subscribe(*subs, maxsize=1_000_000)

            def on_update(event: BookUpdate) -> None:
                now = time.time_ns()
                if event.venue == "kraken" and event.ts is not None:
                    lat.append((now, now - event.ts))
                elif event.venue != "kraken":
                    flood[0] += 1
                    flood[1] = flood[1] or now
                    flood[2] = now

            stream.on(BookUpdate, on_update)
            await mux.synced("kraken", "BTC-USD", timeout=10)
            kraken.run()
            lat.clear()
            await asyncio.sleep(seconds)
            await stream.aclose()
    if server is None:
        return [d for _, d in lat], 0
    return [d for t, d in lat if flood[1] <= t <= flood[2]], flood[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="how long to measure")
    parser.add_argument("--steps", type=int, default=20000, help="market steps of the flooding Binance stream")
    args = parser.parse_args(argv)
    script = generate_script("binance", args.steps)
    quiet, _ = asyncio.run(_measure(None, script, args.seconds))
    with BenchServer() as server:
        server.load(script)
        server.command(cmd="mode", rate=None, count=len(script.data), wait_rest=True)
        flooded, events = asyncio.run(_measure(server, script, args.seconds))
    for name, samples, note in (("quiet", quiet, ""), ("during a flood", flooded, f" ({events:,} flood events)")):
        p = percentiles(samples)
        print(
            f"kraken book update -> callback, {name:<15}: n={len(samples):5d}  p50 {p['p50_us']:8.1f} µs  "
            f"p99 {p['p99_us']:8.1f} µs  max {p['max_us']:8.1f} µs{note}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
