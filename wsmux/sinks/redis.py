"""Redis Streams: :class:`RedisStreamSink` and :class:`RedisStreamSource`
(the ``redis`` extra: ``pip install 'wsmux[redis]'``).

Key scheme (``prefix`` defaults to ``wsmux``)::

    wsmux:{venue}:{channel}:{symbol}   market data of one subscription, and its
                                       Gap/Resynced/Stale markers, in order
                                       (wsmux:binance:book:BTC-USDT)
    wsmux:{venue}:status               the venue's Connected/Disconnected/Error...
    wsmux:_worker:{worker}             a worker's own events (Dropped, venue-less Error)
    wsmux:_epoch                       the epoch counter of all workers (INCR): an
                                       epoch names one run of one worker
    wsmux:_state:{worker}              the worker's last saved state (JSON)
    wsmux:_hb:{worker}                 heartbeat: JSON {epoch, ts}, expires after
                                       3 heartbeat intervals (absent: worker gone)

Each stream entry has one field, ``d``: the envelope
(:mod:`wsmux.sinks._codec`). Writes are ``XADD ... MAXLEN ~ N`` pipelined,
one round trip per batch. Redis has no duplicate detection: a batch retried
after a lost reply is written twice and the source drops the copies by id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from wsmux._retry import Backoff
from wsmux.errors import ConfigError
from wsmux.model import Event
from wsmux.sinks._base import STATUS, Sink, Source, flatten_subscriptions, subscription_parts
from wsmux.sinks._codec import EventId, Format
from wsmux.stream import Overflow
from wsmux.subscriptions import Subscription

__all__ = ["RedisEngine", "RedisReader", "RedisStreamSink", "RedisStreamSource", "redis_keys"]


def _redis() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:
        raise ConfigError("Redis sinks and sources need redis: pip install 'wsmux[redis]'") from exc
    return aioredis


def _key(prefix: str, parts: Iterable[str]) -> str:
    return ":".join((prefix, *parts))


def redis_keys(subscriptions: Iterable[Subscription], prefix: str = "wsmux") -> list[str]:
    """The keys a source reads for ``subscriptions``: one per subscription
    plus the status key of each venue."""
    subs = list(subscriptions)
    keys = [_key(prefix, subscription_parts(s)) for s in subs]
    keys += [_key(prefix, (venue, STATUS)) for venue in sorted({s.venue for s in subs})]
    return list(dict.fromkeys(keys))


class RedisEngine:
    """The Redis side of a sink. Args: see :class:`RedisStreamSink`."""

    name = "redis"

    def __init__(self, url: str, prefix: str, maxlen: int | None, timeout: float) -> None:
        self.url = url
        self.prefix = prefix
        self.maxlen = maxlen
        self.timeout = timeout
        self._redis: Any = None

    async def connect(self) -> None:
        if self._redis is None:
            self._redis = _redis().Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
            )
        await self._redis.ping()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def key(self, parts: tuple[str, ...]) -> str:
        return _key(self.prefix, parts)

    async def write(self, batch: Sequence[tuple[str, bytes, str]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        maxlen = self.maxlen
        for key, payload, _ in batch:
            pipe.xadd(key, {"d": payload}, maxlen=maxlen, approximate=True)
        await pipe.execute()

    async def begin_epoch(self, worker: str) -> tuple[int, dict[str, Any] | None]:
        epoch = int(await self._redis.incr(_key(self.prefix, ("_epoch",))))  # one counter: epochs unique across workers
        raw = await self._redis.get(_key(self.prefix, ("_state", worker)))
        return epoch, (orjson.loads(raw) if raw else None)

    async def save_state(self, worker: str, state: dict[str, Any]) -> None:
        await self._redis.set(_key(self.prefix, ("_state", worker)), orjson.dumps(state))

    async def heartbeat(self, worker: str, epoch: int, ttl: float) -> None:
        body = orjson.dumps({"epoch": epoch, "ts": time.time_ns(), "ttl": ttl})
        await self._redis.set(_key(self.prefix, ("_hb", worker)), body, px=max(1, int(ttl * 1000)))


class RedisStreamSink(Sink):
    """Publish streams into Redis Streams (see the module docstring for keys).

    Args:
        url: ``redis://host:port/db``.
        prefix: first part of every key.
        maxlen: approximate length cap per key (``XADD MAXLEN ~``); ``None``: no cap.
        worker: this publisher's name (ids, state and heartbeat keys).
        format: ``"json"`` (orjson) or ``"msgpack"``.
        batch: most events per pipelined write.
        linger: seconds to wait for a small batch to grow (see :class:`~wsmux.sinks.Sink`).
        timeout: seconds for one Redis operation.
        backoff: delays between retries of a failed write.

    Use ``await sink.start()``, ``sink.attach(stream)``, ``await sink.close()``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        prefix: str = "wsmux",
        maxlen: int | None = 1_000_000,
        worker: str = "wsmux",
        format: Format = "json",
        batch: int = 1000,
        linger: float = 0.0,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        _redis()
        super().__init__(
            RedisEngine(url, prefix, maxlen, timeout),
            worker=worker,
            format=format,
            batch=batch,
            linger=linger,
            backoff=backoff,
        )


