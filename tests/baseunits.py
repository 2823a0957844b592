"""Compare a multiplexer's book in base units with a mock's book in contracts.

A multiplexer loads each venue's instrument list and reports sizes of
contract venues in base units; the mocks keep their markets in contracts.
:func:`in_base_units` scales the mock's depth by the instrument's contract
size (an inverse contract's face value divided by the level's price), and
:func:`assert_same_depth` compares level by level: prices exactly,
sizes to float precision (each venue's adapter multiplies or divides by the
contract size, which may differ from this multiplication in the last bit).
"""

from __future__ import annotations

import math

from wsmux import Multiplexer
from wsmux.model import Levels

__all__ = ["assert_same_depth", "in_base_units"]

Depth = tuple[Levels, Levels]


def in_base_units(mux: Multiplexer, venue: str, symbol: str, depth: Depth) -> Depth:
    """``depth`` (the mock's, in contracts) in base units, by the contract size
    of the instrument the multiplexer loaded (unchanged when it has none)."""
    inst = mux.instrument(venue, symbol)
    size = inst.contract_size if inst is not None else None
    if size is None:
        return depth
    bids, asks = depth
    if inst is not None and inst.inverse:  # coins at each level's price: contracts * face / price
        return tuple((p, s * size / p) for p, s in bids), tuple((p, s * size / p) for p, s in asks)
    return tuple((p, s * size) for p, s in bids), tuple((p, s * size) for p, s in asks)


def assert_same_depth(actual: Depth, expected: Depth) -> None:
    for side_actual, side_expected in zip(actual, expected, strict=True):
        assert [p for p, _ in side_actual] == [p for p, _ in side_expected]
        for (price, got), (_, want) in zip(side_actual, side_expected, strict=True):
            assert math.isclose(got, want, rel_tol=1e-12), (price, got, want)
