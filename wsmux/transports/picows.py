"""A faster WebSocket transport on ``picows`` (a Cython WebSocket client).

``picows`` parses frames in C and calls a listener per frame, with no task
or future per message. :class:`PicowsTransport` adapts it to the
:class:`~wsmux.connection.Transport` protocol the
:class:`~wsmux.connection.Connection` pumps:

* ``recv()`` returns each message's payload as ``bytes`` (text frames too,
  undecoded, like the default transport, unless the connection was opened
  with ``text_as_bytes=False``); fragmented messages are reassembled;
* received messages wait in a queue; above ``max_queue`` messages the socket
  stops reading (TCP pushes back on the venue) until ``recv`` drains it to
  half, so a slow consumer never makes the process grow without bound;
* in push mode (:meth:`_PicowsConn.start_push`) each message goes to the
  frame handler as it is parsed; pausing reading also holds the frames
  already parsed from the same read, so nothing reaches the handler after
  the message that paused;
* WebSocket pings from the venue are answered by ``picows``
  (``enable_auto_pong``); with ``ws_ping_interval`` set, the client pings
  after that many idle seconds and drops the connection when no pong comes
  within the same time;
* a close frame from the venue is answered and ends the connection:
  ``recv`` then raises :class:`~wsmux.errors.ConnectionClosed` with the
  venue's code and reason.

It does not negotiate ``permessage-deflate`` (``picows`` has no compression):
venues that compress only on request send plain frames, which costs bandwidth
and saves the inflate.

Install with ``pip install 'wsmux[fast]'`` and select it per multiplexer::

    async with Multiplexer(transport=PicowsTransport()) as mux: ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from wsmux.adapter import Outgoing
from wsmux.connection import TransportConnection
from wsmux.errors import ConnectionClosed, ConnectTimeout, TransportError
from wsmux.transports._delivery import Delivery

__all__ = ["PicowsTransport"]

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


class _Listener(WSListener):  # type: ignore[misc,unused-ignore]  # Any when picows has no types
    """Collects the messages of one connection for :class:`_PicowsConn`."""

    def __init__(self, max_queue: int, text_as_bytes: bool) -> None:
        self.delivery = Delivery(self._handler_failed)
        """The frame handler of push mode, or the messages held (see :mod:`._delivery`)."""
        self.queue = self.delivery.queue
        self.text_as_bytes = text_as_bytes
        self.waiter: asyncio.Future[None] | None = None
        self.closed: str | None = None
        self.transport: WSTransport | None = None
        self.fragments: list[bytes] | None = None
        self.fragmented_text = False
        self.max_queue = max_queue
        self.paused = False
        self.pauses = 0
        """How many times the queue filled and reading stopped (backpressure)."""
        self.closed_event = asyncio.Event()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _TEXT or kind is _BINARY:
            if frame.fin:
                if kind is _TEXT and not self.text_as_bytes:
                    self._push(frame.get_payload_as_utf8_text())
                else:
                    self._push(frame.get_payload_as_bytes())
            else:
                self.fragments = [frame.get_payload_as_bytes()]
                self.fragmented_text = kind is _TEXT
        elif kind is _CONTINUATION:
            if self.fragments is None:
                self._fail(transport, "continuation frame without a first fragment")
                return
            self.fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload = b"".join(self.fragments)
                self.fragments = None
                if self.fragmented_text and not self.text_as_bytes:
                    self._push(payload.decode("utf-8", errors="replace"))
                else:
                    self._push(payload)
        elif kind is _CLOSE:
            code = frame.get_close_code()
            reason = frame.get_close_reason() if frame.payload_size > 2 else ""
            self.closed = f"closed by the venue: {getattr(code, 'value', code)} {reason}".rstrip()
            with contextlib.suppress(Exception):
                transport.send_close(code if isinstance(code, WSCloseCode) else WSCloseCode.OK)
            transport.disconnect()
            self._wake()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.closed is None:
            self.closed = "connection lost"
        self._wake()

    def _push(self, payload: bytes | str) -> None:
        delivery = self.delivery
        if delivery.put(payload):
            return
        before_push = delivery.handler is None
        if before_push and len(self.queue) >= self.max_queue and not self.paused and self.transport is not None:
            self.paused = True
            self.pauses += 1
            self.transport.underlying_transport.pause_reading()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _handler_failed(self, reason: str) -> None:
        if self.transport is not None:
            self._fail(self.transport, reason)

    def _wake(self) -> None:
        if self.closed is not None:
            self.closed_event.set()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, transport: WSTransport, reason: str) -> None:
        self.closed = f"protocol error: {reason}"
        with contextlib.suppress(Exception):
            transport.send_close(WSCloseCode.PROTOCOL_ERROR)
        transport.disconnect()
        self._wake()


class _PicowsConn:
    """An open ``picows`` connection as the Connection sees it."""

    __slots__ = ("_listener", "_transport")

    def __init__(self, transport: WSTransport, listener: _Listener) -> None:
        self._transport = transport
        self._listener = listener

    async def recv(self) -> bytes | str:
        listener = self._listener
        queue = listener.queue
        while not queue:
            if listener.closed is not None:
                raise ConnectionClosed(listener.closed)
            listener.waiter = asyncio.get_running_loop().create_future()
            try:
                await listener.waiter
            finally:
                listener.waiter = None
        payload = queue.popleft()
        if listener.paused and len(queue) <= listener.max_queue // 2:
            listener.paused = False
            if not self._transport.is_disconnected:
                self._transport.underlying_transport.resume_reading()
        return payload

    # --- push mode (see wsmux.connection.PushConnection) ---------------------------

    def start_push(self, on_frame: Callable[[bytes | str], None]) -> None:
        """From now on hand every message to ``on_frame`` as it is decoded;
        messages already queued go first, in order."""
        listener = self._listener
        listener.delivery.start(on_frame)
        if listener.paused and not listener.delivery.paused:
            listener.paused = False
            self._resume_socket()

    def pause_reading(self) -> None:
        """Stop handing messages over and stop reading the socket (TCP pushes
        back on the venue). Frames of the buffer being parsed that the handler
        has not seen yet wait, and go first on :meth:`resume_reading`: nothing
        more reaches it after the message that paused."""
        self._listener.delivery.pause()
        if not self._transport.is_disconnected:
            self._transport.underlying_transport.pause_reading()

    def resume_reading(self) -> None:
        delivery = self._listener.delivery
        delivery.resume()
        if not delivery.paused:
            self._resume_socket()

    def _resume_socket(self) -> None:
        if not self._transport.is_disconnected:
            self._transport.underlying_transport.resume_reading()

    async def wait_closed(self) -> str:
        """Wait until the connection is gone; return why."""
        listener = self._listener
        if listener.closed is None:
            await listener.closed_event.wait()
        return listener.closed or "connection lost"

    async def send(self, message: Outgoing) -> None:
        if self._listener.closed is not None or self._transport.is_disconnected:
            raise ConnectionClosed(self._listener.closed or "connection is closed")
        try:
            if isinstance(message, str):
                self._transport.send(_TEXT, message.encode())
            else:
                self._transport.send(_BINARY, message)
        except Exception as exc:
            raise ConnectionClosed(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        transport = self._transport
        if self._listener.closed is None:
            self._listener.closed = "closed by the client"
        with contextlib.suppress(Exception):
            if not transport.is_disconnected:
                transport.send_close(WSCloseCode.OK)
                transport.disconnect()
            async with asyncio.timeout(2.0):  # not wait_for: on 3.11 it can lose a cancel
                await transport.wait_disconnected()
        self._listener._wake()


class PicowsTransport:
    """Opens WebSockets with ``picows``. See the module docstring.

    Args:
        max_size: largest message accepted, bytes (full-depth snapshots
            exceed 1 MiB; the default matches the websockets transport).
        max_queue: received messages held before the socket stops reading.
        use_aiofastnet: let ``picows`` use ``aiofastnet`` sockets (``None``:
            picows' default, which uses it when installed).
    """

    def __init__(
        self, *, max_size: int = 64 * 2**20, max_queue: int = 65536, use_aiofastnet: bool | None = None
    ) -> None:
        if max_queue < 2:
            raise ValueError("max_queue must be at least 2")
        self.max_size = max_size
        self.max_queue = max_queue
        self.use_aiofastnet = use_aiofastnet

    async def connect(
        self, url: str, *, open_timeout: float, ws_ping_interval: float | None, text_as_bytes: bool = True
    ) -> TransportConnection:
        """Open ``url`` (see :class:`~wsmux.connection.Transport`); text frames
        come as UTF-8 bytes with ``text_as_bytes``, else as str."""
        ping = ws_ping_interval is not None and ws_ping_interval > 0
        interval = ws_ping_interval if ping and ws_ping_interval is not None else 20.0
        max_queue = self.max_queue
        extra: dict[str, Any] = {}
        if self.use_aiofastnet is not None:
            extra["use_aiofastnet"] = self.use_aiofastnet
        try:
            # not wait_for: on 3.11 a cancel that lands as the connection
            # opens is lost, and the cancelled caller goes on with a socket
            async with asyncio.timeout(open_timeout):
                transport, listener = await ws_connect(
                    lambda: _Listener(max_queue, text_as_bytes),
                    url,
                    websocket_handshake_timeout=open_timeout,
                    enable_auto_ping=ping,
                    auto_ping_idle_timeout=interval,
                    auto_ping_reply_timeout=interval,
                    auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
                    enable_auto_pong=True,
                    max_frame_size=self.max_size,
                    **extra,
                )
        except TimeoutError as exc:
            raise ConnectTimeout(f"connecting to {url} took more than {open_timeout} s") from exc
        except OSError as exc:
            raise ConnectionClosed(f"cannot connect to {url}: {exc}") from exc
        except WSError as exc:
            raise TransportError(f"cannot connect to {url}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise TransportError(f"cannot connect to {url}: {type(exc).__name__}: {exc}") from exc
        assert isinstance(listener, _Listener)
        return _PicowsConn(transport, listener)
