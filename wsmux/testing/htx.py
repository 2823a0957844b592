"""A mock HTX market WebSocket (gzip frames) on 127.0.0.1: :class:`MockHtx`
(spot) and :class:`MockHtxSwap` (USDT-margined swaps).

It speaks the protocol of ``shared/exchanges/htx-huobi.md``: every server frame
is gzip-compressed JSON; ``{"sub": topic, "id": id}`` is answered
``{"id","status":"ok","subbed","ts"}`` (or ``{"status":"error","err-code":
"bad-request","err-msg":"invalid topic"}``), ``unsub`` → ``unsubbed``, and the
server pings ``{"ping": ms}`` every ``ping_every`` steps, closing a spot
connection that leaves two pings unanswered (swaps: five). A client
``{"ping": n}`` is answered ``{"pong": n}`` (what tests synchronise on).

Spot (``/ws`` and ``/feed`` on the same port):

* ``market.$s.mbp.150`` — one update per step (empty sides when nothing
  changed, like the venue's 100 ms cadence) with ``seqNum`` growing by 1 to 3
  and ``prevSeqNum`` = the previous ``seqNum``; ``{"req": ..}`` on the topic
  answers the connection's current 150-level view with its ``seqNum``.
* ``market.$s.bbo`` (on change), ``market.$s.trade.detail``,
  ``market.$s.kline.1min`` (per trade).

Swaps (``/linear-swap-ws``): ``market.$c.depth.size_150.high_freq`` with
``data_type: "incremental"`` — a ``snapshot`` event on subscribe, then an
``update`` with ``version`` + 1 whenever the view changed; sizes in contracts
(one lot of the market per contract: ``contract_size`` is the market's lot
in ``swap_contract_info``). ``bbo`` (``[price, contracts]``), ``trade.detail``
(``amount`` in contracts, ``quantity`` in base units), ``kline.1min``.

Swap notification endpoint (``/linear-swap-notification``): ``{"op":"sub","cid",
"topic":"public.$c.funding_rate"}`` → ``{"op":"sub",..,"err-code":0}``, server
pings ``{"op":"ping","ts"}`` (answered ``{"op":"pong","ts"}``),
``public.$c.funding_rate`` on subscribe and every 10 steps, and
``public.$c.liquidation_orders`` for every third trade (the losing side).

REST: ``/v2/settings/common/symbols`` (spot), ``/linear-swap-api/v1/swap_contract_info``.
``conn.state["seq"][symbol]`` is the last ``seqNum``/``version`` rendered.

Faults (``mock.faults``) on book updates: ``skip_seq`` (an update is lost),
``duplicate``, ``reorder``, ``crossed`` (a bid at the best ask), plus
``garbage`` (a binary frame that does not gunzip), ``silent`` (also stops
pinging: no pongs expected), ``reject_subscriptions``. There is no checksum
to corrupt: HTX books have none.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.htx import BOOK_DEPTH, htx_spot_symbol, htx_swap_symbol
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange
from wsmux.testing._views import BookView, Levels

__all__ = ["MockHtx", "MockHtxSwap"]

_SEQ_START = 100_020_000_000
_T0_MS = 1_700_000_000_000


def gzip_frame(text: str) -> bytes:
    """The venue's framing: gzip-compressed JSON text."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(text.encode()) + packer.flush()


