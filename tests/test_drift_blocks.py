"""The drift engine's fast paths give the same numbers: ECDF walk in blocks, squared deviations in
blocks, float columns without copies, and PNG images encoded with numpy and zlib."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from helpers.reports.raster import Canvas, png_bytes
from helpers.stats.profiling import numeric_array, split_finite, squared_deviations
from helpers.stats.statistics import ECDF_BLOCK, ecdf_distances


@pytest.mark.parametrize("ties", [False, True])
def test_ecdf_distances_across_blocks_equal_scipy(ties: bool) -> None:
    rng = np.random.default_rng(3)
    n, m = ECDF_BLOCK + 1234, 2 * ECDF_BLOCK + 7  # several blocks, none of them full at the end
    a, b = rng.normal(0.0, 1.0, n), rng.normal(0.2, 1.3, m)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    a, b = np.sort(a), np.sort(b)
    ks, wasserstein, energy = ecdf_distances(a, b)
    assert ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)
    assert wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)
    assert energy == pytest.approx(stats.energy_distance(a, b), rel=1e-12)


def test_ecdf_distances_with_a_tie_on_a_block_edge() -> None:
    a = np.sort(np.r_[np.zeros(ECDF_BLOCK - 1), np.ones(10)])
    b = np.sort(np.r_[np.zeros(5), np.ones(ECDF_BLOCK)])
    ks, wasserstein, energy = ecdf_distances(a, b)
    assert ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)
    assert wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)
    assert energy == pytest.approx(stats.energy_distance(a, b), rel=1e-12)


@pytest.mark.parametrize("size", [1, 1000, 3 * 65_536 + 5])
def test_squared_deviations_equal_numpy(size: int) -> None:
    values = np.random.default_rng(size).normal(1e3, 2.0, size)
    mean = float(values.mean())
    assert squared_deviations(values, mean) == pytest.approx(float(((values - mean) ** 2).sum()), rel=1e-12)


def test_float_columns_are_read_without_copies_and_never_written() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf, 2.0], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    values = numeric_array(frame["y"])
    assert not values.flags.writeable and np.shares_memory(values, frame["y"].to_numpy())
    finite, missing, infinite = split_finite(values)
    assert finite is values and (missing, infinite) == (0, 0)
    finite, missing, infinite = split_finite(numeric_array(frame["x"]))
    assert finite.tolist() == [1.0, 2.0] and (missing, infinite) == (1, 2)
    assert numeric_array(pd.Series([1, None], dtype="Int64")).tolist()[0] == 1.0


def test_png_bytes_decode_to_the_canvas_pixels() -> None:
    canvas = Canvas(120, 80)
    canvas.rect((10, 10, 60, 70), "#1f77b4")
    canvas.text((20, 20), "drift", size=11, angle=45)
    canvas.smooth_lines([([(0.0, 0.0), (120.0, 80.0)], "#d62728")])
    decoded = Image.open(io.BytesIO(png_bytes(canvas.image)))
    assert decoded.format == "PNG" and decoded.mode == "RGB" and decoded.size == canvas.image.size
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(canvas.image))
    assert canvas.data_uri().startswith("data:image/png;base64,iVBORw0KGgo")
