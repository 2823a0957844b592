"""A mock OKX v5 public WebSocket (and REST book) on 127.0.0.1: :class:`MockOkx`.

It speaks the protocol of ``shared/exchanges/okx-v5.md``: ``{"op":"subscribe",
"args":[...]}`` answered with one ``{"event":"subscribe","arg":...}`` ack per
arg (or ``{"event":"error",...}``), text ``ping``/``pong``, and per channel:

* ``books`` — a snapshot on subscribe (``action: "snapshot"``, ``prevSeqId:
  -1``), then one ``update`` per market step with ``prevSeqId`` = the previous
  ``seqId``; every ``keepalive_every`` steps an empty update with ``seqId ==
  prevSeqId`` (the venue's keep-alive). The book is the top 400 levels per
  side; each message carries the CRC32 checksum of the mock's own text of the
  top 25 levels, or ``0`` when built with ``checksums=False`` (what OKX sends
  since 2026).
* ``bbo-tbt`` — the best bid/ask whenever it changes.
* ``trades`` — each market trade.
* ``funding-rate``, ``open-interest`` — on subscribe, then every 50 / 10 steps.
* ``liquidation-orders`` (per ``instType``) — every third trade of a swap or
  future is also reported as a liquidation of the losing side.
* ``candle1m`` — only on the business path ``/ws/v5/business`` (the public
  path refuses it, and the business path refuses the public channels, with
  error 60018 as OKX does): after each trade the forming one-minute candle
  (``confirm "0"``), preceded by the previous minute's final candle
  (``confirm "1"``) when the trade opened a new minute. Swap and future rows
  give ``vol`` in contracts and ``volCcy`` in the base currency (contracts x
  the mock's contract value :attr:`MockOkx.contract_value`).

Instruments are the unified symbols the mock was built with (``BTC-USDT`` →
``BTC-USDT``, ``BTC-USDT-PERP`` → ``BTC-USDT-SWAP``). ``conn.state["seq"][symbol]``
is the last ``seqId`` rendered for a connection's book (for synchronising tests).

Faults (``mock.faults``), applied to ``books`` updates: ``skip_seq`` (an update
is lost: the next one's ``prevSeqId`` names it), ``bad_checksum`` (a wrong
non-zero checksum, even with ``checksums=False``), ``duplicate`` (sent twice),
``reorder`` (held back and sent after the next one), ``crossed`` (an extra
update puts a bid at the best ask), plus the base faults (``garbage``,
``silent``, ``reject_subscriptions`` → error events, ``snapshot_status`` /
``snapshot_garbage`` for REST).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from wsmux._json import dumps, loads
from wsmux.book.checksum import INTERLEAVED_DEPTH, okx_checksum, to_signed32
from wsmux.exchanges.okx import BOOK_DEPTH, okx_symbol
from wsmux.model import Side
from wsmux.testing._candles import MinuteCandles, MockCandle
from wsmux.testing._market import Change, Market, MarketTrade
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockOkx"]

_SEQ_START = 120_000_000
_BUSINESS_PATH = "/ws/v5/business"
_T0_MS = 1_700_000_000_000

View = dict[int, int]  # price ticks -> size lots


def _top(market: Market, depth: int) -> tuple[View, View]:
    """The best ``depth`` levels per side of ``market``."""
    bids = dict(sorted(market.bids.items(), reverse=True)[:depth])
    asks = dict(sorted(market.asks.items())[:depth])
    return bids, asks


def _diff(old: View, new: View, side: dict[int, int]) -> list[tuple[int, int]]:
    """Changes that turn a client's ``old`` view into ``new``. A level that left
    the view but is still in the market was pushed beyond the depth: the client
    trims it (no delete is sent); a level gone from the market is deleted."""
    out = [(p, s) for p, s in new.items() if old.get(p) != s]
    out.extend((p, 0) for p in old if p not in new and p not in side)
    return out


class _Book:
    """What one connection's client should hold for one instrument."""

    __slots__ = ("asks", "bids", "seq", "steps")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.bids: View = {}
        self.asks: View = {}
        self.steps = 0


