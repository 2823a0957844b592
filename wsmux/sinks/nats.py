"""NATS JetStream: :class:`NatsSink` and :class:`NatsSource`
(the ``nats`` extra: ``pip install 'wsmux[nats]'``).

Subject scheme (``prefix`` defaults to ``wsmux``; one JetStream stream,
default name ``WSMUX``, captures ``wsmux.>``)::

    wsmux.{venue}.{channel}.{symbol}   market data of one subscription and its
                                       Gap/Resynced/Stale markers, in order
                                       (wsmux.binance.book.BTC-USDT)
    wsmux.{venue}.status               the venue's Connected/Disconnected/Error...
    wsmux._worker.{worker}             a worker's own events

A ``.``, ``*``, ``>`` or space inside a part becomes ``_``. Workers keep their
epoch counter (one for all workers, so an epoch names one run of one
worker), state and heartbeat in the key-value bucket ``WSMUX_state``
(keys ``epoch``, ``state.{worker}``, ``hb.{worker}``: JSON
``{epoch, ts}`` rewritten every heartbeat interval; a ``ts`` older than three
intervals means the worker is gone).

Every message carries the header ``Nats-Msg-Id`` = the event id
(``venue:epoch:seq``): JetStream stores a retried message once if the retry
comes within the stream's duplicate window (``duplicate_window``, default
120 s). Writes are asynchronous publishes, all acknowledgements of a batch
awaited together.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from wsmux._retry import Backoff
from wsmux.errors import ConfigError, EngineError
from wsmux.model import Event
from wsmux.sinks._base import STATUS, Sink, Source, flatten_subscriptions, subscription_parts
from wsmux.sinks._codec import EventId, Format
from wsmux.stream import Overflow
from wsmux.subscriptions import Subscription

__all__ = ["NatsEngine", "NatsReader", "NatsSink", "NatsSource", "nats_subjects"]

_BAD = str.maketrans({".": "_", "*": "_", ">": "_", " ": "_"})


def _nats() -> Any:
    try:
        import nats
    except ImportError as exc:
        raise ConfigError("NATS sinks and sources need nats-py: pip install 'wsmux[nats]'") from exc
    return nats


def _subject(prefix: str, parts: Iterable[str]) -> str:
    return ".".join((prefix, *(p.translate(_BAD) for p in parts)))


def nats_subjects(subscriptions: Iterable[Subscription], prefix: str = "wsmux") -> list[str]:
    """The subjects a source reads for ``subscriptions``: one per
    subscription plus the status subject of each venue."""
    subs = list(subscriptions)
    subjects = [_subject(prefix, subscription_parts(s)) for s in subs]
    subjects += [_subject(prefix, (venue, STATUS)) for venue in sorted({s.venue for s in subs})]
    return list(dict.fromkeys(subjects))


async def _connect(servers: str, timeout: float) -> Any:
    return await _nats().connect(
        servers,
        connect_timeout=timeout,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        allow_reconnect=True,
    )


class NatsEngine:
    """The NATS side of a sink. Args: see :class:`NatsSink`."""

    name = "nats"

    def __init__(
        self,
        servers: str,
        prefix: str,
        stream: str,
        max_msgs: int | None,
        duplicate_window: float,
        timeout: float,
    ) -> None:
        self.servers = servers
        self.prefix = prefix
        self.stream = stream
        self.max_msgs = max_msgs
        self.duplicate_window = duplicate_window
        self.timeout = timeout
        self._nc: Any = None
        self._js: Any = None
        self._kv: Any = None

    async def connect(self) -> None:
        if self._nc is None:
            self._nc = await _connect(self.servers, self.timeout)
            self._js = self._nc.jetstream(timeout=self.timeout, publish_async_max_pending=20_000)
        from nats.js.api import StreamConfig

        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.>"],
            max_msgs=self.max_msgs or -1,
            duplicate_window=self.duplicate_window,
        )
        try:
            await self._js.add_stream(config)
        except _nats().js.errors.BadRequestError:
            await self._js.update_stream(config)  # created by a source or an older config: take ours
        self._kv = await self._js.create_key_value(bucket=f"{self.stream}_state", history=1)

    async def close(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()

    def key(self, parts: tuple[str, ...]) -> str:
        return _subject(self.prefix, parts)

    async def write(self, batch: Sequence[tuple[str, bytes, str]]) -> None:
        js = self._js
        if js is None or not self._nc.is_connected:
            raise EngineError(f"not connected to NATS at {self.servers}")
        acks = [
            await js.publish_async(subject, payload, headers={"Nats-Msg-Id": mid}) for subject, payload, mid in batch
        ]
        async with asyncio.timeout(self.timeout):  # not wait_for: on 3.11 it can lose a cancel
            await asyncio.gather(*acks)

    async def begin_epoch(self, worker: str) -> tuple[int, dict[str, Any] | None]:
        nats_kv = _nats().js.errors
        while True:
            try:
                entry = await self._kv.get("epoch")
            except nats_kv.KeyNotFoundError:
                entry = None
            try:
                if entry is None:
                    epoch = 1
                    await self._kv.create("epoch", b"1")
                else:
                    epoch = int(entry.value) + 1
                    await self._kv.update("epoch", str(epoch).encode(), last=entry.revision)
                break
            except nats_kv.KeyWrongLastSequenceError:
                continue  # another worker took this epoch at the same time: take the next
        try:
            state = await self._kv.get(f"state.{worker}")
        except nats_kv.KeyNotFoundError:
            return epoch, None
        return epoch, orjson.loads(state.value) if state.value else None

    async def save_state(self, worker: str, state: dict[str, Any]) -> None:
        await self._kv.put(f"state.{worker}", orjson.dumps(state))

    async def heartbeat(self, worker: str, epoch: int, ttl: float) -> None:
        await self._kv.put(f"hb.{worker}", orjson.dumps({"epoch": epoch, "ts": time.time_ns(), "ttl": ttl}))


class NatsSink(Sink):
    """Publish streams into NATS JetStream (see the module docstring for subjects).

    Args:
        servers: ``nats://host:port``.
        prefix: first token of every subject.
        stream: the JetStream stream (created if absent).
        max_msgs: cap of messages kept in the stream (``None``: no cap).
        duplicate_window: seconds JetStream remembers message ids.
        worker, format, batch, linger, backoff: see :class:`~wsmux.sinks.Sink`.
        timeout: seconds for one NATS operation (a batch's acknowledgements).
    """

    def __init__(
        self,
        servers: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "wsmux",
        stream: str = "WSMUX",
        max_msgs: int | None = 10_000_000,
        duplicate_window: float = 120.0,
        worker: str = "wsmux",
        format: Format = "json",
        batch: int = 1000,
        linger: float = 0.0,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        _nats()
        engine = NatsEngine(servers, prefix, stream, max_msgs, duplicate_window, timeout)
        super().__init__(engine, worker=worker, format=format, batch=batch, linger=linger, backoff=backoff)


class NatsReader:
    """The NATS side of a source: a durable JetStream pull consumer.

    NATS 2.9 filters a consumer by one subject: the consumer takes the
    narrowest wildcard covering the wanted subjects (``wsmux.binance.>`` for
    one venue) and messages on other subjects are acknowledged and skipped.
    Every message is acknowledged (``AckPolicy.EXPLICIT``; a message holds
    a key's share of a batch, so acknowledgements are few); unacknowledged
    messages come back after ``ack_wait`` seconds, to this durable consumer
    under whatever process runs it next.
    """

    name = "nats"

    def __init__(
        self,
        servers: str,
        subjects: Sequence[str],
        stream: str,
        durable: str,
        start: str,
        ack_wait: float,
        timeout: float,
    ) -> None:
        if start not in ("new", "all"):
            raise ConfigError(f"start must be 'new' or 'all', not {start!r}")
        if not subjects:
            raise ConfigError("a NATS source needs at least one subject")
        self.servers = servers
        self.subjects = frozenset(subjects)
        self.stream = stream
        self.durable = durable
        self.start = start
        self.ack_wait = ack_wait
        self.timeout = timeout
        self.filter = _common_filter(subjects)
        self._nc: Any = None
        self._sub: Any = None

    async def connect(self) -> None:
        nats = _nats()
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        if self._nc is None:
            self._nc = await _connect(self.servers, self.timeout)
        js = self._nc.jetstream(timeout=self.timeout)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.NEW if self.start == "new" else DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=-1,
        )
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            # no sink ran yet: create the stream (a sink later applies its limits)
            prefix = self.filter.split(".", 1)[0]
            with contextlib.suppress(nats.js.errors.BadRequestError):  # a sink created it meanwhile
                await js.add_stream(name=self.stream, subjects=[f"{prefix}.>"])
        self._sub = await js.pull_subscribe(self.filter, durable=self.durable, stream=self.stream, config=config)

    async def close(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()

    async def read(self, count: int) -> list[tuple[str, bytes, Any]]:
        nats = _nats()
        if self._sub is None:
            await self.connect()
        try:
            msgs = await self._sub.fetch(count, timeout=1.0)
        except nats.errors.TimeoutError:
            return []
        wanted = self.subjects
        # messages of subjects not wanted are only acknowledged (empty key)
        return [(m.subject, m.data, m) if m.subject in wanted else ("", b"", m) for m in msgs]

    async def heartbeat(self, worker: str) -> dict[str, Any] | None:
        nats = _nats()
        js = self._nc.jetstream(timeout=self.timeout)
        try:
            kv = await js.key_value(f"{self.stream}_state")
            entry = await kv.get(f"hb.{worker}")
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.KeyNotFoundError):
            return None
        return orjson.loads(entry.value) if entry.value else None

    async def ack(self, handles: Sequence[Any]) -> None:
        for msg in handles:  # a message holds a key's share of a batch: acknowledgements are few
            await msg.ack()


def _common_filter(subjects: Iterable[str]) -> str:
    split = [s.split(".") for s in subjects]
    common: list[str] = []
    for tokens in zip(*split, strict=False):
        if len(set(tokens)) != 1:
            break
        common.append(tokens[0])
    if len(split) == 1:
        return ".".join(split[0])
    return ".".join([*common, ">"])


class NatsSource(Source):
    """Read events written by :class:`NatsSink` through a :class:`~wsmux.Stream`
    (durable pull consumer; see :class:`NatsReader`).

    Args:
        subscriptions: what to read (the status subject of each venue too).
        servers: ``nats://host:port``.
        prefix, stream: the sink's subject prefix and JetStream stream.
        durable: the durable consumer's name (keep it across restarts to
            resume where the last acknowledgement left off).
        start: ``"new"`` (default) or ``"all"`` for a consumer created now.
        subjects: extra subjects to read (e.g. ``wsmux._worker.NAME``).
        ack_wait: seconds before unacknowledged messages are redelivered.
        maxsize, overflow, name, batch, backoff, on_id: see
            :class:`~wsmux.sinks.RedisStreamSource`.
    """

    def __init__(
        self,
        *subscriptions: Subscription | Iterable[Subscription],
        servers: str = "nats://127.0.0.1:4222",
        prefix: str = "wsmux",
        stream: str = "WSMUX",
        durable: str = "wsmux",
        start: str = "new",
        subjects: Iterable[str] = (),
        ack_wait: float = 30.0,
        timeout: float = 5.0,
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
        batch: int = 1000,
        backoff: Backoff | None = None,
        on_id: Callable[[EventId, Event], object] | None = None,
    ) -> None:
        _nats()
        subs = flatten_subscriptions(subscriptions)
        reader = NatsReader(
            servers, [*nats_subjects(subs, prefix), *subjects], stream, durable, start, ack_wait, timeout
        )
        super().__init__(
            reader, subs, maxsize=maxsize, overflow=overflow, name=name, batch=batch, backoff=backoff, on_id=on_id
        )
