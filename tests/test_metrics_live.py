"""Metrics through the whole stack, against the mocks on 127.0.0.1: a venue
clock deliberately skewed, a link delayed by the chaos proxy, absurd
timestamps, anomalies and the adaptive stale timer, metrics off."""

from __future__ import annotations

from typing import Any

import pytest

from wsmux import Anomaly, AnomalyKind, BookUpdate, Multiplexer, Resynced, Trade, book, trades
from wsmux.errors import ConfigError
from wsmux.metrics._registry import DISABLED_MASK
from wsmux.model import Channel, Event
from wsmux.testing import ChaosProxy, MockBinance, MockGate, collect_until

MS = 1_000_000
SKEW_S = 2.0
DELAY_S = 0.05


def count_trades(mock: MockBinance | MockGate, symbol: str = "BTC-USDT") -> int:
    return int(mock.markets[symbol].next_trade_id) - 1


async def trades_up_to(stream: object, n: int) -> list[Event]:
    """Read until the ``n``-th trade arrived."""
    seen = [0]

    def nth(e: Event) -> bool:
        if isinstance(e, Trade):
            seen[0] += 1
        return seen[0] >= n

    return await collect_until(stream, nth)  # type: ignore[arg-type]


async def test_skewed_venue_clock_behind_a_delayed_link() -> None:
    async with (
        MockBinance(["BTC-USDT"]) as mock,
        ChaosProxy.to(mock, delay=DELAY_S) as proxy,
        Multiplexer(endpoints={"binance": proxy.endpoint(mock)}, metrics={"sample_every": 1, "interval": None}) as mux,
    ):
        mock.clock_skew = SKEW_S
        stream = mux.subscribe(*trades("binance", "BTC-USDT"))
        await mock.connected.wait()
        await mock.publish(200)
        await trades_up_to(stream, count_trades(mock))
        assert mux.metrics is not None
        lat = mux.metrics.venue("binance").latency
        # without a server time: the envelope proves the venue runs ahead (by ~2 s - 50 ms)
        lat.rotate()
        assert lat.clock.source == "envelope"
        assert (SKEW_S - DELAY_S) * 1e9 - 100 * MS < lat.clock.offset_ns < SKEW_S * 1e9
        assert mux.health().venue("binance").ahead  # type: ignore[union-attr]
        # with the REST server time (through the same delayed link): offset within ± RTT/2
        await mux._probe_clock("binance")
        assert mock.time_served == 1
        clock = lat.clock
        assert clock.source == "rest" and clock.uncertainty_ns is not None
        assert clock.uncertainty_ns >= DELAY_S / 2 * 1e9  # the proxy delays the answer
        assert abs(clock.offset_ns - SKEW_S * 1e9) <= clock.uncertainty_ns + 20 * MS
        before = lat.histograms[Channel.TRADES].copy()
        await mock.publish(200)
        await trades_up_to(stream, count_trades(mock) - before.total)
        fresh = lat.histograms[Channel.TRADES].since(before)
        p50 = fresh.quantile(0.5)
        # one-way latency net of the offset: the proxy's 50 ms, within the offset's uncertainty
        assert p50 is not None and abs(p50 - DELAY_S * 1e9) <= clock.uncertainty_ns + 30 * MS
        venue = mux.health().venue("binance")
        assert venue is not None and venue.clock["source"] == "rest" and not venue.ahead
        assert venue.latency["trades"]["count"] == lat.histograms[Channel.TRADES].total > 0
        await stream.aclose()


async def test_a_venue_with_absurd_timestamps_is_counted_not_measured() -> None:
    # the Gate mock stamps events with a counter of milliseconds from 0: absurd
    async with (
        MockGate(["BTC-USDT"]) as mock,
        Multiplexer(endpoints={"gateio": mock.endpoint}, metrics={"sample_every": 1, "interval": None}) as mux,
    ):
        stream = mux.subscribe(*book("gateio", "BTC-USDT"), *trades("gateio", "BTC-USDT"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))  # subscribed
        await mock.publish(100)
        await trades_up_to(stream, 5)
        assert mux.metrics is not None
        lat = mux.metrics.venue("gateio").latency
        lat.rotate()
        assert lat.bad_ts >= 5 and lat.samples == 0
        assert all(h.total == 0 for h in lat.histograms.values())
        assert lat.clock.source == "none" and lat.clock.offset_ns == 0
        vh = mux.health().venue("gateio")
        assert vh is not None and vh.bad_ts == lat.bad_ts
        await stream.aclose()


