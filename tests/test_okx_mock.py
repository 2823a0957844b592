"""OkxAdapter against MockOkx, end to end.

Two layers:

* Feed level: a bare ``websockets`` client reading in a background task into
  a :class:`wsmux._pipeline.Feed`, whose actions (resubscribes) it carries out.
  A ``ping``/``pong`` round trip synchronises: the mock answers in order, after
  every frame it published before.
* Multiplexer level: the real runtime, synchronised on the ``seqId`` of the
  last book update the mock rendered.
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
from feedclient import fault_detected_and_healed

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
from wsmux._pipeline import Feed, Send
from wsmux.exchanges.okx import OkxAdapter
from wsmux.testing import MockOkx, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)


class Client:
    """A Feed fed by a plain websockets connection (the layer under the runtime)."""

    def __init__(self, mock: MockOkx) -> None:
        self.mock = mock
        self.adapter = OkxAdapter(url=mock.ws_url)
        self.events: list[Event] = []
        self.feed = Feed(self.adapter, self.events.append)
        self.ws: Any = None
        self.pongs = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.adapter.connect_url(subs), max_size=2**24)
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
                if frame == "pong":
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
        await self.ws.send("ping")
        await self.wait(lambda: self.pongs > n)

    def count(self, cls: type) -> int:
        return sum(isinstance(e, cls) for e in self.events)


@contextlib.asynccontextmanager
async def client(mock: MockOkx, subs: list[Subscription]) -> Any:
    c = Client(mock)
    await c.open(subs)
    try:
        yield c
    finally:
        await c.close()


def assert_same_book(c: Client, mock: MockOkx, symbol: str) -> None:
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    assert local.depth() == mock.markets[symbol].depth()
    local._check()


# --- Feed level ------------------------------------------------------------------------


@pytest.mark.parametrize("checksums", [True, False], ids=["checksums", "checksum-0-like-2026"])
async def test_book_equals_mock_after_many_steps(checksums: bool) -> None:
    async with MockOkx(["BTC-USDT", "ETH-USDT-PERP"], checksums=checksums) as mock:
        subs = [*book("okx", "BTC-USDT", "ETH-USDT-PERP"), *trades("okx", "BTC-USDT"), *quotes("okx", "BTC-USDT")]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            await mock.publish(300)
            await c.sync()
            for symbol in ("BTC-USDT", "ETH-USDT-PERP"):
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                conn = next(iter(mock.connections.values()))
                assert sync.last == conn.state["seq"][symbol]
                assert sync.stats.gaps == 0 and sync.stats.checksum_mismatches == 0
                # every update (300 steps + keep-alives every 10) was applied
                assert sync.stats.applied == 330
                assert sync.stats.checksums_ok == (331 if checksums else 0)
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            market = mock.markets["BTC-USDT"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert len(tape) == market.next_trade_id - 1 and len(tape) > 50
            assert [t.trade_id for t in tape] == [str(i) for i in range(1, market.next_trade_id)]
            last_quote = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (last_quote.bid_price, last_quote.bid_size, last_quote.ask_price, last_quote.ask_size) == (
                market.price(bb),
                market.size(market.bids[bb]),
                market.price(ba),
                market.size(market.asks[ba]),
            )


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
    async with MockOkx(["BTC-USDT"], checksums=checksums) as mock:
        async with client(mock, list(book("okx", "BTC-USDT"))) as c:
            await fault_detected_and_healed(
                c, mock, "BTC-USDT", fault, reason, lambda: assert_same_book(c, mock, "BTC-USDT")
            )


async def test_duplicates_are_stale_not_gaps() -> None:
    async with MockOkx(["BTC-USDT"]) as mock:
        async with client(mock, list(book("okx", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            await mock.publish(50)
            await c.sync()
            assert c.count(Gap) == 0
            assert c.feed.syncs["BTC-USDT"].stats.stale == 3
            assert_same_book(c, mock, "BTC-USDT")


async def test_garbage_is_reported_and_the_book_survives() -> None:
    async with MockOkx(["BTC-USDT"]) as mock:
        async with client(mock, list(book("okx", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.garbage = 2
            await mock.publish(20)
            await c.sync()
            errors = [e for e in c.events if isinstance(e, Error)]
            assert [e.kind for e in errors] == [ErrorKind.MALFORMED, ErrorKind.MALFORMED]
            assert c.count(Gap) == 0
            assert_same_book(c, mock, "BTC-USDT")


async def test_rejected_subscription_is_reported() -> None:
    async with MockOkx(["BTC-USDT"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, [*book("okx", "BTC-USDT"), *trades("okx", "BTC-USDT")]) as c:
            await c.wait(lambda: c.count(Error) == 2)
            assert all(e.kind is ErrorKind.VENUE_ERROR and "60018" in e.message for e in c.events)  # type: ignore[attr-defined]
            assert not c.feed.syncs["BTC-USDT"].valid


async def test_derivative_channels() -> None:
    async with MockOkx(["BTC-USDT-PERP", "ETH-USDT-PERP"]) as mock:
        subs = [
            *funding("okx", "BTC-USDT-PERP"),
            *open_interest("okx", "BTC-USDT-PERP"),
            *liquidations("okx", "BTC-USDT-PERP"),  # ETH liquidations also flow on the channel
            *trades("okx", "BTC-USDT-PERP", "ETH-USDT-PERP"),
        ]
        async with client(mock, subs) as c:
            await c.wait(lambda: c.count(Funding) == 1 and c.count(OpenInterest) == 1)
            await mock.publish(100)
            await c.sync()
            fundings = [e for e in c.events if isinstance(e, Funding)]
            ois = [e for e in c.events if isinstance(e, OpenInterest)]
            liqs = [e for e in c.events if isinstance(e, Liquidation)]
            assert len(fundings) == 3 and len(ois) == 11  # on subscribe, then every 50 / 10 steps
            assert all(e.symbol == "BTC-USDT-PERP" for e in [*fundings, *ois, *liqs])
            assert fundings[0].next_funding_ts is not None and 0 < fundings[0].rate < 0.001
            btc_trades = {e.trade_id: e for e in c.events if isinstance(e, Trade) and e.symbol == "BTC-USDT-PERP"}
            expected = [t for i, t in btc_trades.items() if int(i) % 3 == 0]
            assert len(liqs) == len(expected) > 0
            for liq, trade in zip(liqs, expected, strict=True):
                assert (liq.side, liq.price, liq.size) == (trade.side, trade.price, trade.size)
            assert {e.side for e in liqs} <= {Side.BUY, Side.SELL}


async def test_candles_on_the_business_endpoint_equal_the_mock() -> None:
    async with MockOkx(["BTC-USDT", "BTC-USDT-PERP"], seed=6, contract_value="0.01") as mock:
        async with client(mock, list(candles("okx", "BTC-USDT", "BTC-USDT-PERP"))) as c:
            assert c.adapter.connect_url(list(candles("okx", "BTC-USDT"))).endswith("/ws/v5/business")
            await c.sync()
            await mock.publish(150)
            await c.sync()
            assert c.count(Error) == 0
            for symbol, inst in (("BTC-USDT", "BTC-USDT"), ("BTC-USDT-PERP", "BTC-USDT-SWAP")):
                market = mock.markets[symbol]
                bars = [e for e in c.events if isinstance(e, Candle) and e.symbol == symbol]
                assert len(bars) == market.next_trade_id - 1 > 0  # one push per trade, no minute rolled
                want = mock.candles.forming[inst]
                last = bars[-1]
                assert (*prices(last), last.closed) == (
                    *mock_prices(market, want),
                    False,
                )
                # spot: vol; swap: volCcy = contracts x contract value (base units)
                per_unit = 1.0 if symbol == "BTC-USDT" else float(mock.contract_value)
                assert last.volume == pytest.approx(market.size(want.volume) * per_unit)


async def test_a_late_candle_subscriber_sees_the_trades_made_before_it() -> None:
    """The venue's candle counts every trade of its minute, watched or not."""
    async with MockOkx(["BTC-USDT"], seed=2) as mock:
        async with client(mock, list(trades("okx", "BTC-USDT"))) as tape:
            await tape.sync()
            await mock.publish(60)
            async with client(mock, list(candles("okx", "BTC-USDT"))) as late:
                await late.sync()
                await mock.publish(60)
                await late.sync()
                await tape.sync()
                last = [e for e in late.events if isinstance(e, Candle)][-1]
                minute = [
                    e.size
                    for e in tape.events
                    if isinstance(e, Trade) and e.ts // 60_000_000_000 * 60_000_000_000 == last.start_ts
                ]
                assert len(minute) > len([e for e in late.events if isinstance(e, Candle)])  # trades before it too
                assert last.volume == pytest.approx(sum(minute))


