"""The hot-path cost of metrics: the full path with metrics on vs off.

The same path as ``bench_fullpath.py`` (Feed → ``_deliver`` → ``_dispatch``
→ ``Stream._put`` → one counting sync callback), but each run is timed as a
whole (one ``perf_counter_ns`` pair around every frame of the case, no
per-frame timer), so the difference — a bit test per frame and per stream
event, plus one latency sample in 16 — is not drowned in timer noise. Runs
alternate on, off, on, off... after ``gc.freeze()``; the figure is the
median of the paired differences (on - off), per frame and per delivered
event, with the medians of each side beside it. Run::

    .venv/bin/python bench/bench_metrics.py [--repeat 21] [--only binance]

On a loaded machine the spread of whole runs (several µs per frame) is far
wider than the cost being measured, so ``--parts`` times the added
statements themselves on the real objects (``timeit``, best of 7 — the
figure least disturbed by other processes): the per-frame bit test in
``Feed.on_frame``, the per-event one in ``Stream._put``, and one latency
sample on each side, and sums them into the cost per message (one event
per frame, one sample in ``sample_every``)::

    .venv/bin/python bench/bench_metrics.py --parts
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fullpath import (  # type: ignore[import-not-found]
    Case,
    binance_recording,
    full_path,
    generated,
    kraken_recording,
)

from wsmux._pipeline import Feed, FetchSnapshot
from wsmux.exchanges import get as get_adapter
from wsmux.multiplexer import Multiplexer
from wsmux.stream import Stream

__all__ = ["main", "timed_run"]


def timed_run(case: Case, metrics: bool) -> Callable[[], tuple[int, int]]:
    """A function running ``case`` once; returns (ns for all frames, callbacks)."""

    def run() -> tuple[int, int]:
        feed, count = full_path(case, metrics)
        stamps = case.recv_ns or [time.time_ns()] * len(case.frames)
        on_frame = feed.on_frame
        t0 = time.perf_counter_ns()
        for frame, recv_ns in zip(case.frames, stamps, strict=True):
            on_frame(frame, recv_ns)
            if feed.actions:
                for action in feed.take_actions():
                    if isinstance(action, FetchSnapshot):
                        feed.on_snapshot_body(action.symbol, case.rest(action), recv_ns, action.channel)
        return time.perf_counter_ns() - t0, count[0]

    return run


def compare(case: Case, repeat: int) -> dict[str, float]:
    on, off = timed_run(case, True), timed_run(case, False)
    on()
    off()
    ons: list[int] = []
    offs: list[int] = []
    events = 0
    gc.collect()
    gc.freeze()
    try:
        for i in range(repeat):
            first, second = (on, off) if i % 2 == 0 else (off, on)
            a, events = first()
            b, _ = second()
            ons.append(a if first is on else b)
            offs.append(b if first is on else a)
    finally:
        gc.unfreeze()
    frames = len(case.frames)
    diffs = [a - b for a, b in zip(ons, offs, strict=True)]
    return {
        "frames": frames,
        "events": events,
        "on_us_per_frame": statistics.median(ons) / frames / 1e3,
        "off_us_per_frame": statistics.median(offs) / frames / 1e3,
        "cost_us_per_frame": statistics.median(diffs) / frames / 1e3,
        "cost_us_per_event": statistics.median(diffs) / max(1, events) / 1e3,
    }


def parts() -> dict[str, float]:
    """ns of each added statement (best of 7 timeit runs of 200k), minus the empty loop."""
    import timeit

    from wsmux.metrics import VenueLatency
    from wsmux.model import Trade

    mux = Multiplexer()
    assert mux.metrics is not None
    latency: VenueLatency = mux.metrics.venue("binance").latency
    stream = Stream((), name="parts", clock_ns=time.time_ns)
    stream.latency = mux.metrics.stream_histogram("parts")
    now = time.time_ns()
    trade = Trade("binance", "BTC-USDT", 1.0, 1.0, None, "1", now - 2_000_000, now)
    feed = Feed(get_adapter("binance")(), mux._deliver)
    mux._wire_feed(feed)
    env = {
        "feed": feed,
        "stats": feed.stats,
        "stream": stream,
        "events": [trade],
        "ev": trade,
        "now": now,
        "sample": latency.sample,
        "cbs": [len],
    }
    n = 200_000

    def best(stmt: str) -> float:
        return min(timeit.repeat(stmt, globals=env, number=n, repeat=7)) / n * 1e9

    empty = best("pass")
    return {
        "feed_bit_test": best("if not stats.frames & feed.sample_mask: pass") - empty,
        "feed_sample": best("sample(events, now)") - empty,
        "stream_bit_test": best("if not stats.frames & stream._sample_mask and cbs: pass") - empty,
        "stream_sample": best("stream._sample(ev)") - empty,
        "sample_every": float(mux.metrics.sample_every),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--only", action="append", default=None)
    parser.add_argument("--parts", action="store_true", help="time the added statements themselves")
    args = parser.parse_args(argv)
    if args.parts:
        p = parts()
        every = p["sample_every"]
        per_message = p["feed_bit_test"] + p["stream_bit_test"] + (p["feed_sample"] + p["stream_sample"]) / every
        for key, value in p.items():
            if key != "sample_every":
                print(f"{key:<18} {value:7.1f} ns")
        print(f"per message (1 event per frame, 1 stream, sample 1 in {every:.0f}): {per_message / 1e3:.3f} µs")
        return 0
    builders: list[Callable[[], Case | None]] = [
        lambda: binance_recording(False),
        lambda: kraken_recording(False, True),
        lambda: generated("binance", args.steps),
        lambda: generated("okx", args.steps),
        lambda: generated("bybit", args.steps),
    ]
    for build in builders:
        case = build()
        if case is None or (args.only and not any(case.name.startswith(o) for o in args.only)):
            continue
        r = compare(case, args.repeat)
        print(
            f"{case.name:<46} {r['frames']:>6} fr {r['events']:>6} ev  on {r['on_us_per_frame']:6.2f}  "
            f"off {r['off_us_per_frame']:6.2f} µs/frame  metrics cost {r['cost_us_per_frame']:+.3f} µs/frame "
            f"{r['cost_us_per_event']:+.3f} µs/event",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
