"""MEXC spot protobuf decoding: the ``protobuf`` runtime (generated
``_mexc_push_pb2``, the ``wsmux[mexc]`` extra) against wsmux's pure-Python
reader (:mod:`wsmux.exchanges._mexc_proto`).

Two measurements, best of ``--repeat`` passes (wall time per frame):

1. ``MexcAdapter.parse`` over a stream rendered by :class:`~wsmux.testing.MockMexc`
   (depth pushes, deals, book tickers, klines: the real frame mix), once per
   decoder; the events of both are checked to be equal first.
2. Decoding alone (wrapper + body to Python strings) of an aggregated-depth
   push with 1, 3, 10 and 50 levels per side.

Run: ``.venv/bin/python bench/bench_mexc_proto.py [--steps 3000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from benchlib import generate_script  # type: ignore[import-not-found]

from wsmux.exchanges import _mexc_proto as proto
from wsmux.exchanges.mexc import MexcAdapter, protobuf_available


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def depth_frame(levels: int) -> bytes:
    bids = [(f"{92877.58 - i * 0.01:.2f}", f"{0.00012345 * (i + 1):.8f}") for i in range(levels)]
    asks = [(f"{92880.00 + i * 0.01:.2f}", f"{0.5 * (i + 1):.8f}") for i in range(levels)]
    stream = "spot@public.aggre.depth.v3.api.pb@100ms"
    body = proto.encode_depths(bids, asks, stream, "10589632359", "10589632370")
    return proto.encode_wrapper(f"{stream}@BTCUSDT", "BTCUSDT", 1736411507002, proto.AGGRE_DEPTHS, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not protobuf_available():
        raise SystemExit("the protobuf runtime is not installed: pip install 'wsmux[mexc]'")
    script = generate_script("mexc", args.steps, levels=500)
    frames = [f for f in script.data if isinstance(f, bytes) and not f.startswith(b"{")]
    adapters = {name: MexcAdapter(decoder=name) for name in ("protobuf", "python")}
    for adapter in adapters.values():
        adapter.subscribe(script.subscriptions)
    for frame in frames[:500]:
        fast, slow = (adapters[n].parse(frame, 1) for n in ("protobuf", "python"))
        assert repr(fast) == repr(slow), (fast, slow)
    print(f"MexcAdapter.parse over {len(frames)} mock frames (the real mix), best of {args.repeat}:")
    for name, adapter in adapters.items():

        def run(adapter: MexcAdapter = adapter) -> None:
            for frame in frames:
                adapter.parse(frame, 1)

        print(f"  {name:9s} {best(run, args.repeat) / len(frames) * 1e6:7.2f} µs/frame")
    print("decoding one aggregated-depth push (wrapper + levels as str):")
    for levels in (1, 3, 10, 50):
        frame = depth_frame(levels)
        row = []
        for name, adapter in adapters.items():
            decoder = adapter._decode

            def run_one(decoder: object = decoder, frame: bytes = frame) -> None:
                for _ in range(2000):
                    body = decoder.wrapper(frame)[4]  # type: ignore[attr-defined]
                    decoder.depths(body)  # type: ignore[attr-defined]

            row.append(f"{name} {best(run_one, args.repeat) / 2000 * 1e6:7.2f} µs")
        print(f"  {levels:3d} levels/side ({len(frame):5d} bytes): " + "   ".join(row))


if __name__ == "__main__":
    main()
