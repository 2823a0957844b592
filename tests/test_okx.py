"""OkxAdapter: hand-written frames in the documented format (okx-v5.md), the
book rule through BookSync, and the checksum against a hand-computed CRC32."""

from __future__ import annotations

import json
import math
import zlib

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    ConfigError,
    Funding,
    Liquidation,
    MalformedMessage,
    OpenInterest,
    Quote,
    Side,
    Subscription,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    candles,
    funding,
    liquidations,
    open_interest,
    quotes,
    trades,
)
from wsmux._pipeline import Feed, Send
from wsmux.book import BookSync, Continuity, Diff, SnapshotSource, Verdict
from wsmux.errors import WsmuxError
from wsmux.exchanges import get
from wsmux.exchanges.okx import OkxAdapter, okx_symbol, okx_unified
from wsmux.testing import parse_events

MS = 1_000_000
RECV = 123_456_789


def crc_signed(text: str) -> int:
    value = zlib.crc32(text.encode("ascii"))
    return value - 2**32 if value >= 2**31 else value


def books_frame(
    action: str,
    bids: list[list[str]],
    asks: list[list[str]],
    *,
    seq: int | None = None,
    prev: int | None = None,
    checksum: int | None = 0,
    inst: str = "BTC-USDT",
    ts: str = "1652459225360",
) -> str:
    entry: dict[str, object] = {"asks": asks, "bids": bids, "ts": ts}
    if checksum is not None:
        entry["checksum"] = checksum
    if prev is not None:
        entry["prevSeqId"] = prev
    if seq is not None:
        entry["seqId"] = seq
    return json.dumps({"arg": {"channel": "books", "instId": inst}, "action": action, "data": [entry]})


def adapter(*subs: Subscription) -> OkxAdapter:
    a = OkxAdapter()
    if subs:
        a.subscribe(list(subs))
    return a


# --- registry, symbols, subscribe ------------------------------------------------------


def test_registry() -> None:
    assert get("okx") is OkxAdapter
    assert OkxAdapter.venue == "okx"
    assert OkxAdapter().url == "wss://ws.okx.com:8443/ws/v5/public"


@pytest.mark.parametrize(
    ("unified", "native"),
    [
        ("BTC-USDT", "BTC-USDT"),
        ("BTC-USDT-PERP", "BTC-USDT-SWAP"),
        ("ETH-USD-PERP", "ETH-USD-SWAP"),
        ("BTC-USD-20220527", "BTC-USD-220527"),
    ],
)
def test_symbols_round_trip(unified: str, native: str) -> None:
    assert okx_symbol(unified) == native
    assert OkxAdapter().to_native(unified) == native
    assert okx_unified(native) == unified


@pytest.mark.parametrize("native", ["BTC-USD-220527-30000-C", "BTCUSDT", "BTC-USDT-XYZ", "btc-usdt", ""])
def test_unified_of_unknown_instruments(native: str) -> None:
    assert okx_unified(native) is None


@pytest.mark.parametrize(
    ("channel", "symbol"),
    [
        (Channel.FUNDING, "BTC-USDT"),
        (Channel.OPEN_INTEREST, "BTC-USDT"),
        (Channel.LIQUIDATIONS, "BTC-USDT"),
        (Channel.FUNDING, "BTC-USD-20220527"),
    ],
)
def test_channel_needs_a_derivative(channel: Channel, symbol: str) -> None:
    with pytest.raises(UnknownSymbol):
        OkxAdapter().check(Subscription("okx", channel, symbol))


def test_check_refuses_l3_and_bad_symbols() -> None:
    with pytest.raises(UnknownChannel):
        OkxAdapter().check(Subscription("okx", Channel.L3, "BTC-USDT"))
    with pytest.raises(UnknownSymbol):
        OkxAdapter().to_native("btc-usdt")


