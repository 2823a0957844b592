"""Base of the mock exchange servers: WebSocket and REST on one 127.0.0.1 port.

A :class:`MockExchange` subclass speaks one venue's protocol. The base runs
the server (``websockets`` on ``127.0.0.1:0``; plain HTTP GETs on the same
port are answered by :meth:`MockExchange.http`), keeps one seeded
:class:`~wsmux.testing.Market` per symbol, and publishes market steps either
on demand (:meth:`MockExchange.publish`, deterministic, what tests use) or from
a background ticker at ``rate`` steps per second (:meth:`MockExchange.run`,
what the demo uses).

Fault injection is by :class:`Faults`: one-shot flags and counters that the
venue subclass consults while it renders messages, plus connection-level
faults the base carries out (drop every connection, stall, send garbage).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from wsmux._json import dumps
from wsmux.adapter import Endpoint
from wsmux.testing._market import Change, Market

__all__ = ["Faults", "MockConnection", "MockExchange"]


@attrs.define
class Faults:
    """Faults to inject. Counters are consumed as they fire.

    Attributes:
        skip_seq: skip this many sequence numbers on the next book updates.
        bad_checksum: corrupt the checksum of this many next book messages.
        duplicate: send this many next book updates twice.
        reorder: swap the next two book updates, this many times.
        crossed: send this many crossed book updates.
        garbage: send this many frames of invalid JSON.
        stall: seconds to stay silent (keeps the socket open), checked per publish.
        silent: stop sending anything (and answering app pings) until cleared.
        snapshot_status: HTTP status for REST snapshots (200 = fine).
        snapshot_garbage: answer REST snapshots with a broken body this many times.
        snapshot_delay: seconds to wait before answering a REST snapshot.
        reject_subscriptions: answer subscribe requests with an error.
        drop_trades: do not send this many next trades (they still happen and
            are in the venue's REST trade history, where it has one).
        instruments_status: HTTP status for the venue's instruments list
            (200 = fine; e.g. 503 to test that data flows unvalidated).
    """

    skip_seq: int = 0
    bad_checksum: int = 0
    duplicate: int = 0
    reorder: int = 0
    crossed: int = 0
    garbage: int = 0
    silent: bool = False
    snapshot_status: int = 200
    snapshot_garbage: int = 0
    snapshot_delay: float = 0.0
    reject_subscriptions: bool = False
    drop_trades: int = 0
    instruments_status: int = 200

    def take(self, name: str) -> bool:
        """Consume one unit of counter ``name``; True if it fired."""
        value = getattr(self, name)
        if value > 0:
            setattr(self, name, value - 1)
            return True
        return False


class MockConnection:
    """One client connection to a mock exchange."""

    def __init__(self, ws: ServerConnection, conn_id: int) -> None:
        self.ws = ws
        self.conn_id = conn_id
        self.topics: set[Any] = set()
        """Venue-specific subscription keys."""
        self.state: dict[str, Any] = {}
        """Per-connection state of the venue subclass (e.g. a sequence)."""
        self.held: list[str | bytes] = []
        """Messages held back by a reorder fault."""

    async def send(self, message: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(message)


class MockExchange(abc.ABC):
    """A mock venue on 127.0.0.1. Use as ``async with MockBinance([...]) as mock``.

    Args:
        symbols: unified symbols to list.
        seed: base random seed (each symbol gets its own stream).
        rate: steps per second per symbol when :meth:`run` is used.
        host: address to bind (127.0.0.1 only in tests).
    """

    venue: ClassVar[str]
    tick: ClassVar[str] = "0.01"
    lot: ClassVar[str] = "0.00001"
    start_price: ClassVar[str] = "30000"
    server_time_path: ClassVar[str | None] = None
    """The venue's REST server-time path, answered with :meth:`server_time_body`
    (None: the venue mock has none)."""
    """Mid price of the first symbol in quote currency, whatever the tick size
    (the next symbols start at half the previous one's)."""

    @classmethod
    def _start_ticks(cls) -> int:
        return int(Decimal(cls.start_price) / Decimal(cls.tick))

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
    ) -> None:
        self.symbols = list(symbols)
        # each symbol its own seeded walk, at its own price level (halving per symbol)
        start = self._start_ticks()
        self.markets = {
            s: Market(seed * 7919 + i, mid=start >> min(i, 10), tick=self.tick, lot=self.lot, levels=levels)
            for i, s in enumerate(self.symbols)
        }
        self.rate = rate
        self.host = host
        self.faults = Faults()
        self.connections: dict[int, MockConnection] = {}
        self.connections_total = 0
        self.received: list[str | bytes] = []
        """Every message clients sent (for assertions)."""
        self.sent_frames = 0
        self.instruments_served = 0
        """How many times the instruments list was answered (200)."""
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._conn_seq = 0
        self.connected = asyncio.Event()
        self.clock_skew = 0.0
        self.time_served = 0
        """REST server-time requests answered (:attr:`server_time_path`)."""
        """Seconds this venue's clock runs ahead of the real one (negative:
        behind): its timestamps and its REST server time, where the venue
        mock reads :meth:`now_ns`. May be changed at any time."""

    def now_ns(self) -> int:
        """The venue's clock: real time plus :attr:`clock_skew`."""
        return time.time_ns() + int(self.clock_skew * 1e9)

    def stamp_ns(self, last_ns: int, step_ns: int = 1_000_000) -> int:
        """The timestamp of a venue's next message: :meth:`now_ns` in whole
        ``step_ns``, but at least ``step_ns`` after ``last_ns`` (strictly
        increasing whatever the rate; exact in the venue's millisecond or ISO
        text): timestamps a latency measurement can read."""
        now = self.now_ns()
        return max(last_ns + step_ns, now - now % step_ns)

    def server_time_body(self, now_ns: int) -> str:
        """The venue's answer to :attr:`server_time_path` at ``now_ns`` (venue subclasses)."""
        raise NotImplementedError

    def _server_time(self, path: str) -> tuple[int, bytes] | None:
        if self.server_time_path is None or path != self.server_time_path:
            return None
        self.time_served += 1
        return 200, self.server_time_body(self.now_ns()).encode()

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            0,
            process_request=self._process_request,
            max_size=2**24,
            ping_interval=None,
        )

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MockExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.ws_path}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    ws_path: ClassVar[str] = "/"

    @property
    def endpoint(self) -> Endpoint:
        """Pass to ``Multiplexer(endpoints={venue: mock.endpoint})``."""
        return Endpoint(self.ws_url, self.rest_url)

    def run(self) -> None:
        """Start publishing ``rate`` steps per second per symbol in the background."""
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        interval = 1.0 / self.rate
        while True:
            await asyncio.sleep(interval)
            await self.publish(1)

    # --- publishing -------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times and send the changes to subscribers."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    for message in self.render(conn, symbol, change):
                        await self._send(conn, message)

    async def _send(self, conn: MockConnection, message: str | bytes) -> None:
        if self.faults.take("garbage"):
            await conn.send('{"this is": not json')
        self.sent_frames += 1
        await conn.send(message)

    async def broadcast(self, message: str | bytes) -> None:
        """Send ``message`` to every connection."""
        for conn in list(self.connections.values()):
            await conn.send(message)

    async def drop_connections(self, code: int = 1011) -> None:
        """Close every client connection abruptly (fault)."""
        for conn in list(self.connections.values()):
            await conn.ws.close(code, "mock fault: dropped")

    # --- server plumbing ---------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if self.faults.snapshot_delay:
            await asyncio.sleep(self.faults.snapshot_delay)
        parts = urlsplit(request.path)
        answer = self._server_time(parts.path) or self.http(parts.path, dict(parse_qsl(parts.query)))
        if answer is None:
            return _response(404, b'{"error":"not found"}')
        status, body = answer
        return _response(status, body)

    async def _handle(self, ws: ServerConnection) -> None:
        self._conn_seq += 1
        conn = MockConnection(ws, self._conn_seq)
        self.connections[conn.conn_id] = conn
        self.connections_total += 1
        self.connected.set()
        try:
            await self.on_open(conn)
            async for message in ws:
                self.received.append(message)
                if self.faults.silent:
                    continue
                await self.on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(conn.conn_id, None)

    # --- venue hooks ------------------------------------------------------------------

    async def on_open(self, conn: MockConnection) -> None:  # noqa: B027 - optional hook
        """Called when a client connects (e.g. subscribe from the URL)."""

    @abc.abstractmethod
    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        """Handle a client message (subscribe, ping...)."""

    @abc.abstractmethod
    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """Messages ``conn`` receives for one market step of ``symbol``."""

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """Answer a REST GET, or None for 404."""
        return None

    def instruments_answer(self, body: Callable[[], Any]) -> tuple[int, bytes]:
        """The answer of the venue's instruments endpoint: ``body()`` as JSON,
        or the :attr:`Faults.instruments_status` error. Counted in
        :attr:`instruments_served`."""
        if self.faults.instruments_status != 200:
            return self.faults.instruments_status, b'{"error":"mock fault: instruments refused"}'
        self.instruments_served += 1
        return 200, dumps(body()).encode()

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """Answer a REST request of any method (GET goes to :meth:`http`), or
        None for 404. Venues with POST endpoints (KuCoin's bullet) override it;
        tools that drive a mock without a server (the benchmark) call it."""
        if method != "GET":
            return 405, b'{"error":"method not allowed"}'
        return self._server_time(path) or self.http(path, query)


def _response(status: int, body: bytes) -> Response:
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    reason = "OK" if status == 200 else "Error"
    return Response(status, reason, headers, body)
