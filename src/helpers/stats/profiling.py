"""Building profiles: values prepared, histograms on fixed edges, tables and Dask frames profiled.

:func:`profile_frame` profiles the columns of a pandas table (or one partition of it) into a
:class:`~helpers.stats.profile.FrameProfile`; :func:`profile_dask` profiles every partition of a
Dask DataFrame and merges the profiles. Numeric columns are binned on edges fixed by the
baseline (:func:`baseline_edges`), with an underflow and an overflow bin, so that profiles of
other tables can be compared with it and merged.

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, None], "c": ["a", "b", "a", "a"]})
>>> prof = profile_frame(df, {"x": "numeric", "c": "categorical"}, bins=4)
>>> prof.columns["x"].count, prof.columns["x"].missing, prof.columns["c"].counts
(3, 1, {'a': 3, 'b': 1})
>>> merged = prof.merge(prof)
>>> merged.columns["c"].counts["a"]
6
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from helpers.stats.profile import CategoricalProfile, ColumnProfile, FrameProfile, NumericProfile

DEFAULT_BINS = 20
DEFAULT_FINE_BINS = 1024
SUM_BLOCK = 65_536  # values per block of squared deviations (fits in the CPU cache)


# --------------------------------------------------------------------------- value preparation


def numeric_array(series: pd.Series) -> np.ndarray:
    """Return a column as a float64 array with missing values as NaN.

    Booleans become 0/1; nullable integer and float dtypes are unpacked; text that is not a
    number raises ``ValueError`` (callers decide how to report it).
    """
    if series.dtype == np.float64:  # the common case: the column's own buffer, read-only, no copy
        return _read_only(series.to_numpy())
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(float).to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)


def _read_only(values: np.ndarray) -> np.ndarray:
    if values.flags.writeable:
        values = values.view()
        values.flags.writeable = False
    return values


def split_finite(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Split float values into the finite ones, the number missing and the number infinite.

    When every value is finite (the common case) ``values`` itself is returned, not a copy.
    """
    finite_mask = np.isfinite(values)
    if finite_mask.all():
        return values, 0, 0
    missing = int(np.isnan(values).sum())
    return values[finite_mask], missing, int(values.size - finite_mask.sum()) - missing


def category_label(value: Any) -> str:
    """One text label per category, so 1, 1.0 and "1" from two sides land in one category."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Count each category (missing values excluded) and the missing values of a column."""
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]  # a pandas Categorical lists its unused categories too
    missing = int(len(series) - counts.sum())
    labels = [category_label(v) for v in counts.index]
    summed: dict[str, int] = {}
    for label, count in zip(labels, counts.to_numpy(), strict=True):
        summed[label] = summed.get(label, 0) + int(count)
    return summed, missing


# --------------------------------------------------------------------------- histograms


