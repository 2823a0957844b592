"""Deep stream snapshots whose rows the book's build reads (UnreadRows): on a
live Feed, Deribit, Kraken Futures, Gemini v2 and Coinbase Advanced hand a
full book over unread, so the frame only decodes JSON; the rows become levels
in the build's bounded steps, where only that book waits. The books equal the
at-once ones, the connection's other books keep flowing meanwhile, and a bad
row is reported as a snapshot that could not be processed."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from deferkit import replay_stepping
from test_book_resync import spy_on_steps

import wsmux.testing
from wsmux import Multiplexer
from wsmux import book as book_sub
from wsmux._pipeline import BuildSnapshot, Feed, Send
from wsmux.book import RawSnapshot, SnapshotBuild, UnreadRows
from wsmux.exchanges import get as get_adapter
from wsmux.model import BookSnapshot, BookUpdate, Channel, Error, ErrorKind, Gap, Resynced
from wsmux.subscriptions import Subscription
from wsmux.testing import collect_until

TS_ISO = "2024-05-01T12:00:00.123456789Z"
TS_MS = 1700000000000


class Seqs:
    """The sequence numbers of one connection's frames: per book (Deribit's
    ``change_id``, Kraken Futures' ``seq``) and per connection (Coinbase
    Advanced's ``sequence_num``); each venue's frames use the one it checks."""

    def __init__(self) -> None:
        self.books: dict[str, int] = {}
        self.sent = 0

    def snapshot(self, native: str) -> tuple[int, int]:
        """(book seq, connection seq) of a snapshot of ``native``."""
        self.books[native] = 1000 * (len(self.books) + 1)
        self.sent += 1
        return self.books[native], self.sent

    def diff(self, native: str) -> tuple[int, int]:
        """(book seq, connection seq) of the next diff of ``native``."""
        self.books[native] += 1
        self.sent += 1
        return self.books[native], self.sent


Rows = list[tuple[str, float, float]]  # (side: "bid", "ask" or "bad", price, size)


@dataclass(frozen=True)
class Venue:
    """How one full-book venue spells a snapshot and a one-level diff."""

    name: str
    symbols: tuple[str, str]  # unified
    natives: tuple[str, str]
    snapshot_text: Callable[[str, Rows, int, int], str]  # native, rows, book seq, connection seq
    diff_text: Callable[[str, Rows, int, int], str]

    def snapshot(self, seqs: Seqs, native: str, rows: Rows) -> str:
        return self.snapshot_text(native, rows, *seqs.snapshot(native))

    def diff(self, seqs: Seqs, native: str, which: str, price: float, size: float) -> str:
        return self.diff_text(native, [(which, price, size)], *seqs.diff(native))


def _deribit(kind: str) -> Callable[[str, Rows, int, int], str]:
    def text(native: str, rows: Rows, seq: int, sent: int) -> str:
        data: dict[str, Any] = {"type": kind, "timestamp": TS_MS, "instrument_name": native, "change_id": seq}
        if kind == "change":
            data["prev_change_id"] = seq - 1
        data |= {"bids": [], "asks": []}
        for which, price, size in rows:
            action = {"bad": "bogus", "bid": "new", "ask": "new"}[which] if kind == "snapshot" else "change"
            data["bids" if which == "bid" else "asks"].append([action if size else "delete", price, size])
        params = {"channel": f"book.{native}.100ms", "data": data}
        return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": params})

    return text


def _kf_snapshot(native: str, rows: Rows, seq: int, sent: int) -> str:
    bids = [{"price": p, "qty": q} for which, p, q in rows if which == "bid"]
    asks = [{"price": p if which == "ask" else "x", "qty": q} for which, p, q in rows if which != "bid"]
    return json.dumps(
        {"feed": "book_snapshot", "product_id": native, "timestamp": TS_MS, "seq": seq, "bids": bids, "asks": asks}
    )


def _kf_diff(native: str, rows: Rows, seq: int, sent: int) -> str:
    ((which, price, size),) = rows
    side = "buy" if which == "bid" else "sell"
    fields = {"feed": "book", "product_id": native, "side": side, "seq": seq, "price": price, "qty": size}
    return json.dumps(fields | {"timestamp": TS_MS})


def _gemini(snapshot: bool) -> Callable[[str, Rows, int, int], str]:
    word = {"bid": "buy", "ask": "sell", "bad": "hold"}

    def text(native: str, rows: Rows, seq: int, sent: int) -> str:
        changes = [[word[which], repr(p), repr(q)] for which, p, q in rows]
        msg: dict[str, Any] = {"type": "l2_updates", "symbol": native, "changes": changes}
        if snapshot:
            msg["trades"] = []
        return json.dumps(msg)

    return text


def _advanced(kind: str) -> Callable[[str, Rows, int, int], str]:
    side = {"bid": "bid", "ask": "offer", "bad": "middle"}

    def text(native: str, rows: Rows, seq: int, sent: int) -> str:
        updates = [
            {"side": side[which], "event_time": TS_ISO, "price_level": repr(p), "new_quantity": repr(q)}
            for which, p, q in rows
        ]
        events = [{"type": kind, "product_id": native, "updates": updates}]
        return json.dumps(
            {"channel": "l2_data", "client_id": "", "timestamp": TS_ISO, "sequence_num": sent, "events": events}
        )

    return text


PERPS = ("BTC-USD-PERP", "ETH-USD-PERP")
SPOT = ("BTC-USD", "ETH-USD")
VENUES = [
    Venue("deribit", PERPS, ("BTC-PERPETUAL", "ETH-PERPETUAL"), _deribit("snapshot"), _deribit("change")),
    Venue("kraken-futures", PERPS, ("PF_XBTUSD", "PF_ETHUSD"), _kf_snapshot, _kf_diff),
    Venue("gemini-v2", SPOT, ("BTCUSD", "ETHUSD"), _gemini(True), _gemini(False)),
    Venue("coinbase-advanced", SPOT, SPOT, _advanced("snapshot"), _advanced("update")),
]
IDS = [venue.name for venue in VENUES]


def book_rows(levels: int, seed: int = 0, bad_at: int | None = None) -> Rows:
    """``levels`` a side, shuffled (sides mixed, as the mixed-list venues may
    send them); with ``bad_at``, that row is made one the venue's parse refuses."""
    rows = [("bid", 30000.0 - i * 0.5, float(1 + i % 7)) for i in range(levels)]
    rows += [("ask", 30000.5 + i * 0.5, float(2 + i % 5)) for i in range(levels)]
    random.Random(seed).shuffle(rows)
    if bad_at is not None:
        _, price, size = rows[bad_at]
        rows[bad_at] = ("bad", price, size)
    return rows


