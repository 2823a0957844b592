"""A client's N-level view of a mock market's book, and the diffs that keep it
in step — with the book faults applied — for mocks of venues whose book feed
is "a snapshot, then changes to the top N levels, each naming the previous
message" (Bitget, Poloniex, HTX).

A venue that sends only the top N levels sends no delete for a level pushed
beyond N (the client trims it); a level gone from the market is deleted. The
view is what the client should hold; ``seq`` is the id of the last message
rendered for it.
"""

from __future__ import annotations

from collections.abc import Callable

from wsmux.testing._market import Market
from wsmux.testing._server import Faults
from wsmux.testing.okx import _diff, _top  # the same N-level view protocol as OKX

__all__ = ["BookView", "Levels", "Render"]

Levels = list[tuple[int, int]]
"""``(price ticks, size lots)`` changes; size 0 deletes."""
Render = Callable[[Levels, Levels, int, int], str]
"""Render one book message: ``(bid changes, ask changes, previous id, id)``."""


class BookView:
    """What one connection's client should hold for one instrument.

    Args:
        seq: the id the first message will follow.
        depth: levels per side the venue sends.
    """

    __slots__ = ("asks", "bids", "depth", "held", "seq")

    def __init__(self, seq: int, depth: int) -> None:
        self.seq = seq
        self.depth = depth
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.held: str | None = None

    def reset(self, market: Market) -> tuple[Levels, Levels]:
        """Take the market's current top levels (a snapshot); returns them best first."""
        self.bids, self.asks = _top(market, self.depth)
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())

    def updates(
        self,
        market: Market,
        faults: Faults,
        render: Render,
        *,
        next_seq: Callable[[int], int] = lambda seq: seq + 1,
        always: bool = False,
    ) -> list[str]:
        """The messages of one market step: the diff (when the view changed, or
        ``always``), with the faults ``skip_seq`` (rendered, numbered, lost),
        ``duplicate``, ``crossed`` (an extra message puts a bid at the best
        ask) and ``reorder`` (held back, sent after the next one) applied."""
        bids, asks = _top(market, self.depth)
        bid_changes = _diff(self.bids, bids, market.bids)
        ask_changes = _diff(self.asks, asks, market.asks)
        out: list[str] = []
        if bid_changes or ask_changes or always:
            prev, self.seq = self.seq, next_seq(self.seq)
            self.bids, self.asks = bids, asks
            if not faults.take("skip_seq"):  # else: the message is lost on the way
                out.append(render(bid_changes, ask_changes, prev, self.seq))
                if faults.take("duplicate"):
                    out.append(out[-1])
        if faults.take("crossed"):
            best_ask = min(self.asks)
            prev, self.seq = self.seq, next_seq(self.seq)
            self.bids[best_ask] = 1
            out.append(render([(best_ask, 1)], [], prev, self.seq))
        if out and faults.take("reorder"):
            self.held = out.pop(0)
        elif out and self.held is not None:
            out.insert(1, self.held)
            self.held = None
        return out
