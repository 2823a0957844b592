"""A mock exchange with a per-step hook: :class:`SteppedMock`.

:meth:`MockExchange.publish` renders each market step once per connection.
Venues whose messages carry venue-wide state that must advance once per step
(a clock, a candle, a dropped trade that no connection may see) override
:meth:`SteppedMock.on_step`, which runs once per symbol and step before the
step is rendered for every connection.
"""

from __future__ import annotations

from collections.abc import Iterable

from wsmux.testing._market import Change
from wsmux.testing._server import MockExchange

__all__ = ["SteppedMock"]

_STEP_MS = 1000


class SteppedMock(MockExchange):
    """A :class:`~wsmux.testing.MockExchange` whose market steps are one
    second of mock time each (:attr:`time`, ms per symbol) and that calls
    :meth:`on_step` once per symbol and step."""

    t0_ms: int = 1_700_000_000_000

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.time = {s: self.t0_ms for s in self.symbols}
        """Mock time of each symbol's market (ms); one step is one second."""
        self.steps = {s: 0 for s in self.symbols}
        """Steps taken per symbol."""
        self.trade_dropped = False
        """True while the current step's trade is withheld (``Faults.drop_trades``)."""

    def on_step(self, symbol: str, change: Change) -> None:
        """Called once per symbol and step, before rendering it."""

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times (a second of mock time each) and
        send the changes to subscribers."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                self.time[symbol] += _STEP_MS
                self.steps[symbol] += 1
                self.on_step(symbol, change)
                if self.faults.silent:
                    continue
                self.trade_dropped = change.trade is not None and self.faults.take("drop_trades")
                for conn in list(self.connections.values()):
                    for message in self.render(conn, symbol, change):
                        await self._send(conn, message)
