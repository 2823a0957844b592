"""Binance adapters + Feed against the mock servers, end to end at the Feed level.

Each test opens a real WebSocket to the mock (127.0.0.1, port 0), sends what
the adapter asks for, feeds received frames to :class:`wsmux._pipeline.Feed`,
performs its ``FetchSnapshot`` actions with httpx and compares the Feed's
book with the mock's market level by level. Synchronisation is on data: the
client reads until the diff carrying the mock's current update id arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import httpx
import pytest
from candlekit import mock_prices, prices
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wsmux import book, candles, funding, liquidations, quotes, trades
from wsmux._json import dumps, loads
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.adapter import Adapter
from wsmux.errors import SnapshotFailed
from wsmux.exchanges.binance import (
    BinanceCoinmAdapter,
    BinanceSpotAdapter,
    BinanceUSAdapter,
    BinanceUsdmAdapter,
)
from wsmux.model import (
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    Liquidation,
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription
from wsmux.testing import MarketTrade, MockBinance, MockBinanceCoinm, MockBinanceFutures, MockBinanceUS
from wsmux.testing.binance import MockBinanceBase


class FeedClient:
    """A minimal client: one socket, one adapter, one Feed, httpx for snapshots."""

    def __init__(self, mock: MockBinanceBase, adapter: Adapter, subs: Sequence[Subscription]) -> None:
        self.mock = mock
        self.adapter = adapter
        self.subs = list(subs)
        self.events: list[Event] = []
        self.feed = Feed(adapter, self.events.append)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        self.ws: ClientConnection | None = None
        self.http = httpx.AsyncClient()
        self.acks: list[int] = []

    async def __aenter__(self) -> FeedClient:
        self.ws = await connect(self.adapter.connect_url(self.subs))
        self.adapter.reset()
        for message in self.adapter.subscribe(self.subs):
            await self.ws.send(message)
        # Barrier: the mock answers messages only after it took the URL's streams.
        await self.ws.send('{"method":"LIST_SUBSCRIPTIONS","id":0}')
        await self.pump_until(lambda: 0 in self.acks)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None
        await self.ws.close()
        await self.http.aclose()

    async def pump_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Read frames (doing the Feed's actions) until ``done()``."""
        assert self.ws is not None

        async def run() -> None:
            while not done():
                frame = await self.ws.recv()  # type: ignore[union-attr]
                if frame.startswith('{"result"'):
                    self.acks.append(loads(frame)["id"])
                self.feed.on_frame(frame, 0)
                await self.do_actions()

        await asyncio.wait_for(run(), timeout)

    async def do_actions(self) -> None:
        for action in self.feed.take_actions():
            if isinstance(action, Send):
                for message in action.messages:
                    await self.ws.send(message)  # type: ignore[union-attr]
            elif isinstance(action, FetchSnapshot):
                r = await self.http.request(
                    action.request.method, action.request.url, params=list(action.request.params)
                )
                if r.status_code != 200:
                    self.feed.on_snapshot_error(action.symbol, SnapshotFailed(f"HTTP {r.status_code}"), 0)
                else:
                    self.feed.on_snapshot_body(action.symbol, r.content, 0)

    def synced_to_mock(self) -> bool:
        """Every book is valid at the mock's current update id."""
        for symbol, sync in self.feed.syncs.items():
            if not sync.valid or sync.book.seq != self.mock.update_id(symbol):
                return False
        return True

    async def sync(self) -> None:
        await self.pump_until(self.synced_to_mock)

    def assert_books_equal(self) -> None:
        for symbol, sync in self.feed.syncs.items():
            assert sync.valid, symbol
            assert sync.book.depth() == self.mock.markets[symbol].depth(), symbol
            sync.book._check()

    def of(self, cls: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, cls)]


SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def spot_subs(*channels: Channel) -> list[Subscription]:
    makers = {Channel.BOOK: book, Channel.TRADES: trades, Channel.QUOTES: quotes}
    return [s for c in channels for s in makers[c]("binance", *SYMBOLS)]


def adapter_for(mock: MockBinanceBase, cls: type[BinanceSpotAdapter] = BinanceSpotAdapter, **kw: object) -> Adapter:
    return cls(url=mock.ws_url, rest_url=mock.rest_url, **kw)  # type: ignore[arg-type]


# --- spot: books, trades, quotes ------------------------------------------------------------------


