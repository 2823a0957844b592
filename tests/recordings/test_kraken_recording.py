"""Replay real Kraken WS v1 traffic (2021) through ``KrakenV1Adapter`` and the Feed.

``KRAKEN.ws.50.0`` is a ``book`` depth-1000 connection for 10 pairs: every
update carries Kraken's CRC32 ``"c"``; the production book sync must verify
every one of them (4,269) with no mismatch and no gap. ``KRAKEN.ws.48.0``
(trade) and ``KRAKEN.ws.49.0`` (ticker) check the other parsers. The
subscriptions are rebuilt from the unified symbols in ``KRAKEN.0``'s
``configuration`` line, and the adapter's subscribe message must name exactly
the pairs the recording subscribed.

The recordings live outside the repository (``../shared/recordings``); the tests
skip when they are absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wsmux._pipeline import Feed
from wsmux.exchanges.kraken import KrakenV1Adapter
from wsmux.model import BookSnapshot, BookUpdate, Error, Event, Gap, Quote, Resynced, Side, Trade
from wsmux.subscriptions import Subscription, book, quotes, trades

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"

#: Book updates with a "c" checksum in KRAKEN.ws.50.0 (also counted independently below).
EXPECTED_CHECKSUMS = 4269

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not (RECORDINGS / "KRAKEN.ws.50.0").is_file(), reason=f"no recordings at {RECORDINGS}"),
]


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


def configuration() -> dict[str, list[str]]:
    for line in (RECORDINGS / "KRAKEN.0").read_text(encoding="utf-8").splitlines():
        if line.startswith("configuration: "):
            config: dict[str, list[str]] = json.loads(line.partition(": ")[2])
            return config
    raise AssertionError("KRAKEN.0 has no configuration line")


def replay(
    name: str, subs: tuple[Subscription, ...], *, same_subscribe: bool = True
) -> tuple[Feed, list[Event], KrakenV1Adapter]:
    adapter = KrakenV1Adapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    (ours,) = adapter.subscribe(subs)
    recorded = [json.loads(text) for direction, _, text in frames(name) if direction == "out"]
    assert len(recorded) == 1
    mine = json.loads(ours)
    assert sorted(mine.pop("pair")) == sorted(recorded[0].pop("pair"))
    if same_subscribe:
        assert mine == recorded[0]
    for direction, ns, text in frames(name):
        if direction == "in":
            feed.on_frame(text, ns)
    return feed, events, adapter


def test_every_book_checksum_is_verified() -> None:
    symbols = configuration()["l2_book"]
    assert len(symbols) == 10
    feed, events, _ = replay("KRAKEN.ws.50.0", book("kraken-v1", *symbols, depth=1000))

    # Count the checksums in the file independently of the adapter.
    in_file = 0
    for direction, _, text in frames("KRAKEN.ws.50.0"):
        msg = json.loads(text)
        if direction == "in" and isinstance(msg, list) and msg[-2].startswith("book-"):
            in_file += "c" in msg[-3]
    assert in_file == EXPECTED_CHECKSUMS

    syncs = feed.syncs
    assert sorted(syncs) == sorted(symbols)
    assert sum(s.stats.checksums_ok for s in syncs.values()) == EXPECTED_CHECKSUMS
    assert sum(s.stats.checksum_mismatches for s in syncs.values()) == 0
    assert sum(s.stats.crossed + s.stats.bad_data + s.stats.gaps for s in syncs.values()) == 0
    assert all(s.valid and s.book.valid for s in syncs.values())
    for sync in syncs.values():
        sync.book._check()
    assert feed.stats.gaps == 0 and feed.stats.parse_errors == 0 and feed.stats.unknown_book == 0
    assert feed.stats.resyncs == 10
    assert not [e for e in events if isinstance(e, Gap | Error)]
    assert sum(isinstance(e, Resynced) for e in events) == 10
    assert sum(isinstance(e, BookSnapshot) for e in events) == 10
    updates = [e for e in events if isinstance(e, BookUpdate)]
    assert len(updates) == EXPECTED_CHECKSUMS
    # The update quoted in kraken-spot.md ("v1 update with both sides").
    quoted = next(e for e in updates if e.checksum == 4105471083)
    assert quoted.symbol == "SC-EUR"
    assert quoted.asks_text == (("0.042990", "364630.28272081"),)
    assert quoted.bids_text == (("0.042990", "0.00000000"),)
    assert quoted.ts == 1618678145_920708000


def test_trades_are_parsed() -> None:
    symbols = configuration()["trades"]
    _, events, _ = replay("KRAKEN.ws.48.0", trades("kraken-v1", *symbols))
    expected = 0
    for direction, _, text in frames("KRAKEN.ws.48.0"):
        msg: Any = json.loads(text)
        if direction == "in" and isinstance(msg, list) and msg[-2] == "trade":
            expected += len(msg[1])
    got = [e for e in events if isinstance(e, Trade)]
    assert len(got) == expected > 0
    assert events == got  # heartbeats, acks and the status message give nothing
    assert got[0] == Trade(
        "kraken-v1", "XMR-USD", 354.11, 0.89594024, Side.SELL, None, 1618678142_557535000, got[0].recv_ns
    )
    assert {t.symbol for t in got} <= set(symbols)


def test_tickers_are_quotes() -> None:
    symbols = configuration()["ticker"]
    # The recording subscribed "ticker"; wsmux subscribes "spread" for quotes
    # (same pairs), and parses both into Quote.
    _, events, _ = replay("KRAKEN.ws.49.0", quotes("kraken-v1", *symbols), same_subscribe=False)
    got = [e for e in events if isinstance(e, Quote)]
    expected = sum(
        1
        for direction, _, text in frames("KRAKEN.ws.49.0")
        if direction == "in" and text.startswith("[") and json.loads(text)[-2] == "ticker"
    )
    assert len(got) == expected > 0
    assert events == got
    assert got[0] == Quote("kraken-v1", "WAVES-EUR", 13.2329, 185.18432037, 13.2539, 35.72892241, None, got[0].recv_ns)
    assert all(q.bid_price < q.ask_price for q in got)


def test_v1_price_text_is_not_rendered_with_rest_pair_decimals() -> None:
    """Why books keep the venue's text: the number of decimals Kraken v1 writes
    is fixed per pair but is *not* AssetPairs ``pair_decimals`` (XBT/CHF: 1 in
    REST, 5 on the wire), so re-rendering with the REST precision would break
    every checksum."""
    body = (RECORDINGS / "KRAKEN.0").read_text(encoding="utf-8").splitlines()[0].partition(": ")[2]
    pairs = {v["wsname"]: v for v in json.loads(body)["result"].values() if "wsname" in v}
    widths: dict[str, set[int]] = {}
    for direction, _, text in frames("KRAKEN.ws.50.0"):
        msg = json.loads(text)
        if direction != "in" or not isinstance(msg, list):
            continue
        for payload in msg[1:-2]:
            for key in ("as", "bs", "a", "b"):
                for entry in payload.get(key, ()):
                    widths.setdefault(msg[-1], set()).add(len(entry[0].partition(".")[2]))
    assert all(len(w) == 1 for w in widths.values())  # one width per pair
    assert widths["XBT/CHF"] == {5} and pairs["XBT/CHF"]["pair_decimals"] == 1
    assert widths["XMR/USD"] == {8} and pairs["XMR/USD"]["pair_decimals"] == 2
