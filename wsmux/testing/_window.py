"""A top-N window over a mock :class:`~wsmux.testing.Market` book, for venues
whose book streams are depth-limited (Gate Order Book V2, Crypto.com ``book``).

:class:`BookWindow` remembers what a stream's subscribers hold (the top
``depth`` levels per side at the last message) and computes the changes of
one market step: levels new or changed inside the window, and deletes for
levels gone from the market. A level pushed *out* of the window by better ones
is not deleted (the client trims its book to the depth); a level that comes
back into the window is sent again.
"""

from __future__ import annotations

from wsmux.testing._market import Market

__all__ = ["BookWindow", "View"]

View = dict[int, int]
"""Price ticks → size lots."""


class BookWindow:
    """One depth-limited book stream of one symbol.

    Attributes:
        depth: levels per side.
        id: the stream's last update id (the venue's ``u``); the caller advances it.
        bids, asks: what the subscribers hold.
    """

    __slots__ = ("asks", "bids", "depth", "id")

    def __init__(self, market: Market, depth: int, first_id: int) -> None:
        self.depth = depth
        self.id = first_id
        self.bids, self.asks = self.top(market)

    def top(self, market: Market) -> tuple[View, View]:
        """The best ``depth`` levels per side of ``market`` now."""
        depth = self.depth
        return dict(sorted(market.bids.items(), reverse=True)[:depth]), dict(sorted(market.asks.items())[:depth])

    def step(self, market: Market) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Move the window to ``market`` now; return the (bid, ask) changes to send."""
        bids, asks = self.top(market)
        changes = (_changes(self.bids, bids, market.bids), _changes(self.asks, asks, market.asks))
        self.bids, self.asks = bids, asks
        return changes


def _changes(old: View, new: View, side: View) -> list[tuple[int, int]]:
    out = [(p, s) for p, s in new.items() if old.get(p) != s]
    out.extend((p, 0) for p in old if p not in new and p not in side)
    return out
