"""Splits, model construction from params, and evaluation metrics.

Example
-------
>>> train_rows, test_rows = split(baseline, params.split)  # doctest: +SKIP
>>> model = build_model(params, train_rows)  # doctest: +SKIP
>>> model.fit(train_rows[params.data.features], train_rows[params.data.target])  # doctest: +SKIP
>>> metrics(params.data.task, test_rows[params.data.target], model.predict(...))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils import all_estimators

from helpers.core.config import Params, SplitParams
from helpers.core.errors import ParamsError
from helpers.modeling.data import TIME

UNKNOWN = -1  # code for a category unseen in training (and for missing ones)


def split(frame: pd.DataFrame, params: SplitParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test rows: the latest ``test_size`` by time, or at random."""
    if params.method == "time":
        ordered = frame.sort_values(TIME) if TIME in frame else frame
        cut = int(round(len(ordered) * (1.0 - params.test_size)))
        return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)
    train, test = train_test_split(frame, test_size=params.test_size, random_state=params.seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


COMMON_MODULES = ("ensemble", "linear_model", "tree", "neighbors", "svm", "dummy")


def estimator_class(name: str) -> type[BaseEstimator]:
    """The scikit-learn estimator class called ``name``; ParamsError with a hint otherwise."""
    import importlib

    for module in COMMON_MODULES:  # the usual homes first: listing every estimator takes seconds
        found = getattr(importlib.import_module(f"sklearn.{module}"), name, None)
        if isinstance(found, type) and issubclass(found, (RegressorMixin, ClassifierMixin)):
            return found
    classes = dict(all_estimators(type_filter=["regressor", "classifier"]))
    if name not in classes:
        import difflib

        close = difflib.get_close_matches(name, list(classes), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParamsError(f"model.type: {name!r} is not a scikit-learn regressor or classifier{hint}")
    return classes[name]


def check_model_params(params: Params) -> None:
    """Fail before any work when model.type or a hyperparameter name is wrong."""
    where = params.source or "params"
    try:
        cls = estimator_class(params.model.type)
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc}") from None
    valid = cls().get_params()
    for key in params.model.hyperparameters:
        if key not in valid:
            import difflib

            close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParamsError(f"{where}: model.hyperparameters.{key}: not a parameter of {cls.__name__}{hint}")
    wants_classifier = params.data.task == "classification"
    if is_classifier(cls()) != wants_classifier:
        raise ParamsError(f"{where}: model.type: {cls.__name__} does not fit data.task={params.data.task}")


def categorical_columns(frame: pd.DataFrame, features: list[str]) -> list[str]:
    """Features whose values are strings (or categories): they are ordinal-encoded."""
    return [
        c for c in features
        if not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def build_model(params: Params, sample: pd.DataFrame) -> Pipeline:
    """A Pipeline: ordinal-encode string features, then the configured estimator."""
    features = params.data.features
    categorical = categorical_columns(sample, features)
    numeric = [c for c in features if c not in categorical]
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=UNKNOWN, encoded_missing_value=UNKNOWN
    )
    prepare = ColumnTransformer(
        [("categorical", encoder, categorical), ("numeric", "passthrough", numeric)],
        verbose_feature_names_out=False,
    )
    hyper: dict[str, Any] = dict(params.model.hyperparameters)
    estimator = estimator_class(params.model.type)(**hyper)
    if "categorical_features" in estimator.get_params() and "categorical_features" not in hyper:
        mask = [True] * len(categorical) + [False] * len(numeric)
        estimator.set_params(categorical_features=mask if any(mask) else None)
    return Pipeline([("prepare", prepare), ("model", estimator)])


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
