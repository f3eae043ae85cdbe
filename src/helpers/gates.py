"""Release gates: each gives pass or fail with its reason; the release needs all to pass.

Example
-------
>>> results = metric_gates({"rmse": 80.0}, {"rmse": MetricGate(max=100)})
>>> results[0].passed, results[0].reason
(True, 'rmse = 80 within [-inf, 100]')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from helpers.config import KNOWN_METRICS, ChampionGate, MetricGate


@dataclass
class GateResult:
    """The outcome of one gate."""

    gate: str
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def metric_gates(metrics: dict[str, float], bounds: dict[str, MetricGate]) -> list[GateResult]:
    """Absolute thresholds: each configured metric must lie within its bounds."""
    results = []
    for name, gate in bounds.items():
        label = f"metric {name}"
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


def champion_gate(
    challenger: dict[str, float], champion: dict[str, float] | None, rule: ChampionGate, task: str,
    champion_version: str | None = None,
) -> GateResult:
    """The challenger must beat the champion on the same rows by ``rule.min_improvement``.

    With no champion (first release) the gate passes and says so: only absolute gates apply.
    """
    label = "beats champion"
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


def decide(results: list[GateResult]) -> tuple[bool, str]:
    """All gates must pass; the reason lists the failed ones."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return True, f"all {len(results)} gates passed"
    return False, "blocked by " + "; ".join(f"{r.gate}: {r.reason}" for r in failed)


def table(results: list[GateResult]) -> pd.DataFrame:
    """Gate results as a table with PASS/FAIL."""
    rows = [{"gate": r.gate, "result": "PASS" if r.passed else "FAIL", "reason": r.reason} for r in results]
    return pd.DataFrame(rows, columns=["gate", "result", "reason"])
