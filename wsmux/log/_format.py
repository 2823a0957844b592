"""The on-disk layout of a wsmux message log (format version 1).

Theory of operation
-------------------
A log file is append-only and made of a *file header* followed by any number
of independent, self-checking *blocks*::

    file   := prefix header_json block*
    prefix := MAGIC(8) version(u16) flags(u16) header_len(u32) header_crc(u32)
    block  := block_head(44) payload(stored_len)

All integers are little-endian. ``header_json`` is the UTF-8 JSON of a
:class:`LogHeader` and ``header_crc`` its CRC-32.

``block_head`` is::

    BLOCK_MAGIC(4) codec(u8) reserved(u8) reserved(u16)
    n_records(u32) raw_len(u32) stored_len(u32)
    min_ns(i64) max_ns(i64) payload_crc(u32) head_crc(u32)

``head_crc`` is the CRC-32 of the 40 bytes before it, so a damaged length is
detected before it is trusted; ``payload_crc`` covers the stored (compressed)
payload. ``codec`` is :data:`CODEC_RAW` or :data:`CODEC_LZ4` (``lz4.block``
without a size prefix; ``raw_len`` gives the size). ``min_ns``/``max_ns`` bound
the receive times inside, so a reader can skip blocks by time without
decompressing them.

The decompressed payload is columnar: ``n_records`` fixed-size record heads
(:data:`RECORD_HEAD`, 19 bytes each: flags u8, recv_ns i64, conn_id u32,
data_len u32, url_len u16), then every record's data and URL bytes
concatenated in record order (data first, then URL). Flags hold the
:class:`Direction` in the low nibble, :data:`FLAG_TEXT` when the frame was a
text frame (stored as UTF-8, read back as ``str``) and :data:`FLAG_URL` when
the record has a URL (which may be empty). Text and URLs are encoded with
``surrogatepass`` so any ``str`` round-trips.

Rules the reader enforces:

* a bad file magic, an unknown version or a damaged header → :class:`LogError`;
* a block whose head or payload CRC fails → skipped and counted, reading
  resumes at the next block (found by its length, or by scanning for
  :data:`BLOCK_MAGIC` when the head itself is damaged);
* a block cut short by the end of the file (a torn write) → counted as
  truncated bytes, never an exception; every earlier block is still read.
"""

from __future__ import annotations

import enum
import mmap
import struct
import types
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
import orjson

from wsmux.errors import ConfigError, LogError

__all__ = [
    "BLOCK_HEAD",
    "BLOCK_MAGIC",
    "CODEC_LZ4",
    "CODEC_RAW",
    "FILE_MAGIC",
    "FILE_PREFIX",
    "FLAG_TEXT",
    "FLAG_URL",
    "FORMAT_VERSION",
    "KIND_MASK",
    "MAX_URL_BYTES",
    "RECORD_HEAD",
    "Direction",
    "LogHeader",
    "Record",
    "decode_header",
    "encode_header",
]

FORMAT_VERSION: Final = 1
"""The format version this code writes and reads."""

FILE_MAGIC: Final = b"WSMUXLOG"
FILE_PREFIX: Final = struct.Struct("<8sHHII")
"""magic, version, flags, header_len, header_crc."""

BLOCK_MAGIC: Final = b"\xb7WSB"
BLOCK_HEAD: Final = struct.Struct("<4sBBHIIIqqII")
"""magic, codec, reserved, reserved, n_records, raw_len, stored_len,
min_ns, max_ns, payload_crc, head_crc (44 bytes)."""

CODEC_RAW: Final = 0
CODEC_LZ4: Final = 1

RECORD_HEAD: Final = struct.Struct("<BqIIH")
"""flags, recv_ns, conn_id, data_len, url_len (19 bytes)."""

KIND_MASK: Final = 0x0F
FLAG_TEXT: Final = 0x10
FLAG_URL: Final = 0x20
MAX_URL_BYTES: Final = 0xFFFF


class Direction(enum.IntEnum):
    """What a log record is.

    Attributes:
        IN: a frame received from the venue.
        OUT: a frame we sent (subscribe, ping, ...).
        REST: the body of a REST response (e.g. a depth snapshot); the
            record's ``url`` is the request URL.
        OPEN: a connection was opened; ``url`` is the endpoint, ``data`` is
            free (empty, or e.g. a JSON description of the connection).
        CLOSE: a connection was closed; ``data`` is free (e.g. the reason).
    """

    IN = 0
    OUT = 1
    REST = 2
    OPEN = 3
    CLOSE = 4


