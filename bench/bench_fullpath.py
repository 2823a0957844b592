"""The full path a user's callback sees, side by side with cryptofeed.

What is timed, per frame (``time.perf_counter_ns`` around each frame, the
timer's own cost measured and subtracted):

* **wsmux** — ``Feed.on_frame`` (adapter parse, book sync, checksum, the
  connection's data-quality gate) → the multiplexer's ``_deliver`` (circuit
  breaker, trade-id sequencer) → ``_dispatch`` → ``Stream._put`` → one sync
  callback that counts. A frame that asks for a REST snapshot is answered at
  once from the recording (the body parse and the book build are timed with
  that frame). Text frames are handed over as str (``--frames bytes``: as
  UTF-8 bytes, which is what the default websockets transport delivers).
* **cryptofeed 2.4.1** (when importable: ``pip install cryptofeed==2.4.1``) —
  its exchange handler ``await handler(message, conn, timestamp)`` with
  counting callbacks, REST snapshots answered from the same recording: the
  set-up of ``bench_cryptofeed.py``, run here in the same process.

Frames are split into *steady* frames and *snapshot* frames (those where a
book was (re)built from a snapshot, on either side: the same frame indices
for both libraries), reported separately. Runs are interleaved (wsmux,
cryptofeed, wsmux, ...) after ``gc.freeze()``; the figure is the median of
the repeats with min-max beside it.

Sources: the real recordings in ``../shared/recordings`` (skipped when
absent) and realistic generated streams from each venue's mock (book depth
and frame mix like the venue; see ``GENERATED``). Run::

    .venv/bin/python bench/bench_fullpath.py [--repeat 7] [--only binance]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from wsmux import book, quotes, trades
from wsmux._pipeline import Feed, FetchSnapshot
from wsmux.exchanges import get as get_adapter
from wsmux.model import Event
from wsmux.multiplexer import Multiplexer
from wsmux.stream import Stream
from wsmux.subscriptions import Subscription

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "recordings"

__all__ = ["Case", "main", "run_case"]


@dataclass
class Case:
    """One venue's frames and how to answer its REST snapshots."""

    name: str
    venue: str
    subs: list[Subscription]
    frames: list[str | bytes]
    rest: Callable[[FetchSnapshot], bytes]
    cryptofeed: Callable[[], Any] | None = None
    """A factory of a cryptofeed run (see :func:`_cryptofeed_runner`), or None."""
    recv_ns: list[int] | None = None
    """Each frame's receive time: the recorded one, or the generation time of
    a generated stream (venue timestamps must look as fresh as they were, or
    the quality gate counts every event as late)."""
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)


# --- wsmux side ------------------------------------------------------------------------------


def full_path(case: Case, metrics: bool = True) -> tuple[Feed, list[int]]:
    """A Feed wired to a multiplexer and one stream with a counting sync
    callback, as a live connection would be; and the callback's count (a
    one-item list). ``metrics``: the multiplexer's metrics on, sampled as on a
    busy connection (one frame and one stream event in ``sample_every``), or
    off (``Multiplexer(metrics=False)``)."""
    mux = Multiplexer() if metrics else Multiplexer(metrics=False)
    stream = Stream(tuple(case.subs), name="bench", clock_ns=time.time_ns)
    count = [0]

    def callback(event: Event) -> None:
        count[0] += 1

    stream.on(Event, callback)
    attach = getattr(mux, "_attach_stream", None)
    if attach is not None:
        attach(stream)
    else:  # multiplexers before the hot-path rework (to compare with them)
        for sub in case.subs:
            mux._routes.setdefault((sub.venue, sub.channel, sub.symbol), []).append(stream)
        mux._venue_streams.setdefault(case.venue, []).append(stream)
        mux._streams.append(stream)
    adapter = get_adapter(case.venue)()
    adapter.reset()
    adapter.connect_url(case.subs)
    adapter.subscribe(case.subs)
    feed = Feed(adapter, mux._deliver)
    if hasattr(mux, "_wire_feed"):
        mux._wire_feed(feed)
    if getattr(mux, "metrics", None) is not None:  # a busy connection: one frame in sample_every
        feed.sample_mask = mux.metrics.sample_every - 1
    for sub in case.subs:
        if sub.channel.value == "book":
            feed.add_book(sub)
    return feed, count


