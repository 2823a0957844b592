"""Kept text, compacted: a ``keep_text`` book keeps only the level text it
cannot prove it can re-create (``wsmux.book._orderbook``, "Kept text,
compacted"), and its text is still, level for level, the venue's latest
spelling."""

from __future__ import annotations

import random
import sys

import pytest

from wsmux.book import OrderBook
from wsmux.book._orderbook import TEXT_KEPT_BEYOND_TOP
from wsmux.model import BookSide

Text = tuple[str, str]


def fixed_levels(n: int, start: float, step: float) -> list[Text]:
    """Kraken-like text: two decimals for prices, eight for sizes."""
    return [(f"{start + i * step:.2f}", f"{1 + i % 7}.{i % 1000:03d}00000") for i in range(n)]


def full_text(book: OrderBook, side: BookSide) -> list[Text]:
    return book.text_depth(side, len(book))


def test_a_snapshot_keeps_only_the_top_text_of_regularly_spelled_levels() -> None:
    book = OrderBook(keep_text=True, watch_depth=10)
    bids = fixed_levels(1000, 30000.0, -0.01)
    asks = fixed_levels(1000, 30000.01, 0.01)
    assert book.apply_snapshot(bids, asks)
    book._check()
    keep = book.text_keep()
    assert keep == 20
    assert len(book._bids_text) == len(book._asks_text) == keep
    # and the dicts' tables shrank with them (a 1,000-entry dict is ~36 KiB)
    assert sys.getsizeof(book._bids_text) < 2000 and sys.getsizeof(book._asks_text) < 2000
    # every level's text is still the venue's, best first
    assert full_text(book, BookSide.BID) == bids
    assert full_text(book, BookSide.ASK) == asks


def test_a_rendered_level_is_kept_again_as_one_object() -> None:
    """A level rising into the checksummed top is rendered once: Kraken's
    checksum caches the stripped text by the pair, so the same pair must come
    back."""
    book = OrderBook(keep_text=True, watch_depth=10)
    assert book.apply_snapshot(fixed_levels(200, 100.0, -0.01), fixed_levels(200, 100.01, 0.01))
    keep = book.text_keep()
    rising = book._bid_keys[-keep - 1]  # the best level without kept text
    assert rising not in book._bids_text
    # the best level goes: the next one rises into the top
    best = book._bid_keys[-1]
    assert book.apply([(f"{best:.2f}", "0")], ()) is not None
    first = book.text_depth(BookSide.BID, keep)[-1]
    assert first == fixed_levels(200, 100.0, -0.01)[keep]
    assert book._bids_text[rising] is first
    assert book.text_depth(BookSide.BID, keep)[-1] is first
    # a full-depth read renders the deep levels without keeping them
    assert full_text(book, BookSide.BID) == fixed_levels(200, 100.0, -0.01)[1:]
    assert len(book._bids_text) == keep


def test_text_that_differs_from_the_rendering_is_kept() -> None:
    book = OrderBook(keep_text=True, watch_depth=1)
    bids = fixed_levels(100, 500.0, -1.0)
    bids[60] = ("440.0", bids[60][1])  # one decimal where the side has two
    bids[70] = (bids[70][0], "3.5")  # a size without the trailing zeros
    bids[80] = ("0420.00", bids[80][1])  # a leading zero
    assert book.apply_snapshot(bids, fixed_levels(3, 501.0, 1.0))
    book._check()
    assert set(book._bids_text) == {*book._bid_keys[-2:], 440.0, 430.0, 420.0}
    assert full_text(book, BookSide.BID) == bids


def test_no_renderer_when_the_top_is_spelled_irregularly() -> None:
    book = OrderBook(keep_text=True, watch_depth=1)
    bids = [("100.5", "1"), ("100", "1.25"), ("99.125", "2"), *fixed_levels(50, 98.0, -0.01)]
    assert book.apply_snapshot(bids, ())
    book._check()
    assert book._bid_render is None
    assert len(book._bids_text) == len(bids)
    assert full_text(book, BookSide.BID) == bids


def test_repr_spelling_is_recognised() -> None:
    """Bitfinex-like text: numbers as the shortest text that reads back."""
    book = OrderBook(keep_text=True, watch_depth=1)
    asks = [(repr(100 + i / 8), repr(0.5 + i / 1000)) for i in range(64)]
    assert book.apply_snapshot((), asks)
    book._check()
    assert book._ask_render is not None
    assert len(book._asks_text) == book.text_keep()
    assert full_text(book, BookSide.ASK) == asks


