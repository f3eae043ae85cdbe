"""A release: every gate's result, the decision, and moving ``champion`` under the release lock.

Every decision is recorded as ``driftgate.*`` tags on the model version (decision, reason,
time, gate results, version test, champion before, release page).

Example
-------
>>> results = gate_results(params, evaluation, test, investigate=None, drift=None, smoke=smoke)  # doctest: +SKIP
>>> release_version(client, params, "4", results, test, rows=rows).decision  # doctest: +SKIP
'promoted'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from helpers.core import catalogue as names
from helpers.core.catalogue import CHAMPION
from helpers.core.config import Params
from helpers.core.times import utc_now_iso
from helpers.registry import gates, store
from helpers.registry.gates import BLOCKED, PROMOTED, WAITING, GateResult
from helpers.registry.lock import release_lock
from helpers.registry.version_test import VersionTest, compare_versions


def gate_results(
    params: Params, evaluation: dict[str, Any], test: VersionTest, *,
    investigate: dict[str, Any] | None, drift: dict[str, Any] | None, smoke: GateResult,
    approval: dict[str, Any] | None = None,
) -> list[GateResult]:
    """Every gate configured in ``params.gates``, in a fixed order.

    ``evaluation`` is the train step's summary (its ``metrics`` by row set); ``investigate``
    and ``drift`` the upstream summaries (None when the step did not run).
    """
    rules = params.gates
    metrics = evaluation.get("metrics", {})
    results = gates.metric_gates(metrics.get("test", {}), rules.metrics, "test")
    results += gates.metric_gates(metrics.get("current", {}), rules.current_metrics, "current")
    results.append(champion_result(params, test))
    results.append(gates.validation_gate(investigate, rules.require_validation))
    results.append(gates.drift_gate(drift, rules.block_on_drift))
    results.append(smoke)
    results.append(gates.approval_gate(rules.require_approval, test.challenger_version, approval))
    return results


def champion_result(params: Params, test: VersionTest) -> GateResult:
    """The champion gate for a version test (fails when the champion could not be scored)."""
    if test.champion_error:
        return GateResult(gates.CHAMPION_GATE, False,
                          f"champion v{test.champion_version} cannot score the {test.rows} rows "
                          f"({test.champion_error}); compare by hand, then roll back or re-release")
    if test.waiting:  # compare_on shadow: too little live evidence yet, neither pass nor fail
        return GateResult(gates.CHAMPION_GATE, False, test.waiting, pending=True)
    result = gates.champion_gate(test.challenger, test.champion, params.gates.champion,
                                 params.data.task, test.champion_version)
    if test.estimated:  # captured rows without enough feedback: estimates, no labels
        method = "CBPE" if params.data.task == "classification" else "DLE"
        basis = f"{test.rows} rows without enough feedback"
        result.reason = f"by ESTIMATED performance ({method}, {basis}): {result.reason}"
    if test.shadow and test.champion is not None:
        facts = test.shadow
        result = gates.with_agreement(result, facts.get("agreement"), params.gates.champion.min_agreement,
                                      str(facts.get("agreement_measure", "")), test.n_rows)
    return result


@dataclass
class Outcome:
    """A release decision and everything it was based on."""

    decision: str  # promoted | blocked | waiting
    reason: str
    model: str
    version: str
    champion_before: str | None
    champion_after: str | None
    previous: str | None
    results: list[GateResult]
    test: VersionTest
    decided_at: str
    run_id: str = ""
    page: str = ""
    tracking_uri: str = ""
    rechecked_from: str | None = None  # champion version the gates first compared with, when it changed
    approval: dict[str, Any] | None = None
    lineage: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """The decision as a small two-column table for notebooks."""
        rows = {
            "decision": f"{self.decision} v{self.version}",
            "reason": self.reason,
            "champion": f"{_v(self.champion_before)} -> {_v(self.champion_after)}",
            "previous": _v(self.previous),
            "decided at": self.decided_at,
        }
        if self.decision == WAITING:
            rows["next"] = f"driftgate approve {self.version}"
        return pd.DataFrame({"value": rows}).rename_axis(self.model)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``gates`` and ``version_test`` keys for the step summary)."""
        out = asdict(self)
        out["gates"] = [r.to_dict() for r in self.results]
        out["version_test"] = self.test.to_dict()
        del out["results"], out["test"]
        return out


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


