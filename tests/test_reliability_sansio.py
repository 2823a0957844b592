"""The reliability machinery is sans-I/O: no I/O or clock imports, no clock
reads or sleeps (checked with the rules of ``test_sansio``), and importing it
loads no asyncio, websockets or httpx."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_sansio import violations

import wsmux

PACKAGE = Path(wsmux.__file__).parent
FILES = sorted([*(PACKAGE / "_reliability").glob("*.py"), PACKAGE / "reliability.py", PACKAGE / "_retry.py"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_module_is_sans_io(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), str(path)) == []


SUBPROCESS = textwrap.dedent(
    """
    import importlib, json, pathlib, sys, types

    package = types.ModuleType("wsmux")
    package.__path__ = [sys.argv[1]]
    sys.modules["wsmux"] = package  # wsmux/__init__.py (the multiplexer) is not run
    importlib.import_module("wsmux.reliability")
    print(json.dumps(sorted(sys.modules)))
    """
)


def test_importing_it_loads_no_io_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SUBPROCESS, str(PACKAGE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    assert "wsmux._reliability.arbiter" in modules and "wsmux.multiplexer" not in modules
    loaded = {m.split(".")[0] for m in modules}
    assert not loaded & {"asyncio", "websockets", "httpx", "socket", "ssl"}
