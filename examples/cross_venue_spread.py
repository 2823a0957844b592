"""Cross-venue spread monitor: buy on one venue, sell on another, net of taker fees.

Runs three built-in mock exchanges (Binance, OKX, Bybit) on 127.0.0.1, each
with its own random-walk market around the same price, so their books drift
apart and cross now and then. A :class:`wsmux.analytics.CrossVenueSpread`
reads the three synced books and prints an ``Opportunity`` whenever the best
net spread is positive — only from valid books, fresh within ``--max-age``
seconds (by exchange time) and proving at least sequence integrity. The
consolidated best bid/offer runs beside it (``subscribe_consolidated``).

    python examples/cross_venue_spread.py [--seconds 5] [--fee-bps 0] [--max-age 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from wsmux import Integrity, Multiplexer, book
from wsmux.analytics import CrossVenueSpread, Opportunity, Resumed, Suspended
from wsmux.testing import MockBinance, MockBybit, MockOkx

SYMBOL = "BTC-USDT"
MOCKS = {"binance": MockBinance, "okx": MockOkx, "bybit": MockBybit}


async def main(seconds: float, fee_bps: float, max_age: float) -> None:
    async with contextlib.AsyncExitStack() as stack:
        endpoints = {}
        for seed, (venue, mock_cls) in enumerate(MOCKS.items(), start=1):
            mock = await stack.enter_async_context(mock_cls([SYMBOL], rate=100, seed=seed))
            mock.run()
            endpoints[venue] = mock.endpoint
        mux = await stack.enter_async_context(Multiplexer(endpoints=endpoints))
        monitor = CrossVenueSpread(
            SYMBOL,
            MOCKS,
            fees_bps=fee_bps,
            max_age_ns=int(max_age * 1e9),
            min_integrity=Integrity.SEQUENCE,
            clock="receive",  # the mocks' exchange clocks are synthetic; real venues: the default "exchange"
        )
        signals = mux.analyze(monitor, *(book(venue, SYMBOL) for venue in MOCKS))
        consolidated = mux.subscribe_consolidated(SYMBOL, MOCKS)
        seen = {"opportunities": 0, "suspended": 0, "quotes": 0}

        async def watch_signals() -> None:
            async for ev in signals:
                if isinstance(ev, Opportunity):
                    seen["opportunities"] += 1
                    print(
                        f"buy {ev.buy_venue:<8} {ev.buy_price:>10.2f}  sell {ev.sell_venue:<8} {ev.sell_price:>10.2f}"
                        f"  size {ev.size:.5f}  gross {ev.gross_bps:6.2f} bp  net {ev.net_bps:6.2f} bp"
                    )
                elif isinstance(ev, Suspended):
                    seen["suspended"] += 1
                    print(f"  [{ev.venue} left out: {ev.reason}]")
                elif isinstance(ev, Resumed):
                    print(f"  [{ev.venue} back in]")

        async def count_quotes() -> None:
            async for _ in consolidated:
                seen["quotes"] += 1

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(watch_signals(), count_quotes()), seconds)
        cons = mux.consolidated(SYMBOL)
        print(
            f"{seen['opportunities']} opportunities net of {fee_bps} bp taker fees, "
            f"{seen['suspended']} venue suspensions, {seen['quotes']} consolidated quotes in {seconds} s; "
            f"now: best bid {cons.best_bid()}, best ask {cons.best_ask()}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fee-bps", type=float, default=0.0, help="taker fee on every venue, basis points")
    parser.add_argument("--max-age", type=float, default=2.0, help="freshness bound, seconds of exchange time")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.fee_bps, args.max_age))
