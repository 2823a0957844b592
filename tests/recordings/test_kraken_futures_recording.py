"""Replay real Kraken Futures v1 traffic (2021) through ``KrakenFuturesInverseAdapter``
and the Feed.

``KRAKEN_FUTURES.ws.1.0`` is one connection with ``book`` (snapshot + 7,014
one-level deltas), ``trade`` and ``ticker_lite`` for 10 inverse products
(``PI_``/``FI_``). Every book event is checked against a reference book rebuilt
here from the raw JSON, independently of the adapter (its own product-id
mapping from the recording's ``configuration`` line, its own level
arithmetic); every ``seq`` link is checked (+1 per product from the
snapshot's); the replay must show no gap and no error. Without an instruments
list sizes stay in contracts; with the recorded list (``KRAKEN_FUTURES.0``)
every book and trade size is the contracts' coins at its price.

The recordings live outside the repository (``../shared/recordings``); the tests
skip when they are absent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wsmux._pipeline import Feed
from wsmux.exchanges.kraken_futures import KrakenFuturesInverseAdapter
from wsmux.model import BookSnapshot, BookUpdate, Error, Event, Gap, Quote, Resynced, Trade
from wsmux.subscriptions import Subscription, book, quotes, trades

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"
WS = "KRAKEN_FUTURES.ws.1.0"
VENUE = "kraken-futures-inverse"
MS = 1_000_000

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not (RECORDINGS / WS).is_file(), reason=f"no recordings at {RECORDINGS}"),
]

# cryptofeed's future month codes (the configuration line's symbols: BTC-USD-21U24)
MONTHS = {c: i + 1 for i, c in enumerate("FGHJKMNQUVXZ")}


def frames() -> Iterator[tuple[str, int, str]]:
    """``(direction, ns, text)`` per line: ``"out"`` for what the recorder sent."""
    with (RECORDINGS / WS).open(encoding="utf-8") as fh:
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


def unified(cryptofeed_symbol: str) -> str:
    """``BTC-USD-21U24`` → ``BTC-USD-20210924``; ``ETH-USD-PERP`` unchanged."""
    base, quote, kind = cryptofeed_symbol.split("-")
    if kind == "PERP":
        return cryptofeed_symbol
    return f"{base}-{quote}-20{kind[:2]}{MONTHS[kind[2]]:02d}{kind[3:]}"


def product_symbols() -> dict[str, str]:
    """Product id → unified symbol, from the recording alone: the recorder's
    configuration (cryptofeed symbols) and its subscribe line, both in the
    same order."""
    config: dict[str, list[str]] = {}
    for line in (RECORDINGS / "KRAKEN_FUTURES.0").read_text(encoding="utf-8").splitlines():
        if line.startswith("configuration: "):
            config = json.loads(line.partition(": ")[2])
    sent = [json.loads(text) for direction, _, text in frames() if direction == "out"]
    (book_sub,) = [m for m in sent if m["feed"] == "book"]
    return {p.upper(): unified(s) for p, s in zip(book_sub["product_ids"], config["l2_book"], strict=True)}


class Reference:
    """A book per product rebuilt from the raw messages, with its seq chain."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.seq: dict[str, int] = {}
        self.links = 0

    def snapshot(self, msg: dict[str, Any]) -> None:
        product = msg["product_id"]
        self.books[product] = (
            {lv["price"]: lv["qty"] for lv in msg["bids"]},
            {lv["price"]: lv["qty"] for lv in msg["asks"]},
        )
        self.seq[product] = msg["seq"]

    def delta(self, msg: dict[str, Any]) -> None:
        product = msg["product_id"]
        assert msg["seq"] == self.seq[product] + 1, f"{product}: seq {msg['seq']} after {self.seq[product]}"
        self.seq[product] = msg["seq"]
        self.links += 1
        side = self.books[product][0 if msg["side"] == "buy" else 1]
        if msg["qty"] == 0:
            side.pop(msg["price"], None)
        else:
            side[msg["price"]] = msg["qty"]

    def depth(self, product: str) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        bids, asks = self.books[product]
        return tuple(sorted(bids.items(), reverse=True)), tuple(sorted(asks.items()))


