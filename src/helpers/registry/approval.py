"""Manual approval of a version that passed its gates, and the deployment job's release of it.

A CI pipeline trains with ``gates.require_approval: true``, so a version that passes its gates
waits as ``challenger``; the deployment job (behind a protected environment, where a person
approves) then runs ``driftgate deploy --if-new-version`` (:func:`deploy`). With nothing newer
than the champion it does nothing, so it can also run on a timer.

Example
-------
>>> approve(params, "4", by="alice", note="checked the drift report").decision  # doctest: +SKIP
'promoted'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from helpers.core import catalogue as names
from helpers.core.catalogue import CHALLENGER, CHAMPION
from helpers.core.config import Params
from helpers.core.errors import RegistryError
from helpers.core.times import utc_now_iso, utc_stamp
from helpers.modeling import data as data_mod
from helpers.registry import gates, store
from helpers.registry.audit import current_user, releases_dir
from helpers.registry.gates import BLOCKED, PROMOTED, WAITING, GateResult
from helpers.registry.release import Outcome, release_version
from helpers.registry.version_test import VersionTest, comparison_rows
from helpers.reports.pages import write_index
from helpers.reports.release_page import write_release_page


def approve(params: Params, version: str, *, by: str | None = None, note: str = "") -> Outcome:
    """Approve a version waiting for approval and run its release.

    Its recorded gate results are checked again (every gate but approval must have passed);
    if the champion changed since, the versions are compared again on the params' rows. The
    release page goes to ``<outputs>/releases/``. Raises :class:`RegistryError` for a
    version that does not exist, was never gated, or is not waiting.
    """
    client = store.connect(params)
    name = params.mlflow.model_name
    mv = store.get_version(client, name, version)
    version = str(mv.version)
    _check_waiting(mv.tags, version)
    recorded = _recorded_gates(mv.tags, version)
    failed = [r for r in recorded if r.gate != gates.APPROVAL and not r.passed and not r.pending]
    if failed:
        raise RegistryError(f"v{version}: recorded gates failed ({'; '.join(r.gate for r in failed)}); "
                            "approval cannot override a failed gate")
    approval = {"by": by or current_user(), "at": utc_now_iso(), "note": note}
    results = [r for r in recorded if r.gate != gates.APPROVAL]
    results.append(gates.approval_gate(True, version, approval))
    test = VersionTest.from_dict(json.loads(mv.tags[names.VERSION_TEST]))
    rows = comparison_rows(params, data_mod.check_params_against_data(params), test.rows)
    page = releases_dir(params) / f"{utc_stamp()}-approve-v{version}.html"

    def still_waiting(c: Any) -> None:
        _check_waiting(c.get_model_version(name, version).tags, version)

    outcome = release_version(client, params, version, results, test, rows=rows,
                              run_id=mv.tags.get(names.DECISION_RUN, ""), page=str(page), approval=approval,
                              expect=still_waiting)
    write_release_page(page, outcome, title=f"Approval of v{version}")
    write_index(params.outputs_dir)
    return outcome


def _check_waiting(tags: dict[str, str], version: str) -> None:
    decision = tags.get(names.DECISION)
    if decision == WAITING:
        return
    if decision is None:
        raise RegistryError(f"v{version} has no release decision yet: run its deploy step "
                            "(driftgate run) before approving it")
    raise RegistryError(f"v{version} is not waiting for approval: it was {decision} "
                        f"({tags.get(names.REASON, '')[:300]})")


def _recorded_gates(tags: dict[str, str], version: str) -> list[GateResult]:
    try:
        return [GateResult.from_dict(d) for d in json.loads(tags[names.GATES])]
    except (KeyError, ValueError, TypeError):
        raise RegistryError(f"v{version}: no readable gate results recorded (tag {names.GATES})") from None


# --------------------------------------------------------------------------- deployment job


@dataclass
class DeployResult:
    """What ``deploy`` did: ``released``, ``blocked``, or ``nothing`` to do, and why."""

    action: str
    message: str
    version: str | None = None
    outcome: Any | None = None


def newest_challenger(client: Any, name: str) -> tuple[Any | None, Any | None]:
    """The ``challenger`` and ``champion`` versions (either may be None)."""
    return (store.version_with_alias(client, name, CHALLENGER),
            store.version_with_alias(client, name, CHAMPION))


def deploy(params: Params, *, if_new_version: bool, by: str = "driftgate deploy") -> DeployResult:
    """Release the challenger when it is newer than the champion and waits for approval."""
    client = store.connect(params)
    name = params.mlflow.model_name
    challenger, champion = newest_challenger(client, name)
    newer = challenger is not None and (champion is None or int(challenger.version) > int(champion.version))
    if not newer:
        current = "no champion yet" if champion is None else f"champion v{champion.version}"
        message = f"{name}: no challenger newer than the champion ({current}); nothing to deploy"
        if if_new_version:
            return DeployResult("nothing", message)
        raise RegistryError(message + " (use --if-new-version to make this a no-op)")
    version = str(challenger.version)
    decision = challenger.tags.get(names.DECISION)
    if decision is None:
        raise RegistryError(f"{name} v{version}: never went through the release gates; run driftgate run first")
    if decision == BLOCKED:
        reason = challenger.tags.get(names.REASON, "")
        return DeployResult("blocked", f"{name} v{version} was blocked by its gates: {reason}", version)
    if decision != WAITING:
        return DeployResult("nothing", f"{name} v{version} is already {decision}; nothing to deploy", version)
    outcome = approve(params, version, by=by, note="approved through the deployment job")
    action = "released" if outcome.decision == PROMOTED else outcome.decision
    return DeployResult(action, f"{name} v{version}: {outcome.decision}: {outcome.reason}", version, outcome)
