"""Volume profile and trade classification against independent batch computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tradegen import SECOND, random_trades, recorded_events

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Gap,
    GapReason,
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux.analytics import (
    ClassificationSummary,
    ClassifiedTrade,
    PerInstrument,
    Profile,
    Resumed,
    Suspended,
    TradeClassifier,
    VolumeProfile,
)
from wsmux.convert import from_dict, to_dict
from wsmux.errors import ConfigError, WsmuxError
from wsmux.model import Instrument


def batch_value_area(vol: pd.Series, share: float) -> tuple[float, float, float]:
    """POC and value area, written independently from the documented rule."""
    prices = vol.index.to_numpy()
    v = vol.to_numpy()
    poc = int(np.argmax(v))  # first maximum: lowest price on ties
    lo = hi = poc
    total = math.fsum(v)
    inside = v[poc]
    while inside < share * total and (lo > 0 or hi < len(v) - 1):
        up = v[hi + 1] if hi + 1 < len(v) else -1.0
        down = v[lo - 1] if lo > 0 else -1.0
        if up >= down:
            hi += 1
            inside = math.fsum(v[lo : hi + 1])
        else:
            lo -= 1
            inside = math.fsum(v[lo : hi + 1])
    return prices[poc], prices[lo], prices[hi]


@pytest.mark.parametrize("ticks_per_bucket", [1, 5])
def test_volume_profile_matches_batch(ticks_per_bucket: int) -> None:
    trades = random_trades(6_000, seed=21, tick=0.5)
    inst = Instrument("v", "S", "S", "spot", tick_size=0.5)
    op = VolumeProfile(inst, "2m", every="30s", ticks_per_bucket=ticks_per_bucket)
    profiles = [p for t in trades for p in op.update(t)]
    assert all(isinstance(p, Profile) for p in profiles) and len(profiles) > 50
    df = pd.DataFrame(
        {"ts": [t.ts for t in trades], "price": [t.price for t in trades], "size": [t.size for t in trades]}
    )
    df["bucket"] = (df["price"] / 0.5).round().astype(int) // ticks_per_bucket
    window = 120 * SECOND
    for p in profiles:
        assert isinstance(p, Profile) and p.ts is not None and p.ts % (30 * SECOND) == 0
        inside = df[(df["ts"] > p.ts - window) & (df["ts"] < p.ts)]
        vol = inside.groupby("bucket")["size"].agg(math.fsum).sort_index()
        assert list(p.prices) == [b * 0.5 * ticks_per_bucket for b in vol.index]
        assert list(p.volumes) == vol.tolist()
        vol.index = vol.index * 0.5 * ticks_per_bucket
        assert (p.poc, p.value_area_low, p.value_area_high) == batch_value_area(vol, 0.7)
        assert p.value_area_low <= p.poc <= p.value_area_high
        inside_va = math.fsum(
            v for x, v in zip(p.prices, p.volumes, strict=True) if p.value_area_low <= x <= p.value_area_high
        )
        assert inside_va >= 0.7 * p.volume * (1 - 1e-12)
        assert from_dict(to_dict(p)) == p


def test_volume_profile_needs_a_tick() -> None:
    with pytest.raises(ConfigError):
        VolumeProfile(Instrument("v", "S", "S", "spot"), "1m")
    with pytest.raises(ConfigError):
        VolumeProfile(0.0, "1m")
    with pytest.raises(ConfigError):
        VolumeProfile(0.1, "1m", value_area=1.5)


def batch_classify(
    prices: list[float], mids: list[float]
) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """Tick, quote and Lee-Ready with numpy/pandas, from the rules' definitions."""
    p = pd.Series(prices)
    diff = p.diff()
    tick = pd.Series(np.where(diff > 0, "buy", np.where(diff < 0, "sell", None)), dtype=object)
    tick = tick.ffill()  # zero ticks take the last non-zero tick's class
    m = pd.Series(mids)
    quote = pd.Series(np.where(p > m, "buy", np.where(p < m, "sell", None)), dtype=object)
    lee = quote.where(quote.notna() | m.isna(), tick)
    clean = lambda s: [None if (x is None or (isinstance(x, float) and math.isnan(x))) else x for x in s]  # noqa: E731
    return clean(tick), clean(quote), clean(lee)


def quotes_and_trades(n: int, seed: int) -> list[Quote | Trade]:
    """Each trade preceded by a quote around it (some trades at the mid)."""
    rng = np.random.default_rng(seed)
    trades = random_trades(n, seed=seed, tick=0.5)
    out: list[Quote | Trade] = []
    for t in trades:
        half = 0.5 * int(rng.integers(1, 3))
        mid = t.price + 0.5 * int(rng.integers(-1, 2))  # the trade above, at or below the mid
        out.append(Quote("v", "S", mid - half, 1.0, mid + half, 1.0, t.ts, t.recv_ns))
        out.append(t)
    return out


