"""A registered version's performance estimator (the CBPE/DLE files its training run logged under
``baseline/``, :mod:`helpers.modeling.performance_estimation`), and the version test by estimates:
with ``gates.champion.compare_on: captured`` and ``use_estimates: true``, when the captured rows
lack enough feedback, challenger and champion each score the captured rows and are compared by
their estimated performance there, each version by its own estimator.

Example
-------
>>> est, note = version_estimator(run_id)  # doctest: +SKIP
>>> est.describe()["method"] if est else note  # doctest: +SKIP
'DLE'
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core.catalogue import LOSS_MODELS, PERFORMANCE_ESTIMATOR, PREDICTION
from helpers.core.config import Params
from helpers.core.errors import DataError
from helpers.modeling.captures import read_captures
from helpers.modeling.data import TIME
from helpers.modeling.performance_estimation import PerformanceEstimator, estimate, load_estimator
from helpers.registry import store
from helpers.registry.classes import proba_columns
from helpers.registry.store import short_error

BASELINE_ARTIFACTS = "baseline"


def version_estimator(run_id: str) -> tuple[PerformanceEstimator | None, str]:
    """The estimator logged with MLflow run ``run_id``, or None and why not (a model trained
    before estimators were saved, or on too few held-out rows)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="driftgate-estimator-") as folder:
        try:
            document = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{BASELINE_ARTIFACTS}/{PERFORMANCE_ESTIMATOR}", dst_path=folder)
        except Exception as exc:
            return None, (f"run {run_id} has no {BASELINE_ARTIFACTS}/{PERFORMANCE_ESTIMATOR} (trained before "
                          f"estimators were saved, or on too few held-out rows): {exc.__class__.__name__}")
        local = Path(document).parent
        try:
            if _task(local) == "regression":
                models = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=f"{BASELINE_ARTIFACTS}/{LOSS_MODELS}", dst_path=str(local))
                if Path(models).parent != local:  # keep the pair together, whatever the store's layout
                    Path(models).replace(local / LOSS_MODELS)
            return load_estimator(local), "loaded"
        except (DataError, OSError, ValueError, KeyError) as exc:
            return None, f"run {run_id}: cannot load its performance estimator ({short_error(exc)})"
        except Exception as exc:  # an MLflow download error
            return None, f"run {run_id}: cannot download its performance estimator ({short_error(exc)})"


def _task(folder: Path) -> Any:
    return json.loads((folder / PERFORMANCE_ESTIMATOR).read_text()).get("task")


# --------------------------------------------------------------------------- the version test by estimates


def unlabelled_captured_rows(params: Params, folder: Path, since: dt.datetime, labelled: int) -> pd.DataFrame:
    """Every row captured since ``since``, without labels (``attrs["estimated"]`` is True), for
    comparing versions by estimated performance; ``labelled`` is how many had feedback."""
    rule = params.gates.champion
    rows = read_captures(folder, params.mlflow.model_name, start=since)
    if len(rows) < rule.min_captured_rows:
        raise DataError(
            f"only {len(rows)} captured rows in the last {rule.captured_days:g} days under {folder} "
            f"({labelled} with feedback); gates.champion.min_captured_rows is {rule.min_captured_rows}: "
            "send traffic, or set gates.champion.compare_on to current")
    rows = rows.drop(columns=[c for c in rows.columns if c == params.data.target]).reset_index(drop=True)
    rows[TIME] = pd.to_datetime(rows[TIME], utc=True).dt.tz_convert(None)
    rows.attrs["estimated"] = True
    rows.attrs["labelled"] = labelled
    return rows


def is_unlabelled(rows: pd.DataFrame, params: Params) -> bool:
    """Whether ``rows`` are captured rows to compare by estimates (they hold no target column)."""
    return params.data.target not in rows.columns


def estimated_scores(client: Any, params: Params, version: str, rows: pd.DataFrame) -> tuple[dict[str, float],
                                                                                               dict[str, Any]]:
    """Estimated metrics of ``version`` on ``rows`` (scored by that version, estimated by its own
    estimator), and their bands (metric -> value, lower, upper)."""
    name = params.mlflow.model_name
    mv = store.get_version(client, name, version)
    est, note = version_estimator(mv.run_id)
    if est is None:
        raise DataError(f"models:/{name}/{version}: no estimated performance ({note})")
    model = store.load(f"models:/{name}/{version}")
    features = rows[params.data.features]
    frame = features.copy()
    frame[PREDICTION] = model.predict(features)
    if params.data.task == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(features)
        for index, column in enumerate(proba_columns(store.model_classes(model))):
            frame[column] = proba[:, index]
    found = estimate(est, frame, confidence=params.monitor.confidence)
    return {k: v.value for k, v in found.items()}, {k: v.to_dict() for k, v in found.items()}
