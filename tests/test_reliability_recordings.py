"""Redundancy, quality and trade tapes on real recorded traffic.

Each recording is replayed through two independent :class:`~wsmux._pipeline.Feed`
instances — two "connections" carrying the same subscriptions — with the
second one lagging by a seeded jitter of 0 to 3 ms per frame. The first
connection dies a third of the way through (its feed reports the disconnect
gaps). Every event of both goes through one :class:`~wsmux.reliability.Arbiter`,
and the test plays the multiplexer: it applies the delivered book events to
the caller's own books (and the new source's book on a rebase). Checked:

* after every delivered book event, the caller's book equals the live book of
  the connection the arbiter names as source, and at the end equals the
  surviving connection's book;
* every trade of the single-connection reference reaches the caller exactly
  once; quotes reach it once per ``seq``, in increasing order;
* no book gap reaches the caller (a valid connection always remained);
* the trade tapes have no hole and the quality gate passes everything
  (exact counts).

Binance books are *ordered* (update ids ``U``/``u``, REST snapshots);
Coinbase ``level2`` books carry no sequence (the arbiter follows one source
and rebases on fallback). The recordings live outside the repository
(``../shared/recordings``); the tests skip when they are absent.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from wsmux import book, quotes, trades
from wsmux._pipeline import Feed, FetchSnapshot
from wsmux.adapter import Adapter
from wsmux.book import OrderBook
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.exchanges.coinbase import CoinbaseAdapter
from wsmux.model import BookSnapshot, BookUpdate, Channel, Event, Gap, Quote, Resynced, Trade
from wsmux.reliability import Arbiter, Quality, QualityGate, TradeSequencer, TradeVerdict
from wsmux.subscriptions import Subscription

pytestmark = pytest.mark.recordings

MS = 1_000_000


def received(path: Path) -> list[tuple[int, str]]:
    """The received frames of a ``*.ws.N.0`` recording: ``(recv_ns, text)``."""
    out: list[tuple[int, str]] = []
    with path.open(encoding="utf-8") as fh:
        fh.readline()
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("wss://"):
                continue
            stamp, sep, text = line.partition(": ")
            assert sep
            out.append((int(float(stamp) * 1e9), text))
    return out


class Replay:
    """Two feeds, one arbiter, the caller's view (see the module docstring)."""

    def __init__(
        self,
        make_adapter: Callable[[], Adapter],
        subs: list[Subscription],
        bodies: dict[str, tuple[int, bytes]] | None = None,
    ) -> None:
        self.arbiter = Arbiter()
        self.bodies = bodies or {}
        self.feeds: dict[int, Feed] = {}
        self.adapters: dict[int, Adapter] = {}
        for conn in (1, 2):
            adapter = make_adapter()
            feed = Feed(adapter, self._sink(conn))
            for sub in subs:
                if sub.channel is Channel.BOOK:
                    feed.add_book(sub)
            adapter.connect_url(subs)
            adapter.reset()
            adapter.subscribe(subs)
            self.feeds[conn] = feed
            self.adapters[conn] = adapter
        self.books: dict[str, OrderBook] = {}
        self.delivered: list[Event] = []
        self.all_events: dict[int, list[Event]] = {1: [], 2: []}
        self.compared = 0
        self.rebases = 0
        self._queue: list[tuple[int, int, int, str, object]] = []
        self._order = 0

    def _sink(self, conn: int) -> Callable[[Event], None]:
        def sink(event: Event) -> None:
            self.all_events[conn].append(event)
            arb = self.arbiter
            ok = arb.accept(conn, event)
            for change in arb.take_changes():
                if change.rebase:  # the multiplexer delivers the new source's book
                    live = self.feeds[change.new].book(change.symbol)
                    assert live is not None and live.valid
                    self.books[change.symbol] = live.copy()
                    self.rebases += 1
            if not ok:
                return
            self.delivered.append(event)
            if isinstance(event, BookSnapshot):
                fresh = OrderBook(event.venue, event.symbol)
                fresh.apply_snapshot(event.bids, event.asks)
                self.books[event.symbol] = fresh
            elif isinstance(event, BookUpdate):
                self.books[event.symbol].apply_update(event.bids, event.asks)
            else:
                return
            source = arb.book_source(event.venue, event.symbol)
            assert source is not None
            live = self.feeds[source].book(event.symbol)
            assert live is not None and live.valid
            assert self.books[event.symbol].depth() == live.depth(), (event, source)
            self.compared += 1

        return sink

    def _push(self, when: int, conn: int, kind: str, payload: object) -> None:
        heapq.heappush(self._queue, (when, conn, self._order, kind, payload))
        self._order += 1

    def run(self, frames: list[tuple[int, str]], *, cut: int, seed: int) -> None:
        rng = random.Random(seed)
        lagged = 0
        for i, (stamp, text) in enumerate(frames):
            if i < cut:
                self._push(stamp, 1, "frame", text)
            elif i == cut:
                self._push(stamp, 1, "disconnect", None)
            lagged = max(lagged, stamp + rng.randrange(0, 3 * MS))
            self._push(lagged, 2, "frame", text)
        down: set[int] = set()
        while self._queue:
            when, conn, _, kind, payload = heapq.heappop(self._queue)
            if conn in down:
                continue
            feed = self.feeds[conn]
            if kind == "frame":
                feed.on_frame(str(payload), when)
            elif kind == "snapshot":
                symbol, body = payload  # type: ignore[misc]
                feed.on_snapshot_body(symbol, body, when)
            else:
                feed.on_disconnect(when)
                down.add(conn)
                continue
            for action in feed.take_actions():
                assert isinstance(action, FetchSnapshot), action
                native = dict(action.request.params)["symbol"]
                stamp, body = self.bodies[native]
                self._push(max(stamp, when), conn, "snapshot", (action.symbol, body))

    def of(self, conn: int, cls: type[Event]) -> list[Event]:
        return [e for e in self.all_events[conn] if isinstance(e, cls)]


