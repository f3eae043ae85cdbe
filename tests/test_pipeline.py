"""End to end: `driftgate run` on params/ci.yaml, a failing cell, and the plain papermill path.

These execute the real notebooks with papermill against a real SQLite MLflow store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT, clean_env, driftgate_cmd, optional_tool, write_params

pytestmark = pytest.mark.slow

STEP_FILES = ["01_investigate", "02_drift_report", "03_train_evaluate", "04_deploy"]


def _run(params: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*driftgate_cmd(), "run", "--params", str(params), "--no-progress", *extra],
                          capture_output=True, text=True, timeout=900, cwd=ROOT, env=clean_env())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("e2e")
    params = write_params(folder)
    return params, _run(params)


def _only_run_dir(outputs: Path) -> Path:
    runs = sorted((outputs / "runs").iterdir())
    assert len(runs) >= 1
    return runs[-1]


def test_run_succeeds_and_writes_every_artifact(first_run) -> None:
    params, done = first_run
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = _only_run_dir(params.parent / "outputs")
    for stem in STEP_FILES:
        cells = json.loads((run_dir / f"{stem}.ipynb").read_text())["cells"]
        outputs = [o for c in cells for o in c.get("outputs", [])]
        pictures = [o for o in outputs if "image/png" in o.get("data", {})]
        assert pictures, f"{stem} shows no figure"
        assert not any("<Figure size" in "".join(o.get("data", {}).get("text/plain", "")) and
                       "image/png" not in o.get("data", {}) for o in outputs), f"{stem}: a figure shown as text"
        html = (run_dir / f"{stem}.html").read_text()
        assert "<html" in html.lower() and "data:image/png;base64" in html
        assert 'src="http' not in html, "reports must open offline"
    for name in ("investigate.json", "drift.json", "evaluation.json", "deploy.json", "manifest.json",
                 "drift_report.html", "baseline_profile.json", "test_predictions.parquet"):
        assert (run_dir / name).is_file(), name
    assert "release: promoted v1; champion: v1" in done.stdout


def test_manifest_is_complete(first_run) -> None:
    params, _ = first_run
    run_dir = _only_run_dir(params.parent / "outputs")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == run_dir.name and manifest["status"] == "succeeded"
    assert len(manifest["git"]["commit"]) == 40 and isinstance(manifest["git"]["dirty"], bool)
    assert len(manifest["params"]["hash"]) == 64
    assert manifest["params"]["values"]["data"]["target"] == "bikers"
    assert list(manifest["data"].values()) == ["ac6950ae6f11efcc69c29d6bb13e8881c001e27d36434660d59444a1414f712c"]
    assert manifest["packages"]["mlflow"] and manifest["packages"]["papermill"]
    assert [s["name"] for s in manifest["steps"]] == ["investigate", "drift", "train", "deploy"]
    for step in manifest["steps"]:
        assert step["status"] == "succeeded" and step["duration_s"] > 0 and step["start"] <= step["end"]
    assert manifest["summaries"]["deploy"]["decision"] == "promoted"
    # every step read the run's frozen copy of the params, whose hash the manifest records
    from helpers.core.config import load_params

    assert load_params(run_dir / "params.yaml").params_hash == manifest["params"]["hash"]
    for stem in STEP_FILES:
        cells = json.loads((run_dir / f"{stem}.ipynb").read_text())["cells"]
        injected = next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
        assert f"params_file = \"{run_dir / 'params.yaml'}\"" in "".join(injected["source"])
    assert 0 <= manifest["summaries"]["drift"]["share_drifted"] <= 1


def test_index_page_lists_the_run_with_metrics_drift_and_release(first_run) -> None:
    params, _ = first_run
    outputs = params.parent / "outputs"
    run_dir = _only_run_dir(outputs)
    index = (outputs / "index.html").read_text()
    assert run_dir.name in index and "succeeded" in index and "promoted v1" in index
    assert f'href="runs/{run_dir.name}/02_drift_report.html"' in index
    assert "rmse" in index and "coefficient" in index


def test_registry_holds_the_champion_with_lineage(first_run) -> None:
    from mlflow.tracking import MlflowClient

    params, _ = first_run
    outputs = params.parent / "outputs"
    run_dir = _only_run_dir(outputs)
    store = f"sqlite:///{outputs / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    champion = client.get_model_version_by_alias("bike-demand-ci", "champion")
    assert str(champion.version) == "1"
    tags = champion.tags
    assert tags["driftgate.run_id"] == run_dir.name
    assert len(tags["driftgate.git_commit"]) == 40
    assert tags["driftgate.data_sha256"].startswith("ac6950ae")
    assert tags["driftgate.decision"] == "promoted"
    run = client.get_run(champion.run_id)
    assert run.data.metrics["test_rmse"] > 0 and "model.type" in run.data.params
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "reports")}
    assert "reports/02_drift_report.html" in artifacts and "reports/manifest.json" in artifacts
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["metrics"]["test"]["rmse"] == pytest.approx(run.data.metrics["test_rmse"])


def test_second_run_is_compared_with_the_champion_in_a_new_folder(first_run) -> None:
    params, _ = first_run
    done = _run(params, "--force")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted((params.parent / "outputs" / "runs").iterdir())
    assert len(runs) == 2
    deploy = json.loads((runs[-1] / "deploy.json").read_text())
    champion_gate = next(g for g in deploy["gates"] if g["gate"] == "beats champion")
    assert "champion v1" in champion_gate["reason"]
    # same data and params retrain the same model: not better than the champion, so blocked
    assert deploy["decision"] == "blocked" and deploy["champion_after"] == "1"


def test_unchanged_rerun_reuses_every_step_and_links_its_files(first_run) -> None:
    from mlflow.tracking import MlflowClient

    params, _ = first_run
    outputs = params.parent / "outputs"
    done = _run(params)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted((outputs / "runs").iterdir())
    newest, source = runs[-1], runs[-2]
    manifest = json.loads((newest / "manifest.json").read_text())
    assert manifest["reused"] == ["investigate", "drift", "train", "deploy"]
    assert all(s["reused_from"] == source.name for s in manifest["steps"])
    assert f"reused unchanged steps: investigate (from {source.name})" in done.stdout
    assert f"release: unchanged since run {source.name}" in done.stdout
    for name in ("02_drift_report.html", "evaluation.json", "deploy.json"):
        assert (newest / name).stat().st_ino == (source / name).stat().st_ino
    store = f"sqlite:///{outputs / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    assert len(client.search_model_versions("name='bike-demand-ci'")) == 2, "nothing retrained"
    changed = _run(params, "-p", "split.seed=7")
    manifest = json.loads((sorted((outputs / "runs").iterdir())[-1] / "manifest.json").read_text())
    assert changed.returncode == 0 and manifest["reused"] == []


def test_failing_cell_stops_the_run_and_keeps_the_error_visible(tmp_path: Path) -> None:
    params = write_params(tmp_path, **{"model.hyperparameters.max_iter": -5})
    done = _run(params)
    assert done.returncode == 1
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("driftgate: error:")]
    assert len(error_lines) == 1
    assert "step train (03_train_evaluate) failed at cell" in error_lines[0]
    assert "InvalidParameterError" in error_lines[0]
    run_dir = _only_run_dir(tmp_path / "outputs")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert [s["status"] for s in manifest["steps"]] == ["succeeded", "succeeded", "failed"]
    html = (run_dir / "03_train_evaluate.html").read_text()
    assert "InvalidParameterError" in html
    assert not (run_dir / "deploy.json").exists()
    assert "failed" in (tmp_path / "outputs" / "index.html").read_text()


def test_notebook_runs_with_its_default_parameters_as_opened_in_jupyterlab(tmp_path: Path) -> None:
    """No parameters injected, working folder notebooks/ (as JupyterLab starts the kernel):
    the defaults find params/default.yaml and write to outputs/interactive/."""
    out = tmp_path / "01.ipynb"
    papermill = Path(sys.executable).with_name("papermill")
    done = subprocess.run([str(papermill), "01_investigate.ipynb", str(out), "--no-progress-bar"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT / "notebooks", env=clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((ROOT / "outputs" / "interactive" / "investigate.json").read_text())
    assert summary["rows"] == 8645 and summary["validation_passed"] is True


def test_notebook_runs_under_the_plain_papermill_cli(tmp_path: Path) -> None:
    params = write_params(tmp_path)
    out = tmp_path / "out.ipynb"
    papermill = Path(sys.executable).with_name("papermill")
    done = subprocess.run([str(papermill), str(ROOT / "notebooks" / "02_drift_report.ipynb"), str(out),
                           "-p", "params_file", str(params), "--no-progress-bar"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    interactive = tmp_path / "outputs" / "interactive"
    drift = json.loads((interactive / "drift.json").read_text())
    assert "headline" in drift and (interactive / "drift_report.html").is_file()


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    import tempfile

    binary = optional_tool("chromium", "chromium-browser")  # skipped with the install line outside CI
    profile = tempfile.mkdtemp(prefix="chromium-")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


def test_reports_render_in_headless_chromium(first_run, tmp_path: Path) -> None:
    params, _ = first_run
    outputs = params.parent / "outputs"
    run_dir = _only_run_dir(outputs)
    dom = _chromium("--dump-dom", (outputs / "index.html").as_uri()).stdout
    assert "Driftgate runs" in dom and run_dir.name in dom and "promoted v1" in dom
    report_dom = _chromium("--dump-dom", (run_dir / "drift_report.html").as_uri()).stdout
    assert "temp" in report_dom and "<img" in report_dom
    shot = tmp_path / "drift.png"
    _chromium("--window-size=1200,1600", f"--screenshot={shot}", (run_dir / "drift_report.html").as_uri())
    assert shot.stat().st_size > 20_000, "the page should render text and pictures"


def test_ctrl_c_leaves_the_run_marked_interrupted(tmp_path: Path) -> None:
    import signal
    import time

    params = write_params(tmp_path)
    process = subprocess.Popen([*driftgate_cmd(), "run", "--params", str(params), "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 120
    runs = tmp_path / "outputs" / "runs"
    while time.time() < deadline and not list(runs.glob("*/01_investigate.ipynb")):
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)  # the user presses Ctrl-C while the first notebook runs
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "driftgate: interrupted" in stderr
    manifest = json.loads((_only_run_dir(tmp_path / "outputs") / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["steps"][0]["status"] == "interrupted"
    assert [s["status"] for s in manifest["steps"][1:]] == ["not run"] * 3
    assert not (tmp_path / "outputs" / "mlflow.db").exists(), "nothing registered, nothing promoted"
