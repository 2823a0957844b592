"""The sync facade: callback-only programs, a dead loop thread, typed errors
(issue 11 items 2, 5, 10; issue 10 item 6)."""

from __future__ import annotations

import sys
import threading

import pytest
from toyvenue import MockToy, ToyAdapter

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    ClosedError,
    ConfigError,
    LoopThreadDied,
    NotSubscribed,
    Resynced,
    Trade,
    book,
    trades,
)
from wsmux.health import Health
from wsmux.sync import Multiplexer
from wsmux.testing import ThreadedMock, run_mock_in_thread

FAST = Backoff(initial=0.01, cap=0.05)


@pytest.fixture
def mock_thread():  # type: ignore[no-untyped-def]
    with run_mock_in_thread(MockToy(["BTC-USD"])) as mt:
        yield mt


def make_mux(mt: ThreadedMock[MockToy]) -> Multiplexer:
    return Multiplexer(endpoints={"toy": mt.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST)


def expected_trades(mt: ThreadedMock[MockToy]) -> int:
    return mt.mock.markets["BTC-USD"].next_trade_id - 1


def test_callback_only_stream_never_buffers_so_it_never_stalls(mock_thread: ThreadedMock[MockToy]) -> None:
    # the stall was: an unread BLOCK buffer filling up to maxsize, then the venue paused forever
    got: list[Trade] = []
    target: list[int] = []
    connected = threading.Event()
    done = threading.Event()
    with make_mux(mock_thread) as mux:
        # the book's Resynced says the mock has the subscription (Connected only says it was sent)
        stream = mux.subscribe(trades("toy", "BTC-USD"), book("toy", "BTC-USD"), maxsize=20)
        stream.on(Resynced, lambda _e: connected.set())

        def check() -> None:
            if target and len(got) >= target[0]:
                done.set()
                mux.stop()

        def on_trade(t: Trade) -> None:
            got.append(t)
            check()

        stream.on(Trade, on_trade)
        assert connected.wait(10)
        mock_thread.publish(1000)
        target.append(expected_trades(mock_thread))
        assert target[0] >= 100  # five times the buffer and more
        stream._runner.loop.call_soon_threadsafe(check)  # the trades may all be in already
        mux.run(duration=30)  # returns when the callback calls mux.stop()
        assert done.is_set(), (len(got), target, stream.stats, mux.health().connections[0].state)
        health = mux.health()
        assert isinstance(health, Health)
        assert health.streams[0].buffered == 0 and not health.streams[0].blocked
        assert not health.connections[0].paused
        assert stream.stats.dropped == 0
    assert [int(t.trade_id) for t in got] == list(range(1, target[0] + 1))  # every trade, in order


def test_run_returns_after_its_duration_and_raises_when_closed(mock_thread: ThreadedMock[MockToy]) -> None:
    with make_mux(mock_thread) as mux:
        mux.subscribe(trades("toy", "BTC-USD")).on(Trade, lambda _t: None)
        mux.run(duration=0.01)
    with pytest.raises(ClosedError):
        mux.run(duration=0.01)


def test_reading_a_callback_stream_starts_buffering(mock_thread: ThreadedMock[MockToy]) -> None:
    with make_mux(mock_thread) as mux:
        connected = threading.Event()
        stream = mux.subscribe(trades("toy", "BTC-USD"), book("toy", "BTC-USD"))
        stream.on(Resynced, lambda _e: connected.set())
        assert connected.wait(10)
        # snapshot and Resynced went to the callbacks only (delivered, never buffered)
        assert stream.stats.delivered >= 2
        with pytest.raises(TimeoutError):
            stream.get(timeout=0.05)  # reading starts: buffered from here on
        mock_thread.publish(5)
        first = stream.get(timeout=10)
        assert isinstance(first, BookUpdate | Trade)
        assert not isinstance(first, BookUpdate) or first.seq == 1001  # the first change published


def test_a_dead_loop_thread_wakes_every_waiting_call(mock_thread: ThreadedMock[MockToy]) -> None:
    mux = make_mux(mock_thread)
    mux.start()
    stream = mux.subscribe(trades("toy", "BTC-USD"), book("toy", "BTC-USD"))
    while not isinstance(stream.get(timeout=10), Resynced):  # read first: the stream buffers
        pass
    stream.on(Trade, lambda _t: sys.exit(3))
    mock_thread.publish(5)
    with pytest.raises(LoopThreadDied, match="SystemExit") as info:
        for _ in stream:  # blocked forever before the fix
            pass
    assert isinstance(info.value.__cause__, SystemExit)
    with pytest.raises(LoopThreadDied):
        mux.health()
    closer = threading.Thread(target=mux.close)
    closer.start()
    closer.join(10)  # a bound, not a measurement: close() waited 30 s and raised before the fix
    assert not closer.is_alive()
    assert not any(t.name == "wsmux-loop" and t.is_alive() for t in threading.enumerate())


def test_calls_after_close_raise_closed_error(mock_thread: ThreadedMock[MockToy]) -> None:
    mux = make_mux(mock_thread)
    with mux:
        stream = mux.subscribe(trades("toy", "BTC-USD"))
    with pytest.raises(ClosedError):
        stream.get(timeout=1)  # was RuntimeError('Event loop is closed') + "coroutine never awaited"
    with pytest.raises(ClosedError):
        mux.start()  # was a silent restart
    with pytest.raises(ClosedError):
        mux.book("toy", "BTC-USD")
    stream.close()  # idempotent, no error


def test_typed_constructor_and_books(mock_thread: ThreadedMock[MockToy]) -> None:
    with pytest.raises(ConfigError):
        Multiplexer(connect_timeout=-1)
    with pytest.raises(TypeError):
        Multiplexer(redundency=2)  # type: ignore[call-arg]
    with make_mux(mock_thread) as mux:
        with pytest.raises(NotSubscribed):
            mux.book("toy", "BTC-USD")
        stream = mux.subscribe("toy:book:BTC-USD")
        copy = mux.synced("toy", "BTC-USD", timeout=10)
        assert copy.valid
        mock_thread.publish(20)
        last = next(iter(mock_thread.mock.connections.values())).state["seq"]["BTC-USD"]
        while (copy.seq or 0) < last:
            copy = mux.watch_order_book("toy", "BTC-USD", timeout=10)
        assert copy.depth() == mock_thread.mock.markets["BTC-USD"].depth()
        assert set(mux.books) == {("toy", "BTC-USD")}
        seen = []
        for event in stream:
            seen.append(event)
            if isinstance(event, Resynced):
                break
        assert any(isinstance(e, BookSnapshot) for e in seen)
        cons = mux.subscribe_consolidated("BTC-USD", ["toy"])
        # the book is live already: the consolidated stream starts from its current BBO
        first = cons.get(timeout=10)
        bid, _, ask, _ = mux.book("toy", "BTC-USD").bbo()
        assert (first.symbol, first.bid_price, first.ask_price) == ("BTC-USD", bid, ask)  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            cons.get(timeout=0.05)  # nothing changed since
        mock_thread.publish(20)
        assert cons.get(timeout=10).symbol == "BTC-USD"  # type: ignore[attr-defined]
        assert mux.consolidated("BTC-USD")[0] is not None


def test_facade_calls_from_a_callback_do_not_deadlock(mock_thread: ThreadedMock[MockToy]) -> None:
    results: list[object] = []
    done = threading.Event()
    with make_mux(mock_thread) as mux:
        stream = mux.subscribe(book("toy", "BTC-USD"))

        def on_resynced(_e: Resynced) -> None:
            results.append(mux.book("toy", "BTC-USD").valid)  # a direct read on the loop thread
            stream.on(Trade, lambda _t: None)  # registering from a callback
            try:
                mux.synced("toy", "BTC-USD", timeout=1)  # would block the loop: refused
            except RuntimeError as exc:
                results.append(str(exc))
            done.set()

        stream.on(Resynced, on_resynced)
        assert done.wait(10)
    assert results[0] is True
    assert "would deadlock" in str(results[1])


def test_the_sync_facade_runs_analytics(mock_thread: ThreadedMock[MockToy]) -> None:
    from wsmux.analytics import Bar, TickBars

    with make_mux(mock_thread) as mux:
        bars = mux.analyze(TickBars(5), trades("toy", "BTC-USD"))
        published = 0
        got: list[Bar] = []
        while len(got) < 3 and published < 5000:  # bounded: the operator runs on the loop thread
            mock_thread.publish(50)
            published += 50
            try:
                while len(got) < 3:
                    event = bars.get(timeout=0.5)
                    if isinstance(event, Bar):
                        got.append(event)
            except TimeoutError:
                continue
        assert len(got) == 3 and all(b.trades == 5 and b.kind == "tick:5" for b in got)
