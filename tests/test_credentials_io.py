"""Credentials on the wire and in the message log (issue 10, items 9 and 10).

* The message log never holds credentials: outgoing frames are recorded through
  ``Adapter.redact_outgoing`` (the adapter's ``secret_fields`` blanked), so a
  recorded signed Coinbase subscribe has neither key, passphrase nor signature
  — in the decoded records or anywhere in the raw file bytes.
* Credentials never go out over plain ``ws://``: refused with ConfigError unless
  the host is loopback *and* the caller passed ``allow_insecure_loopback=True``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import ClassVar

import pytest

from wsmux import Backoff, Channel, Error, Multiplexer, Resynced, book
from wsmux.adapter import Adapter
from wsmux.clock import ManualClock
from wsmux.credentials import Credentials, is_loopback, require_tls
from wsmux.errors import ConfigError
from wsmux.exchanges.binance import BinanceSpotAdapter
from wsmux.exchanges.coinbase import CoinbaseAdapter, coinbase_auth_fields
from wsmux.log import Direction, read_log
from wsmux.testing import MockCoinbase

SECRET = "d3NtdXgtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
CREDS = Credentials("wsmux-test-key-7f3a", SECRET, "wsmux-test-passphrase-91c2")
WAIT = 20.0


# --- item 9: redaction in the message log ------------------------------------------------------


def test_redact_outgoing_blanks_secret_fields_at_any_depth_and_keeps_the_rest() -> None:
    adapter = CoinbaseAdapter(credentials=CREDS, clock=ManualClock())
    (signed,) = adapter.subscribe(list(book("coinbase", "BTC-USD")))
    assert CREDS.passphrase in signed  # type: ignore[operator]
    redacted = adapter.redact_outgoing(signed)
    msg = json.loads(redacted)
    assert msg["key"] == msg["passphrase"] == msg["signature"] == "<redacted>"
    assert msg["type"] == "subscribe" and msg["channels"] == json.loads(signed)["channels"]
    assert msg["timestamp"] == json.loads(signed)["timestamp"]  # not a secret: replay may show it
    nested = adapter.redact_outgoing(b'{"a":[{"signature":"abc"}],"b":1}')
    assert nested == b'{"a":[{"signature":"<redacted>"}],"b":1}'
    assert adapter.redact_outgoing("ping") == "ping"  # nothing secret, not JSON: as is
    assert "abc" not in adapter.redact_outgoing('{"signature": "abc"')  # undecodable, names one: placeholder
    public = BinanceSpotAdapter()
    frame = '{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}'
    assert public.redact_outgoing(frame) is frame  # no secret fields: untouched, no work


def test_every_adapter_that_signs_declares_what_to_redact() -> None:
    from wsmux import exchanges

    for venue in exchanges.names():
        cls = exchanges.get(venue)
        if "credentials" in cls.__init__.__code__.co_varnames:
            assert cls.secret_fields, f"{venue} takes credentials but redacts nothing"


async def test_recorded_signed_subscribe_holds_no_secret(tmp_path: Path) -> None:
    clock = ManualClock(wall_ns=1_765_000_000_000_000_000)
    timestamp = str(clock.time_ns() // 1_000_000_000)
    signature = coinbase_auth_fields(CREDS, timestamp)["signature"]
    adapter_cls = CoinbaseAdapter.configured(credentials=CREDS, clock=clock, allow_insecure_loopback=True)
    async with MockCoinbase(["BTC-USD"], seed=5, credentials=CREDS) as mock:
        async with Multiplexer(
            endpoints={"coinbase": mock.endpoint},
            adapters={"coinbase": adapter_cls},
            backoff=Backoff(initial=0.01, cap=0.05),
            record=str(tmp_path),
        ) as mux:
            stream = mux.subscribe(book("coinbase", "BTC-USD"))
            async with asyncio.timeout(WAIT):
                async for event in stream:
                    assert not isinstance(event, Error), event
                    if isinstance(event, Resynced) and event.channel is Channel.BOOK:
                        break  # the mock verified the signature: the real one went out
            await stream.aclose()
    files = sorted(tmp_path.glob("*.wslog"))
    records = list(read_log(files))
    sent = [r for r in records if r.kind is Direction.OUT]
    signed = [m for m in map(json.loads, (r.data for r in sent)) if m["type"] == "subscribe" and "level2" in str(m)]
    assert signed and all(m["signature"] == m["key"] == m["passphrase"] == "<redacted>" for m in signed)
    secrets = [CREDS.key, CREDS.passphrase, CREDS.secret, signature]
    for record in records:
        text = record.data.decode("latin-1") if isinstance(record.data, bytes) else record.data
        assert not [s for s in secrets if s and s in text], record
        assert not [s for s in secrets if s and s in (record.url or "")], record
    raw = b"".join(f.read_bytes() for f in files)
    assert not [s for s in secrets if s and s.encode() in raw]


# --- item 10: no credentials over plain ws:// ------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ws://ws-feed.exchange.coinbase.com",
        "ws://10.0.0.7:8080/",
        "ws://127.0.0.1:9000",
        "ws://[::1]:9000",
        "ws://localhost",
    ],
)
async def test_credentials_over_plain_ws_are_refused_without_opt_in(url: str) -> None:
    with pytest.raises(ConfigError, match="unencrypted ws://"):
        CoinbaseAdapter(url=url, credentials=CREDS)
    cls = CoinbaseAdapter.configured(credentials=CREDS)
    async with Multiplexer(endpoints={"coinbase": url}, adapters={"coinbase": cls}) as mux:
        with pytest.raises(ConfigError, match="unencrypted ws://"):  # at once, nothing subscribed
            mux.subscribe(book("coinbase", "BTC-USD"))
        assert mux.connections() == []


@pytest.mark.parametrize(
    "url", ["ws://ws-feed.exchange.coinbase.com", "ws://10.0.0.7:8080/", "ws://127.0.0.1.evil.com"]
)
def test_the_opt_in_never_covers_a_remote_host(url: str) -> None:
    with pytest.raises(ConfigError, match="unencrypted ws://"):
        CoinbaseAdapter(url=url, credentials=CREDS, allow_insecure_loopback=True)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:9000", "ws://127.3.4.5", "ws://[::1]:1", "ws://localhost:80/x"])
def test_loopback_with_explicit_opt_in_is_accepted(url: str) -> None:
    adapter = CoinbaseAdapter(url=url, credentials=CREDS, allow_insecure_loopback=True)
    assert adapter.signs and adapter.url == url


def test_tls_and_public_adapters_are_never_refused() -> None:
    CoinbaseAdapter(url="wss://ws-feed.exchange.coinbase.com", credentials=CREDS)
    assert not CoinbaseAdapter(url="ws://10.0.0.7").signs  # no credentials: nothing to protect
    assert not BinanceSpotAdapter(url="ws://10.0.0.7").signs
    require_tls("https://api.exchange.coinbase.com")
    with pytest.raises(ConfigError):
        require_tls("http://api.exchange.coinbase.com")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("LOCALHOST")
    assert not is_loopback("127.0.0.1.example.com") and not is_loopback("10.0.0.1") and not is_loopback("")


class _SigningToy(Adapter):
    """A minimal adapter that signs and builds its URL per connection: the
    connection itself must refuse a plain-text URL, whatever the constructor checked."""

    venue: ClassVar[str] = "signing-toy"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.TRADES})
    default_url: ClassVar[str] = "wss://toy.example"

    @property
    def signs(self) -> bool:
        return True

    def connect_url(self, subscriptions: object) -> str:  # type: ignore[override]
        return "ws://203.0.113.9/feed"

    def subscribe(self, subscriptions: object) -> list[str]:  # type: ignore[override]
        return []

    def unsubscribe(self, subscriptions: object) -> list[str]:  # type: ignore[override]
        return []

    def parse(self, frame: bytes | str, recv_ns: int) -> list[object]:  # type: ignore[override]
        return []

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        return symbol


async def test_the_connection_refuses_a_plain_text_url_for_a_signing_adapter() -> None:
    from wsmux import trades

    class _NeverConnects:
        attempts = 0

        async def connect(self, url: str, **kwargs: object) -> object:
            _NeverConnects.attempts += 1
            raise AssertionError(f"tried to connect to {url}")

    async with Multiplexer(adapters={"signing-toy": _SigningToy}, transport=_NeverConnects()) as mux:  # type: ignore[arg-type]
        stream = mux.subscribe(trades("signing-toy", "BTC-USD"))
        async with asyncio.timeout(WAIT):
            async for event in stream:
                if isinstance(event, Error):
                    break
        assert "unencrypted ws://" in event.message and _NeverConnects.attempts == 0  # type: ignore[attr-defined]
        assert mux.connections()[0].state == "failed"
        await stream.aclose()
