"""Model loading: ``models:/`` references, alias and version resolution, the loaded model.

A registered model is loaded through MLflow; when it wraps a scikit-learn estimator (the sklearn
flavour, or a classifier logged by :func:`helpers.registry.store.log_model`) and it has a named
signature, the estimator is called directly (the input check of :mod:`helpers.serving.schema`
replaces MLflow's per-call schema enforcement). A classifier's predict function gives labels and
class probabilities together (:class:`~helpers.serving.outputs.ClassifierOutputs`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from helpers.core.errors import DriftgateError, RegistryError, ServeError
from helpers.modeling.captures import UNREGISTERED
from helpers.serving.formatting import first_line, iso_time
from helpers.serving.outputs import classifier_predict, is_classifier
from helpers.serving.schema import InputSchema, check_inputs

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


REGISTERED_MODEL_META = "registered_model_meta"  # MLflow's record of a downloaded version's name and number


@dataclass(frozen=True)
class ModelRef:
    """A ``models:/`` URI taken apart: a name and either a version or an alias."""

    name: str
    version: str | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelRef | None:
        """``None`` for URIs that are not ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

        Examples
        --------
        >>> ModelRef.parse("models:/bike-demand@champion")
        ModelRef(name='bike-demand', version=None, alias='champion')
        """
        match = _MODELS_URI.match(uri.strip())
        if match is None:
            return None
        return cls(match["name"], match["version"], match["alias"])


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score: its identity, its signature and its predict function."""

    uri: str
    name: str | None
    version: str | None
    schema: InputSchema | None
    predict: Callable[[pd.DataFrame], Any]
    direct: bool  # True when the underlying scikit-learn model is called directly
    source: str
    loaded_at: float = field(default_factory=time.time)
    classes: tuple[Any, ...] | None = None  # a classifier's classes, in its probability columns' order

    @property
    def capture_name(self) -> str:
        """Folder name of this model in the capture store."""
        return self.name or UNREGISTERED

    def describe(self) -> dict[str, Any]:
        """JSON-ready identity for ``/version`` and ``/health``."""
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "source": self.source,
            "direct_predict": self.direct,
            "classes": None if self.classes is None else list(self.classes),
            "loaded_at": iso_time(self.loaded_at),
        }


def registry_client(tracking_uri: str | None) -> Any:
    """An :class:`mlflow.MlflowClient` whose registry is the tracking store."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_version(client: Any, ref: ModelRef) -> str:
    """The version a reference points at now (an alias is looked up in the registry)."""
    try:
        if ref.alias is not None:
            return str(client.get_model_version_by_alias(ref.name, ref.alias).version)
        if ref.version is not None and ref.version.lower() == "latest":
            versions = client.search_model_versions(f"name='{ref.name}'")
            if not versions:
                raise RegistryError(f"model {ref.name!r} has no versions in the registry")
            return str(max(int(v.version) for v in versions))
        return str(client.get_model_version(ref.name, ref.version).version)
    except DriftgateError:
        raise
    except Exception as exc:
        what = f"alias {ref.alias!r}" if ref.alias else f"version {ref.version!r}"
        raise RegistryError(
            f"model registry: no {what} of model {ref.name!r} ({first_line(exc)}); "
            "register the model and set the alias first"
        ) from None


def load_model(model_uri: str, *, tracking_uri: str | None = None, version: str | None = None) -> LoadedModel:
    """Load a model for scoring: a ``models:/`` URI (alias or version), ``runs:/`` or a path.

    Parameters
    ----------
    model_uri : str
        What to serve, for example ``models:/bike-demand@champion``.
    tracking_uri : str, optional
        The MLflow tracking store (also used as the registry).
    version : str, optional
        Load this version of a ``models:/`` model instead of resolving the alias again.

    Raises
    ------
    RegistryError
        When the registry has no such model, version or alias.
    ServeError
        When the model cannot be loaded or fails its warm-up prediction.
    """
    ref = ModelRef.parse(model_uri)
    source = model_uri
    if ref is not None:
        client = registry_client(tracking_uri)
        version = version or resolve_version(client, ref)
        try:
            source = client.get_model_version_download_uri(ref.name, version)
        except Exception as exc:
            raise RegistryError(
                f"model registry: cannot locate {ref.name} version {version} ({first_line(exc)})"
            ) from None
    try:
        loaded = _load_pyfunc(source, tracking_uri)
    except DriftgateError:
        raise
    except Exception as exc:
        raise ServeError(f"cannot load model {model_uri} from {source}: {first_line(exc)}") from None
    schema, predict, direct, example, classes = loaded
    name, version = (ref.name, version) if ref else registered_identity(model_uri)
    model = LoadedModel(
        uri=model_uri,
        name=name,
        version=version,
        schema=schema,
        predict=predict,
        direct=direct,
        source=str(source),
        classes=classes,
    )
    _warm_up(model, example)
    return model


def registered_identity(folder: str) -> tuple[str | None, str | None]:
    """The registered name and version a downloaded model folder records (a ``driftgate package``
    folder does, as MLflow does), so its captures land beside the registered model's; else None."""
    meta = Path(folder.removeprefix("file://")) / REGISTERED_MODEL_META
    try:
        record = yaml.safe_load(meta.read_text(encoding="utf-8")) if meta.is_file() else None
    except (OSError, yaml.YAMLError):
        return None, None
    if not isinstance(record, dict) or not record.get("model_name"):
        return None, None
    version = record.get("model_version")
    return str(record["model_name"]), None if version is None else str(version)


