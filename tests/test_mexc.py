"""MexcAdapter (spot, protobuf) and MexcFuturesAdapter (JSON): hand-written
frames in the documented format (shared/exchanges/mexc.md), with both spot
decoders; the book rules through BookSync; the Feed's handling of binary frames.

Spot frames are built with the protobuf runtime from the published schema
(``_mexc_push.proto``), independently of the adapter's hand-written reader,
and one from hand-assembled wire bytes, independently of both decoders.
"""

from __future__ import annotations

import gzip
import json
import math

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    Funding,
    Integrity,
    MalformedMessage,
    Quote,
    RemoteError,
    Side,
    Subscription,
    SubscriptionRejected,
    Trade,
    UnknownChannel,
    UnknownSymbol,
    book,
    candles,
    funding,
    open_interest,
    quotes,
    trades,
)
from wsmux._pipeline import Feed
from wsmux.book import BookSync, Diff, Verdict
from wsmux.errors import ConfigError, UnknownMessage, WsmuxError
from wsmux.exchanges import _mexc_push_pb2, get, mexc
from wsmux.exchanges.mexc import FUTURES_RULE, SPOT_RULE, MexcAdapter, MexcFuturesAdapter
from wsmux.model import Instrument, OpenInterest
from wsmux.testing import parse_events

pb = _mexc_push_pb2
MS = 1_000_000
RECV = 987_654_321
DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms"
DEALS = "spot@public.aggre.deals.v3.api.pb@100ms"
TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms"
DECODERS = ["protobuf", "python"]


def spot(decoder: str = "protobuf", *symbols: str) -> MexcAdapter:
    adapter = MexcAdapter(decoder=decoder)  # type: ignore[arg-type]
    adapter.subscribe([Subscription("mexc", Channel.TRADES, s) for s in symbols or ("BTC-USDT",)])
    return adapter


def wrapper(channel: str, symbol: str = "BTCUSDT", send_ms: int = 1736411507002, **body: object) -> bytes:
    msg = pb.PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=send_ms)
    for name, value in body.items():
        getattr(msg, name).CopyFrom(value)
    return bytes(msg.SerializeToString())


def depth_push(bids: list[tuple[str, str]], asks: list[tuple[str, str]], first: str, last: str, **kw: object) -> bytes:
    item = pb.PublicAggreDepthV3ApiItem
    body = pb.PublicAggreDepthsV3Api(
        bids=[item(price=p, quantity=q) for p, q in bids],
        asks=[item(price=p, quantity=q) for p, q in asks],
        eventType=DEPTH,
        fromVersion=first,
        toVersion=last,
    )
    return wrapper(f"{DEPTH}@BTCUSDT", publicAggreDepths=body, **kw)  # type: ignore[arg-type]


# --- registry, symbols, subscribing -------------------------------------------------------------


def test_registry_and_declarations() -> None:
    assert get("mexc") is MexcAdapter and get("mexc-futures") is MexcFuturesAdapter
    assert MexcAdapter.channels == {Channel.BOOK, Channel.TRADES, Channel.QUOTES, Channel.CANDLES}
    assert MexcFuturesAdapter.channels == {
        Channel.BOOK,
        Channel.TRADES,
        Channel.FUNDING,
        Channel.QUOTES,
        Channel.OPEN_INTEREST,
        Channel.CANDLES,
    }
    assert MexcAdapter.limits.streams_per_connection == 30
    assert MexcAdapter.limits.max_connection_age == 24 * 3600
    assert MexcAdapter.heartbeat.ping_message == '{"method":"PING"}'
    assert MexcFuturesAdapter.heartbeat.ping_message == '{"method":"ping"}'
    assert MexcAdapter.binary_frames and not MexcFuturesAdapter.binary_frames
    assert MexcFuturesAdapter.compressed


def test_symbols() -> None:
    assert MexcAdapter().to_native("BTC-USDT") == "BTCUSDT"
    assert MexcFuturesAdapter().to_native("BTC-USDT-PERP") == "BTC_USDT"
    with pytest.raises(UnknownSymbol):
        MexcAdapter().to_native("BTC-USDT-PERP")
    with pytest.raises(UnknownSymbol):
        MexcFuturesAdapter().to_native("BTC-USDT")
    with pytest.raises(UnknownSymbol):
        MexcFuturesAdapter().to_native("BTC-USDT-20261225")
    with pytest.raises(UnknownChannel):
        MexcAdapter().check(Subscription("mexc", Channel.FUNDING, "BTC-USDT"))
    with pytest.raises(UnknownChannel):
        MexcFuturesAdapter().check(Subscription("mexc-futures", Channel.LIQUIDATIONS, "BTC-USDT-PERP"))


