"""Feature preparation that suits the estimator: imputation, encoding and scaling by family.

Three families of scikit-learn estimators want their features differently:

``native``  (HistGradientBoosting*) handle missing values and take category codes: strings are
            ordinal-encoded (missing and unseen categories get code -1, which they read as
            missing; at most ``max_bins`` codes) and listed in ``categorical_features``; numbers
            pass through as floats (missing ones as NaN).
``trees``   (RandomForest*, ExtraTrees*, DecisionTree*, GradientBoosting*, AdaBoost*, Bagging*)
            split on numbers: median imputation of numbers, most-frequent imputation and
            ordinal codes for strings (an unseen category gets code -1).
``scaled``  (linear, SVM, nearest neighbours and every other estimator) need every input finite
            and on one scale: median imputation and standard scaling of numbers; most-frequent
            imputation and one-hot encoding of strings, at most :data:`MAX_ONE_HOT` columns per
            feature (rarer categories share one "infrequent" column; an unseen category maps to
            it, or to all zeros when none is infrequent).

Boolean columns (also object columns holding only True/False/missing) become 0.0/1.0 numbers.
Missing values never stop fit or predict, nor do categories unseen in training.

Example
-------
>>> prepare = preparation("scaled", sample, features)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

Family = Literal["native", "trees", "scaled"]

UNKNOWN = -1  # code of a category unseen in training (and, for the native family, of a missing one)
MAX_ONE_HOT = 20  # most one-hot columns per string feature (the rarest categories share the last)
TREE_MODULES = ("sklearn.tree", "sklearn.ensemble")


def estimator_family(estimator: Any) -> Family:
    """Which preparation ``estimator`` wants (see the module docstring)."""
    if "categorical_features" in estimator.get_params():
        return "native"
    if type(estimator).__module__.startswith(TREE_MODULES):
        return "trees"
    return "scaled"


# --------------------------------------------------------------------------- column kinds


@dataclass(frozen=True)
class FeatureKinds:
    """The features split by how they are prepared, each list in ``features`` order."""

    categorical: list[str]
    numeric: list[str]
    boolean: list[str]


def is_boolean(column: pd.Series) -> bool:
    """A bool column, or an object column whose present values are all True/False."""
    if pd.api.types.is_bool_dtype(column):
        return True
    if column.dtype != object:
        return False
    present = column.dropna()
    return len(present) > 0 and all(isinstance(v, (bool, np.bool_)) for v in present)


def feature_kinds(frame: pd.DataFrame, features: list[str]) -> FeatureKinds:
    """Split ``features`` of ``frame`` into categorical, numeric and boolean columns."""
    boolean = [c for c in features if is_boolean(frame[c])]
    numeric = [c for c in features if c not in boolean and pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in features if c not in boolean and c not in numeric]
    return FeatureKinds(categorical=categorical, numeric=numeric, boolean=boolean)


def categorical_columns(frame: pd.DataFrame, features: list[str]) -> list[str]:
    """Features whose values are strings (or categories): they are encoded."""
    return feature_kinds(frame, features).categorical


# --------------------------------------------------------------------------- value conversions


def as_float(values: Any) -> np.ndarray:
    """Numbers and booleans (also nullable ones, and object True/False/None) as float64, with
    NaN for every kind of missing value.

    This function and :func:`as_text` are named in every registered model: keep their names
    and this module's path, or older versions no longer load.
    """
    return pd.DataFrame(values).astype("float64").to_numpy()


def as_text(values: Any) -> np.ndarray:
    """Categories as strings (NaN stays NaN), so mixed ints and strings encode alike."""
    frame = pd.DataFrame(values).astype(object)
    text = np.array(frame.apply(lambda col: col.map(str, na_action="ignore")), dtype=object)
    text[pd.isna(text)] = np.nan  # pd.NA and None too: the imputers look for NaN
    return text


def _converter(function: Any) -> FunctionTransformer:
    return FunctionTransformer(function, feature_names_out="one-to-one")


# --------------------------------------------------------------------------- the preparations


def preparation(family: Family, sample: pd.DataFrame, features: list[str], max_bins: int = 255) -> ColumnTransformer:
    """The ColumnTransformer that prepares ``features`` for an estimator of ``family``.

    Its output columns are the categorical features first (one column each, or their one-hot
    columns), then the numeric ones, then the booleans. ``max_bins`` caps the category codes of
    the native family (HistGradientBoosting accepts at most ``max_bins`` categories).
    """
    kinds = feature_kinds(sample, features)
    builders = {"native": _native_parts, "trees": _tree_parts, "scaled": _scaled_parts}
    categorical, numeric, boolean = builders[family](max_bins)
    groups = [("categorical", categorical, kinds.categorical), ("numeric", numeric, kinds.numeric),
              ("boolean", boolean, kinds.boolean)]
    # a group without columns is left out: sklearn's HTML view of a fitted pipeline (what a
    # notebook shows) fails on a transformer fitted on no columns
    return ColumnTransformer([group for group in groups if group[2]], verbose_feature_names_out=False)


def native_categorical_mask(sample: pd.DataFrame, features: list[str]) -> list[bool] | None:
    """``categorical_features`` for the native family's output columns (None: no strings)."""
    kinds = feature_kinds(sample, features)
    mask = [True] * len(kinds.categorical) + [False] * (len(kinds.numeric) + len(kinds.boolean))
    return mask if kinds.categorical else None


def _native_parts(max_bins: int) -> tuple[Any, Any, Any]:
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=UNKNOWN,
                           encoded_missing_value=UNKNOWN, max_categories=max_bins)
    return make_pipeline(_converter(as_text), codes), _converter(as_float), _converter(as_float)


def _tree_parts(max_bins: int) -> tuple[Any, Any, Any]:
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=UNKNOWN)
    categorical = make_pipeline(_converter(as_text), SimpleImputer(strategy="most_frequent"), codes)
    boolean = make_pipeline(_converter(as_float), SimpleImputer(strategy="most_frequent"))
    return categorical, SimpleImputer(strategy="median"), boolean


def _scaled_parts(max_bins: int) -> tuple[Any, Any, Any]:
    one_hot = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_ONE_HOT,
                            sparse_output=False)
    categorical = make_pipeline(_converter(as_text), SimpleImputer(strategy="most_frequent"), one_hot)
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    boolean = make_pipeline(_converter(as_float), SimpleImputer(strategy="most_frequent"))
    return categorical, numeric, boolean
