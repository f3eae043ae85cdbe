"""Mergeable per-column profiles: numeric and categorical summaries, merged exactly.

A profile is a small summary of one column that can be computed per partition and merged
exactly: counts and missing values add up, moments merge with Chan's parallel formula,
histograms on bin edges fixed by the baseline add up bin by bin, and category counts add up
per category. So a table too big for one machine is profiled part by part and the parts are
merged into the profile of the whole (:mod:`helpers.stats.profiling` builds the profiles).

Numeric profiles hold two histograms on edges fixed by the baseline:

* a coarse one (``bins`` equal-width bins over the baseline range, plus an underflow and an
  overflow bin for values outside it), used for PSI, Jensen-Shannon and the plots;
* a fine one (``fine_bins`` bins over the same range, plus underflow and overflow, with the sum
  of the values that fell outside), a mergeable quantile sketch used for approximate quantiles,
  Wasserstein distance and Kolmogorov-Smirnov statistic when the raw rows are not at hand.

Example
-------
>>> prof = CategoricalProfile(counts={"a": 3, "b": 1}, missing=0)
>>> prof.merge(prof).counts
{'a': 6, 'b': 2}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROFILE_VERSION = 1


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
        check_same_edges(self, other)
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


def check_same_edges(a: NumericProfile, b: NumericProfile) -> None:
    """Raise ValueError unless both numeric profiles use the same coarse edges and fine-bin count."""
    if len(a.edges) != len(b.edges) or not np.array_equal(a.edges, b.edges):
        raise ValueError("numeric profiles use different bin edges; profile with the baseline's edges")
    if len(a.fine_hist) != len(b.fine_hist):
        raise ValueError("numeric profiles use different numbers of fine bins")


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)
