"""The second demo, classification: the daily weather type in Seattle, 2012-2015.

Fast: the three params files differ only where documented, they validate, and the configured
model, trained here in Python, shows the measured outcome the demo is built on (the 2012 model
fails on 2015, the 2014 model passes; the 2012 model degrades on 2014 traffic, a model retrained
on that traffic beats it). Slow: the whole loop through the ``driftgate`` command: run (four
steps), serve, replay, monitor, retrain, and the blocked + promoted pair of demo files.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from helpers.core import catalogue
from helpers.core.config import Params, WindowParams, load_params
from helpers.modeling import data
from helpers.modeling.estimators import build_model
from helpers.modeling.train import split
from helpers.registry import store as registry
from serve_fixtures import start_cli_server, stop_process
from support import ROOT, clean_env, driftgate_cmd, run_cli, write_params

PARAMS = ROOT / "params"
WEATHER = ROOT / "data" / "seattle-weather.csv"
DEMO = "classification.yaml"
CLASSES = {"drizzle", "fog", "rain", "snow", "sun"}
CURRENT_GATES = {"accuracy": {"min": 0.6}, "f1": {"min": 0.3}}
TRAFFIC = ("2014-01-01", "2015-01-01")  # replayed as the served champion's traffic: 365 days
STEPS = ("01_investigate", "02_drift_report", "03_train_evaluate", "04_deploy")


def write_demo_params(folder: Path, base: str = DEMO, name: str = "params.yaml", **changes: object) -> Path:
    """Copy params/<base> into ``folder`` as for the bike data, with the weather file as data."""
    return write_params(folder, base, name, data=WEATHER, **changes)


def scores(frame: pd.DataFrame, predicted: Any) -> dict[str, float]:
    """Accuracy and F1 as the classification gates take them: macro-averaged F1 for this
    five-class model, whichever classes the rows hold."""
    truth = frame["weather"]
    return {"accuracy": accuracy_score(truth, predicted), "f1": f1_score(truth, predicted, average="macro")}


def fit_window(params: Params, rows: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """The configured model fitted as step 3 fits it: on all but the latest ``split.test_size``."""
    train, test = split(rows, params.split)
    model = build_model(params, train).fit(train[params.data.features], train[params.data.target])
    return model, test


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread, as run.threads gives the notebooks: fastest on small data."""
    with threadpool_limits(1):
        yield


def passes(metrics: dict[str, float], bounds: dict[str, dict[str, float]]) -> bool:
    return all(metrics[name] >= bound["min"] for name, bound in bounds.items())


# --------------------------------------------------------------------------- the files


def test_demo_files_differ_from_classification_yaml_only_where_documented() -> None:
    base = yaml.safe_load((PARAMS / DEMO).read_text())
    assert base["data"]["task"] == "classification" and base["model"]["type"] == "HistGradientBoostingClassifier"
    assert base["monitor"]["metric"] == "f1" and base["gates"]["champion"]["metric"] == "f1"
    assert base["mlflow"]["model_name"] == "seattle-weather" and base["gates"]["current_metrics"] == {}
    for which, start in (("stale", "2012-01-01"), ("retrain", "2014-01-01")):
        demo = yaml.safe_load((PARAMS / f"classification_{which}.yaml").read_text())
        assert demo.keys() == base.keys()
        for section in base.keys() - {"windows", "gates", "mlflow"}:
            assert demo[section] == base[section], (which, section)
        assert demo["windows"]["current"] == base["windows"]["current"]
        assert demo["windows"]["baseline"]["start"] == start
        assert {k: v for k, v in demo["gates"].items() if k != "current_metrics"} == \
               {k: v for k, v in base["gates"].items() if k != "current_metrics"}
        assert demo["gates"]["current_metrics"] == CURRENT_GATES
        assert demo["mlflow"] == {**base["mlflow"], "experiment": "driftgate-weather-demo",
                                  "model_name": "seattle-weather-demo"}


@pytest.mark.parametrize("name", [DEMO, "classification_stale.yaml", "classification_retrain.yaml"])
def test_demo_files_validate_and_point_editors_at_the_schema(name: str) -> None:
    assert (PARAMS / name).read_text().splitlines()[0] == "# yaml-language-server: $schema=schema.json"
    done = run_cli("validate", "--params", str(PARAMS / name))
    assert done.returncode == 0, done.stderr
    assert "valid (1461 rows, 4 features)" in done.stdout


# --------------------------------------------------------------------------- the measured outcome


