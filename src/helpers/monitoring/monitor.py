"""Monitoring: captured traffic against the champion's training baseline.

For a time window of captured requests: feature drift and prediction drift (profiles of the
captured rows against the profiles saved when the champion was trained; for a classifier, the
predicted label as a category, that is the class shares, and each ``proba_<class>`` as a numeric
distribution), performance where feedback arrived (feedback labels are put in the type of the
champion's classes first), one HTML report and JSON summary per window under ``outputs/monitoring/``,
alerts through the configured sinks, with ``monitor.rollback`` an automatic rollback of a degrading
champion or canary (:mod:`helpers.monitoring.auto_rollback`), and, when ``monitor.retrain`` is on, a retraining run of
the pipeline on the window's labelled captures (the release gates then decide).

Example
-------
>>> result = run_monitor(load_params("params/default.yaml"), "params/default.yaml")  # doctest: +SKIP
>>> result.summary["decision"]  # doctest: +SKIP
'drift'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core.catalogue import ALERTS_FILE, CHAMPION, MONITORING_BASELINE, MONITORING_DIR, PREDICTION
from helpers.core.config import KNOWN_METRICS, Params
from helpers.core.errors import DataError, RegistryError
from helpers.core.files import write_json, write_text
from helpers.core.paths import capture_dir_for
from helpers.modeling.captures import read_captures, read_labeled_captures
from helpers.modeling.metrics import metrics
from helpers.monitoring.alerts import send_alert
from helpers.monitoring.auto_rollback import auto_rollback
from helpers.monitoring.baseline_sample import load_baseline_sample, traffic_coefficient
from helpers.monitoring.canary_traffic import CanaryTraffic, canary_window
from helpers.monitoring.captures_at_scale import labelled_captures, profile_captures
from helpers.monitoring.estimates import with_estimates
from helpers.monitoring.history import record_window, write_history_dashboard
from helpers.registry import store
from helpers.registry.classes import coerce_labels, proba_columns, probabilities
from helpers.registry.estimates import version_estimator
from helpers.reports.monitor_page import render_monitor_page
from helpers.reports.pages import write_index
from helpers.stats.compare import compare_profiles
from helpers.stats.dask_cluster import runner
from helpers.stats.profile import FrameProfile, NumericProfile
from helpers.stats.profiling import profile_frame

PERIODS = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1),
           "week": pd.Timedelta(weeks=1), "month": pd.Timedelta(days=30)}


@dataclass
class Window:
    """A half-open UTC time window of captured traffic."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def label(self) -> str:
        """A file-name-safe label such as ``20261130T0000-20261201T0000``."""
        return f"{self.start:%Y%m%dT%H%M%S}-{self.end:%Y%m%dT%H%M%S}"


def resolve_window(period: str, start: str | None = None, end: str | None = None,
                   now: pd.Timestamp | None = None) -> Window:
    """``[start, end)`` as given, or the last ``period`` ending at ``end`` (default: now)."""
    stop = _utc(end) if end else (now or pd.Timestamp.now(tz="UTC"))
    begin = _utc(start) if start else stop - PERIODS[period]
    if begin >= stop:
        raise DataError(f"monitor window: --from {begin} must be before --to {stop}")
    return Window(begin, stop)


