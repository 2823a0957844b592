"""The ``wsmux`` command line.

``wsmux demo``    mock exchanges in-process + the real client stack + a live view
``wsmux watch``   the same view against the real venues (``binance:BTC-USDT`` ...)
``wsmux venues``  the registered venue ids

``demo``, ``watch`` and ``record`` show each venue's connection state and last
error, and exit with status 3 (the reason on stderr) if no connection opened
within ``--connect-deadline`` seconds. ``WSMUX_ENDPOINTS`` (see
:data:`wsmux.multiplexer.ENDPOINTS_ENV`) redirects ``watch`` and ``record``.
(``record``, ``replay``, ``log info`` and ``bench`` are added by the log/bench modules.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from wsmux import exchanges
from wsmux._aio import reap
from wsmux._dashboard import plain_panel, rich_available, rich_screen
from wsmux._display import by_step, difference
from wsmux.adapter import Endpoint
from wsmux.errors import ConfigError, LocalError, LogError, WsmuxError
from wsmux.health import Health, VenueHealth
from wsmux.model import (
    Channel,
    Connected,
    ConnectFailed,
    Disconnected,
    EndpointChanged,
    Error,
    Event,
    Gap,
    Quote,
    Resynced,
    Trade,
)
from wsmux.multiplexer import Multiplexer
from wsmux.subscriptions import Subscription

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNSUPPORTED", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
"""Success."""
EXIT_FAILED = 1
"""The command ran but had nothing to show (e.g. the demo saw no events)."""
EXIT_USAGE = 2
"""Bad arguments or input: an unknown venue, a file that is not a log, ..."""
EXIT_UNSUPPORTED = 3
"""``replay``: some inputs are captures of venues wsmux does not support yet;
they were skipped (and named on stderr), the rest was replayed."""

# venue id -> mock class, for the demo; imported lazily, skipped if absent.
MOCKS: dict[str, str] = {
    "binance": "wsmux.testing.binance:MockBinance",
    "kraken": "wsmux.testing.kraken:MockKraken",
    "coinbase": "wsmux.testing.coinbase:MockCoinbase",
    "okx": "wsmux.testing.okx:MockOkx",
    "bybit": "wsmux.testing.bybit:MockBybit",
    "bitfinex": "wsmux.testing.bitfinex:MockBitfinex",
    "binance-us": "wsmux.testing.binance:MockBinanceUS",
    "binance-usdm": "wsmux.testing.binance:MockBinanceFutures",
    "binance-coinm": "wsmux.testing.binance:MockBinanceCoinm",
    "bybit-linear": "wsmux.testing.bybit:MockBybitLinear",
    "coinbase-advanced": "wsmux.testing.coinbase:MockCoinbaseAdvanced",
    "kraken-v1": "wsmux.testing.kraken:MockKrakenV1",
    "hyperliquid": "wsmux.testing.hyperliquid:MockHyperliquid",
    "dydx": "wsmux.testing.dydx:MockDydx",
    "bithumb": "wsmux.testing.bithumb:MockBithumb",
    "deribit": "wsmux.testing.deribit:MockDeribit",
    "bitmex": "wsmux.testing.bitmex:MockBitmex",
    "phemex": "wsmux.testing.phemex:MockPhemex",
    "kraken-futures": "wsmux.testing.kraken_futures:MockKrakenFutures",
    "kraken-futures-inverse": "wsmux.testing.kraken_futures:MockKrakenFuturesInverse",
    "gemini": "wsmux.testing.gemini:MockGemini",
    "gemini-v2": "wsmux.testing.gemini:MockGeminiV2",
    "bitstamp": "wsmux.testing.bitstamp:MockBitstamp",
    "bitget": "wsmux.testing.bitget:MockBitget",
    "bitget-futures": "wsmux.testing.bitget:MockBitgetFutures",
    "htx": "wsmux.testing.htx:MockHtx",
    "htx-swap": "wsmux.testing.htx:MockHtxSwap",
    "poloniex": "wsmux.testing.poloniex:MockPoloniex",
    "poloniex-futures": "wsmux.testing.poloniex:MockPoloniexFutures",
    "bitflyer": "wsmux.testing.bitflyer:MockBitflyer",
    "mexc": "wsmux.testing.mexc:MockMexc",
    "mexc-futures": "wsmux.testing.mexc:MockMexcFutures",
    "upbit": "wsmux.testing.upbit:MockUpbit",
    "kucoin": "wsmux.testing.kucoin:MockKucoin",
    "kucoin-futures": "wsmux.testing.kucoin:MockKucoinFutures",
    "gateio": "wsmux.testing.gateio:MockGate",
    "gateio-futures": "wsmux.testing.gateio:MockGateFutures",
    "cryptocom": "wsmux.testing.cryptocom:MockCryptocom",
}
DEFAULT_DEMO_VENUES = ("binance", "kraken", "coinbase", "okx", "bybit", "bitfinex")
"""The venues ``wsmux demo`` runs without ``--venues`` (one per exchange)."""
DEMO_SYMBOLS = {
    "kraken": ["BTC-USD", "ETH-USD"],
    "kraken-v1": ["BTC-USD", "ETH-USD"],
    "coinbase": ["BTC-USD", "ETH-USD"],
    "coinbase-advanced": ["BTC-USD", "ETH-USD"],
    "bitfinex": ["BTC-USD", "ETH-USD"],
    "binance-usdm": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
    "binance-coinm": ["BTC-USD-PERP", "ETH-USD-PERP"],
    "bybit-linear": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
    "hyperliquid": ["BTC-USD-PERP", "ETH-USD-PERP"],
    "dydx": ["BTC-USD-PERP", "ETH-USD-PERP"],
    "bithumb": ["BTC-KRW", "ETH-KRW"],
    "deribit": ["BTC-USD-PERP", "ETH-USD-PERP"],
    "bitmex": ["BTC-USD-PERP", "ETH-USDT-PERP"],
    "phemex": ["BTC-USD-PERP", "BTC-USDT-PERP"],
    "kraken-futures": ["BTC-USD-PERP", "ETH-USD-PERP"],
    "kraken-futures-inverse": ["BTC-USD-PERP", "ETH-USD-PERP"],
    "gemini": ["BTC-USD", "ETH-USD"],
    "gemini-v2": ["BTC-USD", "ETH-USD"],
    "bitstamp": ["BTC-USD", "ETH-USD"],
    "bitget-futures": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
    "htx-swap": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
    "poloniex-futures": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
    "mexc-futures": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
    "bitflyer": ["BTC-JPY", "ETH-JPY"],
    "upbit": ["BTC-KRW", "ETH-KRW"],
    "kucoin-futures": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
    "gateio-futures": ["BTC-USDT-PERP", "ETH-USDT-PERP"],
}
CHAOS_EVERY = 1.0
"""Seconds between two faults of ``wsmux demo --chaos``."""
CHAOS_FAULTS = ("skip_seq", "bad_checksum", "skip_seq", "disconnect")
"""What ``--chaos`` injects, in turn, into the next mock: a lost book update, a
corrupt checksum (venues that send one), a dropped connection."""


def _load_mock(venue: str) -> Any:
    target = MOCKS.get(venue)
    if target is None:
        return None
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


class _Row:
    __slots__ = ("events", "gaps", "last_trade", "quote", "rate", "resyncs", "window")

    def __init__(self) -> None:
        self.events = 0
        self.window = 0
        self.rate = 0.0
        self.gaps = 0
        self.resyncs = 0
        self.quote: tuple[float, float, float, float] | None = None
        self.last_trade: Trade | None = None


class LiveView:
    """Aggregates events per (venue, symbol) and renders a text table."""

    def __init__(self, mux: Multiplexer, out: TextIO) -> None:
        self.mux = mux
        self.out = out
        self.rows: dict[tuple[str, str], _Row] = {}
        self.total = 0
        self.errors = 0
        self.connections = 0
        self.disconnects = 0
        self.venue_state: dict[str, str] = {}
        """Per venue: ``open``, or what the last failure said."""
        self.last_error: dict[str, str] = {}
        self.moves: dict[str, str] = {}
        """Per venue: the last endpoint move (``EndpointChanged``)."""
        self.started = time.monotonic()
        self._last = self.started
        self.plain = False
        """Plain text even on a terminal with ``rich`` installed (``--plain``)."""

    def on_event(self, event: Event) -> None:
        self.total += 1
        venue = getattr(event, "venue", None)
        symbol = getattr(event, "symbol", None)
        if isinstance(event, Connected):
            self.connections += 1
            self.venue_state[event.venue] = "open"
        elif isinstance(event, ConnectFailed):
            self.errors += 1
            retry = "giving up" if event.retry_in is None else f"retry in {event.retry_in:.1f} s"
            self.venue_state[event.venue] = f"cannot connect (attempt {event.attempt}, {retry})"
            self.last_error[event.venue] = event.reason
        elif isinstance(event, Disconnected):
            self.disconnects += 1
            self.venue_state[event.venue] = "reconnecting" if event.reconnecting else "closed"
            self.last_error[event.venue] = event.reason
        elif isinstance(event, Error):
            self.errors += 1
        elif isinstance(event, EndpointChanged):
            self.moves[event.venue] = f"moved to {event.new_url} ({event.reason.value}): {event.detail}"
        if venue is None or not symbol:
            return
        row = self.rows.get((venue, symbol))
        if row is None:
            row = self.rows[venue, symbol] = _Row()
        row.events += 1
        row.window += 1
        if isinstance(event, Quote):
            row.quote = (event.bid_price, event.bid_size, event.ask_price, event.ask_size)
        elif isinstance(event, Trade):
            row.last_trade = event
        elif isinstance(event, Gap):
            row.gaps += 1
        elif isinstance(event, Resynced):
            row.resyncs += 1

    def _table(self) -> tuple[str, list[tuple[Any, ...]], float]:
        """The title line, one row per (venue, symbol) and the total rate (msg/s)."""
        now = time.monotonic()
        dt = max(now - self._last, 1e-9)
        self._last = now
        books = self.mux.books
        title = (
            f"wsmux  {now - self.started:6.1f} s   events {self.total:,}   "
            f"connections {self.connections} (dropped {self.disconnects})   errors {self.errors}"
        )
        rows: list[tuple[Any, ...]] = []
        total_rate = 0.0
        for (venue, symbol), row in sorted(self.rows.items()):
            row.rate = row.window / dt
            row.window = 0
            total_rate += row.rate
            view = books.get((venue, symbol))
            if view is not None:
                bp, _, ap, _ = view.bbo()
                state = f"{'valid' if view.valid else 'INVALID'} {len(view)} lv"
            elif row.quote is not None:
                bp, _, ap, _ = row.quote
                state = "-"
            else:
                bp = ap = math.nan
                state = "-"
            # by the instrument's tick where its list is loaded: 29999.99, never 29999.989999999998
            inst = self.mux.instrument(venue, symbol)
            tick = inst.tick_size if inst is not None else None
            bid, ask, spread = by_step(bp, tick), by_step(ap, tick), difference(ap, bp, tick)
            rows.append((venue, symbol, bid, ask, spread, state, row.rate, row.gaps, row.resyncs))
        return title, rows, total_rate

    def venue_health(self) -> list[VenueHealth]:
        """The multiplexer's per-venue health (empty if it has none)."""
        health = getattr(self.mux, "health", None)
        return list(health().venue_health) if health is not None else []

    def render(self) -> str:
        """The view as plain text: the symbol table, the venue panel, connections."""
        title, rows, total_rate = self._table()
        vw = max([16, *(len(v) + 2 for v, _ in self.rows)])  # columns never run into each other
        sw = max([16, *(len(s) + 2 for _, s in self.rows)])
        lines = [
            title,
            "",
            f"{'venue':<{vw}}{'symbol':<{sw}}{'bid':>14}{'ask':>14}{'spread':>10}{'book':>18}{'msg/s':>9}{'gaps':>6}"
            f"{'resyncs':>9}",
        ]
        for venue, symbol, bp, ap, spread, state, rate, gaps, resyncs in rows:
            lines.append(
                f"{venue:<{vw}}{symbol:<{sw}}{bp:>14}{ap:>14}{spread:>10}"
                f"{state:>18}{rate:>9.0f}{gaps:>6}{resyncs:>9}"
            )
        lines.append("")
        lines.append(f"total {total_rate:,.0f} events/s")
        panel = plain_panel(self.venue_health())
        if panel:
            lines.extend(["", *panel])
        lines.extend(self.connection_lines())
        health = self.mux.health()
        lines.extend(self.redundancy_lines(health))
        lines.extend(self.endpoint_lines(health))
        return "\n".join(lines)

    def redundancy_lines(self, health: Health) -> list[str]:
        """With redundancy: per connection, who delivered first and by how much (A/B)."""
        members = [(sh.venue, m) for sh in health.shards for m in sh.members]
        if not members:
            return []
        hw = max(24, *(len(m.host) + 2 for _, m in members))
        lines = [
            "",
            "redundancy: who delivered first (lag = how far behind the first copy; quantiles of sampled copies)",
            f"{'venue':<16}{'conn':>6}  {'host':<{hw}}{'first':>8}{'copies':>10}{'lag p50':>11}{'p90':>10}{'p99':>10}",
        ]
        for venue, m in sorted(members, key=lambda vm: (vm[0], vm[1].conn_id)):
            lines.append(
                f"{venue:<16}{m.conn_id:>6}  {m.host:<{hw}}{m.first_share:>8.1%}{m.firsts + m.duplicates:>10,}"
                f"{_fmt_ms(m.lag_p50_ms):>11}{_fmt_ms(m.lag_p90_ms):>10}{_fmt_ms(m.lag_p99_ms):>10}"
            )
        return lines

    def endpoint_lines(self, health: Health) -> list[str]:
        """With endpoint choice: per host, what was measured and which is active."""
        if not health.endpoints:
            return []
        hw = max(24, *(len(h.url) + 2 for h in health.endpoints))
        lines = [
            "",
            "endpoints (latency = receive - venue time; * = active)",
            f"{'venue':<16}  {'host':<{hw}}{'conns':>6}{'handshake':>11}{'lat p50':>10}{'forecast':>10}"
            f"{'baseline':>10}{'fails':>6}{'probes':>7}",
        ]
        for h in health.endpoints:
            mark = "*" if h.active else " "
            lines.append(
                f"{h.venue:<16}{mark} {h.url:<{hw}}{h.connections:>6}{_fmt_ms(h.handshake_ms):>11}"
                f"{_fmt_ms(h.latency_p50_ms):>10}{_fmt_ms(h.forecast_ms):>10}{_fmt_ms(h.baseline_ms):>10}"
                f"{h.failures:>6}{h.probes:>7}"
            )
        for venue, move in sorted(self.moves.items()):
            lines.append(f"{venue:<16}  last move: {move[:200]}")
        return lines

    def render_rich(self, width: int) -> str:
        """The view rendered by ``rich`` (ANSI colours; extra ``wsmux[cli]``)."""
        title, rows, total_rate = self._table()
        header = ("venue", "symbol", "bid", "ask", "spread", "book", "msg/s", "gaps", "resyncs")
        cells = [
            (v, s, bp, ap, sp, st, f"{r:.0f}", str(g), str(rs))
            for v, s, bp, ap, sp, st, r, g, rs in rows
        ]
        health = self.mux.health()
        footer = [
            f"total {total_rate:,.0f} events/s",
            *self.connection_lines(),
            *self.redundancy_lines(health),
            *self.endpoint_lines(health),
        ]
        return rich_screen(title, header, cells, self.venue_health(), footer, width)

    def connection_lines(self) -> list[str]:
        """Per venue: connection state and the last error (empty if none yet)."""
        if not self.venue_state:
            return []
        lines = ["", f"{'venue':<16}connection"]
        for venue, state in sorted(self.venue_state.items()):
            lines.append(f"{venue:<16}{state}")
            error = self.last_error.get(venue)
            if error:
                lines.append(f"{'':<16}last error: {error[:200]}")
        return lines

    def failure_report(self, deadline: float) -> str:
        """Why nothing connected within ``deadline`` seconds (for stderr)."""
        parts = [f"wsmux: nothing connected within {deadline:g} s"]
        for venue, state in sorted(self.venue_state.items()):
            error = self.last_error.get(venue)
            parts.append(f"  {venue}: {state}" + (f": {error}" if error else ""))
        if not self.venue_state:
            parts.append("  no connection attempt finished (DNS or handshake still pending?)")
        return "\n".join(parts) + "\n"

    def draw(self) -> None:
        if self.out.isatty() and not self.plain and rich_available():
            width = shutil.get_terminal_size((160, 50)).columns
            self.out.write("\x1b[H\x1b[2J" + self.render_rich(width))
            self.out.flush()
            return
        text = self.render()
        if self.out.isatty():
            self.out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            self.out.write(text + "\n\n")
        self.out.flush()


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


