"""The HTTP transport of the scoring service, on the standard library's threading server.

HTTP/1.1 with keep-alive; headers and body leave in one write. The routes of MLflow's scoring
protocol, so clients written for ``mlflow models serve`` work unchanged:

``POST /invocations``
    JSON or CSV rows to score; answers ``{"predictions": [...]}`` and the request id in the
    ``X-Request-Id`` header.
``POST /feedback``
    ``{"request_ids": [...], "labels": [...]}`` (optionally ``"rows"``): ground truth.
``GET /ping``
    Liveness, the only endpoint open without the bearer token.
``GET /health``
    Model, request and capture counters.
``GET /version``
    Model name, version and URI, and the Driftgate and MLflow versions.

Only this module knows HTTP: it reads bodies (refusing chunked ones with 411 and those above
the size limit with 413), checks the ``Authorization: Bearer`` header, and answers errors as
``{"error_code": ..., "message": ...}``. The work is done by the :class:`Endpoints` it is given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from helpers import __version__
from helpers.serving.capture_wal import wait_durable
from helpers.serving.formatting import first_line
from helpers.serving.protocol import JSON_TYPE, REQUEST_ID_HEADER, request_id_or_new
from helpers.serving.schema import InputError
from helpers.serving.scorer import ScoreJob, one_openmp_thread

logger = logging.getLogger(__name__)

ROUTES: dict[str, str] = {
    "/invocations": "POST",
    "/feedback": "POST",
    "/ping": "GET",
    "/health": "GET",
    "/version": "GET",
}
ERROR_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    503: "SERVICE_UNAVAILABLE",
}


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

    def predict(
        self, body: bytes, content_type: str | None, request_id: str, *, timestamp: float, started: float
    ) -> ScoreJob:
        """Score an ``/invocations`` body; raises for a request that cannot be answered."""
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


def url_for(host: str, port: int) -> str:
    """``http://host:port``, with IPv6 hosts in brackets.

    >>> url_for("::1", 5000)
    'http://[::1]:5000'
    """
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}"


class HttpTransport:
    """Serves ``endpoints`` over HTTP at ``host:port`` on a threading server.

    Parameters
    ----------
    endpoints : Endpoints
        The service answering the requests.
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`url` once started).
    max_body_bytes : int
        Larger request bodies are refused with 413.
    request_timeout : float
        Seconds a connection may sit idle or half-sent before it is closed.
    """

    def __init__(
        self, endpoints: Endpoints, host: str, port: int, *, max_body_bytes: int, request_timeout: float
    ) -> None:
        self.endpoints = endpoints
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL, with the actual port once listening."""
        host, port = self._server.server_address[:2] if self._server else (self.host, self.port)
        return url_for(str(host), int(port))

    def open_connections(self) -> int:
        """Connections open now (each may bring a request)."""
        with self._lock:
            return len(self._connections)

    def bind(self) -> None:
        """Open the listening socket (requests wait in its backlog until :meth:`serve`).

        Raises
        ------
        OSError
            When the address cannot be bound.
        """
        self._server = _Server((self.host, self.port), self)

    def serve(self) -> None:
        """Answer requests on a background thread; call :meth:`bind` first."""
        server = self._server
        if server is None:
            raise RuntimeError("bind() the transport before serve()")
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.1), name="serve-http", daemon=True
        )
        self._thread.start()

    def stop_accepting(self) -> None:
        """Take no new connections; requests on open ones are still read and answered."""
        if self._server is not None:
            self._server.shutdown()

    def close(self) -> None:
        """Close the listening socket and every open connection."""
        if self._server is not None:
            self._server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def track(self, conn: socket.socket, open_: bool) -> None:
        """Note a connection opening or closing."""
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    """Threading HTTP server without the reverse DNS lookup at bind time."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], transport: HttpTransport) -> None:
        self.transport = transport
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    """One connection; keep-alive, headers and body sent in one write."""

    protocol_version = "HTTP/1.1"
    server_version = f"driftgate/{__version__}"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # buffered: headers and body leave together at the flush
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.transport.request_timeout
        super().setup()
        one_openmp_thread()
        self.server.transport.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.transport.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ routing
    def _dispatch(self, method: str) -> None:
        endpoints = self.server.transport.endpoints
        self._body_read = False
        path = urlsplit(self.path).path.rstrip("/") or "/"
        request_id = request_id_or_new(self.headers.get(REQUEST_ID_HEADER))
        if path == "/ping" and method == "GET":
            self._send(200, b"\n", request_id)
            return
        if not endpoints.begin_request():
            self._error(503, "SERVICE_UNAVAILABLE", "the service is shutting down; retry shortly", request_id)
            return
        status, counter, rows = 500, None, 0
        try:
            status, counter, rows = self._route(endpoints, method, path, request_id)
        except InputError as exc:
            status = self._error(exc.status, ERROR_CODES.get(exc.status, "BAD_REQUEST"), exc.message, request_id)
        except Exception as exc:  # a bug, not the client's fault; keep serving
            logger.exception("internal error on %s %s", method, path)
            status = self._error(500, "INTERNAL_ERROR", f"internal error: {first_line(exc)}", request_id)
        finally:
            endpoints.end_request(status, counter, rows)

    def _route(self, endpoints: Endpoints, method: str, path: str, request_id: str) -> tuple[int, str | None, int]:
        if path not in ROUTES:
            raise InputError(f"no endpoint {path}; try /invocations, /feedback, /ping, /health, /version", 404)
        if method != ROUTES[path]:
            raise InputError(f"{path} accepts {ROUTES[path]}, not {method}", 405)
        if not endpoints.authorized(_bearer_token(self.headers.get("Authorization"))):
            self._error(
                401,
                "UNAUTHENTICATED",
                "missing or wrong bearer token",
                request_id,
                {"WWW-Authenticate": 'Bearer realm="driftgate"'},
            )
            return 401, None, 0
        if path == "/invocations":
            return self._invocations(endpoints, request_id)
        if path == "/feedback":
            return self._feedback(endpoints, request_id)
        document = endpoints.health() if path == "/health" else endpoints.version()
        return self._send_json(200, document, request_id), None, 0

    def _invocations(self, endpoints: Endpoints, request_id: str) -> tuple[int, str, int]:
        started, timestamp = time.perf_counter(), time.time()
        body = self._read_body()
        content_type = self.headers.get("Content-Type")
        job = endpoints.predict(body, content_type, request_id, timestamp=timestamp, started=started)
        wait_durable(job.capture)  # sync capture mode: answer only once the capture is fsynced
        return self._send(200, job.payload, request_id, JSON_TYPE), "predictions", job.n_rows

    def _feedback(self, endpoints: Endpoints, request_id: str) -> tuple[int, str, int]:
        body = self._read_body()
        accepted = endpoints.feedback(body, self.headers.get("Content-Type"))
        return self._send_json(200, {"accepted": accepted}, request_id), "feedback", accepted

    # ------------------------------------------------------------------ body and responses
    def _read_body(self) -> bytes:
        limit = self.server.transport.max_body_bytes
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            raise InputError("chunked bodies are not accepted; send a Content-Length", 411)
        text = self.headers.get("Content-Length")
        if text is None:
            raise InputError("a Content-Length header is required", 411)
        try:
            length = int(text)
        except ValueError:
            raise InputError(f"bad Content-Length {text!r}") from None
        if length < 0:
            raise InputError(f"bad Content-Length {text!r}")
        if length > limit:
            raise InputError(
                f"request body of {length} bytes exceeds the limit of {limit} bytes; send fewer rows per request", 413
            )
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise InputError(f"incomplete body: got {len(body)} of {length} bytes")
        self._body_read = True
        return body

    def _error(
        self, status: int, code: str, message: str, request_id: str, headers: dict[str, str] | None = None
    ) -> int:
        return self._send_json(status, {"error_code": code, "message": message}, request_id, headers)

    def _send_json(self, status: int, document: Any, request_id: str, headers: dict[str, str] | None = None) -> int:
        return self._send(status, json.dumps(document, default=str).encode(), request_id, JSON_TYPE, headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        request_id: str,
        content_type: str = JSON_TYPE,
        headers: dict[str, str] | None = None,
    ) -> int:
        unread = not getattr(self, "_body_read", False) and self.headers.get("Content-Length", "0") not in ("0", "")
        if unread or self.server.transport.endpoints.stopping:
            self.close_connection = True  # an unread body would poison the next request
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header(REQUEST_ID_HEADER, request_id)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        return status


def _bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` for any other scheme."""
    scheme, _, given = (header or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None
