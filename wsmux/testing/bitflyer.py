"""A mock bitFlyer Lightning Realtime API on 127.0.0.1: :class:`MockBitflyer`.

It speaks the JSON-RPC 2.0 protocol of ``shared/exchanges/bitflyer.md`` on
``/json-rpc``: ``{"jsonrpc":"2.0","id":N,"method":"subscribe"|"unsubscribe",
"params":{"channel":..}}`` answered ``{"jsonrpc":"2.0","id":N,"result":true}``
(or ``{"jsonrpc":"2.0","id":N,"error":{"code":-32600,"message":..}}`` for an
unknown channel or with ``reject_subscriptions``: the error shape is a mock
convention), and ``channelMessage`` notifications:

* ``lightning_board_snapshot_{p}`` — the full board at once when the channel
  is subscribed (also when it already was: what a resync asks for), then
  every ``snapshot_every`` steps;
* ``lightning_board_{p}`` — one delta per market step (``{"price", "size"}``
  objects, JSON floats, absolute sizes, 0 deletes);
* ``lightning_executions_{p}`` — each trade, ``side`` the taker's, ``id``
  increasing (by 7 per trade: the venue's ids are not contiguous either),
  ``exec_date`` with 7 fraction digits;
* ``lightning_ticker_{p}`` — every step, last, with ``tick_id`` + 1: a client
  that has seen :meth:`MockBitflyer.tick_id` has every delta before it.

``GET /v1/getmarkets`` lists the mock's products. Faults (``mock.faults``) on
board deltas: ``skip_seq`` (a delta is lost — undetectable on this venue,
healed by the next snapshot), ``duplicate``, ``reorder``, ``crossed`` (an extra
delta puts a bid at the best ask), plus ``garbage``, ``silent``,
``drop_trades`` and ``reject_subscriptions``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar, Self

from wsmux._json import dumps, loads
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockBitflyer"]

_PREFIXES = ("lightning_board_snapshot_", "lightning_board_", "lightning_executions_", "lightning_ticker_")


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 100:07d}Z"


class MockBitflyer(MockExchange):
    """Mock bitFlyer (``"bitflyer"``): ``BTC-JPY`` ↔ ``BTC_JPY``, ``BTC-JPY-PERP`` ↔
    ``FX_BTC_JPY``. See the module docstring.

    Args:
        snapshot_every: send the board snapshot every this many steps (0: only
            on subscribe).
    """

    venue: ClassVar[str] = "bitflyer"
    ws_path: ClassVar[str] = "/json-rpc"
    tick: ClassVar[str] = "1"
    lot: ClassVar[str] = "0.00000001"

    def __init__(self, symbols: Iterable[str], *, snapshot_every: int = 20, **kw: Any) -> None:
        super().__init__(symbols, **kw)
        self.snapshot_every = snapshot_every
        self.natives = {s: self.native(s) for s in self.symbols}
        self.by_native = {n: s for s, n in self.natives.items()}
        self._ticks = {s: 500_000 * (i + 1) for i, s in enumerate(self.symbols)}
        self._steps = dict.fromkeys(self.symbols, 0)
        self._held: dict[str, list[tuple[str, str]]] = {}
        self.snapshots_sent = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    @staticmethod
    def native(symbol: str) -> str:
        base, quote, kind = parse_symbol(symbol)
        return f"FX_{base}_{quote}" if kind == "PERP" else f"{base}_{quote}"

    def tick_id(self, symbol: str) -> int:
        """The ``tick_id`` of the last ticker sent for ``symbol``."""
        return self._ticks[symbol]

    # --- publishing ---------------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times; send every subscriber its notifications."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                self._steps[symbol] += 1
                await self._deliver(self._step_frames(symbol, change))

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """The base contract (advances tick ids; use :meth:`publish`)."""
        return [p for channel, p in self._step_frames(symbol, change) if channel in conn.topics]

    async def _deliver(self, frames: list[tuple[str, str]]) -> None:
        if not frames or self.faults.silent:
            return
        for conn in list(self.connections.values()):
            for channel, payload in frames:
                if channel in conn.topics:
                    await self._send(conn, payload)

    @staticmethod
    def _note(channel: str, message: Any) -> tuple[str, str]:
        body = {"jsonrpc": "2.0", "method": "channelMessage", "params": {"channel": channel, "message": message}}
        return channel, dumps(body)

    def _levels(self, symbol: str, levels: Iterable[tuple[int, int]]) -> list[dict[str, float]]:
        m = self.markets[symbol]
        return [{"price": float(m.price_text(p)), "size": float(m.size_text(q))} for p, q in levels]

    def _board(
        self, symbol: str, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], name: str
    ) -> tuple[str, str]:
        m = self.markets[symbol]
        mid = float(m.price_text((m.best_bid() + m.best_ask()) // 2))
        message = {"mid_price": mid, "bids": self._levels(symbol, bids), "asks": self._levels(symbol, asks)}
        return self._note(name + self.natives[symbol], message)

    def snapshot_frame(self, symbol: str) -> tuple[str, str]:
        """The ``lightning_board_snapshot_{p}`` notification of the book now."""
        m = self.markets[symbol]
        self.snapshots_sent += 1
        return self._board(symbol, sorted(m.bids.items(), reverse=True), sorted(m.asks.items()), _PREFIXES[0])

    def _step_frames(self, symbol: str, change: Change) -> list[tuple[str, str]]:
        m = self.markets[symbol]
        native = self.natives[symbol]
        now = time.time_ns()
        frames: list[tuple[str, str]] = []
        trade = change.trade
        if trade is not None and not self.faults.take("drop_trades"):
            execution = {
                "id": 2_000_000_000 + 7 * trade.trade_id,
                "side": "BUY" if trade.side is Side.BUY else "SELL",
                "price": float(m.price_text(trade.price)),
                "size": float(m.size_text(trade.size)),
                "exec_date": _iso(now),
                "buy_child_order_acceptance_id": f"JRF-{trade.trade_id}-B",
                "sell_child_order_acceptance_id": f"JRF-{trade.trade_id}-S",
            }
            frames.append(self._note("lightning_executions_" + native, [execution]))
        frames += self._delta_frames(symbol, change)
        if self.snapshot_every and self._steps[symbol] % self.snapshot_every == 0:
            frames.append(self.snapshot_frame(symbol))
        self._ticks[symbol] += 1
        bb, ba = m.best_bid(), m.best_ask()
        ticker = {
            "product_code": native,
            "state": "RUNNING",
            "timestamp": _iso(now),
            "tick_id": self._ticks[symbol],
            "best_bid": float(m.price_text(bb)),
            "best_ask": float(m.price_text(ba)),
            "best_bid_size": float(m.size_text(m.bids[bb])),
            "best_ask_size": float(m.size_text(m.asks[ba])),
            "ltp": float(m.price_text(bb)),
            "volume": 1234.5,
        }
        frames.append(self._note("lightning_ticker_" + native, ticker))
        return frames

    def _delta_frames(self, symbol: str, change: Change) -> list[tuple[str, str]]:
        if not change.bids and not change.asks:
            return []
        frames = [self._board(symbol, change.bids, change.asks, _PREFIXES[1])]
        faults = self.faults
        if faults.take("skip_seq"):
            frames = []
        elif faults.take("duplicate"):
            frames = frames * 2
        if faults.take("crossed"):
            frames.append(self._board(symbol, [(self.markets[symbol].best_ask(), 1)], [], _PREFIXES[1]))
        held = self._held.pop(symbol, None)
        if held is not None:
            frames = frames + held
        elif frames and faults.take("reorder"):
            self._held[symbol] = frames
            frames = []
        return frames

    # --- JSON-RPC --------------------------------------------------------------------------------

    def _channel_symbol(self, channel: Any) -> str | None:
        if not isinstance(channel, str):
            return None
        for prefix in _PREFIXES:
            if channel.startswith(prefix):
                return self.by_native.get(channel[len(prefix) :])
        return None

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            method = msg["method"]
            req_id = msg.get("id")
            channel = msg["params"]["channel"]
        except Exception:
            error = {"code": -32700, "message": "Parse error"}
            await conn.send(dumps({"jsonrpc": "2.0", "id": None, "error": error}))
            return
        symbol = self._channel_symbol(channel)
        refusal = None
        if method not in ("subscribe", "unsubscribe"):
            refusal = "Method not found"
        elif symbol is None:
            refusal = f"unknown channel {channel!r}"
        elif method == "subscribe" and self.faults.reject_subscriptions:
            refusal = "mock fault: subscription refused"
        if refusal is not None:
            if req_id is not None:
                error = {"code": -32600, "message": refusal}
                await conn.send(dumps({"jsonrpc": "2.0", "id": req_id, "error": error}))
            return
        assert symbol is not None
        if method == "unsubscribe":
            conn.topics.discard(channel)
        else:
            conn.topics.add(channel)
        if req_id is not None:
            await conn.send(dumps({"jsonrpc": "2.0", "id": req_id, "result": True}))
        if method == "subscribe" and channel.startswith(_PREFIXES[0]) and not self.faults.silent:
            await self._send(conn, self.snapshot_frame(symbol)[1])

    # --- REST ----------------------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path != "/v1/getmarkets":
            return None
        rows = [
            {"product_code": native, "market_type": "FX" if native.startswith("FX_") else "Spot"}
            for native in self.natives.values()
        ]
        rows.append({"product_code": "BTCJPY27DEC2030", "alias": "BTCJPY_MAT3M", "market_type": "Futures"})
        return 200, dumps(rows).encode()
