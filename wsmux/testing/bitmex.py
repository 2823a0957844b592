"""A mock BitMEX realtime endpoint on 127.0.0.1: :class:`MockBitmex`.

It speaks the protocol of ``shared/exchanges/bitmex.md``: a ``{"info":
"Welcome..."}`` on connect, ``{"op":"subscribe","args":["table:SYMBOL",...]}``
answered per topic with ``{"success":true,"subscribe":topic,...}`` or
``{"status":400,"error":...}``, text ``ping``/``pong``, and per table:

* ``orderBookL2`` — a ``partial`` on subscribe (``keys``, ``filter``), then
  per market step one message per action: ``delete`` (``symbol``, ``id``,
  ``side``), ``insert`` (with ``price`` and ``size``), ``update`` (the new
  ``size``). Level ids are composite of price and symbol, like the venue's.
  With ``update_prices=True`` updates and deletes also carry ``price`` (the
  sheet's unconfirmed reading of the current API).
* ``trade`` — an empty history ``partial``, then each market trade
  (``trdMatchID`` a UUID built from the trade id).
* ``quote`` — the current quote as ``partial``, then inserts when the best
  bid/ask changes.
* ``instrument`` — ``partial`` with ``openInterest`` and ``markPrice``, then an ``update``
  every 10 steps; ``funding`` — an insert every 50 steps (perpetuals);
  ``liquidation`` — every third trade also inserts a liquidation order;
  ``tradeBin1m`` — a closed bin every 20 steps (mock minutes).

Sizes are whole contracts (a lot is 1): inverse contracts (``XBTUSD``)
count USD. REST: ``/api/v1/instrument/active``.

Faults (``mock.faults``), applied to book messages: ``skip_seq`` (the next
``insert`` message is lost; the adapter notices when a lost level is later
updated or deleted), ``duplicate`` (the next ``insert`` is sent twice),
``reorder`` (the next book message is held back and sent after the next
one), ``crossed`` (an extra insert puts a bid at the best ask), plus
``drop_trades``, ``reject_subscriptions`` and the base faults. BitMEX has
no sequence numbers or checksums: a lost ``update`` is not detectable, which
is why the book's integrity is UNVERIFIABLE.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.bitmex import MONTH_CODES, bitmex_symbol
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockBitmex"]

_T0_MS = 1_700_000_000_000
_TABLES = frozenset({"orderBookL2", "trade", "quote", "instrument", "funding", "liquidation", "tradeBin1m"})
_DERIVATIVE_TABLES = frozenset({"instrument", "funding", "liquidation"})
_BIN_STEPS = 20

View = dict[int, int]  # price ticks -> size lots


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class MockBitmex(MockExchange):
    """Mock BitMEX realtime endpoint. See the module docstring.

    Args:
        symbols: unified symbols to list (``BTC-USD-PERP``, ``SOL-USDT-PERP``,
            dated futures, ``BTC-USDT`` spot).
        update_prices: also send ``price`` on ``update`` and ``delete`` rows.
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "bitmex"
    ws_path: ClassVar[str] = "/realtime"
    tick: ClassVar[str] = "0.5"
    lot: ClassVar[str] = "1"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        update_prices: bool = False,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.update_prices = update_prices
        self.native = {s: bitmex_symbol(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self._ms = _T0_MS
        self._bins: dict[str, list[float]] = {}

    def _now(self) -> str:
        self._ms += 1
        return _iso(self._ms)

    def level_id(self, symbol: str, price: int) -> int:
        """The venue-style id of a price level: composite of symbol and price."""
        return 10**10 * (self.symbols.index(symbol) + 1) - price

    # --- client messages ----------------------------------------------------------------

    async def on_open(self, conn: MockConnection) -> None:
        welcome = {
            "info": "Welcome to the BitMEX Realtime API.",
            "version": "mock",
            "timestamp": self._now(),
            "docs": "https://www.bitmex.com/app/wsAPI",
            "limit": {"remaining": 39},
        }
        await conn.send(dumps(welcome))

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        if message in ("ping", b"ping"):
            await conn.send("pong")
            return
        try:
            msg = loads(message)
            op = msg["op"]
            args = msg["args"]
            if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
                raise ValueError(op)
        except Exception:
            await conn.send(dumps({"status": 400, "error": f"Unknown command: {message!r:.80}", "meta": {}}))
            return
        for arg in args:
            topic = self._topic(arg)
            if topic is None or (op == "subscribe" and self.faults.reject_subscriptions):
                error = {"status": 400, "error": f"Unknown or expired symbol/table: {arg}", "meta": {}, "request": msg}
                await conn.send(dumps(error))
                continue
            await conn.send(dumps({"success": True, op: arg, "request": msg}))
            if op == "unsubscribe":
                conn.topics.discard(topic)
                continue
            conn.topics.add(topic)
            await conn.send(self._partial(conn, *topic))

    def _topic(self, arg: Any) -> tuple[str, str] | None:
        if not isinstance(arg, str):
            return None
        table, _, native = arg.partition(":")
        symbol = self.unified.get(native)
        if table not in _TABLES or symbol is None:
            return None
        if table in _DERIVATIVE_TABLES and "_" in native:
            return None
        if table == "funding" and parse_symbol(symbol)[2] != "PERP":
            return None
        return table, native

    # --- tables -----------------------------------------------------------------------

    def _partial(self, conn: MockConnection, table: str, native: str) -> str:
        symbol = self.unified[native]
        market = self.markets[symbol]
        data: list[dict[str, Any]] = []
        if table == "orderBookL2":
            views: dict[str, tuple[View, View]] = conn.state.setdefault("books", {})
            bids, asks = dict(market.bids), dict(market.asks)
            views[native] = (bids, asks)
            rows = [(p, s, "Sell") for p, s in sorted(asks.items(), reverse=True)]
            rows += [(p, s, "Buy") for p, s in sorted(bids.items(), reverse=True)]
            data = [
                {"symbol": native, "id": self.level_id(symbol, p), "side": side, "size": s, "price": market.price(p)}
                for p, s, side in rows
            ]
        elif table == "quote":
            data = [self._quote_row(native, market)]
        elif table == "instrument":
            data = [self._instrument_row(native, market)]
        return dumps(
            {
                "table": table,
                "action": "partial",
                "keys": ["symbol", "id", "side"] if table == "orderBookL2" else [],
                "types": {},
                "filter": {"symbol": native},
                "data": data,
            }
        )

    def _book_messages(self, conn: MockConnection, symbol: str, native: str, change: Change) -> list[str]:
        market = self.markets[symbol]
        views: dict[str, tuple[View, View]] = conn.state.setdefault("books", {})
        bids, asks = views[native]
        actions: dict[str, list[dict[str, Any]]] = {"delete": [], "insert": [], "update": []}
        for view, changes, side in ((bids, change.bids, "Buy"), (asks, change.asks, "Sell")):
            for price, size in changes:
                row: dict[str, Any] = {"symbol": native, "id": self.level_id(symbol, price), "side": side}
                if not size:
                    if view.pop(price, None) is None:
                        continue
                    action = "delete"
                else:
                    action = "update" if price in view else "insert"
                    view[price] = size
                    row["size"] = size
                if action == "insert" or self.update_prices:
                    row["price"] = market.price(price)
                actions[action].append(row)
        faults = self.faults
        out: list[str] = []
        for action, rows in actions.items():
            if not rows:
                continue
            message = dumps({"table": "orderBookL2", "action": action, "data": rows})
            if action == "insert" and faults.take("skip_seq"):
                continue  # lost on the way
            out.append(message)
            if action == "insert" and faults.take("duplicate"):
                out.append(message)
        if faults.take("crossed"):
            best_ask = min(asks)
            bids[best_ask] = 1
            row = {"symbol": native, "id": self.level_id(symbol, best_ask), "side": "Buy", "size": 1}
            row["price"] = market.price(best_ask)
            out.append(dumps({"table": "orderBookL2", "action": "insert", "data": [row]}))
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[native] = out.pop(0)
        elif out and native in held:
            out.insert(1, held.pop(native))
        return out

    def _quote_row(self, native: str, market: Market) -> dict[str, Any]:
        bb, ba = market.best_bid(), market.best_ask()
        return {
            "timestamp": self._now(),
            "symbol": native,
            "bidSize": market.bids[bb],
            "bidPrice": market.price(bb),
            "askPrice": market.price(ba),
            "askSize": market.asks[ba],
        }

    def _instrument_row(self, native: str, market: Market) -> dict[str, Any]:
        return {
            "symbol": native,
            "openInterest": 500_000 + 37 * market.next_trade_id,
            "markPrice": market.price((market.best_bid() + market.best_ask()) // 2),
            "timestamp": self._now(),
        }

    def _trade(self, native: str, market: Market, trade: MarketTrade) -> str:
        row = {
            "timestamp": self._now(),
            "symbol": native,
            "side": "Buy" if trade.side is Side.BUY else "Sell",
            "size": trade.size,
            "price": market.price(trade.price),
            "tickDirection": "PlusTick",
            "trdMatchID": f"00000000-0000-4000-8000-{trade.trade_id:012d}",
            "grossValue": 0,
            "homeNotional": 0.0,
            "foreignNotional": 0.0,
        }
        return dumps({"table": "trade", "action": "insert", "data": [row]})

    def _liquidation(self, native: str, market: Market, trade: MarketTrade) -> str:
        row = {
            "orderID": f"liq-{trade.trade_id}",
            "symbol": native,
            "side": "Buy" if trade.side is Side.BUY else "Sell",
            "price": market.price(trade.price),
            "leavesQty": trade.size,
        }
        return dumps({"table": "liquidation", "action": "insert", "data": [row]})

    def _bin(self, symbol: str, native: str, n: int) -> str | None:
        candle = self._bins.pop(symbol, None)
        if candle is None:
            return None
        row = {
            "timestamp": _iso(_T0_MS + (n // _BIN_STEPS) * 60_000),
            "symbol": native,
            "open": candle[0],
            "high": candle[1],
            "low": candle[2],
            "close": candle[3],
            "trades": 1,
            "volume": candle[4],
        }
        return dumps({"table": "tradeBin1m", "action": "insert", "data": [row]})

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        native = self.native[symbol]
        market = self.markets[symbol]
        topics = conn.topics
        out: list[str | bytes] = []
        if ("orderBookL2", native) in topics:
            out.extend(self._book_messages(conn, symbol, native, change))
        if ("quote", native) in topics:
            row = self._quote_row(native, market)
            key = (row["bidPrice"], row["bidSize"], row["askPrice"], row["askSize"])
            last: dict[str, Any] = conn.state.setdefault("quote", {})
            if last.get(native) != key:
                last[native] = key
                out.append(dumps({"table": "quote", "action": "insert", "data": [row]}))
        trade = change.trade
        if trade is not None:
            price = market.price(trade.price)
            candle = self._bins.setdefault(symbol, [price, price, price, price, 0.0])
            candle[1], candle[2], candle[3] = max(candle[1], price), min(candle[2], price), price
            candle[4] += trade.size
            if ("trade", native) in topics and not self.faults.take("drop_trades"):
                out.append(self._trade(native, market, trade))
            if trade.trade_id % 3 == 0 and ("liquidation", native) in topics:
                out.append(self._liquidation(native, market, trade))
        steps: dict[str, int] = conn.state.setdefault("steps", {})
        steps[native] = n = steps.get(native, 0) + 1
        if n % 10 == 0 and ("instrument", native) in topics:
            row = self._instrument_row(native, market)
            out.append(dumps({"table": "instrument", "action": "update", "data": [row]}))
        if n % 50 == 0 and ("funding", native) in topics:
            rate = (10 + market.next_trade_id % 90) / 1_000_000
            row = {
                "timestamp": self._now(),
                "symbol": native,
                "fundingInterval": "2000-01-01T08:00:00.000Z",
                "fundingRate": rate,
                "fundingRateDaily": rate * 3,
            }
            out.append(dumps({"table": "funding", "action": "insert", "data": [row]}))
        if n % _BIN_STEPS == 0 and ("tradeBin1m", native) in topics:
            message = self._bin(symbol, native, n)
            if message is not None:
                out.append(message)
        return out

    # --- REST -------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /api/v1/instrument/active``."""
        if path != "/api/v1/instrument/active":
            return None
        return 200, dumps([self._instrument(s) for s in self.symbols]).encode()

    def _instrument(self, symbol: str) -> dict[str, Any]:
        base, quote, kind = parse_symbol(symbol)
        native = self.native[symbol]
        inverse = base == "BTC" and quote == "USD" and kind is not None
        row: dict[str, Any] = {
            "symbol": native,
            "underlying": "XBT" if base == "BTC" else base,
            "quoteCurrency": "XBT" if quote == "BTC" else quote,
            "tickSize": float(self.tick),
            "lotSize": 1,
            "isInverse": inverse,
            "isQuanto": False,
            "underlyingToPositionMultiplier": None if inverse else 1000,
            "state": "Open",
            "expiry": None,
        }
        if kind is None:
            row["typ"] = "IFXXXP"
        elif kind == "PERP":
            row["typ"] = "FFWCSX"
        else:
            row["typ"] = "FFCCSX"
            row["expiry"] = f"{kind[:4]}-{kind[4:6]}-{kind[6:]}T12:00:00.000Z"
            assert native.endswith(MONTH_CODES[int(kind[4:6]) - 1] + kind[2:4])
        return row
