"""UpbitAdapter against MockUpbit (127.0.0.1), end to end. Every frame the
mock sends is binary (UTF-8 JSON), as Upbit may send them.

Upbit's books carry no sequence: clients synchronise on the mock's book
clock (``tms`` of the last orderbook message, :meth:`MockUpbit.book_ms`).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mockclient import MockFeedClient

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Integrity,
    Multiplexer,
    Quote,
    Resynced,
    Side,
    Subscription,
    Trade,
    book,
    quotes,
    trades,
)
from wsmux.exchanges.upbit import UpbitAdapter
from wsmux.testing import MockUpbit, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
SYMBOLS = ["BTC-KRW", "ETH-KRW"]
MS = 1_000_000


class Client(MockFeedClient):
    mock: MockUpbit

    def caught_up(self) -> bool:
        return all(s.valid and s.book.ts == self.mock.book_ms(sym) * MS for sym, s in self.feed.syncs.items())

    async def catch_up(self) -> None:
        await self.pump_until(self.caught_up)

    def assert_top_equal(self) -> None:
        for symbol, sync in self.feed.syncs.items():
            assert sync.valid, symbol
            assert sync.book.depth() == self.mock.top(symbol), symbol
            sync.book._check()


def client(mock: MockUpbit, *channels: Channel) -> Client:
    makers = {Channel.BOOK: book, Channel.TRADES: trades, Channel.QUOTES: quotes}
    subs = [s for c in channels for s in makers[c]("upbit", *mock.symbols)]
    return Client(mock, UpbitAdapter(url=mock.ws_url, rest_url=mock.rest_url), subs)


async def test_books_equal_the_mock_top_30_after_hundreds_of_steps() -> None:
    async with MockUpbit(SYMBOLS, seed=4) as mock:
        async with client(mock, Channel.BOOK, Channel.TRADES, Channel.QUOTES) as c:
            await c.catch_up()
            for _ in range(3):
                await mock.publish(150)
                await c.catch_up()
                c.assert_top_equal()
            assert c.binary_frames == c.frames  # every frame was binary JSON
            assert c.of(Gap) == [] and c.of(Error) == []
            assert len(c.of(BookSnapshot)) == 2 and len(c.of(BookUpdate)) > 300
            for symbol in SYMBOLS:
                assert c.feed.syncs[symbol].book.integrity is Integrity.UNVERIFIABLE
                n = mock.markets[symbol].next_trade_id - 1
                assert len([t for t in c.of(Trade) if t.symbol == symbol]) == n
                bids, asks = mock.top(symbol)
                quote = [q for q in c.of(Quote) if q.symbol == symbol][-1]
                assert (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (*bids[0], *asks[0])
            assert {t.side for t in c.of(Trade)} == {Side.BUY, Side.SELL}


async def test_default_format_frames() -> None:
    async with MockUpbit(["BTC-KRW"], seed=2) as mock:
        c = client(mock, Channel.BOOK, Channel.TRADES)
        messages = [m.replace('"SIMPLE"', '"DEFAULT"') for m in c.adapter.subscribe(c.subs)]  # type: ignore[union-attr]
        await c.open(messages)
        try:
            await c.catch_up()  # the snapshot: the request was taken
            await mock.publish(100)
            await c.catch_up()
            c.assert_top_equal()
            assert c.of(Trade) and c.of(Error) == []
            assert next(iter(mock.connections.values())).state["format"] == "DEFAULT"
        finally:
            await c.__aexit__()


async def test_lost_and_duplicated_messages_are_harmless() -> None:
    async with MockUpbit(["BTC-KRW"], seed=5) as mock:
        async with client(mock, Channel.BOOK) as c:
            await c.catch_up()
            mock.faults.skip_seq = 3
            mock.faults.duplicate = 3
            mock.faults.garbage = 2
            await mock.publish(60)
            await c.catch_up()
            c.assert_top_equal()
            assert c.of(Gap) == []
            assert [e.kind for e in c.of(Error)] == [ErrorKind.MALFORMED] * 2


async def test_a_crossed_book_is_a_gap_healed_by_the_next_message() -> None:
    async with MockUpbit(["BTC-KRW"], seed=6) as mock:
        async with client(mock, Channel.BOOK) as c:
            await c.catch_up()
            mock.faults.crossed = 1
            await mock.publish(5)
            await c.catch_up()
            (gap,) = c.of(Gap)
            assert gap.reason is GapReason.CROSSED
            assert len(c.of(Resynced)) == 2 and len(c.of(BookSnapshot)) == 2  # re-anchored by the next message
            c.assert_top_equal()


async def test_rejected_request() -> None:
    async with MockUpbit(["BTC-KRW"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, Channel.TRADES) as c:
            await c.pump_until(lambda: bool(c.of(Error)))
            (error,) = c.of(Error)
            assert error.kind is ErrorKind.VENUE_ERROR and "INVALID_PARAM" in error.message


async def test_instruments_from_the_mock() -> None:
    async with MockUpbit(SYMBOLS) as mock:
        adapter = UpbitAdapter(rest_url=mock.rest_url)
        request = adapter.instruments_request()
        assert request is not None
        async with httpx.AsyncClient() as http:
            body = (await http.get(request.url, params=list(request.params))).content
        assert [(i.symbol, i.native) for i in adapter.parse_instruments(body)] == [
            ("BTC-KRW", "KRW-BTC"),
            ("ETH-KRW", "KRW-ETH"),
        ]


async def test_conformance_on_every_channel() -> None:
    subs = [Subscription("upbit", c, "BTC-KRW") for c in sorted(UpbitAdapter.channels, key=lambda c: c.value)]
    async with MockUpbit(["BTC-KRW"], seed=3) as mock:
        frames = await capture_frames(mock, UpbitAdapter, subs, steps=60)
    report = check_adapter(UpbitAdapter, symbol="BTC-KRW", frames=frames, subscriptions=subs, mutations=300)
    assert report.events > 0


async def wait_ts(stream: Any, symbol: str, ms: int) -> list[Event]:
    return await collect_until(
        stream, lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and e.ts == ms * MS
    )


@pytest.mark.parametrize("fault", [None, "crossed"])
async def test_multiplexer_books_match_mock(fault: str | None) -> None:
    async with MockUpbit(SYMBOLS) as mock:
        async with Multiplexer(endpoints={"upbit": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("upbit", *SYMBOLS), trades("upbit", *SYMBOLS))
            seen: list[Event] = []
            while len({e.symbol for e in seen if isinstance(e, Resynced)}) < 2:
                seen += await collect_until(stream, lambda e: isinstance(e, Resynced))
            if fault is not None:
                setattr(mock.faults, fault, 1)
            await mock.publish(300)
            for symbol in SYMBOLS:
                seen += await wait_ts(stream, symbol, mock.book_ms(symbol))
                view = mux.book("upbit", symbol)
                assert view.valid and view.depth() == mock.top(symbol)
            assert [e for e in seen if isinstance(e, Error)] == []
            assert [e.reason for e in seen if isinstance(e, Gap)] == ([GapReason.CROSSED] if fault else [])
            assert any(isinstance(e, Trade) for e in seen)
            await stream.aclose()
