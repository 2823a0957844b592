"""Helpers for the adapters' reference-data hooks (instruments endpoints).

Each venue's :meth:`~wsmux.adapter.Adapter.parse_instruments` reads its own
schema; what they share is here: decoding a body into JSON with a typed error,
the venue's number text (``"0.01000000"``) or decimal count (Kraken's
``pair_decimals``) as a float step, and keeping only the instruments wsmux
can name with a unified symbol. Sans-I/O, like the adapters.
"""

from __future__ import annotations

from typing import Any

from wsmux._json import JSONDecodeError, loads
from wsmux.errors import MalformedMessage, UnknownSymbol
from wsmux.subscriptions import parse_symbol

__all__ = ["BODY_ERRORS", "json_body", "step", "step_of_decimals", "unified_or_none"]

BODY_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
"""What reading a body of the wrong shape raises; parse_instruments turns
these into :class:`~wsmux.errors.MalformedMessage`."""


def json_body(venue: str, body: bytes) -> Any:
    """``body`` decoded, or :class:`~wsmux.errors.MalformedMessage` naming ``venue``."""
    try:
        return loads(body)
    except JSONDecodeError as exc:
        raise MalformedMessage(f"{venue}: instruments body is not JSON", body) from exc


def step(value: Any) -> float | None:
    """A tick or lot size from the venue's text or number; ``None`` when
    absent, empty or not above zero (the venue does not say)."""
    if value is None or value == "":
        return None
    number = float(value)
    return number if number > 0 else None


def step_of_decimals(decimals: Any) -> float | None:
    """The step of a number written with ``decimals`` decimals (``2`` →
    ``0.01``); ``None`` when absent. Exact: ``float("1e-2")`` is the float
    nearest to 0.01, as the venue's text would be."""
    if decimals is None:
        return None
    if decimals.__class__ is not int or decimals < 0:
        raise TypeError(f"decimals must be a non-negative integer, not {decimals!r}")
    return float(f"1e-{decimals}")


def unified_or_none(symbol: str) -> str | None:
    """``symbol`` if it is a well-formed unified symbol, else ``None``
    (instruments wsmux cannot name are left out of the list)."""
    try:
        parse_symbol(symbol)
    except UnknownSymbol:
        return None
    return symbol
