"""The drift report's panels as PNG images drawn directly (see :mod:`helpers.reports.raster`).

The same panels as :mod:`helpers.reports.drift_plots` (which returns matplotlib figures for
notebooks), drawn without matplotlib's figure machinery so a report of many features costs
milliseconds per panel, not tens of them:

* :func:`feature_image` - baseline and target shares on the baseline's bins (numeric; the
  shares below and above the baseline's range are hatched end bars) or per category;
* :func:`contributions_image` - each feature's share of the drift coefficient, largest on top;
* :func:`over_time_image` - the share of drifted features per period of the target, and each
  feature's statistic per period relative to its threshold (log scale, 1 = the threshold).

Each returns a :class:`~helpers.reports.raster.Canvas`; ``canvas.data_uri()`` embeds it in a page
and ``canvas.width`` is its width in CSS pixels.

Example
-------
>>> feature_image(report.feature("temp")).data_uri()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from helpers.reports.drift_plots import (
    BASELINE,
    DRIFT,
    GREY,
    MAGNITUDE_FLOOR,
    TARGET,
    feature_title,
    relative_magnitude,
    share_of_rows,
)
from helpers.reports.raster import INK, MUTED, Canvas, Frame, blend, format_tick, nice_ticks
from helpers.stats.results import DriftReport, FeatureDrift, OverTime

FEATURE_SIZE = (400.0, 215.0)  # CSS pixels of one feature panel
CONTRIBUTIONS_WIDTH = 620.0
ROW_HEIGHT = 20.0  # CSS pixels per feature in the contributions chart
ALPHA = 0.45  # opacity of the overlapping numeric histograms (as in drift_plots)
BASE_FILL, TARGET_FILL = blend(BASELINE, ALPHA), blend(TARGET, ALPHA)
BOTH_FILL = blend(TARGET, ALPHA, BASE_FILL)
BASE_LINE, TARGET_LINE = blend(BASELINE, 0.9), blend(TARGET, 0.9)
OVER_TIME_SIZE = (860.0, 440.0)
LINE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf")  # matplotlib's default colour cycle
LABEL_CHARS = 14  # category labels are cut to this many characters


# --------------------------------------------------------------------------- one feature


def feature_image(feature: FeatureDrift) -> Canvas:
    """One feature's distributions: numeric histograms on the baseline's bins, or category bars."""
    width, height = FEATURE_SIZE
    hist = feature.histogram
    categorical = hist is not None and hist["kind"] != "numeric"
    rotate = categorical and len(hist["labels"]) > 4
    bottom = height - (62 if rotate else 22)
    canvas = Canvas(width, height)
    title_color = DRIFT if feature.drifted else INK
    canvas.text((width / 2, 6), _fit(canvas, feature_title(feature), width - 8, 11), size=11, color=title_color,
                anchor="mt")
    if hist is None:
        note = _fit(canvas, "; ".join(feature.notes) or "not compared", width - 8, 10)
        canvas.text((width / 2, height / 2), note, size=10, color=MUTED, anchor="mm")
        return canvas
    area = (46.0, 28.0, width - 10.0, bottom)
    if categorical:
        _draw_categories(canvas, area, hist, rotate)
    else:
        _draw_numeric(canvas, area, hist)
    return canvas


def _draw_numeric(canvas: Canvas, area: tuple[float, float, float, float], hist: dict[str, Any]) -> None:
    edges = np.asarray(hist["edges"], dtype=float)
    base, target = share_of_rows(hist["baseline"]), share_of_rows(hist["target"])
    step = edges[1] - edges[0] if edges.size > 1 else 1.0
    bars = [(lo, hi, b, t) for lo, hi, b, t in zip(edges[:-1], edges[1:], base[1:-1], target[1:-1], strict=True)]
    ends = [(edges[0] - step, edges[0], base[0], target[0]), (edges[-1], edges[-1] + step, base[-1], target[-1])]
    ends = [end for end in ends if end[2] or end[3]]  # values below / above the baseline's range
    low = min([edges[0], *(end[0] for end in ends)])
    high = max([edges[-1], *(end[1] for end in ends)])
    top = _y_top(base, target)
    frame = Frame(canvas, area, x=(low, high), y=(0.0, top))
    for lo, hi, b, t in bars + ends:
        _overlapping_bar(canvas, frame, lo, hi, b, t)
    for lo, hi, b, t in ends:
        canvas.hatch(frame.box(lo, hi, 0.0, max(b, t)), GREY)
    frame.axes()
    _share_ticks(frame, top)
    ticks = nice_ticks(low, high, 5)
    tick_step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    frame.x_ticks(ticks, [format_tick(v, tick_step) for v in ticks])


def _overlapping_bar(canvas: Canvas, frame: Frame, lo: float, hi: float, base: float, target: float) -> None:
    """Baseline and target bars of one bin drawn at 45% opacity each, where they overlap mixed."""
    taller = BASE_FILL if base >= target else TARGET_FILL
    canvas.rect(frame.box(lo, hi, 0.0, max(base, target)), taller)
    canvas.rect(frame.box(lo, hi, 0.0, min(base, target)), BOTH_FILL)
    left, right = frame.px(lo), frame.px(hi)
    for share, color in ((base, BASE_LINE), (target, TARGET_LINE)):  # the top edges of each histogram
        if share > 0:
            y = frame.py(share)
            canvas.line([(left, y), (right, y)], color, width=0.8)


def _draw_categories(canvas: Canvas, area: tuple[float, float, float, float], hist: dict[str, Any],
                     rotate: bool) -> None:
    labels = [_cut(str(label)) for label in hist["labels"]]
    base, target = share_of_rows(hist["baseline"]), share_of_rows(hist["target"])
    top = _y_top(base, target)
    frame = Frame(canvas, area, x=(-0.6, len(labels) - 0.4), y=(0.0, top))
    for i, (b, t) in enumerate(zip(base, target, strict=True)):
        canvas.rect(frame.box(i - 0.4, i, 0.0, b), BASELINE)
        canvas.rect(frame.box(i, i + 0.4, 0.0, t), TARGET)
    frame.axes()
    _share_ticks(frame, top)
    frame.x_ticks(list(range(len(labels))), labels, size=8.5, angle=45 if rotate else 0)


def _y_top(base: np.ndarray, target: np.ndarray) -> float:
    highest = float(max(base.max(initial=0.0), target.max(initial=0.0)))
    return highest * 1.08 if highest > 0 else 1.0


def _share_ticks(frame: Frame, top: float) -> None:
    ticks = nice_ticks(0.0, top, 3)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = 0 if step >= 0.01 else 1 if step >= 0.001 else 2
    frame.y_ticks(ticks, [f"{v:.{decimals}%}" for v in ticks])


def _cut(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"


def _fit(canvas: Canvas, text: str, width: float, size: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` CSS pixels."""
    if canvas.text_width(text, size) <= width:
        return text
    text = text[: int(width / (0.25 * size))]  # no glyph is narrower than a quarter of the size
    while len(text) > 1 and canvas.text_width(text + "\u2026", size) > width:
        text = text[:-1]
    return text + "\u2026"


