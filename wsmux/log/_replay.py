"""Replay: drive recorded frames through the live code path.

A :class:`Replay` reads wsmux logs (files, rotated sets, several venues) or
text recordings, merges them by receive time, and feeds every received frame
to the same adapter and :class:`~wsmux._pipeline.Feed` (book sync, checksums,
gap detection) that a live connection uses — one adapter per recorded
connection. REST snapshot requests are answered from the recorded REST
responses: a recorded body is matched to a request by the venue's native
symbol in its URL, and used once. Events go to :class:`~wsmux.Stream` objects
(``replay.subscribe(...)``) exactly as from a live multiplexer, or come out of
the plain iterator :meth:`Replay.events`.

Determinism: the same input gives the same events in the same order (the
receive time on every event is the recorded one). Speed: ``None`` runs as fast
as possible; ``1.0`` is real time, ``10.0`` ten times faster.
"""

from __future__ import annotations

import asyncio
import heapq
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from wsmux import _json, exchanges
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.adapter import Adapter
from wsmux.errors import ConfigError
from wsmux.log._format import Direction
from wsmux.log._reader import read_log
from wsmux.log._text import import_text_recording, text_recording_header
from wsmux.log._writer import LOG_SUFFIX
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    L3Snapshot,
    OrderUpdate,
    Quote,
    Resynced,
    Trade,
)
from wsmux.stream import Overflow, Stream
from wsmux.subscriptions import Subscription

__all__ = ["Replay", "ReplaySummary"]

_Tagged = tuple[int, int, str, Direction, int, "bytes | str", "str | None"]
_CHANNEL_OF: dict[type, Channel] = {
    Trade: Channel.TRADES,
    Quote: Channel.QUOTES,
    BookSnapshot: Channel.BOOK,
    BookUpdate: Channel.BOOK,
    L3Snapshot: Channel.L3,
    OrderUpdate: Channel.L3,
}


@attrs.define
class ReplaySummary:
    """Counts of a replay, per venue and symbol (``symbol`` "" for venue-wide)."""

    frames: int = 0
    rest_bodies: int = 0
    events: dict[tuple[str, str], dict[str, int]] = attrs.field(factory=dict)
    gaps: dict[tuple[str, str], int] = attrs.field(factory=dict)
    resyncs: dict[tuple[str, str], int] = attrs.field(factory=dict)
    errors: dict[str, int] = attrs.field(factory=dict)
    checksums_ok: dict[tuple[str, str], int] = attrs.field(factory=dict)
    checksum_mismatches: dict[tuple[str, str], int] = attrs.field(factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None

    def add(self, event: Event) -> None:
        venue = getattr(event, "venue", None) or ""
        symbol = getattr(event, "symbol", None) or ""
        key = (venue, symbol)
        by_type = self.events.setdefault(key, {})
        name = type(event).__name__
        by_type[name] = by_type.get(name, 0) + 1
        if isinstance(event, Gap):
            self.gaps[key] = self.gaps.get(key, 0) + 1
        elif isinstance(event, Resynced):
            self.resyncs[key] = self.resyncs.get(key, 0) + 1
        elif isinstance(event, Error):
            self.errors[venue] = self.errors.get(venue, 0) + 1

    def describe(self) -> str:
        """A human-readable table."""
        lines = [f"frames {self.frames:,}   REST bodies {self.rest_bodies}"]
        for (venue, symbol), by_type in sorted(self.events.items()):
            key = (venue, symbol)
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items()))
            lines.append(
                f"{venue or '-':<14}{symbol or '-':<14} {kinds}"
                f"  | gaps {self.gaps.get(key, 0)} resyncs {self.resyncs.get(key, 0)}"
                f" checksums ok {self.checksums_ok.get(key, 0)} bad {self.checksum_mismatches.get(key, 0)}"
            )
        for venue, n in sorted(self.errors.items()):
            lines.append(f"errors {venue}: {n}")
        return "\n".join(lines)


