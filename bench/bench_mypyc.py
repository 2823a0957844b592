"""How much compiling the hot modules with mypyc buys on the full path (issue 9).

Builds one copy of the package per step in a scratch directory, each with
more hot modules compiled by mypyc (``--steps``; default: the order the issue
asked for), and runs the full path of ``bench_fullpath.py`` (``Feed.on_frame``
→ multiplexer → ``Stream`` → a counting callback) in a fresh process per
build, the builds interleaved round after round (``--rounds``). The pure
Python build is this checkout itself.

Per steady frame it reports two means: ``bench_fullpath``'s (every steady
frame) and a *trimmed* one that drops frames above ``--cut`` µs — on a
loaded machine a frame that loses its time slice to another process costs
milliseconds, and a handful of those swamp the mean; the trimmed mean is
what a compiled module changes. With ``--callgrind`` it counts instructions
per steady frame instead (valgrind; independent of the load, slow).

Compiling needs a C compiler, the Python headers and mypy (the ``test``
extra). Some modules need a source adjustment before mypyc accepts them or
before the tests run green; each is applied to the scratch copy only
(``ADJUSTMENTS``) and printed. Run::

    .venv/bin/python bench/bench_mypyc.py [--rounds 5] [--steps 1,5] [--final] [--callgrind]

Figures and conclusions: ``docs/performance.rst`` ("Compiled builds").
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

STEPS: list[list[str]] = [
    ["wsmux/book/_orderbook.py"],
    ["wsmux/book/_sync.py"],
    ["wsmux/_pipeline.py"],
    ["wsmux/exchanges/_binance_common.py", "wsmux/exchanges/binance.py"],
    ["wsmux/stream.py"],
]
"""Modules compiled by step *n* (cumulative). ``binance.py`` goes with
``_binance_common.py``: interpreted classes cannot subclass compiled ones."""

CASES = ("binance-recording", "binance-generated", "kraken-recording", "kraken-generated")

__all__ = ["ADJUSTMENTS", "CASES", "STEPS", "build", "main"]


def _subclassable(text: str) -> str:
    """Binance adapters: tests (and users, through ``Multiplexer(adapters=...)``)
    subclass them, which a compiled class refuses unless marked."""
    text = re.sub(r"^(class Binance\w+\()", r"@mypyc_attr(allow_interpreted_subclasses=True)\n\1", text, flags=re.M)
    return _import(text, "from mypy_extensions import mypyc_attr")


def _stats_apart(text: str) -> str:
    """stream.py: mypyc turns the attrs class ``StreamStats`` into a class whose
    ``dict`` attribute rejects the ``attrs.field(factory=dict)`` default at import
    (``TypeError: dict object expected; got _CountingAttr``): keep it interpreted."""
    start = text.index("@attrs.define(slots=True)\nclass StreamStats:")
    end = text.index("\nclass Stream:")
    moved = text[start:end]
    (Path("wsmux") / "_stream_stats.py").write_text(
        "from __future__ import annotations\n\nimport attrs\n\n" + moved, encoding="utf-8"
    )
    return text[:start] + "from wsmux._stream_stats import StreamStats\n\n" + text[end:]


def _final_constants(text: str) -> str:
    """``--final``: module constants marked ``Final``, which mypyc keeps in C
    statics instead of looking them up in the module dict at every use."""

    def mark(m: re.Match[str]) -> str:
        name, annotation = m.group(1), m.group(2)
        if name == "E":  # a TypeVar
            return m.group(0)
        return f"{name}: Final{'[' + annotation[2:] + ']' if annotation else ''} = "

    text = re.sub(r"^(_?[A-Z][A-Z_0-9]*)(: [^=\n]+)? = ", mark, text, flags=re.M)
    return _import(text, "from typing import Final")


def _import(text: str, line: str) -> str:
    return text.replace("from __future__ import annotations\n", f"from __future__ import annotations\n\n{line}\n", 1)


ADJUSTMENTS: dict[str, list[Callable[[str], str]]] = {
    "wsmux/exchanges/_binance_common.py": [_subclassable],
    "wsmux/exchanges/binance.py": [_subclassable],
    "wsmux/stream.py": [_stats_apart],
}


def build(directory: Path, modules: Sequence[str], final: bool) -> None:
    """A copy of the package in ``directory`` with ``modules`` compiled."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    shutil.copytree(ROOT / "wsmux", directory / "wsmux", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", directory / "pyproject.toml")
    cwd = Path.cwd()
    os.chdir(directory)  # mypyc names modules from the paths: wsmux.book._orderbook, not book._orderbook
    try:
        for module in modules:
            path = Path(module)
            text = path.read_text(encoding="utf-8")
            for adjust in [*ADJUSTMENTS.get(module, []), *([_final_constants] if final else [])]:
                text = adjust(text)
                print(f"  {module}: {adjust.__name__}", file=sys.stderr)
            path.write_text(text, encoding="utf-8")
        mypyc = Path(sys.executable).with_name("mypyc")
        done = subprocess.run([str(mypyc), *modules], capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"mypyc failed for {modules}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    finally:
        os.chdir(cwd)


# --- the worker: runs inside one build ---------------------------------------------------------


def _case(name: str, steps: int) -> Any:
    import bench_fullpath as bf  # type: ignore[import-not-found]

    builders = {
        "binance-recording": lambda: bf.binance_recording(False),
        "kraken-recording": lambda: bf.kraken_recording(False, True),
        "binance-generated": lambda: bf.generated("binance", steps),
        "kraken-generated": lambda: bf.generated("kraken", steps),
    }
    return builders[name]()


def worker(cases: Sequence[str], repeat: int, steps: int, cut_us: float) -> dict[str, Any]:
    """Per case: the compiled modules, and per repeat the mean and the trimmed
    mean (µs) over the steady frames."""
    import bench_fullpath as bf

    import wsmux

    out: dict[str, Any] = {"wsmux": wsmux.__file__}
    for name in cases:
        case = _case(name, steps)
        if case is None:  # the recording is absent
            continue
        run = bf.wsmux_runner(case)
        overhead = bf._timer_cost()
        run()  # warm up
        means: list[float] = []
        trimmed: list[float] = []
        dropped = 0
        gc.collect()
        gc.freeze()
        try:
            for _ in range(repeat):
                times, snaps, _ = run()
                steady = [t - overhead for i, t in enumerate(times) if i not in snaps]
                kept = [t for t in steady if t < cut_us * 1000]
                means.append(sum(steady) / len(steady) / 1000)
                trimmed.append(sum(kept) / len(kept) / 1000)
                dropped += len(steady) - len(kept)
        finally:
            gc.unfreeze()
        out[name] = {"mean": means, "trimmed": trimmed, "dropped": dropped, "steady": len(steady)}
    compiled = [
        m
        for m in sys.modules
        if m.startswith("wsmux") and str(getattr(sys.modules[m], "__file__", "")).endswith(".so") and "__mypyc" not in m
    ]
    out["compiled"] = sorted(compiled)
    return out


TOGGLE_C = "#include <valgrind/callgrind.h>\nvoid toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"
"""A client request that switches callgrind's counting on and off around each steady frame."""


def _callgrind_worker(case_name: str, steps: int, toggle_lib: str) -> None:
    """Under ``callgrind --collect-atstart=no``: one full-path pass with
    counting on for the steady frames only (the snapshot frames of a warm-up
    pass are skipped); with ``WSMUX_EMPTY`` set, then as many empty toggles
    (the caller subtracts their cost)."""
    import ctypes
    import time

    import bench_fullpath as bf

    from wsmux._pipeline import FetchSnapshot

    toggle = ctypes.CDLL(toggle_lib).toggle
    case = _case(case_name, steps)
    _, snaps, _ = bf.wsmux_runner(case)()
    feed, _ = bf.full_path(case)
    stamps = case.recv_ns or [time.time_ns()] * len(case.frames)
    for i, frame in enumerate(case.frames):
        counted = i not in snaps
        if counted:
            toggle()
        feed.on_frame(frame, stamps[i])
        for action in feed.take_actions() if feed.actions else ():
            if isinstance(action, FetchSnapshot):
                feed.on_snapshot_body(action.symbol, case.rest(action), stamps[i], action.channel)
        if counted:
            toggle()
    print(len(case.frames) - len(snaps))
    for _ in range(len(case.frames) - len(snaps) if os.environ.get("WSMUX_EMPTY") else 0):
        toggle()
        toggle()


# --- the driver --------------------------------------------------------------------------------


def _run(directory: Path | None, args: list[str], env: dict[str, str] | None = None) -> str:
    environ = dict(os.environ, **(env or {}))
    environ["PYTHONPATH"] = str(directory) if directory is not None else ""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=environ, check=True)
    return done.stdout


