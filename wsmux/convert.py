"""Events to and from plain dicts and JSON (the ``--format jsonl`` form).

The event classes in :mod:`wsmux.model` know nothing about serialization; this
module owns the mapping, through one :mod:`cattrs` converter (:data:`converter`).

The dict form
-------------
An event becomes a flat ``dict`` with one key per attribute (the attribute
names of :mod:`wsmux.model`, unchanged) plus a ``"type"`` tag naming the class.
A trade::

    {"venue": "binance", "symbol": "BTC-USDT", "price": 50000.5, "size": 0.25,
     "side": "buy", "trade_id": "17", "ts": 1700000000000000000,
     "recv_ns": 1700000000000412000, "seq": None, "type": "trade"}

* ``"type"`` is the tag of :data:`EVENT_TAGS` (``"trade"``, ``"quote"``,
  ``"consolidated_quote"``, ``"book_snapshot"``, ``"book_update"``, ``"l3_snapshot"``,
  ``"order_update"``, ``"funding"``, ``"open_interest"``, ``"liquidation"``, ``"candle"``,
  ``"connected"``, ``"disconnected"``, ``"gap"``, ``"resynced"``,
  ``"stale"``, ``"error"``, ``"dropped"``). Tags are part of the format and
  do not follow renames of the classes. Key order is not significant (the
  tag comes last, which is the cheapest place to put it).
* Enums are their values (``Side.BUY`` → ``"buy"``, ``Channel.BOOK`` → ``"book"``).
* Book levels are lists of ``[price, size]`` lists, best first; the venue's
  text of levels (``bids_text``/``asks_text``) is lists of ``[price_text,
  size_text]``; L3 orders are ``[order_id, side, price, size]`` lists.
* Timestamps are integer nanoseconds; absent values are ``None``. Every
  attribute is present, defaults included, so a line is self-describing.

JSON is that dict serialized by :mod:`orjson` (UTF-8 bytes, no trailing
newline). JSON has no ``NaN``: a non-finite float (e.g. the empty side of a
:class:`~wsmux.Quote`) is written as ``null`` and reads back as ``nan`` in a
float attribute (as ``None`` in an optional one such as
``Funding.mark_price``).

Reading ignores *extra* keys (a newer wsmux may add attributes) and lets
attributes that have a default be omitted. :func:`from_dict` and
:func:`from_json` raise :class:`~wsmux.errors.ConfigError` (a ``ValueError``)
for anything that cannot be read as a wsmux event — no or an unknown
``"type"``, a missing attribute, a value that does not convert (an unknown
enum value, a level that is not a pair), or (``from_json``) text that is not
JSON. The caller handed in a bad value; wsmux did not receive it from a
venue, so it is not a :class:`~wsmux.errors.MalformedMessage`.

Speed: :func:`to_dict` uses cattrs' generated per-class functions with
hand-written hooks for levels, enums and optional primitives, so it does no
per-attribute type dispatch: it costs what building the dict by hand costs
(measured: 0.5 µs for a trade, 0.05 µs per book level). :func:`from_dict`
reads through a per-class function generated from the attrs fields that
applies the same conversions as cattrs' hooks and builds the event through
its layout; on any failure cattrs reads the dict again and raises its own
detailed error, so results and errors are cattrs' (measured on a loaded
machine: 0.6 µs for a trade, 1.9 µs for a 5-level book update, against 2.2
and 3.9 µs through cattrs).
"""

from __future__ import annotations

import enum
import math
import operator
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import cattrs
import orjson
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from wsmux.errors import ConfigError
from wsmux.model import (
    Anomaly,
    Backfilled,
    BookSide,
    BookSnapshot,
    BookUpdate,
    Candle,
    Connected,
    ConnectFailed,
    ConsolidatedQuote,
    Disconnected,
    Dropped,
    EndpointChanged,
    Error,
    Event,
    Funding,
    Gap,
    L3Snapshot,
    Levels,
    Liquidation,
    MarketEvent,
    OpenInterest,
    OrderUpdate,
    Quote,
    Resynced,
    SlowConsumer,
    Stale,
    StatusEvent,
    TextLevels,
    Trade,
    layout_of,
)

