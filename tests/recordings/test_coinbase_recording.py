"""Replay a real Coinbase Exchange recording through CoinbaseAdapter + Feed.

``COINBASE.ws.28.0`` (2021, then "Coinbase Pro") carries ``level2`` snapshots
and updates, ``ticker`` and ``matches`` (with ``last_match``) for 10 products.
The replay checks:

* every book, built from its snapshot and updates, is valid and never crossed
  after any update (checked in the sink, after every event), and at the end
  equals a reference book built here independently with ``Decimal``;
* no false gaps: zero ``Gap`` and zero ``Error`` events; per product the
  ``matches`` trade ids are contiguous from ``last_match`` on, and the
  ``sequence`` of trades and of tickers strictly increases (with jumps: it is
  the product's full-feed sequence), every ticker pairing with a match;
* exact event counts.

The recordings live outside the repository (``../shared/recordings``); the
test skips when they are absent.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from wsmux._pipeline import Feed
from wsmux.exchanges.coinbase import CoinbaseAdapter
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Error,
    Event,
    Gap,
    Quote,
    Resynced,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"
RECORDING = RECORDINGS / "COINBASE.ws.28.0"

PRODUCTS = [
    "SKL-USD",
    "SKL-BTC",
    "BAND-GBP",
    "NMR-EUR",
    "BAND-BTC",
    "YFI-BTC",
    "DASH-BTC",
    "NU-GBP",
    "CRV-EUR",
    "SKL-GBP",
]
CHANNELS = {"level2": Channel.BOOK, "ticker": Channel.QUOTES, "matches": Channel.TRADES}

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not RECORDING.is_file(), reason=f"recordings not found at {RECORDINGS}"),
]


def lines(path: Path) -> Iterator[tuple[str, float, str]]:
    """``(direction, time, text)`` per line: ``"sent"`` or ``"recv"``."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or "<->" in line:
                continue
            if line.startswith("wss://"):
                _, _, rest = line.partition(" <- ")
                stamp, _, text = rest.partition(": ")
                yield "sent", float(stamp), text
            else:
                stamp, sep, text = line.partition(": ")
                assert sep, line[:80]
                yield "recv", float(stamp), text


def recorded_subscriptions() -> list[Subscription]:
    subs = []
    for direction, _, text in lines(RECORDING):
        if direction == "sent":
            msg = json.loads(text)
            for name in msg["channels"]:
                subs += [Subscription("coinbase", CHANNELS[name], p) for p in msg["product_ids"]]
    return subs


