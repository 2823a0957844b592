"""Small asyncio helpers shared by the modules that own tasks.

Python 3.11 is supported, and two of its asyncio idioms lose a cancellation
of the *caller*:

* ``asyncio.wait_for(aw, t)``: when the caller is cancelled in the loop turn
  in which ``aw`` finished, it returns ``aw``'s result and the cancel is gone
  (``task.cancel()`` said True; the task goes on). wsmux uses
  ``async with asyncio.timeout(t)`` instead, which runs ``aw`` in the
  caller's own task.
* ``with suppress(CancelledError): await task`` after ``task.cancel()``: it
  also swallows a cancel of the caller that lands while it waits, and whoever
  cancelled the caller waits for ever. wsmux uses :func:`reap`.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["reap"]


async def reap(task: asyncio.Task[Any], *, errors: bool = True) -> None:
    """Wait for ``task``, which the caller has just cancelled, to end — but
    let a cancellation of the *caller* through: ``suppress(CancelledError)``
    around the ``await`` would swallow it too, and whoever cancelled the caller
    (a shard's close cancelling its rollover while that closes a connection)
    would wait for ever. With ``errors`` the task's own exception is ignored
    as well, else it propagates."""
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        if not errors:
            raise
