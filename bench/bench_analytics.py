"""µs per input event of each analytics operator (``wsmux.analytics``).

Each operator is fed the same pre-built events (a seeded random walk: trades
two a second on a 0.01 tick, 10 % without a side; for the classifier a quote
or a one-level book update before each trade) by a plain loop calling
``update``; the figure is the loop time divided by the number of inputs, so
it includes the call and the loop (the empty loop is printed as the floor).
Rounds are interleaved across operators; the median of the rounds is
printed, with the min-max. ``attach`` adds the path through a source
Stream's callback into the output Stream. Run::

    .venv/bin/python bench/bench_analytics.py [--rounds 7] [--n 50000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from wsmux.analytics import (
    DollarBars,
    ExactSum,
    Operator,
    RollingVwap,
    SessionVwap,
    TickBars,
    TimeBars,
    TradeClassifier,
    VolumeBars,
    VolumeProfile,
    attach,
)
from wsmux.model import BookSnapshot, BookUpdate, Event, Quote, Side, Trade
from wsmux.stream import Overflow, Stream

__all__ = ["main"]

T0 = 1_700_000_000_000_000_000


def make_trades(n: int, seed: int = 1) -> list[Trade]:
    rng = random.Random(seed)
    ticks, ts, out = 3_000_000, T0, []
    for i in range(n):
        ts += int(rng.expovariate(2e-9))
        ticks = max(1, ticks + rng.choice((-1, 0, 0, 1)))
        side = None if rng.random() < 0.1 else (Side.BUY if rng.random() < 0.5 else Side.SELL)
        size = float(f"{rng.randint(1, 100_000) / 100_000:.5f}")
        out.append(Trade("v", "S", float(f"{ticks / 100:.2f}"), size, side, str(i), ts, ts + 1))
    return out


def with_quotes(trades: list[Trade]) -> list[Event]:
    out: list[Event] = []
    for t in trades:
        out.append(Quote("v", "S", t.price - 0.01, 1.0, t.price + 0.01, 1.0, t.ts, t.recv_ns))
        out.append(t)
    return out


def with_book(trades: list[Trade]) -> list[Event]:
    first = trades[0].price
    out: list[Event] = [BookSnapshot("v", "S", ((first - 0.01, 1.0),), ((first + 0.01, 1.0),), T0, T0)]
    for i, t in enumerate(trades):
        level = ((t.price - 0.01, 1.0 + i % 3),) if i % 2 else ()
        asks = () if i % 2 else ((t.price + 0.01, 1.0 + i % 3),)
        out.append(BookUpdate("v", "S", level, asks, t.ts, t.recv_ns))
        out.append(t)
    return out


def timed(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def run_loop(op: Operator, events: Sequence[Event]) -> float:
    return timed(op.update, events)


def run_attach(op: Operator, events: Sequence[Event]) -> float:
    source = Stream((), name="bench-src")
    out = attach(source, op, overflow=Overflow.DROP_OLDEST, maxsize=10_000_000)
    out.on(Event, lambda e: None)  # callback-only consumer: outputs are not buffered
    put = source._put
    start = time.perf_counter()
    for e in events:
        put(e)
    return time.perf_counter() - start


def run_exact(values: Sequence[float]) -> float:
    return timed(ExactSum().add, values)


def run_empty(events: Sequence[Event]) -> float:
    return timed(lambda e: (), events)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=50_000, help="trades per round")
    args = parser.parse_args(argv)
    trades = make_trades(args.n)
    quoted = with_quotes(trades)
    booked = with_book(trades)
    sizes = [t.size for t in trades]
    cases: dict[str, tuple[Callable[[], float], int]] = {
        "floor: empty loop + call": (lambda: run_empty(trades), len(trades)),
        "ExactSum.add": (lambda: run_exact(sizes), len(sizes)),
        "TimeBars(1s)": (lambda: run_loop(TimeBars("1s"), trades), len(trades)),
        "TimeBars(1m)": (lambda: run_loop(TimeBars("1m"), trades), len(trades)),
        "TickBars(100)": (lambda: run_loop(TickBars(100), trades), len(trades)),
        "VolumeBars(50)": (lambda: run_loop(VolumeBars(50.0), trades), len(trades)),
        "DollarBars(1e6)": (lambda: run_loop(DollarBars(1e6), trades), len(trades)),
        "RollingVwap(1m)": (lambda: run_loop(RollingVwap("1m"), trades), len(trades)),
        "SessionVwap(1d)": (lambda: run_loop(SessionVwap("1d"), trades), len(trades)),
        "VolumeProfile(5m, every 1m)": (lambda: run_loop(VolumeProfile(0.01, "5m", every="1m"), trades), len(trades)),
        "TradeClassifier(quotes+trades)": (lambda: run_loop(TradeClassifier(), quoted), len(quoted)),
        "TradeClassifier(book+trades)": (lambda: run_loop(TradeClassifier(), booked), len(booked)),
        "attach(TimeBars(1s)) via Stream": (lambda: run_attach(TimeBars("1s"), trades), len(trades)),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (fn, count) in cases.items():
            results[name].append(fn() / count * 1e6)
    width = max(map(len, cases))
    print(f"µs per input event, median of {args.rounds} interleaved rounds (min-max), {args.n:,} trades per round")
    for name, values in results.items():
        print(f"{name:<{width}}  {statistics.median(values):6.3f}  ({min(values):.3f}-{max(values):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
