"""The binary message log: round trips, rotation, damage handling, info, merge."""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsmux.log
from wsmux.errors import ClosedError, ConfigError, LogError
from wsmux.log import (
    Direction,
    Fsync,
    LogHeader,
    LogReader,
    LogWriter,
    Record,
    log_info,
    merge_logs,
    read_log,
    rotated_name,
)
from wsmux.log._format import BLOCK_HEAD, FILE_PREFIX

HOUR_NS = 3600 * 10**9
T0 = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z, 22 minutes into an hour


def header(**kw: object) -> LogHeader:
    base: dict[str, object] = {
        "venue": "binance",
        "endpoint": "wss://stream.binance.com:9443/stream",
        "subscriptions": ["book:BTC-USDT", "trades:BTC-USDT"],
        "meta": {"host": "test", "nested": {"a": [1, 2.5, None, True]}},
    }
    base.update(kw)
    return LogHeader(**base)  # type: ignore[arg-type]


def depth_frame(i: int) -> str:
    return (
        f'{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":{1700000000000 + i},'
        f'"s":"BTCUSDT","U":{i},"u":{i},"b":[["43250.10","0.512"]],"a":[["43250.20","1.004"]]}}}}'
    )


def sample_records() -> list[Record]:
    return [
        Record(Direction.OPEN, T0, 1, "", "wss://stream.binance.com:9443/stream"),
        Record(Direction.OUT, T0 + 1, 1, '{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}'),
        Record(Direction.REST, T0 + 2, 2, '{"lastUpdateId":5,"bids":[],"asks":[]}', "https://x/depth?s=1"),
        Record(Direction.IN, T0 + 3, 1, depth_frame(0)),
        Record(Direction.IN, T0 + 4, 1, b"\x1f\x8b\x08\x00binary\xff\x00"),
        Record(Direction.IN, T0 + 5, 1, "unicodé ✓ 中文 \U0001f680"),
        Record(Direction.IN, T0 + 6, 1, ""),
        Record(Direction.IN, T0 + 7, 1, b""),
        Record(Direction.IN, T0 + 8, 3, "lone surrogate \ud800 kept"),
        Record(Direction.CLOSE, T0 + 9, 1, "1000 normal closure"),
    ]


def write_all(path: Path, records: list[Record], **kw: object) -> LogWriter:
    with LogWriter(path, header(), **kw) as w:  # type: ignore[arg-type]
        for r in records:
            w.write(r.kind, r.recv_ns, r.conn_id, r.data, r.url)
    return w


# --- round trips ----------------------------------------------------------------


def test_round_trip_exact_records_and_header(tmp_path: Path) -> None:
    path = tmp_path / "one.wslog"
    records = sample_records()
    w = write_all(path, records)
    assert w.paths == [path]
    assert w.stats.records == len(records)

    reader = read_log(path)
    assert reader.header == attrs_evolve_created(header(), reader.header.created_ns)
    got = list(reader)
    assert got == records
    assert [type(r.data) for r in got] == [type(r.data) for r in records]
    assert reader.stats.records == len(records)
    assert reader.stats.corrupt_blocks == 0
    assert reader.stats.truncated_bytes == 0


def attrs_evolve_created(h: LogHeader, created_ns: int) -> LogHeader:
    return attrs.evolve(h, created_ns=created_ns)


def test_created_ns_from_header_or_clock(tmp_path: Path) -> None:
    calls: list[int] = []

    def clock() -> int:
        calls.append(1)
        return 123

    with LogWriter(tmp_path / "a.wslog", header(), clock=clock):
        pass
    assert read_log(tmp_path / "a.wslog").header.created_ns == 123
    assert len(calls) == 1

    with LogWriter(tmp_path / "b.wslog", header(created_ns=456), clock=clock):
        pass
    assert read_log(tmp_path / "b.wslog").header.created_ns == 456
    assert len(calls) == 1


def test_write_record_and_frames_share_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "x.wslog"
    records = sample_records()
    with LogWriter(path, header()) as w:
        for r in records:
            w.write_record(r)
    reader = LogReader(path)
    first = next(reader)
    rest = list(reader.frames())
    assert first == records[0]
    assert [Record(*f) for f in rest] == records[1:]
    assert isinstance(rest[0], tuple)


