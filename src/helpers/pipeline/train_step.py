"""Step 3, split/train/evaluate: the split, the fit, the metrics, and the registered version
with its lineage, predictions and monitoring baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core import catalogue as names
from helpers.core.catalogue import (
    BASELINE_PROFILE,
    CURRENT_PREDICTIONS,
    MONITORING_BASELINE,
    PREDICTION,
    STEP_NOTEBOOK,
    TEST_PREDICTIONS,
)
from helpers.core.files import write_json
from helpers.modeling import estimators, performance_estimation, train
from helpers.modeling.data import file_sha256
from helpers.monitoring.baseline_sample import log_baseline_sample
from helpers.pipeline.context import StepContext
from helpers.pipeline.drift_step import drift_windows, window_table
from helpers.pipeline.manifest import git_state
from helpers.registry import store
from helpers.stats.column_types import infer_column_types
from helpers.stats.profiling import profile_frame


@dataclass
class TrainingData:
    """Train and test rows from the baseline window, and the current window. Training uses only
    rows with a label; test and current rows keep theirs without one (they are predicted, not
    evaluated: see :func:`helpers.modeling.train.scored_rows`), counted in ``unlabelled``."""

    train: pd.DataFrame
    test: pd.DataFrame
    current: pd.DataFrame
    unlabelled: dict[str, int] = field(default_factory=dict)  # row set -> rows without a label

    def notes(self, target: str) -> list[str]:
        """One line per row set with rows that have no label."""
        return [f"{name}: {count} rows without a {target} value left out of "
                f"{'training' if name == 'train' else 'evaluation'}"
                for name, count in self.unlabelled.items() if count]


def training_data(ctx: StepContext) -> TrainingData:
    """Split the baseline window (time-aware by default), keep the labelled training rows, and
    take the current window."""
    baseline, current = drift_windows(ctx)
    train_rows, test_rows = train.split(baseline, ctx.params.split)
    train_rows, train_unlabelled = train.labelled(train_rows, ctx.params)
    target = ctx.params.data.target
    unlabelled = {"train": train_unlabelled, "test": int(test_rows[target].isna().sum()),
                  "current": int(current[target].isna().sum())}
    return TrainingData(train=train_rows, test=test_rows, current=current, unlabelled=unlabelled)


def split_table(rows: TrainingData) -> pd.DataFrame:
    """Rows and time span of train, test and current rows, and how many have no label (left out
    of training, or of evaluation)."""
    table = window_table(train=rows.train, test=rows.test, current=rows.current)
    table["without label (left out)"] = [rows.unlabelled.get(name, 0) for name in ("train", "test", "current")]
    return table


def fit(ctx: StepContext, rows: pd.DataFrame) -> Any:
    """Build the configured model and fit it on ``rows``."""
    model = estimators.build_model(ctx.params, rows)
    return model.fit(rows[ctx.params.data.features], rows[ctx.params.data.target])


@dataclass
class Evaluation:
    """Metrics and predictions of a model on the test rows and the current rows."""

    metrics: pd.DataFrame  # one column per row set
    test: pd.DataFrame  # predictions frames
    current: pd.DataFrame


def evaluate(ctx: StepContext, model: Any, rows: TrainingData) -> Evaluation:
    """Metrics on the held-out test rows and on the current window, with predictions."""
    test_metrics, test_predictions = train.evaluate(model, rows.test, ctx.params)
    current_metrics, current_predictions = train.evaluate(model, rows.current, ctx.params)
    table = pd.DataFrame({"test": test_metrics, "current": current_metrics})
    return Evaluation(metrics=table, test=test_predictions, current=current_predictions)


def lineage(ctx: StepContext) -> dict[str, str]:
    """Tags tying a model version to its run, code, data, params and reports."""
    git = git_state(Path(ctx.params.run.notebooks).parent)
    data_path = Path(ctx.params.data.path)
    return {
        names.LINEAGE_RUN_ID: ctx.run_dir.name,
        names.LINEAGE_RUN_DIR: str(ctx.run_dir),
        names.LINEAGE_GIT_COMMIT: str(git["commit"]),
        names.LINEAGE_GIT_DIRTY: str(git["dirty"]),
        names.LINEAGE_DATA_PATH: str(data_path),
        names.LINEAGE_DATA_SHA256: file_sha256(data_path) if data_path.is_file() else "glob",
        names.LINEAGE_PARAMS_HASH: ctx.params.params_hash,
        names.LINEAGE_BASELINE_WINDOW: f"{ctx.params.windows.baseline.start}..{ctx.params.windows.baseline.end}",
        names.LINEAGE_CURRENT_WINDOW: f"{ctx.params.windows.current.start}..{ctx.params.windows.current.end}",
        names.LINEAGE_REPORTS: ",".join(str(ctx.run_dir / name) for name in _report_pages()),
    }


def _report_pages() -> list[str]:
    """The HTML pages of a run, in step order (rendered notebooks and the drift report)."""
    pages = [name.removesuffix(".ipynb") + ".html" for name in STEP_NOTEBOOK.values()]
    pages.insert(2, names.DRIFT_REPORT_HTML)
    return pages


def register(ctx: StepContext, model: Any, rows: TrainingData, evaluation: Evaluation) -> dict[str, Any]:
    """Log the run and model to MLflow, register a new version (alias ``challenger``),
    save predictions and write ``evaluation.json``. Returns the summary."""
    import mlflow

    store.connect(ctx.params)
    evaluation.test.to_parquet(ctx.run_dir / TEST_PREDICTIONS, index=False)
    evaluation.current.to_parquet(ctx.run_dir / CURRENT_PREDICTIONS, index=False)
    with mlflow.start_run(run_name=f"train {ctx.run_dir.name}") as run:
        mlflow.log_params(_flat_params(ctx))
        for split_name, column in evaluation.metrics.items():
            mlflow.log_metrics({f"{split_name}_{k}": float(v) for k, v in column.dropna().items()})
        profile = ctx.run_dir / BASELINE_PROFILE
        if profile.is_file():
            mlflow.log_artifact(str(profile), artifact_path="baseline")
        mlflow.log_artifact(str(write_monitoring_baseline(ctx, model, rows.train)), artifact_path="baseline")
        log_baseline_sample(ctx.run_dir, rows.train, ctx.params)
        for path in performance_estimation.fit_and_save(ctx.params, rows.test, evaluation.test, ctx.run_dir):
            mlflow.log_artifact(str(path), artifact_path="baseline")
        ref = store.log_model(model, rows.train, ctx.params, lineage(ctx))
    # a metric left out on one row set (e.g. log loss where a label is new) is NaN in the table
    test_metrics = evaluation.metrics["test"].dropna().to_dict()
    summary = {
        "mlflow_run_id": run.info.run_id,
        "model": ref.to_dict(),
        "task": ctx.params.data.task,
        "metrics": {name: col.dropna().to_dict() for name, col in evaluation.metrics.items()},
        "rows": {"train": len(rows.train), "test": len(rows.test), "current": len(rows.current),
                 "without_label": rows.unlabelled},
        "notes": rows.notes(ctx.params.data.target),
        "predictions": {"test": TEST_PREDICTIONS, "current": CURRENT_PREDICTIONS},
        "headline": {"version": ref.version, **{k: float(v) for k, v in test_metrics.items()}},
    }
    ctx.write_summary(summary)
    return summary


def write_monitoring_baseline(ctx: StepContext, model: Any, rows: pd.DataFrame) -> Path:
    """Profile the training rows' features, target and the model's predictions on them: what
    monitoring compares captured traffic with. A classifier's predicted label (``prediction``)
    and the target are categorical, each class probability (``proba_<class>``) numeric."""
    params = ctx.params
    frame = rows[[*params.data.features, params.data.target]].copy()
    frame[PREDICTION] = model.predict(rows[params.data.features])
    output_types = {PREDICTION: "numeric", params.data.target: "numeric"}
    if params.data.task == "classification":
        output_types = {PREDICTION: "categorical", params.data.target: "categorical"}
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(rows[params.data.features])
            for index, label in enumerate(train.classes(model) or []):
                frame[train.proba_column(label)] = proba[:, index]
                output_types[train.proba_column(label)] = "numeric"
    types, _notes = infer_column_types(frame, params.drift, list(frame.columns))
    types.update(output_types)
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
