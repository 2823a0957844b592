"""The synchronous API delivers the same events as the async one."""

from __future__ import annotations

import asyncio
import threading

import pytest
from toyvenue import MockToy, ToyAdapter

from wsmux import Backoff, BookSnapshot, BookUpdate, ClosedError, Connected, Resynced, Trade, book, trades
from wsmux.sync import Multiplexer


class MockThread:
    """Runs a MockToy on its own loop in a thread (the sync API has no loop for it)."""

    def __init__(self, symbols: list[str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.mock = MockToy(symbols)
        self.call(self.mock.start())

    def call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.call(self.mock.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def mock_thread():  # type: ignore[no-untyped-def]
    mt = MockThread(["BTC-USD"])
    yield mt
    mt.close()


def make_mux(mt: MockThread) -> Multiplexer:
    return Multiplexer(
        endpoints={"toy": mt.mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=Backoff(initial=0.01, cap=0.05)
    )


def test_sync_iteration_and_book(mock_thread: MockThread) -> None:
    with make_mux(mock_thread) as mux:
        stream = mux.subscribe(book("toy", "BTC-USD"), trades("toy", "BTC-USD"))
        events = []
        for event in stream:
            events.append(event)
            if isinstance(event, Resynced):
                break
        assert isinstance(events[0], Connected)
        assert any(isinstance(e, BookSnapshot) for e in events)
        mock_thread.call(mock_thread.mock.publish(100))
        conn = next(iter(mock_thread.mock.connections.values()))
        last = conn.state["seq"]["BTC-USD"]
        expected_trades = mock_thread.mock.markets["BTC-USD"].next_trade_id - 1
        n_trades = 0
        at_last = False
        for event in stream:  # every trade and the last book update arrive, in any interleaving
            n_trades += isinstance(event, Trade)
            at_last = at_last or (isinstance(event, BookUpdate) and event.seq == last)
            if at_last and n_trades == expected_trades:
                break
        assert stream.stats.dropped == 0
        copy = mux.book("toy", "BTC-USD")
        assert copy.valid
        assert copy.depth() == mock_thread.mock.markets["BTC-USD"].depth()
        assert mux.health()["streams"][0]["delivered"] >= 100
        stream.close()
    with pytest.raises(ClosedError):
        mux.subscribe(trades("toy", "BTC-USD"))


def test_sync_callbacks_run_and_exit_on_exception(mock_thread: MockThread) -> None:
    got: list[Trade] = []
    seen = threading.Event()

    def on_trade(t: Trade) -> None:
        got.append(t)
        if len(got) >= 3:
            seen.set()

    with pytest.raises(RuntimeError, match="boom"), make_mux(mock_thread) as mux:
        stream = mux.subscribe(trades("toy", "BTC-USD"))
        connected = threading.Event()
        # Connected first: it may arrive before on() (the loop runs in another
        # thread) and is then handed over by on(); trades missed in between
        # are made up for by publishing until three are seen
        stream.on(Connected, lambda _e: connected.set()).on(Trade, on_trade)
        assert connected.wait(10)
        while not seen.is_set():
            mock_thread.call(mock_thread.mock.publish(10))
            seen.wait(0.05)
        raise RuntimeError("boom")
    # the background loop thread is gone after the with-block, exception or not
    assert not any(t.name == "wsmux-loop" and t.is_alive() for t in threading.enumerate())
    assert len(got) >= 3
