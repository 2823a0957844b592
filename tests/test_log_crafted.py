"""Crafted block heads with *valid* CRCs: every field of the block framing is
checked against sane bounds, and a lying block is skipped and counted, never
fatal (the reader must not allocate what a head claims before checking it)."""

from __future__ import annotations

import zlib
from pathlib import Path

import lz4.block
import pytest
from clirun import run_wsmux
from test_log import T0, depth_frame, header

from wsmux.log import Direction, LogWriter, Record, log_info, read_log
from wsmux.log._format import BLOCK_HEAD, CODEC_LZ4, CODEC_RAW, RECORD_HEAD
from wsmux.log._reader import MAX_BLOCK_BYTES

FIELDS = ("magic", "codec", "r1", "r2", "n", "raw_len", "stored_len", "min_ns", "max_ns", "pcrc", "hcrc")


def _write(path: Path, blocks: int = 3, *, compress: bool = True) -> tuple[list[list[Record]], list[int]]:
    groups: list[list[Record]] = []
    ends: list[int] = []
    with LogWriter(path, header(), clock=lambda: T0, compress=compress) as w:
        ends.append(path.stat().st_size)
        for b in range(blocks):
            group = [Record(Direction.IN, T0 + b * 1000 + i, 1, depth_frame(b * 1000 + i)) for i in range(20)]
            for r in group:
                w.write_record(r)
            w.flush()
            groups.append(group)
            ends.append(path.stat().st_size)
    return groups, ends


def _rewrite_head(data: bytearray, at: int, *, payload: bytes | None = None, **changes: int) -> bytearray:
    """Change fields of the block head at ``at`` and recompute its CRCs
    (the payload CRC too when a new payload is given)."""
    fields = dict(zip(FIELDS, BLOCK_HEAD.unpack_from(data, at), strict=True))
    old_stored = fields["stored_len"]
    body = bytes(data[at + BLOCK_HEAD.size : at + BLOCK_HEAD.size + old_stored])
    if payload is not None:
        body = payload
        fields["stored_len"] = len(payload)
        fields["pcrc"] = zlib.crc32(payload)
    fields.update(changes)
    head = bytearray(BLOCK_HEAD.pack(*fields.values()))
    head[-4:] = zlib.crc32(bytes(head[:-4])).to_bytes(4, "little")
    return data[:at] + head + body + data[at + BLOCK_HEAD.size + old_stored :]


def _read_all(path: Path) -> tuple[list[Record], int, int]:
    reader = read_log(path)
    got = list(reader)
    return got, reader.stats.corrupt_blocks, reader.stats.truncated_bytes


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("codec", 7),
        ("raw_len", 0xFFFFFFF0),  # the OverflowError from lz4 in issue 10.12
        ("raw_len", MAX_BLOCK_BYTES + 1),
        ("raw_len", 0),
        ("raw_len", 1),
        ("n", 0xFFFFFFFF),
        ("n", 0),
        ("n", 1),
        ("min_ns", T0 + 5_000_000),  # inverted range
        ("max_ns", T0 + 1000),  # records outside the declared range
        ("min_ns", T0 + 1500),
    ],
)
def test_crafted_head_field_with_valid_crc_skips_only_that_block(tmp_path: Path, field: str, value: int) -> None:
    path = tmp_path / "crafted.wslog"
    groups, ends = _write(path)
    data = _rewrite_head(bytearray(path.read_bytes()), ends[1], **{field: value})
    path.write_bytes(bytes(data))
    got, corrupt, truncated = _read_all(path)
    assert got == groups[0] + groups[2]
    assert corrupt == 1
    assert truncated == 0


def test_reserved_fields_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "reserved.wslog"
    groups, ends = _write(path)
    data = _rewrite_head(bytearray(path.read_bytes()), ends[1], r1=3, r2=0xBEEF)
    path.write_bytes(bytes(data))
    got, corrupt, _ = _read_all(path)
    assert got == [r for g in groups for r in g]
    assert corrupt == 0