# --------------------------------------------------------------------------- the whole report


def contributions_image(report: DriftReport) -> Canvas:
    """Each feature's share of the drift coefficient, largest on top (drifted features in red)."""
    items = sorted(report.contributions.items(), key=lambda kv: -kv[1])
    if report.coefficient is None or not items:
        canvas = Canvas(CONTRIBUTIONS_WIDTH, 70)
        canvas.text((CONTRIBUTIONS_WIDTH / 2, 6), "Drift coefficient: not computed", size=12, anchor="mt")
        note = "; ".join(report.coefficient_detail.get("notes") or []) or "drift coefficient not computed"
        canvas.text((CONTRIBUTIONS_WIDTH / 2, 42), _fit(canvas, note, CONTRIBUTIONS_WIDTH - 10, 10), size=10,
                    color=MUTED, anchor="mm")
        return canvas
    names = [_fit_name(name) for name, _ in items]
    values = [value for _, value in items]
    probe = Canvas(1, 1)
    label_width = min(200.0, max(probe.text_width(name, 10) for name in names) + 12)
    height = 30 + ROW_HEIGHT * len(items) + 40
    canvas = Canvas(CONTRIBUTIONS_WIDTH, height)
    canvas.text((CONTRIBUTIONS_WIDTH / 2, 6), f"Drift coefficient {report.coefficient:.3f} (red: drifted features)",
                size=12, anchor="mt")
    area = (label_width, 30.0, CONTRIBUTIONS_WIDTH - 60, 30 + ROW_HEIGHT * len(items))
    high = max(values) if max(values) > 0 else 1.0
    frame = Frame(canvas, area, x=(0.0, high), y=(0.0, float(len(items))))
    _contribution_bars(canvas, frame, names, values, set(report.drifted_features), [n for n, _ in items])
    frame.axes()
    ticks = nice_ticks(0.0, high, 5)
    frame.x_ticks(ticks, [f"{v:.0%}" if high >= 0.05 else f"{v:.1%}" for v in ticks])
    canvas.text(((area[0] + area[2]) / 2, height - 6), "contribution (share of permutation importance)", size=10,
                color=MUTED, anchor="md")
    return canvas


