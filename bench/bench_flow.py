"""µs per input event of the book/order-flow, cross-venue and pattern
operators and of the online statistics (``wsmux.analytics``).

Events come from the seeded mock market (:class:`wsmux.testing.Market`, 50
levels a side, one to four level changes per step, a trade on a quarter of
the steps): ``BookSnapshot`` then ``BookUpdate`` level diffs and ``Trade``.
Each case is a plain loop calling ``update`` on pre-built events; the figure
is the loop time divided by the number of inputs (call and loop included;
the empty loop is printed as the floor).

A book-fed operator either keeps its own book (the default; applying each
diff to it is part of its cost — see the "own OrderBook only" line) or
reads a live book (``book=``) that the multiplexer has already updated. The
"live" lines run the book update and the operator in the same loop; their
third column subtracts the "live OrderBook only" line: the operator's own
cost on a live stream. Rounds are interleaved; medians with the min-max.
Run::

    .venv/bin/python bench/bench_flow.py [--rounds 5] [--steps 40000]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence

from wsmux.analytics import (
    EWMA,
    BookImbalance,
    CrossVenueSpread,
    FleetingWalls,
    HiddenLiquidity,
    LeadLag,
    MidVolatility,
    Operator,
    OrderFlowImbalance,
    QuantileSketch,
    QuoteStuffing,
    RealizedVolatility,
    ReturnCorrelation,
    RollingMinMax,
    RollingWindow,
    SpreadDepth,
    WeightedMid,
)
from wsmux.book import OrderBook
from wsmux.model import BookSnapshot, BookUpdate, Event, Integrity, Trade
from wsmux.testing import Market

__all__ = ["main"]

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
SEC = 1_000_000_000


def market_events(steps: int, venue: str = "v", seed: int = 1) -> list[Event]:
    market = Market(seed, levels=50, tick="0.5", lot="0.001")
    t = T0
    bids, asks = market.depth()
    out: list[Event] = [BookSnapshot(venue, "S", bids, asks, t, t, integrity=Integrity.SEQUENCE)]
    for _ in range(steps):
        t += market.rng.randint(1, 40) * MS
        change = market.step()
        if change.trade is not None:
            tr = change.trade
            out.append(Trade(venue, "S", market.price(tr.price), market.size(tr.size), tr.side, None, t, t))
        if change.bids or change.asks:
            out.append(
                BookUpdate(
                    venue,
                    "S",
                    tuple((market.price(p), market.size(s)) for p, s in change.bids),
                    tuple((market.price(p), market.size(s)) for p, s in change.asks),
                    t,
                    t,
                )
            )
    return out


def interleave(*streams: list[Event]) -> list[Event]:
    merged = [e for s in streams for e in s]
    merged.sort(key=lambda e: e.ts)  # type: ignore[attr-defined]
    return merged


def run_loop(op: Operator, events: Sequence[Event]) -> float:
    update = op.update
    start = time.perf_counter()
    for e in events:
        update(e)
    return time.perf_counter() - start


def run_live(make: Callable[[OrderBook], Operator] | None, events: Sequence[Event]) -> float:
    """Apply each book event to a live book, then (optionally) feed the operator reading it."""
    book = OrderBook("v", "S")
    book.valid = True
    op = make(book) if make is not None else None
    update = op.update if op is not None else None
    snapshot, apply = book.apply_snapshot, book.apply_update
    start = time.perf_counter()
    for e in events:
        cls = type(e)
        if cls is BookUpdate:
            apply(e.bids, e.asks)  # type: ignore[attr-defined]
        elif cls is BookSnapshot:
            snapshot(e.bids, e.asks)  # type: ignore[attr-defined]
        if update is not None:
            update(e)
    return time.perf_counter() - start


def run_own_book(events: Sequence[Event]) -> float:
    book = OrderBook("v", "S")
    start = time.perf_counter()
    for e in events:
        cls = type(e)
        if cls is BookUpdate:
            book.apply_update(e.bids, e.asks)  # type: ignore[attr-defined]
        elif cls is BookSnapshot:
            book.apply_snapshot(e.bids, e.asks)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def run_empty(events: Sequence[Event]) -> float:
    def update(e: Event) -> tuple[()]:
        return ()

    start = time.perf_counter()
    for e in events:
        update(e)
    return time.perf_counter() - start


def run_stat(add: Callable[..., object], args: Sequence[tuple[float, int]], two: bool) -> float:
    start = time.perf_counter()
    if two:
        for x, t in args:
            add(x, t)
    else:
        for x, _ in args:
            add(x)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40_000, help="mock market steps per venue")
    args = parser.parse_args(argv)
    events = market_events(args.steps)
    a = market_events(args.steps // 2, "a", seed=2)
    b = market_events(args.steps // 2, "b", seed=3)
    c = market_events(args.steps // 2, "c", seed=4)
    three = interleave(a, b, c)
    two = interleave(a, b)
    rng = random.Random(5)
    samples = [(100.0 * math.exp(rng.gauss(0, 0.01)), T0 + i * 10 * MS) for i in range(len(events))]
    n, n3, n2, ns = len(events), len(three), len(two), len(samples)
    fees = {"a": 10.0, "b": 2.0, "c": 5.0}

    own: dict[str, tuple[Callable[[], float], int]] = {
        "floor: empty loop + call": (lambda: run_empty(events), n),
        "own OrderBook only (apply each diff)": (lambda: run_own_book(events), n),
        "OrderFlowImbalance(1, interval 1s)": (lambda: run_loop(OrderFlowImbalance(interval_ns=SEC), events), n),
        "OrderFlowImbalance(5, events 100)": (lambda: run_loop(OrderFlowImbalance(5, events=100), events), n),
        "BookImbalance(1)": (lambda: run_loop(BookImbalance(1), events), n),
        "BookImbalance(5)": (lambda: run_loop(BookImbalance(5), events), n),
        "WeightedMid": (lambda: run_loop(WeightedMid(), events), n),
        "SpreadDepth(1s, 5)": (lambda: run_loop(SpreadDepth(SEC, 5), events), n),
        "MidVolatility(1s, 60)": (lambda: run_loop(MidVolatility(SEC, 60), events), n),
        "QuoteStuffing(1s, 200)": (lambda: run_loop(QuoteStuffing(), events), n),
        "FleetingWalls(tick 0.5)": (lambda: run_loop(FleetingWalls(0.5), events), n),
        "HiddenLiquidity": (lambda: run_loop(HiddenLiquidity(), events), n),
        "CrossVenueSpread(3 venues)": (
            lambda: run_loop(CrossVenueSpread("S", "abc", fees_bps=fees, max_age_ns=SEC), three),
            n3,
        ),
        "ReturnCorrelation(1s, 60)": (
            lambda: run_loop(ReturnCorrelation("S", ("a", "b"), interval_ns=SEC, window=60), two),
            n2,
        ),
        "LeadLag(1s, 120, lags ±5)": (
            lambda: run_loop(LeadLag("S", ("a", "b"), interval_ns=SEC, window=120, max_lag=5), two),
            n2,
        ),
        "stats: EWMA.add": (lambda: run_stat(EWMA(SEC).add, samples, True), ns),
        "stats: RollingWindow(size 1000).add": (lambda: run_stat(RollingWindow(size=1000).add, samples, False), ns),
        "stats: RollingWindow(span 10s).add": (
            lambda: run_stat(RollingWindow(span_ns=10 * SEC).add, samples, True),
            ns,
        ),
        "stats: RollingMinMax(size 1000).add": (lambda: run_stat(RollingMinMax(size=1000).add, samples, False), ns),
        "stats: QuantileSketch(1%).add": (lambda: run_stat(QuantileSketch(0.01).add, samples, False), ns),
        "stats: RealizedVolatility(1s, 60).add": (lambda: run_stat(RealizedVolatility(SEC, 60).add, samples, True), ns),
    }
    live: dict[str, Callable[[OrderBook], Operator] | None] = {
        "live OrderBook only": None,
        "live + OrderFlowImbalance(1, 1s)": lambda bk: OrderFlowImbalance(interval_ns=SEC, book=bk),
        "live + BookImbalance(1)": lambda bk: BookImbalance(1, book=bk),
        "live + BookImbalance(5)": lambda bk: BookImbalance(5, book=bk),
        "live + WeightedMid": lambda bk: WeightedMid(book=bk),
        "live + MidVolatility(1s, 60)": lambda bk: MidVolatility(SEC, 60, book=bk),
    }
    results: dict[str, list[float]] = {name: [] for name in (*own, *live)}
    for _ in range(args.rounds):
        for name, (fn, count) in own.items():
            results[name].append(fn() / count * 1e6)
        for name, make in live.items():
            results[name].append(run_live(make, events) / n * 1e6)
    width = max(map(len, results))
    base = statistics.median(results["live OrderBook only"])
    print(
        f"µs per input event, median of {args.rounds} interleaved rounds (min-max); "
        f"{n:,} events ({args.steps:,} market steps), {n3:,} on three venues"
    )
    for name, values in results.items():
        med = statistics.median(values)
        extra = f"  operator alone ≈ {med - base:.3f}" if name.startswith("live +") else ""
        print(f"{name:<{width}}  {med:6.3f}  ({min(values):.3f}-{max(values):.3f}){extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
