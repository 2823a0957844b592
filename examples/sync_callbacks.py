"""The synchronous API with callbacks: count trades per symbol, no asyncio in sight.

Starts a mock Binance in a helper thread unless --live is given.

    python examples/sync_callbacks.py [--live] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections import Counter

from wsmux import Trade, trades
from wsmux.sync import Multiplexer
from wsmux.testing.binance import MockBinance


def start_mock(symbols: list[str]) -> tuple[MockBinance, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    mock = MockBinance(symbols, rate=100)

    async def start() -> None:
        await mock.start()
        mock.run()

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    return mock, loop


def main(live: bool, seconds: float) -> None:
    symbols = ["BTC-USDT", "ETH-USDT"]
    endpoints = {}
    if not live:
        mock, _loop = start_mock(symbols)
        endpoints["binance"] = mock.endpoint
    counts: Counter[str] = Counter()
    with Multiplexer(endpoints=endpoints) as mux:
        stream = mux.subscribe(trades("binance", *symbols))
        stream.on(Trade, lambda t: counts.update([t.symbol]))  # runs in wsmux's background thread
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                stream.get(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        print(dict(counts))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--live", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    main(args.live, args.seconds)