def test_decoder_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MexcAdapter().decoder == "protobuf"  # the test extra installs the runtime
    assert MexcAdapter(decoder="python").decoder == "python"
    with pytest.raises(ConfigError):
        MexcAdapter(decoder="fast")  # type: ignore[arg-type]
    monkeypatch.setattr(mexc, "_pb2", None)  # as without the wsmux[mexc] extra
    assert not mexc.protobuf_available()
    assert MexcAdapter().decoder == "python"
    with pytest.raises(ConfigError, match=r"wsmux\[mexc\]"):
        MexcAdapter(decoder="protobuf")


def test_spot_subscribe_messages_in_chunks_of_30() -> None:
    adapter = MexcAdapter()
    subs = [*book("mexc", "BTC-USDT"), *trades("mexc", "BTC-USDT"), *quotes("mexc", "ETH-USDT")]
    subs.append(*candles("mexc", "BTC-USDT"))
    (message,) = adapter.subscribe(subs)
    assert json.loads(message) == {
        "method": "SUBSCRIPTION",
        "params": [
            f"{DEPTH}@BTCUSDT",
            f"{DEALS}@BTCUSDT",
            f"{TICKER}@ETHUSDT",
            "spot@public.kline.v3.api.pb@BTCUSDT@Min1",
        ],
        "id": 1,
    }
    many = trades("mexc", *[f"C{i}-USDT" for i in range(31)])
    sent = [json.loads(m) for m in adapter.subscribe(many)]
    assert [len(m["params"]) for m in sent] == [30, 1] and [m["id"] for m in sent] == [2, 3]
    (unsub,) = adapter.unsubscribe(book("mexc", "BTC-USDT"))
    assert json.loads(unsub) == {"method": "UNSUBSCRIPTION", "params": [f"{DEPTH}@BTCUSDT"], "id": 4}


def test_futures_subscribe_messages() -> None:
    adapter = MexcFuturesAdapter()
    subs = [*book("mexc-futures", "BTC-USDT-PERP"), *trades("mexc-futures", "BTC-USDT-PERP")]
    subs += funding("mexc-futures", "BTC-USDT-PERP")
    subs += [*quotes("mexc-futures", "BTC-USDT-PERP"), *open_interest("mexc-futures", "BTC-USDT-PERP")]
    subs += candles("mexc-futures", "BTC-USDT-PERP")
    assert [json.loads(m) for m in adapter.subscribe(subs)] == [
        {"method": "sub.depth", "param": {"symbol": "BTC_USDT", "compress": False}, "gzip": False},
        {"method": "sub.deal", "param": {"symbol": "BTC_USDT"}, "gzip": False},
        {"method": "sub.funding.rate", "param": {"symbol": "BTC_USDT"}, "gzip": False},
        {"method": "sub.depth.full", "param": {"symbol": "BTC_USDT", "limit": 5}, "gzip": False},
        {"method": "sub.ticker", "param": {"symbol": "BTC_USDT"}, "gzip": False},
        {"method": "sub.kline", "param": {"symbol": "BTC_USDT", "interval": "Min1"}, "gzip": False},
    ]
    assert json.loads(adapter.unsubscribe(subs[1:2])[0])["method"] == "unsub.deal"


# --- spot acks and errors --------------------------------------------------------------------------


def test_spot_ack_pong_and_rejections() -> None:
    adapter = MexcAdapter()
    subs = [*book("mexc", "BTC-USDT"), *trades("mexc", "BTC-USDT")]
    adapter.subscribe(subs)
    names = f"{DEPTH}@BTCUSDT,{DEALS}@BTCUSDT"
    assert adapter.parse(json.dumps({"id": 1, "code": 0, "msg": names}), RECV) == []
    assert adapter.parse('{"id":0,"code":0,"msg":"PONG"}', RECV) == []
    assert adapter.parse(b'{"id":0,"code":0,"msg":"PONG"}', RECV) == []  # text handed over as bytes
    adapter.subscribe(subs)
    refusal = {"id": 2, "code": 0, "msg": f"Not Subscribed successfully! [{names}]. Reason: Blocked!"}
    with pytest.raises(SubscriptionRejected, match="Blocked"):
        adapter.parse(json.dumps(refusal), RECV)
    adapter.subscribe(subs)
    with pytest.raises(SubscriptionRejected, match="code 1"):  # an echo with a non-zero code
        adapter.parse(json.dumps({"id": 3, "code": 1, "msg": names}), RECV)
    adapter.subscribe(subs)
    with pytest.raises(SubscriptionRejected):  # only one of the two streams echoed
        adapter.parse(json.dumps({"id": 4, "code": 0, "msg": f"{DEPTH}@BTCUSDT"}), RECV)
    with pytest.raises(UnknownMessage):  # a reply to nothing we asked
        adapter.parse('{"id":77,"code":0,"msg":"hello"}', RECV)
    with pytest.raises(MalformedMessage):
        adapter.parse('{"id":1,"code":0,', RECV)
    adapter.reset()  # the old connection's requests are forgotten
    with pytest.raises(UnknownMessage):
        adapter.parse(json.dumps({"id": 1, "code": 0, "msg": names}), RECV)