__all__ = ["EVENT_TAGS", "converter", "from_dict", "from_json", "register_event", "to_dict", "to_json"]

EVENT_TAGS: Final[Mapping[type[Event], str]] = types.MappingProxyType(
    _TAGS := {
        Trade: "trade",
        Quote: "quote",
        ConsolidatedQuote: "consolidated_quote",
        BookSnapshot: "book_snapshot",
        BookUpdate: "book_update",
        L3Snapshot: "l3_snapshot",
        OrderUpdate: "order_update",
        Funding: "funding",
        OpenInterest: "open_interest",
        Liquidation: "liquidation",
        Candle: "candle",
        Connected: "connected",
        ConnectFailed: "connect_failed",
        Disconnected: "disconnected",
        Gap: "gap",
        Resynced: "resynced",
        Stale: "stale",
        Error: "error",
        Dropped: "dropped",
        SlowConsumer: "slow_consumer",
        Backfilled: "backfilled",
        EndpointChanged: "endpoint_changed",
        Anomaly: "anomaly",
    }
)
"""The ``"type"`` tag of every event class (the tagged union of the dict form)."""

_TAG_KEY: Final = "type"

_NAN = math.nan
_PRIMITIVES = frozenset({int, float, str, bool, type(None)})
_L3Orders = tuple[tuple[str, BookSide, float, float], ...]
_IdRanges = tuple[tuple[int, int], ...]
_Structure = Callable[[Any, Any], Any]

converter = cattrs.Converter()
"""The converter that owns the dict form. ``converter.unstructure(event)``
equals :func:`to_dict`; ``converter.structure(d, Event)`` equals
:func:`from_dict`; ``converter.structure(d, Trade)`` reads one class."""


# --- hooks for the shapes events are made of -------------------------------------


def _union_args(t: Any) -> tuple[Any, ...]:
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        return typing.get_args(t)
    return ()


def _is_optional_primitive(t: Any) -> bool:
    args = _union_args(t)
    return bool(args) and all(a in _PRIMITIVES for a in args)


def _is_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _optional_enum(t: Any) -> type[enum.Enum] | None:
    args = _union_args(t)
    if len(args) == 2 and type(None) in args:
        other = args[0] if args[1] is type(None) else args[1]
        if _is_enum(other):
            return typing.cast("type[enum.Enum]", other)
    return None


def _pairs_out(levels: tuple[tuple[Any, Any], ...]) -> list[list[Any]]:
    return [[p, s] for p, s in levels]


def _optional_pairs_out(levels: tuple[tuple[Any, Any], ...] | None) -> list[list[Any]] | None:
    return None if levels is None else [[p, s] for p, s in levels]


def _orders_out(orders: _L3Orders) -> list[list[Any]]:
    return [[oid, side.value, p, s] for oid, side, p, s in orders]


def _optional_enum_out(value: enum.Enum | None) -> Any:
    return None if value is None else value.value


def _float_in(value: Any, _: Any) -> float:
    # JSON has no NaN: orjson writes non-finite floats as null.
    return _NAN if value is None else float(value)


def _optional_primitive_in(t: Any) -> _Structure:
    kinds = [a for a in _union_args(t) if a is not type(None)]
    if len(kinds) != 1:
        return lambda value, _: value
    kind = kinds[0]
    # None stays None here: JSON null means nan only where None is not a value.
    return lambda value, _: None if value is None else kind(value)


def _optional_enum_in(t: Any) -> _Structure:
    kind = _optional_enum(t)
    assert kind is not None
    return lambda value, _: None if value is None else kind(value)


def _levels_in(value: Any, _: Any) -> Levels:
    return tuple([(_float_in(p, None), _float_in(s, None)) for p, s in value])


def _text_levels_in(value: Any, _: Any) -> TextLevels | None:
    if value is None:
        return None
    out: list[tuple[str, str]] = []
    for p, s in value:
        if not isinstance(p, str) or not isinstance(s, str):
            raise TypeError(f"level text must be strings, not {p!r}, {s!r}")
        out.append((p, s))
    return tuple(out)


def _id_ranges_out(ranges: _IdRanges) -> list[list[int]]:
    return [[first, last] for first, last in ranges]


