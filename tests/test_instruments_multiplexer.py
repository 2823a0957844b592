"""The multiplexer and instrument lists: symbols validated at subscribe time
(with did-you-mean), lists cached with a TTL, an unavailable list that never
blocks data, and contract sizes that make sizes base units end to end.

Every test runs against a mock exchange on 127.0.0.1 serving its venue's
instruments endpoint; waits are on specific events with bounded timeouts.
"""

from __future__ import annotations

import logging

import pytest

from wsmux import (
    BookSnapshot,
    BookUpdate,
    Error,
    ErrorKind,
    Gap,
    Multiplexer,
    Resynced,
    Trade,
    UnknownSymbol,
    book,
    trades,
)
from wsmux._instruments import InstrumentCache, VenueInstruments, close_symbols
from wsmux._retry import Backoff
from wsmux.clock import ManualClock
from wsmux.model import Instrument
from wsmux.testing import MockBinance, MockOkx, collect_until

FAST = Backoff(initial=0.01, cap=0.05)


# --- the pure pieces ----------------------------------------------------------------------


def test_close_symbols_and_the_error() -> None:
    listed = VenueInstruments(
        "binance", [Instrument("binance", s, s.replace("-", ""), "spot") for s in ("BTC-USDT", "ETH-USDT")], 0.0
    )
    assert close_symbols("BTC-UDST", listed.by_symbol) == ["BTC-USDT"]
    assert close_symbols("btc-usdt", listed.by_symbol) == ["BTC-USDT"]
    with pytest.raises(UnknownSymbol, match=r"did you mean 'BTC-USDT'\?") as info:
        listed.check("BTC-USTD")
    assert info.value.suggestions == ("BTC-USDT",) and info.value.venue == "binance"
    with pytest.raises(UnknownSymbol) as far:
        listed.check("DOGE-JPY")
    assert far.value.suggestions == () and "did you mean" not in str(far.value)
    assert listed.check("ETH-USDT").native == "ETHUSDT"


def test_cache_ttl() -> None:
    cache = InstrumentCache(ttl=60.0)
    assert cache.get("okx") is None and not cache.fresh("okx", 0.0)
    cache.put("okx", [Instrument("okx", "BTC-USDT", "BTC-USDT", "spot")], 100.0)
    assert cache.fresh("okx", 159.9) and not cache.fresh("okx", 160.0)
    assert cache.get("okx") is not None  # a stale list still serves until replaced


# --- subscribe time -------------------------------------------------------------------------


async def test_asubscribe_misspelt_symbol_raises_with_did_you_mean_and_subscribes_nothing() -> None:
    async with MockBinance(["BTC-USDT", "ETH-USDT"]) as mock:
        async with Multiplexer(endpoints={"binance": mock.endpoint}, backoff=FAST) as mux:
            with pytest.raises(
                UnknownSymbol, match=r"binance does not list 'BTC-USTD': did you mean 'BTC-USDT'"
            ) as info:
                await mux.asubscribe(book("binance", "BTC-USTD", "ETH-USDT"))
            assert info.value.suggestions == ("BTC-USDT",)
            assert mux.connections() == [] and mux.health().streams == []
            assert mux.counters["instruments_failures"] == 0
            # the list is cached: plain subscribe() now refuses at once, too
            with pytest.raises(UnknownSymbol, match="did you mean"):
                mux.subscribe(trades("binance", "ETH-USTD"))
            stream = await mux.asubscribe(trades("binance", "ETH-USDT"))
            assert mock.instruments_served == 1  # fetched once for all of the above
            await stream.aclose()


async def test_subscribe_before_the_list_is_loaded_reports_the_unknown_symbol_as_an_error() -> None:
    async with MockBinance(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"binance": mock.endpoint}, backoff=FAST) as mux:
            stream = mux.subscribe(book("binance", "BTC-USDT", "BTC-USTD"))  # sync: no list yet
            seen = await collect_until(stream, lambda e: isinstance(e, Error) and e.kind is ErrorKind.UNKNOWN_SYMBOL)
            error = seen[-1]
            assert isinstance(error, Error) and error.symbol == "BTC-USTD" and error.venue == "binance"
            assert isinstance(error.exception, UnknownSymbol) and error.exception.suggestions == ("BTC-USDT",)
            assert "did you mean 'BTC-USDT'" in error.message
            await collect_until(stream, lambda e: isinstance(e, Resynced) and e.symbol == "BTC-USDT")
            assert mux.counters["unknown_symbols"] == 1
            assert not any("btcustd" in str(m).lower() for m in mock.received)  # never sent to the venue
            assert [key for key in mux.books] == [("binance", "BTC-USDT")]
            await stream.aclose()


