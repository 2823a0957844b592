"""Resync without stalling: snapshots built beside the live book in bounded
steps (OrderBook.start_build / SnapshotBuild, BookSync.begin_snapshot /
finish_snapshot, Feed.snapshot_body_steps), abandoned when overtaken, with
every level check of the one-shot path."""

from __future__ import annotations

import asyncio
import json
import math
import random
from typing import Any

import attrs
import pytest

from wsmux import book as book_sub
from wsmux._pipeline import BuildSnapshot, Feed, FetchSnapshot, Send
from wsmux.book import (
    BookSync,
    Continuity,
    OrderBook,
    SnapshotSource,
    SyncRule,
    SyncState,
    Verdict,
)
from wsmux.book._orderbook import MAX_VALUE
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.model import BookSide, BookSnapshot, BookUpdate, Channel, Error, Gap, GapReason, Resynced
from wsmux.multiplexer import Multiplexer
from wsmux.subscriptions import Subscription
from wsmux.testing import MockBinance, collect_until

Lvl = tuple[float, float]

SPOT = SyncRule(SnapshotSource.REST, Continuity.UPDATE_ID, bridge_offset=1)
STREAM_TEXT = SyncRule(SnapshotSource.STREAM, Continuity.SEQUENCE, keep_text=True)


def snap(seq: int, bids: Any, asks: Any) -> BookSnapshot:
    return BookSnapshot("v", "A-B", tuple(bids), tuple(asks), seq, 0, seq)


def upd(seq: int, bids: Any = (), asks: Any = (), first: int | None = None) -> BookUpdate:
    return BookUpdate("v", "A-B", tuple(bids), tuple(asks), seq, 0, seq, first)


def ladder(n: int, top: float = 1000.0) -> tuple[tuple[Lvl, ...], tuple[Lvl, ...]]:
    bids = tuple((top - i, 1.0 + i % 7) for i in range(n))
    asks = tuple((top + 1 + i, 2.0 + i % 5) for i in range(n))
    return bids, asks


def run_steps(job: Any) -> int:
    steps = 1
    while not job.step():
        steps += 1
    return steps


# --- SnapshotBuild: the same book as level-by-level application ---------------------------


def one_by_one(bids: Any, asks: Any) -> OrderBook:
    """The reference: an empty book with every level applied in order."""
    ref = OrderBook()
    for price, size in bids:
        assert ref.apply([(price, size)], ()) is not None
    for price, size in asks:
        assert ref.apply((), [(price, size)]) is not None
    return ref


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("step_levels", [1, 3, 64, 2000])
def test_stepwise_build_equals_applying_levels_in_order(seed: int, step_levels: int) -> None:
    rng = random.Random(seed)
    # duplicates (the later wins), zero sizes (delete an earlier level), any order
    bids = [(float(rng.randint(1, 60)), rng.choice([0.0, 0.5, 1.0, 2.25])) for _ in range(rng.randint(0, 150))]
    asks = [(float(rng.randint(61, 120)), rng.choice([0.0, 0.5, 1.0, 3.5])) for _ in range(rng.randint(0, 150))]
    book = OrderBook()
    build = book.start_build(bids, asks, step_levels=step_levels)
    steps = run_steps(build)
    assert build.ok
    assert steps >= len(bids) // step_levels  # bounded steps, not one
    assert book.install(build)
    book._check()
    assert book.depth() == one_by_one(bids, asks).depth()


