"""DeribitAdapter: hand-written frames in the documented JSON-RPC format
(shared/exchanges/deribit.md), symbols (options included), subscriptions with
and without credentials, and the book rule through BookSync and the Feed."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any

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
from wsmux.book import BookSync, Continuity, SnapshotSource, Verdict
from wsmux.clock import ManualClock
from wsmux.credentials import Credentials
from wsmux.errors import ConfigError, RemoteError, UnknownMessage, WsmuxError
from wsmux.exchanges import get
from wsmux.exchanges.deribit import (
    DeribitAdapter,
    deribit_auth_params,
    deribit_symbol,
    deribit_unified,
    is_inverse,
)
from wsmux.exchanges.okx import okx_symbol
from wsmux.reliability import TradeSequencer, TradeVerdict
from wsmux.subscriptions import parse_symbol
from wsmux.testing import parse_events

MS = 1_000_000
RECV = 123_456_789
CREDS = Credentials(key="client-id", secret="client-secret")

# deribit.md, "Examples (2021 recording)"
SNAPSHOT = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.ETH-30JUL21-2800-C.raw","data":'
    '{"type":"snapshot","timestamp":1626993723632,"instrument_name":"ETH-30JUL21-2800-C",'
    '"change_id":13169025645,"bids":[["new",0.0015,4714.0]],"asks":[["new",0.0025,873.0]]}}}'
)
CHANGE = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-24SEP21-8000-P.raw","data":'
    '{"type":"change","timestamp":1626993724318,"prev_change_id":33195894164,'
    '"instrument_name":"BTC-24SEP21-8000-P","change_id":33195894355,"bids":[],"asks":[["new",0.001,2.6]]}}}'
)
TRADE = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":'
    '[{"trade_seq":30289432,"trade_id":"48079254","timestamp":1590484156350,"tick_direction":0,'
    '"price":8950.0,"mark_price":8948.9,"instrument_name":"BTC-PERPETUAL","index_price":8955.88,'
    '"direction":"sell","amount":10.0}]}}'
)


def note(channel: str, data: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


def book_frame(
    kind: str, bids: list[Any], asks: list[Any], change_id: int, prev: int | None = None, inst: str = "BTC-PERPETUAL"
) -> str:
    data: dict[str, Any] = {
        "type": kind,
        "timestamp": 1700000000000,
        "instrument_name": inst,
        "change_id": change_id,
        "bids": bids,
        "asks": asks,
    }
    if prev is not None:
        data["prev_change_id"] = prev
    return note(f"book.{inst}.100ms", data)


# --- registry, symbols -------------------------------------------------------------------


def test_registry() -> None:
    assert get("deribit") is DeribitAdapter
    assert DeribitAdapter.default_url == "wss://www.deribit.com/ws/api/v2"


@pytest.mark.parametrize(
    ("unified", "native"),
    [
        ("BTC-USD-PERP", "BTC-PERPETUAL"),
        ("BTC-USDC-PERP", "BTC_USDC-PERPETUAL"),
        ("BTC-USD-20210924", "BTC-24SEP21"),
        ("ETH-USD-20210806", "ETH-6AUG21"),
        ("BTC-USD-20210924-8000-P", "BTC-24SEP21-8000-P"),
        ("ETH-USD-20210730-2800-C", "ETH-30JUL21-2800-C"),
        ("XRP-USDC-20260130-1.5-C", "XRP_USDC-30JAN26-1d5-C"),
        ("BTC-USDC", "BTC_USDC"),
    ],
)
def test_symbols_round_trip(unified: str, native: str) -> None:
    assert deribit_symbol(unified) == native
    assert deribit_unified(native) == unified


@pytest.mark.parametrize(
    "native", ["BTC-FS-27MAR26_PERP", "BTC", "BTC-32JAN21", "BTC-1XYZ21", "BTC-24SEP21-8000-X", "btc-perpetual", ""]
)
def test_unified_of_names_wsmux_cannot_spell(native: str) -> None:
    assert deribit_unified(native) is None


def test_inverse_is_usd_counted_futures_only() -> None:
    assert is_inverse("BTC-PERPETUAL") and is_inverse("BTC-24SEP21")
    assert not is_inverse("BTC_USDC-PERPETUAL")
    assert not is_inverse("BTC-24SEP21-8000-P")
    assert not is_inverse("BTC_USDC")


def test_option_symbols_are_parsed_only_where_asked() -> None:
    assert parse_symbol("BTC-USD-20210924-8000-P", options=True) == ("BTC", "USD", "20210924-8000-P")
    assert parse_symbol("BTC-USD-20210924", options=True) == ("BTC", "USD", "20210924")
    with pytest.raises(UnknownSymbol, match="STRIKE"):
        parse_symbol("BTC-USD-20210924-8000-X", options=True)
    with pytest.raises(UnknownSymbol):
        parse_symbol("BTC-USD-20210924-8000-P")  # venues without options refuse them
    with pytest.raises(UnknownSymbol):
        okx_symbol("BTC-USD-20210924-8000-P")
    # a subscription may name an option; the venue decides
    assert Subscription("deribit", Channel.BOOK, "BTC-USD-20210924-8000-P").symbol.endswith("-P")
    for bad in ("BTC-USD-20210924-08000-P", "BTC-USD-20210924-1e5-C", "BTC-USD-20210924--1-C"):
        with pytest.raises(UnknownSymbol):
            parse_symbol(bad, options=True)


@pytest.mark.parametrize(
    ("channel", "symbol"),
    [
        (Channel.FUNDING, "BTC-USD-20210924"),
        (Channel.FUNDING, "BTC-USDC"),
        (Channel.OPEN_INTEREST, "BTC-USDC"),
        (Channel.LIQUIDATIONS, "ETH-USDC"),
        (Channel.TRADES, "BTC-USD"),  # no USD spot
        (Channel.TRADES, "BTC-USD-20211331"),  # month 13
    ],
)
def test_channels_the_instrument_lacks(channel: Channel, symbol: str) -> None:
    with pytest.raises(UnknownSymbol):
        DeribitAdapter().check(Subscription("deribit", channel, symbol))


def test_check_refuses_l3() -> None:
    with pytest.raises(UnknownChannel):
        DeribitAdapter().check(Subscription("deribit", Channel.L3, "BTC-USD-PERP"))


# --- subscriptions ---------------------------------------------------------------------------


def sent(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m) for m in messages]


def test_subscribe_uses_100ms_without_credentials() -> None:
    adapter = DeribitAdapter()
    subs = [
        *book("deribit", "BTC-USD-PERP"),
        *trades("deribit", "BTC-USD-PERP"),
        *quotes("deribit", "BTC-USD-PERP"),
        *funding("deribit", "BTC-USD-PERP"),
        *candles("deribit", "BTC-USD-PERP"),
    ]
    (msg,) = sent(adapter.subscribe(subs))
    assert msg == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "public/subscribe",
        "params": {
            "channels": [
                "book.BTC-PERPETUAL.100ms",
                "trades.BTC-PERPETUAL.100ms",
                "quote.BTC-PERPETUAL",
                "ticker.BTC-PERPETUAL.100ms",
                "chart.trades.BTC-PERPETUAL.1",
            ]
        },
    }


def test_shared_channels_are_counted() -> None:
    """trades.* serves trades and liquidations, ticker.* funding and open
    interest: subscribed once, unsubscribed after the last user."""
    adapter = DeribitAdapter()
    assert sent(adapter.subscribe(trades("deribit", "BTC-USD-PERP")))[0]["params"]["channels"] == [
        "trades.BTC-PERPETUAL.100ms"
    ]
    assert adapter.subscribe(liquidations("deribit", "BTC-USD-PERP")) == []
    assert adapter.subscribe(open_interest("deribit", "BTC-USD-PERP")) != []
    assert adapter.subscribe(funding("deribit", "BTC-USD-PERP")) == []
    assert adapter.unsubscribe(trades("deribit", "BTC-USD-PERP")) == []
    (msg,) = sent(adapter.unsubscribe(liquidations("deribit", "BTC-USD-PERP")))
    assert msg["method"] == "public/unsubscribe"
    assert msg["params"] == {"channels": ["trades.BTC-PERPETUAL.100ms"]}
    assert adapter.unsubscribe(liquidations("deribit", "BTC-USD-PERP")) == []  # not subscribed any more
    adapter.reset()  # a new connection subscribes everything again
    assert adapter.subscribe(funding("deribit", "BTC-USD-PERP")) != []


def test_subscribe_splits_into_requests_of_100_channels() -> None:
    symbols = [f"BTC-USD-2026{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, 13)]
    messages = sent(DeribitAdapter().subscribe(book("deribit", *symbols)))
    assert [len(m["params"]["channels"]) for m in messages] == [100, 44]
    assert [m["id"] for m in messages] == [1, 2]


def test_credentials_authenticate_first_and_use_raw() -> None:
    clock = ManualClock(wall_ns=1_700_000_000_123 * MS)
    adapter = DeribitAdapter(credentials=CREDS, clock=clock)
    auth, sub = sent(adapter.subscribe(book("deribit", "BTC-USD-PERP")))
    assert auth["method"] == "public/auth"
    params = auth["params"]
    assert params["grant_type"] == "client_signature" and params["client_id"] == "client-id"
    assert params["timestamp"] == 1_700_000_000_123 and params["data"] == ""
    payload = f"{params['timestamp']}\n{params['nonce']}\n".encode()
    assert params["signature"] == hmac.new(b"client-secret", payload, hashlib.sha256).hexdigest()
    assert "client-secret" not in json.dumps(auth)
    assert sub["params"]["channels"] == ["book.BTC-PERPETUAL.raw"]
    # once per connection
    assert [m["method"] for m in sent(adapter.subscribe(trades("deribit", "BTC-USD-PERP")))] == ["public/subscribe"]
    adapter.reset()
    assert [m["method"] for m in sent(adapter.subscribe(trades("deribit", "BTC-USD-PERP")))] == [
        "public/auth",
        "public/subscribe",
    ]


def test_auth_params_are_deterministic() -> None:
    params = deribit_auth_params(CREDS, 1, "abc")
    assert params["signature"] == hmac.new(b"client-secret", b"1\nabc\n", hashlib.sha256).hexdigest()


def test_interval_options() -> None:
    with pytest.raises(ConfigError, match="credentials"):
        DeribitAdapter(interval="raw")
    with pytest.raises(ConfigError, match="interval"):
        DeribitAdapter(interval="1s")
    with pytest.raises(ConfigError):
        DeribitAdapter(credentials="key:secret")  # type: ignore[arg-type]
    assert DeribitAdapter(credentials=CREDS, interval="100ms").interval == "100ms"
    cls = DeribitAdapter.configured(credentials=CREDS, allow_insecure_loopback=True)  # a ws:// loopback mock
    assert cls(url="ws://127.0.0.1:1/").interval == "raw"
    with pytest.raises(ConfigError):
        DeribitAdapter.configured(interval="raw")


def test_heartbeat_and_limits() -> None:
    hb = DeribitAdapter.heartbeat
    assert hb.ping_message is not None
    assert json.loads(hb.ping_message)["method"] == "public/test"
    assert hb.ping_interval < hb.silence_timeout
    assert DeribitAdapter.limits.topics_per_message == 100
    assert DeribitAdapter.compressed is False


# --- answers and errors --------------------------------------------------------------------


def test_answers_are_quiet_and_checked() -> None:
    adapter = DeribitAdapter()
    adapter.subscribe([*book("deribit", "BTC-USD-PERP"), *trades("deribit", "BTC-USD-PERP")])
    ok = {"jsonrpc": "2.0", "id": 1, "result": ["trades.BTC-PERPETUAL.100ms", "book.BTC-PERPETUAL.100ms"]}
    assert adapter.parse(json.dumps(ok), RECV) == []
    assert adapter.parse('{"jsonrpc":"2.0","id":0,"result":{"version":"1.2.26"}}', RECV) == []  # public/test
    assert adapter.parse('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', RECV) == []


def test_a_channel_missing_from_the_result_was_refused() -> None:
    adapter = DeribitAdapter()
    adapter.subscribe([*book("deribit", "BTC-USD-PERP"), *trades("deribit", "BTC-USD-PERP")])
    with pytest.raises(SubscriptionRejected, match=r"trades\.BTC-PERPETUAL"):
        adapter.parse('{"jsonrpc":"2.0","id":1,"result":["book.BTC-PERPETUAL.100ms"]}', RECV)


def test_error_answers() -> None:
    adapter = DeribitAdapter(credentials=CREDS)
    adapter.subscribe(book("deribit", "BTC-USD-PERP"))  # id 1 auth, id 2 subscribe
    error = (
        '{"jsonrpc":"2.0","id":2,"error":{"code":13778,"message":"raw_subscriptions_not_available_for_unauthorized"}}'
    )
    with pytest.raises(SubscriptionRejected, match="13778") as info:
        adapter.parse(error, RECV)
    assert "book.BTC-PERPETUAL.raw" in str(info.value)
    with pytest.raises(SubscriptionRejected, match="13004"):
        adapter.parse('{"jsonrpc":"2.0","id":1,"error":{"code":13004,"message":"invalid_credentials"}}', RECV)
    with pytest.raises(RemoteError, match="10028") as other:
        adapter.parse('{"jsonrpc":"2.0","id":77,"error":{"code":10028,"message":"too_many_requests"}}', RECV)
    assert not isinstance(other.value, SubscriptionRejected | MalformedMessage)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        b"\xff\xfe",
        "[1,2]",
        '{"jsonrpc":"2.0"}',
        '{"jsonrpc":"2.0","id":3}',
        '{"method":"subscription","params":{}}',
        '{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms"}}',
        book_frame("snapshot", [["new", "30000", 10.0]], [], 5),  # price as text
        book_frame("snapshot", [["new", True, 10.0]], [], 5),  # a boolean is not a number
        book_frame("change", [["new", 30000.0]], [], 6, 5),  # short level
        book_frame("change", [["add", 30000.0, 10.0]], [], 6, 5),  # unknown action
        book_frame("change", [], [], "6", 5),  # change_id as text
        book_frame("change", [], [], 6, None),  # no prev_change_id
        book_frame("snapshot", [], [], 6, inst="BTC-XYZ"),
        note("trades.BTC-PERPETUAL.100ms", [{"price": 1.0}]),
        note(
            "trades.BTC-PERPETUAL.100ms",
            [
                {
                    "trade_seq": 1,
                    "trade_id": 5,
                    "timestamp": 1,
                    "price": 1.0,
                    "instrument_name": "BTC-PERPETUAL",
                    "direction": "sell",
                    "amount": 10.0,
                }
            ],
        ),
        note("ticker.BTC-PERPETUAL.100ms", {"instrument_name": "BTC-PERPETUAL", "timestamp": 1.5}),
        note("chart.trades.BTC-PERPETUAL", {"tick": 1}),
    ],
)
def test_malformed_frames_raise_malformed_message(frame: str | bytes) -> None:
    with pytest.raises(MalformedMessage):
        DeribitAdapter().parse(frame, RECV)


def test_unknown_messages_say_so() -> None:
    adapter = DeribitAdapter()
    with pytest.raises(UnknownMessage, match="deribit_price_index"):
        adapter.parse(note("deribit_price_index.btc_usd", {"price": 1.0}), RECV)
    with pytest.raises(UnknownMessage, match="announcements"):
        adapter.parse('{"jsonrpc":"2.0","method":"announcements","params":{}}', RECV)
    with pytest.raises(UnknownMessage, match="book type"):
        adapter.parse(book_frame("partial", [], [], 1), RECV)


def test_no_foreign_exception_escapes() -> None:
    adapter = DeribitAdapter()
    adapter.subscribe(trades("deribit", "BTC-USD-PERP"))
    frames = [SNAPSHOT, CHANGE, TRADE]
    for frame in frames:
        for cut in range(0, len(frame), 7):
            for mutated in (frame[:cut], frame[:cut] + "null" + frame[cut + 4 :], frame.replace("8950.0", "0")):
                try:
                    adapter.parse(mutated, RECV)
                except WsmuxError:
                    pass


# --- market data -------------------------------------------------------------------------------


def test_book_snapshot_from_the_sheet() -> None:
    (snap,) = DeribitAdapter().parse(SNAPSHOT, RECV)
    assert isinstance(snap, BookSnapshot)
    assert snap.symbol == "ETH-USD-20210730-2800-C"
    assert snap.bids == ((0.0015, 4714.0),) and snap.asks == ((0.0025, 873.0),)
    assert snap.seq == 13169025645 and snap.ts == 1626993723632 * MS and snap.recv_ns == RECV


def test_book_change_from_the_sheet() -> None:
    (update,) = parse_events(DeribitAdapter(), CHANGE, RECV)
    assert isinstance(update, BookUpdate)
    assert update.symbol == "BTC-USD-20210924-8000-P"
    assert update.bids == () and update.asks == ((0.001, 2.6),)
    assert (update.seq, update.prev_seq, update.first_seq) == (33195894355, 33195894164, None)


def test_delete_and_inverse_amounts() -> None:
    """BTC-PERPETUAL counts USD: a level of 300 USD at 30000 is 0.01 BTC; a
    delete is size 0 whatever amount it carries."""
    frame = book_frame("change", [["change", 30000.0, 300.0], ["delete", 29999.5, 0.0]], [["new", 30001, 20]], 9, 8)
    (update,) = parse_events(DeribitAdapter(), frame, RECV)
    assert isinstance(update, BookUpdate)
    assert update.bids == ((30000.0, 0.01), (29999.5, 0.0))
    assert update.asks == ((30001.0, 20 / 30001),)
    linear = book_frame("change", [["new", 30000.0, 0.5]], [], 9, 8, inst="BTC_USDC-PERPETUAL")
    (update,) = parse_events(DeribitAdapter(), linear, RECV)
    assert isinstance(update, BookUpdate) and update.bids == ((30000.0, 0.5),)


def test_trades_from_the_sheet() -> None:
    (trade,) = DeribitAdapter().parse(TRADE, RECV)
    assert trade == Trade(
        "deribit", "BTC-USD-PERP", 8950.0, 10.0 / 8950.0, Side.SELL, "48079254", 1590484156350 * MS, RECV, 30289432
    )


@pytest.mark.parametrize(
    ("flag", "sides"),
    [("T", [Side.SELL]), ("M", [Side.BUY]), ("MT", [Side.BUY, Side.SELL])],
)
def test_liquidation_trades(flag: str, sides: list[Side]) -> None:
    entry = {
        "trade_seq": 7,
        "trade_id": "ETH-9",
        "timestamp": 1700000000000,
        "price": 2000.0,
        "instrument_name": "ETH_USDC-PERPETUAL",
        "direction": "sell",
        "amount": 1.5,
        "liquidation": flag,
    }
    frame = note("trades.ETH_USDC-PERPETUAL.100ms", [entry])
    adapter = DeribitAdapter()
    adapter.subscribe([*trades("deribit", "ETH-USDC-PERP"), *liquidations("deribit", "ETH-USDC-PERP")])
    events = adapter.parse(frame, RECV)
    assert isinstance(events[0], Trade) and events[0].side is Side.SELL  # the taker sold
    liqs = events[1:]
    assert [e.side for e in liqs if isinstance(e, Liquidation)] == sides
    assert all(isinstance(e, Liquidation) and (e.price, e.size) == (2000.0, 1.5) for e in liqs)
    # trades only: no liquidation events; liquidations only: no trades
    only_trades = DeribitAdapter()
    only_trades.subscribe(trades("deribit", "ETH-USDC-PERP"))
    assert [type(e) for e in only_trades.parse(frame, RECV)] == [Trade]
    only_liqs = DeribitAdapter()
    only_liqs.subscribe(liquidations("deribit", "ETH-USDC-PERP"))
    assert {type(e) for e in only_liqs.parse(frame, RECV)} == {Liquidation}


def test_quote() -> None:
    data = {
        "timestamp": 1700000000000,
        "instrument_name": "BTC-PERPETUAL",
        "best_bid_price": 30000.0,
        "best_bid_amount": 600.0,
        "best_ask_price": 30000.5,
        "best_ask_amount": 0.0,
    }
    (quote,) = DeribitAdapter().parse(note("quote.BTC-PERPETUAL", data), RECV)
    assert isinstance(quote, Quote)
    assert (quote.bid_price, quote.bid_size) == (30000.0, 0.02)
    assert math.isnan(quote.ask_price) and math.isnan(quote.ask_size)  # an empty side


def test_ticker_funding_and_open_interest() -> None:
    data = {
        "timestamp": 1700000000000,
        "instrument_name": "BTC-PERPETUAL",
        "mark_price": 40000.0,
        "open_interest": 400_000_000.0,
        "current_funding": 0.0,
        "funding_8h": 0.00012,
    }
    adapter = DeribitAdapter()
    adapter.subscribe([*funding("deribit", "BTC-USD-PERP"), *open_interest("deribit", "BTC-USD-PERP")])
    fund, oi = adapter.parse(note("ticker.BTC-PERPETUAL.100ms", data), RECV)
    assert fund == Funding("deribit", "BTC-USD-PERP", 0.00012, None, 40000.0, 1700000000000 * MS, RECV)
    assert oi == OpenInterest("deribit", "BTC-USD-PERP", 10_000.0, 1700000000000 * MS, RECV)  # USD / mark
    funding_only = DeribitAdapter()
    funding_only.subscribe(funding("deribit", "BTC-USD-PERP"))
    assert [type(e) for e in funding_only.parse(note("ticker.BTC-PERPETUAL.100ms", data), RECV)] == [Funding]


def test_option_ticker_has_open_interest_in_contracts() -> None:
    data = {
        "timestamp": 1626993723632,
        "instrument_name": "ETH-30JUL21-2800-C",
        "mark_price": 0.001972,
        "open_interest": 12685.0,
    }
    (oi,) = DeribitAdapter().parse(note("ticker.ETH-30JUL21-2800-C.raw", data), RECV)
    assert oi == OpenInterest("deribit", "ETH-USD-20210730-2800-C", 12685.0, 1626993723632 * MS, RECV)


def test_candle() -> None:
    data = {
        "volume": 0.05,
        "tick": 1700000040000,
        "open": 30000.0,
        "low": 29990.0,
        "high": 30010.5,
        "cost": 1500.0,
        "close": 30005.0,
    }
    (candle,) = DeribitAdapter().parse(note("chart.trades.BTC-PERPETUAL.1", data), RECV)
    assert candle == Candle(
        "deribit", "BTC-USD-PERP", "1m", 1700000040000 * MS, 30000.0, 30010.5, 29990.0, 30005.0, 0.05, False, None, RECV
    )


# --- instruments ----------------------------------------------------------------------------------


def test_instruments() -> None:
    adapter = DeribitAdapter(rest_url="http://127.0.0.1:9")
    request = adapter.instruments_request()
    assert request.url == "http://127.0.0.1:9/api/v2/public/get_instruments"
    assert dict(request.params) == {"currency": "any", "expired": "false"}
    body = {
        "jsonrpc": "2.0",
        "result": [
            {
                "instrument_name": "BTC-PERPETUAL",
                "kind": "future",
                "settlement_period": "perpetual",
                "tick_size": 0.5,
                "min_trade_amount": 10.0,
                "contract_size": 10.0,
            },
            {
                "instrument_name": "BTC-24SEP21",
                "kind": "future",
                "settlement_period": "month",
                "tick_size": 0.5,
                "min_trade_amount": 10.0,
                "contract_size": 10.0,
            },
            {
                "instrument_name": "BTC-24SEP21-8000-P",
                "kind": "option",
                "tick_size": 0.0005,
                "min_trade_amount": 0.1,
                "contract_size": 1.0,
            },
            {"instrument_name": "BTC_USDC", "kind": "spot", "tick_size": 1, "min_trade_amount": 0.0001},
            {"instrument_name": "BTC-FS-24SEP21_PERP", "kind": "future_combo", "tick_size": 0.5},
        ],
    }
    got = adapter.parse_instruments(json.dumps(body).encode())
    assert [(i.symbol, i.native, i.kind, i.tick_size, i.lot_size, i.contract_size) for i in got] == [
        ("BTC-USD-PERP", "BTC-PERPETUAL", "perp", 0.5, 10.0, None),
        ("BTC-USD-20210924", "BTC-24SEP21", "future", 0.5, 10.0, None),
        ("BTC-USD-20210924-8000-P", "BTC-24SEP21-8000-P", "option", 0.0005, 0.1, None),
        ("BTC-USDC", "BTC_USDC", "spot", 1.0, 0.0001, None),
    ]
    for bad in (b"nope", b'{"result": 5}', b'{"result": [{"instrument_name": "BTC-PERPETUAL"}]}'):
        with pytest.raises(MalformedMessage):
            adapter.parse_instruments(bad)


# --- the book rule ----------------------------------------------------------------------------------


def test_rule_declares_the_sheet() -> None:
    rule = DeribitAdapter().book_rule("BTC-USD-PERP")
    assert rule.snapshot is SnapshotSource.STREAM and rule.continuity is Continuity.PREV_ID
    assert rule.checksum is None and rule.level() is Integrity.SEQUENCE


def run_sync(frames: list[str]) -> tuple[BookSync, list[Verdict]]:
    adapter = DeribitAdapter()
    sync = BookSync(adapter.book_rule("BTC-USD-PERP"))
    verdicts = []
    for frame in frames:
        for event in adapter.parse(frame, RECV):
            verdicts.append(sync.on_snapshot(event) if isinstance(event, BookSnapshot) else sync.on_update(event))  # type: ignore[arg-type]
    return sync, verdicts


def test_change_id_chain() -> None:
    sync, verdicts = run_sync(
        [
            book_frame("snapshot", [["new", 100.0, 1000.0]], [["new", 101.0, 1010.0]], 10),
            book_frame("change", [["change", 100.0, 500.0]], [], 15, 10),
            book_frame("change", [], [["delete", 101.0, 0.0], ["new", 102.0, 102.0]], 16, 15),
        ]
    )
    assert verdicts == [Verdict.SYNCED, Verdict.APPLIED, Verdict.APPLIED]
    assert sync.book.depth() == (((100.0, 5.0),), ((102.0, 1.0),))


def test_broken_chain_is_a_gap() -> None:
    sync, verdicts = run_sync(
        [
            book_frame("snapshot", [["new", 100.0, 1000.0]], [["new", 101.0, 1010.0]], 10),
            book_frame("change", [["change", 100.0, 500.0]], [], 20, 15),
        ]
    )
    assert verdicts == [Verdict.SYNCED, Verdict.GAP]
    assert not sync.valid and (sync.expected, sync.received) == (10, 15)


def test_feed_gap_resubscribes_the_book() -> None:
    adapter = DeribitAdapter()
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    sub = Subscription("deribit", Channel.BOOK, "BTC-USD-PERP")
    feed.add_book(sub)
    adapter.subscribe([sub])
    feed.on_frame(book_frame("snapshot", [["new", 100.0, 1000.0]], [["new", 101.0, 1010.0]], 10), RECV)
    feed.on_frame(book_frame("change", [["change", 100.0, 500.0]], [], 20, 15), RECV)
    (action,) = feed.take_actions()
    assert isinstance(action, Send)
    assert [json.loads(m)["method"] for m in action.messages] == ["public/unsubscribe", "public/subscribe"]
    assert all(json.loads(m)["params"]["channels"] == ["book.BTC-PERPETUAL.100ms"] for m in action.messages)


@pytest.mark.parametrize(
    "level", [["new", 1e300, 10.0], ["new", 0.0, 10.0], ["new", -5.0, 10.0], ["change", 100.0, -1.0]]
)
def test_absurd_numbers_flag_the_book_and_resync(level: list[Any]) -> None:
    adapter = DeribitAdapter()
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    sub = Subscription("deribit", Channel.BOOK, "BTC-USD-PERP")
    feed.add_book(sub)
    adapter.subscribe([sub])
    feed.on_frame(book_frame("snapshot", [["new", 100.0, 1000.0]], [["new", 101.0, 1010.0]], 10), RECV)
    assert feed.syncs["BTC-USD-PERP"].valid
    feed.on_frame(book_frame("change", [level], [], 11, 10), RECV)
    assert not feed.syncs["BTC-USD-PERP"].valid
    assert [e.reason for e in events if isinstance(e, Gap)] == [GapReason.BAD_DATA]
    assert not any(isinstance(e, BookUpdate) for e in events)
    assert len(feed.take_actions()) == 1  # resubscribed


def test_trade_ids_are_opaque_to_the_trade_sequencer() -> None:
    """Deribit's trade_id is text (deribit.md): deduped, never a bad id."""
    sequencer = TradeSequencer()
    (trade,) = DeribitAdapter().parse(TRADE.replace('"48079254"', '"ETH-48079254"'), RECV)
    assert isinstance(trade, Trade) and trade.trade_id == "ETH-48079254"
    assert sequencer.on_trade(trade) is TradeVerdict.NEW
    assert sequencer.on_trade(trade) is TradeVerdict.DUPLICATE
    assert sequencer.stats.bad_ids == 0
