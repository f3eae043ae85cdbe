"""Estimated performance without labels (CBPE, DLE) against closed forms and simulated labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from helpers.modeling.metrics import classification_metrics
from helpers.stats.estimation import (
    Calibrator,
    calibration_quality,
    estimate_classification,
    expected_calibration_error,
    fit_calibrator,
    metrics_of_labels,
)
from helpers.stats.loss_estimation import estimate_regression, fit_loss_estimator


def _softmax(rng: np.random.Generator, n: int, k: int, scale: float = 2.0) -> np.ndarray:
    logits = rng.normal(0, scale, (n, k))
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _draw(rng: np.random.Generator, proba: np.ndarray) -> np.ndarray:
    return np.minimum((rng.random((len(proba), 1)) > proba.cumsum(axis=1)).sum(axis=1), proba.shape[1] - 1)


def test_expected_accuracy_log_loss_and_brier_have_their_closed_forms() -> None:
    rng = np.random.default_rng(0)
    proba = _softmax(rng, 300, 3)
    predicted = proba.argmax(axis=1)
    out = estimate_classification(proba, predicted, proba, ["accuracy", "log_loss", "brier"])
    # calibrated probabilities: P(correct) of a row is the probability of its predicted class
    assert out["accuracy"].value == pytest.approx(proba.max(axis=1).mean(), abs=1e-12)
    assert out["log_loss"].value == pytest.approx(-(proba * np.log(proba)).sum(axis=1).mean(), abs=1e-12)
    brier = ((1 - 2 * proba + (proba ** 2).sum(axis=1, keepdims=True)) * proba).sum(axis=1).mean() / 3
    assert out["brier"].value == pytest.approx(brier, abs=1e-12)


def test_binary_expected_accuracy_by_hand() -> None:
    p = np.array([0.9, 0.8, 0.3, 0.5])  # positive class; predicted positive when p > 0.5
    out = estimate_classification(p, (p > 0.5).astype(int), p, ["accuracy"])
    assert out["accuracy"].value == pytest.approx((0.9 + 0.8 + 0.7 + 0.5) / 4)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_simulated_metrics_equal_sklearn_on_the_same_labels(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    proba = _softmax(rng, 120, n_classes)
    predicted = proba.argmax(axis=1)
    labels = np.stack([_draw(rng, proba) for _ in range(5)])
    names = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier"]
    ranks = np.column_stack([np.argsort(np.argsort(proba[:, c])) + 1.0 for c in range(n_classes)])
    got = metrics_of_labels(labels, predicted, proba, n_classes, names, ranks)
    for i, y in enumerate(labels):
        want = classification_metrics(y, predicted, proba, classes=list(range(n_classes)))
        for name in names:
            assert got[name][i] == pytest.approx(want[name], abs=1e-9), name


def test_estimate_is_the_mean_of_realized_metrics_under_calibration() -> None:
    rng = np.random.default_rng(1)
    proba = _softmax(rng, 400, 4)
    predicted = proba.argmax(axis=1)
    out = estimate_classification(proba, predicted, proba, ["f1", "roc_auc"], simulations=600, seed=3)
    realized = [(skm.f1_score(y, predicted, average="macro", labels=range(4), zero_division=0),
                 skm.roc_auc_score(y, proba, multi_class="ovr"))
                for y in (_draw(rng, proba) for _ in range(300))]
    f1, auc = np.array(realized).T
    assert out["f1"].value == pytest.approx(f1.mean(), abs=0.005)
    assert out["roc_auc"].value == pytest.approx(auc.mean(), abs=0.005)


def test_band_covers_the_realized_value_at_its_confidence() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(2, 2, 500)
    proba = np.column_stack([1 - p, p])
    predicted = (p > 0.5).astype(int)
    out = estimate_classification(proba, predicted, proba, ["accuracy", "f1", "roc_auc"], confidence=0.9)
    hits = {name: 0 for name in out}
    windows = 400
    for _ in range(windows):
        y = (rng.random(500) < p).astype(int)
        realized = classification_metrics(y, predicted, proba, classes=[0, 1])
        for name in hits:
            hits[name] += out[name].covers(realized[name])
    for name, count in hits.items():
        assert 0.85 <= count / windows <= 0.96, (name, count / windows)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_repairs_distorted_probabilities(method: str) -> None:
    rng = np.random.default_rng(4)
    true_p = rng.uniform(0.02, 0.98, 4000)
    y = (rng.random(4000) < true_p).astype(int)
    distorted = true_p ** 3 / (true_p ** 3 + (1 - true_p) ** 3)  # over-confident
    fit = fit_calibrator(distorted[:2000], y[:2000], method)
    again = Calibrator.from_dict(json.loads(json.dumps(fit.to_dict())))
    calibrated = again.transform(distorted[2000:])
    predicted = (distorted[2000:] > 0.5).astype(int)
    raw = np.column_stack([1 - distorted[2000:], distorted[2000:]])
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert np.allclose(calibrated[:, 1], true_p[2000:], atol=0.12 if method == "isotonic" else 0.05)
    assert expected_calibration_error(calibrated, predicted, y[2000:]) < 0.04
    assert expected_calibration_error(raw, predicted, y[2000:]) > 0.08
    quality = calibration_quality(raw, predicted, y[2000:], method)
    assert quality["ece"] < quality["ece_raw"] and not quality["poor"]


def test_expected_calibration_error_by_hand() -> None:
    proba = np.array([[0.2, 0.8], [0.2, 0.8], [0.6, 0.4], [0.6, 0.4]])
    predicted = np.array([1, 1, 0, 0])
    y = np.array([1, 0, 0, 0])
    # bin 0.8: 1 of 2 correct, |0.5 - 0.8| = 0.3; bin 0.6: 2 of 2, |1 - 0.6| = 0.4; weighted 0.35
    assert expected_calibration_error(proba, predicted, y) == pytest.approx(0.35)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_poor_calibration_is_flagged(method: str) -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 800)
    predicted = (p > 0.5).astype(int)
    proba = np.column_stack([1 - p, p])
    # the truth is not monotone in the probability: no calibration curve can repair it
    y = (rng.random(800) < np.where(np.abs(p - 0.5) < 0.25, 0.95, 0.05)).astype(int)
    poor = calibration_quality(proba, predicted, y, method)
    assert poor["poor"] is True and poor["ece"] > poor["threshold"] >= 0.05
    y = (rng.random(800) < p).astype(int)  # calibrated already
    good = calibration_quality(proba, predicted, y, method)
    assert good["poor"] is False and good["ece"] < 0.05


def _heteroscedastic(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, ...]:
    x = np.column_stack([rng.uniform(0, 1, n), np.clip(rng.uniform(0, 1, n) + shift, 0, 1)])
    truth = 3 * x[:, 0]
    y = truth + rng.normal(0, 0.2 + 2 * x[:, 1])
    return x, y, truth


def test_dle_recovers_window_mae_and_rmse_and_covers_them() -> None:
    rng = np.random.default_rng(6)
    x, y, pred = _heteroscedastic(rng, 3000)
    estimator = fit_loss_estimator(x, y, pred, seed=0)
    hits, errors = {"mae": 0, "rmse": 0}, {"mae": [], "rmse": []}
    windows = 120
    for w in range(windows):
        xw, yw, pw = _heteroscedastic(rng, 300, shift=0.3 if w % 2 else 0.0)  # half of the windows drifted
        out = estimate_regression(estimator, xw, pw, confidence=0.95)
        realized = {"mae": skm.mean_absolute_error(yw, pw), "rmse": np.sqrt(skm.mean_squared_error(yw, pw))}
        for name in hits:
            hits[name] += out[name].covers(realized[name])
            errors[name].append(out[name].value - realized[name])
    # E|e| = sigma * sqrt(2 / pi); the drifted windows (noisier) are followed, not missed
    for name in hits:
        assert 0.88 <= hits[name] / windows <= 0.99, (name, hits[name] / windows)
        assert abs(np.mean(errors[name])) < 0.03 and np.mean(np.abs(errors[name])) < 0.08


def test_dle_categorical_codes_and_no_rows() -> None:
    rng = np.random.default_rng(7)
    code = rng.integers(0, 3, 2000).astype(float)
    y = rng.normal(0, 1 + 2 * code)  # the error grows with the category
    pred = np.zeros(2000)
    estimator = fit_loss_estimator(code[:, None], y, pred, categorical=[True], seed=0)
    for c in range(3):
        got = estimate_regression(estimator, np.full((500, 1), float(c)), np.zeros(500))["mae"].value
        assert got == pytest.approx((1 + 2 * c) * np.sqrt(2 / np.pi), rel=0.15)
    assert estimate_regression(estimator, np.empty((0, 1)), np.empty(0)) == {}
