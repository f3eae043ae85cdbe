"""The registry layer on a real SQLite MLflow store: lineage, look-ups with clear errors,
alias moves, and the release lock (exclusive, released, stale locks broken exactly once)."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest

from helpers.core import catalogue
from helpers.core.config import load_params
from helpers.core.errors import RegistryError
from helpers.registry import store as registry
from helpers.registry.lock import release_lock
from release_fixtures import STALE, Store, free_port, sqlite_template, train_version


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def client(tmp_path: Path, template: Path):
    """A client on a fresh SQLite store."""
    return registry.connect(load_params(Store(None, template).params(tmp_path, "m")))


def _versions(client, name: str, count: int) -> list[str]:
    """``count`` real registry versions of ``name`` (no artifacts needed to move aliases)."""
    client.create_registered_model(name)
    return [str(client.create_model_version(name, source=f"file:///nowhere/{i}").version) for i in range(count)]


# --------------------------------------------------------------------------- lineage


def test_log_model_registers_a_challenger_with_complete_lineage(tmp_path: Path, template: Path) -> None:
    trained = train_version(Store(None, template).params(tmp_path, "lineage"), STALE)
    client = registry.connect(trained.params)
    mv = client.get_model_version("lineage", trained.version)
    assert registry.missing_lineage(mv.tags) == []
    assert mv.tags["driftgate.mlflow_run_id"] == mv.run_id == trained.ref.run_id
    assert len(mv.tags["driftgate.git_commit"]) == 40 and mv.tags["driftgate.data_sha256"].startswith("ac6950ae")
    assert mv.tags["driftgate.baseline_window"] == "2011-01-01..2011-05-01"
    assert registry.alias_versions(client, "lineage") == {"champion": None, "challenger": "1", "previous": None}
    folder = mlflow.artifacts.download_artifacts(trained.ref.uri, dst_path=str(tmp_path / "model"))
    requirements = Path(folder, "requirements.txt").read_text().split()
    assert "skops==" in " ".join(requirements) and not any(r.startswith("pytest") for r in requirements)
    signature = mlflow.models.get_model_info(trained.ref.uri).signature
    assert [c.name for c in signature.inputs.inputs] == trained.params.data.features


def test_an_alias_loads_the_version_it_names_now_once(tmp_path: Path, template: Path) -> None:
    trained = train_version(Store(None, template).params(tmp_path, "aliased"), STALE)
    client = registry.connect(trained.params)
    assert client.get_model_version("aliased", trained.version).tags["driftgate.run_id"].startswith("test-")
    pinned = registry.load(trained.ref.uri)
    assert registry.load("models:/aliased@challenger") is pinned  # resolved, then the loaded version
    with pytest.raises(RegistryError, match="models:/aliased@champion: cannot load this model"):
        registry.load("models:/aliased@champion")  # no such alias: the same error as before


def test_log_model_refuses_missing_lineage(tmp_path: Path, template: Path) -> None:
    params = load_params(Store(None, template).params(tmp_path, "m"))
    with pytest.raises(RegistryError, match="missing driftgate.git_commit, driftgate.data_sha256"):
        registry.log_model(object(), None, params, {"driftgate.run_id": "r", "driftgate.params_hash": "h",
                                                    "driftgate.reports": "x.html"})


# --------------------------------------------------------------------------- look-ups


def test_unknown_model_and_version_errors_name_what_exists(client) -> None:
    _versions(client, "known", 2)
    with release_lock(client, "known"):  # the lock is not listed as a model
        with pytest.raises(RegistryError, match=r"no registered model 'nope'.*known models: known\. Check"):
            registry.require_model(client, "nope")
    with pytest.raises(RegistryError, match="model 'known' has no version 9 .latest is 2."):
        registry.get_version(client, "known", "9")
    with pytest.raises(RegistryError, match="'two' is not a model version number"):
        registry.get_version(client, "known", "two")
    assert str(registry.get_version(client, "known", "v2").version) == "2"


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"MLflow tracking server {url} is not reachable"):
        registry.check_server(url, timeout=2)


# --------------------------------------------------------------------------- aliases


def test_promote_and_demote_always_leave_a_champion(client) -> None:
    v1, v2, v3 = _versions(client, "m2", 3)
    client.set_registered_model_alias("m2", catalogue.CHALLENGER, v3)
    assert registry.promote(client, "m2", v1) is None
    assert registry.promote(client, "m2", v2) == v1
    assert registry.promote(client, "m2", v3) == v2
    assert registry.alias_versions(client, "m2") == {"champion": v3, "challenger": None, "previous": v2}
    registry.demote(client, "m2", v2, previous=v1)
    assert registry.alias_versions(client, "m2") == {"champion": v2, "challenger": None, "previous": v1}
    registry.demote(client, "m2", v1, previous=None)
    assert registry.alias_versions(client, "m2") == {"champion": v1, "challenger": None, "previous": None}


# --------------------------------------------------------------------------- release lock


def test_release_lock_is_exclusive_and_released(client) -> None:
    lock = "m3" + registry.LOCK_SUFFIX
    with release_lock(client, "m3", holder="first") as lease:
        assert client.get_registered_model(lock).tags[catalogue.LOCK_HOLDER] == "first"
        with pytest.raises(RegistryError, match="still held by first after 0 s; another release is running"):
            with release_lock(client, "m3", holder="second", wait=0.3):
                pass
        lease.check()
    assert not client.search_registered_models(filter_string=f"name = '{lock}'")
    client.create_registered_model(lock, tags={catalogue.LOCK_HOLDER: "second"})  # its create answered late
    with release_lock(client, "m3", holder="second", wait=0):
        pass
    assert not client.search_registered_models(filter_string=f"name = '{lock}'")


def test_stale_lock_is_broken_once_and_a_fresh_lock_never(client) -> None:
    from mlflow.exceptions import MlflowException

    lock = "m4" + registry.LOCK_SUFFIX
    crashed = client.create_registered_model(lock, tags={catalogue.LOCK_HOLDER: "crashed"})
    tombstone = f"{lock}.stale-{crashed.creation_timestamp}"
    time.sleep(0.6)
    with release_lock(client, "m4", holder="next", stale_after=0.5):
        assert client.get_registered_model(tombstone).tags[catalogue.LOCK_HOLDER] == "crashed"
        # a second breaker that also saw the crashed lock renames to the same tombstone: refused,
        # so the live lock survives
        with pytest.raises(MlflowException, match="already exists"):
            client.rename_registered_model(lock, tombstone)
        assert client.get_registered_model(lock).tags[catalogue.LOCK_HOLDER] == "next"
    time.sleep(0.5)  # the tombstone is now older than twice stale_after: swept by the next release
    with release_lock(client, "m4", stale_after=0.5):
        pass
    names = {m.name for m in client.search_registered_models()}
    assert lock not in names and tombstone not in names


def test_a_holder_whose_lock_was_broken_moves_nothing(client) -> None:
    lock = "m5" + registry.LOCK_SUFFIX
    with release_lock(client, "m5", holder="slow") as lease:
        client.rename_registered_model(lock, f"{lock}.stale-0")  # broken by another process
        client.create_registered_model(lock, tags={catalogue.LOCK_HOLDER: "other"})
        with pytest.raises(RegistryError, match=r"lost after 0 s \(now held by other\); nothing was promoted"):
            lease.check()
    assert client.get_registered_model(lock).tags[catalogue.LOCK_HOLDER] == "other"  # not deleted by "slow"
