"""The scoring service under hostile input, limits, graceful shutdown, TLS and the binding rule.

Every test talks to a real service (uvicorn on 127.0.0.1) over raw sockets or the client. The
model is a small function with a signature (``hr`` long, ``weathersit`` string, ``temp``
double), so that the tests exercise the transport and the input checks, not a model.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.core.config import load_params
from helpers.core.errors import ParamsError, ServeError
from helpers.modeling.captures import read_captures
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.client import ServeClient
from helpers.serving.configure import service_from_params
from helpers.serving.models import LoadedModel
from helpers.serving.protocol import encode_frame
from helpers.serving.replay import replay
from helpers.serving.schema import ColumnSpec, InputSchema
from helpers.serving.service import ScoringService
from helpers.serving.smoke import smoke_test

TOKEN = "hostile-token"
SCHEMA = InputSchema((ColumnSpec("hr", "long"), ColumnSpec("weathersit", "string"), ColumnSpec("temp", "double")))
ROWS = pd.DataFrame({"hr": [1, 2, 3], "weathersit": ["clear", "mist", "rain"], "temp": [0.25, 0.5, 0.75]})
LIMIT = 300_000  # max_body_bytes of the fuzzed service


def _predict(frame: pd.DataFrame) -> np.ndarray:
    return frame["hr"].to_numpy() * 2.0 + frame["temp"].to_numpy()


def _model(predict=_predict) -> LoadedModel:
    return LoadedModel("models:/hostile/1", "hostile", "1", SCHEMA, predict, True, "test")


def _service(tmp: Path, **kwargs: object) -> ScoringService:
    options = {"port": 0, "alias_poll_interval": 0, "model": _model(), **kwargs}
    return ScoringService("models:/hostile/1", **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoringService]:
    writer = CaptureWriter(tmp_path_factory.mktemp("captures"), flush_interval=0.2)
    svc = _service(tmp_path_factory.mktemp("svc"), token=TOKEN, capture=writer, max_body_bytes=LIMIT)
    svc.start()
    yield svc
    svc.stop()


# --------------------------------------------------------------------------- raw HTTP


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def _recv_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response (Content-Length framed) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:length]


def raw_exchange(url: str, payload: bytes, timeout: float = 20.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``payload`` (a whole request, however malformed) on a new connection; read the answer."""
    with socket.create_connection(_address(url), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed before all was sent
            pass
        return _recv_response(sock)


def http_request(
    method: str, path: str, body: bytes, headers: dict[str, str], *, chunked: bool = False
) -> bytes:
    """The bytes of one HTTP/1.1 request; ``chunked`` sends the body in chunked transfer encoding."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[i : i + 997] for i in range(0, len(body), 997)]
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        encoded = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + encoded


def assert_json_error(status: int, body: bytes) -> dict:
    document = json.loads(body)
    assert set(document) == {"error_code", "message"}, document
    assert document["error_code"] and document["message"], document
    return document


# --------------------------------------------------------------------------- fuzzing

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.sampled_from(["hr", "weathersit", "temp", "columns", "data", "x", ""]), inner, max_size=4),
    ),
    max_leaves=20,
)
_DOCUMENT = st.one_of(
    st.dictionaries(
        st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "params", "request_ids",
                         "labels", "rows"]),
        _JSON,
        min_size=1,
        max_size=3,
    ),
    st.builds(lambda data: {"dataframe_split": {"columns": ["hr", "weathersit", "temp"], "data": data}},
              st.lists(st.lists(_SCALARS, min_size=2, max_size=4), min_size=1, max_size=4)),
    st.builds(lambda rows: {"dataframe_records": rows},
              st.lists(st.fixed_dictionaries({"hr": _SCALARS, "weathersit": _SCALARS, "temp": _SCALARS}),
                       min_size=1, max_size=3)),
    _JSON,
)
_BODIES = st.one_of(
    _DOCUMENT.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * (n // 2)),
    st.builds(lambda header, rows: (header + "\n" + rows).encode(),
              st.sampled_from(["hr,weathersit,temp", "hr,temp", "a", ""]), st.text(max_size=80)),
)
_CONTENT_TYPES = st.sampled_from(
    ["application/json", "text/csv", "application/json; charset=utf-8", "text/csv; charset=latin-1",
     "text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "\x7f;;="]
)
_PATHS = st.one_of(
    st.sampled_from(["/invocations", "/feedback", "/ping", "/health", "/version", "/openapi.json", "/", "//",
                     "/invocations/", "/invocations?x=1", "/%ff%fe", "/..%2f..%2fetc", "/ping/../health"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(lambda t: "/" + t),
)
_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "BREW", "post"])
_AUTH = st.sampled_from([f"Bearer {TOKEN}", f"Bearer {TOKEN}", "Bearer wrong", "Basic eDp5", "", "Bearer"])
_REQUEST_IDS = st.one_of(st.none(), st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200))


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(
    method=_METHODS,
    path=_PATHS,
    body=_BODIES,
    content_type=_CONTENT_TYPES,
    auth=_AUTH,
    request_id=_REQUEST_IDS,
    chunked=st.booleans(),
)
def test_fuzzed_requests_never_get_a_5xx(
    service: ScoringService,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
    auth: str,
    request_id: str | None,
    chunked: bool,
) -> None:
    headers = {"Content-Type": content_type, "Authorization": auth}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    headers = {k: v for k, v in headers.items() if v}
    request = http_request(method, path, body, headers, chunked=chunked)
    status, answer_headers, answer = raw_exchange(service.url, request)
    assert status < 500, (status, answer)
    if status >= 400 and method != "HEAD":  # an answer to HEAD has no body
        assert answer_headers["content-type"] == "application/json"
        assert_json_error(status, answer)


def test_fuzzing_left_the_service_healthy(service: ScoringService) -> None:
    health = service.health()
    assert health["requests"]["server_errors"] == 0
    assert health["capture"]["write_errors"] == 0


# --------------------------------------------------------------------------- hostile cases


def _post(url: str, body: bytes, content_type: str = "application/json", *, chunked: bool = False,
          token: str = TOKEN) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {token}"}
    return raw_exchange(url, http_request("POST", "/invocations", body, headers, chunked=chunked))


def _split(data: list) -> bytes:
    return json.dumps({"dataframe_split": {"columns": ["hr", "weathersit", "temp"], "data": data}}).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"[" * 100_000, "application/json", 400, ["nested too deeply"]),
        (b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400, ["nested too deeply"]),
        (_split([[10**30, "clear", 0.5]]), "application/json", 400, ["'hr'", "1000000000000000000000000000000"]),
        (_split([[1, "clear", 10**30]]), "application/json", 200, []),  # a double: read as 1e30
        (b'{"dataframe_split": \xff\xfe}', "application/json", 400, ["not valid JSON"]),
        (b"hr,weathersit,temp\n1,\xff\xfe,0.5\n", "text/csv", 400, ["CSV"]),
        (_split([[1, "clear", float("nan")]]), "application/json", 200, []),  # NaN: a missing double
        (b'{"dataframe_split": {"columns": ["hr", "weathersit", "temp"], "data": [[Infinity, "c", 1]]}}',
         "application/json", 400, ["'hr'"]),
        (_split([[1, "x" * 250_000, 0.5]]), "application/json", 200, []),
        (_split([[1, "x" * 310_000, 0.5]]), "application/json", 413, ["limit"]),
        (_split([["1", ["a"], {"b": 1}]]), "application/json", 400, ["'hr'"]),
        (_split([[1, "clear"]]), "application/json", 400, ["row 0 has 2 values"]),
        (json.dumps({"dataframe_records": [[1, 2, 3]]}).encode(), "application/json", 400, ["list of records"]),
        (json.dumps({"inputs": {"hr": 1, "weathersit": "c", "temp": [1, 2]}}).encode(), "application/json", 400,
         ["same length"]),
        (json.dumps({"dataframe_split": {"columns": [1, 2], "data": [[1, 2]]}}).encode(), "application/json", 400,
         ["column names"]),
        (json.dumps({"dataframe_split": {"columns": ["hr", "hr"], "data": [[1, 2]]}}).encode(), "application/json",
         400, ["duplicate"]),
        (b"\x00" * 100, "application/json", 400, ["not valid JSON"]),
    ],
    ids=["deep-100k", "deep-inputs", "int-31-digits", "int-31-digits-in-double", "bad-utf8-json", "bad-utf8-csv",
         "nan", "infinity-in-long", "huge-string", "huger-string", "wrong-types", "short-row", "rows-not-records",
         "ragged", "int-columns", "duplicate-columns", "nul-bytes"],
)
def test_hostile_bodies_get_4xx_naming_the_problem(
    service: ScoringService, body: bytes, content_type: str, status: int, words: list[str]
) -> None:
    got, headers, answer = _post(service.url, body, content_type)
    assert got == status, answer[:300]
    if status >= 400:
        message = assert_json_error(got, answer)["message"]
        assert all(w in message for w in words), message


def test_hostile_feedback_gets_4xx(service: ScoringService) -> None:
    for body in (b"[" * 100_000, json.dumps({"request_ids": ["a"], "labels": [10**30]}).encode(),
                 json.dumps({"request_ids": ["a"], "labels": [1], "rows": [10**30]}).encode(), b"\xff"):
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        status, _, answer = raw_exchange(service.url, http_request("POST", "/feedback", body, headers))
        assert 400 <= status < 500, answer
        assert_json_error(status, answer)


def test_chunked_bodies_are_scored(service: ScoringService) -> None:
    status, headers, answer = _post(service.url, encode_frame(ROWS), chunked=True)
    assert status == 200, answer
    np.testing.assert_array_equal(json.loads(answer)["predictions"], _predict(ROWS))
    assert headers["x-request-id"]


def test_chunked_bodies_above_the_limit_are_refused_while_streaming(service: ScoringService) -> None:
    big = encode_frame(pd.concat([ROWS] * 8000, ignore_index=True))  # ~450 kB, no Content-Length
    assert len(big) > LIMIT
    status, headers, answer = _post(service.url, big, chunked=True)
    assert status == 413 and "limit" in assert_json_error(status, answer)["message"]
    assert headers.get("connection") == "close"


@pytest.mark.parametrize(
    "payload",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    ],
    ids=["garbage", "bad-length", "two-lengths", "bad-chunk", "negative-length", "bad-header", "bad-target", "gzip"],
)
def test_protocol_errors_answer_json(service: ScoringService, payload: bytes) -> None:
    status, headers, answer = raw_exchange(service.url, payload)
    assert 400 <= status < 500
    assert headers["content-type"] == "application/json"
    assert_json_error(status, answer)


def test_unknown_paths_and_methods_answer_json(service: ScoringService) -> None:
    with ServeClient(service.url, token=TOKEN) as client:
        for method, path, status in (("GET", "/nothing", 404), ("GET", "/invocations", 405),
                                     ("PATCH", "/health", 405), ("GET", "/ping/", 200)):
            response = client.request(method, path)
            assert response.status == status
            if status >= 400:
                assert_json_error(status, response.body)


def test_openapi_document_lists_the_endpoints(service: ScoringService) -> None:
    with ServeClient(service.url, token=TOKEN) as client:
        document = client.get_json("/openapi.json")
    assert document["openapi"].startswith("3.")
    assert {"/invocations", "/feedback", "/ping", "/health", "/version"} <= set(document["paths"])


# --------------------------------------------------------------------------- limits and shutdown


def test_connections_beyond_max_connections_get_503_json(tmp_path: Path) -> None:
    svc = _service(tmp_path, max_connections=2, keep_alive_timeout=30)
    with svc:
        host, port = _address(svc.url)
        idle = [socket.create_connection((host, port)) for _ in range(2)]
        try:
            time.sleep(0.2)
            status, headers, answer = raw_exchange(svc.url, http_request("GET", "/health", b"", {}))
            assert status == 503 and headers["connection"] == "close"
            assert "max_connections" in assert_json_error(status, answer)["message"]
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        with ServeClient(svc.url) as client:
            assert client.get_json("/health")["status"] == "ok"


def test_idle_connections_are_closed_after_the_keep_alive_timeout(tmp_path: Path) -> None:
    with _service(tmp_path, keep_alive_timeout=0.3) as svc:
        with socket.create_connection(_address(svc.url), timeout=5) as sock:
            time.sleep(0.8)
            assert sock.recv(10) == b""  # closed by the server, without a request


def test_a_body_that_stops_arriving_gets_408(tmp_path: Path) -> None:
    with _service(tmp_path, request_timeout=0.5) as svc:
        with socket.create_connection(_address(svc.url), timeout=10) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"inputs\"")
            status, _, answer = _recv_response(sock)
    assert status == 408
    assert_json_error(status, answer)


def test_stop_drains_requests_in_flight_then_writes_their_captures(tmp_path: Path) -> None:
    started = threading.Event()

    def slow(frame: pd.DataFrame) -> np.ndarray:
        started.set()
        time.sleep(1.0)
        return _predict(frame)

    writer = CaptureWriter(tmp_path / "captures", flush_interval=30)  # only close() writes
    svc = _service(tmp_path, model=_model(slow), capture=writer, max_batch_rows=0)
    svc.start()
    answers: list[int] = []

    def request() -> None:
        with ServeClient(svc.url) as client:
            answers.append(client.request("POST", "/invocations", encode_frame(ROWS),
                                          {"Content-Type": "application/json"}).status)

    threads = [threading.Thread(target=request) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert started.wait(10)
    svc.stop()
    for thread in threads:
        thread.join(10)
    assert answers == [200, 200, 200]
    assert len(read_captures(tmp_path / "captures", "hostile")) == 3 * len(ROWS)
    with pytest.raises(OSError):
        socket.create_connection(_address(svc.url), timeout=2).close()


class _DurableWriter(CaptureWriter):
    """The capture writer in ``sync`` mode, its futures resolved (or failed) after a set delay."""

    def __init__(self, folder: Path, delay: float, fail: bool = False) -> None:
        super().__init__(folder, flush_interval=0.1, mode="sync")
        self.delay, self.fail = delay, fail

    def submit_durable(self, record):  # type: ignore[no-untyped-def, override]
        super().submit(record)
        future: Future[None] = Future()
        outcome = (future.set_exception, OSError("disk full")) if self.fail else (future.set_result, None)
        threading.Timer(self.delay, outcome[0], [outcome[1]]).start()
        return future


def test_sync_capture_answers_only_once_the_capture_is_durable(tmp_path: Path) -> None:
    with _service(tmp_path, capture=_DurableWriter(tmp_path / "a", delay=0.4)) as svc, ServeClient(svc.url) as client:
        began = time.perf_counter()
        assert client.predict(ROWS).values.shape == (3,)
        assert time.perf_counter() - began >= 0.4
    with _service(tmp_path, capture=_DurableWriter(tmp_path / "b", 0.0, fail=True)) as svc, ServeClient(svc.url) as c:
        response = c.request("POST", "/invocations", encode_frame(ROWS), {"Content-Type": "application/json"})
        assert response.status == 503 and "capture" in assert_json_error(503, response.body)["message"]


# --------------------------------------------------------------------------- TLS and binding


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "driftgate test")])
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_https_with_the_ca_file_and_refused_without(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with _service(tmp_path, tls_cert=str(cert), tls_key=str(key), token=TOKEN) as svc:
        assert svc.url.startswith("https://127.0.0.1:")
        with ServeClient(svc.url, token=TOKEN, ca_file=str(cert)) as client:
            np.testing.assert_array_equal(client.predict(ROWS).values, _predict(ROWS))
        summary = replay(svc.url, ROWS, None, token=TOKEN, ca_file=str(cert))
        assert summary["requests"] == 3 and summary["errors"] == 0
        with ServeClient(svc.url, token=TOKEN) as unverified, pytest.raises(ssl.SSLCertVerificationError):
            unverified.request("GET", "/ping")
        with pytest.raises(ConnectionError):  # plain HTTP to the HTTPS port is not answered
            raw_exchange(svc.url, http_request("GET", "/ping", b"", {}))


def test_tls_files_that_do_not_load_are_a_serve_error(tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ServeError, match=r"serve.tls_cert"):
        _service(tmp_path, tls_cert=str(bad)).start()


def test_smoke_test_over_https(tmp_path: Path, registered) -> None:  # type: ignore[no-untyped-def]
    cert, key = _self_signed(tmp_path)
    result = smoke_test(registered.uri("1"), registered.rows.head(20), registered.expected["1"][:20],
                        tracking_uri=registered.tracking_uri, tls_cert=str(cert), tls_key=str(key))
    assert result["passed"] is True, result
    assert result["url"].startswith("https://")


def _params(tmp_path: Path, serve: dict[str, object]) -> Path:
    """The CI params with these ``serve`` values, written beside the test's files."""
    import yaml

    from serve_fixtures import DATA, ROOT

    raw = yaml.safe_load((ROOT / "params" / "ci.yaml").read_text())
    raw["data"]["path"] = str(DATA)
    raw["outputs"] = {"dir": str(tmp_path / "outputs")}
    raw["serve"] = serve
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_public_binding_without_a_token_is_refused_in_one_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DRIFTGATE_TOKEN", raising=False)
    params = load_params(_params(tmp_path, {"host": "0.0.0.0", "port": 0}))
    with pytest.raises(ParamsError) as info:
        service_from_params(params, capture=False)
    message = str(info.value)
    assert "\n" not in message
    assert all(key in message for key in ("serve.host", "serve.token_env", "serve.allow_public_without_token"))
    allowed = load_params(_params(tmp_path, {"host": "0.0.0.0", "allow_public_without_token": True}))
    assert service_from_params(allowed, capture=False).host == "0.0.0.0"
    monkeypatch.setenv("DRIFTGATE_TOKEN", "secret")
    assert service_from_params(params, capture=False).token == "secret"
    with pytest.raises(ServeError, match="allow_public_without_token"):
        _service(tmp_path, host="0.0.0.0")


def test_tls_paths_are_relative_to_the_params_file(tmp_path: Path) -> None:
    params = load_params(_params(tmp_path, {"tls_cert": "certs/c.pem", "tls_key": "certs/k.pem"}))
    assert params.serve.tls_cert == str(tmp_path / "certs" / "c.pem")
    assert params.serve.tls_key == str(tmp_path / "certs" / "k.pem")
    assert service_from_params(params, capture=False).url.startswith("https://")
