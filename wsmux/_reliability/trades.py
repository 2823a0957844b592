"""TradeSequencer: holes, duplicates and order of a venue's trade tape; Backfill planning.

Theory of operation
-------------------
Each ``(venue, symbol)`` has a *tape*: what the sequencer knows about the
trade ids it has seen. How much can be known depends on the venue's ids,
chosen per venue with an :class:`IdPolicy`:

``CONTIGUOUS``
    Integer ids that grow by exactly 1 per trade of the symbol (Binance
    ``aggTrade`` ``a`` and ``trade`` ``t``; Coinbase Exchange ``trade_id``
    per product — checked on the recorded Coinbase feed). The tape keeps the
    highest id seen (``last``) and the exact list of *holes* (missing id
    ranges) below it, so every id is classified exactly:

    * ``last + 1`` → ``NEW`` (the fast path: one comparison);
    * above ``last + 1`` → ``GAP``: the ids in between become a hole and a
      :class:`TradeGap` is reported (from the time of the trade before the
      hole to the time of the one after it);
    * inside a hole → ``LATE``: a new trade that arrived out of order (or a
      re-sent one after a reconnect); the hole shrinks or splits;
    * at or below ``last`` and not in a hole → ``DUPLICATE``;
    * below the *horizon* — the first id the tape saw, raised when old holes
      are abandoned to bound memory — → ``STALE``: older than anything
      tracked (history the venue re-sent, or beyond memory).

``MONOTONIC``
    Integer ids that grow, with jumps (OKX ``tradeId``, Bitfinex, ...). No
    hole can be seen from the ids. The tape remembers the last
    ``max_seen`` ids: a remembered id → ``DUPLICATE``; above ``last`` →
    ``NEW``; below ``last``, not remembered and above the highest id forgotten
    → ``LATE``; otherwise ``STALE``.

``OPAQUE``
    Ids are labels (Bybit derivatives use UUIDs): only ``DUPLICATE`` vs
    ``NEW``, from the last ``max_seen`` ids.

Trades without an id are ``UNNUMBERED``; under an integer policy an id that
is not an integer is ``BAD_ID`` (both delivered, both counted).

State survives reconnects: a hole that opens across a reconnect is found by
the first trade after it, exactly as any other. For venues whose holes cannot
be seen (``MONOTONIC``/``OPAQUE``/no ids), :meth:`TradeSequencer.interrupted`
marks the venue's tapes; the first trade after it reports an *inexact*
:class:`TradeGap` (no ids, the time window ``[last trade before, first trade
after]`` in which trades may have been missed) — the input of a backfill by
time. :meth:`TradeSequencer.forget` drops a tape.

Gaps are reported once, into :attr:`TradeSequencer.gaps` (drained by
:meth:`TradeSequencer.take_gaps`). With ``report_after_ns > 0`` a hole is
reported only if it is still open that long after it was found (by
:meth:`TradeSequencer.take_gaps` given ``now_ns``), so trades merely
reordered by a redundant-connection merge do not raise false alarms.

Backfill
--------
:class:`Backfill` plans REST requests for a tape's holes — id ranges of at
most ``max_per_request`` ids — and merges the answers: each backfilled trade
that fills a hole is returned (sorted by id) and removes its id from the
hole; anything else (already delivered live, below the horizon, or above
``last``, which the live stream will deliver) is dropped. Live trades keep
flowing through :meth:`TradeSequencer.on_trade` meanwhile and fill holes the
same way, so backfilled and live trades never duplicate. :meth:`Backfill.missing`
is the exact list of ids still missing from the planned ranges.

Knobs
-----
``policies`` (per venue, default :data:`DEFAULT_ID_POLICIES`, others
``default_policy``), ``max_seen`` (4096 ids remembered per ``MONOTONIC``/
``OPAQUE`` tape), ``max_holes`` (1024 open holes per tape; the oldest are
abandoned beyond that and counted in ``stats.abandoned_ids``),
``report_after_ns`` (0).

Costs
-----
``on_trade``: O(1) for ``NEW`` (an ``int()`` of the id, a comparison);
O(log h) to find a hole and O(h) to split one, h = open holes of the tape;
O(1) ring operations for ``MONOTONIC``/``OPAQUE``. Memory: O(holes) per
contiguous tape, O(max_seen) per other tape.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Iterator, Mapping

import attrs

from wsmux._reliability._ring import KeyRing
from wsmux.errors import ConfigError
from wsmux.model import Trade

__all__ = [
    "DEFAULT_ID_POLICIES",
    "Backfill",
    "IdPolicy",
    "IdRange",
    "TradeGap",
    "TradeSequencer",
    "TradeStats",
    "TradeVerdict",
    "plan_requests",
]


class IdPolicy(enum.Enum):
    """What a venue's trade ids promise (see the module docstring)."""

    CONTIGUOUS = "contiguous"
    MONOTONIC = "monotonic"
    OPAQUE = "opaque"


