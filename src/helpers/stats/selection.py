"""Test selection, thresholds and the per-feature decision.

Test selection (``DriftParams``): ``per_feature`` beats ``numeric_test`` / ``categorical_test``,
which beat ``test``, which beats the ``auto`` rule. The auto rule follows Evidently: p-value tests
(KS, chi-squared) for small samples (``small_sample`` values or fewer; by default on the smaller
side, see ``small_sample_rule``), distances otherwise (Wasserstein divided by the baseline std
for numeric, Jensen-Shannon for categorical). P-value tests drift when the p-value (corrected
by Bonferroni or Benjamini-Hochberg if asked) is below the threshold, distances when the
distance is at or above it.
"""

from __future__ import annotations

from collections.abc import Sequence

from helpers.core.config import DriftParams
from helpers.core.errors import ParamsError
from helpers.stats.results import CATEGORICAL_TESTS, NUMERIC_TESTS, PVALUE_TESTS, TEST_METRIC, FeatureDrift
from helpers.stats.statistics import adjust_pvalues

PROFILE_NUMERIC_TESTS = ("ks", "wasserstein", "psi", "jensenshannon")  # energy needs rows
COLUMN_TYPES = ("numeric", "categorical", "datetime", "id", "exclude")


def check_overrides(params: DriftParams) -> None:
    """Raise ParamsError for an unknown type in ``column_types`` or test in ``per_feature``."""
    for name, ctype in params.column_types.items():
        if ctype not in COLUMN_TYPES:
            raise ParamsError(
                f"drift.column_types.{name}: unknown type {ctype!r}; use one of {', '.join(COLUMN_TYPES)}"
            )
    for name, test in params.per_feature.items():
        if test not in NUMERIC_TESTS + CATEGORICAL_TESTS:
            valid = ", ".join(sorted(set(NUMERIC_TESTS + CATEGORICAL_TESTS)))
            raise ParamsError(f"drift.per_feature.{name}: unknown test {test!r}; use one of {valid}")


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


def choose_test(result: FeatureDrift, params: DriftParams, available: Sequence[str] | None = None) -> None:
    """Set the feature's test, threshold and statistic (``available``: the tests profiles allow)."""
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


def decide(results: list[FeatureDrift], correction: str) -> None:
    """Correct the p-values over the compared features and decide whether each one drifted."""
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
