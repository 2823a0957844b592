"""The A/B view of the live CLI: ``--redundancy 2`` shows who delivered first."""

from __future__ import annotations

import pytest
from clirun import run_wsmux


def test_demo_with_redundancy_shows_who_delivered_first() -> None:
    proc = run_wsmux("demo", "--venues", "binance", "--duration", "3", "--refresh", "2", "--redundancy", "2")
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.rsplit("redundancy: who delivered first", 1)[1].splitlines()
    header, rows = table[1], [line.split() for line in table[2:4]]
    assert header.split()[:5] == ["venue", "conn", "host", "first", "copies"]
    assert [r[0] for r in rows] == ["binance", "binance"]
    shares = [float(r[3].rstrip("%")) for r in rows]
    assert sum(shares) == pytest.approx(100.0, abs=0.2)  # every first copy came from one of the two
    assert rows[0][4] == rows[1][4] and int(rows[0][4].replace(",", "")) > 0  # both carried every copy


def test_demo_without_redundancy_has_no_ab_table() -> None:
    proc = run_wsmux("demo", "--venues", "binance", "--duration", "2", "--refresh", "2")
    assert proc.returncode == 0, proc.stderr
    assert "redundancy: who delivered first" not in proc.stdout


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_redundancy_is_validated(value: str) -> None:
    proc = run_wsmux("watch", "binance:BTC-USDT", "--redundancy", value)
    assert proc.returncode == 2 and "--redundancy" in proc.stderr
