"""Checks of a table against what the params ask of it, each failing with one line.

:func:`helpers.modeling.data.check_params_against_data` calls them in order: the data path
(:func:`check_data_path`), the table's rows and columns (:func:`check_table`), its times
(:func:`check_times`) and that each window holds labels (:func:`check_window_labels`). ``driftgate
drift`` checks its two tables with :func:`check_comparable`. Every mistake raises a
:class:`~helpers.core.errors.ParamsError` or :class:`~helpers.core.errors.DataError` naming the
params file and key, the data file and the column, and how to fix it, e.g.::

    params.yaml: data.features: column 'temp' of data.csv has no values (every row is missing);
    remove it from data.features or fill it

Example
-------
>>> import pandas as pd
>>> stray_text(pd.Series(["1.5", "2", "warm", None, "3", "4"]))
(2, 'warm')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from helpers.core.config import Params
from helpers.core.errors import DataError, ParamsError

GLOB_CHARS = "*?["
NUMBER_SHARE = 0.8  # a text column this much made of numbers is a numeric column with stray text
EXAMPLES = 3  # values quoted in a message


# --------------------------------------------------------------------------- the file


def check_not_folder(path: str | Path) -> None:
    """A table path that is a folder: say so, and how to name its files."""
    if Path(path).is_dir():
        raise DataError(
            f"{path}: is a folder, not a file; name a CSV or Parquet file, or a glob of them such as "
            f"{Path(path) / '*.parquet'}"
        )


def check_data_path(path: str, where: str) -> None:
    """``data.path`` must be a file (or a glob), not a folder."""
    if any(ch in path for ch in GLOB_CHARS):
        return
    if Path(path).is_dir():
        raise ParamsError(
            f"{where}: data.path: {path} is a folder, not a file; name a CSV or Parquet file, "
            f"or a glob of them such as {Path(path) / '*.parquet'}"
        )


# --------------------------------------------------------------------------- the table


def check_table(frame: pd.DataFrame, params: Params, where: str) -> None:
    """Rows, target, features and the columns of ``validation.ranges`` fit what the params ask.

    Call it once the named columns are known to exist.
    """
    path = params.data.path
    if frame.empty:
        raise ParamsError(
            f"{where}: data.path: {path} has column names but no rows; give a file with data"
        )
    _check_target(frame, params, where)
    for name in params.data.features:
        column = frame[name]
        if column.isna().all():
            raise ParamsError(
                f"{where}: data.features: column {name!r} of {path} has no values (every row is "
                "missing); remove it from data.features or fill it"
            )
        check_numbers(column, path, f"{where}: data.features: ")
    _check_ranges(frame, params, where)


def _check_target(frame: pd.DataFrame, params: Params, where: str) -> None:
    target, path = params.data.target, params.data.path
    values = frame[target]
    if values.isna().all():
        raise ParamsError(
            f"{where}: data.target: column {target!r} of {path} has no values; fill it or choose "
            "another data.target"
        )
    check_numbers(values, path, f"{where}: data.target: ")
    numeric = _is_number(values)
    if params.data.task == "regression" and not numeric:
        raise ParamsError(
            f"{where}: data.target: regression needs numbers, but column {target!r} of {path} "
            f"holds {_show(values)}; set data.task: classification or choose a numeric target"
        )
    if params.validation.target_min is not None and not numeric:
        raise ParamsError(
            f"{where}: validation.target_min: column {target!r} of {path} holds {_show(values)}, "
            "not numbers; remove validation.target_min"
        )


def _check_ranges(frame: pd.DataFrame, params: Params, where: str) -> None:
    for name in params.validation.ranges:
        if name in frame.columns and not _is_number(frame[name]):
            check_numbers(frame[name], params.data.path, f"{where}: validation.ranges.{name}: ")
            raise ParamsError(
                f"{where}: validation.ranges.{name}: column {name!r} of {params.data.path} holds "
                f"{_show(frame[name])}, not numbers; fix the column or remove its range"
            )


def check_numbers(column: pd.Series, path: str | Path, where: str = "") -> None:
    """A column of numbers with a few text cells (``'n/a'``, ``'1,5'``) is a data error.

    Raises
    ------
    DataError
        Naming the file, the column, a bad cell and its row, and the ``data.read`` keys that
        read such cells as missing values or decimal commas.
    """
    found = stray_text(column)
    if found is None:
        return
    row, value = found
    bad = int(pd.to_numeric(column.dropna(), errors="coerce").isna().sum())
    raise DataError(
        f"{where}{path}: column {column.name!r} holds numbers but {bad} cell(s) are text, such as {value!r} "
        f"in data row {row + 1}; fix them, or list {value!r} in data.read.na_values if it means "
        "missing (data.read.decimal for decimal commas)"
    )


def stray_text(column: pd.Series) -> tuple[int, str] | None:
    """``(row position, value)`` of the first text cell of a mostly numeric text column, else None."""
    if _is_number(column) or not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return None
    present = column.reset_index(drop=True).dropna()
    if present.empty or not present.map(lambda v: isinstance(v, str)).all():
        return None
    parsed = pd.to_numeric(present, errors="coerce")
    if parsed.notna().mean() < NUMBER_SHARE or parsed.notna().all():
        return None
    first = int(parsed.index[parsed.isna()][0])
    return first, str(present.loc[first])


# --------------------------------------------------------------------------- times and windows


def check_times(times: pd.Series, params: Params, where: str) -> None:
    """At least one row must have a time, or no window can hold any row."""
    if times.notna().any():
        return
    time = params.data.time
    source = f"column {time.column!r}" if time.column else f"columns {time.day_column!r} from {time.origin}"
    raise ParamsError(
        f"{where}: data.time: no row of {params.data.path} has a time ({source} is empty or "
        "unreadable); check data.time"
    )


def check_window_labels(rows: pd.DataFrame, params: Params, where: str, name: str) -> None:
    """A window holds labelled rows (rows without a label are left out of training and evaluation,
    and counted); a classifier's baseline holds two classes or more."""
    target = params.data.target
    labels = rows[target].dropna()
    if labels.empty:
        raise ParamsError(
            f"{where}: data.target: none of the {len(rows)} rows in windows.{name} has a {target!r} value "
            f"in {params.data.path}; choose a window with labelled rows"
        )
    if name == "baseline" and params.data.task == "classification":
        classes = labels.unique()
        if len(classes) < 2:
            raise ParamsError(
                f"{where}: data.target: windows.baseline holds one class of {target!r} "
                f"({classes[0]!r}) in {params.data.path}; a classifier needs two or more: widen "
                "windows.baseline or check data.task"
            )


# --------------------------------------------------------------------------- two tables


def check_comparable(
    baseline: pd.DataFrame, target: pd.DataFrame, baseline_path: str, target_path: str,
    features: Sequence[str] | None = None,
) -> None:
    """Both tables have rows and, without ``features``, share at least one column."""
    for frame, path, side in ((baseline, baseline_path, "baseline"), (target, target_path, "target")):
        if frame.empty:
            raise DataError(f"the {side} is empty (0 rows): --{side} {path} has only column names; "
                            "give a table with data")
    if features:
        return
    if not set(baseline.columns) & set(target.columns):
        raise DataError(
            f"--baseline {baseline_path} and --target {target_path} share no column; the baseline "
            f"has {_names(baseline.columns)}, the target {_names(target.columns)}"
        )


# --------------------------------------------------------------------------- helpers


def _is_number(column: pd.Series) -> bool:
    """Numbers or booleans (not dates, not text)."""
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _show(column: pd.Series) -> str:
    values = column.dropna().astype(str).unique()[:EXAMPLES]
    return "values such as " + ", ".join(map(repr, values)) if len(values) else "no values"


def _names(columns: pd.Index, most: int = 10) -> str:
    names = [str(c) for c in columns]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
