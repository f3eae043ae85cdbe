"""Capture store: every scored request, its predictions and later ground truth, on disk.

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

Captured tables hold one row per scored input row: the meta columns of :data:`CAPTURE_COLUMNS`,
the model's input columns under their own names, and the outputs as ``prediction`` (or
``prediction_<i>`` for several outputs). Feedback tables hold ``request_id``, ``row``,
``label`` and ``timestamp`` (when the feedback arrived).

Example
-------
>>> writer = CaptureWriter("outputs/captures").start()  # doctest: +SKIP
>>> writer.submit(CaptureRecord.from_frame("r1", inputs, preds, model_name="bike-demand",
...                                        model_version="3", latency_ms=2.1))  # doctest: +SKIP
>>> writer.close()  # doctest: +SKIP
>>> read_captures("outputs/captures", "bike-demand", "2011-07-01", "2011-08-01")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core.errors import DataError
from helpers.core.times import as_utc

logger = logging.getLogger(__name__)

CaptureFormat = Literal["parquet", "jsonl"]
FORMATS: tuple[str, ...] = ("parquet", "jsonl")

CAPTURE_COLUMNS: tuple[str, ...] = (
    "request_id",
    "row",
    "timestamp",
    "latency_ms",
    "model_name",
    "model_version",
)
FEEDBACK_COLUMNS: tuple[str, ...] = ("request_id", "row", "label", "timestamp")
PREDICTION = "prediction"
INPUT_PREFIX = "input_"  # given to an input column whose name clashes with a meta column
UNREGISTERED = "unregistered"  # folder of a model served without a registered name

_KINDS = ("captures", "feedback")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CaptureRecord:
    """One answered request: its inputs, outputs and metadata, as handed to the writer.

    Parameters
    ----------
    request_id : str
        The id returned to the client in the ``X-Request-Id`` header.
    timestamp : float
        When the request arrived, seconds since the epoch (UTC).
    latency_ms : float
        Milliseconds from arrival to outputs.
    model_name, model_version : str
        The model that answered.
    inputs : pandas.DataFrame
        The checked input rows (not modified afterwards; the writer converts them in bulk).
    outputs : dict of str to numpy.ndarray
        Output columns, each with one value per input row (see :func:`output_columns`).
    """

    request_id: str
    timestamp: float
    latency_ms: float
    model_name: str
    model_version: str
    inputs: pd.DataFrame
    outputs: dict[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        """Number of rows scored in this request."""
        return len(self.inputs)

    @classmethod
    def from_frame(
        cls,
        request_id: str,
        inputs: pd.DataFrame,
        outputs: Any,
        *,
        model_name: str,
        model_version: str,
        latency_ms: float,
        timestamp: float | None = None,
    ) -> CaptureRecord:
        """Build a record from the checked input frame and the model's outputs.

        Examples
        --------
        >>> rec = CaptureRecord.from_frame("r1", pd.DataFrame({"x": [1.0]}), np.array([2.0]),
        ...                                model_name="m", model_version="1", latency_ms=1.0)
        >>> list(rec.outputs), rec.n_rows
        (['prediction'], 1)
        """
        return cls(
            request_id=request_id,
            timestamp=time.time() if timestamp is None else timestamp,
            latency_ms=float(latency_ms),
            model_name=model_name,
            model_version=model_version,
            inputs=inputs,
            outputs=output_columns(outputs, len(inputs)),
        )


@dataclass(frozen=True)
class FeedbackRecord:
    """Ground truth for scored rows, as handed to the writer.

    Parameters
    ----------
    model_name : str
        The model whose captures the feedback belongs beside.
    request_ids, rows, labels : sequence
        Equal-length sequences: the request id, the row within that request, the true value.
    timestamp : float
        When the feedback arrived, seconds since the epoch (UTC).
    """

    model_name: str
    request_ids: list[str]
    rows: list[int]
    labels: list[Any]
    timestamp: float = field(default_factory=time.time)

    @property
    def n_rows(self) -> int:
        """Number of labelled rows."""
        return len(self.request_ids)


def output_columns(outputs: Any, n_rows: int) -> dict[str, np.ndarray]:
    """Turn model outputs into named columns: ``prediction`` or ``prediction_<i>``.

    Examples
    --------
    >>> sorted(output_columns(np.zeros((2, 2)), 2))
    ['prediction_0', 'prediction_1']
    """
    if isinstance(outputs, pd.DataFrame):
        return {f"{PREDICTION}_{c}": outputs[c].to_numpy() for c in outputs.columns}
    values = np.asarray(outputs)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim <= 1:
        return {PREDICTION: values.reshape(n_rows)}
    return {f"{PREDICTION}_{j}": values[:, j] for j in range(values.shape[1])}


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
    return f"_{text}" if text in ("", ".", "..") else text


def day_dir(capture_dir: str | os.PathLike[str], model: str | None, day: dt.date) -> Path:
    """The folder of one model and day, checked to lie inside ``capture_dir``."""
    root = Path(capture_dir).resolve()
    path = root / safe_component(model) / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}"
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise DataError(f"capture path {resolved} would leave the capture folder {root}")
    return resolved


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
            "label": pa.array(labels, from_pandas=True),
            "timestamp": _timestamps(np.repeat([r.timestamp for r in records], counts)),
        }
    )


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


# --------------------------------------------------------------------------- readers


def read_captures(
    capture_dir: str | os.PathLike[str],
    model: str | None,
    start: str | dt.date | dt.datetime | None = None,
    end: str | dt.date | dt.datetime | None = None,
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
    return frame.sort_values(["timestamp", "request_id", "row"], kind="stable").reset_index(drop=True)


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
    tables = [_read_file(path) for path in _files(capture_dir, model, kind, lo, hi)]
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
    "label": "float64",
}


def _files(
    capture_dir: str | os.PathLike[str],
    model: str | None,
    kind: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
) -> Iterator[Path]:
    """Files of ``kind`` in day folders that can hold rows of ``[lo, hi)``, in name order."""
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
        for path in sorted(folder.iterdir()):
            if path.name.startswith(f"{kind}-") and path.suffix in (".parquet", ".jsonl"):
                yield path


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
    for path in _files(capture_dir, model, kind, None, None):
        if path.suffix == ".parquet":
            total += pq.ParquetFile(path).metadata.num_rows
        else:
            with open(path, encoding="utf-8") as handle:
                total += sum(1 for line in handle if line.strip())
    return total


def models_in(capture_dir: str | os.PathLike[str]) -> list[str]:
    """Model folders present in the capture store."""
    root = Path(capture_dir)
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
