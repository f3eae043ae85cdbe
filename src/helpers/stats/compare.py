"""The drift engine's entry points: compare two tables, or two profiles, into a DriftReport.

:func:`compare` compares a baseline table with a target table and returns a
:class:`~helpers.stats.results.DriftReport`. For every feature it states the test, the statistic,
the threshold and the decision, and it keeps every other statistic next to them
(:mod:`helpers.stats.statistics`): mean, std, min, max, missing and infinite counts per side for
numeric features; distinct counts, categories new in the target and gone from it for categorical
ones. Columns are typed by :mod:`helpers.stats.column_types`, tests chosen by
:mod:`helpers.stats.selection`.

Dataset level: the drift coefficient (:mod:`helpers.stats.coefficient`), estimated on a seeded
sample of ``coefficient_sample / 2`` rows a side and fitted in a background thread while the
numeric features are sorted. The data set drifts when the share of drifted features reaches
``drift_share`` or the coefficient reaches ``coefficient_threshold``.

Data too big to hold goes through profiles (:mod:`helpers.stats.profiling`):
:func:`compare_profiles` gives the same report from a baseline profile and a target profile
merged from partitions.

Example
-------
>>> import numpy as np, pandas as pd
>>> from helpers.core.config import DriftParams
>>> rng = np.random.default_rng(0)
>>> base = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(list("abc"), 2000)})
>>> target = pd.DataFrame({"x": rng.normal(1.0, size=2000), "c": rng.choice(list("abc"), 2000)})
>>> report = compare(base, target, DriftParams(coefficient_sample=0))
>>> [(f.feature, f.test, f.drifted) for f in report.features]
[('x', 'wasserstein', True), ('c', 'jensenshannon', False)]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from helpers.core.config import DriftParams
from helpers.core.errors import DataError
from helpers.stats.coefficient import IMPORTANCE_REPEATS, IMPORTANCE_ROWS, Coefficient, drift_coefficient
from helpers.stats.column_types import infer_column_types
from helpers.stats.over_time import drift_over_time
from helpers.stats.per_feature import Prepared, compare_profile_feature, finish_feature, start_feature
from helpers.stats.profile import FrameProfile
from helpers.stats.results import DriftReport, FeatureDrift, OverTime, json_safe
from helpers.stats.selection import decide

MAX_THREADS = 4  # threads comparing features of big tables
PARALLEL_MIN_ROWS = 200_000  # baseline + target rows from which features are compared in threads


def compare(
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    params: DriftParams,
    *,
    features: list[str] | None = None,
    time_column: str | None = None,
) -> DriftReport:
    """Compare a target table with a baseline table, feature by feature and as a whole.

    Parameters
    ----------
    baseline, target : pandas.DataFrame
        The reference data and the data to check.
    params : DriftParams
        Tests, thresholds, correction and the dataset-level decision.
    features : list of str, optional
        Columns to compare (default: every column present on both sides).
    time_column : str, optional
        A column of the target holding dates or times: adds drift per ``params.period``.
        It is never compared as a feature.

    Returns
    -------
    DriftReport

    Raises
    ------
    DataError
        A side is empty, a named feature is on neither side, the time column is missing or
        not dates, or no feature can be compared at all.
    ParamsError
        An unknown test, column type or period in ``params``.
    """
    from threadpoolctl import threadpool_limits

    # The vector products are memory-bound: BLAS threads only spin against the feature threads.
    with threadpool_limits(limits=1, user_api="blas"):
        return _compare(baseline, target, params, features, time_column)


def _compare(
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    params: DriftParams,
    features: list[str] | None,
    time_column: str | None,
) -> DriftReport:
    baseline = _checked_frame(baseline, "baseline")
    target = _checked_frame(target, "target")
    results, prepared, notes = _prepare(baseline, target, params, features, time_column)
    # The classifier needs only the raw rows: it is fitted while the numeric features are sorted.
    with ThreadPoolExecutor(max_workers=1) as background:
        fitting = background.submit(drift_coefficient, prepared, params)
        _finish_features(results, prepared, params, len(baseline) + len(target))
        coefficient = fitting.result()
    decide(results, params.correction)
    over_time = drift_over_time(prepared, results, target, time_column, params) if time_column else None
    return assemble(results, coefficient, over_time, notes, (len(baseline), len(target)), params)


def _prepare(
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    params: DriftParams,
    features: list[str] | None,
    time_column: str | None,
) -> tuple[list[FeatureDrift], list[Prepared], list[str]]:
    """Every feature started (:func:`~helpers.stats.per_feature.start_feature`: numeric ones still
    need :func:`_finish_features`), the prepared rows of those that can be compared, and notes."""
    names, notes = resolve_features(baseline, target, features, time_column)
    in_base = [n for n in names if n in baseline.columns and n in target.columns]
    types, type_notes = infer_column_types(baseline, params, in_base)
    pairs = _start_features(names, baseline, target, types, type_notes, params)
    results = [result for result, _ in pairs]
    prepared = [prep for _, prep in pairs if prep is not None]
    if not prepared:
        detail = "; ".join(f"{r.feature}: {', '.join(r.notes) or r.type}" for r in results)
        raise DataError(f"no feature could be compared ({detail})")
    return results, prepared, notes


def table_coefficient(
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    params: DriftParams,
    *,
    features: list[str] | None = None,
) -> Coefficient:
    """The drift coefficient and contributions of two tables, exactly as :func:`compare` computes
    them (the same features, types, rows and seed), without the rest of the report."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _, prepared, _ = _prepare(_checked_frame(baseline, "baseline"), _checked_frame(target, "target"),
                                  params, features, None)
    return drift_coefficient(prepared, params)


