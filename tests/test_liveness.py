"""Abandoned runs: a `running` manifest whose runner is gone (stale heartbeat, or its PID gone on
this host) reads as `abandoned` on the index page and in `driftgate status`; the heartbeat thread
keeps a live run's manifest fresh without losing the runner's own writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from helpers.core.liveness import STALE_AFTER_S, recent_runs, run_state
from helpers.core.times import utc_now_iso
from helpers.pipeline.heartbeat import Heartbeat
from helpers.registry.status import status_text
from helpers.reports.pages import write_index

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _ago(seconds: float, now: dt.datetime = NOW) -> str:
    return (now - dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _gone_pid() -> int:
    """The PID of a process that has exited (and been reaped) on this host."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_run(outputs: Path, run_id: str, **fields: object) -> Path:
    run_dir = outputs / "runs" / run_id
    run_dir.mkdir(parents=True)
    manifest = {"run_id": run_id, "status": "running", "start": _ago(600, dt.datetime.now(dt.UTC)),
                "steps": [{"name": "investigate", "status": "succeeded", "error": None}], **fields}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def test_a_stale_heartbeat_reads_as_abandoned_a_fresh_one_as_running() -> None:
    elsewhere = {"host": "ci-machine-that-was-lost", "pid": 4242}
    stale = {"status": "running", "runner": elsewhere, "heartbeat": _ago(STALE_AFTER_S + 1)}
    fresh = {"status": "running", "runner": elsewhere, "heartbeat": _ago(STALE_AFTER_S - 1)}
    assert run_state(stale, now=NOW) == "abandoned"
    assert run_state(fresh, now=NOW) == "running"
    assert run_state({**stale, "status": "succeeded"}, now=NOW) == "succeeded"
    assert run_state({**stale, "status": "interrupted"}, now=NOW) == "interrupted"
    # a manifest from before heartbeats: judged by its start
    assert run_state({"status": "running", "start": _ago(3600)}, now=NOW) == "abandoned"
    assert run_state({"status": "running", "start": _ago(5)}, now=NOW) == "running"


def test_a_runner_gone_from_this_host_is_abandoned_at_once() -> None:
    beat = utc_now_iso()
    here = socket.gethostname()
    assert run_state({"status": "running", "heartbeat": beat, "runner": {"host": here, "pid": _gone_pid()}}) \
        == "abandoned"
    assert run_state({"status": "running", "heartbeat": beat, "runner": {"host": here, "pid": os.getpid()}}) \
        == "running"


def test_index_page_and_status_show_the_abandoned_run(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    lost = _write_run(outputs, "20261201-100000-aaaaaa", runner={"host": "lost-ci-machine", "pid": 7},
                      heartbeat=_ago(STALE_AFTER_S * 3, dt.datetime.now(dt.UTC)))
    live = _write_run(outputs, "20261201-110000-bbbbbb", runner={"host": socket.gethostname(), "pid": os.getpid()},
                      heartbeat=utc_now_iso())
    page = write_index(outputs).read_text()
    lost_row = page[page.index(lost.name):][:800]
    assert '<span class="abandoned">abandoned</span>' in lost_row and "no heartbeat for" in lost_row
    assert "lost-ci-machine" in lost_row
    live_row = page[page.index(live.name):page.index(lost.name)]
    assert '<span class="running">running</span>' in live_row

    runs = recent_runs(outputs)
    assert [(r["run_id"], r["status"]) for r in runs] == [(live.name, "running"), (lost.name, "abandoned")]
    text = status_text({"model": "m", "tracking_uri": "sqlite:///x.db", "versions": {}, "runs": runs,
                        "aliases": {"champion": None, "challenger": None, "previous": None}})
    assert f"run {live.name}: running" in text
    assert f"run {lost.name}: abandoned" in text and "runner stopped without finishing" in text


def test_heartbeat_refreshes_the_manifest_and_keeps_the_runners_writes(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    manifest = {"run_id": "r", "status": "running", "steps": []}
    beat = Heartbeat(path, manifest, interval=0.05)
    on_disk = json.loads(path.read_text())
    assert on_disk["runner"] == {"host": socket.gethostname(), "pid": os.getpid()} and on_disk["heartbeat"]
    beat.start()
    try:
        manifest["steps"].append({"name": "investigate", "status": "succeeded"})
        beat.write(manifest)
        old = {**json.loads(path.read_text()), "heartbeat": "2000-01-01T00:00:00+00:00"}
        path.write_text(json.dumps(old))  # as if the last beat were long ago
        deadline = time.monotonic() + 10
        while json.loads(path.read_text())["heartbeat"].startswith("2000") and time.monotonic() < deadline:
            time.sleep(0.02)
        refreshed = json.loads(path.read_text())
        assert not refreshed["heartbeat"].startswith("2000")
        assert refreshed["steps"] == [{"name": "investigate", "status": "succeeded"}]
        assert run_state(refreshed) == "running"
    finally:
        beat.stop()