def venue_feed(venue: Venue, step: bool) -> tuple[Feed, list[Any]]:
    adapter = get_adapter(venue.name)()
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    feed.step_snapshots = step
    subs = [Subscription(venue.name, Channel.BOOK, symbol) for symbol in venue.symbols]
    for sub in subs:
        feed.add_book(sub)
    adapter.subscribe(subs)
    return feed, events


def run_builds(feed: Feed) -> list[Any]:
    """Run every pending build to its end; the other actions are returned."""
    others = []
    for action in feed.take_actions():
        if isinstance(action, BuildSnapshot):
            for _ in action.steps:
                pass
        else:
            others.append(action)
    return others + feed.take_actions()


@pytest.mark.parametrize("venue", VENUES, ids=IDS)
def test_a_live_feed_gets_a_deep_snapshot_unread_and_direct_parse_reads_it(venue: Venue) -> None:
    def parsed(rows: Rows, defer: bool) -> Any:
        adapter = get_adapter(venue.name)()
        adapter.subscribe([Subscription(venue.name, Channel.BOOK, venue.symbols[0])])
        adapter.defer_snapshot_rows = defer
        (snapshot,) = adapter.parse(venue.snapshot(Seqs(), venue.natives[0], rows), 1)
        return snapshot

    deep = book_rows(1500)
    assert not isinstance(parsed(deep, False).bids, UnreadRows)  # replays, tests, direct use: read inside parse
    raw = parsed(deep, True)
    assert isinstance(raw, RawSnapshot)
    assert isinstance(raw.bids, UnreadRows) and isinstance(raw.asks, UnreadRows)
    assert not isinstance(parsed(book_rows(20), True).bids, UnreadRows)  # one step's worth: read at once


@pytest.mark.parametrize("venue", VENUES, ids=IDS)
def test_a_deep_snapshot_read_by_the_build_gives_the_book_of_reading_it_at_once(venue: Venue) -> None:
    native = venue.natives[0]
    seqs = Seqs()
    frames = [venue.snapshot(seqs, native, book_rows(1500, seed=3))]
    for i in range(1, 30):  # diffs at the top and deeper, deletes now and then, both sides
        which = "bid" if i % 2 else "ask"
        price = 30000.0 - (i % 9) * 0.5 if which == "bid" else 30000.5 + (i % 7) * 0.5
        frames.append(venue.diff(seqs, native, which, price, 0.0 if i % 5 == 0 else float(i)))
    at_once, _ = venue_feed(venue, step=False)
    for frame in frames:
        at_once.on_frame(frame, 1)
    stepped, events = venue_feed(venue, step=True)
    held = replay_stepping(stepped, [(frame, 1) for frame in frames])  # one build step per frame that arrives
    assert held == 0  # no frame of the connection waited: only the book did
    once, live = at_once.book(venue.symbols[0]), stepped.book(venue.symbols[0])
    assert once is not None and live is not None and once.valid and live.valid
    live._check()
    assert live.depth() == once.depth() and len(live) > 2900
    assert [type(e) for e in events][:2] == [BookSnapshot, Resynced]
    assert not [e for e in events if isinstance(e, Error | Gap)]
    assert stepped.syncs[venue.symbols[0]].stats.buffered > 0  # diffs did arrive mid-build


