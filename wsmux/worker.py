"""``wsmux run CONFIG.toml [--shard i/n]``: a long-running publishing worker.

A worker subscribes what its config names, publishes every event into a
sink (Redis Streams or NATS JetStream, :mod:`wsmux.sinks`), optionally
records the raw message log and serves metrics. The config (stdlib
``tomllib``)::

    worker = "eu-1"                    # name: ids, state and heartbeat keys
    snapshot_every = 10.0              # seconds between book snapshots per symbol
    heartbeat_every = 1.0              # seconds between heartbeats
    status_every = 10.0                # seconds between status lines on stdout
    shutdown_timeout = 10.0            # seconds to publish what is left on SIGTERM
    record = "/var/lib/wsmux/log"      # optional: record raw frames there
    metrics_port = 9100                # optional: serve Prometheus metrics (wsmux[prometheus])

    [sink]
    kind = "redis"                     # or "nats"
    url = "redis://127.0.0.1:6379"     # nats://127.0.0.1:4222 for NATS
    prefix = "wsmux"
    format = "json"                    # or "msgpack"
    batch = 1000

    [stream]
    maxsize = 100000
    overflow = "drop_oldest"           # block, drop_oldest, conflate, raise

    [shard]                            # or --shard i/n on the command line
    index = 0                          # this worker's shard, from 0
    count = 2

    [mock]                             # optional: run the built-in mock
    rate = 20.0                        # exchanges in process (no internet)

    [[subscribe]]
    venue = "binance"
    symbols = ["BTC-USDT", "ETH-USDT"]
    channels = ["book", "trades"]
    url = "wss://..."                  # optional endpoint override
    rest_url = "https://..."           # optional

Theory of operation
-------------------
Sharding: the config's venues, sorted by name, go round-robin to ``count``
shards; shard ``index`` runs the venues at positions ``index``,
``index + count``... (stable for a given config on every machine). A shard
publishes as worker ``{worker}-{index}of{count}``.

Start: the sink takes a new epoch for the worker from the engine and reads
the state the previous epoch saved. If that epoch did not shut down cleanly
(SIGKILL, crash, power loss), the worker first publishes, for it, a
``Disconnected`` per venue and a ``Gap`` (reason ``DISCONNECT``) per
subscription: consumers' books of those subscriptions turn invalid. Then it
saves its own state (epoch, subscriptions, ``clean: false``), subscribes,
and publishes. Books resync as the multiplexer syncs them (``BookSnapshot``
then ``Resynced``).

Running: every ``snapshot_every`` seconds each valid book's snapshot and a
``Resynced`` go into the published stream, in order with its updates, so a
consumer that joins late (or lost events) gets a consistent book within that
time. A heartbeat (engine key/entry with the epoch and time) is rewritten
every ``heartbeat_every`` seconds; it stops when the worker dies.

Stop (SIGTERM or SIGINT): the multiplexer closes, everything buffered is
published, then the same end-of-data markers (the books are no longer
maintained), the state with ``clean: true``; the process exits 0. If the
engine does not take all that within ``shutdown_timeout`` seconds, the
worker says how many events are lost and exits 1 (its state stays
``clean: false``, so the next start publishes the markers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import attrs

from wsmux import exchanges
from wsmux._aio import reap
from wsmux.adapter import Endpoint
from wsmux.errors import ConfigError, UnknownVenue
from wsmux.model import Channel
from wsmux.multiplexer import Multiplexer
from wsmux.sinks._base import Sink, disconnect_markers
from wsmux.stream import Overflow, Stream
from wsmux.subscriptions import Subscription

__all__ = ["WorkerConfig", "add_parser", "load_config", "run_from_args", "run_worker", "shard_venues"]


@attrs.frozen
class WorkerConfig:
    """A parsed worker config (see the module docstring)."""

    worker: str
    subscriptions: tuple[Subscription, ...]
    endpoints: dict[str, Endpoint]
    sink: dict[str, Any]
    maxsize: int = 100_000
    overflow: Overflow = Overflow.DROP_OLDEST
    snapshot_every: float = 10.0
    heartbeat_every: float = 1.0
    status_every: float = 10.0
    shutdown_timeout: float = 10.0
    record: str | None = None
    metrics_port: int | None = None
    shard: tuple[int, int] | None = None
    mock: dict[str, Any] | None = None


def _positive(table: dict[str, Any], name: str, default: float) -> float:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with ``0 <= i < n``.

    Raises:
        ConfigError: not of that form.
    """
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must be i/n (e.g. 0/2), not {text!r}") from None
    if not 0 <= index < count:
        raise ConfigError(f"shard index must be in 0..{count - 1}, not {index}")
    return index, count