async def test_public_endpoint_refuses_candles_and_business_refuses_books() -> None:
    async with MockOkx(["BTC-USDT"]) as mock:
        async with websockets.connect(mock.ws_url) as ws:  # /ws/v5/public
            await ws.send(OkxAdapter().subscribe(list(candles("okx", "BTC-USDT")))[0])
            reply = json.loads(await ws.recv())
            assert reply["event"] == "error" and reply["code"] == "60018"
        business = OkxAdapter(url=mock.ws_url).business_url()
        async with websockets.connect(business) as ws:
            await ws.send(OkxAdapter().subscribe(list(book("okx", "BTC-USDT")))[0])
            reply = json.loads(await ws.recv())
            assert reply["event"] == "error" and reply["code"] == "60018"


async def test_multiplexer_keeps_candles_on_their_own_connection() -> None:
    async with MockOkx(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"okx": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("okx", "BTC-USDT"), candles("okx", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(100)
            seen = await collect_until(stream, lambda e: isinstance(e, Candle))
            assert not any(isinstance(e, Error) for e in seen)
            assert sorted(c.state.get("business", False) for c in mock.connections.values()) == [False, True]
            await stream.aclose()


async def test_rest_book() -> None:
    async with MockOkx(["BTC-USDT"]) as mock, httpx.AsyncClient() as http:
        r = await http.get(f"{mock.rest_url}/api/v5/market/books", params={"instId": "BTC-USDT", "sz": "5"})
        body = r.json()
        assert body["code"] == "0"
        bids, asks = mock.markets["BTC-USDT"].depth()
        assert [(float(p), float(s)) for p, s, *_ in body["data"][0]["bids"]] == list(bids[:5])
        assert [(float(p), float(s)) for p, s, *_ in body["data"][0]["asks"]] == list(asks[:5])


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def test_multiplexer_book_matches_mock() -> None:
    async with MockOkx(["BTC-USDT", "BTC-USDT-PERP"]) as mock:
        async with Multiplexer(endpoints={"okx": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("okx", "BTC-USDT", "BTC-USDT-PERP"), trades("okx", "BTC-USDT"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            conn = next(iter(mock.connections.values()))
            for symbol in ("BTC-USDT", "BTC-USDT-PERP"):
                await wait_seq(stream, symbol, conn.state["seq"][symbol])
                view = mux.book("okx", symbol)
                assert view.valid
                assert view.depth() == mock.markets[symbol].depth()
                assert view.seq == conn.state["seq"][symbol]
            await stream.aclose()


async def test_multiplexer_heals_a_gap() -> None:
    async with MockOkx(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"okx": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("okx", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(50)
            conn = next(iter(mock.connections.values()))
            await wait_seq(stream, "BTC-USDT", conn.state["seq"]["BTC-USDT"])
            view = mux.book("okx", "BTC-USDT")
            assert view.valid and view.depth() == mock.markets["BTC-USDT"].depth()
            await stream.aclose()


async def test_conformance_on_every_channel() -> None:
    """The shared suite, on frames of every OKX channel (the registry-wide test covers
    book/trades/quotes only)."""
    symbol = "BTC-USDT-PERP"
    subs = [Subscription("okx", c, symbol) for c in sorted(OkxAdapter.channels, key=lambda c: c.value)]
    async with MockOkx([symbol], seed=3) as mock:
        frames = await capture_frames(mock, OkxAdapter, subs, steps=60)
    report = check_adapter(OkxAdapter, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
