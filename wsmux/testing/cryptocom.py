"""A mock Crypto.com Exchange v1 market-data WebSocket (and REST instruments) on
127.0.0.1: :class:`MockCryptocom`.

It speaks the protocol of ``shared/exchanges/cryptocom.md``:

* ``{"id", "method": "subscribe"|"unsubscribe", "params": {"channels": [...]}}``
  answered ``{"id", "method", "code": 0}``, or a non-zero ``code`` for an
  unknown channel or instrument, a ``book`` channel without a depth of 10 or
  50, or ``faults.reject_subscriptions``. Data frames are ``{"id": -1,
  "method": "subscribe", "code": 0, "result": {"instrument_name",
  "subscription", "channel", "data"}}``.
* **Heartbeats.** Every ``heartbeat_every`` steps each connection gets
  ``{"id": n, "method": "public/heartbeat", "code": 0}``; a connection that
  left one unanswered (``public/respond-heartbeat``, same id) for
  ``heartbeat_timeout`` seconds is closed at the next one, as the venue does.
  ``heartbeats_sent`` / ``heartbeats_answered`` count them.
* **Book** (``book.{inst}.{depth}``, ``SNAPSHOT_AND_UPDATE``): the top-N snapshot
  (``channel: "book"``, id ``u``) on subscribe, then one ``book.update`` per
  market step with ``u``/``pu`` — an empty delta when the window did not
  change, as the venue sends. Ids are per stream (shared by connections).
* ``trade`` (taker side, string id ``d``, ``tn`` ns), ``ticker`` (when the
  best bid/ask changes), ``candlestick.1m`` (every 5 steps), ``funding``
  (perpetuals, every 10 steps).
* REST ``/exchange/v1/public/get-instruments``.

Faults (``mock.faults``) on ``book.update``: ``skip_seq`` (one lost),
``duplicate`` (sent twice), ``reorder`` (held back behind the next),
``crossed`` (an extra delta puts a bid at the best ask); plus ``garbage``,
``silent``, ``drop_trades`` and ``reject_subscriptions``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.cryptocom import BOOK_DEPTHS, cryptocom_symbol
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange
from wsmux.testing._window import BookWindow

__all__ = ["MockCryptocom"]

_T0_MS = 1_700_000_000_000
Key = tuple[str, ...]


class MockCryptocom(MockExchange):
    """Mock Crypto.com Exchange v1 market data (venue ``"cryptocom"``). See the
    module docstring.

    Args:
        heartbeat_every: send a heartbeat every this many :meth:`publish` steps
            (0: never).
        heartbeat_timeout: seconds a heartbeat may stay unanswered.
        symbols, seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "cryptocom"
    ws_path: ClassVar[str] = "/exchange/v1/market"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        heartbeat_every: int = 25,
        heartbeat_timeout: float = 5.0,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.heartbeat_every = heartbeat_every
        self.heartbeat_timeout = heartbeat_timeout
        self.heartbeats_sent = 0
        self._answered = asyncio.Event()
        self.natives = {s: cryptocom_symbol(s) for s in self.symbols}
        self.by_native = {n: s for s, n in self.natives.items()}
        self.streams: dict[tuple[str, int], BookWindow] = {}
        """Book streams by (symbol, depth); ``.id`` is the last ``u`` sent."""
        self.heartbeats_answered = 0
        self.closed_for_heartbeat = 0
        self._ms = _T0_MS
        self._steps = 0
        self._heartbeat_ids = itertools.count(1_587_523_073_344)
        self._trade_ids = itertools.count(2_358_394_540_212_355_488)
        self._bbo: dict[str, tuple[int, int, int, int]] = {}
        self._held: dict[tuple[str, int], str] = {}

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}/exchange/v1"

    def _now_ms(self) -> int:
        self._ms += 1
        return self._ms

    def _frame(self, symbol: str, subscription: str, channel: str, data: list[Any], **extra: Any) -> str:
        result: dict[str, Any] = {"instrument_name": self.natives[symbol], "subscription": subscription}
        result["channel"] = channel
        result.update(extra)
        result["data"] = data
        return dumps({"id": -1, "method": "subscribe", "code": 0, "result": result})

    # --- client messages -------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            method = msg["method"]
            req_id = msg.get("id")
        except Exception:
            await conn.send(dumps({"id": -1, "method": "", "code": 10004, "message": "BAD_REQUEST"}))
            return
        if method == "public/respond-heartbeat":
            if req_id == conn.state.get("heartbeat"):
                conn.state["heartbeat"] = None
                self.heartbeats_answered += 1
                self._answered.set()
            return
        channels = (msg.get("params") or {}).get("channels")
        keys = [self._key(name) for name in channels] if isinstance(channels, list) and channels else [None]
        if method not in ("subscribe", "unsubscribe") or None in keys:
            await conn.send(dumps({"id": req_id, "method": method, "code": 10004, "message": "BAD_REQUEST"}))
            return
        if method == "subscribe" and self.faults.reject_subscriptions:
            await conn.send(dumps({"id": req_id, "method": method, "code": 10004, "message": "mock fault: refused"}))
            return
        await conn.send(dumps({"id": req_id, "method": method, "code": 0}))
        for key in keys:
            assert key is not None
            if method == "unsubscribe":
                conn.topics.discard(key)
                continue
            conn.topics.add(key)
            if key[0] == "book":
                await conn.send(self._snapshot(self.by_native[key[1]], int(key[2])))

    def _key(self, name: Any) -> Key | None:
        parts = str(name).split(".")
        kind = parts[0]
        if kind == "book" and len(parts) == 3 and parts[1] in self.by_native and parts[2] in ("10", "50"):
            return ("book", parts[1], parts[2])
        if kind == "candlestick" and len(parts) == 3 and parts[1] == "1m" and parts[2] in self.by_native:
            return ("candlestick", parts[2])
        if kind in ("trade", "ticker") and len(parts) == 2 and parts[1] in self.by_native:
            return (kind, parts[1])
        if kind == "funding" and len(parts) == 2 and parts[1].endswith("-PERP") and parts[1] in self.by_native:
            return (kind, parts[1])
        return None

    # --- the book --------------------------------------------------------------------

    def _stream(self, symbol: str, depth: int) -> BookWindow:
        stream = self.streams.get((symbol, depth))
        if stream is None:
            first = 78_795_598_000_000 + 1_000_000 * len(self.streams)
            stream = self.streams[symbol, depth] = BookWindow(self.markets[symbol], depth, first)
        return stream

    def _levels(self, market: Market, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [[market.price_text(p), market.size_text(s), "1" if s else "0"] for p, s in levels]

    def _snapshot(self, symbol: str, depth: int) -> str:
        market = self.markets[symbol]
        stream = self._stream(symbol, depth)
        now = self._now_ms()
        entry = {
            "bids": self._levels(market, sorted(stream.bids.items(), reverse=True)),
            "asks": self._levels(market, sorted(stream.asks.items())),
            "t": now,
            "tt": now,
            "u": stream.id,
        }
        name = f"book.{self.natives[symbol]}.{depth}"
        return self._frame(symbol, name, "book", [entry], depth=depth)

    def book_view(self, symbol: str, depth: int = BOOK_DEPTHS[1]) -> tuple[tuple[tuple[float, float], ...], ...]:
        """The top ``depth`` levels of the mock's book as floats, best first."""
        bids, asks = self.markets[symbol].depth()
        return bids[:depth], asks[:depth]

    def _update(self, symbol: str, depth: int, bids: list[list[str]], asks: list[list[str]], skip: int = 0) -> str:
        stream = self._stream(symbol, depth)
        prev = stream.id
        stream.id += 1 + skip
        now = self._now_ms()
        entry = {"update": {"bids": bids, "asks": asks}, "t": now, "tt": now, "u": stream.id, "pu": prev, "cs": 0}
        name = f"book.{self.natives[symbol]}.{depth}"
        return self._frame(symbol, name, "book.update", [entry], depth=depth)

    def _deltas(self, symbol: str, depth: int) -> list[str]:
        market = self.markets[symbol]
        stream = self._stream(symbol, depth)
        bid_changes, ask_changes = stream.step(market)
        faults = self.faults
        # every step sends a delta, empty when the window did not change (the venue's heartbeat)
        message = self._update(symbol, depth, self._levels(market, bid_changes), self._levels(market, ask_changes))
        out: list[str] = []
        if not faults.take("skip_seq"):
            out.append(message)
            if faults.take("duplicate"):
                out.append(message)
        if faults.take("crossed"):
            out.append(self._update(symbol, depth, self._levels(market, [(market.best_ask(), 1)]), []))
        key = (symbol, depth)
        if out and key in self._held:
            out.insert(1, self._held.pop(key))
        elif out and faults.take("reorder"):
            self._held[key] = out.pop(0)
        return out

    # --- publishing ----------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times and send the frames to subscribers;
        heartbeats every ``heartbeat_every`` steps."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            self._steps += 1
            for symbol in targets:
                frames = self._step(symbol, self.markets[symbol].step())
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    for key, text in frames:
                        if key in conn.topics:
                            await self._send(conn, text)
            if self.heartbeat_every and self._steps % self.heartbeat_every == 0 and not self.faults.silent:
                await self._heartbeats()

    async def _heartbeats(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections.values()):
            if conn.state.get("heartbeat") is not None:
                if now - conn.state["heartbeat_sent"] >= self.heartbeat_timeout:
                    self.closed_for_heartbeat += 1
                    await conn.ws.close(1000, "heartbeat not answered")
                continue  # still within its deadline: no new heartbeat yet
            conn.state["heartbeat"] = hb = next(self._heartbeat_ids)
            conn.state["heartbeat_sent"] = now
            self.heartbeats_sent += 1
            await conn.send(dumps({"id": hb, "method": "public/heartbeat", "code": 0}))

    async def wait_heartbeats_answered(self, timeout: float = 10.0) -> None:
        """Wait until every heartbeat sent so far has been answered (a bound
        for a test, not a synchronisation guess: each answer sets an event)."""
        async with asyncio.timeout(timeout):
            while self.heartbeats_answered < self.heartbeats_sent:
                self._answered.clear()
                await self._answered.wait()

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """``conn``'s frames for one step (advances the stream ids: use :meth:`publish`)."""
        return [text for key, text in self._step(symbol, change) if key in conn.topics]

    def _step(self, symbol: str, change: Change) -> list[tuple[Key, str]]:
        native = self.natives[symbol]
        market = self.markets[symbol]
        frames: list[tuple[Key, str]] = []
        for depth in BOOK_DEPTHS:
            if (symbol, depth) in self.streams:  # created by the first subscriber's snapshot
                frames.extend((("book", native, str(depth)), text) for text in self._deltas(symbol, depth))
        trade = change.trade
        if trade is not None and not self.faults.take("drop_trades"):
            frames.append((("trade", native), self._trade(symbol, trade)))
        bb, ba = market.best_bid(), market.best_ask()
        bbo = (bb, market.bids[bb], ba, market.asks[ba])
        if bbo != self._bbo.get(symbol):
            self._bbo[symbol] = bbo
            item = {
                "i": native,
                "b": market.price_text(bb),
                "bs": market.size_text(bbo[1]),
                "k": market.price_text(ba),
                "ks": market.size_text(bbo[3]),
                "t": self._now_ms(),
            }
            frames.append((("ticker", native), self._frame(symbol, f"ticker.{native}", "ticker", [item])))
        if self._steps % 5 == 0:
            mid = market.price_text(bb)
            start = (self._ms // 60_000) * 60_000
            item = {"o": mid, "h": market.price_text(ba), "l": mid, "c": mid, "v": market.size_text(7), "t": start}
            name = f"candlestick.1m.{native}"
            frames.append((("candlestick", native), self._frame(symbol, name, "candlestick", [item], interval="1m")))
        if native.endswith("-PERP") and self._steps % 10 == 0:
            item = {"v": f"0.0000{10 + self._steps % 80}", "t": self._now_ms()}
            frames.append((("funding", native), self._frame(symbol, f"funding.{native}", "funding", [item])))
        return frames

    def _trade(self, symbol: str, trade: MarketTrade) -> str:
        market = self.markets[symbol]
        native = self.natives[symbol]
        ms = self._now_ms()
        item = {
            "d": str(next(self._trade_ids)),
            "s": trade.side.value.upper(),
            "p": market.price_text(trade.price),
            "q": market.size_text(trade.size),
            "t": ms,
            "tn": str(ms * 1_000_000 + 7),
            "i": native,
            "m": str(trade.trade_id),
        }
        return self._frame(symbol, f"trade.{native}", "trade", [item])

    # --- REST --------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path != "/exchange/v1/public/get-instruments":
            return None
        rows = []
        for symbol, native in self.natives.items():
            base, quote, kind = parse_symbol(symbol)
            rows.append(
                {
                    "symbol": native,
                    "inst_type": "CCY_PAIR" if kind is None else "PERPETUAL_SWAP",
                    "base_ccy": base,
                    "quote_ccy": quote,
                    "price_tick_size": self.tick,
                    "qty_tick_size": self.lot,
                    "contract_size": "1",
                    "tradable": True,
                }
            )
        body = {"id": 1, "method": "public/get-instruments", "code": 0, "result": {"data": rows}}
        return 200, dumps(body).encode()
