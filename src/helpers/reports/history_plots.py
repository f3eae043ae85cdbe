"""Matplotlib figures of the monitoring history: drift and performance per window over time.

Every function takes the history records of one model (dicts written by
:mod:`helpers.monitoring.history`, oldest first) and returns a :class:`matplotlib.figure.Figure`
made without pyplot. Windows are placed at their start time; a window with too few captured
rows has no statistics and is drawn as a grey cross on the time axis.

* :func:`coefficient_figure` - the drift coefficient with ``drift.coefficient_threshold``;
* :func:`share_figure` - the share of drifted features with ``drift.drift_share``;
* :func:`feature_heatmap` - each feature's statistic relative to its threshold (1 = threshold);
* :func:`prediction_figure` - the prediction drift statistic with its threshold;
* :func:`performance_figure` - the estimated metric with its band, the realized metric, the
  champion's test value and the ``monitor.max_degradation`` limit; a canary's estimated and
  realized metric (history ``canary``) as series of their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from helpers.reports.drift_plots import BASELINE, DRIFT, GREY, OK, TARGET, relative_magnitude
from helpers.stats.results import PVALUE_TESTS

WIDE = (9.0, 2.8)  # inches of a timeline
CANARY = "#7b3294"  # the canary's series (purple)
HEAT_LIMIT = 2.0  # the heat map's colours span 10**-2 .. 10**2 times the threshold


def history_figures(records: Sequence[dict[str, Any]]) -> dict[str, Figure]:
    """Every figure of the dashboard for one model's records, by name."""
    return {"coefficient": coefficient_figure(records), "share": share_figure(records),
            "features": feature_heatmap(records), "prediction": prediction_figure(records),
            "performance": performance_figure(records)}


# --------------------------------------------------------------------------- timelines


def coefficient_figure(records: Sequence[dict[str, Any]]) -> Figure:
    """The drift coefficient per window, with its threshold; red points reach it."""
    values = _values(records, lambda r: r["drift"].get("coefficient"))
    thresholds = _values(records, lambda r: r["drift"].get("coefficient_threshold"))
    return _timeline(records, values, thresholds, "drift coefficient", "Drift coefficient per window",
                     ylim=(0.0, 1.02), empty="drift coefficient not computed in any window")


def share_figure(records: Sequence[dict[str, Any]]) -> Figure:
    """The share of drifted features per window, with ``drift.drift_share``."""
    values = _values(records, lambda r: r["drift"].get("share_drifted"))
    thresholds = _values(records, lambda r: r["drift"].get("drift_share"))
    return _timeline(records, values, thresholds, "share of drifted features",
                     "Share of drifted features per window", ylim=(0.0, 1.02), bars=True)


def prediction_figure(records: Sequence[dict[str, Any]]) -> Figure:
    """The prediction drift statistic per window with its threshold (a log axis for p-values)."""
    values = _values(records, lambda r: (r.get("prediction_drift") or {}).get("statistic"))
    thresholds = _values(records, lambda r: (r.get("prediction_drift") or {}).get("threshold"))
    tests = {(r.get("prediction_drift") or {}).get("test") for r in records} - {None}
    label = f"prediction drift ({', '.join(sorted(tests))})" if tests else "prediction drift"
    fig = _timeline(records, values, thresholds, label, "Prediction drift per window",
                    empty="no prediction drift in any window", above_is_drift=not tests <= PVALUE_TESTS)
    if tests and tests <= PVALUE_TESTS and np.isfinite(values).any():
        fig.axes[0].set_yscale("log")
    return fig


