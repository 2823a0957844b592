"""What a text capture holds, read from the capture itself: venue, protocol
version, subscriptions and the REST files beside it.

A capture in the common text format (``NAME.ws.N.0`` with ``NAME.http.N.0`` /
``NAME.0`` beside it, see :mod:`wsmux.log._text`) does not say which wsmux
adapter reads it. :func:`detect_capture` works it out so that
``wsmux replay FILE`` needs no flags:

* **venue and protocol version** from the recorded WebSocket URL, matched
  against every registered adapter's endpoints (``wss://ws.kraken.com`` is
  Kraken v1, ``wss://ws.kraken.com/v2`` v2), then from the frames (a Kraken
  capture without a URL: array frames and ``"event"`` keys are v1), then from
  the file name (``BINANCE_US`` → ``binance-us``, ``BINANCE_FUTURES`` →
  ``binance-usdm``, ``BINANCE_DELIVERY`` → ``binance-coinm``);
* **subscriptions** from the ``configuration:`` line of ``NAME.0`` (unified
  symbols), the recorded URL (Binance combined streams) and the recorded
  subscribe frames (Binance, Coinbase, Kraken v1/v2, OKX); recorded channels
  wsmux has no channel for (``kline_5m``, ``spread`` on v2) are listed in
  :attr:`Capture.unsupported_channels`;
* **REST files**: every ``NAME.http.*`` and ``NAME.0`` in the same folder.

A capture of a venue wsmux has no adapter for raises
:class:`~wsmux.errors.UnsupportedVenue` (KuCoin, Deribit, BitMEX at the time
of writing). Kraken Futures captures go to ``kraken-futures-inverse`` when
their subscribe frames name inverse products (``PI_``/``FI_``).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import attrs
import orjson

from wsmux import exchanges
from wsmux.errors import LocalError, UnknownVenue, UnsupportedVenue
from wsmux.log._format import Direction
from wsmux.log._reader import LogInfo, ReadStats
from wsmux.log._text import import_text_recording, text_recording_conn_id
from wsmux.model import Channel
from wsmux.subscriptions import Subscription

__all__ = ["Capture", "capture_info", "capture_session", "detect_capture", "is_text_capture_name"]

_CAPTURE_NAME: Final = re.compile(r"^(?P<session>[^.]+)\.(?:(?:ws|http)\.\d+\.)?\d+$")
_WS_NAME: Final = re.compile(r"\.ws\.\d+\.\d+$")
_Wanted = tuple[Channel, str]
"""A recorded subscription before it is checked: (channel, unified symbol)."""
_HEAD_RECORDS: Final = 400
"""How many records of a capture are read to find its URL and subscribe frames."""

_NAME_TO_VENUE: Final = {
    "binance_us": "binance-us",
    "binance_futures": "binance-usdm",
    "binance_delivery": "binance-coinm",
    "coinbase_advanced": "coinbase-advanced",
}
"""Capture file names (cryptofeed's) whose venue id is not the lower-cased name."""

_LEGACY_HOSTS: Final = {
    "ws-feed.pro.coinbase.com": "coinbase",
    "ws-feed-public.sandbox.pro.coinbase.com": "coinbase",
}
"""Hosts a venue used when older captures were made (coinbase-exchange.md)."""

_CONFIG_CHANNELS: Final = {
    "l2_book": Channel.BOOK,
    "book": Channel.BOOK,
    "l3_book": Channel.L3,
    "trades": Channel.TRADES,
    "ticker": Channel.QUOTES,
    "quotes": Channel.QUOTES,
    "funding": Channel.FUNDING,
    "liquidations": Channel.LIQUIDATIONS,
    "open_interest": Channel.OPEN_INTEREST,
    "candles": Channel.CANDLES,
}
"""Channel names of the ``configuration:`` line (the recorder's) → wsmux channels."""

_BINANCE_STREAMS: Final = (
    ("depth", Channel.BOOK),
    ("bookTicker", Channel.QUOTES),
    ("aggTrade", Channel.TRADES),
    ("trade", Channel.TRADES),
    ("markPrice", Channel.FUNDING),
    ("forceOrder", Channel.LIQUIDATIONS),
    ("kline_1m", Channel.CANDLES),  # one-minute only: other intervals stay unsupported
)
_BINANCE_QUOTES: Final = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "BIDR", "IDRT", "BKRW", "DAI", "PAX", "USD",
    "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "EUR", "GBP", "TRY", "AUD", "BRL", "RUB",
    "UAH", "NGN", "ZAR", "JPY", "PLN", "RON", "ARS", "MXN", "COP", "CZK", "VAI",
)  # fmt: skip
"""Quote assets, longest first where one ends another: splits ``NKNUSDT`` → ``NKN-USDT``."""

