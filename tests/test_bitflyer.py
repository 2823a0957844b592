"""BitflyerAdapter: hand-written frames in the documented format
(shared/exchanges/bitflyer.md, its 2021 examples), the book rule through
BookSync and the Feed (re-anchoring on every snapshot)."""

from __future__ import annotations

import json

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
from wsmux._pipeline import Feed, Send
from wsmux.book import BookSync, Verdict
from wsmux.errors import UnknownMessage, WsmuxError
from wsmux.exchanges import get
from wsmux.exchanges.bitflyer import BOOK_RULE, BitflyerAdapter, iso_ns
from wsmux.model import Instrument
from wsmux.testing import parse_events

RECV = 42
DELTA = (
    '{"jsonrpc":"2.0","method":"channelMessage","params":{"channel":"lightning_board_FX_BTC_JPY","message":'
    '{"mid_price":5860954.0,"bids":[{"price":5854504.0,"size":0.0},{"price":5853547.0,"size":0.0267539}],"asks":[]}}}'
)
TRADE = (
    '{"jsonrpc":"2.0","method":"channelMessage","params":{"channel":"lightning_executions_FX_BTC_JPY","message":'
    '[{"id":2284079807,"side":"BUY","price":5860832.0,"size":0.01,"exec_date":"2021-12-12T23:05:29.9692063Z",'
    '"buy_child_order_acceptance_id":"JRF20211212-230529-223057",'
    '"sell_child_order_acceptance_id":"JRF20211212-230529-081757"}]}}'
)
TICKER = (
    '{"jsonrpc":"2.0","method":"channelMessage","params":{"channel":"lightning_ticker_FX_BTC_JPY","message":'
    '{"product_code":"FX_BTC_JPY","state":"RUNNING","timestamp":"2021-12-12T23:05:30.1371457Z","tick_id":127090247,'
    '"best_bid":5859870.0,"best_ask":5862038.0,"best_bid_size":0.04,"best_ask_size":0.02,"ltp":5860832.0,'
    '"volume":4226.3508901}}}'
)
T_TRADE = 1639350329 * 10**9 + 969206300
T_TICKER = 1639350330 * 10**9 + 137145700


def snapshot_frame(bids: list[tuple[float, float]], asks: list[tuple[float, float]], native: str = "BTC_JPY") -> str:
    message = {
        "mid_price": 1.0,
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
    }
    params = {"channel": f"lightning_board_snapshot_{native}", "message": message}
    return json.dumps({"jsonrpc": "2.0", "method": "channelMessage", "params": params})


def delta_frame(bids: list[tuple[float, float]], asks: list[tuple[float, float]], native: str = "BTC_JPY") -> str:
    return snapshot_frame(bids, asks, native).replace("lightning_board_snapshot_", "lightning_board_")


def test_registry_and_declarations() -> None:
    assert get("bitflyer") is BitflyerAdapter
    assert BitflyerAdapter.channels == {Channel.BOOK, Channel.TRADES, Channel.QUOTES}
    assert BOOK_RULE.level() is Integrity.UNVERIFIABLE and BOOK_RULE.check_crossed
    assert BitflyerAdapter.heartbeat.ping_message is None and BitflyerAdapter.heartbeat.ws_ping_interval == 20.0
    assert BitflyerAdapter.limits.topics_per_message == 1


def test_symbols() -> None:
    adapter = BitflyerAdapter()
    assert adapter.to_native("BTC-JPY") == "BTC_JPY"
    assert adapter.to_native("ETH-BTC") == "ETH_BTC"
    assert adapter.to_native("BTC-JPY-PERP") == "FX_BTC_JPY"
    with pytest.raises(UnknownSymbol):
        adapter.to_native("BTC-JPY-20261225")
    with pytest.raises(UnknownChannel):
        adapter.check(Subscription("bitflyer", Channel.FUNDING, "BTC-JPY-PERP"))


def test_subscribe_one_channel_per_request() -> None:
    adapter = BitflyerAdapter()
    subs = [*book("bitflyer", "BTC-JPY"), *trades("bitflyer", "BTC-JPY-PERP"), *quotes("bitflyer", "ETH-JPY")]
    sent = [json.loads(m) for m in adapter.subscribe(subs)]
    assert sent == [
        {"jsonrpc": "2.0", "id": i, "method": "subscribe", "params": {"channel": c}}
        for i, c in enumerate(
            [
                "lightning_board_snapshot_BTC_JPY",
                "lightning_board_BTC_JPY",
                "lightning_executions_FX_BTC_JPY",
                "lightning_ticker_ETH_JPY",
            ],
            1,
        )
    ]
    (unsub,) = adapter.unsubscribe(quotes("bitflyer", "ETH-JPY"))
    assert json.loads(unsub)["method"] == "unsubscribe"
    (resync,) = adapter.resync_messages(book("bitflyer", "BTC-JPY")[0])
    assert json.loads(resync)["params"] == {"channel": "lightning_board_snapshot_BTC_JPY"}


