"""Fixtures shared by every test module; plain helpers are in ``support.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ROOT, URI_VARIABLES, write_params

pytest_plugins = ["serve_fixtures"]  # the session-wide registered models of the serving tests

# Fixtures that start something heavy: a test using one belongs to the slow lane (make test runs
# it, make test-fast does not).
SLOW_FIXTURES = {
    "server_url": "a real mlflow server",
    "client": "a Dask LocalCluster",
    "installed": "pip install of the package",
}

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


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


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    """A ci.yaml copy writing into tmp_path/outputs."""
    return write_params(tmp_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark slow every test that uses a heavy fixture or the ``server`` store."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_server = callspec is not None and callspec.params.get("store") == "server"
        if on_server or SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
