"""cryptofeed's per-message handler cost on the recorded frames (for comparison only).

Runs in a SEPARATE virtualenv that has ``cryptofeed`` (never a wsmux
dependency)::

    python -m venv /tmp/cfvenv && /tmp/cfvenv/bin/pip install cryptofeed==2.4.1
    /tmp/cfvenv/bin/python bench/bench_cryptofeed.py [--recordings DIR] [--repeat 3]

It imports nothing from wsmux. The set-up follows cryptofeed's own
``raw_data_collection.playback`` (the recordings come from its
``sample_data``): symbol data and REST snapshots are answered from the
recorded files (Binance's symbol list, not recorded, is built for the four
recorded pairs), callbacks are no-op coroutines, and the timed loop is
``await handler(message, conn, timestamp)`` over the received frames, held
in memory as ``str``. Prints one JSON object per venue on stdout, the
figures ``bench/run.py`` shows beside ``recordings.<venue>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "recordings"

BINANCE_PAIRS = {"NKN-USDT": "NKNUSDT", "BLZ-ETH": "BLZETH", "LRC-BTC": "LRCBTC", "RUNE-EUR": "RUNEEUR"}


def _frames(path: Path) -> list[tuple[float, str]]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith(("wss://", "https://", "http://")):
                continue
            stamp, _, message = line.partition(": ")
            out.append((float(stamp), message))
    return out


def _rest(paths: list[Path]) -> dict[str, list[str]]:
    cache: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("http"):
                    url, _, rest = line.rstrip("\n").partition(" -> ")
                    cache[url].append(rest.split(": ", 1)[1])
    return cache


def _symbol_data(path: Path) -> tuple[list[Any], dict[str, list[str]]]:
    data: list[Any] = []
    config: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("configuration: "):
                config = json.loads(line.split(": ", 1)[1])
            elif line.strip():
                data.append(json.loads(line.split(": ", 1)[1]))
    return data, config


async def _bench(venue: str, directory: Path, repeat: int, checksum: bool = False) -> dict[str, Any]:
    from cryptofeed.connection import HTTPAsyncConn, HTTPSync
    from cryptofeed.defines import CANDLES, L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges import EXCHANGE_MAP
    from cryptofeed.symbols import Symbols

    def fresh_symbols() -> list[Any]:
        if venue != "BINANCE":
            return _symbol_data(directory / f"{venue}.0")[0]
        return [
            {
                "symbols": [
                    {
                        "symbol": native,
                        "baseAsset": std.split("-")[0],
                        "quoteAsset": std.split("-")[1],
                        "filters": [{"tickSize": "0.00000001"}],
                    }
                    for std, native in BINANCE_PAIRS.items()
                ]
            }
        ]

    symbol_data = fresh_symbols()
    if venue == "BINANCE":
        ws_file = directory / "BINANCE.ws.1.0"
        pairs = list(BINANCE_PAIRS)
        sub = {L2_BOOK: pairs, TRADES: pairs, TICKER: pairs, CANDLES: pairs}
        rest_files = [directory / "BINANCE.http.0.0"]
    else:
        ws_file = directory / "KRAKEN.ws.50.0"
        sub = _symbol_data(directory / f"{venue}.0")[1]
        rest_files = sorted(directory.glob(f"{venue}.http.*"))
    frames = _frames(ws_file)
    rest = _rest(rest_files)

    async def read(self: Any, url: str, **kwargs: Any) -> Any:
        return rest[url][0]

    def symbols(*args: Any, **kwargs: Any) -> Any:
        return symbol_data.pop(0)

    HTTPAsyncConn.read = read  # type: ignore[method-assign]
    HTTPSync.read = symbols  # type: ignore[method-assign]
    count = [0]

    async def callback(*args: Any, **kwargs: Any) -> None:
        count[0] += 1

    class FakeConn:
        conn_type = "wss"
        uuid = "1"

        async def write(self, *args: Any, **kwargs: Any) -> None:
            return None

        async def read(self, url: str, **kwargs: Any) -> Any:
            return rest[url][0]

    best = float("inf")
    for _ in range(max(1, repeat)):
        Symbols.clear()
        if not symbol_data:
            symbol_data.extend(fresh_symbols())
        extra = {"checksum_validation": True} if checksum else {}
        feed = EXCHANGE_MAP[venue](
            candle_closed_only=False, subscription=sub, callbacks={ch: callback for ch in sub}, **extra
        )
        conn = FakeConn()
        conn.subscription = {
            feed.std_channel_to_exchange(c): [feed.std_symbol_to_exchange_symbol(s) for s in sub[c]] for c in sub
        }  # type: ignore[attr-defined]
        handler = None
        for _, subscribe, handle, _auth in feed.connect():
            await subscribe(conn)
            handler = handle
        assert handler is not None
        count[0] = 0
        t0 = time.perf_counter()
        for stamp, message in frames:
            await handler(message, conn, stamp)
        best = min(best, time.perf_counter() - t0)
        feed.stop()
        await feed.shutdown()
    n = len(frames)
    return {
        "venue": venue.lower() + ("+checksum" if checksum else ""),
        "file": ws_file.name,
        "count": n,
        "callbacks": count[0],
        "msgs_per_s": n / best,
        "us_per_msg": best / n * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=Path, default=RECORDINGS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--venue", action="append", default=None)
    args = parser.parse_args()
    from importlib.metadata import version

    for name in args.venue or ["BINANCE", "KRAKEN", "KRAKEN+checksum", "COINBASE"]:
        venue, _, flag = name.partition("+")
        if venue == "COINBASE":
            # cryptofeed 2.4 speaks only Coinbase Advanced Trade (and wants API
            # keys to list symbols); the 2021 recording is the Exchange/Pro feed.
            result = {"venue": "coinbase", "error": "cryptofeed 2.4 has no Coinbase Exchange (Pro) feed to replay"}
        else:
            try:
                result = asyncio.run(_bench(venue, args.recordings, args.repeat, checksum=flag == "checksum"))
            except Exception as exc:
                result = {"venue": name.lower(), "error": f"{type(exc).__name__}: {exc}"}
        result["cryptofeed"] = version("cryptofeed")
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
