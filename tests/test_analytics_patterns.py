"""Pattern detectors: planted patterns (ground truth by construction) and
batch numpy references on generated streams."""

from __future__ import annotations

import random

import numpy as np
import pytest
from flowkit import SEC, T0, generated

from wsmux.analytics import Suspended
from wsmux.analytics.patterns import (
    FleetingWall,
    FleetingWalls,
    HiddenFill,
    HiddenLiquidity,
    QuoteBurst,
    QuoteStuffing,
)
from wsmux.convert import from_dict, to_dict
from wsmux.errors import ConfigError
from wsmux.model import BookSide, BookSnapshot, BookUpdate, Channel, Event, Gap, GapReason, Quote, Side, Trade

V, S = "mockex", "BTC-USDT"
MS = 1_000_000


def upd(t: int, bids: tuple = (), asks: tuple = ()) -> BookUpdate:  # type: ignore[type-arg]
    return BookUpdate(V, S, bids, asks, t, t)


def trade(t: int, price: float, size: float, side: Side | None) -> Trade:
    return Trade(V, S, price, size, side, None, t, t)


# --- quote stuffing -------------------------------------------------------------------------


def stuffing_stream(seed: int) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    t = T0
    for block in range(40):
        burst = block % 7 == 3
        for _ in range(400 if burst else 60):
            t += rng.randint(1, 3) * MS if burst else rng.randint(5, 40) * MS
            if not burst and rng.random() < 0.2:
                events.append(trade(t, 100.0, 1.0, Side.BUY))
            elif rng.random() < 0.5:
                events.append(upd(t, ((99.0, rng.random()),)))
            else:
                events.append(Quote(V, S, 99.0, 1.0, 100.0, rng.random(), t, t))
    return events


def test_quote_stuffing_matches_batch_window_counts() -> None:
    events = stuffing_stream(1)
    window, need = 500 * MS, 150
    op = QuoteStuffing(window_ns=window, min_updates=need, max_trades=0)
    got = [o for e in events for o in op.update(e)]
    # batch: counts in (t - window, t] with numpy, then the one-report-per-burst rule
    times = np.array([e.ts for e in events], dtype=np.int64)
    is_trade = np.array([isinstance(e, Trade) for e in events])
    ut, tt = times[~is_trade], times[is_trade]
    n_up = np.searchsorted(ut, times, side="right") - np.searchsorted(ut, times - window, side="right")
    n_tr = np.searchsorted(tt, times, side="right") - np.searchsorted(tt, times - window, side="right")
    expected = []
    armed = True
    for i in range(len(events)):
        if armed and n_up[i] >= need and n_tr[i] <= 0:
            armed = False
            expected.append((int(times[i]), int(n_up[i])))
        elif not armed and (n_up[i] < need / 2 or n_tr[i] > 0):
            armed = True
    assert [(b.ts, b.updates) for b in got] == expected
    assert len(expected) == 6  # the planted bursts (blocks 3, 10, 17, 24, 31, 38)
    assert all(isinstance(b, QuoteBurst) and b.trades == 0 and b.ts - b.start_ts < window for b in got)


def test_quote_stuffing_with_trades_is_not_stuffing_and_config_errors() -> None:
    op = QuoteStuffing(window_ns=SEC, min_updates=10, max_trades=0)
    out = []
    for i in range(30):
        out.extend(op.update(trade(T0 + i * MS, 1.0, 1.0, Side.SELL)) if i % 5 == 0 else op.update(upd(T0 + i * MS)))
    assert out == []
    for bad in ({"window_ns": 0}, {"min_updates": 0}, {"max_trades": -1}):
        with pytest.raises(ConfigError):
            QuoteStuffing(**bad)  # type: ignore[arg-type]


# --- fleeting walls --------------------------------------------------------------------------


def wall_stream(seed: int) -> tuple[list[Event], list[tuple[BookSide, float, int]]]:
    """A quiet 20-level book (sizes 1-2, tick 0.5) with planted walls; returns the
    events and the walls that must be reported: (side, price, lifetime)."""
    rng = random.Random(seed)
    bids = tuple((100.0 - 0.5 * i, 1.0 + rng.random()) for i in range(20))
    asks = tuple((100.5 + 0.5 * i, 1.0 + rng.random()) for i in range(20))
    events: list[Event] = [BookSnapshot(V, S, bids, asks, T0, T0)]
    expected: list[tuple[BookSide, float, int]] = []
    t = T0
    # (side, ticks from touch, lifetime ms, traded fraction, reported?)
    plan = [
        (BookSide.BID, 2, 300, 0.0, True),
        (BookSide.ASK, 0, 1_500, 0.2, True),
        (BookSide.BID, 3, 3_000, 0.0, False),  # lived too long
        (BookSide.ASK, 4, 400, 0.9, False),  # traded away, not pulled
        (BookSide.BID, 15, 200, 0.0, False),  # too far from the touch
        (BookSide.ASK, 9, 100, 0.0, True),
    ]
    for side, ticks, life_ms, traded, reported in plan:
        for _ in range(20):  # background noise away from the planted price
            t += rng.randint(5, 50) * MS
            i = rng.randint(16, 19)
            events.append(
                upd(t, ((bids[i][0], 1.0 + rng.random()),))
                if rng.random() < 0.5
                else upd(t, (), ((asks[i][0], 1.0 + rng.random()),))
            )
        price = 100.0 - 0.5 * ticks if side is BookSide.BID else 100.5 + 0.5 * ticks
        t += 10 * MS
        start = t
        events.append(upd(t, ((price, 40.0),)) if side is BookSide.BID else upd(t, (), ((price, 40.0),)))
        if traded:
            t += 5 * MS
            events.append(trade(t, price, 40.0 * traded, Side.SELL if side is BookSide.BID else Side.BUY))
        t = start + life_ms * MS
        back = 1.5
        events.append(upd(t, ((price, back),)) if side is BookSide.BID else upd(t, (), ((price, back),)))
        if reported:
            expected.append((side, price, life_ms * MS))
    return events, expected