def test_subscribe_messages() -> None:
    a = OkxAdapter()
    msgs = a.subscribe(
        [
            *book("okx", "BTC-USDT"),
            *quotes("okx", "BTC-USDT"),
            *trades("okx", "BTC-USDT-PERP"),
            *funding("okx", "BTC-USDT-PERP"),
            *open_interest("okx", "BTC-USDT-PERP"),
        ]
    )
    assert [json.loads(m) for m in msgs] == [
        {
            "op": "subscribe",
            "args": [
                {"channel": "books", "instId": "BTC-USDT"},
                {"channel": "bbo-tbt", "instId": "BTC-USDT"},
                {"channel": "trades", "instId": "BTC-USDT-SWAP"},
                {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
                {"channel": "open-interest", "instId": "BTC-USDT-SWAP"},
            ],
        }
    ]
    assert json.loads(a.unsubscribe(list(book("okx", "BTC-USDT")))[0]) == {
        "op": "unsubscribe",
        "args": [{"channel": "books", "instId": "BTC-USDT"}],
    }


def test_subscribe_splits_into_messages_of_50_args() -> None:
    symbols = [f"C{i}-USDT" for i in range(120)]
    msgs = OkxAdapter().subscribe(list(trades("okx", *symbols)))
    sizes = [len(json.loads(m)["args"]) for m in msgs]
    assert sizes == [50, 50, 20]
    assert OkxAdapter.limits.topics_per_message == 50


def test_liquidations_subscribe_the_inst_type_once() -> None:
    a = OkxAdapter()
    first = a.subscribe(list(liquidations("okx", "BTC-USDT-PERP", "ETH-USDT-PERP")))
    assert [json.loads(m) for m in first] == [
        {"op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}
    ]
    assert a.subscribe(list(liquidations("okx", "SOL-USDT-PERP"))) == []  # already on
    fut = a.subscribe(list(liquidations("okx", "BTC-USD-20250627")))
    assert json.loads(fut[0])["args"] == [{"channel": "liquidation-orders", "instType": "FUTURES"}]
    # Unsubscribing keeps the channel while another swap is still wanted.
    assert a.unsubscribe(list(liquidations("okx", "BTC-USDT-PERP", "SOL-USDT-PERP"))) == []
    last = a.unsubscribe(list(liquidations("okx", "ETH-USDT-PERP")))
    assert json.loads(last[0]) == {
        "op": "unsubscribe",
        "args": [{"channel": "liquidation-orders", "instType": "SWAP"}],
    }
    # After reset() (a new connection) the subscription is sent again.
    a.reset()
    assert a.subscribe(list(liquidations("okx", "BTC-USDT-PERP"))) != []


def test_heartbeat_and_limits() -> None:
    hb = OkxAdapter.heartbeat
    assert hb.ping_message == "ping"
    assert hb.ping_interval < 30  # okx-v5.md: ping if nothing received for < 30 s
    assert hb.ws_ping_interval is None


# --- parsing: control frames -------------------------------------------------------------


def test_pong_and_acks_are_quiet() -> None:
    a = OkxAdapter()
    assert a.parse("pong", RECV) == []
    assert a.parse(b"pong", RECV) == []
    ack = '{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USD-220527"},"connId":"a4d3ae55"}'
    assert a.parse(ack, RECV) == []
    assert a.parse('{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"}}', RECV) == []


def test_error_event_is_a_rejected_subscription() -> None:
    with pytest.raises(SubscriptionRejected, match="60012"):
        parse_events(OkxAdapter(), '{"event":"error","code":"60012","msg":"Invalid request"}', RECV)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        "42",
        '{"event":"something-new"}',
        "{}",
        '{"arg":{"channel":"mark-price","instId":"BTC-USDT"},"data":[]}',
        '{"arg":{"channel":7,"instId":"BTC-USDT"},"data":[]}',
        '{"data":[]}',
        # books: unknown action, missing fields, wrong types
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"partial","data":[]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"data":[]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"ts":"1"}]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
        '"data":[{"asks":[[30000.1,"1","0","1"]],"bids":[],"ts":"1"}]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
        '"data":[{"asks":[["30000.1"]],"bids":[],"ts":"1"}]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
        '"data":[{"asks":[],"bids":[],"ts":"yesterday"}]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
        '"data":[{"asks":[],"bids":[],"ts":"1","checksum":"-5"}]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
        '"data":[{"asks":[],"bids":[],"ts":"1","seqId":"12","prevSeqId":11}]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
        '"data":[{"asks":[],"bids":[],"ts":"1","seqId":12,"prevSeqId":true}]}',
        '{"arg":{"channel":"books","instId":"NOT AN INST"},"action":"update","data":[{"asks":[],"bids":[],"ts":"1"}]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":7}',
        # trades: unknown side, missing price
        '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1",'
        '"px":"1","sz":"1","side":"up","ts":"1"}]}',
        '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1",'
        '"sz":"1","side":"buy","ts":"1"}]}',
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["x","1","0","1"]],"bids":[],"ts":"1"}]}',
        '{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP"}]}',
        '{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP"}]}',
    ],
)
def test_malformed_frames_raise_malformed_message(frame: str | bytes) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_events(OkxAdapter(), frame, RECV)
    assert info.value.frame is not None  # the offending frame travels with the error


