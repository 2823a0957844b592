"""Venue feeds that serve several wsmux channels (private helper for adapters).

Some venues deliver two wsmux channels on one subscription: Kraken Futures'
``trade`` feed carries trades and liquidations, its ``ticker`` funding and open
interest; Gemini v2's ``l2`` carries the book and the trades. Such a feed is
subscribed when the first of its channels is asked for and unsubscribed when
the last one goes, and a message of the feed yields only the channels asked
for. :class:`SharedFeeds` keeps that per-connection bookkeeping (sans-I/O).
"""

from __future__ import annotations

from wsmux.model import Channel

__all__ = ["SharedFeeds"]


class SharedFeeds:
    """The channels wanted per ``(feed, native symbol)`` on one connection."""

    __slots__ = ("_wanted",)

    def __init__(self) -> None:
        self._wanted: dict[tuple[str, str], set[Channel]] = {}

    def add(self, feed: str, native: str, channel: Channel) -> bool:
        """Want ``channel`` from ``feed``; True if the feed must be subscribed
        (no channel wanted it before)."""
        wanted = self._wanted.setdefault((feed, native), set())
        first = not wanted
        wanted.add(channel)
        return first

    def remove(self, feed: str, native: str, channel: Channel) -> bool:
        """Stop wanting ``channel``; True if the feed must be unsubscribed
        (it was wanted and no channel wants it any more)."""
        wanted = self._wanted.get((feed, native))
        if not wanted or channel not in wanted:
            return False
        wanted.discard(channel)
        if wanted:
            return False
        del self._wanted[(feed, native)]
        return True

    def wants(self, feed: str, native: str, channel: Channel) -> bool:
        """True if ``channel`` of ``feed`` is wanted — or if no channel of the
        feed is subscribed on this connection (replay of a capture without its
        subscriptions, late messages after an unsubscribe: every channel is
        delivered, the caller drops what it did not ask for)."""
        wanted = self._wanted.get((feed, native))
        return wanted is None or channel in wanted

    def clear(self) -> None:
        """Forget everything (a new connection)."""
        self._wanted.clear()
