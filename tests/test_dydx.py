"""DydxAdapter on hand-written frames in the indexer's documented format
(shared/exchanges/dydx-v4.md, "Examples"; message shapes of the indexer's socks service)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Funding,
    Gap,
    GapReason,
    Integrity,
    Liquidation,
    OpenInterest,
    Side,
    Subscription,
    Trade,
    exchanges,
)
from wsmux._pipeline import Feed
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownMessage, UnknownSymbol
from wsmux.exchanges.dydx import DydxAdapter
from wsmux.testing import MockDydx, parse_events

RECV = 1_714_564_800_999_000_000
CONN = "004a1efa-21bb-4b19-a2e9-a8ffadd6dc53"
BTC, ETH = "BTC-USD-PERP", "ETH-USD-PERP"


def sub(channel: Channel, symbol: str = BTC) -> Subscription:
    return Subscription("dydx", channel, symbol)


def frame(kind: str, message_id: int, channel: str | None = None, topic: str | None = "BTC-USD", **rest: Any) -> str:
    message: dict[str, Any] = {"type": kind, "connection_id": CONN, "message_id": message_id}
    if channel is not None:
        message["channel"] = channel
        if topic is not None:
            message["id"] = topic
    message.update(rest)
    return json.dumps(message)


CONNECTED = frame("connected", 0)


def book_snapshot(message_id: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> str:
    contents = {
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
    }
    return frame("subscribed", message_id, "v4_orderbook", contents=contents)


def book_update(message_id: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    return frame("channel_data", message_id, "v4_orderbook", version="1.0.0", contents={"bids": bids, "asks": asks})


def connected_adapter(*channels: Channel) -> DydxAdapter:
    a = DydxAdapter()
    a.subscribe([sub(c) for c in channels or (Channel.BOOK,)])
    assert a.parse(CONNECTED, RECV) == []
    return a


# --- registry, symbols, subscriptions ------------------------------------------------------


def test_registered_and_rule() -> None:
    assert exchanges.get("dydx") is DydxAdapter
    rule = DydxAdapter().book_rule(BTC)
    assert rule.level() is Integrity.SEQUENCE and not rule.check_crossed and rule.checksum is None


def test_symbols() -> None:
    a = DydxAdapter()
    assert a.to_native(BTC) == "BTC-USD"
    for bad in ("BTC-USD", "BTC-USDT-PERP", "BTC-USD-20261225"):
        with pytest.raises(UnknownSymbol):
            a.to_native(bad)


def test_subscribe_messages() -> None:
    a = DydxAdapter()
    messages = a.subscribe(
        [sub(Channel.BOOK), sub(Channel.TRADES), sub(Channel.LIQUIDATIONS), sub(Channel.CANDLES), sub(Channel.FUNDING)]
    )
    assert [json.loads(m) for m in messages] == [
        {"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD", "batched": False},
        {"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD", "batched": False},
        {"type": "subscribe", "channel": "v4_candles", "id": "BTC-USD/1MIN", "batched": False},
        {"type": "subscribe", "channel": "v4_markets", "batched": False},
    ]
    # v4_markets covers every market: one subscription, dropped with the last channel using it
    assert a.subscribe([sub(Channel.OPEN_INTEREST, ETH)]) == []
    assert a.unsubscribe([sub(Channel.FUNDING)]) == []
    assert [json.loads(m) for m in a.unsubscribe([sub(Channel.OPEN_INTEREST, ETH)])] == [
        {"type": "unsubscribe", "channel": "v4_markets", "batched": False}
    ]
    assert a.unsubscribe([sub(Channel.TRADES)]) == []  # liquidations still use v4_trades
    assert DydxAdapter.limits.messages_per_second == 2.0 and DydxAdapter.heartbeat.ping_message is None


# --- books ---------------------------------------------------------------------------------


def test_book_snapshot_and_update() -> None:
    a = connected_adapter()
    [snap] = a.parse(book_snapshot(1, [("64998", "2"), ("64999", "1.2031")], [("65001", "0.8")]), RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == ((64999.0, 1.2031), (64998.0, 2.0)) and snap.asks == ((65001.0, 0.8),)
    assert snap.seq == 1 and snap.ts is None and snap.symbol == BTC
    [update] = parse_events(a, book_update(2, [["64999", "0"]], [["65002", "0.41"]]), RECV)
    assert isinstance(update, BookUpdate)
    assert update.bids == ((64999.0, 0.0),) and update.asks == ((65002.0, 0.41),) and update.seq == 2


def test_a_newer_level_uncrosses_the_stale_other_side() -> None:
    """dYdX's guide: the newer message wins; the crossed levels of the other side are stale."""
    a = connected_adapter()
    a.parse(book_snapshot(1, [("100", "1"), ("99", "1")], [("101", "1"), ("102", "1"), ("103", "1")]), RECV)
    [update] = parse_events(a, book_update(2, [["102", "5"]], []), RECV)
    assert isinstance(update, BookUpdate)
    assert update.bids == ((102.0, 5.0),)
    assert update.asks == ((101.0, 0.0), (102.0, 0.0))
    assert a.uncrossed == 2
    # an ask at or below the best bid (now 102) removes the crossed bids
    [update] = parse_events(a, book_update(3, [], [["99.5", "2"]]), RECV)
    assert isinstance(update, BookUpdate)
    assert update.asks == ((99.5, 2.0),) and update.bids == ((100.0, 0.0), (102.0, 0.0))
    assert a.uncrossed == 4


