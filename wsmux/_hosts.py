"""The I/O half of endpoint choice: measure a venue's hosts and move connections.

Theory of operation
-------------------
:class:`~wsmux._endpoints.EndpointChooser` (pure) ranks a venue's hosts;
:class:`HostDriver` (one per venue with choice on, owned by the multiplexer)
feeds it measurements and carries out its verdicts:

1. *Live checks*, every ``check_every`` seconds (followed by a decision when
   every host carries a live connection, as with redundancy): each open connection of the
   venue is *tapped* — its feed's event sink is wrapped by a
   :class:`LatencyTap` until ``sample_events`` latency samples (receive time
   minus the venue's event time, for trades, quotes and book updates) were
   taken or ``probe_timeout`` passed, then unwrapped. Between checks nothing
   runs per event. The samples update the host's forecast.
2. *Probes*, every ``reevaluate_every`` seconds, and at once when the active
   host's forecast degrades: each host no live connection uses gets a short
   probe connection (its own adapter and feed, events to a tap only, never to
   the caller) carrying a few of the venue's subscriptions (trades or quotes
   where there are any: no REST snapshot needed). The probe records the
   handshake time, the time to the first data event and the latency samples,
   then closes. A probe that cannot connect counts as a failure of that host.
3. *Switch*: when the chooser names a better host, every connection not on
   the hosts it should use is replaced through the shard's warm rollover
   (:meth:`~wsmux._shard.Shard.rollover`): the replacement subscribes and
   syncs its books while held back, then takes over with ``BookSnapshot`` +
   ``Resynced`` per book (or joins the arbiter's group with redundancy), so
   the caller sees no ``Gap``. An :class:`~wsmux.EndpointChanged` event
   (reason ``faster`` or ``degraded``) names the move.
4. *Failover*: when a connection's attempts to its host failed
   ``failover_after`` times in a row, the connection is retargeted to the
   next host for its next attempt (nothing is warm to switch from: it is
   down), and an ``EndpointChanged`` (reason ``failover``) says so.

Only one switch per venue runs at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from wsmux._endpoints import EndpointChooser
from wsmux._shard import Shard
from wsmux.connection import Connection
from wsmux.health import HostHealth, MemberHealth
from wsmux.metrics._hist import LatencyHistogram, bucket_bounds
from wsmux.model import (
    BookUpdate,
    Channel,
    Connected,
    ConnectFailed,
    EndpointChanged,
    EndpointReason,
    Event,
    Quote,
    Trade,
)
from wsmux.subscriptions import Subscription

if TYPE_CHECKING:
    from wsmux.multiplexer import Multiplexer

__all__ = ["HostDriver", "LatencyTap", "lag_histograms", "member_health"]

_log = logging.getLogger("wsmux.endpoints")

_SAMPLED = frozenset({Trade, Quote, BookUpdate})
"""Event classes whose ``recv_ns - ts`` is a latency sample (snapshots are left
out: a REST snapshot's time is not the feed's)."""
_MAX_SAMPLE_S = 60.0
"""Samples beyond ±this are absurd timestamps (a unit mistake, a stuck
clock): left out, counted in :attr:`LatencyTap.absurd`."""
_PROBE_SUBSCRIPTIONS = 3


class LatencyTap:
    """A sink wrapper that takes latency samples on the way through.

    Args:
        inner: the sink it wraps (every event is passed on unchanged).
        wanted: samples to take before :attr:`done` is set.
        on_first: called once with the first data event (probes time it).
    """

    __slots__ = ("absurd", "done", "inner", "on_first", "samples", "wanted")

    def __init__(
        self,
        inner: Callable[[Event], object],
        wanted: int,
        on_first: Callable[[], None] | None = None,
    ) -> None:
        self.inner = inner
        self.wanted = wanted
        self.on_first = on_first
        self.samples: list[float] = []
        self.absurd = 0
        self.done = asyncio.Event()

    def __call__(self, event: Event) -> object:
        if type(event) in _SAMPLED:
            if self.on_first is not None:
                self.on_first()
                self.on_first = None
            ts = event.ts  # type: ignore[attr-defined]
            if ts:
                sample = (event.recv_ns - ts) / 1e9  # type: ignore[attr-defined]
                if -_MAX_SAMPLE_S < sample < _MAX_SAMPLE_S:
                    self.samples.append(sample)
                    if len(self.samples) >= self.wanted:
                        self.done.set()
                else:
                    self.absurd += 1
        return self.inner(event)


class HostDriver:
    """Endpoint choice for one venue of ``mux`` (see the module docstring)."""

    def __init__(self, mux: Multiplexer, venue: str, chooser: EndpointChooser) -> None:
        self.mux = mux
        self.venue = venue
        self.chooser = chooser
        self.absurd = 0
        """Latency samples left out as absurd (see ``_MAX_SAMPLE_S``)."""
        self.probe_failures = 0
        self.errors = 0
        """Rounds that failed with an unexpected error (logged; the next round runs)."""
        self._switching = False
        self._wake = asyncio.Event()
        self._placed: dict[int, Connection] = {}

    # --- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Check, probe, switch, until the multiplexer closes."""
        policy = self.chooser.policy
        clock = self.mux.clock
        next_probe = clock.monotonic()  # probe the other hosts at once
        while True:
            try:
                await self.check_live()
                if clock.monotonic() >= next_probe or self.chooser.degraded():
                    await self.probe_others()
                    next_probe = clock.monotonic() + policy.reevaluate_every
                    await self.decide()
                elif set(self.load()) >= {h.url for h in self.chooser.hosts}:
                    await self.decide()  # every host is live (redundancy): the figures are fresh
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not end endpoint choice for good
                self.errors += 1
                _log.warning("%s: endpoint choice round failed: %s: %s", self.venue, type(exc).__name__, exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(policy.check_every):  # not wait_for: on 3.11 it can lose a cancel
                    await self._wake.wait()

    def placed(self, conn: Connection, url: str) -> None:
        """``conn`` was made for ``url`` (the multiplexer calls it)."""
        self._placed[conn.conn_id] = conn
        self.mux._host_of[conn.conn_id] = url

    def connections(self) -> list[Connection]:
        """The venue's connections placed by endpoint choice and not closed."""
        for conn_id in [i for i, c in self._placed.items() if c.state == "closed"]:
            del self._placed[conn_id]
            self.mux._host_of.pop(conn_id, None)
        return list(self._placed.values())

    def load(self) -> dict[str, int]:
        """Live connections per host."""
        out: dict[str, int] = {}
        for conn in self.connections():
            url = self.mux._host_of[conn.conn_id]
            out[url] = out.get(url, 0) + 1
        return out

    async def check_live(self) -> None:
        """Tap every open connection for latency samples (concurrently)."""
        conns = [c for c in self.connections() if c.state == "open"]
        if not conns:
            return
        taps = [self._tap(conn) for conn in conns]
        waits = [asyncio.ensure_future(tap.done.wait()) for tap in taps]
        try:
            await asyncio.wait(waits, timeout=self.chooser.policy.probe_timeout)
        finally:
            for w in waits:
                w.cancel()
            for conn, tap in zip(conns, taps, strict=True):
                if conn.feed.sink is tap:
                    conn.feed.sink = tap.inner
                self.absurd += tap.absurd
                url = self.mux._host_of.get(conn.conn_id)
                if url is not None:
                    self.chooser.host(url).absurd += tap.absurd
                    if tap.samples:
                        self.chooser.record_samples(url, tap.samples)

    def _tap(self, conn: Connection) -> LatencyTap:
        tap = LatencyTap(conn.feed.sink, self.chooser.policy.sample_events)
        conn.feed.sink = tap
        return tap

    async def probe_others(self) -> None:
        """Probe every host no live connection uses (concurrently)."""
        used = set(self.load())
        subs = self._probe_subscriptions()
        if not subs:
            return
        idle = [h.url for h in self.chooser.hosts if h.url not in used]
        await asyncio.gather(*(self.probe(url, subs) for url in idle))

    def _probe_subscriptions(self) -> list[Subscription]:
        shards = self.mux._shards.get(self.venue, ())
        # one shard's subscriptions: one route (a venue may serve its routes on different paths)
        subs = sorted(shards[0].subscriptions, key=str) if shards else []
        light = [s for s in subs if s.channel not in (Channel.BOOK, Channel.L3)]
        return light[:_PROBE_SUBSCRIPTIONS] if light else subs[:1]

    async def probe(self, url: str, subs: list[Subscription]) -> None:
        """Measure ``url`` with a short connection of its own."""
        mux = self.mux
        clock = mux.clock
        policy = self.chooser.policy
        adapter = mux.adapter_class(self.venue)(url=url, rest_url=self.chooser.host(url).rest_url)
        opened: list[float] = []
        first: list[float] = []
        failed = asyncio.Event()

        def status(event: Event) -> None:
            if type(event) is Connected:
                opened.append(clock.monotonic())
            elif type(event) is ConnectFailed:
                failed.set()

        tap = LatencyTap(status, policy.sample_events, lambda: first.append(clock.monotonic()))
        conn = mux._connection(
            self.venue,
            -next(_probe_ids),
            adapter,
            tap,
            wait_unblocked=None,
            recorder=None,
            stale_after=None,
            stall_channels=None,
        )
        conn.feed.gate = None  # the probe's events never reach the caller: no quality accounting
        try:
            await conn.add(subs)
            conn.start()
            done = asyncio.ensure_future(tap.done.wait())
            fail = asyncio.ensure_future(failed.wait())
            try:
                await asyncio.wait({done, fail}, timeout=policy.probe_timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                done.cancel()
                fail.cancel()
        finally:
            await conn.close()
        self.absurd += tap.absurd
        self.chooser.host(url).absurd += tap.absurd
        if failed.is_set() and not opened:
            self.probe_failures += 1
            self.chooser.record_failure(url)
            _log.info("endpoint probe of %s %s failed: %s", self.venue, url, conn.stats.last_error)
            return
        first_data = first[0] - opened[0] if first and opened else None
        self.chooser.record_probe(url, conn.stats.handshake_s, first_data, tap.samples)

    # --- decisions -------------------------------------------------------------------

    async def decide(self) -> None:
        """Switch hosts if the chooser says so."""
        verdict = self.chooser.verdict()
        if verdict is None or self._switching:
            return
        url, reason = verdict
        await self.switch(url, reason)

    def _describe(self, old: str, new: str) -> str:
        def fig(url: str) -> str:
            host = self.chooser.host(url)
            forecast = host.latency.forecast
            hs = host.handshake_s
            parts = []
            if forecast is not None:
                parts.append(f"latency p90 {forecast * 1e3:.1f} ms")
            if hs is not None:
                parts.append(f"handshake {hs * 1e3:.1f} ms")
            if host.failures:
                parts.append(f"{host.failures} failed attempts")
            return ", ".join(parts) or "not measured"

        return f"{old}: {fig(old)}; {new}: {fig(new)}"

    async def switch(self, url: str, reason: EndpointReason) -> None:
        """Make ``url`` the active host and move connections by warm rollover."""
        mux = self.mux
        old_active = self.chooser.active
        detail = self._describe(old_active, url)
        self._switching = True
        try:
            self.chooser.switch(url)
            _log.info("%s: moving to %s (%s): %s", self.venue, url, reason.value, detail)
            for shard in list(mux._shards.get(self.venue, ())):
                for conn in list(shard.conns):
                    host = mux._host_of.get(conn.conn_id)
                    if host is None or host in self._wanted_hosts():
                        continue
                    before = {c.conn_id for c in shard.conns}
                    await shard.rollover(conn)
                    for new in shard.conns:
                        if new.conn_id not in before:
                            mux._dispatch(
                                EndpointChanged(
                                    self.venue,
                                    new.conn_id,
                                    host,
                                    mux._host_of.get(new.conn_id, url),
                                    reason,
                                    detail,
                                    mux.clock.time_ns(),
                                )
                            )
        finally:
            self._switching = False

    def _wanted_hosts(self) -> set[str]:
        """The hosts connections should be on: the active one, or with
        redundancy ``r`` the ``r`` best (the active one first)."""
        chooser = self.chooser
        ranked = [chooser.active, *(h.url for h in chooser.ranking() if h.url != chooser.active)]
        return set(ranked[: max(1, chooser.redundancy)])

    # --- status hooks (called by the multiplexer for this venue's status events) ------

    def on_connected(self, event: Connected) -> None:
        conn = self._conn(event.conn_id)
        url = self.mux._host_of.get(event.conn_id)
        if conn is not None and url is not None and conn.stats.handshake_s is not None:
            self.chooser.record_handshake(url, conn.stats.handshake_s)

    def on_connect_failed(self, event: ConnectFailed) -> None:
        """Count the failure against the host; fail over once there are enough."""
        mux = self.mux
        url = mux._host_of.get(event.conn_id)
        if url is None:
            return
        self.chooser.record_failure(url)
        if self.chooser.host(url).failures < self.chooser.policy.failover_after:
            return
        conn = self._conn(event.conn_id)
        target = self.chooser.next_after(url)
        if conn is None or target is None:
            return
        retarget = mux.adapter_class(self.venue)(url=target, rest_url=self.chooser.host(target).rest_url)
        conn.adapter.url = retarget.url
        conn.adapter.rest_url = retarget.rest_url
        mux._host_of[conn.conn_id] = target
        detail = self._describe(url, target)
        if self.chooser.active == url:
            self.chooser.switch(target)
        _log.warning("%s: connection %d fails on %s; next attempt on %s", self.venue, conn.conn_id, url, target)
        mux._dispatch(
            EndpointChanged(self.venue, conn.conn_id, url, target, EndpointReason.FAILOVER, detail, event.recv_ns)
        )
        self._wake.set()

    def _conn(self, conn_id: int) -> Connection | None:
        return next((c for c in self.connections() if c.conn_id == conn_id), None)

    def health(self, members: list[MemberHealth], lag_of: dict[int, LatencyHistogram]) -> list[HostHealth]:
        """Per host, what was measured, with the A/B figures of ``members``
        (the venue's redundant connections; ``lag_of`` their lag histograms)
        summed per host."""
        load = self.load()
        out = []
        for host in self.chooser.hosts:
            mine = [m for m in members if m.host == host.url]
            firsts = sum(m.firsts for m in mine)
            group = sum(m.firsts for m in members)
            lags = LatencyHistogram()
            for m in mine:
                lags.merge(lag_of[m.conn_id])
            lat = host.latency
            measured = lat.n > 0
            out.append(
                HostHealth(
                    venue=self.venue,
                    url=host.url,
                    active=host.url == self.chooser.active,
                    connections=load.get(host.url, 0),
                    handshake_ms=_ms(host.handshake_s),
                    first_data_ms=_ms(host.first_data_s),
                    latency_ms=_ms(lat.mean) if measured else None,
                    latency_p50_ms=_ms(lat.p50) if measured else None,
                    latency_p90_ms=_ms(lat.p90) if measured else None,
                    forecast_ms=_ms(lat.forecast),
                    baseline_ms=_ms(lat.baseline),
                    samples=lat.n,
                    failures=host.failures,
                    absurd_samples=host.absurd,
                    probes=host.probes,
                    switches_to=host.switches_to,
                    first_share=firsts / group if mine and group else None,
                    lag_p50_ms=_ns_ms(lags.quantile(0.5)),
                    lag_p90_ms=_ns_ms(lags.quantile(0.9)),
                )
            )
        return out


def member_health(shard: Shard, host_of: dict[int, str]) -> list[MemberHealth]:
    """Per connection of a redundant shard: its share of first copies and its lag distribution."""
    arbiter = shard.arbiter
    if arbiter is None:
        return []
    stats = [arbiter.conn(c.conn_id) for c in shard.conns]
    group = sum(s.firsts for s in stats)
    return [
        MemberHealth(
            conn_id=conn.conn_id,
            host=host_of.get(conn.conn_id, conn.adapter.url),
            firsts=st.firsts,
            duplicates=st.duplicates,
            first_share=st.firsts / group if group else 0.0,
            lag_ms=st.lag_ns / 1e6,
            lag_p50_ms=_ns_ms(st.lag_hist.quantile(0.5)),
            lag_p90_ms=_ns_ms(st.lag_hist.quantile(0.9)),
            lag_p99_ms=_ns_ms(st.lag_hist.quantile(0.99)),
            lag_buckets=[(bucket_bounds(i)[1] / 1e6, n) for i, n in enumerate(st.lag_hist.counts) if n],
        )
        for conn, st in zip(shard.conns, stats, strict=True)
    ]


def lag_histograms(shard: Shard) -> dict[int, LatencyHistogram]:
    """Per connection of a redundant shard, its lag histogram."""
    arbiter = shard.arbiter
    return {} if arbiter is None else {c.conn_id: arbiter.conn(c.conn_id).lag_hist for c in shard.conns}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _ns_ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e6


_probe_ids = itertools.count(1)
"""Probe connections get negative ids: they never reach the caller or the shards."""
