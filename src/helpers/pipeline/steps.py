"""The work of each notebook, one function per cell-sized task.

A notebook opens a :class:`~helpers.pipeline.StepContext` and calls these; each returns
something to show (a table, a figure, a dict) and the ``finish_*`` functions write the
step's JSON summary into the run folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core.files import write_json
from helpers.modeling import data as data_mod
from helpers.modeling import train
from helpers.modeling.data import TIME
from helpers.pipeline.context import StepContext
from helpers.registry import store as registry

# --------------------------------------------------------------------------- investigate


def finish_investigate(ctx: StepContext, checks: list[Any]) -> dict[str, Any]:
    """Write ``investigate.json`` and the baseline profile; return the summary."""
    from helpers.modeling import investigate

    summary = investigate.summary(ctx.frame, ctx.params, checks)
    summary["baseline_profile"] = write_baseline_profile(ctx).name
    summary["headline"] = {
        "rows": summary["rows"],
        "checks_failed": len(summary["failed_checks"]),
        "validation_passed": summary["validation_passed"],
    }
    ctx.write_summary(summary)
    return summary["headline"]


def write_baseline_profile(ctx: StepContext) -> Path:
    """Profile the baseline window's features and target (mergeable, JSON) for monitoring."""
    from helpers.stats.column_types import infer_column_types
    from helpers.stats.profiling import profile_frame

    baseline = data_mod.window(ctx.frame, ctx.params.windows.baseline)
    columns = [*ctx.params.data.features, ctx.params.data.target]
    types, _notes = infer_column_types(baseline, ctx.params.drift, columns)
    prof = profile_frame(baseline[columns], types, bins=ctx.params.drift.bins)
    path = ctx.run_dir / "baseline_profile.json"
    write_json(path, prof.to_dict())
    return path


# --------------------------------------------------------------------------- drift


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


