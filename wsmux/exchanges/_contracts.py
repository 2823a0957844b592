"""Contract sizes → base units, shared by venues that count sizes in contracts.

A venue's instruments endpoint gives each linear contract's size in base units
(KuCoin ``multiplier``, Gate ``quanto_multiplier``). :class:`ContractSizes`
learns them from :class:`~wsmux.model.Instrument` lists and converts sizes.
Where the contract size is ``1 / n`` for a whole ``n`` (0.001, 0.0001...) it
divides by ``n`` instead of multiplying, so ``284`` contracts of ``0.001`` are
``0.284`` exactly, not ``0.28400000000000003``.

Inverse contracts (:attr:`~wsmux.model.Instrument.inverse`: a fixed amount of
the quote currency per contract, e.g. 100 USD) have no fixed base amount:
:meth:`ContractSizes.inverse_to_base` gives ``contracts * face / price``, the
base amount the contracts are worth at that price.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wsmux.model import Instrument

__all__ = ["ContractSizes"]


class ContractSizes:
    """Per-symbol contract sizes of one venue (unified symbol → base per contract)."""

    __slots__ = ("_divisors", "_faces", "_multipliers", "venue")

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self._divisors: dict[str, float] = {}
        self._multipliers: dict[str, float] = {}
        self._faces: dict[str, float] = {}  # inverse contracts: quote currency per contract

    def learn(self, instruments: Sequence[Instrument]) -> None:
        """Take the ``contract_size`` of this venue's instruments (``None``:
        sizes of that instrument are reported as the venue sends them)."""
        for inst in instruments:
            if inst.venue != self.venue:
                continue
            self._divisors.pop(inst.symbol, None)
            self._multipliers.pop(inst.symbol, None)
            self._faces.pop(inst.symbol, None)
            size = inst.contract_size
            if size is None or not size > 0:
                continue
            if inst.inverse:
                self._faces[inst.symbol] = size
                continue
            per_base = 1.0 / size
            if per_base == round(per_base) and per_base * size == 1.0:
                self._divisors[inst.symbol] = per_base
            else:
                self._multipliers[inst.symbol] = size

    def known(self, symbol: str) -> bool:
        """True when sizes of ``symbol`` (a linear contract) are converted."""
        return symbol in self._divisors or symbol in self._multipliers

    def converts(self, symbol: str) -> bool:
        """True when sizes of ``symbol`` (linear or inverse) are converted."""
        return symbol in self._divisors or symbol in self._multipliers or symbol in self._faces

    def size(self, symbol: str, contracts: Any, price: Any) -> float:
        """``contracts`` of ``symbol`` in base units: :meth:`to_base` for a
        linear contract, :meth:`inverse_to_base` at ``price`` for an inverse
        one, unchanged (as a float) otherwise."""
        if symbol in self._faces:
            return self.inverse_to_base(symbol, contracts, price)
        return self.to_base(symbol, contracts)

    def face(self, symbol: str) -> float | None:
        """The quote-currency value of one contract of inverse ``symbol``, or
        ``None`` (not an inverse contract, or its size is not known)."""
        return self._faces.get(symbol)

    def inverse_to_base(self, symbol: str, contracts: Any, price: Any) -> float:
        """``contracts`` of inverse ``symbol`` in base units at ``price``
        (``contracts * face / price``); unchanged (as a float) when the face
        value is not known. A price that is not above zero gives NaN, which
        the book and the quality gate refuse."""
        size = float(contracts)
        face = self._faces.get(symbol)
        if face is None:
            return size
        px = float(price)
        return size * face / px if px > 0 else float("nan")

    def to_base(self, symbol: str, contracts: Any) -> float:
        """``contracts`` (number or decimal text) in base units; unchanged
        (as a float) for a symbol without a known contract size."""
        size = float(contracts)
        divisor = self._divisors.get(symbol)
        if divisor is not None:
            return size / divisor
        multiplier = self._multipliers.get(symbol)
        return size if multiplier is None else size * multiplier
