"""Run the ``wsmux`` command line as a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys

__all__ = ["run_wsmux"]


def run_wsmux(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``python -m wsmux ARGS`` with captured text output (never raises on exit codes)."""
    return subprocess.run(
        [sys.executable, "-m", "wsmux", *args], check=False, capture_output=True, text=True, timeout=timeout
    )
