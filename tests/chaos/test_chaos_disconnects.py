"""Disconnect storms: every connection of three venues dropped, again and again.

What the library must do: report each loss (``Disconnected``, a
``Gap(DISCONNECT)`` per valid book), reconnect with backoff, resubscribe
exactly the current set, resync every book, never deliver a trade or book
update twice, and leave the venues that were not dropped alone.
"""

from __future__ import annotations

import asyncio

from chaoskit import BinanceVenue, Harness, KrakenVenue, ToyVenue, Venue, make_mux
from toyvenue import MockToy

from wsmux import Connected, Disconnected, Gap, GapReason, Resynced
from wsmux.testing import MockBinance, MockKraken


async def drop_and_resync(h: Harness, venue: Venue, n_conns: int) -> list[object]:
    """Drop every connection of ``venue``; wait until all of them reported the loss
    and all its books resynced."""
    symbols = set(venue.symbols)
    resynced: set[str] = set()

    def all_open() -> bool:
        # a connection still reconnecting when the venue drops it was never open: it
        # reports no Disconnected (seen in CI: a toy connection without books, not yet
        # back from the venue's previous drop, was dropped again while connecting)
        return all(c.state == "open" for c in h.mux.connections() if c.venue == venue.name)

    await h.until(lambda e: all_open())
    mark = h.ledger.count(Disconnected, venue.name)
    await venue.mock.drop_connections()

    def back(e: object) -> bool:
        if isinstance(e, Resynced) and e.venue == venue.name and h.ledger.count(Disconnected, venue.name) > mark:
            resynced.add(e.symbol)
        return resynced == symbols and h.ledger.count(Disconnected, venue.name) == mark + n_conns and all_open()

    return await h.until(back)  # type: ignore[arg-type]


async def test_disconnect_storm_across_three_venues() -> None:
    async with (
        MockToy(["BTC-USD", "ETH-USD"], seed=2) as toy,
        MockBinance(["BTC-USDT", "ETH-USDT"], seed=3) as binance,
        MockKraken(["BTC-USD"], seed=4) as kraken,
    ):
        venues = [ToyVenue(toy), BinanceVenue(binance), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            # phase 1: 15 drops round-robin, each healed before the next
            drops = dict.fromkeys((v.name for v in venues), 0)
            for i in range(15):
                victim = venues[i % 3]
                others = [v for v in venues if v is not victim]
                before = {v.name: h.ledger.count(Disconnected, v.name) for v in others}
                gaps_before = h.ledger.gap_reasons[victim.name, GapReason.DISCONNECT.value]
                n_conns = sum(c.venue == victim.name for c in mux.connections())
                seen = await drop_and_resync(h, victim, n_conns)
                drops[victim.name] += 1
                # one Disconnected per connection and one DISCONNECT gap per (valid) book of the victim
                assert sum(isinstance(e, Disconnected) and e.venue == victim.name for e in seen) == n_conns
                assert h.ledger.gap_reasons[victim.name, GapReason.DISCONNECT.value] - gaps_before == len(
                    victim.symbols
                )
                # the other venues were not touched
                assert {v.name: h.ledger.count(Disconnected, v.name) for v in others} == before
                for other in others:  # and keep delivering exact books meanwhile
                    await h.settle(other.name)
                await h.settle(victim.name)
            for v in venues:
                n_conns = sum(c.venue == v.name for c in mux.connections())
                assert drops[v.name] == 5
                assert h.ledger.count(Disconnected, v.name) == 5 * n_conns
                assert v.mock.connections_total == n_conns * (1 + drops[v.name])
            # every reconnect resubscribed exactly the current set (toy: 4 topics over 2 connections)
            topics = [t for c in toy.connections.values() for t in c.topics]
            assert sorted(topics) == ["book:BTC-USD", "book:ETH-USD", "trades:BTC-USD", "trades:ETH-USD"]
            h.check()
            await h.stream.aclose()


async def test_rapid_drops_while_reconnecting() -> None:
    """Connections dropped the moment they open (before or while subscribing), 5 times per
    venue on two venues at once, while a third venue is left alone."""
    async with (
        MockToy(["BTC-USD"], seed=5) as toy,
        MockBinance(["BTC-USDT"], seed=6) as binance,
        MockKraken(["ETH-USD"], seed=7) as kraken,
    ):
        venues = [ToyVenue(toy), BinanceVenue(binance), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()

            async def storm(mock: MockToy | MockBinance, times: int) -> None:
                for _ in range(times):
                    mock.connected.clear()
                    await mock.drop_connections()
                    await asyncio.wait_for(mock.connected.wait(), 10)  # the client is back: drop it again

            kraken_before = kraken.connections_total
            await asyncio.gather(storm(toy, 5), storm(binance, 5), h.settle("kraken"))
            await h.settle("toy")
            await h.settle("binance")
            await h.settle("kraken")
            assert toy.connections_total == 6 and binance.connections_total == 6
            assert kraken.connections_total == kraken_before  # untouched
            assert h.ledger.count(Disconnected, "kraken") == 0
            assert h.ledger.count(Gap, "kraken") == 0
            for name in ("toy", "binance"):
                # at least the first drop hit an open connection; every open ended in a Disconnected
                assert 1 <= h.ledger.count(Disconnected, name) <= 5
                assert h.ledger.count(Connected, name) == h.ledger.count(Disconnected, name) + 1
            h.check()
            await h.stream.aclose()
