"""Gated releases against a real SQLite store and a real ``mlflow server`` on 127.0.0.1:
the demo's two outcomes, decisions recorded as tags and pages, approval, rollback, status,
two racing release processes, and the bad inputs of issue 4."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from helpers.core import catalogue
from helpers.core.config import load_params
from helpers.core.errors import RegistryError
from helpers.registry import approval, gates, release, rollback, status, version_test
from helpers.registry import store as registry
from helpers.registry.gates import GateResult
from helpers.reports.release_page import write_release_page
from release_fixtures import (
    LATEST,
    RECENT,
    STALE,
    Store,
    aliases,
    free_port,
    gate_and_release,
    mlflow_server,
    reload_smoke,
    sqlite_template,
    train_version,
)
from support import ROOT


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    """One real `mlflow server` (SQLite backend) for the module's server-side tests."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def sqlite(template: Path) -> Store:
    """SQLite under the test's outputs folder."""
    return Store(None, template)


@pytest.fixture(params=["sqlite", "server"])
def store(request: pytest.FixtureRequest, template: Path) -> Store:
    """The embedded SQLite store, then the real server."""
    return Store(None, template) if request.param == "sqlite" else Store(request.getfixturevalue("server_url"))


def _name() -> str:
    return f"bike-{uuid.uuid4().hex[:8]}"  # each test its own model, also on the shared server


# --------------------------------------------------------------------------- the demo


def test_demo_stale_model_is_blocked_and_retrained_model_promoted(tmp_path: Path, sqlite: Store) -> None:
    # params/demo_*.yaml as shipped (windows, gates), with ci.yaml's smaller model for speed
    name, small = _name(), {"model.hyperparameters": {"max_iter": 60, "learning_rate": 0.15, "random_state": 0}}
    stale_file, retrain_file = (sqlite.params(tmp_path, name, base=f"demo_{w}.yaml", file_name=f"{w}.yaml", **small)
                                for w in ("stale", "retrain"))
    stale_params, retrain_params = load_params(stale_file), load_params(retrain_file)
    stale_window = (stale_params.windows.baseline.start, stale_params.windows.baseline.end)
    fresh_window = (retrain_params.windows.baseline.start, retrain_params.windows.baseline.end)

    first = gate_and_release(train_version(stale_file, stale_window), page=tmp_path / "r1.html")
    assert first.decision == "blocked" and first.champion_after is None
    failed = {r.gate for r in first.results if not r.passed}
    assert failed == {"metric rmse (current rows)", "metric r2 (current rows)"}
    assert "no champion yet: first release" in next(r.reason for r in first.results if r.gate == "beats champion")

    second = gate_and_release(train_version(retrain_file, fresh_window), page=tmp_path / "r2.html")
    assert second.decision == "promoted", second.reason
    assert second.reason.startswith("first release (no champion yet), judged by the absolute gates only")
    assert aliases(retrain_params)["champion"] == second.version

    third = gate_and_release(train_version(stale_file, stale_window), page=tmp_path / "r3.html")
    assert third.decision == "blocked" and third.champion_after == second.version
    champion = next(r for r in third.results if r.gate == "beats champion")
    assert not champion.passed and f"vs champion v{second.version}" in champion.reason
    assert third.test.champion["rmse"] < third.test.challenger["rmse"]  # side by side, same rows
    assert third.test.n_rows == 744 and third.test.rows == "current"

    tags = registry.get_version(registry.connect(stale_params), name, third.version).tags
    assert tags[catalogue.DECISION] == "blocked" and tags[catalogue.CHAMPION_BEFORE] == second.version
    assert [g["gate"] for g in json.loads(tags[catalogue.GATES])] == [r.gate for r in third.results]
    assert json.loads(tags[catalogue.VERSION_TEST])["champion_version"] == second.version
    assert tags[catalogue.RELEASE_PAGE] == str(tmp_path / "r3.html")

    html = write_release_page(tmp_path / "r3.html", third, check=GateResult("champion check", True, "ok")).read_text()
    assert "BLOCKED" in html and f"<th>champion v{second.version}</th>" in html and "Champion check" in html
    assert all(r.gate in html for r in third.results) and "driftgate.data_sha256" in html


