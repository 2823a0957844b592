"""Event streams for the order-flow analytics tests, with an independent truth.

``generated`` drives the seeded mock :class:`~wsmux.testing.Market` and turns
each step into the events a synced stream delivers (``BookSnapshot`` first,
then ``BookUpdate`` level diffs and ``Trade``), recording after every book
event the market's *own* book (integer ticks and lots, converted once) — a
truth that owes nothing to :class:`wsmux.book.OrderBook`.

``recorded_binance`` replays the real Binance recording through the Feed (as
``tests/recordings/test_binance_recording.py`` does) and rebuilds each book
after every event with plain dicts, for the same purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from wsmux.model import BookSnapshot, BookUpdate, Event, Side, Trade
from wsmux.testing import Market

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC


@dataclass
class Truth:
    """The events and, per book event, the true book (bids desc, asks asc)."""

    events: list[Event] = field(default_factory=list)
    books: list[tuple[list[tuple[float, float]], list[tuple[float, float]]]] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    """Event time of each book in :attr:`books`."""


class DictBook:
    """A plain-dict book (the independent reference)."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def snapshot(self, ev: BookSnapshot) -> None:
        self.bids = {p: s for p, s in ev.bids if s > 0}
        self.asks = {p: s for p, s in ev.asks if s > 0}

    def apply(self, ev: BookUpdate) -> None:
        for side, levels in ((self.bids, ev.bids), (self.asks, ev.asks)):
            for p, s in levels:
                if s == 0:
                    side.pop(p, None)
                else:
                    side[p] = s

    def sorted(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def generated(
    seed: int,
    steps: int,
    *,
    venue: str = "mockex",
    symbol: str = "BTC-USDT",
    dt_ns: int = 37_000_000,
    start_ns: int = T0,
    levels: int = 20,
) -> Truth:
    """A mock market of ``steps`` steps, one every ``dt_ns`` (jittered)."""
    market = Market(seed, levels=levels, tick="0.5", lot="0.001")
    truth = Truth()
    t = start_ns
    bids, asks = market.depth()
    truth.events.append(BookSnapshot(venue, symbol, bids, asks, t, t, 1))
    truth.books.append((list(bids), list(asks)))
    truth.times.append(t)
    seq = 1
    for _ in range(steps):
        t += dt_ns + market.rng.randint(0, dt_ns)
        change = market.step()
        if change.trade is not None:
            tr = change.trade
            truth.events.append(
                Trade(venue, symbol, market.price(tr.price), market.size(tr.size), tr.side, str(tr.trade_id), t, t)
            )
        if change.bids or change.asks:
            seq += 1
            ev = BookUpdate(
                venue,
                symbol,
                tuple((market.price(p), market.size(s)) for p, s in change.bids),
                tuple((market.price(p), market.size(s)) for p, s in change.asks),
                t,
                t,
                seq,
            )
            truth.events.append(ev)
            b, a = market.depth()
            truth.books.append((list(b), list(a)))
            truth.times.append(t)
    return truth


def book_truth(events: list[Event], venue: str, symbol: str) -> Truth:
    """The book events of one instrument and the dict-rebuilt book after each."""
    truth = Truth()
    ref = DictBook()
    for ev in events:
        if isinstance(ev, BookSnapshot | BookUpdate) and ev.venue == venue and ev.symbol == symbol:
            if isinstance(ev, BookSnapshot):
                ref.snapshot(ev)
            else:
                ref.apply(ev)
            truth.events.append(ev)
            b, a = ref.sorted()
            truth.books.append((b, a))
            truth.times.append(ev.ts if ev.ts is not None else ev.recv_ns)
        elif isinstance(ev, Trade) and ev.venue == venue and ev.symbol == symbol:
            truth.events.append(ev)
    return truth


def recorded_binance() -> list[Event] | None:
    """Every event of the Binance recording replayed through the Feed, or None
    when the recordings are absent."""
    from recordings.test_binance_recording import HTTP, WS, replay

    if not (WS.is_file() and HTTP.is_file()):
        return None
    _, events, _, _ = replay()
    return events


def recorded_coinbase() -> list[Event] | None:
    """Every event of the Coinbase recording (level2, ticker, matches for 10
    products) replayed through the Feed, or None when the recordings are absent."""
    from recordings.test_coinbase_recording import RECORDING, lines, recorded_subscriptions

    from wsmux._pipeline import Feed
    from wsmux.exchanges.coinbase import CoinbaseAdapter
    from wsmux.model import Channel

    if not RECORDING.is_file():
        return None
    subs = recorded_subscriptions()
    adapter = CoinbaseAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    for sub in subs:
        if sub.channel is Channel.BOOK:
            feed.add_book(sub)
    adapter.subscribe(subs)
    for direction, stamp, text in lines(RECORDING):
        if direction == "recv":
            feed.on_frame(text, int(stamp * 1e9))
    return events


def trades_of(events: list[Event]) -> Iterator[Trade]:
    return (e for e in events if isinstance(e, Trade))


__all__ = [
    "SEC",
    "T0",
    "DictBook",
    "Side",
    "Truth",
    "book_truth",
    "generated",
    "recorded_binance",
    "recorded_coinbase",
    "trades_of",
]
