"""The operator contract: how every analytic is fed events and emits events.

An *operator* is a small sans-I/O object (no sockets, no sleeping, no clock:
time comes from the events it is fed). The caller, or :func:`attach`, feeds it
one event at a time with :meth:`Operator.update`; it returns the output events
that input produced — usually none (the shared empty tuple :data:`NOTHING`, so
an input that emits nothing allocates nothing). Outputs are immutable event
classes deriving from :class:`AnalyticEvent`, registered with
:func:`wsmux.convert.register_event`, so they iterate, call back, log and go to
sinks like any market event.

Every output carries ``venue``, ``symbol``, ``ts`` (the venue's time of the
input that produced or closed it, ns, ``None`` when the venue sends none) and
``recv_ns`` (the local receive time of that input).

Book-fed operators never compute from an invalid or stale book silently: a
:class:`BookValidity` follows the book's state from the events themselves
(:class:`~wsmux.Gap`, :class:`~wsmux.Resynced`, :class:`~wsmux.Stale`,
:class:`~wsmux.Disconnected`, book snapshots and updates) and the operator
emits :class:`Suspended` (with the reason) when its input book stops being
usable and :class:`Resumed` when it is usable again.

Theory of operation of :class:`BookValidity` (a two-state machine):

* It starts *suspended* with reason ``"no book yet"``, not yet reported.
* ``BookSnapshot``, ``BookUpdate``, ``Quote`` (a BBO feed) or ``Resynced``
  (channel ``BOOK``) of its venue and symbol make the book *valid* (updates also refresh its age); the
  transition yields a :class:`Resumed` if a :class:`Suspended` was reported.
* ``Gap`` (channel ``BOOK``, this symbol) → suspended, ``"book invalid: <reason>"``;
  ``Stale`` of this symbol (or of the whole connection, ``symbol`` None) →
  ``"book stale"``; ``Disconnected`` of the venue → ``"disconnected"``;
  with ``max_age_ns``, an input whose exchange time is more than that past
  the book's last update → ``"book stale"`` (exchange time, not a clock).
  The transition from valid into suspended yields a :class:`Suspended`.
* An input that needs the book while it is suspended and unreported
  (:meth:`BookValidity.require`) yields the :class:`Suspended` with the
  current reason — so even the first inputs before any book are reported.
* Everything else yields nothing: one report per episode.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from wsmux.errors import ConfigError
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Disconnected,
    Event,
    Gap,
    MarketEvent,
    Quote,
    Resynced,
    Stale,
    event,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from wsmux.stream import Overflow, Stream

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

NOTHING: Final[tuple[()]] = ()
"""What :meth:`Operator.update` returns when an input emits nothing (shared: no allocation)."""


class AnalyticEvent(MarketEvent):
    """Base class of every operator output.

    Every subclass has at least the attributes ``venue``, ``symbol``, ``ts``
    (venue time in ns of the input that produced or closed the output, or
    ``None``) and ``recv_ns`` (local receive time of that input), is built
    with :func:`wsmux.model.event` and is registered with
    :func:`wsmux.convert.register_event`.
    """

    __slots__ = ()


@event
class Suspended(AnalyticEvent):
    """Operator ``operator`` stopped computing from its input book: ``reason``
    says why (``"book invalid: sequence"``, ``"book stale"``, ``"disconnected"``,
    ``"no book yet"``). A :class:`Resumed` follows when the book is usable again."""

    venue: str
    symbol: str
    operator: str
    reason: str
    ts: int | None
    recv_ns: int


@event
class Resumed(AnalyticEvent):
    """Operator ``operator`` computes from its input book again (after :class:`Suspended`)."""

    venue: str
    symbol: str
    operator: str
    ts: int | None
    recv_ns: int


class Operator(abc.ABC):
    """An analytic: fed events, emits :class:`AnalyticEvent` outputs.

    Subclasses set :attr:`accepts` (the event classes they read, so
    :func:`attach` subscribes only to those) and :attr:`name` (a label in
    outputs and error reports), and implement :meth:`update` and
    :meth:`reset`. They are sans-I/O: time comes from the events.
    """

    name: str = "operator"
    accepts: tuple[type[Event], ...] = ()
    """Event classes (or bases) this operator reads; others are never passed to it."""

    @abc.abstractmethod
    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        """Feed one event; return the outputs it produced, oldest first
        (:data:`NOTHING` when none). O(1) amortised unless stated.

        Raises:
            ConfigError: the event breaks the operator's contract (e.g. another
                instrument than the one it follows).
        """

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget all state (as if newly built with the same settings)."""

    def flush(self) -> Sequence[AnalyticEvent]:
        """End of data: emit what is still open (e.g. the last, unfinished bar)
        and close it. Default: nothing. Not called by :func:`attach` (a live
        stream has no end); replays and exports call it."""
        return NOTHING

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _instrument_check(bound: tuple[str, str], event: Any, name: str) -> None:
    raise ConfigError(
        f"operator {name} follows {bound[0]} {bound[1]} but was fed {event.venue} {event.symbol}: "
        "use one operator per instrument (wsmux.analytics.PerInstrument)"
    )


