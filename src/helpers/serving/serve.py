"""The scoring service: MLflow's scoring protocol, input checks, capture, alias following.

:class:`ScoringService` serves one registered model over HTTP/1.1 with keep-alive, on a
threading server from the standard library. It speaks MLflow's scoring protocol, so clients
written for ``mlflow models serve`` work unchanged:

``POST /invocations``
    JSON with exactly one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
    ``inputs`` (plus an optional ``params``), or ``text/csv`` with a header row. Answers
    ``{"predictions": [...]}`` and the request id in the ``X-Request-Id`` header.
``POST /feedback``
    ``{"request_ids": [...], "labels": [...]}`` (optionally ``"rows"``; a label may be a list,
    one value per row of a multi-row request): ground truth stored beside the captures.
``GET /ping``
    Liveness, the only endpoint open without the bearer token.
``GET /health``
    Model, request and capture counters (rows written, pending, dropped, write errors).
``GET /version``
    Model name, version and URI, and the Driftgate and MLflow versions.

Inputs are checked against the model signature before the model sees them: a missing column,
a value of the wrong type or a malformed body is answered with 400 and a message naming the
problem, never with 500. The checked frame goes straight to the underlying scikit-learn model
(MLflow's own per-call schema enforcement is skipped because this check replaces it), which
is where most of the speed over ``mlflow models serve`` comes from.

When the model URI names an alias (``models:/bike-demand@champion``) the service polls the
registry every ``alias_poll_interval`` seconds and, when the alias moves, loads the new version
in the background and swaps it in; requests in flight finish on the version they started with.

Security: binds 127.0.0.1 unless told otherwise; when a token is given, every endpoint but
``/ping`` needs ``Authorization: Bearer <token>``; request bodies above ``max_body_bytes`` are
refused with 413; captured data goes only under the capture folder.

Example
-------
>>> service = ScoringService("models:/bike-demand@champion", tracking_uri=uri, port=0).start()  # doctest: +SKIP
>>> ServeClient(service.url).predict(frame).values  # doctest: +SKIP
>>> service.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import io
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import socket
import socketserver
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from helpers import __version__
from helpers.core.errors import DriftgateError, ParamsError, RegistryError, ServeError
from helpers.serving.capture import UNREGISTERED, CaptureRecord, CaptureWriter, FeedbackRecord, count_rows

if TYPE_CHECKING:
    from helpers.core.config import Params

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")
_NUMERIC = ("long", "integer", "double", "float")
_INT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_FLOAT_DTYPES = {"double": np.float64, "float": np.float32}
_INT_DTYPES = {"long": np.int64, "integer": np.int32}


# --------------------------------------------------------------------------- errors


class InputError(Exception):
    """A request the service refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --------------------------------------------------------------------------- signature


@dataclass(frozen=True)
class ColumnSpec:
    """One input column of the model signature.

    ``type`` is an MLflow data type name (``long``, ``integer``, ``double``, ``float``,
    ``string``, ``boolean``, ``datetime``, ``binary``) or ``any`` for nested types.
    """

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class InputSchema:
    """The named input columns a model expects, in signature order."""

    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        """Column names in signature order."""
        return [c.name for c in self.columns]

    @classmethod
    def from_mlflow(cls, schema: Any) -> InputSchema | None:
        """Convert an MLflow input schema; ``None`` for tensor-based or missing schemas."""
        if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
            return None
        specs = []
        for col in schema.inputs:
            kind = getattr(col.type, "name", None)
            kind = kind if isinstance(kind, str) and kind in _KNOWN_TYPES else "any"
            specs.append(ColumnSpec(col.name, kind, bool(getattr(col, "required", True))))
        return cls(tuple(specs))

    def describe(self) -> str:
        """``name (type), ...`` for error messages."""
        return ", ".join(f"{c.name} ({c.type})" for c in self.columns)


_KNOWN_TYPES = frozenset(("long", "integer", "double", "float", "string", "boolean", "datetime", "binary"))


# --------------------------------------------------------------------------- parsing


def parse_request(body: bytes, content_type: str | None, schema: InputSchema | None) -> pd.DataFrame:
    """Turn an ``/invocations`` body into a data frame, or raise :class:`InputError`.

    Parameters
    ----------
    body : bytes
        The request body.
    content_type : str or None
        The ``Content-Type`` header: ``application/json`` or ``text/csv`` (UTF-8 only).
    schema : InputSchema or None
        Used for column order of row lists and for reading string columns from CSV.

    Examples
    --------
    >>> schema = InputSchema((ColumnSpec("a", "long"), ColumnSpec("b", "string")))
    >>> parse_request(b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"]]}}',
    ...               "application/json", schema).to_dict("records")
    [{'a': 1, 'b': 'x'}]
    """
    media = _media_type(content_type)
    if not body:
        raise InputError("the request body is empty; send JSON or CSV rows to score")
    if media == CSV_TYPE:
        frame = _frame_from_csv(body, schema)
    else:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"the body is not valid JSON: {exc}") from None
        frame = frame_from_json(document, schema)
    if frame.columns.duplicated().any():
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InputError(f"duplicate column(s): {', '.join(dupes)}")
    if len(frame) == 0:
        raise InputError("no rows to score")
    return frame


def _media_type(content_type: str | None) -> str:
    if not content_type:
        raise InputError(f"missing Content-Type; use {JSON_TYPE} or {CSV_TYPE}", status=415)
    media, *params = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    if media not in (JSON_TYPE, CSV_TYPE):
        raise InputError(f"unsupported Content-Type {media!r}; use {JSON_TYPE} or {CSV_TYPE}", status=415)
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise InputError(f"unsupported charset {value.strip()!r}; send UTF-8", status=415)
    return media


def _frame_from_csv(body: bytes, schema: InputSchema | None) -> pd.DataFrame:
    strings = {c.name: str for c in schema.columns if c.type == "string"} if schema else {}
    try:
        return pd.read_csv(io.BytesIO(body), dtype=strings or None, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"the body is not valid CSV with a header row: {exc}") from None


def frame_from_json(document: Any, schema: InputSchema | None) -> pd.DataFrame:
    """Build a frame from a decoded JSON request in one of the four MLflow formats.

    Raises
    ------
    InputError
        When the document is not one of the formats or its shape is inconsistent.
    """
    if not isinstance(document, dict):
        raise InputError(f"the JSON body must be an object with one of {', '.join(FORMATS)}; got {_kind(document)}")
    keys = [k for k in document if k in FORMATS]
    others = sorted(str(k) for k in document if k not in FORMATS and k != "params")
    if len(keys) != 1 or others:
        found = ", ".join(repr(str(k)) for k in document) or "no keys"
        raise InputError(
            f"the JSON body must hold exactly one of {', '.join(FORMATS)} (and optionally params); found {found}"
        )
    key = keys[0]
    value = document[key]
    if key == "dataframe_split":
        return _from_split(value, schema)
    if key == "dataframe_records":
        return _from_records(value, key)
    if key == "inputs" and isinstance(value, dict):
        return _from_columns(value)
    return _from_list(value, schema, key)