_COINBASE_CHANNELS: Final = {
    "level2": Channel.BOOK,
    "level2_batch": Channel.BOOK,
    "level2_50": Channel.BOOK,
    "full": Channel.L3,
    "ticker": Channel.QUOTES,
    "ticker_batch": Channel.QUOTES,
    "matches": Channel.TRADES,
    "market_trades": Channel.TRADES,
    "candles": Channel.CANDLES,
}
_KRAKEN_CHANNELS: Final = {
    "book": Channel.BOOK,
    "trade": Channel.TRADES,
    "ticker": Channel.QUOTES,
    "spread": Channel.QUOTES,
}
_KRAKEN_V1_ASSETS: Final = {"XBT": "BTC", "XDG": "DOGE"}
_KRAKEN_FUTURES_FEEDS: Final = {
    "book": Channel.BOOK,
    "trade": Channel.TRADES,
    "ticker_lite": Channel.QUOTES,
    "ticker": Channel.OPEN_INTEREST,
}
_OKX_CHANNELS: Final = {
    "books": Channel.BOOK,
    "books5": Channel.BOOK,
    "books-l2-tbt": Channel.BOOK,
    "books50-l2-tbt": Channel.BOOK,
    "trades": Channel.TRADES,
    "tickers": Channel.QUOTES,
    "bbo-tbt": Channel.QUOTES,
    "funding-rate": Channel.FUNDING,
    "open-interest": Channel.OPEN_INTEREST,
    "candle1m": Channel.CANDLES,
}


@attrs.frozen
class Capture:
    """What :func:`detect_capture` found out about one capture file.

    Attributes:
        path: the file.
        venue: the wsmux venue id that reads it.
        endpoint: the recorded WebSocket URL ("" when the file has none).
        subscriptions: what the recorded connection carried, as far as the
            capture says.
        rest_files: the REST files of the same session (neighbours).
        unsupported_channels: recorded channel names wsmux has no channel for.
        how: how the venue was decided ("url", "frames", "name" or "given").
    """

    path: Path
    venue: str
    endpoint: str
    subscriptions: tuple[Subscription, ...]
    rest_files: tuple[Path, ...]
    unsupported_channels: tuple[str, ...]
    how: str


def is_text_capture_name(path: Path) -> bool:
    """True for the file names of the text format (``NAME.ws.N.0``, ``NAME.http.N.0``, ``NAME.0``)."""
    return _CAPTURE_NAME.match(path.name) is not None


def capture_session(path: Path) -> str:
    """The session name of a capture file (``BINANCE_US.ws.1.0`` → ``BINANCE_US``)."""
    m = _CAPTURE_NAME.match(path.name)
    return m["session"] if m else path.name.split(".", 1)[0]


def _neighbours(path: Path) -> list[Path]:
    session = capture_session(path)
    try:
        siblings = sorted(path.parent.iterdir())
    except OSError:
        return []
    return [p for p in siblings if p.is_file() and is_text_capture_name(p) and capture_session(p) == session]


def _head(path: Path) -> Iterator[tuple[Direction, str | None, bytes | str]]:
    for n, record in enumerate(import_text_recording(path)):
        if n >= _HEAD_RECORDS:
            return
        yield record.kind, record.url, record.data


