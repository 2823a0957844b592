"""REST requests against a hostile peer (issue 10, items 7 and 8): every REST
request — book snapshots and trade backfills — has a *total* deadline and a body
cap, declared per venue in :class:`~wsmux.adapter.Limits`; a request that breaks
either is abandoned, reported as ``Error(SNAPSHOT)`` and retried with backoff."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import attrs
import httpx
import pytest
from hostile import HostileServer

from wsmux import Backfilled, Backoff, Connected, Error, ErrorKind, Event, Multiplexer, Stream, Trade, book, trades
from wsmux.adapter import Endpoint, HttpRequest, Limits
from wsmux.connection import fetch_rest
from wsmux.errors import RestBodyTooLarge, RestDeadlineExceeded
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.testing import MockBinance

FAST = Backoff(initial=0.01, cap=0.05)
WAIT = 20.0
"""Upper bound of every wait on an event (a hang fails the test, it never passes it)."""


class TightRestBinance(BinanceSpotAdapter):
    """Binance spot with a 0.3 s REST deadline and a 64 KiB body cap."""

    limits: ClassVar[Limits] = attrs.evolve(
        BinanceSpotAdapter.limits, rest_deadline=0.3, max_rest_body=64 * 1024, rest_weight_per_minute=10_000_000
    )


def test_limits_declare_sane_rest_bounds_for_every_venue() -> None:
    from wsmux import exchanges

    for venue in exchanges.names():
        limits = exchanges.get(venue).limits
        assert 1.0 <= limits.rest_deadline <= 60.0, venue
        assert 2**20 <= limits.max_rest_body <= 256 * 2**20, venue


# --- fetch_rest on its own ------------------------------------------------------------------


async def test_fetch_rest_total_deadline_beats_a_dripping_body() -> None:
    async with (
        HostileServer(http_mode="drip", drip_interval=0.01, declare_length=False) as srv,
        httpx.AsyncClient() as http,
    ):
        with pytest.raises(RestDeadlineExceeded, match=r"did not finish within 0\.2 s"):
            await fetch_rest(http, HttpRequest(f"{srv.http_url}/depth"), deadline=0.2, max_body=2**20)
        assert srv.requests == 1 and srv.body_bytes_sent >= 1  # headers and bytes came: each read was fast


@pytest.mark.parametrize("declare_length", [True, False])
async def test_fetch_rest_caps_the_body(declare_length: bool) -> None:
    size = 32 * 2**20
    async with (
        HostileServer(http_mode="oversized", body_size=size, declare_length=declare_length) as srv,
        httpx.AsyncClient() as http,
    ):
        with pytest.raises(RestBodyTooLarge):
            await fetch_rest(http, HttpRequest(f"{srv.http_url}/depth"), deadline=WAIT, max_body=64 * 1024)
        # abandoned early: the server could not push the whole body
        await asyncio.wait_for(_until(lambda: srv.aborted == 1 or srv.body_bytes_sent == size), WAIT)
        assert srv.body_bytes_sent < size


async def test_fetch_rest_reads_a_body_within_bounds() -> None:
    async with HostileServer(http_mode="ok", ok_body=b'{"a":1}') as srv, httpx.AsyncClient() as http:
        response = await fetch_rest(http, HttpRequest(f"{srv.http_url}/x"), deadline=WAIT, max_body=7)
        assert (response.status_code, response.body) == (200, b'{"a":1}')
        with pytest.raises(RestBodyTooLarge):
            await fetch_rest(http, HttpRequest(f"{srv.http_url}/x"), deadline=WAIT, max_body=6)


async def test_fetch_rest_sends_a_get_again_when_the_server_hangs_up_unanswered() -> None:
    """A pooled keep-alive connection the server closed as it was reused
    ("Server disconnected without sending a response") costs one more try,
    not a failed snapshot; a server that never answers still fails."""
    async with HostileServer(http_mode="ok", ok_body=b"[1]", hang_up_first=1) as srv, httpx.AsyncClient() as http:
        response = await fetch_rest(http, HttpRequest(f"{srv.http_url}/depth"), deadline=WAIT, max_body=2**20)
        assert (response.status_code, response.body, srv.requests) == (200, b"[1]", 2)
    async with HostileServer(http_mode="ok", hang_up_first=10) as srv, httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch_rest(http, HttpRequest(f"{srv.http_url}/depth"), deadline=WAIT, max_body=2**20)
        assert srv.requests == 2  # once more, not forever
        with pytest.raises(httpx.RemoteProtocolError):  # a POST is never sent twice
            await fetch_rest(http, HttpRequest(f"{srv.http_url}/t", method="POST"), deadline=WAIT, max_body=2**20)
        assert srv.requests == 3


async def _until(predicate: object) -> None:
    while not predicate():  # type: ignore[operator]
        await asyncio.sleep(0.005)


# --- through the multiplexer: Error(SNAPSHOT), then a backed-off retry -----------------------------


async def _next_error(stream: Stream, mock: MockBinance) -> Error:
    """Publish one market step at a time (a buffered diff asks for the next
    snapshot) until the stream yields an Error; each step's trade is the barrier."""
    async with asyncio.timeout(WAIT):
        while True:
            await mock.publish(1)
            last = mock.markets["BTC-USDT"].next_trade_id - 1
            async for event in stream:
                if isinstance(event, Error):
                    return event
                if isinstance(event, Trade) and event.trade_id >= last:  # type: ignore[operator]
                    break


