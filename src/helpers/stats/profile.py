"""Mergeable per-column profiles and the distances that need only profiles.

A profile is a small summary of one column that can be computed per partition and merged
exactly: counts and missing values add up, moments merge with Chan's parallel formula,
histograms on bin edges fixed by the baseline add up bin by bin, and category counts add up
per category. So a table too big for one machine is profiled part by part (in pandas, or one
Dask partition at a time) and the parts are merged into the profile of the whole.

Numeric profiles hold two histograms on edges fixed by the baseline:

* a coarse one (``bins`` equal-width bins over the baseline range, plus an underflow and an
  overflow bin for values outside it), used for PSI, Jensen-Shannon and the plots;
* a fine one (``fine_bins`` bins over the same range, plus underflow and overflow, with the sum
  of the values that fell outside), a mergeable quantile sketch used for approximate quantiles,
  Wasserstein distance and Kolmogorov-Smirnov statistic when the raw rows are not at hand.

PSI, Jensen-Shannon, the chi-squared test and the Euclidean distance between category
frequencies need only counts, so :func:`numeric_distances` and :func:`categorical_distances`
compute them from profiles, exactly as the drift engine does on raw data.

On Dask, :func:`profile_dask` profiles every partition and merges the profiles.

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

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

DEFAULT_BINS = 20
DEFAULT_FINE_BINS = 1024
PSI_EPSILON = 1e-4  # empty-bin share used by PSI (as Evidently does), so ln(0) never occurs
PROFILE_VERSION = 1

# --------------------------------------------------------------------------- value preparation


def numeric_array(series: pd.Series) -> np.ndarray:
    """Return a column as a float64 array with missing values as NaN.

    Booleans become 0/1; nullable integer and float dtypes are unpacked; text that is not a
    number raises ``ValueError`` (callers decide how to report it).
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(float).to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)


