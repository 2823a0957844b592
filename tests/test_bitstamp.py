"""BitstampAdapter: hand-written frames in the documented format (bitstamp.md),
the REST snapshots, the time-ordering keys and the L2 / L3 rules through
BookSync and L3Sync."""

from __future__ import annotations

import json

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Integrity,
    MalformedMessage,
    RemoteError,
    Side,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    l3,
    quotes,
    trades,
)
from wsmux.book import BookSync, Continuity, SnapshotSource, Verdict
from wsmux.book._l3sync import L3Sync
from wsmux.book.l3 import L3Book
from wsmux.errors import UnknownMessage
from wsmux.exchanges import get
from wsmux.exchanges.bitstamp import BitstampAdapter, bitstamp_symbol
from wsmux.model import BookSide, Instrument, L3Snapshot, OrderAction, OrderUpdate
from wsmux.testing import parse_events

RECV = 42_000_000
US = 1_000


def diff_frame(micros: int, bids: list[list[str]], asks: list[list[str]], pair: str = "btcusd") -> str:
    data = {"timestamp": str(micros // 1_000_000), "microtimestamp": str(micros), "bids": bids, "asks": asks}
    return json.dumps({"data": data, "channel": f"diff_order_book_{pair}", "event": "data"})


def order_frame(event: str, order_id: int, order_type: int, price: str, amount: str, micros: int) -> str:
    data = {
        "id": order_id,
        "id_str": str(order_id),
        "order_type": order_type,
        "datetime": str(micros // 1_000_000),
        "microtimestamp": str(micros),
        "amount": float(amount),
        "amount_str": amount,
        "price": float(price),
        "price_str": price,
    }
    return json.dumps({"data": data, "channel": "live_orders_ethusd", "event": event})


# --- registry, symbols, subscribing ----------------------------------------------------------


def test_registry_and_symbols() -> None:
    assert get("bitstamp") is BitstampAdapter
    assert bitstamp_symbol("BTC-USD") == "btcusd"
    assert bitstamp_symbol("1INCH-EUR") == "1incheur"
    with pytest.raises(UnknownSymbol):
        bitstamp_symbol("BTC-USD-PERP")
    with pytest.raises(UnknownChannel):
        BitstampAdapter().check(quotes("bitstamp", "BTC-USD")[0])


def test_subscribe_one_channel_per_message() -> None:
    a = BitstampAdapter()
    out = [
        json.loads(m)
        for m in a.subscribe([*book("bitstamp", "BTC-USD"), *trades("bitstamp", "BTC-USD"), *l3("bitstamp", "ETH-EUR")])
    ]
    assert out == [
        {"event": "bts:subscribe", "data": {"channel": "diff_order_book_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "live_trades_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "live_orders_etheur"}},
    ]
    (unsub,) = a.unsubscribe(list(trades("bitstamp", "BTC-USD")))
    assert json.loads(unsub) == {"event": "bts:unsubscribe", "data": {"channel": "live_trades_btcusd"}}


def test_requests() -> None:
    a = BitstampAdapter(rest_url="http://127.0.0.1:1")
    assert a.snapshot_request("BTC-USD").url == "http://127.0.0.1:1/api/v2/order_book/btcusd/"
    l3_request = a.l3_snapshot_request("BTC-USD")
    assert (l3_request.url, l3_request.params) == ("http://127.0.0.1:1/api/v2/order_book/btcusd/", (("group", "2"),))
    assert a.instruments_request().url == "http://127.0.0.1:1/api/v2/trading-pairs-info/"


def test_instruments() -> None:
    body = json.dumps(
        [
            {
                "name": "BTC/USD",
                "url_symbol": "btcusd",
                "base_decimals": 8,
                "counter_decimals": 0,
                "trading": "Enabled",
            },
            {
                "name": "ETH/EUR",
                "url_symbol": "etheur",
                "base_decimals": 8,
                "counter_decimals": 2,
                "trading": "Disabled",
            },
        ]
    ).encode()
    assert BitstampAdapter().parse_instruments(body) == [Instrument("bitstamp", "BTC-USD", "btcusd", "spot", 1.0, 1e-8)]
    with pytest.raises(MalformedMessage):
        BitstampAdapter().parse_instruments(b'[{"name": 5}]')


# --- events ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"event":"bts:subscription_succeeded","channel":"diff_order_book_btcusd","data":{}}',
        '{"event":"bts:unsubscription_succeeded","channel":"live_trades_btcusd","data":{}}',
        '{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}',
    ],
)
def test_quiet(text: str) -> None:
    assert BitstampAdapter().parse(text, RECV) == []


def test_errors() -> None:
    with pytest.raises(SubscriptionRejected, match="Bad subscription"):
        BitstampAdapter().parse(
            '{"event":"bts:error","channel":"x","data":{"code":null,"message":"Bad subscription string."}}', RECV
        )
    with pytest.raises(RemoteError, match="reconnect") as info:
        BitstampAdapter().parse('{"event":"bts:request_reconnect","channel":"","data":""}', RECV)
    assert not isinstance(info.value, MalformedMessage)


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ('{"event":"data","channel":"order_book_btcusd","data":{}}', True),
        ('{"event":"funding_rate_saved","channel":"funding_rate_btcusd-perp","data":{}}', True),
        ('{"event":"bogus","channel":"live_trades_btcusd","data":{}}', True),
        ('{"event":"data","channel":"diff_order_book_BTC USD","data":{}}', False),
        ("garbage", False),
        ("[1]", False),
        ('{"channel":"live_trades_btcusd"}', False),
    ],
)
def test_unknown_and_malformed(text: str, unknown: bool) -> None:
    with pytest.raises(MalformedMessage) as info:
        BitstampAdapter().parse(text, RECV)
    assert isinstance(info.value, UnknownMessage) is unknown


