"""Mock Binance servers: spot, Binance.US, USDⓈ-M and COIN-M futures.

Each speaks the venue's real protocol on one 127.0.0.1 port (sheets:
shared/exchanges/binance-*.md):

* WebSocket under the host base (``mock.ws_url`` has no path, like the
  adapters' ``url``): combined streams ``/stream?streams=a/b`` (frames wrapped
  ``{"stream": .., "data": ..}``) and raw streams ``/ws/a/b``; live
  ``{"method": "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST_SUBSCRIPTIONS", "params":
  [...], "id": N}`` answered ``{"result": null, "id": N}``. More than 5
  (futures: 10) client messages within one second closes the socket with 1008
  "Too many requests", as Binance does; more than ``max_streams`` streams is
  refused.
* USDⓈ-M serves the 2026 split: ``/public/...`` carries ``@depth*`` and
  ``@bookTicker``, ``/market/...`` everything else, the legacy root carries
  all. A stream subscribed on the wrong route gets no data (the real failure
  mode is unconfirmed) and is recorded in :attr:`MockBinanceBase.misrouted`.
* Streams: ``<sym>@depth@100ms`` diffs with exact ``U``/``u`` (and ``pu`` on
  futures), ``<sym>@aggTrade``, ``<sym>@trade`` (spot), ``<sym>@bookTicker``,
  and on futures ``<sym>@markPrice@1s`` (every ``funding_every`` steps) and
  ``<sym>@forceOrder`` (every fourth trade is reported as a liquidation — a
  mock convention, the random walk has no margin accounts).
* REST depth snapshot ``GET /api/v3/depth`` (``/fapi/v1/depth``,
  ``/dapi/v1/depth``) ``?symbol=BTCUSDT&limit=N``: the mock's current book
  (best ``limit`` levels) at its current update id ``lastUpdateId``.

Update ids are per symbol, as on Binance: every market step advances the id
by the number of levels it changed, and the changes of up to ``batch`` steps
are merged into one diff ``[U, u]`` (like the 100 ms stream). A
:meth:`~MockBinanceBase.publish` call always ends by flushing, so after it
returns the last diff sent carries the mock's current update id
(:meth:`~MockBinanceBase.update_id`) and the book equals
``mock.markets[symbol].depth()``. When a client subscribes to a depth stream
the mock sends a diff at once (an empty one with a fresh update id when no
change is pending), so a client can sync without waiting for the market to
move; real Binance sends diffs only on change, but its books always move.

Faults (``mock.faults``): ``skip_seq`` drops the next diff (its ids are
lost: the next diff does not follow); ``duplicate`` sends the next diff twice
(stale, harmless); ``reorder`` holds the next diff back and sends it after
the following one; ``crossed`` follows the next diff with a diff (one id of
its own) that puts a bid at the best ask; ``garbage`` sends invalid JSON;
``silent`` sends nothing (ids still advance); ``snapshot_status`` answers REST
snapshots with that HTTP status and a Binance error body;
``snapshot_garbage`` answers with a truncated body; ``reject_subscriptions``
answers ``SUBSCRIBE`` with ``{"error": {"code": 2, "msg": ..}, "id": N}`` —
and, a mock convention, streams named in the URL with one such error with
``"id": null`` and no data.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

from wsmux._json import dumps, loads
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = [
    "MockBinance",
    "MockBinanceBase",
    "MockBinanceCoinm",
    "MockBinanceFutures",
    "MockBinanceUS",
]

_PUBLIC_KINDS = ("depth", "bookTicker")


class MockBinanceBase(MockExchange):
    """Shared machinery of the Binance mocks (see the module docstring).

    Args:
        symbols: unified symbols to list.
        seed: base random seed.
        rate: steps per second when :meth:`run` is used.
        host: address to bind.
        levels: levels per side around the mid.
        batch: market steps merged into one depth diff.
        funding_every: futures: send ``markPriceUpdate`` every this many steps.
    """

    futures: ClassVar[bool] = False
    coinm: ClassVar[bool] = False
    split_routes: ClassVar[bool] = False
    depth_path: ClassVar[str] = "/api/v3/depth"
    server_time_path: ClassVar[str | None] = "/api/v3/time"
    max_streams: ClassVar[int] = 1024
    max_messages_per_second: ClassVar[int] = 5
    ws_path: ClassVar[str] = ""

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        batch: int = 3,
        funding_every: int = 10,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.batch = batch
        self.funding_every = funding_every
        self.natives = {s: self.native(s) for s in self.symbols}
        self.by_native = {n: s for s, n in self.natives.items()}
        self._lower = {s: n.lower() for s, n in self.natives.items()}
        self._ids = {s: 1_000_000 * (i + 1) for i, s in enumerate(self.symbols)}
        self._sent = dict(self._ids)  # u of the last diff emitted (sent or dropped)
        self._pending: dict[str, tuple[dict[int, int], dict[int, int]]] = {s: ({}, {}) for s in self.symbols}
        self._pending_steps = dict.fromkeys(self.symbols, 0)
        self._held: dict[str, list[tuple[str, str]]] = {}
        self._bbo: dict[str, tuple[int, int, int, int]] = {}
        self._steps = dict.fromkeys(self.symbols, 0)
        self.misrouted: list[str] = []
        """Streams a client subscribed on the wrong USDⓈ-M route."""
        self.snapshots_served = 0
        self.trade_history: dict[str, deque[dict[str, Any]]] = {sym: deque(maxlen=10_000) for sym in self.symbols}
        """What ``/aggTrades`` serves: every trade that happened, sent or not."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    # --- naming -------------------------------------------------------------------

    def native(self, symbol: str) -> str:
        """The venue symbol of a unified one (``BTC-USDT`` → ``BTCUSDT``)."""
        base, quote, kind = parse_symbol(symbol)
        if self.coinm:
            return f"{base}{quote}_{'PERP' if kind == 'PERP' else (kind or '')[2:]}"
        if kind is None or kind == "PERP":
            return base + quote
        return f"{base}{quote}_{kind[2:]}"

    def update_id(self, symbol: str) -> int:
        """The current update id of ``symbol``'s book (``lastUpdateId`` of a snapshot now)."""
        return self._ids[symbol]

    # --- publishing ---------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times, send what subscribers asked for,
        then flush the pending depth diffs."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                await self._deliver(self._step_frames(symbol, change))
        for symbol in targets:
            await self._deliver(self._flush(symbol, self._now_ms()))

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """Advance ``symbol``'s ids for ``change`` and return ``conn``'s frames.

        :meth:`publish` is the entry point; this exists for the base contract
        and is not idempotent (ids advance on every call)."""
        return self._for_conn(conn, self._step_frames(symbol, change))

    async def _deliver(self, frames: list[tuple[str, str]]) -> None:
        if not frames or self.faults.silent:
            return
        for conn in list(self.connections.values()):
            for message in self._for_conn(conn, frames):
                await self._send(conn, message)

    @staticmethod
    def _for_conn(conn: MockConnection, frames: list[tuple[str, str]]) -> list[str | bytes]:
        topics = conn.topics
        combined = conn.state.get("combined", True)
        out: list[str | bytes] = []
        for stream, payload in frames:
            if stream in topics:
                out.append(f'{{"stream":"{stream}","data":{payload}}}' if combined else payload)
        return out

    def _step_frames(self, symbol: str, change: Change) -> list[tuple[str, str]]:
        market = self.markets[symbol]
        lower = self._lower[symbol]
        now = self._now_ms()
        self._ids[symbol] += max(1, len(change.bids) + len(change.asks))
        bids, asks = self._pending[symbol]
        bids.update(change.bids)
        asks.update(change.asks)
        self._pending_steps[symbol] += 1
        self._steps[symbol] += 1
        frames: list[tuple[str, str]] = []
        if change.trade is not None:
            frames.extend(self._trade_frames(symbol, change.trade, now))
        bbo = (market.best_bid(), market.bids[market.best_bid()], market.best_ask(), market.asks[market.best_ask()])
        if bbo != self._bbo.get(symbol):
            self._bbo[symbol] = bbo
            frames.append((f"{lower}@bookTicker", self._book_ticker(symbol, bbo, now)))
        if self._pending_steps[symbol] >= self.batch:
            frames.extend(self._flush(symbol, now))
        if self.futures and self.funding_every and self._steps[symbol] % self.funding_every == 0:
            frames.append((f"{lower}@markPrice@1s", self._mark_price(symbol, now)))
        return frames

    def _flush(self, symbol: str, now: int) -> list[tuple[str, str]]:
        if not self._pending_steps[symbol]:
            return []
        bids, asks = self._pending[symbol]
        market = self.markets[symbol]
        stream = f"{self._lower[symbol]}@depth@100ms"
        prev = self._sent[symbol]
        last = self._ids[symbol]
        self._sent[symbol] = last
        body = self._depth(symbol, prev + 1, last, prev, bids, asks, now)
        self._pending[symbol] = ({}, {})
        self._pending_steps[symbol] = 0
        faults = self.faults
        frames = [(stream, body)]
        if faults.take("skip_seq"):
            frames = []
        elif faults.take("duplicate"):
            frames = frames * 2
        if faults.take("crossed"):
            self._ids[symbol] += 1
            bogus = self._ids[symbol]
            self._sent[symbol] = bogus
            bad = self._depth(symbol, bogus, bogus, last, {market.best_ask(): 1}, {}, now)
            frames.append((stream, bad))
        held = self._held.pop(symbol, None)
        if held is not None:
            frames = frames + held
        elif frames and faults.take("reorder"):
            self._held[symbol] = frames
            frames = []
        return frames

    # --- payloads -----------------------------------------------------------------

    def _levels(self, symbol: str, levels: dict[int, int]) -> list[list[str]]:
        m = self.markets[symbol]
        return [[m.price_text(p), m.size_text(q)] for p, q in levels.items()]

    def _depth(
        self, symbol: str, first: int, last: int, prev: int, bids: dict[int, int], asks: dict[int, int], now: int
    ) -> str:
        data: dict[str, Any] = {"e": "depthUpdate", "E": now}
        if self.futures:
            data["T"] = now
        data["s"] = self.natives[symbol]
        if self.coinm:
            data["ps"] = self.natives[symbol].split("_")[0]
        data["U"] = first
        data["u"] = last
        if self.futures:
            data["pu"] = prev
        data["b"] = self._levels(symbol, bids)
        data["a"] = self._levels(symbol, asks)
        return dumps(data)

    def _book_ticker(self, symbol: str, bbo: tuple[int, int, int, int], now: int) -> str:
        m = self.markets[symbol]
        bp, bq, ap, aq = bbo
        data: dict[str, Any] = {}
        if self.futures:
            data["e"] = "bookTicker"
        data["u"] = self._ids[symbol]
        data["s"] = self.natives[symbol]
        if self.coinm:
            data["ps"] = self.natives[symbol].split("_")[0]
        data.update(b=m.price_text(bp), B=m.size_text(bq), a=m.price_text(ap), A=m.size_text(aq))
        if self.futures:
            data["T"] = now
            data["E"] = now
        return dumps(data)

    def _trade_frames(self, symbol: str, trade: MarketTrade, now: int) -> list[tuple[str, str]]:
        m = self.markets[symbol]
        lower = self._lower[symbol]
        native = self.natives[symbol]
        price, size = m.price_text(trade.price), m.size_text(trade.size)
        maker_buys = trade.side is Side.SELL  # the taker sold: the buyer was the maker
        agg: dict[str, Any] = {
            "e": "aggTrade",
            "E": now,
            "s": native,
            "a": trade.trade_id,
            "p": price,
            "q": size,
            "f": trade.trade_id,
            "l": trade.trade_id,
            "T": now,
            "m": maker_buys,
        }
        if not self.futures:
            agg["M"] = True
        self.trade_history[symbol].append(agg)
        if self.faults.take("drop_trades"):
            return []  # lost in transit: only the REST history has it
        frames = [(f"{lower}@aggTrade", dumps(agg))]
        if not self.futures:
            raw = {
                "e": "trade",
                "E": now,
                "s": native,
                "t": trade.trade_id,
                "p": price,
                "q": size,
                "T": now,
                "m": maker_buys,
                "M": True,
            }
            frames.append((f"{lower}@trade", dumps(raw)))
        elif trade.trade_id % 4 == 0:
            order = {
                "s": native,
                "S": "SELL" if trade.side is Side.SELL else "BUY",
                "o": "LIMIT",
                "f": "IOC",
                "q": size,
                "p": price,
                "ap": price,
                "X": "FILLED",
                "l": size,
                "z": size,
                "T": now,
            }
            frames.append((f"{lower}@forceOrder", dumps({"e": "forceOrder", "E": now, "o": order})))
        return frames

    def _mark_price(self, symbol: str, now: int) -> str:
        m = self.markets[symbol]
        mid = m.price_text((m.best_bid() + m.best_ask()) // 2)
        eight_hours = 8 * 3600 * 1000
        return dumps(
            {
                "e": "markPriceUpdate",
                "E": now,
                "s": self.natives[symbol],
                "p": mid,
                "i": mid,
                "P": mid,
                "r": "0.00010000",
                "T": (now // eight_hours + 1) * eight_hours,
            }
        )

    # --- WebSocket protocol ---------------------------------------------------------------

    def _route_of(self, path: str) -> tuple[str | None, str] | None:
        """``(route, rest)`` of a request path, or None when unknown."""
        if self.split_routes:
            for route in ("public", "market"):
                prefix = f"/{route}"
                if path == prefix or path.startswith(prefix + "/"):
                    return route, path[len(prefix) :]
        return None, path

    async def on_open(self, conn: MockConnection) -> None:
        request = conn.ws.request
        target = urlsplit(request.path if request is not None else "/")
        routed = self._route_of(target.path)
        assert routed is not None
        route, path = routed
        conn.state["route"] = route
        conn.state["times"] = deque()
        if path == "/stream":
            conn.state["combined"] = True
            query = dict(parse_qsl(target.query))
            names = [n for n in query.get("streams", "").split("/") if n]
        elif path == "/ws" or path.startswith("/ws/"):
            conn.state["combined"] = False
            names = [n for n in path[len("/ws") :].split("/") if n]
        else:
            await conn.ws.close(1008, f"unknown path {path!r}")
            return
        if not names:
            return
        if self.faults.reject_subscriptions:
            await conn.send(dumps({"error": {"code": 2, "msg": "Invalid request: mock rejected streams"}, "id": None}))
            return
        if len(names) > self.max_streams:
            await conn.ws.close(1008, f"more than {self.max_streams} streams")
            return
        await self._kick(self._add_topics(conn, names))

    async def _kick(self, symbols: list[str]) -> None:
        """Send a depth diff for ``symbols`` now (an empty one with a fresh id
        when no change is pending), so a new subscriber can start syncing."""
        for symbol in symbols:
            if not self._pending_steps[symbol]:
                self._ids[symbol] += 1
                self._pending_steps[symbol] = 1
            await self._deliver(self._flush(symbol, self._now_ms()))

    def _add_topics(self, conn: MockConnection, names: list[str]) -> list[str]:
        """Subscribe ``conn`` to ``names``; return the symbols of new depth streams."""
        route = conn.state.get("route")
        depth: list[str] = []
        for name in names:
            if route is not None:
                kind = name.split("@")[1] if "@" in name else ""
                wanted = "public" if kind in _PUBLIC_KINDS else "market"
                if wanted != route:
                    self.misrouted.append(name)
                    continue
            if name in conn.topics:
                continue
            conn.topics.add(name)
            native, _, kind = name.partition("@")
            symbol = self.by_native.get(native.upper())
            if symbol is not None and kind.startswith("depth"):
                depth.append(symbol)
        return depth

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        times: deque[float] = conn.state.setdefault("times", deque())
        now = time.monotonic()
        times.append(now)
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) > self.max_messages_per_second:
            await conn.ws.close(1008, "Too many requests")
            return
        try:
            msg = loads(message)
            method, params, req_id = msg["method"], msg.get("params", []), msg["id"]
            if type(req_id) is not int or not isinstance(params, list):
                raise TypeError
        except Exception:
            await conn.send(dumps({"error": {"code": 3, "msg": "Invalid JSON: bad request"}, "id": None}))
            return
        if method == "LIST_SUBSCRIPTIONS":
            await conn.send(dumps({"result": sorted(conn.topics), "id": req_id}))
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not all(isinstance(p, str) for p in params):
            await conn.send(dumps({"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": req_id}))
            return
        if method == "SUBSCRIBE":
            if self.faults.reject_subscriptions:
                error = {"code": 2, "msg": "Invalid request: mock rejected the subscription"}
                await conn.send(dumps({"error": error, "id": req_id}))
                return
            if len(conn.topics | set(params)) > self.max_streams:
                error = {"code": 2, "msg": f"Invalid request: more than {self.max_streams} streams"}
                await conn.send(dumps({"error": error, "id": req_id}))
                return
            depth = self._add_topics(conn, params)
            await conn.send(dumps({"result": None, "id": req_id}))
            await self._kick(depth)
            return
        conn.topics.difference_update(params)
        await conn.send(dumps({"result": None, "id": req_id}))

    # --- REST ------------------------------------------------------------------------

    snapshot_limits: ClassVar[tuple[int, ...] | None] = None

    def _now_ms(self) -> int:
        return self.now_ns() // 1_000_000

    def server_time_body(self, now_ns: int) -> str:
        return f'{{"serverTime":{now_ns // 1_000_000}}}'

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path == self.depth_path.replace("depth", "aggTrades"):
            return self._agg_trades(query)
        if path != self.depth_path:
            return None
        symbol = self.by_native.get(query.get("symbol", ""))
        if symbol is None:
            return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return 400, b'{"code":-1100,"msg":"Illegal characters found in parameter \'limit\'."}'
        allowed = self.snapshot_limits
        if limit < 1 or (allowed is not None and limit not in allowed) or (allowed is None and limit > 5000):
            return 400, b'{"code":-1130,"msg":"Invalid data sent for a parameter."}'
        faults = self.faults
        if faults.snapshot_status != 200:
            return faults.snapshot_status, b'{"code":-1003,"msg":"mock fault: snapshot refused"}'
        if faults.take("snapshot_garbage"):
            return 200, b'{"lastUpdateId":'
        self.snapshots_served += 1
        return 200, self.snapshot_body(symbol, limit).encode()

    def _agg_trades(self, query: dict[str, str]) -> tuple[int, bytes]:
        """``GET .../aggTrades?symbol=S&fromId=N&limit=L``: history from id N."""
        symbol = self.by_native.get(query.get("symbol", ""))
        if symbol is None:
            return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
        try:
            from_id = int(query.get("fromId", "0"))
            limit = min(1000, int(query.get("limit", "500")))
        except ValueError:
            return 400, b'{"code":-1100,"msg":"Illegal characters found in a parameter."}'
        out = []
        for agg in self.trade_history[symbol]:
            if agg["a"] >= from_id:
                out.append({k: agg[k] for k in ("a", "p", "q", "f", "l", "T", "m")})
                if len(out) >= limit:
                    break
        return 200, dumps(out).encode()

    def snapshot_body(self, symbol: str, limit: int = 1000) -> str:
        """The REST depth body for ``symbol`` now: best ``limit`` levels, ``lastUpdateId``."""
        m = self.markets[symbol]
        now = self._now_ms()
        bids = sorted(m.bids.items(), reverse=True)[:limit]
        asks = sorted(m.asks.items())[:limit]
        data: dict[str, Any] = {"lastUpdateId": self._ids[symbol]}
        if self.futures:
            data["E"] = now
            data["T"] = now
        if self.coinm:
            data["symbol"] = self.natives[symbol]
            data["pair"] = self.natives[symbol].split("_")[0]
        data["bids"] = [[m.price_text(p), m.size_text(q)] for p, q in bids]
        data["asks"] = [[m.price_text(p), m.size_text(q)] for p, q in asks]
        return dumps(data)




class MockBinance(MockBinanceBase):
    """Mock Binance spot (``"binance"``): ``/stream``, ``/ws``, ``/api/v3/depth``."""

    venue: ClassVar[str] = "binance"


class MockBinanceUS(MockBinanceBase):
    """Mock Binance.US (``"binance-us"``): the spot protocol, 200 streams per connection."""

    venue: ClassVar[str] = "binance-us"
    max_streams: ClassVar[int] = 200


class MockBinanceFutures(MockBinanceBase):
    """Mock Binance USDⓈ-M futures (``"binance-usdm"``, symbols ``BTC-USDT-PERP``):
    ``/public`` and ``/market`` routes (and the legacy root), ``pu`` in diffs,
    ``/fapi/v1/depth``, funding and liquidation streams."""

    venue: ClassVar[str] = "binance-usdm"
    tick: ClassVar[str] = "0.1"
    lot: ClassVar[str] = "0.001"
    futures: ClassVar[bool] = True
    split_routes: ClassVar[bool] = True
    depth_path: ClassVar[str] = "/fapi/v1/depth"
    server_time_path: ClassVar[str | None] = "/fapi/v1/time"
    max_messages_per_second: ClassVar[int] = 10
    snapshot_limits: ClassVar[tuple[int, ...] | None] = (5, 10, 20, 50, 100, 500, 1000)


class MockBinanceCoinm(MockBinanceBase):
    """Mock Binance COIN-M futures (``"binance-coinm"``, symbols ``BTC-USD-PERP``):
    sizes in whole contracts, ``/dapi/v1/depth``, no route split."""

    venue: ClassVar[str] = "binance-coinm"
    tick: ClassVar[str] = "0.1"
    lot: ClassVar[str] = "1"
    futures: ClassVar[bool] = True
    coinm: ClassVar[bool] = True
    depth_path: ClassVar[str] = "/dapi/v1/depth"
    server_time_path: ClassVar[str | None] = "/dapi/v1/time"
    max_streams: ClassVar[int] = 200
    max_messages_per_second: ClassVar[int] = 10
    snapshot_limits: ClassVar[tuple[int, ...] | None] = (5, 10, 20, 50, 100, 500, 1000)
