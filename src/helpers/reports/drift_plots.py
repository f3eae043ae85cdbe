"""Matplotlib figures of a drift report, drawn from its aggregated counts only.

Every function takes a :class:`~helpers.stats.results.DriftReport` (or one
:class:`~helpers.stats.results.FeatureDrift`) and returns a :class:`matplotlib.figure.Figure` made
without pyplot, so a notebook cell shows it once and nothing leaks. The HTML report shows the
same panels drawn directly (:mod:`helpers.reports.drift_images`, much faster than a figure);
:func:`to_data_uri` embeds any of these figures in a page.

* :func:`feature_figure` - baseline and target shares on the baseline's bins (numeric, with
  the share below and above the baseline range drawn as hatched end bars) or per category;
* :func:`distributions` - those panels for every compared feature, drifted first;
* :func:`contributions` - each feature's share of the drift coefficient;
* :func:`over_time` - the chosen statistic of each feature per period, with its threshold.

Example
-------
>>> fig = distributions(report)  # doctest: +SKIP
>>> uri = to_data_uri(fig)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from helpers.stats.results import PVALUE_TESTS, DriftReport, FeatureDrift

BASELINE, TARGET, DRIFT, OK, GREY = "#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#7f7f7f"
PANEL = (4.2, 2.6)  # inches per small panel
P_FLOOR = 1e-300  # p-values drawn on a log axis are floored here
MAGNITUDE_FLOOR = 1e-2  # relative magnitudes below this are drawn at it (far below the threshold)


# --------------------------------------------------------------------------- one feature


def feature_figure(feature: FeatureDrift, size: tuple[float, float] = PANEL, legend: bool = True) -> Figure:
    """Baseline and target distributions of one feature on the same bins or categories."""
    fig = Figure(figsize=size)
    ax = fig.subplots()
    draw_feature(ax, feature, legend=legend)
    left = 0.14 if legend else 0.1
    fig.subplots_adjust(left=left, right=0.97, top=0.88, bottom=0.2 if feature.type == "categorical" else 0.12)
    return fig


def draw_feature(ax: Axes, feature: FeatureDrift, legend: bool = True) -> None:
    """Draw one feature's histogram or bar chart into ``ax``."""
    hist = feature.histogram
    if hist is None:
        _message(ax, "; ".join(feature.notes) or "not compared")
    else:
        if hist["kind"] == "numeric":
            _draw_numeric(ax, hist)
        else:
            _draw_categorical(ax, hist)
        ax.yaxis.set_major_locator(MaxNLocator(3))  # few ticks: tick text is most of the drawing time
        ax.tick_params(labelsize=7)
        if legend:
            ax.set_ylabel("share of rows", fontsize=8)
            ax.legend(fontsize=7, frameon=False)
    ax.set_title(feature_title(feature), fontsize=9, color=DRIFT if feature.drifted else "black")


def feature_title(feature: FeatureDrift) -> str:
    """A feature panel's title: name, verdict and the decision (``num0 [DRIFT] ks 0.012 < 0.05``)."""
    if not feature.compared or feature.statistic is None:
        return f"{feature.feature}: not compared"
    verdict = "DRIFT" if feature.drifted else "ok"
    decision = f"{feature.test} {_short(feature.statistic)} {feature.rule} {feature.threshold:g}"
    return f"{feature.feature} [{verdict}] {decision}"


def _draw_numeric(ax: Axes, hist: dict[str, Any]) -> None:
    edges = np.asarray(hist["edges"], dtype=float)
    base = share_of_rows(hist["baseline"])
    target = share_of_rows(hist["target"])
    ax.stairs(base[1:-1], edges, fill=True, color=BASELINE, alpha=0.45, label="baseline")
    ax.stairs(target[1:-1], edges, fill=True, color=TARGET, alpha=0.45, label="target")
    step = edges[1] - edges[0]
    for index, outer in ((0, [edges[0] - step, edges[0]]), (-1, [edges[-1], edges[-1] + step])):
        if base[index] or target[index]:  # shares below / above the baseline range, hatched
            for shares, color in ((base, BASELINE), (target, TARGET)):
                ax.stairs([shares[index]], outer, fill=True, color=color, alpha=0.45, hatch="//")
    ax.xaxis.set_major_locator(MaxNLocator(5))