def test_the_2012_model_fails_on_2015_and_the_2014_model_passes() -> None:
    outcome = {}
    for which in ("stale", "retrain"):
        params = load_params(PARAMS / f"classification_{which}.yaml")
        frame = data.load_frame(params)
        model, test = fit_window(params, data.window(frame, params.windows.baseline))
        current = data.window(frame, params.windows.current)
        on_test = scores(test, model.predict(test[params.data.features]))
        on_current = scores(current, model.predict(current[params.data.features]))
        assert (len(test), len(current)) == (73, 181)
        assert passes(on_test, params.raw["gates"]["metrics"]), (which, on_test)  # both pass the test-row gates
        outcome[which] = (on_current, passes(on_current, params.raw["gates"]["current_metrics"]))
    (stale, stale_passes), (fresh, fresh_passes) = outcome["stale"], outcome["retrain"]
    assert stale == pytest.approx({"accuracy": 72 / 181, "f1": 0.200}, abs=0.01)
    assert fresh == pytest.approx({"accuracy": 125 / 181, "f1": 0.343}, abs=0.01)
    assert not stale_passes and fresh_passes
    labels = pd.read_csv(WEATHER, parse_dates=["date"]).set_index("date")["weather"]
    majority = labels["2015-01-01":"2015-06-30"].value_counts(normalize=True).max()  # sun, 96 of 181 days
    assert stale["accuracy"] < majority < fresh["accuracy"] - 0.15


def test_the_2012_champion_degrades_on_2014_and_a_model_retrained_on_it_wins() -> None:
    params = load_params(PARAMS / DEMO)
    frame = data.load_frame(params)
    champion, test = fit_window(params, data.window(frame, params.windows.baseline))
    reference = scores(test, champion.predict(test[params.data.features]))["f1"]
    traffic = data.window(frame, WindowParams(*TRAFFIC))
    served = scores(traffic, champion.predict(traffic[params.data.features]))["f1"]
    assert len(traffic) == 365
    assert served < reference * (1 - params.monitor.max_degradation)  # 0.16 against 0.31: degraded
    cut = round(len(traffic) * (1 - params.monitor.retrain_test_share))  # what monitor --retrain does
    challenger, retrain_test = fit_window(params, traffic.iloc[:cut])
    latest = traffic.iloc[cut:]
    assert passes(scores(retrain_test, challenger.predict(retrain_test[params.data.features])),
                  params.raw["gates"]["metrics"])
    on_latest = scores(latest, challenger.predict(latest[params.data.features]))["f1"]
    assert on_latest > scores(latest, champion.predict(latest[params.data.features]))["f1"] + 0.2


# --------------------------------------------------------------------------- end to end (slow)


