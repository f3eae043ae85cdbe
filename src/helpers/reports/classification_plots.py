"""Classification figures: confusion matrix, ROC and precision-recall curves (one-vs-rest for
multiclass), reliability (calibration) curves, and class shares over time.

Each ``draw_*`` function draws one panel on a given axes; :func:`evaluation_figure` and
:func:`target_figure` put them together into the figure a notebook cell shows. A binary target
is drawn for its positive class (the larger label), a multiclass one with a curve per class.

Example
-------
>>> evaluation_figure(predictions, "test rows")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from helpers.core.config import Params
from helpers.modeling.investigate import class_shares_over_time
from helpers.modeling.train import class_probabilities, prediction_classes, tidy_labels

GREY = "#7f7f7f"
CALIBRATION_BINS = 10


def evaluation_figure(predictions: pd.DataFrame, title: str = "held-out rows") -> Figure:
    """Confusion matrix, ROC curves, precision-recall curves and reliability curves."""
    fig = Figure(figsize=(17, 4.2))
    axes = fig.subplots(1, 4)
    labels = prediction_classes(predictions)
    proba = class_probabilities(predictions)
    draw_confusion_matrix(axes[0], predictions, labels)
    axes[0].set_title(f"Confusion matrix ({title})")
    if proba is None or not len(predictions):
        for ax in axes[1:]:
            _message(ax, "no class probabilities")
    else:
        actual = predictions["actual"].to_numpy()
        draw_roc(axes[1], actual, proba, labels)
        draw_precision_recall(axes[2], actual, proba, labels)
        draw_calibration(axes[3], actual, proba, labels)
    fig.tight_layout()
    return fig


def draw_confusion_matrix(ax: Axes, predictions: pd.DataFrame, labels: list[Any]) -> None:
    """Rows per (actual, predicted) pair, actual classes down, predicted across."""
    matrix = skm.confusion_matrix(predictions["actual"], predictions["predicted"], labels=labels)
    ax.imshow(matrix, cmap="Blues")
    names = [str(label) for label in labels]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    high = matrix.max() if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > high / 2 else "black")
    ax.set(xlabel="predicted", ylabel="actual")


def _one_vs_rest(actual: np.ndarray, proba: np.ndarray, labels: list[Any]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, is-this-class, its probability) per drawn class: the positive class of a binary
    target, every class of a multiclass one; classes absent from, or alone in, ``actual`` skipped."""
    drawn = [len(labels) - 1] if len(labels) <= 2 else range(len(labels))
    out = []
    for index in drawn:
        hits = actual == labels[index]
        if 0 < hits.sum() < len(hits):
            out.append((str(labels[index]), hits, proba[:, index]))
    return out


def draw_roc(ax: Axes, actual: np.ndarray, proba: np.ndarray, labels: list[Any]) -> None:
    """ROC curve per drawn class, with its area in the legend."""
    curves = _one_vs_rest(actual, proba, labels)
    for name, hits, score in curves:
        fpr, tpr, _ = skm.roc_curve(hits, score)
        ax.plot(fpr, tpr, lw=1.2, label=f"{name} (AUC {skm.auc(fpr, tpr):.2f})")
    ax.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--")
    ax.set(title="ROC (one vs rest)" if len(labels) > 2 else "ROC",
           xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02))
    _legend_or_message(ax, curves)


def draw_precision_recall(ax: Axes, actual: np.ndarray, proba: np.ndarray, labels: list[Any]) -> None:
    """Precision-recall curve per drawn class, with its average precision in the legend."""
    curves = _one_vs_rest(actual, proba, labels)
    for name, hits, score in curves:
        precision, recall, _ = skm.precision_recall_curve(hits, score)
        ax.plot(recall, precision, lw=1.2, label=f"{name} (AP {skm.average_precision_score(hits, score):.2f})")
    ax.set(title="Precision-recall", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    _legend_or_message(ax, curves)


def draw_calibration(ax: Axes, actual: np.ndarray, proba: np.ndarray, labels: list[Any]) -> None:
    """Reliability curve per drawn class: observed share against mean predicted probability."""
    curves = _one_vs_rest(actual, proba, labels)
    for name, hits, score in curves:
        observed, predicted = calibration_curve(hits, score, n_bins=CALIBRATION_BINS, strategy="uniform")
        ax.plot(predicted, observed, marker="o", ms=3, lw=1.2, label=name)
    ax.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--")
    ax.set(title="Reliability (calibration)", xlabel="mean predicted probability",
           ylabel="observed share", xlim=(0, 1), ylim=(0, 1.02))
    _legend_or_message(ax, curves)


def draw_class_shares(ax: Axes, frame: pd.DataFrame, params: Params, freq: str) -> None:
    """Stacked areas of the class shares per period."""
    shares = class_shares_over_time(frame, params, freq).set_index("period").fillna(0.0)
    ax.stackplot(shares.index, shares.to_numpy().T, labels=list(shares.columns), alpha=0.85)
    ax.set(title=f"{params.data.target}: class shares per {freq} period", ylabel="share", ylim=(0, 1))
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def draw_class_counts(ax: Axes, frame: pd.DataFrame, target: str) -> None:
    """A bar per class with its row count."""
    counts = tidy_labels(frame[target]).value_counts().sort_index()
    ax.bar([str(c) for c in counts.index], counts.to_numpy(), color="#1f77b4")
    ax.set(title=f"Rows per class of {target}", xlabel=target, ylabel="rows")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)


def target_figure(frame: pd.DataFrame, params: Params, freq: str) -> Figure:
    """Class shares over time and the rows per class."""
    fig = Figure(figsize=(14, 3.4))
    left, right = fig.subplots(1, 2, width_ratios=[2.4, 1])
    draw_class_shares(left, frame, params, freq)
    draw_class_counts(right, frame, params.data.target)
    fig.tight_layout()
    return fig


def _legend_or_message(ax: Axes, curves: list[Any]) -> None:
    if curves:
        ax.legend(fontsize=7, loc="best")
    else:
        _message(ax, "needs both outcomes among the rows")


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=GREY)
    ax.set_xticks([])
    ax.set_yticks([])
