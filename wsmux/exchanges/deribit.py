"""Deribit JSON-RPC v2 public market data: :class:`DeribitAdapter` (venue id ``"deribit"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/deribit.md``
(docs.deribit.com, cryptofeed and nautilus_trader; the 2021 capture
``DERIBIT.ws.1.0``). Each rule is restated where it is enforced:

* **Endpoint.** ``wss://www.deribit.com/ws/api/v2`` (testnet
  ``wss://test.deribit.com/ws/api/v2``); REST ``https://www.deribit.com/api/v2``.
* **JSON-RPC.** Requests are ``{"jsonrpc":"2.0","id":N,"method":...,
  "params":...}``; the answer carries the same ``id`` with ``result`` or
  ``error`` (``{"code":..,"message":..}``). ``public/subscribe`` answers with
  the list of channels actually subscribed: a requested channel missing from
  it, or an ``error``, is a :class:`~wsmux.errors.SubscriptionRejected`
  (e.g. ``13778 raw_subscriptions_not_available_for_unauthorized``).
  Market data comes as notifications ``{"method":"subscription","params":
  {"channel":...,"data":...}}``.
* **Symbols.** Inverse (coin-settled) contracts are quoted in USD:
  ``BTC-PERPETUAL`` is ``BTC-USD-PERP``, ``BTC-24SEP21`` is
  ``BTC-USD-20210924``, the option ``BTC-24SEP21-8000-P`` is
  ``BTC-USD-20210924-8000-P`` (Deribit writes a decimal strike with ``d``:
  ``XRP_USDC-30JAN26-1d5-C`` is ``XRP-USDC-20260130-1.5-C``). Linear
  contracts and spot name the quote: ``BTC_USDC-PERPETUAL`` is
  ``BTC-USDC-PERP``, the spot pair ``BTC_USDC`` is ``BTC-USDC``.
* **Units.** Prices are in the quote currency, except options, whose premium
  Deribit quotes in the base coin for inverse options (the 2021 instruments
  list has ``quote_currency: "BTC"`` for BTC options); wsmux passes prices
  through. Amounts of inverse perpetuals and futures are in **USD**; options,
  linear contracts and spot count the base coin. wsmux reports sizes in base
  units: an inverse amount becomes ``amount / price`` (book levels, trades,
  quotes), open interest of an inverse contract ``open_interest /
  mark_price``.
* **Intervals.** ``raw`` channels need an authenticated connection (since
  2022-01), so without credentials wsmux subscribes the ``100ms`` channels;
  with :class:`~wsmux.credentials.Credentials` it sends ``public/auth``
  (``client_signature`` grant: HMAC-SHA256 of ``timestamp\\nnonce\\n`` with the
  secret, so the secret itself never leaves the process) before the first
  subscribe of a connection and uses ``raw``.
* **Book (``book.{inst}.{interval}``).** The first notification is a
  ``type: "snapshot"`` with ``change_id``; each ``type: "change"`` carries
  ``prev_change_id``, which must equal the previous message's ``change_id``
  (:attr:`~wsmux.book.Continuity.PREV_ID`; holds for ``100ms`` too) — a
  broken chain resubscribes for a fresh snapshot. Entries are ``[action,
  price, amount]`` with action ``new``/``change``/``delete`` (``delete``
  removes the price; its amount is ``0``). No checksum: integrity is
  SEQUENCE.
* **Trades (``trades.{inst}.{interval}``).** A list; ``direction`` is the
  taker's side, ``trade_id`` text, ``trade_seq`` the per-instrument trade
  sequence. A trade with ``liquidation`` (``"M"`` maker, ``"T"`` taker,
  ``"MT"`` both) is also a liquidation of that party: the same channel
  serves ``Channel.LIQUIDATIONS``.
* **Ticker (``ticker.{inst}.{interval}``)** serves both ``Channel.FUNDING``
  (perpetuals: ``funding_8h``, with ``mark_price``) and
  ``Channel.OPEN_INTEREST``; ``quote.{inst}`` is the best bid/offer;
  ``chart.trades.{inst}.1`` the one-minute candles (pushed while forming, no
  "final" flag: ``closed`` is always False).
* **Keep-alive.** wsmux does not call ``public/set_heartbeat`` (after which
  the server closes a connection that misses one ``test_request``, which a
  sans-I/O adapter cannot answer); it sends ``public/test`` every 15 s and
  ignores the answer. Stray ``heartbeat`` notifications are ignored.
* **Limits.** Credit-based: each request spends credits (subscribe is costly,
  ≈3 subscribe calls/s sustained); running out answers ``10028
  too_many_requests`` and ends the session. Channels per connection are not
  documented (wsmux's choice: 200, 100 per request). No compression.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, RawSnapshot, SnapshotSource, SyncRule, UnreadRows
from wsmux.clock import SYSTEM_CLOCK, Clock
from wsmux.credentials import Credentials
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.model import (
    BookSnapshot,
    Candle,
    Channel,
    Event,
    Funding,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = [
    "DeribitAdapter",
    "deribit_auth_params",
    "deribit_symbol",
    "deribit_unified",
    "is_inverse",
]

_MS = 1_000_000  # ns per ms
_NAN = math.nan
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NUMBER = {name: i + 1 for i, name in enumerate(_MONTHS)}
_EXPIRY = re.compile(r"^(\d{1,2})([A-Z]{3})(\d{2})$")
_STRIKE = re.compile(r"^(0|[1-9]\d{0,11})(d\d{1,8})?$")
_ASSET = re.compile(r"^[A-Z0-9]{1,20}$")
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_OTHER_SIDE = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}
_SET_ACTIONS = frozenset({"new", "change"})
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError)
_DERIVATIVE_ONLY = frozenset({Channel.FUNDING, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS})
_PING_ID = 0
"""The request id of the ``public/test`` keep-alive (subscribe requests count from 1)."""

_Handler = Callable[[str, Any, int], Sequence[Event | Diff | RawSnapshot]]


# --- symbols ------------------------------------------------------------------------


def deribit_symbol(symbol: str, channel: Channel = Channel.TRADES) -> str:
    """Deribit's ``instrument_name`` of a unified symbol (see the module docstring).

    Raises:
        UnknownSymbol: malformed symbol, a USD spot pair (Deribit has none),
            or a channel the instrument kind lacks (funding exists only for
            perpetuals; open interest and liquidations for derivatives).
    """
    base, quote, kind = parse_symbol(symbol, options=True)
    if kind is None:
        if quote == "USD":
            raise UnknownSymbol(f"deribit has no USD spot pairs ({symbol!r}); inverse contracts are {symbol}-PERP")
        if channel in _DERIVATIVE_ONLY:
            raise UnknownSymbol(f"deribit has no {channel.value} for spot {symbol!r}")
        return f"{base}_{quote}"
    prefix = base if quote == "USD" else f"{base}_{quote}"
    if kind == "PERP":
        return f"{prefix}-PERPETUAL"
    if channel is Channel.FUNDING:
        raise UnknownSymbol(f"deribit has funding only for perpetuals, not {symbol!r}")
    date, _, option = kind.partition("-")
    year, month, day = int(date[:4]), int(date[4:6]), int(date[6:])
    if not (2000 <= year < 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        raise UnknownSymbol(f"bad expiry date in {symbol!r}")
    expiry = f"{day}{_MONTHS[month - 1]}{year % 100:02d}"
    if not option:
        return f"{prefix}-{expiry}"
    strike, _, right = option.partition("-")
    return f"{prefix}-{expiry}-{strike.replace('.', 'd')}-{right}"


def deribit_unified(name: str) -> str | None:
    """The unified symbol of a Deribit ``instrument_name``, or ``None`` where
    it has none (combos, malformed names). Inverse of :func:`deribit_symbol`."""
    parts = name.split("-")
    asset = parts[0]
    base, sep, quote = asset.partition("_")
    if not sep:
        quote = "USD"
    if not (_ASSET.match(base) and _ASSET.match(quote)):
        return None
    n = len(parts)
    if n == 1:
        return f"{base}-{quote}" if sep else None
    if n == 2 and parts[1] == "PERPETUAL":
        return f"{base}-{quote}-PERP"
    match = _EXPIRY.match(parts[1])
    month = _MONTH_NUMBER.get(match.group(2)) if match else None
    if match is None or month is None or not 1 <= int(match.group(1)) <= 31:
        return None
    date = f"20{match.group(3)}{month:02d}{int(match.group(1)):02d}"
    if n == 2:
        return f"{base}-{quote}-{date}"
    if n == 4 and parts[3] in ("C", "P") and _STRIKE.match(parts[2]):
        return f"{base}-{quote}-{date}-{parts[2].replace('d', '.')}-{parts[3]}"
    return None


def is_inverse(name: str) -> bool:
    """True if the Deribit instrument counts its amounts in USD: inverse
    perpetuals and futures (``BTC-PERPETUAL``, ``BTC-24SEP21``; the
    instruments list says ``future_type: "reversed"``). Options, linear
    (``_USDC``) contracts and spot pairs count the base coin."""
    if "_" in name:
        return False
    parts = name.split("-")
    return len(parts) == 2


def deribit_auth_params(credentials: Credentials, timestamp_ms: int, nonce: str) -> dict[str, Any]:
    """The ``params`` of a ``public/auth`` request with the ``client_signature``
    grant: ``signature = hex(HMAC-SHA256(secret, f"{timestamp}\\n{nonce}\\n"))``
    (the request's ``data`` part is empty)."""
    payload = f"{timestamp_ms}\n{nonce}\n".encode()
    signature = hmac.new(credentials.secret.encode(), payload, hashlib.sha256).hexdigest()
    return {
        "grant_type": "client_signature",
        "client_id": credentials.key,
        "timestamp": timestamp_ms,
        "nonce": nonce,
        "data": "",
        "signature": signature,
    }


def _number(value: Any) -> float:
    """A JSON number as a float (booleans and text are malformed)."""
    if value.__class__ is float or value.__class__ is int:
        return float(value)
    raise TypeError(f"{value!r} is not a number")


def _ms(value: Any) -> int:
    if value.__class__ is not int:
        raise TypeError(f"timestamp {value!r} is not an integer")
    return int(value) * _MS


# --- the adapter ------------------------------------------------------------------------


class DeribitAdapter(Adapter):
    """Deribit JSON-RPC v2 public WebSocket, venue id ``"deribit"``. See the
    module docstring for the venue rules (sheet: ``shared/exchanges/deribit.md``).

    Channels → events:

    * ``book.{inst}.{interval}`` → :class:`~wsmux.BookSnapshot` / book updates,
      ``seq = change_id``, ``prev_seq = prev_change_id`` (integrity SEQUENCE).
    * ``trades.{inst}.{interval}`` → :class:`~wsmux.Trade` (taker side,
      ``trade_id``, ``seq = trade_seq``) and, for liquidation trades,
      :class:`~wsmux.Liquidation` (the liquidated party's order side).
    * ``quote.{inst}`` → :class:`~wsmux.Quote`.
    * ``ticker.{inst}.{interval}`` → :class:`~wsmux.Funding` (perpetuals:
      ``funding_8h``) and :class:`~wsmux.OpenInterest`.
    * ``chart.trades.{inst}.1`` → one-minute :class:`~wsmux.Candle`.

    Args:
        url: WebSocket URL override (mock servers, testnet).
        rest_url: REST base URL override.
        credentials: API key and secret; with them the connection
            authenticates and subscribes the ``raw`` channels (every change),
            without them the public ``100ms`` ones.
        clock: where the signing timestamp is read (default: the system clock).
        interval: ``"raw"``, ``"100ms"`` or ``"agg2"``; default ``raw`` with
            credentials, else ``100ms``.

    Raises:
        ConfigError: an unknown interval, ``raw`` without credentials, or
            credentials that are not :class:`~wsmux.credentials.Credentials`.
    """

    venue: ClassVar[str] = "deribit"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"client_id", "signature"})
    """``public/auth`` carries the key and an HMAC signature (never the secret): the
    message log records them redacted."""
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {
            Channel.BOOK,
            Channel.TRADES,
            Channel.QUOTES,
            Channel.FUNDING,
            Channel.OPEN_INTEREST,
            Channel.LIQUIDATIONS,
            Channel.CANDLES,
        }
    )
    default_url: ClassVar[str] = "wss://www.deribit.com/ws/api/v2"
    default_rest_url: ClassVar[str] = "https://www.deribit.com"
    # deribit.md, "Keep-alive / limits": credit-based limits, subscribe ≈3 calls/s
    # sustained; channels per connection unconfirmed (wsmux's choice).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=200,
        topics_per_message=100,
        messages_per_second=3.0,
        connections_per_window=20,
        connection_window=60.0,
        rest_weight_per_minute=600,
    )
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=dumps({"jsonrpc": "2.0", "id": _PING_ID, "method": "public/test", "params": {}}),
        ping_interval=15.0,
        ws_ping_interval=20.0,
        silence_timeout=45.0,
    )

    def __init__(
        self,
        *,
        url: str | None = None,
        rest_url: str | None = None,
        credentials: Credentials | None = None,
        clock: Clock | None = None,
        interval: str | None = None,
        allow_insecure_loopback: bool = False,
    ) -> None:
        super().__init__(url=url, rest_url=rest_url, allow_insecure_loopback=allow_insecure_loopback)
        if credentials is not None and not isinstance(credentials, Credentials):
            raise ConfigError("credentials must be a wsmux.credentials.Credentials")
        if interval is None:
            interval = "raw" if credentials is not None else "100ms"
        if interval not in ("raw", "100ms", "agg2"):
            raise ConfigError(f"deribit interval must be 'raw', '100ms' or 'agg2', not {interval!r}")
        if interval == "raw" and credentials is None:
            raise ConfigError("deribit 'raw' channels need credentials; use '100ms'")
        self.credentials = credentials
        self.check_transport()  # credentials never go out over plain ws:// (see Adapter.check_transport)
        self.clock = clock if clock is not None else SYSTEM_CLOCK
        self.interval = interval
        self._symbols: dict[str, str] = {}  # instrument_name -> unified symbol
        self._inverse: dict[str, bool] = {}  # instrument_name -> amounts in USD
        # per connection: channel name -> the wsmux channels it serves
        self._wanted: dict[str, set[Channel]] = {}
        self._requests: dict[int, tuple[str, tuple[str, ...]]] = {}  # id -> (method, channels)
        self._next_id = 1
        self._authed = False
        self._handlers: dict[str, _Handler] = {
            "book": self._book,
            "trades": self._trades,
            "quote": self._quote,
            "ticker": self._ticker,
            "chart": self._candle,
        }

    @classmethod
    def configured(
        cls,
        *,
        credentials: Credentials | None = None,
        clock: Clock | None = None,
        interval: str | None = None,
        allow_insecure_loopback: bool = False,
    ) -> type[DeribitAdapter]:
        """A subclass whose instances use these options, for places that take
        an adapter *class*::

            Multiplexer(adapters={"deribit": DeribitAdapter.configured(credentials=creds)})

        The options are checked now (ConfigError)."""
        cls(credentials=credentials, clock=clock, interval=interval, allow_insecure_loopback=allow_insecure_loopback)

        class _Configured(cls):  # type: ignore[valid-type,misc]
            def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
                super().__init__(
                    url=url,
                    rest_url=rest_url,
                    credentials=credentials,
                    clock=clock,
                    interval=interval,
                    allow_insecure_loopback=allow_insecure_loopback,
                )

        _Configured.__name__ = _Configured.__qualname__ = f"{cls.__name__}.configured"
        return _Configured

    @property
    def signs(self) -> bool:
        """True with credentials: every connection sends a signed ``public/auth``."""
        return self.credentials is not None

    def reset(self) -> None:
        self._wanted.clear()
        self._requests.clear()
        self._authed = False

    # --- symbols ----------------------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """See :func:`deribit_symbol`."""
        return deribit_symbol(symbol, channel)

    def _unified(self, name: Any) -> str:
        symbol = self._symbols.get(name)
        if symbol is None:
            symbol = deribit_unified(name) if name.__class__ is str else None
            if symbol is None:
                raise MalformedMessage(f"deribit: unknown instrument {name!r}")
            self._symbols[name] = symbol
            self._inverse[name] = is_inverse(name)
        return symbol

    def topic(self, subscription: Subscription) -> str:
        """The Deribit channel name that carries ``subscription``."""
        inst = deribit_symbol(subscription.symbol, subscription.channel)
        channel = subscription.channel
        if channel is Channel.BOOK:
            return f"book.{inst}.{self.interval}"
        if channel in (Channel.TRADES, Channel.LIQUIDATIONS):
            return f"trades.{inst}.{self.interval}"
        if channel is Channel.QUOTES:
            return f"quote.{inst}"
        if channel in (Channel.FUNDING, Channel.OPEN_INTEREST):
            return f"ticker.{inst}.{self.interval}"
        if channel is Channel.CANDLES:
            return f"chart.trades.{inst}.1"
        self.check(subscription)  # raises UnknownChannel
        raise AssertionError("unreachable")

    # --- books ------------------------------------------------------------------------

    def book_rule(self, symbol: str) -> SyncRule:
        """Deribit's ``book`` rule (deribit.md, "Book sync"): stream snapshot on
        subscribe, then each change's ``prev_change_id`` equals the previous
        ``change_id`` (PREV_ID); no checksum. Integrity: SEQUENCE."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.PREV_ID)

    # --- subscriptions --------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        topics: list[str] = []
        for sub in subscriptions:
            self.check(sub)
            topic = self.topic(sub)
            served = self._wanted.get(topic)
            if served is None:
                served = self._wanted[topic] = set()
                topics.append(topic)
            served.add(sub.channel)
        out: list[Outgoing] = []
        if topics and self.credentials is not None and not self._authed:
            self._authed = True
            nonce = secrets.token_hex(8)
            params = deribit_auth_params(self.credentials, self.clock.time_ns() // _MS, nonce)
            out.append(self._request("public/auth", params, ()))
        return out + self._chunks("public/subscribe", topics)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        topics: list[str] = []
        for sub in subscriptions:
            topic = self.topic(sub)
            served = self._wanted.get(topic)
            if served is None:
                continue
            served.discard(sub.channel)
            if not served:
                del self._wanted[topic]
                topics.append(topic)
        return self._chunks("public/unsubscribe", topics)

    def _chunks(self, method: str, topics: list[str]) -> list[Outgoing]:
        per = self.limits.topics_per_message
        return [
            self._request(method, {"channels": topics[i : i + per]}, tuple(topics[i : i + per]))
            for i in range(0, len(topics), per)
        ]

    def _request(self, method: str, params: dict[str, Any], channels: tuple[str, ...]) -> str:
        request_id = self._next_id
        self._next_id += 1
        self._requests[request_id] = (method, channels)
        return dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    # --- instruments ----------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``GET /api/v2/public/get_instruments?currency=any&expired=false``."""
        return HttpRequest(
            f"{self.rest_url}/api/v2/public/get_instruments", (("currency", "any"), ("expired", "false"))
        )

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """Instruments with a unified symbol (combos are left out). Sizes are
        reported in base units (inverse amounts converted by price), so
        ``contract_size`` is ``None``; ``lot_size`` is ``min_trade_amount`` in
        the venue's amount unit (USD for inverse contracts)."""
        try:
            msg = loads(body)
            rows = msg["result"]
            out: list[Instrument] = []
            for row in rows:
                name = row["instrument_name"]
                symbol = deribit_unified(name) if name.__class__ is str else None
                if symbol is None:
                    continue
                kind = row["kind"]
                if kind == "future":
                    kind = "perp" if row.get("settlement_period") == "perpetual" else "future"
                elif kind not in ("option", "spot"):
                    continue
                tick = row.get("tick_size")
                lot = row.get("min_trade_amount")
                out.append(
                    Instrument(
                        self.venue,
                        symbol,
                        name,
                        kind,
                        None if tick is None else _number(tick),
                        None if lot is None else _number(lot),
                        None,
                    )
                )
            return out
        except JSONDecodeError as exc:
            raise MalformedMessage("deribit: instruments body is not JSON", body) from exc
        except _ERRORS as exc:
            raise MalformedMessage(f"deribit: bad instruments body: {exc!r}", body) from exc

    # --- parsing ----------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff | RawSnapshot]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        name: Any = None
        try:
            method = msg.get("method")
            if method == "subscription":
                params = msg["params"]
                name = params["channel"]
                kind = name.partition(".")[0] if name.__class__ is str else None
                handler = self._handlers.get(kind) if kind else None
                if handler is None:
                    raise unknown_message("channel", name, frame)
                return handler(name, params["data"], recv_ns)
            if method == "heartbeat":  # only after public/set_heartbeat, which wsmux does not call
                return []
            if "id" in msg:
                return self._answer(msg, frame)
            if method is not None:
                raise unknown_message("method", method, frame)
            raise MalformedMessage("unknown message type", frame)
        except MalformedMessage as exc:
            if exc.frame is None:
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"deribit: bad {name or 'message'}: {exc!r}", frame) from exc

    def _answer(self, msg: dict[str, Any], frame: bytes | str) -> list[Event]:
        """A JSON-RPC response: an error, or the result of a request."""
        request = self._requests.pop(msg["id"], None) if msg["id"].__class__ is int else None
        error = msg.get("error")
        if error is not None:
            method, channels = request if request is not None else ("request", ())
            code = error.get("code", "?") if error.__class__ is dict else "?"
            text = error.get("message", "") if error.__class__ is dict else error
            reason = f"deribit {method} error {code}: {text}"
            if method in ("public/subscribe", "public/auth"):
                raise SubscriptionRejected(f"{reason} (channels {list(channels)})")
            raise RemoteError(reason)
        if "result" not in msg:
            raise MalformedMessage("deribit: response without result or error", frame)
        if request is not None and request[0] == "public/subscribe":
            result = msg["result"]
            if result.__class__ is not list:
                raise MalformedMessage("deribit: subscribe result is not a list", frame)
            missing = [c for c in request[1] if c not in result]
            if missing:
                raise SubscriptionRejected(f"deribit did not subscribe {missing}")
        return []

    def _book(self, name: str, data: Any, recv_ns: int) -> list[Event | Diff | RawSnapshot]:
        symbol = self._unified(data["instrument_name"])
        inverse = self._inverse[data["instrument_name"]]
        ts = _ms(data["timestamp"])
        seq = data["change_id"]
        if seq.__class__ is not int:
            raise TypeError(f"change_id {seq!r} is not an integer")
        kind = data["type"]
        raw_bids = data["bids"]
        raw_asks = data["asks"]
        if kind == "snapshot" and self.reads_rows_later(raw_bids, raw_asks):
            # a live Feed: the book's build steps read the rows
            read = partial(_levels, inverse=inverse)
            return [RawSnapshot(symbol, UnreadRows(raw_bids, read), UnreadRows(raw_asks, read), ts, seq)]
        bids = _levels(raw_bids, inverse)
        asks = _levels(raw_asks, inverse)
        if kind == "change":
            prev = data["prev_change_id"]
            if prev.__class__ is not int:
                raise TypeError(f"prev_change_id {prev!r} is not an integer")
            return [Diff(symbol, bids, asks, ts, seq, None, prev)]
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

    def _trades(self, name: str, data: Any, recv_ns: int) -> list[Event]:
        served = self._wanted.get(name)
        want_trades = served is None or Channel.TRADES in served
        want_liquidations = served is None or Channel.LIQUIDATIONS in served
        venue = self.venue
        out: list[Event] = []
        for entry in data:
            inst = entry["instrument_name"]
            symbol = self._unified(inst)
            price = _number(entry["price"])
            size = _number(entry["amount"])
            if self._inverse[inst]:
                size /= price
            side = _SIDES[entry["direction"]]
            ts = _ms(entry["timestamp"])
            if want_trades:
                seq = entry.get("trade_seq")
                if seq is not None and seq.__class__ is not int:
                    raise TypeError(f"trade_seq {seq!r} is not an integer")
                trade_id = entry["trade_id"]
                if trade_id.__class__ is not str:
                    raise TypeError(f"trade_id {trade_id!r} is not text")
                out.append(Trade(venue, symbol, price, size, side, trade_id, ts, recv_ns, seq))
            liquidation = entry.get("liquidation")
            if liquidation is not None and want_liquidations:
                if liquidation not in ("M", "T", "MT"):
                    raise ValueError(f"liquidation {liquidation!r}")
                if "M" in liquidation:  # the maker's order was on the other side
                    out.append(Liquidation(venue, symbol, _OTHER_SIDE[side], price, size, ts, recv_ns))
                if "T" in liquidation:
                    out.append(Liquidation(venue, symbol, side, price, size, ts, recv_ns))
        return out

    def _quote(self, name: str, data: Any, recv_ns: int) -> list[Event]:
        inst = data["instrument_name"]
        symbol = self._unified(inst)
        inverse = self._inverse[inst]
        bp, bs = _top(data.get("best_bid_price"), data.get("best_bid_amount"), inverse)
        ap, az = _top(data.get("best_ask_price"), data.get("best_ask_amount"), inverse)
        return [Quote(self.venue, symbol, bp, bs, ap, az, _ms(data["timestamp"]), recv_ns)]

    def _ticker(self, name: str, data: Any, recv_ns: int) -> list[Event]:
        inst = data["instrument_name"]
        symbol = self._unified(inst)
        ts = _ms(data["timestamp"])
        served = self._wanted.get(name)
        out: list[Event] = []
        mark = data.get("mark_price")
        mark_price = None if mark is None else _number(mark)
        funding = data.get("funding_8h")
        if funding is not None and (served is None or Channel.FUNDING in served):
            out.append(Funding(self.venue, symbol, _number(funding), None, mark_price, ts, recv_ns))
        if served is None or Channel.OPEN_INTEREST in served:
            oi = _number(data["open_interest"])
            if self._inverse[inst]:
                if not mark_price:
                    raise ValueError("inverse open interest without a mark price")
                oi /= mark_price
            out.append(OpenInterest(self.venue, symbol, oi, ts, recv_ns))
        return out

    def _candle(self, name: str, data: Any, recv_ns: int) -> list[Event]:
        # chart.trades.{inst}.{resolution}: the instrument is in the channel name
        parts = name.split(".")
        if len(parts) != 4 or parts[1] != "trades":
            raise unknown_message("channel", name)
        symbol = self._unified(parts[2])
        start = _ms(data["tick"])
        return [
            Candle(
                self.venue,
                symbol,
                "1m" if parts[3] == "1" else parts[3],
                start,
                _number(data["open"]),
                _number(data["high"]),
                _number(data["low"]),
                _number(data["close"]),
                _number(data["volume"]),
                False,
                None,
                recv_ns,
            )
        ]


def _levels(raw: Any, inverse: bool) -> list[tuple[Any, Any]]:
    """``[[action, price, amount], ...]`` → ``(price, size)`` pairs, numbers
    unconverted except inverse amounts (USD → base units); ``delete`` → size 0."""
    if raw.__class__ is not list:
        raise TypeError("bids and asks must be lists")
    out: list[tuple[Any, Any]] = []
    append = out.append
    for action, price, amount in raw:
        if (price.__class__ is not float and price.__class__ is not int) or (
            amount.__class__ is not float and amount.__class__ is not int
        ):
            raise TypeError(f"level {[action, price, amount]!r}: price and amount must be numbers")
        if action == "delete":
            append((price, 0.0))
        elif action in _SET_ACTIONS:
            append((price, amount / price if inverse and price > 0 else amount))
        else:
            raise ValueError(f"unknown book action {action!r}")
    return out


def _top(price: Any, amount: Any, inverse: bool) -> tuple[float, float]:
    """A best bid or ask; an empty side (no price or amount 0) is ``nan``."""
    if price is None or amount is None:
        return _NAN, _NAN
    p = _number(price)
    a = _number(amount)
    if not a or p <= 0:
        return _NAN, _NAN
    return p, a / p if inverse else a
