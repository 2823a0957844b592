"""wsmux.convert: the dict/JSON form of every event (round trips, shape, errors)."""

from __future__ import annotations

import enum
import math
import types
import typing
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmux import analytics, model
from wsmux.convert import EVENT_TAGS, converter, from_dict, from_json, to_dict, to_json
from wsmux.errors import ConfigError, WsmuxError
from wsmux.model import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Channel,
    Event,
    Funding,
    Gap,
    GapReason,
    L3Snapshot,
    Levels,
    Quote,
    Side,
    Stale,
    TextLevels,
    Trade,
)

EVENT_CLASSES = sorted(EVENT_TAGS, key=lambda c: c.__name__)

# --- strategies built from the attrs field types --------------------------------

INT64 = st.integers(-(2**63), 2**63 - 1)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(max_size=20)
NUMBER_TEXT = st.from_regex(r"\A-?[0-9]{1,6}(\.[0-9]{0,8})?\Z")
LEVELS = st.lists(st.tuples(FINITE, FINITE), max_size=6).map(tuple)
TEXT_LEVELS = st.lists(st.tuples(NUMBER_TEXT, NUMBER_TEXT), max_size=6).map(tuple)
ORDERS = st.lists(st.tuples(TEXT, st.sampled_from(BookSide), FINITE, FINITE), max_size=6).map(tuple)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    if tp == Levels:
        return LEVELS
    if tp == TextLevels:
        return TEXT_LEVELS
    if tp == tuple[tuple[str, BookSide, float, float], ...]:
        return ORDERS
    if tp == tuple[tuple[int, int], ...]:
        return st.lists(st.tuples(INT64, INT64), max_size=4).map(tuple)
    if tp == tuple[float, ...]:
        return st.lists(FINITE, max_size=6).map(tuple)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(a) for a in typing.get_args(tp)))
    if tp is type(None):
        return st.none()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(tp)
    simple: dict[Any, st.SearchStrategy[Any]] = {str: TEXT, int: INT64, float: FINITE, bool: st.booleans()}
    if tp in simple:
        return simple[tp]
    if tp is BaseException:  # Error.exception: in process only, never in the dict form (eq=False)
        return st.builds(ValueError, TEXT)
    raise AssertionError(f"no strategy for {tp!r}: extend strategy_for")


def events_of(cls: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: strategy_for(hints[f.name]) for f in attrs.fields(cls)})  # type: ignore[arg-type]


def any_event() -> st.SearchStrategy[Event]:
    return st.one_of(*(events_of(c) for c in EVENT_CLASSES))


# --- the table of tags --------------------------------------------------------------


