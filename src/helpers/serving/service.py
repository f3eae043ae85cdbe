"""The scoring service: one model, scored in micro-batches, captured, following its alias.

:class:`ScoringService` answers predictions and feedback, and keeps the counters of
``/health``. It knows nothing of HTTP: a transport (:class:`~helpers.serving.server.AsgiTransport`,
uvicorn serving MLflow's scoring protocol) turns requests into calls of :meth:`ScoringService.submit`,
:meth:`~ScoringService.feedback`, :meth:`~ScoringService.health` and :meth:`~ScoringService.version`.

Inputs are checked against the model signature before the model sees them: a missing column,
a value of the wrong type or a malformed body is answered with 400 and a message naming the
problem, never with 500. The checked frame goes straight to the underlying scikit-learn model
(MLflow's own per-call schema enforcement is skipped because this check replaces it), which
is where most of the speed over ``mlflow models serve`` comes from.

When the model URI names an alias (``models:/bike-demand@champion``) the service polls the
registry every ``alias_poll_interval`` seconds and, when the alias moves, loads the new version
in the background and swaps it in; requests in flight finish on the version they started with.

Beside the champion, ``shadow`` names a version that scores every request the champion answered,
off the response path (:mod:`~helpers.serving.shadow`), and ``canary`` a version that answers a
share of the requests (:mod:`~helpers.serving.canary`); both aliases are followed too.

Security: binds 127.0.0.1 unless told otherwise, and refuses to listen beyond loopback without
a token unless ``allow_public_without_token``; when a token is given, every endpoint but
``/ping`` needs it; ``tls_cert``/``tls_key`` serve HTTPS; request bodies above
``max_body_bytes`` are refused with 413; captured data goes only under the capture folder.

Example
-------
>>> service = ScoringService("models:/bike-demand@champion", tracking_uri=uri, port=0).start()  # doctest: +SKIP
>>> ServeClient(service.url).predict(frame).values  # doctest: +SKIP
>>> service.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pandas as pd

from helpers import __version__
from helpers.core.errors import ServeError
from helpers.serving.canary import Canary
from helpers.serving.capture_records import CaptureRecord
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.capture_wal import CaptureNotDurable, wait_durable
from helpers.serving.formatting import first_line, iso_time
from helpers.serving.models import LoadedModel, ModelRef, load_model, registry_client, resolve_version
from helpers.serving.outputs import check_output
from helpers.serving.protocol import feedback_from_body
from helpers.serving.schema import InputError
from helpers.serving.scorer import ScoreJob, Scorer, one_openmp_thread, score_jobs
from helpers.serving.server import AsgiTransport, is_loopback
from helpers.serving.shadow import Shadow
from helpers.serving.variants import Variants, VariantSpec

logger = logging.getLogger(__name__)

_COUNTERS = (
    "requests",
    "predictions",
    "rows_scored",
    "client_errors",
    "server_errors",
    "feedback_rows",
    "capture_errors",
)


class ScoringService:
    """The scoring service around one model, with capture and alias following.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>@<alias>`` (followed), ``models:/<name>/<version>``, ``runs:/`` or a path.
    tracking_uri : str, optional
        MLflow tracking store, also used as the registry.
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`url`).
    capture : CaptureWriter, optional
        Where captured requests and feedback go; ``None`` turns capture off.
    token : str, optional
        Bearer token required on every endpoint but ``/ping``.
    max_body_bytes : int
        Larger request bodies are refused with 413.
    alias_poll_interval : float
        Seconds between registry polls when ``model_uri`` names an alias; 0 stops following.
    request_timeout : float
        Seconds a request may take from its headers to its answer (408 or 503 after).
    keep_alive_timeout, shutdown_timeout : float
        Seconds an idle connection is kept open; seconds :meth:`stop` waits for requests in flight.
    max_connections : int
        Connections and requests at once; beyond it requests get 503.
    tls_cert, tls_key : str, optional
        PEM certificate and private key: serve HTTPS.
    allow_public_without_token : bool
        Listen beyond loopback without a token (refused otherwise).
    max_batch_rows : int
        Concurrent requests are scored on one worker thread, stacked into model calls of up
        to this many rows (see :class:`~helpers.serving.scorer.Scorer`); 0 scores every request
        on its own (on a small thread pool).
    max_batch_delay : float
        Seconds the scorer may wait for more requests to share a model call, and only while
        fewer requests are queued than connections are open (never for a lone client).
    model : LoadedModel, optional
        An already loaded model (skips loading in :meth:`start`).
    output : {"both", "label", "probabilities"}
        What a classifier answers: each row's label and one probability per class (``both``),
        the labels only, or the probabilities only. Captures keep both; regressors ignore it.
    shadow : str, optional
        An alias, version or ``models:/`` URI scoring every request the champion answers, off
        the response path, up to ``shadow_queue`` requests waiting (more are dropped, counted).
    canary, canary_share, sticky_header : str, float, str
        An alias, version or URI answering ``canary_share`` of the requests, sticky per value of
        the ``sticky_header`` request header.

    Examples
    --------
    >>> with ScoringService("models:/bike-demand@champion", tracking_uri=uri, port=0) as svc:  # doctest: +SKIP
    ...     print(svc.url)
    """

    def __init__(
        self,
        model_uri: str,
        *,
        tracking_uri: str | None = None,
        host: str = "127.0.0.1",
        port: int = 5000,
        capture: CaptureWriter | None = None,
        token: str | None = None,
        max_body_bytes: int = 10_000_000,
        alias_poll_interval: float = 10.0,
        request_timeout: float = 30.0,
        keep_alive_timeout: float = 5.0,
        shutdown_timeout: float = 30.0,
        max_connections: int = 1000,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        allow_public_without_token: bool = False,
        max_batch_rows: int = 1000,
        max_batch_delay: float = 0.002,
        model: LoadedModel | None = None,
        output: str = "both",
        shadow: str | None = None,
        shadow_queue: int = 10_000,
        canary: str | None = None,
        canary_share: float = 0.1,
        sticky_header: str = "X-Session-Id",
    ) -> None:
        if max_body_bytes < 1:
            raise ServeError(f"max_body_bytes must be positive, got {max_body_bytes}")
        try:
            self.output = check_output(output)
        except ValueError as exc:
            raise ServeError(str(exc)) from None
        self.token = token or None
        if not is_loopback(host) and self.token is None and not allow_public_without_token:
            raise ServeError(
                f"refusing to listen on {host} without a bearer token; set one (serve.token_env) "
                "or allow it with serve.allow_public_without_token: true"
            )
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.host = host
        self.port = port
        self.capture = capture
        self.shutdown_timeout = float(shutdown_timeout)
        self.max_body_bytes = int(max_body_bytes)
        self.alias_poll_interval = float(alias_poll_interval)
        self.request_timeout = float(request_timeout)
        self.ref = ModelRef.parse(model_uri)
        self.max_batch_rows = int(max_batch_rows)
        self.max_batch_delay = float(max_batch_delay)
        self.transport = AsgiTransport(
            self,
            host,
            port,
            max_body_bytes=self.max_body_bytes,
            request_timeout=self.request_timeout,
            keep_alive_timeout=keep_alive_timeout,
            shutdown_timeout=self.shutdown_timeout,
            max_connections=max_connections,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
        self.scorer = (
            Scorer(self._score, linger=max_batch_delay, expected=self.transport.open_connections, after=self._answered)
            if max_batch_rows > 0
            else None
        )
        self._variant_spec = VariantSpec(shadow, shadow_queue, canary, canary_share, sticky_header)
        self.variants = Variants()
        self._pool: ThreadPoolExecutor | None = None  # scores one request per thread when batching is off
        self._batching = {"model_calls": 0, "requests": 0}
        self._model = model
        self._listening = False
        self._threads: list[threading.Thread] = []
        self._stop_event = threading.Event()
        self._lock = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._closed = False
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._alias: dict[str, Any] = {"switches": 0, "poll_errors": 0, "last_poll": None, "last_error": None}
        self._started_at: float | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ScoringService:
        """Load the model, start capture, listen, and follow the alias; returns ``self``."""
        if self._listening:
            return self
        if self._model is None:
            self._model = load_model(self.model_uri, tracking_uri=self.tracking_uri)
        if self._variant_spec.shadow or self._variant_spec.canary:
            self.variants = Variants.load(
                self._variant_spec, self.model_uri, self.tracking_uri, self.capture, max(1, self.max_batch_rows)
            )
        if not is_loopback(self.host) and self.token is None:
            logger.warning("serving on %s without a bearer token (allow_public_without_token)", self.host)
        try:
            self.transport.bind()
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; choose another --port"
            ) from None
        if self.capture is not None:
            self.capture.start()
        if self.shadow is not None:
            self.shadow.start()
        if self.scorer is not None:
            self.scorer.start()
        else:
            self._pool = ThreadPoolExecutor(4, thread_name_prefix="score", initializer=one_openmp_thread)
        self._listening = True
        self._started_at = time.time()
        self.transport.serve()
        if (bool(self.ref and self.ref.alias) or self.variants.follows) and self.alias_poll_interval > 0:
            self._spawn("alias-poller", self._poll_loop)
        logger.info("serving %s (version %s) at %s", self.model_uri, self.model.version, self.url)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully: take no new connections, answer the requests in flight (waiting up to
        ``timeout``, default ``shutdown_timeout`` seconds), write all captures, close the transport."""
        if not self._listening or self._closed:
            return
        timeout = self.shutdown_timeout if timeout is None else timeout
        with self._lock:
            self._stopping = True
        self._stop_event.set()
        self.transport.stop_accepting()
        with self._lock:
            drained = self._lock.wait_for(lambda: self._in_flight == 0, timeout)
            self._closed = True  # from here on, late requests on open connections get 503
        if not drained:
            logger.warning("stopping with %d requests still in flight", self._in_flight)
        if self.scorer is not None:
            self.scorer.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.shadow is not None:
            self.shadow.stop()  # after the champion's scorer: it scores what the champion answered
        if self.capture is not None:
            self.capture.close()
        self.transport.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> ScoringService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """Base URL, with the actual port once listening."""
        return self.transport.url

    @property
    def model(self) -> LoadedModel:
        """The model answering new requests."""
        if self._model is None:
            raise ServeError("the service has no model loaded; call start() first")
        return self._model

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` has begun (responses then close their connection)."""
        return self._stopping

    # ------------------------------------------------------------------ model switching
    def switch_to(self, model: LoadedModel) -> None:
        """Answer new requests with ``model``; requests in flight finish on the old one."""
        old = self._model
        self._model = model  # a reference swap is atomic; handlers took their own reference
        with self._lock:
            self._alias["switches"] += 1
        if self.capture is not None:
            self.capture.request_flush()
        logger.info("switched from version %s to version %s", old.version if old else None, model.version)

    def check_alias(self) -> bool:
        """Poll the registry once; load and switch when the alias moved. True if switched."""
        if self.ref is None or self.ref.alias is None:
            return False
        try:
            version = resolve_version(registry_client(self.tracking_uri), self.ref)
            switched = False
            if version != self.model.version:
                self.switch_to(load_model(self.model_uri, tracking_uri=self.tracking_uri, version=version))
                switched = True
            self._note_poll(None)
            return switched
        except Exception as exc:  # the registry being away must not stop serving
            self._note_poll(exc)
            return False

    def _poll_loop(self) -> None:
        while not self._stop_event.wait(self.alias_poll_interval):
            self.check_alias()
            self.variants.refresh(self._note_poll)

    # ------------------------------------------------------------------ shadow and canary
    @property
    def shadow(self) -> Shadow | None:
        """The shadow scoring every request the champion answers (None when not configured)."""
        return self.variants.shadow

    @property
    def canary(self) -> Canary | None:
        """The canary answering a share of the requests (None when not configured)."""
        return self.variants.canary

    @property
    def session_header(self) -> str | None:
        """The request header that keeps a session on one version (None without a canary)."""
        return self.variants.session_header

    def check_variants(self) -> list[str]:
        """Poll the registry for the shadow's and canary's aliases; returns the roles switched."""
        return self.variants.refresh(self._note_poll)

    def _answered(self, jobs: list[ScoreJob]) -> None:
        """Hand answered champion requests to the shadow (runs once their answers are released)."""
        if self.shadow is not None:
            self.shadow.offer(jobs)

    def _note_poll(self, exc: BaseException | None) -> None:
        with self._lock:
            self._alias["last_poll"] = iso_time(time.time())
            if exc is not None:
                self._alias["poll_errors"] += 1
                self._alias["last_error"] = first_line(exc)
                logger.warning("alias poll failed: %s", first_line(exc))

    # ------------------------------------------------------------------ request accounting
    def begin_request(self) -> bool:
        """Count a request in; False once the service has closed (the request gets 503)."""
        with self._lock:
            if self._closed:
                return False
            self._in_flight += 1
            self._counts["requests"] += 1
            return True

    def end_request(self, status: int, kind: str | None = None, rows: int = 0) -> None:
        """Count a request out: ``status`` it was answered with, ``kind`` and ``rows`` of a success."""
        with self._lock:
            self._in_flight -= 1
            if status >= 500:
                self._counts["server_errors"] += 1
            elif status >= 400:
                self._counts["client_errors"] += 1
            elif kind == "predictions":
                self._counts["predictions"] += 1
                self._counts["rows_scored"] += rows
            elif kind == "feedback":
                self._counts["feedback_rows"] += rows
            if self._in_flight == 0:
                self._lock.notify_all()

    def authorized(self, token: str | None) -> bool:
        """Whether ``token`` is the service's token (always true when the service has none)."""
        if self.token is None:
            return True
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    # ------------------------------------------------------------------ requests
    def submit(
        self,
        body: bytes,
        content_type: str | None,
        request_id: str,
        *,
        timestamp: float | None = None,
        started: float | None = None,
        session: str | None = None,
    ) -> ScoreJob:
        """Hand one request body to the scorer, on the current model; returns the job at once.

        The job's ``done`` future resolves when it is scored: then it holds the JSON answer
        (``payload``) or the ``error`` to answer with, and in ``sync`` capture mode ``durable``,
        a future that resolves once its capture is on disk.

        Parameters
        ----------
        body, content_type : bytes, str
            The request in one of MLflow's formats (see :func:`~helpers.serving.protocol.parse_request`).
        request_id : str
            The id the answer and the capture carry.
        timestamp, started : float, optional
            Arrival (:func:`time.time` and :func:`time.perf_counter`); default now.
        session : str, optional
            The value of the canary's sticky header: requests with the same value get the same
            version (the canary answers ``job.role == "canary"`` jobs).
        """
        canary = self.canary is not None and self.canary.answers(session)
        job = ScoreJob(
            self.canary.model if canary and self.canary is not None else self.model,
            body,
            content_type,
            request_id,
            time.time() if timestamp is None else timestamp,
            time.perf_counter() if started is None else started,
            role="canary" if canary else "champion",
        )
        if self.scorer is not None:
            self.scorer.submit(job)
        elif self._pool is not None:
            self._pool.submit(self._score_alone, job)
        else:
            self._score_alone(job)
        return job

    def predict(
        self,
        body: bytes,
        content_type: str | None,
        request_id: str,
        *,
        timestamp: float | None = None,
        started: float | None = None,
    ) -> ScoreJob:
        """:meth:`submit`, then wait: the finished job holds the JSON answer.

        Raises
        ------
        InputError
            For a request the service refuses (with the status to answer with).
        ServeError
            When the model's outputs cannot be sent as JSON.
        """
        job = self.submit(body, content_type, request_id, timestamp=timestamp, started=started)
        job.done.result()
        if job.error is not None:
            raise job.error
        return job

    def _score_alone(self, job: ScoreJob) -> None:
        try:
            self._score([job])
        except Exception as exc:  # a bug; fail this request, keep serving
            logger.exception("scoring failed")
            job.error = job.error or exc
        finally:
            job.finish()
            self._answered([job])

    def _score(self, jobs: list[ScoreJob]) -> None:
        calls = score_jobs(jobs, max(1, self.max_batch_rows), self.output)
        for job in jobs:
            if job.error is None:
                job.durable = self.record(
                    job.request_id, job.inputs, job.outputs, job.model, job.latency_ms, job.timestamp, job.role
                )
        with self._lock:
            self._batching["model_calls"] += calls
            self._batching["requests"] += len(jobs)

    def feedback(self, body: bytes, content_type: str | None) -> int:
        """Store ground truth from a ``/feedback`` body; returns the labelled rows accepted.

        Raises
        ------
        InputError
            For a malformed body, 409 when capture is off, 503 when the capture backlog is full.
        """
        record = feedback_from_body(body, content_type, self.model.capture_name)
        if self.capture is None:
            raise InputError("feedback needs capture: start the service with capture on", 409)
        if self.capture.mode == "sync":
            wait_durable(self.capture.submit_durable(record))  # CaptureNotDurable: answered 503
        elif not self.capture.submit(record):
            raise InputError("feedback could not be queued (capture backlog full or stopping); retry", 503)
        return record.n_rows

    # ------------------------------------------------------------------ capture
    def record(
        self,
        request_id: str,
        inputs: pd.DataFrame,
        outputs: Any,
        model: LoadedModel,
        latency_ms: float,
        timestamp: float,
        role: str = "champion",
    ) -> Future[None] | None:
        """Hand one scored request (answered, or scored by the shadow) to the capture writer; never raises.

        Returns
        -------
        concurrent.futures.Future or None
            In ``sync`` capture mode, a future that resolves once the capture is fsynced (the
            transport waits on it before answering; it fails with ``CaptureNotDurable``, and
            the transport answers 503); None in ``async`` mode or with capture off.
        """
        if self.capture is None:
            return None
        try:
            record = CaptureRecord.from_frame(
                request_id,
                inputs,
                outputs,
                model_name=model.capture_name,
                model_version=model.version or "",
                latency_ms=latency_ms,
                timestamp=timestamp,
                role=role,
            )
            if self.capture.mode == "sync":
                return self.capture.submit_durable(record)
            self.capture.submit(record)
        except Exception as exc:  # capture must never fail a prediction (in sync mode: fail it with 503)
            with self._lock:
                self._counts["capture_errors"] += 1
            logger.warning("capture of request %s failed: %s", request_id, first_line(exc))
            if self.capture.mode == "sync":
                failed: Future[None] = Future()
                failed.set_exception(CaptureNotDurable(first_line(exc)))
                return failed
        return None

    # ------------------------------------------------------------------ status documents
    def health(self) -> dict[str, Any]:
        """The ``/health`` document: model, request counters, capture counters, alias polling."""
        with self._lock:
            counts = dict(self._counts, in_flight=self._in_flight)
            alias = dict(self._alias)
            batching = dict(self._batching)
        capture = self.capture.stats() if self.capture is not None else {"enabled": False, "healthy": True}
        healthy = capture["healthy"] and counts["capture_errors"] == 0 and alias["last_error"] is None
        return {
            "status": "ok" if healthy else "degraded",
            "model": self.model.describe(),
            "output": self.output,
            "requests": counts,
            "capture": capture,
            "alias": {
                **alias,
                "following": bool(self.ref and self.ref.alias and self.alias_poll_interval > 0),
                "poll_interval": self.alias_poll_interval,
            },
            "batching": {"max_rows": self.max_batch_rows, "max_delay": self.max_batch_delay, **batching},
            **self.variants.stats(),
            "started_at": iso_time(self._started_at) if self._started_at else None,
            "stopping": self._stopping,
        }

    def version(self) -> dict[str, Any]:
        """The ``/version`` document."""
        import mlflow

        model = self.model
        return {
            "model_name": model.name,
            "model_version": model.version,
            "model_uri": model.uri,
            "driftgate_version": __version__,
            "mlflow_version": mlflow.__version__,
        }