def wsmux_runner(case: Case, metrics: bool = True) -> Callable[[], tuple[list[int], set[int], int]]:
    """A function that runs the case once through the full path (see
    :func:`full_path`) and returns (ns per frame, indices of snapshot frames,
    callbacks)."""

    def run() -> tuple[list[int], set[int], int]:
        feed, count = full_path(case, metrics)
        snapshots: set[int] = set()
        stats = feed.stats
        times: list[int] = []
        clock = time.perf_counter_ns
        on_frame = feed.on_frame
        stamps = case.recv_ns or [time.time_ns()] * len(case.frames)
        for i, frame in enumerate(case.frames):
            before = stats.resyncs
            recv_ns = stamps[i]
            t0 = clock()
            on_frame(frame, recv_ns)
            if feed.actions:
                for action in feed.take_actions():
                    if isinstance(action, FetchSnapshot):
                        feed.on_snapshot_body(action.symbol, case.rest(action), recv_ns, action.channel)
            times.append(clock() - t0)
            if stats.resyncs != before:
                snapshots.add(i)
        return times, snapshots, count[0]

    return run


# --- cryptofeed side -------------------------------------------------------------------------


def cryptofeed_available() -> str | None:
    try:
        from importlib.metadata import version

        import cryptofeed  # noqa: F401
    except Exception:
        return None
    return version("cryptofeed")


def _cryptofeed_runner(
    venue: str, ws_file: Path, rest_files: list[Path], sub: dict[str, list[str]], symbol_data: Callable[[], list[Any]],
    checksum: bool,
) -> Callable[[], tuple[list[int], int]]:
    """cryptofeed's handler over the frames of ``ws_file`` (see bench_cryptofeed.py)."""
    from cryptofeed.connection import HTTPAsyncConn, HTTPSync
    from cryptofeed.exchanges import EXCHANGE_MAP
    from cryptofeed.symbols import Symbols

    frames = [text for _, text in _text_frames(ws_file)]
    rest: dict[str, list[str]] = {}
    for path in rest_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("http"):
                url, _, tail = line.partition(" -> ")
                rest.setdefault(url, []).append(tail.split(": ", 1)[1])
    pending: list[Any] = []

    async def read(self: Any, url: str, **kwargs: Any) -> Any:
        return rest[url][0]

    def symbols(*args: Any, **kwargs: Any) -> Any:
        return pending.pop(0)

    HTTPAsyncConn.read = read  # type: ignore[method-assign]
    HTTPSync.read = symbols  # type: ignore[method-assign]

    class FakeConn:
        conn_type = "wss"
        uuid = "1"
        subscription: dict[str, list[str]]

        async def write(self, *args: Any, **kwargs: Any) -> None:
            return None

        async def read(self, url: str, **kwargs: Any) -> Any:
            return rest[url][0]

    def run() -> tuple[list[int], int]:
        count = [0]

        async def callback(*args: Any, **kwargs: Any) -> None:
            count[0] += 1

        async def go() -> list[int]:
            Symbols.clear()
            pending.clear()
            pending.extend(symbol_data())
            extra = {"checksum_validation": True} if checksum else {}
            feed = EXCHANGE_MAP[venue](
                candle_closed_only=False, subscription=sub, callbacks={ch: callback for ch in sub}, **extra
            )
            conn = FakeConn()
            conn.subscription = {
                feed.std_channel_to_exchange(c): [feed.std_symbol_to_exchange_symbol(s) for s in sub[c]] for c in sub
            }
            handler = None
            for _, subscribe, handle, _auth in feed.connect():
                await subscribe(conn)
                handler = handle
            assert handler is not None
            clock = time.perf_counter_ns
            stamp = time.time()
            times = []
            for message in frames:
                t0 = clock()
                await handler(message, conn, stamp)
                times.append(clock() - t0)
            feed.stop()
            await feed.shutdown()
            return times

        times = asyncio.run(go())
        return times, count[0]

    return run


# --- cases -----------------------------------------------------------------------------------


def _text_frames(path: Path) -> Iterator[tuple[str, str]]:
    """``(direction, text)`` of a text recording: ``in`` for received frames."""
    for direction, _, text in _stamped_frames(path):
        yield direction, text


