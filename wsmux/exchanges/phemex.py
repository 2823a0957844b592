"""Phemex public market data: :class:`PhemexAdapter` (venue id ``"phemex"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/phemex.md``
(the official phemex-api-docs, cryptofeed and its 2021 captures). Each rule
is restated where it is enforced:

* **Endpoint.** ``wss://phemex.com/ws`` (``wss://vapi.phemex.com/ws`` is the
  high-rate-limit host); REST ``https://api.phemex.com``.
* **Symbols.** Spot ``sBTCUSDT`` is ``BTC-USDT``; the inverse contract
  ``BTCUSD`` is ``BTC-USD-PERP``; the USDT-margined perpetual ``BTCUSDT`` is
  ``BTC-USDT-PERP``. Phemex lists no dated futures.
* **Requests.** ``{"id":N,"method":"orderbook.subscribe","params":[sym]}``
  (USDT perpetuals: ``orderbook_p``, ``trade_p``); one symbol per request.
  The answer ``{"error":null,"id":N,"result":{"status":"success"}}``; a
  non-null ``error`` is a :class:`~wsmux.errors.SubscriptionRejected`.
  Unsubscribing names the symbol (the sheet documents ``[]`` for "all";
  per-symbol unsubscribe is wsmux's reading).
* **Scaled numbers.** Spot and inverse-contract channels send scaled
  integers: spot prices and quantities are ``Ep``/``Ev`` values scaled by
  10^8; inverse contracts' prices by 10^``priceScale`` (4 unless the products
  list says otherwise: :attr:`Instrument.price_scale`, learnt by
  :meth:`PhemexAdapter.use_instruments`) and their
  quantities are contracts of 1 USD. USDT perpetuals send real-valued decimal
  strings (``priceRp``, ``sizeRq``), passed to the book as they are.
* **Units.** Spot and USDT-perpetual sizes are base units; inverse contract
  counts are converted to base units as ``contracts / price``.
* **Book.** 30 levels per side (the documented channel; the book is trimmed
  to 30), a ``snapshot`` on subscribe and **every 60 s** (each one replaces
  the book), ``incremental`` messages in between with absolute sizes (``0``
  deletes; a delete of an unknown level is harmless). ``sequence`` is an
  engine-wide counter, not +1 per symbol: wsmux drops a message whose
  sequence is not above the book's (MONOTONIC) but **cannot detect a lost
  incremental**; integrity UNVERIFIABLE between snapshots. No checksum.
* **Funding (USDT perpetuals).** ``perp_market24h_pack_p`` is subscribed
  once per connection for all symbols (``params: []``) and pushes, about once
  a second, rows of values named by a ``fields`` list that only its first
  (``snapshot``) message carries; wsmux keeps that list per connection and
  reports ``fundingRateRr`` (with ``markRp``) of the subscribed symbols.
  Inverse contracts' funding (``market24h``, scaled) is not wired.
* **Open interest (USDT perpetuals).** From the same pack: ``openInterestRv``
  → :class:`~wsmux.OpenInterest`. The unit is not documented; it is read as
  base units (BTC for ``BTCUSDT``): ccxt's recorded ``BTCUSDT`` ticker shows
  ``openInterestRv`` 1323.596 beside a 24 h ``volumeRq`` of 7406.95 BTC and a
  ``turnoverRv`` of 124.8 M USDT, which only a coin count fits. The pack is
  subscribed while funding or open interest of any symbol is wanted.
* **Candles.** ``kline.subscribe`` (spot, inverse) / ``kline_p.subscribe``
  (USDT perpetuals) with ``params: [symbol, 60]`` (resolution in seconds; the
  sheet names the channels, the row layout is Phemex's API docs and is
  UNCONFIRMED here): rows ``[timestamp (s), interval, lastClose, open, high,
  low, close, volume, turnover]``, scaled like the book on spot (``Ep``/``Ev``
  by 10^8) and inverse contracts (prices by 10^``priceScale``; ``volume``
  counts contracts, so the base volume is ``turnoverEv`` / 10^8, the BTC
  value of the contracts — ``valueScale`` 8 assumed), decimal text on USDT
  perpetuals (``volumeRq`` is base units). A ``snapshot`` lists recent candles
  (final but the newest), an ``incremental`` the forming one (``closed``
  False). Messages carry no time: ``Candle.ts`` is None.
* **Trades.** Items ``[timestamp_ns, side, price, qty]``; ``side`` is the
  taker's. The first message (``snapshot``, ~200 recent trades) is history
  and is skipped. Phemex gives no trade id.
* **Keep-alive.** ``{"id":0,"method":"server.ping","params":[]}`` every 5 s
  (must be < 30 s) → ``{"error":null,"id":0,"result":"pong"}``; reconnect
  after 3 silent intervals.
* **Limits.** ≤ 5 connections per client, ≤ 20 subscriptions and ≤ 20
  requests/s per connection. No compression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import MalformedMessage, SubscriptionRejected, UnknownSymbol, WsmuxError, unknown_message
from wsmux.exchanges._candles import build_candle
from wsmux.model import BookSnapshot, Channel, Event, Funding, Instrument, OpenInterest, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BOOK_DEPTH", "PhemexAdapter", "phemex_symbol", "phemex_unified"]

BOOK_DEPTH = 30
"""Levels per side of the ``orderbook`` channels (phemex.md, "Book handling")."""

SPOT_SCALE = 10**8
DEFAULT_PRICE_SCALE = 4
"""``priceScale`` of inverse contracts when the products list is not known."""

_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError, OverflowError)
_STABLES = ("USDT", "USDC", "USD")
_PACK_CHANNELS = frozenset({Channel.FUNDING, Channel.OPEN_INTEREST})
_KLINE_SECONDS = 60
_VALUE_SCALE = 10**8
"""``valueScale`` of inverse contracts' ``Ev`` values (8 for ``BTCUSD``)."""

