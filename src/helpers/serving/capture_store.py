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

In ``sync`` mode (:meth:`CaptureWriter.submit_durable`) a record first goes to a write-ahead log
(:mod:`helpers.serving.capture_wal`), fsynced in group commits, and its future resolves only then;
every ``flush_interval`` the writer seals the log segment and turns it into the same files
(``captures-wal-<segment>-<g>.parquet``), exactly once even across a kill. :meth:`CaptureWriter.start`
first converts whatever log a killed process left behind (``driftgate captures recover`` does the
same by hand), in either mode.

Example
-------
>>> writer = CaptureWriter("outputs/captures").start()  # doctest: +SKIP
>>> writer.submit(CaptureRecord.from_frame("r1", inputs, preds, model_name="bike-demand",
...                                        model_version="3", latency_ms=2.1))  # doctest: +SKIP
>>> writer.close()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal

from helpers.modeling.captures import FORMATS, CaptureFormat, day_dir
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
from helpers.serving.capture_tables import group_records, table_for, write_table
from helpers.serving.capture_wal import CaptureNotDurable, Converted, WriteAheadLog, convert_segment, recover

logger = logging.getLogger(__name__)

CaptureMode = Literal["async", "sync"]
MODES: tuple[str, ...] = ("async", "sync")


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
    mode : {"async", "sync"}
        ``sync`` starts the write-ahead log with the writer (:meth:`submit_durable` starts it
        on first use in ``async`` mode too).

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
        mode: CaptureMode = "async",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"capture mode must be one of {', '.join(MODES)}, got {mode!r}")
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
        self.mode = mode
        self._wal: WriteAheadLog | None = None
        self._wal_lock = threading.Lock()
        self._recovered = Converted()
        self._pending: list[CaptureRecord | FeedbackRecord] = []
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._flush_requested = False
        self._flushed_generation = 0  # passes finished
        self._started_generation = 0  # passes started (each takes what is pending at its start)
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
    def start(self, *, recover: bool = True) -> CaptureWriter:
        """Convert a log left by a killed process (unless ``recover`` is false: a second writer
        on the same store, such as the shadow's process, leaves the log to the service), start
        the background thread (and in ``sync`` mode the write-ahead log); returns ``self``."""
        if self._thread is None:
            if recover:
                self._recover()
            if self.mode == "sync":
                self._open_wal()
            self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 60.0) -> None:
        """Write everything pending and stop the thread. Further submissions are refused."""
        with self._cond:
            if self._closed:
                return
        if self._wal is not None:
            self._wal.close(timeout)  # everything acknowledged is in a segment now
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._write_pending()
            self._convert_log()
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

    def submit_durable(self, record: CaptureRecord | FeedbackRecord) -> Future[None]:
        """Append a record to the write-ahead log; the future resolves once it is fsynced.

        Never blocks on I/O. The future fails with
        :class:`~helpers.serving.capture_wal.CaptureNotDurable` when the writer is closed, the
        log's backlog is full or the disk refuses the write: the caller must not acknowledge.
        """
        with self._cond:
            stopping = self._stopping or self._thread is None
        if stopping:
            future: Future[None] = Future()
            future.set_exception(CaptureNotDurable("the capture writer is not running"))
            return future
        return self._open_wal().submit(record)

    def flush(self, timeout: float = 30.0) -> bool:
        """Ask the writer to write now and wait until it has; returns False on timeout."""
        with self._cond:
            if self._thread is None or self._stopping:
                return False
            target = self._started_generation + 1  # a pass that starts after this request
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._flushed_generation >= target or self._stopping, timeout)

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
            mode=self.mode,
        )
        if self._wal is not None:
            out["wal"] = self._wal.stats()
            out["healthy"] = out["healthy"] and out["wal"]["errors"] == 0
        if self._recovered.segments:
            out["recovered"] = vars(self._recovered)
        return out

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._flush_requested, self.flush_interval)
                self._flush_requested = False
                self._started_generation += 1
                stopping = self._stopping
            self._write_pending()
            self._convert_log()
            with self._cond:
                self._flushed_generation = self._started_generation
                self._cond.notify_all()
            if stopping:
                return

    def _write_pending(self) -> None:
        with self._cond:
            batch, self._pending = self._pending, []
        if not batch:
            return
        failed: list[CaptureRecord | FeedbackRecord] = []
        for (kind, model, day), records in group_records(batch).items():
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

    def _open_wal(self) -> WriteAheadLog:
        with self._wal_lock:
            if self._wal is None:
                self._wal = WriteAheadLog(self.capture_dir, max_pending_rows=self.max_pending_rows).start()
            return self._wal

    def _recover(self) -> None:
        try:
            self._recovered = recover(self.capture_dir, self.fmt)
        except Exception as exc:  # a damaged log must not stop serving; it stays for `captures recover`
            self._note_error(exc)
        self._count_converted(self._recovered)

    def _convert_log(self) -> None:
        """Seal the log segment and turn every sealed segment into store files, then delete it."""
        if self._wal is None:
            return
        segments = self._wal.seal()
        for index, segment in enumerate(segments):
            try:
                converted = convert_segment(segment.path, self.capture_dir, self.fmt)
                segment.discard()
            except Exception as exc:  # retried at the next flush
                self._note_error(exc)
                self._wal.give_back(segments[index:])
                return
            segment.close()
            self._count_converted(converted)

    def _count_converted(self, converted: Converted) -> None:
        with self._cond:
            self._counters["files_written"] += converted.files
            self._counters["captured_rows"] += converted.capture_rows
            self._counters["captured_requests"] += converted.requests
            self._counters["feedback_rows"] += converted.feedback_rows

    def _note_error(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._counters["write_errors"] += 1
            self._counters["last_error"] = message
        logger.warning("capture write failed: %s", message)

    def _write_group(self, kind: str, model: str, day: dt.date, records: list[CaptureRecord | FeedbackRecord]) -> int:
        table = table_for(kind, records)
        folder = day_dir(self.capture_dir, model, day)
        folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{kind}-{stamp}-{os.getpid()}-{self._seq:06d}.{self.fmt}"
        write_table(table, folder / name, self.fmt)
        return table.num_rows


