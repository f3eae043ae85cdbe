"""The drift coefficient on a sample of rows: agreement with every row, what the page says, codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.core.config import DriftParams
from helpers.reports import drift_report
from helpers.stats.coefficient import MAX_CLASSIFIER_CATEGORIES, _design_matrix
from helpers.stats.compare import _prepare, compare, table_coefficient
from helpers.stats.profiling import category_label

ROWS = 40_000  # a side; the default coefficient_sample (20,000) draws 10,000 of them a side
SAMPLE_TOLERANCE = 0.04  # |coefficient on the sample - coefficient on every row|


def _frame(seed: int, n: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mix = [0.3, 0.3, 0.2, 0.2] if shift else [0.4, 0.3, 0.2, 0.1]
    return pd.DataFrame({"x": rng.normal(shift, 1.0, n), "y": rng.exponential(1.0 + shift, n),
                         "z": rng.normal(0.0, 1.0, n), "c": rng.choice(list("pqrs"), n, p=mix)})


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_coefficient_on_a_sample_agrees_with_every_row(shift: float) -> None:
    base, target = _frame(1, ROWS, 0.0), _frame(2, ROWS, shift)
    every_row = table_coefficient(base, target, DriftParams(coefficient_sample=2 * ROWS))
    sample = table_coefficient(base, target, DriftParams())
    assert every_row.rows_per_side == ROWS and sample.rows_per_side == DriftParams().coefficient_sample // 2
    assert sample.value == pytest.approx(every_row.value, abs=SAMPLE_TOLERANCE)
    if shift == 0.0:
        assert sample.value < SAMPLE_TOLERANCE
    else:
        assert max(sample.contributions, key=sample.contributions.get) in ("x", "y", "c")


def test_page_says_how_many_rows_a_side_the_coefficient_saw() -> None:
    base, target = _frame(1, 3000, 0.0), _frame(2, 3000, 1.0)
    sampled = compare(base, target, DriftParams(coefficient_sample=2000))
    assert sampled.coefficient_detail["sample_rows_per_side"] == 1000
    page = drift_report.render_html(sampled)
    assert ("estimated on a sample of 1,000 rows a side: 1,000 of the 2,000 rows fit the classifier, "
            "the other 1,000 score it") in page
    whole = compare(base, target, DriftParams(coefficient_sample=6000))
    assert "estimated on every row: 3,000 of the 6,000 rows fit the classifier, the other 3,000 score it" in (
        drift_report.render_html(whole))
    off = compare(base, target, DriftParams(coefficient_sample=0))
    assert "estimated on" not in drift_report.render_html(off)


def test_design_matrix_codes_follow_the_category_labels() -> None:
    base = pd.DataFrame({"x": [1.5, np.inf, np.nan, 4.0], "n": pd.array([1, None, 3, 1], dtype="Int64"),
                         "c": ["b", None, "a", "b"], "k": pd.Categorical(["u", "v", "u", None])})
    target = pd.DataFrame({"x": [5.0, 6.0, 7.0, 8.0], "n": pd.array([3, 3, None, 2], dtype="Int64"),
                           "c": ["a", "new", "b", None], "k": pd.Categorical(["v", "v", None, "u"])})
    params = DriftParams(column_types={"n": "numeric"})
    _, prepared, _ = _prepare(base, target, params, None, None)
    rows = np.arange(4)
    x, categorical = _design_matrix(prepared, rows, rows)
    names = [p.name for p in prepared]
    assert categorical.tolist() == [p.ctype == "categorical" for p in prepared]
    for j, prep in enumerate(prepared):
        column = pd.concat([base[prep.name], target[prep.name]], ignore_index=True)
        if prep.ctype == "numeric":
            expected = pd.to_numeric(column).astype(float).replace([np.inf, -np.inf], np.nan).to_numpy()
        else:
            codes = {label: float(min(i, MAX_CLASSIFIER_CATEGORIES)) for i, label in enumerate(prep.labels)}
            expected = np.array([np.nan if pd.isna(v) else codes[category_label(v)] for v in column])
        np.testing.assert_array_equal(x[:, j], expected, err_msg=names[j])
