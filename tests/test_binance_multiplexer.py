"""Binance through the whole stack: Multiplexer → Connection → Feed → adapter,
against the mock servers on 127.0.0.1."""

from __future__ import annotations

from typing import ClassVar

from wsmux import BookUpdate, Gap, Resynced, book, funding, quotes, trades
from wsmux._retry import Backoff
from wsmux.adapter import Limits
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.model import Channel, Connected, Disconnected, Error, Event, GapReason, Trade
from wsmux.multiplexer import Multiplexer
from wsmux.testing import MockBinance, MockBinanceFutures, collect_until

FAST = Backoff(initial=0.02, factor=2.0, cap=0.1)


def is_update_at(symbol: str, seq: int) -> object:
    return lambda e: isinstance(e, BookUpdate) and e.symbol == symbol and e.seq == seq


async def test_book_and_trades_through_the_multiplexer() -> None:
    async with MockBinance(["BTC-USDT"]) as mock, Multiplexer(endpoints={"binance": mock.endpoint}) as mux:
        stream = mux.subscribe(*book("binance", "BTC-USDT"), *trades("binance", "BTC-USDT"))
        seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
        assert isinstance(seen[0], Connected)
        await mock.publish(300)
        seen = await collect_until(stream, is_update_at("BTC-USDT", mock.update_id("BTC-USDT")))  # type: ignore[arg-type]
        view = mux.book("binance", "BTC-USDT")
        assert view.valid and view.seq == mock.update_id("BTC-USDT")
        assert view.depth() == mock.markets["BTC-USDT"].depth()
        ids = [int(e.trade_id) for e in seen if isinstance(e, Trade)]  # type: ignore[arg-type]
        assert ids == list(range(1, mock.markets["BTC-USDT"].next_trade_id))
        assert not any(isinstance(e, Gap | Error) for e in seen)
        await stream.aclose()


async def test_gap_is_reported_and_healed() -> None:
    async with MockBinance(["BTC-USDT", "ETH-USDT"]) as mock, Multiplexer(endpoints={"binance": mock.endpoint}) as mux:
        stream = mux.subscribe(*book("binance", "BTC-USDT", "ETH-USDT"))
        synced: set[str] = set()
        await collect_until(
            stream, lambda e: isinstance(e, Resynced) and synced.add(e.symbol) is None and len(synced) == 2
        )
        await mock.publish(20)
        await collect_until(stream, is_update_at("BTC-USDT", mock.update_id("BTC-USDT")))  # type: ignore[arg-type]
        mock.faults.skip_seq = 1
        await mock.publish(50, ["BTC-USDT"])
        seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
        gaps = [e for e in seen if isinstance(e, Gap)]
        assert [(g.symbol, g.reason) for g in gaps] == [("BTC-USDT", GapReason.SEQUENCE)]
        await mock.publish(50)
        for symbol in ("BTC-USDT", "ETH-USDT"):
            await collect_until(stream, is_update_at(symbol, mock.update_id(symbol)))  # type: ignore[arg-type]
            assert mux.book("binance", symbol).depth() == mock.markets[symbol].depth()
        await stream.aclose()


async def test_reconnect_resyncs() -> None:
    async with (
        MockBinance(["BTC-USDT"]) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, backoff=FAST) as mux,
    ):
        stream = mux.subscribe(*book("binance", "BTC-USDT"), *quotes("binance", "BTC-USDT"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.drop_connections()
        seen = await collect_until(stream, lambda e: isinstance(e, Resynced))
        kinds = [type(e) for e in seen]
        assert Disconnected in kinds and Connected in kinds
        gap = next(e for e in seen if isinstance(e, Gap))
        assert gap.reason is GapReason.DISCONNECT
        await mock.publish(100)
        await collect_until(stream, is_update_at("BTC-USDT", mock.update_id("BTC-USDT")))  # type: ignore[arg-type]
        assert mux.book("binance", "BTC-USDT").depth() == mock.markets["BTC-USDT"].depth()
        assert mock.connections_total == 2
        await stream.aclose()


class _OnePerMessage(BinanceSpotAdapter):
    """Spot with one stream per SUBSCRIBE and nothing in the URL: many messages."""

    limits: ClassVar[Limits] = Limits(
        streams_per_connection=1024,
        topics_per_message=1,
        messages_per_second=BinanceSpotAdapter.limits.messages_per_second,
    )

    def __init__(self, *, url: str | None = None, rest_url: str | None = None) -> None:
        super().__init__(url=url, rest_url=rest_url, url_stream_limit=0)


async def test_subscribe_pacing_stays_under_the_venue_rate() -> None:
    symbols = [f"C{i}-USDT" for i in range(6)]
    async with (
        MockBinance(symbols) as mock,
        Multiplexer(endpoints={"binance": mock.endpoint}, adapters={"binance": _OnePerMessage}) as mux,
    ):
        stream = mux.subscribe(*book("binance", *symbols))
        synced: set[str] = set()

        def all_synced(e: Event) -> bool:
            if isinstance(e, Resynced):
                synced.add(e.symbol)
            return len(synced) == len(symbols)

        seen = await collect_until(stream, all_synced)
        # six SUBSCRIBE messages, none closed by the mock's 5-per-second rule
        assert len(mock.received) == 6
        assert not any(isinstance(e, Disconnected | Error) for e in seen)
        assert mock.connections_total == 1
        # (no stream.aclose(): it would send six paced UNSUBSCRIBEs; closing the mux does not)


async def test_usdm_single_route_through_the_multiplexer() -> None:
    async with (
        MockBinanceFutures(["BTC-USDT-PERP"]) as mock,
        Multiplexer(endpoints={"binance-usdm": mock.endpoint}) as mux,
    ):
        stream = mux.subscribe(*book("binance-usdm", "BTC-USDT-PERP"), *quotes("binance-usdm", "BTC-USDT-PERP"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(200)
        await collect_until(stream, is_update_at("BTC-USDT-PERP", mock.update_id("BTC-USDT-PERP")))  # type: ignore[arg-type]
        assert mux.book("binance-usdm", "BTC-USDT-PERP").depth() == mock.markets["BTC-USDT-PERP"].depth()
        assert mock.misrouted == []
        assert [c.url.split("?")[0] for c in mux.connections()] == [f"{mock.ws_url}/public/stream"]
        await stream.aclose()


async def test_usdm_mixed_routes_through_the_multiplexer() -> None:
    async with (
        MockBinanceFutures(["BTC-USDT-PERP"], funding_every=2) as mock,
        Multiplexer(endpoints={"binance-usdm": mock.endpoint}) as mux,
    ):
        stream = mux.subscribe(*book("binance-usdm", "BTC-USDT-PERP"), *funding("binance-usdm", "BTC-USDT-PERP"))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        await mock.publish(20)
        seen = await collect_until(stream, lambda e: type(e).__name__ == "Funding")
        assert not any(isinstance(e, Error) for e in seen)
        assert sorted(c.url.split("?")[0] for c in mux.connections()) == [
            f"{mock.ws_url}/market/stream",
            f"{mock.ws_url}/public/stream",
        ]
        assert {s.channel for s in stream.subscriptions} == {Channel.BOOK, Channel.FUNDING}
        await stream.aclose()
