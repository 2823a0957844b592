"""The source's rules on decoded messages, without an engine: duplicates,
engine-side holes, late redeliveries, a new epoch, malformed messages, and the
consumer-side book's validity."""

from __future__ import annotations

from typing import Any

from wsmux import book
from wsmux.model import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Error,
    ErrorKind,
    Event,
    Gap,
    GapReason,
    Resynced,
    Side,
    Trade,
)
from wsmux.sinks import EventId, Source, message_encoder

KEY = "wsmux:binance:book:BTC-USDT"
ENCODE = message_encoder("json")


class NoReader:
    name = "none"

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def read(self, count: int) -> list[tuple[str, bytes, Any]]:
        return []

    async def ack(self, handles: Any) -> None: ...
    async def heartbeat(self, worker: str) -> dict[str, Any] | None:
        return None


def snapshot(seq: int) -> BookSnapshot:
    return BookSnapshot("binance", "BTC-USDT", ((100.0, 1.0),), ((101.0, 1.0),), None, 1, seq)


def update(seq: int, price: float = 99.0) -> BookUpdate:
    return BookUpdate("binance", "BTC-USDT", ((price, 2.0),), (), None, 1, seq)


def resynced(seq: int) -> Resynced:
    return Resynced("binance", "BTC-USDT", Channel.BOOK, seq, 1)


def feed(source: Source, *items: tuple[Event, int, int, int]) -> list[Event]:
    """Deliver ``(event, epoch, seq, prev)`` items as one message each; return what the stream got."""
    for event, epoch, seq, prev in items:
        source._deliver(KEY, ENCODE([(event, EventId("binance", epoch, seq), prev)]))
    out = list(source.stream._buf)
    source.stream._buf.clear()
    return out


def make() -> Source:
    return Source(NoReader(), tuple(book("binance", "BTC-USDT")))


def test_a_synced_book_follows_its_updates_and_duplicates_are_dropped() -> None:
    source = make()
    got = feed(source, (snapshot(10), 1, 1, 0), (resynced(10), 1, 2, 1), (update(11), 1, 3, 2), (update(11), 1, 3, 2))
    assert [type(e) for e in got] == [BookSnapshot, Resynced, BookUpdate]
    assert source.stats.duplicates == 1
    view = source.book("binance", "BTC-USDT")
    assert view.valid and view.depth() == (((100.0, 1.0), (99.0, 2.0)), ((101.0, 1.0),))


def test_an_engine_side_hole_is_a_gap_and_the_snapshot_heals_it() -> None:
    source = make()
    feed(source, (snapshot(10), 1, 1, 0), (resynced(10), 1, 2, 1))
    got = feed(source, (update(12), 1, 5, 4))  # seq 3 and 4 of this key never arrived
    assert isinstance(got[0], Gap) and got[0].reason is GapReason.SEQUENCE
    assert (got[0].expected, got[0].received) == (2, 4)
    assert not source.book("binance", "BTC-USDT").valid
    feed(source, (update(13), 1, 6, 5))  # no base: not applied
    feed(source, (snapshot(13), 1, 7, 6), (resynced(13), 1, 8, 7))
    assert source.book("binance", "BTC-USDT").valid and source.stats.holes == 1


def test_a_late_redelivered_book_update_invalidates_and_a_late_trade_is_delivered() -> None:
    source = make()
    # a fresh consumer whose first message is newer than one still pending redelivery
    feed(source, (snapshot(12), 1, 4, 3), (resynced(12), 1, 5, 4))
    assert source.book("binance", "BTC-USDT").valid
    got = feed(source, (update(11, price=98.0), 1, 3, 2))  # redelivered behind seq 5
    assert [type(e) for e in got] == [Gap, BookUpdate]
    assert not source.book("binance", "BTC-USDT").valid
    assert (98.0, 2.0) not in source.book("binance", "BTC-USDT").depth()[0]  # never applied
    trade = Trade("binance", "BTC-USDT", 1.0, 1.0, Side.BUY, "1", None, 1)
    assert feed(source, (trade, 1, 2, 0)) == [trade]  # never read: delivered, late
    assert feed(source, (trade, 1, 2, 0)) == [] and source.stats.duplicates == 1
    assert source.stats.late == 2


def test_a_new_epoch_on_a_valid_book_is_a_disconnect_gap() -> None:
    source = make()
    feed(source, (snapshot(10), 1, 1, 0), (resynced(10), 1, 2, 1))
    got = feed(source, (update(11), 2, 1, 0))
    assert isinstance(got[0], Gap) and got[0].reason is GapReason.DISCONNECT
    assert not source.book("binance", "BTC-USDT").valid


def test_a_malformed_message_is_an_error_counted() -> None:
    source = make()
    source._deliver(KEY, b'{"not": "an envelope"}')
    (err,) = list(source.stream._buf)
    assert isinstance(err, Error) and err.kind is ErrorKind.MALFORMED and KEY in err.message
    assert source.stats.malformed == 1
