"""The parameter model: loading YAML, applying ``key=value`` overrides, strict validation.

Every section of a params file is a dataclass below. :func:`load_params` reads the file,
applies overrides, and builds the dataclasses, checking every key and type. Any problem
raises :class:`~helpers.errors.ParamsError` with one line naming the file and the key path,
for example::

    params/default.yaml: model.hyperparameters.max_iter: expected an integer, got 'many'

Relative paths written in a params file are resolved against that file's folder; relative
paths given as overrides are resolved against the current working directory.

Example
-------
>>> params = load_params("params/default.yaml", ["split.test_size=0.3"])  # doctest: +SKIP
>>> params.split.test_size  # doctest: +SKIP
0.3
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from helpers.core.errors import ParamsError

# --------------------------------------------------------------------------- sections


@dataclass
class TimeParams:
    """How each row's timestamp is found or built."""

    column: str | None = None  # an existing datetime column; or build one from the keys below
    origin: str | None = None  # first day, e.g. "2011-01-01"
    day_column: str | None = None  # day number counted from 1 at ``origin``
    hour_column: str | None = None  # hour of the day, 0..23


@dataclass
class DataParams:
    """The input table, its target, its features and its time axis."""

    path: str = "data/bike_sharing_2011.csv"
    target: str = "bikers"
    task: Literal["regression", "classification"] = "regression"
    features: list[str] = field(default_factory=list)
    forbidden_features: list[str] = field(default_factory=list)
    time: TimeParams = field(default_factory=TimeParams)


@dataclass
class WindowParams:
    """A half-open time window ``[start, end)``; dates as ``YYYY-MM-DD`` (or ISO date-times)."""

    start: str = ""
    end: str = ""


@dataclass
class WindowsParams:
    """The baseline (training) window and the current window compared with it."""

    baseline: WindowParams = field(default_factory=WindowParams)
    current: WindowParams = field(default_factory=WindowParams)


@dataclass
class SplitParams:
    """How the baseline window is split into train and test rows."""

    method: Literal["time", "random"] = "time"
    test_size: float = 0.2
    seed: int = 42


@dataclass
class ModelParams:
    """The estimator, named by its scikit-learn class, and its hyperparameters."""

    type: str = "HistGradientBoostingRegressor"
    hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValidationParams:
    """Data checks run by the investigate step; their pass/fail feeds the release gates."""

    min_rows: int = 100
    max_missing_share: float = 0.05
    max_duplicate_share: float = 0.01
    ranges: dict[str, list[float]] = field(default_factory=dict)
    target_min: float | None = None


@dataclass
class DriftThresholds:
    """Decision thresholds: p-value tests drift below theirs, distances above theirs."""

    ks: float = 0.05
    chi2: float = 0.05
    wasserstein: float = 0.1  # normalised by the baseline standard deviation
    jensenshannon: float = 0.1
    psi: float = 0.2
    energy: float = 0.1  # normalised by the baseline standard deviation
    euclidean: float = 0.1


@dataclass
class DriftParams:
    """Drift test selection, thresholds and the dataset-level decision."""

    # Test choice, most specific first: per_feature, then numeric_test / categorical_test, then
    # test (used for each column type it applies to), then the "auto" rule: p-value tests (KS,
    # chi-squared) when a side has <= small_sample values, else distances (Wasserstein / sigma,
    # Jensen-Shannon), as Evidently does.
    test: Literal[
        "auto", "ks", "chi2", "wasserstein", "psi", "jensenshannon", "energy", "euclidean"
    ] = "auto"
    numeric_test: Literal["auto", "ks", "wasserstein", "psi", "jensenshannon", "energy"] = "auto"
    categorical_test: Literal["auto", "chi2", "jensenshannon", "psi", "euclidean"] = "auto"
    per_feature: dict[str, str] = field(default_factory=dict)  # feature -> test name
    column_types: dict[str, str] = field(default_factory=dict)  # numeric|categorical|datetime|id|exclude
    categorical_max_unique: int = 20  # integer columns with at most this many values are categorical
    small_sample: int = 1000
    # Which count the auto rule compares with small_sample: "smaller_side" (min of baseline and
    # target values; avoids distance false alarms on small targets) or "baseline" (Evidently).
    small_sample_rule: Literal["smaller_side", "baseline"] = "smaller_side"
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    correction: Literal["none", "bonferroni", "benjamini-hochberg"] = "none"
    bins: int = 20
    drift_share: float = 0.5
    coefficient_threshold: float = 0.5
    coefficient_sample: int = 20000  # rows for the drift-coefficient classifier; 0 turns it off
    period: str = "W"  # pandas period alias for drift over time: D, W, M, ...
    seed: int = 0


@dataclass
class MetricGate:
    """Bounds on one evaluation metric; either may be left out."""

    min: float | None = None
    max: float | None = None


