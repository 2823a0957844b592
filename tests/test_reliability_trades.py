"""TradeSequencer and Backfill: holes, duplicates, order, reconnects, REST backfill."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmux.errors import ConfigError
from wsmux.model import Side, Trade
from wsmux.reliability import (
    Backfill,
    IdPolicy,
    IdRange,
    TradeGap,
    TradeSequencer,
    TradeVerdict,
    plan_requests,
)

V = TradeVerdict


def t(
    tid: int | str | None, ts: int | None = None, *, venue: str = "binance", symbol: str = "BTC-USDT", recv: int = 0
) -> Trade:
    return Trade(venue, symbol, 1.0, 1.0, Side.BUY, None if tid is None else str(tid), ts, recv)


def test_contiguous_ids() -> None:
    seq = TradeSequencer()
    assert seq.policy("binance") is IdPolicy.CONTIGUOUS
    got = [seq.on_trade(t(i, ts=i * 10)) for i in (100, 101, 102)]
    assert got == [V.NEW, V.NEW, V.NEW]
    assert seq.on_trade(t(106, ts=1060, recv=5)) is V.GAP
    assert seq.take_gaps() == [TradeGap("binance", "BTC-USDT", 103, 105, 1020, 1060, True)]
    assert seq.take_gaps() == []
    assert seq.missing("binance", "BTC-USDT") == [IdRange(103, 105)]
    assert seq.on_trade(t(104)) is V.LATE  # splits the hole
    assert seq.missing("binance", "BTC-USDT") == [IdRange(103, 103), IdRange(105, 105)]
    assert seq.on_trade(t(104)) is V.DUPLICATE
    assert seq.on_trade(t(106)) is V.DUPLICATE
    assert seq.on_trade(t(101)) is V.DUPLICATE
    assert seq.on_trade(t(99)) is V.STALE  # before the tape began
    assert seq.on_trade(t(103)) is V.LATE
    assert seq.on_trade(t(105)) is V.LATE
    assert seq.missing("binance", "BTC-USDT") == []
    assert seq.on_trade(t(107)) is V.NEW
    assert seq.last_id("binance", "BTC-USDT") == 107
    s = seq.stats
    assert (s.new, s.gaps, s.missing_ids, s.late, s.duplicates, s.stale) == (4, 1, 3, 3, 3, 1)
    assert TradeGap("x", "y", 1, 3, None, None).count == 3
    assert TradeGap("x", "y", None, None, 1, 2, False).count is None
    seq._check()


def test_state_survives_a_reconnect_until_forgotten() -> None:
    seq = TradeSequencer()
    for i in range(1, 6):
        seq.on_trade(t(i, ts=i))
    seq.interrupted("binance", 100)  # contiguous: nothing to do, the ids will tell
    # after the reconnect the venue re-sends recent trades, then new ones
    got = [seq.on_trade(t(i, ts=i)) for i in (3, 4, 5, 9, 10)]
    assert got == [V.DUPLICATE, V.DUPLICATE, V.DUPLICATE, V.GAP, V.NEW]
    assert seq.take_gaps() == [TradeGap("binance", "BTC-USDT", 6, 8, 5, 9, True)]
    seq.forget("binance", "BTC-USDT")
    assert seq.on_trade(t(500)) is V.NEW  # a fresh tape
    assert seq.missing("binance", "BTC-USDT") == []
    seq.forget("binance")
    assert seq.last_id("binance", "BTC-USDT") is None


def test_monotonic_ids() -> None:
    seq = TradeSequencer(max_seen=3)
    assert seq.policy("okx") is IdPolicy.MONOTONIC
    k = {"venue": "okx"}
    assert [seq.on_trade(t(i, **k)) for i in (10, 15, 13, 15, 20, 30)] == [
        V.NEW,
        V.NEW,
        V.LATE,
        V.DUPLICATE,
        V.NEW,
        V.NEW,
    ]
    # remembered (by first insertion): 13, 20, 30; 10 then 15 were evicted: horizon 15
    assert seq.on_trade(t(14, **k)) is V.STALE  # at or below the horizon: cannot tell
    assert seq.on_trade(t(13, **k)) is V.DUPLICATE
    assert seq.on_trade(t(17, **k)) is V.LATE  # above the horizon, not remembered, below last
    assert seq.take_gaps() == []  # holes are invisible under this policy


def test_opaque_unnumbered_and_bad_ids() -> None:
    seq = TradeSequencer(max_seen=2)
    k = {"venue": "bybit-linear"}
    assert [seq.on_trade(t(x, **k)) for x in ("u-1", "u-2", "u-1", "u-3", "u-1")] == [
        V.NEW,
        V.NEW,
        V.DUPLICATE,
        V.NEW,
        V.NEW,  # "u-1" forgotten after two newer ids
    ]
    assert seq.on_trade(t(None, venue="kraken-v1")) is V.UNNUMBERED
    assert seq.on_trade(t("abc")) is V.BAD_ID  # binance ids are integers
    assert V.BAD_ID.deliver and V.UNNUMBERED.deliver and V.LATE.deliver and V.GAP.deliver
    assert not V.DUPLICATE.deliver and not V.STALE.deliver
    assert seq.stats.unnumbered == 1 and seq.stats.bad_ids == 1
    custom = TradeSequencer(policies={"x": IdPolicy.CONTIGUOUS}, default_policy=IdPolicy.OPAQUE)
    assert custom.policy("x") is IdPolicy.CONTIGUOUS and custom.policy("binance") is IdPolicy.OPAQUE


def test_interruptions_give_inexact_gaps_where_ids_cannot_tell() -> None:
    seq = TradeSequencer()
    seq.on_trade(t(10, ts=1000, venue="okx"))
    seq.on_trade(t("a", ts=1000, venue="bybit"))
    seq.on_trade(t(None, ts=1000, venue="kraken-v1"))
    seq.on_trade(t(5, ts=1000))  # binance: contiguous, not marked
    for venue in ("okx", "bybit", "kraken-v1", "binance"):
        seq.interrupted(venue, 2000)
    assert seq.on_trade(t(10, ts=1000, venue="okx")) is V.DUPLICATE  # re-sent: no report yet
    assert seq.on_trade(t(12, ts=5000, venue="okx")) is V.NEW
    assert seq.on_trade(t("a", ts=1000, venue="bybit")) is V.DUPLICATE
    assert seq.on_trade(t("b", ts=6000, venue="bybit")) is V.NEW
    seq.on_trade(t(None, ts=7000, venue="kraken-v1"))
    seq.on_trade(t(6, ts=8000))
    assert seq.take_gaps() == [
        TradeGap("okx", "BTC-USDT", None, None, 1000, 5000, False),
        TradeGap("bybit", "BTC-USDT", None, None, 1000, 6000, False),
        TradeGap("kraken-v1", "BTC-USDT", None, None, 1000, 7000, False),
    ]
    seq.on_trade(t(13, ts=9000, venue="okx"))
    assert seq.take_gaps() == []  # reported once


def test_report_after_lets_reordered_trades_fill_in_first() -> None:
    seq = TradeSequencer(report_after_ns=100)
    seq.on_trade(t(1, recv=0))
    assert seq.on_trade(t(3, recv=10)) is V.GAP
    assert seq.on_trade(t(6, recv=20)) is V.GAP
    assert seq.on_trade(t(2, recv=30)) is V.LATE  # reordered by a redundant merge
    assert seq.take_gaps(now_ns=50) == []
    # no venue ts: the times are the receive stamps of the trades around the hole
    assert seq.take_gaps(now_ns=120) == [TradeGap("binance", "BTC-USDT", 4, 5, 10, 20, True)]
    assert seq.take_gaps(now_ns=500) == []


def test_holes_are_bounded() -> None:
    seq = TradeSequencer(max_holes=2)
    for i in (1, 3, 5, 7):  # holes 2, 4, 6
        seq.on_trade(t(i))
    assert seq.missing("binance", "BTC-USDT") == [IdRange(4, 4), IdRange(6, 6)]
    assert seq.stats.abandoned_ids == 1
    assert seq.on_trade(t(2)) is V.STALE  # beyond memory now
    assert seq.on_trade(t(4)) is V.LATE
    seq._check()


def test_plan_requests_chunks_each_hole() -> None:
    assert plan_requests([IdRange(1, 2500), IdRange(3000, 3000)], 1000) == [
        IdRange(1, 1000),
        IdRange(1001, 2000),
        IdRange(2001, 2500),
        IdRange(3000, 3000),
    ]
    assert plan_requests([], 10) == []
    assert len(IdRange(5, 9)) == 5 and list(IdRange(5, 7)) == [5, 6, 7]
    with pytest.raises(ConfigError):
        plan_requests([IdRange(1, 2)], 0)


def test_backfill_merges_without_duplicates_and_reports_what_is_missing() -> None:
    seq = TradeSequencer()
    seq.on_trade(t(100))
    seq.on_trade(t(130))  # hole 101..129
    seq.on_trade(t(140))  # hole 131..139
    bf = seq.backfill("binance", "BTC-USDT", max_per_request=20)
    assert bf.requests == [IdRange(101, 120), IdRange(121, 129), IdRange(131, 139)]
    assert not bf.complete
    # live: a late trade fills one id while the backfill runs
    assert seq.on_trade(t(105)) is V.LATE
    # the first REST answer: ids 95..120 (some too old, 105 already live, 110 twice)
    answer = [t(i) for i in range(95, 121)] + [t(110), t("junk"), t(None), t(150), t(111, symbol="ETH-USDT")]
    random.Random(1).shuffle(answer)
    got = bf.merge(answer)
    assert [x.trade_id for x in got] == [str(i) for i in range(101, 121) if i != 105]
    bf.done(IdRange(101, 120))
    # the second answer lacks 125 and 127 (the venue lost them too)
    got = bf.merge([t(i) for i in range(121, 130) if i not in (125, 127)])
    assert len(got) == 7
    bf.done(IdRange(121, 129))
    assert bf.pending() == [IdRange(131, 139)]
    bf.done(IdRange(131, 139))  # answered empty
    assert bf.complete
    assert bf.missing() == [IdRange(125, 125), IdRange(127, 127), IdRange(131, 139)]
    assert seq.stats.backfill_dropped == 12  # 95..100 (6), 105, the second 110, junk, None, 150, ETH
    assert seq.on_trade(t(121)) is V.DUPLICATE  # backfilled ids are seen for the live tape too
    with pytest.raises(ConfigError):
        Backfill(seq, "binance", "BTC-USDT", 0)


def test_fill_on_monotonic_and_opaque_tapes() -> None:
    seq = TradeSequencer()
    for i in (10, 20, 30):
        seq.on_trade(t(i, venue="okx"))
    got = seq.fill("okx", "BTC-USDT", [t(25, venue="okx"), t(20, venue="okx"), t(15, venue="okx"), t(40, venue="okx")])
    assert [x.trade_id for x in got] == ["15", "25"]  # 20 seen, 40 ahead of the live tape
    assert seq.on_trade(t(25, venue="okx")) is V.DUPLICATE
    seq.on_trade(t("a", venue="bybit"))
    got = seq.fill("bybit", "BTC-USDT", [t("c", venue="bybit"), t("a", venue="bybit"), t("b", venue="bybit")])
    assert [x.trade_id for x in got] == ["c", "b"]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.randoms(use_true_random=False), st.floats(0.0, 0.5), st.floats(0.0, 0.3))
def test_a_lossy_reordered_tape_is_accounted_exactly(n: int, rnd: random.Random, loss: float, dup: float) -> None:
    """Every id 1..n that arrived is delivered exactly once; ``missing`` is
    exactly the ids that did not arrive between the first and the last
    delivered; a full backfill closes every hole."""
    ids = [i for i in range(1, n + 1) if rnd.random() >= loss] or [1]
    stream = list(ids)
    for i in ids:  # duplicates, re-sent a little later
        if rnd.random() < dup:
            stream.insert(min(len(stream), stream.index(i) + rnd.randint(1, 5)), i)
    for _ in range(len(stream) // 10):  # local reordering
        j = rnd.randrange(len(stream))
        k = min(len(stream) - 1, j + rnd.randint(1, 3))
        stream[j], stream[k] = stream[k], stream[j]
    seq = TradeSequencer()
    delivered: list[int] = []
    for i in stream:
        verdict = seq.on_trade(t(i))
        if verdict.deliver:
            delivered.append(i)
        seq._check()
    start = stream[0]
    assert sorted(delivered) == sorted(set(i for i in ids if i >= start))
    top = max(delivered)
    expected_missing = {i for i in range(start, top + 1) if i not in set(ids)}
    got_missing = {i for r in seq.missing("binance", "BTC-USDT") for i in r}
    assert got_missing == expected_missing
    reported = {i for g in seq.take_gaps() for i in range(g.first_missing or 0, (g.last_missing or -1) + 1)}
    assert expected_missing <= reported
    bf = seq.backfill("binance", "BTC-USDT", max_per_request=7)
    assert all(len(r) <= 7 for r in bf.requests)
    got = bf.merge([t(i) for i in range(1, n + 1)])
    assert [int(x.trade_id or 0) for x in got] == sorted(expected_missing)
    for r in bf.requests:
        bf.done(r)
    assert bf.complete and bf.missing() == [] and seq.missing("binance", "BTC-USDT") == []


def test_config_errors() -> None:
    for kwargs in ({"max_seen": 0}, {"max_holes": 0}, {"report_after_ns": -1}):
        with pytest.raises(ConfigError):
            TradeSequencer(**kwargs)  # type: ignore[arg-type]
