"""DeribitAdapter against MockDeribit, end to end.

Two layers:

* Feed level: a bare ``websockets`` client reading in a background task into
  a :class:`wsmux._pipeline.Feed`, whose actions (resubscribes) it carries out.
  A ``public/test`` round trip synchronises: the mock answers in order, after
  every frame it published before.
* Multiplexer level: the real runtime, synchronised on the ``change_id`` of
  the last book change the mock rendered.

Inverse instruments (``BTC-USD-PERP``) count USD on the wire; the client's
book holds base units (``amount / price``), so the mock's book is converted
the same way before comparing.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from feedclient import FeedClient, fault_detected_and_healed, feed_client

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
    Integrity,
    Liquidation,
    Multiplexer,
    OpenInterest,
    Quote,
    Resynced,
    Side,
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
from wsmux.credentials import Credentials
from wsmux.exchanges.deribit import DeribitAdapter, is_inverse
from wsmux.testing import MockDeribit, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
CREDS = Credentials(key="mock-key", secret="mock-secret")
SYNC_ID = 424242


PROBE = json.dumps({"jsonrpc": "2.0", "id": SYNC_ID, "method": "public/test", "params": {}})


def is_answer(frame: str | bytes) -> bool:
    return isinstance(frame, str) and f'"id":{SYNC_ID},' in frame


def client(mock: MockDeribit, subs: list[Subscription], adapter: DeribitAdapter | None = None) -> Any:
    adapter = adapter or DeribitAdapter(url=mock.ws_url, rest_url=mock.rest_url)
    return feed_client(mock, adapter, subs, PROBE, is_answer)


def heartbeats(c: FeedClient) -> int:
    return sum(isinstance(f, str) and '"method":"heartbeat"' in f for f in c.frames)


def expected_depth(mock: MockDeribit, symbol: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The mock's book in the client's units (inverse: USD amount / price)."""
    bids, asks = mock.markets[symbol].depth()
    if not is_inverse(mock.native[symbol]):
        return bids, asks
    return tuple((p, s / p) for p, s in bids), tuple((p, s / p) for p, s in asks)


