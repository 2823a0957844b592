"""HyperliquidAdapter on hand-written frames in the venue's documented format
(shared/exchanges/hyperliquid.md, "Examples")."""

from __future__ import annotations

import json
import math

import pytest
from feedclient_top import deletes_first

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Funding,
    Gap,
    GapReason,
    Integrity,
    OpenInterest,
    Quote,
    Resynced,
    Side,
    Subscription,
    Trade,
    exchanges,
)
from wsmux._pipeline import Feed, Send
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownMessage,
    UnknownSymbol,
)
from wsmux.exchanges.hyperliquid import HyperliquidAdapter
from wsmux.testing import MockHyperliquid, parse_events

RECV = 1_714_564_800_999_000_000
T_MS = 1714564800123
BTC = "BTC-USD-PERP"


def sub(channel: Channel, symbol: str = BTC, depth: int | None = None) -> Subscription:
    return Subscription("hyperliquid", channel, symbol, depth)


def adapter(*channels: Channel) -> HyperliquidAdapter:
    a = HyperliquidAdapter()
    a.subscribe([sub(c) for c in channels or (Channel.BOOK,)])
    return a


def level(px: str, sz: str, n: int = 1) -> dict[str, object]:
    return {"px": px, "sz": sz, "n": n}


def book_frame(bids: list[tuple[str, str]], asks: list[tuple[str, str]], time: int = T_MS, coin: str = "BTC") -> str:
    levels = [[level(p, s) for p, s in bids], [level(p, s) for p, s in asks]]
    return json.dumps({"channel": "l2Book", "data": {"coin": coin, "time": time, "levels": levels}})


# --- registry, symbols, subscriptions ------------------------------------------------------


def test_registered() -> None:
    assert exchanges.get("hyperliquid") is HyperliquidAdapter


def test_symbols() -> None:
    a = HyperliquidAdapter()
    assert a.to_native("BTC-USD-PERP") == "BTC"
    assert a.to_native("1000PEPE-USD-PERP") == "1000PEPE"
    for bad in ("BTC-USD", "BTC-USDT-PERP", "BTC-USD-20261225"):
        with pytest.raises(UnknownSymbol):
            a.to_native(bad)


def test_subscribe_messages_one_per_subscription() -> None:
    a = HyperliquidAdapter()
    messages = a.subscribe(
        [sub(Channel.BOOK), sub(Channel.TRADES), sub(Channel.QUOTES), sub(Channel.CANDLES), sub(Channel.FUNDING)]
    )
    assert [json.loads(m) for m in messages] == [
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}},
        {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}},
        {"method": "subscribe", "subscription": {"type": "bbo", "coin": "BTC"}},
        {"method": "subscribe", "subscription": {"type": "candle", "coin": "BTC", "interval": "1m"}},
        {"method": "subscribe", "subscription": {"type": "activeAssetCtx", "coin": "BTC"}},
    ]
    assert HyperliquidAdapter.limits.topics_per_message == 1


def test_funding_and_open_interest_share_one_asset_ctx_subscription() -> None:
    a = HyperliquidAdapter()
    assert len(a.subscribe([sub(Channel.FUNDING)])) == 1
    assert a.subscribe([sub(Channel.OPEN_INTEREST)]) == []
    assert a.unsubscribe([sub(Channel.FUNDING)]) == []  # open interest still wanted
    assert [json.loads(m) for m in a.unsubscribe([sub(Channel.OPEN_INTEREST)])] == [
        {"method": "unsubscribe", "subscription": {"type": "activeAssetCtx", "coin": "BTC"}}
    ]


def test_book_depth_above_20_is_refused_and_below_is_trimmed() -> None:
    a = HyperliquidAdapter()
    with pytest.raises(ConfigError, match="20"):
        a.check(sub(Channel.BOOK, depth=50))
    assert a.book_rule_for(sub(Channel.BOOK, depth=5)).depth is None  # the adapter cuts each message


