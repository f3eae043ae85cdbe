"""Column typing: which features are numeric, categorical, dates, IDs or excluded.

:func:`infer_column_types`: strings and booleans are categorical; integer columns (or floats
holding only whole numbers) with at most ``categorical_max_unique`` distinct baseline values are
categorical; other numbers are numeric; datetime columns and ID-like columns (all values
distinct: text, or whole numbers forming a run or rising with the row) are excluded with a
note. ``column_types`` overrides any of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers.core.config import DriftParams
from helpers.core.errors import DataError
from helpers.stats.profiling import numeric_array
from helpers.stats.selection import check_overrides

FEW_VALUES = 30  # fewer values than this on a side: tests have little power (noted)


def infer_column_types(
    df: pd.DataFrame, params: DriftParams, features: Sequence[str] | None = None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Type each feature as numeric, categorical, datetime, id or exclude.

    Parameters
    ----------
    df : pandas.DataFrame
        The baseline (types are decided on the reference data).
    params : DriftParams
        ``categorical_max_unique`` and the ``column_types`` overrides are used.
    features : sequence of str, optional
        Columns to type (default: all columns of ``df``).

    Returns
    -------
    types : dict of str to str
    notes : dict of str to list of str
        Why a column got its type when that is not obvious (overrides, integer codes, exclusions).

    Examples
    --------
    >>> df = pd.DataFrame({"x": [0.5, 1.5, 2.5], "code": [1, 2, 1], "name": ["a", "b", "a"]})
    >>> infer_column_types(df, DriftParams())[0]
    {'x': 'numeric', 'code': 'categorical', 'name': 'categorical'}
    """
    check_overrides(params)
    names = list(df.columns) if features is None else list(features)
    types: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    for name in names:
        if name not in df.columns:
            raise DataError(f"column {name!r} is not in the table")
        override = params.column_types.get(name)
        if override is not None:
            types[name] = override
            notes[name] = [f"type {override} set by drift.column_types"]
            continue
        ctype, note = _infer_one(df[name], params.categorical_max_unique)
        types[name] = ctype
        notes[name] = [note] if note else []
    return types, notes


def _infer_one(series: pd.Series, max_unique: int) -> tuple[str, str | None]:
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return "datetime", "datetime column: excluded (pass it as the time column for drift over time)"
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical", None
    if pd.api.types.is_numeric_dtype(dtype):
        return _infer_numbers(numeric_array(series), max_unique, as_text=False)
    present = series.dropna()
    if present.empty:
        return "categorical", None
    if looks_like_dates(present):
        return "datetime", "text holding dates: excluded (pass it as the time column for drift over time)"
    if all_numbers(present.iloc[:100]):  # a cheap look first: converting all text is slow
        as_numbers = pd.to_numeric(present, errors="coerce")
        if as_numbers.notna().all():
            return _infer_numbers(as_numbers.to_numpy(dtype=float), max_unique, as_text=True)
    distinct = present.nunique()
    if len(present) >= FEW_VALUES and distinct >= 0.9 * len(present):
        return "id", f"ID-like text ({distinct} distinct values in {len(present)} rows): excluded"
    return "categorical", None


def _infer_numbers(values: np.ndarray, max_unique: int, as_text: bool) -> tuple[str, str | None]:
    prefix = "numbers stored as text; " if as_text else ""
    head = values[:1000]
    head = head[np.isfinite(head)]
    if head.size and not np.all(head == np.floor(head)):  # a cheap look first: measurements fail at once
        return "numeric", (prefix + "numeric") if as_text else None
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "numeric", (prefix or None)
    if not np.all(finite == np.floor(finite)):
        return "numeric", (prefix + "numeric") if as_text else None
    distinct = int(np.unique(finite).size)
    if _id_like_integers(values, finite, distinct):
        return "id", f"ID-like integers (all {distinct} values distinct, consecutive or rising): excluded"
    if distinct <= max_unique:
        return "categorical", (
            f"{prefix}whole numbers with {distinct} distinct values "
            f"(<= drift.categorical_max_unique = {max_unique}): categorical"
        )
    return "numeric", (prefix + "numeric") if as_text else None


def _id_like_integers(values: np.ndarray, finite: np.ndarray, distinct: int) -> bool:
    if finite.size < FEW_VALUES or distinct != finite.size:
        return False
    consecutive = finite.max() - finite.min() + 1 == finite.size
    rising = bool(np.all(np.diff(finite) > 0))
    return consecutive or rising


def all_numbers(sample: pd.Series) -> bool:
    """Whether every value of ``sample`` reads as a number."""
    return bool(pd.to_numeric(sample, errors="coerce").notna().all())


def looks_like_dates(present: pd.Series) -> bool:
    """Whether the first 100 present values are text holding dates or times."""
    sample = present.iloc[:100].astype(str)
    if not sample.str.contains(r"\d").all() or not sample.str.contains(r"[-/:]").all():
        return False
    if sample.str.len().min() < 8:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())
