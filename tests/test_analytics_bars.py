"""Bars and VWAP against independent batch computations (pandas), on generated
streams and on the recorded trades of ../shared/recordings; properties; exact sums."""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradegen import SECOND, T0, random_trades, recorded_events

from wsmux import Side, Trade
from wsmux.analytics import (
    Bar,
    DollarBars,
    ExactSum,
    Operator,
    PerInstrument,
    RollingVwap,
    SessionVwap,
    TickBars,
    TimeBars,
    VolumeBars,
    Vwap,
    parse_interval,
)
from wsmux.convert import from_dict, to_dict
from wsmux.errors import ConfigError


def run(op: Operator, trades: list[Trade]) -> list[Bar]:
    out: list[Bar] = []
    for t in trades:
        out.extend(op.update(t))  # type: ignore[arg-type]
    out.extend(op.flush())  # type: ignore[arg-type]
    return out


def exact_notional(prices: Iterable[float], sizes: Iterable[float]) -> float:
    """The exact sum of the exact products, correctly rounded (rational arithmetic)."""
    return float(sum((Fraction(p) * Fraction(s) for p, s in zip(prices, sizes, strict=True)), Fraction(0)))


def frame(trades: list[Trade]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": np.array([t.ts if t.ts is not None else t.recv_ns for t in trades], dtype=np.int64),
            "price": [t.price for t in trades],
            "size": [t.size for t in trades],
            "side": [t.side.value if t.side else "" for t in trades],
        }
    )


def batch_time_bars(trades: list[Trade], interval: int) -> pd.DataFrame:
    """The documented late policy in batch form: a trade belongs to the bar of the
    newest time seen so far (its own bar for in-order trades)."""
    df = frame(trades)
    df["key"] = df["ts"].cummax() // interval
    df["late"] = df["ts"] < df["key"] * interval
    df["notional"] = df["price"] * df["size"]
    rows = []
    for key, g in df.groupby("key", sort=True):
        inorder = g[~g["late"]]
        rows.append(
            {
                "start_ts": key * interval,
                "open": inorder["price"].iloc[0] if len(inorder) else g["price"].iloc[0],
                "close": inorder["price"].iloc[-1] if len(inorder) else g["price"].iloc[0],
                "high": g["price"].max(),
                "low": g["price"].min(),
                "volume": math.fsum(g["size"]),
                "notional": exact_notional(g["price"], g["size"]),
                "vwap": float(
                    sum((Fraction(p) * Fraction(q) for p, q in zip(g["price"], g["size"], strict=True)), Fraction(0))
                    / sum(map(Fraction, g["size"]), Fraction(0))
                ),
                "buy_volume": math.fsum(g.loc[g["side"] == "buy", "size"]),
                "sell_volume": math.fsum(g.loc[g["side"] == "sell", "size"]),
                "trades": len(g),
                "late": int(g["late"].sum()),
                "first_ts": int(inorder["ts"].iloc[0]) if len(inorder) else 0,
                "last_ts": int(inorder["ts"].iloc[-1]) if len(inorder) else 0,
            }
        )
    return pd.DataFrame(rows)


def as_frame(bars: list[Bar]) -> pd.DataFrame:
    return pd.DataFrame([to_dict(b) for b in bars])


@pytest.mark.parametrize(("interval", "late_share"), [("1s", 0.0), ("5s", 0.05), ("1m", 0.2), ("250ms", 0.02)])
def test_time_bars_match_batch(interval: str, late_share: float) -> None:
    trades = random_trades(5_000, seed=7, late_share=late_share)
    bars = run(TimeBars(interval), trades)
    ref = batch_time_bars(trades, parse_interval(interval))
    got = as_frame(bars)
    assert len(got) == len(ref)
    for col in ("start_ts", "open", "close", "high", "low", "trades", "late", "first_ts", "last_ts"):
        assert got[col].tolist() == ref[col].tolist(), col
    for col in ("volume", "notional", "buy_volume", "sell_volume", "vwap"):  # exact, rounded once: bit for bit
        assert got[col].tolist() == ref[col].tolist(), col
    assert (got["end_ts"] - got["start_ts"] == parse_interval(interval)).all()
    # pandas' own (pairwise, inexact) sums agree to rounding
    np.testing.assert_allclose(got["vwap"], ref["notional"] / ref["volume"], rtol=1e-12)
    # bars are aligned to clock boundaries by exchange time
    assert all(b.start_ts % parse_interval(interval) == 0 for b in bars)
    # a bar is closed by the first trade at or past its end: its ts
    closers = [b.ts for b in bars[:-1]]
    assert all(ts is not None and ts >= b.end_ts for ts, b in zip(closers, bars, strict=False))


