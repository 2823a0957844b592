"""Replay the real 2021 KuCoin spot recording through the adapter and Feed.

``KUCOIN.ws.1.0`` is one connection carrying ``/market/level2``,
``/market/match``, ``/market/ticker`` and 1-minute candles for 10 symbols;
``KUCOIN.http.0.0`` holds the level-2 REST snapshot (``sequence``) fetched for
each symbol while it ran. The replay feeds the frames in order to
:class:`wsmux._pipeline.Feed` and answers each ``FetchSnapshot`` with the
recorded body once the replay clock reaches its recorded response time.

Beside it, :class:`ReferenceBook` rebuilds every book from the raw JSON with
the sheet's procedure (``shared/exchanges/kucoin.md``, "Spot L2 sync") and no
wsmux code: buffer, snapshot, drop messages with ``sequenceEnd <= S``, skip
changes with per-price ``sequence <= S`` in the straddling message, check
``sequenceStart <= last + 1`` and ``sequenceEnd > last`` on every message,
ignore price ``"0"``. After every book event the Feed's book must equal the
reference level by level, and no gap may be reported.

The recordings live outside the repository (``../shared/recordings``); the
test skips when they are absent.
"""

from __future__ import annotations

import heapq
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from wsmux import book, candles, quotes, trades
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.exchanges.kucoin import KucoinAdapter
from wsmux.model import BookSide, BookUpdate, Candle, Error, Event, Gap, Quote, Resynced, Trade

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"
WS = RECORDINGS / "KUCOIN.ws.1.0"
HTTP = RECORDINGS / "KUCOIN.http.0.0"

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not (WS.is_file() and HTTP.is_file()), reason=f"recordings not found at {RECORDINGS}"),
]

SYMBOLS = ("EQZ-BTC", "ANKR-BTC", "SNX-BTC", "FET-BTC", "BCHSV-USDT", "NRG-BTC", "CAPP-BTC", "DAPPT-BTC", "COV-BTC")
#: LTX-USDT was subscribed but sent no level2 message and got no snapshot.


def ws_frames(path: Path) -> list[tuple[float, str]]:
    frames: list[tuple[float, str]] = []
    with path.open(encoding="utf-8") as fh:
        fh.readline()
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("wss://"):
                continue
            stamp, sep, text = line.partition(": ")
            assert sep, line[:80]
            frames.append((float(stamp), text))
    return frames


def snapshots(path: Path) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line:
                request, _, rest = line.partition(" -> ")
                stamp, _, body = rest.partition(": ")
                out[dict(parse_qsl(urlsplit(request).query))["symbol"]] = (float(stamp), body)
    return out


class ReferenceBook:
    """The sheet's spot level-2 procedure on plain dicts (independent of wsmux)."""

    def __init__(self) -> None:
        self.buffer: list[dict[str, object]] = []
        self.sides: dict[str, dict[Decimal, Decimal]] | None = None
        self.last: int | None = None
        self.links = 0

    def snapshot(self, body: str) -> None:
        data = json.loads(body)["data"]
        self.sides = {side: {Decimal(p): Decimal(s) for p, s in data[side]} for side in ("bids", "asks")}
        snapshot_seq = int(data["sequence"])
        self.last = snapshot_seq
        pending, self.buffer = self.buffer, []
        for msg in pending:
            self.update(msg, snapshot_seq)

    def update(self, data: dict[str, object], snapshot_seq: int | None = None) -> None:
        if self.sides is None:
            self.buffer.append(data)
            return
        assert self.last is not None
        start, end = int(data["sequenceStart"]), int(data["sequenceEnd"])  # type: ignore[call-overload]
        if end <= self.last:
            return  # older than the book
        assert start <= self.last + 1 and end > self.last, f"gap: [{start}, {end}] after {self.last}"
        self.links += 1
        changes = data["changes"]
        for side in ("bids", "asks"):
            for price, size, seq in changes[side]:  # type: ignore[index]
                if snapshot_seq is not None and int(seq) <= snapshot_seq:
                    continue  # already in the snapshot (the straddling message)
                if price == "0":
                    continue  # placeholder: advances the sequence only
                if Decimal(size) == 0:
                    self.sides[side].pop(Decimal(price), None)
                else:
                    self.sides[side][Decimal(price)] = Decimal(size)
        self.last = end

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        assert self.sides is not None
        bids = sorted(self.sides["bids"].items(), reverse=True)
        asks = sorted(self.sides["asks"].items())
        return [(float(p), float(s)) for p, s in bids], [(float(p), float(s)) for p, s in asks]


