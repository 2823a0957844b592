"""Order-book checksum algorithms, one pure function per venue rule.

Every function here works on the venue's own **text** of each price and size,
never on ``str(float)``: trailing zeros are part of the checksummed string on
Kraken, OKX and Bitget, and ``str(1e-08)`` is not what any venue writes. Books
keep that text (or the per-symbol precision that reproduces it, see
:func:`kraken_format` and :func:`bitfinex_format`) only for the venues that
send a checksum.

Inputs, for every venue:

* ``bids`` — levels best first (price descending),
* ``asks`` — levels best first (price ascending),

where a level is any sequence whose first two items are the price text and the
size text (``("0.05000", "0.00000304")``); further items (a Kraken timestamp, a
republish flag) are ignored, so the venue's own decoded lists can be passed
without copying. Each function takes only the levels it needs from the front
of each iterable, so a whole side may be passed.

Each ``*_checksum_text`` function returns the exact string that is hashed, for
diagnostics when a checksum does not match.

Sources: the wsmux venue fact sheets in ``shared/exchanges/`` (``kraken-spot.md``,
``okx-v5.md``, ``bitget-v2.md``, ``bitfinex.md``), which cite the venues'
documentation. Crypto.com sends a ``cs`` field too, but its algorithm is not
documented (``cryptocom.md`` marks it UNCONFIRMED), so there is no function for
it here.

Cost: every function is O(d) in the number of levels it hashes (10 per side on
Kraken, 25 on OKX/Bitget/Bitfinex), independent of book depth.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from itertools import islice

from wsmux.errors import ConfigError

__all__ = [
    "INTERLEAVED_DEPTH",
    "KRAKEN_DEPTH",
    "LevelText",
    "bitfinex_checksum",
    "bitfinex_checksum_text",
    "bitfinex_format",
    "bitget_checksum",
    "kraken_checksum",
    "kraken_checksum_text",
    "kraken_format",
    "kraken_strip",
    "okx_checksum",
    "okx_checksum_text",
    "to_signed32",
    "to_unsigned32",
]

#: Levels per side hashed by Kraken (v1 and v2 book channels).
KRAKEN_DEPTH = 10
#: Levels per side hashed by OKX, Bitget and Bitfinex.
INTERLEAVED_DEPTH = 25

_U32 = 0xFFFFFFFF
_2_31 = 1 << 31
_2_32 = 1 << 32

LevelText = Sequence[str]
"""A level as text: ``(price_text, size_text, ...)``; extra items are ignored."""


# --- 32-bit helpers -----------------------------------------------------------


def to_signed32(x: int) -> int:
    """Interpret the low 32 bits of ``x`` as a two's-complement signed integer.

    ``zlib.crc32`` returns an unsigned value; OKX, Bitget and Bitfinex send the
    same 32 bits as a signed integer (``x - 2**32 if x >= 2**31``).

    Args:
        x: any integer; only its low 32 bits are used.

    Returns:
        An integer in ``[-2**31, 2**31)``.
    """
    x &= _U32
    return x - _2_32 if x >= _2_31 else x


def to_unsigned32(x: int) -> int:
    """Interpret the low 32 bits of ``x`` as an unsigned integer.

    Useful to compare a venue's signed checksum with ``zlib.crc32`` output.

    Args:
        x: any integer; only its low 32 bits are used.

    Returns:
        An integer in ``[0, 2**32)``.
    """
    return x & _U32


# --- Kraken (spot WS v1 and v2, L2 book channel) ------------------------------


def kraken_strip(text: str) -> str:
    """Kraken's per-number formatting: drop the ``.``, then the leading zeros.

    ``"0.00050000"`` becomes ``"50000"``, ``"354.80000000"`` becomes
    ``"35480000000"``. Trailing zeros are kept: they are part of the venue's
    text.

    Args:
        text: a price or size exactly as Kraken wrote it.
    """
    return text.replace(".", "").lstrip("0")


def kraken_checksum_text(bids: Iterable[LevelText], asks: Iterable[LevelText]) -> str:
    """The string Kraken's book checksum is computed over.

    Rule (kraken-spot.md, "Checksum algorithm"; docs.kraken.com
    ``guides/websockets/book-checksum-v1`` and ``book-checksum-v2``): take the
    top 10 asks (price ascending) then the top 10 bids (price descending); for
    each level append the price and then the size, each with ``.`` removed and
    leading zeros stripped.

    Args:
        bids: bid levels, best (highest) first.
        asks: ask levels, best (lowest) first.
    """
    parts: list[str] = []
    for side in (asks, bids):
        for level in islice(side, KRAKEN_DEPTH):
            parts.append(level[0].replace(".", "").lstrip("0"))
            parts.append(level[1].replace(".", "").lstrip("0"))
    return "".join(parts)


def kraken_checksum(bids: Iterable[LevelText], asks: Iterable[LevelText]) -> int:
    """Kraken's L2 book checksum (WS v1 ``"c"`` and WS v2 ``checksum``).

    Rule (kraken-spot.md, "Checksum algorithm"): CRC32 (zlib) of
    :func:`kraken_checksum_text`, as an **unsigned** 32-bit integer. Compare it
    with ``int(message["c"])`` (v1) or ``data["checksum"]`` (v2), after the
    whole message has been applied and the book truncated to the subscribed
    depth. For v2, whose prices and sizes are JSON numbers, render each one
    with :func:`kraken_format` and the pair's precision first.

    Args:
        bids: bid levels, best (highest) first.
        asks: ask levels, best (lowest) first.

    Returns:
        The checksum in ``[0, 2**32)``.
    """
    return zlib.crc32(kraken_checksum_text(bids, asks).encode("ascii"))


def kraken_format(value: float | Decimal, decimals: int) -> str:
    """Render a Kraken v2 number as the fixed-point text the checksum needs.

    Kraken WS v2 sends prices and quantities as JSON numbers; the checksum is
    defined on their text with the pair's full precision (kraken-spot.md:
    "Keep the raw strings (v1) or parse floats with Decimal and render ...
    never ``str(float)``"). The precision is the pair's ``price_precision`` /
    ``qty_precision`` from the ``instrument`` channel (v2) or
    ``pair_decimals`` / ``lot_decimals`` from REST ``AssetPairs``.

    A ``float`` parsed from a JSON number with at most ~15 significant digits
    renders exactly (``kraken_format(0.001, 8) == "0.00100000"``, where
    ``str(1e-08)`` would give ``"1e-08"``). Values with more decimals than
    ``decimals`` are rounded half-to-even.

    Args:
        value: the number (``float``, ``int`` or ``Decimal``).
        decimals: digits after the point; ``0`` gives an integer text.

    Returns:
        Fixed-point text such as ``"45283.5"`` or ``"0.10000000"``.

    Raises:
        ConfigError: ``decimals`` is negative, or ``value`` is not finite or
            is a ``bool``.
    """
    if decimals < 0:
        raise ConfigError(f"decimals must be >= 0, got {decimals}")
    if isinstance(value, bool):
        raise ConfigError("kraken_format() needs a number, got a bool")
    if isinstance(value, int):
        value = Decimal(value)  # exact for any size; float() would round big ints
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot format non-finite value {value!r}")
    elif not value.is_finite():
        raise ConfigError(f"cannot format non-finite value {value!r}")
    return format(value, f".{decimals}f")


# --- OKX v5 and Bitget v2 ------------------------------------------------------


def _interleave(
    bids: Iterable[LevelText],
    asks: Iterable[LevelText],
    bid_size: Callable[[str], str],
    ask_size: Callable[[str], str],
) -> str:
    """Join ``bid1:bidsz1:ask1:asksz1:bid2:...`` over the top 25 of each side.

    Where one side is shorter, the remaining entries come from the other side
    alone.
    """
    top_bids = list(islice(bids, INTERLEAVED_DEPTH))
    top_asks = list(islice(asks, INTERLEAVED_DEPTH))
    n_bids = len(top_bids)
    n_asks = len(top_asks)
    parts: list[str] = []
    for i in range(max(n_bids, n_asks)):
        if i < n_bids:
            bid = top_bids[i]
            parts.append(bid[0])
            parts.append(bid_size(bid[1]))
        if i < n_asks:
            ask = top_asks[i]
            parts.append(ask[0])
            parts.append(ask_size(ask[1]))
    return ":".join(parts)


def _verbatim(text: str) -> str:
    return text


def okx_checksum_text(bids: Iterable[LevelText], asks: Iterable[LevelText]) -> str:
    """The string OKX (and Bitget) compute their book checksum over.

    Rule (okx-v5.md, "Book sync", Checksum; bitget-v2.md, "Book sync"): take
    the first 25 bids (descending) and 25 asks (ascending) and interleave them
    as ``bidPx:bidSz:askPx:askSz:bidPx:...``; when one side has fewer levels,
    its missing entries are skipped and the other side continues alone. The
    price and size texts are used exactly as received (no reformatting).

    Args:
        bids: bid levels, best (highest) first.
        asks: ask levels, best (lowest) first.
    """
    return _interleave(bids, asks, _verbatim, _verbatim)


def okx_checksum(bids: Iterable[LevelText], asks: Iterable[LevelText]) -> int:
    """OKX v5 ``books`` checksum.

    Rule (okx-v5.md, "Book sync"): CRC32 (zlib) of :func:`okx_checksum_text`,
    as a **signed** 32-bit integer, compared with the message's ``checksum``.
    The sheet notes that since 2026 OKX sends ``checksum: 0`` on every frame;
    callers should skip validation when the message value is ``0`` and rely on
    ``seqId``/``prevSeqId``.

    Args:
        bids: bid levels, best (highest) first.
        asks: ask levels, best (lowest) first.

    Returns:
        The checksum in ``[-2**31, 2**31)``.
    """
    return to_signed32(zlib.crc32(okx_checksum_text(bids, asks).encode("ascii")))


def bitget_checksum(bids: Iterable[LevelText], asks: Iterable[LevelText]) -> int:
    """Bitget v2 ``books`` checksum (the OKX algorithm).

    Rule (bitget-v2.md, "Book sync"): identical to :func:`okx_checksum` —
    interleave the top 25 levels ``bidPx:bidSz:askPx:askSz:...`` with the exact
    strings received, CRC32, **signed** 32-bit. The sheet notes the field may no
    longer be sent in 2026; validate only when a non-zero ``checksum`` is
    present.

    Args:
        bids: bid levels, best (highest) first.
        asks: ask levels, best (lowest) first.

    Returns:
        The checksum in ``[-2**31, 2**31)``.
    """
    return okx_checksum(bids, asks)


# --- Bitfinex ------------------------------------------------------------------


def _positive(text: str) -> str:
    return text[1:] if text[:1] in ("-", "+") else text


def _negative(text: str) -> str:
    return "-" + _positive(text)


def bitfinex_checksum_text(bids: Iterable[LevelText], asks: Iterable[LevelText]) -> str:
    """The string Bitfinex computes its book checksum (flag 131072) over.

    Rule (bitfinex.md, "Checksum"): for i in 0..24, if bid i exists append its
    PRICE then its AMOUNT (positive); if ask i exists append its PRICE then its
    AMOUNT **negative**, as Bitfinex sends asks; join with ``:``. For raw (R0)
    books the first item of each entry is the ORDER_ID instead of the price,
    and each entry is one order (best price first).

    Amount texts may be passed either as Bitfinex sends them (asks negative) or
    as magnitudes: the sign is normalised here (bids without sign, asks with
    one ``-``). Texts must be Bitfinex's JavaScript-style number text; render
    JSON numbers with :func:`bitfinex_format`.

    Args:
        bids: ``(price_text, amount_text)`` per P0 level, or
            ``(order_id_text, amount_text)`` per R0 order; best first.
        asks: the same for the ask side, best (lowest) first.
    """
    return _interleave(bids, asks, _positive, _negative)


def bitfinex_checksum(bids: Iterable[LevelText], asks: Iterable[LevelText]) -> int:
    """Bitfinex WS v2 book checksum, for P0..P4 and raw R0 books.

    Rule (bitfinex.md, "Checksum"; docs.bitfinex.com ``ws-websocket-checksum``):
    CRC32 (zlib) of :func:`bitfinex_checksum_text` over the top 25 bids and 25
    asks, converted to a **signed** 32-bit integer, compared with the ``cs``
    message ``[chanId, "cs", checksum]``. For R0 books pass order ids in place
    of prices. Within one price, R0 orders are expected in the venue's order;
    the sheets do not state a tie-break (UNCONFIRMED).

    Args:
        bids: bid levels (or R0 orders), best (highest) first.
        asks: ask levels (or R0 orders), best (lowest) first.

    Returns:
        The checksum in ``[-2**31, 2**31)``.
    """
    return to_signed32(zlib.crc32(bitfinex_checksum_text(bids, asks).encode("ascii")))


def bitfinex_format(value: float | Decimal) -> str:
    """Render a number the way JavaScript's ``Number.prototype.toString`` does.

    Bitfinex computes checksums on JavaScript number text (bitfinex.md,
    "Number formatting"): shortest round-trip digits, no trailing zeros, no
    ``.0`` on integers, plain notation for magnitudes in ``[1e-6, 1e21)`` and
    exponent form (``1e-7``, ``1.5e+21``) outside. A ``float`` is rendered from
    its shortest round-trip digits (``repr``), a ``Decimal`` from its own
    digits with trailing zeros dropped (exact when the Decimal was parsed from
    JSON text written by JavaScript), an ``int`` from all its digits.

    Args:
        value: the number.

    Returns:
        Text such as ``"60400"``, ``"0.68826974"``, ``"-0.5"`` or ``"1e-7"``.

    Raises:
        ConfigError: ``value`` is not finite or is a ``bool``.
    """
    if isinstance(value, bool):
        raise ConfigError("bitfinex_format() needs a number, got a bool")
    if isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot format non-finite value {value!r}")
        dec = Decimal(repr(value))
    else:
        if not value.is_finite():
            raise ConfigError(f"cannot format non-finite value {value!r}")
        dec = value
    if dec.is_zero():
        return "0"  # JavaScript prints -0 as "0"
    sign, digit_tuple, exponent = dec.normalize().as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + exponent  # value == 0.digits * 10**n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return "-" + body if sign else body
