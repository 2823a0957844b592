"""BitfinexAdapter: exact events for hand-written frames (shapes from
``shared/exchanges/bitfinex.md``), malformed input, symbols, and the book rule
through BookSync and the Feed."""

from __future__ import annotations

import ast
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from wsmux import exchanges
from wsmux._pipeline import Feed, Send
from wsmux.book import BookSync, Continuity, SnapshotSource, Verdict
from wsmux.book.l3 import L3Book
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownSymbol,
)
from wsmux.exchanges.bitfinex import (
    CONF_FLAGS,
    BitfinexAdapter,
    book_checksum,
    from_native,
    l3_checksum,
    to_native,
)
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    L3Snapshot,
    OrderAction,
    OrderUpdate,
    Resynced,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, book, candles, l3, trades

R = 1_000  # recv_ns used throughout
BOOK_CHAN = 232957
TRADE_CHAN = 17470
RAW_CHAN = 433290


def signed_crc(text: str) -> int:
    x = zlib.crc32(text.encode())
    return x - 2**32 if x >= 2**31 else x


def subscribed(chan_id: int, channel: str, symbol: str, **extra: Any) -> str:
    return json.dumps({"event": "subscribed", "channel": channel, "chanId": chan_id, "symbol": symbol, **extra})


def adapter_with_channels() -> BitfinexAdapter:
    """An adapter that subscribed P0 BTC-USD, trades BTC-USD and R0 BTC-USD."""
    a = BitfinexAdapter()
    a.subscribe([*book("bitfinex", "BTC-USD"), *trades("bitfinex", "BTC-USD"), *l3("bitfinex", "BTC-USD")])
    assert a.parse('{"event":"info","version":2,"serverId":"x","platform":{"status":1}}', R) == []
    assert a.parse('{"event":"conf","status":"OK","flags":196608}', R) == []
    assert a.parse(subscribed(BOOK_CHAN, "book", "tBTCUSD", prec="P0", freq="F0", len="100"), R) == []
    assert a.parse(subscribed(TRADE_CHAN, "trades", "tBTCUSD", pair="BTCUSD"), R) == []
    assert a.parse(subscribed(RAW_CHAN, "book", "tBTCUSD", prec="R0", len="100"), R) == []
    return a


# --- subscribing ---------------------------------------------------------------------


def test_registry_and_class_facts() -> None:
    assert exchanges.get("bitfinex") is BitfinexAdapter
    assert BitfinexAdapter.default_url == "wss://api-pub.bitfinex.com/ws/2"
    assert BitfinexAdapter.limits.streams_per_connection == 25
    assert BitfinexAdapter.limits.connections_per_window == 20
    assert BitfinexAdapter.limits.connection_window == 60.0
    assert CONF_FLAGS == 196608 == 65536 + 131072


def test_subscribe_sends_conf_first_once_per_connection() -> None:
    a = BitfinexAdapter()
    msgs = a.subscribe([*book("bitfinex", "BTC-USD"), *trades("bitfinex", "ETH-USDT")])
    assert [json.loads(m) for m in msgs] == [
        {"event": "conf", "flags": 196608},
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "100"},
        {"event": "subscribe", "channel": "trades", "symbol": "tETHUST"},
    ]
    # a later batch on the same connection: no second conf
    more = a.subscribe([*l3("bitfinex", "TESTBTC-TESTUSD")])
    assert [json.loads(m) for m in more] == [
        {"event": "subscribe", "channel": "book", "symbol": "tTESTBTC:TESTUSD", "prec": "R0", "len": "100"}
    ]
    a.reset()  # new connection: conf again
    assert json.loads(a.subscribe(trades("bitfinex", "BTC-USD"))[0]) == {"event": "conf", "flags": 196608}


@pytest.mark.parametrize(
    ("depth", "length"), [(None, "100"), (1, "1"), (10, "25"), (25, "25"), (26, "100"), (500, "250")]
)
def test_book_len_from_depth(depth: int | None, length: str) -> None:
    a = BitfinexAdapter()
    msgs = a.subscribe([Subscription("bitfinex", Channel.BOOK, "BTC-USD", depth)])
    assert json.loads(msgs[1])["len"] == length


