"""Building the params sections from YAML values: types, declared ranges, cross-key checks.

Every problem raises :class:`~helpers.core.errors.ParamsError` with one line naming the file
and the key path, for example::

    params/default.yaml: serve.port: must lie between 0 and 65535, got 70000
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import typing
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen

from helpers.core.config.schema import (
    DEFAULT_METRIC,
    KNOWN_METRICS,
    IsoDate,
    Matches,
    Params,
    TaskMetric,
    section_fields,
    split_annotated,
    without_none,
)
from helpers.core.errors import ParamsError

# --------------------------------------------------------------------------- types


def build_section(cls: type, raw: Any, where: str, key_path: str) -> Any:
    """Build dataclass ``cls`` from ``raw``, checking unknown keys, value types and ranges."""
    label = key_path or "top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: {label}: expected a mapping of keys, got {show(raw)}")
    fields = section_fields(cls)
    for key in raw:
        if key not in fields:
            raise ParamsError(f"{where}: {join(key_path, key)}: unknown key{suggest(key, fields)}")
    values = {name: coerce(tp, raw[name], where, join(key_path, name)) for name, tp in fields.items() if name in raw}
    return cls(**values)


def coerce(tp: Any, value: Any, where: str, key_path: str) -> Any:
    """Check ``value`` against type hint ``tp`` and its constraints; return it (ints pass as floats)."""
    base, constraints = split_annotated(tp)
    if constraints:
        value = coerce(base, value, where, key_path)
        check_constraints(constraints, value, where, key_path)
        return value
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, where, key_path)
    if without_none(tp) is not tp:
        return None if value is None else coerce(without_none(tp), value, where, key_path)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ParamsError(f"{where}: {key_path}: {show(value)} is not one of {choices}")
        return value
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{where}: {key_path}: expected a list, got {show(value)}")
        return [coerce(args[0], v, where, f"{key_path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: {key_path}: expected a mapping, got {show(value)}")
        return {str(k): coerce(args[1], v, where, f"{key_path}.{k}") for k, v in value.items()}
    return _coerce_scalar(tp, value, where, key_path)


def _coerce_scalar(tp: Any, value: Any, where: str, key_path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ParamsError(f"{where}: {key_path}: expected true or false, got {show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ParamsError(f"{where}: {key_path}: expected an integer, got {show(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ParamsError(f"{where}: {key_path}: expected a number, got {show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        if hasattr(value, "isoformat"):  # YAML turns 2011-01-01 into a date
            return value.isoformat()
        raise ParamsError(f"{where}: {key_path}: expected a string, got {show(value)}")
    return value


# --------------------------------------------------------------------------- declared constraints


def check_constraints(constraints: list[Any], value: Any, where: str, key_path: str) -> None:
    """Raise ParamsError when ``value`` breaks one of its declared constraints (None passes)."""
    if value is None:
        return
    numeric = isinstance(value, int | float)
    problem = (_range_problem(constraints, value) if numeric else None) or _length_problem(constraints, value)
    problem = problem or _text_problem(constraints, value)
    if problem:
        raise ParamsError(f"{where}: {key_path}: {problem}")


def _text_problem(constraints: list[Any], value: Any) -> str | None:
    for item in constraints:
        if isinstance(item, Matches) and not re.fullmatch(item.pattern, value):
            return f"{value!r} is not {item.expected}"
        if isinstance(item, IsoDate) and not _is_date(value):
            return f"expected a date like 2011-01-31, got {show(value)}"
    return None


def _range_problem(constraints: list[Any], value: float) -> str | None:
    lower = next((c for c in constraints if isinstance(c, Ge | Gt)), None)
    upper = next((c for c in constraints if isinstance(c, Le | Lt)), None)
    low_ok = lower is None or (value >= lower.ge if isinstance(lower, Ge) else value > lower.gt)
    high_ok = upper is None or (value <= upper.le if isinstance(upper, Le) else value < upper.lt)
    if low_ok and high_ok:
        return None
    return f"{_range_text(lower, upper)}, got {number(value)}"


def _range_text(lower: Ge | Gt | None, upper: Le | Lt | None) -> str:
    if lower is None or upper is None:
        return f"must be {_bound_text(lower or upper)}"
    low, high = number(_limit(lower)), number(_limit(upper))
    if isinstance(lower, Ge) and isinstance(upper, Le):
        return f"must lie between {low} and {high}"
    if isinstance(lower, Gt) and isinstance(upper, Lt):
        return f"must lie between {low} and {high} (exclusive)"
    return f"must be {_bound_text(lower)} and {_bound_text(upper)}"


def _bound_text(bound: Ge | Gt | Le | Lt | None) -> str:
    limit = number(_limit(bound))
    if isinstance(bound, Gt):
        return "positive" if limit == "0" else f"more than {limit}"
    if isinstance(bound, Lt):
        return f"less than {limit}"
    return f"at least {limit}" if isinstance(bound, Ge) else f"at most {limit}"


def _limit(bound: Ge | Gt | Le | Lt | None) -> float:
    return next(getattr(bound, attr) for attr in ("ge", "gt", "le", "lt") if hasattr(bound, attr))


def _length_problem(constraints: list[Any], value: Any) -> str | None:
    if not isinstance(value, list | dict | str):
        return None
    shortest = next((c.min_length for c in constraints if isinstance(c, MinLen)), 0)
    longest = next((c.max_length for c in constraints if isinstance(c, MaxLen)), len(value))
    if shortest <= len(value) <= longest:
        return None
    if shortest == longest:
        return f"expected {shortest} values, got {len(value)}"
    if len(value) < shortest:
        return f"expected at least {shortest} values, got {len(value)}"
    return f"expected at most {longest} values, got {len(value)}"


def _is_date(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- across keys


def check_semantics(params: Params, where: str) -> None:
    """Checks across keys that a key's own type and range cannot express."""
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
    if not data.time.column and not (data.time.origin and data.time.day_column):
        raise ParamsError(f"{where}: data.time: give either column, or origin and day_column")
    _check_windows(params, where)
    _check_bounds(params, where)
    check_task_metrics(params, data.task, where)


