"""Tests for wsmux.book.checksum.

Every expected checksum is built here independently: the hashed string is
written out by hand and passed to ``zlib.crc32``; the function under test is
never used to produce an expectation.
"""

from __future__ import annotations

import zlib
from decimal import Decimal

import pytest

from wsmux.book import checksum as cs
from wsmux.errors import ConfigError


def crc(text: str) -> int:
    return zlib.crc32(text.encode("ascii"))


def signed(x: int) -> int:
    return x - 2**32 if x >= 2**31 else x


# --- 32-bit helpers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1, 1),
        (2**31 - 1, 2**31 - 1),
        (2**31, -(2**31)),
        (2**32 - 1, -1),
        (3715213335, 3715213335 - 2**32),
        (-5, -5),
        (2**32 + 7, 7),
    ],
)
def test_to_signed32(value: int, expected: int) -> None:
    assert cs.to_signed32(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (-1, 2**32 - 1), (-(2**31), 2**31), (2**31 - 1, 2**31 - 1), (2**32, 0)],
)
def test_to_unsigned32(value: int, expected: int) -> None:
    assert cs.to_unsigned32(value) == expected


def test_signed_unsigned_round_trip() -> None:
    for x in (0, 1, 2**31 - 1, 2**31, 2**32 - 1, 123456789, 4105471083):
        assert cs.to_unsigned32(cs.to_signed32(x)) == x


# --- Kraken ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.00050000", "50000"),
        ("0.05000", "5000"),
        ("0.00000304", "304"),
        ("354.80000000", "35480000000"),
        ("13.260800", "13260800"),
        ("0.000835600", "835600"),
        ("1000", "1000"),
        ("10.0", "100"),
    ],
)
def test_kraken_strip(text: str, expected: str) -> None:
    assert cs.kraken_strip(text) == expected


def test_kraken_sheet_worked_example() -> None:
    # kraken-spot.md: ask "0.05000" x "0.00000304" -> "5000304"
    text = cs.kraken_checksum_text([], [("0.05000", "0.00000304")])
    assert text == "5000304"
    assert cs.kraken_checksum([], [("0.05000", "0.00000304")]) == crc("5000304")


def test_kraken_asks_first_then_bids_and_stripping() -> None:
    bids = [("0.04940", "0.00000500"), ("0.04765", "12.50000000")]
    asks = [("0.05120", "0.00000500"), ("0.05275", "1.00000000")]
    expected = "5120" + "500" + "5275" + "100000000" + "4940" + "500" + "4765" + "1250000000"
    assert cs.kraken_checksum_text(bids, asks) == expected
    value = cs.kraken_checksum(bids, asks)
    assert value == crc(expected)
    assert 0 <= value < 2**32


def test_kraken_uses_top_ten_only_and_ignores_extra_items() -> None:
    # Raw v1 entries: [price, volume, timestamp(, "r")]; 12 levels per side.
    asks = [[f"1.{i:02d}000", "0.00100000", "1618678133.1"] for i in range(12)]
    bids = [[f"0.{99 - i}000", "2.00000000", "1618678133.2", "r"] for i in range(12)]
    expected = (
        "100000100000"
        "101000100000"
        "102000100000"
        "103000100000"
        "104000100000"
        "105000100000"
        "106000100000"
        "107000100000"
        "108000100000"
        "109000100000"
        "99000200000000"
        "98000200000000"
        "97000200000000"
        "96000200000000"
        "95000200000000"
        "94000200000000"
        "93000200000000"
        "92000200000000"
        "91000200000000"
        "90000200000000"
    )
    assert cs.kraken_checksum_text(bids, asks) == expected
    assert cs.kraken_checksum(bids, asks) == crc(expected)


def test_kraken_accepts_iterators() -> None:
    asks = iter([("2.0", "1.5"), ("2.5", "0.1")])
    bids = iter([("1.0", "3.0")])
    assert cs.kraken_checksum(bids, asks) == crc("2015" + "251" + "1030")