class CountedLevel(tuple):  # type: ignore[type-arg]
    """A level that counts how often its price or size is read."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        CountedLevel.reads += 1
        return super().__getitem__(index)


@pytest.mark.parametrize(("levels", "step_levels"), [(1000, 300), (950, 1000), (2500, 2000)])
def test_no_step_handles_more_than_step_levels(levels: int, step_levels: int) -> None:
    bids, asks = ladder(levels)
    build = OrderBook().start_build(
        [CountedLevel(b) for b in bids], [CountedLevel(a) for a in asks], step_levels=step_levels
    )
    per_step = []
    done = False
    while not done:
        CountedLevel.reads = 0
        done = build.step()
        per_step.append(CountedLevel.reads // 2)  # a price and a size per level
    assert sum(per_step) == 2 * levels
    assert max(per_step) == step_levels  # never more, and full steps until the last
    assert len(per_step) == -(-2 * levels // step_levels) + (2 * levels % step_levels == 0)


def test_a_small_snapshot_is_one_step() -> None:
    build = OrderBook().start_build(*ladder(400), step_levels=1000)
    assert build.step() and build.done and build.ok


def test_the_live_book_is_untouched_until_install() -> None:
    book = OrderBook()
    assert book.apply_snapshot(*ladder(3))
    before = book.depth()
    build = book.start_build(*ladder(500, top=2000.0), step_levels=100)
    for _ in range(4):
        assert not build.step()
        assert book.depth() == before
    assert book.install(build)
    book._check()
    assert book.best_bid() == (2000.0, 1.0) and len(book) == 1000


def test_install_finishes_an_unfinished_build() -> None:
    book = OrderBook()
    build = book.start_build(*ladder(50), step_levels=10)
    assert not build.step()
    assert book.install(build) and build.done
    assert len(book) == 100
    book._check()


def test_text_books_keep_the_text_of_the_surviving_levels() -> None:
    book = OrderBook(keep_text=True)
    bids = [["100.0", "1"], ["99.50", "2"], ["100.00", "3"], ["98", "1"], ["98.0", "0"]]
    asks = [["101", "1"], ["102", "0.5"]]
    assert book.install(book.start_build(bids, asks, step_levels=2))
    book._check()  # text in step with the levels
    assert book.depth() == (((100.0, 3.0), (99.5, 2.0)), ((101.0, 1.0), (102.0, 0.5)))
    assert book.text_depth(BookSide.BID, 5) == [("100.00", "3"), ("99.50", "2")]


def test_kept_text_is_keyed_by_the_book_s_own_price_objects() -> None:
    """One float object per price, shared by the size and the text dicts (a
    second one per level would cost 24 bytes a level)."""
    book = OrderBook(keep_text=True)
    levels = [[f"{100 - i * 0.5}", "1.5"] for i in range(50)]
    assert book.install(book.start_build(levels, [["200", "1"]], step_levels=7))
    book._check()
    assert {id(p) for p in book._bids} == {id(p) for p in book._bids_text}
    floats = ((100.0, 1.0), (99.0, 2.0))
    assert book.apply_snapshot(floats, (), (("100.0", "1"), ("99", "2")), ())
    assert {id(p) for p in book._bids} == {id(p) for p in book._bids_text}


def test_text_given_beside_float_levels() -> None:
    book = OrderBook(keep_text=True)
    bids = ((100.0, 1.0), (99.0, 0.0))
    asks = ((101.0, 1.0),)
    assert book.install(book.start_build(bids, asks, (("100.0", "1"), ("99", "0")), (("101.0", "1.0"),), step_levels=1))
    book._check()
    assert book._bids_text == {100.0: ("100.0", "1")}


BAD_LEVELS = [
    (math.nan, 1.0),
    (100.0, math.nan),
    (math.inf, 1.0),
    (100.0, math.inf),
    (-math.inf, 1.0),
    (0.0, 1.0),
    (-0.0, 1.0),
    (-5.0, 1.0),
    (100.0, -1.0),
    (MAX_VALUE, 1.0),
    (100.0, MAX_VALUE),
    (-5.0, 0.0),  # deleted, but still a bad price
    (MAX_VALUE, 0.0),
]


@pytest.mark.parametrize("bad", BAD_LEVELS, ids=repr)
@pytest.mark.parametrize("step_levels", [1, 4, 2000])
@pytest.mark.parametrize("side", ["bids", "asks"])
def test_a_bad_level_anywhere_fails_the_build(bad: Lvl, step_levels: int, side: str) -> None:
    bids, asks = (list(s) for s in ladder(10))
    target = bids if side == "bids" else asks
    target.insert(7, bad)  # past the first chunk for the small steps
    book = OrderBook()
    assert book.apply_snapshot(*ladder(2))
    build = book.start_build(bids, asks, step_levels=step_levels)
    build.finish()
    assert not build.ok
    assert book.install(build) is False
    assert len(book) == 0
    # the one-shot path says the same
    assert OrderBook().apply_snapshot(bids, asks) is False


@pytest.mark.parametrize("step_levels", [1, 2000])
def test_a_level_that_is_not_a_number_raises(step_levels: int) -> None:
    build = OrderBook().start_build([["1", "1"], ["x", "1"]], [], step_levels=step_levels)
    with pytest.raises(ValueError):
        build.finish()


# --- BookSync: WAITING while building, diffs buffered and bridged -------------------------


def test_diffs_arriving_mid_build_are_buffered_then_bridged() -> None:
    sync = BookSync(SPOT)
    assert sync.on_update(upd(105, [(1.0, 9.0)], first=100)) is Verdict.BUFFERED
    bids, asks = ladder(100)
    job = sync.begin_snapshot(snap(106, bids, asks), step_levels=10)
    seq = 106
    while not job.step():
        # the venue keeps sending while the build runs: the book waits and buffers
        seq += 1
        assert sync.on_update(upd(seq, [(1000.0, float(seq))], first=seq)) is Verdict.BUFFERED
        assert sync.state is SyncState.WAITING and not sync.book.valid and len(sync.book) == 0
    assert seq > 110
    assert sync.finish_snapshot(job) is Verdict.SYNCED
    book = sync.book
    book._check()
    assert sync.valid and book.seq == seq and sync.last == seq
    assert book.best_bid() == (1000.0, float(seq))  # the last diff replayed over the snapshot
    assert book.size_at(BookSide.BID, 1.0) == 0.0  # the stale diff [100, 105] was dropped
    assert len(book) == 200
    assert sync.on_update(upd(seq + 1, [(999.0, 7.0)], first=seq + 1)) is Verdict.APPLIED


def test_a_diff_that_does_not_bridge_after_the_build_asks_for_another_snapshot() -> None:
    sync = BookSync(SPOT)
    job = sync.begin_snapshot(snap(106, *ladder(50)), step_levels=10)
    job.step()
    sync.on_update(upd(120, first=115))  # the buffer now starts after 107: the snapshot is too old
    run_steps(job)
    assert sync.finish_snapshot(job) is Verdict.REFETCH
    assert not sync.valid and len(sync.book) == 0


def test_invalidate_mid_build_abandons_it() -> None:
    sync = BookSync(SPOT)
    job = sync.begin_snapshot(snap(106, *ladder(50)), step_levels=10)
    job.step()
    sync.invalidate()  # a disconnect
    run_steps(job)
    assert not sync.current(job)
    assert sync.finish_snapshot(job) is Verdict.SUPERSEDED
    assert sync.state is SyncState.WAITING and not sync.book.valid and len(sync.book) == 0
    assert sync.stats.snapshots == 0


def test_another_snapshot_mid_build_wins() -> None:
    sync = BookSync(SyncRule(SnapshotSource.STREAM, Continuity.SEQUENCE))
    old = sync.begin_snapshot(snap(5, *ladder(50)), step_levels=10)
    old.step()
    assert sync.on_snapshot(snap(9, ((10.0, 1.0),), ((11.0, 1.0),))) is Verdict.SYNCED
    run_steps(old)
    assert sync.finish_snapshot(old) is Verdict.SUPERSEDED
    assert sync.valid and sync.last == 9 and sync.book.depth() == (((10.0, 1.0),), ((11.0, 1.0),))


def test_a_book_broken_mid_build_abandons_it() -> None:
    sync = BookSync(SyncRule(SnapshotSource.STREAM, Continuity.SEQUENCE))
    assert sync.on_snapshot(snap(1, ((10.0, 1.0),), ((11.0, 1.0),))) is Verdict.SYNCED
    job = sync.begin_snapshot(snap(5, *ladder(50)), step_levels=10)
    job.step()
    assert sync.on_update(upd(3)) is Verdict.GAP
    run_steps(job)
    assert sync.finish_snapshot(job) is Verdict.SUPERSEDED
    assert not sync.valid and len(sync.book) == 0


@pytest.mark.parametrize("bad", BAD_LEVELS[:6], ids=repr)
def test_bad_levels_fail_the_stepwise_snapshot_as_the_one_shot_one(bad: Lvl) -> None:
    bids, asks = (list(s) for s in ladder(30))
    asks.insert(25, bad)
    stepwise = BookSync(SPOT)
    job = stepwise.begin_snapshot(snap(10, bids, asks), step_levels=4)
    run_steps(job)
    at_once = BookSync(SPOT)
    assert stepwise.finish_snapshot(job) is Verdict.BAD_DATA
    assert at_once.on_snapshot(snap(10, bids, asks)) is Verdict.BAD_DATA
    for sync in (stepwise, at_once):
        assert not sync.valid and len(sync.book) == 0 and sync.stats.bad_data == 1


def test_text_snapshot_stepwise_keeps_the_check_invariant() -> None:
    sync = BookSync(STREAM_TEXT)
    bids = [[f"{100 - i}.0", "1.5"] for i in range(40)]
    asks = [[f"{101 + i}.00", "2"] for i in range(40)]
    text_snap = BookSnapshot(
        "v", "A-B", tuple((float(p), float(s)) for p, s in bids),
        tuple((float(p), float(s)) for p, s in asks), 1, 0, 1, None, tuple(map(tuple, bids)), tuple(map(tuple, asks)),
    )  # fmt: skip
    job = sync.begin_snapshot(text_snap, step_levels=7)
    assert run_steps(job) > 4
    assert sync.finish_snapshot(job) is Verdict.SYNCED
    sync.book._check()
    assert sync.book.text_depth(BookSide.BID, 1) == [("100.0", "1.5")]


# --- Feed.snapshot_body_steps: the REST path the connection drives ------------------------


def body_of(levels: int, last_id: int) -> bytes:
    bids = [[f"{30000 - i * 0.01:.2f}", "1.5"] for i in range(levels)]
    asks = [[f"{30000.01 + i * 0.01:.2f}", "2.5"] for i in range(levels)]
    return json.dumps({"lastUpdateId": last_id, "bids": bids, "asks": asks}).encode()


def diff(u: int, bid: str = "29999.99", size: str = "7") -> str:
    return (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT",'
        f'"U":{u},"u":{u},"b":[["{bid}","{size}"]],"a":[]}}}}'
    )


def binance_feed() -> tuple[Feed, list[Any], str]:
    adapter = BinanceSpotAdapter()
    sub = book_sub("binance", "BTC-USDT")[0]
    adapter.connect_url([sub])
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    feed.add_book(sub)
    for u in range(995, 1003):
        feed.on_frame(diff(u), 1)
    fetches = [a for a in feed.take_actions() if isinstance(a, FetchSnapshot)]
    assert len(fetches) == 1
    return feed, events, fetches[0].symbol


def test_feed_steps_a_deep_snapshot_and_bridges_the_diffs_that_came_meanwhile() -> None:
    feed, events, symbol = binance_feed()
    steps = feed.snapshot_body_steps(symbol, body_of(5000, 1000), 2)
    count = 0
    u = 1003
    for _ in steps:
        count += 1
        # frames of the connection go through between steps: buffered, no second fetch
        feed.on_frame(diff(u, size=str(u)), 3)
        u += 1
        assert not feed.syncs[symbol].valid
        assert not [a for a in feed.take_actions() if isinstance(a, FetchSnapshot)]
    assert count >= 5  # 10,000 levels in steps of SNAPSHOT_STEP_LEVELS
    sync = feed.syncs[symbol]
    assert sync.valid and sync.last == u - 1
    sync.book._check()
    assert sync.book.best_bid() == (30000.0, 1.5) and sync.book.size_at(BookSide.BID, 29999.99) == float(u - 1)
    kinds = [type(e) for e in events]
    assert kinds == [BookSnapshot, Resynced]
    assert events[0].seq == u - 1 and len(events[0].bids) == 5000
    # live diffs continue from the replayed ones
    feed.on_frame(diff(u), 4)
    assert type(events[-1]) is BookUpdate and events[-1].seq == u


def test_feed_disconnect_mid_build_abandons_the_snapshot() -> None:
    feed, events, symbol = binance_feed()
    steps = feed.snapshot_body_steps(symbol, body_of(3000, 1000), 2)
    next(steps)
    next(steps)
    feed.on_disconnect(3)
    for _ in steps:
        pass
    assert not feed.syncs[symbol].valid and len(feed.syncs[symbol].book) == 0
    assert not [e for e in events if isinstance(e, BookSnapshot | Resynced)]
    # the next diff after the reconnect asks for a new snapshot
    feed.on_frame(diff(1200), 4)
    assert [a for a in feed.take_actions() if isinstance(a, FetchSnapshot)]


def test_feed_unsubscribe_and_resubscribe_mid_build_never_applies_the_old_body() -> None:
    feed, events, symbol = binance_feed()
    steps = feed.snapshot_body_steps(symbol, body_of(3000, 1000), 2)
    next(steps)
    sub = feed.book_subs[symbol]
    feed.remove_book(symbol)
    new_book = feed.add_book(sub)
    for _ in steps:
        pass
    assert not feed.syncs[symbol].valid and len(new_book) == 0
    assert not [e for e in events if isinstance(e, BookSnapshot | Resynced)]


def test_feed_closing_the_steps_early_lets_the_next_diff_fetch_again() -> None:
    feed, _events, symbol = binance_feed()
    steps = feed.snapshot_body_steps(symbol, body_of(3000, 1000), 2)
    next(steps)
    feed.on_frame(diff(1003), 3)
    assert not [a for a in feed.take_actions() if isinstance(a, FetchSnapshot)]  # one is being built
    steps.close()  # the connection's task was cancelled
    assert not feed.syncs[symbol].valid
    feed.on_frame(diff(1004), 3)
    assert [a for a in feed.take_actions() if isinstance(a, FetchSnapshot)]


def test_feed_a_bad_level_in_a_deep_snapshot_is_a_gap_as_before() -> None:
    feed, events, symbol = binance_feed()
    body = json.loads(body_of(3000, 1000))
    body["asks"][2500][1] = "-1"
    for _ in feed.snapshot_body_steps(symbol, json.dumps(body).encode(), 2):
        pass
    gaps = [e for e in events if isinstance(e, Gap)]
    assert len(gaps) == 1 and gaps[0].detail == "snapshot has a level with a bad price or size"
    assert not feed.syncs[symbol].valid


def test_feed_a_malformed_body_is_a_snapshot_error_as_before() -> None:
    feed, events, symbol = binance_feed()
    for _ in feed.snapshot_body_steps(symbol, b'{"lastUpdateId": 1000, "bids": [["x", "1"]], "asks": []}', 2):
        pass
    assert [type(e) for e in events] == [Error]
    assert feed.stats.snapshot_failures == 1 and not feed.syncs[symbol].valid


# --- the connection: the loop runs between steps -------------------------------------------


def spy_on_steps(monkeypatch: pytest.MonkeyPatch, method: str) -> list[bool]:
    """Wrap the Feed's step generator ``method``: each step ends with a
    callback scheduled on the loop; the returned list says, per step after
    the first, whether it had run by the time the next step started (a
    connection that drove the steps without yielding would run it only after
    the last one)."""
    original = getattr(Feed, method)
    interleaved: list[bool] = []

    def spied(self: Feed, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        ran: list[int] = []
        for index, _ in enumerate(original(self, *args, **kwargs)):
            loop.call_soon(ran.append, index)
            yield
            interleaved.append(ran[-1:] == [index])

    monkeypatch.setattr(Feed, method, spied)
    return interleaved


async def test_the_connection_lets_the_loop_run_between_snapshot_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step ends with a callback scheduled on the loop; it must have run
    by the time the next step starts (a connection that drove the steps
    without yielding would run it only after the last one)."""
    interleaved = spy_on_steps(monkeypatch, "snapshot_body_steps")
    async with (
        MockBinance(["BTC-USDT"], levels=5000) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}) as mux,
    ):
        stream = mux.subscribe(*book_sub("binance", "BTC-USDT", depth=5000))  # a 5,000-level REST snapshot
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        view = mux.book("binance", "BTC-USDT")
        assert view.valid and view.depth() == mock.markets["BTC-USDT"].depth()
        await stream.aclose()
    assert len(interleaved) >= 3 and all(interleaved)


