"""The params model: schema, loading, overrides and validation (see :func:`load_params`).

:mod:`~helpers.core.config.schema` declares every key's type and range,
:mod:`~helpers.core.config.loading` reads files and overrides,
:mod:`~helpers.core.config.validation` checks them, and
:mod:`~helpers.core.config.json_schema` describes them for editors; the public names are
re-exported here.
"""

from helpers.core.config.json_schema import params_json_schema, params_json_schema_text
from helpers.core.config.loading import DEFAULT_OUTPUTS, PATH_KEYS, apply_override, load_params, read_yaml
from helpers.core.config.schema import (
    COLUMN_TYPES,
    DRIFT_TESTS,
    KNOWN_METRICS,
    AlertParams,
    ChampionGate,
    ComputeParams,
    DataParams,
    DriftParams,
    DriftThresholds,
    GatesParams,
    MetricGate,
    MlflowParams,
    ModelParams,
    MonitorParams,
    OutputsParams,
    Params,
    ReadParams,
    RunParams,
    ServeParams,
    SplitParams,
    TimeParams,
    ValidationParams,
    WindowParams,
    WindowsParams,
    hash_mapping,
)
from helpers.core.config.validation import build_section

__all__ = [
    "COLUMN_TYPES",
    "DRIFT_TESTS",
    "AlertParams",
    "ChampionGate",
    "ComputeParams",
    "DEFAULT_OUTPUTS",
    "DataParams",
    "DriftParams",
    "DriftThresholds",
    "GatesParams",
    "KNOWN_METRICS",
    "MetricGate",
    "MlflowParams",
    "ModelParams",
    "ReadParams",
    "MonitorParams",
    "OutputsParams",
    "PATH_KEYS",
    "Params",
    "RunParams",
    "ServeParams",
    "SplitParams",
    "TimeParams",
    "ValidationParams",
    "WindowParams",
    "WindowsParams",
    "apply_override",
    "build_section",
    "hash_mapping",
    "load_params",
    "params_json_schema",
    "params_json_schema_text",
    "read_yaml",
]
