"""The benchmark suite: baseline comparison (pure), percentiles, and a smoke
run of every benchmark in a tiny configuration producing well-formed JSON.

No timing is asserted anywhere: only shapes, names and counts.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_e2e  # noqa: E402
import bench_feed  # noqa: E402
import bench_logio  # noqa: E402
import bench_profile  # noqa: E402
import benchlib  # noqa: E402
import run as bench_run  # noqa: E402
from benchlib import BenchResult, Comparison, compare, percentiles  # noqa: E402

from wsmux import bench as wsmux_bench  # noqa: E402
from wsmux import cli  # noqa: E402

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "recordings"


def doc(*results: BenchResult) -> dict[str, Any]:
    return benchlib.report(results, quick=True)


# --- the baseline comparison (pure) -----------------------------------------------------


def test_cost_metric_slower_past_threshold_is_a_regression() -> None:
    base = doc(BenchResult("feed.binance", {"us_per_msg": 10.0, "msgs_per_s": 100_000.0}))
    cur = doc(BenchResult("feed.binance", {"us_per_msg": 12.0, "msgs_per_s": 83_333.0}))
    (c,) = compare(cur, base, threshold=0.15)
    assert c == Comparison("feed.binance", "us_per_msg", 10.0, 12.0, pytest.approx(0.2), True, False)


def test_within_threshold_is_not_flagged_and_faster_is_improved() -> None:
    base = [BenchResult("a", {"us_per_msg": 10.0}), BenchResult("b", {"us_per_msg": 10.0})]
    cur = [BenchResult("a", {"us_per_msg": 11.4}), BenchResult("b", {"us_per_msg": 8.0})]
    a, b = compare(cur, base, threshold=0.15)
    assert (a.name, a.regressed, a.improved) == ("a", False, False)
    assert a.slowdown == pytest.approx(0.14)
    assert (b.name, b.regressed, b.improved) == ("b", False, True)
    assert b.slowdown == pytest.approx(-0.2)


def test_exactly_at_threshold_is_not_a_regression() -> None:
    (c,) = compare([BenchResult("a", {"us_per_msg": 11.5})], [BenchResult("a", {"us_per_msg": 10.0})], threshold=0.15)
    assert c.slowdown == pytest.approx(0.15)
    assert not c.regressed


def test_rate_metric_reads_as_slowdown_when_gated() -> None:
    base = [BenchResult("e2e", {"msgs_per_s": 100_000.0})]
    cur = [BenchResult("e2e", {"msgs_per_s": 80_000.0})]
    assert compare(cur, base) == []  # msgs/s is not gated by default (µs/msg is)
    (c,) = compare(cur, base, metrics=["msgs_per_s"])
    assert c.slowdown == pytest.approx(0.25)
    assert c.regressed


def test_latency_percentiles_are_gated_only_on_request_and_never_p999() -> None:
    base = [BenchResult("lat", {"p50_us": 10.0, "p99_us": 50.0, "p999_us": 100.0})]
    cur = [BenchResult("lat", {"p50_us": 10.0, "p99_us": 80.0, "p999_us": 900.0})]
    assert compare(cur, base) == []
    gated = benchlib.GATED_METRICS | benchlib.LATENCY_METRICS
    result = {c.metric: c.regressed for c in compare(cur, base, metrics=gated)}
    assert result == {"p50_us": False, "p99_us": True}


def test_missing_benchmarks_metrics_and_non_finite_values_are_skipped() -> None:
    base = doc(
        BenchResult("only.in.base", {"us_per_msg": 1.0}),
        BenchResult("both", {"us_per_msg": 1.0, "p50_us": math.nan}),
        BenchResult("failed.now", {"us_per_msg": 1.0}),
    )
    cur = doc(
        BenchResult("only.now", {"us_per_msg": 1.0}),
        BenchResult("both", {"us_per_msg": 1.0, "p50_us": 5.0}),
        BenchResult("failed.now", {}, {"error": "timed out"}),
    )
    assert [(c.name, c.metric) for c in compare(cur, base)] == [("both", "us_per_msg")]


def test_zero_baseline_and_negative_threshold() -> None:
    (c,) = compare([BenchResult("a", {"us_per_msg": 1.0})], [BenchResult("a", {"us_per_msg": 0.0})])
    assert c.slowdown == math.inf and c.regressed
    with pytest.raises(ValueError):
        compare([], [], threshold=-0.1)


def test_format_comparisons_marks_regressions() -> None:
    comps = compare([BenchResult("a", {"us_per_msg": 2.0})], [BenchResult("a", {"us_per_msg": 1.0})])
    text = benchlib.format_comparisons(comps, 0.15)
    assert "REGRESSION" in text and "1 regression(s) in 1" in text
    assert "nothing comparable" in benchlib.format_comparisons([], 0.15)


def test_percentiles_nearest_rank() -> None:
    p = percentiles(list(range(1000, 101_000, 1000)))  # 1..100 µs
    assert (p["p50_us"], p["p90_us"], p["p99_us"], p["p999_us"], p["max_us"]) == (50.0, 90.0, 99.0, 100.0, 100.0)
    assert p["mean_us"] == pytest.approx(50.5)
    assert all(math.isnan(v) for v in percentiles([]).values())


# --- smoke runs in tiny configurations ------------------------------------------------------


def well_formed(results: list[BenchResult]) -> dict[str, Any]:
    """The --json document of ``results`` survives a JSON round trip with
    the expected shape; every result without an error has finite metrics."""
    text = json.dumps(benchlib.report(results, quick=True, argv=["--quick"]), default=str)
    parsed = json.loads(text)
    assert parsed["schema"] == benchlib.SCHEMA
    assert {"python", "cpus", "platform"} <= set(parsed["machine"])
    for item in parsed["results"]:
        assert set(item) == {"name", "metrics", "info"}
        assert isinstance(item["name"], str) and item["name"]
        if "error" not in item["info"]:
            assert item["metrics"], item
            assert all(isinstance(v, float) and math.isfinite(v) for v in item["metrics"].values()), item
    return parsed


@pytest.fixture(scope="module")
def binance_script() -> benchlib.Script:
    return benchlib.generate_script("binance", 60)


@pytest.mark.parametrize("venue", benchlib.script_venues())
def test_every_venue_with_a_mock_generates_a_clean_stream_and_benchmarks(venue: str) -> None:
    script = benchlib.generate_script(venue, 25)
    assert script.data and len(script.frame_keys) == len(script.data) == len(script.frame_events)
    assert script.data_events == sum(script.frame_events) > 0
    result = bench_feed.bench_script(script, repeat=1)
    assert result.name == f"feed.{venue}"
    assert result.info["count"] == len(script.data)
    well_formed([result])


def test_generated_stream_is_deterministic_apart_from_timestamps(binance_script: benchlib.Script) -> None:
    again = benchlib.generate_script("binance", 60)
    assert len(again.data) == len(binance_script.data)
    assert again.frame_keys == binance_script.frame_keys
    assert again.events_by_type == binance_script.events_by_type


def test_feed_counts_every_event_of_the_generation_run(binance_script: benchlib.Script) -> None:
    counter = bench_feed.Counter()
    feed, frames = benchlib.replay_script(binance_script, counter)
    before = counter.n
    for f in frames:
        feed.on_frame(f, 0)
    assert counter.n - before == sum(v for k, v in binance_script.events_by_type.items()) - before
    assert all(sync.valid for sync in feed.syncs.values())


@pytest.mark.skipif(not RECORDINGS.is_dir(), reason="recordings not present")
def test_recordings_benchmark() -> None:
    results = bench_feed.bench_recordings(RECORDINGS, repeat=1, log=False)
    assert {r.name for r in results} >= {"recordings.binance"}
    for r in results:
        assert r.info["gaps"] == 0, r.info
        assert r.info["parse_errors"] == 0, r.info  # the recorded klines are candles now
        assert r.info["books"] > 0 and r.info["events"] > 0
    well_formed(results)


def test_recordings_benchmark_skips_a_missing_folder(tmp_path: Path) -> None:
    assert bench_feed.bench_recordings(tmp_path / "absent", log=False) == []


def test_log_benchmark(binance_script: benchlib.Script) -> None:
    results = bench_logio.bench_log_io(binance_script, repeat=1, log=False)
    assert [r.name for r in results] == ["log.write", "log.read", "log.replay"]
    assert results[0].metrics["compression_ratio"] > 1
    assert results[2].info["events"] > 0
    well_formed(results)


def test_stage_timings_and_profile(binance_script: benchlib.Script) -> None:
    results = bench_profile.stage_timings(binance_script, repeat=1)
    assert [r.name for r in results] == [f"stages.binance.{s}" for s in ("json", "adapter", "feed", "dispatch")]
    well_formed(results)
    per, text = bench_profile.cprofile_categories(binance_script, top=5)
    assert "adapter normalize" in per and "book apply" in per
    assert "function calls" in text


def test_e2e_benchmark_every_client(binance_script: benchlib.Script) -> None:
    clients = bench_e2e.available_clients()
    results = bench_e2e.bench_e2e(binance_script, clients=clients, rates=(5_000,), latency_seconds=0.02, log=False)
    names = [r.name for r in results]
    assert names[: len(clients)] == [f"e2e.saturation.{c}" for c in clients]
    for c in clients:
        assert f"e2e.latency5k.{c}" in names
        if c.startswith("wsmux"):
            assert f"e2e.latency5k.{c}.recv-to-callback" in names
    for r in results:
        assert "error" not in r.info, (r.name, r.info)
    parsed = well_formed(results)
    lat = next(r for r in parsed["results"] if r["name"] == "e2e.latency5k.wsmux-websockets")
    assert lat["info"]["matched_frames"] > 0
    assert set(lat["metrics"]) == {"p50_us", "p99_us", "p999_us", "max_us", "mean_us"}


class TinySettings(bench_run.Settings):
    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.feed_steps = 20
        self.repeat = 1
        self.e2e_steps = 60
        self.latency_seconds = 0.02
        self.rates = (5_000.0,)


def test_run_main_writes_json_and_flags_regressions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_run, "Settings", TinySettings)
    out = tmp_path / "run.json"
    only = ["--only", "feed.binance", "--only", "log", "--only", "stages"]
    assert bench_run.main(["--quick", "--json", str(out), *only]) == 0
    parsed = json.loads(out.read_text())
    names = [r["name"] for r in parsed["results"]]
    assert "feed.binance" in names and "log.write" in names and "stages.binance.feed" in names
    assert not any(n.startswith(("feed.okx", "e2e", "recordings")) for n in names)
    assert parsed["quick"] is True and "loadavg_start" in parsed["machine"]
    # an impossibly fast baseline (1 ps per message): every gated figure regressed
    for item in parsed["results"]:
        item["metrics"] = {k: (1e-6 if k == "us_per_msg" else v) for k, v in item["metrics"].items()}
    base = tmp_path / "base.json"
    base.write_text(json.dumps(parsed))
    assert bench_run.main(["--quick", "--baseline", str(base), "--only", "feed.binance"]) == 1
    # and against itself (generous threshold) nothing is flagged
    assert bench_run.main(["--quick", "--baseline", str(out), "--threshold", "100", "--only", "feed.binance"]) == 0


def test_wsmux_bench_command_finds_the_suite_and_passes_options() -> None:
    assert wsmux_bench.bench_dir() == BENCH
    args = cli.build_parser().parse_args(
        ["bench", "--quick", "--json", "o.json", "--baseline", "b.json", "--only", "feed", "--threshold", "0.2"]
    )
    assert args.command == "bench"
    assert wsmux_bench._argv(args) == [
        "--quick",
        "--json",
        "o.json",
        "--baseline",
        "b.json",
        "--threshold",
        "0.2",
        "--e2e-venue",
        "binance",
        "--only",
        "feed",
    ]
    assert bench_run.build_parser().parse_args(wsmux_bench._argv(args)).only == ["feed"]
    gated = cli.build_parser().parse_args(["bench", "--gate-latency"])
    assert wsmux_bench._argv(gated)[-1] == "--gate-latency"
    assert bench_run.build_parser().parse_args(wsmux_bench._argv(gated)).gate_latency


def test_wsmux_bench_without_the_suite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WSMUX_BENCH_DIR", str(tmp_path))
    monkeypatch.setattr(wsmux_bench, "__file__", str(tmp_path / "pkg" / "wsmux" / "bench.py"))
    assert wsmux_bench.bench_dir() is None
    assert wsmux_bench.main(["--quick"]) == 2
