"""A hostile peer for the tests: an HTTP server and a WebSocket server on 127.0.0.1
that misbehave on purpose, where the mocks in :mod:`wsmux.testing` cooperate.

HTTP (a raw asyncio server, so it can break HTTP the way a real peer does) answers
every request according to :attr:`HostileServer.http_mode`:

* ``"drip"`` — status line and headers at once (``Content-Length`` of
  :attr:`body_size`, or none with ``declare_length=False``), then one body byte every :attr:`drip_interval` seconds, for
  ever: every single read is fast, the request never finishes;
* ``"oversized"`` — a ``200`` with a body of :attr:`body_size` bytes streamed in
  64 KiB chunks; ``declare_length=False`` omits ``Content-Length`` (the body ends
  when the server closes), so the client cannot refuse it up front;
* ``"ok"`` — :attr:`ok_body` with a ``200``, like a healthy venue.

WebSocket: :meth:`ws_handler` accepts, records what the client sends and sends
nothing back (the ``websockets`` server still answers protocol pings: a peer that
is alive and silent). Subclass and override it for other behaviour.

Counters (``requests``, ``aborted``, ``body_bytes_sent``, ``ws_connections``) and
:class:`asyncio.Event` s let tests wait on what happened, never on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from wsmux.adapter import Endpoint

__all__ = ["HostileServer"]

_CHUNK = 64 * 1024


class HostileServer:
    """See the module docstring. Use as ``async with HostileServer(...) as srv``."""

    def __init__(
        self,
        *,
        http_mode: str = "drip",
        drip_interval: float = 0.05,
        body_size: int = 10 * 2**20,
        declare_length: bool = True,
        ok_body: bytes = b"{}",
        hang_up_first: int = 0,
    ) -> None:
        self.http_mode = http_mode
        self.hang_up_first = hang_up_first
        """Close the connection of the first this-many requests without an answer
        (what a server does to an idle keep-alive connection as it is reused)."""
        self.drip_interval = drip_interval
        self.body_size = body_size
        self.declare_length = declare_length
        self.ok_body = ok_body
        self.requests = 0
        self.aborted = 0
        """HTTP responses the client hung up on before the end."""
        self.body_bytes_sent = 0
        self.paths: list[str] = []
        self.ws_connections = 0
        self.ws_received: list[str | bytes] = []
        self.requested = asyncio.Event()
        self.ws_connected = asyncio.Event()
        self._http: asyncio.Server | None = None
        self._ws: Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    @property
    def http_url(self) -> str:
        assert self._http is not None
        port = self._http.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def ws_url(self) -> str:
        assert self._ws is not None
        port = next(iter(self._ws.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    @property
    def endpoint(self) -> Endpoint:
        """WebSocket and REST of this server, for ``Multiplexer(endpoints=...)``."""
        return Endpoint(url=self.ws_url, rest_url=self.http_url)

    async def __aenter__(self) -> HostileServer:
        self._http = await asyncio.start_server(self._serve_http, "127.0.0.1", 0)
        self._ws = await serve(self._serve_ws, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        self._closing = True  # handlers stop at their next step (never cancelled mid-write)
        if self._http is not None:
            self._http.close()
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=10.0)
        if self._http is not None:
            await self._http.wait_closed()

    # --- HTTP -------------------------------------------------------------------------

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.paths.append(head.split(b" ", 2)[1].decode())
            self.requests += 1
            self.requested.set()
            mode = self.http_mode
            if self.requests <= self.hang_up_first:
                pass  # closed below, no answer
            elif mode == "ok":
                await self._send_head(writer, len(self.ok_body))
                writer.write(self.ok_body)
                await writer.drain()
            elif mode == "drip":
                await self._send_head(writer, self.body_size if self.declare_length else None)
                while not self._closing:
                    writer.write(b" ")
                    await writer.drain()
                    self.body_bytes_sent += 1
                    await asyncio.sleep(self.drip_interval)
            elif mode == "oversized":
                await self._send_head(writer, self.body_size if self.declare_length else None)
                left = self.body_size
                while left > 0 and not self._closing:
                    n = min(_CHUNK, left)
                    writer.write(b"x" * n)
                    await writer.drain()
                    self.body_bytes_sent += n
                    left -= n
            else:
                raise ValueError(f"unknown http_mode {mode!r}")
        except (ConnectionError, asyncio.IncompleteReadError):
            self.aborted += 1
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _send_head(self, writer: asyncio.StreamWriter, length: int | None) -> None:
        lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", "Connection: close"]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()

    # --- WebSocket --------------------------------------------------------------------

    async def _serve_ws(self, ws: ServerConnection) -> None:
        self.ws_connections += 1
        self.ws_connected.set()
        with contextlib.suppress(Exception):
            await self.ws_handler(ws)

    async def ws_handler(self, ws: ServerConnection) -> None:
        """Record every message, answer none (protocol pings are still answered)."""
        async for message in ws:
            self.ws_received.append(message)
