"""Drift over time: each compared feature's chosen statistic per period of the target."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.config import DriftParams
from helpers.core.errors import DataError, ParamsError
from helpers.stats.per_feature import Prepared
from helpers.stats.profile import CategoricalProfile
from helpers.stats.profiling import category_counts, numeric_array, split_finite
from helpers.stats.results import PVALUE_TESTS, TEST_METRIC, FeatureDrift, OverTime
from helpers.stats.statistics import adjust_pvalues, categorical_metrics, numeric_metrics


def drift_over_time(
    prepared: Sequence[Prepared],
    results: Sequence[FeatureDrift],
    target: pd.DataFrame,
    time_column: str,
    params: DriftParams,
) -> OverTime:
    """The chosen statistic of each compared feature per period of the target."""
    periods = _periods(target, time_column, params.period)
    by_name = {r.feature: r for r in results}
    groups = [(p, idx) for p, idx in periods.groupby(periods, sort=True).indices.items()]
    features: dict[str, dict[str, Any]] = {}
    for prep in prepared:
        r = by_name[prep.name]
        values = [_period_statistic(prep, r.test or "", idx) for _, idx in groups]
        features[prep.name] = {"test": r.test, "threshold": r.threshold, "rule": r.rule, "values": values}
    _decide_periods(features, len(groups), params.correction)
    share = []
    for i in range(len(groups)):
        flags = [f["drifted"][i] for f in features.values() if f["values"][i] is not None]
        share.append(sum(flags) / len(flags) if flags else None)
    return OverTime(
        time_column=time_column,
        period=params.period,
        periods=[str(p) for p, _ in groups],
        starts=[p.start_time.isoformat() for p, _ in groups],
        rows=[int(idx.size) for _, idx in groups],
        features=features,
        share_drifted=share,
    )


def _periods(target: pd.DataFrame, time_column: str, period: str) -> pd.Series:
    times = target[time_column]
    if not pd.api.types.is_datetime64_any_dtype(times.dtype):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(times, errors="coerce", format="mixed")
        if parsed.isna().sum() > times.isna().sum():
            raise DataError(f"time column {time_column!r}: values are not dates or times")
        times = parsed
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_localize(None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return times.dt.to_period(period)
    except (ValueError, TypeError):
        raise ParamsError(f"drift.period: {period!r} is not a pandas period alias; use D, W or M") from None


def _period_statistic(prep: Prepared, test: str, idx: np.ndarray) -> float | None:
    series = prep.target_series.iloc[idx]
    if prep.ctype == "numeric" and prep.numeric_base is not None:
        finite, missing, infinite = split_finite(numeric_array(series))
        if finite.size == 0:
            return None
        return numeric_metrics(prep.numeric_base, np.sort(finite), missing, infinite)["metrics"][TEST_METRIC[test]]
    assert prep.categorical_base is not None
    counts, missing = category_counts(series)
    if not counts:
        return None
    return categorical_metrics(prep.categorical_base, CategoricalProfile(counts, missing))[TEST_METRIC[test]]


def _decide_periods(features: dict[str, dict[str, Any]], n_periods: int, correction: str) -> None:
    for f in features.values():
        f["drifted"] = [False] * n_periods
    for i in range(n_periods):
        tested = [f for f in features.values() if f["values"][i] is not None and f["test"] in PVALUE_TESTS]
        adjusted = adjust_pvalues([f["values"][i] for f in tested], correction)
        for f, p in zip(tested, adjusted, strict=True):
            f["values"][i] = p
        for f in features.values():
            v = f["values"][i]
            if v is not None:
                f["drifted"][i] = v < f["threshold"] if f["test"] in PVALUE_TESTS else v >= f["threshold"]
