"""Replay real Deribit JSON-RPC v2 traffic (2021) through ``DeribitAdapter`` and the Feed.

``DERIBIT.ws.1.0`` is one connection subscribed to ``book.X.raw``,
``trades.X.raw`` and ``ticker.X.raw`` for 10 options (the capture predates
the 2022 rule that ``raw`` needs authentication). Every book message is
checked against a rebuild written here, independently of the adapter
(stdlib ``json`` with ``Decimal`` numbers): each ``change`` must name the
previous ``change_id`` of its instrument, every book event must carry exactly
the levels of its message, and the Feed's book must equal the rebuild after
every frame. The rebuild is itself checked against the venue: every ticker's
best bid and ask equals the rebuilt book's top as of the ticker's timestamp.
``DERIBIT.0`` holds the instruments lists (BTC, ETH, SOL, USDC) and the
recording's configuration (cryptofeed's symbols, translated here by hand).

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

from wsmux._pipeline import Feed
from wsmux.credentials import Credentials
from wsmux.exchanges.deribit import DeribitAdapter, deribit_symbol, is_inverse
from wsmux.model import BookSnapshot, BookUpdate, Error, Event, Gap, OpenInterest, Resynced
from wsmux.subscriptions import Subscription, book, open_interest, trades

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not (RECORDINGS / "DERIBIT.ws.1.0").is_file(), reason=f"no recordings at {RECORDINGS}"),
]

# Futures month codes (cryptofeed writes BTC-8000-21U24-put for 2021-09-24).
MONTH_CODES = "FGHJKMNQUVXZ"


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


def rest_lines() -> list[str]:
    return (RECORDINGS / "DERIBIT.0").read_text(encoding="utf-8").splitlines()


def unified_from_cryptofeed(symbol: str) -> str:
    """``BTC-8000-21U24-put`` → ``BTC-USD-20210924-8000-P`` (written for this test)."""
    base, strike, expiry, right = symbol.split("-")
    year, month, day = expiry[:2], MONTH_CODES.index(expiry[2]) + 1, expiry[3:]
    return f"{base}-USD-20{year}{month:02d}{int(day):02d}-{strike}-{right[0].upper()}"


def configured_symbols() -> list[str]:
    for line in rest_lines():
        if line.startswith("configuration: "):
            config: dict[str, list[str]] = json.loads(line.partition(": ")[2])
            assert config["l2_book"] == config["trades"] == config["ticker"]
            return [unified_from_cryptofeed(s) for s in config["l2_book"]]
    raise AssertionError("DERIBIT.0 has no configuration line")


def subscriptions() -> tuple[Subscription, ...]:
    symbols = configured_symbols()
    assert len(symbols) == 10
    return (*book("deribit", *symbols), *trades("deribit", *symbols), *open_interest("deribit", *symbols))


def raw_adapter() -> DeribitAdapter:
    # the 2021 recorder subscribed raw without auth; today raw needs credentials
    return DeribitAdapter(credentials=Credentials(key="k", secret="s"), interval="raw")


class Rebuild:
    """An order book per instrument from the raw messages, with Decimal numbers."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        self.last: dict[str, int] = {}
        self.links = 0
        self.tops: dict[str, list[tuple[int, Any, Any]]] = {}

    def apply(self, data: dict[str, Any]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        inst = data["instrument_name"]
        assert not is_inverse(inst)  # options count the base coin: no unit change
        if data["type"] == "snapshot":
            self.books[inst] = ({}, {})
        else:
            assert data["type"] == "change"
            assert data["prev_change_id"] == self.last[inst], f"{inst}: chain broken"
            self.links += 1
        self.last[inst] = data["change_id"]
        levels: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
        for side, raw in enumerate((data["bids"], data["asks"])):
            store = self.books[inst][side]
            for action, price, amount in raw:
                if action == "delete":
                    assert price in store, f"{inst}: delete of a price not in the book"
                    del store[price]
                    levels[side].append((float(price), 0.0))
                else:
                    assert (action == "new") == (price not in store), f"{inst}: {action} {price}"
                    store[price] = amount
                    levels[side].append((float(price), float(amount)))
        bids, asks = self.books[inst]
        top_bid = (max(bids), bids[max(bids)]) if bids else None
        top_ask = (min(asks), asks[min(asks)]) if asks else None
        self.tops.setdefault(inst, []).append((data["timestamp"], top_bid, top_ask))
        return levels

    def depth(self, inst: str) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        bids, asks = self.books[inst]
        return (
            tuple((float(p), float(bids[p])) for p in sorted(bids, reverse=True)),
            tuple((float(p), float(asks[p])) for p in sorted(asks)),
        )


def test_subscribe_names_the_recorded_channels() -> None:
    recorded = [json.loads(text) for direction, _, text in frames("DERIBIT.ws.1.0") if direction == "out"]
    assert len(recorded) == 1 and recorded[0]["method"] == "public/subscribe"
    auth, mine = (json.loads(m) for m in raw_adapter().subscribe(subscriptions()))
    assert auth["method"] == "public/auth"
    assert sorted(mine["params"]["channels"]) == sorted(recorded[0]["params"]["channels"])


def test_every_book_event_is_exact_and_every_link_checked() -> None:
    adapter = raw_adapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    subs = subscriptions()
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    adapter.subscribe(subs)
    native = {deribit_symbol(s.symbol): s.symbol for s in subs}
    rebuild = Rebuild()
    tickers: list[dict[str, Any]] = []
    book_messages = 0
    for direction, ns, text in frames("DERIBIT.ws.1.0"):
        if direction != "in":
            continue
        start = len(events)
        feed.on_frame(text, ns)
        new = events[start:]
        msg = json.loads(text, parse_float=Decimal)
        channel = msg.get("params", {}).get("channel", "")
        if channel.startswith("ticker."):
            tickers.append(msg["params"]["data"])
            assert [type(e) for e in new] == [OpenInterest]
        if not channel.startswith("book."):
            continue
        book_messages += 1
        data = msg["params"]["data"]
        bids, asks = rebuild.apply(data)
        symbol = native[data["instrument_name"]]
        books = [e for e in new if isinstance(e, BookSnapshot | BookUpdate)]
        assert len(books) == 1 and books[0].symbol == symbol
        event = books[0]
        assert event.seq == data["change_id"] and event.ts == data["timestamp"] * 1_000_000
        if isinstance(event, BookUpdate):
            assert (list(event.bids), list(event.asks)) == (bids, asks)
            assert event.prev_seq == data["prev_change_id"]
        else:
            assert [type(e) for e in new] == [BookSnapshot, Resynced]
        view = feed.book(symbol)
        assert view is not None and view.valid
        assert view.depth() == rebuild.depth(data["instrument_name"])
        view._check()

    assert book_messages == 46 and rebuild.links == 36
    assert len(rebuild.books) == 10
    assert feed.stats.gaps == 0 and feed.stats.parse_errors == 0 and feed.stats.unknown_book == 0
    assert not [e for e in events if isinstance(e, Gap | Error)]
    assert sum(isinstance(e, Resynced) for e in events) == 10
    assert sum(isinstance(e, BookUpdate) for e in events) == 36
    assert sum(s.stats.applied for s in feed.syncs.values()) == 36
    assert all(s.valid and s.stats.gaps == 0 and s.stats.stale == 0 for s in feed.syncs.values())

    # the rebuild agrees with the venue's own tickers (top of book as of the ticker's time)
    assert len(tickers) == 89
    for ticker in tickers:
        tops = [t for t in rebuild.tops[ticker["instrument_name"]] if t[0] <= ticker["timestamp"]]
        _, top_bid, top_ask = tops[-1]
        bid = (ticker["best_bid_price"], ticker["best_bid_amount"])
        ask = (ticker["best_ask_price"], ticker["best_ask_amount"])
        assert top_bid == bid or (top_bid is None and bid[1] == 0)
        assert top_ask == ask or (top_ask is None and ask[1] == 0)


def test_instruments_lists_round_trip() -> None:
    adapter = DeribitAdapter()
    bodies = [line.partition(": ")[2] for line in rest_lines() if "get_instruments" in line.split(" -> ")[0]]
    assert len(bodies) == 4
    total = named = 0
    for body in bodies:
        rows = json.loads(body)["result"]
        total += len(rows)
        instruments = adapter.parse_instruments(body.encode())
        named += len(instruments)
        by_name = {row["instrument_name"]: row for row in rows}
        for inst in instruments:
            row = by_name[inst.native]
            assert deribit_symbol(inst.symbol) == inst.native
            assert inst.tick_size == row["tick_size"]
            if row["kind"] == "future":
                reversed_ = row.get("future_type", "reversed" if row["quote_currency"] == "USD" else "linear")
                assert is_inverse(inst.native) == (reversed_ == "reversed")
                assert inst.kind == ("perp" if row["settlement_period"] == "perpetual" else "future")
            else:
                assert not is_inverse(inst.native) and inst.kind == row["kind"]
    assert total == named == 398 + 426 + 177 + 16