def compare_profiles(
    baseline: FrameProfile,
    target: FrameProfile,
    params: DriftParams,
    *,
    features: list[str] | None = None,
    coefficient: Coefficient | None = None,
) -> DriftReport:
    """Compare two profiles (for data too big to hold): the same report, from counts only.

    Profile the target (every partition, merged) with the baseline's edges:
    ``profile_frame(part, types, baseline.edges)``. Categorical statistics, PSI and
    Jensen-Shannon are exact; the Wasserstein distance and the KS statistic come from the fine
    histograms (``wasserstein_approx``, ``ks_approx``; the KS p-value uses the approximate
    statistic), energy distance is not available (a feature set to ``energy`` uses the
    normalised Wasserstein distance instead), and the drift coefficient (it needs rows) is
    ``coefficient`` when the caller computed it from samples of rows (:func:`table_coefficient`),
    else not computed. Every such substitution is written in the feature's notes.
    """
    names, notes = _profile_features(baseline, target, features)
    results = [compare_profile_feature(n, baseline.columns.get(n), target.columns.get(n), params) for n in names]
    if not any(r.compared for r in results):
        detail = "; ".join(f"{r.feature}: {', '.join(r.notes) or r.type}" for r in results)
        raise DataError(f"no feature could be compared ({detail})")
    decide(results, params.correction)
    if coefficient is None:
        coefficient = Coefficient(None, notes=["drift coefficient not computed: profiles hold no rows to classify"])
    return assemble(results, coefficient, None, notes, (baseline.rows, target.rows), params)


def _profile_features(
    baseline: FrameProfile, target: FrameProfile, features: list[str] | None
) -> tuple[list[str], list[str]]:
    if features is not None:
        for name in features:
            if name not in baseline.columns and name not in target.columns:
                raise DataError(f"feature {name!r} is in neither profile")
        return list(dict.fromkeys(features)), []
    notes = []
    for side, mine, other in (("baseline", baseline, target), ("target", target, baseline)):
        only = [c for c in mine.columns if c not in other.columns]
        if only:
            notes.append(f"columns only in the {side} profile, not compared: {', '.join(only)}")
    return [c for c in baseline.columns if c in target.columns], notes


def _start_features(
    names: list[str],
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    types: dict[str, str],
    type_notes: dict[str, list[str]],
    params: DriftParams,
) -> list[tuple[FeatureDrift, Prepared | None]]:
    """Start every feature (:func:`~helpers.stats.per_feature.start_feature`), in threads for big tables."""

    def one(name: str) -> tuple[FeatureDrift, Prepared | None]:
        return start_feature(name, baseline, target, types.get(name), type_notes.get(name, []), params)

    return _map(one, names, len(baseline) + len(target))


def _finish_features(results: list[FeatureDrift], prepared: list[Prepared], params: DriftParams, rows: int) -> None:
    """Finish every started feature (the numeric statistics); big tables use a few threads
    (numpy's sorts release the GIL)."""
    by_name = {r.feature: r for r in results}
    _map(lambda prep: finish_feature(by_name[prep.name], prep, params), prepared, rows)