def _load_pyfunc(
    source: str, tracking_uri: str | None
) -> tuple[InputSchema | None, Callable[[pd.DataFrame], Any], bool, Any, tuple[Any, ...] | None]:
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow.models import Model

    local = mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=tracking_uri)
    pyfunc_model = mlflow.pyfunc.load_model(local)
    schema = InputSchema.from_mlflow(pyfunc_model.metadata.get_input_schema())
    flavors = pyfunc_model.metadata.flavors
    predict: Callable[[pd.DataFrame], Any] = pyfunc_model.predict
    direct = False
    classes = None
    raw = _estimator(pyfunc_model, flavors)
    method = flavors.get("python_function", {}).get("predict_fn", "predict")
    if raw is not None and schema is not None and method == "predict" and is_classifier(raw):
        predict, direct = classifier_predict(raw), True
        classes = tuple(v.item() if hasattr(v, "item") else v for v in raw.classes_)
    elif "sklearn" in flavors and schema is not None and callable(getattr(raw, method, None)):
        predict, direct = getattr(raw, method), True
    try:
        example = Model.load(local).load_input_example(local)
    except Exception:  # an example is optional; a broken one just skips the warm-up
        example = None
    return schema, predict, direct, example, classes


def _estimator(pyfunc_model: Any, flavors: dict[str, Any]) -> Any | None:
    """The scikit-learn estimator inside a loaded pyfunc model, when there is one."""
    if "sklearn" in flavors:
        return pyfunc_model.get_raw_model()
    try:
        return getattr(pyfunc_model.unwrap_python_model(), "estimator", None)
    except Exception:  # not a PythonModel: MLflow's own predict is used
        return None


def _warm_up(model: LoadedModel, example: Any) -> None:
    """Score the saved input example once, through the same checks as a request."""
    if not isinstance(example, pd.DataFrame) or example.empty:
        return
    try:
        model.predict(check_inputs(example.head(1), model.schema))
    except Exception as exc:
        raise ServeError(f"model {model.uri} fails on its own input example: {first_line(exc)}") from None


def variant_uri(champion_uri: str, alias_or_version: str, key: str) -> str:
    """The ``models:/`` URI of another version of the champion's registered model.

    ``alias_or_version`` is an alias (``challenger``), a version number or a full ``models:/`` URI.

    Examples
    --------
    >>> variant_uri("models:/bike-demand@champion", "challenger", "serve.shadow")
    'models:/bike-demand@challenger'
    >>> variant_uri("models:/bike-demand@champion", "3", "serve.shadow")
    'models:/bike-demand/3'

    Raises
    ------
    ServeError
        When the champion is not a registered model and ``alias_or_version`` is not a URI.
    """
    name = alias_or_version.strip()
    if ModelRef.parse(name) is not None:
        return name
    ref = ModelRef.parse(champion_uri)
    if ref is None or not name:
        raise ServeError(
            f"{key} {alias_or_version!r} needs a registered champion (serve.model_uri models:/<name>@<alias>) "
            "or a full models:/<name>@<alias> URI"
        )
    return f"models:/{ref.name}/{name}" if name.isdigit() else f"models:/{ref.name}@{name}"


class FollowedModel:
    """A model loaded from a ``models:/`` URI, reloaded by :meth:`refresh` when its alias moves.

    Parameters
    ----------
    uri : str
        ``models:/<name>@<alias>`` (followed) or ``models:/<name>/<version>``.
    tracking_uri : str, optional
        MLflow tracking store, also used as the registry.
    """

    def __init__(self, uri: str, tracking_uri: str | None) -> None:
        self.uri = uri
        self.tracking_uri = tracking_uri
        self.ref = ModelRef.parse(uri)
        self.model = load_model(uri, tracking_uri=tracking_uri)

    @property
    def follows(self) -> bool:
        """Whether the URI names an alias (so :meth:`refresh` can switch versions)."""
        return self.ref is not None and self.ref.alias is not None

    def refresh(self) -> bool:
        """Reload when the alias points at another version now; True when switched.

        Raises whatever the registry or the loading raise (the caller counts it).
        """
        if not self.follows or self.ref is None:
            return False
        version = resolve_version(registry_client(self.tracking_uri), self.ref)
        if version == self.model.version:
            return False
        self.model = load_model(self.uri, tracking_uri=self.tracking_uri, version=version)
        return True
