"""Cross-venue signals for one unified symbol across several venues' books.

* :class:`CrossVenueSpread` — the best cross-venue spread net of taker fees,
  with the size available, emitted as :class:`Opportunity` only while both
  books are valid, fresh and of the required integrity.
* :class:`ReturnCorrelation` — rolling correlation of two venues' mid
  returns on a common clock grid → :class:`Correlation`.
* :class:`LeadLag` — which venue leads: the lag that maximises the
  cross-correlation of grid returns → :class:`LeadLagEstimate`.

All three read the venues' ``BOOK`` events (a quote feed has no integrity
level, so it cannot vouch for an opportunity) and the status events, each
venue's book kept by the operator or read live (``books={venue:
mux.book(venue, symbol)}``).

Theory of operation of the venue set (:class:`VenueSet`)
---------------------------------------------------------
Each venue has a :class:`~wsmux.analytics.BookValidity` (valid after a
snapshot, update or ``Resynced``; suspended by ``Gap``, ``Stale``,
``Disconnected``), the integrity its feed proves (from the synced
``BookSnapshot``/``Resynced`` or the live book), and the event time of its
last book change. *Now* is the latest event time seen on any venue. A venue
is *usable* when it is valid, both sides of its book are present, its
integrity ranks at least the minimum (``SEQUENCE_AND_CHECKSUM`` >
``SEQUENCE`` > ``CHECKSUM`` > ``UNVERIFIABLE``; unknown ranks lowest) and
``now - last change <= max_age_ns``. A venue that stops being usable emits
one :class:`~wsmux.analytics.Suspended` (reason: the book's, ``"book stale"``
or ``"integrity ... below ..."``) and a :class:`~wsmux.analytics.Resumed`
when it is usable again. A quiet book is stale by this rule: set
``max_age_ns`` above the slowest venue's update interval.

Formulas and references: ``docs/analytics/cross_venue.rst``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, TypeAlias

from wsmux.analytics._bookfed import BookSource, event_time
from wsmux.analytics._operator import NOTHING, AnalyticEvent, BookValidity, Operator, Resumed, Suspended
from wsmux.analytics.stats import GridSampler, RollingWindow
from wsmux.book import OrderBook
from wsmux.convert import register_event
from wsmux.errors import ConfigError
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Disconnected,
    Event,
    Gap,
    Integrity,
    Resynced,
    Stale,
    event,
)

__all__ = [
    "INTEGRITY_RANK",
    "Clock",
    "Correlation",
    "CrossVenueSpread",
    "LeadLag",
    "LeadLagEstimate",
    "Opportunity",
    "ReturnCorrelation",
    "VenueSet",
]

Clock: TypeAlias = Literal["exchange", "receive"]
"""Which time a cross-venue operator compares across venues (see :class:`VenueSet`)."""

INTEGRITY_RANK: Mapping[Integrity | None, int] = {
    None: 0,
    Integrity.UNVERIFIABLE: 1,
    Integrity.CHECKSUM: 2,
    Integrity.SEQUENCE: 3,
    Integrity.SEQUENCE_AND_CHECKSUM: 4,
}
"""How much each integrity level proves, for a minimum: a sequence check
detects every lost update at once, a checksum only at the next checksum."""


# --- output events -----------------------------------------------------------------------


@event
class Opportunity(AnalyticEvent):
    """Buy on ``buy_venue`` at its best ask, sell on ``sell_venue`` at its best
    bid: positive after both taker fees. ``venue`` is ``"*"``.

    Attributes:
        size: ``min(buy_size, sell_size)``, the size available at both tops.
        gross_bps: ``(sell_price - buy_price) / buy_price`` in basis points.
        net_bps: ``(sell_price * (1 - fee_sell) - buy_price * (1 + fee_buy)) / buy_price``
            in basis points (fees as fractions).
        age_ns: the older of the two books' last change, before ``ts``.
    """

    venue: str
    symbol: str
    buy_venue: str
    buy_price: float
    buy_size: float
    sell_venue: str
    sell_price: float
    sell_size: float
    size: float
    gross_bps: float
    net_bps: float
    age_ns: int
    ts: int | None
    recv_ns: int


@event
class Correlation(AnalyticEvent):
    """Pearson correlation of ``venue_a``'s and ``venue_b``'s mid log returns
    over the last ``returns`` grid intervals of ``interval_ns``. ``venue`` is ``"*"``."""

    venue: str
    symbol: str
    venue_a: str
    venue_b: str
    interval_ns: int
    returns: int
    value: float
    ts: int | None
    recv_ns: int


@event
class LeadLagEstimate(AnalyticEvent):
    """The lag that maximises the cross-correlation of the two venues' grid returns.

    Attributes:
        lag: in grid intervals; positive: ``venue_a`` leads ``venue_b`` (a's
            return at ``k - lag`` goes with b's at ``k``), negative: b leads.
        lag_ns: ``lag * interval_ns``.
        leader: the leading venue, ``""`` at lag 0.
        correlation: the cross-correlation at ``lag``.
        correlations: the cross-correlation at every lag from ``-max_lag``
            to ``max_lag``.
    """

    venue: str
    symbol: str
    venue_a: str
    venue_b: str
    interval_ns: int
    returns: int
    lag: int
    lag_ns: int
    leader: str
    correlation: float
    correlations: tuple[float, ...]
    ts: int | None
    recv_ns: int


for _cls, _tag in ((Opportunity, "opportunity"), (Correlation, "correlation"), (LeadLagEstimate, "lead_lag")):
    register_event(_cls, _tag)


# --- the venue set --------------------------------------------------------------------------------


class _Venue:
    __slots__ = ("blocked", "book", "integrity", "last_t", "own", "validity")

    def __init__(self, name: str, symbol: str, operator: str, book: BookSource | None, max_age_ns: int | None) -> None:
        self.validity = BookValidity(operator, max_age_ns=max_age_ns)
        self.validity.venue = name
        self.validity.symbol = symbol
        self.own = book is None
        self.book: BookSource = OrderBook(name) if book is None else book
        self.integrity: Integrity | None = None if book is None else book.integrity
        self.last_t: int | None = None
        self.blocked = ""
        """The reason the venue is excluded beyond its validity (integrity), reported."""


_STATUS = (Gap, Resynced, Stale, Disconnected)
_ACCEPTS: tuple[type[Event], ...] = (BookSnapshot, BookUpdate, *_STATUS)


class VenueSet:
    """The books of several venues for one symbol and whether each is usable
    (see the module docstring). Used by the cross-venue operators.

    Args:
        operator: the name put in Suspended/Resumed events.
        symbol: the unified symbol.
        venues: the venues (two or more).
        books: live books to read, by venue (others are kept from the events).
        max_age_ns: the freshness bound, by event time (None: no bound).
        min_integrity: the weakest integrity accepted (None: any).
        clock: ``"exchange"`` (default): times are the venues' own event
            times (the receive time where a venue sends none), comparable
            across venues whose clocks agree (real exchanges: within
            milliseconds); ``"receive"``: local receive times, for venues
            whose clocks do not agree (or mocks with synthetic time).
    """

    def __init__(
        self,
        operator: str,
        symbol: str,
        venues: Iterable[str],
        *,
        books: Mapping[str, BookSource] | None = None,
        max_age_ns: int | None = None,
        min_integrity: Integrity | None = None,
        clock: Clock = "exchange",
    ) -> None:
        if clock not in ("exchange", "receive"):
            raise ConfigError(f"{operator}: clock must be 'exchange' or 'receive', not {clock!r}")
        self.receive_clock = clock == "receive"
        names = tuple(dict.fromkeys(venues))
        if len(names) < 2:
            raise ConfigError(f"{operator}: needs at least two venues, not {names!r}")
        books = dict(books or {})
        unknown = set(books) - set(names)
        if unknown:
            raise ConfigError(f"{operator}: books given for venues not listed: {sorted(unknown)}")
        if max_age_ns is not None and (not isinstance(max_age_ns, int) or max_age_ns < 0):
            raise ConfigError(f"{operator}: max_age_ns must be a non-negative int, not {max_age_ns!r}")
        self.operator = operator
        self.symbol = symbol
        self.names = names
        self.max_age_ns = max_age_ns
        self.min_rank = INTEGRITY_RANK[min_integrity]
        self.min_integrity = min_integrity
        self.venues = {n: _Venue(n, symbol, operator, books.get(n), max_age_ns) for n in names}
        self.now: int | None = None
        """The latest event time seen on any venue."""

    def reset(self) -> None:
        """Forget every book and state."""
        for name, v in self.venues.items():
            v.validity.reset()
            if v.own:
                v.book = OrderBook(name)
                v.integrity = None
            v.last_t = None
            v.blocked = ""
        self.now = None

    def observe(self, ev: Event, out: list[AnalyticEvent]) -> str | None:
        """Follow one event (status outputs appended to ``out``); returns
        the venue whose book changed, or None."""
        venue = getattr(ev, "venue", None)
        v = self.venues.get(venue)  # type: ignore[arg-type]
        if v is None:
            return None
        cls = type(ev)
        if cls is BookSnapshot or cls is BookUpdate:
            book_ev: BookSnapshot | BookUpdate = ev  # type: ignore[assignment]
            if book_ev.symbol != self.symbol:
                return None
            if v.own:
                own: OrderBook = v.book  # type: ignore[assignment]
                ok = (
                    own.apply_snapshot(book_ev.bids, book_ev.asks)
                    if cls is BookSnapshot
                    else own.apply_update(book_ev.bids, book_ev.asks)
                )
                if cls is BookSnapshot and book_ev.integrity is not None:  # type: ignore[union-attr]
                    v.integrity = book_ev.integrity  # type: ignore[union-attr]
                if not ok:
                    _add(out, v.validity._invalidate("bad book data", book_ev.ts, book_ev.recv_ns))
                    return None
            else:
                v.integrity = v.book.integrity
            t = book_ev.recv_ns if self.receive_clock else event_time(book_ev.ts, book_ev.recv_ns)
            v.last_t = t
            if self.now is None or t > self.now:
                self.now = t
            _add(out, v.validity.observe(ev))
            return venue
        if cls is Resynced:
            rs: Resynced = ev  # type: ignore[assignment]
            if rs.integrity is not None and v.own:
                v.integrity = rs.integrity
        sym = getattr(ev, "symbol", None)
        if sym is None or sym == self.symbol:
            _add(out, v.validity.observe(ev))
        return None

    def usable(self, name: str, ts: int | None, recv_ns: int, out: list[AnalyticEvent]) -> bool:
        """Whether venue ``name`` may feed a signal now; reports transitions to ``out``."""
        v = self.venues[name]
        validity = v.validity
        if validity.valid and self.max_age_ns is not None and v.last_t is not None and self.now is not None:
            validity.last_ts = v.last_t
            _add(out, validity.require(self.now, recv_ns))
        if not validity.valid:
            _add(out, validity.require(ts, recv_ns))
            return False
        if INTEGRITY_RANK.get(v.integrity, 0) < self.min_rank:
            if not v.blocked:
                have = "unknown" if v.integrity is None else v.integrity.value
                v.blocked = f"integrity {have} below {self.min_integrity.value}"  # type: ignore[union-attr]
                out.append(Suspended(name, self.symbol, self.operator, v.blocked, ts, recv_ns))
            return False
        if v.blocked:
            v.blocked = ""
            out.append(Resumed(name, self.symbol, self.operator, ts, recv_ns))
        bp, _, ap, _ = v.book.bbo()
        return bp == bp and ap == ap  # noqa: PLR0124 - nan: an empty side

    def mid(self, name: str) -> float:
        """The mid of venue ``name``'s book (``nan`` with an empty side)."""
        bp, _, ap, _ = self.venues[name].book.bbo()
        return (bp + ap) / 2.0


def _add(out: list[AnalyticEvent], item: AnalyticEvent | None) -> None:
    if item is not None:
        out.append(item)


def _fees(fees_bps: Mapping[str, float] | float, names: Sequence[str]) -> dict[str, float]:
    if isinstance(fees_bps, int | float):
        table = dict.fromkeys(names, float(fees_bps))
    else:
        missing = [n for n in names if n not in fees_bps]
        if missing:
            raise ConfigError(f"CrossVenueSpread: no taker fee for {missing} (give fees_bps for every venue)")
        table = {n: float(fees_bps[n]) for n in names}
    for n, f in table.items():
        if not 0.0 <= f < 10_000.0 or f != f:  # noqa: PLR0124
            raise ConfigError(f"CrossVenueSpread: taker fee for {n} must be in [0, 10000) bps, not {f!r}")
    return {n: f / 10_000.0 for n, f in table.items()}


# --- cross-venue spread ---------------------------------------------------------------------------


class CrossVenueSpread(Operator):
    """The best cross-venue spread of ``symbol`` net of taker fees.

    After every book change, over the usable venues (see the module
    docstring), with ``f`` each venue's taker fee as a fraction::

        net(i sells, j buys) = bid_i * (1 - f_i) - ask_j * (1 + f_j),  i != j

    and the best pair is the one with the largest ``net``. When its
    ``net_bps`` exceeds ``min_net_bps`` an :class:`Opportunity` is emitted —
    once, and again whenever its venues, prices or sizes change. O(v) per
    book event for v venues (a best and a second best per side).

    Args:
        symbol: the unified symbol.
        venues: the venues compared (two or more).
        fees_bps: taker fee in basis points, per venue (a mapping) or for all.
        max_age_ns: a book whose last change is older than this (by event
            time, against the newest event on any venue) is stale.
        min_integrity: the weakest :class:`~wsmux.Integrity` accepted.
        min_net_bps: emit only opportunities whose net edge is above this.
        books: live books by venue (``mux.book(venue, symbol)``).
        clock: which times measure freshness (see :class:`VenueSet`).
    """

    accepts = _ACCEPTS

    def __init__(
        self,
        symbol: str,
        venues: Iterable[str],
        *,
        fees_bps: Mapping[str, float] | float,
        max_age_ns: int,
        min_integrity: Integrity | None = Integrity.SEQUENCE,
        min_net_bps: float = 0.0,
        books: Mapping[str, BookSource] | None = None,
        clock: Clock = "exchange",
        name: str = "",
    ) -> None:
        self.name = name or f"cross-spread-{symbol}"
        self.venues = VenueSet(
            self.name, symbol, venues, books=books, max_age_ns=max_age_ns, min_integrity=min_integrity, clock=clock
        )
        self.fees = _fees(fees_bps, self.venues.names)
        self.min_net_bps = float(min_net_bps)
        self.symbol = symbol
        self._last: tuple[object, ...] | None = None
        self.current: Opportunity | None = None
        """The opportunity as of the last book change (None if there is none)."""

    def reset(self) -> None:
        self.venues.reset()
        self._last = None
        self.current = None

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        out: list[AnalyticEvent] = []
        changed = self.venues.observe(event, out)
        if changed is None:
            if out:
                self.current = None
                self._last = None
            return out or NOTHING
        ts: int | None = event.ts  # type: ignore[attr-defined]
        recv_ns: int = event.recv_ns  # type: ignore[attr-defined]
        opp = self._best(ts, recv_ns, out)
        self.current = opp
        if opp is None:
            self._last = None
            return out or NOTHING
        key = (opp.buy_venue, opp.sell_venue, opp.buy_price, opp.sell_price, opp.buy_size, opp.sell_size)
        if key != self._last:
            self._last = key
            out.append(opp)
        return out or NOTHING

    def _best(self, ts: int | None, recv_ns: int, out: list[AnalyticEvent]) -> Opportunity | None:
        vs = self.venues
        fees = self.fees
        # best and second-best net bid (sell side) and net ask (buy side)
        b1 = b2 = a1 = a2 = None
        for name in vs.names:
            if not vs.usable(name, ts, recv_ns, out):
                continue
            bp, bs, ap, as_ = vs.venues[name].book.bbo()
            nb = (bp * (1.0 - fees[name]), name, bp, bs)
            na = (ap * (1.0 + fees[name]), name, ap, as_)
            if b1 is None or nb[0] > b1[0]:
                b1, b2 = nb, b1
            elif b2 is None or nb[0] > b2[0]:
                b2 = nb
            if a1 is None or na[0] < a1[0]:
                a1, a2 = na, a1
            elif a2 is None or na[0] < a2[0]:
                a2 = na
        if b1 is None or a1 is None or b2 is None:  # fewer than two usable venues
            return None
        if b1[1] != a1[1]:
            sell, buy = b1, a1
        else:
            assert a2 is not None
            sell, buy = (b1, a2) if b1[0] - a2[0] >= b2[0] - a1[0] else (b2, a1)
        net_bps = (sell[0] - buy[0]) / buy[2] * 10_000.0
        if not net_bps > self.min_net_bps:
            return None
        now = vs.now if vs.now is not None else recv_ns
        age = max(now - (vs.venues[buy[1]].last_t or now), now - (vs.venues[sell[1]].last_t or now))
        return Opportunity(
            "*",
            self.symbol,
            buy[1],
            buy[2],
            buy[3],
            sell[1],
            sell[2],
            sell[3],
            min(buy[3], sell[3]),
            (sell[2] - buy[2]) / buy[2] * 10_000.0,
            net_bps,
            age,
            ts,
            recv_ns,
        )


# --- grid returns of two venues ---------------------------------------------------------------------


class _PairReturns:
    """Previous-tick grid returns of two venues' mids, paired by grid point.

    Both venues' grids are advanced to the newest event time at every
    event, so they close the same points together; a point closes a
    return pair once both venues have a sample at it and at the one before.
    A venue that stops being usable restarts both grids (no return spans a
    hole). Runs of empty intervals give zero returns, at most ``cap`` of them.
    """

    def __init__(self, interval_ns: int, cap: int) -> None:
        self.interval_ns = interval_ns
        self.cap = cap
        self.samplers = (GridSampler(interval_ns), GridSampler(interval_ns))
        self.prev: list[float] = [math.nan, math.nan]
        self.pending: list[deque[tuple[int, float]]] = [deque(), deque()]

    def reset(self) -> None:
        for s in self.samplers:
            s.reset()
        self.prev = [math.nan, math.nan]
        for p in self.pending:
            p.clear()

    def _take(self, i: int, closed: tuple[int, int, float] | None) -> None:
        if closed is None:
            return
        first, count, price = closed
        step = self.interval_ns
        prev = self.prev[i]
        self.prev[i] = price
        q = self.pending[i]
        if not math.isnan(prev):  # the very first point has no return
            q.append((first, math.log(price / prev)))
        zeros = min(count - 1, self.cap)
        last = first + (count - 1) * step
        for k in range(zeros):
            q.append((last - (zeros - 1 - k) * step, 0.0))

    def advance(self, i: int | None, price: float, t: int) -> list[tuple[int, float, float]]:
        """Venue ``i`` (0/1; None: no tick) saw ``price`` at ``t``: close both
        grids up to ``t`` and return the new ``(point, r_a, r_b)`` pairs."""
        if i is not None:
            self._take(i, self.samplers[i].observe(price, t))
        for j in (0, 1):
            if j != i:
                self._take(j, self.samplers[j].close_until(t))
        qa, qb = self.pending
        pairs: list[tuple[int, float, float]] = []
        while qa and qb:
            pa, ra = qa[0]
            pb, rb = qb[0]
            if pa == pb:
                pairs.append((pa, ra, rb))
                qa.popleft()
                qb.popleft()
            elif pa < pb:
                qa.popleft()
            else:
                qb.popleft()
        return pairs


class _PairOperator(Operator):
    """Shared reading of two venues' books into paired grid returns."""

    accepts = _ACCEPTS

    def __init__(
        self,
        symbol: str,
        venues: tuple[str, str],
        interval_ns: int,
        window: int,
        cap: int,
        books: Mapping[str, BookSource] | None,
        max_age_ns: int | None,
        min_integrity: Integrity | None,
        clock: Clock,
    ) -> None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 2:
            raise ConfigError(f"{self.name}: window must be an int >= 2, not {window!r}")
        self.window = window
        self._a = RollingWindow(size=window)
        self._b = RollingWindow(size=window)
        if not isinstance(interval_ns, int) or interval_ns < 1:
            raise ConfigError(f"{self.name}: interval_ns must be a positive int, not {interval_ns!r}")
        pair = tuple(venues)
        if len(pair) != 2:
            raise ConfigError(f"{self.name}: venues must be two venues, not {venues!r}")
        self.symbol = symbol
        self.venue_a, self.venue_b = pair
        self.interval_ns = interval_ns
        self.venues = VenueSet(
            self.name, symbol, pair, books=books, max_age_ns=max_age_ns, min_integrity=min_integrity, clock=clock
        )
        self._pairs = _PairReturns(interval_ns, cap)

    def reset(self) -> None:
        self.venues.reset()
        self._pairs.reset()
        self._restart()

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        out: list[AnalyticEvent] = []
        vs = self.venues
        changed = vs.observe(event, out)
        if changed is None and not out:
            return NOTHING
        ts: int | None = getattr(event, "ts", None)
        recv_ns: int = event.recv_ns  # type: ignore[attr-defined]
        ok = [vs.usable(n, ts, recv_ns, out) for n in (self.venue_a, self.venue_b)]
        if not all(ok):
            self._pairs.reset()
            self._restart()
            return out or NOTHING
        if changed is None or vs.now is None:
            return out or NOTHING
        i = 0 if changed == self.venue_a else 1
        pairs = self._pairs.advance(i, vs.mid(changed), vs.now)
        if pairs:
            self._on_pairs(pairs, ts, recv_ns, out)
        return out or NOTHING

    def _on_pairs(
        self, pairs: list[tuple[int, float, float]], ts: int | None, recv_ns: int, out: list[AnalyticEvent]
    ) -> None:
        raise NotImplementedError

    def _restart(self) -> None:
        """Both grids restart (a venue became unusable): empty the windows."""
        self._a.reset()
        self._b.reset()


class ReturnCorrelation(_PairOperator):
    """Rolling Pearson correlation of two venues' mid log returns on a common
    clock grid of ``interval_ns`` (previous-tick sampling, aligned to
    multiples of the interval) over the last ``window`` intervals, emitted
    as a :class:`Correlation` whenever grid points close (at least two
    returns, both non-constant)::

        rho = (mean(r_a r_b) - mean(r_a) mean(r_b)) / (std(r_a) std(r_b))

    Sums are exact (:class:`~wsmux.analytics.stats.RollingWindow`). A venue
    that stops being usable empties the window. O(1) amortized per event.
    """

    name = "correlation"

    def __init__(
        self,
        symbol: str,
        venues: tuple[str, str],
        *,
        interval_ns: int,
        window: int,
        books: Mapping[str, BookSource] | None = None,
        max_age_ns: int | None = None,
        min_integrity: Integrity | None = None,
        clock: Clock = "exchange",
    ) -> None:
        super().__init__(symbol, venues, interval_ns, window, window, books, max_age_ns, min_integrity, clock)
        self._ab = RollingWindow(size=window)

    def _restart(self) -> None:
        super()._restart()
        self._ab.reset()

    def _on_pairs(
        self, pairs: list[tuple[int, float, float]], ts: int | None, recv_ns: int, out: list[AnalyticEvent]
    ) -> None:
        for _, ra, rb in pairs:
            self._a.add(ra)
            self._b.add(rb)
            self._ab.add(ra * rb)
        n = len(self._a)
        den = self._a.std * self._b.std
        if n < 2 or not den > 0.0:
            return
        rho = (self._ab.mean - self._a.mean * self._b.mean) / den
        rho = min(1.0, max(-1.0, rho))
        out.append(Correlation("*", self.symbol, self.venue_a, self.venue_b, self.interval_ns, n, rho, ts, recv_ns))


class LeadLag(_PairOperator):
    """Lead-lag between two venues: the lag (in grid intervals, within
    ``±max_lag``) that maximises the cross-correlation of their mid log
    returns on a common clock grid of ``interval_ns``, over the last
    ``window`` intervals::

        c(l) = (mean_k(r_a[k-l] r_b[k]) - mean(r_a) mean(r_b)) / (std(r_a) std(r_b))

    (``l < 0``: ``r_b[k-|l|] r_a[k]``; means and deviations over each
    venue's last ``window`` returns; each product mean over the last
    ``window`` products of its lag). Grid sampling by previous tick makes
    asynchronous quotes synchronous (the Hayashi-Yoshida estimator avoids
    the resulting Epps bias but is not used here). A
    :class:`LeadLagEstimate` is emitted whenever grid points close, once
    ``window`` returns are in. O(max_lag) per closed grid point.
    """

    name = "lead-lag"

    def __init__(
        self,
        symbol: str,
        venues: tuple[str, str],
        *,
        interval_ns: int,
        window: int,
        max_lag: int,
        books: Mapping[str, BookSource] | None = None,
        max_age_ns: int | None = None,
        min_integrity: Integrity | None = None,
        clock: Clock = "exchange",
    ) -> None:
        if not isinstance(max_lag, int) or max_lag < 1:
            raise ConfigError(f"LeadLag: max_lag must be a positive int, not {max_lag!r}")
        self.max_lag = max_lag
        super().__init__(symbol, venues, interval_ns, window, window + max_lag, books, max_age_ns, min_integrity, clock)
        self._hist_a: deque[float] = deque(maxlen=max_lag + 1)
        self._hist_b: deque[float] = deque(maxlen=max_lag + 1)
        # products for lags -max_lag..max_lag
        self._prods = [RollingWindow(size=window) for _ in range(2 * max_lag + 1)]

    def _restart(self) -> None:
        super()._restart()
        self._hist_a.clear()
        self._hist_b.clear()
        for w in self._prods:
            w.reset()

    def _on_pairs(
        self, pairs: list[tuple[int, float, float]], ts: int | None, recv_ns: int, out: list[AnalyticEvent]
    ) -> None:
        L = self.max_lag
        ha, hb = self._hist_a, self._hist_b
        prods = self._prods
        for _, ra, rb in pairs:
            self._a.add(ra)
            self._b.add(rb)
            ha.append(ra)
            hb.append(rb)
            n = len(ha)
            for lag in range(min(n - 1, L) + 1):
                # lag >= 0: a[k-lag] * b[k]; lag < 0: b[k-|lag|] * a[k]
                prods[L + lag].add(ha[n - 1 - lag] * rb)
                if lag:
                    prods[L - lag].add(hb[n - 1 - lag] * ra)
        if len(prods[0]) < self.window:
            return
        den = self._a.std * self._b.std
        if not den > 0.0:
            return
        mm = self._a.mean * self._b.mean
        corr = tuple((p.mean - mm) / den for p in prods)
        best = max(range(2 * L + 1), key=lambda k: (corr[k], -abs(k - L)))
        lag = best - L
        leader = self.venue_a if lag > 0 else self.venue_b if lag < 0 else ""
        out.append(
            LeadLagEstimate(
                "*",
                self.symbol,
                self.venue_a,
                self.venue_b,
                self.interval_ns,
                len(self._a),
                lag,
                lag * self.interval_ns,
                leader,
                corr[best],
                corr,
                ts,
                recv_ns,
            )
        )
