"""The Prometheus exporter: a real HTTP scrape on 127.0.0.1, parsed with
prometheus_client's own parser; a port in use; a loop that does not answer."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import httpx
import pytest

from wsmux import Multiplexer, Resynced, book, trades
from wsmux.errors import ConfigError
from wsmux.testing import MockBinance, collect_until

prometheus = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from wsmux.metrics._prometheus import WsmuxCollector  # noqa: E402

GRAFANA = Path(__file__).resolve().parents[1] / "examples" / "grafana-wsmux.json"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_scrape_the_real_endpoint() -> None:
    async with (
        MockBinance(["BTC-USDT"]) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, metrics={"sample_every": 1}) as mux,
    ):
        stream = mux.subscribe(*book("binance", "BTC-USDT"), *trades("binance", "BTC-USDT"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(100)
        last = mock.update_id("BTC-USDT")
        await collect_until(stream, lambda e: getattr(e, "seq", None) == last)
        mux._metrics_tick()  # a second of metrics: the per-channel flow baselines exist
        mux.connections()[0].feed.stats.snapshot_reasks = 2  # as if a stream snapshot was asked for twice
        server = mux.serve_metrics(0)
        assert server.host == "127.0.0.1" and server.port > 0
        async with httpx.AsyncClient() as client:
            response = await client.get(server.url)  # the loop stays free to answer the scrape
        assert response.status_code == 200
        got = samples(response.text)
        conn = mux.connections()[0]
        labels = (("conn", str(conn.conn_id)), ("venue", "binance"))
        assert got["wsmux_frames_total", labels] == conn.feed.stats.frames > 0
        assert got["wsmux_events_total", labels] == conn.feed.stats.events
        assert got["wsmux_snapshot_reasks_total", labels] == 2
        assert mux.health().venue("binance").counters["snapshot_reasks"] == 2  # type: ignore[union-attr]
        assert got["wsmux_connection_up", (*labels[:1], ("state", "open"), labels[1])] == 1.0
        assert got["wsmux_book_valid", (("integrity", "sequence"), ("symbol", "BTC-USDT"), ("venue", "binance"))] == 1
        assert got["wsmux_scrape_stale", ()] == 0.0
        lat = mux.metrics.venue("binance").latency  # type: ignore[union-attr]
        book_count = lat.histograms[next(c for c in lat.histograms if c.value == "book")].total
        assert got["wsmux_latency_seconds_count", (("channel", "book"), ("venue", "binance"))] == book_count > 0
        inf = got["wsmux_latency_seconds_bucket", (("channel", "book"), ("le", "+Inf"), ("venue", "binance"))]
        ten = got["wsmux_latency_seconds_bucket", (("channel", "book"), ("le", "10.0"), ("venue", "binance"))]
        assert inf == book_count and ten <= inf
        assert ("wsmux_event_rate", (("venue", "binance"), ("window", "10s"))) in got
        rest = mux._rest_limiters["binance"]
        assert got["wsmux_rest_weight_total", (("venue", "binance"),)] == rest.weight_used > 0  # the snapshot
        assert got["wsmux_events_by_type_estimated_total", (("type", "BookUpdate"), ("venue", "binance"))] > 0
        assert any(name == "wsmux_consumer_latency_seconds_count" for name, _ in got)
        for channel in ("book", "trades"):
            assert (
                got["wsmux_channel_flow_anomaly", (("channel", channel), ("state", "normal"), ("venue", "binance"))]
                == 1
            )
        # every series the example Grafana dashboard queries is exported
        families = {f.name for f in text_string_to_metric_families(response.text)}
        exprs = [t["expr"] for panel in json.loads(GRAFANA.read_text())["panels"] for t in panel["targets"]]
        used = {re.sub(r"_(total|bucket)$", "", m) for e in exprs for m in re.findall(r"wsmux_[a-z_]+", e)}
        assert used and used <= families, used - families
        await stream.aclose()
    # closing the multiplexer stops the server
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(server.url)


async def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with Multiplexer() as mux:
            with pytest.raises(ConfigError, match=rf"cannot serve metrics on 127\.0\.0\.1:{port}"):
                mux.serve_metrics(port)
            with pytest.raises(ConfigError, match=r"0\.\.65535"):
                mux.serve_metrics(70_000)


async def test_a_loop_that_does_not_answer_gets_the_last_snapshot() -> None:
    async with Multiplexer() as mux:
        collector = WsmuxCollector(mux, asyncio.get_running_loop())
        first = await asyncio.to_thread(lambda: list(collector.collect()))  # the loop answers
        assert collector.last is not None and not collector.stale
        idle = asyncio.new_event_loop()  # never runs: stands for a loop blocked by user code
        try:
            collector.loop = idle
            collector.timeout = 0.05
            again = await asyncio.to_thread(lambda: list(collector.collect()))
        finally:
            idle.close()
        assert collector.stale
        assert [f.name for f in again] == [f.name for f in first]
        stale = next(f for f in again if f.name == "wsmux_scrape_stale")
        assert stale.samples[0].value == 1.0


def test_the_sync_facade_serves_metrics_too() -> None:
    from wsmux.sync import Multiplexer as SyncMultiplexer

    with SyncMultiplexer(metrics={"interval": None}) as mux:
        server = mux.serve_metrics(0)
        response = httpx.get(server.url, timeout=10)
        assert response.status_code == 200
        assert "wsmux_scrape_stale 0.0" in response.text
    with SyncMultiplexer(metrics=False) as mux, pytest.raises(ConfigError, match="metrics are off"):
        mux.serve_metrics(0)
