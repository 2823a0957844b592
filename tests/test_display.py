"""Numbers as a person reads them: event and book reprs, the instrument's
tick and lot formatting, and the CLI table (no ``0.30000000000000004``)."""

from __future__ import annotations

import math

import pytest

from wsmux import BookSnapshot, Instrument, Side, Trade
from wsmux._display import by_step, decimals, difference, plain
from wsmux.book import OrderBook
from wsmux.multiplexer import BookView


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1 + 0.2, "0.3"),
        (29999.989999999998, "29999.99"),
        (5e-05, "0.00005"),
        (1.0, "1.0"),
        (434.99999999999994, "435.0"),
        (123456789012345.0, "123456789012345.0"),
        (-2.5, "-2.5"),
        (1e300, "1e+300"),  # garbage-sized values keep their repr
        (math.nan, "nan"),
    ],
)
def test_plain(value: float, text: str) -> None:
    assert plain(value) == text


def test_by_step_and_difference() -> None:
    assert [decimals(s) for s in (0.01, 0.5, 1.0, 10.0, 1e-8)] == [2, 1, 0, 0, 8]
    assert by_step(29999.989999999998, 0.01) == "29999.99"
    assert by_step(5e-05, 1e-8) == "0.00005000"
    assert by_step(0.1 + 0.2, None) == "0.3"
    assert difference(30000.01, 30000.0, None) == "0.01"  # the subtraction gives 0.00999999999839929
    assert difference(30000.1, 30000.0, 0.1) == "0.1"


def test_event_reprs_show_readable_numbers() -> None:
    trade = Trade("binance", "BTC-USDT", 29999.989999999998, 5e-05, Side.BUY, "7", None, 1)
    assert repr(trade) == (
        "Trade(venue='binance', symbol='BTC-USDT', price=29999.99, size=0.00005, side=<Side.BUY: 'buy'>, "
        "trade_id='7', ts=None, recv_ns=1, seq=None)"
    )
    snap = BookSnapshot("okx", "BTC-USDT", ((0.1 + 0.2, 2.0),), (), None, 1)
    assert "bids=((0.3, 2.0),)" in repr(snap)
    assert trade.price == 29999.989999999998  # only the display changes


def test_instrument_formats_by_tick_and_lot_in_base_units() -> None:
    spot = Instrument("binance", "BTC-USDT", "BTCUSDT", "spot", 0.01, 0.00001)
    assert spot.format_price(29999.989999999998) == "29999.99" and spot.format_size(5e-05) == "0.00005"
    linear = Instrument("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP", "perp", 0.1, 1.0, 0.01)
    assert linear.format_size(0.30000000000000004) == "0.30"  # lot 1 contract = 0.01 BTC
    inverse = Instrument("binance-coinm", "BTC-USD-PERP", "BTCUSD_PERP", "perp", 0.1, 1.0, 100.0, True)
    assert inverse.format_size(100 / 30000) == "0.00333333333333333"  # no lot in coins: 15 digits
    assert Instrument("x", "A-B", "AB", "spot").format_price(0.1 + 0.2) == "0.3"


def test_book_reprs() -> None:
    book = OrderBook("binance", "BTC-USDT")
    book.apply_snapshot(((29999.989999999998, 5e-05),), ((30000.01, 1.5),))
    assert "bbo=(29999.99, 0.00005, 30000.01, 1.5)" in repr(book)
    plain_view = BookView(book)
    assert "bid 29999.99 x 0.00005 / ask 30000.01 x 1.5" in repr(plain_view)
    ticked = BookView(book, Instrument("binance", "BTC-USDT", "BTCUSDT", "spot", 0.01, 0.00001))
    assert "bid 29999.99 x 0.00005 / ask 30000.01 x 1.50000" in repr(ticked)
    assert "empty" in repr(BookView(OrderBook("binance", "ETH-USDT")))


def test_cli_table_prices_by_tick_else_without_float_noise() -> None:
    import io

    from wsmux import Quote
    from wsmux.cli import LiveView
    from wsmux.health import Health

    book = OrderBook("bitfinex", "BTC-USD")
    book.apply_snapshot(((30000.0, 1.0),), ((30000.01, 1.0),))
    ticked = Instrument("okx", "BTC-USDT", "BTC-USDT", "spot", 0.01, 0.00001)

    class Mux:
        books = {("bitfinex", "BTC-USD"): BookView(book)}

        def instrument(self, venue: str, symbol: str) -> Instrument | None:
            return ticked if venue == "okx" else None

        def health(self) -> Health:
            return Health([], [], [], {}, None, {})

    view = LiveView(Mux(), io.StringIO())  # type: ignore[arg-type]
    view.on_event(Quote("bitfinex", "BTC-USD", 30000.0, 1.0, 30000.01, 1.0, None, 1))
    view.on_event(Quote("okx", "BTC-USDT", 29999.989999999998, 1.0, 30000.0, 1.0, None, 1))
    lines = view.render().splitlines()
    bitfinex = next(line for line in lines if line.startswith("bitfinex"))
    okx = next(line for line in lines if line.startswith("okx"))
    assert bitfinex.split()[2:5] == ["30000.0", "30000.01", "0.01"]  # no tick: no 0.00999999999839929
    assert okx.split()[2:5] == ["29999.99", "30000.00", "0.01"]  # by the 0.01 tick
