"""The wsmux exception tree.

Every exception raised by wsmux derives from :class:`WsmuxError`. The tree
splits by *who* broke the rules, in the manner of h11:

* :class:`LocalError` — you (the caller) misused the API: an unknown venue, a
  bad symbol, a closed multiplexer. These also subclass the builtin they
  resemble (``ValueError``, ``KeyError``, ``RuntimeError``) so generic handlers
  keep working.
* :class:`RemoteError` — the exchange sent something that breaks its own
  protocol: malformed JSON, missing fields, a rejected subscription.
* :class:`TransportError` — the network failed: connect timeout, connection
  closed, HTTP failure of a snapshot request.
* :class:`BookError` — an order book rule was broken (gap, checksum mismatch,
  crossed book). A gap is *data*, not an exception, in the live pipeline (it
  becomes a :class:`wsmux.Gap` event); this class exists for direct users of
  :mod:`wsmux.book` who ask for strict behaviour.
* :class:`LogError` — a message-log file is corrupt or unreadable.

Foreign exceptions are wrapped at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "BookError",
    "ChecksumMismatch",
    "ClosedError",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionClosed",
    "EngineError",
    "LocalError",
    "LogError",
    "LoopThreadDied",
    "MalformedMessage",
    "NotStarted",
    "NotSubscribed",
    "RemoteError",
    "RestBodyTooLarge",
    "RestDeadlineExceeded",
    "SequenceGap",
    "SnapshotFailed",
    "StreamOverflow",
    "SubscriptionRejected",
    "UnknownMessage",
    "SyncTimeout",
    "TransportError",
    "UnknownChannel",
    "UnknownSymbol",
    "UnsupportedVenue",
    "UnknownVenue",
    "WsmuxError",
]


class WsmuxError(Exception):
    """Base of every error raised by wsmux."""


# --- local: the caller misused the API ------------------------------------


class LocalError(WsmuxError):
    """The caller misused the API."""


class ConfigError(LocalError, ValueError):
    """An argument or configuration value is invalid."""


class UnknownVenue(LocalError, KeyError):
    """No adapter is registered under that venue id."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want prose
        return str(self.args[0]) if self.args else "unknown venue"


class UnsupportedVenue(UnknownVenue):
    """Data of a real venue wsmux has no adapter for yet (e.g. a capture from
    KuCoin): ``wsmux replay`` skips such files and exits with status 3."""


class UnknownChannel(LocalError, ValueError):
    """The venue does not offer that channel."""


class UnknownSymbol(LocalError, ValueError):
    """The symbol is malformed, cannot be mapped to the venue, or is not in
    the venue's instrument list.

    Attributes:
        venue: the venue, where known.
        symbol: the symbol asked for, where known.
        suggestions: listed symbols close to it (did you mean), best first;
            empty when the symbol was not checked against a list.
    """

    def __init__(
        self, message: str, *, venue: str | None = None, symbol: str | None = None, suggestions: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.venue = venue
        self.symbol = symbol
        self.suggestions = suggestions


class ClosedError(LocalError, RuntimeError):
    """The object was closed by the caller and cannot be used any more."""


class NotStarted(ClosedError):
    """The multiplexer was not started yet (use ``async with`` / ``with``, or
    ``start()``). A :class:`ClosedError` so existing handlers keep working."""


class NotSubscribed(LocalError, KeyError):
    """Nothing subscribes to what was asked for (e.g. ``mux.book()`` of a book
    no stream subscribed to)."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want prose
        return str(self.args[0]) if self.args else "not subscribed"


class LoopThreadDied(ClosedError):
    """The background event-loop thread of :mod:`wsmux.sync` ended (an
    exception such as ``SystemExit`` escaped a callback). The cause is chained."""


class SyncTimeout(WsmuxError, TimeoutError):
    """A book did not become valid (in sync with the venue) within the timeout.
    The message carries the connection's state and last error."""


# --- remote: the venue broke its protocol ----------------------------------


class RemoteError(WsmuxError):
    """The exchange sent something that breaks its documented protocol."""


class MalformedMessage(RemoteError, ValueError):
    """A frame could not be decoded or lacks required fields.

    Attributes:
        frame: the offending frame (possibly truncated to 200 characters).
    """

    def __init__(self, reason: str, frame: bytes | str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if isinstance(frame, bytes | bytearray | memoryview):
            frame = bytes(frame[:200]).decode("utf-8", "replace")
        self.frame = frame[:200] if frame is not None else None

    def __str__(self) -> str:
        if self.frame is None:
            return self.reason
        return f"{self.reason}: {self.frame!r}"


class UnknownMessage(MalformedMessage):
    """A well-formed message of a type or channel the adapter does not handle
    (a channel wsmux does not support, a new message type). Reported as
    ``ErrorKind.UNKNOWN_MESSAGE``; unlike an unreadable frame it never counts
    toward a connection's "unreadable frames in a row" limit or a circuit
    breaker."""


def unknown_message(what: str, name: object, frame: bytes | str | None = None) -> MalformedMessage:
    """The error for a message whose ``what`` (type, channel, topic...) is
    ``name`` and not handled: :class:`UnknownMessage` when ``name`` is a name
    (a non-empty string), a well-formed message wsmux does not handle; else
    :class:`MalformedMessage` (the field is missing or not a name). For
    adapters; not in ``__all__``, which lists exceptions only."""
    text = f"unknown message type: {what} {name!r}" if what else f"unknown message type {name!r}"
    if type(name) is str and name:
        return UnknownMessage(text, frame)
    return MalformedMessage(text, frame)


class SubscriptionRejected(RemoteError):
    """The venue refused a subscription."""


# --- transport ---------------------------------------------------------------


class TransportError(WsmuxError):
    """The network failed (connect, send, receive, HTTP)."""


class ConnectTimeout(TransportError, TimeoutError):
    """Opening the connection took longer than the configured timeout."""


class ConnectionClosed(TransportError):
    """The connection was closed by the peer or the network."""


class EngineError(TransportError):
    """A sink's or source's engine (Redis, NATS) is unreachable or refused an
    operation (wsmux reconnects with backoff where it can)."""


class SnapshotFailed(TransportError):
    """A REST snapshot request failed (HTTP error, timeout, bad body)."""


class RestDeadlineExceeded(SnapshotFailed, TimeoutError):
    """A REST request did not finish (headers *and* whole body) within its
    total deadline (:attr:`wsmux.adapter.Limits.rest_deadline`)."""


class RestBodyTooLarge(SnapshotFailed):
    """A REST response body exceeded the venue's cap
    (:attr:`wsmux.adapter.Limits.max_rest_body`); it was not read further."""


# --- books -------------------------------------------------------------------


class BookError(WsmuxError):
    """An order-book consistency rule was broken."""


class SequenceGap(BookError):
    """Updates are missing between the book's state and a new update."""


class ChecksumMismatch(BookError):
    """The venue's checksum does not match the local book."""


# --- log -------------------------------------------------------------------


class LogError(WsmuxError):
    """A message-log file is corrupt, truncated or of an unknown version."""


# --- streams -----------------------------------------------------------------


class StreamOverflow(WsmuxError, BufferError):
    """A stream with the ``RAISE`` overflow policy filled up: the consumer is too slow."""
