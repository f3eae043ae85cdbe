"""Profiles and drift of tables too big for one machine: partition by partition, merged exactly.

A table is a list of partitions: the Parquet files of a glob (grouped by row groups up to
``compute.partition_rows`` rows), the partitions of a Dask dataframe, or slices of a pandas
frame. Each partition is read and profiled where it lives, on a dask.distributed worker
(``compute.scheduler``: ``local`` or ``tcp://host:8786``) or in this process (``pandas``), and
only the small results travel back: a profile (counts, moments, histograms, category counts)
and, for the drift coefficient, the few sampled rows. The client merges them in partition
order, so the result does not depend on which worker finished first.

:func:`compare_at_scale` gives the report of :func:`helpers.drift.compare` from three passes:

1. a scan of the baseline: per-column typing facts (whole numbers, distinct values up to a cap,
   rising or consecutive integers, a head of text values) and the range of numeric columns,
   all mergeable, so the column types and bin edges equal those of the in-memory path;
2. profiles of the baseline and the target on the baseline's edges
   (:func:`profile_partition`, :func:`helpers.profile.profile_frame`'s counts), with the rows
   drawn for the drift coefficient;
3. the report, from :func:`helpers.drift.compare_profiles`' building blocks and
   :func:`helpers.drift.drift_coefficient` on the sample.

Counts, moments, histograms, chi-squared, PSI and Jensen-Shannon equal the in-memory values.
The KS statistic and the Wasserstein distance come from the fine histograms; each numeric
feature states its bound (:func:`approximation_bounds`) in ``metrics`` and ``notes``. The drift
coefficient's classifier trains on ``drift.coefficient_sample / 2`` rows per side drawn by
position with the in-memory path's seeded generator, so its cost does not grow with the data
and its value equals the in-memory one when both read the rows in the same order.

Example
-------
>>> from helpers.config import ComputeParams, DriftParams
>>> report = compare_at_scale("lake/2024-01/*.parquet", "lake/2024-02/*.parquet",
...                           DriftParams(), ComputeParams(scheduler="local"))  # doctest: +SKIP
>>> report.summary()["drifted"]  # doctest: +SKIP
False
"""

from __future__ import annotations

import glob
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core.config import ComputeParams, DriftParams
from helpers.core.errors import DataError, ParamsError
from helpers.core.times import as_utc
from helpers.stats import drift
from helpers.stats.profile import (
    CategoricalProfile,
    ColumnProfile,
    FrameProfile,
    NumericProfile,
    aligned_counts,
    baseline_edges,
    category_counts,
    numeric_array,
    profile_numeric,
    split_finite,
)

if TYPE_CHECKING:
    from distributed import Client

TEXT_DISTINCT_CAP = 20_000  # distinct text values kept per column while scanning (ID-like test)
HEAD_VALUES = 100  # leading text values kept for the date and number checks (as drift does)
FOOTER_THREADS = 8  # threads reading Parquet footers on the client
_MOD = 1 << 64  # integer sums are kept modulo 2**64 (numpy's int64 sums wrap around)

# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class FilePart:
    """Row groups of one Parquet file, read where the task runs."""

    path: str
    row_groups: tuple[int, ...]
    rows: int
    of: int  # row groups in the file

    @property
    def label(self) -> str:
        """The file, with its row groups when the file is split."""
        if len(self.row_groups) == self.of:
            return self.path
        return f"{self.path} (row groups {self.row_groups[0]}-{self.row_groups[-1]})"

    def read(self, columns: Sequence[str] | None) -> pd.DataFrame:
        """The partition's ``columns`` (None: all) as a pandas frame."""
        try:
            wanted = list(columns) if columns is not None else None
            table = pq.ParquetFile(self.path).read_row_groups(list(self.row_groups), columns=wanted)
            return table.to_pandas()
        except Exception as exc:
            raise DataError(f"{self.path}: cannot be read as parquet ({_one_line(exc)})") from None