@dataclass
class ChampionGate:
    """The challenger must beat the champion on the same rows by at least this much.

    ``min_improvement`` is in the metric's units, or a fraction of the champion's value when
    ``relative``; the direction (lower or higher is better) follows the metric. The rows are
    the current window, the held-out test rows, or the scoring service's captured rows that
    received feedback in the last ``captured_days`` days (at least ``min_captured_rows``).
    """

    metric: str = "rmse"
    compare_on: Literal["current", "test", "captured"] = "current"
    min_improvement: float = 0.0
    relative: bool = False
    captured_days: float = 30.0
    min_captured_rows: int = 100


@dataclass
class GatesParams:
    """Release gates applied by the deploy step, and how releases take turns."""

    metrics: dict[str, MetricGate] = field(default_factory=dict)  # on the held-out test rows
    current_metrics: dict[str, MetricGate] = field(default_factory=dict)  # on the current window
    champion: ChampionGate = field(default_factory=ChampionGate)
    block_on_drift: bool = False
    require_validation: bool = True
    smoke_tolerance: float = 1e-6  # largest |served - offline| prediction difference
    require_approval: bool = False  # then a passing version waits for `driftgate approve <version>`
    lock_timeout: float = 120.0  # seconds to wait for another release to finish
    lock_stale_after: float = 600.0  # a release lock older than this is from a crashed release


@dataclass
class MlflowParams:
    """Where runs and models are tracked; ``tracking_uri`` (also the registry) defaults to
    ``MLFLOW_TRACKING_URI``, else SQLite under outputs."""

    tracking_uri: str | None = None
    experiment: str = "driftgate"
    model_name: str = "bike-demand"


@dataclass
class AlertParams:
    """Alert sinks: a JSONL file (always), an HTTP webhook, email over SMTP."""

    file: str | None = None  # default: <outputs>/alerts.jsonl
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    email_from: str = "driftgate@localhost"
    email_to: list[str] = field(default_factory=list)
    timeout: float = 10.0


@dataclass
class MonitorParams:
    """Monitoring of captured traffic against the champion's training baseline."""

    period: Literal["hour", "day", "week", "month"] = "day"  # default window: this long, ending now
    min_rows: int = 50  # fewer captured rows: no decision, and the report says so
    metric: str = "rmse"  # performance metric on captured rows that have feedback
    max_degradation: float = 0.25  # relative worsening of ``metric`` against the champion's test value
    retrain: bool = False  # on drift or degradation, retrain on the period's labelled captures
    retrain_test_share: float = 0.25  # latest share of those rows held out as the retraining's current window


@dataclass
class OutputsParams:
    """Where runs, the MLflow store and captures are written."""

    dir: str = "../outputs"  # relative to the params file


@dataclass
class RunParams:
    """How the runner executes notebooks."""

    kernel: str = "python3"
    timeout: int = 1200
    progress: bool = True
    threads: int = 1  # OpenMP/BLAS threads in each notebook: 1 is fastest on small data and busy machines
    notebooks: str = "../notebooks"  # the four step notebooks; relative to the params file


@dataclass
class ServeParams:
    """The scoring service: where it listens, what it serves, how it captures and guards."""

    host: str = "127.0.0.1"  # bind address; anything else should come with a token
    port: int = 5000
    model_uri: str | None = None  # default: models:/<mlflow.model_name>@champion
    alias_poll_interval: float = 10.0  # seconds between registry polls; 0 = do not follow
    capture: bool = True
    capture_dir: str | None = None  # default: <outputs>/captures; relative to the params file
    capture_format: Literal["parquet", "jsonl"] = "parquet"
    flush_interval: float = 1.0  # seconds; a hard kill loses at most this much capture
    max_pending_rows: int = 100000  # capture rows held in memory before new ones are dropped
    max_body_bytes: int = 10000000  # larger request bodies are refused with 413
    token_env: str = "DRIFTGATE_TOKEN"  # bearer token required when this variable is set
    request_timeout: float = 30.0  # seconds an idle or half-sent connection is kept
    max_batch_rows: int = 1000  # concurrent requests are scored in one model call up to this; 0 = off
    max_batch_delay: float = 0.002  # seconds a request may wait for others to share its model call


@dataclass
class ComputeParams:
    """Where profiles of tables too big for memory are computed (see :mod:`helpers.compute`)."""

    # "pandas": in this process (the default; driftgate drift then compares rows, exactly);
    # "local": a dask.distributed LocalCluster on this machine; or a scheduler address such as
    # "tcp://host:8786". Only profiles (and the drift coefficient's sample) travel back.
    scheduler: str = "pandas"
    n_workers: int = 2  # local cluster: number of workers
    threads_per_worker: int = 1  # local cluster: threads per worker
    memory_limit: str = "2GB"  # local cluster: memory per worker ("auto": share of the machine)
    processes: bool = True  # local cluster: workers in their own processes (false: threads here)
    partition_rows: int = 1000000  # most rows per partition: Parquet row groups are grouped up to this
    fine_bins: int = 1024  # fine-histogram bins per numeric column (KS and Wasserstein come from them)
    progress: bool = True  # a progress bar over partitions (on a terminal)


