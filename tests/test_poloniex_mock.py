"""PoloniexAdapter / PoloniexFuturesAdapter against MockPoloniex(Futures), end to end.

Feed level (tests/feedclient.py, synchronised by ``{"event":"ping"}`` →
``{"event":"pong"}``) and Multiplexer level (synchronised on the ``id`` of the
last book update the mock rendered).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from feedclient_gz import assert_same_book, feed_client

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Integrity,
    Multiplexer,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    candles,
    funding,
    quotes,
    trades,
)
from wsmux.adapter import Adapter
from wsmux.exchanges.poloniex import PoloniexAdapter, PoloniexFuturesAdapter
from wsmux.testing import (
    MockExchange,
    MockPoloniex,
    MockPoloniexFutures,
    capture_frames,
    check_adapter,
    collect_until,
)

FAST = Backoff(initial=0.01, cap=0.05)
PONG = '{"event":"pong"}'


def client(mock: MockExchange, adapter: Adapter, subs: list[Subscription]) -> Any:
    return feed_client(mock, adapter, subs, ping='{"event":"ping"}', is_pong=lambda f: f in (PONG, PONG.encode()))


def spot(mock: MockPoloniex) -> PoloniexAdapter:
    return PoloniexAdapter(url=mock.ws_url, rest_url=mock.rest_url)


def futures(mock: MockPoloniex) -> PoloniexFuturesAdapter:
    return PoloniexFuturesAdapter(url=mock.ws_url, rest_url=mock.rest_url)


# --- Feed level ------------------------------------------------------------------------


async def test_spot_book_equals_the_venue_view_after_many_steps() -> None:
    async with MockPoloniex(["BTC-USDT", "ETH-USDT"], levels=20) as mock:
        subs = [
            *book("poloniex", "BTC-USDT", "ETH-USDT"),
            *trades("poloniex", "BTC-USDT"),
            *quotes("poloniex", "BTC-USDT"),
            *candles("poloniex", "BTC-USDT"),
        ]
        async with client(mock, spot(mock), subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(300)
            await c.sync()
            conn = next(iter(mock.connections.values()))
            for symbol in ("BTC-USDT", "ETH-USDT"):
                local = c.feed.book(symbol)
                assert local is not None and local.valid and local.integrity is Integrity.SEQUENCE
                bids, asks = mock.markets[symbol].depth()
                assert local.depth() == (bids[:20], asks[:20])  # up to 40 per side in the market
                local._check()
                sync = c.feed.syncs[symbol]
                assert sync.last == conn.state["seq"][symbol] and sync.stats.gaps == 0
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets["BTC-USDT"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert [t.trade_id for t in tape] == [str(60_184_000 + i) for i in range(1, market.next_trade_id)]
            assert all(t.size == market.size(round(t.size / 0.00001)) for t in tape)  # quantity, not amount
            last = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (last.bid_price, last.bid_size, last.ask_price, last.ask_size) == (
                market.price(bb),
                market.size(market.bids[bb]),
                market.price(ba),
                market.size(market.asks[ba]),
            )
            bars = [e for e in c.events if isinstance(e, Candle)]
            assert len(bars) == len(tape) and bars[-1].close == tape[-1].price and not bars[-1].closed


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
async def test_fault_detected_and_healed(fault: str, reason: GapReason) -> None:
    async with MockPoloniex(["BTC-USDT"]) as mock:
        async with client(mock, spot(mock), list(book("poloniex", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(30)
            setattr(mock.faults, fault, 1)
            await mock.publish(20)
            await c.wait(lambda: c.count(Gap) == 1)
            gap = next(e for e in c.events if isinstance(e, Gap))
            assert gap.reason is reason and gap.symbol == "BTC-USDT" and gap.channel is Channel.BOOK
            await c.wait(lambda: c.count(Resynced) == 2)  # unsubscribed and subscribed: a new snapshot
            await mock.publish(100)
            await c.sync()
            assert_same_book(c, mock, "BTC-USDT", 20)
            assert c.count(Gap) == 1


async def test_duplicates_are_stale_garbage_is_reported_rejections_too() -> None:
    async with MockPoloniex(["BTC-USDT"]) as mock:
        async with client(mock, spot(mock), list(book("poloniex", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            mock.faults.garbage = 2
            await mock.publish(50)
            await c.sync()
            assert c.count(Gap) == 0 and c.feed.syncs["BTC-USDT"].stats.stale == 3
            assert [e.kind for e in c.events if isinstance(e, Error)] == [ErrorKind.MALFORMED] * 2
            assert_same_book(c, mock, "BTC-USDT", 20)
            mock.faults.reject_subscriptions = True
            for message in c.adapter.subscribe(list(trades("poloniex", "BTC-USDT"))):
                await c.send(message)
            await c.wait(lambda: c.count(Error) == 3)
            assert [e for e in c.events if isinstance(e, Error)][-1].kind is ErrorKind.VENUE_ERROR


async def test_futures_in_contracts_then_base_units_and_funding() -> None:
    async with MockPoloniexFutures(["BTC-USDT-PERP"]) as mock, httpx.AsyncClient() as http:
        adapter = futures(mock)
        request = adapter.instruments_request()
        assert request is not None
        instruments = adapter.parse_instruments((await http.get(request.url)).content)
        assert [(i.symbol, i.native, i.contract_size, i.tick_size) for i in instruments] == [
            ("BTC-USDT-PERP", "BTC_USDT_PERP", 0.00001, 0.01)
        ]
        subs = [
            *book("poloniex-futures", "BTC-USDT-PERP"),
            *trades("poloniex-futures", "BTC-USDT-PERP"),
            *funding("poloniex-futures", "BTC-USDT-PERP"),
        ]
        async with client(mock, adapter, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 1 and c.count(Funding) == 1)
            await mock.publish(100)
            await c.sync()
            market = mock.markets["BTC-USDT-PERP"]
            local = c.feed.book("BTC-USDT-PERP")
            assert local is not None and local.valid
            lots = (
                tuple((market.price(p), float(s)) for p, s in sorted(market.bids.items(), reverse=True)),
                tuple((market.price(p), float(s)) for p, s in sorted(market.asks.items())),
            )
            assert local.depth() == (lots[0][:20], lots[1][:20])  # contracts
            fundings = [e for e in c.events if isinstance(e, Funding)]
            assert len(fundings) == 11 and 0 < fundings[-1].rate < 0.001 and fundings[-1].next_funding_ts
            adapter.use_instruments(instruments)
            for message in adapter.resync_messages(subs[0]):
                await c.send(message)
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(50)
            await c.sync()
            bids, asks = market.depth()
            got_bids, got_asks = local.depth()
            assert [p for p, _ in got_bids] == [p for p, _ in bids[:20]]
            assert [s for _, s in got_bids] == pytest.approx([s for _, s in bids[:20]], rel=1e-12)
            assert [s for _, s in got_asks] == pytest.approx([s for _, s in asks[:20]], rel=1e-12)
            last = [e for e in c.events if isinstance(e, Trade)][-1]
            assert last.size == pytest.approx(market.size(round(last.size / 0.00001)), rel=1e-12)
            assert c.count(Gap) == 0 and c.count(Error) == 0


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def test_multiplexer_book_matches_mock_and_heals_a_gap() -> None:
    async with MockPoloniexFutures(["BTC-USDT-PERP", "ETH-USDT-PERP"]) as mock:
        async with Multiplexer(endpoints={"poloniex-futures": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("poloniex-futures", "BTC-USDT-PERP", "ETH-USDT-PERP"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(200)
            conn = next(iter(mock.connections.values()))
            for symbol in ("BTC-USDT-PERP", "ETH-USDT-PERP"):
                await wait_seq(stream, symbol, conn.state["seq"][symbol])
                assert mux.book("poloniex-futures", symbol).valid
            mock.faults.skip_seq = 1
            await mock.publish(20)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced) and e.symbol == events[-1].symbol)
            await mock.publish(50)
            for symbol in ("BTC-USDT-PERP", "ETH-USDT-PERP"):
                await wait_seq(stream, symbol, conn.state["seq"][symbol])
                view = mux.book("poloniex-futures", symbol)
                market = mock.markets[symbol]
                assert view.valid
                assert [p for p, _ in view.depth()[0]] == [market.price(p) for p in sorted(market.bids, reverse=True)][
                    :20
                ]
            await stream.aclose()


@pytest.mark.parametrize(
    ("mock_cls", "adapter_cls", "symbol"),
    [(MockPoloniex, PoloniexAdapter, "BTC-USDT"), (MockPoloniexFutures, PoloniexFuturesAdapter, "BTC-USDT-PERP")],
)
async def test_conformance_on_every_channel(mock_cls: type[MockPoloniex], adapter_cls: type[Any], symbol: str) -> None:
    subs = [Subscription(adapter_cls.venue, c, symbol) for c in sorted(adapter_cls.channels, key=lambda c: c.value)]
    async with mock_cls([symbol], seed=3) as mock:
        frames = await capture_frames(mock, adapter_cls, subs, steps=60)
    report = check_adapter(adapter_cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