def _utc(text: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise DataError(f"monitor window: {text!r} is not a date or time (like 2026-11-30T12:00)") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# --------------------------------------------------------------------------- inputs


@dataclass
class Champion:
    """The serving model version, its training profile and its evaluated test metrics."""

    version: str
    run_id: str
    baseline: Any  # profile.FrameProfile
    test_metrics: dict[str, float]
    classes: list[Any] | None = None  # a classifier's classes, as it was trained on them
    sample: pd.DataFrame | None = None  # seeded training rows, for the drift coefficient (newer models)
    estimator: Any | None = None  # its performance estimator (helpers.modeling.performance_estimation)
    estimator_note: str = ""  # why there is none

    @property
    def prediction_columns(self) -> list[str]:
        """Captured output columns compared with the baseline: the prediction, and each class probability."""
        return [PREDICTION, *proba_columns(self.classes or [])]


def load_champion(params: Params) -> Champion:
    """The champion version with the monitoring baseline saved when it was trained."""
    import mlflow

    client = store.connect(params)
    name = params.mlflow.model_name
    mv = store.version_with_alias(client, name, CHAMPION)
    if mv is None:
        raise RegistryError(f"models:/{name}@champion: no champion to monitor; release one with driftgate run")
    try:
        local = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=f"baseline/{MONITORING_BASELINE}")
    except Exception as exc:
        raise RegistryError(
            f"models:/{name}/{mv.version}: its run {mv.run_id} has no baseline/{MONITORING_BASELINE} "
            f"(trained before monitoring baselines were saved?): {exc.__class__.__name__}"
        ) from None
    baseline = FrameProfile.from_dict(json.loads(Path(local).read_text()))
    metrics = client.get_run(mv.run_id).data.metrics
    tests = {k.removeprefix("test_"): float(v) for k, v in metrics.items() if k.startswith("test_")}
    classes = store.logged_classes(f"models:/{name}/{mv.version}") if params.data.task == "classification" else None
    estimator, note = version_estimator(mv.run_id)
    return Champion(version=str(mv.version), run_id=mv.run_id, baseline=baseline, test_metrics=tests,
                    classes=classes, sample=load_baseline_sample(mv.run_id),
                    estimator=estimator, estimator_note=note)


# --------------------------------------------------------------------------- analysis


def profile_captured(frame: Any, baseline: Any, columns: list[str]) -> Any:
    """Profile captured ``columns`` on the baseline's types and bin edges (a profile: its columns)."""
    if isinstance(frame, FrameProfile):  # profiled at scale (compute.scheduler is not pandas)
        return FrameProfile(frame.rows, {c: frame.columns[c] for c in columns if c in frame.columns})
    types = {c: "numeric" if isinstance(baseline.columns[c], NumericProfile) else "categorical"
             for c in columns if c in baseline.columns and c in frame}
    return profile_frame(frame[list(types)], types, baseline.edges)


def feature_drift(frame: pd.DataFrame, champion: Champion, params: Params) -> Any:
    """Drift of the captured features against the champion's training profile, and the drift
    coefficient against its baseline sample."""
    features = [f for f in params.data.features if f in champion.baseline.columns]
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DataError(f"captured data lacks the feature column(s) {', '.join(missing)}; "
                        "is the service serving this model?")
    target = profile_captured(frame, champion.baseline, features)
    coefficient = traffic_coefficient(champion.sample, frame, champion.baseline, features, params.drift)
    return compare_profiles(champion.baseline, target, params.drift, features=features, coefficient=coefficient)


def prediction_drift(frame: Any, champion: Champion, params: Params) -> Any | None:
    """Drift of the captured predictions against the champion's predictions on its training rows:
    the prediction (a classifier's label, by class shares) and each class probability."""
    available = frame.columns if isinstance(frame, FrameProfile) else frame
    columns = [c for c in champion.prediction_columns if c in available and c in champion.baseline.columns]
    if PREDICTION not in columns:
        return None
    target = profile_captured(frame, champion.baseline, columns)
    return compare_profiles(champion.baseline, target, params.drift, features=columns)


def typed_labels(labelled: pd.DataFrame, champion: Champion) -> pd.DataFrame:
    """``labelled`` with its feedback ``label`` in the type of the champion's classes (JSON feedback
    may send ``"1"`` or ``1.0`` for class ``1``), rows whose feedback is null left out; unchanged
    for a regressor."""
    if not champion.classes or labelled.empty:
        return labelled
    labelled = labelled[labelled["label"].notna()]
    return labelled.assign(label=coerce_labels(labelled["label"], champion.classes).to_numpy())


