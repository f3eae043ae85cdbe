"""The params schema: one dataclass per section, each key's type and range declared once.

A key's range is type metadata: ``Annotated[int, Interval(ge=1, le=65535)]`` (from
``annotated_types``), or one of the markers below (:class:`Matches`, :class:`IsoDate`,
:class:`TaskMetric`). :func:`helpers.core.config.load_params` checks every declared constraint;
:func:`helpers.core.config.json_schema.params_json_schema` turns the same declarations into
a JSON Schema for editors (``params/schema.json``).

Example
-------
>>> split_annotated(section_fields(ServeParams)["port"])
(<class 'int'>, [Ge(ge=0), Le(le=65535)])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, GroupedMetadata, Gt, Interval, Len

# --------------------------------------------------------------------------- constraint markers


@dataclass(frozen=True)
class Matches:
    """The whole text must match ``pattern`` (a regular expression valid in Python and JSON Schema)."""

    pattern: str
    expected: str  # what a matching value is, for the error message: "'x' is not <expected>"


@dataclass(frozen=True)
class IsoDate:
    """A date ``YYYY-MM-DD`` or an ISO date-time."""

    pattern: typing.ClassVar[str] = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"


@dataclass(frozen=True)
class TaskMetric:
    """A metric name known for the params' ``data.task`` (see :data:`KNOWN_METRICS`); checked
    after the whole file is read, since it depends on another key."""


DEFAULT_METRIC = {"regression": "rmse", "classification": "f1"}  # what a metric key left null means
KNOWN_METRICS = {
    "regression": {"mae": "lower", "rmse": "lower", "r2": "higher"},
    "classification": {
        "accuracy": "higher", "balanced_accuracy": "higher", "precision": "higher", "recall": "higher",
        "f1": "higher", "roc_auc": "higher", "log_loss": "lower", "brier": "lower",
    },
}

# --------------------------------------------------------------------------- value types

Port = Annotated[int, Interval(ge=1, le=65535)]
ListenPort = Annotated[int, Interval(ge=0, le=65535)]  # 0 picks a free port
Share = Annotated[float, Interval(ge=0, le=1)]  # shares, probabilities, p-value levels
OpenShare = Annotated[float, Interval(gt=0, lt=1)]  # a share that must leave rows on both sides
Positive = Annotated[float, Gt(0)]  # thresholds, seconds, days
NonNegative = Annotated[float, Ge(0)]  # 0 means off (or exact, for tolerances)
Count = Annotated[int, Ge(0)]  # 0 means none / off
AtLeastOne = Annotated[int, Ge(1)]
Seed = Annotated[int, Interval(ge=0, le=2**32 - 1)]  # NumPy and scikit-learn seeds
Date = Annotated[str, IsoDate()]
Metric = Annotated[str, TaskMetric()]
Bounds = Annotated[list[float], Len(2, 2)]  # [low, high]

DriftTest = Literal["ks", "chi2", "wasserstein", "psi", "jensenshannon", "energy", "euclidean"]
ColumnType = Literal["numeric", "categorical", "datetime", "id", "exclude"]
DRIFT_TESTS: tuple[str, ...] = typing.get_args(DriftTest)
COLUMN_TYPES: tuple[str, ...] = typing.get_args(ColumnType)

Scheduler = Annotated[str, Matches(r"^(pandas|local|(tcp|tls|inproc|ucx|ws|wss)://\S+)$",
                                   "pandas, local or a scheduler address like tcp://host:8786")]
MemorySize = Annotated[str, Matches(r"^(auto|[0-9]*\.?[0-9]+ *([kKmMgGtTpP][iI]?)?[bB]?)$",
                                    "auto or a size like 2GB or 512MiB")]
HttpUrl = Annotated[str, Matches(r"^https?://\S+$", "an http:// or https:// URL")]
FactoryPath = Annotated[str, Matches(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", "a function path like my_package.models:build")]

# --------------------------------------------------------------------------- sections


@dataclass
class TimeParams:
    """How each row's timestamp is found or built."""

    column: str | None = None  # an existing datetime column; or build one from the keys below
    origin: Date | None = None  # first day, e.g. "2011-01-01"
    day_column: str | None = None  # day number counted from 1 at ``origin``
    hour_column: str | None = None  # hour of the day, 0..23
    unit: Literal["s", "ms"] | None = None  # the column holds epoch seconds or milliseconds
    timezone: str | None = None  # convert times to this zone (e.g. Europe/Paris); null keeps the data's