def test_replies() -> None:
    adapter = BitflyerAdapter()
    adapter.subscribe(trades("bitflyer", "BTC-JPY"))
    assert adapter.parse('{"jsonrpc":"2.0","id":1,"result":true}', RECV) == []
    adapter.subscribe(trades("bitflyer", "BTC-JPY"))
    with pytest.raises(SubscriptionRejected, match="lightning_executions_BTC_JPY"):
        adapter.parse('{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"Invalid Request"}}', RECV)
    with pytest.raises(SubscriptionRejected):
        adapter.parse('{"jsonrpc":"2.0","id":3,"result":false}', RECV)
    with pytest.raises(MalformedMessage):
        adapter.parse('{"jsonrpc":"2.0","id":4}', RECV)


def test_delta_from_the_sheet() -> None:
    (event,) = parse_events(BitflyerAdapter(), DELTA, RECV)
    assert event == BookUpdate("bitflyer", "BTC-JPY-PERP", ((5854504.0, 0.0), (5853547.0, 0.0267539)), (), None, RECV)


def test_snapshot_sorted_best_first_without_empty_levels() -> None:
    frame = snapshot_frame([(99.0, 1.0), (100.0, 2.0), (98.0, 0.0)], [(102.0, 1.0), (101.0, 3.0)])
    assert BitflyerAdapter().parse(frame, RECV) == [
        BookSnapshot("bitflyer", "BTC-JPY", ((100.0, 2.0), (99.0, 1.0)), ((101.0, 3.0), (102.0, 1.0)), None, RECV)
    ]


def test_executions_from_the_sheet() -> None:
    assert BitflyerAdapter().parse(TRADE, RECV) == [
        Trade("bitflyer", "BTC-JPY-PERP", 5860832.0, 0.01, Side.BUY, "2284079807", T_TRADE, RECV)
    ]
    itayose = TRADE.replace('"side":"BUY"', '"side":""')
    assert BitflyerAdapter().parse(itayose, RECV)[0].side is None  # type: ignore[attr-defined]


def test_ticker_from_the_sheet() -> None:
    assert BitflyerAdapter().parse(TICKER, RECV) == [
        Quote("bitflyer", "BTC-JPY-PERP", 5859870.0, 0.04, 5862038.0, 0.02, T_TICKER, RECV, 127090247)
    ]


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2021-12-12T23:05:29.9692063Z", T_TRADE),
        ("2021-12-12T23:05:29.9692063", T_TRADE),
        ("2021-12-12T23:05:29Z", 1639350329 * 10**9),
        ("2021-12-12T23:05:29.123456789Z", 1639350329 * 10**9 + 123456789),
        ("1970-01-01T00:00:00.5Z", 500_000_000),
    ],
)
def test_iso_timestamps_exact(text: str, ns: int) -> None:
    assert iso_ns(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2021-12-12",
        "2021-12-12 23:05:29Z",
        "2021-12-12T23:05:29.Z",
        "2021-12-12T23:05:29.1234567890Z",
        "2021-12-12T23:05:29,5Z",
        "2021-13-12T23:05:29Z",
        "2021-12-12T23:05:29.\u0665Z",
    ],
)
def test_bad_iso_timestamps(text: str) -> None:
    with pytest.raises(ValueError):
        iso_ns(text)


