"""A mock Bitstamp WebSocket API v2 (and REST order book) on 127.0.0.1: :class:`MockBitstamp`.

It speaks the protocol of ``shared/exchanges/bitstamp.md``:
``{"event":"bts:subscribe","data":{"channel":..}}`` answered with
``bts:subscription_succeeded`` (or ``bts:error`` for an unknown channel or
under the ``reject_subscriptions`` fault), ``bts:unsubscribe``, and
``bts:heartbeat`` answered in order (tests synchronise on it). Channels:

* ``diff_order_book_{pair}`` — one ``data`` message per market step with the
  changed levels (absolute amounts, ``"0.00000000"`` deletes).
* ``live_orders_{pair}`` — the order events behind each step. The mock keeps
  one order per price level: a new level is ``order_created``, a level whose
  amount changes is ``order_changed`` (remaining amount), a level that goes is
  ``order_deleted``.
* ``live_trades_{pair}`` — each market trade (``type`` 0: the taker bought).

All messages of one step share its ``microtimestamp`` (the venue's only
ordering): steps are 1 ms apart. REST: ``GET /api/v2/order_book/{pair}/``
(``group=2``: ``[price, amount, order_id]``) with the ``microtimestamp`` of the
last step, and ``GET /api/v2/trading-pairs-info/``.

Faults (``mock.faults``) on ``diff_order_book`` messages: ``skip_seq`` (a diff
is lost), ``duplicate``, ``reorder`` (these three are undetectable by design:
the feed is UNVERIFIABLE), ``crossed`` (an extra diff puts a bid at the best
ask: detected); plus ``garbage``, ``silent``, ``reject_subscriptions`` and the
REST faults ``snapshot_status`` / ``snapshot_garbage`` / ``snapshot_delay``.
``bad_checksum`` has nothing to corrupt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.bitstamp import bitstamp_symbol
from wsmux.model import Side
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockBitstamp"]

_T0_US = 1_700_000_000_000_000
_STEP_US = 1_000
_ORDER_ID0 = 1_443_875_700_000_000
_PREFIXES = ("diff_order_book_", "live_orders_", "live_trades_")


class _Orders:
    """One order per price level of a market, and the events of the last step."""

    def __init__(self, market: Market, next_id: int) -> None:
        self.next_id = next_id
        self.bids = {p: self._new() for p in market.bids}
        self.asks = {p: self._new() for p in market.asks}
        self.change: Change | None = None
        self.events: list[tuple[str, int, int, int, int]] = []  # (event, order_id, order_type, price, lots)

    def _new(self) -> int:
        self.next_id += 1
        return self.next_id

    def step(self, change: Change) -> None:
        """Turn one market step into order events (once per step)."""
        if change is self.change:
            return
        self.change = change
        self.events = []
        for order_type, side, levels in ((0, self.bids, change.bids), (1, self.asks, change.asks)):
            for price, lots in levels:
                order_id = side.get(price)
                if lots == 0:
                    if order_id is not None:
                        del side[price]
                        self.events.append(("order_deleted", order_id, order_type, price, 0))
                elif order_id is None:
                    order_id = side[price] = self._new()
                    self.events.append(("order_created", order_id, order_type, price, lots))
                else:
                    self.events.append(("order_changed", order_id, order_type, price, lots))


class MockBitstamp(MockExchange):
    """Mock Bitstamp WebSocket API v2. See the module docstring."""

    venue: ClassVar[str] = "bitstamp"

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
        self.native = {s: bitstamp_symbol(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self.orders = {s: _Orders(self.markets[s], _ORDER_ID0 + 10_000_000 * i) for i, s in enumerate(self.symbols)}
        self.micros = dict.fromkeys(self.symbols, _T0_US)
        """The microtimestamp of each symbol's last step."""
        self._trade_id = 216_000_000
        self.acks = 0
        """Subscriptions acknowledged so far (all connections)."""
        self.acked = asyncio.Event()
        """Set at every acknowledged subscription (tests clear and wait on it)."""

    async def wait_acks(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` subscriptions were acknowledged in all."""
        async with asyncio.timeout(timeout):
            while self.acks < count:
                self.acked.clear()
                await self.acked.wait()

    # --- client messages -------------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            event = msg["event"]
        except Exception:
            await conn.send(
                dumps({"event": "bts:error", "channel": "", "data": {"code": None, "message": "Bad message"}})
            )
            return
        if event == "bts:heartbeat":
            await conn.send(dumps({"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}}))
            return
        channel = (msg.get("data") or {}).get("channel") if isinstance(msg.get("data"), dict) else None
        if event not in ("bts:subscribe", "bts:unsubscribe") or not self._known(channel):
            error = {"code": None, "message": "Bad subscription string."}
            await conn.send(dumps({"event": "bts:error", "channel": channel or "", "data": error}))
            return
        if event == "bts:unsubscribe":
            conn.topics.discard(channel)
            await conn.send(dumps({"event": "bts:unsubscription_succeeded", "channel": channel, "data": {}}))
            return
        if self.faults.reject_subscriptions:
            error = {"code": None, "message": "Bad subscription string."}
            await conn.send(dumps({"event": "bts:error", "channel": channel, "data": error}))
            return
        conn.topics.add(channel)
        await conn.send(dumps({"event": "bts:subscription_succeeded", "channel": channel, "data": {}}))
        self.acks += 1
        self.acked.set()

    def _known(self, channel: Any) -> bool:
        if not isinstance(channel, str):
            return False
        return any(channel.startswith(p) and channel[len(p) :] in self.unified for p in _PREFIXES)

    # --- publishing --------------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance the markets (each step 1 ms later) and send the changes."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                self._advance(symbol, change)  # also without connections: the orders follow the market
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    for message in self.render(conn, symbol, change):
                        await self._send(conn, message)

    def _advance(self, symbol: str, change: Change) -> None:
        """Move the symbol's clock (1 ms) and orders to ``change``, once per
        market step whatever the number of connections rendering it."""
        orders = self.orders[symbol]
        if orders.change is not change:
            self.micros[symbol] += _STEP_US
            orders.step(change)

    def _stamp(self, symbol: str) -> dict[str, str]:
        micros = self.micros[symbol]
        return {"timestamp": str(micros // 1_000_000), "microtimestamp": str(micros)}

    def _diffs(self, conn: MockConnection, symbol: str, native: str, change: Change) -> list[str]:
        market = self.markets[symbol]
        faults = self.faults
        updates: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]] = []
        if change.bids or change.asks:
            updates.append((list(change.bids), list(change.asks)))
        if faults.take("crossed"):
            updates.append(([(market.best_ask(), 1)], []))
        out: list[str] = []
        for bids, asks in updates:
            if faults.take("skip_seq"):
                continue
            data = {
                **self._stamp(symbol),
                "bids": [[market.price_text(p), market.size_text(q)] for p, q in bids],
                "asks": [[market.price_text(p), market.size_text(q)] for p, q in asks],
            }
            message = dumps({"data": data, "channel": f"diff_order_book_{native}", "event": "data"})
            out.append(message)
            if faults.take("duplicate"):
                out.append(message)
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[symbol] = out.pop(0)
        elif out and symbol in held:
            out.insert(1, held.pop(symbol))
        return out

    def _order_events(self, symbol: str, native: str) -> list[str]:
        market = self.markets[symbol]
        stamp = self._stamp(symbol)
        out = []
        for event, order_id, order_type, price, lots in self.orders[symbol].events:
            data = {
                "id": order_id,
                "id_str": str(order_id),
                "order_type": order_type,
                "datetime": stamp["timestamp"],
                "microtimestamp": stamp["microtimestamp"],
                "amount": market.size(lots),
                "amount_str": market.size_text(lots),
                "price": market.price(price),
                "price_str": market.price_text(price),
            }
            out.append(dumps({"data": data, "channel": f"live_orders_{native}", "event": event}))
        return out

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        self._advance(symbol, change)
        native = self.native[symbol]
        topics = conn.topics
        market = self.markets[symbol]
        out: list[str | bytes] = []
        if f"diff_order_book_{native}" in topics:
            out.extend(self._diffs(conn, symbol, native, change))
        if f"live_orders_{native}" in topics:
            out.extend(self._order_events(symbol, native))
        trade = change.trade
        if trade is not None and f"live_trades_{native}" in topics and not self.faults.take("drop_trades"):
            self._trade_id += 1
            data = {
                "id": self._trade_id,
                **self._stamp(symbol),
                "amount": market.size(trade.size),
                "amount_str": market.size_text(trade.size),
                "price": market.price(trade.price),
                "price_str": market.price_text(trade.price),
                "type": 0 if trade.side is Side.BUY else 1,
                "buy_order_id": _ORDER_ID0 + 2 * trade.trade_id,
                "sell_order_id": _ORDER_ID0 + 2 * trade.trade_id + 1,
            }
            out.append(dumps({"data": data, "channel": f"live_trades_{native}", "event": "trade"}))
        return out

    # --- REST -----------------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``/api/v2/order_book/{pair}/`` and ``/api/v2/trading-pairs-info/``."""
        if path == "/api/v2/trading-pairs-info/":
            pairs = [
                {
                    "name": symbol.replace("-", "/"),
                    "url_symbol": native,
                    "base_decimals": len(self.lot.split(".")[1]) if "." in self.lot else 0,
                    "counter_decimals": len(self.tick.split(".")[1]) if "." in self.tick else 0,
                    "trading": "Enabled",
                }
                for symbol, native in self.native.items()
            ]
            return 200, dumps(pairs).encode()
        prefix = "/api/v2/order_book/"
        if not path.startswith(prefix):
            return None
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"status":"error","reason":"mock fault","code":"API0000"}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'{"timestamp":"1","bids":[['
        symbol = self.unified.get(path[len(prefix) :].strip("/"))
        if symbol is None:
            return 404, b'{"status":"error","reason":"Not found","code":"API0001"}'
        market = self.markets[symbol]
        book: dict[str, Any] = self._stamp(symbol)
        if query.get("group") == "2":
            orders = self.orders[symbol]
            book["bids"] = [
                [market.price_text(p), market.size_text(q), str(orders.bids[p])]
                for p, q in sorted(market.bids.items())[::-1]
            ]
            book["asks"] = [
                [market.price_text(p), market.size_text(q), str(orders.asks[p])] for p, q in sorted(market.asks.items())
            ]
        else:
            book["bids"] = [[market.price_text(p), market.size_text(q)] for p, q in sorted(market.bids.items())[::-1]]
            book["asks"] = [[market.price_text(p), market.size_text(q)] for p, q in sorted(market.asks.items())]
        return 200, dumps(book).encode()
