"""The CLI says why nothing connects, and exits non-zero (issue 11 item 1)."""

from __future__ import annotations

import json
import os
import re
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


def test_the_cli_logs_each_failed_attempt_with_its_reason(tmp_path: Path) -> None:
    """stderr carries the library's WARNING lines (one per failed attempt,
    with the reason and the next retry); --log-file takes them instead."""
    done = run_cli("record", "binance:BTC-USDT", "--out", str(tmp_path), "--duration", "1", "--refresh", "0.5")
    # the 1-s duration ended it, not the 30-s connect deadline
    assert re.search(r"nothing connected within (1|1\.\d|2) s", done.stderr), done.stderr
    attempts = [line for line in done.stderr.splitlines() if " WARNING wsmux.connection.binance: " in line]
    assert attempts and all("connection refused" in line and "retrying in" in line for line in attempts)
    log = tmp_path / "wsmux.log"
    done = run_cli("--log-file", str(log), "record", "binance:BTC-USDT", "--out", str(tmp_path), "--duration", "1")
    assert done.returncode == 3
    assert " WARNING wsmux." not in done.stderr
    lines = log.read_text().splitlines()
    assert lines and all(" WARNING wsmux." in line for line in lines)
    done = run_cli("--log-level", "error", "record", "binance:BTC-USDT", "--out", str(tmp_path), "--duration", "1")
    assert done.returncode == 3 and " WARNING wsmux." not in done.stderr
    assert run_cli("--log-level", "loud", "venues").returncode == 2
