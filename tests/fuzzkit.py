"""A seeded mutation fuzzer for the sans-I/O pipeline (:class:`wsmux._pipeline.Feed`).

Input: a *session* — the frames one connection receives (from a venue mock via
``bench/benchlib.generate_script``, or from a real recording), the REST snapshot
bodies it asks for, and how to build a synced :class:`Feed` from it.

A *case* is ``(session, mutation kind, seed)``: the session's data frames with
one to three mutations of one kind applied — frame-level (byte flips,
truncation, field deletion, type swaps, weird numbers, duplicate keys, deep
nesting) or stream-level (dropped, duplicated, swapped frames). The case is fed
through a fresh Feed; REST snapshots are answered from the session (sometimes
mutated). Checked after every frame:

* no exception escapes ``on_frame`` / ``on_snapshot_body``;
* every book its sync calls valid equals an *independent rebuild* from the
  BookSnapshot/BookUpdate events the feed delivered (snapshots replace, updates
  set absolute sizes, 0 deletes, trimmed to the book's depth);
* every valid book passes ``OrderBook._check()`` and holds only finite,
  positive prices and sizes; every delivered book event carries finite,
  positive prices and finite, non-negative sizes. (Trades and quotes with bad
  numbers are the multiplexer's QualityGate's to drop, not the Feed's.)

Each violation is a :class:`Finding` with a short *signature* so known bugs (the
hot path is being rewritten: they are reported, not fixed here) can be told
from new ones.
"""

from __future__ import annotations

import heapq
import math
import random
import re
from collections.abc import Callable
from typing import Any

import attrs

from wsmux._pipeline import Feed, FetchSnapshot
from wsmux.model import BookSnapshot, BookUpdate, Channel, Event, Gap

__all__ = [
    "FRAME_KINDS",
    "KINDS",
    "STREAM_KINDS",
    "Case",
    "Finding",
    "Rebuild",
    "Session",
    "mutate_frame",
    "run_case",
]

WEIRD_NUMBERS: tuple[str, ...] = (
    "1e400",
    "-1e400",
    "Infinity",
    "-Infinity",
    "NaN",
    "inf",
    "1" + "0" * 500,
    "9" * 401 + ".5",
    "0." + "0" * 400 + "1",
    "\u0665\u0660\u0660\u0660\u0660.05000",  # Arabic-Indic digits: float() takes them
    "\uff11\uff12\uff13",  # full-width digits
    "-0",
    "0",
    "-1",
    "1e-400",
    "1e308",
    "0x1F",
    "1_000",
    " 5",
    "+5",
    ".5",
    "5.",
)
"""Number texts the wire must not smuggle into a book as valid numbers."""

FRAME_KINDS = ("flip", "truncate", "delete_field", "type_swap", "weird_number", "duplicate_key", "deep_nesting")
STREAM_KINDS = ("drop", "duplicate", "swap")
KINDS = FRAME_KINDS + STREAM_KINDS

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null')
_NUMERIC_TEXT = re.compile(rb'^"?-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"?$')
MAX_SNAPSHOTS = 2
"""REST snapshot answers per symbol and case (the session's bodies do not move on)."""
FULL_CHECK_EVERY = 25
PARTIAL_DEPTH = 25
_KEY = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:')


def _value_end(data: bytes, i: int) -> int:
    """End of the JSON value starting at ``i`` (bracket- and string-aware, tolerant)."""
    depth = 0
    in_str = False
    j = i
    while j < len(data):
        c = data[j]
        if in_str:
            if c == 0x5C:  # backslash
                j += 1
            elif c == 0x22:
                in_str = False
                if depth == 0:
                    return j + 1
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
        elif c in (0x5D, 0x7D):
            if depth == 0:
                return j
            depth -= 1
            if depth == 0:
                return j + 1
        elif c == 0x2C and depth == 0:
            return j
        j += 1
    return j