def _map(function: Callable[[Any], Any], items: list[Any], rows: int) -> list[Any]:
    workers = min(MAX_THREADS, os.cpu_count() or 1, len(items))
    if workers <= 1 or rows < PARALLEL_MIN_ROWS:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def _checked_frame(df: pd.DataFrame, side: str) -> pd.DataFrame:
    """The frame with text column names; a clear error when it is empty or ambiguous."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"the {side} must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise DataError(f"the {side} is empty (0 rows): nothing to compare")
    if len(df.columns) == 0:
        raise DataError(f"the {side} has no columns: nothing to compare")
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)  # no data is copied
    duplicated = df.columns[df.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"the {side} has duplicate column names: {', '.join(duplicated)}; rename them")
    return df


def resolve_features(
    baseline: pd.DataFrame, target: pd.DataFrame, features: list[str] | None, time_column: str | None
) -> tuple[list[str], list[str]]:
    """The features to compare, in order, and notes on columns left out.

    Raises DataError when the time column is not in the target or a named feature is on neither side.
    """
    notes: list[str] = []
    if time_column is not None and time_column not in target.columns:
        raise DataError(f"time column {time_column!r} is not in the target")
    if features is None:
        names = [c for c in baseline.columns if c in target.columns]
        for side, df, other in (("baseline", baseline, target), ("target", target, baseline)):
            only = [str(c) for c in df.columns if c not in other.columns and c != time_column]
            if only:
                notes.append(f"columns only in the {side}, not compared: {', '.join(only)}")
    else:
        names = list(dict.fromkeys(features))
        for name in names:
            if name not in baseline.columns and name not in target.columns:
                raise DataError(f"feature {name!r} is in neither the baseline nor the target")
    if time_column in names:
        names.remove(time_column)
        if features is not None:
            notes.append(f"{time_column!r} is the time column: not compared as a feature")
    return [str(n) for n in names], notes


# --------------------------------------------------------------------------- the report


def assemble(
    results: list[FeatureDrift],
    coefficient: Coefficient,
    over_time: OverTime | None,
    notes: list[str],
    rows: tuple[int, int],
    params: DriftParams,
) -> DriftReport:
    """The report: results ordered (drifted first, then by contribution), the dataset decision, settings."""
    for r in results:
        if r.compared and coefficient.contributions:
            r.contribution = coefficient.contributions.get(r.feature)
    results.sort(key=lambda r: (not r.drifted, not r.compared, -(r.contribution or 0.0)))
    compared = [r for r in results if r.compared]
    n_drifted = sum(r.drifted for r in compared)
    share = n_drifted / len(compared)
    drifted, reason = _decision(share, n_drifted, len(compared), coefficient.value, params)
    skipped = len(results) - len(compared)
    if skipped:
        reason += f"; {skipped} feature(s) not compared (see their notes)"
    return DriftReport(
        features=results,
        coefficient=coefficient.value,
        contributions=dict(sorted(coefficient.contributions.items(), key=lambda kv: -kv[1])),
        share_drifted=share,
        drifted=drifted,
        reason=reason,
        baseline_rows=rows[0],
        target_rows=rows[1],
        n_compared=len(compared),
        n_drifted=n_drifted,
        coefficient_detail={
            "mcc": coefficient.mcc,
            "model": "HistGradientBoostingClassifier",
            "importance": f"permutation (drop in ROC AUC on up to {IMPORTANCE_ROWS} held-out rows, "
            f"{IMPORTANCE_REPEATS} repeats), negatives as 0, normalised to sum 1",
            "sample_rows_per_side": coefficient.rows_per_side,
            "train_rows": coefficient.train_rows,
            "test_rows": coefficient.test_rows,
            "notes": coefficient.notes,
        },
        over_time=over_time,
        notes=notes + coefficient.notes,
        settings=_settings(params),
    )


def _decision(
    share: float, n_drifted: int, n_compared: int, coefficient: float | None, params: DriftParams
) -> tuple[bool, str]:
    share_hit = share >= params.drift_share
    coef_hit = coefficient is not None and coefficient >= params.coefficient_threshold
    share_text = (
        f"{n_drifted} of {n_compared} features drifted (share {share:.2f} "
        f"{'>=' if share_hit else '<'} {params.drift_share:.2f})"
    )
    if coefficient is None:
        coef_text = "drift coefficient not computed"
    else:
        coef_text = (
            f"drift coefficient {coefficient:.2f} {'>=' if coef_hit else '<'} {params.coefficient_threshold:.2f}"
        )
    drifted = share_hit or coef_hit
    joiner = "and" if share_hit == coef_hit or coefficient is None else "but"
    prefix = "drift" if drifted else "no drift"
    return drifted, f"{prefix}: {share_text} {joiner} {coef_text}"


def _settings(params: DriftParams) -> dict[str, Any]:
    return json_safe(
        {
            "test": params.test,
            "numeric_test": params.numeric_test,
            "categorical_test": params.categorical_test,
            "per_feature": dict(params.per_feature),
            "small_sample": params.small_sample,
            "small_sample_rule": params.small_sample_rule,
            "thresholds": vars(params.thresholds).copy(),
            "correction": params.correction,
            "bins": params.bins,
            "drift_share": params.drift_share,
            "coefficient_threshold": params.coefficient_threshold,
            "coefficient_sample": params.coefficient_sample,
            "categorical_max_unique": params.categorical_max_unique,
            "period": params.period,
            "seed": params.seed,
        }
    )
