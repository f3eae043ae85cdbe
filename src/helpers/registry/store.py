"""MLflow: tracking set-up, model logging with lineage, registration, version look-ups, aliases.

MLflow 3 aliases mark the release state of versions: ``challenger`` (newly registered),
``champion`` (serving), ``previous`` (the champion before the last release). Aliases move
only under :func:`helpers.registry.lock.release_lock`, a registry-side mutex that works the
same on the SQLite store and on an ``mlflow server``.

Example
-------
>>> client = connect(params)  # doctest: +SKIP
>>> ref = log_model(model, train_rows, params, lineage={"driftgate.run_id": run_id, ...})  # doctest: +SKIP
>>> with release_lock(client, params.mlflow.model_name, holder="ci-42"):  # doctest: +SKIP
...     promote(client, params.mlflow.model_name, ref.version)
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core import catalogue as names
from helpers.core.catalogue import ALIASES, CHALLENGER, CHAMPION, LABEL, PREVIOUS
from helpers.core.config import Params
from helpers.core.errors import RegistryError
from helpers.modeling.factory import model_modules, user_code_paths
from helpers.registry.classes import ESTIMATOR_ARTIFACT, proba_columns

# Lineage every registered version must carry (the train step adds windows, paths, dirty flag).
REQUIRED_LINEAGE = (names.LINEAGE_RUN_ID, names.LINEAGE_GIT_COMMIT, names.LINEAGE_DATA_SHA256,
                    names.LINEAGE_PARAMS_HASH, names.LINEAGE_REPORTS)
LOCK_SUFFIX = ".release-lock"  # the lock is a registered model named <model><LOCK_SUFFIX>
CLASSIFIER_CODE = Path(__file__).with_name("pyfunc_classifier.py")  # logged as the classifier's code
ARTIFACT_NAME = "model"  # the logged model's name in its run


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


# --------------------------------------------------------------------------- connection


def quiet_mlflow() -> None:
    """Silence MLflow's start-up chatter (alembic migrations, INFO logs) in notebooks and CLIs."""
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")  # fail in seconds, not minutes
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a kernel without ipywidgets


def connect(params: Params) -> Any:
    """Point MLflow at the params' tracking store (also the registry), create the experiment,
    and return a client. An unreachable server raises :class:`RegistryError` at once."""
    quiet_mlflow()  # before importing mlflow: its import warns too
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = params.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        check_server(uri)
    use_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        experiment = client.get_experiment_by_name(params.mlflow.experiment)
        if experiment is None:
            location = None
            if uri.startswith("sqlite:"):
                location = (params.outputs_dir / "mlartifacts").resolve().as_uri()
            client.create_experiment(params.mlflow.experiment, artifact_location=location)
    except Exception as exc:  # bad URI, permissions, server error
        raise RegistryError(f"MLflow tracking store {uri}: cannot be used ({short_error(exc)})") from None
    mlflow.set_experiment(params.mlflow.experiment)
    return client


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def use_uri(uri: str) -> None:
    """Make ``uri`` MLflow's tracking and registry URI in this process only.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``; that would make every
    later params file without ``mlflow.tracking_uri`` (and every kernel started from here)
    silently use this store, so the variables are put back as they were.
    """
    import mlflow

    saved = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Raise :class:`RegistryError` unless the MLflow server at ``uri`` answers ``/health``."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        problem = str(getattr(exc, "reason", exc))
    raise RegistryError(
        f"MLflow tracking server {uri} is not reachable ({problem}); start it or fix "
        "mlflow.tracking_uri / MLFLOW_TRACKING_URI. Nothing was changed."
    )


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:300]


def error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


# --------------------------------------------------------------------------- logging


