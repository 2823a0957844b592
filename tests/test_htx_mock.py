"""HtxAdapter / HtxSwapAdapter against MockHtx / MockHtxSwap (gzip frames), end to end.

Feed level: a bare websockets client (tests/feedclient_gz.py) that gunzips like
the Connection and carries out the Feed's sends (``req`` resyncs, ``pong``
answers to the server's pings); synchronised by a client ``{"ping": n}`` whose
``{"pong": n}`` comes after everything published before. Multiplexer level:
synchronised on the ``seqNum``/``version`` of the last book update the mock
rendered.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from feedclient_gz import FeedClient, assert_same_book, feed_client

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
    Liquidation,
    Multiplexer,
    Quote,
    Resynced,
    Subscription,
    Trade,
    book,
    candles,
    funding,
    liquidations,
    quotes,
    trades,
)
from wsmux.adapter import Adapter
from wsmux.exchanges.htx import HtxAdapter, HtxSwapAdapter
from wsmux.testing import MockExchange, MockHtx, MockHtxSwap, capture_frames, check_adapter, collect_until

FAST = Backoff(initial=0.01, cap=0.05)


def is_pong(frame: str | bytes) -> bool:
    return b'"pong"' in (frame.encode() if isinstance(frame, str) else frame)


def client(mock: MockExchange, adapter: Adapter, subs: list[Subscription], **kwargs: Any) -> Any:
    return feed_client(mock, adapter, subs, ping='{"ping":1}', is_pong=is_pong, **kwargs)


async def run(c: FeedClient, mock: MockExchange, steps: int) -> None:
    """Publish in chunks of 10 steps (one server ping each), each followed by a
    sync: the client's pong reaches the mock before its next ping."""
    for _ in range(steps // 10):
        await mock.publish(10)
        await c.sync()


def spot(mock: MockHtx) -> HtxAdapter:
    return HtxAdapter(url=mock.ws_url, rest_url=mock.rest_url)


def swap(mock: MockHtx) -> HtxSwapAdapter:
    return HtxSwapAdapter(url=mock.ws_url, rest_url=mock.rest_url)


def answered_pings(mock: MockExchange) -> int:
    conn = next(iter(mock.connections.values()))
    return int(conn.state.get("pongs", 0))


# --- spot, Feed level --------------------------------------------------------------------


async def test_spot_book_equals_mock_and_pings_are_answered() -> None:
    async with MockHtx(["BTC-USDT", "ETH-USDT"], ping_every=10) as mock:
        subs = list(book("htx", "BTC-USDT", "ETH-USDT"))
        async with client(mock, spot(mock), subs) as c:
            assert c.ws is not None and mock.connections
            await c.wait(lambda: c.count(Resynced) == 2)
            await run(c, mock, 300)
            conn = next(iter(mock.connections.values()))
            # 30 server pings, each answered with its own number (the mock closes after 2 unanswered)
            assert conn.state["pings"] == 30 and conn.state["pongs"] == 30 and conn.state["unanswered"] == 0
            for symbol in ("BTC-USDT", "ETH-USDT"):
                assert_same_book(c, mock, symbol)
                sync = c.feed.syncs[symbol]
                assert sync.last == conn.state["seq"][symbol]
                assert sync.stats.gaps == 0 and sync.stats.applied >= 300
                assert c.feed.book(symbol).integrity is Integrity.SEQUENCE  # type: ignore[union-attr]
            assert not any(isinstance(e, Gap | Error) for e in c.events)
            # the feed socket was /feed (spot MBP lives only there)
            assert c.adapter.connect_url(subs).endswith("/feed")


async def test_spot_updates_before_the_req_answer_are_bridged() -> None:
    """The venue's procedure: updates buffered from the subscription on, the
    ``req`` snapshot bridges them (``prevSeqNum == snapshot seqNum``)."""
    async with MockHtx(["BTC-USDT"]) as mock:
        adapter = spot(mock)
        subs = list(book("htx", "BTC-USDT"))
        sub, req = adapter.subscribe(subs)
        async with client(mock, adapter, subs, messages=[sub]) as c:
            await c.sync()  # the mock has the subscription
            await mock.publish(5)  # five updates the client must buffer
            await c.sync()
            assert c.feed.syncs["BTC-USDT"].stats.buffered == 5 and c.count(Resynced) == 0
            await c.send(req)
            await c.wait(lambda: c.count(Resynced) == 1)
            await run(c, mock, 50)
            assert_same_book(c, mock, "BTC-USDT")
            assert c.feed.syncs["BTC-USDT"].stats.stale == 5 and c.count(Gap) == 0


@pytest.mark.parametrize("fault", ["skip_seq", "reorder", "crossed"])
async def test_spot_fault_detected_and_healed_by_a_new_req(fault: str) -> None:
    async with MockHtx(["BTC-USDT"]) as mock:
        async with client(mock, spot(mock), list(book("htx", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await run(c, mock, 30)
            setattr(mock.faults, fault, 1)
            await mock.publish(5)
            await c.wait(lambda: c.count(Gap) == 1)
            gap = next(e for e in c.events if isinstance(e, Gap))
            expected = GapReason.CROSSED if fault == "crossed" else GapReason.SEQUENCE
            assert gap.reason is expected and gap.symbol == "BTC-USDT" and gap.channel is Channel.BOOK
            await c.wait(lambda: c.count(Resynced) == 2)
            await run(c, mock, 100)
            assert_same_book(c, mock, "BTC-USDT")
            assert c.count(Gap) == 1
            reqs = [m for m in mock.received if isinstance(m, str) and '"req"' in m]
            assert len(reqs) == 2  # the first snapshot, then one resync; no unsubscribe
            assert not any('"unsub"' in m for m in mock.received if isinstance(m, str))


async def test_spot_duplicates_are_stale_and_garbage_is_one_error_each() -> None:
    async with MockHtx(["BTC-USDT"]) as mock:
        async with client(mock, spot(mock), list(book("htx", "BTC-USDT"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            mock.faults.duplicate = 3
            mock.faults.garbage = 2
            await run(c, mock, 50)
            assert c.count(Gap) == 0
            assert c.feed.syncs["BTC-USDT"].stats.stale == 3
            assert c.feed.stats.parse_errors == 2  # two frames that do not gunzip
            assert_same_book(c, mock, "BTC-USDT")


async def test_spot_trades_quotes_candles_and_rejections() -> None:
    async with MockHtx(["BTC-USDT"]) as mock:
        subs = [*trades("htx", "BTC-USDT"), *quotes("htx", "BTC-USDT"), *candles("htx", "BTC-USDT")]
        adapter = spot(mock)
        assert adapter.connect_url(subs) == mock.ws_url
        async with client(mock, adapter, subs) as c:
            await c.wait(lambda: c.count(Candle) == 1)
            await run(c, mock, 100)
            market = mock.markets["BTC-USDT"]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert [t.trade_id for t in tape] == [str(i) for i in range(1, market.next_trade_id)]
            last = [e for e in c.events if isinstance(e, Quote)][-1]
            bb, ba = market.best_bid(), market.best_ask()
            assert (last.bid_price, last.bid_size, last.ask_price, last.ask_size) == (
                market.price(bb),
                market.size(market.bids[bb]),
                market.price(ba),
                market.size(market.asks[ba]),
            )
            bars = [e for e in c.events if isinstance(e, Candle)]
            assert len(bars) == market.next_trade_id and bars[-1].close == tape[-1].price
            assert c.count(Error) == 0
            mock.faults.reject_subscriptions = True
            await c.send(adapter.subscribe(list(trades("htx", "BTC-USDT")))[0])
            await c.wait(lambda: c.count(Error) == 1)
            error = next(e for e in c.events if isinstance(e, Error))
            assert error.kind is ErrorKind.VENUE_ERROR and "invalid topic" in error.message


async def test_unanswered_pings_get_the_client_dropped() -> None:
    """The mock enforces the venue's rule (what the adapter's Reply prevents)."""
    import websockets

    async with MockHtx(["BTC-USDT"], ping_every=1) as mock:
        async with websockets.connect(mock.ws_url) as ws:
            await ws.send(json.dumps({"sub": "market.btcusdt.trade.detail", "id": "1"}))
            await ws.recv()
            await mock.publish(3)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await ws.recv()


# --- swaps, Feed level ----------------------------------------------------------------------


async def test_swap_book_in_contracts_then_in_base_units() -> None:
    async with MockHtxSwap(["BTC-USDT-PERP", "ETH-USDT-PERP"]) as mock, httpx.AsyncClient() as http:
        adapter = swap(mock)
        request = adapter.instruments_request()
        assert request is not None
        instruments = adapter.parse_instruments((await http.get(request.url)).content)
        assert {(i.symbol, i.native, i.kind, i.contract_size) for i in instruments} == {
            ("BTC-USDT-PERP", "BTC-USDT", "perp", 0.00001),
            ("ETH-USDT-PERP", "ETH-USDT", "perp", 0.00001),
        }
        subs = [*book("htx-swap", "BTC-USDT-PERP", "ETH-USDT-PERP"), *trades("htx-swap", "BTC-USDT-PERP")]
        async with client(mock, adapter, subs) as c:
            await c.wait(lambda: c.count(Resynced) == 2)
            await run(c, mock, 200)
            conn = next(iter(mock.connections.values()))
            for symbol in ("BTC-USDT-PERP", "ETH-USDT-PERP"):
                market = mock.markets[symbol]
                local = c.feed.book(symbol)
                assert local is not None and local.valid
                # sizes in contracts (one lot each) until the contract size is known
                lots = (
                    tuple((market.price(p), float(s)) for p, s in sorted(market.bids.items(), reverse=True)),
                    tuple((market.price(p), float(s)) for p, s in sorted(market.asks.items())),
                )
                assert local.depth() == lots
                assert c.feed.syncs[symbol].last == conn.state["seq"][symbol]
            tape = [e for e in c.events if isinstance(e, Trade)]
            assert tape and all(t.size == mock.markets["BTC-USDT-PERP"].size(round(t.size / 0.00001)) for t in tape)
            # with the contract sizes: a fresh snapshot, then base units
            adapter.use_instruments(instruments)
            await c.send(adapter.resync_messages(subs[0])[0])
            await c.send(adapter.resync_messages(subs[0])[1])
            await c.wait(lambda: c.count(Resynced) == 3)
            await run(c, mock, 100)
            local = c.feed.book("BTC-USDT-PERP")
            assert local is not None and local.valid
            bids, asks = mock.markets["BTC-USDT-PERP"].depth()
            got_bids, got_asks = local.depth()
            assert [p for p, _ in got_bids] == [p for p, _ in bids] and [p for p, _ in got_asks] == [p for p, _ in asks]
            assert [s for _, s in got_bids] == pytest.approx([s for _, s in bids], rel=1e-12)
            assert [s for _, s in got_asks] == pytest.approx([s for _, s in asks], rel=1e-12)
            assert c.count(Gap) == 0 and c.count(Error) == 0


@pytest.mark.parametrize("fault", ["skip_seq", "reorder", "crossed"])
async def test_swap_fault_detected_and_healed_by_resubscribing(fault: str) -> None:
    async with MockHtxSwap(["BTC-USDT-PERP"]) as mock:
        async with client(mock, swap(mock), list(book("htx-swap", "BTC-USDT-PERP"))) as c:
            await c.wait(lambda: c.count(Resynced) == 1)
            await run(c, mock, 30)
            setattr(mock.faults, fault, 1)
            await mock.publish(5)
            await c.wait(lambda: c.count(Gap) == 1)
            gap = next(e for e in c.events if isinstance(e, Gap))
            assert gap.reason is (GapReason.CROSSED if fault == "crossed" else GapReason.SEQUENCE)
            await c.wait(lambda: c.count(Resynced) == 2)
            await run(c, mock, 100)
            local = c.feed.book("BTC-USDT-PERP")
            assert local is not None and local.valid and c.count(Gap) == 1
            market = mock.markets["BTC-USDT-PERP"]
            assert [p for p, _ in local.depth()[0]] == [market.price(p) for p in sorted(market.bids, reverse=True)]


async def test_swap_funding_and_liquidations_on_the_notification_endpoint() -> None:
    async with MockHtxSwap(["BTC-USDT-PERP", "ETH-USDT-PERP"]) as mock:
        adapter = swap(mock)
        subs = [
            *funding("htx-swap", "BTC-USDT-PERP"),
            *liquidations("htx-swap", "BTC-USDT-PERP"),
            *trades("htx-swap", "BTC-USDT-PERP"),
        ]
        notify_subs = subs[:2]
        assert adapter.connect_url(notify_subs).endswith("/linear-swap-notification")
        async with client(mock, adapter, notify_subs) as notify, client(mock, swap(mock), subs[2:]) as market:
            await notify.wait(lambda: notify.count(Funding) == 1)
            await market.sync()  # the mock has both subscriptions
            for _ in range(10):
                await mock.publish(10)
                await notify.sync()
                await market.sync()
            conns = list(mock.connections.values())
            assert mock.connections_total == 2 and all(c.state["pings"] == 10 for c in conns)
            note = next(c for c in conns if mock._is_notification(c))
            assert note.state["pongs"] == 10  # {"op":"ping"} answered {"op":"pong"}
            fundings = [e for e in notify.events if isinstance(e, Funding)]
            assert len(fundings) == 11 and fundings[0].next_funding_ts and 0 < fundings[-1].rate < 0.001
            liqs = [e for e in notify.events if isinstance(e, Liquidation)]
            tape = [e for e in market.events if isinstance(e, Trade)]
            expected = [t for t in tape if int(t.trade_id) % 3 == 0]
            assert len(liqs) == len(expected) > 0
            for liq, trade in zip(liqs, expected, strict=True):
                assert (liq.side, liq.price, liq.size) == (trade.side, trade.price, trade.size)
            assert notify.count(Error) == 0 and market.count(Error) == 0


# --- Multiplexer level ---------------------------------------------------------------------


async def wait_seq(stream: Any, symbol: str, seq: int) -> list[Event]:
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.seq or 0) >= seq,
    )


async def mux_run(stream: Any, mock: MockExchange, steps: int, books: list[str]) -> None:
    """Publish in chunks of 10 steps (a server ping first in each), each
    followed by waiting for the chunk's last book updates: the connection has
    answered the ping before the next one."""
    for _ in range(steps // 10):
        await mock.publish(10)
        book_conn = next(c for c in mock.connections.values() if "seq" in c.state)
        want = {s: book_conn.state["seq"][s] for s in books}

        def done(e: Event) -> bool:
            if isinstance(e, BookUpdate | BookSnapshot) and (e.seq or 0) >= want.get(e.symbol, 1 << 62):
                del want[e.symbol]
            return not want

        await collect_until(stream, done)


async def test_multiplexer_spot_books_answer_every_ping() -> None:
    async with MockHtx(["BTC-USDT", "ETH-USDT"]) as mock:
        async with Multiplexer(endpoints={"htx": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("htx", "BTC-USDT", "ETH-USDT"))
            seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
            if sum(isinstance(e, Resynced) for e in seen) < 2:
                await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mux_run(stream, mock, 300, ["BTC-USDT", "ETH-USDT"])  # 30 server pings, each answered
            for symbol in ("BTC-USDT", "ETH-USDT"):
                view = mux.book("htx", symbol)
                assert view.valid and view.depth() == mock.markets[symbol].depth()
            (conn,) = mock.connections.values()
            assert mock.connections_total == 1 and conn.state["pings"] == 30  # never dropped
            assert conn.state["pongs"] >= 29  # (the last answer may still be on its way)
            await stream.aclose()


async def test_multiplexer_puts_spot_books_and_trades_on_their_two_hosts() -> None:
    async with MockHtx(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"htx": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("htx", "BTC-USDT"), trades("htx", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(9)
            tape = await collect_until(
                stream, lambda e: isinstance(e, Trade) and e.trade_id == str(mock.markets["BTC-USDT"].next_trade_id - 1)
            )
            assert [e.trade_id for e in tape if isinstance(e, Trade)] == [
                str(i) for i in range(1, mock.markets["BTC-USDT"].next_trade_id)
            ]
            paths = sorted(c.ws.request.path for c in mock.connections.values())
            assert paths == ["/feed", "/ws"]
            await stream.aclose()


async def test_multiplexer_swap_heals_a_gap() -> None:
    async with MockHtxSwap(["BTC-USDT-PERP"]) as mock:
        async with Multiplexer(endpoints={"htx-swap": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("htx-swap", "BTC-USDT-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mux_run(stream, mock, 20, ["BTC-USDT-PERP"])
            mock.faults.skip_seq = 1
            await mock.publish(5)
            events = await collect_until(stream, lambda e: isinstance(e, Gap))
            assert isinstance(events[-1], Gap) and events[-1].reason is GapReason.SEQUENCE
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mux_run(stream, mock, 50, ["BTC-USDT-PERP"])
            assert mux.book("htx-swap", "BTC-USDT-PERP").valid
            await stream.aclose()


@pytest.mark.parametrize(
    ("mock_cls", "adapter_cls", "symbol"),
    [(MockHtx, HtxAdapter, "BTC-USDT"), (MockHtxSwap, HtxSwapAdapter, "BTC-USDT-PERP")],
)
async def test_conformance_on_every_channel(mock_cls: type[MockHtx], adapter_cls: type[Any], symbol: str) -> None:
    subs = [Subscription(adapter_cls.venue, c, symbol) for c in sorted(adapter_cls.channels, key=lambda c: c.value)]
    async with mock_cls([symbol], seed=3, ping_every=0) as mock:
        frames = await capture_frames(mock, adapter_cls, subs, steps=60)
    report = check_adapter(adapter_cls, symbol=symbol, frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