def mutate_frame(rng: random.Random, frame: bytes, kind: str) -> bytes:
    """One mutation of ``kind`` (one of :data:`FRAME_KINDS`) applied to ``frame``."""
    if not frame:
        return frame
    if kind == "flip":
        i = rng.randrange(len(frame))
        return frame[:i] + bytes([frame[i] ^ (1 << rng.randrange(8))]) + frame[i + 1 :]
    if kind == "truncate":
        return frame[: rng.randrange(len(frame))]
    if kind == "deep_nesting":
        depth = rng.choice((64, 1_000, 10_000))
        tokens = list(_TOKEN.finditer(frame))
        if not tokens:
            return b"[" * depth + frame + b"]" * depth
        m = rng.choice(tokens)
        return frame[: m.start()] + b"[" * depth + m.group() + b"]" * depth + frame[m.end() :]
    keys = list(_KEY.finditer(frame))
    if kind in ("delete_field", "duplicate_key") and keys:
        k = rng.choice(keys)
        end = _value_end(frame, k.end())
        if kind == "delete_field":
            start, stop = k.start(), end
            if stop < len(frame) and frame[stop : stop + 1] == b",":
                stop += 1
            elif start > 0 and frame[start - 1 : start] == b",":
                start -= 1
            return frame[:start] + frame[stop:]
        replacement = rng.choice([b"null", b'"x"', b"-1", b"[]", b"{}", b"0", b"1e400"])
        return frame[:end] + b"," + k.group() + replacement + frame[end:]
    tokens = list(_TOKEN.finditer(frame))
    if not tokens:
        return mutate_frame(rng, frame, "flip")
    if kind == "weird_number":
        numeric = [m for m in tokens if _NUMERIC_TEXT.match(m.group())] or tokens
        m = rng.choice(numeric)
        weird = rng.choice(WEIRD_NUMBERS).encode()
        quoted = m.group().startswith(b'"') or not re.fullmatch(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", weird)
        new = b'"' + weird + b'"' if quoted else weird
        return frame[: m.start()] + new + frame[m.end() :]
    # type_swap
    m = rng.choice(tokens)
    text = m.group()
    if text.startswith(b'"') and _NUMERIC_TEXT.match(text):
        new = text[1:-1]  # "1.5" -> 1.5
    elif re.fullmatch(rb"-?\d.*", text):
        new = rng.choice([b'"' + text + b'"', b"true", b"null", b"[]"])  # 1.5 -> "1.5" / ...
    else:
        new = rng.choice([b"0", b"null", b"[]", b"{}", b"true", b'"x"', b"1.5"])
    return frame[: m.start()] + new + frame[m.end() :]


@attrs.define
class Session:
    """What one connection received, and how to start a synced feed on it.

    ``start(sink)`` returns a fresh Feed already fed its warm-up (books synced);
    ``data`` are the frames to mutate; ``rest(action)`` answers a FetchSnapshot
    (None: the session has no such body)."""

    name: str
    venue: str
    data: list[bytes]
    start: Callable[[Callable[[Event], object]], Feed]
    rest: Callable[[FetchSnapshot], bytes | None]


@attrs.frozen
class Finding:
    """One violated property. ``signature`` groups findings of the same bug."""

    session: str
    kind: str
    seed: int
    signature: str
    detail: str


@attrs.frozen
class Case:
    session: Session
    kind: str
    seed: int


def _finite_positive(price: float, size: float) -> bool:
    return math.isfinite(price) and math.isfinite(size) and price > 0 and size > 0


class Rebuild:
    """Books rebuilt from delivered events only (independent of OrderBook/BookSync)."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.bad_events: list[str] = []
        self.touched: set[str] = set()
        """Symbols named by an event since the caller last cleared it."""
        self.truncate: dict[str, int] = {}
        """Per symbol, the depth the venue's book rule keeps after every change
        (Kraken, OKX, Phemex...: the venue's own view is that deep)."""

    def __call__(self, event: Event) -> None:
        cls = type(event)
        symbol = getattr(event, "symbol", None)
        if symbol is not None:
            self.touched.add(symbol)
        if cls is BookSnapshot:
            self.books[event.symbol] = (dict(event.bids), dict(event.asks))  # type: ignore[attr-defined]
        elif cls is BookUpdate:
            book = self.books.get(event.symbol)  # type: ignore[attr-defined]
            if book is not None:
                for side, levels in zip(book, (event.bids, event.asks), strict=True):  # type: ignore[attr-defined]
                    for price, size in levels:
                        if size == 0:
                            side.pop(price, None)
                        else:
                            side[price] = size
                depth = self.truncate.get(event.symbol)  # type: ignore[attr-defined]
                if depth is not None:
                    bids, asks = book
                    for price in sorted(bids, reverse=True)[depth:]:
                        del bids[price]
                    for price in sorted(asks)[depth:]:
                        del asks[price]
        elif cls is Gap and event.channel is Channel.BOOK:  # type: ignore[attr-defined]
            self.books.pop(event.symbol, None)  # type: ignore[attr-defined]
        if cls in (BookSnapshot, BookUpdate):
            for price, size in (*event.bids, *event.asks):  # type: ignore[attr-defined]
                if not (math.isfinite(price) and math.isfinite(size) and price > 0 and size >= 0):
                    self.bad_events.append(f"{cls.__name__} level ({price!r}, {size!r})")
                    break

    def follow(self, feed: Feed) -> None:
        """Apply each book's truncation rule (its ``SyncRule.depth``) as the venue does."""
        self.truncate = {symbol: sync.rule.depth for symbol, sync in feed.syncs.items() if sync.rule.depth}

    def depth(self, symbol: str, max_depth: int | None) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids, asks = self.books[symbol]
        if max_depth is None:
            return sorted(bids.items(), key=lambda kv: -kv[0]), sorted(asks.items())
        return (
            heapq.nlargest(max_depth, bids.items(), key=lambda kv: kv[0]),
            heapq.nsmallest(max_depth, asks.items(), key=lambda kv: kv[0]),
        )


def _stream(rng: random.Random, data: list[bytes], kind: str) -> list[bytes]:
    """The data frames with 1-3 mutations of ``kind``."""
    frames = list(data)
    for _ in range(rng.randint(1, 3)):
        if not frames:
            break
        i = rng.randrange(len(frames))
        if kind == "drop":
            del frames[i]
        elif kind == "duplicate":
            frames.insert(i, frames[i])
        elif kind == "swap":
            if i + 1 < len(frames):
                frames[i], frames[i + 1] = frames[i + 1], frames[i]
        else:
            frames[i] = mutate_frame(rng, frames[i], kind)
    return frames


def _signature(exc: BaseException) -> str:
    return f"escaped:{type(exc).__name__}"


def run_case(case: Case) -> list[Finding]:
    """Feed one mutated session; return what went wrong (empty: nothing)."""
    session, kind, seed = case.session, case.kind, case.seed
    rng = random.Random(f"{session.name}/{kind}/{seed}")
    rebuild = Rebuild()
    findings: list[Finding] = []

    def find(signature: str, detail: str) -> None:
        if signature not in {f.signature for f in findings}:  # each bug once per case
            findings.append(Finding(session.name, kind, seed, signature, detail[:300]))

    feed = session.start(rebuild)
    rebuild.follow(feed)
    answered: dict[str, int] = {}
    recv_ns = 1_700_000_000_000_000_000
    for frame_no, frame in enumerate(_stream(rng, session.data, kind), 1):
        recv_ns += 1_000_000
        try:
            feed.on_frame(frame, recv_ns)
        except Exception as exc:
            find(_signature(exc), f"on_frame raised {type(exc).__name__}: {exc} for {frame[:120]!r}")
            return findings
        for action in feed.take_actions():
            if not isinstance(action, FetchSnapshot):
                continue
            answered[action.symbol] = answered.get(action.symbol, 0) + 1
            body = session.rest(action) if answered[action.symbol] <= MAX_SNAPSHOTS else None
            if body is None:  # none recorded, or asked too often (a stale body only asks again)
                continue
            if rng.random() < 0.2:
                body = mutate_frame(rng, body, rng.choice(FRAME_KINDS))
            try:
                feed.on_snapshot_body(action.symbol, body, recv_ns, action.channel)
            except Exception as exc:
                find(_signature(exc), f"on_snapshot_body raised {type(exc).__name__}: {exc}")
                return findings
        if rebuild.bad_events:
            find("delivered-non-finite", rebuild.bad_events[0])
            rebuild.bad_events.clear()
        # books an event named are checked after every frame, all of them every
        # FULL_CHECK_EVERY frames and at the end (a silent change shows there)
        full = frame_no % FULL_CHECK_EVERY == 0
        problem = check_books(feed, rebuild, None if full else rebuild.touched)
        rebuild.touched.clear()
        if problem is not None:
            find(*problem)
    problem = check_books(feed, rebuild)
    if problem is not None:
        find(*problem)
    return findings


def check_books(feed: Feed, rebuild: Rebuild, symbols: set[str] | None = None) -> tuple[str, str] | None:
    """The invariants of every valid book: (signature, detail) of the first broken
    one. ``symbols``: check only those, and only their top :data:`PARTIAL_DEPTH`
    levels (the cheap check after each frame); None: every book, every level."""
    top = None if symbols is None else PARTIAL_DEPTH
    for symbol, sync in feed.syncs.items():
        if not sync.valid or (symbols is not None and symbol not in symbols):
            continue
        book = sync.book
        bids, asks = book.depth(top)
        for price, size in (*bids, *asks):
            if not _finite_positive(price, size):
                return "valid-book-non-finite", f"{symbol}: level ({price!r}, {size!r}) in a valid book"
        if top is None:
            try:
                book._check()
            except AssertionError as exc:
                if "crossed" in str(exc) and not sync.rule.check_crossed:
                    return "valid-book-crossed-unchecked", f"{symbol}: {exc} (the rule has check_crossed=False)"
                return "valid-book-check", f"{symbol}: _check failed: {exc}"
        if symbol not in rebuild.books:
            return "valid-book-without-snapshot", f"{symbol}: valid but no BookSnapshot delivered since its last Gap"
        depth = book.max_depth if top is None else min(top, book.max_depth or top)
        expected = rebuild.depth(symbol, depth)
        if (list(bids), list(asks)) != expected:
            return (
                "valid-book-differs",
                f"{symbol}: book {bids[:3]}|{asks[:3]} != rebuild {expected[0][:3]}|{expected[1][:3]}",
            )
    return None


def summarize(findings: list[Finding]) -> dict[str, Any]:
    """Counts by (session venue, signature), for reports."""
    out: dict[str, int] = {}
    for f in findings:
        key = f"{f.session}:{f.signature}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