class PerInstrument(Operator):
    """One operator per (venue, symbol), built on first sight by ``factory(venue, symbol)``.

    Events without a ``symbol`` (a venue-wide ``Disconnected`` or ``Stale``)
    go to every operator of that venue. ``accepts`` is the inner operators'
    (without it, ``factory("", "")`` is called once to learn it: pass it
    when the factory cannot build an operator for no instrument).
    Cost: one dict lookup per event on top of the inner operator.
    """

    def __init__(
        self,
        factory: Callable[[str, str], Operator],
        *,
        accepts: tuple[type[Event], ...] | None = None,
        name: str = "",
    ) -> None:
        self._factory = factory
        self._ops: dict[tuple[str, str], Operator] = {}
        if accepts is None:  # learn it from an operator built for no instrument
            probe = factory("", "")
            accepts, name = probe.accepts, name or f"per-instrument {probe.name}"
        self.accepts = accepts
        self.name = name or "per-instrument"

    @property
    def operators(self) -> dict[tuple[str, str], Operator]:
        """The live inner operators by (venue, symbol) (read-only use)."""
        return self._ops

    def update(self, event: Event) -> Sequence[AnalyticEvent]:
        venue = getattr(event, "venue", None)
        symbol = getattr(event, "symbol", None)
        if venue is None:
            return NOTHING
        if symbol is None:
            out: list[AnalyticEvent] = []
            for (v, _s), each in self._ops.items():
                if v == venue:
                    out.extend(each.update(event))
            return out or NOTHING
        key = (venue, symbol)
        op = self._ops.get(key)
        if op is None:
            op = self._ops[key] = self._factory(venue, symbol)
        return op.update(event)

    def reset(self) -> None:
        self._ops.clear()

    def flush(self) -> Sequence[AnalyticEvent]:
        out: list[AnalyticEvent] = []
        for op in self._ops.values():
            out.extend(op.flush())
        return out or NOTHING


class BookValidity:
    """Whether the book of one venue and symbol may feed a feature, followed
    from the events (see the module docstring's theory of operation).

    Args:
        operator: the operator's name, put in the Suspended/Resumed events.
        max_age_ns: suspend when an input's exchange time is more than this
            past the book's last update (None: no age check).
    """

    __slots__ = ("_reported", "last_ts", "max_age_ns", "operator", "reason", "symbol", "valid", "venue")

    def __init__(self, operator: str, *, max_age_ns: int | None = None) -> None:
        self.operator = operator
        self.max_age_ns = max_age_ns
        self.venue = ""
        self.symbol = ""
        self.valid = False
        self.reason = "no book yet"
        """Why the book is unusable ("" while valid)."""
        self.last_ts: int | None = None
        """Exchange time of the book's last snapshot or update."""
        self._reported = False

    def reset(self) -> None:
        """Back to the initial state (suspended, "no book yet", nothing reported)."""
        self.valid = False
        self.reason = "no book yet"
        self.last_ts = None
        self._reported = False

    def observe(self, ev: Event) -> Suspended | Resumed | None:
        """Follow one event; the reported transition it caused, if any. O(1)."""
        cls = type(ev)
        if cls is BookUpdate or cls is BookSnapshot or cls is Quote:
            book: BookUpdate = ev  # type: ignore[assignment]
            self.venue, self.symbol = book.venue, book.symbol
            if book.ts is not None:
                self.last_ts = book.ts
            if not self.valid:
                return self._resume(book.ts, book.recv_ns)
            return None
        if cls is Gap:
            gap: Gap = ev  # type: ignore[assignment]
            if gap.channel is Channel.BOOK and self._mine(gap.venue, gap.symbol):
                return self._invalidate(f"book invalid: {gap.reason.value}", None, gap.recv_ns)
        elif cls is Resynced:
            rs: Resynced = ev  # type: ignore[assignment]
            if rs.channel is Channel.BOOK and self._mine(rs.venue, rs.symbol) and not self.valid:
                return self._resume(None, rs.recv_ns)
        elif cls is Stale:
            st: Stale = ev  # type: ignore[assignment]
            if st.channel in (None, Channel.BOOK) and self._mine(st.venue, st.symbol):
                return self._invalidate("book stale", None, st.recv_ns)
        elif cls is Disconnected:
            dc: Disconnected = ev  # type: ignore[assignment]
            if self.venue in ("", dc.venue):
                return self._invalidate("disconnected", None, dc.recv_ns)
        return None

    def require(self, ts: int | None, recv_ns: int) -> Suspended | None:
        """An input at exchange time ``ts`` wants to use the book: check its age
        (``max_age_ns``) and return the :class:`Suspended` to emit if the book
        is unusable and that was not reported yet in this episode. Read
        :attr:`valid` afterwards. O(1)."""
        if self.valid:
            max_age = self.max_age_ns
            if max_age is None or ts is None or self.last_ts is None or ts - self.last_ts <= max_age:
                return None
            return self._invalidate("book stale", ts, recv_ns)
        if self._reported:
            return None
        self._reported = True
        return Suspended(self.venue, self.symbol, self.operator, self.reason, ts, recv_ns)

    def mark(
        self, valid: bool, ts: int | None, recv_ns: int, reason: str = "book invalid"
    ) -> Suspended | Resumed | None:
        """Set the state from an outside check (e.g. :attr:`wsmux.BookView.valid`
        read at an input); the reported transition, if any. O(1)."""
        if valid is self.valid:
            return None
        return self._resume(ts, recv_ns) if valid else self._invalidate(reason, ts, recv_ns)

    def _invalidate(self, reason: str, ts: int | None, recv_ns: int) -> Suspended | None:
        was_valid = self.valid
        self.valid = False
        self.reason = reason
        if not was_valid:
            return None  # already suspended: one report per episode (require() reports a first one)
        self._reported = True
        return Suspended(self.venue, self.symbol, self.operator, reason, ts, recv_ns)

    def _resume(self, ts: int | None, recv_ns: int) -> Resumed | None:
        self.valid = True
        self.reason = ""
        if not self._reported:
            return None  # nobody was told it was suspended
        self._reported = False
        return Resumed(self.venue, self.symbol, self.operator, ts, recv_ns)

    def _mine(self, venue: str, symbol: str | None) -> bool:
        if self.venue == "":
            self.venue = venue
            if symbol is not None:
                self.symbol = symbol
        return venue == self.venue and (symbol is None or self.symbol in ("", symbol))


