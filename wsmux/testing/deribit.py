"""A mock Deribit JSON-RPC v2 endpoint on 127.0.0.1: :class:`MockDeribit`.

It speaks the protocol of ``shared/exchanges/deribit.md``: JSON-RPC requests
answered by ``id`` with ``result`` or ``error``; ``public/subscribe`` /
``public/unsubscribe`` answer with the channels (un)subscribed (an unknown
channel is left out of the answer); ``public/test`` answers
``{"version":..}``; ``public/auth`` checks a ``client_signature`` when the mock
is given the :class:`~wsmux.credentials.Credentials` to expect;
``public/set_heartbeat`` makes the mock send ``heartbeat`` notifications every
``heartbeat_every`` steps. ``raw`` channels are refused with error ``13778``
on a connection that has not authenticated. Market data are notifications
``{"method":"subscription","params":{"channel":..,"data":..}}``:

* ``book.{inst}.{interval}`` — a ``snapshot`` on subscribe (``change_id``),
  then one ``change`` per market step whose ``prev_change_id`` is the previous
  ``change_id`` (ids grow by 1 to 5, like the venue's global counter); entries
  ``[action, price, amount]`` with ``new`` / ``change`` / ``delete``.
* ``trades.{inst}.{interval}`` — each market trade (``direction`` = taker
  side, ``trade_seq`` = the trade id); every third one is a liquidation
  (``"T"`` for odd ids, ``"M"`` for even ones).
* ``quote.{inst}`` — the best bid/ask whenever it changes.
* ``ticker.{inst}.{interval}`` — on subscribe and every 10 steps (funding for
  perpetuals, open interest, mark price).
* ``chart.trades.{inst}.1`` — the forming one-minute candle after each trade.

Prices and amounts are JSON numbers. Inverse instruments (``BTC-USD-PERP``,
``BTC-USD-YYYYMMDD``) count amounts in USD (a lot is 10 USD), the others in
the base coin. ``conn.state["seq"][symbol]`` is the last ``change_id``
rendered for a connection's book. REST: ``/api/v2/public/get_instruments`` and
``/api/v2/public/get_order_book``.

Faults (``mock.faults``), applied to book changes: ``skip_seq`` (a change is
lost: the next one's ``prev_change_id`` names it), ``duplicate`` (sent twice),
``reorder`` (held back and sent after the next one), ``crossed`` (an extra
change puts a bid at the best ask); ``drop_trades``; ``reject_subscriptions``
(an error answer); ``snapshot_status`` / ``snapshot_garbage`` for the REST
book; and the base faults (``garbage``, ``silent``). ``bad_checksum`` has
nothing to corrupt: Deribit sends no checksum.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.credentials import Credentials
from wsmux.exchanges.deribit import deribit_symbol, is_inverse
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockDeribit"]

_CHANGE_ID_START = 33_195_894_000
_T0_MS = 1_700_000_000_000
_INVERSE_LOT = "10"
_INTERVALS = frozenset({"raw", "100ms", "agg2"})

View = dict[int, int]  # price ticks -> size lots


class _Book:
    """What one connection's client should hold for one instrument."""

    __slots__ = ("asks", "bids", "change_id")

    def __init__(self, change_id: int) -> None:
        self.change_id = change_id
        self.bids: View = {}
        self.asks: View = {}


