"""mypy sees the sync facade's keywords (issue 11 item 10): a misspelled keyword is a type error."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

SCRIPT = """
from wsmux import trades
from wsmux.sync import Multiplexer

with Multiplexer(redundancy=2, connect_timeout=5.0) as mux:
    stream = mux.subscribe(trades("binance", "BTC-USDT"), overflow="drop_oldest")
    mux.run(duration=1.0)
bad = Multiplexer(redundency=2)
"""


def test_mypy_catches_a_misspelled_sync_keyword(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    out, err, status = api.run(
        [str(script), "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"), "--no-incremental"]
    )
    assert status == 1, out + err
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out
    assert 'Unexpected keyword argument "redundency"' in errors[0]
    assert "user_script.py:8:" in errors[0]