def release_version(
    client: Any, params: Params, version: str, results: list[GateResult], test: VersionTest, *,
    rows: pd.DataFrame, run_id: str = "", page: str = "", approval: dict[str, Any] | None = None,
    expect: Callable[[Any], None] | None = None,
) -> Outcome:
    """Decide on ``version`` from its gate ``results`` and, when all pass, make it champion.

    Runs under the registry's release lock, so racing releases take turns. Inside the lock
    the champion is read again: if it changed since ``test`` was made (another release won),
    both versions are scored again on ``rows`` and the champion gate is redone, so a release
    is always judged against the champion it replaces; so is a champion gate waiting for live
    evidence (``compare_on: shadow``), on the fresh ``rows`` given. ``expect(client)`` may raise to refuse
    the release after the lock is taken (approval checks the version still waits). The
    decision is recorded as tags on the version.
    """
    name = params.mlflow.model_name
    rules = params.gates
    with release_lock(client, name, wait=rules.lock_timeout, stale_after=rules.lock_stale_after) as lease:
        if expect is not None:
            expect(client)
        before_mv = store.version_with_alias(client, name, CHAMPION)
        before = None if before_mv is None else str(before_mv.version)
        rechecked_from = None
        changed = before != test.champion_version
        if changed or test.waiting:  # another release won, or the live evidence may have grown
            rechecked_from = (test.champion_version or "none") if changed else None
            test = compare_versions(client, params, version, rows, test.rows)
            results = [champion_result(params, test) if r.gate == gates.CHAMPION_GATE else r for r in results]
        decision, reason = _explain(results, before, rechecked_from)
        previous = None
        if decision == PROMOTED:
            lease.check()
            previous = store.promote(client, name, version)
        after_mv = store.version_with_alias(client, name, CHAMPION)
        mv = client.get_model_version(name, version)
        outcome = Outcome(
            decision=decision, reason=reason, model=name, version=str(version), champion_before=before,
            champion_after=None if after_mv is None else str(after_mv.version), previous=previous,
            results=results, test=test, decided_at=utc_now_iso(), run_id=run_id, page=page,
            tracking_uri=params.tracking_uri, rechecked_from=rechecked_from, approval=approval,
            lineage={k: v for k, v in mv.tags.items() if k in _LINEAGE_SHOWN},
        )
        store.tag_version(client, name, str(version), decision_tags(outcome))
    return outcome


_LINEAGE_SHOWN = (names.LINEAGE_RUN_ID, names.LINEAGE_RUN_DIR, names.LINEAGE_GIT_COMMIT, names.LINEAGE_GIT_DIRTY,
                  names.LINEAGE_DATA_PATH, names.LINEAGE_DATA_SHA256, names.LINEAGE_PARAMS_HASH,
                  names.LINEAGE_BASELINE_WINDOW, names.LINEAGE_CURRENT_WINDOW, names.LINEAGE_REPORTS,
                  names.LINEAGE_MLFLOW_RUN_ID)


def _explain(results: list[GateResult], champion: str | None, rechecked_from: str | None) -> tuple[str, str]:
    decision, reason = gates.verdict(results)
    if champion is None and decision != BLOCKED:
        reason = f"first release (no champion yet), judged by the absolute gates only: {reason}"
    if rechecked_from is not None:
        reason += (f" (the champion changed from v{rechecked_from} to v{champion or '-'} while this release "
                   "waited its turn: compared again with the new champion)")
    return decision, reason


def decision_tags(outcome: Outcome) -> dict[str, str]:
    """The tags recording ``outcome`` on its model version."""
    tags = {
        names.DECISION: outcome.decision,
        names.REASON: outcome.reason[:20000],
        names.DECIDED_AT: outcome.decided_at,
        names.DECISION_RUN: outcome.run_id,
        names.GATES: json.dumps([r.to_dict() for r in outcome.results]),
        names.VERSION_TEST: json.dumps(outcome.test.to_dict()),
        names.CHAMPION_BEFORE: outcome.champion_before or "",
        names.RELEASE_PAGE: outcome.page,
    }
    if outcome.approval:
        tags.update({names.APPROVED_BY: outcome.approval["by"], names.APPROVED_AT: outcome.approval["at"],
                     names.APPROVAL_NOTE: outcome.approval.get("note") or ""})
    return tags
