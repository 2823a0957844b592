"""Every registered adapter with a mock exchange passes the conformance suite,
on frames captured from its mock and on hundreds of mutated frames."""

from __future__ import annotations

import pytest

import wsmux.testing as testing
from wsmux import Channel, LocalError, Subscription, exchanges
from wsmux.testing import MockExchange, capture_frames, check_adapter

MOCKS: dict[str, type[MockExchange]] = {
    cls.venue: cls
    for name in testing.__all__
    if name.startswith("Mock") and name not in ("MockExchange", "MockConnection")
    for cls in [getattr(testing, name)]
}
CANDIDATES = ("BTC-USDT", "BTC-USD", "BTC-USDT-PERP", "BTC-USD-PERP")
CHANNELS = (Channel.BOOK, Channel.TRADES, Channel.QUOTES)


def pick_symbol(venue: str) -> str:
    adapter = exchanges.get(venue)()
    for symbol in CANDIDATES:
        try:
            for channel in CHANNELS:
                if channel in adapter.channels:
                    adapter.check(Subscription(venue, channel, symbol))
        except LocalError:
            continue
        return symbol
    raise AssertionError(f"no candidate symbol works for {venue}")


def test_every_mock_has_a_registered_adapter() -> None:
    assert set(MOCKS) <= set(exchanges.names())
    assert len(MOCKS) >= 6


@pytest.mark.parametrize("venue", sorted(MOCKS))
async def test_adapter_conformance(venue: str) -> None:
    cls = exchanges.get(venue)
    symbol = pick_symbol(venue)
    subs = [Subscription(venue, c, symbol) for c in CHANNELS if c in cls.channels]
    async with MOCKS[venue]([symbol], seed=3) as mock:
        frames = await capture_frames(mock, cls, subs, steps=40)
    assert len(frames) >= 10, f"{venue}: the mock sent only {len(frames)} frames"
    report = check_adapter(cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=300)
    assert report.events > 0
    assert report.mutations == 300


CANDLE_VENUES = sorted(v for v in MOCKS if Channel.CANDLES in exchanges.get(v).channels)


def test_the_original_venues_offer_candles() -> None:
    assert {
        "binance", "binance-us", "binance-usdm", "binance-coinm", "bybit", "bybit-linear", "okx", "kraken-v1",
        "bitfinex", "coinbase-advanced",
    } <= set(CANDLE_VENUES)  # fmt: skip


@pytest.mark.parametrize("venue", CANDLE_VENUES)
async def test_every_mock_serves_the_candles_its_adapter_offers(venue: str) -> None:
    cls = exchanges.get(venue)
    symbol = pick_symbol(venue)
    subs = [Subscription(venue, c, symbol) for c in (Channel.CANDLES, Channel.TRADES) if c in cls.channels]
    async with MOCKS[venue]([symbol], seed=3) as mock:
        frames = await capture_frames(mock, cls, subs, steps=80)
    report = check_adapter(cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=100)
    assert report.kinds.get("Candle", 0) > 0, f"{venue}: no candle from {report.kinds}"
