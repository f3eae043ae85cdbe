"""The drift engine: per-feature tests and distances, test selection, drift coefficient.

:func:`compare` compares a baseline table with a target table and returns a
:class:`DriftReport`. For every feature it states the test, the statistic, the threshold and
the decision, and it keeps every other statistic next to them:

* numeric features: Wasserstein distance (raw and divided by the baseline standard deviation),
  energy distance (raw and of the standardised values), two-sample Kolmogorov-Smirnov statistic
  and p-value, PSI and Jensen-Shannon distance (base 2) on bins fixed by the baseline, and mean,
  std, min, max, missing and infinite counts per side;
* categorical features: Pearson chi-squared test (2 x k table), Jensen-Shannon distance, PSI,
  Euclidean distance between the frequency vectors, distinct counts, categories new in the
  target and gone from it.

All statistics are exact. The ECDF statistics (KS, Wasserstein, energy) come from one merge of
the two sorted samples and equal scipy's ``ks_2samp``, ``wasserstein_distance`` and
``energy_distance``; the tests check it to 1e-9.

Test selection (``DriftParams``): ``per_feature`` beats ``numeric_test`` / ``categorical_test``,
which beat ``test``, which beats the ``auto`` rule. The auto rule follows Evidently: p-value tests
(KS, chi-squared) for small samples (``small_sample`` values or fewer; by default on the smaller
side, see ``small_sample_rule``), distances otherwise (Wasserstein divided by the baseline std
for numeric, Jensen-Shannon for categorical). P-value tests drift when the p-value (corrected
by Bonferroni or Benjamini-Hochberg if asked) is below the threshold, distances when the
distance is at or above it.

Dataset level: the drift coefficient is the Matthews correlation coefficient of a gradient
boosting classifier trained to tell baseline rows from target rows, scored on a held-out
stratified half (0 = the sides cannot be told apart, 1 = perfectly). Each feature's
contribution is its permutation importance (drop in ROC AUC) normalised to sum to 1. The data
set drifts when the share of drifted features reaches ``drift_share`` or the coefficient
reaches ``coefficient_threshold``.

Data too big to hold goes through profiles (:mod:`helpers.profile`): :func:`compare_profiles`
gives the same report from a baseline profile and a target profile merged from partitions.

Column typing (:func:`infer_column_types`): strings and booleans are categorical; integer
columns (or floats holding only whole numbers) with at most ``categorical_max_unique`` distinct
baseline values are categorical; other numbers are numeric; datetime columns and ID-like
columns (all values distinct: text, or whole numbers forming a run or rising with the row) are
excluded with a note. ``column_types`` overrides any of it.

Example
-------
>>> import numpy as np, pandas as pd
>>> from helpers.config import DriftParams
>>> rng = np.random.default_rng(0)
>>> base = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(list("abc"), 2000)})
>>> target = pd.DataFrame({"x": rng.normal(1.0, size=2000), "c": rng.choice(list("abc"), 2000)})
>>> report = compare(base, target, DriftParams(coefficient_sample=0))
>>> [(f.feature, f.test, f.drifted) for f in report.features]
[('x', 'wasserstein', True), ('c', 'jensenshannon', False)]
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from helpers.core.config import DriftParams
from helpers.core.errors import DataError, ParamsError
from helpers.stats.profile import (
    CategoricalProfile,
    ColumnProfile,
    FrameProfile,
    NumericProfile,
    aligned_counts,
    baseline_edges,
    categorical_distances,
    category_counts,
    category_label,
    numeric_array,
    numeric_distances,
    profile_numeric,
    split_finite,
)

NUMERIC_TESTS = ("ks", "wasserstein", "energy", "psi", "jensenshannon")
CATEGORICAL_TESTS = ("chi2", "jensenshannon", "psi", "euclidean")
PVALUE_TESTS = frozenset({"ks", "chi2"})
PROFILE_NUMERIC_TESTS = ("ks", "wasserstein", "psi", "jensenshannon")  # energy needs rows
COLUMN_TYPES = ("numeric", "categorical", "datetime", "id", "exclude")
TEST_METRIC = {
    "ks": "ks_pvalue",
    "chi2": "chi2_pvalue",
    "wasserstein": "wasserstein_norm",
    "energy": "energy_norm",
    "psi": "psi",
    "jensenshannon": "jensenshannon",
    "euclidean": "euclidean",
}
TEST_LABEL = {
    "ks": "Kolmogorov-Smirnov p-value",
    "chi2": "chi-squared p-value",
    "wasserstein": "Wasserstein distance / baseline std",
    "energy": "energy distance of standardised values",
    "psi": "population stability index",
    "jensenshannon": "Jensen-Shannon distance (base 2)",
    "euclidean": "Euclidean distance of frequencies",
}
FEW_VALUES = 30  # fewer values than this on a side: tests have little power (noted)
PLOT_CATEGORIES = 20  # categories drawn in a bar chart; the rest are summed as "(other)"
MAX_CLASSIFIER_CATEGORIES = 254  # HistGradientBoosting's limit; rarer categories share a code
MIN_CLASSIFIER_ROWS = 10  # per side, for the drift coefficient
MAX_THREADS = 4  # threads comparing features of big tables
PARALLEL_MIN_ROWS = 200_000  # baseline + target rows from which features are compared in threads
CLASSIFIER_TREES = 50  # boosting iterations of the drift-coefficient classifier (learning rate 0.2)
IMPORTANCE_ROWS = 1500  # held-out rows used for permutation importance (all copies scored at once)


# --------------------------------------------------------------------------- results


@dataclass
class FeatureDrift:
    """Drift result of one feature.

    Attributes
    ----------
    feature, type : str
        Column name and type (numeric, categorical, datetime, id, exclude, missing, mismatch).
    compared : bool
        False when the feature could not be compared; ``notes`` says why.
    test, statistic, threshold, drifted
        The chosen test, the value compared with the threshold (the corrected p-value for
        p-value tests), the threshold, and the decision.
    p_value : float or None
        The raw p-value of the chosen test when it is a p-value test.
    metrics : dict
        Every statistic computed for the feature.
    baseline, target : dict
        Per-side summaries (counts, missing rate, moments or distinct counts).
    histogram : dict or None
        Aggregated counts for the plots: numeric ``edges`` with ``[underflow, bins..., overflow]``
        counts per side; categorical ``labels`` with counts per side.
    new_categories, gone_categories : list of str
        Categories seen only in the target, and only in the baseline.
    contribution : float or None
        Share of the drift coefficient's classifier importance.
    notes : list of str
        Everything unusual about this feature.
    """

    feature: str
    type: str
    compared: bool = False
    test: str | None = None
    statistic: float | None = None
    threshold: float | None = None
    drifted: bool = False
    p_value: float | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    histogram: dict[str, Any] | None = None
    new_categories: list[str] = field(default_factory=list)
    gone_categories: list[str] = field(default_factory=list)
    contribution: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rule(self) -> str:
        """How the statistic is compared with the threshold: ``"<"`` or ``">="``."""
        return "<" if self.test in PVALUE_TESTS else ">="

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN and infinities become None)."""
        return json_safe(
            {
                "feature": self.feature,
                "type": self.type,
                "compared": self.compared,
                "test": self.test,
                "test_label": TEST_LABEL.get(self.test or ""),
                "statistic": self.statistic,
                "rule": self.rule if self.test else None,
                "threshold": self.threshold,
                "drifted": self.drifted,
                "p_value": self.p_value,
                "contribution": self.contribution,
                "metrics": self.metrics,
                "baseline": self.baseline,
                "target": self.target,
                "new_categories": self.new_categories,
                "gone_categories": self.gone_categories,
                "histogram": self.histogram,
                "notes": self.notes,
            }
        )