async def _run_view(
    subs: Sequence[Subscription],
    endpoints: dict[str, Endpoint] | None,
    duration: float | None,
    out: TextIO,
    refresh: float,
    on_start: Callable[[], Any] | None = None,
    connect_deadline: float | None = None,
    record: str | None = None,
    options: dict[str, Any] | None = None,
    metrics_port: int | None = None,
    plain: bool = False,
) -> LiveView:
    async with Multiplexer(endpoints=endpoints, record=record, **(options or {})) as mux:
        if metrics_port is not None:
            server = mux.serve_metrics(metrics_port)
            out.write(f"metrics: {server.url}\n")
        stream = await mux.asubscribe(*subs, name="cli")  # an unlisted symbol: UnknownSymbol, did you mean
        view = LiveView(mux, out)
        view.plain = plain
        stream.on(Event, view.on_event)
        if on_start is not None:
            on_start()
        await _show(view, duration, refresh, connect_deadline)
        await stream.aclose()
        return view


async def _show(view: LiveView, duration: float | None, refresh: float, connect_deadline: float | None) -> None:
    """Redraw every ``refresh`` s until ``duration`` ends, or stop at
    ``connect_deadline`` if nothing connected by then."""
    started = time.monotonic()
    ends = [t for t in (duration, connect_deadline) if t is not None]
    while True:
        now = time.monotonic()
        if duration is not None and now - started >= duration:
            return
        if connect_deadline is not None and view.connections == 0 and now - started >= connect_deadline:
            return
        wakes = [started + t - now for t in ends if started + t > now]
        await asyncio.sleep(max(0.0, min([refresh, *wakes])))
        view.draw()