def test_every_event_class_in_model_has_a_unique_tag() -> None:
    classes: set[type] = {
        obj
        for name in model.__all__
        if isinstance(obj := getattr(model, name), type) and issubclass(obj, Event) and attrs.has(obj)
    }
    assert classes <= set(EVENT_TAGS)
    # the rest are registered with register_event: the analytics outputs (imported above)
    assert all(issubclass(c, analytics.AnalyticEvent) for c in set(EVENT_TAGS) - classes)
    assert len(set(EVENT_TAGS.values())) == len(EVENT_TAGS)
    assert EVENT_TAGS[Trade] == "trade"
    assert EVENT_TAGS[BookSnapshot] == "book_snapshot"
    assert EVENT_TAGS[L3Snapshot] == "l3_snapshot"


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_dict_round_trip(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(events_of(cls))
    d = to_dict(event)
    assert d["type"] == EVENT_TAGS[cls]
    assert set(d) == {f.name for f in attrs.fields(cls)} | {"type"}  # type: ignore[arg-type]
    back = from_dict(d)
    assert type(back) is cls
    assert back == event


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_json_round_trip(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(events_of(cls))
    raw = to_json(event)
    assert isinstance(raw, bytes) and b"\n" not in raw
    assert orjson.loads(raw) == to_dict(event)  # the JSON is exactly the dict form
    assert from_json(raw) == event
    assert from_json(raw.decode()) == event


@settings(max_examples=100, deadline=None)
@given(event=any_event())
def test_converter_is_the_same_mapping(event: Event) -> None:
    d = to_dict(event)
    assert converter.unstructure(event) == d
    assert converter.unstructure(event, Event) == d
    assert converter.structure(d, Event) == event
    assert converter.structure(d, type(event)) == event


@settings(max_examples=100, deadline=None)
@given(event=any_event())
def test_dict_form_is_plain_data(event: Event) -> None:
    def plain(v: object) -> bool:
        if isinstance(v, list):
            return all(plain(x) for x in v)
        return v is None or type(v) in (str, int, float, bool)

    d = to_dict(event)
    assert all(type(k) is str for k in d)
    assert all(plain(v) for v in d.values()), d


# --- the exact shape (the --format jsonl output) ----------------------------------


def test_trade_dict_exact() -> None:
    t = Trade("binance", "BTC-USDT", 50000.5, 0.25, Side.BUY, "17", 1_700_000_000_000_000_000, 42, seq=9)
    assert to_dict(t) == {
        "type": "trade",
        "venue": "binance",
        "symbol": "BTC-USDT",
        "price": 50000.5,
        "size": 0.25,
        "side": "buy",
        "trade_id": "17",
        "ts": 1_700_000_000_000_000_000,
        "recv_ns": 42,
        "seq": 9,
    }
    assert orjson.loads(to_json(t))["side"] == "buy"


def test_book_update_levels_are_lists() -> None:
    u = BookUpdate(
        "kraken",
        "BTC-USD",
        ((100.5, 1.0), (100.0, 0.0)),
        ((101.0, 2.0),),
        None,
        7,
        seq=3,
        first_seq=2,
        checksum=123,
        bids_text=(("100.50000", "1.00000000"), ("100.00000", "0.00000000")),
        asks_text=(("101.00000", "2.00000000"),),
    )
    d = to_dict(u)
    assert d["bids"] == [[100.5, 1.0], [100.0, 0.0]]
    assert d["asks"] == [[101.0, 2.0]]
    assert d["bids_text"] == [["100.50000", "1.00000000"], ["100.00000", "0.00000000"]]
    assert d["prev_seq"] is None and d["checksum"] == 123 and d["type"] == "book_update"
    assert to_json(u).startswith(b'{"venue":"kraken","symbol":"BTC-USD","bids":[[100.5,1.0],[100.0,0.0]]')
    assert from_json(to_json(u)) == u


def test_enums_are_values() -> None:
    g = Gap("okx", "BTC-USDT", Channel.BOOK, GapReason.CHECKSUM, 5, 7, 99, "bad crc")
    d = to_dict(g)
    assert d["channel"] == "book" and d["reason"] == "checksum"
    s = Stale("okx", None, None, 5_000_000_000, 1)
    assert to_dict(s)["channel"] is None
    o = L3Snapshot("coinbase", "BTC-USD", (("a1", BookSide.BID, 10.0, 1.5), ("b2", BookSide.ASK, 11.0, 2.0)), None, 1)
    assert to_dict(o)["orders"] == [["a1", "bid", 10.0, 1.5], ["b2", "ask", 11.0, 2.0]]


def test_nan_quote_side_survives_json_as_null() -> None:
    q = Quote("binance", "BTC-USDT", math.nan, math.nan, 101.0, 2.0, None, 5)
    raw = to_json(q)
    assert orjson.loads(raw)["bid_price"] is None
    back = from_json(raw)
    assert isinstance(back, Quote)
    assert math.isnan(back.bid_price) and math.isnan(back.bid_size)
    assert (back.ask_price, back.ask_size, back.recv_ns) == (101.0, 2.0, 5)
    # an optional float keeps None distinct from nan
    f = Funding("bybit", "BTC-USDT-PERP", 0.0001, None, None, None, 1)
    assert from_json(to_json(f)) == f


def test_extra_keys_are_ignored_and_defaults_may_be_omitted() -> None:
    d = {
        "type": "trade",
        "venue": "v",
        "symbol": "A-B",
        "price": 1.0,
        "size": 2.0,
        "side": None,
        "trade_id": None,
        "ts": None,
        "recv_ns": 3,
        "added_in_a_later_version": [1, 2],
    }
    assert from_dict(d) == Trade("v", "A-B", 1.0, 2.0, None, None, None, 3)


# --- errors -----------------------------------------------------------------------------


def _trade_dict(**changes: Any) -> dict[str, Any]:
    d = to_dict(Trade("v", "A-B", 1.0, 2.0, Side.SELL, "1", None, 3))
    d.update(changes)
    return d


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"type": "trades"}, "unknown event type 'trades'"),
        ({"type": None}, "unknown event type None"),
        ({"type": ["trade"]}, "unknown event type"),
        ({"venue": "v"}, "no 'type' key"),
        ([("type", "trade")], "no 'type' key"),
        (_trade_dict(side="sideways"), "invalid 'trade' event"),
        (_trade_dict(price="abc"), "invalid 'trade' event"),
        ({k: v for k, v in _trade_dict().items() if k != "recv_ns"}, "required field missing @ $.recv_ns"),
        (
            {**to_dict(BookUpdate("v", "A-B", (), (), None, 1)), "bids": [[1.0, 2.0, 3.0]]},
            "invalid 'book_update' event",
        ),
        (
            {**to_dict(BookUpdate("v", "A-B", (), (), None, 1)), "bids_text": [[1.0, 2.0]]},
            "invalid 'book_update' event",
        ),
    ],
)
def test_bad_dicts_raise_config_error(bad: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("$", r"\$").replace("(", r"\(")) as info:
        from_dict(bad)
    assert isinstance(info.value, ValueError) and isinstance(info.value, WsmuxError)


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict({"type": "no_such_event"})  # ("candle" was the example before Candle existed)
    for tag in EVENT_TAGS.values():
        assert tag in str(info.value)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"trade"', b'{"type": "nope"}', "not json"])
def test_bad_json_raises_config_error(raw: bytes | str) -> None:
    with pytest.raises(ConfigError):
        from_json(raw)


def test_to_dict_rejects_non_events() -> None:
    with pytest.raises(ConfigError, match="not a wsmux event"):
        to_dict(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        to_json(Event())


def test_structuring_one_class_checks_the_tag() -> None:
    d = _trade_dict()
    assert converter.structure({k: v for k, v in d.items() if k != "type"}, Trade) == from_dict(d)
    with pytest.raises(Exception, match="cannot have type 'quote'"):
        converter.structure({**d, "type": "quote"}, Trade)