def test_unsubscribe_names_the_chan_id_once_known() -> None:
    a = adapter_with_channels()
    sub = book("bitfinex", "BTC-USD")
    assert [json.loads(m) for m in a.unsubscribe(sub)] == [{"event": "unsubscribe", "chanId": BOOK_CHAN}]
    assert [json.loads(m) for m in a.unsubscribe(l3("bitfinex", "BTC-USD"))] == [
        {"event": "unsubscribe", "chanId": RAW_CHAN}
    ]
    # resync = unsubscribe + subscribe (no second conf)
    assert [json.loads(m)["event"] for m in a.resync_messages(sub[0])] == ["unsubscribe", "subscribe"]
    assert a.parse(json.dumps({"event": "unsubscribed", "status": "OK", "chanId": BOOK_CHAN}), R) == []
    assert a.unsubscribe(sub) == []
    # data for the old chanId is counted and dropped (sequence still checked)
    assert a.parse(f"[{BOOK_CHAN},[60400,1,0.5],1]", R) == []
    assert a.stats.unknown_channel == 1


def test_unsubscribe_without_chan_id_sends_nothing() -> None:
    assert BitfinexAdapter().unsubscribe(book("bitfinex", "BTC-USD")) == []


# --- symbols ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unified", "native"),
    [
        ("BTC-USD", "tBTCUSD"),
        ("ETH-BTC", "tETHBTC"),
        ("BTC-USDT", "tBTCUST"),
        ("TESTBTC-TESTUSD", "tTESTBTC:TESTUSD"),
        ("DOGE-USD", "tDOGE:USD"),
        ("BTC-USDT-PERP", "tBTCF0:USTF0"),
        ("ETH-USDT-PERP", "tETHF0:USTF0"),
    ],
)
def test_symbols_round_trip(unified: str, native: str) -> None:
    assert to_native(unified) == native
    assert BitfinexAdapter().to_native(unified) == native
    assert from_native(native) == unified


@pytest.mark.parametrize("bad", ["BTC-USD-20250328", "btc-usd", "BTCUSD"])
def test_unmappable_symbols(bad: str) -> None:
    with pytest.raises(UnknownSymbol):
        to_native(bad)


@pytest.mark.parametrize("bad", ["fUSD", "tBTCUS", "BTCUSD", "t:USD"])
def test_unknown_native_symbols(bad: str) -> None:
    with pytest.raises(UnknownSymbol):
        from_native(bad)


def test_check_rejects_channels_bitfinex_does_not_offer_here() -> None:
    a = BitfinexAdapter()
    with pytest.raises(UnknownChannel):
        a.check(Subscription("bitfinex", Channel.QUOTES, "BTC-USD"))
    with pytest.raises(UnknownChannel):
        a.subscribe([Subscription("bitfinex", Channel.FUNDING, "BTC-USDT-PERP")])


def test_subscribed_event_for_a_symbol_not_subscribed_here_is_mapped() -> None:
    a = BitfinexAdapter()
    a.parse(subscribed(5, "trades", "tETHUST"), R)
    (trade,) = a.parse('[5,"te",[1,1574694478808,-2,3000.5],1]', R)
    assert isinstance(trade, Trade) and trade.symbol == "ETH-USDT"


# --- P0 books ---------------------------------------------------------------------------


def test_book_snapshot_sheet_example() -> None:
    a = adapter_with_channels()
    events = a.parse("[232957,[[60400,1,0.68826974],[60397,1,1.17989099],[60401,1,-0.5]],5]", R)
    assert events == [
        BookSnapshot(
            "bitfinex",
            "BTC-USD",
            ((60400.0, 0.68826974), (60397.0, 1.17989099)),
            ((60401.0, 0.5),),
            None,
            R,
            5,
            None,
            (("60400", "0.68826974"), ("60397", "1.17989099")),
            (("60401", "0.5"),),
        )
    ]


def test_book_snapshot_is_sorted_best_first() -> None:
    a = adapter_with_channels()
    (snap,) = a.parse("[232957,[[1,1,1],[3,1,1],[2,1,1],[9,2,-1],[7,1,-1],[8,1,-2]],1]", R)
    assert isinstance(snap, BookSnapshot)
    assert [p for p, _ in snap.bids] == [3.0, 2.0, 1.0]
    assert [p for p, _ in snap.asks] == [7.0, 8.0, 9.0]
    assert snap.asks_text == (("7", "1"), ("8", "2"), ("9", "1"))


