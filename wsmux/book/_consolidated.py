"""Consolidated best bid/offer across venues for one unified instrument.

Theory of operation: each venue contributes its current top of book (from a
synced L2 book or a quote feed) together with whether it is *valid*. The
consolidated best bid is the highest valid venue bid, the best ask the lowest
valid venue ask; ties go to the larger size, then to the venue id (stable).
A venue whose book is invalid (gap, disconnect) is left out until it is valid
again, so the consolidated view is never built from a book wsmux does not
vouch for. A consolidated bid at or above the consolidated ask is not an
error (venues are independent markets): :meth:`ConsolidatedBBO.locked_or_crossed`
reports it.

Sans-I/O: updates are pushed in; nothing is read from a clock.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["ConsolidatedBBO", "VenueTop"]

_NAN = math.nan


@attrs.frozen(slots=True)
class VenueTop:
    """One venue's top of book as seen by the consolidator."""

    venue: str
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    valid: bool
    recv_ns: int


class ConsolidatedBBO:
    """Best bid/offer across venues for one symbol.

    Args:
        symbol: the unified symbol.
        venues: the venues that contribute.

    Every method is O(v) for v venues (a handful), allocation-free on reads.
    """

    __slots__ = ("_tops", "symbol", "venues")

    def __init__(self, symbol: str, venues: tuple[str, ...]) -> None:
        self.symbol = symbol
        self.venues = venues
        self._tops: dict[str, VenueTop] = {}

    def update(
        self,
        venue: str,
        bid_price: float,
        bid_size: float,
        ask_price: float,
        ask_size: float,
        valid: bool,
        recv_ns: int,
    ) -> bool:
        """Record ``venue``'s top of book. Returns True if the consolidated
        best bid or ask changed (price, size or venue)."""
        before = (self.best_bid(), self.best_ask())
        self._tops[venue] = VenueTop(venue, bid_price, bid_size, ask_price, ask_size, valid, recv_ns)
        return (self.best_bid(), self.best_ask()) != before

    def invalidate(self, venue: str, recv_ns: int) -> bool:
        """Leave ``venue`` out until its next valid update."""
        top = self._tops.get(venue)
        if top is None or not top.valid:
            return False
        return self.update(venue, _NAN, _NAN, _NAN, _NAN, False, recv_ns)

    def best_bid(self) -> tuple[float, float, str] | None:
        """``(price, size, venue)`` of the highest valid bid, or None."""
        best: VenueTop | None = None
        for top in self._tops.values():
            if not top.valid or math.isnan(top.bid_price):
                continue
            if (
                best is None
                or top.bid_price > best.bid_price
                or (top.bid_price == best.bid_price and (top.bid_size, best.venue) > (best.bid_size, top.venue))
            ):
                best = top
        return None if best is None else (best.bid_price, best.bid_size, best.venue)

    def best_ask(self) -> tuple[float, float, str] | None:
        """``(price, size, venue)`` of the lowest valid ask, or None."""
        best: VenueTop | None = None
        for top in self._tops.values():
            if not top.valid or math.isnan(top.ask_price):
                continue
            if (
                best is None
                or top.ask_price < best.ask_price
                or (top.ask_price == best.ask_price and (top.ask_size, best.venue) > (best.ask_size, top.venue))
            ):
                best = top
        return None if best is None else (best.ask_price, best.ask_size, best.venue)

    def locked_or_crossed(self) -> bool:
        """True if the best bid (one venue) >= the best ask (another)."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def tops(self) -> dict[str, VenueTop]:
        """Every venue's last top of book (a copy)."""
        return dict(self._tops)

    def __repr__(self) -> str:
        return f"<ConsolidatedBBO {self.symbol} bid={self.best_bid()} ask={self.best_ask()}>"
