"""Fixtures: a real Redis and a real NATS (JetStream) per test, skipped with a
reason when the server binary is not installed (CI installs both: .ci/run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from enginekit import EngineProcess, nats_process, redis_process

pytest.importorskip("redis", reason="the redis extra is not installed: pip install 'wsmux[redis]'")
pytest.importorskip("nats", reason="the nats extra is not installed: pip install 'wsmux[nats]'")

from wsmux.sinks import NatsSink, NatsSource, RedisStreamSink, RedisStreamSource, Sink, Source


class Engine:
    """One engine under test: its server and how to build a sink and a source on it."""

    def __init__(self, kind: str, server: EngineProcess) -> None:
        self.kind = kind
        self.server = server

    def sink(self, **kw: Any) -> Sink:
        if self.kind == "redis":
            return RedisStreamSink(self.server.url, **kw)
        return NatsSink(self.server.url, **kw)

    def source(self, *subs: Any, consumer: str = "c1", workers: tuple[str, ...] = (), **kw: Any) -> Source:
        """A source of ``subs`` (and of the own events of ``workers``)."""
        if self.kind == "redis":
            keys = [f"wsmux:_worker:{w}" for w in workers]
            kw.setdefault("group", consumer)  # each test consumer reads everything (its own group)
            return RedisStreamSource(*subs, url=self.server.url, consumer=consumer, keys=keys, **kw)
        subjects = [f"wsmux._worker.{w}" for w in workers]
        return NatsSource(*subs, servers=self.server.url, durable=consumer, subjects=subjects, **kw)


@pytest.fixture(params=["redis", "nats"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    make = redis_process if request.param == "redis" else nats_process
    server = make(tmp_path)
    if server is None:
        pytest.skip(f"{request.param}-server is not installed (apt-get install {request.param}-server)")
    server.start()
    yield Engine(request.param, server)
    server.stop()
