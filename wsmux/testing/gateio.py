"""Mock Gate v4 spot and USDT-perpetual WebSockets (and REST instruments) on
127.0.0.1: :class:`MockGate` and :class:`MockGateFutures`.

They speak the protocol of ``shared/exchanges/gateio.md``:

* ``{"time", "id", "channel", "event": "subscribe"|"unsubscribe", "payload"}``
  answered with the echo and ``result.status`` (``success``/``fail``) and an
  ``error`` object on refusal (an unknown channel or symbol, an ``obu`` stream
  already subscribed on the connection, a request whose ``time`` is missing,
  or ``faults.reject_subscriptions``). ``<prefix>.ping`` → ``<prefix>.pong``.
* Order Book V2 (``<prefix>.obu``, ``ob.<PAIR>.400`` / ``.50``): a full
  snapshot (``full: true``) on subscribe, then one delta per market step that
  changes the stream's top-N view, with ``U``/``u`` (one id per level change,
  per stream). Levels that leave the window are not deleted (the client trims);
  levels that enter it are sent. Futures amounts are contract counts.
* Trades, ``book_ticker`` (when the best bid/ask changes), ``candlesticks``
  (``1m``, every 5 steps); futures also ``tickers`` (funding, every 10 steps),
  ``contract_stats`` (every 10) and ``public_liquidates`` (every 3rd trade).
* REST ``/api/v4/spot/currency_pairs``, ``/api/v4/futures/usdt/contracts``.

Faults (``mock.faults``) on ``obu`` deltas: ``skip_seq`` (one lost),
``duplicate`` (sent twice), ``reorder`` (held back behind the next),
``crossed`` (an extra delta puts a bid at the best ask); plus ``garbage``,
``silent``, ``drop_trades`` and ``reject_subscriptions``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.gateio import OBU_DEPTHS
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange
from wsmux.testing._window import BookWindow

__all__ = ["MockGate", "MockGateFutures"]

_T0_MS = 1_700_000_000_000


class _MockGateBase(MockExchange):
    prefix: ClassVar[str]
    perpetual: ClassVar[bool]
    server_time_path: ClassVar[str | None] = "/api/v4/spot/time"

    def server_time_body(self, now_ns: int) -> str:
        """The REST server time (:attr:`~wsmux.testing.MockExchange.clock_skew` applies)."""
        return f'{{"server_time":{now_ns // 1_000_000}}}'

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
        self.natives = {}
        for symbol in self.symbols:
            base, quote, _ = parse_symbol(symbol)
            self.natives[symbol] = f"{base}_{quote}"
        self.by_native = {n: s for s, n in self.natives.items()}
        self.streams: dict[tuple[str, int], BookWindow] = {}
        """Order Book V2 streams by (symbol, depth); ``.id`` is the last ``u`` sent."""
        self._ms = _T0_MS
        self._trade_ids = itertools.count(300_000_000)
        self._steps = dict.fromkeys(self.symbols, 0)
        self._bbo: dict[str, tuple[int, int, int, int]] = {}
        self._held: dict[tuple[str, int], str] = {}

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v4"

    def _now_ms(self) -> int:
        self._ms += 1
        return self._ms

    def _frame(self, channel: str, result: Any) -> str:
        ms = self._now_ms()
        return dumps({"time": ms // 1000, "time_ms": ms, "channel": channel, "event": "update", "result": result})

    # --- requests ------------------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            channel = msg["channel"]
        except Exception:
            await conn.send(dumps({"error": {"code": 1, "message": "invalid request body"}, "result": None}))
            return
        if channel == f"{self.prefix}.ping":
            await conn.send(dumps({"time": self._now_ms() // 1000, "channel": f"{self.prefix}.pong", "result": None}))
            return
        event = msg.get("event")
        payload = msg.get("payload")
        reply = {"time": self._now_ms() // 1000, "id": msg.get("id"), "channel": channel, "event": event}
        reply["payload"] = payload
        error = self._check(conn, channel, event, payload, msg.get("time"))
        if error is not None:
            reply["error"] = {"code": 2, "message": error}
            reply["result"] = {"status": "fail"}
            await conn.send(dumps(reply))
            return
        reply["result"] = {"status": "success"}
        await conn.send(dumps(reply))
        keys = self._keys(channel, payload)
        if event == "unsubscribe":
            conn.topics.difference_update(keys)
            return
        conn.topics.update(keys)
        for key in keys:
            if key[0] == "obu":
                await conn.send(self._full(key[1], int(key[2])))

    def _check(self, conn: MockConnection, channel: Any, event: Any, payload: Any, time_s: Any) -> str | None:
        if event not in ("subscribe", "unsubscribe") or not isinstance(payload, list) or not payload:
            return f"bad request {event!r} {payload!r}"
        if not isinstance(time_s, int):
            return "time is required"
        if event == "subscribe" and self.faults.reject_subscriptions:
            return f"Alert sub {payload}"
        keys = self._keys(channel, payload)
        if not keys:
            return f"unknown channel or symbol {channel} {payload}"
        if event == "subscribe" and any(k[0] == "obu" and k in conn.topics for k in keys):
            return f"Alert sub {payload[0]}"
        return None

    def _keys(self, channel: Any, payload: Any) -> list[tuple[str, ...]]:
        kind = str(channel).removeprefix(f"{self.prefix}.")
        if kind == "obu" and len(payload) == 1:
            parts = str(payload[0]).split(".")
            if len(parts) == 3 and parts[0] == "ob" and parts[1] in self.by_native and parts[2] in ("50", "400"):
                return [("obu", self.by_native[parts[1]], parts[2])]
            return []
        if kind == "candlesticks" and len(payload) == 2 and payload[0] == "1m" and payload[1] in self.by_native:
            return [("candlesticks", self.by_native[payload[1]])]
        if kind == "contract_stats" and self.perpetual and len(payload) == 2 and payload[0] in self.by_native:
            return [("contract_stats", self.by_native[payload[0]])]
        allowed = {"trades", "book_ticker"} | ({"tickers", "public_liquidates"} if self.perpetual else set())
        if kind in allowed and all(p in self.by_native for p in payload):
            return [(kind, self.by_native[p]) for p in payload]
        return []

    # --- the book ------------------------------------------------------------------------

    def _stream(self, symbol: str, depth: int) -> BookWindow:
        stream = self.streams.get((symbol, depth))
        if stream is None:
            first = 79_000_000_000 + 1000 * len(self.streams)
            stream = self.streams[symbol, depth] = BookWindow(self.markets[symbol], depth, first)
        return stream

    def _levels(self, market: Market, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [[market.price_text(p), market.size_text(s)] for p, s in levels]

    def _obu(self, symbol: str, depth: int, result: dict[str, Any]) -> str:
        base = {"t": self._now_ms(), "s": f"ob.{self.natives[symbol]}.{depth}"}
        base.update(result)
        if self.perpetual:
            return dumps({"channel": "futures.obu", "result": base, "time_ms": self._now_ms()})
        return self._frame("spot.obu", base)

    def _full(self, symbol: str, depth: int) -> str:
        market = self.markets[symbol]
        stream = self._stream(symbol, depth)
        bids = self._levels(market, sorted(stream.bids.items(), reverse=True))
        asks = self._levels(market, sorted(stream.asks.items()))
        return self._obu(symbol, depth, {"full": True, "u": stream.id, "b": bids, "a": asks})

    def book_view(self, symbol: str, depth: int = OBU_DEPTHS[1]) -> tuple[tuple[tuple[float, float], ...], ...]:
        """The top ``depth`` levels of the mock's book as floats, best first."""
        bids, asks = self.markets[symbol].depth()
        return bids[:depth], asks[:depth]

    def _deltas(self, symbol: str, depth: int) -> list[str]:
        market = self.markets[symbol]
        stream = self._stream(symbol, depth)
        bid_changes, ask_changes = stream.step(market)
        out: list[str] = []
        faults = self.faults
        if bid_changes or ask_changes:
            first = stream.id + 1
            stream.id += len(bid_changes) + len(ask_changes)
            delta = {"U": first, "u": stream.id}
            delta["b"] = self._levels(market, bid_changes)  # type: ignore[assignment]
            delta["a"] = self._levels(market, ask_changes)  # type: ignore[assignment]
            message = self._obu(symbol, depth, delta)
            if not faults.take("skip_seq"):
                out.append(message)
                if faults.take("duplicate"):
                    out.append(message)
        if faults.take("crossed"):
            stream.id += 1
            best_ask = market.best_ask()
            crossing = {"U": stream.id, "u": stream.id, "b": self._levels(market, [(best_ask, 1)]), "a": []}
            out.append(self._obu(symbol, depth, crossing))
        key = (symbol, depth)
        if out and key in self._held:
            out.insert(1, self._held.pop(key))
        elif out and faults.take("reorder"):
            self._held[key] = out.pop(0)
        return out

    # --- publishing ----------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times and send each stream's frames to
        its subscribers (book ids are per stream, shared by connections)."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                frames = self._step(symbol, self.markets[symbol].step())
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    for key, text in frames:
                        if key in conn.topics:
                            await self._send(conn, text)

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """``conn``'s frames for one step (advances the stream ids: use :meth:`publish`)."""
        return [text for key, text in self._step(symbol, change) if key in conn.topics]

    def _step(self, symbol: str, change: Change) -> list[tuple[tuple[str, ...], str]]:
        self._steps[symbol] += 1
        step = self._steps[symbol]
        frames: list[tuple[tuple[str, ...], str]] = []
        for depth in OBU_DEPTHS:
            if (symbol, depth) in self.streams:  # created by the first subscriber's full snapshot
                frames.extend((("obu", symbol, str(depth)), text) for text in self._deltas(symbol, depth))
        trade = change.trade
        if trade is not None and not self.faults.take("drop_trades"):
            frames.append((("trades", symbol), self._trade(symbol, trade)))
            if self.perpetual and trade.trade_id % 3 == 0:
                frames.append((("public_liquidates", symbol), self._liquidation(symbol, trade)))
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        bbo = (bb, market.bids[bb], ba, market.asks[ba])
        if bbo != self._bbo.get(symbol):
            self._bbo[symbol] = bbo
            frames.append((("book_ticker", symbol), self._book_ticker(symbol, bbo)))
        if step % 5 == 0:
            frames.append((("candlesticks", symbol), self._candle(symbol, step)))
        if self.perpetual and step % 10 == 0:
            frames.extend(self._derivative_frames(symbol, step))
        return frames

    def _trade(self, symbol: str, trade: MarketTrade) -> str:
        raise NotImplementedError

    def _book_ticker(self, symbol: str, bbo: tuple[int, int, int, int]) -> str:
        raise NotImplementedError

    def _candle(self, symbol: str, step: int) -> str:
        raise NotImplementedError

    def _liquidation(self, symbol: str, trade: MarketTrade) -> str:
        raise NotImplementedError

    def _derivative_frames(self, symbol: str, step: int) -> list[tuple[tuple[str, ...], str]]:
        return []

    def _candle_row(self, symbol: str, step: int) -> dict[str, Any]:
        market = self.markets[symbol]
        mid = market.price_text(market.best_bid())
        return {
            "t": str((_T0_MS // 60_000 + step // 60) * 60),
            "o": mid,
            "c": mid,
            "h": market.price_text(market.best_ask()),
            "l": mid,
            "n": f"1m_{self.natives[symbol]}",
            "w": step % 60 == 0,
        }


class MockGate(_MockGateBase):
    """Mock Gate spot (venue ``"gateio"``). See the module docstring."""

    venue: ClassVar[str] = "gateio"
    prefix: ClassVar[str] = "spot"
    perpetual: ClassVar[bool] = False
    ws_path: ClassVar[str] = "/ws/v4/"

    def _trade(self, symbol: str, trade: MarketTrade) -> str:
        market = self.markets[symbol]
        ms = self._now_ms()
        result = {
            "id": next(self._trade_ids),
            "id_market": trade.trade_id,
            "create_time": ms // 1000,
            "create_time_ms": f"{ms}.1234",
            "side": trade.side.value,
            "currency_pair": self.natives[symbol],
            "amount": market.size_text(trade.size),
            "price": market.price_text(trade.price),
            "range": f"{trade.trade_id}-{trade.trade_id}",
        }
        return self._frame("spot.trades", result)

    def _book_ticker(self, symbol: str, bbo: tuple[int, int, int, int]) -> str:
        market = self.markets[symbol]
        bb, bs, ba, az = bbo
        result = {
            "t": self._now_ms(),
            "u": self._stream(symbol, OBU_DEPTHS[1]).id,
            "s": self.natives[symbol],
            "b": market.price_text(bb),
            "B": market.size_text(bs),
            "a": market.price_text(ba),
            "A": market.size_text(az),
        }
        return self._frame("spot.book_ticker", result)

    def _candle(self, symbol: str, step: int) -> str:
        row = self._candle_row(symbol, step)
        row["v"] = "1000.5"  # quote volume
        row["a"] = self.markets[symbol].size_text(step)
        return self._frame("spot.candlesticks", row)

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path != "/api/v4/spot/currency_pairs":
            return None
        rows = []
        for symbol, native in self.natives.items():
            base, quote, _ = parse_symbol(symbol)
            rows.append(
                {
                    "id": native,
                    "base": base,
                    "quote": quote,
                    "precision": len(self.tick.partition(".")[2]),
                    "amount_precision": len(self.lot.partition(".")[2]),
                    "trade_status": "tradable",
                }
            )
        return 200, dumps(rows).encode()


class MockGateFutures(_MockGateBase):
    """Mock Gate USDT perpetuals (venue ``"gateio-futures"``); sizes in
    contracts of :attr:`quanto_multiplier`. See the module docstring."""

    venue: ClassVar[str] = "gateio-futures"
    prefix: ClassVar[str] = "futures"
    perpetual: ClassVar[bool] = True
    ws_path: ClassVar[str] = "/v4/ws/usdt"
    lot: ClassVar[str] = "1"
    quanto_multiplier: ClassVar[str] = "0.0001"

    def _trade(self, symbol: str, trade: MarketTrade) -> str:
        market = self.markets[symbol]
        ms = self._now_ms()
        signed = trade.size if trade.side.value == "buy" else -trade.size
        row = {
            "id": next(self._trade_ids),
            "size": signed,
            "price": market.price_text(trade.price),
            "create_time": ms // 1000,
            "create_time_ms": ms,
            "contract": self.natives[symbol],
        }
        return self._frame("futures.trades", [row])

    def _book_ticker(self, symbol: str, bbo: tuple[int, int, int, int]) -> str:
        market = self.markets[symbol]
        bb, bs, ba, az = bbo
        result = {
            "t": self._now_ms(),
            "u": self._stream(symbol, OBU_DEPTHS[1]).id,
            "s": self.natives[symbol],
            "b": market.price_text(bb),
            "B": bs,
            "a": market.price_text(ba),
            "A": az,
        }
        return self._frame("futures.book_ticker", result)

    def _candle(self, symbol: str, step: int) -> str:
        row = self._candle_row(symbol, step)
        row["v"] = step  # contracts
        return self._frame("futures.candlesticks", [row])

    def _liquidation(self, symbol: str, trade: MarketTrade) -> str:
        market = self.markets[symbol]
        size = -trade.size if trade.side.value == "sell" else trade.size
        row = {
            "price": market.price(trade.price),
            "size": size,
            "time_ms": self._now_ms(),
            "contract": self.natives[symbol],
        }
        return self._frame("futures.public_liquidates", [row])

    def _derivative_frames(self, symbol: str, step: int) -> list[tuple[tuple[str, ...], str]]:
        market = self.markets[symbol]
        native = self.natives[symbol]
        ticker = {
            "contract": native,
            "last": market.price_text(market.best_bid()),
            "funding_rate": f"0.000{10 + step % 90}",
            "mark_price": market.price_text(market.best_ask()),
            "index_price": market.price_text(market.best_bid()),
            "total_size": str(500_000 + step),
        }
        stats = {"time": self._now_ms() // 1000, "contract": native, "open_interest": 500_000 + step}
        return [
            (("tickers", symbol), self._frame("futures.tickers", [ticker])),
            (("contract_stats", symbol), self._frame("futures.contract_stats", stats)),
        ]

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path != "/api/v4/futures/usdt/contracts":
            return None
        rows = [
            {
                "name": native,
                "type": "direct",
                "quanto_multiplier": self.quanto_multiplier,
                "order_price_round": self.tick,
                "order_size_min": 1,
                "status": "trading",
                "in_delisting": False,
            }
            for native in self.natives.values()
        ]
        return 200, dumps(rows).encode()