# --- stream snapshots: diffs held while a deep one is built, then replayed ------------------

STREAM_PREV = SyncRule(SnapshotSource.STREAM, Continuity.PREV_ID)
STREAM_NONE = SyncRule(SnapshotSource.STREAM, Continuity.NONE)


def chained(seq: int, bids: Any = (), asks: Any = ()) -> BookUpdate:
    return BookUpdate("v", "A-B", tuple(bids), tuple(asks), seq, 0, seq, None, seq - 1)


def test_diffs_after_a_stream_snapshot_being_built_are_held_then_replayed() -> None:
    sync = BookSync(STREAM_PREV)
    assert sync.on_update(chained(4, [(1.0, 1.0)])) is Verdict.IGNORED  # before the snapshot: not ours
    job = sync.begin_snapshot(snap(10, *ladder(100)), step_levels=10)
    seq = 10
    while not job.step():
        seq += 1  # the stream goes on while the build runs
        assert sync.on_update(chained(seq, [(1000.0, float(seq))])) is Verdict.BUFFERED
        assert not sync.valid and len(sync.book) == 0
    assert seq > 15
    assert sync.finish_snapshot(job) is Verdict.SYNCED
    book = sync.book
    book._check()
    assert sync.last == book.seq == seq and book.best_bid() == (1000.0, float(seq))
    assert book.size_at(BookSide.BID, 1.0) == 0.0 and len(book) == 200
    assert sync.on_update(chained(seq + 1, [(999.0, 3.0)])) is Verdict.APPLIED


