"""Capture store: writes every scored request, its predictions and later ground truth to disk.

The scoring service hands each answered request to a :class:`CaptureWriter`. A background
thread writes what has accumulated every ``flush_interval`` seconds as one Parquet (or JSONL)
file per model and day::

    <capture_dir>/<model>/<yyyy>/<mm>/<dd>/captures-<time>-<pid>-<seq>.parquet
    <capture_dir>/<model>/<yyyy>/<mm>/<dd>/feedback-<time>-<pid>-<seq>.parquet

Files are written under a hidden temporary name and renamed into place, so readers never see
half a file. Memory is bounded: at most ``max_pending_rows`` rows wait for the writer; beyond
that, new rows are dropped and counted rather than slowing predictions down. A write that fails
(disk full, permissions) is retried at the next flush and reported by :meth:`CaptureWriter.stats`;
it never raises into the caller. :meth:`CaptureWriter.close` writes everything still pending, so
a graceful stop loses nothing; a hard kill loses at most the last ``flush_interval``.

Example
-------
>>> writer = CaptureWriter("outputs/captures").start()  # doctest: +SKIP
>>> writer.submit(CaptureRecord.from_frame("r1", inputs, preds, model_name="bike-demand",
...                                        model_version="3", latency_ms=2.1))  # doctest: +SKIP
>>> writer.close()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core.catalogue import PREDICTION
from helpers.modeling.captures import (
    CAPTURE_COLUMNS,
    FORMATS,
    INPUT_PREFIX,
    CaptureFormat,
    day_dir,
)
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------- writer


class CaptureWriter:
    """Background writer of captured requests and feedback, with bounded memory.

    Parameters
    ----------
    capture_dir : path
        Root of the capture store; nothing is written outside it.
    fmt : {"parquet", "jsonl"}
        File format.
    flush_interval : float
        Seconds between writes; a hard kill loses at most this much.
    max_pending_rows : int
        Rows allowed to wait for the writer; beyond this new rows are dropped and counted.

    Examples
    --------
    >>> with CaptureWriter(tmp_dir) as writer:  # doctest: +SKIP
    ...     writer.submit(record)
    """

    def __init__(
        self,
        capture_dir: str | os.PathLike[str],
        *,
        fmt: CaptureFormat = "parquet",
        flush_interval: float = 1.0,
        max_pending_rows: int = 100_000,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"capture format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        if max_pending_rows < 1:
            raise ValueError(f"max_pending_rows must be at least 1, got {max_pending_rows}")
        self.capture_dir = Path(capture_dir).resolve()
        self.fmt = fmt
        self.flush_interval = float(flush_interval)
        self.max_pending_rows = int(max_pending_rows)
        self._pending: list[CaptureRecord | FeedbackRecord] = []
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._flush_requested = False
        self._flushed_generation = 0
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._counters: dict[str, Any] = {
            "captured_requests": 0,
            "captured_rows": 0,
            "feedback_rows": 0,
            "dropped_rows": 0,
            "write_errors": 0,
            "files_written": 0,
            "last_error": None,
            "last_flush": None,
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> CaptureWriter:
        """Start the background thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 60.0) -> None:
        """Write everything pending and stop the thread. Further submissions are refused."""
        with self._cond:
            if self._closed:
                return
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._write_pending()
        with self._cond:
            self._closed = True
            lost = self._pending_rows
            if lost:  # the final write failed: these rows are gone
                self._counters["dropped_rows"] += lost
                self._pending.clear()
                self._pending_rows = 0
        if lost:
            logger.error("capture: %d rows could not be written before closing", lost)

    def __enter__(self) -> CaptureWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ producers
    def submit(self, record: CaptureRecord | FeedbackRecord) -> bool:
        """Queue a record for writing; never blocks on I/O and never raises.

        Returns
        -------
        bool
            False when the record was dropped (writer closed or memory bound reached).
        """
        rows = record.n_rows
        with self._cond:
            if self._stopping or self._pending_rows + rows > self.max_pending_rows:
                self._counters["dropped_rows"] += rows
                return False
            self._pending.append(record)
            self._pending_rows += rows
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Ask the writer to write now and wait until it has; returns False on timeout."""
        with self._cond:
            if self._thread is None or self._stopping:
                return False
            target = self._flushed_generation + 1
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._flushed_generation >= target + 1 or self._stopping, timeout)

    def request_flush(self) -> None:
        """Ask the writer to write soon, without waiting (used on a model switch)."""
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ status
    def stats(self) -> dict[str, Any]:
        """Counters for ``/health``: rows written, pending, dropped, write errors, last error."""
        with self._cond:
            out = dict(self._counters)
            out["pending_rows"] = self._pending_rows
        out.update(
            enabled=True,
            dir=str(self.capture_dir),
            format=self.fmt,
            flush_interval=self.flush_interval,
            healthy=out["write_errors"] == 0 and out["dropped_rows"] == 0,
        )
        return out

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._flush_requested, self.flush_interval)
                self._flush_requested = False
                stopping = self._stopping
            self._write_pending()
            with self._cond:
                self._flushed_generation += 1
                self._cond.notify_all()
            if stopping:
                return

    def _write_pending(self) -> None:
        with self._cond:
            batch, self._pending = self._pending, []
        if not batch:
            return
        failed: list[CaptureRecord | FeedbackRecord] = []
        for (kind, model, day), records in _group(batch).items():
            try:
                rows = self._write_group(kind, model, day, records)
            except Exception as exc:  # a capture failure must never reach predictions
                failed.extend(records)
                self._note_error(exc)
                continue
            with self._cond:
                self._pending_rows -= rows
                self._counters["files_written"] += 1
                if kind == "captures":
                    self._counters["captured_rows"] += rows
                    self._counters["captured_requests"] += len(records)
                else:
                    self._counters["feedback_rows"] += rows
        with self._cond:
            self._pending[:0] = failed  # retried at the next flush, still counted as pending
            self._counters["last_flush"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")

    def _note_error(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._counters["write_errors"] += 1
            self._counters["last_error"] = message
        logger.warning("capture write failed: %s", message)

    def _write_group(self, kind: str, model: str, day: dt.date, records: list[CaptureRecord | FeedbackRecord]) -> int:
        table = _capture_table(records) if kind == "captures" else _feedback_table(records)  # type: ignore[arg-type]
        folder = day_dir(self.capture_dir, model, day)
        folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{kind}-{stamp}-{os.getpid()}-{self._seq:06d}.{self.fmt}"
        _write_table(table, folder / name, self.fmt)
        return table.num_rows


def _group(
    batch: Iterable[CaptureRecord | FeedbackRecord],
) -> dict[tuple[str, str, dt.date], list[CaptureRecord | FeedbackRecord]]:
    """Group records by kind, model and UTC day, keeping arrival order."""
    groups: dict[tuple[str, str, dt.date], list[CaptureRecord | FeedbackRecord]] = {}
    for record in batch:
        kind = "captures" if isinstance(record, CaptureRecord) else "feedback"
        day = dt.datetime.fromtimestamp(record.timestamp, dt.UTC).date()
        groups.setdefault((kind, record.model_name, day), []).append(record)
    return groups


def _timestamps(seconds: np.ndarray) -> pa.Array:
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def _capture_table(records: Sequence[CaptureRecord]) -> pa.Table:
    """One row per scored row; columns missing from some records are filled with nulls."""
    counts = np.fromiter((r.n_rows for r in records), dtype=np.int64, count=len(records))
    columns: dict[str, pa.Array] = {
        "request_id": pa.array(np.repeat([r.request_id for r in records], counts), type=pa.string()),
        "row": pa.array(np.concatenate([np.arange(n, dtype=np.int32) for n in counts]), type=pa.int32()),
        "timestamp": _timestamps(np.repeat([r.timestamp for r in records], counts)),
        "latency_ms": pa.array(np.repeat([r.latency_ms for r in records], counts), type=pa.float64()),
        "model_name": pa.array(np.repeat([r.model_name for r in records], counts), type=pa.string()),
        "model_version": pa.array(np.repeat([r.model_version for r in records], counts), type=pa.string()),
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


def _feedback_table(records: Sequence[FeedbackRecord]) -> pa.Table:
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


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    """Write under a hidden temporary name, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in table.to_pylist():
                    handle.write(json.dumps(row, default=_json_default, allow_nan=True))
                    handle.write("\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
