"""The monitoring history: one JSON line per monitored window, in ``<outputs>/monitoring/history.jsonl``.

Each monitoring run records its window (:func:`record_window`): the window and model, the drift
coefficient and the share of drifted features with their thresholds, each feature's test,
statistic, threshold, p-value, decision and contribution, the prediction drift, the estimated
and realized performance (``performance.estimated`` and ``performance.realized`` of the
monitoring result, when present), and the row counts. When rows of the window were answered by a
canary (role ``canary``), ``canary`` holds the canary's version, rows and metrics apart from the
champion's (:func:`canary_record`). A window with too few captured rows is
recorded with ``status: "too few rows"`` and no statistics.

Writing never leaves a file that readers cannot use: a new window is appended with one
``write`` of one whole line (a torn line left by a crash is ended first, so it never swallows
the next record), and a window already in the file (same model and window) is replaced by
rewriting the file atomically (temporary file, then rename), so re-running a window never piles
up duplicates. Writers take an advisory lock. :func:`read_history` skips lines that do not
parse (a torn last line) and keeps the last record of each window.

Example
-------
>>> record_window(params, result.summary, report, prediction_report, champion.test_metrics)  # doctest: +SKIP
>>> [r["drift"]["coefficient"] for r in read_history(history_path(params))]  # doctest: +SKIP
[0.04, 0.91]
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core.catalogue import MONITORING_DASHBOARD, MONITORING_DIR, MONITORING_HISTORY
from helpers.core.config import KNOWN_METRICS, Params
from helpers.core.files import write_text
from helpers.reports.monitoring_dashboard import write_dashboard
from helpers.stats.results import json_safe

TOO_FEW_ROWS, MONITORED = "too few rows", "monitored"


def history_path(params: Params) -> Path:
    """``<outputs>/monitoring/history.jsonl``."""
    return params.outputs_dir / MONITORING_DIR / MONITORING_HISTORY


def window_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """What identifies a record: the model and the window's start and end."""
    window = record.get("window") or {}
    return str(record.get("model")), str(window.get("start")), str(window.get("end"))


# --------------------------------------------------------------------------- the record


def window_record(params: Params, summary: dict[str, Any], report: Any | None, prediction: Any | None,
                  test_metrics: dict[str, float]) -> dict[str, Any]:
    """The history line of one monitored window (JSON-ready).

    ``summary`` is the monitoring summary, ``report`` the feature drift report and ``prediction``
    the prediction drift report (None when the window had too few rows or no predictions).
    """
    start, end = summary["window"]
    record: dict[str, Any] = {
        "window": {"start": str(start), "end": str(end)},
        "model": summary.get("model"), "version": summary.get("champion"),
        "recorded_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "status": MONITORED if report is not None else TOO_FEW_ROWS,
        "decision": summary.get("decision"), "reason": summary.get("reason"),
        "rows": summary.get("rows"), "labelled_rows": summary.get("labelled_rows"),
        "drift": {"coefficient": None, "share_drifted": None, "drifted": None,
                  "coefficient_threshold": params.drift.coefficient_threshold,
                  "drift_share": params.drift.drift_share},
        "features": {}, "prediction_drift": None,
        "performance": performance_record(params, summary.get("performance"), test_metrics),
        "report": Path(str(summary.get("report_html", ""))).name or None,
    }
    canary = canary_record(params, summary.get("canary"))
    if canary is not None:
        record["canary"] = canary
    if report is not None:
        record["drift"].update(coefficient=report.coefficient, share_drifted=report.share_drifted,
                               drifted=bool(report.drifted))
        record["features"] = {f.feature: feature_record(f) for f in report.features if f.compared}
    if prediction is not None:
        record["prediction_drift"] = next((feature_record(f) for f in prediction.features
                                           if f.feature == "prediction" and f.compared), None)
    return json_safe(record)


def feature_record(feature: Any) -> dict[str, Any]:
    """One compared feature's test, statistic, threshold, p-value, decision and contribution."""
    return {"test": feature.test, "statistic": feature.statistic, "threshold": feature.threshold,
            "p_value": feature.p_value, "drifted": bool(feature.drifted), "contribution": feature.contribution}