def test_a_hole_among_the_held_diffs_breaks_the_book_on_replay() -> None:
    sync = BookSync(STREAM_PREV)
    job = sync.begin_snapshot(snap(10, *ladder(50)), step_levels=10)
    job.step()
    assert sync.on_update(chained(11)) is Verdict.BUFFERED
    assert sync.on_update(chained(13)) is Verdict.BUFFERED  # 12 never came
    run_steps(job)
    assert sync.finish_snapshot(job) is Verdict.GAP
    assert not sync.valid and len(sync.book) == 0 and (sync.expected, sync.received) == (11, 12)


def test_more_held_diffs_than_the_buffer_holds_supersede_the_build() -> None:
    """A dropped diff cannot be bridged on a stream: the build is given up
    and the book is broken (a Gap, then a resubscribe), never replayed with a hole."""
    sync = BookSync(attrs.evolve(STREAM_NONE, max_buffer=3))
    job = sync.begin_snapshot(snap(10, *ladder(50)), step_levels=10)
    for seq in (11, 12, 13):
        assert sync.on_update(chained(seq)) is Verdict.BUFFERED
    assert sync.on_update(chained(14)) is Verdict.GAP
    assert sync.stats.buffer_overflow == 1 and "snapshot was being built" in sync.detail
    run_steps(job)
    assert sync.finish_snapshot(job) is Verdict.SUPERSEDED
    assert not sync.valid and len(sync.book) == 0
    assert sync.on_update(chained(15)) is Verdict.IGNORED  # waits for the next snapshot


