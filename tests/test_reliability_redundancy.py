"""KeyRing, Deduplicator and Arbiter: one feed from redundant connections."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmux import reliability
from wsmux.errors import ConfigError
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Channel,
    Connected,
    Disconnected,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    L3Snapshot,
    Liquidation,
    OpenInterest,
    OrderAction,
    OrderUpdate,
    Quote,
    Resynced,
    Side,
    Stale,
    Trade,
)
from wsmux.reliability import Arbiter, Deduplicator, KeyRing, SourceChange

MS = 1_000_000
NAN = math.nan


def trade(
    tid: str | None,
    recv: int,
    *,
    price: float = 100.0,
    size: float = 1.0,
    ts: int | None = None,
    venue: str = "binance",
    symbol: str = "BTC-USDT",
) -> Trade:
    return Trade(venue, symbol, price, size, Side.BUY, tid, ts, recv)


def quote(
    seq: int | None,
    recv: int,
    *,
    bid: float = 1.0,
    ask: float = 2.0,
    venue: str = "binance",
    symbol: str = "BTC-USDT",
    ts: int | None = None,
) -> Quote:
    return Quote(venue, symbol, bid, 1.0, ask, 1.0, ts, recv, seq)


def update(
    seq: int | None,
    recv: int,
    bids: tuple[tuple[float, float], ...] = (),
    *,
    first: int | None = None,
    venue: str = "binance",
    symbol: str = "BTC-USDT",
) -> BookUpdate:
    return BookUpdate(venue, symbol, bids, (), None, recv, seq, first)


def snapshot(
    seq: int | None,
    recv: int,
    bids: tuple[tuple[float, float], ...] = (),
    *,
    venue: str = "binance",
    symbol: str = "BTC-USDT",
) -> BookSnapshot:
    return BookSnapshot(venue, symbol, bids, (), None, recv, seq)


def gap(recv: int, *, venue: str = "binance", symbol: str = "BTC-USDT", channel: Channel = Channel.BOOK) -> Gap:
    return Gap(venue, symbol, channel, GapReason.SEQUENCE, None, None, recv)


def resynced(
    seq: int | None, recv: int, *, venue: str = "binance", symbol: str = "BTC-USDT", channel: Channel = Channel.BOOK
) -> Resynced:
    return Resynced(venue, symbol, channel, seq, recv)


# --- KeyRing -------------------------------------------------------------------


def test_keyring_remembers_the_last_capacity_keys_fifo() -> None:
    ring: KeyRing[str, int] = KeyRing(3)
    assert ring.put("a", 1) is None
    assert ring.put("b", 2) is None
    assert ring.put("c", 3) is None
    assert ring.get("a") == 1  # a lookup does not make "a" younger
    assert ring.put("a", 10) is None  # re-put: value replaced, age unchanged
    assert ring.get("a") == 10
    assert ring.put("d", 4) == "a"
    assert "a" not in ring and ring.get("a") is None
    assert ring.put("e", 5) == "b"
    assert len(ring) == 3 and ring.evicted == 2
    ring._check()
    ring.clear()
    assert len(ring) == 0 and "c" not in ring
    ring._check()
    with pytest.raises(ValueError):
        KeyRing(0)


@given(st.integers(1, 8), st.lists(st.integers(0, 20), max_size=200))
def test_keyring_matches_a_reference_model(capacity: int, keys: list[int]) -> None:
    ring: KeyRing[int, int] = KeyRing(capacity)
    order: list[int] = []  # distinct keys in first-insertion order, only those remembered
    for i, key in enumerate(keys):
        if key in order:
            assert ring.put(key, i) is None
        else:
            evicted = ring.put(key, i)
            order.append(key)
            if len(order) > capacity:
                assert evicted == order.pop(0)
            else:
                assert evicted is None
        ring._check()
        assert sorted(order) == sorted(k for k in range(21) if k in ring)


# --- Deduplicator ------------------------------------------------------------------


def test_trade_ids_deliver_exactly_once_and_measure_lag() -> None:
    dedup = Deduplicator()
    assert dedup.accept(1, trade("7", 1000))
    assert not dedup.accept(2, trade("7", 1000 + 3 * MS))
    assert dedup.accept(2, trade("8", 2000))  # conn 2 is first this time
    assert not dedup.accept(1, trade("8", 2000 + MS))
    assert dedup.accept(1, trade("7", 3000, symbol="ETH-USDT"))  # another symbol: another key space
    assert dedup.accept(1, trade("7", 3000, venue="okx"))  # another venue too
    assert dedup.stats.passed == 4 and dedup.stats.duplicates == 2
    one, two = dedup.conn(1), dedup.conn(2)
    assert (one.copies, one.firsts, one.duplicates) == (4, 3, 1)
    assert (two.copies, two.firsts, two.duplicates) == (2, 1, 1)
    alpha = dedup.lag_alpha
    assert two.lag_ns == pytest.approx(3 * MS * alpha * (1 - alpha))
    assert one.lag_ns == pytest.approx(MS * alpha * (1 - alpha) ** 2)  # then two firsts
    assert one.last_ns == 3000 and two.last_ns == 2000  # the stamp of its last event
    assert dedup.spaces == 3
    assert one.copies == 4 and two.copies == 2


def test_trade_ids_are_remembered_for_max_keys_distinct_ids() -> None:
    dedup = Deduplicator(max_keys=3)
    for i in range(4):
        assert dedup.accept(1, trade(str(i), i))
    assert not dedup.accept(2, trade("3", 10))
    assert dedup.accept(2, trade("0", 10))  # forgotten: delivered again (max_keys too small)
    assert dedup.remembered() == 3


def test_quote_seq_is_a_high_water_mark() -> None:
    dedup = Deduplicator()
    assert dedup.accept(1, quote(10, 100))
    assert not dedup.accept(2, quote(10, 100 + 2 * MS))  # same seq: duplicate
    assert dedup.accept(2, quote(12, 200))
    assert not dedup.accept(1, quote(11, 210))  # older than what the caller has: stale
    assert not dedup.accept(1, quote(12, 220))
    assert dedup.accept(2, quote(12, 200))  # same seq, same connection, same frame: a second event
    assert not dedup.accept(1, quote(12, 200))  # same stamp but another connection: a copy
    assert dedup.stats.passed == 3 and dedup.stats.duplicates == 3 and dedup.stats.stale == 1


def test_fingerprints_count_occurrences_per_connection() -> None:
    dedup = Deduplicator()
    a, b = {"bid": 1.0, "ask": 2.0}, {"bid": 1.5, "ask": 2.0}
    # conn 1 carries A B A; conn 2 the same, later: nothing of conn 2 passes
    got = [dedup.accept(1, quote(None, t, **a if k == "a" else b)) for t, k in ((1, "a"), (2, "b"), (3, "a"))]
    got += [dedup.accept(2, quote(None, t, **a if k == "a" else b)) for t, k in ((4, "a"), (5, "b"), (6, "a"))]
    assert got == [True, True, True, False, False, False]
    # the race: conn 2 sees the second A first -> conn 2 delivers it, conn 1's copy is the duplicate
    dedup = Deduplicator()
    assert dedup.accept(1, quote(None, 1, **a))
    assert not dedup.accept(2, quote(None, 2, **a))
    assert dedup.accept(1, quote(None, 3, **b))
    assert not dedup.accept(2, quote(None, 4, **b))
    assert dedup.accept(2, quote(None, 5, **a))
    assert not dedup.accept(1, quote(None, 6, **a))
    assert dedup.stats.fingerprinted == 6


def test_identical_trades_without_ids_are_distinct_occurrences() -> None:
    dedup = Deduplicator()
    fill = trade(None, 10, ts=5)
    assert [dedup.accept(1, fill), dedup.accept(1, fill)] == [True, True]  # two fills, one frame
    assert [dedup.accept(2, fill), dedup.accept(2, fill), dedup.accept(2, fill)] == [False, False, True]


def test_fingerprint_groups_expire_after_the_window() -> None:
    dedup = Deduplicator(window_ns=10 * MS)
    assert dedup.accept(1, quote(None, 0))
    assert not dedup.accept(2, quote(None, 10 * MS))  # within the window (inclusive)
    assert dedup.accept(2, quote(None, 10 * MS + 1))  # later than the window: a new group


def test_nan_sides_are_deduplicated() -> None:
    dedup = Deduplicator()
    assert dedup.accept(1, quote(None, 1, bid=float("nan")))
    assert not dedup.accept(2, quote(None, 2, bid=float("nan")))  # another nan object
    assert dedup.accept(1, quote(None, 3, ask=float("nan")))
    assert not dedup.accept(2, quote(None, 4, ask=float("nan")))


def test_connection_seq_venues_are_fingerprinted() -> None:
    dedup = Deduplicator()
    assert dedup.accept(1, quote(5, 1, venue="bitfinex"))
    assert dedup.accept(2, quote(3, 2, venue="bitfinex", bid=1.1))  # lower seq, other payload: new
    assert not dedup.accept(2, quote(9, 3, venue="bitfinex"))  # same payload as conn 1's first
    custom = Deduplicator(connection_seq_venues=())
    assert custom.accept(1, quote(5, 1, venue="bitfinex"))
    assert not custom.accept(2, quote(3, 2, venue="bitfinex", bid=1.1))


def test_other_market_events_are_fingerprinted() -> None:
    dedup = Deduplicator()
    funding = Funding("binance-usdm", "BTC-USDT-PERP", 0.0001, 5, 100.0, 1, 10)
    oi = OpenInterest("binance-usdm", "BTC-USDT-PERP", 12.5, 1, 10)
    liq = Liquidation("binance-usdm", "BTC-USDT-PERP", Side.SELL, 100.0, 2.0, 1, 10)
    for event in (funding, oi, liq):
        assert dedup.accept(1, event)
        assert not dedup.accept(2, event)
    assert dedup.accept(2, Funding("binance-usdm", "BTC-USDT-PERP", 0.0002, 5, 100.0, 1, 11))


def test_book_and_status_events_pass_unjudged() -> None:
    dedup = Deduplicator()
    events: list[Event] = [
        update(1, 1),
        snapshot(1, 1),
        OrderUpdate("coinbase", "BTC-USD", OrderAction.ADD, "o", BookSide.BID, 1.0, 1.0, None, 1, 1),
        L3Snapshot("coinbase", "BTC-USD", (), None, 1, 1),
        Connected("binance", 1, "wss://x", 1),
        Error("binance", None, ErrorKind.MALFORMED, "x", 1),
    ]
    for event in events:
        assert dedup.accept(1, event) and dedup.accept(2, event)
    assert dedup.stats.unkeyed == 2 * len(events) and dedup.stats.passed == 0


def test_forget_and_config() -> None:
    dedup = Deduplicator()
    dedup.accept(1, trade("1", 1))
    dedup.accept(1, trade("1", 1, symbol="ETH-USDT"))
    dedup.forget("binance", "BTC-USDT")
    assert dedup.accept(2, trade("1", 2))
    assert not dedup.accept(2, trade("1", 2, symbol="ETH-USDT"))
    dedup.forget("binance")
    assert dedup.spaces == 0
    dedup.remove_connection(1)
    assert 1 not in dedup.conns
    for kwargs in ({"max_keys": 0}, {"window_ns": 0}, {"lag_alpha": 0.0}, {"lag_alpha": 1.5}):
        with pytest.raises(ConfigError):
            Deduplicator(**kwargs)  # type: ignore[arg-type]


# A logical event stream, carried by several connections that each lose some
# events and lag by different amounts; merged by arrival time.
logical_trade = st.tuples(st.sampled_from(["id", "noid"]), st.integers(0, 5))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(logical_trade, min_size=1, max_size=60),
    st.lists(st.tuples(st.integers(0, 3 * MS), st.frozensets(st.integers(0, 59))), min_size=1, max_size=4),
    st.randoms(use_true_random=False),
)
def test_merged_stream_delivers_each_carried_event_exactly_once(
    logical: list[tuple[str, int]], conns: list[tuple[int, frozenset[int]]], rnd: random.Random
) -> None:
    # Logical trades: numbered ones get unique ids; unnumbered ones have only a
    # price (so identical payloads repeat). Each logical event happens 1 ms apart.
    events: list[Trade] = []
    for i, (kind, price) in enumerate(logical):
        if kind == "id":
            events.append(trade(str(i), 0, price=100.0 + price))
        else:
            events.append(trade(None, 0, price=100.0 + price, ts=None))
    arrivals: list[tuple[int, int, int]] = []  # (time, conn, index)
    carried: dict[int, set[int]] = {}
    for conn, (lag, lost) in enumerate(conns):
        t = 0
        carried[conn] = set()
        for i in range(len(events)):
            if i in lost:
                continue
            t = max(t, i * MS + lag + rnd.randrange(0, MS // 2))
            arrivals.append((t, conn, i))
            carried[conn].add(i)
    arrivals.sort()
    dedup = Deduplicator(window_ns=10**12)
    delivered: list[int] = []
    for t, conn, i in arrivals:
        ev = events[i]
        copy = Trade(ev.venue, ev.symbol, ev.price, ev.size, ev.side, ev.trade_id, ev.ts, t)
        if dedup.accept(conn, copy):
            delivered.append(i)
    any_carried = set().union(*carried.values())
    numbered = {i for i in any_carried if events[i].trade_id is not None}
    got_numbered = [i for i in delivered if events[i].trade_id is not None]
    assert sorted(got_numbered) == sorted(numbered)  # each numbered trade exactly once
    # unnumbered: per payload, as many as the connection that carried the most
    expected: Counter[float] = Counter()
    for price in {events[i].price for i in any_carried if events[i].trade_id is None}:
        expected[price] = max(
            sum(1 for i in carried[c] if events[i].trade_id is None and events[i].price == price) for c in carried
        )
    got = Counter(events[i].price for i in delivered if events[i].trade_id is None)
    assert got == expected


# --- Arbiter: market events, status, liveness ---------------------------------------


def test_arbiter_delegates_market_events_and_passes_status() -> None:
    arb = Arbiter()
    assert arb.accept(1, trade("1", 1)) and not arb.accept(2, trade("1", 2))
    assert arb.accept(1, quote(3, 1)) and not arb.accept(2, quote(3, 2))
    funding = Funding("binance-usdm", "X-Y-PERP", 0.1, None, None, None, 1)
    assert arb.accept(1, funding) and not arb.accept(2, funding)
    status: list[Event] = [
        Stale("binance", None, None, 5, 1),
        Error("binance", None, ErrorKind.MALFORMED, "x", 1),
        Gap("binance", "BTC-USDT", Channel.TRADES, GapReason.TRADE_ID, 5, 9, 1),
        Resynced("binance", "BTC-USDT", Channel.TRADES, None, 1),
    ]
    for event in status:
        assert arb.accept(1, event) and arb.accept(2, event)
    assert arb.stats.status_passed == 8
    assert arb.accept(2, Disconnected("binance", 2, "x", True, 5))
    assert not arb.conn(2).up
    assert arb.accept(2, Connected("binance", 2, "wss://x", 7))
    assert arb.conn(2).up and arb.conn(2).last_ns == 7


def test_primary_and_stalled() -> None:
    arb = Arbiter(stall_after_s=1.0)
    s = 1_000_000_000
    arb.add_connection(1, 0)
    arb.add_connection(2, 0)
    arb.add_connection(3, 0)
    assert arb.stalled(s // 2) == []  # nobody stalled yet
    assert arb.stalled(2 * s) == []  # everybody silent: quiet market, not a stall
    for i in range(50):
        t = 2 * s + i * MS
        arb.accept(1, trade(str(i), t + 3 * MS))
        arb.accept(2, trade(str(i), t))  # conn 2 always first
    now = 2 * s + 100 * MS
    assert arb.primary(now) == 2
    assert arb.stalled(now) == [3]  # conn 3 never carried anything
    assert arb.stalled(now, after_s=10.0) == []
    # conn 2 goes quiet for longer than stall_after: conn 1 leads now
    for i in range(50, 60):
        arb.accept(1, trade(str(i), now + s + i * MS))
    later = now + s + 70 * MS
    assert arb.stalled(later) == [2, 3]
    assert arb.primary(later) == 1
    arb.accept(1, Disconnected("binance", 1, "x", True, later))
    assert arb.primary(later) == 2  # lowest lag among the up ones (none fresh)
    assert arb.stalled(later) == []  # none of the up ones is fresh
    arb.accept(2, Disconnected("binance", 2, "x", True, later))
    arb.accept(3, Disconnected("binance", 3, "x", True, later))
    assert arb.primary(later) is None
    with pytest.raises(ConfigError):
        Arbiter(stall_after_s=0)


# --- Arbiter: the book rule ----------------------------------------------------------


def test_ordered_books_follow_the_leader_and_fall_back_on_a_gap() -> None:
    arb = Arbiter()
    assert arb.book_source("binance", "BTC-USDT") is None
    assert arb.accept(1, snapshot(100, 1))  # revalidates the merged view
    assert arb.accept(1, resynced(100, 1))
    assert not arb.accept(2, snapshot(100, 2))  # a backup synced: suppressed
    assert not arb.accept(2, resynced(100, 2))
    assert arb.book_source("binance", "BTC-USDT") == 1 and arb.book_valid("binance", "BTC-USDT")
    assert arb.accept(2, update(101, 3, first=101))  # conn 2 leads
    assert arb.book_source("binance", "BTC-USDT") == 2
    assert not arb.accept(1, update(101, 4, first=101))
    assert arb.accept(1, update(103, 5, first=102))  # conn 1 leads again
    assert not arb.accept(2, update(102, 6, first=102))  # stale copy (other batching)
    assert not arb.accept(2, update(103, 7, first=103))
    assert arb.valid_sources("binance", "BTC-USDT") == [1, 2]
    # the source breaks while conn 2 is valid: masked, no rebase needed
    assert not arb.accept(1, gap(8))
    assert arb.take_changes() == [SourceChange("binance", "BTC-USDT", Channel.BOOK, 1, 2, False, 8)]
    assert arb.book_source("binance", "BTC-USDT") == 2
    assert arb.accept(2, update(104, 9, first=104))
    # conn 1 resyncs below the mark: suppressed; above it: delivered (moves the caller forward)
    assert not arb.accept(1, snapshot(104, 10))
    assert not arb.accept(1, resynced(104, 10))
    assert arb.accept(1, snapshot(110, 11))
    assert not arb.accept(2, update(105, 12, first=105))
    # both break: the second gap is delivered, the view is invalid until a snapshot
    assert not arb.accept(2, gap(13))  # conn 2 is not the source (1 is, since its snapshot)
    assert arb.accept(1, gap(14))
    assert not arb.book_valid("binance", "BTC-USDT") and arb.book_source("binance", "BTC-USDT") is None
    assert not arb.accept(2, gap(15))  # already invalid
    assert not arb.accept(2, update(120, 16))  # no update before a snapshot revalidates
    assert arb.accept(2, snapshot(119, 17))
    assert arb.accept(2, resynced(119, 17))
    assert arb.accept(2, update(120, 18))
    assert arb.stats.jumps == 0
    arb._check()
    assert arb.stats.gaps_passed == 1 and arb.stats.source_changes == 1


def test_updates_of_one_frame_sharing_a_seq_all_pass() -> None:
    arb = Arbiter()
    arb.accept(1, snapshot(10, 1))
    assert arb.accept(1, update(11, 5, ((1.0, 1.0),)))
    assert arb.accept(1, update(11, 5, ((2.0, 1.0),)))  # same frame, same connection
    assert not arb.accept(2, update(11, 5, ((1.0, 1.0),)))  # same stamp, other connection


def test_jumps_are_counted() -> None:
    arb = Arbiter()
    arb.accept(1, snapshot(10, 1))
    assert arb.accept(1, update(20, 2, first=15))
    assert arb.stats.jumps == 1


def test_unordered_books_use_the_source_only_and_rebase_on_fallback() -> None:
    arb = Arbiter()
    k: dict[str, Any] = {"venue": "kraken", "symbol": "BTC-USD"}
    assert arb.accept(2, snapshot(None, 1, **k))
    assert not arb.accept(1, snapshot(None, 2, **k))
    assert arb.accept(2, update(None, 3, **k))
    assert not arb.accept(1, update(None, 2, **k))  # even when earlier: not the source
    assert not arb.accept(2, gap(4, **k))
    assert arb.take_changes() == [SourceChange("kraken", "BTC-USD", Channel.BOOK, 2, 1, True, 4)]
    assert arb.accept(1, update(None, 5, **k))
    assert not arb.accept(2, snapshot(None, 6, **k))
    # connection-numbered seqs (Bitfinex SEQ_ALL) are not comparable: unordered
    b: dict[str, Any] = {"venue": "bitfinex", "symbol": "BTC-USD"}
    assert arb.accept(1, snapshot(500, 1, **b))
    assert not arb.accept(2, update(900, 2, **b))
    assert arb.accept(1, update(501, 3, **b))
    arb._check()


def test_l3_books_and_venue_wide_gaps() -> None:
    arb = Arbiter()
    c: dict[str, Any] = {"venue": "coinbase", "symbol": "BTC-USD"}
    snap = L3Snapshot("coinbase", "BTC-USD", (), None, 1, 50)
    add = OrderUpdate("coinbase", "BTC-USD", OrderAction.ADD, "o", BookSide.BID, 1.0, 1.0, None, 2, 51)
    assert arb.accept(1, snap) and arb.accept(1, resynced(50, 1, channel=Channel.L3, **c))
    assert not arb.accept(2, snap)
    assert arb.accept(1, add) and not arb.accept(2, add)
    assert arb.book_source("coinbase", "BTC-USD", Channel.L3) == 1
    assert arb.book_source("coinbase", "BTC-USD") is None  # the L2 book is another book
    # a connection-wide gap (symbol "") invalidates every book of that connection
    arb.accept(1, snapshot(7, 1, **c))
    everything = Gap("coinbase", "", Channel.L3, GapReason.SEQUENCE, None, None, 9)
    assert not arb.accept(1, everything)  # conn 2 synced L3 too: it takes over
    assert arb.book_source("coinbase", "BTC-USD", Channel.L3) == 2
    assert arb.take_changes() == [SourceChange("coinbase", "BTC-USD", Channel.L3, 1, 2, False, 9)]
    assert arb.accept(2, attrs.evolve(everything, recv_ns=10))  # no valid connection left
    assert not arb.book_valid("coinbase", "BTC-USD", Channel.L3)
    assert arb.book_valid("coinbase", "BTC-USD")  # L2 untouched


def test_remove_connection_reports_books_left_without_a_source() -> None:
    arb = Arbiter()
    arb.accept(1, snapshot(10, 1))
    arb.accept(2, snapshot(10, 2))
    arb.accept(1, snapshot(5, 1, symbol="ETH-USDT"))
    assert arb.remove_connection(1, 99) == [
        Gap("binance", "ETH-USDT", Channel.BOOK, GapReason.DISCONNECT, None, None, 99, "connection removed")
    ]
    assert arb.book_source("binance", "BTC-USDT") == 2
    assert 1 not in arb.dedup.conns
    arb.forget("binance", "BTC-USDT")
    assert arb.book_source("binance", "BTC-USDT") is None
    arb._check()


# --- Arbiter: randomized redundancy simulation -------------------------------------


def simulate(seed: int, venue: str, n_conns: int, n_seq: int = 400) -> dict[str, int]:
    """Several connections carry one book with their own batching, lag and
    breaks; the caller applies what the arbiter delivers and must always hold
    the true book at the state it was told (or be told the book is invalid)."""
    rng = random.Random(seed)
    ordered = venue == "binance"
    truth: list[dict[float, float]] = [{}]
    changes: list[tuple[float, float]] = [(0.0, 0.0)]
    for _ in range(n_seq):
        price = float(rng.randint(1, 25))
        size = 0.0 if rng.random() < 0.3 else float(rng.randint(1, 9))
        state = dict(truth[-1])
        if size:
            state[price] = size
        else:
            state.pop(price, None)
        truth.append(state)
        changes.append((price, size))

    def levels(state: dict[float, float]) -> tuple[tuple[float, float], ...]:
        return tuple(sorted(state.items()))

    def batch(lo: int, hi: int) -> tuple[tuple[float, float], ...]:  # changes lo+1..hi, final sizes
        final: dict[float, float] = {}
        for k in range(lo + 1, hi + 1):
            price, size = changes[k]
            final[price] = size
        return tuple(sorted(final.items()))

    true_seq: dict[int, int] = {}  # id(event) -> the truth index it leads to
    timeline: list[tuple[int, int, int, Event]] = []  # (time, conn, order, event)
    order = 0
    for conn in range(1, n_conns + 1):
        lag = rng.randrange(0, 4 * MS)
        t = 0
        s = rng.randint(0, 20)
        pending_sync = True
        while s < n_seq:
            if pending_sync:
                t = max(t, s * MS + lag)
                snap = snapshot(s if ordered else None, t, levels(truth[s]), venue=venue)
                true_seq[id(snap)] = s
                timeline.append((t, conn, order, snap))
                timeline.append((t, conn, order + 1, resynced(s if ordered else None, t, venue=venue)))
                order += 2
                pending_sync = False
                continue
            hi = min(n_seq, s + rng.randint(1, 4))
            t = max(t, hi * MS + lag + rng.randrange(0, MS))
            if rng.random() < 0.03:  # this connection breaks, resyncs later
                timeline.append((t, conn, order, gap(t, venue=venue)))
                order += 1
                s = min(n_seq, s + rng.randint(3, 30))
                pending_sync = s < n_seq
                continue
            upd = update(hi if ordered else None, t, batch(s, hi), first=s + 1 if ordered else None, venue=venue)
            true_seq[id(upd)] = hi
            timeline.append((t, conn, order, upd))
            order += 1
            s = hi
    timeline.sort(key=lambda item: (item[0], item[1], item[2]))

    arb = Arbiter()
    conn_state: dict[int, int | None] = {}  # each connection's own book state (truth index)
    caller: dict[float, float] = {}
    caller_valid = False
    caller_seq = -1
    counts = Counter[str]()
    for _, conn, _, event in timeline:
        if isinstance(event, BookSnapshot | BookUpdate):
            conn_state[conn] = true_seq[id(event)]
        elif isinstance(event, Gap):
            conn_state[conn] = None
        ok = arb.accept(conn, event)
        arb._check()
        for change in arb.take_changes():
            counts["changes"] += 1
            assert change.rebase is not ordered
            if change.rebase:  # the multiplexer delivers the new source's book
                target = conn_state[change.new]
                assert target is not None
                caller = dict(truth[target])
                caller_seq = target
        if not ok:
            counts["suppressed"] += 1
            continue
        counts[type(event).__name__] += 1
        if isinstance(event, BookSnapshot):
            caller = dict(event.bids)
            caller_valid = True
            caller_seq = true_seq[id(event)]
        elif isinstance(event, BookUpdate):
            assert caller_valid
            for price, size in event.bids:
                if size:
                    caller[price] = size
                else:
                    caller.pop(price, None)
            new_seq = true_seq[id(event)]
            if ordered:
                assert new_seq > caller_seq or new_seq == caller_seq
            caller_seq = new_seq
        elif isinstance(event, Gap):
            caller_valid = False
        elif isinstance(event, Resynced):
            assert caller_valid
        if caller_valid:
            assert caller == truth[caller_seq], (seed, event)
            source = arb.book_source(venue, "BTC-USDT")
            assert source is not None and conn_state[source] is not None
            if not ordered:
                assert conn_state[source] == caller_seq
    assert caller_valid == arb.book_valid(venue, "BTC-USDT")
    return dict(counts)


@pytest.mark.parametrize("venue", ["binance", "kraken"])
@pytest.mark.parametrize("n_conns", [1, 2, 3])
def test_randomized_redundancy_keeps_the_callers_book_exact(venue: str, n_conns: int) -> None:
    totals: Counter[str] = Counter()
    for seed in range(40):
        totals.update(simulate(seed, venue, n_conns))
    assert totals["BookUpdate"] > 1000
    if n_conns > 1:
        assert totals["suppressed"] > 1000 and totals["changes"] > 0


def test_public_names() -> None:
    for name in reliability.__all__:
        assert getattr(reliability, name) is not None
    assert sorted(reliability.__all__) == sorted(set(reliability.__all__))
