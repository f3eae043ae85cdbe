"""Automatic rollback by ``driftgate monitor`` (``monitor.rollback: true``), for real.

Three versions are trained by the real train step into a real MLflow SQLite store: January-April
(v1), two winter weeks (v2) and two other winter weeks (v3). Captured July traffic answered by a
two-weeks version, with its feedback, is far worse than its champion's test rmse allows: the monitor
rolls the champion back (reason tags, a rollback page, an alert line), never twice in a row, never
to a rolled-back version; a degrading canary is ended by removing its alias; with
``monitor.rollback: false`` nothing changes.
"""

from __future__ import annotations

import html
import json

import pandas as pd
import pytest

from helpers.core import catalogue
from helpers.core.config import load_params
from helpers.monitoring import monitor
from helpers.monitoring.auto_rollback import BY
from helpers.registry import store as registry
from helpers.registry.rollback import ROLLED_BACK
from live_fixtures import ONE_WEEK, STALE, hours_ago, month_rows, params_with, register_version, write_traffic
from support import write_params

pytestmark = pytest.mark.slow

OTHER_WEEKS = ("2011-02-07", "2011-02-21")
CANARY = {"alias": "canary", "share": 0.1}


def _window(start_hours_ago: float, end_hours_ago: float) -> monitor.Window:
    return monitor.Window(pd.Timestamp(int(hours_ago(start_hours_ago)), unit="s", tz="UTC"),
                          pd.Timestamp(int(hours_ago(end_hours_ago)), unit="s", tz="UTC"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("rollback")
    params_file = write_params(folder)
    canary_file = write_params(folder, name="canary.yaml", **{"serve.canary": CANARY, "monitor.rollback": True})
    good = register_version(folder, "good", STALE)
    bad = register_version(folder, "bad", ONE_WEEK)
    other = register_version(folder, "other", OTHER_WEEKS)
    params = load_params(params_file)
    july = month_rows(params, "2011-07-01", "2011-08-01")
    # day A: the bad version answers July as champion, every label arrives
    write_traffic(params, july.iloc[:400], {"champion": bad}, start=hours_ago(60), prefix="a")
    # day B: the champion answers well (its own predictions come back as labels), the canary badly
    write_traffic(params, july.iloc[400:600], {"champion": other}, start=hours_ago(30), prefix="b", labels="champion")
    write_traffic(params, july.iloc[:200], {"canary": good}, start=hours_ago(30) + 1, prefix="c")
    client = registry.connect(params)
    for version in (good, bad):  # champion v2 (bad), previous v1
        registry.promote(client, params.mlflow.model_name, version.version)
    return {"folder": folder, "file": params_file, "canary_file": canary_file, "params": params,
            "client": client, "good": good, "bad": bad, "other": other,
            "day_a": _window(61, 59), "day_b": _window(31, 29)}


def _aliases(live: dict) -> dict[str, str | None]:
    return registry.alias_versions(live["client"], live["params"].mlflow.model_name)


def _rollback_alerts(live: dict) -> list[dict]:
    path = live["params"].outputs_dir / catalogue.ALERTS_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    return [a for a in map(json.loads, lines) if a.get("kind") == "rollback"]


def test_without_monitor_rollback_nothing_changes(live) -> None:
    result = monitor.run_monitor(live["params"], window=live["day_a"])
    assert result.summary["degraded"] and result.summary["performance"]["judged_on"] == "realized"
    assert "rollback" not in result.summary
    assert _aliases(live)[catalogue.CHAMPION] == live["bad"].version
    assert _aliases(live)[catalogue.PREVIOUS] == live["good"].version
    assert _rollback_alerts(live) == []


def test_a_degrading_champion_is_rolled_back(live) -> None:
    params = params_with(live["file"], **{"monitor.rollback": "true"})
    result = monitor.run_monitor(params, window=live["day_a"])
    [action] = result.summary["rollback"]
    bad, good = live["bad"].version, live["good"].version
    assert action["action"] == "rolled back" and action["version"] == bad and action["to_version"] == good
    assert _aliases(live)[catalogue.CHAMPION] == good and _aliases(live)[catalogue.PREVIOUS] is None
    tags = live["client"].get_model_version(params.mlflow.model_name, bad).tags
    assert tags[catalogue.DECISION] == ROLLED_BACK and tags[catalogue.ROLLED_BACK_BY] == BY
    assert "live realized performance degraded: rmse" in tags[catalogue.ROLLBACK_REASON]
    assert tags[catalogue.ROLLED_BACK_TO] == good
    restored = live["client"].get_model_version(params.mlflow.model_name, good).tags
    assert restored[catalogue.RESTORED_REASON] == tags[catalogue.ROLLBACK_REASON]
    page = action["page"]
    assert page.endswith(f"rollback-v{bad}.html") and "live realized performance degraded" in open(page).read()
    [alert] = _rollback_alerts(live)
    assert alert["action"] == "rolled back" and alert["version"] == bad and alert["to_version"] == good
    assert alert["text"].startswith(f"Driftgate monitor: {params.mlflow.model_name}: rolled back v{bad} -> v{good}")
    saved = json.loads(result.json.read_text())
    assert saved["rollback"][0]["action"] == "rolled back"
    window_page = result.html.read_text()  # the window's page is written after the rollback: it shows it
    assert f"rolled back v{bad}: monitoring window" in html.unescape(window_page)


def test_never_twice_in_a_row(live) -> None:
    client, name = live["client"], live["params"].mlflow.model_name
    client.set_registered_model_alias(name, catalogue.PREVIOUS, live["other"].version)  # somewhere to go
    params = params_with(live["file"], **{"monitor.rollback": "true"})
    result = monitor.run_monitor(params, window=live["day_a"])  # still degraded, now judged against v1
    assert result.summary["degraded"]
    [action] = result.summary["rollback"]
    assert action["action"] == "refused" and "never two rollbacks in a row" in action["refused"]
    assert _aliases(live)[catalogue.CHAMPION] == live["good"].version
    alerts = _rollback_alerts(live)
    assert len(alerts) == 2 and "NOT rolled back" in alerts[-1]["text"]


def test_never_to_a_rolled_back_version(live) -> None:
    client, name = live["client"], live["params"].mlflow.model_name
    registry.promote(client, name, live["bad"].version)  # new releases: champion v3, previous the rolled-back v2
    registry.promote(client, name, live["other"].version)
    params = params_with(live["file"], **{"monitor.rollback": "true"})
    result = monitor.run_monitor(params, window=live["day_a"])
    [action] = result.summary["rollback"]
    assert action["action"] == "refused"
    assert f"previous v{live['bad'].version} was itself rolled back" in action["refused"]
    assert _aliases(live)[catalogue.CHAMPION] == live["other"].version
    assert _aliases(live)[catalogue.PREVIOUS] == live["bad"].version


def test_a_degrading_canary_is_ended(live) -> None:
    client, name = live["client"], live["params"].mlflow.model_name
    client.set_registered_model_alias(name, "canary", live["good"].version)
    params = load_params(live["canary_file"])
    result = monitor.run_monitor(params, window=live["day_b"])
    assert not result.summary["degraded"]  # the champion's own rows are fine
    [action] = result.summary["rollback"]
    assert action["action"] == "canary ended" and action["version"] == live["good"].version
    assert action["alias_removed"] and "alias 'canary' removed" in action["how"]
    assert "labelled canary rows, worse than the allowed" in action["reason"]
    assert registry.version_with_alias(client, name, "canary") is None
    assert _aliases(live)[catalogue.CHAMPION] == live["other"].version  # the champion stays
    tags = client.get_model_version(name, live["good"].version).tags
    assert tags[catalogue.DECISION] == ROLLED_BACK and tags[catalogue.ROLLED_BACK_TO] == live["other"].version
    assert _rollback_alerts(live)[-1]["action"] == "canary ended"
    window_page = html.unescape(result.html.read_text())
    canary = result.summary["canary"]
    assert canary["version"] == live["good"].version and canary["labelled_rows"] > 0
    assert f"v{canary['version']}: {canary['rows']} rows, {canary['labelled_rows']} with feedback; rmse " in window_page
    assert f"canary ended v{live['good'].version}: canary v{live['good'].version} degraded (realized)" in window_page
    again = monitor.run_monitor(params, window=live["day_b"])  # no canary alias any more: nothing to do
    assert again.summary["rollback"] == []