def trusted_types(model: Any) -> list[str]:
    """Types skops must be told to trust to load ``model`` (it is ours: we just trained it)."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(model)))


MODEL_PACKAGES = ("scikit-learn", "skops", "numpy", "scipy", "pandas")


def model_requirements(extra: tuple[str, ...] = ()) -> list[str]:
    """Pinned pip requirements of a logged model (:data:`MODEL_PACKAGES` and ``extra``
    distributions), read from this environment.

    Given explicitly, MLflow skips its requirement inference (a subprocess that re-imports
    the model: seconds per registration, and it picks up unrelated packages).
    """
    from importlib import metadata

    names = list(dict.fromkeys([*MODEL_PACKAGES, *extra]))
    return [f"{name}=={metadata.version(name)}" for name in names]


def skops_round_trip(model: Any, example: pd.DataFrame) -> list[str] | None:
    """The types skops must trust to load ``model``, or None when skops cannot save it, load it
    back, or the loaded copy predicts ``example`` differently."""
    import numpy as np
    import skops.io as sio

    try:
        data = sio.dumps(model)
        types = sorted(sio.get_untrusted_types(data=data))
        expected, got = np.asarray(model.predict(example)), np.asarray(sio.loads(data, trusted=types).predict(example))
        same = np.array_equal(got, expected, equal_nan=expected.dtype.kind == "f")
    except Exception:  # a type skops has no rule for (a lambda, a C extension's object, ...)
        return None
    return types if same else None


def model_files(model: Any, example: pd.DataFrame, params: Params) -> dict[str, Any]:
    """How :func:`log_model` saves ``model``: the ``mlflow.sklearn.log_model`` arguments.

    A built-in model (``model.type``) is saved with skops, the safe format, its own types
    trusted. A ``model.factory`` model is saved with skops too when skops round-trips it
    (saves, loads back with its types trusted, predicts ``example`` alike); else with
    cloudpickle (loading a cloudpickle model runs code from the artifact: load only your own
    registry's models). The user's own modules it uses (found outside the installed packages,
    e.g. next to the params file) are copied into the model (``code_paths``), so it loads where
    they are not installed; the installed distributions it uses (lightgbm, xgboost, ...) join
    its pip requirements.
    """
    import mlflow.sklearn

    skops = mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS
    if not params.model.factory:
        return {"serialization_format": skops, "skops_trusted_types": trusted_types(model),
                "pip_requirements": model_requirements()}
    types = skops_round_trip(model, example)
    extra = third_party_distributions(model)
    if types is None:
        options: dict[str, Any] = {"serialization_format": mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE}
        extra = ("cloudpickle", *extra)
    else:
        options = {"serialization_format": skops, "skops_trusted_types": types}
    code = user_code_paths(model, params)
    return {**options, "code_paths": code or None, "pip_requirements": model_requirements(extra)}


def third_party_distributions(model: Any) -> tuple[str, ...]:
    """Installed distributions, beyond :data:`MODEL_PACKAGES`, whose modules ``model`` uses."""
    from importlib import metadata

    owners = metadata.packages_distributions()
    found = {dist for module in model_modules(model) for dist in owners.get(module, [])}
    return tuple(sorted(found - set(MODEL_PACKAGES) - {"driftgate"}))


def missing_lineage(tags: dict[str, str]) -> list[str]:
    """Required lineage keys absent (or empty) in ``tags``."""
    return [key for key in REQUIRED_LINEAGE if not str(tags.get(key, "")).strip()]


def log_model(
    model: Any,
    sample: pd.DataFrame,
    params: Params,
    lineage: dict[str, str],
) -> ModelRef:
    """Log ``model`` in the active run with signature and input example, register it,
    tag the new version with ``lineage`` and give it the ``challenger`` alias.

    A regressor is logged in MLflow's scikit-learn flavour. A classifier (``data.task:
    classification``) is logged as :mod:`helpers.registry.pyfunc_classifier`: its pyfunc answers
    labels, or ``proba_<class>`` columns with ``params={"output": "probabilities"}`` (or both);
    the signature's outputs are ``label`` and one ``proba_<class>`` column per class, and the
    model metadata holds ``task`` and ``classes``. ``lineage`` must hold every key of
    :data:`REQUIRED_LINEAGE`.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    missing = missing_lineage(lineage)
    if missing:
        raise RegistryError(f"cannot register a model without lineage: missing {', '.join(missing)}")
    example = sample[params.data.features].head(5)
    name, run_id = params.mlflow.model_name, mlflow.active_run().info.run_id
    tags = {key: str(value) for key, value in {**lineage, names.LINEAGE_MLFLOW_RUN_ID: run_id}.items()}
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if params.data.task == "classification":
            _log_classifier(model, example, params)
        else:
            _log_regressor(model, example, params)
        # registered as log_model(registered_model_name=...) would, its lineage tags in the same call
        registered = mlflow.register_model(f"runs:/{run_id}/{ARTIFACT_NAME}", name, tags=tags)
    version = str(registered.version)
    MlflowClient().set_registered_model_alias(name, CHALLENGER, version)
    return ModelRef(name=name, version=version, run_id=run_id, uri=f"models:/{name}/{version}")


