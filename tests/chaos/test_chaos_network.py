"""A bad network between the client and the venue (a ChaosProxy on 127.0.0.1).

Latency, a slow link, connections cut in the middle of a frame, bytes flipped
in flight, connections refused. What the library must do: stay exact under
latency and throttling (nothing lost, books equal), treat a cut or a broken
frame as a lost connection (``Disconnected``, ``Gap(DISCONNECT)``, reconnect
with backoff, resync), count refused connections and keep retrying, and keep
the venues that are not behind the proxy untouched.
"""

from __future__ import annotations

import pytest
from chaoskit import (
    BinanceVenue,
    FastKraken,
    Harness,
    KrakenVenue,
    Mangling,
    ToyVenue,
    Witness,
    lean,
    make_mux,
    repeat_until,
)
from toyvenue import MockToy

from wsmux import Connected, Disconnected, Error, Gap, GapReason
from wsmux.testing import ChaosProxy, MockBinance, MockKraken


class FastKrakenVenue(KrakenVenue):
    adapter = FastKraken


async def test_latency_on_two_venues_keeps_books_exact() -> None:
    async with (
        MockBinance(["BTC-USDT"], seed=121) as binance,
        MockKraken(["BTC-USD"], seed=122) as kraken,
        MockToy(["BTC-USD"], seed=123) as toy,
        ChaosProxy.to(binance, delay=0.05) as pb,
        ChaosProxy.to(kraken, delay=0.03) as pk,
    ):
        venues = [BinanceVenue(binance), KrakenVenue(kraken), ToyVenue(toy)]
        endpoints = {"binance": pb.endpoint(binance), "kraken": pk.endpoint(kraken)}
        async with make_mux(venues, endpoints=endpoints) as mux:
            h = Harness(mux, venues)
            await h.synced()  # the binance REST snapshot goes through the proxy too
            for _ in range(3):
                await h.settle_all()
            # a drop behind the latency heals the same way
            await binance.drop_connections()
            await h.until(lambda _: h.ledger.count(Connected, "binance") == 2)
            await h.settle_all()
            # binance: instruments + ws + REST snapshot (+ ws again); kraken: instruments + ws
            assert pb.stats.links >= 4 and pk.stats.links == 2
            assert pb.stats.bytes_down > 0 and pk.stats.bytes_down > 0
            assert h.ledger.book_gaps["kraken"] == h.ledger.book_gaps["toy"] == 0
            assert h.ledger.gap_reasons["binance", GapReason.DISCONNECT.value] == 1
            h.check()
            await h.stream.aclose()


async def test_throttled_link_under_a_flood_loses_nothing() -> None:
    async with (
        MockBinance(["BTC-USDT"], seed=124) as binance,
        MockToy(["BTC-USD"], seed=125) as toy,
        ChaosProxy.to(binance, rate=60_000.0) as proxy,
    ):
        lean(binance)
        venues = [BinanceVenue(binance), ToyVenue(toy)]
        async with make_mux(venues, endpoints={"binance": proxy.endpoint(binance)}) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await binance.publish(1500)  # ~45 KB (deflated) through a 60 KB/s link
            await h.settle("toy")  # the other venue is not behind the slow link
            await h.settle("binance")
            market = binance.markets["BTC-USDT"]
            assert h.ledger.last_trade["binance", "BTC-USDT"] == market.next_trade_id - 1
            assert h.ledger.trades["binance"] == market.next_trade_id - 1  # every trade, once
            assert h.ledger.book_gaps["binance"] == 0 and proxy.stats.bytes_down > 30_000
            h.check()
            await h.stream.aclose()


async def test_connections_cut_in_the_middle_of_a_frame() -> None:
    async with (
        MockKraken(["BTC-USD"], seed=126) as kraken,
        MockBinance(["BTC-USDT"], seed=127) as binance,
        ChaosProxy.to(kraken) as proxy,
    ):
        venues = [KrakenVenue(kraken), BinanceVenue(binance)]
        async with make_mux(venues, endpoints={"kraken": proxy.endpoint(kraken)}) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            for i, offset in enumerate((7, 150, 1001)):
                proxy.cut_after(offset)
                await repeat_until(lambda i=i: proxy.stats.cuts > i, lambda: kraken.publish(3))  # type: ignore[misc]
                await h.until(lambda _, i=i: h.ledger.count(Disconnected, "kraken") > i)
                await h.settle("kraken")
                await h.settle("binance")
            assert proxy.stats.cuts == 3 and kraken.connections_total == 4
            assert h.ledger.gap_reasons["kraken", GapReason.DISCONNECT.value] == 3
            assert h.ledger.count(Disconnected, "binance") == 0 and h.ledger.book_gaps["binance"] == 0
            h.check()
            await h.stream.aclose()


