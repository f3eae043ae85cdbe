"""Pass 1 at scale: mergeable typing facts of each column, and the baseline's bin edges.

A scan of the baseline gathers per-column facts (whole numbers, distinct values up to a cap,
rising or consecutive integers, a head of text values) and the range of numeric columns, all
mergeable partition by partition, so that :func:`infer_types` and :func:`edges_from_scans` give
the column types and bin edges of the in-memory path
(:func:`helpers.stats.column_types.infer_column_types`,
:func:`helpers.stats.profiling.baseline_edges`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.config import DriftParams
from helpers.core.errors import DataError
from helpers.stats.column_types import FEW_VALUES, all_numbers, looks_like_dates
from helpers.stats.dask_cluster import Runner
from helpers.stats.partitions import Table, read_part
from helpers.stats.profiling import baseline_edges, numeric_array
from helpers.stats.selection import check_overrides

TEXT_DISTINCT_CAP = 20_000  # distinct text values kept per column while scanning (ID-like test)
HEAD_VALUES = 100  # leading text values kept for the date and number checks (as drift does)
_MOD = 1 << 64  # integer sums are kept modulo 2**64 (numpy's int64 sums wrap around)


@dataclass
class NumberScan:
    """Mergeable facts about the finite values of a numeric column, in row order.

    Enough to take :func:`helpers.stats.column_types.infer_column_types`' decisions (whole numbers, distinct
    values up to ``cap``, ID-like runs) and the baseline's bin edges (``low``, ``high``).
    """

    cap: int
    count: int = 0
    whole: bool = True
    low: float = math.nan
    high: float = math.nan
    distinct: frozenset[float] | None = frozenset()  # None: more than ``cap`` values
    unique: bool = True  # no value repeats within any one partition
    rising: bool = True
    first: float = math.nan
    last: float = math.nan
    total: int = 0  # sum of the (whole) values, modulo 2**64
    squares: int = 0  # sum of their squares, modulo 2**64

    @classmethod
    def of(cls, values: np.ndarray, cap: int) -> NumberScan:
        """Facts of one partition's float values (NaN and infinities are not finite)."""
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(cap)
        low, high = float(finite.min()), float(finite.max())
        if not np.all(finite == np.floor(finite)):
            return cls(cap, int(finite.size), False, low, high, None, False, False)
        uniq = pd.unique(finite)
        total = squares = 0
        if max(abs(low), abs(high)) < 2.0**62:
            ints = finite.astype(np.int64)
            total, squares = int(ints.sum()) % _MOD, int(np.dot(ints, ints)) % _MOD
        return cls(cap, int(finite.size), True, low, high,
                   frozenset(uniq.tolist()) if uniq.size <= cap else None, uniq.size == finite.size,
                   bool(np.all(np.diff(finite) > 0)), float(finite[0]), float(finite[-1]), total, squares)

    def merge(self, later: NumberScan) -> NumberScan:
        """Facts of this partition's rows followed by ``later``'s."""
        if later.count == 0:
            return self
        if self.count == 0:
            return later
        whole = self.whole and later.whole
        distinct = None
        if whole and self.distinct is not None and later.distinct is not None:
            union = self.distinct | later.distinct
            distinct = union if len(union) <= self.cap else None
        return NumberScan(
            self.cap, self.count + later.count, whole, min(self.low, later.low), max(self.high, later.high),
            distinct, self.unique and later.unique, self.rising and later.rising and self.last < later.first,
            self.first, later.last, (self.total + later.total) % _MOD, (self.squares + later.squares) % _MOD,
        )

    @property
    def all_distinct_run(self) -> bool:
        """Whole numbers all distinct and forming a run or rising with the row (ID-like)."""
        if self.rising:
            return True
        if not (self.unique and self.high - self.low + 1 == self.count):
            return False
        lo, n = int(self.low), self.count  # a run lo..lo+n-1: its sums must match (duplicates across
        run_total = n * lo + n * (n - 1) // 2  # partitions that balance both sums are not detected)
        run_squares = n * lo * lo + lo * n * (n - 1) + (n - 1) * n * (2 * n - 1) // 6
        return self.total == run_total % _MOD and self.squares == run_squares % _MOD


