"""The reliability machinery inside the live runtime: redundancy and failover,
quality gate and circuit breaker, trade-id gaps, rollover before the venue's
maximum connection age, per-venue connection gate."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from toyvenue import MockToy, ToyAdapter

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Disconnected,
    Error,
    ErrorKind,
    Gap,
    GapReason,
    Limits,
    Multiplexer,
    Resynced,
    Trade,
    book,
    trades,
)
from wsmux.testing import MockBinance, collect_until

FAST = Backoff(initial=0.01, cap=0.05)


def seq_of(mock: MockToy, symbol: str = "BTC-USD") -> int:
    return max(int(c.state["seq"][symbol]) for c in mock.connections.values())


async def test_redundant_connections_deliver_once_and_fail_over_without_a_gap() -> None:
    async with (
        MockToy(["BTC-USD"]) as mock,
        Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST, redundancy=2) as mux,
    ):
        stream = mux.subscribe(book("toy", "BTC-USD"), trades("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        while len(mock.connections) < 2 or not all(
            c.feed.syncs["BTC-USD"].valid for c in mux.connections()
        ):  # both members synced (each Resynced of the backup is hidden by the arbiter)
            await mock.publish(1)
            await asyncio.sleep(0.01)
        await mock.publish(100)
        n_trades = mock.markets["BTC-USD"].next_trade_id - 1
        delivered: list = []
        target = seq_of(mock)
        delivered += await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == target)
        # kill one member: the caller sees no Gap, the book stays valid
        victim = next(iter(mock.connections.values()))
        await victim.ws.close(1011, "chaos")
        await mock.publish(100)
        target = seq_of(mock)
        delivered += await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.seq == target)
        assert not [e for e in delivered if isinstance(e, Gap)]
        view = mux.book("toy", "BTC-USD")
        assert view.valid and view.depth() == mock.markets["BTC-USD"].depth()
        # exactly once: book seqs strictly increase, trade ids unique
        seqs = [e.seq for e in delivered if isinstance(e, BookUpdate)]
        assert seqs == sorted(set(seqs))
        ids = [e.trade_id for e in delivered if isinstance(e, Trade)]
        assert len(ids) == len(set(ids))
        shard = mux.health()["shards"][0]
        assert len(shard["connections"]) == 2 and shard["arbiter"] is not None
        assert n_trades > 0


async def test_bad_data_is_withheld_reported_and_trips_the_breaker() -> None:
    async with (
        MockToy(["BTC-USD"]) as mock,
        Multiplexer(
            endpoints={"toy": mock.endpoint},
            adapters={"toy": ToyAdapter},
            backoff=FAST,
            breaker={"threshold": 5, "window": 10.0, "cooldown": 0.2, "probe_events": 3, "probe_seconds": None},
        ) as mux,
    ):
        stream = mux.subscribe(trades("toy", "BTC-USD"))
        await collect_until(stream, lambda e: e.__class__.__name__ == "Connected")
        conn = next(iter(mock.connections.values()))
        for i in range(6):  # six trades with a negative price
            await conn.send(f'{{"t":"trade","s":"BTC-USD","id":{900 + i},"p":"-1","q":"1","side":"buy"}}')
        events = await collect_until(
            stream, lambda e: isinstance(e, Error) and e.kind is ErrorKind.CIRCUIT and "open" in e.message
        )
        bad = [e for e in events if isinstance(e, Error) and e.kind is ErrorKind.BAD_DATA]
        assert bad and "bad_price" in bad[0].message
        assert not [e for e in events if isinstance(e, Trade)]  # none of the bad trades reached the caller
        assert mux.counters["bad_data"] == 6
        # while open, good data is withheld (counted); after the cooldown,
        # half-open probes of good data close it again
        mock.run()  # a steady market in the background
        events = await collect_until(
            stream,
            lambda e: isinstance(e, Error) and e.kind is ErrorKind.CIRCUIT and "-> closed" in e.message,
            timeout=10,
        )
        assert mux.counters["breaker_withheld"] > 0
        health = mux.health()
        assert health["breakers"]["toy"]["state"] == "closed"
        await collect_until(stream, lambda e: isinstance(e, Trade))


async def test_trade_id_hole_is_reported_with_the_missing_range() -> None:
    async with (
        MockBinance(["BTC-USDT"], seed=5) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, backoff=FAST) as mux,
    ):
        stream = mux.subscribe(trades("binance", "BTC-USDT"))
        await collect_until(stream, lambda e: e.__class__.__name__ == "Connected")
        while mock.markets["BTC-USDT"].next_trade_id < 3:
            await mock.publish(1)
        first = await collect_until(stream, lambda e: isinstance(e, Trade))
        market = mock.markets["BTC-USDT"]
        skipped_from = market.next_trade_id
        market.next_trade_id += 5  # the venue "loses" five trades
        while market.next_trade_id == skipped_from + 5:
            await mock.publish(1)
        events = await collect_until(stream, lambda e: isinstance(e, Gap))
        gap = events[-1]
        assert isinstance(gap, Gap) and gap.reason is GapReason.TRADE_ID
        assert gap.expected is not None and gap.received is not None
        assert gap.received - gap.expected >= 5
        assert first


class AgingToy(ToyAdapter):
    limits: ClassVar[Limits] = Limits(streams_per_connection=3, messages_per_second=1000, max_connection_age=1.0)


async def test_rollover_before_max_age_keeps_the_book_valid() -> None:
    async with (
        MockToy(["BTC-USD"]) as mock,
        Multiplexer(
            endpoints={"toy": mock.endpoint}, adapters={"toy": AgingToy}, backoff=FAST, rollover_margin=0.6
        ) as mux,
    ):
        stream = mux.subscribe(book("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        mock.run()  # keep the market moving while the rollover happens
        events = await collect_until(stream, lambda e: isinstance(e, Resynced), timeout=10)
        assert not [e for e in events if isinstance(e, Gap | Disconnected)]
        assert any(isinstance(e, BookSnapshot) for e in events)
        assert mux.health()["shards"][0]["rollovers"] >= 1
        assert mock.connections_total >= 2
        view = mux.book("toy", "BTC-USD")
        assert view.valid


class OnePerConnection(ToyAdapter):
    limits: ClassVar[Limits] = Limits(streams_per_connection=1, messages_per_second=1000)


async def test_disconnect_storm_reconnects_through_the_connect_gate() -> None:
    from wsmux.connection import WebsocketsTransport

    in_flight = 0
    peak = 0

    class SlowHandshake(WebsocketsTransport):
        """Each connect takes 20 ms, so a herd of reconnects would overlap."""

        async def connect(self, url, **kw):  # type: ignore[no-untyped-def,override]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.02)
                return await super().connect(url, **kw)
            finally:
                in_flight -= 1

    symbols = [f"S{i}-USD" for i in range(8)]
    async with (
        MockToy(symbols) as mock,
        Multiplexer(
            endpoints={"toy": mock.endpoint},
            adapters={"toy": OnePerConnection},
            backoff=Backoff(initial=0.001, cap=0.002),
            transport=SlowHandshake(),
        ) as mux,
    ):
        stream = mux.subscribe(book("toy", *symbols))
        synced: set[str] = set()
        await collect_until(
            stream, lambda e: isinstance(e, Resynced) and synced.add(e.symbol) is None and len(synced) == 8
        )
        peak = 0
        await mock.drop_connections()  # eight connections lost at once
        synced.clear()
        events = await collect_until(
            stream, lambda e: isinstance(e, Resynced) and synced.add(e.symbol) is None and len(synced) == 8
        )
        assert sum(isinstance(e, Disconnected) for e in events) == 8
        assert peak == 2  # the gate let two attempts run at a time, never the herd of eight
        gate = mux._connect_gates["toy"]
        assert gate.waits > 0 and gate.limiter.in_flight == 0
        for symbol in symbols:
            assert mux.book("toy", symbol).valid


async def test_flapping_venue_keeps_its_backoff() -> None:
    class Flappy(MockToy):
        flap = True

        async def on_open(self, conn) -> None:  # type: ignore[no-untyped-def]
            if self.flap:
                await conn.ws.close(1011, "flap")

    async with (
        Flappy(["BTC-USD"]) as mock,
        Multiplexer(
            endpoints={"toy": mock.endpoint},
            adapters={"toy": ToyAdapter},
            backoff=Backoff(initial=0.001, factor=1.5, cap=0.01),
            stable_after=0.05,
        ) as mux,
    ):
        stream = mux.subscribe(book("toy", "BTC-USD"))
        while mock.connections_total < 6:
            await collect_until(stream, lambda e: isinstance(e, Disconnected))
        conn = mux.connections()[0]
        assert conn.recovery.attempt >= 5  # never reset: no connection delivered data
        mock.flap = False
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        mock.run()
        await collect_until(stream, lambda e: isinstance(e, BookUpdate) and conn.recovery.recovered)
        assert conn.recovery.attempt == 0 and conn.recovery.recoveries == 1


async def test_slow_consumer_is_reported_and_does_not_delay_other_streams() -> None:
    from wsmux import Dropped, Overflow, SlowConsumer

    async with (
        MockToy(["BTC-USD", "ETH-USD"]) as mock,
        Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux,
    ):
        slow = mux.subscribe(trades("toy", "BTC-USD"), maxsize=20, overflow=Overflow.DROP_OLDEST, name="slow")
        fast = mux.subscribe(book("toy", "ETH-USD"), name="fast")
        await collect_until(fast, lambda e: isinstance(e, Resynced))
        await mock.publish(400)  # nobody reads `slow` meanwhile
        target = seq_of(mock, "ETH-USD")
        await collect_until(fast, lambda e: isinstance(e, BookUpdate) and e.seq == target)  # fast is not held up
        first = await slow.__anext__()
        assert isinstance(first, SlowConsumer) and first.stream == "slow" and first.maxsize == 20
        second = await slow.__anext__()
        assert isinstance(second, Dropped) and second.count > 0
        st = slow.stats
        assert st.received == st.delivered + st.dropped + slow.buffered
        assert st.slow_episodes == 1 and st.max_buffered <= 20


async def test_a_silent_book_is_stale_even_while_its_connection_lives() -> None:
    from wsmux import Channel, Stale

    async with (
        MockToy(["BTC-USD", "ETH-USD"]) as mock,
        Multiplexer(
            endpoints={"toy": mock.endpoint},
            adapters={"toy": ToyAdapter},
            backoff=FAST,
            stale_channels={Channel.BOOK: 0.3},
        ) as mux,
    ):
        stream = mux.subscribe(book("toy", "BTC-USD", "ETH-USD"))
        synced: set[str] = set()
        await collect_until(
            stream, lambda e: isinstance(e, Resynced) and synced.add(e.symbol) is None and len(synced) == 2
        )
        mock.run()  # both symbols move...
        await collect_until(stream, lambda e: isinstance(e, BookUpdate) and e.symbol == "BTC-USD")
        mock._ticker.cancel()  # type: ignore[union-attr]
        mock._ticker = None

        async def eth_only() -> None:
            while True:
                await mock.publish(1, symbols=["ETH-USD"])
                await asyncio.sleep(0.02)

        task = asyncio.create_task(eth_only())
        try:
            events = await collect_until(stream, lambda e: isinstance(e, Stale), timeout=10)
        finally:
            task.cancel()
        stale = events[-1]
        assert isinstance(stale, Stale) and stale.symbol == "BTC-USD" and stale.channel is Channel.BOOK
        assert stale.silent_ns >= 300_000_000
        assert mock.connections_total == 1  # the connection itself was healthy
        assert mux.book("toy", "BTC-USD").valid


async def test_trade_backfill_recovers_lost_trades_and_lists_what_is_missing() -> None:
    from wsmux import Backfilled

    async with (
        MockBinance(["BTC-USDT"], seed=7) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, backoff=FAST, backfill_trades=True) as mux,
    ):
        stream = mux.subscribe(trades("binance", "BTC-USDT"))
        await collect_until(stream, lambda e: e.__class__.__name__ == "Connected")
        market = mock.markets["BTC-USDT"]
        while market.next_trade_id < 3:
            await mock.publish(1)
        await collect_until(stream, lambda e: isinstance(e, Trade))
        # 1) three trades lost in transit: the venue's REST history has them
        mock.faults.drop_trades = 3
        lost_from = market.next_trade_id
        while market.next_trade_id < lost_from + 4:
            await mock.publish(1)
        events = await collect_until(stream, lambda e: isinstance(e, Backfilled))
        done = events[-1]
        assert isinstance(done, Backfilled) and done.recovered == 3 and done.missing == ()
        got = [int(e.trade_id) for e in events if isinstance(e, Trade)]  # type: ignore[arg-type]
        assert set(range(lost_from, lost_from + 3)) <= set(got)
        assert len(got) == len(set(got))  # nothing twice
        # 2) ids that never existed anywhere: reported exactly as missing
        gone_from = market.next_trade_id
        market.next_trade_id += 4
        while market.next_trade_id == gone_from + 4:
            await mock.publish(1)
        events = await collect_until(stream, lambda e: isinstance(e, Backfilled))
        assert events[-1].missing == ((gone_from, gone_from + 3),)  # type: ignore[attr-defined]
        assert events[-1].recovered == 0  # type: ignore[attr-defined]


async def test_two_rollovers_of_one_connection_replace_it_once() -> None:
    """The age timer and endpoint choice may ask at the same moment: one replacement."""
    async with (
        MockToy(["BTC-USD"]) as mock,
        Multiplexer(endpoints={"toy": mock.endpoint}, adapters={"toy": ToyAdapter}, backoff=FAST) as mux,
    ):
        stream = mux.subscribe(book("toy", "BTC-USD"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        mock.run()
        shard = mux._shards["toy"][0]
        old = shard.conns[0]
        results = await asyncio.gather(shard.rollover(old), shard.rollover(old))
        assert sorted(results) == [False, True]
        assert shard.rollovers == 1 and len(shard.conns) == 1 and shard.conns[0] is not old
        assert mux.book("toy", "BTC-USD").valid
        await stream.aclose()
