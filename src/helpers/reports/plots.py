"""Matplotlib figures shared by the notebooks and the reports (investigate, train, release).

Every function returns a :class:`matplotlib.figure.Figure`; a notebook cell shows it.
Drift figures live in :mod:`helpers.reports.drift_plots`, the classification panels in
:mod:`helpers.reports.classification_plots`. The task-agnostic helpers (:func:`target_figure`,
:func:`evaluation_figure`) pick the figure for ``data.task``, so a notebook cell needs no branch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers.core.config import Params
from helpers.modeling.data import TIME
from helpers.modeling.train import scored_rows
from helpers.reports import classification_plots

BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"


class _Figures:
    """Figures made without pyplot: Jupyter shows a returned figure once, and none leak."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
        figsize = kwargs.pop("figsize", None)
        fig = Figure(figsize=figsize)
        return fig, fig.subplots(nrows, ncols, **kwargs)


plt = _Figures()


def show_figures_inline() -> bool:
    """Make Jupyter render a returned Figure as a PNG (figures made without pyplot are not
    registered with the inline backend, so they would show as ``<Figure size ...>``).

    Returns True inside an IPython kernel, False elsewhere.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _figure_png)
    return True


def _figure_png(fig: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def _grid(count: int, columns: int = 4, size: tuple[float, float] = (3.2, 2.4)) -> tuple[Figure, list]:
    rows = max(1, math.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def target_figure(frame: pd.DataFrame, params: Params) -> Figure:
    """The target over time and its distribution: the mean per period and a histogram
    (regression), or the class shares per period and the rows per class (classification)."""
    freq = period_for(frame)
    if params.data.task == "classification":
        return classification_plots.target_figure(frame, params, freq)
    target = params.data.target
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 3.4), width_ratios=[2.4, 1])
    _draw_mean_over_time(left, frame, target, freq)
    _distribution(right, frame[target], bins=40, max_levels=10)
    right.set(title=f"Distribution of {target}", xlabel=target, ylabel="rows")
    fig.tight_layout()
    return fig


def period_for(frame: pd.DataFrame) -> str:
    """A period alias giving a readable number of points: days up to ~4 months, then weeks,
    then months."""
    if TIME not in frame or frame[TIME].isna().all():
        return "D"
    days = (frame[TIME].max() - frame[TIME].min()).days
    return "D" if days <= 120 else "W" if days <= 730 else "MS"


def evaluation_figure(predictions: pd.DataFrame, params: Params, title: str = "held-out rows") -> Figure:
    """The evaluation panels for ``data.task``: :func:`residuals` (regression), or the confusion
    matrix, ROC, precision-recall and reliability curves (classification); on the rows with a
    known target."""
    rows = scored_rows(predictions, params.data.task)
    if params.data.task == "classification":
        return classification_plots.evaluation_figure(rows, title)
    return residuals(rows, title)


def target_over_time(frame: pd.DataFrame, target: str, freq: str = "D") -> Figure:
    """Mean of a numeric target per period, to see trend and seasonality."""
    fig, ax = plt.subplots(figsize=(11, 3))
    _draw_mean_over_time(ax, frame, target, freq)
    fig.tight_layout()
    return fig


def _draw_mean_over_time(ax: Any, frame: pd.DataFrame, target: str, freq: str) -> None:
    values = pd.to_numeric(frame[target], errors="coerce")
    series = pd.Series(values.to_numpy(), index=pd.DatetimeIndex(frame[TIME])).sort_index().resample(freq).mean()
    ax.plot(series.index, series.to_numpy(), color=BLUE, lw=1)
    ax.set(title=f"{target}: mean per {freq} period", ylabel=target)


def _distribution(ax: Any, series: pd.Series, bins: int, max_levels: int) -> None:
    """A histogram for a many-valued numeric series, else a bar per value."""
    values = series.dropna()
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > max_levels:
        ax.hist(values, bins=bins, color=BLUE, alpha=0.85)
    else:
        counts = values.value_counts().sort_index()
        ax.bar(counts.index.astype(str), counts.to_numpy(), color=BLUE)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)


def target_distribution(frame: pd.DataFrame, target: str) -> Figure:
    """Histogram (numeric) or bar chart (classes) of the target."""
    fig, ax = plt.subplots(figsize=(6, 3))
    _distribution(ax, frame[target], bins=40, max_levels=10)
    ax.set(title=f"Distribution of {target}", xlabel=target, ylabel="rows")
    fig.tight_layout()
    return fig


def feature_distributions(frame: pd.DataFrame, features: list[str]) -> Figure:
    """One small histogram or bar chart per feature."""
    fig, axes = _grid(len(features))
    for ax, name in zip(axes, features, strict=True):
        _distribution(ax, frame[name], bins=30, max_levels=12)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def correlation_heatmap(corr: pd.DataFrame) -> Figure:
    """Heat map of a correlation matrix with the values written in."""
    size = 0.55 * len(corr) + 2
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(corr)), corr.index, fontsize=8)
    for (i, j), value in np.ndenumerate(corr.to_numpy()):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("Pearson correlation")
    fig.tight_layout()
    return fig


def residuals(predictions: pd.DataFrame, title: str = "held-out rows") -> Figure:
    """Predicted against actual, residual histogram, and residuals over time."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    actual, predicted = predictions["actual"], predictions["predicted"]
    high = float(max(actual.max(), predicted.max()))
    axes[0].scatter(actual, predicted, s=4, alpha=0.4, color=BLUE)
    axes[0].plot([0, high], [0, high], color=GREY, lw=1, ls="--")
    axes[0].set(title=f"Predicted vs actual ({title})", xlabel="actual", ylabel="predicted")
    axes[1].hist(predictions["residual"], bins=40, color=ORANGE, alpha=0.85)
    axes[1].set(title="Residuals (actual - predicted)", xlabel="residual", ylabel="rows")
    if TIME in predictions:
        daily = predictions.set_index(TIME)["residual"].resample("D").mean()
        axes[2].plot(daily.index, daily.to_numpy(), color=ORANGE, lw=1)
        axes[2].axhline(0, color=GREY, lw=1)
        axes[2].tick_params(axis="x", labelrotation=30)
    axes[2].set(title="Mean residual per day", ylabel="residual")
    fig.tight_layout()
    return fig


def feature_importance(importance: pd.Series) -> Figure:
    """Horizontal bars of feature importance, largest on top."""
    ordered = importance.sort_values()
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(ordered) + 1.2))
    ax.barh(ordered.index.astype(str), ordered.to_numpy(), color=BLUE)
    ax.set(title="Permutation importance (drop in score)", xlabel="importance")
    fig.tight_layout()
    return fig


def metric_comparison(table: pd.DataFrame) -> Figure:
    """Side-by-side bars of challenger and champion metrics (one panel per metric)."""
    metrics = list(table.index)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        row = table.loc[metric].dropna()
        ax.bar(row.index.astype(str), row.to_numpy(dtype=float), color=[BLUE, ORANGE, GREY][: len(row)])
        ax.set_title(metric)
    fig.tight_layout()
    return fig