def performance(labelled: pd.DataFrame, champion: Champion, params: Params) -> dict[str, Any]:
    """Metrics on captured rows with feedback, against the champion's test metrics."""
    metric = params.monitor.metric
    if labelled.empty:
        return {"rows": 0, "metrics": {}, "degraded": False, "reason": "no feedback in this window"}
    score = probabilities(labelled, champion.classes) if champion.classes else None
    got = metrics(params.data.task, labelled["label"].to_numpy(), labelled[PREDICTION].to_numpy(), score,
                  classes=champion.classes)
    value, reference = got.get(metric), champion.test_metrics.get(metric)
    if value is None or reference is None:
        return {"rows": len(labelled), "metrics": got, "degraded": False,
                "reason": f"{metric} not available for comparison"}
    lower_is_better = KNOWN_METRICS[params.data.task][metric] == "lower"
    allowed = params.monitor.max_degradation
    limit = reference * (1 + allowed) if lower_is_better else reference * (1 - allowed)
    degraded = value > limit if lower_is_better else value < limit
    word = "worse than" if degraded else "within"
    reason = (f"{metric} {value:.4g} on {len(labelled)} labelled rows, {word} the allowed {limit:.4g} "
              f"(champion's test {metric} {reference:.4g} with {allowed:.0%} tolerance)")
    return {"rows": len(labelled), "metrics": got, "reference": {metric: reference}, "limit": limit,
            "degraded": bool(degraded), "reason": reason}


# --------------------------------------------------------------------------- the run


@dataclass
class MonitorResult:
    """What one monitoring pass found and wrote."""

    summary: dict[str, Any]
    html: Path
    json: Path
    window: Window
    labelled: pd.DataFrame  # the window's captured rows that received feedback
    retrain: Any | None = None  # the pipeline's RunResult when retraining ran (helpers.pipeline.retrain)

    @property
    def found_problem(self) -> bool:
        """Drift or degraded performance was found."""
        return bool(self.summary.get("drifted") or self.summary.get("degraded"))


def run_monitor(params: Params, *, window: Window | None = None, champion: Champion | None = None,
                backfill: bool = False) -> MonitorResult:
    """Monitor one window of captured traffic and alert as the params say; write the page and
    the JSON summary under ``<outputs>/monitoring/``, record the window in the history and
    render the dashboard. Retraining is the pipeline's job
    (:func:`helpers.pipeline.retrain.monitor_and_retrain`). A ``backfill`` window (a past one,
    :mod:`helpers.monitoring.backfill`) sends no alert and leaves the dashboard and the index
    to the backfill, which renders them once at the end."""
    window = window or resolve_window(params.monitor.period)
    champion = champion or load_champion(params)
    root, name = capture_dir_for(params), params.mlflow.model_name
    if params.compute.scheduler.strip() == "pandas":
        captured = read_captures(root, name, window.start, window.end)
        labelled = read_labeled_captures(root, name, window.start, window.end)
        rows = len(captured)
        versions = sorted(map(str, captured["model_version"].dropna().unique())) if "model_version" in captured else []
    else:  # profiled file by file on Dask: only profiles and labelled rows come back

        columns = [*params.data.features, *champion.prediction_columns]
        with runner(params.compute) as run:
            captured = profile_captures(root, name, window.start, window.end, champion.baseline, columns,
                                        params.compute, client=run.client)
            labelled = labelled_captures(root, name, window.start, window.end, params.compute,
                                         client=run.client)
        rows = captured.rows
        versions = sorted(captured.columns["model_version"].counts) if "model_version" in captured.columns else []
    labelled = typed_labels(labelled, champion)
    summary: dict[str, Any] = {
        "model": name, "champion": champion.version, "window": [str(window.start), str(window.end)],
        "rows": rows, "labelled_rows": len(labelled), "versions_seen": versions,
    }
    report = pred = None
    if rows < params.monitor.min_rows:
        summary.update(decision="no decision", drifted=False, degraded=False,
                       reason=f"{rows} captured rows, fewer than monitor.min_rows={params.monitor.min_rows}")
    else:
        report = feature_drift(captured, champion, params)
        pred = prediction_drift(captured, champion, params)
        perf = with_estimates(performance(labelled, champion, params), captured, labelled, champion, params)
        summary.update(_decision(report, pred, perf))
    out_dir = params.outputs_dir / MONITORING_DIR
    stem = f"{name}-{window.label}"
    html_path = out_dir / f"{stem}.html"
    summary["report_html"] = str(html_path)
    canary = None
    if params.compute.scheduler.strip() == "pandas" or params.serve.canary is not None:
        canary = CanaryTraffic.read(params, window)  # the canary's own rows, apart from the champion's
        if canary is not None:
            summary["canary"] = canary_window(params, canary)
    summary["alerts"] = [] if backfill else _alert(summary, params)
    if params.monitor.rollback and not backfill:  # champion back to previous, or the canary ended
        summary["rollback"] = auto_rollback(params, summary, canary, champion.test_metrics)
    write_text(html_path, render_monitor_page(summary, report))  # last: the page shows the actions too
    result = MonitorResult(summary=summary, html=html_path, json=out_dir / f"{stem}.json", window=window,
                           labelled=labelled)
    write_json(result.json, summary)
    record_window(params, summary, report, pred, champion.test_metrics)
    if not backfill:
        write_history_dashboard(params)
        write_index(params.outputs_dir)
    return result


