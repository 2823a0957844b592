"""A deep BitMEX ``orderBookL2`` partial read in steps on a live Feed
(``Adapter.defer_snapshot_rows``, ``RawSnapshot.prepare``): the frames that
follow it are held until its rows are read, and everything comes out as
when the partial is read inside ``parse``: the same book, the same trades and
book updates, the same report of a bad row. Nothing held is lost on a
disconnect, when the steps are closed early, or past the hold's bound."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from test_book_resync import spy_on_steps

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Disconnected,
    Error,
    ErrorKind,
    Multiplexer,
    Resynced,
    Subscription,
    Trade,
)
from wsmux import book as book_sub
from wsmux._pipeline import BuildSnapshot, Feed
from wsmux.connection import Connection
from wsmux.exchanges.bitmex import PARTIAL_STEP_ROWS, BitmexAdapter
from wsmux.testing import MockBitmex, collect_until

RECV = 1_700_000_000_000_000_000
NATIVE = "SOLUSDT"
SYMBOL = "SOL-USDT-PERP"
LEVELS = 2600  # a side: 5,200 rows, three steps of PARTIAL_STEP_ROWS


def frame(table: str, action: str, data: list[Any], **extra: Any) -> str:
    return json.dumps({"table": table, "action": action, "data": data, **extra})


def big_partial(bad_row: int | None = None) -> str:
    data = []
    for i in range(LEVELS):
        data.append({"symbol": NATIVE, "id": 10_000 + i, "side": "Sell", "size": 5 + i % 7, "price": 30.0 + i * 0.01})
        data.append({"symbol": NATIVE, "id": 20_000 + i, "side": "Buy", "size": 3 + i % 5, "price": 29.99 - i * 0.01})
    if bad_row is not None:
        data[bad_row]["side"] = "Middle"
    return frame("orderBookL2", "partial", data, keys=["symbol", "id", "side"], filter={"symbol": NATIVE})


def trade(n: int) -> str:
    row = {
        "timestamp": "2023-11-14T22:13:20.000Z", "symbol": NATIVE, "side": "Buy", "size": n,
        "price": 30.0, "trdMatchID": f"00000000-0000-0000-0000-{n:012d}",
    }  # fmt: skip
    return frame("trade", "insert", [row])


def session() -> list[str]:
    """A partial, then updates, a delete, an insert and trades that follow it on the stream."""
    return [
        big_partial(),
        frame("orderBookL2", "update", [{"symbol": NATIVE, "id": 10_000, "side": "Sell", "size": 99}]),
        trade(1),
        frame("orderBookL2", "delete", [{"symbol": NATIVE, "id": 10_001, "side": "Sell"}]),
        frame("orderBookL2", "insert", [{"symbol": NATIVE, "id": 1, "side": "Buy", "size": 4, "price": 29.995}]),
        trade(2),
        frame("orderBookL2", "update", [{"symbol": NATIVE, "id": 20_000, "side": "Buy", "size": 77}]),
    ]


def make(step: bool) -> tuple[Feed, list[Any]]:
    adapter = BitmexAdapter()
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    feed.step_snapshots = step
    subs = [Subscription("bitmex", Channel.BOOK, SYMBOL), Subscription("bitmex", Channel.TRADES, SYMBOL)]
    feed.add_book(subs[0])
    adapter.subscribe(subs)
    return feed, events


def at_once(frames: list[str]) -> tuple[Feed, list[Any]]:
    feed, events = make(step=False)
    for text in frames:
        feed.on_frame(text, RECV)
    assert feed.take_actions() == []
    return feed, events


def build_action(feed: Feed) -> BuildSnapshot:
    (action,) = feed.take_actions()
    assert isinstance(action, BuildSnapshot) and action.symbol == SYMBOL
    return action


def of(events: list[Any], cls: type) -> list[Any]:
    return [e for e in events if type(e) is cls]


def same_outcome(feed: Feed, events: list[Any], feed_once: Feed, events_once: list[Any]) -> None:
    book, book_once = feed.book(SYMBOL), feed_once.book(SYMBOL)
    assert book is not None and book_once is not None
    book._check()
    assert book.valid and book.depth() == book_once.depth()
    for cls in (Trade, Error):
        assert of(events, cls) == of(events_once, cls), cls
    # a snapshot built in steps is handed out as the book it became with the
    # diffs held meanwhile (as for every stepped build): one BookSnapshot, one Resynced
    assert len(of(events, BookSnapshot)) == len(of(events_once, BookSnapshot)) == 1
    assert len(of(events, Resynced)) == len(of(events_once, Resynced)) == 1
    (snapshot,) = of(events, BookSnapshot)
    assert (snapshot.bids, snapshot.asks) == book.depth() or of(events, BookUpdate)
    assert feed.stats.frames == feed_once.stats.frames and feed.stats.parse_errors == feed_once.stats.parse_errors


def test_the_defer_flag_follows_step_snapshots() -> None:
    feed, _ = make(step=False)
    assert feed.adapter.defer_snapshot_rows is False
    feed.step_snapshots = True
    assert feed.adapter.defer_snapshot_rows is True and feed.step_snapshots


def test_a_deep_partial_is_read_in_steps_while_the_frames_after_it_wait() -> None:
    frames = session()
    feed_once, events_once = at_once(frames)
    feed, events = make(step=True)
    feed.on_frame(frames[0], RECV)
    action = build_action(feed)
    assert events == [] and not feed.syncs[SYMBOL].valid
    reading_steps = 0
    while feed._hold is not None:  # the stream goes on between the steps: its frames are held, even the trades
        feed.on_frame(frames[1 + reading_steps], RECV)
        assert events == []
        next(action.steps)
        reading_steps += 1
    # a step per PARTIAL_STEP_ROWS rows; the one after ends the reading and begins the book's build
    assert reading_steps == -(-2 * LEVELS // PARTIAL_STEP_ROWS) + 1
    for text in frames[1 + reading_steps :]:  # during the book's build: its diffs held by the book
        feed.on_frame(text, RECV)
    for _ in action.steps:  # the rest of the book's build
        pass
    assert feed.take_actions() == []
    same_outcome(feed, events, feed_once, events_once)
    assert type(events[0]) is Trade  # the held trade came out as soon as the rows were read


def test_a_small_partial_or_a_synced_book_reads_the_rows_at_once() -> None:
    feed, events = make(step=True)
    small = frame(
        "orderBookL2", "partial", [{"symbol": NATIVE, "id": 1, "side": "Sell", "size": 5, "price": 30.0}],
        keys=["symbol", "id", "side"], filter={"symbol": NATIVE},
    )  # fmt: skip
    feed.on_frame(small, RECV)
    assert feed.take_actions() == [] and feed.syncs[SYMBOL].valid
    feed.on_frame(big_partial(), RECV)  # a valid book: replaced at once, rows and all
    assert feed.take_actions() == [] and feed._hold is None
    book = feed.book(SYMBOL)
    assert book is not None and len(book.depth()[0]) == LEVELS
    assert [type(e) for e in events] == [BookSnapshot, Resynced, BookSnapshot, Resynced]


def test_a_bad_row_in_a_later_step_is_reported_as_when_read_at_once() -> None:
    bad = big_partial(bad_row=2 * PARTIAL_STEP_ROWS + 7)  # in the third step
    frames = [bad, trade(1)]
    feed_once, events_once = at_once(frames)
    feed, events = make(step=True)
    feed.on_frame(bad, RECV)
    action = build_action(feed)
    feed.on_frame(trade(1), RECV)  # held
    assert events == []
    for _ in action.steps:
        pass
    assert [type(e) for e in events] == [type(e) for e in events_once] == [Error, Trade]
    assert events == events_once  # the same report, word for word, then the held trade
    assert events[0].kind is ErrorKind.MALFORMED and "side 'Middle'" in events[0].message
    assert feed.stats.parse_errors == feed_once.stats.parse_errors == 1
    assert not feed.syncs[SYMBOL].valid and feed._hold is None and feed.take_actions() == []


def reading_with_a_trade_held() -> tuple[Feed, list[Any], BuildSnapshot]:
    """A live Feed one step into reading a deep partial, a trade frame held."""
    feed, events = make(step=True)
    feed.on_frame(big_partial(), RECV)
    action = build_action(feed)
    next(action.steps)
    feed.on_frame(trade(1), RECV)
    assert events == [] and feed._hold is not None
    return feed, events, action


def test_a_disconnect_while_reading_hands_out_what_was_held_and_abandons_the_partial() -> None:
    feed, events, action = reading_with_a_trade_held()
    feed.on_disconnect(RECV)
    assert of(events, Trade) and of(events, BookSnapshot) == []
    assert list(action.steps) == []  # overtaken: nothing more to do
    assert not feed.syncs[SYMBOL].valid and len(feed.syncs[SYMBOL].book) == 0
    assert of(events, BookSnapshot) == [] and feed.take_actions() == []


def test_steps_closed_early_hand_out_what_was_held_and_leave_the_book_invalid() -> None:
    feed, events, action = reading_with_a_trade_held()
    feed.on_frame(frame("orderBookL2", "update", [{"symbol": NATIVE, "id": 10_000, "side": "Sell", "size": 9}]), RECV)
    action.steps.close()  # a cancelled connection task closes them
    assert feed._hold is None and [type(e) for e in events] == [Trade]
    assert not feed.syncs[SYMBOL].valid  # the partial was never applied: its update is not lost into it


@pytest.mark.parametrize("bound", ["frames", "bytes"])
def test_past_its_bound_the_hold_finishes_the_reading_at_once_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, bound: str
) -> None:
    import wsmux._pipeline as pipeline

    frames = session()
    if bound == "frames":
        monkeypatch.setattr(pipeline, "HOLD_MAX_FRAMES", 2)
    else:  # the first two held frames reach it
        monkeypatch.setattr(pipeline, "HOLD_MAX_BYTES", len(frames[1]) + len(frames[2]))
    feed_once, events_once = at_once(frames)
    feed, events = make(step=True)
    feed.on_frame(frames[0], RECV)
    action = build_action(feed)
    for text in frames[1:]:  # nobody runs the steps: the second held frame ends the hold
        feed.on_frame(text, RECV)
    assert feed._hold is None
    for _ in action.steps:  # the build, begun before the held diffs were replayed
        pass
    same_outcome(feed, events, feed_once, events_once)


async def test_a_live_connection_reads_a_deep_partial_in_steps_and_the_book_goes_on() -> None:
    """Through the real connection and the mock venue: the partial's rows are
    read in steps with the loop running between them, and the book syncs and
    goes on with the updates that follow."""
    interleaved: list[bool]
    with pytest.MonkeyPatch.context() as monkeypatch:
        interleaved = spy_on_steps(monkeypatch, "_prepared_build")
        async with (
            MockBitmex(["SOL-USDT-PERP"], levels=3000) as mock,  # a 6,000-row partial
            Multiplexer(endpoints={"bitmex": mock.endpoint}) as mux,
        ):
            stream = mux.subscribe(*book_sub("bitmex", SYMBOL))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            await collect_until(stream, lambda e: isinstance(e, BookUpdate))
            view = mux.book("bitmex", SYMBOL)
            assert view.valid and min(len(side) for side in view.depth()) > 2000
            await stream.aclose()
    reading = -(-6000 // PARTIAL_STEP_ROWS)
    assert len(interleaved) >= reading and all(interleaved)


async def test_a_lost_connection_hands_out_the_held_frames_events_before_its_disconnected() -> None:
    """Frames held while the partial's rows were read arrived before the
    connection was lost: their events (a trade here) come before the
    ``Disconnected`` that reports the loss, then the books' disconnect Gaps."""
    events: list[Any] = []
    async with httpx.AsyncClient() as http:
        conn = Connection(1, BitmexAdapter(), events.append, http=http)
        subs = [Subscription("bitmex", Channel.BOOK, SYMBOL), Subscription("bitmex", Channel.TRADES, SYMBOL)]
        conn.feed.add_book(subs[0])
        conn.adapter.subscribe(subs)
        conn.state = "open"
        conn.feed.on_frame(big_partial(), RECV)  # a deep partial: the reading begins, frames are held
        conn.feed.on_frame(trade(1), RECV + 1)
        assert conn.feed._hold is not None and events == []
        conn._lost("ConnectionClosed: test", reconnecting=True)
    assert [type(e) for e in events] == [Trade, Disconnected]  # the book was not valid yet: no Gap
    assert events[0].recv_ns == RECV + 1 and conn.feed._hold is None
