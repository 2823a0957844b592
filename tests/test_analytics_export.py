"""wsmux export: logs and text captures to CSV/Parquet, checked against the events
the replay produces and against batch computations."""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from tradegen import random_trades, write_coinbase_log

from wsmux import BookSnapshot, BookUpdate, Quote, Trade
from wsmux.analytics import PerInstrument, TimeBars
from wsmux.cli import main
from wsmux.convert import to_dict
from wsmux.errors import ConfigError
from wsmux.export import export
from wsmux.log import Replay


@pytest.fixture
def coinbase_log(tmp_path: Path) -> tuple[Path, list[Trade]]:
    folder = tmp_path / "logs"
    folder.mkdir()
    carried = write_coinbase_log(folder, random_trades(3_000, seed=8, sideless_share=0.0))
    return folder, carried


def test_trades_to_csv_and_parquet_are_the_replayed_trades(
    coinbase_log: tuple[Path, list[Trade]], tmp_path: Path
) -> None:
    folder, carried = coinbase_log
    replayed = [e for e in Replay(folder).events() if isinstance(e, Trade)]
    assert [(t.price, t.size, t.side, t.ts) for t in replayed] == [(t.price, t.size, t.side, t.ts) for t in carried]
    for to in ("csv", "parquet"):
        out = tmp_path / f"trades.{to}"
        result = export([folder], to=to, what="trades", out=out)
        assert result.rows == len(carried) and result.frames == len(carried)
        df = pd.read_csv(out) if to == "csv" else pd.read_parquet(out)
        assert df["price"].tolist() == [t.price for t in replayed]
        assert df["size"].tolist() == [t.size for t in replayed]
        assert df["ts"].tolist() == [t.ts for t in replayed]
        assert df["side"].tolist() == [t.side.value for t in replayed if t.side]
        assert df["venue"].unique().tolist() == ["coinbase"]


def test_bars_to_parquet_match_a_batch_resample(coinbase_log: tuple[Path, list[Trade]], tmp_path: Path) -> None:
    folder, carried = coinbase_log
    out = tmp_path / "bars.parquet"
    export([folder], to="parquet", what="bars:1s", out=out)
    bars = pd.read_parquet(out)
    # pandas resample of the carried trades (in order: no late trades in this log)
    df = pd.DataFrame({"ts": pd.to_datetime([t.ts for t in carried], unit="ns"), "price": [t.price for t in carried],
                       "size": [t.size for t in carried]}).set_index("ts")  # fmt: skip
    ohlc = df["price"].resample("1s").ohlc().dropna()
    volume = df["size"].resample("1s").agg(math.fsum)[ohlc.index]
    count = df["size"].resample("1s").count()[ohlc.index]
    assert bars["start_ts"].tolist() == ohlc.index.astype("int64").tolist()
    for col in ("open", "high", "low", "close"):
        assert bars[col].tolist() == ohlc[col].tolist()
    assert bars["volume"].tolist() == volume.tolist()
    assert bars["trades"].tolist() == count.tolist()
    assert bars["kind"].unique().tolist() == ["time:1s"]


def test_progress_bar_goes_to_the_given_stream(coinbase_log: tuple[Path, list[Trade]], tmp_path: Path) -> None:
    folder, _ = coinbase_log
    progress = io.StringIO()
    export([folder], to="csv", what="trades", out=tmp_path / "t.csv", progress=progress)
    lines = progress.getvalue().splitlines()
    assert lines[-1].startswith("export [##############################] 100% 3,000/3,000 frames, 3,000 rows")


