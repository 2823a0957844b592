"""Cross-venue signals against brute-force and numpy references."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from flowkit import SEC, T0

from wsmux.analytics import Resumed, Suspended
from wsmux.analytics.cross_venue import (
    Correlation,
    CrossVenueSpread,
    LeadLag,
    LeadLagEstimate,
    Opportunity,
    ReturnCorrelation,
)
from wsmux.book import OrderBook
from wsmux.convert import from_dict, to_dict
from wsmux.errors import ConfigError
from wsmux.model import BookSnapshot, BookUpdate, Channel, Event, Gap, GapReason, Integrity, Resynced

SYM = "BTC-USDT"
SEQ = Integrity.SEQUENCE


def snap(
    venue: str, bid: float, bs: float, ask: float, as_: float, t: int, integrity: Integrity | None = SEQ
) -> BookSnapshot:
    return BookSnapshot(venue, SYM, ((bid, bs),), ((ask, as_),), t, t, 1, integrity=integrity)


def top_update(
    prev: tuple[float, float, float, float], new: tuple[float, float, float, float], venue: str, t: int
) -> BookUpdate:
    """A one-level book moving from ``prev`` to ``new`` (old levels deleted)."""
    bids = [(new[0], new[1])] + ([(prev[0], 0.0)] if prev[0] != new[0] else [])
    asks = [(new[2], new[3])] + ([(prev[2], 0.0)] if prev[2] != new[2] else [])
    return BookUpdate(venue, SYM, tuple(bids), tuple(asks), t, t)


def random_tops(seed: int, venues: list[str], steps: int) -> list[tuple[str, tuple[float, float, float, float], int]]:
    """Venue tops around a common price that sometimes cross between venues."""
    rng = random.Random(seed)
    out = []
    t = T0
    for _ in range(steps):
        t += rng.randint(1, 200) * 1_000_000
        v = rng.choice(venues)
        mid = 100.0 + rng.randint(-20, 20) * 0.01
        half = rng.randint(1, 3) * 0.005
        out.append((v, (round(mid - half, 4), rng.randint(1, 9) / 4, round(mid + half, 4), rng.randint(1, 9) / 4), t))
    return out


def test_best_net_spread_matches_brute_force_over_all_pairs() -> None:
    venues = ["a", "b", "c", "d"]
    fees = {"a": 10.0, "b": 2.0, "c": 0.0, "d": 5.0}
    max_age = 500_000_000
    op = CrossVenueSpread(SYM, venues, fees_bps=fees, max_age_ns=max_age, min_integrity=SEQ)
    last: dict[str, tuple[tuple[float, float, float, float], int]] = {}
    seen_opps = 0
    prev_key = None
    for v, top, t in random_tops(1, venues, 5_000):
        ev = snap(v, *top, t) if v not in last else top_update(last[v][0], top, v, t)
        last[v] = (top, t)
        got = [o for o in op.update(ev) if isinstance(o, Opportunity)]
        # brute force over ordered pairs of fresh venues
        best = None
        for s, b in itertools.permutations(last, 2):
            (sb, sbs, _, _), ts_ = last[s]
            (_, _, ba, bas), tb = last[b]
            if t - ts_ > max_age or t - tb > max_age:
                continue
            net = sb * (1 - fees[s] / 1e4) - ba * (1 + fees[b] / 1e4)
            if best is None or net > best[0] + 1e-12:
                best = (net, s, b, sb, sbs, ba, bas)
        if best is None or not best[0] / best[5] * 1e4 > 0:
            assert got == [] and op.current is None
            prev_key = None
            continue
        net, s, b, sb, sbs, ba, bas = best
        cur = op.current
        assert cur is not None
        assert cur.net_bps == pytest.approx(net / ba * 1e4, abs=1e-9)
        assert (cur.sell_price, cur.buy_price, cur.size) == (sb, ba, min(sbs, bas))
        assert cur.gross_bps == pytest.approx((sb - ba) / ba * 1e4)
        assert cur.net_bps <= cur.gross_bps
        key = (cur.buy_venue, cur.sell_venue, cur.buy_price, cur.sell_price, cur.buy_size, cur.sell_size)
        assert (got == [cur]) == (key != prev_key)  # emitted once per change
        prev_key = key
        seen_opps += len(got)
    assert seen_opps > 100


def test_opportunity_needs_valid_fresh_books_of_the_stated_integrity() -> None:
    op = CrossVenueSpread(SYM, ["a", "b"], fees_bps=1.0, max_age_ns=SEC, min_integrity=SEQ)
    out = op.update(snap("a", 101.0, 1.0, 101.5, 1.0, T0))
    assert [type(o) for o in out] == [Suspended] and out[0].venue == "b" and out[0].reason == "no book yet"
    # b sells at 100 < a's bid 101: buy on b, sell on a (b's "no book yet" was reported: Resumed first)
    resumed, opp = op.update(snap("b", 99.5, 2.0, 100.0, 3.0, T0 + 1))
    assert isinstance(resumed, Resumed) and resumed.venue == "b"
    assert isinstance(opp, Opportunity)
    assert (opp.buy_venue, opp.buy_price, opp.sell_venue, opp.sell_price, opp.size) == ("b", 100.0, "a", 101.0, 1.0)
    assert opp.net_bps == pytest.approx((101.0 * (1 - 1e-4) - 100.0 * (1 + 1e-4)) / 100.0 * 1e4)
    # a goes quiet for more than max_age: stale, the opportunity is not repeated
    out = op.update(top_update((99.5, 2.0, 100.0, 3.0), (99.5, 2.5, 100.0, 3.0), "b", T0 + 2 * SEC))
    assert [type(o) for o in out] == [Suspended] and out[0].venue == "a" and out[0].reason == "book stale"
    assert op.current is None
    # a updates: fresh again
    out = op.update(top_update((101.0, 1.0, 101.5, 1.0), (101.0, 1.5, 101.5, 1.0), "a", T0 + 2 * SEC + 1))
    assert [type(o) for o in out] == [Resumed, Opportunity]
    # a gap on b: excluded until resynced
    out = op.update(Gap("b", SYM, Channel.BOOK, GapReason.SEQUENCE, 5, 7, T0))
    assert [(type(o), o.reason) for o in out] == [(Suspended, "book invalid: sequence")]
    assert [
        type(o) for o in op.update(top_update((101.0, 1.5, 101.5, 1.0), (101.0, 1.0, 101.5, 1.0), "a", T0 + 3 * SEC))
    ] == []
    out = op.update(snap("b", 99.5, 2.0, 100.0, 3.0, T0 + 3 * SEC + 1))
    assert [type(o) for o in out] == [Resumed, Opportunity]


def test_integrity_below_the_minimum_is_reported_and_excluded() -> None:
    op = CrossVenueSpread(SYM, ["a", "b"], fees_bps={"a": 0.0, "b": 0.0}, max_age_ns=SEC, min_integrity=SEQ)
    op.update(snap("a", 101.0, 1.0, 101.5, 1.0, T0))
    out = op.update(snap("b", 99.5, 2.0, 100.0, 3.0, T0 + 1, integrity=Integrity.UNVERIFIABLE))
    assert [type(o) for o in out] == [Resumed, Suspended]  # b's book arrived ("no book yet" was reported)...
    assert (out[1].venue, out[1].reason) == ("b", "integrity unverifiable below sequence")  # ...but proves too little
    assert op.update(top_update((99.5, 2.0, 100.0, 3.0), (99.5, 2.0, 100.0, 4.0), "b", T0 + 2)) == ()
    # a resync that proves more lifts it
    out = op.update(Resynced("b", SYM, Channel.BOOK, 9, T0 + 3, integrity=Integrity.SEQUENCE_AND_CHECKSUM))
    out = op.update(top_update((99.5, 2.0, 100.0, 4.0), (99.5, 2.0, 100.0, 5.0), "b", T0 + 4))
    assert [type(o) for o in out] == [Resumed, Opportunity]
    # and min_integrity=None accepts anything
    loose = CrossVenueSpread(SYM, ["a", "b"], fees_bps=0.0, max_age_ns=SEC, min_integrity=None)
    loose.update(snap("a", 101.0, 1.0, 101.5, 1.0, T0, integrity=None))
    assert [type(o) for o in loose.update(snap("b", 99.5, 2.0, 100.0, 3.0, T0, integrity=None))] == [
        Resumed,
        Opportunity,
    ]


def test_fees_can_remove_the_opportunity_and_pick_another_pair() -> None:
    # gross: sell a (101) buy b (100) = 100 bps; with 60 bps fees on each it is negative,
    # but c (fee 0) at 100.2 gives net 101*(1-0.006) - 100.2 = 0.194 > 0
    op = CrossVenueSpread(SYM, "abc", fees_bps={"a": 60.0, "b": 60.0, "c": 0.0}, max_age_ns=SEC)
    op.update(snap("a", 101.0, 1.0, 101.5, 1.0, T0))
    assert not [o for o in op.update(snap("b", 99.0, 1.0, 100.0, 1.0, T0)) if isinstance(o, Opportunity)]
    (opp,) = [o for o in op.update(snap("c", 99.0, 1.0, 100.2, 0.5, T0)) if isinstance(o, Opportunity)]
    assert (opp.buy_venue, opp.sell_venue, opp.size) == ("c", "a", 0.5)


def test_cross_venue_config_errors() -> None:
    with pytest.raises(ConfigError):
        CrossVenueSpread(SYM, ["a"], fees_bps=1.0, max_age_ns=SEC)
    with pytest.raises(ConfigError):
        CrossVenueSpread(SYM, ["a", "b"], fees_bps={"a": 1.0}, max_age_ns=SEC)
    with pytest.raises(ConfigError):
        CrossVenueSpread(SYM, ["a", "b"], fees_bps=-1.0, max_age_ns=SEC)
    with pytest.raises(ConfigError):
        ReturnCorrelation(SYM, ("a", "b"), interval_ns=SEC, window=1)
    with pytest.raises(ConfigError):
        LeadLag(SYM, ("a", "b"), interval_ns=SEC, window=10, max_lag=0)


def test_cross_venue_spread_reads_live_books() -> None:
    books = {v: OrderBook(v, SYM) for v in "ab"}
    for v, (b, a) in {"a": (101.0, 101.5), "b": (99.5, 100.0)}.items():
        books[v].apply_snapshot([(b, 1.0)], [(a, 1.0)])
        books[v].valid = True
        books[v].integrity = SEQ
    op = CrossVenueSpread(SYM, "ab", fees_bps=0.0, max_age_ns=SEC, books=books)
    op.update(BookUpdate("a", SYM, (), (), T0, T0))
    *_, opp = op.update(BookUpdate("b", SYM, (), (), T0, T0))
    assert isinstance(opp, Opportunity) and opp.buy_venue == "b"


# --- correlation and lead-lag ------------------------------------------------------------------------


def two_venue_walk(
    seed: int, steps: int, lag_ticks: int, dt: int
) -> tuple[list[Event], np.ndarray, np.ndarray, np.ndarray]:
    """Venue a's mid is a random walk updated every ``dt``; b shows a's mid from
    ``lag_ticks`` updates before plus its own noise. Events interleave in time."""
    rng = np.random.default_rng(seed)
    a = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, steps)))
    b = np.concatenate([np.full(lag_ticks, a[0]), a[: steps - lag_ticks]]) * np.exp(rng.normal(0, 2e-4, steps))
    times = T0 + np.arange(steps, dtype=np.int64) * dt + 7
    events: list[Event] = []
    prev = {}
    for i in range(steps):
        for v, mid in (("a", a[i]), ("b", b[i])):
            t = int(times[i]) + (0 if v == "a" else 1)
            top = (mid - 0.01, 1.0, mid + 0.01, 1.0)
            events.append(snap(v, *top, t) if v not in prev else top_update(prev[v], top, v, t))
            prev[v] = top
    return events, times, a, b


def grid_returns(times: np.ndarray, mids: np.ndarray, step: int, until: int) -> np.ndarray:
    first = (int(times[0]) // step + 1) * step
    points = np.arange(first, until + 1, step)
    idx = np.searchsorted(times, points, side="left") - 1
    return np.diff(np.log(mids[idx]))


def test_return_correlation_matches_numpy() -> None:
    dt = 300_000_000
    events, times, a, b = two_venue_walk(3, 2_000, 0, dt)
    window = 40
    op = ReturnCorrelation(SYM, ("a", "b"), interval_ns=SEC, window=window)
    outs = [o for e in events for o in op.update(e) if isinstance(o, Correlation)]
    assert len(outs) > 100
    for got in outs[::17]:
        ra = grid_returns(times, a, SEC, got.ts)[-window:]
        rb = grid_returns(times + 1, b, SEC, got.ts)[-window:]
        assert got.returns == len(ra)
        assert got.value == pytest.approx(float(np.corrcoef(ra, rb)[0, 1]), abs=1e-9)
        assert -1.0 <= got.value <= 1.0
    assert outs[-1].value > 0.9  # same asset, small noise


def test_lead_lag_finds_the_leader_and_matches_numpy() -> None:
    dt = SEC // 4
    events, times, a, b = two_venue_walk(4, 3_000, 8, dt)  # b shows a's price 8 updates (2 s) late
    window, max_lag = 200, 4
    op = LeadLag(SYM, ("a", "b"), interval_ns=SEC, window=window, max_lag=max_lag)
    outs = [o for e in events for o in op.update(e) if isinstance(o, LeadLagEstimate)]
    assert len(outs) > 100
    last = outs[-1]
    assert (last.lag, last.lag_ns, last.leader) == (2, 2 * SEC, "a")
    # exact check against the batch definition
    ra = grid_returns(times, a, SEC, last.ts)
    rb = grid_returns(times + 1, b, SEC, last.ts)
    n = len(ra)
    xa, xb = ra[-window:], rb[-window:]
    den = xa.std() * xb.std()
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        ks = np.arange(n - window, n)
        prod = ra[ks - lag] * rb[ks] if lag >= 0 else rb[ks + lag] * ra[ks]
        assert last.correlations[k] == pytest.approx((prod.mean() - xa.mean() * xb.mean()) / den, abs=1e-9)
    # swapping the venues flips the sign of the lag
    swapped = LeadLag(SYM, ("b", "a"), interval_ns=SEC, window=window, max_lag=max_lag)
    outs2 = [o for e in events for o in swapped.update(e) if isinstance(o, LeadLagEstimate)]
    assert (outs2[-1].lag, outs2[-1].leader) == (-2, "a")


def test_pair_operators_restart_after_a_gap_and_round_trip() -> None:
    events, _, _, _ = two_venue_walk(5, 400, 0, SEC // 2)
    op = ReturnCorrelation(SYM, ("a", "b"), interval_ns=SEC, window=10)
    outs: list[Event] = []
    for e in events[:300]:
        outs.extend(op.update(e))
    assert any(isinstance(o, Correlation) and o.returns == 10 for o in outs)
    (s,) = op.update(Gap("b", SYM, Channel.BOOK, GapReason.SEQUENCE, 1, 3, T0))
    assert isinstance(s, Suspended) and s.venue == "b"
    after = [o for e in events[300:] for o in op.update(e)]
    # nothing resumes from a BookUpdate after a Gap in real streams; here the updates resume b
    corr = [o for o in after if isinstance(o, Correlation)]
    assert corr and corr[0].returns < 10  # the window restarted
    for o in (*outs[-3:], s, *after[:3]):
        assert from_dict(to_dict(o)) == o


def test_receive_clock_for_venues_whose_clocks_disagree() -> None:
    a = BookSnapshot("a", SYM, ((101.0, 1.0),), ((101.5, 1.0),), T0, T0, integrity=SEQ)
    b = BookSnapshot("b", SYM, ((99.5, 1.0),), ((100.0, 1.0),), T0 - 100 * SEC, T0 + 1, integrity=SEQ)  # 100 s behind
    by_exchange = CrossVenueSpread(SYM, "ab", fees_bps=0.0, max_age_ns=SEC)
    by_receive = CrossVenueSpread(SYM, "ab", fees_bps=0.0, max_age_ns=SEC, clock="receive")
    by_exchange.update(a)
    by_receive.update(a)
    assert not [o for o in by_exchange.update(b) if isinstance(o, Opportunity)]  # b looks 100 s stale
    assert [o for o in by_receive.update(b) if isinstance(o, Opportunity)]
    with pytest.raises(ConfigError):
        CrossVenueSpread(SYM, "ab", fees_bps=0.0, max_age_ns=SEC, clock="wall")  # type: ignore[arg-type]


async def test_the_cross_venue_example_runs_on_the_mocks(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "cross_venue_spread.py"
    spec = importlib.util.spec_from_file_location("cross_venue_spread", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    await module.main(1.0, 0.0, 2.0)
    summary = capsys.readouterr().out.splitlines()[-1]
    assert "opportunities net of 0.0 bp taker fees" in summary and "consolidated quotes in 1.0 s" in summary