class Replay:
    """Replay recorded traffic through the live adapters.

    Args:
        paths: wsmux log files or directories (``*.wslog``), and/or text
            recordings (the ``URL <- T:`` / ``T:`` format).
        speed: None (as fast as possible), 1.0 (real time) or a multiple.
        start_ns: skip frames received before this time (books then sync from
            the first snapshot after it).
        end_ns: stop at this receive time.
        venues: only these venue ids.
        venue: the venue of text recordings whose file name does not say it.
        adapters: adapter classes by venue id (default: the registry).
        auto_books: keep a book for every symbol whose book events appear
            (needed for text recordings, which do not list subscriptions).
        subscriptions: what the recorded connections carried, for logs that
            do not say (text recordings); wsmux logs record it on every
            connection open.
    """

    def __init__(
        self,
        paths: str | Path | Iterable[str | Path],
        *,
        speed: float | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        venues: Iterable[str] | None = None,
        venue: str | None = None,
        adapters: Mapping[str, type[Adapter]] | None = None,
        auto_books: bool = True,
        subscriptions: Iterable[Subscription] = (),
    ) -> None:
        if isinstance(paths, str | Path):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ConfigError("Replay needs at least one path")
        if speed is not None and speed <= 0:
            raise ConfigError(f"speed must be positive or None, not {speed}")
        self.speed = speed
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.venues = set(venues) if venues is not None else None
        self.venue = venue
        self._adapters = dict(adapters or {})
        self.auto_books = auto_books
        self.subscriptions = tuple(subscriptions)
        self.summary = ReplaySummary()
        self._feeds: dict[tuple[str, int], Feed] = {}
        self._pending: dict[tuple[str, int], dict[str, FetchSnapshot]] = {}
        self._bodies: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        self._streams: list[Stream] = []
        self._out: list[Event] = []
        self._opened: set[tuple[str, int]] = set()

    # --- inputs -------------------------------------------------------------------

    def _sources(self) -> list[Iterator[_Tagged]]:
        sources: list[Iterator[_Tagged]] = []
        for index, path in enumerate(self.paths):
            if path.is_dir() or path.suffix == LOG_SUFFIX:
                reader = read_log(path, start_ns=self.start_ns, end_ns=self.end_ns)
                venue = reader.header.venue
                sources.append(self._tag(index, venue, reader.frames()))
            else:
                venue = self.venue or text_recording_header(path).venue
                records = ((r.kind, r.recv_ns, r.conn_id, r.data, r.url) for r in import_text_recording(path))
                sources.append(self._tag(index, venue, records))
        return sources

    def _tag(self, index: int, venue: str, frames: Iterable[Any]) -> Iterator[_Tagged]:
        if self.venues is not None and venue not in self.venues:
            return
        start, end = self.start_ns, self.end_ns
        for kind, ns, conn, data, url in frames:
            if (start is not None and ns < start) or (end is not None and ns > end):
                continue
            yield (ns, index, venue, kind, conn, data, url)

    # --- the pipeline ---------------------------------------------------------------

    def _feed(self, venue: str, conn_id: int) -> Feed:
        key = (venue, conn_id)
        feed = self._feeds.get(key)
        if feed is None:
            cls = self._adapters.get(venue) or exchanges.get(venue)
            feed = Feed(cls(), self._emit)
            feed.auto_books = self.auto_books
            self._feeds[key] = feed
            self._learn(feed, [s for s in self.subscriptions if s.venue == venue])
        return feed

    def _emit(self, event: Event) -> None:
        self._out.append(event)

    def _handle(self, venue: str, kind: Direction, conn_id: int, data: bytes | str, url: str | None, ns: int) -> None:
        key = (venue, conn_id)
        if kind is Direction.IN:
            self.summary.frames += 1
            feed = self._feed(venue, conn_id)
            if feed.adapter.compressed and isinstance(data, bytes):
                try:
                    data = feed.adapter.decompress(data)
                except Exception as exc:
                    feed.stats.parse_errors += 1
                    self._emit(Error(venue, None, ErrorKind.MALFORMED, f"cannot decompress frame: {exc}", ns))
                    return
            feed.on_frame(data, ns)
            self._actions(key, feed, ns)
        elif kind is Direction.OPEN:
            feed = self._feed(venue, conn_id)
            if key in self._opened:  # the same connection id opened again: a reconnect
                feed.on_disconnect(ns)
            self._opened.add(key)
            self._learn(feed, [s for s in _subscriptions(data) if s.venue == venue])
        elif kind is Direction.CLOSE:
            closing = self._feeds.get(key)
            if closing is not None:
                closing.on_disconnect(ns)
        elif kind is Direction.REST:
            self.summary.rest_bodies += 1
            body = data.encode() if isinstance(data, str) else data
            self._rest(venue, conn_id, url or "", body, ns)

    @staticmethod
    def _learn(feed: Feed, subs: list[Subscription]) -> None:
        """Tell the adapter what the connection subscribed (as a live
        connection does by sending the subscribe messages)."""
        if not subs:
            return
        feed.adapter.subscribe(subs)
        for sub in subs:
            if sub.channel is Channel.BOOK and sub.symbol not in feed.syncs:
                feed.add_book(sub)

    def _actions(self, key: tuple[str, int], feed: Feed, ns: int) -> None:
        for action in feed.take_actions():
            if isinstance(action, Send):
                continue  # resubscribe messages: the recording shows what the venue answered
            self._pending.setdefault(key, {})[action.symbol] = action
            self._answer(key, feed, ns)

    def _answer(self, key: tuple[str, int], feed: Feed, ns: int) -> None:
        pending = self._pending.get(key)
        if not pending:
            return
        bodies = self._bodies.get((key[0], -1), [])
        for symbol in list(pending):
            native = feed.adapter.to_native(symbol, Channel.BOOK)
            pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(native)}(?![A-Za-z0-9])", re.IGNORECASE)
            for i, (url, body) in enumerate(bodies):
                if pattern.search(url):
                    del bodies[i]
                    del pending[symbol]
                    feed.on_snapshot_body(symbol, body, ns)
                    break
        if feed.actions:
            self._actions(key, feed, ns)

    def _rest(self, venue: str, conn_id: int, url: str, body: bytes, ns: int) -> None:
        # REST responses are not tied to a WebSocket connection in text
        # recordings: keep them per venue and offer them to every feed.
        self._bodies.setdefault((venue, -1), []).append((url, body))
        for key, feed in list(self._feeds.items()):
            if key[0] == venue:
                self._answer(key, feed, ns)

    # --- outputs ------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """Every event of the replay, in order, as fast as possible."""
        summary = self.summary
        for ns, _i, venue, kind, conn_id, data, url in heapq.merge(*self._sources()):
            if summary.first_ns is None:
                summary.first_ns = ns
            summary.last_ns = ns
            self._handle(venue, Direction(kind), conn_id, data, url, ns)
            if self._out:
                out, self._out = self._out, []
                for event in out:
                    summary.add(event)
                    yield event
        for (venue, _conn), feed in self._feeds.items():
            for symbol, sync in feed.syncs.items():
                key = (venue, symbol)
                summary.checksums_ok[key] = summary.checksums_ok.get(key, 0) + sync.stats.checksums_ok
                summary.checksum_mismatches[key] = (
                    summary.checksum_mismatches.get(key, 0) + sync.stats.checksum_mismatches
                )

    def subscribe(
        self,
        *subscriptions: Subscription | Iterable[Subscription],
        maxsize: int = 100_000,
        overflow: Overflow = Overflow.BLOCK,
        name: str = "",
    ) -> Stream:
        """A stream of the replayed events matching ``subscriptions`` (plus
        the venue's status events), like :meth:`wsmux.Multiplexer.subscribe`.
        Call :meth:`run` to play."""
        subs: list[Subscription] = []
        for item in subscriptions:
            subs.extend([item] if isinstance(item, Subscription) else item)
        stream = Stream(tuple(subs), maxsize=maxsize, overflow=overflow, name=name)
        self._streams.append(stream)
        return stream

    async def run(self) -> ReplaySummary:
        """Play into the subscribed streams at :attr:`speed`; close them at the end."""
        routes: dict[tuple[str, Channel, str], list[Stream]] = {}
        venue_streams: dict[str, list[Stream]] = {}
        for stream in self._streams:
            for sub in stream.subscriptions:
                routes.setdefault((sub.venue, sub.channel, sub.symbol), []).append(stream)
                lst = venue_streams.setdefault(sub.venue, [])
                if stream not in lst:
                    lst.append(stream)
        wall0 = time.monotonic()
        first: int | None = None
        for count, event in enumerate(self.events(), 1):
            ns = getattr(event, "recv_ns", 0)
            if self.speed is not None and ns:
                if first is None:
                    first = ns
                due = wall0 + (ns - first) / 1e9 / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            channel = _CHANNEL_OF.get(type(event))
            if channel is not None:
                targets = routes.get((event.venue, channel, event.symbol), [])  # type: ignore[attr-defined]
            elif isinstance(event, Gap | Resynced):
                targets = routes.get((event.venue, event.channel, event.symbol), [])
            else:
                targets = venue_streams.get(getattr(event, "venue", None) or "", [])
            for stream in targets:
                stream._put(event)
                if stream.blocked:
                    await stream._wait_space()
            if count % 4096 == 0:
                await asyncio.sleep(0)  # let consumers run
        for stream in self._streams:
            await stream.aclose()
        return self.summary


def _subscriptions(data: bytes | str) -> list[Subscription]:
    try:
        items = _json.loads(data)
    except Exception:
        return []
    subs: list[Subscription] = []
    if not isinstance(items, list):
        return subs
    for item in items:
        try:
            venue, channel, symbol = str(item).split(":", 2)
            subs.append(Subscription(venue, Channel(channel), symbol))
        except (ValueError, TypeError):
            continue
    return subs
