"""The wire form of an event in an engine: a versioned envelope.

Every message a sink writes is one *envelope*, a map with

* ``"v"`` — the schema version (:data:`SCHEMA_VERSION`, now 1);
* ``"id"`` — ``[venue, epoch, seq]``, the stable event id: ``venue`` the
  venue id (``"_worker"`` for a worker's own events), ``epoch`` the
  publishing worker's epoch (a number the engine hands out on every start of
  any worker: one epoch is one run of one worker), ``seq`` the worker's count of events published for
  that venue in that epoch (1, 2, 3, ...). Two messages with the same id are
  the same event (a retried batch): consumers drop the second;
* ``"p"`` — the ``seq`` of the previous event written to the same key in the
  same epoch (0 for the first): a consumer that sees ``p`` differ from the
  last ``seq`` it read on that key knows events were lost in between (the
  engine trimmed them) and reports a gap instead of showing a wrong book;
* ``"e"`` — the event in the dict form of :mod:`wsmux.convert`.

One engine message holds one envelope, or a list of envelopes of the same
key in order (a sink writes each key's share of a batch as one message: one
engine entry per key and batch instead of one per event, which is what
makes 100K+ events/s per process possible). It is serialized as JSON
(orjson) or MessagePack (the ``msgpack`` extra), chosen per sink. Readers
need no setting: JSON starts with ``{`` or ``[``, MessagePack with a map or
array marker, so :func:`decode_message` reads all four shapes.

Compatibility: a reader ignores keys it does not know (in the envelope and
in the event), so a newer writer may add fields; an envelope of a *newer*
version is read the same way (and counted by the source). An envelope of an
older version is read by the rules of that version (version 1 is the first).
"""

from __future__ import annotations

import enum
import gc
import operator
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, NamedTuple

import attrs
import orjson

from wsmux.convert import EVENT_TAGS, from_dict
from wsmux.errors import ConfigError, MalformedMessage
from wsmux.model import Event

__all__ = [
    "SCHEMA_VERSION",
    "Decoded",
    "EventId",
    "Format",
    "decode",
    "decode_message",
    "encoder",
    "message_encoder",
    "msgpack_module",
]

SCHEMA_VERSION: Final = 1
"""The envelope version this wsmux writes (and the newest it knows)."""

Format = Literal["json", "msgpack"]


class EventId(NamedTuple):
    """The stable id of a published event (see the module docstring)."""

    venue: str
    epoch: int
    seq: int

    def __str__(self) -> str:
        return f"{self.venue}:{self.epoch}:{self.seq}"


class Decoded(NamedTuple):
    """One decoded envelope."""

    id: EventId
    prev: int
    version: int
    event: Event


def msgpack_module() -> Any:
    """The ``msgpack`` module, or a :class:`~wsmux.errors.ConfigError` naming the extra."""
    try:
        import msgpack
    except ImportError as exc:
        raise ConfigError("format='msgpack' needs msgpack: pip install 'wsmux[msgpack]'") from exc
    return msgpack


def _default(obj: Any) -> Any:
    """What the serializers cannot write natively: enums (MessagePack) and
    ``Error.exception`` (its repr, as in the dict form)."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, BaseException):
        return repr(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def _dumps(fmt: Format) -> Callable[[Any], bytes]:
    if fmt == "json":

        def dumps(obj: Any) -> bytes:
            return orjson.dumps(obj, default=_default)

    elif fmt == "msgpack":
        packb = msgpack_module().packb

        def dumps(obj: Any) -> bytes:
            return packb(obj, use_bin_type=True, default=_default)  # type: ignore[no-any-return]

    else:
        raise ConfigError(f"format must be 'json' or 'msgpack', not {fmt!r}")
    return dumps


_Shape = tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]], str]
_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    if cls not in EVENT_TAGS:
        raise ConfigError(f"{cls.__qualname__} is not a wsmux event class")
    names = tuple(a.name for a in attrs.fields(cls))
    shape = _SHAPES[cls] = (names, operator.attrgetter(*names), EVENT_TAGS[cls])
    return shape


def event_dict(event: Event) -> dict[str, Any]:
    """The dict form of :func:`wsmux.convert.to_dict` with tuples and enums
    left for the serializer (orjson writes both natively, MessagePack through
    :func:`_default`): the same bytes on the wire, without the per-level
    lists. Internal to the sinks' hot path."""
    shape = _SHAPES.get(type(event)) or _shape(type(event))
    names, get, tag = shape
    d = dict(zip(names, get(event), strict=True))
    d["type"] = tag
    return d