def test_unknown_message_types_say_so() -> None:
    a = OkxAdapter()
    for frame in ('{"event":"something-new"}', '{"arg":{"channel":"mark-price","instId":"X-Y"},"data":[]}'):
        with pytest.raises(MalformedMessage, match="unknown message type"):
            a.parse(frame, RECV)


def test_no_foreign_exception_escapes() -> None:
    """Every truncation of a valid frame raises a WsmuxError (never KeyError etc.)."""
    frames = [
        books_frame("update", [["30000.1", "1", "0", "1"]], [], seq=5, prev=4, checksum=-3),
        '{"arg":{"channel":"trades","instId":"UNI-USD-SWAP"},"data":[{"instId":"UNI-USD-SWAP",'
        '"tradeId":"12883020","px":"5.123","sz":"100","side":"sell","ts":"1652459215150"}]}',
    ]
    a = OkxAdapter()
    for frame in frames:
        for cut in range(len(frame)):
            try:
                a.parse(frame[:cut], RECV)
            except WsmuxError:
                pass


# --- parsing: market data ---------------------------------------------------------------


def test_books_snapshot_from_the_sheet() -> None:
    frame = (
        '{"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"snapshot","data":[{"asks":'
        '[["30238.8","2","0","1"],["30249.5","50","0","1"]],"bids":[["30210.4","4","0","1"]],'
        '"ts":"1652459225360","checksum":-1200119424}]}'
    )
    assert parse_events(OkxAdapter(), frame, RECV) == [
        BookSnapshot(
            "okx",
            "BTC-USD-20220527",
            bids=((30210.4, 4.0),),
            asks=((30238.8, 2.0), (30249.5, 50.0)),
            ts=1652459225360 * MS,
            recv_ns=RECV,
            seq=None,
            checksum=-1200119424,
            bids_text=(("30210.4", "4"),),
            asks_text=(("30238.8", "2"), ("30249.5", "50")),
        )
    ]


def test_books_update_from_the_sheet_with_sequence_ids() -> None:
    frame = (
        '{"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{"asks":'
        '[["30249.4","0","0","0"],["30261","4","0","1"],["30310.3","19","0","1"]],'
        '"bids":[["30182.6","452","0","1"]],"ts":"1652459225464","checksum":-914047754,'
        '"prevSeqId":335226848530,"seqId":335226848531}]}'
    )
    assert parse_events(OkxAdapter(), frame, RECV) == [
        BookUpdate(
            "okx",
            "BTC-USD-20220527",
            bids=((30182.6, 452.0),),
            asks=((30249.4, 0.0), (30261.0, 4.0), (30310.3, 19.0)),
            ts=1652459225464 * MS,
            recv_ns=RECV,
            seq=335226848531,
            first_seq=None,
            prev_seq=335226848530,
            checksum=-914047754,
            bids_text=(("30182.6", "452"),),
            asks_text=(("30249.4", "0"), ("30261", "4"), ("30310.3", "19")),
        )
    ]


