"""Splits, model construction and metrics, checked against hand-derived values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.core.config import SplitParams, load_params
from helpers.core.errors import ParamsError
from helpers.modeling import estimators, metrics, train
from helpers.modeling.data import TIME


def _frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    stamps = pd.date_range("2011-01-01", periods=n, freq="h")
    return pd.DataFrame({TIME: stamps[::-1], "x": rng.normal(size=n), "city": rng.choice(["a", "b"], n),
                         "y": np.arange(n, dtype=float)})


def test_time_split_holds_out_the_latest_rows() -> None:
    train_rows, test_rows = train.split(_frame(), SplitParams(method="time", test_size=0.2))
    assert len(train_rows) == 80 and len(test_rows) == 20
    assert train_rows[TIME].max() < test_rows[TIME].min()
    assert train_rows[TIME].is_monotonic_increasing


def test_random_split_is_seeded() -> None:
    first = train.split(_frame(), SplitParams(method="random", test_size=0.25, seed=3))[1]
    again = train.split(_frame(), SplitParams(method="random", test_size=0.25, seed=3))[1]
    assert len(first) == 25 and first.equals(again)


def test_regression_metrics_match_hand_computation() -> None:
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 6.0])
    got = metrics.metrics("regression", y, p)
    assert got["mae"] == pytest.approx((0 + 1 + 1 + 2) / 4)
    assert got["rmse"] == pytest.approx(np.sqrt((0 + 1 + 1 + 4) / 4))
    assert got["r2"] == pytest.approx(1 - 6 / 5)


def test_classification_metrics_match_hand_computation() -> None:
    y = np.array([0, 0, 1, 1])
    got = metrics.metrics("classification", y, np.array([0, 1, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]))
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["f1"] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert got["roc_auc"] == pytest.approx(1.0)


def test_model_encodes_strings_and_tolerates_unseen_categories(params_file) -> None:
    params = load_params(params_file, ["data.features=[x, city]", "data.target=y"])
    frame = _frame(200)
    model = estimators.build_model(params, frame).fit(frame[["x", "city"]], frame["y"])
    assert model.named_steps["model"].categorical_features == [True, False]
    unseen = pd.DataFrame({"x": [0.0], "city": ["never seen"]})
    assert np.isfinite(model.predict(unseen)).all()


def test_check_model_params_rejects_task_mismatch(params_file) -> None:
    params = load_params(params_file, ["model.type=HistGradientBoostingClassifier", "model.hyperparameters={}"])
    with pytest.raises(ParamsError, match="does not fit data.task=regression"):
        estimators.check_model_params(params)
