"""BitmexAdapter against MockBitmex, end to end.

Feed level (a plain websockets client into a Feed, synchronised by a
``ping``/``pong`` round trip) and Multiplexer level (the real runtime). BitMEX
sends no sequence numbers or checksums, so the book is UNVERIFIABLE: the
faults it can still catch are the ones the adapter's id → price map proves
(a lost or duplicated insert) and a crossed book; a lost update is not
detectable, and the tests say so.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from baseunits import assert_same_depth, in_base_units
from feedclient import FeedClient, feed_client

from wsmux import (
    Backoff,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Funding,
    Gap,
    GapReason,
    Integrity,
    Liquidation,
    Multiplexer,
    OpenInterest,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    candles,
    funding,
    liquidations,
    open_interest,
    quotes,
    trades,
)
from wsmux.exchanges.bitmex import BitmexAdapter
from wsmux.testing import MockBitmex, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)


def is_pong(frame: str | bytes) -> bool:
    return frame == "pong"


def client(mock: MockBitmex, subs: list[Subscription], adapter: BitmexAdapter | None = None) -> Any:
    return feed_client(mock, adapter or BitmexAdapter(url=mock.ws_url), subs, "ping", is_pong)


def expected_depth(mock: MockBitmex, symbol: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The mock's book in the client's units (XBTUSD: USD contracts / price)."""
    bids, asks = mock.markets[symbol].depth()
    if symbol != "BTC-USD-PERP":
        return bids, asks
    return tuple((p, s / p) for p, s in bids), tuple((p, s / p) for p, s in asks)