def test_checksum_zero_means_none() -> None:
    """okx-v5.md: since 2026 every books frame carries checksum 0 — not verified."""
    a = OkxAdapter()
    snap = a.parse(books_frame("snapshot", [["1", "1", "0", "1"]], [], seq=9, prev=-1, checksum=0), RECV)
    upd = a.parse(books_frame("update", [], [], seq=10, prev=9, checksum=0), RECV)
    missing = a.parse(books_frame("update", [], [], seq=11, prev=10, checksum=None), RECV)
    assert snap[0].checksum is None and snap[0].seq == 9  # type: ignore[attr-defined]
    assert upd[0].checksum is None  # type: ignore[attr-defined]
    assert missing[0].checksum is None  # type: ignore[attr-defined]


def test_bbo_tbt_quote() -> None:
    frame = (
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["8476.98","415","0","13"]],'
        '"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","seqId":3452}]}'
    )
    assert parse_events(OkxAdapter(), frame, RECV) == [
        Quote("okx", "BTC-USDT", 8476.97, 256.0, 8476.98, 415.0, 1597026383085 * MS, RECV, 3452)
    ]
    empty = '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[],"ts":"1"}]}'
    (quote,) = parse_events(OkxAdapter(), empty, RECV)
    assert isinstance(quote, Quote) and math.isnan(quote.bid_price) and math.isnan(quote.ask_size)


def test_trades_from_the_sheet() -> None:
    frame = (
        '{"arg":{"channel":"trades","instId":"UNI-USD-SWAP"},"data":[{"instId":"UNI-USD-SWAP",'
        '"tradeId":"12883020","px":"5.123","sz":"100","side":"sell","ts":"1652459215150"},'
        '{"instId":"UNI-USD-SWAP","tradeId":"12883021","px":"5.124","sz":"3","side":"buy",'
        '"ts":"1652459215151","count":"2"}]}'
    )
    assert parse_events(OkxAdapter(), frame, RECV) == [
        Trade("okx", "UNI-USD-PERP", 5.123, 100.0, Side.SELL, "12883020", 1652459215150 * MS, RECV),
        Trade("okx", "UNI-USD-PERP", 5.124, 3.0, Side.BUY, "12883021", 1652459215151 * MS, RECV),
    ]


def test_funding_from_the_sheet() -> None:
    frame = (
        '{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
        '"instType":"SWAP","fundingRate":"0.0001","nextFundingRate":"","fundingTime":"1700000000000",'
        '"nextFundingTime":"1700028800000"}]}'
    )
    assert parse_events(OkxAdapter(), frame, RECV) == [
        Funding("okx", "BTC-USDT-PERP", 0.0001, 1700000000000 * MS, None, None, RECV)
    ]
    with_ts = frame.replace('"nextFundingTime"', '"ts":"1699999999000","nextFundingTime"')
    (event,) = parse_events(OkxAdapter(), with_ts, RECV)
    assert isinstance(event, Funding) and event.ts == 1699999999000 * MS


def test_open_interest_prefers_base_currency() -> None:
    frame = (
        '{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",'
        '"instId":"BTC-USDT-SWAP","oi":"2216113.01","oiCcy":"22161.1301","ts":"1700000000000"}]}'
    )
    assert parse_events(OkxAdapter(), frame, RECV) == [
        OpenInterest("okx", "BTC-USDT-PERP", 22161.1301, 1700000000000 * MS, RECV)
    ]
    contracts_only = frame.replace(',"oiCcy":"22161.1301"', "")
    (event,) = parse_events(OkxAdapter(), contracts_only, RECV)
    assert isinstance(event, OpenInterest) and event.open_interest == 2216113.01


