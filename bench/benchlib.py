"""Shared pieces of the wsmux benchmarks: results, baselines, generated streams.

* :class:`BenchResult` — one measured figure set (``msgs_per_s``,
  ``us_per_msg``, latency percentiles...) with free-form ``info``;
  :func:`report` wraps results with the machine description for ``--json``.
* :func:`compare` — the pure baseline comparison: which gated metrics got
  slower than a stored baseline by more than a threshold.
* :func:`generate_script` — a realistic stream for one venue, rendered by the
  venue's own mock server (:mod:`wsmux.testing`) without any network: the
  mock talks to an in-memory connection, its REST snapshot answers are taken
  from its ``http`` method, and a :class:`~wsmux._pipeline.Feed` checks while
  generating that the stream syncs every book and has no gap.
* :func:`replay_script` — feed a script into a fresh Feed (warm-up part), the
  starting point of the parse benchmarks and of the profiler.

Nothing here measures on import; every function is deterministic given its
seed except for the wall-clock timestamps the mocks embed in frames.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from wsmux import exchanges
from wsmux._pipeline import Feed, FetchSnapshot, Send
from wsmux.adapter import Adapter, Outgoing
from wsmux.model import BookUpdate, Channel, Event, Gap, MarketEvent, Trade
from wsmux.subscriptions import Subscription

__all__ = [
    "GATED_METRICS",
    "LATENCY_METRICS",
    "quiesce",
    "HIGHER_IS_BETTER",
    "BenchResult",
    "Comparison",
    "Script",
    "compare",
    "event_key",
    "format_comparisons",
    "format_results",
    "generate_script",
    "machine_info",
    "mock_classes",
    "percentiles",
    "replay_script",
    "report",
    "rest_key",
    "script_venues",
]

SCHEMA = 1

HIGHER_IS_BETTER = frozenset({"msgs_per_s", "events_per_s", "mb_per_s", "compression_ratio"})
"""Metrics where a larger number is better; every other metric is a cost."""

GATED_METRICS = frozenset({"us_per_msg"})
"""Metrics a baseline comparison flags by default. ``msgs_per_s`` is the
reciprocal of ``us_per_msg``. Latency percentiles are not gated by default:
on a shared 2-core machine the scheduler alone moves p99 by 5-10x between
runs, and at 50K msg/s wsmux sits at its capacity, where p50 is bimodal
(keeps up: ~100 µs; falls behind: ~100 ms). ``LATENCY_METRICS`` adds them."""

LATENCY_METRICS = frozenset({"p50_us", "p99_us"})
"""Added to the gated metrics by ``--gate-latency``; p99.9 is never gated."""


def quiesce() -> None:
    """Collect garbage and move every live object out of the collector's
    reach (``gc.freeze``) before a timed section.

    The benchmark process holds the generated streams (millions of objects);
    without this a full collection walks them all in the middle of a latency
    run and shows up as a ~100 ms stall at p99 (measured: wsmux p99 at 10K
    msg/s went from 85 ms to a few ms). A long-running application holding a
    large heap sees the same pauses: see the report on ``gc.freeze`` after
    start-up.
    """
    gc.collect()
    gc.freeze()


# --- results ------------------------------------------------------------------------


@dataclass
class BenchResult:
    """One benchmark's figures.

    Attributes:
        name: dotted id, stable across runs (``feed.binance``,
            ``e2e.saturation.wsmux-websockets``); the baseline key.
        metrics: numbers (``msgs_per_s``, ``us_per_msg``, ``p50_us``...).
        info: anything else worth keeping (counts, sizes, settings).
    """

    name: str
    metrics: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "metrics": dict(self.metrics), "info": dict(self.info)}


def throughput(name: str, count: int, seconds: float, **info: Any) -> BenchResult:
    """A result for ``count`` messages handled in ``seconds``."""
    seconds = max(seconds, 1e-12)
    return BenchResult(
        name,
        {"msgs_per_s": count / seconds, "us_per_msg": seconds / max(count, 1) * 1e6},
        {"count": count, "seconds": round(seconds, 6), **info},
    )


def percentiles(samples_ns: Sequence[int] | Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max of nanosecond samples, in microseconds.

    Nearest-rank on the sorted samples (no interpolation); empty input gives
    NaN everywhere.
    """
    if not samples_ns:
        nan = math.nan
        return {"p50_us": nan, "p90_us": nan, "p99_us": nan, "p999_us": nan, "max_us": nan, "mean_us": nan}
    ordered = sorted(samples_ns)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] / 1e3

    return {
        "p50_us": rank(0.50),
        "p90_us": rank(0.90),
        "p99_us": rank(0.99),
        "p999_us": rank(0.999),
        "max_us": ordered[-1] / 1e3,
        "mean_us": statistics.fmean(ordered) / 1e3,
    }


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import wsmux

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "wsmux": getattr(wsmux, "__version__", "?"),
    }