DEFAULT_ID_POLICIES: Mapping[str, IdPolicy] = {
    # Binance aggTrade "a" / trade "t": +1 per trade per symbol.
    "binance": IdPolicy.CONTIGUOUS,
    "binance-us": IdPolicy.CONTIGUOUS,
    "binance-usdm": IdPolicy.CONTIGUOUS,
    "binance-coinm": IdPolicy.CONTIGUOUS,
    # Coinbase Exchange trade_id: +1 per product (holds on the 2021 recording).
    "coinbase": IdPolicy.CONTIGUOUS,
    # Integer ids that grow; contiguity not documented.
    "coinbase-advanced": IdPolicy.MONOTONIC,
    "okx": IdPolicy.MONOTONIC,
    "kraken": IdPolicy.MONOTONIC,
    "bitfinex": IdPolicy.MONOTONIC,
    # UUIDs on derivatives.
    "bybit": IdPolicy.OPAQUE,
    "bybit-linear": IdPolicy.OPAQUE,
    # BitMEX trdMatchID: UUIDs; Deribit trade_id: text, not always a number
    # (deribit.md: "trade_id (string)"; trade_seq contiguity unconfirmed).
    "bitmex": IdPolicy.OPAQUE,
    "deribit": IdPolicy.OPAQUE,
    # Kraken Futures trade "uid": a UUID (kraken-futures.md).
    "kraken-futures": IdPolicy.OPAQUE,
    "kraken-futures-inverse": IdPolicy.OPAQUE,
    # KuCoin tradeId: hex object ids (kucoin.md), not numbers.
    "kucoin": IdPolicy.OPAQUE,
    "kucoin-futures": IdPolicy.OPAQUE,
}
"""Per venue id policy. Venues not listed use ``TradeSequencer.default_policy``."""


class TradeVerdict(enum.Enum):
    """What :meth:`TradeSequencer.on_trade` says about a trade."""

    __hash__ = object.__hash__  # identity hash in C (members are singletons)

    NEW = "new"
    """The next trade."""
    GAP = "gap"
    """A new trade, but trades were skipped before it (a gap was recorded)."""
    LATE = "late"
    """A new trade that arrived out of order (it filled a hole)."""
    DUPLICATE = "duplicate"
    """Already seen."""
    STALE = "stale"
    """Older than anything the tape tracks: cannot be told new from seen."""
    UNNUMBERED = "unnumbered"
    """No trade id."""
    BAD_ID = "bad_id"
    """The id is not an integer although the venue's policy says it is."""

    @property
    def deliver(self) -> bool:
        """Whether the trade should reach the caller."""
        return self in _DELIVER


_DELIVER = frozenset(
    {TradeVerdict.NEW, TradeVerdict.GAP, TradeVerdict.LATE, TradeVerdict.UNNUMBERED, TradeVerdict.BAD_ID}
)


@attrs.frozen(slots=True)
class IdRange:
    """An inclusive range of trade ids ``first..last``."""

    first: int
    last: int

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last + 1))


@attrs.frozen(slots=True)
class TradeGap:
    """Trades of ``symbol`` that were (or may have been) missed.

    Attributes:
        first_missing, last_missing: the missing ids, inclusive (None for an
            inexact gap: ids unknown).
        from_ns: time (venue ``ts``, else ``recv_ns``) of the last trade before.
        to_ns: time of the first trade after.
        exact: True when the ids are known to be missing (contiguous ids);
            False for a window in which trades may have been missed.
    """

    venue: str
    symbol: str
    first_missing: int | None
    last_missing: int | None
    from_ns: int | None
    to_ns: int | None
    exact: bool = True

    @property
    def count(self) -> int | None:
        """How many ids are missing (None when unknown)."""
        if self.first_missing is None or self.last_missing is None:
            return None
        return self.last_missing - self.first_missing + 1


