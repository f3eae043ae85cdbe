"""The drift report as one self-contained HTML page, and its JSON summary.

The page (template ``drift_report.html``) works offline and opens fast: inline CSS, figures
embedded as base64 PNG drawn directly by :mod:`helpers.reports.drift_images` and encoded with
numpy and zlib (a few milliseconds each; :mod:`helpers.reports.drift_plots` draws the same panels
with matplotlib for notebooks), and
only aggregated data (bin and category counts, statistics), never
a row of the input. From the top:
the decision with its reason, the drift coefficient and the share of drifted features; the
table of every feature (drifted first) with its test, statistic, threshold and decision; the
contribution chart with the rows the coefficient was estimated on ("a sample of N rows a side")
and the drift-over-time chart; then one section per feature with its plot,
every statistic and both sides' summaries. The full JSON summary is embedded at the end
(``<script type="application/json" id="drift-data">``) and also written by :func:`write_json`.

Example
-------
>>> write_html(report, "outputs/drift_report.html", title="July vs January-April")  # doctest: +SKIP
>>> write_json(report, "outputs/drift.json")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from helpers.core.files import write_text
from helpers.reports import drift_images
from helpers.reports.raster import Canvas
from helpers.reports.render import MISSING, render
from helpers.stats.results import TEST_LABEL, DriftReport, FeatureDrift

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
    return render("drift_report.html", **report_context(report, title))


def report_context(report: DriftReport, title: str) -> dict[str, Any]:
    """What ``drift_report.html`` (and the pages extending it) need to show ``report``."""
    canvases = report_canvases(report)
    return {"title": title, "report": report, "images": _data_uris(report, canvases), "cards": summary_cards(report),
            "widths": {name: round(canvas.width) for name, canvas in canvases.items()},
            "generated": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "test_labels": TEST_LABEL, "side_rows": side_rows, "coefficient_basis": coefficient_basis(report)}


def report_images(report: DriftReport) -> dict[str, str]:
    """The report's figures as PNG data URIs: ``contributions``, ``over_time`` and ``feature:<name>``."""
    return _data_uris(report, report_canvases(report))


def report_canvases(report: DriftReport) -> dict[str, Canvas]:
    """The report's panels, drawn directly: ``contributions``, ``over_time`` (with a time column) and
    ``feature:<name>`` for each compared feature."""
    canvases = {"contributions": drift_images.contributions_image(report)}
    if report.over_time is not None:
        canvases["over_time"] = drift_images.over_time_image(report)
    for feature in report.features:
        if feature.compared:
            canvases[f"feature:{feature.feature}"] = drift_images.feature_image(feature)
    return canvases


def _data_uris(report: DriftReport, canvases: dict[str, Canvas]) -> dict[str, str]:
    return {name: canvas.data_uri() for name, canvas in canvases.items()}


def summary_cards(report: DriftReport) -> list[tuple[str, str]]:
    """The headline numbers as (label, value) pairs."""
    return [
        ("drift coefficient", MISSING if report.coefficient is None else f"{report.coefficient:.3f}"),
        ("share of drifted features", f"{report.share_drifted:.0%} ({report.n_drifted} of {report.n_compared})"),
        ("baseline rows", f"{report.baseline_rows:,}"),
        ("target rows", f"{report.target_rows:,}"),
    ]


def coefficient_basis(report: DriftReport) -> str | None:
    """Which rows the drift coefficient was estimated on (None when it was not computed)."""
    per_side = report.coefficient_detail.get("sample_rows_per_side")
    if report.coefficient is None or not per_side:
        return None
    detail = report.coefficient_detail
    train, test = detail.get("train_rows", 0), detail.get("test_rows", 0)
    split = f"{train:,} of the {train + test:,} rows fit the classifier, the other {test:,} score it"
    if per_side < max(report.baseline_rows, report.target_rows):
        return f"The drift coefficient is estimated on a sample of {per_side:,} rows a side: {split}."
    return f"The drift coefficient is estimated on every row: {split}."


def side_rows(feature: FeatureDrift) -> list[tuple[str, Any, Any]]:
    """(statistic, baseline value, target value) for every summary key of either side, in order."""
    keys = dict.fromkeys([*feature.baseline, *feature.target])
    return [(key, feature.baseline.get(key), feature.target.get(key)) for key in keys]
