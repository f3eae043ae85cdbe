"""What the drift engine returns: per-feature results, drift over time, the report, and their JSON form.

:class:`FeatureDrift` holds one feature's test, statistic, threshold, decision and every other
statistic; :class:`DriftReport` holds them all with the dataset-level decision. The test names
and their labels (``TEST_LABEL``), which tests give p-values (``PVALUE_TESTS``) and which metric
each test compares with its threshold (``TEST_METRIC``) are defined here, with
:func:`json_safe`, which turns any result into strict JSON data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

NUMERIC_TESTS = ("ks", "wasserstein", "energy", "psi", "jensenshannon")
CATEGORICAL_TESTS = ("chi2", "jensenshannon", "psi", "euclidean")
PVALUE_TESTS = frozenset({"ks", "chi2"})
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
class DriftReport:
    """Result of :func:`helpers.stats.compare.compare`.

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
