"""The Jinja2 environment behind every Driftgate HTML page.

Templates live in ``helpers/reports/templates/`` (shipped as package data): one base layout
(``base.html``, which inlines ``style.css`` so each page stays one offline file) and one
template per page. Autoescape is on and undefined names raise, so a page never shows
unescaped text nor silently drops a value. Number formatting is done by the filters below.

Example
-------
>>> render("rollback.html", title="Rollback", done=done, facts=[("model", "bike")])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from helpers.core.files import write_text
from helpers.stats.results import json_safe

MISSING = "n/a"  # shown for a number that could not be computed (the notes say why)


@cache
def environment() -> Environment:
    """The shared environment: package templates, autoescape, StrictUndefined, number filters."""
    env = Environment(
        loader=PackageLoader("helpers.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=format_number, pct=format_percent, fmt=format_spec, json_text=json_text,
                       json_data=json_data, anchor=anchor)
    env.globals.update(zip=zip, MISSING=MISSING)
    return env


def render(template: str, **context: Any) -> str:
    """Render the named template with ``context``."""
    return environment().get_template(template).render(**context)


def write_page(path: str | os.PathLike[str], template: str, **context: Any) -> Path:
    """Render the named template and write it to ``path`` atomically; return the path."""
    return write_text(Path(path), render(template, **context))


# --------------------------------------------------------------------------- filters


def format_number(value: Any) -> str:
    """A statistic for a table: ``n/a`` when missing, yes/no, thousands, 4 significant digits."""
    value = json_safe(value)
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0.0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e6:
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def format_percent(value: float | None) -> str:
    """A share as a percentage with one decimal, ``n/a`` when missing."""
    return MISSING if value is None else f"{value:.1%}"


def format_spec(value: Any, spec: str) -> str:
    """``format(value, spec)``, e.g. ``{{ x | fmt(".4g") }}``; ``nan`` stands for a missing number."""
    return format(math.nan if value is None else value, spec)


def json_text(value: Any) -> str:
    """``value`` as JSON text (escaped like any text when shown)."""
    return json.dumps(value)


def json_data(value: Any) -> Markup:
    """Strict compact JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&``
    are written as ``\\u`` escapes, so no text in it can close or open an element."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def anchor(name: str) -> str:
    """An HTML id for any feature name (its UTF-8 bytes in hex)."""
    return name.encode("utf-8").hex()
