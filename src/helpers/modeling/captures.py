"""The capture store's layout and reading: captured rows, feedback, their join, counts, files.

The scoring service (``helpers.serving``) writes what it answered; monitoring, the version test on
captured rows and the Dask scale-out read it back through this module. Files live in one
folder per model and day, written under a temporary name and renamed into place::

    <capture_dir>/<model>/<yyyy>/<mm>/<dd>/captures-<time>-<pid>-<seq>.parquet
    <capture_dir>/<model>/<yyyy>/<mm>/<dd>/feedback-<time>-<pid>-<seq>.parquet
    <capture_dir>/<model>/<yyyy>/<mm>/<dd>/captures-wal-<segment>-<g>.parquet   (sync mode, from the log)
    <capture_dir>/<model>/<yyyy>/<mm>/<dd>/captures-compacted-<period>.parquet  (driftgate captures compact)
    <capture_dir>/_wal/wal-<time>-<pid>-<seq>.log                               (sync mode's write-ahead log)

A compacted file names, in its Parquet metadata (:data:`COVERED_KEY`), the files it was merged
from; readers skip those while they still exist, so a compaction cut short between writing the
compacted file and deleting its inputs never counts a row twice (see
``helpers.serving.capture_compaction``).

Captured tables hold one row per scored input row: the meta columns of :data:`CAPTURE_COLUMNS`,
the model's input columns under their own names, and the outputs as ``prediction`` (or
``prediction_<i>`` for several outputs). Feedback tables hold ``request_id``, ``row``,
``label`` and ``timestamp`` (when the feedback arrived).

Example
-------
>>> read_captures("outputs/captures", "bike-demand", "2011-07-01", "2011-08-01")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core.errors import DataError
from helpers.core.times import as_utc

CaptureFormat = Literal["parquet", "jsonl"]
FORMATS: tuple[str, ...] = ("parquet", "jsonl")

CAPTURE_COLUMNS: tuple[str, ...] = (
    "request_id",
    "row",
    "timestamp",
    "latency_ms",
    "model_name",
    "model_version",
    "role",
)
ROLES: tuple[str, ...] = ("champion", "shadow", "canary")  # who answered a captured request
FEEDBACK_COLUMNS: tuple[str, ...] = ("request_id", "row", "label", "timestamp")
INPUT_PREFIX = "input_"  # given to an input column whose name clashes with a meta column
UNREGISTERED = "unregistered"  # folder of a model served without a registered name
WAL_DIR = "_wal"  # the write-ahead log's folder under the capture root (never a model folder)
COMPACTED = "compacted"  # <kind>-compacted-<period>.parquet: files merged by compaction
COVERED_KEY = b"driftgate.compacted_from"  # Parquet metadata: JSON list of the merged file names
_SUFFIXES = (".parquet", ".jsonl")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


# --------------------------------------------------------------------------- paths


def safe_component(name: str | None) -> str:
    """Make ``name`` a single safe path component (no separators, no ``..``).

    Examples
    --------
    >>> safe_component("../../etc/passwd")
    '.._.._etc_passwd'
    >>> safe_component("..")
    '_..'
    """
    text = _SAFE_NAME.sub("_", name or UNREGISTERED)
    return f"_{text}" if text in ("", ".", "..", WAL_DIR) else text


def day_dir(capture_dir: str | os.PathLike[str], model: str | None, day: dt.date) -> Path:
    """The folder of one model and day, checked to lie inside ``capture_dir``."""
    root = Path(capture_dir).resolve()
    path = root / safe_component(model) / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}"
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise DataError(f"capture path {resolved} would leave the capture folder {root}")
    return resolved


# --------------------------------------------------------------------------- reading



def read_captures(
    capture_dir: str | os.PathLike[str],
    model: str | None,
    start: str | dt.date | dt.datetime | None = None,
    end: str | dt.date | dt.datetime | None = None,
    roles: Sequence[str] | None = ("champion",),
) -> pd.DataFrame:
    """Captured rows of ``model`` with ``start <= timestamp < end`` (UTC), oldest first.

    Parameters
    ----------
    capture_dir : path
        Root of the capture store.
    model : str
        Registered model name (the folder under ``capture_dir``).
    start, end : str, date or datetime, optional
        Half-open time window; a date means midnight UTC. Either may be left out.
    roles : sequence of str, optional
        Keep rows answered in these roles (:data:`ROLES`; rows written before roles existed are
        ``champion``); None keeps every row, shadow predictions included.

    Returns
    -------
    pandas.DataFrame
        :data:`CAPTURE_COLUMNS`, the input columns and the prediction column(s); empty with the
        meta columns when nothing was captured.

    Examples
    --------
    >>> frame = read_captures("outputs/captures", "bike-demand", "2011-07-01", "2011-08-01")  # doctest: +SKIP
    """
    frame = _read_kind(capture_dir, model, "captures", start, end, CAPTURE_COLUMNS)
    frame = keep_roles(frame, roles)
    return frame.sort_values(["timestamp", "request_id", "row"], kind="stable").reset_index(drop=True)


def keep_roles(frame: pd.DataFrame, roles: Sequence[str] | None = ("champion",)) -> pd.DataFrame:
    """``frame``'s captured rows answered in one of ``roles`` (all with None), with a ``role``
    column; rows written before roles existed are the champion's."""
    frame = frame.copy()
    frame["role"] = frame["role"].fillna("champion") if "role" in frame else "champion"
    return frame if roles is None else frame.loc[frame["role"].isin(list(roles))]


