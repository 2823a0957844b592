"""Hyperliquid spot pairs against MockHyperliquid, end to end: the instrument
lists over the mock's ``POST /info``, books and trades of spot coins
(``@107``, ``PURR/USDC``) at Feed level and through the Multiplexer, and the
conformance suite on captured spot frames."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from feedclient_top import FeedClient, feed_client, mock_top, publish_until_top_changes, wait_book_time

from wsmux import (
    Backoff,
    BookUpdate,
    Channel,
    Error,
    ErrorKind,
    Gap,
    Integrity,
    Multiplexer,
    Resynced,
    Subscription,
    Trade,
    book,
    candles,
    quotes,
    trades,
)
from wsmux.errors import UnknownSymbol
from wsmux.exchanges.hyperliquid import HyperliquidAdapter
from wsmux.model import Instrument
from wsmux.testing import MockHyperliquid, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
BTC, HYPE, PURR = "BTC-USD-PERP", "HYPE-USDC", "PURR-USDC"


async def listed(mock: MockHyperliquid) -> list[Instrument]:
    """The instruments the adapter's own requests get from the mock's REST server."""
    adapter = HyperliquidAdapter(url=mock.ws_url, rest_url=mock.rest_url)
    out: list[Instrument] = []
    async with httpx.AsyncClient() as http:
        for request in adapter.instruments_requests():
            response = await http.request(request.method, request.url, content=request.body)
            assert response.status_code == 200, response.text
            out.extend(adapter.parse_instruments(response.content))
    return out


def is_pong(frame: str | bytes) -> bool:
    return frame in ('{"channel":"pong"}', b'{"channel":"pong"}')


@contextlib.asynccontextmanager
async def client(mock: MockHyperliquid, subs: list[Subscription]) -> AsyncIterator[FeedClient]:
    adapter = HyperliquidAdapter(url=mock.ws_url)
    adapter.use_instruments(await listed(mock))
    async with feed_client(mock, adapter, subs, is_pong) as c:
        yield c


async def test_the_mock_lists_perpetuals_and_spot_pairs_over_post_info() -> None:
    async with MockHyperliquid([BTC, HYPE, PURR]) as mock:
        instruments = {i.symbol: i for i in await listed(mock)}
        assert mock.instruments_served == 2
        assert (instruments[BTC].kind, instruments[BTC].native) == ("perp", "BTC")
        assert (instruments[HYPE].kind, instruments[HYPE].native, instruments[HYPE].lot_size) == ("spot", "@107", 1e-5)
        assert instruments[PURR].native == "PURR/USDC"
        async with httpx.AsyncClient() as http:  # the endpoint is a POST, like the venue's
            assert (await http.get(mock.rest_url + "/info")).status_code == 405


async def test_spot_books_and_trades_equal_the_mock_after_many_steps() -> None:
    async with MockHyperliquid([HYPE, PURR, BTC]) as mock:
        subs = [*book("hyperliquid", HYPE, PURR), *trades("hyperliquid", HYPE), *quotes("hyperliquid", PURR)]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(300)
            await c.sync()
            assert {m for m in map(str, mock.received) if '"coin"' in m} >= {
                '{"method":"subscribe","subscription":{"type":"l2Book","coin":"@107"}}',
                '{"method":"subscribe","subscription":{"type":"l2Book","coin":"PURR/USDC"}}',
            }
            for symbol in (HYPE, PURR):
                local = c.feed.book(symbol)
                assert local is not None and local.valid and local.integrity is Integrity.UNVERIFIABLE
                assert local.depth() == mock_top(mock, symbol) and len(local.depth()[0]) == 20
                assert sum(isinstance(e, BookUpdate) and e.symbol == symbol for e in c.events) > 150
            market = mock.markets[HYPE]
            tape = c.of(Trade)
            assert {t.symbol for t in tape} == {HYPE} and len(tape) == market.next_trade_id - 1 > 50
            assert all(t.size > 0 for t in tape)  # sizes in the base token, as the mock's lots
            assert not c.of(Gap) and not c.of(Error)


async def test_multiplexer_asubscribe_of_spot_pairs_validates_and_tracks_the_book() -> None:
    async with MockHyperliquid([HYPE, PURR, BTC]) as mock:
        async with Multiplexer(endpoints={"hyperliquid": mock.endpoint}, backoff=FAST) as mux:
            assert mux.validate_symbols
            stream = await mux.asubscribe(book("hyperliquid", HYPE, PURR), trades("hyperliquid", HYPE))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            for symbol in (HYPE, PURR):
                await wait_book_time(stream, symbol, await publish_until_top_changes(mock, symbol))
                view = mux.book("hyperliquid", symbol)
                assert view.valid and view.depth() == mock_top(mock, symbol)
            assert mux.counters["unknown_symbols"] == 0
            await stream.aclose()


async def test_multiplexer_did_you_mean_for_a_misspelt_spot_pair() -> None:
    async with MockHyperliquid([HYPE, BTC]) as mock:
        async with Multiplexer(endpoints={"hyperliquid": mock.endpoint}, backoff=FAST) as mux:
            with pytest.raises(UnknownSymbol, match="did you mean 'HYPE-USDC'") as info:
                await mux.asubscribe(book("hyperliquid", "HYPE-USDT"))
            assert info.value.suggestions == (HYPE,)


@pytest.mark.parametrize("validate", [True, False])
async def test_multiplexer_subscribe_of_a_spot_pair_without_the_list_is_refused(validate: bool) -> None:
    """Synchronous subscribe() before the list is loaded (or with validation
    off, when the list is never used) cannot spell the coin: it raises, and
    nothing is sent to the venue."""
    async with MockHyperliquid([HYPE, BTC]) as mock:
        async with Multiplexer(
            endpoints={"hyperliquid": mock.endpoint}, backoff=FAST, validate_symbols=validate
        ) as mux:
            with pytest.raises(UnknownSymbol, match="spotMeta instrument list, which is not loaded"):
                mux.subscribe(book("hyperliquid", HYPE))
            assert mock.connections_total == 0


class _SpotReady(HyperliquidAdapter):
    """The adapter with the mock's spot list already learned (the conformance
    suite builds adapters by class; the multiplexer would give them the list)."""

    spot: list[Instrument] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_instruments(self.spot)


async def test_conformance_on_spot_frames() -> None:
    subs = [Subscription("hyperliquid", c, HYPE) for c in (Channel.BOOK, Channel.TRADES, Channel.QUOTES)]
    subs += list(candles("hyperliquid", HYPE))
    async with MockHyperliquid([HYPE], seed=3) as mock:
        _SpotReady.spot = [i for i in await listed(mock) if i.kind == "spot"]
        frames = await capture_frames(mock, _SpotReady, subs, steps=60)
    assert any('"coin":"@107"' in str(f) for f in frames)
    report = check_adapter(_SpotReady, symbol=HYPE, frames=frames, subscriptions=subs, mutations=400)
    assert report.events > 60 and report.mutations == 400
    assert {"BookSnapshot", "Trade", "Quote", "Candle"} <= set(report.kinds)


async def test_a_pair_listed_after_the_first_connection_is_refused_and_reported() -> None:
    """The venue's connections keep the list their first connection got; a
    pair listed later (the list is fetched again after its TTL, here at once) cannot be
    spelled by them: the subscription is refused with an Error event and
    counted, never lost silently or crashing the placement."""
    ubtc = "UBTC-USDC"
    async with MockHyperliquid([HYPE, ubtc]) as mock:
        index = mock.spot_index.pop(ubtc)  # not listed yet
        async with Multiplexer(endpoints={"hyperliquid": mock.endpoint}, backoff=FAST, instruments_ttl=1e-9) as mux:
            first = await mux.asubscribe(book("hyperliquid", HYPE))
            await collect_until(first, lambda e: isinstance(e, Resynced))
            mock.spot_index[ubtc] = index  # listed now
            later = await mux.asubscribe(book("hyperliquid", ubtc))
            [error] = await collect_until(later, lambda e: isinstance(e, Error))
            assert isinstance(error, Error) and error.kind is ErrorKind.UNKNOWN_SYMBOL and error.symbol == ubtc
            assert "listed since the venue's first connection" in error.message
            assert mux.counters["unknown_symbols"] == 1
            assert not any('"@142"' in str(m) for m in mock.received)
            await mock.publish(5)  # the first book is still served
            await wait_book_time(first, HYPE, await publish_until_top_changes(mock, HYPE))
            await first.aclose()


async def test_a_recorded_spot_session_replays_under_the_unified_symbols(tmp_path: object) -> None:
    """The meta and spotMeta answers are in the message log: a replay spells
    ``@107`` back to HYPE-USDC as the live run did."""
    from pathlib import Path

    from wsmux.log import Replay

    directory = Path(str(tmp_path))
    async with MockHyperliquid([HYPE, BTC]) as mock:
        async with Multiplexer(endpoints={"hyperliquid": mock.endpoint}, backoff=FAST, record=str(directory)) as mux:
            stream = await mux.asubscribe(trades("hyperliquid", HYPE), book("hyperliquid", HYPE))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(200)
            n = mock.markets[HYPE].next_trade_id - 1
            live = await collect_until(stream, lambda e: isinstance(e, Trade) and e.trade_id == str(10**14 + 7 * n))
            await stream.aclose()
    live_trades = [e for e in live if isinstance(e, Trade)]
    replayed = list(Replay(sorted(directory.glob("*.wslog"))).events())
    assert not [e for e in replayed if isinstance(e, Error)]
    replayed_trades = [e for e in replayed if isinstance(e, Trade)]
    assert len(live_trades) == n > 10 and replayed_trades[: len(live_trades)] == live_trades
    assert {e.symbol for e in replayed if isinstance(e, BookUpdate)} == {HYPE}