def test_empty_book_snapshot() -> None:
    a = adapter_with_channels()
    assert a.parse("[232957,[],1]", R) == [BookSnapshot("bitfinex", "BTC-USD", (), (), None, R, 1, None, (), ())]


def test_book_updates_sheet_examples() -> None:
    a = adapter_with_channels()
    a.parse("[232957,[[60400,1,0.68826974]],18]", R)
    assert a.parse("[232957,[279380,1,0.0089],19]", R) == [
        BookUpdate("bitfinex", "BTC-USD", ((279380.0, 0.0089),), (), None, R, 19,
                   bids_text=(("279380", "0.0089"),), asks_text=())
    ]  # fmt: skip
    assert a.parse("[232957,[279381,2,-1.5e-7],20]", R) == [
        BookUpdate("bitfinex", "BTC-USD", (), ((279381.0, 1.5e-7),), None, R, 20,
                   bids_text=(), asks_text=(("279381", "1.5e-7"),))
    ]  # fmt: skip
    # delete: COUNT 0, AMOUNT 1 = bid side, -1 = ask side
    assert a.parse("[232957,[279380,0,1],21]", R) == [
        BookUpdate("bitfinex", "BTC-USD", ((279380.0, 0.0),), (), None, R, 21,
                   bids_text=(("279380", "0"),), asks_text=())
    ]  # fmt: skip
    assert a.parse("[232957,[279381,0,-1],22]", R) == [
        BookUpdate("bitfinex", "BTC-USD", (), ((279381.0, 0.0),), None, R, 22,
                   bids_text=(), asks_text=(("279381", "0"),))
    ]  # fmt: skip


def test_checksum_and_heartbeat_messages() -> None:
    a = adapter_with_channels()
    a.parse("[232957,[[60400,1,0.68826974]],1]", R)
    assert a.parse('[232957,"cs",-1431985113,2]', R) == [
        BookUpdate("bitfinex", "BTC-USD", (), (), None, R, 2, checksum=-1431985113)
    ]
    assert a.parse('[232957,"hb",3]', R) == []
    assert a.parse('[17470,"hb",4]', R) == []
    assert a.seq == 4
    assert a.stats.seq_gaps == 0


def test_appended_fields_do_not_move_the_sequence() -> None:
    # sheet: "fields may be appended": the sequence is read after the payload
    a = adapter_with_channels()
    a.parse("[232957,[[60400,1,0.5]],7,1700000000000]", R)
    a.parse('[232957,"cs",12,8,1700000000001]', R)
    a.parse('[232957,"hb",9,1700000000002]', R)
    assert a.seq == 9 and a.stats.seq_gaps == 0


# --- trades ---------------------------------------------------------------------------------


def test_trades_te_used_tu_and_history_dropped() -> None:
    a = adapter_with_channels()
    assert a.parse("[17470,[[401597393,1574694475039,0.005,7244.9],[401597392,1574694475000,-1,7245]],1]", R) == []
    assert a.stats.history_dropped == 1
    te = a.parse('[17470,"te",[401597395,1574694478808,0.005,7245.3],2]', R)
    assert te == [Trade("bitfinex", "BTC-USD", 7245.3, 0.005, Side.BUY, "401597395", 1574694478808_000_000, R)]
    assert a.parse('[17470,"tu",[401597395,1574694478808,0.005,7245.3],3]', R) == []
    (sell,) = a.parse('[17470,"te",[401597396,1574694478900,-0.25,7245],4]', R)
    assert isinstance(sell, Trade)
    assert (sell.side, sell.size, sell.price, sell.seq) == (Side.SELL, 0.25, 7245.0, None)


# --- R0 raw books ------------------------------------------------------------------------------


