"""Mock Kraken spot servers: WebSocket v2 (:class:`MockKraken`) and v1 (:class:`MockKrakenV1`).

They speak the protocol of ``shared/exchanges/kraken-spot.md``:

* a status message on connect (v2 ``status`` channel, v1 ``systemStatus``);
* subscribe/unsubscribe with one ack per pair (v2 ``{"method":"subscribe",
  "result":{...},"success":true}``, v1 ``subscriptionStatus``), or an error ack
  when the pair is unknown, the depth is not one Kraken serves, or
  ``faults.reject_subscriptions`` is set;
* ``book``: a snapshot of the subscribed depth on subscribe, then updates that
  keep the client's book equal to the top ``depth`` levels of the market. As on
  Kraken, a level pushed out of range by an insert gets no delete (the client
  truncates), and a level that moves into range because one above it was
  deleted is republished (v1 flags it ``"r"``). Every update (and the v2
  snapshot) carries the CRC32 checksum of the top 10 levels, computed from the
  mock's own text of its book;
* ``trade`` (v2 ``trade``/v1 ``trade``), best bid/offer (v2 ``ticker`` with
  ``event_trigger: bbo``, v1 ``spread``) and heartbeats
  (:meth:`_KrakenMockBase.heartbeat`);
* v1 ``ohlc`` with ``interval`` 1 (channel ``ohlc-1``): after each trade the
  forming one-minute candle ``[time, etime, open, high, low, close, vwap,
  volume, count]`` (v1 never marks a candle final; other intervals are
  refused);
* ``ping`` → ``pong``.

v2 numbers are written as JSON numbers with the pair's full precision
(``"qty":0.12340000``), exactly as Kraken does, so clients must keep the text.

Faults (``mock.faults``): ``bad_checksum`` (corrupt the next update's checksum),
``crossed`` (add a bid at the best ask to the next update), ``skip_seq`` (drop
the next book update that changes the top 10 levels; Kraken has no sequence
numbers, so the next checksum is what reveals it), ``duplicate`` (send the next
update twice: harmless, sizes are absolute), ``reorder`` (hold an update back
and send it after the next one), plus the base's ``garbage``, ``silent`` and
``reject_subscriptions``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs

from wsmux.book.checksum import kraken_checksum
from wsmux.exchanges.kraken import KrakenV1Adapter
from wsmux.model import Side
from wsmux.subscriptions import parse_symbol
from wsmux.testing._candles import MinuteCandles, MockCandle
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockKraken", "MockKrakenV1"]

_DEPTHS = (10, 25, 100, 500, 1000)
_EPOCH_NS = 1_700_000_000_000_000_000


@attrs.define
class _View:
    """What one connection's book subscription shows: the top ``depth`` levels."""

    depth: int
    bids: dict[int, int]
    asks: dict[int, int]


def _top(market: Market, depth: int) -> tuple[dict[int, int], dict[int, int]]:
    bids = {p: market.bids[p] for p in sorted(market.bids, reverse=True)[:depth]}
    asks = {p: market.asks[p] for p in sorted(market.asks)[:depth]}
    return bids, asks


def _diff(old: dict[int, int], new: dict[int, int], market_side: dict[int, int]) -> list[tuple[int, int, bool]]:
    """Levels to send so a client holding ``old`` ends at ``new`` after truncating.

    Returns ``(price, size, republished)``: changed or new levels (republished
    when the level did not change in the market but moved into range), and
    deletes (size 0) for levels that left the market. Levels that merely fell
    out of range are not sent: the client's truncation removes them.
    """
    out: list[tuple[int, int, bool]] = []
    for price, size in new.items():
        if old.get(price) != size:
            out.append((price, size, price not in old and market_side.get(price) == size))
    for price in old:
        if price not in new and price not in market_side:
            out.append((price, 0, False))
    return out