def test_a_newer_stream_snapshot_drops_the_diffs_held_for_the_older() -> None:
    sync = BookSync(STREAM_NONE)  # no ids: a held diff would be applied on top of anything
    old = sync.begin_snapshot(snap(5, *ladder(50)), step_levels=10)
    assert sync.on_update(upd(6, [(1.0, 9.0)])) is Verdict.BUFFERED
    new = sync.begin_snapshot(snap(20, ((10.0, 1.0),), ((11.0, 1.0),)))
    assert sync.finish_snapshot(new) is Verdict.SYNCED
    assert sync.finish_snapshot(old) is Verdict.SUPERSEDED
    assert sync.book.depth() == (((10.0, 1.0),), ((11.0, 1.0),))


def test_a_stream_snapshot_at_once_holds_nothing_afterwards() -> None:
    sync = BookSync(STREAM_PREV)
    assert sync.on_snapshot(snap(10, *ladder(5))) is Verdict.SYNCED
    sync.invalidate()
    assert sync.on_update(chained(11)) is Verdict.IGNORED  # waiting for a snapshot again, holding nothing


# --- Feed.step_snapshots: a deep stream snapshot leaves on_frame as a BuildSnapshot ------------


def deribit_frame(
    kind: str, bids: Any, asks: Any, change_id: int, prev: int | None = None, instrument: str = "BTC-PERPETUAL"
) -> str:
    data: dict[str, Any] = {
        "type": kind, "timestamp": 1700000000000, "instrument_name": instrument,
        "change_id": change_id, "bids": bids, "asks": asks,
    }  # fmt: skip
    if prev is not None:
        data["prev_change_id"] = prev
    return json.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": f"book.{instrument}.100ms", "data": data}}
    )