def test_raw_book_snapshot_and_updates() -> None:
    a = adapter_with_channels()
    snap = a.parse("[433290,[[34753002978,7294.7,1.54340371],[34753002979,7295,-0.5]],10]", R)
    assert snap == [
        L3Snapshot(
            "bitfinex",
            "BTC-USD",
            (("34753002978", BookSide.BID, 7294.7, 1.54340371), ("34753002979", BookSide.ASK, 7295.0, 0.5)),
            None,
            R,
            10,
        )
    ]
    a.parse('[17470,"hb",11]', R)  # another channel in between
    assert a.parse("[433290,[34753002980,7294,2],12]", R) == [
        OrderUpdate("bitfinex", "BTC-USD", OrderAction.ADD, "34753002980", BookSide.BID, 7294.0, 2.0, None, R, 12, 11)
    ]
    # a known id: CHANGE (here it moves price)
    assert a.parse("[433290,[34753002978,7294.5,1],13]", R) == [
        OrderUpdate(
            "bitfinex", "BTC-USD", OrderAction.CHANGE, "34753002978", BookSide.BID, 7294.5, 1.0, None, R, 13, 13
        )
    ]
    # PRICE 0: remove; side from the AMOUNT sign, price = last known
    assert a.parse("[433290,[34753002979,0,-1],14]", R) == [
        OrderUpdate(
            "bitfinex", "BTC-USD", OrderAction.REMOVE, "34753002979", BookSide.ASK, 7295.0, 0.0, None, R, 14, 14
        )
    ]
    a.parse('[433290,"cs",123,15]', R)
    assert a.stats.l3_checksums == 1


def test_l3_checksum_uses_order_ids() -> None:
    book3 = L3Book()
    book3.add(101, BookSide.BID, 7294.7, 1.54340371)
    book3.add(102, BookSide.BID, 7294.0, 2.0)
    book3.add(201, BookSide.ASK, 7295.0, 0.5)
    assert l3_checksum(book3) == signed_crc("101:1.54340371:201:-0.5:102:2")


# --- connection sequence ------------------------------------------------------------------------


def test_sequence_jump_emits_connection_wide_gaps_then_the_message() -> None:
    a = adapter_with_channels()
    a.parse("[232957,[[60400,1,0.5]],1]", R)
    events = a.parse("[232957,[60399,1,0.25],4]", R)
    detail = "connection sequence 4 after 1"
    assert events == [
        Gap("bitfinex", "", Channel.BOOK, GapReason.SEQUENCE, 2, 4, R, detail),
        Gap("bitfinex", "BTC-USD", Channel.TRADES, GapReason.SEQUENCE, 2, 4, R, detail),
        Gap("bitfinex", "BTC-USD", Channel.L3, GapReason.SEQUENCE, 2, 4, R, detail),
        BookUpdate("bitfinex", "BTC-USD", ((60399.0, 0.25),), (), None, R, 4,
                   bids_text=(("60399", "0.25"),), asks_text=()),
    ]  # fmt: skip
    assert a.stats.seq_gaps == 1
    assert a.parse('[232957,"hb",5]', R) == []  # continues from 4


def test_duplicate_and_late_messages_are_dropped() -> None:
    a = adapter_with_channels()
    a.parse("[232957,[[60400,1,0.5]],1]", R)
    a.parse("[232957,[60399,1,0.25],2]", R)
    assert a.parse("[232957,[60399,1,0.25],2]", R) == []
    assert a.parse('[232957,"hb",1]', R) == []
    assert a.stats.duplicates == 2
    assert a.parse("[232957,[60399,0,1],3]", R) != []


def test_reset_forgets_the_connection() -> None:
    a = adapter_with_channels()
    a.parse("[232957,[[60400,1,0.5]],41]", R)
    a.reset()
    assert a.seq is None
    assert a.parse("[232957,[[60400,1,0.5]],1]", R) == []  # old chanId unknown now
    assert a.stats.unknown_channel == 1 and a.stats.duplicates == 0


def test_messages_without_sequence_are_counted() -> None:
    a = adapter_with_channels()
    (snap,) = a.parse("[232957,[[60400,1,0.5]]]", R)
    assert isinstance(snap, BookSnapshot) and snap.seq is None
    assert a.parse('[232957,"hb"]', R) == []
    assert a.stats.unsequenced == 2


# --- venue events -------------------------------------------------------------------------------


def test_error_event_rejects_the_subscription() -> None:
    a = BitfinexAdapter()
    with pytest.raises(SubscriptionRejected, match="10300"):
        a.parse('{"event":"error","msg":"subscribe: failed","code":10300,"channel":"book","symbol":"tFOOBAR"}', R)


