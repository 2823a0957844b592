"""Streaming analytics on wsmux events: operators fed events, emitting typed events.

Every analytic is an :class:`Operator` (sans-I/O: ``update(event)`` returns
output events, ``reset()`` forgets). :func:`attach` feeds operators from a
:class:`~wsmux.Stream` and returns a stream of their outputs;
:meth:`wsmux.Multiplexer.analyze` subscribes and attaches in one call.
Outputs derive from :class:`AnalyticEvent` and convert to dicts/JSON like
every wsmux event. Book-fed operators emit :class:`Suspended` /
:class:`Resumed` when their input book becomes unusable / usable again.
"""

from __future__ import annotations

from wsmux.analytics._operator import (
    NOTHING,
    AnalyticEvent,
    BookValidity,
    Operator,
    PerInstrument,
    Resumed,
    Suspended,
    attach,
)
from wsmux.convert import register_event

register_event(Suspended, "suspended")
register_event(Resumed, "resumed")

__all__ = [
    "NOTHING",
    "AnalyticEvent",
    "BookValidity",
    "Operator",
    "PerInstrument",
    "Resumed",
    "Suspended",
    "attach",
]
