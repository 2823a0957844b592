"""The analytics operator contract: output events, BookValidity, attach, Multiplexer.analyze."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from toyvenue import MockToy, ToyAdapter

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Channel,
    Disconnected,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Multiplexer,
    Resynced,
    Side,
    Stale,
    Trade,
    book,
    trades,
)
from wsmux.analytics import (
    NOTHING,
    AnalyticEvent,
    BookValidity,
    Operator,
    PerInstrument,
    Resumed,
    Suspended,
    attach,
)
from wsmux.convert import from_dict, register_event, to_dict
from wsmux.errors import ConfigError
from wsmux.model import event
from wsmux.stream import Overflow, Stream
from wsmux.testing import collect_until


@event
class Counted(AnalyticEvent):
    """Test output: the running count of trades seen by a CountEvery operator."""

    venue: str
    symbol: str
    count: int
    ts: int | None
    recv_ns: int


register_event(Counted, "test_counted")


class CountEvery(Operator):
    """Emits a Counted every ``every`` trades; raises on a trade of size 0 (to test error
    reporting); says Resumed when a book is resynced (tells a test the subscription is live)."""

    accepts = (Trade, Resynced)

    def __init__(self, every: int = 1) -> None:
        self.name = f"count-every-{every}"
        self.every = every
        self.n = 0

    def update(self, ev: Event) -> Sequence[AnalyticEvent]:
        if isinstance(ev, Resynced):
            return (Resumed(ev.venue, ev.symbol, self.name, None, ev.recv_ns),)
        assert isinstance(ev, Trade)
        if ev.size == 0:
            raise ValueError("zero size")
        self.n += 1
        if self.n % self.every:
            return NOTHING
        return (Counted(ev.venue, ev.symbol, self.n, ev.ts, ev.recv_ns),)

    def reset(self) -> None:
        self.n = 0


def trade(i: int, size: float = 1.0, venue: str = "v", symbol: str = "S") -> Trade:
    return Trade(venue, symbol, 100.0 + i, size, Side.BUY, str(i), 1_000 * i, 2_000 * i)


def test_output_events_round_trip_and_tags_are_unique() -> None:
    s = Suspended("binance", "BTC-USDT", "bars", "book invalid: sequence", None, 5)
    r = Resumed("binance", "BTC-USDT", "bars", 7, 8)
    for ev in (s, r):
        d = to_dict(ev)
        assert from_dict(d) == ev
    assert to_dict(s)["type"] == "suspended"
    register_event(Counted, "test_counted")  # the same registration again is a no-op
    with pytest.raises(ConfigError):
        register_event(Counted, "other_tag")
    with pytest.raises(ConfigError):
        register_event(Resumed, "suspended")


def test_book_validity_reports_each_episode_once() -> None:
    bv = BookValidity("op")
    # an input before any book: reported once, with the reason
    first = bv.require(10, 11)
    assert isinstance(first, Suspended) and first.reason == "no book yet"
    assert bv.require(12, 13) is None and not bv.valid
    snap = BookSnapshot("v", "S", ((1.0, 1.0),), ((2.0, 1.0),), 100, 101)
    assert bv.observe(snap) == Resumed("v", "S", "op", 100, 101)
    assert bv.valid and bv.require(120, 121) is None
    gap = Gap("v", "S", Channel.BOOK, GapReason.SEQUENCE, 5, 7, 200)
    assert bv.observe(gap) == Suspended("v", "S", "op", "book invalid: sequence", None, 200)
    assert bv.observe(gap) is None  # same episode
    assert bv.require(130, 131) is None  # already reported
    # a gap of another symbol or channel does not touch this book
    other = BookValidity("op")
    other.observe(snap)
    assert other.observe(Gap("v", "T", Channel.BOOK, GapReason.SEQUENCE, 1, 3, 5)) is None
    assert other.observe(Gap("v", "S", Channel.TRADES, GapReason.TRADE_ID, 1, 3, 5)) is None
    assert other.valid
    assert bv.observe(Resynced("v", "S", Channel.BOOK, 9, 300)) == Resumed("v", "S", "op", None, 300)
    assert bv.observe(Stale("v", None, None, 10, 400)) == Suspended("v", "S", "op", "book stale", None, 400)
    assert bv.observe(BookUpdate("v", "S", (), (), 500, 501)) == Resumed("v", "S", "op", 500, 501)
    assert bv.observe(Disconnected("v", 1, "eof", True, 600)).reason == "disconnected"  # type: ignore[union-attr]
    bv.reset()
    assert not bv.valid and bv.reason == "no book yet"


def test_book_validity_age_by_exchange_time() -> None:
    bv = BookValidity("op", max_age_ns=1_000)
    bv.observe(BookSnapshot("v", "S", (), (), 10_000, 1))
    assert bv.require(11_000, 2) is None
    stale = bv.require(11_001, 3)
    assert stale == Suspended("v", "S", "op", "book stale", 11_001, 3)
    assert bv.observe(BookUpdate("v", "S", (), (), 11_500, 4)) == Resumed("v", "S", "op", 11_500, 4)


async def test_attach_feeds_outputs_reports_errors_and_detaches() -> None:
    source = Stream((), name="src")
    op = CountEvery(2)
    out = attach(source, op)
    for i in range(1, 5):
        source._put(trade(i))
    source._put(trade(5, size=0.0))  # the operator raises: an Error in the output stream
    got = [await out.get(timeout=1) for _ in range(3)]
    assert got[:2] == [Counted("v", "S", 2, 2_000, 4_000), Counted("v", "S", 4, 4_000, 8_000)]
    assert isinstance(got[2], Error) and got[2].kind is ErrorKind.CALLBACK and "zero size" in got[2].message
    assert out.stats.callback_errors == 1
    await out.aclose()
    source._put(trade(6))
    source._put(trade(7))
    assert op.n == 4  # detached: the operator is not fed any more
    assert source.stats.received == 7


async def test_closing_the_source_ends_the_output_after_what_it_buffered() -> None:
    source = Stream((), name="src")
    out = attach(source, CountEvery(2))
    kept = attach(source, CountEvery(1))
    await kept.aclose()  # closed first: forgotten by the source
    for i in range(1, 5):
        source._put(trade(i))
    await source.aclose()
    assert out.closed and source._dependents == []
    assert [e async for e in out] == [Counted("v", "S", 2, 2_000, 4_000), Counted("v", "S", 4, 4_000, 8_000)]


async def test_attach_rejects_bad_operators() -> None:
    source = Stream(())
    with pytest.raises(ConfigError):
        attach(source)

    class Overlapping(CountEvery):
        accepts = (Trade, Event)

    with pytest.raises(ConfigError):
        attach(source, Overlapping())
    with pytest.raises(ConfigError):
        attach(source, object())  # type: ignore[arg-type]


def test_per_instrument_builds_one_operator_per_symbol() -> None:
    per = PerInstrument(lambda venue, symbol: CountEvery(1))
    assert per.accepts == (Trade, Resynced)
    per.update(trade(1, symbol="A"))
    out = per.update(trade(2, symbol="B"))
    out2 = per.update(trade(3, symbol="A"))
    assert [o.count for o in out] == [1] and [o.count for o in out2] == [2]  # type: ignore[attr-defined]
    assert sorted(per.operators) == [("v", "A"), ("v", "B")]
    per.reset()
    assert not per.operators

    def strict(venue: str, symbol: str) -> Operator:
        if not symbol:
            raise ValueError("needs an instrument")  # e.g. a factory reading mux.book(venue, symbol)
        return CountEvery(1)

    with pytest.raises(ValueError):
        PerInstrument(strict)
    given = PerInstrument(strict, accepts=(Trade,), name="strict")
    assert given.name == "strict" and [o.count for o in given.update(trade(1))] == [1]  # type: ignore[attr-defined]


async def test_multiplexer_analyze_subscribes_and_unsubscribes() -> None:
    async with MockToy(["BTC-USD"], seed=3) as mock:
        async with Multiplexer(
            endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=Backoff(initial=0.01, cap=0.05)
        ) as mux:
            op = CountEvery(1)
            out = mux.analyze(op, trades("toy", "BTC-USD"), book("toy", "BTC-USD"), name="counter", maxsize=1_000)
            assert out.overflow is Overflow.BLOCK
            await collect_until(out, lambda e: isinstance(e, Resumed))  # subscribed and synced
            await mock.publish(50)
            got = await collect_until(out, lambda e: isinstance(e, Counted) and e.count >= 3)
            counted = [e for e in got if isinstance(e, Counted)]
            assert [e.count for e in counted] == list(range(1, len(counted) + 1))
            # BLOCK: a full output stream pauses the venue feeding it, like any BLOCK stream
            assert mux._wait_unblocked("toy") is None
            for i in range(out.maxsize):
                out._put(Counted("toy", "BTC-USD", i, None, 0))
            assert out.blocked
            waiter = mux._wait_unblocked("toy")
            assert waiter is not None
            waiter.close()  # (a coroutine: not awaited here)
            await out.aclose()
            assert not any(s.channel is Channel.TRADES for s in mux._sub_refs)
            assert out not in mux._blocking and out not in mux._streams


async def test_an_analytics_output_read_after_its_callbacks_still_holds_the_venue_back() -> None:
    # an output stream consumed by a sync callback never fills and is skipped by
    # the per-frame backpressure check; once it is read too it can fill again
    async with MockToy(["BTC-USD"], seed=3) as mock:
        async with Multiplexer(
            endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=Backoff(initial=0.01, cap=0.05)
        ) as mux:
            out = mux.analyze(CountEvery(1), trades("toy", "BTC-USD"), name="counter", maxsize=5)
            seen: list[object] = []
            out.on(Counted, seen.append)
            assert mux._wait_unblocked("toy") is None
            out.__aiter__()
            for i in range(out.maxsize):
                out._put(Counted("toy", "BTC-USD", i, None, 0))
            assert out.blocked and len(seen) == out.maxsize
            waiter = mux._wait_unblocked("toy")
            assert waiter is not None
            waiter.close()  # (a coroutine: not awaited here)
            await out.aclose()