@dataclass
class Table:
    """A table as an ordered list of partitions.

    Attributes
    ----------
    label : str
        What the user passed (a glob, or a description), for messages.
    parts : list
        :class:`FilePart` objects, pandas frames, or Dask ``Delayed`` partitions.
    labels : list of str
        One label per partition (a file name, or ``"partition i of ..."``), named in errors.
    rows : list of int or None
        Rows per partition where known without reading (Parquet footers, frames).
    columns : list of str
        Column names.
    kinds : dict of str to str
        ``number``, ``bool``, ``text``, ``time``, ``other`` per column (from the schema).
    """

    label: str
    parts: list[Any]
    labels: list[str]
    rows: list[int | None]
    columns: list[str]
    kinds: dict[str, str] = field(default_factory=dict)
    schemas: dict[str, pa.Schema] = field(default_factory=dict)  # Parquet files: path -> schema

    @property
    def known_rows(self) -> bool:
        """Whether every partition's row count is known without reading it."""
        return all(r is not None for r in self.rows)


def open_table(table: Any, compute: ComputeParams, *, side: str = "table") -> Table:
    """Partitions of a Parquet file or glob, a list of Parquet files, a Dask or a pandas frame."""
    if isinstance(table, pd.DataFrame):
        return _frame_table(table, compute.partition_rows, side)
    if _is_dask_frame(table):
        return _dask_table(table, side)
    if isinstance(table, str | Path):
        files = _expand(str(table))
        label = str(table)
    elif isinstance(table, Sequence) and table and all(isinstance(p, str | Path) for p in table):
        files, label = [f for p in table for f in _expand(str(p))], f"{len(table)} files"
    else:
        raise DataError(f"the {side} must be a Parquet path or glob, a list of files, or a dataframe; "
                        f"got {type(table).__name__}")
    return _parquet_table(files, label, compute.partition_rows)


def _expand(text: str) -> list[str]:
    files = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
    if not files:
        raise DataError(f"{text}: no file matches this pattern; check the path")
    for path in files:
        if not Path(path).is_file():
            raise DataError(f"{path}: data file not found")
        if Path(path).suffix.lower() not in (".parquet", ".pq"):
            raise DataError(f"{path}: profiles at scale read Parquet files; convert it, or use "
                            "compute.scheduler: pandas")
    return files


def _parquet_table(files: list[str], label: str, partition_rows: int) -> Table:
    with ThreadPoolExecutor(max_workers=FOOTER_THREADS) as pool:
        footers = list(pool.map(_footer, files))
    parts: list[FilePart] = []
    for path, (meta, _) in zip(files, footers, strict=True):
        parts.extend(_split_row_groups(path, meta, partition_rows))
    first = footers[0][1]
    return Table(
        label=label,
        parts=list(parts),
        labels=[p.label for p in parts],
        rows=[p.rows for p in parts],
        columns=list(first.names),
        kinds={f.name: _arrow_kind(f.type) for f in first},
        schemas={path: schema for path, (_, schema) in zip(files, footers, strict=True)},
    )


def _footer(path: str) -> tuple[pq.FileMetaData, pa.Schema]:
    try:
        handle = pq.ParquetFile(path)
        return handle.metadata, handle.schema_arrow
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as parquet ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _split_row_groups(path: str, meta: pq.FileMetaData, partition_rows: int) -> list[FilePart]:
    """Consecutive row groups of one file, grouped up to ``partition_rows`` rows (at least one)."""
    n = meta.num_row_groups
    if n == 0:
        return [FilePart(path, (), 0, 0)]
    parts, group, rows = [], [], 0
    for i in range(n):
        size = meta.row_group(i).num_rows
        if group and rows + size > partition_rows:
            parts.append(FilePart(path, tuple(group), rows, n))
            group, rows = [], 0
        group.append(i)
        rows += size
    parts.append(FilePart(path, tuple(group), rows, n))
    return parts


def _arrow_kind(dtype: pa.DataType) -> str:
    if pa.types.is_dictionary(dtype):
        return _arrow_kind(dtype.value_type)
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "text"
    if pa.types.is_temporal(dtype):
        return "time"
    if pa.types.is_null(dtype):
        return "null"
    return "other"


