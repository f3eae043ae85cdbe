"""The model's input schema: the signature's named columns, and checking a frame against them.

A request whose inputs do not fit is refused with :class:`InputError` naming the missing
column, or the column, row and value of the wrong type.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_INT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_FLOAT_DTYPES = {"double": np.float64, "float": np.float32}
_INT_DTYPES = {"long": np.int64, "integer": np.int32}


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
    helpers.serving.schema.InputError: column 'hr' expects long values; row 0 has str '3'
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
    lo, hi = _INT_BOUNDS[spec.type]
    if kind in "iu":
        if (spec.type == "integer" or kind == "u") and len(column) and (column.min() < lo or column.max() > hi):
            _fail_value(column, spec, lambda v: lo <= v <= hi)
        return column if column.dtype == dtype else column.astype(dtype)
    if kind == "f":
        values = column.to_numpy()
        missing = np.isnan(values)
        if missing.any():
            _fail_missing(spec, int(np.argmax(missing)))
        whole = np.isfinite(values) & (values == np.floor(values)) & (values >= lo) & (values <= hi)
        if not whole.all():
            i = int(np.argmin(whole))
            raise InputError(
                f"column '{spec.name}' expects {spec.type} values; row {i} has {values[i]!r}, "
                f"not a whole number from {lo} to {hi}"
            )
        return column.astype(dtype)
    _fail_value(
        column,
        spec,
        lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) and lo <= v <= hi,
    )
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
