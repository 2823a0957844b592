"""Benchmark the message log: write and read ~200k Binance-like depth frames.

Run::

    .venv/bin/python bench/bench_log.py [--n 200000] [--block-size 65536] [--fsync close]

Prints, for writing and for reading (as Record objects and as plain tuples):
messages/s, µs/message and MB/s of frame bytes, plus the file size and the
compression ratio (frame bytes / file bytes). Frames are generated before the
clock starts; the file goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from wsmux.log import Direction, LogHeader, LogWriter, read_log

# symbol, mid price, tick size, lot size (Binance spot filters, late 2023)
MARKETS = [
    ("BTCUSDT", 43250.0, 0.01, 0.00001),
    ("ETHUSDT", 2280.0, 0.01, 0.0001),
    ("BNBUSDT", 231.0, 0.1, 0.001),
    ("SOLUSDT", 58.4, 0.01, 0.001),
    ("XRPUSDT", 0.6123, 0.0001, 1.0),
    ("DOGEUSDT", 0.0812, 0.00001, 1.0),
    ("ADAUSDT", 0.3811, 0.0001, 0.1),
    ("TRXUSDT", 0.1032, 0.00001, 0.1),
]


def make_frames(n: int, seed: int = 1) -> list[str]:
    """Binance combined-stream ``depth@100ms`` diffs, about 300 bytes each."""
    rng = random.Random(seed)
    update_ids = [rng.randrange(10**9, 4 * 10**9) for _ in MARKETS]
    event_ms = 1_700_000_000_000
    frames = []
    for _ in range(n):
        i = rng.randrange(len(MARKETS))
        sym, mid, tick, lot = MARKETS[i]
        first = update_ids[i] + 1
        update_ids[i] += rng.randint(1, 6)
        event_ms += rng.randint(0, 3)

        def levels(sign: int, mid: float = mid, tick: float = tick, lot: float = lot) -> str:
            out = []
            for _ in range(rng.randint(1, 4)):
                price = mid + sign * tick * rng.randint(1, 400)
                qty = 0.0 if rng.random() < 0.2 else lot * int(rng.expovariate(1 / 2000) + 1)
                out.append(f'["{price:.8f}","{qty:.8f}"]')
            return ",".join(out)

        frames.append(
            f'{{"stream":"{sym.lower()}@depth@100ms","data":{{"e":"depthUpdate","E":{event_ms},'
            f'"s":"{sym}","U":{first},"u":{update_ids[i]},"b":[{levels(-1)}],"a":[{levels(1)}]}}}}'
        )
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="number of frames")
    parser.add_argument("--block-size", type=int, default=64 * 1024)
    parser.add_argument("--fsync", default="close", choices=["never", "block", "close"])
    parser.add_argument("--bytes", action="store_true", help="log frames as bytes instead of str")
    args = parser.parse_args()

    frames_str = make_frames(args.n)
    frames: list[bytes | str] = [f.encode() if args.bytes else f for f in frames_str]
    frame_bytes = sum(len(f) for f in frames_str)
    n = len(frames)
    base_ns = 1_700_000_000 * 10**9
    times = [base_ns + i * 50_000 for i in range(n)]  # 20k msg/s of receive times
    print(f"{n} frames, {frame_bytes / n:.0f} bytes average, {frame_bytes / 1e6:.1f} MB of frame data")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.wslog"
        header = LogHeader(venue="binance", endpoint="wss://stream.binance.com:9443/stream")
        t0 = time.perf_counter()
        with LogWriter(path, header, block_size=args.block_size, fsync=args.fsync) as writer:
            write = writer.write
            kind = Direction.IN
            for t, frame in zip(times, frames, strict=True):
                write(kind, t, 1, frame)
        t_write = time.perf_counter() - t0
        size = path.stat().st_size

        t0 = time.perf_counter()
        count = 0
        for _record in read_log(path):
            count += 1
        t_read = time.perf_counter() - t0
        assert count == n

        t0 = time.perf_counter()
        count = 0
        for _frame in read_log(path).frames():
            count += 1
        t_tuples = time.perf_counter() - t0
        assert count == n

    print(f"file: {size / 1e6:.2f} MB, compression ratio {frame_bytes / size:.2f}x")
    print(f"blocks: {writer.stats.blocks}, block size {args.block_size}, fsync {args.fsync}")
    for label, secs in (
        ("write", t_write),
        ("read (Record)", t_read),
        ("read (tuples)", t_tuples),
    ):
        print(
            f"{label:14s} {n / secs:>11,.0f} msg/s  {secs / n * 1e6:6.2f} µs/msg  {frame_bytes / secs / 1e6:7.1f} MB/s"
        )


if __name__ == "__main__":
    main()
