"""The shadow: another version scoring every request the champion answered, off the response path.

A finished champion job (its answer already on its way) is handed to :meth:`Shadow.offer`,
which queues a copy of the request for the shadow's own micro-batching
:class:`~helpers.serving.scorer.Scorer` and returns at once (when both versions have the same
signature the copy carries the champion's checked rows, so the body is not parsed twice); when
``max_queued`` requests wait already, the request is dropped from shadow scoring and counted.
The shadow's predictions are captured with the champion's request id, role ``shadow`` and the
shadow's version; a request the shadow cannot score (a model error, inputs that do not fit its
signature) is counted, never answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from helpers.serving.formatting import first_line
from helpers.serving.models import FollowedModel, LoadedModel
from helpers.serving.scorer import ScoreJob, Scorer, score_jobs

logger = logging.getLogger(__name__)

Recorder = Callable[..., Any]  # ScoringService.record(request_id, inputs, outputs, model, latency_ms, timestamp, role)


class Shadow:
    """Scores answered requests with another version and captures its predictions.

    Parameters
    ----------
    followed : FollowedModel
        The shadow version (an alias is followed by the service's poller).
    record : callable
        Captures one scored request (:meth:`~helpers.serving.service.ScoringService.record`).
    max_rows : int
        Rows stacked into one model call at most.
    max_queued : int
        Requests waiting for the shadow at most; beyond it they are dropped (and counted).
    linger : float
        Seconds the shadow waits for more requests to share a model call: nobody waits for its
        answers, and fewer, larger calls leave more of the CPU to the champion (a single-row
        call of a boosted model costs nearly as much as a call of a hundred rows).
    """

    def __init__(
        self,
        followed: FollowedModel,
        record: Recorder,
        *,
        max_rows: int = 1000,
        max_queued: int = 10_000,
        linger: float = 1.0,
    ) -> None:
        self.followed = followed
        self.record = record
        self.max_rows = max(1, int(max_rows))
        self.scorer = Scorer(self._score, max_jobs=512, linger=linger, expected=lambda: 512, max_queued=max_queued)
        self._lock = threading.Lock()
        self._counts = {"scored": 0, "errors": 0, "dropped": 0, "model_calls": 0}
        self._last_error: str | None = None

    @property
    def model(self) -> LoadedModel:
        """The shadow version scoring new requests."""
        return self.followed.model

    def start(self) -> Shadow:
        """Start the shadow's scorer thread; returns ``self``."""
        self.scorer.start()
        return self

    def stop(self) -> None:
        """Score the requests still queued, then stop."""
        self.scorer.stop()

    def offer(self, jobs: list[ScoreJob]) -> None:
        """Queue the champion's answered ``jobs`` for the shadow; never blocks, never raises."""
        model = self.followed.model
        dropped = 0
        for job in jobs:
            if job.error is not None or job.role != "champion":
                continue
            copy = ScoreJob(model, job.body, job.content_type, job.request_id, job.timestamp, job.started)
            copy.role = "shadow"
            if job.inputs is not None and model.schema is not None and model.schema == job.model.schema:
                copy.inputs = job.inputs
            if not self.scorer.offer(copy):
                dropped += 1
        if dropped:
            with self._lock:
                self._counts["dropped"] += dropped

    def _score(self, jobs: list[ScoreJob]) -> None:
        calls = score_jobs(jobs, self.max_rows, encode=False)
        scored = errors = 0
        for job in jobs:
            if job.error is None:
                self.record(job.request_id, job.inputs, job.outputs, job.model, job.latency_ms, job.timestamp, "shadow")
                scored += 1
                continue
            errors += 1
            self._last_error = f"request {job.request_id}: {first_line(job.error)}"
        with self._lock:
            self._counts["scored"] += scored
            self._counts["errors"] += errors
            self._counts["model_calls"] += calls
        if errors:
            logger.warning("shadow version %s failed on %d requests: %s", self.model.version, errors, self._last_error)

    def stats(self) -> dict[str, Any]:
        """The ``shadow`` part of ``/health``: version, scored, errors, dropped, queued."""
        with self._lock:
            counts = dict(self._counts)
        return {
            "version": self.model.version,
            "uri": self.followed.uri,
            **counts,
            "queued": self.scorer.queued,
            "max_queued": self.scorer.max_queued,
            "last_error": self._last_error,
        }
