"""The envelope format: stored version-1 fixtures, a newer writer's unknown
fields, both encodings, malformed input. No engine needed."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_convert import any_event

from wsmux.convert import from_dict, to_dict
from wsmux.errors import MalformedMessage
from wsmux.model import BookUpdate, Channel, Event, Gap, GapReason, Side, Trade
from wsmux.sinks import SCHEMA_VERSION, EventId, decode, decode_message, encoder, message_encoder

DATA = Path(__file__).parent / "data"
V1_EVENTS = [
    Trade("binance", "BTC-USDT", 50000.5, 0.25, Side.BUY, "17", 1700000000000000000, 1700000000000412000, None),
    BookUpdate(
        "binance", "BTC-USDT", ((50000.0, 1.5),), ((50001.0, 0.0),), 1700000000000000000, 1700000000000500000, 101, 100
    ),
    Gap("kraken", "BTC-USD", Channel.BOOK, GapReason.DISCONNECT, None, None, 1700000000000600000, "worker ended"),
]


def v1_messages() -> dict[str, list[bytes]]:
    return {
        "json": (DATA / "envelopes-v1.jsonl").read_bytes().splitlines(),
        "msgpack": [bytes.fromhex(line) for line in (DATA / "envelopes-v1.msgpack.hex").read_text().split()],
    }


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_stored_v1_envelopes_are_read_exactly(fmt: str) -> None:
    decoded = [decode(m) for m in v1_messages()[fmt]]
    assert [d.event for d in decoded] == V1_EVENTS
    assert [d.id for d in decoded] == [EventId("binance", 3, 10), EventId("binance", 3, 11), EventId("kraken", 3, 12)]
    assert [d.prev for d in decoded] == [0, 10, 11]
    assert {d.version for d in decoded} == {1}


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_this_version_writes_what_it_reads(fmt: str) -> None:
    encode = encoder(fmt)  # type: ignore[arg-type]
    for n, event in enumerate(V1_EVENTS):
        d = decode(encode(event, EventId("x", 1, n + 1), n))
        assert (d.event, d.id, d.prev, d.version) == (event, EventId("x", 1, n + 1), n, SCHEMA_VERSION)


def test_a_newer_writers_unknown_fields_are_ignored() -> None:
    (line,) = (DATA / "envelopes-v2-writer.jsonl").read_bytes().splitlines()
    d = decode(line)
    assert d.version == 2 and d.id == EventId("binance", 7, 1)
    assert d.event == Trade("binance", "BTC-USDT", 1.5, 2.0, Side.SELL, "9", None, 5, None)


@pytest.mark.parametrize(
    "data", [b"", b"{", b'{"v":1}', b'{"v":1,"id":["a",1,1],"e":{"type":"nope"}}', b"\x93\x01\x02\x03", b"[1]"]
)
def test_malformed_envelopes_raise_a_typed_error(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(data)


@settings(max_examples=300, deadline=None)
@given(any_event(), st.sampled_from(["json", "msgpack"]))
def test_the_wire_form_is_the_dict_form_of_wsmux_convert(event: Event, fmt: str) -> None:
    """The sinks' fast encoding writes exactly the dict form of wsmux.convert
    (compared through JSON, where NaN is null on both sides)."""
    data = message_encoder(fmt)([(event, EventId("v", 1, 1), 0)])  # type: ignore[arg-type]
    written = orjson.loads(data) if fmt == "json" else msgpack.unpackb(data)
    assert orjson.loads(orjson.dumps(written["e"])) == orjson.loads(orjson.dumps(to_dict(event)))
    (decoded,) = decode_message(data)
    assert to_dict(decoded.event) == to_dict(from_dict(orjson.loads(orjson.dumps(to_dict(event)))))


def test_missing_extras_raise_a_typed_error_naming_the_extra() -> None:
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('redis', 'nats', 'msgpack'):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
import wsmux.sinks  # importable without any extra
from wsmux.errors import ConfigError
from wsmux.sinks import NatsSink, RedisStreamSource, encoder
for make in (RedisStreamSource, NatsSink, lambda: encoder('msgpack')):
    try:
        make()
    except ConfigError as exc:
        print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "Redis sinks and sources need redis: pip install 'wsmux[redis]'",
        "NATS sinks and sources need nats-py: pip install 'wsmux[nats]'",
        "format='msgpack' needs msgpack: pip install 'wsmux[msgpack]'",
    ]


def test_decoding_a_large_message_runs_no_garbage_collection_and_restores_the_collector() -> None:
    """The parse tree of a message is freed before the collector sees it
    (it would move it to older generations: frequent full collections)."""
    items = [(V1_EVENTS[n % 2], EventId("binance", 1, n + 1), n) for n in range(1000)]
    data = message_encoder("json")(items)
    runs: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        decoded = decode_message(data)
    finally:
        gc.callbacks.remove(count)
    assert runs == []
    assert [d.event for d in decoded] == [e for e, _, _ in items]
    assert gc.isenabled()
    with pytest.raises(MalformedMessage):
        decode_message(b"[{}]")
    assert gc.isenabled()
    gc.disable()
    try:
        assert len(decode_message(data)) == 1000
        assert not gc.isenabled()  # a collector the program paused stays paused
    finally:
        gc.enable()
