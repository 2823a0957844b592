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
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from wsmux import exchanges
from wsmux.adapter import Endpoint
from wsmux.errors import LocalError
from wsmux.model import (
    Channel,
    Connected,
    ConnectFailed,
    Disconnected,
    Error,
    Event,
    Gap,
    Quote,
    Resynced,
    Trade,
)
from wsmux.multiplexer import Multiplexer
from wsmux.subscriptions import Subscription

__all__ = ["main"]

# venue id -> mock class, for the demo; imported lazily, skipped if absent.
MOCKS: dict[str, str] = {
    "binance": "wsmux.testing.binance:MockBinance",
    "kraken": "wsmux.testing.kraken:MockKraken",
    "coinbase": "wsmux.testing.coinbase:MockCoinbase",
    "okx": "wsmux.testing.okx:MockOkx",
    "bybit": "wsmux.testing.bybit:MockBybit",
    "bitfinex": "wsmux.testing.bitfinex:MockBitfinex",
}
DEMO_SYMBOLS = {
    "kraken": ["BTC-USD", "ETH-USD"],
    "coinbase": ["BTC-USD", "ETH-USD"],
    "bitfinex": ["BTC-USD", "ETH-USD"],
}


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
        self.started = time.monotonic()
        self._last = self.started

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

    def render(self) -> str:
        now = time.monotonic()
        dt = max(now - self._last, 1e-9)
        self._last = now
        books = self.mux.books
        lines = [
            f"wsmux  {now - self.started:6.1f} s   events {self.total:,}   "
            f"connections {self.connections} (dropped {self.disconnects})   errors {self.errors}",
            "",
            f"{'venue':<16}{'symbol':<16}{'bid':>14}{'ask':>14}{'spread':>10}{'book':>18}{'msg/s':>9}{'gaps':>6}",
        ]
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
            lines.append(
                f"{venue:<16}{symbol:<16}{bp:>14.10g}{ap:>14.10g}{ap - bp:>10.4g}"
                f"{state:>18}{row.rate:>9.0f}{row.gaps:>6}"
            )
        lines.append("")
        lines.append(f"total {total_rate:,.0f} events/s")
        lines.extend(self.connection_lines())
        return "\n".join(lines)

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
        text = self.render()
        if self.out.isatty():
            self.out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            self.out.write(text + "\n\n")
        self.out.flush()


async def _run_view(
    subs: Sequence[Subscription],
    endpoints: dict[str, Endpoint] | None,
    duration: float | None,
    out: TextIO,
    refresh: float,
    on_start: Callable[[], Any] | None = None,
    connect_deadline: float | None = None,
    record: str | None = None,
) -> LiveView:
    async with Multiplexer(endpoints=endpoints, record=record) as mux:
        stream = mux.subscribe(*subs, name="cli")
        view = LiveView(mux, out)
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
    sys.stderr.write(view.failure_report(connect_deadline or 0.0))
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
    venues = args.venues.split(",") if args.venues else [v for v in MOCKS if _load_mock(v) is not None]
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

        def start_mocks() -> None:
            for mock in mocks:
                mock.run()

        view = await _run_view(
            subs, endpoints, args.duration, out, args.refresh, start_mocks, connect_deadline=args.connect_deadline
        )
    failed = _connect_verdict(view, args.connect_deadline, out)
    if failed is not None:
        return failed
    books = [f"{v}:{s}" for (v, s), row in sorted(view.rows.items()) if row.resyncs]
    out.write(
        f"demo finished: {view.total:,} events from {len(mocks)} mock venue(s), "
        f"{len(books)} books synced, {view.errors} errors\n"
    )
    return 0 if view.total > 0 else 1


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
    view = await _run_view(subs, None, args.duration, out, args.refresh, connect_deadline=args.connect_deadline)
    return _connect_verdict(view, args.connect_deadline, out) or 0