# --- spot pushes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", DECODERS)
def test_depth_push_from_the_sheet(decoder: str) -> None:
    frame = depth_push([("92877.58", "0.00000000")], [], "10589632359", "10589632359")
    (diff,) = spot(decoder).parse(frame, RECV)
    assert isinstance(diff, Diff)
    assert (diff.seq, diff.first_seq, diff.prev_seq, diff.ts) == (
        10589632359,
        10589632359,
        10589632358,
        1736411507002 * MS,
    )
    (event,) = parse_events(spot(decoder), frame, RECV)
    assert event == BookUpdate(
        "mexc", "BTC-USDT", ((92877.58, 0.0),), (), 1736411507002 * MS, RECV, 10589632359, 10589632359, 10589632358
    )


@pytest.mark.parametrize("decoder", DECODERS)
def test_depth_push_from_hand_assembled_wire_bytes(decoder: str) -> None:
    """The wire format itself (field numbers and wire types of the sheet),
    independent of both decoders: wrapper field 1 channel, 3 symbol, 6
    sendTime varint, 313 body; body 2 bids item {1 price, 2 quantity}, 4 from, 5 to."""

    def ld(number: int, payload: bytes) -> bytes:
        key = (number << 3) | 2
        key_bytes = bytes([key]) if key < 0x80 else bytes([(key & 0x7F) | 0x80, key >> 7])
        return key_bytes + bytes([len(payload)]) + payload

    item = ld(1, b"100.5") + ld(2, b"2")
    body = (
        ld(2, item) + ld(1, ld(1, b"101") + ld(2, b"0")) + ld(4, b"7") + ld(5, b"9") + b"\x30\x05"
    )  # 6: unknown varint
    send = bytes([0x30, 0x81, 0x01])  # field 6 varint 129
    frame = ld(1, f"{DEPTH}@BTCUSDT".encode()) + ld(3, b"BTCUSDT") + send + ld(313, body)
    (event,) = parse_events(spot(decoder), frame, RECV)
    assert event == BookUpdate("mexc", "BTC-USDT", ((100.5, 2.0),), ((101.0, 0.0),), 129 * MS, RECV, 9, 7, 6)


@pytest.mark.parametrize("decoder", DECODERS)
def test_deals_give_the_taker_side_and_trade_id(decoder: str) -> None:
    item = pb.PublicAggreDealsV3ApiItem
    body = pb.PublicAggreDealsV3Api(
        deals=[
            item(price="93220.00", quantity="0.04438243", tradeType=2, time=1736409765051),
            item(price="93221.00", quantity="0.5", tradeType=1, time=1736409765052, tradeId="88"),
        ],
        eventType=DEALS,
    )
    frame = wrapper(f"{DEALS}@BTCUSDT", publicAggreDeals=body)
    assert spot(decoder).parse(frame, RECV) == [
        Trade("mexc", "BTC-USDT", 93220.0, 0.04438243, Side.SELL, None, 1736409765051 * MS, RECV),
        Trade("mexc", "BTC-USDT", 93221.0, 0.5, Side.BUY, "88", 1736409765052 * MS, RECV),
    ]


@pytest.mark.parametrize("decoder", DECODERS)
def test_book_ticker_is_a_quote(decoder: str) -> None:
    body = pb.PublicAggreBookTickerV3Api(
        bidPrice="93000.1", bidQuantity="1.5", askPrice="93000.2", askQuantity="0.25", version="42"
    )
    frame = wrapper(f"{TICKER}@BTCUSDT", publicAggreBookTicker=body)
    assert spot(decoder).parse(frame, RECV) == [
        Quote("mexc", "BTC-USDT", 93000.1, 1.5, 93000.2, 0.25, 1736411507002 * MS, RECV, 42)
    ]


