"""A mock Poloniex v3 public WebSocket on 127.0.0.1: :class:`MockPoloniex`
(spot, ``/ws/public``) and :class:`MockPoloniexFutures` (futures V3,
``/ws/v3/public``).

It speaks the protocol of ``shared/exchanges/poloniex.md``:
``{"event":"subscribe","channel":[..],"symbols":[..]}`` answered with one
``{"event":"subscribe","channel":..,"symbols":[..]}`` ack per channel (or
``{"event":"error","message":..}``), ``{"event":"ping"}`` → ``{"event":"pong"}``,
and per channel:

* ``book_lv2`` — a ``snapshot`` of the top 20 levels on subscribe, then an
  ``update`` whenever they change, naming the previous ``id`` (spot
  ``lastId``; futures ``lid``). Futures sizes are contracts (one lot of the
  market each: ``ctVal`` is the market's lot).
* ``book`` (depth 5) — a top-5 snapshot whenever the best levels change.
* ``trades`` — each market trade (spot ``takerSide``/``quantity``/``amount``;
  futures ``side``/``px``/``qty``).
* ``candles_minute_1`` (spot) — the forming candle, per trade.
* ``funding_rate`` (futures) — on subscribe, then every 10 steps.

REST: ``/markets`` (spot), ``/v3/market/allInstruments`` (futures).
``conn.state["seq"][symbol]`` is the last book ``id`` rendered.

Faults (``mock.faults``) on ``book_lv2`` updates: ``skip_seq``, ``duplicate``,
``reorder``, ``crossed`` (see :class:`~wsmux.testing._views.BookView`), plus
``garbage``, ``silent`` and ``reject_subscriptions``. No checksum exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.poloniex import BOOK_DEPTH, QUOTE_DEPTH, poloniex_symbol
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange
from wsmux.testing._views import BookView, Levels

__all__ = ["MockPoloniex", "MockPoloniexFutures"]

_ID_START = 4_485_000
_T0_MS = 1_700_000_000_000


class MockPoloniex(MockExchange):
    """Mock Poloniex spot v3 public WebSocket. See the module docstring."""

    venue: ClassVar[str] = "poloniex"
    ws_path: ClassVar[str] = "/ws/public"
    futures: ClassVar[bool] = False
    symbol_key: ClassVar[str] = "symbol"
    prev_key: ClassVar[str] = "lastId"
    channels: ClassVar[frozenset[str]] = frozenset({"book_lv2", "book", "trades", "candles_minute_1"})

    def __init__(
        self, symbols: Iterable[str], *, seed: int = 1, rate: float = 10.0, host: str = "127.0.0.1", levels: int = 50
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.native = {s: poloniex_symbol(s, futures=self.futures) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self._ms = _T0_MS
        self._candles: dict[str, list[int]] = {}  # open, high, low, close (ticks), volume (lots)

    def _now(self) -> int:
        self._ms += 1
        return self._ms

    # --- client messages ----------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            event = msg["event"]
        except Exception:
            await conn.send(dumps({"event": "error", "message": "Invalid request"}))
            return
        if event == "ping":
            await conn.send(dumps({"event": "pong"}))
            return
        channels, symbols = msg.get("channel"), msg.get("symbols")
        if event not in ("subscribe", "unsubscribe") or not isinstance(channels, list) or not isinstance(symbols, list):
            await conn.send(dumps({"event": "error", "message": f"Invalid request: {event}"}))
            return
        for channel in channels:
            bad = [s for s in symbols if s not in self.unified]
            if channel not in self.channels or bad or (event == "subscribe" and self.faults.reject_subscriptions):
                await conn.send(dumps({"event": "error", "message": f"Subscription failed: {channel} {bad}"}))
                continue
            await conn.send(dumps({"event": event, "channel": channel, "symbols": symbols}))
            for native in symbols:
                topic = (channel, native)
                if event == "unsubscribe":
                    conn.topics.discard(topic)
                    continue
                conn.topics.add(topic)
                await self._on_subscribed(conn, channel, native)

    async def _on_subscribed(self, conn: MockConnection, channel: str, native: str) -> None:
        symbol = self.unified[native]
        if channel == "book_lv2":
            await conn.send(self._snapshot(conn, symbol))
        elif channel == "funding_rate":
            await conn.send(self._funding(symbol))

    # --- books ----------------------------------------------------------------------

    def _view(self, conn: MockConnection, symbol: str) -> BookView:
        views: dict[str, BookView] = conn.state.setdefault("books", {})
        view = views.get(symbol)
        if view is None:
            view = views[symbol] = BookView(_ID_START + 10_000 * len(views), BOOK_DEPTH)
        return view

    def _size(self, market: Market, lots: int) -> str:
        return market.size_text(lots)

    def _levels(self, market: Market, changes: Levels) -> list[list[str]]:
        return [[market.price_text(p), self._size(market, s) if s else "0"] for p, s in changes]

    def _book_message(self, symbol: str, action: str, bids: Levels, asks: Levels, prev: int, seq: int) -> str:
        market = self.markets[symbol]
        now = self._now()
        entry = {
            self.symbol_key: self.native[symbol],
            "createTime" if not self.futures else "cT": now,
            "asks": self._levels(market, asks),
            "bids": self._levels(market, bids),
            self.prev_key: prev,
            "id": seq,
            "ts": now,
        }
        return dumps({"channel": "book_lv2", "data": [entry], "action": action})

    def _snapshot(self, conn: MockConnection, symbol: str) -> str:
        view = self._view(conn, symbol)
        bids, asks = view.reset(self.markets[symbol])
        prev, view.seq = view.seq, view.seq + 1
        conn.state.setdefault("seq", {})[symbol] = view.seq
        return self._book_message(symbol, "snapshot", bids, asks, prev, view.seq)

    def _book_updates(self, conn: MockConnection, symbol: str) -> list[str]:
        view = self._view(conn, symbol)

        def render(bids: Levels, asks: Levels, prev: int, seq: int) -> str:
            return self._book_message(symbol, "update", bids, asks, prev, seq)

        out = view.updates(self.markets[symbol], self.faults, render)
        conn.state.setdefault("seq", {})[symbol] = view.seq
        return out

    # --- other channels -------------------------------------------------------------

    def _quote(self, conn: MockConnection, symbol: str) -> list[str]:
        market = self.markets[symbol]
        bids = sorted(market.bids.items(), reverse=True)[:QUOTE_DEPTH]
        asks = sorted(market.asks.items())[:QUOTE_DEPTH]
        last: dict[str, Any] = conn.state.setdefault("quote", {})
        if last.get(symbol) == (bids, asks):
            return []
        last[symbol] = (bids, asks)
        seq = conn.state["quote_id"] = conn.state.get("quote_id", 0) + 1
        now = self._now()
        entry = {
            self.symbol_key: self.native[symbol],
            "createTime" if not self.futures else "cT": now,
            "asks": self._levels(market, asks),
            "bids": self._levels(market, bids),
            "id": seq,
            "ts": now,
        }
        return [dumps({"channel": "book", "data": [entry]})]

    def _trade(self, symbol: str, trade: Any) -> str:
        market = self.markets[symbol]
        now = self._now()
        entry = {
            "symbol": self.native[symbol],
            "amount": market.price_text(trade.price),  # the quote notional (not the size)
            "quantity": market.size_text(trade.size),
            "takerSide": trade.side.value,
            "createTime": now,
            "price": market.price_text(trade.price),
            "id": str(60_184_000 + trade.trade_id),
            "ts": now,
        }
        return dumps({"channel": "trades", "data": [entry]})

    def _candle(self, symbol: str) -> str:
        market = self.markets[symbol]
        o, h, low, c, volume = self._candles[symbol]
        now = self._now()
        start = _T0_MS - _T0_MS % 60_000
        entry = {
            "symbol": self.native[symbol],
            "amount": "0",
            "high": market.price_text(h),
            "quantity": market.size_text(volume),
            "tradeCount": 1,
            "low": market.price_text(low),
            "closeTime": start + 59_999,
            "startTime": start,
            "close": market.price_text(c),
            "open": market.price_text(o),
            "ts": now,
        }
        return dumps({"channel": "candles_minute_1", "data": [entry]})

    def _funding(self, symbol: str) -> str:
        raise NotImplementedError

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        native = self.native[symbol]
        topics = conn.topics
        out: list[str | bytes] = []
        if ("book_lv2", native) in topics:
            out.extend(self._book_updates(conn, symbol))
        if ("book", native) in topics:
            out.extend(self._quote(conn, symbol))
        trade = change.trade
        if trade is not None:
            candle = self._candles.setdefault(symbol, [trade.price, trade.price, trade.price, trade.price, 0])
            candle[1] = max(candle[1], trade.price)
            candle[2] = min(candle[2], trade.price)
            candle[3] = trade.price
            candle[4] += trade.size
            if ("trades", native) in topics:
                out.append(self._trade(symbol, trade))
            if ("candles_minute_1", native) in topics:
                out.append(self._candle(symbol))
        steps: dict[str, int] = conn.state.setdefault("steps", {})
        steps[symbol] = n = steps.get(symbol, 0) + 1
        if n % 10 == 0 and ("funding_rate", native) in topics:
            out.append(self._funding(symbol))
        return out

    # --- REST -------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /markets`` (poloniex.md, "Endpoints")."""
        if path != "/markets":
            return None
        items = []
        for symbol, native in self.native.items():
            market = self.markets[symbol]
            base, quote = symbol.split("-")[:2]
            limits = {
                "symbol": native,
                "priceScale": len(market.tick.partition(".")[2]),
                "quantityScale": len(market.lot.partition(".")[2]),
                "amountScale": 2,
                "minQuantity": market.lot,
                "minAmount": "1",
            }
            items.append(
                {
                    "symbol": native,
                    "baseCurrencyName": base,
                    "quoteCurrencyName": quote,
                    "state": "NORMAL",
                    "symbolTradeLimit": limits,
                }
            )
        return 200, dumps(items).encode()


