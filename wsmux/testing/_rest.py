"""A small HTTP/1.1 server on 127.0.0.1 for mocks whose venue has POST endpoints.

The mock WebSocket server (:mod:`wsmux.testing._server`) answers plain HTTP
GETs on its own port, but its HTTP parser takes GETs only. Venues with POST
endpoints (KuCoin's bullet, Hyperliquid's ``POST /info``) serve REST from a
:class:`RestServer` on a port of its own: one request per connection
(``Connection: close``), the body read by ``Content-Length`` and given to the
answer function.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from wsmux.testing._server import MockExchange

__all__ = ["RestAnswer", "RestServedMock", "RestServer"]

RestAnswer = Callable[[str, str, dict[str, str], bytes], "tuple[int, bytes] | None"]
"""``(method, path, query, body)`` → ``(status, body)``, or None for 404."""


class RestServer:
    """HTTP server answering every request with ``answer``.

    Args:
        answer: the answer function (see :data:`RestAnswer`).
        not_found: the body of a 404.
        delay: seconds to wait before answering, read per request (a mock's
            ``faults.snapshot_delay``).
    """

    def __init__(self, answer: RestAnswer, *, not_found: bytes, delay: Callable[[], float] = lambda: 0.0) -> None:
        self.answer = answer
        self.not_found = not_found
        self.delay = delay
        self._server: asyncio.Server | None = None

    async def start(self, host: str) -> None:
        """Listen on ``host`` at a free port."""
        self._server = await asyncio.start_server(self._serve, host, 0)

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            parts = urlsplit(target)
            delay = self.delay()
            if delay:
                await asyncio.sleep(delay)
            answer = self.answer(method, parts.path, dict(parse_qsl(parts.query)), body)
            status, content = answer if answer is not None else (404, self.not_found)
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(content)}\r\nConnection: close\r\n\r\n".encode()
                + content
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class RestServedMock(MockExchange):
    """A mock whose REST endpoints are served by a :class:`RestServer` (set
    ``self._rest`` in ``__init__``): started and stopped with the mock, and
    :attr:`rest_url` points at it."""

    _rest: RestServer

    async def start(self) -> None:
        await super().start()
        await self._rest.start(self.host)

    async def stop(self) -> None:
        await self._rest.stop()
        await super().stop()

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self._rest.port}"
