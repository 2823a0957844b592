"""End to end on loopback: bench server → Connection → adapter → book → Stream → callback.

The server (:mod:`bench_server`, a separate process so the client keeps a
core) sends one venue's generated stream (pre-encoded frames). Clients:

* ``wsmux-websockets`` / ``wsmux-picows``: a :class:`wsmux.Multiplexer`
  (default transport / :class:`wsmux.transports.picows.PicowsTransport`),
  one stream with a sync callback on every market event — the full path;
  ``wsmux-websockets-recv``: the same with ``WebsocketsTransport(push=False)``
  (websockets' asyncio client, one awaited ``recv()`` per message: the
  default transport before it pushed).
* floors, same frames, no wsmux: ``asyncio-raw`` (an ``asyncio.Protocol``
  with a minimal frame parser: the cost of getting bytes into Python),
  ``websockets-raw`` (``recv()`` loop) and ``picows-raw`` (frame callback).

Two measurements:

* saturation: the server writes as fast as TCP takes it; messages/s =
  data frames / (last callback - server's first write);
* latency at fixed rates (10K and 50K messages/s): the server records each
  frame's send time (``time.time_ns()``, the same clock as the client's);
  wire-to-callback = callback time - send time of the frame the event came
  from (matched by the event's venue sequence / trade id), and in-process
  receive-to-callback = callback time - ``event.recv_ns`` (stamped by the
  Connection when the frame arrived). Floors report wire-to-receive.

Run alone::

    .venv/bin/python bench/bench_e2e.py [--venue binance] [--steps 60000]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchlib import BenchResult, Script, event_key, format_results, generate_script, percentiles, quiesce

from wsmux.adapter import Endpoint
from wsmux.model import MarketEvent

__all__ = ["CLIENTS", "BenchServer", "bench_e2e", "have_picows"]

HERE = Path(__file__).resolve().parent


def have_picows() -> bool:
    try:
        import picows  # noqa: F401
    except ImportError:
        return False
    return True


class BenchServer:
    """The bench server subprocess (see :mod:`bench_server`)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "bench_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.port = int(self._read()["port"])
        self._script_file: str | None = None

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench server died (exit {self.proc.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def load(self, script: Script) -> None:
        fd, path = tempfile.mkstemp(prefix="wsmux-bench-script-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(script.to_wire(), fh)
        self._script_file = path
        self.command(cmd="load", path=path)

    def result(self, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            res = self.command(cmd="result")
            if not res.get("pending") or time.monotonic() > deadline:
                return res
            time.sleep(0.01)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command(cmd="quit")
            except Exception:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._script_file:
            with _suppress():
                os.unlink(self._script_file)

    def __enter__(self) -> BenchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


class Run:
    """What a client measured in one session."""

    def __init__(self) -> None:
        self.last_ns = 0
        self.frames = 0
        self.events = 0
        self.recv_ns: array.array[int] = array.array("q")  # floors: per data frame
        self.lat_ns: array.array[int] = array.array("q")  # wsmux: callback - recv_ns per event
        self.first: list[tuple[Any, int, int]] = []  # wsmux: (event key, callback ns, recv ns) per frame
        self.timed_out = False


# --- wsmux clients ---------------------------------------------------------------------


def _final_key(script: Script, count: int) -> tuple[str, str, int | None, str | None]:
    return script.frame_keys[_final_index(script, count)]  # type: ignore[return-value]


def _final_index(script: Script, count: int) -> int:
    """The identity of the last data frame's first event that no other frame
    shares and that is always delivered (not a book update, which a book
    still syncing folds into its snapshot): the wsmux clients stop on it."""
    keys = script.frame_keys[:count]
    seen: dict[Any, int] = {}
    for key in keys:
        if key is not None:
            seen[key] = seen.get(key, 0) + 1
    for i in range(len(keys) - 1, -1, -1):
        key = keys[i]
        if key is not None and seen[key] == 1 and key[0] != "BookUpdate":
            return i
    raise RuntimeError(f"{script.venue}: no identifiable event in the data frames")


async def _wsmux_client(port: int, script: Script, count: int, latency: bool, transport: Any, timeout: float) -> Run:
    from wsmux import Multiplexer

    run = Run()
    final_key = _final_key(script, count)
    by_seq = final_key[2] is not None
    final_attr = final_key[2] if by_seq else final_key[3]
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    clock = time.time_ns
    endpoint = Endpoint(url=f"ws://127.0.0.1:{port}{script.ws_path}", rest_url=f"http://127.0.0.1:{port}")

    def is_final(event: Any) -> bool:
        value = getattr(event, "seq", None) if by_seq else getattr(event, "trade_id", None)
        return value == final_attr and event_key(event) == final_key

    if latency:
        lat = run.lat_ns
        first = run.first
        last_recv = [0]

        def on_event(event: Any) -> None:
            now = clock()
            recv = event.recv_ns
            lat.append(now - recv)
            if recv != last_recv[0]:
                last_recv[0] = recv
                first.append((event_key(event), now, recv))
            run.events += 1
            if is_final(event) and not done.done():
                run.last_ns = now
                done.set_result(None)
    else:

        def on_event(event: Any) -> None:
            run.events += 1
            if is_final(event) and not done.done():
                run.last_ns = clock()
                done.set_result(None)

    async with Multiplexer(endpoints={script.venue: endpoint}, transport=transport) as mux:
        stream = mux.subscribe(*script.subscriptions, name="bench")
        stream.on(MarketEvent, on_event)
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            run.timed_out = True
            run.last_ns = clock()
        await stream.aclose()
    return run


def _wsmux_websockets(port: int, script: Script, count: int, latency: bool, timeout: float) -> Run:
    return asyncio.run(_wsmux_client(port, script, count, latency, None, timeout))


def _wsmux_websockets_recv(port: int, script: Script, count: int, latency: bool, timeout: float) -> Run:
    from wsmux.connection import WebsocketsTransport

    transport = WebsocketsTransport(push=False)  # websockets' asyncio client, one recv() per message
    return asyncio.run(_wsmux_client(port, script, count, latency, transport, timeout))


def _wsmux_picows(port: int, script: Script, count: int, latency: bool, timeout: float) -> Run:
    from wsmux.transports.picows import PicowsTransport

    return asyncio.run(_wsmux_client(port, script, count, latency, PicowsTransport(), timeout))


# --- floors -------------------------------------------------------------------------------


def _messages(script: Script) -> list[bytes]:
    return [m.encode() if isinstance(m, str) else m for m in script.client_messages]


async def _websockets_client(port: int, script: Script, count: int, timeout: float) -> Run:
    from websockets.asyncio.client import connect

    run = Run()
    total = len(script.warmup) + count
    warm = len(script.warmup)
    clock = time.time_ns
    stamps = run.recv_ns
    async with connect(
        f"ws://127.0.0.1:{port}{script.target}",
        compression="deflate",
        max_size=64 * 2**20,
        ping_interval=None,
        max_queue=None,
    ) as ws:
        for message in script.client_messages:
            await ws.send(message)

        async def pump() -> None:
            n = 0
            while n < total:
                await ws.recv(decode=False)
                now = clock()
                n += 1
                if n > warm:
                    stamps.append(now)
            run.frames = n
            run.last_ns = clock()

        try:
            await asyncio.wait_for(pump(), timeout)
        except TimeoutError:
            run.timed_out = True
            run.last_ns = clock()
    return run


def _websockets_raw(port: int, script: Script, count: int, latency: bool, timeout: float) -> Run:
    return asyncio.run(_websockets_client(port, script, count, timeout))


async def _picows_client(port: int, script: Script, count: int, timeout: float) -> Run:
    from picows import WSListener, WSMsgType, ws_connect

    run = Run()
    total = len(script.warmup) + count
    warm = len(script.warmup)
    clock = time.time_ns
    stamps = run.recv_ns
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    class Listener(WSListener):  # type: ignore[misc]
        n = 0

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            frame.get_payload_as_bytes()  # what a consumer needs: the payload as an object
            now = clock()
            self.n += 1
            if self.n > warm:
                stamps.append(now)
            if self.n >= total and not done.done():
                run.last_ns = now
                run.frames = self.n
                done.set_result(None)

    transport, _listener = await ws_connect(Listener, f"ws://127.0.0.1:{port}{script.target}")
    for message in _messages(script):
        transport.send(WSMsgType.TEXT, message)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        run.timed_out = True
        run.last_ns = clock()
    transport.send_close()
    transport.disconnect()
    return run


def _picows_raw(port: int, script: Script, count: int, latency: bool, timeout: float) -> Run:
    return asyncio.run(_picows_client(port, script, count, timeout))


class _RawProtocol(asyncio.Protocol):
    """The floor: a minimal client-side WebSocket frame parser on asyncio."""

    def __init__(self, total: int, warm: int, run: Run, done: asyncio.Future[None], target: str) -> None:
        self.total = total
        self.warm = warm
        self.run = run
        self.done = done
        self.buf = b""
        self.upgraded = False
        self.n = 0
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = done.get_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        m = int.from_bytes(mask * (n // 4 + 1), "big") >> (8 * (4 - n % 4) if n % 4 else 0)
        masked = (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big") if n else b""
        self.transport.write(head + mask + masked)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.upgraded = True
            buf = buf[end + 4 :]
            self.opened.set_result(None)
        clock = time.time_ns
        stamps = self.run.recv_ns
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + n
            if end > size:
                break
            opcode = buf[pos] & 0x0F
            payload = buf[start:end]  # the payload as an object, as a consumer needs it
            pos = end
            if opcode not in (1, 2):
                continue
            del payload
            self.n += 1
            if self.n > self.warm:
                stamps.append(clock())
            if self.n >= self.total and not self.done.done():
                self.run.last_ns = clock()
                self.run.frames = self.n
                self.done.set_result(None)
        self.buf = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))


async def _raw_client(port: int, script: Script, count: int, timeout: float) -> Run:
    run = Run()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, proto = await loop.create_connection(
        lambda: _RawProtocol(len(script.warmup) + count, len(script.warmup), run, done, script.target),
        "127.0.0.1",
        port,
    )
    await proto.opened
    for message in _messages(script):
        proto.send(message)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        run.timed_out = True
        run.last_ns = time.time_ns()
    transport.close()
    return run


def _asyncio_raw(port: int, script: Script, count: int, latency: bool, timeout: float) -> Run:
    return asyncio.run(_raw_client(port, script, count, timeout))


ClientFn = Callable[[int, Script, int, bool, float], Run]

CLIENTS: dict[str, tuple[ClientFn, bool]] = {
    # name: (function, is wsmux)
    "asyncio-raw": (_asyncio_raw, False),
    "websockets-raw": (_websockets_raw, False),
    "picows-raw": (_picows_raw, False),
    "wsmux-websockets": (_wsmux_websockets, True),
    "wsmux-websockets-recv": (_wsmux_websockets_recv, True),
    "wsmux-picows": (_wsmux_picows, True),
}


def available_clients() -> list[str]:
    names = list(CLIENTS)
    if not have_picows():
        names = [n for n in names if "picows" not in n]
    return names


# --- the measurements -------------------------------------------------------------------


def saturation(server: BenchServer, script: Script, client: str, count: int) -> BenchResult:
    fn, is_wsmux = CLIENTS[client]
    quiesce()
    server.command(cmd="mode", rate=None, count=count, wait_rest=is_wsmux)
    run = fn(server.port, script, count, False, 5.0 + count / 5000)
    res = server.result()
    start = int(res.get("data_start_ns", 0))
    seconds = max((run.last_ns - start) / 1e9, 1e-9)
    # a wsmux client stops at the last frame it can recognise (see _final_index)
    measured = _final_index(script, count) + 1 if is_wsmux else count
    result = BenchResult(
        f"e2e.saturation.{client}",
        {"msgs_per_s": measured / seconds, "us_per_msg": seconds / measured * 1e6},
        {
            "venue": script.venue,
            "count": measured,
            "seconds": round(seconds, 4),
            "events": run.events if is_wsmux else None,
            "timed_out": run.timed_out,
        },
    )
    if run.timed_out:
        result.metrics = {}
        result.info["error"] = "timed out"
    return result


def latency(server: BenchServer, script: Script, client: str, rate: float, count: int) -> list[BenchResult]:
    fn, is_wsmux = CLIENTS[client]
    quiesce()
    server.command(cmd="mode", rate=rate, count=count, wait_rest=is_wsmux)
    run = fn(server.port, script, count, True, 5.0 + 2 * count / rate)
    res = server.result()
    sends = array.array("q")
    send_file = res.get("send_file")
    if send_file:
        with open(send_file, "rb") as fh:
            sends.frombytes(fh.read())
        os.unlink(send_file)
    label = f"{int(rate / 1000)}k" if rate >= 1000 else str(int(rate))
    span = (int(res.get("data_end_ns", 0)) - int(res.get("data_start_ns", 0))) / 1e9
    info: dict[str, Any] = {
        "venue": script.venue,
        "rate": rate,
        "count": count,
        "sent_rate": round(int(res.get("sent", count)) / span) if span > 0 else None,
        "timed_out": run.timed_out,
    }
    results: list[BenchResult] = []
    if is_wsmux:
        index: dict[Any, int] = {}
        dupes: set[Any] = set()
        for i, key in enumerate(script.frame_keys[:count]):
            if key is None:
                continue
            if key in index:
                dupes.add(key)
            index[key] = i
        wire: list[int] = []
        wire_recv: list[int] = []
        for key, cb_ns, recv_ns in run.first:
            i2 = index.get(key)
            if i2 is None or key in dupes or i2 >= len(sends):
                continue
            wire.append(cb_ns - sends[i2])
            wire_recv.append(recv_ns - sends[i2])
        w = percentiles(wire)
        results.append(
            BenchResult(
                f"e2e.latency{label}.{client}",
                {k: w[k] for k in ("p50_us", "p99_us", "p999_us", "max_us", "mean_us")},
                {
                    **info,
                    "measures": "wire (server send) to callback, first event of each frame",
                    "matched_frames": len(wire),
                    "wire_to_recv": {k: round(v, 1) for k, v in percentiles(wire_recv).items()},
                },
            )
        )
        inproc = percentiles(run.lat_ns)
        results.append(
            BenchResult(
                f"e2e.latency{label}.{client}.recv-to-callback",
                {k: inproc[k] for k in ("p50_us", "p99_us", "p999_us", "max_us", "mean_us")},
                {**info, "measures": "event.recv_ns (frame received) to callback, every event", "events": run.events},
            )
        )
    else:
        n = min(len(run.recv_ns), len(sends))
        w = percentiles([run.recv_ns[i] - sends[i] for i in range(n)])
        results.append(
            BenchResult(
                f"e2e.latency{label}.{client}",
                {k: w[k] for k in ("p50_us", "p99_us", "p999_us", "max_us", "mean_us")},
                {**info, "measures": "wire (server send) to frame in Python", "frames": n},
            )
        )
    if run.timed_out:
        for r in results:
            r.info["error"] = "timed out"
    return results


def bench_e2e(
    script: Script,
    *,
    clients: Sequence[str] | None = None,
    rates: Sequence[float] = (10_000, 50_000),
    latency_seconds: float = 2.0,
    saturation_count: int | None = None,
    log: bool = True,
) -> list[BenchResult]:
    """Saturation and fixed-rate latency of every client over ``script``."""
    names = [c for c in (clients or available_clients()) if c in CLIENTS]
    results: list[BenchResult] = []

    def emit(items: list[BenchResult]) -> None:
        results.extend(items)
        if log:
            for item in items:
                print(format_results([item]).splitlines()[1], item.info.get("error", ""), flush=True)

    with BenchServer() as server:
        server.load(script)
        quiesce()
        n_data = len(script.data)
        for client in names:
            emit([saturation(server, script, client, min(n_data, saturation_count or n_data))])
        for rate in rates:
            count = min(n_data, max(100, int(rate * latency_seconds)))
            for client in names:
                emit(latency(server, script, client, rate, count))
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venue", default="binance")
    parser.add_argument("--steps", type=int, default=60_000, help="market steps per symbol to generate")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each fixed-rate run")
    parser.add_argument("--client", action="append", default=None, choices=list(CLIENTS))
    args = parser.parse_args(argv)
    script = generate_script(args.venue, args.steps)
    print(f"{args.venue}: {len(script.data):,} data frames generated in {script.gen_seconds:.1f} s")
    print(format_results([]))
    bench_e2e(script, clients=args.client, latency_seconds=args.seconds)


if __name__ == "__main__":
    main()
