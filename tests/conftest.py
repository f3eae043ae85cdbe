"""Shared fixtures: the repository root and params files that write into a temporary folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "bike_sharing_2011.csv"

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def clean_env() -> dict[str, str]:
    """This process's environment without MLflow URIs (mlflow.set_tracking_uri exports one), so a
    subprocess uses the store its params name, not whichever store an earlier test used."""
    return {k: v for k, v in os.environ.items() if k not in URI_VARIABLES}


@pytest.fixture(autouse=True)
def _no_leaked_mlflow_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in URI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _forget_mlflow_uris() -> None:
    """Unset the tracking and registry URIs that mlflow.set_*_uri keep as process globals."""
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    registry_utils._registry_uri = None
    tracking_utils._tracking_uri = None


@pytest.fixture(scope="module", autouse=True)
def _fresh_mlflow_uris_per_module() -> Iterator[None]:
    """Each test module starts without the store an earlier module pointed MLflow at."""
    _forget_mlflow_uris()
    yield
    _forget_mlflow_uris()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def write_params(folder: Path, base: str = "ci.yaml", name: str = "params.yaml", **changes: object) -> Path:
    """Copy params/<base> into ``folder`` with absolute paths, outputs under ``folder``,
    and dotted-key ``changes`` applied (``"data.target": "x"``)."""
    raw = yaml.safe_load((ROOT / "params" / base).read_text())
    raw["data"]["path"] = str(DATA)
    raw["outputs"] = {"dir": str(folder / "outputs")}
    raw.setdefault("run", {})["notebooks"] = str(ROOT / "notebooks")
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    """A ci.yaml copy writing into tmp_path/outputs."""
    return write_params(tmp_path)


def driftgate_cmd() -> list[str]:
    """The driftgate console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("driftgate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "helpers.cli"]