def test_info_codes() -> None:
    a = adapter_with_channels()
    with pytest.raises(RemoteError, match="20051") as exc_info:
        a.parse('{"event":"info","code":20051,"msg":"Stop/Restart Websocket Server"}', R)
    assert not isinstance(exc_info.value, MalformedMessage)
    assert a.parse('{"event":"info","code":20060,"msg":"maintenance"}', R) == []
    events = a.parse('{"event":"info","code":20061,"msg":"maintenance end"}', R)
    assert [(e.channel, e.symbol) for e in events if isinstance(e, Gap)] == [
        (Channel.BOOK, ""),
        (Channel.TRADES, "BTC-USD"),
        (Channel.L3, "BTC-USD"),
    ]
    assert a.stats.seq_gaps == 0


def test_conf_refused_and_pong() -> None:
    a = BitfinexAdapter()
    with pytest.raises(RemoteError):
        a.parse('{"event":"conf","status":"FAILED","flags":196608}', R)
    assert a.parse('{"event":"pong","ts":1,"cid":1234}', R) == []


# --- malformed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        b"{not json",
        "",
        "42",
        '"hb"',
        "[]",
        "[232957]",
        '{"event":"weird"}',
        '{"no":"event"}',
        '[232957,"zz",1,2]',
        '[17470,"cs",1,2]',  # checksum on a trades channel
        "[232957,{},1]",
        "[232957,[[60400,1,0.5]],1.5]",  # sequence not an int
        "[232957,[[60400,1,0.5]],true]",
        '[232957,"cs","123",2]',
        '[232957,"cs",1.5,2]',
        '[232957,[["60400",1,0.5]],1]',  # DEC_S-style strings
        "[232957,[60400,1],1]",
        "[232957,[60400,1.5,0.5],1]",  # COUNT not an int
        "[232957,[true,1,0.5],1]",
        '[17470,"te",[1,2,3],1]',
        '[17470,"te",[1,1.5,0.1,100],1]',  # MTS not an int
        '[17470,"te",["1",1,0.1,100],1]',
        '[17470,"te",[1,1,"0.1",100],1]',
        "[433290,[1,2],1]",
        '[433290,["x",2,1],1]',
        '[433290,[1,"2",1],1]',
        '{"event":"subscribed","channel":"book","symbol":"tBTCUSD"}',
        '{"event":"subscribed","channel":"book","chanId":"7","symbol":"tBTCUSD"}',
        '{"event":"subscribed","channel":"book","chanId":7,"symbol":"fUSD"}',
    ],
)
def test_malformed_frames_raise_malformed_message(frame: str | bytes) -> None:
    a = adapter_with_channels()
    with pytest.raises(MalformedMessage):
        a.parse(frame, R)


def test_unknown_message_type_is_named() -> None:
    a = adapter_with_channels()
    with pytest.raises(MalformedMessage, match="unknown message type"):
        a.parse('{"event":"weird"}', R)
    with pytest.raises(MalformedMessage, match="unknown message type"):
        a.parse('[232957,"zz",1,2]', R)


# --- the book rule ---------------------------------------------------------------------------------


def test_book_rule() -> None:
    rule = BitfinexAdapter().book_rule("BTC-USD")
    assert rule.snapshot is SnapshotSource.STREAM
    assert rule.continuity is Continuity.MONOTONIC
    assert rule.keep_text and not rule.check_crossed
    assert rule.checksum is book_checksum
    assert rule.depth is None
    assert BitfinexAdapter().snapshot_request("BTC-USD") is None
    # the feed's rule cuts the book to the subscribed len
    a = BitfinexAdapter()
    assert a.book_rule_for(Subscription("bitfinex", Channel.BOOK, "BTC-USD")).depth == 100
    ruled = a.book_rule_for(Subscription("bitfinex", Channel.BOOK, "BTC-USD", depth=20))
    assert ruled.depth == 25 and ruled.checksum is book_checksum and not ruled.check_crossed
    with pytest.raises(UnknownSymbol):
        BitfinexAdapter().book_rule("BTC-USD-20250101")


SNAPSHOT = "[232957,[[60400,1,0.68826974],[60397,1,1.17989099],[60401,1,-0.5],[60402,3,-1e-7]],1]"
#: The string Bitfinex hashes for SNAPSHOT (sheet, "Checksum"), written by hand.
SNAPSHOT_CS_TEXT = "60400:0.68826974:60401:-0.5:60397:1.17989099:60402:-1e-7"