_Handler = Callable[[Any, int], Sequence[Event | Diff]]


def phemex_symbol(symbol: str, channel: Channel = Channel.TRADES) -> str:
    """Phemex's symbol of a unified one: spot ``sBASEQUOTE``, perpetuals
    ``BASEQUOTE`` (inverse when quoted in USD, else USDT-margined).

    Raises:
        UnknownSymbol: malformed symbol or a dated future (Phemex lists none).
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is None:
        return f"s{base}{quote}"
    if kind == "PERP":
        return f"{base}{quote}"
    raise UnknownSymbol(f"phemex lists no dated futures ({symbol!r})")


def phemex_unified(native: str) -> str | None:
    """The unified symbol of a Phemex symbol, or ``None``."""
    spot = native.startswith("s")
    name = native[1:] if spot else native
    for quote in _STABLES:
        base = name[: -len(quote)]
        if name.endswith(quote) and base.isalnum() and base.isupper() and base.isascii():
            unified = f"{base}-{quote}" if spot else f"{base}-{quote}-PERP"
            try:
                parse_symbol(unified)
            except UnknownSymbol:
                return None
            return unified
    return None


def _scaled(value: Any) -> int:
    if value.__class__ is not int:
        raise TypeError(f"{value!r} is not a scaled integer")
    return int(value)


class _Scale:
    """How one spot or inverse symbol's integers become prices and base sizes."""

    __slots__ = ("inverse", "price", "size")

    def __init__(self, price: int, size: int, inverse: bool) -> None:
        self.price = price
        self.size = size
        self.inverse = inverse

    def levels(self, raw: Any) -> list[tuple[float, float]]:
        if raw.__class__ is not list:
            raise TypeError("levels must be a list")
        out = []
        pscale = self.price
        for price_ep, qty in raw:
            price = _scaled(price_ep) / pscale
            size = _scaled(qty) / self.size
            if self.inverse and size and price > 0:
                size /= price
            out.append((price, size))
        return out