async def test_flipped_bytes_never_leave_a_wrong_valid_book() -> None:
    """One byte inverted in flight, at five offsets (compression stripped from the
    handshake, so the byte lands in frame text or a frame header). Depending on where
    it lands: a protocol or UTF-8 error closes the connection, the frame no longer
    parses (an ``Error``), or it parses with a changed value and the checksum catches
    it. In every case the book at the next barrier is valid and exact, or flagged.
    (With permessage-deflate one flipped byte can poison the inflate context: every
    later frame is junk — see the test below.)"""
    async with (
        MockKraken(["BTC-USD"], seed=128) as kraken,
        MockToy(["BTC-USD"], seed=129) as toy,
        ChaosProxy.to(kraken, strip_compression=True) as proxy,
    ):
        venues = [KrakenVenue(kraken), ToyVenue(toy)]
        async with make_mux(venues, endpoints={"kraken": proxy.endpoint(kraken)}) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            outcomes = []
            for n, offset in enumerate((40, 333, 1200, 2500, 4000)):
                mark = (h.ledger.count(Disconnected, "kraken"), h.ledger.count(Error, "kraken"))
                gaps = h.ledger.book_gaps["kraken"]
                proxy.corrupt_after(offset)
                await repeat_until(lambda n=n: proxy.stats.corrupted > n, lambda: kraken.publish(3))  # type: ignore[misc]
                await h.settle("kraken")  # a valid book at the barrier must equal the mock's
                await h.settle("toy")
                outcomes.append(
                    (
                        offset,
                        h.ledger.count(Disconnected, "kraken") - mark[0],
                        h.ledger.count(Error, "kraken") - mark[1],
                        h.ledger.book_gaps["kraken"] - gaps,
                    )
                )
            print("\nflipped byte at offset -> (disconnects, errors, book gaps):", outcomes)
            assert proxy.stats.corrupted == 5
            assert all(d + e + g >= 1 for _, d, e, g in outcomes)  # every flip was noticed
            assert h.ledger.count(Disconnected, "toy") == 0 and h.ledger.book_gaps["toy"] == 0
            h.check()
            await h.stream.aclose()


class JunkKraken(Mangling, MockKraken):
    pass


async def test_a_connection_of_only_unreadable_frames_does_not_keep_a_valid_book() -> None:
    async with JunkKraken(["BTC-USD"], seed=132) as kraken, MockToy(["BTC-USD"], seed=133) as toy:
        venues = [KrakenVenue(kraken), ToyVenue(toy)]
        async with make_mux(venues) as mux:  # defaults: no stale_after
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            kraken.mangle(
                lambda _: True,
                lambda f: b"\x00junk" + (f.encode() if isinstance(f, str) else bytes(f))[:20],
                count=10**9,
            )
            conn = next(c for c in mux.connections() if c.venue == "kraken")
            await repeat_until(lambda: conn.feed.stats.parse_errors >= 30, lambda: kraken.publish(5))
            await h.settle("toy")
            assert mux.book("kraken", "BTC-USD").depth() != KrakenVenue(kraken).truth("BTC-USD")  # it moved on
            assert kraken.connections_total > 1 or not mux.book("kraken", "BTC-USD").valid
            await h.stream.aclose()


async def test_refused_connections_are_retried_with_backoff() -> None:
    async with (
        MockBinance(["BTC-USDT"], seed=130) as binance,
        MockKraken(["BTC-USD"], seed=131) as kraken,
        ChaosProxy.to(binance) as proxy,
    ):
        lean(binance)
        venues = [BinanceVenue(binance), KrakenVenue(kraken)]
        async with make_mux(venues, endpoints={"binance": proxy.endpoint(binance)}) as mux:
            h = Harness(mux, venues)
            witness = Witness(mux, "kraken", ["BTC-USD"])
            await h.synced()
            await h.settle_all()
            proxy.refuse = True
            proxy.cut()
            conn = next(c for c in mux.connections() if c.venue == "binance")
            await repeat_until(lambda: conn.stats.connect_failures >= 5, lambda: h.settle("kraken"))
            assert not mux.book("binance", "BTC-USDT").valid
            assert proxy.stats.refused >= 5
            proxy.refuse = False
            await h.settle("binance")
            await h.settle("kraken")
            assert h.ledger.count(Disconnected, "binance") == 1  # failed attempts never opened
            assert h.ledger.count(Gap, "kraken") == 0 and witness.last["BTC-USD"] > 0
            h.check()
            await h.stream.aclose()


def test_the_proxy_only_touches_loopback() -> None:
    from wsmux.errors import ConfigError
    from wsmux.testing._chaos import _strip_extensions

    with pytest.raises(ConfigError):
        ChaosProxy(80, target_host="10.0.0.1")
    with pytest.raises(ConfigError):
        ChaosProxy(80, host="0.0.0.0")
    request = b"GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Extensions: permessage-deflate\r\nUpgrade: websocket\r\n\r\n"
    assert _strip_extensions(request) == b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
