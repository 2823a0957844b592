"""Machinery shared by the chaos tests.

* :class:`Venue` and its subclasses know one mock's truth (its own book) and
  how to tell that the client has processed everything the mock sent (a
  *barrier*: the book's sequence number for sequenced venues, the last trade id
  for Kraken, which has none).
* :class:`Ledger` sees every event a lossless stream delivers and records
  invariant violations: a trade id that does not grow (delivered twice or out
  of order), a book update whose sequence does not grow between resyncs, an
  update delivered for a book that is flagged invalid, a ``Resynced`` without
  its snapshot.
* :class:`Harness` reads the stream into the ledger, waits on predicates
  (never on the clock), heals venues to a barrier and checks their books level
  by level and the health counters against the events seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, ClassVar

import attrs
from toyvenue import ToyAdapter

from wsmux import (
    Backoff,
    BookSnapshot,
    BookUpdate,
    Channel,
    Connected,
    Disconnected,
    Dropped,
    Error,
    ErrorKind,
    Event,
    Gap,
    Multiplexer,
    Overflow,
    Resynced,
    Stale,
    Stream,
    Subscription,
    Trade,
    book,
    trades,
)
from wsmux.adapter import Adapter, Endpoint, Heartbeat, Limits
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.exchanges.kraken import KrakenAdapter
from wsmux.exchanges.okx import OkxAdapter
from wsmux.testing import MockBinance, MockExchange, MockKraken, MockOkx
from wsmux.testing.kraken import _KrakenMockBase

FAST = Backoff(initial=0.01, cap=0.05)
"""Reconnect delays of every chaos test (timers made fast)."""

Depth = tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]
Key = tuple[str, str]


class ChaosKraken(KrakenAdapter):
    """Kraken v2 with its connection and message rates relaxed: the mock has no
    such limits, and a storm of reconnects must not wait for Cloudflare's."""

    limits: ClassVar[Limits] = attrs.evolve(
        KrakenAdapter.limits, messages_per_second=1000.0, connections_per_window=100_000, connection_window=1.0
    )


class ChaosBinance(BinanceSpotAdapter):
    """Binance spot with its REST budget and connection rate relaxed (the mock has none)."""

    limits: ClassVar[Limits] = attrs.evolve(
        BinanceSpotAdapter.limits, rest_weight_per_minute=10_000_000, connections_per_window=100_000
    )


class ChaosOkx(OkxAdapter):
    """OKX with its connection rate relaxed (3 per second on the venue; the mock has none)."""

    limits: ClassVar[Limits] = attrs.evolve(
        OkxAdapter.limits, messages_per_second=1000.0, connections_per_window=100_000
    )


class FastKraken(ChaosKraken):
    """ChaosKraken with heartbeat timers made fast: an app ping every 50 ms,
    dead after 0.3 s without any frame."""

    heartbeat: ClassVar[Heartbeat] = Heartbeat(
        ping_message='{"method":"ping"}', ping_interval=0.05, ws_ping_interval=None, silence_timeout=0.3
    )


# --- venues --------------------------------------------------------------------------


