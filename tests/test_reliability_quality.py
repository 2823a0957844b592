"""QualityGate: verdicts, counters, sequence rules, and no retained allocation on the OK path."""

from __future__ import annotations

import itertools
import math
import tracemalloc

import pytest

from wsmux.errors import ConfigError
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Connected,
    Funding,
    L3Snapshot,
    Liquidation,
    OpenInterest,
    OrderAction,
    OrderUpdate,
    Quote,
    Side,
    Trade,
)
from wsmux.reliability import Quality, QualityGate

NOW = 1_700_000_000_000_000_000
S = 1_000_000_000
NAN = math.nan
INF = math.inf


def trade(
    price: float = 100.0, size: float = 1.0, ts: int | None = NOW, seq: int | None = None, symbol: str = "BTC-USDT"
) -> Trade:
    return Trade("binance", symbol, price, size, Side.BUY, "1", ts, NOW, seq)


def quote(
    bid: float = 99.0,
    ask: float = 100.0,
    bid_size: float = 1.0,
    ask_size: float = 1.0,
    ts: int | None = NOW,
    seq: int | None = None,
) -> Quote:
    return Quote("binance", "BTC-USDT", bid, bid_size, ask, ask_size, ts, NOW, seq)


@pytest.mark.parametrize(
    ("event", "verdict"),
    [
        (trade(), Quality.OK),
        (trade(price=0.0), Quality.BAD_PRICE),
        (trade(price=-1.0), Quality.BAD_PRICE),
        (trade(price=NAN), Quality.BAD_PRICE),
        (trade(price=INF), Quality.BAD_PRICE),
        (trade(size=0.0), Quality.OK),
        (trade(size=-0.1), Quality.BAD_SIZE),
        (trade(size=NAN), Quality.BAD_SIZE),
        (trade(size=INF), Quality.BAD_SIZE),
        (trade(ts=NOW + 5 * S), Quality.OK),
        (trade(ts=NOW + 5 * S + 1), Quality.TS_FUTURE),
        (trade(ts=NOW - 60 * S), Quality.OK),
        (trade(ts=NOW - 60 * S - 1), Quality.TS_PAST),
        (trade(ts=None), Quality.OK),
        (quote(), Quality.OK),
        (quote(bid=100.0), Quality.CROSSED_QUOTE),  # locked
        (quote(bid=101.0), Quality.CROSSED_QUOTE),
        (quote(bid=NAN, bid_size=NAN), Quality.OK),  # empty bid side
        (quote(ask=NAN, ask_size=NAN), Quality.OK),
        (quote(bid=NAN, ask=NAN, bid_size=NAN, ask_size=NAN), Quality.OK),
        (quote(bid=0.0), Quality.BAD_PRICE),
        (quote(ask=-5.0), Quality.BAD_PRICE),
        (quote(bid_size=-1.0), Quality.BAD_SIZE),
        (quote(ask_size=NAN), Quality.OK),  # size unknown (2021 Coinbase ticker)
        (quote(ask_size=INF), Quality.BAD_SIZE),
        (quote(ts=NOW + 6 * S), Quality.TS_FUTURE),
        (quote(ts=NOW - 61 * S), Quality.TS_PAST),
        (Liquidation("binance-usdm", "X", Side.SELL, 10.0, 1.0, NOW, NOW), Quality.OK),
        (Liquidation("binance-usdm", "X", Side.SELL, 0.0, 1.0, NOW, NOW), Quality.BAD_PRICE),
        (Liquidation("binance-usdm", "X", Side.SELL, 10.0, -1.0, NOW, NOW), Quality.BAD_SIZE),
        (Liquidation("binance-usdm", "X", Side.SELL, 10.0, 1.0, NOW - 61 * S, NOW), Quality.TS_PAST),
        (Funding("okx", "X", -0.001, None, None, NOW, NOW), Quality.OK),
        (Funding("okx", "X", NAN, None, None, NOW, NOW), Quality.BAD_VALUE),
        (Funding("okx", "X", 0.001, None, -1.0, NOW, NOW), Quality.BAD_PRICE),
        (Funding("okx", "X", 0.001, None, 5.0, NOW + 6 * S, NOW), Quality.TS_FUTURE),
        (OpenInterest("okx", "X", 0.0, None, NOW), Quality.OK),
        (OpenInterest("okx", "X", -1.0, None, NOW), Quality.BAD_VALUE),
        (OpenInterest("okx", "X", INF, None, NOW), Quality.BAD_VALUE),
        (OpenInterest("okx", "X", 1.0, NOW - 61 * S, NOW), Quality.TS_PAST),
        (OrderUpdate("coinbase", "X", OrderAction.ADD, "o", BookSide.BID, 0.0, 1.0, None, NOW), Quality.BAD_PRICE),
        (OrderUpdate("coinbase", "X", OrderAction.REMOVE, "o", BookSide.BID, 0.0, 0.0, None, NOW), Quality.OK),
        (OrderUpdate("coinbase", "X", OrderAction.CHANGE, "o", BookSide.BID, 1.0, NAN, None, NOW), Quality.BAD_SIZE),
        (
            OrderUpdate("coinbase", "X", OrderAction.FILL, "o", BookSide.ASK, 1.0, 2.0, NOW + 9 * S, NOW),
            Quality.TS_FUTURE,
        ),
        (BookUpdate("binance", "X", ((0.0, 1.0),), (), NOW, NOW), Quality.OK),  # levels: BookSync's job
        (BookUpdate("binance", "X", (), (), NOW + 6 * S, NOW), Quality.TS_FUTURE),
        (BookSnapshot("binance", "X", (), (), NOW - 70 * S, NOW), Quality.TS_PAST),
        (L3Snapshot("coinbase", "X", (), NOW + 6 * S, NOW), Quality.TS_FUTURE),
        (Connected("binance", 1, "wss://x", NOW), Quality.OK),
    ],
)
def test_verdicts(event: object, verdict: Quality) -> None:
    gate = QualityGate()
    assert gate.check(event) is verdict  # type: ignore[arg-type]
    assert verdict.ok is (verdict is Quality.OK)
    assert gate.bad == (0 if verdict.ok else 1)


