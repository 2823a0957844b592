"""Per-venue data-stall defaults (issue 10, item 18): a peer that keeps the socket
alive (answers WebSocket pings) but sends no data is noticed within the venue's
``Heartbeat.stale_after`` — which ``Multiplexer(stale_after=None)`` (the default)
uses — instead of after the venue's long silence timeout."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import attrs
import pytest
from hostile import HostileServer

from wsmux import Backoff, Connected, Multiplexer, Stale, book, quotes, trades
from wsmux.adapter import Heartbeat, Limits
from wsmux.connection import Connection
from wsmux.errors import ConfigError
from wsmux.exchanges.binance import BinanceSpotAdapter

FAST = Backoff(initial=0.01, cap=0.05)
WAIT = 20.0


class QuickStaleBinance(BinanceSpotAdapter):
    """Binance spot with its venue default scaled down to 0.3 s (the silence
    timeout stays 600 s: only the stall timer can notice the silent peer)."""

    heartbeat: ClassVar[Heartbeat] = attrs.evolve(BinanceSpotAdapter.heartbeat, stale_after=0.3)
    limits: ClassVar[Limits] = attrs.evolve(BinanceSpotAdapter.limits, connections_per_window=100_000)


def test_every_venue_declares_a_stall_default_in_tens_of_seconds() -> None:
    from wsmux import exchanges

    for venue in exchanges.names():
        hb = exchanges.get(venue).heartbeat
        assert hb.stale_after is not None and 20.0 <= hb.stale_after <= 120.0, venue
        assert hb.stale_after < hb.silence_timeout or hb.silence_timeout < 60.0, venue
        assert {c.value for c in hb.stale_channels} == {"book", "quotes", "l3"}, venue


async def test_a_silent_peer_that_answers_pings_is_noticed_within_the_venue_default() -> None:
    async with HostileServer() as srv:
        mux = Multiplexer(adapters={"binance": QuickStaleBinance}, endpoints={"binance": srv.endpoint}, backoff=FAST)
        assert mux.stale_after is None  # the default: each venue's own
        async with mux:
            stream = mux.subscribe(book("binance", "BTC-USDT"))
            connected = 0
            stale: list[Stale] = []
            async with asyncio.timeout(WAIT):
                async for event in stream:
                    if isinstance(event, Connected):
                        connected += 1
                    elif isinstance(event, Stale):
                        stale.append(event)
                    if connected >= 2:  # resubscribed once, still silent: replaced
                        break
            assert stale and stale[0].symbol is None and stale[0].silent_ns >= 300_000_000
            assert srv.ws_connections >= 2
            assert any(b"SUBSCRIBE" in (m if isinstance(m, bytes) else m.encode()) for m in srv.ws_received)
            await stream.aclose()


async def test_the_venue_default_is_armed_by_books_and_quotes_not_by_trades() -> None:
    async with HostileServer() as srv:
        mux = Multiplexer(adapters={"binance": QuickStaleBinance}, endpoints={"binance": srv.endpoint}, backoff=FAST)
        async with mux:
            tape = mux.subscribe(trades("binance", "BTC-USDT"))
            conn = await _only_connection(mux, 1)
            assert conn.liveness.stall_timeout == 0.3
            assert conn.liveness.expect_data is False  # an illiquid tape may be silent for hours
            top = mux.subscribe(quotes("binance", "BTC-USDT"))
            await _only_connection(mux, 2)
            assert conn.liveness.expect_data is True
            await top.aclose()
            assert conn.liveness.expect_data is False
            await tape.aclose()


async def _only_connection(mux: Multiplexer, subscriptions: int) -> Connection:
    """The multiplexer's one connection, once it carries ``subscriptions`` (placement is in the background)."""
    async with asyncio.timeout(WAIT):
        while not (mux.connections() and len(mux.connections()[0].subscriptions) == subscriptions):
            await asyncio.sleep(0.001)
    (conn,) = mux.connections()
    return conn


@pytest.mark.parametrize(("stale_after", "timeout", "armed_by_trades"), [(False, None, False), (2.5, 2.5, True)])
async def test_stale_after_overrides(stale_after: float, timeout: float | None, armed_by_trades: bool) -> None:
    async with HostileServer() as srv:
        mux = Multiplexer(
            adapters={"binance": QuickStaleBinance},
            endpoints={"binance": srv.endpoint},
            backoff=FAST,
            stale_after=stale_after,
        )
        async with mux:
            tape = mux.subscribe(trades("binance", "BTC-USDT"))
            conn = await _only_connection(mux, 1)
            assert conn.liveness.stall_timeout == timeout
            assert conn.liveness.expect_data is armed_by_trades or timeout is None
            await tape.aclose()


@pytest.mark.parametrize("bad", [0, -1.0, True, "30"])
def test_stale_after_rejects_nonsense(bad: object) -> None:
    with pytest.raises(ConfigError):
        Multiplexer(stale_after=bad)  # type: ignore[arg-type]
