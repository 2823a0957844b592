"""The README's quickstart snippets are complete programs: run each one, against
mock exchanges (WSMUX_ENDPOINTS), never the network (issue 11 item 10)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wsmux.testing import MockBinance, run_mock_in_thread

README = Path(__file__).parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_its_quickstarts() -> None:
    assert len(SNIPPETS) >= 7


@pytest.fixture(scope="module")
def mock_env():  # type: ignore[no-untyped-def]
    with run_mock_in_thread(MockBinance(["BTC-USDT", "ETH-USDT"], rate=50)) as mt:
        mt.run()  # the mock's market ticks by itself: trades and book updates flow
        ep = mt.endpoint
        env = dict(os.environ, WSMUX_ENDPOINTS=json.dumps({"binance": {"url": ep.url, "rest_url": ep.rest_url}}))
        yield env


def test_every_readme_snippet_runs_to_completion(mock_env: dict[str, str], tmp_path: Path) -> None:
    procs = []
    for i, code in enumerate(SNIPPETS):
        script = tmp_path / f"snippet_{i}.py"
        script.write_text(code)
        procs.append(
            (
                code,
                subprocess.Popen(
                    [sys.executable, str(script)],
                    env=mock_env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    failures = []
    for code, proc in procs:
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            failures.append(f"timed out:\n{code}\n{err[-2000:]}")
            continue
        if proc.returncode != 0 or not out.strip():
            failures.append(f"exit {proc.returncode}:\n{code}\n--- stdout\n{out[-1000:]}\n--- stderr\n{err[-2000:]}")
    assert not failures, "\n\n".join(failures)
