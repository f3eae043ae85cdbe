"""Comparing one feature: its statistics, per-side summaries, plot histogram and notes.

:func:`compare_feature` compares a feature from the rows of both sides (exact statistics; in two
steps, :func:`start_feature` and :func:`finish_feature`, so the drift coefficient can be fitted
while the numeric features are sorted),
:func:`compare_profile_feature` from two profiles (KS and Wasserstein from the fine histograms,
no energy distance). Both fill a :class:`~helpers.stats.results.FeatureDrift` and choose its
test (:func:`helpers.stats.selection.choose_test`); the decision comes later, once p-values are
corrected over all features (:func:`helpers.stats.selection.decide`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.config import DriftParams
from helpers.stats.column_types import FEW_VALUES
from helpers.stats.profile import CategoricalProfile, ColumnProfile, NumericProfile
from helpers.stats.profiling import baseline_edges, category_counts, numeric_array, profile_numeric, split_finite
from helpers.stats.results import FeatureDrift
from helpers.stats.selection import PROFILE_NUMERIC_TESTS, choose_test
from helpers.stats.statistics import (
    NumericBase,
    aligned_counts,
    categorical_metrics,
    ks_pvalue,
    numeric_distances,
    numeric_metrics,
)

PLOT_CATEGORIES = 20  # categories drawn in a bar chart; the rest are summed as "(other)"
FiniteSide = tuple[np.ndarray, int, int]  # finite values, number missing, number infinite


@dataclass
class Prepared:
    """A compared feature, ready for the coefficient and for drift over time."""

    name: str
    ctype: str
    base_series: pd.Series
    target_series: pd.Series
    numeric_base: NumericBase | None = None
    categorical_base: CategoricalProfile | None = None
    labels: list[str] = field(default_factory=list)
    finite: tuple[FiniteSide, FiniteSide] | None = None  # numeric, between start and finish


# --------------------------------------------------------------------------- from rows


def compare_feature(
    name: str,
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    ctype: str | None,
    type_notes: list[str],
    params: DriftParams,
) -> tuple[FeatureDrift, Prepared | None]:
    """Compare one feature from the rows of both sides; the prepared rows when it was compared."""
    result, prep = start_feature(name, baseline, target, ctype, type_notes, params)
    if prep is not None:
        finish_feature(result, prep, params)
    return result, prep


def start_feature(
    name: str,
    baseline: pd.DataFrame,
    target: pd.DataFrame,
    ctype: str | None,
    type_notes: list[str],
    params: DriftParams,
) -> tuple[FeatureDrift, Prepared | None]:
    """The quick part of :func:`compare_feature`: whether the feature can be compared (the
    prepared rows when it can) and, for a categorical feature, every statistic. A numeric
    feature keeps its finite values in ``prep.finite`` for :func:`finish_feature` (the sorts)."""
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
    prep = Prepared(name, ctype, baseline[name], target[name])
    ok = _start_numeric(prep, result) if ctype == "numeric" else _compare_categorical(prep, result)
    if not ok:
        return result, None
    if ctype == "categorical":
        result.compared = True
        choose_test(result, params)
    return result, prep


def finish_feature(result: FeatureDrift, prep: Prepared, params: DriftParams) -> None:
    """The rest of :func:`compare_feature` after :func:`start_feature` (numeric statistics)."""
    if prep.finite is None:
        return
    _compare_numeric(prep, result, params)
    result.compared = True
    choose_test(result, params)


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


def _start_numeric(prep: Prepared, result: FeatureDrift) -> bool:
    """Both sides as finite floats in ``prep.finite``; False (with notes) when they cannot be."""
    kinds = {"baseline": _side_kind(prep.base_series), "target": _side_kind(prep.target_series)}
    arrays: dict[str, FiniteSide] = {}
    for side, series in (("baseline", prep.base_series), ("target", prep.target_series)):
        other = kinds["target" if side == "baseline" else "baseline"]
        values, note = _numeric_values(series, side, other)
        if note:
            result.notes.append(note)
        if values is None:
            result.type = "mismatch"
            return False
        arrays[side] = split_finite(values)
    (fb, _, inf_b), (ft, _, inf_t) = arrays["baseline"], arrays["target"]
    if not _has_values(result, fb.size, ft.size, inf_b, inf_t):
        return False
    prep.finite = (arrays["baseline"], arrays["target"])
    return True


def _compare_numeric(prep: Prepared, result: FeatureDrift, params: DriftParams) -> None:
    assert prep.finite is not None
    (fb, miss_b, inf_b), (ft, miss_t, inf_t) = prep.finite
    prep.finite = None  # the sorted copies below replace them
    a, b = np.sort(fb), np.sort(ft)
    edges = baseline_edges(a, params.bins)
    base = NumericBase(a, profile_numeric(a, miss_b, inf_b, edges, fine_bins=0, is_sorted=True))
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


def _compare_categorical(prep: Prepared, result: FeatureDrift) -> bool:
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
    prep.categorical_base = base
    prep.labels = _fill_categorical(result, base, target)
    return True


# --------------------------------------------------------------------------- from profiles


def compare_profile_feature(
    name: str, base: ColumnProfile | None, target: ColumnProfile | None, params: DriftParams
) -> FeatureDrift:
    """Compare one feature from its baseline and target profiles (None: missing on that side)."""
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
        choose_test(result, params, available=PROFILE_NUMERIC_TESTS if result.type == "numeric" else None)
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
    _fill_categorical(result, base, target)
    return True


def _fill_categorical(result: FeatureDrift, base: CategoricalProfile, target: CategoricalProfile) -> list[Any]:
    """Metrics, sides, new and vanished categories, histogram and notes of a categorical
    comparison; returns the aligned category labels."""
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
    return labels


# --------------------------------------------------------------------------- summaries, histograms and notes


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