def _stamped_frames(path: Path) -> Iterator[tuple[str, int, str]]:
    """``(direction, receive time ns, text)`` of a text recording."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or " <-> " in line:
                continue
            if line.startswith(("wss://", "ws://")):
                yield "out", 0, line.partition(": ")[2]
                continue
            stamp, _, text = line.partition(": ")
            yield "in", int(float(stamp) * 1e9), text


def _received(path: Path) -> tuple[list[str | bytes], list[int]]:
    frames: list[str | bytes] = []
    stamps: list[int] = []
    for direction, ns, text in _stamped_frames(path):
        if direction == "in":
            frames.append(text)
            stamps.append(ns)
    return frames, stamps


def _config(name: str) -> dict[str, list[str]]:
    for line in (RECORDINGS / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("configuration: "):
            config: dict[str, list[str]] = json.loads(line.partition(": ")[2])
            return config
    return {}


def binance_recording(with_cf: bool) -> Case | None:
    ws, http = RECORDINGS / "BINANCE.ws.1.0", RECORDINGS / "BINANCE.http.0.0"
    if not (ws.is_file() and http.is_file()):
        return None
    pairs = {"NKN-USDT": "NKNUSDT", "BLZ-ETH": "BLZETH", "LRC-BTC": "LRCBTC", "RUNE-EUR": "RUNEEUR"}
    bodies: dict[str, bytes] = {}
    for line in http.read_text(encoding="utf-8").splitlines():
        if " -> " not in line:
            continue
        request, _, tail = line.partition(" -> ")
        bodies[dict(parse_qsl(urlsplit(request).query))["symbol"]] = tail.partition(": ")[2].encode()
    symbols = list(pairs)
    subs = [*book("binance", *symbols), *trades("binance", *symbols), *quotes("binance", *symbols)]
    frames, stamps = _received(ws)

    def rest(action: FetchSnapshot) -> bytes:
        return bodies[dict(action.request.params)["symbol"]]

    cf = None
    if with_cf:
        from cryptofeed.defines import CANDLES, L2_BOOK, TICKER, TRADES

        def symbol_data() -> list[Any]:
            return [
                {
                    "symbols": [
                        {
                            "symbol": native,
                            "baseAsset": std.split("-")[0],
                            "quoteAsset": std.split("-")[1],
                            "filters": [{"tickSize": "0.00000001"}],
                        }
                        for std, native in pairs.items()
                    ]
                }
            ]

        sub = {L2_BOOK: symbols, TRADES: symbols, TICKER: symbols, CANDLES: symbols}

        def cf() -> Any:
            return _cryptofeed_runner("BINANCE", ws, [http], sub, symbol_data, False)

    return Case("binance (BINANCE.ws.1.0)", "binance", subs, frames, rest, cf, recv_ns=stamps)


def kraken_recording(with_cf: bool, checksum: bool) -> Case | None:
    ws = RECORDINGS / "KRAKEN.ws.50.0"
    if not ws.is_file():
        return None
    config = _config("KRAKEN.0")
    symbols = config.get("l2_book", [])
    subs = [*book("kraken-v1", *symbols, depth=1000)]
    for channel, maker in (("trades", trades), ("ticker", quotes)):
        if config.get(channel):
            subs.extend(maker("kraken-v1", *config[channel]))
    frames, stamps = _received(ws)

    def rest(action: FetchSnapshot) -> bytes:
        raise AssertionError("Kraken books come on the stream")

    cf = None
    if with_cf:

        def symbol_data() -> list[Any]:
            data = []
            for line in (RECORDINGS / "KRAKEN.0").read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith("configuration: "):
                    data.append(json.loads(line.split(": ", 1)[1]))
            return data

        def cf() -> Any:
            return _cryptofeed_runner("KRAKEN", ws, sorted(RECORDINGS.glob("KRAKEN.http.*")), config,
                                      symbol_data, checksum)

    label = "kraken-v1 (KRAKEN.ws.50.0)" + (", cryptofeed checksums on" if checksum else ", cryptofeed default")
    return Case(label, "kraken-v1", subs, frames, rest, cf, recv_ns=stamps)


def coinbase_recording() -> Case | None:
    ws = RECORDINGS / "COINBASE.ws.28.0"
    if not ws.is_file():
        return None
    config = _config("COINBASE.0")
    symbols = config.get("l2_book", [])
    subs = [*book("coinbase", *symbols)]
    if config.get("trades"):
        subs.extend(trades("coinbase", *config["trades"]))
    if config.get("ticker"):
        subs.extend(quotes("coinbase", *config["ticker"]))
    frames, stamps = _received(ws)

    def rest(action: FetchSnapshot) -> bytes:
        raise AssertionError("level2 books come on the stream")

    return Case("coinbase (COINBASE.ws.28.0)", "coinbase", subs, frames, rest, None,
                note="cryptofeed 2.4 has no Coinbase Exchange (Pro) feed to replay", recv_ns=stamps)


GENERATED: dict[str, dict[str, Any]] = {
    # venue: generate_script kwargs — book depth like the venue's real books
    "binance": {"levels": 1000},
    "binance-usdm": {"levels": 1000},
    "binance-coinm": {"levels": 1000},
    "bybit": {"levels": 200},
    "okx": {"levels": 400},
    "kraken": {"levels": 100},
    "bitfinex": {"levels": 25},
    "coinbase-advanced": {"levels": 500},
    "deribit": {"levels": 500},  # book.{inst}.100ms is the full book: hundreds of levels a side
    "bitmex": {"levels": 500},  # orderBookL2 is the full book
    "phemex": {"levels": 30},  # the 30-level orderbook channel
    "hyperliquid": {"levels": 20},  # l2Book: the top 20 levels a side, every message
    "bithumb": {"levels": 15},  # orderbook: the top 15 rows, every message
    "dydx": {"levels": 100},  # v4_orderbook: the full book (a few hundred levels on BTC-USD)
    "kraken-futures": {"levels": 300},
    "gemini": {"levels": 300},
    "bitstamp": {"levels": 500},
    "bitget": {"levels": 400},
    "htx": {"levels": 150, "chunk": 10},  # a server ping per 10 steps: answered between chunks
    "poloniex": {"levels": 20},
    "mexc": {"levels": 500},  # <= 1000 levels per side: what the 1000-level REST snapshot holds
    "mexc-futures": {"levels": 200},
    "bitflyer": {"levels": 500},
    "upbit": {"levels": 50},  # messages carry the top 30
    "kucoin": {"levels": 100},  # spot: the public level2_100 snapshot
    "kucoin-futures": {"levels": 500},
    "gateio": {"levels": 400},  # Order Book V2, ob.<PAIR>.400
    "gateio-futures": {"levels": 400},
    "cryptocom": {"levels": 50},  # book.<inst>.50
}


def generated(venue: str, steps: int) -> Case:
    from benchlib import generate_script, rest_key  # type: ignore[import-not-found]

    generated_ns = time.time_ns()
    script = generate_script(venue, steps, **GENERATED[venue])
    generated_ns = (generated_ns + time.time_ns()) // 2  # the mock's clock stamped the frames meanwhile
    frames: list[str | bytes] = [*script.warmup, *script.data]

    def rest(action: FetchSnapshot) -> bytes:
        body: bytes = script.rest[rest_key(action.request.url, action.request.params)]
        return body

    return Case(f"{venue} (generated, {GENERATED[venue]['levels']} levels)", venue, list(script.subscriptions),
                frames, rest, None, note="no cryptofeed run on generated frames",
                recv_ns=[generated_ns] * len(frames))


# --- running ---------------------------------------------------------------------------------


def _timer_cost() -> int:
    clock = time.perf_counter_ns
    best = 1 << 62
    for _ in range(5):
        t0 = clock()
        for _ in range(10000):
            a = clock()
            b = clock()
        best = min(best, (clock() - t0) // 10000 - (b - a) * 0)
    # one pair of calls per frame: what the loop above spends per iteration
    return best // 2


def _split(times: Sequence[int], snaps: set[int], overhead: int) -> tuple[float, float, int, int]:
    steady = [t - overhead for i, t in enumerate(times) if i not in snaps]
    snap = [t - overhead for i, t in enumerate(times) if i in snaps]
    return (
        sum(steady) / max(1, len(steady)) / 1000,
        sum(snap) / max(1, len(snap)) / 1000,
        len(steady),
        len(snap),
    )


def run_case(case: Case, repeat: int, metrics: str = "on") -> dict[str, Any]:
    """Interleaved runs of wsmux and (if any) cryptofeed; medians, min-max.
    ``metrics``: ``on``, ``off``, or ``compare`` (wsmux with metrics on and
    off interleaved, cryptofeed not run)."""
    overhead = _timer_cost()
    ours = wsmux_runner(case, metrics != "off")
    theirs = case.cryptofeed() if case.cryptofeed is not None and metrics != "compare" else None
    off = wsmux_runner(case, False) if metrics == "compare" else None
    off_steady: list[float] = []
    if off is not None:
        off()
    ours()  # warm up (imports, caches)
    if theirs is not None:
        theirs()
    w_steady: list[float] = []
    w_snap: list[float] = []
    c_steady: list[float] = []
    c_snap: list[float] = []
    snaps: set[int] = set()
    callbacks = cf_callbacks = 0
    n_steady = n_snap = 0
    gc.collect()
    gc.freeze()
    try:
        for _ in range(repeat):
            times, snaps, callbacks = ours()
            s, b, n_steady, n_snap = _split(times, snaps, overhead)
            w_steady.append(s)
            w_snap.append(b)
            if off is not None:
                otimes, _, _ = off()
                off_steady.append(_split(otimes, snaps, overhead)[0])
            if theirs is not None:
                ctimes, cf_callbacks = theirs()
                s, b, _, _ = _split(ctimes, snaps, overhead)
                c_steady.append(s)
                c_snap.append(b)
    finally:
        gc.unfreeze()
    out: dict[str, Any] = {
        "case": case.name,
        "frames": len(case.frames),
        "steady_frames": n_steady,
        "snapshot_frames": n_snap,
        "callbacks": callbacks,
        "wsmux_us": statistics.median(w_steady),
        "wsmux_us_range": [min(w_steady), max(w_steady)],
        "wsmux_snapshot_us": statistics.median(w_snap) if n_snap else None,
    }
    if off_steady:
        out.update(
            metrics_off_us=statistics.median(off_steady),
            metrics_off_us_range=[min(off_steady), max(off_steady)],
            metrics_cost_us=statistics.median([a - b for a, b in zip(w_steady, off_steady, strict=True)]),
        )
    if c_steady:
        out.update(
            cryptofeed_us=statistics.median(c_steady),
            cryptofeed_us_range=[min(c_steady), max(c_steady)],
            cryptofeed_snapshot_us=statistics.median(c_snap) if n_snap else None,
            cryptofeed_callbacks=cf_callbacks,
            ratio=statistics.median(c_steady) / statistics.median(w_steady),
        )
    elif case.note:
        out["note"] = case.note
    return out


def format_row(r: dict[str, Any]) -> str:
    lo, hi = r["wsmux_us_range"]
    text = f"{r['case']:<58} steady {r['steady_frames']:>6} fr  wsmux {r['wsmux_us']:6.2f} µs [{lo:.2f}-{hi:.2f}]"
    if "cryptofeed_us" in r:
        clo, chi = r["cryptofeed_us_range"]
        text += f"  cryptofeed {r['cryptofeed_us']:6.2f} µs [{clo:.2f}-{chi:.2f}]  x{r['ratio']:.2f}"
    if "metrics_off_us" in r:
        olo, ohi = r["metrics_off_us_range"]
        text += f"  metrics off {r['metrics_off_us']:6.2f} µs [{olo:.2f}-{ohi:.2f}]"
        text += f"  cost {r['metrics_cost_us']:+.3f} µs"
    if r.get("wsmux_snapshot_us") is not None:
        text += f"  | snapshot frames {r['snapshot_frames']}: wsmux {r['wsmux_snapshot_us']:.0f} µs"
        if r.get("cryptofeed_snapshot_us") is not None:
            text += f" cryptofeed {r['cryptofeed_snapshot_us']:.0f} µs"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repeats per case (median reported)")
    parser.add_argument("--steps", type=int, default=3000, help="market steps per symbol of generated streams")
    parser.add_argument("--only", action="append", default=None, help="run cases whose name starts with this")
    parser.add_argument("--no-generated", action="store_true", help="recordings only")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--metrics",
        choices=("on", "off", "compare"),
        default="on",
        help="wsmux metrics on (default), off, or compare: on and off interleaved (median of paired differences)",
    )
    parser.add_argument(
        "--frames",
        choices=("bytes", "str"),
        default="str",
        help="what wsmux is handed: str (default, as in every figure so far), or UTF-8 bytes, as its "
        "default (websockets) transport delivers text frames; cryptofeed always gets str, as its "
        "transport delivers them",
    )
    args = parser.parse_args(argv)
    cf = cryptofeed_available()
    print(f"cryptofeed: {cf or 'not installed (pip install cryptofeed==2.4.1 to compare)'}", file=sys.stderr)
    builders: list[Callable[[], Case | None]] = [
        lambda: binance_recording(cf is not None),
        lambda: kraken_recording(cf is not None, True),
        lambda: kraken_recording(cf is not None, False),
        coinbase_recording,
    ]
    if not args.no_generated:
        for venue in GENERATED:
            builders.append(lambda venue=venue: generated(venue, args.steps))  # type: ignore[misc]
    results = []
    for build in builders:
        try:
            case = build()
        except Exception as exc:
            print(f"skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if case is None:
            continue
        if args.only and not any(case.name.startswith(o) for o in args.only):
            continue
        if args.frames == "bytes":
            case.frames = [f.encode() if isinstance(f, str) else f for f in case.frames]
        result = run_case(case, args.repeat, args.metrics)
        results.append(result)
        print(format_row(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cryptofeed": cf, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