records_strategy = st.lists(
    st.builds(
        Record,
        kind=st.sampled_from(Direction),
        recv_ns=st.integers(-(2**63), 2**63 - 1),
        conn_id=st.integers(0, 2**32 - 1),
        data=st.binary(max_size=300) | st.text(max_size=100),
        url=st.none() | st.text(max_size=40),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(
    records=records_strategy,
    block_size=st.integers(1, 2000),
    flush_records=st.none() | st.integers(1, 10),
    compress=st.booleans(),
)
def test_round_trip_property(records: list[Record], block_size: int, flush_records: int | None, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.wslog"
        write_all(path, records, block_size=block_size, flush_records=flush_records, compress=compress)
        reader = read_log(path)
        assert list(reader) == records
        assert reader.stats.corrupt_blocks == 0
        assert reader.stats.truncated_bytes == 0


@settings(max_examples=40, deadline=None)
@given(
    venue=st.text(max_size=10),
    subs=st.lists(st.text(max_size=20), max_size=5),
    created=st.integers(0, 2**63 - 1),
    meta=st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=4,
    ),
)
def test_header_round_trip_property(venue: str, subs: list[str], created: int, meta: dict[str, object]) -> None:
    h = LogHeader(venue=venue, endpoint="wss://e", subscriptions=subs, created_ns=created, meta=meta)
    conv = cattrs.Converter()
    assert conv.structure(conv.unstructure(h), LogHeader) == h
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "h.wslog"
        with LogWriter(path, h, clock=lambda: 1):
            pass
        got = read_log(path).header
        assert got == (h if created else attrs_evolve_created(h, 1))
        assert dict(got.meta) == meta


def test_header_is_frozen_and_hashable() -> None:
    h = header()
    assert isinstance(h.subscriptions, tuple)
    hash(h)
    with pytest.raises(TypeError):
        h.meta["x"] = 1  # type: ignore[index]
    with pytest.raises(ConfigError):
        LogHeader(venue="v", meta={"bad": object()})
    with pytest.raises(ConfigError):
        LogHeader(venue="v", subscriptions="book:BTC-USDT")


# --- rotation ---------------------------------------------------------------------


def test_rotation_by_size(tmp_path: Path) -> None:
    records = [Record(Direction.IN, T0 + i, 1, depth_frame(i)) for i in range(400)]
    with LogWriter(tmp_path, header(), rotate_bytes=4000, block_size=2000, clock=lambda: T0) as w:
        for r in records:
            w.write_record(r)
    names = [p.name for p in w.paths]
    assert len(names) >= 3
    assert names == [rotated_name("binance", i) for i in range(1, len(names) + 1)]
    sizes = [p.stat().st_size for p in w.paths]
    assert all(s >= 4000 for s in sizes[:-1])
    # a file overshoots by at most one block (< block_size + its head, compressed or not)
    assert all(s < 4000 + 2000 + 400 + BLOCK_HEAD.size for s in sizes)
    reader = read_log(tmp_path)
    assert list(reader) == records
    assert reader.stats.files == len(names)
    assert [h.venue for h in reader.headers] == ["binance"] * len(names)
    # each later file is stamped with the time of its first record
    assert reader.headers[0].created_ns == T0
    for path, h in zip(w.paths[1:], reader.headers[1:], strict=True):
        assert h.created_ns == next(iter(read_log(path))).recv_ns


def test_rotation_by_time_aligned_uses_record_times_not_clock(tmp_path: Path) -> None:
    clock_calls: list[int] = []

    def clock() -> int:
        clock_calls.append(1)
        return T0

    start = T0 - T0 % HOUR_NS  # the hour T0 falls in
    times = [T0, start + HOUR_NS - 1, start + HOUR_NS, start + HOUR_NS + 5, start + 3 * HOUR_NS + 7]
    with LogWriter(tmp_path / "logs", header(), rotate_seconds=3600, clock=clock) as w:
        for i, t in enumerate(times):
            w.write(Direction.IN, t, 1, f"m{i}")
    assert len(clock_calls) == 1  # only the first file's creation time
    per_file = [[r.recv_ns for r in read_log(p)] for p in w.paths]
    assert per_file == [times[:2], times[2:4], times[4:]]
    created = [read_log(p).header.created_ns for p in w.paths]
    assert created == [T0, start + HOUR_NS, start + 3 * HOUR_NS + 7]


def test_rotation_by_time_unaligned(tmp_path: Path) -> None:
    times = [T0, T0 + 9 * 10**9, T0 + 10 * 10**9, T0 + 25 * 10**9]
    with LogWriter(tmp_path, header(), rotate_seconds=10, rotate_aligned=False, clock=lambda: 0) as w:
        for t in times:
            w.write(Direction.IN, t, 1, b"x")
    per_file = [[r.recv_ns for r in read_log(p)] for p in w.paths]
    assert per_file == [times[:2], times[2:3], times[3:]]


def test_rotation_continues_numbering_and_prefix(tmp_path: Path) -> None:
    (tmp_path / rotated_name("kr", 7)).write_bytes(b"")
    with LogWriter(tmp_path, header(), rotate_bytes=10**9, prefix="kr") as w:
        w.write(Direction.IN, T0, 1, "x")
    assert [p.name for p in w.paths] == [rotated_name("kr", 8)]


def test_rotation_needs_directory_and_single_file_refuses_overwrite(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        LogWriter(tmp_path / "a.wslog", header(), rotate_bytes=100)
    path = tmp_path / "b.wslog"
    with LogWriter(path, header()) as w:
        w.write(Direction.IN, 1, 1, "old")
    with pytest.raises(ConfigError):
        LogWriter(path, header())
    with LogWriter(path, header(), overwrite=True) as w:
        w.write(Direction.IN, 2, 1, "new")
    assert [r.data for r in read_log(path)] == ["new"]
    with pytest.raises(ConfigError):
        w2 = LogWriter(tmp_path / "c.wslog", header())
        w2.rotate()


def test_manual_rotate_with_new_header(tmp_path: Path) -> None:
    with LogWriter(tmp_path, header(), clock=lambda: T0) as w:
        w.write(Direction.IN, T0, 1, "a")
        w.rotate(header(subscriptions=["book:ETH-USDT"]))
        w.write(Direction.IN, T0 + 10, 1, "b")
    assert len(w.paths) == 2
    h2 = read_log(w.paths[1]).header
    assert h2.subscriptions == ("book:ETH-USDT",)
    assert h2.created_ns == T0 + 10
    assert [r.data for r in read_log(tmp_path)] == ["a", "b"]


def test_poll_seals_quiet_block_and_closes_time_window(tmp_path: Path) -> None:
    now = [T0]
    w = LogWriter(tmp_path, header(), rotate_seconds=3600, flush_interval_ns=10**9, clock=lambda: now[0])
    w.write(Direction.IN, T0, 1, "a")
    assert w.stats.blocks == 0
    w.poll(T0 + 10**9 - 1)
    assert w.stats.blocks == 0
    now[0] = T0 + 10**9
    w.poll()  # reads the injected clock
    assert w.stats.blocks == 1
    # the sealed block is readable while the writer is still open
    assert [r.data for r in read_log(w.paths[0])] == ["a"]
    w.write(Direction.IN, T0 + 2 * 10**9, 1, "b")
    end_of_hour = T0 - T0 % HOUR_NS + HOUR_NS
    w.poll(end_of_hour)
    assert w.current_path is None
    w.write(Direction.IN, end_of_hour + 1, 1, "c")
    w.close()
    assert [[r.data for r in read_log(p)] for p in w.paths] == [["a", "b"], ["c"]]


def test_flush_interval_by_record_times(tmp_path: Path) -> None:
    with LogWriter(tmp_path / "f.wslog", header(), flush_interval_ns=100) as w:
        w.write(Direction.IN, 1000, 1, "a")
        w.write(Direction.IN, 1099, 1, "b")
        assert w.stats.blocks == 0
        w.write(Direction.IN, 1100, 1, "c")  # seals [a, b] first
        assert w.stats.blocks == 1
        w.write(Direction.IN, 1150, 1, "d")
        assert w.stats.blocks == 1
        w.write(Direction.IN, 1200, 1, "e")
        assert w.stats.blocks == 2
    assert [r.data for r in read_log(w.paths[0])] == list("abcde")


def test_flush_records(tmp_path: Path) -> None:
    w = LogWriter(tmp_path / "f.wslog", header(), flush_records=3)
    for i in range(7):
        w.write(Direction.IN, i, 1, str(i))
    assert w.stats.blocks == 2
    assert [r.data for r in read_log(w.paths[0])] == ["0", "1", "2", "3", "4", "5"]
    w.flush()
    assert [r.data for r in read_log(w.paths[0])] == [str(i) for i in range(7)]
    w.close()
    w.close()  # idempotent
    assert w.closed
    with pytest.raises(ClosedError):
        w.write(Direction.IN, 9, 1, "x")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [(Fsync.NEVER, 0), (Fsync.CLOSE, 2), ("block", 2 + 2 + 2)],
)
def test_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: Fsync | str, expected: int) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    with LogWriter(tmp_path / "s.wslog", header(), fsync=policy, flush_records=2) as w:
        for i in range(4):
            w.write(Direction.IN, i, 1, "x")  # two blocks
    # block: file + dir at creation, one per block, file + dir at close
    # close: file + dir at close
    assert len(calls) == expected
    with pytest.raises(ConfigError):
        LogWriter(tmp_path / "t.wslog", header(), fsync="sometimes")


# --- bad input to the writer ---------------------------------------------------------


def test_bad_records_rejected_without_corrupting_buffer(tmp_path: Path) -> None:
    path = tmp_path / "bad.wslog"
    with LogWriter(path, header()) as w:
        w.write(Direction.IN, 1, 1, "ok1")
        with pytest.raises(ConfigError):
            w.write(Direction.IN, 2, -1, "negative conn")
        with pytest.raises(ConfigError):
            w.write(Direction.IN, 3, 2**32, "too big conn")
        with pytest.raises(ConfigError):
            w.write(9, 4, 1, "bad kind")
        with pytest.raises(ConfigError):
            w.write(Direction.REST, 5, 1, "x", "u" * 70000)
        with pytest.raises(ConfigError):
            w.write(Direction.IN, 6, 1, [1, 2])  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            w.write(Direction.IN, 2**63, 1, "time overflow")
        with pytest.raises(ConfigError):
            w.write(Direction.IN, 1.5, 1, "float time")  # type: ignore[arg-type]
        w.write(Direction.IN, 7, 1, "ok2")
    assert [(r.recv_ns, r.data) for r in read_log(path)] == [(1, "ok1"), (7, "ok2")]


def test_bytes_like_data_is_stored_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "b.wslog"
    with LogWriter(path, header()) as w:
        w.write(Direction.IN, 1, 1, bytearray(b"ab"))
        w.write(Direction.IN, 2, 1, memoryview(b"cd"))
    assert [r.data for r in read_log(path)] == [b"ab", b"cd"]


# --- damage -----------------------------------------------------------------------------


def write_blocks(path: Path, blocks: int, per_block: int = 10) -> tuple[list[list[Record]], list[int]]:
    """Write ``blocks`` blocks; return their records and the file offset after each."""
    groups: list[list[Record]] = []
    ends: list[int] = []
    with LogWriter(path, header(), clock=lambda: T0) as w:
        ends.append(path.stat().st_size)  # end of the header
        for b in range(blocks):
            group = [Record(Direction.IN, T0 + b * 1000 + i, 1, depth_frame(b * 1000 + i)) for i in range(per_block)]
            for r in group:
                w.write_record(r)
            w.flush()
            groups.append(group)
            ends.append(path.stat().st_size)
    return groups, ends


def test_torn_tail_at_every_kind_of_offset(tmp_path: Path) -> None:
    src = tmp_path / "full.wslog"
    groups, ends = write_blocks(src, 4)
    data = src.read_bytes()
    header_end = ends[0]
    offsets = sorted(
        {header_end, header_end + 1, header_end + 3, header_end + 4, header_end + BLOCK_HEAD.size - 1}
        | {e for e in ends}
        | {e + 1 for e in ends[:-1]}
        | {e + BLOCK_HEAD.size for e in ends[:-1]}
        | {e - 1 for e in ends[1:]}
        | {(a + b) // 2 for a, b in itertools.pairwise(ends)}
    )
    for cut in offsets:
        torn = tmp_path / f"cut{cut}.wslog"
        torn.write_bytes(data[:cut])
        complete = sum(1 for e in ends[1:] if e <= cut)
        last_end = ends[complete]
        reader = read_log(torn)
        got = list(reader)
        assert got == [r for g in groups[:complete] for r in g], cut
        assert reader.stats.corrupt_blocks == 0, cut
        assert reader.stats.truncated_bytes == cut - last_end, cut
        assert len(reader.stats.issues) == (1 if cut > last_end else 0)


def test_torn_header_single_file_is_log_error_but_skipped_in_a_set(tmp_path: Path) -> None:
    src = tmp_path / "full.wslog"
    groups, ends = write_blocks(src, 1)
    torn = tmp_path / "set"
    torn.mkdir()
    (torn / rotated_name("binance", 1)).write_bytes(src.read_bytes())
    (torn / rotated_name("binance", 2)).write_bytes(src.read_bytes()[: ends[0] - 3])
    (torn / rotated_name("binance", 3)).write_bytes(b"")
    with pytest.raises(LogError):
        read_log(torn / rotated_name("binance", 2))
    reader = read_log(torn)
    assert list(reader) == groups[0]
    assert reader.stats.truncated_bytes == ends[0] - 3
    assert len(reader.headers) == 1


@pytest.mark.parametrize("where", ["payload", "head_crc_field", "head_length", "magic"])
def test_flipped_byte_in_middle_block_is_skipped_and_counted(tmp_path: Path, where: str) -> None:
    path = tmp_path / "flip.wslog"
    groups, ends = write_blocks(path, 5)
    data = bytearray(path.read_bytes())
    start = ends[2]  # the third block
    offset = {
        "payload": start + BLOCK_HEAD.size + 7,
        "head_crc_field": start + BLOCK_HEAD.size - 1,
        "head_length": start + 14,  # inside stored_len
        "magic": start,
    }[where]
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    reader = read_log(path)
    got = list(reader)
    assert got == groups[0] + groups[1] + groups[3] + groups[4]
    assert reader.stats.corrupt_blocks == 1
    assert reader.stats.skipped_bytes == ends[3] - ends[2]
    assert reader.stats.truncated_bytes == 0
    assert reader.stats.issues[0].offset == start


def test_garbage_after_last_block_is_counted_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "g.wslog"
    groups, _ends = write_blocks(path, 2)
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 100)
    reader = read_log(path)
    assert list(reader) == groups[0] + groups[1]
    assert reader.stats.corrupt_blocks == 1
    assert reader.stats.skipped_bytes == 100


def test_bad_magic_version_or_header_is_log_error(tmp_path: Path) -> None:
    good = tmp_path / "good.wslog"
    write_blocks(good, 1)
    data = good.read_bytes()

    bad_magic = tmp_path / "magic.wslog"
    bad_magic.write_bytes(b"NOTALOG!" + data[8:])
    with pytest.raises(LogError, match="magic"):
        read_log(bad_magic)

    text = tmp_path / "text.wslog"
    text.write_bytes(b'{"hello": 1}\n')
    with pytest.raises(LogError, match="magic"):
        read_log(text)

    version = tmp_path / "version.wslog"
    version.write_bytes(data[:8] + (99).to_bytes(2, "little") + data[10:])
    with pytest.raises(LogError, match="version 99"):
        read_log(version)

    damaged = bytearray(data)
    damaged[FILE_PREFIX.size + 3] ^= 0x01  # inside the header JSON
    dmg = tmp_path / "damaged.wslog"
    dmg.write_bytes(bytes(damaged))
    with pytest.raises(LogError, match="damaged"):
        read_log(dmg)

    with pytest.raises(LogError):
        read_log(tmp_path / "missing.wslog")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LogError, match="no log files"):
        read_log(empty)