def driftgate(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*driftgate_cmd(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=clean_env())


def latest_run(outputs: Path) -> Path:
    return sorted((outputs / "runs").iterdir())[-1]


def post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``driftgate run`` on classification.yaml: the 2012 model, the first release."""
    folder = tmp_path_factory.mktemp("classification")
    params = write_demo_params(folder, **{"serve.port": 0, "serve.flush_interval": 0.2,
                                          "serve.alias_poll_interval": 0})
    return params, driftgate("run", "--params", str(params), "--no-progress")


@pytest.fixture(scope="module")
def replayed(first_run) -> dict[str, Any]:
    """The champion served with capture (default output: label and probabilities); 2014 replayed
    through it in batches of 10 days with the labels as feedback."""
    params, done = first_run
    assert done.returncode == 0, done.stderr[-3000:]
    proc, url = start_cli_server(params)
    try:
        replay = driftgate("replay", "--params", str(params), "--from", TRAFFIC[0], "--to", TRAFFIC[1],
                           "--batch", "10", "--url", url, timeout=300)
    finally:
        code, out, err = stop_process(proc)
    return {"replay": replay, "serve_code": code, "serve_out": out, "serve_err": err}


@pytest.mark.slow
def test_run_trains_a_classifier_through_all_four_steps_and_promotes_it(first_run) -> None:
    params, done = first_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "release: promoted v1; champion: v1" in done.stdout
    run_dir = latest_run(params.parent / "outputs")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [s["status"] for s in manifest["steps"]] == ["succeeded"] * 4
    for stem in STEPS:
        html = (run_dir / f"{stem}.html").read_text()
        assert "data:image/png;base64" in html and "Traceback" not in html
    metrics = json.loads((run_dir / "evaluation.json").read_text())["metrics"]
    assert metrics["test"]["accuracy"] == pytest.approx(54 / 73, abs=0.02)  # as measured above
    assert metrics["test"]["f1"] == pytest.approx(0.305, abs=0.02)
    deploy = json.loads((run_dir / "deploy.json").read_text())
    assert deploy["decision"] == "promoted"
    assert {g["gate"] for g in deploy["gates"]} >= {"metric accuracy (test rows)", "metric f1 (test rows)"}
    loaded = load_params(params)
    version = registry.version_with_alias(registry.connect(loaded), "seattle-weather", catalogue.CHAMPION)
    assert str(version.version) == "1"


@pytest.mark.slow
def test_served_labels_are_the_champions_predictions(first_run) -> None:
    params, done = first_run
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = load_params(params)
    frame = data.load_frame(loaded)
    rows = data.window(frame, loaded.windows.current).head(20)
    model, _ = fit_window(loaded, data.window(frame, loaded.windows.baseline))  # deterministic refit
    proc, url = start_cli_server(params, "--no-capture", "-p", "serve.output=label")
    try:
        features = rows[loaded.data.features]
        status, body = post_json(f"{url}/invocations", {"dataframe_split": features.to_dict(orient="split")})
    finally:
        stop_process(proc)
    assert status == 200
    assert body["predictions"] == list(model.predict(features))
    assert set(body["predictions"]) <= CLASSES


@pytest.mark.slow
def test_replay_sends_2014_as_traffic_with_feedback(replayed) -> None:
    done = replayed["replay"]
    assert done.returncode == 0, done.stderr
    assert "37 requests (365 rows)" in done.stdout and "365 labels sent; 0 errors" in done.stdout
    assert replayed["serve_code"] == 0, replayed["serve_err"][-2000:]


@pytest.mark.slow
def test_monitor_finds_the_f1_degradation_and_alerts(first_run, replayed) -> None:
    params, _ = first_run
    done = driftgate("monitor", "--params", str(params), "--period", "day", "--fail-on-drift", "--no-retrain",
                     timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "degradation (365 rows, 365 with feedback)" in done.stdout
    outputs = params.parent / "outputs"
    newest = max((outputs / "monitoring").glob("*.json"), key=lambda p: p.stat().st_mtime)
    summary = json.loads(newest.read_text())
    assert summary["champion"] == "1"
    performance = summary["performance"]
    assert performance["degraded"]
    assert performance["metrics"]["f1"] < performance["limit"] < performance["reference"]["f1"]
    assert performance["metrics"]["f1"] == pytest.approx(0.160, abs=0.02)  # as measured above
    alerts = [json.loads(line) for line in (outputs / "alerts.jsonl").read_text().splitlines()]
    assert alerts[-1]["kind"] == "monitor" and "degradation" in alerts[-1]["decision"]


@pytest.mark.slow
def test_monitor_retrains_on_the_captures_and_the_gates_promote(first_run, replayed) -> None:
    params, _ = first_run
    done = driftgate("monitor", "--params", str(params), "--period", "day", "--retrain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded; release promoted v2" in done.stdout
    deploy = json.loads((latest_run(params.parent / "outputs") / "deploy.json").read_text())
    beat = next(g for g in deploy["gates"] if g["gate"] == "beats champion")
    assert beat["passed"] and "champion v1" in beat["reason"]
    champion = registry.version_with_alias(registry.connect(load_params(params)), "seattle-weather",
                                           catalogue.CHAMPION)
    assert str(champion.version) == "2"


@pytest.mark.slow
def test_stale_demo_is_blocked_and_retrained_demo_is_promoted(tmp_path: Path) -> None:
    stale = write_demo_params(tmp_path, "classification_stale.yaml", "stale.yaml")
    fresh = write_demo_params(tmp_path, "classification_retrain.yaml", "retrain.yaml")

    first = driftgate("run", "--params", str(stale), "--no-progress")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "release: blocked v1; champion: none yet" in first.stdout
    deploy = json.loads((latest_run(tmp_path / "outputs") / "deploy.json").read_text())
    failed = {g["gate"] for g in deploy["gates"] if not g["passed"]}
    assert failed == {"metric accuracy (current rows)", "metric f1 (current rows)"}

    second = driftgate("run", "--params", str(fresh), "--no-progress")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "release: promoted v2; champion: v2" in second.stdout

    third = driftgate("run", "--params", str(stale), "--no-progress", "--force")
    assert "release: blocked v3; champion: v2" in third.stdout
    deploy = json.loads((latest_run(tmp_path / "outputs") / "deploy.json").read_text())
    beat = next(g for g in deploy["gates"] if g["gate"] == "beats champion")
    assert not beat["passed"] and "vs champion v2" in beat["reason"]