def _from_split(value: Any, schema: InputSchema | None) -> pd.DataFrame:
    if not isinstance(value, dict):
        raise InputError(f"dataframe_split must be an object with 'columns' and 'data'; got {_kind(value)}")
    extra = sorted(set(value) - {"columns", "data", "index"})
    if "data" not in value or extra:
        raise InputError(f"dataframe_split needs 'data' and optionally 'columns' and 'index'; found {sorted(value)}")
    data = value["data"]
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise InputError("dataframe_split.data must be a list of rows, each a list of values")
    columns = value.get("columns")
    if columns is None:
        if schema is None:
            raise InputError("dataframe_split needs 'columns' (the model has no named signature)")
        columns = schema.names
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InputError("dataframe_split.columns must be a list of column names")
    _check_row_lengths(data, len(columns), "dataframe_split.data")
    return _build_frame(lambda: pd.DataFrame(data, columns=columns), "dataframe_split")


def _from_records(value: Any, key: str) -> pd.DataFrame:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise InputError(f"{key} must be a list of records (objects of column: value); got {_kind(value)}")
    return _build_frame(lambda: pd.DataFrame.from_records(value), key)


def _from_columns(value: dict[str, Any]) -> pd.DataFrame:
    lengths = {k: (len(v) if isinstance(v, list) else None) for k, v in value.items()}
    sized = {n for n in lengths.values() if n is not None}
    if not sized:  # all scalars: one row
        return _build_frame(lambda: pd.DataFrame({k: [v] for k, v in value.items()}), "inputs")
    if len(sized) > 1 or None in lengths.values():
        detail = ", ".join(f"{k}: {n if n is not None else 'scalar'}" for k, n in lengths.items())
        raise InputError(f"inputs columns must all be lists of the same length; got {detail}")
    return _build_frame(lambda: pd.DataFrame(value), "inputs")


def _from_list(value: Any, schema: InputSchema | None, key: str) -> pd.DataFrame:
    if not isinstance(value, list) or not value:
        raise InputError(f"{key} must be a non-empty list of records or rows; got {_kind(value)}")
    if all(isinstance(row, dict) for row in value):
        return _from_records(value, key)
    if schema is None:
        raise InputError(f"{key} as lists needs a model with a named signature; send records instead")
    if all(isinstance(row, list) for row in value):
        _check_row_lengths(value, len(schema.columns), key)
        return _build_frame(lambda: pd.DataFrame(value, columns=schema.names), key)
    if len(schema.columns) == 1 and not any(isinstance(v, list | dict) for v in value):
        return _build_frame(lambda: pd.DataFrame({schema.names[0]: value}), key)
    raise InputError(f"{key} must be a list of records or a list of rows (lists of {len(schema.columns)} values)")


def _check_row_lengths(rows: list[list[Any]], width: int, where: str) -> None:
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputError(f"{where}: row {i} has {len(row)} values, expected {width}")


def _build_frame(build: Callable[[], pd.DataFrame], where: str) -> pd.DataFrame:
    try:
        return build()
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where} is not a valid table: {exc}") from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


# --------------------------------------------------------------------------- checking


def check_inputs(frame: pd.DataFrame, schema: InputSchema | None) -> pd.DataFrame:
    """Check ``frame`` against the signature and return it in signature order and types.

    Extra columns are dropped (as MLflow does); integers are accepted for float columns and
    whole floats for integer columns; missing values are allowed in float columns only.

    Raises
    ------
    InputError
        Naming the missing column, or the column, row and value of the wrong type.

    Examples
    --------
    >>> schema = InputSchema((ColumnSpec("hr", "long"), ColumnSpec("temp", "double")))
    >>> check_inputs(pd.DataFrame({"temp": [1], "hr": [3]}), schema).dtypes.tolist()
    [dtype('int64'), dtype('float64')]
    >>> check_inputs(pd.DataFrame({"hr": ["3"], "temp": [0.5]}), schema)
    Traceback (most recent call last):
    ...
    helpers.serve.InputError: column 'hr' expects long values; row 0 has str '3'
    """
    if schema is None:
        return frame
    present = set(frame.columns)
    missing = [c.name for c in schema.columns if c.required and c.name not in present]
    if missing:
        raise InputError(f"missing column(s): {', '.join(missing)}; the model expects {schema.describe()}")
    out: dict[str, Any] = {}
    changed = [str(c) for c in frame.columns] != schema.names
    for spec in schema.columns:
        if spec.name not in present:
            continue
        column = frame[spec.name]
        checked = _coerce(column, spec)
        changed = changed or checked is not column
        out[spec.name] = checked
    return pd.DataFrame(out, copy=False) if changed else frame


