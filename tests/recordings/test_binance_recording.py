"""Replay the real 2021 Binance spot recording through the adapter and Feed.

``BINANCE.ws.1.0`` is one combined-stream connection (``depth@100ms``,
``bookTicker``, ``kline_1m`` and ``aggTrade`` for NKNUSDT, BLZETH, LRCBTC and
RUNEEUR); ``BINANCE.http.0.0`` holds the ``/api/v3/depth?limit=1000``
snapshot fetched for each symbol while the connection ran. The replay feeds the
frames in order to :class:`wsmux._pipeline.Feed` and answers each
``FetchSnapshot`` with the recorded body for that symbol once the replay clock
reaches the recorded response time (or at once, if the request comes later),
so buffered diffs older than the snapshot are dropped exactly as they were
live. Every recorded book must sync, no gap may be reported, and no book may
ever cross. Every recorded ``kline`` frame must become one
:class:`~wsmux.Candle` equal to what this test reads from the frame itself.

The recordings live outside the repository (``../shared/recordings``); the
test skips when they are absent.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from wsmux import book, candles, quotes, trades
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.model import BookUpdate, Candle, Error, Event, Gap, Quote, Resynced, Trade

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "recordings"
WS = RECORDINGS / "BINANCE.ws.1.0"
HTTP = RECORDINGS / "BINANCE.http.0.0"

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not (WS.is_file() and HTTP.is_file()), reason=f"recordings not found at {RECORDINGS}"),
]

#: The unified names of the recorded symbols.
SYMBOLS = {"NKNUSDT": "NKN-USDT", "BLZETH": "BLZ-ETH", "LRCBTC": "LRC-BTC", "RUNEEUR": "RUNE-EUR"}


def ws_frames(path: Path) -> tuple[str, list[tuple[float, str]]]:
    """The connection URL and the received ``(time, text)`` frames."""
    frames: list[tuple[float, str]] = []
    with path.open(encoding="utf-8") as fh:
        url = fh.readline().split(" <-> ")[0]
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("wss://"):
                continue
            stamp, sep, text = line.partition(": ")
            assert sep, line[:80]
            frames.append((float(stamp), text))
    return url, frames


def snapshots(path: Path) -> dict[str, tuple[float, bytes]]:
    """Recorded REST bodies by native symbol: ``(response time, body)``."""
    out: dict[str, tuple[float, bytes]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            request, _, rest = line.partition(" -> ")
            stamp, _, body = rest.partition(": ")
            symbol = dict(parse_qsl(urlsplit(request).query))["symbol"]
            out[symbol] = (float(stamp), body.encode())
    return out


def replay() -> tuple[Feed, list[Event], list[str], dict[str, int]]:
    """Run the recording through a Feed; return it, its events, the snapshot
    symbols in the order they were requested and the number of crossed checks."""
    _, frames = ws_frames(WS)
    bodies = snapshots(HTTP)
    adapter = BinanceSpotAdapter()
    events: list[Event] = []
    feed = Feed(adapter, events.append)
    subs = [
        *book("binance", *SYMBOLS.values()),
        *quotes("binance", *SYMBOLS.values()),
        *trades("binance", *SYMBOLS.values()),
        *candles("binance", *SYMBOLS.values()),
    ]
    for sub in subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    adapter.connect_url(subs)
    adapter.reset()
    assert adapter.subscribe(subs) == []  # all named in the URL
    requested: list[str] = []
    due: list[tuple[float, str]] = []  # (response time, unified symbol) of requested snapshots
    checks = {"updates_checked": 0}

    def take_actions(now: float) -> None:
        for action in feed.take_actions():
            assert not isinstance(action, Send), action
            assert isinstance(action, FetchSnapshot)
            params = dict(action.request.params)
            assert action.request.url == "https://api.binance.com/api/v3/depth"
            assert params["limit"] == "1000"
            requested.append(action.symbol)
            stamp, _ = bodies[params["symbol"]]
            heapq.heappush(due, (max(stamp, now), action.symbol))

    def deliver_until(now: float) -> None:
        while due and due[0][0] <= now:
            stamp, symbol = heapq.heappop(due)
            native = adapter.to_native(symbol)
            feed.on_snapshot_body(symbol, bodies[native][1], int(stamp * 1e9))
            take_actions(stamp)
            assert_not_crossed(feed)

    for stamp, text in frames:
        deliver_until(stamp)
        feed.on_frame(text.encode(), int(stamp * 1e9))
        take_actions(stamp)
        checks["updates_checked"] += assert_not_crossed(feed)
    deliver_until(float("inf"))
    return feed, events, requested, checks


def assert_not_crossed(feed: Feed) -> int:
    checked = 0
    for symbol, sync in feed.syncs.items():
        if sync.valid:
            bid, ask = sync.book.best_bid(), sync.book.best_ask()
            if bid is not None and ask is not None:
                assert bid[0] < ask[0], f"{symbol} crossed: {bid} >= {ask}"
                checked += 1
    return checked


def iter_types(events: list[Event], cls: type[Event]) -> Iterator[Event]:
    return (e for e in events if isinstance(e, cls))


def test_every_recorded_book_syncs_without_gaps() -> None:
    feed, events, requested, checks = replay()
    resynced = [e for e in iter_types(events, Resynced)]
    gaps = list(iter_types(events, Gap))
    assert gaps == []
    assert sorted(e.symbol for e in resynced) == sorted(SYMBOLS.values())  # type: ignore[attr-defined]
    assert sorted(requested) == sorted(SYMBOLS.values())  # one snapshot each, no refetch
    for symbol, sync in feed.syncs.items():
        assert sync.valid, symbol
        assert sync.stats.gaps == 0 and sync.stats.crossed == 0 and sync.stats.refetches == 0
        sync.book._check()
    assert checks["updates_checked"] > 100


def test_recorded_sync_details() -> None:
    feed, events, _, _ = replay()
    nkn = feed.syncs["NKN-USDT"]
    # The first NKNUSDT diff [499869750, 499869752] predates the snapshot 499869752: dropped;
    # the next one [499869753, 499869754] bridges it (U <= lastUpdateId + 1 <= u).
    assert nkn.stats.stale >= 1
    assert nkn.book.seq == 499870179  # the last recorded diff's u
    applied = [e for e in iter_types(events, BookUpdate) if e.symbol == "NKN-USDT"]  # type: ignore[attr-defined]
    assert applied[0].first_seq == 499869753  # type: ignore[attr-defined]
    for prev, cur in itertools.pairwise(applied):
        assert cur.first_seq == prev.seq + 1  # type: ignore[attr-defined, operator]
    # RUNEEUR: one stale diff before the snapshot 15602511, one applied after it.
    rune = feed.syncs["RUNE-EUR"]
    assert rune.book.seq == 15602513


def test_recorded_trades_and_quotes() -> None:
    _, events, _, _ = replay()
    trades_ = list(iter_types(events, Trade))
    assert len(trades_) == 2
    assert {t.symbol for t in trades_} == {"NKN-USDT", "LRC-BTC"}  # type: ignore[attr-defined]
    quotes_ = list(iter_types(events, Quote))
    assert len(quotes_) == 84
    for q in quotes_:
        assert q.bid_price < q.ask_price  # type: ignore[attr-defined]
    assert list(iter_types(events, Error)) == []  # every recorded frame is understood


def expected_candles() -> list[tuple[object, ...]]:
    """The candles of the recorded ``kline`` frames, read here from the raw
    JSON by the Binance stream docs' field names (independent of the adapter):
    ``(symbol, interval, start ns, o, h, l, c, base volume, final, event ns)``."""
    out: list[tuple[object, ...]] = []
    for _, text in ws_frames(WS)[1]:
        data = json.loads(text)["data"]
        if data.get("e") != "kline":
            continue
        k = data["k"]
        out.append(
            (
                SYMBOLS[k["s"]],
                k["i"],
                k["t"] * 1_000_000,
                float(k["o"]),
                float(k["h"]),
                float(k["l"]),
                float(k["c"]),
                float(k["v"]),
                k["x"],
                data["E"] * 1_000_000,
            )
        )
    return out


def test_recorded_klines_become_candles() -> None:
    _, events, _, _ = replay()
    got = [
        (c.symbol, c.interval, c.start_ts, c.open, c.high, c.low, c.close, c.volume, c.closed, c.ts)
        for c in iter_types(events, Candle)  # type: ignore[attr-defined]
    ]
    want = expected_candles()
    assert len(want) == 2  # NKNUSDT and LRCBTC, both the forming 16:28 candle
    assert got == want
    nkn = got[0]
    assert nkn[0] == "NKN-USDT" and nkn[2] == 1633998480_000_000_000 and nkn[8] is False