def test_kraken_empty_book() -> None:
    assert cs.kraken_checksum([], []) == crc("") == 0


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (45283.5, 1, "45283.5"),
        (0.001, 8, "0.00100000"),
        (1e-08, 8, "0.00000001"),
        (0.1, 8, "0.10000000"),
        (30000, 1, "30000.0"),
        (30000, 0, "30000"),
        (Decimal("0.1"), 8, "0.10000000"),
        (Decimal("1E-8"), 8, "0.00000001"),
        (Decimal("0.05000"), 5, "0.05000"),
        (Decimal("0.123456785"), 8, "0.12345678"),  # half-even rounding
        (123456789012345678901234567890, 2, "123456789012345678901234567890.00"),
    ],
)
def test_kraken_format(value: float | Decimal, decimals: int, expected: str) -> None:
    assert cs.kraken_format(value, decimals) == expected


def test_kraken_format_v2_level_reproduces_text() -> None:
    # v2 sends JSON numbers; with the pair precision the v1-style text returns.
    bids = [(cs.kraken_format(45283.5, 1), cs.kraken_format(0.1, 8))]
    asks = [(cs.kraken_format(45285.2, 1), cs.kraken_format(0.00100000, 8))]
    assert bids == [("45283.5", "0.10000000")]
    assert asks == [("45285.2", "0.00100000")]
    assert cs.kraken_checksum(bids, asks) == crc("452852" + "100000" + "452835" + "10000000")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), True])
def test_kraken_format_rejects_non_numbers(bad: float | Decimal) -> None:
    with pytest.raises(ConfigError):
        cs.kraken_format(bad, 8)


def test_kraken_format_rejects_negative_decimals() -> None:
    with pytest.raises(ConfigError):
        cs.kraken_format(1.0, -1)
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        cs.kraken_format(1.0, -1)


# --- OKX / Bitget -------------------------------------------------------------


def test_okx_interleave_equal_sides() -> None:
    bids = [("30210.4", "4", "0", "1"), ("30182.6", "452", "0", "1")]
    asks = [("30238.8", "2", "0", "1"), ("30249.5", "50", "0", "1")]
    expected = "30210.4:4:30238.8:2:30182.6:452:30249.5:50"
    assert cs.okx_checksum_text(bids, asks) == expected
    assert cs.okx_checksum(bids, asks) == signed(crc(expected))


def test_okx_shorter_ask_side_continues_with_bids() -> None:
    bids = [("30210.4", "4"), ("30182.6", "452"), ("30100", "1")]
    asks = [("30238.8", "2")]
    expected = "30210.4:4:30238.8:2:30182.6:452:30100:1"
    assert cs.okx_checksum_text(bids, asks) == expected
    assert cs.okx_checksum(bids, asks) == signed(crc(expected))


def test_okx_shorter_bid_side_continues_with_asks() -> None:
    bids = [("30210.4", "4")]
    asks = [("30238.8", "2"), ("30249.5", "50"), ("30261", "4")]
    expected = "30210.4:4:30238.8:2:30249.5:50:30261:4"
    assert cs.okx_checksum_text(bids, asks) == expected
    assert cs.okx_checksum(bids, asks) == signed(crc(expected))


def test_okx_one_side_empty() -> None:
    asks = [("0.00003530", "145214"), ("0.00003545", "20609328")]
    expected = "0.00003530:145214:0.00003545:20609328"
    assert cs.okx_checksum_text([], asks) == expected
    assert cs.okx_checksum([], asks) == signed(crc(expected))


def test_okx_keeps_text_verbatim() -> None:
    # Trailing zeros and leading zeros are part of the hashed text.
    bids = [("0.00003520", "90000")]
    asks = [("0.00003530", "145214.0")]
    expected = "0.00003520:90000:0.00003530:145214.0"
    assert cs.okx_checksum_text(bids, asks) == expected


def test_okx_result_is_signed() -> None:
    # crc32("3:4") is 3715213335 >= 2**31, so OKX's value is negative.
    bids = [("3", "4")]
    assert crc("3:4") == 3715213335
    assert cs.okx_checksum(bids, []) == 3715213335 - 2**32
    # crc32("1:2") is below 2**31 and stays positive.
    assert cs.okx_checksum([("1", "2")], []) == 932632908