@dataclass
class TextScan:
    """Mergeable facts about a text column: the head, whether all are numbers, distinct values."""

    present: int = 0
    head: list[Any] = field(default_factory=list)
    numbers: NumberScan | None = None  # the values as numbers, None once one is not a number
    distinct: frozenset[Any] | None = frozenset()  # None: more than TEXT_DISTINCT_CAP values
    distinct_sum: int = 0  # distinct values per partition, added up (an upper bound)

    @classmethod
    def of(cls, series: pd.Series, cap: int) -> TextScan:
        """Facts of one partition's text values."""
        present = series.dropna()
        numbers: NumberScan | None = NumberScan(cap)
        if not present.empty:
            numbers = None
            if all_numbers(present.iloc[:HEAD_VALUES]):
                as_numbers = pd.to_numeric(present, errors="coerce")
                if as_numbers.notna().all():
                    numbers = NumberScan.of(as_numbers.to_numpy(dtype=float), cap)
        uniq = present.unique()
        return cls(len(present), present.iloc[:HEAD_VALUES].tolist(), numbers,
                   frozenset(uniq.tolist()) if len(uniq) <= TEXT_DISTINCT_CAP else None, len(uniq))

    def merge(self, later: TextScan) -> TextScan:
        """Facts of these rows followed by ``later``'s."""
        numbers = self.numbers.merge(later.numbers) if self.numbers and later.numbers else None
        distinct = None
        if self.distinct is not None and later.distinct is not None:
            union = self.distinct | later.distinct
            distinct = union if len(union) <= TEXT_DISTINCT_CAP else None
        return TextScan(self.present + later.present, (self.head + later.head)[:HEAD_VALUES], numbers, distinct,
                        self.distinct_sum + later.distinct_sum)


@dataclass
class ColumnScan:
    """What pass 1 learns about one column: its kind from the dtype, and the mergeable facts."""

    kind: str  # datetime, categorical (booleans, pandas categoricals), numbers, text
    present: int
    label: str
    numbers: NumberScan | None = None
    text: TextScan | None = None

    def merge(self, later: ColumnScan, name: str) -> ColumnScan:
        """This scan followed by ``later``'s; partitions of different kinds are an error."""
        if later.present == 0 and later.kind != self.kind:
            return self
        if self.present == 0 and later.kind != self.kind:
            return later
        if later.kind != self.kind:
            raise DataError(f"{later.label}: column {name!r} holds {later.kind} where {self.label} holds {self.kind}")
        numbers = self.numbers.merge(later.numbers) if self.numbers and later.numbers else None
        text = self.text.merge(later.text) if self.text and later.text else None
        return ColumnScan(self.kind, self.present + later.present, self.label, numbers, text)

    @property
    def range(self) -> NumberScan | None:
        """The numeric facts (of the values, or of text holding only numbers)."""
        return self.numbers if self.kind == "numbers" else self.text.numbers if self.text else None


def scan_part(part: Any, columns: Sequence[str], max_unique: int, label: str) -> tuple[int, dict[str, ColumnScan]]:
    """Rows and per-column facts of one partition (runs on a worker)."""
    frame = read_part(part, columns)
    return len(frame), {name: _scan_column(frame[name], max_unique, label) for name in columns}


def _scan_column(series: pd.Series, max_unique: int, label: str) -> ColumnScan:
    dtype = series.dtype
    present = int(series.notna().sum())
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return ColumnScan("datetime", present, label)
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return ColumnScan("categorical", present, label)
    if pd.api.types.is_numeric_dtype(dtype):
        return ColumnScan("numbers", present, label, numbers=NumberScan.of(numeric_array(series), max_unique + 1))
    return ColumnScan("text", present, label, text=TextScan.of(series, max_unique + 1))


