"""The performance estimator saved with a model: fitted on its held-out rows, estimating metrics
of unlabelled rows (CBPE for classifiers, DLE for regressors: :mod:`helpers.stats.estimation`,
:mod:`helpers.stats.loss_estimation`).

Saved as ``performance_estimator.json`` (task, classes, the calibration curves, calibration
quality, the feature encoding) and, for a regressor, ``performance_estimator.skops`` (the two
loss models, loaded by skops trusting only scikit-learn's own types): nothing in them runs code
when loaded.

Example
-------
>>> est = fit_estimator(params, test_rows, test_predictions)  # doctest: +SKIP
>>> save_estimator(est, run_dir)  # doctest: +SKIP
>>> estimate(load_estimator(run_dir), captured, confidence=0.95)["f1"].to_dict()  # doctest: +SKIP
{'value': 0.61, 'lower': 0.55, 'upper': 0.67}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import LOSS_MODELS, PERFORMANCE_ESTIMATOR, PROBA_PREFIX
from helpers.core.config import KNOWN_METRICS, Params
from helpers.core.errors import DataError
from helpers.core.files import write_json
from helpers.stats.estimation import (
    CLASSIFICATION_ESTIMATES,
    Calibrator,
    Estimate,
    calibration_quality,
    estimate_classification,
    fit_calibrator,
)
from helpers.stats.loss_estimation import REGRESSION_ESTIMATES, LossEstimator, estimate_regression, fit_loss_estimator

MAX_CATEGORIES = 254  # HistGradientBoosting's category codes; rarer categories count as unseen
MIN_ROWS = 20  # held-out rows needed to fit an estimator
_TRUSTED_PREFIXES = ("sklearn.", "numpy.")
_TRUSTED_TYPES = {"functools.partial", "builtins.dict", "builtins.list"}


@dataclass
class PerformanceEstimator:
    """What a model's estimated performance needs (see the module notes)."""

    task: str
    features: list[str]
    rows: int  # held-out rows it was fitted on
    classes: list[Any] | None = None
    calibrator: Calibrator | None = None
    calibration: dict[str, Any] | None = None  # quality: ECE, threshold, poor
    categories: dict[str, list[str]] = field(default_factory=dict)  # regression: category codes
    loss: LossEstimator | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics it estimates."""
        return CLASSIFICATION_ESTIMATES if self.task == "classification" else REGRESSION_ESTIMATES

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for reports: method, rows, calibration quality."""
        method = "CBPE" if self.task == "classification" else "DLE"
        out: dict[str, Any] = {"method": method, "fitted_on_rows": self.rows}
        if self.calibration:
            out["calibration"] = self.calibration
        return out


# --------------------------------------------------------------------------- fitting


def fit_estimator(params: Params, rows: pd.DataFrame, predictions: pd.DataFrame) -> PerformanceEstimator | None:
    """Fit on held-out ``rows`` (their features) and the model's ``predictions`` frame on them
    (:func:`helpers.modeling.train.predict`: ``actual``, ``predicted`` and, for a classifier,
    ``proba_<class>`` in ``attrs["classes"]`` order). Rows without a label are left out; None
    when fewer than :data:`MIN_ROWS` remain (or a classifier has no probabilities)."""
    known = predictions["actual"].notna().to_numpy()
    features = list(params.data.features)
    if params.data.task == "classification":
        return _fit_classification(params, predictions.loc[known], features)
    if known.sum() < MIN_ROWS:
        return None
    frame = rows.loc[known, features].reset_index(drop=True)
    categories = _categories(frame)
    est = fit_loss_estimator(encode(frame, features, categories), predictions.loc[known, "actual"].to_numpy(float),
                             predictions.loc[known, "predicted"].to_numpy(float),
                             categorical=[f in categories for f in features], seed=params.split.seed)
    return PerformanceEstimator("regression", features, int(known.sum()), categories=categories, loss=est)


def _fit_classification(params: Params, predictions: pd.DataFrame, features: list[str]) -> PerformanceEstimator | None:
    classes = list(predictions.attrs.get("classes") or [])
    columns = [f"{PROBA_PREFIX}{c}" for c in classes]
    if len(classes) < 2 or any(c not in predictions for c in columns):
        return None
    lookup = {_key(c): i for i, c in enumerate(classes)}
    y_index = np.array([lookup.get(_key(v), -1) for v in predictions["actual"]])
    kept = y_index >= 0  # a label the model never saw has no probability to calibrate
    if kept.sum() < MIN_ROWS:
        return None
    proba = predictions.loc[kept, columns].to_numpy(float)
    method, seed = params.monitor.calibration, params.split.seed
    quality = calibration_quality(proba, proba.argmax(axis=1), y_index[kept], method, seed=seed)
    calibrator = fit_calibrator(proba, y_index[kept], method)
    return PerformanceEstimator("classification", features, int(kept.sum()), classes=classes,
                                calibrator=calibrator, calibration=quality)


