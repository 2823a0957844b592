"""Broken frames: garbage JSON, truncated and corrupted frames, invalid compressed data.

What the library must do: a frame it cannot read becomes an ``Error`` event
(kind ``MALFORMED``) and a counter, never a crash or a reconnect; when the lost
frame carried a book update, the next update (sequence) or checksum reveals
it, the book is flagged with a ``Gap`` and rebuilt; the other venues never
notice.
"""

from __future__ import annotations

import gzip
import re

from chaoskit import BinanceVenue, Harness, KrakenVenue, Mangling, ToyVenue, make_mux, repeat_until, truncate
from toyvenue import MockToy, MockToyGzip, ToyGzipAdapter

from wsmux import Error, ErrorKind, Gap, GapReason
from wsmux.testing import MockBinance, MockKraken


class MangledToy(Mangling, MockToy):
    pass


class MangledBinance(Mangling, MockBinance):
    pass


class MangledKraken(Mangling, MockKraken):
    pass


class MangledToyGzip(Mangling, MockToyGzip):
    pass


class GzipVenue(ToyVenue):
    adapter = ToyGzipAdapter

    def __init__(self, mock: MockToyGzip) -> None:
        super().__init__(mock, name="toyz")


def is_toy_update(frame: str | bytes) -> bool:
    return '"t":"book"' in str(frame)


def is_binance_diff(frame: str | bytes) -> bool:
    return "@depth" in str(frame)


def is_kraken_update(frame: str | bytes) -> bool:
    return '"channel":"book","type":"update"' in str(frame)


def corrupt_qty(frame: str | bytes) -> str | bytes:
    """Valid JSON with one size changed (what a flipped bit in a digit gives)."""
    text = frame.decode() if isinstance(frame, bytes) else frame
    return re.sub(r'"qty":([0-9.]+)', lambda m: f'"qty":{float(m.group(1)) + 0.1234:.8f}', text, count=1)


