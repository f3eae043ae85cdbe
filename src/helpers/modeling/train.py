"""Splits, labelled rows, predictions and evaluation of a fitted model.

A predictions frame holds, per row: the time (when known), ``actual``, ``predicted`` and, for
regression, ``residual``; for classification one ``proba_<class>`` column per class the model
knows, in the model's class order.

Example
-------
>>> rows, left_out = labelled(baseline, params)  # doctest: +SKIP
>>> train_rows, test_rows = split(rows, params.split)  # doctest: +SKIP
>>> scores, predictions = evaluate(model, test_rows, params)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from helpers.core.catalogue import PROBA_PREFIX
from helpers.core.config import Params, SplitParams
from helpers.modeling.data import TIME
from helpers.modeling.metrics import metrics


def proba_column(label: Any) -> str:
    """The predictions-frame column holding the probability of class ``label``."""
    return f"{PROBA_PREFIX}{label}"


def tidy_labels(labels: pd.Series) -> pd.Series:
    """Class labels without missing values, in their natural type: whole-number floats (an integer
    column with gaps reads as float) become integers, and True/False objects become booleans."""
    values = labels.dropna()
    if pd.api.types.is_float_dtype(values) and len(values) and bool(np.all(np.mod(values, 1) == 0)):
        return values.astype("int64")
    if values.dtype == object and len(values) and values.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return values.astype(bool)
    return values


def labelled(frame: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, int]:
    """Rows whose target is known (classification labels tidied, see :func:`tidy_labels`),
    and how many rows were left out for a missing target."""
    target = params.data.target
    known = frame[target].notna()
    rows = frame.loc[known].reset_index(drop=True)
    if params.data.task == "classification" and len(rows):
        rows[target] = tidy_labels(rows[target]).to_numpy()
    return rows, int((~known).sum())


def split(frame: pd.DataFrame, params: SplitParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test rows: the latest ``test_size`` by time, or at random."""
    if params.method == "time":
        ordered = frame.sort_values(TIME) if TIME in frame else frame
        cut = int(round(len(ordered) * (1.0 - params.test_size)))
        return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)
    train, test = train_test_split(frame, test_size=params.test_size, random_state=params.seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def classes(model: Any) -> list[Any] | None:
    """The classes a fitted classifier (or a pipeline ending in one) knows, sorted; else None."""
    found = getattr(model, "classes_", None)
    return None if found is None else [v.item() if isinstance(v, np.generic) else v for v in found]


def predict(model: Pipeline, frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """The predictions frame of ``model`` on every row of ``frame`` (a row without a target
    keeps a missing ``actual``: :func:`scored_rows` leaves it out of evaluation)."""
    features = frame[params.data.features]
    predicted = model.predict(features)
    proba = None
    if params.data.task == "classification" and hasattr(model, "predict_proba") and len(frame):
        proba = model.predict_proba(features)
    return predictions_frame(frame, predicted, params, proba, classes(model))


def evaluate(model: Pipeline, frame: pd.DataFrame, params: Params) -> tuple[dict[str, float], pd.DataFrame]:
    """Metrics of ``model`` on the labelled rows of ``frame``, and its predictions frame."""
    predictions = predict(model, frame, params)
    return prediction_metrics(predictions, params), predictions


def scored_rows(predictions: pd.DataFrame, task: str) -> pd.DataFrame:
    """The rows of a predictions frame whose ``actual`` is known (classification labels tidied,
    see :func:`tidy_labels`): the rows metrics and evaluation figures use."""
    known = predictions["actual"].notna()
    rows = predictions.loc[known].reset_index(drop=True)
    if task == "classification" and len(rows):
        rows["actual"] = tidy_labels(rows["actual"]).to_numpy()
    rows.attrs = dict(predictions.attrs)
    return rows


def prediction_metrics(predictions: pd.DataFrame, params: Params) -> dict[str, float]:
    """The task's metrics from a predictions frame, on its labelled rows."""
    rows = scored_rows(predictions, params.data.task)
    if params.data.task == "regression":
        return metrics("regression", rows["actual"], rows["predicted"])
    labels = prediction_classes(rows)
    proba = class_probabilities(rows)
    return metrics("classification", rows["actual"], rows["predicted"], proba, labels)


def prediction_classes(predictions: pd.DataFrame) -> list[Any]:
    """The classes of a classification predictions frame, in its ``proba_<class>`` column order:
    ``attrs["classes"]``, else (a frame read back from a file) the labels seen."""
    if "classes" in predictions.attrs:
        return list(predictions.attrs["classes"])
    seen = pd.concat([tidy_labels(predictions["actual"]), predictions["predicted"]]).unique()
    return sorted(seen.tolist())


def class_probabilities(predictions: pd.DataFrame) -> np.ndarray | None:
    """The ``proba_<class>`` columns as an (n_rows, n_classes) array in class order; None when
    the frame has no probabilities or they do not match its classes."""
    columns = [proba_column(label) for label in prediction_classes(predictions)]
    if not columns or any(c not in predictions for c in columns):
        return None
    return predictions[columns].to_numpy(dtype=float)


def predictions_frame(
    frame: pd.DataFrame,
    predicted: np.ndarray,
    params: Params,
    proba: np.ndarray | None = None,
    labels: list[Any] | None = None,
) -> pd.DataFrame:
    """Time, actual, predicted, and residual (regression) or ``proba_<class>`` (classification)
    per row, for plots and the champion comparison. The classes are kept in ``attrs["classes"]``
    (as plain Python values: Parquet stores the attrs as JSON)."""
    out = pd.DataFrame({"actual": frame[params.data.target].to_numpy(), "predicted": np.asarray(predicted)})
    if TIME in frame:
        out.insert(0, TIME, frame[TIME].to_numpy())
    if params.data.task == "regression":
        out["residual"] = out["actual"] - out["predicted"]
        return out
    if labels is not None:
        out.attrs["classes"] = [v.item() if isinstance(v, np.generic) else v for v in labels]
        if proba is not None:
            for index, label in enumerate(labels):
                out[proba_column(label)] = np.asarray(proba, dtype=float)[:, index]
    return out


def feature_importance(model: Pipeline, frame: pd.DataFrame, params: Params, seed: int = 0) -> pd.Series:
    """Permutation importance of each feature on the labelled rows of ``frame`` (drop in score:
    R² for regressors, negative log loss for classifiers with probabilities, else accuracy),
    largest first."""
    from sklearn.inspection import permutation_importance

    rows, _left_out = labelled(frame, params)
    features, target = params.data.features, params.data.target
    result = permutation_importance(
        model, rows[features], rows[target], scoring=importance_scoring(model, params),
        n_repeats=5, random_state=seed, n_jobs=1,
    )
    return pd.Series(result.importances_mean, index=features, name="importance").sort_values(ascending=False)


def importance_scoring(model: Any, params: Params) -> Any:
    """The permutation-importance scorer: None (the estimator's R²) for regression, negative log
    loss over the model's own classes for a classifier with probabilities (so rows holding only
    some of its classes score too), else ``"accuracy"``."""
    if params.data.task == "regression":
        return None
    if not hasattr(model, "predict_proba"):
        return "accuracy"
    from sklearn.metrics import log_loss, make_scorer

    return make_scorer(log_loss, greater_is_better=False, response_method="predict_proba",
                       labels=list(model.classes_))
