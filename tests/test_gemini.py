"""GeminiAdapter (current WebSocket API) and GeminiV2Adapter (archived v2):
hand-written frames in the documented formats (gemini.md), subscriptions,
instruments and the book rules through BookSync."""

from __future__ import annotations

import json

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Integrity,
    MalformedMessage,
    Quote,
    Side,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    funding,
    quotes,
    trades,
)
from wsmux.book import BookSync, Continuity, SnapshotSource, Verdict
from wsmux.errors import RemoteError, UnknownMessage
from wsmux.exchanges import get
from wsmux.exchanges.gemini import GeminiAdapter, GeminiV2Adapter, gemini_symbol, gemini_unified
from wsmux.model import Instrument
from wsmux.testing import parse_events

RECV = 555_000_000
MS = 1_000_000


def frame(**fields: object) -> str:
    return json.dumps(fields)


# --- symbols, registry -------------------------------------------------------------------


def test_registry() -> None:
    assert get("gemini") is GeminiAdapter
    assert get("gemini-v2") is GeminiV2Adapter


@pytest.mark.parametrize(
    ("symbol", "native"),
    [
        ("BTC-USD", "BTCUSD"),
        ("BTC-GUSD", "BTCGUSD"),
        ("GUSD-USD", "GUSDUSD"),
        ("LINK-ETH", "LINKETH"),
        ("1INCH-USD", "1INCHUSD"),
        ("BTC-GUSD-PERP", "BTCGUSDPERP"),
    ],
)
def test_symbols_round_trip(symbol: str, native: str) -> None:
    assert gemini_symbol(symbol) == native
    assert gemini_unified(native) == symbol
    assert gemini_unified(native.lower()) == symbol
    assert GeminiAdapter().to_native(symbol) == native.lower()
    assert GeminiV2Adapter().to_native(symbol) == native


def test_unmappable_symbols() -> None:
    assert gemini_unified("XYZABC") is None
    assert gemini_unified("USD") is None
    with pytest.raises(UnknownSymbol):
        gemini_symbol("BTC-USD-20261225")
    with pytest.raises(UnknownChannel):
        GeminiAdapter().check(funding("gemini", "BTC-USD")[0])
    with pytest.raises(UnknownChannel):
        GeminiV2Adapter().check(quotes("gemini-v2", "BTC-USD")[0])


def test_instruments() -> None:
    body = b'["btcusd","btcgusd","ethbtc","btcgusdperp","zzzqqq"]'
    a = GeminiAdapter(rest_url="http://127.0.0.1:1")
    assert a.instruments_request().url == "http://127.0.0.1:1/v1/symbols"
    assert a.parse_instruments(body) == [
        Instrument("gemini", "BTC-USD", "btcusd", "spot"),
        Instrument("gemini", "BTC-GUSD", "btcgusd", "spot"),
        Instrument("gemini", "ETH-BTC", "ethbtc", "spot"),
        Instrument("gemini", "BTC-GUSD-PERP", "btcgusdperp", "perp"),
    ]
    assert [i.native for i in GeminiV2Adapter().parse_instruments(body)][:2] == ["BTCUSD", "BTCGUSD"]
    for bad in (b"[", b'{"a":1}', b"[1]"):
        with pytest.raises(MalformedMessage):
            a.parse_instruments(bad)


# --- current API: subscribe ------------------------------------------------------------------


def test_connect_url_asks_for_snapshots() -> None:
    assert GeminiAdapter().connect_url([]) == "wss://ws.gemini.com?snapshot=-1"
    assert GeminiAdapter(url="ws://127.0.0.1:5/?x=1").connect_url([]) == "ws://127.0.0.1:5/?x=1&snapshot=-1"


def test_subscribe_messages() -> None:
    a = GeminiAdapter()
    (msg,) = a.subscribe([*book("gemini", "BTC-USD"), *trades("gemini", "BTC-USD"), *quotes("gemini", "ETH-USD")])
    assert json.loads(msg) == {
        "id": "1",
        "method": "subscribe",
        "params": ["btcusd@depth@100ms", "btcusd@trade", "ethusd@bookTicker"],
    }
    (unsub,) = a.unsubscribe(list(trades("gemini", "BTC-USD")))
    assert json.loads(unsub) == {"id": "2", "method": "unsubscribe", "params": ["btcusd@trade"]}