def _envelope(event: Event, event_id: EventId, prev: int) -> dict[str, Any]:
    return {"v": SCHEMA_VERSION, "id": list(event_id), "p": prev, "e": event_dict(event)}


def encoder(fmt: Format) -> Callable[[Event, EventId, int], bytes]:
    """A function ``(event, id, prev) -> bytes`` writing one envelope in ``fmt``.

    Raises:
        ConfigError: an unknown format, or ``msgpack`` without its extra.
    """
    dumps = _dumps(fmt)
    return lambda event, event_id, prev: dumps(_envelope(event, event_id, prev))


def message_encoder(fmt: Format) -> Callable[[Sequence[tuple[Event, EventId, int]]], bytes]:
    """A function writing the envelopes of ``[(event, id, prev), ...]`` (one
    key, in order) as one message: one envelope alone, several as a list.

    Raises:
        ConfigError: an unknown format, or ``msgpack`` without its extra.
    """
    dumps = _dumps(fmt)

    def encode(items: Sequence[tuple[Event, EventId, int]]) -> bytes:
        if len(items) == 1:
            return dumps(_envelope(*items[0]))
        return dumps([_envelope(e, i, p) for e, i, p in items])

    return encode


def _loads(data: bytes) -> Any:
    if data[:1] in (b"{", b"["):
        return orjson.loads(data)
    return msgpack_module().unpackb(data, raw=False, strict_map_key=False)


def decode(data: bytes) -> Decoded:
    """Read a message of one envelope (JSON or MessagePack).

    Raises:
        MalformedMessage: ``data`` is not an envelope of a wsmux event (the
            engine handed wsmux something it did not write).
    """
    try:
        obj = _loads(data)
    except Exception as exc:
        raise MalformedMessage(f"engine message is not a wsmux envelope: {type(exc).__name__}: {exc}") from exc
    return _decoded(obj)


def decode_message(data: bytes) -> list[Decoded]:
    """Read a message of one envelope or a list of envelopes, in order.

    The cyclic garbage collector is paused while the message is parsed and
    its events are built (only this module's code and the parser run
    meanwhile, no callback), when it was enabled: see below.

    Raises:
        MalformedMessage: ``data`` is not such a message.
    """
    # Why the pause: a message of 1,000 envelopes parses into some 10,000
    # containers (dicts, lists) that all live until its events are built.
    # Left on, the collector runs a dozen times inside the parse, finds
    # them all alive and moves them to older generations, where they die
    # (the parse tree is freed as this returns) and add up to frequent full
    # collections of the whole heap: measured as about 40% of the CPU time
    # of a process that publishes and consumes. Paused, the parse tree is freed by reference counting before
    # the collector sees it; the collection that was due runs at the next
    # allocation after it is enabled again. A program that pauses the
    # collector itself, from another thread, in the milliseconds of a
    # decode, would find it enabled again.
    if not gc.isenabled():
        return _decode_message(data)
    gc.disable()
    try:
        return _decode_message(data)
    finally:
        gc.enable()


def _decode_message(data: bytes) -> list[Decoded]:
    try:
        obj = _loads(data)
    except Exception as exc:
        raise MalformedMessage(f"engine message is not a wsmux envelope: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, list):
        if not obj:
            raise MalformedMessage("engine message is an empty list of envelopes")
        return [_decoded(item) for item in obj]
    return [_decoded(obj)]


_new_tuple = tuple.__new__


def _decoded(obj: Any) -> Decoded:
    # Per event on the consumer's hot path: the NamedTuples are built with
    # tuple.__new__ (their generated __new__ is a Python call each), and
    # values already of their type are not converted again.
    try:
        version = obj["v"]
        venue, epoch, seq = obj["id"]
        event_id = _new_tuple(
            EventId,
            (
                venue if venue.__class__ is str else str(venue),
                epoch if epoch.__class__ is int else int(epoch),
                seq if seq.__class__ is int else int(seq),
            ),
        )
        prev = obj.get("p") or 0
        if prev.__class__ is not int:
            prev = int(prev)
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"bad schema version {version!r}")
        event = from_dict(obj["e"])
    except ConfigError as exc:
        raise MalformedMessage(f"engine message holds no readable event: {exc}") from exc
    except Exception as exc:  # orjson/msgpack errors, wrong shapes: not an envelope
        raise MalformedMessage(f"engine message is not a wsmux envelope: {type(exc).__name__}: {exc}") from exc
    return _new_tuple(Decoded, (event_id, prev, version, event))
