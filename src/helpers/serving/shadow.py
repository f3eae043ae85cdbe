"""The shadow: another version scoring every request the champion answered, off the response path.

A finished champion job (its answer already on its way) is handed to :meth:`Shadow.offer`,
which keeps the request's body for the shadow and returns at once; when ``max_queued`` requests
wait already, the request is dropped from shadow scoring and counted. A sender thread passes
the waiting requests in batches to the shadow's own process
(:mod:`~helpers.serving.shadow_worker`, at a lower CPU priority), which parses, stacks them into
model calls and captures the predictions with the champion's request id, role ``shadow`` and
the shadow's version; a request the shadow cannot score (a model error, inputs that do not fit
its signature) is counted, never answered. The service's interpreter only copies bytes: the
shadow's work never holds the lock the champion's answers need.

The shadow's captures go through the process's own asynchronous writer (its files carry its
process id), also when the service captures in ``sync`` mode: nobody waits for a shadow's
prediction, so a hard kill may lose the last ``flush_interval`` seconds of them.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from helpers.serving.capture_store import CaptureWriter
from helpers.serving.models import FollowedModel, LoadedModel
from helpers.serving.scorer import ScoreJob
from helpers.serving.shadow_worker import ScoreTally, ShadowItem, WorkerConfig, run_shadow_worker

logger = logging.getLogger(__name__)


class Shadow:
    """Scores answered requests with another version, in a process of its own, and captures them.

    Parameters
    ----------
    followed : FollowedModel
        The shadow version (an alias is followed by the service's poller; each request is
        scored by the version current when it was answered).
    capture : CaptureWriter, optional
        The service's capture store; the shadow's process writes its captures beside them
        (None: capture is off, the shadow only counts).
    max_rows : int
        Rows stacked into one model call at most.
    max_queued : int
        Requests waiting for the shadow at most (here or in its process); beyond it they are
        dropped (and counted).
    linger : float
        Seconds the sender waits for more requests before it hands a batch over: fewer, larger
        batches cost the service less.
    """

    def __init__(
        self,
        followed: FollowedModel,
        capture: CaptureWriter | None = None,
        *,
        max_rows: int = 1000,
        max_queued: int = 10_000,
        linger: float = 0.05,
    ) -> None:
        self.followed = followed
        self.max_queued = max(1, int(max_queued))
        self.linger = float(linger)
        self.config = WorkerConfig(
            uri=followed.uri,
            tracking_uri=followed.tracking_uri,
            max_rows=max(1, int(max_rows)),
            capture_dir=None if capture is None else str(capture.capture_dir),
            capture_format=capture.fmt if capture is not None else "parquet",
            flush_interval=capture.flush_interval if capture is not None else 1.0,
            max_pending_rows=capture.max_pending_rows if capture is not None else 100_000,
        )
        self._cond = threading.Condition()
        self._waiting: list[ShadowItem] = []  # offered, not yet sent
        self._in_process = 0  # sent, not yet reported scored
        self._stopping = False
        self._dead = False  # the process exited without being told to
        self._counts = {"scored": 0, "errors": 0, "dropped": 0, "model_calls": 0}
        self._last_error: str | None = None
        self._process: Any = None
        self._threads: list[threading.Thread] = []

    @property
    def model(self) -> LoadedModel:
        """The shadow version scoring new requests."""
        return self.followed.model

    @property
    def pid(self) -> int | None:
        """The shadow process's id (None before :meth:`start`)."""
        return None if self._process is None else self._process.pid

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Shadow:
        """Start the shadow's process and the threads that talk to it; returns ``self``."""
        if self._process is not None:
            return self
        context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        inbox, to_process = context.Pipe(duplex=False)
        from_process, outbox = context.Pipe(duplex=False)
        self._process = context.Process(
            target=run_shadow_worker, args=(inbox, outbox, self.config), name="driftgate-shadow", daemon=True
        )
        self._process.start()
        inbox.close()
        outbox.close()
        atexit.register(self._stop_at_exit)  # runs before multiprocessing's own exit handler
        links = (("shadow-sender", self._send_loop, to_process), ("shadow-receiver", self._receive_loop, from_process))
        for name, target, conn in links:
            thread = threading.Thread(target=target, args=(conn,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Hand over what waits, let the process score it and write its captures, then stop
        (after ``timeout`` seconds the process is killed: it ignores SIGTERM)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._process is not None:
            atexit.unregister(self._stop_at_exit)
            self._process.join(max(0.0, deadline - time.monotonic()))
            if self._process.is_alive():
                logger.warning("the shadow process did not stop within %.0f s; killing it", timeout)
                self._process.kill()
                self._process.join(5)

    def _stop_at_exit(self) -> None:
        """A service that exits without :meth:`stop` still ends its shadow process (which waits
        for its pipe, and which multiprocessing's exit handler would wait for in vain)."""
        self.stop(timeout=10.0)

    # ------------------------------------------------------------------ requests
    def offer(self, jobs: list[ScoreJob]) -> None:
        """Queue the champion's answered ``jobs`` for the shadow (before :meth:`start` too); never
        blocks, never raises."""
        version = self.followed.model.version
        with self._cond:
            was_empty = not self._waiting
            for job in jobs:
                if job.error is not None or job.role != "champion":
                    continue
                if self._dead or self._stopping or self._queued() >= self.max_queued:
                    self._counts["dropped"] += 1
                    continue
                self._waiting.append(ShadowItem(job.request_id, job.body, job.content_type, job.timestamp, version))
            if was_empty and self._waiting:  # wake the sender, which then lingers undisturbed
                self._cond.notify_all()

    def _queued(self) -> int:
        return len(self._waiting) + self._in_process

    def _send_loop(self, conn: Connection) -> None:
        """Hand waiting requests to the process in batches; at stop, the rest and ``stop``."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting or self._stopping)
                if not self._stopping:
                    self._cond.wait(self.linger)  # let more requests join this batch
                batch, self._waiting = self._waiting, []
                self._in_process += len(batch)
                stopping = self._stopping
            try:
                if batch:
                    conn.send(("score", batch))
                if stopping:
                    conn.send(("stop", None))
                    return
            except OSError as exc:  # the process is gone: the receiver says why
                self._lost(f"cannot reach the shadow process: {exc}")
                return

    def _receive_loop(self, conn: Connection) -> None:
        """Add the process's tallies to the counters until it stops (or dies)."""
        while True:
            try:
                kind, tally = conn.recv()
            except (EOFError, OSError):
                code = self._process.exitcode if self._process is not None else None
                self._lost(f"the shadow process exited unexpectedly (exit code {code})")
                return
            if kind == "stopped":
                return
            self._count(tally)

    def _count(self, tally: ScoreTally) -> None:
        with self._cond:
            self._in_process -= tally.requests
            self._counts["scored"] += tally.scored
            self._counts["errors"] += tally.errors
            self._counts["model_calls"] += tally.model_calls
            if tally.last_error is not None:
                self._last_error = tally.last_error
        if tally.errors:
            logger.warning("shadow failed on %d requests: %s", tally.errors, tally.last_error)

    def _lost(self, reason: str) -> None:
        """The process is gone: what it had (and what waits) is counted as dropped."""
        with self._cond:
            if self._dead:
                return
            self._dead = True
            self._counts["dropped"] += self._in_process + len(self._waiting)
            self._in_process, self._waiting = 0, []
            self._last_error = reason
            self._cond.notify_all()
        logger.error("%s; shadow scoring stopped", reason)

    # ------------------------------------------------------------------ status
    def stats(self) -> dict[str, Any]:
        """The ``shadow`` part of ``/health``: version, scored, errors, dropped, queued, process."""
        with self._cond:
            counts = dict(self._counts)
            queued = self._queued()
            running = self._process is not None and not self._dead and not self._stopping
        return {
            "version": self.model.version,
            "uri": self.followed.uri,
            **counts,
            "queued": queued,
            "max_queued": self.max_queued,
            "last_error": self._last_error,
            "process": {"pid": self.pid, "running": running},
        }