class MockPoloniexFutures(MockPoloniex):
    """Mock Poloniex futures V3 public WebSocket (``/ws/v3/public``)."""

    venue: ClassVar[str] = "poloniex-futures"
    ws_path: ClassVar[str] = "/ws/v3/public"
    futures: ClassVar[bool] = True
    symbol_key: ClassVar[str] = "s"
    prev_key: ClassVar[str] = "lid"
    channels: ClassVar[frozenset[str]] = frozenset({"book_lv2", "book", "trades", "funding_rate"})

    def _size(self, market: Market, lots: int) -> str:
        return str(lots)  # contracts: one lot each (ctVal = the market's lot)

    def _trade(self, symbol: str, trade: Any) -> str:
        market = self.markets[symbol]
        now = self._now()
        entry = {
            "id": trade.trade_id,
            "ts": now,
            "s": self.native[symbol],
            "px": market.price_text(trade.price),
            "qty": str(trade.size),
            "amt": "0",
            "side": trade.side.value,
            "cT": now,
        }
        return dumps({"channel": "trades", "data": [entry]})

    def _funding(self, symbol: str) -> str:
        market = self.markets[symbol]
        now = self._now()
        entry = {
            "s": self.native[symbol],
            "fR": f"0.000{10 + market.next_trade_id % 90}",
            "fT": _T0_MS + 8 * 3_600_000,
            "ts": now,
        }
        return dumps({"channel": "funding_rate", "data": [entry]})

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /v3/market/allInstruments`` (poloniex.md; field names unconfirmed)."""
        if path != "/v3/market/allInstruments":
            return None
        items = [
            {
                "symbol": native,
                "tSz": self.markets[symbol].tick,
                "lSz": "1",
                "minSz": "1",
                "ctVal": self.markets[symbol].lot,
                "status": "OPEN",
            }
            for symbol, native in self.native.items()
        ]
        return 200, dumps({"code": 200, "msg": "Success", "data": items}).encode()