def check_schema(table: Table, columns: Sequence[str]) -> None:
    """Every Parquet file holds ``columns`` with the kinds of the first file, or an error names it.

    Integer and float widths mix freely (they are all numbers); a column that is all null in
    one file (Arrow's null type) fits any kind.
    """
    files = list(table.schemas)
    if len(files) < 2:
        return
    wanted = {c: table.kinds.get(c, "null") for c in columns}
    schemas = list(table.schemas.values())
    for path, schema in zip(files, schemas, strict=True):
        for name, kind in wanted.items():
            if name not in schema.names:
                raise DataError(f"{path}: schema differs from {files[0]}: column {name!r} is missing")
            got = _arrow_kind(schema.field(name).type)
            if kind == "null":
                wanted[name] = kind = got
            if got not in (kind, "null"):
                raise DataError(f"{path}: schema differs from {files[0]}: column {name!r} holds {got} "
                                f"({schema.field(name).type}) where the first file holds {kind}")


def _frame_table(frame: pd.DataFrame, partition_rows: int, side: str) -> Table:
    step = max(int(partition_rows), 1)
    starts = list(range(0, max(len(frame), 1), step))
    parts = [frame.iloc[s : s + step] for s in starts]
    return Table(
        label=f"the {side} frame",
        parts=parts,
        labels=[f"rows {s}-{s + len(p) - 1} of the {side} frame" for s, p in zip(starts, parts, strict=True)],
        rows=[len(p) for p in parts],
        columns=[str(c) for c in frame.columns],
    )


def _is_dask_frame(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("dask") and hasattr(obj, "to_delayed") and hasattr(obj, "npartitions")


def _dask_table(ddf: Any, side: str) -> Table:
    parts = list(ddf.to_delayed())
    return Table(
        label=f"the {side} Dask dataframe",
        parts=parts,
        labels=[f"partition {i} of the {side} Dask dataframe" for i in range(len(parts))],
        rows=[None] * len(parts),
        columns=[str(c) for c in ddf.columns],
    )


def _read(part: Any, columns: Sequence[str] | None) -> pd.DataFrame:
    if isinstance(part, FilePart):
        return part.read(columns)
    if columns is None:
        return part
    missing = [c for c in columns if c not in part.columns]
    if missing:
        raise DataError(f"column(s) {', '.join(map(repr, missing))} missing")
    return part[list(columns)]


# --------------------------------------------------------------------------- running tasks


@dataclass
class Runner:
    """Runs one function over partitions, in this process or on a Dask client; results in order."""

    client: Client | None = None
    progress: bool = True

    @property
    def where(self) -> str:
        """A short description for report notes."""
        if self.client is None:
            return "in-process (pandas)"
        workers = self.client.scheduler_info().get("workers", {})
        return f"Dask ({len(workers)} workers at {self.client.scheduler.address})"

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], labels: Sequence[str],
            desc: str) -> Iterator[Any]:
        """``fn(*task)`` for every task, yielded in task order; errors become DataError naming the label."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="part", disable=None if self.progress else True, leave=False)
        try:
            if self.client is None:
                for task, label in zip(tasks, labels, strict=True):
                    result = _named(label, fn, *task)
                    bar.update()
                    yield result
            else:
                yield from self._distributed(fn, tasks, labels, bar)
        finally:
            bar.close()

    def _distributed(self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], labels: Sequence[str],
                     bar: Any) -> Iterator[Any]:
        import dask
        from distributed import as_completed

        assert self.client is not None
        delayed = [dask.delayed(_named, pure=False)(label, fn, *task) for task, label in zip(tasks, labels,
                                                                                              strict=True)]
        futures = self.client.compute(delayed)
        position = {f.key: i for i, f in enumerate(futures)}
        pending: dict[int, Any] = {}
        ready = 0
        try:
            for future in as_completed(futures):
                i = position[future.key]
                pending[i] = _named(labels[i], future.result)
                future.release()
                bar.update()
                while ready in pending:
                    yield pending.pop(ready)
                    ready += 1
        finally:
            self.client.cancel([f for f in futures if not f.done()])


def _named(label: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, with any failure turned into a DataError that names the partition."""
    try:
        return fn(*args)
    except DataError as exc:
        text = str(exc)
        raise DataError(text if label.split(" (")[0] in text else f"{label}: {text}") from None
    except Exception as exc:
        raise DataError(f"{label}: {_one_line(exc)}") from None


