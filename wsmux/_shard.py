"""Shard: one set of subscriptions on one venue route, carried by one or more
redundant connections, with rollover before the venue's forced disconnect.

Theory of operation
-------------------
A shard owns ``redundancy`` :class:`~wsmux.connection.Connection` objects that
carry exactly the same subscriptions. With one connection, its events go
straight to the multiplexer (no per-event cost). With two or more, every
event of every connection goes through one
:class:`~wsmux.reliability.Arbiter`, which lets each logical event through
once, keeps an authoritative book per symbol (the valid connection that is
furthest ahead) and hides a gap on one connection while another is valid;
when the authority moves to a connection whose updates cannot continue the
caller's stream by sequence, the new authority's book is delivered as a
``BookSnapshot`` first ("rebase").

Rollover: a venue that closes connections older than
``Limits.max_connection_age`` (Binance: 24 h) gets a fresh connection
``rollover_margin`` seconds before that. The new connection is *warmed*: it
subscribes and syncs its books while its events are held back; once every
book it carries is valid (or ``warmup_timeout`` passed) the shard switches
over — each book is handed to the caller as a ``BookSnapshot`` of the new
connection's valid book followed by ``Resynced`` — and only then closes the
old connection, quietly. Trades around the switch are deduplicated by trade
id downstream (the multiplexer's trade sequencer). With ``replay_trades`` the
tape is handed over without a hole even when the new connection is *ahead*
of the old one (a faster host, whose first trades the old connection has not
received yet): after the books switch, the old connection keeps delivering
its trades (only those) until it has delivered the new connection's first
trade of every symbol (or ``drain_timeout`` passed), while the new
connection's trades are held; then the held trades are delivered — the
sequencer drops the ones already delivered (counted) — and the new
connection takes over the tape. No book is ever invalid during a rollover.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from wsmux._aio import reap
from wsmux._reliability.arbiter import Arbiter
from wsmux.book import OrderBook
from wsmux.book.l3 import L3Book
from wsmux.connection import Connection
from wsmux.model import Channel, Event, Trade
from wsmux.subscriptions import Subscription

__all__ = ["Shard"]


class Shard:
    """Connections carrying one set of subscriptions (see the module docstring).

    Args:
        venue: venue id.
        route: the adapter route of the subscriptions.
        make_connection: builds a Connection given its event sink.
        deliver: where accepted events go (the multiplexer).
        redundancy: connections to keep.
        rollover_margin: seconds before the venue's max connection age to roll over.
        warmup_timeout: longest wait for a new connection's books during rollover.
        now_ns: wall clock (ns) for the arbiter's bookkeeping.
        replay_trades: hand the trade tape over without a hole at a rollover
            (see the module docstring; only with a trade-id deduplicator
            downstream).
        drain_timeout: longest the old connection keeps delivering trades
            after the switch.
    """

    def __init__(
        self,
        venue: str,
        route: str,
        make_connection: Callable[[Callable[[Event], object]], Connection],
        deliver: Callable[[Event], None],
        *,
        redundancy: int = 1,
        rollover_margin: float = 300.0,
        warmup_timeout: float = 120.0,
        now_ns: Callable[[], int],
        replay_trades: bool = False,
        drain_timeout: float = 5.0,
    ) -> None:
        self.venue = venue
        self.route = route
        self._make = make_connection
        self._deliver = deliver
        self._now_ns = now_ns
        self.redundancy = redundancy
        self.rollover_margin = rollover_margin
        self.warmup_timeout = warmup_timeout
        self.replay_trades = replay_trades
        self.drain_timeout = drain_timeout
        self.arbiter: Arbiter | None = Arbiter() if redundancy > 1 else None
        self.conns: list[Connection] = []
        self.subscriptions: set[Subscription] = set()
        self.rollovers = 0
        self.held = 0
        self._rolling = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        for _ in range(redundancy):
            self._open_member()

    # --- members --------------------------------------------------------------

    def _open_member(self, sink: Callable[[Event], object] | None = None) -> Connection:
        arbiter = self.arbiter
        if sink is None:
            if arbiter is None:
                sink = self._deliver
            else:
                holder: list[Connection] = []
                sink = self._arbitrated(holder)
                conn = self._make(sink)
                holder.append(conn)
                arbiter.add_connection(conn.conn_id, self._now_ns())
                self.conns.append(conn)
                return conn
        conn = self._make(sink)
        self.conns.append(conn)
        return conn

    def _arbitrated(self, holder: list[Connection]) -> Callable[[Event], None]:
        arbiter = self.arbiter
        assert arbiter is not None
        deliver = self._deliver

        def sink(event: Event) -> None:
            ok = arbiter.accept(holder[0].conn_id, event)
            if arbiter._changes:
                for change in arbiter.take_changes():
                    if change.rebase:
                        self._rebase(change.new, change.symbol, change.channel, change.recv_ns)
            if ok:
                deliver(event)

        return sink

    def _member(self, conn_id: int) -> Connection | None:
        return next((c for c in self.conns if c.conn_id == conn_id), None)

    def _rebase(self, conn_id: int, symbol: str, channel: Channel, recv_ns: int) -> None:
        conn = self._member(conn_id)
        if conn is None or channel is not Channel.BOOK:
            return
        book = conn.feed.book(symbol)
        if book is not None and book.valid:
            self._deliver(book.snapshot_event(recv_ns))

    # --- control --------------------------------------------------------------

    @property
    def room(self) -> int:
        """How many more subscriptions the shard may carry."""
        return self.conns[0].room if self.conns else 0

    async def add(self, subs: Iterable[Subscription]) -> None:
        subs = list(subs)
        self.subscriptions.update(subs)
        for conn in list(self.conns):
            await conn.add(subs)

    async def remove(self, subs: Iterable[Subscription]) -> None:
        subs = list(subs)
        self.subscriptions.difference_update(subs)
        for conn in list(self.conns):
            await conn.remove(subs)
        if self.arbiter is not None:
            for sub in subs:
                self.arbiter.forget(sub.venue, sub.symbol)

    def start(self) -> None:
        for conn in self.conns:
            conn.start()
        if not self._started:
            self._started = True
            age = self.conns[0].adapter.limits.max_connection_age if self.conns else None
            if age is not None:
                self._task = asyncio.get_running_loop().create_task(self._rollover_loop(age))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await reap(self._task, errors=False)
            self._task = None
        for conn in list(self.conns):
            await conn.close()

    # --- books --------------------------------------------------------------

    def book(self, symbol: str) -> OrderBook | None:
        """The authoritative live book of ``symbol``."""
        conn = self._authority(symbol, Channel.BOOK)
        return conn.feed.book(symbol) if conn is not None else None

    def l3_book(self, symbol: str) -> L3Book | None:
        conn = self._authority(symbol, Channel.L3)
        return conn.feed.l3_book(symbol) if conn is not None else None

    def _authority(self, symbol: str, channel: Channel) -> Connection | None:
        if not self.conns:
            return None
        if self.arbiter is not None:
            source = self.arbiter.book_source(self.venue, symbol, channel)
            if source is not None:
                member = self._member(source)
                if member is not None:
                    return member
        return self.conns[0]

    # --- rollover -------------------------------------------------------------

    async def _rollover_loop(self, max_age: float) -> None:
        while True:
            oldest = self.conns[0] if self.conns else None
            if oldest is None:
                return
            since = oldest.stats.connected_since
            clock = oldest.clock
            if since is None:
                await asyncio.sleep(1.0)
                continue
            due = since + max_age - self.rollover_margin
            wait = due - clock.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, 60.0))
                continue
            await self.rollover(oldest)

    async def rollover(self, old: Connection) -> bool:
        """Replace ``old`` by a warmed-up new connection (see the module docstring).

        Returns True if the switch happened with every book valid. One rollover
        runs at a time (the age timer and endpoint choice may both ask); a
        connection that was replaced meanwhile is left alone (False)."""
        async with self._rolling:
            if old not in self.conns:
                return False
            return await self._rollover(old)

    async def _rollover(self, old: Connection) -> bool:
        held: list[Event] = []
        ready = asyncio.Event()

        def hold(event: Event) -> None:
            self.held += 1
            held.append(event)
            if len(held) > 10_000:
                del held[:5_000]
            ready.set()

        # with an arbiter the new member joins the group; alone, it is held back
        new = self._open_member() if self.arbiter is not None else self._make(hold)
        old_trades = _TradeLog(old.feed.sink) if self.arbiter is None and self.replay_trades else None
        if old_trades is not None:
            old.feed.sink = old_trades
        await new.add(sorted(self.subscriptions, key=str))
        new.start()
        deadline = new.clock.monotonic() + self.warmup_timeout
        warm = False
        while new.clock.monotonic() < deadline:
            books_ok = all(sync.valid for sync in new.feed.syncs.values())
            l3_ok = all(s.valid for s in new.feed.l3_syncs.values()) if hasattr(new.feed, "l3_syncs") else True
            if new.state == "open" and books_ok and l3_ok and new.stats.frames > 0:
                warm = True
                break
            ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):  # not wait_for: on 3.11 it can lose a cancel
                    await ready.wait()
        if self.arbiter is None:
            # switch: the new connection's valid books become the caller's
            now = self._now_ns()
            for sync in new.feed.syncs.values():
                if sync.valid:
                    self._deliver(sync.book.snapshot_event(now))
                    self._deliver(sync.book.resynced_event(now))
            if old_trades is not None:
                await self._hand_over_trades(old, new, old_trades, [e for e in held if type(e) is Trade])
            new.sink = self._deliver
            new.feed.sink = self._deliver
            self.conns = [new if c is old else c for c in self.conns]
        else:
            self.conns = [c for c in self.conns if c is not old]
        self.rollovers += 1  # the switch is done; closing the old one is housekeeping
        # retire the old connection quietly: its loss is not the caller's
        old.sink = _discard
        old.feed.sink = _discard
        if self.arbiter is not None:
            for gap in self.arbiter.remove_connection(old.conn_id, self._now_ns()):
                self._deliver(gap)
        await old.close()
        return warm


    async def _hand_over_trades(
        self, old: Connection, new: Connection, old_trades: _TradeLog, pending: list[Trade]
    ) -> None:
        """Let ``old`` deliver trades until it reached ``new``'s first trade per
        symbol, holding ``new``'s trades; then deliver those (see the module docstring)."""
        symbols = {s.symbol for s in self.subscriptions if s.channel is Channel.TRADES}
        first: dict[str, object] = {}
        for trade in pending:
            first.setdefault(trade.symbol, trade.trade_id)
        caught = asyncio.Event()

        def reached() -> bool:
            # every traded symbol: the new connection has a first trade, and the old one delivered it
            return len(first) >= len(symbols) and all((sym, tid) in old_trades.keys for sym, tid in first.items())

        def from_new(event: Event) -> None:
            if type(event) is Trade:
                pending.append(event)
                first.setdefault(event.symbol, event.trade_id)
                if reached():
                    caught.set()
            else:
                self._deliver(event)

        def from_old(event: Event) -> None:
            if type(event) is Trade:
                old_trades.keys.add((event.symbol, event.trade_id))
                self._deliver(event)
                if reached():
                    caught.set()

        new.sink = new.feed.sink = from_new
        old.sink = old.feed.sink = from_old
        if symbols and not reached():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.drain_timeout):
                    await caught.wait()
        old.sink = old.feed.sink = _discard
        for trade in pending:
            self._deliver(trade)


class _TradeLog:
    """A sink wrapper that remembers which trades a connection delivered
    (``(symbol, trade_id)``, bounded), for the rollover's tape hand-over."""

    __slots__ = ("inner", "keys")

    def __init__(self, inner: Callable[[Event], object]) -> None:
        self.inner = inner
        self.keys: set[tuple[str, object]] = set()

    def __call__(self, event: Event) -> object:
        if type(event) is Trade and len(self.keys) < 100_000:
            self.keys.add((event.symbol, event.trade_id))
        return self.inner(event)


def _discard(_event: Any) -> None:
    return None
