"""A mock Bithumb public WebSocket (the new, Upbit-compatible API) on 127.0.0.1:
:class:`MockBithumb`.

It speaks the protocol of ``shared/exchanges/bithumb.md`` ("New API"): a
request is a JSON array ``[{"ticket":..},{"type":..,"codes":[..]},..,{"format":..}]``
that **replaces** the connection's subscription set; a request it cannot read
is answered ``{"error":{"name":..,"message":..}}`` (Upbit's shape); the text
``PING`` is answered ``{"status":"UP"}``. Frames are binary, carrying JSON
(as Upbit sends them). Per type:

* ``orderbook`` — the top 15 rows ``{ask_price, bid_price, ask_size,
  bid_size}`` (numbers), ``stream_type: "SNAPSHOT"`` right after a request,
  then ``"REALTIME"`` every market step.
* ``trade`` — each market trade (``ask_bid`` = taker side, ``sequential_id``
  growing but not contiguous); the last trade as a ``SNAPSHOT`` after a
  request unless ``is_only_realtime``.

Faults (``mock.faults``) on ``orderbook``: ``skip_seq`` (a message is lost
— the next one heals the book, nothing can detect it), ``duplicate``,
``reorder``, ``crossed`` (an extra message with a bid at the best ask);
``drop_trades``; plus ``garbage``, ``silent`` and ``reject_subscriptions``.
There is no checksum and no sequence, so ``bad_checksum`` does not apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.exchanges.bithumb import bithumb_code
from wsmux.model import Side
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection
from wsmux.testing._stepped import SteppedMock

__all__ = ["MockBithumb"]

UNITS = 15
"""Rows per ``orderbook`` message."""
_TYPES = frozenset({"orderbook", "trade", "ticker"})


def _number(text: str) -> int | float:
    """The mock market's decimal text as the JSON number the venue sends."""
    return float(text) if "." in text else int(text)