def test_liquidations_filtered_to_subscribed_instruments() -> None:
    frame = (
        '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":['
        '{"instId":"BTC-USDT-SWAP","instFamily":"BTC-USDT","details":[{"side":"buy","posSide":"short",'
        '"bkPx":"43000.1","sz":"2","bkLoss":"0","ts":"1700000000000"},{"side":"sell","posSide":"long",'
        '"bkPx":"42990","sz":"1","bkLoss":"0","ts":"1700000000001"}]},'
        '{"instId":"DOGE-USDT-SWAP","instFamily":"DOGE-USDT","details":[{"side":"sell","posSide":"long",'
        '"bkPx":"0.1","sz":"9","bkLoss":"0","ts":"1700000000002"}]}]}'
    )
    a = adapter(*liquidations("okx", "BTC-USDT-PERP"))
    assert a.parse(frame, RECV) == [
        Liquidation("okx", "BTC-USDT-PERP", Side.BUY, 43000.1, 2.0, 1700000000000 * MS, RECV),
        Liquidation("okx", "BTC-USDT-PERP", Side.SELL, 42990.0, 1.0, 1700000000001 * MS, RECV),
    ]
    assert parse_events(OkxAdapter(), frame, RECV) == []  # nothing asked for on this connection


# --- the book rule through BookSync -------------------------------------------------------


def sync_for(a: OkxAdapter, symbol: str = "BTC-USDT") -> BookSync:
    return BookSync(a.book_rule(symbol))


def offer(sync: BookSync, a: OkxAdapter, frame: str) -> Verdict:
    (event,) = a.parse(frame, RECV)
    if isinstance(event, BookSnapshot):
        return sync.on_snapshot(event)
    assert isinstance(event, BookUpdate | Diff)  # adapters hand book updates over as Diffs
    return sync.on_update(event)


def test_rule_declares_the_sheet() -> None:
    rule = OkxAdapter().book_rule("BTC-USDT")
    assert rule.snapshot is SnapshotSource.STREAM
    assert rule.continuity is Continuity.PREV_ID
    assert rule.depth == 400 and rule.keep_text and rule.checksum is not None
    assert OkxAdapter().snapshot_request("BTC-USDT") is None


def test_prev_seq_id_chain() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    bid, ask = [["100.0", "1", "0", "1"]], [["101.0", "2", "0", "1"]]
    assert offer(sync, a, books_frame("snapshot", bid, ask, seq=10, prev=-1)) is Verdict.SYNCED
    assert offer(sync, a, books_frame("update", [["99.5", "3", "0", "1"]], [], seq=11, prev=10)) is Verdict.APPLIED
    # Keep-alive: no change, seqId == prevSeqId (okx-v5.md) — in sequence, applied.
    assert offer(sync, a, books_frame("update", [], [], seq=11, prev=11)) is Verdict.APPLIED
    assert sync.last == 11
    # A duplicate of the update already applied is stale, not a gap.
    assert offer(sync, a, books_frame("update", [["99.5", "3", "0", "1"]], [], seq=11, prev=10)) is Verdict.STALE
    assert sync.valid
    # Maintenance may restart seqId lower than prevSeqId: accepted (UNCONFIRMED).
    assert offer(sync, a, books_frame("update", [], [["101.0", "0", "0", "0"]], seq=3, prev=11)) is Verdict.APPLIED
    assert sync.last == 3
    assert sync.book.depth() == (((100.0, 1.0), (99.5, 3.0)), ())


def test_broken_chain_is_a_gap() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    offer(sync, a, books_frame("snapshot", [["100", "1", "0", "1"]], [["101", "1", "0", "1"]], seq=10, prev=-1))
    verdict = offer(sync, a, books_frame("update", [["99", "1", "0", "1"]], [], seq=13, prev=12))
    assert verdict is Verdict.GAP
    assert (sync.expected, sync.received) == (10, 12)
    assert not sync.valid and not sync.book.valid and len(sync.book) == 0
    # Updates are ignored until a new snapshot comes.
    assert offer(sync, a, books_frame("update", [], [], seq=14, prev=13)) is Verdict.IGNORED
    assert offer(sync, a, books_frame("snapshot", [["100", "1", "0", "1"]], [], seq=20, prev=-1)) is Verdict.SYNCED


def test_crossed_update_breaks_the_book() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    offer(sync, a, books_frame("snapshot", [["100", "1", "0", "1"]], [["101", "1", "0", "1"]], seq=1, prev=-1))
    assert offer(sync, a, books_frame("update", [["101", "1", "0", "1"]], [], seq=2, prev=1)) is Verdict.CROSSED