def report(results: Iterable[BenchResult], *, quick: bool, argv: Sequence[str] = ()) -> dict[str, Any]:
    """The ``--json`` document: schema, machine, settings and results."""
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": quick,
        "argv": list(argv),
        "machine": machine_info(),
        "results": [r.to_json() for r in results],
    }


def format_results(results: Iterable[BenchResult]) -> str:
    """A plain-text table: name, msgs/s, µs/msg and latency percentiles."""
    lines = [f"{'benchmark':<44}{'msgs/s':>12}{'µs/msg':>9}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}  notes"]
    for r in results:
        m = r.metrics

        def cell(key: str, width: int, fmt: str, m: Mapping[str, float] = m) -> str:
            value = m.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return " " * (width - 1) + "-"
            return format(value, fmt).rjust(width)

        notes = r.info.get("note", "")
        if "compression_ratio" in m:
            notes = f"compression {m['compression_ratio']:.2f}x {notes}".strip()
        lines.append(
            f"{r.name:<44}{cell('msgs_per_s', 12, ',.0f')}{cell('us_per_msg', 9, '.2f')}"
            f"{cell('p50_us', 9, '.1f')}{cell('p99_us', 9, '.1f')}{cell('p999_us', 10, '.1f')}  {notes}"
        )
    return "\n".join(lines)