async def test_quiet_then_burst_anomalies_reach_the_stream_and_the_stall_timer_adapts() -> None:
    baseline = {"warmup": 5}
    async with (
        MockBinance(["BTC-USDT"]) as mock,
        Multiplexer(
            endpoints={"binance": mock.endpoint},
            stale_after=20.0,
            metrics={"interval": None, "baseline": baseline},
        ) as mux,
    ):
        stream = mux.subscribe(*trades("binance", "BTC-USDT"))
        await mock.connected.wait()
        conn = mux.connections()[0]
        await collect_until(stream, lambda e: conn.state == "open")  # Connected

        async def second(n: int) -> None:
            """About ``n`` trades reach the stream, then one metrics tick ("a second")."""
            target = count_trades(mock) + n
            while count_trades(mock) < target:
                await mock.publish(10)
            last = count_trades(mock)
            await collect_until(stream, lambda e: isinstance(e, Trade) and int(e.trade_id or 0) == last)
            mux._metrics_tick()

        for _ in range(12):  # a steady ~30 trades per "second"
            await second(30)
        flow = mux.metrics.flows[conn.conn_id]  # type: ignore[union-attr]
        assert flow.ewma.ready and flow.expected > 10
        # busy: stale sooner than the fixed 20 s, never below 20 / 4
        assert conn.liveness.stall_timeout == 5.0
        for _ in range(10):  # the feed goes quiet
            mux._metrics_tick()
        anomaly = await collect_until(stream, lambda e: isinstance(e, Anomaly))
        a = anomaly[-1]
        assert isinstance(a, Anomaly) and a.kind is AnomalyKind.COLLAPSE and a.venue == "binance"
        assert a.channel is Channel.TRADES and a.conn_id == conn.conn_id and a.expected > 10
        assert mux.health().venue("binance").flows[conn.conn_id]["state"] == "collapse"  # type: ignore[union-attr]
        await second(300)  # the flow resumes: 30/s over the 10-s window
        recovered = await collect_until(stream, lambda e: isinstance(e, Anomaly))
        assert recovered[-1].kind is AnomalyKind.RECOVERED  # type: ignore[attr-defined]
        await second(600)  # a burst: 20x the baseline in one second
        spike = await collect_until(stream, lambda e: isinstance(e, Anomaly))
        assert spike[-1].kind is AnomalyKind.SPIKE and spike[-1].rate > 100  # type: ignore[attr-defined]
        await stream.aclose()


async def test_metrics_off_leaves_the_hot_path_alone() -> None:
    async with (
        MockBinance(["BTC-USDT"]) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, metrics=False) as mux,
    ):
        stream = mux.subscribe(*trades("binance", "BTC-USDT"))
        await mock.connected.wait()
        await mock.publish(20)
        await trades_up_to(stream, count_trades(mock))
        conn = mux.connections()[0]
        assert mux.metrics is None
        assert conn.feed.sample_mask == DISABLED_MASK and stream._sample_mask == DISABLED_MASK
        vh = mux.health().venue("binance")
        assert vh is not None and vh.latency == {} and vh.counters["events"] == conn.feed.stats.events
        with pytest.raises(ConfigError, match="metrics are off"):
            mux.serve_metrics(0)
        await stream.aclose()


def test_bad_metrics_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="power of two"):
        Multiplexer(metrics={"sample_every": 3})
    with pytest.raises(ConfigError):
        Multiplexer(metrics={"no_such_option": 1})


async def test_quiet_connections_sample_every_frame_busy_ones_one_in_n() -> None:
    async with (
        MockBinance(["BTC-USDT"]) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, metrics={"interval": None, "dense_below": 50}) as mux,
    ):
        stream = mux.subscribe(*trades("binance", "BTC-USDT"))
        seen: list[Trade] = []
        stream.on(Trade, seen.append)  # a sync callback: receive -> callback return is sampled
        await mock.connected.wait()
        conn = mux.connections()[0]
        assert conn.feed.sample_mask == 0  # every frame until a tick finds the connection busy
        await mock.publish(10)
        await trades_up_to(stream, count_trades(mock))
        mux._metrics_tick()
        assert conn.feed.sample_mask == 0  # quiet: fewer than 50 frames in the tick
        lat = mux.metrics.venue("binance").latency  # type: ignore[union-attr]
        assert lat.samples == conn.feed.stats.events == len(seen) > 0  # one trade per frame, each sampled
        assert lat.events_by_type == {Trade: len(seen)}  # exact while every frame is sampled
        before = count_trades(mock)
        await mock.publish(300)
        await trades_up_to(stream, count_trades(mock) - before)
        mux._metrics_tick()
        assert conn.feed.sample_mask == 31  # busy: one frame in 32
        consumer = mux.metrics.stream_latency[stream.name]  # type: ignore[union-attr]
        # sampled one in 32 on each side: the callbacks (by events received) and the iterator (by events read)
        assert 0 < consumer.total <= stream.stats.received // 32 + stream.stats.delivered // 32
        health = mux.health().to_dict()
        (venue,) = health["venue_health"]
        assert venue["venue"] == "binance" and venue["rates"]["events"]["1s"] > 0
        assert venue["latency"]["trades"]["count"] == lat.histograms[Channel.TRADES].total
        # busy: the 300-step batch is counted in samples weighted by 32 (an estimate of the trades)
        assert 0.5 * len(seen) < venue["events_by_type"]["Trade"] < 2 * len(seen)
        await stream.aclose()