def _decision(report: Any, pred: Any | None, perf: dict[str, Any]) -> dict[str, Any]:
    reasons = [f"features: {report.reason}"]
    pred_drifted = pred is not None and (pred.drifted if len(pred.features) == 1
                                         else any(f.drifted for f in pred.features))
    if pred is not None:
        tests = ", ".join(f"{f.feature} {f.test}{' drifted' if f.drifted else ''}" for f in pred.features)
        reasons.append(f"predictions: {'drift' if pred_drifted else 'no drift'} ({tests})")
    reasons.append(f"performance: {perf['reason']}")
    drifted = bool(report.drifted or pred_drifted)
    degraded = bool(perf["degraded"])
    decision = "drift and degradation" if drifted and degraded else (
        "drift" if drifted else "degradation" if degraded else "ok")
    return {"decision": decision, "drifted": drifted, "degraded": degraded, "reason": "; ".join(reasons),
            "feature_drift": {"drifted": bool(report.drifted), "share_drifted": float(report.share_drifted),
                              "drifted_features": [f.feature for f in report.features if f.drifted],
                              "coefficient": report.coefficient, "contributions": report.contributions},
            "prediction_drift": None if pred is None else _feature(pred, PREDICTION),
            "probability_drift": [] if pred is None else [f for f in pred.to_dict()["features"]
                                                          if f["feature"] != PREDICTION],
            "performance": perf}


def _feature(report: Any, name: str) -> dict[str, Any]:
    """The comparison of column ``name`` in a drift report (JSON-ready)."""
    return next(f for f in report.to_dict()["features"] if f["feature"] == name)


def _alert(summary: dict[str, Any], params: Params) -> list[dict[str, Any]]:
    from dataclasses import asdict

    if not (summary.get("drifted") or summary.get("degraded")):
        return []
    alert = {"kind": "monitor", "model": summary["model"], "champion": summary["champion"],
             "window": summary["window"], "decision": summary["decision"], "reason": summary["reason"],
             "report": summary["report_html"],
             "text": f"Driftgate monitor: {summary['decision']} for {summary['model']} "
                     f"v{summary['champion']} in {summary['window'][0]}..{summary['window'][1]}: {summary['reason']}"}
    return [asdict(r) for r in send_alert(alert, params.alerts, params.outputs_dir / ALERTS_FILE)]
