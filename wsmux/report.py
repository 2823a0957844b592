"""A self-contained HTML report of recorded traffic: ``wsmux report PATH... --out report.html``.

The input is whatever :class:`~wsmux.log.Replay` reads — wsmux message logs
(``*.wslog``) and text captures — replayed through the same adapters and book
sync as live traffic. The report shows, per venue:

* message rate over time (market events per second),
* latency histograms: receive time minus the venue's own event time (the
  venue's clock offset is included; it is the same for every event of a
  venue, so the *shape* is the network and the venue's queueing),
* a gap/resync timeline per book: when it broke (``Gap``, with the reason),
  when it was whole again (``Resynced``), the invalid stretch shaded,
* book depth charts (cumulative size by price) at chosen times (``at``,
  default: four times evenly spaced through the book traffic).

Charts are drawn with matplotlib (the optional extra ``wsmux[report]``) as SVG
and inlined in the HTML, with no script, stylesheet, font or image fetched from
anywhere: the file opens with no network. Nothing from the recording is
inserted into the HTML unescaped.

Costs: two replays of the input when ``at`` is not given (one to find the time
range), one when it is; memory O(seconds * venues + latency samples), the
samples capped at :data:`MAX_LATENCY_SAMPLES` per venue by even striding.
"""

from __future__ import annotations

import html
import io
import math
import re
import time
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from wsmux.errors import ConfigError, UnknownSymbol, UnknownVenue
from wsmux.model import BookSnapshot, BookUpdate, Gap, MarketEvent, Resynced

__all__ = ["MAX_LATENCY_SAMPLES", "ReportData", "collect", "parse_time", "render_html", "write_report"]

MAX_LATENCY_SAMPLES = 200_000
"""Latency samples kept per venue (beyond it every other sample is dropped, so
the kept ones stay spread over the whole recording)."""
_DEPTH_LEVELS = 50
_MAX_RATE_POINTS = 200_000
_MAX_DEPTH_BOOKS = 6
_ABSURD_LATENCY_MS = 3_600_000.0
"""Latencies beyond ±1 h are timestamps in the wrong unit or a stuck clock:
left out of the histograms and counted."""


@attrs.define
class _Mark:
    """One gap or resync of one book or tape."""

    ns: int
    kind: str  # "gap" or "resynced"
    reason: str


@attrs.define
class ReportData:
    """What a report shows (see :func:`collect`).

    Attributes:
        first_ns, last_ns: receive-time range of the replayed frames.
        rates: per venue, market events per whole second (seconds since ``first_ns``).
        latencies_ms: per venue, sampled ``recv - ts`` in milliseconds.
        stride: per venue, one latency sample kept per this many events.
        absurd: per venue, latencies left out as absurd.
        marks: per ``venue:channel:symbol``, its gaps and resyncs.
        depth: per ``(venue, symbol)``, per chosen time (ns), the book's
            ``(bids, asks, valid)`` at that time (levels best first).
        summary: the replay's summary text.
        inputs: the paths replayed.
    """

    first_ns: int | None = None
    last_ns: int | None = None
    rates: dict[str, dict[int, int]] = attrs.field(factory=dict)
    latencies_ms: dict[str, list[float]] = attrs.field(factory=dict)
    stride: dict[str, int] = attrs.field(factory=dict)
    absurd: dict[str, int] = attrs.field(factory=dict)
    marks: dict[str, list[_Mark]] = attrs.field(factory=dict)
    depth: dict[tuple[str, str], dict[int, tuple[Any, Any, bool]]] = attrs.field(factory=dict)
    summary: str = ""
    inputs: list[str] = attrs.field(factory=list)


def _replay(paths: Sequence[str | Path], venue: str | None) -> Any:
    from wsmux.log import Replay

    return Replay(paths, venue=venue, skip_unsupported=True)


def _first_pass(paths: Sequence[str | Path], venue: str | None) -> tuple[int, int, array[int]] | None:
    """The receive-time range of the input and the receive time of every book event."""
    replay = _replay(paths, venue)
    book_times: array[int] = array("q")
    for event in replay.events():
        if type(event) is BookUpdate or type(event) is BookSnapshot:
            book_times.append(event.recv_ns)
    first, last = replay.summary.first_ns, replay.summary.last_ns
    return None if first is None or last is None else (first, last, book_times)


