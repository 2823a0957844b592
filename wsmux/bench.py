"""``wsmux bench``: run the benchmark suite of a wsmux source checkout.

The benchmarks live in the repository's ``bench/`` folder (they are
development tools, not part of the installed package: they need the mock
servers, a server subprocess and optional comparison clients). This module
finds that folder — ``$WSMUX_BENCH_DIR``, else ``bench/`` beside the
``wsmux`` package of a source or editable install — and runs
``bench/run.py`` with the same options::

    wsmux bench [--quick] [--json out.json] [--baseline base.json]
                [--threshold 0.15] [--only NAME] [--e2e-venue VENUE] [--gate-latency]

equivalent to ``python bench/run.py ...``. Exit status: 0, 1 when a figure
regressed past the threshold against ``--baseline``, 2 when the benchmarks
cannot be found.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "bench_dir", "main", "run_from_args"]


def bench_dir() -> Path | None:
    """The benchmark folder (with ``run.py``), or None when not found."""
    candidates = []
    env = os.environ.get("WSMUX_BENCH_DIR")
    if env:
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[1] / "bench")
    for path in candidates:
        if (path / "run.py").is_file():
            return path
    return None


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to the CLI's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "bench", help="run the benchmarks (source checkout): msgs/s, µs/msg, latency; --json, --baseline"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole run in under a minute")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON (a baseline for later runs)")
    parser.add_argument("--baseline", metavar="PATH", help="compare with a stored --json run; exit 1 on regression")
    parser.add_argument("--threshold", type=float, default=0.15, help="slowdown that counts as a regression (0.15)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="a group (feed, recordings, e2e, log, stages, venue-scripts) or a result prefix; repeatable",
    )
    parser.add_argument("--e2e-venue", default="binance", help="venue whose stream the e2e server sends")
    parser.add_argument("--gate-latency", action="store_true", help="also flag p50/p99 latency slowdowns")
    return parser


def _argv(args: argparse.Namespace) -> list[str]:
    argv: list[str] = []
    if args.quick:
        argv.append("--quick")
    if args.json:
        argv += ["--json", args.json]
    if args.baseline:
        argv += ["--baseline", args.baseline]
    argv += ["--threshold", str(args.threshold), "--e2e-venue", args.e2e_venue]
    for name in args.only:
        argv += ["--only", name]
    if args.gate_latency:
        argv.append("--gate-latency")
    return argv


def main(argv: Sequence[str]) -> int:
    """Run ``bench/run.py`` with ``argv``; 2 if the benchmarks are not there."""
    folder = bench_dir()
    if folder is None:
        sys.stderr.write(
            "wsmux bench: the benchmarks are not installed with the package; run it from a source "
            "checkout (python bench/run.py) or set WSMUX_BENCH_DIR to the bench/ folder\n"
        )
        return 2
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("wsmux_bench_run", folder / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    status: int = module.main(list(argv))
    return status


def run_from_args(args: argparse.Namespace) -> int:
    """Run with the options parsed by :func:`add_parser`'s subcommand."""
    return main(_argv(args))
