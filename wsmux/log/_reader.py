"""Reading wsmux message logs: one file, a rotated set, or several merged.

Theory of operation
-------------------
A file is memory-mapped and walked block by block (layout in
:mod:`wsmux.log._format`). Every block is checked before it is used: the
block head against its own CRC, then the stored payload against the payload
CRC, then the decompressed size and the record heads against the payload
length. A block that fails is skipped and counted in :class:`ReadStats`; a
damaged head is skipped by scanning forward for the next valid block head. A
block cut off by the end of the file (a torn write from a crash or a file
still being written) ends that file quietly: its bytes are counted as
``truncated_bytes``. So a reader never raises for damaged data after the
header; it raises :class:`~wsmux.errors.LogError` only when the file is not a
wsmux log at all (bad magic), has an unknown version or a damaged header.

Each block is decoded completely before its first record is handed out, so a
consumer never sees half of a bad block.
"""

from __future__ import annotations

import heapq
import mmap
import os
import re
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Final, TypeAlias

import attrs
import lz4.block

from wsmux.errors import LogError
from wsmux.log._format import (
    BLOCK_HEAD,
    BLOCK_MAGIC,
    CODEC_LZ4,
    CODEC_RAW,
    FLAG_TEXT,
    FLAG_URL,
    KIND_MASK,
    RECORD_HEAD,
    Direction,
    LogHeader,
    Record,
    decode_header,
)

__all__ = [
    "Frame",
    "LogInfo",
    "LogIssue",
    "LogReader",
    "MAX_BLOCK_BYTES",
    "MergedLog",
    "ReadStats",
    "expand_log_paths",
    "iso_utc",
    "log_info",
    "merge_logs",
    "read_log",
    "rotated_sets",
]

Frame: TypeAlias = tuple[Direction, int, int, bytes | str, str | None]
"""A record as a plain tuple: ``(kind, recv_ns, conn_id, data, url)``."""

PathArg: TypeAlias = str | os.PathLike[str]
PathsArg: TypeAlias = PathArg | Iterable[PathArg]

_NAME_RE: Final = re.compile(r"^(?P<prefix>.*)-(?P<seq>\d+)\.wslog$")
_KIND_BY_VALUE: Final[tuple[Direction | None, ...]] = tuple(
    Direction(i) if i in {int(d) for d in Direction} else None for i in range(KIND_MASK + 1)
)
_HEAD_SIZE: Final = BLOCK_HEAD.size
_HEAD_CRC_AT: Final = BLOCK_HEAD.size - 4
_REC_SIZE: Final = RECORD_HEAD.size
_LARGEST: Final = 2**63
MAX_BLOCK_BYTES: Final = 2**28
"""Largest decompressed block the reader accepts (256 MiB): a block head
claiming more is damaged (the writer seals blocks at ``block_size``, 64 KiB by
default, and frames are capped at 64 MiB)."""
_LZ4_MAX_RATIO: Final = 255
"""LZ4 cannot expand data by more than this factor (plus a few bytes)."""


@attrs.frozen
class LogIssue:
    """One problem met while reading.

    Attributes:
        path: the file.
        offset: byte offset of the damaged or torn region.
        reason: what was wrong.
    """

    path: Path
    offset: int
    reason: str


@attrs.define
class ReadStats:
    """Counters of one reading pass.

    Attributes:
        files: files opened.
        blocks: good blocks decoded.
        records: records handed out.
        raw_bytes: decompressed payload bytes of the good blocks.
        stored_bytes: on-disk bytes of the good blocks (heads included).
        corrupt_blocks: damaged blocks (or damaged regions) skipped.
        skipped_bytes: bytes skipped because they were damaged.
        truncated_bytes: bytes of torn tails (an incomplete last block or an
            incomplete header) ignored at the end of files.
        issues: one entry per damaged or torn region.
    """

    files: int = 0
    blocks: int = 0
    records: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    corrupt_blocks: int = 0
    skipped_bytes: int = 0
    truncated_bytes: int = 0
    issues: list[LogIssue] = attrs.Factory(list)

    def add(self, other: ReadStats) -> None:
        """Add ``other``'s counters into this one."""
        self.files += other.files
        self.blocks += other.blocks
        self.records += other.records
        self.raw_bytes += other.raw_bytes
        self.stored_bytes += other.stored_bytes
        self.corrupt_blocks += other.corrupt_blocks
        self.skipped_bytes += other.skipped_bytes
        self.truncated_bytes += other.truncated_bytes
        self.issues.extend(other.issues)


