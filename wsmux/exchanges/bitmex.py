"""BitMEX realtime public market data: :class:`BitmexAdapter` (venue id ``"bitmex"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/bitmex.md``
(bitmex.com/app/wsAPI, the BitMEX blog on connection rate limits, cryptofeed
and its 2021 capture ``BITMEX.ws.1.0``). Each rule is restated where it is
enforced:

* **Endpoint.** ``wss://ws.bitmex.com/realtime`` (``wss://www.bitmex.com/realtime``
  is served too); REST ``https://www.bitmex.com/api/v1``.
* **Commands.** ``{"op":"subscribe","args":["orderBookL2:XBTUSD",...]}``,
  answered per topic with ``{"success":true,"subscribe":topic}`` or
  ``{"status":400,"error":..}`` (:class:`~wsmux.errors.SubscriptionRejected`).
  A ``{"info":"Welcome..."}`` greets every connection.
* **Symbols.** BitMEX writes bitcoin ``XBT``. Perpetuals are ``BASEQUOTE``
  (``XBTUSD`` is ``BTC-USD-PERP``, ``SOLUSDT`` is ``SOL-USDT-PERP``), dated
  futures ``BASE`` + month code + year when quoted in XBT and for XBT/USD
  (``XRPU21`` is ``XRP-BTC-20210924``, ``XBTU21`` is ``BTC-USD-20210924``),
  ``BASEQUOTE`` + code otherwise (``ETHUSDU21``, ``XBTEURU21``; the 2021
  instruments list); spot ``XBT_USDT`` (unconfirmed). A dated
  future's name does not say its expiry day: frames name it, and wsmux learns
  the unified symbol from the subscription (or from the instruments list).
* **Book (``orderBookL2``, full depth).** ``partial`` (the snapshot, per
  symbol) then ``insert`` / ``update`` / ``delete`` rows keyed by (``symbol``,
  ``id``, ``side``); ``id`` stands for one price level. ``partial`` and
  ``insert`` carry ``price`` and ``size``; ``update`` carries the new ``size``
  and ``delete`` nothing more — their price comes from an **id → price map
  the adapter keeps per connection** (cleared by :meth:`BitmexAdapter.reset`
  and when a book is resubscribed). The current API is said to add ``price``
  to updates and deletes (unconfirmed): when present it is used. Rows of a
  symbol are ignored until its ``partial``. There are **no sequence numbers
  and no checksum**: a lost message is undetectable in general, so the book's
  integrity is UNVERIFIABLE; what the map does detect — an update or delete of
  an id it never saw, an insert of an id it already holds, both proof of a
  lost message — is a :class:`~wsmux.Gap` and the book is resubscribed for a
  new ``partial``. Sides: ``Buy`` bid, ``Sell`` ask.
* **Units.** Sizes are contracts. Inverse contracts (``isInverse``: XBT
  against USD) are 1 USD each: wsmux reports ``size / price`` (base units).
  ``XBTEUR`` (inverse, 1 EUR each; not in the sheet, seen in the 2021
  instruments list) converts the same way once the instruments list says it
  is inverse; without the list only XBT against USD is known to be inverse.
  Linear contracts whose instruments entry gives
  ``underlyingToPositionMultiplier`` are converted with it once the
  instruments list is known (:meth:`BitmexAdapter.use_instruments`); quanto
  contracts (``isQuanto``: ``ETHUSD``, ``UNIUSDT``) have no base-unit
  equivalent and stay in contracts.
* **Other tables.** ``trade`` (``side`` is the taker's, ``trdMatchID`` the id;
  the first ``partial`` is recent history and is skipped), ``quote`` (BBO;
  its ``partial`` is the current quote), ``funding`` (each settled funding:
  ``fundingRate``), ``instrument`` (``openInterest``, in contracts, sent only
  when it changes; converted like other sizes, an inverse contract's at the
  last ``markPrice`` the table sent), ``liquidation`` (``insert`` rows are new liquidation
  orders; their later updates and deletes are ignored), ``tradeBin1m``
  (candles; the ``timestamp`` is the bin's *end*).
* **Keep-alive.** Text ``ping`` → text ``pong``; wsmux pings every 5 s of the
  sheet's advice and replaces a connection silent for 15 s.
* **Limits.** Data is not rate-limited once connected; opening connections
  is (a token bucket, burst 20 per hour per IP). No compression.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import SNAPSHOT_STEP_LEVELS, Continuity, Diff, RawSnapshot, SnapshotSource, SyncRule
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.model import (
    Candle,
    Channel,
    Event,
    Funding,
    Gap,
    GapReason,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BitmexAdapter", "bitmex_symbol", "bitmex_unified", "iso_ns"]

MONTH_CODES = "FGHJKMNQUVXZ"
"""Futures month codes, January first."""

_NAN = float("nan")
_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError, OverflowError)
PARTIAL_STEP_ROWS = SNAPSHOT_STEP_LEVELS
"""Rows of a deferred ``orderBookL2`` partial read per step (2,000, about 0.7 ms
on a 2-core machine; see :attr:`wsmux.Adapter.defer_snapshot_rows`)."""
_QUOTES = ("USDT", "USDC", "USD", "EUR", "XBT")
_ASSET = re.compile(r"^[A-Z0-9]{1,20}$")
_TABLES = {
    Channel.BOOK: "orderBookL2",
    Channel.TRADES: "trade",
    Channel.QUOTES: "quote",
    Channel.FUNDING: "funding",
    Channel.OPEN_INTEREST: "instrument",
    Channel.LIQUIDATIONS: "liquidation",
    Channel.CANDLES: "tradeBin1m",
}
_DERIVATIVE_ONLY = frozenset({Channel.FUNDING, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS})
_QUIET = frozenset({"info", "success"})
_MINUTE_NS = 60_000_000_000

_Handler = Callable[[str, Any, Any, int], Sequence[Event | Diff | RawSnapshot]]


def _native_asset(asset: str) -> str:
    return "XBT" if asset == "BTC" else asset


def _unified_asset(asset: str) -> str:
    return "BTC" if asset == "XBT" else asset


def bitmex_symbol(symbol: str, channel: Channel = Channel.TRADES) -> str:
    """BitMEX's symbol of a unified one (see the module docstring).

    Raises:
        UnknownSymbol: malformed symbol, or a channel the instrument kind lacks.
    """
    base, quote, kind = parse_symbol(symbol)
    b, q = _native_asset(base), _native_asset(quote)
    if kind is None:
        if channel in _DERIVATIVE_ONLY:
            raise UnknownSymbol(f"bitmex has no {channel.value} for spot {symbol!r}")
        return f"{b}_{q}"
    if kind == "PERP":
        return f"{b}{q}"
    if channel is Channel.FUNDING:
        raise UnknownSymbol(f"bitmex has funding only for perpetuals, not {symbol!r}")
    month = int(kind[4:6])
    if not 1 <= month <= 12:
        raise UnknownSymbol(f"bad expiry month in {symbol!r}")
    prefix = b if q == "XBT" or (b == "XBT" and q == "USD") else f"{b}{q}"
    return f"{prefix}{MONTH_CODES[month - 1]}{kind[2:4]}"


def bitmex_unified(native: str) -> str | None:
    """The unified symbol of a BitMEX spot pair or perpetual, or ``None``
    (dated futures need their expiry day from the instruments list)."""
    base, sep, quote = native.partition("_")
    if sep:
        if _ASSET.match(base) and _ASSET.match(quote):
            return f"{_unified_asset(base)}-{_unified_asset(quote)}"
        return None
    for q in _QUOTES:
        if native.endswith(q) and len(native) > len(q) and _ASSET.match(native[: -len(q)]):
            return f"{_unified_asset(native[: -len(q)])}-{_unified_asset(q)}-PERP"
    return None


def iso_ns(text: Any) -> int:
    """``2021-07-22T22:36:10.014Z`` → ns since the epoch."""
    if text.__class__ is not str or not text.endswith("Z") or not text.isascii():
        raise ValueError(f"timestamp {text!r}")
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _number(value: Any) -> float:
    if value.__class__ is float or value.__class__ is int:
        return float(value)
    raise TypeError(f"{value!r} is not a number")


class _Units:
    """How a symbol's contract counts become base units."""

    __slots__ = ("factor", "inverse")

    def __init__(self, inverse: bool, factor: float = 1.0) -> None:
        self.inverse = inverse
        self.factor = factor

    def size(self, size: float, price: float) -> float:
        return size / price if self.inverse else size * self.factor