@dataclass
class ReadParams:
    """How a CSV file is read (Parquet files need none of this)."""

    sep: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    na_values: list[str] = field(default_factory=list)  # extra strings that mean "missing"


@dataclass
class DataParams:
    """The input table, its target, its features and its time axis."""

    path: str = "data/bike_sharing_2011.csv"
    target: str = "bikers"
    task: Literal["regression", "classification"] = "regression"
    features: list[str] = field(default_factory=list)
    forbidden_features: list[str] = field(default_factory=list)
    time: TimeParams = field(default_factory=TimeParams)
    read: ReadParams = field(default_factory=ReadParams)


@dataclass
class WindowParams:
    """A half-open time window ``[start, end)``; dates as ``YYYY-MM-DD`` (or ISO date-times)."""

    start: Date = ""
    end: Date = ""


@dataclass
class WindowsParams:
    """The baseline (training) window and the current window compared with it."""

    baseline: WindowParams = field(default_factory=WindowParams)
    current: WindowParams = field(default_factory=WindowParams)


@dataclass
class SplitParams:
    """How the baseline window is split into train and test rows."""

    method: Literal["time", "random"] = "time"
    test_size: OpenShare = 0.2
    seed: Seed = 42


@dataclass
class ModelParams:
    """The estimator, named by its scikit-learn class, and its hyperparameters."""

    type: str = "HistGradientBoostingRegressor"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    factory: FactoryPath | None = None  # "package.module:function" returning an unfitted estimator


@dataclass
class ValidationParams:
    """Data checks run by the investigate step; their pass/fail feeds the release gates."""

    min_rows: Count = 100
    max_missing_share: Share = 0.05
    max_duplicate_share: Share = 0.01
    ranges: dict[str, Bounds] = field(default_factory=dict)  # column -> [low, high]
    target_min: float | None = None


@dataclass
class DriftThresholds:
    """Decision thresholds: p-value tests drift below theirs, distances above theirs."""

    ks: Share = 0.05
    chi2: Share = 0.05
    wasserstein: Positive = 0.1  # normalised by the baseline standard deviation
    jensenshannon: Positive = 0.1
    psi: Positive = 0.2
    energy: Positive = 0.1  # normalised by the baseline standard deviation
    euclidean: Positive = 0.1


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
    per_feature: dict[str, DriftTest] = field(default_factory=dict)  # feature -> test name
    column_types: dict[str, ColumnType] = field(default_factory=dict)  # numeric|categorical|datetime|id|exclude
    categorical_max_unique: Count = 20  # integer columns with at most this many values are categorical
    small_sample: Count = 1000
    # Which count the auto rule compares with small_sample: "smaller_side" (min of baseline and
    # target values; avoids distance false alarms on small targets) or "baseline" (Evidently).
    small_sample_rule: Literal["smaller_side", "baseline"] = "smaller_side"
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    correction: Literal["none", "bonferroni", "benjamini-hochberg"] = "none"
    bins: AtLeastOne = 20
    drift_share: Share = 0.5
    coefficient_threshold: Share = 0.5
    coefficient_sample: Count = 20000  # rows for the drift-coefficient classifier; 0 turns it off
    period: str = "W"  # pandas period alias for drift over time: D, W, M, ...
    seed: Seed = 0


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

    metric: Metric | None = None  # null: the task's default metric (rmse, or f1 for classification)
    # shadow: requests the champion and the shadow version both answered (serve.shadow)
    compare_on: Literal["current", "test", "captured", "shadow"] = "current"
    min_improvement: NonNegative = 0.0
    relative: bool = False
    captured_days: Positive = 30.0
    min_captured_rows: AtLeastOne = 100
    # compare_on: captured without enough feedback: compare estimated performance (CBPE/DLE) instead
    use_estimates: bool = False
    min_rows: AtLeastOne = 100  # compare_on shadow: labelled requests both versions answered, before deciding
    min_agreement: Share = 0.0  # compare_on shadow: least share of requests where both versions agree