@pytest.mark.parametrize(
    ("mode", "error"),
    [("drip", "RestDeadlineExceeded"), ("oversized", "RestBodyTooLarge")],
)
async def test_hostile_snapshot_is_reported_and_retried_with_backoff(mode: str, error: str) -> None:
    async with (
        MockBinance(["BTC-USDT"], seed=7) as mock,
        HostileServer(http_mode=mode, drip_interval=0.01, body_size=32 * 2**20, declare_length=False) as srv,
    ):
        mux = Multiplexer(
            adapters={"binance": TightRestBinance},
            endpoints={"binance": Endpoint(url=mock.ws_url, rest_url=srv.http_url)},
            backoff=FAST,
            validate_symbols=False,  # only the snapshot/backfill requests go to the hostile peer
        )
        async with mux:
            stream = mux.subscribe(book("binance", "BTC-USDT"), trades("binance", "BTC-USDT"))
            first = await _next_error(stream, mock)
            assert first.kind is ErrorKind.SNAPSHOT and first.symbol == "BTC-USDT"
            assert first.message.startswith(error), first.message
            second = await _next_error(stream, mock)  # retried (after a backoff delay), failed the same way
            assert second.kind is ErrorKind.SNAPSHOT and second.message.startswith(error)
            conn = mux.connections()[0]
            assert conn.stats.snapshot_requests == srv.requests == 2
            assert conn.stats.snapshot_failures == 2
            assert not mux.book("binance", "BTC-USDT").valid
            if mode == "oversized":
                assert srv.body_bytes_sent < srv.body_size * 2
            await stream.aclose()


async def test_hostile_trade_backfill_is_bounded_and_reported() -> None:
    async with (
        MockBinance(["BTC-USDT"], seed=8) as mock,
        HostileServer(http_mode="drip", drip_interval=0.01, declare_length=False) as srv,
    ):
        mux = Multiplexer(
            adapters={"binance": TightRestBinance},
            endpoints={"binance": Endpoint(url=mock.ws_url, rest_url=srv.http_url)},
            backoff=FAST,
            validate_symbols=False,  # only the snapshot/backfill requests go to the hostile peer
            backfill_trades=True,
        )
        async with mux:
            stream = mux.subscribe(trades("binance", "BTC-USDT"))
            seen: list[Event] = []
            market = mock.markets["BTC-USDT"]
            async with asyncio.timeout(WAIT):
                async for event in stream:
                    if isinstance(event, Connected):
                        break
                while market.next_trade_id < 3:
                    await mock.publish(1)
                mock.faults.drop_trades = 1  # a hole in the tape: backfill asks the (dripping) REST
                lost = market.next_trade_id
                while market.next_trade_id < lost + 3:
                    await mock.publish(1)
                async for event in stream:
                    seen.append(event)
                    if isinstance(event, Backfilled):
                        break
            errors = [e for e in seen if isinstance(e, Error)]
            assert len(errors) == 1 and errors[0].kind is ErrorKind.SNAPSHOT
            assert "RestDeadlineExceeded" in errors[0].message
            assert seen[-1].recovered == 0 and seen[-1].missing  # type: ignore[attr-defined]
            assert srv.requests == 1
            await stream.aclose()