def _id_ranges_in(value: Any, _: Any) -> _IdRanges:
    return tuple((int(first), int(last)) for first, last in value)


def _orders_in(value: Any, _: Any) -> _L3Orders:
    return tuple([(str(oid), BookSide(side), _float_in(p, None), _float_in(s, None)) for oid, side, p, s in value])


converter.register_unstructure_hook_func(_is_optional_primitive, identity)
converter.register_unstructure_hook_func(_is_enum, operator.attrgetter("value"))
converter.register_unstructure_hook_func(lambda t: _optional_enum(t) is not None, _optional_enum_out)
converter.register_unstructure_hook_func(lambda t: t == Levels, _pairs_out)
converter.register_unstructure_hook_func(lambda t: t == TextLevels | None, _optional_pairs_out)
converter.register_unstructure_hook_func(lambda t: t == _L3Orders, _orders_out)
converter.register_unstructure_hook_func(lambda t: t == _IdRanges, _id_ranges_out)

# Error.exception: a live exception is written as its repr and read back as
# None (it is in-process context, excluded from equality).
converter.register_unstructure_hook_func(
    lambda t: t == BaseException | None, lambda exc: None if exc is None else repr(exc)
)
converter.register_structure_hook_func(lambda t: t == BaseException | None, lambda _v, _t: None)
converter.register_structure_hook(float, _float_in)
converter.register_structure_hook_factory(_is_optional_primitive, _optional_primitive_in)
converter.register_structure_hook_factory(lambda t: _optional_enum(t) is not None, _optional_enum_in)
converter.register_structure_hook_func(lambda t: t == Levels, _levels_in)
converter.register_structure_hook_func(lambda t: t == TextLevels | None, _text_levels_in)
converter.register_structure_hook_func(lambda t: t == _L3Orders, _orders_in)
converter.register_structure_hook_func(lambda t: t == _IdRanges, _id_ranges_in)


# --- per-class functions and the tagged union -----------------------------------

_Unstructure = Callable[[Any], dict[str, Any]]

_TO_DICT: dict[type, _Unstructure] = {}
_FROM_DICT: dict[str, tuple[type[Event], _Structure]] = {}


def _tagged(fn: _Unstructure, tag: str) -> _Unstructure:
    def unstructure(event: Any) -> dict[str, Any]:
        d = fn(event)
        d[_TAG_KEY] = tag
        return d

    unstructure.__qualname__ = unstructure.__name__ = f"to_dict_{tag}"
    return unstructure


def _checked(fn: _Structure, tag: str) -> _Structure:
    def structure(d: Mapping[str, Any], cls: Any) -> Any:
        found = d.get(_TAG_KEY, tag)
        if found != tag:
            raise ValueError(f"a {tag!r} dict cannot have type {found!r}")
        return fn(d, cls)

    return structure


# --- the fast reading path ------------------------------------------------------
#
# Theory of operation. cattrs' generated structure functions cost ~2.5 µs for
# a trade and more per book level: per attribute they call a hook through a
# try block that collects errors, build a kwargs dict and call the public
# class. Reading is the consumer's hot path (wsmux.sinks decodes every event
# it reads), so each class also gets one function generated from its attrs
# fields that reads the same keys, applies the *same conversions* as the hook
# cattrs uses for that attribute's type (inlined for the common types: a value
# already of the right kind is taken as is, anything else goes through the very
# conversion cattrs applies; any other type calls the cattrs hook itself) and
# builds the event through its layout (wsmux.model.layout_of, as the Feed does).
# It collects no errors: on any exception it gives up and from_dict reads the
# dict again through cattrs, which raises the one typed ConfigError with
# cattrs' detailed message. So the fast path can only ever *succeed* where
# cattrs succeeds with an equal event (tests/test_convert_fast.py checks that
# on generated and malformed input); errors are cattrs' own by construction.
# A class whose fields the generator does not know how to build (validators,
# converters, init=False, factories that take self) has no fast function.

_FAST_FROM_DICT: dict[str, Callable[[Mapping[str, Any]], Event]] = {}


