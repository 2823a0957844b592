"""Mock KuCoin spot and futures (classic WebSocket + REST) on 127.0.0.1:
:class:`MockKucoin` and :class:`MockKucoinFutures`.

They speak the protocol of ``shared/exchanges/kucoin.md``:

* **Bullet.** ``POST /api/v1/bullet-public`` answers a fresh token and the
  mock's WebSocket endpoint (``instanceServers[0]``, ``pingInterval`` 18000).
  The WebSocket refuses a connection without a token it issued (an error
  frame, then close 4001) and greets with ``{"type":"welcome"}``. The base
  mock server (the ``websockets`` HTTP handler) answers only GET, so REST is
  served by a small HTTP/1.1 server of this module on its own 127.0.0.1 port
  (:attr:`rest_url`).
* **Subscribing.** ``{"type":"subscribe","topic":"/market/level2:A,B",...}``
  → ``{"type":"ack"}`` (when ``response`` is true); an unknown topic or
  symbol, or ``faults.reject_subscriptions`` → ``{"type":"error","code":404}``.
  ``{"type":"ping"}`` → ``{"type":"pong"}`` with the same id.
* **Book kick.** Subscribing to a book sends every subscriber of it a book
  message that changes nothing (spot: a price-``"0"`` placeholder; futures: the
  best bid again), so a new client can start syncing at once.
* **Spot** (:class:`MockKucoin`): ``/market/level2`` — one ``trade.l2update``
  per market step with ``sequenceStart``/``sequenceEnd`` (one sequence number
  per change, per-price ``[price, size, sequence]``; every 7th step also a
  price-``"0"`` placeholder, as the real venue sends); ``/market/match``
  (taker side, hex ``tradeId``, ns ``time``); ``/market/ticker`` when the best
  bid/ask changes; ``/market/candles:SYM_1min`` every 5 steps. REST:
  ``/api/v1/market/orderbook/level2_100`` (and the full-depth
  ``/api/v3/market/orderbook/level2``) with the current ``sequence``,
  ``/api/v2/symbols``.
* **Futures** (:class:`MockKucoinFutures`): ``/contractMarket/level2`` — one
  message per changed level, ``sequence`` +1 each, ``change =
  "price,side,size"`` in contracts; ``/contractMarket/execution``,
  ``/contractMarket/tickerV2``, ``/contract/instrument`` (``funding.rate``
  every 10 steps, ``mark.index.price`` every 5), ``limitCandle``. REST:
  ``/api/v1/level2/snapshot``, ``/api/v1/contracts/active`` (``multiplier``
  :attr:`MockKucoinFutures.multiplier`; USD-quoted perpetuals are inverse:
  ``isInverse`` and ``multiplier`` ``-``:attr:`MockKucoinFutures.inverse_face`).

Sequences are per symbol and shared by every connection (the venue's book
sequence). Faults (``mock.faults``) on book messages: ``skip_seq`` (a message
is lost), ``duplicate`` (sent twice), ``reorder`` (held back behind the next),
``crossed`` (an extra message puts a bid at the best ask), plus ``garbage``,
``silent``, ``snapshot_status`` / ``snapshot_garbage`` / ``snapshot_delay``
(REST snapshots) and ``reject_subscriptions``. ``drop_trades`` withholds trades.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

from wsmux._json import dumps, loads
from wsmux.exchanges.kucoin import kucoin_futures_symbol
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change, MarketTrade
from wsmux.testing._rest import RestServedMock, RestServer
from wsmux.testing._server import MockConnection

__all__ = ["MockKucoin", "MockKucoinFutures"]

_T0_MS = 1_700_000_000_000
_OK = "200000"
Frame = tuple[tuple[str, str], str]  # ((topic, native), text)


class _MockKucoinBase(RestServedMock):
    """Bullet, REST server, subscribe handshake and fault plumbing shared by spot and futures."""

    server_time_path: ClassVar[str | None] = "/api/v1/timestamp"

    def server_time_body(self, now_ns: int) -> str:
        """The REST server time (:attr:`~wsmux.testing.MockExchange.clock_skew` applies)."""
        return f'{{"code":"200000","data":{now_ns // 1_000_000}}}'

    ws_path: ClassVar[str] = "/endpoint"
    topic_names: ClassVar[dict[str, str]]
    """Topic prefix → the kind of data (``book``, ``trades``...)."""

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
        self.natives = {s: self.native(s) for s in self.symbols}
        self.by_native = {n: s for s, n in self.natives.items()}
        self.seq = {s: 1_000_000 * (i + 1) for i, s in enumerate(self.symbols)}
        """The current book sequence per symbol (a snapshot taken now carries it)."""
        self.tokens: set[str] = set()
        self.bullets = 0
        self.bullet_failures = 0
        """Answer this many next bullet calls with HTTP 503 (a fault)."""
        self.snapshots_served = 0
        self._tokens = itertools.count(1)
        self._ms = _T0_MS
        self._steps = dict.fromkeys(self.symbols, 0)
        self._held: list[Frame] = []
        self._rest = RestServer(
            lambda method, path, query, _body: self.rest(method, path, query),
            not_found=b'{"code":"404","msg":"Not Found"}',
            delay=lambda: self.faults.snapshot_delay,
        )
        self.subscribed = asyncio.Event()
        """Set whenever a connection's subscribe was accepted (tests clear it to wait for the next)."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    def native(self, symbol: str) -> str:
        raise NotImplementedError

    def _now_ms(self) -> int:
        self._ms += 1
        return self._ms

    # --- REST server (GET and POST) --------------------------------------------------

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """Answer a REST request (POST for the bullet, GET otherwise), or None for 404."""
        if path == "/api/v1/bullet-public":
            if method != "POST":
                return 405, b'{"code":"405","msg":"Method Not Allowed"}'
            if self.bullet_failures > 0:
                self.bullet_failures -= 1
                return 503, b'{"code":"503000","msg":"mock fault: service unavailable"}'
            return 200, self._bullet()
        if method != "GET":
            return 405, b'{"code":"405","msg":"Method Not Allowed"}'
        return self._server_time(path) or self.http(path, query)

    def _bullet(self) -> bytes:
        self.bullets += 1
        token = f"mock-token-{next(self._tokens)}"
        self.tokens.add(token)
        server = {
            # without a running server (a benchmark driving the mock in memory) the
            # endpoint only carries the path: the token is what matters
            "endpoint": self.ws_url if self._server is not None else f"ws://{self.host}:0{self.ws_path}",
            "encrypt": False,
            "protocol": "websocket",
            "pingInterval": 18000,
            "pingTimeout": 10000,
        }
        return dumps({"code": _OK, "data": {"token": token, "instanceServers": [server]}}).encode()

    def _snapshot_fault(self) -> tuple[int, bytes] | None:
        faults = self.faults
        if faults.snapshot_status != 200:
            return faults.snapshot_status, b'{"code":"429000","msg":"mock fault: snapshot refused"}'
        if faults.take("snapshot_garbage"):
            return 200, b'{"code":"200000","data":{"sequence":'
        return None

    # --- WebSocket -----------------------------------------------------------------------

    async def on_open(self, conn: MockConnection) -> None:
        query = dict(parse_qsl(urlsplit(conn.ws.request.path if conn.ws.request else "").query))
        if query.get("token") not in self.tokens:
            await conn.send(dumps({"id": "0", "type": "error", "code": 401, "data": "token is invalid"}))
            await conn.ws.close(4001, "token is invalid")
            return
        await conn.send(dumps({"id": query.get("connectId", "mock"), "type": "welcome"}))

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            kind = msg["type"]
            msg_id = str(msg["id"])
        except Exception:
            await conn.send(dumps({"id": "", "type": "error", "code": 400, "data": "bad request"}))
            return
        if kind == "ping":
            await conn.send(dumps({"id": msg_id, "type": "pong"}))
            return
        keys = self._topic_keys(msg.get("topic"))
        if kind not in ("subscribe", "unsubscribe") or keys is None:
            await conn.send(dumps({"id": msg_id, "type": "error", "code": 404, "data": f"topic {msg.get('topic')}"}))
            return
        if kind == "subscribe" and self.faults.reject_subscriptions:
            await conn.send(dumps({"id": msg_id, "type": "error", "code": 509, "data": "exceed max subscription"}))
            return
        if kind == "subscribe":
            conn.topics.update(keys)
            self.subscribed.set()
        else:
            conn.topics.difference_update(keys)
        if msg.get("response"):
            await conn.send(dumps({"id": msg_id, "type": "ack"}))
        if kind == "subscribe":
            for prefix, native in keys:
                if self.topic_names[prefix] == "book":
                    await self._kick((prefix, native), self.by_native[native])

    async def _kick(self, key: tuple[str, str], symbol: str) -> None:
        """Send every subscriber of ``key`` a book message that changes nothing,
        so a new subscriber can start syncing before the market moves."""
        frame = self._idle_book_frame(symbol, key[1])
        for conn in list(self.connections.values()):
            if key in conn.topics:
                await conn.send(frame)

    def _idle_book_frame(self, symbol: str, native: str) -> str:
        raise NotImplementedError

    def _topic_keys(self, topic: Any) -> list[tuple[str, str]] | None:
        if topic.__class__ is not str:
            return None
        prefix, _, names = topic.partition(":")
        if prefix not in self.topic_names or not names:
            return None
        keys = []
        for name in names.split(","):
            native = name[: -len("_1min")] if name.endswith("_1min") else name
            if native not in self.by_native or (name != native) != (self.topic_names[prefix] == "candles"):
                return None
            keys.append((prefix, native))
        return keys

    # --- publishing ----------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times and send the frames to subscribers
        (rendered once per step: sequences are the venue's, not per connection)."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                frames = self._step_frames(symbol, self.markets[symbol].step())
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    for message in self._for_conn(conn, frames):
                        await self._send(conn, message)

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """``conn``'s frames for one step (advances the venue's sequence: use :meth:`publish`)."""
        return self._for_conn(conn, self._step_frames(symbol, change))

    @staticmethod
    def _for_conn(conn: MockConnection, frames: list[Frame]) -> list[str | bytes]:
        return [text for key, text in frames if key in conn.topics]

    def _step_frames(self, symbol: str, change: Change) -> list[Frame]:
        native = self.natives[symbol]
        self._steps[symbol] += 1
        frames = self._book_frames(symbol, native, change)
        trade = change.trade
        if trade is not None and not self.faults.take("drop_trades"):
            frames.append(self._trade(symbol, native, trade))
        frames.extend(self._other_frames(symbol, native, self._steps[symbol]))
        return frames

    def _with_faults(self, symbol: str, frames: list[Frame], crossing: Frame | None) -> list[Frame]:
        faults = self.faults
        if frames and faults.take("skip_seq"):
            frames = frames[1:]  # one book message lost on the way
        elif frames and faults.take("duplicate"):
            frames = [frames[0], *frames]
        if crossing is not None:
            frames.append(crossing)
        if self._held:
            frames = [*frames[:1], *self._held, *frames[1:]]
            self._held = []
        elif frames and faults.take("reorder"):
            self._held, frames = frames[:1], frames[1:]
        return frames

    def _book_frames(self, symbol: str, native: str, change: Change) -> list[Frame]:
        raise NotImplementedError

    def _trade(self, symbol: str, native: str, trade: MarketTrade) -> Frame:
        raise NotImplementedError

    def _other_frames(self, symbol: str, native: str, step: int) -> list[Frame]:
        raise NotImplementedError

    def book_levels(self, symbol: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The mock's own book of ``symbol`` (ticks, lots), best first."""
        market = self.markets[symbol]
        return sorted(market.bids.items(), reverse=True), sorted(market.asks.items())


def _message(topic: str, subject: str, data: dict[str, Any]) -> str:
    return dumps({"type": "message", "topic": topic, "subject": subject, "data": data})


class MockKucoin(_MockKucoinBase):
    """Mock KuCoin spot (venue ``"kucoin"``). See the module docstring."""

    venue: ClassVar[str] = "kucoin"
    topic_names: ClassVar[dict[str, str]] = {
        "/market/level2": "book",
        "/market/match": "trades",
        "/market/ticker": "quotes",
        "/market/candles": "candles",
    }

    def native(self, symbol: str) -> str:
        base, quote, _ = parse_symbol(symbol)
        return f"{base}-{quote}"

    def _book_frames(self, symbol: str, native: str, change: Change) -> list[Frame]:
        market = self.markets[symbol]
        key = ("/market/level2", native)
        start = self.seq[symbol] + 1
        sides: dict[str, list[list[str]]] = {"bids": [], "asks": []}
        for name, levels in (("bids", change.bids), ("asks", change.asks)):
            for price, size in levels:
                self.seq[symbol] += 1
                sides[name].append([market.price_text(price), market.size_text(size), str(self.seq[symbol])])
        if self._steps[symbol] % 7 == 0:  # kucoin.md: price "0" placeholders advance the sequence
            self.seq[symbol] += 1
            sides["asks"].append(["0", "0", str(self.seq[symbol])])
        frames: list[Frame] = []
        if self.seq[symbol] >= start:
            frames.append((key, self._level2(native, start, self.seq[symbol], sides)))
        crossing = None
        if self.faults.take("crossed"):
            self.seq[symbol] += 1
            seq = self.seq[symbol]
            bad = {"bids": [[market.price_text(market.best_ask()), "1", str(seq)]], "asks": []}
            crossing = (key, self._level2(native, seq, seq, bad))
        return self._with_faults(symbol, frames, crossing)

    def _idle_book_frame(self, symbol: str, native: str) -> str:
        seq = self.seq[symbol] = self.seq[symbol] + 1
        return self._level2(native, seq, seq, {"bids": [], "asks": [["0", "0", str(seq)]]})

    def _level2(self, native: str, start: int, end: int, changes: dict[str, list[list[str]]]) -> str:
        data = {"changes": changes, "sequenceEnd": end, "sequenceStart": start, "symbol": native}
        data["time"] = self._now_ms()
        return _message(f"/market/level2:{native}", "trade.l2update", data)

    def _trade(self, symbol: str, native: str, trade: MarketTrade) -> Frame:
        market = self.markets[symbol]
        data = {
            "sequence": str(self.seq[symbol]),
            "type": "match",
            "symbol": native,
            "side": trade.side.value,
            "price": market.price_text(trade.price),
            "size": market.size_text(trade.size),
            "tradeId": f"{trade.trade_id:024x}",
            "takerOrderId": f"{trade.trade_id * 2:024x}",
            "makerOrderId": f"{trade.trade_id * 2 + 1:024x}",
            "time": str(self._now_ms() * 1_000_000 + 123),
        }
        return ("/market/match", native), _message(f"/market/match:{native}", "trade.l3match", data)

    def _other_frames(self, symbol: str, native: str, step: int) -> list[Frame]:
        market = self.markets[symbol]
        frames: list[Frame] = []
        bb, ba = market.best_bid(), market.best_ask()
        data = {
            "sequence": str(self.seq[symbol]),
            "price": market.price_text(bb),
            "size": market.size_text(1),
            "bestAsk": market.price_text(ba),
            "bestAskSize": market.size_text(market.asks[ba]),
            "bestBid": market.price_text(bb),
            "bestBidSize": market.size_text(market.bids[bb]),
            "time": self._now_ms(),
        }
        frames.append((("/market/ticker", native), _message(f"/market/ticker:{native}", "trade.ticker", data)))
        if step % 5 == 0:
            frames.append(self._candle(symbol, native, step))
        return frames

    def _candle(self, symbol: str, native: str, step: int) -> Frame:
        market = self.markets[symbol]
        mid = market.price_text(market.best_bid())
        start = (_T0_MS // 60_000 + step // 60) * 60
        candle = [str(start), mid, mid, market.price_text(market.best_ask()), mid, market.size_text(step), "1"]
        data = {"symbol": native, "candles": candle, "time": self._now_ms() * 1_000_000}
        topic = f"/market/candles:{native}_1min"
        return ("/market/candles", native), _message(topic, "trade.candles.update", data)

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path == "/api/v2/symbols":
            return 200, self._symbols_body()
        if path not in ("/api/v1/market/orderbook/level2_100", "/api/v3/market/orderbook/level2"):
            return None
        symbol = self.by_native.get(query.get("symbol", ""))
        if symbol is None:
            return 200, b'{"code":"400100","msg":"symbol not exists"}'
        fault = self._snapshot_fault()
        if fault is not None:
            return fault
        self.snapshots_served += 1
        market = self.markets[symbol]
        bids, asks = self.book_levels(symbol)
        if path.endswith("level2_100"):
            bids, asks = bids[:100], asks[:100]
        data = {
            "time": self._now_ms(),
            "sequence": str(self.seq[symbol]),
            "bids": [[market.price_text(p), market.size_text(s)] for p, s in bids],
            "asks": [[market.price_text(p), market.size_text(s)] for p, s in asks],
        }
        return 200, dumps({"code": _OK, "data": data}).encode()

    def _symbols_body(self) -> bytes:
        rows = []
        for symbol, native in self.natives.items():
            base, quote, _ = parse_symbol(symbol)
            rows.append(
                {
                    "symbol": native,
                    "name": native,
                    "baseCurrency": base,
                    "quoteCurrency": quote,
                    "baseMinSize": self.lot,
                    "baseIncrement": self.lot,
                    "priceIncrement": self.tick,
                    "enableTrading": True,
                }
            )
        return dumps({"code": _OK, "data": rows}).encode()


class MockKucoinFutures(_MockKucoinBase):
    """Mock KuCoin Futures (venue ``"kucoin-futures"``), perpetuals; sizes in
    contracts of :attr:`multiplier` base units. See the module docstring."""

    venue: ClassVar[str] = "kucoin-futures"
    lot: ClassVar[str] = "1"
    multiplier: ClassVar[str] = "0.001"
    inverse_face: ClassVar[str] = "1"
    """USD per contract of the USD-quoted (inverse) perpetuals, listed as
    ``multiplier: -face`` with ``isInverse: true`` (real ``XBTUSDM``: 1 USD)."""
    topic_names: ClassVar[dict[str, str]] = {
        "/contractMarket/level2": "book",
        "/contractMarket/execution": "trades",
        "/contractMarket/tickerV2": "quotes",
        "/contract/instrument": "funding",
        "/contractMarket/limitCandle": "candles",
    }

    def native(self, symbol: str) -> str:
        return kucoin_futures_symbol(symbol)

    def _book_frames(self, symbol: str, native: str, change: Change) -> list[Frame]:
        market = self.markets[symbol]
        key = ("/contractMarket/level2", native)
        frames: list[Frame] = []
        for side, levels in (("buy", change.bids), ("sell", change.asks)):
            for price, size in levels:
                frames.append(
                    (key, self._level2(native, symbol, f"{market.price_text(price)},{side},{market.size_text(size)}"))
                )
        crossing = None
        if self.faults.take("crossed"):
            crossing = (key, self._level2(native, symbol, f"{market.price_text(market.best_ask())},buy,1"))
        return self._with_faults(symbol, frames, crossing)

    def _idle_book_frame(self, symbol: str, native: str) -> str:
        market = self.markets[symbol]
        best = market.best_bid()  # the best bid again, same size
        return self._level2(native, symbol, f"{market.price_text(best)},buy,{market.size_text(market.bids[best])}")

    def _level2(self, native: str, symbol: str, change: str) -> str:
        self.seq[symbol] += 1
        data = {"sequence": self.seq[symbol], "change": change, "timestamp": self._now_ms()}
        return _message(f"/contractMarket/level2:{native}", "level2", data)

    def _trade(self, symbol: str, native: str, trade: MarketTrade) -> Frame:
        market = self.markets[symbol]
        data = {
            "symbol": native,
            "sequence": trade.trade_id,
            "side": trade.side.value,
            "size": trade.size,
            "price": market.price_text(trade.price),
            "takerOrderId": f"{trade.trade_id * 2:024x}",
            "makerOrderId": f"{trade.trade_id * 2 + 1:024x}",
            "tradeId": f"{trade.trade_id:024x}",
            "ts": self._now_ms() * 1_000_000,
        }
        return ("/contractMarket/execution", native), _message(f"/contractMarket/execution:{native}", "match", data)

    def _other_frames(self, symbol: str, native: str, step: int) -> list[Frame]:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        data = {
            "symbol": native,
            "sequence": self.seq[symbol],
            "bestBidSize": market.bids[bb],
            "bestBidPrice": market.price_text(bb),
            "bestAskPrice": market.price_text(ba),
            "bestAskSize": market.asks[ba],
            "ts": self._now_ms() * 1_000_000,
        }
        frames = [
            (("/contractMarket/tickerV2", native), _message(f"/contractMarket/tickerV2:{native}", "tickerV2", data))
        ]
        key = ("/contract/instrument", native)
        topic = f"/contract/instrument:{native}"
        if step % 5 == 0:
            mark = {
                "granularity": 1000,
                "indexPrice": market.price(bb),
                "markPrice": market.price(ba),
                "timestamp": self._now_ms(),
            }
            frames.append((key, _message(topic, "mark.index.price", mark)))
        if step % 10 == 0:
            funding = {"granularity": 60000, "fundingRate": 0.0001 * (1 + step % 7), "timestamp": self._now_ms()}
            frames.append((key, _message(topic, "funding.rate", funding)))
        if step % 5 == 0:
            mid = market.price_text(bb)
            start = (_T0_MS // 60_000 + step // 60) * 60
            candle = [str(start), mid, mid, market.price_text(ba), mid, str(step), "1"]
            frames.append(
                (
                    ("/contractMarket/limitCandle", native),
                    _message(
                        f"/contractMarket/limitCandle:{native}_1min",
                        "candle.stick",
                        {"symbol": native, "candles": candle, "time": self._now_ms()},
                    ),
                )
            )
        return frames

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path == "/api/v1/contracts/active":
            return 200, self._contracts_body()
        if path != "/api/v1/level2/snapshot":
            return None
        symbol = self.by_native.get(query.get("symbol", ""))
        if symbol is None:
            return 200, b'{"code":"100001","msg":"contract does not exist"}'
        fault = self._snapshot_fault()
        if fault is not None:
            return fault
        self.snapshots_served += 1
        market = self.markets[symbol]
        bids, asks = self.book_levels(symbol)
        data = {
            "symbol": self.natives[symbol],
            "sequence": self.seq[symbol],
            "asks": [[market.price(p), s] for p, s in asks],
            "bids": [[market.price(p), s] for p, s in bids],
            "ts": self._now_ms() * 1_000_000,
        }
        return 200, dumps({"code": _OK, "data": data}).encode()

    def _contracts_body(self) -> bytes:
        rows = []
        for symbol, native in self.natives.items():
            base, quote, _ = parse_symbol(symbol)
            inverse = quote == "USD"  # kucoin.md: XBTUSDM is the inverse perpetual
            base = "XBT" if base == "BTC" else base
            rows.append(
                {
                    "symbol": native,
                    "rootSymbol": quote,
                    "type": "FFWCSX",
                    "baseCurrency": base,
                    "quoteCurrency": quote,
                    "settleCurrency": base if inverse else quote,
                    "multiplier": -float(self.inverse_face) if inverse else float(self.multiplier),
                    "tickSize": float(self.tick),
                    "lotSize": 1,
                    "isInverse": inverse,
                    "status": "Open",
                }
            )
        return dumps({"code": _OK, "data": rows}).encode()
