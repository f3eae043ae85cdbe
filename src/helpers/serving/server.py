"""The HTTP server of the scoring service: uvicorn, on a background thread, with JSON errors.

:class:`AsgiTransport` binds the listening socket itself (so a port in use is an error at
:meth:`~AsgiTransport.bind`, and port 0 gives the actual port at once), then runs a uvicorn
server of :class:`~helpers.serving.asgi.ScoringApp` on its own event loop in a background thread,
so that :class:`~helpers.serving.service.ScoringService` starts and stops as a plain object.

uvicorn answers HTTP protocol errors and its concurrency limit itself, with plain-text bodies;
:class:`JsonH11Protocol` answers them with the service's JSON error body instead, closes idle
connections that never send a request after ``keep_alive_timeout``, and allows exactly
``max_connections`` connections (uvicorn's own check refuses the last one).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import sys
import threading
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from helpers import __version__
from helpers.core.errors import ServeError
from helpers.serving.asgi import Endpoints, ScoringApp, error_body
from helpers.serving.scorer import one_openmp_thread

logger = logging.getLogger(__name__)

# Seconds a thread holding the GIL keeps it while another wants it (Python's default is 5 ms): the
# event loop waking for a request or an answer waits that long behind the scorer's pandas work.
SWITCH_INTERVAL = 0.0005


def url_for(host: str, port: int, scheme: str = "http") -> str:
    """``scheme://host:port``, with IPv6 hosts in brackets.

    >>> url_for("::1", 5000)
    'http://[::1]:5000'
    """
    shown = f"[{host}]" if ":" in str(host) else host
    return f"{scheme}://{shown}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (``""`` means every interface).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("")
    (True, True, False, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _json_400(msg: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The JSON body and headers of the answer to a malformed HTTP request."""
    body = error_body(400, f"malformed HTTP request: {msg}")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    return body, headers


class _JsonLimits:
    """What both JSON protocols share: the JSON 503 beyond ``max_connections`` and the
    keep-alive timer armed from the connection's start (uvicorn arms it only after a response,
    so a connection that never sends a request would stay open, and count, forever)."""

    app: Any
    limit_concurrency: int | None
    connections: set[Any]
    tasks: set[Any]
    loop: asyncio.AbstractEventLoop
    timeout_keep_alive: float
    timeout_keep_alive_task: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the uvicorn protocol this mixin comes before
        self.max_connections = self.limit_concurrency
        self.limit_concurrency = None  # checked in _limited, with a JSON answer
        self.app_inside = self.app
        self.app = self._limited

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler  # type: ignore[attr-defined]
        )

    async def _limited(self, scope: Any, receive: Any, send: Any) -> None:
        limit = self.max_connections
        if limit is not None and (len(self.connections) > limit or len(self.tasks) > limit):
            message = f"more than serve.max_connections ({limit}) connections or requests at once; retry shortly"
            body = error_body(503, message)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app_inside(scope, receive, send)


class JsonH11Protocol(_JsonLimits, H11Protocol):
    """uvicorn's h11 protocol (pure Python), answering protocol errors and the connection limit with JSON."""

    def send_400_response(self, msg: str) -> None:
        body, headers = _json_400(msg)
        try:
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:  # a response was already under way: nothing more can be said
            pass
        self.transport.close()


class JsonHttpToolsProtocol(_JsonLimits, HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp, in C: the fast one), with the same JSON answers."""

    def send_400_response(self, msg: str) -> None:
        body, headers = _json_400(msg)
        lines = [b"HTTP/1.1 400 Bad Request\r\n"]
        lines += [name + b": " + value + b"\r\n" for name, value in (*self.server_state.default_headers, *headers)]
        self.transport.write(b"".join([*lines, b"\r\n", body]))
        self.transport.close()


class AsgiTransport:
    """Serves ``endpoints`` over HTTP (or HTTPS) at ``host:port`` with uvicorn.

    Parameters
    ----------
    endpoints : Endpoints
        The service answering the requests.
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`url` once bound).
    max_body_bytes : int
        Larger request bodies are refused with 413.
    request_timeout : float
        Seconds a request may take from its headers to its answer.
    keep_alive_timeout : float
        Seconds an idle connection is kept open.
    shutdown_timeout : float
        Seconds a graceful stop waits for requests in flight before cancelling them.
    max_connections : int
        Connections (and requests) at once; beyond it requests get 503.
    tls_cert, tls_key : str, optional
        PEM certificate and key: serve HTTPS.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        host: str,
        port: int,
        *,
        max_body_bytes: int,
        request_timeout: float,
        keep_alive_timeout: float = 5.0,
        shutdown_timeout: float = 30.0,
        max_connections: int = 1000,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self.app = ScoringApp(endpoints, max_body_bytes=max_body_bytes, request_timeout=request_timeout)
        self.scheme = "https" if tls_cert else "http"
        self.config = uvicorn.Config(
            self.app,
            http=JsonHttpToolsProtocol,
            ws="none",
            lifespan="off",
            interface="asgi3",
            loop="auto",  # uvloop where installed (not on Windows)
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            headers=[("server", f"driftgate/{__version__}")],
            limit_concurrency=max_connections,
            timeout_keep_alive=keep_alive_timeout,  # type: ignore[arg-type]  # a float works
            timeout_graceful_shutdown=shutdown_timeout,  # type: ignore[arg-type]
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
        )
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, with the actual port once bound."""
        host, port = self._socket.getsockname()[:2] if self._socket else (self.host, self.port)
        return url_for(str(host), int(port), self.scheme)

    def open_connections(self) -> int:
        """Connections open now (each may bring a request)."""
        return len(self._server.server_state.connections) if self._server else 0

    def bind(self) -> None:
        """Check the TLS files and open the listening socket (requests wait in its backlog).

        Raises
        ------
        ServeError
            When the certificate or key cannot be loaded.
        OSError
            When the address cannot be bound.
        """
        try:
            self.config.load()
        except (ssl.SSLError, OSError) as exc:
            raise ServeError(
                f"cannot load the TLS certificate {self.config.ssl_certfile} and key {self.config.ssl_keyfile} "
                f"(serve.tls_cert, serve.tls_key): {getattr(exc, 'strerror', None) or exc}"
            ) from None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
        # it the answer's second write waits for the client's delayed ACK (~40 ms a request)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(self.config.backlog)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._socket = sock

    def serve(self) -> None:
        """Answer requests on a background thread (returns once the server listens); :meth:`bind` first."""
        if self._socket is None:
            raise RuntimeError("bind() the transport before serve()")
        server = self._server = uvicorn.Server(self.config)
        sockets = [self._socket]
        sys.setswitchinterval(SWITCH_INTERVAL)

        def run() -> None:
            one_openmp_thread()
            server.run(sockets=sockets)

        self._thread = threading.Thread(target=run, name="serve-http", daemon=True)
        self._thread.start()
        while not server.started and self._thread.is_alive():
            self._thread.join(0.01)
        if not server.started:
            raise ServeError(f"the HTTP server at {self.url} did not start")

    def stop_accepting(self) -> None:
        """Begin a graceful shutdown: no new connections; requests in flight are answered, then
        their connections close (uvicorn waits up to ``shutdown_timeout`` for them)."""
        if self._server is not None:
            self._server.should_exit = True

    def close(self) -> None:
        """Wait for the server thread to finish its shutdown; force it after ``shutdown_timeout``."""
        if self._thread is not None:
            self._thread.join(self.shutdown_timeout + 5)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(5)
        if self._socket is not None:
            self._socket.close()

