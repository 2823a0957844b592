"""CryptocomAdapter on hand-written frames in the venue's documented format
(``shared/exchanges/cryptocom.md``): every message type, acks, errors,
heartbeats and the book rule."""

from __future__ import annotations

import json

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
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux import book as book_subs
from wsmux._pipeline import Feed, Send
from wsmux.adapter import Reply
from wsmux.book import Continuity, SnapshotSource
from wsmux.errors import MalformedMessage, RemoteError, SubscriptionRejected, UnknownMessage, UnknownSymbol
from wsmux.exchanges import get
from wsmux.exchanges.cryptocom import CryptocomAdapter, cryptocom_symbol, cryptocom_unified
from wsmux.subscriptions import Subscription
from wsmux.testing import parse_events

NS = 1_700_000_000_000_000_000


class FixedClock:
    def time_ns(self) -> int:
        return 1_704_484_068_000_123_456

    def monotonic(self) -> float:
        return 0.0


def data(channel: str, subscription: str, items: list[dict[str, object]], inst: str = "BTC_USDT") -> str:
    result = {"instrument_name": inst, "subscription": subscription, "channel": channel, "data": items}
    return json.dumps({"id": -1, "method": "subscribe", "code": 0, "result": result})


def snapshot(u: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    return data("book", "book.BTC_USDT.50", [{"bids": bids, "asks": asks, "t": 1704484068000, "tt": 1, "u": u}])


def update(u: int, pu: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    entry = {"update": {"asks": asks, "bids": bids}, "t": 1704484068898, "tt": 1, "u": u, "pu": pu, "cs": -781431132}
    return data("book.update", "book.BTC_USDT.50", [entry])


def test_registered_and_symbols() -> None:
    assert get("cryptocom") is CryptocomAdapter
    assert cryptocom_symbol("BTC-USDT") == "BTC_USDT"
    assert cryptocom_symbol("BTC-USD-PERP") == "BTCUSD-PERP"
    assert cryptocom_symbol("BTC-USD-20250328") == "BTCUSD-250328"
    cases = [
        ("BTC_USDT", "BTC-USDT"),
        ("BTCUSD-PERP", "BTC-USD-PERP"),
        ("ETHUSDT-PERP", "ETH-USDT-PERP"),
        ("BTCUSD-250328", "BTC-USD-20250328"),
        ("BTCEUR-PERP", None),
        ("BTCUSD-X", None),
    ]
    for native, unified in cases:
        assert cryptocom_unified(native) == unified
    with pytest.raises(UnknownSymbol):
        CryptocomAdapter().to_native("BTC-USDT", Channel.FUNDING)


def test_subscribe_message() -> None:
    adapter = CryptocomAdapter(clock=FixedClock())
    subs = [
        *book_subs("cryptocom", "BTC-USDT"),
        *book_subs("cryptocom", "ETH-USDT", depth=5),
        Subscription("cryptocom", Channel.TRADES, "BTC-USDT"),
        Subscription("cryptocom", Channel.QUOTES, "BTC-USDT"),
        Subscription("cryptocom", Channel.CANDLES, "BTC-USDT"),
        Subscription("cryptocom", Channel.FUNDING, "BTC-USD-PERP"),
    ]
    (message,) = [json.loads(m) for m in adapter.subscribe(subs)]
    assert message["method"] == "subscribe" and message["nonce"] == 1704484068000
    assert message["params"] == {
        "channels": ["book.BTC_USDT.50", "book.ETH_USDT.10", "trade.BTC_USDT", "ticker.BTC_USDT",
                     "candlestick.1m.BTC_USDT", "funding.BTCUSD-PERP"],
        "book_subscription_type": "SNAPSHOT_AND_UPDATE",
        "book_update_frequency": 10,
    }  # fmt: skip
    (unsub,) = [json.loads(m) for m in adapter.unsubscribe(subs[:3])]
    assert unsub["params"] == {"channels": ["book.BTC_USDT.50", "book.ETH_USDT.10", "trade.BTC_USDT"]}
    assert unsub["id"] != message["id"]
    assert adapter.book_rule_for(subs[1]).depth == 10


def test_rule_and_integrity() -> None:
    rule = CryptocomAdapter().book_rule("BTC-USDT")
    assert (rule.snapshot, rule.continuity, rule.depth, rule.checksum) == (
        SnapshotSource.STREAM, Continuity.PREV_ID, 50, None,
    )  # fmt: skip
    assert rule.level() is Integrity.SEQUENCE


def test_heartbeat_is_answered_with_a_reply_the_feed_sends() -> None:
    adapter = CryptocomAdapter()
    (reply,) = adapter.parse('{"id":1587523073345,"method":"public/heartbeat","code":0}', NS)
    assert isinstance(reply, Reply)
    assert json.loads(reply.message) == {"id": 1587523073345, "method": "public/respond-heartbeat"}
    feed = Feed(adapter, lambda event: None)
    feed.on_frame('{"id":7,"method":"public/heartbeat","code":0}', NS)
    (action,) = feed.take_actions()
    assert isinstance(action, Send) and [json.loads(m) for m in action.messages] == [
        {"id": 7, "method": "public/respond-heartbeat"}
    ]


def test_acks_errors_unknown_and_malformed() -> None:
    adapter = CryptocomAdapter()
    assert adapter.parse('{"id":1,"method":"subscribe","code":0}', NS) == []
    assert adapter.parse('{"id":2,"method":"unsubscribe","code":0}', NS) == []
    with pytest.raises(SubscriptionRejected, match="40003"):
        adapter.parse('{"id":1,"method":"subscribe","code":40003,"message":"INVALID_REQUEST"}', NS)
    with pytest.raises(UnknownMessage):
        adapter.parse('{"id":3,"method":"public/auth","code":0}', NS)
    with pytest.raises(UnknownMessage):
        adapter.parse(data("settlement", "settlement.BTCUSD-250328", [{"v": "1"}], "BTCUSD-250328"), NS)
    for frame in ("[]", "{", '{"id":1}', data("trade", "trade.BTC_USDT", [{"d": "1"}])):
        with pytest.raises(MalformedMessage):
            adapter.parse(frame, NS)


def test_book_snapshot_and_update_from_the_sheet() -> None:
    adapter = CryptocomAdapter()
    (snap,) = adapter.parse(snapshot(78795598162080, [["43737.46", "0.1", "1"]], [["43755.46", "0.2", "2"]]), NS)
    assert isinstance(snap, BookSnapshot)
    assert (snap.seq, snap.bids, snap.asks, snap.ts) == (
        78795598162080,
        ((43737.46, 0.1),),
        ((43755.46, 0.2),),
        1704484068000 * 10**6,
    )
    (upd,) = parse_events(adapter, update(78795598253024, 78795598162080, [["43737.46", "0.14096", "1"]], []), NS)
    assert isinstance(upd, BookUpdate)
    assert (upd.seq, upd.prev_seq, upd.bids, upd.asks) == (78795598253024, 78795598162080, ((43737.46, 0.14096),), ())


def test_book_rule_through_the_feed() -> None:
    adapter = CryptocomAdapter()
    events: list[object] = []
    feed = Feed(adapter, events.append)
    feed.add_book(book_subs("cryptocom", "BTC-USDT")[0])
    feed.on_frame(update(9, 8, [["1", "1", "1"]], []), NS)  # before the snapshot: ignored
    feed.on_frame(snapshot(10, [["10", "1", "1"]], [["11", "2", "1"]]), NS)
    book = feed.book("BTC-USDT")
    assert book is not None and book.valid and book.depth() == (((10.0, 1.0),), ((11.0, 2.0),))
    feed.on_frame(update(25, 10, [["10", "0", "0"], ["9", "3", "1"]], []), NS)
    feed.on_frame(update(31, 25, [], []), NS)  # the empty heartbeat delta: chained
    assert book.seq == 31 and book.depth() == (((9.0, 3.0),), ((11.0, 2.0),))
    feed.on_frame(update(25, 10, [["9", "5", "1"]], []), NS)  # replayed: stale
    assert book.depth() == (((9.0, 3.0),), ((11.0, 2.0),)) and not any(isinstance(e, Gap) for e in events)
    feed.on_frame(update(40, 35, [], [["12", "1", "1"]]), NS)  # pu 35 != 31
    (gap,) = [e for e in events if isinstance(e, Gap)]
    assert gap.reason is GapReason.SEQUENCE and not book.valid
    (action,) = feed.take_actions()
    assert isinstance(action, Send)
    assert [json.loads(m)["method"] for m in action.messages] == ["unsubscribe", "subscribe"]
    feed.on_frame(snapshot(50, [["10", "4", "1"]], []), NS)
    assert book.valid and sum(isinstance(e, Resynced) for e in events) == 2


def test_trade_ticker_candle_funding() -> None:
    adapter = CryptocomAdapter()
    trade = {
        "d": "2358394540212355488",
        "s": "SELL",
        "p": "42980.85",
        "q": "0.002325",
        "t": 1648122434404,
        "i": "BTC_USDT",
        "m": "76423",
    }
    (event,) = adapter.parse(data("trade", "trade.BTC_USDT", [trade]), NS)
    assert event == Trade(
        "cryptocom", "BTC-USDT", 42980.85, 0.002325, Side.SELL, "2358394540212355488", 1648122434404 * 10**6, NS
    )
    (event,) = adapter.parse(data("trade", "trade.BTC_USDT", [{**trade, "s": "BUY", "tn": "1648122434404123456"}]), NS)
    assert isinstance(event, Trade) and event.side is Side.BUY and event.ts == 1648122434404123456
    ticker = {"i": "BTC_USDT", "b": "42980.1", "bs": "0.5", "k": "42981.2", "ks": "0.7", "t": 1648122434404}
    (quote,) = adapter.parse(data("ticker", "ticker.BTC_USDT", [ticker]), NS)
    assert quote == Quote("cryptocom", "BTC-USDT", 42980.1, 0.5, 42981.2, 0.7, 1648122434404 * 10**6, NS)
    candle = {"o": "42000", "h": "42100", "l": "41900", "c": "42050", "v": "12.5", "t": 1648122420000}
    (bar,) = adapter.parse(data("candlestick", "candlestick.1m.BTC_USDT", [candle]), NS)
    assert bar == Candle(
        "cryptocom", "BTC-USDT", "1m", 1648122420000 * 10**6, 42000.0, 42100.0, 41900.0, 42050.0, 12.5, False, None, NS
    )
    funding = {"v": "0.00001", "t": 1648122434404}
    (event,) = adapter.parse(data("funding", "funding.BTCUSD-PERP", [funding], "BTCUSD-PERP"), NS)
    assert event == Funding("cryptocom", "BTC-USD-PERP", 0.00001, None, None, 1648122434404 * 10**6, NS)


def test_instruments_and_contract_sizes() -> None:
    body = json.dumps({"id": 1, "method": "public/get-instruments", "code": 0, "result": {"data": [
        {"symbol": "BTC_USDT", "inst_type": "CCY_PAIR", "price_tick_size": "0.01", "qty_tick_size": "0.00001",
         "tradable": True},
        {"symbol": "BTCUSD-PERP", "inst_type": "PERPETUAL_SWAP", "price_tick_size": "0.1", "qty_tick_size": "0.0001",
         "contract_size": "1", "tradable": True},
        {"symbol": "XYZUSD-PERP", "inst_type": "PERPETUAL_SWAP", "price_tick_size": "0.1", "qty_tick_size": "1",
         "contract_size": "0.01", "tradable": True},
        {"symbol": "BTCUSD-250328", "inst_type": "FUTURE", "price_tick_size": "1", "qty_tick_size": "0.0001",
         "contract_size": "1", "tradable": True, "expiry_timestamp_ms": 1743148800000},
        {"symbol": "OLD_USDT", "inst_type": "CCY_PAIR", "price_tick_size": "1", "qty_tick_size": "1",
         "tradable": False},
    ]}}).encode()  # fmt: skip
    adapter = CryptocomAdapter()
    request = adapter.instruments_request()
    assert request is not None and request.url == "https://api.crypto.com/exchange/v1/public/get-instruments"
    instruments = adapter.parse_instruments(body)
    assert [(i.symbol, i.kind, i.contract_size) for i in instruments] == [
        ("BTC-USDT", "spot", None), ("BTC-USD-PERP", "perp", None), ("XYZ-USD-PERP", "perp", 0.01),
        ("BTC-USD-20250328", "future", None),
    ]  # fmt: skip
    adapter.use_instruments(instruments)
    trade = {"d": "1", "s": "BUY", "p": "2", "q": "300", "t": 1648122434404, "i": "XYZUSD-PERP"}
    (event,) = adapter.parse(data("trade", "trade.XYZUSD-PERP", [trade], "XYZUSD-PERP"), NS)
    assert isinstance(event, Trade) and event.size == 3.0
    with pytest.raises(RemoteError):
        adapter.parse_instruments(b'{"id":1,"method":"public/get-instruments","code":10004,"message":"BAD_REQUEST"}')
