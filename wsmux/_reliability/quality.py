"""QualityGate: cheap sanity checks of normalized events on the hot path.

Theory of operation
-------------------
:meth:`QualityGate.check` looks at one event and returns a :class:`Quality`
verdict: ``Quality.OK`` or the first rule it breaks. The verdict is an enum
member, so the OK path allocates nothing; only a bad verdict touches the
per-``(venue, symbol)`` counters. The gate never drops or changes anything:
the caller decides (see "Suggested handling").

Rules, in the order they are checked:

* prices (``Trade``, ``Liquidation``, present sides of a ``Quote``, ``ADD``/
  ``CHANGE`` order updates, and book levels when ``check_levels``) must be
  finite and > 0 → else ``BAD_PRICE``;
* sizes must be finite and ≥ 0 (``nan`` is bad) → else ``BAD_SIZE``. A
  ``Quote`` side whose price is ``nan`` is "no order" and is not checked,
  and a quote size may be ``nan`` beside a real price: "size unknown" (the
  2021 Coinbase ``ticker`` sends best bid/ask without sizes);
* other numbers (``Funding.rate`` finite, ``OpenInterest`` finite and ≥ 0)
  → else ``BAD_VALUE``;
* a ``Quote`` with both sides present must not be crossed: ``bid >= ask``
  (``bid > ask`` with ``allow_locked``) → ``CROSSED_QUOTE``;
* the venue timestamp ``ts`` (when present) must not be more than
  ``future_s`` ahead of ``recv_ns`` (``TS_FUTURE``: a venue clock or
  conversion bug, e.g. µs read as ms) nor more than ``past_s`` behind it
  (``TS_PAST``: a stuck feed or replayed history). Trades use
  ``trade_past_s`` when set, because several venues re-send minutes-old
  trades after a subscribe (see ``../exchanges/README.md``);
* events carrying ``seq`` (``Trade``, ``Quote``, ``BookUpdate``,
  ``OrderUpdate``) must not go backwards per ``(venue, symbol, class)``:
  ``seq < last seq`` → ``SEQ_BACKWARDS`` (equal is allowed: several events
  of one message may share it). The last seq is updated even on a bad
  verdict, so a venue that restarts its numbering (Bybit ``u=1``) is
  flagged once, not forever. A ``BookSnapshot`` (``L3Snapshot``) sets the
  baseline of its book's updates.

Sequence state is per gate: use one gate per connection (a connection's
``seq`` may be numbered per connection) and call :meth:`QualityGate.reset_seq`
when the connection (re)opens.

Suggested handling (the multiplexer's call): ``BAD_PRICE``, ``BAD_SIZE``,
``BAD_VALUE``, ``CROSSED_QUOTE`` — drop, count, report an ``Error`` and feed
a :class:`~wsmux._reliability.breaker.CircuitBreaker`; ``SEQ_BACKWARDS`` —
drop (stale) and count; ``TS_FUTURE``/``TS_PAST`` — deliver and count (the
data may be fine and the clock wrong).

Knobs
-----
``future_s`` (5.0), ``past_s`` (60.0), ``trade_past_s`` (None: ``past_s``;
``math.inf`` disables the past check for trades), ``check_levels`` (False:
:class:`~wsmux.book.BookSync` already validates every level it applies; set
True when events bypass a book sync), ``allow_locked`` (False).

Costs
-----
O(1) per event except book events with ``check_levels`` (O(levels)):
a type dispatch, two or four float comparisons, one timestamp subtraction
and, for events with ``seq``, two dict lookups and a store. Nothing is
allocated that outlives the call unless the verdict is bad (or the first
event of a new symbol creates its ``seq`` slot); the only transient objects
are the ints of the timestamp subtraction. Measured (CPython 3.11, timeit):
about 0.3 µs per trade, 0.4 µs per quote.
"""

from __future__ import annotations

import enum
import math

from wsmux.errors import ConfigError
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Event,
    Funding,
    L3Snapshot,
    Levels,
    Liquidation,
    OpenInterest,
    OrderAction,
    OrderUpdate,
    Quote,
    Trade,
)

__all__ = ["Quality", "QualityGate"]

_INF = math.inf


