"""A mock Hyperliquid public WebSocket on 127.0.0.1: :class:`MockHyperliquid`.

It speaks the protocol of ``shared/exchanges/hyperliquid.md``:
``{"method":"subscribe","subscription":{"type":..,"coin":..}}`` answered with
``{"channel":"subscriptionResponse","data":{"method":..,"subscription":..}}``
(or ``{"channel":"error","data":"Invalid subscription ..."}`` for an unknown
type or coin), ``{"method":"ping"}`` answered with ``{"channel":"pong"}``, and
per subscription type:

* ``l2Book`` — the complete top 20 levels a side (``{"px","sz","n"}``, best
  first) with the block ``time``: on subscribe, then every market step.
* ``bbo`` — the best bid and ask, on subscribe and whenever they change.
* ``trades`` — each market trade (``side`` = aggressor, ``B``/``A``; ``tid``
  grows but skips values, like the venue's).
* ``activeAssetCtx`` — funding, mark price and open interest: on subscribe,
  then every 10 steps.
* ``candle`` (``1m``) — the forming candle after each trade; a market step is
  one second of mock time, so a candle spans 60 steps.

Spot pairs (``HYPE-USDC``, ``PURR-USDC``) stream under their coin as the
venue names it: ``PURR/USDC`` for the legacy pair, ``@<index>`` for the others
(:data:`SPOT_PAIRS` fixes the indices; other spot pairs get ``@200`` on).

``conn.state["time"][symbol]`` is the ``time`` of the last ``l2Book`` message
rendered for a connection (for synchronising tests). The REST server
(:attr:`MockHyperliquid.rest_url`, a port of its own: the WebSocket server's
HTTP answers GETs only) answers ``POST /info`` (:meth:`MockHyperliquid.info`)
with the bodies ``{"type":"meta"}``, ``{"type":"spotMeta"}`` (the listed spot
pairs plus a few not streamed, like the venue's) and
``{"type":"l2Book","coin":..}``.

Faults (``mock.faults``) on ``l2Book``: ``skip_seq`` (a message is lost — the
next one heals the book, nothing can detect it), ``duplicate``, ``reorder``
(held back and sent after the next one), ``crossed`` (an extra message with a
bid at the best ask); ``drop_trades``; plus the base faults (``garbage``,
``silent``, ``reject_subscriptions``). The venue has no checksum and no
sequence, so ``bad_checksum`` does not apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.hyperliquid import BOOK_DEPTH, CANDLE_INTERVAL, hyperliquid_coin
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change, Market
from wsmux.testing._rest import RestServedMock, RestServer
from wsmux.testing._server import MockConnection
from wsmux.testing._stepped import SteppedMock

__all__ = ["SPOT_PAIRS", "MockHyperliquid"]

SPOT_PAIRS = {"PURR-USDC": 0, "HYPE-USDC": 107, "UBTC-USDC": 142, "UETH-USDC": 151}
"""Spot pair → its ``spotMeta.universe`` index (the coin is ``@<index>``,
``PURR/USDC`` for index 0). Indices as the venue's where the sheet's examples
or the brief name them; the values matter only in that they are not positions."""
_EXTRA_SPOT = {"JEFF-USDC": 4, "HFUN-USDC": 2}
"""Spot pairs listed in ``spotMeta`` but never streamed by the mock."""
_SPOT_SZ_DECIMALS = 5  # the mock's lot (0.00001) for every streamed token

_MINUTE_MS = 60_000
_TYPES = frozenset({"l2Book", "bbo", "trades", "activeAssetCtx", "candle"})
_SIDE = {Side.BUY: "B", Side.SELL: "A"}


class MockHyperliquid(SteppedMock, RestServedMock):
    """Mock Hyperliquid endpoint. See the module docstring.

    Args:
        symbols: unified symbols to list: perpetuals (``BTC-USD-PERP``) and
            spot pairs (``HYPE-USDC``).
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "hyperliquid"
    ws_path: ClassVar[str] = "/ws"
    tick: ClassVar[str] = "1"
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
        spot = [s for s in self.symbols if parse_symbol(s)[2] is None]
        self.spot_index = {s: SPOT_PAIRS.get(s, 200 + i) for i, s in enumerate(spot)}
        """Streamed spot pair -> its spotMeta index."""
        coins = {s: "PURR/USDC" if i == 0 else f"@{i}" for s, i in self.spot_index.items()}
        self.coins = {s: coins.get(s) or hyperliquid_coin(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.coins.items()}
        self.candles: dict[str, list[Any]] = {}
        """symbol -> the forming candle [t, o, h, l, c, v, n] in ticks and lots."""
        self._tid = 10**14
        self._rest = RestServer(self._post, not_found=b"null", delay=lambda: self.faults.snapshot_delay)

    # --- REST server ------------------------------------------------------------------

    def _post(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, bytes] | None:
        if path != "/info":
            return None
        if method != "POST":
            return 405, b"Method Not Allowed"
        return self.info(body)

    # --- client messages ----------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
            method = msg["method"]
        except Exception:
            error = f"Error parsing JSON into valid websocket request: {message!r:.100}"
            await conn.send(dumps({"channel": "error", "data": error}))
            return
        if method == "ping":
            await conn.send('{"channel":"pong"}')
            return
        sub = msg.get("subscription")
        key = self._key(sub)
        if method not in ("subscribe", "unsubscribe") or key is None or (
            method == "subscribe" and self.faults.reject_subscriptions
        ):
            await conn.send(dumps({"channel": "error", "data": f"Invalid subscription {dumps(sub)}"}))
            return
        await conn.send(dumps({"channel": "subscriptionResponse", "data": {"method": method, "subscription": sub}}))
        if method == "unsubscribe":
            conn.topics.discard(key)
            conn.state.setdefault("held", {}).pop(key[1], None)
            return
        conn.topics.add(key)
        kind, coin = key
        symbol = self.unified[coin]
        if kind == "l2Book":
            await conn.send(self._book(conn, symbol))
        elif kind == "bbo":
            await conn.send(self._bbo(symbol))
        elif kind == "activeAssetCtx":
            await conn.send(self._asset_ctx(symbol))
        elif kind == "candle" and symbol in self.candles:
            await conn.send(self._candle(symbol))

    def _key(self, sub: Any) -> tuple[str, str] | None:
        if not isinstance(sub, dict):
            return None
        kind, coin = sub.get("type"), sub.get("coin")
        if kind not in _TYPES or coin not in self.unified:
            return None
        if kind == "candle" and sub.get("interval") != CANDLE_INTERVAL:
            return None
        return kind, coin

    # --- messages -------------------------------------------------------------------

    def _levels(self, market: Market, levels: Iterable[tuple[int, int]]) -> list[dict[str, Any]]:
        return [{"px": market.price_text(p), "sz": market.size_text(s), "n": 1 + s % 7} for p, s in levels]

    def top(self, symbol: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The top 20 levels a side of ``symbol``'s market (ticks, lots), best first."""
        market = self.markets[symbol]
        bids = sorted(market.bids.items(), reverse=True)[:BOOK_DEPTH]
        asks = sorted(market.asks.items())[:BOOK_DEPTH]
        return bids, asks

    def _book_message(self, symbol: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> str:
        market = self.markets[symbol]
        levels = [self._levels(market, bids), self._levels(market, asks)]
        data = {"coin": self.coins[symbol], "time": self.time[symbol], "levels": levels}
        return dumps({"channel": "l2Book", "data": data})

    def _book(self, conn: MockConnection, symbol: str) -> str:
        conn.state.setdefault("time", {})[symbol] = self.time[symbol]
        return self._book_message(symbol, *self.top(symbol))

    def _book_updates(self, conn: MockConnection, symbol: str) -> list[str]:
        faults = self.faults
        out: list[str] = []
        if faults.take("crossed"):
            bids, asks = self.top(symbol)
            out.append(self._book_message(symbol, [(asks[0][0], 1), *bids[:-1]], asks))
        message = self._book(conn, symbol)
        if not faults.take("skip_seq"):  # else: the message is lost on the way
            out.append(message)
            if faults.take("duplicate"):
                out.append(message)
        held: dict[str, str] = conn.state.setdefault("held", {})
        coin = self.coins[symbol]
        if out and faults.take("reorder"):
            held[coin] = out.pop()
        elif out and coin in held:
            out.append(held.pop(coin))
        return out

    def _bbo(self, symbol: str) -> str:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        bbo = self._levels(market, [(bb, market.bids[bb]), (ba, market.asks[ba])])
        return dumps({"channel": "bbo", "data": {"coin": self.coins[symbol], "time": self.time[symbol], "bbo": bbo}})

    def _asset_ctx(self, symbol: str) -> str:
        market = self.markets[symbol]
        steps = market.next_trade_id
        mid = (market.best_bid() + market.best_ask()) // 2
        ctx = {
            "funding": f"0.0000{10 + steps % 90}",
            "openInterest": market.size_text(700_000 + 37 * steps),
            "oraclePx": market.price_text(mid),
            "markPx": market.price_text(mid),
            "midPx": market.price_text(mid),
            "premium": "0.0001",
            "dayNtlVlm": "123456789.0",
            "prevDayPx": market.price_text(mid),
            "impactPxs": [market.price_text(market.best_bid()), market.price_text(market.best_ask())],
        }
        return dumps({"channel": "activeAssetCtx", "data": {"coin": self.coins[symbol], "ctx": ctx}})

    def _candle(self, symbol: str) -> str:
        market = self.markets[symbol]
        t, o, h, low, c, v, n = self.candles[symbol]
        data = {
            "t": t,
            "T": t + _MINUTE_MS - 1,
            "s": self.coins[symbol],
            "i": CANDLE_INTERVAL,
            "o": market.price_text(o),
            "c": market.price_text(c),
            "h": market.price_text(h),
            "l": market.price_text(low),
            "v": market.size_text(v),
            "n": n,
        }
        return dumps({"channel": "candle", "data": data})

    def _add_to_candle(self, symbol: str, price: int, size: int) -> None:
        start = self.time[symbol] - self.time[symbol] % _MINUTE_MS
        candle = self.candles.get(symbol)
        if candle is None or candle[0] != start:
            self.candles[symbol] = [start, price, price, price, price, size, 1]
            return
        candle[2] = max(candle[2], price)
        candle[3] = min(candle[3], price)
        candle[4] = price
        candle[5] += size
        candle[6] += 1

    def on_step(self, symbol: str, change: Change) -> None:
        trade = change.trade
        if trade is not None:
            self._add_to_candle(symbol, trade.price, trade.size)

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        coin = self.coins[symbol]
        topics = conn.topics
        market = self.markets[symbol]
        out: list[str | bytes] = []
        if ("l2Book", coin) in topics:
            out.extend(self._book_updates(conn, symbol))
        if ("bbo", coin) in topics:
            top = (market.best_bid(), market.best_ask())
            last: dict[str, Any] = conn.state.setdefault("bbo", {})
            sizes = (market.bids[top[0]], market.asks[top[1]])
            if last.get(coin) != (top, sizes):
                last[coin] = (top, sizes)
                out.append(self._bbo(symbol))
        trade = change.trade
        if trade is not None:
            if ("trades", coin) in topics and not self.trade_dropped:
                entry = {
                    "coin": coin,
                    "side": _SIDE[trade.side],
                    "px": market.price_text(trade.price),
                    "sz": market.size_text(trade.size),
                    "hash": f"0x{trade.trade_id:064x}",
                    "time": self.time[symbol],
                    "tid": self._tid + 7 * trade.trade_id,
                    "users": ["0x" + "a" * 40, "0x" + "b" * 40],
                }
                out.append(dumps({"channel": "trades", "data": [entry]}))
            if ("candle", coin) in topics:
                out.append(self._candle(symbol))
        if self.steps[symbol] % 10 == 0 and ("activeAssetCtx", coin) in topics:
            out.append(self._asset_ctx(symbol))
        return out

    # --- REST (POST /info) ------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        universe: list[dict[str, Any]] = [
            {"name": coin, "szDecimals": 5, "maxLeverage": 40}
            for symbol, coin in self.coins.items()
            if symbol not in self.spot_index
        ]
        universe.append({"name": "kPEPE", "szDecimals": 0, "maxLeverage": 10})
        universe.append({"name": "OLD", "szDecimals": 2, "maxLeverage": 3, "isDelisted": True})
        return {"universe": universe, "marginTables": []}

    def spot_meta(self) -> dict[str, Any]:
        """The ``spotMeta`` answer: tokens (``name``, ``szDecimals``,
        ``index``; USDC first, a lower-case ``kHYPE`` no unified name can
        carry) and the pairs (``name``, ``index``, ``tokens`` [base, quote]):
        the streamed spot pairs, a few others, and ``kHYPE/USDC``. Pair names
        are ``PURR/USDC`` for index 0 and ``@<index>`` otherwise, like the venue's."""
        pairs = {**_EXTRA_SPOT, **self.spot_index, "kHYPE-USDC": 300}
        names = dict.fromkeys(["USDC", *(name for pair in pairs for name in pair.split("-"))])
        token_index = {name: 3 * position for position, name in enumerate(names)}  # indices are not positions
        tokens = [
            {"name": n, "szDecimals": 8 if n == "USDC" else _SPOT_SZ_DECIMALS, "weiDecimals": 8, "index": i}
            for n, i in token_index.items()
        ]
        universe = [
            {
                "name": "PURR/USDC" if index == 0 else f"@{index}",
                "index": index,
                "tokens": [token_index[pair.split("-")[0]], token_index[pair.split("-")[1]]],
                "isCanonical": index == 0,
            }
            for pair, index in sorted(pairs.items(), key=lambda item: item[1])
        ]
        return {"tokens": tokens, "universe": universe}

    def info(self, body: bytes | str) -> tuple[int, bytes]:
        """Answer a ``POST /info`` body: ``{"type":"meta"}`` (the perpetuals,
        with a delisted and a lower-case coin like the venue's),
        ``{"type":"spotMeta"}`` (see :meth:`spot_meta`) or
        ``{"type":"l2Book","coin":..}``. The instruments answers count in
        :attr:`instruments_served` and obey ``faults.instruments_status``."""
        try:
            request = loads(body)
            kind = request["type"]
        except Exception:
            return 422, b"Failed to deserialize the JSON body into the target type"
        if kind == "meta":
            return self.instruments_answer(self._meta)
        if kind == "spotMeta":
            return self.instruments_answer(self.spot_meta)
        if kind == "l2Book" and request.get("coin") in self.unified:
            symbol = self.unified[request["coin"]]
            return 200, dumps(loads(self._book_message(symbol, *self.top(symbol)))["data"]).encode()
        return 200, b"null"
