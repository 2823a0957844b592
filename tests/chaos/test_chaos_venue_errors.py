"""A venue that says no: rejected subscriptions, and a REST snapshot endpoint that
fails (HTTP 500), answers garbage, is slow, or hangs past the client's timeout.

What the library must do: report each refusal as an ``Error`` (``VENUE_ERROR``
for a rejected subscription, ``SNAPSHOT`` for a failed snapshot) and count it,
keep the affected book flagged invalid, retry snapshots with backoff (never a
hot loop), heal once the venue behaves, and never let it touch other venues.
"""

from __future__ import annotations

import asyncio

import httpx
from chaoskit import BinanceVenue, Harness, KrakenVenue, ToyVenue, make_mux, repeat_until
from toyvenue import MockToy
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from wsmux import ErrorKind, Resynced, Trade, book
from wsmux.testing import MockBinance, MockKraken


async def test_rejected_subscriptions_are_errors_and_other_venues_run() -> None:
    async with (
        MockKraken(["BTC-USD"], seed=91) as kraken,
        MockBinance(["BTC-USDT"], seed=92) as binance,
        MockToy(["BTC-USD"], seed=93) as toy,
    ):
        kraken.faults.reject_subscriptions = True
        binance.faults.reject_subscriptions = True
        venues = [KrakenVenue(kraken), BinanceVenue(binance), ToyVenue(toy)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            # kraken: one error per subscription (book, trades); binance: one for the URL streams
            await h.until(
                lambda _: (
                    h.ledger.error_kinds["kraken", ErrorKind.VENUE_ERROR] == 2
                    and h.ledger.error_kinds["binance", ErrorKind.VENUE_ERROR] == 1
                )
            )
            await h.synced(["toy"])
            for _ in range(3):
                await h.settle("toy")  # unaffected
            await kraken.publish(20)
            await binance.publish(20)
            await h.settle("toy")
            assert not mux.book("kraken", "BTC-USD").valid and not mux.book("binance", "BTC-USDT").valid
            assert h.ledger.count(Trade, "kraken") == h.ledger.count(Trade, "binance") == 0
            # a rejection is final for that connection: no retry storm
            assert kraken.connections_total == binance.connections_total == 1
            # the venue accepts again; a reconnect (ops, or the venue's own) resubscribes and heals
            kraken.faults.reject_subscriptions = binance.faults.reject_subscriptions = False
            await kraken.drop_connections()
            await binance.drop_connections()
            await h.synced(["kraken", "binance"])
            await h.settle_all()
            assert h.ledger.error_kinds["toy", ErrorKind.VENUE_ERROR] == 0
            assert h.ledger.book_gaps["toy"] == 0
            h.check()
            await h.stream.aclose()


async def test_a_new_subscription_rejected_mid_session_leaves_the_others() -> None:
    async with MockKraken(["BTC-USD", "ETH-USD"], seed=94) as kraken, MockToy(["BTC-USD"], seed=95) as toy:
        venues = [KrakenVenue(kraken, ["BTC-USD"]), ToyVenue(toy)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            kraken.faults.reject_subscriptions = True
            late = mux.subscribe(book("kraken", "ETH-USD", depth=10), name="late")
            err = await asyncio.wait_for(anext_error(late), 10)
            assert err.kind is ErrorKind.VENUE_ERROR and "ETH/USD" in err.message
            kraken.faults.reject_subscriptions = False
            await h.settle_all()  # the established kraken book and the toy venue carry on
            assert h.ledger.book_gaps["kraken"] == 0 and mux.book("kraken", "BTC-USD").valid
            assert not mux.book("kraken", "ETH-USD").valid
            await late.aclose()
            h.check()
            await h.stream.aclose()


async def anext_error(stream: object) -> object:
    from wsmux import Error

    async for event in stream:  # type: ignore[attr-defined]
        if isinstance(event, Error):
            return event
    raise AssertionError("stream ended")


async def test_snapshot_http_500_and_garbage_are_retried_with_backoff() -> None:
    async with MockBinance(["BTC-USDT", "ETH-USDT"], seed=96) as binance, MockKraken(["BTC-USD"], seed=97) as kraken:
        venues = [BinanceVenue(binance), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            # HTTP 500: force a resync of BTC-USDT (a lost diff), every snapshot fails
            binance.faults.snapshot_status = 500
            binance.faults.skip_seq = 1
            await binance.publish(5, ["BTC-USDT"])
            for i in range(4):  # a buffered diff asks again (after a growing delay): fails again
                await binance.publish(2, ["BTC-USDT"])
                await h.until(lambda _, i=i: h.ledger.error_kinds["binance", ErrorKind.SNAPSHOT] > i)
                await h.settle("kraken")  # the other venue is unaffected throughout
            fails = h.ledger.error_kinds["binance", ErrorKind.SNAPSHOT]
            assert fails == 4
            assert not mux.book("binance", "BTC-USDT").valid
            conn = next(c for c in mux.connections() if c.venue == "binance")
            assert conn.stats.snapshot_failures == fails
            assert conn.stats.snapshot_requests == 2 + fails  # initial syncs + one per failure: no hot loop
            # garbage bodies: refused (parse error) like a failure, then the good one heals it
            binance.faults.snapshot_status = 200
            binance.faults.snapshot_garbage = 2
            await h.settle("binance")
            assert binance.faults.snapshot_garbage == 0
            assert h.ledger.error_kinds["binance", ErrorKind.SNAPSHOT] == fails + 2
            assert mux.book("binance", "ETH-USDT").valid  # the other symbol never broke
            assert h.ledger.gap_reasons["binance", "sequence"] == 1
            assert h.ledger.book_gaps["kraken"] == 0
            h.check()
            await h.stream.aclose()


class GatedBinance(MockBinance):
    """REST answers wait for ``gate`` (a snapshot endpoint that hangs until told)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            self.waiting += 1
            try:
                await self.gate.wait()
            finally:
                self.waiting -= 1
        return await super()._process_request(connection, request)


async def test_slow_snapshot_does_not_stall_the_connection_or_other_venues() -> None:
    async with GatedBinance(["BTC-USDT"], seed=98) as binance, MockKraken(["ETH-USD"], seed=99) as kraken:
        venues = [BinanceVenue(binance), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            binance.gate.clear()
            binance.faults.skip_seq = 1
            await binance.publish(6)  # the loss shows on the last diff...
            await binance.publish(1)  # ...the next one (buffered) asks for a snapshot, which hangs
            await h.poll(lambda: binance.waiting == 1)
            resynced = h.ledger.count(Resynced, "binance")
            # while it hangs, the same connection keeps delivering trades, and kraken runs
            for _ in range(3):
                await binance.publish(12)
                last = binance.markets["BTC-USDT"].next_trade_id - 1
                await h.until(lambda _, last=last: h.ledger.last_trade.get(("binance", "BTC-USDT"), 0) >= last)
                await h.settle("kraken")
            assert h.ledger.count(Resynced, "binance") == resynced and not mux.book("binance", "BTC-USDT").valid
            binance.gate.set()
            await h.settle("binance")
            assert h.ledger.count(Resynced, "binance") == resynced + 1
            assert h.ledger.error_kinds["binance", ErrorKind.SNAPSHOT] == 0
            h.check()
            await h.stream.aclose()


async def test_snapshot_delay_with_updates_racing_it() -> None:
    """snapshot_delay: the REST answer comes 0.3 s late while diffs keep flowing; the
    diffs buffered meanwhile are bridged onto the (newer) snapshot."""
    async with MockBinance(["BTC-USDT"], seed=100) as binance, MockToy(["BTC-USD"], seed=101) as toy:
        venues = [BinanceVenue(binance), ToyVenue(toy)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            binance.faults.snapshot_delay = 0.3
            binance.faults.skip_seq = 1
            await binance.publish(6)

            async def race() -> None:
                await binance.publish(2)
                await h.settle("toy")

            await repeat_until(lambda: h.ledger.count(Resynced, "binance") >= 2, race)
            binance.faults.snapshot_delay = 0.0
            await h.settle_all()
            assert h.ledger.book_gaps["binance"] == 1 and h.ledger.book_gaps["toy"] == 0
            h.check()
            await h.stream.aclose()


async def test_snapshot_that_hangs_past_the_http_timeout() -> None:
    async with (
        GatedBinance(["BTC-USDT"], seed=102) as binance,
        MockToy(["BTC-USD"], seed=103) as toy,
        httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as http,
    ):
        venues = [BinanceVenue(binance), ToyVenue(toy)]
        async with make_mux(venues, http=http) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            binance.gate.clear()
            binance.faults.skip_seq = 1
            await binance.publish(6)

            async def meanwhile() -> None:
                await binance.publish(1)
                await h.settle("toy")

            await repeat_until(lambda: h.ledger.error_kinds["binance", ErrorKind.SNAPSHOT] >= 2, meanwhile)
            errors = [e for e in h.ledger.recent if getattr(e, "kind", None) is ErrorKind.SNAPSHOT]
            assert errors and all("Timeout" in e.message for e in errors)  # type: ignore[attr-defined]
            binance.gate.set()
            await h.settle("binance")
            assert mux.book("binance", "BTC-USDT").valid
            h.check()
            await h.stream.aclose()
