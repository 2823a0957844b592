"""The venue panel of the live view (``wsmux demo`` / ``wsmux watch``).

Per venue, from :meth:`wsmux.Multiplexer.health` (``venue_health``): the
connection state, a msg/s sparkline of the last minute, the one-way latency
p50/p99 net of the clock offset, the clock offset, gaps/resyncs and the
integrity level of its books. Two renderings of the same rows: plain text
(any terminal, pipes, tests) and ``rich`` tables (extra ``wsmux[cli]``, on a
terminal), imported only here and only when used.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from wsmux.health import VenueHealth

__all__ = ["PANEL_COLUMNS", "plain_panel", "rich_available", "rich_screen", "sparkline", "venue_cells"]

_BARS = "▁▂▃▄▅▆▇█"
PANEL_COLUMNS = ("venue", "state", "msg/s", "last 60 s", "p50", "p99", "offset", "gaps", "resyncs", "books")


def sparkline(values: Sequence[float], width: int = 20) -> str:
    """The last ``width`` values as block characters scaled to their maximum
    (blank where there is no history yet)."""
    tail = list(values)[-width:]
    top = max(tail, default=0)
    bars = "".join(_BARS[min(7, int(v / top * 7.999))] if top > 0 else _BARS[0] for v in tail)
    return bars.rjust(width)


def _ms(ns: int | None) -> str:
    if ns is None:
        return "-"
    ms = ns / 1e6
    return f"{ms:.1f} ms" if abs(ms) < 1000 else f"{ms / 1000:.2f} s"


def _offset(clock: dict[str, Any]) -> str:
    if not clock or clock.get("source") == "none":
        return "-"
    text = ("+" if clock["offset_ns"] >= 0 else "") + _ms(clock["offset_ns"])
    if clock.get("uncertainty_ns") is not None:
        text += f" ±{_ms(clock['uncertainty_ns'])}"
    elif clock["source"] == "envelope":
        text = "≥" + text
    return text + (" AHEAD" if clock.get("ahead_ns") else "")


def venue_cells(vh: VenueHealth) -> tuple[str, ...]:
    """One panel row (strings, in :data:`PANEL_COLUMNS` order)."""
    latency: dict[str, int | None] = {}
    best = 0
    for figures in vh.latency.values():  # the busiest channel stands for the venue
        count = figures.get("count") or 0
        if count > best:
            best, latency = count, figures
    rate = vh.rates.get("events", {}).get("10s")
    integrity = sorted({str(b["integrity"]) for b in vh.books.values() if b.get("integrity")})
    valid = sum(1 for b in vh.books.values() if b.get("valid"))
    books = f"{valid}/{len(vh.books)} valid {','.join(integrity)}" if vh.books else "-"
    state = vh.state if vh.open_connections == vh.connections else f"{vh.state} {vh.open_connections}/{vh.connections}"
    if any(f.get("state") not in (None, "normal") for f in vh.flows.values()):
        state += " " + ",".join(sorted({str(f["state"]).upper() for f in vh.flows.values() if f["state"] != "normal"}))
    p50, p99 = _ms(latency.get("p50")), _ms(latency.get("p99"))
    if not best and (vh.bad_ts or vh.no_ts):  # say why there is no latency
        p50 = p99 = "bad ts" if vh.bad_ts else "no ts"
    return (
        vh.venue,
        state,
        "-" if rate is None else f"{rate:,.0f}",
        sparkline(vh.per_second),
        p50,
        p99,
        _offset(vh.clock),
        str(vh.counters.get("gaps", 0)),
        str(vh.counters.get("resyncs", 0)),
        books,
    )


def plain_panel(venues: Sequence[VenueHealth]) -> list[str]:
    """The panel as aligned text lines (empty if no venue)."""
    if not venues:
        return []
    rows = [PANEL_COLUMNS, *(venue_cells(v) for v in venues)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(PANEL_COLUMNS))]
    right = {2, 4, 5, 7, 8}
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return lines


def rich_available() -> bool:
    """Whether ``rich`` can be imported (extra ``wsmux[cli]``)."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def rich_screen(
    title: str,
    symbol_header: Sequence[str],
    symbol_rows: Sequence[Sequence[str]],
    venues: Sequence[VenueHealth],
    footer: Sequence[str],
    width: int,
) -> str:
    """The whole screen rendered by ``rich`` to a string with ANSI colours."""
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    symbols = Table(title=None, expand=False, header_style="bold")
    for i, name in enumerate(symbol_header):
        symbols.add_column(name, justify="left" if i < 2 else "right")
    for row in symbol_rows:
        symbols.add_row(*[Text(c, style="bold red") if "INVALID" in c else c for c in row])
    panel = Table(title="venues", expand=False, header_style="bold")
    for i, name in enumerate(PANEL_COLUMNS):
        panel.add_column(name, justify="right" if i in (2, 4, 5, 7, 8) else "left", no_wrap=True)
    for vh in venues:
        cells = venue_cells(vh)
        style = "green" if vh.state == "open" else "yellow"
        if "AHEAD" in cells[6] or "COLLAPSE" in cells[1] or "SPIKE" in cells[1]:
            style = "magenta"
        panel.add_row(
            Text(cells[0], style="bold"),
            Text(cells[1], style=style),
            cells[2],
            Text(cells[3], style="cyan"),
            *cells[4:],
        )
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=width, color_system="standard")
    console.print(Group(Text(title, style="bold"), symbols, panel, *[Text(line) for line in footer]))
    return buf.getvalue()
