"""The drift report as one self-contained HTML page, and its JSON summary.

The page works offline and opens fast: inline CSS, figures embedded as base64 PNG, and only
aggregated data (bin and category counts, statistics), never a row of the input. From the top:
the decision with its reason, the drift coefficient and the share of drifted features; the
table of every feature (drifted first) with its test, statistic, threshold and decision; the
contribution chart and the drift-over-time chart; then one section per feature with its plot,
every statistic and both sides' summaries. The full JSON summary is embedded at the end
(``<script type="application/json" id="drift-data">``) and also written by :func:`write_json`.

Example
-------
>>> write_html(report, "outputs/drift_report.html", title="July vs January-April")  # doctest: +SKIP
>>> write_json(report, "outputs/drift.json")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from helpers.core.files import write_text
from helpers.reports import drift_plots
from helpers.stats.results import TEST_LABEL, DriftReport, FeatureDrift, json_safe

MISSING = "n/a"  # shown for a number that could not be computed (the notes say why)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1.2em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin:.3em 0}
.summary{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:10em}
.card .v{font-size:1.6em;font-weight:600}.card .k{color:#666;font-size:.85em}
.drift{color:#b00020}.ok{color:#1b7f2a}
.verdict{font-size:1.3em;font-weight:700;padding:.4em .8em;border-radius:6px;display:inline-block}
.verdict.drift{background:#fde7ea}.verdict.ok{background:#e6f4ea}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f5f5f5}
td.l,th.l{text-align:left}tr.drifted td{background:#fff3f4}
.feature{border:1px solid #e3e3e3;border-radius:6px;padding:.6em 1em;margin:1em 0;display:flex;gap:1.2em;
flex-wrap:wrap}
.feature img{max-width:420px}.notes{color:#8a5300;font-size:.85em}
.muted{color:#666;font-size:.85em}img{max-width:100%}
"""


# --------------------------------------------------------------------------- writing


def write_html(report: DriftReport, path: str | os.PathLike[str], title: str = "Drift report") -> Path:
    """Render the report to one self-contained HTML file, atomically; return its path."""
    return write_text(Path(path), render_html(report, title=title))


def write_json(report: DriftReport, path: str | os.PathLike[str]) -> Path:
    """Write the report's JSON summary (every number; None where not computable), atomically."""
    text = json.dumps(report.to_dict(), indent=2, allow_nan=False)
    return write_text(Path(path), text + "\n")


