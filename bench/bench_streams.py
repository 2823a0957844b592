"""What each extra callback stream on the same data costs per event.

N streams subscribe the same trades, each with one sync callback; one event
goes through the multiplexer's dispatch (the per-route table of the streams'
``put`` functions, then each stream's accounting and callback). Printed: the
dispatch time for 1, 2 and 5 streams (medians of 5 rounds, best of 3 timeit
runs each) and the cost of one more stream. Run::

    .venv/bin/python bench/bench_streams.py
"""

from __future__ import annotations

import statistics
import timeit

from wsmux import Multiplexer, trades
from wsmux.model import Event, Side, Trade
from wsmux.stream import Stream

__all__ = ["main"]


def _mux(streams: int) -> Multiplexer:
    mux = Multiplexer()
    subs = tuple(trades("binance", "BTC-USDT"))
    for i in range(streams):
        stream = Stream(subs, name=f"s{i}")
        stream.on(Event, lambda event: None)
        mux._attach_stream(stream)
    return mux


def main() -> int:
    event = Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "1", None, 1, None)
    timings: dict[int, list[float]] = {}
    number = 200_000
    for _ in range(5):
        for n in (1, 2, 5):
            dispatch = _mux(n)._dispatch
            best = min(timeit.repeat(lambda dispatch=dispatch: dispatch(event), number=number, repeat=3))
            timings.setdefault(n, []).append(best / number * 1e6)
    med = {n: statistics.median(v) for n, v in timings.items()}
    for n, value in med.items():
        print(f"{n} stream(s): {value:.3f} µs per event")
    print(f"each extra stream: {(med[5] - med[1]) / 4:.3f} µs per event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
