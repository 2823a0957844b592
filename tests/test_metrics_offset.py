"""Exchange time → receive latency and the clock offset, sans-I/O (VenueLatency, ClockOffset)."""

from __future__ import annotations

import random

import pytest

from wsmux.metrics import ClockOffset, VenueLatency
from wsmux.metrics._latency import WINDOWS
from wsmux.model import Channel, Quote, Trade

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
CHANNELS = {Trade: Channel.TRADES, Quote: Channel.QUOTES}


def trade(ts: int | None, recv_ns: int) -> Trade:
    return Trade("binance", "BTC-USDT", 100.0, 1.0, None, "1", ts, recv_ns)


def feed(lat: VenueLatency, skew_ns: int, latencies_ms: list[float], start: int = T0) -> None:
    """Frames sent at ``start + i ms`` by a venue whose clock runs ``skew_ns`` ahead."""
    for i, latency in enumerate(latencies_ms):
        sent = start + i * MS
        recv = sent + int(latency * MS)
        lat.sample([trade(sent + skew_ns, recv)], recv)


def test_a_venue_clock_ahead_is_found_by_the_envelope_and_flagged() -> None:
    lat = VenueLatency(CHANNELS, sample_every=1)
    rng = random.Random(5)
    for window in range(WINDOWS):  # a minute of windows, latency 20 ms + jitter
        feed(lat, 2_000 * MS, [20 + rng.expovariate(1 / 5) for _ in range(200)], start=T0 + window * 10**10)
        lat.rotate()
    clock = lat.clock
    assert clock.source == "envelope"
    # the floor is the fastest frame: latency 20 ms - skew 2 s; the offset is its opposite
    assert clock.floor_ns == pytest.approx(20 * MS - 2_000 * MS, abs=MS)
    assert clock.offset_ns == pytest.approx(1_980 * MS, abs=MS)
    assert clock.ahead_ns == clock.offset_ns > 0 and clock.uncertainty_ns is None
    # latency net of the offset: the jitter above the fastest frame (exponential, mean 5 ms)
    recent = lat.recent(Channel.TRADES)
    p50 = recent.quantile(0.5)
    assert p50 is not None and 2 * MS < p50 < 6 * MS


def test_a_venue_clock_behind_or_in_step_gives_a_zero_offset_bound() -> None:
    lat = VenueLatency(CHANNELS, sample_every=1)
    feed(lat, -300 * MS, [10.0] * 50)  # stamps 300 ms late: cannot be told from latency
    lat.rotate()
    assert lat.clock.offset_ns == 0 and lat.clock.ahead_ns == 0
    p50 = lat.recent().quantile(0.5)
    assert p50 == pytest.approx(310 * MS, rel=1 / 16)


def test_rest_estimates_keep_the_smallest_round_trip_and_beat_the_envelope() -> None:
    lat = VenueLatency(CHANNELS, sample_every=1)
    skew = 1_500 * MS
    for rtt_ms, server_delay_ms in ((80, 70), (10, 5), (40, 1)):  # queueing makes the bound loose
        sent = T0
        received = sent + rtt_ms * MS
        assert lat.rest_sample(sent, received, sent + server_delay_ms * MS + skew)
    clock = lat.clock
    assert clock.source == "rest" and clock.rtt_ns == 10 * MS and clock.uncertainty_ns == 5 * MS
    assert abs(clock.offset_ns - skew) <= clock.uncertainty_ns
    feed(lat, skew, [30.0] * 100)
    lat.rotate()
    assert clock.source == "rest"  # the envelope does not override a REST estimate
    p50 = lat.recent(Channel.TRADES).quantile(0.5)
    assert p50 is not None and abs(p50 - 30 * MS) <= 5 * MS + 2 * MS
    assert clock.ahead_ns == 0


def test_timestamps_stamped_after_receipt_are_flagged_against_a_rest_offset() -> None:
    clock = ClockOffset()
    assert clock.rest_sample(T0, T0 + 2 * MS, T0 + MS)  # clocks agree within 1 ms
    clock.envelope(-50 * MS)  # yet events arrive 50 ms before their timestamps
    assert clock.ahead_ns == 49 * MS


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        (0, "zero"),
        (T0 // MS, "milliseconds where ns are expected"),
        (T0 * 1000, "microseconds of ns: far future"),
        (T0 + 2 * 3600 * 10**9, "two hours ahead"),
        (-5, "negative"),
    ],
)
def test_absurd_timestamps_are_counted_and_never_touch_histogram_or_offset(ts: int, why: str) -> None:
    lat = VenueLatency(CHANNELS, sample_every=1)
    feed(lat, 0, [12.0] * 20)
    lat.rotate()
    before = (lat.clock.to_dict(), lat.histograms[Channel.TRADES].copy().counts)
    for _ in range(5):
        lat.sample([trade(ts, T0)], T0)
    lat.rotate()
    assert lat.bad_ts == 5, why
    assert lat.histograms[Channel.TRADES].counts == before[1]
    assert lat.clock.to_dict() == before[0]


def test_events_without_timestamps_or_outside_market_data_are_counted_apart() -> None:
    lat = VenueLatency(CHANNELS, sample_every=1)
    lat.sample([trade(None, T0)], T0)
    lat.sample([], T0)
    lat.sample([object()], T0)  # not a market event: ignored
    assert (lat.no_ts, lat.bad_ts, lat.samples) == (1, 0, 0)
    assert all(h.total == 0 for h in lat.histograms.values())


def test_absurd_rest_answers_are_refused() -> None:
    clock = ClockOffset()
    assert not clock.rest_sample(T0, T0 - MS, T0)  # negative round trip
    assert not clock.rest_sample(T0, T0 + MS, T0 // MS)  # ms for ns
    assert clock.source == "none"


def test_one_absurd_window_does_not_move_the_envelope() -> None:
    lat = VenueLatency(CHANNELS, sample_every=1)
    for window in range(WINDOWS):
        feed(lat, 0, [10.0] * 20, start=T0 + window * 10**10)
        if window == 2:  # one frame 30 minutes "ahead", within the absurdity bound
            lat.sample([trade(T0 + 1800 * 10**9, T0)], T0)
        lat.rotate()
    assert lat.clock.offset_ns == 0 and lat.clock.floor_ns == pytest.approx(10 * MS, abs=1)


def test_sampling_takes_one_frame_in_n_via_the_mask() -> None:
    with pytest.raises(ValueError):
        VenueLatency(CHANNELS, sample_every=3)
    assert VenueLatency(CHANNELS, sample_every=16).mask == 15
