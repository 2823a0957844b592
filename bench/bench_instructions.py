"""Instructions per steady frame on the full path, counted by valgrind (callgrind).

Wall-clock figures on a shared 2-core machine move by 20-50 % with the load
next to them; instruction counts do not (the same binary, input and
environment give the same count, whatever else runs). This script counts the
CPU instructions the full path a callback sees (``Feed.on_frame`` → the
multiplexer's checks and dispatch → ``Stream._put`` → one counting sync
callback, metrics on: :func:`bench_fullpath.full_path`) spends per *steady*
frame: each case runs twice under ``valgrind --tool=callgrind`` in a child
process, once up to the end of its warm-up (snapshots loaded, books synced)
and once through the steady frames too; the difference divided by the number
of steady frames is the figure. Frames are handed over as bytes, as the
websockets transport delivers them.

Cases: the generated Binance stream (``bench_fullpath.generated``) split by
frame kind (depth diffs, aggTrades, bookTickers), the real recordings where
present (Binance, Kraken v1 with checksums, Coinbase), and the cost of one
extra callback stream on the same bookTicker frames (two streams minus one).

Needs valgrind (Debian's package); skipped with a message when absent. Slow
(about 30 s per case). Run::

    .venv/bin/python bench/bench_instructions.py [--only binance.depth ...]
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

__all__ = ["CASES", "count", "main"]

CASES = (
    "binance.depth",
    "binance.aggTrade",
    "binance.bookTicker",
    "binance.bookTicker.2streams",
    "recording.binance",
    "recording.kraken",
    "recording.coinbase",
)
_WARMUP = {"recording.binance": 40}
_DEFAULT_WARMUP = 500


def _kind(frame: bytes) -> str:
    import orjson

    msg = orjson.loads(frame)
    data = msg.get("data", msg) if isinstance(msg, dict) else {}
    return str(data.get("e") or "bookTicker") if isinstance(data, dict) else "other"


def _prepare(case: str, path: Path) -> bool:
    """Build the case's frames (warm-up + steady) into ``path``; False if its source is absent."""
    import bench_fullpath as fp

    if case.startswith("recording."):
        made = {
            "recording.binance": lambda: fp.binance_recording(False),
            "recording.kraken": lambda: fp.kraken_recording(False, True),
            "recording.coinbase": fp.coinbase_recording,
        }[case]()
        if made is None:
            return False
        frames = [f.encode() if isinstance(f, str) else f for f in made.frames]
        warm = _WARMUP.get(case, _DEFAULT_WARMUP)
        head, steady, stamps = frames[:warm], frames[warm:], made.recv_ns
    else:
        made = fp.generated("binance", 3000)
        frames = [f.encode() if isinstance(f, str) else f for f in made.frames]
        kind = {"depth": "depthUpdate"}.get(case.split(".")[1], case.split(".")[1])
        head = frames[:_DEFAULT_WARMUP]
        steady = [f for f in frames[_DEFAULT_WARMUP:] if _kind(f) == kind]
        stamps = made.recv_ns
    assert stamps is not None
    # the REST answers the run will ask for, recorded once here (closures do not pickle)
    from wsmux._pipeline import FetchSnapshot

    bodies: dict[Any, bytes] = {}
    feed, _count = fp.full_path(fp.Case(case, made.venue, made.subs, head + steady, made.rest))
    for frame in head + steady:
        feed.on_frame(frame, stamps[0])
        for action in feed.take_actions():
            if isinstance(action, FetchSnapshot):
                body = bodies[_rest_key(action)] = made.rest(action)
                feed.on_snapshot_body(action.symbol, body, stamps[0], action.channel)
    with path.open("wb") as fh:
        pickle.dump((case, made.venue, made.subs, head, steady, stamps[0], bodies), fh)
    return True


def _rest_key(action: Any) -> tuple[str, tuple[Any, ...]]:
    return action.request.url, tuple(action.request.params)


def _child(path: Path, run_steady: bool) -> None:
    """Run one case (in the process valgrind watches)."""
    import logging

    logging.disable(logging.CRITICAL)
    import bench_fullpath as fp

    from wsmux._pipeline import FetchSnapshot
    from wsmux.model import Event
    from wsmux.stream import Stream

    with path.open("rb") as fh:
        case, venue, subs, head, steady, stamp, bodies = pickle.load(fh)

    def rest(action: Any) -> bytes:
        body: bytes = bodies[_rest_key(action)]
        return body

    feed, _count = fp.full_path(fp.Case(case, venue, subs, head + steady, rest))
    if case.endswith(".2streams"):  # a second stream with its own callback on the same data
        extra = Stream(tuple(subs), name="extra", clock_ns=time.time_ns)
        extra.on(Event, lambda event: None)
        feed.sink.__self__._attach_stream(extra)  # type: ignore[attr-defined]

    def run(frames: list[bytes]) -> None:
        for frame in frames:
            feed.on_frame(frame, stamp)
            if feed.actions:
                for action in feed.take_actions():
                    if isinstance(action, FetchSnapshot):
                        feed.on_snapshot_body(action.symbol, rest(action), stamp, action.channel)

    run(head)
    if run_steady:
        run(steady)
    print(len(steady))


def _instructions(path: Path, run_steady: bool) -> int:
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(path),
        "1" if run_steady else "0",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-500:]}")
    return int(found.group(1))


def count(case: str, workdir: Path) -> tuple[int, int] | None:
    """(instructions per steady frame, steady frames) of ``case``, or None if its source is absent."""
    path = workdir / f"{case}.pkl"
    if not _prepare(case, path):
        return None
    with path.open("rb") as fh:
        steady = len(pickle.load(fh)[4])
    if not steady:
        raise RuntimeError(f"{case}: no steady frames")
    if case.endswith(".2streams"):
        one = count(case.removesuffix(".2streams"), workdir)
        assert one is not None
        two = (_instructions(path, True) - _instructions(path, False)) // steady
        return two - one[0], steady
    return (_instructions(path, True) - _instructions(path, False)) // steady, steady


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=None, choices=CASES)
    parser.add_argument("--child", nargs=2, metavar=("PICKLE", "STEADY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(Path(args.child[0]), args.child[1] == "1")
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind): nothing counted")
        return 0
    print(f"{'case':<30} {'steady frames':>13} {'instructions/frame':>19}")
    with tempfile.TemporaryDirectory(prefix="wsmux-instr-") as tmp:
        for case in args.only or CASES:
            result: Any = count(case, Path(tmp))
            if result is None:
                print(f"{case:<30} {'(recording absent: skipped)':>33}")
                continue
            per_frame, steady = result
            label = "extra stream, per event" if case.endswith(".2streams") else ""
            print(f"{case:<30} {steady:>13} {per_frame:>19,} {label}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