def deribit_snapshot(levels: int, change_id: int = 10, instrument: str = "BTC-PERPETUAL") -> str:
    bids = [["new", 30000.0 - i * 0.5, 10.0 + i % 7] for i in range(levels)]
    asks = [["new", 30000.5 + i * 0.5, 20.0 + i % 5] for i in range(levels)]
    return deribit_frame("snapshot", bids, asks, change_id, instrument=instrument)


def deribit_feed(step: bool, symbols: tuple[str, ...] = ("BTC-USD-PERP",)) -> tuple[Feed, list[Any]]:
    from wsmux.exchanges.deribit import DeribitAdapter

    adapter = DeribitAdapter()
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    feed.step_snapshots = step
    subs = [Subscription("deribit", Channel.BOOK, symbol) for symbol in symbols]
    for sub in subs:
        feed.add_book(sub)
    adapter.subscribe(subs)
    return feed, events


def deribit_session() -> list[str]:
    frames = [deribit_snapshot(1500)]
    for cid in range(11, 40):  # changes at the top and deeper, a delete now and then
        price = 30000.0 - (cid % 9) * 0.5
        level = ["delete", price, 0.0] if cid % 4 == 0 else ["change", price, float(cid)]
        frames.append(deribit_frame("change", [level], [], cid, cid - 1))
    return frames


