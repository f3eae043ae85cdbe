"""Splits and evaluation of a fitted model on labelled rows.

Example
-------
>>> train_rows, test_rows = split(baseline, params.split)  # doctest: +SKIP
>>> scores, predicted = evaluate(model, test_rows, params)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from helpers.core.config import Params, SplitParams
from helpers.modeling.data import TIME
from helpers.modeling.metrics import metrics


def split(frame: pd.DataFrame, params: SplitParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test rows: the latest ``test_size`` by time, or at random."""
    if params.method == "time":
        ordered = frame.sort_values(TIME) if TIME in frame else frame
        cut = int(round(len(ordered) * (1.0 - params.test_size)))
        return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)
    train, test = train_test_split(frame, test_size=params.test_size, random_state=params.seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def evaluate(model: Pipeline, frame: pd.DataFrame, params: Params) -> tuple[dict[str, float], np.ndarray]:
    """Metrics of ``model`` on ``frame`` and its predictions."""
    features, target = params.data.features, params.data.target
    predicted = model.predict(frame[features])
    score = None
    if params.data.task == "classification" and hasattr(model, "predict_proba"):
        score = model.predict_proba(frame[features])
    return metrics(params.data.task, frame[target], predicted, score), predicted


def feature_importance(model: Pipeline, frame: pd.DataFrame, params: Params, seed: int = 0) -> pd.Series:
    """Permutation importance of each feature on ``frame`` (drop in score), largest first."""
    from sklearn.inspection import permutation_importance

    features, target = params.data.features, params.data.target
    result = permutation_importance(
        model, frame[features], frame[target], n_repeats=5, random_state=seed, n_jobs=1
    )
    return pd.Series(result.importances_mean, index=features, name="importance").sort_values(ascending=False)


def predictions_frame(frame: pd.DataFrame, predicted: np.ndarray, params: Params) -> pd.DataFrame:
    """Time, actual, predicted and residual per row, for plots and the champion comparison."""
    out = pd.DataFrame({"actual": frame[params.data.target].to_numpy(), "predicted": predicted})
    if TIME in frame:
        out.insert(0, TIME, frame[TIME].to_numpy())
    if params.data.task == "regression":
        out["residual"] = out["actual"] - out["predicted"]
    return out
