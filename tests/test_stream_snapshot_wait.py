"""A book waiting for a snapshot its stream must bring asks again, bounded.

Stream-snapshot venues (Deribit, OKX, Bitfinex raw books...) resync a broken
book by asking the venue again; the book ignores the diffs that keep coming
until the snapshot arrives. When it never does — the venue dropped the
request, or its answer could not be read or applied — the Feed asks again
once :attr:`Feed.snapshot_wait_ns` of receive time has passed since the last
ask, reports it (``Error`` of kind ``SNAPSHOT``, ``FeedStats.snapshot_reasks``)
and never asks more than once per interval. Sans-I/O: real adapters, real
frames, time is ``recv_ns``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from test_book_resync import deribit_feed, deribit_frame, deribit_snapshot
from test_htx import MBP, mbp, rep

from wsmux import book as book_sub
from wsmux._pipeline import SNAPSHOT_WAIT_NS, BuildSnapshot, Feed, FetchSnapshot, Send
from wsmux.adapter import Adapter
from wsmux.book import RawSnapshot
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.exchanges.bitfinex import BitfinexAdapter
from wsmux.exchanges.htx import HtxAdapter
from wsmux.model import (
    BookSnapshot,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    OrderUpdate,
    Resynced,
    evolve,
)
from wsmux.subscriptions import Subscription

S = 1_000_000_000
"""One second of receive time, in ns."""
T0 = 1_700_000_000 * S
BTC = "BTC-USD-PERP"
RESUBSCRIBE = [("public/unsubscribe", ["book.BTC-PERPETUAL.100ms"]), ("public/subscribe", ["book.BTC-PERPETUAL.100ms"])]
"""Deribit's resync messages for the BTC book (their request ids aside)."""
BAD_SNAPSHOT = deribit_frame("snapshot", [["new", "not a price", 1.0]], [], 50)
"""A snapshot frame the adapter cannot read: the symbol it was for is lost with it."""
REFUSED_SNAPSHOT = deribit_frame("snapshot", [["new", 30000.0, -3.0]], [["new", 30000.5, 1.0]], 50)
"""A snapshot the book refuses (a negative size): ``Gap(BAD_DATA)``."""


def deribit_requests(action: object) -> list[tuple[str, list[str]]]:
    """The JSON-RPC methods and channels a Send action carries."""
    assert isinstance(action, Send)
    messages = [json.loads(message) for message in action.messages]
    return [(m["method"], m["params"]["channels"]) for m in messages]


def change(change_id: int, instrument: str = "BTC-PERPETUAL") -> str:
    """A Deribit change that follows ``change_id - 1``."""
    return deribit_frame("change", [["change", 30000.0, float(change_id)]], [], change_id, change_id - 1, instrument)


def reasks(events: Sequence[Event]) -> list[Error]:
    return [e for e in events if isinstance(e, Error) and e.kind is ErrorKind.SNAPSHOT]


def stuck_deribit(step: bool = False, symbols: tuple[str, ...] = (BTC,)) -> tuple[Feed, list[Any], int]:
    """A Deribit BTC book that synced, lost a change and asked for a new
    snapshot at the returned receive time (events and actions cleared)."""
    feed, events = deribit_feed(step, symbols)
    feed.on_frame(deribit_snapshot(5), T0)
    feed.on_frame(change(12), T0 + S)  # 11 was lost
    assert [type(e) for e in events] == [BookSnapshot, Resynced, Gap]
    assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE]
    events.clear()
    return feed, events, T0 + S


