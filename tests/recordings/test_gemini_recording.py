"""Replay real Gemini market data v2 traffic (2021) through ``GeminiV2Adapter``
and the Feed.

``GEMINI.ws.1.0`` is one ``l2`` connection for 10 symbols: per symbol a first
``l2_updates`` holding the full book (and 50 historical trades), then 645
change messages, 16 live trades and heartbeats. v2 carries no sequence
numbers and no checksum (gemini.md), so there is no link to check: what the
replay proves is that every book event equals a reference book rebuilt here
from the raw JSON, independently of the adapter, that the book is never
crossed (the only loss signal the feed has) and that no gap or error is
reported. Deletes of prices the book does not hold occur in this traffic and
must be harmless.

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
from wsmux.exchanges.gemini import GeminiV2Adapter
from wsmux.model import BookSnapshot, BookUpdate, Error, Event, Gap, Integrity, Resynced, Trade
from wsmux.subscriptions import Subscription, book, trades

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"
WS = "GEMINI.ws.1.0"
VENUE = "gemini-v2"

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not (RECORDINGS / WS).is_file(), reason=f"no recordings at {RECORDINGS}"),
]


def frames() -> Iterator[tuple[str, int, str]]:
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


def configured_symbols() -> list[str]:
    for line in (RECORDINGS / "GEMINI.0").read_text(encoding="utf-8").splitlines():
        if line.startswith("configuration: "):
            symbols: list[str] = json.loads(line.partition(": ")[2])["l2_book"]
            return symbols
    raise AssertionError("GEMINI.0 has no configuration line")


class Reference:
    """Books rebuilt with Decimal arithmetic from the raw changes."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        self.unknown_deletes = 0

    def apply(self, msg: dict[str, Any]) -> None:
        if "trades" in msg:
            self.books[msg["symbol"]] = ({}, {})
        bids, asks = self.books[msg["symbol"]]
        for side, price, qty in msg["changes"]:
            levels = bids if side == "buy" else asks
            if Decimal(qty) == 0:
                if levels.pop(Decimal(price), None) is None:
                    self.unknown_deletes += 1
            else:
                levels[Decimal(price)] = Decimal(qty)

    def depth(self, native: str) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        bids, asks = self.books[native]
        return (
            tuple((float(p), float(q)) for p, q in sorted(bids.items(), reverse=True)),
            tuple((float(p), float(q)) for p, q in sorted(asks.items())),
        )


def test_replay_matches_an_independent_rebuild() -> None:
    symbols = configured_symbols()
    natives = {s.replace("-", ""): s for s in symbols}  # GRT-USD -> GRTUSD
    subs: tuple[Subscription, ...] = (*book(VENUE, *symbols), *trades(VENUE, *symbols))
    adapter = GeminiV2Adapter()
    (ours,) = [json.loads(m) for m in adapter.subscribe(subs)]
    (recorded,) = [json.loads(text) for direction, _, text in frames() if direction == "out"]
    assert ours["type"] == recorded["type"] == "subscribe"
    assert sorted(ours["subscriptions"][0]["symbols"]) == sorted(recorded["subscriptions"][0]["symbols"])

    reference = Reference()
    events: list[Event] = []
    expected: list[dict[str, Any]] = []
    counts = {"snapshots": 0, "updates": 0}
    feed: Feed

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, BookSnapshot | BookUpdate):
            msg = expected.pop(0)
            native = msg["symbol"]
            assert event.symbol == natives[native]
            bids, asks = reference.depth(native)
            assert bids[0][0] < asks[0][0], f"{native}: reference book crossed"
            local = feed.book(event.symbol)
            assert local is not None and local.valid and local.depth() == (bids, asks)
            if isinstance(event, BookUpdate):
                want_bids = tuple((float(p), float(q)) for s, p, q in msg["changes"] if s == "buy")
                want_asks = tuple((float(p), float(q)) for s, p, q in msg["changes"] if s == "sell")
                assert (event.bids, event.asks) == (want_bids, want_asks)
                counts["updates"] += 1
            else:
                assert (event.bids, event.asks) == (bids, asks)
                counts["snapshots"] += 1

    feed = Feed(adapter, sink)
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    live_trades: list[dict[str, Any]] = []
    for direction, ns, text in frames():
        if direction != "in":
            continue
        msg = json.loads(text)
        if msg.get("type") == "l2_updates":
            reference.apply(msg)
            expected.append(msg)
        elif msg.get("type") == "trade":
            live_trades.append(msg)
        feed.on_frame(text, ns)
        assert not expected, "a book message produced no event"

    assert counts == {"snapshots": 10, "updates": 645}
    assert reference.unknown_deletes > 0  # the harmless deletes the capture is known for
    assert not [e for e in events if isinstance(e, Gap | Error)]
    resynced = [e for e in events if isinstance(e, Resynced)]
    assert len(resynced) == 10 and all(e.integrity is Integrity.UNVERIFIABLE for e in resynced)
    tape = [e for e in events if isinstance(e, Trade)]
    assert [(t.symbol, t.trade_id, t.price, t.size, t.side.value if t.side else None) for t in tape] == [
        (natives[m["symbol"]], str(m["event_id"]), float(m["price"]), float(m["quantity"]), m["side"])
        for m in live_trades
    ]
    assert len(tape) == 16
