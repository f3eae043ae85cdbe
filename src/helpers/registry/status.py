"""Release status: champion, challenger and previous, each with lineage, metrics and decision.

Example
-------
>>> print(status_text(status(params)))  # doctest: +SKIP
model bike-demand in sqlite:///outputs/mlflow.db
champion   v3  promoted  registered 2026-11-30T10:00:00+00:00
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from helpers.core import catalogue as names
from helpers.core.catalogue import ALIASES
from helpers.core.config import Params
from helpers.core.liveness import ABANDONED, RUNNING, recent_runs
from helpers.registry import store


def status(params: Params) -> dict[str, Any]:
    """Champion, challenger and previous of the configured model, each with its metrics,
    runs, data windows, decision and report paths; JSON-ready."""
    client = store.connect(params)
    name = params.mlflow.model_name
    model = store.require_model(client, name)
    aliases = store.alias_versions(client, name)
    versions = {alias: describe_version(client, name, v) for alias, v in aliases.items() if v is not None}
    last = model.tags.get(names.LAST_ROLLBACK)
    return {
        "model": name,
        "tracking_uri": params.tracking_uri,
        "aliases": aliases,
        "versions": versions,
        "last_rollback": json.loads(last) if last else None,
        "runs": recent_runs(params.outputs_dir),
    }


def describe_version(client: Any, name: str, version: str) -> dict[str, Any]:
    """One version's lineage, metrics and release record."""
    mv = client.get_model_version(name, version)
    tags = dict(mv.tags)
    test = json.loads(tags[names.VERSION_TEST]) if tags.get(names.VERSION_TEST) else None
    return {
        "version": str(mv.version),
        "aliases": list(getattr(mv, "aliases", []) or []),
        "registered_at": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(timespec="seconds"),
        "mlflow_run_id": mv.run_id,
        "run_id": tags.get(names.LINEAGE_RUN_ID),
        "run_dir": tags.get(names.LINEAGE_RUN_DIR),
        "git_commit": tags.get(names.LINEAGE_GIT_COMMIT),
        "params_hash": tags.get(names.LINEAGE_PARAMS_HASH),
        "data": {"path": tags.get(names.LINEAGE_DATA_PATH), "sha256": tags.get(names.LINEAGE_DATA_SHA256),
                 "baseline_window": tags.get(names.LINEAGE_BASELINE_WINDOW),
                 "current_window": tags.get(names.LINEAGE_CURRENT_WINDOW)},
        "metrics": store.run_metrics(client, mv.run_id),
        "version_test": test,
        "decision": tags.get(names.DECISION),
        "decision_reason": tags.get(names.REASON),
        "decided_at": tags.get(names.DECIDED_AT),
        "approved_by": tags.get(names.APPROVED_BY),
        "rollback": ({"reason": tags.get(names.ROLLBACK_REASON), "at": tags.get(names.ROLLED_BACK_AT),
                      "by": tags.get(names.ROLLED_BACK_BY), "to": tags.get(names.ROLLED_BACK_TO)}
                     if tags.get(names.ROLLED_BACK_AT) else None),
        "reports": [p for p in (tags.get(names.LINEAGE_REPORTS) or "").split(",") if p],
        "release_page": tags.get(names.RELEASE_PAGE) or None,
    }


def status_text(info: dict[str, Any]) -> str:
    """:func:`status` as readable lines."""
    lines = [f"model {info['model']} in {info['tracking_uri']}"]
    for alias in ALIASES:
        version = info["aliases"].get(alias)
        if version is None:
            lines.append(f"{alias:<10} -")
            continue
        lines.extend(_version_lines(alias, info["versions"][alias]))
    if info.get("last_rollback"):
        rb = info["last_rollback"]
        lines.append(f"last rollback: v{rb['from_version']} -> v{rb['to_version']} at {rb['at']} by {rb['by']}: "
                     f"{rb['reason']}")
    lines.extend(_run_lines(info.get("runs") or []))
    return "\n".join(lines)


def _run_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The newest run, and every run still running or abandoned (its runner is gone)."""
    shown = [run for i, run in enumerate(runs) if i == 0 or run["status"] in (RUNNING, ABANDONED)]
    lines = []
    for run in shown:
        line = f"run {run['run_id']}: {run['status']}, started {run['start']}"
        if run["status"] == ABANDONED:
            line += f" (its runner stopped without finishing: {run['abandoned']})"
        lines.append(line)
    return lines


def _version_lines(alias: str, v: dict[str, Any]) -> list[str]:
    metrics = ", ".join(f"{k} {val:.4g}" for k, val in sorted(v["metrics"].items())
                        if k.startswith(("test_", "current_")))
    decision = v["decision"] or "not gated yet"
    out = [f"{alias:<10} v{v['version']}  {decision}  registered {v['registered_at']}",
           f"{'':<10} run {v['run_id'] or '-'} (MLflow run {v['mlflow_run_id']}), "
           f"commit {(v['git_commit'] or '-')[:12]}",
           f"{'':<10} data: baseline {v['data']['baseline_window']}, current {v['data']['current_window']}, "
           f"sha256 {(v['data']['sha256'] or '-')[:12]}",
           f"{'':<10} metrics: {metrics or '-'}"]
    if v["version_test"] and v["version_test"].get("champion") is not None:
        test = v["version_test"]
        metric_names = sorted(test["challenger"])
        side = ", ".join(f"{m} {test['challenger'][m]:.4g} vs {test['champion'][m]:.4g}" for m in metric_names)
        out.append(f"{'':<10} version test on {test['rows']} rows vs champion v{test['champion_version']}: {side}")
    if v["decision_reason"]:
        out.append(f"{'':<10} reason: {v['decision_reason']}")
    if v["rollback"]:
        out.append(f"{'':<10} rolled back at {v['rollback']['at']} by {v['rollback']['by']}: {v['rollback']['reason']}")
    for path in [*v["reports"], *([v["release_page"]] if v["release_page"] else [])]:
        out.append(f"{'':<10} report: {path}" + ("" if Path(path).exists() else " (not on this machine)"))
    return out
