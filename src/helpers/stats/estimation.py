"""Performance without labels: confidence-based performance estimation (CBPE) for classifiers.

A classifier's class probabilities, once calibrated on held-out rows, say how likely each label
is; a window's metrics can then be estimated from the probabilities alone.

Calibration
    One curve per class, fitted one-vs-rest on held-out rows (isotonic regression, or Platt
    scaling: a logistic regression on the probability's logit); binary models calibrate the
    positive class only, multiclass rows are renormalised to sum to one. The curves are plain
    numbers (:meth:`Calibrator.to_dict`), so a saved calibrator loads without running code.
Calibration quality
    Expected calibration error (ECE) of the model's predicted label: rows binned by the
    calibrated probability of the label the model predicted (10 equal-width bins), the
    row-weighted mean of ``|share correct - mean probability|``. It is measured out of sample
    (two-fold cross-fitting on the held-out rows). Calibration is *poor* when that ECE exceeds
    both :data:`POOR_CALIBRATION_ECE` and the 95th percentile of the ECE perfectly calibrated
    probabilities would show on as many rows (simulated), so a small held-out set is not
    called poor for its noise alone.
Estimates
    Accuracy, log loss and Brier score are linear in the labels: their estimate is the exact
    expectation under the calibrated probabilities. Precision, recall, F1 (binary: of the
    positive class, the larger label; multiclass: macro over the model's classes, as
    :mod:`helpers.modeling.metrics` defines them), balanced accuracy and ROC AUC (ranked by the
    model's own probabilities; one-vs-rest macro for multiclass) are not: their estimate is the
    mean over ``simulations`` label sets drawn row by row from the calibrated probabilities.
Band
    The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the metric over the
    simulated label sets: where the window's realized metric falls with probability
    ``confidence`` when the calibration holds. It does not widen for calibration error; the
    calibration report says when the calibration itself is doubtful.

Example
-------
>>> import numpy as np
>>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
>>> cal = fit_calibrator(proba, np.array([0, 1, 0]), "platt")
>>> out = estimate_classification(cal.transform(proba), proba.argmax(1), proba, ["accuracy"])
>>> 0 <= out["accuracy"].lower <= out["accuracy"].value <= out["accuracy"].upper <= 1
True
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

CLASSIFICATION_ESTIMATES = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                            "log_loss", "brier")
POOR_CALIBRATION_ECE = 0.05  # an out-of-sample ECE above this (and above its noise) is poor
ECE_BINS = 10
SIMULATIONS = 400  # label sets drawn for the band and the non-linear estimates
_CELLS_PER_CHUNK = 2_000_000  # simulated rows x classes held in memory at once
_EPS = 1e-12


@dataclass
class Estimate:
    """An estimated metric with its band."""

    value: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready form: ``value``, ``lower``, ``upper``."""
        return {"value": self.value, "lower": self.lower, "upper": self.upper}

    def covers(self, realized: float) -> bool:
        """Whether ``realized`` lies inside the band (bounds included)."""
        return bool(self.lower - 1e-12 <= realized <= self.upper + 1e-12)


# --------------------------------------------------------------------------- calibration