def test_okx_uses_top_25_only() -> None:
    bids = [(f"{100 - i}.5", f"{i + 1}") for i in range(30)]
    asks = [(f"{101 + i}.5", f"{i + 10}") for i in range(27)]
    parts: list[str] = []
    for i in range(25):
        parts += [f"{100 - i}.5", f"{i + 1}", f"{101 + i}.5", f"{i + 10}"]
    expected = ":".join(parts)
    assert expected.startswith("100.5:1:101.5:10:99.5:2:102.5:11:")
    assert expected.endswith(":76.5:25:125.5:34")
    assert cs.okx_checksum_text(bids, asks) == expected
    assert cs.okx_checksum(bids, asks) == signed(crc(expected))


def test_bitget_equals_okx_rule() -> None:
    bids = [("0.00003520", "90000")]
    asks = [("0.00003530", "145214"), ("0.00003545", "20609328")]
    expected = "0.00003520:90000:0.00003530:145214:0.00003545:20609328"
    assert cs.bitget_checksum(bids, asks) == signed(crc(expected))


def test_okx_empty_book() -> None:
    assert cs.okx_checksum([], []) == 0


# --- Bitfinex --------------------------------------------------------------------


def test_bitfinex_p0_asks_negative() -> None:
    bids = [("60400", "0.68826974"), ("60397", "1.17989099")]
    asks = [("60401", "-0.5")]
    expected = "60400:0.68826974:60401:-0.5:60397:1.17989099"
    assert cs.bitfinex_checksum_text(bids, asks) == expected
    assert cs.bitfinex_checksum(bids, asks) == signed(crc(expected))


def test_bitfinex_sign_normalised_from_magnitudes() -> None:
    # The same book given with positive ask amounts gives the same string.
    signed_book = cs.bitfinex_checksum_text([("60400", "0.68826974")], [("60401", "-0.5")])
    magnitude_book = cs.bitfinex_checksum_text([("60400", "0.68826974")], [("60401", "0.5")])
    assert signed_book == magnitude_book == "60400:0.68826974:60401:-0.5"
    # A bid amount is always written positive.
    assert cs.bitfinex_checksum_text([("1", "-2")], []) == "1:2"


def test_bitfinex_r0_uses_order_ids() -> None:
    # Raw book: one entry per order, the order id takes the price's place.
    bids = [("50346126", "0.1"), ("50346127", "2.25")]
    asks = [("50346130", "-1"), ("50346131", "-0.003"), ("50346140", "-7")]
    expected = "50346126:0.1:50346130:-1:50346127:2.25:50346131:-0.003:50346140:-7"
    assert cs.bitfinex_checksum_text(bids, asks) == expected
    assert cs.bitfinex_checksum(bids, asks) == signed(crc(expected))


def test_bitfinex_top_25_and_signed() -> None:
    bids = [(str(1000 - i), "1") for i in range(26)]
    asks = [(str(1001 + i), "-2") for i in range(40)]
    parts: list[str] = []
    for i in range(25):
        parts += [str(1000 - i), "1", str(1001 + i), "-2"]
    expected = ":".join(parts)
    assert cs.bitfinex_checksum(bids, asks) == signed(crc(expected))
    assert cs.bitfinex_checksum([("3", "4")], []) == 3715213335 - 2**32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (60400.0, "60400"),
        (60400, "60400"),
        (0.68826974, "0.68826974"),
        (-0.5, "-0.5"),
        (1.5, "1.5"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (-1.5e-7, "-1.5e-7"),
        (1.23e-18, "1.23e-18"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (0.0, "0"),
        (-0.0, "0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (Decimal("60400.000"), "60400"),
        (Decimal("0.00826000"), "0.00826"),
        (Decimal("-0.5"), "-0.5"),
        (Decimal("1E-7"), "1e-7"),
        (279380, "279380"),
    ],
)
def test_bitfinex_format_matches_javascript(value: float | Decimal, expected: str) -> None:
    assert cs.bitfinex_format(value) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("-inf"), Decimal("Infinity"), False])
def test_bitfinex_format_rejects_non_numbers(bad: float | Decimal) -> None:
    with pytest.raises(ConfigError):
        cs.bitfinex_format(bad)


def test_module_exports() -> None:
    for name in cs.__all__:
        assert hasattr(cs, name), name
