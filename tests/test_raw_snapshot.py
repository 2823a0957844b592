"""Stream snapshots handed over as rows (RawSnapshot): the book's build converts,
checks and sorts them, at once or in steps, with the result a BookSnapshot of the
same levels would give; bad rows are reported, never raised out of the Feed."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from wsmux._pipeline import BuildSnapshot, Feed, Send
from wsmux.book import RawSnapshot
from wsmux.exchanges.bitmex import BitmexAdapter
from wsmux.exchanges.coinbase import CoinbaseAdapter, CoinbaseAdvancedAdapter
from wsmux.exchanges.gemini import GeminiV2Adapter
from wsmux.metrics._health import _by_public_name
from wsmux.model import BookSnapshot, BookUpdate, Channel, Error, ErrorKind, Gap, Resynced
from wsmux.subscriptions import Subscription

V = "coinbase-advanced"
TS = "2024-05-01T12:00:00.123456789Z"


# --- RawSnapshot.to_snapshot: what a snapshot of these rows is ---------------------------------


def test_rows_in_any_order_become_a_sorted_snapshot() -> None:
    raw = RawSnapshot(
        "BTC-USD",
        [("99.5", "1"), ("100", "2"), ("98", "0"), ("99.5", "3")],  # a repeat: the later row wins; a zero: no level
        [[101.0, 4], [100.5, 5.5]],  # numbers as well as text
        7,
        9,
    )
    snap = raw.to_snapshot(V, 42)
    assert snap == BookSnapshot(V, "BTC-USD", ((100.0, 2.0), (99.5, 3.0)), ((100.5, 5.5), (101.0, 4.0)), 7, 42, 9)


def test_rows_with_text_keep_the_text_of_the_levels_left() -> None:
    bids = [("100.10", "2.0"), ("100.2", "1")]
    raw = RawSnapshot("BTC-USD", bids, [], None, bids_text=bids, asks_text=[])
    snap = raw.to_snapshot("kraken", 1)
    assert snap.bids == ((100.2, 1.0), (100.1, 2.0))
    assert snap.bids_text == (("100.2", "1"), ("100.10", "2.0")) and snap.asks_text == ()


@pytest.mark.parametrize("row", [("x", "1"), ("1",), (None, "1"), ("-1", "1"), ("1", "-2"), ("nan", "1"), ("inf", "1")])
def test_a_bad_row_is_a_value_error(row: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="bad"):
        RawSnapshot("BTC-USD", [("100", "1"), row], [], None).to_snapshot(V, 1)


# --- the venues whose stream sends a full book hand it over as rows ---------------------------


def advanced_snapshot(levels: int, seq: int = 1, seed: int = 0, bad: dict[str, str] | None = None) -> str:
    updates = [
        {"side": "bid", "event_time": TS, "price_level": f"{30000 - i * 0.01:.2f}", "new_quantity": f"{1 + i % 7}"}
        for i in range(levels)
    ] + [
        {"side": "offer", "event_time": TS, "price_level": f"{30000.01 + i * 0.01:.2f}", "new_quantity": f"{2 + i % 5}"}
        for i in range(levels)
    ]
    random.Random(seed).shuffle(updates)  # the venue promises no order
    if bad is not None:
        updates[len(updates) // 2].update(bad)
    events = [{"type": "snapshot", "product_id": "BTC-USD", "updates": updates}]
    return json.dumps({"channel": "l2_data", "client_id": "", "timestamp": TS, "sequence_num": seq, "events": events})


def advanced_update(seq: int, price: str, qty: str) -> str:
    updates = [{"side": "bid", "event_time": TS, "price_level": price, "new_quantity": qty}]
    events = [{"type": "update", "product_id": "BTC-USD", "updates": updates}]
    return json.dumps({"channel": "l2_data", "client_id": "", "timestamp": TS, "sequence_num": seq, "events": events})


def test_each_full_book_venue_hands_its_snapshot_over_as_rows() -> None:
    """The adapters no longer convert and sort a full book inside the frame."""
    advanced = CoinbaseAdvancedAdapter()
    exchange = CoinbaseAdapter()
    exchange_snapshot = {"type": "snapshot", "product_id": "BTC-USD", "bids": [["1.5", "2"]], "asks": [["1.6", "1"]]}
    bitmex = BitmexAdapter()
    bitmex.subscribe([Subscription("bitmex", Channel.BOOK, "SOL-USDT-PERP")])
    partial = {
        "table": "orderBookL2", "action": "partial", "keys": ["symbol", "id", "side"], "filter": {"symbol": "SOLUSDT"},
        "data": [{"symbol": "SOLUSDT", "id": 1, "side": "Sell", "size": 10, "price": 27.6},
                 {"symbol": "SOLUSDT", "id": 3, "side": "Buy", "size": 30, "price": 27.5}],
    }  # fmt: skip
    gemini = GeminiV2Adapter()
    gemini.subscribe([Subscription("gemini-v2", Channel.BOOK, "BTC-USD")])
    first = {
        "type": "l2_updates",
        "symbol": "BTCUSD",
        "changes": [["buy", "1.5", "2"], ["sell", "1.6", "1"]],
        "trades": [],
    }
    for adapter, frame in (
        (advanced, advanced_snapshot(2)),
        (exchange, json.dumps(exchange_snapshot)),
        (bitmex, json.dumps(partial)),
        (gemini, json.dumps(first)),
    ):
        (raw,) = adapter.parse(frame, 1)
        assert isinstance(raw, RawSnapshot), adapter.venue


# --- through the Feed: at once, in steps, and with a bad row -------------------------------------


def advanced_feed(step: bool) -> tuple[Feed, list[Any]]:
    adapter = CoinbaseAdvancedAdapter()
    events: list[Any] = []
    feed = Feed(adapter, events.append)
    feed.step_snapshots = step
    sub = Subscription(V, Channel.BOOK, "BTC-USD")
    feed.add_book(sub)
    adapter.subscribe([sub])
    return feed, events


def test_a_small_row_snapshot_syncs_the_book_at_once_as_its_snapshot_says() -> None:
    feed, events = advanced_feed(step=True)
    frame = advanced_snapshot(50)
    (raw,) = CoinbaseAdvancedAdapter().parse(frame, 5)
    assert isinstance(raw, RawSnapshot)
    expected = raw.to_snapshot(V, 5)
    feed.on_frame(frame, 5)
    assert feed.take_actions() == []
    snap, resynced = events
    assert isinstance(snap, BookSnapshot) and isinstance(resynced, Resynced)
    assert (snap.bids, snap.asks) == (expected.bids, expected.asks) and len(snap.bids) == 50
    book = feed.book("BTC-USD")
    assert book is not None and book.valid
    book._check()


def test_a_deep_row_snapshot_is_built_in_steps_with_the_result_of_at_once() -> None:
    at_once, _ = advanced_feed(step=False)
    stepped, events = advanced_feed(step=True)
    frames = [advanced_snapshot(3000), advanced_update(2, "30000.00", "9"), advanced_update(3, "29999.99", "0")]
    for frame in frames:
        at_once.on_frame(frame, 1)
    stepped.on_frame(frames[0], 1)
    (action,) = stepped.take_actions()
    assert isinstance(action, BuildSnapshot)
    assert events == [] and not stepped.syncs["BTC-USD"].valid  # nothing converted inside the frame
    assert next(action.steps, "done") is None
    stepped.on_frame(frames[1], 1)  # held while the build runs, replayed on top of it
    assert list(action.steps) != []  # 6,000 rows: more steps to go
    stepped.on_frame(frames[2], 1)
    book_once, book_stepped = at_once.book("BTC-USD"), stepped.book("BTC-USD")
    assert book_once is not None and book_stepped is not None and book_stepped.valid
    book_stepped._check()
    assert book_stepped.depth() == book_once.depth() and len(book_stepped) == 5999
    assert book_stepped.best_bid() == (30000.0, 9.0)
    kinds = [type(e) for e in events]
    assert kinds == [BookSnapshot, Resynced, BookUpdate]  # the held update is in the snapshot delivered
    assert events[0].bids[0] == (30000.0, 9.0)


@pytest.mark.parametrize("levels", [50, 3000], ids=["at once", "in steps"])
@pytest.mark.parametrize("bad", [{"price_level": "abc"}, {"new_quantity": "-1"}], ids=["not a number", "negative"])
def test_a_bad_row_is_reported_and_the_book_stays_invalid(levels: int, bad: dict[str, str]) -> None:
    feed, events = advanced_feed(step=True)
    feed.on_frame(advanced_snapshot(levels, bad=bad), 1)  # never raises
    actions = feed.take_actions()
    for action in actions:
        if isinstance(action, BuildSnapshot):
            for _ in action.steps:
                pass
    actions += feed.take_actions()
    assert not feed.syncs["BTC-USD"].valid and len(feed.syncs["BTC-USD"].book) == 0
    assert BookSnapshot not in [type(e) for e in events]
    reports = [e for e in events if isinstance(e, Error | Gap)]
    report = reports[0]
    if isinstance(report, Error):  # a row that is not a number: the build raised
        assert report.kind is ErrorKind.MALFORMED and report.symbol == "BTC-USD"
        assert report.message.startswith("BookSnapshot could not be processed")  # the public name, not RawSnapshot
        (reask,) = reports[1:]  # the venue is asked again at once: the subscription's snapshot failed
        assert isinstance(reask, Error) and reask.kind is ErrorKind.SNAPSHOT and "asking again" in reask.message
    else:  # a number the book refuses: the snapshot is bad data, and the venue is asked for another
        assert len(reports) == 1
        assert report.symbol == "BTC-USD" and "bad price or size" in (report.detail or "")
    assert any(isinstance(action, Send) for action in actions)
    feed.on_frame(advanced_snapshot(10, seq=2), 2)  # the next good snapshot syncs it
    assert feed.syncs["BTC-USD"].valid


def test_health_counts_a_row_snapshot_as_the_book_snapshot_it_becomes() -> None:
    assert _by_public_name({RawSnapshot: 2, BookSnapshot: 1, BookUpdate: 4}) == {"BookSnapshot": 3, "BookUpdate": 4}