def test_replies_and_refusals() -> None:
    a = GeminiAdapter()
    (msg,) = a.subscribe(list(book("gemini", "BTC-USD")))
    request_id = json.loads(msg)["id"]
    assert a.parse(frame(id=request_id, status=200, result=None), RECV) == []
    assert a.parse(frame(id="ping", status=200, result={}), RECV) == []
    (msg,) = a.subscribe(list(trades("gemini", "BTC-USD")))
    refusal = frame(id=json.loads(msg)["id"], status=400, error={"code": -1013, "msg": "Invalid parameters"})
    with pytest.raises(SubscriptionRejected, match="btcusd@trade"):
        a.parse(refusal, RECV)
    limited = frame(id="9", status=429, error={"code": -1003, "msg": "Rate limit exceeded"})
    with pytest.raises(RemoteError, match="rate limit") as info:
        a.parse(limited, RECV)
    assert not isinstance(info.value, SubscriptionRejected)


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        (frame(e="kline", s="btcusd"), True),
        ("nope", False),
        ("[]", False),
        (frame(hello=1), False),
        (frame(e=5), False),
    ],
)
def test_unknown_and_malformed(text: str, unknown: bool) -> None:
    with pytest.raises(MalformedMessage) as info:
        GeminiAdapter().parse(text, RECV)
    assert isinstance(info.value, UnknownMessage) is unknown


# --- current API: book ------------------------------------------------------------------------

DIFF = {
    "e": "depthUpdate",
    "E": 1751508260659505382,
    "s": "btcusd",
    "U": 12345677,
    "u": 12345678,
    "b": [["45000.50", "1.25000000"], ["45000.25", "0.00000000"]],
    "a": [["45001.00", "0.75000000"]],
}
SNAPSHOT = {"lastUpdateId": 12345676, "bids": [["45000.50", "1.0"]], "asks": [["45001.00", "2.0"], ["45002.00", "1.0"]]}


def test_depth_update() -> None:
    (update,) = parse_events(GeminiAdapter(), json.dumps(DIFF), RECV)
    assert isinstance(update, BookUpdate)
    assert (update.symbol, update.first_seq, update.seq, update.ts) == ("BTC-USD", 12345677, 12345678, DIFF["E"])
    assert update.bids == ((45000.5, 1.25), (45000.25, 0.0)) and update.asks == ((45001.0, 0.75),)


def test_snapshot_without_symbol_goes_to_the_oldest_waiting_book() -> None:
    a = GeminiAdapter()
    a.subscribe([*book("gemini", "BTC-USD", "ETH-USD"), *trades("gemini", "SOL-USD")])
    (first,) = a.parse(json.dumps(SNAPSHOT), RECV)
    (second,) = a.parse(json.dumps(SNAPSHOT), RECV)
    assert isinstance(first, BookSnapshot) and isinstance(second, BookSnapshot)
    assert (first.symbol, second.symbol) == ("BTC-USD", "ETH-USD")
    assert first.seq == 12345676 and first.bids == ((45000.5, 1.0),) and first.asks[0] == (45001.0, 2.0)
    with pytest.raises(MalformedMessage, match="no book waits"):
        a.parse(json.dumps(SNAPSHOT), RECV)
    a.resync_messages(book("gemini", "ETH-USD")[0])  # resubscribing waits again
    (again,) = a.parse(json.dumps(SNAPSHOT), RECV)
    assert isinstance(again, BookSnapshot) and again.symbol == "ETH-USD"


def test_snapshot_with_symbol() -> None:
    a = GeminiAdapter()
    a.subscribe(list(book("gemini", "BTC-USD", "ETH-USD")))
    (snap,) = a.parse(json.dumps({**SNAPSHOT, "s": "ethusd", "E": 17}), RECV)
    assert isinstance(snap, BookSnapshot) and (snap.symbol, snap.ts) == ("ETH-USD", 17)
    (other,) = a.parse(json.dumps(SNAPSHOT), RECV)  # ETH no longer waits
    assert isinstance(other, BookSnapshot) and other.symbol == "BTC-USD"


