"""1-second bars to Parquet from a log (or a text capture), then a look at them.

Two ways: ``wsmux.export.export`` (what ``wsmux export`` runs), and the
same bars computed by hand with the operators, to show the pieces::

    python examples/bars_to_parquet.py LOG... [--out bars.parquet] [--interval 1s]

Needs pyarrow: ``pip install 'wsmux[parquet]'``.
"""

from __future__ import annotations

import argparse
import sys

from wsmux import Trade
from wsmux.analytics import Bar, PerInstrument, TimeBars
from wsmux.export import export
from wsmux.log import Replay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", help="wsmux logs, folders of them, or text captures")
    parser.add_argument("--out", default="bars.parquet")
    parser.add_argument("--interval", default="1s")
    args = parser.parse_args(argv)

    # 1. one call: replay, bar, write (progress bar on stderr)
    result = export(args.logs, to="parquet", what=f"bars:{args.interval}", out=args.out, progress=sys.stderr)
    print(f"{result.rows} bars from {result.frames} frames -> {args.out}")

    # 2. the same bars by hand: a replay's trades through one TimeBars per instrument
    bars_of = PerInstrument(lambda venue, symbol: TimeBars(args.interval))
    bars: list[Bar] = []
    for event in Replay(args.logs, skip_unsupported=True).events():
        if isinstance(event, Trade):
            bars.extend(b for b in bars_of.update(event) if isinstance(b, Bar))
    bars.extend(b for b in bars_of.flush() if isinstance(b, Bar))

    # 3. read the file back and compare
    import pyarrow.parquet as pq

    table = pq.read_table(args.out)
    assert table.num_rows == len(bars), (table.num_rows, len(bars))
    assert table.column("volume").to_pylist() == [b.volume for b in bars]
    for row in table.slice(0, 5).to_pylist():
        print(
            f"{row['venue']:>10} {row['symbol']:<10} {row['start_ts']} "
            f"O {row['open']:<10g} H {row['high']:<10g} L {row['low']:<10g} C {row['close']:<10g} "
            f"V {row['volume']:<12g} VWAP {row['vwap']:<10g} n={row['trades']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
