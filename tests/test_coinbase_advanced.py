"""Coinbase Advanced Trade adapter: the sheet's frames, the per-connection
``sequence_num`` check, the Feed resync it drives, and MockCoinbaseAdvanced end
to end (Feed level and Multiplexer level)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from candlekit import mock_prices, prices

from wsmux import Multiplexer, book, candles, quotes, trades
from wsmux._pipeline import Feed, Send
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownSymbol
from wsmux.exchanges import get
from wsmux.exchanges.coinbase import CoinbaseAdvancedAdapter
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    Event,
    Gap,
    GapReason,
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription
from wsmux.testing import MockCoinbaseAdvanced, collect_until, parse_events

R = 42
V = "coinbase-advanced"
TS = "2024-05-01T12:00:00.123456789Z"
TS_NS = 1_714_564_800_123_456_789


def envelope(channel: str, seq: int, events: list[dict[str, Any]], ts: str = TS) -> str:
    return json.dumps({"channel": channel, "client_id": "", "timestamp": ts, "sequence_num": seq, "events": events})


def level(side: str, price: str, qty: str) -> dict[str, str]:
    return {"side": side, "event_time": "2024-05-01T12:00:00.1Z", "price_level": price, "new_quantity": qty}


SNAPSHOT = envelope(
    "l2_data",
    1,
    [
        {
            "type": "snapshot",
            "product_id": "BTC-USD",
            "updates": [
                level("bid", "63850.01", "0.25"),
                level("offer", "63850.02", "1.1"),
                level("bid", "63850.00", "2"),
            ],
        }
    ],
)


def test_registry_and_subscribe_messages() -> None:
    assert get(V) is CoinbaseAdvancedAdapter
    adapter = CoinbaseAdvancedAdapter()
    assert adapter.url == "wss://advanced-trade-ws.coinbase.com"
    subs = [*book(V, "BTC-USD", "ETH-USD"), *trades(V, "BTC-USD"), *quotes(V, "ETH-USD")]
    assert [json.loads(m) for m in adapter.subscribe(subs)] == [
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "ticker"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]
    # heartbeats once per connection; resync resubscribes level2 only
    assert [json.loads(m) for m in adapter.resync_messages(book(V, "ETH-USD")[0])] == [
        {"type": "unsubscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
    ]
    adapter.reset()
    assert json.loads(adapter.subscribe(list(trades(V, "A-B")))[-1]) == {"type": "subscribe", "channel": "heartbeats"}
    with pytest.raises(UnknownSymbol):
        adapter.subscribe(list(trades(V, "BTC-USD-PERP")))


def test_l2_snapshot_and_update() -> None:
    adapter = CoinbaseAdvancedAdapter()
    assert parse_events(adapter, SNAPSHOT, R) == [
        BookSnapshot(V, "BTC-USD", ((63850.01, 0.25), (63850.0, 2.0)), ((63850.02, 1.1),), TS_NS, R, 1)
    ]
    update = envelope(
        "l2_data", 2, [{"type": "update", "product_id": "BTC-USD", "updates": [level("offer", "63851.00", "0")]}]
    )
    assert parse_events(adapter, update, R) == [BookUpdate(V, "BTC-USD", (), ((63851.0, 0.0),), TS_NS, R, 2)]


def test_market_trades_snapshot_is_history_and_updates_are_trades() -> None:
    adapter = CoinbaseAdvancedAdapter()
    trade = {
        "trade_id": "43736593",
        "product_id": "BTC-USD",
        "price": "63850.02",
        "size": "0.01235647",
        "side": "BUY",
        "time": "2024-05-01T12:00:01.49Z",
    }
    assert adapter.parse(envelope("market_trades", 1, [{"type": "snapshot", "trades": [trade, trade]}]), R) == []
    assert adapter.stats.history_dropped == 1
    frame = envelope("market_trades", 2, [{"type": "update", "trades": [trade, trade | {"side": "SELL"}]}])
    assert adapter.parse(frame, R) == [
        Trade(V, "BTC-USD", 63850.02, 0.01235647, Side.BUY, "43736593", 1_714_564_801_490_000_000, R),
        Trade(V, "BTC-USD", 63850.02, 0.01235647, Side.SELL, "43736593", 1_714_564_801_490_000_000, R),
    ]


def test_ticker_is_a_quote() -> None:
    adapter = CoinbaseAdvancedAdapter()
    ticker = {
        "type": "ticker",
        "product_id": "BTC-USD",
        "price": "63850.02",
        "best_bid": "63850.01",
        "best_bid_quantity": "0.5",
        "best_ask": "63850.02",
        "best_ask_quantity": "1.25",
    }
    frame = envelope("ticker", 3, [{"type": "update", "tickers": [ticker]}])
    assert adapter.parse(frame, R) == [Quote(V, "BTC-USD", 63850.01, 0.5, 63850.02, 1.25, TS_NS, R, 3)]
    batch = {k: v for k, v in ticker.items() if not k.startswith("best_")}
    assert adapter.parse(envelope("ticker_batch", 4, [{"type": "update", "tickers": [batch]}]), R) == []
    no_qty = {k: v for k, v in ticker.items() if not k.endswith("quantity")}
    [quote] = adapter.parse(envelope("ticker", 5, [{"type": "update", "tickers": [no_qty]}]), R)
    assert isinstance(quote, Quote) and math.isnan(quote.bid_size)


def test_heartbeats_and_subscriptions_are_silent() -> None:
    adapter = CoinbaseAdvancedAdapter()
    heartbeat = envelope(
        "heartbeats",
        9,
        [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105", "heartbeat_counter": 3049}],
        ts="2023-06-23T20:31:56.123Z",
    )
    assert adapter.parse(heartbeat, R) == []
    assert adapter.parse(envelope("subscriptions", 10, [{"subscriptions": {"level2": ["BTC-USD"]}}]), R) == []


def candle_row(start: str, open_: str, high: str, low: str, close: str, volume: str) -> dict[str, str]:
    return {"start": start, "high": high, "low": low, "open": open_, "close": close, "volume": volume,
            "product_id": "ETH-USD"}  # fmt: skip


def test_candles_are_five_minute_buckets() -> None:
    adapter = CoinbaseAdvancedAdapter()
    assert json.loads(adapter.subscribe(candles(V, "ETH-USD"))[0]) == {
        "type": "subscribe",
        "product_ids": ["ETH-USD"],
        "channel": "candles",
    }
    # the docs' example (values as there): one bucket starting at 1688998200 s
    row = candle_row("1688998200", "1867.38", "1867.72", "1865.63", "1866.81", "0.20269406")
    frame = envelope("candles", 0, [{"type": "snapshot", "candles": [row]}])
    assert parse_events(adapter, frame, R) == [
        Candle(V, "ETH-USD", "5m", 1688998200 * 10**9, 1867.38, 1867.72, 1865.63, 1866.81, 0.20269406, False, TS_NS, R)
    ]


def test_older_candles_of_one_event_are_final() -> None:
    rows = [
        candle_row("1688998500", "1866.81", "1870", "1866", "1869", "1.5"),
        candle_row("1688998200", "1867.38", "1867.72", "1865.63", "1866.81", "0.2"),
    ]
    bars = parse_events(CoinbaseAdvancedAdapter(), envelope("candles", 0, [{"type": "update", "candles": rows}]), R)
    assert [(b.start_ts // 10**9, b.closed) for b in bars] == [(1688998200, True), (1688998500, False)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value"),
    [("high", "1800"), ("volume", "-1"), ("start", "soon"), ("open", None)],
)
def test_malformed_candles(field: str, value: str | None) -> None:
    row: dict[str, Any] = candle_row("1688998200", "1867.38", "1867.72", "1865.63", "1866.81", "0.2")
    row[field] = value
    with pytest.raises(MalformedMessage):
        parse_events(CoinbaseAdvancedAdapter(), envelope("candles", 0, [{"type": "update", "candles": [row]}]), R)


def test_sequence_gap_is_a_connection_wide_book_gap() -> None:
    adapter = CoinbaseAdvancedAdapter()
    adapter.subscribe(list(book(V, "BTC-USD")))
    assert len(adapter.parse(SNAPSHOT, R)) == 1
    update = {"type": "update", "product_id": "BTC-USD", "updates": [level("bid", "1", "1")]}
    gap, event = parse_events(adapter, envelope("l2_data", 4, [update]), R)
    assert gap == Gap(
        V, "", Channel.BOOK, GapReason.SEQUENCE, 2, 4, R, "connection sequence_num 4 after 1: 2 message(s) lost"
    )
    assert isinstance(event, BookUpdate)
    # older / repeated sequence numbers are dropped
    assert adapter.parse(envelope("l2_data", 4, [update]), R) == []
    assert adapter.parse(envelope("l2_data", 3, [update]), R) == []
    assert adapter.stats.duplicates == 2
    assert len(adapter.parse(envelope("l2_data", 5, [update]), R)) == 1
    # with trades on the connection a gap is reported for the trade tape too
    adapter.subscribe(list(trades(V, "BTC-USD")))
    events = adapter.parse(envelope("heartbeats", 7, [{"heartbeat_counter": 1}]), R)
    assert [(g.channel, g.symbol, g.expected, g.received) for g in events] == [  # type: ignore[attr-defined]
        (Channel.BOOK, "", 6, 7),
        (Channel.TRADES, "", 6, 7),
    ]
    adapter.reset()
    assert adapter.parse(envelope("heartbeats", 0, [{"heartbeat_counter": 1}]), R) == []


def test_a_malformed_message_counts_as_lost() -> None:
    adapter = CoinbaseAdvancedAdapter()
    adapter.parse(SNAPSHOT, R)
    with pytest.raises(MalformedMessage):
        adapter.parse(envelope("l2_data", 2, [{"type": "update", "product_id": "BTC-USD", "updates": [{}]}]), R)
    [gap] = adapter.parse(envelope("heartbeats", 3, [{"heartbeat_counter": 1}]), R)
    assert isinstance(gap, Gap) and (gap.expected, gap.received) == (2, 3)


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("{", MalformedMessage, "invalid JSON"),
        ("[]", MalformedMessage, "unknown message type"),
        ('{"channel":"weird","sequence_num":1,"events":[]}', MalformedMessage, "unknown message type: channel 'weird'"),
        ('{"channel":"l2_data","events":[]}', MalformedMessage, "bad l2_data"),
        ('{"channel":"l2_data","sequence_num":"1","timestamp":"' + TS + '","events":[]}', MalformedMessage, "bad"),
        (
            envelope("l2_data", 1, [{"type": "update", "product_id": "A-B", "updates": [level("up", "1", "1")]}]),
            MalformedMessage,
            "bad l2_data",
        ),
        (envelope("l2_data", 1, [{"type": "delta", "product_id": "A-B", "updates": []}]), MalformedMessage, "delta"),
        (envelope("l2_data", 1, [], ts="noon"), MalformedMessage, "bad l2_data"),
        (envelope("market_trades", 1, [{"type": "update", "trades": [{"trade_id": "1"}]}]), MalformedMessage, "bad"),
        ('{"type":"error","message":"Failure to subscribe to BTC-XYZ"}', SubscriptionRejected, "BTC-XYZ"),
        ('{"type":"error","message":"rate limited"}', RemoteError, "rate limited"),
    ],
)
def test_bad_frames(text: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        CoinbaseAdvancedAdapter().parse(text, R)


def test_feed_invalidates_every_book_on_a_sequence_gap() -> None:
    adapter = CoinbaseAdvancedAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    subs = list(book(V, "BTC-USD", "ETH-USD"))
    for sub in subs:
        feed.add_book(sub)
    adapter.subscribe(subs)
    feed.on_frame(SNAPSHOT, R)
    feed.on_frame(SNAPSHOT.replace("BTC-USD", "ETH-USD").replace('"sequence_num": 1', '"sequence_num": 2'), R)
    assert all(feed.syncs[s].valid for s in ("BTC-USD", "ETH-USD"))
    del events[:]
    feed.on_frame(envelope("heartbeats", 9, [{"heartbeat_counter": 1}]), R)
    assert [(e.symbol, e.reason) for e in events if isinstance(e, Gap)] == [  # type: ignore[union-attr]
        ("BTC-USD", GapReason.SEQUENCE),
        ("ETH-USD", GapReason.SEQUENCE),
    ]
    assert not any(feed.syncs[s].valid for s in ("BTC-USD", "ETH-USD"))
    sends = [json.loads(m) for a in feed.take_actions() if isinstance(a, Send) for m in a.messages]
    assert sends == [
        {"type": "unsubscribe", "product_ids": ["BTC-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"},
        {"type": "unsubscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
    ]


# --- end to end with the mock --------------------------------------------------------------


class Client:
    """A Feed driven by a plain websockets connection."""

    def __init__(self, mock: MockCoinbaseAdvanced) -> None:
        self.mock = mock
        self.adapter = CoinbaseAdvancedAdapter(url=mock.ws_url)
        self.events: list[Event] = []
        self.feed = Feed(self.adapter, self.events.append)
        self.ws: Any = None

    async def open(self, subs: list[Subscription]) -> None:
        self.ws = await websockets.connect(self.mock.ws_url, max_size=2**24)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                self.feed.add_book(sub)
        for message in self.adapter.subscribe(subs):
            await self.ws.send(message)

    async def pump_until(self, predicate: Callable[[str | bytes], bool]) -> None:
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), 10)
            self.feed.on_frame(frame, time.time_ns())
            for action in self.feed.take_actions():
                assert isinstance(action, Send)
                for message in action.messages:
                    await self.ws.send(message)
            if predicate(frame):
                return

    async def until_seq(self, seq: int) -> None:
        """Read until the frame with ``sequence_num`` ``seq`` (the mock's last)."""
        await self.pump_until(lambda f: json.loads(f).get("sequence_num", -1) >= seq)


async def test_feed_book_matches_the_mock_and_heals_a_lost_message() -> None:
    async with MockCoinbaseAdvanced(["BTC-USD", "ETH-USD"], seed=2) as mock:
        client = Client(mock)
        await client.open([*book(V, "BTC-USD", "ETH-USD"), *trades(V, "BTC-USD"), *quotes(V, "BTC-USD")])
        await client.pump_until(lambda f: sum(isinstance(e, Resynced) for e in client.events) == 2)
        await mock.heartbeat()
        await client.until_seq(mock.last_sequence_num())
        await mock.publish(200)
        await mock.heartbeat()
        await client.until_seq(mock.last_sequence_num())
        for symbol in ("BTC-USD", "ETH-USD"):
            assert client.feed.syncs[symbol].book.depth() == mock.markets[symbol].depth()
        assert not [e for e in client.events if isinstance(e, Gap | Error)]
        trade_ids = [e.trade_id for e in client.events if isinstance(e, Trade)]
        assert trade_ids == [t["trade_id"] for t in mock.trades["BTC-USD"][-len(trade_ids) :]] and trade_ids
        assert any(isinstance(e, Quote) for e in client.events)
        # a lost message: every book is invalidated, resubscribed and rebuilt
        mock.faults.skip_seq = 1
        await mock.publish(5)
        await client.pump_until(lambda f: sum(isinstance(e, Resynced) for e in client.events) == 4)
        gaps = [e for e in client.events if isinstance(e, Gap)]
        assert {(g.symbol, g.channel) for g in gaps} == {
            ("BTC-USD", Channel.BOOK),
            ("ETH-USD", Channel.BOOK),
            ("", Channel.TRADES),
        }
        await mock.publish(100)
        await mock.heartbeat()
        await client.until_seq(mock.last_sequence_num())
        for symbol in ("BTC-USD", "ETH-USD"):
            sync = client.feed.syncs[symbol]
            assert sync.valid and sync.book.depth() == mock.markets[symbol].depth()
        await client.ws.close()


async def test_feed_candles_equal_the_mock_bucket() -> None:
    async with MockCoinbaseAdvanced(["BTC-USD"], seed=3) as mock:
        client = Client(mock)
        await client.open([*candles(V, "BTC-USD"), *trades(V, "BTC-USD")])
        await mock.heartbeat()
        await client.until_seq(mock.last_sequence_num())
        await mock.publish(150)
        await mock.heartbeat()
        await client.until_seq(mock.last_sequence_num())
        market = mock.markets["BTC-USD"]
        bars = [e for e in client.events if isinstance(e, Candle)]
        assert len(bars) == market.next_trade_id - 1 > 0
        assert not [e for e in client.events if isinstance(e, Gap | Error)]
        want = mock.candles.forming["BTC-USD"]
        last = bars[-1]
        assert (last.interval, *prices(last), last.volume) == (
            "5m",
            *mock_prices(market, want),
            market.size(want.volume),
        )
        await client.ws.close()


async def test_multiplexer_advanced_book() -> None:
    async with MockCoinbaseAdvanced(["BTC-USD"], seed=8) as mock:
        async with Multiplexer(endpoints={V: mock.endpoint}) as mux:
            stream = mux.subscribe(*book(V, "BTC-USD"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(200)
            await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == mock.last_sequence_num())
            view = mux.book(V, "BTC-USD")
            assert view.valid and view.depth() == mock.markets["BTC-USD"].depth()
            mock.faults.crossed = 1
            await mock.publish(3)
            events = await collect_until(stream, lambda e: isinstance(e, Resynced))
            assert [e.reason for e in events if isinstance(e, Gap)] == [GapReason.CROSSED]
            await stream.aclose()


async def test_conformance_suite() -> None:
    from wsmux.testing import capture_frames, check_adapter

    subs = [Subscription(V, c, "BTC-USD") for c in sorted(CoinbaseAdvancedAdapter.channels, key=lambda c: c.value)]
    async with MockCoinbaseAdvanced(["BTC-USD"], seed=3) as mock:
        await mock.publish(10)
        frames = await capture_frames(mock, CoinbaseAdvancedAdapter, subs, steps=60)
    channels = {json.loads(f)["channel"] for f in frames}
    assert channels == {"subscriptions", "l2_data", "market_trades", "ticker", "candles"}
    report = check_adapter(CoinbaseAdvancedAdapter, symbol="BTC-USD", frames=frames, subscriptions=subs, mutations=500)
    assert report.events > 60 and report.mutations == 500