def test_book_trimmed_to_400_levels() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    bids = [[f"{1000 - i}", "1", "0", "1"] for i in range(400)]
    offer(sync, a, books_frame("snapshot", bids, [["2000", "1", "0", "1"]], seq=1, prev=-1))
    offer(sync, a, books_frame("update", [["1000.5", "1", "0", "1"]], [], seq=2, prev=1))
    got_bids, _ = sync.book.depth()
    assert len(got_bids) == 400 and got_bids[0] == (1000.5, 1.0) and got_bids[-1] == (602.0, 1.0)


# --- the checksum: a small book by hand ----------------------------------------------------

# okx-v5.md, "Book sync": top 25 bids (desc) and asks (asc), interleaved
# bidPx:bidSz:askPx:askSz:..., the exact strings received, CRC32 as signed 32-bit.
SNAP_BIDS = [["3366.1", "7", "0", "3"], ["3366", "6", "3", "4"]]
SNAP_ASKS = [["3366.8", "9", "10", "3"], ["3368", "8", "3", "4"], ["3372", "8.50", "0", "1"]]
SNAP_TEXT = "3366.1:7:3366.8:9:3366:6:3368:8:3372:8.50"
# update: delete bid 3366, add bid 3365.5 "1.20", change ask 3368 -> "2.0"
UPD_TEXT = "3366.1:7:3366.8:9:3365.5:1.20:3368:2.0:3372:8.50"


def test_checksum_of_a_hand_built_book() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    expected_snap = crc_signed(SNAP_TEXT)
    assert offer(sync, a, books_frame("snapshot", SNAP_BIDS, SNAP_ASKS, seq=1, prev=-1, checksum=expected_snap)) is (
        Verdict.SYNCED
    )
    assert sync.stats.checksums_ok == 1
    update = books_frame(
        "update",
        [["3366", "0", "0", "0"], ["3365.5", "1.20", "0", "1"]],
        [["3368", "2.0", "0", "2"]],
        seq=2,
        prev=1,
        checksum=crc_signed(UPD_TEXT),
    )
    assert offer(sync, a, update) is Verdict.APPLIED
    assert sync.stats.checksums_ok == 2
    # Trailing zeros are part of the text: "8.50" is not "8.5".
    assert crc_signed(UPD_TEXT) != crc_signed(UPD_TEXT.replace("8.50", "8.5"))


def test_checksum_mismatch_breaks_the_book() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    offer(sync, a, books_frame("snapshot", SNAP_BIDS, SNAP_ASKS, seq=1, prev=-1, checksum=crc_signed(SNAP_TEXT)))
    wrong = crc_signed(SNAP_TEXT)  # the book changed; the old checksum no longer matches
    update = books_frame("update", [["3365.5", "1.20", "0", "1"]], [], seq=2, prev=1, checksum=wrong)
    assert offer(sync, a, update) is Verdict.CHECKSUM
    assert sync.stats.checksum_mismatches == 1
    assert not sync.book.valid


def test_checksum_zero_is_not_verified() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    offer(sync, a, books_frame("snapshot", SNAP_BIDS, SNAP_ASKS, seq=1, prev=-1, checksum=0))
    assert offer(sync, a, books_frame("update", [["3365.5", "1", "0", "1"]], [], seq=2, prev=1, checksum=0)) is (
        Verdict.APPLIED
    )
    assert sync.stats.checksums_ok == 0 and sync.stats.checksum_mismatches == 0


def test_checksum_with_more_than_25_levels_and_uneven_sides() -> None:
    a = OkxAdapter()
    sync = sync_for(a)
    bids = [[f"{500 - i}.5", f"{i + 1}", "0", "1"] for i in range(30)]
    asks = [[f"{600 + i}", "0.10", "0", "1"] for i in range(3)]
    parts = []
    for i in range(25):
        parts += [f"{500 - i}.5", f"{i + 1}"]
        if i < 3:
            parts += [f"{600 + i}", "0.10"]
    expected = crc_signed(":".join(parts))
    assert offer(sync, a, books_frame("snapshot", bids, asks, seq=1, prev=-1, checksum=expected)) is Verdict.SYNCED
    assert sync.stats.checksums_ok == 1