@attrs.define(slots=True)
class TradeStats:
    """Counters of a :class:`TradeSequencer` (cumulative, all tapes)."""

    new: int = 0
    gaps: int = 0
    missing_ids: int = 0
    late: int = 0
    duplicates: int = 0
    stale: int = 0
    unnumbered: int = 0
    bad_ids: int = 0
    abandoned_ids: int = 0
    backfilled: int = 0
    backfill_dropped: int = 0


class _Hole:
    __slots__ = ("first", "found_ns", "from_ns", "last", "reported", "to_ns")

    def __init__(self, first: int, last: int, from_ns: int | None, to_ns: int | None, found_ns: int) -> None:
        self.first = first
        self.last = last
        self.from_ns = from_ns
        self.to_ns = to_ns
        self.found_ns = found_ns
        self.reported = False


class _Tape:
    __slots__ = ("firsts", "holes", "horizon", "interrupted", "last", "last_ns", "policy", "seen")

    def __init__(self, policy: IdPolicy, max_seen: int) -> None:
        self.policy = policy
        self.last: int | None = None
        self.last_ns: int | None = None
        self.horizon: int | None = None
        self.holes: list[_Hole] = []
        self.firsts: list[int] = []  # holes' first ids, for bisect
        self.seen: KeyRing[object, None] | None = None if policy is IdPolicy.CONTIGUOUS else KeyRing(max_seen)
        self.interrupted: int | None = None