def _check_windows(params: Params, where: str) -> None:
    for name in ("baseline", "current"):
        window = getattr(params.windows, name)
        for end in ("start", "end"):
            check_constraints([IsoDate()], getattr(window, end), where, f"windows.{name}.{end}")
        start, end = dt.datetime.fromisoformat(window.start), dt.datetime.fromisoformat(window.end)
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise ParamsError(f"{where}: windows.{name}: give both start and end a UTC offset, or neither "
                              f"(got {window.start} and {window.end})")
        if start >= end:
            raise ParamsError(f"{where}: windows.{name}: start {window.start} must be before end {window.end}")


def _check_bounds(params: Params, where: str) -> None:
    """``[low, high]`` pairs and min/max gates must not be upside down."""
    for column, (low, high) in params.validation.ranges.items():
        if low > high:
            raise ParamsError(f"{where}: validation.ranges.{column}: low {number(low)} is above high {number(high)}")
    for section in ("metrics", "current_metrics"):
        for metric, gate in getattr(params.gates, section).items():
            if gate.min is not None and gate.max is not None and gate.min > gate.max:
                raise ParamsError(f"{where}: gates.{section}.{metric}: min {number(gate.min)} is above "
                                  f"max {number(gate.max)}")


def check_task_metrics(section: Any, task: str, where: str, key_path: str = "") -> None:
    """Every key declared a :class:`TaskMetric` (a value, or a mapping's keys) must be a metric of ``task``."""
    known = KNOWN_METRICS[task]
    for name, tp in section_fields(type(section)).items():
        value, path = getattr(section, name), join(key_path, name)
        base, constraints = split_annotated(without_none(tp))
        if dataclasses.is_dataclass(base):
            if value is not None:  # an optional section left out
                check_task_metrics(value, task, where, path)
        elif any(isinstance(c, TaskMetric) for c in constraints) and value is None:
            setattr(section, name, DEFAULT_METRIC[task])
        elif any(isinstance(c, TaskMetric) for c in constraints) and value not in known:
            raise ParamsError(f"{where}: {path}: unknown metric {value!r}{suggest(value, known)}")
        elif typing.get_origin(base) is dict and _declares_metric(typing.get_args(base)[0]):
            for metric in value:
                if metric not in known:
                    raise ParamsError(f"{where}: {path}.{metric}: unknown metric for a {task} task"
                                      f"{suggest(metric, known)}")


def _declares_metric(tp: Any) -> bool:
    return any(isinstance(c, TaskMetric) for c in split_annotated(tp)[1])


# --------------------------------------------------------------------------- message helpers


def join(key_path: str, key: str) -> str:
    """``a.b`` + ``c`` -> ``a.b.c`` (a top-level key stays as it is)."""
    return f"{key_path}.{key}" if key_path else str(key)


def suggest(key: str, valid: typing.Iterable[str]) -> str:
    """``; did you mean 'x'?`` for a close match, else the list of valid names."""
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys: {', '.join(sorted(valid))}"


def show(value: Any) -> str:
    """A value with its YAML type, for messages: ``str 'big'``, ``nothing (null)``."""
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing (null)"


def number(value: float) -> str:
    """A bound or value as written: ``1`` for 1.0, ``0.25``, ``65535``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