@pytest.mark.parametrize("decoder", DECODERS)
def test_kline_is_a_forming_candle(decoder: str) -> None:
    body = pb.PublicSpotKlineV3Api(
        interval="Min1",
        windowStart=1736411460,
        openingPrice="1.0",
        closingPrice="4.0",
        highestPrice="5.0",
        lowestPrice="0.5",
        volume="12.5",
        amount="40",
        windowEnd=1736411520,
    )
    frame = wrapper("spot@public.kline.v3.api.pb@BTCUSDT@Min1", publicSpotKline=body)
    assert spot(decoder).parse(frame, RECV) == [
        Candle("mexc", "BTC-USDT", "1m", 1736411460 * 10**9, 1.0, 5.0, 0.5, 4.0, 12.5, False, 1736411507002 * MS, RECV)
    ]
    body.windowStart = 1736411460000  # in milliseconds: read as such
    body.interval = "Min1"
    frame = wrapper("spot@public.kline.v3.api.pb@BTCUSDT@Min1", publicSpotKline=body)
    assert spot(decoder).parse(frame, RECV)[0].start_ts == 1736411460 * 10**9  # type: ignore[attr-defined]
    body.interval = "Min5"
    frame = wrapper("spot@public.kline.v3.api.pb@BTCUSDT@Min5", publicSpotKline=body)
    with pytest.raises(UnknownMessage):
        spot(decoder).parse(frame, RECV)