@pytest.mark.parametrize("venue", VENUES, ids=IDS)
def test_the_connections_other_books_flow_while_a_deep_snapshot_is_read(venue: Venue) -> None:
    """The property a Feed-wide hold would break: only the book being built waits."""
    feed, events = venue_feed(venue, step=True)
    at_once, _ = venue_feed(venue, step=False)
    first, second = venue.natives
    seqs = Seqs()
    frames = [
        venue.snapshot(seqs, second, book_rows(5)),  # the other book: small, synced at once
        venue.snapshot(seqs, first, book_rows(1500)),
        venue.diff(seqs, second, "bid", 29999.0, 7.0),
        venue.diff(seqs, first, "bid", 30000.0, 9.0),  # held by its book alone
    ]
    for frame in frames:
        at_once.on_frame(frame, 1)
    feed.on_frame(frames[0], 1)
    assert feed.syncs[venue.symbols[1]].valid
    feed.on_frame(frames[1], 2)
    (build,) = [a for a in feed.take_actions() if isinstance(a, BuildSnapshot)]
    assert not feed.syncs[venue.symbols[0]].valid  # nothing read inside the frame
    events.clear()
    feed.on_frame(frames[2], 3)
    feed.on_frame(frames[3], 4)
    assert [(type(e), e.symbol) for e in events] == [(BookUpdate, venue.symbols[1])]
    for _ in build.steps:
        pass
    book, once = feed.book(venue.symbols[0]), at_once.book(venue.symbols[0])
    assert book is not None and once is not None and book.valid and once.valid
    assert book.depth() == once.depth() and book.best_bid()[0] == 30000.0  # the held diff replayed


@pytest.mark.parametrize("venue", VENUES, ids=IDS)
def test_a_bad_row_read_in_a_later_step_fails_the_snapshot_and_asks_again(venue: Venue) -> None:
    feed, events = venue_feed(venue, step=True)
    seqs = Seqs()
    rows = book_rows(1500, bad_at=2900)  # read in the second step or later
    feed.on_frame(venue.snapshot(seqs, venue.natives[0], rows), 1)  # never raises
    assert events == []
    actions = run_builds(feed)
    sync = feed.syncs[venue.symbols[0]]
    assert not sync.valid and len(sync.book) == 0
    (error, reask) = events
    assert isinstance(error, Error) and error.kind is ErrorKind.MALFORMED and error.symbol == venue.symbols[0]
    assert error.message.startswith("BookSnapshot could not be processed")
    assert isinstance(reask, Error) and reask.kind is ErrorKind.SNAPSHOT and "asking again" in reask.message
    assert any(isinstance(action, Send) for action in actions)
    assert feed.stats.parse_errors == 1
    feed.on_frame(venue.snapshot(seqs, venue.natives[0], book_rows(1500, seed=1)), 2)  # the next good one syncs it
    run_builds(feed)
    assert sync.valid


@pytest.mark.parametrize("text", [False, True], ids=["levels", "levels and text"])
def test_a_step_whose_rows_hold_none_of_its_side_still_moves_on(text: bool) -> None:
    """A side of a mixed list may find none of its levels in a whole step's
    rows: the build advances by the rows read, not the levels found (for the
    levels, and for the text a checksum book keeps)."""
    rows = [("ask", 1001.0 + i, 1.0) for i in range(300)] + [("bid", 1000.0 - i, 2.0) for i in range(300)]
    reads = [0]

    def split(chunk: Rows) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        reads[0] += 1
        assert reads[0] <= 24, "the build does not move on"  # 6 slices a side, twice with text
        bid_rows = [(repr(p), repr(q)) for w, p, q in chunk if w == "bid"]
        return bid_rows, [(repr(p), repr(q)) for w, p, q in chunk if w == "ask"]

    bids, asks = UnreadRows.split(rows, split)
    assert len(bids) == len(asks) == 600 and bids[0:300] == [] and len(asks[0:300]) == 300
    reads[0] = 0
    if text:
        build = SnapshotBuild(bids, asks, bids, asks, step_levels=100, text_keep=10)
    else:
        build = SnapshotBuild(bids, asks, None, None, step_levels=100)
    build.finish()
    assert build.ok and build.bid_keys == sorted(1000.0 - i for i in range(300))
    assert build.ask_keys == [1001.0 + i for i in range(300)] and set(build.bids.values()) == {2.0}
    assert reads[0] == (24 if text else 12)
    if text:
        assert build.bids_text[1000.0] == ("1000.0", "2.0") and build.asks_text[1001.0] == ("1001.0", "1.0")