def test_uncrossing_in_a_feed_keeps_the_book_valid_and_uncrossed() -> None:
    a = DydxAdapter()
    events: list[object] = []
    feed = Feed(a, events.append)
    feed.add_book(sub(Channel.BOOK))
    a.subscribe([sub(Channel.BOOK)])
    for f in (
        CONNECTED,
        book_snapshot(1, [("100", "1"), ("99", "1")], [("101", "1"), ("102", "1")]),
        # one message: a bid at 101 (crosses ask 101), then an ask at 100 (crosses bids 100, 101)
        book_update(2, [["101", "3"]], [["100", "4"]]),
    ):
        feed.on_frame(f, RECV)
    book = feed.book(BTC)
    assert book is not None and book.valid and not book.crossed()
    assert book.depth() == (((99.0, 1.0),), ((100.0, 4.0), (102.0, 1.0)))
    assert not [e for e in events if isinstance(e, Gap)]


def test_a_crossed_snapshot_is_kept_not_a_gap() -> None:
    a = DydxAdapter()
    events: list[object] = []
    feed = Feed(a, events.append)
    feed.add_book(sub(Channel.BOOK))
    a.subscribe([sub(Channel.BOOK)])
    feed.on_frame(CONNECTED, RECV)
    feed.on_frame(book_snapshot(1, [("101", "1")], [("100", "1"), ("102", "1")]), RECV)
    book = feed.book(BTC)
    assert book is not None and book.valid and book.crossed()
    feed.on_frame(book_update(2, [], [["100", "0"]]), RECV)  # the venue withdraws the stale ask
    assert book.valid and not book.crossed()
    assert not [e for e in events if isinstance(e, Gap)]


# --- the connection sequence -----------------------------------------------------------------


def test_a_lost_message_is_a_connection_gap() -> None:
    a = connected_adapter(Channel.BOOK, Channel.TRADES)
    a.parse(book_snapshot(1, [("100", "1")], [("101", "1")]), RECV)
    a.parse(frame("subscribed", 2, "v4_trades", contents={"trades": []}), RECV)
    assert a.parse(book_update(3, [["100", "2"]], []), RECV)
    events = a.parse(book_update(5, [["100", "3"]], []), RECV)
    book_gap, trades_gap, diff = events
    assert isinstance(book_gap, Gap) and isinstance(trades_gap, Gap)
    assert (book_gap.symbol, book_gap.channel, book_gap.reason) == ("", Channel.BOOK, GapReason.SEQUENCE)
    assert (book_gap.expected, book_gap.received) == (4, 5)
    assert trades_gap.channel is Channel.TRADES
    assert not isinstance(diff, Gap)


def test_duplicates_are_dropped() -> None:
    a = connected_adapter()
    a.parse(book_snapshot(1, [("100", "1")], [("101", "1")]), RECV)
    assert a.parse(book_update(2, [["100", "2"]], []), RECV)
    assert a.parse(book_update(2, [["100", "2"]], []), RECV) == []
    assert a.duplicates == 1 and a.message_id == 2


def test_late_subscribe_answers_fill_their_holes() -> None:
    """The server reserves a subscribe's id when it reads it but answers after
    fetching the initial data: other data may come first with higher ids."""
    a = connected_adapter(Channel.TRADES)  # reserves id 1
    assert a.parse(frame("subscribed", 1, "v4_trades", contents={"trades": []}), RECV) == []
    a.subscribe([sub(Channel.BOOK), sub(Channel.CANDLES)])  # will reserve 3 and 4 (2 is a trade below)
    trade = {
        "id": "t1",
        "side": "BUY",
        "size": "1",
        "price": "100",
        "type": "LIMIT",
        "createdAt": "2024-05-01T12:00:01.234Z",
    }
    assert a.parse(frame("channel_data", 2, "v4_trades", contents={"trades": [trade]}), RECV)
    late = frame("channel_data", 5, "v4_trades", contents={"trades": [trade]})
    assert not any(isinstance(e, Gap) for e in a.parse(late, RECV))  # 3 and 4 are holes for the answers
    [snap] = a.parse(book_snapshot(3, [("100", "1")], [("101", "1")]), RECV)
    assert isinstance(snap, BookSnapshot)
    with pytest.raises(SubscriptionRejected):  # the candles subscribe failed: its error carries id 4
        a.parse(frame("error", 4, message="Internal error, could not fetch data for subscription: v4_candles."), RECV)
    # no subscribe outstanding: the next hole is a gap
    events = a.parse(frame("channel_data", 7, "v4_trades", contents={"trades": [trade]}), RECV)
    assert isinstance(events[0], Gap) and (events[0].expected, events[0].received) == (6, 7)


