"""BitgetAdapter / BitgetFuturesAdapter against MockBitget(Futures), end to end.

Feed level (a bare websockets client, synchronised by ``ping``/``pong``) and
Multiplexer level (synchronised on the ``seq`` of the last book update the
mock rendered).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from feedclient import fault_detected_and_healed
from feedclient_gz import assert_same_book, feed_client

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Candle,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Multiplexer,
    OpenInterest,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    candles,
    funding,
    open_interest,
    quotes,
    trades,
)
from wsmux.exchanges.bitget import BitgetAdapter, BitgetFuturesAdapter
from wsmux.testing import MockBitget, MockBitgetFutures, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)


def spot(mock: MockBitget) -> BitgetAdapter:
    return BitgetAdapter(url=mock.ws_url, rest_url=mock.rest_url)


def futures(mock: MockBitget) -> BitgetFuturesAdapter:
    return BitgetFuturesAdapter(url=mock.ws_url, rest_url=mock.rest_url)


# --- Feed level ------------------------------------------------------------------------


@pytest.mark.parametrize("checksums", [True, False], ids=["checksums", "checksum-0"])
async def test_book_equals_mock_after_many_steps(checksums: bool) -> None:
    async with MockBitget(["BTC-USDT", "ETH-USDT"], checksums=checksums) as mock:
        subs = [*book("bitget", "BTC-USDT", "ETH-USDT"), *trades("bitget", "BTC-USDT"), *quotes("bitget", "BTC-USDT")]
        async with feed_client(mock, spot(mock), subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(300)
            await c.sync()
            conn = next(iter(mock.connections.values()))
            for symbol in ("BTC-USDT", "ETH-USDT"):
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.last == conn.state["seq"][symbol]
                assert sync.stats.gaps == 0 and sync.stats.checksum_mismatches == 0
                assert sync.stats.applied >= 290
                assert sync.stats.checksums_ok == (sync.stats.applied + 1 if checksums else 0)
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets["BTC-USDT"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            # the subscribe-time snapshot of past trades is not delivered
            assert [t.trade_id for t in tape] == [str(i) for i in range(1, market.next_trade_id)]
            assert len(tape) > 50
            last_quote = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (last_quote.bid_price, last_quote.bid_size, last_quote.ask_price, last_quote.ask_size) == (
                market.price(bb),
                market.size(market.bids[bb]),
                market.price(ba),
                market.size(market.asks[ba]),
            )


async def test_deep_book_is_trimmed_to_the_venue_view() -> None:
    """With 250 levels per side around the mid (500 per side in the market),
    the venue's 400-level view is what the client holds, level by level."""
    async with MockBitget(["BTC-USDT"], levels=250) as mock:
        async with feed_client(mock, spot(mock), list(book("bitget", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(200)
            await c.sync()
            local = c.feed.book("BTC-USDT")
            assert local is not None and local.valid
            bids, asks = mock.markets["BTC-USDT"].depth()
            assert local.depth() == (bids[:400], asks[:400])
            assert c.count(Gap) == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("skip_seq", GapReason.SEQUENCE),
        ("reorder", GapReason.SEQUENCE),
        ("bad_checksum", GapReason.CHECKSUM),
        ("crossed", GapReason.CROSSED),
    ],
)
@pytest.mark.parametrize("checksums", [True, False], ids=["checksums", "checksum-0"])
async def test_fault_detected_and_healed(fault: str, reason: GapReason, checksums: bool) -> None:
    async with MockBitget(["BTC-USDT"], checksums=checksums) as mock:
        async with feed_client(mock, spot(mock), list(book("bitget", "BTC-USDT"))) as c:
            await fault_detected_and_healed(
                c, mock, "BTC-USDT", fault, reason, lambda: assert_same_book(c, mock, "BTC-USDT")
            )


async def test_duplicates_are_stale_not_gaps() -> None:
    async with MockBitget(["BTC-USDT"]) as mock:
        async with feed_client(mock, spot(mock), list(book("bitget", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(50)
            await c.sync()
            assert c.count(Gap) == 0
            assert c.feed.syncs["BTC-USDT"].stats.stale == 3
            assert_same_book(c, mock, "BTC-USDT")


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockBitget(["BTC-USDT"]) as mock:
        async with feed_client(mock, spot(mock), list(book("bitget", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert c.count(Gap) == 0
            assert_same_book(c, mock, "BTC-USDT")


async def test_rejected_subscription_is_reported() -> None:
    async with MockBitget(["BTC-USDT"]) as mock:
        mock.faults.reject_subscriptions = True
        async with feed_client(mock, spot(mock), [*book("bitget", "BTC-USDT"), *trades("bitget", "BTC-USDT")]) as c:
            await c.wait(lambda: c.count(Error) == 2)
            assert all(e.kind is ErrorKind.VENUE_ERROR and "30001" in e.message for e in c.events)  # type: ignore[attr-defined]
            assert not c.feed.syncs["BTC-USDT"].valid


async def test_futures_channels() -> None:
    async with MockBitgetFutures(["BTC-USDT-PERP", "ETH-USD-PERP"]) as mock:
        subs = [
            *book("bitget-futures", "BTC-USDT-PERP", "ETH-USD-PERP"),
            *funding("bitget-futures", "BTC-USDT-PERP"),
            *open_interest("bitget-futures", "BTC-USDT-PERP", "ETH-USD-PERP"),
            *candles("bitget-futures", "BTC-USDT-PERP"),
            *trades("bitget-futures", "ETH-USD-PERP"),
        ]
        adapter = futures(mock)
        async with feed_client(mock, adapter, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2 and c.count(OpenInterest) == 2)
            await mock.publish(100)
            await c.sync()
            for symbol in ("BTC-USDT-PERP", "ETH-USD-PERP"):
                assert_same_book(c, mock, symbol)
            fundings = [e for e in c.events if isinstance(e, Funding)]
            ois = [e for e in c.events if isinstance(e, OpenInterest)]
            # on subscribe, then every 10 steps; funding only where asked for
            assert len(fundings) == 11 and {e.symbol for e in fundings} == {"BTC-USDT-PERP"}
            assert len(ois) == 22
            assert fundings[0].next_funding_ts is not None and 0 < fundings[0].rate < 0.001
            assert fundings[0].mark_price is not None
            # funding and open interest share one ticker topic per instrument
            sent = [m for m in mock.received if isinstance(m, str) and '"ticker"' in m]
            assert sum(m.count('"ticker"') for m in sent) == 2
            bars = [e for e in c.events if isinstance(e, Candle)]
            market = mock.markets["BTC-USDT-PERP"]
            assert len(bars) == market.next_trade_id  # the snapshot, then one per trade
            assert bars[-1].close > 0 and bars[-1].high >= bars[-1].low and not bars[-1].closed
            assert all(e.symbol == "ETH-USD-PERP" for e in c.events if isinstance(e, Trade))
            assert c.count(Gap) == 0 and c.count(Error) == 0


async def test_rest_book_and_instruments() -> None:
    async with MockBitgetFutures(["BTC-USDT-PERP", "ETH-USD-PERP"]) as mock, httpx.AsyncClient() as http:
        adapter = futures(mock)
        r = await http.get(
            f"{mock.rest_url}/api/v2/mix/market/merge-depth",
            params={"productType": "USDT-FUTURES", "symbol": "BTCUSDT", "limit": "5"},
        )
        body = r.json()
        assert body["code"] == "00000"
        bids, asks = mock.markets["BTC-USDT-PERP"].depth()
        assert [(float(p), float(s)) for p, s in body["data"]["bids"]] == list(bids[:5])
        assert [(float(p), float(s)) for p, s in body["data"]["asks"]] == list(asks[:5])
        listed = []
        for product in ("USDT-FUTURES", "COIN-FUTURES"):
            request = adapter.instruments_request(product)
            assert request is not None
            r = await http.get(request.url, params=dict(request.params))
            listed += adapter.parse_instruments(r.content)
        assert {(i.symbol, i.native, i.kind) for i in listed} == {
            ("BTC-USDT-PERP", "BTCUSDT", "perp"),
            ("ETH-USD-PERP", "ETHUSD", "perp"),
        }
        assert all(i.tick_size == 0.01 and i.lot_size == 0.00001 and i.contract_size is None for i in listed)


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def test_multiplexer_book_matches_mock() -> None:
    async with MockBitget(["BTC-USDT", "ETH-USDT"]) as mock:
        async with Multiplexer(endpoints={"bitget": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bitget", "BTC-USDT", "ETH-USDT"), trades("bitget", "BTC-USDT"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            conn = next(iter(mock.connections.values()))
            for symbol in ("BTC-USDT", "ETH-USDT"):
                await wait_seq(stream, symbol, conn.state["seq"][symbol])
                view = mux.book("bitget", symbol)
                assert view.valid
                assert view.depth() == mock.markets[symbol].depth()
                assert view.seq == conn.state["seq"][symbol]
            await stream.aclose()


async def test_multiplexer_heals_a_checksum_mismatch() -> None:
    async with MockBitgetFutures(["BTC-USDT-PERP"]) as mock:
        async with Multiplexer(endpoints={"bitget-futures": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bitget-futures", "BTC-USDT-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            mock.faults.bad_checksum = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.CHECKSUM
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            conn = next(iter(mock.connections.values()))
            await wait_seq(stream, "BTC-USDT-PERP", conn.state["seq"]["BTC-USDT-PERP"])
            view = mux.book("bitget-futures", "BTC-USDT-PERP")
            assert view.valid and view.depth() == mock.markets["BTC-USDT-PERP"].depth()
            await stream.aclose()


@pytest.mark.parametrize(
    ("mock_cls", "adapter_cls", "symbol"),
    [(MockBitget, BitgetAdapter, "BTC-USDT"), (MockBitgetFutures, BitgetFuturesAdapter, "BTC-USDT-PERP")],
)
async def test_conformance_on_every_channel(mock_cls: type[MockBitget], adapter_cls: type[Any], symbol: str) -> None:
    """The shared suite, on frames of every channel (the registry-wide test covers
    book/trades/quotes only)."""
    subs = [Subscription(adapter_cls.venue, c, symbol) for c in sorted(adapter_cls.channels, key=lambda c: c.value)]
    async with mock_cls([symbol], seed=3) as mock:
        frames = await capture_frames(mock, adapter_cls, subs, steps=60)
    report = check_adapter(adapter_cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