class Venue:
    """A mock venue under test: its subscriptions, truth and barrier."""

    adapter: type[Adapter] | None = None

    def __init__(self, mock: MockExchange, symbols: Iterable[str] | None = None, *, name: str | None = None) -> None:
        self.mock = mock
        self.name = name or mock.venue
        self.symbols = list(symbols or mock.symbols)

    @property
    def endpoint(self) -> Endpoint:
        return self.mock.endpoint

    def subscriptions(self) -> list[Subscription]:
        return [*book(self.name, *self.symbols), *trades(self.name, *self.symbols)]

    async def publish(self, steps: int) -> None:
        await self.mock.publish(steps, self.symbols)

    def truth(self, symbol: str) -> Depth:
        return self.mock.markets[symbol].depth()

    def faults_pending(self) -> bool:
        """Message faults armed but not fired yet, or a message held back by a reorder."""
        f = self.mock.faults
        if f.skip_seq or f.duplicate or f.reorder or f.crossed or f.bad_checksum:
            return True
        if getattr(self.mock, "_held", None):  # binance
            return True
        return any(c.held or c.state.get("held") for c in self.mock.connections.values())

    async def drain_faults(self) -> None:
        """Publish until every armed message fault has fired: a loss only shows on the
        message after it, so a barrier must come after the last fault."""
        for _ in range(500):
            if not self.faults_pending():
                return
            await self.publish(1)

    async def step(self) -> dict[str, int | None]:
        """Publish a few steps; return per symbol the barrier the client must reach."""
        await self.drain_faults()
        await self.publish(3)
        return {s: self.target(s) for s in self.symbols}

    def target(self, symbol: str) -> int | None:
        raise NotImplementedError

    def reached(self, ledger: Ledger, symbol: str, target: int | None) -> bool:
        """Sequenced venues: the last book seq delivered is at the target."""
        key = (self.name, symbol)
        seq = ledger.book_seq.get(key)
        return target is not None and seq is not None and seq >= target and not ledger.resyncing.get(key)


class SeqVenue(Venue):
    """A venue whose mock keeps the per-connection book sequence in ``conn.state["seq"]``
    (the toy venue, OKX, Bybit)."""

    topic: Callable[[str], object] = staticmethod(lambda s: f"book:{s}")

    def _carrier(self, symbol: str) -> Any:
        conns = [c for c in self.mock.connections.values() if self._carries(c, symbol)]
        return max(conns, key=lambda c: c.conn_id) if conns else None

    def _carries(self, conn: Any, symbol: str) -> bool:
        return self.topic(symbol) in conn.topics

    def target(self, symbol: str) -> int | None:
        conn = self._carrier(symbol)
        if conn is None:
            return None
        seq: int | None = conn.state.get("seq", {}).get(symbol)
        return seq


class ToyVenue(SeqVenue):
    """``tests/toyvenue.py`` (sequence numbers +1, stream snapshots)."""

    adapter = ToyAdapter


class OkxVenue(SeqVenue):
    """MockOkx: ``seqId``/``prevSeqId``, stream snapshots, checksums."""

    adapter = ChaosOkx

    def _carries(self, conn: Any, symbol: str) -> bool:
        unified = okx_mock(self.mock).unified
        return any(t[0] == "books" and unified.get(t[1]) == symbol for t in conn.topics)


class BinanceVenue(Venue):
    """MockBinance: update ids ``U``/``u``, REST snapshots."""

    adapter = ChaosBinance

    def target(self, symbol: str) -> int | None:
        mock: MockBinance = self.mock  # type: ignore[assignment]
        return mock.update_id(symbol)


class KrakenVenue(Venue):
    """MockKraken: no sequence numbers. The barrier is a trade rendered after
    the symbol's last book update (the mock renders book, then trade, per step)."""

    adapter = ChaosKraken

    def __init__(self, mock: MockExchange, symbols: Iterable[str] | None = None, *, depth: int = 10) -> None:
        super().__init__(mock, symbols)
        self.depth = depth

    def subscriptions(self) -> list[Subscription]:
        return [*book(self.name, *self.symbols, depth=self.depth), *trades(self.name, *self.symbols)]

    def truth(self, symbol: str) -> Depth:
        bids, asks = self.mock.markets[symbol].depth()
        return bids[: self.depth], asks[: self.depth]

    async def step(self) -> dict[str, int | None]:
        await self.drain_faults()
        await self.publish(2)
        out: dict[str, int | None] = {}
        for symbol in self.symbols:
            market = self.mock.markets[symbol]
            for _ in range(200):  # a step with a trade ends the symbol's frames
                before = market.next_trade_id
                await self.mock.publish(1, [symbol])
                if market.next_trade_id != before:
                    break
            out[symbol] = market.next_trade_id - 1
        return out

    def target(self, symbol: str) -> int | None:
        return self.mock.markets[symbol].next_trade_id - 1

    def reached(self, ledger: Ledger, symbol: str, target: int | None) -> bool:
        last = ledger.last_trade.get((self.name, symbol))
        return target is not None and last is not None and last >= target