def replay() -> tuple[Feed, list[Event], dict[str, ReferenceBook], list[str], int]:
    frames = ws_frames(WS)
    bodies = snapshots(HTTP)
    adapter = KucoinAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    subs = [*book("kucoin", *SYMBOLS), *quotes("kucoin", *SYMBOLS), *trades("kucoin", *SYMBOLS)]
    subs += candles("kucoin", *SYMBOLS)
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    assert len(adapter.subscribe(subs)) == 4  # one topic string per channel (<= 100 symbols each)
    refs = {symbol: ReferenceBook() for symbol in SYMBOLS}
    requested: list[str] = []
    due: list[tuple[float, str]] = []
    compared = 0

    def take_actions(now: float) -> None:
        for action in feed.take_actions():
            assert not isinstance(action, Send), action
            assert isinstance(action, FetchSnapshot)
            assert action.request.url == "https://api.kucoin.com/api/v1/market/orderbook/level2_100"
            native = dict(action.request.params)["symbol"]
            requested.append(action.symbol)
            assert len(requested) <= len(SYMBOLS), f"refetching {action.symbol}: the book broke"
            heapq.heappush(due, (max(bodies[native][0], now), action.symbol))

    def compare(symbol: str) -> int:
        sync = feed.syncs[symbol]
        assert sync.valid, symbol
        bids, asks = refs[symbol].levels()
        assert list(sync.book.levels(BookSide.BID)) == bids, symbol
        assert list(sync.book.levels(BookSide.ASK)) == asks, symbol
        assert sync.book.seq == refs[symbol].last
        return 1

    for stamp, text in frames:
        while due and due[0][0] <= stamp:
            when, symbol = heapq.heappop(due)
            before = len(events)
            feed.on_snapshot_body(symbol, bodies[symbol][1].encode(), int(when * 1e9))
            refs[symbol].snapshot(bodies[symbol][1])
            take_actions(when)
            if any(isinstance(e, Resynced) for e in events[before:]) or feed.syncs[symbol].valid:
                compared += compare(symbol)
        msg = json.loads(text)
        if msg.get("subject") == "trade.l2update":
            refs[msg["data"]["symbol"]].update(msg["data"])
        before = len(events)
        feed.on_frame(text.encode(), int(stamp * 1e9))
        take_actions(stamp)
        for event in events[before:]:
            if isinstance(event, BookUpdate):
                assert event.seq == refs[event.symbol].last
                compared += compare(event.symbol)
    return feed, events, refs, requested, compared


def test_every_recorded_book_event_matches_an_independent_rebuild() -> None:
    feed, events, refs, requested, compared = replay()
    assert [e for e in events if isinstance(e, Gap)] == []
    assert sorted(requested) == sorted(SYMBOLS)  # one snapshot each, no refetch
    assert sorted(e.symbol for e in events if isinstance(e, Resynced)) == sorted(SYMBOLS)
    for symbol, sync in feed.syncs.items():
        assert sync.valid, symbol
        assert sync.stats.gaps == 0 and sync.stats.crossed == 0 and sync.stats.refetches == 0
        sync.book._check()
    updates = sum(isinstance(e, BookUpdate) for e in events)
    links = sum(ref.links for ref in refs.values())
    assert updates > 1000
    assert links >= updates  # every applied message's sequence link was checked by the rebuild
    assert compared >= updates + len(SYMBOLS)


def test_recorded_trades_quotes_and_candles() -> None:
    _, events, _, _, _ = replay()
    trades_ = [e for e in events if isinstance(e, Trade)]
    assert len(trades_) == 18
    first = next(t for t in trades_ if t.symbol == "DAPPT-BTC" and t.trade_id == "6085c09769bc506996295e36")
    assert (first.price, first.size, first.side.value, first.seq) == (0.0000001117, 81.8814, "buy", 1612701563869)
    assert first.ts == 1619378327739050725  # ns on the wire
    quotes_ = [e for e in events if isinstance(e, Quote)]
    assert len(quotes_) == 830
    assert all(q.bid_price < q.ask_price for q in quotes_)
    # the ticker's sequence is the sequence of a book change (per-price sequences of level2)
    changes: dict[str, set[int]] = {}
    for _, text in ws_frames(WS):
        msg = json.loads(text)
        if msg.get("subject") == "trade.l2update":
            data = msg["data"]
            for side in ("bids", "asks"):
                changes.setdefault(data["symbol"], set()).update(int(c[2]) for c in data["changes"][side])
    lined_up = [q for q in quotes_ if q.symbol in changes and min(changes[q.symbol]) <= (q.seq or 0)]
    assert len(lined_up) > 800
    assert all(q.seq in changes[q.symbol] for q in lined_up)
    candles_ = [e for e in events if isinstance(e, Candle)]
    assert len(candles_) == 6
    dappt = [c for c in candles_ if c.symbol == "DAPPT-BTC"]
    assert dappt[1].start_ts == 1619378280 * 10**9
    assert (dappt[1].open, dappt[1].close, dappt[1].high, dappt[1].low) == (
        0.0000001117,
        0.0000001123,
        0.0000001123,
        0.0000001117,
    )
    assert dappt[1].volume == 3437.9375
    assert [e for e in events if isinstance(e, Error)] == []
