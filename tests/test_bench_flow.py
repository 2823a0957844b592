"""bench/bench_flow.py runs and reports every operator (a smoke test; no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_flow


def test_bench_flow_reports_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_flow.main(["--rounds", "1", "--steps", "400"]) == 0
    out = capsys.readouterr().out
    for name in (
        "OrderFlowImbalance(1, interval 1s)",
        "CrossVenueSpread(3 venues)",
        "LeadLag",
        "FleetingWalls",
        "stats: QuantileSketch(1%).add",
        "live + WeightedMid",
    ):
        assert name in out
    assert "nan" not in out
