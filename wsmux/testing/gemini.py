"""Mock Gemini market data on 127.0.0.1: :class:`MockGemini` (the current
WebSocket API) and :class:`MockGeminiV2` (the archived v2 feed).

Both speak the protocol of ``shared/exchanges/gemini.md`` and serve the
instruments list (``GET /v1/symbols``).

:class:`MockGemini` — ``{"id":..,"method":"subscribe","params":[streams]}``
answered ``{"id":..,"status":200,"result":null}`` (or status 400, error
``-1013``, for an unknown stream or under the ``reject_subscriptions`` fault);
``ping`` answered in order (tests synchronise on it). Streams:

* ``{symbol}@depth@100ms`` — with ``?snapshot=-1`` on the connection URL, the
  full book (``lastUpdateId``, ``bids``, ``asks``, no symbol: the documented
  partial-depth shape) after the subscribe answer; then one ``depthUpdate`` per
  market step, ``U`` = previous ``u`` + 1 and ``u`` = ``U`` + changed levels - 1.
* ``{symbol}@bookTicker`` — when the top of book changes (``u`` = the last
  depth update id).
* ``{symbol}@trade`` — each market trade (``t``, ``p``, ``q``, ``T`` in ns,
  ``m`` = buyer is maker).

``conn.state["ids"][symbol]`` is the last update id rendered for a connection.
Faults on ``depthUpdate``: ``skip_seq`` (an update is lost), ``duplicate``,
``reorder``, ``crossed`` (an extra update puts a bid at the best ask), plus
``garbage``, ``silent``, ``reject_subscriptions`` and, for ``/v1/symbols``,
``snapshot_status`` / ``snapshot_garbage``. ``bad_checksum`` has nothing to
corrupt (no checksum).

:class:`MockGeminiV2` — ``{"type":"subscribe","subscriptions":[{"name":"l2",
"symbols":[..]}]}``: per symbol the full book as a first ``l2_updates`` (with
the last ``trades``, history), then one ``l2_updates`` of changes per step and
each ``trade``; a ``heartbeat`` every 5 steps, or on demand
(:meth:`MockGeminiV2.heartbeat`, what tests synchronise on). An unknown symbol
(or ``reject_subscriptions``) is answered ``{"result":"error",..}``. The same
book faults apply; without ids, ``skip_seq``, ``duplicate`` and ``reorder`` are
undetectable by design (the feed is UNVERIFIABLE), ``crossed`` is detected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from wsmux._json import dumps, loads
from wsmux.exchanges.gemini import gemini_symbol
from wsmux.model import Side
from wsmux.testing._market import Change, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockGemini", "MockGeminiV2"]

_ID_START = 4_000_000
_T0_MS = 1_700_000_000_000
_HISTORY = 5


class _GeminiMockBase(MockExchange):
    """Symbols, clock and the instruments list both Gemini mocks share."""

    lower_case: ClassVar[bool] = True
    tick: ClassVar[str] = "0.01"
    lot: ClassVar[str] = "0.00001"

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
        self.native = {s: self._wire(gemini_symbol(s)) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self._ms = _T0_MS

    def _wire(self, native: str) -> str:
        return native.lower() if self.lower_case else native

    def _now_ms(self) -> int:
        self._ms += 1
        return self._ms

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /v1/symbols`` (gemini.md, "Instruments / REST"), lower case."""
        if path != "/v1/symbols":
            return None
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"result":"error","reason":"System","message":"mock fault"}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'["btcusd",'
        return 200, dumps([n.lower() for n in self.unified]).encode()


