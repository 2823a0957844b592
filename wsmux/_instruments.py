"""Instrument lists for the multiplexer: fetch, cache with a TTL, validate symbols.

Theory of operation
-------------------
Each venue's adapter describes its instruments endpoint as requests
(:meth:`~wsmux.adapter.Adapter.instruments_requests`); :func:`fetch_instruments`
performs them through :func:`wsmux.connection.fetch_rest` (a total deadline and
a body cap per request), within the venue's REST budget, and retries a failed
request once after a short pause. The bodies are parsed by the adapter
(:meth:`~wsmux.adapter.Adapter.parse_instruments`).

:class:`InstrumentCache` keeps one :class:`VenueInstruments` per venue with the
monotonic time it was fetched; an entry older than the TTL is stale and is
fetched again the next time it is needed (the stale list keeps serving until
the new one arrives). A venue whose list could not be fetched has no entry:
its subscriptions go ahead unvalidated, and the failure is logged once per
venue and counted by the multiplexer, never blocking data.

:meth:`VenueInstruments.check` is the validation: a symbol absent from the
list raises :class:`~wsmux.errors.UnknownSymbol` naming up to five close
symbols of the same venue (``difflib``), or none when nothing is close.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Iterable, Sequence

import httpx

from wsmux._reliability.limits import RestLimiter
from wsmux.adapter import Adapter
from wsmux.clock import Clock
from wsmux.connection import fetch_rest
from wsmux.errors import SnapshotFailed, UnknownSymbol
from wsmux.model import Instrument

__all__ = ["InstrumentCache", "VenueInstruments", "close_symbols", "fetch_instruments"]

RETRY_PAUSE = 0.5
"""Seconds before the one retry of a failed instruments request."""


def close_symbols(symbol: str, known: Iterable[str], n: int = 5) -> list[str]:
    """Up to ``n`` symbols of ``known`` that look like ``symbol`` (best first,
    ``difflib`` ratio at least 0.7), compared in upper case: ``btc-usdt``
    finds ``BTC-USDT`` alone."""
    by_upper = {k.upper(): k for k in known}
    if symbol.upper() in by_upper:  # only the case is wrong: that is the answer
        return [by_upper[symbol.upper()]]
    close = difflib.get_close_matches(symbol.upper(), list(by_upper), n=n, cutoff=0.7)
    return [by_upper[c] for c in close]


class VenueInstruments:
    """One venue's instrument list, by unified symbol, and when it was fetched.

    Args:
        venue: the venue id.
        instruments: the parsed list (instruments of other venues are ignored).
        fetched_at: monotonic seconds of the fetch.
    """

    __slots__ = ("by_symbol", "fetched_at", "venue")

    def __init__(self, venue: str, instruments: Iterable[Instrument], fetched_at: float) -> None:
        self.venue = venue
        self.by_symbol = {i.symbol: i for i in instruments if i.venue == venue}
        self.fetched_at = fetched_at

    def check(self, symbol: str) -> Instrument:
        """The instrument of ``symbol``.

        Raises:
            UnknownSymbol: the venue does not list ``symbol``; the message
                names close symbols (did you mean) and how to skip validation.
        """
        found = self.by_symbol.get(symbol)
        if found is not None:
            return found
        close = close_symbols(symbol, self.by_symbol)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise UnknownSymbol(
            f"{self.venue} does not list {symbol!r}: {hint}({len(self.by_symbol)} instruments listed; "
            "Multiplexer(validate_symbols=False) skips this check)",
            venue=self.venue,
            symbol=symbol,
            suggestions=tuple(close),
        )

    def __len__(self) -> int:
        return len(self.by_symbol)


class InstrumentCache:
    """Venue instrument lists with a time to live (see the module docstring).

    Args:
        ttl: seconds a list is fresh; after that it is fetched again when needed.
    """

    def __init__(self, ttl: float = 3600.0) -> None:
        self.ttl = ttl
        self._lists: dict[str, VenueInstruments] = {}

    def get(self, venue: str) -> VenueInstruments | None:
        """The list of ``venue`` (fresh or stale), or ``None`` if never fetched."""
        return self._lists.get(venue)

    def fresh(self, venue: str, now: float) -> bool:
        """True if ``venue``'s list was fetched less than ``ttl`` seconds before ``now``."""
        entry = self._lists.get(venue)
        return entry is not None and now - entry.fetched_at < self.ttl

    def put(self, venue: str, instruments: Sequence[Instrument], now: float) -> VenueInstruments:
        """Store ``venue``'s list fetched at ``now``; returns the entry."""
        entry = self._lists[venue] = VenueInstruments(venue, instruments, now)
        return entry


async def fetch_instruments(
    http: httpx.AsyncClient,
    adapter: Adapter,
    *,
    clock: Clock,
    limiter: RestLimiter | None = None,
    attempts: int = 2,
    bodies: list[tuple[str, bytes]] | None = None,
) -> list[Instrument]:
    """Every instrument ``adapter``'s endpoint lists (all its requests).

    Each request is bounded by the venue's ``rest_deadline`` and
    ``max_rest_body`` and waits for the venue's REST budget; a request that
    fails is tried again after :data:`RETRY_PAUSE` s, ``attempts`` times in all.
    ``bodies``, when given, receives each answer's ``(url, body)`` (for the
    message log, so a replay converts sizes as the live run did).

    Raises:
        SnapshotFailed: a request failed every attempt (HTTP status, network,
            deadline, body too large; the cause is chained).
        RemoteError: the venue answered with an error body (not retried).
        MalformedMessage: a body could not be read (not retried).
    """
    limits = adapter.limits
    out: list[Instrument] = []
    for request in adapter.instruments_requests():
        for attempt in range(1, attempts + 1):
            if limiter is not None:
                delay = limiter.acquire(clock.monotonic(), request.weight)
                while delay > 0:
                    await asyncio.sleep(delay)
                    delay = limiter.blocked_for(clock.monotonic())
            try:
                response = await fetch_rest(http, request, deadline=limits.rest_deadline, max_body=limits.max_rest_body)
                if response.status_code != 200:
                    if limiter is not None:
                        limiter.on_status(
                            clock.monotonic(),
                            response.status_code,
                            response.headers.get("Retry-After"),
                            clock.time_ns() / 1e9,
                        )
                    raise SnapshotFailed(f"HTTP {response.status_code} from {request.url}")
            except (httpx.HTTPError, SnapshotFailed, OSError) as exc:
                if attempt == attempts:
                    raise SnapshotFailed(
                        f"{adapter.venue} instruments: {type(exc).__name__}: {exc} ({attempts} attempts)"
                    ) from exc
                await asyncio.sleep(RETRY_PAUSE)
                continue
            out.extend(adapter.parse_instruments(response.body))
            if bodies is not None:
                bodies.append((response.url, response.body))
            break
    return out