@dataclass
class OverTime:
    """The chosen statistic of each feature per period of the target.

    ``features`` maps a feature to ``{"test", "threshold", "rule", "values", "drifted"}`` with
    one value per period (None when the period has no values of that feature).
    """

    time_column: str
    period: str
    periods: list[str]
    starts: list[str]
    rows: list[int]
    features: dict[str, dict[str, Any]]
    share_drifted: list[float | None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return json_safe(
            {
                "time_column": self.time_column,
                "period": self.period,
                "periods": self.periods,
                "starts": self.starts,
                "rows": self.rows,
                "features": self.features,
                "share_drifted": self.share_drifted,
            }
        )


@dataclass
class Coefficient:
    """The drift coefficient and how it was obtained."""

    value: float | None
    mcc: float | None = None
    contributions: dict[str, float] = field(default_factory=dict)
    train_rows: int = 0
    test_rows: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class DriftReport:
    """Result of :func:`compare`.

    Attributes
    ----------
    features : list of FeatureDrift
        One result per feature, drifted first, then by contribution.
    coefficient : float or None
        Drift coefficient in 0..1 (None when not computed; ``notes`` says why).
    contributions : dict of str to float
        Feature contributions to the coefficient, summing to 1 (empty when not computed).
    share_drifted : float
        Drifted features over compared features.
    drifted : bool
        The overall decision; ``reason`` says why.
    """

    features: list[FeatureDrift]
    coefficient: float | None
    contributions: dict[str, float]
    share_drifted: float
    drifted: bool
    reason: str
    baseline_rows: int
    target_rows: int
    n_compared: int
    n_drifted: int
    coefficient_detail: dict[str, Any] = field(default_factory=dict)
    over_time: OverTime | None = None
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def feature(self, name: str) -> FeatureDrift:
        """The result of one feature by name."""
        for result in self.features:
            if result.feature == name:
                return result
        raise KeyError(f"no feature {name!r} in this report")

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features."""
        return [f.feature for f in self.features if f.drifted]

    def summary(self) -> dict[str, Any]:
        """The headline numbers: decision, reason, coefficient, share and counts."""
        return json_safe(
            {
                "drifted": self.drifted,
                "reason": self.reason,
                "coefficient": self.coefficient,
                "share_drifted": self.share_drifted,
                "n_features": len(self.features),
                "n_compared": self.n_compared,
                "n_drifted": self.n_drifted,
                "drifted_features": self.drifted_features,
                "baseline_rows": self.baseline_rows,
                "target_rows": self.target_rows,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Every number of the report as JSON-ready data (no NaN: None, with a note)."""
        return json_safe(
            {
                "summary": self.summary(),
                "contributions": self.contributions,
                "coefficient_detail": self.coefficient_detail,
                "features": [f.to_dict() for f in self.features],
                "over_time": self.over_time.to_dict() if self.over_time else None,
                "notes": self.notes,
                "settings": self.settings,
            }
        )

    def table(self) -> pd.DataFrame:
        """One row per feature, drifted first: test, statistic, threshold, decision, key metrics."""
        rows = [_table_row(f) for f in self.features]
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)


TABLE_COLUMNS = [
    "feature",
    "type",
    "test",
    "statistic",
    "rule",
    "threshold",
    "drifted",
    "contribution",
    "p_value",
    "ks_statistic",
    "ks_pvalue",
    "chi2_pvalue",
    "wasserstein",
    "wasserstein_norm",
    "energy_norm",
    "psi",
    "jensenshannon",
    "euclidean",
    "baseline_missing_rate",
    "target_missing_rate",
    "note",
]


