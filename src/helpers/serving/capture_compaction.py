"""Compaction of the capture store: the per-flush files of past periods merged into one per period.

A service flushing every second writes 86,400 files a day per model and kind; readers open
every one. :func:`compact` merges the Parquet files of closed periods (hours or days, UTC) into
one file per model, day folder, kind and period::

    <model>/<yyyy>/<mm>/<dd>/captures-compacted-<yyyymmdd>.parquet      (--period day)
    <model>/<yyyy>/<mm>/<dd>/captures-compacted-<yyyymmddTHH>.parquet   (--period hour)

**Atomic, and never counted twice.** The merged file is written under a hidden temporary name
(readers skip names starting with a dot), fsynced, then renamed into place; its Parquet metadata
(:data:`~helpers.modeling.captures.COVERED_KEY`) names the files it holds. Only then are those
files deleted. Readers (:func:`~helpers.modeling.captures.kind_files`) skip any file a compacted
file of the same folder names, so at every instant they see either the old files or the merged
one, whichever a crash left: the rename is the single commit point. The next compaction deletes
such leftovers before merging anything. Rerunning it is a no-op; a period with new late files
is merged again, the previous compacted file included, under the same name (one rename again).

**What is never touched.** The current period (and everything from ``before`` on); a file whose
rows reach into it; files converted from a write-ahead log segment that still exists (the writer
might convert it again after a crash, rewriting the same names: see
:mod:`helpers.serving.capture_wal`); JSONL files. A file goes whole into the period of its first
row (a flush that straddles an hour boundary puts a few rows of the next hour into the earlier
hour's file; readers filter rows by their timestamps, so what they return does not change).

Example
-------
>>> compact("outputs/captures", before="2026-06-01", period="day")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from helpers.core.errors import DataError, ParamsError
from helpers.modeling.captures import COMPACTED, COVERED_KEY, covered_by, models_in, safe_component
from helpers.serving.capture_tables import fsync_path
from helpers.serving.capture_wal import converted_from, live_segment_ids

Period = Literal["hour", "day"]
PERIODS: tuple[str, ...] = ("hour", "day")
KINDS: tuple[str, ...] = ("captures", "feedback")
_KEY_FORMAT = {"day": "%Y%m%d", "hour": "%Y%m%dT%H"}


@dataclass
class CompactionReport:
    """What :func:`compact` did."""

    cutoff: str = ""
    periods: int = 0  # compacted files written
    files_merged: int = 0  # input files merged (and deleted)
    rows: int = 0  # rows in the compacted files written
    leftovers_removed: int = 0  # inputs of an earlier compaction cut short, deleted now
    skipped_live_log: int = 0  # files of a write-ahead log segment still present
    skipped_conflicts: int = 0  # periods whose files have columns of types that do not merge

    def summary(self) -> str:
        """One line for the command."""
        return (
            f"compacted {self.files_merged} files into {self.periods} period files ({self.rows} rows) "
            f"before {self.cutoff}; {self.leftovers_removed} leftovers removed; "
            f"{self.skipped_live_log} files left for their write-ahead log; "
            f"{self.skipped_conflicts} periods not merged (column types differ)"
        )


def parse_before(text: str | None) -> pd.Timestamp | None:
    """``--before`` as a UTC timestamp (a date means midnight UTC), or a one-line ParamsError."""
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise ParamsError(f"--before: expected a date like 2026-06-01 or 2026-06-01T12:00, got {text!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def cutoff_for(period: str, before: pd.Timestamp | None, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The start of the open period (now floored to the hour or day), or ``before`` if earlier."""
    if period not in PERIODS:
        raise ParamsError(f"--period: expected one of {', '.join(PERIODS)}, got {period!r}")
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    current = now.floor("h" if period == "hour" else "D")
    return current if before is None or before > current else before


