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
"""

from __future__ import annotations

import attrs

from wsmux.errors import ConfigError

__all__ = ["Credentials"]

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
