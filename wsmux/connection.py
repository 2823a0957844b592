"""Connection: the only code that touches sockets.

One :class:`Connection` keeps one WebSocket to one venue open for a set of
subscriptions, and pumps its frames through a :class:`~wsmux._pipeline.Feed`.
It is a short loop around pure pieces (:mod:`wsmux._retry`):

1. perform the adapter's pre-connect REST request where it has one
   (:meth:`~wsmux.Adapter.connect_request`: KuCoin's token), connect
   (``connect_timeout``), send the subscribe messages paced by the
   venue's message rate (a :class:`~wsmux._retry.TokenBucket`), report
   :class:`~wsmux.Connected`;
2. receive frames; stamp each with ``clock.time_ns()`` once; decompress where
   the venue compresses; hand it to the feed; carry out the feed's actions
   (among them the answers a venue expects to a frame, :class:`~wsmux.adapter.Reply`)
   (send messages, fetch REST snapshots with httpx); pause while a consumer
   with the BLOCK policy is full (backpressure);
3. beside it a watchdog sends the venue's application pings and closes a
   connection that was silent for ``heartbeat.silence_timeout`` (dead peer)
   or delivered no data for ``stale_after`` while still answering pings;
4. on any failure report :class:`~wsmux.Disconnected` (or, when the socket
   never opened — DNS failure, refused connection, handshake timeout or
   rejection — :class:`~wsmux.ConnectFailed` with the reason and the retry
   delay, for every attempt), log one WARNING line on the
   ``wsmux.connection.<venue>`` logger (rate-limited per venue, so a
   reconnect storm is no log storm), invalidate the
   connection's books (the feed emits ``Gap``), wait a full-jitter backoff
   delay and go to 1 — resubscribing exactly the current subscription set.
   The backoff resets only after a connection stayed up and delivered data
   for ``stable_after`` seconds, so a flapping venue keeps backing off.

The WebSocket client sits behind :class:`Transport` (``websockets`` by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import Any, Protocol

import attrs
import httpx

from wsmux import _json
from wsmux._aio import reap
from wsmux._pipeline import BuildSnapshot, Feed, FetchSnapshot, Send
from wsmux._reliability.limits import ConnectLimiter, RestLimiter
from wsmux._reliability.liveness import LivenessAction, LivenessTimers, RecoveryTracker
from wsmux._retry import Backoff, TokenBucket, should_retry
from wsmux.adapter import Adapter, HttpRequest, Outgoing
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.errors import (
    ConnectionClosed,
    ConnectTimeout,
    RestBodyTooLarge,
    RestDeadlineExceeded,
    SnapshotFailed,
    TransportError,
    WsmuxError,
)
from wsmux.model import Channel, Connected, ConnectFailed, Disconnected, Error, ErrorKind, Event, Stale
from wsmux.subscriptions import Subscription

__all__ = [
    "ConnectGate",
    "Connection",
    "ConnectionStats",
    "PushConnection",
    "LogThrottle",
    "RestResponse",
    "Transport",
    "TransportConnection",
    "WebsocketsTransport",
    "fetch_rest",
]

_YIELD_EVERY = 63
"""The pull pump yields to the event loop after every 64 frames (a mask)."""


DEFAULT_BACKOFF = Backoff()


class TransportConnection(Protocol):
    """An open WebSocket as the Connection sees it."""

    async def recv(self) -> bytes | str:
        """The next frame: binary frames as bytes; text frames as UTF-8
        bytes if the connection was opened with ``text_as_bytes`` (the JSON
        parser takes bytes, saving a decode), else as str."""
        ...

    async def send(self, message: Outgoing) -> None: ...

    async def close(self) -> None: ...


class PushConnection(TransportConnection, Protocol):
    """A connection that can hand each frame to a callback as it is decoded,
    with no queue, future or task wake-up per frame (the picows transport).

    After :meth:`start_push`, :meth:`recv` is not used: frames already queued
    and every later one go to ``on_frame`` synchronously, in order.
    """

    def start_push(self, on_frame: Callable[[bytes | str], None]) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    async def wait_closed(self) -> str:
        """Wait until the connection is gone; return why."""
        ...


class Transport(Protocol):
    """Opens WebSockets. Swap it for a faster client or a test double."""

    async def connect(
        self, url: str, *, open_timeout: float, ws_ping_interval: float | None, text_as_bytes: bool = True
    ) -> TransportConnection:
        """Open ``url``. ``text_as_bytes=False`` keeps text frames as str so a
        venue that compresses only its binary frames can tell them apart."""
        ...


class _WsConn:
    __slots__ = ("_decode", "_ws", "raw_recv")

    def __init__(self, ws: Any, text_as_bytes: bool) -> None:
        self._ws = ws
        self._decode = False if text_as_bytes else None
        self.raw_recv: Callable[[], Awaitable[bytes | str]] = functools.partial(ws.recv, decode=self._decode)
        """The client's own ``recv``, its failures not mapped: the pump awaits
        it directly (one coroutine less per frame) and maps them itself."""

    async def recv(self) -> bytes | str:
        try:
            frame: bytes | str = await self._ws.recv(decode=self._decode)
        except Exception as exc:
            raise ConnectionClosed(f"{type(exc).__name__}: {exc}") from exc
        return frame

    async def send(self, message: Outgoing) -> None:
        try:
            await self._ws.send(message)
        except Exception as exc:
            raise ConnectionClosed(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        try:
            async with asyncio.timeout(2.0):  # not wait_for: on 3.11 it can lose a cancel
                await self._ws.close()
        except Exception:
            pass
        finally:
            # a black-holed peer never completes the closing handshake: drop
            # the TCP connection so a pending recv() fails instead of hanging
            transport = getattr(self._ws, "transport", None)
            if transport is not None:
                transport.abort()


class WebsocketsTransport:
    """The default transport, on the ``websockets`` library.

    By default (``push=True``) each connection is websockets' own protocol
    state machine driven by asyncio's socket callbacks
    (:class:`~wsmux.transports._websockets_push.PushWebSocket`): every message
    goes to the Connection's frame handler as soon as its chunk is parsed, with
    no task wake-up per message. Where that path does not apply — a proxy
    configured for the URL (``HTTPS_PROXY``/``ALL_PROXY``…), or a venue
    answering the handshake with a redirect — the connection is opened by
    websockets' asyncio client instead (``push=False`` always uses it), whose
    ``recv()`` the Connection awaits per message.

    Either way text frames are returned as undecoded bytes (the JSON parser
    takes bytes, which saves a UTF-8 decode per frame), ``permessage-deflate``
    is offered, and ``max_size`` is raised to 64 MiB because full-depth
    snapshots exceed the library's 1 MiB default.
    """

    def __init__(self, *, max_size: int = 64 * 2**20, push: bool = True) -> None:
        self.max_size = max_size
        self.push = push

    async def connect(
        self, url: str, *, open_timeout: float, ws_ping_interval: float | None, text_as_bytes: bool = True
    ) -> TransportConnection:
        try:
            async with asyncio.timeout(open_timeout):
                if self.push:
                    conn = await self._connect_push(url, ws_ping_interval, text_as_bytes)
                    if conn is not None:
                        return conn
                return await self._connect_client(url, ws_ping_interval, text_as_bytes)
        except TimeoutError as exc:
            raise ConnectTimeout(f"connecting to {url} took more than {open_timeout} s") from exc
        except OSError as exc:
            raise ConnectionClosed(f"cannot connect to {url}: {exc}") from exc
        except WsmuxError:
            raise
        except Exception as exc:
            raise TransportError(f"cannot connect to {url}: {type(exc).__name__}: {exc}") from exc

    async def _connect_push(
        self, url: str, ws_ping_interval: float | None, text_as_bytes: bool
    ) -> TransportConnection | None:
        """A :class:`~wsmux.transports._websockets_push.PushWebSocket`, or None
        where websockets' client must open this URL (a proxy, a redirect)."""
        from websockets.exceptions import InvalidStatus
        from websockets.uri import parse_uri

        from wsmux.transports._websockets_push import open_push_websocket

        uri = parse_uri(url)
        try:
            from websockets.proxy import get_proxy  # websockets >= 15, whose client honours proxies
        except ImportError:  # older clients connect directly too
            pass
        else:
            if get_proxy(uri) is not None:
                return None
        try:
            return await open_push_websocket(
                uri, max_size=self.max_size, ping_interval=ws_ping_interval, text_as_bytes=text_as_bytes
            )
        except InvalidStatus as exc:
            if 300 <= exc.response.status_code < 400 and "Location" in exc.response.headers:
                return None  # websockets' client follows redirects, with its security rules
            raise

    async def _connect_client(self, url: str, ws_ping_interval: float | None, text_as_bytes: bool) -> _WsConn:
        from websockets.asyncio.client import connect

        ws = await connect(
            url,
            open_timeout=None,  # bounded by connect()
            max_size=self.max_size,
            ping_interval=ws_ping_interval,
            ping_timeout=ws_ping_interval,
            compression="deflate",
            max_queue=(1024, 256),  # flow control: a paused pump pushes back on the venue
        )
        return _WsConn(ws, text_as_bytes)


