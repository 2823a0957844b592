"""Sequence faults: lost, duplicated, reordered and crossed book updates on four venues.

Each venue proves continuity its own way: toy ``seq + 1``, Binance ``U/u``
update ids with a REST snapshot, OKX ``prevSeqId`` with a checksum, Kraken a
CRC32 checksum only. What the library must do: flag the broken book before
anyone reads it (``Gap`` with the right reason), rebuild it, never deliver a
book update twice or out of order, and leave the other venues alone.
"""

from __future__ import annotations

from chaoskit import BinanceVenue, Harness, KrakenVenue, OkxVenue, ToyVenue, Venue, make_mux
from toyvenue import MockToy

from wsmux import GapReason
from wsmux.testing import MockBinance, MockKraken, MockOkx


def four(seed: int) -> tuple[MockToy, MockBinance, MockKraken, MockOkx]:
    return (
        MockToy(["BTC-USD"], seed=seed),
        MockBinance(["BTC-USDT"], seed=seed + 1),
        MockKraken(["BTC-USD"], seed=seed + 2),
        MockOkx(["BTC-USDT"], seed=seed + 3),
    )


async def test_lost_updates_are_gaps_on_the_victim_only() -> None:
    toy, binance, kraken, okx = four(50)
    async with toy, binance, kraken, okx:
        venues: list[Venue] = [ToyVenue(toy), BinanceVenue(binance), KrakenVenue(kraken), OkxVenue(okx)]
        reasons = {"toy": GapReason.SEQUENCE, "binance": GapReason.SEQUENCE, "kraken": GapReason.CHECKSUM}
        reasons["okx"] = GapReason.SEQUENCE
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            for round_ in range(2):
                for victim in venues:
                    before = {v.name: h.ledger.book_gaps[v.name] for v in venues}
                    victim.mock.faults.skip_seq = 1
                    await h.settle(victim.name)
                    await h.settle(victim.name)  # (the loss shows on the update after it)
                    assert victim.mock.faults.skip_seq == 0
                    after = {v.name: h.ledger.book_gaps[v.name] for v in venues}
                    assert after[victim.name] == before[victim.name] + 1, (round_, victim.name)
                    assert all(after[v.name] == before[v.name] for v in venues if v is not victim)
            for v in venues:
                assert h.ledger.gap_reasons[v.name, reasons[v.name].value] == 2
                assert mux.book(v.name, v.symbols[0]).valid
            h.check()
            await h.stream.aclose()


async def test_duplicated_updates_are_not_delivered_twice() -> None:
    _, binance, kraken, okx = four(60)
    async with binance, kraken, okx:
        venues: list[Venue] = [BinanceVenue(binance), KrakenVenue(kraken), OkxVenue(okx)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            for v in venues:
                v.mock.faults.duplicate = 5
            for _ in range(4):
                await h.settle_all()
            for v in venues:
                assert v.mock.faults.duplicate == 0
                assert h.ledger.book_gaps[v.name] == 0  # a duplicate is harmless...
            stale = {
                c.venue: sum(s.stats.stale for s in c.feed.syncs.values())
                for c in mux.connections()
                if c.venue in ("binance", "okx")
            }
            # ...and where ids exist it is recognised and dropped (ledger: seqs strictly grow)
            assert stale["binance"] >= 5 and stale["okx"] >= 5
            assert h.ledger.repeats["binance"] == h.ledger.repeats["okx"] == 0
            h.check()
            await h.stream.aclose()


async def test_kraken_duplicates_are_delivered_but_harmless() -> None:
    """Kraken has no sequence ids: a repeated update (absolute sizes) is applied and
    delivered again. The book stays exact; the stream shows the same update twice."""
    _, _, kraken, _ = four(65)
    async with kraken:
        venues: list[Venue] = [KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle("kraken")
            kraken.faults.duplicate = 5
            for _ in range(4):
                await h.settle("kraken")
            assert kraken.faults.duplicate == 0
            assert h.ledger.book_gaps["kraken"] == 0
            assert h.ledger.repeats["kraken"] == 5  # each duplicate reached the stream once more
            h.check()
            await h.stream.aclose()


async def test_reordered_updates_are_gaps_that_heal() -> None:
    _, binance, kraken, okx = four(70)
    async with binance, kraken, okx:
        venues: list[Venue] = [BinanceVenue(binance), KrakenVenue(kraken), OkxVenue(okx)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            for v in venues:
                v.mock.faults.reorder = 2
            for _ in range(4):
                await h.settle_all()
            for v in venues:
                assert v.mock.faults.reorder == 0
                assert 1 <= h.ledger.book_gaps[v.name] <= 2, (v.name, h.ledger.book_gaps[v.name])
                assert mux.book(v.name, v.symbols[0]).valid
            h.check()
            await h.stream.aclose()


async def test_crossed_books_are_flagged() -> None:
    toy, binance, kraken, okx = four(80)
    async with toy, binance, kraken, okx:
        venues: list[Venue] = [ToyVenue(toy), BinanceVenue(binance), KrakenVenue(kraken), OkxVenue(okx)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            for v in venues[1:]:
                v.mock.faults.crossed = 1
            for _ in range(2):
                await h.settle_all()
            for v in venues[1:]:
                assert h.ledger.gap_reasons[v.name, GapReason.CROSSED.value] == 1, v.name
            assert h.ledger.book_gaps["toy"] == 0
            h.check()
            await h.stream.aclose()
