"""A mock Kraken Futures WebSocket v1 (and instruments endpoint) on 127.0.0.1:
:class:`MockKrakenFutures` (linear ``PF_``/``FF_`` products) and
:class:`MockKrakenFuturesInverse` (inverse ``PI_``/``FI_``).

It speaks the protocol of ``shared/exchanges/kraken-futures.md``:
``{"event":"info","version":1}`` on connect; ``{"event":"subscribe","feed":F,
"product_ids":[...]}`` answered per product with ``subscribed`` (or
``subscribed_failed`` for an unknown product or under the
``reject_subscriptions`` fault), ``{"event":"error","message":"Json Error"}``
for an unreadable request, and per feed:

* ``book`` — a ``book_snapshot`` (full depth, ``seq``) on subscribe, then one
  ``book`` message per changed level with ``seq`` = previous + 1 per product.
* ``trade`` — a ``trade_snapshot`` of the last trades on subscribe, then each
  market trade (taker ``side``, a UUID-like ``uid``, per-product ``seq``);
  every fifth trade has ``type: "liquidation"``.
* ``ticker_lite`` — bid/ask whenever the top of book changes.
* ``ticker`` — on subscribe and every 10 steps: funding (perpetuals),
  ``openInterest``, ``markPrice``.
* ``heartbeat`` — ``{"feed":"heartbeat","time":ms}`` every 5 steps. A client
  that subscribes it again gets the ``subscribed`` answer after every frame
  published before: tests use it to synchronise.

Prices and sizes are JSON numbers, as the venue sends them. Instruments
(``GET /derivatives/api/v3/instruments``) are the unified symbols the mock was
built with. ``conn.state["seq"][symbol]`` is the last book ``seq`` rendered for
a connection (for synchronising tests).

Faults (``mock.faults``), applied to ``book`` messages: ``skip_seq`` (a level
message is lost: the next ``seq`` jumps), ``duplicate`` (sent twice),
``reorder`` (held back and sent after the next one), ``crossed`` (an extra
level puts a bid at the best ask), plus the base faults (``garbage``,
``silent``, ``reject_subscriptions``, ``snapshot_status`` /
``snapshot_garbage`` for the instruments endpoint). ``bad_checksum`` has
nothing to corrupt: the venue sends no checksum.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.kraken_futures import kraken_futures_symbol
from wsmux.model import Side
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockKrakenFutures", "MockKrakenFuturesInverse"]

_SEQ_START = 5_000_000
_T0_MS = 1_700_000_000_000
_HISTORY = 5  # trades in a trade_snapshot


class MockKrakenFutures(MockExchange):
    """Mock Kraken Futures v1, linear products. See the module docstring.

    Args:
        symbols: unified ``-PERP`` or dated-future symbols to list.
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "kraken-futures"
    linear: ClassVar[bool] = True
    ws_path: ClassVar[str] = "/ws/v1"
    tick: ClassVar[str] = "0.5"
    lot: ClassVar[str] = "0.0001"
    contract_size: ClassVar[str] = "1"
    """``contractSize`` in the instruments list: base units per linear
    contract, USD per inverse contract (the real ``PI_XBTUSD``: 1)."""

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
        self.native = {s: kraken_futures_symbol(s, self.linear) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self.history: dict[str, list[dict[str, Any]]] = {s: [] for s in self.symbols}
        self._trade_seq = dict.fromkeys(self.symbols, 100)
        self._ms = _T0_MS

    def _now(self) -> int:
        self._ms += 1
        return self._ms

    # --- client messages ----------------------------------------------------------------

    async def on_open(self, conn: MockConnection) -> None:
        await conn.send(dumps({"event": "info", "version": 1}))

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            verb = msg["event"]
            feed = msg["feed"]
            if verb not in ("subscribe", "unsubscribe") or not isinstance(feed, str):
                raise ValueError(verb)
            products = msg.get("product_ids", [])
            if not isinstance(products, list):
                raise ValueError(products)
        except Exception:
            await conn.send(dumps({"event": "error", "message": "Json Error"}))
            return
        if feed == "heartbeat":
            await conn.send(dumps({"event": f"{verb}d", "feed": feed}))
            conn.topics.add(("heartbeat", ""))
            return
        for product in products:
            native = product.upper() if isinstance(product, str) else ""
            symbol = self.unified.get(native)
            refused = symbol is None or feed not in ("book", "trade", "ticker", "ticker_lite")
            if refused or (verb == "subscribe" and self.faults.reject_subscriptions):
                await conn.send(dumps({"event": f"{verb}d_failed", "feed": feed, "product_ids": [product]}))
                continue
            assert symbol is not None
            await conn.send(dumps({"event": f"{verb}d", "feed": feed, "product_ids": [native]}))
            if verb == "unsubscribe":
                conn.topics.discard((feed, native))
                continue
            conn.topics.add((feed, native))
            if feed == "book":
                await conn.send(self._snapshot(conn, symbol, native))
            elif feed == "trade":
                trades = self.history[symbol][-_HISTORY:][::-1]
                await conn.send(dumps({"feed": "trade_snapshot", "product_id": native, "trades": trades}))
            elif feed == "ticker":
                await conn.send(self._ticker_message(symbol, native))

    # --- books ----------------------------------------------------------------------------

    def _snapshot(self, conn: MockConnection, symbol: str, native: str) -> str:
        market = self.markets[symbol]
        seqs: dict[str, int] = conn.state.setdefault("seq", {})
        seq = seqs[symbol] = seqs.get(symbol, _SEQ_START) + 1000
        return dumps(
            {
                "feed": "book_snapshot",
                "product_id": native,
                "timestamp": self._now(),
                "seq": seq,
                "tickSize": None,
                "bids": [
                    {"price": market.price(p), "qty": market.size(q)} for p, q in sorted(market.bids.items())[::-1]
                ],
                "asks": [{"price": market.price(p), "qty": market.size(q)} for p, q in sorted(market.asks.items())],
            }
        )

    def _level(self, market: Market, native: str, side: str, price: int, size: int, seq: int) -> str:
        return dumps(
            {
                "feed": "book",
                "product_id": native,
                "side": side,
                "seq": seq,
                "price": market.price(price),
                "qty": market.size(size),
                "timestamp": self._now(),
            }
        )

    def _book_updates(self, conn: MockConnection, symbol: str, native: str, change: Change) -> list[str]:
        market = self.markets[symbol]
        faults = self.faults
        seqs: dict[str, int] = conn.state["seq"]
        levels = [("buy", p, s) for p, s in change.bids] + [("sell", p, s) for p, s in change.asks]
        # one message per level: removals first, as a matching engine emits them (a bid that
        # moves up through the old best ask comes after that ask's removal), so no
        # intermediate book is crossed
        levels.sort(key=lambda level: level[2] != 0)
        if faults.take("crossed"):
            best_ask = market.best_ask()
            levels.append(("buy", best_ask, 1))
        out: list[str] = []
        for side, price, size in levels:
            seqs[symbol] += 1
            if faults.take("skip_seq"):
                continue  # lost on the way
            message = self._level(market, native, side, price, size, seqs[symbol])
            out.append(message)
            if faults.take("duplicate"):
                out.append(message)
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[native] = out.pop(0)
        elif out and native in held:
            out.insert(1, held.pop(native))
        return out

    # --- other feeds ------------------------------------------------------------------------

    def _trade(self, symbol: str, native: str, trade: MarketTrade) -> dict[str, Any]:
        market = self.markets[symbol]
        self._trade_seq[symbol] += 1
        return {
            "feed": "trade",
            "product_id": native,
            "uid": f"00000000-0000-4000-8000-{trade.trade_id:012d}",
            "side": "buy" if trade.side is Side.BUY else "sell",
            "type": "liquidation" if trade.trade_id % 5 == 0 else "fill",
            "seq": self._trade_seq[symbol],
            "time": self._now(),
            "qty": market.size(trade.size),
            "price": market.price(trade.price),
        }

    def _ticker_message(self, symbol: str, native: str) -> str:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        steps = market.next_trade_id
        entry: dict[str, Any] = {
            "feed": "ticker",
            "product_id": native,
            "time": self._now(),
            "bid": market.price(bb),
            "ask": market.price(ba),
            "bid_size": market.size(market.bids[bb]),
            "ask_size": market.size(market.asks[ba]),
            "markPrice": market.price((bb + ba) // 2),
            "openInterest": market.size(500_000 + 37 * steps),
            "tag": "perpetual" if native.startswith("P") else "month",
        }
        if native.startswith("P"):
            entry["funding_rate"] = 1e-6 * (10 + steps % 90)
            entry["relative_funding_rate"] = 1e-5 * (10 + steps % 90)
            entry["next_funding_rate_time"] = _T0_MS + 3_600_000
        return dumps(entry)

    def _ticker_lite(self, conn: MockConnection, symbol: str, native: str) -> list[str]:
        market = self.markets[symbol]
        top = (market.best_bid(), market.best_ask())
        last: dict[str, tuple[int, int]] = conn.state.setdefault("top", {})
        if last.get(native) == top:
            return []
        last[native] = top
        message = {
            "feed": "ticker_lite",
            "product_id": native,
            "bid": market.price(top[0]),
            "ask": market.price(top[1]),
        }
        return [dumps(message)]

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        native = self.native[symbol]
        topics = conn.topics
        out: list[str | bytes] = []
        if ("book", native) in topics:
            out.extend(self._book_updates(conn, symbol, native, change))
        if ("ticker_lite", native) in topics:
            out.extend(self._ticker_lite(conn, symbol, native))
        trade = change.trade
        if trade is not None:
            history = self.history[symbol]
            if not history or history[-1]["uid"] != f"00000000-0000-4000-8000-{trade.trade_id:012d}":
                history.append(self._trade(symbol, native, trade))
                del history[:-_HISTORY]
            if ("trade", native) in topics and not self.faults.take("drop_trades"):
                out.append(dumps(history[-1]))
        steps: dict[str, int] = conn.state.setdefault("steps", {})
        steps[native] = n = steps.get(native, 0) + 1
        if n % 10 == 0 and ("ticker", native) in topics:
            out.append(self._ticker_message(symbol, native))
        if n % 5 == 0 and ("heartbeat", "") in topics and symbol == self.symbols[0]:
            out.append(dumps({"feed": "heartbeat", "time": self._now()}))
        return out

    # --- REST ---------------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /derivatives/api/v3/instruments`` (kraken-futures.md, "Endpoints")."""
        if path != "/derivatives/api/v3/instruments":
            return None
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"result":"error","error":"mock fault"}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'{"result":"success","instruments":[{'
        instruments = [
            {
                "symbol": native.lower() if not self.linear else native,
                "type": ("flexible_futures" if native.startswith("P") else "futures_vanilla")
                if self.linear
                else "futures_inverse",
                "tickSize": float(self.tick),
                "contractSize": float(self.contract_size),
                "contractValuePrecision": len(self.lot.split(".")[1]) if "." in self.lot else 0,
                "tradeable": True,
            }
            for native in self.unified
        ]
        return 200, dumps({"result": "success", "instruments": instruments}).encode()


class MockKrakenFuturesInverse(MockKrakenFutures):
    """Mock Kraken Futures v1, inverse products (``PI_``/``FI_``; sizes in
    whole USD contracts)."""

    venue: ClassVar[str] = "kraken-futures-inverse"
    linear: ClassVar[bool] = False
    lot: ClassVar[str] = "1"
