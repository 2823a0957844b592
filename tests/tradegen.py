"""Generated and recorded trade streams for the analytics tests."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from wsmux import Event, Side, Trade

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND  # 2023-11-14 22:13:20 UTC


def random_trades(
    n: int,
    *,
    seed: int,
    tick: float = 0.01,
    lot_decimals: int = 5,
    mean_gap_ns: int = 300_000_000,
    late_share: float = 0.0,
    sideless_share: float = 0.1,
    venue: str = "v",
    symbol: str = "S",
    start_ns: int = T0,
) -> list[Trade]:
    """A random walk of ``n`` trades on a ``tick`` grid with sizes of ``lot_decimals``
    decimals (parsed from text, as adapters do); ``late_share`` of them carry a time
    up to 3 s before the newest trade (late)."""
    rng = random.Random(seed)
    ticks = 300_000
    ts = start_ns
    decimals = max(0, -int(f"{tick:e}".split("e")[1]))
    out: list[Trade] = []
    for i in range(n):
        ts += int(rng.expovariate(1 / mean_gap_ns))
        ticks = max(1, ticks + rng.choice((-2, -1, -1, 0, 0, 0, 1, 1, 2)))
        price = float(f"{ticks * tick:.{decimals}f}")
        size = float(f"{rng.randint(1, 10 ** (lot_decimals + 1)) / 10**lot_decimals:.{lot_decimals}f}")
        r = rng.random()
        side = None if r < sideless_share else (Side.BUY if rng.random() < 0.5 else Side.SELL)
        t = ts - rng.randint(1, 3 * SECOND) if rng.random() < late_share else ts
        out.append(Trade(venue, symbol, price, size, side, str(i), t, t + 5_000_000))
    return out


def recorded_events(recordings: Path) -> Iterator[Event]:
    """Every event of every text capture of ../shared/recordings, capture by capture."""
    from wsmux.log import Replay

    for path in sorted(recordings.glob("*.ws.*")):
        yield from Replay([path], skip_unsupported=True).events()


def write_coinbase_log(directory: Path, trades: list[Trade], product: str = "BTC-USD") -> list[Trade]:
    """A wsmux log of Coinbase ``match`` frames carrying ``trades`` (times truncated
    to µs, as Coinbase sends them); returns the trades as the log carries them."""
    import datetime as dt

    import orjson

    from wsmux.log import Direction, LogHeader, LogWriter

    url = "wss://ws-feed.exchange.coinbase.com"
    maker = {Side.BUY: "sell", Side.SELL: "buy", None: "buy"}  # Coinbase sends the maker's side
    carried: list[Trade] = []
    with LogWriter(directory, LogHeader(venue="coinbase", endpoint=url), prefix="coinbase") as log:
        log.write(Direction.OPEN, trades[0].recv_ns - 1, 1, "[]", url)
        for i, t in enumerate(trades):
            assert t.ts is not None
            us = t.ts // 1_000
            when = dt.datetime.fromtimestamp(us // 1_000_000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            frame = {
                "type": "match", "trade_id": i + 1, "maker_order_id": "m", "taker_order_id": "t",
                "side": maker[t.side], "size": repr(t.size), "price": repr(t.price), "product_id": product,
                "sequence": i + 1, "time": f"{when}.{us % 1_000_000:06d}Z",
            }  # fmt: skip
            log.write(Direction.IN, t.recv_ns, 1, orjson.dumps(frame).decode())
            side = t.side or Side.SELL
            carried.append(Trade("coinbase", product, t.price, t.size, side, str(i + 1), us * 1_000, t.recv_ns, i + 1))
    return carried
