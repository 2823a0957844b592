"""Order-book costs that are not per message: resync (bulk snapshot build),
memory per book, and depth reads.

* **resync** — a Binance REST snapshot of N levels a side arriving for a
  book that buffered diffs: ``Feed.snapshot_body_steps`` end to end (JSON
  parse, bulk build, bridge check, replay of the buffered diffs, the
  BookSnapshot and Resynced events handed to the sink), driven step by step
  as the connection drives it. *total* is the sum of the steps; *max step*
  is the longest single step: how long the event loop is held at once (the
  target: under 5 ms for 5,000 levels). The connection yields to the loop
  between steps, so other venues' frames go through in between.
* **stream resync** — a snapshot the venue's *stream* sends (the full-book
  venues: Coinbase, BitMEX, Gemini v2, Deribit, Kraken Futures; their mock's frame at
  N levels a side), as a live connection handles it (``Feed.step_snapshots``):
  *frame* is ``on_frame`` of the snapshot frame (JSON and the adapter's
  parse, which cannot be split, and the build begun; BitMEX's rows are read
  in steps too, ``RawSnapshot.prepare``), *max step* the longest step after
  it (the last one swaps the book in and hands out the BookSnapshot event of
  the whole book); *at once* is the same frame with stepping off (replays,
  and live before this release).
* **memory** — ``tracemalloc`` bytes retained by one synced book of N levels
  a side, with and without kept level text (checksum venues), and by a book
  after a long run of random diffs (dicts grown by churn; with text, the
  kept text compacted as a live book compacts it).
* **depth(n)** — a read of the best ``n`` levels, µs.

Medians of interleaved repeats with min-max. Run::

    .venv/bin/python bench/bench_book.py [--levels 1000 5000] [--repeat 7] [--stream VENUE ...]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
import timeit
import tracemalloc
from collections.abc import Sequence
from typing import Any

from wsmux import book
from wsmux._pipeline import BuildSnapshot, Feed, FetchSnapshot
from wsmux.book import BookSync, OrderBook
from wsmux.exchanges import get as get_adapter
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.exchanges.kraken import KrakenAdapter
from wsmux.model import BookSnapshot

__all__ = ["main", "memory", "memory_churned", "resync_ms", "resync_steps_ms", "stream_resync_ms"]


def _snapshot_body(levels: int, last_id: int = 1000) -> bytes:
    bids = [[f"{30000 - i * 0.01:.2f}", f"{1 + i % 7}.{i % 1000:03d}00000"] for i in range(levels)]
    asks = [[f"{30000.01 + i * 0.01:.2f}", f"{1 + i % 5}.{i % 1000:03d}00000"] for i in range(levels)]
    return json.dumps({"lastUpdateId": last_id, "bids": bids, "asks": asks}).encode()


def _diff(u: int) -> str:
    return (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT",'
        f'"U":{u},"u":{u},"b":[["29999.99","2.5"]],"a":[["30000.02","0"]]}}}}'
    )


def resync_steps_ms(levels: int) -> list[float]:
    """One resync of a ``levels``-deep Binance book: the duration of each
    step, ms (see the module docstring)."""
    adapter = BinanceSpotAdapter()
    sub = book("binance", "BTC-USDT")[0]
    adapter.connect_url([sub])
    sink: list[Any] = []
    feed = Feed(adapter, sink.append)
    feed.add_book(sub)
    for u in range(995, 1010):  # diffs buffered before the snapshot, some older than it
        feed.on_frame(_diff(u), 1)
    actions = [a for a in feed.take_actions() if isinstance(a, FetchSnapshot)]
    body = _snapshot_body(levels)
    steps = feed.snapshot_body_steps(actions[0].symbol, body, 2)
    durations = []
    clock = time.perf_counter
    while True:
        t0 = clock()
        more = next(steps, False) is None
        durations.append((clock() - t0) * 1e3)
        if not more:
            break
    assert feed.syncs["BTC-USDT"].valid, "the snapshot did not sync"
    return durations


STREAM_VENUES = ("coinbase-advanced", "bitmex", "gemini-v2", "deribit", "kraken-futures")


def stream_snapshot_frame(venue: str, levels: int) -> tuple[Any, bytes | str]:
    """The subscriptions and the snapshot frame of ``venue``'s mock with
    ``levels`` levels a side (its largest frame)."""
    from benchlib import generate_script  # type: ignore[import-not-found]

    script = generate_script(venue, 1, levels=levels)
    frames = [*script.warmup, *script.data]
    return list(script.subscriptions), max(frames, key=len)


def stream_resync_ms(venue: str, subs: Any, frame: bytes | str, step: bool) -> list[float]:
    """ms of ``on_frame(frame)`` then of each build step (see the module docstring)."""
    adapter = get_adapter(venue)()
    adapter.reset()
    adapter.connect_url(subs)
    adapter.subscribe(subs)
    sink: list[Any] = []
    feed = Feed(adapter, sink.append)
    feed.step_snapshots = step
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    clock = time.perf_counter
    gc.collect()  # each run from the same collector state: a full collection lands where the run's own garbage puts it
    t0 = clock()
    feed.on_frame(frame, time.time_ns())
    durations = [(clock() - t0) * 1e3]
    for action in feed.take_actions():
        if isinstance(action, BuildSnapshot):
            while True:
                t0 = clock()
                more = next(action.steps, False) is None
                durations.append((clock() - t0) * 1e3)
                if not more:
                    break
    assert any(sync.valid for sync in feed.syncs.values()), f"{venue}: the snapshot did not sync"
    return durations


def resync_ms(levels: int) -> float:
    """One resync of a ``levels``-deep Binance book, total ms."""
    return sum(resync_steps_ms(levels))


def memory(levels: int, keep_text: bool) -> int:
    """Bytes retained by one synced book with ``levels`` levels a side: the
    body is decoded inside the measured window, so the floats and (with
    ``keep_text``, Kraken's rule at depth 1000: the checksum venues' shape) the
    level text the book keeps are counted."""
    raw = _snapshot_body(levels)
    if keep_text:
        sub = book("kraken", "BTC-USD", depth=1000)[0]
        rule = KrakenAdapter().book_rule_for(sub)
    else:
        rule = BinanceSpotAdapter().book_rule("BTC-USDT")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    sync = BookSync(rule, OrderBook("v", "BTC-USDT", max_depth=rule.depth, keep_text=rule.keep_text))
    body = json.loads(raw)
    bids = [(p, s) for p, s in body["bids"]]
    asks = [(p, s) for p, s in body["asks"]]
    snap = BookSnapshot(
        "v", "BTC-USDT", tuple((float(p), float(s)) for p, s in bids), tuple((float(p), float(s)) for p, s in asks),
        None, 0, 1, None, tuple(bids) if keep_text else None, tuple(asks) if keep_text else None,
    )  # fmt: skip
    sync.on_snapshot(snap)
    del body, snap, bids, asks
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(sync.book) == 2 * min(levels, rule.depth or levels)
    return size


def memory_churned(levels: int, diffs: int, seed: int = 3, keep_text: bool = False) -> tuple[int, int]:
    """Bytes retained by a book of ``levels`` levels a side after ``diffs``
    random diffs over a band 20 % wider than the book (30 % deletes), and
    its level count: CPython's dicts grow under churn and keep their size.
    With ``keep_text``: a Kraken-shaped checksum book (top 10 watched), fed
    the venue's text (two decimals for prices, eight for sizes), so the
    kept text is compacted as the book would compact it live."""
    rng = random.Random(seed)
    band = levels * 6 // 5
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # every number is made inside the measured window, as a feed parses it per message
    ob = OrderBook(keep_text=keep_text, watch_depth=10 if keep_text else None)
    if keep_text:
        ob.apply_snapshot(
            [(f"{30000.0 - i * 0.01:.2f}", f"{1.0 + i % 7:.8f}") for i in range(levels)],
            [(f"{30000.01 + i * 0.01:.2f}", f"{1.0 + i % 5:.8f}") for i in range(levels)],
        )
    else:
        ob.apply_snapshot(
            [(30000.0 - i * 0.01, 1.0 + i % 7) for i in range(levels)],
            [(30000.01 + i * 0.01, 1.0 + i % 5) for i in range(levels)],
        )
    for _ in range(diffs):
        i = rng.randrange(band)
        size = 0.0 if rng.random() < 0.3 else rng.randint(1, 999) / 100
        bid = rng.random() < 0.5
        price = 30000.0 - i * 0.01 if bid else 30000.01 + i * 0.01
        level = [(f"{price:.2f}", f"{size:.8f}") if keep_text else (price, size)]
        if bid:
            ob.apply(level, ())
        else:
            ob.apply((), level)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return size, len(ob)


def depth_us(levels: int, n: int) -> float:
    body = json.loads(_snapshot_body(levels))
    ob = OrderBook()
    ob.apply_snapshot(body["bids"], body["asks"])
    number = 2000
    return min(timeit.repeat(lambda: ob.depth(n), number=number, repeat=5)) / number * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[1000, 5000], help="levels per side")
    parser.add_argument("--repeat", type=int, default=7, help="repeats (median reported)")
    parser.add_argument(
        "--stream", nargs="*", default=list(STREAM_VENUES), help="stream-snapshot venues (none: skip them)"
    )
    args = parser.parse_args(argv)
    runs: dict[int, list[list[float]]] = {levels: [] for levels in args.levels}
    for _ in range(args.repeat):  # interleaved
        for levels in args.levels:
            runs[levels].append(resync_steps_ms(levels))
    for levels, steps in runs.items():
        totals = [sum(run) for run in steps]
        longest = [max(run) for run in steps]
        print(
            f"resync {levels:>5} levels/side: total {statistics.median(totals):6.2f} ms "
            f"[{min(totals):.2f}-{max(totals):.2f}] in {len(steps[0])} steps; "
            f"max step (loop held at once) {statistics.median(longest):5.2f} ms "
            f"[{min(longest):.2f}-{max(longest):.2f}]"
        )
    frames = {(venue, levels): stream_snapshot_frame(venue, levels) for venue in args.stream for levels in args.levels}
    stream_runs: dict[tuple[str, int, bool], list[list[float]]] = {}
    for _ in range(args.repeat):  # interleaved
        for (venue, levels), (subs, frame) in frames.items():
            for step in (True, False):
                stream_runs.setdefault((venue, levels, step), []).append(stream_resync_ms(venue, subs, frame, step))
    for (venue, levels), (_, frame) in frames.items():
        stepped = stream_runs[venue, levels, True]
        at_once = [sum(run) for run in stream_runs[venue, levels, False]]
        held = [run[0] for run in stepped]
        longest = [max(run[1:], default=0.0) for run in stepped]
        print(
            f"stream resync {venue:<17} {levels:>5} levels/side ({len(frame) / 1e3:.0f} kB): "
            f"frame {statistics.median(held):5.2f} ms [{min(held):.2f}-{max(held):.2f}], "
            f"then {len(stepped[0]) - 1} steps, max step {statistics.median(longest):5.2f} ms "
            f"[{min(longest):.2f}-{max(longest):.2f}]; at once {statistics.median(at_once):5.2f} ms "
            f"[{min(at_once):.2f}-{max(at_once):.2f}]"
        )
    for levels in (1000,):
        print(f"memory {levels} levels/side, no text: {memory(levels, False) / 1024:.0f} KiB per book")
    for levels in (400, 1000):
        print(f"memory {levels} levels/side, with kept text: {memory(levels, True) / 1024:.0f} KiB per book")
    for keep_text in (False, True):
        churned, count = memory_churned(1000, 100_000, keep_text=keep_text)
        what = "with kept text" if keep_text else "no text"
        print(f"memory 1000 levels/side after 100,000 random diffs, {what}: {churned / 1024:.0f} KiB, {count} levels")
    for n in (10, 25, 1000):
        print(f"depth({n}) of a 1000-level book: {depth_us(1000, n):.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