# --- time filter, merge, info ------------------------------------------------------------


def test_start_and_end_filters(tmp_path: Path) -> None:
    path = tmp_path / "t.wslog"
    groups, _ = write_blocks(path, 4)
    every = [r for g in groups for r in g]
    lo, hi = T0 + 1005, T0 + 3000
    assert list(read_log(path, start_ns=lo, end_ns=hi)) == [r for r in every if lo <= r.recv_ns < hi]
    reader = read_log(path, start_ns=T0 + 2000)
    assert list(reader) == groups[2] + groups[3]
    assert reader.stats.blocks == 2  # the first two were skipped by their time bounds


def test_merge_logs_orders_by_time(tmp_path: Path) -> None:
    a = [Record(Direction.IN, T0 + t, 1, f"a{t}") for t in (1, 4, 4, 9)]
    b = [Record(Direction.IN, T0 + t, 2, f"b{t}") for t in (2, 4, 10)]
    write_all(tmp_path / "a.wslog", a)
    write_all(tmp_path / "b.wslog", b)
    merged = merge_logs([tmp_path / "a.wslog", tmp_path / "b.wslog"])
    got = [r.data for r in merged]
    assert got == ["a1", "b2", "a4", "a4", "b4", "a9", "b10"]
    assert merged.stats.records == 7
    assert len(merged.headers) == 2


