"""What a caller asks for: (venue, channel, unified symbol).

Build subscriptions with the helpers::

    from wsmux import trades, book, quotes
    subs = [*trades("binance", "BTC-USDT", "ETH-USDT"), *book("kraken", "BTC-USD")]

Unified symbols are ``BASE-QUOTE`` for spot (``BTC-USDT``), ``BASE-QUOTE-PERP``
for perpetual swaps (``BTC-USDT-PERP``), ``BASE-QUOTE-YYYYMMDD`` for dated
futures. Symbols are checked for shape here; whether a venue lists them is the
adapter's business.

The string forms a user types are accepted too: a channel by its value
(``Subscription("binance", "trades", "BTC-USDT")``) and a whole subscription
as the CLI writes it, ``VENUE:CHANNEL:SYMBOL[,SYMBOL...]`` (:meth:`Subscription.parse`,
also accepted by :meth:`wsmux.Multiplexer.subscribe`).
"""

from __future__ import annotations

import difflib
import re

import attrs

from wsmux.errors import ConfigError, UnknownChannel, UnknownSymbol
from wsmux.model import Channel

__all__ = [
    "Subscription",
    "book",
    "candles",
    "funding",
    "l3",
    "liquidations",
    "open_interest",
    "parse_symbol",
    "quotes",
    "to_channel",
    "trades",
]

_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}(-(PERP|\d{8}))?$")


def parse_symbol(symbol: str) -> tuple[str, str, str | None]:
    """Split a unified symbol into ``(base, quote, kind)``.

    ``kind`` is ``None`` for spot, ``"PERP"`` for a perpetual swap or the
    expiry date ``"YYYYMMDD"`` of a dated future.

    Raises:
        UnknownSymbol: the symbol is not in the unified form.
    """
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise UnknownSymbol(
            f"bad symbol {symbol!r}: expected BASE-QUOTE, BASE-QUOTE-PERP or "
            "BASE-QUOTE-YYYYMMDD in upper case (e.g. 'BTC-USDT')"
        )
    parts = symbol.split("-")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _check_symbol(_inst: object, _attr: object, value: str) -> None:
    parse_symbol(value)


def to_channel(value: Channel | str) -> Channel:
    """``value`` as a :class:`~wsmux.Channel`: a Channel, or its value or
    name as text (``"trades"``, ``"TRADES"``).

    Raises:
        UnknownChannel: no channel has that name (the message lists them).
    """
    if isinstance(value, Channel):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for channel in Channel:
            if text in (channel.value, channel.name.lower()):
                return channel
    names = [c.value for c in Channel]
    close = difflib.get_close_matches(str(value).lower(), names, n=1) if isinstance(value, str) else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(repr(n) for n in names)
    raise UnknownChannel(f"unknown channel {value!r}: {hint}use a wsmux.Channel or one of {listed}")


@attrs.frozen(slots=True)
class Subscription:
    """One stream of market data: a channel of one symbol on one venue.

    Attributes:
        venue: the venue id, e.g. ``"binance"``.
        channel: what kind of data.
        symbol: the unified symbol, e.g. ``"BTC-USDT"``.
        depth: for ``Channel.BOOK``, the number of levels per side to keep
            (``None``: the venue's full/default depth).
    """

    venue: str
    channel: Channel = attrs.field(converter=to_channel)
    symbol: str = attrs.field(validator=_check_symbol)
    depth: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.depth is not None and (not isinstance(self.depth, int) or self.depth <= 0):
            raise ConfigError(f"depth must be a positive int or None, not {self.depth!r}")

    def __str__(self) -> str:
        return f"{self.venue}:{self.channel.value}:{self.symbol}"

    @classmethod
    def parse(cls, text: str) -> tuple[Subscription, ...]:
        """Subscriptions from the CLI form ``VENUE:CHANNEL:SYMBOL[,SYMBOL...]``,
        e.g. ``"binance:trades:BTC-USDT,ETH-USDT"``.

        Raises:
            ConfigError: ``text`` does not have three ``:``-separated parts.
            UnknownChannel, UnknownSymbol: a bad channel or symbol.
        """
        parts = text.split(":") if isinstance(text, str) else []
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ConfigError(
                f"not a subscription: {text!r}; write VENUE:CHANNEL:SYMBOL[,SYMBOL...], "
                "e.g. 'binance:trades:BTC-USDT', or use wsmux.trades(...)/wsmux.book(...)"
            )
        venue, channel, symbols = (p.strip() for p in parts)
        return tuple(cls(venue, to_channel(channel), s.strip()) for s in symbols.split(",") if s.strip())


def _make(channel: Channel, venue: str, symbols: tuple[str, ...]) -> tuple[Subscription, ...]:
    if not symbols:
        raise ConfigError(f"{channel.value}({venue!r}) needs at least one symbol")
    return tuple(Subscription(venue, channel, s) for s in symbols)


def trades(venue: str, *symbols: str) -> tuple[Subscription, ...]:
    """Trade subscriptions for ``symbols`` on ``venue``."""
    return _make(Channel.TRADES, venue, symbols)


def quotes(venue: str, *symbols: str) -> tuple[Subscription, ...]:
    """Best bid/offer subscriptions."""
    return _make(Channel.QUOTES, venue, symbols)


def book(venue: str, *symbols: str, depth: int | None = None) -> tuple[Subscription, ...]:
    """Full-depth L2 book subscriptions (books are kept in sync by wsmux)."""
    _make(Channel.BOOK, venue, symbols)  # validates
    return tuple(Subscription(venue, Channel.BOOK, s, depth) for s in symbols)


def l3(venue: str, *symbols: str) -> tuple[Subscription, ...]:
    """Order-by-order (L3) book subscriptions."""
    return _make(Channel.L3, venue, symbols)


def funding(venue: str, *symbols: str) -> tuple[Subscription, ...]:
    """Funding-rate subscriptions (perpetual swaps)."""
    return _make(Channel.FUNDING, venue, symbols)


def open_interest(venue: str, *symbols: str) -> tuple[Subscription, ...]:
    """Open-interest subscriptions."""
    return _make(Channel.OPEN_INTEREST, venue, symbols)


def candles(venue: str, *symbols: str) -> tuple[Subscription, ...]:
    """One-minute candle subscriptions (:class:`~wsmux.Candle` events)."""
    return _make(Channel.CANDLES, venue, symbols)


def liquidations(venue: str, *symbols: str) -> tuple[Subscription, ...]:
    """Liquidation subscriptions."""
    return _make(Channel.LIQUIDATIONS, venue, symbols)