def finish_drift(ctx: StepContext, report: Any) -> dict[str, Any]:
    """Write ``drift.json`` and ``drift_report.html``; send an alert when drift is found."""
    from helpers.monitoring import alerts
    from helpers.reports import drift_report

    html_path = drift_report.write_html(report, ctx.run_dir / "drift_report.html",
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
    summary["alerts"] = []
    if report.drifted:
        alert = alerts.drift_alert(report, source=f"run {ctx.run_dir.name}", run_dir=str(ctx.run_dir))
        sent = alerts.send_alert(alert, ctx.params.alerts, ctx.params.outputs_dir / "alerts.jsonl")
        summary["alerts"] = [asdict(result) for result in sent]
    ctx.write_summary(summary)
    return summary["headline"]


# --------------------------------------------------------------------------- train


@dataclass
class TrainingData:
    """Train and test rows from the baseline window, and the labelled current window."""

    train: pd.DataFrame
    test: pd.DataFrame
    current: pd.DataFrame


def training_data(ctx: StepContext) -> TrainingData:
    """Split the baseline window (time-aware by default) and take the current window."""
    baseline, current = drift_windows(ctx)
    train_rows, test_rows = train.split(baseline, ctx.params.split)
    return TrainingData(train=train_rows, test=test_rows, current=current)


def split_table(rows: TrainingData) -> pd.DataFrame:
    """Rows and time span of train, test and current rows."""
    return window_table(train=rows.train, test=rows.test, current=rows.current)


def fit(ctx: StepContext, rows: pd.DataFrame) -> Any:
    """Build the configured model and fit it on ``rows``."""
    model = train.build_model(ctx.params, rows)
    return model.fit(rows[ctx.params.data.features], rows[ctx.params.data.target])


@dataclass
class Evaluation:
    """Metrics and predictions of a model on the test rows and the current rows."""

    metrics: pd.DataFrame  # one column per row set
    test: pd.DataFrame  # predictions frames
    current: pd.DataFrame


def evaluate(ctx: StepContext, model: Any, rows: TrainingData) -> Evaluation:
    """Metrics on the held-out test rows and on the current window, with predictions."""
    test_metrics, test_pred = train.evaluate(model, rows.test, ctx.params)
    current_metrics, current_pred = train.evaluate(model, rows.current, ctx.params)
    table = pd.DataFrame({"test": test_metrics, "current": current_metrics})
    return Evaluation(
        metrics=table,
        test=train.predictions_frame(rows.test, test_pred, ctx.params),
        current=train.predictions_frame(rows.current, current_pred, ctx.params),
    )


def lineage(ctx: StepContext) -> dict[str, str]:
    """Tags tying a model version to its run, code, data, params and reports."""
    from helpers.modeling.data import file_sha256
    from helpers.pipeline.manifest import git_state

    git = git_state(Path(ctx.params.run.notebooks).parent)
    data_path = Path(ctx.params.data.path)
    return {
        "driftgate.run_id": ctx.run_dir.name,
        "driftgate.run_dir": str(ctx.run_dir),
        "driftgate.git_commit": str(git["commit"]),
        "driftgate.git_dirty": str(git["dirty"]),
        "driftgate.data_path": str(data_path),
        "driftgate.data_sha256": file_sha256(data_path) if data_path.is_file() else "glob",
        "driftgate.params_hash": ctx.params.params_hash,
        "driftgate.baseline_window": f"{ctx.params.windows.baseline.start}..{ctx.params.windows.baseline.end}",
        "driftgate.current_window": f"{ctx.params.windows.current.start}..{ctx.params.windows.current.end}",
        "driftgate.reports": ",".join(
            str(ctx.run_dir / name) for name in
            ("01_investigate.html", "02_drift_report.html", "drift_report.html", "03_train_evaluate.html",
             "04_deploy.html")
        ),
    }


def register(ctx: StepContext, model: Any, rows: TrainingData, evaluation: Evaluation) -> dict[str, Any]:
    """Log the run and model to MLflow, register a new version (alias ``challenger``),
    save predictions and write ``evaluation.json``. Returns the summary."""
    import mlflow

    registry.connect(ctx.params)
    evaluation.test.to_parquet(ctx.run_dir / "test_predictions.parquet", index=False)
    evaluation.current.to_parquet(ctx.run_dir / "current_predictions.parquet", index=False)
    with mlflow.start_run(run_name=f"train {ctx.run_dir.name}") as run:
        mlflow.log_params(_flat_params(ctx))
        for split_name, column in evaluation.metrics.items():
            mlflow.log_metrics({f"{split_name}_{k}": float(v) for k, v in column.items()})
        profile = ctx.run_dir / "baseline_profile.json"
        if profile.is_file():
            mlflow.log_artifact(str(profile), artifact_path="baseline")
        mlflow.log_artifact(str(write_monitoring_baseline(ctx, model, rows.train)), artifact_path="baseline")
        ref = registry.log_model(model, rows.train, ctx.params, lineage(ctx))
    test_metrics = evaluation.metrics["test"].to_dict()
    summary = {
        "mlflow_run_id": run.info.run_id,
        "model": ref.to_dict(),
        "task": ctx.params.data.task,
        "metrics": {name: col.to_dict() for name, col in evaluation.metrics.items()},
        "rows": {"train": len(rows.train), "test": len(rows.test), "current": len(rows.current)},
        "predictions": {"test": "test_predictions.parquet", "current": "current_predictions.parquet"},
        "headline": {"version": ref.version, **{k: float(v) for k, v in test_metrics.items()}},
    }
    ctx.write_summary(summary)
    return summary


MONITORING_BASELINE = "monitoring_baseline.json"
PREDICTION = "prediction"  # the captured output column, as the scoring service names it


def write_monitoring_baseline(ctx: StepContext, model: Any, rows: pd.DataFrame) -> Path:
    """Profile the training rows' features, target and the model's predictions on them:
    what monitoring compares captured traffic with."""
    from helpers.stats.column_types import infer_column_types
    from helpers.stats.profiling import profile_frame

    params = ctx.params
    frame = rows[[*params.data.features, params.data.target]].copy()
    frame[PREDICTION] = model.predict(rows[params.data.features])
    types, _notes = infer_column_types(frame, params.drift, list(frame.columns))
    if params.data.task == "regression":
        types[PREDICTION] = types[params.data.target] = "numeric"
    prof = profile_frame(frame, types, bins=params.drift.bins)
    return write_json(ctx.run_dir / MONITORING_BASELINE, prof.to_dict())


def _flat_params(ctx: StepContext) -> dict[str, str]:
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
        else:
            flat[prefix] = str(value)[:500]

    walk("", {k: v for k, v in ctx.params.to_dict().items() if k in ("data", "windows", "split", "model")})
    return flat
