"""Automatic rollback (``monitor.rollback: true``): what ``driftgate rollback`` does by hand,
done by ``driftgate monitor`` when the live metric is worse than ``monitor.max_degradation`` allows.

* **The champion degrades** (the monitoring window's ``performance.degraded``: the realized
  ``monitor.metric`` when at least ``monitor.min_labelled_rows`` rows have feedback, else the
  estimated one, as ``performance.judged_on`` says): ``champion`` goes back to ``previous``
  through :func:`helpers.registry.rollback.rollback` (the reason kept as tags, a rollback page),
  unless that would roll back twice in a row (the champion is the version the last rollback
  restored: no release came between) or restore a version that was itself rolled back.
* **The canary degrades** (``serve.canary``: the window's rows answered in the role ``canary``
  by the canary's version, judged the same way and against the same limit as the champion, each
  version's estimate by its own estimator): the canary ends instead: its alias is removed
  (the service answers every request with the champion again) and the version is tagged as
  rolled back, so it never becomes a rollback target. A canary given as a version number has no
  alias to remove: the version is tagged and the action says to drop ``serve.canary``.

Every action sends an alert (``kind: rollback``) through the sinks, and is returned for the
monitoring summary's ``rollback`` key.

Example
-------
>>> auto_rollback(params, summary, window, champion.test_metrics)  # doctest: +SKIP
[{'action': 'rolled back', 'version': '5', 'to_version': '4', ...}]
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pandas as pd

from helpers.core import catalogue as names
from helpers.core.catalogue import ALERTS_FILE, CHAMPION, PREVIOUS
from helpers.core.config import Params
from helpers.core.errors import DataError, RegistryError
from helpers.core.paths import capture_dir_for
from helpers.core.times import utc_now_iso, utc_stamp
from helpers.modeling.captures import join_feedback, read_captures, read_feedback
from helpers.modeling.metrics import metrics
from helpers.modeling.performance_estimation import estimate
from helpers.monitoring.alerts import send_alert
from helpers.monitoring.estimates import allowed_limit, judge_estimate
from helpers.registry import store
from helpers.registry.classes import coerce_labels, probabilities
from helpers.registry.estimates import version_estimator
from helpers.registry.lock import release_lock
from helpers.registry.rollback import ROLLED_BACK, Rollback, rollback
from helpers.reports.release_page import write_rollback_page

BY = "driftgate monitor (monitor.rollback)"
CANARY = "canary"


def auto_rollback(params: Params, summary: dict[str, Any], window: Any,
                  reference: dict[str, float]) -> list[dict[str, Any]]:
    """Act on one monitoring window (``summary`` of :func:`helpers.monitoring.monitor.run_monitor`,
    its ``window``, the champion's test metrics as ``reference``): end a degrading canary, roll a
    degrading champion back. Returns one record per action taken or refused (empty: all well)."""
    actions = []
    canary = canary_performance(params, window, reference)
    if canary is not None and canary["degraded"]:
        actions.append(end_canary(params, canary))
    perf = summary.get("performance") or {}
    if perf.get("degraded") and perf.get("judged_on"):
        actions.append(roll_back_champion(params, summary))
    return actions


# --------------------------------------------------------------------------- the champion


def roll_back_champion(params: Params, summary: dict[str, Any]) -> dict[str, Any]:
    """Roll the champion back when allowed (see :func:`refusal`); alert either way."""
    perf = summary["performance"]
    reason = (f"monitoring window {summary['window'][0]}..{summary['window'][1]}: live {perf['judged_on']} "
              f"performance degraded: {perf['reason']}")
    client = store.connect(params)
    refused = refusal(client, params.mlflow.model_name)
    if refused:
        record = {"action": "refused", "version": summary["champion"], "reason": reason, "refused": refused}
        return _alerted(params, record, f"NOT rolled back v{summary['champion']}: {refused}; {reason}")
    try:
        done = rollback(params, reason=reason, by=BY)
    except RegistryError as exc:
        record = {"action": "refused", "version": summary["champion"], "reason": reason, "refused": str(exc)}
        return _alerted(params, record, f"NOT rolled back v{summary['champion']}: {exc}")
    record = {"action": "rolled back", "version": done.from_version, "to_version": done.to_version,
              "previous": done.previous, "reason": reason, "page": done.page}
    return _alerted(params, record, f"rolled back v{done.from_version} -> v{done.to_version}: {reason}")


def refusal(client: Any, name: str) -> str:
    """Why the champion must not be rolled back automatically now ("" when it may): no previous
    version, no release since the last rollback, or a previous version that was rolled back."""
    champion = store.version_with_alias(client, name, CHAMPION)
    previous = store.version_with_alias(client, name, PREVIOUS)
    last = last_rollback(client, name)
    if champion is not None and last and str(last.get("to_version")) == str(champion.version):
        return (f"champion v{champion.version} was restored by the rollback of v{last.get('from_version')} at "
                f"{last.get('at')} and no release came since: never two rollbacks in a row")
    if champion is None or previous is None:
        return "no champion and previous version to roll back between"
    if previous.tags.get(names.DECISION) == ROLLED_BACK:
        return (f"previous v{previous.version} was itself rolled back at {previous.tags.get(names.ROLLED_BACK_AT)} "
                f"({previous.tags.get(names.ROLLBACK_REASON, '')[:200]}): never restore a rolled-back version")
    return ""


def last_rollback(client: Any, name: str) -> dict[str, Any] | None:
    """The last rollback recorded on the registered model (tag ``driftgate.last_rollback``)."""
    text = store.require_model(client, name).tags.get(names.LAST_ROLLBACK)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- the canary


def canary_version(client: Any, params: Params) -> str | None:
    """The version ``serve.canary`` names now (an alias or a version number), or None."""
    canary = params.serve.canary
    if canary is None:
        return None
    if canary.alias.isdigit():
        return canary.alias
    mv = store.version_with_alias(client, params.mlflow.model_name, canary.alias)
    return None if mv is None else str(mv.version)


def canary_performance(params: Params, window: Any, reference: dict[str, float]) -> dict[str, Any] | None:
    """The canary's live metric in ``window`` judged against the champion's limit, or None
    (no canary, or too few canary rows to judge)."""
    if params.serve.canary is None:
        return None
    client = store.connect(params)
    version = canary_version(client, params)
    if version is None:
        return None
    root, name = capture_dir_for(params), params.mlflow.model_name
    rows = read_captures(root, name, window.start, window.end, roles=(CANARY,))
    rows = rows.loc[rows["model_version"].astype(str) == version].reset_index(drop=True)
    if len(rows) < max(params.monitor.min_rows, 1):
        return None
    labelled = join_feedback(rows, read_feedback(root, name, window.start, None))
    labelled = labelled.loc[labelled["label"].notna()]
    metric = params.monitor.metric
    found = {"version": version, "rows": len(rows), "labelled_rows": len(labelled), "metric": metric}
    if len(labelled) >= params.monitor.min_labelled_rows:
        return {**found, **_judge_realized(params, version, labelled, reference)}
    mv = store.get_version(client, name, version)
    estimator, note = version_estimator(mv.run_id)
    try:
        got = estimate(estimator, rows, confidence=params.monitor.confidence) if estimator else {}
    except DataError as exc:
        got, note = {}, str(exc)
    if metric not in got:
        return {**found, "judged_on": None, "degraded": False, "reason": f"canary v{version}: no estimate ({note})"}
    judged = judge_estimate(metric, got[metric], len(rows), len(labelled), _Reference(reference, estimator), params)
    return {**found, **judged}


def canary_window(params: Params, window: Any) -> dict[str, Any] | None:
    """What the canary did in ``window``, for the monitoring summary and history, or None when no
    captured row of the window has the role ``canary``: the version that answered most canary
    rows, its rows and labelled rows, its realized metrics (on the labelled rows) and its
    estimated metrics (its own estimator; ``{}`` when it has none). Independent of ``serve.canary``
    and of the alias, which an ended canary no longer has."""
    root, name = capture_dir_for(params), params.mlflow.model_name
    rows = read_captures(root, name, window.start, window.end, roles=(CANARY,))
    if rows.empty:
        return None
    answered = rows["model_version"].astype(str)
    version = str(answered.value_counts().index[0])
    rows = rows.loc[answered == version].reset_index(drop=True)
    labelled = join_feedback(rows, read_feedback(root, name, window.start, None))
    labelled = labelled.loc[labelled["label"].notna()]
    estimated: dict[str, Any] = {}
    with contextlib.suppress(DataError, RegistryError):  # no estimate: the realized metrics alone
        estimator, _ = version_estimator(store.get_version(store.connect(params), name, version).run_id)
        got = estimate(estimator, rows, confidence=params.monitor.confidence) if estimator else {}
        estimated = {metric: e.to_dict() for metric, e in got.items()}
    return {"version": version, "rows": len(rows), "labelled_rows": len(labelled),
            "realized": realized_metrics(params, version, labelled) if len(labelled) else {},
            "estimated": estimated}


class _Reference:
    """What :func:`helpers.monitoring.estimates.judge_estimate` reads of a monitored version."""

    def __init__(self, test_metrics: dict[str, float], estimator: Any) -> None:
        self.test_metrics, self.estimator = test_metrics, estimator


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


def end_canary(params: Params, canary: dict[str, Any]) -> dict[str, Any]:
    """End a degrading canary: remove its alias, tag its version as rolled back, write a page, alert."""
    client = store.connect(params)
    name, alias, version = params.mlflow.model_name, params.serve.canary.alias, canary["version"]
    reason = f"canary v{version} degraded ({canary['judged_on']}): {canary['reason']}"
    rules = params.gates
    with release_lock(client, name, wait=rules.lock_timeout, stale_after=rules.lock_stale_after) as lease:
        champion = store.version_with_alias(client, name, CHAMPION)
        to_version = "" if champion is None else str(champion.version)
        lease.check()
        removed = not alias.isdigit() and store.version_with_alias(client, name, alias) is not None
        if removed:
            client.delete_registered_model_alias(name, alias)
        done = Rollback(model=name, from_version=version, to_version=to_version, previous=None,
                        reason=reason, by=BY, at=utc_now_iso())
        store.tag_version(client, name, version, {
            names.DECISION: ROLLED_BACK, names.ROLLBACK_REASON: reason, names.ROLLED_BACK_AT: done.at,
            names.ROLLED_BACK_BY: BY, names.ROLLED_BACK_TO: to_version})
    how = (f"alias {alias!r} removed: every request goes to champion v{to_version} again" if removed else
           f"serve.canary.alias names version {alias} directly: remove serve.canary from the params to stop it")
    done.page = str(write_rollback_page(params.outputs_dir / names.RELEASES_DIR /
                                        f"{utc_stamp()}-canary-v{version}.html", done))
    record = {"action": "canary ended", "version": version, "to_version": to_version, "alias": alias,
              "alias_removed": removed, "reason": reason, "how": how, "page": done.page}
    return _alerted(params, record, f"ended the canary v{version} ({how}): {reason}")


def _alerted(params: Params, record: dict[str, Any], text: str) -> dict[str, Any]:
    alert = {"kind": "rollback", "model": params.mlflow.model_name, **record,
             "text": f"Driftgate monitor: {params.mlflow.model_name}: {text}"}
    sent = send_alert(alert, params.alerts, params.outputs_dir / ALERTS_FILE)
    return {**record, "alerts": [{"sink": r.sink, "ok": r.ok, "target": r.target} for r in sent]}