def test_activity_bars_match_batch() -> None:
    trades = random_trades(3_000, seed=11)
    df = frame(trades)
    # tick bars: every 50 trades
    bars = run(TickBars(50), trades)
    assert [b.trades for b in bars] == [50] * 60
    assert [b.volume for b in bars] == [math.fsum(df["size"][i : i + 50]) for i in range(0, 3000, 50)]
    assert [b.open for b in bars] == df["price"][::50].tolist()
    assert [b.close for b in bars] == df["price"][49::50].tolist()
    # volume bars: close at the trade that reaches the threshold (cumulative, never split)
    for op, column in ((VolumeBars(25.0), df["size"]), (DollarBars(2_000_000.0), df["price"] * df["size"])):
        threshold = op.threshold  # type: ignore[attr-defined]
        bars = run(op, trades)
        ends, acc = [], ExactSum()
        for i, x in enumerate(column):
            acc.add(x)
            if acc.value >= threshold:
                ends.append(i)
                acc.clear()
        assert [b.trades for b in bars[: len(ends)]] == list(np.diff([-1, *ends]))
        full = bars[: len(ends)]
        measure = [b.volume for b in full] if isinstance(op, VolumeBars) else [b.notional for b in full]
        assert all(m >= threshold for m in measure)
        assert sum(b.trades for b in bars) == 3000


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 400),
    late=st.floats(0, 0.5),
    interval=st.sampled_from(["100ms", "1s", "7s", "1m"]),
)
def test_bar_properties(seed: int, n: int, late: float, interval: str) -> None:
    trades = random_trades(n, seed=seed, late_share=late, mean_gap_ns=200_000_000)
    sizes = [t.size for t in trades]
    for op in (TimeBars(interval), TickBars(7), VolumeBars(3.0), DollarBars(50_000.0)):
        bars = run(op, trades)
        assert sum(b.trades for b in bars) == n
        # bar volumes sum to the traded volume: exactly, up to one rounding per bar
        parts = ExactSum()
        for b in bars:
            parts.add(b.volume)
        assert parts.value == pytest.approx(math.fsum(sizes), rel=1e-15 * (len(bars) + 1), abs=0)
        for b in bars:
            assert b.low <= b.open <= b.high and b.low <= b.close <= b.high
            assert b.low <= b.vwap <= b.high
            assert b.buy_volume + b.sell_volume <= b.volume * (1 + 1e-15)
            assert from_dict(to_dict(b)) == b


def test_a_day_of_trades_sums_exactly() -> None:
    """172,800 trades (two a second for a day): one daily bar's volume is the exact
    sum of the sizes as received (the decimal sum of their binary values, rounded
    once), where a running float sum drifts."""
    midnight = T0 - T0 % (86_400 * SECOND)
    trades = random_trades(172_800, seed=3, mean_gap_ns=490_000_000, lot_decimals=8, start_ns=midnight)
    assert trades[-1].ts is not None and trades[-1].ts - trades[0].ts < 86_400 * SECOND
    (bar,) = run(TimeBars("1d"), trades)
    with localcontext(prec=400):  # Decimal(float) is exact; so are these sums at 400 digits
        exact = sum((Decimal(t.size) for t in trades), Decimal(0))
        exact_notional = sum((Decimal(t.price) * Decimal(t.size) for t in trades), Decimal(0))
    assert bar.volume == float(exact)
    assert bar.notional == float(exact_notional)
    naive = 0.0
    for t in trades:
        naive += t.size
    assert naive != bar.volume  # the drift the exact sum avoids (on this seed)
    # the sizes are 8-decimal text: the exact volume, rounded to 8 decimals, is the decimal sum of the texts
    texts = sum((Decimal(f"{t.size:.8f}") for t in trades), Decimal(0))
    assert Decimal(f"{bar.volume:.8f}") == texts


def test_rolling_and_session_vwap_match_batch() -> None:
    trades = random_trades(4_000, seed=5, late_share=0.05)
    df = frame(trades)
    df["eff"] = df["ts"].cummax()  # late trades count as arriving at the newest time
    rolling = [v for v in run(RollingVwap("30s"), trades) if isinstance(v, Vwap)]
    assert len(rolling) == len(trades)
    window = 30 * SECOND
    eff = df["eff"].to_numpy()
    price = df["price"].to_numpy()
    size = df["size"].to_numpy()
    for i in range(0, len(trades), 37):
        lo = np.searchsorted(eff, eff[i] - window, side="right")
        ref = exact_notional(price[lo : i + 1], size[lo : i + 1]) / math.fsum(size[lo : i + 1])
        assert rolling[i].vwap == pytest.approx(ref, rel=1e-15)
        assert rolling[i].volume == math.fsum(size[lo : i + 1])
        assert rolling[i].trades == i + 1 - lo
    sessions = run(SessionVwap("1h"), trades)
    day = df["ts"] // (3_600 * SECOND)
    key = df["ts"].cummax() // (3_600 * SECOND)
    assert (day <= key).all()
    for i in range(0, len(trades), 41):
        mask = (key == key[i]).to_numpy() & (np.arange(len(trades)) <= i)
        ref = exact_notional(price[mask], size[mask]) / math.fsum(size[mask])
        assert sessions[i].vwap == pytest.approx(ref, rel=1e-15)  # type: ignore[attr-defined]