def test_feed_builds_a_deep_stream_snapshot_in_steps_with_the_same_result() -> None:
    at_once, _ = deribit_feed(step=False)
    stepped, events_stepped = deribit_feed(step=True)
    frames = deribit_session()
    for frame in frames:
        at_once.on_frame(frame, 1)
    assert at_once.take_actions() == []
    stepped.on_frame(frames[0], 1)
    (action,) = stepped.take_actions()
    assert isinstance(action, BuildSnapshot) and action.symbol == "BTC-USD-PERP"
    assert events_stepped == [] and not stepped.syncs["BTC-USD-PERP"].valid  # begun, not built
    steps = 0
    for frame in frames[1:]:  # the stream goes on between the steps: its diffs are held
        stepped.on_frame(frame, 1)
        if next(action.steps, "done") == "done":
            break
        steps += 1
    else:
        for _ in action.steps:
            steps += 1
    assert steps >= 1  # 3,000 levels: more than one step
    for frame in frames[1 + steps + 1 :]:
        stepped.on_frame(frame, 1)
    assert stepped.take_actions() == []
    book_once, book_stepped = at_once.book("BTC-USD-PERP"), stepped.book("BTC-USD-PERP")
    assert book_once is not None and book_stepped is not None
    book_stepped._check()
    assert book_stepped.valid and book_stepped.seq == book_once.seq == 39
    assert book_stepped.depth() == book_once.depth()
    kinds = [type(e) for e in events_stepped]
    assert kinds[:2] == [BookSnapshot, Resynced] and Gap not in kinds and Error not in kinds


