"""The optional picows transport: frame handling without a network, then end
to end against the mock Binance server and a plain websockets server.

Skipped when ``picows`` (the ``wsmux[fast]`` extra) is not installed.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

pytest.importorskip("picows")

from picows import WSCloseCode, WSMsgType
from picows.picows import _make_test_ws_frame
from websockets.asyncio.server import ServerConnection, serve

from wsmux import Multiplexer, book, trades
from wsmux.errors import ConnectionClosed, ConnectTimeout
from wsmux.model import BookUpdate, Connected, Disconnected, Resynced, Trade
from wsmux.testing import MockBinance, collect_until
from wsmux.transports.picows import PicowsTransport, _Listener, _PicowsConn


class FakeSocket:
    def __init__(self) -> None:
        self.pauses = 0
        self.resumes = 0

    def pause_reading(self) -> None:
        self.pauses += 1

    def resume_reading(self) -> None:
        self.resumes += 1


class FakeTransport:
    """Stands in for picows' WSTransport: records what the listener does."""

    def __init__(self) -> None:
        self.underlying_transport = FakeSocket()
        self.is_disconnected = False
        self.sent: list[tuple[Any, bytes]] = []
        self.closes: list[Any] = []

    def send(self, kind: Any, payload: bytes) -> None:
        self.sent.append((kind, payload))

    def send_close(self, code: Any = WSCloseCode.OK, message: bytes | None = None) -> None:
        self.closes.append(code)

    def disconnect(self, graceful: bool = True) -> None:
        self.is_disconnected = True


def frame(kind: WSMsgType, payload: bytes, fin: bool = True) -> Any:
    return _make_test_ws_frame(kind, payload, fin, False)


def make(max_queue: int = 100, text_as_bytes: bool = True) -> tuple[_Listener, _PicowsConn, FakeTransport]:
    transport = FakeTransport()
    listener = _Listener(max_queue, text_as_bytes)
    listener.on_ws_connected(transport)
    return listener, _PicowsConn(transport, listener), transport  # type: ignore[arg-type]


async def test_text_and_binary_frames_arrive_as_bytes_in_order() -> None:
    listener, conn, _ = make()
    listener.on_ws_frame(None, frame(WSMsgType.TEXT, b'{"a":1}'))
    listener.on_ws_frame(None, frame(WSMsgType.BINARY, b"\x00\x01"))
    assert await conn.recv() == b'{"a":1}'
    assert await conn.recv() == b"\x00\x01"


async def test_text_frames_as_str_when_asked() -> None:
    listener, conn, _ = make(text_as_bytes=False)
    listener.on_ws_frame(None, frame(WSMsgType.TEXT, "é".encode()))
    listener.on_ws_frame(None, frame(WSMsgType.BINARY, b"\xff"))
    assert await conn.recv() == "é"
    assert await conn.recv() == b"\xff"


async def test_fragmented_message_is_reassembled() -> None:
    listener, conn, _ = make(text_as_bytes=False)
    listener.on_ws_frame(None, frame(WSMsgType.TEXT, b'{"par', fin=False))
    listener.on_ws_frame(None, frame(WSMsgType.CONTINUATION, b"ts", fin=False))
    listener.on_ws_frame(None, frame(WSMsgType.CONTINUATION, b'":2}'))
    assert list(listener.queue) == ['{"parts":2}']
    assert await conn.recv() == '{"parts":2}'


async def test_continuation_without_first_fragment_fails_the_connection() -> None:
    listener, conn, transport = make()
    listener.on_ws_frame(transport, frame(WSMsgType.CONTINUATION, b"x"))
    assert transport.closes == [WSCloseCode.PROTOCOL_ERROR]
    assert transport.is_disconnected
    with pytest.raises(ConnectionClosed, match="continuation frame"):
        await conn.recv()


