"""``wsmux report``: an HTML report from a small log recorded off the mocks.

The log is recorded here (a mock Binance, with one lost book update so the
gap/resync timeline has something to show); the report must be produced,
hold every chart, and reference nothing outside itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clirun import run_wsmux

from wsmux import Backoff, Gap, Multiplexer, Resynced, book, trades
from wsmux.testing import MockBinance, collect_until

pytest.importorskip("matplotlib", reason="the report needs the extra wsmux[report]")

from wsmux.report import collect, parse_time, render_html

URL = re.compile(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|\b(src|href)\s*=\s*[\"'](?!#)")


async def _record(folder: Path) -> None:
    async with MockBinance(["BTC-USDT", "ETH-USDT"], seed=41) as mock:
        async with Multiplexer(
            endpoints={"binance": mock.endpoint}, backoff=Backoff(initial=0.01, cap=0.05), record=str(folder)
        ) as mux:
            stream = mux.subscribe(book("binance", "BTC-USDT", "ETH-USDT"), trades("binance", "BTC-USDT"))
            await mux.synced("binance", "BTC-USDT", timeout=10)
            await mux.synced("binance", "ETH-USDT", timeout=10)
            await mock.publish(300)
            mock.faults.skip_seq = 1  # one lost diff: Gap at the next one, then resync
            await mock.publish(5, ["BTC-USDT"])
            await mock.publish(5, ["BTC-USDT"])
            await collect_until(stream, lambda e: isinstance(e, Gap), timeout=10)
            await collect_until(stream, lambda e: isinstance(e, Resynced), timeout=10)
            await mock.publish(300)
            await stream.aclose()


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    folder = tmp_path_factory.mktemp("report-log")
    asyncio.run(_record(folder))
    assert list(folder.glob("*.wslog"))
    return folder


def test_report_has_every_chart_and_no_external_reference(log_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = run_wsmux("report", str(log_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "1 venue(s)" in proc.stdout
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for heading in ("Message rate", "Latency (receive time - venue time)", "Gaps and resyncs", "Book depth"):
        assert f"<h2>{heading}</h2>" in text
    svgs = re.findall(r"<svg\b", text)
    # rate + one latency histogram + gap timeline + one depth chart per book
    assert len(svgs) == 1 + 1 + 1 + 2, len(svgs)
    assert "binance:book:BTC-USDT" in text  # the book that broke has a timeline row
    assert "<h3>binance BTC-USDT</h3>" in text and "<h3>binance ETH-USDT</h3>" in text
    assert not URL.search(text), URL.search(text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"url\((?!#)", text)  # only references inside the file (clip paths)


def test_collect_sees_the_gap_the_rates_and_the_latencies(log_dir: Path) -> None:
    data = collect([log_dir], times=3)
    marks = data.marks["binance:book:BTC-USDT"]
    kinds = [m.kind for m in sorted(marks, key=lambda m: m.ns)]
    assert "gap" in kinds and kinds[kinds.index("gap") + 1] == "resynced"
    assert any(m.reason == "sequence" for m in marks if m.kind == "gap")
    assert sum(data.rates["binance"].values()) > 300
    assert len(data.latencies_ms["binance"]) > 100
    assert all(-1000 < s < 60_000 for s in data.latencies_ms["binance"])  # the mock stamps its own clock
    assert {len(v) for v in data.depth.values()} == {3}  # three times for each book
    for snapshots in data.depth.values():
        for bids, asks, valid in snapshots.values():
            if valid:
                assert bids and asks and bids[0][0] < asks[0][0]


def test_depth_times_can_be_chosen(log_dir: Path) -> None:
    whole = collect([log_dir], times=1)
    assert whole.first_ns is not None and whole.last_ns is not None
    middle = (whole.first_ns + whole.last_ns) // 2
    data = collect([log_dir], at=[middle, "+3600"])
    times = sorted(next(iter(data.depth.values())))
    assert times == [middle, whole.first_ns + 3_600_000_000_000]  # a time past the end: the books as they ended
    html = render_html(data)
    assert html.count("t = ") >= 4  # two panels per book


def test_times_parse_and_bad_ones_are_explained() -> None:
    assert parse_time("2026-12-07T00:00:00Z") == 1796601600 * 10**9
    assert parse_time("1796601600.5") == 1796601600_500_000_000
    assert parse_time("+2", first_ns=10) == 10 + 2 * 10**9
    from wsmux import ConfigError

    with pytest.raises(ConfigError, match="ISO time"):
        parse_time("yesterday")


def test_a_path_with_nothing_to_replay_is_explained(tmp_path: Path) -> None:
    proc = run_wsmux("report", str(tmp_path / "missing.wslog"), "--out", str(tmp_path / "r.html"))
    assert proc.returncode == 2 and proc.stderr.startswith("wsmux:")
    assert not (tmp_path / "r.html").exists()


def test_without_matplotlib_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from wsmux import ConfigError
    from wsmux.report import write_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'wsmux\[report\]'"):
        write_report([tmp_path], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_recorded_text_is_escaped(log_dir: Path) -> None:
    data = collect([log_dir], times=1)
    data.summary = "<script>alert(1)</script>"
    data.inputs = ['<img src="x">']
    page = render_html(data)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page


RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "recordings"
CAPTURES = [RECORDINGS / "BINANCE.ws.1.0", RECORDINGS / "KRAKEN.ws.48.0"]


@pytest.mark.skipif(not all(p.is_file() for p in CAPTURES), reason=f"recordings not found at {RECORDINGS}")
def test_captures_of_different_days_still_get_depth_charts() -> None:
    """Kraken (2021-04, trades only) and Binance (2021-10, books): months of dead time between."""
    data = collect(CAPTURES)
    assert data.last_ns is not None and data.first_ns is not None
    assert data.last_ns - data.first_ns > 100 * 86_400 * 10**9
    charted = {venue for venue, _ in data.depth}
    assert charted == {"binance"}
    assert len(data.depth["binance", "NKN-USDT"]) == 4  # the busiest book: charted at every time
    assert any(valid for times in data.depth.values() for _, _, valid in times.values())
