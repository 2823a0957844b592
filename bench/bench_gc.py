"""What ``gc.freeze()`` after start-up does to the full path's latency tail.

CPython's cyclic garbage collector walks every tracked object of the older
generations when it runs a full collection. A process holding many full-depth
books (tens of thousands of level tuples and floats) pays that walk as a stall
in whichever callback happens to allocate when it triggers. ``gc.freeze()``
moves everything alive at that moment into a permanent generation that
collections skip. This benchmark runs the same generated frames through the
full path (see ``bench_fullpath.py``) with a realistic heap (``--books`` synced
books of 1,000 levels a side kept alive beside it), once as is and once after
``gc.freeze()``, and prints the per-frame time percentiles and the number of
frames slower than 1 ms. Run::

    .venv/bin/python bench/bench_gc.py [--books 50] [--steps 3000]
"""

from __future__ import annotations

import argparse
import gc
import json
from collections.abc import Sequence

from bench_fullpath import generated, wsmux_runner
from benchlib import percentiles

from wsmux.book import BookSync, OrderBook
from wsmux.exchanges.binance import SPOT_RULE
from wsmux.model import BookSnapshot

__all__ = ["main"]


def _heap(books: int) -> list[BookSync]:
    """``books`` synced 1,000-level books: the heap of a busy multiplexer."""
    out = []
    for i in range(books):
        bids = tuple((30000.0 - j * 0.01 - i, 1.0 + j % 7) for j in range(1000))
        asks = tuple((30000.01 + j * 0.01 + i, 1.0 + j % 5) for j in range(1000))
        sync = BookSync(SPOT_RULE, OrderBook("x", f"S{i}-USDT"))
        sync.on_snapshot(BookSnapshot("x", f"S{i}-USDT", bids, asks, None, 0, 1))
        out.append(sync)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", type=int, default=50, help="synced 1,000-level books kept alive")
    parser.add_argument("--steps", type=int, default=3000, help="market steps of the generated Binance stream")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    heap = _heap(args.books)
    case = generated("binance", args.steps)
    run = wsmux_runner(case)
    run()
    results = {}
    for mode in ("gc as is", "after gc.freeze()"):
        gc.collect()
        if mode != "gc as is":
            gc.freeze()
        times, _, _ = run()
        results[mode] = {**percentiles(times), "over_1ms": sum(1 for t in times if t > 1_000_000)}
        gc.unfreeze()
    if args.json:
        print(json.dumps(results))
    else:
        for mode, r in results.items():
            print(
                f"{mode:<20} p50 {r['p50_us']:6.1f} µs  p99 {r['p99_us']:7.1f} µs  p99.9 {r['p999_us']:8.1f} µs  "
                f"max {r['max_us']:8.1f} µs  frames over 1 ms: {r['over_1ms']}"
            )
    del heap
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
