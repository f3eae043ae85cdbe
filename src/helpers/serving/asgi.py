"""The scoring service as an ASGI application (served by uvicorn, see :mod:`helpers.serving.server`).

The routes of MLflow's scoring protocol, so clients written for ``mlflow models serve`` work
unchanged:

``POST /invocations``
    JSON or CSV rows to score; answers ``{"predictions": [...]}``, the request id in the
    ``X-Request-Id`` header and the version that answered in ``X-Model-Version`` (the canary's
    for the requests it answers; the value of the service's sticky header keeps a session on one).
``POST /feedback``
    ``{"request_ids": [...], "labels": [...]}`` (optionally ``"rows"``): ground truth.
``GET /ping``
    Liveness, the only endpoint open without the bearer token.
``GET /health``
    Model, request and capture counters.
``GET /version``
    Model name, version and URI, and the Driftgate and MLflow versions.
``GET /openapi.json``
    An OpenAPI 3 document of these endpoints.

Only this module and :mod:`~helpers.serving.server` know HTTP. The application reads bodies
(plain or chunked, counting bytes as they stream in and refusing more than ``max_body_bytes``
with 413), checks the ``Authorization: Bearer`` header and answers every error as
``{"error_code": ..., "message": ...}``. The hot path is a bare ASGI callable: the body bytes go
to the :class:`Endpoints` untouched (no framework parses them), the scoring job is awaited as a
future while the scorer's thread runs the model, and, in ``sync`` capture mode, the answer waits
for the capture to be on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from helpers.serving.formatting import first_line
from helpers.serving.openapi import openapi_document
from helpers.serving.protocol import JSON_TYPE, REQUEST_ID_HEADER, request_id_or_new
from helpers.serving.schema import InputError
from helpers.serving.scorer import ScoreJob

logger = logging.getLogger(__name__)

ROUTES: dict[str, str] = {
    "/invocations": "POST",
    "/feedback": "POST",
    "/ping": "GET",
    "/health": "GET",
    "/version": "GET",
    "/openapi.json": "GET",
}
ERROR_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
_JSON_HEADER = (b"content-type", JSON_TYPE.encode())
_CLOSE_HEADER = (b"connection", b"close")
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower()
_REQUEST_ID_KEY = _REQUEST_ID_NAME.encode()
_MODEL_VERSION_KEY = b"x-model-version"


class Endpoints(Protocol):
    """What the transport needs from the service behind it (:class:`~helpers.serving.service.ScoringService`)."""

    @property
    def stopping(self) -> bool:
        """True once the service has begun to stop (answers then close their connection)."""
        ...

    def authorized(self, token: str | None) -> bool:
        """Whether ``token`` (from the request) is the service's token."""
        ...

    def begin_request(self) -> bool:
        """Count a request in; False when the service no longer takes requests."""
        ...

    def end_request(self, status: int, kind: str | None = None, rows: int = 0) -> None:
        """Count a request out with the status it was answered with."""
        ...

    @property
    def session_header(self) -> str | None:
        """The request header whose value keeps a session on one version (None: no canary)."""
        ...

    def submit(
        self,
        body: bytes,
        content_type: str | None,
        request_id: str,
        *,
        timestamp: float,
        started: float,
        session: str | None = None,
    ) -> ScoreJob:
        """Hand an ``/invocations`` body to the scorer; the job's ``done`` future tells when it is scored."""
        ...

    def feedback(self, body: bytes, content_type: str | None) -> int:
        """Store a ``/feedback`` body; returns the labelled rows accepted."""
        ...

    def health(self) -> dict[str, Any]:
        """The ``/health`` document."""
        ...

    def version(self) -> dict[str, Any]:
        """The ``/version`` document."""
        ...


