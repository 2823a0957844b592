"""Helpers for the mock tests of Bitget, HTX and Poloniex: ``feed_client`` with
keyword ping/pong (HTX's frames are gzip: the shared client decompresses like
the Connection does) and ``assert_same_book``. The client itself is
:class:`feedclient.FeedClient`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from feedclient import FeedClient
from feedclient import feed_client as _feed_client

from wsmux import Subscription
from wsmux.adapter import Adapter, Outgoing
from wsmux.testing import MockExchange

__all__ = ["FeedClient", "assert_same_book", "feed_client"]


@contextlib.asynccontextmanager
async def feed_client(
    mock: MockExchange,
    adapter: Adapter,
    subs: Sequence[Subscription],
    *,
    ping: str = "ping",
    is_pong: Callable[[str | bytes], bool] = lambda f: f in ("pong", b"pong"),
    messages: Sequence[Outgoing] | None = None,
) -> AsyncIterator[FeedClient]:
    """A connected :class:`~feedclient.FeedClient` synced by ``ping``/``is_pong``."""
    async with _feed_client(mock, adapter, subs, ping, is_pong, url_from_adapter=True, messages=messages) as c:
        yield c


def assert_same_book(c: FeedClient, mock: MockExchange, symbol: str, depth: int | None = None) -> None:
    """The client's book equals the mock's own market level by level (its
    best ``depth`` levels per side, for venues that send only those)."""
    local = c.feed.book(symbol)
    assert local is not None and local.valid
    bids, asks = mock.markets[symbol].depth()
    assert local.depth() == (bids[:depth], asks[:depth])
    local._check()