class MockOkx(MockExchange):
    """Mock OKX v5 public endpoint. See the module docstring.

    Args:
        symbols: unified symbols to list (spot, ``-PERP`` or dated futures).
        checksums: send real checksums (True) or ``0`` like OKX since 2026.
        keepalive_every: send an empty ``seqId == prevSeqId`` update every this
            many steps per book (0: never).
        contract_value: the ``ctVal`` (base units per contract) the
            instruments list gives swaps and futures. The mock's sizes are
            contracts: with the default ``"1"`` they equal base units; with
            e.g. ``"0.01"`` a client that loaded the instruments reports
            ``contracts * 0.01``.
        seed, rate, host, levels: see :class:`~wsmux.testing.MockExchange`.
    """

    server_time_path: ClassVar[str | None] = "/api/v5/public/time"

    def server_time_body(self, now_ns: int) -> str:
        """The REST server time (:attr:`~wsmux.testing.MockExchange.clock_skew` applies)."""
        return f'{{"code":"0","msg":"","data":[{{"ts":"{now_ns // 1_000_000}"}}]}}'

    venue: ClassVar[str] = "okx"
    ws_path: ClassVar[str] = "/ws/v5/public"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 1,
        rate: float = 10.0,
        host: str = "127.0.0.1",
        levels: int = 50,
        checksums: bool = True,
        keepalive_every: int = 10,
        contract_value: str = "1",
    ) -> None:
        super().__init__(symbols, seed=seed, rate=rate, host=host, levels=levels)
        self.checksums = checksums
        self.contract_value = contract_value
        self.keepalive_every = keepalive_every
        self.native = {s: okx_symbol(s) for s in self.symbols}
        self.unified = {v: k for k, v in self.native.items()}
        self._ms = _T0_MS
        self.candles = MinuteCandles()
        """The one-minute candles built from the mock's trades (keyed by instId)."""

    async def on_open(self, conn: MockConnection) -> None:
        request = conn.ws.request
        conn.state["business"] = request is not None and request.path.rstrip("/") == _BUSINESS_PATH

    def _now(self) -> str:
        self._ms = self.stamp_ns(self._ms * 1_000_000) // 1_000_000
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
            await conn.send(self._error("60012", f"Invalid request: {message!r:.100}"))
            return
        for arg in args:
            topic = self._topic(arg)
            if topic is not None and (topic[0] == "candle1m") != conn.state.get("business", False):
                topic = None  # okx-v5.md: candles live on /business, the rest on /public
            if topic is None or (op == "subscribe" and self.faults.reject_subscriptions):
                await conn.send(self._error("60018", f"Wrong URL or channel:{arg}, doesn't exist."))
                continue
            await conn.send(dumps({"event": op, "arg": arg, "connId": f"mock{conn.conn_id}"}))
            if op == "unsubscribe":
                conn.topics.discard(topic)
                conn.state.setdefault("held", {}).pop(topic[1], None)
                continue
            conn.topics.add(topic)
            channel, inst = topic
            if channel == "books":
                await conn.send(self._snapshot(conn, inst))
            elif channel == "funding-rate":
                await conn.send(self._funding(inst))
            elif channel == "open-interest":
                await conn.send(self._open_interest(inst))

    def _topic(self, arg: Any) -> tuple[str, str] | None:
        if not isinstance(arg, dict):
            return None
        channel = arg.get("channel")
        if channel == "liquidation-orders":
            inst_type = arg.get("instType")
            return (channel, inst_type) if inst_type in ("SWAP", "FUTURES") else None
        inst = arg.get("instId")
        if inst not in self.unified:
            return None
        derivative = inst.count("-") == 2
        if channel in ("books", "bbo-tbt", "trades", "candle1m") or (derivative and channel == "open-interest"):
            return channel, inst
        if channel == "funding-rate" and inst.endswith("-SWAP"):
            return channel, inst
        return None

    @staticmethod
    def _error(code: str, text: str) -> str:
        return dumps({"event": "error", "code": code, "msg": text, "connId": "mock"})

    # --- books ----------------------------------------------------------------------

    def _book(self, conn: MockConnection, inst: str) -> _Book:
        books: dict[str, _Book] = conn.state.setdefault("books", {})
        book = books.get(inst)
        if book is None:
            book = books[inst] = _Book(_SEQ_START + 1000 * len(books))
        return book

    def _levels(self, market: Market, changes: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [
            [market.price_text(p), market.size_text(s), "0", "1"] if s else [market.price_text(p), "0", "0", "0"]
            for p, s in changes
        ]

    def _checksum(self, market: Market, book: _Book) -> int:
        if not self.checksums:
            return 0
        bids = [
            (market.price_text(p), market.size_text(book.bids[p]))
            for p in sorted(book.bids, reverse=True)[:INTERLEAVED_DEPTH]
        ]
        asks = [(market.price_text(p), market.size_text(book.asks[p])) for p in sorted(book.asks)[:INTERLEAVED_DEPTH]]
        return okx_checksum(bids, asks)

    def _book_message(
        self, inst: str, action: str, bids: list[list[str]], asks: list[list[str]], checksum: int, prev: int, seq: int
    ) -> str:
        return dumps(
            {
                "arg": {"channel": "books", "instId": inst},
                "action": action,
                "data": [
                    {
                        "asks": asks,
                        "bids": bids,
                        "ts": self._now(),
                        "checksum": checksum,
                        "prevSeqId": prev,
                        "seqId": seq,
                    }
                ],
            }
        )

    def _snapshot(self, conn: MockConnection, inst: str) -> str:
        symbol = self.unified[inst]
        market = self.markets[symbol]
        book = self._book(conn, inst)
        book.bids, book.asks = _top(market, BOOK_DEPTH)
        conn.state.setdefault("seq", {})[symbol] = book.seq
        return self._book_message(
            inst,
            "snapshot",
            self._levels(market, sorted(book.bids.items(), reverse=True)),
            self._levels(market, sorted(book.asks.items())),
            self._checksum(market, book),
            -1,
            book.seq,
        )

    def _book_updates(self, conn: MockConnection, symbol: str, inst: str) -> list[str]:
        market = self.markets[symbol]
        book = self._book(conn, inst)
        faults = self.faults
        bids, asks = _top(market, BOOK_DEPTH)
        bid_changes = _diff(book.bids, bids, market.bids)
        ask_changes = _diff(book.asks, asks, market.asks)
        out: list[str] = []
        book.steps += 1
        seqs = conn.state.setdefault("seq", {})
        if bid_changes or ask_changes:
            prev, book.seq = book.seq, book.seq + 1
            book.bids, book.asks = bids, asks
            seqs[symbol] = book.seq
            if not faults.take("skip_seq"):  # else: the update is lost on the way
                checksum = self._checksum(market, book)
                if faults.take("bad_checksum"):
                    checksum = to_signed32(checksum ^ 0x5A5A5A5A) or 1
                message = self._book_message(
                    inst,
                    "update",
                    self._levels(market, bid_changes),
                    self._levels(market, ask_changes),
                    checksum,
                    prev,
                    book.seq,
                )
                out.append(message)
                if faults.take("duplicate"):
                    out.append(message)
        if faults.take("crossed"):
            best_ask = min(book.asks)
            prev, book.seq = book.seq, book.seq + 1
            book.bids[best_ask] = 1
            seqs[symbol] = book.seq
            crossing = [[market.price_text(best_ask), market.size_text(1), "0", "1"]]
            out.append(self._book_message(inst, "update", crossing, [], self._checksum(market, book), prev, book.seq))
        if self.keepalive_every and book.steps % self.keepalive_every == 0:
            out.append(self._book_message(inst, "update", [], [], self._checksum(market, book), book.seq, book.seq))
        held: dict[str, str] = conn.state.setdefault("held", {})
        if out and faults.take("reorder"):
            held[inst] = out.pop(0)
        elif out and inst in held:
            out.insert(1, held.pop(inst))
        return out

    # --- other channels -------------------------------------------------------------

    def _bbo(self, conn: MockConnection, symbol: str, inst: str) -> list[str]:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        top = (bb, market.bids[bb], ba, market.asks[ba])
        last: dict[str, tuple[int, ...]] = conn.state.setdefault("bbo", {})
        if last.get(inst) == top:
            return []
        last[inst] = top
        seq = conn.state["bbo_seq"] = conn.state.get("bbo_seq", 0) + 1
        entry = {
            "asks": [[market.price_text(ba), market.size_text(top[3]), "0", "1"]],
            "bids": [[market.price_text(bb), market.size_text(top[1]), "0", "1"]],
            "ts": self._now(),
            "seqId": seq,
        }
        return [dumps({"arg": {"channel": "bbo-tbt", "instId": inst}, "data": [entry]})]

    def _funding(self, inst: str) -> str:
        now = int(self._now())
        steps = self.markets[self.unified[inst]].next_trade_id
        entry = {
            "instId": inst,
            "instType": "SWAP",
            "fundingRate": f"0.000{10 + steps % 90}",
            "nextFundingRate": "",
            "fundingTime": str(_T0_MS + 8 * 3_600_000),
            "nextFundingTime": str(_T0_MS + 16 * 3_600_000),
            "ts": str(now),
        }
        return dumps({"arg": {"channel": "funding-rate", "instId": inst}, "data": [entry]})

    def _open_interest(self, inst: str) -> str:
        market = self.markets[self.unified[inst]]
        oi = 500_000 + 37 * market.next_trade_id
        entry = {
            "instType": "SWAP" if inst.endswith("-SWAP") else "FUTURES",
            "instId": inst,
            "oi": str(oi),
            "oiCcy": market.size_text(oi),
            "ts": self._now(),
        }
        return dumps({"arg": {"channel": "open-interest", "instId": inst}, "data": [entry]})

    def _liquidation(self, symbol: str, inst: str, inst_type: str, trade: MarketTrade) -> str:
        market = self.markets[symbol]
        detail = {
            "side": trade.side.value,
            "posSide": "short" if trade.side is Side.BUY else "long",
            "bkPx": market.price_text(trade.price),
            "sz": market.size_text(trade.size),
            "bkLoss": "0",
            "ts": self._now(),
        }
        entry = {"instId": inst, "instFamily": inst.rsplit("-", 1)[0], "details": [detail]}
        return dumps({"arg": {"channel": "liquidation-orders", "instType": inst_type}, "data": [entry]})

    def _candle(self, inst: str, market: Market, candle: MockCandle, final: bool) -> str:
        volume = market.size_text(candle.volume)
        if inst.count("-") == 2:  # a swap or future: vol counts contracts, volCcy is base units
            contracts = volume  # the mock's swap sizes are contracts, as on OKX
            base = f"{market.size(candle.volume) * float(self.contract_value):.8f}"
        else:  # spot: vol is base, volCcy quote (approximated at the close)
            contracts, base = volume, f"{market.size(candle.volume) * market.price(candle.close):.8f}"
        row = [
            str(candle.start_ms),
            market.price_text(candle.open),
            market.price_text(candle.high),
            market.price_text(candle.low),
            market.price_text(candle.close),
            contracts,
            base,
            base,
            "1" if final else "0",
        ]
        return dumps({"arg": {"channel": "candle1m", "instId": inst}, "data": [row]})

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        inst = self.native[symbol]
        topics = conn.topics
        market = self.markets[symbol]
        out: list[str | bytes] = []
        if ("books", inst) in topics:
            out.extend(self._book_updates(conn, symbol, inst))
        if ("bbo-tbt", inst) in topics:
            out.extend(self._bbo(conn, symbol, inst))
        trade = change.trade
        if trade is not None and ("trades", inst) in topics:
            entry = {
                "instId": inst,
                "tradeId": str(trade.trade_id),
                "px": market.price_text(trade.price),
                "sz": market.size_text(trade.size),
                "side": trade.side.value,
                "ts": self._now(),
            }
            out.append(dumps({"arg": {"channel": "trades", "instId": inst}, "data": [entry]}))
        if trade is not None:  # the venue's candle counts every trade, watched or not
            finished, forming = self.candles.on_trade_once(inst, trade.trade_id, self._ms, trade.price, trade.size)
            if ("candle1m", inst) in topics:
                for candle in (finished, forming):
                    if candle is not None:
                        out.append(self._candle(inst, market, candle, candle is not forming))
        inst_type = "SWAP" if inst.endswith("-SWAP") else "FUTURES" if inst.count("-") == 2 else "SPOT"
        if trade is not None and trade.trade_id % 3 == 0 and ("liquidation-orders", inst_type) in topics:
            out.append(self._liquidation(symbol, inst, inst_type, trade))
        steps: dict[str, int] = conn.state.setdefault("steps", {})
        steps[inst] = n = steps.get(inst, 0) + 1
        if n % 50 == 0 and ("funding-rate", inst) in topics:
            out.append(self._funding(inst))
        if n % 10 == 0 and ("open-interest", inst) in topics:
            out.append(self._open_interest(inst))
        return out

    # --- REST -------------------------------------------------------------------------

    def _instruments(self, inst_type: str) -> dict[str, Any]:
        """The listed instruments of ``inst_type``: linear contracts of
        :attr:`contract_value` base units (okx-v5.md: "see instrument ``ctVal``")."""
        rows = []
        for inst_id in self.native.values():
            kind = "SPOT" if inst_id.count("-") == 1 else "SWAP" if inst_id.endswith("-SWAP") else "FUTURES"
            if kind != inst_type:
                continue
            base, quote = inst_id.split("-")[:2]
            row = {"instType": kind, "instId": inst_id, "tickSz": self.tick, "lotSz": self.lot, "state": "live"}
            if kind == "SPOT":
                row.update(baseCcy=base, quoteCcy=quote, ctVal="", ctType="")
            else:
                row.update(ctVal=self.contract_value, ctMult="1", ctValCcy=base, ctType="linear", settleCcy=quote)
            rows.append(row)
        return {"code": "0", "msg": "", "data": rows}

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /api/v5/market/books?instId=..&sz=..`` (okx-v5.md, "Endpoints")
        and ``GET /api/v5/public/instruments?instType=..``."""
        if path == "/api/v5/public/instruments":
            return self.instruments_answer(lambda: self._instruments(query.get("instType", "")))
        if path != "/api/v5/market/books":
            return None
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"code":"50011","msg":"mock fault","data":[]}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'{"code":"0","data":[{"asks":'
        inst = query.get("instId", "")
        symbol = self.unified.get(inst)
        if symbol is None:
            return 200, dumps({"code": "51001", "msg": "Instrument ID does not exist", "data": []}).encode()
        market = self.markets[symbol]
        depth = min(int(query.get("sz", "1") or 1), BOOK_DEPTH)
        bids, asks = _top(market, depth)
        entry = {
            "asks": self._levels(market, sorted(asks.items())),
            "bids": self._levels(market, sorted(bids.items(), reverse=True)),
            "ts": self._now(),
        }
        return 200, dumps({"code": "0", "msg": "", "data": [entry]}).encode()