# --- the Feed turns a gap into a resubscribe ----------------------------------------------


def test_feed_gap_resubscribes_the_book() -> None:
    events: list[object] = []
    a = OkxAdapter()
    feed = Feed(a, events.append)
    (sub,) = book("okx", "BTC-USDT-PERP")
    feed.add_book(sub)
    a.subscribe([sub])
    inst = "BTC-USDT-SWAP"
    feed.on_frame(books_frame("snapshot", [["1", "1", "0", "1"]], [["2", "1", "0", "1"]], seq=5, prev=-1, inst=inst), 1)
    feed.on_frame(books_frame("update", [["1", "2", "0", "1"]], [], seq=7, prev=6, inst=inst), 2)
    (action,) = feed.take_actions()
    assert isinstance(action, Send)
    assert [json.loads(m) for m in action.messages] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": inst}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": inst}]},
    ]
    gap = events[-1]
    assert type(gap).__name__ == "Gap" and gap.symbol == "BTC-USDT-PERP"  # type: ignore[attr-defined]


# --- candles (candle1m, business endpoint) -------------------------------------------------------

SPOT_CANDLE = (
    '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1597026360000","8533.02","8553.74","8527.17",'
    '"8548.26","45.247","386700.5858061","386700.5858061","0"]]}'
)
SWAP_CANDLE = (
    '{"arg":{"channel":"candle1m","instId":"BTC-USDT-SWAP"},"data":[["1597026360000","8533.02","8553.74",'
    '"8527.17","8548.26","45247","452.47","3867005.8","1"]]}'
)
"""Rows ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`` (OKX v5 docs' layout, values illustrative):
spot ``vol`` is base currency; swap ``vol`` counts contracts and ``volCcy`` is base currency."""


def test_candles_route_to_the_business_endpoint() -> None:
    a = OkxAdapter()
    sub = candles("okx", "BTC-USDT")[0]
    assert a.route(sub) == "business" and a.route(book("okx", "BTC-USDT")[0]) == ""
    assert a.connect_url([sub]) == "wss://ws.okx.com:8443/ws/v5/business"
    assert a.connect_url(book("okx", "BTC-USDT")) == "wss://ws.okx.com:8443/ws/v5/public"
    assert OkxAdapter(url="ws://127.0.0.1:9/ws/v5/public").connect_url([sub]) == "ws://127.0.0.1:9/ws/v5/business"
    assert OkxAdapter(url="ws://127.0.0.1:9/x").connect_url([sub]) == "ws://127.0.0.1:9/x"
    with pytest.raises(ConfigError, match="cannot share one connection"):
        a.connect_url([sub, *book("okx", "BTC-USDT")])
    assert json.loads(a.subscribe([sub])[0]) == {
        "op": "subscribe",
        "args": [{"channel": "candle1m", "instId": "BTC-USDT"}],
    }


def test_spot_candle_volume_is_vol_and_forming() -> None:
    assert parse_events(OkxAdapter(), SPOT_CANDLE, RECV) == [
        Candle("okx", "BTC-USDT", "1m", 1597026360000 * MS, 8533.02, 8553.74, 8527.17, 8548.26, 45.247, False, None,
               RECV)
    ]  # fmt: skip


def test_swap_candle_volume_is_the_base_currency_not_contracts() -> None:
    (bar,) = parse_events(OkxAdapter(), SWAP_CANDLE, RECV)
    assert bar.symbol == "BTC-USDT-PERP" and bar.volume == 452.47 and bar.closed is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"0"]]', '"2"]]'),  # confirm is "0" or "1"
        ('"0"]]', "0]]"),
        ('"8553.74"', '"8500"'),  # high below the open
        ('"45.247"', '"-1"'),
        ('"1597026360000"', '"soon"'),
        (',"0"]]', "]]"),  # a row without confirm
        ('"BTC-USDT"', '"NOT AN INST"'),
    ],
)
def test_malformed_candles(old: str, new: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_events(OkxAdapter(), SPOT_CANDLE.replace(old, new), RECV)
