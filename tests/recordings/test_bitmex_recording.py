"""Replay real BitMEX realtime traffic (2021) through ``BitmexAdapter`` and the Feed.

``BITMEX.ws.1.0`` is one connection subscribed to ``orderBookL2``, ``quote``
and ``trade`` for 10 contracts; its updates and deletes carry only ids. A
rebuild written here, independently of the adapter (stdlib ``json`` with
``Decimal`` numbers, rows keyed by symbol, id and side), checks that every
update and delete names a level it holds and every insert a new one (the id
map is consistent: 0 proven losses), that every book event carries exactly
the levels of its message (XBTUSD's USD contracts divided by price), that the
Feed's book equals the rebuild (every 25 book messages and at the end),
and that no book ever crosses. BitMEX has no sequence numbers, so this is all a capture can prove.
``BITMEX.0`` holds ``instrument/active`` and the recording's configuration.

The recordings live outside the repository (``../shared/recordings``); the tests
skip when they are absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deferkit import replay_stepping

from wsmux._pipeline import Feed
from wsmux.exchanges.bitmex import MONTH_CODES, BitmexAdapter, bitmex_symbol
from wsmux.model import BookSnapshot, BookUpdate, Error, Event, Gap, Quote, Resynced, Trade
from wsmux.subscriptions import Subscription, book, quotes, trades

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not (RECORDINGS / "BITMEX.ws.1.0").is_file(), reason=f"no recordings at {RECORDINGS}"),
]

Level = tuple[float, float]


def frames(name: str) -> Iterator[tuple[str, int, str]]:
    """``(direction, ns, text)`` per line: ``"out"`` for what the recorder sent."""
    with (RECORDINGS / name).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or " <-> " in line:
                continue
            if line.startswith("wss://"):
                head, _, text = line.partition(": ")
                yield "out", int(float(head.rsplit(" ", 1)[1]) * 1e9), text
                continue
            stamp, _, text = line.partition(": ")
            yield "in", int(float(stamp) * 1e9), text


def configured_symbols() -> list[str]:
    """The unified symbols of ``BITMEX.0``'s configuration; cryptofeed writes a
    dated future ``XRP-BTC-21U24`` (year, month code, day)."""
    for line in (RECORDINGS / "BITMEX.0").read_text(encoding="utf-8").splitlines():
        if line.startswith("configuration: "):
            config: dict[str, list[str]] = json.loads(line.partition(": ")[2])
            out = []
            for symbol in config["l2_book"]:
                base, quote, kind = symbol.split("-")
                if kind != "PERP":
                    kind = f"20{kind[:2]}{MONTH_CODES.index(kind[2]) + 1:02d}{kind[3:]}"
                out.append(f"{base}-{quote}-{kind}")
            return out
    raise AssertionError("BITMEX.0 has no configuration line")


def subscriptions() -> tuple[Subscription, ...]:
    symbols = configured_symbols()
    assert len(symbols) == 10
    return (*book("bitmex", *symbols), *quotes("bitmex", *symbols), *trades("bitmex", *symbols))


class Rebuild:
    """Order books from the raw rows, keyed by (symbol, id, side)."""

    def __init__(self) -> None:
        self.levels: dict[str, dict[tuple[int, str], tuple[Decimal, Decimal]]] = {}
        self.rows = 0

    def apply(self, msg: dict[str, Any]) -> dict[str, tuple[list[Level], list[Level]]]:
        action = msg["action"]
        out: dict[str, tuple[list[Level], list[Level]]] = {}
        if action == "partial":
            self.levels[msg["filter"]["symbol"]] = {}
        for row in msg["data"]:
            self.rows += 1
            symbol = row["symbol"]
            book_ = self.levels[symbol]
            key = (row["id"], row["side"])
            if action in ("partial", "insert"):
                assert key not in book_, f"insert of a held level {key}"
                book_[key] = (row["price"], Decimal(row["size"]))
                price, size = book_[key]
            elif action == "update":
                assert key in book_, f"update of an unknown level {key}"
                price = book_[key][0]
                size = Decimal(row["size"])
                book_[key] = (price, size)
            else:
                assert action == "delete" and key in book_, f"delete of an unknown level {key}"
                price = book_.pop(key)[0]
                size = Decimal(0)
            level = (float(price), float(size) / float(price) if symbol == "XBTUSD" and size else float(size))
            out.setdefault(symbol, ([], []))[row["side"] == "Sell"].append(level)
        return out

    def depth(self, symbol: str) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        book_ = self.levels[symbol]
        inverse = symbol == "XBTUSD"

        def level(price: Decimal, size: Decimal) -> Level:
            return float(price), float(size) / float(price) if inverse else float(size)

        bids = sorted((p, s) for (_, side), (p, s) in book_.items() if side == "Buy")
        asks = sorted((p, s) for (_, side), (p, s) in book_.items() if side == "Sell")
        return tuple(level(p, s) for p, s in reversed(bids)), tuple(level(p, s) for p, s in asks)


def test_subscribe_names_the_recorded_topics() -> None:
    recorded = [json.loads(text) for direction, _, text in frames("BITMEX.ws.1.0") if direction == "out"]
    assert [m["op"] for m in recorded] == ["subscribe"] * 3
    mine = [json.loads(m) for m in BitmexAdapter().subscribe(subscriptions())]
    assert sorted(a for m in mine for a in m["args"]) == sorted(a for m in recorded for a in m["args"])


def test_every_book_event_is_exact_and_the_id_map_consistent() -> None:
    adapter = BitmexAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    subs = subscriptions()
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    adapter.subscribe(subs)
    unified = {bitmex_symbol(s.symbol): s.symbol for s in subs}
    rebuild = Rebuild()
    book_messages = trades_in_file = 0
    for direction, ns, text in frames("BITMEX.ws.1.0"):
        if direction != "in":
            continue
        start = len(events)
        feed.on_frame(text, ns)
        new = events[start:]
        msg = json.loads(text, parse_float=Decimal)
        if msg.get("table") == "trade" and msg["action"] == "insert":
            trades_in_file += len(msg["data"])
        if msg.get("table") != "orderBookL2":
            continue
        book_messages += 1
        changed = rebuild.apply(msg)
        book_events = [e for e in new if isinstance(e, BookSnapshot | BookUpdate)]
        if msg["action"] == "partial":
            assert [type(e) for e in new] == [BookSnapshot, Resynced]
        else:
            assert len(book_events) == len(changed)
            for event in book_events:
                assert isinstance(event, BookUpdate)
                bids, asks = changed[bitmex_symbol(event.symbol)]
                assert (list(event.bids), list(event.asks)) == (bids, asks)
        for native in {r["symbol"] for r in msg["data"]} | ({msg["filter"]["symbol"]} if "filter" in msg else set()):
            view = feed.book(unified[native])
            assert view is not None and view.valid and not view.crossed()
            if book_messages % 25 == 0:  # whole books now and then (every event was checked above)
                assert view.depth() == rebuild.depth(native)
    for native, symbol in unified.items():
        view = feed.book(symbol)
        assert view is not None and view.depth() == rebuild.depth(native)
        view._check()

    assert book_messages == 1979 and rebuild.rows > 5000
    assert feed.stats.gaps == 0 and feed.stats.parse_errors == 0 and feed.stats.unknown_book == 0
    assert not [e for e in events if isinstance(e, Gap | Error)]
    assert sum(isinstance(e, Resynced) for e in events) == 10
    assert sum(isinstance(e, BookUpdate) for e in events) == sum(s.stats.applied for s in feed.syncs.values())
    assert all(s.valid and s.stats.crossed == 0 for s in feed.syncs.values())
    assert sum(isinstance(e, Trade) for e in events) == trades_in_file == 17  # the history partials are skipped
    assert sum(isinstance(e, Quote) for e in events) > 400


def test_a_live_feed_reads_the_deep_partials_in_steps_with_the_same_books_and_trades() -> None:
    """As a live connection runs it (``Feed.step_snapshots``): XBTUSD's 9,346-row
    partial is read in steps while the frames after it wait, then built in
    steps while its diffs wait; here one step runs per frame that arrives, so
    frames do arrive mid-read and mid-build. At the end every book, and the
    trades, quotes and reports, are those of the Feed that reads every partial
    inside ``parse``."""

    def replay(step: bool) -> tuple[Feed, list[Event], int]:
        adapter = BitmexAdapter()
        events: list[Event] = []
        feed = Feed(adapter, events.append)
        feed.step_snapshots = step
        subs = subscriptions()
        for sub in subs:
            if sub.channel.value == "book":
                feed.add_book(sub)
        adapter.subscribe(subs)
        arriving = ((text, ns) for direction, ns, text in frames("BITMEX.ws.1.0") if direction == "in")
        held = replay_stepping(feed, arriving)
        return feed, events, held

    at_once, events_once, _ = replay(step=False)
    stepped, events_stepped, held = replay(step=True)
    assert held > 0  # frames did wait for a partial's rows
    for symbol, sync in at_once.syncs.items():
        view = stepped.book(symbol)
        assert view is not None and view.valid and sync.valid
        view._check()
        assert view.depth() == sync.book.depth()
    for cls in (Trade, Quote, Error, Gap):
        assert [e for e in events_stepped if type(e) is cls] == [e for e in events_once if type(e) is cls]
    assert stepped.stats.frames == at_once.stats.frames and stepped.stats.parse_errors == 0


def test_instruments_of_the_recording() -> None:
    line = (RECORDINGS / "BITMEX.0").read_text(encoding="utf-8").splitlines()[0]
    body = line.partition(" -> ")[2].partition(": ")[2]
    rows = json.loads(body)
    adapter = BitmexAdapter()
    instruments = adapter.parse_instruments(body.encode())
    assert len(instruments) == len(rows) == 34
    by_native = {i.native: i for i in instruments}
    assert by_native["XRPU21"].symbol == "XRP-BTC-20210924" and by_native["XRPU21"].contract_size == 1.0
    assert by_native["XBTUSD"].symbol == "BTC-USD-PERP" and by_native["XBTUSD"].contract_size == 1.0
    assert [i.native for i in instruments if i.inverse] == ["XBTUSD", "XBTEUR", "XBTU21", "XBTEURU21", "XBTZ21"]
    assert by_native["UNIUSDT"].contract_size is None  # quanto: stays in contracts
    for inst in instruments:
        assert bitmex_symbol(inst.symbol) == inst.native
