"""wsmux: one typed, gap-checked stream from many exchanges' market-data WebSockets.

The public API is re-exported here; implementation modules are private.
"""

from __future__ import annotations

import logging

from wsmux._retry import Backoff
from wsmux.adapter import Adapter, Endpoint, Heartbeat, HttpRequest, Limits
from wsmux.book import OrderBook
from wsmux.errors import (
    BookError,
    ClosedError,
    ConfigError,
    LocalError,
    LogError,
    LoopThreadDied,
    MalformedMessage,
    NotStarted,
    NotSubscribed,
    RemoteError,
    StreamOverflow,
    SubscriptionRejected,
    SyncTimeout,
    TransportError,
    UnknownChannel,
    UnknownSymbol,
    UnknownVenue,
    WsmuxError,
)
from wsmux.model import (
    Backfilled,
    BookSide,
    BookSnapshot,
    BookUpdate,
    Channel,
    Connected,
    ConnectFailed,
    ConsolidatedQuote,
    Disconnected,
    Dropped,
    Error,
    ErrorKind,
    Event,
    Funding,
    Gap,
    GapReason,
    L3Snapshot,
    Liquidation,
    MarketEvent,
    OpenInterest,
    OrderAction,
    OrderUpdate,
    Quote,
    Resynced,
    Side,
    SlowConsumer,
    Stale,
    StatusEvent,
    Trade,
)
from wsmux.multiplexer import BookView, L3BookView, Multiplexer
from wsmux.stream import Overflow, Stream, StreamStats
from wsmux.subscriptions import (
    Subscription,
    book,
    funding,
    l3,
    liquidations,
    open_interest,
    quotes,
    trades,
)

__version__ = "0.1.0"

# A library never configures logging: records go to the "wsmux" logger tree
# (wsmux.connection.<venue>, ...) and are dropped unless the application adds
# a handler (e.g. logging.basicConfig()).
logging.getLogger("wsmux").addHandler(logging.NullHandler())

__all__ = [
    "Adapter",
    "Backfilled",
    "Backoff",
    "BookError",
    "BookView",
    "BookSide",
    "BookSnapshot",
    "BookUpdate",
    "Channel",
    "ClosedError",
    "ConfigError",
    "ConnectFailed",
    "Connected",
    "ConsolidatedQuote",
    "Disconnected",
    "Dropped",
    "Endpoint",
    "Error",
    "ErrorKind",
    "Event",
    "Funding",
    "Gap",
    "GapReason",
    "Heartbeat",
    "HttpRequest",
    "L3BookView",
    "L3Snapshot",
    "Limits",
    "Liquidation",
    "LocalError",
    "LogError",
    "LoopThreadDied",
    "MalformedMessage",
    "MarketEvent",
    "Multiplexer",
    "NotStarted",
    "NotSubscribed",
    "Overflow",
    "OpenInterest",
    "OrderAction",
    "OrderBook",
    "OrderUpdate",
    "Quote",
    "RemoteError",
    "Resynced",
    "Side",
    "SlowConsumer",
    "Stale",
    "StatusEvent",
    "Stream",
    "StreamOverflow",
    "StreamStats",
    "Subscription",
    "SubscriptionRejected",
    "SyncTimeout",
    "Trade",
    "TransportError",
    "UnknownChannel",
    "UnknownSymbol",
    "UnknownVenue",
    "WsmuxError",
    "__version__",
    "book",
    "funding",
    "l3",
    "liquidations",
    "open_interest",
    "quotes",
    "trades",
]