def read_feedback(
    capture_dir: str | os.PathLike[str],
    model: str | None,
    start: str | dt.date | dt.datetime | None = None,
    end: str | dt.date | dt.datetime | None = None,
) -> pd.DataFrame:
    """Feedback received for ``model`` in ``[start, end)``; the latest label per row wins.

    Returns
    -------
    pandas.DataFrame
        Columns ``request_id``, ``row``, ``label``, ``timestamp``.
    """
    frame = _read_kind(capture_dir, model, "feedback", start, end, FEEDBACK_COLUMNS)
    frame = frame.sort_values("timestamp", kind="stable")
    frame = frame.drop_duplicates(["request_id", "row"], keep="last")
    return frame.reset_index(drop=True)


def join_feedback(
    captures: pd.DataFrame, feedback: pd.DataFrame, *, how: Literal["inner", "left"] = "inner"
) -> pd.DataFrame:
    """Attach ground truth to captured rows on ``(request_id, row)``.

    Parameters
    ----------
    captures : pandas.DataFrame
        From :func:`read_captures`.
    feedback : pandas.DataFrame
        From :func:`read_feedback`.
    how : {"inner", "left"}
        ``inner`` keeps labelled rows only; ``left`` keeps every captured row.

    Returns
    -------
    pandas.DataFrame
        The captured columns plus ``label`` and ``feedback_timestamp``.

    Examples
    --------
    >>> caps = pd.DataFrame({"request_id": ["a", "b"], "row": [0, 0], "prediction": [1.0, 2.0]})
    >>> fb = pd.DataFrame({"request_id": ["b"], "row": [0], "label": [3.0],
    ...                    "timestamp": [pd.Timestamp("2026-01-01", tz="UTC")]})
    >>> join_feedback(caps, fb)[["request_id", "prediction", "label"]].values.tolist()
    [['b', 2.0, 3.0]]
    """
    labels = feedback[["request_id", "row", "label", "timestamp"]].rename(columns={"timestamp": "feedback_timestamp"})
    labels = labels.astype({"row": "int32"})
    caps = captures.astype({"row": "int32"}) if "row" in captures else captures
    return caps.merge(labels, on=["request_id", "row"], how=how, validate="many_to_one")


def read_labeled_captures(
    capture_dir: str | os.PathLike[str],
    model: str | None,
    start: str | dt.date | dt.datetime | None = None,
    end: str | dt.date | dt.datetime | None = None,
) -> pd.DataFrame:
    """Captured rows of ``[start, end)`` that have feedback, with their ``label``.

    Feedback arriving after ``end`` still counts: ground truth often comes late.
    """
    captures = read_captures(capture_dir, model, start, end)
    feedback = read_feedback(capture_dir, model, start, None)
    return join_feedback(captures, feedback, how="inner")


