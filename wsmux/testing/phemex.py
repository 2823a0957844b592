"""A mock Phemex public WebSocket on 127.0.0.1: :class:`MockPhemex`.

It speaks the protocol of ``shared/exchanges/phemex.md``: requests
``{"id":N,"method":"orderbook.subscribe","params":[symbol]}`` (``orderbook_p``
and ``trade_p`` for USDT perpetuals, ``trade`` for the others) answered with
``{"error":null,"id":N,"result":{"status":"success"}}`` or a non-null
``error`` (unknown symbol, wrong channel family, more than 20 subscriptions on
a connection); ``server.ping`` → ``"pong"``. Market data:

* book — the best 30 levels per side: a ``snapshot`` on subscribe and every
  ``snapshot_every`` steps, ``incremental`` messages in between (absolute
  sizes, ``0`` deletes; a level pushed beyond the 30 is not deleted, the
  client trims it). ``sequence`` is one counter for the whole mock, growing
  by 1 to 3 per message, like the venue's engine-wide sequence.
* trades — a ``snapshot`` of the recent trades on subscribe, then each trade.
* ``perp_market24h_pack_p`` (all USDT perpetuals, ``params: []``) — a
  ``snapshot`` with the ``fields`` list on subscribe, then every 10 steps of
  a USDT perpetual an ``incremental`` row for it (no ``fields``), with
  ``fundingRateRr``, ``markRp`` and ``openInterestRv`` (base units,
  :meth:`MockPhemex.open_interest`).
* candles — ``kline.subscribe`` / ``kline_p.subscribe`` with ``[symbol, 60]``
  (other resolutions are refused): a ``snapshot`` with the forming
  one-minute candle on subscribe, then after each trade an ``incremental``
  with the forming candle (preceded by the final one when the trade opened a
  new minute). Rows ``[timestamp s, 60, lastClose, open, high, low, close,
  volume, turnover]``: spot scaled by 10^8, inverse prices by
  10^``price_scale`` with ``volume`` in contracts and ``turnoverEv`` their
  base value x 10^8 (contracts / close: a mock convention), USDT perpetuals
  as text.

Numbers: spot prices and quantities are integers scaled by 10^8; inverse
contracts' (``BTC-USD-PERP`` → ``BTCUSD``) prices are scaled by
10^``price_scale`` and quantities are contracts of 1 USD; USDT perpetuals
send decimal strings. REST: ``/public/products``.

Faults (``mock.faults``), applied to book incrementals: ``skip_seq`` (lost),
``duplicate`` (sent twice), ``reorder`` (held back and sent after the next
one), ``crossed`` (an extra incremental puts a bid at the best ask), plus
``drop_trades``, ``reject_subscriptions`` and the base faults. Phemex's
sequence only grows, so a lost or reordered incremental goes unnoticed until
the next snapshot: the book's integrity is UNVERIFIABLE.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.phemex import BOOK_DEPTH, SPOT_SCALE, phemex_symbol
from wsmux.model import Side
from wsmux.testing._candles import MinuteCandles, MockCandle
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockPhemex"]

_T0_NS = 1_700_000_000_000_000_000
_MAX_SUBSCRIPTIONS = 20
_HISTORY = 200
_PACK_FIELDS = [
    "symbol",
    "openRp",
    "highRp",
    "lowRp",
    "lastRp",
    "volumeRq",
    "turnoverRv",
    "openInterestRv",
    "indexRp",
    "markRp",
    "fundingRateRr",
    "predFundingRateRr",
]

View = dict[int, int]  # price ticks -> size lots


def _top(market: Market) -> tuple[View, View]:
    bids = dict(sorted(market.bids.items(), reverse=True)[:BOOK_DEPTH])
    asks = dict(sorted(market.asks.items())[:BOOK_DEPTH])
    return bids, asks


def _diff(old: View, new: View, side: dict[int, int]) -> list[tuple[int, int]]:
    """Changes that turn ``old`` into ``new``; a level pushed beyond the view
    but still in the market is left for the client to trim."""
    out = [(p, s) for p, s in new.items() if old.get(p) != s]
    out.extend((p, 0) for p in old if p not in new and p not in side)
    return out


class MockPhemex(MockExchange):
    """Mock Phemex public endpoint. See the module docstring.

    Args:
        symbols: unified symbols to list (spot ``BTC-USDT``, inverse
            ``BTC-USD-PERP``, USDT perpetual ``BTC-USDT-PERP``).
        snapshot_every: send a fresh book snapshot every this many steps
            (the venue's 60 s self-verification snapshot; 0: never).
        price_scale: ``priceScale`` of the inverse contracts.
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "phemex"
    ws_path: ClassVar[str] = "/ws"
    tick: ClassVar[str] = "0.5"
    lot: ClassVar[str] = "0.001"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        snapshot_every: int = 60,
        price_scale: int = 4,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.snapshot_every = snapshot_every
        self.price_scale = price_scale
        self.native = {s: phemex_symbol(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        for i, symbol in enumerate(self.symbols):
            if self.is_inverse(symbol):  # whole contracts of 1 USD
                old = self.markets[symbol]
                mid = (old.best_bid() + old.best_ask()) // 2
                self.markets[symbol] = Market(seed * 7919 + i, mid=mid, tick=self.tick, lot="1", levels=levels)
        self.sequence = 77_668_172
        self._ns = _T0_NS
        self._tape: dict[str, list[list[Any]]] = {}
        self.candles = MinuteCandles()
        """The one-minute candles built from the mock's trades."""

    def is_inverse(self, symbol: str) -> bool:
        return self.native[symbol].endswith("USD")

    def is_spot(self, symbol: str) -> bool:
        return self.native[symbol].startswith("s")

    def _next(self) -> tuple[int, int]:
        self.sequence += 1 + self.sequence % 3
        self._ns += 1_000_000
        return self.sequence, self._ns

    # --- numbers ----------------------------------------------------------------------

    def price_value(self, symbol: str, ticks: int) -> Any:
        text = self.markets[symbol].price_text(ticks)
        if self.is_spot(symbol):
            return int(Decimal(text) * SPOT_SCALE)
        if self.is_inverse(symbol):
            return int(Decimal(text) * 10**self.price_scale)
        return text

    def size_value(self, symbol: str, lots: int) -> Any:
        text = self.markets[symbol].size_text(lots)
        if self.is_spot(symbol):
            return int(Decimal(text) * SPOT_SCALE)
        if self.is_inverse(symbol):
            return int(text)
        return text

    # --- client messages ----------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            request_id = msg["id"]
            method = msg["method"]
            params = msg["params"]
            if not isinstance(method, str) or not isinstance(params, list):
                raise ValueError(method)
        except Exception:
            await conn.send(dumps({"error": {"code": 6001, "message": "invalid argument"}, "id": None, "result": None}))
            return
        if method == "server.ping":
            await conn.send(dumps({"error": None, "id": request_id, "result": "pong"}))
            return
        if method.startswith("perp_market24h_pack_p.") and not params:
            await conn.send(dumps({"error": None, "id": request_id, "result": {"status": "success"}}))
            if method.endswith(".subscribe"):
                conn.topics.add(("pack", ""))
                perps = [s for s in self.symbols if not self.is_spot(s) and not self.is_inverse(s)]
                await conn.send(self._pack(perps, "snapshot"))
            else:
                conn.topics.discard(("pack", ""))
            return
        channel, _, verb = method.partition(".")
        native = params[0] if params else None
        symbol = self.unified.get(native) if isinstance(native, str) else None
        perp = symbol is not None and not self.is_spot(symbol) and not self.is_inverse(symbol)
        family_ok = channel in (("orderbook_p", "trade_p", "kline_p") if perp else ("orderbook", "trade", "kline"))
        if channel.startswith("kline") and params[1:] != [60]:
            family_ok = False  # the mock serves one-minute candles only
        full = verb == "subscribe" and len(conn.topics) >= _MAX_SUBSCRIPTIONS
        if symbol is None or not family_ok or verb not in ("subscribe", "unsubscribe") or full:
            text = "too many subscriptions" if full else "invalid argument"
            await conn.send(dumps({"error": {"code": 6001, "message": text}, "id": request_id, "result": None}))
            return
        if verb == "subscribe" and self.faults.reject_subscriptions:
            error = {"code": 10500, "message": "mock fault: rejected"}
            await conn.send(dumps({"error": error, "id": request_id, "result": None}))
            return
        topic = (channel.removesuffix("_p"), symbol)
        await conn.send(dumps({"error": None, "id": request_id, "result": {"status": "success"}}))
        if verb == "unsubscribe":
            conn.topics.discard(topic)
            conn.state.setdefault("held", {}).pop(symbol, None)
            return
        conn.topics.add(topic)
        if topic[0] == "orderbook":
            await conn.send(self._snapshot(conn, symbol))
        elif topic[0] == "kline":
            forming = self.candles.forming.get(symbol)
            await conn.send(self._kline_message(symbol, "snapshot", [forming] if forming is not None else []))
        else:
            await conn.send(self._trades_message(symbol, "snapshot", self._tape.get(symbol, [])))

    # --- books --------------------------------------------------------------------------

    def _levels(self, symbol: str, changes: Iterable[tuple[int, int]]) -> list[list[Any]]:
        return [[self.price_value(symbol, p), self.size_value(symbol, s)] for p, s in changes]

    def _book_message(self, symbol: str, kind: str, bids: list[list[Any]], asks: list[list[Any]]) -> str:
        sequence, ns = self._next()
        key = "book" if self.is_spot(symbol) or self.is_inverse(symbol) else "orderbook_p"
        body = {
            key: {"asks": asks, "bids": bids},
            "depth": BOOK_DEPTH,
            "sequence": sequence,
            "symbol": self.native[symbol],
            "timestamp": ns,
            "type": kind,
        }
        return dumps(body)

    def _snapshot(self, conn: MockConnection, symbol: str) -> str:
        views: dict[str, tuple[View, View]] = conn.state.setdefault("views", {})
        bids, asks = views[symbol] = _top(self.markets[symbol])
        message = self._book_message(
            symbol,
            "snapshot",
            self._levels(symbol, sorted(bids.items(), reverse=True)),
            self._levels(symbol, sorted(asks.items())),
        )
        conn.state.setdefault("seq", {})[symbol] = self.sequence
        return message

    def _book_messages(self, conn: MockConnection, symbol: str) -> list[str]:
        market = self.markets[symbol]
        views: dict[str, tuple[View, View]] = conn.state["views"]
        old_bids, old_asks = views[symbol]
        bids, asks = _top(market)
        bid_changes = _diff(old_bids, bids, market.bids)
        ask_changes = _diff(old_asks, asks, market.asks)
        views[symbol] = (bids, asks)
        faults = self.faults
        out: list[str] = []
        if bid_changes or ask_changes:
            message = self._book_message(
                symbol, "incremental", self._levels(symbol, bid_changes), self._levels(symbol, ask_changes)
            )
            if not faults.take("skip_seq"):
                out.append(message)
                if faults.take("duplicate"):
                    out.append(message)
        if faults.take("crossed"):
            best_ask = min(asks)
            bids[best_ask] = 1
            out.append(self._book_message(symbol, "incremental", self._levels(symbol, [(best_ask, 1)]), []))
        conn.state.setdefault("seq", {})[symbol] = self.sequence
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[symbol] = out.pop(0)
        elif out and symbol in held:
            out.insert(1, held.pop(symbol))
        return out

    # --- trades -------------------------------------------------------------------------

    def _trades_message(self, symbol: str, kind: str, items: list[list[Any]]) -> str:
        sequence, _ = self._next()
        key = "trades" if self.is_spot(symbol) or self.is_inverse(symbol) else "trades_p"
        return dumps({key: items, "sequence": sequence, "symbol": self.native[symbol], "type": kind})

    def _kline_message(self, symbol: str, kind: str, candles: list[MockCandle]) -> str:
        sequence, _ = self._next()
        perp = not self.is_spot(symbol) and not self.is_inverse(symbol)
        market = self.markets[symbol]
        rows: list[list[Any]] = []
        for c in candles:
            prices = [self.price_value(symbol, p) for p in (c.close, c.open, c.high, c.low, c.close)]
            if self.is_inverse(symbol):  # contracts, and their value in the base coin (x 10^8)
                volume: Any = c.volume
                turnover: Any = round(c.volume / market.price(c.close) * 10**8)
            elif self.is_spot(symbol):
                volume = self.size_value(symbol, c.volume)
                turnover = round(market.size(c.volume) * market.price(c.close) * 10**8)
            else:
                volume = market.size_text(c.volume)
                turnover = f"{market.size(c.volume) * market.price(c.close):.4f}"
            rows.append([c.start_ms // 1000, 60, *prices, volume, turnover])
        key = "kline_p" if perp else "kline"
        return dumps({key: rows, "sequence": sequence, "symbol": self.native[symbol], "type": kind})

    def open_interest(self, symbol: str) -> str:
        """The ``openInterestRv`` the mock reports for ``symbol`` now (base units, text)."""
        return self.markets[symbol].size_text(1_000_000 + self.markets[symbol].next_trade_id)

    def funding_rate(self, symbol: str) -> str:
        """The funding rate the mock reports for ``symbol`` now (text)."""
        return f"0.000{10 + self.markets[symbol].next_trade_id % 90}"

    def _pack(self, symbols: list[str], kind: str) -> str:
        rows = []
        for symbol in symbols:
            market = self.markets[symbol]
            mid = market.price_text((market.best_bid() + market.best_ask()) // 2)
            oi, rate = self.open_interest(symbol), self.funding_rate(symbol)
            rows.append([self.native[symbol], mid, mid, mid, mid, "0", "0", oi, mid, mid, rate, "0"])
        message: dict[str, Any] = {"data": rows, "method": "perp_market24h_pack_p.update", "timestamp": self._next()[1]}
        if kind == "snapshot":
            message["fields"] = _PACK_FIELDS
        message["type"] = kind
        return dumps(message)

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        out: list[str | bytes] = []
        trade = change.trade
        item: list[Any] | None = None
        if trade is not None:
            self._ns += 1_000
            side = "Buy" if trade.side is Side.BUY else "Sell"
            item = [self._ns, side, self.price_value(symbol, trade.price), self.size_value(symbol, trade.size)]
            tape = self._tape.setdefault(symbol, [])
            tape.append(item)
            del tape[:-_HISTORY]
        if ("orderbook", symbol) in conn.topics:
            steps: dict[str, int] = conn.state.setdefault("steps", {})
            steps[symbol] = n = steps.get(symbol, 0) + 1
            if self.snapshot_every and n % self.snapshot_every == 0:
                out.append(self._snapshot(conn, symbol))
            else:
                out.extend(self._book_messages(conn, symbol))
        if item is not None and ("trade", symbol) in conn.topics and not self.faults.take("drop_trades"):
            out.append(self._trades_message(symbol, "incremental", [item]))
        if trade is not None:  # the venue's candle counts every trade, watched or not
            t_ms = self._ns // 1_000_000
            finished, forming = self.candles.on_trade_once(symbol, trade.trade_id, t_ms, trade.price, trade.size)
            if ("kline", symbol) in conn.topics:
                bars = [c for c in (finished, forming) if c is not None]
                out.append(self._kline_message(symbol, "incremental", bars))
        if ("pack", "") in conn.topics and not self.is_spot(symbol) and not self.is_inverse(symbol):
            packs: dict[str, int] = conn.state.setdefault("pack_steps", {})
            packs[symbol] = n = packs.get(symbol, 0) + 1
            if n % 10 == 0:
                out.append(self._pack([symbol], "incremental"))
        return out

    # --- REST -------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /public/products``."""
        if path != "/public/products":
            return None
        products = []
        for symbol in self.symbols:
            row: dict[str, Any] = {
                "symbol": self.native[symbol],
                "type": "Spot" if self.is_spot(symbol) else "Perpetual" if self.is_inverse(symbol) else "PerpetualV2",
                "tickSize": self.tick,
                "lotSize": self.markets[symbol].lot,
            }
            if self.is_inverse(symbol):
                row["priceScale"] = self.price_scale
            products.append(row)
        return 200, dumps({"code": 0, "msg": "", "data": {"products": products}}).encode()