def test_stored_len_past_the_end_with_good_blocks_after_is_corrupt_not_torn(tmp_path: Path) -> None:
    path = tmp_path / "stored.wslog"
    groups, ends = _write(path)
    data = bytearray(path.read_bytes())
    fields = dict(zip(FIELDS, BLOCK_HEAD.unpack_from(data, ends[1]), strict=True))
    fields["stored_len"] = 0xFFFFFFF0
    head = bytearray(BLOCK_HEAD.pack(*fields.values()))
    head[-4:] = zlib.crc32(bytes(head[:-4])).to_bytes(4, "little")
    data[ends[1] : ends[1] + BLOCK_HEAD.size] = head
    path.write_bytes(bytes(data))
    got, corrupt, truncated = _read_all(path)
    assert got == groups[0] + groups[2]
    assert corrupt == 1
    assert truncated == 0


def test_stored_len_too_short_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "short.wslog"
    groups, ends = _write(path)
    data = bytearray(path.read_bytes())
    fields = dict(zip(FIELDS, BLOCK_HEAD.unpack_from(data, ends[1]), strict=True))
    payload = bytes(data[ends[1] + BLOCK_HEAD.size : ends[2]])[:-10]
    data = _rewrite_head(data, ends[1], payload=payload)
    path.write_bytes(bytes(data))
    assert fields["stored_len"] == len(payload) + 10
    got, corrupt, _ = _read_all(path)
    assert got == groups[0] + groups[2]
    assert corrupt == 1


def test_raw_codec_with_sizes_that_disagree_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "raw.wslog"
    groups, ends = _write(path, compress=False)
    data = bytearray(path.read_bytes())
    fields = dict(zip(FIELDS, BLOCK_HEAD.unpack_from(data, ends[1]), strict=True))
    assert fields["codec"] == CODEC_RAW
    data = _rewrite_head(data, ends[1], raw_len=fields["raw_len"] * 100)
    path.write_bytes(bytes(data))
    got, corrupt, _ = _read_all(path)
    assert got == groups[0] + groups[2]
    assert corrupt == 1


def _raw_block(records: list[tuple[int, int, int, int, int]], tail: bytes) -> bytes:
    return b"".join(RECORD_HEAD.pack(*r) for r in records) + tail


@pytest.mark.parametrize(
    ("records", "tail"),
    [
        ([(0x0F, T0 + 1000, 1, 2, 0)], b"{}"),  # unknown record kind
        ([(0x10, T0 + 1000, 1, 5000, 0)], b"{}"),  # data length past the payload
        ([(0x10, T0 + 1000, 1, 2, 7)], b"{}abcdefg"),  # URL bytes without the URL flag
        ([(0x30, T0 + 1000, 1, 2, 0xFFFF)], b"{}"),  # URL length past the payload
        ([(0x10, T0 + 1000, 1, 2, 0)], b"{}extra"),  # lengths do not add up
        ([(0x10, T0 + 1000, 1, 2, 0)], b"\xff\xfe"),  # text that is not UTF-8
    ],
)
def test_crafted_record_framing_skips_only_that_block(
    tmp_path: Path, records: list[tuple[int, int, int, int, int]], tail: bytes
) -> None:
    path = tmp_path / "records.wslog"
    groups, ends = _write(path)
    raw = _raw_block(records, tail)
    packed = lz4.block.compress(raw, store_size=False)
    data = _rewrite_head(
        bytearray(path.read_bytes()),
        ends[1],
        payload=packed,
        codec=CODEC_LZ4,
        n=len(records),
        raw_len=len(raw),
        min_ns=T0 + 1000,
        max_ns=T0 + 1000,
    )
    path.write_bytes(bytes(data))
    got, corrupt, _ = _read_all(path)
    assert got == groups[0] + groups[2]
    assert corrupt == 1


def test_crafted_block_is_fatal_to_neither_log_info_nor_replay(tmp_path: Path) -> None:
    path = tmp_path / "crafted.wslog"
    groups, ends = _write(path)
    data = _rewrite_head(bytearray(path.read_bytes()), ends[1], raw_len=0xFFFFFFF0)
    path.write_bytes(bytes(data))
    info = log_info(path)
    assert info.records == len(groups[0]) + len(groups[2])
    assert info.stats.corrupt_blocks == 1
    for command in (["log", "info"], ["replay"]):
        proc = run_wsmux(*command, str(path))
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    assert "1 corrupt block" in run_wsmux("log", "info", str(path)).stdout