class LogThrottle:
    """At most ``burst`` log lines at once, then one per ``every`` seconds;
    what it holds back is counted and said in the next line. Pure: given "now"."""

    def __init__(self, burst: int = 5, every: float = 30.0) -> None:
        self.burst = burst
        self.every = every
        self._tokens = float(burst)
        self._stamp: float | None = None
        self.suppressed = 0

    def allow(self, now: float) -> int | None:
        """None: hold this line back (counted). Else the number of lines held
        back since the last one that went out (then reset)."""
        if self._stamp is not None and now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) / self.every)
        self._stamp = now if self._stamp is None else max(self._stamp, now)
        if self._tokens < 1.0:
            self.suppressed += 1
            return None
        self._tokens -= 1.0
        held, self.suppressed = self.suppressed, 0
        return held


def describe_connect_error(exc: BaseException) -> str:
    """A failed connection attempt in words: DNS failure, refused connection,
    handshake timeout, HTTP status on the handshake, else the exception."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for err in chain:
        if isinstance(err, socket.gaierror):
            return f"DNS lookup failed ({err}): {exc}"
        if isinstance(err, ConnectionRefusedError):
            return f"connection refused: {exc}"
        if isinstance(err, TimeoutError):
            return f"timed out: {exc}"
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status is not None:
            return f"handshake rejected with HTTP {status}: {exc}"
    text = str(exc)
    if "Connect call failed" in text or "Errno 111" in text:
        return f"connection refused: {exc}"
    return f"{type(exc).__name__}: {exc}"


@attrs.frozen(slots=True)
class RestResponse:
    """A REST response read whole, within its deadline and body cap."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    url: str


