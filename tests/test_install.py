"""A plain (not editable) install runs a pipeline: templates ship in the wheel, and the runner
finds the notebooks from the project it runs in, not from the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # pip builds and installs the package


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --no-deps .`` into a folder of its own (the dependencies are this venv's)."""
    site = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(site), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return site


def _project(folder: Path) -> Path:
    """A user's project: notebooks, params and data, but no src/ tree."""
    for name in ("notebooks", "params", "data"):
        shutil.copytree(ROOT / name, folder / name)
    return folder


def _run(site: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(site)  # ahead of the editable install: the copy that pip installed
    return subprocess.run([sys.executable, "-m", "helpers.cli", *args], capture_output=True, text=True,
                          cwd=project, env=env, timeout=900)


def test_the_installed_package_is_not_the_source_tree(installed: Path) -> None:
    import helpers

    assert (installed / "helpers" / "reports" / "templates").is_dir()
    assert Path(helpers.__file__).resolve().parent != (installed / "helpers").resolve()


def test_a_plain_install_runs_the_ci_pipeline_from_the_project_folder(installed: Path, tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    done = _run(installed, project, "run", "--params", "params/ci.yaml", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded" in done.stdout
    run_dir = next((project / "outputs" / "runs").iterdir())
    assert (run_dir / "drift_report.html").is_file() and (run_dir / "release.html").is_file()
    assert (project / "outputs" / "index.html").is_file()


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_notebooks_give_one_line_naming_the_key(installed: Path, tmp_path: Path, command: str) -> None:
    project = _project(tmp_path / "project")
    (project / "notebooks" / "04_deploy.ipynb").unlink()
    done = _run(installed, project, command, "--params", "params/ci.yaml")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "run.notebooks" in lines[0] and "04_deploy.ipynb" in lines[0], done.stderr
    assert not (project / "outputs" / "runs").exists()  # nothing started


def test_run_notebooks_points_elsewhere(installed: Path, tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / "notebooks").rename(project / "steps")
    raw = yaml.safe_load((project / "params" / "ci.yaml").read_text())
    raw.setdefault("run", {})["notebooks"] = "../steps"
    (project / "params" / "ci.yaml").write_text(yaml.safe_dump(raw))
    done = _run(installed, project, "validate", "--params", "params/ci.yaml")
    assert done.returncode == 0, done.stderr
