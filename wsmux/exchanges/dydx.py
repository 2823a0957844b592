"""dYdX v4 indexer WebSocket: :class:`DydxAdapter` (venue id ``"dydx"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/dydx-v4.md``
and, where the sheet leaves them open, from the indexer's own source
(dydxprotocol/v4-chain, ``indexer/services/socks``: ``websocket/index.ts``,
``lib/subscription.ts``, ``lib/message-forwarder.ts``). Each rule is restated
where it is enforced:

* **Endpoint.** ``wss://indexer.dydx.trade/v4/ws`` (testnet
  ``wss://indexer.v4testnet.dydx.exchange/v4/ws``); REST on the same host
  (``GET /v4/perpetualMarkets`` lists the markets). No compression.
* **Symbols.** Perpetuals only, USDC-settled and quoted in USD:
  ``BTC-USD-PERP`` is the market ``BTC-USD``.
* **Subscribing.** One message per subscription:
  ``{"type":"subscribe","channel":"v4_orderbook","id":"BTC-USD","batched":false}``;
  ``v4_markets`` takes no ``id`` and covers every market. The answer is
  ``subscribed`` with the initial data, or ``error``
  (:class:`~wsmux.errors.SubscriptionRejected` when about a subscription);
  ``unsubscribe`` is answered by ``unsubscribed``. At most 2 subscribe
  messages a second and 32 subscriptions per channel per connection.
* **Keep-alive.** The server pings every 30 s and closes the connection
  without a pong within 10 s (the WebSocket library answers). There is no
  application ping.
* **Connection sequence (``message_id``).** ``connected`` has ``message_id``
  0; every later message that carries data (``channel_data``,
  ``channel_batch_data``, ``unsubscribed``) has the next id. A subscribe
  *reserves* the next id when the server reads it, but its answer
  (``subscribed`` or ``error``) is sent after the initial data is fetched,
  so data of other subscriptions may arrive first, with higher ids (the sheet
  says contiguity is unconfirmed; the source shows this). The adapter
  therefore tolerates as many holes as it has unanswered subscribe requests,
  fills them with the late answers, and reports any other hole as a
  :class:`~wsmux.Gap` (``symbol=""``, ``SEQUENCE``) for every book of the
  connection (and the trade tape when it carries trades). A data message
  whose id is not above the last one is a duplicate and dropped; a message
  that does not parse does not take its id, so the next one reports it lost.
  Errors that reserve nothing repeat the current id and are not a gap either.
* **Book (``v4_orderbook``).** ``subscribed`` holds the full book as
  ``{"price","size"}`` objects → :class:`~wsmux.BookSnapshot`;
  ``channel_data`` holds ``[price, size]`` pairs, absolute sizes, ``"0"``
  deletes → :class:`~wsmux.book.Diff`. No per-book sequence, no checksum,
  no timestamp. The books are sequence-checked through ``message_id``
  (integrity ``SEQUENCE``).
* **Crossed books.** The indexer's book can cross (stale levels left behind
  after fills); dYdX's guide ("how to uncross the orderbook") says to treat
  the newer message as the truth. The adapter keeps the price levels of each
  book and, when an update sets a bid at or above the best ask (an ask at or
  below the best bid), deletes the crossed levels of the other side in the
  same update (counted in :attr:`DydxAdapter.uncrossed`). A crossed
  *snapshot* cannot be resolved that way (its levels are equally old): it is
  kept, and crossed books are not treated as broken (``check_crossed`` is
  off) — the next updates uncross it, as the venue says.
* **Trades (``v4_trades``).** ``side`` is the taker's; ``id`` is a unique,
  non-sequential string; ``createdAt`` is ISO-8601. The ``subscribed``
  message carries recent history, which is dropped (counted in
  :attr:`DydxAdapter.history_dropped`). Trades of ``type`` ``LIQUIDATED`` or
  ``DELEVERAGED`` are also :class:`~wsmux.Liquidation` events (the taker is
  the liquidated position's closing order).
* **Funding and open interest (``v4_markets``).** ``subscribed`` has
  ``contents.markets.<MARKET>``; ``channel_data`` has ``contents.trading.<MARKET>``
  with only the changed fields (key names UNCONFIRMED in the sheet, checked
  in the indexer's types) and ``contents.oraclePrices`` (ignored).
  ``nextFundingRate`` → :class:`~wsmux.Funding`, ``openInterest`` (base
  units) → :class:`~wsmux.OpenInterest`; no timestamps.
* **Candles (``v4_candles``, id ``BTC-USD/1MIN``).** ``channel_data`` is the
  forming candle (``startedAt``, ``open``/``high``/``low``/``close``,
  ``baseTokenVolume``) → :class:`~wsmux.Candle` with ``closed=False`` and
  ``interval="1m"`` (the spelling every venue's candles share); a bar of
  another resolution is an unknown message. The history in ``subscribed``
  is dropped.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import (
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._candles import CANDLE_INTERVAL
from wsmux.exchanges.coinbase import iso_to_ns
from wsmux.model import (
    BookSnapshot,
    Candle,
    Channel,
    Event,
    Funding,
    Gap,
    GapReason,
    Instrument,
    Integrity,
    Liquidation,
    OpenInterest,
    Side,
    Trade,
)
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["CANDLE_RESOLUTION", "DydxAdapter", "dydx_market"]

CANDLE_RESOLUTION = "1MIN"
_TAKER = {"BUY": Side.BUY, "SELL": Side.SELL}
_LIQUIDATION_TYPES = frozenset({"LIQUIDATED", "DELEVERAGED"})
_MARKET_CHANNELS = frozenset({Channel.FUNDING, Channel.OPEN_INTEREST})
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)

_Handler = Callable[[Any, bool, int, int], list[Event | Diff]]


def dydx_market(symbol: str) -> str:
    """``BTC-USD-PERP`` → ``BTC-USD`` (dydx-v4.md: markets are USD perpetuals).

    Raises:
        UnknownSymbol: not a USD perpetual.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind != "PERP" or quote != "USD":
        raise UnknownSymbol(
            f"dydx lists USD perpetuals only, named BASE-USD-PERP (e.g. 'BTC-USD-PERP'), not {symbol!r}"
        )
    return f"{base}-{quote}"