def test_trade_sides() -> None:
    data = {
        "id": 216000477,
        "timestamp": "1641343699",
        "amount": 0.0792,
        "amount_str": "0.07920000",
        "price": 3805.44,
        "price_str": "3805.44",
        "type": 0,
        "microtimestamp": "1641343699596000",
        "buy_order_id": 1443875737346049,
        "sell_order_id": 1443875731320832,
    }
    frame = {"data": data, "channel": "live_trades_ethusd", "event": "trade"}
    (trade,) = BitstampAdapter().parse(json.dumps(frame), RECV)
    assert trade == Trade("bitstamp", "ETH-USD", 3805.44, 0.0792, Side.BUY, "216000477", 1641343699596000 * US, RECV)
    (sell,) = BitstampAdapter().parse(json.dumps({**frame, "data": {**data, "type": 1}}), RECV)
    assert isinstance(sell, Trade) and sell.side is Side.SELL
    with pytest.raises(MalformedMessage):
        BitstampAdapter().parse(json.dumps({**frame, "data": {**data, "price_str": 3805.44}}), RECV)


# --- L2 book ----------------------------------------------------------------------------------------


def test_diff_and_ordering_keys() -> None:
    a = BitstampAdapter()
    t = 1641343691244908
    (first,) = parse_events(a, diff_frame(t, [["1.15979", "993.02588113"]], [["1.16601", "0.00000000"]]), RECV)
    assert isinstance(first, BookUpdate)
    assert (first.symbol, first.seq, first.first_seq, first.ts) == ("BTC-USD", t * 1000, t * 1000, t * US)
    assert first.bids == ((1.15979, 993.02588113),) and first.asks == ((1.16601, 0.0),)
    (same,) = a.parse(diff_frame(t, [], []), RECV)  # the same microsecond: the next key
    (later,) = a.parse(diff_frame(t + 5, [], []), RECV)
    assert (same.seq, same.first_seq) == (t * 1000 + 1, t * 1000 + 1)  # type: ignore[union-attr]
    assert (later.seq, later.first_seq) == ((t + 5) * 1000, t * 1000 + 2)  # type: ignore[union-attr]


def test_rest_snapshot() -> None:
    body = (
        b'{"timestamp":"1641343695","microtimestamp":"1641343695572693",'
        b'"bids":[["0.14695","4567.41344936"]],"asks":[["0.14800","300.00000000"]]}'
    )
    snap = BitstampAdapter().parse_snapshot("XRP-EUR", body, RECV)
    assert snap == BookSnapshot(
        "bitstamp",
        "XRP-EUR",
        ((0.14695, 4567.41344936),),
        ((0.148, 300.0),),
        1641343695572693 * US,
        RECV,
        1641343695572693 * 1000 + 999,
    )
    for bad in (
        b"{",
        b"[]",
        b'{"microtimestamp":"x1","bids":[],"asks":[]}',
        b'{"microtimestamp":"1","bids":[[1.0,"2"]],"asks":[]}',
    ):
        with pytest.raises(MalformedMessage):
            BitstampAdapter().parse_snapshot("BTC-USD", bad, RECV)
    with pytest.raises(RemoteError, match="Not found"):
        BitstampAdapter().parse_snapshot("BTC-USD", b'{"status":"error","reason":"Not found","code":"API0001"}', RECV)


def test_book_rule_bridges_by_time() -> None:
    a = BitstampAdapter()
    rule = a.book_rule("BTC-USD")
    assert (rule.snapshot, rule.continuity, rule.checksum) == (SnapshotSource.REST, Continuity.MONOTONIC, None)
    assert rule.level() is Integrity.UNVERIFIABLE
    sync = BookSync(rule)
    t = 1_700_000_000_000_000
    for micros, price in ((t, "100"), (t, "101"), (t + 10, "102"), (t + 20, "103")):
        (diff,) = a.parse(diff_frame(micros, [[price, "1"]], [["200", "1"]]), RECV)
        assert sync.on_update(diff) is Verdict.BUFFERED  # type: ignore[arg-type]
    body = json.dumps({"microtimestamp": str(t + 10), "bids": [["99", "1"]], "asks": [["200", "2"]]}).encode()
    assert sync.on_snapshot(a.parse_snapshot("BTC-USD", body, RECV)) is Verdict.SYNCED
    # the diffs at t and t+10 are in the snapshot: only the one at t+20 was applied
    assert sync.book.depth() == (((103.0, 1.0), (99.0, 1.0)), ((200.0, 1.0),))
    assert sync.stats.stale == 3