@dataclass
class Params:
    """A whole, validated params file."""

    data: DataParams = field(default_factory=DataParams)
    windows: WindowsParams = field(default_factory=WindowsParams)
    split: SplitParams = field(default_factory=SplitParams)
    model: ModelParams = field(default_factory=ModelParams)
    validation: ValidationParams = field(default_factory=ValidationParams)
    drift: DriftParams = field(default_factory=DriftParams)
    gates: GatesParams = field(default_factory=GatesParams)
    mlflow: MlflowParams = field(default_factory=MlflowParams)
    alerts: AlertParams = field(default_factory=AlertParams)
    monitor: MonitorParams = field(default_factory=MonitorParams)
    outputs: OutputsParams = field(default_factory=OutputsParams)
    run: RunParams = field(default_factory=RunParams)
    serve: ServeParams = field(default_factory=ServeParams)
    compute: ComputeParams = field(default_factory=ComputeParams)
    source: str = ""  # the file the params came from (set by the loader)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # merged YAML, as given

    # ------------------------------------------------------------------ derived values
    @property
    def outputs_dir(self) -> Path:
        """The outputs folder as an absolute path."""
        return Path(self.outputs.dir)

    @property
    def tracking_uri(self) -> str:
        """Tracking URI: params, else ``MLFLOW_TRACKING_URI``, else SQLite under outputs."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{self.outputs_dir / 'mlflow.db'}"

    @property
    def params_hash(self) -> str:
        """SHA-256 of the merged parameters (canonical JSON), the key of a run's settings."""
        return hash_mapping(self.raw)

    def to_dict(self) -> dict[str, Any]:
        """The validated parameters as plain JSON-ready data."""
        out = dataclasses.asdict(self)
        out.pop("raw")
        return out


PATH_KEYS = ("data.path", "outputs.dir", "alerts.file", "serve.capture_dir", "run.notebooks")
DEFAULT_OUTPUTS = "../outputs"  # relative to the params file, so params/x.yaml writes to outputs/
DEFAULT_NOTEBOOKS = "../notebooks"  # relative to the params file: the project's notebooks/

# --------------------------------------------------------------------------- loading