class BitmexAdapter(Adapter):
    """BitMEX realtime WebSocket, venue id ``"bitmex"``. See the module
    docstring for the venue rules (sheet: ``shared/exchanges/bitmex.md``).

    Channels → events: ``orderBookL2`` → book (integrity UNVERIFIABLE),
    ``trade`` → :class:`~wsmux.Trade`, ``quote`` → :class:`~wsmux.Quote`,
    ``funding`` → :class:`~wsmux.Funding`, ``instrument`` →
    :class:`~wsmux.OpenInterest`, ``liquidation`` → :class:`~wsmux.Liquidation`,
    ``tradeBin1m`` → :class:`~wsmux.Candle` (closed bins).
    """

    venue: ClassVar[str] = "bitmex"
    channels: ClassVar[frozenset[Channel]] = frozenset(_TABLES)
    default_url: ClassVar[str] = "wss://ws.bitmex.com/realtime"
    default_rest_url: ClassVar[str] = "https://www.bitmex.com"
    backup_urls: ClassVar[tuple[str, ...]] = ("wss://www.bitmex.com/realtime",)
    # bitmex.md, "Keep-alive / limits": data not rate-limited once connected;
    # connection opens: token bucket, burst 20 per hour per IP. Topics per
    # connection/message are not documented (wsmux's choice).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=50,
        messages_per_second=5.0,
        connections_per_window=20,
        connection_window=3600.0,
        rest_weight_per_minute=60,
    )
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message="ping", ping_interval=5.0, ws_ping_interval=None, silence_timeout=15.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # native -> unified
        self._units: dict[str, _Units] = {}  # native -> size conversion
        self._marks: dict[str, float] = {}  # native -> last instrument markPrice (inverse open interest)
        # per connection: native symbol -> {level key: price}; absent = no partial
        # yet. The key is the level id for bids and ~id for asks (rows are keyed
        # by symbol, id and side).
        self._ids: dict[str, dict[int, float]] = {}
        self._handlers: dict[str, _Handler] = {
            "orderBookL2": self._book,
            "trade": self._trades,
            "quote": self._quotes,
            "funding": self._funding,
            "instrument": self._instrument,
            "liquidation": self._liquidation,
            "tradeBin1m": self._candles,
        }

    def reset(self) -> None:
        self._ids.clear()

    # --- symbols ----------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`bitmex_symbol`."""
        return bitmex_symbol(symbol, channel)

    def _learn(self, native: str, unified: str) -> None:
        self._symbols[native] = unified
        if native not in self._units:
            base, quote, _ = parse_symbol(unified)
            self._units[native] = _Units(base == "BTC" and quote == "USD")

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            symbol = bitmex_unified(native) if native.__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"bitmex: unknown symbol {native!r}")
            self._learn(native, symbol)
        return symbol

    # --- reference data -----------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``GET /api/v1/instrument/active``."""
        return HttpRequest(f"{self.rest_url}/api/v1/instrument/active")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Perpetuals (``typ`` FFWCSX), dated futures (FFCCSX) and spot pairs
        (IFXXXP); other types are left out. ``contract_size`` is the base
        units per contract of linear contracts
        (``1 / underlyingToPositionMultiplier``); for inverse contracts
        (``isInverse``) their face value, 1 USD, with ``inverse=True``
        (converted by price); ``None`` for quanto ones (not convertible)."""
        try:
            rows = loads(body)
            out: list[Instrument] = []
            for row in rows:
                typ = row["typ"]
                base = _unified_asset(row["underlying"])
                quote = _unified_asset(row["quoteCurrency"])
                if typ == "FFWCSX":
                    symbol, kind = f"{base}-{quote}-PERP", "perp"
                elif typ == "FFCCSX":
                    symbol, kind = f"{base}-{quote}-{row['expiry'][:10].replace('-', '')}", "future"
                elif typ == "IFXXXP":
                    symbol, kind = f"{base}-{quote}", "spot"
                else:
                    continue
                try:
                    parse_symbol(symbol)
                except UnknownSymbol:
                    continue
                per_position = row.get("underlyingToPositionMultiplier")
                inverse = kind != "spot" and row.get("isInverse") is True
                linear = kind != "spot" and not inverse and not row.get("isQuanto") and per_position
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        row["symbol"],
                        kind,
                        _number(row["tickSize"]),
                        _number(row["lotSize"]),
                        1.0 if inverse else 1.0 / _number(per_position) if linear else None,
                        inverse,
                    )
                )
            return out
        except JSONDecodeError as exc:
            raise MalformedMessage("bitmex: instruments body is not JSON", body) from exc
        except _ERRORS as exc:
            raise MalformedMessage(f"bitmex: bad instruments body: {exc!r}", body) from exc

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn dated futures' unified symbols, the contract sizes of
        linear contracts and which contracts are inverse (``XBTEUR`` too, 1 EUR
        each): their sizes are then reported in base units."""
        for inst in instruments:
            self._symbols[inst.native] = inst.symbol
            base, quote, _ = parse_symbol(inst.symbol)
            inverse = inst.inverse or (base == "BTC" and quote == "USD" and inst.kind != "spot")
            self._units[inst.native] = _Units(inverse, inst.contract_size or 1.0)

    # --- books ------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """BitMEX's ``orderBookL2`` rule (bitmex.md, "Book sync"): stream
        snapshot (``partial``), no sequence numbers, no checksum — integrity
        UNVERIFIABLE (the adapter still reports the losses its id map proves)."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.NONE)

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._op("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._op("unsubscribe", subscriptions)

    def _op(self, op: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        args: list[str] = []
        for sub in subscriptions:
            self.check(sub)
            native = bitmex_symbol(sub.symbol, sub.channel)
            self._learn(native, sub.symbol)
            if sub.channel is Channel.BOOK:
                self._ids.pop(native, None)  # rows are ignored until the next partial
            args.append(f"{_TABLES[sub.channel]}:{native}")
        per = self.limits.topics_per_message
        return [dumps({"op": op, "args": args[i : i + per]}) for i in range(0, len(args), per)]

    # --- parsing ----------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff | RawSnapshot]:
        if frame in ("pong", b"pong"):
            return []
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        table: Any = None
        try:
            table = msg.get("table")
            if table is None:
                return self._control(msg, frame)
            handler = self._handlers.get(table) if table.__class__ is str else None
            if handler is None:
                raise unknown_message("table", table, frame)
            data = msg["data"]
            if data.__class__ is not list:
                raise TypeError("data must be a list")
            return handler(msg["action"], msg, data, recv_ns)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"bitmex: bad {table or 'message'}: {exc!r}", frame) from exc

    def _control(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        if "error" in msg:
            raise SubscriptionRejected(f"bitmex error {msg.get('status', '?')}: {msg['error']} ({msg.get('request')})")
        if not _QUIET.isdisjoint(msg):
            return []
        raise MalformedMessage("unknown message type", frame)

    def _book(self, action: str, msg: Any, data: Any, recv_ns: int) -> list[Event | Diff | RawSnapshot]:
        if action == "partial":
            return self._partial(msg, data, recv_ns)
        by_symbol: dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {}
        broken: dict[str, str] = {}
        ids = self._ids
        for row in data:
            native = row["symbol"]
            levels = ids.get(native)
            if levels is None or native in broken:
                if native.__class__ is not str:
                    raise TypeError(f"symbol {native!r}")
                continue  # no partial yet (or resubscribing): ignored
            level_id = row["id"]
            side = row["side"]
            if level_id.__class__ is not int:
                raise TypeError(f"id {level_id!r}")
            key = _key(level_id, side)
            price: Any = row.get("price")
            known = levels.get(key)
            if action == "insert":
                if known is not None:
                    broken[native] = f"insert of level id {level_id} the book already holds (a lost delete)"
                    continue
                price = _number(price)
                levels[key] = price
                size = _number(row["size"])
            elif action == "update":
                if known is None:
                    broken[native] = f"update of unknown level id {level_id} (a lost insert)"
                    continue
                price = known if price is None else _number(price)
                size = _number(row["size"])
            elif action == "delete":
                if known is None:
                    broken[native] = f"delete of unknown level id {level_id} (a lost insert)"
                    continue
                price = known if price is None else _number(price)
                del levels[key]
                size = 0.0
            else:
                raise unknown_message("orderBookL2 action", action)
            if size and price > 0:
                size = self._units[native].size(size, price)
            sides = by_symbol.get(native)
            if sides is None:
                sides = by_symbol[native] = ([], [])
            sides[key < 0].append((price, size))
        out: list[Event | Diff | RawSnapshot] = [
            Diff(self._unified(native), bids, asks, None)
            for native, (bids, asks) in by_symbol.items()
            if native not in broken
        ]
        for native, detail in broken.items():
            del ids[native]  # until the next partial
            out.append(
                Gap(self.venue, self._unified(native), Channel.BOOK, GapReason.SEQUENCE, None, None, recv_ns, detail)
            )
        return out

    def _partial(self, msg: Any, data: Any, recv_ns: int) -> list[Event | Diff | RawSnapshot]:
        # A full-depth partial is thousands of rows: one pass with the checks
        # inlined, building the id map (needed by the very next frame) and the
        # levels in base units; the book's build sorts and checks them in steps.
        # With defer_snapshot_rows (a live Feed), a partial of more than one
        # step's rows is read in steps instead (RawSnapshot.prepare) while the
        # Feed holds the frames that follow it.
        native = msg["filter"]["symbol"]
        symbol = self._unified(native)
        levels: dict[int, float] = {}
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        if self.reads_rows_later(data):
            prepare = self._partial_steps(native, data, levels, bids, asks)
            return [RawSnapshot(symbol, bids, asks, None, prepare=prepare)]
        self._partial_rows(native, data, levels, bids, asks)
        self._ids[native] = levels
        return [RawSnapshot(symbol, bids, asks, None)]

    def _partial_steps(
        self,
        native: str,
        data: list[Any],
        levels: dict[int, float],
        bids: list[tuple[float, float]],
        asks: list[tuple[float, float]],
    ) -> Generator[None, None, None]:
        """:meth:`_partial`'s rows, :data:`PARTIAL_STEP_ROWS` per step; the id
        map replaces the old one at the end. A bad row raises as :meth:`parse` does."""
        for start in range(0, len(data), PARTIAL_STEP_ROWS):
            try:
                self._partial_rows(native, data[start : start + PARTIAL_STEP_ROWS], levels, bids, asks)
            except _ERRORS as exc:
                raise MalformedMessage(f"bitmex: bad orderBookL2: {exc!r}") from exc
            yield
        self._ids[native] = levels

    def _partial_rows(
        self,
        native: str,
        rows: list[Any],
        levels: dict[int, float],
        bids: list[tuple[float, float]],
        asks: list[tuple[float, float]],
    ) -> None:
        units = self._units[native]
        inverse = units.inverse
        factor = units.factor
        for row in rows:
            if row["symbol"] != native:
                raise ValueError(f"partial of {native} carries {row['symbol']!r}")
            level_id = row["id"]
            price = row["price"]
            size = row["size"]
            if level_id.__class__ is not int:
                raise TypeError(f"id {level_id!r}")
            if (price.__class__ is not float and price.__class__ is not int) or (
                size.__class__ is not float and size.__class__ is not int
            ):
                raise TypeError(f"price {price!r} or size {size!r} is not a number")
            price = float(price)
            if price > 0:  # else left for the book to refuse
                size = size / price if inverse else size * factor
            side = row["side"]
            if side == "Buy":
                levels[level_id] = price
                bids.append((price, size))
            elif side == "Sell":
                levels[~level_id] = price
                asks.append((price, size))
            else:
                raise ValueError(f"side {side!r}")

    def _trades(self, action: str, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        if action == "partial":
            return []  # recent history, not live trades
        if action != "insert":
            raise unknown_message("trade action", action)
        out: list[Event] = []
        for row in data:
            native = row["symbol"]
            symbol = self._unified(native)
            price = _number(row["price"])
            trade_id = row["trdMatchID"]
            if trade_id.__class__ is not str:
                raise TypeError(f"trdMatchID {trade_id!r}")
            size = self._units[native].size(_number(row["size"]), price)
            out.append(
                Trade(self.venue, symbol, price, size, _SIDES[row["side"]], trade_id, iso_ns(row["timestamp"]), recv_ns)
            )
        return out

    def _quotes(self, action: str, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        if action not in ("partial", "insert"):
            raise unknown_message("quote action", action)
        out: list[Event] = []
        for row in data:
            native = row["symbol"]
            symbol = self._unified(native)
            units = self._units[native]
            bp, bs = _top(row.get("bidPrice"), row.get("bidSize"), units)
            ap, az = _top(row.get("askPrice"), row.get("askSize"), units)
            out.append(Quote(self.venue, symbol, bp, bs, ap, az, iso_ns(row["timestamp"]), recv_ns))
        return out

    def _funding(self, action: str, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        if action not in ("partial", "insert"):
            raise unknown_message("funding action", action)
        return [
            Funding(
                self.venue,
                self._unified(row["symbol"]),
                _number(row["fundingRate"]),
                None,
                None,
                iso_ns(row["timestamp"]),
                recv_ns,
            )
            for row in data
        ]

    def _instrument(self, action: str, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        if action not in ("partial", "update", "insert"):
            raise unknown_message("instrument action", action)
        out: list[Event] = []
        for row in data:
            native = row["symbol"]
            mark = row.get("markPrice")
            if mark is not None:
                self._marks[native] = _number(mark)
            oi = row.get("openInterest")
            if oi is None:
                continue  # an update of other fields
            symbol = self._unified(native)
            # contracts -> base units; inverse at the last mark price (none yet:
            # nan, which the quality gate drops and counts)
            price = self._marks.get(native, _NAN)
            size = self._units[native].size(_number(oi), price if price > 0 else _NAN)
            ts = row.get("timestamp")
            out.append(OpenInterest(self.venue, symbol, size, None if ts is None else iso_ns(ts), recv_ns))
        return out

    def _liquidation(self, action: str, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        if action in ("update", "delete", "partial"):
            return []  # the order's later life; a partial lists open ones already reported
        if action != "insert":
            raise unknown_message("liquidation action", action)
        out: list[Event] = []
        for row in data:
            native = row["symbol"]
            symbol = self._unified(native)
            price = _number(row["price"])
            size = self._units[native].size(_number(row["leavesQty"]), price)
            out.append(Liquidation(self.venue, symbol, _SIDES[row["side"]], price, size, None, recv_ns))
        return out

    def _candles(self, action: str, msg: Any, data: Any, recv_ns: int) -> list[Event]:
        if action == "partial":
            return []  # history
        if action != "insert":
            raise unknown_message("tradeBin1m action", action)
        out: list[Event] = []
        for row in data:
            native = row["symbol"]
            symbol = self._unified(native)
            end = iso_ns(row["timestamp"])
            close = _number(row["close"])
            volume = self._units[native].size(_number(row["volume"]), close) if close > 0 else 0.0
            out.append(
                Candle(
                    self.venue,
                    symbol,
                    "1m",
                    end - _MINUTE_NS,
                    _number(row["open"]),
                    _number(row["high"]),
                    _number(row["low"]),
                    close,
                    volume,
                    True,
                    end,
                    recv_ns,
                )
            )
        return out


def _key(level_id: int, side: Any) -> int:
    """The id map's key of a level: ``id`` for a bid, ``~id`` for an ask."""
    if side == "Buy":
        return level_id
    if side == "Sell":
        return ~level_id
    raise ValueError(f"side {side!r}")


def _top(price: Any, size: Any, units: _Units) -> tuple[float, float]:
    if price is None or size is None:
        return _NAN, _NAN
    p = _number(price)
    s = _number(size)
    if not s or p <= 0:
        return _NAN, _NAN
    return p, units.size(s, p)
