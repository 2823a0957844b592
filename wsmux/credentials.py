"""API credentials for venues whose market-data channels need a signed subscribe.

Most wsmux channels are public. A few are not (Coinbase Exchange ``level2``
and ``full``); for those the caller passes its own key to the venue's
adapter::

    from wsmux.credentials import Credentials
    creds = Credentials(key="...", secret="...", passphrase="...")
    adapter = CoinbaseAdapter(credentials=creds)

wsmux never reads credentials from the environment or from files, never logs
them and never sends them anywhere but to the venue they belong to. The
``repr``/``str`` of a :class:`Credentials` shows the key (which identifies the
account but grants nothing) and redacts the secret and passphrase, so a
credentials object that ends up in a log, a traceback or an ``Error`` event
does not leak them.

The signing algorithms are venue-specific and live in the venue's adapter
module (e.g. :func:`wsmux.exchanges.coinbase.coinbase_auth_fields`).

Two rules hold for every adapter that signs (:attr:`wsmux.Adapter.signs`):

* credentials travel only over TLS: :func:`require_tls` refuses a ``ws://``
  (or ``http://``) endpoint with :class:`~wsmux.errors.ConfigError`, unless its
  host is loopback (``127.0.0.0/8``, ``::1``, ``localhost``) *and* the caller
  opted in with ``allow_insecure_loopback=True`` (mock servers in tests); the
  adapter checks when it is built and the connection again before it connects;
* the message log never holds them: outgoing frames are recorded through
  :meth:`wsmux.Adapter.redact_outgoing`, which replaces the adapter's
  :attr:`~wsmux.Adapter.secret_fields` (Coinbase: ``key``, ``passphrase``,
  ``signature``) with ``"<redacted>"``. Replay never needs them.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import attrs

from wsmux.errors import ConfigError

__all__ = ["Credentials", "is_loopback", "require_tls"]

_CLEAR_SCHEMES = frozenset({"ws", "http"})

_REDACTED = "***"


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"Credentials.{attribute.name} must be a non-empty str")


def _optional_non_empty(_inst: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"Credentials.{attribute.name} must be a non-empty str or None")


@attrs.frozen(slots=True, repr=False)
class Credentials:
    """An API key with its secret (and passphrase, where the venue has one).

    Attributes:
        key: the API key id (shown in ``repr``).
        secret: the API secret, as the venue issued it (Coinbase Exchange:
            base64 text). Never shown.
        passphrase: the key's passphrase (Coinbase Exchange), or ``None``.
            Never shown.

    Raises:
        ConfigError: a field is empty or not a string.
    """

    key: str = attrs.field(validator=_non_empty)
    secret: str = attrs.field(validator=_non_empty)
    passphrase: str | None = attrs.field(default=None, validator=_optional_non_empty)

    def __repr__(self) -> str:
        passphrase = None if self.passphrase is None else _REDACTED
        return f"Credentials(key={self.key!r}, secret={_REDACTED!r}, passphrase={passphrase!r})"

    __str__ = __repr__


def is_loopback(host: str) -> bool:
    """True if ``host`` names this machine only (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_tls(url: str, *, allow_insecure_loopback: bool = False) -> None:
    """Refuse to send credentials to ``url`` in clear text.

    Args:
        url: the endpoint the credentials (or a signature made with them) go to.
        allow_insecure_loopback: accept ``ws://``/``http://`` when the host is
            loopback (a mock server in a test). Never accepts a remote host.

    Raises:
        ConfigError: ``url`` is not ``wss://``/``https://`` and not an allowed loopback URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _CLEAR_SCHEMES:
        return
    host = parts.hostname or ""
    if allow_insecure_loopback and is_loopback(host):
        return
    where = "a loopback host" if is_loopback(host) else f"host {host!r}"
    hint = "; pass allow_insecure_loopback=True to accept it" if is_loopback(host) else ""
    raise ConfigError(f"refusing to send credentials over unencrypted {scheme}:// to {where}{hint}")
