"""Release gates: thresholds, champion comparison in both directions, validation, drift."""

from __future__ import annotations

import pytest

from helpers.core.config import ChampionGate, MetricGate
from helpers.registry import gates


def test_metric_gates_bounds_and_missing_metric() -> None:
    results = gates.metric_gates({"rmse": 80.0, "r2": 0.4},
                                 {"rmse": MetricGate(max=100), "r2": MetricGate(min=0.5), "mae": MetricGate(max=1)})
    assert [r.passed for r in results] == [True, False, False]
    assert results[1].reason == "r2 = 0.4 outside [0.5, inf]"
    assert results[2].reason == "mae missing from the evaluation"


@pytest.mark.parametrize(
    ("metric", "new", "old", "rule", "passed"),
    [("rmse", 90.0, 100.0, ChampionGate(metric="rmse"), True),        # lower is better
     ("rmse", 100.0, 100.0, ChampionGate(metric="rmse"), False),      # a tie is not better
     ("rmse", 95.0, 100.0, ChampionGate(metric="rmse", min_improvement=10), False),
     ("rmse", 89.0, 100.0, ChampionGate(metric="rmse", min_improvement=0.1, relative=True), True),
     ("rmse", 91.0, 100.0, ChampionGate(metric="rmse", min_improvement=0.1, relative=True), False),
     ("r2", 0.8, 0.7, ChampionGate(metric="r2"), True),               # higher is better
     ("r2", 0.6, 0.7, ChampionGate(metric="r2"), False)],
)
def test_champion_gate_direction_and_margin(metric, new, old, rule, passed) -> None:
    result = gates.champion_gate({metric: new}, {metric: old}, rule, "regression", "3")
    assert result.passed is passed
    assert "champion v3" in result.reason


def test_first_release_passes_the_champion_gate_and_says_so() -> None:
    result = gates.champion_gate({"rmse": 1.0}, None, ChampionGate(), "regression")
    assert result.passed and "first release" in result.reason


def test_validation_and_drift_gates() -> None:
    failed = {"checks": [{}, {}], "failed_checks": [{"check": "value range", "column": "temp"}]}
    assert not gates.validation_gate(failed, required=True).passed
    assert gates.validation_gate(failed, required=False).passed
    assert gates.validation_gate({"checks": [{}], "failed_checks": []}, True).reason == "all 1 checks passed"
    drifted = {"headline": {"drifted": True}, "reason": "6 of 10 features drifted"}
    assert not gates.drift_gate(drifted, block=True).passed
    assert gates.drift_gate(drifted, block=False).passed


def test_decide_lists_failed_gates() -> None:
    ok, reason = gates.decide([gates.GateResult("a", True, "fine"), gates.GateResult("b", False, "too slow")])
    assert not ok and reason == "blocked by b: too slow"
    assert gates.decide([gates.GateResult("a", True, "fine")]) == (True, "all 1 gates passed")