def _configuration(path: Path) -> Any:
    """The ``configuration:`` JSON of a file (read from its end), or None."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 1_000_000))
            tail = fh.read()
    except OSError:
        return None
    at = tail.rfind(b"\nconfiguration: ")
    if at == -1:
        if not tail.startswith(b"configuration: "):
            return None
        at = -1
    line = tail[at + 1 :].split(b"\n", 1)[0]
    try:
        return orjson.loads(line[len(b"configuration: ") :])
    except orjson.JSONDecodeError:
        return None


def _venue_of_url(url: str) -> str | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in _LEGACY_HOSTS:
        return _LEGACY_HOSTS[host]
    path = parts.path.rstrip("/")
    best: tuple[int, str] | None = None
    for venue in exchanges.names():
        cls = exchanges.get(venue)
        for known in (cls.default_url, *cls.backup_urls):
            k = urlsplit(known)
            kpath = k.path.rstrip("/")
            if (k.hostname or "").lower() == host and (path == kpath or path.startswith(kpath + "/")):
                score = len(kpath)
                if best is None or score > best[0]:
                    best = (score, venue)
    return best[1] if best else None


def _venue_of_name(path: Path) -> str:
    name = capture_session(path).lower()
    return _NAME_TO_VENUE.get(name, name.replace("_", "-"))


def _kraken_version(frames: Iterable[bytes | str]) -> str | None:
    for frame in frames:
        text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
        text = text.lstrip()
        if text.startswith("[") or '"event"' in text:
            return "kraken-v1"
        if '"channel"' in text or '"method"' in text:
            return "kraken"
    return None


def _kraken_futures_inverse(sent: Iterable[bytes | str]) -> bool:
    """True if the recorded subscribe frames name inverse products (``PI_``/``FI_``)."""
    for frame in sent:
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            continue
        products = msg.get("product_ids") if isinstance(msg, dict) else None
        if isinstance(products, list) and any(str(p).upper().startswith(("PI_", "FI_")) for p in products):
            return True
    return False


def _kraken_futures_symbol(product: str) -> str:
    from wsmux.exchanges.kraken_futures import kraken_futures_unified

    found = kraken_futures_unified(product)
    return found[0] if found else product


def _binance_symbol(venue: str, native: str) -> str | None:
    native = native.upper()
    suffix = ""
    if "_" in native:
        native, _, tail = native.partition("_")
        suffix = "-PERP" if tail == "PERP" else (f"-20{tail}" if tail.isdigit() and len(tail) == 6 else "?")
    elif venue == "binance-usdm":
        suffix = "-PERP"
    if suffix == "?":
        return None
    for quote in _BINANCE_QUOTES:
        if native.endswith(quote) and len(native) > len(quote):
            return f"{native[: -len(quote)]}-{quote}{suffix}"
    return None


def _binance_streams(venue: str, streams: Iterable[str], subs: list[_Wanted], unsupported: set[str]) -> None:
    for stream in streams:
        native, _, kind = str(stream).partition("@")
        channel = next((ch for prefix, ch in _BINANCE_STREAMS if kind.startswith(prefix)), None)
        if channel is None:
            unsupported.add(kind.split("@", 1)[0])
            continue
        symbol = _binance_symbol(venue, native)
        if symbol is not None:
            subs.append((channel, symbol))


def _from_url(venue: str, url: str, subs: list[_Wanted], unsupported: set[str]) -> None:
    if not venue.startswith("binance"):
        return
    parts = urlsplit(url)
    streams = [s for value in parse_qs(parts.query).get("streams", []) for s in value.split("/")]
    if parts.path.startswith("/ws/"):
        streams.append(parts.path[4:])
    _binance_streams(venue, streams, subs, unsupported)


def _kraken_pair(pair: str) -> str:
    base, _, quote = pair.partition("/")
    return f"{_KRAKEN_V1_ASSETS.get(base, base)}-{_KRAKEN_V1_ASSETS.get(quote, quote)}"


def _okx_symbol(inst: str) -> str:
    return inst[: -len("-SWAP")] + "-PERP" if inst.endswith("-SWAP") else inst


def _from_frame(venue: str, data: bytes | str, subs: list[_Wanted], unsupported: set[str]) -> None:
    """Subscriptions named by one recorded outgoing frame."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(msg, dict):
        return
    pairs: list[tuple[str, list[str]]] = []  # (venue channel name, symbols)
    table: dict[str, Channel] = {}
    to_symbol: Callable[[str], str] = str
    if venue.startswith("binance") and str(msg.get("method", "")).upper() == "SUBSCRIBE":
        _binance_streams(venue, msg.get("params") or [], subs, unsupported)
        return
    if venue.startswith("coinbase") and msg.get("type") == "subscribe":
        table = _COINBASE_CHANNELS
        products = [str(p) for p in msg.get("product_ids") or []]
        for ch in msg.get("channels") or ([msg["channel"]] if "channel" in msg else []):
            if isinstance(ch, dict):
                pairs.append((str(ch.get("name")), [str(p) for p in ch.get("product_ids") or products]))
            else:
                pairs.append((str(ch), products))
    elif venue == "kraken-v1" and msg.get("event") == "subscribe":
        table, to_symbol = _KRAKEN_CHANNELS, _kraken_pair
        pairs.append((str((msg.get("subscription") or {}).get("name")), [str(p) for p in msg.get("pair") or []]))
    elif venue == "kraken" and msg.get("method") == "subscribe":
        params = msg.get("params") or {}
        table, to_symbol = _KRAKEN_CHANNELS, _kraken_pair
        pairs.append((str(params.get("channel")), [str(p) for p in params.get("symbol") or []]))
    elif venue.startswith("kraken-futures") and msg.get("event") == "subscribe":
        table, to_symbol = _KRAKEN_FUTURES_FEEDS, _kraken_futures_symbol
        pairs.append((str(msg.get("feed")), [str(p) for p in msg.get("product_ids") or []]))
    elif venue == "okx" and msg.get("op") == "subscribe":
        table, to_symbol = _OKX_CHANNELS, _okx_symbol
        for arg in msg.get("args") or []:
            if isinstance(arg, dict):
                pairs.append((str(arg.get("channel")), [str(arg.get("instId"))]))
    for name, symbols in pairs:
        channel = table.get(name)
        if channel is None:
            unsupported.add(name)
            continue
        subs.extend((channel, to_symbol(s)) for s in symbols)


