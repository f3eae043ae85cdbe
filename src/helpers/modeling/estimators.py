"""The model a params file names: a scikit-learn class (``model.type``) with its hyperparameters
and the feature preparation that suits it, or the user's own (``model.factory``).

``model.factory`` wins when both are given: ``model.type`` and ``model.hyperparameters`` are then
not used by Driftgate (the factory receives the params and may read them).

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
from sklearn.pipeline import Pipeline
from sklearn.utils import all_estimators

from helpers.core.config import Params
from helpers.core.errors import ParamsError
from helpers.modeling.factory import factory_model, probability_metrics
from helpers.modeling.preprocessing import estimator_family, native_categorical_mask, preparation

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
    """Fail before any work when the model cannot be built: a wrong ``model.type`` or
    hyperparameter name, or a ``model.factory`` that cannot be imported, raises, or returns
    something that cannot fit and predict."""
    if params.model.factory:
        factory_model(params)
        return
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
    wanted = probability_metrics(params)
    if wants_classifier and wanted and not hasattr(configured_estimator(params), "predict_proba"):
        raise ParamsError(f"{where}: model.type: {cls.__name__} gives no predict_proba, needed for "
                          f"{', '.join(wanted)}; pick a classifier that has it (SVC: set "
                          "model.hyperparameters.probability: true) or drop those gates")


def configured_estimator(params: Params) -> BaseEstimator:
    """An instance of ``model.type`` with ``model.hyperparameters``."""
    hyper: dict[str, Any] = dict(params.model.hyperparameters)
    return estimator_class(params.model.type)(**hyper)


def build_model(params: Params, sample: pd.DataFrame) -> Any:
    """The unfitted model: the factory's, or a Pipeline of the feature preparation that suits
    ``model.type`` (see :mod:`helpers.modeling.preprocessing`) and the estimator.

    ``sample`` (rows like the training rows) tells which features are strings and booleans.
    """
    if params.model.factory:
        return factory_model(params)
    features = params.data.features
    estimator = configured_estimator(params)
    family = estimator_family(estimator)
    settings = estimator.get_params()
    prepare = preparation(family, sample, features, max_bins=int(settings.get("max_bins", 255)))
    if family == "native" and "categorical_features" not in params.model.hyperparameters:
        estimator.set_params(categorical_features=native_categorical_mask(sample, features))
    return Pipeline([("prepare", prepare), ("model", estimator)])