@dataclass
class Calibrator:
    """Per-class calibration curves of a classifier's probabilities (columns in class order)."""

    method: str  # isotonic | platt
    n_classes: int
    curves: list[dict[str, Any]] = field(default_factory=list)  # binary: one (the positive class)

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, rows summing to one."""
        proba = _two_columns(np.asarray(proba, dtype=float))
        if self.n_classes == 2:
            positive = _apply_curve(self.method, self.curves[0], proba[:, 1])
            return np.column_stack([1.0 - positive, positive])
        out = np.column_stack([_apply_curve(self.method, c, proba[:, k]) for k, c in enumerate(self.curves)])
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1.0 / self.n_classes)
        return np.where(total > _EPS, out / np.clip(total, _EPS, None), uniform)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"method": self.method, "n_classes": self.n_classes, "curves": self.curves}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["method"]), int(data["n_classes"]), list(data["curves"]))


def fit_calibrator(proba: np.ndarray, y_index: np.ndarray, method: str) -> Calibrator:
    """Fit one calibration curve per class (binary: the positive class) on held-out rows.

    Parameters
    ----------
    proba : array of shape (n_rows, n_classes)
        The model's probabilities, columns in class order (a 1-D array: the positive class's).
    y_index : array of shape (n_rows,)
        Each row's true class as a column index of ``proba``.
    method : {"isotonic", "platt"}
    """
    proba = _two_columns(np.asarray(proba, dtype=float))
    y_index = np.asarray(y_index, dtype=int)
    n_classes = proba.shape[1]
    columns = [1] if n_classes == 2 else range(n_classes)
    curves = [_fit_curve(method, proba[:, k], (y_index == k).astype(float)) for k in columns]
    return Calibrator(method, n_classes, curves)


def _fit_curve(method: str, p: np.ndarray, hit: np.ndarray) -> dict[str, Any]:
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, hit)
        return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if method != "platt":
        raise ValueError(f"calibration method {method!r}: use isotonic or platt")
    if hit.min() == hit.max():  # the class never (or always) occurred: a constant curve
        return {"a": 0.0, "b": float(_logit(np.array([np.clip(hit.mean(), 1e-3, 1 - 1e-3)]))[0])}
    fit = LogisticRegression(C=1e6).fit(_logit(p)[:, None], hit)
    return {"a": float(fit.coef_[0, 0]), "b": float(fit.intercept_[0])}


def _apply_curve(method: str, curve: dict[str, Any], p: np.ndarray) -> np.ndarray:
    if method == "isotonic":
        return np.interp(p, np.asarray(curve["x"], dtype=float), np.asarray(curve["y"], dtype=float))
    return 1.0 / (1.0 + np.exp(-(curve["a"] * _logit(p) + curve["b"])))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def expected_calibration_error(proba: np.ndarray, predicted: np.ndarray, y_index: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """ECE of the predicted label: rows binned by ``proba[i, predicted[i]]`` (equal width), the
    row-weighted mean gap between the share of correct predictions and the mean probability."""
    proba = _two_columns(np.asarray(proba, dtype=float))
    predicted, y_index = np.asarray(predicted, dtype=int), np.asarray(y_index, dtype=int)
    if len(predicted) == 0:
        return 0.0
    confidence = proba[np.arange(len(predicted)), predicted]
    correct = (predicted == y_index).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    weight = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, correct, bins) - np.bincount(which, confidence, bins))
    return float(gap.sum() / len(predicted)) if weight.sum() else 0.0


def calibration_quality(proba: np.ndarray, predicted: np.ndarray, y_index: np.ndarray, method: str,
                        seed: int = 0, folds: int = 2) -> dict[str, Any]:
    """How well calibration works on these held-out rows: ECE of the raw probabilities, the
    cross-fitted (out-of-sample) ECE after calibration, the noise level of a perfectly
    calibrated ECE on as many rows, and ``poor`` (see the module notes)."""
    proba = _two_columns(np.asarray(proba, dtype=float))
    predicted, y_index = np.asarray(predicted, dtype=int), np.asarray(y_index, dtype=int)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(y_index)) % folds
    calibrated = np.empty_like(proba)
    for k in range(folds):
        fit_rows = fold != k
        calibrated[~fit_rows] = fit_calibrator(proba[fit_rows], y_index[fit_rows], method).transform(proba[~fit_rows])
    ece = expected_calibration_error(calibrated, predicted, y_index)
    noise = _null_ece(calibrated, predicted, rng)
    threshold = max(POOR_CALIBRATION_ECE, noise)
    return {"method": method, "rows": int(len(y_index)),
            "ece_raw": expected_calibration_error(proba, predicted, y_index), "ece": ece,
            "ece_noise_q95": noise, "threshold": threshold, "poor": bool(ece > threshold)}


def _null_ece(proba: np.ndarray, predicted: np.ndarray, rng: np.random.Generator, draws: int = 200) -> float:
    """95th percentile of the ECE of perfectly calibrated ``proba`` (labels drawn from it)."""
    if len(predicted) == 0:
        return 0.0
    labels = _draw_labels(proba, draws, rng)
    values = [expected_calibration_error(proba, predicted, y) for y in labels]
    return float(np.quantile(values, 0.95))


# --------------------------------------------------------------------------- estimation


def estimate_classification(
    calibrated: np.ndarray, predicted: np.ndarray, scores: np.ndarray,
    metrics: Sequence[str] = CLASSIFICATION_ESTIMATES, *, confidence: float = 0.95,
    simulations: int = SIMULATIONS, seed: int = 0,
) -> dict[str, Estimate]:
    """Estimated ``metrics`` of a window with their bands, from probabilities alone.

    Parameters
    ----------
    calibrated : array of shape (n_rows, n_classes)
        Calibrated class probabilities (:meth:`Calibrator.transform`).
    predicted : array of shape (n_rows,)
        The model's predicted label per row, as a column index.
    scores : array of shape (n_rows, n_classes)
        The model's own probabilities: what ROC AUC ranks, and what log loss and Brier score
        judge.
    metrics : names from :data:`CLASSIFICATION_ESTIMATES`
    confidence : float
        Level of the band.
    simulations : int
        Label sets drawn for the band (and the non-linear estimates); seeded by ``seed``.

    Returns
    -------
    dict
        Metric name to :class:`Estimate`; a metric left out when undefined (ROC AUC with no
        simulated window holding two classes, or no rows).
    """
    calibrated = _two_columns(np.asarray(calibrated, dtype=float))
    scores = _two_columns(np.asarray(scores, dtype=float))
    predicted = np.asarray(predicted, dtype=int)
    if len(predicted) == 0:
        return {}
    rng = np.random.default_rng(seed)
    drawn = _simulated_metrics(calibrated, predicted, scores, list(metrics), simulations, rng)
    exact = _expected_linear(calibrated, predicted, scores)
    low_q, high_q = (1 - confidence) / 2, (1 + confidence) / 2
    out: dict[str, Estimate] = {}
    for name in metrics:
        values = drawn[name][np.isfinite(drawn[name])]
        if len(values) == 0:
            continue
        value = exact[name] if name in exact else float(values.mean())
        lower, upper = np.quantile(values, [low_q, high_q])
        out[name] = Estimate(float(value), float(min(lower, value)), float(max(upper, value)))
    return out


def _expected_linear(calibrated: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Exact expectations of accuracy, log loss and Brier score under ``calibrated``."""
    rows = np.arange(len(predicted))
    log_scores = np.log(np.clip(scores, 1e-15, 1.0))
    squares = (scores ** 2).sum(axis=1, keepdims=True)
    brier = (calibrated * (squares - 2 * scores + 1)).sum(axis=1)  # E over the label of sum_k (1[y=k] - p_k)^2
    return {"accuracy": float(calibrated[rows, predicted].mean()),
            "log_loss": float(-(calibrated * log_scores).sum(axis=1).mean()),
            "brier": float(brier.mean() / scores.shape[1])}


