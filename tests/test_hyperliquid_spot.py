"""Hyperliquid spot pairs: the ``spotMeta`` list, unified ``BASE-QUOTE`` ↔ the
venue's coin (``@<index>``, ``PURR/USDC``), and spot frames, on hand-written
bodies in the shape of shared/exchanges/hyperliquid.md ("Endpoints") and the
venue's ``spotMeta`` answer."""

from __future__ import annotations

import json

import pytest

from wsmux import BookSnapshot, Candle, Channel, Quote, Side, Subscription, Trade
from wsmux.errors import MalformedMessage, UnknownChannel, UnknownMessage, UnknownSymbol
from wsmux.exchanges.hyperliquid import HyperliquidAdapter
from wsmux.testing import MockHyperliquid, parse_events

RECV = 1_714_564_800_999_000_000
T_MS = 1714564800123

SPOT_META = {
    # token "index" is not the list position (USDC is 0, HYPE 150): pairs refer to the index field
    "tokens": [
        {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0, "isCanonical": True},
        {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1, "isCanonical": True},
        {"name": "HYPE", "szDecimals": 2, "weiDecimals": 8, "index": 150, "isCanonical": False},
        {"name": "kHYPE", "szDecimals": 2, "weiDecimals": 8, "index": 151, "isCanonical": False},
        {"name": "UBTC", "szDecimals": 5, "weiDecimals": 10, "index": 197, "isCanonical": False},
    ],
    "universe": [
        {"name": "PURR/USDC", "tokens": [1, 0], "index": 0, "isCanonical": True},
        {"name": "@107", "tokens": [150, 0], "index": 107, "isCanonical": False},
        {"name": "@140", "tokens": [151, 0], "index": 140, "isCanonical": False},
        {"name": "@142", "tokens": [197, 0], "index": 142, "isCanonical": False},
    ],
}
HYPE, PURR, UBTC = "HYPE-USDC", "PURR-USDC", "UBTC-USDC"


def sub(channel: Channel, symbol: str = HYPE) -> Subscription:
    return Subscription("hyperliquid", channel, symbol)


def spot_adapter(*subs: Subscription) -> HyperliquidAdapter:
    a = HyperliquidAdapter()
    a.use_instruments(a.parse_instruments(json.dumps(SPOT_META).encode()))
    a.subscribe(list(subs))
    return a


def sent(messages: list[str | bytes]) -> list[dict[str, object]]:
    return [json.loads(m) for m in messages]


# --- the instruments requests and the spotMeta body -------------------------------------------


def test_instruments_requests_post_meta_and_spot_meta() -> None:
    requests = HyperliquidAdapter(rest_url="http://127.0.0.1:1").instruments_requests()
    assert [(r.method, r.url, json.loads(r.body or b"")) for r in requests] == [
        ("POST", "http://127.0.0.1:1/info", {"type": "meta"}),
        ("POST", "http://127.0.0.1:1/info", {"type": "spotMeta"}),
    ]


def test_spot_meta_pairs_become_spot_instruments() -> None:
    listed = HyperliquidAdapter().parse_instruments(json.dumps(SPOT_META).encode())
    got = [(i.symbol, i.native, i.kind, i.lot_size, i.tick_size, i.contract_size) for i in listed]
    # kHYPE has no unified name; the lot is the BASE token's size step
    assert got == [
        (PURR, "PURR/USDC", "spot", 1.0, None, None),
        (HYPE, "@107", "spot", 0.01, None, None),
        (UBTC, "@142", "spot", 1e-5, None, None),
    ]


def test_tokens_without_an_index_field_are_found_by_position() -> None:
    meta = {
        "tokens": [{"name": "USDC", "szDecimals": 8}, {"name": "PURR", "szDecimals": 0}],
        "universe": [{"name": "PURR/USDC", "tokens": [1, 0], "index": 0}],
    }
    [purr] = HyperliquidAdapter().parse_instruments(json.dumps(meta).encode())
    assert (purr.symbol, purr.native) == (PURR, "PURR/USDC")


def test_pairs_sharing_a_unified_name_are_left_out_not_guessed() -> None:
    meta = json.loads(json.dumps(SPOT_META))
    meta["tokens"].append({"name": "HYPE", "szDecimals": 2, "index": 300})  # a second token named HYPE
    meta["universe"].append({"name": "@250", "tokens": [300, 0], "index": 250})
    symbols = [i.symbol for i in HyperliquidAdapter().parse_instruments(json.dumps(meta).encode())]
    assert symbols == [PURR, UBTC]


@pytest.mark.parametrize(
    "broken",
    [
        b'{"tokens": []}',  # no universe
        b'{"tokens": [], "universe": [{"name": "@1", "tokens": [1, 0], "index": 1}]}',  # unknown token
        b'{"tokens": [{"name": "A", "szDecimals": 1, "index": 0}, {"name": "B", "szDecimals": 1, "index": 1}],'
        b' "universe": [{"name": "@1", "tokens": [1, 0], "index": "1"}]}',  # index not an int
        b'{"tokens": [{"name": "A", "szDecimals": "1", "index": 0}, {"name": "B", "szDecimals": 1, "index": 1}],'
        b' "universe": [{"name": "@1", "tokens": [0, 1], "index": 1}]}',  # szDecimals not an int
        b'{"tokens": [{"name": "A", "szDecimals": 1}], "universe": [{"name": "@1", "tokens": [0], "index": 1}]}',
    ],
)
def test_a_broken_spot_meta_is_a_malformed_message(broken: bytes) -> None:
    with pytest.raises(MalformedMessage):
        HyperliquidAdapter().parse_instruments(broken)


