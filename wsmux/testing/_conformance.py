"""The adapter conformance suite: one set of checks every venue adapter passes.

:func:`check_adapter` runs generic checks on an adapter class — its declared
rules are sane, caller mistakes raise the documented local errors, and no
input (garbage, truncated or mutated frames) makes :meth:`Adapter.parse`
raise anything but a :class:`~wsmux.errors.WsmuxError` — and, given sample
frames (e.g. captured from the venue's mock with :func:`capture_frames`),
checks that the events it produces are well formed. Third-party adapters can
run it on themselves::

    from wsmux.testing import check_adapter
    report = check_adapter(MyAdapter, symbol="BTC-USDT", frames=frames)
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from wsmux.adapter import Adapter, Endpoint
from wsmux.book import Diff, RawSnapshot, SyncRule
from wsmux.errors import LocalError, MalformedMessage, UnknownChannel, WsmuxError
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Event,
    MarketEvent,
    Quote,
    StatusEvent,
    TextLevels,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["ConformanceReport", "capture_frames", "check_adapter", "parse_events"]

_GARBAGE: tuple[bytes | str, ...] = (
    b"",
    b"not json",
    b"{",
    b"{}",
    b"[]",
    b"null",
    b"123",
    b'"text"',
    b'{"a": [1, 2, {"b": null}]}',
    b"[1, 2, 3]",
    b"\xff\xfe\x00garbage",
    "{}",
    "[null, null, null, null]",
)


@attrs.define
class ConformanceReport:
    """What :func:`check_adapter` exercised."""

    venue: str
    frames: int = 0
    events: int = 0
    mutations: int = 0
    rejected: int = 0
    """Inputs answered with a WsmuxError (the correct reaction to garbage)."""
    kinds: dict[str, int] = attrs.field(factory=dict)
    """Events from the sample frames, counted by class name (``{"Candle": 12}``)."""


def _fail(venue: str, what: str) -> AssertionError:
    return AssertionError(f"{venue}: {what}")


def check_adapter(
    adapter_cls: type[Adapter],
    *,
    symbol: str,
    frames: Iterable[bytes | str] = (),
    subscriptions: Sequence[Subscription] = (),
    mutations: int = 200,
    seed: int = 0,
) -> ConformanceReport:
    """Run the conformance checks; raise ``AssertionError`` on the first failure.

    Args:
        adapter_cls: the adapter class.
        symbol: a unified symbol the venue lists.
        frames: sample frames the venue sends for ``subscriptions``.
        subscriptions: what the frames were captured for (default: every
            channel of ``symbol``).
        mutations: how many mutated frames to try.
        seed: random seed of the mutations.
    """
    venue = getattr(adapter_cls, "venue", "")
    if not isinstance(venue, str) or not venue:
        raise _fail(repr(adapter_cls), "venue id must be a non-empty str")
    report = ConformanceReport(venue)
    channels = adapter_cls.channels
    if not channels or not all(isinstance(c, Channel) for c in channels):
        raise _fail(venue, "channels must be a non-empty set of Channel")
    limits = adapter_cls.limits
    if limits.streams_per_connection < 1 or limits.topics_per_message < 1 or limits.messages_per_second <= 0:
        raise _fail(venue, f"implausible limits {limits}")
    if not adapter_cls.default_url.startswith(("ws://", "wss://", "http")):
        raise _fail(venue, f"default_url {adapter_cls.default_url!r} is not a WebSocket URL")

    adapter = adapter_cls()
    parse_symbol(symbol)
    subs = list(subscriptions) or [Subscription(venue, c, symbol) for c in sorted(channels, key=lambda c: c.value)]
    for sub in subs:
        adapter.check(sub)
    missing = [c for c in Channel if c not in channels]
    for channel in missing[:1]:
        try:
            adapter.check(Subscription(venue, channel, symbol))
        except UnknownChannel:
            pass
        else:
            raise _fail(venue, f"check() accepted unsupported channel {channel.value}")
    for bad in ("NOTREAL-SYMBOL0", "ZZZZZZZZZ-YYYYYYYY"):
        try:
            adapter.to_native(bad)
        except LocalError:
            pass
        except WsmuxError as exc:
            raise _fail(venue, f"to_native({bad!r}) raised a non-local error {exc!r}") from exc
    for group in _by_route(adapter, subs):
        messages = adapter.subscribe(group)
        if not messages and adapter.connect_url(group) == adapter.url:
            raise _fail(venue, "subscribe() sent nothing and the URL names no streams")
        for message in [*messages, *adapter.unsubscribe(group)]:
            if not isinstance(message, str | bytes):
                raise _fail(venue, f"outgoing message must be str or bytes, not {type(message).__name__}")
    if Channel.BOOK in channels:
        rule = adapter.book_rule_for(Subscription(venue, Channel.BOOK, symbol))
        if not isinstance(rule, SyncRule):
            raise _fail(venue, "book_rule_for() must return a SyncRule")
        if rule.checksum is not None and not rule.keep_text:
            raise _fail(venue, "a checksum rule needs keep_text=True")

    recv_ns = 1_700_000_000_123_456_789
    for frame in _GARBAGE:
        report.rejected += _parse_safely(adapter, venue, frame, recv_ns)

    samples = list(frames)
    rng = random.Random(seed)
    for frame in samples:
        report.frames += 1
        try:
            events = adapter.parse(frame, recv_ns)
        except WsmuxError:
            report.rejected += 1
            continue
        report.events += len(events)
        for event in events:
            _check_event(venue, event, recv_ns)
            name = type(event).__name__
            report.kinds[name] = report.kinds.get(name, 0) + 1
    for _ in range(mutations if samples else 0):
        frame = _mutate(rng, rng.choice(samples))
        report.mutations += 1
        report.rejected += _parse_safely(adapter, venue, frame, recv_ns)
    adapter.reset()
    return report


def parse_events(adapter: Adapter, frame: bytes | str, recv_ns: int) -> list[Event]:
    """``adapter.parse`` with every :class:`~wsmux.book.Diff` turned into the
    :class:`~wsmux.BookUpdate` the pipeline would deliver for it (levels as
    floats), and every :class:`~wsmux.book.RawSnapshot` into its
    :class:`~wsmux.BookSnapshot` (:meth:`~wsmux.book.RawSnapshot.to_snapshot`),
    for tests that compare an adapter's output with expected events.

    Raises:
        MalformedMessage: as ``parse`` does, and for a Diff level or snapshot
            row that is not ``[price, size, ...]`` with numbers (what the book
            sync reports as bad data).
    """
    out: list[Event] = []
    for event in adapter.parse(frame, recv_ns):
        if isinstance(event, RawSnapshot):
            try:
                out.append(event.to_snapshot(adapter.venue, recv_ns))
            except ValueError as exc:
                raise MalformedMessage(f"{adapter.venue}: {exc}", frame) from exc
            continue
        if not isinstance(event, Diff):
            out.append(event)
            continue
        try:
            bids = tuple([(float(level[0]), float(level[1])) for level in event.bids])
            asks = tuple([(float(level[0]), float(level[1])) for level in event.asks])
        except (TypeError, ValueError, IndexError) as exc:
            raise MalformedMessage(f"{adapter.venue}: bad book level: {exc!r}", frame) from exc
        texts: tuple[TextLevels | None, TextLevels | None] = (None, None)
        if adapter.book_rule(event.symbol).keep_text:  # checksum venues: the events carry the text
            if any(type(v) is not str for level in (*event.bids, *event.asks) for v in level[:2]):
                raise MalformedMessage(f"{adapter.venue}: bad book level: not text", frame)
            texts = (
                tuple([(level[0], level[1]) for level in event.bids]),
                tuple([(level[0], level[1]) for level in event.asks]),
            )
        out.append(
            BookUpdate(
                adapter.venue,
                event.symbol,
                bids,
                asks,
                event.ts,
                recv_ns,
                event.seq,
                event.first_seq,
                event.prev_seq,
                event.checksum,
                *texts,
            )
        )
    return out


def _by_route(adapter: Adapter, subs: Sequence[Subscription]) -> list[list[Subscription]]:
    groups: dict[str, list[Subscription]] = {}
    for sub in subs:
        groups.setdefault(adapter.route(sub), []).append(sub)
    return list(groups.values())


def _parse_safely(adapter: Adapter, venue: str, frame: bytes | str, recv_ns: int) -> int:
    try:
        events = adapter.parse(frame, recv_ns)
    except WsmuxError:
        return 1
    except Exception as exc:
        raise _fail(venue, f"parse() raised {type(exc).__name__}: {exc} for {frame[:120]!r}") from exc
    if not isinstance(events, list):
        raise _fail(venue, "parse() must return a list")
    for event in events:
        _check_event(venue, event, recv_ns, strict=False)
    return 0


def _check_event(venue: str, event: Event | Diff | RawSnapshot, recv_ns: int, *, strict: bool = True) -> None:
    if isinstance(event, Diff | RawSnapshot):  # a book update or snapshot on its way to BookSync
        if strict:
            parse_symbol(event.symbol)
        if strict and event.ts is not None and not (10**18 <= event.ts < 10**19):
            raise _fail(venue, f"ts {event.ts} is not in nanoseconds since the epoch")
        if not isinstance(event.bids, Sequence) or not isinstance(event.asks, Sequence):
            raise _fail(venue, f"a {type(event).__name__}'s levels must be sequences")
        return
    if not isinstance(event, Event):
        raise _fail(venue, f"parse() returned a non-event {event!r}")
    if isinstance(event, MarketEvent | StatusEvent) and getattr(event, "venue", venue) not in (venue, None):
        raise _fail(venue, f"event names venue {getattr(event, 'venue', None)!r}")
    if isinstance(event, MarketEvent):
        if getattr(event, "recv_ns", recv_ns) != recv_ns:
            raise _fail(venue, "events must carry the frame's recv_ns")
        symbol = getattr(event, "symbol", "")
        if strict:
            parse_symbol(symbol)
        ts = getattr(event, "ts", None)
        if strict and ts is not None and not (10**18 <= ts < 10**19):
            raise _fail(venue, f"ts {ts} is not in nanoseconds since the epoch")
    if strict and isinstance(event, Trade) and not (event.price > 0 and event.size > 0):
        raise _fail(venue, f"trade with non-positive price/size {event}")
    if strict and isinstance(event, Candle):
        if not (10**18 <= event.start_ts < 10**19) or not event.interval:
            raise _fail(venue, f"candle without an ns start or an interval {event}")
        if not (event.low <= min(event.open, event.close) <= max(event.open, event.close) <= event.high):
            raise _fail(venue, f"candle outside its own range {event}")
        if not event.volume >= 0:
            raise _fail(venue, f"candle with negative volume {event}")
    if strict and isinstance(event, Quote):
        for value in (event.bid_price, event.ask_price):
            if not (math.isnan(value) or value > 0):
                raise _fail(venue, f"quote with bad price {event}")
    if strict and isinstance(event, BookSnapshot | BookUpdate):
        for price, size in (*event.bids, *event.asks):
            if not (price > 0 and size >= 0):
                raise _fail(venue, f"book level ({price}, {size}) in {type(event).__name__}")
        if event.bids_text is not None and len(event.bids_text) != len(event.bids):
            raise _fail(venue, "bids_text must parallel bids")
        if event.asks_text is not None and len(event.asks_text) != len(event.asks):
            raise _fail(venue, "asks_text must parallel asks")


def _mutate(rng: random.Random, frame: bytes | str) -> bytes | str:
    data = frame.encode() if isinstance(frame, str) else bytes(frame)
    choice = rng.randrange(5)
    if not data:
        return data
    if choice == 0:  # truncate
        data = data[: rng.randrange(len(data))]
    elif choice == 1:  # flip a byte
        i = rng.randrange(len(data))
        data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    elif choice == 2:  # replace a digit run with a string
        i = rng.randrange(len(data))
        data = data[:i] + b'"x"' + data[i + 1 :]
    elif choice == 3:  # null out a value after a colon
        i = data.find(b":", rng.randrange(len(data)))
        if i >= 0:
            j = i + 1
            while j < len(data) and data[j : j + 1] not in (b",", b"}", b"]"):
                j += 1
            data = data[: i + 1] + b"null" + data[j:]
    else:  # drop a slice
        i = rng.randrange(len(data))
        data = data[:i] + data[i + rng.randrange(1, 20) :]
    return data.decode("utf-8", "replace") if isinstance(frame, str) else data


async def capture_frames(
    mock: object,
    adapter_cls: type[Adapter],
    subscriptions: Sequence[Subscription],
    *,
    steps: int = 30,
    timeout: float = 5.0,
) -> list[bytes | str]:
    """Connect a raw WebSocket client to a running mock, subscribe with the
    adapter's own messages, publish ``steps`` market steps and return the
    frames received (for :func:`check_adapter`)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    endpoint: Endpoint = mock.endpoint  # type: ignore[attr-defined]
    frames: list[bytes | str] = []
    router = adapter_cls(url=endpoint.url, rest_url=endpoint.rest_url)
    for group in _by_route(router, subscriptions):
        adapter = adapter_cls(url=endpoint.url, rest_url=endpoint.rest_url)
        request = adapter.connect_request()
        if request is not None:  # a venue that hands out its socket address over REST (KuCoin)
            import httpx

            async with httpx.AsyncClient() as client:
                response = await client.request(request.method, request.url, params=list(request.params))
            adapter.use_connect_response(response.content)
        async with connect(adapter.connect_url(group), max_size=2**26, ping_interval=None) as ws:
            messages = adapter.subscribe(group)
            for message in messages:
                await ws.send(message)
            # the venue's first answer (ack or snapshot) proves the subscription landed
            if messages:
                frames.append(await _receive(ws, adapter, timeout))
            await mock.publish(steps)  # type: ignore[attr-defined]
            try:
                while True:
                    frames.append(await _receive(ws, adapter, 0.5 if frames else timeout))
            except (TimeoutError, ConnectionClosed):  # a venue that closes unanswered connections
                pass
    return frames


async def _receive(ws: Any, adapter: Adapter, wait: float) -> bytes | str:
    """The next frame, decompressed as the Connection does for compressed venues."""
    frame: bytes | str = await asyncio.wait_for(ws.recv(), timeout=wait)
    return adapter.decompress(frame) if adapter.compressed and isinstance(frame, bytes) else frame
