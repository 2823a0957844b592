"""The default transport's connection: websockets' own protocol, pushed.

Theory of operation
-------------------
``websockets`` ships its WebSocket state machine without I/O
(:class:`websockets.client.ClientProtocol`: bytes in with ``receive_data``,
handshake response and frames out with ``events_received``, bytes to write
with ``data_to_send``; handshake, framing, masking, ``permessage-deflate``,
size limits, ping answers and the closing handshake are all its own).
:class:`PushWebSocket` is the ``asyncio.Protocol`` around it: each chunk the
socket delivers is parsed at once and every complete message in it goes,
synchronously and in order, to the frame callback the
:class:`~wsmux.connection.Connection` installs with :meth:`start_push` — no
queue, future or task wake-up per message, which is what websockets' asyncio
client costs on every ``recv()`` (about half of the raw client's time on
loopback). What the protocol queues for the peer (a pong, the close answer)
is written after each chunk.

Whole messages are split here, not by the protocol
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
websockets' frame parser is a chain of generators (about a quarter of the
client's time per message on loopback). Almost every frame a venue sends is
one whole, uncompressed text or binary message, whose framing is three
header fields. So once the handshake is done, :meth:`PushWebSocket.data_received`
splits the byte stream into frames itself and hands such a frame's payload
straight over; **every other frame** — ping, pong, close, a fragment, a
compressed (RSV1) or otherwise flagged frame, a masked one — is given to the
protocol *whole*, which parses, checks and answers it as before. The protocol
therefore only ever sees whole frames and is always at a frame boundary:

* the handshake response is handed over exactly up to its blank line (the
  bytes after it are already frames);
* a frame longer than ``max_size`` hands the rest of the stream to the
  protocol, which refuses it (close 1009) as before, so nothing large is
  buffered here;
* between the first and the last frame of a fragmented message, and once the
  connection is no longer OPEN, every frame goes to the protocol (which
  checks their order);
* an uncompressed message needs nothing from ``permessage-deflate`` (its
  decoder returns such frames unchanged and keeps no state for them).

A frame split across chunks waits in a list of parts until its last byte
has arrived (joined once: linear in its size).

States (``websockets.protocol.State``)::

    CONNECTING --handshake response 101--> OPEN --close frame either way--> CLOSING --TCP closed--> CLOSED
        \\--any other response: ``opened`` fails (a 3xx is followed by the caller)

* OPEN: messages before :meth:`start_push` (a venue's first acks) wait in a
  queue that :meth:`recv` drains; text frames stay UTF-8 bytes with
  ``text_as_bytes`` (the JSON parser takes bytes), else are decoded;
  fragmented messages are reassembled.
* Keep-alive: with ``ping_interval``, a ping every interval; no pong within
  the same time drops the connection (``keepalive ping timeout``), as
  websockets' client does.
* CLOSING: a close frame from the venue is answered by the protocol and ends
  the connection for the reader at once (:meth:`wait_closed` returns the
  venue's code and reason); the TCP connection is dropped if the venue does
  not close it within :data:`CLOSE_TIMEOUT` seconds. A protocol violation
  (a frame over ``max_size``, bad framing) is the protocol's close 1002/1009
  and ends the connection the same way.
* Backpressure: :meth:`pause_reading` stops reading the socket (TCP pushes
  back on the venue) until :meth:`resume_reading`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import State
from websockets.uri import WebSocketURI

from wsmux.adapter import Outgoing
from wsmux.errors import ConnectionClosed
from wsmux.transports._delivery import Delivery

__all__ = ["CLOSE_TIMEOUT", "PushWebSocket", "open_push_websocket"]

CLOSE_TIMEOUT = 2.0
"""Seconds the closing handshake may take before the TCP connection is dropped."""

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CONT = Opcode.CONT
_PONG = Opcode.PONG
_CLOSE = Opcode.CLOSE
_OPEN = State.OPEN
_CONNECTING = State.CONNECTING
_MAX_HEAD = 65536
"""Bytes of handshake response looked through for its end; beyond, the
protocol gets the bytes as they come (and refuses the response)."""
_WHOLE_TEXT = 0x81
_WHOLE = (_WHOLE_TEXT, 0x82)
"""First header byte of a whole, uncompressed text/binary message: FIN, no RSV bits."""
_MAX_QUEUE = 1024
"""Messages queued before push mode starts; above it reading pauses until :meth:`PushWebSocket.recv` drains half."""


class PushWebSocket(asyncio.Protocol):
    """One client WebSocket: websockets' :class:`~websockets.client.ClientProtocol`
    driven by asyncio's socket callbacks (see the module docstring). Implements
    :class:`~wsmux.connection.PushConnection`."""

    def __init__(self, protocol: ClientProtocol, text_as_bytes: bool, max_size: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._ws = protocol
        self._text_as_bytes = text_as_bytes
        self._max_size = max_size if max_size is not None else 1 << 62
        self._splitting: bool | None = None
        """True: frames are split here (module docstring); False: the protocol
        parses every byte; None: the handshake response is being read."""
        self._head = b""
        self._parts: list[bytes] = []
        """A frame split across chunks, until ``_parts_need`` bytes are there."""
        self._parts_len = 0
        self._parts_need = 0
        self._in_fragments = False
        self._transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        """Done when the handshake succeeded; its exception when it failed."""
        self.opened.add_done_callback(_retrieved)  # a connect that timed out awaits it no more
        self.closed: str | None = None
        """Why the connection ended (None while open)."""
        self._closed_event = asyncio.Event()
        self._delivery = Delivery(self._drop)
        """The frame handler of push mode, or the messages held (see :mod:`._delivery`)."""
        self._waiter: asyncio.Future[None] | None = None
        self._queue_paused = False
        self._fragments: list[bytes] | None = None
        self._fragmented_text = False
        self._pong: tuple[bytes, asyncio.Future[None]] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._lost = asyncio.Event()

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        request = self._ws.connect()
        request.headers["User-Agent"] = USER_AGENT
        self._ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self._splitting:
            self._split(data)
        elif self._splitting is None and self._ws.state is _CONNECTING:
            self._read_head(data)
        else:
            self._parse(data)

    def _read_head(self, data: bytes) -> None:
        """The handshake response: the protocol gets exactly its bytes, the
        frames after it are split here."""
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > _MAX_HEAD:
                self._head = b""
                self._splitting = False
                self._parse(head)
            else:
                self._head = head
            return
        self._head = b""
        self._parse(head[: end + 4])
        rest = head[end + 4 :]
        self._splitting = self._ws.state is _OPEN and self.closed is None
        if rest:
            self.data_received(rest)

    def _split(self, data: bytes) -> None:
        """Split ``data`` (after any frame it completes) into frames: a whole
        plain message to the handler, any other frame to the protocol."""
        if self._parts:
            self._parts.append(data)
            self._parts_len += len(data)
            if self._parts_len < self._parts_need:
                return
            data = b"".join(self._parts)
            self._parts = []
        size = len(data)
        pos = 0
        need = 0
        put = self._delivery.put
        text_as_bytes = self._text_as_bytes
        max_size = self._max_size
        while True:
            left = size - pos
            if left < 2:
                need = 2
                break
            first = data[pos]
            length = data[pos + 1]
            head = 2
            masked = length & 0x80
            if masked:  # a server must not mask: the protocol gets it, and says so
                head = 6
                length &= 0x7F
            if length == 126:
                if left < 4:
                    need = 4
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                head += 2
            elif length == 127:
                if left < 10:
                    need = 10
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head += 8
            if length > max_size:  # the protocol refuses it (close 1009): nothing large waits here
                self._splitting = False
                self._parse(data[pos:])
                return
            end = pos + head + length
            if end > size:
                need = end - pos
                break
            if first in _WHOLE and not masked and not self._in_fragments:
                payload: Any = data[pos + head : end]
                if first == _WHOLE_TEXT and not text_as_bytes:
                    payload = payload.decode("utf-8", errors="replace")
                if not put(payload):
                    self._held()
            else:  # a control frame, a fragment, a compressed or flagged frame: the protocol's
                opcode = first & 0x0F
                if opcode in (1, 2):  # text, binary: the first frame of a fragmented or compressed message
                    self._in_fragments = not first & 0x80
                elif opcode == 0 and first & 0x80:
                    self._in_fragments = False
                self._parse(data[pos:end])
                if self._ws.state is not _OPEN or self.closed is not None:
                    self._splitting = False
                    if end < size:
                        self._parse(data[end:])
                    return
            pos = end
        if pos < size:
            self._parts = [data[pos:] if pos else data]
            self._parts_len = size - pos
            self._parts_need = need

    def _parse(self, data: bytes) -> None:
        """The protocol parses ``data``; what it yields is handled."""
        ws = self._ws
        ws.receive_data(data)
        put = self._delivery.put  # to the handler; False: held (before push mode, reading paused)
        for event in ws.events_received():
            if type(event) is Frame:
                opcode = event.opcode
                if (opcode is _TEXT or opcode is _BINARY) and event.fin:  # the common case: one whole message
                    payload: Any = event.data
                    if opcode is _TEXT and not self._text_as_bytes:
                        payload = bytes(payload).decode("utf-8", errors="replace")
                    elif type(payload) is not bytes:
                        payload = bytes(payload)
                    if not put(payload):
                        self._held()
                else:
                    self._other_frame(event)
            elif type(event) is Response:
                self._handshake_done()
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        ws = self._ws
        ws.receive_eof()  # idempotent; moves the protocol to CLOSED
        if self.closed is None:
            self.closed = self._close_reason() or (f"connection lost: {exc}" if exc is not None else "connection lost")
        if not self.opened.done():
            self.opened.set_exception(ConnectionClosed(self.closed))
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if self._pong is not None and not self._pong[1].done():
            self._pong[1].cancel()
        self._lost.set()
        self._wake()

    def pause_writing(self) -> None:  # the few messages wsmux sends never fill the socket
        pass

    def resume_writing(self) -> None:
        pass

    # --- PushConnection --------------------------------------------------------------

    def start_push(self, on_frame: Callable[[bytes | str], None]) -> None:
        """From now on hand every message to ``on_frame`` as it is parsed;
        messages already queued go first, in order."""
        delivery = self._delivery
        delivery.start(on_frame)
        if self._queue_paused and not delivery.paused:
            self._queue_paused = False
            self._resume_socket()

    def pause_reading(self) -> None:
        """Stop handing messages over and stop reading the socket (TCP pushes
        back on the venue). Messages of the chunk being parsed that the handler
        has not seen yet wait, and go first on :meth:`resume_reading`: nothing
        more reaches it after the message that paused."""
        self._delivery.pause()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_reading(self) -> None:
        delivery = self._delivery
        delivery.resume()
        if not delivery.paused:
            self._resume_socket()

    async def recv(self) -> bytes | str:
        """The next message (before :meth:`start_push`)."""
        queue = self._delivery.queue
        while not queue:
            if self.closed is not None:
                raise ConnectionClosed(self.closed)
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        payload = queue.popleft()
        if self._queue_paused and len(queue) <= _MAX_QUEUE // 2:
            self._queue_paused = False
            self._resume_socket()
        return payload

    async def wait_closed(self) -> str:
        """Wait until the connection is over for the reader; return why."""
        await self._closed_event.wait()
        return self.closed or "connection lost"

    async def send(self, message: Outgoing) -> None:
        ws = self._ws
        if self.closed is not None or ws.state is not _OPEN:
            raise ConnectionClosed(self.closed or f"connection is {ws.state.name.lower()}")
        if isinstance(message, str):
            ws.send_text(message.encode())
        else:
            ws.send_binary(message)
        self._flush()

    async def close(self) -> None:
        """Close with code 1000 and wait (at most :data:`CLOSE_TIMEOUT` s) for the TCP connection to end."""
        if self.closed is None:
            self.closed = "closed by the client"
        ws = self._ws
        if ws.state is _OPEN:
            ws.send_close(1000)
            self._flush()
        self._wake()
        transport = self._transport
        if transport is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):  # not wait_for: on 3.11 it can swallow a cancellation
                await self._lost.wait()
        except TimeoutError:  # a black-holed peer never completes the closing handshake
            transport.abort()
        except asyncio.CancelledError:
            transport.abort()
            raise

    # --- keep-alive ------------------------------------------------------------------

    def start_keepalive(self, interval: float) -> None:
        """Ping every ``interval`` seconds; no pong within as long drops the connection."""
        self._keepalive = self._loop.create_task(self._ping_loop(interval), name="wsmux-ws-keepalive")

    async def _ping_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.closed is not None or self._ws.state is not _OPEN:
                return
            payload = os.urandom(4)
            answered: asyncio.Future[None] = self._loop.create_future()
            self._pong = (payload, answered)
            self._ws.send_ping(payload)
            self._flush()
            try:
                async with asyncio.timeout(interval):
                    await answered
            except TimeoutError:
                self._drop(f"keepalive ping timeout: no pong within {interval:g} s")
                return
            finally:
                self._pong = None

    # --- internals -------------------------------------------------------------------

    def _deliver(self, payload: bytes | str) -> None:
        """To the handler, or held (before push mode, while reading is paused)."""
        if not self._delivery.put(payload):
            self._held()

    def _held(self) -> None:
        """A message was held: before push mode, a full queue pauses reading
        until :meth:`recv` drains half; a waiting :meth:`recv` wakes."""
        if self._delivery.handler is None and len(self._delivery.queue) >= _MAX_QUEUE and not self._queue_paused:
            self._queue_paused = True  # before push mode: until recv() drains half
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
        self._wake()

    def _resume_socket(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _other_frame(self, frame: Frame) -> None:
        """A fragment, a pong or a close frame (pings are answered by the protocol)."""
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:  # the first fragment
            self._fragments = [bytes(frame.data)]
            self._fragmented_text = opcode is _TEXT
        elif opcode is _CONT:  # the protocol has checked a first fragment came before
            fragments = self._fragments
            if fragments is None:
                return
            fragments.append(bytes(frame.data))
            if frame.fin:
                self._fragments = None
                payload = b"".join(fragments)
                if self._fragmented_text and not self._text_as_bytes:
                    self._deliver(payload.decode("utf-8", errors="replace"))
                else:
                    self._deliver(payload)
        elif opcode is _PONG:
            pong = self._pong
            if pong is not None and frame.data == pong[0] and not pong[1].done():
                pong[1].set_result(None)
        elif opcode is _CLOSE:
            if self.closed is None:
                self.closed = self._close_reason()
            self._wake()

    def _handshake_done(self) -> None:
        if self.opened.done():
            return
        error = self._ws.handshake_exc
        if error is None:
            self.opened.set_result(None)
        else:
            self.opened.set_exception(error)

    def _close_reason(self) -> str | None:
        ws = self._ws
        received = ws.close_rcvd
        if received is not None:
            return f"closed by the venue: {int(received.code)} {received.reason}".rstrip()
        if ws.parser_exc is not None:
            return f"protocol error: {type(ws.parser_exc).__name__}: {ws.parser_exc}"
        return None

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or self._lost.is_set():
            return
        ws = self._ws
        for chunk in ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():  # the protocol is done writing
                transport.write_eof()
        if ws.close_expected() and self._abort_timer is None and not transport.is_closing():
            if self.closed is None:
                self.closed = self._close_reason()
            self._abort_timer = self._loop.call_later(CLOSE_TIMEOUT, transport.abort)
            self._wake()

    def _drop(self, reason: str) -> None:
        """End the connection now (keep-alive timeout, a failing consumer)."""
        if self.closed is None:
            self.closed = reason
        with contextlib.suppress(Exception):
            if self._ws.state is _OPEN:
                self._ws.send_close(1011 if reason.startswith("frame handler") else 1001)
                self._flush()
        if self._transport is not None:
            self._transport.abort()
        self._wake()

    def _wake(self) -> None:
        if self.closed is not None:
            self._closed_event.set()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def open_push_websocket(
    uri: WebSocketURI, *, max_size: int, ping_interval: float | None, text_as_bytes: bool
) -> PushWebSocket:
    """Connect to ``uri`` and complete the opening handshake (the caller bounds
    the time). ``permessage-deflate`` is offered as websockets' client offers it.

    Raises:
        OSError: the TCP or TLS connection failed.
        websockets.exceptions.InvalidHandshake: the venue refused the handshake
            (``InvalidStatus`` carries its HTTP response: a redirect is the caller's to follow).
        ConnectionClosed: the connection ended during the handshake.
    """
    protocol = ClientProtocol(uri, extensions=enable_client_permessage_deflate(None), max_size=max_size)
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context() if uri.secure else None
    transport, conn = await loop.create_connection(
        lambda: PushWebSocket(protocol, text_as_bytes, max_size),
        uri.host,
        uri.port,
        ssl=context,
        server_hostname=uri.host if context is not None else None,
    )
    try:
        await conn.opened
    except BaseException:
        transport.abort()
        raise
    if ping_interval is not None and ping_interval > 0:
        conn.start_keepalive(ping_interval)
    return conn
