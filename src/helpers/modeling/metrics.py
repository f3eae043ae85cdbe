"""Evaluation metrics: MAE, RMSE and R² for regression; accuracy, F1 and ROC AUC for classification.

Example
-------
>>> metrics("regression", [1.0, 2.0], [1.0, 3.0])["mae"]
0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm


def metrics(task: str, y_true: Any, y_pred: Any, y_score: Any | None = None) -> dict[str, float]:
    """MAE, RMSE, R² for regression; accuracy, F1 and ROC AUC for classification."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if task == "regression":
        return {
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "r2": float(skm.r2_score(y_true, y_pred)),
        }
    binary = len(np.unique(y_true)) <= 2
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1": float(skm.f1_score(y_true, y_pred, average="binary" if binary else "macro")),
    }
    if y_score is not None:
        score = np.asarray(y_score)
        if binary:
            score = score[:, 1] if score.ndim == 2 else score
            out["roc_auc"] = float(skm.roc_auc_score(y_true, score))
        else:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, score, multi_class="ovr"))
    return out
