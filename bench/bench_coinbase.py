"""Coinbase adapters: parse, and parse + book (L2 sync / L3 order book) per message.

Streams are rendered by the Coinbase mocks without sockets:

* ``l2``: ``level2_batch`` + ``matches`` + ``ticker`` of one product
  (one ``l2update`` per market step, a ``match``/``ticker`` per trade);
* ``full``: the ``full`` channel (order-by-order: ``received``/``open``/
  ``match``/``done``/``change``) synced from the mock's REST level-3 book;
* ``advanced``: Advanced Trade ``l2_data`` + ``market_trades`` + ``ticker``;
* ``recording``: the real 2021 recording ``COINBASE.ws.28.0`` when
  ../shared/recordings is present.

``bench/bench_feed.py`` also reports ``feed.coinbase``/``feed.coinbase-advanced``
(generic generated streams) and ``recording.coinbase``.

Run: ``.venv/bin/python bench/bench_coinbase.py [steps]``
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from wsmux._pipeline import Feed, FetchSnapshot
from wsmux.adapter import Adapter
from wsmux.credentials import Credentials
from wsmux.exchanges.coinbase import CoinbaseAdapter, CoinbaseAdvancedAdapter
from wsmux.model import Channel, Event
from wsmux.subscriptions import Subscription, book, l3, quotes, trades
from wsmux.testing._server import MockConnection
from wsmux.testing.coinbase import MockCoinbase, MockCoinbaseAdvanced

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "recordings"
CREDS = Credentials("bench", "YmVuY2g=", "bench")
SYMBOL = "BTC-USD"


def exchange_frames(steps: int, channels: list[str]) -> tuple[list[str], bytes]:
    """Frames of ``steps`` market steps and the REST level-3 book taken first."""
    mock = MockCoinbase([SYMBOL], seed=1, heartbeat_every=0)
    conn = MockConnection(None, 1)  # type: ignore[arg-type]  # rendering needs no socket
    conn.topics.update((name, SYMBOL) for name in channels)
    frames: list[str] = []
    if "level2_batch" in channels:
        frames.append(mock._snapshot(SYMBOL))
    answer = mock.http(f"/products/{SYMBOL}/book", {"level": "3"})
    assert answer is not None
    market = mock.markets[SYMBOL]
    for _ in range(steps):
        frames.extend(str(f) for f in mock._deliver(conn, SYMBOL, mock._advance(SYMBOL, market.step())))
    return frames, answer[1]


def advanced_frames(steps: int) -> list[str]:
    """Frames of the Advanced Trade mock for ``steps`` market steps."""
    sent: list[str] = []

    class _Ws:
        async def send(self, message: str) -> None:
            sent.append(message)

    async def render() -> None:
        mock = MockCoinbaseAdvanced([SYMBOL], seed=1)
        conn = MockConnection(_Ws(), 1)  # type: ignore[arg-type]
        mock.connections[1] = conn
        for channel in ("level2", "market_trades", "ticker"):
            await mock.on_message(conn, f'{{"type":"subscribe","product_ids":["{SYMBOL}"],"channel":"{channel}"}}')
        await mock.publish(steps)

    asyncio.run(render())
    return sent


def recording_frames() -> list[str]:
    path = RECORDINGS / "COINBASE.ws.28.0"
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line and not line.startswith("wss://"):
                out.append(line.partition(": ")[2])
    return out


def best(fn: Callable[[], float], repeat: int = 5) -> float:
    return min(fn() for _ in range(repeat))


def measure(
    label: str,
    make: Callable[[], Adapter],
    subs: list[Subscription],
    frames: list[str],
    rest_body: bytes | None = None,
) -> None:
    data = [f.encode() for f in frames]

    def parse_only() -> float:
        adapter = make()
        adapter.subscribe(subs)
        t0 = time.perf_counter()
        for frame in data:
            adapter.parse(frame, 0)
        return time.perf_counter() - t0

    events = 0

    def with_book() -> float:
        nonlocal events
        adapter = make()
        counter = [0]

        def sink(_: Event) -> None:
            counter[0] += 1

        feed = Feed(adapter, sink)
        for sub in subs:
            if sub.channel is Channel.BOOK:
                feed.add_book(sub)
            elif sub.channel is Channel.L3:
                feed.add_l3(sub)
        adapter.subscribe(subs)
        t0 = time.perf_counter()
        for frame in data:
            feed.on_frame(frame, 0)
            if feed.actions:
                for action in feed.take_actions():
                    if isinstance(action, FetchSnapshot) and rest_body is not None:
                        feed.on_snapshot_body(action.symbol, rest_body, 0, action.channel)
        elapsed = time.perf_counter() - t0
        for sub in subs:
            if sub.channel is Channel.BOOK:
                assert feed.syncs[sub.symbol].valid, f"{label}: book not synced"
            elif sub.channel is Channel.L3:
                assert feed.l3_syncs[sub.symbol].valid, f"{label}: L3 book not synced"
        assert feed.stats.gaps == 0 and feed.stats.parse_errors == 0, f"{label}: {feed.stats}"
        events = counter[0]
        return elapsed

    n = len(data)
    p = best(parse_only)
    b = best(with_book)
    print(
        f"{label:<28}{n:>8} msgs  parse {n / p:>10,.0f} msg/s {p / n * 1e6:>6.2f} µs/msg"
        f"   parse+book {n / b:>10,.0f} msg/s {b / n * 1e6:>6.2f} µs/msg  ({events} events)"
    )


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    frames, _ = exchange_frames(steps, ["level2_batch", "matches", "ticker"])
    measure(
        "coinbase l2+matches+ticker",
        CoinbaseAdapter,
        [*book("coinbase", SYMBOL), *trades("coinbase", SYMBOL), *quotes("coinbase", SYMBOL)],
        frames,
    )
    frames, body = exchange_frames(steps // 4, ["full"])
    measure(
        "coinbase full (L3)",
        lambda: CoinbaseAdapter(credentials=CREDS),
        list(l3("coinbase", SYMBOL)),
        frames,
        body,
    )
    frames = advanced_frames(steps)
    measure(
        "coinbase-advanced",
        CoinbaseAdvancedAdapter,
        [
            *book("coinbase-advanced", SYMBOL),
            *trades("coinbase-advanced", SYMBOL),
            *quotes("coinbase-advanced", SYMBOL),
        ],
        frames,
    )
    recorded = recording_frames()
    if recorded:
        products = [
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
        measure(
            "recording COINBASE.ws.28.0",
            CoinbaseAdapter,
            [*book("coinbase", *products), *trades("coinbase", *products), *quotes("coinbase", *products)],
            recorded,
        )


if __name__ == "__main__":
    main()