def synced_book() -> tuple[BitfinexAdapter, BookSync]:
    a = adapter_with_channels()
    sync = BookSync(a.book_rule("BTC-USD"))
    (snap,) = a.parse(SNAPSHOT, R)
    assert sync.on_snapshot(snap) is Verdict.SYNCED  # type: ignore[arg-type]
    return a, sync


def offer(a: BitfinexAdapter, sync: BookSync, frame: str) -> Verdict:
    (event,) = a.parse(frame, R)
    assert isinstance(event, BookUpdate)
    return sync.on_update(event)


def test_checksum_matches_hand_computed_value() -> None:
    a, sync = synced_book()
    assert offer(a, sync, f'[232957,"cs",{signed_crc(SNAPSHOT_CS_TEXT)},2]') is Verdict.APPLIED
    assert sync.stats.checksums_ok == 1
    # an update, then its checksum
    assert offer(a, sync, "[232957,[60401,0,-1],3]") is Verdict.APPLIED
    text = "60400:0.68826974:60402:-1e-7:60397:1.17989099"
    assert offer(a, sync, f'[232957,"cs",{signed_crc(text)},4]') is Verdict.APPLIED
    assert sync.stats.checksums_ok == 2
    assert sync.book.depth() == (((60400.0, 0.68826974), (60397.0, 1.17989099)), ((60402.0, 1e-7),))


def test_checksum_mismatch_breaks_the_book() -> None:
    a, sync = synced_book()
    verdict = offer(a, sync, f'[232957,"cs",{signed_crc(SNAPSHOT_CS_TEXT) ^ 1},2]')
    assert verdict is Verdict.CHECKSUM
    assert not sync.valid and not sync.book.valid and len(sync.book) == 0


def test_checksum_covers_top_25_only() -> None:
    a = adapter_with_channels()
    sync = BookSync(a.book_rule("BTC-USD"))
    levels = [f"[{100 - i},1,{i + 1}]" for i in range(30)] + [f"[{200 + i},1,-{i + 1}.5]" for i in range(30)]
    (snap,) = a.parse(f"[232957,[{','.join(levels)}],1]", R)
    sync.on_snapshot(snap)  # type: ignore[arg-type]
    parts = []
    for i in range(25):
        parts += [str(100 - i), str(i + 1), str(200 + i), f"-{i + 1}.5"]
    assert offer(a, sync, f'[232957,"cs",{signed_crc(":".join(parts))},2]') is Verdict.APPLIED


def test_stale_update_is_dropped_by_the_rule() -> None:
    _a, sync = synced_book()
    stale = BookUpdate("bitfinex", "BTC-USD", ((1.0, 1.0),), (), None, R, 1, bids_text=(("1", "1"),))
    assert sync.on_update(stale) is Verdict.STALE
    assert sync.valid and sync.book.size_at(BookSide.BID, 1.0) == 0.0


def test_transient_cross_between_messages_is_tolerated() -> None:
    # One level per message: a bid above the best ask, then the delete of that
    # ask, then the checksum of the (uncrossed) result.
    a, sync = synced_book()
    assert offer(a, sync, "[232957,[60401.5,1,0.1],2]") is Verdict.APPLIED
    assert sync.book.crossed()
    assert offer(a, sync, "[232957,[60401,0,-1],3]") is Verdict.APPLIED
    text = "60401.5:0.1:60402:-1e-7:60400:0.68826974:60397:1.17989099"
    assert offer(a, sync, f'[232957,"cs",{signed_crc(text)},4]') is Verdict.APPLIED
    assert sync.valid and not sync.book.crossed()


def test_book_still_crossed_at_the_checksum_breaks() -> None:
    a, sync = synced_book()
    assert offer(a, sync, "[232957,[60401,1,0.1],2]") is Verdict.APPLIED  # crossed: bid == best ask
    # the venue's book is not crossed: its checksum cannot match
    assert offer(a, sync, f'[232957,"cs",{signed_crc(SNAPSHOT_CS_TEXT)},3]') is Verdict.CHECKSUM
    assert not sync.valid and len(sync.book) == 0


