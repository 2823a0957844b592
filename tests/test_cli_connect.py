"""The CLI says why nothing connects, and exits non-zero (issue 11 item 1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    port = closed_port()
    env = dict(os.environ)
    env["WSMUX_ENDPOINTS"] = json.dumps(
        {"binance": {"url": f"ws://127.0.0.1:{port}/ws", "rest_url": f"http://127.0.0.1:{port}"}}
    )
    return subprocess.run(
        [sys.executable, "-m", "wsmux", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_watch_exits_non_zero_with_the_reason_when_nothing_connects() -> None:
    done = run_cli("watch", "binance:BTC-USDT", "--connect-deadline", "1.5", "--refresh", "0.5")
    assert done.returncode == 3, done
    assert "nothing connected within 1.5 s" in done.stderr
    assert "binance: cannot connect (attempt" in done.stderr
    assert "connection refused" in done.stderr
    # the live view shows the venue's state and last error meanwhile
    assert "cannot connect (attempt" in done.stdout and "last error: connection refused" in done.stdout


def test_record_with_a_duration_exits_non_zero_when_nothing_connected(tmp_path: Path) -> None:
    done = run_cli("record", "binance:BTC-USDT", "--out", str(tmp_path), "--duration", "1", "--refresh", "0.5")
    assert done.returncode == 3, done
    assert "connection refused" in done.stderr
    assert "recorded to" not in done.stdout


def test_an_unknown_endpoint_key_in_the_environment_is_refused() -> None:
    env = dict(os.environ, WSMUX_ENDPOINTS='{"Binance": "ws://127.0.0.1:1/ws"}')
    done = subprocess.run(
        [sys.executable, "-m", "wsmux", "watch", "binance:BTC-USDT", "--duration", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "did you mean 'binance'" in done.stderr
