"""Bench server: pre-encoded WebSocket frames, as fast as possible or at a fixed rate.

Run as its own process (so the client under test keeps a core to itself)::

    python bench/bench_server.py

It listens on 127.0.0.1:0 (plain asyncio, no WebSocket library: the frames
are encoded once, before any client connects, so sending costs one
``transport.write``) and talks to its parent with JSON lines: it prints
``{"port": N}`` at start and then answers commands read from stdin:

``{"cmd": "load", "path": P}``
    load a script written by ``benchlib.Script.to_wire`` (a JSON file).
``{"cmd": "mode", "rate": R | null, "count": N | null, "wait_rest": bool}``
    the next connection gets ``count`` data frames (all by default) either
    as fast as TCP takes them (``rate`` null) or ``R`` frames per second,
    each frame's send time (``time.time_ns()``) recorded; ``wait_rest``
    false: start the data without waiting for the REST snapshot fetches
    (floor clients fetch none).
``{"cmd": "result"}``
    the last session: ``data_start_ns``, ``data_end_ns``, ``sent``, and in
    rate mode ``send_file``, a file of int64 send times (one per frame).
``{"cmd": "quit"}``

A session: the client connects (HTTP upgrade), sends its subscribe messages
(the number the script says); the server answers with the warm-up frames,
waits until every REST snapshot of the script was fetched (plain HTTP GETs on
the same port, answered from the script), then sends the data frames. Client
pings are answered, a close is echoed. The clock is the same
``CLOCK_REALTIME`` the client stamps with, so send and receive times of the
two processes compare directly.
"""

from __future__ import annotations