@dataclass
class GatesParams:
    """Release gates applied by the deploy step, and how releases take turns."""

    metrics: dict[Metric, MetricGate] = field(default_factory=dict)  # on the held-out test rows
    current_metrics: dict[Metric, MetricGate] = field(default_factory=dict)  # on the current window
    champion: ChampionGate = field(default_factory=ChampionGate)
    block_on_drift: bool = False
    require_validation: bool = True
    smoke_tolerance: NonNegative = 1e-6  # largest |served - offline| prediction difference
    require_approval: bool = False  # then a passing version waits for `driftgate approve <version>`
    lock_timeout: NonNegative = 120.0  # seconds to wait for another release to finish
    lock_stale_after: Positive = 600.0  # a release lock older than this is from a crashed release


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
    webhook_url: HttpUrl | None = None
    smtp_host: str | None = None
    smtp_port: Port = 25
    email_from: str = "driftgate@localhost"
    email_to: list[str] = field(default_factory=list)
    timeout: Positive = 10.0


@dataclass
class MonitorParams:
    """Monitoring of captured traffic against the champion's training baseline."""

    period: Literal["hour", "day", "week", "month"] = "day"  # default window: this long, ending now
    min_rows: Count = 50  # fewer captured rows: no decision, and the report says so
    metric: Metric | None = None  # on captured rows with feedback; null: rmse, or f1 for classification
    max_degradation: NonNegative = 0.25  # relative worsening of ``metric`` against the champion's test value
    retrain: bool = False  # on drift or degradation, retrain on the period's labelled captures
    retrain_test_share: OpenShare = 0.25  # latest share of those rows held out as the retraining's current window
    baseline_sample: Count = 20000  # training rows kept with the model, for the drift coefficient on traffic
    min_labelled_rows: AtLeastOne = 50  # fewer rows with feedback: judge the estimated metric instead
    calibration: Literal["isotonic", "platt"] = "isotonic"  # of class probabilities, for estimated performance
    confidence: OpenShare = 0.95  # level of the band around an estimated metric
    # move champion back to previous (and end a canary) when the live metric degrades beyond max_degradation
    rollback: bool = False


@dataclass
class OutputsParams:
    """Where runs, the MLflow store and captures are written."""

    dir: str = "../outputs"  # relative to the params file


@dataclass
class RunParams:
    """How the runner executes notebooks."""

    kernel: str = "python3"
    timeout: AtLeastOne = 1200  # seconds one cell may take
    progress: bool = True
    threads: AtLeastOne = 1  # OpenMP/BLAS threads in each notebook: 1 is fastest on small data and busy machines
    notebooks: str = "../notebooks"  # the four step notebooks; relative to the params file


@dataclass
class CanaryParams:
    """A share of live requests answered by another version (sticky per session header)."""

    alias: str = "challenger"  # an alias or a version number
    share: Share = 0.1  # of requests answered by the canary
    sticky_header: str = "X-Session-Id"  # requests with the same value go to the same version


