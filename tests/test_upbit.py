"""UpbitAdapter: hand-written frames in the documented format
(shared/exchanges/upbit.md and its 2021 SIMPLE examples), as text and as
binary frames; the whole-set subscription requests; top-30 books turned into
a snapshot and then differences."""

from __future__ import annotations

import json
import math

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Gap,
    GapReason,
    Integrity,
    MalformedMessage,
    Quote,
    Resynced,
    Side,
    Subscription,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    quotes,
    trades,
)
from wsmux._pipeline import Feed
from wsmux.book import Diff
from wsmux.errors import UnknownMessage, WsmuxError
from wsmux.exchanges import get
from wsmux.exchanges.upbit import BOOK_RULE, UpbitAdapter
from wsmux.model import Instrument
from wsmux.testing import parse_events

RECV = 7
MS = 1_000_000
ORDERBOOK = (
    '{"ty":"orderbook","cd":"KRW-LAMB","tms":1618678262640,"tas":25752275.55420627,"tbs":14407925.20098682,'
    '"obu":[{"ap":127.0,"bp":126.0,"as":280460.37885666,"bs":688682.44561413}],"st":"REALTIME"}'
)
TRADE = (
    '{"ty":"trade","cd":"KRW-LAMB","tms":1618678262712,"td":"2021-04-17","ttm":"16:51:02","ttms":1618678262000,'
    '"tp":127.0,"tv":46.48838371,"ab":"BID","pcp":123.0,"c":"RISE","cp":4.0,"sid":1618678262000003,"st":"REALTIME"}'
)


def adapter_for(*channels: Channel, symbol: str = "LAMB-KRW") -> UpbitAdapter:
    adapter = UpbitAdapter()
    adapter.subscribe([Subscription("upbit", c, symbol) for c in channels])
    return adapter


def orderbook(units: list[tuple[float, float, float, float]], ms: int = 1, code: str = "KRW-LAMB") -> bytes:
    """A SIMPLE orderbook message as a binary frame; units are (ap, as, bp, bs)."""
    obu = [{"ap": ap, "as": a, "bp": bp, "bs": b} for ap, a, bp, b in units]
    return json.dumps({"ty": "orderbook", "cd": code, "tms": ms, "obu": obu, "st": "REALTIME"}).encode()


def test_registry_and_declarations() -> None:
    assert get("upbit") is UpbitAdapter
    assert UpbitAdapter.channels == {Channel.BOOK, Channel.TRADES, Channel.QUOTES}
    assert BOOK_RULE.level() is Integrity.UNVERIFIABLE
    assert UpbitAdapter.heartbeat.ping_message == "PING"
    assert not UpbitAdapter.compressed


def test_symbols() -> None:
    adapter = UpbitAdapter()
    assert adapter.to_native("BTC-KRW") == "KRW-BTC"
    assert adapter.to_native("XRP-BTC") == "BTC-XRP"
    assert adapter.to_native("BTC-USDT") == "USDT-BTC"
    with pytest.raises(UnknownSymbol):
        adapter.to_native("BTC-KRW-PERP")
    with pytest.raises(UnknownChannel):
        adapter.check(Subscription("upbit", Channel.FUNDING, "BTC-KRW"))


def test_every_request_names_the_whole_set() -> None:
    adapter = UpbitAdapter()
    (first,) = adapter.subscribe([*book("upbit", "BTC-KRW"), *trades("upbit", "BTC-KRW")])
    assert json.loads(first) == [
        {"ticket": "wsmux-1"},
        {"type": "orderbook", "codes": ["KRW-BTC"]},
        {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True},
        {"format": "SIMPLE"},
    ]
    (second,) = adapter.subscribe(quotes("upbit", "ETH-KRW"))
    assert json.loads(second)[1:3] == [
        {"type": "orderbook", "codes": ["KRW-BTC", "KRW-ETH"]},
        {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True},
    ]
    (third,) = adapter.unsubscribe(book("upbit", "BTC-KRW"))
    assert json.loads(third)[1] == {"type": "orderbook", "codes": ["KRW-ETH"]}
    assert json.loads(adapter.unsubscribe(trades("upbit", "BTC-KRW"))[0])[1:] == [
        {"type": "orderbook", "codes": ["KRW-ETH"]},
        {"format": "SIMPLE"},
    ]
    assert adapter.unsubscribe(quotes("upbit", "ETH-KRW")) == []  # nothing left: nothing to send


