"""Tables as ordered lists of partitions: Parquet row groups, Dask partitions or pandas slices.

A table is a list of partitions: the Parquet files of a glob (grouped by row groups up to
``compute.partition_rows`` rows), the partitions of a Dask dataframe, or slices of a pandas
frame. :func:`open_table` lists them (reading only Parquet footers), :func:`check_schema` checks
that every file holds the compared columns with the same kinds, and :func:`read_part` reads one
partition where its task runs.

Paths are made absolute on the client, so workers running in another folder (or on another
machine sharing the file system) open the same files. An unnamed pandas index stored in a
Parquet file (``__index_level_0__``) is never a column; a named one is an ordinary column.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core.config import ComputeParams
from helpers.core.errors import DataError

FOOTER_THREADS = 8  # threads reading Parquet footers on the client
STORED_INDEX = re.compile(r"^__index_level_\d+__$")  # pandas' name for an unnamed index it stored in Parquet


def data_columns(schema: pa.Schema) -> list[str]:
    """The columns of a Parquet schema, without an unnamed pandas index stored in it."""
    return [name for name in schema.names if not STORED_INDEX.match(name)]


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
            handle = pq.ParquetFile(self.path)
            wanted = list(columns) if columns is not None else data_columns(handle.schema_arrow)
            table = handle.read_row_groups(list(self.row_groups), columns=wanted)
            return table.to_pandas(ignore_metadata=True)
        except Exception as exc:
            raise DataError(f"{self.path}: cannot be read as parquet ({describe_error(exc)})") from None


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
    """The files of a path or glob, as absolute paths (workers may run in another folder)."""
    text = str(Path(text).expanduser())
    files = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
    files = [str(Path(f).absolute()) for f in files]
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
        columns=data_columns(first),
        kinds={f.name: _arrow_kind(f.type) for f in first if not STORED_INDEX.match(f.name)},
        schemas={path: schema for path, (_, schema) in zip(files, footers, strict=True)},
    )


def _footer(path: str) -> tuple[pq.FileMetaData, pa.Schema]:
    try:
        handle = pq.ParquetFile(path)
        return handle.metadata, handle.schema_arrow
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as parquet ({describe_error(exc)})") from None


def describe_error(exc: BaseException) -> str:
    """An exception as one line of text: its type and message."""
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


def part_columns(part: Any) -> list[str]:
    """The column names of one partition (a Parquet file's from its footer)."""
    if isinstance(part, FilePart):
        try:
            return list(pq.ParquetFile(part.path).schema_arrow.names)
        except Exception as exc:
            raise DataError(f"{part.path}: cannot be read as parquet ({describe_error(exc)})") from None
    return [str(c) for c in part.columns]


def read_part(part: Any, columns: Sequence[str] | None) -> pd.DataFrame:
    """The ``columns`` (None: all) of one partition as a pandas frame; a DataError names missing ones."""
    if isinstance(part, FilePart):
        return part.read(columns)
    if columns is None:
        return part
    missing = [c for c in columns if c not in part.columns]
    if missing:
        raise DataError(f"column(s) {', '.join(map(repr, missing))} missing")
    return part[list(columns)]