def assert_same_book(c: FeedClient, mock: MockDeribit, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == expected_depth(mock, symbol)
    assert local.integrity is Integrity.SEQUENCE
    local._check()


def conn_seq(mock: MockDeribit, symbol: str) -> int:
    conn = next(iter(mock.connections.values()))
    seq: int = conn.state["seq"][symbol]
    return seq


# --- Feed level ------------------------------------------------------------------------

SYMBOLS = ["BTC-USD-PERP", "ETH-USDC-PERP", "BTC-USD-20261225-80000-C"]


async def test_book_equals_mock_after_many_steps() -> None:
    async with MockDeribit(SYMBOLS) as mock:
        subs = [*book("deribit", *SYMBOLS), *trades("deribit", "BTC-USD-PERP"), *quotes("deribit", "BTC-USD-PERP")]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 3)
            await mock.publish(300)
            await c.sync()
            for symbol in SYMBOLS:
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.last == conn_seq(mock, symbol)
                assert sync.stats.gaps == 0 and sync.stats.stale == 0
                assert sync.stats.applied >= 290  # a step that changes nothing sends nothing
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets["BTC-USD-PERP"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert len(tape) == market.next_trade_id - 1 and len(tape) > 50
            assert [t.trade_id for t in tape] == [str(i) for i in range(1, market.next_trade_id)]
            assert [t.seq for t in tape] == list(range(1, market.next_trade_id))
            # BTC-PERPETUAL trades count USD in lots of 10: the client reports base units
            usd = [t.size * t.price for t in tape]
            assert all(u == pytest.approx(10 * round(u / 10)) for u in usd) and max(t.size for t in tape) < 10
            last_quote = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (last_quote.bid_price, last_quote.bid_size, last_quote.ask_price, last_quote.ask_size) == (
                market.price(bb),
                market.size(market.bids[bb]) / market.price(bb),
                market.price(ba),
                market.size(market.asks[ba]) / market.price(ba),
            )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
async def test_fault_detected_and_healed(fault: str, reason: GapReason) -> None:
    async with MockDeribit(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(book("deribit", "BTC-USD-PERP"))) as c:
            await fault_detected_and_healed(
                c, mock, "BTC-USD-PERP", fault, reason, lambda: assert_same_book(c, mock, "BTC-USD-PERP")
            )


async def test_duplicates_are_stale_not_gaps() -> None:
    async with MockDeribit(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(book("deribit", "BTC-USD-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(50)
            await c.sync()
            assert c.count(Gap) == 0
            assert c.feed.syncs["BTC-USD-PERP"].stats.stale == 3
            assert_same_book(c, mock, "BTC-USD-PERP")


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockDeribit(["BTC-USD-PERP"]) as mock:
        async with client(mock, list(book("deribit", "BTC-USD-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert c.count(Gap) == 0
            assert_same_book(c, mock, "BTC-USD-PERP")


async def test_rejected_subscription_is_reported() -> None:
    async with MockDeribit(["BTC-USD-PERP"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book("deribit", "BTC-USD-PERP"), *trades("deribit", "BTC-USD-PERP")]) as c:
            await c.wait(lambda: c.count(Error) == 1)
            (error,) = [e for e in c.events if isinstance(e, Error)]
            assert error.kind is ErrorKind.VENUE_ERROR and "10028" in error.message
            assert not c.feed.syncs["BTC-USD-PERP"].valid


async def test_unlisted_instrument_is_reported() -> None:
    async with MockDeribit(["BTC-USD-PERP"]) as mock:
        async with client(mock, [*book("deribit", "BTC-USD-PERP"), *trades("deribit", "ETH-USD-PERP")]) as c:
            await c.wait(lambda: c.count(Error) == 1 and c.count(Resynced) == 1)
            (error,) = [e for e in c.events if isinstance(e, Error)]
            assert error.kind is ErrorKind.VENUE_ERROR and "trades.ETH-PERPETUAL.100ms" in error.message


async def test_raw_channels_with_credentials() -> None:
    async with MockDeribit(["BTC-USD-PERP"], credentials=CREDS) as mock:
        adapter = DeribitAdapter(url=mock.ws_url, credentials=CREDS, allow_insecure_loopback=True)
        async with client(mock, [*book("deribit", "BTC-USD-PERP"), *trades("deribit", "BTC-USD-PERP")], adapter) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(100)
            await c.sync()
            assert_same_book(c, mock, "BTC-USD-PERP")
            assert c.count(Trade) == mock.markets["BTC-USD-PERP"].next_trade_id - 1
            assert not any(isinstance(e, Error) for e in c.events)
            conn = next(iter(mock.connections.values()))
            assert conn.topics == {"book.BTC-PERPETUAL.raw", "trades.BTC-PERPETUAL.raw"}


async def test_raw_channels_with_wrong_credentials_are_refused() -> None:
    async with MockDeribit(["BTC-USD-PERP"], credentials=CREDS) as mock:
        wrong = Credentials(key="mock-key", secret="not-the-secret")
        adapter = DeribitAdapter(url=mock.ws_url, credentials=wrong, allow_insecure_loopback=True)
        async with client(mock, list(book("deribit", "BTC-USD-PERP")), adapter) as c:
            await c.wait(lambda: c.count(Error) == 2)
            messages = [e.message for e in c.events if isinstance(e, Error)]
            assert "13004" in messages[0] and "13778" in messages[1]
            assert not c.feed.syncs["BTC-USD-PERP"].valid


async def test_derivative_channels() -> None:
    async with MockDeribit(["BTC-USD-PERP", "ETH-USD-PERP"]) as mock:
        subs = [
            *funding("deribit", "BTC-USD-PERP"),
            *open_interest("deribit", "BTC-USD-PERP"),
            *liquidations("deribit", "BTC-USD-PERP"),
            *trades("deribit", "BTC-USD-PERP", "ETH-USD-PERP"),
            *candles("deribit", "BTC-USD-PERP"),
        ]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Funding) == 1 and c.count(OpenInterest) == 1)
            await mock.publish(100)
            await c.sync()
            market = mock.markets["BTC-USD-PERP"]
            tickers = (market.next_trade_id - 1) // 10
            fundings = [e for e in c.events if isinstance(e, Funding)]
            ois = [e for e in c.events if isinstance(e, OpenInterest)]
            assert len(fundings) == len(ois) == 1 + tickers and tickers > 0
            assert all(0 < f.rate < 0.001 and f.mark_price is not None for f in fundings)
            liqs = [e for e in c.events if isinstance(e, Liquidation)]
            btc_trades = [e for e in c.events if isinstance(e, Trade) and e.symbol == "BTC-USD-PERP"]
            expected = [t for t in btc_trades if int(t.trade_id) % 3 == 0]
            assert len(liqs) == len(expected) > 0
            for liq, trade in zip(liqs, expected, strict=True):
                # the mock flags odd ids "T" (the taker was liquidated), even ids "M"
                side = trade.side if int(trade.trade_id) % 2 else {Side.BUY: Side.SELL, Side.SELL: Side.BUY}[trade.side]
                assert (liq.symbol, liq.side, liq.price, liq.size) == ("BTC-USD-PERP", side, trade.price, trade.size)
            bars = [e for e in c.events if isinstance(e, Candle)]
            assert len(bars) == len(btc_trades)
            assert bars[-1].close == btc_trades[-1].price and bars[-1].interval == "1m"
            assert {e.symbol for e in c.events if isinstance(e, Trade)} == {"BTC-USD-PERP", "ETH-USD-PERP"}


async def test_heartbeat_notifications_are_quiet() -> None:
    async with MockDeribit(["BTC-USD-PERP"], heartbeat_every=5) as mock:
        async with client(mock, list(book("deribit", "BTC-USD-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await c.ws.send('{"jsonrpc":"2.0","id":9,"method":"public/set_heartbeat","params":{"interval":10}}')
            await c.sync()
            await mock.publish(50)
            await c.sync()
            assert heartbeats(c) == 10
            assert c.feed.stats.parse_errors == 0 and not any(isinstance(e, Error) for e in c.events)
            assert_same_book(c, mock, "BTC-USD-PERP")


async def test_rest_instruments_and_book() -> None:
    symbols = ["BTC-USD-PERP", "BTC-USDC", "BTC-USD-20261225", "BTC-USD-20261225-80000-C"]
    async with MockDeribit(symbols) as mock, httpx.AsyncClient() as http:
        adapter = DeribitAdapter(rest_url=mock.rest_url)
        request = adapter.instruments_request()
        r = await http.get(request.url, params=dict(request.params))
        instruments = adapter.parse_instruments(r.content)
        assert [(i.symbol, i.kind) for i in instruments] == [
            ("BTC-USD-PERP", "perp"),
            ("BTC-USDC", "spot"),
            ("BTC-USD-20261225", "future"),
            ("BTC-USD-20261225-80000-C", "option"),
        ]
        r = await http.get(
            f"{mock.rest_url}/api/v2/public/get_order_book", params={"instrument_name": "BTC-PERPETUAL", "depth": "5"}
        )
        bids, asks = mock.markets["BTC-USD-PERP"].depth()
        assert [tuple(level) for level in r.json()["result"]["bids"]] == list(bids[:5])
        assert [tuple(level) for level in r.json()["result"]["asks"]] == list(asks[:5])


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def test_multiplexer_book_matches_mock() -> None:
    symbols = ["BTC-USD-PERP", "BTC-USD-20261225-80000-P"]
    async with MockDeribit(symbols) as mock:
        async with Multiplexer(endpoints={"deribit": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("deribit", *symbols), trades("deribit", "BTC-USD-PERP"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            for symbol in symbols:
                await wait_seq(stream, symbol, conn_seq(mock, symbol))
                view = mux.book("deribit", symbol)
                assert view.valid
                assert view.depth() == expected_depth(mock, symbol)
                assert view.seq == conn_seq(mock, symbol)
            await stream.aclose()


async def test_multiplexer_heals_a_gap() -> None:
    async with MockDeribit(["BTC-USD-PERP"]) as mock:
        async with Multiplexer(endpoints={"deribit": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("deribit", "BTC-USD-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            await wait_seq(stream, "BTC-USD-PERP", conn_seq(mock, "BTC-USD-PERP"))
            view = mux.book("deribit", "BTC-USD-PERP")
            assert view.valid and view.depth() == expected_depth(mock, "BTC-USD-PERP")
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    """The shared suite, on frames of every Deribit channel (the registry-wide
    test covers book/trades/quotes only)."""
    symbol = "BTC-USD-PERP"
    subs = [Subscription("deribit", c, symbol) for c in sorted(DeribitAdapter.channels, key=lambda c: c.value)]
    async with MockDeribit([symbol], seed=3) as mock:
        frames = await capture_frames(mock, DeribitAdapter, subs, steps=60)
    report = check_adapter(DeribitAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
