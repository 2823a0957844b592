"""MEXC adapters against their mocks (127.0.0.1), end to end.

* Feed level: a plain websockets client feeds every received frame (gunzipped
  first where the adapter is ``compressed``, as the Connection does) to
  :class:`wsmux._pipeline.Feed` and performs its actions (REST snapshots with
  httpx). Synchronisation is on data: the client reads until every book is
  valid at the mock's current version.
* Multiplexer level: the real runtime, synchronised on the ``seq`` of the
  last book update the mock rendered.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from baseunits import assert_same_depth, in_base_units
from candlekit import mock_prices, prices
from mockclient import MockFeedClient

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
    open_interest,
    quotes,
    trades,
)
from wsmux.adapter import Adapter
from wsmux.exchanges.mexc import MexcAdapter, MexcFuturesAdapter
from wsmux.testing import MockMexc, MockMexcFutures, capture_frames, check_adapter, collect_until
from wsmux.testing.mexc import MockMexcBase

FAST = Backoff(initial=0.01, cap=0.05)
SPOT = ["BTC-USDT", "ETH-USDT"]
PERPS = ["BTC-USDT-PERP", "ETH-USDT-PERP"]


class FeedClient(MockFeedClient):
    """Synchronised on the mock's book versions."""

    mock: MockMexcBase

    def synced_to_mock(self) -> bool:
        return all(s.valid and s.book.seq == self.mock.version(sym) for sym, s in self.feed.syncs.items())

    async def sync(self) -> None:
        await self.pump_until(self.synced_to_mock)


def spot_client(mock: MockMexc, *channels: Channel, decoder: str = "auto") -> FeedClient:
    makers = {Channel.BOOK: book, Channel.TRADES: trades, Channel.QUOTES: quotes, Channel.CANDLES: candles}
    subs = [s for c in channels for s in makers[c]("mexc", *SPOT)]
    adapter = MexcAdapter(url=mock.ws_url, rest_url=mock.rest_url, decoder=decoder)  # type: ignore[arg-type]
    return FeedClient(mock, adapter, subs)


def futures_client(mock: MockMexcFutures, *channels: Channel) -> FeedClient:
    makers = {
        Channel.BOOK: book,
        Channel.TRADES: trades,
        Channel.FUNDING: funding,
        Channel.QUOTES: quotes,
        Channel.OPEN_INTEREST: open_interest,
        Channel.CANDLES: candles,
    }
    subs = [s for c in channels for s in makers[c]("mexc-futures", *PERPS)]
    return FeedClient(mock, MexcFuturesAdapter(url=mock.ws_url, rest_url=mock.rest_url), subs)


