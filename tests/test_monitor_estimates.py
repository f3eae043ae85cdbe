"""Estimated performance on captured traffic, for real: a champion serves, later months are replayed
without labels (monitoring judges the estimate), then their labels arrive late through
``replay --feedback-only`` (monitoring judges the realized metric and says whether it fell in the band)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.core import catalogue
from helpers.core.config import Params, load_params
from helpers.modeling.data import window
from helpers.modeling.performance_estimation import load_estimator
from helpers.monitoring import monitor
from helpers.pipeline import context as pipeline
from helpers.pipeline import train_step
from helpers.registry import store as registry
from helpers.registry.estimates import version_estimator
from helpers.registry.release import Outcome, champion_result
from helpers.registry.version_test import compare_versions, comparison_rows
from helpers.reports.release_page import write_release_page
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.late_feedback import replay_request_ids, send_late_feedback
from helpers.serving.replay import replay
from helpers.serving.service import ScoringService
from live_fixtures import release_champion
from support import write_params

pytestmark = pytest.mark.slow

BATCH = 12
SETTINGS = {"monitor.min_labelled_rows": 100, "gates.champion.compare_on": "captured",
            "gates.champion.use_estimates": True, "gates.champion.min_captured_rows": 100}


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("estimates")
    params_file = write_params(folder, **SETTINGS)
    version = release_champion(params_file, folder / "train-run")
    params = load_params(params_file)
    later = window(pipeline.open_step("drift", str(params_file), str(folder / "x")).frame,
                   type(params.windows.current)(start="2011-07-01", end="2011-08-01"))
    features, labels = later[params.data.features], later[params.data.target]
    captures = params.outputs_dir / "captures"
    writer = CaptureWriter(captures, flush_interval=0.2).start()
    with ScoringService(f"models:/{params.mlflow.model_name}@champion", tracking_uri=params.tracking_uri,
                        port=0, capture=writer, alias_poll_interval=0) as service:
        sent = replay(service.url, features, None, batch_size=BATCH,
                      request_ids=replay_request_ids(features, BATCH))
        writer.flush()
        before = monitor.run_monitor(params, window=monitor.resolve_window("day"))
        gate = _gate_by_estimates(folder, params)
        fed = send_late_feedback(service.url, captures, params.mlflow.model_name, features, labels, batch_size=BATCH)
    writer.close()
    after = monitor.run_monitor(params, window=monitor.resolve_window("day"))
    return {"params": params, "version": version, "sent": sent, "fed": fed, "rows": len(later),
            "before": before, "after": after, "run_dir": folder / "train-run", "gate": gate}


def _gate_by_estimates(folder: Path, params: Params) -> dict:
    """A weaker challenger, compared with the champion on the unlabelled captures, and its release page."""
    challenger_file = write_params(folder, name="challenger.yaml", **SETTINGS,
                                   **{"model.hyperparameters": {"max_iter": 5, "learning_rate": 0.05}})
    ctx = pipeline.open_step("train", str(challenger_file), str(folder / "challenger-run"))
    rows = train_step.training_data(ctx)
    model = train_step.fit(ctx, rows.train)
    version = train_step.register(ctx, model, rows, train_step.evaluate(ctx, model, rows))["model"]["version"]
    client = registry.connect(params)
    captured = comparison_rows(params, None, "captured")
    test = compare_versions(client, params, str(version), captured, "captured")
    result = champion_result(params, test)
    outcome = Outcome(decision="blocked", reason=result.reason, model=params.mlflow.model_name, version=str(version),
                      champion_before=test.champion_version, champion_after=test.champion_version, previous=None,
                      results=[result], test=test, decided_at="2026-01-01T00:00:00Z")
    page = write_release_page(folder / "release.html", outcome)
    return {"captured": captured, "test": test, "result": result, "page": page.read_text()}


def test_the_estimator_is_saved_with_the_baseline(late) -> None:
    params = late["params"]
    client = registry.connect(params)
    mv = registry.version_with_alias(client, params.mlflow.model_name, catalogue.CHAMPION)
    logged = {a.path for a in client.list_artifacts(mv.run_id, "baseline")}
    assert {f"baseline/{catalogue.PERFORMANCE_ESTIMATOR}", f"baseline/{catalogue.LOSS_MODELS}",
            f"baseline/{catalogue.MONITORING_BASELINE}"} <= logged
    est, note = version_estimator(mv.run_id)
    assert est is not None and note == "loaded" and est.task == "regression" and est.loss is not None, note
    local = load_estimator(late["run_dir"])
    assert local.rows == est.rows > 100 and local.features == params.data.features


def test_without_feedback_the_estimate_is_judged(late) -> None:
    assert late["sent"]["errors"] == 0 and late["sent"]["feedback_rows"] == 0
    summary = late["before"].summary
    perf = summary["performance"]
    assert summary["rows"] == late["rows"] and summary["labelled_rows"] == 0
    assert perf["judged_on"] == "estimated" and perf["realized"] == {}
    for name in ("mae", "rmse"):
        est = perf["estimated"][name]
        assert 0 < est["lower"] < est["value"] < est["upper"]
    reference = perf["reference"]["rmse"]
    assert perf["limit"] == pytest.approx(reference * 1.25)
    assert perf["degraded"] == (perf["estimated"]["rmse"]["value"] > perf["limit"])
    assert perf["reason"].startswith("estimated rmse") and "fewer than monitor.min_labelled_rows=100" in perf["reason"]
    page = late["before"].html.read_text()
    assert "Estimated and realized performance" in page and "the estimated metric (too few rows with feedback)" in page
    saved = json.loads(late["before"].json.read_text())
    assert saved["performance"]["estimated"]["mae"] == perf["estimated"]["mae"]


def test_late_feedback_matches_the_captured_requests(late) -> None:
    fed = late["fed"]
    assert fed["matched_rows"] == fed["feedback_rows"] == late["rows"] and fed["unmatched_rows"] == 0


def test_with_feedback_the_realized_metric_is_judged_beside_the_estimate(late) -> None:
    summary = late["after"].summary
    perf = summary["performance"]
    assert summary["labelled_rows"] == late["rows"]
    assert perf["judged_on"] == "realized" and perf["reason"].startswith("rmse")
    before = late["before"].summary["performance"]["estimated"]
    assert perf["estimated"] == before  # the same rows, the same seeded estimate
    for name in ("mae", "rmse"):
        realized = perf["realized"][name]
        assert realized["value"] == pytest.approx(perf["metrics"][name]) and realized["rows"] == late["rows"]
        band = realized["estimated_on_these_rows"]
        assert realized["inside_band"] == (band["lower"] <= realized["value"] <= band["upper"])
        # July differs from the spring the estimator saw, yet the estimate is in the right range
        assert abs(perf["estimated"][name]["value"] - realized["value"]) < 0.5 * realized["value"]
    assert perf["band_coverage"]["metrics"] == 2
    page = late["after"].html.read_text()
    assert "the realized metric (enough rows with feedback)" in page and f"({late['rows']} rows)" in page


def test_the_gate_compares_versions_by_estimates_on_unlabelled_captures(late) -> None:
    gate = late["gate"]
    test, result = gate["test"], gate["result"]
    assert "bikers" not in gate["captured"] and gate["captured"].attrs["labelled"] == 0
    assert test.estimated and test.n_rows == late["rows"] and test.champion_version == late["version"]
    for who in ("challenger", "champion"):
        band = test.bands[who]["rmse"]
        assert band["lower"] < band["value"] < band["upper"]
    assert test.challenger["rmse"] == test.bands["challenger"]["rmse"]["value"]
    # five boosting rounds are much worse than sixty: its estimated error is larger, the gate fails
    assert test.challenger["rmse"] > test.champion["rmse"] and not result.passed
    assert result.reason.startswith("by ESTIMATED performance (DLE")
    assert "ESTIMATED performance: the captured rows lack enough feedback" in gate["page"]
    assert "the metrics are ESTIMATES" in gate["page"]
