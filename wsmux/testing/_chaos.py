"""Chaos tools: a misbehaving TCP link and a memory meter.

:class:`ChaosProxy` sits between a client and a mock exchange, both on
127.0.0.1, and forwards bytes while injecting what real networks do: latency
(``delay``), a slow link (``rate``), a half-open link that stops forwarding
without closing (:meth:`ChaosProxy.pause`), a cut in the middle of a frame
(:meth:`ChaosProxy.cut`, :meth:`ChaosProxy.cut_after`), a flipped byte
(:meth:`ChaosProxy.corrupt_after`) and refused connections
(``refuse``). It works at the TCP level, below WebSocket framing, so what the
client sees is exactly what a broken network would give it::

    async with MockKraken(["BTC-USD"]) as mock, ChaosProxy.to(mock) as proxy:
        proxy.delay = 0.05
        async with Multiplexer(endpoints={"kraken": proxy.endpoint(mock)}) as mux:
            ...

Everything is bounded: each link holds at most ``max_queued`` chunks of at
most ``max_chunk`` bytes per direction (reading from the sender pauses when
the queue is full, so TCP pushes back), and the proxy only binds and dials
loopback addresses.

:class:`MemoryMeter` wraps :mod:`tracemalloc` to measure the Python heap
growth (current and peak) of a block of code against a baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import attrs

from wsmux.adapter import Endpoint
from wsmux.errors import ConfigError

__all__ = ["ChaosProxy", "MemoryMeter", "ProxyStats"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class _HasEndpoint(Protocol):
    @property
    def port(self) -> int: ...

    @property
    def endpoint(self) -> Endpoint: ...


def _require_loopback(host: str) -> None:
    if host not in _LOOPBACK:
        raise ConfigError(f"ChaosProxy only binds and dials loopback addresses, not {host!r}")


@attrs.define
class ProxyStats:
    """Counters of a :class:`ChaosProxy` (cumulative).

    Attributes:
        links: client connections accepted (and forwarded).
        refused: client connections closed at once because ``refuse`` was set.
        bytes_up: bytes forwarded client → server.
        bytes_down: bytes forwarded server → client.
        cuts: links closed abruptly by :meth:`ChaosProxy.cut` or ``cut_after``.
        corrupted: bytes flipped by ``corrupt_after``.
    """

    links: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    cuts: int = 0
    corrupted: int = 0


class _Link:
    """One proxied connection: the client side, the server side and two pumps."""

    __slots__ = ("client", "server", "tasks")

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class ChaosProxy:
    """A TCP proxy on 127.0.0.1 that injects network faults (see the module docstring).

    Args:
        target_port: the port to forward to (a mock exchange's ``port``).
        target_host: the address to forward to (loopback only).
        host: the address to bind (loopback only); the port is chosen by the OS.
        delay: seconds each server → client chunk is held before it is
            forwarded (latency; throughput is unchanged because chunks are
            pipelined). May be changed at any time.
        rate: server → client bytes per second (a slow link), or None for
            no limit. May be changed at any time.
        max_chunk: bytes read at a time.
        max_queued: chunks held per link and direction before reading pauses.
        strip_compression: remove ``Sec-WebSocket-Extensions`` from each
            client handshake, so no permessage-deflate is negotiated and a
            flipped byte lands in plain frame text (with compression, one
            flipped byte can poison the shared inflate context for good).

    Raises:
        ConfigError: a non-loopback address or a non-positive bound.
    """

    def __init__(
        self,
        target_port: int,
        *,
        target_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        delay: float = 0.0,
        rate: float | None = None,
        max_chunk: int = 16_384,
        max_queued: int = 64,
        strip_compression: bool = False,
    ) -> None:
        _require_loopback(host)
        _require_loopback(target_host)
        if max_chunk <= 0 or max_queued <= 0:
            raise ConfigError("max_chunk and max_queued must be positive")
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.delay = delay
        self.rate = rate
        self.max_chunk = max_chunk
        self.max_queued = max_queued
        self.strip_compression = strip_compression
        self.refuse = False
        """When True, new client connections are accepted and closed at once."""
        self.stats = ProxyStats()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._cut_at: int | None = None
        self._corrupt_at: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def to(cls, mock: _HasEndpoint, **kwargs: Any) -> ChaosProxy:
        """A proxy in front of ``mock`` (anything with a loopback ``port``)."""
        return cls(mock.port, **kwargs)

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host``:0."""
        self._server = await asyncio.start_server(self._accept, self.host, 0)

    async def stop(self) -> None:
        """Stop listening and abort every link."""
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> ChaosProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port clients connect to."""
        assert self._server is not None, "proxy not started"
        return int(self._server.sockets[0].getsockname()[1])

    def endpoint(self, mock: _HasEndpoint) -> Endpoint:
        """``mock.endpoint`` with its WebSocket and REST URLs routed through the proxy."""
        ep = mock.endpoint
        return Endpoint(self._rewrite(ep.url), self._rewrite(ep.rest_url))

    def _rewrite(self, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, f"{self.host}:{self.port}", parts.path, parts.query, parts.fragment))

    # --- faults -------------------------------------------------------------------

    @property
    def open_links(self) -> int:
        """Links currently forwarding."""
        return len(self._links)

    def pause(self) -> None:
        """Stop forwarding in both directions; sockets stay open (a half-open link)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again after :meth:`pause`."""
        self._flowing.set()

    @property
    def paused(self) -> bool:
        return not self._flowing.is_set()

    def cut(self) -> int:
        """Abort every open link now (both sockets reset); returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        self._links.difference_update(links)
        self.stats.cuts += len(links)
        return len(links)

    def cut_after(self, nbytes: int) -> None:
        """Forward ``nbytes`` more server → client bytes, then cut every link
        (one-shot: a frame is usually cut in the middle)."""
        self._cut_at = self.stats.bytes_down + max(0, nbytes)

    def corrupt_after(self, nbytes: int) -> None:
        """Invert the server → client byte that comes ``nbytes`` bytes from now (one-shot)."""
        self._corrupt_at = self.stats.bytes_down + max(0, nbytes)

    # --- plumbing -----------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            self.stats.refused += 1
            writer.transport.abort()
            return
        try:
            s_reader, s_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.stats.links += 1
        link = _Link(writer, s_writer)
        self._links.add(link)
        up: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(self.max_queued)
        down: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(self.max_queued)
        link.tasks = [
            self._spawn(self._read(reader, up, False)),
            self._spawn(self._write(link, s_writer, up, False)),
            self._spawn(self._read(s_reader, down, True)),
            self._spawn(self._write(link, writer, down, True)),
        ]

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _read(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes] | None], downstream: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        first = not downstream
        try:
            while True:
                chunk = await reader.read(self.max_chunk)
                if not chunk:
                    break
                if first:
                    first = False
                    if self.strip_compression:
                        chunk = _strip_extensions(chunk)
                due = loop.time() + (self.delay if downstream else 0.0)
                await queue.put((due, chunk))  # blocks when full: the sender is pushed back
        except (OSError, asyncio.IncompleteReadError):
            pass
        await queue.put(None)

    async def _write(
        self,
        link: _Link,
        writer: asyncio.StreamWriter,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        downstream: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                due, chunk = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                if link not in self._links:
                    return
                if downstream:
                    chunk, cut = self._mangle(chunk)
                    writer.write(chunk)
                    stats.bytes_down += len(chunk)
                    if cut:
                        await writer.drain()
                        self.cut()
                        return
                    rate = self.rate
                    await writer.drain()
                    if rate is not None and rate > 0:
                        await asyncio.sleep(len(chunk) / rate)
                else:
                    writer.write(chunk)
                    stats.bytes_up += len(chunk)
                    await writer.drain()
        except (OSError, ConnectionError):
            pass
        # one side finished: close the other gracefully (EOF), then forget the link
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
        if link in self._links and all(t.done() or t is asyncio.current_task() for t in link.tasks):
            self._links.discard(link)

    def _mangle(self, chunk: bytes) -> tuple[bytes, bool]:
        """Apply one-shot corruption and cuts to a server → client chunk."""
        start = self.stats.bytes_down
        end = start + len(chunk)
        at = self._corrupt_at
        if at is not None and start <= at < end:
            buf = bytearray(chunk)
            buf[at - start] ^= 0xFF
            chunk = bytes(buf)
            self._corrupt_at = None
            self.stats.corrupted += 1
        cut_at = self._cut_at
        if cut_at is not None and cut_at < end:
            self._cut_at = None
            return chunk[: max(0, cut_at - start)], True
        return chunk, False


def _strip_extensions(request: bytes) -> bytes:
    """Drop the ``Sec-WebSocket-Extensions`` header lines of an HTTP upgrade request."""
    head, sep, rest = request.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"sec-websocket-extensions:")]
    return b"\r\n".join(lines) + sep + rest


