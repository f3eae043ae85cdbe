"""Shared parts of the serving benchmarks: register a model, start and stop servers, drive load.

Used by ``serve_load.py`` (and through it ``capture_durability.py``) and ``serve_shadow.py``.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from helpers.core.config import Params  # noqa: E402
from helpers.modeling import estimators  # noqa: E402
from helpers.modeling.data import load_frame, window  # noqa: E402

MODEL_NAME = "bike-bench"
JSON_HEADERS = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------- set-up


def register_champion(params: Params) -> pd.DataFrame:
    """Train the params' model on the baseline window, register it as champion; return the
    current window's feature rows (the traffic)."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient


    frame = load_frame(params)
    baseline = window(frame, params.windows.baseline)
    current = window(frame, params.windows.current)
    features, target = params.data.features, params.data.target
    model = estimators.build_model(params, baseline)
    model.fit(baseline[features], baseline[target])
    uri = params.tracking_uri
    Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        "serve-bench", artifact_location=(params.outputs_dir / "mlartifacts").as_uri()
    )
    mlflow.set_tracking_uri(uri)
    version = log_version(model, baseline[features], experiment)
    client.set_registered_model_alias(MODEL_NAME, "champion", version)
    return current[features].reset_index(drop=True)


def log_version(model: Any, features: pd.DataFrame, experiment: str) -> str:
    """Log a fitted sklearn model as a new version of :data:`MODEL_NAME`; its version number."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from helpers.registry import store as registry

    example = features.head(5)
    with warnings.catch_warnings(), mlflow.start_run(experiment_id=experiment):
        warnings.simplefilter("ignore")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=MODEL_NAME,
            skops_trusted_types=registry.trusted_types(model),
            pip_requirements=registry.model_requirements(),
        )
    return str(info.registered_model_version)


def bench_overrides(root: Path) -> list[str]:
    """Params overrides that keep a benchmark's outputs and MLflow store under ``root``."""
    return [
        f"outputs.dir={root / 'outputs'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"mlflow.model_name={MODEL_NAME}",
        "serve.alias_poll_interval=0",
    ]


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    """Seconds until ``/ping`` answers 200; raises if the process dies or time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before answering; log:\n{_tail(proc)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return time.perf_counter() - start
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready after {timeout} s")


_LOGS: dict[int, Path] = {}


def _tail(proc: subprocess.Popen[bytes], lines: int = 30) -> str:
    log = _LOGS.get(proc.pid)
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log and log.exists() else ""


def start_mlflow(port: int, tracking_uri: str, log: Path) -> subprocess.Popen[bytes]:
    """``mlflow models serve --env-manager local`` for the champion, in its own process group."""
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_cli)] if mlflow_cli.exists() else [sys.executable, "-m", "mlflow"]
    command += [
        "models",
        "serve",
        "-m",
        f"models:/{MODEL_NAME}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from PATH: as if the venv were active
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with open(log, "ab") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=sink, env=env, start_new_session=True)
    _LOGS[proc.pid] = log
    return proc


def start_driftgate(port: int, params_file: Path, overrides: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``driftgate serve`` (capture on) for the champion."""
    script = Path(sys.executable).with_name("driftgate")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "helpers.cli"]
    command += ["serve", "--params", str(params_file), "--port", str(port)]
    for item in overrides:
        command += ["-p", item]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with open(log, "ab") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=sink, env=env, start_new_session=True)
    _LOGS[proc.pid] = log
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """SIGTERM the server's process group and wait (kill after ``timeout``)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return int(proc.returncode)


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    """Outcome of one load phase."""

    label: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    rows_acknowledged: int = 0  # including the warm-up requests
    rows_per_request: int = 1
    errors: int = 0
    cpu_seconds: float | None = None  # CPU time of the server's processes during the phase

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        if self.cpu_seconds is None or not self.requests:
            return float("nan")
        return self.cpu_seconds / self.requests * 1000.0

    def merge(self, other: LoadResult) -> None:
        """Add another round of the same phase."""
        self.seconds += other.seconds
        self.latencies_ms.extend(other.latencies_ms)
        self.rows_acknowledged += other.rows_acknowledged
        self.errors += other.errors
        if self.cpu_seconds is not None and other.cpu_seconds is not None:
            self.cpu_seconds += other.cpu_seconds


def process_tree_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its children (Linux /proc); None elsewhere."""
    try:
        pids = [pid]
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0.0
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total
    except (OSError, ValueError, IndexError):
        return None


def run_load(
    label: str,
    server: subprocess.Popen[bytes],
    port: int,
    bodies: list[bytes],
    rows_per_body: int,
    clients: int,
    seconds: float,
    warmup: int = 20,
) -> LoadResult:
    """``clients`` keep-alive threads sending ``bodies`` round-robin for ``seconds``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    warmed = 0
    for body in bodies[:warmup]:
        conn.request("POST", "/invocations", body, JSON_HEADERS)
        warmed += conn.getresponse().read() is not None
    conn.close()
    result = LoadResult(label, seconds, rows_per_request=rows_per_body)
    cpu_before = process_tree_cpu(server.pid)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        latencies, errors, i = [], 0, k
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            i += clients
            started = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body, JSON_HEADERS)
                response = conn.getresponse()
                response.read()
            except OSError:
                errors += 1
                conn.close()
                continue
            if response.status == 200:
                latencies.append((time.perf_counter() - started) * 1000.0)
            else:
                errors += 1
        conn.close()
        with lock:
            result.latencies_ms.extend(latencies)
            result.errors += errors

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    cpu_after = process_tree_cpu(server.pid)
    if cpu_before is not None and cpu_after is not None:
        result.cpu_seconds = cpu_after - cpu_before
    result.rows_acknowledged = (result.requests + warmed) * rows_per_body
    return result