def _add_connect_deadline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect-deadline",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up with exit status 3 and the reason if no connection opened within this time "
        "(default 30; the per-venue state and last error are shown meanwhile)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsmux", description="Crypto market-data multiplexer.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run mock exchanges in-process and watch the live view")
    demo.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10; 0 = until Ctrl-C)")
    demo.add_argument("--venues", default="", help="comma-separated venue ids (default: every venue with a mock)")
    demo.add_argument("--symbols", default="", help="comma-separated unified symbols")
    demo.add_argument("--rate", type=float, default=50.0, help="market steps per second per symbol")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--refresh", type=float, default=1.0, help="seconds between screen refreshes")
    _add_connect_deadline(demo)
    watch = commands.add_parser("watch", help="watch real venues, e.g. wsmux watch binance:BTC-USDT,ETH-USDT")
    watch.add_argument("targets", nargs="+")
    watch.add_argument("--duration", type=float, default=None)
    watch.add_argument("--refresh", type=float, default=1.0)
    _add_connect_deadline(watch)
    commands.add_parser("venues", help="list the venue ids")
    record = commands.add_parser("record", help="record raw frames to the message log")
    record.add_argument("targets", nargs="+", help="VENUE:SYMBOL[,SYMBOL...]")
    record.add_argument("--out", required=True, help="directory for the log files")
    record.add_argument("--duration", type=float, default=None)
    record.add_argument("--refresh", type=float, default=5.0)
    _add_connect_deadline(record)
    replay = commands.add_parser("replay", help="replay logs or text recordings through the adapters")
    replay.add_argument("paths", nargs="+")
    replay.add_argument("--speed", type=float, default=None, help="1 = real time; default: as fast as possible")
    replay.add_argument("--venue", action="append", default=None, help="only these venues (repeatable)")
    replay.add_argument(
        "--subscribe",
        action="append",
        default=[],
        help="VENUE:CHANNEL:SYMBOL a recorded connection carried (text recordings only; repeatable)",
    )
    replay.add_argument("--text-venue", default=None, help="venue id of text recordings (default: from the file name)")
    replay.add_argument("--format", choices=["summary", "jsonl"], default="summary")
    log = commands.add_parser("log", help="message-log tools")
    log_commands = log.add_subparsers(dest="log_command", required=True)
    info = log_commands.add_parser("info", help="venues, time range, counts and integrity of logs")
    info.add_argument("paths", nargs="+")
    from wsmux import bench

    bench.add_parser(commands)
    return parser


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    from wsmux.log import Replay

    subs = []
    for text in args.subscribe:
        venue, channel, symbol = text.split(":", 2)
        subs.append(Subscription(venue, Channel(channel), symbol))
    replay = Replay(args.paths, venues=args.venue, subscriptions=subs, venue=args.text_venue)
    if args.format == "jsonl":
        from wsmux.convert import to_json

        write = out.buffer.write if hasattr(out, "buffer") else None
        for event in replay.events():
            line = to_json(event) + b"\n"
            if write is not None:
                write(line)
            else:
                out.write(line.decode())
        out.flush()
        return 0
    count = 0
    started = time.monotonic()
    for _event in replay.events():
        count += 1
    elapsed = time.monotonic() - started
    out.write(replay.summary.describe() + "\n")
    out.write(f"{count:,} events in {elapsed:.2f} s\n")
    return 0


def _log_info(args: argparse.Namespace, out: TextIO) -> int:
    from wsmux.log import log_info

    out.write(log_info(args.paths).describe() + "\n")
    return 0


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


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``wsmux`` console script."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command == "venues":
            out.write("\n".join(exchanges.names()) + "\n")
            return 0
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
        if args.command == "log":
            return _log_info(args, out)
        if args.command == "bench":
            from wsmux import bench

            return bench.run_from_args(args)
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        return 130
    except LocalError as exc:
        sys.stderr.write(f"wsmux: {exc}\n")
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
