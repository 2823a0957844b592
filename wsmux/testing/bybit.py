"""Mock Bybit v5 public endpoints on 127.0.0.1: :class:`MockBybit` (spot) and
:class:`MockBybitLinear` (USDT perpetuals).

They speak the protocol of ``shared/exchanges/bybit-v5.md``:
``{"req_id":..,"op":"subscribe","args":[topics]}`` answered with one
``{"success":..,"ret_msg":..,"op":"subscribe",...}`` per request (a topic that
does not exist, or is already subscribed on the connection, fails the request;
spot refuses more than 10 args per request), ``{"op":"ping"}`` answered with
the spot or the linear pong, and per topic:

* ``orderbook.{1|50|200|1000}.{symbol}`` — a ``snapshot`` on subscribe, then a
  ``delta`` per market step with ``u`` one more than the last (absolute sizes,
  ``"0"`` deletes; levels pushed beyond the depth are *not* deleted — the
  client truncates, as on Bybit). Level 1 sends only snapshots, when the top
  changes. :meth:`MockBybit.restart` sends every book again as a ``delta`` with
  ``u = 1`` (the venue's "service restarted" signal).
* ``publicTrade.{symbol}`` — each trade (``S`` = taker side).
* ``tickers.{symbol}`` (linear) — a snapshot on subscribe, then deltas with
  only the changed fields: ``bid1*``/``ask1*`` when the top changes,
  ``openInterest`` every 5 steps, ``fundingRate``/``nextFundingTime`` every 20.
* ``kline.1.{symbol}`` — after each trade the forming one-minute candle
  (``confirm`` false), preceded by the previous minute's final candle
  (``confirm`` true) when the trade opened a new minute.
* ``allLiquidation.{symbol}`` (linear) — every third trade is also reported as
  a liquidation: ``S`` is the liquidated *position's* side (a forced sell
  closes a long: ``S = "Buy"``).

``conn.state["seq"][symbol]`` is the last ``u`` rendered for a connection's
(non level-1) book, for synchronising tests.

Faults (``mock.faults``), applied to book deltas: ``skip_seq`` (a delta is
lost: ``u`` jumps), ``duplicate``, ``reorder``, ``crossed`` (an extra delta
puts a bid at the best ask), plus the base faults (``garbage``, ``silent``,
``reject_subscriptions``, and ``snapshot_status``/``snapshot_garbage`` for the
REST book). Bybit sends no checksum, so ``bad_checksum`` does not apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._candles import MinuteCandles, MockCandle
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockBybit", "MockBybitLinear"]

_U_START = 5_000_000
_T0_MS = 1_700_000_000_000
_DEPTHS = (1, 50, 200, 1000)

View = dict[int, int]  # price ticks -> size lots


def _top(market: Market, depth: int) -> tuple[View, View]:
    """The best ``depth`` levels per side of ``market``."""
    bids = dict(sorted(market.bids.items(), reverse=True)[:depth])
    asks = dict(sorted(market.asks.items())[:depth])
    return bids, asks


def _diff(old: View, new: View, side: dict[int, int]) -> list[tuple[int, int]]:
    """Changes that turn a client's ``old`` view into ``new``. A level that left
    the view but is still in the market was pushed beyond the depth: the client
    truncates it (Bybit sends no delete); a level gone from the market is deleted."""
    out = [(p, s) for p, s in new.items() if old.get(p) != s]
    out.extend((p, 0) for p in old if p not in new and p not in side)
    return out


class _Book:
    """What one connection's client should hold for one orderbook topic."""

    __slots__ = ("asks", "bids", "u")

    def __init__(self, u: int) -> None:
        self.u = u
        self.bids: View = {}
        self.asks: View = {}


