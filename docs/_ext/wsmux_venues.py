"""Sphinx extension: the venue table, generated from the adapters' own declarations.

``.. wsmux-venues::`` renders one row per registered venue id from
:func:`wsmux.exchanges.describe` (exchange, adapter, channels, where the book
snapshot comes from, continuity rule, checksum, integrity level, limits), and
links each venue's own page where ``docs/venues/<id>.rst`` exists, so the
table cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

__all__ = ["setup"]

_COLUMNS = ("venue id", "exchange", "channels", "book", "integrity", "streams/conn", "msgs/s")


class VenueTable(SphinxDirective):
    """The ``wsmux-venues`` directive."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from wsmux import exchanges

        pages = Path(self.env.srcdir) / "venues"
        rows: list[list[nodes.Node | str]] = []
        for venue in exchanges.names():
            info = exchanges.describe(venue)
            if info.snapshot is None:
                book = "-"
            else:
                book = f"{info.snapshot} snapshot, {info.continuity}" + (", checksum" if info.checksum else "")
            first: nodes.Node | str = venue
            if (pages / f"{venue}.rst").is_file():
                ref = nodes.reference("", venue, internal=True, refuri=f"venues/{venue}.html")
                first = nodes.paragraph("", "", ref)
            rows.append(
                [
                    first,
                    info.exchange,
                    ", ".join(info.channels),
                    book,
                    info.integrity.value if info.integrity is not None else "-",
                    str(info.streams_per_connection),
                    f"{info.messages_per_second:g}",
                ]
            )
        distinct = len({exchanges.exchange_of(v) for v in exchanges.names()})
        summary = nodes.paragraph(text=f"{len(rows)} venue ids, {distinct} distinct exchanges.")
        return [summary, _table(rows)]


def _cell(value: nodes.Node | str) -> nodes.entry:
    entry = nodes.entry()
    entry += value if isinstance(value, nodes.Node) else nodes.paragraph(text=value)
    return entry


def _table(rows: list[list[Any]]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(_COLUMNS))
    table += group
    for _ in _COLUMNS:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    header = nodes.row()
    for title in _COLUMNS:
        header += _cell(title)
    head += header
    group += head
    body = nodes.tbody()
    for values in rows:
        row = nodes.row()
        for value in values:
            row += _cell(value)
        body += row
    group += body
    return table


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("wsmux-venues", VenueTable)
    return {"version": "1", "parallel_read_safe": True}