def test_unsubscribed_takes_an_id() -> None:
    a = connected_adapter()
    a.parse(book_snapshot(1, [("100", "1")], [("101", "1")]), RECV)
    assert a.parse(frame("unsubscribed", 2, "v4_orderbook"), RECV) == []
    assert a.message_id == 2
    assert a.parse(book_update(3, [["100", "2"]], []), RECV)


# --- other channels ------------------------------------------------------------------------------


def test_trades_liquidations_and_history() -> None:
    a = connected_adapter(Channel.TRADES, Channel.LIQUIDATIONS)
    history = {
        "trades": [
            {
                "id": "old",
                "side": "SELL",
                "size": "1",
                "price": "1",
                "type": "LIMIT",
                "createdAt": "2024-05-01T11:00:00.000Z",
            }
        ]
    }
    assert a.parse(frame("subscribed", 1, "v4_trades", contents=history), RECV) == []
    assert a.history_dropped == 1
    trades = [
        {
            "id": "8f6e1d2c-aaaa",
            "side": "BUY",
            "size": "0.0100",
            "price": "65001",
            "type": "LIMIT",
            "createdAt": "2024-05-01T12:00:01.234Z",
            "createdAtHeight": "14325550",
        },
        {
            "id": "8f6e1d2c-bbbb",
            "side": "SELL",
            "size": "0.5",
            "price": "64990",
            "type": "LIQUIDATED",
            "createdAt": "2024-05-01T12:00:01.500Z",
            "createdAtHeight": "14325550",
        },
    ]
    events = a.parse(frame("channel_data", 2, "v4_trades", version="2.1.0", contents={"trades": trades}), RECV)
    ts = 1714564801234000000
    assert events == [
        Trade("dydx", BTC, 65001.0, 0.01, Side.BUY, "8f6e1d2c-aaaa", ts, RECV),
        Trade("dydx", BTC, 64990.0, 0.5, Side.SELL, "8f6e1d2c-bbbb", ts + 266_000_000, RECV),
        Liquidation("dydx", BTC, Side.SELL, 64990.0, 0.5, ts + 266_000_000, RECV),
    ]
    only_liquidations = connected_adapter(Channel.LIQUIDATIONS)
    only_liquidations.parse(frame("subscribed", 1, "v4_trades", contents=history), RECV)
    events = only_liquidations.parse(frame("channel_data", 2, "v4_trades", contents={"trades": trades}), RECV)
    assert [type(e) for e in events] == [Liquidation]


def test_markets_funding_and_open_interest() -> None:
    a = connected_adapter(Channel.FUNDING, Channel.OPEN_INTEREST)
    markets = {
        "BTC-USD": {"ticker": "BTC-USD", "status": "ACTIVE", "nextFundingRate": "0.0000125", "openInterest": "1234.5"},
        "ETH-USD": {"ticker": "ETH-USD", "status": "ACTIVE", "nextFundingRate": "0.00002", "openInterest": "99"},
    }
    events = a.parse(frame("subscribed", 1, "v4_markets", topic=None, contents={"markets": markets}), RECV)
    assert events == [
        Funding("dydx", BTC, 0.0000125, None, None, None, RECV),
        OpenInterest("dydx", BTC, 1234.5, None, RECV),
    ]
    trading = {"trading": {"BTC-USD": {"ticker": "BTC-USD", "openInterest": "1300"}}}
    assert a.parse(frame("channel_data", 2, "v4_markets", topic=None, contents=trading), RECV) == [
        OpenInterest("dydx", BTC, 1300.0, None, RECV)
    ]
    oracle = {"oraclePrices": {"BTC-USD": {"oraclePrice": "65000.1", "effectiveAt": "2024-05-01T12:00:01.234Z"}}}
    assert a.parse(frame("channel_data", 3, "v4_markets", topic=None, contents=oracle), RECV) == []


