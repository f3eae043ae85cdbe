"""The monitoring dashboard keeps a canary apart from the champion: the history line records the
canary's rows and metrics under ``canary``, the performance figure draws them as series of their
own, and the windows table shows them in a column of their own."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core.config import load_params
from helpers.monitoring import history
from helpers.reports import monitoring_dashboard as dashboard
from helpers.reports.history_plots import performance_figure

SUMMARY_CANARY = {"version": 7, "rows": 120, "labelled_rows": 100, "realized": {"rmse": 150.5, "mae": 99.0},
                  "estimated": {"rmse": {"value": 140.0, "lower": 120.0, "upper": 160.0}}}


def _summary(day: str, canary: dict | None) -> dict:
    end = str(pd.Timestamp(day) + pd.Timedelta(days=1))
    summary = {"window": [day, end], "model": "m", "champion": "6", "rows": 480, "labelled_rows": 400,
               "decision": "ok", "performance": {"rows": 400, "metrics": {"rmse": 60.0}, "judged_on": "realized",
                                                 "estimated": {"rmse": {"value": 62.0, "lower": 55.0,
                                                                         "upper": 70.0}}}}
    if canary is not None:
        summary["canary"] = canary
    return summary


def test_canary_rows_are_recorded_and_drawn_apart_from_the_champion(params_file: Path, tmp_path: Path) -> None:
    params = load_params(params_file)
    with_canary = history.window_record(params, _summary("2026-03-02", SUMMARY_CANARY), None, None, {"rmse": 55.0})
    assert with_canary["canary"] == {
        "version": "7", "rows": 120, "labelled_rows": 100, "metric": "rmse",
        "realized": {"rmse": {"value": 150.5, "lower": None, "upper": None},
                     "mae": {"value": 99.0, "lower": None, "upper": None}},
        "estimated": {"rmse": {"value": 140.0, "lower": 120.0, "upper": 160.0}}}
    # the champion's performance is its own rows' only
    assert with_canary["performance"]["realized"]["rmse"]["value"] == 60.0 and with_canary["rows"] == 480
    without = history.window_record(params, _summary("2026-03-01", None), None, None, {"rmse": 55.0})
    assert "canary" not in without
    assert "canary" not in history.window_record(params, _summary("2026-03-03", {"rows": 0}), None, None, {})

    path = tmp_path / "history.jsonl"
    for record in (without, with_canary):
        history.append_record(path, record)
    records = history.read_history(path)
    assert records[1]["canary"]["realized"]["rmse"]["value"] == 150.5

    ax = performance_figure(records).axes[0]
    lines = {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}
    assert {"realized", "estimated", "canary realized", "canary estimated"} <= set(lines)
    assert lines["realized"].tolist() == [60.0, 60.0]
    assert math.isnan(lines["canary realized"][0]) and lines["canary realized"][1] == 150.5
    assert math.isnan(lines["canary estimated"][0]) and lines["canary estimated"][1] == 140.0
    plain = performance_figure(records[:1]).axes[0]
    assert not any(line.get_label().startswith("canary") for line in plain.get_lines())

    html = dashboard.write_dashboard(records, tmp_path / "index.html").read_text()
    assert "<th class=\"l\">canary</th>" in html and "v7: 120 rows, rmse 150" in html
    assert html.count("<tr>") == 1 + 2 and len(re.findall(r'src="data:image/png;base64,', html)) == 5
    assert dashboard.canary_cell({"version": "7", "rows": 80, "estimated": SUMMARY_CANARY["estimated"]},
                                 "rmse") == "v7: 80 rows, rmse ~140 (estimated)"