def test_feed_a_small_or_synced_stream_snapshot_is_applied_at_once() -> None:
    feed, events = deribit_feed(step=True)
    feed.on_frame(deribit_snapshot(900), 1)  # 1,800 levels: one step's worth
    assert feed.take_actions() == [] and feed.syncs["BTC-USD-PERP"].valid
    feed.on_frame(deribit_snapshot(1500, change_id=50), 1)  # a valid book: replaced at once
    assert feed.take_actions() == [] and feed.syncs["BTC-USD-PERP"].last == 50
    assert [type(e) for e in events] == [BookSnapshot, Resynced, BookSnapshot, Resynced]


def test_feed_disconnect_mid_stream_build_abandons_it() -> None:
    feed, events = deribit_feed(step=True)
    feed.on_frame(deribit_snapshot(1500), 1)
    (action,) = feed.take_actions()
    next(action.steps)
    feed.on_disconnect(2)
    assert list(action.steps) == []  # the next step sees the build was overtaken
    assert not feed.syncs["BTC-USD-PERP"].valid and len(feed.syncs["BTC-USD-PERP"].book) == 0
    assert events == [] and feed.take_actions() == []


def test_feed_a_bad_level_in_a_deep_stream_snapshot_is_reported_as_at_once() -> None:
    frame = deribit_snapshot(1500).replace('["new", 30000.0, 10.0]', '["new", 30000.0, -3.0]')
    assert frame != deribit_snapshot(1500)
    reports = []
    for step in (False, True):
        feed, events = deribit_feed(step)
        feed.on_frame(frame, 1)
        for action in feed.take_actions():
            if isinstance(action, BuildSnapshot):
                for _ in action.steps:
                    pass
        reports.append(([type(e) for e in events], [getattr(e, "reason", None) for e in events]))
        assert not feed.syncs["BTC-USD-PERP"].valid
    assert reports[0] == reports[1] and reports[1][0] == [Gap]


def test_feed_a_hole_in_the_held_diffs_is_a_gap_and_a_resubscribe() -> None:
    feed, events = deribit_feed(step=True)
    feed.on_frame(deribit_snapshot(1500), 1)
    (action,) = feed.take_actions()
    feed.on_frame(deribit_frame("change", [["change", 30000.0, 1.0]], [], 11, 10), 1)
    feed.on_frame(deribit_frame("change", [["change", 30000.0, 2.0]], [], 13, 12), 1)  # 12 is missing
    for _ in action.steps:
        pass
    assert [type(e) for e in events] == [Gap] and events[0].reason is GapReason.SEQUENCE
    (resubscribe,) = feed.take_actions()
    assert isinstance(resubscribe, Send)
    assert not feed.syncs["BTC-USD-PERP"].valid


async def test_the_connection_lets_the_loop_run_between_stream_snapshot_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As for REST snapshots: a callback scheduled at the end of a step has
    run by the time the next step starts."""
    from wsmux.testing import MockDeribit

    interleaved = spy_on_steps(monkeypatch, "_build_steps")
    async with (
        MockDeribit(["BTC-USD-PERP"], levels=3000) as mock,
        Multiplexer(endpoints={"deribit": mock.endpoint}) as mux,
    ):
        stream = mux.subscribe(*book_sub("deribit", "BTC-USD-PERP"))  # a 3,000-level stream snapshot
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        view = mux.book("deribit", "BTC-USD-PERP")
        assert view.valid and len(view.depth()[0]) > 2000
        await stream.aclose()
    assert len(interleaved) >= 2 and all(interleaved)