class MockGemini(_GeminiMockBase):
    """Mock of Gemini's current WebSocket API. See the module docstring."""

    venue: ClassVar[str] = "gemini"

    # --- client messages ----------------------------------------------------------------

    async def on_open(self, conn: MockConnection) -> None:
        query = dict(parse_qsl(urlsplit(conn.ws.request.path).query)) if conn.ws.request is not None else {}
        conn.state["snapshot"] = query.get("snapshot", "0") == "-1"

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            request_id = msg["id"]
            method = msg["method"]
        except Exception:
            await conn.send(dumps({"id": None, "status": 400, "error": {"code": -1013, "msg": "Invalid request"}}))
            return
        if method == "ping":
            await conn.send(dumps({"id": request_id, "status": 200, "result": {}}))
            return
        params = msg.get("params")
        if method not in ("subscribe", "unsubscribe") or not isinstance(params, list):
            await conn.send(dumps({"id": request_id, "status": 400, "error": {"code": -1020, "msg": "Unsupported"}}))
            return
        topics = [self._topic(p) for p in params]
        if any(t is None for t in topics) or (method == "subscribe" and self.faults.reject_subscriptions):
            error = {"code": -1013, "msg": f"Invalid stream(s): {params!r:.100}"}
            await conn.send(dumps({"id": request_id, "status": 400, "error": error}))
            return
        await conn.send(dumps({"id": request_id, "status": 200, "result": None}))
        for topic in topics:
            assert topic is not None
            if method == "unsubscribe":
                conn.topics.discard(topic)
                continue
            conn.topics.add(topic)
            if topic[1] == "depth@100ms":
                if conn.state.get("snapshot"):
                    await conn.send(self._snapshot(conn, self.unified[topic[0]]))
                else:  # updates only (snapshot=0, the venue's default)
                    self._ids(conn).setdefault(self.unified[topic[0]], _ID_START)

    def _topic(self, stream: Any) -> tuple[str, str] | None:
        if not isinstance(stream, str):
            return None
        native, _, name = stream.partition("@")
        if native in self.unified and name in ("depth@100ms", "trade", "bookTicker"):
            return native, name
        return None

    # --- books ----------------------------------------------------------------------------

    def _ids(self, conn: MockConnection) -> dict[str, int]:
        ids: dict[str, int] = conn.state.setdefault("ids", {})
        return ids

    def _snapshot(self, conn: MockConnection, symbol: str) -> str:
        market = self.markets[symbol]
        ids = self._ids(conn)
        ids[symbol] = ids.get(symbol, _ID_START) + 100
        return dumps(
            {
                "lastUpdateId": ids[symbol],
                "bids": [[market.price_text(p), market.size_text(q)] for p, q in sorted(market.bids.items())[::-1]],
                "asks": [[market.price_text(p), market.size_text(q)] for p, q in sorted(market.asks.items())],
            }
        )

    def _depth(self, conn: MockConnection, symbol: str, change: Change) -> list[str]:
        market = self.markets[symbol]
        faults = self.faults
        ids = self._ids(conn)
        native = self.native[symbol]
        updates = [(list(change.bids), list(change.asks))] if change.bids or change.asks else []
        if faults.take("crossed"):
            updates.append(([(market.best_ask(), 1)], []))
        out: list[str] = []
        for bids, asks in updates:
            first = ids[symbol] + 1
            ids[symbol] += len(bids) + len(asks)
            if faults.take("skip_seq"):
                continue
            message = dumps(
                {
                    "e": "depthUpdate",
                    "E": self._now_ms() * 1_000_000 + 7,
                    "s": native,
                    "U": first,
                    "u": ids[symbol],
                    "b": [[market.price_text(p), market.size_text(q)] for p, q in bids],
                    "a": [[market.price_text(p), market.size_text(q)] for p, q in asks],
                }
            )
            out.append(message)
            if faults.take("duplicate"):
                out.append(message)
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[symbol] = out.pop(0)
        elif out and symbol in held:
            out.insert(1, held.pop(symbol))
        return out

    def _book_ticker(self, conn: MockConnection, symbol: str) -> list[str]:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        top = (bb, market.bids[bb], ba, market.asks[ba])
        last: dict[str, tuple[int, ...]] = conn.state.setdefault("top", {})
        if last.get(symbol) == top:
            return []
        last[symbol] = top
        update_id = self._ids(conn).get(symbol, _ID_START)
        message = {
            "u": update_id,
            "E": self._now_ms() * 1_000_000,
            "s": self.native[symbol],
            "b": market.price_text(bb),
            "B": market.size_text(top[1]),
            "a": market.price_text(ba),
            "A": market.size_text(top[3]),
        }
        return [dumps(message)]

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        native = self.native[symbol]
        topics = conn.topics
        market = self.markets[symbol]
        out: list[str | bytes] = []
        if (native, "depth@100ms") in topics and symbol in self._ids(conn):
            out.extend(self._depth(conn, symbol, change))
        if (native, "bookTicker") in topics:
            out.extend(self._book_ticker(conn, symbol))
        trade = change.trade
        if trade is not None and (native, "trade") in topics and not self.faults.take("drop_trades"):
            message = {
                "e": "trade",
                "E": self._now_ms() * 1_000_000,
                "s": native,
                "t": trade.trade_id,
                "p": market.price_text(trade.price),
                "q": market.size_text(trade.size),
                "T": self._ms * 1_000_000,
                "m": trade.side is Side.SELL,
            }
            out.append(dumps(message))
        return out


