"""Replay a real Kraken WS v1 ``book-1000`` recording through the checksum.

The book is maintained here, in the test, as text levels (the production
Kraken adapter is separate): snapshot ``as``/``bs`` replace the book; each
update dict ``a``/``b`` sets a level, volume 0 deletes it; after every message
each side is truncated to the subscribed depth; then the message's ``"c"`` must
equal :func:`wsmux.book.checksum.kraken_checksum` of the book.

The recordings live outside the repository (``../shared/recordings``); the
test skips when they are absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sortedcontainers import SortedDict

from wsmux.book.checksum import kraken_checksum

RECORDINGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "recordings"
RECORDING = RECORDINGS / "KRAKEN.ws.50.0"
DEPTH = 1000

#: Book messages in KRAKEN.ws.50.0 that carry a "c" checksum.
EXPECTED_CHECKSUMS = 4269
#: Of which carry a republish ("r") entry: none in this 2021 recording, so the
#: republish path (a plain level set) is not exercised by it.
EXPECTED_WITH_REPUBLISH = 0

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not RECORDING.is_file(), reason=f"recordings not found at {RECORDINGS}"),
]


def received_frames(path: Path) -> Iterator[str]:
    """Yield the text of each received frame (``T: TEXT`` lines)."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("wss://") or not line:
                continue  # the connection line and frames we sent
            _, sep, text = line.partition(": ")
            assert sep, line[:80]
            yield text


class TextBook:
    """A minimal Kraken v1 book of text levels keyed by Decimal price."""

    def __init__(self) -> None:
        self.bids: Any = SortedDict()  # Decimal -> (price_text, size_text)
        self.asks: Any = SortedDict()

    def apply(self, side: Any, entries: list[list[str]]) -> None:
        for entry in entries:
            price_text, size_text = entry[0], entry[1]
            price = Decimal(price_text)
            if Decimal(size_text) == 0:
                side.pop(price, None)  # deleting an unknown level is normal
            else:
                side[price] = (price_text, size_text)

    def truncate(self, depth: int) -> None:
        while len(self.asks) > depth:
            self.asks.popitem(-1)  # worst ask = highest price
        while len(self.bids) > depth:
            self.bids.popitem(0)  # worst bid = lowest price

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = [self.bids.peekitem(-1 - i)[1] for i in range(min(n, len(self.bids)))]
        asks = [self.asks.peekitem(i)[1] for i in range(min(n, len(self.asks)))]
        return bids, asks


def test_every_kraken_checksum_matches() -> None:
    books: dict[int, TextBook] = {}
    verified = 0
    republished = 0
    mismatches: list[str] = []
    seen_sheet_example = False

    for text in received_frames(RECORDING):
        msg = json.loads(text)
        if not isinstance(msg, list) or not str(msg[-2]).startswith("book-"):
            continue
        channel = msg[0]
        payloads: list[dict[str, Any]] = msg[1:-2]
        if "as" in payloads[0] or "bs" in payloads[0]:
            book = books[channel] = TextBook()
            book.apply(book.asks, payloads[0].get("as", []))
            book.apply(book.bids, payloads[0].get("bs", []))
            book.truncate(DEPTH)
            assert not any("c" in p for p in payloads)  # v1 snapshots carry none
            continue

        book = books[channel]
        has_r = False
        for payload in payloads:
            for key, side in (("a", book.asks), ("b", book.bids)):
                entries = payload.get(key)
                if entries:
                    book.apply(side, entries)
                    has_r = has_r or any(len(e) > 3 and e[3] == "r" for e in entries)
        book.truncate(DEPTH)

        checksum = payloads[-1].get("c")
        if checksum is None:
            continue
        bids, asks = book.top(10)
        ours = kraken_checksum(bids, asks)
        if ours != int(checksum):
            mismatches.append(f"{msg[-1]} c={checksum} ours={ours}: {text[:120]}")
        verified += 1
        republished += has_r
        if checksum == "4105471083":  # the update quoted in kraken-spot.md
            seen_sheet_example = True

    assert mismatches == []
    assert verified == EXPECTED_CHECKSUMS
    assert republished == EXPECTED_WITH_REPUBLISH
    assert seen_sheet_example
    assert len(books) == 10