class TradeSequencer:
    """Gap, duplicate and order checks of trade tapes (see the module docstring).

    Args:
        policies: id policy per venue.
        default_policy: policy of venues not in ``policies``.
        max_seen: ids remembered per ``MONOTONIC``/``OPAQUE`` tape.
        max_holes: open holes kept per ``CONTIGUOUS`` tape.
        report_after_ns: report a hole only once it has stayed open this long.

    Attributes:
        gaps: reported gaps not yet taken.
        stats: counters.
    """

    def __init__(
        self,
        *,
        policies: Mapping[str, IdPolicy] = DEFAULT_ID_POLICIES,
        default_policy: IdPolicy = IdPolicy.MONOTONIC,
        max_seen: int = 4096,
        max_holes: int = 1024,
        report_after_ns: int = 0,
    ) -> None:
        if max_seen < 1 or max_holes < 1 or report_after_ns < 0:
            raise ConfigError("need max_seen >= 1, max_holes >= 1, report_after_ns >= 0")
        self.policies = dict(policies)
        self.default_policy = default_policy
        self.max_seen = max_seen
        self.max_holes = max_holes
        self.report_after_ns = report_after_ns
        self.gaps: list[TradeGap] = []
        self.stats = TradeStats()
        self._tapes: dict[tuple[str, str], _Tape] = {}

    # --- the hot path -----------------------------------------------------------

    def on_trade(self, trade: Trade) -> TradeVerdict:
        """Classify ``trade`` and update its tape. O(1) on the ``NEW`` path."""
        tape = self._tapes.get((trade.venue, trade.symbol))
        if tape is None:
            tape = self._tape(trade.venue, trade.symbol)
        trade_id = trade.trade_id
        stamp = trade.ts if trade.ts is not None else trade.recv_ns
        policy = tape.policy
        if trade_id is None:
            if tape.interrupted is not None:
                self._inexact(trade, tape, stamp)
            tape.last_ns = stamp
            self.stats.unnumbered += 1
            return TradeVerdict.UNNUMBERED
        if policy is IdPolicy.OPAQUE:
            return self._opaque(trade, tape, trade_id, stamp)
        try:
            n = int(trade_id)
        except ValueError:
            self.stats.bad_ids += 1
            return TradeVerdict.BAD_ID
        last = tape.last
        if policy is IdPolicy.CONTIGUOUS:
            if last is not None and n == last + 1:
                tape.last = n
                tape.last_ns = stamp
                self.stats.new += 1
                return TradeVerdict.NEW
            return self._contiguous(trade, tape, n, stamp)
        return self._monotonic(trade, tape, n, stamp)

    # --- reconnects, queries ----------------------------------------------------------

    def interrupted(self, venue: str, now_ns: int, symbol: str | None = None) -> None:
        """The venue's feed (``symbol``'s, if given) was interrupted at ``now_ns``.

        Tapes whose holes cannot be seen from ids report an inexact gap on
        their next trade. Contiguous tapes need nothing (their next id tells).
        """
        for (v, s), tape in self._tapes.items():
            if (
                v == venue
                and (symbol is None or s == symbol)
                and tape.policy is not IdPolicy.CONTIGUOUS
                and tape.interrupted is None
            ):
                tape.interrupted = now_ns

    def forget(self, venue: str, symbol: str | None = None) -> None:
        """Drop the tapes of ``venue`` (and ``symbol``): after an unsubscribe."""
        for key in [k for k in self._tapes if k[0] == venue and (symbol is None or k[1] == symbol)]:
            del self._tapes[key]

    def take_gaps(self, now_ns: int | None = None) -> list[TradeGap]:
        """Return and clear the reported gaps.

        With ``report_after_ns``, pass ``now_ns``: holes open at least that
        long are reported now (O(open holes)).
        """
        if self.report_after_ns and now_ns is not None:
            for (venue, symbol), tape in self._tapes.items():
                for hole in tape.holes:
                    if not hole.reported and now_ns - hole.found_ns >= self.report_after_ns:
                        self._report(venue, symbol, hole)
        gaps = self.gaps
        self.gaps = []
        return gaps

    def missing(self, venue: str, symbol: str) -> list[IdRange]:
        """The exact ids known missing from a contiguous tape now, oldest first."""
        tape = self._tapes.get((venue, symbol))
        if tape is None:
            return []
        return [IdRange(h.first, h.last) for h in tape.holes]

    def last_id(self, venue: str, symbol: str) -> int | None:
        """The highest integer id seen on the tape."""
        tape = self._tapes.get((venue, symbol))
        return None if tape is None else tape.last

    def policy(self, venue: str) -> IdPolicy:
        """The id policy used for ``venue``."""
        return self.policies.get(venue, self.default_policy)

    def backfill(self, venue: str, symbol: str, max_per_request: int = 1000) -> Backfill:
        """A :class:`Backfill` of the current holes of ``(venue, symbol)``."""
        return Backfill(self, venue, symbol, max_per_request)

    def fill(self, venue: str, symbol: str, trades: Iterable[Trade]) -> list[Trade]:
        """Merge backfilled trades: return those that fill holes, sorted by id.

        Contiguous tapes: a trade is kept iff its id is in a hole (the hole
        shrinks). Monotonic tapes: iff its id is not remembered, above the
        forgotten horizon and not above ``last``. Opaque tapes: iff not
        remembered (kept in the given order, after the numbered ones).
        Everything else is dropped (``stats.backfill_dropped``).
        O(k log k + k·h) for k trades.
        """
        tape = self._tapes.get((venue, symbol))
        if tape is None:
            tape = self._tape(venue, symbol)
        kept: list[tuple[int, Trade]] = []
        labelled: list[Trade] = []
        stats = self.stats
        for trade in trades:
            key = trade.trade_id
            if key is None or trade.venue != venue or trade.symbol != symbol:
                stats.backfill_dropped += 1
                continue
            if tape.policy is IdPolicy.OPAQUE:
                seen = tape.seen
                assert seen is not None
                if key in seen:
                    stats.backfill_dropped += 1
                    continue
                seen.put(key, None)
                labelled.append(trade)
                continue
            try:
                n = int(key)
            except ValueError:
                stats.backfill_dropped += 1
                continue
            if tape.policy is IdPolicy.CONTIGUOUS:
                ok = self._take_from_hole(tape, n)
            else:
                seen = tape.seen
                assert seen is not None
                ok = (
                    tape.last is not None
                    and n <= tape.last
                    and n not in seen
                    and (tape.horizon is None or n > tape.horizon)
                )
                if ok:
                    self._remember(tape, seen, n)
            if ok:
                kept.append((n, trade))
            else:
                stats.backfill_dropped += 1
        kept.sort(key=_id_of)
        stats.backfilled += len(kept) + len(labelled)
        return [trade for _, trade in kept] + labelled

    # --- internals ----------------------------------------------------------------

    def _tape(self, venue: str, symbol: str) -> _Tape:
        tape = self._tapes[(venue, symbol)] = _Tape(self.policy(venue), self.max_seen)
        return tape

    def _opaque(self, trade: Trade, tape: _Tape, trade_id: str, stamp: int) -> TradeVerdict:
        seen = tape.seen
        assert seen is not None
        if trade_id in seen:
            self.stats.duplicates += 1
            return TradeVerdict.DUPLICATE
        if tape.interrupted is not None:
            self._inexact(trade, tape, stamp)
        tape.last_ns = stamp
        seen.put(trade_id, None)
        self.stats.new += 1
        return TradeVerdict.NEW

    def _monotonic(self, trade: Trade, tape: _Tape, n: int, stamp: int) -> TradeVerdict:
        seen = tape.seen
        assert seen is not None
        stats = self.stats
        if n in seen:
            stats.duplicates += 1
            return TradeVerdict.DUPLICATE
        last = tape.last
        if last is not None and n < last:
            horizon = tape.horizon
            if horizon is not None and n <= horizon:
                stats.stale += 1
                return TradeVerdict.STALE
            self._remember(tape, seen, n)
            stats.late += 1
            return TradeVerdict.LATE
        if tape.interrupted is not None:
            self._inexact(trade, tape, stamp)
        self._remember(tape, seen, n)
        tape.last = n
        tape.last_ns = stamp
        stats.new += 1
        return TradeVerdict.NEW

    @staticmethod
    def _remember(tape: _Tape, seen: KeyRing[object, None], n: int) -> None:
        evicted = seen.put(n, None)
        if isinstance(evicted, int) and (tape.horizon is None or evicted > tape.horizon):
            tape.horizon = evicted

    def _contiguous(self, trade: Trade, tape: _Tape, n: int, stamp: int) -> TradeVerdict:
        stats = self.stats
        last = tape.last
        tape.interrupted = None
        if last is None:
            tape.last = n
            tape.last_ns = stamp
            tape.horizon = n
            stats.new += 1
            return TradeVerdict.NEW
        if n > last:
            hole = _Hole(last + 1, n - 1, tape.last_ns, stamp, trade.recv_ns)
            tape.holes.append(hole)
            tape.firsts.append(hole.first)
            tape.last = n
            tape.last_ns = stamp
            stats.gaps += 1
            stats.missing_ids += n - 1 - last
            if not self.report_after_ns:
                self._report(trade.venue, trade.symbol, hole)
            if len(tape.holes) > self.max_holes:
                old = tape.holes.pop(0)
                tape.firsts.pop(0)
                stats.abandoned_ids += old.last - old.first + 1
                tape.horizon = old.last + 1
            return TradeVerdict.GAP
        horizon = tape.horizon
        if horizon is not None and n < horizon:
            stats.stale += 1
            return TradeVerdict.STALE
        if self._take_from_hole(tape, n):
            stats.late += 1
            return TradeVerdict.LATE
        stats.duplicates += 1
        return TradeVerdict.DUPLICATE

    @staticmethod
    def _take_from_hole(tape: _Tape, n: int) -> bool:
        """Remove ``n`` from the tape's holes; False if it is in none. O(log h + h)."""
        i = bisect.bisect_right(tape.firsts, n) - 1
        if i < 0:
            return False
        hole = tape.holes[i]
        if n > hole.last:
            return False
        if hole.first == hole.last:
            del tape.holes[i]
            del tape.firsts[i]
        elif n == hole.first:
            hole.first = n + 1
            tape.firsts[i] = n + 1
        elif n == hole.last:
            hole.last = n - 1
        else:
            upper = _Hole(n + 1, hole.last, hole.from_ns, hole.to_ns, hole.found_ns)
            upper.reported = hole.reported
            hole.last = n - 1
            tape.holes.insert(i + 1, upper)
            tape.firsts.insert(i + 1, n + 1)
        return True

    def _report(self, venue: str, symbol: str, hole: _Hole) -> None:
        hole.reported = True
        self.gaps.append(TradeGap(venue, symbol, hole.first, hole.last, hole.from_ns, hole.to_ns, True))

    def _inexact(self, trade: Trade, tape: _Tape, stamp: int) -> None:
        since = tape.last_ns if tape.last_ns is not None else tape.interrupted
        tape.interrupted = None
        self.stats.gaps += 1
        self.gaps.append(TradeGap(trade.venue, trade.symbol, None, None, since, stamp, False))

    def _check(self) -> None:
        """Assert the invariants of every tape (tests)."""
        for tape in self._tapes.values():
            assert tape.firsts == [h.first for h in tape.holes]
            prev_last: int | None = None
            for hole in tape.holes:
                assert hole.first <= hole.last
                if prev_last is not None:
                    assert hole.first > prev_last + 1  # holes never touch: the id between was seen
                prev_last = hole.last
                assert tape.last is not None and hole.last < tape.last
                assert tape.horizon is not None and hole.first >= tape.horizon
            assert len(tape.holes) <= self.max_holes


