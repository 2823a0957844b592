"""Flow baselines: anomalies on collapse and spike, none on slow drift; the
arrival-rate prediction of the stale-data timer (pure: counts in, verdicts out)."""

from __future__ import annotations

import random

from wsmux.metrics import ChannelFlow, FlowBaseline, FlowState, MetricsRegistry
from wsmux.metrics._anomaly import MIN_RATE, MIN_SPIKE_SAMPLES, WINDOW
from wsmux.model import AnomalyKind, Channel


def run(flow: FlowBaseline, counts: list[int]) -> list[tuple[int, AnomalyKind]]:
    out = []
    for i, n in enumerate(counts):
        kind = flow.tick(n)
        if kind is not None:
            out.append((i, kind))
    return out


def poisson(rng: random.Random, rate: float, seconds: int) -> list[int]:
    out = []
    for _ in range(seconds):
        n, t = 0, rng.expovariate(rate)
        while t < 1.0:
            n += 1
            t += rng.expovariate(rate)
        out.append(n)
    return out


def test_steady_noisy_flow_raises_nothing() -> None:
    rng = random.Random(11)
    assert run(FlowBaseline(), poisson(rng, 50.0, 1800)) == []


def test_a_feed_that_goes_quiet_collapses_then_recovers() -> None:
    rng = random.Random(2)
    flow = FlowBaseline()
    assert run(flow, poisson(rng, 40.0, 120)) == []
    quiet = run(flow, [0] * 30)
    assert quiet == [(WINDOW - 1, AnomalyKind.COLLAPSE)]  # judged over the 10-s window
    assert flow.state is FlowState.COLLAPSE
    assert 35 < flow.expected < 45  # frozen during the episode: the silence is not the norm
    back = run(flow, poisson(rng, 40.0, 30))
    assert back and back[0][1] is AnomalyKind.RECOVERED and len(back) == 1


def test_a_burst_is_a_spike() -> None:
    rng = random.Random(3)
    flow = FlowBaseline()
    run(flow, poisson(rng, 20.0, 120))
    events = run(flow, [400, 20, 21])
    assert events == [(0, AnomalyKind.SPIKE), (1, AnomalyKind.RECOVERED)]


def test_slow_drift_is_adopted_without_alarms() -> None:
    rng = random.Random(4)
    flow = FlowBaseline()
    counts: list[int] = []
    for minute in range(20):  # 20 -> 60 msg/s over 20 minutes
        counts += poisson(rng, 20.0 + 2.0 * minute, 60)
    assert run(flow, counts) == []
    assert 50 < flow.expected < 65


def test_a_quiet_feed_by_nature_is_never_collapsed() -> None:
    rng = random.Random(5)
    flow = FlowBaseline()
    assert run(flow, poisson(rng, 0.3, 300) + [0] * 120) == []


def test_a_lasting_change_is_adopted_after_the_episode_limit() -> None:
    flow = FlowBaseline(adopt_after=60, half_life=10)
    run(flow, [30] * 100)
    events = run(flow, [1] * 400)
    assert events[0][1] is AnomalyKind.COLLAPSE
    assert events[-1][1] is AnomalyKind.RECOVERED  # the baseline followed the new level
    assert flow.expected < 2


def test_stall_timeout_is_sooner_for_busy_feeds_and_bounded() -> None:
    busy, quiet, silent = FlowBaseline(warmup=5), FlowBaseline(warmup=5), FlowBaseline(warmup=5)
    assert busy.stall_timeout(2.5, 40.0) is None  # not before the warm-up
    run(busy, [200] * 10)
    run(quiet, [1, 0, 0, 1, 0, 0, 0, 1, 0, 0])
    run(silent, [0] * 10)
    assert busy.stall_timeout(2.5, 40.0) == 2.5  # 13.8 / 200 s, clamped up to the floor
    assert quiet.stall_timeout(2.5, 40.0) == 40.0  # 13.8 / 0.3 s, clamped to the ceiling
    assert silent.stall_timeout(2.5, 40.0) == 40.0
    mid = FlowBaseline(warmup=5)
    run(mid, [2] * 10)
    assert mid.stall_timeout(2.5, 40.0) == 13.815510557964274 / 2


def sampled(rng: random.Random, rate: float, seconds: int, weight: int) -> list[tuple[int, int]]:
    """Per second, (estimated events, sampled frames) of a Poisson feed of one
    event per frame, each frame sampled with probability 1 / ``weight``."""
    out = []
    for n in poisson(rng, rate, seconds):
        k = sum(1 for _ in range(n) if rng.random() < 1 / weight)
        out.append((k * weight, k))
    return out