def check_scheduler(compute: ComputeParams) -> str:
    """``pandas``, ``local`` or a scheduler address; anything else is a ParamsError."""
    value = compute.scheduler.strip()
    if value in ("pandas", "local") or "://" in value:
        return value
    raise ParamsError(f"compute.scheduler: {value!r} is not pandas, local or a scheduler address like "
                      "tcp://host:8786")


@contextmanager
def runner(compute: ComputeParams, client: Client | None = None) -> Iterator[Runner]:
    """A :class:`Runner` for ``compute.scheduler``; a local cluster lives as long as the block.

    Pass an existing ``client`` to use it (it is left open).
    """
    scheduler = check_scheduler(compute)
    if client is not None:
        yield Runner(client, compute.progress)
    elif scheduler == "pandas":
        yield Runner(None, compute.progress)
    elif scheduler == "local":
        with local_client(compute) as own:
            yield Runner(own, compute.progress)
    else:
        from distributed import Client

        try:
            own = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ParamsError(f"compute.scheduler: cannot reach {scheduler} ({exc})") from None
        with own:
            yield Runner(own, compute.progress)


@contextmanager
def local_client(compute: ComputeParams) -> Iterator[Client]:
    """A client of a LocalCluster sized by ``compute`` (HTTP endpoints on a free port, quiet logs)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=compute.n_workers, threads_per_worker=compute.threads_per_worker,
                      processes=compute.processes, memory_limit=compute.memory_limit,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


# --------------------------------------------------------------------------- pass 1: typing facts


@dataclass
class NumberScan:
    """Mergeable facts about the finite values of a numeric column, in row order.

    Enough to take :func:`helpers.drift.infer_column_types`' decisions (whole numbers, distinct
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
            if drift._all_numbers(present.iloc[:HEAD_VALUES]):
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
    frame = _read(part, columns)
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
    """The type :func:`helpers.drift.infer_column_types` gives the whole column, and its note."""
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
    if drift._looks_like_dates(pd.Series(text.head, dtype=object)):
        return "datetime", "text holding dates: excluded (pass it as the time column for drift over time)"
    if text.numbers is not None:
        return _number_type(text.numbers, max_unique, as_text=True)
    distinct = len(text.distinct) if text.distinct is not None else None
    if text.present >= drift.FEW_VALUES:
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
    if scan.count >= drift.FEW_VALUES and scan.all_distinct_run:
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
    """Column types and their notes, as :func:`helpers.drift.infer_column_types` gives them."""
    drift._check_overrides(params)
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


# --------------------------------------------------------------------------- pass 2: profiles and sample