def test_demo_params_files_differ_from_default_only_where_documented() -> None:
    default = yaml.safe_load((ROOT / "params" / "default.yaml").read_text())
    for which, start in (("stale", "2011-01-01"), ("retrain", "2011-04-01")):
        demo = yaml.safe_load((ROOT / "params" / f"demo_{which}.yaml").read_text())
        for section in ("data", "split", "model", "validation", "drift", "outputs"):
            assert demo[section] == default[section], (which, section)
        assert demo["windows"]["current"] == default["windows"]["current"]
        assert demo["windows"]["baseline"]["start"] == start
        assert demo["mlflow"]["model_name"] == "bike-demand-demo"
        assert demo["gates"]["current_metrics"] == {"rmse": {"max": 70}, "r2": {"min": 0.75}}


# --------------------------------------------------------------------------- decisions, page, rollback


def test_release_moves_champion_keeps_previous_and_rolls_back(tmp_path: Path, server_url: str) -> None:
    name = _name()  # on the real server (test_ops_cli does approve and rollback on SQLite)
    params_file = Store(server_url).params(tmp_path, name)
    versions = []
    for window in (STALE, RECENT, LATEST):  # each better than the last on July
        outcome = gate_and_release(train_version(params_file, window), page=tmp_path / f"{window[0]}.html")
        assert outcome.decision == "promoted", outcome.reason
        versions.append(outcome.version)
    v1, v2, v3 = versions
    params = load_params(params_file)
    assert aliases(params) == {"champion": v3, "challenger": None, "previous": v2}
    assert outcome.champion_before == v2 and outcome.previous == v2

    done = rollback.rollback(params, reason="July complaints", by="ops")
    assert (done.from_version, done.to_version, done.previous) == (v3, v2, v1)
    assert aliases(params) == {"champion": v2, "challenger": None, "previous": v1}
    tags = registry.get_version(registry.connect(params), name, v3).tags
    assert tags[catalogue.DECISION] == rollback.ROLLED_BACK and tags[catalogue.ROLLBACK_REASON] == "July complaints"
    assert tags[catalogue.ROLLED_BACK_TO] == v2 and tags[catalogue.ROLLED_BACK_BY] == "ops"
    assert "July complaints" in Path(done.page).read_text()

    again = rollback.rollback(params, reason="")
    assert (again.to_version, again.previous, again.reason) == (v1, None, "no reason given")
    with pytest.raises(RegistryError, match="no previous version"):
        rollback.rollback(params)
    assert aliases(params)["champion"] == v1  # a refused rollback changes nothing

    info = status.status(params)
    assert info["aliases"]["champion"] == v1 and info["last_rollback"]["from_version"] == v2
    text = status.status_text(info)
    assert f"champion   v{v1}  promoted" in text and "baseline 2011-01-01..2011-05-01" in text
    assert "test_rmse" in text and "previous   -" in text


# --------------------------------------------------------------------------- approval


def test_approval_waits_as_challenger_then_approve_releases(tmp_path: Path, sqlite: Store) -> None:
    name = _name()
    params_file = sqlite.params(tmp_path, name, **{"gates.require_approval": True})
    params = load_params(params_file)
    waiting = gate_and_release(train_version(params_file, STALE))
    assert waiting.decision == "waiting" and waiting.champion_after is None
    assert f"waiting for `driftgate approve {waiting.version}`" in waiting.reason
    assert aliases(params) == {"champion": None, "challenger": waiting.version, "previous": None}
    assert next(r for r in waiting.results if r.gate == gates.APPROVAL).status == "WAIT"

    with pytest.raises(RegistryError, match="has no version 99"):
        approval.approve(params, "99")
    approved = approval.approve(params, waiting.version, by="reviewer", note="looks fine")
    assert approved.decision == "promoted" and approved.champion_after == waiting.version
    assert "approved by reviewer" in next(r.reason for r in approved.results if r.gate == gates.APPROVAL)
    tags = registry.get_version(registry.connect(params), name, waiting.version).tags
    assert tags[catalogue.APPROVED_BY] == "reviewer" and tags[catalogue.APPROVAL_NOTE] == "looks fine"
    assert Path(approved.page).parent == params.outputs_dir / "releases" and Path(approved.page).is_file()
    with pytest.raises(RegistryError, match="not waiting for approval: it was promoted"):
        approval.approve(params, waiting.version)

    # two versions wait against the same champion; approving one changes the champion the other
    # was compared with, so the second approval compares again and loses
    recent = gate_and_release(train_version(params_file, RECENT))
    latest = gate_and_release(train_version(params_file, LATEST))
    assert recent.decision == latest.decision == "waiting"
    assert approval.approve(params, latest.version).decision == "promoted"
    late = approval.approve(params, recent.version)
    assert late.decision == "blocked" and late.rechecked_from == waiting.version
    assert "compared again with the new champion" in late.reason
    assert aliases(params)["champion"] == latest.version


