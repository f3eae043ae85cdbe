"""Shadow and canary versions in the scoring service, over real HTTP with two registered versions.

Version 1 is champion, version 2 predicts differently (fewer, larger boosting steps); a third
model, registered under its own name, needs a column requests never send (``mnth``), so every
request it shadows fails its input check.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core.config import load_params
from helpers.core.errors import ServeError
from helpers.modeling.captures import read_captures
from helpers.serving.canary import session_point
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.client import ServeClient
from helpers.serving.configure import service_from_params
from helpers.serving.models import FollowedModel, variant_uri
from helpers.serving.protocol import encode_frame
from helpers.serving.scorer import ScoreJob
from helpers.serving.service import ScoringService
from helpers.serving.shadow import Shadow
from serve_fixtures import (
    DATA,
    FEATURES,
    TARGET,
    RegisteredModels,
    _tracking,
    log_sklearn_version,
    write_serve_params,
)

JSON = {"Content-Type": "application/json"}
BROKEN_NAME = "bike-shadow-broken"


@pytest.fixture(scope="module")
def broken_uri(registered: RegisteredModels) -> str:
    """A model (own name, same store) whose signature needs ``mnth``, which requests never carry."""
    import warnings

    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frame = pd.read_csv(DATA).iloc[:2000]
    columns = [*FEATURES, "mnth"]
    categorical = ["weathersit", "mnth"]
    prep = ColumnTransformer(
        [("cat", OrdinalEncoder(), categorical), ("num", "passthrough", [c for c in columns if c not in categorical])]
    )
    model = Pipeline([("prep", prep), ("model", HistGradientBoostingRegressor(max_iter=5))])
    model.fit(frame[columns], frame[TARGET])
    with _tracking(registered.tracking_uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        version = log_sklearn_version(model, frame[columns].head(5), BROKEN_NAME)
    return f"models:/{BROKEN_NAME}/{version}"


def _service(registered: RegisteredModels, folder: Path | None, **variants: object) -> ScoringService:
    writer = CaptureWriter(folder, flush_interval=0.1) if folder is not None else None
    return ScoringService(
        registered.uri(), tracking_uri=registered.tracking_uri, port=0, capture=writer, alias_poll_interval=0,
        **variants,  # type: ignore[arg-type]
    )


def _slices(registered: RegisteredModels, n: int, size: int = 5) -> list[tuple[int, pd.DataFrame]]:
    """``n`` requests of ``size`` rows, cycling through the held rows: (first row, frame)."""
    starts = [(i * size) % (len(registered.rows) - size) for i in range(n)]
    return [(s, registered.rows.iloc[s : s + size]) for s in starts]


def _send_concurrently(url: str, requests: list[tuple[str, bytes, dict[str, str]]], clients: int = 4) -> dict:
    """POST the (request id, body, headers) list from ``clients`` threads; id -> response."""
    answers: dict = {}
    lock = threading.Lock()

    def run(k: int) -> None:
        with ServeClient(url) as client:
            for request_id, body, headers in requests[k::clients]:
                response = client.request("POST", "/invocations", body, {**JSON, "X-Request-Id": request_id, **headers})
                with lock:
                    answers[request_id] = response

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


# --------------------------------------------------------------------------- shadow


def test_shadow_scores_every_answered_request_and_captures_it(registered: RegisteredModels, tmp_path: Path) -> None:
    requests = _slices(registered, 60)
    svc = _service(registered, tmp_path / "captures", shadow="2")
    with svc:
        answers = _send_concurrently(
            svc.url, [(f"req-{i:03d}", encode_frame(frame), {}) for i, (_, frame) in enumerate(requests)]
        )
    health = svc.health()  # after a graceful stop, which lets the shadow's process score what it was handed
    for i, (start, _) in enumerate(requests):
        response = answers[f"req-{i:03d}"]
        assert response.status == 200
        assert response.headers["x-model-version"] == "1"
        np.testing.assert_allclose(response.json()["predictions"], registered.expected["1"][start : start + 5])
    shadow = health["shadow"]
    assert (shadow["version"], shadow["scored"], shadow["errors"], shadow["dropped"]) == ("2", 60, 0, 0)
    assert shadow["model_calls"] <= 60 and health["status"] == "ok"
    captured = read_captures(tmp_path / "captures", registered.name, roles=None)
    assert len(read_captures(tmp_path / "captures", registered.name)) == 60 * 5  # readers keep the champion's
    for role, version in (("champion", "1"), ("shadow", "2")):
        expected = registered.expected[version]
        rows = captured[captured["role"] == role]
        assert set(rows["model_version"]) == {version}
        assert sorted(set(rows["request_id"])) == sorted(answers)  # every champion request has its shadow
        for i, (start, _) in enumerate(requests):
            got = rows[rows["request_id"] == f"req-{i:03d}"].sort_values("row")["prediction"].to_numpy()
            np.testing.assert_allclose(got, expected[start : start + 5])  # the version's offline predictions


def test_a_failing_shadow_never_fails_the_answer_and_is_counted(
    registered: RegisteredModels, broken_uri: str, tmp_path: Path
) -> None:
    requests = _slices(registered, 12)
    svc = _service(registered, tmp_path / "captures", shadow=broken_uri)
    with svc, ServeClient(svc.url) as client:
        for start, frame in requests:
            prediction = client.predict(frame)
            np.testing.assert_allclose(prediction.values, registered.expected["1"][start : start + 5])
    health = svc.health()  # after the graceful stop: every shadowed request is counted
    assert health["requests"]["predictions"] == 12 and health["requests"]["server_errors"] == 0
    assert (health["shadow"]["scored"], health["shadow"]["errors"], health["shadow"]["dropped"]) == (0, 12, 0)
    assert "mnth" in health["shadow"]["last_error"]
    assert health["status"] == "ok"  # the champion's answers are fine
    captured = read_captures(tmp_path / "captures", registered.name, roles=None)
    assert set(captured["role"]) == {"champion"} and len(captured) == 12 * 5


def _answered_job(registered: RegisteredModels, i: int) -> ScoreJob:
    frame = registered.rows.iloc[i : i + 1]
    return ScoreJob(None, encode_frame(frame), "application/json", f"q{i}", time.time(), time.perf_counter())  # type: ignore[arg-type]


def test_a_full_shadow_queue_drops_requests_without_blocking(registered: RegisteredModels, tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path / "captures", flush_interval=0.1).start()
    shadow = Shadow(FollowedModel(registered.uri("2"), registered.tracking_uri), writer, max_queued=2, linger=0)
    shadow.offer([_answered_job(registered, i) for i in range(5)])  # before start: 2 wait, 3 dropped
    stats = shadow.stats()
    assert (stats["queued"], stats["dropped"], stats["scored"]) == (2, 3, 0)
    shadow.start()
    shadow.stop()  # hands the two waiting requests over, lets them be scored and captured
    writer.close()
    stats = shadow.stats()
    assert (stats["scored"], stats["dropped"], stats["queued"], stats["errors"]) == (2, 3, 0, 0)
    captured = read_captures(tmp_path / "captures", registered.name, roles=None)
    assert sorted(captured["request_id"]) == ["q0", "q1"] and set(captured["role"]) == {"shadow"}
    assert set(captured["model_version"]) == {"2"}
    np.testing.assert_allclose(captured.sort_values("request_id")["prediction"], registered.expected["2"][:2])


def test_the_shadow_process_leaves_sigterm_to_the_service(registered: RegisteredModels, tmp_path: Path) -> None:
    """``docker stop`` or ``kill -- -PGID`` signals the whole group: the shadow must still score
    what the service hands over before it stops gracefully."""
    import os
    import signal

    svc = _service(registered, tmp_path / "captures", shadow="2")
    with svc, ServeClient(svc.url) as client:
        assert svc.shadow is not None and svc.shadow.pid is not None
        deadline = time.monotonic() + 120
        client.predict(registered.rows.head(2))
        while svc.health()["shadow"]["scored"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # once it has scored, the process runs its main loop, signals set
        os.kill(svc.shadow.pid, signal.SIGTERM)
        for _, frame in _slices(registered, 6):
            client.predict(frame)
    health = svc.health()
    assert health["shadow"]["scored"] == 7 and health["shadow"]["dropped"] == 0
    assert health["shadow"]["last_error"] is None
    captured = read_captures(tmp_path / "captures", registered.name, roles=None)
    assert (captured["role"] == "shadow").sum() == 2 + 6 * 5


def test_a_program_that_exits_without_stopping_its_shadow_ends_it(registered: RegisteredModels) -> None:
    import os
    import subprocess
    import sys

    script = (  # start a shadow, wait until its process has handled a request (signals set), exit
        "import time\n"
        "from helpers.serving.models import FollowedModel\n"
        "from helpers.serving.scorer import ScoreJob\n"
        "from helpers.serving.shadow import Shadow\n"
        f"shadow = Shadow(FollowedModel({registered.uri('2')!r}, {registered.tracking_uri!r})).start()\n"
        "shadow.offer([ScoreJob(None, b'{}', 'application/json', 'r1', time.time(), time.perf_counter())])\n"
        "deadline = time.monotonic() + 120\n"
        "while shadow.stats()['errors'] < 1 and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print(shadow.pid, shadow.stats()['errors'], flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    pid, handled = map(int, done.stdout.split())
    assert handled == 1  # the process ran its main loop (a body of "{}" is an input error)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the shadow process {pid} outlived its program")


def test_a_dead_shadow_process_is_reported_and_never_fails_the_answers(
    registered: RegisteredModels, tmp_path: Path
) -> None:
    import os
    import signal

    svc = _service(registered, tmp_path / "captures", shadow="2")
    with svc, ServeClient(svc.url) as client:
        client.predict(registered.rows.head(3))
        deadline = time.monotonic() + 120
        while svc.health()["shadow"]["scored"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.shadow is not None and svc.shadow.pid is not None
        os.kill(svc.shadow.pid, signal.SIGKILL)
        while svc.health()["shadow"]["process"]["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        for start, frame in _slices(registered, 4):
            np.testing.assert_allclose(client.predict(frame).values, registered.expected["1"][start : start + 5])
        health = svc.health()
    shadow = health["shadow"]
    assert shadow["process"]["running"] is False and "exited unexpectedly" in shadow["last_error"]
    assert (shadow["scored"], shadow["dropped"]) == (1, 4)
    assert health["requests"]["predictions"] == 5 and health["requests"]["server_errors"] == 0


def test_shadow_follows_its_alias(registered: RegisteredModels) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registered.tracking_uri, registry_uri=registered.tracking_uri)
    client.set_registered_model_alias(registered.name, "shadow-test", "2")
    try:
        svc = _service(registered, None, shadow="shadow-test")
        with svc:
            assert svc.health()["shadow"]["version"] == "2"
            client.set_registered_model_alias(registered.name, "shadow-test", "1")
            assert svc.check_variants() == ["shadow"]
            assert svc.health()["shadow"]["version"] == "1" and svc.check_variants() == []
    finally:
        client.delete_registered_model_alias(registered.name, "shadow-test")


def test_variant_names_and_load_errors(registered: RegisteredModels) -> None:
    assert variant_uri("models:/m@champion", "challenger", "serve.shadow") == "models:/m@challenger"
    assert variant_uri("models:/m/1", "models:/other/4", "serve.shadow") == "models:/other/4"
    with pytest.raises(ServeError, match="serve.shadow 'challenger' needs a registered champion"):
        variant_uri("/some/path/model", "challenger", "serve.shadow")
    with pytest.raises(ServeError, match="serve.canary.alias: cannot load models:/bike-serve-test@nowhere"):
        _service(registered, None, canary="nowhere").start()


# --------------------------------------------------------------------------- canary


def _binomial_bounds(n: int, p: float, sigmas: float = 4.5) -> tuple[float, float]:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def test_canary_answers_its_share_and_says_which_version_answered(registered: RegisteredModels, tmp_path: Path) -> None:
    requests = _slices(registered, 400, size=1)
    svc = _service(registered, tmp_path / "captures", canary="2", canary_share=0.3)
    with svc:
        answers = _send_concurrently(
            svc.url, [(f"c-{i:03d}", encode_frame(frame), {}) for i, (_, frame) in enumerate(requests)]
        )
        health = svc.health()
    versions = {rid: r.headers["x-model-version"] for rid, r in answers.items()}
    canary = sum(v == "2" for v in versions.values())
    low, high = _binomial_bounds(400, 0.3)
    assert low <= canary <= high, canary
    assert set(versions.values()) == {"1", "2"}
    assert health["canary"]["version"] == "2" and health["canary"]["requests"] == canary
    for i, (start, _) in enumerate(requests):  # each answer is the named version's offline prediction
        version = versions[f"c-{i:03d}"]
        np.testing.assert_allclose(answers[f"c-{i:03d}"].json()["predictions"], registered.expected[version][start])
    captured = read_captures(tmp_path / "captures", registered.name, roles=None).set_index("request_id")
    assert len(captured) == 400
    for request_id, version in versions.items():
        assert captured.loc[request_id, "model_version"] == version
        assert captured.loc[request_id, "role"] == ("canary" if version == "2" else "champion")


def test_sticky_sessions_stay_on_one_version(registered: RegisteredModels) -> None:
    sessions = [f"user-{k}" for k in range(60)]
    frame = registered.rows.head(2)
    svc = _service(registered, None, canary="2", canary_share=0.3, sticky_header="X-Session-Id")
    seen: dict[str, set[str]] = {s: set() for s in sessions}
    with svc, ServeClient(svc.url) as client:
        for _ in range(4):
            for session in sessions:
                headers = {**JSON, "X-Session-Id": session}
                response = client.request("POST", "/invocations", encode_frame(frame), headers)
                seen[session].add(response.headers["x-model-version"])
    assert all(len(versions) == 1 for versions in seen.values())
    for session, versions in seen.items():  # the assignment is the session's hash point against the share
        assert versions == {"2" if session_point(session) < 0.3 else "1"}
    assert {v for versions in seen.values() for v in versions} == {"1", "2"}


def test_shadow_scores_only_what_the_champion_answered_beside_a_canary(
    registered: RegisteredModels, tmp_path: Path
) -> None:
    requests = _slices(registered, 80, size=2)
    svc = _service(registered, tmp_path / "captures", shadow="2", canary="2", canary_share=0.5)
    with svc:
        answers = _send_concurrently(
            svc.url, [(f"s-{i:03d}", encode_frame(frame), {}) for i, (_, frame) in enumerate(requests)]
        )
    captured = read_captures(tmp_path / "captures", registered.name, roles=None)
    by_role = {role: set(rows["request_id"]) for role, rows in captured.groupby("role")}
    champion = {rid for rid, r in answers.items() if r.headers["x-model-version"] == "1"}
    assert by_role["champion"] == champion and by_role["shadow"] == champion
    assert by_role["canary"] == set(answers) - champion and champion and by_role["canary"]


def test_params_configure_shadow_and_canary(registered: RegisteredModels, tmp_path: Path) -> None:
    path = write_serve_params(
        tmp_path, registered, shadow="2", shadow_queue=7,
        canary={"alias": "2", "share": 0.25, "sticky_header": "X-User"},
    )
    svc = service_from_params(load_params(path), capture=False)
    with svc:
        health = svc.health()
    assert (health["shadow"]["version"], health["shadow"]["max_queued"]) == ("2", 7)
    assert (health["canary"]["version"], health["canary"]["share"], health["canary"]["sticky_header"]) == (
        "2",
        0.25,
        "X-User",
    )
    assert svc.session_header == "X-User"


@pytest.fixture(autouse=True)
def _champion_is_version_one(registered: RegisteredModels) -> Iterator[None]:
    registered.set_champion("1")
    yield