def test_a_smaller_depth_is_cut_from_each_message_so_lower_levels_move_up() -> None:
    a = HyperliquidAdapter()
    events: list[object] = []
    feed = Feed(a, events.append)
    feed.add_book(sub(Channel.BOOK, depth=2))
    a.subscribe([sub(Channel.BOOK, depth=2)])
    feed.on_frame(
        book_frame([("100", "1"), ("99", "1"), ("98", "1")], [("101", "1"), ("102", "1"), ("103", "1")]), RECV
    )
    book = feed.book(BTC)
    assert book is not None and book.depth() == (((100.0, 1.0), (99.0, 1.0)), ((101.0, 1.0), (102.0, 1.0)))
    # the best bid is taken: 98, unchanged in the venue's book, is now within the depth
    feed.on_frame(book_frame([("99", "1"), ("98", "1"), ("97", "1")], [("101", "1"), ("102", "1"), ("103", "1")]), RECV)
    assert book.valid and book.depth() == (((99.0, 1.0), (98.0, 1.0)), ((101.0, 1.0), (102.0, 1.0)))


def test_book_rule_is_a_stream_snapshot_rule_and_unverifiable() -> None:
    rule = HyperliquidAdapter().book_rule(BTC)
    assert rule.checksum is None and rule.check_crossed
    assert rule.level() is Integrity.UNVERIFIABLE


def test_heartbeat_is_the_application_ping() -> None:
    hb = HyperliquidAdapter.heartbeat
    assert json.loads(hb.ping_message or "") == {"method": "ping"}
    assert hb.ping_interval < 60  # the server closes a connection silent for 60 s
    assert HyperliquidAdapter().parse('{"channel":"pong"}', RECV) == []


# --- books -----------------------------------------------------------------------------------