import array
import asyncio
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["encode_frame", "main"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def encode_frame(payload: bytes, opcode: int = 1) -> bytes:
    """An unmasked (server-to-client) final frame."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        return head + bytes([n]) + payload
    if n < 65536:
        return head + bytes([126]) + n.to_bytes(2, "big") + payload
    return head + bytes([127]) + n.to_bytes(8, "big") + payload


def _rest_key(target: str) -> str:
    parts = urlsplit(target)
    query = sorted(parse_qsl(parts.query))
    return parts.path + "?" + "&".join(f"{k}={v}" for k, v in query)


class Script:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.client_messages = int(doc["client_messages"])
        self.warmup = [encode_frame(*_payload(f)) for f in doc["warmup"]]
        self.rest = {k: v.encode("latin-1") for k, v in doc["rest"].items()}
        self.data = [encode_frame(*_payload(f)) for f in doc["data"]]


def _payload(item: list[Any]) -> tuple[bytes, int]:
    opcode, value = item
    return (value.encode() if opcode == 1 else bytes.fromhex(value)), opcode


class Server:
    def __init__(self) -> None:
        self.script: Script | None = None
        self.rate: float | None = None
        self.count: int | None = None
        self.wait_rest = True
        self.rest_served: set[str] = set()
        self.result: dict[str, Any] = {}
        self.waiting: list[Session] = []

    def rest_done(self) -> bool:
        if not self.wait_rest:
            return True
        return self.script is not None and all(k in self.rest_served for k in self.script.rest)


class Session(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.ws = False
        self.client_msgs = 0
        self.started = False
        self.paused = False
        self.resume: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    # --- asyncio callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        # the sending task notices ``transport.is_closing()`` and records what
        # it sent (the client hangs up as soon as it has what it waited for)
        if self in self.server.waiting:
            self.server.waiting.remove(self)
        if self.resume is not None and not self.resume.done():
            self.resume.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.resume is not None and not self.resume.done():
            self.resume.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.ws:
            self._ws_frames()
            return
        while not self.ws:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            self._http(head)
        if self.ws and self.buf:
            self._ws_frames()

    # --- HTTP ---------------------------------------------------------------------

    def _http(self, head: str) -> None:
        assert self.transport is not None
        lines = head.split("\r\n")
        method, target, _ = [*lines[0].split(" "), "", ""][:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("upgrade", "").lower() == "websocket":
            key = headers.get("sec-websocket-key", "").encode()
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
            self.transport.write(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
                ).encode()
            )
            self.ws = True
            script = self.server.script
            if script is not None and script.client_messages == 0:
                self._warmup()
            return
        script = self.server.script
        key = _rest_key(target)
        body = script.rest.get(key) if script is not None and method == "GET" else None
        if body is None:
            body, status = b'{"error":"not found"}', "404 Not Found"
        else:
            status = "200 OK"
            self.server.rest_served.add(key)
        self.transport.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        if status == "200 OK" and self.server.rest_done():
            for session in list(self.server.waiting):
                self.server.waiting.remove(session)
                session._start_data()

    # --- WebSocket --------------------------------------------------------------------

    def _ws_frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = int.from_bytes(buf[2:10], "big")
                pos = 10
            masked = b1 & 0x80
            if masked:
                if len(buf) < pos + 4:
                    return
                mask = bytes(buf[pos : pos + 4])
                pos += 4
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            if masked:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            self._ws_message(opcode, payload)

    def _ws_message(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == 0x8:  # close: echo and hang up
            if not self.transport.is_closing():
                self.transport.write(encode_frame(payload[:2], 0x8))
                self.transport.close()
            return
        if opcode == 0x9:
            self.transport.write(encode_frame(payload, 0xA))
            return
        if opcode in (0x1, 0x2, 0x0):
            self.client_msgs += 1
            script = self.server.script
            if script is not None and self.client_msgs == script.client_messages:
                self._warmup()

    # --- the session ----------------------------------------------------------------------

    def _warmup(self) -> None:
        script = self.server.script
        assert script is not None and self.transport is not None
        if self.started:
            return
        self.started = True
        self.server.rest_served.clear()
        self.transport.write(b"".join(script.warmup))
        if self.server.rest_done():
            self._start_data()
        else:
            self.server.waiting.append(self)

    def _start_data(self) -> None:
        loop = asyncio.get_running_loop()
        if self.server.rate is None:
            self.task = loop.create_task(self._saturate())
        else:
            self.task = loop.create_task(self._paced(self.server.rate))

    def _frames(self) -> list[bytes]:
        script = self.server.script
        assert script is not None
        count = self.server.count
        return script.data if count is None else script.data[:count]

    async def _saturate(self) -> None:
        transport = self.transport
        assert transport is not None
        frames = self._frames()
        chunks: list[tuple[bytes, int]] = []
        i = 0
        while i < len(frames):
            part = frames[i : i + 64]
            chunks.append((b"".join(part), len(part)))
            i += 64
        loop = asyncio.get_running_loop()
        start = time.time_ns()
        sent = 0
        for chunk, count in chunks:
            if transport.is_closing():
                break  # the client has what it waited for
            if self.paused:
                self.resume = loop.create_future()
                await self.resume
            transport.write(chunk)
            sent += count
        self.server.result = {"data_start_ns": start, "data_end_ns": time.time_ns(), "sent": sent}

    async def _paced(self, rate: float) -> None:
        transport = self.transport
        assert transport is not None
        frames = self._frames()
        n = len(frames)
        send_ns = array.array("q", bytes(8 * n))
        clock = time.time_ns
        write = transport.write
        start = clock()
        i = 0
        while i < n:
            if transport.is_closing():
                break  # the client has what it waited for
            due = min(n, int((clock() - start) * rate / 1e9) + 1)
            while i < due:
                send_ns[i] = clock()
                write(frames[i])
                i += 1
            await asyncio.sleep(0)  # spin: this process has its own core
        fd, path = tempfile.mkstemp(prefix="wsmux-bench-send-", suffix=".bin")
        with os.fdopen(fd, "wb") as fh:
            send_ns[:i].tofile(fh)
        self.server.result = {
            "data_start_ns": start,
            "data_end_ns": clock(),
            "sent": i,
            "send_file": path,
        }


async def _serve() -> None:
    server = Server()
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: Session(server), "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    _reply({"port": port})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        what = cmd.get("cmd")
        if what == "load":
            with open(cmd["path"], encoding="utf-8") as fh:
                server.script = Script(json.load(fh))
            _reply({"ok": True, "frames": len(server.script.data)})
        elif what == "mode":
            server.rate = cmd.get("rate")
            server.count = cmd.get("count")
            server.wait_rest = bool(cmd.get("wait_rest", True))
            server.result = {}
            _reply({"ok": True})
        elif what == "result":
            _reply(server.result or {"pending": True})
        elif what == "quit":
            break
    srv.close()


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