async def test_lost_connections_are_counted_by_kind() -> None:
    from wsmux import Backoff, Connected

    async with (
        MockBinance(["BTC-USDT"]) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, backoff=Backoff(initial=0.01, cap=0.05)) as mux,
    ):
        stream = mux.subscribe(*trades("binance", "BTC-USDT"))
        await collect_until(stream, lambda e: isinstance(e, Connected))
        await mock.drop_connections()
        await collect_until(stream, lambda e: isinstance(e, Connected))  # reconnected
        vh = mux.health().venue("binance")
        assert vh is not None and vh.failures_by_reason == {"ConnectionClosed": 1}
        assert vh.counters["reconnects"] == 1
        await stream.aclose()


class TradesSwitchBinance(MockBinance):
    """A Binance mock whose trade stream can be switched off while its book keeps flowing."""

    trades_on = True

    def _trade_frames(self, symbol: str, trade: Any, now: int) -> list[tuple[str, str]]:
        return super()._trade_frames(symbol, trade, now) if self.trades_on else []


@pytest.mark.parametrize(
    "metrics",
    [
        pytest.param({}, id="exact"),  # a quiet connection: every frame sampled, counts exact
        pytest.param({"sample_every": 2, "dense_below": 1}, id="sampled"),  # counts estimated from 1 frame in 2
    ],
)
async def test_trades_that_stop_while_the_book_flows_are_a_channel_collapse(metrics: dict[str, Any]) -> None:
    symbol = "BTC-USDT"
    async with (
        TradesSwitchBinance([symbol]) as mock,
        Multiplexer(
            endpoints={"binance": mock.endpoint}, metrics={"interval": None, "baseline": {"warmup": 5}, **metrics}
        ) as mux,
    ):
        stream = mux.subscribe(*book("binance", symbol), *trades("binance", symbol))
        seen: list[Anomaly] = []
        stream.on(Anomaly, seen.append)  # dispatched synchronously by the tick
        await collect_until(stream, lambda e: isinstance(e, Resynced))  # subscribed, book in sync
        (conn,) = mux.connections()  # trades and book on one connection
        assert {s.channel for s in conn.subscriptions} == {Channel.BOOK, Channel.TRADES}
        assert mux.metrics is not None

        async def second(steps: int = 40) -> list[Anomaly]:
            """``steps`` market steps reach the stream (up to the last book
            update), then one metrics tick ("a second"); the anomalies it raised."""
            await mock.publish(steps)
            last = mock.update_id(symbol)
            await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == last)
            before = len(seen)
            mux._metrics_tick()
            return seen[before:]

        def by_channel(anomalies: list[Anomaly]) -> list[tuple[Channel | None, AnomalyKind]]:
            return [(a.channel, a.kind) for a in anomalies]

        for _ in range(15):  # ~10 trades and ~13 book updates per "second"
            assert await second() == []
        channels = mux.metrics.venue("binance").channels
        assert channels[Channel.TRADES].baseline.expected > 5 and channels[Channel.BOOK].baseline.expected > 5
        assert channels[Channel.TRADES].exact is (not metrics)
        # the stale_channels timer of the only trades symbol follows the channel's rate (13.8 / ~10 s, floored)
        assert mux.metrics.symbol_stale_after("binance", Channel.TRADES, 20.0, 1) == 5.0
        mock.trades_on = False
        quiet = [a for _ in range(10) for a in await second()]  # the book keeps flowing
        assert by_channel(quiet) == [(Channel.TRADES, AnomalyKind.COLLAPSE)]  # nothing for BOOK, nor the connection
        (collapse,) = quiet
        assert collapse.venue == "binance" and collapse.conn_id == conn.conn_id  # one connection carries trades
        assert collapse.rate < 0.1 * collapse.expected and collapse.expected > 5
        flows = mux.health().venue("binance").channel_flows  # type: ignore[union-attr]
        assert flows["trades"]["state"] == "collapse" and flows["book"]["state"] == "normal"
        mock.trades_on = True
        back = [a for _ in range(10) for a in await second()]
        assert by_channel(back) == [(Channel.TRADES, AnomalyKind.RECOVERED)]
        mock.batch = 10**6  # a burst of trades; the book sends one update for it
        burst = await second(400)
        mock.batch = 3
        assert (Channel.TRADES, AnomalyKind.SPIKE) in by_channel(burst)
        assert all(a.channel is not Channel.BOOK for a in burst)
        spike = next(a for a in burst if a.channel is Channel.TRADES)
        assert spike.rate > 4 * spike.expected
        await stream.aclose()