def _connect_verdict(view: LiveView, connect_deadline: float | None, out: TextIO) -> int | None:
    """Exit status 3 (and the reason on stderr) if nothing ever connected."""
    if view.connections > 0:
        return None
    waited = time.monotonic() - view.started  # a --duration shorter than the deadline ends it first
    if connect_deadline is not None:
        waited = min(waited, connect_deadline)
    sys.stderr.write(view.failure_report(round(waited, 1)))
    out.flush()
    return 3


def _demo_subs(venue: str, symbols: list[str], adapter_cls: Any) -> list[Subscription]:
    subs: list[Subscription] = []
    for symbol in symbols:
        for channel in (Channel.BOOK, Channel.TRADES, Channel.QUOTES):
            if channel in adapter_cls.channels:
                subs.append(Subscription(venue, channel, symbol))
    return subs


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    venues = args.venues.split(",") if args.venues else [v for v in DEFAULT_DEMO_VENUES if _load_mock(v) is not None]
    mocks = []
    endpoints: dict[str, Endpoint] = {}
    subs: list[Subscription] = []
    async with contextlib.AsyncExitStack() as stack:
        for venue in venues:
            mock_cls = _load_mock(venue)
            if mock_cls is None:
                out.write(f"no mock exchange for {venue!r}; skipped\n")
                continue
            symbols = args.symbols.split(",") if args.symbols else DEMO_SYMBOLS.get(venue, ["BTC-USDT", "ETH-USDT"])
            mock = mock_cls(symbols, rate=args.rate, seed=args.seed)
            await stack.enter_async_context(mock)
            mocks.append(mock)
            endpoints[venue] = mock.endpoint
            subs.extend(_demo_subs(venue, symbols, exchanges.get(venue)))
        if not mocks:
            out.write("no mock exchanges available\n")
            return 2

        chaos: list[asyncio.Task[None]] = []
        injected: list[str] = []

        def start_mocks() -> None:
            for mock in mocks:
                mock.run()
            if args.chaos:
                chaos.append(asyncio.get_running_loop().create_task(_chaos(mocks, injected)))

        try:
            view = await _run_view(
                subs,
                endpoints,
                args.duration,
                out,
                args.refresh,
                start_mocks,
                connect_deadline=args.connect_deadline,
                options={"redundancy": args.redundancy},
                metrics_port=args.metrics_port,
                plain=args.plain,
            )
        finally:
            for task in chaos:
                task.cancel()
                await reap(task, errors=False)
    failed = _connect_verdict(view, args.connect_deadline, out)
    if failed is not None:
        return failed
    books = [f"{v}:{s}" for (v, s), row in sorted(view.rows.items()) if row.resyncs]
    gaps = sum(row.gaps for row in view.rows.values())
    resyncs = sum(row.resyncs for row in view.rows.values())
    out.write(
        f"demo finished: {view.total:,} events from {len(mocks)} mock venue(s), "
        f"{len(books)} books synced, {gaps} gaps, {resyncs} resyncs, {view.errors} errors"
        + (f", {len(injected)} faults injected" if args.chaos else "")
        + "\n"
    )
    return 0 if view.total > 0 else 1


