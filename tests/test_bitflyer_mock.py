"""BitflyerAdapter against MockBitflyer (127.0.0.1), end to end.

bitFlyer's book carries no sequence: clients synchronise on the ticker's
``tick_id``, which the mock sends last in every step (a client that has the
quote with the mock's current ``tick_id`` has every delta before it).
"""

from __future__ import annotations

from typing import Any

import pytest
from mockclient import MockFeedClient

from wsmux import (
    Backoff,
    BookSnapshot,
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
from wsmux.exchanges.bitflyer import BitflyerAdapter
from wsmux.testing import MockBitflyer, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)
SYMBOLS = ["BTC-JPY", "BTC-JPY-PERP"]


class Client(MockFeedClient):
    mock: MockBitflyer

    async def __aenter__(self) -> Client:
        await self.open()
        # barrier: every subscribe answered (the mock publishes only to subscribed channels)
        await self.pump_until(lambda: not self.adapter._requests)  # type: ignore[attr-defined]
        return self

    def caught_up(self) -> bool:
        """The client has the last ticker of every symbol (and so every delta before it)."""
        last: dict[str, int] = {}
        for quote in self.of(Quote):
            last[quote.symbol] = quote.seq
        return all(last.get(s) == self.mock.tick_id(s) for s in self.mock.symbols)

    async def catch_up(self) -> None:
        await self.pump_until(self.caught_up)


def client(mock: MockBitflyer, *channels: Channel) -> Client:
    makers = {Channel.BOOK: book, Channel.TRADES: trades, Channel.QUOTES: quotes}
    subs = [s for c in channels for s in makers[c]("bitflyer", *mock.symbols)]
    return Client(mock, BitflyerAdapter(url=mock.ws_url, rest_url=mock.rest_url), subs)