def test_classification_matches_batch_and_reports_agreement() -> None:
    events = quotes_and_trades(3_000, seed=4)
    op = TradeClassifier()
    classified = [o for e in events for o in op.update(e) if isinstance(o, ClassifiedTrade)]
    trades = [e for e in events if isinstance(e, Trade)]
    mids = [(q.bid_price + q.ask_price) / 2 for q in events if isinstance(q, Quote)]
    tick, quote, lee = batch_classify([t.price for t in trades], mids)
    val = lambda s: s.value if s is not None else None  # noqa: E731
    assert [val(c.tick) for c in classified] == tick
    assert [val(c.quote) for c in classified] == quote
    assert [val(c.lee_ready) for c in classified] == lee
    (summary,) = op.flush()
    assert isinstance(summary, ClassificationSummary) and summary.trades == 3_000
    reported = [t.side.value if t.side else None for t in trades]
    for name, ours in (("tick", tick), ("quote", quote), ("lee_ready", lee)):
        both = [(a, b) for a, b in zip(ours, reported, strict=True) if a is not None and b is not None]
        assert getattr(summary, f"{name}_compared") == len(both)
        assert getattr(summary, f"{name}_agree") == sum(a == b for a, b in both)
        assert getattr(summary, f"{name}_rate") == sum(a == b for a, b in both) / len(both)
    assert from_dict(to_dict(summary)) == summary


def test_classifier_suspends_on_invalid_book_and_resumes() -> None:
    op = TradeClassifier()
    t = lambda i, p, side=Side.BUY: Trade("v", "S", p, 1.0, side, str(i), i, i)  # noqa: E731
    out = op.update(t(1, 100.0))
    assert isinstance(out[0], Suspended) and out[0].reason == "no book yet"
    assert isinstance(out[1], ClassifiedTrade) and out[1].quote is None and math.isnan(out[1].bid)
    assert op.update(BookSnapshot("v", "S", ((99.0, 1.0),), ((101.0, 1.0),), 2, 2)) == (
        Resumed("v", "S", "classify", 2, 2),
    )
    (c,) = op.update(t(3, 100.5))
    assert isinstance(c, ClassifiedTrade) and c.quote is Side.BUY and (c.bid, c.ask) == (99.0, 101.0)
    op.update(BookUpdate("v", "S", ((100.25, 2.0),), (), 4, 4))
    (c,) = op.update(t(5, 100.5))
    assert isinstance(c, ClassifiedTrade) and c.bid == 100.25 and c.quote is Side.SELL  # mid 100.625
    gap = op.update(Gap("v", "S", Channel.BOOK, GapReason.SEQUENCE, 7, 9, 6))
    assert gap == (Suspended("v", "S", "classify", "book invalid: sequence", None, 6),)
    (c,) = op.update(t(7, 101.0))
    assert isinstance(c, ClassifiedTrade) and c.quote is None and c.lee_ready is None and c.tick is Side.BUY
    op.update(BookSnapshot("v", "S", ((100.0, 1.0),), ((102.0, 1.0),), 8, 8))
    (r,) = op.update(Resynced("v", "S", Channel.BOOK, 1, 9)) or (None,)
    assert r is None  # already resumed by the snapshot: one report per episode
    (c,) = op.update(t(10, 101.0))
    assert isinstance(c, ClassifiedTrade) and c.quote is None and c.lee_ready is Side.BUY  # at the mid: tick rule


def test_classifier_on_recorded_books_and_trades(recordings_dir: Path) -> None:
    """Coinbase, BitMEX, Gemini, KuCoin...: BBO from the recorded books (or quotes)
    at trade time; agreement with the venue's reported side is reported."""
    op = PerInstrument(lambda v, s: TradeClassifier())
    out = []
    checked = 0
    for ev in recorded_events(recordings_dir):
        if isinstance(ev, Trade | BookSnapshot | BookUpdate | Gap | Resynced):
            res = op.update(ev)
            out.extend(res)
            for c in res:
                if isinstance(c, ClassifiedTrade) and c.quote is not None:
                    mid = (c.bid + c.ask) / 2
                    assert (c.quote is Side.BUY) == (c.price > mid)
                    checked += 1
    summaries = [s for s in op.flush() if isinstance(s, ClassificationSummary)]
    assert checked > 50
    coinbase = [s for s in summaries if s.venue == "coinbase"]
    assert sum(s.trades for s in coinbase) == 97
    # the quote rule agrees with Coinbase's reported aggressor side on most trades
    agree = sum(s.quote_agree for s in coinbase)
    compared = sum(s.quote_compared for s in coinbase)
    assert compared > 40 and agree / compared > 0.8


def test_classifier_reading_a_live_book_view_agrees_with_the_event_fed_one(recordings_dir: Path) -> None:
    """Replay.book gives the same live BookView as Multiplexer.book: reading it at each
    trade classifies exactly like the classifier that rebuilds the book from the events."""
    from wsmux.log import Replay

    replay = Replay([recordings_dir / "COINBASE.ws.28.0"])
    fed = PerInstrument(lambda v, s: TradeClassifier())
    viewing: dict[tuple[str, str], TradeClassifier] = {}
    pairs = 0
    for ev in replay.events():
        if not isinstance(ev, Trade | BookSnapshot | BookUpdate | Gap | Resynced):
            continue
        a = [o for o in fed.update(ev) if isinstance(o, ClassifiedTrade)]
        if isinstance(ev, Trade):
            key = (ev.venue, ev.symbol)
            if key not in viewing:
                try:
                    viewing[key] = TradeClassifier(book=replay.book(*key))
                except WsmuxError:
                    continue  # no book of this symbol in the capture
            b = [o for o in viewing[key].update(ev) if isinstance(o, ClassifiedTrade)]
            assert [(c.bid, c.ask, c.quote, c.lee_ready) for c in a] == [
                (c.bid, c.ask, c.quote, c.lee_ready) for c in b
            ]
            pairs += 1
        else:
            key = (ev.venue, ev.symbol)
            if key in viewing:
                viewing[key].update(ev)
    assert pairs > 50