def collect(
    paths: Sequence[str | Path],
    *,
    at: Iterable[int | str] | None = None,
    venue: str | None = None,
    times: int = 4,
) -> ReportData:
    """Replay ``paths`` and gather what the report shows.

    Args:
        paths: log files, captures or folders of them.
        at: times of the depth charts: receive times (ns since the epoch) or
            text for :func:`parse_time` (ISO time, epoch seconds, ``+S``
            seconds after the start); default ``times`` times evenly spaced
            through the book events (so several recordings with dead time
            between them still get charts).
        venue: the venue of text captures, when it cannot be detected.
        times: how many default depth-chart times.

    Raises:
        LogError: a path does not exist or holds nothing to replay.
        ConfigError: nothing in the input could be replayed.
    """
    data = ReportData(inputs=[str(p) for p in paths])
    given = None if at is None else list(at)
    span: tuple[int, int, array[int]] | None = None
    if given is None or any(isinstance(a, str) and a.strip().startswith("+") for a in given):
        span = _first_pass(paths, venue)
        if span is None:
            raise ConfigError(f"nothing to report: no frames replayed from {', '.join(data.inputs)}")
    if given is None:
        assert span is not None
        first, last, book_times = span
        if book_times:  # evenly spaced through the book traffic: several recordings leave dead time between
            wanted = [book_times[len(book_times) * (i + 1) // (times + 1)] for i in range(times)]
        else:
            wanted = [first + (last - first) * (i + 1) // (times + 1) for i in range(times)]
    else:
        wanted = sorted(a if isinstance(a, int) else parse_time(a, span[0] if span else None) for a in given)
    replay = _replay(paths, venue)
    pending = list(wanted)
    books: set[tuple[str, str]] = set()
    counts: dict[str, int] = {}
    for event in replay.events():
        recv_ns: int = getattr(event, "recv_ns", 0)
        while pending and recv_ns >= pending[0]:
            _take_depth(data, replay, books, pending.pop(0))
        if data.first_ns is None:
            data.first_ns = replay.summary.first_ns
        if isinstance(event, MarketEvent):
            _count(data, counts, event, recv_ns)
            if type(event) is BookSnapshot or type(event) is BookUpdate:
                books.add((event.venue, event.symbol))
        elif isinstance(event, Gap | Resynced):
            key = f"{event.venue}:{event.channel.value}:{event.symbol or '*'}"
            reason = event.reason.value if isinstance(event, Gap) else ""
            data.marks.setdefault(key, []).append(
                _Mark(event.recv_ns, "gap" if isinstance(event, Gap) else "resynced", reason)
            )
    while pending:  # times after the last frame: the books as they ended
        _take_depth(data, replay, books, pending.pop(0))
    data.first_ns = replay.summary.first_ns
    data.last_ns = replay.summary.last_ns
    if data.first_ns is None:
        raise ConfigError(f"nothing to report: no frames replayed from {', '.join(data.inputs)}")
    data.summary = replay.summary.describe()
    for path, reason in replay.skipped:
        data.summary += f"\nskipped {path}: {reason}"
    return data


def _count(data: ReportData, counts: dict[str, int], event: MarketEvent, recv_ns: int) -> None:
    venue: str = event.venue  # type: ignore[attr-defined]
    first = data.first_ns or recv_ns
    second = (recv_ns - first) // 1_000_000_000
    per_second = data.rates.setdefault(venue, {})
    per_second[second] = per_second.get(second, 0) + 1
    ts = getattr(event, "ts", None)
    if not ts or type(event) is BookSnapshot:  # a REST snapshot's time is not the feed's
        return
    n = counts[venue] = counts.get(venue, 0) + 1
    stride = data.stride.get(venue, 1)
    if n % stride:
        return
    latency = (recv_ns - ts) / 1e6
    if not -_ABSURD_LATENCY_MS < latency < _ABSURD_LATENCY_MS:
        data.absurd[venue] = data.absurd.get(venue, 0) + 1
        return
    samples = data.latencies_ms.setdefault(venue, [])
    samples.append(latency)
    if len(samples) >= MAX_LATENCY_SAMPLES:
        del samples[1::2]
        data.stride[venue] = stride * 2


def _take_depth(data: ReportData, replay: Any, books: set[tuple[str, str]], at_ns: int) -> None:
    for venue, symbol in sorted(books)[:_MAX_DEPTH_BOOKS]:
        try:
            view = replay.book(venue, symbol)
        except (UnknownVenue, UnknownSymbol):
            continue
        bids, asks = view.depth(_DEPTH_LEVELS)
        data.depth.setdefault((venue, symbol), {})[at_ns] = (bids, asks, view.valid)


# --- rendering -----------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("the HTML report needs matplotlib: pip install 'wsmux[report]'") from exc
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small files, no embedded fonts
    matplotlib.rcParams["svg.hashsalt"] = "wsmux"  # stable ids: the same data gives the same file
    import matplotlib.pyplot as plt

    return plt


_SVG_CLEAN = [
    (re.compile(r"<\?xml[^>]*\?>\s*"), ""),
    (re.compile(r"<!DOCTYPE[^>]*>\s*"), ""),
    (re.compile(r"<metadata>.*?</metadata>\s*", re.S), ""),
    (re.compile(r'\s+xmlns(:\w+)?="[^"]*"'), ""),
]


def _svg(fig: Any) -> str:
    """``fig`` as inline SVG (no XML prolog, namespaces or metadata: no URL at all)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(fig)
    text = buf.getvalue()
    for pattern, repl in _SVG_CLEAN:
        text = pattern.sub(repl, text)
    return text


def _rate_chart(data: ReportData) -> str | None:
    if not data.rates:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for venue, per_second in sorted(data.rates.items()):
        last = max(per_second)
        # silent seconds are zeros; over a very long span (captures of different days) only
        # the seconds with traffic are drawn, or the chart would hold millions of points
        xs = list(range(last + 1)) if last < _MAX_RATE_POINTS else sorted(per_second)
        ax.plot(xs, [per_second.get(x, 0) for x in xs], label=venue, linewidth=1.2)
    ax.set_xlabel("seconds since the start of the recording")
    ax.set_ylabel("market events / s")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _svg(fig)


def _latency_chart(venue: str, samples: list[float]) -> str:
    plt = _pyplot()
    ordered = sorted(samples)
    lo = ordered[int(0.005 * (len(ordered) - 1))]
    hi = ordered[int(0.995 * (len(ordered) - 1))]
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.hist([min(max(s, lo), hi) for s in samples], bins=60, range=(lo, hi), color="#3b6ea8")
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    ax.axvline(p50, color="#222", linewidth=1, linestyle="--")
    ax.set_title(f"{venue}: p50 {p50:.1f} ms, p99 {p99:.1f} ms (n={len(samples):,})", fontsize=9)
    ax.set_xlabel("receive - venue time (ms; clipped to the 0.5..99.5 % range)", fontsize=8)
    ax.set_ylabel("events", fontsize=8)
    ax.tick_params(labelsize=8)
    return _svg(fig)


def _gap_chart(data: ReportData) -> str | None:
    if not data.marks or data.first_ns is None or data.last_ns is None:
        return None
    plt = _pyplot()
    keys = sorted(data.marks)
    first, last = data.first_ns, data.last_ns
    end_s = max((last - first) / 1e9, 1e-3)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(keys) + 1.2))
    for row, key in enumerate(keys):
        broken_at: float | None = None
        for mark in sorted(data.marks[key], key=lambda m: m.ns):
            t = (mark.ns - first) / 1e9
            if mark.kind == "gap":
                ax.plot([t], [row], marker="x", color="#c0392b", markersize=8)
                ax.annotate(mark.reason, (t, row), xytext=(4, 6), textcoords="offset points", fontsize=7)
                if broken_at is None:
                    broken_at = t
            else:
                ax.plot([t], [row], marker="|", color="#27ae60", markersize=12, markeredgewidth=2)
                if broken_at is not None:
                    ax.fill_between([broken_at, t], row - 0.3, row + 0.3, color="#c0392b", alpha=0.25, linewidth=0)
                    broken_at = None
        if broken_at is not None:  # still broken when the recording ends
            ax.fill_between([broken_at, end_s], row - 0.3, row + 0.3, color="#c0392b", alpha=0.25, linewidth=0)
    ax.set_yticks(range(len(keys)), keys, fontsize=8)
    ax.set_ylim(-0.7, len(keys) - 0.3)
    ax.set_xlim(0, end_s)
    ax.set_xlabel("seconds since the start of the recording (x gap, | resynced, shaded: invalid)")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def _depth_chart(venue: str, symbol: str, snapshots: dict[int, tuple[Any, Any, bool]], first_ns: int) -> str:
    plt = _pyplot()
    from matplotlib import ticker

    times = sorted(snapshots)
    fig, axes = plt.subplots(1, len(times), figsize=(2.9 * len(times) + 0.6, 2.6), squeeze=False)
    for ax, at_ns in zip(axes[0], times, strict=True):
        bids, asks, valid = snapshots[at_ns]
        t = (at_ns - first_ns) / 1e9
        if bids:
            prices = [p for p, _ in bids]
            ax.step(prices, _cumulative(bids), where="post", color="#27ae60", label="bids")
        if asks:
            prices = [p for p, _ in asks]
            ax.step(prices, _cumulative(asks), where="post", color="#c0392b", label="asks")
        state = "valid" if valid else "INVALID"
        ax.set_title(f"t = {t:.1f} s ({state})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(3))
        ax.grid(alpha=0.3)
        if not bids and not asks:
            ax.text(0.5, 0.5, "empty book", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    axes[0][0].set_ylabel("cumulative size", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="upper center")
    fig.tight_layout()
    return _svg(fig)


def _cumulative(levels: Sequence[tuple[float, float]]) -> list[float]:
    total = 0.0
    out = []
    for _, size in levels:
        total += size
        out.append(total)
    return out


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h3 { font-size: 14px; margin: 14px 0 2px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 10px; font-size: 12px; overflow-x: auto; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; } .grid > div { flex: 0 0 auto; }
svg { max-width: 100%; height: auto; } .note { color: #666; font-size: 13px; }
"""


def render_html(data: ReportData) -> str:
    """The report as one HTML document (charts inline, no external reference)."""
    esc = html.escape
    first = data.first_ns or 0
    span = ((data.last_ns or first) - first) / 1e9
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(first / 1e9))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>wsmux report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>wsmux report</h1>",
        f"<p>{esc(', '.join(data.inputs))}<br>from {esc(started)}, {span:,.1f} s of traffic</p>",
        "<h2>Summary</h2>",
        f"<pre>{esc(data.summary)}</pre>",
        "<h2>Message rate</h2>",
    ]
    rate = _rate_chart(data)
    parts.append(rate if rate is not None else '<p class="note">no market events</p>')
    parts.append("<h2>Latency (receive time - venue time)</h2>")
    parts.append(
        '<p class="note">Includes the venue\'s clock offset (the same for every event of a venue): read the '
        "spread and the tail, not the absolute value.</p>"
    )
    if data.latencies_ms:
        parts.append('<div class="grid">')
        for venue, samples in sorted(data.latencies_ms.items()):
            if samples:
                parts.append(f"<div>{_latency_chart(venue, samples)}</div>")
        parts.append("</div>")
    else:
        parts.append('<p class="note">no event carries a venue timestamp</p>')
    for venue, n in sorted(data.absurd.items()):
        parts.append(f'<p class="note">{esc(venue)}: {n:,} absurd timestamps (beyond ±1 h) left out</p>')
    parts.append("<h2>Gaps and resyncs</h2>")
    gaps = _gap_chart(data)
    parts.append(gaps if gaps is not None else '<p class="note">no gap and no resync</p>')
    parts.append("<h2>Book depth</h2>")
    if data.depth:
        parts.append(f'<p class="note">cumulative size by price, top {_DEPTH_LEVELS} levels a side</p>')
        for (venue, symbol), snapshots in sorted(data.depth.items()):
            parts.append(f"<h3>{esc(venue)} {esc(symbol)}</h3>")
            parts.append(f"<div>{_depth_chart(venue, symbol, snapshots, first)}</div>")
    else:
        parts.append('<p class="note">no order book in the recording</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    at: Iterable[int | str] | None = None,
    venue: str | None = None,
) -> ReportData:
    """Replay ``paths`` and write the HTML report to ``out`` (see :func:`collect`).

    Raises:
        ConfigError: matplotlib is missing (``pip install 'wsmux[report]'``),
            or nothing could be replayed.
        LogError: a path does not exist or holds nothing to replay.
    """
    _pyplot()  # fail before the (possibly long) replay if the extra is missing
    data = collect(paths, at=at, venue=venue)
    Path(out).write_text(render_html(data), encoding="utf-8")
    return data


def parse_time(text: str, first_ns: int | None = None) -> int:
    """A ``--at`` value: ISO-8601 UTC (``2026-12-07T02:50:00``), seconds since
    the epoch, or ``+S`` seconds after the start of the recording (needs ``first_ns``)."""
    text = text.strip()
    try:
        if text.startswith("+"):
            if first_ns is None:
                raise ConfigError("a relative time (+S) needs the recording's start")
            return first_ns + int(float(text[1:]) * 1e9)
        value = float(text)
        if math.isfinite(value):
            return int(value * 1e9)
    except ValueError:
        pass
    from datetime import UTC, datetime

    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--at {text!r}: give an ISO time (2026-12-07T02:50:00Z), epoch seconds or +SECONDS from the start"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1e9)
