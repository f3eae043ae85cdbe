"""`driftgate approve`, `rollback` and `status` on a real SQLite store: output, exit codes,
one-line errors, and the recorded tags."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers.cli import main as cli
from helpers.core.config import load_params
from helpers.registry import status as release_status
from helpers.registry import store as registry
from release_fixtures import LATEST, STALE, Store, aliases, gate_and_release, sqlite_template, train_version
from support import ROOT, driftgate_cmd


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """v1 promoted; v2 better but waiting for approval. Returns (params file, v1, v2)."""
    folder = tmp_path_factory.mktemp("ops")
    params_file = Store(None, sqlite_template(folder)).params(folder, "bike-ops")
    v1 = gate_and_release(train_version(params_file, STALE))
    waiting_params = load_params(params_file, ["gates.require_approval=true"])
    v2 = gate_and_release(train_version(params_file, LATEST), waiting_params)
    assert (v1.decision, v2.decision) == ("promoted", "waiting")
    return params_file, v1.version, v2.version


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_approve_rollback_round_trip(released, capsys: pytest.CaptureFixture[str]) -> None:
    params_file, v1, v2 = released
    params = ("--params", str(params_file))
    code, out, _ = _run(capsys, "status", *params)
    assert code == 0
    assert f"champion   v{v1}  promoted" in out and f"challenger v{v2}  waiting" in out
    assert f"waiting for `driftgate approve {v2}`" in out and "previous   -" in out

    code, out, err = _run(capsys, "approve", "7", *params)
    assert code == 1 and out == ""
    assert err.strip() == "driftgate: error: model 'bike-ops' has no version 7 (latest is 2)"

    code, out, _ = _run(capsys, "approve", f"v{v2}", "--by", "alice", "--note", "checked July", *params)
    assert code == 0 and out.startswith(f"v{v2} promoted: all ") and f"champion: v{v2}" in out
    assert aliases(load_params(params_file)) == {"champion": v2, "challenger": None, "previous": v1}

    code, out, _ = _run(capsys, "rollback", "--reason", "complaints from the depots", "--by", "ops", *params)
    assert code == 0
    assert out.startswith(f"rolled back bike-ops: champion v{v2} -> v{v1} (previous now none); "
                          "reason: complaints from the depots")

    code, _, err = _run(capsys, "rollback", *params)
    assert code == 1 and "has no previous version" in err and len(err.strip().splitlines()) == 1

    code, out, _ = _run(capsys, "status", "--json", *params)
    info = json.loads(out)
    assert info["aliases"] == {"champion": v1, "challenger": None, "previous": None}
    assert info["last_rollback"]["reason"] == "complaints from the depots"
    assert info["versions"]["champion"]["data"]["baseline_window"] == "2011-01-01..2011-05-01"
    assert info["versions"]["champion"]["metrics"]["current_rmse"] > 0

    status = release_status.describe_version(registry.connect(load_params(params_file)), "bike-ops", v2)
    assert status["decision"] == "rolled back" and status["approved_by"] == "alice"
    assert status["rollback"]["by"] == "ops" and status["rollback"]["to"] == v1


@pytest.mark.slow  # starts another driftgate process
def test_the_installed_command_reports_an_unknown_model_in_one_line(released) -> None:
    params_file, _, _ = released
    done = subprocess.run([*driftgate_cmd(), "status", "--params", str(params_file), "-p", "mlflow.model_name=nope"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().startswith("driftgate: error: no registered model 'nope' in the registry; "
                                          "known models: bike-ops.")


def test_help_lists_the_release_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("approve", "rollback", "status"):
        assert command in out