def load_config(path: str | Path) -> WorkerConfig:
    """Read and check a worker config.

    Raises:
        ConfigError: the file is not TOML or a value is wrong (named).
    """
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from exc
    subs: list[Subscription] = []
    endpoints: dict[str, Endpoint] = {}
    entries = data.get("subscribe", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: needs at least one [[subscribe]] table")
    for entry in entries:
        venue = entry.get("venue")
        symbols = entry.get("symbols", [])
        channels = entry.get("channels", ["book", "trades"])
        if not isinstance(venue, str) or not isinstance(symbols, list) or not symbols:
            raise ConfigError(f'{path}: each [[subscribe]] needs venue = "..." and symbols = [...]: {entry!r}')
        try:
            exchanges.get(venue)
        except UnknownVenue as exc:
            raise ConfigError(f"{path}: {exc}") from None
        for channel in channels:
            for symbol in symbols:
                subs.extend(Subscription.parse(f"{venue}:{channel}:{symbol}"))
        if "url" in entry:
            endpoints[venue] = Endpoint(url=entry["url"], rest_url=entry.get("rest_url"))
    sink = dict(data.get("sink", {}))
    if sink.get("kind") not in ("redis", "nats"):
        raise ConfigError(f'{path}: [sink] kind must be "redis" or "nats", not {sink.get("kind")!r}')
    stream = data.get("stream", {})
    try:
        overflow = Overflow(stream.get("overflow", "drop_oldest"))
    except ValueError:
        raise ConfigError(f"{path}: [stream] overflow must be one of {[o.value for o in Overflow]}") from None
    maxsize = stream.get("maxsize", 100_000)
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize <= 0:
        raise ConfigError(f"{path}: [stream] maxsize must be a positive int, not {maxsize!r}")
    shard = None
    if "shard" in data:
        shard = parse_shard(f"{data['shard'].get('index')}/{data['shard'].get('count')}")
    metrics_port = data.get("metrics_port")
    if metrics_port is not None and (not isinstance(metrics_port, int) or not 0 <= metrics_port < 65536):
        raise ConfigError(f"{path}: metrics_port must be a port number, not {metrics_port!r}")
    worker = data.get("worker", "wsmux")
    if not isinstance(worker, str):
        raise ConfigError(f"{path}: worker must be a name, not {worker!r}")
    mock = data.get("mock")
    return WorkerConfig(
        worker=worker,
        subscriptions=tuple(dict.fromkeys(subs)),
        endpoints=endpoints,
        sink=sink,
        maxsize=maxsize,
        overflow=overflow,
        snapshot_every=_positive(data, "snapshot_every", 10.0),
        heartbeat_every=_positive(data, "heartbeat_every", 1.0),
        status_every=_positive(data, "status_every", 10.0),
        shutdown_timeout=_positive(data, "shutdown_timeout", 10.0),
        record=data.get("record"),
        metrics_port=metrics_port,
        shard=shard,
        mock=dict(mock) if isinstance(mock, dict) else None,
    )


def shard_venues(venues: list[str], index: int, count: int) -> list[str]:
    """The venues of shard ``index`` of ``count``: sorted, round-robin."""
    return [v for i, v in enumerate(sorted(set(venues))) if i % count == index]


def _make_sink(config: WorkerConfig) -> Sink:
    options = {k: v for k, v in config.sink.items() if k not in ("kind", "url")}
    url = config.sink.get("url")
    try:
        if config.sink["kind"] == "redis":
            from wsmux.sinks.redis import RedisStreamSink

            return RedisStreamSink(url or "redis://127.0.0.1:6379", worker=config.worker, **options)
        from wsmux.sinks.nats import NatsSink

        return NatsSink(url or "nats://127.0.0.1:4222", worker=config.worker, **options)
    except TypeError as exc:
        raise ConfigError(f"[sink]: {exc}") from exc


async def run_worker(
    config: WorkerConfig,
    *,
    shard: tuple[int, int] | None = None,
    stop: asyncio.Event | None = None,
    out: TextIO | None = None,
) -> int:
    """Run a worker until ``stop`` is set or SIGTERM/SIGINT arrives; return the exit status."""
    out = out or sys.stdout
    shard = shard or config.shard
    venues = sorted({s.venue for s in config.subscriptions})
    mine = shard_venues(venues, *shard) if shard else venues
    subs = [s for s in config.subscriptions if s.venue in mine]
    label = f" shard {shard[0]}/{shard[1]}" if shard else ""
    if shard:  # each shard is its own worker: own epochs, state and heartbeat
        config = attrs.evolve(config, worker=f"{config.worker}-{shard[0]}of{shard[1]}")
    if not subs:
        out.write(f"wsmux run: worker {config.worker}{label} has no venues (venues: {', '.join(venues)})\n")
        return 0
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        endpoints = dict(config.endpoints)
        if config.mock is not None:
            endpoints.update(await _start_mocks(stack, subs, config.mock))
        sink = _make_sink(config)
        await sink.start()
        previous = sink.previous
        if previous is not None and not previous.get("clean", False):
            await sink.publish(disconnect_markers(previous, time.time_ns()))
            out.write(f"previous epoch {previous.get('epoch')} did not stop cleanly: published end markers\n")
        state: dict[str, Any] = {"epoch": sink.epoch, "subscriptions": [str(s) for s in subs], "clean": False}
        await sink.engine.save_state(config.worker, state)
        mux = Multiplexer(endpoints=endpoints, record=config.record)
        await mux.start()
        try:
            stream = mux.subscribe(
                subs, maxsize=config.maxsize, overflow=config.overflow, name=f"worker-{config.worker}"
            )
            snapshots = _BookSnapshots(mux, stream, subs)
            sink.on_loss = snapshots.publish
            sink.attach(stream)
            _serve_metrics(mux, config.metrics_port, out)
            out.write(
                f"wsmux run: worker {config.worker} epoch {sink.epoch}{label}: {', '.join(mine)} "
                f"({len(subs)} subscriptions) -> {sink.engine.name}\n"
            )
            out.flush()
            tasks = [
                loop.create_task(_every(config.heartbeat_every, lambda: _heartbeat(sink, config))),
                loop.create_task(_every(config.snapshot_every, snapshots.publish)),
                loop.create_task(_every(config.status_every, _Status(sink, stream, snapshots, out).line)),
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()
            for task in tasks:
                await reap(task, errors=False)
        finally:
            await mux.close()
        status = 0
        try:
            async with asyncio.timeout(config.shutdown_timeout):
                await sink.flush()
                await sink.publish(disconnect_markers(state, time.time_ns()))
                await sink.engine.save_state(config.worker, {**state, "clean": True})
        except TimeoutError:
            # the engine is down: what is left is lost; the next start marks this epoch
            status = 1
            out.write(
                f"wsmux run: worker {config.worker}: the {sink.engine.name} engine did not take the last "
                f"{stream.buffered:,} events within {config.shutdown_timeout:g} s; they are lost and the "
                "next start publishes the end markers of this epoch\n"
            )
        await sink.close(flush=False)
        out.write(
            f"wsmux run: worker {config.worker} stopped: {sink.stats.published:,} events published, "
            f"{sink.stats.engine_errors} engine errors, {stream.stats.dropped} dropped\n"
        )
    return status


class _BookSnapshots:
    """Puts each valid book's snapshot (and ``Resynced``) into the published stream."""

    def __init__(self, mux: Multiplexer, stream: Stream, subs: list[Subscription]) -> None:
        self.mux = mux
        self.stream = stream
        self.books = [(s.venue, s.symbol) for s in subs if s.channel is Channel.BOOK]

    def valid(self, venue: str, symbol: str) -> bool:
        try:
            return self.mux.book(venue, symbol).valid
        except Exception:  # not placed yet
            return False

    def publish(self) -> None:
        now = time.time_ns()
        for venue, symbol in self.books:
            if self.valid(venue, symbol):
                view = self.mux.book(venue, symbol)
                book = view.copy()
                self.stream._put(book.snapshot_event(now))
                self.stream._put(book.resynced_event(now))


class _Status:
    """A status line on stdout every ``status_every`` seconds."""

    def __init__(self, sink: Sink, stream: Stream, snapshots: _BookSnapshots, out: TextIO) -> None:
        self.sink = sink
        self.stream = stream
        self.snapshots = snapshots
        self.out = out
        self.last = (time.monotonic(), 0)
        self.started = False

    def line(self) -> None:
        now, published = time.monotonic(), self.sink.stats.published
        then, before = self.last
        self.last = (now, published)
        if not self.started:
            self.started = True
            return  # the first call, at start: nothing to say yet
        valid = sum(1 for v, s in self.snapshots.books if self.snapshots.valid(v, s))
        self.out.write(
            f"{time.strftime('%H:%M:%S')} published {published:,} ({(published - before) / (now - then):,.0f}/s), "
            f"buffered {self.stream.buffered:,}, dropped {self.stream.stats.dropped:,}, "
            f"engine errors {self.sink.stats.engine_errors}, books valid {valid}/{len(self.snapshots.books)}\n"
        )
        self.out.flush()


async def _heartbeat(sink: Sink, config: WorkerConfig) -> None:
    with contextlib.suppress(Exception):  # a missed heartbeat is what a dead engine looks like anyway
        await sink.engine.heartbeat(config.worker, sink.epoch, 3 * config.heartbeat_every)


async def _every(seconds: float, fn: Callable[[], Any]) -> None:
    """Call ``fn`` every ``seconds`` until cancelled — even when the cancel
    landed inside ``fn`` and its engine client swallowed it (redis-py can, in
    a race: redis/redis-py#2028, #2551) or turned it into an error that
    ``fn`` tolerates: the task's pending cancel request is checked after each
    call, else the shutdown that cancelled it would wait for ever."""
    task = asyncio.current_task()
    while True:
        result = fn()
        if asyncio.iscoroutine(result):
            await result
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        await asyncio.sleep(seconds)


def _serve_metrics(mux: Multiplexer, port: int | None, out: TextIO) -> None:
    if port is None:
        return
    server = mux.serve_metrics(port)  # a port in use: ConfigError, exit 2
    out.write(f"metrics: {server.url}\n")


async def _start_mocks(
    stack: contextlib.AsyncExitStack, subs: list[Subscription], mock: dict[str, Any]
) -> dict[str, Endpoint]:
    from wsmux.cli import _load_mock

    endpoints: dict[str, Endpoint] = {}
    for venue in sorted({s.venue for s in subs}):
        mock_cls = _load_mock(venue)
        if mock_cls is None:
            raise ConfigError(f"[mock]: no mock exchange for {venue!r}")
        symbols = sorted({s.symbol for s in subs if s.venue == venue})
        server = mock_cls(symbols, rate=float(mock.get("rate", 20.0)), seed=int(mock.get("seed", 1)))
        await stack.enter_async_context(server)
        server.run()
        endpoints[venue] = server.endpoint
    return endpoints


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to the CLI's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "run", help="run a publishing worker: subscribe what CONFIG.toml names, publish to Redis or NATS"
    )
    parser.add_argument("config", metavar="CONFIG.toml", help="worker config (see docs/deployment)")
    parser.add_argument("--shard", metavar="i/n", help="run shard i of n (venues split round-robin by name)")
    return parser


def run_from_args(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``wsmux run`` from parsed arguments."""
    config = load_config(args.config)
    shard = parse_shard(args.shard) if args.shard else None
    return asyncio.run(run_worker(config, shard=shard, out=out))