def _coerce(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    if spec.type in _INT_DTYPES:
        return _as_int(column, spec)
    if spec.type in _FLOAT_DTYPES:
        return _as_float(column, spec)
    if spec.type == "string":
        return _as_string(column, spec)
    if spec.type == "boolean":
        return _as_bool(column, spec)
    if spec.type == "datetime":
        return _as_datetime(column, spec)
    return column


def _as_int(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    dtype = _INT_DTYPES[spec.type]
    kind = column.dtype.kind
    if kind in "iu":
        lo, hi = _INT_BOUNDS[spec.type]
        if (spec.type == "integer" or kind == "u") and len(column) and (column.min() < lo or column.max() > hi):
            _fail_value(column, spec, lambda v: lo <= v <= hi)
        return column if column.dtype == dtype else column.astype(dtype)
    if kind == "f":
        values = column.to_numpy()
        missing = np.isnan(values)
        if missing.any():
            _fail_missing(spec, int(np.argmax(missing)))
        whole = values == np.floor(values)
        if not whole.all():
            i = int(np.argmin(whole))
            raise InputError(
                f"column '{spec.name}' expects {spec.type} values; row {i} has {values[i]!r}, not a whole number"
            )
        return column.astype(dtype)
    _fail_value(column, spec, lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_))
    return column.astype(dtype)


def _as_float(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    dtype = _FLOAT_DTYPES[spec.type]
    if column.dtype.kind in "iuf":
        return column if column.dtype == dtype else column.astype(dtype)
    _fail_value(
        column,
        spec,
        lambda v: v is None or (isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)),
    )
    return column.astype(dtype)


def _as_string(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    if isinstance(column.dtype, pd.StringDtype):
        missing = column.isna().to_numpy()
        if missing.any():
            _fail_missing(spec, int(np.argmax(missing)))
        return column
    _fail_value(column, spec, lambda v: isinstance(v, str))
    return column


def _as_bool(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    if column.dtype.kind == "b":
        return column
    _fail_value(column, spec, lambda v: isinstance(v, bool | np.bool_))
    return column.astype(bool)


def _as_datetime(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    if column.dtype.kind == "M":
        return column
    try:
        return pd.to_datetime(column, errors="raise")
    except (ValueError, TypeError) as exc:
        raise InputError(f"column '{spec.name}' expects datetime values: {exc}") from None


def _fail_value(column: pd.Series, spec: ColumnSpec, ok: Callable[[Any], bool]) -> None:
    """Raise naming the first value of ``column`` that ``ok`` refuses; return if all pass."""
    for i, value in enumerate(column.tolist()):
        if _is_missing(value) and spec.type not in _FLOAT_DTYPES:
            _fail_missing(spec, i)
        if not ok(value):
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise InputError(
                f"column '{spec.name}' expects {spec.type} values; row {i} has {type(value).__name__} {shown}"
            )


def _fail_missing(spec: ColumnSpec, row: int) -> None:
    raise InputError(f"column '{spec.name}' ({spec.type}) has a missing value in row {row}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


# --------------------------------------------------------------------------- models


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
            "loaded_at": _iso(self.loaded_at),
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
            f"model registry: no {what} of model {ref.name!r} ({_first_line(exc)}); "
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
                f"model registry: cannot locate {ref.name} version {version} ({_first_line(exc)})"
            ) from None
    try:
        loaded = _load_pyfunc(source, tracking_uri)
    except DriftgateError:
        raise
    except Exception as exc:
        raise ServeError(f"cannot load model {model_uri} from {source}: {_first_line(exc)}") from None
    schema, predict, direct, example = loaded
    model = LoadedModel(
        uri=model_uri,
        name=ref.name if ref else None,
        version=version if ref else None,
        schema=schema,
        predict=predict,
        direct=direct,
        source=str(source),
    )
    _warm_up(model, example)
    return model


def _load_pyfunc(
    source: str, tracking_uri: str | None
) -> tuple[InputSchema | None, Callable[[pd.DataFrame], Any], bool, Any]:
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow.models import Model

    local = mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=tracking_uri)
    pyfunc_model = mlflow.pyfunc.load_model(local)
    schema = InputSchema.from_mlflow(pyfunc_model.metadata.get_input_schema())
    flavors = pyfunc_model.metadata.flavors
    predict: Callable[[pd.DataFrame], Any] = pyfunc_model.predict
    direct = False
    if "sklearn" in flavors and schema is not None:
        raw = pyfunc_model.get_raw_model()
        method = flavors.get("python_function", {}).get("predict_fn", "predict")
        if callable(getattr(raw, method, None)):
            predict, direct = getattr(raw, method), True
    try:
        example = Model.load(local).load_input_example(local)
    except Exception:  # an example is optional; a broken one just skips the warm-up
        example = None
    return schema, predict, direct, example


def _warm_up(model: LoadedModel, example: Any) -> None:
    """Score the saved input example once, through the same checks as a request."""
    if not isinstance(example, pd.DataFrame) or example.empty:
        return
    try:
        model.predict(check_inputs(example.head(1), model.schema))
    except Exception as exc:
        raise ServeError(f"model {model.uri} fails on its own input example: {_first_line(exc)}") from None


# --------------------------------------------------------------------------- scoring


@dataclass
class ScoreJob:
    """One ``/invocations`` request on its way through the scorer."""

    model: LoadedModel  # the model current when the request arrived; it finishes on this one
    body: bytes
    content_type: str | None
    request_id: str
    timestamp: float  # arrival, seconds since the epoch
    started: float  # arrival, :func:`time.perf_counter`
    done: threading.Event = field(default_factory=threading.Event)
    inputs: pd.DataFrame | None = None
    outputs: Any = None
    payload: bytes = b""
    latency_ms: float = 0.0
    error: BaseException | None = None  # an InputError is answered with its 4xx, anything else with 500


def score_jobs(jobs: Sequence[ScoreJob], max_rows: int) -> int:
    """Parse, check, predict, encode: everything a request needs, for several at once.

    Requests of the same model whose checked frames have the same columns and types are
    stacked into one model call of at most ``max_rows`` rows; when a stacked call fails, its
    requests are scored one by one so that one bad request cannot fail its neighbours.
    Row-wise models (all of scikit-learn's regressors and classifiers) give the same values
    stacked or not. Each job ends with ``payload`` (the JSON answer) or ``error``; the caller
    sets ``done``. Returns the number of stacks (the model calls made when none fails).
    """
    ready: list[ScoreJob] = []
    for job in jobs:
        try:
            frame = parse_request(job.body, job.content_type, job.model.schema)
            job.inputs = check_inputs(frame, job.model.schema)
            ready.append(job)
        except InputError as exc:
            job.error = exc
    stacks = _stacks(ready, max_rows)
    for stack in stacks:
        if len(stack) == 1 or not _predict_stacked(stack):
            for job in stack:
                _predict_one(job)
    for job in ready:
        if job.error is None:
            try:
                job.payload = json.dumps({"predictions": _jsonable(job.outputs)}).encode()
            except (TypeError, ValueError) as exc:
                job.error = ServeError(f"the model's outputs cannot be sent as JSON: {exc}")
            job.latency_ms = (time.perf_counter() - job.started) * 1000.0
    return len(stacks)


def _stacks(jobs: list[ScoreJob], max_rows: int) -> list[list[ScoreJob]]:
    """Jobs that can share a model call: same model, columns and types, at most ``max_rows``."""
    groups: dict[tuple[Any, ...], list[list[ScoreJob]]] = {}
    for job in jobs:
        frame = job.inputs
        assert frame is not None
        key = (id(job.model), tuple(frame.columns), tuple(map(str, frame.dtypes)))
        stacks = groups.setdefault(key, [[]])
        if stacks[-1] and sum(len(j.inputs) for j in stacks[-1]) + len(frame) > max_rows:  # type: ignore[arg-type]
            stacks.append([])
        stacks[-1].append(job)
    return [stack for stacks in groups.values() for stack in stacks]


def _predict_one(job: ScoreJob) -> None:
    try:
        job.outputs = job.model.predict(job.inputs)
    except Exception as exc:
        job.error = InputError(f"the model could not score these inputs: {type(exc).__name__}: {_first_line(exc)}")


def _predict_stacked(stack: list[ScoreJob]) -> bool:
    frames = [job.inputs for job in stack]
    try:
        outputs = stack[0].model.predict(pd.concat(frames, ignore_index=True))
        parts = _split_outputs(outputs, [len(f) for f in frames])  # type: ignore[arg-type]
    except Exception:  # find the request at fault by scoring one by one
        return False
    for job, part in zip(stack, parts, strict=True):
        job.outputs = part
    return True


def _split_outputs(outputs: Any, lengths: list[int]) -> list[Any]:
    """Cut stacked outputs back into one piece per request."""
    if len(outputs) != sum(lengths):
        raise ValueError(f"the model returned {len(outputs)} outputs for {sum(lengths)} rows")
    bounds = np.cumsum([0, *lengths])
    if isinstance(outputs, pd.DataFrame | pd.Series):
        return [outputs.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [outputs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class Scorer:
    """One thread that does the CPU work of every request, many requests at a time.

    Request threads only read the body, hand the job over and write the answer; parsing,
    checking, the model call, JSON encoding and capture happen here. With the GIL, threads
    that share CPU-bound work mostly wait on each other (and a model that releases the GIL
    between trees gives it away to whichever request thread wants it); with one worker that
    takes every request waiting, the requests that queued while the previous call ran share
    the next model call, whose fixed cost (most of it, for a single row) is paid once.
    Nothing waits on purpose: a request that arrives alone is scored alone.

    Under load, requests answered together come back together, a little later than the
    next model call starts; so when fewer requests are queued than ``expected()`` (the open
    connections), the worker waits up to ``linger`` seconds for the rest before it starts.

    Parameters
    ----------
    process : callable
        Does the work for a list of jobs (without setting ``done``).
    max_jobs : int
        Most requests taken at once.
    linger : float
        Longest wait, in seconds, for more requests to join a call; 0 never waits.
    expected : callable
        How many requests could be on their way (the service passes its open connections).
    """

    def __init__(
        self,
        process: Callable[[list[ScoreJob]], None],
        max_jobs: int = 256,
        linger: float = 0.0,
        expected: Callable[[], int] = lambda: 1,
    ) -> None:
        self.process = process
        self.max_jobs = max_jobs
        self.linger = linger
        self.expected = expected
        self._jobs: list[ScoreJob] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> Scorer:
        """Start the worker thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scorer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the queued jobs, then stop; later jobs run on the caller's thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def run(self, job: ScoreJob) -> None:
        """Hand ``job`` to the worker and wait until it is done."""
        with self._cond:
            queued = not self._stopped and self._thread is not None
            if queued:
                self._jobs.append(job)
                self._cond.notify()
        if not queued:
            self._finish([job])
        job.done.wait()

    def _run(self) -> None:
        _one_openmp_thread()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._stopped)
                if not self._jobs:
                    return
                target = min(self.expected(), self.max_jobs)
                if self.linger > 0 and len(self._jobs) < target:
                    self._cond.wait_for(lambda n=target: len(self._jobs) >= n or self._stopped, self.linger)
                jobs, self._jobs = self._jobs[: self.max_jobs], self._jobs[self.max_jobs :]
            self._finish(jobs)

    def _finish(self, jobs: list[ScoreJob]) -> None:
        try:
            self.process(jobs)
        except Exception as exc:  # a bug; fail these requests, keep the worker alive
            logger.exception("scoring failed")
            for job in jobs:
                job.error = job.error or exc
        finally:
            for job in jobs:
                job.done.set()


# --------------------------------------------------------------------------- service


class ScoringService:
    """The HTTP scoring service around one model, with capture and alias following.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>@<alias>`` (followed), ``models:/<name>/<version>``, ``runs:/`` or a path.
    tracking_uri : str, optional
        MLflow tracking store, also used as the registry.
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`url`).
    capture : CaptureWriter, optional
        Where captured requests and feedback go; ``None`` turns capture off.
    token : str, optional
        Bearer token required on every endpoint but ``/ping``.
    max_body_bytes : int
        Larger request bodies are refused with 413.
    alias_poll_interval : float
        Seconds between registry polls when ``model_uri`` names an alias; 0 stops following.
    request_timeout : float
        Seconds a connection may sit idle or half-sent before it is closed.
    max_batch_rows : int
        Concurrent requests are scored on one worker thread, stacked into model calls of up
        to this many rows (see :class:`Scorer`); 0 scores every request on its own thread.
    max_batch_delay : float
        Seconds the scorer may wait for more requests to share a model call, and only while
        fewer requests are queued than connections are open (never for a lone client).
    model : LoadedModel, optional
        An already loaded model (skips loading in :meth:`start`).

    Examples
    --------
    >>> with ScoringService("models:/bike-demand@champion", tracking_uri=uri, port=0) as svc:  # doctest: +SKIP
    ...     print(svc.url)
    """

    def __init__(
        self,
        model_uri: str,
        *,
        tracking_uri: str | None = None,
        host: str = "127.0.0.1",
        port: int = 5000,
        capture: CaptureWriter | None = None,
        token: str | None = None,
        max_body_bytes: int = 10_000_000,
        alias_poll_interval: float = 10.0,
        request_timeout: float = 30.0,
        max_batch_rows: int = 1000,
        max_batch_delay: float = 0.002,
        model: LoadedModel | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ServeError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.host = host
        self.port = port
        self.capture = capture
        self.token = token or None
        self.max_body_bytes = int(max_body_bytes)
        self.alias_poll_interval = float(alias_poll_interval)
        self.request_timeout = float(request_timeout)
        self.ref = ModelRef.parse(model_uri)
        self.max_batch_rows = int(max_batch_rows)
        self.max_batch_delay = float(max_batch_delay)
        self.scorer = (
            Scorer(self._score, linger=max_batch_delay, expected=lambda: len(self._connections))
            if max_batch_rows > 0
            else None
        )
        self._batching = {"model_calls": 0, "requests": 0}
        self._model = model
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop_event = threading.Event()
        self._lock = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "requests",
                "predictions",
                "rows_scored",
                "client_errors",
                "server_errors",
                "feedback_rows",
                "capture_errors",
            ),
            0,
        )
        self._alias: dict[str, Any] = {"switches": 0, "poll_errors": 0, "last_poll": None, "last_error": None}
        self._started_at: float | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ScoringService:
        """Load the model, start capture, listen, and follow the alias; returns ``self``."""
        if self._server is not None:
            return self
        if self._model is None:
            self._model = load_model(self.model_uri, tracking_uri=self.tracking_uri)
        if not _is_loopback(self.host) and self.token is None:
            logger.warning(
                "serving on %s without a bearer token: anyone who can reach it can score and read /health", self.host
            )
        try:
            self._server = _Server((self.host, self.port), self)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; choose another --port"
            ) from None
        if self.capture is not None:
            self.capture.start()
        if self.scorer is not None:
            self.scorer.start()
        self._started_at = time.time()
        self._spawn("serve-http", lambda: self._server.serve_forever(poll_interval=0.1))  # type: ignore[union-attr]
        if self.ref is not None and self.ref.alias and self.alias_poll_interval > 0:
            self._spawn("alias-poller", self._poll_loop)
        logger.info("serving %s (version %s) at %s", self.model_uri, self.model.version, self.url)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully: finish requests in flight, write all captures, close the socket."""
        server = self._server
        if server is None or self._closed:
            return
        with self._lock:
            self._stopping = True
        self._stop_event.set()
        server.shutdown()  # no new connections
        with self._lock:
            drained = self._lock.wait_for(lambda: self._in_flight == 0, timeout)
            self._closed = True  # from here on, late requests on open connections get 503
        if not drained:
            logger.warning("stopping with %d requests still in flight", self._in_flight)
        if self.scorer is not None:
            self.scorer.stop()
        if self.capture is not None:
            self.capture.close()
        server.server_close()
        self._close_connections()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> ScoringService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """Base URL, with the actual port once listening."""
        host, port = self._server.server_address[:2] if self._server else (self.host, self.port)
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}"

    @property
    def model(self) -> LoadedModel:
        """The model answering new requests."""
        if self._model is None:
            raise ServeError("the service has no model loaded; call start() first")
        return self._model

    # ------------------------------------------------------------------ model switching
    def switch_to(self, model: LoadedModel) -> None:
        """Answer new requests with ``model``; requests in flight finish on the old one."""
        old = self._model
        self._model = model  # a reference swap is atomic; handlers took their own reference
        with self._lock:
            self._alias["switches"] += 1
        if self.capture is not None:
            self.capture.request_flush()
        logger.info("switched from version %s to version %s", old.version if old else None, model.version)

    def check_alias(self) -> bool:
        """Poll the registry once; load and switch when the alias moved. True if switched."""
        if self.ref is None or self.ref.alias is None:
            return False
        try:
            version = resolve_version(registry_client(self.tracking_uri), self.ref)
            switched = False
            if version != self.model.version:
                self.switch_to(load_model(self.model_uri, tracking_uri=self.tracking_uri, version=version))
                switched = True
            self._note_poll(None)
            return switched
        except Exception as exc:  # the registry being away must not stop serving
            self._note_poll(exc)
            return False

    def _poll_loop(self) -> None:
        while not self._stop_event.wait(self.alias_poll_interval):
            self.check_alias()

    def _note_poll(self, exc: BaseException | None) -> None:
        with self._lock:
            self._alias["last_poll"] = _iso(time.time())
            if exc is not None:
                self._alias["poll_errors"] += 1
                self._alias["last_error"] = _first_line(exc)
                logger.warning("alias poll failed: %s", _first_line(exc))

    # ------------------------------------------------------------------ request accounting
    def _enter(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._in_flight += 1
            self._counts["requests"] += 1
            return True

    def _exit(self, status: int, kind: str | None = None, rows: int = 0) -> None:
        with self._lock:
            self._in_flight -= 1
            if status >= 500:
                self._counts["server_errors"] += 1
            elif status >= 400:
                self._counts["client_errors"] += 1
            elif kind == "predictions":
                self._counts["predictions"] += 1
                self._counts["rows_scored"] += rows
            elif kind == "feedback":
                self._counts["feedback_rows"] += rows
            if self._in_flight == 0:
                self._lock.notify_all()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` has begun (responses then close their connection)."""
        return self._stopping

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _close_connections(self) -> None:
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (always true without one)."""
        if self.token is None:
            return True
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def score(self, job: ScoreJob) -> None:
        """Score one request: on the scorer thread with its neighbours, or here if batching is off."""
        if self.scorer is not None:
            self.scorer.run(job)
        else:
            try:
                self._score([job])
            finally:
                job.done.set()

    def _score(self, jobs: list[ScoreJob]) -> None:
        calls = score_jobs(jobs, max(1, self.max_batch_rows))
        for job in jobs:
            if job.error is None:
                self.record(job.request_id, job.inputs, job.outputs, job.model, job.latency_ms, job.timestamp)
        with self._lock:
            self._batching["model_calls"] += calls
            self._batching["requests"] += len(jobs)

    # ------------------------------------------------------------------ capture
    def record(
        self,
        request_id: str,
        inputs: pd.DataFrame,
        outputs: Any,
        model: LoadedModel,
        latency_ms: float,
        timestamp: float,
    ) -> None:
        """Hand one answered request to the capture writer; never raises."""
        if self.capture is None:
            return
        try:
            record = CaptureRecord.from_frame(
                request_id,
                inputs,
                outputs,
                model_name=model.capture_name,
                model_version=model.version or "",
                latency_ms=latency_ms,
                timestamp=timestamp,
            )
            self.capture.submit(record)
        except Exception as exc:  # capture must never fail a prediction
            with self._lock:
                self._counts["capture_errors"] += 1
            logger.warning("capture of request %s failed: %s", request_id, _first_line(exc))

    # ------------------------------------------------------------------ status documents
    def health(self) -> dict[str, Any]:
        """The ``/health`` document: model, request counters, capture counters, alias polling."""
        with self._lock:
            counts = dict(self._counts, in_flight=self._in_flight)
            alias = dict(self._alias)
            batching = dict(self._batching)
        capture = self.capture.stats() if self.capture is not None else {"enabled": False, "healthy": True}
        healthy = capture["healthy"] and counts["capture_errors"] == 0 and alias["last_error"] is None
        return {
            "status": "ok" if healthy else "degraded",
            "model": self.model.describe(),
            "requests": counts,
            "capture": capture,
            "alias": {
                **alias,
                "following": bool(self.ref and self.ref.alias and self.alias_poll_interval > 0),
                "poll_interval": self.alias_poll_interval,
            },
            "batching": {"max_rows": self.max_batch_rows, "max_delay": self.max_batch_delay, **batching},
            "started_at": _iso(self._started_at) if self._started_at else None,
            "stopping": self._stopping,
        }

    def version(self) -> dict[str, Any]:
        """The ``/version`` document."""
        import mlflow

        model = self.model
        return {
            "model_name": model.name,
            "model_version": model.version,
            "model_uri": model.uri,
            "driftgate_version": __version__,
            "mlflow_version": mlflow.__version__,
        }


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """Threading HTTP server without the reverse DNS lookup at bind time."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: ScoringService) -> None:
        self.service = service
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    """One connection; keep-alive, headers and body sent in one write."""

    protocol_version = "HTTP/1.1"
    server_version = f"driftgate/{__version__}"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # buffered: headers and body leave together at the flush
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.service.request_timeout
        super().setup()
        _one_openmp_thread()
        self.server.service._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.service._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ routing
    def _dispatch(self, method: str) -> None:
        service = self.server.service
        self._body_read = False
        path = urlsplit(self.path).path.rstrip("/") or "/"
        request_id = _request_id(self.headers.get(REQUEST_ID_HEADER))
        if path == "/ping" and method == "GET":
            self._send(200, b"\n", request_id)
            return
        if not service._enter():
            self._error(503, "SERVICE_UNAVAILABLE", "the service is shutting down; retry shortly", request_id)
            return
        status, counter, rows = 500, None, 0
        try:
            status, counter, rows = self._route(service, method, path, request_id)
        except InputError as exc:
            status = self._error(exc.status, _CODES.get(exc.status, "BAD_REQUEST"), exc.message, request_id)
        except Exception as exc:  # a bug, not the client's fault; keep serving
            logger.exception("internal error on %s %s", method, path)
            status = self._error(500, "INTERNAL_ERROR", f"internal error: {_first_line(exc)}", request_id)
        finally:
            service._exit(status, counter, rows)

    def _route(self, service: ScoringService, method: str, path: str, request_id: str) -> tuple[int, str | None, int]:
        if path not in _ROUTES:
            raise InputError(f"no endpoint {path}; try /invocations, /feedback, /ping, /health, /version", 404)
        if method != _ROUTES[path]:
            raise InputError(f"{path} accepts {_ROUTES[path]}, not {method}", 405)
        if not service.authorized(self.headers.get("Authorization")):
            self._error(
                401,
                "UNAUTHENTICATED",
                "missing or wrong bearer token",
                request_id,
                {"WWW-Authenticate": 'Bearer realm="driftgate"'},
            )
            return 401, None, 0
        if path == "/invocations":
            return self._invocations(service, request_id)
        if path == "/feedback":
            return self._feedback(service, request_id)
        document = service.health() if path == "/health" else service.version()
        return self._send_json(200, document, request_id), None, 0

    def _invocations(self, service: ScoringService, request_id: str) -> tuple[int, str, int]:
        started, timestamp = time.perf_counter(), time.time()
        body = self._read_body(service.max_body_bytes)
        job = ScoreJob(service.model, body, self.headers.get("Content-Type"), request_id, timestamp, started)
        service.score(job)
        if job.error is not None:
            raise job.error
        return self._send(200, job.payload, request_id, JSON_TYPE), "predictions", len(job.inputs)  # type: ignore[arg-type]

    def _feedback(self, service: ScoringService, request_id: str) -> tuple[int, str, int]:
        body = self._read_body(service.max_body_bytes)
        _media_type(self.headers.get("Content-Type"))
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"the body is not valid JSON: {exc}") from None
        record = parse_feedback(document, service.model.capture_name)
        if service.capture is None:
            raise InputError("feedback needs capture: start the service with capture on", 409)
        if not service.capture.submit(record):
            raise InputError("feedback could not be queued (capture backlog full or stopping); retry", 503)
        return self._send_json(200, {"accepted": record.n_rows}, request_id), "feedback", record.n_rows

    # ------------------------------------------------------------------ body and responses
    def _read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            raise InputError("chunked bodies are not accepted; send a Content-Length", 411)
        text = self.headers.get("Content-Length")
        if text is None:
            raise InputError("a Content-Length header is required", 411)
        try:
            length = int(text)
        except ValueError:
            raise InputError(f"bad Content-Length {text!r}") from None
        if length < 0:
            raise InputError(f"bad Content-Length {text!r}")
        if length > limit:
            raise InputError(
                f"request body of {length} bytes exceeds the limit of {limit} bytes; send fewer rows per request", 413
            )
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise InputError(f"incomplete body: got {len(body)} of {length} bytes")
        self._body_read = True
        return body

    def _error(
        self, status: int, code: str, message: str, request_id: str, headers: dict[str, str] | None = None
    ) -> int:
        return self._send_json(status, {"error_code": code, "message": message}, request_id, headers)

    def _send_json(self, status: int, document: Any, request_id: str, headers: dict[str, str] | None = None) -> int:
        return self._send(status, json.dumps(document, default=str).encode(), request_id, JSON_TYPE, headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        request_id: str,
        content_type: str = JSON_TYPE,
        headers: dict[str, str] | None = None,
    ) -> int:
        unread = not getattr(self, "_body_read", False) and self.headers.get("Content-Length", "0") not in ("0", "")
        if unread or self.server.service.stopping:
            self.close_connection = True  # an unread body would poison the next request
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header(REQUEST_ID_HEADER, request_id)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        return status


_ROUTES = {"/invocations": "POST", "/feedback": "POST", "/ping": "GET", "/health": "GET", "/version": "GET"}
_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    503: "SERVICE_UNAVAILABLE",
}


_OPENMP: list[Any] | None = None


def _one_openmp_thread() -> None:
    """Give the calling thread one OpenMP thread (the setting is per thread in OpenMP).

    Concurrency comes from serving requests on several threads; a model that also fans each
    small prediction out over every core (HistGradientBoosting does) makes the threads wait on
    each other, which on a busy two-core machine multiplies latency by ten.
    """
    global _OPENMP
    if _OPENMP is None:
        try:
            from threadpoolctl import ThreadpoolController

            _OPENMP = list(ThreadpoolController().select(user_api="openmp").lib_controllers)
        except Exception:  # threadpoolctl comes with scikit-learn; without it, leave OpenMP alone
            _OPENMP = []
    for controller in _OPENMP:
        with contextlib.suppress(Exception):
            controller.set_num_threads(1)


def _request_id(given: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a safe token, else a fresh random id."""
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def _jsonable(outputs: Any) -> Any:
    if isinstance(outputs, pd.DataFrame):
        return outputs.to_dict(orient="records")
    if isinstance(outputs, pd.Series | np.ndarray):
        return outputs.tolist()
    return outputs


def parse_feedback(document: Any, model_name: str) -> FeedbackRecord:
    """Check a ``/feedback`` body and turn it into a :class:`FeedbackRecord`.

    The body is ``{"request_ids": [...], "labels": [...]}`` with an optional ``"rows"`` list
    (row within each request, default 0). A label that is a list gives one value per row of a
    multi-row request.

    Examples
    --------
    >>> parse_feedback({"request_ids": ["a", "b"], "labels": [3, [1, 2]]}, "m").rows
    [0, 0, 1]
    """
    if not isinstance(document, dict) or "request_ids" not in document or "labels" not in document:
        raise InputError('feedback must be a JSON object {"request_ids": [...], "labels": [...]} (optionally "rows")')
    extra = sorted(set(document) - {"request_ids", "labels", "rows"})
    if extra:
        raise InputError(f"feedback: unknown key(s) {', '.join(extra)}; use request_ids, labels, rows")
    ids, labels, rows = document["request_ids"], document["labels"], document.get("rows")
    if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels) or not ids:
        raise InputError("feedback: request_ids and labels must be non-empty lists of the same length")
    if rows is not None and (not isinstance(rows, list) or len(rows) != len(ids)):
        raise InputError("feedback: rows must be a list as long as request_ids")
    out_ids: list[str] = []
    out_rows: list[int] = []
    out_labels: list[Any] = []
    for i, (rid, label) in enumerate(zip(ids, labels, strict=True)):
        if not isinstance(rid, str) or not _REQUEST_ID.match(rid):
            raise InputError(f"feedback: request_ids[{i}] is not a request id: {rid!r}")
        values = label if isinstance(label, list) else [label]
        first = 0 if rows is None else rows[i]
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            raise InputError(f"feedback: rows[{i}] must be a row number >= 0, got {first!r}")
        for j, value in enumerate(values):
            if not (value is None or isinstance(value, int | float | str | bool)):
                raise InputError(f"feedback: labels[{i}] must be a number, string, boolean or null")
            out_ids.append(rid)
            out_rows.append(first + j)
            out_labels.append(value)
    return FeedbackRecord(model_name=model_name, request_ids=out_ids, rows=out_rows, labels=out_labels)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _iso(seconds: float) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat(timespec="milliseconds")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class Response:
    """An HTTP response: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    @property
    def request_id(self) -> str | None:
        """The ``X-Request-Id`` header."""
        return self.headers.get(REQUEST_ID_HEADER.lower())


@dataclass(frozen=True)
class Prediction:
    """Predictions of one request and the id the service gave it."""

    values: np.ndarray
    request_id: str


class ServeClient:
    """A small keep-alive client for the scoring service (one per thread).

    Examples
    --------
    >>> client = ServeClient("http://127.0.0.1:5000", token=os.environ.get("DRIFTGATE_TOKEN"))  # doctest: +SKIP
    >>> client.predict(rows).values  # doctest: +SKIP
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ServeError(f"service URL must look like http://127.0.0.1:5000, got {url!r}")
        self.url = url.rstrip("/")
        self.host, self.port = parts.hostname, parts.port or 80
        self.token = token
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send one request, reconnecting once if a kept-alive connection went stale."""
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._conn or http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._conn = conn
            try:
                conn.request(method, path, body=body, headers=sent)
                raw = conn.getresponse()
                payload = raw.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError):
                self.close()
                if reused and attempt == 0:
                    continue
                raise
            headers_out = {k.lower(): v for k, v in raw.getheaders()}
            if raw.will_close:
                self.close()
            return Response(raw.status, headers_out, payload)
        raise AssertionError("unreachable")

    def predict(self, frame: pd.DataFrame, *, request_id: str | None = None) -> Prediction:
        """Score ``frame`` (sent as ``dataframe_split``); raises :class:`ServeError` on non-200."""
        headers = {"Content-Type": JSON_TYPE}
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        response = self.request("POST", "/invocations", encode_frame(frame), headers)
        if response.status != 200:
            raise ServeError(f"{self.url}/invocations answered {response.status}: {_message(response)}")
        values = np.asarray(response.json()["predictions"])
        return Prediction(values, response.request_id or "")

    def feedback(self, request_ids: Sequence[str], labels: Sequence[Any], rows: Sequence[int] | None = None) -> int:
        """Send ground truth; returns the number of labelled rows accepted."""
        document: dict[str, Any] = {"request_ids": list(request_ids), "labels": [_plain(v) for v in labels]}
        if rows is not None:
            document["rows"] = [int(r) for r in rows]
        response = self.request("POST", "/feedback", json.dumps(document).encode(), {"Content-Type": JSON_TYPE})
        if response.status != 200:
            raise ServeError(f"{self.url}/feedback answered {response.status}: {_message(response)}")
        return int(response.json()["accepted"])

    def get_json(self, path: str) -> Any:
        """GET a JSON endpoint such as ``/health``; raises :class:`ServeError` on non-200."""
        response = self.request("GET", path)
        if response.status != 200:
            raise ServeError(f"{self.url}{path} answered {response.status}: {_message(response)}")
        return response.json()

    def close(self) -> None:
        """Close the kept-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ServeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_frame(frame: pd.DataFrame) -> bytes:
    """``{"dataframe_split": ...}`` JSON for ``frame``, with exact float round-trips.

    Examples
    --------
    >>> encode_frame(pd.DataFrame({"a": [1], "b": ["x"]}))
    b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"]]}}'
    """
    split = frame.to_dict(orient="split", index=False)
    return json.dumps(
        {"dataframe_split": {"columns": [str(c) for c in split["columns"]], "data": split["data"]}}
    ).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    return value


def _message(response: Response) -> str:
    try:
        return str(response.json().get("message", response.body[:200]))
    except (ValueError, AttributeError):
        return response.body[:200].decode("utf-8", "replace")


# --------------------------------------------------------------------------- replay


def replay(
    url: str,
    features: pd.DataFrame,
    labels: Sequence[Any] | pd.Series | None = None,
    *,
    rate: float | None = None,
    batch_size: int = 1,
    feedback_every: int = 200,
    token: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Send ``features`` to the service as traffic and ``labels`` as feedback.

    Parameters
    ----------
    url : str
        The service, for example ``http://127.0.0.1:5000``.
    features : pandas.DataFrame
        Rows to score, in the model's input columns.
    labels : sequence, optional
        Ground truth, one per row; sent to ``/feedback`` in batches.
    rate : float, optional
        Requests per second; ``None`` sends as fast as the service answers.
    batch_size : int
        Rows per request.
    feedback_every : int
        Labelled requests per ``/feedback`` call.

    Returns
    -------
    dict
        ``requests``, ``rows``, ``errors``, ``first_error``, ``feedback_rows``, ``seconds``,
        ``requests_per_second``.

    Raises
    ------
    ServeError
        When the service cannot be reached.
    """
    if batch_size < 1:
        raise ServeError(f"batch size must be at least 1, got {batch_size}")
    if rate is not None and rate <= 0:
        raise ServeError(f"rate must be positive requests per second, got {rate}")
    if labels is not None and len(labels) != len(features):
        raise ServeError(f"replay: {len(labels)} labels for {len(features)} rows")
    label_values = list(labels) if labels is not None else None
    summary: dict[str, Any] = {
        "url": url,
        "requests": 0,
        "rows": 0,
        "errors": 0,
        "first_error": None,
        "feedback_rows": 0,
    }
    pending_ids: list[str] = []
    pending_labels: list[Any] = []
    started = time.perf_counter()
    with ServeClient(url, token=token, timeout=timeout) as client:
        for n, first in enumerate(range(0, len(features), batch_size)):
            if rate is not None:
                _sleep_until(started + n / rate)
            chunk = features.iloc[first : first + batch_size]
            try:
                prediction = client.predict(chunk)
            except ServeError as exc:
                summary["errors"] += 1
                summary["first_error"] = summary["first_error"] or str(exc)
                continue
            except OSError as exc:
                raise ServeError(
                    f"cannot reach the scoring service at {url} ({exc}); start it with driftgate serve"
                ) from None
            summary["requests"] += 1
            summary["rows"] += len(chunk)
            if label_values is not None:
                pending_ids.append(prediction.request_id)
                batch = label_values[first : first + batch_size]
                pending_labels.append(batch if batch_size > 1 else batch[0])
                if len(pending_ids) >= feedback_every:
                    summary["feedback_rows"] += client.feedback(pending_ids, pending_labels)
                    pending_ids, pending_labels = [], []
        if pending_ids:
            summary["feedback_rows"] += client.feedback(pending_ids, pending_labels)
    seconds = time.perf_counter() - started
    summary["seconds"] = round(seconds, 3)
    summary["requests_per_second"] = round(summary["requests"] / seconds, 1) if seconds > 0 else None
    return summary


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


# --------------------------------------------------------------------------- smoke test


def smoke_test(
    model_uri: str,
    rows: pd.DataFrame,
    expected: np.ndarray,
    *,
    tracking_uri: str,
    atol: float = 1e-6,
    batch_size: int = 500,
) -> dict[str, Any]:
    """Serve ``model_uri`` on a free local port, score ``rows`` over HTTP, compare, stop.

    The service runs in this process with a random bearer token and capture into a temporary
    folder, exactly as ``driftgate serve`` would run it. Besides the predictions, the test
    checks ``/ping``, ``/version``, that a request without the token is refused, that a request
    missing a column gets a 400, and that every scored row was captured.

    Parameters
    ----------
    model_uri : str
        The candidate, for example ``models:/bike-demand/7``.
    rows : pandas.DataFrame
        Held-out input rows.
    expected : numpy.ndarray
        The offline predictions for ``rows``.
    tracking_uri : str
        MLflow tracking store (also the registry).
    atol : float
        Largest absolute difference allowed between served and offline predictions.

    Returns
    -------
    dict
        JSON-ready: ``passed``, ``reason``, ``n_rows``, ``max_abs_diff``, ``url``,
        ``model_name``, ``model_version``, ``checks`` (each check's outcome),
        ``captured_rows``, ``seconds``.

    Examples
    --------
    >>> result = smoke_test("models:/bike-demand/3", test_x, model.predict(test_x),
    ...                     tracking_uri=params.tracking_uri)  # doctest: +SKIP
    >>> result["passed"]  # doctest: +SKIP
    True
    """
    started = time.perf_counter()
    expected = np.asarray(expected)
    result: dict[str, Any] = {
        "passed": False,
        "reason": "",
        "n_rows": int(len(rows)),
        "max_abs_diff": None,
        "atol": atol,
        "url": None,
        "model_uri": model_uri,
        "model_name": None,
        "model_version": None,
        "checks": {},
        "captured_rows": None,
        "seconds": None,
    }
    if len(rows) == 0 or len(expected) != len(rows):
        result["reason"] = f"need rows and as many expected values: got {len(rows)} rows, {len(expected)} expected"
        return result
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="driftgate-smoke-") as tmp:
        writer = CaptureWriter(Path(tmp) / "captures", flush_interval=0.2)
        service = ScoringService(
            model_uri, tracking_uri=tracking_uri, port=0, capture=writer, token=token, alias_poll_interval=0
        )
        try:
            service.start()
        except (DriftgateError, OSError) as exc:
            result["reason"] = f"service did not start: {exc}"
            result["seconds"] = round(time.perf_counter() - started, 3)
            return result
        try:
            result.update(url=service.url, model_name=service.model.name, model_version=service.model.version)
            served = _smoke_requests(service, token, rows, batch_size, result["checks"])
        except (ServeError, OSError, ValueError, KeyError) as exc:
            served = None
            result["reason"] = f"request failed: {exc}"
        finally:
            service.stop()
        if served is not None:
            result["captured_rows"] = count_rows(writer.capture_dir, service.model.capture_name)
            result["checks"]["captured_all_rows"] = result["captured_rows"] == len(rows)
            _compare(served, expected, atol, result)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _smoke_requests(
    service: ScoringService, token: str, rows: pd.DataFrame, batch_size: int, checks: dict[str, Any]
) -> np.ndarray:
    with ServeClient(service.url, token=token) as client, ServeClient(service.url) as anonymous:
        checks["ping"] = client.request("GET", "/ping").status == 200
        version = client.get_json("/version")
        checks["version_matches"] = version["model_version"] == service.model.version
        refused = anonymous.request("GET", "/health").status
        checks["token_required"] = refused == 401
        schema = service.model.schema
        if schema is not None and len(schema.columns) > 0:
            partial = rows.head(1).drop(columns=[schema.names[0]], errors="ignore")
            status = client.request("POST", "/invocations", encode_frame(partial), {"Content-Type": JSON_TYPE}).status
            checks["missing_column_is_400"] = status == 400
        parts = [client.predict(rows.iloc[i : i + batch_size]).values for i in range(0, len(rows), batch_size)]
    return np.concatenate(parts)


def _compare(served: np.ndarray, expected: np.ndarray, atol: float, result: dict[str, Any]) -> None:
    failed = [name for name, ok in result["checks"].items() if ok is not True]
    if served.shape != expected.shape:
        result["reason"] = f"served predictions have shape {served.shape}, offline {expected.shape}"
        return
    if np.issubdtype(expected.dtype, np.number) and np.issubdtype(served.dtype, np.number):
        diff = np.abs(served.astype(float) - expected.astype(float))
        same_nan = np.isnan(served.astype(float)) & np.isnan(expected.astype(float))
        diff = np.where(same_nan, 0.0, diff)
        worst = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0
        mismatched = int((diff > atol).sum() + np.isnan(diff).sum())
    else:
        worst = 0.0 if np.array_equal(served.astype(str), expected.astype(str)) else math.inf
        mismatched = int((served.astype(str) != expected.astype(str)).sum())
    result["max_abs_diff"] = worst if math.isfinite(worst) else None
    result["mismatched_rows"] = mismatched
    if mismatched:
        result["reason"] = (
            f"{mismatched} of {len(expected)} predictions differ from offline by more than {result['atol']}"
        )
    elif failed:
        result["reason"] = f"failed checks: {', '.join(failed)}"
    else:
        result["passed"] = True
        result["reason"] = f"{len(expected)} served predictions equal the offline ones within {result['atol']}"


# --------------------------------------------------------------------------- params


def check_serve_params(params: Params) -> None:
    """Checks on ``serve:`` values that their types alone cannot express."""
    serve = params.serve
    where = params.source or "params"
    if not 0 <= serve.port <= 65535:
        raise ParamsError(f"{where}: serve.port: must lie between 0 and 65535, got {serve.port}")
    for key in ("flush_interval",):
        if getattr(serve, key) <= 0:
            raise ParamsError(f"{where}: serve.{key}: must be positive, got {getattr(serve, key)}")
    for key in ("alias_poll_interval",):
        if getattr(serve, key) < 0:
            raise ParamsError(f"{where}: serve.{key}: must be 0 (off) or positive, got {getattr(serve, key)}")
    if not 0 <= serve.max_batch_delay <= 1:
        raise ParamsError(f"{where}: serve.max_batch_delay: seconds between 0 and 1, got {serve.max_batch_delay}")
    if serve.max_batch_rows < 0:
        raise ParamsError(f"{where}: serve.max_batch_rows: must be 0 (off) or positive, got {serve.max_batch_rows}")
    for key in ("max_body_bytes", "max_pending_rows"):
        if getattr(serve, key) < 1:
            raise ParamsError(f"{where}: serve.{key}: must be at least 1, got {getattr(serve, key)}")
    if serve.request_timeout <= 0:
        raise ParamsError(f"{where}: serve.request_timeout: must be positive, got {serve.request_timeout}")


def model_uri_for(params: Params) -> str:
    """``serve.model_uri``, else ``models:/<mlflow.model_name>@champion``."""
    return params.serve.model_uri or f"models:/{params.mlflow.model_name}@champion"


def capture_dir_for(params: Params) -> Path:
    """``serve.capture_dir`` (relative to the params file's folder), else ``<outputs>/captures``."""
    if not params.serve.capture_dir:
        return params.outputs_dir / "captures"
    path = Path(params.serve.capture_dir).expanduser()
    if path.is_absolute():
        return path
    base = Path(params.source).resolve().parent if params.source else Path.cwd()
    return (base / path).resolve()


def service_from_params(
    params: Params,
    *,
    model_uri: str | None = None,
    host: str | None = None,
    port: int | None = None,
    capture: bool | None = None,
) -> ScoringService:
    """Build (not start) the service the params describe; the token comes from ``serve.token_env``."""
    check_serve_params(params)
    serve = params.serve
    token = os.environ.get(serve.token_env) if serve.token_env else None
    writer = None
    if serve.capture if capture is None else capture:
        writer = CaptureWriter(
            capture_dir_for(params),
            fmt=serve.capture_format,
            flush_interval=serve.flush_interval,
            max_pending_rows=serve.max_pending_rows,
        )
    return ScoringService(
        model_uri or model_uri_for(params),
        tracking_uri=params.tracking_uri,
        host=host or serve.host,
        port=serve.port if port is None else port,
        capture=writer,
        token=token,
        max_body_bytes=serve.max_body_bytes,
        alias_poll_interval=serve.alias_poll_interval,
        request_timeout=serve.request_timeout,
        max_batch_rows=serve.max_batch_rows,
        max_batch_delay=serve.max_batch_delay,
    )