class Quality(enum.Enum):
    """The verdict of :meth:`QualityGate.check`."""

    __hash__ = object.__hash__  # identity hash in C (members are singletons)

    OK = "ok"
    BAD_PRICE = "bad_price"
    """A price is not finite or not positive."""
    BAD_SIZE = "bad_size"
    """A size is negative, ``nan`` or infinite."""
    BAD_VALUE = "bad_value"
    """Another number (funding rate, open interest) is not finite or negative."""
    CROSSED_QUOTE = "crossed_quote"
    """A quote's bid is at or above its ask."""
    TS_FUTURE = "ts_future"
    """The venue timestamp is too far ahead of the receive time."""
    TS_PAST = "ts_past"
    """The venue timestamp is too far behind the receive time."""
    SEQ_BACKWARDS = "seq_backwards"
    """The sequence number went down."""

    @property
    def ok(self) -> bool:
        """True only for ``Quality.OK``."""
        return self is Quality.OK


class QualityGate:
    """Hot-path validation of normalized events (see the module docstring).

    Args:
        future_s: largest allowed ``ts - recv_ns``, seconds.
        past_s: largest allowed ``recv_ns - ts``, seconds.
        trade_past_s: ``past_s`` for trades (None: same as ``past_s``).
        check_levels: also check every level of book snapshots and updates.
        allow_locked: a quote with ``bid == ask`` is fine.

    Attributes:
        counts: per ``(venue, symbol)``, bad verdicts per reason.
        bad: total bad verdicts.
    """

    def __init__(
        self,
        *,
        future_s: float = 5.0,
        past_s: float = 60.0,
        trade_past_s: float | None = None,
        check_levels: bool = False,
        allow_locked: bool = False,
    ) -> None:
        for name, value in (("future_s", future_s), ("past_s", past_s), ("trade_past_s", trade_past_s)):
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be positive, not {value}")
        self.future_s = future_s
        self.past_s = past_s
        self.trade_past_s = trade_past_s
        self.check_levels = check_levels
        self.allow_locked = allow_locked
        # int thresholds: int-int comparisons are cheaper than int-float ones,
        # and comparing with the negated limit saves negating each drift
        self._future_ns = _ns(future_s)
        self._neg_past_ns = -_ns(past_s)
        self._neg_trade_past_ns = -_ns(trade_past_s if trade_past_s is not None else past_s)
        # venue -> symbol -> last seq, one map per event class
        self._trade_seq: dict[str, dict[str, int]] = {}
        self._quote_seq: dict[str, dict[str, int]] = {}
        self._book_seq: dict[str, dict[str, int]] = {}
        self._l3_seq: dict[str, dict[str, int]] = {}
        self.counts: dict[tuple[str, str], dict[Quality, int]] = {}
        self.bad = 0

    def check(self, event: Event) -> Quality:
        """The verdict for ``event`` (``Quality.OK`` or the first broken rule).

        O(1); O(levels) for book events with ``check_levels``.
        """
        cls = type(event)
        if cls is Trade:
            trade: Trade = event  # type: ignore[assignment]
            if not 0.0 < trade.price < _INF:
                return self._bad(trade.venue, trade.symbol, Quality.BAD_PRICE)
            if not 0.0 <= trade.size < _INF:
                return self._bad(trade.venue, trade.symbol, Quality.BAD_SIZE)
            ts = trade.ts
            if ts is not None:
                drift = ts - trade.recv_ns
                if drift > self._future_ns:
                    return self._bad(trade.venue, trade.symbol, Quality.TS_FUTURE)
                if drift < self._neg_trade_past_ns:
                    return self._bad(trade.venue, trade.symbol, Quality.TS_PAST)
            seq = trade.seq
            if seq is not None:
                per = self._trade_seq.get(trade.venue)
                if per is None:
                    return self._seq(self._trade_seq, trade.venue, trade.symbol, seq)
                last = per.get(trade.symbol)
                per[trade.symbol] = seq
                if last is not None and seq < last:
                    return self._bad(trade.venue, trade.symbol, Quality.SEQ_BACKWARDS)
            return Quality.OK
        if cls is Quote:
            quote: Quote = event  # type: ignore[assignment]
            bid = quote.bid_price
            ask = quote.ask_price
            if bid == bid:  # noqa: PLR0124 - not nan (nan: no order on that side)
                if not 0.0 < bid < _INF:
                    return self._bad(quote.venue, quote.symbol, Quality.BAD_PRICE)
                size = quote.bid_size
                if not 0.0 <= size < _INF and size == size:  # noqa: PLR0124 - nan: size unknown
                    return self._bad(quote.venue, quote.symbol, Quality.BAD_SIZE)
            if ask == ask:  # noqa: PLR0124
                if not 0.0 < ask < _INF:
                    return self._bad(quote.venue, quote.symbol, Quality.BAD_PRICE)
                size = quote.ask_size
                if not 0.0 <= size < _INF and size == size:  # noqa: PLR0124
                    return self._bad(quote.venue, quote.symbol, Quality.BAD_SIZE)
            if bid > ask or (bid == ask and not self.allow_locked):  # False when a side is nan
                return self._bad(quote.venue, quote.symbol, Quality.CROSSED_QUOTE)
            ts = quote.ts
            if ts is not None:
                drift = ts - quote.recv_ns
                if drift > self._future_ns:
                    return self._bad(quote.venue, quote.symbol, Quality.TS_FUTURE)
                if drift < self._neg_past_ns:
                    return self._bad(quote.venue, quote.symbol, Quality.TS_PAST)
            seq = quote.seq
            if seq is not None:
                per = self._quote_seq.get(quote.venue)
                if per is None:
                    return self._seq(self._quote_seq, quote.venue, quote.symbol, seq)
                last = per.get(quote.symbol)
                per[quote.symbol] = seq
                if last is not None and seq < last:
                    return self._bad(quote.venue, quote.symbol, Quality.SEQ_BACKWARDS)
            return Quality.OK
        if cls is BookUpdate:
            update: BookUpdate = event  # type: ignore[assignment]
            if self.check_levels:
                verdict = _levels(update.bids) or _levels(update.asks)
                if verdict is not None:
                    return self._bad(update.venue, update.symbol, verdict)
            verdict = self._ts(update.venue, update.symbol, update.ts, update.recv_ns)
            if verdict is not None:
                return verdict
            seq = update.seq
            if seq is not None:
                per = self._book_seq.get(update.venue)
                if per is None:
                    return self._seq(self._book_seq, update.venue, update.symbol, seq)
                last = per.get(update.symbol)
                per[update.symbol] = seq
                if last is not None and seq < last:
                    return self._bad(update.venue, update.symbol, Quality.SEQ_BACKWARDS)
            return Quality.OK
        if cls is OrderUpdate:
            order: OrderUpdate = event  # type: ignore[assignment]
            action = order.action
            if (action is OrderAction.ADD or action is OrderAction.CHANGE) and not 0.0 < order.price < _INF:
                return self._bad(order.venue, order.symbol, Quality.BAD_PRICE)
            if not 0.0 <= order.size < _INF:
                return self._bad(order.venue, order.symbol, Quality.BAD_SIZE)
            verdict = self._ts(order.venue, order.symbol, order.ts, order.recv_ns)
            if verdict is not None:
                return verdict
            seq = order.seq
            if seq is not None:
                per = self._l3_seq.get(order.venue)
                if per is None:
                    return self._seq(self._l3_seq, order.venue, order.symbol, seq)
                last = per.get(order.symbol)
                per[order.symbol] = seq
                if last is not None and seq < last:
                    return self._bad(order.venue, order.symbol, Quality.SEQ_BACKWARDS)
            return Quality.OK
        if cls is BookSnapshot:
            snapshot: BookSnapshot = event  # type: ignore[assignment]
            if self.check_levels:
                verdict = _levels(snapshot.bids) or _levels(snapshot.asks)
                if verdict is not None:
                    return self._bad(snapshot.venue, snapshot.symbol, verdict)
            if snapshot.seq is not None:
                self._baseline(self._book_seq, snapshot.venue, snapshot.symbol, snapshot.seq)
            verdict = self._ts(snapshot.venue, snapshot.symbol, snapshot.ts, snapshot.recv_ns)
            return Quality.OK if verdict is None else verdict
        if cls is L3Snapshot:
            l3: L3Snapshot = event  # type: ignore[assignment]
            if l3.seq is not None:
                self._baseline(self._l3_seq, l3.venue, l3.symbol, l3.seq)
            verdict = self._ts(l3.venue, l3.symbol, l3.ts, l3.recv_ns)
            return Quality.OK if verdict is None else verdict
        if cls is Liquidation:
            liq: Liquidation = event  # type: ignore[assignment]
            if not 0.0 < liq.price < _INF:
                return self._bad(liq.venue, liq.symbol, Quality.BAD_PRICE)
            if not 0.0 <= liq.size < _INF:
                return self._bad(liq.venue, liq.symbol, Quality.BAD_SIZE)
            verdict = self._ts(liq.venue, liq.symbol, liq.ts, liq.recv_ns)
            return Quality.OK if verdict is None else verdict
        if cls is Funding:
            funding: Funding = event  # type: ignore[assignment]
            if not -_INF < funding.rate < _INF:
                return self._bad(funding.venue, funding.symbol, Quality.BAD_VALUE)
            mark = funding.mark_price
            if mark is not None and not 0.0 < mark < _INF:
                return self._bad(funding.venue, funding.symbol, Quality.BAD_PRICE)
            verdict = self._ts(funding.venue, funding.symbol, funding.ts, funding.recv_ns)
            return Quality.OK if verdict is None else verdict
        if cls is OpenInterest:
            oi: OpenInterest = event  # type: ignore[assignment]
            if not 0.0 <= oi.open_interest < _INF:
                return self._bad(oi.venue, oi.symbol, Quality.BAD_VALUE)
            verdict = self._ts(oi.venue, oi.symbol, oi.ts, oi.recv_ns)
            return Quality.OK if verdict is None else verdict
        return Quality.OK

    def fresh(self) -> QualityGate:
        """A new gate with this gate's knobs and no state (one per connection)."""
        return QualityGate(
            future_s=self.future_s,
            past_s=self.past_s,
            trade_past_s=self.trade_past_s,
            check_levels=self.check_levels,
            allow_locked=self.allow_locked,
        )

    def ts_verdict(self, ts: int | None, recv_ns: int) -> Quality | None:
        """``TS_FUTURE``/``TS_PAST`` for a venue time out of bounds, else None
        (no state touched: for events whose sequence another check owns)."""
        if ts is None:
            return None
        drift = ts - recv_ns
        if drift > self._future_ns:
            return Quality.TS_FUTURE
        if drift < self._neg_past_ns:
            return Quality.TS_PAST
        return None

    def reset_seq(self, venue: str | None = None) -> None:
        """Forget the last ``seq`` of every symbol (of ``venue``): call when a
        connection (re)opens, since per-connection numbering restarts."""
        for table in (self._trade_seq, self._quote_seq, self._book_seq, self._l3_seq):
            if venue is None:
                table.clear()
            else:
                table.pop(venue, None)

    def count(self, venue: str, symbol: str, reason: Quality) -> int:
        """How many ``reason`` verdicts ``(venue, symbol)`` received."""
        return self.counts.get((venue, symbol), {}).get(reason, 0)

    # --- internals --------------------------------------------------------------

    def _bad(self, venue: str, symbol: str, reason: Quality) -> Quality:
        per = self.counts.get((venue, symbol))
        if per is None:
            per = self.counts[(venue, symbol)] = {}
        per[reason] = per.get(reason, 0) + 1
        self.bad += 1
        return reason

    def _ts(self, venue: str, symbol: str, ts: int | None, recv_ns: int) -> Quality | None:
        if ts is None:
            return None
        drift = ts - recv_ns
        if drift > self._future_ns:
            return self._bad(venue, symbol, Quality.TS_FUTURE)
        if drift < self._neg_past_ns:
            return self._bad(venue, symbol, Quality.TS_PAST)
        return None

    def _seq(self, table: dict[str, dict[str, int]], venue: str, symbol: str, seq: int) -> Quality:
        per = table.get(venue)
        if per is None:
            per = table[venue] = {}
        last = per.get(symbol)
        per[symbol] = seq
        if last is not None and seq < last:
            return self._bad(venue, symbol, Quality.SEQ_BACKWARDS)
        return Quality.OK

    @staticmethod
    def _baseline(table: dict[str, dict[str, int]], venue: str, symbol: str, seq: int) -> None:
        per = table.get(venue)
        if per is None:
            per = table[venue] = {}
        per[symbol] = seq


def _ns(seconds: float) -> int:
    """Seconds as integer nanoseconds; ``inf`` becomes a bound no timestamp reaches."""
    return int(seconds * 1e9) if seconds < _INF else 1 << 80


def _levels(levels: Levels) -> Quality | None:
    for price, size in levels:
        if not 0.0 < price < _INF:
            return Quality.BAD_PRICE
        if not 0.0 <= size < _INF:
            return Quality.BAD_SIZE
    return None
