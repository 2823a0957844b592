"""Run a mock exchange from synchronous code (for tests of :mod:`wsmux.sync` users)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, Generic, TypeVar

from wsmux.adapter import Endpoint
from wsmux.testing._server import MockExchange

__all__ = ["ThreadedMock", "run_mock_in_thread"]

M = TypeVar("M", bound=MockExchange)
T = TypeVar("T")


class ThreadedMock(Generic[M]):
    """A mock exchange serving from its own event loop in a daemon thread.

    Use :func:`run_mock_in_thread`. ``endpoint`` goes to
    ``wsmux.sync.Multiplexer(endpoints=...)``; :meth:`publish` and
    :meth:`call` drive the mock from plain (blocking) code.
    """

    def __init__(self, mock: M, timeout: float = 30.0) -> None:
        self.mock = mock
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wsmux-mock", daemon=True)
        self.thread.start()
        try:
            self.call(mock.start())
        except BaseException:
            self._stop_loop()
            raise

    @property
    def endpoint(self) -> Endpoint:
        return self.mock.endpoint

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the mock's loop and return its result (blocking)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """``mock.publish(steps, symbols)``, blocking until sent."""
        self.call(self.mock.publish(steps, symbols))

    def run(self) -> None:
        """Start the mock's own market clock (``mock.run()``)."""
        self.loop.call_soon_threadsafe(self.mock.run)

    def close(self) -> None:
        """Stop the mock and its thread (idempotent)."""
        if self.loop.is_closed():
            return
        try:
            if self.thread.is_alive():
                self.call(self.mock.stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()

    def __enter__(self) -> ThreadedMock[M]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_mock_in_thread(mock: M) -> ThreadedMock[M]:
    """Serve ``mock`` from a background thread, for synchronous code.

    For example::

        from wsmux import trades
        from wsmux.sync import Multiplexer
        from wsmux.testing import MockBinance, run_mock_in_thread

        with run_mock_in_thread(MockBinance(["BTC-USDT"])) as mt:
            with Multiplexer(endpoints={"binance": mt.endpoint}) as mux:
                stream = mux.subscribe(trades("binance", "BTC-USDT"))
                mt.publish(100)
    """
    return ThreadedMock(mock)
