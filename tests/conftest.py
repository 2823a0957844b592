from __future__ import annotations

from pathlib import Path

import pytest

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "recordings"


@pytest.fixture
def recordings_dir() -> Path:
    """../shared/recordings, or skip when it is absent (e.g. outside this workspace)."""
    if not RECORDINGS.is_dir():
        pytest.skip("../shared/recordings is absent")
    return RECORDINGS