def _sort_key(path: Path) -> tuple[str, int, str]:
    m = _NAME_RE.match(path.name)
    if m:
        return (m["prefix"], int(m["seq"]), path.name)
    return (path.stem, -1, path.name)


def expand_log_paths(paths: PathsArg) -> list[Path]:
    """Turn a path, a directory or a list of them into an ordered file list.

    A directory stands for its ``*.wslog`` files, sorted by prefix and then
    by the numeric sequence number of rotated sets. Explicit files keep the
    order given.

    Args:
        paths: a file, a directory, or an iterable of files and directories.

    Returns:
        The files, in reading order.
    """
    items: Iterable[PathArg] = [paths] if isinstance(paths, str | os.PathLike) else paths
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted((f for f in p.glob("*.wslog") if f.is_file()), key=_sort_key))
        else:
            out.append(p)
    return out


def rotated_sets(directory: PathArg) -> list[list[Path]]:
    """The ``*.wslog`` files of a directory grouped into rotated sets (one
    per file-name prefix, e.g. one per venue), each in sequence order."""
    by_prefix: dict[str, list[Path]] = {}
    for f in expand_log_paths(directory):
        by_prefix.setdefault(_sort_key(f)[0], []).append(f)
    return list(by_prefix.values())


class _MappedFile:
    """A log file mapped in memory (or read, when it is empty)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size == 0:
                    self._map: mmap.mmap | None = None
                    self.data: mmap.mmap | bytes = b""
                else:
                    self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                    self.data = self._map
        except OSError as exc:
            raise LogError(f"cannot open log file {path}: {exc}") from exc

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
            self.data = b""


def _check_head(codec: int, n: int, raw_len: int, stored_len: int, min_ns: int, max_ns: int) -> str | None:
    """Why a block head whose CRC is good still cannot be trusted, or ``None``.

    Every size is checked against sane bounds before anything is allocated
    (a crafted head can carry a valid CRC).
    """
    if codec not in (CODEC_RAW, CODEC_LZ4):
        return f"unknown codec {codec}"
    if raw_len > MAX_BLOCK_BYTES:
        return f"block claims {raw_len} decompressed bytes (more than {MAX_BLOCK_BYTES})"
    if codec == CODEC_RAW and raw_len != stored_len:
        return "raw block whose stored and decompressed sizes differ"
    if codec == CODEC_LZ4 and raw_len > stored_len * _LZ4_MAX_RATIO + 16:
        return f"block claims {raw_len} decompressed bytes from {stored_len} stored (impossible for LZ4)"
    if n * _REC_SIZE > raw_len:
        return f"block claims {n} records in {raw_len} bytes"
    if n and min_ns > max_ns:
        return "block time range is inverted"
    return None


def _decode_block(raw: bytes, n: int, min_ns: int = -_LARGEST, max_ns: int = _LARGEST) -> list[Frame] | str:
    """Decode ``n`` records from a decompressed payload.

    Returns:
        The frames, or a reason string when the payload is inconsistent.
    """
    heads_len = n * _REC_SIZE
    if heads_len > len(raw):
        return "record heads exceed the payload"
    out: list[Frame] = []
    append = out.append
    kinds = _KIND_BY_VALUE
    pos = heads_len
    try:
        for flags, ns, conn, dlen, ulen in RECORD_HEAD.iter_unpack(memoryview(raw)[:heads_len]):
            kind = kinds[flags & KIND_MASK]
            if kind is None:
                return f"unknown record kind {flags & KIND_MASK}"
            if not min_ns <= ns <= max_ns:
                return "record time outside the block's time range"
            end = pos + dlen
            chunk = raw[pos:end]
            data: bytes | str = chunk.decode("utf-8", "surrogatepass") if flags & FLAG_TEXT else chunk
            if flags & FLAG_URL:
                pos = end + ulen
                append((kind, ns, conn, data, raw[end:pos].decode("utf-8", "surrogatepass")))
            elif ulen:
                return "URL bytes without the URL flag"
            else:
                pos = end
                append((kind, ns, conn, data, None))
    except UnicodeDecodeError as exc:
        return f"bad text in record: {exc}"
    if pos != len(raw):
        return "record lengths do not add up to the payload"
    return out


def _valid_head(data: mmap.mmap | bytes, pos: int) -> bool:
    head = data[pos : pos + _HEAD_SIZE]
    return (
        len(head) == _HEAD_SIZE
        and head[:4] == BLOCK_MAGIC
        and zlib.crc32(head[:_HEAD_CRC_AT]) == int.from_bytes(head[_HEAD_CRC_AT:], "little")
    )


def _resync(data: mmap.mmap | bytes, start: int) -> int:
    """Offset of the next valid block head at or after ``start``, or -1."""
    pos = data.find(BLOCK_MAGIC, start)
    while pos != -1:
        if _valid_head(data, pos):
            return pos
        pos = data.find(BLOCK_MAGIC, pos + 1)
    return -1


def _iter_file_blocks(
    mf: _MappedFile,
    first: int,
    stats: ReadStats,
    start_ns: int | None,
    end_ns: int | None,
) -> Iterator[list[Frame]]:
    """Yield the decoded blocks of one file, counting problems in ``stats``."""
    data = mf.data
    size = len(data)
    path = mf.path
    pos = first
    lo = start_ns if start_ns is not None else -_LARGEST
    hi = end_ns if end_ns is not None else _LARGEST
    while pos < size:
        if size - pos < _HEAD_SIZE:
            if BLOCK_MAGIC.startswith(data[pos : pos + len(BLOCK_MAGIC)]):
                stats.truncated_bytes += size - pos
                stats.issues.append(LogIssue(path, pos, "torn block head at end of file"))
            else:
                stats.corrupt_blocks += 1
                stats.skipped_bytes += size - pos
                stats.issues.append(LogIssue(path, pos, "garbage at end of file"))
            return
        head = data[pos : pos + _HEAD_SIZE]
        (magic, codec, _r1, _r2, n, raw_len, stored_len, min_ns, max_ns, pcrc, hcrc) = BLOCK_HEAD.unpack(head)
        if magic != BLOCK_MAGIC or zlib.crc32(head[:_HEAD_CRC_AT]) != hcrc:
            nxt = _resync(data, pos + 1)
            stop = size if nxt == -1 else nxt
            stats.corrupt_blocks += 1
            stats.skipped_bytes += stop - pos
            stats.issues.append(LogIssue(path, pos, "damaged block head"))
            if nxt == -1:
                return
            pos = nxt
            continue
        end = pos + _HEAD_SIZE + stored_len
        if end > size:
            nxt = _resync(data, pos + _HEAD_SIZE)
            if nxt == -1:
                stats.truncated_bytes += size - pos
                stats.issues.append(LogIssue(path, pos, "torn block at end of file"))
                return
            # A good block follows inside the claimed length: the length lies.
            stats.corrupt_blocks += 1
            stats.skipped_bytes += nxt - pos
            stats.issues.append(LogIssue(path, pos, "block length runs past the end of the file"))
            pos = nxt
            continue
        if max_ns < lo or min_ns >= hi:
            pos = end
            continue
        payload = data[pos + _HEAD_SIZE : end]
        reason: str | None = _check_head(codec, n, raw_len, stored_len, min_ns, max_ns)
        frames: list[Frame] | str = "unreadable"
        if reason is not None:
            pass
        elif zlib.crc32(payload) != pcrc:
            reason = "block payload CRC mismatch"
        else:
            raw: bytes | None = None
            if codec == CODEC_LZ4:
                try:
                    raw = lz4.block.decompress(payload, uncompressed_size=raw_len)
                except (lz4.block.LZ4BlockError, OverflowError, ValueError, MemoryError) as exc:
                    reason = f"LZ4 decompression failed: {exc}"
            else:
                raw = payload
            if raw is not None:
                if len(raw) != raw_len:
                    reason = "decompressed size mismatch"
                else:
                    frames = _decode_block(raw, n, min_ns, max_ns)
                    if isinstance(frames, str):
                        reason = frames
        if reason is not None or isinstance(frames, str):
            stats.corrupt_blocks += 1
            stats.skipped_bytes += end - pos
            stats.issues.append(LogIssue(path, pos, reason or "bad block"))
            pos = end
            continue
        stats.blocks += 1
        stats.raw_bytes += raw_len
        stats.stored_bytes += end - pos
        if start_ns is not None or end_ns is not None:
            frames = [f for f in frames if lo <= f[1] < hi]
        pos = end
        yield frames


class LogReader:
    """Iterate the records of a log file or of a rotated set, in file order.

    The reader is a single-pass iterator of :class:`Record`; :meth:`frames`
    gives the same pass as plain tuples (faster, for replay). The first
    file's header is read on construction.

    Args:
        paths: a file, a directory (its ``*.wslog`` files in sequence
            order) or an iterable of them, read one after the other.
        start_ns: skip records received before this time (whole blocks are
            skipped without decompression).
        end_ns: skip records received at or after this time.

    Raises:
        LogError: no files, a file that cannot be opened, bad magic, an
            unknown version, a damaged header, or a first file whose header
            is incomplete.

    Attributes:
        paths: the files, in reading order.
        headers: the headers of the files opened so far.
        stats: counters of this pass (:class:`ReadStats`).
    """

    def __init__(
        self,
        paths: PathsArg,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        self.paths = expand_log_paths(paths)
        if not self.paths:
            raise LogError(f"no log files in {paths!r}")
        self.stats = ReadStats()
        self.headers: list[LogHeader] = []
        self._start_ns = start_ns
        self._end_ns = end_ns
        self._current: _MappedFile | None = None
        first = self._open(self.paths[0])
        if first is None:
            raise LogError(f"{self.paths[0]}: log header is incomplete")
        self._first: tuple[_MappedFile, int] | None = first
        self._frames: Generator[Frame, None, None] = self._generate()
        self._records = (Record(kind, ns, conn, data, url) for kind, ns, conn, data, url in self._frames)

    @property
    def header(self) -> LogHeader:
        """The header of the first file."""
        return self.headers[0]

    def _open(self, path: Path) -> tuple[_MappedFile, int] | None:
        mf = _MappedFile(path)
        try:
            parsed = decode_header(mf.data, str(path))
        except BaseException:
            mf.close()
            raise
        self.stats.files += 1
        if parsed is None:
            size = len(mf.data)
            mf.close()
            self.stats.truncated_bytes += size
            self.stats.issues.append(LogIssue(path, 0, "incomplete file header"))
            return None
        header, first = parsed
        self.headers.append(header)
        self._current = mf
        return mf, first

    def _generate(self) -> Generator[Frame, None, None]:
        try:
            for index, path in enumerate(self.paths):
                if index == 0:
                    opened = self._first
                    self._first = None
                else:
                    opened = self._open(path)
                if opened is None:
                    continue
                mf, first = opened
                try:
                    for frames in _iter_file_blocks(mf, first, self.stats, self._start_ns, self._end_ns):
                        self.stats.records += len(frames)
                        yield from frames
                finally:
                    mf.close()
                    self._current = None
        finally:
            self.close()

    def frames(self) -> Iterator[Frame]:
        """The remaining records of this pass as ``(kind, recv_ns, conn_id, data, url)``."""
        return self._frames

    def __iter__(self) -> Iterator[Record]:
        return self._records

    def __next__(self) -> Record:
        return next(self._records)

    def close(self) -> None:
        """Release the mapped file early (iteration then ends)."""
        if self._first is not None:
            self._first[0].close()
            self._first = None
        if self._current is not None:
            self._current.close()
            self._current = None

    def __enter__(self) -> LogReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._frames.close()
        self.close()


def read_log(paths: PathsArg, *, start_ns: int | None = None, end_ns: int | None = None) -> LogReader:
    """Open a log (file, rotated set or list) for reading.

    Args:
        paths: as for :class:`LogReader`.
        start_ns: as for :class:`LogReader`.
        end_ns: as for :class:`LogReader`.

    Returns:
        A :class:`LogReader`: an iterator of :class:`Record` with ``header``
        and ``stats``.
    """
    return LogReader(paths, start_ns=start_ns, end_ns=end_ns)


class MergedLog:
    """Records of several logs interleaved by receive time.

    Each source is read in its own order and the sources are merged with
    :func:`heapq.merge` on ``recv_ns`` (ties keep source order). The result is
    in time order when each source is; a source with out-of-order times is
    merged as is. Costs O(log k) per record for k sources.

    Attributes:
        readers: one :class:`LogReader` per source.
    """

    def __init__(self, readers: list[LogReader]) -> None:
        self.readers = readers
        self._frames: Iterator[Frame] = heapq.merge(*(r.frames() for r in readers), key=itemgetter(1))
        self._records = (Record(kind, ns, conn, data, url) for kind, ns, conn, data, url in self._frames)

    @property
    def headers(self) -> list[LogHeader]:
        """Headers of every file opened so far, source by source."""
        return [h for r in self.readers for h in r.headers]

    @property
    def stats(self) -> ReadStats:
        """The sources' counters added together (a fresh object)."""
        total = ReadStats()
        for r in self.readers:
            total.add(r.stats)
        return total

    def frames(self) -> Iterator[Frame]:
        """The remaining merged records as plain tuples."""
        return self._frames

    def __iter__(self) -> Iterator[Record]:
        return self._records

    def __next__(self) -> Record:
        return next(self._records)

    def close(self) -> None:
        """Release every source."""
        for r in self.readers:
            r.close()


