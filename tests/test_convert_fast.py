"""wsmux.convert's generated fast readers against the cattrs path: equal
events on generated events of every registered class (through JSON and
MessagePack, as the sinks carry them), and on malformed dicts the fast reader
fails exactly where cattrs fails, so from_dict raises cattrs' own error."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_convert import EVENT_CLASSES, events_of

from wsmux import convert
from wsmux.convert import EVENT_TAGS, from_dict, to_dict
from wsmux.errors import ConfigError
from wsmux.model import BookUpdate, Event, Side, Trade


def same_event(a: Event, b: Event) -> bool:
    """Equal class and attributes, NaN equal to NaN and 1 unequal to 1.0
    (the repr shows both)."""
    return type(a) is type(b) and repr(a) == repr(b) and (a == b or "nan" in repr(a))


def read_both(d: dict[str, Any]) -> tuple[Event | Exception, Event | Exception]:
    """(fast reader's result or exception, cattrs path's result or exception)."""
    tag = d["type"]
    try:
        fast: Event | Exception = convert._FAST_FROM_DICT[tag](d)
    except Exception as exc:
        fast = exc
    try:
        slow: Event | Exception = convert._cattrs_from_dict(tag, d)
    except ConfigError as exc:
        slow = exc
    return fast, slow


def test_every_registered_class_has_a_fast_reader() -> None:
    assert set(convert._FAST_FROM_DICT) == set(EVENT_TAGS.values())


def wire_forms(event: Event) -> list[dict[str, Any]]:
    d = to_dict(event)
    return [orjson.loads(orjson.dumps(d)), msgpack.unpackb(msgpack.packb(d, use_bin_type=True), raw=False)]


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_fast_reader_reads_every_class_as_cattrs_does(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(events_of(cls))
    for d in wire_forms(event):
        fast, slow = read_both(d)
        assert isinstance(fast, Event) and isinstance(slow, Event)
        assert same_event(fast, slow)
        assert same_event(from_dict(d), slow)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=5),
    st.sampled_from(["1", "1.5", "-2", "nan", "buy", "sell", "book", "bid", "ask"]),
    st.lists(st.one_of(st.none(), st.floats(), st.text(max_size=3)), max_size=3),
    st.lists(st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none()), max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def malformed_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid dict of a random class with some attributes removed or
    replaced by junk, and maybe an unknown key added (a newer writer)."""
    cls = draw(st.sampled_from(EVENT_CLASSES))
    d = orjson.loads(orjson.dumps(to_dict(draw(events_of(cls)))))
    names = sorted(k for k in d if k != "type")
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
        if draw(st.booleans()):
            del d[name]
        else:
            d[name] = draw(JUNK)
    if draw(st.booleans()):
        d["added_by_a_newer_writer"] = draw(JUNK)
    return d


@settings(max_examples=600, deadline=None)
@given(d=malformed_dicts())
def test_on_malformed_dicts_the_fast_reader_fails_where_cattrs_fails(d: dict[str, Any]) -> None:
    fast, slow = read_both(d)
    assert isinstance(fast, Exception) == isinstance(slow, Exception), (fast, slow)
    if isinstance(slow, Exception):
        with pytest.raises(ConfigError) as info:
            from_dict(d)
        assert str(info.value) == str(slow)
    else:
        assert isinstance(fast, Event)
        assert same_event(fast, slow)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"price": 7}, 7.0),  # an int where a float goes is converted, as cattrs does
        ({"price": "7.5"}, 7.5),
        ({"price": None}, "nan"),  # JSON null in a float
        ({"trade_id": 17}, "17"),
        ({"side": None}, None),
    ],
)
def test_the_fast_reader_converts_like_cattrs(changes: dict[str, Any], expected: Any) -> None:
    d = {**to_dict(Trade("binance", "BTC-USDT", 1.5, 2.0, Side.SELL, "9", None, 5, None)), **changes}
    fast, slow = read_both(d)
    assert isinstance(fast, Trade) and same_event(fast, slow)
    value = getattr(fast, next(iter(changes)))
    if expected == "nan":
        assert value != value
    else:
        assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "changes",
    [{"price": "abc"}, {"side": "up"}, {"bids": [[1.0]]}, {"bids": [[1.0, 2.0, 3.0]]}, {"ts": [1]}, {"venue": None}],
)
def test_bad_values_raise_cattrs_error(changes: dict[str, Any]) -> None:
    cls = BookUpdate if "bids" in changes else Trade
    event = (
        BookUpdate("binance", "BTC-USDT", ((1.0, 2.0),), (), 1, 2, 3)
        if cls is BookUpdate
        else Trade("binance", "BTC-USDT", 1.5, 2.0, Side.SELL, "9", None, 5, None)
    )
    d = {**to_dict(event), **changes}
    fast, slow = read_both(d)
    if "venue" in changes:  # str(None) is "None" for cattrs too: no error, the same event
        assert isinstance(fast, Event) and same_event(fast, slow)
        return
    assert isinstance(fast, Exception) and isinstance(slow, ConfigError)
    with pytest.raises(ConfigError, match="invalid") as info:
        from_dict(d)
    assert str(info.value) == str(slow)