def test_live_level_with_zero_amount_is_bad_data() -> None:
    a, sync = synced_book()
    assert offer(a, sync, "[232957,[60390,2,0],2]") is Verdict.BAD_DATA
    assert not sync.valid


def test_waiting_book_ignores_updates_until_the_stream_snapshot() -> None:
    a = adapter_with_channels()
    a.parse("[232957,[[60400,1,0.5]],1]", R)
    sync = BookSync(a.book_rule("BTC-USD"))
    assert offer(a, sync, "[232957,[60399,1,0.25],2]") is Verdict.IGNORED
    assert offer(a, sync, '[232957,"cs",5,3]') is Verdict.IGNORED


# --- through the Feed ------------------------------------------------------------------------------


def feed_with_book() -> tuple[BitfinexAdapter, Feed, list[Event]]:
    a = BitfinexAdapter()
    events: list[Event] = []
    feed = Feed(a, events.append)
    subs = [*book("bitfinex", "BTC-USD", "ETH-USD"), *trades("bitfinex", "BTC-USD")]
    for sub in subs[:2]:
        feed.add_book(sub)
    a.subscribe(subs)
    feed.on_frame(subscribed(1, "book", "tBTCUSD", prec="P0"), R)
    feed.on_frame(subscribed(2, "book", "tETHUSD", prec="P0"), R)
    feed.on_frame(subscribed(3, "trades", "tBTCUSD"), R)
    feed.on_frame("[1,[[60400,1,0.5],[60401,1,-0.25]],1]", R)
    feed.on_frame(f'[1,"cs",{signed_crc("60400:0.5:60401:-0.25")},2]', R)
    feed.on_frame("[2,[[3000,1,2],[3001,1,-3]],3]", R)
    feed.on_frame(f'[2,"cs",{signed_crc("3000:2:3001:-3")},4]', R)
    return a, feed, events


def test_feed_syncs_both_books_and_verifies_checksums() -> None:
    _a, feed, events = feed_with_book()
    assert [type(e) for e in events] == [BookSnapshot, Resynced, BookUpdate, BookSnapshot, Resynced, BookUpdate]
    assert feed.syncs["BTC-USD"].stats.checksums_ok == 1
    assert feed.syncs["ETH-USD"].stats.checksums_ok == 1
    assert feed.stats.parse_errors == 0


def test_feed_sequence_gap_resubscribes_every_book() -> None:
    a, feed, events = feed_with_book()
    del events[:]
    feed.on_frame('[3,"te",[5,1574694478808,0.1,60400],9]', R)  # 5..8 lost
    assert [type(e) for e in events] == [Gap, Gap, Gap, Trade]
    book_gaps = [e for e in events if isinstance(e, Gap) and e.channel is Channel.BOOK]
    assert {g.symbol for g in book_gaps} == {"BTC-USD", "ETH-USD"}
    assert all(g.reason is GapReason.SEQUENCE and (g.expected, g.received) == (5, 9) for g in book_gaps)
    trade_gap = events[2]
    assert isinstance(trade_gap, Gap) and (trade_gap.channel, trade_gap.symbol) == (Channel.TRADES, "BTC-USD")
    assert not feed.syncs["BTC-USD"].valid and not feed.syncs["ETH-USD"].valid
    sent = [json.loads(m) for action in feed.take_actions() if isinstance(action, Send) for m in action.messages]
    assert sent == [
        {"event": "unsubscribe", "chanId": 1},
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "100"},
        {"event": "unsubscribe", "chanId": 2},
        {"event": "subscribe", "channel": "book", "symbol": "tETHUSD", "prec": "P0", "freq": "F0", "len": "100"},
    ]
    # the venue confirms, re-subscribes with new ids and sends snapshots
    feed.on_frame('{"event":"unsubscribed","status":"OK","chanId":1}', R)
    feed.on_frame("[1,[60400,1,0.7],10]", R)  # late message of the old channel: dropped
    feed.on_frame(subscribed(11, "book", "tBTCUSD", prec="P0"), R)
    feed.on_frame("[11,[[60400,1,0.7]],11]", R)
    assert feed.syncs["BTC-USD"].valid
    assert feed.book("BTC-USD").depth() == (((60400.0, 0.7),), ())  # type: ignore[union-attr]
    assert a.stats.unknown_channel == 1


