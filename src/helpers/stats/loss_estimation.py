"""Performance without labels for regressors: direct loss estimation (DLE).

Two gradient boosting models (``HistGradientBoostingRegressor``), fitted on held-out rows,
predict the champion's absolute error and its squared error from the features and the
prediction. On a window:

* estimated MAE = mean predicted absolute error; estimated RMSE = the square root of the mean
  predicted squared error;
* band: the window's realized loss is a mean of row losses; given the features, row ``i``'s
  absolute error has variance ``E[e²] - E[|e|]²`` (both predicted), and its squared error about
  ``2 E[e²]²`` (normal errors). The mean's standard error is their root sum over ``n``; the band
  is the estimate plus or minus the normal quantile of ``confidence`` times it (for RMSE, the
  band of the mean squared error, square-rooted). Like CBPE's band it is the spread of the
  realized value around a correct estimate, not the loss models' own error.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(0, 1, (2000, 1)); y = rng.normal(0, 1 + x[:, 0]); p = np.zeros(2000)
>>> est = fit_loss_estimator(x, y, p, seed=0)
>>> round(estimate_regression(est, x, p)["mae"].value, 1)
1.2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from helpers.stats.estimation import Estimate

REGRESSION_ESTIMATES = ("mae", "rmse")
LOSS_MODEL = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 20,
              "l2_regularization": 1.0}


@dataclass
class LossEstimator:
    """The fitted absolute-error and squared-error models, and which inputs are categorical."""

    absolute: Any  # HistGradientBoostingRegressor
    squared: Any
    categorical: list[bool]  # per feature column (the prediction, appended last, is numeric)


def loss_inputs(features: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The loss models' inputs: the feature columns, then the prediction."""
    features = np.asarray(features, dtype=float).reshape(len(predicted), -1)
    return np.column_stack([features, np.asarray(predicted, dtype=float)])


def fit_loss_estimator(features: np.ndarray, actual: np.ndarray, predicted: np.ndarray, *,
                       categorical: list[bool] | None = None, seed: int = 0) -> LossEstimator:
    """Fit the absolute- and squared-error models on held-out rows.

    Parameters
    ----------
    features : array of shape (n_rows, n_features)
        Numeric features; categorical ones as non-negative integer codes (NaN: missing or unseen).
    actual, predicted : arrays of shape (n_rows,)
        The true target and the champion's prediction.
    categorical : list of bool, optional
        Which feature columns are category codes.
    """
    x = loss_inputs(features, predicted)
    flags = list(categorical or [False] * (x.shape[1] - 1))
    error = np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)
    mask = np.array([*flags, False])
    settings = {**LOSS_MODEL, "random_state": seed,
                "categorical_features": mask if mask.any() else None}
    with threadpool_limits(limits=1, user_api="openmp"):  # one thread: far faster on small, shared machines
        absolute = HistGradientBoostingRegressor(**settings).fit(x, np.abs(error))
        squared = HistGradientBoostingRegressor(**settings).fit(x, error ** 2)
    return LossEstimator(absolute, squared, flags)


def predicted_losses(estimator: LossEstimator, features: np.ndarray,
                     predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row predicted absolute and squared errors (non-negative, ``E[e²] >= E[|e|]²``)."""
    x = loss_inputs(features, predicted)
    with threadpool_limits(limits=1, user_api="openmp"):
        absolute = np.clip(estimator.absolute.predict(x), 0.0, None)
        squared = np.maximum(np.clip(estimator.squared.predict(x), 0.0, None), absolute ** 2)
    return absolute, squared


def estimate_regression(estimator: LossEstimator, features: np.ndarray, predicted: np.ndarray, *,
                        confidence: float = 0.95) -> dict[str, Estimate]:
    """Estimated MAE and RMSE of a window with their bands (empty without rows)."""
    if len(predicted) == 0:
        return {}
    absolute, squared = predicted_losses(estimator, features, predicted)
    return losses_to_estimates(absolute, squared, confidence)


def losses_to_estimates(absolute: np.ndarray, squared: np.ndarray, confidence: float) -> dict[str, Estimate]:
    """MAE and RMSE estimates and bands from per-row predicted losses (see the module notes)."""
    n = len(absolute)
    z = float(sps.norm.ppf((1 + confidence) / 2))
    mae = float(absolute.mean())
    mae_se = float(np.sqrt(np.clip(squared - absolute ** 2, 0.0, None).sum()) / n)
    mse = float(squared.mean())
    mse_se = float(np.sqrt((2 * squared ** 2).sum()) / n)
    return {
        "mae": Estimate(mae, max(mae - z * mae_se, 0.0), mae + z * mae_se),
        "rmse": Estimate(float(np.sqrt(mse)), float(np.sqrt(max(mse - z * mse_se, 0.0))),
                         float(np.sqrt(mse + z * mse_se))),
    }