async def test_list_endpoint_down_data_still_flows_warned_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wsmux")
    async with MockBinance(["BTC-USDT"]) as mock:
        mock.faults.instruments_status = 503
        async with Multiplexer(endpoints={"binance": mock.endpoint}, backoff=FAST) as mux:
            stream = await mux.asubscribe(book("binance", "BTC-USDT"), trades("binance", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(20)
            await collect_until(stream, lambda e: isinstance(e, Trade))
            assert mux.book("binance", "BTC-USDT").valid
            # an unknown symbol goes ahead unvalidated (the venue would refuse it)
            other = await mux.asubscribe(trades("binance", "NOPE-USDT"))
            assert mux.counters["instruments_failures"] >= 1
            warnings = [r for r in caplog.records if "instrument list unavailable" in r.getMessage()]
            assert len(warnings) == 1 and "HTTP 503" in warnings[0].getMessage()
            assert mock.instruments_served == 0
            await other.aclose()
            await stream.aclose()


async def test_validate_symbols_false_sends_no_instruments_request() -> None:
    async with MockBinance(["BTC-USDT"]) as mock:
        async with Multiplexer(endpoints={"binance": mock.endpoint}, backoff=FAST, validate_symbols=False) as mux:
            stream = await mux.asubscribe(book("binance", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            assert mock.instruments_served == 0 and mux.instrument("binance", "BTC-USDT") is None
            await stream.aclose()


async def test_load_instruments_caches_for_the_ttl() -> None:
    clock = ManualClock()
    async with MockOkx(["BTC-USDT", "BTC-USDT-PERP"]) as mock:
        async with Multiplexer(endpoints={"okx": mock.endpoint}, clock=clock, instruments_ttl=600) as mux:
            first = await mux.load_instruments("okx")
            assert sorted(first["okx"]) == ["BTC-USDT", "BTC-USDT-PERP"]
            assert mock.instruments_served == 3  # SPOT, SWAP, FUTURES
            await mux.load_instruments("okx")
            assert mock.instruments_served == 3
            clock.advance(601)
            await mux.load_instruments("okx")
            assert mock.instruments_served == 6
            inst = mux.instrument("okx", "BTC-USDT-PERP")
            assert inst is not None and inst.contract_size == 1.0 and inst.tick_size == float(mock.tick)


# --- contract sizes end to end ----------------------------------------------------------------


async def test_okx_swap_book_in_base_units_with_checksums_verified() -> None:
    """MockOkx sizes are contracts of 0.01 BTC: the multiplexer's book, built
    from instruments it fetched itself, equals the mock's book times 0.01, and
    every checksum (computed by the mock on its contract text) still matches."""
    async with MockOkx(["BTC-USDT-PERP"], contract_value="0.01") as mock:
        async with Multiplexer(endpoints={"okx": mock.endpoint}, backoff=FAST) as mux:
            stream = await mux.asubscribe(book("okx", "BTC-USDT-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            await mock.publish(200)
            seq = next(iter(mock.connections.values())).state["seq"]["BTC-USDT-PERP"]
            seen = await collect_until(stream, lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.seq == seq)
            assert not any(isinstance(e, Gap | Error) for e in seen)
            view = mux.book("okx", "BTC-USDT-PERP")
            bids, asks = mock.markets["BTC-USDT-PERP"].depth()
            assert view.valid and view.depth() == (
                tuple((p, s / 100) for p, s in bids),
                tuple((p, s / 100) for p, s in asks),
            )
            feed = mux.connections()[0].feed
            assert feed.syncs["BTC-USDT-PERP"].stats.checksums_ok > 200
            await stream.aclose()


# --- the sync facade -------------------------------------------------------------------------


def test_sync_subscribe_raises_unknown_symbol_with_did_you_mean() -> None:
    from wsmux.sync import Multiplexer as SyncMultiplexer
    from wsmux.testing import run_mock_in_thread

    with run_mock_in_thread(MockBinance(["BTC-USDT", "ETH-USDT"])) as mt:
        with SyncMultiplexer(endpoints={"binance": mt.endpoint}, backoff=FAST) as mux:
            with pytest.raises(UnknownSymbol, match="did you mean 'ETH-USDT'"):
                mux.subscribe(trades("binance", "ETH-USTD"))
            stream = mux.subscribe(trades("binance", "ETH-USDT"))
            stream.close()
            inst = mux.instrument("binance", "ETH-USDT")
            assert inst is not None and inst.tick_size == 0.01 and inst.native == "ETHUSDT"
            assert sorted(mux.load_instruments("binance")["binance"]) == ["BTC-USDT", "ETH-USDT"]


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_watch_misspelt_symbol_exits_with_did_you_mean() -> None:
    import json
    import os
    import subprocess
    import sys

    from wsmux.testing import run_mock_in_thread

    with run_mock_in_thread(MockBinance(["BTC-USDT", "ETH-USDT"])) as mt:
        ep = mt.endpoint
        env = dict(os.environ, WSMUX_ENDPOINTS=json.dumps({"binance": {"url": ep.url, "rest_url": ep.rest_url}}))
        done = subprocess.run(
            [sys.executable, "-m", "wsmux", "watch", "binance:BTC-USTD", "--duration", "5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert "binance does not list 'BTC-USTD': did you mean 'BTC-USDT'?" in done.stderr
    assert "Traceback" not in done.stderr


# --- record and replay -------------------------------------------------------------------------


async def test_replay_of_a_recording_converts_sizes_as_the_live_run_did(tmp_path: object) -> None:
    """The instruments answers the connections used are in the message log, so
    a replay reports the same base-unit sizes as the live multiplexer."""
    from pathlib import Path

    from wsmux.log import Replay

    directory = Path(str(tmp_path))
    async with MockOkx(["BTC-USDT-PERP"], contract_value="0.01") as mock:
        async with Multiplexer(endpoints={"okx": mock.endpoint}, backoff=FAST, record=str(directory)) as mux:
            stream = await mux.asubscribe(trades("okx", "BTC-USDT-PERP"), book("okx", "BTC-USDT-PERP"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))  # subscribed: trades flow now
            await mock.publish(100)
            n = mock.markets["BTC-USDT-PERP"].next_trade_id - 1
            live = [e for e in await collect_until(stream, lambda e: isinstance(e, Trade) and e.trade_id == str(n))]
            await stream.aclose()
    live_trades = [e for e in live if isinstance(e, Trade)]
    replayed = [e for e in Replay(sorted(directory.glob("*.wslog"))).events() if isinstance(e, Trade)]
    assert live_trades and replayed[: len(live_trades)] == live_trades
    import json

    from wsmux.log import Direction, read_log

    frames = [r.data for r in read_log(sorted(directory.glob("*.wslog"))) if r.kind is Direction.IN]
    messages = [json.loads(f) for f in frames if f not in ("pong", b"pong")]
    first = next(m for m in messages if m.get("arg", {}).get("channel") == "trades" and "data" in m)
    contracts = float(first["data"][0]["sz"])
    assert live_trades[0].size == contracts / 100  # really converted: contracts of 0.01 BTC


async def test_a_hanging_instruments_endpoint_delays_data_at_most_instruments_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    import httpx

    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()  # the instruments endpoint never answers
        return httpx.Response(500)

    caplog.set_level(logging.WARNING, logger="wsmux")
    async with MockOkx(["BTC-USDT"]) as mock, httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http:
        async with Multiplexer(
            endpoints={"okx": mock.endpoint}, backoff=FAST, http=http, instruments_timeout=0.2
        ) as mux:
            stream = await mux.asubscribe(book("okx", "BTC-USDT"))
            await collect_until(stream, lambda e: isinstance(e, Resynced))
            assert mux.book("okx", "BTC-USDT").valid
            assert mux.counters["instruments_failures"] == 1
            assert any("no answer within 0.2 s" in r.getMessage() for r in caplog.records)
            await stream.aclose()
