"""Tests for wsmux.book.l3.L3Book: unit tests, a seeded random stress test and a
Hypothesis state machine, each checking ``_check()`` and a naive model after
every operation."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from wsmux.book import l3
from wsmux.book.l3 import (
    DuplicateOrder,
    InvalidOrder,
    L3Book,
    L3Order,
    OrderId,
    UnknownOrder,
)
from wsmux.errors import BookError, WsmuxError
from wsmux.model import BookSide

BID = BookSide.BID
ASK = BookSide.ASK


# --- naive model ------------------------------------------------------------------


class NaiveL3:
    """The obvious, slow implementation: a dict of orders with arrival numbers."""

    def __init__(self) -> None:
        self.orders: dict[OrderId, tuple[BookSide, float, float, int]] = {}
        self.arrivals = 0

    def _next(self) -> int:
        self.arrivals += 1
        return self.arrivals

    @staticmethod
    def valid(price: float, size: float) -> bool:
        return math.isfinite(price) and math.isfinite(size) and size > 0

    def add(self, oid: OrderId, side: BookSide, price: float, size: float) -> bool:
        if oid in self.orders or not self.valid(price, size):
            return False
        self.orders[oid] = (side, price, size, self._next())
        return True

    def change(self, oid: OrderId, size: float) -> bool:
        if oid not in self.orders or not (math.isfinite(size) and size >= 0):
            return False
        if size == 0:
            del self.orders[oid]
        else:
            side, price, _, arrival = self.orders[oid]
            self.orders[oid] = (side, price, size, arrival)
        return True

    def remove(self, oid: OrderId) -> bool:
        return self.orders.pop(oid, None) is not None

    def upsert(self, oid: OrderId, side: BookSide, price: float, size: float) -> bool:
        if not self.valid(price, size):
            return False
        old = self.orders.get(oid)
        if old is not None and old[0] is side and old[1] == price:
            self.orders[oid] = (side, price, size, old[3])
        else:
            self.orders[oid] = (side, price, size, self._next())
        return True

    def clear(self) -> None:
        self.orders = {}

    def snapshot(self, orders: Iterable[tuple[OrderId, BookSide, float, float]]) -> int:
        self.clear()
        return sum(not self.add(*o) for o in orders)

    def side_levels(self, side: BookSide) -> list[tuple[float, list[tuple[OrderId, float]]]]:
        """Levels best first; each with its orders in arrival order."""
        by_price: dict[float, list[tuple[int, OrderId, float]]] = {}
        for oid, (s, price, size, arrival) in self.orders.items():
            if s is side:
                by_price.setdefault(price, []).append((arrival, oid, size))
        prices = sorted(by_price, reverse=side is BID)
        return [(p, [(oid, size) for _, oid, size in sorted(by_price[p])]) for p in prices]


def assert_same(book: L3Book, model: NaiveL3) -> None:
    book._check()
    assert len(book) == len(model.orders)
    depth = book.depth()
    for side, got_levels in ((BID, depth[0]), (ASK, depth[1])):
        want = model.side_levels(side)
        assert [p for p, _ in got_levels] == [p for p, _ in want]
        assert book.level_count(side) == len(want)
        for (price, total), (_, orders) in zip(got_levels, want, strict=True):
            exact = math.fsum(size for _, size in orders)
            assert math.isclose(total, exact, rel_tol=1e-9), (side, price, total, exact)
            level = book.level(side, price)
            assert level is not None and level[1] == len(orders)
            got_orders = book.orders_at(price, side)
            assert [(o.order_id, o.size) for o in got_orders] == orders
        best = book.best_bid() if side is BID else book.best_ask()
        if want:
            assert best is not None and best[0] == want[0][0]
            assert best == got_levels[0]
        else:
            assert best is None
    for oid, (side, price, size, _) in model.orders.items():
        assert book.get(oid) == L3Order(oid, side, price, size)
        assert oid in book


# --- unit tests ---------------------------------------------------------------------


def make_book() -> L3Book:
    book = L3Book("coinbase", "BTC-USD")
    assert book.add("a", BID, 100.0, 1.0)
    assert book.add("b", BID, 100.0, 2.0)
    assert book.add("c", BID, 99.5, 0.5)
    assert book.add(7, ASK, 101.0, 3.0)
    assert book.add(8, ASK, 102.0, 1.25)
    book._check()
    return book


def test_empty_book() -> None:
    book = L3Book()
    assert len(book) == 0
    assert book.best_bid() is None and book.best_ask() is None
    assert book.depth() == ((), ())
    assert book.depth(5) == ((), ())
    assert book.orders_at(1.0, BID) == ()
    assert book.level(BID, 1.0) is None
    assert book.size_at(ASK, 1.0) == 0.0
    assert not book.crossed()
    book._check()


def test_aggregates_best_and_depth() -> None:
    book = make_book()
    assert len(book) == 5
    assert book.best_bid() == (100.0, 3.0)
    assert book.best_ask() == (101.0, 3.0)
    assert book.depth() == (((100.0, 3.0), (99.5, 0.5)), ((101.0, 3.0), (102.0, 1.25)))
    assert book.depth(1) == (((100.0, 3.0),), ((101.0, 3.0),))
    assert book.depth(0) == ((), ())
    assert book.depth(50) == book.depth()
    assert book.level(BID, 100.0) == (3.0, 2)
    assert book.level(ASK, 102.0) == (1.25, 1)
    assert book.level(ASK, 100.0) is None
    assert book.size_at(BID, 99.5) == 0.5
    assert list(book.levels(ASK)) == [(101.0, 3.0), (102.0, 1.25)]
    assert list(book.levels(BID, 1)) == [(100.0, 3.0)]
    assert book.level_count(BID) == 2 and book.level_count(ASK) == 2
    assert not book.crossed()


def test_orders_at_is_fifo() -> None:
    book = make_book()
    assert book.add("d", BID, 100.0, 4.0)
    assert [o.order_id for o in book.orders_at(100.0, BID)] == ["a", "b", "d"]
    assert book.orders_at(100.0, BID)[0] == L3Order("a", BID, 100.0, 1.0)
    assert book.orders_at(100.0, ASK) == ()


def test_change_keeps_queue_position() -> None:
    book = make_book()
    assert book.change("a", 0.25)
    assert [(o.order_id, o.size) for o in book.orders_at(100.0, BID)] == [
        ("a", 0.25),
        ("b", 2.0),
    ]
    assert book.level(BID, 100.0) == (2.25, 2)
    assert book.get("a") == L3Order("a", BID, 100.0, 0.25)
    book._check()


def test_change_to_zero_removes() -> None:
    book = make_book()
    assert book.change("c", 0.0)
    assert "c" not in book
    assert book.level(BID, 99.5) is None
    assert len(book) == 4
    book._check()


def test_remove_deletes_empty_level() -> None:
    book = make_book()
    assert book.remove(7)
    assert book.best_ask() == (102.0, 1.25)
    assert book.level_count(ASK) == 1
    assert book.remove("a")
    assert book.level(BID, 100.0) == (2.0, 1)
    assert book.remove("b")
    assert book.best_bid() == (99.5, 0.5)
    book._check()


def test_unknown_id_returns_false_or_raises() -> None:
    book = make_book()
    before = book.depth()
    assert not book.remove("nope")
    assert not book.change("nope", 1.0)
    assert not book.remove("7")  # the int 7 is in the book, the string is not
    assert book.depth() == before
    with pytest.raises(UnknownOrder):
        book.remove("nope", strict=True)
    with pytest.raises(UnknownOrder):
        book.change("nope", 1.0, strict=True)
    assert book.depth() == before
    book._check()


def test_duplicate_add_returns_false_or_raises() -> None:
    book = make_book()
    assert not book.add("a", ASK, 200.0, 9.0)
    assert book.get("a") == L3Order("a", BID, 100.0, 1.0)
    with pytest.raises(DuplicateOrder):
        book.add("a", BID, 100.0, 1.0, strict=True)
    assert len(book) == 5
    book._check()


@pytest.mark.parametrize(
    ("price", "size"),
    [
        (math.nan, 1.0),
        (math.inf, 1.0),
        (100.0, 0.0),
        (100.0, -1.0),
        (100.0, math.nan),
        (100.0, math.inf),
    ],
)
def test_invalid_add(price: float, size: float) -> None:
    book = make_book()
    assert not book.add("x", BID, price, size)
    assert "x" not in book
    with pytest.raises(InvalidOrder):
        book.add("x", BID, price, size, strict=True)
    book._check()


def test_invalid_side() -> None:
    book = L3Book()
    assert not book.add("x", "bid", 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrder):
        book.add("x", "bid", 1.0, 1.0, strict=True)  # type: ignore[arg-type]
    assert len(book) == 0


@pytest.mark.parametrize("size", [-0.5, math.nan, math.inf])
def test_invalid_change(size: float) -> None:
    book = make_book()
    assert not book.change("a", size)
    assert book.get("a") == L3Order("a", BID, 100.0, 1.0)
    with pytest.raises(InvalidOrder):
        book.change("a", size, strict=True)
    book._check()


def test_errors_are_book_errors() -> None:
    for cls in (DuplicateOrder, UnknownOrder, InvalidOrder):
        assert issubclass(cls, BookError)
        assert issubclass(cls, WsmuxError)


def test_upsert_same_price_keeps_position() -> None:
    book = make_book()
    assert book.upsert("a", BID, 100.0, 5.0)
    assert [o.order_id for o in book.orders_at(100.0, BID)] == ["a", "b"]
    assert book.level(BID, 100.0) == (7.0, 2)
    book._check()


def test_upsert_new_price_or_side_moves_to_back() -> None:
    book = make_book()
    assert book.upsert("a", BID, 99.5, 1.0)
    assert [o.order_id for o in book.orders_at(99.5, BID)] == ["c", "a"]
    assert book.level(BID, 100.0) == (2.0, 1)
    assert book.upsert("b", ASK, 101.0, 2.0)
    assert [o.order_id for o in book.orders_at(101.0, ASK)] == [7, "b"]
    assert book.level(BID, 100.0) is None
    assert book.upsert("new", ASK, 103.0, 1.0)
    assert book.best_bid() == (99.5, 1.5)
    assert not book.upsert("a", BID, 99.0, -1.0)
    assert book.get("a") == L3Order("a", BID, 99.5, 1.0)
    book._check()


def test_snapshot_replaces_and_counts_rejects() -> None:
    book = make_book()
    rejected = book.snapshot(
        [
            (1, BID, 10.0, 1.0),
            (2, ASK, 11.0, 2.0),
            (1, ASK, 12.0, 1.0),  # duplicate id
            (3, ASK, 11.0, -2.0),  # invalid size
            L3Order(4, ASK, 11.0, 0.5),
        ]
    )
    assert rejected == 2
    assert len(book) == 3
    assert "a" not in book
    assert book.depth() == (((10.0, 1.0),), ((11.0, 2.5),))
    assert [o.order_id for o in book.orders_at(11.0, ASK)] == [2, 4]
    book._check()


def test_strict_snapshot_failure_keeps_previous_book() -> None:
    book = make_book()
    before = book.depth()
    with pytest.raises(DuplicateOrder):
        book.snapshot([(1, BID, 10.0, 1.0), (1, BID, 10.0, 1.0)], strict=True)
    assert book.depth() == before
    assert len(book) == 5
    book._check()


def test_clear() -> None:
    book = make_book()
    book.clear()
    assert len(book) == 0 and book.depth() == ((), ())
    assert book.add("a", BID, 1.0, 1.0)  # the id is free again
    book._check()


def test_crossed() -> None:
    book = make_book()
    assert not book.crossed()
    book.add("x", BID, 101.0, 1.0)
    assert book.crossed()


def test_totals_survive_cancellation() -> None:
    book = L3Book()
    book.add(1, BID, 5.0, 1e20)
    book.add(2, BID, 5.0, 1.0)
    book.add(3, BID, 5.0, 1.0)
    book.remove(1)
    assert book.level(BID, 5.0) == (2.0, 2)
    book.change(2, 1e16)
    book.change(2, 3e-8)
    assert book.level(BID, 5.0) == (1.00000003, 2)
    book._check()


def test_totals_resummed_after_removing_dominant_order() -> None:
    # Compensated summation alone leaves a 6e-9 relative error here; the exact
    # re-sum when a removal exceeds what remains brings it back.
    book = L3Book()
    for oid, size in enumerate([1e-8, 1e-8, 1e16, 5e-8, 0.7, 0.2]):
        book.add(oid, ASK, 3.0, size)
    for oid in (5, 4, 3, 2):
        book.remove(oid)
    assert book.level(ASK, 3.0) == (2e-8, 2)
    book._check()


def test_single_order_level_total_is_exact() -> None:
    book = L3Book()
    for oid, size in enumerate([0.3, 1e16, 0.1]):
        book.add(oid, BID, 3.0, size)
    book.remove(2)
    book.remove(1)
    assert book.best_bid() == (3.0, 0.3)


def test_totals_exact_for_single_order_after_many_changes() -> None:
    book = L3Book()
    book.add(1, ASK, 1.0, 0.1)
    book.add(2, ASK, 1.0, 0.2)
    for i in range(1000):
        book.change(2, 0.1 * (i % 7 + 1))
    book.remove(2)
    assert book.best_ask() == (1.0, 0.1)


def test_check_detects_corruption() -> None:
    book = make_book()
    level = book._bids[100.0]
    level.total += 1.0
    with pytest.raises(AssertionError):
        book._check()
    level.total -= 1.0
    book._check()
    del book._orders["c"]
    with pytest.raises(AssertionError):
        book._check()


def test_repr() -> None:
    book = make_book()
    assert repr(book) == ("<L3Book coinbase:BTC-USD invalid seq=None orders=5 bid_levels=2 ask_levels=2>")


def test_module_exports() -> None:
    for name in l3.__all__:
        assert hasattr(l3, name), name


# --- seeded random stress ---------------------------------------------------------


PRICES = [99.0, 99.5, 100.0, 100.5, 101.0, 0.1 + 0.2, 0.3, 1e-8]


def random_size(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.05:
        return rng.choice([1e-8, 1e12, 0.1, 0.2, 0.3])
    if r < 0.08:
        return rng.choice([0.0, -1.0, math.nan, math.inf])  # invalid
    return round(rng.uniform(0.0001, 50.0), rng.randint(0, 8)) or 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 20260501])
def test_random_stress_against_model(seed: int) -> None:
    rng = random.Random(seed)
    book = L3Book()
    model = NaiveL3()
    ids: list[OrderId] = [*range(60), *(f"o{i}" for i in range(60))]
    counts = dict.fromkeys(["add", "change", "remove", "upsert", "snap", "clear"], 0)
    got: object
    want: object
    for _ in range(3000):
        r = rng.random()
        oid = rng.choice(ids)
        side = rng.choice((BID, ASK))
        price = rng.choice(PRICES)
        if r < 0.45:
            size = random_size(rng)
            got, want = book.add(oid, side, price, size), model.add(oid, side, price, size)
            counts["add"] += 1
        elif r < 0.65:
            size = 0.0 if rng.random() < 0.2 else random_size(rng)
            got, want = book.change(oid, size), model.change(oid, size)
            counts["change"] += 1
        elif r < 0.85:
            got, want = book.remove(oid), model.remove(oid)
            counts["remove"] += 1
        elif r < 0.995:
            size = random_size(rng)
            got, want = book.upsert(oid, side, price, size), model.upsert(oid, side, price, size)
            counts["upsert"] += 1
        elif r < 0.998:
            orders = [
                (rng.choice(ids), rng.choice((BID, ASK)), rng.choice(PRICES), random_size(rng))
                for _ in range(rng.randint(0, 80))
            ]
            got, want = book.snapshot(orders), model.snapshot(orders)
            counts["snap"] += 1
        else:
            book.clear()
            model.clear()
            got = want = None
            counts["clear"] += 1
        assert got == want
        assert_same(book, model)
    assert all(counts.values()), counts


# --- Hypothesis state machine ---------------------------------------------------

order_ids = st.one_of(st.integers(0, 12), st.sampled_from(["a", "b", "c", "d"]))
sides = st.sampled_from([BID, ASK])
prices = st.sampled_from(PRICES)
sizes = st.one_of(
    st.sampled_from([1e-8, 0.1, 0.2, 0.3, 1.0, 1e8, 1e12]),
    st.floats(min_value=1e-8, max_value=1e9),
)
any_sizes = st.one_of(sizes, st.sampled_from([0.0, -1.0, math.nan, math.inf]))


class L3BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = L3Book()
        self.model = NaiveL3()

    @rule(oid=order_ids, side=sides, price=prices, size=any_sizes)
    def add(self, oid: OrderId, side: BookSide, price: float, size: float) -> None:
        assert self.book.add(oid, side, price, size) == self.model.add(oid, side, price, size)

    @rule(oid=order_ids, side=sides, price=prices, size=any_sizes)
    def add_strict(self, oid: OrderId, side: BookSide, price: float, size: float) -> None:
        duplicate = oid in self.model.orders
        valid = NaiveL3.valid(price, size)
        if duplicate or not valid:
            with pytest.raises(DuplicateOrder if duplicate else InvalidOrder):
                self.book.add(oid, side, price, size, strict=True)
        else:
            assert self.book.add(oid, side, price, size, strict=True)
            assert self.model.add(oid, side, price, size)

    @rule(oid=order_ids, size=any_sizes)
    def change(self, oid: OrderId, size: float) -> None:
        assert self.book.change(oid, size) == self.model.change(oid, size)

    @rule(oid=order_ids)
    def remove(self, oid: OrderId) -> None:
        assert self.book.remove(oid) == self.model.remove(oid)

    @rule(oid=order_ids)
    def remove_strict(self, oid: OrderId) -> None:
        if oid in self.model.orders:
            assert self.book.remove(oid, strict=True)
            self.model.remove(oid)
        else:
            with pytest.raises(UnknownOrder):
                self.book.remove(oid, strict=True)

    @rule(oid=order_ids, side=sides, price=prices, size=any_sizes)
    def upsert(self, oid: OrderId, side: BookSide, price: float, size: float) -> None:
        got = self.book.upsert(oid, side, price, size)
        assert got == self.model.upsert(oid, side, price, size)

    @rule(orders=st.lists(st.tuples(order_ids, sides, prices, any_sizes), max_size=20))
    def snapshot(self, orders: list[tuple[OrderId, BookSide, float, float]]) -> None:
        assert self.book.snapshot(orders) == self.model.snapshot(orders)

    @rule()
    def clear(self) -> None:
        self.book.clear()
        self.model.clear()

    @invariant()
    def matches_model(self) -> None:
        assert_same(self.book, self.model)


TestL3BookMachine = L3BookMachine.TestCase
TestL3BookMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
