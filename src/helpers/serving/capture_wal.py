"""Write-ahead log of the capture store: in ``sync`` mode an acknowledged prediction is on disk.

:class:`WriteAheadLog` appends captured records to segment files and fsyncs them before the
caller's future resolves; the capture writer later turns each sealed segment into the usual
Parquet (or JSONL) files of the store and deletes it::

    <capture_dir>/_wal/wal-<time>-<pid>-<seq>.log                      a segment (one process writes it)
    <capture_dir>/<model>/<yyyy>/<mm>/<dd>/captures-wal-<segment>-<g>.parquet   converted from it

**Group commit.** One thread writes the log. Records submitted while it is writing and fsyncing
wait in a queue and go to disk together with the next single ``write`` and ``fsync``, so
concurrent requests share one fsync and throughput grows with the number of clients.

**Framing.** A segment is a sequence of frames ``magic (4 bytes) | length (u32) | crc32 (u32) |
payload``; the payload is a small JSON header (kind, model, day, number of requests) and one
Arrow IPC stream holding the records' table (the same table the Parquet file gets). Reading
stops at the first frame that is short, has a wrong magic or a wrong checksum: that is a write
torn by a kill, never acknowledged (its future had not resolved), and it is dropped.

**Exactly once.** Converting a segment writes files whose names derive from the segment's name
and the frames' order, so converting it again (after a kill between writing the files and
deleting the segment) overwrites the same files with the same rows: nothing is lost, nothing is
counted twice. Each segment is held with an exclusive ``flock`` by the process writing it;
:func:`recover` converts only segments nobody holds (their writer died), so a service starting on
a capture folder that another live service writes to leaves that service's log alone.

Example
-------
>>> wal = WriteAheadLog("outputs/captures").start()  # doctest: +SKIP
>>> wal.submit(record).result()  # returns once the record is fsynced  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from helpers.core.errors import DataError
from helpers.modeling.captures import WAL_DIR, day_dir
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
from helpers.serving.capture_tables import fsync_path, group_records, table_for, write_table
from helpers.serving.schema import InputError

logger = logging.getLogger(__name__)

MAGIC = b"DGW1"
_FRAME = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
_HEAD = struct.Struct("<I")  # length of the JSON header inside the payload
_SEGMENT = re.compile(r"^wal-(\d{8}T\d{6}\d*-\d+-\d+)\.log$")
_CONVERTED = re.compile(r"^(?:captures|feedback)-wal-(\d{8}T\d{6}\d*-\d+-\d+)-\d{3}(?:-\d{4})?\.\w+$")

Record = CaptureRecord | FeedbackRecord


class CaptureNotDurable(InputError):
    """A record could not be made durable (log closed, backlog full, or the disk refused it).

    An :class:`~helpers.serving.schema.InputError` with status 503: a transport answers it like
    any refused request, with the JSON error body, and the client may retry.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"capture not written to disk: {message}; retry", 503)


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    """One group of records as stored in a segment: kind, model folder, UTC day and table."""

    kind: str
    model: str
    day: dt.date
    requests: int
    table: pa.Table


def encode_frame(frame: Frame) -> bytes:
    """The bytes of one frame: magic, length, crc32, then header and Arrow IPC stream."""
    header = json.dumps(
        {"kind": frame.kind, "model": frame.model, "day": frame.day.isoformat(), "requests": frame.requests}
    ).encode()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, frame.table.schema) as writer:
        writer.write_table(frame.table)
    payload = _HEAD.pack(len(header)) + header + sink.getvalue().to_pybytes()
    return _FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes, path: Path) -> Frame:
    try:
        (size,) = _HEAD.unpack_from(payload, 0)
        header = json.loads(payload[_HEAD.size : _HEAD.size + size])
        table = pa.ipc.open_stream(payload[_HEAD.size + size :]).read_all()
        day = dt.date.fromisoformat(header["day"])
        return Frame(header["kind"], header["model"], day, int(header["requests"]), table)
    except Exception as exc:  # the checksum matched, so this is not a torn write
        raise DataError(f"{path}: unreadable write-ahead log frame ({type(exc).__name__}: {exc})") from None