def test_snapshot_older_than_the_stream_is_fetched_again() -> None:
    a = BitstampAdapter()
    sync = BookSync(a.book_rule("BTC-USD"))
    t = 1_700_000_000_000_000
    (diff,) = a.parse(diff_frame(t, [["100", "1"]], []), RECV)
    sync.on_update(diff)  # type: ignore[arg-type]
    old = json.dumps({"microtimestamp": str(t - 50), "bids": [], "asks": [["200", "2"]]}).encode()
    assert sync.on_snapshot(a.parse_snapshot("BTC-USD", old, RECV)) is Verdict.REFETCH


# --- L3 ---------------------------------------------------------------------------------------


def test_order_events() -> None:
    a = BitstampAdapter()
    t = 1641343699596000
    (created,) = a.parse(order_frame("order_created", 1443875737346049, 0, "3805.00", "0.50000000", t), RECV)
    assert created == OrderUpdate(
        "bitstamp",
        "ETH-USD",
        OrderAction.ADD,
        "1443875737346049",
        BookSide.BID,
        3805.0,
        0.5,
        t * US,
        RECV,
        t * 1000,
        t * 1000,
    )
    (changed,) = a.parse(order_frame("order_changed", 1443875737346049, 0, "3805.00", "0.20000000", t), RECV)
    assert isinstance(changed, OrderUpdate) and changed.action is OrderAction.CHANGE and changed.size == 0.2
    assert changed.seq == t * 1000 + 1
    (deleted,) = a.parse(order_frame("order_deleted", 7, 1, "3806.00", "0.00000000", t + 1), RECV)
    assert isinstance(deleted, OrderUpdate) and (deleted.action, deleted.side, deleted.size) == (
        OrderAction.REMOVE,
        BookSide.ASK,
        0.0,
    )
    with pytest.raises(UnknownMessage):
        a.parse(order_frame("order_exploded", 7, 1, "1", "1", t), RECV)
    with pytest.raises(MalformedMessage):
        a.parse(order_frame("order_created", 7, 2, "1", "1", t), RECV)  # order_type 2


def test_l3_snapshot_and_rule() -> None:
    a = BitstampAdapter()
    t = 1_700_000_000_000_000
    body = json.dumps(
        {
            "microtimestamp": str(t),
            "bids": [["100.0", "1.5", "11"]],
            "asks": [["101.0", "2.0", "12"], ["102.0", "1.0", "13"]],
        }
    ).encode()
    snap = a.parse_l3_snapshot("ETH-USD", body, RECV)
    assert snap == L3Snapshot(
        "bitstamp",
        "ETH-USD",
        (("11", BookSide.BID, 100.0, 1.5), ("12", BookSide.ASK, 101.0, 2.0), ("13", BookSide.ASK, 102.0, 1.0)),
        t * US,
        RECV,
        t * 1000 + 999,
    )
    with pytest.raises(MalformedMessage):
        a.parse_l3_snapshot("ETH-USD", b'{"microtimestamp":"1","bids":[["1","2"]],"asks":[]}', RECV)
    rule = a.l3_rule("ETH-USD")
    assert (rule.snapshot, rule.continuity) == (SnapshotSource.REST, Continuity.MONOTONIC)
    sync = L3Sync(L3Book("bitstamp", "ETH-USD"), rule)
    before = a.parse(order_frame("order_deleted", 12, 1, "101.0", "0", t), RECV)[0]
    after = a.parse(order_frame("order_changed", 13, 1, "102.0", "0.5", t + 1), RECV)[0]
    again = a.parse(order_frame("order_created", 14, 0, "99.0", "3", t + 1), RECV)[0]  # same microsecond
    for update in (before, after, again):
        assert isinstance(update, OrderUpdate)
        assert sync.on_update(update)[0] is Verdict.BUFFERED
    verdict, replayed = sync.on_snapshot(snap)
    assert verdict is Verdict.SYNCED and [u.order_id for u in replayed] == ["13", "14"]  # "12" predates the snapshot
    assert sync.book.depth() == (((100.0, 1.5), (99.0, 3.0)), ((101.0, 2.0), (102.0, 0.5)))


def test_acks_and_errors_of_a_channel_already_carrying_data() -> None:
    """Control events of a data channel seen before are still control events."""
    a = BitstampAdapter()
    assert len(a.parse(diff_frame(1_700_000_000_000_000, [["1", "1"]], []), RECV)) == 1
    ack = '{"event":"bts:unsubscription_succeeded","channel":"diff_order_book_btcusd","data":{}}'
    assert a.parse(ack, RECV) == []
    with pytest.raises(SubscriptionRejected):
        a.parse('{"event":"bts:error","channel":"diff_order_book_btcusd","data":{"message":"x"}}', RECV)
    with pytest.raises(UnknownMessage):
        a.parse('{"event":"bts:new_thing","channel":"diff_order_book_btcusd","data":{}}', RECV)
