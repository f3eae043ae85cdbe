"""End to end on params/ci.yaml: the release is reused only while the registry is as it left it,
and a runner killed with SIGKILL leaves its run `abandoned`, never `running`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.core.catalogue import STEPS
from helpers.core.liveness import run_state
from support import ROOT, clean_env, driftgate_cmd, write_params

pytestmark = pytest.mark.slow


def _run(params: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*driftgate_cmd(), *extra, "--params", str(params)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT, env=clean_env())


def _newest(outputs: Path) -> Path:
    return sorted((outputs / "runs").iterdir())[-1]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    params = write_params(tmp_path_factory.mktemp("reuse"))
    done = _run(params, "run", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    return params


def test_a_registry_change_runs_the_release_again_an_unchanged_registry_reuses_it(ran: Path) -> None:
    from mlflow.tracking import MlflowClient

    outputs = ran.parent / "outputs"
    first = _newest(outputs)
    done = _run(ran, "run", "--no-progress")
    manifest = json.loads((_newest(outputs) / "manifest.json").read_text())
    assert manifest["reused"] == ["investigate", "drift", "train", "deploy"], done.stdout
    assert f"release: unchanged since run {first.name}" in done.stdout

    store = f"sqlite:///{outputs / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.delete_registered_model_alias("bike-demand-ci", "champion")  # e.g. rolled back to nothing by hand
    done = _run(ran, "run", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    again = _newest(outputs)
    manifest = json.loads((again / "manifest.json").read_text())
    assert manifest["reused"] == ["investigate", "drift", "train"]
    deploy = json.loads((again / "deploy.json").read_text())
    assert deploy["champion_before"] is None and deploy["decision"] == "promoted"
    assert "first release" in deploy["reason"] and "release: promoted v1; champion: v1" in done.stdout
    assert str(client.get_model_version_by_alias("bike-demand-ci", "champion").version) == "1"

    done = _run(ran, "run", "--no-progress")
    manifest = json.loads((_newest(outputs) / "manifest.json").read_text())
    assert manifest["reused"] == ["investigate", "drift", "train", "deploy"]
    assert all(s["reused_from"] == (first.name if s["name"] != "deploy" else again.name) for s in manifest["steps"])
    assert f"release: unchanged since run {again.name}" in done.stdout


def test_an_unchanged_rerun_imports_nothing_that_executes_notebooks_or_trains(ran: Path) -> None:
    outputs = ran.parent / "outputs"
    assert _run(ran, "run", "--no-progress").returncode == 0  # whatever it ran, the next run reuses it all
    script = ("import json, sys\nfrom helpers.cli.main import main\n"
              f"code = main(['run', '--no-progress', '--params', {str(ran)!r}])\n"
              "print(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules})]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=clean_env())
    code, modules = json.loads(done.stdout.splitlines()[-1])
    assert code == 0, done.stderr[-3000:]
    assert json.loads((_newest(outputs) / "manifest.json").read_text())["reused"] == list(STEPS)
    assert not set(modules) & {"papermill", "nbconvert", "jupyter_client", "mlflow", "sklearn", "scipy",
                               "matplotlib", "uvicorn"}, modules


def _children(pid: int) -> list[int]:
    """PIDs of ``pid``'s children (Linux), to stop the kernels a killed runner leaves behind."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def test_a_runner_killed_with_sigkill_leaves_an_abandoned_run(ran: Path) -> None:
    outputs = ran.parent / "outputs"
    before = set((outputs / "runs").iterdir())
    runner = subprocess.Popen([*driftgate_cmd(), "run", "--force", "--no-progress", "--params", str(ran)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=clean_env())
    kernels: list[int] = []
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not any(
                (d / "01_investigate.ipynb").is_file() for d in set((outputs / "runs").iterdir()) - before):
            time.sleep(0.2)
        kernels = _children(runner.pid)
        runner.send_signal(signal.SIGKILL)  # no handler runs: the manifest stays "running"
        runner.wait(timeout=30)
    finally:
        for pid in kernels:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    (killed,) = set((outputs / "runs").iterdir()) - before
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "running" and manifest["runner"]["pid"] == runner.pid
    assert run_state(manifest) == "abandoned"

    assert _run(ran, "index").returncode == 0
    index = (outputs / "index.html").read_text()
    row = index[index.index(killed.name):][:1000]
    assert '<span class="abandoned">abandoned</span>' in row and f"runner PID {runner.pid}" in row
    done = _run(ran, "status")
    assert done.returncode == 0, done.stderr
    assert f"run {killed.name}: abandoned" in done.stdout and "running" not in done.stdout.split(killed.name)[1]