def test_first_book_message_is_a_snapshot() -> None:
    a = adapter()
    [snap] = a.parse(book_frame([("63850.0", "1.2034"), ("63849.0", "2")], [("63851.0", "0.91")]), RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.symbol == BTC and snap.venue == "hyperliquid"
    assert snap.bids == ((63850.0, 1.2034), (63849.0, 2.0)) and snap.asks == ((63851.0, 0.91),)
    assert snap.ts == T_MS * 1_000_000 and snap.recv_ns == RECV and snap.seq is None


def test_later_book_messages_are_diffs_against_the_previous() -> None:
    a = adapter()
    a.parse(book_frame([("100.0", "1"), ("99.0", "2")], [("101.0", "3"), ("102.0", "4")]), RECV)
    # 99 left the top, 100 changed, 98 appeared; asks unchanged but for 102 leaving
    [update] = parse_events(a, book_frame([("100.0", "5"), ("98.0", "1")], [("101.0", "3")], T_MS + 1), RECV)
    assert isinstance(update, BookUpdate)
    assert deletes_first(update.bids) == ({(99.0, 0.0)}, {(100.0, 5.0), (98.0, 1.0)})
    assert update.asks == ((102.0, 0.0),)
    assert update.ts == (T_MS + 1) * 1_000_000
    # an identical book: nothing to deliver
    assert a.parse(book_frame([("100.0", "5"), ("98.0", "1")], [("101.0", "3")], T_MS + 2), RECV) == []


def test_feed_book_equals_each_snapshot_even_when_a_price_is_respelled() -> None:
    a = HyperliquidAdapter()
    events: list[object] = []
    feed = Feed(a, events.append)
    feed.add_book(sub(Channel.BOOK))
    for message in a.subscribe([sub(Channel.BOOK)]):
        assert "l2Book" in message
    feed.on_frame(book_frame([("100", "1"), ("99", "2")], [("101", "3")]), RECV)
    feed.on_frame(book_frame([("100.0", "1"), ("99", "2")], [("101", "3"), ("103", "1")]), RECV)
    book = feed.book(BTC)
    assert book is not None and book.valid
    assert book.depth() == (((100.0, 1.0), (99.0, 2.0)), ((101.0, 3.0), (103.0, 1.0)))
    assert sum(isinstance(e, Resynced) for e in events) == 1  # one sync, then diffs


def test_resync_and_reset_deliver_the_next_book_whole() -> None:
    a = adapter()
    frame = book_frame([("100.0", "1")], [("101.0", "1")])
    assert isinstance(a.parse(frame, RECV)[0], BookSnapshot)
    assert a.parse(frame, RECV) == []
    messages = a.resync_messages(sub(Channel.BOOK))
    assert [json.loads(m)["method"] for m in messages] == ["unsubscribe", "subscribe"]
    assert isinstance(a.parse(frame, RECV)[0], BookSnapshot)
    a.reset()
    assert isinstance(a.parse(frame, RECV)[0], BookSnapshot)


def test_bad_book_messages_are_malformed() -> None:
    a = adapter()
    bad = [
        json.dumps(
            {"channel": "l2Book", "data": {"coin": "BTC", "time": T_MS, "levels": [[{"px": None, "sz": "1"}], []]}}
        ),
        json.dumps({"channel": "l2Book", "data": {"coin": "BTC", "time": T_MS, "levels": [[]]}}),
        json.dumps({"channel": "l2Book", "data": {"coin": "BTC", "time": "x", "levels": [[], []]}}),
        json.dumps({"channel": "l2Book", "data": {"coin": "BTC", "levels": [[], []]}}),
        book_frame([("abc", "1")], []),
    ]
    for frame in bad:
        with pytest.raises(MalformedMessage) as info:
            a.parse(frame, RECV)
        assert not isinstance(info.value, UnknownMessage)
    # a coin never subscribed is well formed, just not ours (a spot '@n' unlisted): reported, not "unreadable"
    with pytest.raises(UnknownMessage, match="'ETH'"):
        a.parse(book_frame([("1", "1")], [], coin="ETH"), RECV)
    # a failed first snapshot is not remembered: the next good one is whole
    assert isinstance(a.parse(book_frame([("1", "1")], []), RECV)[0], BookSnapshot)


def test_a_bad_level_in_a_later_message_breaks_the_book_and_the_next_rebuilds_it() -> None:
    a = HyperliquidAdapter()
    events: list[object] = []
    feed = Feed(a, events.append)
    feed.add_book(sub(Channel.BOOK))
    a.subscribe([sub(Channel.BOOK)])
    feed.on_frame(book_frame([("100", "1")], [("101", "3")]), RECV)
    feed.on_frame(book_frame([("100", "1"), ("abc", "2")], [("101", "3")]), RECV)
    [gap] = [e for e in events if isinstance(e, Gap)]
    assert gap.reason is GapReason.BAD_DATA
    [resync] = feed.take_actions()
    assert isinstance(resync, Send) and [json.loads(m)["method"] for m in resync.messages] == [
        "unsubscribe",
        "subscribe",
    ]
    feed.on_frame(book_frame([("100", "1"), ("99", "2")], [("101", "3")]), RECV)
    book = feed.book(BTC)
    assert book is not None and book.valid
    assert book.depth() == (((100.0, 1.0), (99.0, 2.0)), ((101.0, 3.0),))
    assert sum(isinstance(e, Resynced) for e in events) == 2


# --- other channels ---------------------------------------------------------------------------


def test_trades_report_the_aggressor_side_and_tid() -> None:
    a = adapter(Channel.TRADES)
    frame = json.dumps(
        {
            "channel": "trades",
            "data": [
                {
                    "coin": "BTC",
                    "side": "B",
                    "px": "63851.0",
                    "sz": "0.015",
                    "hash": "0x7a1c",
                    "time": T_MS,
                    "tid": 893184201551726,
                    "users": ["0xabc", "0xdef"],
                },
                {
                    "coin": "BTC",
                    "side": "A",
                    "px": "63850.0",
                    "sz": "0.5",
                    "hash": "0x7a1d",
                    "time": T_MS + 5,
                    "tid": 893184201551730,
                    "users": ["0xabc", "0xdef"],
                },
            ],
        }
    )
    buy, sell = a.parse(frame, RECV)
    assert buy == Trade("hyperliquid", BTC, 63851.0, 0.015, Side.BUY, "893184201551726", T_MS * 1_000_000, RECV)
    assert isinstance(sell, Trade) and sell.side is Side.SELL and sell.trade_id == "893184201551730"
    with pytest.raises(MalformedMessage):
        a.parse(frame.replace('"side": "A"', '"side": "X"'), RECV)


def test_bbo_with_an_empty_side() -> None:
    a = adapter(Channel.QUOTES)
    data = {"coin": "BTC", "time": T_MS, "bbo": [level("63850.0", "1.2034", 4), None]}
    [quote] = a.parse(json.dumps({"channel": "bbo", "data": data}), RECV)
    assert isinstance(quote, Quote)
    assert (quote.bid_price, quote.bid_size) == (63850.0, 1.2034)
    assert math.isnan(quote.ask_price) and math.isnan(quote.ask_size)
    assert quote.ts == T_MS * 1_000_000


def test_active_asset_ctx_gives_funding_and_open_interest() -> None:
    ctx = {
        "funding": "0.0000125",
        "openInterest": "6543.21",
        "oraclePx": "63850.0",
        "markPx": "63851.0",
        "midPx": "63850.5",
        "premium": "0.00002",
        "dayNtlVlm": "1.0",
        "prevDayPx": "63000.0",
    }
    frame = json.dumps({"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": ctx}})
    funding, oi = adapter(Channel.FUNDING, Channel.OPEN_INTEREST).parse(frame, RECV)
    assert funding == Funding("hyperliquid", BTC, 0.0000125, None, 63851.0, None, RECV)
    assert oi == OpenInterest("hyperliquid", BTC, 6543.21, None, RECV)
    only_oi = adapter(Channel.OPEN_INTEREST).parse(frame, RECV)
    assert [type(e) for e in only_oi] == [OpenInterest]