async def test_close_from_venue_is_answered_and_ends_recv_after_queued_frames() -> None:
    listener, conn, transport = make()
    listener.on_ws_frame(transport, frame(WSMsgType.TEXT, b"last"))
    listener.on_ws_frame(transport, frame(WSMsgType.CLOSE, struct.pack("!H", 1013) + b"try later"))
    assert transport.closes == [WSCloseCode.TRY_AGAIN_LATER]
    assert transport.is_disconnected
    assert await conn.recv() == b"last"
    with pytest.raises(ConnectionClosed, match="1013 try later"):
        await conn.recv()
    with pytest.raises(ConnectionClosed):
        await conn.send("ping")


async def test_recv_waits_for_a_frame() -> None:
    listener, conn, _ = make()
    task = asyncio.ensure_future(conn.recv())
    await asyncio.sleep(0)
    assert not task.done()
    listener.on_ws_frame(None, frame(WSMsgType.TEXT, b"now"))
    assert await task == b"now"


async def test_lost_connection_wakes_recv() -> None:
    listener, conn, transport = make()
    task = asyncio.ensure_future(conn.recv())
    await asyncio.sleep(0)
    listener.on_ws_disconnected(transport)
    with pytest.raises(ConnectionClosed, match="connection lost"):
        await task


async def test_full_queue_stops_reading_until_drained_to_half() -> None:
    listener, conn, transport = make(max_queue=4)
    sock = transport.underlying_transport
    for i in range(6):  # the socket keeps delivering what it already read
        listener.on_ws_frame(None, frame(WSMsgType.TEXT, str(i).encode()))
    assert sock.pauses == 1 and listener.pauses == 1 and listener.paused
    got = [await conn.recv() for _ in range(3)]
    assert sock.resumes == 0  # 3 left > 4 // 2
    got.append(await conn.recv())
    assert sock.resumes == 1 and not listener.paused
    got += [await conn.recv() for _ in range(2)]
    assert got == [str(i).encode() for i in range(6)]


async def test_send_text_and_binary() -> None:
    _, conn, transport = make()
    await conn.send('{"op":"sub"}')
    await conn.send(b"\x01")
    assert transport.sent == [(WSMsgType.TEXT, b'{"op":"sub"}'), (WSMsgType.BINARY, b"\x01")]


def test_bad_queue_size_is_refused() -> None:
    with pytest.raises(ValueError):
        PicowsTransport(max_queue=1)


# --- over sockets -------------------------------------------------------------------


async def test_multiplexer_syncs_a_mock_binance_book_and_resyncs_after_a_drop() -> None:
    async with MockBinance(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"binance": mock.endpoint}, transport=PicowsTransport()) as mux:
            stream = mux.subscribe(*book("binance", "BTC-USDT"), *trades("binance", "BTC-USDT"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            assert isinstance(seen[0], Connected)
            await mock.publish(40)
            last = mock.update_id("BTC-USDT")
            seen = await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == last)
            assert any(isinstance(e, Trade) for e in seen)
            view = mux.book("binance", "BTC-USDT")
            assert view.valid
            assert view.depth() == mock.markets["BTC-USDT"].depth()
            await mock.drop_connections()
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            assert isinstance(seen[0], Disconnected)
            await mock.publish(10)
            last = mock.update_id("BTC-USDT")
            await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == last)
            assert mux.book("binance", "BTC-USDT").depth() == mock.markets["BTC-USDT"].depth()


async def test_server_ping_is_answered_and_close_reason_reaches_recv() -> None:
    answered = asyncio.Event()
    got: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        got.append(await ws.recv())
        await ws.send("a" * 100_000)  # one large frame
        pong = await ws.ping(b"hb")
        await asyncio.wait_for(pong, 5)
        answered.set()
        await ws.close(4001, "maintenance")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = await PicowsTransport().connect(
            f"ws://127.0.0.1:{port}/", open_timeout=5, ws_ping_interval=None, text_as_bytes=False
        )
        await conn.send('{"op":"hello"}')
        assert await conn.recv() == "a" * 100_000
        with pytest.raises(ConnectionClosed, match="4001 maintenance"):
            await conn.recv()
        assert answered.is_set()
        assert got == ['{"op":"hello"}']
        await conn.close()


