"""Release gates: each gives pass or fail (or, for approval, waiting) with its reason.

A release needs every gate to pass. :func:`verdict` turns the gate results into the decision:
``promoted`` (all pass), ``blocked`` (any fails) or ``waiting`` (only the manual approval is
missing: the version waits as ``challenger`` until ``driftgate approve``).

Example
-------
>>> results = metric_gates({"rmse": 80.0}, {"rmse": MetricGate(max=100)})
>>> results[0].passed, results[0].reason
(True, 'rmse = 80 within [-inf, 100]')
>>> verdict(results)
('promoted', 'all 1 gates passed')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from helpers.core.config import KNOWN_METRICS, ChampionGate, MetricGate

PROMOTED, BLOCKED, WAITING = "promoted", "blocked", "waiting"
APPROVAL = "manual approval"


@dataclass
class GateResult:
    """The outcome of one gate; ``pending`` marks a gate that has neither passed nor failed."""

    gate: str
    passed: bool
    reason: str
    pending: bool = False

    @property
    def status(self) -> str:
        """``PASS``, ``FAIL`` or ``WAIT``."""
        return "WAIT" if self.pending else ("PASS" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["gate"]), bool(data["passed"]), str(data["reason"]), bool(data.get("pending", False)))


def metric_gates(
    metrics: dict[str, float], bounds: dict[str, MetricGate], rows: str | None = None,
) -> list[GateResult]:
    """Absolute thresholds: each configured metric must lie within its bounds.

    ``rows`` names the rows the metrics were computed on (it goes into the gate's label).
    """
    results = []
    for name, gate in bounds.items():
        label = f"metric {name}" + (f" ({rows} rows)" if rows else "")
        if name not in metrics or metrics[name] is None:
            results.append(GateResult(label, False, f"{name} missing from the evaluation"))
            continue
        value = float(metrics[name])
        low = float("-inf") if gate.min is None else gate.min
        high = float("inf") if gate.max is None else gate.max
        passed = low <= value <= high
        relation = "within" if passed else "outside"
        results.append(GateResult(label, passed, f"{name} = {value:.4g} {relation} [{low:.4g}, {high:.4g}]"))
    return results


CHAMPION_GATE = "beats champion"


def champion_gate(
    challenger: dict[str, float], champion: dict[str, float] | None, rule: ChampionGate, task: str,
    champion_version: str | None = None,
) -> GateResult:
    """The challenger must beat the champion on the same rows by ``rule.min_improvement``.

    With no champion (first release) the gate passes and says so: only absolute gates apply.
    """
    label = CHAMPION_GATE
    if champion is None:
        return GateResult(label, True, "no champion yet: first release, judged by the absolute gates only")
    metric = rule.metric
    if metric not in challenger or metric not in champion:
        return GateResult(label, False, f"{metric} missing from the comparison")
    new, old = float(challenger[metric]), float(champion[metric])
    lower_is_better = KNOWN_METRICS[task][metric] == "lower"
    gain = (old - new) if lower_is_better else (new - old)
    needed = rule.min_improvement * abs(old) if rule.relative else rule.min_improvement
    passed = gain > 0 if needed == 0 else gain >= needed
    who = f"champion v{champion_version}" if champion_version else "champion"
    required = "> 0" if needed == 0 else f">= {needed:.4g}"
    if rule.relative and needed:
        required += f" ({rule.min_improvement:.1%} of the champion's)"
    reason = (f"{metric} {new:.4g} vs {who} {old:.4g} on the {rule.compare_on} rows: "
              f"improvement {gain:.4g}, required {required}")
    return GateResult(label, passed, reason)


def with_agreement(result: GateResult, agreement: float | None, minimum: float, measure: str,
                   rows: int) -> GateResult:
    """The champion gate on shadow evidence: the two versions must also agree on at least
    ``minimum`` (``gates.champion.min_agreement``) of the ``rows`` both answered.

    Examples
    --------
    >>> gate = with_agreement(GateResult(CHAMPION_GATE, True, "f1 0.8 vs 0.7"), 0.5, 0.9, "same label", 40)
    >>> gate.passed, gate.reason
    (False, 'f1 0.8 vs 0.7; agreement 0.5 (same label) on 40 rows, required >= 0.9')
    """
    if agreement is None:
        return result
    enough = agreement >= minimum
    text = f"agreement {agreement:.3g} ({measure}) on {rows} rows, required >= {minimum:.3g}"
    return GateResult(result.gate, result.passed and enough, f"{result.reason}; {text}", result.pending)


def validation_gate(investigate: dict[str, Any] | None, required: bool) -> GateResult:
    """Data validation from the investigate step must have passed (when required)."""
    label = "data validation"
    if not required:
        return GateResult(label, True, "not required by gates.require_validation")
    if investigate is None:
        return GateResult(label, False, "no investigate.json: the investigate step did not run")
    failed = investigate.get("failed_checks", [])
    if not failed:
        return GateResult(label, True, f"all {len(investigate.get('checks', []))} checks passed")
    names = ", ".join(f"{c['check']} ({c['column']})" for c in failed)
    return GateResult(label, False, f"{len(failed)} check(s) failed: {names}")


def drift_gate(drift: dict[str, Any] | None, block: bool) -> GateResult:
    """No critical drift between training data and current data (when blocking is on)."""
    label = "no critical drift"
    if drift is None:
        return GateResult(label, not block, "no drift.json: the drift step did not run")
    headline = drift.get("headline", {})
    drifted = bool(headline.get("drifted"))
    reason = drift.get("reason") or headline.get("reason") or ("drift detected" if drifted else "no drift")
    if not block:
        return GateResult(label, True, f"{reason} (not blocking: gates.block_on_drift is false)")
    return GateResult(label, not drifted, reason)


def smoke_gate(result: dict[str, Any]) -> GateResult:
    """The smoke test's outcome (``passed`` and ``reason`` keys) as a gate."""
    return GateResult("smoke test", bool(result.get("passed")), str(result.get("reason", "no reason given")))


def approval_gate(required: bool, version: str, approval: dict[str, Any] | None = None) -> GateResult:
    """Manual approval: passes when not required or given; otherwise pending (waiting)."""
    if not required:
        return GateResult(APPROVAL, True, "not required by gates.require_approval")
    if approval:
        note = f": {approval['note']}" if approval.get("note") else ""
        return GateResult(APPROVAL, True, f"approved by {approval.get('by')} at {approval.get('at')}{note}")
    return GateResult(APPROVAL, False, f"waiting for `driftgate approve {version}`", pending=True)


def decide(results: list[GateResult]) -> tuple[bool, str]:
    """All gates must pass; the reason lists the failed (or waiting) ones."""
    decision, reason = verdict(results)
    return decision == PROMOTED, reason


def verdict(results: list[GateResult]) -> tuple[str, str]:
    """``promoted``, ``blocked`` or ``waiting``, with the reason naming the gates concerned."""
    failed = [r for r in results if not r.passed and not r.pending]
    waiting = [r for r in results if r.pending]
    if failed:
        return BLOCKED, "blocked by " + "; ".join(f"{r.gate}: {r.reason}" for r in failed)
    if waiting:
        others = len(results) - len(waiting)
        return WAITING, f"all {others} other gates passed; " + "; ".join(r.reason for r in waiting)
    return PROMOTED, f"all {len(results)} gates passed"


def table(results: list[GateResult]) -> pd.DataFrame:
    """Gate results as a table with PASS, FAIL or WAIT."""
    rows = [{"gate": r.gate, "result": r.status, "reason": r.reason} for r in results]
    return pd.DataFrame(rows, columns=["gate", "result", "reason"])
