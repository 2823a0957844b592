"""Sinks and sources on loopback: real redis-server and nats-server (JetStream).

Per engine, three figures:

* ``publish`` — events/s one process writes (encode + batched write, the
  engine acknowledging every batch), from a mix of trades and 10-level book
  updates, JSON envelopes;
* ``end-to-end`` — a sink writing and a source (consumer group / durable
  consumer) reading the same events through a Stream with a callback, both
  in this one process (so they share one core: a lower bound for separate
  processes), exact count checked;
* ``worker->consumer`` — the same with the publisher in its own process
  (this process only consumes), from the first event received to the last;
* ``latency`` — two processes, at a paced rate, receive time (the event's
  ``recv_ns``, stamped when the publisher made it) to the consumer's
  callback: p50/p99;
* ``decode`` (first, no engine) — µs per event to decode messages of 1,000
  envelopes of the same mix (``decode_message``: parse, envelope, event),
  JSON and MessagePack, the best of repeated runs (``--decode-only``: only this).

Throughput is given by wall clock and per CPU second of this process (the
second is steadier on a loaded machine; the engine's own CPU is not in it).
The servers are started on free ports in temporary directories (skipped
when the binary is absent). Run::

    .venv/bin/python bench/bench_sinks.py [--events 200000] [--engines redis,nats]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import percentiles

from wsmux import trades
from wsmux.model import BookUpdate, Event, Side, Trade
from wsmux.sinks import (
    EventId,
    NatsSink,
    NatsSource,
    RedisStreamSink,
    RedisStreamSource,
    Sink,
    Source,
    decode_message,
    message_encoder,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "scale"))
from enginekit import EngineProcess, nats_process, redis_process

__all__ = ["main"]

SYMBOL = "BTC-USDT"
BATCH = 1000


def make_events(n: int, start: int = 0) -> list[Event]:
    levels = tuple((50000.0 - i, 1.0 + i) for i in range(5))
    out: list[Event] = []
    for i in range(start, start + n):
        now = time.time_ns()
        if i % 2:
            out.append(Trade("binance", SYMBOL, 50000.0, 0.1, Side.BUY, str(i), now, now, None))
        else:
            out.append(BookUpdate("binance", SYMBOL, levels, levels, now, now, i))
    return out


def sink_for(kind: str, server: EngineProcess, worker: str) -> Sink:
    if kind == "redis":
        return RedisStreamSink(server.url, worker=worker, batch=BATCH, maxlen=None)
    return NatsSink(server.url, worker=worker, batch=BATCH, max_msgs=None)


def source_for(kind: str, server: EngineProcess) -> Source:
    subs = (trades("binance", SYMBOL), [s for s in _book_subs()])
    if kind == "redis":
        return RedisStreamSource(*subs, url=server.url, batch=BATCH, start="new", maxsize=1_000_000)
    return NatsSource(*subs, servers=server.url, batch=BATCH, start="new", maxsize=1_000_000)


def _book_subs() -> Any:
    from wsmux import book

    return book("binance", SYMBOL)


def decode_cost(fmt: str, repeats: int = 30) -> float:
    """µs per event of ``decode_message`` on one message of ``BATCH``
    envelopes, the best of ``repeats`` runs (the least disturbed by other jobs)."""
    events = make_events(BATCH)
    message = message_encoder(fmt)([(e, EventId("binance", 1, i + 1), i) for i, e in enumerate(events)])  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        decode_message(message)
        best = min(best, time.perf_counter() - t0)
    return best / BATCH * 1e6


async def publish_rate(kind: str, server: EngineProcess, n: int) -> tuple[float, float]:
    """(events/s by wall clock, events/s per CPU second of this process)."""
    sink = sink_for(kind, server, "bench-pub")
    await sink.start()
    events = make_events(n)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, n, BATCH):
        await sink.publish(events[i : i + BATCH])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    await sink.close()
    return n / seconds, n / cpu


async def end_to_end(
    kind: str, server: EngineProcess, n: int, pace: float | None
) -> tuple[float, float, dict[str, float]]:
    """(events/s by wall clock, per CPU second, latency percentiles of receive -> callback)."""
    sink = sink_for(kind, server, "bench-e2e-paced" if pace else "bench-e2e")
    await sink.start()
    source = source_for(kind, server)
    stream = await source.start()
    latencies: list[int] = []
    done = asyncio.Event()

    def on_event(event: Event) -> None:
        latencies.append(time.time_ns() - event.recv_ns)  # type: ignore[attr-defined]
        if len(latencies) == n:
            done.set()

    stream.on(Trade, on_event).on(BookUpdate, on_event)
    t0, c0 = time.perf_counter(), time.process_time()
    if pace is None:
        for i in range(0, n, BATCH):
            await sink.publish(make_events(BATCH, i))
    else:  # paced: a batch of 100 every 100/pace seconds, receive stamped at each batch
        step = 100
        for i in range(0, n, step):
            await sink.publish(make_events(step, i))
            await asyncio.sleep(step / pace)
    try:
        await asyncio.wait_for(done.wait(), 20)
    except TimeoutError:
        raise SystemExit(
            f"{kind}: timed out with {len(latencies)} of {n} events ({source.stats}, {stream.stats})"
        ) from None
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if len(latencies) != n or source.stats.duplicates or source.stats.holes:
        raise SystemExit(f"{kind}: got {len(latencies)} of {n} events ({source.stats})")
    await source.close()
    await sink.close()
    return n / seconds, n / cpu, percentiles(latencies)


async def publisher(kind: str, url: str, n: int, pace: float | None) -> None:
    """The worker side of the two-process run: publish ``n`` events (paced or not)."""
    server = EngineProcess([kind], 0, url)
    sink = sink_for(kind, server, "bench-proc")
    await sink.start()
    step = BATCH if pace is None else 100
    for i in range(0, n, step):
        await sink.publish(make_events(step, i))
        if pace is not None:
            await asyncio.sleep(step / pace)
    await sink.close()


async def two_processes(
    kind: str, server: EngineProcess, n: int, pace: float | None
) -> tuple[float, float, dict[str, float]]:
    """A publishing process and this consuming process: (events/s from the
    first to the last event received, events per consumer CPU second, latency)."""
    source = source_for(kind, server)
    stream = await source.start()
    latencies: list[int] = []
    done = asyncio.Event()
    first: list[float] = []

    def on_event(event: Event) -> None:
        if not first:
            first.append(time.perf_counter())
        latencies.append(time.time_ns() - event.recv_ns)  # type: ignore[attr-defined]
        if len(latencies) == n:
            done.set()

    stream.on(Trade, on_event).on(BookUpdate, on_event)
    c0 = time.process_time()
    argv = [sys.executable, __file__, "--publish", kind, server.url, str(n), str(pace or 0)]
    child = await asyncio.create_subprocess_exec(*argv)
    try:
        await asyncio.wait_for(done.wait(), 120)
    except TimeoutError:
        raise SystemExit(f"{kind}: timed out with {len(latencies)} of {n} events ({source.stats})") from None
    seconds, cpu = time.perf_counter() - first[0], time.process_time() - c0
    await child.wait()
    if source.stats.duplicates or source.stats.holes:
        raise SystemExit(f"{kind}: {source.stats}")
    await source.close()
    return (n - 1) / seconds, n / cpu, percentiles(latencies)


async def bench(kind: str, n: int) -> None:
    make = redis_process if kind == "redis" else nats_process
    with tempfile.TemporaryDirectory() as tmp:
        server = make(Path(tmp))
        if server is None:
            print(f"{kind}: server binary not installed; skipped")
            return
        server.start()
        try:
            rate, per_cpu = await publish_rate(kind, server, n)
            print(
                f"{kind:5s} publish      {rate:10,.0f} events/s  ({per_cpu:10,.0f} per CPU second; "
                f"{n:,} events, batches of {BATCH})"
            )
            rate, per_cpu, _ = await end_to_end(kind, server, n, None)
            print(
                f"{kind:5s} end-to-end   {rate:10,.0f} events/s  ({per_cpu:10,.0f} per CPU second; "
                f"sink -> {kind} -> source callback in one process, exact count)"
            )
            rate, per_cpu, _ = await two_processes(kind, server, n, None)
            print(
                f"{kind:5s} worker->consumer {rate:10,.0f} events/s  ({per_cpu:10,.0f} per consumer CPU second; "
                "publisher and consumer in two processes, exact count)"
            )
            _, _, lat = await two_processes(kind, server, 20_000, 10_000.0)
            print(
                f"{kind:5s} latency      p50 {lat['p50_us']:8,.0f} µs  p99 {lat['p99_us']:8,.0f} µs"
                "  (receive -> consumer callback at 10,000 events/s, two processes)"
            )
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--engines", default="redis,nats")
    parser.add_argument("--decode-only", action="store_true", help="only the decode figures (no engine)")
    parser.add_argument("--publish", nargs=4, metavar=("KIND", "URL", "N", "PACE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish:
        kind, url, n, pace = args.publish
        asyncio.run(publisher(kind, url, int(n), float(pace) or None))
        return
    for fmt in ("json", "msgpack"):
        print(f"decode {fmt:7s} {decode_cost(fmt):6.2f} µs/event  (decode_message, {BATCH} envelopes per message)")
    if args.decode_only:
        return
    for kind in args.engines.split(","):
        asyncio.run(bench(kind, args.events))


if __name__ == "__main__":
    main()
