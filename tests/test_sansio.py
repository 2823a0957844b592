"""Sans-I/O: the books, the adapters and the frame pipeline never touch the
network, sleep or read the clock (STYLE.md, convention 1).

Two checks:

* statically, every file is parsed with :mod:`ast`: no import of an I/O or
  clock module, no call that sleeps or reads the time, no ``open()``;
* dynamically, the modules are imported in a fresh interpreter and
  ``asyncio``/``websockets``/``httpx`` must not have been loaded. Importing
  ``wsmux.book`` would normally run ``wsmux/__init__.py`` (which imports the
  multiplexer), so the subprocess registers a bare ``wsmux`` package first:
  only the modules under test and what *they* import are executed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wsmux

PACKAGE = Path(wsmux.__file__).parent

SANS_IO_FILES = sorted(
    [
        *(PACKAGE / "book").rglob("*.py"),
        *(PACKAGE / "exchanges").rglob("*.py"),
        *(PACKAGE / "analytics").rglob("*.py"),
        *(PACKAGE / name for name in ("adapter.py", "model.py", "errors.py", "subscriptions.py", "_json.py")),
        *(PACKAGE / name for name in ("_pipeline.py", "convert.py")),
    ]
)

FORBIDDEN_MODULES = frozenset(
    {
        "asyncio",
        "websockets",
        "httpx",
        "aiohttp",
        "requests",
        "time",
        "socket",
        "ssl",
        "select",
        "selectors",
        "urllib.request",
        "http.client",
    }
)
CLOCK_CALLS = frozenset({"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"})
DATE_CLOCK_CALLS = frozenset({"now", "utcnow", "today"})


def dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base is not None else node.attr
    return None


def forbidden(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


def violations(source: str, filename: str = "<test>") -> list[str]:
    """Every sans-I/O rule broken by ``source``, as ``"line: what"``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if forbidden(node.module):
                found.append(f"{node.lineno}: from {node.module} import ...")
            else:
                found += [
                    f"{node.lineno}: from {node.module} import {a.name}"
                    for a in node.names
                    if forbidden(f"{node.module}.{a.name}")
                ]
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            if name is None:
                continue
            parts = name.split(".")
            last = parts[-1]
            if last == "sleep":
                found.append(f"{node.lineno}: call {name}()")
            elif last in CLOCK_CALLS and "time" in parts[:-1]:
                found.append(f"{node.lineno}: call {name}() reads the clock")
            elif last in DATE_CLOCK_CALLS and {"datetime", "date"} & set(parts[:-1]):
                found.append(f"{node.lineno}: call {name}() reads the clock")
            elif name in ("open", "io.open", "os.open"):
                found.append(f"{node.lineno}: call {name}() does file I/O")
            elif name in ("__import__", "importlib.import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and forbidden(arg.value):
                    found.append(f"{node.lineno}: imports {arg.value} dynamically")
    return found


# --- the checker finds what it must ------------------------------------------------------------


@pytest.mark.parametrize(
    "snippet",
    [
        "import asyncio",
        "import websockets.asyncio.client",
        "from websockets.asyncio.client import connect",
        "import httpx as h",
        "from asyncio import sleep",
        "import time",
        "from time import monotonic",
        "import socket",
        "from urllib import request",
        "def f():\n    import ssl",
        "x = time.time()",
        "x = time.monotonic_ns()",
        "async def f():\n    await asyncio.sleep(1)",
        "sleep(0.1)",
        "x = datetime.now()",
        "x = datetime.datetime.utcnow()",
        "x = date.today()",
        "with open('f') as f: pass",
        "m = importlib.import_module('httpx')",
    ],
)
def test_checker_catches(snippet: str) -> None:
    assert violations(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "import attrs",
        "from wsmux.clock import Clock",
        "x = clock.time_ns()",  # a clock handed in is fine
        "x = datetime.fromisoformat('2024-01-01')",
        "from datetime import UTC, datetime",
        "from . import time",  # a relative module of our own
        "x = self.timestamp(3)",
        "def _open(self): pass",
    ],
)
def test_checker_allows(snippet: str) -> None:
    assert violations(snippet) == [], snippet


# --- the real files ---------------------------------------------------------------------------


def test_the_checked_set_is_not_empty() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in SANS_IO_FILES}
    assert {"book/_orderbook.py", "book/_sync.py", "exchanges/__init__.py", "_pipeline.py"} <= names
    assert len([n for n in names if n.startswith("exchanges/")]) >= 2


@pytest.mark.parametrize("path", SANS_IO_FILES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_module_is_sans_io(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), str(path)) == []


SUBPROCESS = textwrap.dedent(
    """
    import importlib, json, pathlib, sys, types

    root = pathlib.Path(sys.argv[1])
    package = types.ModuleType("wsmux")
    package.__path__ = [str(root)]
    sys.modules["wsmux"] = package  # wsmux/__init__.py (the multiplexer) is not run
    names = ["wsmux.book", "wsmux.book.checksum", "wsmux.book.l3", "wsmux.exchanges", "wsmux._pipeline"]
    names += ["wsmux.analytics"]
    names += ["wsmux.exchanges." + p.stem for p in sorted((root / "exchanges").glob("*.py")) if p.stem != "__init__"]
    for name in names:
        importlib.import_module(name)
    exchanges = importlib.import_module("wsmux.exchanges")
    for venue in exchanges.names():
        exchanges.get(venue)  # the lazily registered adapters too
    print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
    """
)


def test_importing_books_and_adapters_loads_no_io_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SUBPROCESS, str(PACKAGE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "wsmux.book._sync" in report["modules"]
    assert "wsmux.multiplexer" not in report["modules"]  # the stub package worked
    loaded = {m.split(".")[0] for m in report["modules"]}
    assert not loaded & {"asyncio", "websockets", "httpx", "socket", "ssl"}, sorted(
        loaded & {"asyncio", "websockets", "httpx", "socket", "ssl"}
    )