@pytest.mark.parametrize(
    "frame",
    [
        "{",
        "[]",
        '{"jsonrpc":"2.0","method":"channelMessage"}',
        '{"jsonrpc":"2.0","method":"channelMessage","params":{"channel":"lightning_board_BTC_JPY"}}',
        DELTA.replace('"bids":[', '"bids":7,"x":['),
        DELTA.replace('"price":5854504.0', '"prize":5854504.0'),
        DELTA.replace('"price":5854504.0', '"price":"abc"'),
        TRADE.replace('"id":2284079807', '"id":"2284079807"'),
        TRADE.replace('"side":"BUY"', '"side":"UP"'),
        TRADE.replace("2021-12-12T23:05:29.9692063Z", "yesterday"),
        TRADE.replace("[{", "{").replace("}]}}", "}}}"),
        TICKER.replace('"tick_id":127090247', '"tick_id":1.5'),
        TICKER.replace('"best_bid":5859870.0,', ""),
        DELTA.replace("FX_BTC_JPY", "BTCJPY27DEC2030"),
    ],
)
def test_malformed_frames(frame: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_events(BitflyerAdapter(), frame, RECV)
    assert not isinstance(info.value, UnknownMessage)


def test_unknown_messages() -> None:
    with pytest.raises(UnknownMessage):
        BitflyerAdapter().parse(DELTA.replace("lightning_board_", "lightning_orders_"), RECV)
    with pytest.raises(UnknownMessage):
        BitflyerAdapter().parse('{"jsonrpc":"2.0","method":"announcement","params":{}}', RECV)


def test_no_foreign_exception_escapes() -> None:
    adapter = BitflyerAdapter()
    for frame in (DELTA, TRADE, TICKER):
        for cut in range(0, len(frame), 7):
            for mutated in (frame[:cut], frame[:cut] + "null" + frame[cut + 4 :]):
                try:
                    parse_events(adapter, mutated, RECV)
                except WsmuxError:
                    pass


def test_rule_reanchors_on_every_snapshot_and_breaks_on_a_crossed_board() -> None:
    adapter = BitflyerAdapter()
    sync = BookSync(BOOK_RULE)

    def offer(frame: str) -> Verdict:
        (event,) = adapter.parse(frame, RECV)
        if isinstance(event, BookSnapshot):
            return sync.on_snapshot(event)
        return sync.on_update(event)  # type: ignore[arg-type]

    assert offer(delta_frame([(99.0, 1.0)], [])) is Verdict.IGNORED  # before the first snapshot
    assert offer(snapshot_frame([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0)])) is Verdict.SYNCED
    assert offer(delta_frame([(99.0, 0.0), (98.0, 5.0)], [(101.0, 4.0)])) is Verdict.APPLIED
    assert sync.book.depth() == (((100.0, 1.0), (98.0, 5.0)), ((101.0, 4.0),))
    assert offer(snapshot_frame([(97.0, 1.0)], [(103.0, 1.0)])) is Verdict.SYNCED  # replaces everything
    assert sync.book.depth() == (((97.0, 1.0),), ((103.0, 1.0),))
    assert offer(delta_frame([(103.0, 1.0)], [])) is Verdict.CROSSED
    assert not sync.valid
    assert offer(delta_frame([(96.0, 1.0)], [])) is Verdict.IGNORED  # until the next snapshot
    assert offer(snapshot_frame([(97.0, 1.0)], [(103.0, 1.0)])) is Verdict.SYNCED


def test_feed_resubscribes_the_snapshot_channel_after_a_crossed_board() -> None:
    adapter = BitflyerAdapter()
    events: list[object] = []
    feed = Feed(adapter, events.append)
    sub = book("bitflyer", "BTC-JPY")[0]
    feed.add_book(sub)
    adapter.subscribe([sub])
    feed.on_frame(snapshot_frame([(100.0, 1.0)], [(101.0, 1.0)]), RECV)
    feed.on_frame(delta_frame([(101.0, 2.0)], []), RECV)
    gaps = [e for e in events if isinstance(e, Gap)]
    assert len(gaps) == 1 and gaps[0].reason is GapReason.CROSSED
    (action,) = feed.take_actions()
    assert isinstance(action, Send)
    assert [json.loads(m)["params"]["channel"] for m in action.messages] == ["lightning_board_snapshot_BTC_JPY"]
    feed.on_frame(snapshot_frame([(100.0, 1.0)], [(102.0, 1.0)]), RECV)
    assert sum(isinstance(e, Resynced) for e in events) == 2
    assert feed.syncs["BTC-JPY"].valid and feed.syncs["BTC-JPY"].book.integrity is Integrity.UNVERIFIABLE


def test_instruments() -> None:
    adapter = BitflyerAdapter(rest_url="http://h")
    assert adapter.instruments_request().url == "http://h/v1/getmarkets"  # type: ignore[union-attr]
    body = json.dumps(
        [
            {"product_code": "BTC_JPY", "market_type": "Spot"},
            {"product_code": "FX_BTC_JPY", "market_type": "FX"},
            {"product_code": "BTCJPY27DEC2030", "alias": "BTCJPY_MAT3M", "market_type": "Futures"},
        ]
    ).encode()
    assert adapter.parse_instruments(body) == [
        Instrument("bitflyer", "BTC-JPY", "BTC_JPY", "spot"),
        Instrument("bitflyer", "BTC-JPY-PERP", "FX_BTC_JPY", "perp"),
    ]
    with pytest.raises(MalformedMessage):
        adapter.parse_instruments(b'{"product_code":"BTC_JPY"}')