def column_type(scan: ColumnScan, max_unique: int) -> tuple[str, str | None]:
    """The type :func:`helpers.stats.column_types.infer_column_types` gives the whole column, and its note."""
    if scan.kind == "datetime":
        return "datetime", "datetime column: excluded (pass it as the time column for drift over time)"
    if scan.kind == "categorical":
        return "categorical", None
    if scan.kind == "numbers":
        assert scan.numbers is not None
        return _number_type(scan.numbers, max_unique, as_text=False)
    text = scan.text
    assert text is not None
    if text.present == 0:
        return "categorical", None
    if looks_like_dates(pd.Series(text.head, dtype=object)):
        return "datetime", "text holding dates: excluded (pass it as the time column for drift over time)"
    if text.numbers is not None:
        return _number_type(text.numbers, max_unique, as_text=True)
    distinct = len(text.distinct) if text.distinct is not None else None
    if text.present >= FEW_VALUES:
        if distinct is not None and distinct >= 0.9 * text.present:
            return "id", f"ID-like text ({distinct} distinct values in {text.present} rows): excluded"
        if distinct is None and text.distinct_sum >= 0.9 * text.present:
            return "id", (f"ID-like text (more than {TEXT_DISTINCT_CAP} distinct values, up to {text.distinct_sum} "
                          f"in {text.present} rows): excluded")
    return "categorical", None


def _number_type(scan: NumberScan, max_unique: int, as_text: bool) -> tuple[str, str | None]:
    prefix = "numbers stored as text; " if as_text else ""
    plain = (prefix + "numeric") if as_text else None
    if scan.count == 0:
        return "numeric", (prefix or None)
    if not scan.whole:
        return "numeric", plain
    if scan.count >= FEW_VALUES and scan.all_distinct_run:
        return "id", f"ID-like integers (all {scan.count} values distinct, consecutive or rising): excluded"
    if scan.distinct is not None and len(scan.distinct) <= max_unique:
        return "categorical", (f"{prefix}whole numbers with {len(scan.distinct)} distinct values "
                               f"(<= drift.categorical_max_unique = {max_unique}): categorical")
    return "numeric", plain


def scan_table(table: Table, columns: Sequence[str], max_unique: int, run: Runner,
               desc: str = "scanning") -> tuple[list[int], dict[str, ColumnScan]]:
    """Rows per partition and the merged facts of ``columns`` (pass 1)."""
    tasks = [(part, list(columns), max_unique, label) for part, label in zip(table.parts, table.labels, strict=True)]
    rows: list[int] = []
    merged: dict[str, ColumnScan] = {}
    for n, scans in run.map(scan_part, tasks, table.labels, desc):
        rows.append(n)
        merged = {c: merged[c].merge(s, c) if c in merged else s for c, s in scans.items()}
    return rows, merged


def infer_types(scans: Mapping[str, ColumnScan], params: DriftParams) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Column types and their notes, as :func:`helpers.stats.column_types.infer_column_types` gives them."""
    check_overrides(params)
    types: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    for name, scan in scans.items():
        override = params.column_types.get(name)
        if override is not None:
            types[name], notes[name] = override, [f"type {override} set by drift.column_types"]
            continue
        ctype, note = column_type(scan, params.categorical_max_unique)
        types[name], notes[name] = ctype, [note] if note else []
    return types, notes


def edges_from_scans(scans: Mapping[str, ColumnScan], types: Mapping[str, str], bins: int) -> dict[str, np.ndarray]:
    """The baseline's coarse bin edges of every numeric column (as :func:`baseline_edges` gives them)."""
    edges = {}
    for name, ctype in types.items():
        if ctype != "numeric":
            continue
        facts = scans[name].range
        if facts is None:
            raise DataError(f"column {name!r} is typed numeric but holds text that is not numbers; "
                            "set drift.column_types or fix the data")
        ends = np.array([facts.low, facts.high]) if facts.count else np.empty(0)
        edges[name] = baseline_edges(ends, bins)
    return edges