def _from_configuration(venue: str, config: Any, subs: list[_Wanted], unsupported: set[str]) -> None:
    if not isinstance(config, dict):
        return
    for name, symbols in config.items():
        channel = _CONFIG_CHANNELS.get(str(name))
        if channel is None or not isinstance(symbols, list):
            unsupported.add(str(name))
            continue
        subs.extend((channel, str(s)) for s in symbols)


def _usable(venue: str, wanted: Iterable[_Wanted], unsupported: set[str]) -> tuple[Subscription, ...]:
    """The subscriptions the venue's adapter accepts (each once, in order);
    symbols it cannot have (a recorder's own spelling of a future) are left out."""
    adapter = exchanges.get(venue)()
    out: dict[Subscription, None] = {}
    for channel, symbol in wanted:
        if channel not in adapter.channels:
            unsupported.add(channel.value)
            continue
        try:
            sub = Subscription(venue, channel, symbol)
            adapter.check(sub)
        except LocalError:
            continue
        out[sub] = None
    return tuple(out)


def detect_capture(path: str | Path, *, venue: str | None = None) -> Capture:
    """Work out how to replay one text capture file.

    Args:
        path: a capture file (``NAME.ws.N.0``; REST-only files work too).
        venue: the venue id, when the caller knows better.

    Returns:
        What the capture holds.

    Raises:
        UnsupportedVenue: the capture is from a venue wsmux has no adapter for.
        UnknownVenue: nothing tells the venue (pass ``venue``).
        LogError: the file cannot be read or is not in the text format.
    """
    p = Path(path)
    neighbours = _neighbours(p)
    if _WS_NAME.search(p.name) or not is_text_capture_name(p):
        ws_files = [p]  # (a file named otherwise is read as one connection)
    else:
        ws_files = [f for f in neighbours if _WS_NAME.search(f.name)][:1]
    endpoint = ""
    sent: list[bytes | str] = []
    received: list[bytes | str] = []
    for f in ws_files:
        for kind, url, data in _head(f):
            if kind is Direction.OPEN and url and not endpoint:
                endpoint = url
            elif kind is Direction.OUT:
                sent.append(data)
                endpoint = endpoint or (url or "")
            elif kind is Direction.IN and len(received) < 20:
                received.append(data)
    how = "given"
    if venue is None:
        venue, how = _venue_of_url(endpoint) if endpoint else None, "url"
        named = _venue_of_name(p)
        if venue is None and named.startswith("kraken") and named != "kraken-futures":
            venue, how = _kraken_version(received), "frames"
        if venue is None:
            venue, how = named, "name"
        if venue == "kraken-futures" and _kraken_futures_inverse(sent):
            venue = "kraken-futures-inverse"
    try:
        exchanges.get(venue)
    except UnknownVenue as exc:
        if how == "name" and _CAPTURE_NAME.match(p.name):
            raise UnsupportedVenue(
                f"{p.name}: venue {venue!r} is not supported by wsmux yet"
                + (f" (recorded from {endpoint})" if endpoint else "")
            ) from exc
        raise UnknownVenue(
            f"{p.name}: cannot tell the venue of this capture; name it with venue= (CLI: --text-venue)"
        ) from exc
    subs: list[_Wanted] = []
    unsupported: set[str] = set()
    rest_files: list[Path] = []
    for f in neighbours:
        if f == p or _WS_NAME.search(f.name):
            continue
        rest_files.append(f)
        _from_configuration(venue, _configuration(f), subs, unsupported)
    if endpoint:
        _from_url(venue, endpoint, subs, unsupported)
    for frame in sent:
        _from_frame(venue, frame, subs, unsupported)
    usable = _usable(venue, subs, unsupported)
    return Capture(p, venue, endpoint, usable, tuple(rest_files), tuple(sorted(unsupported)), how)



