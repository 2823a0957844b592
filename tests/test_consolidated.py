"""Consolidated best bid/offer across venues."""

from __future__ import annotations

from toyvenue import MockToy, ToyAdapter, ToyAdapter2

from wsmux import Backoff, BookUpdate, ConsolidatedQuote, Gap, Multiplexer, Resynced, book
from wsmux.book import ConsolidatedBBO
from wsmux.testing import collect_until


def test_consolidated_rules() -> None:
    c = ConsolidatedBBO("BTC-USD", ("a", "b", "c"))
    assert c.best_bid() is None and c.best_ask() is None
    assert c.update("a", 100.0, 1.0, 101.0, 1.0, True, 1)
    assert c.update("b", 100.5, 2.0, 101.5, 1.0, True, 2)
    assert c.best_bid() == (100.5, 2.0, "b") and c.best_ask() == (101.0, 1.0, "a")
    # equal price: larger size wins, then venue id
    c.update("c", 100.5, 3.0, 101.0, 1.0, True, 3)
    assert c.best_bid() == (100.5, 3.0, "c")
    assert c.best_ask() == (101.0, 1.0, "a")
    # an invalid venue is left out
    assert c.invalidate("c", 4)
    assert c.best_bid() == (100.5, 2.0, "b")
    assert not c.invalidate("c", 5)  # already out: no change
    # unchanged update reports no change
    assert not c.update("a", 100.0, 1.0, 101.0, 1.0, True, 6)
    # cross-venue crossing is reported, not an error
    c.update("a", 102.0, 1.0, 103.0, 1.0, True, 7)
    assert c.locked_or_crossed()


def last_seq(mock: MockToy) -> int:
    return int(next(iter(mock.connections.values())).state["seq"]["BTC-USD"])


async def test_consolidated_stream_follows_books_and_excludes_invalid() -> None:
    async with MockToy(["BTC-USD"], seed=1) as m1, MockToy(["BTC-USD"], seed=2) as m2:
        async with Multiplexer(
            endpoints={"toy": m1.endpoint, "toy2": m2.endpoint},
            adapters={"toy": ToyAdapter, "toy2": ToyAdapter2},
            backoff=Backoff(initial=0.01, cap=0.05),
        ) as mux:
            stream = mux.subscribe_consolidated("BTC-USD", ["toy", "toy2"])
            watch = mux.subscribe(book("toy", "BTC-USD"), book("toy2", "BTC-USD"))
            synced: set[str] = set()
            await collect_until(
                watch, lambda e: isinstance(e, Resynced) and synced.add(e.venue) is None and len(synced) == 2
            )
            await m1.publish(100)
            await m2.publish(100)
            done: set[str] = set()
            targets = {"toy": last_seq(m1), "toy2": last_seq(m2)}
            await collect_until(
                watch,
                lambda e: (
                    isinstance(e, BookUpdate)
                    and e.seq == targets[e.venue]
                    and done.add(e.venue) is None
                    and len(done) == 2
                ),
            )
            books = [m.markets["BTC-USD"] for m in (m1, m2)]
            want_bid = max(b.price(b.best_bid()) for b in books)
            want_ask = min(b.price(b.best_ask()) for b in books)
            cons = mux.consolidated("BTC-USD")
            assert cons.best_bid()[0] == want_bid  # type: ignore[index]
            assert cons.best_ask()[0] == want_ask  # type: ignore[index]
            # the stream's latest quote says the same
            quotes = []
            while stream.buffered:
                ev = await stream.__anext__()
                if isinstance(ev, ConsolidatedQuote):
                    quotes.append(ev)
            assert (quotes[-1].bid_price, quotes[-1].ask_price) == (want_bid, want_ask)

            # a gap on one venue removes it from the consolidated view at once
            m1.faults.skip_seq = 1
            await m1.publish(3)
            await collect_until(watch, lambda e: isinstance(e, Gap) and e.venue == "toy")
            assert not cons.tops()["toy"].valid
            bid = cons.best_bid()
            assert bid is not None and bid[2] == "toy2"
            await collect_until(watch, lambda e: isinstance(e, Resynced) and e.venue == "toy")
            await m1.publish(1)
            await collect_until(watch, lambda e: isinstance(e, BookUpdate) and e.venue == "toy")
            assert cons.tops()["toy"].valid
            await stream.aclose()
            await watch.aclose()