async def _chaos(mocks: Sequence[Any], injected: list[str]) -> None:
    """Inject :data:`CHAOS_FAULTS` in turn, one mock after the other."""
    step = 0
    while True:
        await asyncio.sleep(CHAOS_EVERY)
        mock = mocks[step % len(mocks)]
        fault = CHAOS_FAULTS[step % len(CHAOS_FAULTS)]
        if fault == "disconnect":
            await mock.drop_connections()
        else:
            setattr(mock.faults, fault, getattr(mock.faults, fault) + 1)
        injected.append(f"{fault}@{type(mock).__name__}")
        step += 1


def _parse_targets(targets: Sequence[str]) -> list[Subscription]:
    subs: list[Subscription] = []
    for target in targets:
        venue, sep, symbols = target.partition(":")
        if not sep or not symbols:
            raise LocalError(f"expected VENUE:SYMBOL[,SYMBOL...], got {target!r}")
        cls = exchanges.get(venue)
        subs.extend(_demo_subs(venue, symbols.split(","), cls))
    return subs


async def _watch(args: argparse.Namespace, out: TextIO) -> int:
    subs = _parse_targets(args.targets)
    view = await _run_view(
        subs,
        None,
        args.duration,
        out,
        args.refresh,
        connect_deadline=args.connect_deadline,
        options={"redundancy": args.redundancy, "endpoint_choice": True if args.choose_endpoint else None},
        metrics_port=args.metrics_port,
        plain=args.plain,
    )
    return _connect_verdict(view, args.connect_deadline, out) or 0