class Answer:
    """One response: status, body, content type and extra headers (names and values as bytes)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []


def error_body(status: int, message: str) -> bytes:
    """The JSON error body every error is answered with.

    >>> error_body(404, "no endpoint /x")
    b'{"error_code": "ENDPOINT_NOT_FOUND", "message": "no endpoint /x"}'
    """
    return json.dumps({"error_code": ERROR_CODES.get(status, "BAD_REQUEST"), "message": message}).encode()


def error_answer(status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    """An :class:`Answer` carrying :func:`error_body`."""
    return Answer(status, error_body(status, message), headers)


def json_answer(document: Any) -> Answer:
    """A 200 :class:`Answer` with ``document`` as JSON."""
    return Answer(200, json.dumps(document, default=str).encode())


class Request:
    """What the endpoints read of a request: its headers (read once into a dict) and its body stream.

    Lighter than Starlette's ``Request``, whose every header lookup scans and decodes the list.
    """

    __slots__ = ("headers", "receive")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:  # names come lower-cased; the first of repeated ones counts
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        self.headers = headers
        self.receive = receive

    async def stream(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (plain or chunked); ``ClientDisconnect`` if the client goes."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    yield body
                if not message.get("more_body", False):
                    return


_Outcome = tuple[Answer, str | None, int]  # the answer, the kind of success and the rows it counts


class ScoringApp:
    """The ASGI application serving ``endpoints``.

    Parameters
    ----------
    endpoints : Endpoints
        The service answering the requests.
    max_body_bytes : int
        Larger request bodies (declared or streamed) are refused with 413.
    request_timeout : float
        Seconds a request may take from its headers to its answer: a body still arriving then
        is answered 408, a request still being scored 503.
    """

    def __init__(self, endpoints: Endpoints, *, max_body_bytes: int, request_timeout: float) -> None:
        self.endpoints = endpoints
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self._openapi = json.dumps(openapi_document()).encode()
        self._handlers: dict[str, Callable[[Request, bytes, str], Awaitable[_Outcome]]] = {
            "/invocations": self._invocations,
            "/feedback": self._feedback,
            "/health": self._health,
            "/version": self._version,
            "/openapi.json": self._openapi_json,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets are off in the server
            return
        request = Request(scope, receive)
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        request_id = request_id_or_new(request.headers.get(_REQUEST_ID_NAME))
        if path == "/ping" and method in ("GET", "HEAD"):
            await self._send(send, Answer(200, b"\n"), request_id, body_pending=_has_body(request))
            return
        if not self.endpoints.begin_request():
            answer = error_answer(503, "the service is shutting down; retry shortly")
            await self._send(send, answer, request_id, body_pending=True)
            return
        answer, kind, rows = error_answer(500, "internal error"), None, 0
        state = {"body_read": not _has_body(request)}
        try:
            answer, kind, rows = await self._answer(request, method, path, request_id, state)
            await self._send(send, answer, request_id, body_pending=not state["body_read"])
        except ClientDisconnect:
            answer = error_answer(400, "the client went away before its request was read")
        finally:
            self.endpoints.end_request(answer.status, kind, rows)

    async def _answer(
        self, request: Request, method: str, path: str, request_id: str, state: dict[str, bool]
    ) -> _Outcome:
        try:
            async with asyncio.timeout(self.request_timeout):
                return await self._route(request, method, path, request_id, state)
        except InputError as exc:
            return error_answer(exc.status, exc.message), None, 0
        except TimeoutError:
            if not state["body_read"]:
                return error_answer(408, f"the request body did not arrive within {self.request_timeout} s"), None, 0
            return error_answer(503, f"the request was not answered within {self.request_timeout} s"), None, 0
        except ClientDisconnect:
            raise
        except Exception as exc:  # a bug, not the client's fault; keep serving
            logger.exception("internal error on %s %s", method, path)
            return error_answer(500, f"internal error: {first_line(exc)}"), None, 0

    async def _route(
        self, request: Request, method: str, path: str, request_id: str, state: dict[str, bool]
    ) -> _Outcome:
        handler = self._handlers.get(path)
        if handler is None and path != "/ping":
            raise InputError(f"no endpoint {path}; try /invocations, /feedback, /ping, /health, /version", 404)
        if method != ROUTES[path]:
            raise InputError(f"{path} accepts {ROUTES[path]}, not {method}", 405)
        if not self.endpoints.authorized(_bearer_token(request.headers.get("authorization"))):
            challenge = [(b"www-authenticate", b'Bearer realm="driftgate"')]
            return error_answer(401, "missing or wrong bearer token", challenge), None, 0
        assert handler is not None
        body = b""
        if method == "POST":
            body = await self._read_body(request)
            state["body_read"] = True
        return await handler(request, body, request_id)

    # ------------------------------------------------------------------ endpoints
    async def _invocations(self, request: Request, body: bytes, request_id: str) -> _Outcome:
        started, timestamp = time.perf_counter(), time.time()
        header = self.endpoints.session_header
        session = request.headers.get(header.lower()) if header else None
        job = self.endpoints.submit(
            body, request.headers.get("content-type"), request_id, timestamp=timestamp, started=started, session=session
        )
        await asyncio.wrap_future(job.done)
        version = [(_MODEL_VERSION_KEY, job.model.version.encode())] if job.model.version else []
        if isinstance(job.error, InputError):
            return error_answer(job.error.status, job.error.message, version), None, 0
        if job.error is not None:
            raise job.error
        if job.durable is not None:
            await _durable(job)
        return Answer(200, job.payload, version), "predictions", job.n_rows

    async def _feedback(self, request: Request, body: bytes, request_id: str) -> _Outcome:
        content_type = request.headers.get("content-type")
        accepted = await asyncio.to_thread(self.endpoints.feedback, body, content_type)
        return json_answer({"accepted": accepted}), "feedback", accepted

    async def _health(self, request: Request, body: bytes, request_id: str) -> _Outcome:
        return json_answer(self.endpoints.health()), None, 0

    async def _version(self, request: Request, body: bytes, request_id: str) -> _Outcome:
        return json_answer(self.endpoints.version()), None, 0

    async def _openapi_json(self, request: Request, body: bytes, request_id: str) -> _Outcome:
        return Answer(200, self._openapi), None, 0

    # ------------------------------------------------------------------ body and responses
    async def _read_body(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        parts: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit, streamed=True)
            parts.append(chunk)
        return b"".join(parts)

    async def _send(self, send: Send, answer: Answer, request_id: str, *, body_pending: bool) -> None:
        headers = [
            _JSON_HEADER,
            (b"content-length", str(len(answer.body)).encode()),
            (_REQUEST_ID_KEY, request_id.encode()),
            *answer.headers,
        ]
        if body_pending or self.endpoints.stopping:
            headers.append(_CLOSE_HEADER)  # an unread body would be read as the next request
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


async def _durable(job: ScoreJob) -> None:
    """Wait until the job's capture is on disk (``sync`` capture mode); 503 if it cannot be."""
    assert job.durable is not None
    try:
        await asyncio.wrap_future(job.durable)
    except Exception as exc:
        raise InputError(
            f"the prediction was made but its capture could not be written ({first_line(exc)}); retry", 503
        ) from None


def _too_large(size: int, limit: int, *, streamed: bool = False) -> InputError:
    got = f"more than {limit}" if streamed else str(size)
    message = f"request body of {got} bytes exceeds the limit of {limit} bytes; send fewer rows per request"
    return InputError(message, 413)


def _has_body(request: Request) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunked)."""
    headers = request.headers
    return headers.get("content-length", "0") not in ("0", "") or "transfer-encoding" in headers


def _bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` for any other scheme."""
    scheme, _, given = (header or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None
