"""A seeded random-walk market that mock exchanges publish.

Prices and sizes are integers (ticks and lots) inside, rendered as the venue's
decimal text on the way out, so the mock's own book is exact and the client's
book can be compared with it level by level.
"""

from __future__ import annotations

import random

import attrs

from wsmux.model import Side

__all__ = ["Change", "Market", "MarketTrade"]


@attrs.frozen(slots=True)
class MarketTrade:
    """A trade of the mock market (integer ticks and lots)."""

    trade_id: int
    price: int
    size: int
    side: Side


@attrs.frozen(slots=True)
class Change:
    """One step of the market: absolute level sizes (0 deletes), maybe a trade."""

    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
    trade: MarketTrade | None


class Market:
    """The mock's own truth for one symbol.

    Args:
        seed: random seed (same seed, same market).
        mid: starting mid price in ticks.
        levels: levels per side kept around the mid.
        tick: decimal text of one price tick, e.g. ``"0.01"``.
        lot: decimal text of one size lot, e.g. ``"0.001"``.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        mid: int = 3_000_000,
        levels: int = 50,
        tick: str = "0.01",
        lot: str = "0.00001",
    ) -> None:
        self.rng = random.Random(seed)
        self.tick = tick
        self.lot = lot
        self._pdec = len(tick.split(".")[1]) if "." in tick else 0
        self._sdec = len(lot.split(".")[1]) if "." in lot else 0
        self._pmul = int(tick.replace(".", ""))
        self._smul = int(lot.replace(".", ""))
        self.levels = levels
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.next_trade_id = 1
        rng = self.rng
        for i in range(1, levels + 1):
            self.bids[mid - i] = rng.randint(1, 10_000)
            self.asks[mid + i] = rng.randint(1, 10_000)

    # --- rendering ----------------------------------------------------------------

    def price_text(self, ticks: int) -> str:
        """Venue text of a price given in ticks (fixed decimals)."""
        return _fixed(ticks * self._pmul, self._pdec)

    def size_text(self, lots: int) -> str:
        """Venue text of a size given in lots (fixed decimals)."""
        return _fixed(lots * self._smul, self._sdec)

    def price(self, ticks: int) -> float:
        return float(self.price_text(ticks))

    def size(self, lots: int) -> float:
        return float(self.size_text(lots))

    def best_bid(self) -> int:
        return max(self.bids)

    def best_ask(self) -> int:
        return min(self.asks)

    def depth(self) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        """The book as floats, best first (to compare with an OrderBook)."""
        bids = tuple((self.price(p), self.size(s)) for p, s in sorted(self.bids.items(), reverse=True))
        asks = tuple((self.price(p), self.size(s)) for p, s in sorted(self.asks.items()))
        return bids, asks

    # --- evolution ----------------------------------------------------------------

    def step(self) -> Change:
        """Move the market one step; returns what changed."""
        rng = self.rng
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        trade: MarketTrade | None = None
        bb, ba = self.best_bid(), self.best_ask()
        r = rng.random()
        if r < 0.25:
            # a trade that eats (part of) the top of one side
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            book, price = (self.asks, ba) if side is Side.BUY else (self.bids, bb)
            size = rng.randint(1, book[price])
            trade = MarketTrade(self.next_trade_id, price, size, side)
            self.next_trade_id += 1
            left = book[price] - size
            if left and len(book) > 1:
                book[price] = left
            elif len(book) > 1:
                del book[price]
                left = 0
            else:
                left = book[price]
            (asks if side is Side.BUY else bids)[price] = left
        n = rng.randint(1, 3)
        for _ in range(n):
            is_bid = rng.random() < 0.5
            book, out = (self.bids, bids) if is_bid else (self.asks, asks)
            best_other = self.best_ask() if is_bid else self.best_bid()
            offset = rng.randint(0, self.levels)
            price = (best_other - 1 - offset) if is_bid else (best_other + 1 + offset)
            if price <= 0:
                continue
            if price in book and rng.random() < 0.3 and len(book) > 5:
                del book[price]
                out[price] = 0
            else:
                book[price] = rng.randint(1, 10_000)
                out[price] = book[price]
        # keep the book bounded: drop the levels furthest from the top
        for book, out, far in ((self.bids, bids, min), (self.asks, asks, max)):
            while len(book) > self.levels * 2:
                p = far(book)
                del book[p]
                out[p] = 0
        return Change(tuple(bids.items()), tuple(asks.items()), trade)


def _fixed(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"
