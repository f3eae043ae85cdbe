"""Estimated performance of a monitoring window, beside the realized one, and which one is judged.

Every window gets ``performance.estimated.<metric>`` (``value``, ``lower``, ``upper``) from the
champion's performance estimator (CBPE for a classifier, DLE for a regressor; fitted on its
held-out rows at training time). Where feedback arrived, ``performance.realized.<metric>``
holds the realized ``value`` on the labelled rows, their count, and ``inside_band``: whether it
fell inside the band estimated for those same rows; ``performance.band_coverage`` counts them.

``monitor.max_degradation`` applies to the realized ``monitor.metric`` when at least
``monitor.min_labelled_rows`` rows have feedback, else to its estimate;
``performance.judged_on`` says which (``realized``, ``estimated``, or null: neither exists).

Example
-------
>>> perf = with_estimates(perf, captured, labelled, champion, params)  # doctest: +SKIP
>>> perf["judged_on"], perf["estimated"]["rmse"]  # doctest: +SKIP
('estimated', {'value': 96.2, 'lower': 89.2, 'upper': 102.8})
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers.core.config import KNOWN_METRICS, Params
from helpers.core.errors import DataError
from helpers.modeling.performance_estimation import PerformanceEstimator, estimate
from helpers.stats.estimation import Estimate


def with_estimates(perf: dict[str, Any], captured: Any, labelled: pd.DataFrame, champion: Any,
                   params: Params) -> dict[str, Any]:
    """``perf`` (the realized performance of the window, :func:`helpers.monitoring.monitor.performance`)
    with the estimates, the realized metrics beside them, and the judgement on the one that applies.

    ``champion`` is the monitored :class:`~helpers.monitoring.monitor.Champion` (its ``estimator``,
    ``estimator_note`` and ``test_metrics``)."""
    perf = {**perf, "estimated": {}, "realized": {}, "judged_on": "realized" if perf.get("rows") else None}
    estimator: PerformanceEstimator | None = getattr(champion, "estimator", None)
    if estimator is None:
        perf["estimate_note"] = getattr(champion, "estimator_note", "") or "no performance estimator for this model"
        return perf
    if not isinstance(captured, pd.DataFrame):
        perf["estimate_note"] = "estimated performance needs the captured rows (compute.scheduler: pandas)"
        return perf
    confidence = params.monitor.confidence
    try:
        estimated = estimate(estimator, captured, confidence=confidence)
        on_labelled = estimate(estimator, labelled, confidence=confidence) if len(labelled) else {}
    except DataError as exc:
        perf["estimate_note"] = str(exc)
        return perf
    perf["estimated"] = {name: e.to_dict() for name, e in estimated.items()}
    perf["estimate"] = {**estimator.describe(), "confidence": confidence, "rows": len(captured)}
    perf["realized"] = realized_beside(perf.get("metrics") or {}, on_labelled, len(labelled))
    inside = [r["inside_band"] for r in perf["realized"].values()]
    perf["band_coverage"] = {"inside": sum(inside), "metrics": len(inside),
                             "share": sum(inside) / len(inside) if inside else None}
    metric = params.monitor.metric
    if len(labelled) >= params.monitor.min_labelled_rows or metric not in estimated:
        return perf
    return {**perf, **judge_estimate(metric, estimated[metric], len(captured), len(labelled), champion, params)}


def realized_beside(realized: dict[str, float], estimated: dict[str, Estimate], rows: int) -> dict[str, Any]:
    """Each realized metric that has an estimate on the same rows: value, rows, inside the band."""
    return {name: {"value": float(value), "rows": rows, "inside_band": estimated[name].covers(float(value)),
                   "estimated_on_these_rows": estimated[name].to_dict()}
            for name, value in realized.items() if name in estimated}


def allowed_limit(reference: float, task: str, metric: str, allowed: float) -> tuple[float, bool]:
    """The worst value ``metric`` may take (``allowed`` relative worsening of ``reference``),
    and whether lower is better."""
    lower_is_better = KNOWN_METRICS[task][metric] == "lower"
    return (reference * (1 + allowed) if lower_is_better else reference * (1 - allowed)), lower_is_better


def judge_estimate(metric: str, got: Estimate, rows: int, labelled: int, champion: Any,
                   params: Params) -> dict[str, Any]:
    """``degraded``, ``limit``, ``reference`` and ``reason`` judged on the estimated ``metric``."""
    why = (f"{labelled} rows with feedback, fewer than monitor.min_labelled_rows={params.monitor.min_labelled_rows}")
    reference = champion.test_metrics.get(metric)
    if reference is None:
        return {"judged_on": "estimated", "degraded": False,
                "reason": f"estimated {metric} {got.value:.4g} ({why}); no champion test {metric} to compare with"}
    allowed = params.monitor.max_degradation
    limit, lower_is_better = allowed_limit(reference, params.data.task, metric, allowed)
    degraded = got.value > limit if lower_is_better else got.value < limit
    word = "worse than" if degraded else "within"
    reason = (f"estimated {metric} {got.value:.4g} (band {got.lower:.4g}..{got.upper:.4g} at "
              f"{params.monitor.confidence:.0%}) on {rows} captured rows ({why}), {word} the allowed {limit:.4g} "
              f"(champion's test {metric} {reference:.4g} with {allowed:.0%} tolerance)")
    calibration = (getattr(champion, "estimator", None) and champion.estimator.calibration) or {}
    if calibration.get("poor"):
        reason += (f"; calibration is poor (ECE {calibration['ece']:.3f} above {calibration['threshold']:.3f}): "
                   "treat the estimate with caution")
    return {"judged_on": "estimated", "degraded": bool(degraded), "limit": limit, "reference": {metric: reference},
            "reason": reason}
