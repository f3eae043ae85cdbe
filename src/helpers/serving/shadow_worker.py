"""The shadow's own process: scores the requests the champion answered and captures its predictions.

:class:`~helpers.serving.shadow.Shadow` starts :func:`run_shadow_worker` in a child process
(``spawn``) at a lower CPU priority. Scoring there instead of on a thread of the service keeps
the shadow's model calls, parsing and capture off the service's interpreter lock: the champion's
answers never wait behind them, and on a busy machine the operating system gives the champion
the CPU first.

Messages on the two pipes (each a tuple):

* parent -> child: ``("score", [ShadowItem, ...])`` and finally ``("stop", None)``;
* child -> parent: ``("scored", ScoreTally)`` after each model call, ``("stopped", None)`` at
  the end, once every capture is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import NamedTuple

from helpers.serving.capture_records import CaptureRecord
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.formatting import first_line
from helpers.serving.models import LoadedModel, load_model
from helpers.serving.scorer import ScoreJob, one_openmp_thread, score_jobs

logger = logging.getLogger(__name__)

NICENESS = 10  # how much lower the shadow's CPU priority is than the service's (POSIX nice)


class ShadowItem(NamedTuple):
    """One answered request, as the parent hands it to the shadow process."""

    request_id: str
    body: bytes
    content_type: str | None
    timestamp: float  # arrival, seconds since the epoch
    version: str | None  # the shadow version current when the request was answered


@dataclass(frozen=True)
class WorkerConfig:
    """What the shadow process needs: the version to load and where to capture."""

    uri: str  # models:/ URI of the shadow
    tracking_uri: str | None
    max_rows: int  # rows stacked into one model call at most
    capture_dir: str | None  # None: capture is off, the shadow only counts
    capture_format: str = "parquet"
    flush_interval: float = 1.0
    max_pending_rows: int = 100_000


@dataclass
class ScoreTally:
    """What one round of scoring did (sent to the parent, which adds it to ``/health``)."""

    requests: int = 0
    scored: int = 0
    errors: int = 0
    model_calls: int = 0
    last_error: str | None = None


class ShadowScorer:
    """Scores :class:`ShadowItem` lists with the versions they name and captures the predictions."""

    def __init__(self, config: WorkerConfig, capture: CaptureWriter | None) -> None:
        self.config = config
        self.capture = capture
        self._model: LoadedModel | None = None

    def score(self, items: list[ShadowItem]) -> ScoreTally:
        """Score ``items`` (grouped by version, in order); never raises."""
        tally = ScoreTally(requests=len(items))
        for version, group in _by_version(items):
            try:
                model = self._model_for(version)
            except Exception as exc:  # a version that cannot load fails its requests, not the process
                tally.errors += len(group)
                tally.last_error = f"cannot load {self.config.uri} version {version}: {first_line(exc)}"
                continue
            self._score_group(model, group, tally)
        return tally

    def _model_for(self, version: str | None) -> LoadedModel:
        if self._model is None or self._model.version != version:
            self._model = load_model(self.config.uri, tracking_uri=self.config.tracking_uri, version=version)
        return self._model

    def _score_group(self, model: LoadedModel, group: list[ShadowItem], tally: ScoreTally) -> None:
        now = time.perf_counter()
        jobs = [
            ScoreJob(model, item.body, item.content_type, item.request_id, item.timestamp, now, role="shadow")
            for item in group
        ]
        tally.model_calls += score_jobs(jobs, self.config.max_rows, encode=False)
        for job in jobs:
            if job.error is not None:
                tally.errors += 1
                tally.last_error = f"request {job.request_id}: {first_line(job.error)}"
                continue
            tally.scored += 1
            self._record(job, model)

    def _record(self, job: ScoreJob, model: LoadedModel) -> None:
        if self.capture is None or job.inputs is None:
            return
        record = CaptureRecord.from_frame(
            job.request_id,
            job.inputs,
            job.outputs,
            model_name=model.capture_name,
            model_version=model.version or "",
            latency_ms=(time.time() - job.timestamp) * 1000.0,
            timestamp=job.timestamp,
            role="shadow",
        )
        self.capture.submit(record)


def _by_version(items: list[ShadowItem]) -> list[tuple[str | None, list[ShadowItem]]]:
    """Consecutive runs of items with the same version."""
    runs: list[tuple[str | None, list[ShadowItem]]] = []
    for item in items:
        if runs and runs[-1][0] == item.version:
            runs[-1][1].append(item)
        else:
            runs.append((item.version, [item]))
    return runs


def run_shadow_worker(inbox: Connection, outbox: Connection, config: WorkerConfig) -> None:
    """The shadow process's main loop: score what arrives until ``stop`` (or the parent is gone)."""
    _leave_signals_to_the_service()
    _lower_priority()
    one_openmp_thread()
    capture = _capture_writer(config)
    scorer = ShadowScorer(config, capture)
    stopping = False
    while not stopping:
        items, stopping = _receive(inbox, max_items=max(512, config.max_rows))
        if items:
            with contextlib.suppress(OSError):
                outbox.send(("scored", scorer.score(items)))
    if capture is not None:
        capture.close()
    with contextlib.suppress(OSError):
        outbox.send(("stopped", None))


def _receive(inbox: Connection, max_items: int) -> tuple[list[ShadowItem], bool]:
    """Wait for work, then take whatever else is already waiting (up to ``max_items``);
    returns the items and whether the parent said stop (or went away)."""
    items: list[ShadowItem] = []
    while not items or (len(items) < max_items and inbox.poll(0)):
        try:
            kind, payload = inbox.recv()
        except (EOFError, OSError):
            return items, True
        if kind == "stop":
            return items, True
        items.extend(payload)
    return items, False


def _capture_writer(config: WorkerConfig) -> CaptureWriter | None:
    if config.capture_dir is None:
        return None
    writer = CaptureWriter(
        config.capture_dir,
        fmt=config.capture_format,  # type: ignore[arg-type]
        flush_interval=config.flush_interval,
        max_pending_rows=config.max_pending_rows,
    )
    return writer.start(recover=False)  # the service recovers its own log; never touch it from here


def _leave_signals_to_the_service() -> None:
    """Ignore SIGTERM and SIGINT, which reach the whole process group (``docker stop``, Ctrl-C,
    ``kill -- -PGID``): the service stops gracefully and says ``stop`` once it has handed over
    the last answered request; a service that dies closes the pipe, which ends this process too."""
    for name in ("SIGTERM", "SIGINT"):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _lower_priority() -> None:
    """Let the service's threads have the CPU first (no-op where ``os.nice`` does not exist)."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(NICENESS)
