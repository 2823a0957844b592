"""Import of line-oriented text recordings into log records."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsmux.errors import LogError
from wsmux.log import (
    Direction,
    LogHeader,
    LogWriter,
    Record,
    convert_text_recording,
    import_text_recording,
    read_log,
    seconds_text_to_ns,
    text_recording_conn_id,
    text_recording_header,
)

URL = "wss://ws.kraken.com"

WS_TEXT = (
    f"{URL} <-> 1618678132.3858151\n"
    f"{URL} <- 1618678132.8253062: "
    '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book"}}\n'
    '1618678132.8258188: {"connectionID":1,"event":"systemStatus","status":"online"}\n'
    "1618678133.5: b'\\x1f\\x8b\\x08\\x00\\xff'\n"
    '1618678134.25: b"it\'s binary"\n'
    "1618678135: plain text with: colons\n"
    '1618678136.000000001: {"multi":\n'
    'line": 1}\n'
    "\n"
    "\n"
)

REST_TEXT = (
    "https://api.kraken.com/0/public/AssetPairs -> 1618678132.358447: "
    '{"error":[],"result":{"XBTUSD":{"wsname":"XBT/USD"}}}\n'
    'configuration: {"l2_book":["BTC-USD","ETH-USD"],"trades":["BTC-USD"]}\n'
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def test_seconds_text_to_ns_is_exact() -> None:
    assert seconds_text_to_ns("1633998512.0633569") == 1633998512063356900
    assert seconds_text_to_ns("1618678160.16159") == 1618678160161590000
    assert seconds_text_to_ns("1618677816.8414998") == 1618677816841499800
    assert seconds_text_to_ns("1618678135") == 1618678135000000000
    assert seconds_text_to_ns("1.") == 1_000_000_000
    assert seconds_text_to_ns("1.123456789") == 1_123_456_789
    assert seconds_text_to_ns("-1.5") == -1_500_000_000
    assert seconds_text_to_ns("1.0000000005") == 1_000_000_000  # half to even
    assert seconds_text_to_ns("1.0000000015") == 1_000_000_002
    assert seconds_text_to_ns("1.6e9") == 1_600_000_000_000_000_000
    # the float route would be off: float("1633998512.0633569") * 1e9 != the exact value
    assert int(float("1633998512.0633569") * 1e9) != 1633998512063356900
    for bad in ("", "abc", "nan", "1.2.3", "inf"):
        with pytest.raises(ValueError):
            seconds_text_to_ns(bad)


def test_conn_id_from_file_name() -> None:
    assert text_recording_conn_id("KRAKEN.ws.50.0") == 50
    assert text_recording_conn_id("/x/BINANCE.http.0.0") == 0
    assert text_recording_conn_id("COINBASE.0") == 0


def test_import_websocket_recording(tmp_path: Path) -> None:
    path = write(tmp_path, "KRAKEN.ws.50.0", WS_TEXT)
    got = list(import_text_recording(path))
    assert got == [
        Record(Direction.OPEN, 1618678132385815100, 50, "", URL),
        Record(
            Direction.OUT,
            1618678132825306200,
            50,
            '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book"}}',
            URL,
        ),
        Record(
            Direction.IN,
            1618678132825818800,
            50,
            '{"connectionID":1,"event":"systemStatus","status":"online"}',
        ),
        Record(Direction.IN, 1618678133500000000, 50, b"\x1f\x8b\x08\x00\xff"),
        Record(Direction.IN, 1618678134250000000, 50, b"it's binary"),
        Record(Direction.IN, 1618678135000000000, 50, "plain text with: colons"),
        Record(Direction.IN, 1618678136000000001, 50, '{"multi":\nline": 1}'),
    ]
    assert [r.conn_id for r in import_text_recording(path, conn_id=7)] == [7] * 7


def test_blank_lines_inside_belong_to_the_frame(tmp_path: Path) -> None:
    path = write(tmp_path, "X.ws.1.0", "1.0: a\n\n2.0: b\n\n\n")
    assert [r.data for r in import_text_recording(path)] == ["a\n", "b"]


def test_not_a_bytes_literal_stays_text(tmp_path: Path) -> None:
    path = write(tmp_path, "X.ws.1.0", "1.0: b'unterminated\n2.0: b'x' + b'y'\n3.0: bob'\n")
    assert [r.data for r in import_text_recording(path)] == ["b'unterminated", "b'x' + b'y'", "bob'"]


def test_import_rest_recording_skips_configuration(tmp_path: Path) -> None:
    path = write(tmp_path, "KRAKEN.0", REST_TEXT)
    got = list(import_text_recording(path))
    assert got == [
        Record(
            Direction.REST,
            1618678132358447000,
            0,
            '{"error":[],"result":{"XBTUSD":{"wsname":"XBT/USD"}}}',
            "https://api.kraken.com/0/public/AssetPairs",
        )
    ]


def test_bad_lines_are_log_errors(tmp_path: Path) -> None:
    with pytest.raises(LogError, match=":1: not a recording line"):
        list(import_text_recording(write(tmp_path, "a.ws.1.0", "hello\n")))
    with pytest.raises(LogError, match="UTF-8"):
        bad = tmp_path / "b.ws.1.0"
        bad.write_bytes(b"1.0: \xff\xfe\n")
        list(import_text_recording(bad))
    with pytest.raises(LogError):
        list(import_text_recording(tmp_path / "missing.ws.1.0"))


def test_header_from_session(tmp_path: Path) -> None:
    ws = write(tmp_path, "KRAKEN.ws.50.0", WS_TEXT)
    rest = write(tmp_path, "KRAKEN.0", REST_TEXT)
    h = text_recording_header([rest, ws])
    assert h.venue == "kraken"
    assert h.endpoint == URL
    assert h.created_ns == 1618678132358447000  # the REST call came first
    assert h.subscriptions == ("l2_book:BTC-USD", "l2_book:ETH-USD", "trades:BTC-USD")
    assert h.meta["configuration"] == {"l2_book": ["BTC-USD", "ETH-USD"], "trades": ["BTC-USD"]}
    assert h.meta["files"] == ["KRAKEN.0", "KRAKEN.ws.50.0"]
    assert text_recording_header(ws, venue="kraken-v1").venue == "kraken-v1"


def test_convert_session_to_log_merges_by_time(tmp_path: Path) -> None:
    ws = write(tmp_path, "KRAKEN.ws.50.0", WS_TEXT)
    rest = write(tmp_path, "KRAKEN.0", REST_TEXT)
    out = tmp_path / "kraken.wslog"
    n = convert_text_recording([ws, rest], out)
    assert n == 8
    reader = read_log(out)
    records = list(reader)
    expected = sorted([*import_text_recording(ws), *import_text_recording(rest)], key=lambda r: r.recv_ns)
    assert records == expected
    assert records[0].kind is Direction.REST
    assert reader.header.endpoint == URL
    assert reader.header.created_ns == 1618678132358447000


def test_convert_into_open_writer(tmp_path: Path) -> None:
    ws = write(tmp_path, "KRAKEN.ws.50.0", WS_TEXT)
    out = tmp_path / "w.wslog"
    with LogWriter(out, LogHeader(venue="kraken"), clock=lambda: 1) as w:
        assert convert_text_recording(ws, w) == 7
        assert not w.closed
    assert list(read_log(out)) == list(import_text_recording(ws))
