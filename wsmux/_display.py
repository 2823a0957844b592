"""Numbers as a person reads them (reprs, the CLI), never as float noise.

Prices and sizes are floats (see the design's "Numbers"): ``0.1 + 0.2`` is
``0.30000000000000004`` and a size of 0.00005 prints as ``5e-05``. For display
only, :func:`plain` writes a float with at most 15 significant digits and no
exponent, and :func:`by_step` rounds it to the decimals of the instrument's
tick or lot size where that is known. Values are never changed, only shown.
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["by_step", "decimals", "difference", "plain"]

_SIGNIFICANT = 15
_PLAIN_RANGE = (1e-12, 1e15)
"""Magnitudes written without an exponent; outside it (garbage data) the
float's own repr is kinder than hundreds of zeros."""


def plain(value: float) -> str:
    """``value`` with at most 15 significant digits, no exponent, no trailing
    zeros: ``29999.99`` for ``29999.989999999998``, ``0.3``, ``0.00005``,
    ``2.0``.
    NaN, infinities and magnitudes outside 1e-12..1e15 keep Python's repr."""
    if not math.isfinite(value) or (value and not _PLAIN_RANGE[0] <= abs(value) < _PLAIN_RANGE[1]):
        return repr(value)
    text = f"{value:.{_SIGNIFICANT}g}"
    if "e" in text:
        text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"  # still reads as a float


def decimals(step: float) -> int:
    """Decimals of a tick or lot size: ``0.01`` → 2, ``0.5`` → 1, ``1``/``10`` → 0."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def by_step(value: float, step: float | None) -> str:
    """``value`` written with the decimals of ``step`` (a tick or lot size),
    or :func:`plain` when ``step`` is unknown (``None``) or ``value`` not finite."""
    if step is None or not step > 0 or not math.isfinite(value):
        return plain(value)
    return f"{value:.{decimals(step)}f}"


def difference(high: float, low: float, step: float | None) -> str:
    """``high - low`` (a spread) by ``step``; with no step, with as many
    decimals as the two numbers need (:func:`plain`), so ``30000.01 - 30000.0``
    is ``0.01``, not the ``0.00999999999839929`` the subtraction gives."""
    if step is not None or not (math.isfinite(high) and math.isfinite(low)):
        return by_step(high - low, step)
    places = max(len(plain(v).partition(".")[2]) for v in (high, low))
    return f"{high - low:.{places}f}"