def compact(
    capture_dir: str | os.PathLike[str],
    *,
    before: str | pd.Timestamp | None = None,
    period: str = "day",
    now: pd.Timestamp | None = None,
) -> CompactionReport:
    """Merge the Parquet files of closed periods into one file per period (see the module doc).

    Parameters
    ----------
    capture_dir : path
        Root of the capture store.
    before : str or Timestamp, optional
        Compact only rows before this instant (UTC; a date means midnight). Never later than
        the start of the current period.
    period : {"day", "hour"}
        The span of one compacted file.
    now : Timestamp, optional
        The current time (for tests); default the clock.
    """
    stamp = parse_before(before) if isinstance(before, str) or before is None else before
    cutoff = cutoff_for(period, stamp, now)
    root = Path(capture_dir).resolve()
    if not root.is_dir():
        raise DataError(f"capture folder {root} does not exist; check serve.capture_dir")
    report = CompactionReport(cutoff=cutoff.isoformat())
    for folder in _day_folders(root, cutoff):
        for kind in KINDS:
            _compact_folder(root, folder, kind, period, cutoff, report)
    return report


def _day_folders(root: Path, cutoff: pd.Timestamp) -> Iterator[Path]:
    """Day folders of every model that can hold rows before ``cutoff``."""
    for model in models_in(root):
        for folder in sorted((root / safe_component(model)).glob("[0-9][0-9][0-9][0-9]/[0-1][0-9]/[0-3][0-9]")):
            try:
                day = dt.date(int(folder.parent.parent.name), int(folder.parent.name), int(folder.name))
            except ValueError:
                continue
            if day <= cutoff.date():
                yield folder


def _compact_folder(
    root: Path, folder: Path, kind: str, period: str, cutoff: pd.Timestamp, report: CompactionReport
) -> None:
    paths = [p for p in sorted(folder.iterdir()) if p.name.startswith(f"{kind}-") and p.suffix == ".parquet"]
    compacted = {p.name: p for p in paths if p.name.startswith(f"{kind}-{COMPACTED}-")}
    report.leftovers_removed += _remove_leftovers(folder, compacted.values())
    live = live_segment_ids(root)  # listed after the folder: a segment gone now was converted before
    groups: dict[str, list[tuple[Path, pa.Table]]] = {}
    for path in paths:
        if path.name in compacted or not path.exists():
            continue
        if converted_from(path.name) in live:
            report.skipped_live_log += 1
            continue
        table = pq.read_table(path)
        first, last = _time_range(table)
        if first is None or last >= cutoff:
            continue
        groups.setdefault(first.strftime(_KEY_FORMAT[period]), []).append((path, table))
    for key, inputs in groups.items():
        _merge(folder / f"{kind}-{COMPACTED}-{key}.parquet", inputs, report)


def _remove_leftovers(folder: Path, compacted: Iterable[Path]) -> int:
    """Delete files a compacted file already holds (a compaction cut short before deleting them)."""
    removed = 0
    for path in compacted:
        for name in covered_by(path):
            leftover = folder / name
            if leftover.exists():
                leftover.unlink()
                removed += 1
    if removed:
        fsync_path(folder)
    return removed


def _time_range(table: pa.Table) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    if table.num_rows == 0:
        return None, pd.Timestamp.min.tz_localize("UTC")
    bounds = pc.min_max(table.column("timestamp"))
    first, last = bounds["min"].as_py(), bounds["max"].as_py()
    return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")


def _merge(target: Path, inputs: list[tuple[Path, pa.Table]], report: CompactionReport) -> None:
    """Write the merged file (the commit point is its rename), then delete the inputs."""
    tables = [pq.read_table(target)] if target.exists() else []
    tables += [table for _, table in inputs]
    try:
        merged = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        report.skipped_conflicts += 1
        return
    names = [path.name for path, _ in inputs]
    merged = merged.replace_schema_metadata({**(merged.schema.metadata or {}), COVERED_KEY: json.dumps(names)})
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        pq.write_table(merged, tmp)
        fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
    for path, _ in inputs:
        path.unlink(missing_ok=True)
    fsync_path(target.parent)
    report.periods += 1
    report.files_merged += len(inputs)
    report.rows += merged.num_rows
