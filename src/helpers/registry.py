"""MLflow: tracking set-up, model logging with lineage, registration and aliases.

MLflow 3 aliases mark the release state of versions: ``challenger`` (newly registered),
``champion`` (serving), ``previous`` (the champion before the last release).

Example
-------
>>> client = connect(params)  # doctest: +SKIP
>>> ref = log_model(model, train_rows, params, lineage={"driftgate.run_id": run_id})  # doctest: +SKIP
>>> version_with_alias(client, params.mlflow.model_name, CHAMPION)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.config import Params
from helpers.errors import RegistryError

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


@dataclass
class ModelRef:
    """A registered model version and the run that produced it."""

    name: str
    version: str
    run_id: str
    uri: str  # models:/<name>/<version>

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return asdict(self)


def quiet_mlflow() -> None:
    """Silence MLflow's start-up chatter (alembic migrations, INFO logs) in notebooks and CLIs."""
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


def connect(params: Params) -> Any:
    """Point MLflow at the params' tracking store, create the experiment, return a client."""
    import mlflow
    from mlflow.tracking import MlflowClient

    quiet_mlflow()
    uri = params.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        experiment = client.get_experiment_by_name(params.mlflow.experiment)
        if experiment is None:
            location = None
            if uri.startswith("sqlite:"):
                location = (params.outputs_dir / "mlartifacts").resolve().as_uri()
            client.create_experiment(params.mlflow.experiment, artifact_location=location)
    except Exception as exc:  # unreachable server, bad URI, permissions
        raise RegistryError(f"MLflow tracking store {uri}: cannot be used ({_short(exc)})") from None
    mlflow.set_experiment(params.mlflow.experiment)
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:300]


def trusted_types(model: Any) -> list[str]:
    """Types skops must be told to trust to load ``model`` (it is ours: we just trained it)."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(model)))


def log_model(
    model: Any,
    sample: pd.DataFrame,
    params: Params,
    lineage: dict[str, str],
) -> ModelRef:
    """Log ``model`` in the active run with signature and input example, register it,
    tag the new version with ``lineage`` and give it the ``challenger`` alias."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    features = sample[params.data.features]
    example = features.head(5)
    signature = infer_signature(example, model.predict(example))
    with contextlib.redirect_stderr(io.StringIO()):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            registered_model_name=params.mlflow.model_name,
            skops_trusted_types=trusted_types(model),
        )
    client = MlflowClient()
    name, version = params.mlflow.model_name, str(info.registered_model_version)
    for key, value in lineage.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_registered_model_alias(name, CHALLENGER, version)
    run_id = mlflow.active_run().info.run_id
    return ModelRef(name=name, version=version, run_id=run_id, uri=f"models:/{name}/{version}")


def version_with_alias(client: Any, name: str, alias: str) -> Any | None:
    """The model version holding ``alias``, or None when no version has it (or no model)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load(uri: str) -> Any:
    """Load a registered sklearn model by URI (``models:/name/3`` or ``models:/name@champion``)."""
    import mlflow.sklearn

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return mlflow.sklearn.load_model(uri)
    except Exception as exc:
        raise RegistryError(f"{uri}: cannot load this model ({_short(exc)})") from None


def promote(client: Any, name: str, version: str) -> str | None:
    """Make ``version`` the champion; the old champion becomes ``previous``.

    The champion alias moves in one call, so there is never a moment without a champion.
    Returns the old champion's version, if there was one.
    """
    old = version_with_alias(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, version)
    if old is not None and str(old.version) != str(version):
        client.set_registered_model_alias(name, PREVIOUS, str(old.version))
    current_challenger = version_with_alias(client, name, CHALLENGER)
    if current_challenger is not None and str(current_challenger.version) == str(version):
        client.delete_registered_model_alias(name, CHALLENGER)
    return None if old is None else str(old.version)


def tag_version(client: Any, name: str, version: str, tags: dict[str, Any]) -> None:
    """Set several tags on one model version."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