@dataclass(frozen=True)
class RowFilter:
    """Keep the rows with ``start <= column < end`` (UTC times); either end may be open."""

    column: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        """Which rows of ``frame`` lie inside the window."""
        times = pd.to_datetime(frame[self.column], utc=True)
        keep = pd.Series(True, index=frame.index)
        if self.start is not None:
            keep &= times >= self.start
        if self.end is not None:
            keep &= times < self.end
        return keep

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` inside the window, without the filter column."""
        return frame.loc[self.mask(frame)].drop(columns=[self.column])


@dataclass(frozen=True)
class ProfileTask:
    """What every partition is profiled with: types, the baseline's edges, fine bins, sampled columns."""

    types: dict[str, str]
    edges: dict[str, np.ndarray]
    fine_bins: int
    sample_columns: tuple[str, ...] = ()
    row_filter: RowFilter | None = None


def profile_part(part: Any, task: ProfileTask, take: np.ndarray | None) -> tuple[FrameProfile, pd.DataFrame | None]:
    """Profile one partition on fixed edges, and take its sampled rows (runs on a worker)."""
    columns = list(task.types)
    if task.row_filter is not None:
        frame = task.row_filter.apply(_read(part, [*columns, task.row_filter.column]))
    else:
        frame = _read(part, columns)
    prof = profile_partition(frame, task.types, task.edges, task.fine_bins)
    sample = None
    if take is not None and task.sample_columns:
        sample = frame.iloc[take][list(task.sample_columns)].reset_index(drop=True)
    return prof, sample


def profile_partition(frame: pd.DataFrame, types: Mapping[str, str], edges: Mapping[str, np.ndarray],
                      fine_bins: int) -> FrameProfile:
    """:func:`helpers.profile.profile_frame` on fixed edges, through the sorted-values fast path.

    Sorting a column and binary-searching the edges in it is several times faster than
    searching every value among a thousand fine edges, and gives the same counts.
    """
    columns: dict[str, ColumnProfile] = {}
    for name, ctype in types.items():
        if ctype == "numeric":
            finite, missing, infinite = split_finite(numeric_array(frame[name]))
            columns[name] = profile_numeric(np.sort(finite), missing, infinite, np.asarray(edges[name], float),
                                            fine_bins, is_sorted=True)
        elif ctype == "categorical":
            counts, missing = category_counts(frame[name])
            columns[name] = CategoricalProfile(counts=counts, missing=missing)
    return FrameProfile(rows=len(frame), columns=columns)


def profile_table(table: Table, task: ProfileTask, run: Runner, *, sample: Sequence[np.ndarray] | None = None,
                  desc: str = "profiling") -> tuple[FrameProfile, pd.DataFrame | None]:
    """The merged profile of every partition, and the concatenated sample rows (pass 2)."""
    takes: Sequence[np.ndarray | None] = sample if sample is not None else [None] * len(table.parts)
    tasks = [(part, task, take) for part, take in zip(table.parts, takes, strict=True)]
    merged: FrameProfile | None = None
    pieces: list[pd.DataFrame] = []
    for prof, rows in run.map(profile_part, tasks, table.labels, desc):
        merged = prof if merged is None else merged.merge(prof)
        if rows is not None:
            pieces.append(rows)
    if merged is None:
        merged = profile_partition(_empty_frame(task.types), task.types, task.edges, task.fine_bins)
    rows_out = pd.concat(pieces, ignore_index=True) if pieces else None
    return merged, rows_out


def _empty_frame(types: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if t == "numeric" else object) for c, t in types.items()})


def sample_positions(rows: Sequence[int], k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row positions of a uniform sample of ``k`` rows, split by partition (local positions).

    The global positions are those :func:`helpers.drift.drift_coefficient` draws from the whole
    table with the same generator, so the sample holds the same rows as the in-memory path's.
    """
    chosen = drift._sample_rows(int(sum(rows)), k, rng)
    offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    cut = np.searchsorted(chosen, offsets)
    return [chosen[cut[i] : cut[i + 1]] - offsets[i] for i in range(len(rows))]


def count_rows(table: Table, run: Runner) -> list[int]:
    """Rows per partition: from the footers, or by reading (Dask dataframes)."""
    if table.known_rows:
        return [int(r) for r in table.rows if r is not None]
    tasks = [(part,) for part in table.parts]
    return list(run.map(len, tasks, table.labels, f"counting {table.label}"))


# --------------------------------------------------------------------------- approximation bounds


def approximation_bounds(base: NumericProfile, target: NumericProfile) -> dict[str, float]:
    """Bounds on the error of the KS statistic and Wasserstein distance taken from fine histograms.

    * KS: the ECDFs are exact at every fine-bin edge; inside a bin each moves by at most that
      bin's share, so ``|KS_approx - KS| <= max share of one fine bin`` (under- and overflow
      bins included) on either side.
    * Wasserstein: moving each value to its fine-bin centre moves it at most half a bin width
      ``h / 2``; values beyond the baseline range sit at their mean, which moves them on average
      at most half the width of where they lie. So ``|W_approx - W| <=`` the sum over both sides
      of ``h / 2 * share inside + share below * (edge_0 - min) / 2 + share above * (max - edge_k) / 2``.

    Returns
    -------
    dict
        ``ks_error_bound``, ``wasserstein_error_bound`` and the fine-bin width ``fine_bin_width``.
    """
    lo, hi = float(base.edges[0]), float(base.edges[-1])
    width = (hi - lo) / max(len(base.fine_hist) - 2, 1)
    ks = 0.0
    w = 0.0
    for prof in (base, target):
        shares = prof.fine_hist / max(prof.count, 1)
        ks = max(ks, float(shares.max()) if shares.size else 0.0)
        below = (lo - prof.min) / 2.0 if shares[0] else 0.0
        above = (prof.max - hi) / 2.0 if shares[-1] else 0.0
        w += width / 2.0 * float(shares[1:-1].sum()) + float(shares[0]) * below + float(shares[-1]) * above
    return {"ks_error_bound": ks, "wasserstein_error_bound": w, "fine_bin_width": width}


def _bound_feature(result: drift.FeatureDrift, base: NumericProfile, target: NumericProfile) -> None:
    bounds = approximation_bounds(base, target)
    scale = base.std if base.std > 0 else base.merge(target).std
    result.metrics["ks_error_bound"] = bounds["ks_error_bound"]
    result.metrics["wasserstein_error_bound"] = bounds["wasserstein_error_bound"]
    result.metrics["wasserstein_norm_error_bound"] = bounds["wasserstein_error_bound"] / scale if scale > 0 else 0.0
    result.notes.append(
        f"KS within {bounds['ks_error_bound']:.2g} and Wasserstein within {bounds['wasserstein_error_bound']:.3g} of "
        f"the exact values ({len(base.fine_hist) - 2} fine bins of width {bounds['fine_bin_width']:.3g})"
    )


# --------------------------------------------------------------------------- the report


def compare_at_scale(
    baseline: Any,
    target: Any,
    params: DriftParams,
    compute: ComputeParams,
    *,
    features: list[str] | None = None,
    client: Client | None = None,
) -> drift.DriftReport:
    """Compare two tables partition by partition: :func:`helpers.drift.compare`'s report at any size.

    Parameters
    ----------
    baseline, target : str, list of paths, dask.dataframe.DataFrame or pandas.DataFrame
        A Parquet file or glob (files in name order), a list of Parquet files, or a dataframe.
    params : DriftParams
        Tests, thresholds, bins, the coefficient's sample size and seed.
    compute : ComputeParams
        Where partitions are profiled (``scheduler``), partition size, fine bins, progress.
    features : list of str, optional
        Columns to compare (default: every column present on both sides).
    client : distributed.Client, optional
        Use this client instead of starting one from ``compute.scheduler``.

    Returns
    -------
    DriftReport
        Exact counts, moments, histograms, chi-squared, PSI and Jensen-Shannon; KS and
        Wasserstein from fine histograms, within the bounds stated per feature; the drift
        coefficient from a sample of at most ``coefficient_sample`` rows.

    Raises
    ------
    DataError
        A file cannot be read or its schema differs (the message names it), or nothing can be
        compared.
    """
    with runner(compute, client) as run:
        base = open_table(baseline, compute, side="baseline")
        tgt = open_table(target, compute, side="target")
        names, notes = drift._resolve_features(pd.DataFrame(columns=base.columns), pd.DataFrame(columns=tgt.columns),
                                               features, None)
        common = [n for n in names if n in base.columns and n in tgt.columns]
        check_schema(base, common)
        check_schema(tgt, common)
        base_rows, scans = scan_table(base, common, params.categorical_max_unique, run, "scanning baseline")
        types, type_notes = infer_types(scans, params)
        compared = {n: t for n, t in types.items() if t in ("numeric", "categorical")}
        task = ProfileTask(compared, edges_from_scans(scans, compared, params.bins), compute.fine_bins)
        target_rows = count_rows(tgt, run)
        takes = _coefficient_sample(base_rows, target_rows, params)
        sampled = replace(task, sample_columns=tuple(compared)) if takes else task
        base_prof, base_sample = profile_table(base, sampled, run, sample=takes[0] if takes else None,
                                               desc="profiling baseline")
        tgt_prof, tgt_sample = profile_table(tgt, sampled, run, sample=takes[1] if takes else None,
                                             desc="profiling target")
        where = run.where
    if sum(base_rows) == 0 or sum(target_rows) == 0:
        side = "baseline" if sum(base_rows) == 0 else "target"
        raise DataError(f"the {side} is empty (0 rows): nothing to compare")
    results = [_feature(n, types, type_notes, base_prof, tgt_prof, base.columns, tgt.columns, params) for n in names]
    report = _report(results, (base_prof, tgt_prof), (base_sample, tgt_sample), notes, params)
    report.notes.append(
        f"computed partition by partition, {where}: {len(base.parts)} baseline and {len(tgt.parts)} target "
        f"partitions; KS and Wasserstein from {compute.fine_bins} fine bins (error bounds in each feature's metrics)"
    )
    return report


def _coefficient_sample(base_rows: list[int], target_rows: list[int],
                        params: DriftParams) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Per-partition positions of the coefficient's rows: the draws drift_coefficient makes."""
    n_base, n_target = sum(base_rows), sum(target_rows)
    if params.coefficient_sample <= 0 or min(n_base, n_target) == 0:
        return None
    per_side = min(n_base, n_target, max(params.coefficient_sample // 2, drift.MIN_CLASSIFIER_ROWS))
    rng = np.random.default_rng(params.seed)
    base = sample_positions(base_rows, per_side, rng)
    return base, sample_positions(target_rows, per_side, rng)


def _feature(name: str, types: Mapping[str, str], type_notes: Mapping[str, list[str]], base: FrameProfile,
             target: FrameProfile, base_columns: Sequence[str], target_columns: Sequence[str],
             params: DriftParams) -> drift.FeatureDrift:
    for side, columns in (("baseline", base_columns), ("target", target_columns)):
        if name not in columns:
            note = f"column missing in the {side}; not compared"
            return drift.FeatureDrift(feature=name, type="missing", notes=[note])
    ctype, notes = types[name], list(type_notes.get(name, []))
    if ctype not in ("numeric", "categorical"):
        if not any("excluded" in n for n in notes):
            notes.append(f"{ctype} column: excluded")
        return drift.FeatureDrift(feature=name, type=ctype, notes=notes)
    result = drift._compare_profile_feature(name, base.columns[name], target.columns[name], params)
    result.notes = notes + result.notes
    b, t = base.columns[name], target.columns[name]
    if result.compared and isinstance(b, NumericProfile) and isinstance(t, NumericProfile):
        _bound_feature(result, b, t)
    return result


def _report(results: list[drift.FeatureDrift], profiles: tuple[FrameProfile, FrameProfile],
            samples: tuple[pd.DataFrame | None, pd.DataFrame | None], notes: list[str],
            params: DriftParams) -> drift.DriftReport:
    if not any(r.compared for r in results):
        detail = "; ".join(f"{r.feature}: {', '.join(r.notes) or r.type}" for r in results)
        raise DataError(f"no feature could be compared ({detail})")
    drift._decide(results, params.correction)
    prepared = [_prepared(r, profiles, samples) for r in results if r.compared]
    coefficient = drift.drift_coefficient(prepared, params)
    return drift._assemble(results, coefficient, None, notes, (profiles[0].rows, profiles[1].rows), params)


def _prepared(result: drift.FeatureDrift, profiles: tuple[FrameProfile, FrameProfile],
              samples: tuple[pd.DataFrame | None, pd.DataFrame | None]) -> Any:
    """What drift_coefficient needs of a feature: its sampled rows, and category order."""
    name = result.feature
    base_rows, target_rows = (s[name] if s is not None else pd.Series(dtype=float) for s in samples)
    prep = drift._Prepared(name, result.type, base_rows, target_rows)
    b, t = profiles[0].columns[name], profiles[1].columns[name]
    if isinstance(b, CategoricalProfile) and isinstance(t, CategoricalProfile):
        prep.labels = aligned_counts(b, t)[0]
    return prep


# --------------------------------------------------------------------------- profiles against a baseline


def profile_like(
    table: Any,
    baseline: FrameProfile,
    columns: Sequence[str],
    compute: ComputeParams,
    *,
    extra_categorical: Sequence[str] = (),
    row_filter: RowFilter | None = None,
    client: Client | None = None,
) -> FrameProfile:
    """Profile ``columns`` of a table on a saved baseline profile's types and edges.

    For monitoring: the captured rows of a window (``row_filter``) against the profile saved
    when the model was trained. ``extra_categorical`` columns (such as the model version) are
    counted too when the table has them.
    """
    with runner(compute, client) as run:
        tab = open_table(table, compute, side="target")
        types = {c: baseline.columns[c].kind for c in columns if c in baseline.columns and c in tab.columns}
        types.update({c: "categorical" for c in extra_categorical if c in tab.columns and c not in types})
        needed = [*types, row_filter.column] if row_filter else list(types)
        check_schema(tab, needed)
        fine = {max(len(p.fine_hist) - 2, 0) for c, p in baseline.columns.items() if c in types
                and isinstance(p, NumericProfile)}
        if len(fine) > 1:
            raise DataError(f"the baseline profile mixes fine-bin counts {sorted(fine)}; profile it again")
        edges = {c: e for c, e in baseline.edges.items() if c in types}
        task = ProfileTask(types, edges, fine.pop() if fine else compute.fine_bins, row_filter=row_filter)
        prof, _ = profile_table(tab, task, run, desc="profiling captures")
    return prof


# --------------------------------------------------------------------------- captured traffic


def captured_files(capture_dir: str | Path, model: str | None, start: Any, end: Any) -> list[str]:
    """Capture files of ``model`` whose day folders can hold rows of ``[start, end)``."""
    from helpers.serving.capture_read import capture_files

    return [str(p) for p in capture_files(capture_dir, model, "captures", as_utc(start, "start"), as_utc(end, "end"))]


def profile_captures(capture_dir: str | Path, model: str | None, start: Any, end: Any, baseline: FrameProfile,
                     columns: Sequence[str], compute: ComputeParams, *, client: Client | None = None) -> FrameProfile:
    """Profile of the captured rows of ``[start, end)`` on the baseline's types and edges.

    ``columns`` that the baseline profiles are profiled, and ``model_version`` is counted (the
    versions seen). No rows travel: each capture file is read, cut to the window and profiled
    where its task runs. No capture file gives a profile of 0 rows and no columns.
    """

    files = captured_files(capture_dir, model, start, end)
    if not files:
        return FrameProfile(rows=0, columns={})
    window = RowFilter("timestamp", as_utc(start, "start"), as_utc(end, "end"))
    return profile_like(files, baseline, columns, compute, extra_categorical=("model_version",), row_filter=window,
                        client=client)


def labelled_captures(capture_dir: str | Path, model: str | None, start: Any, end: Any, compute: ComputeParams,
                      *, client: Client | None = None) -> pd.DataFrame:
    """:func:`helpers.capture.read_labeled_captures`, joined file by file where the files are read.

    Only captured rows that have feedback travel back; the feedback table is sent to each
    worker once.
    """
    from helpers.serving.capture_read import read_feedback

    feedback = read_feedback(capture_dir, model, start, None)
    files = captured_files(capture_dir, model, start, end)
    if feedback.empty or not files:
        return pd.DataFrame(columns=["request_id", "row", "timestamp", "label", "feedback_timestamp"])
    window = RowFilter("timestamp", as_utc(start, "start"), as_utc(end, "end"))
    with runner(compute, client) as run:
        table = open_table(files, compute, side="captures")
        shared = run.client.scatter(feedback, broadcast=True) if run.client is not None else feedback
        tasks = [(part, window, shared) for part in table.parts]
        pieces = list(run.map(_labelled_part, tasks, table.labels, "joining feedback"))
    frame = pd.concat(pieces, ignore_index=True)
    return frame.sort_values(["timestamp", "request_id", "row"], kind="stable").reset_index(drop=True)


def _labelled_part(part: Any, window: RowFilter, feedback: pd.DataFrame) -> pd.DataFrame:
    from helpers.serving.capture_read import join_feedback

    frame = _read(part, None).copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return join_feedback(frame.loc[window.mask(frame)], feedback, how="inner")
