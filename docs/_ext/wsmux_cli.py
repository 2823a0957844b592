"""Sphinx extension: the CLI reference, generated from the ``wsmux`` argparse parser.

``.. wsmux-cli::`` renders every command and subcommand of
:func:`wsmux.cli.build_parser` — usage line, description, and a table of its
arguments with their help and defaults — so the reference can never drift
from the parser. (sphinx-argparse does the same in general; this is the few
lines wsmux needs, without another dependency.)
"""

from __future__ import annotations

import argparse
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

__all__ = ["setup"]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any, str]]:
    """(path, parser, one-line help) of every subcommand, depth first."""
    out: list[tuple[tuple[str, ...], Any, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append(((*path, name), sub, helps.get(name, "")))
                out.extend(_commands(sub, (*path, name)))
    return out


def _argument_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            metavar = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
            name = ", ".join(f"{opt}{metavar}" for opt in action.option_strings)
        else:
            name = str(action.metavar or action.dest)
        text = action.help or ""
        if action.choices and not isinstance(action.choices, dict):
            text += f" (one of: {', '.join(str(c) for c in action.choices)})"
        if action.required and action.option_strings:
            text += " (required)"
        rows.append((name, text))
    return rows


def _escape(text: str) -> str:
    """Plain text as reST (``*.wslog`` is not emphasis)."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")


def _rst_table(rows: list[tuple[str, str]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 35 65", "", "   * - argument", "     - meaning"]
    for name, text in rows:
        lines += [f"   * - ``{name}``", f"     - {_escape(text)}"]
    return lines


class WsmuxCli(SphinxDirective):
    """``.. wsmux-cli::`` — the whole command line reference."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from wsmux.cli import build_parser

        parser = build_parser()
        parser.prog = "wsmux"
        lines: list[str] = []

        def usage(p: argparse.ArgumentParser) -> None:
            text = p.format_usage().strip().removeprefix("usage: ")
            lines.extend(["", ".. code-block:: text", "", *(f"   {line}" for line in text.splitlines()), ""])

        usage(parser)
        lines += _rst_table(_argument_rows(parser))
        epilog = parser.epilog or ""
        if epilog:
            lines += ["", ".. code-block:: text", "", *(f"   {line}" for line in epilog.splitlines()), ""]
        for path, sub, summary in _commands(parser):
            title = "wsmux " + " ".join(path)
            lines += ["", title, "-" * len(title), "", _escape(summary[:1].upper() + summary[1:]) + "."]
            if sub.description:
                lines += ["", _escape(sub.description)]
            usage(sub)
            rows = _argument_rows(sub)
            if rows:
                lines += _rst_table(rows)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="wsmux.cli.build_parser"), node)
        return node.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("wsmux-cli", WsmuxCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
