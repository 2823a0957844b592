"""Run the wsmux benchmarks; print a table, optionally write JSON and compare with a baseline.

::

    .venv/bin/python bench/run.py [--quick] [--json out.json] [--baseline base.json]
                                  [--threshold 0.15] [--only NAME ...]
    wsmux bench ...                         (the same, from a source checkout)

Groups (``--only`` takes a group or a result-name prefix, e.g. ``feed.binance``
or ``e2e.saturation``; repeatable):

* ``feed``        parse + normalize + book apply per venue (Feed.on_frame), on
                  each venue's mock-generated stream;
* ``recordings``  the same on the real recordings in ../shared/recordings;
* ``e2e``         loopback, server in its own process: saturation and
                  wire-to-callback latency at 10K/50K msg/s, wsmux on both
                  transports beside the bare asyncio/websockets/picows floors;
* ``log``         message-log write / read / replay and compression ratio;
* ``stages``      per-stage cost of the hot path (json, adapter, feed, dispatch);
* ``cryptofeed``  cryptofeed 2.4.1's handler cost on the same recordings, run
                  by ``bench/bench_cryptofeed.py`` in the separate virtualenv
                  named by $WSMUX_CRYPTOFEED_PYTHON (default
                  /tmp/cfvenv/bin/python; skipped when absent; full runs only);
* ``venue-scripts`` the venue helpers' own ``bench/bench_<venue>.py`` scripts
                  (text output kept in the JSON; full runs only).

``--quick`` keeps the whole run under a minute on 2 cores. With
``--baseline``, every µs/msg figure (and with ``--gate-latency`` every p50/p99)
slower than the baseline by more than ``--threshold`` is flagged and the exit
status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import benchlib  # noqa: E402
from benchlib import BenchResult, compare, format_comparisons, format_results, report  # noqa: E402

__all__ = ["GROUPS", "main", "run"]

GROUPS = ("feed", "recordings", "e2e", "log", "stages", "cryptofeed", "venue-scripts")
OWN_SCRIPTS = {
    "bench_feed",
    "bench_e2e",
    "bench_server",
    "bench_logio",
    "bench_profile",
    "bench_log",
    "bench_cryptofeed",
    "benchlib",
}


class Settings:
    """Sizes of one run (quick or full)."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.feed_steps = 3000 if quick else 10_000
        self.repeat = 3 if quick else 5
        self.e2e_steps = 12_000 if quick else 100_000
        self.latency_seconds = 0.5 if quick else 3.0
        self.rates = (10_000.0, 50_000.0)
        self.stage_venues: Sequence[str] | None = ("binance",) if quick else None


def _selected(group: str, only: Sequence[str]) -> bool:
    if not only:
        return group != "venue-scripts"  # only on request: the helpers' scripts take minutes
    return any(o == group or o.startswith(group + ".") for o in only)


def _venue_filter(group: str, only: Sequence[str]) -> list[str] | None:
    """``--only feed.binance`` → ``["binance"]``; None when the whole group runs."""
    venues = [o.split(".", 1)[1] for o in only if o.startswith(group + ".")]
    if not venues or any(o == group for o in only):
        return None
    return [v.split(".")[0] for v in venues]


def _keep(result: BenchResult, only: Sequence[str]) -> bool:
    if not only:
        return True
    return any(result.name == o or result.name.startswith(o + ".") for o in only)


def _venue_scripts(log: bool) -> list[BenchResult]:
    results = []
    for path in sorted(HERE.glob("bench_*.py")):
        if path.stem in OWN_SCRIPTS:
            continue
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, str(path)], check=False, capture_output=True, text=True, timeout=300, cwd=HERE.parent
            )
            out, code = proc.stdout[-20_000:], proc.returncode
        except subprocess.TimeoutExpired:
            out, code = "timed out after 300 s", -1
        info: dict[str, Any] = {"script": path.name, "exit": code, "seconds": round(time.perf_counter() - started, 2)}
        info["output"] = out
        if code != 0:
            info["error"] = f"exit status {code}"
        results.append(BenchResult(f"venue-scripts.{path.stem[len('bench_') :]}", {}, info))
        if log:
            print(f"--- {path.name} (exit {code}) ---\n{out}", flush=True)
    return results


