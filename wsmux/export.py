"""Export replayed market data to Parquet or CSV for research (``wsmux export``).

This module does file I/O and times its progress bar, so it lives outside the
sans-I/O :mod:`wsmux.analytics` whose operators it runs.

The inputs are anything :class:`wsmux.log.Replay` reads — wsmux logs, folders
of them, text captures (venue and subscriptions detected from the capture
itself) — replayed as fast as possible through the same adapters and book
sync as live data. What is written (one table, one row per item, every
venue and symbol in the same file with ``venue``/``symbol`` columns):

* ``trades`` — every :class:`~wsmux.Trade`.
* ``bbo`` — best bid and offer: each :class:`~wsmux.Quote` (``source`` =
  ``quote``) and, from synced books, each change of the top of book
  (``source`` = ``book``).
* ``bars:INTERVAL`` (``bars:1s``, ``bars:5m``) — :class:`~wsmux.analytics.TimeBars`
  per instrument (the last, unfinished bar of each is flushed at the end).
* ``book:N`` — the top ``N`` levels per side after every book event
  (``bid_price_1`` ... ``ask_size_N``, nan where the book is shallower).

Book rows come only from valid books: events while a book is invalid
(after a gap, before its resync) are skipped and counted
(:attr:`ExportResult.skipped_invalid`). Parquet needs pyarrow
(``pip install 'wsmux[parquet]'``); CSV needs nothing.
"""

from __future__ import annotations

import csv
import math
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import attrs

from wsmux.analytics import Bar, PerInstrument, TimeBars, parse_interval
from wsmux.errors import ConfigError, WsmuxError
from wsmux.model import BookSnapshot, BookUpdate, Event, Quote, Trade

__all__ = ["ExportResult", "Progress", "export", "parse_what"]

Kind = Literal["str", "int", "float"]
Column = tuple[str, Kind]
Row = tuple[Any, ...]

ROW_GROUP = 65_536
"""Rows per Parquet row group (and per CSV write batch)."""

_TRADE_COLUMNS: tuple[Column, ...] = (
    ("venue", "str"), ("symbol", "str"), ("ts", "int"), ("recv_ns", "int"), ("price", "float"),
    ("size", "float"), ("side", "str"), ("trade_id", "str"), ("seq", "int"),
)  # fmt: skip
_BBO_COLUMNS: tuple[Column, ...] = (
    ("venue", "str"), ("symbol", "str"), ("ts", "int"), ("recv_ns", "int"), ("bid_price", "float"),
    ("bid_size", "float"), ("ask_price", "float"), ("ask_size", "float"), ("source", "str"),
)  # fmt: skip
_BAR_KINDS: dict[Any, Kind] = {str: "str", int: "int", float: "float", int | None: "int"}
_BAR_COLUMNS: tuple[Column, ...] = tuple(
    (name, _BAR_KINDS[t])
    for name, t in typing.get_type_hints(Bar).items()
    if name in attrs.fields_dict(Bar)  # type: ignore[arg-type]
)


@attrs.define
class ExportResult:
    """What an export did.

    Attributes:
        rows: rows written.
        frames: frames replayed.
        events: events the replay produced.
        skipped_invalid: book events not exported because the book was invalid.
        seconds: wall time.
    """

    rows: int = 0
    frames: int = 0
    events: int = 0
    skipped_invalid: int = 0
    seconds: float = 0.0


def parse_what(what: str) -> tuple[str, int]:
    """``"trades"``, ``"bbo"``, ``"bars:1s"``, ``"book:10"`` → (table, parameter);
    the parameter is the bar interval in ns or the book depth (0 otherwise).

    Raises:
        ConfigError: anything else.
    """
    table, _, arg = what.partition(":")
    if table in ("trades", "bbo") and not arg:
        return table, 0
    if table == "bars" and arg:
        return table, parse_interval(arg)
    if table == "book" and arg.isdigit() and 0 < int(arg) <= 1000:
        return table, int(arg)
    raise ConfigError(f"cannot export {what!r}: use trades, bbo, bars:INTERVAL (e.g. bars:1s) or book:N (e.g. book:10)")


class _Table:
    """Turns replayed events into rows of one table."""

    columns: tuple[Column, ...] = ()
    skipped_invalid = 0

    def rows(self, event: Event, book: Callable[[str, str], Any]) -> Iterable[Row]:
        raise NotImplementedError

    def finish(self) -> Iterable[Row]:
        return ()


class _Trades(_Table):
    columns = _TRADE_COLUMNS

    def rows(self, event: Event, book: Callable[[str, str], Any]) -> Iterable[Row]:
        if type(event) is Trade:
            t = event
            side = t.side.value if t.side is not None else None
            return ((t.venue, t.symbol, t.ts, t.recv_ns, t.price, t.size, side, t.trade_id, t.seq),)
        return ()