async def test_books_equal_mock_after_hundreds_of_steps() -> None:
    async with MockBinance(SYMBOLS, seed=3, batch=4) as mock:
        subs = spot_subs(Channel.BOOK, Channel.TRADES, Channel.QUOTES)
        async with FeedClient(mock, adapter_for(mock), subs) as client:
            await client.sync()  # the mock sends a diff on subscription: the books sync at once
            assert sorted(e.symbol for e in client.of(Resynced)) == SYMBOLS  # type: ignore[attr-defined]
            client.assert_books_equal()
            for _ in range(3):
                await mock.publish(150)
                await client.sync()
                client.assert_books_equal()
            assert client.of(Gap) == [] and client.of(Error) == []
            # every stream was named in the URL: no SUBSCRIBE was needed
            assert [loads(m)["method"] for m in mock.received] == ["LIST_SUBSCRIPTIONS"]
            for symbol in SYMBOLS:
                ids = [int(t.trade_id) for t in client.of(Trade) if t.symbol == symbol]  # type: ignore[attr-defined]
                assert ids == list(range(1, mock.markets[symbol].next_trade_id))
                last_quote = [q for q in client.of(Quote) if q.symbol == symbol][-1]  # type: ignore[attr-defined]
                m = mock.markets[symbol]
                bids, asks = m.depth()
                assert (last_quote.bid_price, last_quote.bid_size) == bids[0]  # type: ignore[attr-defined]
                assert (last_quote.ask_price, last_quote.ask_size) == asks[0]  # type: ignore[attr-defined]
            updates = [e for e in client.of(BookUpdate) if e.symbol == "BTC-USDT"]  # type: ignore[attr-defined]
            assert any(u.seq - u.first_seq > 5 for u in updates)  # type: ignore[attr-defined, operator]  # batched diffs


async def test_subscribe_by_message_and_raw_trade_stream() -> None:
    async with MockBinance(SYMBOLS) as mock:
        adapter = adapter_for(mock, url_stream_limit=0, trade_stream="trade")
        async with FeedClient(mock, adapter, spot_subs(Channel.BOOK, Channel.TRADES)) as client:
            await client.sync()
            assert [loads(m)["method"] for m in mock.received] == ["SUBSCRIBE", "LIST_SUBSCRIPTIONS"]
            assert loads(mock.received[0])["params"] == [
                "btcusdt@depth@100ms",
                "ethusdt@depth@100ms",
                "btcusdt@trade",
                "ethusdt@trade",
            ]
            await mock.publish(100)
            await client.sync()
            client.assert_books_equal()
            assert client.of(Error) == []
            assert len(client.of(Trade)) == sum(m.next_trade_id - 1 for m in mock.markets.values())
            # add a subscription on the open connection, then list them
            assert client.ws is not None
            (message,) = adapter.subscribe(quotes("binance", "BTC-USDT"))
            await client.ws.send(message)
            await client.pump_until(lambda: loads(message)["id"] in client.acks)  # the mock subscribed it
            await mock.publish(20)
            await client.sync()
            await client.pump_until(lambda: bool(client.of(Quote)))
            await client.ws.send(dumps({"method": "LIST_SUBSCRIPTIONS", "id": 99}))
            answer = loads(await client.ws.recv())
            while "id" not in answer:
                answer = loads(await client.ws.recv())
            assert answer == {"result": sorted([*loads(mock.received[0])["params"], "btcusdt@bookTicker"]), "id": 99}


async def test_raw_stream_path() -> None:
    async with MockBinance(["BTC-USDT"]) as mock:
        adapter = adapter_for(mock)
        adapter.to_native("BTC-USDT")
        events: list[Event] = []
        async with connect(f"{mock.ws_url}/ws/btcusdt@aggTrade") as ws:
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":0}')
            assert loads(await ws.recv()) == {"result": ["btcusdt@aggTrade"], "id": 0}
            await mock.publish(20)
            assert mock.markets["BTC-USDT"].next_trade_id > 1
            while not events:
                frame = await ws.recv()
                assert not frame.startswith('{"stream"')  # raw, unwrapped
                events.extend(adapter.parse(frame, 0))
        assert isinstance(events[0], Trade) and events[0].trade_id == "1"


async def test_binance_us_mock() -> None:
    async with MockBinanceUS(["BTC-USD"]) as mock:
        subs = [*book("binance-us", "BTC-USD"), *trades("binance-us", "BTC-USD")]
        async with FeedClient(mock, adapter_for(mock, BinanceUSAdapter), subs) as client:
            await mock.publish(200)
            await client.sync()
            client.assert_books_equal()
            assert {e.venue for e in client.events} == {"binance-us"}  # type: ignore[attr-defined]


# --- faults ------------------------------------------------------------------------------------------