def test_approving_a_blocked_or_ungated_version_is_refused(tmp_path: Path, sqlite: Store) -> None:
    params_file = sqlite.params(tmp_path, _name(), **{"gates.require_approval": True,
                                                      "gates.current_metrics": {"rmse": {"max": 50}}})
    params = load_params(params_file)
    blocked = gate_and_release(train_version(params_file, STALE))
    assert blocked.decision == "blocked"  # failed gates win over a missing approval
    with pytest.raises(RegistryError, match="not waiting for approval: it was blocked"):
        approval.approve(params, blocked.version)
    ungated = train_version(params_file, LATEST)
    with pytest.raises(RegistryError, match="no release decision yet"):
        approval.approve(params, ungated.version)
    with pytest.raises(RegistryError, match="not a model version number"):
        approval.approve(params, "latest")
    assert aliases(params)["champion"] is None


def _capture_with_feedback(params, rows, labelled: int) -> None:
    """What the scoring service writes: the rows as one scored request, then feedback for the
    first ``labelled`` of them."""
    import numpy as np

    from helpers.core.paths import capture_dir_for
    from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
    from helpers.serving.capture_store import CaptureWriter

    name, features = params.mlflow.model_name, rows[params.data.features].reset_index(drop=True)
    with CaptureWriter(capture_dir_for(params)) as writer:
        writer.submit(CaptureRecord.from_frame("req-1", features, np.zeros(len(features)), model_name=name,
                                               model_version="1", latency_ms=1.0))
        writer.submit(FeedbackRecord(name, ["req-1"] * labelled, list(range(labelled)),
                                     rows[params.data.target].iloc[:labelled].tolist()))


def test_versions_can_be_compared_on_captured_rows_with_feedback(tmp_path: Path, sqlite: Store) -> None:
    from helpers.core.errors import DataError
    from helpers.modeling import data as data_mod

    params_file = sqlite.params(tmp_path, _name(), **{"gates.champion.compare_on": "captured",
                                                      "gates.champion.min_captured_rows": 200})
    params = load_params(params_file)
    july = data_mod.window(data_mod.check_params_against_data(params), params.windows.current)
    stale = train_version(params_file, STALE)
    with pytest.raises(DataError, match="only 0 captured rows with feedback in the last 30 days"):
        gate_and_release(stale)
    _capture_with_feedback(params, july, labelled=300)
    assert gate_and_release(stale).decision == "promoted"
    outcome = gate_and_release(train_version(params_file, LATEST))
    assert outcome.decision == "promoted" and (outcome.test.rows, outcome.test.n_rows) == ("captured", 300)
    reason = next(r.reason for r in outcome.results if r.gate == "beats champion")
    assert f"vs champion v{stale.version}" in reason and "on the captured rows" in reason
    expected = version_test.compare_versions(registry.connect(params), params, outcome.version,
                                        july.iloc[:300], "current").challenger
    assert outcome.test.challenger == pytest.approx(expected)  # scored on exactly those labelled rows


# --------------------------------------------------------------------------- bad input


def test_metric_missing_from_the_evaluation_blocks(tmp_path: Path) -> None:
    params = load_params(Store(None).params(tmp_path, "m", **{"gates.current_metrics": {"r2": {"min": 0.5}}}))
    test = version_test.VersionTest(rows="current", n_rows=10, span="", challenger_version="2",
                               challenger={"rmse": 50.0}, champion_version="1", champion={"rmse": 60.0, "r2": 0.5})
    evaluation = {"metrics": {"test": {"rmse": 50.0, "r2": 0.8}, "current": {"rmse": 50.0}}}
    results = release.gate_results(params, evaluation, test, investigate={"checks": [], "failed_checks": []},
                                   drift=None, smoke=GateResult("smoke test", True, "ok"))
    decision, reason = gates.verdict(results)
    assert decision == "blocked" and "metric r2 (current rows): r2 missing from the evaluation" in reason
    params.gates.champion.metric = "mae"
    assert release.champion_result(params, test).reason == "mae missing from the comparison"


