"""Append-only, LZ4-compressed writer for wsmux message logs.

Theory of operation
-------------------
:meth:`LogWriter.write` packs one fixed 19-byte record head into one
``bytearray`` and the frame's bytes into another; nothing else happens on the
hot path except a few integer comparisons. When the buffered data reaches
``block_size`` (or ``flush_records`` records, or the block is older than
``flush_interval_ns`` by the records' own receive times) the block is
*sealed*: heads and data are joined, compressed with ``lz4.block``, framed
with a CRC-checked block head (see :mod:`wsmux.log._format`) and written to
the file with one unbuffered ``write`` call. So a crash loses at most the
unsealed block, and a torn write damages at most the last block.

Rotation is decided from the times the caller passes in (``recv_ns``), never
from the wall clock: a file's time window starts at its first record (aligned
to a multiple of ``rotate_seconds`` by default) and the first record at or
after the window's end opens the next file. Size rotation is checked after
each sealed block, so a file exceeds ``rotate_bytes`` by at most one block.
The injectable ``clock`` is read only where no time is given: the creation
time of the first file when the header has none, and :meth:`LogWriter.poll`,
:meth:`LogWriter.rotate` called without ``now_ns``.

The writer is not thread-safe; use one per thread (or one per event loop).
"""

from __future__ import annotations

import enum
import os
import re
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import attrs
import lz4.block

from wsmux.errors import ClosedError, ConfigError, LogError
from wsmux.log._format import (
    BLOCK_HEAD,
    BLOCK_MAGIC,
    CODEC_LZ4,
    CODEC_RAW,
    FLAG_TEXT,
    FLAG_URL,
    FORMAT_VERSION,
    RECORD_HEAD,
    Direction,
    LogHeader,
    Record,
    encode_header,
)

__all__ = ["LOG_SUFFIX", "Fsync", "LogWriter", "WriteStats", "rotated_name"]

LOG_SUFFIX: Final = ".wslog"
_NAME_RE: Final = re.compile(r"^(?P<prefix>.*)-(?P<seq>\d+)\.wslog$")
_MIN_NS: Final = -(2**63)
_MAX_NS: Final = 2**63 - 1
_NO_LIMIT: Final = 2**62
_KINDS: Final = frozenset(int(d) for d in Direction)
_pack_head = RECORD_HEAD.pack


class Fsync(enum.StrEnum):
    """When the writer calls ``os.fsync``.

    Attributes:
        NEVER: never; the OS writes back when it likes.
        BLOCK: after every sealed block (safest, slowest).
        CLOSE: when a file is closed (on rotation and on :meth:`LogWriter.close`).
    """

    NEVER = "never"
    BLOCK = "block"
    CLOSE = "close"


@attrs.define
class WriteStats:
    """Counters of a :class:`LogWriter` (all files together).

    Attributes:
        records: records written (sealed or still buffered).
        blocks: blocks sealed and written.
        raw_bytes: uncompressed payload bytes of the sealed blocks.
        stored_bytes: bytes written to disk, headers included.
        files: files opened.
    """

    records: int = 0
    blocks: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    files: int = 0


def rotated_name(prefix: str, seq: int) -> str:
    """The file name of the ``seq``-th file of a rotated set.

    Args:
        prefix: the set's prefix (e.g. the venue id).
        seq: sequence number, from 1.

    Returns:
        ``f"{prefix}-{seq:06d}.wslog"``.
    """
    return f"{prefix}-{seq:06d}{LOG_SUFFIX}"


