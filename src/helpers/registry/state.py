"""A fingerprint of the registry state a release decision depends on.

Step 4 judges its version against the champion and records its decision as tags: the decision
depends on which version holds ``champion``, ``challenger`` and ``previous`` and on what was
approved or rolled back (tags on the versions and on the model). The runner folds this
fingerprint into step 4's reuse key, so after ``driftgate rollback``, ``approve`` or a promotion
by monitoring an unchanged rerun releases again instead of repeating an old decision.

Example
-------
>>> registry_fingerprint(params)  # doctest: +SKIP
'5d1c0a...'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from helpers.core.config import Params
from helpers.core.errors import RegistryError

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"  # MLflow's error code for a model the registry does not hold
# a server that does not answer fails in seconds, not after MLflow's minutes of retries
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def registry_fingerprint(params: Params) -> str:
    """SHA-256 over the configured model's aliases, its tags and every version's tags and stage.

    A SQLite store that does not exist yet (nothing was ever registered) has the fingerprint
    of an empty registry, without creating the file.
    """
    return hashlib.sha256(json.dumps(registry_state(params), sort_keys=True).encode()).hexdigest()


def registry_state(params: Params) -> dict[str, Any]:
    """What :func:`registry_fingerprint` hashes (JSON-ready)."""
    uri = params.tracking_uri
    name = params.mlflow.model_name
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            return {"model": name, "registered": False}
        with contextlib.suppress(sqlite3.Error):  # not MLflow's tables as we know them: ask MLflow
            return sqlite_state(path, name)
    return client_state(params)


def client_state(params: Params) -> dict[str, Any]:
    """:func:`registry_state` asked through MLflow's client (any tracking store), read-only: it
    creates no experiment and sets no process-wide tracking URI. A store that cannot be read is
    a one-line :class:`RegistryError`."""
    for variable, value in HTTP_RETRIES.items():
        os.environ.setdefault(variable, value)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri, name = params.tracking_uri, params.mlflow.model_name
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        model = client.get_registered_model(name)
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        if exc.error_code == NOT_FOUND:
            return {"model": name, "registered": False}
        raise RegistryError(f"MLflow registry {uri}: cannot be read ({_first_line(exc)}); check "
                            "mlflow.tracking_uri / MLFLOW_TRACKING_URI") from None
    return {
        "model": name,
        "registered": True,
        "aliases": {str(alias): str(version) for alias, version in (model.aliases or {}).items()},
        "tags": dict(model.tags or {}),
        "versions": {str(v.version): {"tags": dict(v.tags or {}), "stage": str(v.current_stage)} for v in versions},
    }


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def sqlite_state(path: Path, name: str) -> dict[str, Any]:
    """:func:`registry_state` read straight from a SQLite store's tables, read-only: the same
    answer as :func:`client_state` in milliseconds, without importing MLflow (a reused run
    stays fast)."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        if db.execute("SELECT 1 FROM registered_models WHERE name = ?", (name,)).fetchone() is None:
            return {"model": name, "registered": False}
        aliases = db.execute("SELECT alias, version FROM registered_model_aliases WHERE name = ?", (name,))
        tags = db.execute("SELECT key, value FROM registered_model_tags WHERE name = ?", (name,))
        stages = db.execute("SELECT version, current_stage FROM model_versions WHERE name = ? "
                            "AND current_stage != 'Deleted_Internal'", (name,)).fetchall()
        version_tags = db.execute("SELECT version, key, value FROM model_version_tags WHERE name = ?", (name,))
        versions: dict[str, dict[str, Any]] = {str(v): {"tags": {}, "stage": str(stage)} for v, stage in stages}
        for version, key, value in version_tags:
            if str(version) in versions:
                versions[str(version)]["tags"][key] = value
        return {
            "model": name,
            "registered": True,
            "aliases": {str(alias): str(version) for alias, version in aliases},
            "tags": dict(tags.fetchall()),
            "versions": versions,
        }