class MockHtx(MockExchange):
    """Mock HTX spot market WebSocket. See the module docstring.

    Args:
        symbols: unified symbols to list.
        ping_every: send a server ping every this many steps (0: never).
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "htx"
    ws_path: ClassVar[str] = "/ws"
    book_kind: ClassVar[str] = f"mbp.{BOOK_DEPTH}"
    max_unanswered: ClassVar[int] = 2

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        ping_every: int = 10,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.ping_every = ping_every
        self.native = {s: self._native(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self._ms = _T0_MS
        self._steps = 0
        self._candles: dict[str, list[int]] = {}  # open, high, low, close (ticks), volume (lots)

    @staticmethod
    def _native(symbol: str) -> str:
        return htx_spot_symbol(symbol)

    def _now(self) -> int:
        self._ms += 1
        return self._ms

    async def _send(self, conn: MockConnection, message: str | bytes) -> None:
        if self.faults.take("garbage"):
            await conn.send(b"\x1f\x8b not gzip at all")
        self.sent_frames += 1
        await conn.send(gzip_frame(message) if isinstance(message, str) else message)

    async def _reply(self, conn: MockConnection, body: dict[str, Any]) -> None:
        await conn.send(gzip_frame(dumps(body)))

    # --- client messages ----------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            if not isinstance(msg, dict):
                raise ValueError(msg)
        except Exception:
            await self._reply(conn, self._error("bad-request", "invalid json"))
            return
        if "pong" in msg:
            conn.state["unanswered"] = 0
            conn.state["pongs"] = conn.state.get("pongs", 0) + 1
            return
        if "ping" in msg:
            await self._reply(conn, {"pong": msg["ping"]})
            return
        for op in ("sub", "unsub", "req"):
            topic = msg.get(op)
            if topic is not None:
                await self._request(conn, op, topic, msg.get("id"))
                return
        await self._reply(conn, self._error("bad-request", "unknown op", msg.get("id")))

    async def _request(self, conn: MockConnection, op: str, topic: Any, rid: Any) -> None:
        symbol = self._symbol_of(topic)
        if symbol is None or (op == "sub" and self.faults.reject_subscriptions):
            await self._reply(conn, self._error("bad-request", "invalid topic", rid))
            return
        if op == "req":
            if not topic.endswith(self.book_kind) or self.book_kind.endswith("high_freq"):
                await self._reply(conn, self._error("bad-request", "invalid topic", rid))
                return
            await self._reply(conn, self._snapshot_reply(conn, topic, symbol, rid))
            return
        if op == "unsub":
            if topic not in conn.topics:
                await self._reply(conn, self._error("bad-request", "unsub with not subbed topic", rid))
                return
            conn.topics.discard(topic)
            await self._reply(conn, {"id": rid, "status": "ok", "unsubbed": topic, "ts": self._now()})
            return
        conn.topics.add(topic)
        await self._reply(conn, {"id": rid, "status": "ok", "subbed": topic, "ts": self._now()})
        await self._on_subscribed(conn, topic, symbol)

    async def _on_subscribed(self, conn: MockConnection, topic: str, symbol: str) -> None:
        if topic.endswith("kline.1min"):
            await conn.send(gzip_frame(self._candle(topic, symbol)))

    def _symbol_of(self, topic: Any) -> str | None:
        if not isinstance(topic, str) or topic.count(".") < 2:
            return None
        _, native, kind = topic.split(".", 2)
        if kind not in (self.book_kind, "bbo", "trade.detail", "kline.1min"):
            return None
        return self.unified.get(native)

    @staticmethod
    def _error(code: str, text: str, rid: Any = None) -> dict[str, Any]:
        return {"id": rid, "status": "error", "err-code": code, "err-msg": text, "ts": _T0_MS}

    # --- books --------------------------------------------------------------------------

    def _view(self, conn: MockConnection, symbol: str) -> BookView:
        views: dict[str, BookView] = conn.state.setdefault("books", {})
        view = views.get(symbol)
        if view is None:
            view = views[symbol] = BookView(_SEQ_START + 1_000_000 * len(views), BOOK_DEPTH)
            view.reset(self.markets[symbol])
        return view

    def _size(self, market: Market, lots: int) -> float:
        return float(market.size_text(lots))

    def _levels(self, market: Market, changes: Levels) -> list[list[float]]:
        return [[float(market.price_text(p)), self._size(market, s) if s else 0] for p, s in changes]

    def _snapshot_reply(self, conn: MockConnection, topic: str, symbol: str, rid: Any) -> dict[str, Any]:
        market = self.markets[symbol]
        view = self._view(conn, symbol)
        data = {
            "seqNum": view.seq,
            "bids": self._levels(market, sorted(view.bids.items(), reverse=True)),
            "asks": self._levels(market, sorted(view.asks.items())),
        }
        return {"id": rid, "rep": topic, "status": "ok", "ts": self._now(), "data": data}

    @staticmethod
    def _next_seq(seq: int) -> int:
        return seq + 1 + seq % 3  # seqNum grows, not one by one

    def _book_message(self, topic: str, prev: int, seq: int, bids: Any, asks: Any, event: str = "update") -> str:
        tick = {"seqNum": seq, "prevSeqNum": prev, "bids": bids, "asks": asks}
        return dumps({"ch": topic, "ts": self._now(), "tick": tick})

    def _book_updates(self, conn: MockConnection, symbol: str, topic: str) -> list[str]:
        market = self.markets[symbol]
        view = self._view(conn, symbol)

        def render(bids: Levels, asks: Levels, prev: int, seq: int) -> str:
            return self._book_message(topic, prev, seq, self._levels(market, bids), self._levels(market, asks))

        # mbp.150 pushes every 100 ms even when nothing changed; the swap feed only on change
        always = self.book_kind.startswith("mbp")
        out = view.updates(market, self.faults, render, next_seq=self._next_seq, always=always)
        conn.state.setdefault("seq", {})[symbol] = view.seq
        return out

    # --- other channels -------------------------------------------------------------

    def _bbo(self, conn: MockConnection, symbol: str, topic: str) -> list[str]:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        top = (bb, market.bids[bb], ba, market.asks[ba])
        last: dict[str, tuple[int, ...]] = conn.state.setdefault("bbo", {})
        if last.get(topic) == top:
            return []
        last[topic] = top
        seq = conn.state["bbo_seq"] = conn.state.get("bbo_seq", 0) + 1
        return [dumps({"ch": topic, "ts": self._now(), "tick": self._bbo_tick(symbol, top, seq)})]

    def _bbo_tick(self, symbol: str, top: tuple[int, ...], seq: int) -> dict[str, Any]:
        market = self.markets[symbol]
        return {
            "seqId": seq,
            "bid": float(market.price_text(top[0])),
            "bidSize": self._size(market, top[1]),
            "ask": float(market.price_text(top[2])),
            "askSize": self._size(market, top[3]),
            "quoteTime": self._now(),
            "symbol": self.native[symbol],
        }

    def _trade_item(self, market: Market, trade: Any) -> dict[str, Any]:
        return {
            "id": float(100182534526255757567432481 + trade.trade_id),  # the old huge id (ignored)
            "ts": self._now(),
            "tradeId": trade.trade_id,
            "amount": self._size(market, trade.size),
            "price": float(market.price_text(trade.price)),
            "direction": trade.side.value,
        }

    def _candle(self, topic: str, symbol: str) -> str:
        market = self.markets[symbol]
        state = self._candles.setdefault(symbol, [])
        if not state:
            mid = market.best_bid()
            state.extend([mid, mid, mid, mid, 0])
        o, h, low, c, volume = state
        tick = {
            "id": (_T0_MS // 60_000) * 60,
            "open": float(market.price_text(o)),
            "high": float(market.price_text(h)),
            "low": float(market.price_text(low)),
            "close": float(market.price_text(c)),
            "amount": float(market.size_text(volume)),
            "vol": 0,
            "count": 0,
        }
        return dumps({"ch": topic, "ts": self._now(), "tick": tick})

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        native = self.native[symbol]
        market = self.markets[symbol]
        topics = conn.topics
        out: list[str | bytes] = []
        topic = f"market.{native}.{self.book_kind}"
        if topic in topics:
            out.extend(self._book_updates(conn, symbol, topic))
        topic = f"market.{native}.bbo"
        if topic in topics:
            out.extend(self._bbo(conn, symbol, topic))
        trade = change.trade
        if trade is not None:
            candle = self._candles.get(symbol)
            if candle:
                candle[1] = max(candle[1], trade.price)
                candle[2] = min(candle[2], trade.price)
                candle[3] = trade.price
                candle[4] += trade.size
            topic = f"market.{native}.trade.detail"
            if topic in topics:
                tick = {"id": trade.trade_id, "ts": self._now(), "data": [self._trade_item(market, trade)]}
                out.append(dumps({"ch": topic, "ts": self._now(), "tick": tick}))
            topic = f"market.{native}.kline.1min"
            if topic in topics:
                out.append(self._candle(topic, symbol))
        return out

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Market steps (see the base); every ``ping_every``-th step starts with a
        server ping (and drops the connections that left too many unanswered)."""
        for _ in range(steps):
            self._steps += 1
            if self.ping_every and self._steps % self.ping_every == 0 and not self.faults.silent:
                await self._ping_all()
            await super().publish(1, symbols)

    async def _ping_all(self) -> None:
        for conn in list(self.connections.values()):
            unanswered = conn.state.get("unanswered", 0)
            if unanswered >= self.max_unanswered:
                await conn.ws.close(1000, "mock: pings unanswered")
                continue
            conn.state["unanswered"] = unanswered + 1
            conn.state["pings"] = conn.state.get("pings", 0) + 1
            await self._reply(conn, self._ping_body(conn))

    def _ping_body(self, conn: MockConnection) -> dict[str, Any]:
        return {"ping": self._now()}

    # --- REST -------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /v2/settings/common/symbols`` (htx-huobi.md, "Endpoints")."""
        if path != "/v2/settings/common/symbols":
            return None
        items = []
        for symbol, native in self.native.items():
            market = self.markets[symbol]
            base, quote = symbol.lower().split("-")[:2]
            items.append(
                {
                    "sc": native,
                    "bc": base,
                    "qc": quote,
                    "tpp": len(market.tick.partition(".")[2]),
                    "tap": len(market.lot.partition(".")[2]),
                    "state": "online",
                }
            )
        return 200, dumps({"status": "ok", "data": items}).encode()


