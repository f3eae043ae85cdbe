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
>>> auto_rollback(params, summary, CanaryTraffic.read(params, window), champion.test_metrics)  # doctest: +SKIP
[{'action': 'rolled back', 'version': '5', 'to_version': '4', ...}]
"""

from __future__ import annotations

import json
from typing import Any

from helpers.core import catalogue as names
from helpers.core.catalogue import ALERTS_FILE, CHAMPION, PREVIOUS
from helpers.core.config import Params
from helpers.core.errors import RegistryError
from helpers.core.times import utc_now_iso, utc_stamp
from helpers.monitoring.alerts import send_alert
from helpers.monitoring.canary_traffic import CanaryTraffic, canary_performance
from helpers.registry import store
from helpers.registry.lock import release_lock
from helpers.registry.rollback import ROLLED_BACK, Rollback, rollback
from helpers.reports.release_page import write_rollback_page

BY = "driftgate monitor (monitor.rollback)"


def auto_rollback(params: Params, summary: dict[str, Any], canary_traffic: CanaryTraffic | None,
                  reference: dict[str, float]) -> list[dict[str, Any]]:
    """Act on one monitoring window (``summary`` of :func:`helpers.monitoring.monitor.run_monitor`,
    the window's canary traffic, the champion's test metrics as ``reference``): end a degrading
    canary, roll a degrading champion back. Returns one record per action taken or refused
    (empty: all well)."""
    actions = []
    canary = canary_performance(params, canary_traffic, reference)
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
