"""The registry fingerprint in the deploy step's reuse key: it changes with `driftgate approve`,
`rollback` and an alias moved by hand, not otherwise; the fast SQLite reading agrees with
MLflow's client on a real store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import main as cli
from helpers.core.config import load_params
from helpers.registry import store as registry
from helpers.registry.state import client_state, registry_fingerprint, sqlite_state
from release_fixtures import LATEST, STALE, Store, gate_and_release, sqlite_template, train_version
from support import clean_env

pytestmark = pytest.mark.slow  # trains and registers two models


@pytest.fixture()
def released(tmp_path: Path) -> Path:
    """v1 promoted; v2 waiting for approval. Returns the params file."""
    params_file = Store(None, sqlite_template(tmp_path)).params(tmp_path, "bike-state")
    assert registry_fingerprint(load_params(params_file)) == registry_fingerprint(load_params(params_file))
    gate_and_release(train_version(params_file, STALE))
    gate_and_release(train_version(params_file, LATEST), load_params(params_file, ["gates.require_approval=true"]))
    return params_file


def _both_agree(params_file: Path) -> str:
    params = load_params(params_file)
    database = Path(params.tracking_uri.removeprefix("sqlite:///"))
    assert sqlite_state(database, "bike-state") == client_state(params)
    return registry_fingerprint(params)


def test_fingerprint_follows_approve_rollback_and_aliases(released: Path) -> None:
    args = ["--params", str(released)]
    waiting = _both_agree(released)
    assert _both_agree(released) == waiting, "nothing changed, same fingerprint"
    assert cli.main(["approve", "2", "--by", "alice", *args]) == 0
    approved = _both_agree(released)
    assert approved != waiting
    assert cli.main(["rollback", "--reason", "complaints", "--by", "ops", *args]) == 0
    rolled_back = _both_agree(released)
    assert rolled_back not in (waiting, approved)
    client = registry.connect(load_params(released))
    client.set_registered_model_alias("bike-state", "champion", "2")  # as monitoring's promotion would
    assert _both_agree(released) not in (waiting, approved, rolled_back)


def test_no_store_yet_has_a_fingerprint_and_creates_nothing(tmp_path: Path) -> None:
    params = load_params(Store(None).params(tmp_path, "bike-none"))
    database = Path(params.tracking_uri.removeprefix("sqlite:///"))
    assert not database.exists()
    assert len(registry_fingerprint(params)) == 64 and not database.exists()


def test_both_readings_agree_after_tags_and_alias_moves_by_hand(released: Path) -> None:
    client = registry.connect(load_params(released))
    start = _both_agree(released)
    client.set_registered_model_tag("bike-state", "owner", "team-a")
    owner = _both_agree(released)
    client.set_model_version_tag("bike-state", "1", "reviewed", "yes")
    reviewed = _both_agree(released)
    client.set_registered_model_alias("bike-state", "previous", "2")
    aliased = _both_agree(released)
    assert len({start, owner, reviewed, aliased}) == 4, "every change moves the fingerprint"
    client.delete_registered_model_alias("bike-state", "previous")
    assert _both_agree(released) == reviewed, "undone, the fingerprint is the earlier one"
    client.delete_model_version_tag("bike-state", "1", "reviewed")
    assert _both_agree(released) == owner
    other = load_params(released, ["mlflow.model_name=bike-unknown"])
    database = Path(other.tracking_uri.removeprefix("sqlite:///"))
    assert sqlite_state(database, "bike-unknown") == client_state(other) == {"model": "bike-unknown",
                                                                              "registered": False}


def test_the_fingerprint_module_imports_no_mlflow() -> None:
    script = ("import sys, helpers.registry.state\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'sklearn', 'scipy'}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=clean_env())
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
