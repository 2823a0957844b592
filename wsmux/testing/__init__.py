"""Testing tools shipped with wsmux: mock exchanges on 127.0.0.1 and helpers.

Mock servers speak each venue's real protocol (subscribe handshake, snapshots,
diffs with correct sequence numbers and checksums, trades, heartbeats), driven
by a seeded random-walk :class:`Market`, with fault injection through
:class:`Faults`. Point the real client at one with its ``endpoint``::

    async with MockBinance(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"binance": mock.endpoint}) as mux:
            ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from wsmux.model import Event
from wsmux.testing._chaos import ChaosProxy, MemoryMeter, ProxyStats
from wsmux.testing._conformance import ConformanceReport, capture_frames, check_adapter, parse_events
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import Faults, MockConnection, MockExchange
from wsmux.testing._thread import ThreadedMock, run_mock_in_thread
from wsmux.testing.binance import MockBinance, MockBinanceCoinm, MockBinanceFutures, MockBinanceUS
from wsmux.testing.bitfinex import MockBitfinex
from wsmux.testing.bitflyer import MockBitflyer
from wsmux.testing.bitget import MockBitget, MockBitgetFutures
from wsmux.testing.bithumb import MockBithumb
from wsmux.testing.bitmex import MockBitmex
from wsmux.testing.bitstamp import MockBitstamp
from wsmux.testing.bybit import MockBybit, MockBybitLinear
from wsmux.testing.coinbase import MockCoinbase, MockCoinbaseAdvanced
from wsmux.testing.cryptocom import MockCryptocom
from wsmux.testing.deribit import MockDeribit
from wsmux.testing.dydx import MockDydx
from wsmux.testing.gateio import MockGate, MockGateFutures
from wsmux.testing.gemini import MockGemini, MockGeminiV2
from wsmux.testing.htx import MockHtx, MockHtxSwap
from wsmux.testing.hyperliquid import MockHyperliquid
from wsmux.testing.kraken import MockKraken, MockKrakenV1
from wsmux.testing.kraken_futures import MockKrakenFutures, MockKrakenFuturesInverse
from wsmux.testing.kucoin import MockKucoin, MockKucoinFutures
from wsmux.testing.mexc import MockMexc, MockMexcFutures
from wsmux.testing.okx import MockOkx
from wsmux.testing.phemex import MockPhemex
from wsmux.testing.poloniex import MockPoloniex, MockPoloniexFutures
from wsmux.testing.upbit import MockUpbit

__all__ = [
    "ChaosProxy",
    "MemoryMeter",
    "ProxyStats",
    "ConformanceReport",
    "capture_frames",
    "check_adapter",
    "parse_events",
    "Change",
    "Faults",
    "Market",
    "MarketTrade",
    "MockBinance",
    "MockBinanceCoinm",
    "MockBinanceFutures",
    "MockBinanceUS",
    "MockBitfinex",
    "MockBitmex",
    "MockBithumb",
    "MockBitstamp",
    "MockBitget",
    "MockBitgetFutures",
    "MockBitflyer",
    "MockBybit",
    "MockBybitLinear",
    "MockCoinbase",
    "MockCoinbaseAdvanced",
    "MockConnection",
    "MockDeribit",
    "MockDydx",
    "MockExchange",
    "MockHyperliquid",
    "MockGemini",
    "MockGeminiV2",
    "MockHtx",
    "MockHtxSwap",
    "MockCryptocom",
    "MockGate",
    "MockGateFutures",
    "MockKraken",
    "MockKrakenFutures",
    "MockKrakenFuturesInverse",
    "MockKrakenV1",
    "MockMexc",
    "MockMexcFutures",
    "MockKucoin",
    "MockKucoinFutures",
    "MockOkx",
    "MockUpbit",
    "ThreadedMock",
    "MockPhemex",
    "MockPoloniex",
    "MockPoloniexFutures",
    "collect_until",
    "run_mock_in_thread",
]


async def collect_until(
    events: AsyncIterator[Event],
    predicate: Callable[[Event], bool],
    *,
    timeout: float = 10.0,
) -> list[Event]:
    """Read ``events`` until one satisfies ``predicate``; return all read
    (the matching one last). Raises ``TimeoutError`` after ``timeout`` seconds
    — a bound for a test that would otherwise hang, not a synchronisation."""
    seen: list[Event] = []

    async def run() -> list[Event]:
        async for event in events:
            seen.append(event)
            if predicate(event):
                return seen
        raise AssertionError(f"stream ended before the predicate matched; saw {len(seen)} events")

    return await asyncio.wait_for(run(), timeout)
