"""The run manifest: run id, git state, params and their hash, data hashes and time zone, package
versions, and each step's status and timings; plus the frozen params every step of a run reads."""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from helpers.core.catalogue import FROZEN_PARAMS, STEP_NOTEBOOK, STEP_SUMMARY
from helpers.core.config import Params
from helpers.core.files import read_json, write_text
from helpers.core.times import utc_now_iso
from helpers.modeling.data import data_timezone, file_sha256

PACKAGES = ["driftgate", "papermill", "nbconvert", "pandas", "numpy", "scipy",
            "scikit-learn", "matplotlib", "mlflow", "pyarrow", "jupyterlab"]


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def git_state(root: Path) -> dict[str, Any]:
    """Commit and dirty flag of the repository holding ``root`` (None outside git)."""
    def _git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run depends on."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def data_hashes(params: Params) -> dict[str, str]:
    """SHA-256 of each data file (``data.path``, or every file its glob matches), read in chunks."""
    data_path = Path(params.data.path)
    data_files = sorted(data_path.parent.glob(data_path.name)) if "*" in data_path.name else [data_path]
    return {str(f): file_sha256(f) for f in data_files}


def new_manifest(run_id: str, params: Params, overrides: list[str], project: Path, *,
                 data: dict[str, str] | None = None, timezone: str | None = None) -> dict[str, Any]:
    """The manifest of a new run; ``data_timezone`` is the zone the data's times and the windows are
    compared in (``naive`` when the times carry none). ``data`` (:func:`data_hashes`) and
    ``timezone`` are computed unless given (a reused run takes the zone from the run it reuses)."""
    return {
        "run_id": run_id,
        "status": "running",
        "start": utc_now_iso(),
        "git": git_state(project),
        "params": {
            "file": str(Path(params.source).resolve()),
            "overrides": overrides,
            "hash": params.params_hash,
            "values": params.to_dict(),
        },
        "data": data_hashes(params) if data is None else data,
        "data_timezone": data_timezone(params) if timezone is None else timezone,
        "packages": package_versions(),
        "steps": [],
    }


def freeze_params(params: Params, run_dir: Path) -> Path:
    """Write the merged, path-resolved params the run uses; every step reads this copy,
    so editing the params file during a run changes nothing."""
    return write_text(run_dir / FROZEN_PARAMS, yaml.safe_dump(params.raw, sort_keys=False))


def collect_summaries(run_dir: Path) -> dict[str, Any]:
    """Headline numbers of each step for the manifest and the index page."""
    out: dict[str, Any] = {}
    for step, name in STEP_SUMMARY.items():
        path = run_dir / name
        if path.is_file():
            out[step] = read_json(path).get("headline", {})
    return out


def extra_reports(run_dir: Path) -> list[str]:
    """HTML pages a step wrote besides its rendered notebook (drift report, release page)."""
    notebooks = {name.removesuffix(".ipynb") + ".html" for name in STEP_NOTEBOOK.values()}
    return sorted(p.name for p in run_dir.glob("*.html") if p.name not in notebooks)