class MemoryMeter:
    """Python heap growth of a block of code, measured with :mod:`tracemalloc`.

    ::

        with MemoryMeter() as meter:
            ...
            meter.sample()
        print(meter.peak, meter.samples)

    Figures are bytes above the baseline taken on entry (after a garbage
    collection). Tracing starts on entry if it was off, and stops on exit if
    this meter started it. Tracing slows allocation-heavy code 2-4x.

    Attributes:
        baseline: traced bytes on entry.
        samples: growth recorded by each :meth:`sample` call.
    """

    def __init__(self, frames: int = 1) -> None:
        self.frames = frames
        self.baseline = 0
        self.samples: list[int] = []
        self._started = False
        self._peak = 0

    def __enter__(self) -> MemoryMeter:
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
            self._started = True
        gc.collect()
        self.baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return self

    def __exit__(self, *exc: object) -> None:
        self._peak = self.peak
        if self._started:
            tracemalloc.stop()
            self._started = False

    def sample(self, collect: bool = False) -> int:
        """Record and return the current growth (``collect``: gc first)."""
        if collect:
            gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - self.baseline if tracemalloc.is_tracing() else 0
        self.samples.append(growth)
        return growth

    def reset_peak(self) -> None:
        """Start a new peak window (the peak so far is forgotten)."""
        tracemalloc.reset_peak()

    @property
    def peak(self) -> int:
        """Highest growth since entry or the last :meth:`reset_peak` (kept after exit)."""
        if not tracemalloc.is_tracing():
            return self._peak
        return max(0, tracemalloc.get_traced_memory()[1] - self.baseline)
