"""A small adapter between the live connections and :class:`LogWriter`.

The connection layer reports each frame as ``(direction, conn_id, recv_ns,
data, url)`` with ``direction`` one of ``"in"``, ``"out"``, ``"rest"``,
``"open"``, ``"close"``; :class:`Recorder` turns that into
:meth:`LogWriter.write` calls. :func:`open_recorder` opens an hourly-rotated
log set for one venue in a directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

from wsmux.errors import ConfigError
from wsmux.log._format import Direction, LogHeader
from wsmux.log._writer import LogWriter

__all__ = ["Recorder", "open_recorder"]

_KIND_BY_NAME: Final[dict[str | int, Direction]] = {
    **{d.name.lower(): d for d in Direction},
    **{int(d): d for d in Direction},
}


class Recorder:
    """Record frames reported as ``(direction, conn_id, recv_ns, data, url)``.

    Args:
        writer: the log writer to append to (owned: :meth:`close` closes it).

    Attributes:
        writer: the underlying :class:`LogWriter`.
    """

    __slots__ = ("_write", "writer")

    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer
        self._write = writer.write

    def record(
        self,
        direction: str | Direction,
        conn_id: int,
        recv_ns: int,
        data: bytes | bytearray | memoryview | str,
        url: str | None = None,
    ) -> None:
        """Append one frame.

        Args:
            direction: ``"in"``, ``"out"``, ``"rest"``, ``"open"``, ``"close"``
                or a :class:`Direction`.
            conn_id: the connection id.
            recv_ns: receive (or send) time, Unix ns.
            data: the frame as received.
            url: the URL (REST request, endpoint on open).

        Raises:
            ConfigError: unknown direction or out-of-range values.
            ClosedError: the recorder is closed.
        """
        kind = _KIND_BY_NAME.get(direction)
        if kind is None:
            raise ConfigError(f"unknown log direction {direction!r}")
        self._write(kind, recv_ns, conn_id, data, url)

    def flush(self) -> None:
        """Seal the buffered block (see :meth:`LogWriter.flush`)."""
        self.writer.flush()

    def poll(self, now_ns: int | None = None) -> None:
        """Time-based sealing and rotation (see :meth:`LogWriter.poll`)."""
        self.writer.poll(now_ns)

    def close(self) -> None:
        """Close the writer (idempotent)."""
        self.writer.close()


def open_recorder(
    directory: str | os.PathLike[str],
    venue: str,
    endpoint: str = "",
    *,
    subscriptions: Iterable[str] = (),
    meta: Mapping[str, Any] | None = None,
    rotate_seconds: float | None = 3600,
    **writer_options: Any,
) -> Recorder:
    """Open a rotated log set ``<directory>/<venue>-NNNNNN.wslog`` for one venue.

    Args:
        directory: where the files go (created if needed).
        venue: venue id; also the file-name prefix.
        endpoint: the WebSocket endpoint, for the header.
        subscriptions: subscriptions, for the header.
        meta: free JSON metadata, for the header.
        rotate_seconds: time rotation (hourly by default; ``None`` to rotate
            only by ``rotate_bytes`` if given).
        **writer_options: more :class:`LogWriter` options (``rotate_bytes``,
            ``fsync``, ``clock``, ``flush_interval_ns``...).

    Returns:
        A :class:`Recorder` whose :meth:`Recorder.record` matches the
        connection's recorder callback.

    Raises:
        ConfigError: invalid options.
        LogError: the directory or file cannot be created.
    """
    header = LogHeader(venue=venue, endpoint=endpoint, subscriptions=subscriptions, meta=meta or {})
    writer_options.setdefault("prefix", venue or "wsmux")
    if rotate_seconds is None and writer_options.get("rotate_bytes") is None:
        os.makedirs(directory, exist_ok=True)  # directory mode without rotation
    writer = LogWriter(directory, header, rotate_seconds=rotate_seconds, **writer_options)
    return Recorder(writer)