async def _run_steps(steps: Generator[None, None, None]) -> None:
    """Run a deep snapshot's bounded steps, letting the event loop run between
    two (other feeds keep flowing); closing them if this task is cancelled."""
    try:
        for _ in steps:
            await asyncio.sleep(0)
    finally:
        steps.close()


async def fetch_rest(http: httpx.AsyncClient, request: HttpRequest, *, deadline: float, max_body: int) -> RestResponse:
    """Perform ``request`` and read its body, bounded in time and size.

    The deadline is *total* (connect, headers and every body byte): httpx's own
    timeouts are per operation, so a peer that sends one byte per second would
    hold a request open for ever. The body is streamed and abandoned as soon as
    it (after content decoding) exceeds ``max_body`` bytes, or at once when the
    declared ``Content-Length`` already does, so an oversized answer costs at
    most ``max_body`` bytes of memory.

    A ``GET`` whose pooled keep-alive connection turns out to be closed by
    the server before any answer (``httpx.RemoteProtocolError``, "Server
    disconnected without sending a response": the server dropped the idle
    connection as it was reused) is sent once more, within the same deadline.

    Raises:
        RestDeadlineExceeded: the request took longer than ``deadline`` seconds.
        RestBodyTooLarge: the body exceeds ``max_body`` bytes.
        httpx.HTTPError: the request failed (connect, protocol, httpx timeout).
    """
    try:
        async with asyncio.timeout(deadline):
            if request.method == "GET":
                try:
                    return await _read_rest(http, request, max_body)
                except httpx.RemoteProtocolError:
                    pass  # a stale pooled connection: the retry opens a new one
            return await _read_rest(http, request, max_body)
    except TimeoutError as exc:
        if isinstance(exc, RestDeadlineExceeded | ConnectTimeout):
            raise
        raise RestDeadlineExceeded(f"{request.method} {request.url} did not finish within {deadline} s") from exc


