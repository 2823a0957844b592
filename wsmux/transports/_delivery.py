"""Push-mode delivery, shared by the transports that push (websockets' protocol, picows).

A pushing transport parses messages inside its socket callback. In push mode
each goes to the Connection's frame handler at once (:meth:`Delivery.put`).
Before push mode starts, and while reading is paused, messages are held in
order — the rest of a chunk already parsed when the handler paused included —
and go first when push mode starts or reading resumes (:meth:`Delivery.drain`):
nothing reaches the handler after the message that paused it, which is what a
BLOCK stream's "at most the frame that filled it" rests on.

A handler that raises ends the delivery: an ``Exception`` is the consumer's
bug and is reported to the transport (``on_failure``, which drops the
connection); ``SystemExit``/``KeyboardInterrupt`` propagate (they stop the
event loop) after ``on_failure`` too, so that a loop run again to clean up
hands the handler nothing more.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

__all__ = ["Delivery"]

Handler = Callable[[bytes | str], None]


class Delivery:
    """Where a pushing transport's messages go: the handler, or the held queue."""

    __slots__ = ("_on_failure", "handler", "paused", "push", "queue")

    def __init__(self, on_failure: Callable[[str], None]) -> None:
        self.queue: collections.deque[bytes | str] = collections.deque()
        """Messages held: before push mode (``recv`` reads them), while paused."""
        self.handler: Handler | None = None
        """The frame handler of push mode (:meth:`start`)."""
        self.push: Handler | None = None
        """The handler while messages may go straight to it; None holds them."""
        self.paused = False
        """Reading is paused (:meth:`pause`)."""
        self._on_failure = on_failure

    def put(self, payload: bytes | str) -> bool:
        """Hand ``payload`` to the handler; False if it was held instead."""
        push = self.push  # read per message: the handler may have paused reading
        if push is None:
            self.queue.append(payload)
            return False
        try:
            push(payload)
        except Exception as exc:  # the consumer's bug must not break the socket callback
            self._fail(f"frame handler raised {type(exc).__name__}: {exc}")
        except BaseException:  # SystemExit, KeyboardInterrupt: let it stop the loop
            self._fail("frame handler stopped the event loop")
            raise
        return True

    def start(self, handler: Handler) -> None:
        """Push mode from now on; the held messages go first."""
        self.handler = handler
        self.drain()

    def pause(self) -> None:
        self.paused = True
        self.push = None

    def resume(self) -> None:
        """Unpause: the held messages go first (the handler may pause again:
        then :attr:`paused` is True once more)."""
        self.paused = False
        self.drain()

    def drain(self) -> None:
        """Hand held messages over until the handler pauses; then, not
        paused, messages go straight to it again."""
        queue = self.queue
        while queue and not self.paused:
            handler = self.handler
            if handler is None:  # not pushing yet, or it failed: the connection is being dropped
                return
            try:
                handler(queue.popleft())
            except Exception as exc:
                self._fail(f"frame handler raised {type(exc).__name__}: {exc}")
            except BaseException:
                self._fail("frame handler stopped the event loop")
                raise
        if not self.paused:
            self.push = self.handler

    def _fail(self, reason: str) -> None:
        self.handler = self.push = None
        self._on_failure(reason)