def test_unreachable_tracking_server_fails_fast_and_promotes_nothing(tmp_path: Path) -> None:
    params = load_params(Store(f"http://127.0.0.1:{free_port()}").params(tmp_path, "m"))
    started = time.monotonic()
    for call in (registry.connect, status.status, lambda p: rollback.rollback(p, reason="x"),
                 lambda p: approval.approve(p, "1")):
        with pytest.raises(RegistryError, match="is not reachable .*Nothing was changed"):
            call(params)
    assert time.monotonic() - started < 60  # no minutes of HTTP retries


def test_unknown_model_name(tmp_path: Path, store: Store) -> None:
    params_file = store.params(tmp_path, _name())
    registry.connect(load_params(params_file)).create_registered_model(load_params(params_file).mlflow.model_name)
    params = load_params(params_file, ["mlflow.model_name=no-such-model"])
    for call in (status.status, lambda p: rollback.rollback(p), lambda p: approval.approve(p, "1")):
        with pytest.raises(RegistryError, match="no registered model 'no-such-model'.*known models: .*bike-"):
            call(params)


# --------------------------------------------------------------------------- races


def _worker(params_file: Path, trained, folder: Path, barrier: Path) -> subprocess.Popen[str]:
    evaluation = folder / f"evaluation-{trained.version}.json"
    evaluation.write_text(json.dumps(trained.evaluation))
    smoke = folder / f"smoke-{trained.version}.json"
    smoke.write_text(json.dumps(reload_smoke(trained).to_dict()))
    code = "import sys; sys.path[:0] = ['tests']; from release_fixtures import race_main; race_main()"
    return subprocess.Popen([sys.executable, "-c", code, str(params_file), trained.version, str(evaluation),
                             str(smoke), str(barrier), "2"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # starts another driftgate process
def test_two_racing_release_processes_cannot_both_win(tmp_path: Path, store: Store) -> None:
    name = _name()
    params_file = store.params(tmp_path, name)
    params = load_params(params_file)
    v1 = gate_and_release(train_version(params_file, STALE)).version
    # the same recent model registered twice: each beats the stale champion, neither beats the other
    twins = [train_version(params_file, LATEST), train_version(params_file, LATEST)]
    champions: list[str | None] = []
    stop = threading.Event()

    def watch() -> None:  # the champion alias, read continuously during the race
        client = registry.connect(params)
        while not stop.is_set():
            mv = registry.version_with_alias(client, name, catalogue.CHAMPION)
            champions.append(None if mv is None else str(mv.version))
            time.sleep(0.02)  # leave the CPU to the racing processes

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        workers = [_worker(params_file, t, tmp_path, tmp_path / "barrier") for t in twins]
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        stop.set()
        watcher.join()
    outcomes = []
    for (out, err), worker in zip(outputs, workers, strict=True):
        assert worker.returncode == 0, err[-3000:]
        outcomes.append(json.loads(out.split("OUTCOME ", 1)[1]))
    decisions = sorted(o["decision"] for o in outcomes)
    assert decisions == ["blocked", "promoted"], [o["reason"] for o in outcomes]
    winner = next(o for o in outcomes if o["decision"] == "promoted")
    loser = next(o for o in outcomes if o["decision"] == "blocked")
    assert winner["champion_before"] == v1 and loser["champion_before"] == winner["version"]
    assert loser["rechecked_from"] == v1 and "improvement 0" in loser["reason"]
    final = aliases(params)
    assert (final["champion"], final["previous"]) == (winner["version"], v1)
    assert champions and None not in champions  # never a moment without a champion
    assert set(champions) <= {v1, winner["version"]}
    lock = f"{name}{registry.LOCK_SUFFIX}"
    assert not [m for m in registry.connect(params).search_registered_models() if m.name.startswith(lock)]


def test_index_links_each_release_decision_to_its_page(tmp_path: Path) -> None:
    from helpers.core.files import write_json
    from helpers.reports.pages import write_index

    for run_id, decision in (("20260101-000000-aaaaaa", "promoted"), ("20260102-000000-bbbbbb", "waiting")):
        write_json(tmp_path / "runs" / run_id / "manifest.json", {
            "run_id": run_id, "status": "succeeded", "steps": [], "extra_reports": ["release.html"],
            "summaries": {"deploy": {"decision": decision, "version": "3", "release_page": "release.html"}}})
    index = write_index(tmp_path).read_text()
    assert '<a href="runs/20260101-000000-aaaaaa/release.html"><span class="promoted">promoted v3</span></a>' in index
    assert '<a href="runs/20260102-000000-bbbbbb/release.html"><span class="running">waiting v3</span></a>' in index