def test_candles() -> None:
    a = connected_adapter(Channel.CANDLES)
    assert a.parse(frame("subscribed", 1, "v4_candles", topic="BTC-USD/1MIN", contents={"candles": []}), RECV) == []
    bar = {
        "startedAt": "2024-05-01T12:00:00.000Z",
        "ticker": "BTC-USD",
        "resolution": "1MIN",
        "low": "64900",
        "high": "65100",
        "open": "65000",
        "close": "65050",
        "baseTokenVolume": "3.5",
        "usdVolume": "227500",
        "trades": 12,
        "startingOpenInterest": "1000",
        "id": "x",
    }
    [candle] = a.parse(frame("channel_data", 2, "v4_candles", topic="BTC-USD/1MIN", contents=bar), RECV)
    assert candle == Candle(  # interval in the spelling all venues share, not dYdX's "1MIN"
        "dydx", BTC, "1m", 1714564800000000000, 65000.0, 65100.0, 64900.0, 65050.0, 3.5, False, None, RECV
    )
    other = {**bar, "resolution": "5MINS"}
    with pytest.raises(UnknownMessage):
        a.parse(frame("channel_data", 3, "v4_candles", topic="BTC-USD/5MINS", contents=other), RECV)


def test_batched_data_is_one_update_per_item() -> None:
    a = connected_adapter()
    a.parse(book_snapshot(1, [("100", "1")], [("101", "1")]), RECV)
    contents = [{"bids": [["100", "2"]]}, {"asks": [["101", "0"]], "bids": [["99", "1"]]}]
    events = parse_events(a, frame("channel_batch_data", 2, "v4_orderbook", contents=contents), RECV)
    assert [(e.bids, e.asks) for e in events if isinstance(e, BookUpdate)] == [
        (((100.0, 2.0),), ()),
        (((99.0, 1.0),), ((101.0, 0.0),)),
    ]


# --- errors and odd frames -------------------------------------------------------------------------


def test_errors() -> None:
    a = connected_adapter()
    with pytest.raises(SubscriptionRejected, match="Invalid subscription id"):
        a.parse(frame("error", 1, message="Invalid subscription id for channel: (v4_orderbook-NOPE-USD)"), RECV)
    with pytest.raises(SubscriptionRejected):
        a.parse(frame("error", 1, message="Invalid channel: v4_nope"), RECV)
    with pytest.raises(RemoteError) as info:
        a.parse(frame("error", 1, message="Invalid message: could not parse"), RECV)
    assert not isinstance(info.value, SubscriptionRejected | MalformedMessage)


def test_unknown_and_malformed() -> None:
    a = connected_adapter()
    with pytest.raises(UnknownMessage):
        a.parse(frame("channel_data", 1, "v4_block_height", contents={}), RECV)
    with pytest.raises(UnknownMessage):
        a.parse(frame("something_new", 1), RECV)
    bad = [
        "not json",
        "[]",
        frame("channel_data", "x", "v4_orderbook", contents={"bids": []}),
        frame("channel_data", 1, "v4_orderbook"),
        book_snapshot(1, [("abc", "1")], []),
        frame("channel_data", 1, "v4_orderbook", topic="NOPE-USD", contents={"bids": []}),
        json.dumps({"type": ["x"]}),
    ]
    for f in bad:
        with pytest.raises(MalformedMessage) as info:
            a.parse(f, RECV)
        assert not isinstance(info.value, UnknownMessage), f


def test_instruments() -> None:
    a = DydxAdapter(rest_url="http://127.0.0.1:1")
    request = a.instruments_request()
    assert (request.method, request.url) == ("GET", "http://127.0.0.1:1/v4/perpetualMarkets")
    mock = MockDydx([BTC, ETH])
    status, body = mock.http("/v4/perpetualMarkets", {}) or (0, b"")
    assert status == 200
    instruments = a.parse_instruments(body)
    assert [(i.symbol, i.native, i.kind, i.tick_size, i.lot_size) for i in instruments] == [
        (BTC, "BTC-USD", "perp", 1.0, 0.0001),
        (ETH, "ETH-USD", "perp", 1.0, 0.0001),
    ]
    listed = {
        "markets": {
            "BTC-USD": {"status": "ACTIVE", "tickSize": "1", "stepSize": "0.0001"},
            "OLD-USD": {"status": "FINAL_SETTLEMENT", "tickSize": "1", "stepSize": "1"},
            "weird-usd": {"status": "ACTIVE", "tickSize": "1", "stepSize": "1"},
        }
    }
    assert [i.symbol for i in a.parse_instruments(json.dumps(listed).encode())] == [BTC]
    for broken in (b"", b"{}", b'{"markets":{"BTC-USD":{"status":"ACTIVE"}}}'):
        with pytest.raises(MalformedMessage):
            a.parse_instruments(broken)
