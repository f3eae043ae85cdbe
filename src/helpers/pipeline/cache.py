"""Step reuse: a step whose notebook, code, params, data and upstream steps are unchanged since
a successful run is not run again; its files are linked into the new run folder (like ``dvc repro``).

Example
-------
>>> key = step_key(Path("notebooks/02_drift_report.ipynb"), upstream="...")  # doctest: +SKIP
>>> find_reusable(Path("outputs"), "drift", key)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from helpers.core.catalogue import MANIFEST, RUNS_DIR
from helpers.core.files import read_json
from helpers.core.times import utc_now_iso


def code_hash() -> str:
    """SHA-256 over the helper package's source and templates (every sub-package): a code change
    invalidates reused steps."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".html", ".css") or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def step_key(notebook: Path, upstream: str) -> str:
    """Key of a step: its notebook's bytes and everything upstream (params, data, code, steps)."""
    digest = hashlib.sha256(upstream.encode())
    digest.update(notebook.read_bytes())
    return digest.hexdigest()


def find_reusable(outputs_dir: Path, step: str, key: str, exclude: str = "") -> tuple[Path, dict[str, Any]] | None:
    """The newest successful execution of ``step`` with ``key`` whose files still exist."""
    for manifest_path in sorted((outputs_dir / RUNS_DIR).glob(f"*/{MANIFEST}"), reverse=True):
        if manifest_path.parent.name == exclude:
            continue
        try:
            manifest = read_json(manifest_path)
        except (OSError, ValueError):
            continue
        for record in manifest.get("steps", []):
            if record.get("name") == step and record.get("key") == key and record.get("status") == "succeeded":
                files = record.get("files") or []
                if files and all((manifest_path.parent / f).is_file() for f in files):
                    return manifest_path.parent, record
    return None


def reuse_step(cached: tuple[Path, dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """Link a cached step's files into ``run_dir`` (hard links; copies across devices)."""
    source_dir, old = cached
    for name in old["files"]:
        target = run_dir / name
        try:
            os.link(source_dir / name, target)
        except OSError:
            shutil.copy2(source_dir / name, target)
    origin = old.get("reused_from") or source_dir.name
    record = {k: v for k, v in old.items() if k not in ("start", "end", "duration_s")}
    record.update({"reused_from": origin, "start": utc_now_iso(), "end": utc_now_iso(), "duration_s": 0.0})
    return record