class RedisReader:
    """The Redis side of a source: a consumer group over a set of keys.

    On connect it creates the group on every key (``MKSTREAM``; ``start``
    ``"new"``: from the next entry, ``"all"``: from the first kept entry),
    then reads, in order: this consumer's own pending entries (read before a
    crash, never acknowledged), entries pending on other consumers of the
    group for longer than ``claim_idle`` seconds (``XAUTOCLAIM``: a crashed
    peer's), then new entries. The claim runs again every ``claim_idle``
    seconds. A group that vanished (Redis restarted without persistence) is
    created again, from the first entry.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        keys: Sequence[str],
        group: str,
        consumer: str,
        start: str,
        claim_idle: float,
        timeout: float,
        prefix: str = "wsmux",
    ) -> None:
        if start not in ("new", "all"):
            raise ConfigError(f"start must be 'new' or 'all', not {start!r}")
        if not keys:
            raise ConfigError("a Redis source needs at least one key")
        self.url = url
        self.keys = list(keys)
        self.group = group
        self.consumer = consumer
        self.start = start
        self.claim_idle = claim_idle
        self.timeout = timeout
        self.prefix = prefix
        self._redis: Any = None
        self._pending: dict[str, str] = {}
        self._next_claim = 0.0

    async def connect(self) -> None:
        aioredis = _redis()
        if self._redis is None:
            # reads block up to 1 s: the socket timeout must be longer
            self._redis = aioredis.Redis.from_url(
                self.url, socket_timeout=self.timeout + 1.0, socket_connect_timeout=self.timeout
            )
        await self._create_groups("$" if self.start == "new" else "0")
        self._pending = dict.fromkeys(self.keys, "0")

    async def _create_groups(self, first: str) -> None:
        from redis.exceptions import ResponseError

        for key in self.keys:
            try:
                await self._redis.xgroup_create(key, self.group, id=first, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def read(self, count: int) -> list[tuple[str, bytes, Any]]:
        from redis.exceptions import ResponseError

        try:
            return await self._read(count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._create_groups("0")  # the engine lost the group (restart): read the new stream from its start
            return []

    async def _read(self, count: int) -> list[tuple[str, bytes, Any]]:
        r = self._redis
        if self._pending:
            reply = await r.xreadgroup(self.group, self.consumer, self._pending, count=count)
            out = self._entries(reply)
            for key, entries in reply or ():
                name = key.decode()
                if entries:
                    self._pending[name] = entries[-1][0].decode()
                else:
                    del self._pending[name]
            if out or self._pending:
                return out
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self.claim_idle
            out = []
            for key in self.keys:
                _, claimed, *_ = await r.xautoclaim(
                    key, self.group, self.consumer, int(self.claim_idle * 1000), "0-0", count=count
                )
                out += [(key, fields[b"d"], (key, eid)) for eid, fields in claimed if fields]
            if out:
                return out
        reply = await r.xreadgroup(self.group, self.consumer, dict.fromkeys(self.keys, ">"), count=count, block=500)
        return self._entries(reply)

    @staticmethod
    def _entries(reply: Any) -> list[tuple[str, bytes, Any]]:
        out: list[tuple[str, bytes, Any]] = []
        for key, entries in reply or ():
            name = key.decode()
            for eid, fields in entries:
                if fields:  # a pending entry trimmed away reads back empty: nothing to deliver
                    out.append((name, fields.get(b"d", b""), (name, eid)))
        return out

    async def heartbeat(self, worker: str) -> dict[str, Any] | None:
        raw = await self._redis.get(_key(self.prefix, ("_hb", worker)))  # expires by itself
        return orjson.loads(raw) if raw else None

    async def ack(self, handles: Sequence[Any]) -> None:
        by_key: dict[str, list[Any]] = {}
        for key, eid in handles:
            by_key.setdefault(key, []).append(eid)
        pipe = self._redis.pipeline(transaction=False)
        for key, ids in by_key.items():
            pipe.xack(key, self.group, *ids)
        await pipe.execute()


class RedisStreamSource(Source):
    """Read events written by :class:`RedisStreamSink` through a
    :class:`~wsmux.Stream` (consumer group, acknowledgement, pending-entry
    recovery; see :class:`RedisReader`).

    Args:
        subscriptions: what to read (``wsmux.book("binance", "BTC-USDT")``, ...;
            the status key of each venue is read too).
        url: ``redis://host:port/db``.
        prefix: the sink's key prefix.
        group: consumer group (consumers of one group share the work).
        consumer: this consumer's name in the group (keep it across restarts
            to get its unacknowledged entries back).
        start: ``"new"`` (default) or ``"all"`` for a group created now.
        keys: extra keys to read (e.g. ``wsmux:_worker:NAME``).
        claim_idle: seconds after which another consumer's unacknowledged
            entries are taken over.
        maxsize, overflow, name: as for :meth:`wsmux.Multiplexer.subscribe`.
        batch: most entries per read.
        on_id: called with ``(EventId, event)`` for every event delivered.

    ``async with RedisStreamSource(...) as stream: async for event in stream``.
    """

    def __init__(
        self,
        *subscriptions: Subscription | Iterable[Subscription],
        url: str = "redis://127.0.0.1:6379",
        prefix: str = "wsmux",
        group: str = "wsmux",
        consumer: str = "consumer-1",
        start: str = "new",
        keys: Iterable[str] = (),
        claim_idle: float = 30.0,
        timeout: float = 5.0,
        maxsize: int = 100_000,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str = "",
        batch: int = 1000,
        backoff: Backoff | None = None,
        on_id: Callable[[EventId, Event], object] | None = None,
    ) -> None:
        _redis()
        subs = flatten_subscriptions(subscriptions)
        reader = RedisReader(
            url, [*redis_keys(subs, prefix), *keys], group, consumer, start, claim_idle, timeout, prefix
        )
        super().__init__(
            reader, subs, maxsize=maxsize, overflow=overflow, name=name, batch=batch, backoff=backoff, on_id=on_id
        )