@dataclass
class ServeParams:
    """The scoring service: where it listens, what it serves, how it captures and guards."""

    host: str = "127.0.0.1"  # bind address; anything else should come with a token
    port: ListenPort = 5000  # 0 picks a free port
    model_uri: str | None = None  # default: models:/<mlflow.model_name>@champion
    alias_poll_interval: NonNegative = 10.0  # seconds between registry polls; 0 = do not follow
    capture: bool = True
    capture_dir: str | None = None  # default: <outputs>/captures; relative to the params file
    capture_format: Literal["parquet", "jsonl"] = "parquet"
    output: Literal["label", "probabilities", "both"] = "both"  # what a classifier answers
    flush_interval: Positive = 1.0  # seconds; a hard kill loses at most this much capture
    max_pending_rows: AtLeastOne = 100000  # capture rows held in memory before new ones are dropped
    max_body_bytes: AtLeastOne = 10000000  # larger request bodies are refused with 413
    token_env: str = "DRIFTGATE_TOKEN"  # bearer token required when this variable is set
    request_timeout: Positive = 30.0  # seconds a request may take to arrive and be answered
    keep_alive_timeout: Positive = 5.0  # seconds an idle keep-alive connection is kept open
    shutdown_timeout: Positive = 30.0  # seconds a graceful stop waits for requests in flight
    max_connections: AtLeastOne = 1000  # concurrent connections; beyond it requests get 503
    tls_cert: str | None = None  # PEM certificate: serve HTTPS (relative to the params file)
    tls_key: str | None = None  # PEM private key of tls_cert
    allow_public_without_token: bool = False  # bind beyond loopback without a bearer token
    # async: captures are written in the background (a hard kill loses up to flush_interval);
    # sync: a prediction is answered only once its capture is fsynced to a write-ahead log
    capture_mode: Literal["async", "sync"] = "async"
    shadow: str | None = None  # an alias or version scored beside the champion, off the response path
    shadow_queue: AtLeastOne = 10_000  # answered requests waiting for the shadow at most; more are dropped
    canary: CanaryParams | None = None  # answer a share of requests with another version
    max_batch_rows: Count = 1000  # concurrent requests are scored in one model call up to this; 0 = off
    max_batch_delay: Share = 0.002  # seconds a request may wait for others to share its model call (at most 1)


@dataclass
class ComputeParams:
    """Where profiles of tables too big for memory are computed (see :mod:`helpers.stats.scale`)."""

    # "pandas": in this process (the default; driftgate drift then compares rows, exactly);
    # "local": a dask.distributed LocalCluster on this machine; or a scheduler address such as
    # "tcp://host:8786". Only profiles (and the drift coefficient's sample) travel back.
    scheduler: Scheduler = "pandas"  # pandas, local, or a Dask scheduler address (tcp://, tls://, inproc://)
    n_workers: AtLeastOne = 2  # local cluster: number of workers
    threads_per_worker: AtLeastOne = 1  # local cluster: threads per worker
    memory_limit: MemorySize = "2GB"  # local cluster: memory per worker ("auto": share of the machine)
    processes: bool = True  # local cluster: workers in their own processes (false: threads here)
    partition_rows: AtLeastOne = 1000000  # most rows per partition: Parquet row groups are grouped up to this
    fine_bins: AtLeastOne = 1024  # fine-histogram bins per numeric column (KS and Wasserstein come from them)
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


LOADER_FIELDS = ("source", "raw")  # Params fields set by the loader, not keys of a params file


def hash_mapping(mapping: Any) -> str:
    """SHA-256 of a JSON-ready mapping in canonical form (sorted keys)."""
    text = json.dumps(mapping, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- reading the declarations


def section_fields(cls: type) -> dict[str, Any]:
    """The keys of section ``cls`` and their declared types (with their constraint metadata)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in LOADER_FIELDS}


def split_annotated(tp: Any) -> tuple[Any, list[Any]]:
    """``(base type, constraints)`` of a type hint; grouped constraints such as Interval are expanded."""
    if typing.get_origin(tp) is not Annotated:
        return tp, []
    base, *metadata = typing.get_args(tp)
    flat: list[Any] = []
    for item in metadata:
        flat.extend(item if isinstance(item, GroupedMetadata) else [item])
    return base, flat


def is_optional(tp: Any) -> bool:
    """Whether the type hint admits ``None``."""
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def without_none(tp: Any) -> Any:
    """``X`` for ``X | None`` (the params model has no other unions)."""
    return next(a for a in typing.get_args(tp) if a is not type(None)) if is_optional(tp) else tp