def capture_info(paths: Iterable[str | Path]) -> LogInfo:
    """Summarise text captures the way :func:`~wsmux.log.log_info` summarises
    wsmux logs (``wsmux log info`` on a capture).

    Raises:
        UnknownVenue, LogError: as for :func:`detect_capture` (a venue wsmux
            does not support is named as such, not raised).
    """
    files = [Path(p) for p in paths]
    counts: dict[Direction, int] = {}
    conns: set[int] = set()
    venues: dict[str, None] = {}
    endpoints: dict[str, None] = {}
    subs: dict[str, None] = {}
    first: int | None = None
    last: int | None = None
    size = 0
    for f in files:
        try:
            capture = detect_capture(f)
        except UnsupportedVenue:
            venues[f"{_venue_of_name(f)} (not supported by wsmux yet)"] = None
        else:
            venues[capture.venue] = None
            if capture.endpoint:
                endpoints[capture.endpoint] = None
            subs.update((str(s), None) for s in capture.subscriptions)
        conn = text_recording_conn_id(f)
        for record in import_text_recording(f):
            counts[record.kind] = counts.get(record.kind, 0) + 1
            conns.add(conn)
            first = record.recv_ns if first is None else min(first, record.recv_ns)
            last = record.recv_ns if last is None else max(last, record.recv_ns)
        size += f.stat().st_size
    records = sum(counts.values())
    stats = ReadStats(files=len(files), records=records)
    return LogInfo(
        paths=tuple(files),
        venues=tuple(venues),
        endpoints=tuple(endpoints),
        subscriptions=tuple(subs),
        first_ns=first,
        last_ns=last,
        records=records,
        counts=types.MappingProxyType(dict(sorted(counts.items()))),
        connections=tuple(sorted(conns)),
        file_bytes=size,
        stats=stats,
    )