def run_channel(flow: ChannelFlow, seconds: list[tuple[int, int]], exact: bool) -> list[tuple[int, AnomalyKind]]:
    out = []
    for i, (events, frames) in enumerate(seconds):
        kind = flow.tick(events, frames, exact)
        if kind is not None:
            out.append((i, kind))
    return out


def test_a_busy_channel_estimated_one_in_32_is_quiet_when_steady_and_collapses_when_silent() -> None:
    rng = random.Random(21)
    flow = ChannelFlow()
    assert run_channel(flow, sampled(rng, 1000.0, 1800, 32), exact=False) == []  # noisy estimates, no alarm
    assert 900 < flow.baseline.expected < 1100 and not flow.exact
    assert run_channel(flow, [(0, 0)] * 15, exact=False) == [(WINDOW - 1, AnomalyKind.COLLAPSE)]
    back = run_channel(flow, sampled(rng, 1000.0, 30, 32), exact=False)
    assert [kind for _, kind in back] == [AnomalyKind.RECOVERED]


def test_a_channel_with_too_few_samples_is_not_judged_but_the_same_counts_exact_are() -> None:
    rng = random.Random(22)
    counts = sampled(rng, 64.0, 300, 32)  # ~2 sampled frames a second: ~20 per window, below 30
    estimated, exact = ChannelFlow(), ChannelFlow()
    assert run_channel(estimated, counts, exact=False) == []
    assert run_channel(estimated, [(0, 0)] * 30, exact=False) == []  # silence is not proof at this sample size
    assert estimated.baseline.expected > MIN_RATE
    run_channel(exact, [(n, n) for n in poisson(rng, 20.0, 300)], exact=True)
    assert run_channel(exact, [(0, 0)] * 30, exact=True) == [(WINDOW - 1, AnomalyKind.COLLAPSE)]


def test_a_spike_of_an_estimated_channel_needs_enough_sampled_frames() -> None:
    rng = random.Random(23)
    counts = sampled(rng, 64.0, 300, 32)  # ~2 sampled frames a second
    few, enough = ChannelFlow(), ChannelFlow()
    run_channel(few, counts, exact=False)
    run_channel(enough, counts, exact=False)
    mean, std = few.baseline.expected, few.baseline.ewma.std
    frames = MIN_SPIKE_SAMPLES - 1
    assert frames * 32 > max(4 * mean, mean + 6 * std)  # beyond the rate thresholds...
    assert few.tick(frames * 32, frames, False) is None  # ...but too few frames to tell
    assert enough.tick(MIN_SPIKE_SAMPLES * 32, MIN_SPIKE_SAMPLES, False) is AnomalyKind.SPIKE


def test_symbol_stale_timer_follows_the_channel_rate_within_bounds() -> None:
    registry = MetricsRegistry({})
    channels = registry.venue("binance").channels
    busy = channels[Channel.TRADES] = ChannelFlow(warmup=5)
    quiet = channels[Channel.BOOK] = ChannelFlow(warmup=5)
    assert registry.symbol_stale_after("binance", Channel.TRADES, 20.0, 1) == 20.0  # not before the warm-up
    run_channel(busy, [(200, 200)] * 10, exact=True)
    run_channel(quiet, [(1, 1)] + [(0, 0)] * 9, exact=True)  # 0.1 msg/s
    # the only symbol of a busy channel: stale sooner (13.8 / 200 s, floored at 20 / 4)
    assert registry.symbol_stale_after("binance", Channel.TRADES, 20.0, 1) == 5.0
    # several symbols: one of them may be quiet while the channel is busy, so no sooner
    assert registry.symbol_stale_after("binance", Channel.TRADES, 20.0, 3) == 20.0
    # a channel too quiet for an event within 20 s: later, for one symbol or several (13.8 / 0.1 s, capped at 4x)
    assert registry.symbol_stale_after("binance", Channel.BOOK, 20.0, 1) == 80.0
    assert registry.symbol_stale_after("binance", Channel.BOOK, 20.0, 4) == 80.0
    assert registry.symbol_stale_after("binance", Channel.QUOTES, 20.0, 1) == 20.0  # no baseline
    registry.adaptive_stale = False
    assert registry.symbol_stale_after("binance", Channel.TRADES, 20.0, 1) == 20.0
