"""A small keep-alive HTTP(S) client for the scoring service."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from helpers.core.errors import ServeError
from helpers.serving.outputs import split_answer
from helpers.serving.protocol import JSON_TYPE, REQUEST_ID_HEADER, encode_frame


@dataclass(frozen=True)
class Response:
    """An HTTP response: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    @property
    def request_id(self) -> str | None:
        """The ``X-Request-Id`` header."""
        return self.headers.get(REQUEST_ID_HEADER.lower())


@dataclass(frozen=True)
class Prediction:
    """Predictions of one request and the id the service gave it.

    ``values`` holds a regressor's predictions or a classifier's labels; ``probabilities`` a
    classifier's ``proba_<class>`` columns when the service answers them (else None).
    """

    values: np.ndarray
    request_id: str
    probabilities: pd.DataFrame | None = None


class ServeClient:
    """A small keep-alive client for the scoring service (one per thread).

    ``https://`` URLs are verified against the system's certificate authorities, or against
    ``ca_file`` (a PEM file; for a self-signed service, its certificate).

    Examples
    --------
    >>> client = ServeClient("http://127.0.0.1:5000", token=os.environ.get("DRIFTGATE_TOKEN"))  # doctest: +SKIP
    >>> client.predict(rows).values  # doctest: +SKIP
    """

    def __init__(
        self, url: str, *, token: str | None = None, timeout: float = 30.0, ca_file: str | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServeError(f"service URL must look like http://127.0.0.1:5000 or https://host:5000, got {url!r}")
        self.url = url.rstrip("/")
        self.host, self.port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        self.token = token
        self.timeout = timeout
        self._tls = tls_context(ca_file) if parts.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send one request, reconnecting once if a kept-alive connection went stale."""
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._conn or self._connect()
            self._conn = conn
            try:
                conn.request(method, path, body=body, headers=sent)
                raw = conn.getresponse()
                payload = raw.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError):
                self.close()
                if reused and attempt == 0:
                    continue
                raise
            headers_out = {k.lower(): v for k, v in raw.getheaders()}
            if raw.will_close:
                self.close()
            return Response(raw.status, headers_out, payload)
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def predict(self, frame: pd.DataFrame, *, request_id: str | None = None) -> Prediction:
        """Score ``frame`` (sent as ``dataframe_split``); raises :class:`ServeError` on non-200."""
        headers = {"Content-Type": JSON_TYPE}
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        response = self.request("POST", "/invocations", encode_frame(frame), headers)
        if response.status != 200:
            raise ServeError(f"{self.url}/invocations answered {response.status}: {_message(response)}")
        values, probabilities = split_answer(response.json()["predictions"])
        return Prediction(values, response.request_id or "", probabilities)

    def feedback(self, request_ids: Sequence[str], labels: Sequence[Any], rows: Sequence[int] | None = None) -> int:
        """Send ground truth; returns the number of labelled rows accepted."""
        document: dict[str, Any] = {"request_ids": list(request_ids), "labels": [_plain(v) for v in labels]}
        if rows is not None:
            document["rows"] = [int(r) for r in rows]
        response = self.request("POST", "/feedback", json.dumps(document).encode(), {"Content-Type": JSON_TYPE})
        if response.status != 200:
            raise ServeError(f"{self.url}/feedback answered {response.status}: {_message(response)}")
        return int(response.json()["accepted"])

    def get_json(self, path: str) -> Any:
        """GET a JSON endpoint such as ``/health``; raises :class:`ServeError` on non-200."""
        response = self.request("GET", path)
        if response.status != 200:
            raise ServeError(f"{self.url}{path} answered {response.status}: {_message(response)}")
        return response.json()

    def close(self) -> None:
        """Close the kept-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ServeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client TLS context: the system's authorities, or those in ``ca_file``.

    Raises
    ------
    ServeError
        When ``ca_file`` cannot be read as PEM certificates.
    """
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"cannot read the CA file {ca_file}: {getattr(exc, 'strerror', None) or exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    return value


def _message(response: Response) -> str:
    try:
        return str(response.json().get("message", response.body[:200]))
    except (ValueError, AttributeError):
        return response.body[:200].decode("utf-8", "replace")