async def _faulted(fault: str, count: int = 1) -> FeedClient:
    mock = MockBinance(SYMBOLS, seed=11)
    await mock.start()
    client = FeedClient(mock, adapter_for(mock), spot_subs(Channel.BOOK))
    await client.__aenter__()
    await client.sync()
    await mock.publish(30)
    await client.sync()
    setattr(mock.faults, fault, count)
    return client


async def _close(client: FeedClient) -> None:
    await client.__aexit__()
    await client.mock.stop()


@pytest.mark.parametrize(("fault", "reason"), [("skip_seq", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)])
async def test_fault_detected_and_healed(fault: str, reason: GapReason) -> None:
    client = await _faulted(fault)
    mock = client.mock
    try:
        resyncs = len(client.of(Resynced))
        await mock.publish(60)
        await client.pump_until(lambda: bool(client.of(Gap)))
        gap = client.of(Gap)[0]
        assert (gap.reason, gap.channel) == (reason, Channel.BOOK)  # type: ignore[attr-defined]
        await client.sync()
        client.assert_books_equal()
        assert len(client.of(Resynced)) == resyncs + 1
        assert len(client.of(Gap)) == 1
        await mock.publish(60)
        await client.sync()
        client.assert_books_equal()
    finally:
        await _close(client)


async def test_reorder_detected_and_healed() -> None:
    client = await _faulted("reorder")
    mock = client.mock
    try:
        await mock.publish(60)
        await client.pump_until(lambda: bool(client.of(Gap)))
        assert client.of(Gap)[0].reason is GapReason.SEQUENCE  # type: ignore[attr-defined]
        await mock.publish(10)
        await client.sync()
        client.assert_books_equal()
    finally:
        await _close(client)


async def test_duplicate_is_stale_not_a_gap() -> None:
    client = await _faulted("duplicate", 3)
    mock = client.mock
    try:
        await mock.publish(60)
        await client.sync()
        client.assert_books_equal()
        assert client.of(Gap) == []
        assert sum(s.stats.stale for s in client.feed.syncs.values()) >= 3
        assert mock.faults.duplicate == 0
    finally:
        await _close(client)


async def test_garbage_is_reported_and_book_stays_valid() -> None:
    client = await _faulted("garbage", 2)
    mock = client.mock
    try:
        await mock.publish(60)
        await client.sync()
        client.assert_books_equal()
        errors = client.of(Error)
        assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]  # type: ignore[attr-defined]
        assert client.of(Gap) == []
    finally:
        await _close(client)


@pytest.mark.parametrize("fault", ["snapshot_status", "snapshot_garbage"])
async def test_snapshot_failures_then_recovery(fault: str) -> None:
    async with MockBinance(["BTC-USDT"]) as mock:
        if fault == "snapshot_status":
            mock.faults.snapshot_status = 503
        else:
            mock.faults.snapshot_garbage = 1
        async with FeedClient(mock, adapter_for(mock), book("binance", "BTC-USDT")) as client:
            await client.pump_until(lambda: bool(client.of(Error)))
            err = client.of(Error)[0]
            assert err.kind is ErrorKind.SNAPSHOT and err.symbol == "BTC-USDT"  # type: ignore[attr-defined]
            assert not client.feed.syncs["BTC-USDT"].valid
            mock.faults.snapshot_status = 200
            await mock.publish(20)  # the next buffered diff asks for a new snapshot
            await client.sync()
            client.assert_books_equal()
            assert len(client.of(Resynced)) == 1


async def test_rejected_subscriptions() -> None:
    async with MockBinance(["BTC-USDT"]) as mock:
        mock.faults.reject_subscriptions = True
        adapter = adapter_for(mock, url_stream_limit=0)
        async with FeedClient(mock, adapter, trades("binance", "BTC-USDT")) as client:
            await client.pump_until(lambda: bool(client.of(Error)))
            err = client.of(Error)[0]
            assert err.kind is ErrorKind.VENUE_ERROR  # type: ignore[attr-defined]
            assert "SubscriptionRejected" in err.message and "btcusdt@aggTrade" in err.message  # type: ignore[attr-defined]
        # streams named in the URL: one error frame, no data
        async with FeedClient(mock, adapter_for(mock), trades("binance", "BTC-USDT")) as client:
            await client.pump_until(lambda: bool(client.of(Error)))
            assert client.of(Error)[0].kind is ErrorKind.VENUE_ERROR  # type: ignore[attr-defined]


# --- the mock's own protocol rules ------------------------------------------------------------------


