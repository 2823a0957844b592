"""A small protobuf (proto3 wire format) reader and writer for MEXC spot v3 pushes.

MEXC spot sends every market-data push as a binary ``PushDataV3ApiWrapper``
message (shared/exchanges/mexc.md, "Spot protobuf schema"; field numbers from
mexcdevelop/websocket-proto @7b8ac7a). wsmux decodes the few messages it
needs by field number with the hand-written reader below instead of the
``protobuf`` runtime: it was measured faster on MEXC's frames (see
``bench/bench_mexc_proto.py``) and keeps the core free of a compiled
dependency.

Wire format, as used here: a message is a run of fields ``key = (number << 3)
| wire_type`` (a varint) followed by the value: wire type 0 a varint, 2 a
length-delimited run of bytes (strings, nested messages, one element of a
``repeated`` message field), 1 and 5 fixed 64/32-bit values. Unknown fields are
skipped (MEXC adds fields over time); groups (wire types 3 and 4) and anything
that runs past the end are malformed (:class:`ProtoError`). Strings must be
ASCII: every string MEXC sends is a symbol, a stream name or a decimal number.

:func:`encode_wrapper` and friends write the same messages; the mock exchange
and the tests use them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AGGRE_BOOK_TICKER",
    "AGGRE_DEALS",
    "AGGRE_DEPTHS",
    "LIMIT_DEPTHS",
    "SPOT_KLINE",
    "ProtoError",
    "Wrapper",
    "decode_book_ticker",
    "decode_deals",
    "decode_depths",
    "decode_kline",
    "decode_wrapper",
    "encode_book_ticker",
    "encode_deals",
    "encode_depths",
    "encode_kline",
    "encode_wrapper",
]

# PushDataV3ApiWrapper oneof ``body`` field numbers (mexc.md, wrapper table)
LIMIT_DEPTHS = 303
SPOT_KLINE = 308
AGGRE_DEPTHS = 313
AGGRE_DEALS = 314
AGGRE_BOOK_TICKER = 315


class ProtoError(ValueError):
    """Bytes that are not a well-formed protobuf message of the expected shape."""


Wrapper = tuple[str, str | None, int | None, int, bytes]
"""A decoded ``PushDataV3ApiWrapper``: ``(channel, symbol, sendTime or
createTime in ms, body field number, body bytes)``; the body number is 0 when
the wrapper carries no body."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    while True:
        byte = buf[pos]  # IndexError past the end: callers turn it into ProtoError
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 10 bytes")


def _skip(buf: bytes, pos: int, wire: int) -> int:
    """The position after a field of wire type ``wire`` whose value starts at ``pos``."""
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 2:
        size, pos = _varint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise ProtoError("length-delimited field runs past the end")
        return end
    if wire == 1:
        pos += 8
    elif wire == 5:
        pos += 4
    else:
        raise ProtoError(f"unsupported wire type {wire}")
    if pos > len(buf):
        raise ProtoError("fixed-size field runs past the end")
    return pos


def _fields(buf: bytes) -> list[tuple[int, int, int]]:
    """``(number, start, end)`` of every length-delimited field, and
    ``(number, value, -1)`` of every varint field, in order."""
    out: list[tuple[int, int, int]] = []
    pos = 0
    n = len(buf)
    try:
        while pos < n:
            key, pos = _varint(buf, pos)
            wire = key & 7
            if wire == 2:
                size, pos = _varint(buf, pos)
                end = pos + size
                if end > n:
                    raise ProtoError("length-delimited field runs past the end")
                out.append((key >> 3, pos, end))
                pos = end
            elif wire == 0:
                value, pos = _varint(buf, pos)
                out.append((key >> 3, value, -1))
            else:
                pos = _skip(buf, pos, wire)
    except IndexError as exc:
        raise ProtoError("message ends inside a field") from exc
    return out


