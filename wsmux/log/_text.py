"""Import of line-oriented text recordings (the cryptofeed ``sample_data`` style).

The format has one file per connection (``NAME.ws.N.0``) or per set of REST
calls (``NAME.http.N.0``, ``NAME.0``); each line is one of::

    URL <-> T          the connection was opened at T
    URL <- T: TEXT     a frame we sent
    T: TEXT            a frame received; a binary frame is a Python bytes
                       literal b'...'
    URL -> T: BODY     a REST response body
    configuration: {...}   the channels/symbols the session asked for

T is Unix time in seconds as decimal text; it is converted to integer
nanoseconds from the text itself (no float rounding). A line matching none of
these continues the previous record's text (a frame containing a newline);
blank lines at the end of a file are ignored.

Mapping to records: open → :attr:`Direction.OPEN` (``url`` = endpoint, empty
data), sent → :attr:`Direction.OUT` (``url`` = endpoint), received →
:attr:`Direction.IN`, REST → :attr:`Direction.REST` (``url`` = request URL).
The connection id is the ``N`` of ``.ws.N.`` / ``.http.N.`` in the file name
(0 otherwise) unless given.

A received text frame that itself looks like a bytes literal is read as a
binary frame: the format cannot tell them apart.
"""

from __future__ import annotations

import ast
import heapq
import os
import re
from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from operator import attrgetter
from pathlib import Path
from typing import Any, Final

import orjson

from wsmux.errors import LogError
from wsmux.log._format import Direction, LogHeader, Record
from wsmux.log._writer import LogWriter

__all__ = [
    "convert_text_recording",
    "import_text_recording",
    "seconds_text_to_ns",
    "text_recording_conn_id",
    "text_recording_header",
]

_T: Final = r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_RECV_RE: Final = re.compile(rf"{_T}: ")
_OPEN_RE: Final = re.compile(rf"(\S+) <-> {_T}")
_SENT_RE: Final = re.compile(rf"(\S+) <- {_T}: ")
_REST_RE: Final = re.compile(rf"(\S+) -> {_T}: ")
_SIMPLE_T_RE: Final = re.compile(r"(-?)(\d+)(?:\.(\d{0,9}))?")
_CONF_PREFIX: Final = "configuration: "
_CONN_RE: Final = re.compile(r"\.(?:ws|http)\.(\d+)\.")
_NS: Final = 1_000_000_000

PathArg = str | os.PathLike[str]


def seconds_text_to_ns(text: str) -> int:
    """Convert decimal seconds text to integer nanoseconds, exactly.

    ``"1633998512.0633569"`` → ``1633998512063356900``. More than nine
    fractional digits are rounded half-to-even; exponents are accepted.

    Args:
        text: the decimal number as written.

    Returns:
        Nanoseconds.

    Raises:
        ValueError: ``text`` is not a decimal number.
    """
    m = _SIMPLE_T_RE.fullmatch(text)
    if m:
        sign, whole, frac = m.groups()
        ns = int(whole) * _NS + (int(frac.ljust(9, "0")) if frac else 0)
        return -ns if sign else ns
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal number: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return int((value * _NS).to_integral_value(rounding=ROUND_HALF_EVEN))


def text_recording_conn_id(path: PathArg) -> int:
    """The connection id implied by a recording's file name (``.ws.N.`` → N, else 0)."""
    m = _CONN_RE.search(Path(path).name + ".")
    return int(m.group(1)) if m else 0


def _maybe_bytes(text: str) -> bytes | str:
    """Decode a Python bytes literal (``b'...'``) safely; otherwise keep the text."""
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            return text
        if isinstance(value, bytes):
            return value
    return text


class _Pending:
    __slots__ = ("data", "kind", "ns", "url")

    def __init__(self, kind: Direction, ns: int, data: str, url: str | None) -> None:
        self.kind = kind
        self.ns = ns
        self.data = data
        self.url = url

    def record(self, conn_id: int) -> Record:
        data: bytes | str = self.data
        if self.kind is Direction.IN or self.kind is Direction.OUT:
            data = _maybe_bytes(self.data)
        return Record(self.kind, self.ns, conn_id, data, self.url)