def test_merge_directory_groups_rotated_sets_by_prefix(tmp_path: Path) -> None:
    with LogWriter(tmp_path, header(venue="binance"), rotate_bytes=1, clock=lambda: T0) as wb:
        for t in (1, 3, 5):
            wb.write(Direction.IN, T0 + t, 1, f"b{t}")
            wb.flush()
    with LogWriter(tmp_path, header(venue="kraken"), rotate_bytes=1, clock=lambda: T0) as wk:
        for t in (2, 4, 6):
            wk.write(Direction.IN, T0 + t, 2, f"k{t}")
            wk.flush()
    assert len(wb.paths) == 3 and len(wk.paths) == 3
    merged = merge_logs(tmp_path)
    assert len(merged.readers) == 2
    assert [r.data for r in merged] == ["b1", "k2", "b3", "k4", "b5", "k6"]


def test_log_info(tmp_path: Path) -> None:
    path = tmp_path / "i.wslog"
    _groups, ends = write_blocks(path, 3)
    with open(path, "ab") as fh:  # a torn extra block
        fh.write(path.read_bytes()[ends[0] : ends[0] + 30])
    with LogWriter(tmp_path / "j.wslog", header(venue="kraken", endpoint="wss://ws.kraken.com")) as w:
        for r in sample_records():
            w.write_record(r)
    info = log_info([path, tmp_path / "j.wslog"])
    assert info.venues == ("binance", "kraken")
    assert info.endpoints == ("wss://stream.binance.com:9443/stream", "wss://ws.kraken.com")
    assert info.subscriptions == ("book:BTC-USDT", "trades:BTC-USDT")
    assert info.records == 30 + len(sample_records())
    assert dict(info.counts) == {
        Direction.IN: 30 + 6,
        Direction.OUT: 1,
        Direction.REST: 1,
        Direction.OPEN: 1,
        Direction.CLOSE: 1,
    }
    assert info.connections == (1, 2, 3)
    assert info.first_ns == T0
    assert info.last_ns == T0 + 2009
    assert info.stats.truncated_bytes == 30
    assert info.stats.corrupt_blocks == 0
    assert info.compression_ratio > 1.0
    assert info.file_bytes == path.stat().st_size + (tmp_path / "j.wslog").stat().st_size
    text = info.describe()
    assert "binance, kraken" in text and "torn" in text