def merge_logs(paths: PathsArg, *, start_ns: int | None = None, end_ns: int | None = None) -> MergedLog:
    """Merge several logs into one stream ordered by ``recv_ns``.

    Each file is a source, except that the files of one rotated set found in
    a directory (same prefix) form one source read in sequence.

    Args:
        paths: files and/or directories.
        start_ns: as for :class:`LogReader`.
        end_ns: as for :class:`LogReader`.

    Returns:
        A :class:`MergedLog` iterator of :class:`Record`.

    Raises:
        LogError: as for :class:`LogReader`.
    """
    items: Iterable[PathArg] = [paths] if isinstance(paths, str | os.PathLike) else paths
    groups: list[list[Path]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            groups.extend(rotated_sets(p))
        else:
            groups.append([p])
    if not groups:
        raise LogError(f"no log files in {paths!r}")
    readers: list[LogReader] = []
    try:
        for group in groups:
            readers.append(LogReader(group, start_ns=start_ns, end_ns=end_ns))
    except BaseException:
        for r in readers:
            r.close()
        raise
    return MergedLog(readers)


@attrs.frozen
class LogInfo:
    """A summary of one or more log files (what ``wsmux log info`` prints).

    Attributes:
        paths: the files read.
        venues: distinct header venues, in first-seen order.
        endpoints: distinct header endpoints.
        subscriptions: distinct subscriptions over all headers.
        first_ns: earliest record time (``None`` without records).
        last_ns: latest record time.
        records: number of good records.
        counts: records per :class:`Direction` (kinds with none are absent).
        connections: distinct connection ids, sorted.
        file_bytes: total size of the files on disk.
        stats: the reading counters (blocks, corruption, truncation).
    """

    paths: tuple[Path, ...]
    venues: tuple[str, ...]
    endpoints: tuple[str, ...]
    subscriptions: tuple[str, ...]
    first_ns: int | None
    last_ns: int | None
    records: int
    counts: Mapping[Direction, int] = attrs.field(hash=False)
    connections: tuple[int, ...]
    file_bytes: int
    stats: ReadStats = attrs.field(hash=False)

    @property
    def compression_ratio(self) -> float:
        """Decompressed payload bytes per stored byte (0.0 when empty)."""
        if not self.stats.stored_bytes:
            return 0.0
        return self.stats.raw_bytes / self.stats.stored_bytes

    def describe(self) -> str:
        """A few human-readable lines summarising the log."""
        lines = [
            f"files:         {len(self.paths)} ({self.file_bytes} bytes)",
            f"venues:        {', '.join(self.venues) or '-'}",
            f"endpoints:     {', '.join(self.endpoints) or '-'}",
            f"subscriptions: {len(self.subscriptions)}",
            f"records:       {self.records}"
            + (" (" + ", ".join(f"{k.name.lower()} {v}" for k, v in self.counts.items()) + ")" if self.counts else ""),
            f"connections:   {len(self.connections)}",
        ]
        if self.first_ns is not None and self.last_ns is not None:
            span = (self.last_ns - self.first_ns) / 1e9
            lines.append(f"time range:    {iso_utc(self.first_ns)} .. {iso_utc(self.last_ns)} ({span:.3f} s)")
        if self.stats.blocks or any(p.suffix == ".wslog" for p in self.paths):
            lines.append(f"blocks:        {self.stats.blocks} (compression {self.compression_ratio:.2f}x)")
        if self.stats.corrupt_blocks or self.stats.truncated_bytes:
            lines.append(
                f"damage:        {self.stats.corrupt_blocks} corrupt blocks, "
                f"{self.stats.skipped_bytes} bytes skipped, "
                f"{self.stats.truncated_bytes} torn bytes at file ends"
            )
        return "\n".join(lines)


def iso_utc(ns: int) -> str:
    """Unix nanoseconds as ISO 8601 UTC text, to the nanosecond
    (``1633998512063356900`` → ``2021-10-12T00:28:32.063356900Z``)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def log_info(paths: PathsArg) -> LogInfo:
    """Read logs completely and summarise them.

    Args:
        paths: files and/or directories (as for :class:`LogReader`).

    Returns:
        The summary.

    Raises:
        LogError: as for :class:`LogReader`.
    """
    files = expand_log_paths(paths)
    reader = LogReader(files)
    counts = [0] * (KIND_MASK + 1)
    conns: set[int] = set()
    first: int | None = None
    last: int | None = None
    lo = _LARGEST
    hi = -_LARGEST
    with reader:
        for kind, ns, conn, _data, _url in reader.frames():
            counts[kind] += 1
            conns.add(conn)
            lo = min(lo, ns)
            hi = max(hi, ns)
    if reader.stats.records:
        first, last = lo, hi

    def distinct(values: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v for v in values if v))

    file_bytes = 0
    for f in files:
        try:
            file_bytes += f.stat().st_size
        except OSError:  # pragma: no cover - removed while reading
            pass
    return LogInfo(
        paths=tuple(files),
        venues=distinct(h.venue for h in reader.headers),
        endpoints=distinct(h.endpoint for h in reader.headers),
        subscriptions=distinct(s for h in reader.headers for s in h.subscriptions),
        first_ns=first,
        last_ns=last,
        records=reader.stats.records,
        counts=MappingProxyType({Direction(i): c for i, c in enumerate(counts) if c}),
        connections=tuple(sorted(conns)),
        file_bytes=file_bytes,
        stats=reader.stats,
    )