def kraken_mock(mock: _KrakenMockBase) -> MockKraken:
    assert isinstance(mock, MockKraken)
    return mock


def okx_mock(mock: MockExchange) -> MockOkx:
    assert isinstance(mock, MockOkx)
    return mock


# --- the ledger ------------------------------------------------------------------------


_DISTURBANCES = (Gap, Error, Resynced, Disconnected, Connected, Stale)


class Ledger:
    """Invariants over what one stream delivered (O(1) memory per venue/symbol).

    Trade ids of the mocks are increasing integers per symbol, so "delivered
    once" is checked as "strictly increasing" (stronger, and needs no set).
    After a ``Dropped`` event (a lossy stream) the book checks restart at the
    next snapshot, since the events between were legitimately dropped.
    """

    def __init__(self) -> None:
        self.n = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.error_kinds: Counter[tuple[str, ErrorKind]] = Counter()
        self.gap_reasons: Counter[tuple[str, str]] = Counter()
        self.book_gaps: Counter[str] = Counter()
        self.trade_gaps: Counter[str] = Counter()
        self.last_trade: dict[Key, int] = {}
        self.trades: Counter[str] = Counter()
        self.book_seq: dict[Key, int | None] = {}
        self.book_live: dict[Key, bool | None] = {}
        self.updates: Counter[str] = Counter()
        self.repeats: Counter[str] = Counter()
        """Book updates identical to the one before (ts, seq, levels): delivered twice."""
        self._last_sig: dict[Key, object] = {}
        self.circuit: list[Error] = []
        """Circuit-breaker transitions (``Error`` kind ``CIRCUIT``)."""
        self.resyncing: dict[Key, bool] = {}
        """A BookSnapshot was delivered and its Resynced not yet."""
        self.dropped = 0
        self.disturbed: dict[str, int] = {}
        self.violations: list[str] = []
        self.recent: deque[Event] = deque(maxlen=64)

    def count(self, cls: type[Event], venue: str | None = None) -> int:
        if venue is None:
            return sum(n for (name, _), n in self.counts.items() if name == cls.__name__)
        return self.counts[cls.__name__, venue]

    def observe(self, event: Event) -> None:
        self.n += 1
        self.recent.append(event)
        cls = type(event)
        venue = getattr(event, "venue", None) or ""
        self.counts[cls.__name__, venue] += 1
        if isinstance(event, _DISTURBANCES):
            self.disturbed[venue] = self.n
        if cls is Trade:
            self._trade(event)  # type: ignore[arg-type]
        elif cls is BookUpdate:
            self._update(event)  # type: ignore[arg-type]
        elif cls is BookSnapshot:
            key = (venue, event.symbol)  # type: ignore[attr-defined]
            self._last_sig.pop(key, None)
            self.book_seq[key] = event.seq  # type: ignore[attr-defined]
            self.book_live[key] = True
            self.resyncing[key] = True
        elif cls is Gap:
            gap: Gap = event  # type: ignore[assignment]
            self.gap_reasons[venue, gap.reason.value] += 1
            if gap.channel is Channel.TRADES:
                self.trade_gaps[venue] += 1
            if gap.channel is Channel.BOOK:
                self.book_gaps[venue] += 1
                self.book_seq[venue, gap.symbol] = None
                self.book_live[venue, gap.symbol] = False
        elif cls is Resynced:
            rs: Resynced = event  # type: ignore[assignment]
            if rs.channel is Channel.BOOK:
                if self.book_live.get((venue, rs.symbol)) is False:
                    self.violations.append(f"Resynced without a BookSnapshot first: {rs!r}")
                self.resyncing[venue, rs.symbol] = False
        elif cls is Error:
            err: Error = event  # type: ignore[assignment]
            self.error_kinds[venue, err.kind] += 1
            if err.kind is ErrorKind.CIRCUIT:
                self.circuit.append(err)
        elif cls is Dropped:
            self.dropped += event.count  # type: ignore[attr-defined]
            for key in self.book_live:
                self.book_live[key] = None
                self.book_seq[key] = None

    def _trade(self, trade: Trade) -> None:
        key = (trade.venue, trade.symbol)
        self.trades[trade.venue] += 1
        tid = int(trade.trade_id or -1)
        last = self.last_trade.get(key)
        if last is not None and tid <= last:
            self.violations.append(f"trade id {tid} delivered after {last} on {key} (duplicate or reordered)")
        self.last_trade[key] = tid if last is None else max(last, tid)

    def _update(self, update: BookUpdate) -> None:
        key = (update.venue, update.symbol)
        self.updates[update.venue] += 1
        live = self.book_live.get(key)
        if live is False:
            self.violations.append(f"BookUpdate delivered while the book is flagged invalid: {update.seq} on {key}")
        last = self.book_seq.get(key)
        keepalive = not update.bids and not update.asks  # OKX: an empty update repeats its seq
        if (
            update.seq is not None
            and last is not None
            and (update.seq < last or (update.seq == last and not keepalive))
        ):
            self.violations.append(f"book seq {update.seq} after {last} on {key} (duplicate or reordered)")
        if update.seq is not None:
            self.book_seq[key] = update.seq
        sig = (update.ts, update.seq, update.bids, update.asks)
        if not keepalive and self._last_sig.get(key) == sig:
            self.repeats[update.venue] += 1
        self._last_sig[key] = sig

    def disturbed_since(self, mark: int, venue: str) -> bool:
        return self.disturbed.get(venue, 0) > mark