def _write_all(fh: IO[bytes], data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        n = fh.write(view)
        if n is None:  # pragma: no cover - only for non-blocking files
            raise OSError("write would block")
        view = view[n:]


class LogWriter:
    """Append raw frames to an LZ4-compressed, optionally rotated message log.

    Args:
        path_or_dir: a file path (one file, no rotation) or a directory. With
            rotation, or when the path is an existing directory, files are
            named ``<prefix>-<seq>.wslog`` inside it (the directory is created
            if needed; numbering continues after existing files).
        header: the header written at the start of every file. A
            ``created_ns`` of 0 is filled in with the first record's time
            (the clock for the very first file).
        rotate_bytes: start a new file once the current one holds at least
            this many bytes (checked after each block).
        rotate_seconds: start a new file when a record's ``recv_ns`` reaches
            the end of the current file's time window.
        rotate_aligned: align time windows to multiples of ``rotate_seconds``
            since the epoch (hourly files start on the hour).
        prefix: file-name prefix for directory mode (default: the venue id,
            or ``"wsmux"``).
        block_size: seal a block when its buffered frame bytes reach this.
        flush_records: also seal after this many records (bounds the loss on
            a crash in records rather than bytes).
        flush_interval_ns: also seal when a record arrives this long (by
            ``recv_ns``) after the block's first record; call :meth:`poll`
            periodically to seal a quiet feed's block on time.
        fsync: when to ``fsync`` (see :class:`Fsync`).
        compress: compress blocks with LZ4 (a block that does not shrink is
            stored raw either way).
        clock: returns Unix ns; read only where no time is given.
        overwrite: allow replacing an existing file in single-file mode.

    Raises:
        ConfigError: invalid arguments or an existing target file.
        LogError: the file could not be created.

    Attributes:
        paths: every file opened so far, in order.
        stats: counters (:class:`WriteStats`).
    """

    def __init__(
        self,
        path_or_dir: str | os.PathLike[str],
        header: LogHeader,
        *,
        rotate_bytes: int | None = None,
        rotate_seconds: float | None = None,
        rotate_aligned: bool = True,
        prefix: str | None = None,
        block_size: int = 64 * 1024,
        flush_records: int | None = None,
        flush_interval_ns: int | None = None,
        fsync: Fsync | str = Fsync.CLOSE,
        compress: bool = True,
        clock: Callable[[], int] = time.time_ns,
        overwrite: bool = False,
    ) -> None:
        if rotate_bytes is not None and rotate_bytes <= 0:
            raise ConfigError("rotate_bytes must be positive")
        if rotate_seconds is not None and rotate_seconds <= 0:
            raise ConfigError("rotate_seconds must be positive")
        if block_size <= 0:
            raise ConfigError("block_size must be positive")
        if flush_records is not None and flush_records <= 0:
            raise ConfigError("flush_records must be positive")
        if flush_interval_ns is not None and flush_interval_ns <= 0:
            raise ConfigError("flush_interval_ns must be positive")
        try:
            self._fsync = Fsync(fsync)
        except ValueError as exc:
            raise ConfigError(f"unknown fsync policy {fsync!r}") from exc
        if not isinstance(header, LogHeader):
            raise ConfigError("header must be a LogHeader")

        self._header = attrs.evolve(header, version=FORMAT_VERSION)
        self._clock = clock
        self._rotate_bytes = rotate_bytes if rotate_bytes is not None else _NO_LIMIT
        self._rotate_ns = round(rotate_seconds * 1e9) if rotate_seconds is not None else None
        self._rotate_aligned = rotate_aligned
        self._block_size = block_size
        self._max_records = flush_records if flush_records is not None else _NO_LIMIT
        self._flush_ns = flush_interval_ns
        self._compress = compress
        self._overwrite = overwrite

        self.paths: list[Path] = []
        self.stats = WriteStats()

        # block buffer
        self._heads = bytearray()
        self._body = bytearray()
        self._n = 0
        self._min_ns = _MAX_NS
        self._max_ns = _MIN_NS
        # deadlines, all in recv_ns terms
        self._window_end: int | None = None  # end of the current file's time window
        self._block_due: int | None = None  # recv_ns at which the block must be sealed
        self._deadline_ns = _MIN_NS  # min of the above; _MIN_NS means "recompute"

        self._fh: IO[bytes] | None = None
        self._file_bytes = 0
        self._closed = False

        target = Path(path_or_dir)
        rotating = rotate_bytes is not None or rotate_seconds is not None
        if rotating or target.is_dir():
            if target.suffix == LOG_SUFFIX and not target.is_dir():
                raise ConfigError(f"rotation writes several files: {target} must be a directory")
            try:
                target.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LogError(f"cannot create log directory {target}: {exc}") from exc
            self._dir: Path | None = target
            self._prefix = prefix or self._header.venue or "wsmux"
            if "/" in self._prefix or os.sep in self._prefix:
                raise ConfigError(f"bad file prefix {self._prefix!r}")
            self._seq = self._last_seq(target, self._prefix)
            self._single: Path | None = None
        else:
            self._dir = None
            self._prefix = ""
            self._seq = 0
            self._single = target
        created = self._header.created_ns or clock()
        # later files take their creation time from the record that opens them
        self._header = attrs.evolve(self._header, created_ns=0)
        self._open_file(created)

    # -- public API ----------------------------------------------------------

    @property
    def header(self) -> LogHeader:
        """The header used for files opened from now on."""
        return self._header

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def current_path(self) -> Path | None:
        """The file currently open for appending (``None`` between files)."""
        return self.paths[-1] if self._fh is not None else None

    def write(
        self,
        kind: Direction | int,
        recv_ns: int,
        conn_id: int,
        data: bytes | bytearray | memoryview | str,
        url: str | None = None,
    ) -> None:
        """Append one record. The hot path: a few µs, no I/O unless a block fills.

        Args:
            kind: the record's :class:`Direction`.
            recv_ns: receive (or send) time, Unix ns.
            conn_id: connection id, 0 ≤ id < 2**32.
            data: the frame as received; ``str`` for text frames.
            url: optional URL (REST request, OPEN endpoint), < 64 KiB UTF-8.

        Raises:
            ClosedError: the writer is closed.
            ConfigError: out-of-range kind, conn_id, time or URL.
            LogError: writing the file failed.
        """
        if self._closed:
            raise ClosedError("log writer is closed")
        if kind not in _KINDS:
            raise ConfigError(f"unknown record kind {kind!r}")
        if recv_ns >= self._deadline_ns:
            self._on_deadline(recv_ns)
        flags = kind
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
            flags = kind | FLAG_TEXT
        try:
            if url is None:
                self._heads += _pack_head(flags, recv_ns, conn_id, len(data), 0)
                self._body += data
            else:
                url_b = url.encode("utf-8", "surrogatepass")
                self._heads += _pack_head(flags | FLAG_URL, recv_ns, conn_id, len(data), len(url_b))
                self._body += data
                self._body += url_b
        except Exception as exc:  # struct.error, TypeError: bad caller values
            self._undo_partial()
            raise ConfigError(f"cannot log record: {exc}") from exc
        self._n += 1
        if recv_ns < self._min_ns:  # noqa: PLR1730 - a compare is cheaper than min()
            self._min_ns = recv_ns
        if recv_ns > self._max_ns:  # noqa: PLR1730
            self._max_ns = recv_ns
        if len(self._body) >= self._block_size or self._n >= self._max_records:
            self._seal()

    def write_record(self, record: Record) -> None:
        """Append a :class:`Record` (convenience around :meth:`write`)."""
        self.write(record.kind, record.recv_ns, record.conn_id, record.data, record.url)

    def flush(self) -> None:
        """Seal and write the buffered block now (fsync per policy ``block``).

        Raises:
            LogError: writing failed.
        """
        if self._closed:
            return
        if self._n:
            self._seal()

    def poll(self, now_ns: int | None = None) -> None:
        """Apply time-based sealing and rotation without writing a record.

        Call it from a timer so a quiet feed still gets its block sealed
        after ``flush_interval_ns`` and its file closed at the end of its
        time window.

        Args:
            now_ns: the current time; the clock is read when omitted.
        """
        if self._closed:
            return
        now = self._clock() if now_ns is None else now_ns
        if self._n and self._block_due is not None and now >= self._block_due:
            self._seal()
        if self._fh is not None and self._window_end is not None and now >= self._window_end:
            if self._n:
                self._seal()
            self._close_file()
            self._window_end = None
        self._recompute_deadline()

    def rotate(self, header: LogHeader | None = None) -> None:
        """Close the current file; the next record opens a new one.

        Args:
            header: a new header for the following files (e.g. after the
                subscriptions changed); its ``created_ns`` is ignored (the
                next file takes the time of its first record).

        Raises:
            ClosedError: the writer is closed.
            ConfigError: single-file mode (no directory to rotate in).
        """
        if self._closed:
            raise ClosedError("log writer is closed")
        if self._dir is None:
            raise ConfigError("rotate() needs a writer opened on a directory")
        if header is not None:
            self._header = attrs.evolve(header, version=FORMAT_VERSION, created_ns=0)
        if self._n:
            self._seal()
        self._close_file()
        self._window_end = None
        self._recompute_deadline()

    def close(self) -> None:
        """Seal the last block, fsync (policy ``close``/``block``) and close.

        Idempotent.
        """
        if self._closed:
            return
        try:
            if self._n:
                self._seal()
        finally:
            self._closed = True
            self._close_file()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------

    @staticmethod
    def _last_seq(directory: Path, prefix: str) -> int:
        last = 0
        for entry in directory.iterdir():
            m = _NAME_RE.match(entry.name)
            if m and m["prefix"] == prefix:
                last = max(last, int(m["seq"]))
        return last

    def _undo_partial(self) -> None:
        """Drop a half-appended record (heads/body must stay in step)."""
        heads_len = self._n * RECORD_HEAD.size
        del self._heads[heads_len:]
        total = 0
        for head in RECORD_HEAD.iter_unpack(self._heads):
            total += head[3] + head[4]
        del self._body[total:]

    def _on_deadline(self, recv_ns: int) -> None:
        """Slow path: a record reached a time deadline (or one must be armed)."""
        if type(recv_ns) is not int:
            raise ConfigError(f"recv_ns must be an int of Unix nanoseconds, not {recv_ns!r}")
        if self._n and self._block_due is not None and recv_ns >= self._block_due and self._flush_ns is not None:
            self._seal()  # may close the file (size rotation)
        if self._fh is not None and self._window_end is not None and recv_ns >= self._window_end:
            if self._n:
                self._seal()
            self._close_file()
        if self._fh is None:
            self._open_file(recv_ns)
            self._window_end = None
        if self._rotate_ns is not None and self._window_end is None:
            self._window_end = self._window_after(recv_ns)
        if self._flush_ns is not None and self._n == 0:
            self._block_due = recv_ns + self._flush_ns
        self._recompute_deadline()

    def _window_after(self, start_ns: int) -> int:
        period = self._rotate_ns
        assert period is not None
        if self._rotate_aligned:
            return (start_ns // period + 1) * period
        return start_ns + period

    def _recompute_deadline(self) -> None:
        """Set the single ``recv_ns`` threshold the hot path compares against.

        ``_MIN_NS`` sends the next record down the slow path, which arms
        whatever is missing (a file, its time window, the block's flush time).
        """
        if (
            self._fh is None
            or (self._rotate_ns is not None and self._window_end is None)
            or (self._flush_ns is not None and (self._n == 0 or self._block_due is None))
        ):
            self._deadline_ns = _MIN_NS
            return
        deadline = _MAX_NS
        if self._window_end is not None:
            deadline = self._window_end
        if self._block_due is not None:
            deadline = min(deadline, self._block_due)
        self._deadline_ns = deadline

    def _open_file(self, created_ns: int) -> None:
        if self._dir is not None:
            self._seq += 1
            path = self._dir / rotated_name(self._prefix, self._seq)
            mode = "xb"
        else:
            assert self._single is not None
            path = self._single
            mode = "wb" if self._overwrite else "xb"
            if self.paths:  # pragma: no cover - single-file mode never reopens
                raise LogError("single-file log cannot be reopened")
        header = attrs.evolve(self._header, created_ns=created_ns)
        try:
            fh = open(path, mode, buffering=0)  # noqa: SIM115 - closed in _close_file
        except FileExistsError as exc:
            raise ConfigError(f"log file {path} already exists") from exc
        except OSError as exc:
            raise LogError(f"cannot create log file {path}: {exc}") from exc
        self._fh = fh
        self.paths.append(path)
        self.stats.files += 1
        data = encode_header(header)
        self._file_bytes = 0
        self._write_out(data)
        if self._fsync is Fsync.BLOCK:
            self._sync(dir_too=True)

    def _seal(self) -> None:
        """Compress the buffered records into one block and write it."""
        n = self._n
        raw = bytes(self._heads) + self._body
        raw_len = len(raw)
        codec = CODEC_RAW
        payload: bytes = raw
        if self._compress:
            packed = lz4.block.compress(raw, store_size=False)
            if len(packed) < raw_len:
                payload = packed
                codec = CODEC_LZ4
        head = BLOCK_HEAD.pack(
            BLOCK_MAGIC,
            codec,
            0,
            0,
            n,
            raw_len,
            len(payload),
            self._min_ns,
            self._max_ns,
            zlib.crc32(payload),
            0,
        )
        head = head[:-4] + (zlib.crc32(head[:-4])).to_bytes(4, "little")
        # reset the buffer before I/O so a failed write does not duplicate data
        self._heads = bytearray()
        self._body = bytearray()
        self._n = 0
        self._min_ns = _MAX_NS
        self._max_ns = _MIN_NS
        self._block_due = None
        assert self._fh is not None  # records are only buffered while a file is open
        self._write_out(head + payload)
        self.stats.records += n
        self.stats.blocks += 1
        self.stats.raw_bytes += raw_len
        if self._fsync is Fsync.BLOCK:
            self._sync()
        if self._file_bytes >= self._rotate_bytes and self._dir is not None:
            self._close_file()
            self._window_end = None
        self._recompute_deadline()

    def _write_out(self, data: bytes | bytearray) -> None:
        fh = self._fh
        assert fh is not None
        try:
            _write_all(fh, data)
        except OSError as exc:
            raise LogError(f"cannot write log file {self.paths[-1]}: {exc}") from exc
        self._file_bytes += len(data)
        self.stats.stored_bytes += len(data)

    def _sync(self, dir_too: bool = False) -> None:
        fh = self._fh
        assert fh is not None
        try:
            os.fsync(fh.fileno())
        except OSError as exc:
            raise LogError(f"cannot fsync log file {self.paths[-1]}: {exc}") from exc
        if dir_too:
            self._sync_dir()

    def _sync_dir(self) -> None:
        directory = self.paths[-1].parent
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms without directory fds
            return
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover
            pass
        finally:
            os.close(fd)

    def _close_file(self) -> None:
        fh = self._fh
        if fh is None:
            return
        self._fh = None
        try:
            if self._fsync is not Fsync.NEVER:
                os.fsync(fh.fileno())
                self._sync_dir()
        except OSError as exc:
            raise LogError(f"cannot fsync log file {self.paths[-1]}: {exc}") from exc
        finally:
            fh.close()