class MockBithumb(SteppedMock):
    """Mock Bithumb endpoint. See the module docstring.

    Args:
        symbols: unified spot symbols to list (``BTC-KRW``).
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    venue: ClassVar[str] = "bithumb"
    ws_path: ClassVar[str] = "/websocket/v1"
    tick: ClassVar[str] = "1"  # KRW prices are integers
    lot: ClassVar[str] = "0.0001"

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
        self.codes = {s: bithumb_code(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.codes.items()}
        self.last_trade: dict[str, dict[str, Any]] = {}

    # --- client messages ----------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        if message in ("PING", b"PING"):
            await conn.send(b'{"status":"UP"}')
            return
        try:
            request = loads(message)
            topics, realtime_only = self._read(request)
        except (ValueError, TypeError, KeyError) as exc:
            await conn.send(dumps({"error": {"name": "INVALID_PARAM", "message": str(exc)[:100]}}).encode())
            return
        if self.faults.reject_subscriptions:
            await conn.send(b'{"error":{"name":"INVALID_AUTH","message":"mock fault: refused"}}')
            return
        conn.topics = topics
        conn.state["realtime_only"] = realtime_only
        for kind, code in sorted(topics):
            symbol = self.unified[code]
            if kind == "orderbook":
                await conn.send(self._orderbook(conn, symbol, "SNAPSHOT"))
            elif kind == "trade" and code not in realtime_only and symbol in self.last_trade:
                await conn.send(dumps({**self.last_trade[symbol], "stream_type": "SNAPSHOT"}).encode())

    def _read(self, request: Any) -> tuple[set[tuple[str, str]], set[str]]:
        if not isinstance(request, list) or not request or "ticket" not in request[0]:
            raise ValueError("NO_TICKET: the first field must be the ticket")
        topics: set[tuple[str, str]] = set()
        realtime_only: set[str] = set()
        for field in request[1:]:
            if "format" in field:
                continue
            kind = field["type"]
            codes = field["codes"]
            if kind not in _TYPES or not isinstance(codes, list) or not codes:
                raise ValueError(f"WRONG_TYPE_OR_CODES: {kind!r}")
            for code in codes:
                if code not in self.unified:
                    raise ValueError(f"WRONG_CODE: {code!r}")
                topics.add((kind, code))
                if kind == "trade" and field.get("is_only_realtime"):
                    realtime_only.add(code)
        if not topics:
            raise ValueError("NO_TYPE: no type field")
        return topics, realtime_only

    # --- messages -------------------------------------------------------------------

    def top(self, symbol: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The top 15 levels a side of ``symbol``'s market (ticks, lots), best first."""
        market = self.markets[symbol]
        return sorted(market.bids.items(), reverse=True)[:UNITS], sorted(market.asks.items())[:UNITS]

    def _orderbook(
        self, conn: MockConnection, symbol: str, stream_type: str, levels: tuple[list[Any], list[Any]] | None = None
    ) -> bytes:
        market: Market = self.markets[symbol]
        bids, asks = levels if levels is not None else self.top(symbol)
        units = [
            {
                "ask_price": _number(market.price_text(ap)),
                "bid_price": _number(market.price_text(bp)),
                "ask_size": _number(market.size_text(asz)),
                "bid_size": _number(market.size_text(bsz)),
            }
            for (bp, bsz), (ap, asz) in zip(bids, asks, strict=False)
        ]
        message = {
            "type": "orderbook",
            "code": self.codes[symbol],
            "timestamp": self.time[symbol],
            "total_ask_size": _number(market.size_text(sum(s for _, s in asks))),
            "total_bid_size": _number(market.size_text(sum(s for _, s in bids))),
            "orderbook_units": units,
            "stream_type": stream_type,
        }
        return dumps(message).encode()

    def _book_messages(self, conn: MockConnection, symbol: str) -> list[bytes]:
        faults = self.faults
        out: list[bytes] = []
        if faults.take("crossed"):
            bids, asks = self.top(symbol)
            out.append(self._orderbook(conn, symbol, "REALTIME", ([(asks[0][0], 1), *bids[:-1]], asks)))
        message = self._orderbook(conn, symbol, "REALTIME")
        if not faults.take("skip_seq"):  # else: lost on the way
            out.append(message)
            if faults.take("duplicate"):
                out.append(message)
        held: dict[str, bytes] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[symbol] = out.pop()
        elif out and symbol in held:
            out.append(held.pop(symbol))
        return out

    def on_step(self, symbol: str, change: Change) -> None:
        trade = change.trade
        if trade is None:
            return
        market = self.markets[symbol]
        self.last_trade[symbol] = {
            "type": "trade",
            "code": self.codes[symbol],
            "timestamp": self.time[symbol] + 3,
            "trade_date": "2026-12-07",
            "trade_time": "00:00:00",
            "trade_timestamp": self.time[symbol],
            "trade_price": _number(market.price_text(trade.price)),
            "trade_volume": _number(market.size_text(trade.size)),
            "ask_bid": "BID" if trade.side is Side.BUY else "ASK",
            "prev_closing_price": _number(market.price_text(market.best_bid())),
            "change": "RISE",
            "change_price": 0,
            "sequential_id": 17_000_000_000_000 + 13 * trade.trade_id,
            "stream_type": "REALTIME",
        }

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        code = self.codes[symbol]
        out: list[str | bytes] = []
        if ("orderbook", code) in conn.topics:
            out.extend(self._book_messages(conn, symbol))
        if change.trade is not None and ("trade", code) in conn.topics and not self.trade_dropped:
            out.append(dumps(self.last_trade[symbol]).encode())
        return out

    # --- REST ---------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /v1/market/all``."""
        if path != "/v1/market/all":
            return None
        markets = [{"market": code, "korean_name": code, "english_name": code} for code in self.unified]
        return 200, dumps(markets).encode()