def check_redundancy(replay: Replay, symbols: list[str]) -> Counter[str]:
    """The checks common to every venue; returns the delivered event counts."""
    reference = replay.all_events[2]  # the surviving connection saw everything
    # no book gap reached the caller: a valid connection always remained
    assert [e for e in replay.delivered if isinstance(e, Gap)] == []
    assert replay.of(1, Gap), "connection 1 should have reported its disconnect"
    # trades: exactly once
    ref_trades = Counter((e.symbol, e.trade_id) for e in reference if isinstance(e, Trade))
    got_trades = Counter((e.symbol, e.trade_id) for e in replay.delivered if isinstance(e, Trade))
    assert got_trades == ref_trades and max(got_trades.values()) == 1
    # quotes: once per seq, increasing
    ref_quotes = {(e.symbol, e.seq) for e in reference if isinstance(e, Quote)}
    by_symbol: dict[str, list[int]] = defaultdict(list)
    for e in replay.delivered:
        if isinstance(e, Quote):
            assert e.seq is not None
            by_symbol[e.symbol].append(e.seq)
    for seqs in by_symbol.values():
        assert seqs == sorted(set(seqs))
    assert {(s, q) for s, seqs in by_symbol.items() for q in seqs} == ref_quotes
    # books: equal to the survivor's at the end
    for symbol in symbols:
        live = replay.feeds[2].book(symbol)
        assert live is not None and live.valid
        assert replay.books[symbol].depth() == live.depth(), symbol
        assert replay.arbiter.book_source(replay.adapters[2].venue, symbol) == 2
    replay.arbiter._check()
    return Counter(type(e).__name__ for e in replay.delivered)


