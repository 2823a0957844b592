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

import pytest

from wsmux import book as book_sub
from wsmux._pipeline import Feed, FetchSnapshot
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
from wsmux.model import BookSide, BookSnapshot, BookUpdate, Error, Gap, Resynced
from wsmux.multiplexer import Multiplexer
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


async def test_the_connection_lets_the_loop_run_between_snapshot_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step ends with a callback scheduled on the loop; it must have run
    by the time the next step starts (a connection that drove the steps
    without yielding would run it only after the last one)."""
    original = Feed.snapshot_body_steps
    interleaved: list[bool] = []

    def spied(self: Feed, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        ran: list[int] = []
        for index, _ in enumerate(original(self, *args, **kwargs)):
            loop.call_soon(ran.append, index)
            yield
            interleaved.append(ran[-1:] == [index])

    monkeypatch.setattr(Feed, "snapshot_body_steps", spied)
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