def _text(buf: bytes, start: int, end: int) -> str:
    try:
        return buf[start:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtoError("string field is not ASCII") from exc


def _pair(buf: bytes) -> tuple[str, str]:
    """A ``{1 price, 2 quantity}`` item. Fast path for the usual two short
    strings in order; any other layout goes through :func:`_fields`."""
    n = len(buf)
    if n >= 4 and buf[0] == 0x0A:
        size = buf[1]
        mid = 2 + size
        if size < 0x80 and mid + 2 <= n and buf[mid] == 0x12:
            size2 = buf[mid + 1]
            if size2 < 0x80 and mid + 2 + size2 == n:
                try:
                    return buf[2:mid].decode("ascii"), buf[mid + 2 : n].decode("ascii")
                except UnicodeDecodeError as exc:
                    raise ProtoError("string field is not ASCII") from exc
    price = quantity = ""
    for number, start, end in _fields(buf):
        if end < 0:
            continue
        if number == 1:
            price = _text(buf, start, end)
        elif number == 2:
            quantity = _text(buf, start, end)
    return price, quantity


def decode_wrapper(buf: bytes) -> Wrapper:
    """Decode a ``PushDataV3ApiWrapper`` down to its body's bytes."""
    channel = ""
    symbol: str | None = None
    send_ms: int | None = None
    create_ms: int | None = None
    body_number = 0
    body = b""
    for number, start, end in _fields(buf):
        if end < 0:
            if number == 6:
                send_ms = start
            elif number == 5:
                create_ms = start
        elif number == 1:
            channel = _text(buf, start, end)
        elif number == 3:
            symbol = _text(buf, start, end)
        elif number >= 301:
            body_number = number
            body = buf[start:end]
    return channel, symbol, send_ms if send_ms is not None else create_ms, body_number, body


def decode_depths(body: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str, str]:
    """``PublicAggreDepthsV3Api`` (or ``PublicLimitDepthsV3Api``) →
    ``(bids, asks, fromVersion, toVersion)``; the limit message's one
    ``version`` (field 4) comes back as ``fromVersion`` and ``toVersion`` is
    empty."""
    asks: list[tuple[str, str]] = []
    bids: list[tuple[str, str]] = []
    first = last = ""
    for number, start, end in _fields(body):
        if end < 0:
            continue
        if number == 1:
            asks.append(_pair(body[start:end]))
        elif number == 2:
            bids.append(_pair(body[start:end]))
        elif number == 4:
            first = _text(body, start, end)
        elif number == 5:
            last = _text(body, start, end)
    return bids, asks, first, last


Deal = tuple[str, str, int, int, str | None]
"""``(price, quantity, tradeType, time ms, tradeId or None)``."""


def decode_deals(body: bytes) -> list[Deal]:
    """``PublicAggreDealsV3Api`` → its deals."""
    out: list[Deal] = []
    for number, start, end in _fields(body):
        if number != 1 or end < 0:
            continue
        item = body[start:end]
        price = quantity = ""
        side = ms = 0
        trade_id: str | None = None
        for field, a, b in _fields(item):
            if b < 0:
                if field == 3:
                    side = a
                elif field == 4:
                    ms = a
            elif field == 1:
                price = _text(item, a, b)
            elif field == 2:
                quantity = _text(item, a, b)
            elif field == 5:
                trade_id = _text(item, a, b)
        out.append((price, quantity, side, ms, trade_id))
    return out


def decode_book_ticker(body: bytes) -> tuple[str, str, str, str, str | None]:
    """``PublicAggreBookTickerV3Api`` → ``(bidPrice, bidQuantity, askPrice,
    askQuantity, version or None)``."""
    values = ["", "", "", ""]
    version: str | None = None
    for number, start, end in _fields(body):
        if end < 0:
            continue
        if 1 <= number <= 4:
            values[number - 1] = _text(body, start, end)
        elif number == 5:
            version = _text(body, start, end)
    return values[0], values[1], values[2], values[3], version


Kline = tuple[str, int, str, str, str, str, str, int]
"""``(interval, windowStart, open, close, high, low, volume, windowEnd)``."""


def decode_kline(body: bytes) -> Kline:
    """``PublicSpotKlineV3Api`` (fields 1 interval, 2 windowStart, 3 opening,
    4 closing, 5 highest, 6 lowest price, 7 volume, 8 amount, 9 windowEnd)."""
    text = [""] * 9
    start_s = end_s = 0
    for number, a, b in _fields(body):
        if b < 0:
            if number == 2:
                start_s = a
            elif number == 9:
                end_s = a
        elif 1 <= number <= 8:
            text[number] = _text(body, a, b)
    return text[1], start_s, text[3], text[4], text[5], text[6], text[7], end_s


# --- writing (mock exchange, tests) -------------------------------------------------------


def _put_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1  # int64 negatives as two's complement, like protobuf
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_bytes(out: bytearray, number: int, value: bytes) -> None:
    _put_varint(out, (number << 3) | 2)
    _put_varint(out, len(value))
    out += value


def _put_text(out: bytearray, number: int, value: str | None) -> None:
    if value:  # proto3: empty strings are not written
        _put_bytes(out, number, value.encode())


def _put_int(out: bytearray, number: int, value: int | None) -> None:
    if value:
        _put_varint(out, number << 3)
        _put_varint(out, value)


def _pairs(out: bytearray, number: int, levels: Sequence[tuple[str, str]]) -> None:
    for price, quantity in levels:
        item = bytearray()
        _put_text(item, 1, price)
        _put_text(item, 2, quantity)
        _put_bytes(out, number, bytes(item))


def encode_depths(
    bids: Sequence[tuple[str, str]],
    asks: Sequence[tuple[str, str]],
    event_type: str,
    from_version: str,
    to_version: str | None,
) -> bytes:
    """``PublicAggreDepthsV3Api``; with ``to_version=None`` a
    ``PublicLimitDepthsV3Api`` (``from_version`` is its ``version``)."""
    out = bytearray()
    _pairs(out, 1, asks)
    _pairs(out, 2, bids)
    _put_text(out, 3, event_type)
    _put_text(out, 4, from_version)
    _put_text(out, 5, to_version)
    return bytes(out)


def encode_deals(deals: Sequence[Deal], event_type: str) -> bytes:
    """``PublicAggreDealsV3Api``."""
    out = bytearray()
    for price, quantity, side, ms, trade_id in deals:
        item = bytearray()
        _put_text(item, 1, price)
        _put_text(item, 2, quantity)
        _put_int(item, 3, side)
        _put_int(item, 4, ms)
        _put_text(item, 5, trade_id)
        _put_bytes(out, 1, bytes(item))
    _put_text(out, 2, event_type)
    return bytes(out)


def encode_book_ticker(bid: str, bid_qty: str, ask: str, ask_qty: str, version: str | None = None) -> bytes:
    """``PublicAggreBookTickerV3Api``."""
    out = bytearray()
    for number, value in enumerate((bid, bid_qty, ask, ask_qty, version), 1):
        _put_text(out, number, value)
    return bytes(out)


def encode_kline(kline: Kline, amount: str = "0") -> bytes:
    """``PublicSpotKlineV3Api`` from a :data:`Kline` tuple."""
    interval, start_s, open_, close, high, low, volume, end_s = kline
    out = bytearray()
    _put_text(out, 1, interval)
    _put_int(out, 2, start_s)
    for number, value in ((3, open_), (4, close), (5, high), (6, low), (7, volume), (8, amount)):
        _put_text(out, number, value)
    _put_int(out, 9, end_s)
    return bytes(out)


def encode_wrapper(channel: str, symbol: str, send_ms: int, body_number: int, body: bytes) -> bytes:
    """``PushDataV3ApiWrapper`` with ``body`` as its oneof field ``body_number``."""
    out = bytearray()
    _put_text(out, 1, channel)
    _put_text(out, 3, symbol)
    _put_int(out, 6, send_ms)
    _put_bytes(out, body_number, body)
    return bytes(out)
