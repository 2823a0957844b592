"""OrderBook (L2): exact semantics, invariants under random and stateful use."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from wsmux.book import OrderBook
from wsmux.model import BookSide

BIDS = ((100.0, 1.0), (99.5, 3.0), (99.0, 2.0))
ASKS = ((100.5, 1.0), (101.0, 2.0), (102.0, 4.0))


def sample_book(**kw: object) -> OrderBook:
    book = OrderBook("v", "A-B", **kw)  # type: ignore[arg-type]
    assert book.apply_snapshot(BIDS, ASKS)
    book._check()
    return book


# --- snapshot / update semantics --------------------------------------------------------


def test_new_book_is_empty_and_invalid() -> None:
    book = OrderBook("v", "A-B")
    assert not book.valid and book.seq is None and book.ts is None and len(book) == 0
    assert book.best_bid() is None and book.best_ask() is None
    assert all(math.isnan(x) for x in book.bbo())
    assert math.isnan(book.spread()) and math.isnan(book.mid()) and math.isnan(book.imbalance())
    assert not book.crossed()
    assert book.depth() == ((), ())
    assert book.cost_to_fill(1.0, BookSide.ASK) == (0.0, 0.0)


def test_snapshot_sorts_and_replaces() -> None:
    book = OrderBook()
    assert book.apply_snapshot(reversed(BIDS), reversed(ASKS))
    assert book.depth() == (BIDS, ASKS)
    assert book.apply_snapshot([(50.0, 1.0)], [(60.0, 1.0)])
    assert book.depth() == (((50.0, 1.0),), ((60.0, 1.0),))
    assert len(book) == 2


def test_snapshot_of_text_or_int_pairs_holds_floats() -> None:
    """Two-item levels that are not float pairs (the venue's text, ints) are
    converted level by level: the book holds floats, zero sizes are skipped.
    Compiled by mypyc, ``_build_side``'s ``type(price) is float`` test is
    decided by the annotation instead: text pairs raised TypeError, int pairs
    stayed ints."""
    book = OrderBook()
    assert book.apply_snapshot([["100.0", "1"], ["99.5", "0"]], [("100.5", "2.50")])
    assert book.depth() == (((100.0, 1.0),), ((100.5, 2.5),))
    assert {type(x) for side in book.depth() for level in side for x in level} == {float}
    assert book.apply_snapshot([[100, 1]], [[101, 2]])
    assert book.depth() == (((100.0, 1.0),), ((101.0, 2.0),))
    assert {type(x) for side in book.depth() for level in side for x in level} == {float}
    book._check()


def test_update_sizes_are_absolute_and_zero_deletes() -> None:
    book = sample_book()
    assert book.apply_update([(99.5, 7.0), (100.0, 0.0), (98.0, 1.0)], [(101.0, 0.5)])
    assert book.depth() == (
        ((99.5, 7.0), (99.0, 2.0), (98.0, 1.0)),
        ((100.5, 1.0), (101.0, 0.5), (102.0, 4.0)),
    )
    assert book.size_at(BookSide.BID, 99.5) == 7.0
    assert book.size_at(BookSide.BID, 100.0) == 0.0
    assert book.size_at(BookSide.ASK, 101.0) == 0.5
    book._check()


def test_deleting_an_absent_level_is_fine() -> None:
    book = sample_book()
    assert book.apply_update([(42.0, 0.0)], [(420.0, 0.0)])
    assert book.depth() == (BIDS, ASKS)


def test_one_level_per_price_spelling() -> None:
    book = OrderBook(keep_text=True)
    assert book.apply_snapshot(
        [(float("0.3513"), float("10"))], [(float("0.3600"), 1.0)], (("0.3513", "10"),), (("0.3600", "1"),)
    )
    assert book.apply_update([(float("0.35130000"), float("12.50000000"))], [], (("0.35130000", "12.50000000"),), None)
    assert book.depth() == (((0.3513, 12.5),), ((0.36, 1.0),))
    assert len(book) == 2
    # the kept text is the venue's latest spelling of that level
    assert book.text_depth(BookSide.BID, 5) == [("0.35130000", "12.50000000")]
    assert book.text_depth(BookSide.ASK, 5) == [("0.3600", "1")]
    # a delete spelled differently removes the level and its text
    assert book.apply_update([(float("0.351300"), 0.0)], [], (("0.351300", "0.0000"),), None)
    assert book.depth(5) == ((), ((0.36, 1.0),))
    book._check()


def test_sides_are_independent() -> None:
    book = OrderBook()
    assert book.apply_update([(100.0, 1.0)], [(100.0, 2.0)])  # same price on both sides: two levels
    assert len(book) == 2
    assert book.size_at(BookSide.BID, 100.0) == 1.0 and book.size_at(BookSide.ASK, 100.0) == 2.0


# --- reading ----------------------------------------------------------------------------


def test_best_spread_mid_depth_exact() -> None:
    book = sample_book()
    assert book.best_bid() == (100.0, 1.0)
    assert book.best_ask() == (100.5, 1.0)
    assert book.bbo() == (100.0, 1.0, 100.5, 1.0)
    assert book.spread() == 0.5
    assert book.mid() == 100.25
    assert book.depth(2) == (BIDS[:2], ASKS[:2])
    assert book.depth(0) == ((), ())
    assert book.depth(10) == (BIDS, ASKS)
    assert list(book.levels(BookSide.BID)) == list(BIDS)
    assert list(book.levels(BookSide.ASK)) == list(ASKS)
    assert len(book) == 6


def test_one_sided_book() -> None:
    book = OrderBook()
    book.apply_update([(10.0, 1.0)], [])
    bp, bs, ap, az = book.bbo()
    assert (bp, bs) == (10.0, 1.0) and math.isnan(ap) and math.isnan(az)
    assert math.isnan(book.spread()) and math.isnan(book.mid())
    assert not book.crossed()
    assert book.imbalance() == 1.0


def test_imbalance_exact() -> None:
    book = sample_book()
    # best 1: bids 1, asks 1 -> 0; best 2: bids 4, asks 3 -> 1/7; all: bids 6, asks 7 -> -1/13
    assert book.imbalance(1) == 0.0
    assert book.imbalance(2) == (4.0 - 3.0) / 7.0
    assert book.imbalance(3) == (6.0 - 7.0) / 13.0
    assert book.imbalance(100) == book.imbalance(3)


def test_cost_to_fill_exact() -> None:
    book = sample_book()
    # buying takes asks: 1 @ 100.5, 2 @ 101, then 0.5 of 4 @ 102
    assert book.cost_to_fill(3.5, BookSide.ASK) == (3.5, 100.5 + 2 * 101.0 + 0.5 * 102.0)
    assert book.cost_to_fill(0.25, BookSide.ASK) == (0.25, 0.25 * 100.5)
    # exactly the first level
    assert book.cost_to_fill(1.0, BookSide.ASK) == (1.0, 100.5)
    # selling takes bids: 1 @ 100, 3 @ 99.5
    assert book.cost_to_fill(4.0, BookSide.BID) == (4.0, 100.0 + 3 * 99.5)
    # too thin: everything on the side
    assert book.cost_to_fill(100.0, BookSide.BID) == (6.0, 100.0 + 3 * 99.5 + 2 * 99.0)
    assert book.cost_to_fill(0.0, BookSide.ASK) == (0.0, 0.0)


def test_crossed_detection() -> None:
    book = sample_book()
    assert not book.crossed()
    book.apply_update([(100.5, 1.0)], [])  # bid == best ask: crossed (locked counts)
    assert book.crossed()
    book.apply_update([(100.5, 0.0)], [])
    assert not book.crossed()
    book.apply_update([], [(99.0, 1.0)])  # ask below the best bid
    assert book.crossed()
    book.valid = True
    with pytest.raises(AssertionError, match="crossed"):
        book._check()


# --- invalid input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "level",
    [(100.0, -1.0), (100.0, math.nan), (0.0, 1.0), (-5.0, 1.0), (math.nan, 1.0), (math.nan, 0.0), (-1.0, 0.0)],
    ids=["neg-size", "nan-size", "zero-price", "neg-price", "nan-price", "nan-price-delete", "neg-price-delete"],
)
@pytest.mark.parametrize("side", ["bid", "ask"])
def test_invalid_level_returns_false(level: tuple[float, float], side: str) -> None:
    book = sample_book()
    bids, asks = ([level], []) if side == "bid" else ([], [level])
    # the valid level in the same update is still applied
    bids.append((98.0, 5.0))
    assert book.apply_update(bids, asks) is False
    assert book.size_at(BookSide.BID, 98.0) == 5.0
    book._check()  # no invalid level was stored
    assert len(book) == 7


def test_invalid_snapshot_leaves_the_book_cleared() -> None:
    book = sample_book()
    assert book.apply_snapshot([(100.0, 1.0), (99.0, -2.0)], [(101.0, 1.0)]) is False
    assert len(book) == 0


# --- max_depth, keep_text, copy ---------------------------------------------------------------


def test_max_depth_trims_the_worst_levels() -> None:
    book = OrderBook(max_depth=2)
    assert book.apply_snapshot(BIDS, ASKS)
    assert book.depth() == (BIDS[:2], ASKS[:2])
    book.apply_update([(100.25, 1.0)], [(100.75, 1.0)])  # better levels push out the 2nd best
    assert book.depth() == (((100.25, 1.0), (100.0, 1.0)), ((100.5, 1.0), (100.75, 1.0)))
    book.apply_update([(98.0, 1.0)], [])  # worse than the depth: not kept
    assert book.depth()[0] == ((100.25, 1.0), (100.0, 1.0))
    book.apply_update([(100.25, 0.0)], [])  # a delete leaves a hole (no refill from nowhere)
    assert book.depth()[0] == ((100.0, 1.0),)
    book._check()
    book.trim(1)
    assert book.depth() == (((100.0, 1.0),), ((100.5, 1.0),))


def test_keep_text_follows_levels_through_trim_and_delete() -> None:
    book = OrderBook(max_depth=2, keep_text=True)
    bids_text = (("100.0", "1"), ("99.50", "3"), ("99.0", "2"))
    asks_text = (("100.5", "1"), ("101.00", "2"), ("102", "4"))
    assert book.apply_snapshot(BIDS, ASKS, bids_text, asks_text)
    book._check()
    assert book.text_depth(BookSide.BID, 10) == [("100.0", "1"), ("99.50", "3")]
    assert book.text_depth(BookSide.ASK, 1) == [("100.5", "1")]
    book.apply_update([(100.0, 0.0)], [(100.25, 1.0)], (("100.00", "0"),), (("100.250", "1.0"),))
    book._check()
    assert book.text_depth(BookSide.BID, 10) == [("99.50", "3")]
    assert book.text_depth(BookSide.ASK, 10) == [("100.250", "1.0"), ("100.5", "1")]
    book.trim(1)
    book._check()
    assert book.text_depth(BookSide.ASK, 10) == [("100.250", "1.0")]


def test_check_detects_text_out_of_step() -> None:
    book = OrderBook(keep_text=True)
    book.apply_update([(1.0, 1.0)], [], None, None)  # levels without their text
    with pytest.raises(AssertionError, match="text out of step"):
        book._check()


def test_copy_is_independent() -> None:
    book = sample_book(keep_text=False)
    book.valid, book.seq, book.ts = True, 17, 99
    other = book.copy()
    assert other == book and other is not book
    assert (other.valid, other.seq, other.ts, other.venue, other.symbol) == (True, 17, 99, "v", "A-B")
    other.apply_update([(100.0, 0.0)], [(100.5, 9.0)])
    assert book.depth() == (BIDS, ASKS)
    book.apply_update([(99.0, 0.0)], [])
    assert other.size_at(BookSide.BID, 99.0) == 2.0
    assert other != book


def test_copy_keeps_text_independently() -> None:
    book = OrderBook(max_depth=5, keep_text=True)
    book.apply_snapshot([(1.0, 1.0)], [(2.0, 1.0)], (("1.0", "1"),), (("2.0", "1"),))
    other = book.copy()
    assert other.max_depth == 5 and other.keep_text
    other.apply_update([(1.0, 0.0)], [], (("1.0", "0"),), None)
    other._check()
    book._check()
    assert book.text_depth(BookSide.BID, 1) == [("1.0", "1")]


def test_equality_is_by_levels() -> None:
    a, b = sample_book(), sample_book()
    a.seq, b.seq = 1, 2
    assert a == b
    b.apply_update([(1.0, 1.0)], [])
    assert a != b
    assert (a == "book") is False


# --- a naive model to compare against ------------------------------------------------------


class NaiveBook:
    """The obvious implementation: two dicts, sorted on every read."""

    def __init__(self, max_depth: int | None) -> None:
        self.max_depth = max_depth
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bids_text: dict[float, tuple[str, str]] = {}
        self.asks_text: dict[float, tuple[str, str]] = {}

    def apply(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        for levels, side, text in ((bids, self.bids, self.bids_text), (asks, self.asks, self.asks_text)):
            for ptext, stext in levels:
                p, s = float(ptext), float(stext)
                if s == 0.0:
                    side.pop(p, None)
                    text.pop(p, None)
                else:
                    side[p] = s
                    text[p] = (ptext, stext)
        if self.max_depth is not None:
            self.trim(self.max_depth)

    def snapshot(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.bids.clear()
        self.asks.clear()
        self.bids_text.clear()
        self.asks_text.clear()
        self.apply(bids, asks)

    def trim(self, depth: int) -> None:
        for side, text, reverse in ((self.bids, self.bids_text, True), (self.asks, self.asks_text, False)):
            for p in sorted(side, reverse=reverse)[depth:]:
                del side[p]
                del text[p]

    def depth(self) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        return (
            tuple(sorted(self.bids.items(), reverse=True)),
            tuple(sorted(self.asks.items())),
        )

    def text(self, side: BookSide) -> list[tuple[str, str]]:
        if side is BookSide.BID:
            return [self.bids_text[p] for p in sorted(self.bids, reverse=True)]
        return [self.asks_text[p] for p in sorted(self.asks)]


def assert_same(book: OrderBook, model: NaiveBook) -> None:
    book._check()
    depth = model.depth()
    assert book.depth() == depth
    assert len(book) == len(depth[0]) + len(depth[1])
    assert book.best_bid() == (depth[0][0] if depth[0] else None)
    assert book.best_ask() == (depth[1][0] if depth[1] else None)
    assert book.crossed() == bool(depth[0] and depth[1] and depth[0][0][0] >= depth[1][0][0])
    if book.keep_text:
        assert book.text_depth(BookSide.BID, 10_000) == model.text(BookSide.BID)
        assert book.text_depth(BookSide.ASK, 10_000) == model.text(BookSide.ASK)


def spell(rng: random.Random, value: float) -> str:
    """A decimal text of ``value`` with a random number of trailing zeros."""
    text = repr(value)
    return text + "0" * rng.randrange(4)


def random_levels(rng: random.Random, n: int, lo: int, hi: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        price = rng.randrange(lo, hi) / 4  # quarter ticks: exact floats, many collisions
        size = 0.0 if rng.random() < 0.3 else rng.randrange(1, 40) / 8
        out.append((spell(rng, price), spell(rng, size)))
    return out


def as_floats(levels: list[tuple[str, str]]) -> list[tuple[float, float]]:
    return [(float(p), float(s)) for p, s in levels]


@pytest.mark.parametrize("seed", range(40))
def test_seeded_random_operations_match_the_naive_model(seed: int) -> None:
    rng = random.Random(seed)
    max_depth = rng.choice([None, None, 1, 3, 10])
    book = OrderBook(max_depth=max_depth, keep_text=True)
    model = NaiveBook(max_depth)
    for _ in range(300):
        op = rng.random()
        # bids mostly below asks, with an overlap band so crossed books happen too
        bids = random_levels(rng, rng.randrange(0, 8), 300, 420)
        asks = random_levels(rng, rng.randrange(0, 8), 400, 520)
        if op < 0.05:
            assert book.apply_snapshot(as_floats(bids), as_floats(asks), tuple(bids), tuple(asks))
            model.snapshot(bids, asks)
        elif op < 0.1 and max_depth is None:
            depth = rng.randrange(0, 20)
            book.trim(depth)
            model.trim(depth)
        else:
            assert book.apply_update(as_floats(bids), as_floats(asks), tuple(bids), tuple(asks))
            model.apply(bids, asks)
        assert_same(book, model)
        if rng.random() < 0.05:
            clone = book.copy()
            assert_same(clone, model)
            clone.apply_update([(1.0, 1.0)], [], (("1.0", "1.0"),), None)
            assert_same(book, model)


# --- a Hypothesis state machine ---------------------------------------------------------------

PRICE_TICKS = st.integers(1, 40)
SIZES = st.sampled_from([0.0, 0.0, 0.125, 1.0, 2.5, 10.0])
ZEROS = st.integers(0, 3)


@st.composite
def text_levels(draw: st.DrawFn) -> list[tuple[str, str]]:
    n = draw(st.integers(0, 6))
    out = []
    for _ in range(n):
        price = draw(PRICE_TICKS) / 2
        size = draw(SIZES)
        out.append((repr(price) + "0" * draw(ZEROS), repr(size) + "0" * draw(ZEROS)))
    return out


class OrderBookMachine(RuleBasedStateMachine):
    book: OrderBook
    model: NaiveBook

    @initialize(max_depth=st.one_of(st.none(), st.integers(1, 6)))
    def start(self, max_depth: int | None) -> None:
        self.book = OrderBook("v", "A-B", max_depth=max_depth, keep_text=True)
        self.model = NaiveBook(max_depth)

    @rule(bids=text_levels(), asks=text_levels())
    def update(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        assert self.book.apply_update(as_floats(bids), as_floats(asks), tuple(bids), tuple(asks))
        self.model.apply(bids, asks)

    @rule(bids=text_levels(), asks=text_levels())
    def snapshot(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        assert self.book.apply_snapshot(as_floats(bids), as_floats(asks), tuple(bids), tuple(asks))
        self.model.snapshot(bids, asks)

    @rule(depth=st.integers(0, 8))
    def trim(self, depth: int) -> None:
        self.book.trim(depth)
        self.model.trim(depth)

    @rule(price=PRICE_TICKS, size=st.sampled_from([-1.0, math.nan]))
    def bad_level(self, price: int, size: float) -> None:
        # an invalid level is refused (False) and not stored; the book stays consistent
        assert self.book.apply_update([(price / 2, size)], [], None, None) is False

    @precondition(lambda self: len(self.book) > 0)
    @rule()
    def copy_then_clear(self) -> None:
        clone = self.book.copy()
        clone.clear()
        assert len(clone) == 0

    @rule()
    def clear(self) -> None:
        self.book.clear()
        self.model.snapshot([], [])

    @invariant()
    def matches_model(self) -> None:
        assert_same(self.book, self.model)

    @invariant()
    def readers_agree(self) -> None:
        book = self.book
        bids, asks = book.depth()
        if bids and asks:
            assert book.spread() == asks[0][0] - bids[0][0]
            assert book.mid() == (asks[0][0] + bids[0][0]) / 2
        for side, levels in ((BookSide.BID, bids), (BookSide.ASK, asks)):
            for price, size in levels:
                assert book.size_at(side, price) == size
            total = sum(s for _, s in levels)
            filled, notional = book.cost_to_fill(total + 1.0, side)
            assert filled == total
            assert notional == pytest.approx(sum(p * s for p, s in levels))


OrderBookMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestOrderBookMachine = OrderBookMachine.TestCase