def test_log_info_empty_log(tmp_path: Path) -> None:
    with LogWriter(tmp_path / "e.wslog", header(), clock=lambda: 5):
        pass
    info = log_info(tmp_path / "e.wslog")
    assert info.records == 0
    assert info.first_ns is None and info.last_ns is None
    assert dict(info.counts) == {}
    assert info.compression_ratio == 0.0


def test_reader_context_manager_releases_file(tmp_path: Path) -> None:
    path = tmp_path / "c.wslog"
    write_blocks(path, 2)
    with LogReader(path) as reader:
        next(reader)
    assert list(reader) == []


def test_public_exports() -> None:
    for name in wsmux.log.__all__:
        assert hasattr(wsmux.log, name), name
    assert {"LogWriter", "LogReader", "read_log", "merge_logs", "log_info", "Direction", "Record"} <= set(
        wsmux.log.__all__
    )


def test_open_recorder_matches_connection_callback(tmp_path: Path) -> None:
    rec = wsmux.log.open_recorder(
        tmp_path / "rec", "kraken", "wss://ws.kraken.com", subscriptions=["book:BTC-USD"], clock=lambda: T0
    )
    rec.record("open", 4, T0, "wss://ws.kraken.com", "wss://ws.kraken.com")
    rec.record("out", 4, T0 + 1, '{"event":"subscribe"}', None)
    rec.record("in", 4, T0 + 2, b"\x00bin", None)
    rec.record("rest", 5, T0 + 3, "{}", "https://api.kraken.com/x")
    rec.record(Direction.CLOSE, 4, T0 + 4, "bye")
    with pytest.raises(ConfigError):
        rec.record("sideways", 4, T0 + 5, "x")
    rec.close()
    rec.close()
    paths = rec.writer.paths
    assert [p.name for p in paths] == [rotated_name("kraken", 1)]
    reader = read_log(tmp_path / "rec")
    assert [r.kind for r in reader] == [
        Direction.OPEN,
        Direction.OUT,
        Direction.IN,
        Direction.REST,
        Direction.CLOSE,
    ]
    assert reader.header.subscriptions == ("book:BTC-USD",)
    assert reader.header.endpoint == "wss://ws.kraken.com"