def test_replay_matches_an_independent_rebuild() -> None:
    symbols = product_symbols()
    names = list(symbols.values())
    subs: tuple[Subscription, ...] = (*book(VENUE, *names), *trades(VENUE, *names), *quotes(VENUE, *names))
    adapter = KrakenFuturesInverseAdapter()
    ours = [json.loads(m) for m in adapter.subscribe(subs)]
    recorded = [json.loads(text) for direction, _, text in frames() if direction == "out"]
    # same feeds and products as the recorder asked for (the venue is case-insensitive;
    # wsmux also subscribes the heartbeat feed)
    assert ours[0] == {"event": "subscribe", "feed": "heartbeat"}
    assert [(m["feed"], [p.upper() for p in m["product_ids"]]) for m in recorded] == [
        (m["feed"], m["product_ids"]) for m in ours[1:]
    ]

    reference = Reference()
    events: list[Event] = []
    checked = {"updates": 0, "snapshots": 0}
    by_symbol = {v: k for k, v in symbols.items()}
    feed: Feed

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, BookUpdate | BookSnapshot):
            product = by_symbol[event.symbol]
            msg = pending.pop(0)
            assert msg["product_id"] == product
            assert event.seq == msg["seq"]
            if isinstance(event, BookUpdate):
                level = ((msg["price"], msg["qty"]),)
                assert (event.bids, event.asks) == ((level, ()) if msg["side"] == "buy" else ((), level))
                assert event.ts == msg["timestamp"] * MS
                checked["updates"] += 1
            else:
                checked["snapshots"] += 1
            bids, asks = reference.depth(product)
            assert bids[0][0] < asks[0][0], f"{product}: reference book crossed"
            local = feed.book(event.symbol)
            assert local is not None and local.valid and local.depth() == (bids, asks)

    feed = Feed(adapter, sink)
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    pending: list[dict[str, Any]] = []
    live_trades: list[dict[str, Any]] = []
    lites = 0
    for direction, ns, text in frames():
        if direction != "in":
            continue
        msg = json.loads(text)
        kind = msg.get("feed") if "event" not in msg else None
        if kind == "book_snapshot":
            reference.snapshot(msg)
            pending.append(msg)
        elif kind == "book":
            reference.delta(msg)
            pending.append(msg)
        elif kind == "trade":
            live_trades.append(msg)
        elif kind == "ticker_lite":
            lites += 1
        feed.on_frame(text, ns)
        assert not pending, "a book message produced no event"

    assert checked == {"updates": 7014, "snapshots": 10} and reference.links == 7014
    assert not [e for e in events if isinstance(e, Gap | Error)]
    assert sum(isinstance(e, Resynced) for e in events) == 10
    tape = [e for e in events if isinstance(e, Trade)]
    assert [(t.trade_id, t.seq, t.price, t.size, t.side.value if t.side else None) for t in tape] == [
        (m["uid"], m["seq"], m["price"], m["qty"], m["side"]) for m in live_trades
    ]
    assert sum(isinstance(e, Quote) for e in events) == lites > 100
    assert feed.stats.parse_errors == 0


def recorded_instruments_body() -> bytes:
    """The instruments endpoint's answer the recorder saved in ``KRAKEN_FUTURES.0``."""
    for line in (RECORDINGS / "KRAKEN_FUTURES.0").read_text(encoding="utf-8").splitlines():
        if "/derivatives/api/v3/instruments -> " in line:
            return line.split(": ", 1)[1].encode()
    raise AssertionError("no instruments answer in KRAKEN_FUTURES.0")


def test_replay_with_the_recorded_instruments_reports_coins() -> None:
    """Inverse contracts of ``contractSize`` USD: with the list, the replayed
    books equal the independent rebuild converted level by level
    (``qty * contractSize / price``), and trades convert at their price."""
    symbols = product_symbols()
    names = list(symbols.values())
    adapter = KrakenFuturesInverseAdapter()
    instruments = adapter.parse_instruments(recorded_instruments_body())
    faces = {i.native: i.contract_size for i in instruments if i.native in symbols}
    assert set(faces) == set(symbols) and all(i.inverse for i in instruments)
    adapter.use_instruments(instruments)
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    for sub in book(VENUE, *names):
        feed.add_book(sub)
    reference = Reference()
    live_trades: list[dict[str, Any]] = []
    for direction, ns, text in frames():
        if direction != "in":
            continue
        msg = json.loads(text)
        kind = msg.get("feed") if "event" not in msg else None
        if kind == "book_snapshot":
            reference.snapshot(msg)
        elif kind == "book":
            reference.delta(msg)
        elif kind == "trade":
            live_trades.append(msg)
        feed.on_frame(text, ns)
    assert not [e for e in events if isinstance(e, Gap | Error)]
    for product, symbol in symbols.items():
        face = faces[product]
        assert face is not None
        local = feed.book(symbol)
        assert local is not None and local.valid
        bids, asks = reference.depth(product)
        for got, want in zip(local.depth(), (bids, asks), strict=True):
            assert [p for p, _ in got] == [p for p, _ in want]
            for (price, size), (_, contracts) in zip(got, want, strict=True):
                assert math.isclose(size, contracts * face / price, rel_tol=1e-12), (product, price, size)
    tape = [e for e in events if isinstance(e, Trade)]
    assert len(tape) == len(live_trades) > 0
    for trade, msg in zip(tape, live_trades, strict=True):
        face = faces[msg["product_id"]]
        assert face is not None and math.isclose(trade.size, msg["qty"] * face / msg["price"], rel_tol=1e-12)
