"""Half-open connections: the peer stops talking but the socket stays up.

Three flavours:

* the server goes silent (``Faults.silent``: no data, no answers to the
  client's application pings) — detected by the venue's ``silence_timeout``
  (Kraken with fast heartbeat settings);
* the server keeps answering pings but sends no data — detected by
  ``stale_after``;
* the network stops forwarding anything, WebSocket pings included (a
  :class:`~wsmux.testing.ChaosProxy` paused) — detected by the WebSocket
  keep-alive; reconnects then fail on ``connect_timeout`` until the link
  comes back.

In each case the other venues must run on untouched.
"""

from __future__ import annotations

from chaoskit import BinanceVenue, FastKraken, Harness, KrakenVenue, ToyVenue, make_mux, repeat_until, ticking
from toyvenue import MockToy

from wsmux import Connected, Disconnected, Gap, GapReason, Resynced, Stale
from wsmux.testing import ChaosProxy, MockBinance, MockConnection, MockKraken


class FastKrakenVenue(KrakenVenue):
    adapter = FastKraken


async def test_silent_server_that_stops_answering_pings_is_declared_dead() -> None:
    async with (
        MockKraken(["BTC-USD"], seed=21) as kraken,
        MockBinance(["BTC-USDT"], seed=22) as binance,
        MockToy(["BTC-USD"], seed=23) as toy,
    ):
        venues = [FastKrakenVenue(kraken), BinanceVenue(binance), ToyVenue(toy)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            # without data, kraken's pongs alone keep the connection alive past silence_timeout
            pings = sum('"ping"' in str(m) for m in kraken.received)
            await h.poll(lambda: sum('"ping"' in str(m) for m in kraken.received) >= pings + 12)  # >= 0.6 s
            assert h.ledger.count(Stale, "kraken") == 0 and kraken.connections_total == 1

            kraken.faults.silent = True  # half-open: the socket stays, nothing comes back

            # the other venues keep working while kraken dies and reconnects into silence, 3 times
            async def others_run() -> None:
                await h.settle("binance")
                await h.settle("toy")

            await repeat_until(lambda: h.ledger.count(Stale, "kraken") >= 3, others_run)
            await h.until(lambda _: h.ledger.count(Disconnected, "kraken") >= 3)
            assert h.ledger.count(Disconnected, "binance") == h.ledger.count(Disconnected, "toy") == 0
            assert not mux.book("kraken", "BTC-USD").valid  # flagged while unverifiable
            dead = [e for e in h.ledger.recent if isinstance(e, Disconnected) and e.venue == "kraken"]
            assert dead and all("dead peer" in e.reason for e in dead)
            # the book was valid once: exactly one DISCONNECT gap, not one per failed attempt
            assert h.ledger.gap_reasons["kraken", GapReason.DISCONNECT.value] == 1

            kraken.faults.silent = False
            await h.settle("kraken")
            health = {c.venue: c.stats for c in mux.connections()}
            assert health["kraken"].silent == h.ledger.count(Stale, "kraken") >= 3
            assert health["binance"].silent == health["toy"].silent == 0
            h.check()
            await h.stream.aclose()


class DeafKraken(MockKraken):
    """Answers pings; while ``deaf``, ignores every other request (subscriptions vanish)."""

    deaf = False

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        if self.deaf and '"ping"' not in str(message):
            return
        await super().on_message(conn, message)


async def test_feed_that_answers_pings_but_sends_no_data_is_stale() -> None:
    """stale_after: kraken keeps answering pings; only its data stops. First the
    resubscribe brings the data back (the socket stays); then the venue ignores
    subscriptions too and the connection is replaced. Binance is kept busy by a
    ticker (stale_after is per multiplexer) and must not be touched."""
    async with DeafKraken(["ETH-USD"], seed=24) as kraken, MockBinance(["ETH-USDT"], seed=25) as binance:
        venues = [FastKrakenVenue(kraken), BinanceVenue(binance)]
        async with make_mux(venues, stale_after=0.5) as mux:
            h = Harness(mux, venues)
            async with ticking(venues[1], 0.02), ticking(venues[0], 0.02):
                await h.synced()
            await h.settle_all()
            conn = next(c for c in mux.connections() if c.venue == "kraken")
            async with ticking(venues[1], 0.02):
                # kraken's market stops moving; its pongs keep coming: stalled, resubscribed,
                # and the fresh snapshot is data again: no reconnect
                await h.until(lambda _: conn.stats.resubscribes >= 1 and h.ledger.count(Resynced, "kraken") >= 2)
                assert h.ledger.count(Stale, "kraken") >= 1
                assert h.ledger.count(Disconnected, "kraken") == 0 and kraken.connections_total == 1
                # now the venue ignores the resubscribe too: the stalled feed is reconnected
                kraken.deaf = True
                await h.until(lambda _: h.ledger.count(Disconnected, "kraken") >= 1, timeout=15)
                kraken.deaf = False
                await h.until(lambda _: h.ledger.count(Connected, "kraken") >= 2, timeout=15)
            await h.settle("binance")
            await h.settle("kraken")
            dead = [e for e in h.ledger.recent if isinstance(e, Disconnected) and e.venue == "kraken"]
            assert dead and "stalled feed" in dead[0].reason
            stats = {c.venue: c.stats for c in mux.connections()}
            assert stats["kraken"].stale >= 2 and stats["kraken"].silent == 0  # stale, never dead
            assert stats["binance"].stale == stats["binance"].silent == 0
            assert h.ledger.count(Disconnected, "binance") == 0
            assert h.ledger.count(Gap, "binance") == 0
            h.check()
            await h.stream.aclose()


async def test_network_black_hole_is_detected_and_survived() -> None:
    """A ChaosProxy in front of kraken stops forwarding (TCP stays up, nothing passes
    either way): the app pings go unanswered, the connection is declared dead,
    reconnects time out in the handshake until the link comes back. Binance runs on."""
    async with (
        MockKraken(["BTC-USD"], seed=26) as kraken,
        MockBinance(["BTC-USDT"], seed=27) as binance,
        ChaosProxy.to(kraken) as proxy,
    ):
        venues = [FastKrakenVenue(kraken), BinanceVenue(binance)]
        async with make_mux(venues, endpoints={"kraken": proxy.endpoint(kraken)}, connect_timeout=0.3) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            proxy.pause()
            conn = next(c for c in mux.connections() if c.venue == "kraken")

            # dead after 0.3 s without a pong; the close handshake cannot complete either
            await h.until(lambda _: h.ledger.count(Disconnected, "kraken") >= 1, timeout=5)
            await repeat_until(lambda: conn.stats.connect_failures >= 2, lambda: h.settle("binance"))
            assert not mux.book("kraken", "BTC-USD").valid
            assert h.ledger.count(Connected, "kraken") == 1  # no successful reconnect through the hole
            assert conn.stats.silent == 1
            proxy.resume()
            await h.settle("kraken")
            await h.settle("binance")
            assert h.ledger.count(Disconnected, "binance") == 0 and h.ledger.count(Gap, "binance") == 0
            assert h.ledger.gap_reasons["kraken", GapReason.DISCONNECT.value] == 1
            assert proxy.stats.links >= 3
            h.check()
            await h.stream.aclose()
