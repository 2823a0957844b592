"""Sphinx configuration for wsmux."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "wsmux"
author = "wsmux developers"
copyright = "2026, wsmux developers"
release = "0.1.0"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "wsmux_cli", "wsmux_venues"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# one parameter per line once a signature is long (no wall of text, no side scrolling)
python_maximum_signature_line_length = 88

html_theme = "furo"
html_title = "wsmux"
html_static_path = ["_static"]
html_css_files = ["wsmux.css"]
html_theme_options = {"navigation_with_keys": True}
pygments_style = "friendly"
pygments_dark_style = "monokai"

exclude_patterns = ["_build"]
nitpicky = False
suppress_warnings = ["ref.python"]

# Characters that common fonts lack are written out plainly in the rendered docs
# (Binance's "USDⓈ-M" showed as a missing-glyph box).
_PLAIN = {"Ⓢ": "S"}


def _plain_text(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        for char, plain in _PLAIN.items():
            line = line.replace(char, plain)
        lines[i] = line


def setup(app: Any) -> None:
    app.connect("autodoc-process-docstring", _plain_text)
