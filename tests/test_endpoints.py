"""Endpoint choice, the pure half: forecasts, ranking, verdicts, configuration errors.

The I/O half (probes, warm switches, failover) is tested against proxies in
tests/chaos/test_chaos_endpoints.py.
"""

from __future__ import annotations

import random

import pytest

from wsmux import ConfigError, Endpoint, EndpointPolicy, EndpointReason, Multiplexer
from wsmux._endpoints import EndpointChooser, LatencyForecast
from wsmux.exchanges.binance import BinanceSpotAdapter

A, B, C = "wss://a.example/ws", "wss://b.example/ws", "wss://c.example/ws"


def _chooser(policy: EndpointPolicy | None = None, redundancy: int = 1) -> EndpointChooser:
    return EndpointChooser(
        "binance", [(A, None), (B, None), (C, None)], policy or EndpointPolicy(), redundancy=redundancy
    )


def test_forecast_tracks_the_upper_quantile_of_a_noisy_latency() -> None:
    rng = random.Random(7)
    lat = LatencyForecast()
    samples = [0.020 + rng.expovariate(1 / 0.005) for _ in range(3000)]
    for s in samples:
        lat.add(s)
    ordered = sorted(samples)
    true_p50, true_p90 = ordered[1500], ordered[2700]
    assert lat.p50 == pytest.approx(true_p50, rel=0.15)
    assert lat.p90 == pytest.approx(true_p90, rel=0.15)
    assert lat.forecast is not None and lat.forecast >= lat.mean


def test_forecast_follows_a_step_within_a_check_or_two() -> None:
    lat = LatencyForecast()
    for _ in range(20):  # the baseline is a slow average of many checks' medians
        lat.add_batch([0.010] * 20)
    assert lat.baseline == pytest.approx(0.010)
    lat.add_batch([0.100] * 20)
    assert lat.forecast is not None and lat.forecast > 0.05  # well above the 10 ms baseline
    assert lat.baseline is not None and lat.baseline < 0.02  # the baseline moves slowly


def test_forecast_ignores_non_finite_samples() -> None:
    lat = LatencyForecast()
    lat.add(float("nan"))
    lat.add(float("inf"))
    assert lat.n == 0 and lat.forecast is None


def test_nothing_is_decided_before_the_active_host_is_measured() -> None:
    ch = _chooser()
    ch.record_probe(B, 0.01, 0.02, [0.005] * 10)
    assert ch.verdict() is None
    ch.record_samples(A, [0.050] * 10)
    assert ch.verdict() == (B, EndpointReason.FASTER)


def test_hysteresis_keeps_the_active_host_for_a_small_gain() -> None:
    ch = _chooser(EndpointPolicy(switch_margin=0.2, min_gain_s=0.002))
    ch.record_samples(A, [0.010] * 10)
    ch.record_probe(B, None, None, [0.0085] * 10)  # 15 % faster: not enough
    assert ch.verdict() is None
    ch.record_probe(B, None, None, [0.0079] * 10)  # 21 % and 2.1 ms faster
    assert ch.verdict() == (B, EndpointReason.FASTER)


def test_handshake_time_ranks_hosts_of_a_venue_without_timestamps() -> None:
    ch = _chooser()
    ch.record_handshake(A, 0.080)
    ch.record_probe(B, 0.020, None, [])
    assert ch.verdict() == (B, EndpointReason.FASTER)


def test_a_degraded_active_host_is_left_with_reason_degraded() -> None:
    ch = _chooser()
    for _ in range(5):
        ch.record_samples(A, [0.010] * 10)
    ch.record_probe(B, None, None, [0.020] * 10)
    assert ch.verdict() is None and not ch.degraded()
    ch.record_samples(A, [0.200] * 20)
    assert ch.degraded()
    assert ch.verdict() == (B, EndpointReason.DEGRADED)


def test_failures_move_a_host_last_and_failover_skips_failing_hosts() -> None:
    ch = _chooser(EndpointPolicy(failover_after=2))
    assert not ch.record_failure(A)
    assert ch.record_failure(A)
    assert ch.next_after(A) == B
    ch.record_failure(B)
    ch.record_failure(B)
    assert ch.next_after(A) == C
    assert [h.url for h in ch.ranking()][-2:] == [A, B]
    ch.record_handshake(A, 0.01)  # a success clears the count
    assert ch.host(A).failures == 0


