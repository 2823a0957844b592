"""Import every real text recording and round-trip it through the binary log.

The recordings live outside the repository (``../shared/recordings``); the
tests skip when they are absent.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from wsmux.log import (
    Direction,
    convert_text_recording,
    import_text_recording,
    log_info,
    read_log,
    text_recording_header,
)

RECORDINGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "recordings"
FILES = sorted(p for p in RECORDINGS.glob("*.0") if p.is_file()) if RECORDINGS.is_dir() else []

#: Records per kind in the known files (counted independently with grep-like rules).
KNOWN = {
    "BINANCE.http.0.0": {Direction.REST: 4},
    "BINANCE.ws.1.0": {Direction.OPEN: 1, Direction.IN: 265},
    "COINBASE.0": {Direction.REST: 1},
    "COINBASE.ws.28.0": {Direction.OPEN: 1, Direction.OUT: 3, Direction.IN: 9946},
    "KRAKEN.0": {Direction.REST: 1},
    "KRAKEN.ws.48.0": {Direction.OPEN: 1, Direction.OUT: 1, Direction.IN: 49},
    "KRAKEN.ws.49.0": {Direction.OPEN: 1, Direction.OUT: 1, Direction.IN: 60},
    "KRAKEN.ws.50.0": {Direction.OPEN: 1, Direction.OUT: 1, Direction.IN: 4321},
}

pytestmark = [
    pytest.mark.recordings,
    pytest.mark.skipif(not FILES, reason=f"recordings not found at {RECORDINGS}"),
]

_LINE_KINDS = [
    (re.compile(r"^\d+(\.\d+)?: "), Direction.IN),
    (re.compile(r"^\S+ <-> \d+(\.\d+)?$"), Direction.OPEN),
    (re.compile(r"^\S+ <- \d+(\.\d+)?: "), Direction.OUT),
    (re.compile(r"^\S+ -> \d+(\.\d+)?: "), Direction.REST),
]


def count_lines(path: Path) -> Counter[Direction]:
    counts: Counter[Direction] = Counter()
    with open(path, encoding="utf-8", newline="\n") as fh:
        for line in fh:
            for pattern, kind in _LINE_KINDS:
                if pattern.match(line):
                    counts[kind] += 1
                    break
    return counts


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_import_counts_match_lines(path: Path) -> None:
    records = list(import_text_recording(path))
    counts = Counter(r.kind for r in records)
    assert counts == count_lines(path)
    if path.name in KNOWN:
        assert dict(counts) == KNOWN[path.name]
    # times are plausible: 2021, and never go backwards within one connection
    times = [r.recv_ns for r in records]
    assert all(1_600_000_000 * 10**9 < t < 1_700_000_000 * 10**9 for t in times)
    assert times == sorted(times)
    for r in records:
        if r.kind in (Direction.IN, Direction.OUT, Direction.REST):
            assert isinstance(r.data, str)  # these venues send text frames only
            orjson.loads(r.data)  # every frame and body is one JSON document
        if r.kind in (Direction.OPEN, Direction.OUT):
            assert r.url is not None and r.url.startswith("wss://")
        if r.kind is Direction.REST:
            assert r.url is not None and r.url.startswith("https://")


@pytest.mark.parametrize("venue", ["BINANCE", "COINBASE", "KRAKEN"])
def test_convert_session_round_trip(tmp_path: Path, venue: str) -> None:
    session = [p for p in FILES if p.name.startswith(venue + ".")]
    if not session:
        pytest.skip(f"no {venue} recordings")
    out = tmp_path / f"{venue.lower()}.wslog"
    n = convert_text_recording(session, out, block_size=16 * 1024)
    expected = sorted((r for p in session for r in import_text_recording(p)), key=lambda r: r.recv_ns)
    assert n == len(expected)
    reader = read_log(out)
    assert list(reader) == expected
    assert reader.header == text_recording_header(session)
    assert reader.stats.corrupt_blocks == 0

    info = log_info(out)
    assert info.records == n
    assert info.venues == (venue.lower(),)
    assert info.first_ns == expected[0].recv_ns
    assert info.last_ns == max(r.recv_ns for r in expected)
    assert info.compression_ratio > 2.0  # JSON market data compresses well