def test_rolling_window_returns_exactly_to_zero() -> None:
    """After every trade has left the window the exact sums are exactly empty."""
    trades = random_trades(2_000, seed=9)
    op = RollingVwap("10s")
    run(op, trades)
    far = Trade("v", "S", 1.0, 1.0, Side.BUY, "x", (trades[-1].ts or 0) + 3_600 * SECOND, 0)
    (last,) = op.update(far)
    assert last.volume == 1.0 and last.trades == 1 and last.vwap == 1.0  # type: ignore[attr-defined]


def test_recorded_trades_bars_and_vwap_match_batch(recordings_dir: Path) -> None:
    trades = [e for e in recorded_events(recordings_dir) if isinstance(e, Trade)]
    assert len(trades) > 100
    by_key: dict[tuple[str, str], list[Trade]] = {}
    for t in trades:
        by_key.setdefault((t.venue, t.symbol), []).append(t)
    bars_op = PerInstrument(lambda v, s: TimeBars("1s"))
    vwap_op = PerInstrument(lambda v, s: SessionVwap("1d"))
    bars: list[Bar] = []
    vwaps: list[Vwap] = []
    for t in trades:
        bars.extend(bars_op.update(t))  # type: ignore[arg-type]
        vwaps.extend(vwap_op.update(t))  # type: ignore[arg-type]
    bars.extend(bars_op.flush())  # type: ignore[arg-type]
    for (venue, symbol), group in by_key.items():
        got = as_frame([b for b in bars if (b.venue, b.symbol) == (venue, symbol)])
        ref = batch_time_bars(group, SECOND)
        for col in ("start_ts", "open", "close", "high", "low", "trades", "late", "volume", "notional"):
            assert got[col].tolist() == ref[col].tolist(), (venue, symbol, col)
        last = [v for v in vwaps if (v.venue, v.symbol) == (venue, symbol)][-1]
        size = [t.size for t in group]
        ref = exact_notional([t.price for t in group], size) / math.fsum(size)
        assert last.vwap == pytest.approx(ref, rel=1e-15)


def test_bad_inputs_raise_typed_errors() -> None:
    with pytest.raises(ConfigError):
        TimeBars("1 second")
    with pytest.raises(ConfigError):
        TickBars(0)
    with pytest.raises(ConfigError):
        VolumeBars(-1.0)
    op = TimeBars("1s")
    op.update(Trade("v", "S", 1.0, 1.0, None, "1", T0, T0))
    with pytest.raises(ConfigError, match="PerInstrument"):
        op.update(Trade("v", "OTHER", 1.0, 1.0, None, "2", T0, T0))
    with pytest.raises(ConfigError, match="positive and finite"):
        op.update(Trade("v", "S", math.nan, 1.0, None, "3", T0, T0))
    op.reset()
    assert op.flush() == ()


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@settings(max_examples=300, deadline=None)
@given(xs=st.lists(finite, max_size=60), ys=st.lists(finite, min_size=1, max_size=60))
def test_exact_sum_is_the_correctly_rounded_exact_sum(xs: list[float], ys: list[float]) -> None:
    s, t, p = ExactSum(), ExactSum(), ExactSum()
    for x in xs:
        s.add(x)
    for y in ys:
        t.add(y)
    assert s.value == math.fsum(xs) == float(sum(map(Fraction, xs), Fraction(0)))
    assert ExactSum.total(s, t) == math.fsum(xs + ys)
    for x in xs:
        s.add(-x)  # removal is exact: back to exactly zero
    assert not s and s.value == 0.0
    small = [y / 1e300 for y in ys]  # products stay within the float range
    for a, b in zip(ys, small, strict=True):
        p.add_product(a, b)
    exact = sum((Fraction(a) * Fraction(b) for a, b in zip(ys, small, strict=True)), Fraction(0))
    assert p.value == float(exact)
    if t:
        assert ExactSum.ratio(p, t) == float(exact / sum(map(Fraction, ys), Fraction(0)))
    else:
        assert math.isnan(ExactSum.ratio(p, t))


def test_exact_sum_rejects_non_finite() -> None:
    s = ExactSum()
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ConfigError):
            s.add(bad)
        with pytest.raises(ConfigError):
            s.add_product(1.0, bad)

    big = ExactSum()
    big.add_product(1e300, 1e300)
    assert big.value == math.inf


def test_time_bars_use_the_receive_time_when_the_venue_sends_none() -> None:
    op = TimeBars("1s")
    first = Trade("v", "S", 10.0, 1.0, None, "1", None, T0 + 100)
    assert op.update(first) == ()
    (bar,) = op.update(Trade("v", "S", 11.0, 2.0, None, "2", None, T0 + SECOND))
    assert isinstance(bar, Bar) and bar.start_ts == T0 and bar.first_ts == T0 + 100 and bar.ts is None
    assert bar.recv_ns == T0 + SECOND and bar.volume == 1.0
