"""The default transport against real websockets servers on 127.0.0.1: the
push connection (websockets' protocol driven by socket callbacks) and where it
hands over to websockets' asyncio client (redirects, proxies, ``push=False``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from wsmux._aio import reap
from wsmux.connection import WebsocketsTransport, _WsConn, describe_connect_error
from wsmux.errors import ConnectionClosed, TransportError
from wsmux.transports._websockets_push import PushWebSocket

TIMEOUT = 5.0
Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


@asynccontextmanager
async def raw_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A TCP server whose WebSocket side the test writes by hand (see :func:`accept_by_hand`)."""
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with srv:
        yield f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/"


async def open_push(url: str, **kwargs: Any) -> PushWebSocket:
    conn = await WebsocketsTransport(**{k: v for k, v in kwargs.items() if k == "max_size"}).connect(
        url,
        open_timeout=TIMEOUT,
        ws_ping_interval=kwargs.get("ws_ping_interval"),
        text_as_bytes=kwargs.get("text_as_bytes", True),
    )
    assert isinstance(conn, PushWebSocket)
    return conn


class Collector:
    """A frame callback that wakes the test once ``n`` messages came."""

    def __init__(self, n: int) -> None:
        self.messages: list[bytes | str] = []
        self.n = n
        self.done = asyncio.Event()

    def __call__(self, message: bytes | str) -> None:
        self.messages.append(message)
        if len(self.messages) >= self.n:
            self.done.set()

    async def wait(self) -> list[bytes | str]:
        await asyncio.wait_for(self.done.wait(), TIMEOUT)
        return self.messages


class PausingCollector(Collector):
    """A :class:`Collector` that pauses ``conn``'s reading on the message ``on``."""

    def __init__(self, n: int, conn: PushWebSocket, on: bytes) -> None:
        super().__init__(n)
        self.conn = conn
        self.on = on
        self.paused = asyncio.Event()

    def __call__(self, message: bytes | str) -> None:
        super().__call__(message)
        if message == self.on:
            self.conn.pause_reading()
            self.paused.set()


async def test_messages_reach_the_frame_callback_in_order_as_bytes() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("first")  # before the client starts pushing: queued, read with recv()
        await ws.recv()
        await ws.send(b"\x00\x01")
        await ws.send(["frag", "mented"])  # one text message in three frames
        for i in range(500):
            await ws.send(f'{{"i":{i}}}')
        await ws.wait_closed()

    async with server(handler) as url:
        conn = await open_push(url)
        assert await conn.recv() == b"first"
        collect = Collector(502)
        conn.start_push(collect)
        await conn.send("go")
        messages = await collect.wait()
        assert messages[:2] == [b"\x00\x01", b"fragmented"]
        assert messages[2:] == [f'{{"i":{i}}}'.encode() for i in range(500)]
        await conn.close()
        assert conn.closed == "closed by the client"


async def test_text_frames_as_str_when_asked() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("é")
        await ws.send(["a", "b"])
        await ws.wait_closed()

    async with server(handler) as url:
        conn = await open_push(url, text_as_bytes=False)
        collect = Collector(2)
        conn.start_push(collect)
        assert await collect.wait() == ["é", "ab"]
        await conn.close()


async def test_compressed_messages_arrive_inflated() -> None:
    big = '{"bids":[' + ",".join(f'["{i}.5","1"]' for i in range(20_000)) + "]}"
    negotiated: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        negotiated.extend(ext.name for ext in ws.protocol.extensions)
        await ws.send(big)
        await ws.wait_closed()

    async with server(handler, compression="deflate") as url:
        conn = await open_push(url)
        collect = Collector(1)
        conn.start_push(collect)
        assert await collect.wait() == [big.encode()]
        assert negotiated == ["permessage-deflate"]
        await conn.close()


