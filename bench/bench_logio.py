"""Message log: write, read and replay throughput, and the compression ratio.

Frames are a venue's generated stream (:func:`benchlib.generate_script`,
Binance by default), logged as a live connection would log them: an ``open``
record with the subscriptions, the REST snapshot bodies, the warm-up and the
data frames, one receive time each. Measured:

* ``log.write`` — ``LogWriter.write`` per frame, closing (and the final
  fsync) included; ``compression_ratio`` = frame bytes / file bytes;
* ``log.read`` — ``read_log(path).frames()``, plain tuples;
* ``log.replay`` — ``Replay(path).events()``: read + adapter + book sync,
  i.e. the rate at which a day of recorded data re-runs.

(``bench/bench_log.py`` is the log module's own micro-benchmark with
synthetic frames and block-size/fsync options.)

Run alone::

    .venv/bin/python bench/bench_logio.py [--venue binance] [--steps 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from benchlib import FAKE_REST, FAKE_WS, BenchResult, Script, format_results, generate_script

from wsmux.log import Direction, LogHeader, LogWriter, Replay, read_log

__all__ = ["bench_log_io"]


def bench_log_io(script: Script, *, repeat: int = 3, log: bool = True) -> list[BenchResult]:
    """Write, read and replay ``script`` as a message log (best of ``repeat``)."""
    subs = [str(s) for s in script.subscriptions]
    frames = script.data
    n = len(frames)
    frame_bytes = sum(len(f.encode() if isinstance(f, str) else f) for f in frames)
    t_write = t_read = t_replay = float("inf")
    size = 0
    events = 0
    for _ in range(max(1, repeat)):
        with tempfile.TemporaryDirectory(prefix="wsmux-bench-log-") as tmp:
            path = Path(tmp) / "bench.wslog"
            header = LogHeader(venue=script.venue, endpoint=FAKE_WS + script.target, subscriptions=tuple(subs))
            base = time.time_ns()
            writer = LogWriter(path, header)
            writer.write(Direction.OPEN, base, 1, orjson.dumps(subs), FAKE_WS + script.target)
            for key, body in script.rest.items():
                writer.write(Direction.REST, base, 1, body, FAKE_REST + key)
            for frame in script.warmup:
                writer.write(Direction.IN, base, 1, frame)
            write = writer.write
            kind = Direction.IN
            t0 = time.perf_counter()
            for i, frame in enumerate(frames):
                write(kind, base + i * 20_000, 1, frame)
            writer.close()
            t_write = min(t_write, time.perf_counter() - t0)
            size = path.stat().st_size

            t0 = time.perf_counter()
            count = 0
            for _frame in read_log(path).frames():
                count += 1
            t_read = min(t_read, time.perf_counter() - t0)

            t0 = time.perf_counter()
            events = 0
            for _event in Replay(path).events():
                events += 1
            t_replay = min(t_replay, time.perf_counter() - t0)
    records = count
    results = [
        BenchResult(
            "log.write",
            {
                "msgs_per_s": n / t_write,
                "us_per_msg": t_write / n * 1e6,
                "mb_per_s": frame_bytes / t_write / 1e6,
                "compression_ratio": frame_bytes / size,
            },
            {"venue": script.venue, "count": n, "frame_bytes": frame_bytes, "file_bytes": size},
        ),
        BenchResult(
            "log.read",
            {
                "msgs_per_s": records / t_read,
                "us_per_msg": t_read / records * 1e6,
                "mb_per_s": frame_bytes / t_read / 1e6,
            },
            {"records": records},
        ),
        BenchResult(
            "log.replay",
            {"msgs_per_s": records / t_replay, "us_per_msg": t_replay / records * 1e6},
            {"records": records, "events": events, "note": "read + adapter + book sync"},
        ),
    ]
    if log:
        for r in results:
            print(format_results([r]).splitlines()[1], flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venue", default="binance")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    script = generate_script(args.venue, args.steps)
    print(format_results([]))
    bench_log_io(script, repeat=args.repeat)


if __name__ == "__main__":
    main()