def load_params(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Params:
    """Load, override and validate a params file; raise :class:`ParamsError` on any problem."""
    source = Path(path)
    if not source.is_file():
        raise ParamsError(
            f"{source}: params file not found; pass an existing YAML file "
            "(for example params/default.yaml)"
        )
    raw = read_yaml(source)
    _resolve_paths(raw, base=source.resolve().parent, where=str(source))
    for item in overrides or []:
        apply_override(raw, item, where=str(source))
    params = build_section(Params, raw, where=str(source), key_path="")
    params.source = str(source)
    params.raw = raw
    _check_semantics(params, where=str(source))
    return params


def read_yaml(source: Path) -> dict[str, Any]:
    """The YAML mapping in ``source``; ParamsError naming the line when it is not valid."""
    try:
        loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{source}:{line}: not valid YAML ({exc.__class__.__name__})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParamsError(f"{source}: the top level must be a mapping of sections")
    return loaded


def _resolve_paths(raw: dict[str, Any], base: Path, where: str) -> None:
    """Make relative path values absolute against ``base`` (the params file's folder)."""
    for dotted in PATH_KEYS:
        parent, _, leaf = dotted.rpartition(".")
        section = raw.get(parent)
        if isinstance(section, dict) and isinstance(section.get(leaf), str):
            value = Path(section[leaf]).expanduser()
            section[leaf] = str(value if value.is_absolute() else (base / value).resolve())
    for section, key, default in (("outputs", "dir", DEFAULT_OUTPUTS), ("run", "notebooks", DEFAULT_NOTEBOOKS)):
        values = raw.get(section)
        if values is None or (isinstance(values, dict) and key not in values):
            raw[section] = {**(values or {}), key: str((base / default).resolve())}


def apply_override(raw: dict[str, Any], item: str, where: str) -> None:
    """Apply one ``a.b.c=value`` override; the value is parsed as YAML."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParamsError(f"{where}: override {item!r}: write overrides as key.path=value")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    if key in PATH_KEYS and isinstance(value, str):
        value = str(Path(value).expanduser().resolve())
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            done = ".".join(parts[: i + 1])
            raise ParamsError(f"{where}: override {item!r}: {done} is not a section")
        node = child
    node[parts[-1]] = value


# --------------------------------------------------------------------------- validation


def build_section(cls: type, raw: Any, where: str, key_path: str) -> Any:
    """Build dataclass ``cls`` from ``raw``, checking unknown keys and value types."""
    label = key_path or "top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: {label}: expected a mapping of keys, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("source", "raw")}
    for key in raw:
        if key not in fields:
            raise ParamsError(f"{where}: {_join(key_path, key)}: unknown key{_suggest(key, fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name in fields:
        if name in raw:
            values[name] = _coerce(hints[name], raw[name], where, _join(key_path, name))
    return cls(**values)


def _coerce(tp: Any, value: Any, where: str, key_path: str) -> Any:
    """Check ``value`` against type hint ``tp`` and return it (ints are accepted as floats)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, where, key_path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where, key_path)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ParamsError(f"{where}: {key_path}: {_show(value)} is not one of {choices}")
        return value
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{where}: {key_path}: expected a list, got {_show(value)}")
        return [_coerce(args[0], v, where, f"{key_path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: {key_path}: expected a mapping, got {_show(value)}")
        return {str(k): _coerce(args[1], v, where, f"{key_path}.{k}") for k, v in value.items()}
    return _coerce_scalar(tp, value, where, key_path)


def _coerce_scalar(tp: Any, value: Any, where: str, key_path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ParamsError(f"{where}: {key_path}: expected true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ParamsError(f"{where}: {key_path}: expected an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ParamsError(f"{where}: {key_path}: expected a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        if hasattr(value, "isoformat"):  # YAML turns 2011-01-01 into a date
            return value.isoformat()
        raise ParamsError(f"{where}: {key_path}: expected a string, got {_show(value)}")
    return value


def _check_semantics(params: Params, where: str) -> None:
    """Checks across keys that types alone cannot express."""
    data = params.data
    if not data.features:
        raise ParamsError(f"{where}: data.features: list at least one feature column")
    leaks = sorted(set(data.features) & set(data.forbidden_features))
    if leaks:
        raise ParamsError(
            f"{where}: data.features: {', '.join(leaks)} listed in data.forbidden_features "
            "(they leak the target); remove them from data.features"
        )
    if data.target in data.features:
        raise ParamsError(f"{where}: data.features: the target {data.target!r} cannot be a feature")
    if not 0.0 < params.split.test_size < 1.0:
        raise ParamsError(f"{where}: split.test_size: must lie between 0 and 1, got {params.split.test_size}")
    for name in ("baseline", "current"):
        window = getattr(params.windows, name)
        for end in ("start", "end"):
            _check_date(getattr(window, end), where, f"windows.{name}.{end}")
        if dt.datetime.fromisoformat(window.start) >= dt.datetime.fromisoformat(window.end):
            raise ParamsError(f"{where}: windows.{name}: start {window.start} must be before end {window.end}")
    if params.monitor.metric not in KNOWN_METRICS[data.task]:
        raise ParamsError(
            f"{where}: monitor.metric: unknown metric {params.monitor.metric!r}"
            f"{_suggest(params.monitor.metric, KNOWN_METRICS[data.task])}"
        )
    for section in ("metrics", "current_metrics"):
        for metric in getattr(params.gates, section):
            if metric not in KNOWN_METRICS[data.task]:
                raise ParamsError(
                    f"{where}: gates.{section}.{metric}: unknown metric for a {data.task} task"
                    f"{_suggest(metric, KNOWN_METRICS[data.task])}"
                )
    if params.gates.lock_timeout < 0 or params.gates.lock_stale_after <= 0:
        raise ParamsError(f"{where}: gates.lock_timeout / gates.lock_stale_after: must be positive")
    if params.gates.champion.metric not in KNOWN_METRICS[data.task]:
        raise ParamsError(
            f"{where}: gates.champion.metric: unknown metric {params.gates.champion.metric!r}"
            f"{_suggest(params.gates.champion.metric, KNOWN_METRICS[data.task])}"
        )


KNOWN_METRICS = {
    "regression": {"mae": "lower", "rmse": "lower", "r2": "higher"},
    "classification": {"accuracy": "higher", "f1": "higher", "roc_auc": "higher"},
}


def _check_date(text: str, where: str, key_path: str) -> None:
    try:
        dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ParamsError(f"{where}: {key_path}: expected a date like 2011-01-31, got {_show(text)}") from None


# --------------------------------------------------------------------------- small helpers


def _join(key_path: str, key: str) -> str:
    return f"{key_path}.{key}" if key_path else str(key)


def _suggest(key: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys: {', '.join(sorted(valid))}"


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing (null)"


def hash_mapping(mapping: Any) -> str:
    """SHA-256 of a JSON-ready mapping in canonical form (sorted keys)."""
    text = json.dumps(mapping, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