def gate_and_tape(events: list[Event]) -> tuple[Counter[Quality], Counter[TradeVerdict]]:
    gate = QualityGate()
    tape = TradeSequencer()
    verdicts: Counter[Quality] = Counter(gate.check(e) for e in events)
    tapes: Counter[TradeVerdict] = Counter(tape.on_trade(e) for e in events if isinstance(e, Trade))
    assert tape.take_gaps() == []
    return verdicts, tapes


# --- Coinbase: unordered books -----------------------------------------------------------

COINBASE = [
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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coinbase_recording_through_two_connections(recordings_dir: Path, seed: int) -> None:
    path = recordings_dir / "COINBASE.ws.28.0"
    if not path.is_file():
        pytest.skip("COINBASE.ws.28.0 absent")
    frames = received(path)
    subs = [*book("coinbase", *COINBASE), *quotes("coinbase", *COINBASE), *trades("coinbase", *COINBASE)]
    replay = Replay(lambda: CoinbaseAdapter(heartbeats=False), subs)
    replay.run(frames, cut=len(frames) // 3, seed=seed)
    counts = check_redundancy(replay, COINBASE)
    assert counts["Trade"] == 97 and counts["Quote"] == 107
    assert counts["BookSnapshot"] == 10 and counts["Resynced"] == 10  # the first sync only
    assert replay.rebases == 10  # one per book when connection 1 died: no seq to continue by
    assert replay.compared > 9000
    verdicts, tapes = gate_and_tape(replay.all_events[2])
    # one real TS_PAST: the ticker Coinbase sends on subscribe for the illiquid
    # CRV-EUR carries its last change time, 107 s old (deliver-and-count case)
    assert verdicts == {Quality.OK: len(replay.all_events[2]) - 1, Quality.TS_PAST: 1}
    first_crv = next(e for e in replay.all_events[2] if isinstance(e, Quote) and e.symbol == "CRV-EUR")
    assert first_crv.ts is not None and first_crv.recv_ns - first_crv.ts > 100 * 10**9
    assert tapes == {TradeVerdict.NEW: 97}


# --- Binance: ordered books (REST snapshot + U/u diffs) ---------------------------------------

BINANCE = {"NKNUSDT": "NKN-USDT", "BLZETH": "BLZ-ETH", "LRCBTC": "LRC-BTC", "RUNEEUR": "RUNE-EUR"}


def binance_bodies(path: Path) -> dict[str, tuple[int, bytes]]:
    out: dict[str, tuple[int, bytes]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            request, _, rest = line.partition(" -> ")
            stamp, _, body = rest.partition(": ")
            out[dict(parse_qsl(urlsplit(request).query))["symbol"]] = (int(float(stamp) * 1e9), body.encode())
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binance_recording_through_two_connections(recordings_dir: Path, seed: int) -> None:
    ws, http = recordings_dir / "BINANCE.ws.1.0", recordings_dir / "BINANCE.http.0.0"
    if not (ws.is_file() and http.is_file()):
        pytest.skip("Binance recordings absent")
    frames = received(ws)
    symbols = list(BINANCE.values())
    subs = [*book("binance", *symbols), *quotes("binance", *symbols), *trades("binance", *symbols)]
    replay = Replay(BinanceSpotAdapter, subs, binance_bodies(http))
    replay.run(frames, cut=len(frames) // 3, seed=seed)
    counts = check_redundancy(replay, symbols)
    assert replay.rebases == 0  # ordered: the survivor continues past the mark
    assert counts["Resynced"] == 4
    ref_updates = len(replay.of(2, BookUpdate))
    assert 0 < counts["BookUpdate"] <= ref_updates
    assert replay.arbiter.stats.jumps == 0
    assert replay.arbiter.stats.source_changes > 0
    verdicts, tapes = gate_and_tape(replay.all_events[2])
    assert set(verdicts) == {Quality.OK}
    assert tapes == {TradeVerdict.NEW: 2}
    assert [e for e in replay.all_events[2] if isinstance(e, Resynced)] != []
