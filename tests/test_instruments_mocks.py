"""Every mock exchange serves the instruments list of its venue: the adapter's
own instruments requests, answered by the mock, parse into the symbols the
mock lists (so a multiplexer pointed at a mock validates symbols as it would
against the venue)."""

from __future__ import annotations

import httpx
import pytest
from test_instruments import ORIGINAL_VENUES

from wsmux.adapter import Adapter
from wsmux.cli import DEMO_SYMBOLS, MOCKS, _load_mock
from wsmux.exchanges import get

VENUES = sorted(v for v in MOCKS if get(v)().instruments_requests())


async def _listed(adapter: Adapter) -> set[str]:
    listed: set[str] = set()
    async with httpx.AsyncClient() as http:
        for request in adapter.instruments_requests():
            response = await http.request(
                request.method, request.url, params=list(request.params), content=request.body
            )
            assert response.status_code == 200, (request.url, response.text[:200])
            listed.update(i.symbol for i in adapter.parse_instruments(response.content))
    return listed


@pytest.mark.parametrize("venue", VENUES)
async def test_mock_serves_its_instruments(venue: str) -> None:
    symbols = DEMO_SYMBOLS.get(venue, ["BTC-USDT", "ETH-USDT"])
    async with _load_mock(venue)(symbols) as mock:
        adapter = get(venue)(url=mock.ws_url, rest_url=mock.rest_url)
        assert set(symbols) <= await _listed(adapter)


async def test_instruments_fault_refuses_the_list() -> None:
    from wsmux.testing import MockOkx

    async with MockOkx(["BTC-USDT"]) as mock:
        mock.faults.instruments_status = 503
        adapter = get("okx")(url=mock.ws_url, rest_url=mock.rest_url)
        async with httpx.AsyncClient() as http:
            request = adapter.instruments_requests()[0]
            response = await http.get(request.url, params=list(request.params))
        assert response.status_code == 503 and mock.instruments_served == 0


def test_every_original_venue_is_covered() -> None:
    assert set(ORIGINAL_VENUES) <= set(VENUES)
