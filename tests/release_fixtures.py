"""Helpers for the release tests: a real ``mlflow server`` subprocess, and small models trained
on chosen months and registered with real lineage, then gated and released by the real code.

The models are the params' own (ci.yaml: a 60-iteration HistGradientBoostingRegressor, a
fraction of a second to fit); the stores are real SQLite files or a real server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.core.config import Params, load_params
from helpers.modeling import data as data_mod
from helpers.modeling import estimators, train
from helpers.registry import release, version_test
from helpers.registry import store as registry
from helpers.registry.gates import GateResult
from support import ROOT, write_params

STALE = ("2011-01-01", "2011-05-01")  # January-April: months before the July current window
RECENT = ("2011-03-01", "2011-07-01")  # March-June
LATEST = ("2011-04-01", "2011-07-01")  # April-June: the best of the three on July


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path, timeout: float = 120.0) -> Iterator[str]:
    """Run ``mlflow server`` with a SQLite backend in ``folder``; yield its URL; stop it.

    The server runs in its own process group, killed as a whole at the end.
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(Path(sys.executable).with_name("mlflow")), "server",
               "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
               "--artifacts-destination", str(folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        _wait_healthy(url, process, timeout, folder / "server.log")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.3)
    raise RuntimeError(f"mlflow server at {url} not healthy after {timeout:.0f} s")


def sqlite_template(folder: Path) -> Path:
    """An empty, fully migrated MLflow SQLite store: copying it saves each test the seconds
    MLflow spends creating its tables."""
    from mlflow.tracking import MlflowClient

    registry.quiet_mlflow()
    path = folder / "template.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@dataclass
class Store:
    """Where a test's models live: a server URL, or SQLite under the test's outputs folder
    (started from ``template`` when given)."""

    tracking_uri: str | None
    template: Path | None = None

    def params(self, folder: Path, model_name: str, base: str = "ci.yaml", file_name: str | None = None,
               **changes: object) -> Path:
        """A params file (copy of params/<base>) writing into ``folder``, on this store."""
        import shutil

        database = folder / "outputs" / "mlflow.db"
        if self.tracking_uri is None and self.template is not None and not database.exists():
            database.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.template, database)
        changes = {"mlflow.model_name": model_name, "mlflow.tracking_uri": self.tracking_uri, **changes}
        return write_params(folder, base=base, name=file_name or f"{model_name}.yaml", **changes)


@dataclass
class Trained:
    """A model trained on one window and registered as a new version (alias challenger)."""

    params: Params
    ref: registry.ModelRef
    evaluation: dict[str, Any]  # like evaluation.json: model, metrics by row set
    model: Any

    @property
    def version(self) -> str:
        return self.ref.version


def train_version(params_file: Path, baseline: tuple[str, str], *overrides: str) -> Trained:
    """Fit the params' model on the ``baseline`` months, evaluate it on the test and current
    rows, log it in an MLflow run and register it with lineage, as the train step does."""
    import mlflow

    from helpers.modeling.data import file_sha256
    from helpers.pipeline.manifest import git_state

    params = load_params(params_file, [f"windows.baseline.start={baseline[0]}",
                                       f"windows.baseline.end={baseline[1]}", *overrides])
    registry.connect(params)
    frame = data_mod.check_params_against_data(params)
    train_rows, test_rows = train.split(data_mod.window(frame, params.windows.baseline), params.split)
    current = data_mod.window(frame, params.windows.current)
    model = estimators.build_model(params, train_rows).fit(train_rows[params.data.features],
                                                      train_rows[params.data.target])
    metrics = {"test": train.evaluate(model, test_rows, params)[0],
               "current": train.evaluate(model, current, params)[0]}
    run_id = f"test-{baseline[0]}-{os.urandom(2).hex()}"
    lineage = {
        "driftgate.run_id": run_id, "driftgate.git_commit": str(git_state(ROOT)["commit"]),
        "driftgate.data_path": params.data.path, "driftgate.data_sha256": file_sha256(params.data.path),
        "driftgate.params_hash": params.params_hash,
        "driftgate.baseline_window": f"{baseline[0]}..{baseline[1]}",
        "driftgate.current_window": f"{params.windows.current.start}..{params.windows.current.end}",
        "driftgate.reports": str(params.outputs_dir / "runs" / run_id / "03_train_evaluate.html"),
    }
    with mlflow.start_run(run_name=run_id):
        for split_name, values in metrics.items():
            mlflow.log_metrics({f"{split_name}_{k}": v for k, v in values.items()})
        ref = registry.log_model(model, train_rows, params, lineage)
    evaluation = {"model": ref.to_dict(), "metrics": metrics}
    return Trained(params=params, ref=ref, evaluation=evaluation, model=model)