def _table_row(f: FeatureDrift) -> dict[str, Any]:
    m = f.metrics
    return {
        "feature": f.feature,
        "type": f.type,
        "test": f.test,
        "statistic": f.statistic,
        "rule": f.rule if f.test else None,
        "threshold": f.threshold,
        "drifted": f.drifted,
        "contribution": f.contribution,
        "p_value": f.p_value,
        **{key: m.get(key) for key in TABLE_COLUMNS[9:18]},
        "baseline_missing_rate": f.baseline.get("missing_rate"),
        "target_missing_rate": f.target.get("missing_rate"),
        "note": "; ".join(f.notes),
    }


def json_safe(value: Any) -> Any:
    """Turn numpy scalars into Python numbers and NaN or infinities into None, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


# --------------------------------------------------------------------------- exact statistics


def ecdf_distances(a_sorted: np.ndarray, b_sorted: np.ndarray) -> tuple[float, float, float]:
    """KS statistic, Wasserstein distance and energy distance of two sorted samples.

    One stable merge of the two sorted arrays (linear for two sorted runs) gives both ECDFs at
    every point, so all three come in O(n) after the sorts. Equal to
    ``scipy.stats.ks_2samp(...).statistic``, ``wasserstein_distance`` and ``energy_distance``.

    Examples
    --------
    >>> ecdf_distances(np.array([0.0, 1.0]), np.array([0.0, 2.0]))
    (0.5, 0.5, 0.7071067811865476)
    """
    n, m = len(a_sorted), len(b_sorted)
    total = n + m
    merged = np.concatenate([a_sorted, b_sorted])
    order = np.argsort(merged, kind="stable")
    values = merged[order]
    # F_a - F_b at every merged point: count_a / n - (k - count_a) / m, computed in place
    diff = np.cumsum(order < n, dtype=np.float64)
    diff *= 1.0 / n + 1.0 / m
    diff -= np.arange(1, total + 1, dtype=np.float64) / m
    gaps = np.diff(values)
    absd = np.abs(diff)
    wasserstein = float(np.dot(absd[:-1], gaps))
    energy = float(np.sqrt(2.0 * np.dot(diff[:-1] * diff[:-1], gaps)))
    if np.count_nonzero(gaps) < total - 1:  # ties: only the last of equal values holds the ECDF
        run_end = np.ones(total, dtype=bool)
        run_end[:-1] = gaps != 0
        ks = float(absd[run_end].max())
    else:
        ks = float(absd.max())
    return ks, wasserstein, energy


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Two-sided KS p-value as ``scipy.stats.ks_2samp(method="auto")`` computes it.

    Exact for samples of at most 10,000 values, Smirnov's asymptotic distribution otherwise;
    it needs only the statistic and the sample sizes.
    """
    if max(n1, n2) <= 10_000:
        exact = _exact_ks_pvalue(statistic, n1, n2)
        if exact is not None:
            return exact
    big, small = max(n1, n2), min(n1, n2)
    en = big * small / (big + small)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


def _exact_ks_pvalue(statistic: float, n1: int, n2: int) -> float | None:
    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # scipy moved its helper: fall back to the asymptotic distribution
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        success, _, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), statistic, "two-sided")
    return float(np.clip(prob, 0.0, 1.0)) if success else None