class _KrakenMockBase(MockExchange):
    """Shared machinery of the v1 and v2 mocks."""

    server_time_path: ClassVar[str | None] = "/0/public/Time"

    def server_time_body(self, now_ns: int) -> str:
        """The REST server time (:attr:`~wsmux.testing.MockExchange.clock_skew` applies)."""
        return f'{{"error":[],"result":{{"unixtime":{now_ns // 10**9},"rfc1123":"-"}}}}'

    tick: ClassVar[str] = "0.1"
    lot: ClassVar[str] = "0.00010000"
    v1: ClassVar[bool] = False

    def __init__(self, symbols: Any, **kwargs: Any) -> None:
        super().__init__(symbols, **kwargs)
        self.native = {s: self.to_native(s) for s in self.symbols}
        self.unified = {n: s for s, n in self.native.items()}
        self._now_ns = _EPOCH_NS
        self.candles = MinuteCandles()
        """The one-minute candles built from the mock's trades (v1 ``ohlc``)."""

    # --- helpers ----------------------------------------------------------------

    def to_native(self, symbol: str) -> str:
        base, quote, _ = parse_symbol(symbol)
        return f"{base}/{quote}"

    def _tick_ns(self) -> int:
        """The venue clock: real time (plus the skew), at least 1 ms per message."""
        self._now_ns = self.stamp_ns(self._now_ns)
        return self._now_ns

    def _books(self, conn: MockConnection) -> dict[str, _View]:
        books: dict[str, _View] = conn.state.setdefault("books", {})
        return books

    def _texts(self, market: Market, side: dict[int, int], reverse: bool) -> list[tuple[str, str]]:
        return [(market.price_text(p), market.size_text(side[p])) for p in sorted(side, reverse=reverse)]

    def checksum(self, symbol: str, view: _View) -> int:
        """The Kraken checksum of what ``view`` shows (top 10 levels per side)."""
        market = self.markets[symbol]
        return kraken_checksum(self._texts(market, view.bids, True), self._texts(market, view.asks, False))

    def _stamp_book(self, conn: MockConnection, symbol: str) -> int:
        stamp = self._tick_ns()
        conn.state.setdefault("last_book_ns", {})[symbol] = stamp
        return stamp

    def last_book_ns(self, symbol: str) -> int:
        """The venue timestamp (ns) of the last book update rendered for ``symbol``
        on the first connection: a client that has seen an update with this
        ``ts`` has seen them all (Kraken has no sequence numbers to wait for)."""
        conn = next(iter(self.connections.values()))
        stamps: dict[str, int] = conn.state.get("last_book_ns", {})
        return stamps.get(symbol, 0)

    async def heartbeat(self) -> None:
        """Send the venue's idle heartbeat to every connection (Kraken: ~1/s when idle)."""
        if self.faults.silent:
            return
        await self.broadcast(self._heartbeat_message())

    # --- REST ----------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /0/public/AssetPairs``: the listed pairs, ``wsname`` in the v1
        spelling (``XBT/USD``) as the venue writes it, whatever the protocol."""
        if path != "/0/public/AssetPairs":
            return None
        return self.instruments_answer(self._asset_pairs)

    def _asset_pairs(self) -> dict[str, Any]:
        decimals = len(self.tick.partition(".")[2])
        result = {}
        for symbol in self.symbols:
            wsname = KrakenV1Adapter().to_native(symbol)
            result[wsname.replace("/", "")] = {
                "altname": wsname.replace("/", ""),
                "wsname": wsname,
                "pair_decimals": decimals,
                "lot_decimals": len(self.lot.partition(".")[2]),
                "tick_size": self.tick,
                "status": "online",
            }
        return {"error": [], "result": result}

    # --- subscriptions --------------------------------------------------------------

    async def _subscribe(self, conn: MockConnection, channel: str, symbol: str, depth: int) -> None:
        if channel == "book":
            bids, asks = _top(self.markets[symbol], depth)
            view = _View(depth, bids, asks)
            self._books(conn)[symbol] = view
            await conn.send(self._book_snapshot(conn, symbol, view))
        else:
            conn.topics.add((channel, symbol))
            if channel == "quotes":
                conn.state.setdefault("bbo", {})[symbol] = self._bbo(symbol)
                snap = self._quote_snapshot(conn, symbol)
                if snap is not None:
                    await conn.send(snap)

    def _unsubscribe(self, conn: MockConnection, channel: str, symbol: str) -> None:
        if channel == "book":
            self._books(conn).pop(symbol, None)
        else:
            conn.topics.discard((channel, symbol))

    def _bbo(self, symbol: str) -> tuple[int, int, int, int]:
        m = self.markets[symbol]
        bb, ba = m.best_bid(), m.best_ask()
        return bb, m.bids[bb], ba, m.asks[ba]

    # --- publishing -------------------------------------------------------------------

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        out: list[str | bytes] = []
        view = self._books(conn).get(symbol)
        if view is not None:
            out.extend(self._render_book(conn, symbol, view))
        if change.trade is not None and ("trades", symbol) in conn.topics:
            out.append(self._trade_message(conn, symbol, change))
        trade = change.trade
        if trade is not None:  # the venue's candle counts every trade, watched or not (once)
            t_ms = self._now_ns // 1_000_000
            _, candle = self.candles.on_trade_once(symbol, trade.trade_id, t_ms, trade.price, trade.size)
            if ("candles", symbol) in conn.topics:
                out.append(self._candle_message(conn, symbol, candle))
        if ("quotes", symbol) in conn.topics:
            bbo = self._bbo(symbol)
            last = conn.state.setdefault("bbo", {})
            if last.get(symbol) != bbo:
                last[symbol] = bbo
                out.append(self._quote_message(conn, symbol, bbo))
        return out

    def _render_book(self, conn: MockConnection, symbol: str, view: _View) -> list[str | bytes]:
        market = self.markets[symbol]
        bids, asks = _top(market, view.depth)
        bid_diff = _diff(view.bids, bids, market.bids)
        ask_diff = _diff(view.asks, asks, market.asks)
        top_changed = _top10(view.bids, True) != _top10(bids, True) or _top10(view.asks, False) != _top10(asks, False)
        view.bids, view.asks = bids, asks
        if not bid_diff and not ask_diff:
            return []
        faults = self.faults
        if top_changed and faults.take("skip_seq"):
            return []  # the client misses a change of the top 10: the next checksum tells
        checksum = self.checksum(symbol, view)
        if faults.take("bad_checksum"):
            checksum = (checksum + 1) & 0xFFFFFFFF
        if faults.take("crossed"):
            bid_diff = [*bid_diff, (min(asks), 1, False)]
        message = self._book_update(conn, symbol, view, bid_diff, ask_diff, checksum)
        out: list[str | bytes] = [message]
        if faults.take("duplicate"):
            out.append(message)
        if faults.take("reorder"):
            conn.held.append(message)
            return []
        if conn.held:
            out.extend(conn.held)
            conn.held.clear()
        return out

    # --- venue formats (subclasses) ------------------------------------------------------

    def _heartbeat_message(self) -> str:
        raise NotImplementedError

    def _book_snapshot(self, conn: MockConnection, symbol: str, view: _View) -> str:
        raise NotImplementedError

    def _book_update(
        self,
        conn: MockConnection,
        symbol: str,
        view: _View,
        bids: list[tuple[int, int, bool]],
        asks: list[tuple[int, int, bool]],
        checksum: int,
    ) -> str:
        raise NotImplementedError

    def _trade_message(self, conn: MockConnection, symbol: str, change: Change) -> str:
        raise NotImplementedError

    def _candle_message(self, conn: MockConnection, symbol: str, candle: MockCandle) -> str:
        raise NotImplementedError  # only v1 serves candles (ohlc)

    def _quote_snapshot(self, conn: MockConnection, symbol: str) -> str | None:
        return None

    def _quote_message(self, conn: MockConnection, symbol: str, bbo: tuple[int, int, int, int]) -> str:
        raise NotImplementedError


def _top10(side: dict[int, int], reverse: bool) -> list[tuple[int, int]]:
    return [(p, side[p]) for p in sorted(side, reverse=reverse)[:10]]


def _rfc3339(ns: int) -> str:
    secs, rem = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rem // 1000:06d}Z"


def _epoch_text(ns: int) -> str:
    secs, rem = divmod(ns, 1_000_000_000)
    return f"{secs}.{rem // 1000:06d}"


class MockKraken(_KrakenMockBase):
    """A mock of Kraken spot WebSocket v2 (``/v2``). Pair ``BTC-USD`` is ``BTC/USD``.

    Pair it with :class:`wsmux.exchanges.kraken.KrakenAdapter`::

        async with MockKraken(["BTC-USD"]) as mock:
            async with Multiplexer(endpoints={"kraken": mock.endpoint}) as mux:
                ...
    """

    venue: ClassVar[str] = "kraken"
    ws_path: ClassVar[str] = "/v2"

    async def on_open(self, conn: MockConnection) -> None:
        await conn.send(
            json.dumps(
                {
                    "channel": "status",
                    "type": "update",
                    "data": [
                        {
                            "version": "2.0.10",
                            "system": "online",
                            "api_version": "v2",
                            "connection_id": 1000 + conn.conn_id,
                        }
                    ],
                },
                separators=(",", ":"),
            )
        )

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            method = msg["method"]
        except (ValueError, KeyError, TypeError):
            await conn.send(_compact({"error": "Malformed request", "success": False}))
            return
        req_id = msg.get("req_id")
        stamp = _rfc3339(self._tick_ns())
        base: dict[str, Any] = {"method": method, "time_in": stamp, "time_out": stamp}
        if req_id is not None:
            base["req_id"] = req_id
        if method == "ping":
            await conn.send(_compact({"method": "pong", **{k: v for k, v in base.items() if k != "method"}}))
            return
        if method not in ("subscribe", "unsubscribe"):
            await conn.send(_compact({**base, "success": False, "error": f"Unsupported method {method}"}))
            return
        params = msg.get("params") or {}
        name = str(params.get("channel", ""))
        channel = {"book": "book", "trade": "trades", "ticker": "quotes"}.get(name)
        depth = params.get("depth", 10)
        for native in params.get("symbol") or []:
            symbol = self.unified.get(native)
            error = None
            if self.faults.reject_subscriptions:
                error = "Subscription rejected (mock fault)"
            elif symbol is None:
                error = f"Currency pair not supported {native}"
            elif channel is None:
                error = f"Channel {name} not supported"
            elif channel == "book" and depth not in _DEPTHS:
                error = f"Invalid depth {depth}"
            if error is not None:
                await conn.send(_compact({**base, "success": False, "error": error, "symbol": native}))
                continue
            assert symbol is not None and channel is not None
            result: dict[str, Any] = {"channel": name, "symbol": native}
            if channel == "book":
                result["depth"] = depth
            if method == "subscribe":
                result["snapshot"] = bool(params.get("snapshot", True))
            await conn.send(_compact({**base, "result": result, "success": True}))
            if method == "subscribe":
                await self._subscribe(conn, channel, symbol, depth)
            else:
                self._unsubscribe(conn, channel, symbol)

    def _heartbeat_message(self) -> str:
        return '{"channel":"heartbeat"}'

    def _levels(self, market: Market, levels: list[tuple[int, int]]) -> str:
        # Numbers as JSON numbers with full precision (trailing zeros kept), as Kraken v2 does.
        return ",".join(
            f'{{"price":{market.price_text(p)},"qty":{market.size_text(s) if s else "0"}}}' for p, s in levels
        )

    def _book_snapshot(self, conn: MockConnection, symbol: str, view: _View) -> str:
        market = self.markets[symbol]
        bids = self._levels(market, sorted(view.bids.items(), reverse=True))
        asks = self._levels(market, sorted(view.asks.items()))
        return (
            f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"{self.native[symbol]}",'
            f'"bids":[{bids}],"asks":[{asks}],"checksum":{self.checksum(symbol, view)}}}]}}'
        )

    def _book_update(
        self,
        conn: MockConnection,
        symbol: str,
        view: _View,
        bids: list[tuple[int, int, bool]],
        asks: list[tuple[int, int, bool]],
        checksum: int,
    ) -> str:
        market = self.markets[symbol]
        stamp = self._stamp_book(conn, symbol)
        btext = self._levels(market, [(p, s) for p, s, _ in bids])
        atext = self._levels(market, [(p, s) for p, s, _ in asks])
        return (
            f'{{"channel":"book","type":"update","data":[{{"symbol":"{self.native[symbol]}",'
            f'"bids":[{btext}],"asks":[{atext}],"checksum":{checksum},'
            f'"timestamp":"{_rfc3339(stamp)}"}}]}}'
        )

    def _trade_message(self, conn: MockConnection, symbol: str, change: Change) -> str:
        trade = change.trade
        assert trade is not None
        market = self.markets[symbol]
        side = "buy" if trade.side is Side.BUY else "sell"
        return (
            f'{{"channel":"trade","type":"update","data":[{{"symbol":"{self.native[symbol]}",'
            f'"side":"{side}","price":{market.price_text(trade.price)},"qty":{market.size_text(trade.size)},'
            f'"ord_type":"market","trade_id":{trade.trade_id},"timestamp":"{_rfc3339(self._tick_ns())}"}}]}}'
        )

    def _ticker_message(self, symbol: str, bbo: tuple[int, int, int, int], kind: str) -> str:
        market = self.markets[symbol]
        bp, bs, ap, asz = bbo
        return (
            f'{{"channel":"ticker","type":"{kind}","data":[{{"symbol":"{self.native[symbol]}",'
            f'"bid":{market.price_text(bp)},"bid_qty":{market.size_text(bs)},'
            f'"ask":{market.price_text(ap)},"ask_qty":{market.size_text(asz)},'
            f'"last":{market.price_text(bp)},"volume":1.0,"vwap":{market.price_text(bp)},'
            f'"low":{market.price_text(bp)},"high":{market.price_text(ap)},"change":0.0,"change_pct":0.0,'
            f'"timestamp":"{_rfc3339(self._tick_ns())}"}}]}}'
        )

    def _quote_snapshot(self, conn: MockConnection, symbol: str) -> str | None:
        return self._ticker_message(symbol, self._bbo(symbol), "snapshot")

    def _quote_message(self, conn: MockConnection, symbol: str, bbo: tuple[int, int, int, int]) -> str:
        return self._ticker_message(symbol, bbo, "update")


class MockKrakenV1(_KrakenMockBase):
    """A mock of Kraken spot WebSocket v1 (``/``). Pair ``BTC-USD`` is ``XBT/USD``.

    Pair it with :class:`wsmux.exchanges.kraken.KrakenV1Adapter` (venue
    ``"kraken-v1"``). Data frames are arrays ``[channelID, payload..., name, pair]``
    with one channel id per (connection, subscription).
    """

    venue: ClassVar[str] = "kraken-v1"
    v1: ClassVar[bool] = True
    _V1: ClassVar[dict[str, str]] = {"BTC": "XBT", "DOGE": "XDG"}
    _NAMES: ClassVar[dict[str, str]] = {"book": "book", "trade": "trades", "spread": "quotes", "ohlc": "candles"}

    def to_native(self, symbol: str) -> str:
        base, quote, _ = parse_symbol(symbol)
        return f"{self._V1.get(base, base)}/{self._V1.get(quote, quote)}"

    def _channel_id(self, conn: MockConnection, name: str, symbol: str) -> int:
        ids: dict[tuple[str, str], int] = conn.state.setdefault("ids", {})
        key = (name, symbol)
        if key not in ids:
            ids[key] = 100 + len(ids) * 4  # Kraken-style spacing of channel ids
        return ids[key]

    async def on_open(self, conn: MockConnection) -> None:
        await conn.send(
            _compact(
                {
                    "connectionID": 18239578009413566000 + conn.conn_id,
                    "event": "systemStatus",
                    "status": "online",
                    "version": "1.9.0",
                }
            )
        )

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            event = msg["event"]
        except (ValueError, KeyError, TypeError):
            await conn.send(_compact({"event": "error", "errorMessage": "Malformed request"}))
            return
        if event == "ping":
            pong: dict[str, Any] = {"event": "pong"}
            if "reqid" in msg:
                pong["reqid"] = msg["reqid"]
            await conn.send(_compact(pong))
            return
        if event not in ("subscribe", "unsubscribe"):
            await conn.send(_compact({"event": "error", "errorMessage": f"Unsupported event {event}"}))
            return
        sub = msg.get("subscription") or {}
        name = str(sub.get("name", ""))
        channel = self._NAMES.get(name)
        depth = sub.get("depth", 10)
        for native in msg.get("pair") or []:
            symbol = self.unified.get(native)
            error = None
            if self.faults.reject_subscriptions:
                error = "Subscription rejected (mock fault)"
            elif symbol is None:
                error = f"Currency pair not supported {native}"
            elif channel is None:
                error = f"Subscription name invalid {name}"
            elif channel == "book" and depth not in _DEPTHS:
                error = f"Subscription depth not supported {depth}"
            elif channel == "candles" and sub.get("interval", 1) != 1:
                error = f"Subscription ohlc interval not served by the mock {sub.get('interval')}"
            if error is not None:
                await conn.send(
                    _compact(
                        {
                            "errorMessage": error,
                            "event": "subscriptionStatus",
                            "pair": native,
                            "status": "error",
                            "subscription": sub,
                        }
                    )
                )
                continue
            assert symbol is not None and channel is not None
            channel_name = f"book-{depth}" if channel == "book" else "ohlc-1" if channel == "candles" else name
            ack_sub: dict[str, Any] = {"depth": depth, "name": "book"} if channel == "book" else {"name": name}
            if channel == "candles":
                ack_sub["interval"] = 1
            status = "subscribed" if event == "subscribe" else "unsubscribed"
            await conn.send(
                _compact(
                    {
                        "channelID": self._channel_id(conn, channel_name, symbol),
                        "channelName": channel_name,
                        "event": "subscriptionStatus",
                        "pair": native,
                        "status": status,
                        "subscription": ack_sub,
                    }
                )
            )
            if event == "subscribe":
                await self._subscribe(conn, channel, symbol, depth)
            else:
                self._unsubscribe(conn, channel, symbol)

    def _heartbeat_message(self) -> str:
        return '{"event":"heartbeat"}'

    def _entries(
        self, market: Market, levels: list[tuple[int, int, bool]], stamp: str, zero: str = "0.00000000"
    ) -> list[list[str]]:
        out = []
        for p, s, republished in levels:
            entry = [market.price_text(p), market.size_text(s) if s else zero, stamp]
            if republished:
                entry.append("r")
            out.append(entry)
        return out

    def _book_snapshot(self, conn: MockConnection, symbol: str, view: _View) -> str:
        market = self.markets[symbol]
        stamp = _epoch_text(self._tick_ns())
        name = f"book-{view.depth}"
        payload = {
            "as": self._entries(market, [(p, view.asks[p], False) for p in sorted(view.asks)], stamp),
            "bs": self._entries(market, [(p, view.bids[p], False) for p in sorted(view.bids, reverse=True)], stamp),
        }
        return _compact([self._channel_id(conn, name, symbol), payload, name, self.native[symbol]])

    def _book_update(
        self,
        conn: MockConnection,
        symbol: str,
        view: _View,
        bids: list[tuple[int, int, bool]],
        asks: list[tuple[int, int, bool]],
        checksum: int,
    ) -> str:
        market = self.markets[symbol]
        stamp = _epoch_text(self._stamp_book(conn, symbol))
        name = f"book-{view.depth}"
        dicts: list[dict[str, Any]] = []
        if asks:
            dicts.append({"a": self._entries(market, asks, stamp)})
        if bids:
            dicts.append({"b": self._entries(market, bids, stamp)})
        dicts[-1]["c"] = str(checksum)  # the checksum sits in the last dict
        return _compact([self._channel_id(conn, name, symbol), *dicts, name, self.native[symbol]])

    def _trade_message(self, conn: MockConnection, symbol: str, change: Change) -> str:
        trade = change.trade
        assert trade is not None
        market = self.markets[symbol]
        side = "b" if trade.side is Side.BUY else "s"
        entry = [
            market.price_text(trade.price),
            market.size_text(trade.size),
            _epoch_text(self._tick_ns()),
            side,
            "m",
            "",
        ]
        return _compact([self._channel_id(conn, "trade", symbol), [entry], "trade", self.native[symbol]])

    def _candle_message(self, conn: MockConnection, symbol: str, candle: MockCandle) -> str:
        market = self.markets[symbol]
        payload = [
            _epoch_text(candle.last_ms * 1_000_000),
            _epoch_text((candle.start_ms + 60_000) * 1_000_000),
            market.price_text(candle.open),
            market.price_text(candle.high),
            market.price_text(candle.low),
            market.price_text(candle.close),
            market.price_text(candle.close),  # vwap: the mock does not track it
            market.size_text(candle.volume),
            candle.trades,
        ]
        return _compact([self._channel_id(conn, "ohlc-1", symbol), payload, "ohlc-1", self.native[symbol]])

    def _quote_message(self, conn: MockConnection, symbol: str, bbo: tuple[int, int, int, int]) -> str:
        market = self.markets[symbol]
        bp, bs, ap, asz = bbo
        payload = [
            market.price_text(bp),
            market.price_text(ap),
            _epoch_text(self._tick_ns()),
            market.size_text(bs),
            market.size_text(asz),
        ]
        return _compact([self._channel_id(conn, "spread", symbol), payload, "spread", self.native[symbol]])


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))
