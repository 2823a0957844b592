"""A venue's refusal of a subscription names its symbol in the Error (issue 11 item 6:
when the instrument list cannot be fetched, subscribe anyway and map the venue's
rejection to the symbol)."""

from __future__ import annotations

import pytest

from wsmux import Channel, Error, ErrorKind, Multiplexer, Subscription, book
from wsmux._pipeline import Feed
from wsmux.errors import SubscriptionRejected
from wsmux.exchanges.kraken import KrakenAdapter
from wsmux.testing import MockCoinbase, MockExchange, MockKraken, MockOkx, collect_until


@pytest.mark.parametrize(
    ("mock_cls", "venue", "listed"),
    [(MockKraken, "kraken", "BTC-USD"), (MockOkx, "okx", "BTC-USDT"), (MockCoinbase, "coinbase", "BTC-USD")],
)
async def test_an_unlisted_symbol_refused_by_the_venue_names_the_symbol(
    mock_cls: type[MockExchange], venue: str, listed: str
) -> None:
    async with mock_cls([listed]) as mock:
        async with Multiplexer(endpoints={venue: mock.endpoint}, validate_symbols=False) as mux:
            stream = mux.subscribe(book(venue, "FOO-BAR"), book(venue, listed))
            events = await collect_until(stream, lambda e: isinstance(e, Error), timeout=10)
            error = events[-1]
            assert isinstance(error, Error) and error.kind is ErrorKind.VENUE_ERROR
            assert error.symbol == "FOO-BAR", error


def test_the_longest_native_spelling_wins_and_a_tie_names_nobody() -> None:
    feed = Feed(KrakenAdapter(), lambda _e: None)
    feed.subscriptions = {Subscription("kraken", Channel.BOOK, s) for s in ("BTC-USD", "BTC-USDT", "ETH-USD")}
    rejected: list[Error] = []
    feed.sink = rejected.append  # type: ignore[assignment]
    native = feed.adapter.to_native
    usdt, usd, eth = (native(s, Channel.BOOK) for s in ("BTC-USDT", "BTC-USD", "ETH-USD"))
    assert usd in usdt  # the spelling of BTC-USD is inside that of BTC-USDT
    feed._parse_error(SubscriptionRejected(f"kraken refused to subscribe {usdt}: no"), 1)
    feed._parse_error(SubscriptionRejected(f"kraken refused {usd} and {eth}"), 2)
    feed._parse_error(SubscriptionRejected("kraken refused something"), 3)
    assert [e.symbol for e in rejected] == ["BTC-USDT", None, None]