def render_html(report: DriftReport, title: str = "Drift report") -> str:
    """The report as HTML text (see the module docstring for its layout)."""
    images = _images(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">Generated {dt.datetime.now().astimezone().isoformat(timespec="seconds")} by Driftgate.</p>',
        _summary_section(report),
        _notes_block(report.notes),
        _features_table(report),
        _figure_section("Drift coefficient: contribution by feature", images.get("contributions")),
        _over_time_section(report, images.get("over_time")),
        "<h2>Features</h2>",
        '<p class="muted">Plots: <span style="color:#1f77b4">&#9632; baseline</span> '
        '<span style="color:#ff7f0e">&#9632; target</span>, as shares of rows on the baseline\'s bins; '
        "hatched end bars hold the values below or above the baseline's range.</p>",
        *(_feature_section(f, images.get(f"feature:{f.feature}")) for f in report.features),
        _settings_section(report),
        _embedded_json(report),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _images(report: DriftReport) -> dict[str, str]:
    figures = drift_plots.report_figures(report)
    return {name: drift_plots.to_data_uri(fig) for name, fig in figures.items()}


# --------------------------------------------------------------------------- sections


def _summary_section(report: DriftReport) -> str:
    kind = "drift" if report.drifted else "ok"
    verdict = "DRIFT DETECTED" if report.drifted else "NO DRIFT"
    cards = [
        ("drift coefficient", MISSING if report.coefficient is None else f"{report.coefficient:.3f}"),
        ("share of drifted features", f"{report.share_drifted:.0%} ({report.n_drifted} of {report.n_compared})"),
        ("baseline rows", f"{report.baseline_rows:,}"),
        ("target rows", f"{report.target_rows:,}"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>' for k, v in cards
    )
    drifted = ", ".join(report.drifted_features) or "none"
    return (
        f'<div class="verdict {kind}">{verdict}</div>'
        f"<p><b>Reason:</b> {_e(report.reason)}</p>"
        f'<div class="summary">{card_html}</div>'
        f"<p><b>Drifted features:</b> {_e(drifted)}</p>"
    )


def _notes_block(notes: Iterable[str]) -> str:
    notes = list(notes)
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<div class="notes"><b>Notes</b><ul>{items}</ul></div>'


def _features_table(report: DriftReport) -> str:
    head = (
        '<tr><th class="l">feature</th><th class="l">type</th><th class="l">test</th><th>statistic</th>'
        '<th>rule</th><th>threshold</th><th class="l">decision</th><th>contribution</th>'
        '<th class="l">notes</th></tr>'
    )
    rows = []
    for f in report.features:
        decision = _decision_cell(f)
        rows.append(
            f'<tr class="{"drifted" if f.drifted else ""}"><td class="l"><a href="#f-{_anchor(f.feature)}">'
            f"{_e(f.feature)}</a></td><td class=\"l\">{_e(f.type)}</td><td class=\"l\">{_e(f.test or MISSING)}</td>"
            f"<td>{_num(f.statistic)}</td><td>{_e(f.rule if f.test else '')}</td><td>{_num(f.threshold)}</td>"
            f'<td class="l">{decision}</td><td>{_pct(f.contribution)}</td>'
            f'<td class="l notes">{_e("; ".join(f.notes))}</td></tr>'
        )
    return f"<h2>Per-feature decisions</h2><table>{head}{''.join(rows)}</table>"


def _decision_cell(f: FeatureDrift) -> str:
    if not f.compared:
        return '<span class="muted">not compared</span>'
    return '<span class="drift">drift</span>' if f.drifted else '<span class="ok">no drift</span>'


def _figure_section(heading: str, uri: str | None) -> str:
    if uri is None:
        return ""
    return f'<h2>{_e(heading)}</h2><img alt="{_e(heading)}" src="{uri}">'


def _over_time_section(report: DriftReport, uri: str | None) -> str:
    ot = report.over_time
    if ot is None or uri is None:
        return ""
    head = '<tr><th class="l">feature</th>' + "".join(f"<th>{_e(p)}</th>" for p in ot.periods) + "</tr>"
    rows = [
        '<tr><td class="l">rows</td>' + "".join(f"<td>{n:,}</td>" for n in ot.rows) + "</tr>",
        '<tr><td class="l">share drifted</td>' + "".join(f"<td>{_pct(v)}</td>" for v in ot.share_drifted) + "</tr>",
    ]
    for name, series in ot.features.items():
        cells = "".join(
            f'<td class="{"drift" if d else ""}">{_num(v)}</td>'
            for v, d in zip(series["values"], series["drifted"], strict=True)
        )
        rows.append(f'<tr><td class="l">{_e(name)} ({_e(series["test"])})</td>{cells}</tr>')
    return (
        f"<h2>Drift over time (per {_e(ot.period)} of {_e(ot.time_column)})</h2>"
        f'<img alt="drift over time" src="{uri}"><table>{head}{"".join(rows)}</table>'
    )


def _feature_section(f: FeatureDrift, uri: str | None) -> str:
    kind = "drift" if f.drifted else "ok"
    status = "drift" if f.drifted else ("no drift" if f.compared else "not compared")
    label = TEST_LABEL.get(f.test or "", "")
    raw_p = ""
    if f.p_value is not None and f.p_value != f.statistic:
        raw_p = f" (p-value before correction {_num(f.p_value)})"
    test_line = (
        f"<p>{_e(label)}: <b>{_num(f.statistic)}</b> {_e(f.rule)} {_num(f.threshold)}{raw_p}</p>" if f.compared else ""
    )
    image = f'<div><img alt="{_e(f.feature)}" src="{uri}"></div>' if uri else ""
    categories = _categories_block(f)
    return (
        f'<div class="feature" id="f-{_anchor(f.feature)}">{image}<div>'
        f'<h3>{_e(f.feature)} <span class="{kind}">({status})</span> <span class="muted">{_e(f.type)}</span></h3>'
        f"{test_line}{_metrics_table(f)}{_sides_table(f)}{categories}{_notes_block(f.notes)}</div></div>"
    )


def _metrics_table(f: FeatureDrift) -> str:
    if not f.metrics:
        return ""
    cells = "".join(f'<tr><td class="l">{_e(k)}</td><td>{_num(v)}</td></tr>' for k, v in f.metrics.items())
    contribution = f'<tr><td class="l">contribution</td><td>{_pct(f.contribution)}</td></tr>'
    return f"<table><tr><th class=\"l\">statistic</th><th>value</th></tr>{cells}{contribution}</table>"


def _sides_table(f: FeatureDrift) -> str:
    keys = list(dict.fromkeys([*f.baseline, *f.target]))
    if not keys:
        return ""
    rows = "".join(
        f'<tr><td class="l">{_e(k)}</td><td>{_num(f.baseline.get(k))}</td><td>{_num(f.target.get(k))}</td></tr>'
        for k in keys
    )
    return f'<table><tr><th class="l"></th><th>baseline</th><th>target</th></tr>{rows}</table>'


def _categories_block(f: FeatureDrift) -> str:
    parts = []
    for label, values in (("new in the target", f.new_categories), ("gone from the target", f.gone_categories)):
        if values:
            shown = ", ".join(values[:50]) + (f" ... ({len(values)} in all)" if len(values) > 50 else "")
            parts.append(f"<p><b>Categories {label}:</b> {_e(shown)}</p>")
    return "".join(parts)


def _settings_section(report: DriftReport) -> str:
    rows = "".join(
        f'<tr><td class="l">{_e(k)}</td><td class="l">{_e(json.dumps(v))}</td></tr>' for k, v in report.settings.items()
    )
    detail = "".join(
        f'<tr><td class="l">coefficient {_e(k)}</td><td class="l">{_e(json.dumps(v))}</td></tr>'
        for k, v in report.coefficient_detail.items()
    )
    return f"<h2>Settings</h2><table>{rows}{detail}</table>"


def _embedded_json(report: DriftReport) -> str:
    text = json.dumps(report.to_dict(), allow_nan=False, separators=(",", ":"))
    text = text.replace("</", "<\\/")  # never close the script element early
    return f'<script type="application/json" id="drift-data">{text}</script>'


# --------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
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
    return _e(value)


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1%}"


def _anchor(name: str) -> str:
    return name.encode("utf-8").hex()