@pytest.mark.parametrize("binary", [False, True])
def test_trade_from_the_sheet(binary: bool) -> None:
    frame = TRADE.encode() if binary else TRADE
    assert adapter_for(Channel.TRADES).parse(frame, RECV) == [
        Trade("upbit", "LAMB-KRW", 127.0, 46.48838371, Side.BUY, "1618678262000003", 1618678262000 * MS, RECV)
    ]
    assert adapter_for(Channel.TRADES).parse(TRADE.replace('"BID"', '"ASK"'), RECV)[0].side is Side.SELL  # type: ignore[attr-defined]


def test_orderbook_from_the_sheet_is_a_snapshot_and_a_quote() -> None:
    adapter = adapter_for(Channel.BOOK, Channel.QUOTES)
    assert adapter.parse(ORDERBOOK.encode(), RECV) == [
        Quote("upbit", "LAMB-KRW", 126.0, 688682.44561413, 127.0, 280460.37885666, 1618678262640 * MS, RECV),
        BookSnapshot(
            "upbit", "LAMB-KRW", ((126.0, 688682.44561413),), ((127.0, 280460.37885666),), 1618678262640 * MS, RECV
        ),
    ]


def test_default_format_keys_are_read_too() -> None:
    default = {
        "type": "orderbook",
        "code": "KRW-BTC",
        "timestamp": 5,
        "orderbook_units": [{"ask_price": 2.0, "bid_price": 1.0, "ask_size": 3.0, "bid_size": 4.0}],
    }
    (quote,) = adapter_for(Channel.QUOTES, symbol="BTC-KRW").parse(json.dumps(default), RECV)
    assert quote == Quote("upbit", "BTC-KRW", 1.0, 4.0, 2.0, 3.0, 5 * MS, RECV)
    trade = {
        "type": "trade",
        "code": "KRW-BTC",
        "timestamp": 6,
        "trade_timestamp": 5,
        "trade_price": 9.0,
        "trade_volume": 1.0,
        "ask_bid": "ASK",
        "sequential_id": 77,
    }
    assert adapter_for(Channel.TRADES, symbol="BTC-KRW").parse(json.dumps(trade), RECV) == [
        Trade("upbit", "BTC-KRW", 9.0, 1.0, Side.SELL, "77", 5 * MS, RECV)
    ]


def test_later_books_become_differences() -> None:
    adapter = adapter_for(Channel.BOOK)
    (first,) = adapter.parse(orderbook([(101.0, 1.0, 100.0, 1.0), (102.0, 2.0, 99.0, 2.0)], 1), RECV)
    assert isinstance(first, BookSnapshot)
    frame = orderbook([(101.0, 1.0, 100.0, 5.0), (103.0, 3.0, 99.0, 2.0)], 2)
    (update,) = parse_events(adapter, frame, RECV)
    assert update == BookUpdate("upbit", "LAMB-KRW", ((100.0, 5.0),), ((103.0, 3.0), (102.0, 0.0)), 2 * MS, RECV)
    (same,) = parse_events(adapter, orderbook([(101.0, 1.0, 100.0, 5.0), (103.0, 3.0, 99.0, 2.0)], 3), RECV)
    assert same.bids == () and same.asks == ()  # type: ignore[attr-defined]
    adapter.reset()  # a new connection: a snapshot again
    assert isinstance(adapter.parse(frame, RECV)[0], BookSnapshot)


def test_one_sided_units_and_an_empty_book() -> None:
    adapter = adapter_for(Channel.BOOK, Channel.QUOTES)
    frame = json.dumps({"ty": "orderbook", "cd": "KRW-LAMB", "tms": 1, "obu": [{"ap": 5.0, "as": 1.0}]})
    quote, snapshot = adapter.parse(frame, RECV)
    assert math.isnan(quote.bid_price) and quote.ask_price == 5.0  # type: ignore[attr-defined]
    assert snapshot.bids == () and snapshot.asks == ((5.0, 1.0),)  # type: ignore[attr-defined]
    (quote, update) = adapter.parse(json.dumps({"ty": "orderbook", "cd": "KRW-LAMB", "tms": 2, "obu": []}), RECV)
    assert isinstance(update, Diff) and list(update.asks) == [(5.0, 0)]
    zero = {"ty": "orderbook", "cd": "KRW-LAMB", "tms": 3, "obu": [{"ap": 5.0, "as": 1.0, "bp": 4.0, "bs": 0.0}]}
    (quote, update) = adapter.parse(json.dumps(zero), RECV)
    assert isinstance(update, Diff) and list(update.bids) == [] and list(update.asks) == [(5.0, 1.0)]


