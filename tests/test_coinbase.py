"""Coinbase Exchange adapter: exact events for the sheet's frames, malformed
input, subscriptions and signing, trade-id continuity, the ``full`` channel's
sequence folding, and the L2/L3 sync rules through the Feed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from wsmux import exchanges
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.book import BookSync, Verdict
from wsmux.clock import ManualClock
from wsmux.credentials import Credentials
from wsmux.errors import ConfigError, MalformedMessage, RemoteError, SubscriptionRejected, UnknownSymbol
from wsmux.exchanges.coinbase import CoinbaseAdapter, coinbase_auth_fields, iso_to_ns
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Channel,
    Event,
    Gap,
    GapReason,
    L3Snapshot,
    OrderAction,
    OrderUpdate,
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, book, l3, quotes, trades
from wsmux.testing import parse_events

R = 123_456_789  # a receive time
SECRET = "d3NtdXgtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="  # base64 of b"wsmux-test-secret-0123456789abcdef"
CREDS = Credentials("my-key", SECRET, "my-passphrase")


def frame(**fields: Any) -> str:
    return json.dumps(fields)


# --- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2021-04-17T16:43:37.075687Z", 1_618_677_817_075_687_000),
        ("2014-11-07T08:19:28.464459Z", 1_415_348_368_464_459_000),
        ("2024-05-01T12:00:00.123456789Z", 1_714_564_800_123_456_789),
        ("2024-05-01T12:00:01.5Z", 1_714_564_801_500_000_000),
        ("2024-05-01T12:00:01Z", 1_714_564_801_000_000_000),
        ("2024-05-01T14:00:01.5+02:00", 1_714_564_801_500_000_000),
        ("2024-05-01T10:00:01.5-02:00", 1_714_564_801_500_000_000),
        ("2024-05-01 12:00:01.1234567891Z", 1_714_564_801_123_456_789),
        ("2024-02-29T23:59:59.999999Z", 1_709_251_199_999_999_000),
        ("1970-01-01T00:00:00.000001Z", 1_000),
    ],
)
def test_iso_to_ns_is_exact(text: str, ns: int) -> None:
    assert iso_to_ns(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2021-04-17",
        "2021-04-17T16:43:37.075687",  # no zone
        "2021-04-17T16:43:37.Z",
        "2021-04-17T16:43:37,075687Z",
        "2021-04-17T16:43:3x.075687Z",
        "2021-04-17T16:43:37.07a687Z",
        "2021-13-17T16:43:37.075687Z",
        "2021-02-30T16:43:37.075687Z",
        "2021-04-17T24:43:37.075687Z",
        "2021-04-17X16:43:37.075687Z",
        "2021/04/17T16:43:37.075687Z",
    ],
)
def test_iso_to_ns_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        iso_to_ns(text)


# --- credentials and signing -------------------------------------------------------------


def test_credentials_repr_and_str_redact_secrets() -> None:
    for shown in (repr(CREDS), str(CREDS), f"{CREDS}", f"{CREDS!r}", repr([CREDS])):
        assert SECRET not in shown
        assert "my-passphrase" not in shown
        assert "my-key" in shown
    assert repr(CREDS) == "Credentials(key='my-key', secret='***', passphrase='***')"
    assert repr(Credentials("k", "s")) == "Credentials(key='k', secret='***', passphrase=None)"
    assert CREDS.secret == SECRET and CREDS.passphrase == "my-passphrase"


@pytest.mark.parametrize("args", [("", "s"), ("k", ""), ("k", "s", ""), (None, "s"), ("k", 5), ("k", "s", 7)])
def test_credentials_validate(args: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigError):
        Credentials(*args)


def test_signature_matches_a_known_vector() -> None:
    # HMAC-SHA256 keyed with base64-decoded secret over "1700000000GET/users/self/verify",
    # base64 (cross-checked with `openssl dgst -sha256 -hmac ... -binary | base64`).
    fields = coinbase_auth_fields(CREDS, "1700000000")
    assert fields == {
        "signature": "TwaGOb4e+R0yytQF3M5iqG8ZH8hzt/Pd9XS3baxKmcY=",
        "key": "my-key",
        "passphrase": "my-passphrase",
        "timestamp": "1700000000",
    }


def test_signature_needs_base64_secret_and_passphrase() -> None:
    with pytest.raises(ConfigError, match="base64"):
        coinbase_auth_fields(Credentials("k", "not base64!", "p"), "1")
    with pytest.raises(ConfigError, match="passphrase"):
        coinbase_auth_fields(Credentials("k", SECRET), "1")
    with pytest.raises(ConfigError, match="passphrase"):
        CoinbaseAdapter(credentials=Credentials("k", SECRET))


# --- subscriptions ------------------------------------------------------------------------


def test_registry_and_defaults() -> None:
    assert exchanges.get("coinbase") is CoinbaseAdapter
    adapter = CoinbaseAdapter()
    assert adapter.url == "wss://ws-feed.exchange.coinbase.com"
    assert adapter.rest_url == "https://api.exchange.coinbase.com"
    assert adapter.l2_channel == "level2_batch"
    assert CoinbaseAdapter(credentials=CREDS).l2_channel == "level2"
    assert "secret" not in repr(CoinbaseAdapter(credentials=CREDS)).lower() or SECRET not in repr(
        CoinbaseAdapter(credentials=CREDS)
    )


def test_public_subscribe_message() -> None:
    adapter = CoinbaseAdapter()
    subs = [*book("coinbase", "BTC-USD", "ETH-USD"), *trades("coinbase", "BTC-USD"), *quotes("coinbase", "ETH-USD")]
    messages = adapter.subscribe(subs)
    assert [json.loads(m) for m in messages] == [
        {
            "type": "subscribe",
            "channels": [
                {"name": "level2_batch", "product_ids": ["BTC-USD", "ETH-USD"]},
                {"name": "matches", "product_ids": ["BTC-USD"]},
                {"name": "ticker", "product_ids": ["ETH-USD"]},
                {"name": "heartbeat", "product_ids": ["BTC-USD", "ETH-USD"]},
            ],
        }
    ]
    assert [json.loads(m) for m in adapter.unsubscribe(list(trades("coinbase", "BTC-USD")))] == [
        {"type": "unsubscribe", "channels": [{"name": "matches", "product_ids": ["BTC-USD"]}]}
    ]
    assert [json.loads(m) for m in adapter.resync_messages(book("coinbase", "ETH-USD")[0])] == [
        {"type": "unsubscribe", "channels": [{"name": "level2_batch", "product_ids": ["ETH-USD"]}]},
        {"type": "subscribe", "channels": [{"name": "level2_batch", "product_ids": ["ETH-USD"]}]},
    ]
    assert [json.loads(m) for m in CoinbaseAdapter(heartbeats=False).subscribe(list(trades("coinbase", "A-B")))] == [
        {"type": "subscribe", "channels": [{"name": "matches", "product_ids": ["A-B"]}]}
    ]


def test_signed_subscribe_message_uses_the_handed_clock() -> None:
    clock = ManualClock(wall_ns=1_700_000_000_987_654_321)
    adapter = CoinbaseAdapter(credentials=CREDS, clock=clock)
    [message] = adapter.subscribe([*book("coinbase", "BTC-USD"), *l3("coinbase", "BTC-USD")])
    assert json.loads(message) == {
        "type": "subscribe",
        "channels": [
            {"name": "level2", "product_ids": ["BTC-USD"]},
            {"name": "full", "product_ids": ["BTC-USD"]},
            {"name": "heartbeat", "product_ids": ["BTC-USD"]},
        ],
        "signature": "TwaGOb4e+R0yytQF3M5iqG8ZH8hzt/Pd9XS3baxKmcY=",
        "key": "my-key",
        "passphrase": "my-passphrase",
        "timestamp": "1700000000",
    }
    # public channels only: no signature sent even with credentials
    [public] = adapter.subscribe(list(trades("coinbase", "BTC-USD")))
    assert "signature" not in json.loads(public)


def test_topics_are_split_by_the_per_message_limit() -> None:
    adapter = CoinbaseAdapter(heartbeats=False)
    symbols = [f"C{i}-USD" for i in range(150)]
    messages = [json.loads(m) for m in adapter.subscribe(list(trades("coinbase", *symbols)))]
    assert len(messages) == 2
    assert [len(m["channels"][0]["product_ids"]) for m in messages] == [100, 50]


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="needs credentials"):
        CoinbaseAdapter(l2_channel="level2")
    with pytest.raises(ConfigError, match="l2_channel"):
        CoinbaseAdapter(l2_channel="level3")
    with pytest.raises(ConfigError, match="credentials"):
        CoinbaseAdapter(credentials="key:secret")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs credentials"):
        CoinbaseAdapter().subscribe(list(l3("coinbase", "BTC-USD")))
    with pytest.raises(UnknownSymbol):
        CoinbaseAdapter().to_native("BTC-USD-PERP")
    with pytest.raises(UnknownSymbol):
        CoinbaseAdapter().subscribe(list(trades("coinbase", "BTC-USD-20250328")))
    assert CoinbaseAdapter().to_native("BTC-USD") == "BTC-USD"


# --- frames from the sheet ----------------------------------------------------------------


def test_snapshot_and_l2update() -> None:
    adapter = CoinbaseAdapter()
    snap = frame(
        type="snapshot",
        product_id="BAND-GBP",
        bids=[["14.7693", "27.51"], ["14.7659", "12.48"]],
        asks=[["14.8024", "12.77"], ["14.8069", "12.49"]],
    )
    assert parse_events(adapter, snap, R) == [
        BookSnapshot(
            "coinbase", "BAND-GBP", ((14.7693, 27.51), (14.7659, 12.48)), ((14.8024, 12.77), (14.8069, 12.49)), None, R
        )
    ]
    update = (
        '{"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"],'
        '["buy","0.00001300","0.00000000"]],"time":"2021-04-17T16:43:37.075687Z"}'
    )
    assert parse_events(adapter, update.encode(), R) == [
        BookUpdate("coinbase", "SKL-BTC", ((0.000013, 0.0),), ((0.00001306, 660.5),), 1_618_677_817_075_687_000, R)
    ]


def test_match_is_a_trade_with_the_taker_side() -> None:
    adapter = CoinbaseAdapter()
    adapter.subscribe(list(trades("coinbase", "SKL-BTC")))
    match = (
        '{"type":"match","trade_id":280232,"maker_order_id":"2a0da34e-61f7-4c36-88e5-c9dd15927b16",'
        '"taker_order_id":"3c82abaa-c01e-4608-be59-6a1e69742891","side":"sell","size":"985",'
        '"price":"0.00001305","product_id":"SKL-BTC","sequence":177100030,"time":"2021-04-17T16:43:37.089723Z"}'
    )
    assert adapter.parse(match, R) == [
        Trade("coinbase", "SKL-BTC", 0.00001305, 985.0, Side.BUY, "280232", 1_618_677_817_089_723_000, R, 177100030)
    ]
    buy_maker = json.loads(match) | {"trade_id": 280233, "side": "buy", "sequence": 177100040}
    [trade] = adapter.parse(json.dumps(buy_maker), R)
    assert isinstance(trade, Trade) and trade.side is Side.SELL and trade.seq == 177100040


def test_last_match_is_dropped_but_seeds_trade_id_continuity() -> None:
    adapter = CoinbaseAdapter()
    base = {
        "maker_order_id": "m",
        "taker_order_id": "t",
        "side": "sell",
        "size": "1",
        "price": "2",
        "product_id": "BAND-GBP",
        "time": "2021-04-17T16:43:30.244075Z",
    }
    assert adapter.parse(json.dumps(base | {"type": "last_match", "trade_id": 881613, "sequence": 333938798}), R) == []
    assert adapter.stats.history_dropped == 1
    [trade] = adapter.parse(json.dumps(base | {"type": "match", "trade_id": 881614, "sequence": 333939588}), R)
    assert isinstance(trade, Trade) and trade.trade_id == "881614"
    # a jump: Gap first (the missing range), then the trade
    gap, trade = adapter.parse(json.dumps(base | {"type": "match", "trade_id": 881618, "sequence": 333939600}), R)
    assert gap == Gap(
        "coinbase",
        "BAND-GBP",
        Channel.TRADES,
        GapReason.TRADE_ID,
        881615,
        881618,
        R,
        "trade ids 881615..881617 missing",
    )
    assert isinstance(trade, Trade) and trade.trade_id == "881618"
    # a duplicate (or late) trade id is dropped
    assert adapter.parse(json.dumps(base | {"type": "match", "trade_id": 881616, "sequence": 333939599}), R) == []
    assert adapter.stats.duplicates == 1
    # sequence jumps on the matches channel are normal: no gap
    [trade] = adapter.parse(json.dumps(base | {"type": "match", "trade_id": 881619, "sequence": 999999999}), R)
    assert isinstance(trade, Trade)
    # reset() forgets the continuity (a new connection)
    adapter.reset()
    [trade] = adapter.parse(json.dumps(base | {"type": "match", "trade_id": 5, "sequence": 1}), R)
    assert isinstance(trade, Trade)


def test_ticker_is_a_quote_and_stale_tickers_are_dropped() -> None:
    adapter = CoinbaseAdapter()
    ticker = (
        '{"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775","open_24h":"14.6647",'
        '"volume_24h":"94381.28000000","low_24h":"14.3691","high_24h":"16.55","volume_30d":"2295579.57000000",'
        '"best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":"2021-04-17T16:43:30.244075Z",'
        '"trade_id":881613,"last_size":"0.04"}'
    )
    [quote] = adapter.parse(ticker, R)
    assert isinstance(quote, Quote)
    assert (quote.venue, quote.symbol, quote.bid_price, quote.ask_price) == ("coinbase", "BAND-GBP", 14.755, 14.806)
    assert math.isnan(quote.bid_size) and math.isnan(quote.ask_size)  # the 2021 feed had no sizes
    assert (quote.ts, quote.recv_ns, quote.seq) == (1_618_677_810_244_075_000, R, 333938798)
    current = json.loads(ticker) | {"best_bid_size": "1.5", "best_ask_size": "0.25", "sequence": 333938799}
    [quote] = adapter.parse(json.dumps(current), R)
    assert isinstance(quote, Quote) and (quote.bid_size, quote.ask_size) == (1.5, 0.25)
    assert adapter.parse(ticker, R) == []  # older sequence
    assert adapter.parse(json.dumps(current), R) == []  # same sequence
    assert adapter.stats.stale == 2


def test_acks_and_heartbeats_are_silent() -> None:
    adapter = CoinbaseAdapter()
    assert adapter.parse('{"type":"subscriptions","channels":[{"name":"level2","product_ids":["A-B"]}]}', R) == []
    heartbeat = (
        '{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",'
        '"time":"2014-11-07T08:19:28.464459Z"}'
    )
    assert adapter.parse(heartbeat, R) == []


def test_venue_errors() -> None:
    adapter = CoinbaseAdapter()
    with pytest.raises(SubscriptionRejected, match="BTC-XYZ is not a valid product"):
        adapter.parse('{"type":"error","message":"Failed to subscribe","reason":"BTC-XYZ is not a valid product"}', R)
    with pytest.raises(RemoteError) as info:
        adapter.parse('{"type":"error","message":"Internal error"}', R)
    assert not isinstance(info.value, SubscriptionRejected)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "unknown message type"),
        ('"snapshot"', "unknown message type"),
        ('{"type":"bogus"}', "unknown message type 'bogus'"),
        ('{"no":"type"}', "unknown message type None"),
        ('{"type":5}', "unknown message type 5"),
        ('{"type":"snapshot","product_id":"A-B","bids":[["1"]],"asks":[]}', "bad snapshot"),
        ('{"type":"snapshot","product_id":"A-B","bids":[["x","1"]],"asks":[]}', "bad snapshot"),
        ('{"type":"snapshot","product_id":"A-B","bids":[]}', "bad snapshot"),
        ('{"type":"l2update","product_id":"A-B","changes":[["up","1","2"]],"time":"2021-04-17T16:43:37Z"}', "bad l2"),
        ('{"type":"l2update","product_id":"A-B","changes":[["buy","1","2"]]}', "bad l2update"),
        ('{"type":"l2update","product_id":"A-B","changes":[["buy","1","2"]],"time":"yesterday"}', "bad l2update"),
        ('{"type":"l2update","product_id":5,"changes":[],"time":"2021-04-17T16:43:37Z"}', "bad l2update"),
        ('{"type":"match","product_id":"A-B","trade_id":"1","sequence":1}', "bad match"),
        ('{"type":"ticker","product_id":"A-B","sequence":"1","best_bid":"1","best_ask":"2"}', "bad ticker"),
        ('{"type":"ticker","product_id":"A-B","sequence":1,"best_bid":"x","best_ask":"2"}', "bad ticker"),
        ('{"type":"last_match","product_id":"A-B","trade_id":1.5}', "bad last_match"),
    ],
)
def test_malformed_frames_raise_malformed_message(text: str, match: str) -> None:
    with pytest.raises(MalformedMessage, match=match):
        parse_events(CoinbaseAdapter(), text, R)  # a snapshot's rows are checked where they are converted


def test_match_missing_field_changes_no_state() -> None:
    adapter = CoinbaseAdapter()
    good = {
        "type": "match",
        "trade_id": 10,
        "maker_order_id": "m",
        "taker_order_id": "t",
        "side": "sell",
        "size": "1",
        "price": "2",
        "product_id": "A-B",
        "sequence": 100,
        "time": "2021-04-17T16:43:37Z",
    }
    adapter.parse(json.dumps(good), R)
    bad = good | {"trade_id": 11, "side": "sideways"}
    with pytest.raises(MalformedMessage):
        adapter.parse(json.dumps(bad), R)
    # the malformed trade counts as lost: the next one reveals the gap
    gap, _trade = adapter.parse(json.dumps(good | {"trade_id": 12}), R)
    assert isinstance(gap, Gap) and (gap.expected, gap.received) == (11, 12)


# --- L2 sync rule --------------------------------------------------------------------------


def test_l2_rule_stream_snapshot_no_sequence_crossed_check() -> None:
    adapter = CoinbaseAdapter()
    sync = BookSync(adapter.book_rule("BTC-USD"))
    early = BookUpdate("coinbase", "BTC-USD", ((99.0, 1.0),), (), None, R)
    assert sync.on_update(early) is Verdict.IGNORED
    snap = BookSnapshot("coinbase", "BTC-USD", ((100.0, 1.0),), ((101.0, 2.0),), None, R)
    assert sync.on_snapshot(snap) is Verdict.SYNCED
    assert sync.on_update(BookUpdate("coinbase", "BTC-USD", ((100.5, 3.0),), (), None, R)) is Verdict.APPLIED
    assert sync.book.depth() == (((100.5, 3.0), (100.0, 1.0)), ((101.0, 2.0),))
    crossed = BookUpdate("coinbase", "BTC-USD", ((101.0, 1.0),), (), None, R)
    assert sync.on_update(crossed) is Verdict.CROSSED
    assert not sync.valid and len(sync.book) == 0


def test_l2_feed_resync_resubscribes_only_the_l2_channel() -> None:
    adapter = CoinbaseAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    sub = book("coinbase", "BTC-USD")[0]
    feed.add_book(sub)
    adapter.subscribe([sub, *trades("coinbase", "BTC-USD")])
    feed.on_frame(frame(type="snapshot", product_id="BTC-USD", bids=[["100", "1"]], asks=[["101", "1"]]), R)
    assert isinstance(events[-1], Resynced)
    feed.on_frame(
        frame(type="l2update", product_id="BTC-USD", changes=[["sell", "99", "1"]], time="2021-04-17T16:43:37Z"), R
    )
    gap = events[-1]
    assert isinstance(gap, Gap) and gap.reason is GapReason.CROSSED and gap.channel is Channel.BOOK
    [action] = feed.take_actions()
    assert isinstance(action, Send)
    assert [json.loads(m) for m in action.messages] == [
        {"type": "unsubscribe", "channels": [{"name": "level2_batch", "product_ids": ["BTC-USD"]}]},
        {"type": "subscribe", "channels": [{"name": "level2_batch", "product_ids": ["BTC-USD"]}]},
    ]


# --- full channel (L3) ----------------------------------------------------------------------

T = "2021-04-17T16:43:37.000001Z"
TNS = 1_618_677_817_000_001_000


def full(kind: str, seq: int, **fields: Any) -> str:
    return json.dumps({"type": kind, "product_id": "BTC-USD", "sequence": seq, "time": T, **fields})


def l3_adapter() -> CoinbaseAdapter:
    adapter = CoinbaseAdapter(credentials=CREDS)
    adapter.subscribe(list(l3("coinbase", "BTC-USD")))
    return adapter


def test_full_channel_messages_become_order_updates_with_folded_sequences() -> None:
    adapter = l3_adapter()
    assert adapter.parse(full("received", 10, order_id="o1", side="buy", price="100", size="1"), R) == []
    assert adapter.parse(full("open", 11, order_id="o1", side="buy", price="100.00", remaining_size="1.5"), R) == [
        OrderUpdate("coinbase", "BTC-USD", OrderAction.ADD, "o1", BookSide.BID, 100.0, 1.5, TNS, R, 11, 10)
    ]
    match = full("match", 12, trade_id=7, maker_order_id="o1", taker_order_id="t1", side="buy", size="0.5", price="100")
    # no trades subscription: the match only fills the maker order
    assert adapter.parse(match, R) == [
        OrderUpdate("coinbase", "BTC-USD", OrderAction.FILL, "o1", BookSide.BID, 100.0, 0.5, TNS, R, 12, 12)
    ]
    assert adapter.parse(full("activate", 13, order_id="s1"), R) == []
    change = full("change", 14, order_id="o1", side="buy", price="100", old_size="1", new_size="0.75")
    assert adapter.parse(change, R) == [
        OrderUpdate("coinbase", "BTC-USD", OrderAction.CHANGE, "o1", BookSide.BID, 100.0, 0.75, TNS, R, 14, 13)
    ]
    funds = full("change", 15, order_id="m1", side="buy", old_funds="10", new_funds="5")
    assert adapter.parse(funds, R) == []
    modify = full("change", 16, order_id="o1", side="buy", price="100", new_price="99", new_size="0.5")
    assert adapter.parse(modify, R) == [
        OrderUpdate("coinbase", "BTC-USD", OrderAction.CHANGE, "o1", BookSide.BID, 99.0, 0.5, TNS, R, 16, 15)
    ]
    done = full("done", 17, order_id="m1", side="sell", reason="filled")  # a market order: no price
    [remove] = adapter.parse(done, R)
    assert isinstance(remove, OrderUpdate) and remove.action is OrderAction.REMOVE
    assert (remove.order_id, remove.side, remove.size, remove.seq, remove.first_seq) == (
        "m1",
        BookSide.ASK,
        0.0,
        17,
        17,
    )
    assert math.isnan(remove.price)
    # duplicate / late messages are dropped
    assert adapter.parse(full("open", 17, order_id="o9", side="buy", price="1", remaining_size="1"), R) == []
    assert adapter.parse(full("received", 12, order_id="o9", side="buy", price="1", size="1"), R) == []
    assert adapter.stats.duplicates == 2
    # a jump restarts the range: 18 and 19 were lost, the update covers only [20, 21]
    assert adapter.parse(full("received", 20, order_id="o2", side="sell", price="101", size="1"), R) == []
    [add] = adapter.parse(full("open", 21, order_id="o2", side="sell", price="101", remaining_size="1"), R)
    assert isinstance(add, OrderUpdate) and (add.first_seq, add.seq) == (20, 21)


def test_full_match_with_trades_subscription_gives_fill_and_trade() -> None:
    adapter = l3_adapter()
    adapter.subscribe(list(trades("coinbase", "BTC-USD")))
    match = full(
        "match", 12, trade_id=7, maker_order_id="o1", taker_order_id="t1", side="sell", size="0.5", price="100"
    )
    fill, trade = adapter.parse(match, R)
    assert isinstance(fill, OrderUpdate) and fill.side is BookSide.ASK and fill.action is OrderAction.FILL
    assert trade == Trade("coinbase", "BTC-USD", 100.0, 0.5, Side.BUY, "7", TNS, R, 12)
    # the same match delivered again (on the matches channel) is dropped whole
    assert adapter.parse(match, R) == []


def test_full_messages_for_products_without_l3_are_ignored() -> None:
    adapter = CoinbaseAdapter()
    assert adapter.parse(full("open", 11, order_id="o1", side="buy", price="100", remaining_size="1"), R) == []
    assert adapter.parse(full("received", 12, order_id="o1", side="buy", price="100", size="1"), R) == []


@pytest.mark.parametrize(
    "text",
    [
        full("open", 11, order_id="o1", side="up", price="100", remaining_size="1"),
        full("open", 11, order_id="o1", side="buy", price="100"),
        full("open", 11, order_id=5, side="buy", price="100", remaining_size="1"),
        full("open", "11", order_id="o1", side="buy", price="100", remaining_size="1"),
        full("done", 11, side="buy"),
        full("change", 11, order_id="o1", side="buy", price="x", new_size="1"),
        full("received", "11"),
        json.dumps({"type": "open", "sequence": 11, "order_id": "o1", "side": "buy", "price": "1"}),
    ],
)
def test_malformed_full_messages(text: str) -> None:
    adapter = l3_adapter()
    with pytest.raises(MalformedMessage):
        adapter.parse(text, R)
    # nothing was recorded: the next message after 10 still starts at 11
    adapter.parse(full("received", 10, order_id="x", side="buy", price="1", size="1"), R)


def l3_feed() -> tuple[Feed, list[Event]]:
    adapter = l3_adapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    feed.add_l3(l3("coinbase", "BTC-USD")[0])
    return feed, events


def rest_book(seq: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    return json.dumps({"sequence": seq, "bids": bids, "asks": asks, "time": T}).encode()


def test_l3_snapshot_request_and_parse() -> None:
    adapter = l3_adapter()
    request = adapter.l3_snapshot_request("BTC-USD")
    assert request is not None
    assert (request.url, request.params) == (
        "https://api.exchange.coinbase.com/products/BTC-USD/book",
        (("level", "3"),),
    )
    body = rest_book(100, [["100.00", "1.5", "b1"], ["100.00", "0.5", "b2"]], [["101", "2", "a1"]])
    assert adapter.parse_l3_snapshot("BTC-USD", body, R) == L3Snapshot(
        "coinbase",
        "BTC-USD",
        (("b1", BookSide.BID, 100.0, 1.5), ("b2", BookSide.BID, 100.0, 0.5), ("a1", BookSide.ASK, 101.0, 2.0)),
        TNS,
        R,
        100,
    )
    for bad in (b"{", b'{"sequence":"1","bids":[],"asks":[]}', b'{"sequence":1,"bids":[["1","2"]],"asks":[]}'):
        with pytest.raises(MalformedMessage):
            adapter.parse_l3_snapshot("BTC-USD", bad, R)


def test_l3_feed_buffers_fetches_bridges_and_applies() -> None:
    feed, events = l3_feed()
    # buffered until the REST snapshot; the first one asks for it (once)
    feed.on_frame(full("open", 99, order_id="old", side="buy", price="99", remaining_size="1"), R)
    feed.on_frame(full("received", 100, order_id="x", side="buy", price="1", size="1"), R)
    feed.on_frame(full("received", 101, order_id="b3", side="buy", price="100", size="2"), R)
    feed.on_frame(full("open", 102, order_id="b3", side="buy", price="100", remaining_size="2"), R)
    feed.on_frame(
        full("match", 103, trade_id=1, maker_order_id="b1", taker_order_id="t", side="buy", size="1", price="100"), R
    )
    [action] = feed.take_actions()
    assert isinstance(action, FetchSnapshot) and action.channel is Channel.L3 and action.symbol == "BTC-USD"
    assert events == []
    body = rest_book(100, [["100", "1.5", "b1"], ["100", "0.5", "b2"]], [["101", "2", "a1"]])
    feed.on_snapshot_body("BTC-USD", body, R)  # no channel: routed to the outstanding L3 fetch
    snap, add, fill, resynced = events
    assert isinstance(snap, L3Snapshot) and snap.seq == 100
    # 100 and 101 (received) are folded into the open: it covers [100, 102]
    assert add == OrderUpdate("coinbase", "BTC-USD", OrderAction.ADD, "b3", BookSide.BID, 100.0, 2.0, TNS, R, 102, 100)
    # the fill is delivered as the absolute change it made
    assert fill == OrderUpdate(
        "coinbase", "BTC-USD", OrderAction.CHANGE, "b1", BookSide.BID, 100.0, 0.5, TNS, R, 103, 103
    )
    assert resynced == Resynced("coinbase", "BTC-USD", Channel.L3, 103, R)
    l3book = feed.l3_book("BTC-USD")
    assert l3book is not None and l3book.valid and l3book.seq == 103
    assert l3book.depth() == (((100.0, 3.0),), ((101.0, 2.0),))
    assert [o.order_id for o in l3book.orders_at(100.0, BookSide.BID)] == ["b1", "b2", "b3"]
    # live: a fill that empties an order becomes REMOVE; the done that follows is a no-op
    del events[:]
    feed.on_frame(
        full("match", 104, trade_id=2, maker_order_id="b1", taker_order_id="t", side="buy", size="0.5", price="100"),
        R,
    )
    feed.on_frame(full("done", 105, order_id="b1", side="buy", price="100", reason="filled", remaining_size="0"), R)
    feed.on_frame(full("done", 106, order_id="never-open", side="sell", price="1", reason="canceled"), R)
    feed.on_frame(full("done", 107, order_id="a1", side="sell", price="101", reason="canceled"), R)
    assert [(e.action, e.order_id, e.size) for e in events if isinstance(e, OrderUpdate)] == [
        (OrderAction.REMOVE, "b1", 0.0),
        (OrderAction.REMOVE, "a1", 0.0),
    ]
    assert l3book.depth() == (((100.0, 2.5),), ())
    assert feed.l3_syncs["BTC-USD"].stats.noops == 2
    l3book._check()


def test_l3_feed_gap_invalidates_and_refetches_at_once() -> None:
    feed, events = l3_feed()
    feed.on_frame(full("open", 101, order_id="b3", side="buy", price="100", remaining_size="2"), R)
    feed.take_actions()
    feed.on_snapshot_body("BTC-USD", rest_book(100, [["100", "1", "b1"]], []), R, Channel.L3)
    assert isinstance(events[-1], Resynced)
    del events[:]
    feed.on_frame(full("received", 102, order_id="x", side="buy", price="1", size="1"), R)
    # 103, 104 lost
    feed.on_frame(full("open", 105, order_id="b4", side="buy", price="99", remaining_size="1"), R)
    [gap] = events
    assert gap == Gap("coinbase", "BTC-USD", Channel.L3, GapReason.SEQUENCE, 102, 105, R, "update [105, 105] after 101")
    l3book = feed.l3_book("BTC-USD")
    assert l3book is not None and not l3book.valid and len(l3book) == 0
    [action] = feed.take_actions()  # the update that revealed the gap is kept: fetch now
    assert isinstance(action, FetchSnapshot) and action.channel is Channel.L3
    feed.on_snapshot_body("BTC-USD", rest_book(104, [["100", "1", "b1"]], []), R, Channel.L3)
    assert isinstance(events[-1], Resynced)
    assert l3book.valid and l3book.depth() == (((100.0, 1.0), (99.0, 1.0)), ())


def test_l3_snapshot_older_than_the_buffer_is_refetched() -> None:
    feed, events = l3_feed()
    feed.on_frame(full("received", 200, order_id="x", side="buy", price="1", size="1"), R)
    feed.on_frame(full("open", 201, order_id="b3", side="buy", price="100", remaining_size="2"), R)
    [first] = feed.take_actions()
    assert isinstance(first, FetchSnapshot)
    feed.on_snapshot_body("BTC-USD", rest_book(198, [], []), R, Channel.L3)  # 199 unseen
    assert events == []
    [again] = feed.take_actions()
    assert isinstance(again, FetchSnapshot) and again.channel is Channel.L3
    assert feed.l3_syncs["BTC-USD"].stats.refetches == 1
    feed.on_snapshot_body("BTC-USD", rest_book(199, [], []), R, Channel.L3)
    assert isinstance(events[-1], Resynced)


def test_l3_fill_of_unknown_order_is_bad_data() -> None:
    feed, events = l3_feed()
    feed.on_frame(full("received", 101, order_id="x", side="buy", price="1", size="1"), R)
    feed.take_actions()
    feed.on_snapshot_body("BTC-USD", rest_book(100, [["100", "1", "b1"]], []), R, Channel.L3)
    del events[:]
    feed.on_frame(
        full("match", 102, trade_id=1, maker_order_id="ghost", taker_order_id="t", side="buy", size="1", price="100"),
        R,
    )
    [gap] = events
    assert isinstance(gap, Gap) and gap.reason is GapReason.BAD_DATA and gap.channel is Channel.L3
    assert "ghost" in gap.detail
    feed.on_frame(full("received", 103, order_id="y", side="buy", price="1", size="1"), R)
    feed.on_frame(full("open", 104, order_id="y", side="buy", price="1", remaining_size="1"), R)
    [action] = feed.take_actions()
    assert isinstance(action, FetchSnapshot)


def test_l3_crossed_book_and_snapshot_errors() -> None:
    feed, events = l3_feed()
    feed.on_frame(full("received", 101, order_id="x", side="buy", price="1", size="1"), R)
    assert feed.take_actions() == []  # no book event yet: nothing to anchor
    feed.on_frame(full("done", 102, order_id="x", side="buy", price="1", reason="canceled"), R)
    [action] = feed.take_actions()
    feed.on_snapshot_body("BTC-USD", b"garbage", R, Channel.L3)
    assert events[-1].kind.value == "snapshot"  # type: ignore[attr-defined]
    feed.on_frame(full("done", 103, order_id="y", side="buy", price="1", reason="canceled"), R)
    [action] = feed.take_actions()
    assert isinstance(action, FetchSnapshot)
    feed.on_snapshot_body("BTC-USD", rest_book(101, [["100", "1", "b1"]], [["101", "1", "a1"]]), R, Channel.L3)
    assert isinstance(events[-1], Resynced)
    feed.on_frame(full("open", 104, order_id="b9", side="buy", price="101.5", remaining_size="1"), R)
    gap = events[-1]
    assert isinstance(gap, Gap) and gap.reason is GapReason.CROSSED


def test_l3_disconnect_reports_a_gap_and_resets_the_adapter() -> None:
    feed, events = l3_feed()
    feed.on_frame(full("done", 101, order_id="x", side="buy", price="1", reason="canceled"), R)
    feed.take_actions()
    feed.on_snapshot_body("BTC-USD", rest_book(100, [], []), R, Channel.L3)
    feed.on_disconnect(R)
    gap = events[-1]
    assert gap == Gap("coinbase", "BTC-USD", Channel.L3, GapReason.DISCONNECT, 101, None, R)
    # the adapter forgot the sequence: a new connection may start anywhere
    feed.on_frame(full("open", 5, order_id="b", side="buy", price="1", remaining_size="1"), R)
    [action] = feed.take_actions()
    assert isinstance(action, FetchSnapshot)


def test_subscription_is_the_unified_symbol() -> None:
    adapter = CoinbaseAdapter()
    adapter.subscribe([Subscription("coinbase", Channel.TRADES, "BTC-USD")])
    assert adapter._native == {"BTC-USD": "BTC-USD"}
