"""The drift report's directly drawn panels: valid PNGs whose bars are as tall as the shares."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.ticker import MaxNLocator
from PIL import Image

from helpers.core.config import DriftParams
from helpers.reports import drift_images, drift_plots, drift_report, raster
from helpers.reports.drift_images import BASE_FILL, BOTH_FILL, TARGET_FILL
from helpers.reports.drift_plots import BASELINE, DRIFT, GREY, TARGET
from helpers.reports.raster import SCALE, Canvas, Frame
from helpers.stats.compare import compare
from helpers.stats.results import DriftReport, FeatureDrift
from support import require_tool

WHITE = (255, 255, 255)


def _frames(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two numeric and one categorical column; ``a`` and ``c`` drift, ``b`` does not."""
    rng = np.random.default_rng(0)
    levels = np.array([f"L{j}" for j in range(6)])
    base = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(0, 1, n), "c": rng.choice(levels, n)})
    target = pd.DataFrame({"a": rng.normal(1, 1, n), "b": rng.normal(0, 1, n),
                           "c": rng.choice(levels, n, p=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1])})
    target["when"] = pd.date_range("2022-01-03", periods=n, freq="h")
    return base, target


def _pixels(canvas: Canvas) -> np.ndarray:
    """The canvas decoded from its PNG bytes, as an RGB array."""
    image = Image.open(io.BytesIO(canvas.png()))
    assert image.format == "PNG"
    assert image.size == (round(canvas.width * SCALE), round(canvas.height * SCALE))
    return np.asarray(image.convert("RGB"))


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color.lstrip("#")[i: i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def _run_height(column: np.ndarray, top: int, bottom: int) -> int:
    """How many pixels of ``column[top:bottom]`` are not white."""
    return int((column[top:bottom] != WHITE).any(axis=1).sum())


def _numeric_feature() -> FeatureDrift:
    return FeatureDrift(
        feature="x", type="numeric", compared=True, test="psi", statistic=0.31, threshold=0.2, drifted=True,
        histogram={"kind": "numeric", "edges": [0.0, 1.0, 2.0, 3.0, 4.0],
                   "baseline": [0, 10, 20, 40, 30, 0], "target": [5, 10, 10, 10, 10, 5]},
    )


# --------------------------------------------------------------------------- helpers


def test_blend_and_ticks_follow_matplotlib() -> None:
    assert raster.blend("#ff0000", 0.5) == "#ff8080"
    assert raster.blend("#000000", 1.0, "#123456") == "#000000"
    assert BOTH_FILL == raster.blend(TARGET, 0.45, raster.blend(BASELINE, 0.45))
    assert raster.nice_ticks(0.0, 0.43, 3) == [float(v) for v in MaxNLocator(3).tick_values(0, 0.43) if v <= 0.43]
    assert raster.nice_ticks(2.0, 2.0) == [2.0]
    assert [raster.format_tick(v, 2.5) for v in (0.0, 2.5, 10.0)] == ["0", "2.5", "10.0"]
    assert [raster.format_tick(v, 2.0) for v in (2.0, 4.0)] == ["2", "4"]
    assert raster.format_tick(2e6, 1e6) == "2e+06"


def test_frame_maps_data_to_pixels() -> None:
    canvas = Canvas(200, 100)
    frame = Frame(canvas, (20, 10, 180, 90), x=(0.0, 4.0), y=(0.0, 2.0))
    assert (frame.px(0.0), frame.px(4.0), frame.px(1.0)) == (20.0, 180.0, 60.0)
    assert (frame.py(0.0), frame.py(2.0), frame.py(0.5)) == (90.0, 10.0, 70.0)
    assert frame.box(1.0, 2.0, 0.0, 1.0) == (60.0, 50.0, 100.0, 90.0)
    assert canvas.frames == [frame]


def test_turned_text_is_drawn_around_its_anchor() -> None:
    canvas = Canvas(120, 120)
    canvas.text((60, 60), "level_10", size=10, anchor="rm", angle=45)
    ys, xs = np.nonzero((_pixels(canvas) != WHITE).any(axis=2))
    assert xs.size > 20
    # ending at the anchor and turned 45 degrees: the text runs down-left of (60, 60)
    assert xs.max() <= 65 * SCALE and ys.min() >= 55 * SCALE
    assert xs.min() < 45 * SCALE and ys.max() > 70 * SCALE


# --------------------------------------------------------------------------- feature panels


def test_numeric_bars_are_as_tall_as_the_shares() -> None:
    feature = _numeric_feature()
    canvas = drift_images.feature_image(feature)
    pixels = _pixels(canvas)
    frame = canvas.frames[0]
    top, bottom = round(frame.area[1] * SCALE), round(frame.area[3] * SCALE)
    span = (frame.area[3] - frame.area[1]) * SCALE / frame.y_range[1]
    base = np.array([0, 10, 20, 40, 30, 0]) / 100
    target = np.array([5, 10, 10, 10, 10, 5]) / 50
    centres = [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5]  # the two hatched end bars lie one bin outside the edges
    for centre, b, t in zip(centres, base, target, strict=True):
        column = pixels[:, round(frame.px(centre) * SCALE)]
        assert _run_height(column, top, bottom - 1) == pytest.approx(max(b, t) * span, abs=2.5)
    # where both sides reach, the bar is the mixed colour; above it, the taller side's colour
    column = pixels[:, round(frame.px(2.5) * SCALE)]  # baseline 40% over target 20%
    assert tuple(column[bottom - 4]) == _rgb(BOTH_FILL)
    assert tuple(column[round(bottom - 0.3 * span)]) == _rgb(BASE_FILL)
    column = pixels[:, round(frame.px(0.5) * SCALE)]  # target 20% over baseline 10%
    assert tuple(column[round(bottom - 0.15 * span)]) == _rgb(TARGET_FILL)
    # the end bars (values outside the baseline's range) are hatched
    left_end = pixels[top:bottom - 2, round(frame.px(-0.9) * SCALE): round(frame.px(-0.1) * SCALE)]
    assert (left_end == _rgb(GREY)).all(axis=2).any()
    assert (pixels[: top - 2] == _rgb(DRIFT)).all(axis=2).any(), "a drifted feature's title is red"


def test_category_bars_are_as_tall_as_the_shares() -> None:
    labels = [f"level_{i}" for i in range(6)]
    base, target = [10, 20, 30, 40, 0, 0], [25, 25, 0, 25, 25, 0]
    feature = FeatureDrift(feature="c", type="categorical", compared=True, test="chisquare", statistic=0.5,
                           threshold=0.05, drifted=False,
                           histogram={"kind": "categorical", "labels": labels, "baseline": base, "target": target})
    canvas = drift_images.feature_image(feature)
    pixels = _pixels(canvas)
    frame = canvas.frames[0]
    bottom = round(frame.area[3] * SCALE)
    span = (frame.area[3] - frame.area[1]) * SCALE / frame.y_range[1]
    for i, (b, t) in enumerate(zip(base, target, strict=True)):
        for offset, count, color in ((-0.2, b, BASELINE), (0.2, t, TARGET)):
            column = pixels[: bottom + 1, round(frame.px(i + offset) * SCALE)]
            painted = int((column == _rgb(color)).all(axis=1).sum())
            assert painted == pytest.approx(count / 100 * span, abs=2.5)
    assert not (pixels == _rgb(DRIFT)).all(axis=2).any(), "no red on a feature without drift"


def test_a_feature_without_a_histogram_says_why() -> None:
    canvas = drift_images.feature_image(FeatureDrift(feature="b", type="mismatch", notes=["type mismatch"]))
    assert canvas.frames == []
    assert (_pixels(canvas) != WHITE).any()


# --------------------------------------------------------------------------- contributions


def test_contribution_bars_are_as_long_as_the_shares_and_red_when_drifted(report: DriftReport) -> None:
    canvas = drift_images.contributions_image(report)
    pixels = _pixels(canvas)
    frame = canvas.frames[0]
    ordered = sorted(report.contributions.items(), key=lambda kv: -kv[1])
    scale = (frame.area[2] - frame.area[0]) * SCALE / frame.x_range[1]
    rows = len(ordered)
    for row, (name, value) in enumerate(ordered):
        y = round(frame.py(rows - row - 0.5) * SCALE)
        color = DRIFT if name in report.drifted_features else GREY
        painted = int((pixels[y] == _rgb(color)).all(axis=1).sum())
        assert painted == pytest.approx(value * scale, abs=2.5)
    off = compare(*_frames(100), DriftParams(coefficient_sample=0), time_column="when")
    assert drift_images.contributions_image(off).frames == []


@pytest.fixture(scope="module")
def report() -> DriftReport:
    base, target = _frames(n=800)
    return compare(base, target, DriftParams(coefficient_sample=800), time_column="when")


# --------------------------------------------------------------------------- drift over time


def test_smooth_lines_cover_their_width_and_blend_their_edges() -> None:
    canvas = Canvas(60, 20)
    canvas.smooth_lines([([(5.0, 10.0), (55.0, 10.0)], "#1f77b4")], width=2.0)
    pixels = _pixels(canvas).astype(int)
    column = pixels[:, round(30 * SCALE)]
    assert tuple(column[round(10 * SCALE)]) == _rgb("#1f77b4")  # fully covered: the exact colour
    edges = [row for row in column if tuple(row) not in (WHITE, _rgb("#1f77b4"))]
    assert edges and all(_rgb("#1f77b4")[0] <= row[0] <= 255 for row in edges)  # mixed with the white
    assert (pixels[: round(7 * SCALE)] == 255).all() and (pixels[round(13 * SCALE):] == 255).all()


def test_over_time_points_sit_at_their_values_relative_to_the_threshold(report: DriftReport) -> None:
    canvas = drift_images.over_time_image(report)
    pixels = _pixels(canvas).astype(int)
    shares, magnitudes = canvas.frames
    for i, share in enumerate(report.over_time.share_drifted):
        column = pixels[:, round(shares.px(i) * SCALE)]
        painted = int((column == _rgb(GREY)).all(axis=1).sum())
        assert painted == pytest.approx((share or 0.0) * (shares.area[3] - shares.area[1]) * SCALE, abs=2.5)
    series = report.over_time.features["a"]  # drifts in every period: drawn first, in the first colour
    for i, value in enumerate(drift_plots.relative_magnitude(series)):
        x, y = round(magnitudes.px(i) * SCALE), round(magnitudes.py(np.log10(value)) * SCALE)
        assert np.abs(pixels[y, x] - _rgb(drift_images.LINE_COLORS[0])).max() <= 40
    threshold = round(magnitudes.py(0.0) * SCALE)
    red = (pixels[threshold - 1: threshold + 2] == _rgb(DRIFT)).all(axis=2).any(axis=0)
    assert red.sum() > 100, "the dashed threshold line"
    plain = compare(*_frames(100), DriftParams(coefficient_sample=0))
    assert drift_images.over_time_image(plain).frames == []


# --------------------------------------------------------------------------- the page


def test_page_embeds_every_panel_as_a_png_at_its_css_width(report: DriftReport) -> None:
    page = drift_report.render_html(report)
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"(?: width="(\d+)")?>', page)
    assert len(images) == report.n_compared + 2
    canvases = drift_report.report_canvases(report)
    for _alt, data, width in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.format == "PNG"
        assert int(width) * SCALE == pytest.approx(image.width, abs=1)
    names = ["contributions", "over_time", *(f"feature:{f.feature}" for f in report.features)]
    assert sorted(canvases) == sorted(names)


@pytest.mark.slow
def test_panels_show_in_headless_chromium(report: DriftReport, tmp_path: Path) -> None:
    binary = require_tool("chromium", "chromium-browser")
    page = drift_report.write_html(report, tmp_path / "drift.html")
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--force-device-scale-factor=1.5",
             f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]
    subprocess.run([binary, *flags, "--window-size=1200,4000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    for color in (BOTH_FILL, BASELINE, TARGET, DRIFT):  # overlapping histograms, category bars, red bars
        close = (np.abs(pixels - np.array(_rgb(color))) <= 6).all(axis=2)
        assert close.sum() > 200, f"no {color} pixels: the panels did not show"
