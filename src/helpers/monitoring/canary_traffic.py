"""The canary's traffic in one monitoring window: its captured rows and feedback, read once.

``driftgate monitor`` reports what the canary did (:func:`canary_window`, for the summary, the
history and the dashboard) and judges it (:func:`canary_performance`, for the automatic
rollback in :mod:`helpers.monitoring.auto_rollback`); both work on one :class:`CanaryTraffic`,
so the window's canary rows are read, joined with feedback and estimated once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from helpers.core.config import Params
from helpers.core.errors import DataError, RegistryError
from helpers.core.paths import capture_dir_for
from helpers.modeling.captures import join_feedback, read_captures, read_feedback
from helpers.modeling.metrics import metrics
from helpers.modeling.performance_estimation import estimate
from helpers.monitoring.estimates import allowed_limit, judge_estimate
from helpers.registry import store
from helpers.registry.classes import coerce_labels, probabilities
from helpers.registry.estimates import version_estimator
from helpers.stats.estimation import Estimate

CANARY = "canary"


@dataclass
class VersionEstimates:
    """A canary version's estimated metrics on its rows, with its estimator (None, and why, without one)."""

    metrics: dict[str, Estimate]
    estimator: Any
    note: str


@dataclass
class CanaryTraffic:
    """Every row answered in the role ``canary`` in a window, and the store's feedback since its start."""

    rows: pd.DataFrame
    feedback: pd.DataFrame
    _estimates: dict[str, VersionEstimates] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, params: Params, window: Any) -> CanaryTraffic | None:
        """The canary's traffic in ``window``, or None when no captured row has the role ``canary``."""
        root, name = capture_dir_for(params), params.mlflow.model_name
        rows = read_captures(root, name, window.start, window.end, roles=(CANARY,))
        if rows.empty:
            return None
        return cls(rows, read_feedback(root, name, window.start, None))

    @property
    def most_answered(self) -> str:
        """The version that answered most canary rows."""
        return str(self.rows["model_version"].astype(str).value_counts().index[0])

    def of(self, version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``version``'s canary rows, and those of them with feedback (a ``label`` column)."""
        rows = self.rows.loc[self.rows["model_version"].astype(str) == version].reset_index(drop=True)
        labelled = join_feedback(rows, self.feedback)
        return rows, labelled.loc[labelled["label"].notna()]

    def estimates(self, params: Params, version: str) -> VersionEstimates:
        """``version``'s estimated metrics on its canary rows (computed once per version)."""
        if version not in self._estimates:
            self._estimates[version] = _estimate(params, version, self.of(version)[0])
        return self._estimates[version]


def _estimate(params: Params, version: str, rows: pd.DataFrame) -> VersionEstimates:
    try:
        mv = store.get_version(store.connect(params), params.mlflow.model_name, version)
        estimator, note = version_estimator(mv.run_id)
    except RegistryError as exc:
        return VersionEstimates({}, None, str(exc))
    if estimator is None:
        return VersionEstimates({}, None, note)
    try:
        return VersionEstimates(estimate(estimator, rows, confidence=params.monitor.confidence), estimator, note)
    except DataError as exc:
        return VersionEstimates({}, estimator, str(exc))


def canary_window(params: Params, traffic: CanaryTraffic) -> dict[str, Any]:
    """What the canary did in the window, for the monitoring summary and history: the version
    that answered most canary rows, its rows and labelled rows, ``monitor.metric``, its realized metrics (on the
    labelled rows) and its estimated metrics (its own estimator; ``{}`` when it has none).
    Independent of ``serve.canary`` and of the alias, which an ended canary no longer has."""
    version = traffic.most_answered
    rows, labelled = traffic.of(version)
    estimated = traffic.estimates(params, version).metrics
    return {"version": version, "rows": len(rows), "labelled_rows": len(labelled), "metric": params.monitor.metric,
            "realized": realized_metrics(params, version, labelled) if len(labelled) else {},
            "estimated": {metric: e.to_dict() for metric, e in estimated.items()}}


def canary_version(client: Any, params: Params) -> str | None:
    """The version ``serve.canary`` names now (an alias or a version number), or None."""
    canary = params.serve.canary
    if canary is None:
        return None
    if canary.alias.isdigit():
        return canary.alias
    mv = store.version_with_alias(client, params.mlflow.model_name, canary.alias)
    return None if mv is None else str(mv.version)


def canary_performance(params: Params, traffic: CanaryTraffic | None,
                       reference: dict[str, float]) -> dict[str, Any] | None:
    """The live metric of the version ``serve.canary`` names, on its rows of the window, judged
    against the champion's limit (``reference``: the champion's test metrics); None without a
    canary or with too few canary rows to judge."""
    if params.serve.canary is None or traffic is None:
        return None
    version = canary_version(store.connect(params), params)
    if version is None:
        return None
    rows, labelled = traffic.of(version)
    if len(rows) < max(params.monitor.min_rows, 1):
        return None
    metric = params.monitor.metric
    found = {"version": version, "rows": len(rows), "labelled_rows": len(labelled), "metric": metric}
    if len(labelled) >= params.monitor.min_labelled_rows:
        return {**found, **_judge_realized(params, version, labelled, reference)}
    got = traffic.estimates(params, version)
    if metric not in got.metrics:
        return {**found, "judged_on": None, "degraded": False,
                "reason": f"canary v{version}: no estimate ({got.note})"}
    judged = judge_estimate(metric, got.metrics[metric], len(rows), len(labelled),
                            _Reference(reference, got.estimator), params)
    return {**found, **judged}


def realized_metrics(params: Params, version: str, labelled: pd.DataFrame) -> dict[str, float]:
    """The metrics of ``version``'s captured predictions on ``labelled`` rows (their ``label``)."""
    task = params.data.task
    classes = store.logged_classes(f"models:/{params.mlflow.model_name}/{version}") \
        if task == "classification" else None
    if classes:
        truth = coerce_labels(labelled["label"], classes).to_numpy()
        return metrics(task, truth, labelled["prediction"].to_numpy(), probabilities(labelled, classes),
                       classes=classes)
    return metrics(task, labelled["label"].to_numpy(dtype=float), labelled["prediction"].to_numpy(dtype=float))


class _Reference:
    """What :func:`helpers.monitoring.estimates.judge_estimate` reads of a monitored version."""

    def __init__(self, test_metrics: dict[str, float], estimator: Any) -> None:
        self.test_metrics, self.estimator = test_metrics, estimator


def _judge_realized(params: Params, version: str, labelled: pd.DataFrame,
                    reference: dict[str, float]) -> dict[str, Any]:
    task, metric = params.data.task, params.monitor.metric
    got = realized_metrics(params, version, labelled)
    if metric not in got or metric not in reference:
        return {"judged_on": None, "degraded": False, "reason": f"{metric} not available for comparison"}
    limit, lower_is_better = allowed_limit(reference[metric], task, metric, params.monitor.max_degradation)
    degraded = got[metric] > limit if lower_is_better else got[metric] < limit
    word = "worse than" if degraded else "within"
    return {"judged_on": "realized", "degraded": bool(degraded), "value": got[metric], "limit": limit,
            "reason": f"{metric} {got[metric]:.4g} on {len(labelled)} labelled canary rows, {word} the allowed "
                      f"{limit:.4g} (champion's test {metric} {reference[metric]:.4g} with "
                      f"{params.monitor.max_degradation:.0%} tolerance)"}