class PhemexAdapter(Adapter):
    """Phemex public WebSocket, venue id ``"phemex"``. See the module
    docstring for the venue rules (sheet: ``shared/exchanges/phemex.md``).

    Channels → events: ``orderbook`` / ``orderbook_p`` → book (30 levels,
    integrity UNVERIFIABLE, re-anchored by every snapshot); ``trade`` /
    ``trade_p`` → :class:`~wsmux.Trade` (taker side, no id);
    ``perp_market24h_pack_p`` → :class:`~wsmux.Funding` and
    :class:`~wsmux.OpenInterest` (USDT perpetuals); ``kline`` / ``kline_p`` →
    one-minute :class:`~wsmux.Candle`.
    """

    venue: ClassVar[str] = "phemex"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.BOOK, Channel.TRADES, Channel.FUNDING, Channel.OPEN_INTEREST, Channel.CANDLES}
    )
    default_url: ClassVar[str] = "wss://phemex.com/ws"
    default_rest_url: ClassVar[str] = "https://api.phemex.com"
    # phemex.md corrects the host to phemex.com; a 2026 third-party client says
    # ws.phemex.com is current: kept as a backup
    backup_urls: ClassVar[tuple[str, ...]] = ("wss://vapi.phemex.com/ws", "wss://ws.phemex.com/ws")
    # phemex.md, "Keep-alive / limits": <= 5 connections per client, <= 20
    # subscriptions and <= 20 requests/s per connection; one symbol per request.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=20,
        topics_per_message=1,
        messages_per_second=10.0,
        connections_per_window=5,
        connection_window=60.0,
        rest_weight_per_minute=100,
    )
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=dumps({"id": 0, "method": "server.ping", "params": []}),
        ping_interval=5.0,
        ws_ping_interval=None,
        silence_timeout=15.0,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # native -> unified
        self._scales: dict[str, _Scale] = {}  # spot / inverse native -> scale
        self._price_scales: dict[str, int] = {}  # from the products list
        self._next_id = 1
        # per connection: USDT perpetual -> the pack channels (funding, open
        # interest) wanted of it, and the field names of the
        # perp_market24h_pack_p rows (sent once)
        self._pack_wanted: dict[str, set[Channel]] = {}
        self._pack_fields: list[str] | None = None
        self._handlers: dict[str, _Handler] = {
            "book": self._book_scaled,
            "orderbook_p": self._book_real,
            "trades": self._trades_scaled,
            "trades_p": self._trades_real,
            "kline": self._kline_scaled,
            "kline_p": self._kline_real,
        }

    def reset(self) -> None:
        self._pack_wanted.clear()
        self._pack_fields = None

    # --- symbols ----------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`phemex_symbol`; funding and open interest are wired for
        USDT perpetuals only."""
        native = phemex_symbol(symbol, channel)
        if channel in _PACK_CHANNELS and (native.startswith("s") or native.endswith("USD")):
            raise UnknownSymbol(f"phemex {channel.value} is wired for USDT perpetuals only, not {symbol!r}")
        return native

    def _unified(self, native: Any) -> str:
        symbol = self._symbols.get(native)
        if symbol is None:
            symbol = phemex_unified(native) if native.__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"phemex: unknown symbol {native!r}")
            self._symbols[native] = symbol
        return symbol

    def _scale(self, native: str) -> _Scale:
        scale = self._scales.get(native)
        if scale is None:
            if native.startswith("s"):
                scale = _Scale(SPOT_SCALE, SPOT_SCALE, False)
            else:
                scale = _Scale(10 ** self._price_scales.get(native, DEFAULT_PRICE_SCALE), 1, True)
            self._scales[native] = scale
        return scale

    # --- reference data ---------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``GET /public/products``."""
        return HttpRequest(f"{self.rest_url}/public/products")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Spot pairs and perpetuals of ``/public/products`` (``data.products``);
        ``contract_size`` is ``None`` (sizes are reported in base units).
        Parsing the list also teaches this adapter each inverse contract's
        ``priceScale`` (its prices are ``priceEp / 10**priceScale``)."""
        try:
            products = loads(body)["data"]["products"]
            out: list[Instrument] = []
            for row in products:
                native = row["symbol"]
                symbol = phemex_unified(native) if native.__class__ is str else None
                if symbol is None:
                    continue
                spot = row.get("type") == "Spot"
                tick = row.get("tickSize")
                lot = row.get("lotSize")
                scale = row.get("priceScale")
                if spot or scale is None:
                    scale = None
                elif scale.__class__ is not int or not 0 <= scale <= 12:
                    raise ValueError(f"priceScale {scale!r}")
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        native,
                        "spot" if spot else "perp",
                        None if tick is None else float(tick),
                        None if lot is None else float(lot),
                        None,
                        price_scale=scale,
                    )
                )
            self.use_instruments(out)
            return out
        except JSONDecodeError as exc:
            raise MalformedMessage("phemex: products body is not JSON", body) from exc
        except _ERRORS as exc:
            raise MalformedMessage(f"phemex: bad products body: {exc!r}", body) from exc

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn each inverse contract's ``priceScale`` (what the multiplexer
        hands every connection's adapter before it connects)."""
        for inst in instruments:
            if inst.venue == self.venue and inst.price_scale is not None:
                self._price_scales[inst.native] = inst.price_scale
                self._scales.pop(inst.native, None)

    # --- books ------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """Phemex's rule (phemex.md, "Book handling"): snapshots in the stream
        (on subscribe and every 60 s), ``sequence`` only grows (MONOTONIC:
        older messages are dropped, losses undetectable), 30 levels, no
        checksum. Integrity UNVERIFIABLE."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.MONOTONIC, depth=BOOK_DEPTH)

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _requests(self, verb: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sub in subscriptions:
            self.check(sub)
            native = phemex_symbol(sub.symbol, sub.channel)
            self._symbols[native] = sub.symbol
            if sub.channel in _PACK_CHANNELS:
                out.extend(self._pack_request(verb, native, sub.channel))
                continue
            perp = not native.startswith("s") and not native.endswith("USD")
            params: list[object] = [native]
            if sub.channel is Channel.BOOK:
                channel = "orderbook"
            elif sub.channel is Channel.CANDLES:
                channel = "kline"
                params.append(_KLINE_SECONDS)
            else:
                channel = "trade"
            method = f"{channel}{'_p' if perp else ''}.{verb}"
            out.append(dumps({"id": self._next_id, "method": method, "params": params}))
            self._next_id += 1
        return out

    def _pack_request(self, verb: str, native: str, channel: Channel) -> list[Outgoing]:
        """The all-symbols pack is subscribed with the first funding or open
        interest subscription of a connection and unsubscribed with the last."""
        wanted = self._pack_wanted
        if verb == "subscribe":
            first = not wanted
            wanted.setdefault(native, set()).add(channel)
            if not first:
                return []
        else:
            channels = wanted.get(native)
            if not channels or channel not in channels:
                return []
            channels.discard(channel)
            if not channels:
                del wanted[native]
            if wanted:
                return []
        request = {"id": self._next_id, "method": f"perp_market24h_pack_p.{verb}", "params": []}
        self._next_id += 1
        return [dumps(request)]

    # --- parsing ----------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        try:
            for key, handler in self._handlers.items():
                if key in msg:
                    return handler(msg, recv_ns)
            if msg.get("method") == "perp_market24h_pack_p.update":
                return self._pack(msg, recv_ns)
            if "id" in msg:
                error = msg.get("error")
                if error is not None:
                    raise SubscriptionRejected(f"phemex error (request {msg['id']}): {error}")
                return []  # an ack or the pong
            name = next((k for k, v in msg.items() if v.__class__ in (dict, list)), None)
            raise unknown_message("message", name, frame)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"phemex: bad message: {exc!r}", frame) from exc

    def _pack(self, msg: Any, recv_ns: int) -> list[Event]:
        fields = msg.get("fields")
        if fields is not None:
            if fields.__class__ is not list or not all(f.__class__ is str for f in fields):
                raise TypeError("fields must be a list of names")
            self._pack_fields = fields
        fields = self._pack_fields
        if fields is None:
            raise ValueError("a perp_market24h_pack_p update before the field list")
        ts = msg["timestamp"]
        if ts.__class__ is not int:
            raise TypeError(f"timestamp {ts!r}")
        at_symbol = fields.index("symbol")
        at_rate = fields.index("fundingRateRr")
        at_mark = fields.index("markRp") if "markRp" in fields else None
        at_oi = fields.index("openInterestRv") if "openInterestRv" in fields else None
        out: list[Event] = []
        for row in msg["data"]:
            native = row[at_symbol]
            wanted = self._pack_wanted.get(native)
            if not wanted:
                continue  # the pack carries every symbol
            if Channel.FUNDING in wanted:
                rate = row[at_rate]
                mark = None if at_mark is None else row[at_mark]
                if rate.__class__ is not str or (mark is not None and mark.__class__ is not str):
                    raise TypeError("pack values must be text")
                out.append(
                    Funding(
                        self.venue,
                        self._unified(native),
                        float(rate),
                        None,
                        None if mark is None else float(mark),
                        ts,
                        recv_ns,
                    )
                )
            if Channel.OPEN_INTEREST in wanted and at_oi is not None:
                oi = row[at_oi]
                if oi.__class__ is not str:
                    raise TypeError("pack values must be text")
                value = float(oi)
                if not 0.0 <= value < float("inf"):
                    raise ValueError(f"openInterestRv {oi!r}")
                out.append(OpenInterest(self.venue, self._unified(native), value, ts, recv_ns))
        return out

    def _book(self, msg: Any, bids: Any, asks: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(msg["symbol"])
        ts = msg["timestamp"]
        seq = msg["sequence"]
        if ts.__class__ is not int or seq.__class__ is not int:
            raise TypeError("timestamp and sequence must be integers")
        kind = msg["type"]
        if kind == "incremental":
            return [Diff(symbol, bids, asks, ts, seq)]
        if kind == "snapshot":
            return [
                BookSnapshot(
                    self.venue,
                    symbol,
                    tuple([(float(p), float(s)) for p, s in bids]),
                    tuple([(float(p), float(s)) for p, s in asks]),
                    ts,
                    recv_ns,
                    seq,
                )
            ]
        raise unknown_message("book type", kind)

    def _book_scaled(self, msg: Any, recv_ns: int) -> list[Event | Diff]:
        scale = self._scale(msg["symbol"])
        book = msg["book"]
        return self._book(msg, scale.levels(book["bids"]), scale.levels(book["asks"]), recv_ns)

    def _book_real(self, msg: Any, recv_ns: int) -> list[Event | Diff]:
        book = msg["orderbook_p"]
        bids = book["bids"]
        asks = book["asks"]
        if bids.__class__ is not list or asks.__class__ is not list:
            raise TypeError("bids and asks must be lists")
        for level in (*bids, *asks):  # real-valued text, straight to the book
            if level.__class__ is not list or len(level) != 2 or level[0].__class__ is not str:
                raise TypeError(f"level {level!r}")
        return self._book(msg, bids, asks, recv_ns)

    def _trades(
        self, msg: Any, key: str, recv_ns: int, convert: Callable[[Any, Any], tuple[float, float]]
    ) -> list[Event]:
        kind = msg["type"]
        if kind == "snapshot":
            return []  # ~200 recent trades: history
        if kind != "incremental":
            raise unknown_message("trade type", kind)
        symbol = self._unified(msg["symbol"])
        out: list[Event] = []
        for ts, side, price_raw, qty_raw in msg[key]:
            if ts.__class__ is not int:
                raise TypeError(f"timestamp {ts!r}")
            price, size = convert(price_raw, qty_raw)
            out.append(Trade(self.venue, symbol, price, size, _SIDES[side], None, ts, recv_ns))
        return out

    def _trades_scaled(self, msg: Any, recv_ns: int) -> list[Event]:
        scale = self._scale(msg["symbol"])

        def convert(price_ep: Any, qty: Any) -> tuple[float, float]:
            ((price, size),) = scale.levels([[price_ep, qty]])
            return price, size

        return self._trades(msg, "trades", recv_ns, convert)

    def _trades_real(self, msg: Any, recv_ns: int) -> list[Event]:
        def convert(price: Any, qty: Any) -> tuple[float, float]:
            if price.__class__ is not str or qty.__class__ is not str:
                raise TypeError("USDT-perpetual price and size must be text")
            return float(price), float(qty)

        return self._trades(msg, "trades_p", recv_ns, convert)

    # --- candles ---------------------------------------------------------------------

    def _klines(
        self, msg: Any, key: str, recv_ns: int, convert: Callable[[list[Any]], tuple[float, float, float, float, float]]
    ) -> list[Event]:
        kind = msg["type"]
        if kind == "snapshot":
            rows = sorted(msg[key], key=lambda row: _scaled(row[0]))
        elif kind == "incremental":
            rows = msg[key]
        else:
            raise unknown_message("kline type", kind)
        symbol = self._unified(msg["symbol"])
        out: list[Event] = []
        last = len(rows) - 1
        for i, row in enumerate(rows):
            start = _scaled(row[0])
            if _scaled(row[1]) != _KLINE_SECONDS:  # another resolution: well formed, not handled
                raise unknown_message("kline interval", str(row[1]))
            closed = kind == "snapshot" and i < last  # a later candle of the history exists
            out.append(build_candle(self.venue, symbol, start * 1_000_000_000, *convert(row), closed, None, recv_ns))
        return out

    def _kline_scaled(self, msg: Any, recv_ns: int) -> list[Event]:
        native = msg["symbol"]
        scale = self._scale(native)
        pscale = scale.price

        def convert(row: list[Any]) -> tuple[float, float, float, float, float]:
            open_, high, low, close = (_scaled(v) / pscale for v in row[3:7])
            # inverse: volume counts contracts, turnoverEv is their base value
            volume = _scaled(row[8]) / _VALUE_SCALE if scale.inverse else _scaled(row[7]) / scale.size
            return open_, high, low, close, volume

        return self._klines(msg, "kline", recv_ns, convert)

    def _kline_real(self, msg: Any, recv_ns: int) -> list[Event]:
        def convert(row: list[Any]) -> tuple[float, float, float, float, float]:
            values = row[3:8]
            if len(values) != 5 or any(v.__class__ is not str for v in values):
                raise TypeError("USDT-perpetual kline values must be text")
            open_, high, low, close, volume = (float(v) for v in values)
            return open_, high, low, close, volume

        return self._klines(msg, "kline_p", recv_ns, convert)