class Backfill:
    """A REST backfill of one tape's holes (see "Backfill" in the module docstring).

    Args:
        sequencer: the sequencer owning the tape.
        venue, symbol: the tape.
        max_per_request: most ids one REST request may cover.

    Attributes:
        requests: the planned id ranges, oldest first (each at most
            ``max_per_request`` ids). Map each to a venue request (Binance
            ``aggTrades?fromId=first&limit=len``).
    """

    def __init__(self, sequencer: TradeSequencer, venue: str, symbol: str, max_per_request: int = 1000) -> None:
        if max_per_request < 1:
            raise ConfigError(f"max_per_request must be >= 1, not {max_per_request}")
        self.sequencer = sequencer
        self.venue = venue
        self.symbol = symbol
        self.max_per_request = max_per_request
        self.requests: list[IdRange] = plan_requests(sequencer.missing(venue, symbol), max_per_request)
        self._done: set[IdRange] = set()

    def merge(self, trades: Iterable[Trade]) -> list[Trade]:
        """Merge a REST answer: the trades that fill holes, sorted by id, no duplicates."""
        return self.sequencer.fill(self.venue, self.symbol, trades)

    def done(self, request: IdRange) -> None:
        """Say the answer to ``request`` was merged (whatever it contained)."""
        self._done.add(request)

    @property
    def complete(self) -> bool:
        """Every planned request was answered."""
        return all(r in self._done for r in self.requests)

    def pending(self) -> list[IdRange]:
        """The planned requests not yet answered."""
        return [r for r in self.requests if r not in self._done]

    def missing(self) -> list[IdRange]:
        """The ids of the planned ranges still missing from the tape, exactly. O(h + r)."""
        holes = self.sequencer.missing(self.venue, self.symbol)
        out: list[IdRange] = []
        for req in self.requests:
            for hole in holes:
                first = max(req.first, hole.first)
                last = min(req.last, hole.last)
                if first <= last:
                    out.append(IdRange(first, last))
        return _merge_ranges(out)


def _id_of(item: tuple[int, Trade]) -> int:
    return item[0]


def plan_requests(holes: Iterable[IdRange], max_per_request: int) -> list[IdRange]:
    """Split id ranges into request ranges of at most ``max_per_request`` ids.

    Adjacent small holes are not merged: a request for ids that were
    received is wasted weight. O(total requests).
    """
    if max_per_request < 1:
        raise ConfigError(f"max_per_request must be >= 1, not {max_per_request}")
    out: list[IdRange] = []
    for hole in holes:
        first = hole.first
        while first <= hole.last:
            last = min(hole.last, first + max_per_request - 1)
            out.append(IdRange(first, last))
            first = last + 1
    return out


def _merge_ranges(ranges: list[IdRange]) -> list[IdRange]:
    ranges = sorted(ranges, key=lambda r: r.first)
    out: list[IdRange] = []
    for r in ranges:
        if out and r.first <= out[-1].last + 1:
            if r.last > out[-1].last:
                out[-1] = IdRange(out[-1].first, r.last)
        else:
            out.append(r)
    return out