def _cryptofeed(settings: Settings, log: bool) -> list[BenchResult]:
    python = os.environ.get("WSMUX_CRYPTOFEED_PYTHON", "/tmp/cfvenv/bin/python")
    if not Path(python).is_file():
        if log:
            print(f"  cryptofeed: no interpreter at {python}, skipped", flush=True)
        return []
    proc = subprocess.run(
        [python, str(HERE / "bench_cryptofeed.py"), "--repeat", str(settings.repeat)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = []
    for line in proc.stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        name = f"cryptofeed.{item.pop('venue')}"
        metrics = {k: float(item.pop(k)) for k in ("msgs_per_s", "us_per_msg") if k in item}
        results.append(BenchResult(name, metrics, item))
    if log:
        for r in results:
            print(format_results([r]).splitlines()[1], r.info.get("error", ""), flush=True)
    return results


def run(
    settings: Settings, only: Sequence[str] = (), *, e2e_venue: str = "binance", log: bool = True
) -> list[BenchResult]:
    """Run the selected groups; return every result (errors kept as results with ``info['error']``)."""
    import bench_e2e
    import bench_feed
    import bench_logio
    import bench_profile

    results: list[BenchResult] = []
    scripts: dict[str, benchlib.Script] = {}
    if log:
        print(format_results([]), flush=True)
    if _selected("feed", only) or _selected("stages", only):
        venues = _venue_filter("feed", only) or _venue_filter("stages", only)
        res, scripts = bench_feed.bench_venues(venues, steps=settings.feed_steps, repeat=settings.repeat, log=log)
        if _selected("feed", only):
            results.extend(res)
    if _selected("recordings", only):
        results.extend(bench_feed.bench_recordings(repeat=settings.repeat, log=log))
    e2e_script: benchlib.Script | None = None
    if _selected("e2e", only) or _selected("log", only):
        try:
            e2e_script = benchlib.generate_script(e2e_venue, settings.e2e_steps)
        except Exception as exc:
            results.append(BenchResult(f"e2e.{e2e_venue}", {}, {"error": f"cannot generate: {exc}"}))
    if e2e_script is not None and _selected("e2e", only):
        try:
            results.extend(
                bench_e2e.bench_e2e(e2e_script, rates=settings.rates, latency_seconds=settings.latency_seconds, log=log)
            )
        except Exception as exc:
            results.append(BenchResult("e2e", {}, {"error": f"{type(exc).__name__}: {exc}"}))
            if log:
                print(f"  e2e failed: {type(exc).__name__}: {exc}", flush=True)
    if e2e_script is not None and _selected("log", only):
        results.extend(bench_logio.bench_log_io(e2e_script, repeat=max(1, settings.repeat - 2), log=log))
    if _selected("stages", only) and only:
        stage_venues = _venue_filter("stages", only) or settings.stage_venues or list(scripts)
    elif _selected("stages", only):
        stage_venues = settings.stage_venues or list(scripts)
    else:
        stage_venues = []
    for venue in stage_venues:
        script = scripts.get(venue)
        if script is None:
            continue
        stage_results = bench_profile.stage_timings(script, repeat=settings.repeat)
        results.extend(stage_results)
        if log:
            for r in stage_results:
                print(format_results([r]).splitlines()[1], flush=True)
    if _selected("cryptofeed", only) and (not settings.quick or only):
        results.extend(_cryptofeed(settings, log))
    if _selected("venue-scripts", only):
        results.extend(_venue_scripts(log))
    return [r for r in results if _keep(r, only)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsmux bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole run in under a minute")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON (for a baseline)")
    parser.add_argument("--baseline", metavar="PATH", help="compare with a stored --json run")
    parser.add_argument("--threshold", type=float, default=0.15, help="slowdown that counts as a regression")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="group or result prefix")
    parser.add_argument(
        "--gate-latency", action="store_true", help="also flag p50/p99 latency slowdowns (noisy on shared machines)"
    )
    parser.add_argument("--e2e-venue", default="binance", help="venue whose stream the e2e server sends")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    load = os.getloadavg()
    started = time.perf_counter()
    results = run(Settings(args.quick), args.only, e2e_venue=args.e2e_venue)
    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} results in {elapsed:.1f} s (load average at start {load[0]:.2f})")
    cpus = os.cpu_count() or 1
    if load[0] > cpus / 2:
        print(f"warning: the machine was busy (load {load[0]:.2f} on {cpus} CPUs): figures are unreliable")
    doc = report(results, quick=args.quick, argv=argv_list)
    doc["machine"]["loadavg_start"] = list(load)
    doc["machine"]["loadavg_end"] = list(os.getloadavg())
    doc["seconds"] = round(elapsed, 2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, default=str)
        print(f"wrote {args.json}")
    status = 0
    if args.baseline:
        with open(args.baseline, encoding="utf-8") as fh:
            base = json.load(fh)
        if bool(base.get("quick")) != bool(args.quick):
            print("warning: the baseline was measured in a different mode (--quick or not): sizes differ")
        if base.get("machine", {}).get("cpu") != doc["machine"].get("cpu"):
            print(f"warning: the baseline was measured on another CPU ({base.get('machine', {}).get('cpu')!r})")
        gated = benchlib.GATED_METRICS | (benchlib.LATENCY_METRICS if args.gate_latency else frozenset())
        comparisons = compare(doc, base, threshold=args.threshold, metrics=gated)
        print(format_comparisons(comparisons, args.threshold))
        if any(c.regressed for c in comparisons):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