class MockBybit(MockExchange):
    """Mock Bybit v5 spot endpoint (``/v5/public/spot``). See the module docstring.

    Args:
        symbols: unified spot symbols (``BTC-USDT``; ``BTC-USDT-PERP`` on
            :class:`MockBybitLinear`).
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    server_time_path: ClassVar[str | None] = "/v5/market/time"

    def server_time_body(self, now_ns: int) -> str:
        """The REST server time (:attr:`~wsmux.testing.MockExchange.clock_skew` applies)."""
        return (
            f'{{"retCode":0,"retMsg":"OK","result":{{"timeSecond":"{now_ns // 10**9}",'
            f'"timeNano":"{now_ns // 1_000_000 * 1_000_000}"}},"retExtInfo":{{}},"time":{now_ns // 1_000_000}}}'
        )

    venue: ClassVar[str] = "bybit"
    ws_path: ClassVar[str] = "/v5/public/spot"
    category: ClassVar[str] = "spot"
    max_args: ClassVar[int | None] = 10
    """Most args one subscribe request may carry (bybit-v5.md: spot 10)."""
    kinds: ClassVar[frozenset[str]] = frozenset({"orderbook", "publicTrade", "kline"})

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
        self.native = {s: self._native(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self._ms = _T0_MS
        self._trade_seq = 90_000
        self.candles = MinuteCandles()
        """The one-minute candles built from the mock's trades."""

    def _native(self, symbol: str) -> str:
        base, quote, kind = parse_symbol(symbol)
        if kind is not None:
            raise ValueError(f"MockBybit lists spot symbols only, not {symbol!r}")
        return base + quote

    def _now(self) -> int:
        self._ms = self.stamp_ns(self._ms * 1_000_000) // 1_000_000
        return self._ms

    # --- client messages --------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            op = msg["op"]
        except Exception:
            await conn.send(dumps({"success": False, "ret_msg": "error:invalid request", "op": ""}))
            return
        req_id = msg.get("req_id", "")
        cid = f"mock-{conn.conn_id}"
        if op == "ping":
            await conn.send(self._pong(req_id, cid))
            return
        args = msg.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
            await conn.send(dumps({"success": False, "ret_msg": f"error:unknown op {op}", "op": op}))
            return
        if op == "unsubscribe":
            for topic in args:
                conn.topics.discard(topic)
                conn.state.setdefault("held", {}).pop(topic, None)
            await conn.send(self._ack(True, "", cid, req_id, op))
            return
        if self.faults.reject_subscriptions:
            await conn.send(self._ack(False, "error:mock refuses subscriptions", cid, req_id, op))
            return
        if self.max_args is not None and len(args) > self.max_args:
            await conn.send(self._ack(False, f"error:args size >{self.max_args}", cid, req_id, op))
            return
        bad = [t for t in args if not self._valid(t) or t in conn.topics]
        good = [t for t in args if t not in bad]
        reason = f"Invalid topic or already subscribed :[{','.join(map(str, bad))}]" if bad else ""
        await conn.send(self._ack(not bad, reason, cid, req_id, op))
        for topic in good:
            conn.topics.add(topic)
            kind, _, rest = topic.partition(".")
            if kind == "orderbook":
                depth, _, native = rest.partition(".")
                await conn.send(self._snapshot(conn, int(depth), native))
            elif kind == "tickers":
                await conn.send(self._ticker_snapshot(conn, rest))

    def _pong(self, req_id: str, cid: str) -> str:
        return dumps({"success": True, "ret_msg": "pong", "conn_id": cid, "req_id": req_id, "op": "ping"})

    @staticmethod
    def _ack(success: bool, reason: str, cid: str, req_id: str, op: str) -> str:
        return dumps({"success": success, "ret_msg": reason, "conn_id": cid, "req_id": req_id, "op": op})

    def _valid(self, topic: Any) -> bool:
        if not isinstance(topic, str):
            return False
        kind, _, rest = topic.partition(".")
        if kind not in self.kinds:
            return False
        if kind == "orderbook":
            depth, _, rest = rest.partition(".")
            if not depth.isdigit() or int(depth) not in _DEPTHS:
                return False
        elif kind == "kline":
            interval, _, rest = rest.partition(".")
            if interval not in ("1", "3", "5", "15", "30", "60", "D"):
                return False
        return rest in self.unified

    # --- books ------------------------------------------------------------------------

    def _book(self, conn: MockConnection, depth: int, native: str) -> _Book:
        books: dict[tuple[int, str], _Book] = conn.state.setdefault("books", {})
        book = books.get((depth, native))
        if book is None:
            book = books[depth, native] = _Book(_U_START + 10_000 * len(books))
        return book

    def _levels(self, market: Market, changes: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [[market.price_text(p), market.size_text(s) if s else "0"] for p, s in changes]

    def _book_message(
        self, depth: int, native: str, typ: str, bids: list[list[str]], asks: list[list[str]], u: int
    ) -> str:
        now = self._now()
        data = {"s": native, "b": bids, "a": asks, "u": u, "seq": 7_000_000_000 + u}
        return dumps({"topic": f"orderbook.{depth}.{native}", "type": typ, "ts": now, "data": data, "cts": now - 2})

    def _full(self, conn: MockConnection, depth: int, native: str, typ: str, u: int | None = None) -> str:
        market = self.markets[self.unified[native]]
        book = self._book(conn, depth, native)
        if u is not None:
            book.u = u
        book.bids, book.asks = _top(market, depth)
        if depth != 1:
            conn.state.setdefault("seq", {})[self.unified[native]] = book.u
        return self._book_message(
            depth,
            native,
            typ,
            self._levels(market, sorted(book.bids.items(), reverse=True)),
            self._levels(market, sorted(book.asks.items())),
            book.u,
        )

    def _snapshot(self, conn: MockConnection, depth: int, native: str) -> str:
        return self._full(conn, depth, native, "snapshot")

    async def restart(self) -> None:
        """Fault: the venue's book service restarted. Every subscribed book is
        sent again in full as a ``delta`` with ``u = 1``; later deltas count
        on from 1 (bybit-v5.md: ``u == 1`` → treat as a snapshot)."""
        for conn in list(self.connections.values()):
            for topic in sorted(t for t in conn.topics if t.startswith("orderbook.")):
                depth, _, native = topic[len("orderbook.") :].partition(".")
                await conn.send(self._full(conn, int(depth), native, "delta", u=1))

    def _top_of_book(self, conn: MockConnection, native: str) -> list[str]:
        market = self.markets[self.unified[native]]
        book = self._book(conn, 1, native)
        bids, asks = _top(market, 1)
        if bids == book.bids and asks == book.asks:
            return []
        book.u += 1
        return [self._full(conn, 1, native, "snapshot")]

    def _deltas(self, conn: MockConnection, depth: int, native: str) -> list[str]:
        symbol = self.unified[native]
        market = self.markets[symbol]
        book = self._book(conn, depth, native)
        faults = self.faults
        bids, asks = _top(market, depth)
        bid_changes = _diff(book.bids, bids, market.bids)
        ask_changes = _diff(book.asks, asks, market.asks)
        seqs = conn.state.setdefault("seq", {})
        out: list[str] = []
        if bid_changes or ask_changes:
            book.u += 1
            book.bids, book.asks = bids, asks
            seqs[symbol] = book.u
            if not faults.take("skip_seq"):  # else: the delta is lost on the way
                message = self._book_message(
                    depth,
                    native,
                    "delta",
                    self._levels(market, bid_changes),
                    self._levels(market, ask_changes),
                    book.u,
                )
                out.append(message)
                if faults.take("duplicate"):
                    out.append(message)
        if faults.take("crossed"):
            best_ask = min(book.asks)
            book.u += 1
            book.bids[best_ask] = 1
            seqs[symbol] = book.u
            crossing = [[market.price_text(best_ask), market.size_text(1)]]
            out.append(self._book_message(depth, native, "delta", crossing, [], book.u))
        held: dict[str, str] = conn.state.setdefault("held", {})
        topic = f"orderbook.{depth}.{native}"
        if out and faults.take("reorder"):
            held[topic] = out.pop(0)
        elif out and topic in held:
            out.insert(1, held.pop(topic))
        return out

    # --- other topics -------------------------------------------------------------------

    def _ticker_snapshot(self, conn: MockConnection, native: str) -> str:
        return ""  # spot: not served (see MockBybitLinear)

    def _ticker_delta(self, conn: MockConnection, native: str, step: int) -> list[str]:
        return []

    def _trade(self, native: str, market: Market, trade: MarketTrade) -> str:
        self._trade_seq += 1
        now = self._now()
        entry = {
            "T": now,
            "s": native,
            "S": "Buy" if trade.side is Side.BUY else "Sell",
            "v": market.size_text(trade.size),
            "p": market.price_text(trade.price),
            "L": "PlusTick" if trade.side is Side.BUY else "MinusTick",
            "i": f"0000{trade.trade_id:08d}-mock-{native}",
            "BT": False,
            "seq": self._trade_seq,
        }
        return dumps({"topic": f"publicTrade.{native}", "type": "snapshot", "ts": now + 1, "data": [entry]})

    def _klines(self, native: str, market: Market, candles: tuple[MockCandle | None, MockCandle]) -> list[str | bytes]:
        finished, forming = candles
        now = self._ms
        return [self._kline(native, market, c, c is not forming, now) for c in (finished, forming) if c is not None]

    @staticmethod
    def _kline(native: str, market: Market, candle: MockCandle, final: bool, now: int) -> str:
        close = market.price(candle.close)
        entry = {
            "start": candle.start_ms,
            "end": candle.end_ms,
            "interval": "1",
            "open": market.price_text(candle.open),
            "close": market.price_text(candle.close),
            "high": market.price_text(candle.high),
            "low": market.price_text(candle.low),
            "volume": market.size_text(candle.volume),
            "turnover": f"{market.size(candle.volume) * close:.4f}",  # approximated at the close
            "confirm": final,
            "timestamp": candle.last_ms,
        }
        return dumps({"topic": f"kline.1.{native}", "data": [entry], "ts": now, "type": "snapshot"})

    def _liquidation(self, native: str, market: Market, trade: MarketTrade) -> str:
        now = self._now()
        entry = {
            "T": now,
            "s": native,
            # the liquidated position: a forced sell (taker SELL) closes a long ("Buy")
            "S": "Buy" if trade.side is Side.SELL else "Sell",
            "v": market.size_text(trade.size),
            "p": market.price_text(trade.price),
        }
        return dumps({"topic": f"allLiquidation.{native}", "type": "snapshot", "ts": now, "data": [entry]})

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        native = self.native[symbol]
        market = self.markets[symbol]
        topics = conn.topics
        out: list[str | bytes] = []
        for depth in _DEPTHS:
            if f"orderbook.{depth}.{native}" in topics:
                out.extend(self._top_of_book(conn, native) if depth == 1 else self._deltas(conn, depth, native))
        trade = change.trade
        if trade is not None:
            if f"publicTrade.{native}" in topics:
                out.append(self._trade(native, market, trade))
            # the venue's candle counts every trade, watched or not (once, whatever the connections)
            candles = self.candles.on_trade_once(native, trade.trade_id, self._ms, trade.price, trade.size)
            if f"kline.1.{native}" in topics:
                out.extend(self._klines(native, market, candles))
            if trade.trade_id % 3 == 0 and f"allLiquidation.{native}" in topics:
                out.append(self._liquidation(native, market, trade))
        if f"tickers.{native}" in topics:
            steps: dict[str, int] = conn.state.setdefault("steps", {})
            steps[native] = step = steps.get(native, 0) + 1
            out.extend(self._ticker_delta(conn, native, step))
        return out

    # --- REST ----------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /v5/market/orderbook?category=..&symbol=..&limit=..`` (bybit-v5.md,
        "Endpoints") and ``GET /v5/market/instruments-info?category=..``."""
        if path == "/v5/market/instruments-info":
            return self.instruments_answer(lambda: self._instruments(query.get("category", "")))
        if path != "/v5/market/orderbook":
            return None
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"retCode":10006,"retMsg":"mock fault"}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'{"retCode":0,"result":{"b":'
        native = query.get("symbol", "")
        symbol = self.unified.get(native)
        if symbol is None or query.get("category") != self.category:
            return 200, dumps({"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}}).encode()
        market = self.markets[symbol]
        bids, asks = _top(market, int(query.get("limit", "25") or 25))
        result = {
            "s": native,
            "b": self._levels(market, sorted(bids.items(), reverse=True)),
            "a": self._levels(market, sorted(asks.items())),
            "ts": self._now(),
            "u": 1,
        }
        return 200, dumps({"retCode": 0, "retMsg": "OK", "result": result, "time": self._ms}).encode()


    def _instruments(self, category: str) -> dict[str, Any]:
        """The listed symbols of this endpoint's ``category`` (none for another)."""
        rows = []
        for symbol, native in self.native.items() if category == self.category else ():
            base, quote, _kind = parse_symbol(symbol)
            lots = {"basePrecision": self.lot} if category == "spot" else {"qtyStep": self.lot}
            row: dict[str, Any] = {"symbol": native, "baseCoin": base, "quoteCoin": quote, "status": "Trading"}
            row.update(priceFilter={"tickSize": self.tick}, lotSizeFilter=lots)
            if category == "linear":
                row["contractType"] = "LinearPerpetual"
            rows.append(row)
        result = {"category": category, "list": rows, "nextPageCursor": ""}
        return {"retCode": 0, "retMsg": "OK", "result": result, "time": self._ms}


