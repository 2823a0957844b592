"""The venue panel of ``wsmux demo``/``watch``: plain text and rich, and the
``--metrics-port`` option."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from clirun import run_wsmux

from wsmux._dashboard import plain_panel, rich_screen, sparkline, venue_cells
from wsmux.health import VenueHealth

MS = 1_000_000


def venue(**changes: Any) -> VenueHealth:
    fields: dict[str, Any] = {
        "venue": "binance",
        "state": "open",
        "connections": 1,
        "open_connections": 1,
        "rates": {"events": {"1s": 100.0, "10s": 120.0, "60s": 110.0}},
        "per_second": [0, 50, 100],
        "latency": {"book": {"count": 40, "p50": 2 * MS, "p90": 5 * MS, "p99": 9 * MS, "max": 12 * MS}},
        "jitter_ns": 3 * MS,
        "clock": {"offset_ns": 6 * MS, "uncertainty_ns": 7 * MS, "source": "rest", "ahead_ns": 0},
        "ahead": False,
        "no_ts": 0,
        "bad_ts": 0,
        "counters": {"gaps": 2, "resyncs": 4},
        "events_by_type": {"BookUpdate": 100},
        "books": {
            "BTC-USDT": {"valid": True, "integrity": "sequence"},
            "ETH-USDT": {"valid": False, "integrity": "sequence"},
        },
        "breaker": "closed",
        "flows": {},
        "last_error": None,
    }
    fields.update(changes)
    return VenueHealth(**fields)


def test_sparkline_scales_to_the_maximum() -> None:
    assert sparkline([0, 4, 8], width=3) == "▁▄█"
    assert sparkline([], width=4) == "    "
    assert sparkline([0, 0], width=2) == "▁▁"
    assert len(sparkline(list(range(100)), width=20)) == 20


def test_venue_cells_say_what_the_figures_are() -> None:
    cells = venue_cells(venue())
    assert cells[:3] == ("binance", "open", "120")
    assert cells[4:10] == ("2.0 ms", "9.0 ms", "+6.0 ms ±7.0 ms", "2", "4", "1/2 valid sequence")
    ahead = venue_cells(
        venue(clock={"offset_ns": 2_000 * MS, "uncertainty_ns": None, "source": "envelope", "ahead_ns": 2_000 * MS})
    )
    assert ahead[6] == "≥+2.00 s AHEAD"
    bad = venue_cells(venue(latency={"trades": {"count": 0}}, bad_ts=5, flows={3: {"state": "collapse"}}))
    assert bad[4:6] == ("bad ts", "bad ts") and bad[1] == "open COLLAPSE"
    quiet = venue_cells(venue(latency={}, clock={}, no_ts=3, open_connections=0, state="reconnecting"))
    assert quiet[1] == "reconnecting 0/1" and quiet[4] == "no ts" and quiet[6] == "-"


def test_plain_panel_columns_line_up() -> None:
    lines = plain_panel([venue(), venue(venue="coinbase-advanced", latency={})])
    assert lines[0].split()[:3] == ["venue", "state", "msg/s"]
    assert {line.index("open") for line in lines[1:]} == {lines[0].index("state")}
    assert plain_panel([]) == []


def test_rich_screen_renders_both_tables() -> None:
    pytest.importorskip("rich")
    text = rich_screen(
        "wsmux 1.0 s",
        ("venue", "symbol", "book"),
        [("binance", "BTC-USDT", "INVALID 3 lv")],
        [venue()],
        ["total 5 events/s"],
        width=160,
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "BTC-USDT" in plain and "INVALID 3 lv" in plain and "+6.0 ms ±7.0 ms" in plain
    assert "\x1b[" in text  # coloured
    assert all(len(line) <= 160 for line in plain.splitlines())


def test_demo_shows_the_venue_panel() -> None:
    proc = run_wsmux("demo", "--venues", "binance", "--duration", "3", "--refresh", "3", "--plain")
    assert proc.returncode == 0, proc.stderr
    panel = re.search(r"^venue\s+state\s+msg/s\s+last 60 s\s+p50\s+p99\s+offset.*$", proc.stdout, re.M)
    assert panel, proc.stdout
    row = re.search(
        r"^binance\s+open\s+\d+\s+\S+\s+[\d.]+ ms\s+[\d.]+ ms\s+[+-][\d.]+ ms ±[\d.]+ ms", proc.stdout, re.M
    )
    assert row, proc.stdout  # latency and a REST clock offset from the mock's /api/v3/time
    assert "2/2 valid sequence" in proc.stdout


def test_demo_metrics_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_wsmux("demo", "--venues", "binance", "--duration", "1", "--metrics-port", str(port))
    assert proc.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