def _contribution_bars(canvas: Canvas, frame: Frame, labels: Sequence[str], values: Sequence[float],
                       drifted: set[str], names: Sequence[str]) -> None:
    rows = len(values)
    for row, (label, value, name) in enumerate(zip(labels, values, names, strict=True)):
        y_low, y_high = rows - row - 0.85, rows - row - 0.15
        canvas.rect(frame.box(0.0, value, y_low, y_high), DRIFT if name in drifted else GREY)
        middle = frame.py(rows - row - 0.5)
        canvas.text((frame.area[0] - 6, middle), label, size=10, anchor="rm")
        canvas.text((frame.px(value) + 4, middle), f"{value:.1%}", size=9, anchor="lm")


def _fit_name(name: str) -> str:
    return name if len(name) <= 28 else name[:27] + "\u2026"


# --------------------------------------------------------------------------- drift over time


def over_time_image(report: DriftReport, top: int = 10) -> Canvas:
    """Drift per period of the target: the share of drifted features (bars) and, for the ``top``
    features with the largest values, the statistic relative to its threshold (log scale; 1 is
    the threshold, above is drift; see :func:`helpers.reports.drift_plots.relative_magnitude`)."""
    width, height = OVER_TIME_SIZE
    ot = report.over_time
    if ot is None:
        canvas = Canvas(width, 50)
        canvas.text((width / 2, 25), "no time column: drift over time not computed", size=10, color=MUTED, anchor="mm")
        return canvas
    canvas = Canvas(width, height)
    canvas.text((350, 6), f"Drift per {ot.period} of {ot.time_column}", size=12, anchor="mt")
    x_range = (-0.6, len(ot.periods) - 0.4)
    shares = Frame(canvas, (64.0, 30.0, 640.0, 118.0), x=x_range, y=(0.0, 1.0))
    for i, share in enumerate(ot.share_drifted):
        if share is not None:
            canvas.rect(shares.box(i - 0.4, i + 0.4, 0.0, share), GREY)
    shares.axes()
    shares.y_ticks([0.0, 0.5, 1.0], ["0%", "50%", "100%"])
    canvas.text((14, 74), "share drifted", size=9, color=MUTED, anchor="mm", angle=90)
    _magnitudes(canvas, ot, top, x_range)
    return canvas


def _magnitudes(canvas: Canvas, ot: OverTime, top: int, x_range: tuple[float, float]) -> None:
    magnitudes = {name: relative_magnitude(series) for name, series in ot.features.items()}
    ranked = sorted(magnitudes, key=lambda n: -np.nanmax(np.r_[magnitudes[n], 0.0]))[:top]
    highest = max([1.0, *(float(np.nanmax(np.r_[magnitudes[n], 0.0])) for n in ranked)])
    low, high = np.log10(MAGNITUDE_FLOOR * 0.8), np.log10(highest * 1.3)
    frame = Frame(canvas, (64.0, 136.0, 640.0, 370.0), x=x_range, y=(float(low), float(high)))
    threshold = frame.py(0.0)  # log10(1)
    for start in np.arange(frame.area[0], frame.area[2], 8.0):
        canvas.line([(start, threshold), (min(start + 4.5, frame.area[2]), threshold)], DRIFT, width=0.9)
    lines = []
    for index, name in enumerate(ranked):
        color = LINE_COLORS[index % len(LINE_COLORS)]
        shown = np.log10(np.maximum(magnitudes[name], MAGNITUDE_FLOOR))
        lines += [(run, color) for run in _runs(frame, shown)]
        y = 150 + 17 * index  # the legend, right of the plot
        lines.append(([(652.0, y), (672.0, y)], color))
        canvas.text((678, y), _fit(canvas, f"{name} ({ot.features[name]['test']})", canvas.width - 682.0, 9),
                    size=9, anchor="lm")
    canvas.smooth_lines(lines, width=1.3, marker=1.9)
    frame.axes()
    decades = list(range(int(np.ceil(low)), int(np.floor(high)) + 1))
    frame.y_ticks([float(k) for k in decades], [format_tick(10.0**k, 10.0**k) for k in decades])
    canvas.text((14, 253), "statistic relative to threshold", size=9, color=MUTED, anchor="mm", angle=90)
    step = max(1, int(np.ceil(len(ot.periods) / 8)))
    ticks = list(range(0, len(ot.periods), step))
    frame.x_ticks([float(i) for i in ticks], [ot.starts[i][:10] for i in ticks], size=8.5, angle=30)


def _runs(frame: Frame, values: np.ndarray) -> list[list[tuple[float, float]]]:
    """Runs of consecutive finite values as canvas points (a missing period breaks the line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(values):
        if np.isfinite(value):
            runs[-1].append((frame.px(float(i)), frame.py(float(value))))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]

