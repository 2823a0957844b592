"""The demo's mocks stamp their messages with the venue clock (real time plus
``clock_skew``), so latency and clock-offset figures read real values (they
used to count from 2023 and every sample was 'bad ts')."""

from __future__ import annotations

import pytest

from wsmux import Multiplexer, Trade, trades
from wsmux.testing import MockBitfinex, MockBybit, MockCoinbase, MockExchange, MockKraken, MockOkx, collect_until

CASES = [
    (MockOkx, "okx", "BTC-USDT"),
    (MockBybit, "bybit", "BTC-USDT"),
    (MockCoinbase, "coinbase", "BTC-USD"),
    (MockKraken, "kraken", "BTC-USD"),
    (MockBitfinex, "bitfinex", "BTC-USD"),
]


@pytest.mark.parametrize(("mock_cls", "venue", "symbol"), CASES, ids=[c[1] for c in CASES])
async def test_trades_carry_the_venue_clock(mock_cls: type[MockExchange], venue: str, symbol: str) -> None:
    async with mock_cls([symbol], seed=3) as mock:
        mock.clock_skew = 5.0  # the venue's clock runs 5 s ahead
        async with Multiplexer(endpoints={venue: mock.endpoint}, validate_symbols=False) as mux:
            stream = mux.subscribe(trades(venue, symbol))
            for _ in range(50):  # bounded: publish until a trade arrives
                await mock.publish(20)
                try:
                    events = await collect_until(stream, lambda e: isinstance(e, Trade), timeout=0.5)
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("no trade")
            trade = events[-1]
            assert isinstance(trade, Trade) and trade.ts is not None
            ahead_s = (trade.ts - trade.recv_ns) / 1e9
            assert 4.0 < ahead_s < 6.0, ahead_s  # 5 s ahead, within a second of scheduling