def assert_same_book(c: FeedClient, mock: MockBitmex, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == expected_depth(mock, symbol)
    assert local.integrity is Integrity.UNVERIFIABLE
    local._check()


SYMBOLS = ["BTC-USD-PERP", "SOL-USDT-PERP", "XRP-BTC-20261225"]


@pytest.mark.parametrize("update_prices", [False, True], ids=["ids-only", "price-on-updates"])
async def test_book_equals_mock_after_many_steps(update_prices: bool) -> None:
    async with MockBitmex(SYMBOLS, update_prices=update_prices) as mock:
        subs = [*book("bitmex", *SYMBOLS), *trades("bitmex", "BTC-USD-PERP"), *quotes("bitmex", "SOL-USDT-PERP")]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 3)
            await mock.publish(300)
            await c.sync()
            for symbol in SYMBOLS:
                assert_same_book(c, mock, symbol)
                assert c.feed.syncs[symbol].stats.applied > 300  # one message per action and step
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets["BTC-USD-PERP"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert len(tape) == market.next_trade_id - 1 > 50
            assert [t.trade_id[-12:] for t in tape] == [f"{i:012d}" for i in range(1, market.next_trade_id)]
            assert all(t.size * t.price == pytest.approx(round(t.size * t.price)) for t in tape)  # whole USD
            sol = mock.markets["SOL-USDT-PERP"]
            last = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = sol.best_bid(), sol.best_ask()
            assert (last.bid_price, last.bid_size, last.ask_price, last.ask_size) == (
                sol.price(bb),
                float(sol.bids[bb]),
                sol.price(ba),
                float(sol.asks[ba]),
            )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("skip_seq", GapReason.SEQUENCE),  # a lost insert: proven when its level changes again
        ("duplicate", GapReason.SEQUENCE),  # an insert of a level already held
        ("crossed", GapReason.CROSSED),
    ],
)
async def test_fault_detected_and_healed(fault: str, reason: GapReason) -> None:
    async with MockBitmex(["SOL-USDT-PERP"]) as mock:
        async with client(mock, list(book("bitmex", "SOL-USDT-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(30)
            setattr(mock.faults, fault, 1)
            for _ in range(100):  # a lost insert shows when that level changes again
                await mock.publish(5)
                await c.sync()
                if c.count(Gap):
                    break
            gap = next(e for e in c.events if isinstance(e, Gap))
            assert gap.reason is reason and gap.symbol == "SOL-USDT-PERP" and gap.channel is Channel.BOOK
            await c.wait(lambda: c.count(Resynced) == 2)  # resubscribed, new partial
            await mock.publish(100)
            await c.sync()
            assert_same_book(c, mock, "SOL-USDT-PERP")
            assert c.count(Gap) == 1


async def test_a_lost_update_is_not_detectable() -> None:
    """What UNVERIFIABLE means: a reordered pair of messages that touch
    different levels leaves no trace the adapter or the rule can see; the
    book only heals at the next partial."""
    async with MockBitmex(["SOL-USDT-PERP"]) as mock:
        async with client(mock, list(book("bitmex", "SOL-USDT-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            assert c.feed.book("SOL-USDT-PERP").integrity is Integrity.UNVERIFIABLE  # type: ignore[union-attr]
            mock.faults.reorder = 1
            await mock.publish(3)
            await c.sync()
            assert mock.faults.reorder == 0 and not mock.connections[1].state["held"]  # it was swapped
            assert c.count(Gap) == 0  # nothing proves the swap


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockBitmex(["SOL-USDT-PERP"]) as mock:
        async with client(mock, list(book("bitmex", "SOL-USDT-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            assert [e.kind for e in c.events if isinstance(e, Error)] == [ErrorKind.MALFORMED] * 2
            assert_same_book(c, mock, "SOL-USDT-PERP")


async def test_rejected_subscription_is_reported() -> None:
    async with MockBitmex(["SOL-USDT-PERP"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book("bitmex", "SOL-USDT-PERP"), *trades("bitmex", "SOL-USDT-PERP")]) as c:
            await c.wait(lambda: c.count(Error) == 2)
            errors = [e for e in c.events if isinstance(e, Error)]
            assert all(e.kind is ErrorKind.VENUE_ERROR for e in errors)
            assert "orderBookL2:SOLUSDT" in errors[0].message and "trade:SOLUSDT" in errors[1].message
            assert not c.feed.syncs["SOL-USDT-PERP"].valid


async def test_derivative_tables() -> None:
    async with MockBitmex(["BTC-USD-PERP"]) as mock:
        subs = [
            *funding("bitmex", "BTC-USD-PERP"),
            *open_interest("bitmex", "BTC-USD-PERP"),
            *liquidations("bitmex", "BTC-USD-PERP"),
            *trades("bitmex", "BTC-USD-PERP"),
            *candles("bitmex", "BTC-USD-PERP"),
        ]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(OpenInterest) == 1)
            await mock.publish(100)
            await c.sync()
            assert c.count(Funding) == 2 and c.count(OpenInterest) == 11
            tape = [e for e in c.events if isinstance(e, Trade)]
            liqs = [e for e in c.events if isinstance(e, Liquidation)]
            expected = [t for t in tape if int(t.trade_id[-12:]) % 3 == 0]
            assert len(liqs) == len(expected) > 0
            assert [(x.side, x.price, x.size) for x in liqs] == [(t.side, t.price, t.size) for t in expected]
            bars = [e for e in c.events if isinstance(e, Candle)]
            assert len(bars) == 5 and all(b.closed and b.interval == "1m" for b in bars)
            assert all(b.ts is not None and b.ts - b.start_ts == 60_000_000_000 for b in bars)


async def test_rest_instruments() -> None:
    async with MockBitmex(["BTC-USD-PERP", "SOL-USDT-PERP", "XRP-BTC-20261225", "BTC-USDT"]) as mock:
        adapter = BitmexAdapter(rest_url=mock.rest_url)
        async with httpx.AsyncClient() as http:
            response = await http.get(adapter.instruments_request().url)
        got = adapter.parse_instruments(response.content)
        assert [(i.symbol, i.native, i.kind) for i in got] == [
            ("BTC-USD-PERP", "XBTUSD", "perp"),
            ("SOL-USDT-PERP", "SOLUSDT", "perp"),
            ("XRP-BTC-20261225", "XRPZ26", "future"),
            ("BTC-USDT", "XBT_USDT", "spot"),
        ]


async def test_multiplexer_book_matches_mock() -> None:
    symbols = ["BTC-USD-PERP", "SOL-USDT-PERP"]
    async with MockBitmex(symbols) as mock:
        async with Multiplexer(endpoints={"bitmex": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bitmex", *symbols), trades("bitmex", "BTC-USD-PERP"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            # no sequence numbers to wait for: mark the end with one more trade
            mark = mock.markets["BTC-USD-PERP"].next_trade_id
            while mock.markets["BTC-USD-PERP"].next_trade_id == mark:
                await mock.publish(1, ["BTC-USD-PERP"])
            await collect_until(stream, lambda e: isinstance(e, Trade) and e.trade_id.endswith(f"{mark:012d}"))
            for symbol in symbols:
                view = mux.book("bitmex", symbol)
                # linear contracts: the multiplexer loaded the contract sizes, its book is in base units
                assert view.valid
                # XBTUSD: an inverse instrument of 1 USD, converted at each level's price
                assert_same_depth(view.depth(), in_base_units(mux, "bitmex", symbol, mock.markets[symbol].depth()))
            await stream.aclose()


async def test_multiplexer_heals_a_detected_loss() -> None:
    async with MockBitmex(["SOL-USDT-PERP"]) as mock:
        async with Multiplexer(endpoints={"bitmex": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bitmex", "SOL-USDT-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            mock.faults.crossed = 1
            await mock.publish(1)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.CROSSED
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            await collect_until(stream, lambda e: isinstance(e, BookUpdate))
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    symbol = "BTC-USD-PERP"
    subs = [Subscription("bitmex", c, symbol) for c in sorted(BitmexAdapter.channels, key=lambda c: c.value)]
    async with MockBitmex([symbol], seed=3) as mock:
        frames = await capture_frames(mock, BitmexAdapter, subs, steps=60)
    report = check_adapter(BitmexAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