@dataclass
class SegmentContents:
    """The valid frames of a segment and how many bytes of torn tail were dropped."""

    frames: list[Frame] = field(default_factory=list)
    torn_bytes: int = 0


def read_segment(path: Path) -> SegmentContents:
    """Every complete frame of a segment, stopping at the first torn or corrupt one."""
    data = path.read_bytes()
    contents, pos = SegmentContents(), 0
    while pos + _FRAME.size <= len(data):
        magic, length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if magic != MAGIC or end > len(data):
            break
        payload = data[pos + _FRAME.size : end]
        if zlib.crc32(payload) != crc:
            break
        contents.frames.append(_decode_payload(payload, path))
        pos = end
    contents.torn_bytes = len(data) - pos
    if contents.torn_bytes:
        logger.warning("%s: dropped a torn tail of %d bytes (a write cut by a kill)", path, contents.torn_bytes)
    return contents


# --------------------------------------------------------------------------- conversion


@dataclass
class Converted:
    """What converting one or more segments wrote."""

    segments: int = 0
    requests: int = 0
    capture_rows: int = 0
    feedback_rows: int = 0
    files: int = 0
    torn_bytes: int = 0

    def add(self, other: Converted) -> None:
        """Add another conversion's counts to these."""
        for name in ("segments", "requests", "capture_rows", "feedback_rows", "files", "torn_bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def segment_id(path: Path) -> str | None:
    """The id of a segment file (``wal-<id>.log``), or None for another name."""
    match = _SEGMENT.match(path.name)
    return match.group(1) if match else None


def converted_from(name: str) -> str | None:
    """The id of the segment a store file was converted from, or None for a file written directly."""
    match = _CONVERTED.match(name)
    return match.group(1) if match else None


def live_segment_ids(capture_dir: str | os.PathLike[str]) -> set[str]:
    """Ids of the segments present in the log folder (written, or waiting to be converted)."""
    folder = Path(capture_dir) / WAL_DIR
    if not folder.is_dir():
        return set()
    return {sid for p in folder.iterdir() if (sid := segment_id(p)) is not None}


def convert_segment(path: Path, capture_dir: str | os.PathLike[str], fmt: str) -> Converted:
    """Write a segment's frames into the store as files named after the segment (durably).

    Frames are grouped by kind, model and day in order of appearance; each group becomes
    ``<kind>-wal-<segment>-<g>.<fmt>`` (or one file per frame, ``...-<g>-<p>.<fmt>``, when
    the frames' columns have types that do not merge). Deterministic: converting the same
    segment again rewrites the same files with the same rows.
    """
    sid = segment_id(path)
    if sid is None:
        raise DataError(f"{path}: not a write-ahead log segment (expected wal-<time>-<pid>-<seq>.log)")
    contents = read_segment(path)
    done = Converted(segments=1, torn_bytes=contents.torn_bytes)
    groups: dict[tuple[str, str, dt.date], list[Frame]] = {}
    for frame in contents.frames:
        groups.setdefault((frame.kind, frame.model, frame.day), []).append(frame)
    for index, ((kind, model, day), frames) in enumerate(groups.items()):
        folder = day_dir(capture_dir, model, day)
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, table in _group_tables(frames):
            write_table(table, folder / f"{kind}-wal-{sid}-{index:03d}{suffix}.{fmt}", fmt, durable=True)
            done.files += 1
        rows = sum(f.table.num_rows for f in frames)
        if kind == "captures":
            done.capture_rows += rows
            done.requests += sum(f.requests for f in frames)
        else:
            done.feedback_rows += rows
    return done


def _group_tables(frames: list[Frame]) -> Iterator[tuple[str, pa.Table]]:
    try:
        yield "", pa.concat_tables([f.table for f in frames], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a column numeric in one frame, text in another
        for part, frame in enumerate(frames):
            yield f"-{part:04d}", frame.table


def recover(capture_dir: str | os.PathLike[str], fmt: str = "parquet") -> Converted:
    """Convert the segments left by writers that died (nobody holds their lock), then delete them.

    Segments of live writers, this process's included, are left alone. Safe to run at any time
    and any number of times: a segment is converted exactly once into the store.
    """
    total = Converted()
    folder = Path(capture_dir) / WAL_DIR
    if not folder.is_dir():
        return total
    for path in sorted(folder.glob("wal-*.log")):
        if segment_id(path) is None:
            continue
        held = SegmentFile.claim(path)
        if held is None:
            continue
        try:
            total.add(convert_segment(path, capture_dir, fmt))
            held.discard()
        finally:
            held.close()
    if total.segments:
        logger.info("capture: recovered %d write-ahead log segments (%d requests)", total.segments, total.requests)
    return total


# --------------------------------------------------------------------------- segment files


class SegmentFile:
    """An open segment, locked (``flock``) by this process until it is converted and deleted."""

    def __init__(self, path: Path, fd: int, size: int = 0) -> None:
        self.path = path
        self.fd = fd
        self.size = size

    @classmethod
    def create(cls, folder: Path, seq: int) -> SegmentFile:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = folder / f"wal-{stamp}-{os.getpid()}-{seq:06d}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fsync_path(folder)  # the segment's name survives a power loss
        return cls(path, fd)

    @classmethod
    def claim(cls, path: Path) -> SegmentFile | None:
        """Lock an existing segment whose writer is gone; None when it is held or was removed."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.fstat(fd).st_ino == os.stat(path).st_ino  # not converted and removed meanwhile
        except (BlockingIOError, FileNotFoundError):
            same = False
        if not same:
            os.close(fd)
            return None
        return cls(path, fd, os.fstat(fd).st_size)

    def append(self, data: bytes) -> None:
        """Write ``data`` at the end and fsync; on failure cut the file back to where it was."""
        start = self.size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            os.fdatasync(self.fd)
        except OSError:
            os.ftruncate(self.fd, start)  # if this fails too, the caller seals the segment
            raise
        self.size = start + len(data)

    def discard(self) -> None:
        """Delete the segment (after its rows are safely in the store)."""
        self.path.unlink(missing_ok=True)
        fsync_path(self.path.parent)

    def close(self) -> None:
        """Close the file, releasing the lock."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --------------------------------------------------------------------------- the log


class WriteAheadLog:
    """Append-only, group-committed log of captured records.

    Parameters
    ----------
    capture_dir : path
        Root of the capture store; segments go to ``<capture_dir>/_wal/``.
    max_pending_rows : int
        Rows allowed to wait for the log writer; beyond this a submission fails at once (the
        request is answered 503 rather than acknowledged without its capture).
    segment_bytes : int
        A segment larger than this is sealed and a new one started.
    """

    def __init__(
        self,
        capture_dir: str | os.PathLike[str],
        *,
        max_pending_rows: int = 100_000,
        segment_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.capture_dir = Path(capture_dir).resolve()
        self.folder = self.capture_dir / WAL_DIR
        self.max_pending_rows = int(max_pending_rows)
        self.segment_bytes = int(segment_bytes)
        self._pending: list[tuple[Record, Future[None]]] = []
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._io = threading.Lock()  # guards the active segment and the sealed list
        self._active: SegmentFile | None = None
        self._sealed: list[SegmentFile] = []
        self._seq = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._counters: dict[str, Any] = {"commits": 0, "records": 0, "bytes": 0, "errors": 0, "last_error": None}

    def start(self) -> WriteAheadLog:
        """Create the log folder and start the writer thread; returns ``self``."""
        if self._thread is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._run, name="capture-wal", daemon=True)
            self._thread.start()
        return self

    def submit(self, record: Record) -> Future[None]:
        """Queue ``record``; the future resolves once it is fsynced, or fails with
        :class:`CaptureNotDurable`. Never blocks on I/O."""
        future: Future[None] = Future()
        with self._cond:
            if self._stopping or self._thread is None:
                future.set_exception(CaptureNotDurable("the capture log is closed"))
            elif self._pending_rows + record.n_rows > self.max_pending_rows:
                future.set_exception(CaptureNotDurable("the capture log's backlog is full"))
            else:
                self._pending.append((record, future))
                self._pending_rows += record.n_rows
                self._cond.notify()
        return future

    def seal(self) -> list[SegmentFile]:
        """Seal the active segment (if it holds anything) and take every sealed segment.

        The caller converts each (:func:`convert_segment`), then calls its ``discard`` and
        ``close``; one it fails to convert it hands back with :meth:`give_back`.
        """
        with self._io:
            if self._active is not None and self._active.size > 0:
                self._sealed.append(self._active)
                self._active = None
            taken, self._sealed = self._sealed, []
        return taken

    def give_back(self, segments: list[SegmentFile]) -> None:
        """Return segments that could not be converted; the next :meth:`seal` offers them again."""
        with self._io:
            self._sealed[:0] = segments

    def close(self, timeout: float = 60.0) -> None:
        """Write and fsync everything queued, stop the thread; sealed segments stay for conversion."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            left, self._pending = self._pending, []
        for _, future in left:
            future.set_exception(CaptureNotDurable("the capture log closed before this record was written"))

    def stats(self) -> dict[str, Any]:
        """Commits (one write and one fsync each), records, bytes, errors, pending rows."""
        with self._cond:
            return dict(self._counters, pending_rows=self._pending_rows)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._stopping)
                batch, self._pending = self._pending, []
                self._pending_rows = 0
                if not batch and self._stopping:
                    return
            self._commit(batch)

    def _commit(self, batch: list[tuple[Record, Future[None]]]) -> None:
        futures: dict[int, list[Future[None]]] = {}
        for record, future in batch:  # the same record object may be submitted twice
            futures.setdefault(id(record), []).append(future)
        chunks: list[bytes] = []
        written: list[Future[None]] = []
        for (kind, model, day), records in group_records(r for r, _ in batch).items():
            try:
                table = table_for(kind, records)
                chunks.append(encode_frame(Frame(kind, model, day, len(records), table)))
                written.extend(futures[id(r)].pop() for r in records)
            except Exception as exc:  # records that cannot be tabulated fail alone
                self._fail([f for r in records for f in futures.pop(id(r), [])], exc)
        if not chunks:
            return
        data = b"".join(chunks)
        try:
            self._append(data)
        except Exception as exc:
            self._fail(written, exc)
            return
        with self._cond:
            self._counters["commits"] += 1
            self._counters["records"] += len(written)
            self._counters["bytes"] += len(data)
        for future in written:
            future.set_result(None)

    def _append(self, data: bytes) -> None:
        with self._io:
            if self._active is None:
                self._seq += 1
                self._active = SegmentFile.create(self.folder, self._seq)
            try:
                self._active.append(data)
            except OSError:
                self._sealed.append(self._active)  # its valid frames are kept; a torn tail is dropped on reading
                self._active = None
                raise
            if self._active.size >= self.segment_bytes:
                self._sealed.append(self._active)
                self._active = None

    def _fail(self, futures: list[Future[None]], exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._counters["errors"] += 1
            self._counters["last_error"] = message
        logger.warning("capture log write failed: %s", message)
        for future in futures:
            future.set_exception(CaptureNotDurable(message))


def wait_durable(future: Future[None] | None, timeout: float = 30.0) -> None:
    """Wait for a capture to be durable; raises :class:`CaptureNotDurable` on failure or timeout."""
    if future is None:
        return
    started = time.monotonic()
    try:
        future.result(timeout)
    except CaptureNotDurable:
        raise
    except Exception as exc:  # timeout
        waited = time.monotonic() - started
        raise CaptureNotDurable(f"not fsynced within {waited:.1f} s ({type(exc).__name__})") from None
