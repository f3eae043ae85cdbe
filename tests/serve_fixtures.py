"""Fixtures for the scoring-service tests: a real model in a real MLflow SQLite registry.

Two versions of a small bike-demand pipeline (OrdinalEncoder for ``weathersit``, passthrough
numerics, HistGradientBoostingRegressor) are trained once per session and registered in a
temporary SQLite store; ``champion`` points at version 1. Tests that move the alias put it back.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "bike_sharing_2011.csv"
FEATURES = ["season", "hr", "holiday", "weekday", "workingday", "weathersit", "temp", "atemp", "hum", "windspeed"]
TARGET = "bikers"
MODEL_NAME = "bike-serve-test"


@dataclass(frozen=True)
class RegisteredModels:
    """What the session fixture registered."""

    tracking_uri: str
    root: Path
    name: str
    rows: pd.DataFrame  # 200 feature rows held for scoring
    labels: np.ndarray  # their true bikers counts
    expected: dict[str, np.ndarray]  # version -> offline predictions of ``rows``

    def uri(self, alias_or_version: str = "champion") -> str:
        """``models:/<name>@alias`` or ``models:/<name>/<version>``."""
        sep = "/" if alias_or_version.isdigit() else "@"
        return f"models:/{self.name}{sep}{alias_or_version}"

    def set_champion(self, version: str) -> None:
        """Point ``champion`` at ``version``."""
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri).set_registered_model_alias(
            self.name, "champion", version
        )


_CACHE: dict[str, RegisteredModels] = {}


def build_pipeline(max_iter: int, learning_rate: float) -> object:
    """The test model: ordinal-encoded ``weathersit`` plus numerics into gradient boosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [c for c in FEATURES if c != "weathersit"]
    prep = ColumnTransformer(
        [
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["weathersit"]),
            ("num", "passthrough", numeric),
        ]
    )
    model = HistGradientBoostingRegressor(max_iter=max_iter, learning_rate=learning_rate, random_state=0)
    return Pipeline([("prep", prep), ("model", model)])


@contextlib.contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """Use ``uri`` for MLflow's fluent API (tracking and registry: an earlier test's
    ``mlflow.set_registry_uri`` would otherwise win), then restore the previous URIs and environment."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    saved = os.environ.get("MLFLOW_TRACKING_URI")
    saved_registry = registry_utils._registry_uri
    try:
        registry_utils._registry_uri = uri
        with _use_tracking_uri(uri):
            yield
    finally:
        registry_utils._registry_uri = saved_registry
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def log_sklearn_version(model: Any, example: pd.DataFrame, name: str, experiment_id: str | None = None) -> str:
    """Log a fitted scikit-learn model as a new version of ``name`` in the current tracking store;
    its version number."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from helpers.registry.store import trusted_types

    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=name,
            skops_trusted_types=trusted_types(model),
            pip_requirements=["mlflow", "scikit-learn", "pandas"],  # skips slow inference
        )
    return str(info.registered_model_version)


def register_models(root: Path) -> RegisteredModels:
    """Train two versions, register them under :data:`MODEL_NAME`, make version 1 champion."""
    import warnings

    from mlflow import MlflowClient

    frame = pd.read_csv(DATA)
    train, held = frame.iloc[:6000], frame.iloc[6000:6200]
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("serve-tests", artifact_location=(root / "artifacts").as_uri())
    expected: dict[str, np.ndarray] = {}
    with _tracking(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for max_iter, rate in ((50, 0.1), (20, 0.3)):
            model = build_pipeline(max_iter, rate)
            model.fit(train[FEATURES], train[TARGET])
            version = log_sklearn_version(model, train[FEATURES].head(5), MODEL_NAME, experiment)
            expected[version] = model.predict(held[FEATURES])
    client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    return RegisteredModels(
        uri, root, MODEL_NAME, held[FEATURES].reset_index(drop=True), held[TARGET].to_numpy(), expected
    )


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> RegisteredModels:
    """Two registered versions of the test model, trained once per session."""
    if "models" not in _CACHE:
        _CACHE["models"] = register_models(tmp_path_factory.mktemp("registry"))
    models = _CACHE["models"]
    models.set_champion("1")
    return models


def write_serve_params(folder: Path, models: RegisteredModels, **serve: object) -> Path:
    """A params file (ci.yaml) pointing at the test registry, outputs under ``folder``."""
    raw = yaml.safe_load((ROOT / "params" / "ci.yaml").read_text())
    raw["data"]["path"] = str(DATA)
    raw["outputs"] = {"dir": str(folder / "outputs")}
    raw.setdefault("run", {})["notebooks"] = str(ROOT / "notebooks")
    raw["mlflow"] = {**raw.get("mlflow", {}), "tracking_uri": models.tracking_uri, "model_name": models.name}
    raw["serve"] = {"port": 0, "flush_interval": 0.2, **serve}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cli_command(*args: str) -> list[str]:
    """``driftgate <args>`` through the plugged CLI of this interpreter."""
    return [sys.executable, "-m", "helpers.cli", *args]


def start_cli_server(params: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start ``driftgate serve`` in a subprocess; return it and the URL it printed."""
    proc = subprocess.Popen(
        cli_command("serve", "--params", str(params), *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if " at http://" not in line:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"driftgate serve did not start: {line!r} {err[-2000:]}")
    url = line.split(" at ", 1)[1].split(";", 1)[0].strip()
    return proc, url


def stop_process(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str, str]:
    """SIGTERM ``proc`` and wait; kill it if it hangs. Returns (code, stdout, stderr)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err
