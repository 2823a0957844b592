"""REST server time per venue: the adapters' request and parse (venue rules as
data), and the NTP-style offset measured against each mock with a skewed clock."""

from __future__ import annotations

import pytest

from wsmux import Multiplexer
from wsmux.errors import MalformedMessage
from wsmux.exchanges import get as get_adapter
from wsmux.testing import (
    MockBinance,
    MockBinanceFutures,
    MockBybit,
    MockCoinbase,
    MockGate,
    MockGateFutures,
    MockKraken,
    MockKucoin,
    MockKucoinFutures,
    MockOkx,
)

MS = 1_000_000

# the venues' documented answers (their REST docs; the sheets are silent on server time)
DOCUMENTED = {
    "binance": (b'{"serverTime":1499827319559}', 1499827319559 * MS),
    "binance-usdm": (b'{"serverTime":1499827319559}', 1499827319559 * MS),
    "okx": (b'{"code":"0","msg":"","data":[{"ts":"1597026383085"}]}', 1597026383085 * MS),
    "bybit": (
        b'{"retCode":0,"retMsg":"OK","result":{"timeSecond":"1688639403","timeNano":"1688639403423213947"},'
        b'"retExtInfo":{},"time":1688639403423}',
        1688639403423213947,
    ),
    "kraken": (
        b'{"error":[],"result":{"unixtime":1688669448,"rfc1123":"Thu, 06 Jul 23 18:50:48 +0000"}}',
        1688669448 * 10**9,
    ),
    "coinbase": (b'{"iso":"2015-01-07T23:47:25.201Z","epoch":1420674445.201}', 1420674445201 * MS),
    "kucoin": (b'{"code":"200000","data":1546837113087}', 1546837113087 * MS),
    "kucoin-futures": (b'{"code":"200000","data":1546837113087}', 1546837113087 * MS),
    "gateio": (b'{"server_time":1597026383085}', 1597026383085 * MS),
    "gateio-futures": (b'{"server_time":1597026383085}', 1597026383085 * MS),
}


@pytest.mark.parametrize("venue", sorted(DOCUMENTED))
def test_documented_answers_parse(venue: str) -> None:
    adapter = get_adapter(venue)()
    request = adapter.time_request()
    assert request is not None and request.url.startswith(adapter.rest_url) and request.method == "GET"
    body, ns = DOCUMENTED[venue]
    got = adapter.parse_server_time(body)
    assert abs(got - ns) < 1_000  # float seconds (Coinbase) are exact to the microsecond
    for bad in (b"{", b"[]", b'{"serverTime":null}', b'{"data":"soon"}', b'{"epoch":true}', b"{}"):
        with pytest.raises(MalformedMessage):
            adapter.parse_server_time(bad)


def test_a_venue_without_server_time_has_no_request() -> None:
    assert get_adapter("bitfinex")().time_request() is None


@pytest.mark.parametrize(
    ("mock_cls", "venue"),
    [
        (MockBinance, "binance"),
        (MockBinanceFutures, "binance-usdm"),
        (MockOkx, "okx"),
        (MockBybit, "bybit"),
        (MockKraken, "kraken"),
        (MockCoinbase, "coinbase"),
        (MockKucoin, "kucoin"),
        (MockKucoinFutures, "kucoin-futures"),
        (MockGate, "gateio"),
        (MockGateFutures, "gateio-futures"),
    ],
)
async def test_offset_against_a_skewed_mock_clock(mock_cls: type, venue: str) -> None:
    symbol = "BTC-USD" if venue in ("kraken", "coinbase") else "BTC-USDT"
    if venue.endswith("-futures") or venue == "binance-usdm":
        symbol += "-PERP"
    async with (
        mock_cls([symbol]) as mock,
        Multiplexer(endpoints={venue: mock.endpoint}, metrics={"interval": None}) as mux,
    ):
        mock.clock_skew = -3.25  # the venue's clock runs 3.25 s behind
        await mux._probe_clock(venue)
        await mux._probe_clock(venue)
        assert mock.time_served == 2
        clock = mux.metrics.venue(venue).latency.clock  # type: ignore[union-attr]
        assert clock.source == "rest" and clock.uncertainty_ns is not None
        assert abs(clock.offset_ns - (-3.25e9)) <= clock.uncertainty_ns
        if venue == "kraken":  # whole seconds: the bound says so
            assert clock.uncertainty_ns >= 500 * MS
        else:
            assert clock.uncertainty_ns < 500 * MS