def _bad_frames() -> list[tuple[str, bytes]]:
    good = depth_push([("1.5", "2")], [], "5", "6")
    ticker = pb.PublicAggreBookTickerV3Api(bidPrice="1", bidQuantity="1", askPrice="2", askQuantity="1")
    legacy = pb.PushDataV3ApiWrapper(channel="spot@public.bookTicker.v3.api.pb@BTCUSDT", symbol="BTCUSDT")
    legacy_bytes = bytes(legacy.SerializeToString()) + b"\xaa\x13" + bytes([len(ticker.SerializeToString())])
    legacy_bytes += bytes(ticker.SerializeToString())  # field 309 (not read by wsmux): unknown body
    return [
        ("truncated", good[:-3]),
        ("garbage", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
        ("group wire type", b"\x0b\x0c"),
        ("non-ASCII digit", depth_push([("\u0661.5", "2")], [], "5", "6")),
        ("underscore", depth_push([("1_000.5", "2")], [], "5", "6")),
        ("non-ASCII version", depth_push([("1.5", "2")], [], "\u0665", "6")),
        ("from after to", depth_push([("1.5", "2")], [], "7", "6")),
        ("empty version", depth_push([("1.5", "2")], [], "", "")),
        ("unsubscribed symbol", depth_push([("1.5", "2")], [], "5", "6", symbol="ETHUSDT")),
        ("unknown body", legacy_bytes),
        (
            "bad taker side",
            wrapper(
                f"{DEALS}@BTCUSDT",
                publicAggreDeals=pb.PublicAggreDealsV3Api(
                    deals=[pb.PublicAggreDealsV3ApiItem(price="1", quantity="1", tradeType=3)]
                ),
            ),
        ),
    ]


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(("name", "frame"), _bad_frames(), ids=[n for n, _ in _bad_frames()])
def test_bad_binary_frames_are_one_malformed_message(decoder: str, name: str, frame: bytes) -> None:
    adapter = spot(decoder)
    with pytest.raises(MalformedMessage) as info:
        parse_events(adapter, frame, RECV)
    assert isinstance(info.value, UnknownMessage) == (name in ("unknown body", "no body"))


@pytest.mark.parametrize("decoder", DECODERS)
def test_wrapper_without_a_body_is_unknown(decoder: str) -> None:
    frame = bytes(pb.PushDataV3ApiWrapper(channel="spot@public.some.new.channel", symbol="BTCUSDT").SerializeToString())
    with pytest.raises(UnknownMessage):
        spot(decoder).parse(frame, RECV)


def test_feed_takes_a_binary_frame_whose_bytes_look_like_a_non_ascii_digit() -> None:
    """Varint bytes D9 A0 read as UTF-8 are U+0660 (ARABIC-INDIC DIGIT ZERO):
    the Feed's text check must not refuse a protobuf frame for them (about 1 %
    of MEXC frames have such a pair in their millisecond timestamps)."""
    send_ms = (1736411507002 >> 14 << 14) | (0x20 << 7) | 0x59
    frame = depth_push([("1.5", "2")], [], "11", "12", send_ms=send_ms)
    assert b"\xd9\xa0" in frame and "\u0660" in frame.decode("utf-8", "replace")
    adapter = MexcAdapter()
    events: list[object] = []
    feed = Feed(adapter, events.append)
    feed.add_book(Subscription("mexc", Channel.BOOK, "BTC-USDT"))
    adapter.subscribe(book("mexc", "BTC-USDT"))
    feed.on_snapshot_body("BTC-USDT", b'{"lastUpdateId":10,"bids":[["1.0","1"]],"asks":[["2.0","1"]]}', RECV)
    feed.on_frame(frame, RECV)
    assert [type(e).__name__ for e in events if isinstance(e, Error | BookUpdate)] == ["BookUpdate"]
    # ... while a real non-ASCII digit in a decoded string is still one error
    feed.on_frame(depth_push([("\u0661.5", "2")], [], "13", "13"), RECV)
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1 and "ASCII" in errors[0].message


@pytest.mark.parametrize("decoder", DECODERS)
def test_no_foreign_exception_escapes(decoder: str) -> None:
    adapter = spot(decoder)
    good = depth_push([("1.5", "2")], [("2.5", "1")], "5", "6")
    for cut in range(len(good)):
        for frame in (good[:cut], good[:cut] + b"\x80", good[cut:]):
            try:
                parse_events(adapter, frame, RECV)
            except WsmuxError:
                pass


# --- spot book rule ------------------------------------------------------------------------------------


def snapshot(seq: int) -> BookSnapshot:
    return BookSnapshot("mexc", "BTC-USDT", ((1.0, 1.0),), ((2.0, 1.0),), None, RECV, seq)


def test_spot_rule_bridges_and_chains_versions() -> None:
    assert SPOT_RULE.level() is Integrity.SEQUENCE
    adapter = spot()
    sync = BookSync(SPOT_RULE)

    def push(first: int, last: int, price: str = "1.5") -> Diff:
        (diff,) = adapter.parse(depth_push([(price, "3")], [], str(first), str(last)), RECV)
        assert isinstance(diff, Diff)
        return diff

    assert sync.on_update(push(90, 100)) is Verdict.BUFFERED  # ends at the snapshot: in it already
    assert sync.on_update(push(101, 104)) is Verdict.BUFFERED  # starts right after it: the continuation
    assert sync.on_snapshot(snapshot(100)) is Verdict.SYNCED
    assert sync.book.seq == 104
    assert sync.on_update(push(105, 105)) is Verdict.APPLIED
    assert sync.on_update(push(104, 104)) is Verdict.STALE
    assert sync.on_update(push(107, 108)) is Verdict.GAP  # 106 is missing
    assert (sync.expected, sync.received) == (105, 106)


def test_spot_rule_refetches_a_snapshot_older_than_the_pushes() -> None:
    adapter = spot()
    sync = BookSync(SPOT_RULE)
    (diff,) = adapter.parse(depth_push([("1.5", "3")], [], "120", "130"), RECV)
    sync.on_update(diff)  # type: ignore[arg-type]
    assert sync.on_snapshot(snapshot(100)) is Verdict.REFETCH
    assert sync.on_snapshot(snapshot(125)) is Verdict.SYNCED


def test_spot_snapshot_request_and_body() -> None:
    adapter = MexcAdapter(rest_url="http://h/")
    request = adapter.snapshot_request("BTC-USDT", 50)
    assert request is not None and request.url == "http://h/api/v3/depth"
    assert request.params == (("symbol", "BTCUSDT"), ("limit", "1000"))
    assert adapter.snapshot_request("BTC-USDT", 9000).params[1] == ("limit", "5000")  # type: ignore[union-attr]
    body = b'{"lastUpdateId":77,"bids":[["10.5","1"],["10.4","2"]],"asks":[["10.6","3"]],"timestamp":5}'
    assert adapter.parse_snapshot("BTC-USDT", body, RECV) == BookSnapshot(
        "mexc", "BTC-USDT", ((10.5, 1.0), (10.4, 2.0)), ((10.6, 3.0),), 5 * MS, RECV, 77
    )
    with pytest.raises(RemoteError, match="-1121"):
        adapter.parse_snapshot("BTC-USDT", b'{"code":-1121,"msg":"Invalid symbol."}', RECV)
    for bad in (b'{"lastUpdateId":', b"[]", b'{"lastUpdateId":"7","bids":[],"asks":[]}', b'{"lastUpdateId":7}'):
        with pytest.raises(MalformedMessage):
            adapter.parse_snapshot("BTC-USDT", bad, RECV)
    with pytest.raises(MalformedMessage):
        adapter.parse_snapshot("BTC-USDT", '{"lastUpdateId":7,"bids":[["\u0661","1"]],"asks":[]}'.encode(), RECV)


def test_spot_instruments() -> None:
    adapter = MexcAdapter(rest_url="http://h")
    assert adapter.instruments_request().url == "http://h/api/v3/exchangeInfo"  # type: ignore[union-attr]
    body = json.dumps(
        {
            "symbols": [
                {
                    "symbol": "BTCUSDT",
                    "baseAsset": "BTC",
                    "quoteAsset": "USDT",
                    "quotePrecision": 2,
                    "baseSizePrecision": "0.000001",
                    "status": "1",
                },
                {"symbol": "weird", "baseAsset": "we-ird", "quoteAsset": "USDT"},
            ]
        }
    ).encode()
    assert adapter.parse_instruments(body) == [Instrument("mexc", "BTC-USDT", "BTCUSDT", "spot", 0.01, 0.000001)]
    with pytest.raises(MalformedMessage):
        adapter.parse_instruments(b'{"symbols":7}')


# --- futures ----------------------------------------------------------------------------------------------


def futures(*symbols: str) -> MexcFuturesAdapter:
    adapter = MexcFuturesAdapter()
    adapter.subscribe(trades("mexc-futures", *(symbols or ("BTC-USDT-PERP",))))
    return adapter


FUTURES_DEPTH = (
    '{"channel":"push.depth","data":{"asks":[[6859.5,3251,1]],"bids":[[6859.0,0,0]],"version":96801927},'
    '"symbol":"BTC_USDT","ts":1587442022003}'
)


def test_futures_depth_from_the_sheet() -> None:
    (event,) = parse_events(futures(), FUTURES_DEPTH, RECV)
    assert event == BookUpdate(
        "mexc-futures",
        "BTC-USDT-PERP",
        ((6859.0, 0.0),),
        ((6859.5, 3251.0),),
        1587442022003 * MS,
        RECV,
        96801927,
        96801927,
    )


def test_futures_push_of_a_contract_not_subscribed_here_is_named_anyway() -> None:
    frame = FUTURES_DEPTH.replace("BTC_USDT", "ETH_USDT")  # replay of a log: no subscribe call
    (event,) = parse_events(MexcFuturesAdapter(), frame, RECV)
    assert event.symbol == "ETH-USDT-PERP"


def test_futures_sizes_in_base_units_once_contract_sizes_are_known() -> None:
    adapter = futures()
    detail = (
        b'{"success":true,"code":0,"data":[{"symbol":"BTC_USDT","contractSize":0.0001,"priceUnit":0.1,"volUnit":1}]}'
    )
    instruments = adapter.parse_instruments(detail)
    assert instruments == [Instrument("mexc-futures", "BTC-USDT-PERP", "BTC_USDT", "perp", 0.1, 1.0, 0.0001)]
    adapter.use_instruments(instruments)
    (event,) = parse_events(adapter, FUTURES_DEPTH, RECV)
    assert event.asks == ((6859.5, 3251 * 0.0001),)  # type: ignore[attr-defined]
    (trade,) = adapter.parse(
        '{"channel":"push.deal","data":{"p":6860,"v":20,"T":1,"O":1,"M":2,"t":5},"symbol":"BTC_USDT","ts":6}', RECV
    )
    assert trade.size == 20 * 0.0001  # type: ignore[attr-defined]
    body = (
        b'{"success":true,"code":0,"data":{"asks":[[6860.0,100,2]],"bids":[[6859.5,10,1]],"version":9,"timestamp":3}}'
    )
    assert adapter.parse_snapshot("BTC-USDT-PERP", body, RECV) == BookSnapshot(
        "mexc-futures", "BTC-USDT-PERP", ((6859.5, 10 * 0.0001),), ((6860.0, 100 * 0.0001),), 3 * MS, RECV, 9
    )


def test_futures_coin_settled_contracts_stay_in_contracts() -> None:
    """A coin-settled contract's ``contractSize`` is USD (``settleCoin`` is the
    base coin): multiplying by it would report 100 BTC per contract, so its
    sizes stay in contracts while linear ones convert."""
    adapter = futures("BTC-USDT-PERP", "BTC-USD-PERP")
    detail = (
        b'{"success":true,"code":0,"data":['
        b'{"symbol":"BTC_USDT","baseCoin":"BTC","settleCoin":"USDT","contractSize":0.0001,"priceUnit":0.1,"volUnit":1},'
        b'{"symbol":"BTC_USD","baseCoin":"BTC","settleCoin":"BTC","contractSize":100,"priceUnit":0.5,"volUnit":1}]}'
    )
    linear, inverse = adapter.parse_instruments(detail)
    assert (linear.inverse, inverse.inverse, inverse.contract_size) == (False, True, 100.0)
    adapter.use_instruments([linear, inverse])
    deal = '{"channel":"push.deal","data":{"p":6860,"v":20,"T":1,"O":1,"M":2,"t":5},"symbol":"%s","ts":6}'
    (kept,) = adapter.parse(deal % "BTC_USD", RECV)
    assert kept.size == 20.0  # type: ignore[attr-defined]
    (converted,) = adapter.parse(deal % "BTC_USDT", RECV)
    assert converted.size == 20 * 0.0001  # type: ignore[attr-defined]


def test_futures_deals_single_and_list() -> None:
    adapter = futures()
    one = (
        '{"channel":"push.deal","data":{"p":6866.5,"v":4,"T":2,"O":3,"M":2,"t":1587442049632},'
        '"symbol":"BTC_USDT","ts":1}'
    )
    assert adapter.parse(one, RECV) == [
        Trade("mexc-futures", "BTC-USDT-PERP", 6866.5, 4.0, Side.SELL, None, 1587442049632 * MS, RECV)
    ]
    many = '{"channel":"push.deal","data":[{"p":1,"v":1,"T":1,"t":1},{"p":2,"v":2,"T":2,"t":2}],"symbol":"BTC_USDT"}'
    assert [t.side for t in adapter.parse(many, RECV)] == [Side.BUY, Side.SELL]  # type: ignore[attr-defined]


def test_futures_funding_under_either_name() -> None:
    adapter = futures()
    for key in ("rate", "fundingRate"):
        frame = json.dumps(
            {
                "channel": "push.funding.rate",
                "data": {"symbol": "BTC_USDT", key: 0.0005, "nextSettleTime": 1000},
                "ts": 7,
            }
        )
        assert adapter.parse(frame, RECV) == [
            Funding("mexc-futures", "BTC-USDT-PERP", 0.0005, 1000 * MS, None, 7 * MS, RECV)
        ]


def test_futures_acks_pong_and_errors() -> None:
    adapter = futures()
    assert adapter.parse('{"channel":"pong","data":1587453241453}', RECV) == []
    assert adapter.parse('{"channel":"rs.sub.depth","data":"success","ts":1}', RECV) == []
    with pytest.raises(SubscriptionRejected, match="Contract doesn't exist"):
        adapter.parse('{"channel":"rs.error","data":"Contract doesn\'t exist!","ts":1}', RECV)
    with pytest.raises(SubscriptionRejected):
        adapter.parse('{"channel":"rs.sub.deal","data":"failed","ts":1}', RECV)
    with pytest.raises(UnknownMessage):
        adapter.parse('{"channel":"push.index.price","data":{},"symbol":"BTC_USDT"}', RECV)
    for bad in (
        "{",
        "[]",
        '{"data":1}',
        '{"channel":"push.depth","data":{"asks":[],"bids":[],"version":"7"},"symbol":"BTC_USDT"}',
        '{"channel":"push.depth","data":{"asks":{},"bids":[],"version":7},"symbol":"BTC_USDT"}',
        '{"channel":"push.depth","data":{"asks":[],"bids":[],"version":7},"symbol":"BTCUSDT"}',
        '{"channel":"push.deal","data":{"p":1,"v":1,"T":5,"t":1},"symbol":"BTC_USDT"}',
        '{"channel":"push.deal","data":{"p":1,"v":1,"T":1,"t":"1"},"symbol":"BTC_USDT"}',
        '{"channel":"push.funding.rate","data":{"symbol":"BTC_USDT"}}',
    ):
        with pytest.raises(MalformedMessage):
            parse_events(adapter, bad, RECV)


def test_futures_gzip_frames() -> None:
    adapter = futures()
    raw = FUTURES_DEPTH.encode()
    assert adapter.decompress(gzip.compress(raw)) == raw
    assert adapter.decompress(raw) == raw  # not gzip: unchanged
    with pytest.raises(MalformedMessage):
        adapter.decompress(gzip.compress(raw)[:-6])


def test_futures_rule_and_snapshot() -> None:
    assert FUTURES_RULE.level() is Integrity.SEQUENCE
    adapter = futures()
    request = adapter.snapshot_request("BTC-USDT-PERP")
    assert request is not None and request.url == "https://contract.mexc.com/api/v1/contract/depth/BTC_USDT"
    sync = BookSync(FUTURES_RULE)

    def push(version: int) -> Diff:
        frame = FUTURES_DEPTH.replace("96801927", str(version))
        (diff,) = adapter.parse(frame, RECV)
        assert isinstance(diff, Diff)
        return diff

    for version in (9, 10, 11):
        sync.on_update(push(version))
    body = b'{"success":true,"code":0,"data":{"asks":[[7000.0,1,1]],"bids":[[6000.0,1,1]],"version":10}}'
    assert sync.on_snapshot(adapter.parse_snapshot("BTC-USDT-PERP", body, RECV)) is Verdict.SYNCED
    assert sync.book.seq == 11
    assert sync.on_update(push(13)) is Verdict.GAP
    with pytest.raises(RemoteError, match="1001"):
        adapter.parse_snapshot("BTC-USDT-PERP", b'{"success":false,"code":1001,"message":"contract not exist"}', RECV)
    with pytest.raises(MalformedMessage):
        adapter.parse_snapshot("BTC-USDT-PERP", b'{"success":true,"data":{"asks":[],"bids":[]}}', RECV)


# --- futures quotes, open interest and candles ------------------------------------------------------

FUTURES_TOP = (
    '{"channel":"push.depth.full","data":{"asks":[[6859.5,3251,1],[6860.0,10,1]],"bids":[[6859.0,12,2]],'
    '"version":96801930},"symbol":"BTC_USDT","ts":1587442022010}'
)
FUTURES_TICKER = (
    '{"channel":"push.ticker","data":{"symbol":"BTC_USDT","lastPrice":6859.5,"bid1":6859.0,"ask1":6859.5,'
    '"holdVol":2284742,"fundingRate":0.0001,"timestamp":1587442022003},"symbol":"BTC_USDT","ts":1587442022004}'
)
FUTURES_KLINE = (
    '{"channel":"push.kline","data":{"a":233.74,"c":6885,"h":6910.5,"interval":"Min1","l":6885,"o":6894.5,'
    '"q":1611754,"symbol":"BTC_USDT","t":1587448800},"symbol":"BTC_USDT","ts":1587448801000}'
)
"""Field names as MEXC's contract API docs give them (values illustrative)."""


def test_futures_quote_is_the_top_of_depth_full() -> None:
    assert parse_events(futures(), FUTURES_TOP, RECV) == [
        Quote("mexc-futures", "BTC-USDT-PERP", 6859.0, 12.0, 6859.5, 3251.0, 1587442022010 * MS, RECV, 96801930)
    ]
    empty = FUTURES_TOP.replace('"bids":[[6859.0,12,2]]', '"bids":[]')
    (quote,) = parse_events(futures(), empty, RECV)
    assert math.isnan(quote.bid_price) and quote.ask_price == 6859.5  # type: ignore[attr-defined]


def test_futures_open_interest_is_hold_vol() -> None:
    adapter = futures()
    assert parse_events(adapter, FUTURES_TICKER, RECV) == [
        OpenInterest("mexc-futures", "BTC-USDT-PERP", 2284742.0, 1587442022003 * MS, RECV)
    ]  # contracts until the contract size is known
    adapter.use_instruments([Instrument("mexc-futures", "BTC-USDT-PERP", "BTC_USDT", "perp", 0.1, 1.0, 0.0001)])
    (oi,) = parse_events(adapter, FUTURES_TICKER, RECV)
    assert oi.open_interest == pytest.approx(228.4742)  # type: ignore[attr-defined]


def test_futures_kline_is_a_forming_candle_in_base_units_once_known() -> None:
    adapter = futures()
    adapter.use_instruments([Instrument("mexc-futures", "BTC-USDT-PERP", "BTC_USDT", "perp", 0.1, 1.0, 0.0001)])
    (bar,) = parse_events(adapter, FUTURES_KLINE, RECV)
    assert bar == Candle(
        "mexc-futures", "BTC-USDT-PERP", "1m", 1587448800 * 10**9, 6894.5, 6910.5, 6885.0, 6885.0,
        pytest.approx(161.1754), False, 1587448801000 * MS, RECV,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (FUTURES_KLINE.replace('"Min1"', '"Min5"'), UnknownMessage),
        (FUTURES_KLINE.replace('"h":6910.5', '"h":6000'), MalformedMessage),
        (FUTURES_KLINE.replace('"t":1587448800', '"t":"1587448800"'), MalformedMessage),
        (FUTURES_TICKER.replace('"holdVol":2284742', '"holdVol":"many"'), MalformedMessage),
        (FUTURES_TICKER.replace('"holdVol":2284742', '"holdVol":-5'), MalformedMessage),
        (FUTURES_TOP.replace('"version":96801930', '"version":"96801930"'), MalformedMessage),
        (FUTURES_TOP.replace("[[6859.5,3251,1]", '[["x",3251,1]'), MalformedMessage),
    ],
)
def test_malformed_futures_quotes_tickers_and_klines(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_events(futures(), frame, RECV)