def test_slicing_reads_only_the_rows_sliced() -> None:
    read: list[int] = []

    def convert(chunk: Any) -> list[tuple[float, float]]:
        read.append(len(chunk))
        return [(float(p), float(q)) for p, q in chunk]

    unread = UnreadRows([("1", "2"), ("3", "4"), ("5", "6")], convert)
    assert read == [] and len(unread) == 3
    assert unread[1:3] == [(3.0, 4.0), (5.0, 6.0)] and read == [2]
    assert list(unread) == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)] and read == [2, 3]
    assert repr(unread) == "UnreadRows(3 rows)"


@pytest.mark.parametrize("venue", VENUES, ids=IDS)
def test_a_bad_deep_snapshot_for_a_valid_book_flags_the_book(venue: Venue) -> None:
    """Applied at once (the book is valid): the bad row raises inside the
    frame's handling, is contained to its book, and the book says so."""
    feed, events = venue_feed(venue, step=True)
    seqs = Seqs()
    feed.on_frame(venue.snapshot(seqs, venue.natives[0], book_rows(10)), 1)
    sync = feed.syncs[venue.symbols[0]]
    assert sync.valid
    events.clear()
    feed.on_frame(venue.snapshot(seqs, venue.natives[0], book_rows(1500, bad_at=2900)), 2)  # never raises
    actions = feed.take_actions()
    assert not any(isinstance(action, BuildSnapshot) for action in actions)  # a valid book: at once
    assert any(isinstance(action, Send) for action in actions)  # and asked for a new snapshot
    assert not sync.valid
    error, gap = events
    assert isinstance(error, Error) and error.kind is ErrorKind.MALFORMED
    assert isinstance(gap, Gap) and gap.symbol == venue.symbols[0]


LIVE = [
    ("deribit", "MockDeribit", "BTC-USD-PERP"),
    ("kraken-futures", "MockKrakenFutures", "BTC-USD-PERP"),
    ("gemini-v2", "MockGeminiV2", "BTC-USD"),
    ("coinbase-advanced", "MockCoinbaseAdvanced", "BTC-USD"),
]


@pytest.mark.parametrize(("venue", "mock_name", "symbol"), LIVE, ids=[live[0] for live in LIVE])
async def test_a_live_connection_reads_the_rows_in_steps_and_the_book_goes_on(
    venue: str, mock_name: str, symbol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real connection and the venue's mock: the deep snapshot's
    rows are read by the build's steps (none inside the frame), with the loop
    running between steps, and the book syncs and goes on with the updates."""
    slices_read: list[bool] = []  # per slice read: inside a build step?
    in_step = [False]
    slice_rows = UnreadRows.__getitem__

    def spied_slice(self: UnreadRows, index: slice) -> Any:
        slices_read.append(in_step[0])
        return slice_rows(self, index)

    build_steps = Feed._build_steps

    def spied_steps(self: Feed, *args: Any) -> Any:
        steps = build_steps(self, *args)
        while True:
            in_step[0] = True
            try:
                next(steps)
            except StopIteration:
                return
            finally:
                in_step[0] = False
            yield

    monkeypatch.setattr(UnreadRows, "__getitem__", spied_slice)
    monkeypatch.setattr(Feed, "_build_steps", spied_steps)
    interleaved = spy_on_steps(monkeypatch, "_build_steps")
    mock_cls = getattr(wsmux.testing, mock_name)
    async with mock_cls([symbol], levels=3000) as mock, Multiplexer(endpoints={venue: mock.endpoint}) as mux:
        stream = mux.subscribe(*book_sub(venue, symbol))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(20)
        await collect_until(stream, lambda e: isinstance(e, BookUpdate))
        view = mux.book(venue, symbol)
        assert view.valid and min(len(side) for side in view.depth()) > 2000
        await stream.aclose()
    assert slices_read and all(slices_read)  # every slice of rows was read by a build step
    assert len(interleaved) >= 2 and all(interleaved)
