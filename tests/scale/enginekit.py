"""Real ``redis-server`` and ``nats-server`` processes for the scale-out tests.

Each server runs on a free 127.0.0.1 port with its data in a temporary
directory, is ready when a client connection succeeds (polled with a bounded
deadline, never a fixed sleep), and can be stopped and started again on the
same port (the engine-restart tests).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["EngineProcess", "free_port", "nats_process", "redis_process"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EngineProcess:
    """A server process: ``start()``, ``stop()``, ``kill()``, ``restart()``."""

    def __init__(self, argv: list[str], port: int, url: str) -> None:
        self.argv = argv
        self.port = port
        self.url = url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline: float = 15.0) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + deadline
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}: {err[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    if self._ready(conn):
                        return
            except OSError:
                pass
            if time.monotonic() > end:
                self.stop()
                raise TimeoutError(f"{self.argv[0]} not ready on port {self.port} within {deadline} s")
            time.sleep(0.02)  # polling a child's readiness, bounded by the deadline

    def _ready(self, conn: socket.socket) -> bool:
        conn.settimeout(1.0)
        if "redis" in self.argv[0]:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
        return conn.recv(16).startswith(b"INFO")  # nats greets every client with INFO

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _which(name: str) -> str | None:
    """The server binary on PATH, or in the sbin folders Debian installs to
    (not on a non-root user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def redis_process(tmp: Path) -> EngineProcess | None:
    """A Redis server (not started), or None when ``redis-server`` is absent."""
    binary = _which("redis-server")
    if binary is None:
        return None
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]
    return EngineProcess(argv, port, f"redis://127.0.0.1:{port}")


def nats_process(tmp: Path) -> EngineProcess | None:
    """A NATS server with JetStream (not started), or None when ``nats-server`` is absent."""
    binary = _which("nats-server")
    if binary is None:
        return None
    port = free_port()
    argv = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp)]
    return EngineProcess(argv, port, f"nats://127.0.0.1:{port}")
