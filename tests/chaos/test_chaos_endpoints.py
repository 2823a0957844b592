"""Endpoint choice against two hosts of one venue: one mock behind two proxies.

Both proxies forward to the same MockBinance, so both "hosts" carry the same
update ids and trade ids (as two hosts of a real venue do); they differ only
in the delay their proxy adds. wsmux must move to the fast host, move away
from it when its delay rises, fail over when a host refuses connections, and
never show a ``Gap`` for a switch (warm rollover, or the arbiter with
redundancy). Every wait is for a specific event, bounded by a timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from chaoskit import BinanceVenue, Harness, make_mux, ticking

from wsmux import EndpointChanged, EndpointPolicy, EndpointReason, Gap, Multiplexer
from wsmux.testing import ChaosProxy, MockBinance

QUICK = EndpointPolicy(
    check_every=0.2, reevaluate_every=0.5, sample_events=8, probe_timeout=3.0, min_gain_s=0.01, failover_after=2
)
"""Timers made fast for tests; a 10 ms gain is far above the loopback noise."""


@contextlib.asynccontextmanager
async def _two_hosts(
    seed: int, first_delay: float = 0.0, second_delay: float = 0.0
) -> AsyncIterator[tuple[BinanceVenue, ChaosProxy, ChaosProxy]]:
    """One mock Binance behind two proxies: two "hosts" of one venue."""
    async with (
        MockBinance(["BTC-USDT"], seed=seed) as binance,
        ChaosProxy.to(binance, delay=first_delay) as first,
        ChaosProxy.to(binance, delay=second_delay) as second,
    ):
        yield BinanceVenue(binance), first, second


def _moves(events: list[object]) -> list[EndpointChanged]:
    return [e for e in events if isinstance(e, EndpointChanged)]


async def test_picks_the_fast_host_and_moves_when_it_slows_without_a_gap() -> None:
    async with _two_hosts(301, 0.12) as (venue, slow, fast):
        slow_ep, fast_ep = slow.endpoint(venue.mock), fast.endpoint(venue.mock)
        # the slow host is listed first: wsmux starts there and must find the fast one
        async with make_mux([venue], endpoints={"binance": [slow_ep, fast_ep]}, endpoint_choice=QUICK) as mux:
            h = Harness(mux, [venue])
            gaps: list[Gap] = []
            observe = h.ledger.observe
            h.ledger.observe = lambda e: (gaps.append(e) if isinstance(e, Gap) else None, observe(e))  # type: ignore[method-assign]
            async with ticking(venue, 0.01):
                await h.synced()
                seen = await h.until(lambda e: isinstance(e, EndpointChanged), timeout=30)
                first = _moves(seen)[-1]
                assert (first.old_url, first.new_url) == (slow_ep.url, fast_ep.url)
                assert first.reason in (EndpointReason.FASTER, EndpointReason.DEGRADED)
                hosts = {host.url: host for host in mux.endpoint_hosts("binance")}
                assert hosts[fast_ep.url].active and not hosts[slow_ep.url].active
                fast_ms, slow_ms = hosts[fast_ep.url].forecast_ms, hosts[slow_ep.url].forecast_ms
                assert fast_ms is not None and slow_ms is not None and fast_ms + 50 < slow_ms
                assert [c.url.startswith(fast_ep.url) for c in mux.connections()] == [True]

                # the fast host degrades: wsmux moves back before anything breaks
                fast.delay = 0.25
                seen = await h.until(lambda e: isinstance(e, EndpointChanged), timeout=30)
                second = _moves(seen)[-1]
                assert (second.old_url, second.new_url) == (fast_ep.url, slow_ep.url)
                assert second.reason is EndpointReason.DEGRADED  # it left before anything broke
                assert [c.url.startswith(slow_ep.url) for c in mux.connections()] == [True]
            await h.settle("binance")
            assert h.ledger.book_gaps["binance"] == 0, "a warm switch shows no Gap"
            assert h.ledger.trade_gaps["binance"] == 0, gaps
            assert h.ledger.count(Gap) == 0
            assert not h.ledger.violations, h.ledger.violations[:5]
            health = mux.health()
            assert {e.url for e in health.endpoints} == {slow_ep.url, fast_ep.url}
            assert sum(s.rollovers for s in health.shards) == 2
            await h.stream.aclose()


async def test_redundant_connections_spread_over_hosts_and_report_who_leads() -> None:
    async with _two_hosts(302, 0.06) as (venue, slow, fast):
        slow_ep, fast_ep = slow.endpoint(venue.mock), fast.endpoint(venue.mock)
        policy = EndpointPolicy(check_every=0.2, reevaluate_every=60.0, sample_events=8, probe_timeout=3.0)
        async with make_mux(
            [venue], endpoints={"binance": [slow_ep, fast_ep]}, endpoint_choice=policy, redundancy=2
        ) as mux:
            h = Harness(mux, [venue])
            async with ticking(venue, 0.01):
                await h.synced()
                # both hosts carry a member: the A/B figures build up on live data
                assert sorted(mux._host_of[c.conn_id] for c in mux.connections()) == sorted([slow_ep.url, fast_ep.url])
                await h.until(lambda _: _lag_samples(mux, slow_ep.url) >= 10, timeout=30)
            members = {m.host: m for m in mux.health().shards[0].members}
            assert members[fast_ep.url].first_share > 0.8
            slow = members[slow_ep.url]
            # the slow member trails by its proxy's 60 ms (plus scheduling): the fast one's lead
            assert slow.lag_p50_ms is not None and 55 < slow.lag_p50_ms < 90, slow
            assert sum(n for _, n in slow.lag_buckets) >= 10
            assert members[fast_ep.url].lag_ms < members[slow_ep.url].lag_ms
            hosts = {e.url: e for e in mux.health().endpoints}
            assert hosts[fast_ep.url].first_share is not None and hosts[fast_ep.url].first_share > 0.8
            assert h.ledger.book_gaps["binance"] == 0
            await h.stream.aclose()


def _lag_samples(mux: Multiplexer, url: str) -> int:
    """Lag samples of the member on ``url`` so far."""
    shards = mux.health().shards
    members = [m for m in shards[0].members if m.host == url] if shards else []
    return sum(n for m in members for _, n in m.lag_buckets)


async def test_fails_over_when_the_host_refuses_connections() -> None:
    async with _two_hosts(303) as (venue, first, second):
        first.refuse = True
        first_ep, second_ep = first.endpoint(venue.mock), second.endpoint(venue.mock)
        policy = EndpointPolicy(check_every=0.2, reevaluate_every=60.0, probe_timeout=3.0, failover_after=2)
        async with make_mux([venue], endpoints={"binance": [first_ep, second_ep]}, endpoint_choice=policy) as mux:
            h = Harness(mux, [venue])
            seen = await h.until(lambda e: isinstance(e, EndpointChanged), timeout=30)
            move = _moves(seen)[-1]
            assert move.reason is EndpointReason.FAILOVER
            assert (move.old_url, move.new_url) == (first_ep.url, second_ep.url)
            async with ticking(venue, 0.01):
                await h.synced()
            assert first.stats.refused >= 2
            assert [c.url.startswith(second_ep.url) for c in mux.connections()] == [True]
            await h.stream.aclose()