async def test_connect_failures_are_typed() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
    port = server.sockets[0].getsockname()[1]
    with pytest.raises(ConnectTimeout):
        await PicowsTransport().connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2, ws_ping_interval=None)
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectionClosed):
        await PicowsTransport().connect(f"ws://127.0.0.1:{port}/", open_timeout=2, ws_ping_interval=None)


# --- push mode (the Connection drives the Feed from the frame callback) --------------------------


async def test_push_mode_drains_the_queue_first_then_hands_frames_over_in_order() -> None:
    listener, conn, _ = make()
    listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, b"a"))
    listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, b"b"))
    got: list[bytes | str] = []
    conn.start_push(got.append)
    listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, b"c"))
    assert got == [b"a", b"b", b"c"]
    assert not listener.queue


async def test_push_mode_hands_nothing_over_after_the_message_that_paused_reading() -> None:
    """Frames picows parsed from one read after the handler paused wait for
    resume_reading (a BLOCK stream's promise: at most the frame that filled it)."""
    listener, conn, transport = make()
    got: list[bytes | str] = []

    def on_frame(payload: bytes | str) -> None:
        got.append(payload)
        if payload in (b"a", b"c"):
            conn.pause_reading()

    conn.start_push(on_frame)
    for payload in (b"a", b"b", b"c", b"d"):
        listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, payload))
    assert got == [b"a"] and transport.underlying_transport.pauses == 1
    conn.resume_reading()  # b goes, c pauses again: d waits, the socket stays paused
    assert got == [b"a", b"b", b"c"] and transport.underlying_transport.resumes == 0
    conn.resume_reading()
    assert got == [b"a", b"b", b"c", b"d"] and transport.underlying_transport.resumes == 1
    listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, b"e"))
    assert got[-1] == b"e" and not listener.queue


async def test_a_handler_that_stops_the_loop_gets_nothing_more() -> None:
    """SystemExit from the handler propagates (it stops the event loop), and the
    connection ends: a loop run again to clean up hands the handler nothing more."""
    listener, conn, transport = make()
    got: list[bytes | str] = []

    def exits(payload: bytes | str) -> None:
        got.append(payload)
        raise SystemExit(3)

    conn.start_push(exits)
    with pytest.raises(SystemExit):
        listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, b"a"))
    listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, b"b"))
    assert got == [b"a"] and transport.is_disconnected
    assert listener.closed == "protocol error: frame handler stopped the event loop"


async def test_push_handler_errors_fail_the_connection_and_wait_closed_says_why() -> None:
    listener, conn, transport = make()

    def broken(payload: bytes | str) -> None:
        raise RuntimeError("bug")

    conn.start_push(broken)
    waiter = asyncio.ensure_future(conn.wait_closed())
    await asyncio.sleep(0)
    assert not waiter.done()
    listener.on_ws_frame(listener.transport, frame(WSMsgType.TEXT, b"x"))
    reason = await asyncio.wait_for(waiter, 5)
    assert "frame handler raised RuntimeError: bug" in reason and transport.is_disconnected


async def test_push_mode_keeps_backpressure_and_loses_nothing() -> None:
    async with MockBinance(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"binance": mock.endpoint}, transport=PicowsTransport()) as mux:
            stream = mux.subscribe(*book("binance", "BTC-USDT"), maxsize=20)  # BLOCK by default
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)  # far more than the stream holds: the connection must pause
            last = mock.update_id("BTC-USDT")
            seen = await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == last)
            assert stream.stats.dropped == 0
            assert stream.stats.max_buffered >= 20  # it did fill up, and the venue was paused
            seqs = [e.seq for e in seen if isinstance(e, BookUpdate)]
            assert seqs == sorted(seqs)
            assert mux.book("binance", "BTC-USDT").depth() == mock.markets["BTC-USDT"].depth()
