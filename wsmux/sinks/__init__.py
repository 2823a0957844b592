"""Scale out: publish events into Redis Streams or NATS JetStream, read them back.

Sinks write the events of a :class:`~wsmux.Stream` into an engine; sources
read them back through a real :class:`~wsmux.Stream` (async iteration,
callbacks, overflow policies, accounting), with consumer-side books that
follow the multiplexer's validity rules. See the deployment guide
(``docs/deployment.rst``) for the key and subject schemes and the delivery
semantics.

Each engine is an optional extra, imported when a sink or source is built:
``pip install 'wsmux[redis]'``, ``'wsmux[nats]'``, ``'wsmux[msgpack]'``.
"""

from __future__ import annotations

from wsmux.sinks._base import Engine, Reader, Sink, SinkStats, Source, SourceBooks, SourceStats, key_parts
from wsmux.sinks._codec import SCHEMA_VERSION, Decoded, EventId, decode, decode_message, encoder, message_encoder
from wsmux.sinks._sync import SyncSource
from wsmux.sinks.nats import NatsSink, NatsSource
from wsmux.sinks.redis import RedisStreamSink, RedisStreamSource

__all__ = [
    "SCHEMA_VERSION",
    "Decoded",
    "Engine",
    "EventId",
    "NatsSink",
    "NatsSource",
    "Reader",
    "RedisStreamSink",
    "RedisStreamSource",
    "Sink",
    "SinkStats",
    "Source",
    "SourceBooks",
    "SourceStats",
    "SyncSource",
    "decode",
    "decode_message",
    "encoder",
    "key_parts",
    "message_encoder",
]