class MockBybitLinear(MockBybit):
    """Mock Bybit v5 linear endpoint (``/v5/public/linear``): USDT perpetuals
    (``BTC-USDT-PERP`` ↔ ``BTCUSDT``) with tickers (funding, open interest) and
    ``allLiquidation``. See the module docstring."""

    venue: ClassVar[str] = "bybit-linear"
    ws_path: ClassVar[str] = "/v5/public/linear"
    category: ClassVar[str] = "linear"
    max_args: ClassVar[int | None] = None
    kinds: ClassVar[frozenset[str]] = frozenset({"orderbook", "publicTrade", "tickers", "allLiquidation", "kline"})

    def _native(self, symbol: str) -> str:
        base, quote, kind = parse_symbol(symbol)
        if kind != "PERP" or quote != "USDT":
            raise ValueError(f"MockBybitLinear lists USDT perpetuals only, not {symbol!r}")
        return base + quote

    def _pong(self, req_id: str, cid: str) -> str:
        return dumps({"req_id": req_id, "op": "pong", "args": [str(self._ms)], "conn_id": cid})

    def _ticker_fields(self, native: str, step: int) -> dict[str, str]:
        market = self.markets[self.unified[native]]
        bb, ba = market.best_bid(), market.best_ask()
        return {
            "bid1Price": market.price_text(bb),
            "bid1Size": market.size_text(market.bids[bb]),
            "ask1Price": market.price_text(ba),
            "ask1Size": market.size_text(market.asks[ba]),
            "markPrice": market.price_text((bb + ba) // 2),
            "openInterest": market.size_text(2_000_000 + 11 * step),
            "fundingRate": f"0.000{10 + (step // 20) % 90}",
            "nextFundingTime": str(_T0_MS + 8 * 3_600_000 * (1 + step // 20)),
        }

    def _ticker_message(self, native: str, typ: str, data: dict[str, str]) -> str:
        data = {"symbol": native, **data}
        return dumps({"topic": f"tickers.{native}", "type": typ, "data": data, "cs": 24_987_956_059, "ts": self._now()})

    def _ticker_snapshot(self, conn: MockConnection, native: str) -> str:
        fields = self._ticker_fields(native, conn.state.get("steps", {}).get(native, 0))
        conn.state.setdefault("ticker", {})[native] = fields
        return self._ticker_message(native, "snapshot", {**fields, "lastPrice": fields["markPrice"]})

    def _ticker_delta(self, conn: MockConnection, native: str, step: int) -> list[str]:
        fields = self._ticker_fields(native, step)
        last: dict[str, str] = conn.state.setdefault("ticker", {}).setdefault(native, {})
        changed = {k: v for k, v in fields.items() if last.get(k) != v}
        if step % 5:
            changed.pop("openInterest", None)
        if step % 20:
            changed.pop("fundingRate", None)
            changed.pop("nextFundingTime", None)
        if not changed:
            return []
        last.update(changed)
        return [self._ticker_message(native, "delta", changed)]