def test_missing_snapshot_text_is_never_rendered() -> None:
    book = OrderBook(keep_text=True, watch_depth=1)
    floats = [(100.0 - i, 1.0) for i in range(40)]
    texts = [(f"{p:.2f}", "1.00") for p, _ in floats[:-1]]  # the last level has no text
    assert book.apply_snapshot(floats, (), texts, ())
    assert book._bid_render is None
    with pytest.raises(KeyError):
        full_text(book, BookSide.BID)


def test_levels_set_without_text_make_that_side_unprovable() -> None:
    book = OrderBook(keep_text=True, watch_depth=1)
    assert book.apply_snapshot(fixed_levels(60, 100.0, -0.01), fixed_levels(60, 100.01, 0.01))
    assert book._bid_render is not None and book._ask_render is not None
    assert book.apply_update([(99.0, 2.0)], [], None, None)  # a level without its text
    assert book._bid_render is None and book._ask_render is not None
    with pytest.raises(KeyError):
        full_text(book, BookSide.BID)
    with pytest.raises(AssertionError, match="bid text out of step"):
        book._check()
    assert book.apply((), [(101.5, 1.0)], with_text=False) is not None
    assert book._ask_render is None


@pytest.mark.parametrize("seed", range(6))
def test_churn_keeps_every_level_s_latest_spelling_and_bounds_the_kept_text(seed: int) -> None:
    """Random updates over a 300-level book, a fifth of them spelled
    irregularly: after each, the book's text is the model's, and the kept
    text stays within its bound while the irregular entries are few."""
    rng = random.Random(seed)
    book = OrderBook(keep_text=True, watch_depth=10, max_depth=300)
    model: dict[BookSide, dict[float, Text]] = {BookSide.BID: {}, BookSide.ASK: {}}
    bids = fixed_levels(300, 1000.0, -0.01)
    asks = fixed_levels(300, 1000.01, 0.01)
    assert book.apply_snapshot(bids, asks)
    model[BookSide.BID] = {float(p): (p, s) for p, s in bids}
    model[BookSide.ASK] = {float(p): (p, s) for p, s in asks}
    cap = book.text_keep() + TEXT_KEPT_BEYOND_TOP
    for step in range(3000):
        side = rng.choice((BookSide.BID, BookSide.ASK))
        tick = rng.randrange(330)
        price = float(f"{1000.0 - tick * 0.01 if side is BookSide.BID else 1000.01 + tick * 0.01:.2f}")
        size = 0.0 if rng.random() < 0.3 else rng.randint(1, 99_999_999) / 1e8
        ptext = f"{price:.2f}"
        stext = f"{size:.8f}"
        if rng.random() < 0.2 and size:
            ptext, stext = (f"{price:.3f}", stext) if rng.random() < 0.5 else (ptext, repr(size))
        level = [(ptext, stext)]
        assert book.apply(level if side is BookSide.BID else (), level if side is BookSide.ASK else ()) is not None
        if size:
            model[side][price] = (ptext, stext)
        else:
            model[side].pop(price, None)
        if step % 100 == 99:
            book._check()
            for s, kept in ((BookSide.BID, book._bids), (BookSide.ASK, book._asks)):
                # the book trims to max_depth: compare the levels it holds
                expected = [model[s][p] for p in sorted(kept, reverse=s is BookSide.BID)]
                assert full_text(book, s) == expected
                assert set(kept) <= set(model[s])
    irregular = sum(
        1 for levels in model.values() for p, s in levels.values() if (p, s) != (f"{float(p):.2f}", f"{float(s):.8f}")
    )
    assert irregular > 20  # the test did exercise kept irregular text
    # irregular text is kept, the rest is within the bound
    bound = max(cap, 2 * (book.text_keep() + irregular))
    assert len(book._bids_text) <= bound and len(book._asks_text) <= bound


def test_copy_keeps_the_renderers() -> None:
    book = OrderBook(keep_text=True, watch_depth=1)
    bids = fixed_levels(80, 100.0, -0.01)
    assert book.apply_snapshot(bids, ())
    other = book.copy()
    other._check()
    assert full_text(other, BookSide.BID) == bids