def _log_regressor(model: Any, example: pd.DataFrame, params: Params) -> Any:
    import mlflow
    from mlflow.models import infer_signature

    return mlflow.sklearn.log_model(
        model,
        name=ARTIFACT_NAME,
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        **model_files(model, example, params),
    )


def _log_classifier(model: Any, example: pd.DataFrame, params: Params) -> Any:
    """Log a classifier as the model-from-code of ``pyfunc_classifier.py``, the fitted estimator
    saved as :func:`model_files` says (skops, or cloudpickle for a factory model skops cannot save)."""
    import mlflow
    import mlflow.sklearn

    if not (callable(getattr(model, "predict_proba", None)) and hasattr(model, "classes_")):
        raise RegistryError(f"data.task is classification but {type(model).__name__} has no predict_proba "
                            "and classes_; use a scikit-learn classifier")
    files = model_files(model, example, params)
    with tempfile.TemporaryDirectory(prefix="driftgate-model-") as tmp:
        if files["serialization_format"] == mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS:
            import skops.io as sio

            path = Path(tmp) / "estimator.skops"
            sio.dump(model, path)
            config = {"format": "skops", "skops_trusted_types": files["skops_trusted_types"]}
        else:
            import cloudpickle

            path = Path(tmp) / "estimator.pkl"
            path.write_bytes(cloudpickle.dumps(model))
            config = {"format": "cloudpickle"}
        return mlflow.pyfunc.log_model(
            name=ARTIFACT_NAME,
            python_model=str(CLASSIFIER_CODE),
            artifacts={ESTIMATOR_ARTIFACT: str(path)},
            model_config=config,
            code_paths=files.get("code_paths"),
            signature=classifier_signature(model, example),
            input_example=example,
            metadata={"task": "classification", "classes": model_classes(model)},
            pip_requirements=[f"mlflow=={mlflow.__version__}", *files["pip_requirements"]],
        )


def model_classes(model: Any) -> list[Any]:
    """A fitted classifier's classes as plain JSON values (str, int, float or bool), in its order."""
    return [value.item() if hasattr(value, "item") else value for value in np.asarray(model.classes_)]


def classifier_signature(model: Any, example: pd.DataFrame) -> Any:
    """Inputs of ``example``; outputs ``label`` and one ``proba_<class>`` per class; the ``output`` param."""
    from mlflow.models import infer_signature

    outputs = pd.DataFrame(np.asarray(model.predict_proba(example), dtype=float),
                           columns=proba_columns(model_classes(model)))
    outputs.insert(0, LABEL, model.predict(example))
    return infer_signature(example, outputs, params={"output": "label"})


# --------------------------------------------------------------------------- look-ups


def require_model(client: Any, name: str) -> Any:
    """The registered model ``name``; :class:`RegistryError` naming the known ones otherwise."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"registered model {name!r}: {short_error(exc)}") from None
    known = [m.name for m in client.search_registered_models(max_results=50)
             if not m.name.endswith(LOCK_SUFFIX) and LOCK_SUFFIX + ".stale-" not in m.name]
    listed = ", ".join(sorted(known)) if known else "none yet (run driftgate run first)"
    raise RegistryError(f"no registered model {name!r} in the registry; known models: {listed}. "
                        "Check mlflow.model_name and mlflow.tracking_uri")


def get_version(client: Any, name: str, version: str) -> Any:
    """Model version ``version`` of ``name``; :class:`RegistryError` when it does not exist."""
    from mlflow.exceptions import MlflowException

    require_model(client, name)
    text = str(version).strip().removeprefix("v")
    if not text.isdigit():
        raise RegistryError(f"{version!r} is not a model version number (write 3 or v3)")
    try:
        return client.get_model_version(name, text)
    except MlflowException:
        latest = max((int(v.version) for v in client.search_model_versions(f"name='{name}'")), default=0)
        raise RegistryError(f"model {name!r} has no version {text} (latest is {latest})") from None


def version_with_alias(client: Any, name: str, alias: str) -> Any | None:
    """The model version holding ``alias``, or None when no version has it (or no model)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def alias_versions(client: Any, name: str) -> dict[str, str | None]:
    """Which version holds each of ``champion``, ``challenger`` and ``previous`` (or None)."""
    out = {}
    for alias in ALIASES:
        mv = version_with_alias(client, name, alias)
        out[alias] = None if mv is None else str(mv.version)
    return out


