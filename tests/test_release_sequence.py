"""The whole live release sequence on the embedded bike data, for real (issue 14's demo).

A January-April champion serves; an April-June challenger is registered and served in shadow by a
real :class:`ScoringService` on 127.0.0.1 while July traffic is replayed with feedback
(:func:`helpers.serving.replay.replay`). With ``gates.champion.compare_on: shadow`` the release
first waits (too few labelled rows), then ``driftgate deploy --if-new-version`` promotes the
challenger on realized evidence. A deliberately bad version (two winter weeks) then answers half the
traffic as canary; ``driftgate monitor`` with ``monitor.rollback: true`` ends the canary: alias
removed, version tagged, an alert line written. The README's "Shadow, canary and automatic
rollback" section runs the same sequence as commands. Traffic: the first 560 July rows in shadow,
then 600 rows of late July and August with the canary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers.core import catalogue
from helpers.core.config import Params, load_params
from helpers.core.paths import capture_dir_for
from helpers.modeling.captures import read_captures
from helpers.monitoring import history
from helpers.registry import release, version_test
from helpers.registry import store as registry
from helpers.registry.gates import WAITING, GateResult
from helpers.registry.rollback import ROLLED_BACK
from helpers.serving.configure import service_from_params
from helpers.serving.replay import replay
from live_fixtures import LATEST, ONE_WEEK, STALE, month_rows, register_version
from support import run_cli, write_params

pytestmark = pytest.mark.slow

MIN_ROWS = 400  # labelled rows both versions answered before the shadow gate decides
SETTINGS = {"gates.champion.compare_on": "shadow", "gates.champion.min_rows": MIN_ROWS,
            "monitor.rollback": True, "serve.flush_interval": 0.1, "serve.alias_poll_interval": 0}
CANARY = {"alias": "challenger", "share": 0.5}  # the newest registered version: the bad one
BATCH = 20  # rows per request


def _serve_and_replay(params: Params, rows: pd.DataFrame) -> dict[str, Any]:
    """Serve the params' champion (with their shadow or canary) on 127.0.0.1, replay ``rows`` with
    their labels as feedback, wait until the shadow scored every champion request, stop (which
    writes every capture); return the replay summary and the last ``/health``."""
    with service_from_params(params, port=0) as service:
        sent = replay(service.url, rows[list(params.data.features)], rows[params.data.target].tolist(),
                      batch_size=BATCH, feedback_every=10)
        deadline = time.monotonic() + 60
        while params.serve.shadow and service.health()["shadow"]["scored"] < sent["requests"]:
            assert time.monotonic() < deadline, service.health()
            time.sleep(0.05)
        health = service.health()
    assert sent["errors"] == 0 and sent["feedback_rows"] == len(rows), sent
    return {"replay": sent, "health": health}


def _rollback_alerts(params: Params) -> list[dict[str, Any]]:
    path = params.outputs_dir / catalogue.ALERTS_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    return [a for a in map(json.loads, lines) if a.get("kind") == "rollback"]


def _release(params: Params, version: Any) -> release.Outcome:
    """Step 4 on the shadow evidence: the version test, the gates, the release decision."""
    client = registry.connect(params)
    rows = version_test.comparison_rows(params, None, "shadow")
    test = version_test.compare_versions(client, params, version.version, rows, "shadow")
    results = release.gate_results(params, version.summary, test, investigate={"checks": [{}], "failed_checks": []},
                                   drift=None, smoke=GateResult("smoke test", True, "served like offline"))
    return release.release_version(client, params, version.version, results, test, rows=rows)


def test_shadow_promotion_then_a_bad_canary_rolled_back(tmp_path: Path) -> None:
    params_file = write_params(tmp_path, **SETTINGS)
    params = load_params(params_file)
    name, client = params.mlflow.model_name, registry.connect(params)
    traffic = month_rows(params, "2011-07-01", "2011-09-01")  # July and August, in order

    # 1. the January-April champion; the April-June challenger registered beside it
    champion = register_version(tmp_path, "champion", STALE, **SETTINGS)
    registry.promote(client, name, champion.version)
    challenger = register_version(tmp_path, "challenger", LATEST, **SETTINGS)
    assert registry.alias_versions(client, name)[catalogue.CHALLENGER] == challenger.version

    # 2. the challenger in shadow over July traffic; too few labelled rows yet: the release waits
    shadow_file = write_params(tmp_path, name="shadow.yaml", **SETTINGS, **{"serve.shadow": catalogue.CHALLENGER})
    shadow = load_params(shadow_file)
    first = _serve_and_replay(shadow, traffic.iloc[:240])
    assert first["health"]["shadow"]["version"] == challenger.version and first["health"]["shadow"]["errors"] == 0
    waiting = _release(shadow, challenger)
    assert waiting.decision == WAITING and f"not enough evidence yet: 240 of {MIN_ROWS}" in waiting.reason
    assert registry.alias_versions(client, name)[catalogue.CHAMPION] == champion.version
    tags = client.get_model_version(name, challenger.version).tags
    assert tags[catalogue.DECISION] == WAITING

    # 3. more traffic; the deployment job, rerun, promotes it on realized evidence
    _serve_and_replay(shadow, traffic.iloc[240:560])
    deployed = run_cli("deploy", "--params", str(shadow_file), "--if-new-version")
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert "released" in deployed.stdout, deployed.stdout
    aliases = registry.alias_versions(client, name)
    assert aliases[catalogue.CHAMPION] == challenger.version and aliases[catalogue.PREVIOUS] == champion.version
    test = json.loads(client.get_model_version(name, challenger.version).tags[catalogue.VERSION_TEST])
    assert test["shadow"]["evidence"] == "realized" and test["shadow"]["labelled_rows"] == 560
    assert test["challenger"]["rmse"] < test["champion"]["rmse"]

    # 4. a deliberately bad version as canary for half the traffic; the monitor ends it
    bad = register_version(tmp_path, "bad", ONE_WEEK, **SETTINGS)
    assert registry.alias_versions(client, name)[catalogue.CHALLENGER] == bad.version
    canary_file = write_params(tmp_path, name="canary.yaml", **SETTINGS, **{"serve.canary": CANARY})
    canary = load_params(canary_file)
    since = pd.Timestamp.now(tz="UTC").floor("s")
    served = _serve_and_replay(canary, traffic.iloc[560:1160])
    answered = read_captures(capture_dir_for(canary), name, since, None, roles=("canary",))
    canary_rows = len(answered)
    assert served["health"]["canary"]["version"] == bad.version and set(answered["model_version"]) == {bad.version}
    assert canary_rows >= 3 * BATCH, (canary_rows, served["health"]["canary"])
    until = pd.Timestamp.now(tz="UTC").ceil("s") + pd.Timedelta(seconds=1)
    monitored = run_cli("monitor", "--params", str(canary_file), "--from", since.isoformat(), "--to", until.isoformat())
    assert monitored.returncode == 0, monitored.stderr[-3000:]
    aliases = registry.alias_versions(client, name)
    assert registry.version_with_alias(client, name, CANARY["alias"]) is None  # the canary alias is gone
    assert aliases[catalogue.CHAMPION] == challenger.version  # the champion stays
    tags = client.get_model_version(name, bad.version).tags
    assert tags[catalogue.DECISION] == ROLLED_BACK and tags[catalogue.ROLLED_BACK_TO] == challenger.version
    assert "labelled canary rows, worse than the allowed" in tags[catalogue.ROLLBACK_REASON]
    [alert] = _rollback_alerts(canary)
    assert alert["action"] == "canary ended" and alert["version"] == bad.version
    # the monitoring history keeps the canary's rows and metric apart from the champion's
    [line] = history.read_history(history.history_path(canary), name)
    assert line["version"] == challenger.version and line["rows"] == 600 - canary_rows
    assert line["canary"]["version"] == bad.version and line["canary"]["rows"] == canary_rows
    assert line["canary"]["labelled_rows"] == canary_rows
    champion_rmse = line["performance"]["realized"]["rmse"]["value"]
    assert line["canary"]["realized"]["rmse"]["value"] > line["performance"]["limit"] > champion_rmse
