"""Driving a live-style Feed (``step_snapshots``) through frames in tests: the
build steps of deep stream snapshots run one step per arriving frame, so
frames arrive while a snapshot's rows are read and while its book is built."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wsmux._pipeline import BuildSnapshot, Feed


def replay_stepping(feed: Feed, frames: Iterable[tuple[Any, int]]) -> int:
    """Feed ``(frame, recv_ns)`` pairs, running one step of every pending
    build after each, then the rest; returns how many frames arrived while the
    Feed held frames for a snapshot's rows."""
    pending: list[Any] = []
    held = 0
    for frame, recv_ns in frames:
        feed.on_frame(frame, recv_ns)
        held += feed._hold is not None
        pending += [action.steps for action in feed.take_actions() if isinstance(action, BuildSnapshot)]
        pending = [steps for steps in pending if next(steps, "done") != "done"]
    for steps in pending:
        for _ in steps:
            pass
    return held