def _draw_categorical(ax: Axes, hist: dict[str, Any]) -> None:
    labels = [str(label)[:14] for label in hist["labels"]]
    base = share_of_rows(hist["baseline"])
    target = share_of_rows(hist["target"])
    x = np.arange(len(labels))
    ax.bar(x - 0.2, base, width=0.4, color=BASELINE, label="baseline")
    ax.bar(x + 0.2, target, width=0.4, color=TARGET, label="target")
    ax.set_xticks(x, labels, rotation=45 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")


def share_of_rows(counts: Sequence[int]) -> np.ndarray:
    """Counts as shares of their total (all zeros stay zeros)."""
    values = np.asarray(counts, dtype=float)
    total = values.sum()
    return values / total if total else values


# --------------------------------------------------------------------------- the whole report


def distributions(report: DriftReport, features: Sequence[str] | None = None, columns: int = 3) -> Figure:
    """One distribution panel per feature (default: every compared feature, drifted first)."""
    chosen = [f for f in report.features if f.compared] if features is None else [report.feature(n) for n in features]
    fig, axes = _grid(max(len(chosen), 1), columns)
    if not chosen:
        _message(axes[0], "no feature was compared")
    for i, (ax, feature) in enumerate(zip(axes, chosen, strict=False)):
        draw_feature(ax, feature, legend=i == 0)
    fig.tight_layout()
    return fig


def contributions(report: DriftReport) -> Figure:
    """Each feature's share of the drift coefficient, largest on top."""
    items = sorted(report.contributions.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(6.5, max(2.0, 0.32 * len(items) + 1.0)))
    ax = fig.subplots()
    if report.coefficient is None or not items:
        note = "; ".join(report.coefficient_detail.get("notes") or []) or "drift coefficient not computed"
        _message(ax, note)
        ax.set_title("Drift coefficient: not computed", fontsize=10)
    else:
        names = [name for name, _ in items]
        values = [value for _, value in items]
        drifted = set(report.drifted_features)
        colors = [DRIFT if name in drifted else GREY for name in names]
        ax.barh(names, values, color=colors)
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:.1%}", va="center", fontsize=7)
        ax.set_xlim(0, max(values) * 1.2 if max(values) > 0 else 1)
        ax.set_xlabel("contribution (share of permutation importance)", fontsize=8)
        ax.set_title(f"Drift coefficient {report.coefficient:.3f} (red: drifted features)", fontsize=10)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def over_time(report: DriftReport, top: int = 10) -> Figure:
    """Drift per period of the target: share of drifted features, and each feature's statistic.

    The lower panel puts every feature's chosen statistic on one scale, relative to its
    threshold: ``statistic / threshold`` for distances and ``log(p) / log(threshold)`` for
    p-values, so 1 is the threshold and above 1 is drift. It shows the ``top`` features with the
    largest values; the report's table lists every raw value.
    """
    ot = report.over_time
    if ot is None:
        fig = Figure(figsize=(6, 1.6))
        _message(fig.subplots(), "no time column: drift over time not computed")
        return fig
    fig = Figure(figsize=(9, 5.2))
    share_ax, ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2.2]})
    x = np.arange(len(ot.periods))
    share = [np.nan if v is None else v for v in ot.share_drifted]
    share_ax.bar(x, share, color=GREY)
    share_ax.set_ylim(0, 1)
    share_ax.set_ylabel("share drifted", fontsize=8)
    share_ax.set_title(f"Drift per {ot.period} of {ot.time_column}", fontsize=10)
    magnitudes = {name: relative_magnitude(series) for name, series in ot.features.items()}
    ranked = sorted(magnitudes, key=lambda n: -np.nanmax(np.r_[magnitudes[n], 0.0]))[:top]
    for name in ranked:
        shown = np.maximum(magnitudes[name], MAGNITUDE_FLOOR)
        ax.plot(x, shown, marker="o", ms=3, lw=1.2, label=f"{name} ({ot.features[name]['test']})")
    ax.axhline(1.0, color=DRIFT, ls="--", lw=0.9)
    ax.set_yscale("log")
    ax.set_ylim(bottom=MAGNITUDE_FLOOR * 0.8)
    ax.set_ylabel("statistic relative to threshold", fontsize=8)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _period_ticks(ax, x, [s[:10] for s in ot.starts])
    share_ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.08, right=0.74, top=0.93, bottom=0.14, hspace=0.12)
    return fig


def relative_magnitude(series: dict[str, Any]) -> np.ndarray:
    """A feature's per-period statistic relative to its threshold (1 = threshold, above = drift)."""
    values = np.array([np.nan if v is None else v for v in series["values"]], dtype=float)
    threshold = float(series["threshold"])
    if series["test"] in PVALUE_TESTS:
        return np.log(np.maximum(values, P_FLOOR)) / math.log(threshold)
    return np.maximum(values, 1e-6 * threshold) / threshold


def _period_ticks(ax: Axes, x: np.ndarray, labels: list[str]) -> None:
    step = max(1, math.ceil(len(x) / 8))
    ax.set_xticks(x[::step], labels[::step], rotation=30, ha="right")
    ax.tick_params(labelsize=7)


def report_figures(report: DriftReport) -> dict[str, Figure]:
    """Matplotlib versions of the HTML report's panels, by name (``feature:<name>`` for each feature)."""
    figures: dict[str, Figure] = {"contributions": contributions(report)}
    if report.over_time is not None:
        figures["over_time"] = over_time(report)
    for feature in report.features:
        if feature.compared:
            figures[f"feature:{feature.feature}"] = feature_figure(feature, legend=False)
    return figures


# --------------------------------------------------------------------------- helpers


def to_data_uri(fig: Figure, fmt: str = "png", dpi: int = 72) -> str:
    """The figure as a ``data:`` URI (base64 PNG or SVG) for a self-contained page."""
    buffer = io.BytesIO()
    extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}  # fast; the PNGs stay small
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=_metadata(fmt), **extra)
    mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _metadata(fmt: str) -> dict[str, Any]:
    if fmt == "png":
        return {"Software": None}
    if fmt == "svg":
        return {"Date": None}
    return {}


def _grid(count: int, columns: int) -> tuple[Figure, list[Axes]]:
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(PANEL[0] * columns, PANEL[1] * rows))
    axes = fig.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8, color=GREY, transform=ax.transAxes)
    ax.set_axis_off()


def _short(value: float) -> str:
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.2e}"
    return f"{value:.3f}"
