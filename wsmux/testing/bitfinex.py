"""A mock Bitfinex WS v2 public endpoint (``shared/exchanges/bitfinex.md``).

What it speaks, as the sheet describes the venue:

* on connect, the ``{"event":"info","version":2,...}`` greeting;
* ``{"event":"conf","flags":N}`` → ``{"event":"conf","status":"OK","flags":N}``;
  the flags are honoured: SEQ_ALL (65536) appends a per-connection sequence
  number to every array message, OB_CHECKSUM (131072) sends
  ``[chanId,"cs",checksum,seq]`` after each book snapshot and after each
  step's book changes;
* ``subscribe`` (``book`` P0 / R0 with ``len``, ``trades``, ``candles`` with
  key ``trade:1m:<symbol>``) → ``subscribed`` with a fresh ``chanId``, then
  the snapshot (book levels, raw orders, the recent trades, or the candles so
  far, newest first: ``[MTS,OPEN,CLOSE,HIGH,LOW,VOLUME]``); candles of
  another interval are refused (``10300``); a second identical subscription is
  refused (``10301 subscribe: dup``), an unknown pair too (``10001``);
* ``unsubscribe`` by ``chanId`` → ``unsubscribed``; ``ping`` → ``pong``;
* per market step (deletes first, then sets, so no intermediate book is
  crossed): P0 single-level updates ``[chanId,[PRICE,COUNT,AMOUNT],seq]``
  (COUNT 0 deletes, AMOUNT 1/-1 naming the side) for what changed inside the
  subscribed ``len`` window (levels entering or leaving the window included),
  R0 updates ``[chanId,[ORDER_ID,PRICE,AMOUNT],seq]`` (one order per level,
  PRICE 0 removes), trades as ``"te"`` then ``"tu"``, and after each trade
  the forming one-minute candle (preceded by the final one when the trade
  opened a new minute);
* heartbeats ``[chanId,"hb",seq]`` on demand (:meth:`MockBitfinex.heartbeat`).

Numbers are written as JavaScript writes them (``60400``, ``0.5``,
``1e-7``: :func:`wsmux.book.checksum.bitfinex_format` of the market's exact
decimal text) and checksums are computed from that same text, so a client
that keeps the venue's text must match them.

Faults (:class:`~wsmux.testing.Faults`): ``skip_seq`` (the next book update
skips a connection sequence number), ``bad_checksum`` (next ``cs`` off by
one bit), ``duplicate`` (next book update frame sent twice, same sequence),
``reorder`` (the next two book updates of a step swapped, sequence numbers
and all), ``crossed`` (a bid at the best ask), ``garbage`` (invalid JSON,
by the base class), ``reject_subscriptions`` (``error`` events).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, ClassVar

from wsmux.book.checksum import bitfinex_checksum, bitfinex_format
from wsmux.exchanges.bitfinex import to_native
from wsmux.model import Side
from wsmux.testing._candles import MinuteCandles, MockCandle
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockBitfinex"]

SEQ_ALL = 65536
OB_CHECKSUM = 131072

_BID_ID = 1_000_000_000
_ASK_ID = 2_000_000_000
_MTS0 = 1_700_000_000_000


def _js(fixed: str) -> str:
    """JavaScript text of a fixed-point decimal text (``"0.50000" -> "0.5"``)."""
    return bitfinex_format(Decimal(fixed))


class _Chan:
    """One channel of one mock connection."""

    __slots__ = ("asks", "bids", "chan_id", "kind", "length", "symbol")

    def __init__(self, chan_id: int, kind: str, symbol: str, length: int) -> None:
        self.chan_id = chan_id
        self.kind = kind  # "P0", "R0" or "trades"
        self.symbol = symbol
        self.length = length
        self.bids: dict[int, int] = {}  # the window last sent: ticks -> lots
        self.asks: dict[int, int] = {}


class MockBitfinex(MockExchange):
    """Mock Bitfinex public WebSocket (see the module docstring).

    Attributes:
        trade_history: how many recent trades a ``trades`` snapshot carries.
    """

    venue: ClassVar[str] = "bitfinex"
    tick: ClassVar[str] = "0.01"
    lot: ClassVar[str] = "0.00001"
    trade_history: ClassVar[int] = 30

    def __init__(self, symbols: Iterable[str], **kwargs: Any) -> None:
        super().__init__(symbols, **kwargs)
        self._natives = {to_native(s): s for s in self.symbols}
        self._chan_ids = itertools.count(17_000)
        self._trades: dict[str, deque[str]] = {s: deque(maxlen=self.trade_history) for s in self.symbols}
        self.candles = MinuteCandles()
        """The one-minute candles built from the mock's trades."""
        self._step_candles: dict[str, list[MockCandle]] = {}
        self._mts = _MTS0
        """The venue clock of the last trade (ms; see :meth:`stamp_ns`)."""
        """Symbol -> the candles its current step's trade closed and formed."""

    # --- helpers for tests ---------------------------------------------------------

    def last_seq(self, conn_id: int | None = None) -> int:
        """The last sequence number sent on a connection (the newest one if
        ``conn_id`` is None); 0 before any."""
        if conn_id is None:
            if not self.connections:
                return 0
            conn_id = max(self.connections)
        conn = self.connections.get(conn_id)
        return int(conn.state.get("seq", 0)) if conn is not None else 0

    def last_book_seq(self, symbol: str, conn_id: int | None = None) -> int:
        """The sequence number of the last P0 book message (update or ``cs``)
        sent for ``symbol`` on a connection (the newest if ``conn_id`` is None)."""
        if conn_id is None:
            if not self.connections:
                return 0
            conn_id = max(self.connections)
        conn = self.connections.get(conn_id)
        return int(conn.state.get("book_seq", {}).get(symbol, 0)) if conn is not None else 0

    def _mark_book(self, conn: MockConnection, chan: _Chan) -> None:
        if chan.kind == "P0" and "seq" in conn.state:
            conn.state.setdefault("book_seq", {})[chan.symbol] = conn.state["seq"]

    def window(self, symbol: str, length: int = 100) -> tuple[tuple[tuple[float, float], ...], ...]:
        """The P0 book a ``len=length`` subscriber should hold, as floats, best
        first: ``(bids, asks)`` like :meth:`Market.depth`."""
        market = self.markets[symbol]
        bids = sorted(market.bids.items(), reverse=True)[:length]
        asks = sorted(market.asks.items())[:length]
        return (
            tuple((market.price(p), market.size(s)) for p, s in bids),
            tuple((market.price(p), market.size(s)) for p, s in asks),
        )

    async def heartbeat(self) -> None:
        """Send ``[chanId,"hb",seq]`` on every channel of every connection."""
        for conn in list(self.connections.values()):
            async with self._lock(conn):
                for chan in list(self._chans(conn).values()):
                    await self._send(conn, self._frame(conn, f'[{chan.chan_id},"hb"'))

    async def send_info(self, code: int, msg: str = "") -> None:
        """Send an ``info`` event with ``code`` (20051 reconnect, 20060/20061
        maintenance start/end) to every connection."""
        text = json.dumps({"event": "info", "code": code, "msg": msg})
        for conn in list(self.connections.values()):
            async with self._lock(conn):
                await conn.send(text)

    # --- REST ---------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /v2/conf/pub:list:pair:exchange`` and ``...:pair:futures``
        (bitfinex.md, "Symbols"): ``[[names without the "t"]]``."""
        perps = {"/v2/conf/pub:list:pair:exchange": False, "/v2/conf/pub:list:pair:futures": True}.get(path)
        if perps is None:
            return None
        names = [native[1:] for native, s in self._natives.items() if s.endswith("-PERP") is perps]
        return self.instruments_answer(lambda: [names])

    # --- per-connection state ---------------------------------------------------------

    @staticmethod
    def _lock(conn: MockConnection) -> asyncio.Lock:
        lock = conn.state.get("lock")
        if lock is None:
            lock = conn.state["lock"] = asyncio.Lock()
        assert isinstance(lock, asyncio.Lock)
        return lock

    @staticmethod
    def _chans(conn: MockConnection) -> dict[int, _Chan]:
        chans = conn.state.get("chans")
        if chans is None:
            chans = conn.state["chans"] = {}
        assert isinstance(chans, dict)
        return chans

    def _frame(self, conn: MockConnection, head: str, *, skip: bool = False) -> str:
        """Close an array message that starts with ``head``, appending the
        connection sequence when SEQ_ALL is on (``skip``: skip one number)."""
        if not conn.state.get("flags", 0) & SEQ_ALL:
            return head + "]"
        seq = int(conn.state.get("seq", 0)) + (2 if skip else 1)
        conn.state["seq"] = seq
        return f"{head},{seq}]"

    # --- lifecycle / messages -----------------------------------------------------------

    async def on_open(self, conn: MockConnection) -> None:
        async with self._lock(conn):
            await conn.send('{"event":"info","version":2,"serverId":"mock-bitfinex","platform":{"status":1}}')

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
        except ValueError:
            await conn.send('{"event":"error","msg":"invalid JSON","code":10000}')
            return
        if not isinstance(msg, dict):
            return
        event = msg.get("event")
        async with self._lock(conn):
            if event == "conf":
                flags = int(msg.get("flags", 0))
                conn.state["flags"] = flags
                await conn.send(json.dumps({"event": "conf", "status": "OK", "flags": flags}))
            elif event == "subscribe":
                await self._subscribe(conn, msg)
            elif event == "unsubscribe":
                chan_id = msg.get("chanId")
                if not isinstance(chan_id, int) or self._chans(conn).pop(chan_id, None) is None:
                    await conn.send(json.dumps({"event": "error", "msg": "unsubscribe: invalid", "code": 10400}))
                else:
                    await conn.send(json.dumps({"event": "unsubscribed", "status": "OK", "chanId": chan_id}))
            elif event == "ping":
                await conn.send(json.dumps({"event": "pong", "ts": _MTS0, "cid": msg.get("cid")}))
            else:
                await conn.send(json.dumps({"event": "error", "msg": "unknown event", "code": 10000}))

    async def _subscribe(self, conn: MockConnection, msg: dict[str, Any]) -> None:
        channel = msg.get("channel")
        native = msg.get("symbol")
        key = msg.get("key")
        if channel == "candles" and isinstance(key, str):
            native = key.rpartition(":")[2] if key.startswith("trade:1m:") else None
        prec = msg.get("prec", "P0")
        symbol = self._natives.get(str(native))
        err = {"event": "error", "channel": channel, "symbol": native}
        if self.faults.reject_subscriptions:
            await conn.send(json.dumps({**err, "msg": "subscribe: failed", "code": 10300}))
            return
        if symbol is None:
            await conn.send(json.dumps({**err, "msg": "symbol: invalid", "code": 10001}))
            return
        if channel == "book" and prec in ("P0", "R0"):
            kind = str(prec)
        elif channel == "trades":
            kind = "trades"
        elif channel == "candles":
            kind = "candles"
        else:
            await conn.send(json.dumps({**err, "msg": "subscribe: unsupported", "code": 10300}))
            return
        chans = self._chans(conn)
        if any(c.kind == kind and c.symbol == symbol for c in chans.values()):
            await conn.send(json.dumps({**err, "msg": "subscribe: dup", "code": 10301}))
            return
        length = int(msg.get("len", 25))
        chan = _Chan(next(self._chan_ids), kind, symbol, length)
        chans[chan.chan_id] = chan
        ack: dict[str, Any] = {"event": "subscribed", "channel": channel, "chanId": chan.chan_id}
        if channel == "candles":  # Bitfinex acks candles by key, without symbol or pair
            ack["key"] = key
        else:
            ack["symbol"] = native
            if channel == "book":
                ack.update(prec=prec, freq=msg.get("freq", "F0"), len=str(length))
            ack["pair"] = str(native)[1:]
        await conn.send(json.dumps(ack))
        for frame in self._snapshot(conn, chan):
            await self._send(conn, frame)

    # --- rendering ----------------------------------------------------------------

    def _window(self, chan: _Chan) -> tuple[dict[int, int], dict[int, int]]:
        market = self.markets[chan.symbol]
        n = chan.length
        return (
            dict(sorted(market.bids.items(), reverse=True)[:n]),
            dict(sorted(market.asks.items())[:n]),
        )

    def _entry(self, chan: _Chan, market: Market, is_bid: bool, ticks: int, lots: int) -> str:
        """One P0 level ``PRICE,COUNT,AMOUNT`` or R0 order ``ID,PRICE,AMOUNT``
        (lots 0: a delete)."""
        sign = "" if is_bid else "-"
        if chan.kind == "P0":
            if lots == 0:
                return f"{_js(market.price_text(ticks))},0,{sign}1"
            count = 1 + lots % 7
            return f"{_js(market.price_text(ticks))},{count},{sign}{_js(market.size_text(lots))}"
        oid = (_BID_ID if is_bid else _ASK_ID) + ticks
        if lots == 0:
            return f"{oid},0,{sign}1"
        return f"{oid},{_js(market.price_text(ticks))},{sign}{_js(market.size_text(lots))}"

    def _checksum(self, chan: _Chan) -> int:
        """The venue checksum of the window last sent on ``chan``."""
        market = self.markets[chan.symbol]
        bids = sorted(chan.bids.items(), reverse=True)[:25]
        asks = sorted(chan.asks.items())[:25]
        if chan.kind == "P0":
            bid_text = [(_js(market.price_text(p)), _js(market.size_text(s))) for p, s in bids]
            ask_text = [(_js(market.price_text(p)), _js(market.size_text(s))) for p, s in asks]
        else:
            bid_text = [(str(_BID_ID + p), _js(market.size_text(s))) for p, s in bids]
            ask_text = [(str(_ASK_ID + p), _js(market.size_text(s))) for p, s in asks]
        value = bitfinex_checksum(bid_text, ask_text)
        if self.faults.take("bad_checksum"):
            value ^= 1
        return value

    def _cs(self, conn: MockConnection, chan: _Chan) -> list[str]:
        if not conn.state.get("flags", 0) & OB_CHECKSUM:
            return []
        return [self._frame(conn, f'[{chan.chan_id},"cs",{self._checksum(chan)}')]

    def _candle_row(self, market: Market, candle: MockCandle) -> str:
        """``[MTS,OPEN,CLOSE,HIGH,LOW,VOLUME]`` (close before high, as Bitfinex sends it)."""
        fields = [_js(market.price_text(p)) for p in (candle.open, candle.close, candle.high, candle.low)]
        fields.append(_js(market.size_text(candle.volume)))
        return f"[{candle.start_ms},{','.join(fields)}]"

    def _snapshot(self, conn: MockConnection, chan: _Chan) -> list[str]:
        if chan.kind == "candles":
            market = self.markets[chan.symbol]
            history = [*self.candles.closed.get(chan.symbol, ())]
            forming = self.candles.forming.get(chan.symbol)
            if forming is not None:
                history.append(forming)
            rows = ",".join(self._candle_row(market, c) for c in reversed(history))  # newest first
            return [self._frame(conn, f"[{chan.chan_id},[{rows}]")]
        if chan.kind == "trades":
            rows = ",".join(reversed(self._trades[chan.symbol]))  # newest first
            return [self._frame(conn, f"[{chan.chan_id},[{rows}]")]
        market = self.markets[chan.symbol]
        chan.bids, chan.asks = self._window(chan)
        entries = [self._entry(chan, market, True, p, s) for p, s in chan.bids.items()]
        entries += [self._entry(chan, market, False, p, s) for p, s in chan.asks.items()]
        body = ",".join(f"[{e}]" for e in entries)
        frames = [self._frame(conn, f"[{chan.chan_id},[{body}]"), *self._cs(conn, chan)]
        self._mark_book(conn, chan)
        return frames

    def _trade_row(self, market: Market, change: Change, mts: int) -> str:
        trade = change.trade
        assert trade is not None
        sign = "" if trade.side is Side.BUY else "-"
        return (
            f"[{trade.trade_id},{mts},{sign}{_js(market.size_text(trade.size))},{_js(market.price_text(trade.price))}]"
        )

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        out: list[str | bytes] = []
        market = self.markets[symbol]
        faults = self.faults
        for chan in list(self._chans(conn).values()):
            if chan.symbol != symbol:
                continue
            cid = chan.chan_id
            if chan.kind == "trades":
                if change.trade is not None:
                    row = self._trades[symbol][-1]  # this step's trade (publish made it)
                    out.append(self._frame(conn, f'[{cid},"te",{row}'))
                    out.append(self._frame(conn, f'[{cid},"tu",{row}'))
                continue
            if chan.kind == "candles":
                if change.trade is not None:
                    for candle in self._step_candles.get(symbol, ()):
                        out.append(self._frame(conn, f"[{cid},{self._candle_row(market, candle)}"))
                continue
            bids, asks = self._window(chan)
            # Deletes first, then sets: every intermediate book is a subset of
            # the old or the new one, so it is never crossed (causal order).
            entries: list[str] = []
            sides = ((bids, chan.bids, True), (asks, chan.asks, False))
            for new, old, is_bid in sides:
                entries.extend(self._entry(chan, market, is_bid, p, 0) for p in old if p not in new)
            for new, old, is_bid in sides:
                entries.extend(self._entry(chan, market, is_bid, p, s) for p, s in new.items() if old.get(p) != s)
            chan.bids, chan.asks = bids, asks
            frames = [self._frame(conn, f"[{cid},[{e}]", skip=faults.take("skip_seq")) for e in entries]
            if len(frames) >= 2 and faults.take("reorder"):
                frames[0], frames[1] = frames[1], frames[0]
            if frames and faults.take("duplicate"):
                frames.insert(1, frames[0])
            if chan.kind == "P0" and asks and faults.take("crossed"):
                best_ask = min(asks)
                entry = f"{_js(market.price_text(best_ask))},1,0.5"
                frames.append(self._frame(conn, f"[{cid},[{entry}]"))
            if frames:
                frames.extend(self._cs(conn, chan))
                self._mark_book(conn, chan)
            out.extend(frames)
        return out

    async def publish(self, steps: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance each market ``steps`` times and send the changes (one
        connection's messages of a step are sent under its lock, so sequence
        numbers leave in order)."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                market = self.markets[symbol]
                change = market.step()
                trade = change.trade
                if trade is not None:
                    self._mts = mts = self.stamp_ns(self._mts * 1_000_000) // 1_000_000
                    self._trades[symbol].append(self._trade_row(market, change, mts))
                    finished, forming = self.candles.on_trade(symbol, mts, trade.price, trade.size)
                    self._step_candles[symbol] = [c for c in (finished, forming) if c is not None]
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    async with self._lock(conn):
                        for message in self.render(conn, symbol, change):
                            await self._send(conn, message)
