"""Captured records as Arrow tables, and writing a table into the capture store.

One table per kind, model and UTC day: :func:`capture_table` gives one row per scored row (meta
columns, inputs, outputs; columns missing from some records are filled with nulls),
:func:`feedback_table` one row per label. :func:`write_table` writes under a hidden temporary
name and renames into place, so readers never see half a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core.catalogue import PREDICTION
from helpers.modeling.captures import CAPTURE_COLUMNS, INPUT_PREFIX
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord


def group_records(
    batch: Iterable[CaptureRecord | FeedbackRecord],
) -> dict[tuple[str, str, dt.date], list[CaptureRecord | FeedbackRecord]]:
    """Group records by kind (``captures`` or ``feedback``), model and UTC day, keeping arrival order."""
    groups: dict[tuple[str, str, dt.date], list[CaptureRecord | FeedbackRecord]] = {}
    for record in batch:
        kind = "captures" if isinstance(record, CaptureRecord) else "feedback"
        day = dt.datetime.fromtimestamp(record.timestamp, dt.UTC).date()
        groups.setdefault((kind, record.model_name, day), []).append(record)
    return groups


def _timestamps(seconds: np.ndarray) -> pa.Array:
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def capture_table(records: Sequence[CaptureRecord]) -> pa.Table:
    """One row per scored row; columns missing from some records are filled with nulls."""
    counts = np.fromiter((r.n_rows for r in records), dtype=np.int64, count=len(records))
    columns: dict[str, pa.Array] = {
        "request_id": pa.array(np.repeat([r.request_id for r in records], counts), type=pa.string()),
        "row": pa.array(np.concatenate([np.arange(n, dtype=np.int32) for n in counts]), type=pa.int32()),
        "timestamp": _timestamps(np.repeat([r.timestamp for r in records], counts)),
        "latency_ms": pa.array(np.repeat([r.latency_ms for r in records], counts), type=pa.float64()),
        "model_name": pa.array(np.repeat([r.model_name for r in records], counts), type=pa.string()),
        "model_version": pa.array(np.repeat([r.model_version for r in records], counts), type=pa.string()),
        "role": pa.array(np.repeat([r.role for r in records], counts), type=pa.string()),
    }
    inputs = pd.concat([r.inputs for r in records], ignore_index=True) if len(records) > 1 else records[0].inputs
    for name in inputs.columns:
        columns[_input_name(str(name))] = _to_arrow(inputs[name])
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record.outputs))
    for name in names:
        parts = [r.outputs.get(name, np.full(r.n_rows, None, dtype=object)) for r in records]
        columns[name] = _to_arrow(pd.Series(np.concatenate(parts) if len(parts) > 1 else parts[0]))
    return pa.table(columns)


def _input_name(name: str) -> str:
    """Input columns keep their names unless they clash with a meta or prediction column."""
    return f"{INPUT_PREFIX}{name}" if name in CAPTURE_COLUMNS or name.startswith(PREDICTION) else name


def _to_arrow(values: pd.Series) -> pa.Array:
    try:
        return pa.Array.from_pandas(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them readable as text
        return pa.array([None if pd.isna(v) else str(v) for v in values], type=pa.string())


def feedback_table(records: Sequence[FeedbackRecord]) -> pa.Table:
    counts = [r.n_rows for r in records]
    labels = [label for r in records for label in r.labels]
    return pa.table(
        {
            "request_id": pa.array([i for r in records for i in r.request_ids], type=pa.string()),
            "row": pa.array([i for r in records for i in r.rows], type=pa.int32()),
            "label": _label_array(labels),
            "timestamp": _timestamps(np.repeat([r.timestamp for r in records], counts)),
        }
    )


def _label_array(labels: list[Any]) -> pa.Array:
    """Feedback labels as one Arrow column; labels of mixed types (``true`` and ``"false"`` from
    different clients) are kept as text, which monitoring reads back in the classes' type."""
    try:
        return pa.array(labels, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in labels], type=pa.string())


def table_for(kind: str, records: Sequence[CaptureRecord | FeedbackRecord]) -> pa.Table:
    """The Arrow table of one group of records of ``kind`` (``captures`` or ``feedback``)."""
    return capture_table(records) if kind == "captures" else feedback_table(records)  # type: ignore[arg-type]


def write_table(table: pa.Table, path: Path, fmt: str, *, durable: bool = False) -> None:
    """Write under a hidden temporary name, then rename: readers never see half a file.

    With ``durable`` the file and its folder are fsynced, so the file survives a power loss
    once this returns (the write-ahead log is deleted only after that).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in table.to_pylist():
                    handle.write(json.dumps(row, default=_json_default, allow_nan=True))
                    handle.write("\n")
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_path(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
