"""The wsmux message log: raw frames on disk, LZ4-compressed, append-only.

Every frame a connection receives or sends, every REST snapshot body and
every connection open/close can be appended to a log with its local receive
time (Unix ns) and connection id. Files start with a :class:`LogHeader`
(venue, endpoint, subscriptions, free JSON metadata) and hold CRC-checked
LZ4 blocks, so a crash or a torn write loses at most the last block and a
damaged block is skipped and counted, never fatal.

Writing::

    header = LogHeader(venue="binance", endpoint=url, subscriptions=["book:BTC-USDT"])
    with LogWriter("logs/", header, rotate_seconds=3600) as log:
        log.write(Direction.IN, recv_ns, conn_id, frame)

Reading::

    reader = read_log("logs/")          # a rotated set, in order
    for record in reader:
        ...
    reader.stats.corrupt_blocks

``open_recorder`` gives the live connections a ``record(direction, conn_id,
recv_ns, data, url)`` callback writing an hourly-rotated set per venue.
``merge_logs`` interleaves several logs by receive time, ``log_info``
summarises them and ``import_text_recording`` / ``convert_text_recording``
read the line-oriented text recordings found in ``sample_data`` folders;
``detect_capture`` tells which venue, protocol version and subscriptions such
a capture holds (what :class:`Replay` uses so that captures need no flags).
The file layout is documented in :mod:`wsmux.log._format`.
"""

from __future__ import annotations

from wsmux.log._detect import Capture, capture_info, detect_capture
from wsmux.log._format import FORMAT_VERSION, Direction, LogHeader, Record
from wsmux.log._reader import (
    Frame,
    LogInfo,
    LogIssue,
    LogReader,
    MergedLog,
    ReadStats,
    expand_log_paths,
    log_info,
    merge_logs,
    read_log,
)
from wsmux.log._recorder import Recorder, open_recorder
from wsmux.log._replay import Replay, ReplaySummary
from wsmux.log._text import (
    convert_text_recording,
    import_text_recording,
    seconds_text_to_ns,
    text_recording_conn_id,
    text_recording_header,
)
from wsmux.log._writer import LOG_SUFFIX, Fsync, LogWriter, WriteStats, rotated_name

__all__ = [
    "FORMAT_VERSION",
    "Capture",
    "LOG_SUFFIX",
    "Direction",
    "Frame",
    "Fsync",
    "LogHeader",
    "LogInfo",
    "LogIssue",
    "LogReader",
    "LogWriter",
    "MergedLog",
    "ReadStats",
    "Record",
    "Replay",
    "ReplaySummary",
    "Recorder",
    "WriteStats",
    "convert_text_recording",
    "capture_info",
    "detect_capture",
    "expand_log_paths",
    "import_text_recording",
    "log_info",
    "merge_logs",
    "open_recorder",
    "read_log",
    "rotated_name",
    "seconds_text_to_ns",
    "text_recording_conn_id",
    "text_recording_header",
]
