"""A mock dYdX v4 indexer WebSocket (and REST) on 127.0.0.1: :class:`MockDydx`.

It speaks the protocol of ``shared/exchanges/dydx-v4.md`` as the indexer's
``socks`` service implements it: ``{"type":"connected","message_id":0}`` on
connect; ``{"type":"subscribe","channel":..,"id":..}`` reserves the next
``message_id`` and is answered by ``subscribed`` (with the initial data) or an
``error`` carrying that id; ``unsubscribe`` → ``unsubscribed``; requests that
fail validation (no or unknown channel, no id) get an ``error`` that repeats
the current id. Every data message takes the next ``message_id`` of the
connection. Channels:

* ``v4_orderbook`` — the full book on subscribe (``{"price","size"}``
  objects), then one ``channel_data`` per market step with ``[price, size]``
  pairs (absolute, ``"0"`` deletes).
* ``v4_trades`` — recent trades on subscribe (history), then each trade
  (``side`` = taker; every fifth trade is ``LIQUIDATED``).
* ``v4_markets`` (no id) — every market on subscribe; ``trading`` updates
  (``nextFundingRate``, ``openInterest``) every 10 steps and ``oraclePrices``
  every 5 steps.
* ``v4_candles`` (``<MARKET>/1MIN``) — the forming candle after each trade;
  one step is one second of mock time.

``late_subscribed=True`` answers a subscribe only after the next market step
has been rendered to the connection (like the real server, which fetches the
initial data first): data of other subscriptions then arrives with higher ids
than the ``subscribed`` answer. ``conn.state["mid"]`` is the last id assigned.

Faults (``mock.faults``) on ``v4_orderbook`` updates: ``skip_seq`` (a
message is lost: its id is skipped), ``duplicate`` (sent twice, same id),
``reorder`` (held back and sent after the next message), ``crossed`` (a stale
bid at the best ask appears, as the indexer's book can show, and is withdrawn
the next step); ``drop_trades``; plus ``garbage``, ``silent``,
``reject_subscriptions``. dYdX has no checksum, so ``bad_checksum`` does not apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.dydx import CANDLE_RESOLUTION, dydx_market
from wsmux.model import Side
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection
from wsmux.testing._stepped import SteppedMock

__all__ = ["MockDydx"]

_CHANNELS = frozenset({"v4_orderbook", "v4_trades", "v4_markets", "v4_candles", "v4_subaccounts"})
_RESOLUTIONS = frozenset({"1MIN", "5MINS", "15MINS", "30MINS", "1HOUR", "4HOURS", "1DAY"})
_MINUTE_MS = 60_000
_HEIGHT0 = 14_000_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class MockDydx(SteppedMock):
    """Mock dYdX v4 indexer. See the module docstring.

    Args:
        symbols: unified perpetual symbols to list (``BTC-USD-PERP``).
        late_subscribed: answer subscribes after the next step (see above).
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "dydx"
    ws_path: ClassVar[str] = "/v4/ws"
    tick: ClassVar[str] = "1"
    lot: ClassVar[str] = "0.0001"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        late_subscribed: bool = False,
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.late_subscribed = late_subscribed
        self.tickers = {s: dydx_market(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.tickers.items()}
        self.recent: dict[str, list[dict[str, Any]]] = {s: [] for s in self.symbols}
        self.candles: dict[str, list[Any]] = {}
        """symbol -> the forming candle [t, o, h, l, c, v, n] in ticks and lots."""

    # --- ids and envelopes ------------------------------------------------------------

    @staticmethod
    def _next_id(conn: MockConnection) -> int:
        mid: int = conn.state.get("mid", 0) + 1
        conn.state["mid"] = mid
        return mid

    @staticmethod
    def _conn_id(conn: MockConnection) -> str:
        return f"00000000-0000-4000-8000-{conn.conn_id:012d}"

    def _error(self, conn: MockConnection, text: str, message_id: int | None = None) -> str:
        mid = conn.state.get("mid", 0) if message_id is None else message_id
        return dumps({"type": "error", "message": text, "connection_id": self._conn_id(conn), "message_id": mid})

    def _data(self, conn: MockConnection, channel: str, topic_id: str | None, contents: Any) -> str:
        message: dict[str, Any] = {
            "type": "channel_data",
            "connection_id": self._conn_id(conn),
            "message_id": self._next_id(conn),
        }
        if topic_id is not None:
            message["id"] = topic_id
        message.update({"channel": channel, "version": "1.0.0", "contents": contents})
        return dumps(message)

    # --- client messages --------------------------------------------------------------

    async def on_open(self, conn: MockConnection) -> None:
        conn.state["mid"] = 0
        await conn.send(dumps({"type": "connected", "connection_id": self._conn_id(conn), "message_id": 0}))

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = loads(message)
        except Exception:
            await conn.send(self._error(conn, "Invalid message: could not parse"))
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "ping":
            return
        if kind not in ("subscribe", "unsubscribe"):
            await conn.send(
                self._error(conn, f"Invalid message type: {kind}" if kind else "Invalid message: type is required")
            )
            return
        channel, topic_id = msg.get("channel"), msg.get("id")
        if not channel:
            await conn.send(self._error(conn, "Invalid subscribe message: channel is required"))
            return
        if channel not in _CHANNELS:
            await conn.send(self._error(conn, f"Invalid channel: {channel}"))
            return
        if channel != "v4_markets" and not isinstance(topic_id, str):
            await conn.send(self._error(conn, f"Invalid id: {topic_id}"))
            return
        key = (channel, topic_id if channel != "v4_markets" else None)
        if kind == "unsubscribe":
            conn.topics.discard(key)
            reply: dict[str, Any] = {
                "type": "unsubscribed",
                "connection_id": self._conn_id(conn),
                "message_id": self._next_id(conn),
                "channel": channel,
            }
            if key[1] is not None:
                reply["id"] = key[1]
            await conn.send(dumps(reply))
            return
        reserved = self._next_id(conn)
        if self.faults.reject_subscriptions or not self._valid(channel, topic_id):
            await conn.send(self._error(conn, f"Invalid subscription id for channel: ({channel}-{topic_id})", reserved))
            return
        pending: list[tuple[Any, int]] = conn.state.setdefault("pending", [])
        if key in conn.topics or any(k == key for k, _ in pending):
            await conn.send(
                self._error(conn, f"Invalid subscribe message: already subscribed ({channel}-{topic_id})", reserved)
            )
            return
        if self.late_subscribed:
            pending.append((key, reserved))
        else:
            await conn.send(self._subscribed(conn, key, reserved))

    def _valid(self, channel: str, topic_id: Any) -> bool:
        if channel == "v4_markets":
            return True
        if channel == "v4_candles":
            ticker, _, resolution = str(topic_id).partition("/")
            return ticker in self.unified and resolution in _RESOLUTIONS
        return channel != "v4_subaccounts" and topic_id in self.unified

    def _subscribed(self, conn: MockConnection, key: tuple[str, str | None], message_id: int) -> str:
        """The answer to a subscribe (and the topic becomes live)."""
        conn.topics.add(key)
        channel, topic_id = key
        if channel == "v4_orderbook":
            market = self.markets[self.unified[str(topic_id)]]
            contents: Any = {
                "bids": self._objects(market, sorted(market.bids.items(), reverse=True)),
                "asks": self._objects(market, sorted(market.asks.items())),
            }
        elif channel == "v4_trades":
            contents = {"trades": list(reversed(self.recent[self.unified[str(topic_id)]][-3:]))}
        elif channel == "v4_markets":
            contents = {
                "markets": {ticker: self._market_fields(symbol, full=True) for symbol, ticker in self.tickers.items()}
            }
        else:
            symbol = self.unified[str(topic_id).partition("/")[0]]
            contents = {"candles": [self._candle(symbol)] if symbol in self.candles else []}
        message: dict[str, Any] = {
            "type": "subscribed",
            "connection_id": self._conn_id(conn),
            "message_id": message_id,
            "channel": channel,
        }
        if topic_id is not None:
            message["id"] = topic_id
        message["contents"] = contents
        return dumps(message)

    # --- content ------------------------------------------------------------------------

    @staticmethod
    def _objects(market: Market, levels: Iterable[tuple[int, int]]) -> list[dict[str, str]]:
        return [{"price": market.price_text(p), "size": market.size_text(s)} for p, s in levels]

    @staticmethod
    def _pairs(market: Market, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [[market.price_text(p), market.size_text(s)] for p, s in levels]

    def _market_fields(self, symbol: str, *, full: bool) -> dict[str, Any]:
        market = self.markets[symbol]
        steps = market.next_trade_id
        fields: dict[str, Any] = {
            "ticker": self.tickers[symbol],
            "nextFundingRate": f"0.0000{10 + steps % 90}",
            "openInterest": market.size_text(600_000 + 31 * steps),
        }
        if full:
            mid = (market.best_bid() + market.best_ask()) // 2
            fields.update(
                {
                    "status": "ACTIVE",
                    "oraclePrice": market.price_text(mid),
                    "tickSize": self.tick,
                    "stepSize": self.lot,
                    "atomicResolution": -10,
                    "clobPairId": str(self.symbols.index(symbol)),
                }
            )
        return fields

    def _candle(self, symbol: str) -> dict[str, Any]:
        market = self.markets[symbol]
        t, o, h, low, c, v, n = self.candles[symbol]
        return {
            "startedAt": _iso(t),
            "ticker": self.tickers[symbol],
            "resolution": CANDLE_RESOLUTION,
            "low": market.price_text(low),
            "high": market.price_text(h),
            "open": market.price_text(o),
            "close": market.price_text(c),
            "baseTokenVolume": market.size_text(v),
            "usdVolume": "0",
            "trades": n,
            "startingOpenInterest": "0",
            "id": f"{self.tickers[symbol]}-{t}",
        }

    def _trade(self, symbol: str, trade: MarketTrade) -> dict[str, Any]:
        market = self.markets[symbol]
        return {
            "id": f"{trade.trade_id:08x}-0000-4000-8000-{self.symbols.index(symbol):012d}",
            "side": "BUY" if trade.side is Side.BUY else "SELL",
            "size": market.size_text(trade.size),
            "price": market.price_text(trade.price),
            "type": "LIQUIDATED" if trade.trade_id % 5 == 0 else "LIMIT",
            "createdAt": _iso(self.time[symbol]),
            "createdAtHeight": str(_HEIGHT0 + self.steps[symbol]),
        }

    def on_step(self, symbol: str, change: Change) -> None:
        trade = change.trade
        if trade is None:
            return
        self.recent[symbol].append(self._trade(symbol, trade))
        del self.recent[symbol][:-10]
        start = self.time[symbol] - self.time[symbol] % _MINUTE_MS
        candle = self.candles.get(symbol)
        if candle is None or candle[0] != start:
            self.candles[symbol] = [start, trade.price, trade.price, trade.price, trade.price, trade.size, 1]
            return
        candle[2] = max(candle[2], trade.price)
        candle[3] = min(candle[3], trade.price)
        candle[4] = trade.price
        candle[5] += trade.size
        candle[6] += 1

    # --- rendering ------------------------------------------------------------------------

    def _book_updates(self, conn: MockConnection, symbol: str, change: Change) -> list[str]:
        market = self.markets[symbol]
        ticker = self.tickers[symbol]
        faults = self.faults
        bids = list(change.bids)
        asks = list(change.asks)
        restore: dict[str, int] = conn.state.setdefault("restore", {})
        stale = restore.pop(ticker, None)
        if stale is not None:  # withdraw the stale crossing bid, restate the ask it hid
            bids.append((stale, market.bids.get(stale, 0)))
            asks.append((stale, market.asks.get(stale, 0)))
        out: list[str] = []
        if bids or asks:
            message = self._data(
                conn, "v4_orderbook", ticker, {"bids": self._pairs(market, bids), "asks": self._pairs(market, asks)}
            )
            if not faults.take("skip_seq"):  # else: lost on the way (its id is spent)
                out.append(message)
                if faults.take("duplicate"):
                    out.append(message)
        if faults.take("crossed"):
            best_ask = market.best_ask()
            restore[ticker] = best_ask
            out.append(
                self._data(conn, "v4_orderbook", ticker, {"bids": self._pairs(market, [(best_ask, 1)]), "asks": []})
            )
        return out

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        ticker = self.tickers[symbol]
        topics = conn.topics
        out: list[str | bytes] = []
        if ("v4_orderbook", ticker) in topics:
            out.extend(self._book_updates(conn, symbol, change))
        trade = change.trade
        if trade is not None:
            if ("v4_trades", ticker) in topics and not self.trade_dropped:
                out.append(self._data(conn, "v4_trades", ticker, {"trades": [self.recent[symbol][-1]]}))
            candle_id = f"{ticker}/{CANDLE_RESOLUTION}"
            if ("v4_candles", candle_id) in topics:
                out.append(self._data(conn, "v4_candles", candle_id, self._candle(symbol)))
        if ("v4_markets", None) in topics and symbol == self.symbols[0]:
            steps = self.steps[symbol]
            if steps % 10 == 0:
                trading = {t: self._market_fields(s, full=False) for s, t in self.tickers.items()}
                out.append(self._data(conn, "v4_markets", None, {"trading": trading}))
            if steps % 5 == 0:
                oracle = {
                    t: {
                        "oraclePrice": self.markets[s].price_text(self.markets[s].best_bid()),
                        "effectiveAt": _iso(self.time[s]),
                        "effectiveAtHeight": str(_HEIGHT0 + steps),
                        "marketId": i,
                    }
                    for i, (s, t) in enumerate(self.tickers.items())
                }
                out.append(self._data(conn, "v4_markets", None, {"oraclePrices": oracle}))
        held: list[str | bytes] = conn.state.setdefault("held", [])
        if out and held:
            out.insert(1, held.pop())
        if out and self.faults.take("reorder"):
            held.append(out.pop(0))
        pending: list[tuple[Any, int]] = conn.state.get("pending", [])
        while pending:
            key, reserved = pending.pop(0)
            out.append(self._subscribed(conn, key, reserved))
        return out

    # --- REST -------------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /v4/perpetualMarkets`` and ``GET /v4/orderbooks/perpetualMarket/<MARKET>``."""
        if path == "/v4/perpetualMarkets":
            markets = {ticker: self._market_fields(symbol, full=True) for symbol, ticker in self.tickers.items()}
            return 200, dumps({"markets": markets}).encode()
        prefix = "/v4/orderbooks/perpetualMarket/"
        if path.startswith(prefix):
            symbol = self.unified.get(path[len(prefix) :])
            if symbol is None:
                return 404, b'{"errors":[{"msg":"ticker not found"}]}'
            market = self.markets[symbol]
            body = {
                "bids": self._objects(market, sorted(market.bids.items(), reverse=True)),
                "asks": self._objects(market, sorted(market.asks.items())),
            }
            return 200, dumps(body).encode()
        return None