def test_feed_reports_rejected_subscriptions_and_garbage() -> None:
    _a, feed, events = feed_with_book()
    del events[:]
    feed.on_frame('{"event":"error","msg":"subscribe: dup","code":10301,"channel":"book","symbol":"tBTCUSD"}', R)
    feed.on_frame("{garbage", R)
    assert [(type(e), e.kind) for e in events if isinstance(e, Error)] == [
        (Error, ErrorKind.VENUE_ERROR),
        (Error, ErrorKind.MALFORMED),
    ]
    assert feed.syncs["BTC-USD"].valid  # garbage costs no book


# --- sans-I/O -----------------------------------------------------------------------------------


def test_adapter_module_is_sans_io() -> None:
    path = Path(__file__).resolve().parents[1] / "wsmux" / "exchanges" / "bitfinex.py"
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "websockets", "httpx", "time", "socket", "threading"}


# --- candles ------------------------------------------------------------------------------

CANDLE_CHAN = 343351


def candle_adapter() -> BitfinexAdapter:
    a = BitfinexAdapter()
    out = a.subscribe(list(candles("bitfinex", "BTC-USD")))
    assert json.loads(out[1]) == {"event": "subscribe", "channel": "candles", "key": "trade:1m:tBTCUSD"}
    ack = {"event": "subscribed", "channel": "candles", "chanId": CANDLE_CHAN, "key": "trade:1m:tBTCUSD"}
    assert a.parse(json.dumps(ack), R) == []  # the ack names the key, not a symbol
    return a


def test_candle_history_snapshot_is_final_but_the_newest() -> None:
    a = candle_adapter()
    # [MTS, OPEN, CLOSE, HIGH, LOW, VOLUME], newest first (values illustrative)
    frame = (
        f"[{CANDLE_CHAN},[[1574698260000,7379.785503,7383.8,7388.3,7379.785503,1.68829482],"
        "[1574698200000,7399.9,7379.7,7399.9,7371.8,41.63633658]],1]"
    )
    assert a.parse(frame, R) == [
        Candle("bitfinex", "BTC-USD", "1m", 1574698200000 * 10**6, 7399.9, 7399.9, 7371.8, 7379.7, 41.63633658, True,
               None, R),
        Candle("bitfinex", "BTC-USD", "1m", 1574698260000 * 10**6, 7379.785503, 7388.3, 7379.785503, 7383.8,
               1.68829482, False, None, R),
    ]  # fmt: skip


def test_candle_update_is_forming() -> None:
    a = candle_adapter()
    (bar,) = a.parse(f"[{CANDLE_CHAN},[1574698260000,7379.785503,7383.8,7388.3,7379.785503,1.68829482],1]", R)
    assert isinstance(bar, Candle) and bar.closed is False and bar.close == 7383.8 and bar.high == 7388.3
    assert a.parse(f"[{CANDLE_CHAN},[],2]", R) == []  # an empty history
    assert a.parse(f'[{CANDLE_CHAN},"hb",3]', R) == []


def test_candles_of_another_interval_are_ignored_and_unsubscribe_names_the_chan() -> None:
    a = candle_adapter()
    a.parse(json.dumps({"event": "subscribed", "channel": "candles", "chanId": 9, "key": "trade:5m:tBTCUSD"}), R)
    assert a.parse("[9,[1574698200000,1,1,1,1,1],1]", R) == []
    assert a.unsubscribe(list(candles("bitfinex", "BTC-USD"))) == [f'{{"event":"unsubscribe","chanId":{CANDLE_CHAN}}}']


@pytest.mark.parametrize(
    "row",
    [
        "[1574698260000,7379.7,7383.8,7370.0,7379.7,1.6]",  # high below the open
        "[1574698260000,7379.7,7383.8,7388.3,7379.7,-1]",  # negative volume
        '["1574698260000",7379.7,7383.8,7388.3,7379.7,1.6]',  # MTS as text
        "[1574698260000,7379.7,7383.8,7388.3,7379.7]",  # no volume
        '[1574698260000,7379.7,7383.8,"x",7379.7,1.6]',
    ],
)
def test_malformed_candles(row: str) -> None:
    with pytest.raises(MalformedMessage):
        candle_adapter().parse(f"[{CANDLE_CHAN},{row},1]", R)