class MockHtxSwap(MockHtx):
    """Mock HTX USDT-margined swap market WebSocket (``/linear-swap-ws``)."""

    venue: ClassVar[str] = "htx-swap"
    ws_path: ClassVar[str] = "/linear-swap-ws"
    book_kind: ClassVar[str] = f"depth.size_{BOOK_DEPTH}.high_freq"
    max_unanswered: ClassVar[int] = 5

    @staticmethod
    def _native(symbol: str) -> str:
        return htx_swap_symbol(symbol)

    def _size(self, market: Market, lots: int) -> float:
        return lots  # contracts: one lot each (contract_size = the market's lot)

    @staticmethod
    def _next_seq(seq: int) -> int:
        return seq + 1  # version: + 1 per message

    def _book_message(self, topic: str, prev: int, seq: int, bids: Any, asks: Any, event: str = "update") -> str:
        tick = {
            "mrid": seq,
            "id": seq,
            "bids": bids,
            "asks": asks,
            "ts": self._now(),
            "version": seq,
            "ch": topic,
            "event": event,
        }
        return dumps({"ch": topic, "ts": self._now(), "tick": tick})

    async def _on_subscribed(self, conn: MockConnection, topic: str, symbol: str) -> None:
        if topic.endswith(self.book_kind):
            market = self.markets[symbol]
            view = self._view(conn, symbol)
            view.held = None
            view.seq += 1
            bids, asks = view.reset(market)
            conn.state.setdefault("seq", {})[symbol] = view.seq
            snapshot = self._book_message(
                topic, view.seq - 1, view.seq, self._levels(market, bids), self._levels(market, asks), "snapshot"
            )
            await conn.send(gzip_frame(snapshot))
        await super()._on_subscribed(conn, topic, symbol)

    def _bbo_tick(self, symbol: str, top: tuple[int, ...], seq: int) -> dict[str, Any]:
        market = self.markets[symbol]
        return {
            "mrid": seq,
            "id": seq,
            "version": seq,
            "ts": self._now(),
            "bid": [float(market.price_text(top[0])), top[1]],
            "ask": [float(market.price_text(top[2])), top[3]],
        }

    def _trade_item(self, market: Market, trade: Any) -> dict[str, Any]:
        return {
            "id": trade.trade_id,
            "ts": self._now(),
            "amount": trade.size,
            "quantity": float(market.size_text(trade.size)),
            "trade_turnover": 0,
            "price": float(market.price_text(trade.price)),
            "direction": trade.side.value,
        }

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /linear-swap-api/v1/swap_contract_info`` (htx-huobi.md)."""
        if path != "/linear-swap-api/v1/swap_contract_info":
            return None
        items = [
            {
                "symbol": native.split("-")[0],
                "contract_code": native,
                "contract_size": float(self.markets[symbol].lot),
                "price_tick": float(self.markets[symbol].tick),
                "contract_status": 1,
                "business_type": "swap",
            }
            for symbol, native in self.native.items()
        ]
        return 200, dumps({"status": "ok", "data": items, "ts": _T0_MS}).encode()

    # --- the notification endpoint (funding, liquidations) ------------------------------

    @staticmethod
    def _is_notification(conn: MockConnection) -> bool:
        request = getattr(conn.ws, "request", None)
        return str(getattr(request, "path", "")).endswith("/linear-swap-notification")

    def _ping_body(self, conn: MockConnection) -> dict[str, Any]:
        if self._is_notification(conn):
            return {"op": "ping", "ts": str(self._now())}
        return super()._ping_body(conn)

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            op = msg.get("op") if isinstance(msg, dict) else None
        except Exception:
            op = None
        if op is None:
            await super().on_message(conn, message)
            return
        if op == "pong":
            conn.state["unanswered"] = 0
            conn.state["pongs"] = conn.state.get("pongs", 0) + 1
            return
        if op == "ping":
            await self._reply(conn, {"op": "pong", "ts": msg.get("ts")})
            return
        topic, cid = msg.get("topic"), msg.get("cid")
        symbol = self._notify_symbol(topic)
        if op not in ("sub", "unsub") or symbol is None or (op == "sub" and self.faults.reject_subscriptions):
            error = {
                "op": op,
                "cid": cid,
                "topic": topic,
                "ts": self._now(),
                "err-code": 4001,
                "err-msg": "invalid topic",
            }
            await self._reply(conn, error)
            return
        await self._reply(conn, {"op": op, "cid": cid, "topic": topic, "ts": self._now(), "err-code": 0})
        if op == "unsub":
            conn.topics.discard(topic)
            return
        conn.topics.add(topic)
        if topic.endswith(".funding_rate"):
            await conn.send(gzip_frame(self._funding(symbol)))

    def _notify_symbol(self, topic: Any) -> str | None:
        if not isinstance(topic, str) or topic.count(".") != 2:
            return None
        kind, native, channel = topic.split(".")
        if kind != "public" or channel not in ("funding_rate", "liquidation_orders"):
            return None
        return self.unified.get(native)

    def _notify(self, topic: str, data: list[dict[str, Any]]) -> str:
        return dumps({"op": "notify", "topic": topic, "ts": self._now(), "data": data})

    def _funding(self, symbol: str) -> str:
        native = self.native[symbol]
        item = {
            "symbol": native.split("-")[0],
            "contract_code": native,
            "fee_asset": "USDT",
            "funding_time": str(_T0_MS),
            "funding_rate": f"0.000{10 + self.markets[symbol].next_trade_id % 90}",
            "estimated_rate": "0.0001",
            "settlement_time": str(_T0_MS + 8 * 3_600_000),
        }
        return self._notify(f"public.{native}.funding_rate", [item])

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        out = super().render(conn, symbol, change)
        native = self.native[symbol]
        market = self.markets[symbol]
        topic = f"public.{native}.liquidation_orders"
        trade = change.trade
        if trade is not None and trade.trade_id % 3 == 0 and topic in conn.topics:
            item = {
                "contract_code": native,
                "symbol": native.split("-")[0],
                "direction": trade.side.value,
                "offset": "close",
                "volume": trade.size,
                "amount": float(market.size_text(trade.size)),
                "price": float(market.price_text(trade.price)),
                "created_at": self._now(),
            }
            out.append(self._notify(topic, [item]))
        steps: dict[str, int] = conn.state.setdefault("notify_steps", {})
        steps[symbol] = n = steps.get(symbol, 0) + 1
        if n % 10 == 0 and f"public.{native}.funding_rate" in conn.topics:
            out.append(self._funding(symbol))
        return out