class Reference:
    """An independent L2 book: Decimal price -> Decimal size, per side."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def depth(self) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        bids = tuple((float(p), float(self.bids[p])) for p in sorted(self.bids, reverse=True))
        asks = tuple((float(p), float(self.asks[p])) for p in sorted(self.asks))
        return bids, asks


def test_coinbase_recording_replays_without_gaps_or_crossed_books() -> None:
    subs = recorded_subscriptions()
    assert {s.symbol for s in subs} == set(PRODUCTS) and len(subs) == 30
    adapter = CoinbaseAdapter()
    events: list[Event] = []
    feed: Feed

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, BookUpdate | BookSnapshot):
            book = feed.book(event.symbol)
            assert book is not None and book.valid, event
            assert not book.crossed(), f"{event.symbol} crossed after {event}: {book.bbo()}"
            book._check()

    feed = Feed(adapter, sink)
    for sub in subs:
        if sub.channel is Channel.BOOK:
            feed.add_book(sub)
    adapter.subscribe(subs)

    references: dict[str, Reference] = defaultdict(Reference)
    first_trade_id: dict[str, int] = {}
    frames = 0
    for direction, stamp, text in lines(RECORDING):
        if direction == "sent":
            continue
        frames += 1
        feed.on_frame(text, int(stamp * 1e9))
        msg = json.loads(text)
        ref = references[msg.get("product_id", "")]
        if msg["type"] == "snapshot":
            ref.bids = {Decimal(p): Decimal(s) for p, s in msg["bids"]}
            ref.asks = {Decimal(p): Decimal(s) for p, s in msg["asks"]}
        elif msg["type"] == "l2update":
            for side, p, s in msg["changes"]:
                levels = ref.bids if side == "buy" else ref.asks
                if Decimal(s) == 0:
                    levels.pop(Decimal(p), None)
                else:
                    levels[Decimal(p)] = Decimal(s)
        elif msg["type"] == "last_match":
            first_trade_id[msg["product_id"]] = msg["trade_id"] + 1

    # --- no false gaps, nothing malformed --------------------------------------------
    assert [e for e in events if isinstance(e, Gap | Error)] == []
    assert feed.stats.parse_errors == 0 and feed.stats.gaps == 0 and feed.stats.unknown_book == 0

    # --- exact counts ----------------------------------------------------------------
    assert frames == 9946
    counts = Counter(type(e).__name__ for e in events)
    assert counts == {"BookUpdate": 9719, "BookSnapshot": 10, "Resynced": 10, "Quote": 107, "Trade": 97}
    assert adapter.stats.history_dropped == 10  # one last_match per product: history, dropped
    assert adapter.stats.duplicates == 0 and adapter.stats.stale == 0
    assert feed.stats.resyncs == 10

    # --- books: valid, not crossed, equal to the Decimal reference ------------------------
    for product in PRODUCTS:
        book = feed.book(product)
        assert book is not None and book.valid and not book.crossed()
        assert book.depth() == references[product].depth(), product
    assert sum(len(feed.book(p) or ()) for p in PRODUCTS) > 1000

    # --- sequences: trade ids contiguous, sequences increasing, tickers pair with matches ----
    trades_by: dict[str, list[Trade]] = defaultdict(list)
    quotes_by: dict[str, list[Quote]] = defaultdict(list)
    for e in events:
        if isinstance(e, Trade):
            trades_by[e.symbol].append(e)
        elif isinstance(e, Quote):
            quotes_by[e.symbol].append(e)
    assert set(first_trade_id) == set(PRODUCTS)
    per_product_trades = {p: len(trades_by[p]) for p in PRODUCTS}
    assert per_product_trades == {
        "SKL-USD": 52,
        "SKL-BTC": 8,
        "BAND-GBP": 4,
        "NMR-EUR": 8,
        "BAND-BTC": 8,
        "YFI-BTC": 0,
        "DASH-BTC": 15,
        "NU-GBP": 1,
        "CRV-EUR": 0,
        "SKL-GBP": 1,
    }
    jumps = 0
    for product in PRODUCTS:
        tape = trades_by[product]
        ids = [int(t.trade_id) for t in tape]  # type: ignore[arg-type]
        assert ids == list(range(first_trade_id[product], first_trade_id[product] + len(tape)))
        seqs = [t.seq for t in tape]
        assert all(a < b for a, b in itertools.pairwise(seqs))  # type: ignore[operator]
        jumps += sum(1 for a, b in itertools.pairwise(seqs) if b != a + 1)  # type: ignore[operator]
        assert all(t.side in (Side.BUY, Side.SELL) and t.ts is not None and t.price > 0 and t.size > 0 for t in tape)
        qseqs = [q.seq for q in quotes_by[product]]
        assert all(a < b for a, b in itertools.pairwise(qseqs))  # type: ignore[operator]
        # the first ticker is the state at subscribe time (the last_match's sequence);
        # every later ticker follows a match with the same sequence
        assert set(qseqs[1:]) == set(seqs)
        for q in quotes_by[product]:
            assert q.bid_price < q.ask_price
    assert jumps > 50  # sequence jumps on matches are normal, and were not reported as gaps
    assert sum(1 for e in events if isinstance(e, Resynced) and e.channel is Channel.BOOK) == 10
