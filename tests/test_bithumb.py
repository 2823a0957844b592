"""BithumbAdapter on hand-written frames in the venue's documented format
(shared/exchanges/bithumb.md, "New API" and "Examples"; Upbit field names)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from feedclient_top import deletes_first

from wsmux import BookSnapshot, BookUpdate, Channel, Integrity, Quote, Resynced, Side, Subscription, Trade, exchanges
from wsmux._pipeline import Feed
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownMessage, UnknownSymbol
from wsmux.exchanges.bithumb import BithumbAdapter
from wsmux.testing import MockBithumb, parse_events

RECV = 1_714_564_800_999_000_000
T_MS = 1714564800123
BTC, ETH = "BTC-KRW", "ETH-KRW"


def sub(channel: Channel, symbol: str = BTC) -> Subscription:
    return Subscription("bithumb", channel, symbol)


def adapter(*channels: Channel) -> BithumbAdapter:
    a = BithumbAdapter()
    a.subscribe([sub(c) for c in channels or (Channel.BOOK,)])
    return a


def orderbook(units: list[tuple[float, float, float, float]], stream_type: str = "REALTIME", ts: int = T_MS) -> bytes:
    rows = [{"ask_price": ap, "bid_price": bp, "ask_size": az, "bid_size": bz} for bp, bz, ap, az in units]
    message = {
        "type": "orderbook",
        "code": "KRW-BTC",
        "timestamp": ts,
        "total_ask_size": 4.79,
        "total_bid_size": 2.66,
        "orderbook_units": rows,
        "stream_type": stream_type,
    }
    return json.dumps(message).encode()  # binary frames carrying JSON, as Upbit sends them


def trade(**fields: Any) -> str:
    message = {
        "type": "trade",
        "code": "KRW-BTC",
        "timestamp": 1725927377287,
        "trade_date": "2024-09-10",
        "trade_time": "00:16:17",
        "trade_timestamp": 1725927377174,
        "trade_price": 493100,
        "trade_volume": 0.0012,
        "ask_bid": "BID",
        "prev_closing_price": 490000,
        "change": "RISE",
        "change_price": 3100,
        "sequential_id": 17259273771740001,
        "stream_type": "REALTIME",
    }
    message.update(fields)
    return json.dumps(message)


# --- registry, symbols, subscriptions -----------------------------------------------------


def test_registered_and_rule() -> None:
    assert exchanges.get("bithumb") is BithumbAdapter
    rule = BithumbAdapter().book_rule(BTC)
    assert rule.level() is Integrity.UNVERIFIABLE and rule.check_crossed


def test_symbols_are_quote_base() -> None:
    a = BithumbAdapter()
    assert a.to_native("BTC-KRW") == "KRW-BTC" and a.to_native("ETH-BTC") == "BTC-ETH"
    with pytest.raises(UnknownSymbol):
        a.to_native("BTC-KRW-PERP")


def test_every_request_carries_the_whole_set() -> None:
    """A request replaces the connection's subscriptions (bithumb.md)."""
    a = BithumbAdapter()
    [first] = a.subscribe([sub(Channel.BOOK)])
    assert json.loads(first) == [
        {"ticket": "wsmux-1"},
        {"type": "orderbook", "codes": ["KRW-BTC"]},
        {"format": "DEFAULT"},
    ]
    [second] = a.subscribe([sub(Channel.TRADES), sub(Channel.TRADES, ETH)])
    assert json.loads(second) == [
        {"ticket": "wsmux-2"},
        {"type": "orderbook", "codes": ["KRW-BTC"]},
        {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": True},
        {"format": "DEFAULT"},
    ]
    assert a.subscribe([sub(Channel.QUOTES)]) == []  # the orderbook subscription serves quotes too
    assert a.unsubscribe([sub(Channel.QUOTES)]) == []  # ... and still serves the book
    [third] = a.unsubscribe([sub(Channel.BOOK)])
    assert [f.get("type") for f in json.loads(third)] == [None, "trade", None]
    assert a.unsubscribe([sub(Channel.TRADES), sub(Channel.TRADES, ETH)]) == []  # nothing left to send
    assert BithumbAdapter.heartbeat.ping_message == "PING"


# --- books and quotes -----------------------------------------------------------------------


def test_first_orderbook_is_a_snapshot_then_diffs() -> None:
    a = adapter()
    [snap] = a.parse(orderbook([(94990000, 0.3, 95000000, 0.12), (94980000, 1.0, 95010000, 2.0)], "SNAPSHOT"), RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == ((94990000.0, 0.3), (94980000.0, 1.0)) and snap.asks == ((95000000.0, 0.12), (95010000.0, 2.0))
    assert snap.ts == T_MS * 1_000_000
    [update] = parse_events(a, orderbook([(94990000, 0.5, 95000000, 0.12), (94970000, 1.0, 95020000, 1.0)]), RECV)
    assert isinstance(update, BookUpdate)
    assert deletes_first(update.bids) == ({(94980000.0, 0.0)}, {(94990000.0, 0.5), (94970000.0, 1.0)})
    assert deletes_first(update.asks) == ({(95010000.0, 0.0)}, {(95020000.0, 1.0)})
    assert a.parse(orderbook([(94990000, 0.5, 95000000, 0.12), (94970000, 1.0, 95020000, 1.0)]), RECV) == []


def test_quotes_come_from_the_first_row() -> None:
    a = adapter(Channel.QUOTES)
    [quote] = a.parse(orderbook([(94990000, 0.3, 95000000, 0.12)]), RECV)
    assert quote == Quote("bithumb", BTC, 94990000.0, 0.3, 95000000.0, 0.12, T_MS * 1_000_000, RECV)
    [empty_bid] = a.parse(orderbook([(0, 0, 95000000, 0.12)]), RECV)
    assert isinstance(empty_bid, Quote) and math.isnan(empty_bid.bid_price) and empty_bid.ask_size == 0.12
    both = adapter(Channel.QUOTES, Channel.BOOK).parse(orderbook([(94990000, 0.3, 95000000, 0.12)]), RECV)
    assert [type(e) for e in both] == [Quote, BookSnapshot]


def test_a_feed_book_follows_the_snapshots_and_resyncs_whole() -> None:
    a = BithumbAdapter()
    events: list[object] = []
    feed = Feed(a, events.append)
    feed.add_book(sub(Channel.BOOK))
    a.subscribe([sub(Channel.BOOK)])
    feed.on_frame(orderbook([(100, 1, 101, 1), (99, 1, 102, 1)], "SNAPSHOT"), RECV)
    feed.on_frame(orderbook([(100, 2, 101, 1)]), RECV)
    book = feed.book(BTC)
    assert book is not None and book.valid and book.depth() == (((100.0, 2.0),), ((101.0, 1.0),))
    feed.on_frame(orderbook([(101, 1, 101, 1)]), RECV)  # crossed: broken, resynced by the next message
    assert not book.valid
    [resync] = feed.take_actions()
    assert [f.get("type") for f in json.loads(resync.messages[0])] == [None, "orderbook", None]  # type: ignore[attr-defined]
    feed.on_frame(orderbook([(100, 3, 101, 1)], "SNAPSHOT"), RECV)
    assert book.valid and book.depth() == (((100.0, 3.0),), ((101.0, 1.0),))
    assert sum(isinstance(e, Resynced) for e in events) == 2


def test_a_depth_is_cut_from_each_message_so_lower_levels_move_up() -> None:
    a = BithumbAdapter()
    feed = Feed(a, lambda event: None)
    feed.add_book(Subscription("bithumb", Channel.BOOK, BTC, 1))
    a.subscribe([Subscription("bithumb", Channel.BOOK, BTC, 1)])
    feed.on_frame(orderbook([(100, 1, 101, 1), (99, 1, 102, 1)], "SNAPSHOT"), RECV)
    book = feed.book(BTC)
    assert book is not None and book.depth() == (((100.0, 1.0),), ((101.0, 1.0),))
    feed.on_frame(orderbook([(99, 1, 101, 1), (98, 1, 102, 1)]), RECV)  # the best bid is taken
    assert book.valid and book.depth() == (((99.0, 1.0),), ((101.0, 1.0),))


# --- trades -------------------------------------------------------------------------------


def test_trades() -> None:
    a = adapter(Channel.TRADES)
    [buy] = a.parse(trade(), RECV)
    assert buy == Trade(
        "bithumb", BTC, 493100.0, 0.0012, Side.BUY, "17259273771740001", 1725927377174 * 1_000_000, RECV
    )
    [sell] = a.parse(trade(ask_bid="ASK", sequential_id="17259273771740002"), RECV)
    assert isinstance(sell, Trade) and sell.side is Side.SELL and sell.trade_id == "17259273771740002"
    assert a.parse(trade(stream_type="SNAPSHOT"), RECV) == []
    assert a.history_dropped == 1


# --- control messages and errors ---------------------------------------------------------------


def test_status_error_unknown_and_malformed() -> None:
    a = adapter(Channel.TRADES)
    assert a.parse('{"status":"UP"}', RECV) == []
    with pytest.raises(SubscriptionRejected, match="INVALID_PARAM"):
        a.parse('{"error":{"name":"INVALID_PARAM","message":"codes is wrong"}}', RECV)
    with pytest.raises(UnknownMessage):
        a.parse(
            json.dumps({"type": "ticker", "code": "KRW-BTC", "trade_price": 493100, "stream_type": "SNAPSHOT"}), RECV
        )
    bad = [
        "not json",
        "[1]",
        '{"status":"DOWN"}',
        trade(ask_bid="X"),
        trade(sequential_id=1.5),
        trade(trade_timestamp="1725927377174"),
        trade(code="KRW-NOPE"),
        json.dumps({"type": "orderbook", "code": "KRW-BTC", "timestamp": T_MS}),
    ]
    for frame in bad:
        with pytest.raises(MalformedMessage) as info:
            a.parse(frame, RECV)
        assert not isinstance(info.value, UnknownMessage), frame


def test_instruments() -> None:
    a = BithumbAdapter(rest_url="http://127.0.0.1:1")
    assert a.instruments_request().url == "http://127.0.0.1:1/v1/market/all"
    body = json.dumps(
        [
            {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"},
            {"market": "BTC-ETH", "korean_name": "이더리움", "english_name": "Ethereum"},
            {"market": "KRW-weird", "korean_name": "", "english_name": ""},
        ]
    ).encode()
    assert [(i.symbol, i.native, i.kind) for i in a.parse_instruments(body)] == [
        ("BTC-KRW", "KRW-BTC", "spot"),
        ("ETH-BTC", "BTC-ETH", "spot"),
    ]
    status, answer = MockBithumb([BTC, ETH]).http("/v1/market/all", {}) or (0, b"")
    assert status == 200 and [i.symbol for i in a.parse_instruments(answer)] == [BTC, ETH]
    for broken in (b"", b"{}", b'[{"code":"KRW-BTC"}]'):
        with pytest.raises(MalformedMessage):
            a.parse_instruments(broken)