# --- the harness -------------------------------------------------------------------------


def make_mux(venues: Iterable[Venue], **kwargs: Any) -> Multiplexer:
    """A multiplexer pointed at the venues' mocks, with fast reconnects."""
    vs = list(venues)
    endpoints: dict[str, Endpoint | str] = {v.name: v.endpoint for v in vs}
    endpoints.update(kwargs.pop("endpoints", {}))
    adapters: dict[str, type[Adapter]] = {v.name: v.adapter for v in vs if v.adapter is not None}
    adapters.update(kwargs.pop("adapters", {}))
    kwargs.setdefault("backoff", FAST)
    return Multiplexer(endpoints=endpoints, adapters=adapters, **kwargs)


class Harness:
    """One lossless stream over several venues, read into a :class:`Ledger`."""

    def __init__(
        self,
        mux: Multiplexer,
        venues: Iterable[Venue],
        *,
        maxsize: int = 100_000,
        overflow: Overflow = Overflow.BLOCK,
    ) -> None:
        self.mux = mux
        self.venues = {v.name: v for v in venues}
        subs = [s for v in self.venues.values() for s in v.subscriptions()]
        self.stream: Stream = mux.subscribe(*subs, maxsize=maxsize, overflow=overflow, name="chaos")
        self.ledger = Ledger()

    def venue(self, name: str) -> Venue:
        return self.venues[name]

    async def until(self, predicate: Callable[[Event | None], bool], timeout: float = 10.0) -> list[Event]:
        """Read events into the ledger until ``predicate(event)``; the predicate
        is also asked once with ``None`` first (state already reached).
        ``timeout`` bounds a hung test; it is not a synchronisation."""
        seen: list[Event] = []
        if predicate(None):
            return seen

        async def run() -> list[Event]:
            while True:
                event = await self.stream.__anext__()
                self.ledger.observe(event)
                seen.append(event)
                if predicate(event):
                    return seen

        try:
            return await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            tail = "\n  ".join(repr(e)[:160] for e in self.ledger.recent)
            raise AssertionError(f"timed out after {timeout} s; last events:\n  {tail}") from None

    async def poll(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait for a condition on state that no event announces (e.g. what the
        mock received), checking it every millisecond; ``timeout`` bounds a hung test."""

        async def run() -> None:
            while not condition():
                await asyncio.sleep(0.001)

        await asyncio.wait_for(run(), timeout)

    async def synced(self, names: Iterable[str] | None = None, timeout: float = 10.0) -> None:
        """Wait until every book of the named venues has been resynced once."""
        wanted = {(n, s) for n in (names or self.venues) for s in self.venues[n].symbols}
        await self.until(lambda _: all(self.ledger.book_live.get(k) for k in wanted), timeout)

    async def settle(self, name: str, rounds: int = 60, timeout: float = 10.0, seconds: float | None = None) -> int:
        """Heal venue ``name`` to a barrier with every book valid and equal to
        the mock's; returns the rounds it took. At every barrier, a valid book
        must equal the mock's (never valid-and-different). ``seconds``: keep
        trying that long instead of ``rounds`` times (for heals driven by a timer)."""
        venue = self.venues[name]
        ledger = self.ledger
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds if seconds is not None else None
        attempt = 0
        while attempt < rounds if deadline is None else loop.time() < deadline:
            if deadline is not None and attempt:
                await asyncio.sleep(0.005)  # rounds paced while a timer does the healing
            attempt += 1
            mark = ledger.n
            targets = await venue.step()

            def done(_: Event | None, targets: dict[str, int | None] = targets, mark: int = mark) -> bool:
                return all(venue.reached(ledger, s, t) for s, t in targets.items()) or ledger.disturbed_since(
                    mark, name
                )

            try:
                await self.until(done, timeout)
            except AssertionError as exc:
                state = {
                    s: (t, ledger.book_seq.get((name, s)), ledger.last_trade.get((name, s))) for s, t in targets.items()
                }
                raise AssertionError(f"settling {name} (target, book seq, last trade): {state}\n{exc}") from None
            if not all(venue.reached(ledger, s, t) for s, t in targets.items()):
                continue  # disturbed: another round
            views = {s: self.mux.book(name, s) for s in venue.symbols}
            for symbol, view in views.items():
                if view.valid:  # at a barrier a valid book must be exact
                    assert view.depth() == venue.truth(symbol), f"{name} {symbol}: valid but different from the mock"
                    view._book._check()
            if all(v.valid for v in views.values()):
                return attempt
        raise AssertionError(f"{name} did not heal in {attempt} rounds")

    async def settle_all(self) -> None:
        for name in self.venues:
            await self.settle(name)

    def check(self) -> None:
        """Ledger invariants and health counters agree with the events seen."""
        ledger = self.ledger
        assert not ledger.violations, ledger.violations[:10]
        st = self.stream.stats
        assert st.received == st.delivered + st.dropped + self.stream.buffered
        health = self.mux.health()
        for name in self.venues:
            conns = [c for c in self.mux.connections() if c.venue == name]
            gaps = sum(c.feed.stats.gaps for c in conns)
            assert ledger.book_gaps[name] == gaps, (name, "book gaps", ledger.book_gaps[name], gaps)
            parse = sum(c.feed.stats.parse_errors for c in conns)
            malformed = ledger.error_kinds[name, ErrorKind.MALFORMED] + ledger.error_kinds[name, ErrorKind.VENUE_ERROR]
            assert malformed == parse, (name, "parse errors", malformed, parse)
            snaps = sum(c.feed.stats.snapshot_failures for c in conns)
            assert ledger.error_kinds[name, ErrorKind.SNAPSHOT] == snaps, (name, "snapshot errors")
            opened = sum(c.stats.connects for c in conns)
            still_open = sum(1 for c in conns if c.state == "open")
            assert ledger.count(Disconnected, name) == opened - still_open, (name, "disconnects")
            assert ledger.count(Connected, name) == opened, (name, "connects")
            stale = sum(c.stats.stale + c.stats.silent for c in conns)
            assert ledger.count(Stale, name) == stale, (name, "stale")
        assert health["streams"], "health lists the streams"
        assert health["counters"]["duplicate_trades"] == 0, "the mocks never repeat a trade"


def ids(events: Iterable[Event], cls: type[Event], venue: str | None = None) -> list[Event]:
    return [e for e in events if isinstance(e, cls) and (venue is None or getattr(e, "venue", None) == venue)]


@contextlib.asynccontextmanager
async def ticking(venue: Venue, interval: float = 0.02) -> AsyncIterator[None]:
    """Keep ``venue``'s data flowing: one market step every ``interval`` s in the
    background (load, not synchronisation). Books cannot be compared while it runs."""

    async def tick() -> None:
        while True:
            await venue.publish(1)
            await asyncio.sleep(interval)

    task = asyncio.get_running_loop().create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Mangling(MockExchange):
    """Mixin for a mock: replace the next published frames that match a rule
    (truncate, corrupt, swallow) — what a broken venue or proxy would send.
    Only frames of :meth:`MockExchange.publish` pass here (not handshakes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rules: list[list[Any]] = []
        self.mangled: list[tuple[str | bytes, str | bytes | None]] = []

    def mangle(
        self,
        match: Callable[[str | bytes], bool],
        how: Callable[[str | bytes], str | bytes | None],
        count: int = 1,
    ) -> None:
        """Replace the next ``count`` frames where ``match`` by ``how(frame)`` (None: swallow)."""
        self.rules.append([match, how, count])

    async def _send(self, conn: Any, message: str | bytes) -> None:
        for rule in self.rules:
            match, how, count = rule
            if count > 0 and match(message):
                rule[2] = count - 1
                new = how(message)
                self.mangled.append((message, new))
                if new is None:
                    return
                message = new
                break
        await super()._send(conn, message)  # type: ignore[misc]


def truncate(frame: str | bytes) -> str | bytes:
    """The first half of a frame."""
    return frame[: len(frame) // 2]


def lean(mock: MockExchange) -> MockExchange:
    """Bound the mock's own trade history (kept for REST backfill), so that memory
    measurements see the client, not the mock's archive."""
    history = getattr(mock, "trade_history", None)
    if history is not None:
        for symbol in list(history):
            history[symbol] = deque(maxlen=16)
    return mock


class Witness:
    """A callback-only stream (it never buffers) that records the last trade id per
    symbol: when it has seen a trade, every stream was handed it."""

    def __init__(self, mux: Multiplexer, venue: str, symbols: Iterable[str]) -> None:
        self.last: dict[str, int] = {}
        self._changed = asyncio.Event()
        self.stream = mux.subscribe(trades(venue, *symbols), name="witness")
        self.stream.on(Trade, self._on)

    def _on(self, trade: Trade) -> None:
        self.last[trade.symbol] = int(trade.trade_id or 0)
        self._changed.set()

    async def wait(self, symbol: str, trade_id: int, timeout: float = 30.0) -> None:
        """Until the trade ``trade_id`` of ``symbol`` was dispatched."""

        async def run() -> None:
            while self.last.get(symbol, 0) < trade_id:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(run(), timeout)


async def repeat_until(
    condition: Callable[[], bool], body: Callable[[], Awaitable[object]], seconds: float = 15.0
) -> int:
    """Run ``body`` until ``condition()``; return the rounds. Bounded by a deadline
    checked between rounds (not ``asyncio.wait_for`` around a tight loop: on Python
    3.11 a cancellation racing an inner completion can be lost, and the loop would
    never end)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    rounds = 0
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met after {seconds} s ({rounds} rounds)")
        await body()
        await asyncio.sleep(0)  # a body that never suspends must not starve the other tasks
        rounds += 1
    return rounds