def test_status_and_errors() -> None:
    adapter = adapter_for(Channel.TRADES)
    assert adapter.parse(b'{"status":"UP"}', RECV) == []
    with pytest.raises(SubscriptionRejected, match="WRONG_FORMAT"):
        adapter.parse('{"error":{"name":"WRONG_FORMAT","message":"bad"}}', RECV)
    with pytest.raises(UnknownMessage):
        adapter.parse('{"ty":"ticker","cd":"KRW-LAMB"}', RECV)


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff\xfe",
        "{",
        "[]",
        "{}",
        '{"ty":"orderbook","cd":"KRW-LAMB","tms":"1","obu":[]}',
        '{"ty":"orderbook","cd":"KRW-LAMB","tms":1,"obu":{}}',
        '{"ty":"orderbook","cd":"KRW-LAMB","tms":1,"obu":[{"ap":"x","as":1}]}',
        '{"ty":"orderbook","cd":"LAMB","tms":1,"obu":[]}',
        TRADE.replace('"BID"', '"UP"'),
        TRADE.replace('"sid":1618678262000003', '"sid":"1"'),
        TRADE.replace('"tp":127.0,', ""),
    ],
)
def test_malformed_frames(frame: str | bytes) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_events(adapter_for(Channel.BOOK, Channel.QUOTES, Channel.TRADES), frame, RECV)
    assert not isinstance(info.value, UnknownMessage)


def test_no_foreign_exception_escapes() -> None:
    adapter = adapter_for(Channel.BOOK, Channel.QUOTES, Channel.TRADES)
    for frame in (ORDERBOOK, TRADE):
        for cut in range(0, len(frame), 5):
            for mutated in (frame[:cut], frame[:cut] + "null" + frame[cut + 4 :], frame[:cut] + "[]" + frame[cut:]):
                try:
                    parse_events(adapter, mutated, RECV)
                except WsmuxError:
                    pass


def test_feed_a_crossed_book_breaks_it_and_the_next_message_is_a_snapshot() -> None:
    adapter = UpbitAdapter()
    events: list[object] = []
    feed = Feed(adapter, events.append)
    sub = book("upbit", "LAMB-KRW")[0]
    feed.add_book(sub)
    adapter.subscribe([sub])
    feed.on_frame(orderbook([(101.0, 1.0, 100.0, 1.0)], 1), RECV)
    feed.on_frame(orderbook([(101.0, 1.0, 101.0, 1.0)], 2), RECV)  # bid at the ask
    (gap,) = [e for e in events if isinstance(e, Gap)]
    assert gap.reason is GapReason.CROSSED
    assert all(not getattr(a, "messages", ()) for a in feed.take_actions())  # nothing to send: the next book is whole
    feed.on_frame(orderbook([(102.0, 1.0, 100.0, 1.0)], 3), RECV)
    assert sum(isinstance(e, Resynced) for e in events) == 2
    assert feed.syncs["LAMB-KRW"].book.depth() == (((100.0, 1.0),), ((102.0, 1.0),))


def test_instruments() -> None:
    adapter = UpbitAdapter(rest_url="http://h")
    request = adapter.instruments_request()
    assert request is not None and (request.url, request.params) == (
        "http://h/v1/market/all",
        (("is_details", "true"),),
    )
    body = b'[{"market":"KRW-BTC","korean_name":"x","english_name":"Bitcoin"},{"market":"weird"}]'
    assert adapter.parse_instruments(body) == [Instrument("upbit", "BTC-KRW", "KRW-BTC", "spot")]
    with pytest.raises(MalformedMessage):
        adapter.parse_instruments(b'{"market":"KRW-BTC"}')
