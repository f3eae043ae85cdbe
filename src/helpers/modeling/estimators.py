"""The estimator a params file names: its class, the checks on its hyperparameters, and the
pipeline that prepares the features for it.

Example
-------
>>> check_model_params(params)  # doctest: +SKIP
>>> model = build_model(params, train_rows)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils import all_estimators

from helpers.core.config import Params
from helpers.core.errors import ParamsError

UNKNOWN = -1  # code for a category unseen in training (and for missing ones)


COMMON_MODULES = ("ensemble", "linear_model", "tree", "neighbors", "svm", "dummy")


def estimator_class(name: str) -> type[BaseEstimator]:
    """The scikit-learn estimator class called ``name``; ParamsError with a hint otherwise."""
    for module in COMMON_MODULES:  # the usual homes first: listing every estimator takes seconds
        found = getattr(importlib.import_module(f"sklearn.{module}"), name, None)
        if isinstance(found, type) and issubclass(found, (RegressorMixin, ClassifierMixin)):
            return found
    classes = dict(all_estimators(type_filter=["regressor", "classifier"]))
    if name not in classes:
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