def performance_record(params: Params, performance: dict[str, Any] | None,
                       test_metrics: dict[str, float]) -> dict[str, Any]:
    """The judged metric, the champion's test value and the ``monitor.max_degradation`` limit, and
    every estimated and realized metric as ``{"value", "lower", "upper"}`` (realized metrics come
    from ``performance.realized``, else from the metrics on labelled captures)."""
    performance = performance if isinstance(performance, dict) else {}
    metric = params.monitor.metric
    reference = test_metrics.get(metric)
    lower_is_better = KNOWN_METRICS[params.data.task].get(metric) == "lower"
    realized = performance.get("realized")
    if not isinstance(realized, dict):
        realized = performance.get("metrics") if performance.get("rows") else {}
    return {"metric": metric, "lower_is_better": lower_is_better, "reference": reference,
            "limit": degradation_limit(reference, params.monitor.max_degradation, lower_is_better),
            "estimated": _metric_values(performance.get("estimated")), "realized": _metric_values(realized)}


def canary_record(params: Params, canary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The canary's own part of the window (``summary["canary"]``: the rows captured with role
    ``canary``), apart from the champion's: its version, rows, labelled rows, and its realized and
    estimated metrics as ``{"value", "lower", "upper"}``; None without canary rows."""
    if not isinstance(canary, dict) or not canary.get("rows"):
        return None
    return {"version": None if canary.get("version") is None else str(canary["version"]),
            "rows": canary.get("rows"), "labelled_rows": canary.get("labelled_rows"),
            "metric": params.monitor.metric, "realized": _metric_values(canary.get("realized")),
            "estimated": _metric_values(canary.get("estimated"))}


def degradation_limit(reference: float | None, allowed: float, lower_is_better: bool) -> float | None:
    """The worst value a metric may take: ``reference`` worsened by the share ``allowed``."""
    if reference is None:
        return None
    return reference * (1 + allowed) if lower_is_better else reference * (1 - allowed)


def _metric_values(metrics: Any) -> dict[str, dict[str, float | None]]:
    """``{metric: {"value", "lower", "upper"}}`` from dicts of such entries or of plain numbers."""
    if not isinstance(metrics, dict):
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for name, entry in metrics.items():
        if isinstance(entry, dict):
            out[str(name)] = {key: _number(entry.get(key)) for key in ("value", "lower", "upper")}
        elif _number(entry) is not None:
            out[str(name)] = {"value": _number(entry), "lower": None, "upper": None}
    return out


def _number(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- the file


def record_window(params: Params, summary: dict[str, Any], report: Any | None, prediction: Any | None,
                  test_metrics: dict[str, float]) -> dict[str, Any]:
    """Build the window's record (:func:`window_record`) and write it to the history; return it."""
    record = window_record(params, summary, report, prediction, test_metrics)
    append_record(history_path(params), record)
    return record


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Add ``record`` to the history at ``path``, replacing the record of the same window."""
    line = json.dumps(record, allow_nan=False, separators=(",", ":"), default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        lines, torn = _read_lines(path)
        key = window_key(record)
        if torn or any(window_key(old) == key for old in lines):
            kept = [json.dumps(old, allow_nan=False, separators=(",", ":"), default=str)
                    for old in lines if window_key(old) != key]
            write_text(path, "".join(f"{text}\n" for text in [*kept, line]))
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, f"{line}\n".encode())  # one write of one whole line
        finally:
            os.close(fd)


def read_history(path: Path, model: str | None = None) -> list[dict[str, Any]]:
    """The records of ``path`` (of ``model`` when given), one per window (the last written wins),
    ordered by window start; unreadable lines (a torn last line) are skipped."""
    records, _ = _read_lines(Path(path))
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        if model is None or record.get("model") == model:
            latest.pop(window_key(record), None)
            latest[window_key(record)] = record
    return sorted(latest.values(), key=lambda r: (_start(r), window_key(r)))


def _start(record: dict[str, Any]) -> pd.Timestamp:
    try:
        return pd.Timestamp(record["window"]["start"])
    except (KeyError, TypeError, ValueError):
        return pd.Timestamp.min.tz_localize("UTC")


def _read_lines(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The parsed lines of ``path`` and whether any line was unreadable (torn or damaged)."""
    if not path.is_file():
        return [], False
    records, torn = [], False
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
            torn = True
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            torn = True
    return records, torn


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An advisory lock beside ``path`` while the history is written (one writer at a time)."""
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- the dashboard


def write_history_dashboard(params: Params) -> Path:
    """Render ``<outputs>/monitoring/index.html`` from the history (every model's windows)."""
    return write_dashboard(read_history(history_path(params)),
                           params.outputs_dir / MONITORING_DIR / MONITORING_DASHBOARD)