def reload_smoke(trained: Trained) -> GateResult:
    """The in-process smoke check (load back, predict the test rows): fast, for most tests."""
    params = trained.params
    frame = data_mod.check_params_against_data(params)
    rows = version_test.comparison_rows(params, frame, "test")
    expected = trained.model.predict(rows[params.data.features])
    got = registry.load(trained.ref.uri).predict(rows[params.data.features])
    return version_test.compare_predictions("smoke test", trained.ref.uri, got, expected, params.gates.smoke_tolerance)


def gate_and_release(trained: Trained, params: Params | None = None, *, smoke: GateResult | None = None,
                     investigate: dict[str, Any] | None = None, drift: dict[str, Any] | None = None,
                     page: Path | None = None) -> release.Outcome:
    """Version test, gates and release of ``trained``, as notebook 04 does them."""
    params = params or trained.params
    client = registry.connect(params)
    frame = data_mod.check_params_against_data(params)
    which = params.gates.champion.compare_on
    rows = version_test.comparison_rows(params, frame, which)
    test = version_test.compare_versions(client, params, trained.version, rows, which)
    passed_validation = investigate or {"checks": [{}], "failed_checks": []}
    results = release.gate_results(params, trained.evaluation, test, investigate=passed_validation,
                                   drift=drift, smoke=smoke or reload_smoke(trained))
    return release.release_version(client, params, trained.version, results, test, rows=rows,
                                   run_id=trained.evaluation["model"]["run_id"], page=str(page or ""))


def aliases(params: Params) -> dict[str, str | None]:
    """Which version holds each alias."""
    return registry.alias_versions(registry.connect(params), params.mlflow.model_name)


# --------------------------------------------------------------------------- race worker


def race_main(argv: list[str] | None = None) -> None:
    """A release in its own process: ``params_file version evaluation.json smoke.json barrier_dir
    parties``. Version test and gates first, then wait until every party is ready, then release;
    print the outcome as JSON."""
    import json

    params_file, version, evaluation_file, smoke_file, barrier, parties = (argv or sys.argv[1:])[:6]
    params = load_params(params_file)
    client = registry.connect(params)
    frame = data_mod.check_params_against_data(params)
    rows = version_test.comparison_rows(params, frame, params.gates.champion.compare_on)
    test = version_test.compare_versions(client, params, version, rows, params.gates.champion.compare_on)
    smoke = GateResult.from_dict(json.loads(Path(smoke_file).read_text()))
    evaluation = json.loads(Path(evaluation_file).read_text())
    results = release.gate_results(params, evaluation, test, investigate={"checks": [{}], "failed_checks": []},
                                   drift=None, smoke=smoke)
    _barrier(Path(barrier), version, int(parties))
    outcome = release.release_version(client, params, version, results, test, rows=rows, run_id=f"race-{version}")
    print("OUTCOME " + json.dumps(outcome.to_dict()))


def _barrier(folder: Path, name: str, parties: int, timeout: float = 120.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"ready-{name}").touch()
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("ready-*"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError("the other release never got ready")
        time.sleep(0.02)