# --- spot ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", ["protobuf", "python"])
async def test_spot_books_equal_mock_after_hundreds_of_steps(decoder: str) -> None:
    async with MockMexc(SPOT, seed=5) as mock:
        channels = (Channel.BOOK, Channel.TRADES, Channel.QUOTES, Channel.CANDLES)
        async with spot_client(mock, *channels, decoder=decoder) as client:
            await client.sync()  # the mock pushes an empty depth on subscribe: the books anchor at once
            assert sorted(e.symbol for e in client.of(Resynced)) == SPOT
            for _ in range(3):
                await mock.publish(150)
                await client.sync()
                client.assert_books_equal()
            assert client.of(Gap) == [] and client.of(Error) == []
            for symbol in SPOT:
                m = mock.markets[symbol]
                ids = [int(t.trade_id) for t in client.of(Trade) if t.symbol == symbol]
                assert ids == list(range(1, m.next_trade_id))
                await client.pump_until(lambda s=symbol: any(q.symbol == s for q in client.of(Quote)))
                bids, asks = m.depth()
                quote = [q for q in client.of(Quote) if q.symbol == symbol][-1]
                assert (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (*bids[0], *asks[0])
                assert quote.seq is not None and quote.seq <= mock.version(symbol)
                candle = [c for c in client.of(Candle) if c.symbol == symbol][-1]
                start, open_, high, low, close = mock.candle(symbol)
                assert (candle.start_ts, candle.interval, candle.closed) == (start * 10**9, "1m", False)
                assert (candle.open, candle.high, candle.low, candle.close) == tuple(
                    m.price(x) for x in (open_, high, low, close)
                )
            sides = {t.side for t in client.of(Trade)}
            assert sides == {Side.BUY, Side.SELL}
            assert any(u.seq - u.first_seq > 1 for u in client.of(BookUpdate))  # multi-version pushes


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
async def test_spot_faults_are_detected_and_healed(fault: str, reason: GapReason) -> None:
    async with MockMexc(["BTC-USDT"], seed=9) as mock:
        adapter = MexcAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        async with FeedClient(mock, adapter, book("mexc", "BTC-USDT")) as client:
            await client.sync()
            await mock.publish(30)
            await client.sync()
            served = mock.snapshots_served
            setattr(mock.faults, fault, 1)
            await mock.publish(3)
            await client.pump_until(lambda: bool(client.of(Gap)))
            (gap,) = client.of(Gap)
            assert gap.reason is reason and gap.symbol == "BTC-USDT"
            await mock.publish(20)
            await client.sync()  # healed by a new REST snapshot
            assert mock.snapshots_served > served
            client.assert_books_equal()
            assert len(client.of(Resynced)) == 2


async def test_spot_duplicates_and_garbage_are_harmless() -> None:
    async with MockMexc(["BTC-USDT"], seed=2) as mock:
        adapter = MexcAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        async with FeedClient(mock, adapter, book("mexc", "BTC-USDT")) as client:
            await client.sync()
            mock.faults.duplicate = 3
            mock.faults.garbage = 2
            await mock.publish(60)
            await client.sync()
            client.assert_books_equal()
            assert client.of(Gap) == []
            assert [e.kind for e in client.of(Error)] == [ErrorKind.MALFORMED] * 2


async def test_spot_rejected_subscription_and_refused_snapshot() -> None:
    async with MockMexc(["BTC-USDT"]) as mock:
        mock.faults.reject_subscriptions = True
        adapter = MexcAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        async with FeedClient(mock, adapter, trades("mexc", "BTC-USDT")) as client:
            await client.pump_until(lambda: bool(client.of(Error)))
            (error,) = client.of(Error)
            assert error.kind is ErrorKind.VENUE_ERROR and "Blocked" in error.message
    async with MockMexc(["BTC-USDT"]) as mock:
        mock.faults.snapshot_status = 500
        adapter = MexcAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        async with FeedClient(mock, adapter, book("mexc", "BTC-USDT")) as client:
            await client.pump_until(lambda: bool(client.of(Error)))
            assert client.of(Error)[0].kind is ErrorKind.SNAPSHOT and not client.feed.syncs["BTC-USDT"].valid
            mock.faults.snapshot_status = 200
            await mock.publish(5)  # the next buffered push asks for another snapshot
            await client.sync()
            client.assert_books_equal()


async def test_spot_instruments_from_the_mock() -> None:
    async with MockMexc(SPOT) as mock:
        adapter = MexcAdapter(rest_url=mock.rest_url)
        request = adapter.instruments_request()
        assert request is not None
        async with httpx.AsyncClient() as http:
            body = (await http.get(request.url)).content
        instruments = adapter.parse_instruments(body)
        assert [(i.symbol, i.native, i.tick_size, i.lot_size) for i in instruments] == [
            ("BTC-USDT", "BTCUSDT", 0.01, 0.000001),
            ("ETH-USDT", "ETHUSDT", 0.01, 0.000001),
        ]


async def test_both_decoders_give_the_same_events_on_mock_frames() -> None:
    subs = [Subscription("mexc", c, "BTC-USDT") for c in sorted(MexcAdapter.channels, key=lambda c: c.value)]
    async with MockMexc(["BTC-USDT"], seed=4, kline_every=2) as mock:
        frames = await capture_frames(mock, MexcAdapter, subs, steps=60)
    binary = [f for f in frames if isinstance(f, bytes)]
    assert len(binary) > 60
    fast, slow = MexcAdapter(decoder="protobuf"), MexcAdapter(decoder="python")
    fast.subscribe(subs)
    slow.subscribe(subs)
    for frame in binary:
        assert [vars_of(e) for e in fast.parse(frame, 1)] == [vars_of(e) for e in slow.parse(frame, 1)]


def vars_of(event: Any) -> Any:
    slots = getattr(type(event), "__slots__", ())
    return (type(event).__name__, *[getattr(event, name) for name in slots]) if slots else event


@pytest.mark.parametrize(
    ("mock", "cls", "symbol"),
    [
        (MockMexc(["BTC-USDT"], seed=3, kline_every=3), MexcAdapter, "BTC-USDT"),
        (MockMexcFutures(["BTC-USDT-PERP"], seed=3, funding_every=4), MexcFuturesAdapter, "BTC-USDT-PERP"),
    ],
    ids=["mexc", "mexc-futures"],
)
async def test_conformance_on_every_channel(mock: MockMexcBase, cls: type[Adapter], symbol: str) -> None:
    """The shared suite on frames of every channel (the registry-wide test covers book/trades/quotes only)."""
    subs = [Subscription(cls.venue, c, symbol) for c in sorted(cls.channels, key=lambda c: c.value)]
    async with mock:
        frames = await capture_frames(mock, cls, subs, steps=60)
    report = check_adapter(cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=300)
    assert report.events > 0


# --- futures -------------------------------------------------------------------------------------------


async def test_futures_books_equal_mock_after_hundreds_of_steps() -> None:
    async with MockMexcFutures(PERPS, seed=6, funding_every=25) as mock:
        async with futures_client(mock, Channel.BOOK, Channel.TRADES, Channel.FUNDING) as client:
            await client.sync()
            for _ in range(3):
                await mock.publish(150)
                await client.sync()
                client.assert_books_equal()  # sizes in contracts: no contract sizes were given
            assert client.of(Gap) == [] and client.of(Error) == []
            for symbol in PERPS:
                n = mock.markets[symbol].next_trade_id - 1
                assert len([t for t in client.of(Trade) if t.symbol == symbol]) == n
                await client.pump_until(lambda s=symbol: len([f for f in client.of(Funding) if f.symbol == s]) == 18)
            assert {f.rate for f in client.of(Funding)} == {0.0001}


async def test_futures_quotes_open_interest_and_candles_equal_the_mock() -> None:
    async with MockMexcFutures(PERPS, seed=5, ticker_every=5) as mock:
        channels = (Channel.BOOK, Channel.TRADES, Channel.QUOTES, Channel.OPEN_INTEREST, Channel.CANDLES)
        async with futures_client(mock, *channels) as client:
            await client.sync()
            await mock.publish(100)
            await client.sync()
            assert client.of(Error) == [] and client.of(Gap) == []
            for symbol in PERPS:
                m = mock.markets[symbol]
                await client.pump_until(
                    lambda s=symbol: len([e for e in client.of(OpenInterest) if e.symbol == s]) == 20
                )
                oi = [e for e in client.of(OpenInterest) if e.symbol == symbol][-1]
                assert oi.open_interest == mock.hold_volume(symbol)  # type: ignore[attr-defined]
                # the last quote is the mock's best bid and ask (contracts: no contract sizes given)
                quote = [e for e in client.of(Quote) if e.symbol == symbol][-1]
                bb, ba = m.best_bid(), m.best_ask()
                assert (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (  # type: ignore[attr-defined]
                    m.price(bb), m.bids[bb], m.price(ba), m.asks[ba]
                )  # fmt: skip
                bars = [e for e in client.of(Candle) if e.symbol == symbol]
                want = mock.candles.forming[symbol]
                assert len(bars) >= m.next_trade_id - 1 > 0
                last = bars[-1]
                assert (*prices(last), last.volume) == (  # type: ignore[attr-defined]
                    *mock_prices(m, want),
                    float(want.volume),
                )


async def test_futures_gzip_frames_and_base_units() -> None:
    """A subscription without ``"gzip": false`` gets gzip frames; with the
    contract sizes of the mock's instruments endpoint the book is in base units."""
    async with MockMexcFutures(["BTC-USDT-PERP"], seed=8) as mock:
        adapter = MexcFuturesAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        request = adapter.instruments_request()
        assert request is not None
        async with httpx.AsyncClient() as http:
            adapter.use_instruments(adapter.parse_instruments((await http.get(request.url)).content))
        client = FeedClient(mock, adapter, book("mexc-futures", "BTC-USDT-PERP"))
        await client.open(['{"method":"sub.depth","param":{"symbol":"BTC_USDT","compress":false}}'])
        try:
            await client.sync()
            await mock.publish(200)
            await client.sync()
            client.assert_books_equal(scale=MockMexcFutures.contract_size)
            assert client.of(Error) == [] and client.of(Gap) == []
            assert client.binary_frames > 100  # gzip, decompressed by the adapter
        finally:
            await client.__aexit__()


async def test_futures_skipped_version_is_a_gap_and_heals() -> None:
    async with MockMexcFutures(["BTC-USDT-PERP"], seed=7) as mock:
        adapter = MexcFuturesAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        async with FeedClient(mock, adapter, book("mexc-futures", "BTC-USDT-PERP")) as client:
            await client.sync()
            await mock.publish(20)
            mock.faults.skip_seq = 1
            await mock.publish(3)
            await client.pump_until(lambda: bool(client.of(Gap)))
            assert client.of(Gap)[0].reason is GapReason.SEQUENCE
            await mock.publish(20)
            await client.sync()
            client.assert_books_equal()


async def test_futures_refusals() -> None:
    async with MockMexcFutures(["BTC-USDT-PERP"]) as mock:
        mock.faults.reject_subscriptions = True
        adapter = MexcFuturesAdapter(url=mock.ws_url, rest_url=mock.rest_url)
        async with FeedClient(mock, adapter, trades("mexc-futures", "BTC-USDT-PERP")) as client:
            await client.pump_until(lambda: bool(client.of(Error)))
            assert client.of(Error)[0].kind is ErrorKind.VENUE_ERROR


# --- Multiplexer level -------------------------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream, lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq
    )


@pytest.mark.parametrize(
    ("mock_cls", "venue", "symbols"), [(MockMexc, "mexc", SPOT), (MockMexcFutures, "mexc-futures", PERPS)]
)
async def test_multiplexer_books_match_mock(mock_cls: type[MockMexcBase], venue: str, symbols: list[str]) -> None:
    async with mock_cls(symbols) as mock:
        async with Multiplexer(endpoints={venue: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(venue, *symbols), trades(venue, *symbols))
            synced: set[str] = set()
            seen: list[Event] = []
            while synced != set(symbols):
                seen += await collect_until(stream, lambda e: isinstance(e, Resynced))
                synced.add(seen[-1].symbol)  # type: ignore[attr-defined]
            await mock.publish(300)
            for symbol in symbols:
                seen += await wait_seq(stream, symbol, mock.version(symbol))
                view = mux.book(venue, symbol)
                assert view.valid and view.seq == mock.version(symbol)
                # futures: the multiplexer loaded the contract sizes, its book is in base units
                assert_same_depth(view.depth(), in_base_units(mux, venue, symbol, mock.markets[symbol].depth()))
            assert [e for e in seen if isinstance(e, Error | Gap)] == []  # acks (text as bytes) are quiet
            assert any(isinstance(e, Trade) for e in seen)
            await stream.aclose()


async def test_multiplexer_heals_a_gap() -> None:
    async with MockMexc(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"mexc": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("mexc", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert events[-1].reason is GapReason.SEQUENCE  # type: ignore[attr-defined]
            await mock.publish(5)  # a push after the gap makes the runtime fetch a new snapshot
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            await wait_seq(stream, "BTC-USDT", mock.version("BTC-USDT"))
            view = mux.book("mexc", "BTC-USDT")
            assert view.valid and view.depth() == mock.markets["BTC-USDT"].depth()
            await stream.aclose()