def test_redundant_connections_spread_over_the_best_hosts() -> None:
    ch = _chooser(redundancy=2)
    ch.record_samples(A, [0.030] * 10)
    ch.record_probe(C, None, None, [0.010] * 10)
    ch.record_probe(B, None, None, [0.020] * 10)
    assert ch.pick({}) == A  # the active host first
    assert ch.pick({A: 1}) == C  # then the fastest other one
    assert ch.pick({A: 1, C: 1}) == A


def test_chooser_rejects_no_host_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="no host"):
        EndpointChooser("binance", [], EndpointPolicy())
    with pytest.raises(ConfigError, match="twice"):
        EndpointChooser("binance", [(A, None), (A, None)], EndpointPolicy())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("check_every", 0),
        ("reevaluate_every", float("inf")),
        ("probe_timeout", -1),
        ("switch_margin", float("nan")),
        ("degrade_ratio", 1.0),
        ("sample_events", 0),
        ("failover_after", True),
    ],
)
def test_policy_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        EndpointPolicy(**{field: value})  # type: ignore[arg-type]


def test_multiplexer_validates_host_lists() -> None:
    with pytest.raises(ConfigError, match="empty list"):
        Multiplexer(endpoints={"binance": []})
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        Multiplexer(endpoints={"binance": ["https://stream.binance.com"]})
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        Multiplexer(endpoints={"binance": [Endpoint(rest_url="https://x")]})
    with pytest.raises(ConfigError, match="endpoint_choice"):
        Multiplexer(endpoint_choice="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="an Endpoint, a URL string or a list"):
        Multiplexer(endpoints={"binance": 443})  # type: ignore[dict-item]


async def test_choice_is_on_for_a_list_off_for_a_pinned_venue_and_backups_on_request() -> None:
    async with Multiplexer(endpoints={"binance": [A, B], "okx": "wss://pinned.example/ws"}) as mux:
        assert mux._driver("binance") is not None
        assert mux._driver("okx") is None  # pinned
        assert mux._driver("htx") is None  # backups only with endpoint_choice=True
    async with Multiplexer(endpoint_choice=True) as mux:
        driver = mux._driver("binance")
        assert driver is not None
        assert [h.url for h in driver.chooser.hosts] == [
            BinanceSpotAdapter.default_url,
            *BinanceSpotAdapter.backup_urls,
        ]
    async with Multiplexer(endpoints={"binance": [A, B]}, endpoint_choice=False) as mux:
        assert mux._driver("binance") is None
        assert mux._new_adapter("binance").url.startswith(A.rsplit("/", 1)[0])


def test_host_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSMUX_ENDPOINTS", f'{{"binance": ["{A}", {{"url": "{B}", "rest_url": "https://b.example"}}]}}')
    mux = Multiplexer()
    assert [(h.url, h.rest_url) for h in mux._host_lists["binance"]] == [(A, None), (B, "https://b.example")]
    monkeypatch.setenv("WSMUX_ENDPOINTS", '{"binance": ["https://not-a-websocket"]}')
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        Multiplexer()


async def test_latency_tap_passes_everything_and_leaves_absurd_timestamps_out() -> None:
    from wsmux import Side, Trade
    from wsmux._hosts import LatencyTap

    seen: list[object] = []
    tap = LatencyTap(seen.append, wanted=2)
    now = 1_800_000_000_000_000_000
    events = [
        Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "1", now - 5_000_000, now),  # 5 ms
        Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "2", None, now),  # no venue time: no sample
        Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "3", 0, now),  # zero: no sample
        Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "4", now // 1_000_000, now),  # ms for ns: absurd
        Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "5", now + 10**12, now),  # far future: absurd
        Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "6", now - 7_000_000, now),  # 7 ms
    ]
    for event in events:
        tap(event)
    assert seen == events  # every event passes unchanged
    assert tap.samples == pytest.approx([0.005, 0.007])
    assert tap.absurd == 2
    assert tap.done.is_set()


def test_a_step_up_counts_as_degraded_even_while_the_baseline_is_young() -> None:
    ch = _chooser()
    ch.record_samples(A, [0.010] * 10)  # one check: the baseline is young and moves fast
    ch.record_probe(B, None, None, [0.040] * 10)
    ch.record_samples(A, [0.150] * 10)
    assert ch.degraded()
    assert ch.verdict() == (B, EndpointReason.DEGRADED)
    ch.record_samples(A, [0.150] * 10)  # the same level again: no longer a step from the baseline
    assert not ch.host(A).degraded