_PINNED = re.compile(r"models:/[^/@]+/\d+")
_ALIASED = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)")
_LOADED: OrderedDict[tuple[str, str], Any] = OrderedDict()  # the last few versions loaded by number
_KEEP_LOADED = 4


def load(uri: str) -> Any:
    """Load the scikit-learn estimator of a registered model by URI (``models:/name/3`` or
    ``models:/name@champion``): the sklearn flavour of a regressor, the classifier inside the
    pyfunc of a classifier.

    A version named by number cannot change, so the last few loaded are kept (per registry):
    scoring one version twice in a step loads it once. An alias is resolved at every call, to the
    version it names now (loaded as that version is)."""
    import mlflow

    pinned = _pinned(uri)
    if pinned is not None:
        return load(pinned)
    key = (mlflow.get_registry_uri(), uri)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    model = _load(uri)
    if _PINNED.fullmatch(uri):
        _LOADED[key] = model
        while len(_LOADED) > _KEEP_LOADED:
            _LOADED.popitem(last=False)
    return model


def _pinned(uri: str) -> str | None:
    """``models:/name/<version>`` for an alias URI ``models:/name@alias`` (None for any other URI,
    or when the registry does not answer: loading the URI itself then says why)."""
    from mlflow.tracking import MlflowClient

    match = _ALIASED.fullmatch(uri)
    if match is None:
        return None
    try:
        version = MlflowClient().get_model_version_by_alias(match["name"], match["alias"]).version
    except Exception:  # no such model or alias: _load reports it as before
        return None
    return f"models:/{match['name']}/{version}"


def _load(uri: str) -> Any:
    import mlflow.artifacts
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import Model

    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
            if "sklearn" in Model.load(local).flavors:
                return mlflow.sklearn.load_model(local)
            # suppress_warnings: no comparison of the model's requirements with this environment
            # (its warnings are discarded here anyway; it reads every installed package's metadata)
            pyfunc = mlflow.pyfunc.load_model(local, suppress_warnings=True)
            estimator = getattr(pyfunc.unwrap_python_model(), "estimator", None)
    except Exception as exc:
        raise RegistryError(f"{uri}: cannot load this model ({short_error(exc)})") from None
    if estimator is None:
        raise RegistryError(f"{uri}: neither a scikit-learn model nor a Driftgate classifier")
    return estimator


def logged_classes(uri: str) -> list[Any] | None:
    """The classes recorded with a registered classifier (None for a regressor or an older model)."""
    import mlflow.models

    try:
        metadata = mlflow.models.get_model_info(uri).metadata or {}
    except Exception as exc:
        raise RegistryError(f"{uri}: cannot read this model ({short_error(exc)})") from None
    classes = metadata.get("classes")
    return list(classes) if isinstance(classes, list) else None


def run_metrics(client: Any, run_id: str | None) -> dict[str, float]:
    """The metrics logged in MLflow run ``run_id`` (empty when the run is gone)."""
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.metrics)
    except Exception:  # a deleted run: the version still exists
        return {}


# --------------------------------------------------------------------------- aliases


def promote(client: Any, name: str, version: str) -> str | None:
    """Make ``version`` the champion; the old champion becomes ``previous``.

    The champion alias moves in one call, so there is never a moment without a champion.
    Call it inside :func:`release_lock`. Returns the old champion's version, if any.
    """
    old = version_with_alias(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, version)
    if old is not None and str(old.version) != str(version):
        client.set_registered_model_alias(name, PREVIOUS, str(old.version))
    current_challenger = version_with_alias(client, name, CHALLENGER)
    if current_challenger is not None and str(current_challenger.version) == str(version):
        client.delete_registered_model_alias(name, CHALLENGER)
    return None if old is None else str(old.version)


def demote(client: Any, name: str, restore: str, previous: str | None) -> None:
    """Give ``champion`` back to version ``restore`` (in one call), then point ``previous``
    at ``previous`` (or remove it). Call it inside :func:`release_lock`."""
    client.set_registered_model_alias(name, CHAMPION, restore)
    if previous is None:
        if version_with_alias(client, name, PREVIOUS) is not None:
            client.delete_registered_model_alias(name, PREVIOUS)
    else:
        client.set_registered_model_alias(name, PREVIOUS, previous)


def tag_version(client: Any, name: str, version: str, tags: dict[str, Any]) -> None:
    """Set several tags on one model version."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
