"""Step 2, drift report: the two windows, and the summary, standalone report and alert."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core.catalogue import ALERTS_FILE, DRIFT_REPORT_HTML
from helpers.modeling import data as data_mod
from helpers.modeling import train
from helpers.modeling.data import TIME
from helpers.monitoring import alerts
from helpers.pipeline.context import StepContext
from helpers.reports import drift_report
from helpers.stats.compare import compare
from helpers.stats.results import DriftReport


def drift_windows(ctx: StepContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The baseline and current windows of the data."""
    windows = ctx.params.windows
    return data_mod.window(ctx.frame, windows.baseline), data_mod.window(ctx.frame, windows.current)


def window_table(**frames: pd.DataFrame) -> pd.DataFrame:
    """Rows and time span of each named frame."""
    rows = {
        name: {"rows": len(f), "first": f[TIME].min() if len(f) else None, "last": f[TIME].max() if len(f) else None}
        for name, f in frames.items()
    }
    return pd.DataFrame(rows).T


def target_drift(ctx: StepContext, baseline: pd.DataFrame, current: pd.DataFrame) -> DriftReport:
    """The target's labelled rows of the two windows compared on their own: as a category (class
    shares) for classification, as numbers for regression. It does not enter the dataset-level
    decision, which is about the features."""
    params = ctx.params
    target = params.data.target
    kind = "categorical" if params.data.task == "classification" else "numeric"
    settings = replace(params.drift, column_types={**params.drift.column_types, target: kind}, coefficient_sample=0)
    sides = [train.labelled(frame, params)[0] for frame in (baseline, current)]
    return compare(sides[0], sides[1], settings, features=[target], time_column=TIME)


def finish_drift(ctx: StepContext, report: Any, target_report: DriftReport | None = None) -> dict[str, Any]:
    """Write ``drift.json`` and ``drift_report.html``; send an alert when drift is found. The
    target's own comparison (:func:`target_drift`), when given, is kept under ``target``."""
    html_path = drift_report.write_html(report, ctx.run_dir / DRIFT_REPORT_HTML,
                                        title=f"Drift report: {ctx.params.windows.current.start} "
                                              f"to {ctx.params.windows.current.end} vs baseline")
    summary = report.to_dict()
    summary["report_html"] = Path(html_path).name
    summary["headline"] = {
        "drifted": bool(report.drifted),
        "share_drifted": float(report.share_drifted),
        "coefficient": None if report.coefficient is None else float(report.coefficient),
        "drifted_features": int(sum(1 for f in summary.get("features", []) if f.get("drifted"))),
        "reason": report.reason,
    }
    if target_report is not None:
        summary["target"] = target_report.features[0].to_dict()
        summary["headline"]["target_drifted"] = bool(target_report.features[0].drifted)
    summary["alerts"] = []
    if report.drifted:
        alert = alerts.drift_alert(report, source=f"run {ctx.run_dir.name}", run_dir=str(ctx.run_dir))
        sent = alerts.send_alert(alert, ctx.params.alerts, ctx.params.outputs_dir / ALERTS_FILE)
        summary["alerts"] = [asdict(result) for result in sent]
    ctx.write_summary(summary)
    return summary["headline"]