async def _read_rest(http: httpx.AsyncClient, request: HttpRequest, max_body: int) -> RestResponse:
    """One attempt of :func:`fetch_rest` (no deadline of its own)."""
    async with http.stream(
        request.method, request.url, params=list(request.params), content=request.body
    ) as response:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_body:
            raise RestBodyTooLarge(
                f"{request.url} declares a body of {int(declared)} bytes, over the cap of {max_body}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_body:
                raise RestBodyTooLarge(f"{request.url} sent more than the cap of {max_body} body bytes")
            chunks.append(chunk)
        return RestResponse(response.status_code, response.headers, b"".join(chunks), str(response.url))


class ConnectGate:
    """The asyncio side of a venue's :class:`~wsmux.reliability.ConnectLimiter`:
    shared by every connection to one venue, it spaces connection attempts
    and caps those in flight, so twenty connections dropped at once do not
    reconnect as a herd."""

    def __init__(self, limiter: ConnectLimiter, clock: Clock = SYSTEM_CLOCK) -> None:
        self.limiter = limiter
        self.clock = clock
        self._released = asyncio.Event()
        self.waits = 0
        self.log_throttle = LogThrottle()
        """Shared by the venue's connections: one budget of WARNING lines per venue."""

    async def acquire(self) -> None:
        """Wait until an attempt may start (then call :meth:`release` after it)."""
        while True:
            delay = self.limiter.acquire(self.clock.monotonic())
            if delay == 0.0:
                return
            self.waits += 1
            if delay == float("inf"):  # too many in flight: wait for a release
                self._released.clear()
                await self._released.wait()
            else:
                await asyncio.sleep(delay)

    def release(self) -> None:
        self.limiter.release()
        self._released.set()


@attrs.define(slots=True)
class ConnectionStats:
    """Counters of one connection (cumulative)."""

    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    frames: int = 0
    bytes: int = 0
    sent: int = 0
    decompress_errors: int = 0
    snapshot_requests: int = 0
    snapshot_failures: int = 0
    stale: int = 0
    resubscribes: int = 0
    silent: int = 0
    rest_waits: int = 0
    rate_limited: int = 0
    last_frame_mono: float = 0.0
    last_data_mono: float = 0.0
    connected_since: float | None = None
    failed_attempts: int = 0
    """Connection attempts that failed in a row (reset when one opens)."""
    last_error: str | None = None
    """Why the last attempt failed or the last connection was lost."""
    last_error_ns: int | None = None
    """When (wall clock, ns since the epoch)."""
    failures_by_reason: dict[str, int] = attrs.field(factory=dict)
    """Failed attempts and lost connections by kind: the exception's class
    name, or ``stalled`` / ``dead_peer`` for the liveness timers (the metrics read it)."""
    handshake_s: float | None = None
    """How long the last successful connect took (TCP, TLS and WebSocket
    upgrade; seconds): what endpoint choice compares between hosts."""


class Connection:
    """One WebSocket to one venue. Created by the multiplexer.

    Args:
        conn_id: a number unique in the process.
        adapter: this connection's adapter instance.
        sink: where events go (the multiplexer's dispatcher).
        http: client for REST snapshots.
        clock: time source.
        backoff: reconnect delays.
        transport: WebSocket client.
        connect_timeout: seconds to open the socket and handshake.
        stale_after: no data event for this long (while the socket lives)
            → ``Stale`` and a reconnect; None disables.
        stall_channels: the channels whose subscriptions arm the
            ``stale_after`` timer (None: every subscription).
        stable_after: seconds a connection must live and deliver data before
            the backoff resets.
        wait_unblocked: awaited after each frame; the multiplexer uses it for
            BLOCK backpressure.
        recorder: called with ``(direction, conn_id, recv_ns, data, url)`` for
            every frame in and out (the message log).
    """

    def __init__(
        self,
        conn_id: int,
        adapter: Adapter,
        sink: Callable[[Event], object],
        *,
        http: httpx.AsyncClient,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff = DEFAULT_BACKOFF,
        transport: Transport | None = None,
        connect_timeout: float = 10.0,
        stale_after: float | None = None,
        stall_channels: frozenset[Channel] | None = None,
        stable_after: float = 10.0,
        wait_unblocked: Callable[[], Awaitable[None] | None] | None = None,
        recorder: Callable[[str, int, int, bytes | str, str | None], None] | None = None,
        rng: random.Random | None = None,
        connect_gate: ConnectGate | None = None,
        rest_limiter: RestLimiter | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.adapter = adapter
        self.venue = adapter.venue
        self.sink = sink
        self.feed = Feed(adapter, sink)
        self.feed.step_snapshots = True  # a deep stream snapshot never holds the loop in one piece
        self.http = http
        self.clock = clock
        self.backoff = backoff
        self.transport: Transport = transport or WebsocketsTransport()
        self.connect_timeout = connect_timeout
        self.stale_after = stale_after
        self.stall_channels = stall_channels
        self.stable_after = stable_after
        self.wait_unblocked = wait_unblocked
        self.recorder = recorder
        self.subscriptions: set[Subscription] = set()
        self.feed.subscriptions = self.subscriptions  # one set: rejections name their symbol
        self.route = ""
        """The adapter's connection group (:meth:`~wsmux.Adapter.route`) this connection serves."""
        self.stats = ConnectionStats()
        self.state = "idle"
        self._rng = rng or random.Random()
        self._ws: TransportConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._bucket = TokenBucket(adapter.limits.messages_per_second)
        self._snapshot_failures: dict[str, int] = {}
        self._kill_reason: str | None = None
        self.paused = False
        """True while the pump waits for a BLOCK stream's consumer (backpressure)."""
        self.connect_gate = connect_gate
        self.rest_limiter = rest_limiter
        self.recovery = RecoveryTracker(backoff, stable_after=stable_after, rng=self._rng)
        """Owns the backoff exponent: reset only once a connection has stayed up
        ``stable_after`` seconds and then delivered data."""
        self.liveness = LivenessTimers(silence_timeout=adapter.heartbeat.silence_timeout, stall_timeout=stale_after)
        """Dead peer (no frame) vs stalled feed (frames, no data: resubscribe, then reconnect)."""
        self.url = ""
        self.log = logging.getLogger(f"wsmux.connection.{self.venue}")
        """This venue's logger (``wsmux.connection.<venue>``); wsmux adds no handler."""
        self._log_throttle = connect_gate.log_throttle if connect_gate is not None else LogThrottle()

    # --- control ------------------------------------------------------------------

    def start(self) -> None:
        """Start the connect/receive/reconnect loop in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"wsmux-conn-{self.conn_id}")

    async def close(self) -> None:
        """Close the socket and stop (no reconnect)."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close()
        for task in [*self._tasks, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._task] if self._task else [])]:
            await reap(task)
        self._tasks.clear()
        self._task = None
        self.state = "closed"

    @property
    def room(self) -> int:
        """How many more subscriptions this connection may carry."""
        return self.adapter.limits.streams_per_connection - len(self.subscriptions)

    async def add(self, subs: Iterable[Subscription]) -> None:
        """Add subscriptions (sent now if connected, else on connect)."""
        new = [s for s in subs if s not in self.subscriptions]
        for sub in new:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
            elif sub.channel is Channel.L3:
                self.feed.add_l3(sub)
            self.subscriptions.add(sub)
        self.liveness.expect_data = self._expects_data()
        if new and self._ws is not None and self.state == "open":
            await self._send_all(self.adapter.subscribe(new))
        # (while "connecting", _connect_and_pump sends the set as it is once open)

    async def remove(self, subs: Iterable[Subscription]) -> None:
        """Cancel subscriptions."""
        gone = [s for s in subs if s in self.subscriptions]
        for sub in gone:
            self.subscriptions.discard(sub)
            if sub.channel is Channel.BOOK:
                self.feed.remove_book(sub.symbol)
            elif sub.channel is Channel.L3:
                self.feed.remove_l3(sub.symbol)
        self.liveness.expect_data = self._expects_data()
        if gone and self._ws is not None and self.state == "open":
            with contextlib.suppress(TransportError):
                await self._send_all(self.adapter.unsubscribe(gone))

    def _expects_data(self) -> bool:
        """Whether a subscription that arms the stall timer is carried."""
        channels = self.stall_channels
        if channels is None:
            return bool(self.subscriptions)
        return any(sub.channel in channels for sub in self.subscriptions)

    # --- the loop -----------------------------------------------------------------

    async def _run(self) -> None:
        recovery = self.recovery
        while not self._closing:
            failed: str | None = None  # the reason, when the socket never opened
            reason = ""
            try:
                await self._connect_and_pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                never_opened = self.state == "connecting"
                reason = self._kill_reason or (
                    describe_connect_error(exc) if never_opened else f"{type(exc).__name__}: {exc}"
                )
                kind = type(exc).__name__
                if self._kill_reason:
                    kind = "stalled" if "stalled" in self._kill_reason else "dead_peer"
                by_reason = self.stats.failures_by_reason
                by_reason[kind] = by_reason.get(kind, 0) + 1
                self._kill_reason = None
                retry = should_retry(exc) and not self._closing
                if self._ws is None and self.stats.connected_since is None:
                    self.stats.connect_failures += 1
                self.stats.last_error = reason
                self.stats.last_error_ns = self.clock.time_ns()
                if never_opened:
                    failed = reason
                    self.stats.failed_attempts += 1
                self._lost(reason, retry)
                if not retry:
                    if failed is not None:
                        self._report_failure(failed, None)
                    self.sink(Error(self.venue, None, ErrorKind.TRANSPORT, reason, self.clock.time_ns()))
                    return
            recovery.closed()
            self.liveness.closed()
            if self._stopping():
                return
            delay = recovery.next_delay()
            if failed is not None:
                self._report_failure(failed, delay)
            elif reason:
                self._log_line(
                    "connection %d to %s lost: %s; reconnecting in %.2f s", self.conn_id, self.url, reason, delay
                )
            await asyncio.sleep(delay)
            self.stats.reconnects += 1

    def _report_failure(self, reason: str, retry_in: float | None) -> None:
        """A ConnectFailed event for every failed attempt, and a (throttled) log line."""
        attempt = self.stats.failed_attempts
        self.sink(ConnectFailed(self.venue, self.conn_id, self.url, reason, attempt, retry_in, self.clock.time_ns()))
        if retry_in is None:
            self._log_line("cannot connect to %s (attempt %d): %s; giving up", self.url, attempt, reason)
        else:
            self._log_line(
                "cannot connect to %s (attempt %d): %s; retrying in %.2f s", self.url, attempt, reason, retry_in
            )

    def _log_line(self, fmt: str, *args: object) -> None:
        held = self._log_throttle.allow(self.clock.monotonic())
        if held is None:
            return
        if held:
            fmt += " (%d similar lines suppressed)"
            args = (*args, held)
        self.log.warning(fmt, *args)

    def _stopping(self) -> bool:
        return self._closing

    def _lost(self, reason: str, reconnecting: bool) -> None:
        was_open = self.state == "open"
        self.state = "reconnecting" if reconnecting else "failed"
        ws = self._ws
        self._ws = None
        if ws is not None:
            task = asyncio.get_running_loop().create_task(ws.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        for task in list(self._tasks):
            if task.get_name().startswith("wsmux-snap") or task.get_name().startswith("wsmux-dog"):
                task.cancel()
        self.stats.connected_since = None
        now_ns = self.clock.time_ns()
        self.feed.release_held()  # frames that arrived before the loss: their events come before it
        if was_open:
            self.sink(Disconnected(self.venue, self.conn_id, reason, reconnecting, now_ns))
        self.feed.on_disconnect(now_ns)
        self._record("close", now_ns, reason, None)

    async def _connect_and_pump(self) -> None:
        adapter = self.adapter
        subs = sorted(self.subscriptions, key=str)
        adapter.reset()  # a new connection: forget the old one's state before building the URL
        request = adapter.connect_request()
        if request is not None:  # e.g. KuCoin's bullet token: fresh for every attempt
            adapter.use_connect_response(await self._prepare_connect(request))
        self.url = url = adapter.connect_url(subs)
        adapter.check_transport(url)  # credentials never go out in clear text (ConfigError: no retry)
        self.state = "connecting"
        gate = self.connect_gate
        if gate is not None:
            await gate.acquire()
        started = self.clock.monotonic()
        try:
            ws = await self.transport.connect(
                url,
                open_timeout=self.connect_timeout,
                ws_ping_interval=adapter.heartbeat.ws_ping_interval,
                text_as_bytes=not adapter.compressed,
            )
        finally:
            if gate is not None:
                gate.release()
        self._ws = ws
        self.stats.handshake_s = self.clock.monotonic() - started
        self.stats.connects += 1
        self.stats.failed_attempts = 0
        self.log.info("connection %d to %s open", self.conn_id, url)
        now = self.clock.monotonic()
        self.stats.connected_since = now
        self.stats.last_frame_mono = now
        self.stats.last_data_mono = now
        self.recovery.opened(now)
        self.liveness.opened(now)
        self.liveness.expect_data = self._expects_data()
        self._record("open", self.clock.time_ns(), _json.dumps([str(s) for s in subs]), url)
        self.state = "open"
        self._spawn(self._watchdog(), "wsmux-dog")
        # subscriptions may have changed while the socket was opening
        current = sorted(self.subscriptions, key=str)
        if current:
            await self._send_all(adapter.subscribe(current))
        dropped = [s for s in subs if s not in self.subscriptions]
        if dropped:
            await self._send_all(adapter.unsubscribe(dropped))
        self.sink(Connected(self.venue, self.conn_id, url, self.clock.time_ns()))
        await self._pump(ws)

    async def _pump(self, ws: TransportConnection) -> None:
        if getattr(ws, "start_push", None) is not None:
            await self._pump_push(ws)  # type: ignore[arg-type]
            return
        feed = self.feed
        stats = self.stats
        clock = self.clock
        decompress = self.adapter.decompress if self.adapter.compressed else None
        recorder = self.recorder
        wait_unblocked = self.wait_unblocked
        liveness = self.liveness
        recovery = self.recovery
        sleep = asyncio.sleep
        count = 0
        raw_recv = getattr(ws, "raw_recv", None)
        recv = ws.recv if raw_recv is None else raw_recv
        while True:
            try:
                frame = await recv()
            except Exception as exc:
                if raw_recv is None or isinstance(exc, WsmuxError):
                    raise
                raise ConnectionClosed(f"{type(exc).__name__}: {exc}") from exc
            count += 1
            if not count & _YIELD_EVERY:
                # recv() does not suspend while frames are queued: let other
                # venues' connections (and the consumers) run between batches
                await sleep(0)
            recv_ns = clock.time_ns()
            stats.frames += 1
            stats.bytes += len(frame)
            if recorder is not None:
                recorder("in", self.conn_id, recv_ns, frame, None)
            if decompress is not None and isinstance(frame, bytes):
                try:
                    frame = decompress(frame)
                except Exception as exc:
                    stats.decompress_errors += 1
                    feed.stats.parse_errors += 1
                    self.sink(Error(self.venue, None, ErrorKind.MALFORMED, f"cannot decompress frame: {exc}", recv_ns))
                    continue
            events_before = feed.stats.events
            feed.on_frame(frame, recv_ns)
            if feed.poisoned:
                raise ConnectionClosed(f"{feed.max_consecutive_errors} unreadable frames in a row")
            mono = clock.monotonic()
            stats.last_frame_mono = mono
            if feed.stats.events != events_before:
                stats.last_data_mono = mono
                liveness.data(mono)
                if not recovery.recovered:
                    recovery.data(mono)
            else:
                liveness.frame(mono)
            if feed.actions:
                await self._do_actions()
            if wait_unblocked is not None:
                waiting = wait_unblocked()
                if waiting is not None:
                    # backpressure: we stopped reading, the venue did not go quiet
                    self.paused = True
                    try:
                        await waiting
                    finally:
                        self.paused = False
                        now = clock.monotonic()
                        liveness.data(now)
                        stats.last_frame_mono = stats.last_data_mono = now

    async def _pump_push(self, ws: PushConnection) -> None:
        """The push variant of :meth:`_pump`: the same per-frame work, run from
        the transport's frame callback; this task only waits for the
        connection to end and carries out what needs awaiting (actions,
        backpressure). As in the pull pump, no frame is handled while the
        frame before it waits: its actions (a heartbeat's answer, a resync's
        messages, sent before anything that follows) or room in a full BLOCK
        stream — the transport holds reading meanwhile (``holds`` counts who
        holds it)."""
        feed = self.feed
        stats = self.stats
        clock = self.clock
        decompress = self.adapter.decompress if self.adapter.compressed else None
        recorder = self.recorder
        wait_unblocked = self.wait_unblocked
        liveness = self.liveness
        recovery = self.recovery
        failed: list[str] = []
        holds = [0]

        def hold() -> None:
            if not holds[0]:
                ws.pause_reading()
            holds[0] += 1

        def release() -> None:
            holds[0] -= 1
            if not holds[0]:
                ws.resume_reading()

        def on_frame(frame: bytes | str) -> None:
            if failed:
                return
            recv_ns = clock.time_ns()
            stats.frames += 1
            stats.bytes += len(frame)
            if recorder is not None:
                recorder("in", self.conn_id, recv_ns, frame, None)
            if decompress is not None and isinstance(frame, bytes):
                try:
                    frame = decompress(frame)
                except Exception as exc:
                    stats.decompress_errors += 1
                    feed.stats.parse_errors += 1
                    self.sink(Error(self.venue, None, ErrorKind.MALFORMED, f"cannot decompress frame: {exc}", recv_ns))
                    return
            events_before = feed.stats.events
            feed.on_frame(frame, recv_ns)
            if feed.poisoned:
                failed.append(f"{feed.max_consecutive_errors} unreadable frames in a row")
                ws.pause_reading()
                closing.set()
                return
            mono = clock.monotonic()
            stats.last_frame_mono = mono
            if feed.stats.events != events_before:
                stats.last_data_mono = mono
                liveness.data(mono)
                if not recovery.recovered:
                    recovery.data(mono)
            else:
                liveness.frame(mono)
            if feed.actions:
                hold()
                self._spawn(act_then_release(), "wsmux-actions")
            if wait_unblocked is not None and not self.paused:
                waiting = wait_unblocked()
                if waiting is not None:
                    self.paused = True
                    hold()
                    self._spawn(resume_when(waiting), "wsmux-backpressure")

        async def act_then_release() -> None:
            try:
                await self._do_actions()
            except TransportError as exc:  # a send failed: the connection ends with it, as the pull loop's does
                failed.append(f"a send failed: {exc}")
                closing.set()
            finally:
                release()

        async def resume_when(waiting: Any) -> None:
            # backpressure: we stopped reading, the venue did not go quiet
            try:
                await waiting
            finally:
                self.paused = False
                now = clock.monotonic()
                liveness.data(now)
                stats.last_frame_mono = stats.last_data_mono = now
                release()

        closing = asyncio.Event()
        ws.start_push(on_frame)
        closed = asyncio.ensure_future(ws.wait_closed())
        failure = asyncio.ensure_future(closing.wait())
        try:
            await asyncio.wait((closed, failure), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (closed, failure):
                if not fut.done():
                    fut.cancel()
        if failed:
            raise ConnectionClosed(failed[0])
        raise ConnectionClosed(closed.result())

    async def _do_actions(self) -> None:
        for action in self.feed.take_actions():
            if isinstance(action, Send):
                await self._send_all(action.messages)
            elif isinstance(action, FetchSnapshot):
                self._spawn(self._fetch_snapshot(action), f"wsmux-snap-{action.symbol}")
            elif isinstance(action, BuildSnapshot):
                self._spawn(self._build_snapshot(action), f"wsmux-build-{action.symbol}")

    async def _build_snapshot(self, action: BuildSnapshot) -> None:
        """Run a deep stream snapshot's build steps, letting other feeds (and
        this connection's frames, whose diffs the book buffers) through between them."""
        await _run_steps(action.steps)
        if self.feed.actions:
            with contextlib.suppress(TransportError):
                await self._do_actions()

    async def _fetch_snapshot(self, action: FetchSnapshot) -> None:
        symbol = action.symbol
        failures = self._snapshot_failures.get(symbol, 0)
        if failures:
            delay = min(self.backoff.cap, self.backoff.initial * self.backoff.factor ** (failures - 1))
            await asyncio.sleep(self._rng.uniform(delay / 2, delay))
        request = action.request
        limiter = self.rest_limiter
        if limiter is not None:
            delay = limiter.acquire(self.clock.monotonic(), request.weight)
            while delay > 0:
                self.stats.rest_waits += 1
                await asyncio.sleep(delay)
                delay = limiter.blocked_for(self.clock.monotonic())  # a 429 may have come meanwhile
        self.stats.snapshot_requests += 1
        self.feed.on_fetch_started(symbol, action.channel)  # diffs from now on can bridge the answer
        limits = self.adapter.limits
        try:
            response = await fetch_rest(
                self.http, request, deadline=limits.rest_deadline, max_body=limits.max_rest_body
            )
            recv_ns = self.clock.time_ns()
            if limiter is not None and response.status_code in (418, 429):
                self.stats.rate_limited += 1
                limiter.on_status(
                    self.clock.monotonic(), response.status_code, response.headers.get("Retry-After"), recv_ns / 1e9
                )
            if response.status_code != 200:
                raise SnapshotFailed(f"HTTP {response.status_code} from {request.url}: {response.body[:200]!r}")
            body = response.body
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats.snapshot_failures += 1
            self._snapshot_failures[symbol] = failures + 1
            err = exc if isinstance(exc, SnapshotFailed) else SnapshotFailed(f"{type(exc).__name__}: {exc}")
            self.feed.on_snapshot_error(symbol, err, self.clock.time_ns())
        else:
            if self.recorder is not None:
                self.recorder("rest", self.conn_id, recv_ns, body, response.url)
            await _run_steps(self.feed.snapshot_body_steps(symbol, body, recv_ns))
            sync = self.feed.syncs.get(symbol)
            if sync is None or sync.valid:
                self._snapshot_failures.pop(symbol, None)
            else:
                # refused (bad body), too old (REFETCH) or broken on replay: the
                # next fetch backs off like after a failure, never a hot loop
                self._snapshot_failures[symbol] = failures + 1
        if self.feed.actions:
            with contextlib.suppress(TransportError):
                await self._do_actions()

    async def _prepare_connect(self, request: HttpRequest) -> bytes:
        """Perform the adapter's pre-connect REST request; its body, or
        :class:`~wsmux.errors.TransportError` (a failed connection attempt)."""
        limiter = self.rest_limiter
        if limiter is not None:
            delay = limiter.acquire(self.clock.monotonic(), request.weight)
            if delay > 0:
                self.stats.rest_waits += 1
                await asyncio.sleep(delay)
        try:
            response = await self.http.request(request.method, request.url, params=list(request.params))
        except httpx.HTTPError as exc:
            raise TransportError(f"pre-connect request to {request.url} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise TransportError(f"HTTP {response.status_code} from {request.url}: {response.text[:200]!r}")
        body = response.content
        if self.recorder is not None:
            self.recorder("rest", self.conn_id, self.clock.time_ns(), body, str(response.url))
        return body

    async def _send_all(self, messages: Iterable[Outgoing]) -> None:
        for message in messages:
            ws = self._ws
            if ws is None:
                raise ConnectionClosed("connection is not open")
            delay = self._bucket.take(self.clock.monotonic())
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(message)
            self.stats.sent += 1
            if self.recorder is not None:  # the log never holds credentials or signatures
                self._record("out", self.clock.time_ns(), self.adapter.redact_outgoing(message), None)

    async def _watchdog(self) -> None:
        """Application pings, and the two liveness timers (see LivenessTimers)."""
        hb = self.adapter.heartbeat
        clock = self.clock
        live = self.liveness
        interval = hb.ping_interval if hb.ping_message is not None else None
        next_ping = clock.monotonic() + interval if interval is not None else None
        while self.state == "open":
            deadline = live.next_deadline()
            wakes = [t for t in (deadline, next_ping) if t is not None]
            wake = min(wakes) if wakes else clock.monotonic() + 1.0
            await asyncio.sleep(max(0.001, wake - clock.monotonic()))
            if self.state != "open":
                return
            now = clock.monotonic()
            if next_ping is not None and now >= next_ping and hb.ping_message is not None:
                next_ping = now + (interval or 0.0)
                with contextlib.suppress(TransportError):
                    await self._send_all([hb.ping_message])
            if self.paused:  # our consumer is slow; the venue is not silent
                continue
            action = live.check(now)
            if action is LivenessAction.RESUBSCRIBE:
                self.stats.stale += 1
                self.stats.resubscribes += 1
                quiet = now - live.last_data
                self.sink(Stale(self.venue, None, None, int(quiet * 1e9), clock.time_ns()))
                subs = sorted(self.subscriptions, key=str)
                with contextlib.suppress(TransportError):
                    await self._send_all([*self.adapter.unsubscribe(subs), *self.adapter.subscribe(subs)])
            elif action is LivenessAction.RECONNECT:
                silent = now - live.last_frame
                if silent >= hb.silence_timeout:
                    self.stats.silent += 1
                else:
                    self.stats.stale += 1
                await self._kill(live.reason, max(silent, now - live.last_data))
                return

    async def _kill(self, reason: str, silent_s: float) -> None:
        self._kill_reason = reason
        self.sink(Stale(self.venue, None, None, int(silent_s * 1e9), self.clock.time_ns()))
        ws = self._ws
        if ws is not None:
            await ws.close()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record(self, direction: str, ns: int, data: bytes | str, url: str | None) -> None:
        if self.recorder is not None and direction != "in":
            self.recorder(direction, self.conn_id, ns, data, url)

    def health(self) -> dict[str, Any]:
        """A snapshot of this connection's state and counters."""
        now = self.clock.monotonic()
        stats = self.stats
        return {
            "conn_id": self.conn_id,
            "venue": self.venue,
            "url": self.url,
            "state": self.state,
            "subscriptions": len(self.subscriptions),
            "last_frame_age_s": now - stats.last_frame_mono if stats.last_frame_mono else None,
            "last_data_age_s": now - stats.last_data_mono if stats.last_data_mono else None,
            "last_error": stats.last_error,
            "last_error_ns": stats.last_error_ns,
            "connection": attrs.asdict(stats),
            "feed": attrs.asdict(self.feed.stats),
            "books": {
                symbol: {
                    "valid": sync.valid,
                    "integrity": sync.rule.level().value,
                    "seq": sync.last,
                    **attrs.asdict(sync.stats),
                }
                for symbol, sync in self.feed.syncs.items()
            },
        }