def _parse(line: str) -> _Pending | str | None:
    """A record start, the configuration JSON text (``str``), or ``None``."""
    if line[:1].isdigit() or line[:1] == "-":
        m = _RECV_RE.match(line)
        if m:
            return _Pending(Direction.IN, seconds_text_to_ns(m[1]), line[m.end() :], None)
    if line.startswith(_CONF_PREFIX):
        return line[len(_CONF_PREFIX) :]
    m = _SENT_RE.match(line)
    if m:
        return _Pending(Direction.OUT, seconds_text_to_ns(m[2]), line[m.end() :], m[1])
    m = _REST_RE.match(line)
    if m:
        return _Pending(Direction.REST, seconds_text_to_ns(m[2]), line[m.end() :], m[1])
    m = _OPEN_RE.fullmatch(line)
    if m:
        return _Pending(Direction.OPEN, seconds_text_to_ns(m[2]), "", m[1])
    return None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8", newline="\n") as fh:
            for lineno, line in enumerate(fh, 1):
                yield lineno, line[:-1] if line.endswith("\n") else line
    except UnicodeDecodeError as exc:
        raise LogError(f"{path}: not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise LogError(f"cannot read {path}: {exc}") from exc


def import_text_recording(path: PathArg, *, conn_id: int | None = None) -> Iterator[Record]:
    """Parse a text recording into records, lazily, in file order.

    Args:
        path: the recording file.
        conn_id: connection id for its records (default: from the file name).

    Yields:
        One :class:`Record` per open/sent/received/REST line.

    Raises:
        LogError: the file cannot be read, is not UTF-8, or a line (other
            than a continuation) is not in the format.
    """
    p = Path(path)
    conn = text_recording_conn_id(p) if conn_id is None else conn_id
    pending: _Pending | None = None
    blanks = 0
    for lineno, line in _lines(p):
        try:
            parsed = _parse(line)
        except ValueError as exc:
            raise LogError(f"{p}:{lineno}: bad time: {exc}") from exc
        if parsed is None:
            if not line:
                blanks += 1
                continue
            if pending is None:
                raise LogError(f"{p}:{lineno}: not a recording line: {line[:80]!r}")
            pending.data += "\n" * (blanks + 1) + line
            blanks = 0
            continue
        if pending is not None:
            if blanks:
                pending.data += "\n" * blanks
            yield pending.record(conn)
        blanks = 0
        pending = parsed if isinstance(parsed, _Pending) else None
    if pending is not None:
        yield pending.record(conn)


def _scan(path: Path) -> tuple[str | None, int | None, Any]:
    """First OPEN endpoint, earliest time, configuration JSON of one file."""
    endpoint: str | None = None
    first: int | None = None
    config: Any = None
    for lineno, line in _lines(path):
        if line.startswith(_CONF_PREFIX):
            try:
                config = orjson.loads(line[len(_CONF_PREFIX) :])
            except orjson.JSONDecodeError as exc:
                raise LogError(f"{path}:{lineno}: bad configuration JSON: {exc}") from exc
            continue
        if endpoint is None:
            m = _OPEN_RE.fullmatch(line)
            if m:
                endpoint = m[1]
        if first is None:
            try:
                parsed = _parse(line)
            except ValueError:
                parsed = None
            if isinstance(parsed, _Pending):
                first = parsed.ns
    return endpoint, first, config


def _as_list(paths: PathArg | Iterable[PathArg]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def text_recording_header(paths: PathArg | Iterable[PathArg], *, venue: str | None = None) -> LogHeader:
    """Build a log header describing one recording session.

    Args:
        paths: the session's files (e.g. ``NAME.0``, ``NAME.http.0.0``,
            ``NAME.ws.1.0``).
        venue: venue id; default: the lower-cased file-name part before the
            first dot (``BINANCE.ws.1.0`` → ``"binance"``).

    Returns:
        A header with the first WebSocket endpoint, the earliest time as
        ``created_ns``, ``subscriptions`` as ``"channel:SYMBOL"`` strings from
        the ``configuration:`` line (the recorder's channel names), and meta
        holding ``source``, ``files`` and the raw ``configuration``.

    Raises:
        LogError: a file cannot be read.
    """
    files = _as_list(paths)
    if not files:
        raise LogError("no recording files given")
    endpoint = ""
    created: int | None = None
    config: Any = None
    for f in files:
        ep, first, conf = _scan(f)
        if ep and not endpoint:
            endpoint = ep
        if first is not None and (created is None or first < created):
            created = first
        if conf is not None:
            config = conf
    subs: list[str] = []
    if isinstance(config, dict):
        for channel, symbols in config.items():
            if isinstance(symbols, list):
                subs.extend(f"{channel}:{sym}" for sym in symbols)
            else:
                subs.append(str(channel))
    meta: dict[str, Any] = {"source": "text-recording", "files": [f.name for f in files]}
    if config is not None:
        meta["configuration"] = config
    return LogHeader(
        venue=venue if venue is not None else files[0].name.split(".", 1)[0].lower(),
        endpoint=endpoint,
        subscriptions=subs,
        created_ns=created or 0,
        meta=meta,
    )


def convert_text_recording(
    src: PathArg | Iterable[PathArg],
    dst: LogWriter | PathArg,
    *,
    venue: str | None = None,
    **writer_options: Any,
) -> int:
    """Convert text recordings into a binary log.

    Several files (one session's REST and WebSocket files) are merged by
    receive time.

    Args:
        src: one recording file or several.
        dst: an open :class:`LogWriter` (left open), or a path for a new log
            whose header comes from :func:`text_recording_header`.
        venue: venue id for the new header (only with a path ``dst``).
        **writer_options: keyword options for the new :class:`LogWriter`.

    Returns:
        The number of records written.

    Raises:
        LogError: a file cannot be read or parsed, or writing failed.
    """
    files = _as_list(src)
    records: Iterator[Record] = heapq.merge(*(import_text_recording(f) for f in files), key=attrgetter("recv_ns"))
    if isinstance(dst, LogWriter):
        return _copy(records, dst)
    header = text_recording_header(files, venue=venue)
    with LogWriter(dst, header, **writer_options) as writer:
        return _copy(records, writer)


def _copy(records: Iterable[Record], writer: LogWriter) -> int:
    n = 0
    write = writer.write
    for r in records:
        write(r.kind, r.recv_ns, r.conn_id, r.data, r.url)
        n += 1
    return n
