"""Pass 2 at scale: profiles of every partition on fixed edges, merged, and the sampled rows.

Each partition is read and profiled where it lives (:func:`profile_part`); only the small
results travel back: a profile and, for the drift coefficient, the few sampled rows
(:func:`sample_positions`). :func:`profile_like` profiles a table on a saved baseline profile's
types and edges (for monitoring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from helpers.core.config import ComputeParams
from helpers.core.errors import DataError
from helpers.stats.coefficient import sample_rows
from helpers.stats.dask_cluster import Runner, runner
from helpers.stats.partitions import Table, check_schema, open_table, part_columns, read_part
from helpers.stats.profile import CategoricalProfile, ColumnProfile, FrameProfile, NumericProfile
from helpers.stats.profiling import category_counts, numeric_array, profile_numeric, split_finite

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class RowFilter:
    """Keep the rows with ``start <= column < end`` (UTC times); either end may be open. With
    ``keep_column``, also only the rows whose value there is one of ``keep_values``; a null, or
    a partition without that column (written before it existed), counts as ``keep_values[0]``."""

    column: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    keep_column: str | None = None
    keep_values: tuple[str, ...] = ()

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        """Which rows of ``frame`` lie inside the window (and have a kept value)."""
        times = pd.to_datetime(frame[self.column], utc=True)
        keep = pd.Series(True, index=frame.index)
        if self.start is not None:
            keep &= times >= self.start
        if self.end is not None:
            keep &= times < self.end
        if self.keep_column is not None and self.keep_column in frame:
            values = frame[self.keep_column].fillna(self.keep_values[0])
            keep &= values.isin(list(self.keep_values))
        return keep

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` the filter keeps, without the filter's columns."""
        return frame.loc[self.mask(frame)].drop(columns=[c for c in (self.column, self.keep_column) if c in frame])

    def read(self, part: Any, columns: Sequence[str]) -> pd.DataFrame:
        """``columns`` of the rows of ``part`` the filter keeps."""
        wanted = [*columns, self.column]
        if self.keep_column is not None and self.keep_column in part_columns(part):
            wanted.append(self.keep_column)
        return self.apply(read_part(part, wanted))


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
        frame = task.row_filter.read(part, columns)
    else:
        frame = read_part(part, columns)
    prof = profile_partition(frame, task.types, task.edges, task.fine_bins)
    sample = None
    if take is not None and task.sample_columns:
        sample = frame.iloc[take][list(task.sample_columns)].reset_index(drop=True)
    return prof, sample


def profile_partition(frame: pd.DataFrame, types: Mapping[str, str], edges: Mapping[str, np.ndarray],
                      fine_bins: int) -> FrameProfile:
    """:func:`helpers.stats.profiling.profile_frame` on fixed edges, through the sorted-values fast path.

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

    The global positions are those :func:`helpers.stats.coefficient.drift_coefficient` draws from the whole
    table with the same generator, so the sample holds the same rows as the in-memory path's.
    """
    chosen = sample_rows(int(sum(rows)), k, rng)
    offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    cut = np.searchsorted(chosen, offsets)
    return [chosen[cut[i] : cut[i + 1]] - offsets[i] for i in range(len(rows))]


def count_rows(table: Table, run: Runner) -> list[int]:
    """Rows per partition: from the footers, or by reading (Dask dataframes)."""
    if table.known_rows:
        return [int(r) for r in table.rows if r is not None]
    tasks = [(part,) for part in table.parts]
    return list(run.map(len, tasks, table.labels, f"counting {table.label}"))


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
