"""``wsmux run`` configs: the shipped example, bad configs, the shard rule,
and a worker with in-process mocks (the example's ``[mock]`` table) publishing
into a real engine."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import attrs
import httpx
import pytest
from conftest import Engine
from enginekit import free_port

from wsmux import book
from wsmux.errors import ConfigError
from wsmux.model import Event, Resynced
from wsmux.stream import Overflow
from wsmux.testing import collect_until
from wsmux.worker import _every, load_config, parse_shard, run_worker, shard_venues

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "worker.toml"


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.worker == "example" and config.sink["kind"] == "redis"
    assert {str(s) for s in config.subscriptions} == {
        "binance:book:BTC-USDT",
        "binance:book:ETH-USDT",
        "binance:trades:BTC-USDT",
        "binance:trades:ETH-USDT",
        "kraken:book:BTC-USD",
        "kraken:trades:BTC-USD",
    }
    assert config.overflow is Overflow.DROP_OLDEST and config.mock == {"rate": 20.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sink]\nkind = "redis"\n', "[[subscribe]]"),
        ('[sink]\nkind = "kafka"\n[[subscribe]]\nvenue = "binance"\nsymbols = ["BTC-USDT"]\n', "kind"),
        ('[sink]\nkind = "redis"\n[[subscribe]]\nvenue = "binance"\n', "symbols"),
        ('[sink]\nkind = "redis"\n[[subscribe]]\nvenue = "nope"\nsymbols = ["BTC-USDT"]\n', "nope"),
        (
            '[sink]\nkind = "redis"\n[stream]\noverflow = "later"\n'
            '[[subscribe]]\nvenue = "binance"\nsymbols = ["X-Y"]\n',
            "overflow",
        ),
        ("not toml = = 1", "not TOML"),
    ],
)
def test_bad_configs_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path)


def test_the_shard_rule_is_stable_and_covers_every_venue_once() -> None:
    venues = ["okx", "binance", "kraken", "bybit", "coinbase"]
    shards = [shard_venues(venues, i, 3) for i in range(3)]
    assert shards == [["binance", "kraken"], ["bybit", "okx"], ["coinbase"]]
    assert sorted(v for s in shards for v in s) == sorted(venues)
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


async def test_a_worker_with_mocks_publishes_and_stops_cleanly(engine: Engine) -> None:
    config = load_config(EXAMPLE)
    metrics_port = free_port()
    config = attrs.evolve(
        config,
        sink={"kind": engine.kind, "url": engine.server.url},
        metrics_port=metrics_port,
        snapshot_every=0.5,
        status_every=0.2,
    )
    stop = asyncio.Event()
    out = io.StringIO()
    worker = asyncio.get_running_loop().create_task(run_worker(config, shard=(1, 2), stop=stop, out=out))
    source = engine.source(book("kraken", "BTC-USD"), start="all")
    async with source as stream:
        resynced: list[Event] = []

        def three_snapshots(e: Event) -> bool:
            # the sync, then two periodic snapshots 0.5 s apart: the 0.2 s
            # status timer fires in between, with the book valid
            if isinstance(e, Resynced):
                resynced.append(e)
            return len(resynced) == 3

        await collect_until(stream, three_snapshots, timeout=30)
        assert source.book("kraken", "BTC-USD").valid
        async with httpx.AsyncClient() as http:  # the worker serves its metrics
            scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)).text
        assert 'wsmux_frames_total{' in scraped and 'venue="kraken"' in scraped
        stop.set()
        assert await asyncio.wait_for(worker, 30) == 0
    text = out.getvalue()
    assert "worker example-1of2 epoch" in text and "kraken" in text and "binance" not in text
    assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in text
    assert "stopped:" in text
    assert "books valid 1/1" in text  # the status line (every status_every seconds)


async def test_sigterm_with_the_engine_down_exits_1_within_the_shutdown_timeout(engine: Engine) -> None:
    config = attrs.evolve(
        load_config(EXAMPLE),
        sink={"kind": engine.kind, "url": engine.server.url, "timeout": 0.5},
        shutdown_timeout=1.0,
    )
    stop = asyncio.Event()
    out = io.StringIO()
    worker = asyncio.get_running_loop().create_task(run_worker(config, shard=(1, 2), stop=stop, out=out))
    source = engine.source(book("kraken", "BTC-USD"), start="all")
    async with source as stream:
        await collect_until(stream, lambda e: isinstance(e, Resynced), timeout=30)
    engine.server.stop()
    stop.set()
    assert await asyncio.wait_for(worker, 30) == 1
    assert "did not take the last" in out.getvalue() and "stopped:" in out.getvalue()


def test_a_shard_table_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(EXAMPLE.read_text() + "\n[shard]\nindex = 1\ncount = 2\n")
    assert load_config(path).shard == (1, 2)
    path.write_text(EXAMPLE.read_text() + "\n[shard]\nindex = 2\ncount = 2\n")
    with pytest.raises(ConfigError, match="shard index"):
        load_config(path)


async def test_a_periodic_job_ends_when_its_cancel_was_swallowed_inside_the_job() -> None:
    """The worker's heartbeat, snapshot and status jobs end on shutdown even
    when the cancel lands inside the job and the engine client swallows it
    (redis-py can, in a race): the shutdown waits for them."""
    inside = asyncio.Event()
    calls = 0

    async def swallowing_job() -> None:
        nonlocal calls
        calls += 1
        inside.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if calls > 1:
                raise  # only the first cancel is lost: a failing run still ends
            # as a client library that loses the cancel does

    job = asyncio.get_running_loop().create_task(_every(0.001, swallowing_job))
    await asyncio.wait_for(inside.wait(), 10)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(10):  # before the fix: the job ran on, this timed out
            await job
    assert calls == 1
