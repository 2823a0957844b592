"""The getting-started program in the docs is a complete program that runs
(against the mock exchange it uses), not a fragment."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def _python_blocks(page: Path) -> list[str]:
    text = page.read_text()
    blocks = []
    for m in re.finditer(r"^\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", text, re.M):
        blocks.append("\n".join(line[4:] for line in m.group(1).splitlines()))
    return blocks


def test_getting_started_mock_program_runs() -> None:
    blocks = _python_blocks(DOCS / "getting-started.rst")
    program = next(b for b in blocks if "MockBinance" in b)
    proc = subprocess.run([sys.executable, "-c", program], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    valid, *_ = proc.stdout.split()
    assert valid == "True"