def _valid_book(event: Event, book: Callable[[str, str], Any], table: _Table) -> Any:
    """The replay's live book behind a book event, if it is valid (else counted)."""
    b: BookUpdate = event  # type: ignore[assignment]
    view = book(b.venue, b.symbol)
    if view is None or not view.valid:
        table.skipped_invalid += 1
        return None
    return view


class _Bbo(_Table):
    columns = _BBO_COLUMNS

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[float, float, float, float]] = {}

    def rows(self, event: Event, book: Callable[[str, str], Any]) -> Iterable[Row]:
        cls = type(event)
        if cls is Quote:
            q: Quote = event  # type: ignore[assignment]
            return ((q.venue, q.symbol, q.ts, q.recv_ns, q.bid_price, q.bid_size, q.ask_price, q.ask_size, "quote"),)
        if cls is BookUpdate or cls is BookSnapshot:
            view = _valid_book(event, book, self)
            if view is None:
                return ()
            b: BookUpdate = event  # type: ignore[assignment]
            top = view.bbo()
            key = (b.venue, b.symbol)
            if self._last.get(key) == top:
                return ()
            self._last[key] = top
            return ((b.venue, b.symbol, b.ts, b.recv_ns, *top, "book"),)
        return ()


class _Bars(_Table):
    columns = _BAR_COLUMNS

    def __init__(self, interval: int) -> None:
        self._op = PerInstrument(lambda _v, _s: TimeBars(interval))
        self._fields = [name for name, _ in _BAR_COLUMNS]

    def _bar_rows(self, bars: Sequence[Any]) -> list[Row]:
        return [tuple([getattr(bar, f) for f in self._fields]) for bar in bars]

    def rows(self, event: Event, book: Callable[[str, str], Any]) -> Iterable[Row]:
        if type(event) is Trade:
            out = self._op.update(event)
            if out:
                return self._bar_rows(out)
        return ()

    def finish(self) -> Iterable[Row]:
        return self._bar_rows(self._op.flush())


class _Book(_Table):
    def __init__(self, depth: int) -> None:
        self.depth = depth
        cols: list[Column] = [("venue", "str"), ("symbol", "str"), ("ts", "int"), ("recv_ns", "int"), ("seq", "int")]
        for side in ("bid", "ask"):
            for i in range(1, depth + 1):
                cols += [(f"{side}_price_{i}", "float"), (f"{side}_size_{i}", "float")]
        self.columns = tuple(cols)
        self._pad = (math.nan, math.nan) * depth

    def rows(self, event: Event, book: Callable[[str, str], Any]) -> Iterable[Row]:
        cls = type(event)
        if cls is not BookUpdate and cls is not BookSnapshot:
            return ()
        view = _valid_book(event, book, self)
        if view is None:
            return ()
        b: BookUpdate = event  # type: ignore[assignment]
        bids, asks = view.depth(self.depth)
        n = self.depth * 2
        bid_cells = (tuple(x for level in bids for x in level) + self._pad)[:n]
        ask_cells = (tuple(x for level in asks for x in level) + self._pad)[:n]
        return ((b.venue, b.symbol, b.ts, b.recv_ns, view.seq, *bid_cells, *ask_cells),)


def _table(what: str) -> _Table:
    table, arg = parse_what(what)
    if table == "trades":
        return _Trades()
    if table == "bbo":
        return _Bbo()
    if table == "bars":
        return _Bars(arg)
    return _Book(arg)


class _CsvSink:
    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._writer = csv.writer(self._fh)
        self._writer.writerow([name for name, _ in columns])

    def write(self, rows: list[Row]) -> None:
        self._writer.writerows(rows)

    def close(self) -> None:
        self._fh.close()


class _ParquetSink:
    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ConfigError("--to parquet needs pyarrow: pip install 'wsmux[parquet]' (or use --to csv)") from exc
        types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
        self._pa = pa
        self._names = [name for name, _ in columns]
        self._schema = pa.schema([(name, types[kind]) for name, kind in columns])
        self._writer = pq.ParquetWriter(str(path), self._schema)

    def write(self, rows: list[Row]) -> None:
        by_column = list(zip(*rows, strict=True))
        arrays = [self._pa.array(col, type=t) for col, t in zip(by_column, self._schema.types, strict=True)]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


