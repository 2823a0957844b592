"""Replay: drive recorded frames through the live code path.

A :class:`Replay` reads wsmux logs (files, rotated sets, several venues) or
text recordings, merges them by receive time, and feeds every received frame
to the same adapter and :class:`~wsmux._pipeline.Feed` (book sync, checksums,
gap detection) that a live connection uses — one adapter per recorded
connection. REST snapshot requests are answered from the recorded REST
responses: a recorded body is matched to a request by the venue's native
symbol in its URL, and used once; a recorded answer of the venue's
instruments endpoint is given to every adapter of the venue
(:meth:`~wsmux.adapter.Adapter.use_instruments`). Events go to :class:`~wsmux.Stream` objects
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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from wsmux import _json, exchanges
from wsmux._pipeline import BuildSnapshot, Feed, FetchSnapshot, Send
from wsmux.adapter import Adapter
from wsmux.errors import ConfigError, LogError, UnknownSymbol, UnknownVenue, UnsupportedVenue, WsmuxError
from wsmux.log._detect import Capture, detect_capture, is_text_capture_name
from wsmux.log._format import FILE_MAGIC, Direction
from wsmux.log._reader import read_log, rotated_sets
from wsmux.log._text import import_text_recording, text_recording_conn_id
from wsmux.log._writer import LOG_SUFFIX
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    Instrument,
    L3Snapshot,
    OrderUpdate,
    Quote,
    Resynced,
    Trade,
)
from wsmux.multiplexer import BookView
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
    Candle: Channel.CANDLES,
}


@attrs.define
class ReplaySummary:
    """Counts of a replay, per venue and symbol (``symbol`` "" for venue-wide).

    ``errors`` counts real problems; well-formed frames of a channel wsmux
    does not handle (``Error`` of kind ``UNKNOWN_MESSAGE``) are counted apart
    in ``not_supported``, and the recorded channel names wsmux has no
    channel for are in ``unsupported_channels``. ``natives`` maps
    ``(venue, symbol)`` to the venue's own symbol.
    """

    frames: int = 0
    rest_bodies: int = 0
    events: dict[tuple[str, str], dict[str, int]] = attrs.field(factory=dict)
    gaps: dict[tuple[str, str], int] = attrs.field(factory=dict)
    resyncs: dict[tuple[str, str], int] = attrs.field(factory=dict)
    errors: dict[str, int] = attrs.field(factory=dict)
    not_supported: dict[str, int] = attrs.field(factory=dict)
    unsupported_channels: dict[str, set[str]] = attrs.field(factory=dict)
    checksums_ok: dict[tuple[str, str], int] = attrs.field(factory=dict)
    checksum_mismatches: dict[tuple[str, str], int] = attrs.field(factory=dict)
    natives: dict[tuple[str, str], str] = attrs.field(factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None

    def add(self, event: Event) -> None:
        venue = getattr(event, "venue", None) or ""
        symbol = getattr(event, "symbol", None) or ""
        key = (venue, symbol)
        by_type = self.events.setdefault(key, {})
        name = type(event).__name__
        if isinstance(event, Error) and event.kind is ErrorKind.UNKNOWN_MESSAGE:
            name = "NotSupported"
        by_type[name] = by_type.get(name, 0) + 1
        if isinstance(event, Gap):
            self.gaps[key] = self.gaps.get(key, 0) + 1
        elif isinstance(event, Resynced):
            self.resyncs[key] = self.resyncs.get(key, 0) + 1
        elif isinstance(event, Error):
            if event.kind is ErrorKind.UNKNOWN_MESSAGE:
                self.not_supported[venue] = self.not_supported.get(venue, 0) + 1
            else:
                self.errors[venue] = self.errors.get(venue, 0) + 1

    def describe(self) -> str:
        """A human-readable table (columns sized to their contents)."""
        lines = [f"frames {self.frames:,}   REST bodies {self.rest_bodies}"]
        rows = sorted(self.events.items())
        w_venue = max([len("venue"), *(len(v) for (v, _s), _ in rows)])
        w_symbol = max([len("symbol"), *(len(s) for (_v, s), _ in rows)])
        w_native = max([len("native"), *(len(self.natives.get(k, "")) for k, _ in rows)])
        if rows:
            lines.append(
                f"{'venue':<{w_venue}}  {'symbol':<{w_symbol}}  {'native':<{w_native}}  "
                "events"
            )
        for key, by_type in rows:
            venue, symbol = key
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items()))
            lines.append(
                f"{venue or '-':<{w_venue}}  {symbol or '-':<{w_symbol}}  {self.natives.get(key, '-'):<{w_native}}  "
                f"{kinds} | gaps {self.gaps.get(key, 0)} resyncs {self.resyncs.get(key, 0)}"
                f" checksums ok {self.checksums_ok.get(key, 0)} bad {self.checksum_mismatches.get(key, 0)}"
            )
        venues = sorted({v for (v, _s) in self.events} | set(self.unsupported_channels) | set(self.errors))
        for venue in venues:
            if not venue:
                continue
            names = sorted(self.unsupported_channels.get(venue, ()))
            frames = self.not_supported.get(venue, 0)
            if names or frames:
                skipped = f" ({frames:,} frames skipped)" if frames else ""
                lines.append(f"{venue}: channel not supported: {', '.join(names) or 'unknown'}{skipped}")
            lines.append(f"{venue}: errors {self.errors.get(venue, 0)}")
        return "\n".join(lines)


@attrs.frozen
class _Source:
    """One input of a replay: a wsmux log (or rotated set) or a text capture file."""

    venue: str
    log_files: tuple[Path, ...] = ()
    text_file: Path | None = None
    capture: Capture | None = None


class Replay:
    """Replay recorded traffic through the live adapters.

    Text captures need no flags: :func:`~wsmux.log.detect_capture` finds the
    venue and protocol version (recorded URL, frames, file name), the
    subscriptions (recorded subscribe frames, URL, ``NAME.0`` configuration)
    and the REST files beside them. A directory stands for its wsmux logs
    (one rotated set per file-name prefix, each replayed with its own
    header's venue) and its text captures.

    Args:
        paths: wsmux log files or directories (``*.wslog``), and/or text
            recordings (the ``URL <- T:`` / ``T:`` format).
        speed: None (as fast as possible), 1.0 (real time) or a multiple;
            honoured by :meth:`events` (blocking sleeps) and :meth:`run`.
        start_ns: skip frames received before this time (books then sync from
            the first snapshot after it).
        end_ns: stop at this receive time.
        venues: only these venue ids.
        venue: the venue of text recordings (default: detected).
        adapters: adapter classes by venue id (default: the registry).
        auto_books: keep a book for every symbol whose book events appear
            (needed for text recordings, which do not list subscriptions).
        subscriptions: what the recorded connections carried, added to what
            the recordings say themselves.
        skip_unsupported: skip (and list in :attr:`skipped`) captures of
            venues wsmux has no adapter for, instead of raising.
        clock: monotonic clock for ``speed`` (tests inject one).
        sleep: blocking sleep for ``speed`` in :meth:`events`.

    Raises:
        LogError: a path does not exist, or a directory holds no logs or captures.
        UnsupportedVenue: a capture of a venue wsmux does not support (unless
            ``skip_unsupported``).
        UnknownVenue: nothing tells a capture's venue (pass ``venue``).

    Attributes:
        summary: counts, filled while the replay plays.
        skipped: ``(path, reason)`` of the inputs left out.
        captures: what was detected about each text capture.
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
        skip_unsupported: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(paths, str | Path):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ConfigError("Replay needs at least one path")
        if speed is not None and not speed > 0:
            raise ConfigError(f"speed must be positive or None, not {speed}")
        self.speed = speed
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.venues = set(venues) if venues is not None else None
        self.venue = venue
        self._adapters = dict(adapters or {})
        self.auto_books = auto_books
        self.subscriptions = tuple(subscriptions)
        self.skip_unsupported = skip_unsupported
        self._clock = clock
        self._sleep = sleep
        self.summary = ReplaySummary()
        self.skipped: list[tuple[Path, str]] = []
        self.captures: list[Capture] = []
        self._feeds: dict[tuple[str, int], Feed] = {}
        self._pending: dict[tuple[str, int], dict[str, FetchSnapshot]] = {}
        self._bodies: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        self._instruments: dict[str, list[Instrument]] = {}  # venue -> recorded instruments list
        self._streams: list[Stream] = []
        self._out: list[Event] = []
        self._opened: set[tuple[str, int]] = set()
        self._recorded: dict[tuple[str, int], tuple[Subscription, ...]] = {}
        self._natives: dict[tuple[str, str], str | None] = {}
        self._plan = self._make_plan()

    # --- inputs -------------------------------------------------------------------

    def _make_plan(self) -> list[_Source]:
        plan: list[_Source] = []
        seen: set[Path] = set()

        def add_text(path: Path) -> None:
            key = path.resolve()
            if key in seen:
                return
            seen.add(key)
            try:
                capture = detect_capture(path, venue=self.venue)
            except UnsupportedVenue as exc:
                if not self.skip_unsupported:
                    raise
                self.skipped.append((path, str(exc)))
                return
            self.captures.append(capture)
            plan.append(_Source(capture.venue, text_file=path, capture=capture))
            for rest in capture.rest_files:
                add_text(rest)

        for path in self.paths:
            if not path.exists():
                raise LogError(f"{path}: no such file or directory")
            if path.is_dir():
                sets = rotated_sets(path)
                texts = sorted(f for f in path.iterdir() if f.is_file() and is_text_capture_name(f))
                if not sets and not texts:
                    raise LogError(f"{path}: no wsmux logs (*{LOG_SUFFIX}) or text captures in this directory")
                plan.extend(_Source("", log_files=tuple(group)) for group in sets)
                for f in texts:
                    add_text(f)
            elif path.suffix == LOG_SUFFIX or _is_wsmux_log(path):
                plan.append(_Source("", log_files=(path,)))
            else:
                add_text(path)
        return plan

    def _sources(self) -> list[Iterator[_Tagged]]:
        sources: list[Iterator[_Tagged]] = []
        for index, source in enumerate(self._plan):
            if source.log_files:
                reader = read_log(list(source.log_files), start_ns=self.start_ns, end_ns=self.end_ns)
                sources.append(self._tag(index, reader.header.venue, reader.frames()))
            elif source.text_file is not None:
                records = (
                    (r.kind, r.recv_ns, r.conn_id, r.data, r.url) for r in import_text_recording(source.text_file)
                )
                if source.capture is not None:
                    conn = text_recording_conn_id(source.text_file)
                    self._recorded[source.venue, conn] = source.capture.subscriptions
                    if source.capture.unsupported_channels:
                        self.summary.unsupported_channels.setdefault(source.venue, set()).update(
                            source.capture.unsupported_channels
                        )
                sources.append(self._tag(index, source.venue, records))
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
            if venue in self._instruments:
                feed.adapter.use_instruments(self._instruments[venue])
            recorded = self._recorded.get(key, ())
            self._learn(feed, [s for s in (*self.subscriptions, *recorded) if s.venue == venue])
        return feed

    def _emit(self, event: Event) -> None:
        # (a well-formed frame of a channel the adapter does not handle arrives as
        # ErrorKind.UNKNOWN_MESSAGE: the adapters raise UnknownMessage for it)
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
            if isinstance(action, BuildSnapshot):  # only if a caller turned step_snapshots on
                for _ in action.steps:
                    pass
                continue
            feed.on_fetch_started(action.symbol, action.channel)  # the recorded request went out now
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
        self._instruments_body(venue, url, body, ns)
        for key, feed in list(self._feeds.items()):
            if key[0] == venue:
                self._answer(key, feed, ns)

    def _instruments_body(self, venue: str, url: str, body: bytes, ns: int) -> None:
        """A recorded answer of the venue's instruments endpoint: every feed
        of the venue (and every later one) learns it, as a live adapter does
        from :meth:`~wsmux.adapter.Adapter.use_instruments`."""
        adapter = (self._adapters.get(venue) or exchanges.get(venue))()
        paths = {urlsplit(request.url).path for request in adapter.instruments_requests()}
        if urlsplit(url).path not in paths:
            return
        try:
            instruments = adapter.parse_instruments(body)
        except WsmuxError as exc:
            self._emit(Error(venue, None, ErrorKind.MALFORMED, f"instruments body: {exc}", ns))
            return
        self._instruments.setdefault(venue, []).extend(instruments)
        for (feed_venue, _conn), feed in self._feeds.items():
            if feed_venue == venue:
                feed.adapter.use_instruments(instruments)

    # --- outputs ------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """Every event of the replay, in order; at :attr:`speed` (blocking
        sleeps between frames) or as fast as possible when it is None."""
        return self._play(paced=self.speed is not None)

    def _play(self, *, paced: bool) -> Iterator[Event]:
        summary = self.summary
        first: int | None = None
        wall0 = self._clock()
        speed = self.speed or 1.0
        for ns, _i, venue, kind, conn_id, data, url in heapq.merge(*self._sources()):
            if summary.first_ns is None:
                summary.first_ns = ns
            summary.last_ns = ns
            if paced:
                if first is None:
                    first = ns
                delay = wall0 + (ns - first) / 1e9 / speed - self._clock()
                if delay > 0:
                    self._sleep(delay)
            self._handle(venue, Direction(kind), conn_id, data, url, ns)
            if self._out:
                out, self._out = self._out, []
                for event in out:
                    summary.add(event)
                    self._note_native(event)
                    yield event
        for (venue, _conn), feed in self._feeds.items():
            for symbol, sync in feed.syncs.items():
                key = (venue, symbol)
                summary.checksums_ok[key] = summary.checksums_ok.get(key, 0) + sync.stats.checksums_ok
                summary.checksum_mismatches[key] = (
                    summary.checksum_mismatches.get(key, 0) + sync.stats.checksum_mismatches
                )

    def _note_native(self, event: Event) -> None:
        venue = getattr(event, "venue", None)
        symbol = getattr(event, "symbol", None)
        if venue and symbol:
            native = self.native(venue, symbol)
            if native is not None:
                self.summary.natives[venue, symbol] = native

    def native(self, venue: str, symbol: str) -> str | None:
        """The venue's own spelling of ``symbol`` (``NKN-USDT`` → ``NKNUSDT``,
        Kraken v1 ``BTC-USD`` → ``XBT/USD``), or None if the venue's adapter
        cannot spell it."""
        key = (venue, symbol)
        if key not in self._natives:
            adapter = next((f.adapter for (v, _c), f in self._feeds.items() if v == venue), None)
            native: str | None = None
            if adapter is not None:
                try:
                    native = adapter.to_native(symbol, Channel.BOOK)
                except Exception:  # an unknown symbol has no native spelling
                    native = None
            self._natives[key] = native
        return self._natives[key]

    def book(self, venue: str, symbol: str) -> BookView:
        """The replayed L2 book of ``symbol`` on ``venue`` as it stands after
        the last event handed out: the same read-only view as
        :meth:`wsmux.Multiplexer.book`. Read it between events (e.g. inside a
        ``for event in replay.events()`` loop).

        Raises:
            UnknownVenue: no frame of ``venue`` has been replayed (yet).
            UnknownSymbol: no book of ``symbol`` on that venue (yet).
        """
        feeds = [f for (v, _c), f in self._feeds.items() if v == venue]
        if not feeds:
            seen = sorted({v for v, _c in self._feeds})
            raise UnknownVenue(f"no replayed frames of venue {venue!r} (yet); venues seen: {', '.join(seen) or '-'}")
        books = [b for b in (f.book(symbol) for f in feeds) if b is not None]
        if not books:
            known = sorted({s for f in feeds for s in f.syncs})
            raise UnknownSymbol(f"no replayed book of {symbol!r} on {venue} (yet); books: {', '.join(known) or '-'}")
        valid = [b for b in books if b.valid]
        return BookView((valid or books)[-1])

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
        for count, event in enumerate(self._play(paced=False), 1):
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


def _is_wsmux_log(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(FILE_MAGIC)) == FILE_MAGIC
    except OSError as exc:
        raise LogError(f"cannot read {path}: {exc}") from exc


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
