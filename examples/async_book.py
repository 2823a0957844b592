"""Async iteration: keep a Binance book and print its top every 100 updates.

Runs against the built-in mock exchange by default (no network needed);
pass --live to connect to the real Binance.

    python examples/async_book.py [--live] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from wsmux import BookUpdate, Gap, Multiplexer, Resynced, Trade, book, trades
from wsmux.testing.binance import MockBinance


async def main(live: bool, seconds: float) -> None:
    async with contextlib.AsyncExitStack() as stack:
        endpoints = {}
        if not live:
            mock = await stack.enter_async_context(MockBinance(["BTC-USDT"], rate=200))
            mock.run()
            endpoints["binance"] = mock.endpoint
        mux = await stack.enter_async_context(Multiplexer(endpoints=endpoints))
        stream = mux.subscribe(book("binance", "BTC-USDT"), trades("binance", "BTC-USDT"))
        updates = n_trades = 0

        async def consume() -> None:
            nonlocal updates, n_trades
            async for event in stream:
                if isinstance(event, BookUpdate):
                    updates += 1
                    if updates % 100 == 0:
                        view = mux.book("binance", "BTC-USDT")
                        print(f"update {updates}: bid {view.best_bid()} ask {view.best_ask()} valid={view.valid}")
                elif isinstance(event, Trade):
                    n_trades += 1
                elif isinstance(event, Gap | Resynced):
                    print(event)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consume(), seconds)
        print(f"{updates} book updates, {n_trades} trades in {seconds} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--live", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main(args.live, args.seconds))