def _read_kind(
    capture_dir: str | os.PathLike[str],
    model: str | None,
    kind: str,
    start: str | dt.date | dt.datetime | None,
    end: str | dt.date | dt.datetime | None,
    meta: Sequence[str],
) -> pd.DataFrame:
    lo, hi = as_utc(start, "start"), as_utc(end, "end")
    if lo is not None and hi is not None and lo >= hi:
        raise DataError(f"capture window: start {lo.isoformat()} must be before end {hi.isoformat()}")
    tables = [_read_file(path) for path in capture_files(capture_dir, model, kind, lo, hi)]
    if not tables:
        return pd.DataFrame({name: pd.Series(dtype=_META_DTYPES.get(name, "object")) for name in meta})
    table = pa.concat_tables(tables, promote_options="permissive")
    frame = table.to_pandas()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    keep = pd.Series(True, index=frame.index)
    if lo is not None:
        keep &= frame["timestamp"] >= lo
    if hi is not None:
        keep &= frame["timestamp"] < hi
    return frame.loc[keep].reset_index(drop=True)


_META_DTYPES: dict[str, str] = {
    "request_id": "str",
    "row": "int32",
    "timestamp": "datetime64[us, UTC]",
    "latency_ms": "float64",
    "model_name": "str",
    "model_version": "str",
    "role": "str",
    "label": "float64",
}


def capture_files(
    capture_dir: str | os.PathLike[str],
    model: str | None,
    kind: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
) -> Iterator[Path]:
    """Files of ``kind`` in day folders that can hold rows of ``[lo, hi)``, in name order.

    Parameters
    ----------
    capture_dir : path
        Root of the capture store.
    model : str or None
        Model folder name (``None`` means unregistered).
    kind : {"captures", "feedback"}
        Which files to list.
    lo, hi : pandas.Timestamp or None
        UTC window; only day folders from ``lo``'s day to ``hi``'s day (inclusive) are listed.
    """
    root = Path(capture_dir).resolve() / safe_component(model)
    if not root.is_dir():
        return
    first = lo.date() if lo is not None else None
    last = hi.date() if hi is not None else None
    for folder in sorted(root.glob("[0-9][0-9][0-9][0-9]/[0-1][0-9]/[0-3][0-9]")):
        try:
            day = dt.date(int(folder.parent.parent.name), int(folder.parent.name), int(folder.name))
        except ValueError:
            continue
        if (first is not None and day < first) or (last is not None and day > last):
            continue
        yield from kind_files(folder, kind)


def kind_files(folder: Path, kind: str) -> list[Path]:
    """The data files of ``kind`` in one day folder, in name order, without the files a
    compacted file of the folder already holds (left behind by a compaction cut short)."""
    paths = [p for p in sorted(folder.iterdir()) if p.name.startswith(f"{kind}-") and p.suffix in _SUFFIXES]
    covered: set[str] = set()
    for path in paths:
        if path.name.startswith(f"{kind}-{COMPACTED}-"):
            covered.update(covered_by(path))
    return [p for p in paths if p.name not in covered]


def covered_by(path: Path) -> list[str]:
    """Names of the files a compacted file was merged from (empty for any other file)."""
    try:
        meta = pq.read_metadata(path).metadata or {}
    except Exception as exc:
        raise DataError(f"{path}: cannot read captured data ({type(exc).__name__}: {exc})") from None
    return list(json.loads(meta[COVERED_KEY])) if COVERED_KEY in meta else []


def _read_file(path: Path) -> pa.Table:
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        with open(path, encoding="utf-8") as handle:
            frame = pd.DataFrame.from_records([json.loads(line) for line in handle if line.strip()])
        position = frame.columns.get_loc("timestamp")
        stamps = pd.to_datetime(frame.pop("timestamp"), utc=True, format="ISO8601")
        micros = stamps.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        return table.add_column(position, "timestamp", pa.array(micros, type=pa.timestamp("us", tz="UTC")))
    except Exception as exc:
        raise DataError(f"{path}: cannot read captured data ({type(exc).__name__}: {exc})") from None


def count_rows(capture_dir: str | os.PathLike[str], model: str | None, kind: str = "captures") -> int:
    """Number of rows stored for ``model`` (reads Parquet footers only where possible)."""
    total = 0
    for path in capture_files(capture_dir, model, kind, None, None):
        if path.suffix == ".parquet":
            total += pq.ParquetFile(path).metadata.num_rows
        else:
            with open(path, encoding="utf-8") as handle:
                total += sum(1 for line in handle if line.strip())
    return total


def models_in(capture_dir: str | os.PathLike[str]) -> list[str]:
    """Model folders present in the capture store."""
    root = Path(capture_dir)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != WAL_DIR) if root.is_dir() else []