@pytest.mark.parametrize(
    "bad",
    [
        {**DIFF, "u": "12345678"},
        {**DIFF, "E": 1.5},
        {**DIFF, "b": {"45000": "1"}},
        {**DIFF, "s": "nopeqq"},
        {k: v for k, v in DIFF.items() if k != "U"},
        {**SNAPSHOT, "bids": [[45000.5, 1.0]], "s": "btcusd"},
    ],
)
def test_bad_book_messages(bad: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        parse_events(GeminiAdapter(), json.dumps(bad), RECV)


def test_book_rule_update_ids() -> None:
    a = GeminiAdapter()
    rule = a.book_rule("BTC-USD")
    assert (rule.snapshot, rule.continuity, rule.checksum) == (SnapshotSource.STREAM, Continuity.UPDATE_ID, None)
    assert rule.level() is Integrity.SEQUENCE
    a.subscribe(list(book("gemini", "BTC-USD")))
    sync = BookSync(rule)
    (snap,) = a.parse(json.dumps(SNAPSHOT), RECV)
    assert sync.on_snapshot(snap) is Verdict.SYNCED  # type: ignore[arg-type]
    stale = {**DIFF, "U": 12345670, "u": 12345676}
    assert sync.on_update(a.parse(json.dumps(stale), RECV)[0]) is Verdict.STALE  # type: ignore[arg-type]
    bridging = {**DIFF, "U": 12345675, "u": 12345678}  # U <= lastUpdateId + 1 <= u
    assert sync.on_update(a.parse(json.dumps(bridging), RECV)[0]) is Verdict.APPLIED  # type: ignore[arg-type]
    gap = {**DIFF, "U": 12345680, "u": 12345681}
    assert sync.on_update(a.parse(json.dumps(gap), RECV)[0]) is Verdict.GAP  # type: ignore[arg-type]
    assert (sync.expected, sync.received) == (12345679, 12345680)


# --- current API: quotes, trades -----------------------------------------------------------------


def test_book_ticker() -> None:
    msg = {
        "u": 1751505576085,
        "E": 1751508438600117161,
        "s": "btcusd",
        "b": "45000.50",
        "B": "1.25",
        "a": "45001.00",
        "A": "0.75",
    }
    (quote,) = GeminiAdapter().parse(json.dumps(msg), RECV)
    assert quote == Quote("gemini", "BTC-USD", 45000.5, 1.25, 45001.0, 0.75, 1751508438600117161, RECV, 1751505576085)


@pytest.mark.parametrize(
    ("fields", "side"),
    [({"m": True}, Side.SELL), ({"m": False}, Side.BUY), ({"side": "buy"}, Side.BUY), ({"S": "SELL"}, Side.SELL)],
)
def test_trade_taker_side(fields: dict[str, object], side: Side) -> None:
    msg = {
        "e": "trade",
        "E": 2,
        "s": "ethusd",
        "t": 991,
        "p": "3000.10",
        "q": "0.5",
        "T": 1751508438600117000,
        **fields,
    }
    (trade,) = GeminiAdapter().parse(json.dumps(msg), RECV)
    assert trade == Trade("gemini", "ETH-USD", 3000.1, 0.5, side, "991", 1751508438600117000, RECV)


def test_trade_without_price_text_is_malformed() -> None:
    msg = {"e": "trade", "E": 2, "s": "ethusd", "t": 991, "p": 3000.1, "q": "0.5", "m": True}
    with pytest.raises(MalformedMessage):
        GeminiAdapter().parse(json.dumps(msg), RECV)


# --- archived v2 ---------------------------------------------------------------------------------


def test_v2_subscribe_shares_l2_between_book_and_trades() -> None:
    a = GeminiV2Adapter()
    (msg,) = a.subscribe([*book("gemini-v2", "BTC-USD", "ETH-USD"), *trades("gemini-v2", "BTC-USD")])
    assert json.loads(msg) == {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHUSD"]}]}
    assert a.unsubscribe(list(book("gemini-v2", "BTC-USD"))) == []  # trades still need l2
    resync = [json.loads(m) for m in a.resync_messages(book("gemini-v2", "ETH-USD")[0])]
    assert [m["type"] for m in resync] == ["unsubscribe", "subscribe"]
    assert all(m["subscriptions"] == [{"name": "l2", "symbols": ["ETHUSD"]}] for m in resync)
    (last,) = a.unsubscribe(list(trades("gemini-v2", "BTC-USD")))
    assert json.loads(last)["type"] == "unsubscribe"


V2_FIRST = {
    "type": "l2_updates",
    "symbol": "BTCUSD",
    "changes": [
        ["buy", "30000.00", "1.5"],
        ["sell", "30001.00", "0.5"],
        ["buy", "30000.50", "2"],
        ["sell", "30002", "0"],
    ],
    "trades": [
        {
            "type": "trade",
            "symbol": "BTCUSD",
            "event_id": 1,
            "timestamp": 1,
            "price": "1",
            "quantity": "1",
            "side": "buy",
        }
    ],
    "auction_events": [],
}


def test_v2_first_update_is_the_snapshot_and_its_trades_are_history() -> None:
    (snap,) = parse_events(GeminiV2Adapter(), json.dumps(V2_FIRST), RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.symbol == "BTC-USD" and snap.seq is None
    assert snap.bids == ((30000.5, 2.0), (30000.0, 1.5)) and snap.asks == ((30001.0, 0.5),)


def test_v2_changes() -> None:
    msg = {"type": "l2_updates", "symbol": "ANKRUSD", "changes": [["buy", "0.07929", "14300"], ["sell", "0.08", "0"]]}
    (update,) = parse_events(GeminiV2Adapter(), json.dumps(msg), RECV)
    assert isinstance(update, BookUpdate)
    assert (update.symbol, update.seq, update.bids, update.asks) == (
        "ANKR-USD",
        None,
        ((0.07929, 14300.0),),
        ((0.08, 0.0),),
    )


def test_v2_trade() -> None:
    msg = {
        "type": "trade",
        "symbol": "ANKRUSD",
        "event_id": 45465818387,
        "timestamp": 1624493670759,
        "price": "0.07946",
        "quantity": "1020.482111",
        "side": "buy",
    }
    (trade,) = GeminiV2Adapter().parse(json.dumps(msg), RECV)
    assert trade == Trade(
        "gemini-v2", "ANKR-USD", 0.07946, 1020.482111, Side.BUY, "45465818387", 1624493670759 * MS, RECV
    )
    (with_tid,) = GeminiV2Adapter().parse(json.dumps({**msg, "tid": 77}), RECV)
    assert isinstance(with_tid, Trade) and with_tid.trade_id == "77"


def test_v2_only_the_channels_asked_for() -> None:
    a = GeminiV2Adapter()
    a.subscribe(list(trades("gemini-v2", "BTC-USD")))
    assert a.parse(json.dumps(V2_FIRST), RECV) == []  # book not asked for
    trade = {**V2_FIRST["trades"][0]}  # type: ignore[index]
    assert len(a.parse(json.dumps(trade), RECV)) == 1
    b = GeminiV2Adapter()
    b.subscribe(list(book("gemini-v2", "BTC-USD")))
    assert b.parse(json.dumps(trade), RECV) == []


def test_v2_quiet_errors_unknown() -> None:
    a = GeminiV2Adapter()
    assert a.parse(frame(type="heartbeat", timestamp=1624493666869), RECV) == []
    for error in (frame(result="error", reason="InvalidSymbol", message="x"), frame(type="error", reason="r")):
        with pytest.raises(SubscriptionRejected):
            a.parse(error, RECV)
    with pytest.raises(UnknownMessage):
        a.parse(frame(type="candles_1m_updates", symbol="BTCUSD", changes=[]), RECV)
    for bad in (
        frame(type="l2_updates", symbol="BTCUSD", changes=[["hold", "1", "1"]]),
        frame(type="l2_updates", symbol="BTCUSD", changes=[["buy", 1.0, "1"]]),
        frame(type="trade", symbol="BTCUSD", event_id=1, price="1", quantity="1", side="up"),
        frame(type=None),
    ):
        with pytest.raises(MalformedMessage):
            parse_events(a, bad, RECV)


def test_v2_book_rule_is_unverifiable() -> None:
    rule = GeminiV2Adapter().book_rule("BTC-USD")
    assert (rule.snapshot, rule.continuity, rule.checksum, rule.check_crossed) == (
        SnapshotSource.STREAM,
        Continuity.NONE,
        None,
        True,
    )
    assert rule.level() is Integrity.UNVERIFIABLE