def test_candle() -> None:
    data = {
        "t": 1714564800000,
        "T": 1714564859999,
        "s": "BTC",
        "i": "1m",
        "o": "63800.0",
        "c": "63851.0",
        "h": "63900.0",
        "l": "63790.0",
        "v": "12.5",
        "n": 321,
    }
    [candle] = adapter(Channel.CANDLES).parse(json.dumps({"channel": "candle", "data": data}), RECV)
    assert candle == Candle(
        "hyperliquid", BTC, "1m", 1714564800000 * 1_000_000, 63800.0, 63900.0, 63790.0, 63851.0, 12.5, False, None, RECV
    )


# --- control messages and errors --------------------------------------------------------------


def test_acks_and_pongs_carry_no_events() -> None:
    a = adapter()
    ack = {
        "channel": "subscriptionResponse",
        "data": {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}},
    }
    assert a.parse(json.dumps(ack), RECV) == []
    assert a.parse('{"channel":"pong"}', RECV) == []


def test_errors() -> None:
    a = adapter()
    with pytest.raises(SubscriptionRejected, match="Invalid subscription"):
        a.parse(json.dumps({"channel": "error", "data": 'Invalid subscription {"type":"l2Book","coin":"NOPE"}'}), RECV)
    with pytest.raises(SubscriptionRejected, match="Already subscribed"):
        a.parse(json.dumps({"channel": "error", "data": {"error": "Already subscribed"}}), RECV)
    with pytest.raises(RemoteError) as info:
        a.parse(json.dumps({"channel": "error", "data": "Websocket rate limit exceeded"}), RECV)
    assert not isinstance(info.value, SubscriptionRejected | MalformedMessage)


def test_unknown_and_malformed_frames() -> None:
    a = adapter()
    with pytest.raises(UnknownMessage):
        a.parse(json.dumps({"channel": "allMids", "data": {"mids": {"BTC": "63850.5"}}}), RECV)
    for frame in ("not json", "[]", '{"channel": 5}', '{"channel":"l2Book"}', '{"channel":["x"],"data":1}'):
        with pytest.raises(MalformedMessage) as info:
            a.parse(frame, RECV)
        assert not isinstance(info.value, UnknownMessage)


# --- instruments ------------------------------------------------------------------------------


def test_instruments_request_is_a_post_with_a_json_body() -> None:
    request = HyperliquidAdapter(rest_url="http://127.0.0.1:1").instruments_request()
    assert (request.method, request.url) == ("POST", "http://127.0.0.1:1/info")
    assert json.loads(request.body or b"") == {"type": "meta"}


def test_parse_instruments_from_the_documented_shape_and_the_mock() -> None:
    a = HyperliquidAdapter()
    body = json.dumps(
        {
            "universe": [
                {"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
                {"name": "kPEPE", "szDecimals": 0, "maxLeverage": 10},
                {"name": "LUNA", "szDecimals": 1, "maxLeverage": 3, "isDelisted": True},
            ]
        }
    ).encode()
    [btc] = a.parse_instruments(body)
    assert (btc.symbol, btc.native, btc.kind, btc.lot_size, btc.contract_size) == (BTC, "BTC", "perp", 1e-5, None)
    mock = MockHyperliquid([BTC, "ETH-USD-PERP"])
    status, answer = mock.info(b'{"type":"meta"}')
    assert status == 200
    assert [i.symbol for i in a.parse_instruments(answer)] == [BTC, "ETH-USD-PERP"]
    for broken in (b"", b"{}", b'{"universe":[{"name":"BTC"}]}', b'{"universe":[{"name":"BTC","szDecimals":"5"}]}'):
        with pytest.raises(MalformedMessage):
            a.parse_instruments(broken)