def split_finite(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Split float values into the finite ones, the number missing and the number infinite."""
    nan = np.isnan(values)
    inf = np.isinf(values)
    finite = values[~(nan | inf)]
    return finite, int(nan.sum()), int(inf.sum())


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


@dataclass
class NumericProfile:
    """Mergeable summary of a numeric column.

    Attributes
    ----------
    count, missing, infinite : int
        Finite values, missing values and infinite values (excluded from everything else).
    mean, m2 : float
        Mean of the finite values and their sum of squared deviations (Chan's merge).
    min, max : float
        Range of the finite values (NaN when there are none).
    edges : numpy.ndarray
        Coarse bin edges, fixed by the baseline.
    hist : numpy.ndarray
        Coarse counts ``[underflow, bins..., overflow]``.
    fine_hist : numpy.ndarray
        Fine counts ``[underflow, fine bins..., overflow]`` over the same range (may be empty).
    under_sum, over_sum : float
        Sums of the values below and above the edges (place the overflow mass exactly on
        average).
    """

    count: int
    missing: int
    infinite: int
    mean: float
    m2: float
    min: float
    max: float
    edges: np.ndarray
    hist: np.ndarray
    fine_hist: np.ndarray
    under_sum: float = 0.0
    over_sum: float = 0.0
    kind: str = field(default="numeric", init=False)

    @property
    def rows(self) -> int:
        """All rows seen, including missing and infinite values."""
        return self.count + self.missing + self.infinite

    @property
    def std(self) -> float:
        """Population standard deviation of the finite values (NaN when there are none)."""
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    @property
    def fine_edges(self) -> np.ndarray:
        """Edges of the fine histogram: ``len(fine_hist) - 2`` bins over the coarse range."""
        return np.linspace(self.edges[0], self.edges[-1], len(self.fine_hist) - 1)

    def merge(self, other: NumericProfile) -> NumericProfile:
        """Profile of the union of the rows of ``self`` and ``other`` (same edges required)."""
        _check_same_edges(self, other)
        n = self.count + other.count
        if n == 0:
            mean, m2 = math.nan, 0.0
        elif other.count == 0:
            mean, m2 = self.mean, self.m2
        elif self.count == 0:
            mean, m2 = other.mean, other.m2
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / n
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return NumericProfile(
            count=n,
            missing=self.missing + other.missing,
            infinite=self.infinite + other.infinite,
            mean=mean,
            m2=m2,
            min=float(np.fmin(self.min, other.min)),
            max=float(np.fmax(self.max, other.max)),
            edges=self.edges,
            hist=self.hist + other.hist,
            fine_hist=self.fine_hist + other.fine_hist,
            under_sum=self.under_sum + other.under_sum,
            over_sum=self.over_sum + other.over_sum,
        )

    def quantiles(self, qs: Iterable[float]) -> np.ndarray:
        """Approximate quantiles from the fine histogram (linear inside each fine bin)."""
        points, cdf = self._fine_cdf_points()
        return np.interp(np.asarray(list(qs), dtype=float), cdf, points)

    def _fine_cdf_points(self) -> tuple[np.ndarray, np.ndarray]:
        fine = self.fine_hist.astype(float)
        total = fine.sum()
        if total == 0:
            raise ValueError("the profile holds no finite values")
        low = self.min if fine[0] else self.edges[0]
        high = self.max if fine[-1] else self.edges[-1]
        points = np.concatenate([[min(low, self.edges[0])], self.fine_edges, [max(high, self.edges[-1])]])
        cdf = np.concatenate([[0.0], np.cumsum(fine) / total])
        return points, cdf

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN as None)."""
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "infinite": self.infinite,
            "mean": _none_if_nan(self.mean),
            "m2": self.m2,
            "min": _none_if_nan(self.min),
            "max": _none_if_nan(self.max),
            "edges": [float(e) for e in self.edges],
            "hist": [int(c) for c in self.hist],
            "fine_hist": [int(c) for c in self.fine_hist],
            "under_sum": self.under_sum,
            "over_sum": self.over_sum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        """Inverse of :meth:`to_dict`."""
        return cls(
            count=int(data["count"]),
            missing=int(data["missing"]),
            infinite=int(data["infinite"]),
            mean=_nan_if_none(data["mean"]),
            m2=float(data["m2"]),
            min=_nan_if_none(data["min"]),
            max=_nan_if_none(data["max"]),
            edges=np.asarray(data["edges"], dtype=float),
            hist=np.asarray(data["hist"], dtype=np.int64),
            fine_hist=np.asarray(data["fine_hist"], dtype=np.int64),
            under_sum=float(data["under_sum"]),
            over_sum=float(data["over_sum"]),
        )


@dataclass
class CategoricalProfile:
    """Mergeable summary of a categorical column: per-category counts and missing values."""

    counts: dict[str, int]
    missing: int
    kind: str = field(default="categorical", init=False)

    @property
    def count(self) -> int:
        """Non-missing values."""
        return int(sum(self.counts.values()))

    @property
    def rows(self) -> int:
        """All rows seen, including missing values."""
        return self.count + self.missing

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """Profile of the union of the rows of ``self`` and ``other``."""
        counts = dict(self.counts)
        for label, n in other.counts.items():
            counts[label] = counts.get(label, 0) + n
        return CategoricalProfile(counts=counts, missing=self.missing + other.missing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "counts": dict(self.counts), "missing": self.missing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        """Inverse of :meth:`to_dict`."""
        return cls(counts={str(k): int(v) for k, v in data["counts"].items()}, missing=int(data["missing"]))


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass
class FrameProfile:
    """Profiles of the columns of one table (or of one partition of it)."""

    rows: int
    columns: dict[str, ColumnProfile]

    def merge(self, other: FrameProfile) -> FrameProfile:
        """Profile of the concatenation of both tables (same columns and edges required)."""
        if set(self.columns) != set(other.columns):
            only = sorted(set(self.columns) ^ set(other.columns))
            raise ValueError(f"cannot merge profiles with different columns: {', '.join(only)}")
        merged: dict[str, ColumnProfile] = {}
        for name, prof in self.columns.items():
            theirs = other.columns[name]
            if prof.kind != theirs.kind:
                raise ValueError(f"cannot merge profiles of column {name!r}: {prof.kind} vs {theirs.kind}")
            merged[name] = prof.merge(theirs)  # type: ignore[arg-type]
        return FrameProfile(rows=self.rows + other.rows, columns=merged)

    @property
    def edges(self) -> dict[str, np.ndarray]:
        """The coarse edges of each numeric column (pass them when profiling other parts)."""
        return {n: p.edges for n, p in self.columns.items() if isinstance(p, NumericProfile)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "columns": {name: prof.to_dict() for name, prof in self.columns.items()},
        }

    def to_json(self) -> str:
        """Serialise to JSON text (strict: no NaN)."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrameProfile:
        """Inverse of :meth:`to_dict`."""
        columns: dict[str, ColumnProfile] = {}
        for name, col in data["columns"].items():
            columns[name] = (
                NumericProfile.from_dict(col) if col["kind"] == "numeric" else CategoricalProfile.from_dict(col)
            )
        return cls(rows=int(data["rows"]), columns=columns)

    @classmethod
    def from_json(cls, text: str) -> FrameProfile:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


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
    centred = finite - mean if n else finite
    m2 = float(np.dot(centred, centred)) if n else 0.0
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


# --------------------------------------------------------------------------- distances


def psi(base_counts: np.ndarray, target_counts: np.ndarray, eps: float = PSI_EPSILON) -> float:
    """Population stability index ``sum((t - b) * ln(t / b))`` over bin shares.

    Shares of zero are replaced by ``eps`` (as Evidently does) so that empty bins on one side
    contribute a large but finite amount.
    """
    b = _shares(base_counts)
    t = _shares(target_counts)
    b = np.where(b == 0, eps, b)
    t = np.where(t == 0, eps, t)
    return float(np.sum((t - b) * np.log(t / b)))


def jensenshannon(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 (so in 0..1), as ``scipy.spatial.distance.jensenshannon``."""
    p = _shares(base_counts)
    q = _shares(target_counts)
    m = (p + q) / 2.0
    left = np.sum(special.rel_entr(p, m))
    right = np.sum(special.rel_entr(q, m))
    js = (left + right) / 2.0
    return float(np.sqrt(max(js, 0.0) / np.log(2.0)))


def euclidean(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """Euclidean distance between the two frequency (share) vectors."""
    return float(np.sqrt(np.sum((_shares(base_counts) - _shares(target_counts)) ** 2)))


def chi2_homogeneity(base_counts: np.ndarray, target_counts: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-squared test that both samples come from one categorical distribution.

    The 2 x k contingency table (no continuity correction), as
    ``scipy.stats.chi2_contingency(table, correction=False)``. Categories empty on both sides
    are dropped; with one category left the test has no degrees of freedom and returns
    ``(0.0, 1.0, 0)``.

    Returns
    -------
    statistic, p_value, dof
    """
    table = np.vstack([np.asarray(base_counts, float), np.asarray(target_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, dof)), dof


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else counts


def aligned_counts(base: CategoricalProfile, target: CategoricalProfile) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Category labels (baseline's by count, then new ones) with both count vectors aligned."""
    labels = sorted(base.counts, key=lambda c: (-base.counts[c], c))
    labels += sorted((c for c in target.counts if c not in base.counts), key=lambda c: (-target.counts[c], c))
    b = np.array([base.counts.get(c, 0) for c in labels], dtype=np.int64)
    t = np.array([target.counts.get(c, 0) for c in labels], dtype=np.int64)
    return labels, b, t


def numeric_distances(base: NumericProfile, target: NumericProfile) -> dict[str, float]:
    """PSI and Jensen-Shannon on the coarse bins (exact), plus approximations from the fine sketch.

    ``wasserstein_approx`` and ``ks_approx`` are computed from the fine histograms (mass at
    bin centres, overflow mass at its mean): close to the exact values when the fine bins are
    narrow; the drift engine computes the exact ones from raw values.
    """
    _check_same_edges(base, target)
    out = {"psi": psi(base.hist, target.hist), "jensenshannon": jensenshannon(base.hist, target.hist)}
    if len(base.fine_hist) and base.count and target.count:
        out.update(_approx_cdf_distances(base, target))
    return out


def categorical_distances(base: CategoricalProfile, target: CategoricalProfile) -> dict[str, float]:
    """Chi-squared statistic and p-value, Jensen-Shannon, PSI and Euclidean (all exact)."""
    _, b, t = aligned_counts(base, target)
    statistic, p_value, dof = chi2_homogeneity(b, t)
    return {
        "chi2_statistic": statistic,
        "chi2_pvalue": p_value,
        "chi2_dof": float(dof),
        "jensenshannon": jensenshannon(b, t),
        "psi": psi(b, t),
        "euclidean": euclidean(b, t),
    }


def _approx_cdf_distances(base: NumericProfile, target: NumericProfile) -> dict[str, float]:
    centres_b, mass_b = _fine_masses(base)
    centres_t, mass_t = _fine_masses(target)
    points = np.union1d(centres_b, centres_t)
    cdf_b = np.cumsum(np.bincount(np.searchsorted(points, centres_b), mass_b, len(points)))
    cdf_t = np.cumsum(np.bincount(np.searchsorted(points, centres_t), mass_t, len(points)))
    gaps = np.diff(points)
    diff = np.abs(cdf_b - cdf_t)
    return {"wasserstein_approx": float(np.sum(diff[:-1] * gaps)), "ks_approx": float(diff.max())}


def _fine_masses(prof: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    fine = prof.fine_hist.astype(float)
    fe = prof.fine_edges
    centres = np.concatenate([[0.0], (fe[:-1] + fe[1:]) / 2.0, [0.0]])
    centres[0] = prof.under_sum / fine[0] if fine[0] else fe[0]
    centres[-1] = prof.over_sum / fine[-1] if fine[-1] else fe[-1]
    return centres, fine / fine.sum()


def _check_same_edges(a: NumericProfile, b: NumericProfile) -> None:
    if len(a.edges) != len(b.edges) or not np.array_equal(a.edges, b.edges):
        raise ValueError("numeric profiles use different bin edges; profile with the baseline's edges")
    if len(a.fine_hist) != len(b.fine_hist):
        raise ValueError("numeric profiles use different numbers of fine bins")


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)
