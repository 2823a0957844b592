"""Bybit adapters against MockBybit / MockBybitLinear, end to end.

Two layers, as for the other venues:

* Feed level: a bare ``websockets`` client reading in a background task into
  a :class:`wsmux._pipeline.Feed`, whose actions (resubscribes) it carries out.
  A ``{"op":"ping"}`` round trip synchronises (the mock answers in order).
* Multiplexer level: the real runtime, synchronised on the ``u`` of the last
  book delta the mock rendered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from candlekit import mock_prices, prices

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
from wsmux._pipeline import Feed, Send
from wsmux.adapter import Adapter
from wsmux.exchanges.bybit import BybitLinearAdapter, BybitSpotAdapter
from wsmux.testing import MockBybit, MockBybitLinear, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)

MARKETS = [
    pytest.param(BybitSpotAdapter, MockBybit, "BTC-USDT", id="spot"),
    pytest.param(BybitLinearAdapter, MockBybitLinear, "BTC-USDT-PERP", id="linear"),
]


def is_pong(frame: str | bytes) -> bool:
    text = frame if isinstance(frame, str) else frame.decode()
    return '"op":"pong"' in text or '"ret_msg":"pong"' in text


class Client:
    """A Feed fed by a plain websockets connection (the layer under the runtime)."""

    def __init__(self, adapter: Adapter, mock: MockBybit) -> None:
        self.mock = mock
        self.adapter = adapter
        self.events: list[Event] = []
        self.feed = Feed(adapter, self.events.append)
        self.ws: Any = None
        self.pongs = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.mock.ws_url, max_size=2**24)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        for message in self.adapter.subscribe(subs):
            await self.ws.send(message)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if is_pong(frame):
                    self.pongs += 1
                self.feed.on_frame(frame, time.time_ns())
                for action in self.feed.take_actions():
                    assert isinstance(action, Send)
                    for message in action.messages:
                        await self.ws.send(message)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        except BaseException as exc:  # surfaced by wait()
            self._error = exc
            self._changed.set()
            raise

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                if self._error is not None:
                    raise self._error
                self._changed.clear()
                await self._changed.wait()

    async def sync(self) -> None:
        """Every frame the mock published before this call has been processed."""
        n = self.pongs
        await self.ws.send(self.adapter.heartbeat.ping_message)
        await self.wait(lambda: self.pongs > n)

    def count(self, cls: type) -> int:
        return sum(isinstance(e, cls) for e in self.events)


@contextlib.asynccontextmanager
async def client(adapter: Adapter, mock: MockBybit, subs: list[Subscription]) -> Any:
    c = Client(adapter, mock)
    await c.open(subs)
    try:
        yield c
    finally:
        await c.close()


def assert_same_book(c: Client, mock: MockBybit, symbol: str, depth: int | None = None) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    bids, asks = mock.markets[symbol].depth()
    assert local.depth() == (bids[:depth], asks[:depth])
    local._check()


# --- Feed level ------------------------------------------------------------------------


@pytest.mark.parametrize(("adapter_cls", "mock_cls", "symbol"), MARKETS)
async def test_book_equals_mock_after_many_steps(
    adapter_cls: type[Adapter], mock_cls: type[MockBybit], symbol: str
) -> None:
    venue = adapter_cls.venue
    async with mock_cls([symbol]) as mock:
        subs = [*book(venue, symbol), *trades(venue, symbol), *quotes(venue, symbol)]
        async with client(adapter_cls(url=mock.ws_url), mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(300)
            await c.sync()
            assert_same_book(c, mock, symbol)
            sync = c.feed.syncs[symbol]
            conn = next(iter(mock.connections.values()))
            assert sync.last == conn.state["seq"][symbol]
            assert sync.stats.applied == 300 and sync.stats.gaps == 0
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets[symbol]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert len(tape) == market.next_trade_id - 1 > 50
            assert [t.seq for t in tape] == list(range(90_001, 90_001 + len(tape)))
            last_quote = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (last_quote.bid_price, last_quote.bid_size, last_quote.ask_price, last_quote.ask_size) == (
                market.price(bb),
                market.size(market.bids[bb]),
                market.price(ba),
                market.size(market.asks[ba]),
            )


async def test_shallow_book_is_truncated_like_the_venue() -> None:
    """orderbook.50: the mock never deletes levels pushed beyond 50; the client truncates."""
    async with MockBybit(["BTC-USDT"]) as mock:
        async with client(BybitSpotAdapter(url=mock.ws_url), mock, list(book("bybit", "BTC-USDT", depth=50))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(300)
            await c.sync()
            assert_same_book(c, mock, "BTC-USDT", 50)
            assert c.count(Gap) == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("skip_seq", GapReason.SEQUENCE), ("reorder", GapReason.SEQUENCE), ("crossed", GapReason.CROSSED)],
)
@pytest.mark.parametrize(("adapter_cls", "mock_cls", "symbol"), MARKETS)
async def test_fault_detected_and_healed(
    adapter_cls: type[Adapter], mock_cls: type[MockBybit], symbol: str, fault: str, reason: GapReason
) -> None:
    async with mock_cls([symbol]) as mock:
        async with client(adapter_cls(url=mock.ws_url), mock, list(book(adapter_cls.venue, symbol))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(30)
            setattr(mock.faults, fault, 1)
            await mock.publish(5)
            await c.wait(lambda: c.count(Gap) == 1)
            gap = next(e for e in c.events if isinstance(e, Gap))
            assert gap.reason is reason and gap.symbol == symbol
            if reason is GapReason.SEQUENCE:
                assert gap.received == gap.expected + 1  # type: ignore[operator]
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(100)
            await c.sync()
            assert_same_book(c, mock, symbol)
            assert c.count(Gap) == 1 and c.count(Error) == 0  # the resubscribe was accepted


async def test_duplicates_are_stale_not_gaps() -> None:
    async with MockBybit(["BTC-USDT"]) as mock:
        async with client(BybitSpotAdapter(url=mock.ws_url), mock, list(book("bybit", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(50)
            await c.sync()
            assert c.count(Gap) == 0 and c.feed.syncs["BTC-USDT"].stats.stale == 3
            assert_same_book(c, mock, "BTC-USDT")


async def test_service_restart_u_1_replaces_the_book() -> None:
    async with MockBybitLinear(["BTC-USDT-PERP"]) as mock:
        adapter = BybitLinearAdapter(url=mock.ws_url)
        async with client(adapter, mock, list(book("bybit-linear", "BTC-USDT-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await mock.publish(20)
            await mock.restart()
            await mock.publish(20)
            await c.sync()
            assert c.count(Resynced) == 2 and c.count(Gap) == 0
            assert c.feed.syncs["BTC-USDT-PERP"].last == 21  # counted on from u = 1
            assert_same_book(c, mock, "BTC-USDT-PERP")


async def test_garbage_and_rejections_are_reported() -> None:
    async with MockBybit(["BTC-USDT"]) as mock:
        async with client(BybitSpotAdapter(url=mock.ws_url), mock, list(book("bybit", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 1
            await mock.publish(10)
            await c.sync()
            assert [e.kind for e in c.events if isinstance(e, Error)] == [ErrorKind.MALFORMED]
            assert_same_book(c, mock, "BTC-USDT")
        mock.faults.reject_subscriptions = True
        async with client(BybitSpotAdapter(url=mock.ws_url), mock, list(trades("bybit", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Error) == 1)
            (err,) = c.events
            assert isinstance(err, Error) and err.kind is ErrorKind.VENUE_ERROR and "refuse" in err.message


async def test_spot_subscribes_many_topics_within_the_arg_limit() -> None:
    symbols = [f"C{i}-USDT" for i in range(12)]
    async with MockBybit(symbols) as mock:
        async with client(BybitSpotAdapter(url=mock.ws_url), mock, list(book("bybit", *symbols))) as c:
            await c.wait(lambda: c.count(Resynced) == 12)
            assert c.count(Error) == 0
            await mock.publish(20)
            await c.sync()
            for symbol in symbols:
                assert_same_book(c, mock, symbol)
    # The mock enforces the venue's limit: 11 args in one request are refused.
    async with MockBybit(["BTC-USDT"]) as mock:
        async with websockets.connect(mock.ws_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "args": ["publicTrade.BTCUSDT"] * 11}))
            reply = json.loads(await ws.recv())
            assert reply["success"] is False and "args size" in reply["ret_msg"]


async def test_linear_tickers_and_liquidations() -> None:
    async with MockBybitLinear(["BTC-USDT-PERP"]) as mock:
        symbol = "BTC-USDT-PERP"
        subs = [
            *funding("bybit-linear", symbol),
            *open_interest("bybit-linear", symbol),
            *liquidations("bybit-linear", symbol),
            *trades("bybit-linear", symbol),
        ]
        async with client(BybitLinearAdapter(url=mock.ws_url), mock, subs) as c:
            await c.wait(lambda: c.count(Funding) == 1 and c.count(OpenInterest) == 1)
            await mock.publish(100)
            await c.sync()
            fundings = [e for e in c.events if isinstance(e, Funding)]
            ois = [e for e in c.events if isinstance(e, OpenInterest)]
            assert len(fundings) == 6 and len(ois) == 21  # snapshot, then every 20 / 5 steps
            market = mock.markets[symbol]
            assert ois[-1].open_interest == market.size(2_000_000 + 11 * 100)
            assert fundings[-1].rate == 0.00015 and fundings[-1].mark_price is not None
            tape = {int(e.trade_id.split("-")[0]): e for e in c.events if isinstance(e, Trade)}
            liqs = [e for e in c.events if isinstance(e, Liquidation)]
            expected = [t for i, t in sorted(tape.items()) if i % 3 == 0]
            assert len(liqs) == len(expected) > 0
            for liq, trade in zip(liqs, expected, strict=True):
                # S is the position side; the liquidation order is the taker of the trade
                assert (liq.side, liq.price, liq.size) == (trade.side, trade.price, trade.size)


@pytest.mark.parametrize(
    ("mock_cls", "adapter_cls", "symbol"),
    [(MockBybit, BybitSpotAdapter, "BTC-USDT"), (MockBybitLinear, BybitLinearAdapter, "BTC-USDT-PERP")],
)
async def test_candles_equal_the_mock_candle_on_two_connections(mock_cls: Any, adapter_cls: Any, symbol: str) -> None:
    async with mock_cls([symbol], seed=4) as mock:
        subs = [*candles(adapter_cls.venue, symbol), *trades(adapter_cls.venue, symbol)]
        async with (
            client(adapter_cls(url=mock.ws_url), mock, subs) as one,
            client(adapter_cls(url=mock.ws_url), mock, subs) as two,
        ):
            await one.sync()
            await two.sync()
            await mock.publish(120)
            await one.sync()
            await two.sync()
            market = mock.markets[symbol]
            want = mock.candles.forming["BTCUSDT"]
            n_trades = market.next_trade_id - 1
            for c in (one, two):
                bars = [e for e in c.events if isinstance(e, Candle)]
                assert len(bars) == n_trades and c.count(Error) == 0
                last = bars[-1]
                assert (*prices(last), last.volume, last.closed) == (
                    *mock_prices(market, want),
                    market.size(want.volume),
                    False,
                )
                # each trade counted once, though two connections rendered it
                sizes = [e.size for e in c.events if isinstance(e, Trade)]
                assert last.volume == pytest.approx(sum(sizes))


async def test_rest_book() -> None:
    async with MockBybitLinear(["BTC-USDT-PERP"]) as mock, httpx.AsyncClient() as http:
        params = {"category": "linear", "symbol": "BTCUSDT", "limit": "5"}
        body = (await http.get(f"{mock.rest_url}/v5/market/orderbook", params=params)).json()
        bids, asks = mock.markets["BTC-USDT-PERP"].depth()
        assert [(float(p), float(s)) for p, s in body["result"]["b"]] == list(bids[:5])
        assert [(float(p), float(s)) for p, s in body["result"]["a"]] == list(asks[:5])


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


@pytest.mark.parametrize(("adapter_cls", "mock_cls", "symbol"), MARKETS)
async def test_multiplexer_book_matches_mock_and_heals(
    adapter_cls: type[Adapter], mock_cls: type[MockBybit], symbol: str
) -> None:
    venue = adapter_cls.venue
    async with mock_cls([symbol]) as mock:
        async with Multiplexer(endpoints={venue: mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book(venue, symbol), trades(venue, symbol))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            conn = next(iter(mock.connections.values()))
            await wait_seq(stream, symbol, conn.state["seq"][symbol])
            view = mux.book(venue, symbol)
            assert view.valid and view.seq == conn.state["seq"][symbol]
            assert view.depth() == mock.markets[symbol].depth()
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            await wait_seq(stream, symbol, conn.state["seq"][symbol])
            view = mux.book(venue, symbol)
            assert view.valid and view.depth() == mock.markets[symbol].depth()
            await stream.aclose()


async def test_conformance_on_every_linear_channel() -> None:
    """The shared suite, on frames of every bybit-linear channel (the registry-wide
    test covers book/trades/quotes only)."""
    symbol = "BTC-USDT-PERP"
    subs = [Subscription("bybit-linear", c, symbol) for c in sorted(BybitLinearAdapter.channels, key=lambda c: c.value)]
    async with MockBybitLinear([symbol], seed=3) as mock:
        frames = await capture_frames(mock, BybitLinearAdapter, subs, steps=60)
    report = check_adapter(BybitLinearAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