async def test_books_equal_mock_after_hundreds_of_steps_on_deltas_alone() -> None:
    async with MockBitflyer(SYMBOLS, seed=4, snapshot_every=0) as mock:  # one snapshot, on subscribe
        async with client(mock, Channel.BOOK, Channel.TRADES, Channel.QUOTES) as c:
            await c.pump_until(lambda: len(c.of(Resynced)) == 2)
            for _ in range(3):
                await mock.publish(150)
                await c.catch_up()
                c.assert_books_equal()
            assert mock.snapshots_sent == 2 and c.of(Gap) == [] and c.of(Error) == []
            for symbol in SYMBOLS:
                sync = c.feed.syncs[symbol]
                assert sync.book.integrity is Integrity.UNVERIFIABLE
                ids = [int(t.trade_id) for t in c.of(Trade) if t.symbol == symbol]
                assert ids == [2_000_000_000 + 7 * i for i in range(1, mock.markets[symbol].next_trade_id)]
                bids, asks = mock.markets[symbol].depth()
                quote = [q for q in c.of(Quote) if q.symbol == symbol][-1]
                assert (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (*bids[0], *asks[0])
            assert {t.side for t in c.of(Trade)} == {Side.BUY, Side.SELL}


async def test_every_snapshot_reanchors_the_book() -> None:
    async with MockBitflyer(["BTC-JPY"], seed=5, snapshot_every=10) as mock:
        async with client(mock, Channel.BOOK, Channel.QUOTES) as c:
            await mock.publish(100)
            await c.catch_up()
            c.assert_books_equal()
            snapshots = c.of(BookSnapshot)
            assert len(snapshots) == mock.snapshots_sent == 11  # on subscribe, then every 10 steps
            assert len(c.of(Resynced)) == 11 and c.of(Gap) == []


async def test_a_lost_delta_is_undetectable_until_the_next_snapshot_heals_it() -> None:
    """What the UNVERIFIABLE integrity level means: the lost delta leaves the book
    wrong (and valid) until the next snapshot replaces it."""
    async with MockBitflyer(["BTC-JPY"], seed=6, snapshot_every=0) as mock:
        async with client(mock, Channel.BOOK, Channel.QUOTES) as c:
            await mock.publish(20)
            await c.catch_up()
            mock.faults.skip_seq = 1
            await mock.publish(1)
            await c.catch_up()
            sync = c.feed.syncs["BTC-JPY"]
            assert sync.valid and c.of(Gap) == []
            assert sync.book.depth() != mock.markets["BTC-JPY"].depth()  # wrong, and nothing could tell
            assert c.ws is not None
            (resubscribe,) = c.adapter.resync_messages(book("bitflyer", "BTC-JPY")[0])
            await c.ws.send(resubscribe)  # the next snapshot
            await c.pump_until(lambda: len(c.of(Resynced)) == 2)
            await mock.publish(10)
            await c.catch_up()
            c.assert_books_equal()


async def test_crossed_board_breaks_the_book_until_the_resync_snapshot() -> None:
    async with MockBitflyer(["BTC-JPY"], seed=7, snapshot_every=0) as mock:
        async with client(mock, Channel.BOOK, Channel.QUOTES) as c:
            await mock.publish(10)
            await c.catch_up()
            mock.faults.crossed = 1
            await mock.publish(1)
            await c.pump_until(lambda: bool(c.of(Gap)))
            assert c.of(Gap)[0].reason is GapReason.CROSSED
            await c.pump_until(lambda: len(c.of(Resynced)) == 2)  # the Feed re-subscribed the snapshot channel
            await mock.publish(10)
            await c.catch_up()
            c.assert_books_equal()


async def test_duplicates_and_garbage_are_harmless_and_rejections_reported() -> None:
    async with MockBitflyer(["BTC-JPY"], seed=8, snapshot_every=0) as mock:
        async with client(mock, Channel.BOOK, Channel.QUOTES) as c:
            mock.faults.duplicate = 3
            mock.faults.garbage = 2
            await mock.publish(50)
            await c.catch_up()
            c.assert_books_equal()
            assert [e.kind for e in c.of(Error)] == [ErrorKind.MALFORMED] * 2
    async with MockBitflyer(["BTC-JPY"]) as mock:
        mock.faults.reject_subscriptions = True
        async with client(mock, Channel.TRADES) as c:
            await c.pump_until(lambda: bool(c.of(Error)))
            assert c.of(Error)[0].kind is ErrorKind.VENUE_ERROR


async def test_instruments_from_the_mock() -> None:
    import httpx

    async with MockBitflyer(SYMBOLS) as mock:
        adapter = BitflyerAdapter(rest_url=mock.rest_url)
        request = adapter.instruments_request()
        assert request is not None
        async with httpx.AsyncClient() as http:
            body = (await http.get(request.url)).content
        assert [(i.symbol, i.native, i.kind) for i in adapter.parse_instruments(body)] == [
            ("BTC-JPY", "BTC_JPY", "spot"),
            ("BTC-JPY-PERP", "FX_BTC_JPY", "perp"),
        ]


async def test_conformance_on_every_channel() -> None:
    subs = [Subscription("bitflyer", c, "BTC-JPY") for c in sorted(BitflyerAdapter.channels, key=lambda c: c.value)]
    async with MockBitflyer(["BTC-JPY"], seed=3, snapshot_every=7) as mock:
        frames = await capture_frames(mock, BitflyerAdapter, subs, steps=60)
    report = check_adapter(BitflyerAdapter, symbol="BTC-JPY", frames=frames, subscriptions=subs, mutations=300)
    assert report.events > 0


async def wait_tick(stream: Any, symbol: str, tick: int) -> list[Event]:
    return await collect_until(stream, lambda e: isinstance(e, Quote) and e.symbol == symbol and e.seq == tick)


@pytest.mark.parametrize("snapshot_every", [0, 25])
async def test_multiplexer_books_match_mock(snapshot_every: int) -> None:
    async with MockBitflyer(SYMBOLS, snapshot_every=snapshot_every) as mock:
        async with Multiplexer(endpoints={"bitflyer": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("bitflyer", *SYMBOLS), quotes("bitflyer", *SYMBOLS))
            seen: list[Event] = []
            while len({e.symbol for e in seen if isinstance(e, Resynced)}) < 2:
                seen += await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(300)
            for symbol in SYMBOLS:
                seen += await wait_tick(stream, symbol, mock.tick_id(symbol))
                view = mux.book("bitflyer", symbol)
                assert view.valid and view.depth() == mock.markets[symbol].depth()
            assert [e for e in seen if isinstance(e, Error | Gap)] == []
            await stream.aclose()