async def test_a_venue_close_ends_the_connection_with_its_code_and_reason() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("last")
        await ws.close(1001, "going away")

    async with server(handler) as url:
        conn = await open_push(url)
        collect = Collector(1)
        conn.start_push(collect)
        reason = await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
        assert reason == "closed by the venue: 1001 going away"
        assert await collect.wait() == [b"last"]
        with pytest.raises(ConnectionClosed, match="1001 going away"):
            await conn.send("too late")
        await conn.close()  # after the venue's close: returns, nothing left to do


async def test_the_venue_s_pings_are_answered() -> None:
    async def handler(ws: ServerConnection) -> None:
        pong = await ws.ping()
        await asyncio.wait_for(pong, TIMEOUT)
        await ws.send("pong came")
        await ws.wait_closed()

    async with server(handler) as url:
        conn = await open_push(url)
        collect = Collector(1)
        conn.start_push(collect)
        assert await collect.wait() == [b"pong came"]
        await conn.close()


async def accept_by_hand(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, then: bytes = b"") -> None:
    """The server side of the opening handshake, written out (RFC 6455 4.2.2);
    ``then`` goes in the same write, right after the response."""
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + then
    )


def text_frame(payload: bytes) -> bytes:
    return bytes([0x81, len(payload)]) + payload  # FIN + text, unmasked (server to client), < 126 bytes


