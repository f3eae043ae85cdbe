"""The monitoring loop for real: a champion serves, later months are replayed as traffic with
feedback, monitoring finds drift and degradation, alerts, retrains, and the gates promote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from helpers.core import catalogue
from helpers.core.config import load_params
from helpers.modeling.data import window
from helpers.monitoring import monitor
from helpers.pipeline import context as pipeline
from helpers.pipeline import retrain
from helpers.registry import store as registry
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.replay import replay
from helpers.serving.service import ScoringService
from live_fixtures import release_champion
from support import ROOT, driftgate_cmd, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("monitor")
    params_file = write_params(folder, **{"monitor.retrain_test_share": 0.3})
    version = release_champion(params_file, folder / "train-run")
    params = load_params(params_file)
    later = window(pipeline.open_step("drift", str(params_file), str(folder / "x")).frame,
                   type(params.windows.current)(start="2011-07-01", end="2011-09-01"))
    writer = CaptureWriter(params.outputs_dir / "captures", flush_interval=0.2).start()
    with ScoringService(f"models:/{params.mlflow.model_name}@champion", tracking_uri=params.tracking_uri,
                        port=0, capture=writer, alias_poll_interval=0) as service:
        sent = replay(service.url, later[params.data.features], later[params.data.target], batch_size=12)
    writer.close()
    return params_file, {"version": version, "sent": sent, "rows": len(later)}


def test_replay_is_captured_with_feedback(served) -> None:
    params_file, info = served
    assert info["sent"]["errors"] == 0 and info["sent"]["rows"] == info["rows"] == 1475
    assert info["sent"]["feedback_rows"] == 1475


def test_monitor_finds_drift_and_degradation_and_alerts(served) -> None:
    params_file, info = served
    done = subprocess.run([*driftgate_cmd(), "monitor", "--params", str(params_file), "--period", "day",
                           "--fail-on-drift", "--no-retrain"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "drift and degradation (1475 rows, 1475 with feedback)" in done.stdout
    outputs = params_file.parent / "outputs"
    summary = json.loads(next((outputs / "monitoring").glob("*.json")).read_text())
    assert summary["champion"] == info["version"]
    assert {"temp", "atemp", "season"} <= set(summary["feature_drift"]["drifted_features"])
    assert summary["prediction_drift"]["drifted"] is True
    perf = summary["performance"]
    assert perf["degraded"] and perf["metrics"]["rmse"] > perf["limit"] > perf["reference"]["rmse"]
    alerts = [json.loads(line) for line in (outputs / "alerts.jsonl").read_text().splitlines()]
    assert alerts[-1]["kind"] == "monitor" and alerts[-1]["decision"] == "drift and degradation"
    page = Path(summary["report_html"]).read_text()
    assert "Monitoring summary" in page and "prediction drift" in page
    assert f"monitoring/{Path(summary['report_html']).name}" in (outputs / "index.html").read_text()


def test_monitor_with_no_traffic_makes_no_decision(served) -> None:
    params_file, _ = served
    params = load_params(params_file)
    result = monitor.run_monitor(params, window=monitor.resolve_window("day", "2020-01-01", "2020-01-02"))
    assert result.summary["decision"] == "no decision" and "fewer than monitor.min_rows" in result.summary["reason"]


def test_monitor_retrains_on_captures_and_the_gates_promote(served) -> None:
    params_file, info = served
    params = load_params(params_file)
    result = retrain.monitor_and_retrain(params, str(params_file), window=monitor.resolve_window("day"), retrain=True)
    assert result.retrain is not None and result.retrain.status == "succeeded", result.retrain.error
    deploy = json.loads((result.retrain.run_dir / "deploy.json").read_text())
    assert deploy["decision"] == "promoted", deploy["reason"]
    beat = next(g for g in deploy["gates"] if g["gate"] == "beats champion")
    assert f"champion v{info['version']}" in beat["reason"]
    client = registry.connect(params)
    champion = registry.version_with_alias(client, params.mlflow.model_name, catalogue.CHAMPION)
    assert int(champion.version) > int(info["version"])
    retrain_data = pd.read_parquet(next((params.outputs_dir / "monitoring").glob("*-retrain.parquet")))
    assert len(retrain_data) == 1475 and "bikers" in retrain_data and "casual" not in retrain_data