class MockDeribit(MockExchange):
    """Mock Deribit v2 endpoint. See the module docstring.

    Args:
        symbols: unified symbols to list (spot ``BTC-USDC``, ``-PERP``, dated
            futures, options).
        credentials: the key and secret ``public/auth`` accepts (``None``:
            every ``public/auth`` fails with ``13004 invalid_credentials``).
        heartbeat_every: after ``public/set_heartbeat``, send a ``heartbeat``
            notification every this many steps.
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "deribit"
    ws_path: ClassVar[str] = "/ws/api/v2"
    tick: ClassVar[str] = "0.5"
    lot: ClassVar[str] = "0.001"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        credentials: Credentials | None = None,
        heartbeat_every: int = 10,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.credentials = credentials
        self.heartbeat_every = heartbeat_every
        self.native = {s: deribit_symbol(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        for symbol, market in list(self.markets.items()):
            if is_inverse(self.native[symbol]):  # amounts in USD: rebuild the walk with a USD lot
                mid = (market.best_bid() + market.best_ask()) // 2
                seed_of = seed * 7919 + self.symbols.index(symbol)
                self.markets[symbol] = Market(seed_of, mid=mid, tick=self.tick, lot=_INVERSE_LOT, levels=levels)
        self._ms = _T0_MS
        self.candles: dict[str, list[float]] = {}

    def _now(self) -> int:
        self._ms += 1
        return self._ms

    # --- client messages ----------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            request_id = msg["id"]
            method = msg["method"]
            params = msg.get("params") or {}
            if not isinstance(method, str) or not isinstance(params, dict):
                raise ValueError(method)
        except Exception:
            await conn.send(self._error(None, -32700, "parse_error"))
            return
        if method == "public/test":
            await conn.send(self._result(request_id, {"version": "mock"}))
        elif method == "public/auth":
            await conn.send(self._auth(conn, request_id, params))
        elif method == "public/set_heartbeat":
            conn.state["heartbeat"] = True
            await conn.send(self._result(request_id, "ok"))
        elif method in ("public/subscribe", "public/unsubscribe"):
            await self._subscription(conn, request_id, method, params.get("channels"))
        else:
            await conn.send(self._error(request_id, -32601, "Method not found"))

    def _auth(self, conn: MockConnection, request_id: Any, params: dict[str, Any]) -> str:
        creds = self.credentials
        if creds is not None and params.get("grant_type") == "client_signature":
            payload = f"{params.get('timestamp')}\n{params.get('nonce')}\n{params.get('data', '')}".encode()
            expected = hmac.new(creds.secret.encode(), payload, hashlib.sha256).hexdigest()
            if params.get("client_id") == creds.key and hmac.compare_digest(expected, str(params.get("signature"))):
                conn.state["authed"] = True
                return self._result(request_id, {"access_token": "mock", "expires_in": 900, "token_type": "bearer"})
        return self._error(request_id, 13004, "invalid_credentials")

    async def _subscription(self, conn: MockConnection, request_id: Any, method: str, channels: Any) -> None:
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            await conn.send(self._error(request_id, 11050, "bad_request"))
            return
        if method == "public/unsubscribe":
            gone = [c for c in channels if c in conn.topics]
            conn.topics.difference_update(gone)
            for name in gone:
                conn.state.setdefault("books", {}).pop(name, None)
                conn.state.setdefault("held", {}).pop(name, None)
            await conn.send(self._result(request_id, gone))
            return
        if self.faults.reject_subscriptions:
            await conn.send(self._error(request_id, 10028, "too_many_requests"))
            return
        if any(c.endswith(".raw") for c in channels) and not conn.state.get("authed"):
            await conn.send(self._error(request_id, 13778, "raw_subscriptions_not_available_for_unauthorized"))
            return
        known = [c for c in channels if self._instrument(c) is not None]
        conn.topics.update(known)
        await conn.send(self._result(request_id, known))
        for name in known:
            inst = self._instrument(name)
            assert inst is not None
            if name.startswith("book."):
                await conn.send(self._snapshot(conn, name, inst))
            elif name.startswith("ticker."):
                await conn.send(self._ticker_message(name, inst))

    def _instrument(self, name: str) -> str | None:
        """The instrument of a channel name this mock serves, else None."""
        parts = name.split(".")
        if parts[0] == "chart" and len(parts) == 4 and parts[1] == "trades" and parts[3] == "1":
            inst = parts[2]
        elif (parts[0] == "quote" and len(parts) == 2) or (
            parts[0] in ("book", "trades", "ticker") and len(parts) == 3 and parts[2] in _INTERVALS
        ):
            inst = parts[1]
        else:
            return None
        return inst if inst in self.unified else None

    @staticmethod
    def _result(request_id: Any, result: Any) -> str:
        return dumps({"jsonrpc": "2.0", "id": request_id, "result": result, "testnet": False})

    @staticmethod
    def _error(request_id: Any, code: int, text: str) -> str:
        return dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": text}})

    @staticmethod
    def _notification(channel: str, data: Any) -> str:
        return dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})

    # --- books ----------------------------------------------------------------------

    def _book(self, conn: MockConnection, name: str) -> _Book:
        books: dict[str, _Book] = conn.state.setdefault("books", {})
        book = books.get(name)
        if book is None:
            book = books[name] = _Book(_CHANGE_ID_START + 10_000 * conn.state.setdefault("book_count", 0))
            conn.state["book_count"] += 1
        return book

    def _snapshot(self, conn: MockConnection, name: str, inst: str) -> str:
        symbol = self.unified[inst]
        market = self.markets[symbol]
        book = self._book(conn, name)
        book.bids, book.asks = dict(market.bids), dict(market.asks)
        conn.state.setdefault("seq", {})[symbol] = book.change_id
        data = {
            "type": "snapshot",
            "timestamp": self._now(),
            "instrument_name": inst,
            "change_id": book.change_id,
            "bids": [["new", market.price(p), market.size(s)] for p, s in sorted(book.bids.items(), reverse=True)],
            "asks": [["new", market.price(p), market.size(s)] for p, s in sorted(book.asks.items())],
        }
        return self._notification(name, data)

    @staticmethod
    def _entries(market: Market, view: View, changes: Iterable[tuple[int, int]]) -> list[list[Any]]:
        out: list[list[Any]] = []
        for price, size in changes:
            if size:
                action = "change" if price in view else "new"
                view[price] = size
                out.append([action, market.price(price), market.size(size)])
            elif view.pop(price, None) is not None:
                out.append(["delete", market.price(price), 0.0])
        return out

    def _change(self, name: str, inst: str, book: _Book, bids: list[list[Any]], asks: list[list[Any]]) -> str:
        prev = book.change_id
        book.change_id += 1 + book.change_id % 5
        data = {
            "type": "change",
            "timestamp": self._now(),
            "prev_change_id": prev,
            "instrument_name": inst,
            "change_id": book.change_id,
            "bids": bids,
            "asks": asks,
        }
        return self._notification(name, data)

    def _book_changes(self, conn: MockConnection, symbol: str, name: str, inst: str, change: Change) -> list[str]:
        market = self.markets[symbol]
        book = self._book(conn, name)
        faults = self.faults
        seqs = conn.state.setdefault("seq", {})
        out: list[str] = []
        bids = self._entries(market, book.bids, change.bids)
        asks = self._entries(market, book.asks, change.asks)
        if bids or asks:
            message = self._change(name, inst, book, bids, asks)
            if not faults.take("skip_seq"):  # else: the change is lost on the way
                out.append(message)
                if faults.take("duplicate"):
                    out.append(message)
        if faults.take("crossed"):
            best_ask = min(book.asks)
            crossing = self._entries(market, book.bids, [(best_ask, 1)])
            out.append(self._change(name, inst, book, crossing, []))
        seqs[symbol] = book.change_id
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[name] = out.pop(0)
        elif out and name in held:
            out.insert(1, held.pop(name))
        return out

    # --- other channels -------------------------------------------------------------

    def _trades(self, name: str, inst: str, market: Market, trade: MarketTrade) -> str | None:
        if self.faults.take("drop_trades"):
            return None
        entry: dict[str, Any] = {
            "trade_seq": trade.trade_id,
            "trade_id": str(trade.trade_id),
            "timestamp": self._now(),
            "tick_direction": 0,
            "price": market.price(trade.price),
            "mark_price": market.price(trade.price),
            "index_price": market.price(trade.price),
            "instrument_name": inst,
            "direction": trade.side.value,
            "amount": market.size(trade.size),
        }
        if trade.trade_id % 3 == 0:
            entry["liquidation"] = "T" if trade.trade_id % 2 else "M"
        return self._notification(name, [entry])

    def _quote(self, conn: MockConnection, name: str, inst: str, market: Market) -> str | None:
        bb, ba = market.best_bid(), market.best_ask()
        top = (bb, market.bids[bb], ba, market.asks[ba])
        last: dict[str, tuple[int, ...]] = conn.state.setdefault("quote", {})
        if last.get(name) == top:
            return None
        last[name] = top
        data = {
            "timestamp": self._now(),
            "instrument_name": inst,
            "best_bid_price": market.price(bb),
            "best_bid_amount": market.size(top[1]),
            "best_ask_price": market.price(ba),
            "best_ask_amount": market.size(top[3]),
        }
        return self._notification(name, data)

    def _ticker_message(self, name: str, inst: str) -> str:
        market = self.markets[self.unified[inst]]
        bb, ba = market.best_bid(), market.best_ask()
        mark = market.price((bb + ba) // 2)
        data: dict[str, Any] = {
            "timestamp": self._now(),
            "instrument_name": inst,
            "state": "open",
            "mark_price": mark,
            "index_price": mark,
            "best_bid_price": market.price(bb),
            "best_bid_amount": market.size(market.bids[bb]),
            "best_ask_price": market.price(ba),
            "best_ask_amount": market.size(market.asks[ba]),
            "open_interest": market.size(500_000 + 37 * market.next_trade_id),
        }
        if inst.endswith("-PERPETUAL"):
            data["current_funding"] = 0.0
            data["funding_8h"] = (10 + market.next_trade_id % 90) / 1_000_000
        return self._notification(name, data)

    def _candle(self, name: str, symbol: str, market: Market, trade: MarketTrade) -> str:
        price = market.price(trade.price)
        size = market.size(trade.size)
        minute = self._ms // 60_000 * 60_000
        candle = self.candles.get(symbol)
        if candle is None or candle[0] != minute:
            candle = self.candles[symbol] = [minute, price, price, price, price, 0.0]
        candle[2] = max(candle[2], price)
        candle[3] = min(candle[3], price)
        candle[4] = price
        candle[5] += size
        data = {
            "tick": int(candle[0]),
            "open": candle[1],
            "high": candle[2],
            "low": candle[3],
            "close": candle[4],
            "volume": candle[5],
            "cost": candle[5] * price,
        }
        return self._notification(name, data)

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        inst = self.native[symbol]
        market = self.markets[symbol]
        topics = conn.topics
        out: list[str | bytes] = []
        for name in [t for t in topics if self._instrument(t) == inst]:
            kind = name.partition(".")[0]
            message: str | None = None
            if kind == "book":
                out.extend(self._book_changes(conn, symbol, name, inst, change))
            elif kind == "quote":
                message = self._quote(conn, name, inst, market)
            elif kind == "trades" and change.trade is not None:
                message = self._trades(name, inst, market, change.trade)
            elif kind == "chart" and change.trade is not None:
                message = self._candle(name, symbol, market, change.trade)
            elif kind == "ticker" and market.next_trade_id % 10 == 0 and change.trade is not None:
                message = self._ticker_message(name, inst)
            if message is not None:
                out.append(message)
        steps: dict[str, int] = conn.state.setdefault("steps", {})
        steps[inst] = n = steps.get(inst, 0) + 1
        if conn.state.get("heartbeat") and self.heartbeat_every and n % self.heartbeat_every == 0:
            out.append(dumps({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}}))
        return out

    # --- REST -------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``/api/v2/public/get_instruments`` and ``/api/v2/public/get_order_book``."""
        if path == "/api/v2/public/get_instruments":
            return 200, dumps({"jsonrpc": "2.0", "result": [self._instrument_row(s) for s in self.symbols]}).encode()
        if path != "/api/v2/public/get_order_book":
            return None
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"jsonrpc":"2.0","error":{"code":10028,"message":"mock fault"}}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'{"jsonrpc":"2.0","result":{"bids":'
        symbol = self.unified.get(query.get("instrument_name", ""))
        if symbol is None:
            return 400, dumps({"jsonrpc": "2.0", "error": {"code": 10020, "message": "instrument_not_found"}}).encode()
        market = self.markets[symbol]
        depth = int(query.get("depth", "5") or 5)
        result = {
            "instrument_name": self.native[symbol],
            "timestamp": self._now(),
            "change_id": _CHANGE_ID_START,
            "bids": [[market.price(p), market.size(s)] for p, s in sorted(market.bids.items(), reverse=True)][:depth],
            "asks": [[market.price(p), market.size(s)] for p, s in sorted(market.asks.items())][:depth],
        }
        return 200, dumps({"jsonrpc": "2.0", "result": result}).encode()

    def _instrument_row(self, symbol: str) -> dict[str, Any]:
        base, quote, kind = parse_symbol(symbol, options=True)
        name = self.native[symbol]
        market = self.markets[symbol]
        row: dict[str, Any] = {
            "instrument_name": name,
            "base_currency": base,
            "quote_currency": quote,
            "tick_size": float(self.tick),
            "min_trade_amount": float(market.lot),
            "contract_size": 10.0 if is_inverse(name) else 1.0,
            "is_active": True,
        }
        if kind is None:
            row["kind"] = "spot"
        elif kind == "PERP":
            row.update(kind="future", settlement_period="perpetual")
        elif "-" in kind:
            row.update(kind="option", settlement_period="month", option_type="call" if kind[-1] == "C" else "put")
        else:
            row.update(kind="future", settlement_period="month")
        if row["kind"] == "future":
            row["future_type"] = "reversed" if is_inverse(name) else "linear"
        return row