async def test_keepalive_pings_and_a_missing_pong_drops_the_connection() -> None:
    """A server that completes the handshake and then reads nothing: the
    client's ping gets no pong and the connection is dropped."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_by_hand(reader, writer)
        await reader.read()  # the client's pings, never answered, until it drops the connection
        writer.close()

    async with raw_server(silent) as url:
        conn = await open_push(url, ws_ping_interval=0.05)
        reason = await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
        assert reason == "keepalive ping timeout: no pong within 0.05 s"


async def test_a_message_over_max_size_fails_the_connection() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("x" * 5000)
        await ws.wait_closed()

    async with server(handler) as url:
        conn = await open_push(url, max_size=1000)
        collect = Collector(1)
        conn.start_push(collect)
        reason = await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
        assert reason.startswith("protocol error: PayloadTooBig") and collect.messages == []
        await conn.close()


async def test_a_frame_handler_that_raises_drops_the_connection() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("boom")
        await ws.wait_closed()

    def explode(message: bytes | str) -> None:
        raise RuntimeError("consumer bug")

    async with server(handler) as url:
        conn = await open_push(url)
        conn.start_push(explode)
        reason = await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
        assert reason == "frame handler raised RuntimeError: consumer bug"


async def test_pause_reading_stops_the_socket_until_resumed() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("one")
        await ws.recv()  # "resumed": the client reads again
        await ws.send("two")
        await ws.wait_closed()

    async with server(handler) as url:
        conn = await open_push(url)
        collect = PausingCollector(2, conn, on=b"one")
        conn.start_push(collect)
        await asyncio.wait_for(collect.paused.wait(), TIMEOUT)
        transport = conn._transport
        assert transport is not None and not transport.is_reading()
        conn.resume_reading()
        assert transport.is_reading()
        await conn.send("resumed")
        assert await collect.wait() == [b"one", b"two"]
        await conn.close()


async def test_nothing_reaches_the_handler_after_the_message_that_paused_reading() -> None:
    """Three messages in one TCP write, so in one parsed chunk: the handler
    pauses on the first, and the other two wait until it resumes (a BLOCK
    stream's promise: at most the frame that filled it)."""
    release = asyncio.Event()

    async def burst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_by_hand(reader, writer)
        await reader.readexactly(2 + 4 + 2)  # the client's masked "go": it is pushing now
        writer.write(text_frame(b"one") + text_frame(b"two") + text_frame(b"three"))
        await release.wait()
        writer.close()

    async with raw_server(burst) as url:
        conn = await open_push(url)
        collect = PausingCollector(3, conn, on=b"one")
        conn.start_push(collect)
        await conn.send("go")
        await asyncio.wait_for(collect.paused.wait(), TIMEOUT)
        assert collect.messages == [b"one"]  # the rest of the chunk waits
        conn.resume_reading()
        assert await collect.wait() == [b"one", b"two", b"three"]
        release.set()
        await conn.close()


async def test_a_handler_that_stops_the_loop_gets_nothing_more() -> None:
    """SystemExit from the handler propagates out of the socket callback (it
    stops the event loop) and ends the connection: a loop run again to clean up
    (the sync facade's) hands the handler nothing more."""
    release = asyncio.Event()

    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_by_hand(reader, writer)
        await release.wait()
        writer.close()

    async with raw_server(quiet) as url:
        conn = await open_push(url)
        got: list[bytes | str] = []

        def exits(message: bytes | str) -> None:
            got.append(message)
            raise SystemExit(3)

        conn.start_push(exits)
        with pytest.raises(SystemExit):  # the chunk the socket would hand over, two messages in it
            conn.data_received(text_frame(b"one") + text_frame(b"two"))
        assert got == [b"one"] and conn.closed == "frame handler stopped the event loop"
        release.set()
        await conn.close()


async def test_a_refused_handshake_is_a_transport_error_that_names_the_status() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(HTTPStatus.FORBIDDEN, "geo-blocked\n")

    async def handler(ws: ServerConnection) -> None:  # never reached
        await ws.wait_closed()

    async with server(handler, process_request=refuse) as url:
        with pytest.raises(TransportError) as info:
            await open_push(url)
        assert describe_connect_error(info.value).startswith("handshake rejected with HTTP 403")


async def test_a_redirect_is_followed_by_websockets_client() -> None:
    async def target(ws: ServerConnection) -> None:
        await ws.send("moved here")
        await ws.wait_closed()

    async with server(target) as target_url:

        def redirect(connection: ServerConnection, request: Request) -> Response:
            return Response(301, "Moved Permanently", Headers([("Location", target_url), ("Content-Length", "0")]))

        async with server(target, process_request=redirect) as url:
            conn = await WebsocketsTransport().connect(url, open_timeout=TIMEOUT, ws_ping_interval=None)
            assert isinstance(conn, _WsConn)
            assert await conn.recv() == b"moved here"
            await conn.close()


async def test_push_false_uses_websockets_client() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("hi")
        await ws.wait_closed()

    async with server(handler) as url:
        conn = await WebsocketsTransport(push=False).connect(url, open_timeout=TIMEOUT, ws_ping_interval=None)
        assert isinstance(conn, _WsConn) and await conn.recv() == b"hi"
        await conn.close()


async def test_a_configured_proxy_leaves_the_connection_to_websockets_client(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("websockets.proxy", reason="websockets < 15 has no proxy support: every URL is direct")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # websockets reads the standard variables
    transport = WebsocketsTransport()
    assert await transport._connect_push("ws://venue.example/ws", None, True) is None


async def test_reap_lets_a_cancellation_of_the_caller_through() -> None:
    """Closing a connection cancels its tasks and waits for them; if the closer
    is itself cancelled meanwhile (a shard closing while its rollover closes a
    connection), that cancellation must reach it, not be swallowed."""
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # its clean-up takes a while
            raise

    inner = asyncio.create_task(slow_to_stop())
    at_reap = asyncio.Event()

    async def closer() -> str:
        inner.cancel()
        at_reap.set()
        await reap(inner)
        return "went on"

    outer = asyncio.create_task(closer())
    await asyncio.wait_for(at_reap.wait(), TIMEOUT)
    outer.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert inner.cancelled()


# --- frames split by the transport (module docstring: "Whole messages are split here") ---


def server_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    """One server frame, with the length in the 7-, 16- or 64-bit form its size needs."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 65536:
        head = bytes([first, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


MIXED_STREAM = b"".join(
    [
        server_frame(1, b"a"),
        server_frame(2, bytes(range(200))),  # 16-bit length
        server_frame(1, b"x" * 70_000),  # 64-bit length
        server_frame(9, b"p1"),  # a ping: the protocol answers it
        server_frame(1, b"he", fin=False),  # a fragmented message, a ping inside it
        server_frame(0, b"ll", fin=False),
        server_frame(9, b"p2"),
        server_frame(0, b"o"),
        server_frame(1, b""),  # empty
        server_frame(1, b"z"),
    ]
)
MIXED_MESSAGES = [b"a", bytes(range(200)), b"x" * 70_000, b"hello", b"", b"z"]


class Written:
    """What the client wrote to a recording server, with a wait for a condition on it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.grew = asyncio.Event()

    async def until(self, condition: Callable[[bytes], bool]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not condition(bytes(self.data)):
                self.grew.clear()
                await self.grew.wait()


@asynccontextmanager
async def idle_push_connection(**kwargs: Any) -> AsyncIterator[tuple[PushWebSocket, Written]]:
    """A push connection after a real handshake with a server that then only
    records what the client writes: the test feeds the connection's protocol
    chunks it chooses (so every split is deterministic)."""
    written = Written()
    release = asyncio.Event()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_by_hand(reader, writer)

        async def read_all() -> None:
            while chunk := await reader.read(65536):
                written.data.extend(chunk)
                written.grew.set()

        reading = asyncio.ensure_future(read_all())
        await release.wait()
        writer.close()  # the end of the test: the client sees the TCP connection go
        await reap(reading)

    async with raw_server(record) as url:
        conn = await open_push(url, **kwargs)
        try:
            yield conn, written
        finally:
            release.set()
            await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
            await conn.close()


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 126, 4096, len(MIXED_STREAM)])
async def test_frames_split_anywhere_are_delivered_whole_and_in_order(chunk: int) -> None:
    """Every frame form, split at every kind of boundary (inside a header, its
    extended length, its payload): the plain messages go straight through,
    pings and fragments go to the protocol, and the order holds."""
    async with idle_push_connection() as (conn, written):
        collect = Collector(len(MIXED_MESSAGES))
        conn.start_push(collect)
        for start in range(0, len(MIXED_STREAM), chunk):
            conn.data_received(MIXED_STREAM[start : start + chunk])
        assert await collect.wait() == MIXED_MESSAGES
        assert conn._splitting and not conn._parts and not conn._in_fragments
        # both pings answered: two masked pongs of 2 bytes (0x8A, then 0x80 | 2)
        await written.until(lambda data: data.count(bytes([0x8A, 0x82])) == 2)


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        (server_frame(1, b"m", mask=b"\x01\x02\x03\x04"), "incorrect masking"),
        (server_frame(1, b"r", rsv=0x20), "reserved bits must be 0"),
        (server_frame(1, b"he", fin=False) + server_frame(1, b"interloper"), "expected a continuation frame"),
    ],
)
async def test_a_bad_frame_goes_to_the_protocol_which_fails_the_connection(frames: bytes, error: str) -> None:
    async with idle_push_connection() as (conn, _written):
        collect = Collector(2)
        conn.start_push(collect)
        conn.data_received(server_frame(1, b"before") + frames + server_frame(1, b"after"))
        reason = await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
        assert reason.startswith("protocol error") and error in reason, reason
        assert collect.messages == [b"before"]  # nothing after the bad frame
        assert not conn._splitting


async def test_a_header_over_max_size_fails_at_once_without_waiting_for_the_payload() -> None:
    async with idle_push_connection(max_size=1000) as (conn, _written):
        conn.start_push(Collector(1))
        header = server_frame(2, bytes(5000))[:4]  # 0x82, 126, and the 16-bit length 5000: no payload yet
        conn.data_received(header)
        reason = await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
        assert "PayloadTooBig" in reason, reason
        assert not conn._parts  # nothing held waiting for 5000 bytes


async def test_the_frames_sent_with_the_handshake_response_are_split_too() -> None:
    """The response and the first frames in one write: the protocol gets the
    response up to its blank line, the frames after it are split here."""
    release = asyncio.Event()

    async def eager(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_by_hand(reader, writer, then=text_frame(b"first") + text_frame(b"second"))
        await release.wait()
        writer.close()

    async with raw_server(eager) as url:
        conn = await open_push(url)
        assert conn._splitting
        assert [await conn.recv(), await conn.recv()] == [b"first", b"second"]
        release.set()
        await conn.close()
