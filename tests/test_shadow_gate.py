"""The champion gate on live evidence (``gates.champion.compare_on: shadow``), for real.

A January-April champion answers 800 July-August rows (20 requests) over the last day; the April-June
challenger and a two-winter-weeks version answer the same requests as shadows (the real capture
writer, each version's real predictions, the same request ids); feedback arrives for the first 15
requests (600 rows). The gate passes the better challenger, blocks the worse one, waits with too
few labelled rows, compares estimates when allowed, and ``driftgate deploy --if-new-version``
releases the waiting challenger once the evidence suffices.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.core import catalogue
from helpers.core.config import load_params
from helpers.registry import approval, gates, release, version_test
from helpers.registry import store as registry
from helpers.registry.estimates import estimated_scores
from helpers.registry.gates import GateResult
from helpers.registry.shadow_evidence import agreement
from helpers.reports.release_page import write_release_page
from live_fixtures import LATEST, ONE_WEEK, STALE, hours_ago, month_rows, params_with, register_version, write_traffic
from support import run_cli, write_params

pytestmark = pytest.mark.slow

SETTINGS = {"gates.champion.compare_on": "shadow", "gates.champion.min_rows": 500}
LABELLED_REQUESTS = 15


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("shadow")
    params_file = write_params(folder, **SETTINGS)
    champion = register_version(folder, "champion", STALE, **SETTINGS)
    params = load_params(params_file)
    client = registry.connect(params)
    registry.promote(client, params.mlflow.model_name, champion.version)
    worse = register_version(folder, "worse", ONE_WEEK, **SETTINGS)
    better = register_version(folder, "better", LATEST, **SETTINGS)
    july = month_rows(params, "2011-07-01", "2011-09-01").iloc[:800]
    write_traffic(params, july, {"champion": champion}, start=hours_ago(20), labelled_requests=LABELLED_REQUESTS)
    for shadow in (worse, better):  # a shadow row has the champion's request id and row
        write_traffic(params, july, {"shadow": shadow}, start=hours_ago(20), labelled_requests=0)
    return {"folder": folder, "file": params_file, "params": params, "july": july, "champion": champion,
            "better": better, "worse": worse}


def _test(live: dict, version: str, **changes: object) -> version_test.VersionTest:
    params = params_with(live["file"], **changes) if changes else live["params"]
    rows = version_test.comparison_rows(params, None, "shadow")
    return version_test.compare_versions(registry.connect(params), params, version, rows, "shadow")


def _rmse(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def test_a_better_challenger_passes_on_realized_shadow_evidence(live) -> None:
    test = _test(live, live["better"].version)
    labelled = live["july"].iloc[:LABELLED_REQUESTS * 40]
    features, truth = labelled[live["params"].data.features], labelled[live["params"].data.target].to_numpy()
    assert test.rows == "shadow" and test.n_rows == 800 and not test.estimated and not test.waiting
    assert test.champion_version == live["champion"].version and test.challenger_version == live["better"].version
    assert test.shadow["labelled_rows"] == 600 and test.shadow["requests"] == 20
    assert test.shadow["evidence"] == "realized"
    # realized metrics from the captured predictions, equal to scoring the labelled rows by hand
    assert test.challenger["rmse"] == pytest.approx(_rmse(truth, live["better"].model.predict(features)), rel=1e-6)
    assert test.champion["rmse"] == pytest.approx(_rmse(truth, live["champion"].model.predict(features)), rel=1e-6)
    assert test.challenger["rmse"] < test.champion["rmse"]
    # agreement on all 800 rows both answered: 1 - sum|a - b| / sum(|a| + |b|)
    every = live["july"][live["params"].data.features]
    a, b = live["champion"].model.predict(every), live["better"].model.predict(every)
    expected = 1 - np.abs(a - b).sum() / (np.abs(a) + np.abs(b)).sum()
    assert test.shadow["agreement"] == pytest.approx(expected, rel=1e-9)
    result = release.champion_result(live["params"], test)
    assert result.passed and result.status == "PASS"
    assert "on the shadow rows" in result.reason and "agreement" in result.reason


def test_a_worse_challenger_is_blocked(live) -> None:
    test = _test(live, live["worse"].version)
    assert test.shadow["evidence"] == "realized" and test.challenger["rmse"] > test.champion["rmse"]
    result = release.champion_result(live["params"], test)
    assert result.status == "FAIL"
    assert gates.verdict([result])[0] == gates.BLOCKED


def test_too_little_agreement_blocks_a_better_challenger(live) -> None:
    params = params_with(live["file"], **{"gates.champion.min_agreement": 0.999})
    test = _test(live, live["better"].version, **{"gates.champion.min_agreement": 0.999})
    result = release.champion_result(params, test)
    assert not result.passed and "required >= 0.999" in result.reason


def test_too_few_labelled_rows_make_the_gate_wait(live) -> None:
    changes = {"gates.champion.min_rows": 700}
    test = _test(live, live["better"].version, **changes)
    assert test.waiting.startswith("not enough evidence yet: 600 of 700 labelled rows")
    assert test.champion is None and test.challenger == {} and test.shadow["evidence"] is None
    result = release.champion_result(params_with(live["file"], **changes), test)
    assert result.pending and result.status == "WAIT"
    decision, reason = gates.verdict([GateResult("smoke test", True, "ok"), result])
    assert decision == gates.WAITING and "not enough evidence yet" in reason


def test_estimates_are_compared_when_labels_are_missing_and_allowed(live) -> None:
    changes = {"gates.champion.min_rows": 700, "gates.champion.use_estimates": "true"}
    params = params_with(live["file"], **changes)
    test = _test(live, live["better"].version, **changes)
    assert test.estimated and not test.waiting and test.shadow["evidence"] == "estimated" and test.n_rows == 800
    assert set(test.bands) == {"challenger", "champion"}
    rows = version_test.comparison_rows(params, None, "shadow")
    both = rows[rows["shadow_version"] == live["better"].version]
    direct, _ = estimated_scores(registry.connect(params), params, live["better"].version, both)
    assert test.challenger["rmse"] == pytest.approx(direct["rmse"])
    result = release.champion_result(params, test)
    assert result.reason.startswith("by ESTIMATED performance (DLE, shadow rows")
    # beyond the estimates' reach too: waiting again
    far = _test(live, live["better"].version, **{**changes, "gates.champion.min_rows": 900})
    assert far.waiting and "800 of 900 rows without labels" in far.waiting


def test_release_page_shows_the_shadow_comparison(live) -> None:
    test = _test(live, live["better"].version)
    result = release.champion_result(live["params"], test)
    outcome = release.Outcome(decision="promoted", reason="ok", model=live["params"].mlflow.model_name,
                              version=test.challenger_version, champion_before=test.champion_version,
                              champion_after=test.challenger_version, previous=test.champion_version,
                              results=[result], test=test, decided_at="2026-01-01T00:00:00Z")
    page = write_release_page(live["folder"] / "release.html", outcome).read_text()
    assert "Shadow comparison" in page and "rows both answered" in page and "800 rows of 20 requests" in page
    assert "600 (gates.champion.min_rows 500)" in page and "REALIZED metrics" in page
    assert f"{test.shadow['agreement']:.4f}" in page and "estimates used</th><td>no" in page


def test_agreement_measures() -> None:
    from scipy.spatial.distance import braycurtis

    a, b = np.array([3.0, 10.0, 0.0, 7.5]), np.array([4.0, 8.0, 1.0, 7.5])
    assert agreement(a, b, "regression") == pytest.approx(1 - braycurtis(a, b))
    assert agreement(a, a, "regression") == 1.0 and agreement(np.zeros(2), np.zeros(2), "regression") == 1.0
    assert agreement(np.array([1, 0, 1]), np.array(["1", "0", "0"]), "classification") == pytest.approx(2 / 3)
    assert agreement(np.array([]), np.array([]), "classification") is None


def test_deploy_waits_for_evidence_then_releases(live) -> None:
    """Last: it moves the champion. The release waits on too little evidence; the deployment job,
    rerun once enough labelled rows count, releases it."""
    wait_file = write_params(live["folder"], name="wait.yaml", **{**SETTINGS, "gates.champion.min_rows": 700})
    waiting = load_params(wait_file)
    client = registry.connect(waiting)
    name, better = waiting.mlflow.model_name, live["better"]
    client.set_registered_model_alias(name, catalogue.CHALLENGER, better.version)
    rows = version_test.comparison_rows(waiting, None, "shadow")
    test = version_test.compare_versions(client, waiting, better.version, rows, "shadow")
    results = release.gate_results(waiting, better.summary, test, investigate={"checks": [{}], "failed_checks": []},
                                   drift=None, smoke=GateResult("smoke test", True, "served like offline"))
    outcome = release.release_version(client, waiting, better.version, results, test, rows=rows)
    assert outcome.decision == gates.WAITING and "not enough evidence yet: 600 of 700" in outcome.reason
    assert registry.alias_versions(client, name)[catalogue.CHAMPION] == live["champion"].version
    again = approval.deploy(waiting, if_new_version=True)
    assert again.action == gates.WAITING and "not enough evidence yet" in again.message
    cli = run_cli("deploy", "--params", str(wait_file), "--if-new-version")
    assert cli.returncode == 0 and "deploy: waiting:" in cli.stdout
    done = approval.deploy(live["params"], if_new_version=True)  # min_rows 500: 600 labelled rows suffice
    assert done.action == "released", done.message
    assert registry.alias_versions(client, name)[catalogue.CHAMPION] == better.version
    assert done.outcome.test.shadow["evidence"] == "realized"