_FAST_LEVELS: Final = (
    # _levels_in with floats taken as they are (the common case), inlined
    "tuple([(p if p.__class__ is float else _float_in(p, None), s if s.__class__ is float else _float_in(s, None))"
    " for p, s in x])"
)


def _is_call_hook(hook: Any) -> bool:
    """Whether ``hook`` is cattrs' ``cl(value)`` hook (str, int, bool)."""
    call = cattrs.BaseConverter._structure_call
    return hook is call or getattr(hook, "__func__", None) is call


def _fast_conversion(t: Any, name: str, ns: dict[str, Any]) -> str:
    """The expression converting local ``x`` to attribute type ``t`` exactly
    as ``converter``'s hook for ``t`` does (names it needs go into ``ns``)."""
    hook = converter.get_structure_hook(t)
    if t in (str, int) and _is_call_hook(hook):
        ns[f"_k_{name}"] = t
        return f"x if x.__class__ is _k_{name} else _k_{name}(x)"
    if t is bool and _is_call_hook(hook):
        return "bool(x)"
    if t is float and hook is _float_in:
        return "x if x.__class__ is float else _float_in(x, None)"
    if t == Levels and hook is _levels_in:
        return _FAST_LEVELS
    if _is_optional_primitive(t):
        kinds = [a for a in _union_args(t) if a is not type(None)]
        if len(kinds) == 1:
            ns[f"_k_{name}"] = kinds[0]
            return f"None if x is None else (x if x.__class__ is _k_{name} else _k_{name}(x))"
    kind = _optional_enum(t) or (t if _is_enum(t) and "_value_" not in t.__annotations__ else None)
    if kind is not None and "_value_" not in kind.__annotations__:
        # Enum(x) is a lookup in its value map first: the same member, or
        # the same error through the call.
        ns[f"_m_{name}"] = dict(kind._value2member_map_)
        ns[f"_k_{name}"] = kind
        lookup = f"_m_{name}[x] if x in _m_{name} else _k_{name}(x)"
        return lookup if kind is t else f"None if x is None else ({lookup})"
    ns[f"_h_{name}"] = hook
    ns[f"_t_{name}"] = t
    if hook is _text_levels_in:  # absent venue text (the common case) is None
        return f"None if x is None else _h_{name}(x, _t_{name})"
    return f"_h_{name}(x, _t_{name})"


def _fast_structure_fn(cls: type[Event], tag: str) -> Callable[[Mapping[str, Any]], Event] | None:
    """The generated reader of ``cls`` (see above), or None where the
    generator cannot build it exactly as cattrs does."""
    try:
        layout = layout_of(cls)
    except KeyError:
        return None
    hints = typing.get_type_hints(cls)
    ns: dict[str, Any] = {"_layout": layout, "_cls": cls, "_float_in": _float_in}
    lines = [f"def from_dict_{tag}(o):"]
    args: list[str] = []
    for i, field in enumerate(attrs.fields(typing.cast(Any, cls))):
        if field.validator is not None or field.converter is not None or not field.init or field.kw_only:
            return None
        name = field.name
        if field.alias != name:
            return None
        conversion = _fast_conversion(hints[name], name, ns)
        if field.default is attrs.NOTHING:
            lines += [f"    x = o[{name!r}]", f"    a{i} = {conversion}"]
        else:
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                if default.takes_self:
                    return None
                ns[f"_d_{name}"] = default.factory
                missing = f"_d_{name}()"
            else:
                ns[f"_d_{name}"] = default
                missing = f"_d_{name}"
            lines += [
                f"    if {name!r} in o:",
                f"        x = o[{name!r}]",
                f"        a{i} = {conversion}",
                "    else:",
                f"        a{i} = {missing}",
            ]
        args.append(f"a{i}")
    lines += [f"    ev = _layout({', '.join(args)})", "    ev.__class__ = _cls", "    return ev"]
    exec("\n".join(lines), ns)  # the source is built above from attrs field names only
    return typing.cast("Callable[[Mapping[str, Any]], Event]", ns[f"from_dict_{tag}"])