def _simulated_metrics(calibrated: np.ndarray, predicted: np.ndarray, scores: np.ndarray, metrics: list[str],
                       simulations: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each metric on ``simulations`` label sets drawn from ``calibrated`` (NaN where undefined)."""
    n, k = calibrated.shape
    per_chunk = max(1, _CELLS_PER_CHUNK // max(n * k, 1))
    ranks = np.column_stack([sps.rankdata(scores[:, c]) for c in range(k)]) if "roc_auc" in metrics else None
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, simulations, per_chunk):
        labels = _draw_labels(calibrated, min(per_chunk, simulations - start), rng)
        parts.append(metrics_of_labels(labels, predicted, scores, k, metrics, ranks))
    return {name: np.concatenate([p[name] for p in parts]) for name in metrics}


def _draw_labels(proba: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` label sets (rows of column indices), each row's label drawn from its probabilities."""
    cumulative = np.cumsum(proba, axis=1)
    u = rng.random((draws, proba.shape[0], 1)) * cumulative[None, :, -1:]
    return np.minimum((u >= cumulative[None, :, :]).sum(axis=2), proba.shape[1] - 1)


def metrics_of_labels(labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray, n_classes: int,
                      metrics: Sequence[str], ranks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The metrics of each label set in ``labels`` (shape (sets, rows)) for fixed predictions,
    vectorised over the sets; definitions as in :mod:`helpers.modeling.metrics`."""
    labels = np.atleast_2d(labels)
    sets, n = labels.shape
    correct = labels == predicted[None, :]
    out: dict[str, np.ndarray] = {"accuracy": correct.mean(axis=1)}
    tp = np.column_stack([(correct & (predicted == c)[None, :]).sum(axis=1) for c in range(n_classes)])
    true = np.column_stack([(labels == c).sum(axis=1) for c in range(n_classes)])
    pred = np.bincount(predicted, minlength=n_classes)[None, :].astype(float)
    precision = np.divide(tp, pred, out=np.zeros(tp.shape), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros(tp.shape), where=true > 0)
    f1 = np.divide(2 * tp, pred + true, out=np.zeros(tp.shape), where=(pred + true) > 0)
    pick = (lambda a: a[:, 1]) if n_classes == 2 else (lambda a: a.mean(axis=1))
    out.update(precision=pick(precision), recall=pick(recall), f1=pick(f1))
    present = true > 0
    out["balanced_accuracy"] = np.divide((recall * present).sum(axis=1), present.sum(axis=1))
    gathered = scores[np.arange(n)[None, :], labels]
    out["log_loss"] = -np.log(np.clip(gathered, 1e-15, 1.0)).mean(axis=1)
    squares = (scores ** 2).sum(axis=1)
    out["brier"] = (squares[None, :] - 2 * gathered + 1).sum(axis=1) / (n * n_classes)
    if "roc_auc" in metrics:
        out["roc_auc"] = _auc_of_labels(labels, ranks, true, n_classes)
    return {name: out[name] for name in metrics}


def _auc_of_labels(labels: np.ndarray, ranks: np.ndarray, true: np.ndarray, n_classes: int) -> np.ndarray:
    """ROC AUC per label set from mid-ranks of the scores (binary: of the positive class;
    multiclass: one-vs-rest mean over the classes present and absent-free), NaN when undefined."""
    n = labels.shape[1]
    columns = [1] if n_classes == 2 else range(n_classes)
    aucs = []
    for c in columns:
        positives = true[:, c].astype(float)
        negatives = n - positives
        rank_sum = (ranks[:, c][None, :] * (labels == c)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
        aucs.append(np.where((positives > 0) & (negatives > 0), auc, np.nan))
    stacked = np.column_stack(aucs)
    with warnings.catch_warnings():  # a set where no class is defined: NaN, said below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stacked, axis=1)
    return np.where(np.isfinite(stacked).sum(axis=1) >= (1 if n_classes == 2 else 2), mean, np.nan)


def _two_columns(proba: np.ndarray) -> np.ndarray:
    """A positive-class probability vector as two columns (negative, positive)."""
    return np.column_stack([1.0 - proba, proba]) if proba.ndim == 1 else proba
