"""Evaluation metrics: MAE, RMSE and R² for regression; accuracy, balanced accuracy, precision,
recall, F1, ROC AUC, log loss and Brier score for classification (names and directions in
:data:`helpers.core.config.KNOWN_METRICS`).

Binary targets: the positive class is the larger label in sorted order (``True``, ``1``, ``"yes"``
over ``"no"``); precision, recall and F1 are those of that class. Multiclass targets: precision,
recall and F1 are macro averages, ROC AUC is one-vs-rest macro, and the Brier score is the mean
squared error between the one-hot labels and the probabilities (for two classes it equals the
binary Brier score).

Example
-------
>>> metrics("regression", [1.0, 2.0], [1.0, 3.0])["mae"]
0.5
>>> metrics("classification", ["no", "yes"], ["no", "no"])["accuracy"]
0.5
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def metrics(
    task: str, y_true: Any, y_pred: Any, y_score: Any | None = None, classes: Any | None = None
) -> dict[str, float]:
    """The metrics of ``task``; for classification see :func:`classification_metrics`."""
    if task == "regression":
        return regression_metrics(y_true, y_pred)
    return classification_metrics(y_true, y_pred, y_score, classes)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE and R²."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }


def classification_metrics(
    y_true: Any, y_pred: Any, proba: Any | None = None, classes: Any | None = None
) -> dict[str, float]:
    """Label metrics, and probability metrics when ``proba`` is given.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted labels (strings, integers or booleans).
    proba : array-like of shape (n_rows, n_classes), optional
        Class probabilities, columns in the order of ``classes`` (a model's ``classes_``).
        A 1-D array is the positive class's probability of a binary target.
    classes : array-like, optional
        Every class the model knows, sorted; default: the labels seen in ``y_true`` and ``y_pred``.

    A probability metric that is undefined on these rows (ROC AUC when one class is absent) is
    left out rather than written as NaN.
    """
    y_true, y_pred = _plain(y_true), _plain(y_pred)
    labels = _plain(classes) if classes is not None else np.unique(np.concatenate([y_true, y_pred]))
    out = label_metrics(y_true, y_pred, labels)
    if proba is not None:
        out.update(probability_metrics(y_true, _two_columns(np.asarray(proba, dtype=float)), labels))
    return out


def label_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision, recall and F1 (binary: of the larger label)."""
    if len(labels) <= 2:
        averaging: dict[str, Any] = {"average": "binary", "pos_label": labels[-1]}
    else:
        averaging = {"average": "macro", "labels": labels}
    with warnings.catch_warnings():  # a class predicted but absent from the rows is no news here
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = float(skm.balanced_accuracy_score(y_true, y_pred))
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0, **averaging)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0, **averaging)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0, **averaging)),
    }


def probability_metrics(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ROC AUC (one-vs-rest macro for multiclass), log loss and Brier score.

    ROC AUC needs two of the model's classes in the rows; log loss needs every row's label among
    the model's classes (a class unseen in training has no probability). Otherwise the metric is
    left out rather than made up, and a gate on it says it is missing.
    """
    out: dict[str, float] = {}
    known = np.isin(y_true, labels)  # rows whose label the model knows: the only ones AUC can rank
    roc = roc_auc(y_true[known], proba[known], labels)
    if roc is not None:
        out["roc_auc"] = roc
    if known.all():  # a label the model never saw has no probability: no log loss
        out["log_loss"] = float(skm.log_loss(y_true, proba, labels=labels))
    out["brier"] = brier_score(y_true, proba, labels)
    return out


def roc_auc(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of rows whose labels are among the model's: binary, or one-vs-rest macro over the
    classes present (their probabilities renormalised); None with fewer than two classes present."""
    present = np.isin(labels, y_true)
    if present.sum() < 2:
        return None
    if len(labels) <= 2:
        return float(skm.roc_auc_score(y_true == labels[-1], proba[:, -1]))
    kept = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-12, None)
    if present.sum() == 2:  # two of the model's classes in these rows: their binary AUC
        return float(skm.roc_auc_score(y_true == labels[present][-1], kept[:, -1]))
    return float(skm.roc_auc_score(y_true, kept, multi_class="ovr", average="macro", labels=labels[present]))


def brier_score(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error between the one-hot labels and the probabilities, over rows and classes."""
    one_hot = (np.asarray(y_true)[:, None] == np.asarray(labels)[None, :]).astype(float)
    return float(np.mean((one_hot - proba) ** 2))


def _plain(values: Any) -> np.ndarray:
    """Labels as an array of their own type (object arrays of booleans or integers, which
    scikit-learn cannot classify, become bool or int arrays)."""
    array = np.asarray(values) if hasattr(values, "__array__") else np.asarray(list(values), dtype=object)
    return pd.Series(array).infer_objects().to_numpy()


def _two_columns(proba: np.ndarray) -> np.ndarray:
    """A binary positive-class probability vector as two columns (negative, positive)."""
    return np.column_stack([1.0 - proba, proba]) if proba.ndim == 1 else proba
