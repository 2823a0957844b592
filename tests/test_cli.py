"""The command line as a user meets it (issue 11.8): typed explanations
instead of tracebacks, validated options, help everywhere, human times,
``--version`` and a ``venues`` table. Driven as a subprocess."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from clirun import run_wsmux
from test_replay_degrade import COINBASE

import wsmux
from wsmux import exchanges
from wsmux.cli import build_parser
from wsmux.log import Direction, LogHeader, LogWriter
from wsmux.log._replay import ReplaySummary
from wsmux.model import Trade


def assert_explained(proc: object, status: int = 2) -> str:
    assert proc.returncode == status, (proc.stdout, proc.stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in proc.stderr  # type: ignore[attr-defined]
    return proc.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [["log", "info"], ["replay"]])
def test_missing_path_is_explained_not_a_traceback(command: list[str]) -> None:
    err = assert_explained(run_wsmux(*command, "/nonexistent/capture"))
    assert err.startswith("wsmux: ") and "/nonexistent/capture" in err


def test_a_file_that_is_neither_log_nor_capture_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("# some notes\n")
    err = assert_explained(run_wsmux("replay", str(path)))
    assert "not a recording line" in err


def test_log_info_reads_a_text_capture_like_replay_does(tmp_path: Path) -> None:
    path = tmp_path / "COINBASE.ws.1.0"
    path.write_text(COINBASE)
    proc = run_wsmux("log", "info", str(path))
    assert_explained(proc, 0)
    assert "venues:        coinbase" in proc.stdout
    assert "time range:    2023-11-14T22:13:20.000000000Z .. 2023-11-14T22:13:20.400000000Z" in proc.stdout


def test_log_info_prints_iso_utc_times(tmp_path: Path) -> None:
    path = tmp_path / "a.wslog"
    t0 = 1_700_000_000 * 10**9
    with LogWriter(path, LogHeader(venue="binance"), clock=lambda: t0) as log:
        log.write(Direction.IN, t0 + 5, 1, "{}")
        log.write(Direction.IN, t0 + 1_500_000_000, 1, "{}")
    proc = run_wsmux("log", "info", str(path))
    assert_explained(proc, 0)
    assert "2023-11-14T22:13:20.000000005Z .. 2023-11-14T22:13:21.500000000Z (1.500 s)" in proc.stdout
    assert str(t0 + 5) not in proc.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [("--rate", "0"), ("--rate", "-5"), ("--rate", "nan"), ("--refresh", "0"), ("--refresh", "0.001"),
     ("--duration", "-1")],
)  # fmt: skip
def test_demo_options_are_validated_by_argparse(option: str, value: str) -> None:
    err = assert_explained(run_wsmux("demo", option, value))
    assert f"error: argument {option}" in err


def test_replay_speed_is_validated() -> None:
    err = assert_explained(run_wsmux("replay", "--speed", "0", "x"))
    assert "error: argument --speed" in err


def test_version() -> None:
    proc = run_wsmux("--version")
    assert_explained(proc, 0)
    assert proc.stdout.strip() == f"wsmux {wsmux.__version__}"


def _all_parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.extend(_all_parsers(sub))
    return out


def test_every_option_and_command_has_help() -> None:
    missing = []
    for prog, parser in _all_parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{prog} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_venues_is_a_table_derived_from_the_adapters() -> None:
    proc = run_wsmux("venues")
    assert_explained(proc, 0)
    lines = proc.stdout.splitlines()
    header = ["venue", "exchange", "channels", "book", "snapshot", "continuity", "checksum", "integrity",
              "streams/conn", "msgs/s"]  # fmt: skip
    assert lines[0].split() == header
    table, _, total = proc.stdout.partition("\n\n")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert set(rows) == set(exchanges.names())
    for venue, cells in rows.items():
        cls = exchanges.get(venue)
        assert cells[1] == exchanges.exchange_of(venue)
        assert cells[2] == ",".join(sorted(c.value for c in cls.channels))
        assert cells[-2] == str(cls.limits.streams_per_connection)
    assert rows["binance"][3:5] == ["REST", "sync"]
    assert rows["kraken-v1"][3:8] == ["in", "stream", "none", "yes", "checksum"]
    assert rows["coinbase"][6:8] == ["no", "unverifiable"]
    distinct = len({exchanges.exchange_of(v) for v in exchanges.names()})
    assert total.strip() == f"{len(rows)} venue ids, {distinct} distinct exchanges"
    # buffered until a snapshot requested on the socket (HTX `req`), not fetched over REST
    assert rows["htx"][3:5] == ["requested", "prev_id"]


def test_summary_columns_do_not_run_into_each_other_for_long_venue_ids() -> None:
    summary = ReplaySummary()
    long_venue = "a-venue-with-a-very-long-id"
    for venue, symbol in ((long_venue, "BTC-USDT-20250328"), ("okx", "BTC-USDT")):
        summary.add(Trade(venue, symbol, 1.0, 1.0, None, "1", None, 1))
        summary.natives[venue, symbol] = symbol.replace("-", "")
    lines = summary.describe().splitlines()[1:4]
    starts = {line.index(word) for line in lines[1:] for word in line.split()[1:2]}
    assert len(starts) == 1  # the symbol column starts at the same offset in every row
    assert all(len(line.split()) >= 4 for line in lines)


def test_live_view_columns_widen_for_long_venue_ids() -> None:
    import io

    from wsmux.cli import LiveView
    from wsmux.health import Health

    class NoBooks:
        books: dict[tuple[str, str], object] = {}

        def instrument(self, venue: str, symbol: str) -> None:
            return None  # no instrument list loaded

        def health(self) -> Health:
            return Health([], [], [], {}, None, {})

    view = LiveView(NoBooks(), io.StringIO())  # type: ignore[arg-type]
    for venue in ("coinbase-advanced", "a-venue-with-a-much-longer-id", "okx"):
        view.on_event(Trade(venue, "BTC-USD", 1.0, 1.0, None, "1", None, 1))
    lines = view.render().splitlines()
    header, rows = lines[2], lines[3:6]
    assert header.split()[:3] == ["venue", "symbol", "bid"]
    for row in rows:
        venue, symbol = row.split()[:2]
        assert symbol == "BTC-USD", row  # the venue never runs into the symbol
        assert row.index(symbol) == header.index("symbol")


def test_twenty_five_exchanges_each_with_a_mock_and_a_page() -> None:
    """The venue promise: 25 distinct exchanges, every adapter id with a mock in
    wsmux.testing (conformance, demo, benchmark), every exchange with a docs page."""
    import inspect

    from wsmux import testing

    names = exchanges.names()
    by_exchange: dict[str, list[str]] = {}
    for venue in names:
        by_exchange.setdefault(exchanges.exchange_of(venue), []).append(venue)
    assert len(by_exchange) >= 25 and len(names) >= 32, sorted(by_exchange)
    mocks = {
        getattr(obj, "venue", None)
        for obj in (getattr(testing, name) for name in testing.__all__)
        if inspect.isclass(obj) and issubclass(obj, testing.MockExchange)
    }
    assert [v for v in names if v not in mocks] == []
    pages = {p.stem for p in (Path(__file__).resolve().parents[1] / "docs" / "venues").glob("*.rst")}
    assert [e for e, ids in by_exchange.items() if not ({e, *ids} & pages)] == []
