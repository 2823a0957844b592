"""Helpers for the mock tests of venues that send whole top-N books (Hyperliquid,
Bithumb, dYdX): ``feed_client`` spelled with the venue's application ping, and
book helpers. The client itself is :class:`feedclient.FeedClient`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from feedclient import FeedClient
from feedclient import feed_client as _feed_client

from wsmux import BookSnapshot, BookUpdate, Event, Subscription
from wsmux.adapter import Adapter
from wsmux.testing import MockExchange, collect_until

__all__ = ["FeedClient", "deletes_first", "feed_client", "mock_top", "publish_until_top_changes", "wait_book_time"]


@contextlib.asynccontextmanager
async def feed_client(
    mock: MockExchange, adapter: Adapter, subs: list[Subscription], is_pong: Callable[[str | bytes], bool]
) -> AsyncIterator[FeedClient]:
    """A connected :class:`~feedclient.FeedClient` subscribed to ``subs``, synced
    by the adapter's application ping; closed on exit."""
    async with _feed_client(mock, adapter, subs, None, is_pong, url_from_adapter=True) as client:
        yield client


async def publish_until_top_changes(mock: Any, symbol: str) -> int:
    """For mocks of snapshot-only venues (``top(symbol)`` and ``time``): publish
    steps of ``symbol`` until its published top of book changes, so that the
    client gets an update stamped with the returned mock time (ms). An
    unchanged top sends the client nothing to wait for."""
    before = mock.top(symbol)
    for _ in range(1000):
        await mock.publish(1, [symbol])
        if mock.top(symbol) != before:
            return int(mock.time[symbol])
    raise AssertionError(f"the top of {symbol} did not change in 1000 steps")


def mock_top(mock: Any, symbol: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The top of book a snapshot-only mock publishes (``top(symbol)``), as floats."""
    market = mock.markets[symbol]
    bids, asks = mock.top(symbol)
    return (
        tuple((market.price(p), market.size(s)) for p, s in bids),
        tuple((market.price(p), market.size(s)) for p, s in asks),
    )


async def wait_book_time(stream: Any, symbol: str, time_ms: int) -> list[Event]:
    """Read ``stream`` until a book event of ``symbol`` stamped ``time_ms`` or later."""
    return await collect_until(
        stream,
        lambda e: isinstance(e, BookUpdate | BookSnapshot) and e.symbol == symbol and (e.ts or 0) >= time_ms * 10**6,
    )


def deletes_first(levels: tuple[tuple[float, float], ...]) -> tuple[set[tuple[float, float]], set[tuple[float, float]]]:
    """An update's (deletes, sets), checking that every delete comes before every set."""
    n = sum(1 for _, size in levels if size == 0.0)
    assert all(size == 0.0 for _, size in levels[:n]), levels
    return set(levels[:n]), set(levels[n:])
