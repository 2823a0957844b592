"""``wsmux demo`` shows the headline (issue 11.9): consistent mock markets,
``--chaos`` makes gaps and resyncs visible, every mock venue can be shown."""

from __future__ import annotations

import importlib
import re

import pytest
from clirun import run_wsmux

from wsmux.cli import DEMO_SYMBOLS, MOCKS


def _mock_class(venue: str) -> type:
    module, _, name = MOCKS[venue].partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@pytest.mark.parametrize("venue", sorted(MOCKS))
def test_every_mock_market_starts_at_the_same_price(venue: str) -> None:
    symbols = DEMO_SYMBOLS.get(venue, ["BTC-USDT", "ETH-USDT"])
    mock = _mock_class(venue)(symbols)
    first, second = (mock.markets[s] for s in symbols)
    mid = (first.price(first.best_bid()) + first.price(first.best_ask())) / 2
    assert mid == pytest.approx(30_000, rel=0.001), venue  # not 300,000 because of a 0.1 tick
    mid2 = (second.price(second.best_bid()) + second.price(second.best_ask())) / 2
    assert mid2 == pytest.approx(15_000, rel=0.001), venue


def test_demo_runs_binance_us() -> None:
    proc = run_wsmux("demo", "--venues", "binance-us", "--duration", "2", "--refresh", "2")
    assert proc.returncode == 0, proc.stderr
    assert "no mock" not in proc.stdout
    assert re.search(r"^binance-us\s+BTC-USDT\s+(29\d{3}|30000)", proc.stdout, re.M), proc.stdout
    assert "1 mock venue(s), 2 books synced" in proc.stdout


def test_demo_chaos_shows_gaps_and_resyncs() -> None:
    # faults are injected every second, in turn: binance loses a diff, kraken gets a bad checksum,
    # coinbase loses a message, okx is disconnected; each book that breaks resyncs on its own.
    proc = run_wsmux("demo", "--chaos", "--duration", "6", "--refresh", "6", timeout=120)
    assert proc.returncode == 0, proc.stderr
    final = proc.stdout.strip().splitlines()[-1]
    m = re.search(r"(\d+) books synced, (\d+) gaps, (\d+) resyncs, 0 errors, (\d+) faults injected", final)
    assert m, final
    books, gaps, resyncs, faults = map(int, m.groups())
    assert faults >= 3
    assert gaps >= 1
    assert resyncs > books  # the broken books came back
    assert "Traceback" not in proc.stderr


def test_demo_without_chaos_injects_nothing() -> None:
    proc = run_wsmux("demo", "--venues", "kraken", "--duration", "2", "--refresh", "2")
    assert proc.returncode == 0, proc.stderr
    assert "0 gaps" in proc.stdout and "faults injected" not in proc.stdout
    assert re.search(r"^kraken\s+BTC-USD\s+(29\d\d\d|30000)(\.\d)?\s", proc.stdout, re.M), proc.stdout