# --- baseline comparison -----------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One metric of one benchmark against the baseline.

    Attributes:
        slowdown: fractional slowdown, positive = slower (``0.2`` = 20 %
            slower). For a cost metric it is ``current / baseline - 1``; for
            a rate it is ``baseline / current - 1``, so both read the same way.
        regressed: ``slowdown`` is above the threshold.
        improved: the run is faster by more than the threshold.
    """

    name: str
    metric: str
    baseline: float
    current: float
    slowdown: float
    regressed: bool
    improved: bool


def _slowdown(metric: str, base: float, cur: float) -> float:
    if metric in HIGHER_IS_BETTER:
        return math.inf if cur <= 0 else base / cur - 1.0
    return math.inf if base <= 0 else cur / base - 1.0


def _results_by_name(doc: Mapping[str, Any] | Iterable[BenchResult]) -> dict[str, Mapping[str, float]]:
    if isinstance(doc, Mapping):
        items = doc.get("results", [])
        return {str(r["name"]): dict(r.get("metrics", {})) for r in items}
    return {r.name: r.metrics for r in doc}


def compare(
    current: Mapping[str, Any] | Iterable[BenchResult],
    baseline: Mapping[str, Any] | Iterable[BenchResult],
    *,
    threshold: float = 0.15,
    metrics: Iterable[str] = GATED_METRICS,
) -> list[Comparison]:
    """Compare a run with a stored baseline (both ``--json`` documents or result lists).

    Only benchmarks present in both, and only the gated ``metrics`` present
    in both with finite values, are compared; the order follows ``current``.

    Args:
        current: this run.
        baseline: the stored run.
        threshold: fractional slowdown that counts as a regression (0.15 = 15 %).
        metrics: which metrics to compare.

    Returns:
        One :class:`Comparison` per compared metric.
    """
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    wanted = set(metrics)
    cur = _results_by_name(current)
    base = _results_by_name(baseline)
    out: list[Comparison] = []
    for name, cur_metrics in cur.items():
        base_metrics = base.get(name)
        if base_metrics is None:
            continue
        for metric in sorted(wanted & set(cur_metrics) & set(base_metrics)):
            b, c = float(base_metrics[metric]), float(cur_metrics[metric])
            if not (math.isfinite(b) and math.isfinite(c)):
                continue
            slow = _slowdown(metric, b, c)
            out.append(Comparison(name, metric, b, c, slow, slow > threshold, slow < -threshold))
    return out


def format_comparisons(comparisons: Sequence[Comparison], threshold: float) -> str:
    """A table of the comparisons, regressions marked."""
    if not comparisons:
        return "baseline: nothing comparable (no common benchmark names)"
    lines = [f"baseline comparison (threshold {threshold:.0%}; + = slower):"]
    for c in comparisons:
        mark = "REGRESSION" if c.regressed else ("faster" if c.improved else "ok")
        lines.append(
            f"  {c.name:<44}{c.metric:<11}{c.baseline:>12.2f} -> {c.current:>12.2f}  {c.slowdown:+7.1%}  {mark}"
        )
    regressed = sum(c.regressed for c in comparisons)
    lines.append(f"  {regressed} regression(s) in {len(comparisons)} compared figure(s)")
    return "\n".join(lines)


# --- generated venue streams ---------------------------------------------------------

#: Symbols the mocks list per venue (two per venue, like a small real session).
SYMBOLS: dict[str, tuple[str, ...]] = {
    "binance-usdm": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
    "binance-coinm": ("BTC-USD-PERP", "ETH-USD-PERP"),
    "bybit-linear": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
    "bitget-futures": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
    "htx-swap": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
    "poloniex-futures": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
    "kraken": ("BTC-USD", "ETH-USD"),
    "kraken-v1": ("BTC-USD", "ETH-USD"),
    "coinbase": ("BTC-USD", "ETH-USD"),
    "coinbase-advanced": ("BTC-USD", "ETH-USD"),
    "bitfinex": ("BTC-USD", "ETH-USD"),
    "deribit": ("BTC-USD-PERP", "ETH-USD-PERP"),
    "bitmex": ("BTC-USD-PERP", "ETH-USDT-PERP"),
    "phemex": ("BTC-USD-PERP", "BTC-USDT-PERP"),
    "hyperliquid": ("BTC-USD-PERP", "ETH-USD-PERP"),
    "dydx": ("BTC-USD-PERP", "ETH-USD-PERP"),
    "bithumb": ("BTC-KRW", "ETH-KRW"),
    "kraken-futures": ("BTC-USD-PERP", "ETH-USD-PERP"),
    "gemini": ("BTC-USD", "ETH-USD"),
    "gemini-v2": ("BTC-USD", "ETH-USD"),
    "bitstamp": ("BTC-USD", "ETH-USD"),
    "kraken-futures-inverse": ("BTC-USD-PERP", "ETH-USD-PERP"),
    "mexc-futures": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
    "bitflyer": ("BTC-JPY", "BTC-JPY-PERP"),
    "upbit": ("BTC-KRW", "ETH-KRW"),
    "kucoin-futures": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
    "gateio-futures": ("BTC-USDT-PERP", "ETH-USDT-PERP"),
}
DEFAULT_SYMBOLS = ("BTC-USDT", "ETH-USDT")
CHANNELS = (Channel.BOOK, Channel.TRADES, Channel.QUOTES)
FAKE_WS = "ws://127.0.0.1:9"
FAKE_REST = "http://127.0.0.1:9"


def mock_classes() -> dict[str, type[Any]]:
    """Mock exchange classes of :mod:`wsmux.testing` by venue id."""
    from wsmux import testing
    from wsmux.testing import MockExchange

    out: dict[str, type[Any]] = {}
    for name in getattr(testing, "__all__", ()):
        obj = getattr(testing, name, None)
        if inspect.isclass(obj) and issubclass(obj, MockExchange) and obj is not MockExchange:
            venue = getattr(obj, "venue", None)
            if isinstance(venue, str) and not inspect.isabstract(obj):
                out.setdefault(venue, obj)
    return out


def script_venues() -> list[str]:
    """Registered venues that have a mock to generate their stream."""
    mocks = mock_classes()
    return [v for v in exchanges.names() if v in mocks]


def rest_key(url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """Canonical key of a REST request: path and sorted query (host ignored)."""
    parts = urlsplit(url)
    query = sorted([*parse_qsl(parts.query), *params])
    return parts.path + "?" + "&".join(f"{k}={v}" for k, v in query)


def event_key(event: Event) -> tuple[str, str, int | None, str | None] | None:
    """Identity of a market event, to match it with the frame it came from."""
    if not isinstance(event, MarketEvent):
        return None
    seq = getattr(event, "seq", None)
    trade_id = event.trade_id if isinstance(event, Trade) else None
    if seq is None and trade_id is None:
        return None
    return (type(event).__name__, getattr(event, "symbol", ""), seq, trade_id)


@dataclass
class Script:
    """One venue's session, as frames: what the benchmarks replay or serve.

    Attributes:
        venue: venue id.
        subscriptions: what the client subscribes (one connection's worth).
        target: request target of the WebSocket (path and query).
        client_messages: the messages the client sends after connecting.
        warmup: frames the venue sends before the measured part (handshake
            acks, stream snapshots, the first diff that triggers a REST fetch).
        rest: REST snapshot bodies by :func:`rest_key`.
        data: the measured frames (text frames as ``str``, binary as bytes).
        frame_keys: per data frame, the :func:`event_key` of its first event.
        frame_events: per data frame, the number of market events it gives.
        ws_path: the path the mock serves WebSockets under (the adapter URL's path).
        warm_events: market events the warm-up produces in a client.
        data_events: market events the data frames produce.
        events_by_type: every event of the generation run, by type name.
        gen_seconds: how long generating took.
    """

    venue: str
    subscriptions: list[Subscription]
    target: str
    client_messages: list[Outgoing]
    warmup: list[str | bytes]
    rest: dict[str, bytes]
    data: list[str | bytes]
    frame_keys: list[tuple[str, str, int | None, str | None] | None]
    frame_events: list[int] = field(default_factory=list)
    ws_path: str = ""
    warm_events: int = 0
    data_events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    gen_seconds: float = 0.0
    generated_ns: int = 0
    """Wall time when the mock stamped the frames (their venue timestamps): feed
    the frames with this receive time, not the current clock, or after 60 s
    every event looks late to the quality gate (and costs a counter update)."""

    @property
    def data_bytes(self) -> int:
        return sum(len(f) for f in self.data)

    def to_wire(self) -> dict[str, Any]:
        """A JSON-able description for the bench server process."""
        return {
            "venue": self.venue,
            "target": self.target,
            "client_messages": len(self.client_messages),
            "warmup": [_wire(f) for f in self.warmup],
            "rest": {k: v.decode("latin-1") for k, v in self.rest.items()},
            "data": [_wire(f) for f in self.data],
        }


def _wire(frame: str | bytes) -> list[Any]:
    if isinstance(frame, str):
        return [1, frame]
    return [2, frame.hex()]


class _MemoryWs:
    """Stands in for a server-side ``websockets`` connection of a mock."""

    def __init__(self, target: str) -> None:
        self.request = _Request(target)
        self.sent: list[str | bytes] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: str | bytes) -> None:
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


class _Request:
    def __init__(self, path: str) -> None:
        self.path = path
        self.headers: dict[str, str] = {}


def subscriptions_for(venue: str, symbols: Sequence[str] | None = None) -> list[Subscription]:
    """Book, trades and quotes of ``symbols`` where the venue offers them,
    restricted to the route of the book (one connection's worth)."""
    cls = exchanges.get(venue)
    adapter = cls(url=FAKE_WS, rest_url=FAKE_REST)
    symbols = list(symbols or SYMBOLS.get(venue, DEFAULT_SYMBOLS))
    subs = [Subscription(venue, ch, s) for s in symbols for ch in CHANNELS if ch in cls.channels]
    routes = [adapter.route(s) for s in subs]
    book_route = next((r for s, r in zip(subs, routes, strict=True) if s.channel is Channel.BOOK), routes[0])
    return [s for s, r in zip(subs, routes, strict=True) if r == book_route]


def generate_script(
    venue: str,
    steps: int,
    *,
    seed: int = 1,
    symbols: Sequence[str] | None = None,
    levels: int = 50,
    chunk: int = 50,
) -> Script:
    """Render ``steps`` market steps per symbol of ``venue``'s mock into a :class:`Script`.

    Raises:
        LookupError: the venue has no mock.
        RuntimeError: the generated stream did not sync a book or had a gap
            (a mock/adapter disagreement: the benchmark would be meaningless).
    """
    return asyncio.run(_generate(venue, steps, seed, symbols, levels, chunk))


async def _generate(
    venue: str, steps: int, seed: int, symbols: Sequence[str] | None, levels: int, chunk: int
) -> Script:
    started = time.perf_counter()
    mock_cls = mock_classes().get(venue)
    if mock_cls is None:
        raise LookupError(f"no mock exchange for {venue!r}")
    subs = subscriptions_for(venue, symbols)
    sym_list = list(dict.fromkeys(s.symbol for s in subs))
    mock = mock_cls(sym_list, seed=seed, levels=levels)
    adapter = exchanges.get(venue)(url=FAKE_WS + mock.ws_path, rest_url=FAKE_REST)
    adapter.reset()
    request = adapter.connect_request()
    if request is not None:  # a pre-connect REST call (KuCoin's bullet), answered by the mock
        answer = mock.rest(request.method, urlsplit(request.url).path, dict(request.params))
        if answer is None or answer[0] != 200:
            raise RuntimeError(f"{venue}: mock refused the pre-connect request: {answer}")
        adapter.use_connect_response(answer[1])
    url = adapter.connect_url(subs)
    messages = adapter.subscribe(subs)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    ws = _MemoryWs(target)
    from wsmux.testing import MockConnection

    conn = MockConnection(ws, 1)  # type: ignore[arg-type]
    mock.connections[1] = conn
    counts: dict[str, int] = {}
    market_events = 0
    gaps: list[Event] = []
    first_key: list[Any] = [None]

    def sink(event: Event) -> None:
        nonlocal market_events
        name = type(event).__name__
        counts[name] = counts.get(name, 0) + 1
        if isinstance(event, MarketEvent):
            market_events += 1
            if first_key[0] is None:
                first_key[0] = event_key(event)
        elif isinstance(event, Gap):
            gaps.append(event)

    feed = Feed(adapter, sink)
    for sub in subs:
        if sub.channel is Channel.BOOK:
            feed.add_book(sub)
    rest: dict[str, bytes] = {}
    received: list[str | bytes] = []
    keys: list[Any] = []
    per_frame: list[int] = []

    async def drain() -> None:
        while ws.sent:
            frame = ws.sent.pop(0)
            if adapter.compressed and isinstance(frame, bytes):
                frame = adapter.decompress(frame)  # scripts hold what a connection hands the feed
            received.append(frame)
            first_key[0] = None
            before = market_events
            feed.on_frame(frame.encode() if isinstance(frame, str) else frame, time.time_ns())
            keys.append(first_key[0])
            # a REST snapshot is answered at once: its events count with the frame that asked for it
            for action in feed.take_actions():
                if isinstance(action, FetchSnapshot):
                    key = rest_key(action.request.url, action.request.params)
                    answer = mock.http(urlsplit(action.request.url).path, dict(action.request.params))
                    if answer is None or answer[0] != 200:
                        raise RuntimeError(f"{venue}: mock refused snapshot {key}: {answer}")
                    rest[key] = answer[1]
                    feed.on_snapshot_body(action.symbol, answer[1], time.time_ns(), action.channel)
                elif isinstance(action, Send):
                    for message in action.messages:
                        await mock.on_message(conn, message)
            per_frame.append(market_events - before)

    await mock.on_open(conn)
    for message in messages:
        await mock.on_message(conn, message)
    await drain()
    warmup = list(received)
    warm_events = market_events
    received.clear()
    keys.clear()
    per_frame.clear()
    done = 0
    ping_every = getattr(mock, "ping_every", 0) or 0
    if ping_every:
        chunk = min(chunk, ping_every)  # answer each server ping before the mock sends the next
    while done < steps:
        n = min(chunk, steps - done)
        await mock.publish(n)
        done += n
        await drain()
    invalid = [s for s, sync in feed.syncs.items() if not sync.valid]
    if gaps or invalid or ws.closed is not None:
        raise RuntimeError(
            f"{venue}: generated stream is not clean (gaps {len(gaps)}, invalid books {invalid}, closed {ws.closed})"
        )
    if feed.stats.parse_errors:
        raise RuntimeError(f"{venue}: {feed.stats.parse_errors} frames of the generated stream failed to parse")
    return Script(
        venue=venue,
        subscriptions=subs,
        target=target,
        client_messages=messages,
        warmup=warmup,
        rest=rest,
        data=list(received),
        frame_keys=list(keys),
        frame_events=list(per_frame),
        ws_path=str(getattr(mock, "ws_path", "")),
        warm_events=warm_events,
        data_events=market_events - warm_events,
        events_by_type=counts,
        gen_seconds=time.perf_counter() - started,
        generated_ns=time.time_ns(),
    )


def replay_script(script: Script, sink: Callable[[Event], object]) -> tuple[Feed, list[bytes]]:
    """A fresh adapter and Feed brought to the state at the start of the data
    frames (warm-up fed, snapshots answered from :attr:`Script.rest`).

    Returns:
        The feed and the data frames as bytes (what a connection hands over).
    """
    adapter: Adapter = exchanges.get(script.venue)(url=FAKE_WS, rest_url=FAKE_REST)
    adapter.reset()
    adapter.connect_url(script.subscriptions)
    adapter.subscribe(script.subscriptions)
    feed = Feed(adapter, sink)
    for sub in script.subscriptions:
        if sub.channel is Channel.BOOK:
            feed.add_book(sub)
    now = script.generated_ns or time.time_ns()
    for frame in script.warmup:
        feed.on_frame(frame.encode() if isinstance(frame, str) else frame, now)
        for action in feed.take_actions():
            if isinstance(action, FetchSnapshot):
                body = script.rest[rest_key(action.request.url, action.request.params)]
                feed.on_snapshot_body(action.symbol, body, now, action.channel)
    data = [f.encode() if isinstance(f, str) else f for f in script.data]
    return feed, data


def is_book_update(event: Event) -> bool:
    return type(event) is BookUpdate
