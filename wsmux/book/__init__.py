"""Order books and the machinery that keeps them in sync (sans-I/O).

Public names: :class:`OrderBook` (L2), :class:`BookSync` with its
:class:`SyncRule` vocabulary. :mod:`wsmux.book.checksum` holds the venues'
checksum algorithms and :mod:`wsmux.book.l3` the order-by-order book.
"""

from __future__ import annotations

from wsmux.book._consolidated import ConsolidatedBBO, VenueTop
from wsmux.book._orderbook import SNAPSHOT_STEP_LEVELS, OrderBook, SnapshotBuild, UnreadRows
from wsmux.book._sync import (
    PRE_REQUEST_BUFFER,
    BookSync,
    Continuity,
    Diff,
    RawSnapshot,
    SnapshotJob,
    SnapshotSource,
    SyncRule,
    SyncState,
    SyncStats,
    Verdict,
)

__all__ = [
    "PRE_REQUEST_BUFFER",
    "SNAPSHOT_STEP_LEVELS",
    "BookSync",
    "ConsolidatedBBO",
    "Continuity",
    "Diff",
    "OrderBook",
    "RawSnapshot",
    "SnapshotBuild",
    "SnapshotJob",
    "SnapshotSource",
    "SyncRule",
    "SyncState",
    "SyncStats",
    "UnreadRows",
    "Verdict",
    "VenueTop",
]