def test_counts_per_symbol_and_reason() -> None:
    gate = QualityGate()
    gate.check(trade(price=0.0))
    gate.check(trade(price=0.0))
    gate.check(trade(size=-1.0))
    gate.check(trade(price=0.0, symbol="ETH-USDT"))
    gate.check(trade())
    assert gate.counts == {
        ("binance", "BTC-USDT"): {Quality.BAD_PRICE: 2, Quality.BAD_SIZE: 1},
        ("binance", "ETH-USDT"): {Quality.BAD_PRICE: 1},
    }
    assert gate.count("binance", "BTC-USDT", Quality.BAD_PRICE) == 2
    assert gate.count("binance", "XRP-USDT", Quality.BAD_PRICE) == 0
    assert gate.bad == 4


def test_sequence_backwards_is_flagged_once_per_reset() -> None:
    gate = QualityGate()
    assert [gate.check(trade(seq=s)) for s in (5, 6, 6, 4, 5, 7)] == [
        Quality.OK,
        Quality.OK,
        Quality.OK,  # equal: allowed
        Quality.SEQ_BACKWARDS,
        Quality.OK,  # the baseline moved to 4: a restarted numbering is flagged once
        Quality.OK,
    ]
    # per class: quotes and trades keep separate sequences
    assert gate.check(quote(seq=1)) is Quality.OK
    assert gate.check(quote(seq=0)) is Quality.SEQ_BACKWARDS
    # per symbol
    assert gate.check(trade(seq=1, symbol="ETH-USDT")) is Quality.OK


def test_book_snapshots_set_the_baseline_and_reset_forgets() -> None:
    gate = QualityGate()
    upd = lambda seq: BookUpdate("bybit", "BTC-USDT", (), (), None, NOW, seq)  # noqa: E731
    assert gate.check(upd(100)) is Quality.OK
    assert gate.check(BookSnapshot("bybit", "BTC-USDT", (), (), None, NOW, 1)) is Quality.OK  # u=1 restart
    assert gate.check(upd(2)) is Quality.OK
    assert gate.check(upd(1)) is Quality.SEQ_BACKWARDS
    l3 = lambda seq: OrderUpdate("coinbase", "X", OrderAction.REMOVE, "o", BookSide.BID, 1.0, 0.0, None, NOW, seq)  # noqa: E731
    assert gate.check(l3(10)) is Quality.OK
    assert gate.check(L3Snapshot("coinbase", "X", (), None, NOW, 3)) is Quality.OK
    assert gate.check(l3(4)) is Quality.OK
    gate.check(trade(seq=50))
    gate.reset_seq("okx")
    assert gate.check(trade(seq=10)) is Quality.SEQ_BACKWARDS
    gate.reset_seq("binance")
    assert gate.check(trade(seq=1)) is Quality.OK
    gate.reset_seq()
    assert gate.check(upd(0)) is Quality.OK


def test_knobs() -> None:
    gate = QualityGate(future_s=1.0, past_s=2.0, trade_past_s=600.0, check_levels=True, allow_locked=True)
    assert gate.check(trade(ts=NOW - 500 * S)) is Quality.OK  # re-sent history on subscribe
    assert gate.check(quote(ts=NOW - 3 * S)) is Quality.TS_PAST
    assert gate.check(quote(ts=NOW + 2 * S)) is Quality.TS_FUTURE
    assert gate.check(quote(bid=100.0)) is Quality.OK  # locked allowed
    assert gate.check(quote(bid=100.5)) is Quality.CROSSED_QUOTE
    assert gate.check(BookUpdate("b", "X", ((1.0, 0.0),), ((2.0, 1.0),), None, NOW)) is Quality.OK
    assert gate.check(BookUpdate("b", "X", ((1.0, 1.0),), ((0.0, 1.0),), None, NOW)) is Quality.BAD_PRICE
    assert gate.check(BookUpdate("b", "X", ((1.0, -1.0),), (), None, NOW)) is Quality.BAD_SIZE
    assert gate.check(BookSnapshot("b", "X", ((NAN, 1.0),), (), None, NOW)) is Quality.BAD_PRICE
    no_past = QualityGate(trade_past_s=math.inf)  # trades: no past check at all
    assert no_past.check(trade(ts=NOW - 10 * 86400 * S)) is Quality.OK
    assert no_past.check(quote(ts=NOW - 61 * S)) is Quality.TS_PAST
    for kwargs in ({"future_s": 0.0}, {"past_s": -1.0}, {"trade_past_s": 0.0}):
        with pytest.raises(ConfigError):
            QualityGate(**kwargs)  # type: ignore[arg-type]


def test_the_ok_path_retains_nothing() -> None:
    gate = QualityGate()
    events = [trade(seq=7), quote(seq=9), BookUpdate("binance", "BTC-USDT", ((1.0, 1.0),), (), NOW, NOW, 11)]
    for event in events:
        assert gate.check(event) is Quality.OK  # creates the per-symbol seq slots
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in itertools.repeat(None, 2000):  # no loop counter objects
            for event in events:
                gate.check(event)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after == before  # nothing retained
    assert peak - before < 512  # only transient ints of the timestamp arithmetic