def _key(value: Any) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)


def _categories(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Each non-numeric feature's categories (most frequent first, at most :data:`MAX_CATEGORIES`)."""
    out = {}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        counts = series.dropna().astype(str).value_counts()
        out[column] = counts.index[:MAX_CATEGORIES].tolist()
    return out


def encode(frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Features as floats: numbers as they are, categories as their codes (unseen: NaN)."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DataError(f"estimated performance: the rows lack the feature column(s) {', '.join(missing)}")
    columns = []
    for name in features:
        if name in categories:
            codes = {c: float(i) for i, c in enumerate(categories[name])}
            columns.append(frame[name].astype(str).map(codes).to_numpy(dtype=float))
        else:
            columns.append(pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


# --------------------------------------------------------------------------- estimating


def estimate(est: PerformanceEstimator, frame: pd.DataFrame, *, confidence: float,
             seed: int = 0) -> dict[str, Estimate]:
    """Estimated metrics of ``frame``'s rows (features, ``prediction``, and ``proba_<class>`` for
    a classifier: the columns the scoring service captures), each with its band."""
    if frame.empty:
        return {}
    if est.task == "classification":
        columns = [f"{PROBA_PREFIX}{c}" for c in est.classes or []]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"estimated performance: the rows lack the probability column(s) {', '.join(missing)}; "
                            "serve the classifier with serve.output: both (or probabilities)")
        proba = frame[columns].to_numpy(dtype=float)
        calibrated = est.calibrator.transform(proba) if est.calibrator else proba
        return estimate_classification(calibrated, proba.argmax(axis=1), proba, confidence=confidence, seed=seed)
    predicted = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(dtype=float)
    return estimate_regression(est.loss, encode(frame, est.features, est.categories), predicted,
                               confidence=confidence)


def supported(task: str, metric: str) -> bool:
    """Whether ``metric`` of ``task`` can be estimated without labels."""
    names = CLASSIFICATION_ESTIMATES if task == "classification" else REGRESSION_ESTIMATES
    return metric in names and metric in KNOWN_METRICS[task]


# --------------------------------------------------------------------------- files


def fit_and_save(params: Params, rows: pd.DataFrame, predictions: pd.DataFrame, folder: Path) -> list[Path]:
    """Fit the estimator on held-out ``rows`` and their ``predictions`` and save it into ``folder``
    (nothing when too few labelled rows: monitoring then says no estimate is available)."""
    est = fit_estimator(params, rows, predictions)
    return [] if est is None else save_estimator(est, folder)


def save_estimator(est: PerformanceEstimator, folder: Path) -> list[Path]:
    """Write :data:`PERFORMANCE_ESTIMATOR` (and :data:`LOSS_MODELS` for a regressor) into ``folder``."""
    document = {"task": est.task, "features": est.features, "rows": est.rows, "classes": est.classes,
                "calibrator": est.calibrator.to_dict() if est.calibrator else None,
                "calibration": est.calibration, "categories": est.categories,
                "categorical": est.loss.categorical if est.loss else None}
    paths = [write_json(Path(folder) / PERFORMANCE_ESTIMATOR, document)]
    if est.loss is not None:
        import skops.io as sio  # imported here: skops.io imports much of scikit-learn (seconds)

        target = Path(folder) / LOSS_MODELS
        sio.dump({"absolute": est.loss.absolute, "squared": est.loss.squared}, target)
        paths.append(target)
    return paths


def load_estimator(folder: Path) -> PerformanceEstimator:
    """Read what :func:`save_estimator` wrote (the loss models trusting only scikit-learn's and
    NumPy's own types; anything else is refused)."""
    document = json.loads((Path(folder) / PERFORMANCE_ESTIMATOR).read_text())
    loss = None
    if document["task"] == "regression":
        import skops.io as sio  # imported here: skops.io imports much of scikit-learn (seconds)

        path = Path(folder) / LOSS_MODELS
        untrusted = sio.get_untrusted_types(file=path)
        foreign = [t for t in untrusted if not (t.startswith(_TRUSTED_PREFIXES) or t in _TRUSTED_TYPES)]
        if foreign:
            raise DataError(f"{path}: refuses to load type(s) {', '.join(foreign)}; not a Driftgate loss model")
        models = sio.load(path, trusted=untrusted)
        loss = LossEstimator(models["absolute"], models["squared"], list(document["categorical"] or []))
    calibrator = Calibrator.from_dict(document["calibrator"]) if document.get("calibrator") else None
    return PerformanceEstimator(task=document["task"], features=list(document["features"]), rows=int(document["rows"]),
                                classes=document.get("classes"), calibrator=calibrator,
                                calibration=document.get("calibration"), categories=document.get("categories") or {},
                                loss=loss)