def baseline_edges(finite: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Equal-width bin edges over the range of the baseline's finite values.

    A constant column gets bins centred on its value; an empty one gets edges on [0, 1].
    """
    if finite.size == 0:
        return edges_from_range(None, bins)
    return edges_from_range((float(finite.min()), float(finite.max())), bins)


def edges_from_range(value_range: tuple[float, float] | None, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Equal-width edges over ``(low, high)``; see :func:`baseline_edges`."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if value_range is None:
        return np.linspace(0.0, 1.0, bins + 1)
    low, high = value_range
    if low == high:
        half = 0.5 * max(abs(low), 1.0)
        low, high = low - half, high + half
    return np.linspace(low, high, bins + 1)


def histogram_with_overflow(finite: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in ``[underflow, bin 1 .. bin k, overflow]`` on fixed ``edges``.

    Inside the range the bins are those of ``np.histogram`` (half-open, the last one closed);
    values below the first edge go to the underflow bin, above the last to the overflow bin.
    """
    k = len(edges) - 1
    index = np.searchsorted(edges, finite, side="right")
    index[finite == edges[-1]] = k
    return np.bincount(index, minlength=k + 2).astype(np.int64)


def sorted_histogram(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """:func:`histogram_with_overflow` of values already in ascending order (same counts)."""
    left = np.searchsorted(sorted_values, edges, side="left")
    closed_end = np.searchsorted(sorted_values, edges[-1], side="right")
    bounds = np.concatenate([[0], left[:-1], [closed_end, sorted_values.size]])
    return np.diff(bounds).astype(np.int64)


def _outside_sums(finite: np.ndarray, edges: np.ndarray, is_sorted: bool = False) -> tuple[float, float]:
    if is_sorted:
        below = finite[: np.searchsorted(finite, edges[0], side="left")]
        above = finite[np.searchsorted(finite, edges[-1], side="right") :]
    else:
        below = finite[finite < edges[0]]
        above = finite[finite > edges[-1]]
    return float(below.sum()), float(above.sum())


# --------------------------------------------------------------------------- profiles


def profile_numeric(
    finite: np.ndarray,
    missing: int,
    infinite: int,
    edges: np.ndarray,
    fine_bins: int = DEFAULT_FINE_BINS,
    *,
    is_sorted: bool = False,
) -> NumericProfile:
    """Profile of prepared numeric values (see :func:`split_finite`) on fixed ``edges``.

    With ``is_sorted=True`` (values in ascending order) the histograms take a binary search
    per edge instead of one per value.
    """
    n = int(finite.size)
    mean = float(finite.mean()) if n else math.nan
    m2 = squared_deviations(finite, mean) if n else 0.0
    histogram = sorted_histogram if is_sorted else histogram_with_overflow
    fine_edges = np.linspace(edges[0], edges[-1], fine_bins + 1) if fine_bins else None
    under, over = _outside_sums(finite, edges, is_sorted)
    return NumericProfile(
        count=n,
        missing=missing,
        infinite=infinite,
        mean=mean,
        m2=m2,
        min=(float(finite[0]) if is_sorted else float(finite.min())) if n else math.nan,
        max=(float(finite[-1]) if is_sorted else float(finite.max())) if n else math.nan,
        edges=np.asarray(edges, dtype=float),
        hist=histogram(finite, edges),
        fine_hist=histogram(finite, fine_edges) if fine_edges is not None else np.zeros(0, np.int64),
        under_sum=under,
        over_sum=over,
    )


def squared_deviations(values: np.ndarray, mean: float, block: int = SUM_BLOCK) -> float:
    """``sum((values - mean) ** 2)``, block by block so the deviations stay in the CPU cache
    (numpy's pairwise sums, not BLAS: many small threaded dot products cost more than they save)."""
    buffer = np.empty(min(block, values.size))
    total = 0.0
    for start in range(0, values.size, block):
        part = buffer[: min(block, values.size - start)]
        np.subtract(values[start : start + block], mean, out=part)
        np.square(part, out=part)
        total += float(part.sum())
    return total


def profile_frame(
    df: pd.DataFrame,
    column_types: Mapping[str, str],
    edges: Mapping[str, np.ndarray] | None = None,
    *,
    bins: int = DEFAULT_BINS,
    fine_bins: int = DEFAULT_FINE_BINS,
) -> FrameProfile:
    """Profile the columns of ``df`` named in ``column_types``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table, or one partition of it.
    column_types : mapping of str to str
        ``"numeric"`` or ``"categorical"`` per column; other types are skipped.
    edges : mapping of str to numpy.ndarray, optional
        Coarse bin edges per numeric column, fixed by the baseline. Columns without edges get
        equal-width edges over their own range (that is how the baseline fixes them). Pass
        ``baseline_profile.edges`` when profiling a target or any further partition, so that
        the profiles can be compared and merged.
    bins, fine_bins : int
        Number of coarse and fine bins for columns whose edges are computed here.

    Returns
    -------
    FrameProfile

    Examples
    --------
    >>> base = profile_frame(pd.DataFrame({"x": [0.0, 1.0, 2.0]}), {"x": "numeric"}, bins=2)
    >>> part = profile_frame(pd.DataFrame({"x": [5.0]}), {"x": "numeric"}, base.edges)
    >>> part.columns["x"].hist.tolist()  # [underflow, bin 1, bin 2, overflow]
    [0, 0, 0, 1]
    """
    edges = dict(edges or {})
    columns: dict[str, ColumnProfile] = {}
    for name, ctype in column_types.items():
        if name not in df.columns:
            raise KeyError(f"column {name!r} is not in the table")
        if ctype == "numeric":
            finite, missing, infinite = split_finite(numeric_array(df[name]))
            col_edges = edges[name] if name in edges else baseline_edges(finite, bins)
            columns[name] = profile_numeric(finite, missing, infinite, np.asarray(col_edges, float), fine_bins)
        elif ctype == "categorical":
            counts, missing = category_counts(df[name])
            columns[name] = CategoricalProfile(counts=counts, missing=missing)
    return FrameProfile(rows=len(df), columns=columns)


def profile_dask(
    ddf: Any,
    column_types: Mapping[str, str],
    edges: Mapping[str, np.ndarray] | None = None,
    *,
    bins: int = DEFAULT_BINS,
    fine_bins: int = DEFAULT_FINE_BINS,
    scheduler: str | None = None,
) -> FrameProfile:
    """Profile a Dask DataFrame: one :func:`profile_frame` per partition, merged exactly.

    Equal to ``profile_frame(ddf.compute(), column_types, edges)`` without ever holding the
    whole table. Numeric columns without ``edges`` take a first pass for their finite range.

    Examples
    --------
    >>> import dask.dataframe as dd  # doctest: +SKIP
    >>> prof = profile_dask(dd.read_parquet("big/*.parquet"), {"x": "numeric"})  # doctest: +SKIP
    """
    import dask

    kept = {n: t for n, t in column_types.items() if t in ("numeric", "categorical")}
    absent = [n for n in kept if n not in ddf.columns]
    if absent:
        raise KeyError(f"columns not in the table: {', '.join(absent)}")
    edges = dict(edges or {})
    parts = ddf[list(kept)].to_delayed()
    need = [n for n, t in kept.items() if t == "numeric" and n not in edges]
    if need:
        ranges = dask.compute(*[dask.delayed(_finite_ranges)(part, need) for part in parts], scheduler=scheduler)
        for name in need:
            found = [r[name] for r in ranges if r[name] is not None]
            span = (min(lo for lo, _ in found), max(hi for _, hi in found)) if found else None
            edges[name] = edges_from_range(span, bins)
    jobs = [dask.delayed(profile_frame)(part, kept, edges, bins=bins, fine_bins=fine_bins) for part in parts]
    profiles = dask.compute(*jobs, scheduler=scheduler)
    merged = profiles[0]
    for prof in profiles[1:]:
        merged = merged.merge(prof)
    return merged


def _finite_ranges(df: pd.DataFrame, names: list[str]) -> dict[str, tuple[float, float] | None]:
    out: dict[str, tuple[float, float] | None] = {}
    for name in names:
        finite, _, _ = split_finite(numeric_array(df[name]))
        out[name] = (float(finite.min()), float(finite.max())) if finite.size else None
    return out