class MockGeminiV2(_GeminiMockBase):
    """Mock of Gemini's archived market data v2. See the module docstring."""

    venue: ClassVar[str] = "gemini-v2"
    lower_case: ClassVar[bool] = False
    ws_path: ClassVar[str] = "/v2/marketdata"

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
        self.history: dict[str, list[dict[str, Any]]] = {s: [] for s in self.symbols}
        self._event_id = 45_000_000_000
        self._recorded: dict[str, int] = {}  # symbol -> id of the last market trade put in history

    async def heartbeat(self) -> int:
        """Send a heartbeat to every connection now; returns its timestamp."""
        stamp = self._now_ms()
        await self.broadcast(dumps({"type": "heartbeat", "timestamp": stamp}))
        return stamp

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            verb = msg["type"]
            (subscription,) = msg["subscriptions"]
            if verb not in ("subscribe", "unsubscribe") or subscription["name"] != "l2":
                raise ValueError(verb)
            symbols = list(subscription["symbols"])
        except Exception:
            await conn.send(dumps({"result": "error", "reason": "InvalidJson", "message": f"{message!r:.80}"}))
            return
        for native in symbols:
            symbol = self.unified.get(native)
            if symbol is None or (verb == "subscribe" and self.faults.reject_subscriptions):
                await conn.send(dumps({"result": "error", "reason": "InvalidSymbol", "message": f"{native!r}"}))
                continue
            if verb == "unsubscribe":
                conn.topics.discard(native)
                continue
            conn.topics.add(native)
            await conn.send(self._snapshot(symbol, native))

    def _snapshot(self, symbol: str, native: str) -> str:
        market = self.markets[symbol]
        changes = [["buy", market.price_text(p), market.size_text(q)] for p, q in sorted(market.bids.items())[::-1]]
        changes += [["sell", market.price_text(p), market.size_text(q)] for p, q in sorted(market.asks.items())]
        trades = self.history[symbol][-_HISTORY:][::-1]
        return dumps(
            {"type": "l2_updates", "symbol": native, "changes": changes, "trades": trades, "auction_events": []}
        )

    def _trade(self, symbol: str, native: str, trade: MarketTrade) -> dict[str, Any]:
        market = self.markets[symbol]
        self._event_id += 3
        return {
            "type": "trade",
            "symbol": native,
            "event_id": self._event_id,
            "timestamp": self._now_ms(),
            "price": market.price_text(trade.price),
            "quantity": market.size_text(trade.size),
            "side": "buy" if trade.side is Side.BUY else "sell",
        }

    def _l2(self, conn: MockConnection, symbol: str, native: str, change: Change) -> list[str]:
        market = self.markets[symbol]
        faults = self.faults
        updates = []
        if change.bids or change.asks:
            updates.append(
                [["buy", market.price_text(p), market.size_text(q)] for p, q in change.bids]
                + [["sell", market.price_text(p), market.size_text(q)] for p, q in change.asks]
            )
        if faults.take("crossed"):
            updates.append([["buy", market.price_text(market.best_ask()), market.size_text(1)]])
        out: list[str] = []
        for changes in updates:
            if faults.take("skip_seq"):
                continue
            message = dumps({"type": "l2_updates", "symbol": native, "changes": changes})
            out.append(message)
            if faults.take("duplicate"):
                out.append(message)
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[native] = out.pop(0)
        elif out and native in held:
            out.insert(1, held.pop(native))
        return out

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        native = self.native[symbol]
        out: list[str | bytes] = []
        subscribed = native in conn.topics
        if subscribed:
            out.extend(self._l2(conn, symbol, native, change))
        trade = change.trade
        if trade is not None:
            history = self.history[symbol]
            if self._recorded.get(symbol) != trade.trade_id:  # once per market trade, whatever the connections
                self._recorded[symbol] = trade.trade_id
                history.append(self._trade(symbol, native, trade))
                del history[:-_HISTORY]
            if subscribed and not self.faults.take("drop_trades"):
                out.append(dumps(history[-1]))
        steps: dict[str, int] = conn.state.setdefault("steps", {})
        steps[native] = n = steps.get(native, 0) + 1
        if n % 5 == 0 and subscribed and symbol == self.symbols[0]:
            out.append(dumps({"type": "heartbeat", "timestamp": self._now_ms()}))
        return out