class Progress:
    """A plain-text progress bar on a stream (stderr): redrawn in place on a
    terminal, a line per 10 % otherwise; at most every ``every`` seconds."""

    def __init__(self, out: TextIO, total: int | None, *, every: float = 0.2) -> None:
        self.out = out
        self.total = total
        self.every = every
        self._tty = out.isatty()
        self._next = 0.0
        self._decile = -1
        self._started = time.monotonic()

    def line(self, frames: int, rows: int) -> str:
        elapsed = time.monotonic() - self._started
        if self.total:
            share = min(1.0, frames / self.total)
            bar = "#" * int(share * 30)
            return (f"export [{bar:<30}] {share:4.0%} {frames:,}/{self.total:,} frames, {rows:,} rows, "
                    f"{elapsed:.1f} s")  # fmt: skip
        return f"export {frames:,} frames, {rows:,} rows, {elapsed:.1f} s"

    def update(self, frames: int, rows: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        if self._tty:
            self.out.write("\r" + self.line(frames, rows))
            self.out.flush()
            return
        decile = int(10 * frames / self.total) if self.total else int(now - self._started) // 10
        if decile > self._decile:
            self._decile = decile
            self.out.write(self.line(frames, rows) + "\n")
            self.out.flush()

    def done(self, frames: int, rows: int) -> None:
        self.out.write(("\r" if self._tty else "") + self.line(frames, rows) + "\n")
        self.out.flush()


def _count_frames(paths: Sequence[Path]) -> int | None:
    """Frames received in the inputs (for the progress bar), or None if unknown."""
    from wsmux.log import Direction, capture_info, log_info
    from wsmux.log._format import FILE_MAGIC

    logs: list[Path] = []
    captures: list[Path] = []
    for path in paths:
        if path.is_dir():
            logs.append(path)
            continue
        with open(path, "rb") as fh:
            (logs if path.suffix == ".wslog" or fh.read(len(FILE_MAGIC)) == FILE_MAGIC else captures).append(path)
    try:
        total = 0
        if logs:
            total += log_info(logs).counts.get(Direction.IN, 0)
        if captures:
            total += capture_info(captures).counts.get(Direction.IN, 0)
    except (WsmuxError, OSError):
        return None  # the replay itself reports what is wrong
    return total or None


def export(
    paths: str | Path | Iterable[str | Path],
    *,
    to: str,
    what: str,
    out: str | Path,
    venue: str | None = None,
    progress: TextIO | None = None,
) -> ExportResult:
    """Replay ``paths`` and write ``what`` to ``out`` as ``to`` (``"parquet"`` or ``"csv"``).

    Args:
        venue: the venue id of text captures (default: detected).
        progress: where to draw a progress bar (e.g. ``sys.stderr``); None: quiet.

    Raises:
        ConfigError: a bad ``to``/``what``, or Parquet without pyarrow.
        LogError, UnknownVenue: as :class:`wsmux.log.Replay` does.
    """
    from wsmux.log import Replay

    if to not in ("parquet", "csv"):
        raise ConfigError(f"cannot export to {to!r}: use parquet or csv")
    table = _table(what)
    replay = Replay(paths, venue=venue, skip_unsupported=True)
    for path, reason in replay.skipped:
        if progress is not None:
            progress.write(f"wsmux: skipped {path}: {reason}\n")
    bar = Progress(progress, _count_frames(replay.paths)) if progress is not None else None
    out_path = Path(out)
    sink: _CsvSink | _ParquetSink = (
        _ParquetSink(out_path, table.columns) if to == "parquet" else _CsvSink(out_path, table.columns)
    )
    result = ExportResult()
    started = time.monotonic()
    pending: list[Row] = []
    live_book = _live_book_reader(replay)
    try:
        for event in _events(replay, result):
            rows = table.rows(event, live_book)
            if rows:
                pending.extend(rows)
                if len(pending) >= ROW_GROUP:
                    sink.write(pending)
                    result.rows += len(pending)
                    pending = []
            if bar is not None and not result.events & 1023:
                bar.update(replay.summary.frames, result.rows + len(pending))
        pending.extend(table.finish())
        if pending:
            sink.write(pending)
            result.rows += len(pending)
    finally:
        sink.close()
    result.frames = replay.summary.frames
    result.skipped_invalid = table.skipped_invalid
    result.seconds = time.monotonic() - started
    if bar is not None:
        bar.done(result.frames, result.rows)
    return result


def _events(replay: Any, result: ExportResult) -> Iterator[Event]:
    for event in replay.events():
        result.events += 1
        yield event


def _live_book_reader(replay: Any) -> Callable[[str, str], Any]:
    def read(venue: str, symbol: str) -> Any:
        try:
            return replay.book(venue, symbol)
        except (WsmuxError, KeyError):
            return None

    return read
