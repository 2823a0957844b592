"""BookSync: every continuity rule, REST buffering and bridging, checks, stats,
and a randomized stream with duplicates, reorders and losses against a model."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmux.book import BookSync, Continuity, OrderBook, SnapshotSource, SyncRule, SyncState, SyncStats, Verdict
from wsmux.model import BookSide, BookSnapshot, BookUpdate, GapReason

Lvl = tuple[float, float]

BINANCE_SPOT = SyncRule(SnapshotSource.REST, Continuity.UPDATE_ID, bridge_offset=1)
BINANCE_FUTURES = SyncRule(SnapshotSource.REST, Continuity.PREV_ID, bridge_offset=0)
STREAM_SEQ = SyncRule(SnapshotSource.STREAM, Continuity.SEQUENCE)
STREAM_MONO = SyncRule(SnapshotSource.STREAM, Continuity.MONOTONIC)
STREAM_NONE = SyncRule(SnapshotSource.STREAM, Continuity.NONE)


def upd(
    seq: int | None,
    bids: Iterable[Lvl] = (),
    asks: Iterable[Lvl] = (),
    *,
    first: int | None = None,
    prev: int | None = None,
    checksum: int | None = None,
) -> BookUpdate:
    return BookUpdate("v", "A-B", tuple(bids), tuple(asks), seq, 0, seq, first, prev, checksum)


def snap(seq: int | None, bids: Iterable[Lvl], asks: Iterable[Lvl], checksum: int | None = None) -> BookSnapshot:
    return BookSnapshot("v", "A-B", tuple(bids), tuple(asks), seq, 0, seq, checksum)


BIDS = ((100.0, 1.0), (99.0, 2.0))
ASKS = ((101.0, 1.0), (102.0, 2.0))


def assert_broken_and_cleared(sync: BookSync) -> None:
    assert sync.state is SyncState.WAITING and not sync.valid
    assert not sync.book.valid
    assert len(sync.book) == 0
    assert sync.book.seq is None and sync.last is None


# --- Binance spot: REST snapshot, UPDATE_ID, U <= S+1 <= u ------------------------------------


def test_spot_buffers_drops_stale_and_bridges() -> None:
    sync = BookSync(BINANCE_SPOT)
    assert sync.on_update(upd(105, [(90.0, 9.0)], first=100)) is Verdict.BUFFERED
    assert sync.on_update(upd(110, [(99.0, 5.0)], first=106)) is Verdict.BUFFERED
    assert sync.on_update(upd(115, [], [(101.0, 0.0)], first=111)) is Verdict.BUFFERED
    assert not sync.book.valid and len(sync.book) == 0
    assert sync.on_snapshot(snap(107, BIDS, ASKS)) is Verdict.SYNCED
    book = sync.book
    assert sync.valid and book.valid and sync.state is SyncState.SYNCED
    # [100,105] is older than the snapshot: its level (90.0) was never applied
    assert book.depth() == (((100.0, 1.0), (99.0, 5.0)), ((102.0, 2.0),))
    assert book.seq == 115 and sync.last == 115 and book.ts == 115
    assert sync.stats == SyncStats(applied=2, buffered=3, stale=1, snapshots=1)
    # live updates continue from 115
    assert sync.on_update(upd(120, [(98.0, 1.0)], first=116)) is Verdict.APPLIED
    assert sync.on_update(upd(120, [(97.0, 1.0)], first=116)) is Verdict.STALE  # duplicate
    assert sync.on_update(upd(118, first=117)) is Verdict.STALE
    assert book.size_at(BookSide.BID, 97.0) == 0.0
    assert sync.stats.stale == 3 and sync.stats.applied == 3


def test_spot_snapshot_exactly_before_the_first_buffered_update() -> None:
    sync = BookSync(BINANCE_SPOT)
    sync.on_update(upd(110, [(99.0, 5.0)], first=106))
    # S + 1 == U: bridges
    assert sync.on_snapshot(snap(105, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.book.seq == 110 and sync.stats.applied == 1


def test_spot_snapshot_equal_to_the_last_buffered_id_leaves_nothing_to_apply() -> None:
    sync = BookSync(BINANCE_SPOT)
    sync.on_update(upd(110, [(99.0, 5.0)], first=106))
    assert sync.on_snapshot(snap(110, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.book.depth() == (BIDS, ASKS) and sync.book.seq == 110
    assert sync.stats.stale == 1 and sync.stats.applied == 0
    # the book still waits for the bridging update: ids up to S are stale ...
    assert sync.on_update(upd(110, [(1.0, 1.0)], first=108)) is Verdict.STALE
    # ... and the first live update must contain S + 1
    assert sync.on_update(upd(113, [(98.0, 1.0)], first=111)) is Verdict.APPLIED


def test_spot_refetch_when_the_snapshot_is_older_than_the_buffer() -> None:
    sync = BookSync(BINANCE_SPOT)
    sync.on_update(upd(110, [(99.0, 5.0)], first=106))
    sync.on_update(upd(115, first=111))
    assert sync.on_snapshot(snap(100, BIDS, ASKS)) is Verdict.REFETCH
    assert not sync.valid and not sync.book.valid and len(sync.book) == 0
    assert (sync.expected, sync.received) == (101, 106)
    assert sync.stats.refetches == 1 and not sync.stats.gaps
    assert not Verdict.REFETCH.broken
    # the buffer is kept: a newer snapshot syncs
    assert sync.on_snapshot(snap(108, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.book.seq == 115 and sync.book.size_at(BookSide.BID, 99.0) == 5.0
    assert sync.stats == SyncStats(applied=2, buffered=2, snapshots=2, refetches=1)


def test_spot_bridge_failure_on_the_first_live_update() -> None:
    sync = BookSync(BINANCE_SPOT)
    assert sync.on_snapshot(snap(107, BIDS, ASKS)) is Verdict.SYNCED  # nothing buffered
    assert sync.on_update(upd(107, first=100)) is Verdict.STALE
    v = sync.on_update(upd(125, [(99.0, 5.0)], first=120))
    assert v is Verdict.BRIDGE and v.broken and v.gap_reason is GapReason.BRIDGE
    assert_broken_and_cleared(sync)
    assert (sync.expected, sync.received) == (108, 120)
    assert "does not bridge" in sync.detail
    assert sync.stats.gaps == 1


def test_spot_gap_inside_the_buffer_is_found_during_replay() -> None:
    sync = BookSync(BINANCE_SPOT)
    sync.on_update(upd(105, [(99.0, 5.0)], first=100))
    sync.on_update(upd(112, [(98.0, 5.0)], first=109))  # 106..108 missing
    v = sync.on_snapshot(snap(104, BIDS, ASKS))
    assert v is Verdict.GAP
    assert_broken_and_cleared(sync)
    assert (sync.expected, sync.received) == (106, 109)
    assert sync.stats.gaps == 1 and sync.stats.applied == 1


def test_a_failed_replay_discards_the_rest_of_the_buffer() -> None:
    # Buffering restarts after a failure, so the next REST snapshot is
    # requested after the new buffer began (the pipeline relies on this).
    sync = BookSync(BINANCE_SPOT)
    sync.on_update(upd(105, first=100))
    sync.on_update(upd(112, first=109))  # gap
    sync.on_update(upd(115, [(98.0, 1.0)], first=113))
    assert sync.on_snapshot(snap(104, BIDS, ASKS)) is Verdict.GAP
    assert sync.on_snapshot(snap(112, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.book.seq == 112 and sync.book.depth() == (BIDS, ASKS)
    assert sync.on_update(upd(115, [(98.0, 1.0)], first=113)) is Verdict.APPLIED


def test_gap_mid_stream_then_resync_replays_the_buffer() -> None:
    sync = BookSync(BINANCE_SPOT)
    sync.on_update(upd(110, first=106))
    assert sync.on_snapshot(snap(107, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.on_update(upd(115, [(99.5, 1.0)], first=111)) is Verdict.APPLIED
    v = sync.on_update(upd(125, [(99.0, 7.0)], first=120))  # 116..119 lost
    assert v is Verdict.GAP and v.gap_reason is GapReason.SEQUENCE
    # the book is invalid *and* empty when the verdict comes back
    assert_broken_and_cleared(sync)
    assert (sync.expected, sync.received) == (116, 120)
    # the machine now buffers again (REST venue) ...
    assert sync.on_update(upd(130, [(98.0, 3.0)], first=126)) is Verdict.BUFFERED
    assert sync.on_update(upd(135, [], [(101.0, 4.0)], first=131)) is Verdict.BUFFERED
    # ... and a new snapshot replays what is newer than it
    assert sync.on_snapshot(snap(128, [(100.0, 1.0)], [(101.0, 1.0)])) is Verdict.SYNCED
    assert sync.book.depth() == (((100.0, 1.0), (98.0, 3.0)), ((101.0, 4.0),))
    assert sync.book.seq == 135 and sync.valid and sync.book.valid
    assert sync.stats == SyncStats(applied=4, buffered=3, snapshots=2, gaps=1)


def test_buffer_overflow_drops_the_oldest_and_counts() -> None:
    sync = BookSync(attrs.evolve(BINANCE_SPOT, max_buffer=3))
    for i in range(5):
        assert sync.on_update(upd(10 * i + 9, [(90.0 + i, 1.0)], first=10 * i)) is Verdict.BUFFERED
    assert sync.stats.buffered == 5 and sync.stats.buffer_overflow == 2
    # [0,9] and [10,19] are gone: a snapshot at 9 cannot bridge any more
    assert sync.on_snapshot(snap(9, BIDS, ASKS)) is Verdict.REFETCH
    assert (sync.expected, sync.received) == (10, 20)
    assert sync.on_snapshot(snap(19, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.book.seq == 49
    assert [p for p, _ in sync.book.depth()[0]] == [100.0, 99.0, 94.0, 93.0, 92.0]


# --- Binance futures: REST snapshot, PREV_ID, U <= S <= u -----------------------------------------


def test_futures_prev_id_bridge_and_chain() -> None:
    sync = BookSync(BINANCE_FUTURES)
    sync.on_update(upd(99, [(90.0, 1.0)], first=90, prev=89))
    sync.on_update(upd(110, [(99.0, 5.0)], first=100, prev=99))
    sync.on_update(upd(120, [(98.0, 5.0)], first=115, prev=110))  # ids need not be contiguous
    assert sync.on_snapshot(snap(105, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.book.seq == 120 and sync.stats.stale == 1 and sync.stats.applied == 2
    assert sync.book.size_at(BookSide.BID, 90.0) == 0.0
    assert sync.on_update(upd(130, [(97.0, 1.0)], first=125, prev=120)) is Verdict.APPLIED
    assert sync.on_update(upd(130, first=125, prev=120)) is Verdict.STALE  # duplicate
    v = sync.on_update(upd(150, first=141, prev=140))
    assert v is Verdict.GAP
    assert (sync.expected, sync.received) == (130, 140)
    assert_broken_and_cleared(sync)


def test_futures_snapshot_equal_to_u_is_bridged_by_that_event() -> None:
    # bridge_offset 0: the event with u == lastUpdateId is not stale and re-applies cleanly
    sync = BookSync(BINANCE_FUTURES)
    sync.on_update(upd(110, [(99.0, 5.0)], first=100, prev=99))
    assert sync.on_snapshot(snap(110, [(100.0, 1.0), (99.0, 5.0)], ASKS)) is Verdict.SYNCED
    assert sync.stats.applied == 1 and sync.stats.stale == 0
    assert sync.on_update(upd(111, first=111, prev=110)) is Verdict.APPLIED


def test_futures_refetch_and_bridge_failure() -> None:
    sync = BookSync(BINANCE_FUTURES)
    sync.on_update(upd(110, first=100, prev=95))
    assert sync.on_snapshot(snap(99, BIDS, ASKS)) is Verdict.REFETCH
    assert (sync.expected, sync.received) == (99, 100)
    sync = BookSync(BINANCE_FUTURES)
    assert sync.on_snapshot(snap(99, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.on_update(upd(98, first=90, prev=80)) is Verdict.STALE
    assert sync.on_update(upd(110, first=100, prev=95)) is Verdict.BRIDGE
    assert_broken_and_cleared(sync)


# --- stream-snapshot venues: SEQUENCE, MONOTONIC, NONE ---------------------------------------


def test_sequence_continuity() -> None:
    sync = BookSync(STREAM_SEQ)
    assert sync.on_update(upd(9, [(1.0, 1.0)])) is Verdict.IGNORED  # before the snapshot
    assert sync.on_snapshot(snap(10, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.on_update(upd(11, [(99.0, 0.0)])) is Verdict.APPLIED
    assert sync.on_update(upd(11, [(98.0, 1.0)])) is Verdict.STALE
    assert sync.on_update(upd(5)) is Verdict.STALE
    assert sync.book.depth()[0] == ((100.0, 1.0),)
    assert sync.on_update(upd(13)) is Verdict.GAP
    assert (sync.expected, sync.received) == (12, 13)
    assert "sequence 13 after 11" in sync.detail
    assert_broken_and_cleared(sync)
    assert sync.on_update(upd(14)) is Verdict.IGNORED  # stream venue: wait for a snapshot
    assert sync.on_snapshot(snap(20, BIDS, ASKS)) is Verdict.SYNCED
    assert sync.on_update(upd(21)) is Verdict.APPLIED
    assert sync.stats == SyncStats(applied=2, ignored=2, stale=2, snapshots=2, gaps=1)


def test_monotonic_continuity_cannot_see_gaps() -> None:
    sync = BookSync(STREAM_MONO)
    sync.on_snapshot(snap(10, BIDS, ASKS))
    assert sync.on_update(upd(15, [(99.5, 1.0)])) is Verdict.APPLIED
    assert sync.on_update(upd(15)) is Verdict.STALE
    assert sync.on_update(upd(12)) is Verdict.STALE
    assert sync.on_update(upd(1000)) is Verdict.APPLIED
    assert sync.book.seq == 1000 and sync.stats.gaps == 0


def test_none_continuity_applies_everything() -> None:
    sync = BookSync(STREAM_NONE)
    sync.on_snapshot(snap(None, BIDS, ASKS))
    assert sync.on_update(upd(None, [(99.5, 1.0)])) is Verdict.APPLIED
    assert sync.on_update(upd(5, [(99.5, 2.0)])) is Verdict.APPLIED
    assert sync.on_update(upd(3, [(99.5, 3.0)])) is Verdict.APPLIED  # no ids to judge by
    assert sync.book.size_at(BookSide.BID, 99.5) == 3.0
    assert sync.book.seq == 3


def test_updates_without_ids_pass_continuity_checks() -> None:
    sync = BookSync(STREAM_SEQ)
    sync.on_snapshot(snap(10, BIDS, ASKS))
    assert sync.on_update(upd(None, [(99.5, 1.0)])) is Verdict.APPLIED
    assert sync.last == 10  # an update without an id does not move the book's id
    assert sync.on_update(upd(11)) is Verdict.APPLIED


# --- checksums, crossed books, bad data ---------------------------------------------------------


def toy_checksum(book: OrderBook) -> int:
    return zlib.crc32(repr(book.depth(3)).encode())


def checksum_of(bids: Iterable[Lvl], asks: Iterable[Lvl]) -> int:
    book = OrderBook()
    book.apply_snapshot(bids, asks)
    return toy_checksum(book)


CHECKED = SyncRule(SnapshotSource.STREAM, Continuity.SEQUENCE, checksum=toy_checksum)


def test_checksum_ok_and_mismatch() -> None:
    sync = BookSync(CHECKED)
    assert sync.on_snapshot(snap(1, BIDS, ASKS, checksum_of(BIDS, ASKS))) is Verdict.SYNCED
    after = (((100.0, 1.0), (99.0, 3.0)), ASKS)
    assert sync.on_update(upd(2, [(99.0, 3.0)], checksum=checksum_of(*after))) is Verdict.APPLIED
    assert sync.on_update(upd(3, [(98.0, 1.0)])) is Verdict.APPLIED  # no checksum sent: not checked
    assert sync.stats.checksums_ok == 2
    wrong = checksum_of(BIDS, ASKS)
    v = sync.on_update(upd(4, [(97.0, 1.0)], checksum=wrong))
    assert v is Verdict.CHECKSUM and v.gap_reason is GapReason.CHECKSUM
    assert sync.expected == wrong and sync.received != wrong
    assert_broken_and_cleared(sync)
    assert sync.stats == SyncStats(applied=2, snapshots=1, checksums_ok=2, checksum_mismatches=1)


def test_checksum_mismatch_on_the_snapshot() -> None:
    sync = BookSync(CHECKED)
    assert sync.on_snapshot(snap(1, BIDS, ASKS, checksum=12345)) is Verdict.CHECKSUM
    assert_broken_and_cleared(sync)
    assert sync.stats.checksum_mismatches == 1


def test_checksum_is_ignored_without_a_rule_function() -> None:
    sync = BookSync(STREAM_SEQ)
    assert sync.on_snapshot(snap(1, BIDS, ASKS, checksum=12345)) is Verdict.SYNCED
    assert sync.on_update(upd(2, checksum=999)) is Verdict.APPLIED
    assert sync.stats.checksums_ok == 0 and sync.stats.checksum_mismatches == 0


def test_crossed_book() -> None:
    sync = BookSync(STREAM_SEQ)
    sync.on_snapshot(snap(1, BIDS, ASKS))
    v = sync.on_update(upd(2, [(101.0, 1.0)]))  # bid == best ask
    assert v is Verdict.CROSSED and v.gap_reason is GapReason.CROSSED
    assert "crossed book" in sync.detail
    assert_broken_and_cleared(sync)
    assert sync.stats.crossed == 1 and sync.stats.gaps == 0
    # a crossed snapshot is refused too
    assert sync.on_snapshot(snap(5, [(102.0, 1.0)], ASKS)) is Verdict.CROSSED
    assert sync.stats.crossed == 2


def test_crossed_allowed_when_the_rule_says_so() -> None:
    sync = BookSync(attrs.evolve(STREAM_SEQ, check_crossed=False))
    sync.on_snapshot(snap(1, BIDS, ASKS))
    assert sync.on_update(upd(2, [(101.5, 1.0)])) is Verdict.APPLIED
    assert sync.book.crossed() and sync.valid


def test_bad_data() -> None:
    sync = BookSync(STREAM_SEQ)
    sync.on_snapshot(snap(1, BIDS, ASKS))
    v = sync.on_update(upd(2, [(99.0, -1.0)]))
    assert v is Verdict.BAD_DATA and v.gap_reason is GapReason.BAD_DATA
    assert_broken_and_cleared(sync)
    assert (sync.expected, sync.received) == (2, 2)
    assert sync.on_snapshot(snap(3, [(100.0, float("nan"))], ASKS)) is Verdict.BAD_DATA
    assert_broken_and_cleared(sync)
    assert sync.stats == SyncStats(snapshots=2, bad_data=2)


def test_invalidate() -> None:
    sync = BookSync(BINANCE_SPOT)
    sync.on_snapshot(snap(1, BIDS, ASKS))
    sync.on_update(upd(3, first=2))
    sync.invalidate()
    assert_broken_and_cleared(sync)
    assert sync.on_update(upd(5, first=4)) is Verdict.BUFFERED
    assert sync.stats.gaps == 0  # invalidating is the caller's decision, not a counted gap


def test_rule_depth_and_text_configure_the_book() -> None:
    book = OrderBook()
    sync = BookSync(SyncRule(SnapshotSource.STREAM, depth=1, keep_text=True), book)
    assert sync.book is book and book.max_depth == 1 and book.keep_text
    sync.on_snapshot(
        BookSnapshot("v", "A-B", BIDS, ASKS, None, 0, 1, None, (("100.0", "1"), ("99.0", "2")), (("101", "1"),))
    )
    assert book.depth() == (BIDS[:1], ASKS[:1])
    book._check()


def test_verdicts_broken_set() -> None:
    broken = {v for v in Verdict if v.broken}
    assert broken == {Verdict.GAP, Verdict.BRIDGE, Verdict.CHECKSUM, Verdict.CROSSED, Verdict.BAD_DATA}
    for v in broken:
        assert isinstance(v.gap_reason, GapReason)


# --- randomized: a true venue, a perturbed delivery, the machine, and a model -------------------


@attrs.frozen
class TrueEvent:
    index: int  # position in the venue's history (state after it: states[index])
    first: int
    seq: int
    prev: int
    bids: tuple[Lvl, ...]
    asks: tuple[Lvl, ...]


Depth = tuple[tuple[Lvl, ...], tuple[Lvl, ...]]


class Venue:
    """A venue's true history: events and the book after each one.

    Bids live on 90..99 and asks on 101..110, so the true book never crosses.
    """

    def __init__(self, rng: random.Random, contiguous: bool, n: int, max_width: int = 3) -> None:
        bids: dict[float, float] = {float(p): 1.0 for p in range(95, 100)}
        asks: dict[float, float] = {float(p): 1.0 for p in range(101, 106)}
        self.states: list[tuple[dict[float, float], dict[float, float]]] = [(dict(bids), dict(asks))]
        self.events: list[TrueEvent] = []
        last = 1000
        for i in range(1, n + 1):
            width = rng.randrange(1, max_width + 1)
            first = last + 1 if contiguous else last + rng.randrange(1, 4)
            seq = first + width - 1
            eb = self._changes(rng, bids, range(90, 100))
            ea = self._changes(rng, asks, range(101, 111))
            self.events.append(TrueEvent(i, first, seq, last, eb, ea))
            self.states.append((dict(bids), dict(asks)))
            last = seq

    @staticmethod
    def _changes(rng: random.Random, side: dict[float, float], prices: range) -> tuple[Lvl, ...]:
        out = []
        for p in rng.sample(prices, rng.randrange(0, 4)):
            size = 0.0 if rng.random() < 0.35 else float(rng.randrange(1, 9))
            out.append((float(p), size))
            if size:
                side[float(p)] = size
            else:
                side.pop(float(p), None)
        return tuple(out)

    def depth(self, index: int) -> Depth:
        bids, asks = self.states[index]
        return tuple(sorted(bids.items(), reverse=True)), tuple(sorted(asks.items()))

    def seq_of(self, index: int) -> int:
        return self.events[index - 1].seq if index else 1000


def update_of(e: TrueEvent, continuity: Continuity) -> BookUpdate:
    if continuity is Continuity.SEQUENCE:
        return upd(e.seq, e.bids, e.asks)
    if continuity is Continuity.PREV_ID:
        return upd(e.seq, e.bids, e.asks, first=e.first, prev=e.prev)
    return upd(e.seq, e.bids, e.asks, first=e.first)


def perturb(rng: random.Random, events: list[TrueEvent]) -> list[TrueEvent]:
    """Deliver the events with duplicates, adjacent swaps and losses."""
    out: list[TrueEvent] = []
    i = 0
    while i < len(events):
        r = rng.random()
        if r < 0.04 and i + 1 < len(events):  # reorder
            out += [events[i + 1], events[i]]
            i += 2
            continue
        if r < 0.07:  # lost
            i += 1
            continue
        out.append(events[i])
        if r < 0.12 and out:  # duplicate of a recent event
            out.append(rng.choice(events[max(0, i - 3) : i + 1]))
        i += 1
    return out


RULES = {
    "spot": (BINANCE_SPOT, True),
    "futures": (BINANCE_FUTURES, False),
    "sequence": (STREAM_SEQ, True),
}


def run_random_stream(rng: random.Random, kind: str, n: int = 150) -> dict[Verdict, int]:
    rule, contiguous = RULES[kind]
    # a SEQUENCE venue numbers every message: one id per update
    venue = Venue(rng, contiguous, n, max_width=1 if rule.continuity is Continuity.SEQUENCE else 3)
    sync = BookSync(rule)
    book = sync.book
    counts: dict[Verdict, int] = {}
    at: int | None = None  # index of the true state the valid book is at
    bridging = False
    newest = 0  # newest true event the venue has published

    def check() -> None:
        book._check()
        if sync.valid:
            assert book.valid and at is not None
            assert book.depth() == venue.depth(at), f"valid book differs from the venue at {at}"
            assert sync.last == venue.seq_of(at)
        else:
            assert not book.valid and len(book) == 0

    def apply_snapshot() -> None:
        nonlocal at, bridging
        # REST: the venue's state now, or a little older (a slow response)
        index = newest if rule.snapshot is SnapshotSource.STREAM else max(0, newest - rng.randrange(0, 3))
        bids, asks = venue.depth(index)
        verdict = sync.on_snapshot(snap(venue.seq_of(index), bids, asks))
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict is Verdict.SYNCED:
            # replayed buffered updates moved the book along the true history
            at = next(i for i in range(len(venue.states)) if venue.seq_of(i) == sync.last)
            bridging = book.seq == venue.seq_of(index) and rule.snapshot is SnapshotSource.REST
        else:
            assert verdict is Verdict.REFETCH or verdict.broken, verdict
            at = None
        check()

    for e in perturb(rng, venue.events):
        newest = max(newest, e.index)
        last_before = sync.last
        was_valid = sync.valid
        verdict = sync.on_update(update_of(e, rule.continuity))
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict is Verdict.APPLIED:
            assert was_valid and at is not None and last_before is not None
            # continuity: the update is the next true event (or, bridging with
            # offset 0, the event the snapshot sits at, re-applied)
            allowed = {at + 1} | ({at} if bridging and rule.bridge_offset == 0 else set())
            assert e.index in allowed, f"APPLIED event {e.index} after state {at}"
            at = e.index
            bridging = False
        elif verdict.broken:
            assert was_valid
            at = None
        elif verdict is Verdict.STALE:
            assert was_valid and at is not None
            assert e.index <= at, f"event {e.index} called stale at state {at}"
        else:
            assert verdict in (Verdict.BUFFERED, Verdict.IGNORED) and not was_valid
        check()
        if not sync.valid and rng.random() < 0.3:
            apply_snapshot()
    return counts


@pytest.mark.parametrize("kind", sorted(RULES))
@pytest.mark.parametrize("seed", range(30))
def test_random_stream_never_applies_a_broken_update(kind: str, seed: int) -> None:
    run_random_stream(random.Random(seed), kind)


@pytest.mark.parametrize("kind", sorted(RULES))
def test_random_streams_exercise_every_path(kind: str) -> None:
    total: dict[Verdict, int] = {}
    for seed in range(30):
        for v, n in run_random_stream(random.Random(seed), kind).items():
            total[v] = total.get(v, 0) + n
    assert total.get(Verdict.APPLIED, 0) > 500
    assert total.get(Verdict.SYNCED, 0) > 20
    assert total.get(Verdict.STALE, 0) > 20
    assert total.get(Verdict.GAP, 0) + total.get(Verdict.BRIDGE, 0) > 20
    if kind != "sequence":
        assert total.get(Verdict.BUFFERED, 0) > 100
        assert total.get(Verdict.REFETCH, 0) > 0
    else:
        assert total.get(Verdict.IGNORED, 0) > 20


@settings(max_examples=100, deadline=None)
@given(rng=st.randoms(use_true_random=False), kind=st.sampled_from(sorted(RULES)))
def test_random_stream_hypothesis(rng: random.Random, kind: str) -> None:
    run_random_stream(rng, kind, n=60)