async def test_garbage_json_everywhere_is_counted_and_harmless() -> None:
    async with (
        MockToy(["BTC-USD"], seed=31) as toy,
        MockBinance(["BTC-USDT"], seed=32) as binance,
        MockKraken(["BTC-USD"], seed=33) as kraken,
    ):
        venues = [ToyVenue(toy), BinanceVenue(binance), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            for v in venues:
                v.mock.faults.garbage = 5  # under the circuit breaker's threshold (20 in 10 s)
            await h.settle_all()
            for v in venues:
                assert v.mock.faults.garbage == 0  # all sent
                await h.settle(v.name)
                assert h.ledger.error_kinds[v.name, ErrorKind.MALFORMED] == 5
                assert h.ledger.book_gaps[v.name] == 0  # garbage beside the data loses nothing
                assert mux.book(v.name, v.symbols[0]).valid
            h.check()
            await h.stream.aclose()


async def test_truncated_and_odd_frames_beside_the_data() -> None:
    """Truncated copies of real frames, empty, binary and non-UTF-8 frames, JSON of the
    wrong shape, sent through MockConnection.send between real ones."""
    async with MockToy(["BTC-USD"], seed=34) as toy, MockKraken(["BTC-USD"], seed=35) as kraken:
        venues = [ToyVenue(toy), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            real = {
                "toy": '{"t":"trade","s":"BTC-USD","id":99,"p":"1.00","q":"2.00000","side":"buy"}',
                "kraken": '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":1.0}]}',
            }
            sent = {"toy": 0, "kraken": 0}
            for v in venues:
                conn = next(iter(v.mock.connections.values()))
                frame = real[v.name]
                odd: list[str | bytes] = [frame[:n] for n in (1, 5, len(frame) // 2, len(frame) - 1)]
                odd += [b"", b"\xff\xfe\xfd", "[]", "null", "12345", '{"channel":123}', '{"t":"book"}']
                for frame_ in odd:
                    await conn.send(frame_)
                sent[v.name] = len(odd)
            await h.settle_all()
            for v in venues:
                errors = (
                    h.ledger.error_kinds[v.name, ErrorKind.MALFORMED]
                    + h.ledger.error_kinds[v.name, ErrorKind.VENUE_ERROR]
                )
                # every odd frame is reported, none crashes or disconnects anything
                assert errors == sent[v.name], (v.name, errors, sent[v.name])
                assert h.ledger.book_gaps[v.name] == 0
                assert v.mock.connections_total == 1
            h.check()
            await h.stream.aclose()


async def test_truncated_book_updates_are_gaps_that_heal() -> None:
    """The book update itself arrives truncated (so it is lost): toy and binance see
    the sequence jump, kraken sees the checksum; each resyncs its own way."""
    async with (
        MangledToy(["BTC-USD"], seed=36) as toy,
        MangledBinance(["BTC-USDT"], seed=37) as binance,
        MangledKraken(["BTC-USD"], seed=38) as kraken,
    ):
        venues = [ToyVenue(toy), BinanceVenue(binance), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            toy.mangle(is_toy_update, truncate, count=2)
            binance.mangle(is_binance_diff, truncate, count=2)
            kraken.mangle(is_kraken_update, truncate, count=2)
            await h.settle_all()
            await h.settle_all()
            for v, reason in ((toy, GapReason.SEQUENCE), (binance, GapReason.SEQUENCE), (kraken, GapReason.CHECKSUM)):
                assert len(v.mangled) == 2
                assert h.ledger.error_kinds[v.venue, ErrorKind.MALFORMED] == 2
                assert 1 <= h.ledger.gap_reasons[v.venue, reason.value] <= 2
                assert mux.book(v.venue, v.symbols[0]).valid
            h.check()
            await h.stream.aclose()


async def test_corrupted_value_is_caught_by_the_checksum() -> None:
    """Valid JSON, one size changed in flight: only a checksum can tell (Kraken has one;
    venues without one cannot detect this, see the report)."""
    async with MangledKraken(["BTC-USD"], seed=39) as kraken, MockToy(["BTC-USD"], seed=40) as toy:
        venues = [KrakenVenue(kraken), ToyVenue(toy)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            for _ in range(3):
                kraken.mangle(lambda f: is_kraken_update(f) and '"qty":' in str(f), corrupt_qty)
                await h.settle("kraken")
                await h.settle("toy")
            assert len(kraken.mangled) == 3
            assert h.ledger.gap_reasons["kraken", GapReason.CHECKSUM.value] == 3
            assert h.ledger.error_kinds["kraken", ErrorKind.MALFORMED] == 0  # it parsed fine
            gaps = [e for e in h.ledger.recent if isinstance(e, Gap) and e.venue == "kraken"]
            assert all("checksum" in g.detail for g in gaps)
            assert h.ledger.book_gaps["toy"] == 0
            h.check()
            await h.stream.aclose()


async def test_invalid_compressed_data() -> None:
    """A gzip venue (like HTX) beside a plain one: bytes that are not gzip, a gzip
    stream cut short, gzip of garbage JSON; and a real update replaced by its
    truncated compressed bytes (lost: a gap, then a resync)."""
    async with MangledToyGzip(["BTC-USD"], seed=41) as toyz, MockKraken(["ETH-USD"], seed=42) as kraken:
        venues = [GzipVenue(toyz), KrakenVenue(kraken)]
        async with make_mux(venues) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            conn = next(iter(toyz.connections.values()))
            good = gzip.compress(b'{"t":"ack"}')
            bad: list[bytes] = [
                b"not gzip at all",
                b"\x1f\x8b\x08\x00garbage",
                good[: len(good) - 6],  # cut short (no CRC/size trailer)
                good[:10],
                gzip.compress(b'{"t": nope'),  # decompresses, then fails to parse
            ]
            for frame in bad:
                await conn.send(frame)
            await h.settle_all()
            c = next(c for c in mux.connections() if c.venue == "toyz")
            assert c.stats.decompress_errors == 4
            assert h.ledger.error_kinds["toyz", ErrorKind.MALFORMED] == 5
            assert h.ledger.book_gaps["toyz"] == 0 and mux.book("toyz", "BTC-USD").valid
            # a real update replaced by its truncated gzip: lost, so a sequence gap, then healed
            toyz.mangle(lambda f: is_toy_update(gzip.decompress(f)) if isinstance(f, bytes) else False, truncate)
            await h.settle("toyz")
            await h.settle("toyz")
            assert c.stats.decompress_errors == 5
            assert h.ledger.gap_reasons["toyz", GapReason.SEQUENCE.value] == 1
            errs = [e for e in h.ledger.recent if isinstance(e, Error) and e.venue == "toyz"]
            assert errs and "decompress" in errs[-1].message
            assert h.ledger.book_gaps["kraken"] == 0 and h.ledger.count(Error, "kraken") == 0
            h.check()
            await h.stream.aclose()


async def test_garbage_flood_trips_the_venue_breaker_only() -> None:
    """25 garbage frames in a burst: the kraken circuit breaker opens (its market
    events are withheld, visibly), binance runs on; after the cooldown a clean probe
    closes it and the kraken book is exact again."""
    breaker = {"threshold": 10, "window": 10.0, "cooldown": 0.2, "probe_events": 5, "probe_seconds": 0.2}
    async with MockKraken(["BTC-USD"], seed=43) as kraken, MockBinance(["BTC-USDT"], seed=44) as binance:
        venues = [KrakenVenue(kraken), BinanceVenue(binance)]
        async with make_mux(venues, breaker=breaker) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            kraken.faults.garbage = 25
            await kraken.publish(30)

            def circuit(venue: str, text: str) -> int:
                return sum(
                    1
                    for e in h.ledger.circuit
                    if e.venue == venue and text in e.message  # type: ignore[attr-defined]
                )

            await h.until(lambda _: circuit("kraken", "closed -> open") == 1)

            async def meanwhile() -> None:
                await kraken.publish(2)
                await h.settle("binance")

            await repeat_until(lambda: circuit("kraken", "-> closed") >= 1, meanwhile)
            await h.settle("kraken")
            await h.settle("binance")
            health = mux.health()
            assert health["breakers"]["kraken"]["state"] == "closed"
            assert health["breakers"]["kraken"]["trips"] == 1 and health["breakers"]["kraken"]["denied"] > 0
            assert health["counters"]["breaker_withheld"] == health["breakers"]["kraken"]["denied"]
            assert "binance" not in health["breakers"] or health["breakers"]["binance"]["trips"] == 0
            assert h.ledger.error_kinds["kraken", ErrorKind.MALFORMED] == 25
            assert h.ledger.book_gaps["binance"] == 0 and h.ledger.count(Error, "binance") == 0
            h.check()
            await h.stream.aclose()


async def test_a_resync_while_the_breaker_is_open_still_delivers_its_snapshot() -> None:
    breaker = {"threshold": 10, "window": 10.0, "cooldown": 0.3, "probe_events": 5, "probe_seconds": 0.2}
    async with MockKraken(["BTC-USD"], seed=45) as kraken, MockBinance(["BTC-USDT"], seed=46) as binance:
        venues = [KrakenVenue(kraken), BinanceVenue(binance)]
        async with make_mux(venues, breaker=breaker) as mux:
            h = Harness(mux, venues)
            await h.synced()
            await h.settle_all()
            kraken.faults.garbage = 12
            await repeat_until(lambda: kraken.faults.garbage == 0, lambda: kraken.publish(1))
            await h.until(lambda _: any("closed -> open" in e.message for e in h.ledger.circuit))
            kraken.faults.bad_checksum = 1  # the book breaks and is rebuilt while the breaker is open

            async def meanwhile() -> None:
                await kraken.publish(2)
                await h.settle("binance")

            await repeat_until(lambda: any("-> closed" in e.message for e in h.ledger.circuit), meanwhile)
            await h.settle("kraken")
            assert h.ledger.gap_reasons["kraken", GapReason.CHECKSUM.value] == 1
            assert not h.ledger.violations, h.ledger.violations[:3]
            await h.stream.aclose()