def test_parquet_without_pyarrow_names_the_extra(
    coinbase_log: tuple[Path, list[Trade]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ConfigError, match=r"pip install 'wsmux\[parquet\]'"):
        export([coinbase_log[0]], to="parquet", what="trades", out=tmp_path / "x.parquet")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "xlsx", "--what", "trades"], "invalid choice"),
        (["--to", "csv", "--what", "bars:1"], "bad interval"),
        (["--to", "csv", "--what", "book:x"], "cannot export"),
    ],
)
def test_cli_rejects_bad_arguments(
    coinbase_log: tuple[Path, list[Trade]],
    tmp_path: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["export", str(coinbase_log[0]), *args, "--out", str(tmp_path / "x")]
    try:
        code = main(argv, out=io.StringIO())
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_export_writes_and_reports(coinbase_log: tuple[Path, list[Trade]], tmp_path: Path) -> None:
    out = io.StringIO()
    code = main(
        [
            "export",
            str(coinbase_log[0]),
            "--to",
            "csv",
            "--what",
            "bars:5s",
            "--out",
            str(tmp_path / "b.csv"),
            "--quiet",
        ],
        out=out,
    )
    assert code == 0
    bars = pd.read_csv(tmp_path / "b.csv")
    assert bars["trades"].sum() == 3_000
    assert f"{len(bars):,} rows (bars:5s) from 3,000 frames" in out.getvalue()


def test_recorded_captures_book_bbo_and_bars(recordings_dir: Path, tmp_path: Path) -> None:
    """A text capture is a valid LOG: book:N and bbo rows are what the replayed books show."""
    capture = recordings_dir / "COINBASE.ws.28.0"
    replay = Replay([capture])
    expected_books = []
    quotes = 0
    trades: list[Trade] = []
    for e in replay.events():
        if isinstance(e, BookSnapshot | BookUpdate):
            view = replay.book(e.venue, e.symbol)
            if view.valid:
                bids, asks = view.depth(3)
                expected_books.append((e.symbol, bids, asks))
        quotes += isinstance(e, Quote)
        if isinstance(e, Trade):
            trades.append(e)
    export([capture], to="parquet", what="book:3", out=tmp_path / "book.parquet")
    book = pd.read_parquet(tmp_path / "book.parquet")
    assert len(book) == len(expected_books)
    for (symbol, bids, asks), row in zip(expected_books[::97], book.iloc[::97].itertuples(), strict=True):
        assert row.symbol == symbol
        assert [(row.bid_price_1, row.bid_size_1), (row.bid_price_2, row.bid_size_2)] == list(bids[:2])
        assert (row.ask_price_1, row.ask_size_1) == asks[0]
    assert (book["bid_price_1"] < book["ask_price_1"]).all()  # valid books only: never crossed
    export([capture], to="csv", what="bbo", out=tmp_path / "bbo.csv")
    bbo = pd.read_csv(tmp_path / "bbo.csv")
    assert (bbo["source"] == "quote").sum() == quotes
    assert ((bbo["source"] == "book").sum()) > 0
    export([capture], to="csv", what="bars:1s", out=tmp_path / "bars.csv")
    bars = pd.read_csv(tmp_path / "bars.csv")
    op = PerInstrument(lambda v, s: TimeBars("1s"))
    expected = [b for t in trades for b in op.update(t)] + list(op.flush())
    assert len(bars) == len(expected)
    exp = pd.DataFrame([to_dict(b) for b in expected]).drop(columns="type")
    pd.testing.assert_frame_equal(
        bars.reset_index(drop=True), exp[bars.columns].reset_index(drop=True), check_dtype=False
    )


def test_bad_what_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        export([tmp_path], to="csv", what="candles", out=tmp_path / "x.csv")
    with pytest.raises(ConfigError):
        export([tmp_path], to="json", what="trades", out=tmp_path / "x.csv")


def test_example_bars_to_parquet_runs(
    coinbase_log: tuple[Path, list[Trade]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy

    example = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "bars_to_parquet.py"))
    out = tmp_path / "bars.parquet"
    assert example["main"]([str(coinbase_log[0]), "--out", str(out)]) == 0
    bars = pd.read_parquet(out)
    assert bars["trades"].sum() == 3_000
    assert f"{len(bars)} bars from 3000 frames" in capsys.readouterr().out
