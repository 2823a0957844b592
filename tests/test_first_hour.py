"""The first hour of a new user: failures explain themselves, mistakes raise typed errors
(issue 11: items 1, 4, 5, 10; issue 10 item 3)."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Callable

import pytest
from toyvenue import MockToy, ToyAdapter

from wsmux import (
    Backoff,
    BookView,
    Channel,
    ClosedError,
    ConfigError,
    Connected,
    ConnectFailed,
    Multiplexer,
    NotStarted,
    NotSubscribed,
    Overflow,
    Resynced,
    Subscription,
    SyncTimeout,
    Trade,
    UnknownChannel,
    UnknownVenue,
    book,
    trades,
)
from wsmux.connection import LogThrottle
from wsmux.testing import collect_until

FAST = Backoff(initial=0.01, cap=0.05)


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def toy_mux(url: str, **kw: object) -> Multiplexer:
    return Multiplexer(endpoints={"toy": url}, adapters={"toy": ToyAdapter}, backoff=FAST, **kw)  # type: ignore[arg-type]


# --- 11.1: silence when nothing connects -------------------------------------------


async def test_refused_connection_gives_a_connect_failed_event_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/ws"
    caplog.set_level(logging.WARNING, logger="wsmux")
    async with toy_mux(url) as mux:
        stream = mux.subscribe(trades("toy", "BTC-USD"))
        failures: list[ConnectFailed] = []
        for _ in range(3):
            seen = await asyncio.wait_for(collect_until(stream, lambda e: isinstance(e, ConnectFailed)), 10)
            failures.append(seen[-1])
        assert [f.attempt for f in failures] == [1, 2, 3]
        for f in failures:
            assert f.venue == "toy" and f.url == url
            assert f.reason.startswith("connection refused"), f.reason
            assert f.retry_in is not None and 0 <= f.retry_in <= FAST.cap
        conn = mux.health().connections[0]
        assert conn.state in ("reconnecting", "connecting")
        assert conn.last_error is not None and conn.last_error.startswith("connection refused")
        assert conn.last_error_ns is not None and conn.last_error_ns > 0
        assert conn.connect_failures >= 3
        assert mux.health().to_dict()["connections"][0]["last_error"] == conn.last_error
    lines = [r for r in caplog.records if r.name == "wsmux.connection.toy" and r.levelno == logging.WARNING]
    # one line per failed attempt (the throttle's burst is not reached here), each with reason and retry time
    assert len(lines) >= 3
    for record in lines[:3]:
        text = record.getMessage()
        assert "connection refused" in text and "retrying in" in text and url in text


async def test_handshake_timeout_is_a_connect_failure() -> None:
    # a TCP server that accepts and never answers the WebSocket handshake
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(w)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with toy_mux(f"ws://127.0.0.1:{port}/ws", connect_timeout=0.2) as mux:
            stream = mux.subscribe(trades("toy", "BTC-USD"))
            seen = await asyncio.wait_for(collect_until(stream, lambda e: isinstance(e, ConnectFailed)), 10)
            assert seen[-1].reason.startswith("timed out"), seen[-1].reason  # type: ignore[attr-defined]
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_dns_failure_is_a_connect_failure() -> None:
    # '.invalid' never resolves (RFC 2606); the resolver answers locally without a network
    async with toy_mux("ws://wsmux-test.invalid/ws", connect_timeout=5) as mux:
        stream = mux.subscribe(trades("toy", "BTC-USD"))
        seen = await asyncio.wait_for(collect_until(stream, lambda e: isinstance(e, ConnectFailed)), 20)
        reason = seen[-1].reason  # type: ignore[attr-defined]
        assert reason.startswith(("DNS lookup failed", "timed out")), reason


def test_log_throttle_caps_a_storm_and_counts_what_it_held_back() -> None:
    throttle = LogThrottle(burst=3, every=10.0)
    out = [throttle.allow(0.0) for _ in range(50)]
    assert out[:3] == [0, 0, 0]
    assert out[3:] == [None] * 47
    assert throttle.allow(10.0) == 47  # the next line says how many were suppressed
    assert throttle.allow(10.0) is None


# --- 11.4: unknown endpoint keys ----------------------------------------------------


def test_unknown_endpoint_key_raises_with_close_matches() -> None:
    with pytest.raises(UnknownVenue, match="did you mean 'binance'"):
        Multiplexer(endpoints={"Binance": "ws://127.0.0.1:1/ws"})
    with pytest.raises(KeyError):
        Multiplexer(endpoints={"nosuchvenue": "ws://127.0.0.1:1/ws"})
    Multiplexer(endpoints={"toy": "ws://127.0.0.1:1/ws"}, adapters={"toy": ToyAdapter})  # custom adapters count


def test_endpoints_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "WSMUX_ENDPOINTS", '{"binance": {"url": "ws://127.0.0.1:9/ws", "rest_url": "http://127.0.0.1:9"}}'
    )
    mux = Multiplexer()
    assert mux._endpoints["binance"].url == "ws://127.0.0.1:9/ws"
    monkeypatch.setenv("WSMUX_ENDPOINTS", '{"Binance": "ws://127.0.0.1:9/ws"}')
    with pytest.raises(UnknownVenue):
        Multiplexer()
    monkeypatch.setenv("WSMUX_ENDPOINTS", "binance=ws://x")
    with pytest.raises(ConfigError, match="WSMUX_ENDPOINTS"):
        Multiplexer()


# --- 11.5: string forms accepted, everything else typed ---------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"connect_timeout": -1},
        {"connect_timeout": 0},
        {"connect_timeout": math.inf},
        {"connect_timeout": math.nan},
        {"stale_after": -5},
        {"stable_after": math.nan},
        {"rollover_margin": -1.0},
        {"connect_timeout": "10"},
    ],
)
def test_negative_and_non_finite_durations_are_rejected(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kw))):
        Multiplexer(**kw)  # type: ignore[arg-type]


def test_channel_text_is_coerced_and_bad_text_is_typed() -> None:
    assert Subscription("binance", "trades", "BTC-USDT").channel is Channel.TRADES  # type: ignore[arg-type]
    assert Subscription("binance", "BOOK", "BTC-USDT").channel is Channel.BOOK  # type: ignore[arg-type]
    with pytest.raises(UnknownChannel, match="did you mean 'trades'"):
        Subscription("binance", "trade", "BTC-USDT")  # type: ignore[arg-type]
    assert Subscription.parse("binance:trades:BTC-USDT,ETH-USDT") == (*trades("binance", "BTC-USDT", "ETH-USDT"),)
    with pytest.raises(ConfigError, match="VENUE:CHANNEL:SYMBOL"):
        Subscription.parse("binance:BTC-USDT")


async def test_subscribe_accepts_the_string_forms_a_user_types() -> None:
    async with MockToy(["BTC-USD"]) as mock, toy_mux(mock.endpoint.url or "") as mux:
        mux._endpoints["toy"] = mock.endpoint
        stream = mux.subscribe("toy:trades:BTC-USD", "toy:book:BTC-USD", overflow="drop_oldest")
        assert stream.subscriptions == (*trades("toy", "BTC-USD"), *book("toy", "BTC-USD"))
        assert stream.overflow is Overflow.DROP_OLDEST
        assert "drop_oldest" in repr(stream)
        await mux.synced("toy", "BTC-USD", timeout=10)  # the mock has the subscription
        await mock.publish(20)
        await asyncio.wait_for(collect_until(stream, lambda e: isinstance(e, Trade)), 10)
        with pytest.raises(ConfigError, match="unknown overflow policy 'drop'"):
            mux.subscribe("toy:trades:BTC-USD", overflow="drop")
        with pytest.raises(ConfigError, match="VENUE:CHANNEL:SYMBOL"):
            mux.subscribe("binance")
        with pytest.raises(ConfigError, match="maxsize"):
            mux.subscribe("toy:trades:BTC-USD", maxsize=0)


async def test_book_errors_say_why() -> None:
    mux = toy_mux("ws://127.0.0.1:1/ws")
    with pytest.raises(NotStarted, match="async with"):
        mux.book("toy", "BTC-USD")
    async with MockToy(["BTC-USD"]) as mock:
        mux = Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST)
        async with mux:
            with pytest.raises(NotSubscribed, match=r"subscribe first, e\.g\. mux\.subscribe\(wsmux\.book"):
                mux.book("toy", "BTC-USD")
            with pytest.raises(KeyError):  # NotSubscribed is a KeyError, as before
                mux.book("toy", "BTC-USD")
            with pytest.raises(UnknownVenue, match="did you mean 'toy'"):
                mux.book("tyo", "BTC-USD")
            with pytest.raises(NotSubscribed):
                mux.l3_book("toy", "BTC-USD")
            mux.subscribe(book("toy", "BTC-USD"))
            view = await mux.synced("toy", "BTC-USD", timeout=10)
            assert isinstance(view, BookView) and view.valid
            assert mux.book("toy", "BTC-USD").valid
    with pytest.raises(ClosedError, match="closed"):
        mux.book("toy", "BTC-USD")
    with pytest.raises(ClosedError):
        await mux.start()


async def test_stream_get_and_get_after_close() -> None:
    async with MockToy(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux:
            stream = mux.subscribe(trades("toy", "BTC-USD"), book("toy", "BTC-USD"))
            first = await stream.get(timeout=10)
            assert isinstance(first, Connected)
            while not isinstance(await stream.get(timeout=10), Resynced):
                pass
            with pytest.raises(TimeoutError):
                await stream.get(timeout=0.05)  # nothing published yet
            await mock.publish(5)
            while not isinstance(await stream.get(timeout=10), Trade):
                pass
            await stream.aclose()
            while stream.buffered:
                await stream.get()
            with pytest.raises(ClosedError, match="closed"):
                await stream.get()


# --- 11.10: synced / watch_order_book ------------------------------------------------


async def test_synced_then_publish_loses_nothing_and_watch_order_book_follows_the_book() -> None:
    async with MockToy(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux:
            view = await mux.watch_order_book("toy", "BTC-USD", timeout=10)
            assert view.valid
            start = view.seq or 0
            await mock.publish(30)
            last = next(iter(mock.connections.values())).state["seq"]["BTC-USD"]
            while (view.seq or 0) < last:
                view = await mux.watch_order_book("toy", "BTC-USD", timeout=10)
                assert view.valid
            assert view.seq == last > start
            assert view.depth() == mock.markets["BTC-USD"].depth()
            # synced() on the subscription watch_order_book holds returns at once
            assert (await mux.synced("toy", "BTC-USD", timeout=1)).seq == last


async def test_synced_times_out_with_the_reason() -> None:
    url = f"ws://127.0.0.1:{closed_port()}/ws"
    async with toy_mux(url) as mux:
        mux.subscribe(book("toy", "BTC-USD"))
        with pytest.raises(SyncTimeout, match="connection refused"):
            # the first attempt fails at once; the timeout leaves room for it
            await asyncio.wait_for(_synced_after_a_failure(mux), 10)


async def _synced_after_a_failure(mux: Multiplexer) -> None:
    stream = mux.subscribe(trades("toy", "BTC-USD"))
    await collect_until(stream, lambda e: isinstance(e, ConnectFailed))
    await mux.synced("toy", "BTC-USD", timeout=0.2)


# --- issue 10 item 3: a subscription never outlives its stream -------------------------


async def test_subscribe_then_close_with_no_loop_turn_leaves_no_venue_subscription() -> None:
    async with MockToy(["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]) as mock:
        async with Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux:
            keeper = mux.subscribe(trades("toy", "BTC-USD"))  # keeps a connection open
            await asyncio.wait_for(collect_until(keeper, lambda e: isinstance(e, Connected)), 10)
            symbols = ["ETH-USD", "SOL-USD", "XRP-USD"]
            for cycle in range(24):
                symbol = symbols[cycle % 3]
                stream = mux.subscribe(book("toy", symbol) if cycle % 2 else trades("toy", symbol))
                if cycle % 4 == 0:
                    await asyncio.sleep(0)  # some cycles let the placement start first
                await stream.aclose()
            # let every background placement finish: they run under the placement lock
            async with mux._placing:
                pass
            for _ in range(3):
                await asyncio.sleep(0)
            async with mux._placing:
                pass
            placed = {str(s) for s in mux._sub_conn}
            carried = {str(s) for c in mux.connections() for s in c.subscriptions}
            assert placed == carried == {"toy:trades:BTC-USD"}
            assert set(mux._sub_refs) == set(trades("toy", "BTC-USD"))


# --- 11.2: a stall is reported -----------------------------------------------------------


async def test_a_full_unread_block_stream_is_reported_as_a_stall() -> None:
    stalled = asyncio.Event()

    class Flag(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "is paused until it is read" in record.getMessage():
                stalled.set()

    flag = Flag()
    logging.getLogger("wsmux.multiplexer").addHandler(flag)
    try:
        async with MockToy(["BTC-USD"]) as mock:
            async with Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux:
                mux.stall_report_after = 0.05
                stream = mux.subscribe(trades("toy", "BTC-USD"), book("toy", "BTC-USD"), maxsize=10)
                await mux.synced("toy", "BTC-USD", timeout=10)
                await mock.publish(50)  # far more than 10 events, nobody reads
                await asyncio.wait_for(stalled.wait(), 10)
                assert mux.health().counters["stalls"] == 1
                assert mux.health().streams[0].blocked
                assert mux.health().connections[0].paused
                while stream.buffered:  # reading resumes the venue
                    await stream.get(timeout=10)
    finally:
        logging.getLogger("wsmux.multiplexer").removeHandler(flag)


async def test_a_reconnect_storm_is_no_log_storm(caplog: pytest.LogCaptureFixture) -> None:
    # 8 connections (3 subscriptions each) to a closed port, each failing again and again
    url = f"ws://127.0.0.1:{closed_port()}/ws"
    caplog.set_level(logging.WARNING, logger="wsmux")
    symbols = [f"S{i}-USD" for i in range(24)]
    async with toy_mux(url) as mux:
        stream = mux.subscribe(trades("toy", *symbols))
        failures = 0
        while failures < 60:
            await asyncio.wait_for(collect_until(stream, lambda e: isinstance(e, ConnectFailed)), 10)
            failures += 1
        assert len({c.conn_id for c in mux.health().connections}) == 8
    lines = [r.getMessage() for r in caplog.records if r.name == "wsmux.connection.toy"]
    # every failure is an event; the log got the burst (5) and at most a line or two more
    assert 5 <= len(lines) <= 7, lines


# --- a cancel of a waiting caller is never swallowed (Python 3.11's wait_for) ----------


async def _cancel_once_the_wait_is_over(task: asyncio.Task[object], over: Callable[[], bool]) -> object:
    """Cancel ``task`` in the loop turn in which its wait ended (``over``) and
    before it resumed: ``asyncio.wait_for`` on Python 3.11 then returned the
    result and dropped the cancel (``task.cancel()`` had said True)."""
    async with asyncio.timeout(10):  # bounded: a wait that never ends fails the test
        while not (over() or task.done()):
            await asyncio.sleep(0)  # one loop turn at a time: the window is one turn wide
    if task.cancel():  # accepted: the task had not returned, so it must end cancelled
        with pytest.raises(asyncio.CancelledError):
            await task
        return None
    return task.result()


async def test_a_cancel_accepted_during_watch_order_book_is_never_swallowed() -> None:
    async with MockToy(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux:
            await mux.watch_order_book("toy", "BTC-USD", timeout=10)
            watch = mux._book_watchers["toy", "BTC-USD"]
            task = asyncio.create_task(mux.watch_order_book("toy", "BTC-USD", timeout=30))
            async with asyncio.timeout(10):  # until the call waits for a change
                while not watch._event._waiters:  # type: ignore[attr-defined]
                    await asyncio.sleep(0)
            watch.changed()  # as a book update does
            got = await _cancel_once_the_wait_is_over(task, lambda: watch.returned == watch.version)
            assert got is None or getattr(got, "valid", False)


async def test_a_cancel_accepted_during_synced_is_never_swallowed() -> None:
    async with MockToy(["BTC-USD"]) as mock:
        async with Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux:
            mux.subscribe(book("toy", "BTC-USD"))
            task = asyncio.create_task(mux.synced("toy", "BTC-USD", timeout=30))
            # a helper task of the wait (asyncio.wait_for makes one), if any
            helpers: list[asyncio.Task[object]] = []

            def over() -> bool:
                if not helpers:
                    helpers.extend(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Event.wait")  # type: ignore[union-attr]
                return any(t.done() for t in helpers)

            got = await _cancel_once_the_wait_is_over(task, over)
            assert got is None or getattr(got, "valid", False)


# --- snapshot_wait ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, True, "10"])
def test_snapshot_wait_must_be_positive_seconds(bad: object) -> None:
    from wsmux.sync import Multiplexer as SyncMultiplexer

    with pytest.raises(ConfigError, match="snapshot_wait"):
        Multiplexer(snapshot_wait=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="snapshot_wait"):
        SyncMultiplexer(snapshot_wait=bad)  # type: ignore[arg-type]


async def test_snapshot_wait_sets_every_connection_s_reask_interval() -> None:
    """The interval the Feed waits before asking again for a stream snapshot
    (``Feed.snapshot_wait_ns``, tested there) is the multiplexer's option."""
    async with MockToy(["BTC-USD"]) as mock:
        async with Multiplexer(
            endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST, snapshot_wait=0.25
        ) as mux:
            mux.subscribe(book("toy", "BTC-USD"))
            await mux.synced("toy", "BTC-USD", timeout=10)
            (conn,) = mux.connections()
            assert conn.feed.snapshot_wait_ns == 250_000_000
        async with Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux:
            mux.subscribe(book("toy", "BTC-USD"))
            await mux.synced("toy", "BTC-USD", timeout=10)
            (conn,) = mux.connections()
            assert conn.feed.snapshot_wait_ns == 10_000_000_000