def _register(cls: type[Event], tag: str) -> None:
    un = _tagged(make_dict_unstructure_fn(cls, converter), tag)
    st = _checked(make_dict_structure_fn(cls, converter), tag)
    _TO_DICT[cls] = un
    _FROM_DICT[tag] = (cls, st)
    fast = _fast_structure_fn(cls, tag)
    if fast is not None:
        _FAST_FROM_DICT[tag] = fast
    converter.register_unstructure_hook(cls, un)
    converter.register_structure_hook(cls, st)


for _cls, _tag in EVENT_TAGS.items():
    _register(_cls, _tag)


def register_event(cls: type[Event], tag: str) -> None:
    """Give event class ``cls`` (built with :func:`wsmux.model.event`) the
    dict/JSON form under ``"type"`` tag ``tag``, as the built-in events have
    (how :mod:`wsmux.analytics` outputs log and go to sinks). Registering the
    same class under the same tag again does nothing.

    Raises:
        ConfigError: ``tag`` names another class, or ``cls`` has another tag.
    """
    known = _TAGS.get(cls)
    if known == tag:
        return
    if known is not None:
        raise ConfigError(f"{cls.__qualname__} is registered as {known!r}, not {tag!r}")
    if tag in _FROM_DICT:
        raise ConfigError(f"event tag {tag!r} is taken by {_FROM_DICT[tag][0].__qualname__}")
    _TAGS[cls] = tag
    _register(cls, tag)


def _is_event_base(t: Any) -> bool:
    return t is Event or t is MarketEvent or t is StatusEvent


def _known_tags() -> str:
    return ", ".join(sorted(_FROM_DICT))


def to_dict(event: Event) -> dict[str, Any]:
    """The dict form of ``event`` (see the module docstring). O(size of the event).

    Raises:
        ConfigError: ``event`` is not an instance of a wsmux event class.
    """
    try:
        fn = _TO_DICT[type(event)]
    except KeyError:
        raise ConfigError(f"{type(event).__qualname__} is not a wsmux event class") from None
    return fn(event)


def from_dict(d: Mapping[str, Any]) -> Event:
    """The event whose dict form is ``d`` (extra keys are ignored).

    Raises:
        ConfigError: ``d`` has no or an unknown ``"type"``, or its attributes
            are missing or of the wrong kind.
    """
    try:
        tag = d[_TAG_KEY]
    except (KeyError, TypeError, IndexError):
        raise ConfigError(f"not an event dict (no {_TAG_KEY!r} key): {_short(d)}") from None
    entry = _FROM_DICT.get(tag) if isinstance(tag, str) else None
    if entry is None:
        raise ConfigError(f"unknown event type {tag!r}; known types: {_known_tags()}")
    fast = _FAST_FROM_DICT.get(tag)
    if fast is not None:
        try:
            return fast(d)
        except Exception:  # cattrs reads it again below and raises the typed error
            pass
    return _cattrs_from_dict(tag, d)


def _cattrs_from_dict(tag: str, d: Mapping[str, Any]) -> Event:
    """:func:`from_dict` of a known ``tag`` through cattrs alone (the
    reference the fast path is tested against, and its error messages)."""
    cls, structure = _FROM_DICT[tag]
    try:
        return typing.cast(Event, structure(d, cls))
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        detail = "; ".join(cattrs.transform_error(exc)) if isinstance(exc, cattrs.BaseValidationError) else exc
        raise ConfigError(f"invalid {tag!r} event: {detail}") from exc


def to_json(event: Event) -> bytes:
    """The JSON (UTF-8 bytes, one line, no newline) of :func:`to_dict`.

    Raises:
        ConfigError: ``event`` is not a wsmux event.
    """
    return orjson.dumps(to_dict(event))


def from_json(data: bytes | bytearray | memoryview | str) -> Event:
    """The event written by :func:`to_json`.

    Raises:
        ConfigError: ``data`` is not JSON, or not the JSON of an event.
    """
    try:
        d = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc}") from exc
    if not isinstance(d, dict):
        raise ConfigError(f"not an event dict: {_short(d)}")
    return from_dict(d)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


converter.register_unstructure_hook_func(_is_event_base, to_dict)
converter.register_structure_hook_func(_is_event_base, lambda d, _: from_dict(d))