def adjust_pvalues(pvalues: Sequence[float], method: str) -> list[float]:
    """Bonferroni or Benjamini-Hochberg adjusted p-values (``"none"`` returns them unchanged)."""
    p = np.asarray(pvalues, dtype=float)
    if method == "none" or p.size == 0:
        return p.tolist()
    if method == "bonferroni":
        return np.minimum(p * p.size, 1.0).tolist()
    if method == "benjamini-hochberg":
        order = np.argsort(p)
        ranked = p[order] * p.size / np.arange(1, p.size + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty_like(p)
        out[order] = np.minimum(ranked, 1.0)
        return out.tolist()
    raise ParamsError(f"drift.correction: unknown correction {method!r}; use none, bonferroni or benjamini-hochberg")


# --------------------------------------------------------------------------- column typing


def infer_column_types(
    df: pd.DataFrame, params: DriftParams, features: Sequence[str] | None = None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Type each feature as numeric, categorical, datetime, id or exclude.

    Parameters
    ----------
    df : pandas.DataFrame
        The baseline (types are decided on the reference data).
    params : DriftParams
        ``categorical_max_unique`` and the ``column_types`` overrides are used.
    features : sequence of str, optional
        Columns to type (default: all columns of ``df``).

    Returns
    -------
    types : dict of str to str
    notes : dict of str to list of str
        Why a column got its type when that is not obvious (overrides, integer codes, exclusions).

    Examples
    --------
    >>> df = pd.DataFrame({"x": [0.5, 1.5, 2.5], "code": [1, 2, 1], "name": ["a", "b", "a"]})
    >>> infer_column_types(df, DriftParams())[0]
    {'x': 'numeric', 'code': 'categorical', 'name': 'categorical'}
    """
    _check_overrides(params)
    names = list(df.columns) if features is None else list(features)
    types: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    for name in names:
        if name not in df.columns:
            raise DataError(f"column {name!r} is not in the table")
        override = params.column_types.get(name)
        if override is not None:
            types[name] = override
            notes[name] = [f"type {override} set by drift.column_types"]
            continue
        ctype, note = _infer_one(df[name], params.categorical_max_unique)
        types[name] = ctype
        notes[name] = [note] if note else []
    return types, notes


def _check_overrides(params: DriftParams) -> None:
    for name, ctype in params.column_types.items():
        if ctype not in COLUMN_TYPES:
            raise ParamsError(
                f"drift.column_types.{name}: unknown type {ctype!r}; use one of {', '.join(COLUMN_TYPES)}"
            )
    for name, test in params.per_feature.items():
        if test not in NUMERIC_TESTS + CATEGORICAL_TESTS:
            valid = ", ".join(sorted(set(NUMERIC_TESTS + CATEGORICAL_TESTS)))
            raise ParamsError(f"drift.per_feature.{name}: unknown test {test!r}; use one of {valid}")


def _infer_one(series: pd.Series, max_unique: int) -> tuple[str, str | None]:
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return "datetime", "datetime column: excluded (pass it as the time column for drift over time)"
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical", None
    if pd.api.types.is_numeric_dtype(dtype):
        return _infer_numbers(numeric_array(series), max_unique, as_text=False)
    present = series.dropna()
    if present.empty:
        return "categorical", None
    if _looks_like_dates(present):
        return "datetime", "text holding dates: excluded (pass it as the time column for drift over time)"
    if _all_numbers(present.iloc[:100]):  # a cheap look first: converting all text is slow
        as_numbers = pd.to_numeric(present, errors="coerce")
        if as_numbers.notna().all():
            return _infer_numbers(as_numbers.to_numpy(dtype=float), max_unique, as_text=True)
    distinct = present.nunique()
    if len(present) >= FEW_VALUES and distinct >= 0.9 * len(present):
        return "id", f"ID-like text ({distinct} distinct values in {len(present)} rows): excluded"
    return "categorical", None


def _infer_numbers(values: np.ndarray, max_unique: int, as_text: bool) -> tuple[str, str | None]:
    prefix = "numbers stored as text; " if as_text else ""
    head = values[:1000]
    head = head[np.isfinite(head)]
    if head.size and not np.all(head == np.floor(head)):  # a cheap look first: measurements fail at once
        return "numeric", (prefix + "numeric") if as_text else None
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "numeric", (prefix or None)
    if not np.all(finite == np.floor(finite)):
        return "numeric", (prefix + "numeric") if as_text else None
    distinct = int(np.unique(finite).size)
    if _id_like_integers(values, finite, distinct):
        return "id", f"ID-like integers (all {distinct} values distinct, consecutive or rising): excluded"
    if distinct <= max_unique:
        return "categorical", (
            f"{prefix}whole numbers with {distinct} distinct values "
            f"(<= drift.categorical_max_unique = {max_unique}): categorical"
        )
    return "numeric", (prefix + "numeric") if as_text else None


def _id_like_integers(values: np.ndarray, finite: np.ndarray, distinct: int) -> bool:
    if finite.size < FEW_VALUES or distinct != finite.size:
        return False
    consecutive = finite.max() - finite.min() + 1 == finite.size
    rising = bool(np.all(np.diff(finite) > 0))
    return consecutive or rising


def _all_numbers(sample: pd.Series) -> bool:
    return bool(pd.to_numeric(sample, errors="coerce").notna().all())


def _looks_like_dates(present: pd.Series) -> bool:
    sample = present.iloc[:100].astype(str)
    if not sample.str.contains(r"\d").all() or not sample.str.contains(r"[-/:]").all():
        return False
    if sample.str.len().min() < 8:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


# --------------------------------------------------------------------------- test selection


def select_test(name: str, ctype: str, n_values: int, params: DriftParams) -> str:
    """The test for one feature: per_feature, then per type, then global, then the auto rule.

    ``n_values`` is what the auto rule compares with ``params.small_sample``.
    """
    valid = NUMERIC_TESTS if ctype == "numeric" else CATEGORICAL_TESTS
    chosen = params.per_feature.get(name)
    if chosen is not None:
        if chosen not in valid:
            raise ParamsError(
                f"drift.per_feature.{name}: {chosen!r} does not apply to a {ctype} feature; "
                f"use one of {', '.join(valid)}"
            )
        return chosen
    per_type = params.numeric_test if ctype == "numeric" else params.categorical_test
    if per_type != "auto":
        return per_type
    if params.test != "auto" and params.test in valid:
        return params.test
    if n_values <= params.small_sample:
        return "ks" if ctype == "numeric" else "chi2"
    return "wasserstein" if ctype == "numeric" else "jensenshannon"


# --------------------------------------------------------------------------- per-feature comparison


@dataclass
class _NumericBase:
    """What the baseline side of a numeric feature contributes to every comparison."""

    sorted_values: np.ndarray
    profile: NumericProfile


@dataclass
class _Prepared:
    """A compared feature, ready for the coefficient and for drift over time."""

    name: str
    ctype: str
    base_series: pd.Series
    target_series: pd.Series
    numeric_base: _NumericBase | None = None
    categorical_base: CategoricalProfile | None = None
    labels: list[str] = field(default_factory=list)


def numeric_metrics(base: _NumericBase, target_sorted: np.ndarray, missing: int, infinite: int) -> dict[str, Any]:
    """Every numeric statistic of a target sample against a prepared baseline."""
    a, b = base.sorted_values, target_sorted
    ks, wasserstein, energy = ecdf_distances(a, b)
    target_prof = profile_numeric(b, missing, infinite, base.profile.edges, fine_bins=0, is_sorted=True)
    scale = base.profile.std
    if scale == 0.0:
        scale = float(np.concatenate([a, b]).std())
    norm_w = wasserstein / scale if scale > 0 else 0.0
    norm_e = energy / math.sqrt(scale) if scale > 0 else 0.0
    hist = numeric_distances(base.profile, target_prof)
    return {
        "metrics": {
            "ks_statistic": ks,
            "ks_pvalue": ks_pvalue(ks, a.size, b.size),
            "wasserstein": wasserstein,
            "wasserstein_norm": norm_w,
            "energy": energy,
            "energy_norm": norm_e,
            "psi": hist["psi"],
            "jensenshannon": hist["jensenshannon"],
        },
        "profile": target_prof,
    }


def categorical_metrics(base: CategoricalProfile, target: CategoricalProfile) -> dict[str, float]:
    """Every categorical statistic of a target profile against the baseline profile."""
    return categorical_distances(base, target)


def _numeric_side(prof: NumericProfile) -> dict[str, Any]:
    return {
        "rows": prof.rows,
        "count": prof.count,
        "missing": prof.missing,
        "missing_rate": prof.missing / prof.rows if prof.rows else None,
        "infinite": prof.infinite,
        "mean": prof.mean,
        "std": prof.std,
        "min": prof.min,
        "max": prof.max,
    }


def _categorical_side(prof: CategoricalProfile) -> dict[str, Any]:
    return {
        "rows": prof.rows,
        "count": prof.count,
        "missing": prof.missing,
        "missing_rate": prof.missing / prof.rows if prof.rows else None,
        "distinct": len(prof.counts),
    }


def _side_kind(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "dates"
    if pd.api.types.is_bool_dtype(dtype):
        return "booleans"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numbers"
    return "text"


def _numeric_values(series: pd.Series, side: str, other_kind: str) -> tuple[np.ndarray | None, str | None]:
    """Float values of one side, or None and the reason they cannot be numbers."""
    kind = _side_kind(series)
    if kind == "dates":
        return None, f"type mismatch: the {side} holds dates, the other side {other_kind}; not compared"
    try:
        values = numeric_array(series)
    except (ValueError, TypeError):
        bad = pd.to_numeric(series.dropna(), errors="coerce").isna()
        example = series.dropna()[bad].iloc[0] if bad.any() else "?"
        return None, (
            f"type mismatch: the {side} holds text such as {str(example)[:40]!r} where numbers are "
            "expected; not compared"
        )
    note = f"{side} values are numbers stored as text: converted" if kind == "text" else None
    return values, note


def _compare_numeric(prep: _Prepared, result: FeatureDrift, params: DriftParams) -> bool:
    kinds = {"baseline": _side_kind(prep.base_series), "target": _side_kind(prep.target_series)}
    arrays: dict[str, tuple[np.ndarray, int, int]] = {}
    for side, series in (("baseline", prep.base_series), ("target", prep.target_series)):
        other = kinds["target" if side == "baseline" else "baseline"]
        values, note = _numeric_values(series, side, other)
        if note:
            result.notes.append(note)
        if values is None:
            result.type = "mismatch"
            return False
        arrays[side] = split_finite(values)
    (fb, miss_b, inf_b), (ft, miss_t, inf_t) = arrays["baseline"], arrays["target"]
    if not _has_values(result, fb.size, ft.size, inf_b, inf_t):
        return False
    a, b = np.sort(fb), np.sort(ft)
    edges = baseline_edges(a, params.bins)
    base = _NumericBase(a, profile_numeric(a, miss_b, inf_b, edges, fine_bins=0, is_sorted=True))
    out = numeric_metrics(base, b, miss_t, inf_t)
    prep.numeric_base = base
    result.metrics = out["metrics"]
    result.baseline = _numeric_side(base.profile)
    result.target = _numeric_side(out["profile"])
    result.histogram = {
        "kind": "numeric",
        "edges": edges.tolist(),
        "baseline": base.profile.hist.tolist(),
        "target": out["profile"].hist.tolist(),
    }
    _numeric_notes(result, base.profile, out["profile"], inf_b, inf_t)
    return True


def _has_values(result: FeatureDrift, n_base: int, n_target: int, inf_b: int, inf_t: int) -> bool:
    for side, n, inf in (("baseline", n_base, inf_b), ("target", n_target, inf_t)):
        if n == 0:
            extra = f" ({inf} infinite)" if inf else ""
            result.notes.append(f"no finite values in the {side}{extra}: all missing; not compared")
    return n_base > 0 and n_target > 0


def _numeric_notes(result: FeatureDrift, base: NumericProfile, target: NumericProfile, inf_b: int, inf_t: int) -> None:
    for side, inf in (("baseline", inf_b), ("target", inf_t)):
        if inf:
            result.notes.append(f"{inf} infinite values in the {side} excluded from the statistics")
    if base.std == 0.0:
        scale = "the pooled std" if target.std > 0 or target.mean != base.mean else "nothing (both sides equal)"
        result.notes.append(f"baseline is constant ({base.mean:g}): normalised distances divide by {scale}")
    _few_values_note(result, base.count, target.count)
    outside = int(target.hist[0] + target.hist[-1])
    if outside:
        result.notes.append(f"{outside} target values lie outside the baseline range")


def _few_values_note(result: FeatureDrift, n_base: int, n_target: int) -> None:
    for side, n in (("baseline", n_base), ("target", n_target)):
        if n < FEW_VALUES:
            result.notes.append(f"only {n} values in the {side}: the tests have little power")


def _compare_categorical(prep: _Prepared, result: FeatureDrift) -> bool:
    kind_b, kind_t = _side_kind(prep.base_series), _side_kind(prep.target_series)
    if "dates" in (kind_b, kind_t) and kind_b != kind_t:
        result.type = "mismatch"
        result.notes.append(f"type mismatch: baseline holds {kind_b}, target holds {kind_t}; not compared")
        return False
    if kind_b != kind_t:
        result.notes.append(f"baseline holds {kind_b}, target holds {kind_t}: compared as category labels")
    counts_b, miss_b = category_counts(prep.base_series)
    counts_t, miss_t = category_counts(prep.target_series)
    base = CategoricalProfile(counts_b, miss_b)
    target = CategoricalProfile(counts_t, miss_t)
    if not _has_values(result, base.count, target.count, 0, 0):
        return False
    labels, b, t = aligned_counts(base, target)
    prep.categorical_base = base
    prep.labels = labels
    result.metrics = categorical_metrics(base, target)
    result.metrics["distinct_baseline"] = float(len(counts_b))
    result.metrics["distinct_target"] = float(len(counts_t))
    result.baseline = _categorical_side(base)
    result.target = _categorical_side(target)
    result.new_categories = [c for c, n in zip(labels, b, strict=True) if n == 0]
    result.gone_categories = [c for c, n in zip(labels, t, strict=True) if n == 0]
    result.histogram = _category_histogram(labels, b, t)
    _categorical_notes(result, b, t)
    return True


def _category_histogram(labels: list[str], b: np.ndarray, t: np.ndarray) -> dict[str, Any]:
    share = b / max(b.sum(), 1) + t / max(t.sum(), 1)
    top = np.sort(np.argsort(-share, kind="stable")[:PLOT_CATEGORIES])
    numeric = pd.to_numeric(pd.Series([labels[i] for i in top]), errors="coerce")
    if numeric.notna().all():  # codes such as 1..7 read best in their own order
        top = top[np.argsort(numeric.to_numpy(), kind="stable")]
    rest = np.setdiff1d(np.arange(len(labels)), top)
    names = [labels[i] for i in top]
    base_counts, target_counts = b[top].tolist(), t[top].tolist()
    if rest.size:
        names.append(f"(other {rest.size})")
        base_counts.append(int(b[rest].sum()))
        target_counts.append(int(t[rest].sum()))
    return {"kind": "categorical", "labels": names, "baseline": base_counts, "target": target_counts}


def _categorical_notes(result: FeatureDrift, b: np.ndarray, t: np.ndarray) -> None:
    if result.new_categories:
        shown = ", ".join(result.new_categories[:5]) + (" ..." if len(result.new_categories) > 5 else "")
        result.notes.append(f"{_categories(len(result.new_categories))} only in the target: {shown}")
    if result.gone_categories:
        shown = ", ".join(result.gone_categories[:5]) + (" ..." if len(result.gone_categories) > 5 else "")
        result.notes.append(f"{_categories(len(result.gone_categories))} gone from the target: {shown}")
    if len(b) == 1:
        result.notes.append("a single category on both sides: chi-squared has no degrees of freedom (p = 1)")
    else:
        expected = np.outer([b.sum(), t.sum()], b + t) / (b.sum() + t.sum())
        if (expected < 5).any():
            result.notes.append("some expected counts below 5: the chi-squared p-value is approximate")
    _few_values_note(result, int(b.sum()), int(t.sum()))


def _categories(n: int) -> str:
    return f"{n} category" if n == 1 else f"{n} categories"


def _choose(result: FeatureDrift, params: DriftParams, available: Sequence[str] | None = None) -> None:
    n_base = int(result.baseline["count"])
    n_target = int(result.target["count"])
    n = min(n_base, n_target) if params.small_sample_rule == "smaller_side" else n_base
    result.test = select_test(result.feature, result.type, n, params)
    if available is not None and result.test not in available:
        result.notes.append(f"{result.test} needs rows, not profiles: wasserstein used instead")
        result.test = "wasserstein"
    result.threshold = float(getattr(params.thresholds, result.test))
    result.statistic = result.metrics[TEST_METRIC[result.test]]
    if result.test in PVALUE_TESTS:
        result.p_value = result.statistic


def _decide(results: list[FeatureDrift], correction: str) -> None:
    tested = [f for f in results if f.compared and f.test in PVALUE_TESTS]
    adjusted = adjust_pvalues([f.p_value for f in tested], correction)  # type: ignore[misc]
    for f, p in zip(tested, adjusted, strict=True):
        f.statistic = p
        if correction != "none":
            f.metrics[f"{f.test}_pvalue_adjusted"] = p
    for f in results:
        if not f.compared:
            continue
        assert f.statistic is not None and f.threshold is not None
        f.drifted = f.statistic < f.threshold if f.test in PVALUE_TESTS else f.statistic >= f.threshold


# --------------------------------------------------------------------------- drift coefficient


def drift_coefficient(prepared: Sequence[_Prepared], params: DriftParams) -> Coefficient:
    """MCC of a classifier telling baseline rows from target rows, and feature contributions.

    The same number of rows, up to ``coefficient_sample / 2``, is drawn from each side
    (seeded), so the classes are balanced. The classifier (``HistGradientBoostingClassifier``)
    is fitted on a stratified half and scored on the other half. Negative MCC is reported as 0.
    """
    if params.coefficient_sample <= 0:
        return Coefficient(None, notes=["drift coefficient turned off (drift.coefficient_sample = 0)"])
    if not prepared:
        return Coefficient(None, notes=["drift coefficient not computed: no feature was compared"])
    n_base, n_target = len(prepared[0].base_series), len(prepared[0].target_series)
    if min(n_base, n_target) < MIN_CLASSIFIER_ROWS:
        return Coefficient(
            None,
            notes=[f"drift coefficient not computed: fewer than {MIN_CLASSIFIER_ROWS} rows on a side"],
        )
    rng = np.random.default_rng(params.seed)
    per_side = min(n_base, n_target, max(params.coefficient_sample // 2, MIN_CLASSIFIER_ROWS))
    idx_b = _sample_rows(n_base, per_side, rng)
    idx_t = _sample_rows(n_target, per_side, rng)
    x, categorical = _design_matrix(prepared, idx_b, idx_t)
    y = np.concatenate([np.zeros(idx_b.size, int), np.ones(idx_t.size, int)])
    return _fit_coefficient(x, y, categorical, [p.name for p in prepared], params.seed)


def _sample_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(rng.choice(n, size=k, replace=False))


def _design_matrix(
    prepared: Sequence[_Prepared], idx_b: np.ndarray, idx_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sampled rows of both sides as one float matrix, and which columns are categorical."""
    columns = []
    for prep in prepared:
        sides = ((prep.base_series, idx_b), (prep.target_series, idx_t))
        if prep.ctype == "numeric":
            col = np.concatenate([numeric_array(s.iloc[i]) for s, i in sides])
            col[np.isinf(col)] = np.nan
        else:
            codes = {label: float(min(i, MAX_CLASSIFIER_CATEGORIES)) for i, label in enumerate(prep.labels)}
            col = np.concatenate([_category_codes(s.iloc[i], codes) for s, i in sides])
        columns.append(col)
    categorical = np.array([p.ctype == "categorical" for p in prepared], dtype=bool)
    return np.column_stack(columns), categorical


def _category_codes(series: pd.Series, codes: dict[str, float]) -> np.ndarray:
    """Classifier codes of raw category values (missing as NaN, rare categories share one code)."""
    present = series.dropna()
    by_value = {v: codes.get(category_label(v), float(MAX_CLASSIFIER_CATEGORIES)) for v in present.unique()}
    out = np.full(len(series), np.nan)
    out[series.notna().to_numpy()] = present.map(by_value).to_numpy(dtype=float)
    return out


def _fit_coefficient(x: np.ndarray, y: np.ndarray, categorical: np.ndarray, names: list[str], seed: int) -> Coefficient:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import matthews_corrcoef
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    model = HistGradientBoostingClassifier(
        max_iter=CLASSIFIER_TREES,
        learning_rate=0.2,
        categorical_features=categorical if categorical.any() else None,
        early_stopping=False,
        random_state=seed,
    )
    # One OpenMP thread: on a shared or busy machine, HistGradientBoosting's threads spin and
    # run many times slower on samples this small.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(x_train, y_train)
        mcc = float(matthews_corrcoef(y_test, model.predict(x_test)))
        keep = _sample_rows(y_test.size, IMPORTANCE_ROWS, np.random.default_rng(seed))
        importance = permutation_importance(model, x_test[keep], y_test[keep], seed)
    notes = []
    if importance.sum() > 0:
        contributions = dict(zip(names, (importance / importance.sum()).tolist(), strict=True))
    else:
        contributions = dict.fromkeys(names, 0.0)
        notes.append("no feature helps tell the sides apart: all contributions are 0")
    return Coefficient(
        value=max(mcc, 0.0),
        mcc=mcc,
        contributions=contributions,
        train_rows=int(y_train.size),
        test_rows=int(y_test.size),
        notes=notes,
    )


def permutation_importance(model: Any, x: np.ndarray, y: np.ndarray, seed: int, repeats: int = 3) -> np.ndarray:
    """Mean drop in ROC AUC when each column is shuffled (negative drops as 0).

    The same as ``sklearn.inspection.permutation_importance(scoring="roc_auc")`` in spirit, but
    every shuffled copy is scored in one batched call, and AUC comes from ranks (Mann-Whitney U).
    """
    rng = np.random.default_rng(seed)
    n, k = x.shape
    stacked = np.tile(x, (k * repeats + 1, 1))
    for block in range(k * repeats):
        j = block // repeats
        rows = slice((block + 1) * n, (block + 2) * n)
        stacked[rows, j] = x[rng.permutation(n), j]
    scores = model.decision_function(stacked).reshape(k * repeats + 1, n)
    reference = roc_auc(y, scores[0])
    aucs = np.array([roc_auc(y, row) for row in scores[1:]]).reshape(k, repeats)
    return np.clip(reference - aucs.mean(axis=1), 0.0, None)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of binary labels ``y`` (0/1) from ranks, ties counted half."""
    ranks = stats.rankdata(score)
    positives = y == 1
    n_pos = int(positives.sum())
    n_neg = y.size - n_pos
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --------------------------------------------------------------------------- drift over time


def drift_over_time(
    prepared: Sequence[_Prepared],
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


def _period_statistic(prep: _Prepared, test: str, idx: np.ndarray) -> float | None:
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


# --------------------------------------------------------------------------- the entry point


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
    names, notes = _resolve_features(baseline, target, features, time_column)
    in_base = [n for n in names if n in baseline.columns and n in target.columns]
    types, type_notes = infer_column_types(baseline, params, in_base)
    pairs = _compare_features(names, baseline, target, types, type_notes, params)
    results = [result for result, _ in pairs]
    prepared = [prep for _, prep in pairs if prep is not None]
    if not prepared:
        detail = "; ".join(f"{r.feature}: {', '.join(r.notes) or r.type}" for r in results)
        raise DataError(f"no feature could be compared ({detail})")
    _decide(results, params.correction)
    coefficient = drift_coefficient(prepared, params)
    over_time = drift_over_time(prepared, results, target, time_column, params) if time_column else None
    return _assemble(results, coefficient, over_time, notes, (len(baseline), len(target)), params)


def compare_profiles(
    baseline: FrameProfile,
    target: FrameProfile,
    params: DriftParams,
    *,
    features: list[str] | None = None,
) -> DriftReport:
    """Compare two profiles (for data too big to hold): the same report, from counts only.

    Profile the target (every partition, merged) with the baseline's edges:
    ``profile_frame(part, types, baseline.edges)``. Categorical statistics, PSI and
    Jensen-Shannon are exact; the Wasserstein distance and the KS statistic come from the fine
    histograms (``wasserstein_approx``, ``ks_approx``; the KS p-value uses the approximate
    statistic), energy distance is not available (a feature set to ``energy`` uses the
    normalised Wasserstein distance instead), and there is no drift coefficient (it needs rows).
    Every such substitution is written in the feature's notes.
    """
    names, notes = _profile_features(baseline, target, features)
    results = [_compare_profile_feature(n, baseline.columns.get(n), target.columns.get(n), params) for n in names]
    if not any(r.compared for r in results):
        detail = "; ".join(f"{r.feature}: {', '.join(r.notes) or r.type}" for r in results)
        raise DataError(f"no feature could be compared ({detail})")
    _decide(results, params.correction)
    coefficient = Coefficient(None, notes=["drift coefficient not computed: profiles hold no rows to classify"])
    return _assemble(results, coefficient, None, notes, (baseline.rows, target.rows), params)


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


def _compare_profile_feature(
    name: str, base: ColumnProfile | None, target: ColumnProfile | None, params: DriftParams
) -> FeatureDrift:
    for side, prof in (("baseline", base), ("target", target)):
        if prof is None:
            return FeatureDrift(feature=name, type="missing", notes=[f"column missing in the {side} profile"])
    assert base is not None and target is not None
    override = params.column_types.get(name)
    result = FeatureDrift(feature=name, type=base.kind)
    if base.kind != target.kind or (override in ("numeric", "categorical") and override != base.kind):
        result.type = "mismatch"
        result.notes.append(f"type mismatch: baseline profile {base.kind}, target profile {target.kind}; not compared")
        return result
    if override in ("datetime", "id", "exclude"):
        result.type = override
        result.notes.append(f"type {override} set by drift.column_types: excluded")
        return result
    if not _has_values(result, base.count, target.count, 0, 0):
        return result
    if isinstance(base, NumericProfile) and isinstance(target, NumericProfile):
        ok = _profile_numeric(result, base, target)
    else:
        ok = _profile_categorical(result, base, target)  # type: ignore[arg-type]
    if ok:
        result.compared = True
        _choose(result, params, available=PROFILE_NUMERIC_TESTS if result.type == "numeric" else None)
    return result


def _profile_numeric(result: FeatureDrift, base: NumericProfile, target: NumericProfile) -> bool:
    try:
        out = numeric_distances(base, target)
    except ValueError as exc:
        result.notes.append(f"{exc}; not compared")
        return False
    if "wasserstein_approx" not in out:
        result.notes.append("the profiles hold no fine histogram (fine_bins = 0); not compared")
        return False
    scale = base.std if base.std > 0 else base.merge(target).std
    wasserstein = out["wasserstein_approx"]
    result.metrics = {
        "ks_statistic": out["ks_approx"],
        "ks_pvalue": ks_pvalue(out["ks_approx"], base.count, target.count),
        "wasserstein": wasserstein,
        "wasserstein_norm": wasserstein / scale if scale > 0 else 0.0,
        "psi": out["psi"],
        "jensenshannon": out["jensenshannon"],
    }
    result.baseline = _numeric_side(base)
    result.target = _numeric_side(target)
    result.histogram = {
        "kind": "numeric",
        "edges": base.edges.tolist(),
        "baseline": base.hist.tolist(),
        "target": target.hist.tolist(),
    }
    result.notes.append("from profiles: KS and Wasserstein are approximate (fine histogram); no energy distance")
    _numeric_notes(result, base, target, base.infinite, target.infinite)
    return True


def _profile_categorical(result: FeatureDrift, base: CategoricalProfile, target: CategoricalProfile) -> bool:
    labels, b, t = aligned_counts(base, target)
    result.metrics = categorical_metrics(base, target)
    result.metrics["distinct_baseline"] = float(len(base.counts))
    result.metrics["distinct_target"] = float(len(target.counts))
    result.baseline = _categorical_side(base)
    result.target = _categorical_side(target)
    result.new_categories = [c for c, n in zip(labels, b, strict=True) if n == 0]
    result.gone_categories = [c for c, n in zip(labels, t, strict=True) if n == 0]
    result.histogram = _category_histogram(labels, b, t)
    _categorical_notes(result, b, t)
    return True


def _compare_features(
    names: list[str],
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    types: dict[str, str],
    type_notes: dict[str, list[str]],
    params: DriftParams,
) -> list[tuple[FeatureDrift, _Prepared | None]]:
    """Compare every feature; big tables use a few threads (numpy's sorts release the GIL)."""

    def one(name: str) -> tuple[FeatureDrift, _Prepared | None]:
        return _compare_feature(name, baseline, target, types.get(name), type_notes.get(name, []), params)

    workers = min(MAX_THREADS, os.cpu_count() or 1, len(names))
    if workers <= 1 or len(baseline) + len(target) < PARALLEL_MIN_ROWS:
        return [one(name) for name in names]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, names))


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


def _resolve_features(
    baseline: pd.DataFrame, target: pd.DataFrame, features: list[str] | None, time_column: str | None
) -> tuple[list[str], list[str]]:
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


def _compare_feature(
    name: str,
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    ctype: str | None,
    type_notes: list[str],
    params: DriftParams,
) -> tuple[FeatureDrift, _Prepared | None]:
    for side, df in (("baseline", baseline), ("target", target)):
        if name not in df.columns:
            note = f"column missing in the {side}; not compared"
            return FeatureDrift(feature=name, type="missing", notes=[note]), None
    assert ctype is not None
    result = FeatureDrift(feature=name, type=ctype, notes=list(type_notes))
    if ctype not in ("numeric", "categorical"):
        if not any("excluded" in n for n in result.notes):
            result.notes.append(f"{ctype} column: excluded")
        return result, None
    prep = _Prepared(name, ctype, baseline[name], target[name])
    ok = _compare_numeric(prep, result, params) if ctype == "numeric" else _compare_categorical(prep, result)
    if not ok:
        return result, None
    result.compared = True
    _choose(result, params)
    return result, prep


def _assemble(
    results: list[FeatureDrift],
    coefficient: Coefficient,
    over_time: OverTime | None,
    notes: list[str],
    rows: tuple[int, int],
    params: DriftParams,
) -> DriftReport:
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
            "importance": f"permutation (drop in ROC AUC on up to {IMPORTANCE_ROWS} held-out rows, 3 repeats), "
            "negatives as 0, normalised to sum 1",
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