def test_a_malformed_snapshot_is_asked_for_again_once_per_interval() -> None:
    feed, events, asked = stuck_deribit()
    feed.on_frame(BAD_SNAPSHOT, asked + S // 10)  # the venue's answer cannot be read
    assert [(type(e), e.kind) for e in events] == [(Error, ErrorKind.MALFORMED)]
    events.clear()
    for i in range(1, 100):  # the diffs go on for 9.9 s: ignored, nothing asked
        feed.on_frame(change(100 + i), asked + i * S // 10)
    assert events == [] and feed.take_actions() == []

    feed.on_frame(change(200), asked + 10 * S)  # the interval has passed: ask again, and say so
    (action,) = feed.take_actions()
    assert deribit_requests(action) == RESUBSCRIBE
    assert events == [
        Error(
            "deribit",
            BTC,
            ErrorKind.SNAPSHOT,
            f"book {BTC}: still no snapshot; invalid for 10.0 s, last asked 10.0 s ago; asking again (re-ask 1)",
            asked + 10 * S,
        )
    ]
    assert feed.stats.snapshot_reasks == 1
    assert not feed.syncs[BTC].valid

    events.clear()
    for i in range(1, 100):  # within the next interval: not again
        feed.on_frame(change(300 + i), asked + 10 * S + i * S // 10)
    assert events == [] and feed.take_actions() == [] and feed.stats.snapshot_reasks == 1
    feed.on_frame(change(400), asked + 20 * S)
    assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE]
    (second,) = reasks(events)
    assert second.message.endswith("invalid for 20.0 s, last asked 10.0 s ago; asking again (re-ask 2)")
    assert feed.stats.snapshot_reasks == 2
    assert feed.snapshot_wait_ns == SNAPSHOT_WAIT_NS == 10 * S  # the default interval


def test_a_good_snapshot_after_a_reask_syncs_and_ends_the_reasks() -> None:
    feed, events, asked = stuck_deribit()
    feed.on_frame(change(100), asked + 10 * S)
    assert len(feed.take_actions()) == 1 and len(reasks(events)) == 1
    events.clear()
    feed.on_frame(deribit_snapshot(5, change_id=500), asked + 10 * S + S // 5)
    assert [type(e) for e in events] == [BookSnapshot, Resynced] and feed.syncs[BTC].valid
    for i in range(1, 40):  # a valid book for 39 s more: its updates are applied, nothing asked
        feed.on_frame(change(500 + i), asked + (10 + i) * S)
    assert feed.take_actions() == [] and reasks(events) == [] and feed.syncs[BTC].last == 539
    assert feed.stats.snapshot_reasks == 1

    # the next break asks at once, and a new wait is counted from there
    events.clear()
    broke = asked + 50 * S
    feed.on_frame(change(545), broke)  # 540 was lost
    assert [type(e) for e in events] == [Gap]
    assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE]
    feed.on_frame(change(600), broke + 9 * S)
    assert feed.take_actions() == []
    feed.on_frame(change(601), broke + 10 * S)
    assert len(feed.take_actions()) == 1
    assert reasks(events)[0].message.endswith("invalid for 10.0 s, last asked 10.0 s ago; asking again (re-ask 1)")


def test_refused_snapshots_on_a_waiting_book_ask_at_most_once_per_interval() -> None:
    """A snapshot the book refuses is a Gap, as ever, and the book asks again
    at once when its last ask is due, else later: never a tight loop with a
    venue that keeps answering with a bad snapshot."""
    feed, events, asked = stuck_deribit()
    feed.on_frame(REFUSED_SNAPSHOT, asked + S // 10)  # answered at once, badly
    assert [(type(e), e.reason) for e in events] == [(Gap, GapReason.BAD_DATA)]  # type: ignore[attr-defined]
    assert feed.take_actions() == []  # asked 0.1 s ago
    feed.on_frame(change(100), asked + 10 * S)  # the update after the interval asks again
    assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE]
    assert len(reasks(events)) == 1
    feed.on_frame(REFUSED_SNAPSHOT, asked + 10 * S + S // 10)  # bad again, at once
    feed.on_frame(REFUSED_SNAPSHOT, asked + 15 * S)
    assert feed.take_actions() == []
    feed.on_frame(REFUSED_SNAPSHOT, asked + 20 * S + S // 10)  # due: the resync of this Gap goes at once
    assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE]
    assert [type(e) for e in events].count(Gap) == 4 and feed.stats.snapshot_reasks == 1
    assert not feed.syncs[BTC].valid


def spoil_snapshots(adapter: Adapter) -> Callable[[bool], None]:
    """Make the snapshots ``adapter`` parses carry a level that is not a
    number (as an adapter bug would): the book raises while applying them.
    Returns a switch."""
    parse = adapter.parse
    spoiled = [True]

    def parse_spoiling(frame: bytes | str, recv_ns: int) -> Sequence[Any]:
        events = parse(frame, recv_ns)
        if not spoiled[0]:
            return events
        for e in events:
            if isinstance(e, RawSnapshot):  # a deep one on a live Feed: its rows read by the build
                e.bids = [*e.bids[0 : len(e.bids)], ("x", "1")]
        return [evolve(e, bids=(*e.bids, ("x", "1"))) if isinstance(e, BookSnapshot) else e for e in events]

    adapter.parse = parse_spoiling  # type: ignore[method-assign]
    return lambda on: spoiled.__setitem__(0, on)


def offer_snapshot(feed: Feed, frame: str, recv_ns: int) -> None:
    """``frame`` to the feed, running a stepped build to its end."""
    feed.on_frame(frame, recv_ns)
    for action in list(feed.actions):
        if isinstance(action, BuildSnapshot):
            feed.actions.remove(action)
            for _ in action.steps:
                pass


def test_a_snapshot_that_fails_to_apply_on_a_waiting_book_asks_again_at_once_when_due() -> None:
    for step in (False, True):  # applied at once, or built in steps (a deep one)
        feed, events, asked = stuck_deribit(step)
        spoil = spoil_snapshots(feed.adapter)
        deep = deribit_snapshot(1500, change_id=50)
        offer_snapshot(feed, deep, asked + S)
        assert [(type(e), e.kind) for e in events] == [(Error, ErrorKind.MALFORMED)]  # type: ignore[attr-defined]
        assert "could not be processed" in events[0].message
        assert feed.take_actions() == []  # asked 1 s ago: later
        offer_snapshot(feed, deep, asked + 10 * S)  # due: at once
        assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE]
        (reask,) = reasks(events)
        assert reask.message == (
            f"book {BTC}: its snapshot failed; invalid for 10.0 s, last asked 10.0 s ago; asking again (re-ask 1)"
        )
        offer_snapshot(feed, deep, asked + 15 * S)  # failed again, too soon: no ask
        assert feed.take_actions() == [] and feed.stats.snapshot_reasks == 1
        feed.on_frame(change(100), asked + 19 * S)
        assert feed.take_actions() == []
        feed.on_frame(change(101), asked + 20 * S)  # the interval since the re-ask: ask again
        assert len(feed.take_actions()) == 1 and feed.stats.snapshot_reasks == 2
        spoil(False)
        offer_snapshot(feed, deep, asked + 20 * S + S // 5)
        assert feed.syncs[BTC].valid and isinstance(events[-1], Resynced)


def test_the_subscription_s_own_snapshot_failing_asks_again_at_once() -> None:
    feed, events = deribit_feed(step=False)
    spoil_snapshots(feed.adapter)
    feed.on_frame(deribit_snapshot(5), T0)  # when the subscribe went out, no frame told
    assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE]
    assert reasks(events)[0].message == (
        f"book {BTC}: its snapshot failed; invalid since it was subscribed; asking again (re-ask 1)"
    )
    feed.on_frame(deribit_snapshot(5), T0 + S)  # the answer fails too: the interval counts from the re-ask
    assert feed.take_actions() == [] and feed.stats.snapshot_reasks == 1


def test_a_book_holding_diffs_for_a_snapshot_being_built_is_not_reasked() -> None:
    """Two waiting books; ETH's deep snapshot comes and is built in steps while
    its diffs are held: only BTC, still without a snapshot, is asked again."""
    feed, events, asked = stuck_deribit(step=True, symbols=(BTC, "ETH-USD-PERP"))
    feed.on_frame(deribit_snapshot(1500, change_id=70, instrument="ETH-PERPETUAL"), asked + S // 2)
    (build,) = feed.take_actions()
    assert isinstance(build, BuildSnapshot) and build.symbol == "ETH-USD-PERP"
    for i in range(1, 40):  # 39 s of diffs for both books before the build's steps run
        feed.on_frame(change(70 + i, "ETH-PERPETUAL"), asked + i * S)  # held
        feed.on_frame(change(200 + i), asked + i * S)  # ignored
    assert {e.symbol for e in reasks(events)} == {BTC}
    assert [deribit_requests(a) for a in feed.take_actions()] == [RESUBSCRIBE] * 3  # at 10, 20 and 30 s
    assert feed.syncs["ETH-USD-PERP"].stats.buffered == 39
    for _ in build.steps:
        pass
    eth = feed.syncs["ETH-USD-PERP"]
    assert eth.valid and eth.last == 109  # the held diffs replayed
    assert feed.stats.snapshot_reasks == 3 and feed.take_actions() == []


def test_htx_whose_snapshot_answers_a_request_on_the_stream_is_asked_again() -> None:
    """HTX spot buffers diffs like a REST venue but its snapshot answers a
    ``req`` on the stream: a lost or unreadable answer is asked for again."""
    adapter = HtxAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    sub = Subscription("htx", Channel.BOOK, "BTC-USDT")
    feed.add_book(sub)
    adapter.subscribe([sub])  # with the first `req`
    feed.on_frame(rep(100, [[10, "two"]], [[11, 1]]), T0)  # its answer cannot be read
    for i in range(1, 11):  # diffs buffered for 10 s; the first one starts the clock
        feed.on_frame(mbp(100 + i, 99 + i, [[10, i]], []), T0 + i * S)
    assert feed.take_actions() == []
    feed.on_frame(mbp(111, 110, [[10, 11]], []), T0 + 11 * S)
    (action,) = feed.take_actions()
    assert action == Send((json.dumps({"req": MBP, "id": f"req:{MBP}"}, separators=(",", ":")),))
    assert [e.symbol for e in reasks(events)] == ["BTC-USDT"] and feed.stats.snapshot_reasks == 1
    feed.on_frame(rep(105, [[10, 5]], [[11, 1]]), T0 + 11 * S + S // 10)  # the answer bridges the buffer
    assert feed.syncs["BTC-USDT"].valid and feed.syncs["BTC-USDT"].last == 111


def test_rest_snapshot_venues_are_unchanged() -> None:
    """A REST venue's book waits for its fetch as before: one FetchSnapshot,
    no message sent on the stream, no re-ask however long the fetch takes."""
    adapter = BinanceSpotAdapter()
    sub = book_sub("binance", "BTC-USDT")[0]
    adapter.connect_url([sub])
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    feed.add_book(sub)
    for i in range(120):  # two minutes of buffered diffs while the fetch is out
        u = 1000 + i
        feed.on_frame(
            '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT",'
            f'"U":{u},"u":{u},"b":[["100.5","1"]],"a":[]}}}}',
            T0 + i * S,
        )
    actions = feed.take_actions()
    assert len(actions) == 1 and isinstance(actions[0], FetchSnapshot)
    assert events == [] and feed.stats.snapshot_reasks == 0


def subscribed_raw(chan_id: int) -> str:
    """Bitfinex's answer to the R0 (raw book, L3) subscription of BTC-USD."""
    return json.dumps(
        {"event": "subscribed", "channel": "book", "chanId": chan_id, "symbol": "tBTCUSD", "prec": "R0", "len": "100"}
    )


def test_a_stuck_l3_book_of_a_stream_snapshot_venue_is_asked_for_again() -> None:
    """Bitfinex raw books (L3, stream snapshot): the subscription's snapshot
    could not be read, the order updates go on; the book is asked for again."""
    adapter = BitfinexAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    sub = Subscription("bitfinex", Channel.L3, "BTC-USD")
    feed.add_l3(sub)
    adapter.subscribe([sub])
    feed.on_frame('{"event":"info","version":2,"serverId":"x","platform":{"status":1}}', T0)
    feed.on_frame('{"event":"conf","status":"OK","flags":196608}', T0)
    feed.on_frame(subscribed_raw(7), T0)
    feed.on_frame('[7,[["x",7294.7,1.5],[2,7295,-0.5]],1]', T0)  # an order id that is not an integer
    for i in range(1, 11):  # order updates for 10 s after the first: ignored
        feed.on_frame(f"[7,[{100 + i},7294,2],{1 + i}]", T0 + i * S)
    assert feed.take_actions() == [] and reasks(events) == []
    feed.on_frame("[7,[111,7294,2],12]", T0 + 11 * S)
    (action,) = feed.take_actions()
    assert isinstance(action, Send) and [json.loads(m) for m in action.messages] == [
        {"event": "unsubscribe", "chanId": 7},
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "R0", "len": "100"},
    ]
    (reask,) = reasks(events)
    assert reask.message == (
        "l3 BTC-USD: still no snapshot; invalid for 10.0 s, last asked 10.0 s ago; asking again (re-ask 1)"
    )
    # the venue answers: unsubscribed, subscribed again, a snapshot; the re-asks stop
    feed.on_frame('{"event":"unsubscribed","status":"OK","chanId":7}', T0 + 11 * S)
    feed.on_frame(subscribed_raw(8), T0 + 11 * S)
    feed.on_frame("[8,[[1,7294.7,1.5],[2,7295,-0.5]],13]", T0 + 12 * S)
    assert feed.l3_syncs["BTC-USD"].valid and isinstance(events[-1], Resynced)
    for i in range(1, 30):
        feed.on_frame(f"[8,[{200 + i},7294,2],{13 + i}]", T0 + (12 + i) * S)
    assert feed.take_actions() == [] and feed.stats.snapshot_reasks == 1
    assert sum(isinstance(e, OrderUpdate) for e in events) == 29 and len(feed.l3_syncs["BTC-USD"].book) == 31


def test_a_disconnect_forgets_the_waits_and_the_reconnect_starts_the_clock_again() -> None:
    feed, events, asked = stuck_deribit()
    feed.on_frame(change(100), asked + 5 * S)
    feed.on_disconnect(asked + 6 * S)  # the reconnect subscribes again, untimed
    feed.on_frame(change(101), asked + 60 * S)  # the first update after it starts the clock: no re-ask yet
    assert feed.take_actions() == [] and reasks(events) == []
    feed.on_frame(change(102), asked + 70 * S)
    assert len(feed.take_actions()) == 1 and len(reasks(events)) == 1


def test_a_receive_clock_stepping_back_delays_a_reask_by_one_interval_at_most() -> None:
    feed, events, asked = stuck_deribit()
    feed.on_frame(change(100), asked - 3600 * S)  # wall time stepped back an hour
    feed.on_frame(change(101), asked - 3600 * S + 9 * S)
    assert feed.take_actions() == []
    feed.on_frame(change(102), asked - 3600 * S + 10 * S)
    assert len(feed.take_actions()) == 1 and len(reasks(events)) == 1
