"""The micro-batching scorer: parse, check, predict and encode requests, many at a time.

Concurrent requests are handed to one worker thread, which stacks the checked frames of
compatible requests into one model call (see :func:`score_jobs` and :class:`Scorer`). A request
handler on the event loop hands its job over with :meth:`Scorer.submit` and awaits the job's
``done`` future (``asyncio.wrap_future``); the loop never runs model code.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.errors import ServeError
from helpers.serving.formatting import first_line
from helpers.serving.models import LoadedModel
from helpers.serving.outputs import ClassifierOutputs
from helpers.serving.protocol import encode_predictions, parse_invocation, request_output
from helpers.serving.schema import InputError, check_inputs

logger = logging.getLogger(__name__)


@dataclass
class ScoreJob:
    """One ``/invocations`` request on its way through the scorer."""

    model: LoadedModel  # the model current when the request arrived; it finishes on this one
    body: bytes
    content_type: str | None
    request_id: str
    timestamp: float  # arrival, seconds since the epoch
    started: float  # arrival, :func:`time.perf_counter`
    done: Future[None] = field(default_factory=Future)  # resolved (never failed) when the job is finished
    inputs: pd.DataFrame | None = None
    outputs: Any = None
    payload: bytes = b""
    latency_ms: float = 0.0
    output: str | None = None  # what a classifier answers for this request (its params.output)
    error: BaseException | None = None  # an InputError is answered with its 4xx, anything else with 500
    durable: Future[Any] | None = None  # in sync capture mode: resolves once the capture is on disk
    role: str = "champion"  # champion, canary (answered instead of the champion) or shadow (never answered)

    def finish(self) -> None:
        """Mark the job finished (wakes whoever waits on :attr:`done`); a second call does nothing."""
        if not self.done.done():
            self.done.set_result(None)

    @property
    def n_rows(self) -> int:
        """Rows scored (0 until the inputs are checked)."""
        return 0 if self.inputs is None else len(self.inputs)


def score_jobs(jobs: Sequence[ScoreJob], max_rows: int, output: str = "both", *, encode: bool = True) -> int:
    """Parse, check, predict, encode: everything a request needs, for several at once.

    Requests of the same model whose checked frames have the same columns and types are
    stacked into one model call of at most ``max_rows`` rows; when a stacked call fails, its
    requests are scored one by one so that one bad request cannot fail its neighbours.
    Row-wise models (all of scikit-learn's regressors and classifiers) give the same values
    stacked or not (a classifier's labels and probabilities are stacked together). ``output`` is
    what a classifier answers (``label``, ``probabilities`` or ``both``; see
    :mod:`helpers.serving.outputs`) unless a request's ``params.output`` says otherwise. Each
    job ends with ``payload`` (the JSON answer; left empty when ``encode`` is false, for jobs
    nobody answers) or ``error``; the caller sets ``done``. Returns the number of stacks (the
    model calls made when none fails).
    """
    ready: list[ScoreJob] = []
    for job in jobs:
        if job.inputs is not None:  # checked already (a shadow job reusing its champion's checked rows)
            ready.append(job)
            continue
        try:
            frame, request_params = parse_invocation(job.body, job.content_type, job.model.schema)
            job.output = request_output(request_params, output)
            job.inputs = check_inputs(frame, job.model.schema)
            ready.append(job)
        except InputError as exc:
            job.error = exc
        except Exception as exc:  # whatever else an untrusted body makes the parser raise is still the body's fault
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            job.error = InputError(f"the body could not be read as rows to score: {reason}")
    stacks = _stacks(ready, max_rows)
    for stack in stacks:
        if len(stack) == 1 or not _predict_stacked(stack):
            for job in stack:
                _predict_one(job)
    for job in ready:
        if job.error is None and encode:
            try:
                job.payload = encode_predictions(job.outputs, job.output or output)
            except (TypeError, ValueError) as exc:
                job.error = ServeError(f"the model's outputs cannot be sent as JSON: {exc}")
        if job.error is None:
            job.latency_ms = (time.perf_counter() - job.started) * 1000.0
    return len(stacks)


def _stacks(jobs: list[ScoreJob], max_rows: int) -> list[list[ScoreJob]]:
    """Jobs that can share a model call: same model, columns and types, at most ``max_rows``."""
    groups: dict[tuple[Any, ...], list[list[ScoreJob]]] = {}
    for job in jobs:
        frame = job.inputs
        assert frame is not None
        key = (id(job.model), tuple(frame.columns), tuple(map(str, frame.dtypes)))
        stacks = groups.setdefault(key, [[]])
        if stacks[-1] and sum(len(j.inputs) for j in stacks[-1]) + len(frame) > max_rows:  # type: ignore[arg-type]
            stacks.append([])
        stacks[-1].append(job)
    return [stack for stacks in groups.values() for stack in stacks]


def _predict_one(job: ScoreJob) -> None:
    try:
        job.outputs = job.model.predict(job.inputs)
    except Exception as exc:
        job.error = InputError(f"the model could not score these inputs: {type(exc).__name__}: {first_line(exc)}")


def _predict_stacked(stack: list[ScoreJob]) -> bool:
    frames = [job.inputs for job in stack]
    try:
        outputs = stack[0].model.predict(pd.concat(frames, ignore_index=True))
        parts = _split_outputs(outputs, [len(f) for f in frames])  # type: ignore[arg-type]
    except Exception:  # find the request at fault by scoring one by one
        return False
    for job, part in zip(stack, parts, strict=True):
        job.outputs = part
    return True


def _split_outputs(outputs: Any, lengths: list[int]) -> list[Any]:
    """Cut stacked outputs back into one piece per request."""
    if len(outputs) != sum(lengths):
        raise ValueError(f"the model returned {len(outputs)} outputs for {sum(lengths)} rows")
    bounds = np.cumsum([0, *lengths])
    if isinstance(outputs, ClassifierOutputs):
        return [outputs.rows(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if isinstance(outputs, pd.DataFrame | pd.Series):
        return [outputs.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [outputs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class Scorer:
    """One thread that does the CPU work of every request, many requests at a time.

    Request handlers (coroutines on the event loop) only read the body, hand the job over with
    :meth:`submit`, await its ``done`` future and write the answer; parsing,
    checking, the model call, JSON encoding and capture happen here. With the GIL, threads
    that share CPU-bound work mostly wait on each other (and a model that releases the GIL
    between trees gives it away to whichever request thread wants it); with one worker that
    takes every request waiting, the requests that queued while the previous call ran share
    the next model call, whose fixed cost (most of it, for a single row) is paid once.
    Nothing waits on purpose: a request that arrives alone is scored alone.

    Under load, requests answered together come back together, a little later than the
    next model call starts; so when fewer requests are queued than ``expected()`` (the open
    connections), the worker waits up to ``linger`` seconds for the rest before it starts.

    Parameters
    ----------
    process : callable
        Does the work for a list of jobs (without setting ``done``).
    max_jobs : int
        Most requests taken at once.
    linger : float
        Longest wait, in seconds, for more requests to join a call; 0 never waits.
    expected : callable
        How many requests could be on their way (the service passes its open connections).
    after : callable, optional
        Called with the jobs of each call once they are finished (their ``done`` resolved), on
        the worker thread: the service hands answered requests to the shadow scorer there.
    max_queued : int, optional
        Most jobs waiting at once; :meth:`offer` refuses more (:meth:`submit` never refuses).
    """

    def __init__(
        self,
        process: Callable[[list[ScoreJob]], None],
        max_jobs: int = 256,
        linger: float = 0.0,
        expected: Callable[[], int] = lambda: 1,
        after: Callable[[list[ScoreJob]], None] | None = None,
        max_queued: int | None = None,
    ) -> None:
        self.process = process
        self.max_jobs = max_jobs
        self.linger = linger
        self.expected = expected
        self.after = after
        self.max_queued = max_queued
        self._jobs: list[ScoreJob] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> Scorer:
        """Start the worker thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scorer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the queued jobs, then stop; later jobs run on the caller's thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def submit(self, job: ScoreJob) -> Future[None]:
        """Hand ``job`` to the worker; returns ``job.done``, resolved when the job is finished.

        Once the scorer is stopped the job is finished here, on the caller's thread.
        """
        with self._cond:
            queued = not self._stopped and self._thread is not None
            if queued:
                self._queue(job)
        if not queued:
            self._finish([job])
        return job.done

    def offer(self, job: ScoreJob) -> bool:
        """Queue ``job`` unless ``max_queued`` jobs wait already or the scorer is not running;
        never blocks. Returns whether the job was queued (a refused job is left untouched)."""
        with self._cond:
            if self._stopped or self._thread is None:
                return False
            if self.max_queued is not None and len(self._jobs) >= self.max_queued:
                return False
            self._queue(job)
        return True

    def _queue(self, job: ScoreJob) -> None:
        """Append ``job`` (the condition held); wake the worker only when it has something to do:
        the first job, or enough for the call it lingers for (each needless wake-up takes the
        GIL from the event loop that is still reading the other requests)."""
        self._jobs.append(job)
        waiting = len(self._jobs)
        if waiting == 1 or self.linger <= 0 or waiting >= min(self.expected(), self.max_jobs):
            self._cond.notify()

    @property
    def queued(self) -> int:
        """Jobs waiting for the worker."""
        with self._cond:
            return len(self._jobs)

    def run(self, job: ScoreJob) -> None:
        """Hand ``job`` to the worker and wait until it is done."""
        self.submit(job).result()

    def _run(self) -> None:
        one_openmp_thread()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._stopped)
                if not self._jobs:
                    return
                target = min(self.expected(), self.max_jobs)
                if self.linger > 0 and len(self._jobs) < target:
                    self._cond.wait_for(lambda n=target: len(self._jobs) >= n or self._stopped, self.linger)
                jobs, self._jobs = self._jobs[: self.max_jobs], self._jobs[self.max_jobs :]
            self._finish(jobs)

    def _finish(self, jobs: list[ScoreJob]) -> None:
        try:
            self.process(jobs)
        except Exception as exc:  # a bug; fail these requests, keep the worker alive
            logger.exception("scoring failed")
            for job in jobs:
                job.error = job.error or exc
        finally:
            for job in jobs:
                job.finish()
            self._after(jobs)

    def _after(self, jobs: list[ScoreJob]) -> None:
        if self.after is None:
            return
        try:
            self.after(jobs)
        except Exception:  # a bug in the hook must not stop the worker
            logger.exception("after-scoring hook failed")


_OPENMP: list[Any] | None = None


def one_openmp_thread() -> None:
    """Give the calling thread one OpenMP thread (the setting is per thread in OpenMP).

    Concurrency comes from serving requests on several threads; a model that also fans each
    small prediction out over every core (HistGradientBoosting does) makes the threads wait on
    each other, which on a busy two-core machine multiplies latency by ten.
    """
    global _OPENMP
    if _OPENMP is None:
        try:
            from threadpoolctl import ThreadpoolController

            _OPENMP = list(ThreadpoolController().select(user_api="openmp").lib_controllers)
        except Exception:  # threadpoolctl comes with scikit-learn; without it, leave OpenMP alone
            _OPENMP = []
    for controller in _OPENMP:
        with contextlib.suppress(Exception):
            controller.set_num_threads(1)