@attrs.frozen(slots=True)
class Record:
    """One logged frame.

    Attributes:
        kind: direction / kind of the record.
        recv_ns: local receive (or send) time, Unix nanoseconds.
        conn_id: the connection the frame belongs to.
        data: the frame exactly as received: ``bytes`` for a binary frame,
            ``str`` for a text frame.
        url: the URL for REST and OPEN records, otherwise usually ``None``.
    """

    kind: Direction
    recv_ns: int
    conn_id: int
    data: bytes | str
    url: str | None = None


def _freeze_subscriptions(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError("subscriptions must be a sequence of strings, not a string")
    subs = tuple(value)
    for sub in subs:
        if not isinstance(sub, str):
            raise ConfigError(f"subscription {sub!r} is not a string")
    return subs


def _freeze_meta(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """Copy ``value`` through JSON (validates it) into a read-only mapping."""
    try:
        copied = orjson.loads(orjson.dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"log header meta must be JSON-serialisable: {exc}") from exc
    return types.MappingProxyType(copied)


@attrs.frozen(kw_only=True)
class LogHeader:
    """The header written at the start of every log file.

    A plain value: ``cattrs.Converter().unstructure(header)`` gives a dict and
    ``structure`` rebuilds an equal header.

    Attributes:
        venue: venue id (e.g. ``"binance"``); empty when a log mixes venues.
        endpoint: the WebSocket endpoint URL (empty when unknown or mixed).
        subscriptions: the subscriptions the session asked for.
        created_ns: creation time of the file in Unix ns. ``0`` in a header
            handed to :class:`~wsmux.log.LogWriter` means "fill it in"; every
            header read from a file has it set.
        meta: free JSON metadata, stored as a read-only mapping (nested
            values must be treated as read-only too). Not part of the hash.
        version: the format version (:data:`FORMAT_VERSION`).
    """

    venue: str
    endpoint: str = ""
    subscriptions: tuple[str, ...] = attrs.field(default=(), converter=_freeze_subscriptions)
    created_ns: int = 0
    meta: Mapping[str, Any] = attrs.field(
        factory=lambda: types.MappingProxyType({}), converter=_freeze_meta, hash=False
    )
    version: int = FORMAT_VERSION


def encode_header(header: LogHeader) -> bytes:
    """Serialise ``header`` as the prefix plus JSON that opens a log file.

    Args:
        header: the header; its ``version`` is written as is.

    Returns:
        The bytes to write at offset 0 of a new file.
    """
    body = orjson.dumps(
        {
            "version": header.version,
            "venue": header.venue,
            "endpoint": header.endpoint,
            "subscriptions": list(header.subscriptions),
            "created_ns": header.created_ns,
            "meta": dict(header.meta),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return FILE_PREFIX.pack(FILE_MAGIC, header.version, 0, len(body), zlib.crc32(body)) + body


def decode_header(data: bytes | mmap.mmap, where: str = "log") -> tuple[LogHeader, int] | None:
    """Parse the file header at the start of ``data``.

    Args:
        data: the first bytes of a file (at least the whole header for a
            result; fewer bytes that are a valid start give ``None``).
        where: a name for error messages (the file path).

    Returns:
        ``(header, offset of the first block)``, or ``None`` when ``data`` is
        a truncated but so-far valid header (a torn file).

    Raises:
        LogError: bad magic, unsupported version or damaged header.
    """
    n = len(data)
    if n < FILE_PREFIX.size:
        if FILE_MAGIC.startswith(data[:8]):
            return None
        raise LogError(f"{where}: not a wsmux log (bad magic)")
    magic, version, _flags, length, crc = FILE_PREFIX.unpack_from(data)
    if magic != FILE_MAGIC:
        raise LogError(f"{where}: not a wsmux log (bad magic)")
    if version != FORMAT_VERSION:
        raise LogError(f"{where}: unsupported log format version {version}")
    end = FILE_PREFIX.size + length
    if n < end:
        return None
    body = bytes(data[FILE_PREFIX.size : end])
    if zlib.crc32(body) != crc:
        raise LogError(f"{where}: log header is damaged (CRC mismatch)")
    try:
        obj = orjson.loads(body)
        header = LogHeader(
            venue=str(obj["venue"]),
            endpoint=str(obj.get("endpoint", "")),
            subscriptions=[str(s) for s in obj.get("subscriptions", ())],
            created_ns=int(obj.get("created_ns", 0)),
            meta=obj.get("meta") or {},
            version=int(obj.get("version", version)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LogError(f"{where}: log header is not valid: {exc}") from exc
    return header, end
