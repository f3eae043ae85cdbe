"""The scoring service over real HTTP: protocol, input checks, security, alias following, CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core.errors import RegistryError, ServeError
from helpers.modeling.captures import read_captures
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.client import ServeClient
from helpers.serving.models import LoadedModel, ModelRef
from helpers.serving.protocol import encode_frame, parse_request
from helpers.serving.schema import ColumnSpec, InputError, InputSchema, check_inputs
from helpers.serving.scorer import ScoreJob, score_jobs
from helpers.serving.service import ScoringService
from helpers.serving.smoke import smoke_test
from serve_fixtures import (
    FEATURES,
    RegisteredModels,
    start_cli_server,
    stop_process,
    write_serve_params,
)

TOKEN = "test-token-123"
JSON = {"Content-Type": "application/json"}
SCHEMA = InputSchema(
    (
        ColumnSpec("hr", "long"),
        ColumnSpec("weathersit", "string"),
        ColumnSpec("temp", "double"),
    )
)


@pytest.fixture(scope="module")
def service(registered: RegisteredModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoringService]:
    """Champion v1 behind a token, capturing into a temporary folder (alias not followed)."""
    writer = CaptureWriter(tmp_path_factory.mktemp("captures"), flush_interval=0.1)
    svc = ScoringService(
        registered.uri(),
        tracking_uri=registered.tracking_uri,
        port=0,
        capture=writer,
        token=TOKEN,
        alias_poll_interval=0,
        max_body_bytes=200_000,
    )
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def client(service: ScoringService) -> Iterator[ServeClient]:
    with ServeClient(service.url, token=TOKEN) as c:
        yield c


def _post(client: ServeClient, body: bytes | str, content_type: str = "application/json") -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    response = client.request("POST", "/invocations", data, {"Content-Type": content_type})
    return response.status, response.json()


# --------------------------------------------------------------------------- the protocol


def _bodies(rows: pd.DataFrame) -> dict[str, tuple[str, str]]:
    split = rows.to_dict(orient="split", index=False)
    records = rows.to_dict(orient="records")
    return {
        "dataframe_split": (json.dumps({"dataframe_split": split}), "application/json"),
        "dataframe_split without columns": (
            json.dumps({"dataframe_split": {"data": split["data"]}}),
            "application/json",
        ),
        "dataframe_records": (json.dumps({"dataframe_records": records}), "application/json"),
        "instances as records": (json.dumps({"instances": records}), "application/json"),
        "instances as rows": (json.dumps({"instances": split["data"]}), "application/json"),
        "inputs as columns": (json.dumps({"inputs": rows.to_dict(orient="list")}), "application/json"),
        "inputs as records": (json.dumps({"inputs": records, "params": {}}), "application/json"),
        "csv": (rows.to_csv(index=False), "text/csv"),
        "json with charset": (json.dumps({"dataframe_split": split}), "application/json; charset=utf-8"),
    }


@pytest.mark.parametrize("form", list(_bodies(pd.DataFrame({"a": [1]}))))
def test_every_mlflow_input_format_gives_the_offline_predictions(
    form: str,
    client: ServeClient,
    registered: RegisteredModels,
) -> None:
    rows = registered.rows.head(7)
    body, content_type = _bodies(rows)[form]
    status, document = _post(client, body, content_type)
    assert status == 200, document
    np.testing.assert_allclose(document["predictions"], registered.expected["1"][:7], rtol=0, atol=1e-9)


def test_single_row_inputs_as_scalars(client: ServeClient, registered: RegisteredModels) -> None:
    row = registered.rows.head(1).to_dict(orient="records")[0]
    status, document = _post(client, json.dumps({"inputs": row}))
    assert status == 200
    assert document["predictions"] == pytest.approx(list(registered.expected["1"][:1]))


def test_request_id_header_is_returned_and_a_safe_client_id_is_kept(
    client: ServeClient, registered: RegisteredModels
) -> None:
    body = encode_frame(registered.rows.head(1))
    first = client.request("POST", "/invocations", body, JSON).request_id
    second = client.request("POST", "/invocations", body, JSON).request_id
    assert first and second and first != second
    mine = client.request("POST", "/invocations", body, {**JSON, "X-Request-Id": "order-42.a"})
    assert mine.request_id == "order-42.a"
    unsafe = client.request("POST", "/invocations", body, {**JSON, "X-Request-Id": "../../x y"})
    assert unsafe.request_id != "../../x y" and len(unsafe.request_id) == 32


def test_ping_version_and_health(service: ScoringService, client: ServeClient, registered: RegisteredModels) -> None:
    assert client.request("GET", "/ping").status == 200
    version = client.get_json("/version")
    assert version["model_name"] == registered.name and version["model_version"] == "1"
    client.predict(registered.rows.head(3))
    health = client.get_json("/health")
    assert health["status"] == "ok"
    assert health["model"]["direct_predict"] is True
    assert health["requests"]["predictions"] >= 1 and health["requests"]["rows_scored"] >= 3
    assert {"captured_rows", "pending_rows", "dropped_rows", "write_errors", "last_error"} <= set(health["capture"])


# --------------------------------------------------------------------------- refusing bad input


def _split_with(rows: pd.DataFrame, column: str, value: object) -> str:
    split = rows.to_dict(orient="split", index=False)
    i = split["columns"].index(column)
    split["data"][0][i] = value
    return json.dumps({"dataframe_split": split})


@pytest.mark.parametrize(
    ("make_body", "content_type", "status", "words"),
    [
        (
            lambda r: json.dumps({"dataframe_split": r.drop(columns=["hr"]).to_dict(orient="split", index=False)}),
            "application/json",
            400,
            ["missing column", "hr"],
        ),
        (lambda r: _split_with(r, "hr", "three"), "application/json", 400, ["'hr'", "long", "three"]),
        (lambda r: _split_with(r, "hr", 3.5), "application/json", 400, ["'hr'", "whole number"]),
        (lambda r: _split_with(r, "temp", "warm"), "application/json", 400, ["'temp'", "double", "warm"]),
        (lambda r: _split_with(r, "weathersit", 2), "application/json", 400, ["'weathersit'", "string"]),
        (lambda r: _split_with(r, "weathersit", None), "application/json", 400, ["'weathersit'", "missing value"]),
        (lambda r: _split_with(r, "holiday", True), "application/json", 400, ["'holiday'", "bool"]),
        (lambda r: '{"dataframe_split": ', "application/json", 400, ["not valid JSON"]),
        (lambda r: "[1, 2]", "application/json", 400, ["must be an object", "a list"]),
        (lambda r: json.dumps({"dataframe_records": [], "instances": []}), "application/json", 400, ["exactly one"]),
        (lambda r: json.dumps({"columns": ["hr"], "data": [[1]]}), "application/json", 400, ["exactly one"]),
        (
            lambda r: json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[1, 2]]}}),
            "application/json",
            400,
            ["row 0 has 2 values", "expected 10"],
        ),
        (
            lambda r: json.dumps({"dataframe_split": {"columns": FEATURES, "data": []}}),
            "application/json",
            400,
            ["no rows"],
        ),
        (lambda r: json.dumps({"dataframe_records": {"hr": 1}}), "application/json", 400, ["list of records"]),
        (lambda r: json.dumps({"inputs": {"hr": [1, 2], "temp": [1]}}), "application/json", 400, ["same length"]),
        (lambda r: 'hr,temp\n1,"unclosed', "text/csv", 400, ["CSV"]),
        (lambda r: r.to_csv(index=False), "text/plain", 415, ["Content-Type"]),
        (lambda r: r.to_csv(index=False), "text/csv; charset=latin-1", 415, ["UTF-8"]),
        (lambda r: "", "application/json", 400, ["empty"]),
    ],
    ids=[
        "missing-column",
        "string-in-long",
        "fraction-in-long",
        "string-in-double",
        "number-in-string",
        "null-in-string",
        "bool-in-long",
        "broken-json",
        "json-list",
        "two-formats",
        "mlflow1-format",
        "short-row",
        "no-rows",
        "records-not-list",
        "ragged-inputs",
        "bad-csv",
        "text-plain",
        "latin1",
        "empty",
    ],
)
def test_bad_requests_get_4xx_naming_the_problem(
    make_body,
    content_type: str,
    status: int,
    words: list[str],
    client: ServeClient,
    registered: RegisteredModels,
) -> None:
    got, document = _post(client, make_body(registered.rows.head(2)), content_type)
    assert got == status, document
    assert all(w in document["message"] for w in words), document["message"]
    assert document["error_code"]


def test_service_keeps_serving_after_errors(
    service: ScoringService, client: ServeClient, registered: RegisteredModels
) -> None:
    for _ in range(3):
        assert _post(client, "{oops")[0] == 400
    assert client.predict(registered.rows.head(2)).values.shape == (2,)
    assert service.health()["requests"]["server_errors"] == 0


def test_unknown_path_and_wrong_method(client: ServeClient) -> None:
    assert client.request("GET", "/nothing").status == 404
    assert client.request("GET", "/invocations").status == 405
    assert client.request("DELETE", "/health").status == 405


def test_extra_columns_are_ignored(client: ServeClient, registered: RegisteredModels) -> None:
    rows = registered.rows.head(3).assign(note="x", casual=1)
    assert np.allclose(client.predict(rows).values, registered.expected["1"][:3])


# --------------------------------------------------------------------------- security


def test_token_required_everywhere_but_ping(service: ScoringService, registered: RegisteredModels) -> None:
    body = encode_frame(registered.rows.head(1))
    for token in (None, "wrong"):
        with ServeClient(service.url, token=token) as c:
            assert c.request("GET", "/ping").status == 200
            for method, path in (
                ("GET", "/health"),
                ("GET", "/version"),
                ("POST", "/invocations"),
                ("POST", "/feedback"),
            ):
                response = c.request(method, path, body if method == "POST" else None, JSON)
                assert response.status == 401, (token, path)
                assert response.headers["www-authenticate"].startswith("Bearer")


def test_body_size_limit(client: ServeClient, registered: RegisteredModels) -> None:
    big = pd.concat([registered.rows] * 20, ignore_index=True)  # ~4000 rows, above the 200 kB limit
    status, document = _post(client, encode_frame(big))
    assert status == 413 and "limit" in document["message"]
    assert client.predict(registered.rows.head(1)).values.shape == (1,)  # the connection recovers


def test_binds_loopback_by_default(registered: RegisteredModels) -> None:
    svc = ScoringService(registered.uri(), tracking_uri=registered.tracking_uri, port=0, alias_poll_interval=0)
    with svc:
        assert svc.url.startswith("http://127.0.0.1:")


def test_port_in_use_is_a_serve_error(service: ScoringService, registered: RegisteredModels) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    svc = ScoringService(registered.uri(), tracking_uri=registered.tracking_uri, port=port, alias_poll_interval=0)
    with pytest.raises(ServeError, match="cannot listen"):
        svc.start()


def test_unknown_alias_is_a_registry_error(registered: RegisteredModels) -> None:
    svc = ScoringService(registered.uri("nobody"), tracking_uri=registered.tracking_uri, port=0)
    with pytest.raises(RegistryError, match="alias 'nobody'"):
        svc.start()


# --------------------------------------------------------------------------- models and batching


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/bike@champion", ModelRef("bike", None, "champion")),
        ("models:/bike/3", ModelRef("bike", "3", None)),
        ("runs:/abc/model", None),
        ("/tmp/model", None),
    ],
)
def test_model_ref_parse(uri: str, ref: ModelRef | None) -> None:
    assert ModelRef.parse(uri) == ref


def test_follows_champion_without_dropping_requests(registered: RegisteredModels, tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path / "captures", flush_interval=0.1)
    svc = ScoringService(
        registered.uri(), tracking_uri=registered.tracking_uri, port=0, capture=writer, alias_poll_interval=0.2
    )
    rows = registered.rows.head(5)
    v1, v2 = registered.expected["1"][:5], registered.expected["2"][:5]
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def traffic() -> None:
        with ServeClient(svc.url) as c:
            while not stop.is_set():
                response = c.request("POST", "/invocations", encode_frame(rows), JSON)
                values = np.asarray(response.json().get("predictions", []))
                which = "1" if np.allclose(values, v1) else "2" if np.allclose(values, v2) else "?"
                results.append((response.status, which))

    with svc:
        threads = [threading.Thread(target=traffic) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            registered.set_champion("2")
            deadline = threading.Event()
            for _ in range(200):  # wait (at most ~20 s) for the poller to switch
                if svc.model.version == "2":
                    break
                deadline.wait(0.1)
            deadline.wait(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
            registered.set_champion("1")
        assert svc.model.version == "2"
        assert svc.health()["alias"]["switches"] == 1
    statuses = {s for s, _ in results}
    versions = [w for _, w in results]
    assert statuses == {200}
    assert "?" not in versions and versions[-1] == "2"
    captured = read_captures(tmp_path / "captures", registered.name)
    assert len(captured) == 5 * len(results)  # nothing lost across the switch
    assert set(captured["model_version"]) <= {"1", "2"} and "2" in set(captured["model_version"])


def _job(model: LoadedModel, rows: pd.DataFrame, i: int) -> ScoreJob:
    return ScoreJob(model, encode_frame(rows), "application/json", f"r{i}", time.time(), time.perf_counter())


def test_stacked_and_single_scoring_agree(service: ScoringService, registered: RegisteredModels) -> None:
    model = service.model
    slices = [registered.rows.iloc[i : i + 1 + i % 3] for i in range(40)]
    jobs = [_job(model, rows, i) for i, rows in enumerate(slices)]
    jobs.insert(5, ScoreJob(model, b"{broken", "application/json", "bad", time.time(), time.perf_counter()))
    calls = score_jobs(jobs, max_rows=7)
    assert calls < 40 / 2  # requests shared model calls
    assert isinstance(jobs.pop(5).error, InputError)
    for job, rows in zip(jobs, slices, strict=True):
        assert job.error is None
        got = json.loads(job.payload)["predictions"]
        np.testing.assert_array_equal(got, model.predict(check_inputs(rows, model.schema)))


def test_a_request_the_model_refuses_does_not_fail_its_neighbours() -> None:
    def picky(frame: pd.DataFrame) -> np.ndarray:
        if (frame["hr"] < 0).any():
            raise ValueError("negative hour")
        return frame["hr"].to_numpy() * 2.0

    schema = InputSchema((ColumnSpec("hr", "long"),))
    model = LoadedModel("models:/m/1", "m", "1", schema, picky, True, "test")
    jobs = [_job(model, pd.DataFrame({"hr": [h, h + 1]}), h) for h in (1, -5, 3)]
    assert score_jobs(jobs, max_rows=100) == 1
    assert jobs[1].error is not None and "negative hour" in str(jobs[1].error)
    assert json.loads(jobs[0].payload)["predictions"] == [2.0, 4.0]
    assert json.loads(jobs[2].payload)["predictions"] == [6.0, 8.0]


def test_concurrent_requests_get_their_own_predictions(service: ScoringService, registered: RegisteredModels) -> None:
    failures: list[str] = []

    def traffic(k: int) -> None:
        with ServeClient(service.url, token=TOKEN) as c:
            for i in range(k, 120, 6):
                rows = registered.rows.iloc[i : i + 1 + i % 4]
                got = c.predict(rows).values
                if not np.array_equal(got, registered.expected["1"][i : i + 1 + i % 4]):
                    failures.append(f"request {i}")

    threads = [threading.Thread(target=traffic, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert service.health()["batching"]["requests"] >= 120


# --------------------------------------------------------------------------- input checks (no server)


@pytest.mark.parametrize(
    ("frame", "dtypes"),
    [
        (pd.DataFrame({"hr": [1], "weathersit": ["clear"], "temp": [0.5]}), ["int64", "str", "float64"]),
        (pd.DataFrame({"temp": [1], "hr": [2.0], "weathersit": ["x"]}), ["int64", "str", "float64"]),
        (
            pd.DataFrame({"hr": [1], "weathersit": pd.Series(["x"], dtype=object), "temp": [np.nan]}),
            ["int64", "object", "float64"],
        ),
    ],
)
def test_check_inputs_orders_and_converts(frame: pd.DataFrame, dtypes: list[str]) -> None:
    out = check_inputs(frame, SCHEMA)
    assert list(out.columns) == ["hr", "weathersit", "temp"]
    assert [str(d) for d in out.dtypes] == dtypes


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"hr": [1], "temp": [0.5]}), "missing column(s): weathersit"),
        (
            pd.DataFrame({"hr": [1, np.nan], "weathersit": ["a", "b"], "temp": [0.5, 1]}),
            "'hr' (long) has a missing value in row 1",
        ),
        (
            pd.DataFrame({"hr": [1], "weathersit": ["a"], "temp": [True]}),
            "'temp' expects double values; row 0 has bool True",
        ),
        (
            pd.DataFrame({"hr": [[1]], "weathersit": ["a"], "temp": [1.0]}),
            "'hr' expects long values; row 0 has list [1]",
        ),
        (
            pd.DataFrame({"hr": np.array([2**63], dtype=np.uint64), "weathersit": ["a"], "temp": [1.0]}),
            "'hr' expects long values; row 0 has int 9223372036854775808",
        ),
    ],
)
def test_check_inputs_refuses(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InputError) as info:
        check_inputs(frame, SCHEMA)
    assert message in info.value.message


def test_csv_reads_string_columns_as_strings() -> None:
    schema = InputSchema((ColumnSpec("code", "string"), ColumnSpec("x", "double")))
    frame = check_inputs(parse_request(b"code,x\n001,1\n002,2\n", "text/csv", schema), schema)
    assert frame["code"].tolist() == ["001", "002"]


# --------------------------------------------------------------------------- smoke test helper


def test_smoke_test_passes_for_matching_predictions(registered: RegisteredModels) -> None:
    result = smoke_test(
        registered.uri("1"), registered.rows, registered.expected["1"], tracking_uri=registered.tracking_uri
    )
    assert result["passed"] is True, result
    assert result["max_abs_diff"] == 0.0 and result["n_rows"] == len(registered.rows)
    assert result["captured_rows"] == len(registered.rows)
    assert all(result["checks"].values())
    assert result["url"].startswith("http://127.0.0.1:")
    json.dumps(result)  # JSON-ready


def test_smoke_test_fails_on_different_predictions(registered: RegisteredModels) -> None:
    result = smoke_test(
        registered.uri("2"), registered.rows, registered.expected["1"], tracking_uri=registered.tracking_uri
    )
    assert result["passed"] is False
    assert "differ" in result["reason"] and result["max_abs_diff"] > 1e-6


def test_smoke_test_reports_a_model_that_does_not_load(registered: RegisteredModels) -> None:
    result = smoke_test(
        registered.uri("99"), registered.rows, registered.expected["1"], tracking_uri=registered.tracking_uri
    )
    assert result["passed"] is False and "did not start" in result["reason"]
    json.dumps(result)


# --------------------------------------------------------------------------- the CLI


@pytest.mark.slow  # starts another driftgate process
def test_cli_serve_answers_and_stops_gracefully_on_sigterm(registered: RegisteredModels, tmp_path: Path) -> None:
    params = write_serve_params(tmp_path, registered)
    proc, url = start_cli_server(params, env={"DRIFTGATE_TOKEN": TOKEN})
    try:
        with ServeClient(url, token=TOKEN) as c:
            ids = [c.predict(registered.rows.iloc[i : i + 2]).request_id for i in range(0, 20, 2)]
            assert c.get_json("/version")["model_version"] == "1"
    finally:
        code, out, err = stop_process(proc)
    assert code == 0, err
    assert "20 rows captured" in out
    captured = read_captures(tmp_path / "outputs" / "captures", registered.name)
    assert sorted(set(captured["request_id"])) == sorted(ids)


@pytest.mark.slow  # starts another driftgate process
def test_cli_serve_reports_a_bad_model_in_one_line(registered: RegisteredModels, tmp_path: Path) -> None:
    import subprocess

    from serve_fixtures import cli_command

    params = write_serve_params(tmp_path, registered)
    done = subprocess.run(
        cli_command("serve", "--params", str(params), "--model", "models:/no-such-model@champion"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("driftgate: error: model registry") and "Traceback" not in done.stderr
