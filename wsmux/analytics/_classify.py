"""Trade classification: who was the aggressor, inferred three ways and
compared with the side the venue reports.

* Tick rule: a trade above the last different trade price is a buy, below
  it a sell; at the same price it takes the previous trade's class (a
  zero tick); the first trades, before any price change, are unclassified.
* Quote rule: a trade above the mid (of the best bid and offer at trade
  time) is a buy, below it a sell, at the mid unclassified.
* Lee-Ready: the quote rule, and the tick rule for trades at the mid.

Reference: C. M. C. Lee and M. J. Ready, "Inferring Trade Direction from
Intraday Data", Journal of Finance 46(2), 1991. No quote delay is applied:
wsmux events carry venue timestamps in order of arrival, so the quote in
force is the last one before the trade.

The BBO comes from the events the classifier is fed — :class:`~wsmux.Quote`
or the book (:class:`~wsmux.BookSnapshot`/:class:`~wsmux.BookUpdate`
applied to a private :class:`~wsmux.OrderBook`) — or, with ``book=``, from a
live :class:`~wsmux.BookView` (``Multiplexer.book``/``Replay.book``) read at
each trade. The book's validity is followed with
:class:`~wsmux.analytics.BookValidity`: while it is invalid or stale the
classifier emits :class:`~wsmux.analytics.Suspended` (once) and classifies by
the tick rule only (``quote`` and ``lee_ready`` are None, ``bid``/``ask``
nan), then :class:`~wsmux.analytics.Resumed`.

Agreement with the venue's reported aggressor side is counted per rule over
the trades where both are known; :meth:`TradeClassifier.summary` (and
:meth:`~TradeClassifier.flush`) return a :class:`ClassificationSummary`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wsmux.analytics._operator import NOTHING, AnalyticEvent, BookValidity, Operator
from wsmux.book import OrderBook
from wsmux.errors import ConfigError
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Disconnected,
    Event,
    Gap,
    Quote,
    Resynced,
    Side,
    Stale,
    Trade,
    event,
)

if TYPE_CHECKING:
    from wsmux.multiplexer import BookView

__all__ = ["ClassifiedTrade", "ClassificationSummary", "TradeClassifier"]

_BUY, _SELL = Side.BUY, Side.SELL


@event
class ClassifiedTrade(AnalyticEvent):
    """A trade with its inferred aggressor side by each rule.

    Attributes:
        reported: the side the venue reports (None where it does not).
        tick: by the tick rule; quote: by the quote rule; lee_ready: by Lee-Ready
            (None: unclassified, or no valid book for the quote-based rules).
        bid: best bid at trade time (nan when none or the book is unusable).
        ask: best ask at trade time.
    """

    venue: str
    symbol: str
    price: float
    size: float
    trade_id: str | None
    reported: Side | None
    tick: Side | None
    quote: Side | None
    lee_ready: Side | None
    bid: float
    ask: float
    ts: int | None
    recv_ns: int


@event
class ClassificationSummary(AnalyticEvent):
    """How often each rule agreed with the venue's reported side.

    ``*_compared``: trades where the venue reports a side and the rule gave one;
    ``*_agree``: of those, how many matched; rates are agree / compared (nan if none).
    """

    venue: str
    symbol: str
    trades: int
    tick_compared: int
    tick_agree: int
    quote_compared: int
    quote_agree: int
    lee_ready_compared: int
    lee_ready_agree: int
    tick_rate: float
    quote_rate: float
    lee_ready_rate: float
    ts: int | None
    recv_ns: int


class TradeClassifier(Operator):
    """Classify one instrument's trades by the tick rule, quote rule and Lee-Ready.

    Args:
        book: a live :class:`~wsmux.BookView` to read the BBO from at each
            trade (instead of building one from the book events fed).
        max_age_ns: suspend the quote rules when the book's last update is
            more than this much exchange time older than the trade.

    Cost: O(1) per trade; book events cost an :class:`~wsmux.OrderBook`
    update (unless ``book`` is given).
    """

    accepts = (Trade, Quote, BookSnapshot, BookUpdate, Gap, Resynced, Stale, Disconnected)

    def __init__(self, *, book: BookView | None = None, max_age_ns: int | None = None) -> None:
        self.name = "classify"
        self._view = book
        self._book = OrderBook()
        self._validity = BookValidity(self.name, max_age_ns=max_age_ns)
        self.reset()

    def reset(self) -> None:
        self._book.clear()
        self._validity.reset()
        self._bid = self._ask = math.nan
        self._last_price = math.nan
        self._last_tick: Side | None = None
        self._venue = self._symbol = ""
        self._last_ts: int | None = None
        self._last_recv = 0
        self.counts = [0, 0, 0, 0, 0, 0, 0]
        """trades, then (compared, agree) for tick, quote, Lee-Ready."""

    def _bind(self, venue: str, symbol: str) -> None:
        if self._venue:
            raise ConfigError(
                f"operator {self.name} follows {self._venue} {self._symbol} but was fed {venue} {symbol}: "
                "use one operator per instrument (wsmux.analytics.PerInstrument)"
            )
        self._venue, self._symbol = venue, symbol

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        cls = type(event)
        if cls is Trade:
            return self._trade(event)  # type: ignore[arg-type]
        if cls is Quote or cls is BookUpdate or cls is BookSnapshot:
            market: Quote = event  # type: ignore[assignment]
            if market.symbol != self._symbol or market.venue != self._venue:
                self._bind(market.venue, market.symbol)
            if self._view is None:
                if cls is Quote:
                    self._bid, self._ask = market.bid_price, market.ask_price
                else:
                    book: BookUpdate = event  # type: ignore[assignment]
                    if cls is BookSnapshot:
                        self._book.apply_snapshot(book.bids, book.asks)
                    else:
                        self._book.apply_update(book.bids, book.asks)
                    top = self._book.bbo()
                    self._bid, self._ask = top[0], top[2]
        elif cls is Gap and self._view is None:
            self._book.clear()
        changed = self._validity.observe(event)
        return NOTHING if changed is None else (changed,)

    def _trade(self, trade: Trade) -> Sequence[AnalyticEvent]:
        if trade.symbol != self._symbol or trade.venue != self._venue:
            self._bind(trade.venue, trade.symbol)
        price = trade.price
        # tick rule
        last = self._last_price
        if price > last:
            tick: Side | None = _BUY
        elif price < last:
            tick = _SELL
        else:
            tick = self._last_tick  # zero tick (or the first trade: None)
        self._last_price = price
        self._last_tick = tick
        # quote rule, Lee-Ready
        validity = self._validity
        view = self._view
        report: AnalyticEvent | None = None
        if view is not None:
            report = validity.mark(view.valid, trade.ts, trade.recv_ns)
            bid, _, ask, _ = view.bbo()
        else:
            bid, ask = self._bid, self._ask
        suspended = validity.require(trade.ts, trade.recv_ns)
        if suspended is not None:
            report = suspended
        if validity.valid:
            mid = (bid + ask) * 0.5
            if price > mid:
                quote: Side | None = _BUY
            elif price < mid:
                quote = _SELL
            else:
                quote = None  # at the mid, or no two-sided quote (nan)
            lee_ready = quote if quote is not None or math.isnan(mid) else tick
        else:
            quote = lee_ready = None
            bid = ask = math.nan
        reported = trade.side
        counts = self.counts
        counts[0] += 1
        if reported is not None:
            if tick is not None:
                counts[1] += 1
                counts[2] += tick is reported
            if quote is not None:
                counts[3] += 1
                counts[4] += quote is reported
            if lee_ready is not None:
                counts[5] += 1
                counts[6] += lee_ready is reported
        self._last_ts, self._last_recv = trade.ts, trade.recv_ns
        out = ClassifiedTrade(trade.venue, trade.symbol, price, trade.size, trade.trade_id, reported, tick, quote,
                              lee_ready, bid, ask, trade.ts, trade.recv_ns)  # fmt: skip
        return (out,) if report is None else (report, out)

    def summary(self) -> ClassificationSummary:
        """Agreement with the venue's reported side so far."""
        c = self.counts

        def rate(agree: int, compared: int) -> float:
            return agree / compared if compared else math.nan

        return ClassificationSummary(
            self._venue, self._symbol, c[0], c[1], c[2], c[3], c[4], c[5], c[6],
            rate(c[2], c[1]), rate(c[4], c[3]), rate(c[6], c[5]), self._last_ts, self._last_recv,
        )  # fmt: skip

    def flush(self) -> Sequence[AnalyticEvent]:
        """The :class:`ClassificationSummary` (when any trade was classified)."""
        return (self.summary(),) if self.counts[0] else NOTHING
