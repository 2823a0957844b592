"""A mock Bitget v2 public WebSocket (and REST) on 127.0.0.1: :class:`MockBitget`
(spot) and :class:`MockBitgetFutures`.

It speaks the protocol of ``shared/exchanges/bitget-v2.md``: ``{"op":"subscribe",
"args":[{"instType","channel","instId"}]}`` answered with one
``{"event":"subscribe","arg":...}`` ack per arg (or ``{"event":"error",
"code":30001,...}``), text ``ping``/``pong``, and per channel:

* ``books`` — a snapshot on subscribe (``action: "snapshot"``, ``pseq: 0``),
  then one ``update`` per market step with ``pseq`` = the previous ``seq``.
  The view is the top 400 levels per side (levels pushed beyond it are not
  deleted: the client trims). Every message carries the CRC32 checksum of the
  mock's own text of the top 25 levels, or ``0`` with ``checksums=False``
  (what 2026 frames may carry).
* ``books1`` — the best bid/ask (a snapshot per push) whenever it changes.
* ``trade`` — a snapshot of past trades on subscribe, then each market trade.
* ``candle1m`` — the forming candle (snapshot on subscribe, update per trade).
* ``ticker`` (futures) — funding, mark price and open interest on subscribe,
  then every 10 steps.

REST: ``/api/v2/spot/public/symbols``, ``/api/v2/mix/market/contracts`` and the
books (``/api/v2/spot/market/orderbook``, ``/api/v2/mix/market/merge-depth``).
``conn.state["seq"][symbol]`` is the last ``seq`` rendered for a connection's book.

Faults (``mock.faults``), applied to ``books`` updates: ``skip_seq`` (an update
is lost: the next one's ``pseq`` names it), ``bad_checksum`` (a wrong non-zero
checksum, even with ``checksums=False``), ``duplicate`` (sent twice),
``reorder`` (held back and sent after the next one), ``crossed`` (an extra
update puts a bid at the best ask), plus the base faults (``garbage``,
``silent``, ``reject_subscriptions`` → error events, ``snapshot_status`` /
``snapshot_garbage`` for REST).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.book.checksum import INTERLEAVED_DEPTH, bitget_checksum, to_signed32
from wsmux.exchanges.bitget import BOOK_DEPTH, bitget_native
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange
from wsmux.testing._views import BookView, Levels
from wsmux.testing.okx import _top

__all__ = ["MockBitget", "MockBitgetFutures"]

_SEQ_START = 5_000_000
_T0_MS = 1_700_000_000_000
_MINUTE_MS = 60_000


class MockBitget(MockExchange):
    """Mock Bitget v2 public endpoint (spot). See the module docstring.

    Args:
        symbols: unified symbols to list.
        checksums: send real checksums (True) or ``0`` (False).
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "bitget"
    ws_path: ClassVar[str] = "/v2/ws/public"
    futures: ClassVar[bool] = False

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        checksums: bool = True,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.checksums = checksums
        self.native = {s: bitget_native(s, futures=self.futures) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self._ms = _T0_MS
        # the forming candle per instrument: [open, high, low, close, volume] (ticks, lots)
        self._candles: dict[tuple[str, str], list[int]] = {}

    def _now(self) -> str:
        self._ms += 1
        return str(self._ms)

    # --- client messages ----------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        if message in ("ping", b"ping"):
            await conn.send("pong")
            return
        try:
            msg = loads(message)
            op = msg["op"]
            args = msg["args"]
            if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
                raise ValueError(op)
        except Exception:
            await conn.send(self._error(30004, f"param error: {message!r:.100}"))
            return
        for arg in args:
            topic = self._topic(arg)
            if topic is None or (op == "subscribe" and self.faults.reject_subscriptions):
                await conn.send(self._error(30001, f"instType:{arg} doesn't exist", arg))
                continue
            await conn.send(dumps({"event": op, "arg": arg}))
            if op == "unsubscribe":
                conn.topics.discard(topic)
                continue
            conn.topics.add(topic)
            channel, key = topic[0], topic[1:]
            if channel == "books":
                await conn.send(self._snapshot(conn, key))
            elif channel == "trade":
                await conn.send(self._trade_snapshot(key))
            elif channel == "candle1m":
                await conn.send(self._candle(key, "snapshot"))
            elif channel == "ticker":
                await conn.send(self._ticker_push(key))

    def _topic(self, arg: Any) -> tuple[str, str, str] | None:
        if not isinstance(arg, dict):
            return None
        key = (arg.get("instType"), arg.get("instId"))
        channel = arg.get("channel")
        if key not in self.unified:
            return None
        if channel in ("books", "books1", "trade", "candle1m") or (channel == "ticker" and self.futures):
            return channel, key[0], key[1]
        return None

    @staticmethod
    def _error(code: int, text: str, arg: Any = None) -> str:
        body: dict[str, Any] = {"event": "error", "code": code, "msg": text}
        if arg is not None:
            body["arg"] = arg
        return dumps(body)

    def _push(self, action: str, channel: str, key: tuple[str, str], data: list[Any]) -> str:
        arg = {"instType": key[0], "channel": channel, "instId": key[1]}
        return dumps({"action": action, "arg": arg, "data": data, "ts": int(self._now())})

    # --- books ----------------------------------------------------------------------

    def _view(self, conn: MockConnection, key: tuple[str, str]) -> BookView:
        views: dict[tuple[str, str], BookView] = conn.state.setdefault("books", {})
        view = views.get(key)
        if view is None:
            view = views[key] = BookView(_SEQ_START + 1000 * len(views), BOOK_DEPTH)
        return view

    @staticmethod
    def _levels(market: Market, changes: Levels) -> list[list[str]]:
        return [[market.price_text(p), market.size_text(s) if s else "0"] for p, s in changes]

    def _checksum(self, market: Market, view: BookView) -> int:
        if not self.checksums:
            return 0
        bids = [
            (market.price_text(p), market.size_text(view.bids[p]))
            for p in sorted(view.bids, reverse=True)[:INTERLEAVED_DEPTH]
        ]
        asks = [(market.price_text(p), market.size_text(view.asks[p])) for p in sorted(view.asks)[:INTERLEAVED_DEPTH]]
        return bitget_checksum(bids, asks)

    def _book_message(
        self, key: tuple[str, str], action: str, bids: Levels, asks: Levels, view: BookView, prev: int
    ) -> str:
        market = self.markets[self.unified[key]]
        checksum = self._checksum(market, view)
        if action == "update" and self.faults.take("bad_checksum"):
            checksum = to_signed32(checksum ^ 0x5A5A5A5A) or 1
        entry = {
            "asks": self._levels(market, asks),
            "bids": self._levels(market, bids),
            "checksum": checksum,
            "seq": view.seq,
            "pseq": prev,
            "ts": self._now(),
        }
        return self._push(action, "books", key, [entry])

    def _snapshot(self, conn: MockConnection, key: tuple[str, str]) -> str:
        view = self._view(conn, key)
        view.held = None
        view.seq += 1
        bids, asks = view.reset(self.markets[self.unified[key]])
        conn.state.setdefault("seq", {})[self.unified[key]] = view.seq
        return self._book_message(key, "snapshot", bids, asks, view, 0)

    def _book_updates(self, conn: MockConnection, symbol: str, key: tuple[str, str]) -> list[str]:
        view = self._view(conn, key)

        def render(bids: Levels, asks: Levels, prev: int, seq: int) -> str:
            return self._book_message(key, "update", bids, asks, view, prev)

        out = view.updates(self.markets[symbol], self.faults, render)
        conn.state.setdefault("seq", {})[symbol] = view.seq
        return out

    # --- other channels -------------------------------------------------------------

    def _bbo(self, conn: MockConnection, symbol: str, key: tuple[str, str]) -> list[str]:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        top = (bb, market.bids[bb], ba, market.asks[ba])
        last: dict[tuple[str, str], tuple[int, ...]] = conn.state.setdefault("bbo", {})
        if last.get(key) == top:
            return []
        last[key] = top
        seq = conn.state["bbo_seq"] = conn.state.get("bbo_seq", 0) + 1
        entry = {
            "asks": [[market.price_text(ba), market.size_text(top[3])]],
            "bids": [[market.price_text(bb), market.size_text(top[1])]],
            "checksum": 0,
            "seq": seq,
            "ts": self._now(),
        }
        return [self._push("snapshot", "books1", key, [entry])]

    def _trade_snapshot(self, key: tuple[str, str]) -> str:
        market = self.markets[self.unified[key]]
        past = {
            "ts": self._now(),
            "price": market.price_text(market.best_ask()),
            "size": market.size_text(1),
            "side": "buy",
            "tradeId": "1000000000000000000",
        }
        return self._push("snapshot", "trade", key, [past])

    def _candle(self, key: tuple[str, str], action: str) -> str:
        market = self.markets[self.unified[key]]
        state: list[int] = self._candles.setdefault(key, [])
        if not state:
            mid = market.best_bid()
            state.extend([mid, mid, mid, mid, 0])
        o, h, low, c, volume = state
        row = [
            str(_T0_MS - _T0_MS % _MINUTE_MS),
            market.price_text(o),
            market.price_text(h),
            market.price_text(low),
            market.price_text(c),
            market.size_text(volume),
            "0",
            "0",
        ]
        return self._push(action, "candle1m", key, [row])

    def _ticker_push(self, key: tuple[str, str]) -> str:
        market = self.markets[self.unified[key]]
        steps = market.next_trade_id
        entry = {
            "instId": key[1],
            "lastPr": market.price_text(market.best_bid()),
            "bidPr": market.price_text(market.best_bid()),
            "askPr": market.price_text(market.best_ask()),
            "markPrice": market.price_text(market.best_bid()),
            "indexPrice": market.price_text(market.best_bid()),
            "fundingRate": f"0.000{10 + steps % 90}",
            "nextFundingTime": str(_T0_MS + 8 * 3_600_000),
            "holdingAmount": market.size_text(500_000 + 37 * steps),
            "ts": self._now(),
        }
        return self._push("snapshot", "ticker", key, [entry])

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        key = self.native[symbol]
        topics = conn.topics
        market = self.markets[symbol]
        out: list[str | bytes] = []
        if ("books", *key) in topics:
            out.extend(self._book_updates(conn, symbol, key))
        if ("books1", *key) in topics:
            out.extend(self._bbo(conn, symbol, key))
        trade = change.trade
        if trade is not None:
            candle = self._candles.setdefault(key, [])
            if candle:
                candle[1] = max(candle[1], trade.price)
                candle[2] = min(candle[2], trade.price)
                candle[3] = trade.price
                candle[4] += trade.size
            if ("trade", *key) in topics:
                entry = {
                    "ts": self._now(),
                    "price": market.price_text(trade.price),
                    "size": market.size_text(trade.size),
                    "side": trade.side.value,
                    "tradeId": str(trade.trade_id),
                }
                out.append(self._push("update", "trade", key, [entry]))
            if ("candle1m", *key) in topics:
                out.append(self._candle(key, "update"))
        steps: dict[tuple[str, str], int] = conn.state.setdefault("steps", {})
        steps[key] = n = steps.get(key, 0) + 1
        if n % 10 == 0 and ("ticker", *key) in topics:
            out.append(self._ticker_push(key))
        return out

    # --- REST -------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """Instruments and REST books (bitget-v2.md, "Endpoint and symbols")."""
        if path in ("/api/v2/spot/public/symbols", "/api/v2/mix/market/contracts"):
            return 200, self._instruments(query.get("productType")).encode()
        if path not in ("/api/v2/spot/market/orderbook", "/api/v2/mix/market/merge-depth"):
            return None
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"code":"40001","msg":"mock fault","data":null}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'{"code":"00000","data":{"asks":'
        inst_type = query.get("productType", "SPOT")
        symbol = self.unified.get((inst_type, query.get("symbol", "")))
        if symbol is None:
            return 400, dumps({"code": "40034", "msg": "Parameter does not exist", "data": None}).encode()
        market = self.markets[symbol]
        depth = min(int(query.get("limit", "100") or 100), BOOK_DEPTH)
        bids, asks = _top(market, depth)
        data = {
            "asks": self._levels(market, sorted(asks.items())),
            "bids": self._levels(market, sorted(bids.items(), reverse=True)),
            "ts": self._now(),
        }
        return 200, dumps({"code": "00000", "msg": "success", "data": data}).encode()

    def _instruments(self, product_type: str | None) -> str:
        items: list[dict[str, str]] = []
        for symbol, (inst_type, inst_id) in self.native.items():
            market = self.markets[symbol]
            base, quote = symbol.split("-")[:2]
            pdec = len(market.tick.partition(".")[2])
            sdec = len(market.lot.partition(".")[2])
            if not self.futures:
                items.append(
                    {
                        "symbol": inst_id,
                        "baseCoin": base,
                        "quoteCoin": quote,
                        "pricePrecision": str(pdec),
                        "quantityPrecision": str(sdec),
                        "minTradeAmount": "0",
                        "status": "online",
                    }
                )
            elif inst_type == (product_type or "USDT-FUTURES"):
                items.append(
                    {
                        "symbol": inst_id,
                        "baseCoin": base,
                        "quoteCoin": quote,
                        "pricePlace": str(pdec),
                        "priceEndStep": "1",
                        "volumePlace": str(sdec),
                        "sizeMultiplier": market.lot,
                        "minTradeNum": market.lot,
                        "symbolType": "perpetual",
                    }
                )
        return dumps({"code": "00000", "msg": "success", "requestTime": _T0_MS, "data": items})


class MockBitgetFutures(MockBitget):
    """Mock Bitget v2 futures (``USDT-FUTURES`` / ``COIN-FUTURES`` /
    ``USDC-FUTURES`` instruments, plus the ``ticker`` channel)."""

    venue: ClassVar[str] = "bitget-futures"
    futures: ClassVar[bool] = True
