"""Investigate step tables and data checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.core.config import load_params
from helpers.modeling import investigate
from helpers.modeling.data import check_params_against_data


def _data(params_file):
    params = load_params(params_file)
    return params, check_params_against_data(params)


def test_embedded_data_passes_every_check(params_file) -> None:
    params, frame = _data(params_file)
    checks = investigate.validation_checks(frame, params)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert set(investigate.checks_table(checks)["result"]) == {"PASS"}


def test_checks_catch_missing_values_bad_ranges_and_negative_targets(params_file) -> None:
    params, frame = _data(params_file)
    frame = frame.copy()
    frame.loc[:9, "temp"] = np.nan
    frame.loc[10, "hum"] = 1.7
    frame.loc[11, "bikers"] = -1
    failed = {(c.check, c.column) for c in investigate.validation_checks(frame, params) if not c.passed}
    assert failed == {("missing values", "temp"), ("value range", "hum"), ("target minimum", "bikers")}
    summary = investigate.summary(frame, params, investigate.validation_checks(frame, params))
    assert summary["validation_passed"] is False and len(summary["failed_checks"]) == 3


def test_schema_marks_roles_and_summaries_match_pandas(params_file) -> None:
    params, frame = _data(params_file)
    table = investigate.schema(frame, params).set_index("column")
    assert table.loc["bikers", "role"] == "target"
    assert table.loc["casual", "role"].startswith("forbidden")
    assert table.loc["temp", "role"] == "feature"
    target = investigate.target_summary(frame, params)
    assert target["mean"] == frame["bikers"].mean() and target["max"] == frame["bikers"].max()
    coverage = investigate.time_coverage(frame)
    assert coverage["rows"].sum() == len(frame) and len(coverage) == 12
    cats = investigate.categorical_summary(frame).set_index("column")
    assert cats.loc["weathersit", "distinct"] == frame["weathersit"].nunique()
    assert isinstance(investigate.correlations(frame, params), pd.DataFrame)