def _add_redundancy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redundancy",
        type=_count,
        default=1,
        metavar="N",
        help="connections per set of subscriptions, merged exactly once (2+: shows who delivered first)",
    )


def _count(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _add_connect_deadline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect-deadline",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up with exit status 3 and the reason if no connection opened within this time "
        "(default 30; the per-venue state and last error are shown meanwhile)",
    )


def _add_dashboard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics (extra wsmux[prometheus])",
    )
    parser.add_argument(
        "--plain", action="store_true", help="plain-text view even on a terminal with rich installed (wsmux[cli])"
    )


def _positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _duration(text: str) -> float:
    """argparse type: seconds >= 0 (0 = until Ctrl-C)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be 0 or a positive number of seconds, not {text}")
    return value


_MIN_REFRESH = 0.05
"""Seconds: the fastest screen refresh the live view allows (20 per second)."""


def _refresh(text: str) -> float:
    value = _positive(text)
    if value < _MIN_REFRESH:
        raise argparse.ArgumentTypeError(f"must be at least {_MIN_REFRESH} s, not {text}")
    return value


REFRESH_HELP = f"seconds between screen refreshes (default 1, min {_MIN_REFRESH})"

EPILOG = """exit status:
  0  success
  1  the command ran but saw nothing (e.g. the demo received no events)
  2  bad arguments or input (unknown venue, missing file, not a log), explained on stderr
  3  replay: some inputs are captures of venues wsmux does not support yet; they were
     named on stderr and skipped, the rest was replayed
  130 interrupted (Ctrl-C)
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``wsmux`` argument parser (also rendered into the CLI reference of the docs)."""
    from wsmux import __version__

    parser = argparse.ArgumentParser(
        prog="wsmux",
        description="Crypto market-data multiplexer: watch venues live, run the mock exchanges, record and replay.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wsmux {__version__}")
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=logging.WARNING,
        metavar="LEVEL",
        help="the 'wsmux' loggers' level: debug, info, warning (default), error",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="append log lines to PATH (default: stderr, except under a live terminal view of "
        "demo/watch, whose venue panel shows each venue's last error)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run mock exchanges in-process and watch the live view")
    demo.add_argument(
        "--duration", type=_duration, default=10.0, help="seconds to run (default 10; 0 = until Ctrl-C)"
    )
    demo.add_argument(
        "--venues",
        default="",
        help=f"comma-separated venue ids (default: {','.join(DEFAULT_DEMO_VENUES)}; with a mock: {','.join(MOCKS)})",
    )
    demo.add_argument(
        "--symbols", default="", help="comma-separated unified symbols (default: BTC and ETH against USD or USDT)"
    )
    demo.add_argument("--rate", type=_positive, default=50.0, help="market steps per second per symbol (default 50)")
    demo.add_argument("--seed", type=int, default=1, help="random seed of the mock markets (default 1)")
    demo.add_argument("--refresh", type=_refresh, default=1.0, help=REFRESH_HELP)
    demo.add_argument(
        "--chaos",
        action="store_true",
        help="inject a fault every second (lost update, bad checksum, dropped connection): see Gap -> Resynced",
    )
    _add_redundancy(demo)
    _add_connect_deadline(demo)
    _add_dashboard_options(demo)

    watch = commands.add_parser("watch", help="watch real venues, e.g. wsmux watch binance:BTC-USDT,ETH-USDT")
    watch.add_argument("targets", nargs="+", metavar="VENUE:SYMBOL[,SYMBOL...]", help="what to watch")
    watch.add_argument("--duration", type=_duration, default=None, help="seconds to run (default: until Ctrl-C)")
    watch.add_argument("--refresh", type=_refresh, default=1.0, help=REFRESH_HELP)
    _add_redundancy(watch)
    watch.add_argument(
        "--choose-endpoint",
        action="store_true",
        help="measure each venue's alternate hosts (backup_urls) and move to the fastest (see docs/endpoints.rst)",
    )
    _add_connect_deadline(watch)
    _add_dashboard_options(watch)

    commands.add_parser(
        "venues", help="the supported venues: channels, how books sync, checksums, continuity, limits"
    )

    record = commands.add_parser("record", help="record raw frames to the message log")
    record.add_argument("targets", nargs="+", metavar="VENUE:SYMBOL[,SYMBOL...]", help="what to record")
    record.add_argument("--out", required=True, help="directory for the log files")
    record.add_argument("--duration", type=_duration, default=None, help="seconds to record (default: until Ctrl-C)")
    record.add_argument(
        "--refresh", type=_refresh, default=5.0, help="seconds between screen refreshes (default 5)"
    )
    _add_connect_deadline(record)

    replay = commands.add_parser(
        "replay",
        help="replay wsmux logs or text captures through the adapters (no flags needed for captures)",
        description="Replay wsmux logs (*.wslog, or a folder of them) or text captures (NAME.ws.N.0 with "
        "NAME.http.N.0 / NAME.0 beside them). The venue, protocol version, subscriptions and REST snapshots "
        "of a capture are read from the capture itself.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("paths", nargs="+", metavar="PATH", help="log files, capture files or folders of them")
    replay.add_argument(
        "--speed", type=_positive, default=None, help="1 = real time, 10 = ten times faster (default: at once)"
    )
    replay.add_argument(
        "--venue", action="append", default=None, metavar="VENUE", help="only these venues (repeatable)"
    )
    replay.add_argument(
        "--subscribe",
        action="append",
        default=[],
        metavar="VENUE:CHANNEL:SYMBOL",
        help="a subscription the recording carried, in addition to what the recording says (repeatable)",
    )
    replay.add_argument(
        "--text-venue", default=None, metavar="VENUE", help="venue id of text captures (default: detected)"
    )
    replay.add_argument(
        "--format",
        choices=["summary", "jsonl"],
        default="summary",
        help="summary table (default) or one JSON event per line, with the venue's native symbol",
    )

    export = commands.add_parser(
        "export",
        help="replay logs or captures into Parquet/CSV: trades, bbo, bars:1s, book:10",
        description="Replay wsmux logs or text captures (as `wsmux replay` reads them) and write one table "
        "for research: trades, bbo (quotes and book top changes), bars:INTERVAL (time bars by exchange time) "
        "or book:N (top N levels after every book event). Progress goes to stderr.",
    )
    export.add_argument("paths", nargs="+", metavar="LOG", help="log files, capture files or folders of them")
    export.add_argument("--to", choices=["parquet", "csv"], required=True, help="parquet (needs wsmux[parquet]) or csv")
    export.add_argument(
        "--what", required=True, metavar="WHAT", help="trades | bbo | bars:INTERVAL (bars:1s, bars:5m) | book:N"
    )
    export.add_argument("--out", required=True, metavar="PATH", help="the file to write")
    export.add_argument(
        "--text-venue", default=None, metavar="VENUE", help="venue id of text captures (default: detected)"
    )
    export.add_argument("--quiet", action="store_true", help="no progress bar")

    log = commands.add_parser("log", help="message-log tools")
    log_commands = log.add_subparsers(dest="log_command", required=True, metavar="LOG_COMMAND")
    info = log_commands.add_parser(
        "info", help="venues, time range (UTC), counts and integrity of logs or text captures"
    )
    info.add_argument("paths", nargs="+", metavar="PATH", help="log files, folders of logs, or text capture files")

    report = commands.add_parser(
        "report",
        help="a self-contained HTML report (rates, latency, gaps, depth) of logs or text captures",
        description="Replay wsmux logs or text captures and write one HTML file with message-rate timelines, "
        "latency histograms (receive - venue time), a gap/resync timeline per book and book depth charts. "
        "It opens with no network. Needs the extra: pip install 'wsmux[report]'.",
    )
    report.add_argument("paths", nargs="+", metavar="PATH", help="log files, capture files or folders of them")
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.add_argument(
        "--at",
        action="append",
        default=None,
        metavar="TIME",
        help="a time for the depth charts (repeatable): ISO UTC (2026-12-07T02:50:00Z), epoch seconds or "
        "+SECONDS after the start (default: four times evenly spaced through the book traffic)",
    )
    report.add_argument(
        "--text-venue", default=None, metavar="VENUE", help="venue id of text captures (default: detected)"
    )
    from wsmux import bench

    bench.add_parser(commands)
    from wsmux import worker

    worker.add_parser(commands)
    return parser


def _venues_table() -> str:
    """One row per venue, from the adapters' own declarations (:func:`wsmux.exchanges.describe`)."""
    header = ("venue", "exchange", "channels", "book snapshot", "continuity", "checksum", "integrity",
              "streams/conn", "msgs/s")  # fmt: skip
    rows: list[tuple[str, ...]] = []
    for venue in exchanges.names():
        info = exchanges.describe(venue)
        rows.append(
            (
                venue,
                info.exchange,
                ",".join(info.channels),
                {"REST": "REST sync", "requested": "requested", "stream": "in stream", None: "-"}[info.snapshot],
                info.continuity or "-",
                "-" if info.snapshot is None else ("yes" if info.checksum else "no"),
                info.integrity.value if info.integrity is not None else "-",
                str(info.streams_per_connection),
                f"{info.messages_per_second:g}",
            )
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    distinct = len({exchanges.exchange_of(v) for v in exchanges.names()})
    lines.append(f"\n{len(rows)} venue ids, {distinct} distinct exchanges")
    return "\n".join(lines)


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    from wsmux.convert import to_json
    from wsmux.log import Replay

    subs = [_parse_subscription(text) for text in args.subscribe]
    replay = Replay(
        args.paths,
        venues=args.venue,
        subscriptions=subs,
        venue=args.text_venue,
        speed=args.speed,
        skip_unsupported=True,
    )
    for _path, reason in replay.skipped:
        sys.stderr.write(f"wsmux: skipped {reason}\n")
    if replay.skipped:
        sys.stderr.write(f"wsmux: supported venues: {', '.join(exchanges.names())}\n")
    status = EXIT_UNSUPPORTED if replay.skipped else EXIT_OK
    if not replay.captures and replay.skipped and all(not p.is_dir() and p.suffix != ".wslog" for p in replay.paths):
        sys.stderr.write("wsmux: nothing left to replay\n")
        return status
    if args.format == "jsonl":
        write = out.buffer.write if hasattr(out, "buffer") else None
        for event in replay.events():
            line = to_json(event)
            venue, symbol = getattr(event, "venue", None), getattr(event, "symbol", None)
            native = replay.native(venue, symbol) if venue and symbol else None
            if native is not None:  # the venue's own symbol, next to the unified one
                line = b'{"native":' + orjson.dumps(native) + b"," + line[1:]
            if write is not None:
                write(line + b"\n")
            else:
                out.write(line.decode() + "\n")
        out.flush()
        return status
    count = 0
    started = time.monotonic()
    for _event in replay.events():
        count += 1
    elapsed = time.monotonic() - started
    out.write(replay.summary.describe() + "\n")
    pace = "as fast as possible" if args.speed is None else f"at speed {args.speed:g}"
    out.write(f"{count:,} events in {elapsed:.2f} s ({pace})\n")
    return status


def _export(args: argparse.Namespace, out: TextIO) -> int:
    from wsmux.export import export

    result = export(
        args.paths,
        to=args.to,
        what=args.what,
        out=args.out,
        venue=args.text_venue,
        progress=None if args.quiet else sys.stderr,
    )
    out.write(f"{result.rows:,} rows ({args.what}) from {result.frames:,} frames written to {args.out}\n")
    if result.skipped_invalid:
        out.write(f"{result.skipped_invalid:,} book events while a book was invalid (gap, resync) were not exported\n")
    return EXIT_OK


def _parse_subscription(text: str) -> Subscription:
    venue, sep, rest = text.partition(":")
    channel, sep2, symbol = rest.partition(":")
    if not sep or not sep2 or not symbol:
        raise ConfigError(f"expected VENUE:CHANNEL:SYMBOL, got {text!r}")
    try:
        return Subscription(venue, Channel(channel), symbol)
    except ValueError as exc:
        raise ConfigError(f"{text!r}: {exc}; channels: {', '.join(c.value for c in Channel)}") from exc


def _log_info(args: argparse.Namespace, out: TextIO) -> int:
    from wsmux.log import log_info
    from wsmux.log._detect import capture_info

    logs: list[str] = []
    captures: list[str] = []
    for text in args.paths:
        path = Path(text)
        if not path.exists():
            raise LogError(f"{path}: no such file or directory")
        (logs if path.is_dir() or _is_wsmux_log(path) else captures).append(text)
    if logs:
        out.write(log_info(logs).describe() + "\n")
    if captures:
        out.write(("\n" if logs else "") + "text capture (" + ", ".join(Path(c).name for c in captures) + ")\n")
        out.write(capture_info(captures).describe() + "\n")
    return EXIT_OK


def _is_wsmux_log(path: Path) -> bool:
    from wsmux.log._format import FILE_MAGIC

    with open(path, "rb") as fh:
        return path.suffix == ".wslog" or fh.read(len(FILE_MAGIC)) == FILE_MAGIC


async def _record(args: argparse.Namespace, out: TextIO) -> int:
    subs = _parse_targets(args.targets)
    view = await _run_view(
        subs, None, args.duration, out, args.refresh, connect_deadline=args.connect_deadline, record=args.out
    )
    failed = _connect_verdict(view, args.connect_deadline, out)
    if failed is not None:
        return failed
    out.write(f"recorded to {args.out}\n")
    return 0


def _report(args: argparse.Namespace, out: TextIO) -> int:
    from wsmux.report import write_report

    data = write_report(args.paths, args.out, at=args.at, venue=args.text_venue)
    span = ((data.last_ns or 0) - (data.first_ns or 0)) / 1e9
    events = sum(sum(r.values()) for r in data.rates.values())
    out.write(
        f"wrote {args.out}: {span:,.1f} s, {events:,} market events, {len(data.rates)} venue(s), "
        f"{sum(len(m) for m in data.marks.values())} gap/resync marks, {len(data.depth)} book(s) charted\n"
    )
    return EXIT_OK


def _log_level(text: str) -> int:
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise argparse.ArgumentTypeError(f"not a log level: {text!r} (debug, info, warning, error)")
    return level


def _configure_logging(args: argparse.Namespace, out: TextIO) -> logging.Handler | None:
    """Send the ``wsmux`` logger tree to ``--log-file``, else to stderr —
    except under the live terminal view of ``demo``/``watch`` (log lines would
    tear the screen; the view shows each venue's state and last error).
    Returns the handler added (removed again by :func:`main`)."""
    logger = logging.getLogger("wsmux")
    logger.setLevel(args.log_level)
    handler: logging.Handler
    if args.log_file is not None:
        handler = logging.FileHandler(args.log_file, encoding="utf-8")
    elif args.command in ("demo", "watch") and out.isatty():
        return None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return handler


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``wsmux`` console script."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        handler = _configure_logging(args, out)
    except OSError as exc:
        sys.stderr.write(f"wsmux: --log-file: {exc}\n")
        return EXIT_USAGE
    try:
        return _main(args, out)
    finally:
        if handler is not None:
            logging.getLogger("wsmux").removeHandler(handler)
            handler.close()


def _main(args: argparse.Namespace, out: TextIO) -> int:
    try:
        if args.command == "venues":
            out.write(_venues_table() + "\n")
            return EXIT_OK
        if args.command == "demo":
            if args.duration == 0:
                args.duration = None
            return asyncio.run(_demo(args, out))
        if args.command == "watch":
            return asyncio.run(_watch(args, out))
        if args.command == "record":
            return asyncio.run(_record(args, out))
        if args.command == "replay":
            return _replay(args, out)
        if args.command == "export":
            return _export(args, out)
        if args.command == "log":
            return _log_info(args, out)
        if args.command == "report":
            return _report(args, out)
        if args.command == "bench":
            from wsmux import bench

            return bench.run_from_args(args)
        if args.command == "run":
            from wsmux import worker

            return worker.run_from_args(args, out)
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        return 130
    except (WsmuxError, OSError) as exc:  # a typed, explained failure: no traceback
        sys.stderr.write(f"wsmux: {exc}\n")
        return EXIT_USAGE
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