def test_the_mock_spot_meta_parses_into_its_pairs() -> None:
    mock = MockHyperliquid(["BTC-USD-PERP", HYPE, PURR, "ZZZ-USDC"])
    status, body = mock.info(b'{"type":"spotMeta"}')
    assert status == 200
    natives = {i.symbol: i.native for i in HyperliquidAdapter().parse_instruments(body)}
    assert {HYPE: "@107", PURR: "PURR/USDC", "ZZZ-USDC": "@202"}.items() <= natives.items()
    assert "KHYPE-USDC" not in natives and len(natives) == 5  # plus two pairs the mock does not stream
    assert all(natives[s] == mock.coins[s] for s in (HYPE, PURR, "ZZZ-USDC"))


# --- symbols and subscriptions ----------------------------------------------------------------


def test_a_spot_symbol_before_the_list_is_an_explained_unknown_symbol() -> None:
    a = HyperliquidAdapter()
    for call in (lambda: a.subscribe([sub(Channel.BOOK)]), lambda: a.check(sub(Channel.TRADES))):
        with pytest.raises(UnknownSymbol, match="spotMeta instrument list, which is not loaded") as info:
            call()
        assert (info.value.venue, info.value.symbol) == ("hyperliquid", HYPE)


def test_spot_symbols_map_to_the_listed_coins() -> None:
    a = spot_adapter()
    assert (a.to_native(HYPE), a.to_native(PURR), a.to_native("BTC-USD-PERP")) == ("@107", "PURR/USDC", "BTC")
    with pytest.raises(UnknownSymbol, match="lists no spot pair 'HYPE-USDT'"):
        a.to_native("HYPE-USDT")
    with pytest.raises(UnknownSymbol):
        a.to_native("KHYPE-USDC")  # kHYPE has no unified name: never guessed from the upper-cased name


def test_spot_subscriptions_use_the_coin() -> None:
    a = spot_adapter()
    messages = a.subscribe([sub(Channel.BOOK), sub(Channel.TRADES, PURR), sub(Channel.QUOTES), sub(Channel.CANDLES)])
    assert sent(messages) == [
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "@107"}},
        {"method": "subscribe", "subscription": {"type": "trades", "coin": "PURR/USDC"}},
        {"method": "subscribe", "subscription": {"type": "bbo", "coin": "@107"}},
        {"method": "subscribe", "subscription": {"type": "candle", "coin": "@107", "interval": "1m"}},
    ]


@pytest.mark.parametrize("channel", [Channel.FUNDING, Channel.OPEN_INTEREST])
def test_funding_and_open_interest_are_for_perpetuals_only(channel: Channel) -> None:
    with pytest.raises(UnknownChannel, match="perpetuals only"):
        spot_adapter().check(sub(channel))


# --- frames -----------------------------------------------------------------------------------


def test_spot_book_trades_quotes_candles_carry_the_unified_symbol() -> None:
    a = spot_adapter(sub(Channel.BOOK), sub(Channel.TRADES, PURR), sub(Channel.QUOTES), sub(Channel.CANDLES))
    book = {
        "coin": "@107",
        "time": T_MS,
        "levels": [[{"px": "25.1", "sz": "12.5", "n": 3}], [{"px": "25.2", "sz": "1.04", "n": 1}]],
    }
    [snapshot] = parse_events(a, json.dumps({"channel": "l2Book", "data": book}), RECV)
    assert isinstance(snapshot, BookSnapshot) and snapshot.symbol == HYPE
    assert (snapshot.bids, snapshot.asks) == (((25.1, 12.5),), ((25.2, 1.04),))  # sizes in HYPE
    trade = {"coin": "PURR/USDC", "side": "A", "px": "0.2", "sz": "1500", "hash": "0x1", "time": T_MS, "tid": 7}
    [t] = parse_events(a, json.dumps({"channel": "trades", "data": [trade]}), RECV)
    assert isinstance(t, Trade) and (t.symbol, t.price, t.size, t.side) == (PURR, 0.2, 1500.0, Side.SELL)
    bbo = {"coin": "@107", "time": T_MS, "bbo": [{"px": "25.1", "sz": "12.5", "n": 3}, None]}
    [q] = parse_events(a, json.dumps({"channel": "bbo", "data": bbo}), RECV)
    assert isinstance(q, Quote) and (q.symbol, q.bid_price, q.bid_size) == (HYPE, 25.1, 12.5)
    candle = {"t": T_MS, "T": T_MS + 59_999, "s": "@107", "i": "1m", "o": "25", "c": "25.2", "h": "25.3",
              "l": "24.9", "v": "310.5", "n": 12}  # fmt: skip
    [c] = parse_events(a, json.dumps({"channel": "candle", "data": candle}), RECV)
    assert isinstance(c, Candle) and (c.symbol, c.volume) == (HYPE, 310.5)


def test_a_frame_of_an_unknown_spot_coin_is_an_unknown_message() -> None:
    a = spot_adapter(sub(Channel.BOOK))
    frame = json.dumps({"channel": "l2Book", "data": {"coin": "@999", "time": T_MS, "levels": [[], []]}})
    with pytest.raises(UnknownMessage, match="'@999'") as info:
        a.parse(frame, RECV)
    assert info.value.frame == frame
    trade = {"coin": "@142", "side": "B", "px": "1", "sz": "1", "hash": "0x1", "time": T_MS, "tid": 1}
    with pytest.raises(UnknownMessage, match="'@142'"):  # listed, but never subscribed
        a.parse(json.dumps({"channel": "trades", "data": [trade]}), RECV)