def _instructions(directory: Path | None, case: str, steps: int, toggle_lib: Path) -> float:
    """Instructions per steady frame of one full-path pass (see :func:`_callgrind_worker`)."""
    counts = []
    for empty in (False, True):
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                __file__,
                "--callgrind-worker",
                case,
                "--gen-steps",
                str(steps),
                "--toggle",
                str(toggle_lib),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, PYTHONPATH=str(directory) if directory else "", WSMUX_EMPTY="1" if empty else ""),
        )
        frames = int(done.stdout.split()[-1])
        counts.append(int(re.findall(r"Collected : (\d+)", done.stderr)[-1]))
    return (2 * counts[0] - counts[1]) / frames


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="1,2,3,4,5", help="builds to measure: numbers of STEPS compiled (0: none)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (one process per build per round)")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each case per process")
    parser.add_argument("--gen-steps", type=int, default=3000, help="market steps of the generated streams")
    parser.add_argument("--cut", type=float, default=200.0, help="trimmed mean: drop steady frames above this (µs)")
    parser.add_argument("--only", action="append", default=None, help=f"cases (default: all of {CASES})")
    parser.add_argument("--final", action="store_true", help="also mark module constants Final in compiled modules")
    parser.add_argument("--callgrind", action="store_true", help="instructions per frame (valgrind) instead of time")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the builds go (default: a temporary directory)"
    )
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--callgrind-worker", help=argparse.SUPPRESS)
    parser.add_argument("--toggle", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "bench"))
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.repeat, args.gen_steps, args.cut)))
        return 0
    if args.callgrind_worker:
        _callgrind_worker(args.callgrind_worker, args.gen_steps, args.toggle)
        return 0
    cases = args.only or list(CASES)
    steps = [int(s) for s in args.steps.split(",")]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wsmux-mypyc-"))
    builds: dict[str, Path | None] = {"pure": None}
    for n in steps:
        if n == 0:
            continue
        modules = [m for step in STEPS[:n] for m in step]
        print(f"building step {n}: {' '.join(modules)}", file=sys.stderr)
        build(workdir / f"step{n}", modules, args.final)
        builds[f"step{n}"] = workdir / f"step{n}"
    if args.callgrind:
        (workdir / "toggle.c").write_text(TOGGLE_C, encoding="utf-8")
        toggle_lib = workdir / "libtoggle.so"
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(toggle_lib), str(workdir / "toggle.c")], check=True)
        for case in cases:
            base = None
            for label, directory in builds.items():
                per_frame = _instructions(directory, case, args.gen_steps, toggle_lib)
                base = base or per_frame
                print(f"{case:<20} {label:<6} {per_frame / 1000:7.1f}K instructions/frame  {per_frame / base - 1:+.1%}")
        return 0
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in builds}
    worker_args = [
        "--worker",
        *cases,
        "--repeat",
        str(args.repeat),
        "--gen-steps",
        str(args.gen_steps),
        "--cut",
        str(args.cut),
    ]
    for r in range(args.rounds):
        for label, directory in builds.items():
            load = os.getloadavg()[0]
            results[label].append(json.loads(_run(directory, worker_args)))
            print(f"round {r + 1} {label} (load {load:.1f})", file=sys.stderr)
    for label, runs in results.items():
        print(f"{label}: compiled {', '.join(runs[0]['compiled']) or 'nothing'}")
    for case in cases:
        if case not in results["pure"][0]:
            print(f"{case}: skipped (recording absent)")
            continue
        base = statistics.median(statistics.median(run[case]["trimmed"]) for run in results["pure"])
        for label, runs in results.items():
            medians = [statistics.median(run[case]["trimmed"]) for run in runs]
            every = [t for run in runs for t in run[case]["trimmed"]]
            plain = statistics.median(m for run in runs for m in run[case]["mean"])
            med = statistics.median(medians)
            print(
                f"{case:<18} {label:<6} trimmed {med:6.2f} µs/frame [{min(every):.2f}-{max(every):.2f}] "
                f"{med / base - 1:+6.1%} vs pure | untrimmed median {plain:6.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