async def test_mock_closes_on_too_many_messages() -> None:
    async with MockBinance(["BTC-USDT"]) as mock, connect(f"{mock.ws_url}/stream") as ws:
        for i in range(6):
            await ws.send(dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(10):
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_mock_rest_errors_and_snapshot_consistency() -> None:
    async with MockBinance(["BTC-USDT"]) as mock, httpx.AsyncClient(base_url=mock.rest_url) as http:
        assert (await http.get("/api/v3/depth", params={"symbol": "XRPUSDT"})).status_code == 400
        assert (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "9999"})).status_code == 400
        assert (await http.get("/nope")).status_code == 404
        await mock.publish(10)
        body = (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"})).json()
        assert body["lastUpdateId"] == mock.update_id("BTC-USDT")
        assert len(body["bids"]) == 5 and len(body["asks"]) == 5
        bids, _ = mock.markets["BTC-USDT"].depth()
        assert [(float(p), float(q)) for p, q in body["bids"]] == list(bids[:5])


# --- futures ---------------------------------------------------------------------------------------------


async def test_usdm_public_and_market_routes() -> None:
    async with MockBinanceFutures(["BTC-USDT-PERP"], funding_every=5) as mock:
        public = [*book("binance-usdm", "BTC-USDT-PERP"), *quotes("binance-usdm", "BTC-USDT-PERP")]
        market = [
            *trades("binance-usdm", "BTC-USDT-PERP"),
            *funding("binance-usdm", "BTC-USDT-PERP"),
            *liquidations("binance-usdm", "BTC-USDT-PERP"),
        ]
        pub = FeedClient(mock, adapter_for(mock, BinanceUsdmAdapter), public)  # type: ignore[arg-type]
        mkt = FeedClient(mock, adapter_for(mock, BinanceUsdmAdapter), market)  # type: ignore[arg-type]
        async with pub, mkt:
            await pub.sync()
            await mock.publish(200)
            await pub.sync()
            pub.assert_books_equal()
            n_trades = mock.markets["BTC-USDT-PERP"].next_trade_id - 1
            await mkt.pump_until(lambda: len(mkt.of(Trade)) == n_trades)
            await mkt.pump_until(lambda: len(mkt.of(Funding)) == 40)
            assert len(mkt.of(Liquidation)) == n_trades // 4
            assert mock.misrouted == []
            assert pub.of(Error) == [] and mkt.of(Error) == [] and pub.of(Gap) == []
            upd = pub.of(BookUpdate)[-1]
            assert upd.prev_seq is not None and upd.first_seq == upd.prev_seq + 1  # type: ignore[attr-defined]
            fund = mkt.of(Funding)[0]
            assert fund.rate == 0.0001 and fund.mark_price is not None  # type: ignore[attr-defined]
            liq = mkt.of(Liquidation)[0]
            assert liq.side in (Side.BUY, Side.SELL) and liq.size > 0  # type: ignore[attr-defined]


async def test_usdm_misrouted_stream_gets_no_data() -> None:
    async with MockBinanceFutures(["BTC-USDT-PERP"]) as mock:
        async with connect(f"{mock.ws_url}/market/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade"):
            await mock.publish(5)
        assert mock.misrouted == ["btcusdt@depth@100ms"]


async def test_usdm_gap_via_pu() -> None:
    async with MockBinanceFutures(["BTC-USDT-PERP"]) as mock:
        subs = book("binance-usdm", "BTC-USDT-PERP")
        async with FeedClient(mock, adapter_for(mock, BinanceUsdmAdapter), subs) as client:  # type: ignore[arg-type]
            await client.sync()
            await mock.publish(30)
            await client.sync()
            mock.faults.skip_seq = 1
            await mock.publish(30)
            await client.pump_until(lambda: bool(client.of(Gap)))
            gap = client.of(Gap)[0]
            assert gap.reason is GapReason.SEQUENCE  # type: ignore[attr-defined]
            assert gap.expected != gap.received  # type: ignore[attr-defined]
            await mock.publish(30)
            await client.sync()
            client.assert_books_equal()
            mock.faults.duplicate = 1
            await mock.publish(30)
            await client.sync()
            client.assert_books_equal()
            assert len(client.of(Gap)) == 1


async def test_coinm_book_in_contracts() -> None:
    async with MockBinanceCoinm(["BTC-USD-PERP"]) as mock:
        subs = [*book("binance-coinm", "BTC-USD-PERP"), *trades("binance-coinm", "BTC-USD-PERP")]
        async with FeedClient(mock, adapter_for(mock, BinanceCoinmAdapter), subs) as client:  # type: ignore[arg-type]
            await mock.publish(200)
            await client.sync()
            client.assert_books_equal()
            bids, _ = client.feed.syncs["BTC-USD-PERP"].book.depth()
            assert all(size == int(size) for _, size in bids)  # whole contracts
            assert client.of(Trade) and client.of(Error) == []


# --- candles --------------------------------------------------------------------------------------------


def candle_fields(c: Event) -> tuple[object, ...]:
    return (c.symbol, c.interval, *prices(c), c.closed)  # type: ignore[attr-defined]


async def test_candles_equal_the_mock_candles() -> None:
    async with MockBinance(SYMBOLS, seed=5) as mock:
        subs = [*candles("binance", *SYMBOLS), *trades("binance", *SYMBOLS)]
        async with FeedClient(mock, adapter_for(mock), subs) as client:
            await mock.publish(100)
            n_trades = sum(m.next_trade_id - 1 for m in mock.markets.values())
            n_klines = n_trades + sum(len(c) for c in mock.candles.closed.values())
            await client.pump_until(lambda: len(client.of(Candle)) == n_klines)
            assert client.of(Error) == [] and len(client.of(Trade)) == n_trades
            for symbol in SYMBOLS:
                m = mock.markets[symbol]
                want = mock.candles.forming[symbol]
                last = [c for c in client.of(Candle) if c.symbol == symbol][-1]  # type: ignore[attr-defined]
                assert candle_fields(last) == (
                    symbol,
                    "1m",
                    *mock_prices(m, want),
                    False,
                )
                assert last.volume == m.size(want.volume)  # type: ignore[attr-defined]
                # the forming candle's volume is the sum of the minute's trades
                minute = [
                    t.size  # type: ignore[attr-defined]
                    for t in client.of(Trade)
                    if t.symbol == symbol and t.ts // 60_000_000_000 * 60_000 == want.start_ms  # type: ignore[attr-defined]
                ]
                assert last.volume == pytest.approx(sum(minute))  # type: ignore[attr-defined]


async def test_usdm_and_coinm_candles_on_their_routes() -> None:
    async with MockBinanceFutures(["BTC-USDT-PERP"]) as mock:
        subs = list(candles("binance-usdm", "BTC-USDT-PERP"))
        async with FeedClient(mock, adapter_for(mock, BinanceUsdmAdapter), subs) as client:  # type: ignore[arg-type]
            await mock.publish(60)
            await client.pump_until(lambda: len(client.of(Candle)) >= mock.markets["BTC-USDT-PERP"].next_trade_id - 1)
            assert mock.misrouted == [] and client.of(Error) == []
    async with MockBinanceCoinm(["BTC-USD-PERP"]) as coinm:
        subs = list(candles("binance-coinm", "BTC-USD-PERP"))
        async with FeedClient(coinm, adapter_for(coinm, BinanceCoinmAdapter), subs) as client:  # type: ignore[arg-type]
            await coinm.publish(60)
            await client.pump_until(lambda: len(client.of(Candle)) >= coinm.markets["BTC-USD-PERP"].next_trade_id - 1)
            m = coinm.markets["BTC-USD-PERP"]
            want = coinm.candles.forming["BTC-USD-PERP"]
            last = client.of(Candle)[-1]
            # COIN-M: contracts (100 USD each) converted to BTC at the close, not the contract count
            assert last.volume == float(f"{m.size(want.volume) * 100 / m.price(want.close):.8f}")  # type: ignore[attr-defined]
            assert last.volume != m.size(want.volume)  # type: ignore[attr-defined]


def test_mock_closes_the_candle_when_a_trade_opens_a_new_minute() -> None:
    mock = MockBinance(["BTC-USDT"])
    adapter = BinanceSpotAdapter()
    adapter.to_native("BTC-USDT")
    minute = 1_700_000_040_000
    frames = [
        *mock._trade_frames("BTC-USDT", MarketTrade(1, 100, 5, Side.BUY), minute + 1_000),
        *mock._trade_frames("BTC-USDT", MarketTrade(2, 90, 3, Side.SELL), minute + 2_000),
        *mock._trade_frames("BTC-USDT", MarketTrade(3, 95, 1, Side.BUY), minute + 61_000),
    ]
    got = [e for _, payload in frames for e in adapter.parse(payload, 0) if isinstance(e, Candle)]
    m = mock.markets["BTC-USDT"]
    assert [(c.start_ts // 1_000_000, c.closed, c.close, c.volume) for c in got] == [
        (minute, False, m.price(100), m.size(5)),
        (minute, False, m.price(90), m.size(8)),
        (minute, True, m.price(90), m.size(8)),  # the final candle of the first minute
        (minute + 60_000, False, m.price(95), m.size(1)),
    ]
    assert (got[2].high, got[2].low) == (m.price(100), m.price(90))
