"""Mock MEXC servers on 127.0.0.1: spot v3 (:class:`MockMexc`, protobuf pushes)
and USDT-M perpetual contracts (:class:`MockMexcFutures`, JSON).

Both speak the protocol of ``shared/exchanges/mexc.md``:

* **Spot** (``/ws``): JSON ``{"method":"SUBSCRIPTION"|"UNSUBSCRIPTION",
  "params":[...],"id":N}`` answered ``{"id":N,"code":0,"msg":"<streams, comma
  separated>"}``; a refusal (``reject_subscriptions``, an unknown symbol or
  stream, more than 30 subscriptions) is ``{"id":N,"code":0,"msg":"Not
  Subscribed successfully! [...]. Reason: ..."}`` as MEXC words it (the
  wording is a mock convention). ``{"method":"PING"}`` →
  ``{"id":0,"code":0,"msg":"PONG"}``. Pushes are binary
  ``PushDataV3ApiWrapper`` messages written by
  :mod:`wsmux.exchanges._mexc_proto`: aggregated depth (``fromVersion`` /
  ``toVersion``: every market step advances the symbol's version by the
  number of levels it changed), aggregated deals (``tradeType`` 1/2 for the
  taker's side, ``tradeId``), the book ticker whenever the best bid/ask
  changes, and a ``Min1`` kline every ``kline_every`` steps.
  ``GET /api/v3/depth?symbol=&limit=`` (``lastUpdateId`` = the current
  version) and ``GET /api/v3/exchangeInfo``.
* **Futures** (``/edge``): ``{"method":"sub.depth"|"sub.deal"|
  "sub.funding.rate","param":{"symbol":"BTC_USDT"},"gzip":false}`` answered
  ``{"channel":"rs.sub.depth","data":"success","ts":..}`` (or ``rs.error``);
  ``{"method":"ping"}`` → ``{"channel":"pong","data":ms}``. Pushes
  ``push.depth`` (``version`` + 1 per push, sizes in contracts),
  ``push.deal``, ``push.funding.rate`` (every ``funding_every`` steps),
  ``push.depth.full`` (``sub.depth.full`` with ``limit`` 5/10/20: the top
  levels as a snapshot when they change), ``push.ticker`` (every
  ``ticker_every`` steps, ``holdVol`` = :meth:`MockMexcFutures.hold_volume`
  contracts) and ``push.kline`` (``Min1`` only: after each trade the forming
  one-minute candle, preceded by the final one when a minute rolled); a
  subscription without ``"gzip": false`` gets gzip-compressed binary frames
  (MEXC's default is unconfirmed; the mock picks compression).
  ``GET /api/v1/contract/depth/SYM`` and ``/api/v1/contract/detail``.

When a client subscribes to a book, the mock sends an empty depth push with a
fresh version at once (a mock convention, as in the Binance mock), so the
client can anchor its REST snapshot without waiting for the market to move.
``mock.version(symbol)`` is the version of the book now.

Faults (``mock.faults``) on depth pushes: ``skip_seq`` (a push is lost: the
next one does not follow), ``duplicate`` (sent twice: stale, harmless),
``reorder`` (held back and sent after the next one), ``crossed`` (an extra
push, with a version of its own, puts a bid at the best ask); plus
``garbage`` (invalid JSON text), ``silent``, ``drop_trades``,
``reject_subscriptions``, ``snapshot_status``, ``snapshot_garbage`` and
``snapshot_delay`` for the REST depth.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable
from typing import Any, ClassVar, Self

from wsmux._json import dumps, loads
from wsmux.exchanges import _mexc_proto as proto
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._candles import MinuteCandles, MockCandle
from wsmux.testing._market import Change, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockMexc", "MockMexcBase", "MockMexcFutures"]

Frame = tuple[Any, str | bytes]
"""``(topic, payload)``: a push for the connections subscribed to ``topic``."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MockMexcBase(MockExchange):
    """What the spot and futures mocks share: per-symbol versions, depth faults,
    publishing each step's frames once to every subscribed connection."""

    versions_per_level: ClassVar[bool] = True
    """Spot: a push advances the version by the levels it changed; futures: by 1."""

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
        self._versions = {s: 10_000_000 * (i + 1) for i, s in enumerate(self.symbols)}
        self._held: dict[str, list[Frame]] = {}
        self._steps = dict.fromkeys(self.symbols, 0)
        self.snapshots_served = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    def native(self, symbol: str) -> str:
        """The venue's symbol of a unified one."""
        raise NotImplementedError

    def version(self, symbol: str) -> int:
        """The version of ``symbol``'s book now (what a REST snapshot would say)."""
        return self._versions[symbol]

    # --- publishing ----------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times and send every subscriber its pushes."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                self._steps[symbol] += 1
                await self._deliver(self.step_frames(symbol, change))

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """The base contract; advances the versions (use :meth:`publish`)."""
        return [p for topic, p in self.step_frames(symbol, change) if topic in conn.topics]

    async def _deliver(self, frames: list[Frame]) -> None:
        if not frames or self.faults.silent:
            return
        for conn in list(self.connections.values()):
            for topic, payload in frames:
                if topic in conn.topics:
                    await self._send(conn, self.wire(conn, topic, payload))

    def wire(self, conn: MockConnection, topic: Any, payload: str | bytes) -> str | bytes:
        """The frame as ``conn`` receives it (futures may gzip)."""
        return payload

    def step_frames(self, symbol: str, change: Change) -> list[Frame]:
        """The pushes of one market step."""
        raise NotImplementedError

    def book_frames(self, symbol: str, bids: dict[int, int], asks: dict[int, int]) -> list[Frame]:
        """The depth push(es) for a change of ``bids``/``asks``, faults applied."""
        first = self._versions[symbol] + 1
        last = self._versions[symbol] = self._versions[symbol] + (
            max(1, len(bids) + len(asks)) if self.versions_per_level else 1
        )
        frames = [self.depth_frame(symbol, first, last, bids, asks)]
        faults = self.faults
        if faults.take("skip_seq"):
            frames = []
        elif faults.take("duplicate"):
            frames = frames * 2
        if faults.take("crossed"):
            market = self.markets[symbol]
            bogus = self._versions[symbol] = self._versions[symbol] + 1
            frames.append(self.depth_frame(symbol, bogus, bogus, {market.best_ask(): 1}, {}))
        held = self._held.pop(symbol, None)
        if held is not None:
            frames = frames + held
        elif frames and faults.take("reorder"):
            self._held[symbol] = frames
            frames = []
        return frames

    def depth_frame(self, symbol: str, first: int, last: int, bids: dict[int, int], asks: dict[int, int]) -> Frame:
        """One depth push covering versions ``[first, last]``."""
        raise NotImplementedError

    async def kick(self, symbol: str) -> None:
        """Send every subscriber of ``symbol``'s book an empty depth push with a
        fresh version (on subscribe; no faults)."""
        version = self._versions[symbol] = self._versions[symbol] + 1
        await self._deliver([self.depth_frame(symbol, version, version, {}, {})])

    # --- REST ------------------------------------------------------------------------------

    def snapshot_fault(self) -> tuple[int, bytes] | None:
        """The answer the REST-depth faults force, or None."""
        faults = self.faults
        if faults.snapshot_status != 200:
            return faults.snapshot_status, b'{"code":-1003,"msg":"mock fault: snapshot refused"}'
        if faults.take("snapshot_garbage"):
            return 200, b'{"lastUpdateId":'
        self.snapshots_served += 1
        return None

    def sorted_levels(self, symbol: str, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        m = self.markets[symbol]
        return sorted(m.bids.items(), reverse=True)[:limit], sorted(m.asks.items())[:limit]


# --- spot ---------------------------------------------------------------------------------------

_DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms"
_DEALS = "spot@public.aggre.deals.v3.api.pb@100ms"
_TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms"
_KLINE = "spot@public.kline.v3.api.pb"
_MAX_SUBSCRIPTIONS = 30


class MockMexc(MockMexcBase):
    """Mock MEXC spot v3 (``"mexc"``). See the module docstring.

    Args:
        kline_every: send a ``Min1`` kline every this many steps (0: never).
    """

    venue: ClassVar[str] = "mexc"
    ws_path: ClassVar[str] = "/ws"
    tick: ClassVar[str] = "0.01"
    lot: ClassVar[str] = "0.000001"

    def __init__(self, symbols: Iterable[str], *, kline_every: int = 5, **kw: Any) -> None:
        super().__init__(symbols, **kw)
        self.kline_every = kline_every
        self._bbo: dict[str, tuple[int, int, int, int]] = {}
        self._candles: dict[str, list[int]] = {}

    def native(self, symbol: str) -> str:
        base, quote, _kind = parse_symbol(symbol)
        return base + quote

    def _wrap(self, stream: str, symbol: str, number: int, body: bytes, suffix: str = "") -> Frame:
        channel = f"{stream}@{self.natives[symbol]}{suffix}"
        return channel, proto.encode_wrapper(channel, self.natives[symbol], _now_ms(), number, body)

    def depth_frame(self, symbol: str, first: int, last: int, bids: dict[int, int], asks: dict[int, int]) -> Frame:
        m = self.markets[symbol]
        body = proto.encode_depths(
            [(m.price_text(p), m.size_text(q)) for p, q in bids.items()],
            [(m.price_text(p), m.size_text(q)) for p, q in asks.items()],
            _DEPTH,
            str(first),
            str(last),
        )
        return self._wrap(_DEPTH, symbol, proto.AGGRE_DEPTHS, body)

    def step_frames(self, symbol: str, change: Change) -> list[Frame]:
        m = self.markets[symbol]
        frames: list[Frame] = []
        if change.trade is not None and not self.faults.take("drop_trades"):
            frames.append(self._deal(symbol, change.trade))
        bbo = (m.best_bid(), m.bids[m.best_bid()], m.best_ask(), m.asks[m.best_ask()])
        if bbo != self._bbo.get(symbol):
            self._bbo[symbol] = bbo
            body = proto.encode_book_ticker(
                m.price_text(bbo[0]),
                m.size_text(bbo[1]),
                m.price_text(bbo[2]),
                m.size_text(bbo[3]),
                str(self._versions[symbol]),
            )
            frames.append(self._wrap(_TICKER, symbol, proto.AGGRE_BOOK_TICKER, body))
        if self.kline_every and self._steps[symbol] % self.kline_every == 0:
            frames.append(self._kline(symbol))
        if change.bids or change.asks:  # last: a client synced to the version has the step's other pushes
            frames += self.book_frames(symbol, dict(change.bids), dict(change.asks))
        return frames

    def _deal(self, symbol: str, trade: MarketTrade) -> Frame:
        m = self.markets[symbol]
        kind = 1 if trade.side is Side.BUY else 2
        deal = (m.price_text(trade.price), m.size_text(trade.size), kind, _now_ms(), str(trade.trade_id))
        return self._wrap(_DEALS, symbol, proto.AGGRE_DEALS, proto.encode_deals([deal], _DEALS))

    def candle(self, symbol: str) -> tuple[int, int, int, int, int]:
        """The last candle sent for ``symbol`` (of its mid price): ``(start_s, open, high, low, close)``
        in seconds and ticks."""
        start, open_, high, low, close = self._candles[symbol]
        return start, open_, high, low, close

    def _next_candle(self, symbol: str) -> tuple[int, int, int, int, int]:
        m = self.markets[symbol]
        mid = (m.best_bid() + m.best_ask()) // 2
        start = _now_ms() // 60_000 * 60
        candle = self._candles.get(symbol)
        if candle is None or candle[0] != start:
            candle = self._candles[symbol] = [start, mid, mid, mid, mid]
        candle[2] = max(candle[2], mid)
        candle[3] = min(candle[3], mid)
        candle[4] = mid
        return candle[0], candle[1], candle[2], candle[3], candle[4]

    def _kline(self, symbol: str) -> Frame:
        m = self.markets[symbol]
        start, open_, high, low, close = self._next_candle(symbol)
        text = m.price_text
        body = proto.encode_kline(
            (
                "Min1",
                start,
                text(open_),
                text(close),
                text(high),
                text(low),
                m.size_text(self._steps[symbol]),
                start + 60,
            )
        )
        return self._wrap(_KLINE, symbol, proto.SPOT_KLINE, body, "@Min1")

    # --- WebSocket protocol ------------------------------------------------------------------

    def _stream_symbol(self, stream: str) -> str | None:
        """The unified symbol of a stream this mock serves, else None."""
        prefix, _, native = stream.rpartition("@")
        if prefix in (_DEPTH, _DEALS, _TICKER):
            return self.by_native.get(native)
        if stream.startswith(_KLINE + "@") and stream.endswith("@Min1"):
            return self.by_native.get(stream[len(_KLINE) + 1 : -len("@Min1")])
        return None

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            method = msg["method"]
        except Exception:
            await conn.send(dumps({"id": 0, "code": 0, "msg": "Not valid JSON"}))
            return
        if method == "PING":
            await conn.send(dumps({"id": 0, "code": 0, "msg": "PONG"}))
            return
        req_id = msg.get("id", 0)
        params = msg.get("params")
        if method not in ("SUBSCRIPTION", "UNSUBSCRIPTION") or not isinstance(params, list):
            await conn.send(dumps({"id": req_id, "code": 0, "msg": f"Not valid method {method!r}"}))
            return
        if method == "UNSUBSCRIPTION":
            conn.topics.difference_update(params)
            await conn.send(dumps({"id": req_id, "code": 0, "msg": ",".join(params)}))
            return
        reason = None
        if self.faults.reject_subscriptions:
            reason = "Blocked!"
        elif any(not isinstance(p, str) or self._stream_symbol(p) is None for p in params):
            reason = "Invalid stream or symbol"
        elif len(conn.topics | set(params)) > _MAX_SUBSCRIPTIONS:
            reason = f"more than {_MAX_SUBSCRIPTIONS} subscriptions"
        if reason is not None:
            text = f"Not Subscribed successfully! [{','.join(map(str, params))}]. Reason: {reason}"
            await conn.send(dumps({"id": req_id, "code": 0, "msg": text}))
            return
        new = [p for p in params if p not in conn.topics]
        conn.topics.update(params)
        await conn.send(dumps({"id": req_id, "code": 0, "msg": ",".join(params)}))
        for stream in new:
            symbol = self._stream_symbol(stream)
            if symbol is not None and stream.startswith(_DEPTH + "@"):
                await self.kick(symbol)

    # --- REST --------------------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path == "/api/v3/exchangeInfo":
            return 200, self.exchange_info().encode()
        if path != "/api/v3/depth":
            return None
        symbol = self.by_native.get(query.get("symbol", ""))
        if symbol is None:
            return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return 400, b'{"code":-1100,"msg":"Illegal characters found in parameter \'limit\'."}'
        if not 1 <= limit <= 5000:
            return 400, b'{"code":-1130,"msg":"Invalid data sent for a parameter."}'
        fault = self.snapshot_fault()
        if fault is not None:
            return fault
        return 200, self.snapshot_body(symbol, limit).encode()

    def snapshot_body(self, symbol: str, limit: int = 1000) -> str:
        """``/api/v3/depth`` for ``symbol`` now."""
        m = self.markets[symbol]
        bids, asks = self.sorted_levels(symbol, limit)
        return dumps(
            {
                "lastUpdateId": self._versions[symbol],
                "bids": [[m.price_text(p), m.size_text(q)] for p, q in bids],
                "asks": [[m.price_text(p), m.size_text(q)] for p, q in asks],
                "timestamp": _now_ms(),
            }
        )

    def exchange_info(self) -> str:
        """``/api/v3/exchangeInfo`` listing the mock's symbols."""
        rows = []
        for symbol, native in self.natives.items():
            base, quote, _ = parse_symbol(symbol)
            rows.append(
                {
                    "symbol": native,
                    "status": "1",
                    "baseAsset": base,
                    "quoteAsset": quote,
                    "baseAssetPrecision": len(self.lot.split(".")[1]),
                    "quotePrecision": len(self.tick.split(".")[1]),
                    "baseSizePrecision": self.lot,
                    "quoteAmountPrecision": "1",
                }
            )
        return dumps({"timezone": "CST", "serverTime": _now_ms(), "symbols": rows})


# --- futures --------------------------------------------------------------------------------------


class MockMexcFutures(MockMexcBase):
    """Mock MEXC USDT-M perpetuals (``"mexc-futures"``, ``BTC-USDT-PERP`` ↔
    ``BTC_USDT``); sizes in whole contracts of ``contract_size`` base units.

    Args:
        funding_every: send ``push.funding.rate`` every this many steps.
        ticker_every: send ``push.ticker`` every this many steps.
    """

    venue: ClassVar[str] = "mexc-futures"
    ws_path: ClassVar[str] = "/edge"
    tick: ClassVar[str] = "0.1"
    lot: ClassVar[str] = "1"
    versions_per_level: ClassVar[bool] = False
    contract_size: ClassVar[float] = 0.0001

    def __init__(self, symbols: Iterable[str], *, funding_every: int = 10, ticker_every: int = 5, **kw: Any) -> None:
        super().__init__(symbols, **kw)
        self.funding_every = funding_every
        self.ticker_every = ticker_every
        self.candles = MinuteCandles()
        """The one-minute candles built from the mock's trades."""
        self._tops: dict[str, Any] = {}

    def hold_volume(self, symbol: str) -> int:
        """The open interest (contracts) the mock reports for ``symbol`` now."""
        return 50_000 + self.markets[symbol].next_trade_id

    def native(self, symbol: str) -> str:
        base, quote, _kind = parse_symbol(symbol)
        return f"{base}_{quote}"

    def _push(self, channel: str, symbol: str, data: Any) -> Frame:
        native = self.natives[symbol]
        return (channel, native), dumps({"channel": channel, "data": data, "symbol": native, "ts": _now_ms()})

    def _levels(self, symbol: str, levels: Iterable[tuple[int, int]]) -> list[list[float | int]]:
        m = self.markets[symbol]
        return [[float(m.price_text(p)), q, 1 if q else 0] for p, q in levels]

    def depth_frame(self, symbol: str, first: int, last: int, bids: dict[int, int], asks: dict[int, int]) -> Frame:
        data = {"asks": self._levels(symbol, asks.items()), "bids": self._levels(symbol, bids.items()), "version": last}
        return self._push("push.depth", symbol, data)

    def _kline(self, symbol: str, candle: MockCandle) -> Frame:
        m = self.markets[symbol]
        data = {
            "symbol": self.natives[symbol],
            "interval": "Min1",
            "t": candle.start_ms // 1000,
            "o": float(m.price_text(candle.open)),
            "h": float(m.price_text(candle.high)),
            "l": float(m.price_text(candle.low)),
            "c": float(m.price_text(candle.close)),
            "q": candle.volume,
            "a": round(candle.volume * self.contract_size, 8),
        }
        return self._push("push.kline", symbol, data)

    def _top_frame(self, symbol: str) -> Frame | None:
        """``push.depth.full`` when the top 5 levels changed since the last one."""
        bids, asks = self.sorted_levels(symbol, 5)
        top = (tuple(bids), tuple(asks))
        if self._tops.get(symbol) == top:
            return None
        self._tops[symbol] = top
        data = {
            "asks": self._levels(symbol, asks),
            "bids": self._levels(symbol, bids),
            "version": self._versions[symbol],
        }
        return self._push("push.depth.full", symbol, data)

    def step_frames(self, symbol: str, change: Change) -> list[Frame]:
        frames: list[Frame] = []
        m = self.markets[symbol]
        trade = change.trade
        if trade is not None:  # the venue's candle counts every trade, delivered or not
            finished, forming = self.candles.on_trade(symbol, _now_ms(), trade.price, trade.size)
            frames += [self._kline(symbol, c) for c in (finished, forming) if c is not None]
        if self.ticker_every and self._steps[symbol] % self.ticker_every == 0:
            ticker = {
                "symbol": self.natives[symbol],
                "lastPrice": float(m.price_text(m.best_bid())),
                "bid1": float(m.price_text(m.best_bid())),
                "ask1": float(m.price_text(m.best_ask())),
                "holdVol": self.hold_volume(symbol),
                "fundingRate": 0.0001,
                "timestamp": _now_ms(),
            }
            frames.append(self._push("push.ticker", symbol, ticker))
        if trade is not None and not self.faults.take("drop_trades"):
            deal = {
                "p": float(m.price_text(trade.price)),
                "v": trade.size,
                "T": 1 if trade.side is Side.BUY else 2,
                "O": 1,
                "M": 2,
                "t": _now_ms(),
            }
            frames.append(self._push("push.deal", symbol, deal))
        if self.funding_every and self._steps[symbol] % self.funding_every == 0:
            eight_hours = 8 * 3600 * 1000
            data = {
                "symbol": self.natives[symbol],
                "rate": 0.0001,
                "nextSettleTime": (_now_ms() // eight_hours + 1) * eight_hours,
            }
            frames.append(self._push("push.funding.rate", symbol, data))
        if change.bids or change.asks:  # last, as on spot
            frames += self.book_frames(symbol, dict(change.bids), dict(change.asks))
            top = self._top_frame(symbol)
            if top is not None:
                frames.append(top)
        return frames

    def wire(self, conn: MockConnection, topic: Any, payload: str | bytes) -> str | bytes:
        if conn.state.get("gzip", {}).get(topic):
            return gzip.compress(payload.encode() if isinstance(payload, str) else payload)
        return payload

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        now = _now_ms()
        try:
            msg = loads(message)
            method = msg["method"]
        except Exception:
            await conn.send(dumps({"channel": "rs.error", "data": "invalid message", "ts": now}))
            return
        if method == "ping":
            await conn.send(dumps({"channel": "pong", "data": now}))
            return
        op, _, name = str(method).partition(".")
        param = msg.get("param") if isinstance(msg.get("param"), dict) else {}
        symbol = self.by_native.get(param.get("symbol", ""))
        known = ("depth", "deal", "funding.rate", "depth.full", "ticker", "kline")
        bad_param = (name == "kline" and param.get("interval") != "Min1") or (
            name == "depth.full" and param.get("limit", 20) not in (5, 10, 20)
        )
        if op not in ("sub", "unsub") or name not in known or (op == "sub" and bad_param):
            await conn.send(dumps({"channel": "rs.error", "data": f"unknown method {method}", "ts": now}))
            return
        if symbol is None:
            await conn.send(dumps({"channel": "rs.error", "data": "Contract doesn't exist!", "ts": now}))
            return
        topic = (f"push.{name}", self.natives[symbol])
        if op == "unsub":
            conn.topics.discard(topic)
            await conn.send(dumps({"channel": f"rs.unsub.{name}", "data": "success", "ts": now}))
            return
        if self.faults.reject_subscriptions:
            await conn.send(dumps({"channel": "rs.error", "data": "mock fault: subscription refused", "ts": now}))
            return
        new = topic not in conn.topics
        conn.topics.add(topic)
        conn.state.setdefault("gzip", {})[topic] = msg.get("gzip", True) is not False
        await conn.send(dumps({"channel": f"rs.sub.{name}", "data": "success", "ts": now}))
        if new and name == "depth":
            await self.kick(symbol)
        if new and name == "depth.full":  # the current top at once, like the venue's first push
            self._tops.pop(symbol, None)
            top = self._top_frame(symbol)
            if top is not None:
                await conn.send(self.wire(conn, top[0], top[1]))

    # --- REST ------------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path == "/api/v1/contract/detail":
            return 200, self.contract_detail().encode()
        prefix = "/api/v1/contract/depth/"
        if not path.startswith(prefix):
            return None
        symbol = self.by_native.get(path[len(prefix) :])
        if symbol is None:
            return 200, b'{"success":false,"code":1001,"message":"contract not exist"}'
        fault = self.snapshot_fault()
        if fault is not None:
            return fault
        return 200, self.snapshot_body(symbol).encode()

    def snapshot_body(self, symbol: str, limit: int = 1000) -> str:
        """``/api/v1/contract/depth/SYM`` for ``symbol`` now."""
        bids, asks = self.sorted_levels(symbol, limit)
        data = {
            "asks": self._levels(symbol, asks),
            "bids": self._levels(symbol, bids),
            "version": self._versions[symbol],
            "timestamp": _now_ms(),
        }
        return dumps({"success": True, "code": 0, "data": data})

    def contract_detail(self) -> str:
        """``/api/v1/contract/detail`` listing the mock's contracts."""
        rows = [
            {
                "symbol": native,
                "contractSize": self.contract_size,
                "priceUnit": float(self.tick),
                "volUnit": 1,
                "minVol": 1,
            }
            for native in self.natives.values()
        ]
        return dumps({"success": True, "code": 0, "data": rows})
