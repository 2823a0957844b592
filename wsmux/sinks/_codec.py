"""The wire form of an event in an engine: a versioned envelope.

Every message a sink writes is one *envelope*, a map with

* ``"v"`` — the schema version (:data:`SCHEMA_VERSION`, now 1);
* ``"id"`` — ``[venue, epoch, seq]``, the stable event id: ``venue`` the
  venue id (``"_worker"`` for a worker's own events), ``epoch`` the
  publishing worker's epoch (a number the engine hands out, one more on every
  start of that worker), ``seq`` the worker's count of events published for
  that venue in that epoch (1, 2, 3, ...). Two messages with the same id are
  the same event (a retried batch): consumers drop the second;
* ``"p"`` — the ``seq`` of the previous event written to the same key in the
  same epoch (0 for the first): a consumer that sees ``p`` differ from the
  last ``seq`` it read on that key knows events were lost in between (the
  engine trimmed them) and reports a gap instead of showing a wrong book;
* ``"e"`` — the event in the dict form of :mod:`wsmux.convert`.

The envelope is serialized as JSON (orjson) or MessagePack (the ``msgpack``
extra), chosen per sink. Readers need no setting: a JSON envelope starts
with ``{``, a MessagePack one with a map marker, so :func:`decode` reads
both.

Compatibility: a reader ignores keys it does not know (in the envelope and
in the event), so a newer writer may add fields; an envelope of a *newer*
version is read the same way (and counted by the source). An envelope of an
older version is read by the rules of that version (version 1 is the first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal, NamedTuple

import orjson

from wsmux.convert import from_dict, to_dict
from wsmux.errors import ConfigError, MalformedMessage
from wsmux.model import Event

__all__ = ["SCHEMA_VERSION", "Decoded", "EventId", "Format", "decode", "encoder", "msgpack_module"]

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


def encoder(fmt: Format) -> Callable[[Event, EventId, int], bytes]:
    """A function ``(event, id, prev) -> bytes`` writing envelopes in ``fmt``.

    Raises:
        ConfigError: an unknown format, or ``msgpack`` without its extra.
    """
    if fmt == "json":
        dumps: Callable[[Any], bytes] = orjson.dumps
    elif fmt == "msgpack":
        packb = msgpack_module().packb

        def dumps(obj: Any) -> bytes:
            return packb(obj, use_bin_type=True)  # type: ignore[no-any-return]

    else:
        raise ConfigError(f"format must be 'json' or 'msgpack', not {fmt!r}")

    def encode(event: Event, event_id: EventId, prev: int) -> bytes:
        return dumps({"v": SCHEMA_VERSION, "id": list(event_id), "p": prev, "e": to_dict(event)})

    return encode


def decode(data: bytes) -> Decoded:
    """Read one envelope (JSON or MessagePack).

    Raises:
        MalformedMessage: ``data`` is not an envelope of a wsmux event (the
            engine handed wsmux something it did not write).
    """
    try:
        if data[:1] == b"{":
            obj = orjson.loads(data)
        else:
            obj = msgpack_module().unpackb(data, raw=False, strict_map_key=False)
        version = obj["v"]
        venue, epoch, seq = obj["id"]
        event_id = EventId(str(venue), int(epoch), int(seq))
        prev = int(obj.get("p") or 0)
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"bad schema version {version!r}")
        event = from_dict(obj["e"])
    except ConfigError as exc:
        raise MalformedMessage(f"engine message holds no readable event: {exc}") from exc
    except Exception as exc:  # orjson/msgpack errors, wrong shapes: not an envelope
        raise MalformedMessage(f"engine message is not a wsmux envelope: {type(exc).__name__}: {exc}") from exc
    return Decoded(event_id, prev, version, event)
