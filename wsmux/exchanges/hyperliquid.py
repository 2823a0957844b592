"""Hyperliquid public market data: :class:`HyperliquidAdapter` (venue id ``"hyperliquid"``).

Venue rules come from the wsmux fact sheet ``shared/exchanges/hyperliquid.md``
(which cites the Hyperliquid API docs, the GoldRush mirror and the
@nktkas/hyperliquid SDK types). Each rule is restated where it is enforced:

* **Endpoint.** ``wss://api.hyperliquid.xyz/ws`` (testnet
  ``wss://api.hyperliquid-testnet.xyz/ws``); REST ``POST
  https://api.hyperliquid.xyz/info`` with a JSON body (``{"type":"meta"}``
  lists the perpetuals, ``{"type":"spotMeta"}`` the spot tokens and pairs).
  No compression.
* **Symbols.** Perpetuals: ``BTC-USD-PERP`` is the coin ``BTC``
  (Hyperliquid perps are USDC-margined and priced in USD; wsmux names the
  quote ``USD``, like dYdX). Spot: ``HYPE-USDC`` is the pair's coin, which is
  ``@<index>`` (the pair's ``index`` in ``spotMeta.universe``) or, for the one
  legacy pair, its name ``PURR/USDC``. The base and quote names come from the
  pair's ``tokens`` ([base, quote] token indices) in ``spotMeta.tokens``, so a
  spot symbol can only be spelled once that list is known
  (:meth:`HyperliquidAdapter.use_instruments`): without it a spot symbol
  raises :class:`~wsmux.errors.UnknownSymbol` saying so, never a guessed
  coin. Coins and tokens whose name is not upper case letters and digits
  (``kPEPE``, builder-deployed ``xyz:TSLA``) have no unified name and are
  left out of the instruments, as are two pairs with the same token names.
* **Subscribing.** One subscription per message:
  ``{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}``,
  acknowledged by ``{"channel":"subscriptionResponse","data":{...}}``;
  ``"method":"unsubscribe"`` with the same body cancels. A refusal is
  ``{"channel":"error","data":"<text>"}`` (shape UNCONFIRMED: a dict ``data``
  is read too) → :class:`~wsmux.errors.SubscriptionRejected` when the text is
  about a subscription, else :class:`~wsmux.errors.RemoteError`.
* **Keep-alive.** The server closes a connection that sent nothing for 60 s:
  wsmux sends ``{"method":"ping"}`` every 30 s; the ``{"channel":"pong"}``
  reply is ignored.
* **Limits (per IP).** 100 connections, 1000 subscriptions, 2000 client
  messages a minute across connections (wsmux paces 30 a second).
* **Book (``l2Book``).** Every message is the complete aggregated top of the
  book, at most 20 levels a side, best first (``{"px","sz","n"}``), with the
  block ``time`` (ms). No diffs, no sequence, no checksum. The first message
  of a book is delivered as a :class:`~wsmux.BookSnapshot`; each later one as
  a :class:`~wsmux.book.Diff` against the previous (levels that left the top
  20 are deleted), see :mod:`wsmux.exchanges._snapshots`. A lost message
  heals with the next one, but nothing lets a client prove it saw every
  block: the integrity level is ``UNVERIFIABLE`` (crossed books are still
  caught). Deeper books are not available on the public feed; a smaller
  subscription depth is cut from each message before diffing.
* **Quotes (``bbo``).** ``data.bbo = [bid, ask]``, either may be ``null``
  (that side is ``nan``).
* **Trades (``trades``).** ``side`` is the aggressor's (``B`` buy, ``A``
  sell); ``tid`` is unique but not contiguous (no trade-id gap check).
  Liquidation fills are not flagged, and there is no public liquidation
  channel.
* **Funding and open interest (``activeAssetCtx``).** ``ctx.funding`` (hourly
  rate), ``ctx.markPx``, ``ctx.openInterest`` (in the coin). No timestamp:
  the events have ``ts=None``; the next funding time is not sent.
* **Spot.** Books, quotes, trades and candles as for perpetuals, under the
  pair's coin (``@107``); sizes are in the base token. ``activeAssetCtx``
  (funding, open interest) is for perpetuals only.
* **Candles (``candle``, interval ``1m``).** ``t`` open time, ``o/h/l/c``,
  ``v`` volume in the coin. The forming candle is pushed repeatedly with no
  "closed" flag, so every :class:`~wsmux.Candle` has ``closed=False``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from wsmux._json import JSONDecodeError, dumps, loads
from wsmux.adapter import Adapter, Heartbeat, HttpRequest, Limits, Outgoing
from wsmux.book import Continuity, Diff, SnapshotSource, SyncRule
from wsmux.errors import (
    ConfigError,
    MalformedMessage,
    RemoteError,
    SubscriptionRejected,
    UnknownChannel,
    UnknownSymbol,
    WsmuxError,
    unknown_message,
)
from wsmux.exchanges._snapshots import SnapshotDiffer
from wsmux.model import Candle, Channel, Event, Funding, Instrument, OpenInterest, Quote, Side, Trade
from wsmux.subscriptions import Subscription, parse_symbol

__all__ = ["BOOK_DEPTH", "HyperliquidAdapter", "hyperliquid_coin", "spot_instruments"]

BOOK_DEPTH = 20
"""Levels per side of every ``l2Book`` message (hyperliquid.md, "Book handling")."""

CANDLE_INTERVAL = "1m"
_MS = 1_000_000  # ns per ms
_NAN = math.nan
_TAKER = {"B": Side.BUY, "A": Side.SELL}
_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)

_Handler = Callable[[Any, int], Sequence[Event | Diff]]
_PERP_ONLY = frozenset({Channel.FUNDING, Channel.OPEN_INTEREST})
_META = b'{"type":"meta"}'
_SPOT_META = b'{"type":"spotMeta"}'


def hyperliquid_coin(symbol: str, spot: dict[str, str] | None = None) -> str:
    """The coin of a unified symbol: ``BTC-USD-PERP`` → ``BTC`` (perpetuals
    are named by coin), a spot pair ``HYPE-USDC`` → its coin in ``spot``
    (unified → coin, from :func:`spot_instruments`), e.g. ``@107``.

    Raises:
        UnknownSymbol: not a USD perpetual nor a spot pair of ``spot``; for a
            spot symbol without ``spot`` the message says the ``spotMeta``
            list is needed.
    """
    base, quote, kind = parse_symbol(symbol)
    if kind is None:
        coin = spot.get(symbol) if spot else None
        if coin is not None:
            return coin
        if not spot:
            raise UnknownSymbol(
                f"hyperliquid spot coins are numbered ('@107'): {symbol!r} can only be spelled from the venue's "
                "spotMeta instrument list, which is not loaded (use Multiplexer.asubscribe() or "
                "load_instruments() with validate_symbols on, or Adapter.use_instruments())",
                venue="hyperliquid",
                symbol=symbol,
            )
        raise UnknownSymbol(f"hyperliquid lists no spot pair {symbol!r}", venue="hyperliquid", symbol=symbol)
    if kind != "PERP" or quote != "USD":
        raise UnknownSymbol(
            "hyperliquid maps perpetuals named BASE-USD-PERP (e.g. 'BTC-USD-PERP') and spot pairs "
            f"BASE-QUOTE (e.g. 'HYPE-USDC'), not {symbol!r}",
            venue="hyperliquid",
            symbol=symbol,
        )
    return base


def _unified_name(name: Any) -> bool:
    """Whether a venue coin or token name can be part of a unified symbol."""
    return name.__class__ is str and name.isascii() and name.isalnum() and name.isupper()


def _lot(decimals: Any) -> float:
    """The size step 10^-``szDecimals``."""
    if decimals.__class__ is not int or not 0 <= decimals <= 18:
        raise ValueError(f"szDecimals {decimals!r}")
    return float(f"1e-{decimals}")


def spot_instruments(venue: str, meta: dict[str, Any]) -> list[Instrument]:
    """The spot pairs of a ``spotMeta`` answer (``{"tokens": [{"name",
    "szDecimals", "index"}], "universe": [{"name", "index", "tokens": [base,
    quote]}]}``): ``BASE-QUOTE`` with the pair's coin as ``native``
    (``PURR/USDC`` keeps its name, every other pair is ``@<index>``) and the
    base token's size step as lot. A token is found by its ``index`` field
    (its list position when it has none). Pairs whose token names cannot be
    unified, and pairs that would share a unified name, are left out."""
    tokens = {t.get("index", position): t for position, t in enumerate(meta["tokens"])}
    found: dict[str, Instrument] = {}
    clashes: set[str] = set()
    for pair in meta["universe"]:
        base_index, quote_index = pair["tokens"]
        base, quote = tokens[base_index], tokens[quote_index]
        if not (_unified_name(base["name"]) and _unified_name(quote["name"])):
            continue
        symbol = f"{base['name']}-{quote['name']}"
        index = pair["index"]
        if index.__class__ is not int:
            raise TypeError(f"pair index {index!r}")
        coin = "PURR/USDC" if pair["name"] == "PURR/USDC" else f"@{index}"
        if symbol in found:
            clashes.add(symbol)
        found[symbol] = Instrument(venue, symbol, coin, "spot", None, _lot(base["szDecimals"]), None)
    return [i for s, i in found.items() if s not in clashes]


class HyperliquidAdapter(Adapter):
    """Hyperliquid perpetuals and spot pairs (``wss://api.hyperliquid.xyz/ws``), venue id ``"hyperliquid"``.

    Channels: books (``l2Book``, top 20), quotes (``bbo``), trades, funding and
    open interest (``activeAssetCtx``, perpetuals only), one-minute candles.
    Spot symbols need the ``spotMeta`` list (:meth:`use_instruments`). See the module
    docstring for the rules (sheet: ``shared/exchanges/hyperliquid.md``).
    """

    venue: ClassVar[str] = "hyperliquid"
    channels: ClassVar[frozenset[Channel]] = frozenset(
        {Channel.BOOK, Channel.QUOTES, Channel.TRADES, Channel.FUNDING, Channel.OPEN_INTEREST, Channel.CANDLES}
    )
    default_url: ClassVar[str] = "wss://api.hyperliquid.xyz/ws"
    default_rest_url: ClassVar[str] = "https://api.hyperliquid.xyz"
    backup_urls: ClassVar[tuple[str, ...]] = ()
    # hyperliquid.md, "Keep-alive / limits": per IP 100 connections, 1000
    # subscriptions, 2000 client messages a minute; one subscription per message.
    # The connection-attempt window is not documented: 100 a minute is wsmux's choice.
    limits: ClassVar[Limits] = Limits(
        streams_per_connection=1000,
        topics_per_message=1,
        messages_per_second=30.0,
        connections_per_window=100,
        connection_window=60.0,
    )
    # hyperliquid.md: closed after 60 s without a client message; {"method":"ping"} → {"channel":"pong"}.
    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"method":"ping"}',
        ping_interval=30.0,
        ws_ping_interval=None,
        silence_timeout=60.0,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url)
        self._symbols: dict[str, str] = {}  # coin -> unified (learned at subscribe)
        self._spot: dict[str, str] = {}  # unified spot pair -> coin (learned from spotMeta)
        self._depths: dict[str, int] = {}  # unified -> subscribed book depth
        # Per-connection state:
        self._books = SnapshotDiffer(self.venue)
        self._ctx_channels: dict[str, set[Channel]] = {}  # coin -> FUNDING/OPEN_INTEREST wanted
        self._handlers: dict[str, _Handler] = {
            "l2Book": self._l2book,
            "trades": self._trades,
            "bbo": self._bbo,
            "activeAssetCtx": self._asset_ctx,
            "candle": self._candle,
        }

    def reset(self) -> None:
        self._books.forget()
        self._ctx_channels.clear()

    # --- symbols and books ----------------------------------------------------------

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        """``BTC-USD-PERP`` → ``BTC``, ``HYPE-USDC`` → ``@107`` once the spot
        list is known (see :func:`hyperliquid_coin`)."""
        return hyperliquid_coin(symbol, self._spot)

    def check(self, subscription: Subscription) -> None:
        super().check(subscription)
        if subscription.channel in _PERP_ONLY and parse_symbol(subscription.symbol)[2] is None:
            raise UnknownChannel(
                f"hyperliquid serves {subscription.channel.value} for perpetuals only, not {subscription.symbol!r}"
            )
        depth = subscription.depth
        if subscription.channel is Channel.BOOK and depth is not None and depth > BOOK_DEPTH:
            raise ConfigError(f"hyperliquid serves at most {BOOK_DEPTH} book levels per side, not {depth}")

    def _unified(self, coin: Any) -> str:
        symbol = self._symbols.get(coin)
        if symbol is None:  # a spot coin of an unknown pair ('@999') is a well-formed message we cannot name
            raise unknown_message("coin (never subscribed)", coin)
        return symbol

    def book_rule(self, symbol: str) -> SyncRule:
        """Hyperliquid's book rule (hyperliquid.md, "Book handling"): every
        message is a full top-20 snapshot, turned into diffs by the adapter;
        no sequence, no checksum (``UNVERIFIABLE``); crossed books are broken.
        A smaller subscribed depth is applied by the adapter, to each
        message before diffing (see :meth:`book_rule_for`)."""
        return SyncRule(snapshot=SnapshotSource.STREAM, continuity=Continuity.NONE)

    def book_rule_for(self, subscription: Subscription) -> SyncRule:
        """The book rule for ``subscription``. A depth below 20 keeps the best
        ``depth`` levels of each message: the adapter cuts every message
        before diffing, so a level moving up into the kept range is sent
        (trimming the client's book instead would lose it)."""
        self._depths[subscription.symbol] = min(subscription.depth or BOOK_DEPTH, BOOK_DEPTH)
        return self.book_rule(subscription.symbol)

    def resync_messages(self, subscription: Subscription) -> list[Outgoing]:
        """Forget the book's last snapshot (the next message rebuilds it whole)
        and subscribe again, which makes the venue send the book at once."""
        self._books.forget(subscription.symbol)
        return super().resync_messages(subscription)

    # --- reference data ---------------------------------------------------------------

    def instruments_request(self) -> HttpRequest:
        """``POST /info`` with ``{"type":"meta"}`` (hyperliquid.md, "Endpoints")."""
        return HttpRequest(f"{self.rest_url}/info", method="POST", body=_META)

    def instruments_requests(self) -> list[HttpRequest]:
        """``POST /info`` with ``{"type":"meta"}`` (perpetuals) and with
        ``{"type":"spotMeta"}`` (spot pairs)."""
        return [self.instruments_request(), HttpRequest(f"{self.rest_url}/info", method="POST", body=_SPOT_META)]

    def parse_instruments(self, body: bytes) -> list[Instrument]:
        """The instruments of a ``meta`` or a ``spotMeta`` answer (a
        ``spotMeta`` answer has ``tokens``; see :func:`spot_instruments`).
        Perpetuals: ``universe[].name`` and ``szDecimals`` (lot =
        10^-szDecimals); delisted coins and coins with no unified name are
        left out. The tick depends on the price (5 significant figures), so
        it is not given.

        Raises:
            MalformedMessage: the body is neither answer.
        """
        try:
            meta = loads(body)
            if "tokens" in meta:
                return spot_instruments(self.venue, meta)
            out: list[Instrument] = []
            for entry in meta["universe"]:
                name = entry["name"]
                if entry.get("isDelisted") or not _unified_name(name):
                    continue
                out.append(Instrument(self.venue, f"{name}-USD-PERP", name, "perp", None, _lot(entry["szDecimals"])))
            return out
        except (JSONDecodeError, *_ERRORS) as exc:
            raise MalformedMessage(f"hyperliquid: bad meta or spotMeta response: {exc!r}", body) from exc

    def use_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Learn the coins of the spot pairs (``HYPE-USDC`` → ``@107``):
        spot symbols can be subscribed from then on."""
        self._spot.update({i.symbol: i.native for i in instruments if i.kind == "spot" and i.venue == self.venue})

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return self._requests("unsubscribe", subscriptions)

    def _subscription(self, op: str, sub: Subscription, coin: str) -> dict[str, str] | None:
        channel = sub.channel
        if channel is Channel.BOOK:
            self._books.forget(sub.symbol)  # the first message after (un)subscribing is delivered whole
            return {"type": "l2Book", "coin": coin}
        if channel is Channel.QUOTES:
            return {"type": "bbo", "coin": coin}
        if channel is Channel.TRADES:
            return {"type": "trades", "coin": coin}
        if channel is Channel.CANDLES:
            return {"type": "candle", "coin": coin, "interval": CANDLE_INTERVAL}
        # FUNDING and OPEN_INTEREST share activeAssetCtx: subscribe it once per coin.
        wanted = self._ctx_channels.setdefault(coin, set())
        if op == "subscribe":
            first = not wanted
            wanted.add(channel)
            return {"type": "activeAssetCtx", "coin": coin} if first else None
        if channel not in wanted:
            return None
        wanted.discard(channel)
        return None if wanted else {"type": "activeAssetCtx", "coin": coin}

    def _requests(self, op: str, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sub in subscriptions:
            self.check(sub)
            coin = self.to_native(sub.symbol, sub.channel)
            self._symbols[coin] = sub.symbol
            body = self._subscription(op, sub, coin)
            if body is not None:
                message = dumps({"method": op, "subscription": body})
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
        channel: Any = msg.get("channel")
        try:
            handler = self._handlers.get(channel)
            if handler is not None:
                return handler(msg["data"], recv_ns)
            if channel in ("pong", "subscriptionResponse"):
                return []
            if channel == "error":
                raise self._error(msg.get("data"))
            raise unknown_message("channel", channel, frame)
        except MalformedMessage as exc:
            if exc.frame is None:  # the same class (UnknownMessage stays one), with the frame
                raise type(exc)(exc.reason, frame) from exc
            raise
        except WsmuxError:
            raise
        except _ERRORS as exc:
            raise MalformedMessage(f"hyperliquid: bad {channel} message: {exc!r}", frame) from exc

    @staticmethod
    def _error(data: Any) -> RemoteError:
        if data.__class__ is dict:
            data = data.get("error") or data.get("message") or dumps(data)
        text = str(data) or "no reason given"
        if "subscri" in text.lower():
            return SubscriptionRejected(f"hyperliquid refused a subscription: {text[:300]}")
        return RemoteError(f"hyperliquid error: {text[:300]}")

    def _l2book(self, data: Any, recv_ns: int) -> list[Event | Diff]:
        symbol = self._unified(data["coin"])
        raw_bids, raw_asks = data["levels"]
        depth = self._depths.get(symbol)
        if depth is not None and depth < BOOK_DEPTH:  # levels are best first
            raw_bids = raw_bids[:depth]
            raw_asks = raw_asks[:depth]
        # px -> sz as the venue wrote them; the book sync converts and checks the changed ones
        bids = {level["px"]: level["sz"] for level in raw_bids}
        asks = {level["px"]: level["sz"] for level in raw_asks}
        event = self._books.update(symbol, bids, asks, _ms(data["time"]), recv_ns)
        return [] if event is None else [event]

    def _trades(self, data: Any, recv_ns: int) -> list[Event]:
        venue = self.venue
        unified = self._unified
        return [
            Trade(
                venue,
                unified(entry["coin"]),
                float(entry["px"]),
                float(entry["sz"]),
                _TAKER[entry["side"]],
                str(entry["tid"]),
                _ms(entry["time"]),
                recv_ns,
            )
            for entry in data
        ]

    def _bbo(self, data: Any, recv_ns: int) -> list[Event]:
        bid, ask = data["bbo"]
        return [
            Quote(
                self.venue,
                self._unified(data["coin"]),
                _NAN if bid is None else float(bid["px"]),
                _NAN if bid is None else float(bid["sz"]),
                _NAN if ask is None else float(ask["px"]),
                _NAN if ask is None else float(ask["sz"]),
                _ms(data["time"]),
                recv_ns,
            )
        ]

    def _asset_ctx(self, data: Any, recv_ns: int) -> list[Event]:
        coin = data["coin"]
        symbol = self._unified(coin)
        ctx = data["ctx"]
        wanted = self._ctx_channels.get(coin) or (Channel.FUNDING, Channel.OPEN_INTEREST)
        out: list[Event] = []
        if Channel.FUNDING in wanted:
            mark = ctx.get("markPx")
            out.append(Funding(self.venue, symbol, float(ctx["funding"]), None, _float_or_none(mark), None, recv_ns))
        if Channel.OPEN_INTEREST in wanted:
            out.append(OpenInterest(self.venue, symbol, float(ctx["openInterest"]), None, recv_ns))
        return out

    def _candle(self, data: Any, recv_ns: int) -> list[Event]:
        return [
            Candle(
                self.venue,
                self._unified(data["s"]),
                data["i"],
                _ms(data["t"]),
                float(data["o"]),
                float(data["h"]),
                float(data["l"]),
                float(data["c"]),
                float(data["v"]),
                False,
                None,
                recv_ns,
            )
        ]


def _ms(value: Any) -> int:
    """Hyperliquid millisecond time (an integer) to integer ns."""
    if value.__class__ is not int:
        raise TypeError(f"time must be integer milliseconds, not {value!r}")
    return value * _MS


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