def _feeder(op: Operator, out: Stream) -> Callable[[Event], None]:
    update = op.update
    put = out._put

    def feed(event: Event) -> None:
        try:
            outputs = update(event)
        except Exception as exc:  # reported in the output stream as an Error (kind CALLBACK)
            out._callback_error(update, exc)
            return
        for output in outputs:
            put(output)

    feed.__qualname__ = f"feed[{op.name}]"
    return feed


def _check_accepts(op: Operator) -> None:
    if not isinstance(op, Operator):
        raise ConfigError(f"not a wsmux.analytics.Operator: {op!r}")
    accepts = op.accepts
    if not accepts:
        raise ConfigError(f"operator {op.name} accepts no event class")
    for i, a in enumerate(accepts):
        for b in accepts[i + 1 :]:
            if issubclass(a, b) or issubclass(b, a):
                raise ConfigError(f"operator {op.name}: accepts lists {a.__name__} and {b.__name__}, which overlap")


def attach(
    source: Stream,
    *operators: Operator,
    maxsize: int = 100_000,
    overflow: Overflow | str = "drop_oldest",
    name: str = "",
    on_close: Callable[[Stream], Awaitable[None]] | None = None,
) -> Stream:
    """Feed ``operators`` from ``source`` and return a new :class:`~wsmux.Stream`
    of their outputs.

    Each operator is registered as a sync callback on ``source`` for its
    :attr:`~Operator.accepts` classes, so it sees events inline as they are
    dispatched, in order. An operator that raises is reported as an
    :class:`~wsmux.Error` (kind ``CALLBACK``) in the output stream and counted;
    the stream keeps running. Closing the output stream detaches the
    operators (then calls ``on_close``); closing ``source`` closes the output
    too (what it buffered can still be read).

    ``overflow`` (an :class:`~wsmux.Overflow` or its value) defaults to
    ``DROP_OLDEST`` (counted and reported): a plain
    source stream cannot pause the connections feeding it for a slow output
    reader. :meth:`wsmux.Multiplexer.analyze` can, and defaults to ``BLOCK``.

    Raises:
        ConfigError: no operators, an object that is not an :class:`Operator`,
            or an operator whose ``accepts`` is empty or overlapping.
        ClosedError: ``source`` is closed.
    """
    from wsmux.stream import Overflow, Stream  # the stream layer (asyncio) only when attaching

    if not operators:
        raise ConfigError("attach() needs at least one operator")
    try:
        policy = overflow if isinstance(overflow, Overflow) else Overflow(overflow)
    except ValueError:
        raise ConfigError(f"unknown overflow policy {overflow!r}") from None
    for op in operators:
        _check_accepts(op)
    registered: list[tuple[type[Event], Callable[[Event], None]]] = []

    async def detach(stream: Stream) -> None:
        for cls, fn in registered:
            source.off(cls, fn)
        source._forget_dependent(stream)
        if on_close is not None:
            await on_close(stream)

    out = Stream(
        source.subscriptions,
        maxsize=maxsize,
        overflow=policy,
        name=name or f"analytics-{'+'.join(op.name for op in operators)}",
        on_close=detach,
        clock_ns=source._clock_ns,
    )
    for op in operators:
        feed = _feeder(op, out)
        for cls in op.accepts:
            source.on(cls, feed)
            registered.append((cls, feed))
    source._close_with_me(out)  # the source ends: so do its outputs (buffered outputs stay readable)
    return out