class _Levels:
    """The prices of one book's sides as the client holds them (ascending
    floats), for uncrossing (see the module docstring)."""

    __slots__ = ("asks", "bids")

    def __init__(self, bids: list[float], asks: list[float]) -> None:
        self.bids = bids
        self.asks = asks


class DydxAdapter(Adapter):
    """dYdX v4 perpetuals (``wss://indexer.dydx.trade/v4/ws``), venue id ``"dydx"``.

    Channels: books (``v4_orderbook``), trades and liquidations
    (``v4_trades``), funding and open interest (``v4_markets``), one-minute
    candles (``v4_candles``). See the module docstring for the rules (sheet:
    ``shared/exchanges/dydx-v4.md``).

    Attributes:
        uncrossed: book levels deleted because a newer update crossed them.
        history_dropped: ``subscribed`` messages whose history was dropped.
        duplicates: data messages dropped because their ``message_id`` was
            not above the last one.
    """

    venue: ClassVar[str] = "dydx"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.BOOK, Channel.TRADES, Channel.LIQUIDATIONS, Channel.FUNDING, Channel.OPEN_INTEREST, Channel.CANDLES}
    )
    default_url: ClassVar[str] = "wss://indexer.dydx.trade/v4/ws"
    default_rest_url: ClassVar[str] = "https://indexer.dydx.trade"
    # dydx-v4.md, "Keep-alive / limits": 2 subscribe messages a second, 32
    # subscriptions per channel per connection (wsmux caps the connection at 32).
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=32,
        topics_per_message=1,
        messages_per_second=2.0,
        connections_per_window=60,
        connection_window=60.0,
    )
    # The server pings every 30 s; no application ping exists.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message=None, ping_interval=30.0, ws_ping_interval=20.0, silence_timeout=60.0
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # market -> unified (learned at subscribe)
        self._market_channels: dict[str, set[Channel]] = {}  # market -> FUNDING/OPEN_INTEREST wanted
        self._trade_channels: dict[str, set[Channel]] = {}  # market -> TRADES/LIQUIDATIONS wanted
        self.uncrossed = 0
        self.history_dropped = 0
        self.duplicates = 0
        # Per-connection state:
        self._high: int | None = None  # highest in-order message_id seen
        self._holes: set[int] = set()  # ids skipped, to be filled by late subscribe answers
        self._pending = 0  # subscribe requests not answered yet
        self._levels: dict[str, _Levels] = {}
        self._handlers: dict[str, _Handler] = {
            "v4_orderbook": self._orderbook,
            "v4_trades": self._trades,
            "v4_markets": self._markets,
            "v4_candles": self._candles,
        }

    def reset(self) -> None:
        self._high = None
        self._holes.clear()
        self._pending = 0
        self._levels.clear()

    @property
    def message_id(self) -> int | None:
        """The highest ``message_id`` received in order on this connection."""
        return self._high

    # --- symbols and books ----------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USD-PERP`` → ``BTC-USD`` (see :func:`dydx_market`)."""
        return dydx_market(symbol)

    def _unified(self, market: Any) -> str:
        symbol = self._symbols.get(market)
        if symbol is None:
            raise MalformedMessage(f"dydx: data for a market never subscribed: {market!r}")
        return symbol

    def book_rule(self, symbol: str) -> SyncRule:
        """dYdX's book rule (dydx-v4.md, "Book handling"): snapshot in the
        ``subscribed`` message, no per-book sequence or checksum; the
        connection's ``message_id`` is checked by the adapter (``SEQUENCE``);
        crossed books are uncrossed by the adapter, not treated as broken."""
        return SyncRule(
            snapshot=SnapshotSource.STREAM,
            continuity=Continuity.NONE,
            check_crossed=False,
            integrity=Integrity.SEQUENCE,
        )

    # --- reference data ---------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``GET /v4/perpetualMarkets`` (dydx-v4.md, "Endpoints")."""
        return HttpRequest(f"{self.rest_url}/v4/perpetualMarkets")

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """The markets of a ``perpetualMarkets`` response: ``tickSize``,
        ``stepSize`` (sizes are in base units). Markets that are not ``ACTIVE``
        or have no unified name are left out."""
        try:
            markets = loads(body)["markets"]
            out: list[Instrument] = []
            for ticker, market in markets.items():
                if market.get("status", "ACTIVE") != "ACTIVE":
                    continue
                try:
                    symbol = f"{ticker}-PERP"
                    if dydx_market(symbol) != ticker:
                        continue
                except UnknownSymbol:
                    continue
                out.append(
                    Instrument(
                        self.venue, symbol, ticker, "perp", float(market["tickSize"]), float(market["stepSize"]), None
                    )
                )
            return out
        except (JSONDecodeError, *_ERRORS) as exc:
            raise MalformedMessage(f"dydx: bad perpetualMarkets response: {exc!r}", body) from exc

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out = self._requests("subscribe", subscriptions)
        self._pending += len(out)
        return out

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _shared(self, wanted: dict[str, set[Channel]], op: str, key: str, channel: Channel) -> bool:
        """Whether a subscription shared by several channels must be sent now."""
        channels = wanted.setdefault(key, set())
        if op == "subscribe":
            first = not channels
            channels.add(channel)
            return first
        if channel not in channels:
            return False
        channels.discard(channel)
        return not channels

    def _request(self, op: str, sub: Subscription, market: str) -> dict[str, Any] | None:
        channel = sub.channel
        if channel is Channel.BOOK:
            return {"type": op, "channel": "v4_orderbook", "id": market, "batched": False}
        if channel is Channel.CANDLES:
            return {"type": op, "channel": "v4_candles", "id": f"{market}/{CANDLE_RESOLUTION}", "batched": False}
        if channel in (Channel.TRADES, Channel.LIQUIDATIONS):
            if not self._shared(self._trade_channels, op, market, channel):
                return None
            return {"type": op, "channel": "v4_trades", "id": market, "batched": False}
        was_on = any(self._market_channels.values())
        self._shared(self._market_channels, op, market, channel)
        now_on = any(self._market_channels.values())
        if was_on == now_on:
            return None
        return {"type": op, "channel": "v4_markets", "batched": False}

    def _requests(self, op: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sub in subscriptions:
            self.check(sub)
            market = self.to_native(sub.symbol, sub.channel)
            self._symbols[market] = sub.symbol
            body = self._request(op, sub, market)
            if body is not None:
                message = dumps(body)
                if message not in out:
                    out.append(message)
        return out

    # --- parsing ----------------------------------------------------------------------

    def parse(self, frame: bytes | str, recv_ns: int) -> Sequence[Event | Diff]:
        try:
            msg = loads(frame)
        except JSONDecodeError as exc:
            raise MalformedMessage("invalid JSON", frame) from exc
        if msg.__class__ is not dict:
            raise MalformedMessage("unknown message type: expected a JSON object", frame)
        kind: Any = msg.get("type")
        try:
            if kind == "channel_data" or kind == "channel_batch_data":  # noqa: PLR1714 - hot path
                handler = self._handlers.get(msg["channel"])
                if handler is None:
                    raise unknown_message("channel", msg["channel"], frame)
                message_id = _message_id(msg)
                if self._duplicate(message_id):
                    return []
                # the id is taken only once the message parsed: a malformed one counts as lost
                if kind == "channel_data":
                    events = handler(msg, False, message_id, recv_ns)
                else:
                    events = []
                    for item in msg["contents"]:
                        events.extend(handler({**msg, "contents": item}, False, message_id, recv_ns))
                gaps = self._advance(message_id, recv_ns)
                return [*gaps, *events] if gaps else events
            if kind == "subscribed":
                handler = self._handlers.get(msg["channel"])
                if handler is None:
                    raise unknown_message("channel", msg["channel"], frame)
                message_id = _message_id(msg)
                events = handler(msg, True, message_id, recv_ns)
                return [*self._answer(message_id, recv_ns), *events]
            if kind == "unsubscribed":
                message_id = _message_id(msg)
                return [] if self._duplicate(message_id) else self._advance(message_id, recv_ns)
            if kind == "connected":
                self._connected(msg["message_id"])
                return []
            if kind == "error":
                raise self._error(msg)
            if kind == "pong":
                return []
            raise unknown_message("type", kind, frame)
        except MalformedMessage as exc:
            if exc.frame is None:  # the same kind of error (unknown stays unknown), with the frame
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"dydx: bad {kind} message: {exc!r}", frame) from exc

    # --- the connection sequence --------------------------------------------------------

    def _connected(self, message_id: Any) -> None:
        """``connected``: the connection's sequence starts at ``message_id`` (0)."""
        if message_id.__class__ is not int:
            raise TypeError(f"message_id must be an integer, not {message_id!r}")
        self._high = message_id
        self._holes.clear()

    def _gaps(self, expected: int, received: int, recv_ns: int) -> list[Event]:
        detail = f"connection message_id {received} after {expected - 1}: message(s) lost"
        gaps: list[Event] = [Gap(self.venue, "", Channel.BOOK, GapReason.SEQUENCE, expected, received, recv_ns, detail)]
        if any(self._trade_channels.values()):
            gaps.append(Gap(self.venue, "", Channel.TRADES, GapReason.SEQUENCE, expected, received, recv_ns, detail))
        return gaps

    def _duplicate(self, message_id: int) -> bool:
        """A data message whose id is not above the last one: dropped."""
        high = self._high
        if high is not None and message_id <= high:
            self.duplicates += 1
            return True
        return False

    def _advance(self, message_id: int, recv_ns: int) -> list[Event]:
        """Take ``message_id`` (above the last one) as the newest: the gaps it
        reveals (usually none; skipped ids are holes while subscribe answers
        are outstanding)."""
        high = self._high
        self._high = message_id
        if high is None or message_id == high + 1:
            return []
        holes = self._holes
        if len(holes) + message_id - high - 1 <= self._pending:  # room for late subscribe answers
            holes.update(range(high + 1, message_id))
            return []
        holes.clear()
        return self._gaps(high + 1, message_id, recv_ns)

    def _answer(self, message_id: int, recv_ns: int) -> list[Event]:
        """A ``subscribed`` answer (or an ``error`` that consumed a reserved
        id): fill its hole, or take the next id."""
        if self._pending:
            self._pending -= 1
        if message_id in self._holes:
            self._holes.discard(message_id)
            return []
        high = self._high
        if high is not None and message_id <= high:
            return []  # an answer whose hole a gap already cleared
        return self._advance(message_id, recv_ns)

    def _error(self, msg: dict[str, Any]) -> RemoteError:
        message_id = msg.get("message_id")
        high = self._high
        if message_id.__class__ is int and high is not None and (message_id in self._holes or message_id == high + 1):
            self._answer(message_id, 0)  # the answer to a subscribe that reserved an id
        text = str(msg.get("message") or "no reason given")[:300]
        if "subscri" in text.lower() or "invalid id" in text.lower() or "channel" in text.lower():
            return SubscriptionRejected(f"dydx refused a subscription: {text}")
        return RemoteError(f"dydx error: {text}")

    # --- channels -----------------------------------------------------------------------

    def _orderbook(self, msg: Any, snapshot: bool, message_id: int, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(msg["id"])
        contents = msg["contents"]
        if snapshot:
            return [self._book_snapshot(symbol, contents, message_id, recv_ns)]
        raw_bids = contents.get("bids") or ()
        raw_asks = contents.get("asks") or ()
        levels = self._levels.get(symbol)
        if levels is None:  # no snapshot on this connection yet: the book sync ignores it
            return [Diff(symbol, raw_bids, raw_asks, None, message_id)]
        # parse everything before touching the adapter's copy of the book
        bid_updates = [(float(p), float(s), s) for p, s in raw_bids]
        ask_updates = [(float(p), float(s), s) for p, s in raw_asks]
        bids: dict[float, Any] = {}
        asks: dict[float, Any] = {}
        for price, size, text in bid_updates:
            bids[price] = text
            self.uncrossed += _set_level(levels.bids, levels.asks, asks, price, size, bid=True)
        for price, size, text in ask_updates:
            asks[price] = text
            self.uncrossed += _set_level(levels.asks, levels.bids, bids, price, size, bid=False)
        return [Diff(symbol, list(bids.items()), list(asks.items()), None, message_id)]

    def _book_snapshot(self, symbol: str, contents: Any, message_id: int, recv_ns: int) -> BookSnapshot:
        bids = sorted([(float(lv["price"]), float(lv["size"])) for lv in contents.get("bids") or ()], reverse=True)
        asks = sorted([(float(lv["price"]), float(lv["size"])) for lv in contents.get("asks") or ()])
        self._levels[symbol] = _Levels([p for p, _ in reversed(bids)], [p for p, _ in asks])
        return BookSnapshot(self.venue, symbol, tuple(bids), tuple(asks), None, recv_ns, message_id)

    def _trades(self, msg: Any, snapshot: bool, message_id: int, recv_ns: int) -> list[Event | Diff]:
        if snapshot:
            self.history_dropped += 1
            return []
        market = msg["id"]
        symbol = self._unified(market)
        wanted = self._trade_channels.get(market) or (Channel.TRADES,)
        want_trades = Channel.TRADES in wanted
        want_liquidations = Channel.LIQUIDATIONS in wanted
        out: list[Event | Diff] = []
        for entry in msg["contents"]["trades"]:
            side = _TAKER[entry["side"]]
            price = float(entry["price"])
            size = float(entry["size"])
            ts = iso_to_ns(entry["createdAt"])
            trade_id = entry["id"]
            if trade_id.__class__ is not str:
                raise TypeError(f"trade id must be a string, not {trade_id!r}")
            if want_trades:
                out.append(Trade(self.venue, symbol, price, size, side, trade_id, ts, recv_ns))
            if want_liquidations and entry.get("type") in _LIQUIDATION_TYPES:
                out.append(Liquidation(self.venue, symbol, side, price, size, ts, recv_ns))
        return out

    def _markets(self, msg: Any, snapshot: bool, message_id: int, recv_ns: int) -> list[Event | Diff]:
        contents = msg["contents"]
        markets = contents.get("markets") if snapshot else contents.get("trading")
        out: list[Event | Diff] = []
        if not markets:
            return out  # e.g. an oraclePrices-only message
        for market, fields in markets.items():
            wanted = self._market_channels.get(market)
            if not wanted:
                continue
            symbol = self._unified(market)
            rate = fields.get("nextFundingRate")
            if Channel.FUNDING in wanted and rate is not None:
                out.append(Funding(self.venue, symbol, float(rate), None, None, None, recv_ns))
            oi = fields.get("openInterest")
            if Channel.OPEN_INTEREST in wanted and oi is not None:
                out.append(OpenInterest(self.venue, symbol, float(oi), None, recv_ns))
        return out

    def _candles(self, msg: Any, snapshot: bool, message_id: int, recv_ns: int) -> list[Event | Diff]:
        if snapshot:
            self.history_dropped += 1
            return []
        bar = msg["contents"]
        if bar["resolution"] != CANDLE_RESOLUTION:
            raise unknown_message("candle resolution", bar["resolution"])
        return [
            Candle(
                self.venue,
                self._unified(bar["ticker"]),
                CANDLE_INTERVAL,
                iso_to_ns(bar["startedAt"]),
                float(bar["open"]),
                float(bar["high"]),
                float(bar["low"]),
                float(bar["close"]),
                float(bar["baseTokenVolume"]),
                False,
                None,
                recv_ns,
            )
        ]


def _message_id(msg: dict[str, Any]) -> int:
    message_id = msg["message_id"]
    if message_id.__class__ is not int:
        raise TypeError(f"message_id must be an integer, not {message_id!r}")
    return int(message_id)


def _set_level(
    own: list[float], other: list[float], other_changes: dict[float, Any], price: float, size: float, *, bid: bool
) -> int:
    """Record ``price``'s new ``size`` in ``own`` (a side's ascending prices)
    and delete the levels of ``other`` it crosses (into ``other_changes``).
    Returns how many levels were deleted."""
    i = bisect_left(own, price)
    present = i < len(own) and own[i] == price
    if size == 0.0:
        if present:
            del own[i]
        return 0
    if not present:
        own.insert(i, price)
    if not other:
        return 0
    if bid:
        if other[0] > price:
            return 0
        cut = bisect_right(other, price)
        crossed = other[:cut]
        del other[:cut]
    else:
        if other[-1] < price:
            return 0
        cut = bisect_left(other, price)
        crossed = other[cut:]
        del other[cut:]
    for level in crossed:
        other_changes[level] = 0.0
    return len(crossed)