def test_fleeting_walls_finds_exactly_the_planted_ones() -> None:
    events, expected = wall_stream(2)
    op = FleetingWalls(0.5, k=5.0, within_ticks=10, max_lifetime_ns=2 * SEC)
    got = [o for e in events for o in op.update(e)]
    assert all(isinstance(w, FleetingWall) for w in got)
    assert [(w.side, w.price, w.lifetime_ns) for w in got] == expected
    first = got[0]
    assert first.size == 40.0 and first.distance_ticks == 2 and 1.0 <= first.median_size <= 2.0
    assert got[1].traded == pytest.approx(8.0)


def test_fleeting_walls_forgets_on_gap() -> None:
    events, _ = wall_stream(3)
    op = FleetingWalls(0.5)
    for e in events[:22]:  # up to the first planted wall
        op.update(e)
    assert op._walls
    (s,) = op.update(Gap(V, S, Channel.BOOK, GapReason.SEQUENCE, 1, 2, T0))
    assert isinstance(s, Suspended) and not op._walls


# --- hidden liquidity -------------------------------------------------------------------------


def batch_displayed(events: list[Event], lookback: int) -> dict[int, float]:
    """For each trade (by index): the largest size the touch showed at its price
    within (t - lookback, t], from a dict-rebuilt book (independent of the operator)."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    touch: dict[Side, list[tuple[int, float, float]]] = {Side.BUY: [], Side.SELL: []}
    out: dict[int, float] = {}
    for i, e in enumerate(events):
        if isinstance(e, BookSnapshot | BookUpdate):
            if isinstance(e, BookSnapshot):
                bids, asks = dict(e.bids), dict(e.asks)
            else:
                for side, levels in ((bids, e.bids), (asks, e.asks)):
                    for p, s in levels:
                        side.pop(p, None) if s == 0 else side.__setitem__(p, s)
            bp = max(bids)
            ap = min(asks)
            t = e.ts if e.ts is not None else e.recv_ns
            touch[Side.SELL].append((t, bp, bids[bp]))
            touch[Side.BUY].append((t, ap, asks[ap]))
        elif isinstance(e, Trade):
            hist = touch[e.side]  # type: ignore[index]
            ends = [h[0] for h in hist[1:]] + [None]
            shown = [
                size
                for (since, price, size), until in zip(hist, ends, strict=True)
                if price == e.price and since <= e.ts and (until is None or until > e.ts - lookback)  # type: ignore[operator]
            ]
            out[i] = max(shown, default=0.0)
    return out


def test_hidden_liquidity_matches_batch_on_generated_trades() -> None:
    truth = generated(seed=12, steps=3_000)
    events = list(truth.events)
    lookback = 200 * MS
    displayed = batch_displayed(events, lookback)
    # the mock market never trades more than it shows: plant icebergs on some trades
    rng = random.Random(4)
    planted = set()
    for i, e in enumerate(events):
        if isinstance(e, Trade) and displayed[i] > 0 and rng.random() < 0.1:
            events[i] = trade(e.ts, e.price, displayed[i] * 1.5 + 0.001, e.side)  # type: ignore[arg-type]
            planted.add(i)
    op = HiddenLiquidity(ratio=1.0, lookback_ns=lookback)
    flagged = []
    for i, e in enumerate(events):
        for o in op.update(e):
            assert isinstance(o, HiddenFill)
            flagged.append(i)
            assert o.displayed == displayed[i] and o.traded > o.displayed
    assert set(flagged) == planted and len(planted) > 30
    assert op.unjudged == sum(1 for i, d in displayed.items() if d == 0.0)


def test_hidden_liquidity_groups_one_takers_trades_and_needs_a_book() -> None:
    op = HiddenLiquidity(lookback_ns=SEC)
    (s,) = op.update(trade(T0, 100.5, 1.0, Side.BUY))
    assert isinstance(s, Suspended) and s.reason == "no book yet" and s.venue == V
    op.update(BookSnapshot(V, S, ((100.0, 1.0),), ((100.5, 2.0),), T0, T0))
    # three fills of one taker order at one price and time: 1.5 + 0.4 (no) + 0.3 (2.2 > 2: yes)
    assert op.update(trade(T0 + 1, 100.5, 1.5, Side.BUY)) == ()
    assert op.update(trade(T0 + 1, 100.5, 0.4, Side.BUY)) == ()
    (h,) = op.update(trade(T0 + 1, 100.5, 0.3, Side.BUY))
    assert isinstance(h, HiddenFill) and h.traded == pytest.approx(2.2) and h.displayed == 2.0
    assert op.update(trade(T0 + 1, 100.5, 5.0, Side.BUY)) == ()  # the same group: reported once
    # a side-less trade is placed by price
    (h2,) = op.update(trade(T0 + 2, 100.0, 3.0, None))
    assert h2.side is Side.SELL
    for o in (s, h, h2):
        assert from_dict(to_dict(o)) == o


def test_reset_makes_every_flow_operator_as_new() -> None:
    """Running a stream, reset(), and running it again gives the outputs of a new operator."""
    from wsmux.analytics import (
        BookImbalance,
        CrossVenueSpread,
        LeadLag,
        MidVolatility,
        OrderFlowImbalance,
        ReturnCorrelation,
        SpreadDepth,
        WeightedMid,
    )
    from wsmux.model import evolve

    one = generated(seed=21, steps=600).events
    two = [evolve(e, venue="w") for e in generated(seed=22, steps=600).events]  # type: ignore[misc]
    both = sorted(one + two, key=lambda e: e.ts)  # type: ignore[attr-defined]
    makers = [
        (lambda: OrderFlowImbalance(3, interval_ns=SEC), one),
        (lambda: BookImbalance(4), one),
        (WeightedMid, one),
        (lambda: SpreadDepth(SEC), one),
        (lambda: MidVolatility(SEC, 5), one),
        (
            lambda: QuoteStuffing(window_ns=SEC, min_updates=20, max_trades=3),
            [e for e in one if not isinstance(e, BookSnapshot)],
        ),
        (lambda: FleetingWalls(0.5), wall_stream(2)[0]),
        (lambda: HiddenLiquidity(ratio=0.5), one),
        (lambda: CrossVenueSpread(S, (V, "w"), fees_bps=0.0, max_age_ns=SEC, min_integrity=None), both),
        (lambda: ReturnCorrelation(S, (V, "w"), interval_ns=SEC, window=5), both),
        (lambda: LeadLag(S, (V, "w"), interval_ns=SEC, window=5, max_lag=2), both),
    ]
    for make, events in makers:
        op = make()  # type: ignore[operator]
        first = [o for e in events for o in op.update(e)]
        op.reset()
        again = [o for e in events for o in op.update(e)]
        fresh = make()  # type: ignore[operator]
        assert again == first == [o for e in events for o in fresh.update(e)], op.name
        assert first, op.name


def test_hidden_liquidity_and_quote_bursts_on_the_coinbase_recording_match_batch() -> None:
    from flowkit import recorded_coinbase

    events = recorded_coinbase()
    if events is None:
        pytest.skip("recordings not found")
    judged = bursts = 0
    for symbol in sorted({e.symbol for e in events if isinstance(e, Trade)}):
        mine = [e for e in events if isinstance(e, BookSnapshot | BookUpdate | Trade) and e.symbol == symbol]
        first_book = next((i for i, e in enumerate(mine) if isinstance(e, BookSnapshot)), None)
        if first_book is None:
            continue
        mine = mine[first_book:]
        lookback = 500 * MS
        displayed = batch_displayed(mine, lookback)
        op = HiddenLiquidity(ratio=1.0, lookback_ns=lookback)
        for i, e in enumerate(mine):
            out = op.update(e)
            if isinstance(e, Trade) and displayed.get(i, 0.0) > 0 and e.size > displayed[i]:
                assert [type(o) for o in out] == [HiddenFill] and out[0].displayed == displayed[i]  # type: ignore[attr-defined]
        judged += sum(1 for d in displayed.values() if d > 0)
        # bursts: the counts of a batch over the recorded prefix at each report
        stuff = QuoteStuffing(window_ns=SEC, min_updates=5, max_trades=0)
        flow = [e for e in mine if not isinstance(e, BookSnapshot) and e.ts is not None]
        times = np.array([e.ts for e in flow], dtype=np.int64)
        assert np.all(np.diff(times) >= 0)  # the recording's times never go back per product
        is_trade = np.array([isinstance(e, Trade) for e in flow])
        for k, e in enumerate(flow):
            for b in stuff.update(e):
                recent = times[: k + 1] > times[k] - SEC
                assert isinstance(b, QuoteBurst)
                assert (b.updates, b.trades) == (int(np.sum(recent & ~is_trade[: k + 1])), 0)
                assert int(np.sum(recent & is_trade[: k + 1])) == 0
                bursts += 1
    assert judged > 20 and bursts > 5, (judged, bursts)