def _timeline(records: Sequence[dict[str, Any]], values: np.ndarray, thresholds: np.ndarray, ylabel: str,
              title: str, *, ylim: tuple[float, float] | None = None, bars: bool = False, empty: str = "",
              above_is_drift: bool = True) -> Figure:
    fig = Figure(figsize=WIDE)
    ax = fig.subplots()
    x, width = _starts(records), _widths(records)
    if not np.isfinite(values).any():
        _message(ax, empty or f"no {ylabel} in any window")
        ax.set_title(title, fontsize=10)
        return fig
    hit = values >= thresholds if above_is_drift else values <= thresholds
    colors = [DRIFT if h else OK for h in hit]
    if bars:
        ax.bar(x, np.nan_to_num(values), width=width * 0.9, align="edge", color=colors)
    else:
        ax.plot(x, values, color=GREY, lw=1)
        ax.scatter(x, values, c=colors, s=18, zorder=3)
    ax.step(x, thresholds, where="post", color=DRIFT, ls="--", lw=1, label="threshold")
    _mark_empty(ax, records, x)
    if ylim:
        ax.set_ylim(*ylim)
    _finish(ax, ylabel, title)
    return fig


# --------------------------------------------------------------------------- features


def feature_heatmap(records: Sequence[dict[str, Any]], top: int = 30) -> Figure:
    """Each feature's statistic relative to its threshold per window, as a heat map: the colour is
    ``log10(statistic / threshold)`` (``log(p) / log(threshold)`` for p-value tests), red above
    the threshold, blue below; a dot marks a drifted cell. The ``top`` most drifted features."""
    names = list(dict.fromkeys(name for r in records for name in r.get("features") or {}))
    if not names:
        fig = Figure(figsize=(WIDE[0], 1.8))
        _message(fig.subplots(), "no feature compared in any window")
        return fig
    grid = np.full((len(names), len(records)), np.nan)
    drifted = np.zeros_like(grid, dtype=bool)
    for j, record in enumerate(records):
        for i, name in enumerate(names):
            grid[i, j], drifted[i, j] = _relative(record.get("features", {}).get(name))
    order = sorted(range(len(names)), key=lambda i: -np.nanmax(np.r_[grid[i], -np.inf]))[:top]
    grid, drifted, names = grid[order], drifted[order], [names[i] for i in order]
    fig = Figure(figsize=(WIDE[0], max(2.2, 0.28 * len(names) + 1.4)))
    ax = fig.subplots()
    shown = np.log10(np.maximum(grid, 10.0 ** -HEAT_LIMIT))  # NaN (not compared) stays blank
    image = ax.imshow(shown, aspect="auto", cmap="coolwarm", vmin=-HEAT_LIMIT, vmax=HEAT_LIMIT,
                      interpolation="nearest")
    rows, cols = np.nonzero(drifted)
    ax.scatter(cols, rows, s=8, c="black", marker="o", label="drifted")
    ax.set_yticks(range(len(names)), names)
    labels = [_label(r) for r in records]
    step = max(1, math.ceil(len(labels) / 12))
    ax.set_xticks(range(len(labels))[::step], labels[::step], rotation=30, ha="right")
    ax.tick_params(labelsize=7)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("log10(statistic / threshold); > 0 drift", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    ax.set_title("Each feature's drift statistic per window (relative to its threshold)", fontsize=10)
    fig.tight_layout()
    return fig


def _relative(feature: dict[str, Any] | None) -> tuple[float, bool]:
    """A feature's statistic relative to its threshold (NaN when missing), and its decision."""
    if not feature or feature.get("statistic") is None or not feature.get("threshold"):
        return math.nan, False
    series = {"values": [feature["statistic"]], "threshold": feature["threshold"], "test": feature.get("test")}
    return float(relative_magnitude(series)[0]), bool(feature.get("drifted"))


# --------------------------------------------------------------------------- performance


def performance_figure(records: Sequence[dict[str, Any]]) -> Figure:
    """The judged metric per window: estimate with its band, realized value, the champion's test
    value and the ``monitor.max_degradation`` limit."""
    fig = Figure(figsize=WIDE)
    ax = fig.subplots()
    perf = [r.get("performance") or {} for r in records]
    metric = next((p.get("metric") for p in reversed(perf) if p.get("metric")), "metric")
    est = {k: _values(perf, lambda p, k=k: ((p.get("estimated") or {}).get(metric) or {}).get(k))
           for k in ("value", "lower", "upper")}
    realized = _values(perf, lambda p: ((p.get("realized") or {}).get(metric) or {}).get("value"))
    canary = [r.get("canary") or {} for r in records]
    canary_series = {kind: _values(canary, lambda c, kind=kind: ((c.get(kind) or {}).get(metric) or {}).get("value"))
                     for kind in ("realized", "estimated")}
    title = f"{metric}: estimated and realized per window"
    if not any(np.isfinite(v).any() for v in (est["value"], realized, *canary_series.values())):
        _message(ax, f"no estimated or realized {metric} in any window")
        ax.set_title(title, fontsize=10)
        return fig
    x = _starts(records)
    if np.isfinite(est["lower"]).any():
        ax.fill_between(x, est["lower"], est["upper"], color=BASELINE, alpha=0.2, step=None, label="estimate band")
    if np.isfinite(est["value"]).any():
        ax.plot(x, est["value"], color=BASELINE, marker="o", ms=3, lw=1.2, label="estimated")
    if np.isfinite(realized).any():
        ax.plot(x, realized, color=TARGET, marker="s", ms=4, lw=0, label="realized")
    _canary_series(ax, x, canary_series)
    reference, limit = _values(perf, lambda p: p.get("reference")), _values(perf, lambda p: p.get("limit"))
    if np.isfinite(reference).any():
        ax.step(x, reference, where="post", color=GREY, ls=":", lw=1, label="champion's test value")
    if np.isfinite(limit).any():
        ax.step(x, limit, where="post", color=DRIFT, ls="--", lw=1, label="max_degradation limit")
    _finish(ax, metric, title)
    return fig


def _canary_series(ax: Axes, x: list[Any], series: dict[str, np.ndarray]) -> None:
    """The canary's realized and estimated metric, drawn apart from the champion's."""
    if np.isfinite(series["estimated"]).any():
        ax.plot(x, series["estimated"], color=CANARY, marker="o", ms=3, lw=1, ls="--", label="canary estimated")
    if np.isfinite(series["realized"]).any():
        ax.plot(x, series["realized"], color=CANARY, marker="^", ms=5, lw=0, label="canary realized")


# --------------------------------------------------------------------------- helpers


def _values(items: Sequence[Any], get: Any) -> np.ndarray:
    """``get(item)`` of every item as floats (NaN where missing or unreadable)."""
    out = []
    for item in items:
        try:
            value = get(item)
            out.append(math.nan if value is None else float(value))
        except (KeyError, TypeError, ValueError, AttributeError):
            out.append(math.nan)
    return np.array(out, dtype=float)


def _starts(records: Sequence[dict[str, Any]]) -> list[Any]:
    return [_stamp(r, "start").tz_convert(None).to_pydatetime() for r in records]


def _widths(records: Sequence[dict[str, Any]]) -> np.ndarray:
    """Window lengths in days (matplotlib's date unit)."""
    return np.array([(_stamp(r, "end") - _stamp(r, "start")) / pd.Timedelta(days=1) for r in records])


def _stamp(record: dict[str, Any], side: str) -> pd.Timestamp:
    stamp = pd.Timestamp(record["window"][side])
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def _label(record: dict[str, Any]) -> str:
    start = _stamp(record, "start")
    return f"{start:%Y-%m-%d %H:%M}" if (start.hour or start.minute) else f"{start:%Y-%m-%d}"


def _mark_empty(ax: Axes, records: Sequence[dict[str, Any]], x: list[Any]) -> None:
    empty = [xi for xi, r in zip(x, records, strict=True) if r.get("status") == "too few rows"]
    if empty:
        ax.scatter(empty, [0.0] * len(empty), marker="x", color=GREY, s=20, zorder=3, label="too few rows",
                   clip_on=False, transform=ax.get_xaxis_transform())  # on the time axis, any y scale


def _finish(ax: Axes, ylabel: str, title: str) -> None:
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    locator = AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.figure.subplots_adjust(left=0.08, right=0.8, top=0.88, bottom=0.22)


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8, color=GREY, transform=ax.transAxes)
    ax.set_axis_off()
