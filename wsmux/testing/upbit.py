"""A mock Upbit quotation WebSocket on 127.0.0.1: :class:`MockUpbit`.

It speaks the protocol of ``shared/exchanges/upbit.md`` on ``/websocket/v1``:
a request is one JSON array (``{"ticket"}``, ``{"type": "orderbook" |
"trade", "codes": [...]}``..., ``{"format": "SIMPLE" | "DEFAULT"}``) that
**replaces** the connection's whole set; errors are ``{"error": {"name":
"NO_TICKET" | "NO_TYPE" | "NO_CODES" | "INVALID_PARAM" | "WRONG_FORMAT",
"message": ..}}``; the text ``PING`` is answered ``{"status":"UP"}``. Every
message is sent as a **binary frame of UTF-8 JSON**, as Upbit may:

* ``orderbook`` — the complete top-30 book of a code: at once when it is
  subscribed (``st: "SNAPSHOT"``), then after every market step that changed
  it (``REALTIME``); ``tms`` is the mock's book clock (ms, + 1 per message), so
  a client that has :meth:`MockUpbit.book_ms` has the mock's last book;
* ``trade`` — each trade, ``ab`` ``BID``/``ASK`` for the taker buying/selling,
  ``sid`` increasing but not contiguous.

``GET /v1/market/all`` lists the mock's markets. Faults: ``skip_seq`` (an
orderbook message is lost: harmless, the next one is complete), ``crossed``
(an orderbook message whose best bid is at the best ask), ``duplicate``,
``garbage``, ``silent``, ``drop_trades``, ``reject_subscriptions``
(``INVALID_PARAM``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

from wsmux._json import dumps, loads
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._market import Change
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockUpbit"]

DEPTH = 30
_T0_MS = 1_700_000_000_000


class MockUpbit(MockExchange):
    """Mock Upbit (``"upbit"``): ``BTC-KRW`` ↔ ``KRW-BTC``. See the module docstring."""

    venue: ClassVar[str] = "upbit"
    ws_path: ClassVar[str] = "/websocket/v1"
    tick: ClassVar[str] = "1"
    lot: ClassVar[str] = "0.00000001"

    def __init__(self, symbols: Iterable[str], **kw: Any) -> None:
        super().__init__(symbols, **kw)
        self.natives = {s: self.native(s) for s in self.symbols}
        self.by_native = {n: s for s, n in self.natives.items()}
        self._clock = dict.fromkeys(self.symbols, _T0_MS)
        self._tops: dict[str, tuple[Any, Any]] = {}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    @staticmethod
    def native(symbol: str) -> str:
        base, quote, _kind = parse_symbol(symbol)
        return f"{quote}-{base}"

    def book_ms(self, symbol: str) -> int:
        """``tms`` of the last orderbook message rendered for ``symbol``."""
        return self._clock[symbol]

    def top(self, symbol: str) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        """The mock's top-30 book as floats (what a client's book must equal)."""
        bids, asks = self.markets[symbol].depth()
        return bids[:DEPTH], asks[:DEPTH]

    # --- publishing -------------------------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times; send every subscriber its messages."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                await self._deliver(self._step_frames(symbol, change))

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """The base contract (advances the book clock; use :meth:`publish`)."""
        return [self._encode(conn, m) for key, m in self._step_frames(symbol, change) if key in conn.topics]

    async def _deliver(self, frames: list[tuple[tuple[str, str], dict[str, Any]]]) -> None:
        if self.faults.silent:
            return
        for conn in list(self.connections.values()):
            for key, message in frames:
                if key in conn.topics:
                    await self._send(conn, self._encode(conn, message))

    @staticmethod
    def _encode(conn: MockConnection, message: dict[str, Any]) -> bytes:
        if conn.state.get("format") == "DEFAULT":
            message = {_LONG.get(k, k): v for k, v in message.items()}
            if "orderbook_units" in message:
                message["orderbook_units"] = [{_LONG[k]: v for k, v in u.items()} for u in message["orderbook_units"]]
        return dumps(message).encode()

    def orderbook(self, symbol: str, stream_type: str, *, crossed: bool = False) -> dict[str, Any]:
        """The ``orderbook`` message of the book now (SIMPLE keys). A snapshot
        (sent to one connection) keeps the book clock, a realtime message
        advances it."""
        m = self.markets[symbol]
        bids = sorted(m.bids.items(), reverse=True)[:DEPTH]
        asks = sorted(m.asks.items())[:DEPTH]
        if crossed:
            bids = [(asks[0][0], 1), *bids[:-1]]
        units = []
        for i in range(max(len(bids), len(asks))):
            unit: dict[str, float] = {}
            if i < len(asks):
                unit["ap"], unit["as"] = float(m.price_text(asks[i][0])), float(m.size_text(asks[i][1]))
            if i < len(bids):
                unit["bp"], unit["bs"] = float(m.price_text(bids[i][0])), float(m.size_text(bids[i][1]))
            units.append(unit)
        if stream_type != "SNAPSHOT":
            self._clock[symbol] += 1
        return {
            "ty": "orderbook",
            "cd": self.natives[symbol],
            "tms": self._clock[symbol],
            "tas": sum(u.get("as", 0.0) for u in units),
            "tbs": sum(u.get("bs", 0.0) for u in units),
            "obu": units,
            "lv": 0,
            "st": stream_type,
        }

    def _step_frames(self, symbol: str, change: Change) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        m = self.markets[symbol]
        native = self.natives[symbol]
        frames: list[tuple[tuple[str, str], dict[str, Any]]] = []
        trade = change.trade
        if trade is not None and not self.faults.take("drop_trades"):
            ms = self._clock[symbol]
            frames.append(
                (
                    ("trade", native),
                    {
                        "ty": "trade",
                        "cd": native,
                        "tms": ms,
                        "ttms": ms,
                        "tp": float(m.price_text(trade.price)),
                        "tv": float(m.size_text(trade.size)),
                        "ab": "BID" if trade.side is Side.BUY else "ASK",
                        "sid": ms * 1000 + trade.trade_id % 1000,
                        "st": "REALTIME",
                    },
                )
            )
        top = (sorted(m.bids.items(), reverse=True)[:DEPTH], sorted(m.asks.items())[:DEPTH])
        if top != self._tops.get(symbol):
            self._tops[symbol] = top
            faults = self.faults
            if faults.take("crossed"):
                frames.append((("orderbook", native), self.orderbook(symbol, "REALTIME", crossed=True)))
            message = self.orderbook(symbol, "REALTIME")
            if not faults.take("skip_seq"):
                frames.append((("orderbook", native), message))
                if faults.take("duplicate"):
                    frames.append((("orderbook", native), message))
        return frames

    # --- the request --------------------------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        if message in ("PING", b"PING"):
            await conn.send(b'{"status":"UP"}')
            return
        error = self._request(conn, message)
        if error is not None:
            await conn.send(dumps({"error": {"name": error[0], "message": error[1]}}).encode())
            return
        for code in conn.state.pop("pending", []):  # the snapshot of each newly subscribed book
            if not self.faults.silent:
                await self._send(conn, self._encode(conn, self.orderbook(self.by_native[code], "SNAPSHOT")))

    def _request(self, conn: MockConnection, message: str | bytes) -> tuple[str, str] | None:
        try:
            request = loads(message)
        except Exception:
            return "WRONG_FORMAT", "request is not JSON"
        if type(request) is not list or not all(type(part) is dict for part in request):
            return "WRONG_FORMAT", "request must be a list of objects"
        if not any("ticket" in part for part in request):
            return "NO_TICKET", "ticket is required"
        kinds = [part for part in request if "type" in part]
        if not kinds:
            return "NO_TYPE", "type is required"
        if self.faults.reject_subscriptions:
            return "INVALID_PARAM", "mock fault: subscription refused"
        topics: set[tuple[str, str]] = set()
        for part in kinds:
            codes = part.get("codes")
            if part["type"] not in ("orderbook", "trade") or not codes:
                return ("NO_CODES", "codes are required") if not codes else ("INVALID_PARAM", "unknown type")
            for code in codes:
                if str(code).split(".")[0] not in self.by_native:
                    return "INVALID_PARAM", f"unknown code {code!r}"
                topics.add((part["type"], str(code).split(".")[0]))
        fmt = next((part["format"] for part in request if "format" in part), "DEFAULT")
        conn.state["format"] = fmt
        new = topics - conn.topics
        conn.topics = topics  # a request replaces the whole set
        conn.state["pending"] = [code for kind, code in sorted(new) if kind == "orderbook"]
        return None

    # --- REST --------------------------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path != "/v1/market/all":
            return None
        rows = [
            {"market": native, "korean_name": native, "english_name": native, "market_warning": "NONE"}
            for native in self.natives.values()
        ]
        return 200, dumps(rows).encode()


_LONG = {
    "ty": "type",
    "cd": "code",
    "tms": "timestamp",
    "tas": "total_ask_size",
    "tbs": "total_bid_size",
    "obu": "orderbook_units",
    "lv": "level",
    "st": "stream_type",
    "ap": "ask_price",
    "bp": "bid_price",
    "as": "ask_size",
    "bs": "bid_size",
    "ttms": "trade_timestamp",
    "tp": "trade_price",
    "tv": "trade_volume",
    "ab": "ask_bid",
    "sid": "sequential_id",
}
