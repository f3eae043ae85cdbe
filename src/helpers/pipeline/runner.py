"""The step sequence: run folders, papermill execution, the manifest, the step context.

A run is a new folder ``outputs/runs/<run_id>/`` holding the executed notebooks, their HTML,
the step summaries (``<step>.json``) and ``manifest.json``. Notebooks talk only through
those files: each opens a :class:`StepContext` with :func:`open_step`.

Example
-------
>>> result = run_pipeline("params/ci.yaml")  # doctest: +SKIP
>>> result.status, result.run_dir  # doctest: +SKIP
('succeeded', PosixPath('outputs/runs/20261130-101500-3fa2c1'))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core.config import Params, hash_mapping, load_params
from helpers.core.errors import StepFailed
from helpers.core.files import read_json, write_json, write_text

NOTEBOOK_DIR = Path(__file__).resolve().parents[3] / "notebooks"
STEPS: list[tuple[str, str]] = [
    ("investigate", "01_investigate"),
    ("drift", "02_drift_report"),
    ("train", "03_train_evaluate"),
    ("deploy", "04_deploy"),
]
SUMMARY_FILE = {"investigate": "investigate.json", "drift": "drift.json",
                "train": "evaluation.json", "deploy": "deploy.json"}
PACKAGES = ["driftgate", "papermill", "nbconvert", "pandas", "numpy", "scipy",
            "scikit-learn", "matplotlib", "mlflow", "pyarrow", "jupyterlab"]
INTERACTIVE = "interactive"  # run folder used when a notebook is opened by hand


# --------------------------------------------------------------------------- step context


@dataclass
class StepContext:
    """What a notebook needs: validated params, its run folder, the data, upstream summaries."""

    step: str
    params: Params
    run_dir: Path
    frame: pd.DataFrame

    def summary_path(self, step: str | None = None) -> Path:
        """Path of a step's JSON summary in this run folder."""
        return self.run_dir / SUMMARY_FILE[step or self.step]

    def read_summary(self, step: str) -> dict[str, Any]:
        """An upstream step's summary; a clear error when that step has not run."""
        path = self.summary_path(step)
        if not path.is_file():
            raise StepFailed(
                f"{path}: missing; run the {step} step first (driftgate run, or its notebook)"
            )
        return read_json(path)

    def write_summary(self, payload: dict[str, Any]) -> Path:
        """Write this step's summary JSON atomically."""
        return write_json(self.summary_path(), payload)

    def describe(self) -> pd.DataFrame:
        """A small table saying what this step works on."""
        rows = {
            "step": self.step,
            "params file": self.params.source,
            "params hash": self.params.params_hash[:12],
            "run folder": str(self.run_dir),
            "data": self.params.data.path,
            "rows": len(self.frame),
        }
        return pd.DataFrame({"value": rows}).rename_axis("what")


def open_step(step: str, params_file: str, run_dir: str = "", overrides: list[str] | None = None) -> StepContext:
    """Load and check params and data for ``step``; pick the run folder.

    An empty ``run_dir`` (a notebook opened by hand) uses ``outputs/interactive/``.
    """
    from helpers.modeling.data import check_params_against_data
    from helpers.reports.plots import show_figures_inline

    show_figures_inline()
    params = load_params(_find_params(params_file), overrides)
    _limit_threads(params.run.threads)
    frame = check_params_against_data(params)
    folder = Path(run_dir) if run_dir else params.outputs_dir / INTERACTIVE
    folder.mkdir(parents=True, exist_ok=True)
    return StepContext(step=step, params=params, run_dir=folder.resolve(), frame=frame)


def _limit_threads(threads: int) -> None:
    """Cap OpenMP and BLAS threads for this process (a notebook kernel): HistGradientBoosting's
    OpenMP threads spin-wait, which on two busy cores costs far more than it gains."""
    if threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


def _find_params(params_file: str) -> Path:
    """Accept a path relative to the working folder or to the repository root."""
    path = Path(params_file)
    if path.is_file() or path.is_absolute():
        return path
    alternative = NOTEBOOK_DIR.parent / params_file.removeprefix("../")
    return alternative if alternative.is_file() else path


# --------------------------------------------------------------------------- runs


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


@dataclass
class RunResult:
    """Outcome of :func:`run_pipeline`."""

    run_id: str
    run_dir: Path
    status: str
    manifest: dict[str, Any]
    error: str | None = None
    failed_step: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


def run_pipeline(
    params_file: str | Path,
    overrides: list[str] | None = None,
    *,
    steps: list[str] | None = None,
    progress: bool | None = None,
    force: bool = False,
) -> RunResult:
    """Validate params, then run the notebooks in order into a new run folder.

    A step whose notebook, code, parameters, data and upstream steps are unchanged since a
    successful run is reused (its files are linked into the new folder) unless ``force``.
    """
    from helpers.modeling import data as data_mod
    from helpers.modeling.train import check_model_params
    from helpers.reports import pages as report

    params = load_params(params_file, overrides)
    data_mod.check_params_against_data(params)
    check_model_params(params)

    run_id, t0 = new_run_id(), time.time()
    run_dir = (params.outputs_dir / "runs" / run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=False)
    frozen = _freeze_params(params, run_dir)
    manifest = _new_manifest(run_id, params, overrides or [])
    manifest_path = run_dir / "manifest.json"
    write_json(manifest_path, manifest)
    chosen = [s for s in STEPS if steps is None or s[0] in steps]
    show_progress = params.run.progress if progress is None else progress
    result = RunResult(run_id=run_id, run_dir=run_dir, status="running", manifest=manifest)
    upstream = hash_mapping({"params": params.params_hash, "data": manifest["data"], "code": code_hash()})
    ctrl_c = _CtrlC()
    try:
        for step, notebook in chosen:
            key = step_key(notebook, upstream)
            cached = None if force else find_reusable(params.outputs_dir, step, key, exclude=run_id)
            if cached is not None:
                record = reuse_step(cached, run_dir)
            else:
                record = _execute_step(step, notebook, params, frozen, run_dir, show_progress)
            record["key"] = upstream = key
            if ctrl_c.pressed:  # a library below swallowed the KeyboardInterrupt: stop here all the same
                record.update(status="interrupted", error="interrupted by the user (Ctrl-C)")
            manifest["steps"].append(record)
            write_json(manifest_path, manifest)
            if ctrl_c.pressed:
                raise KeyboardInterrupt
            if record["status"] != "succeeded":
                result.error, result.failed_step = record["error"], step
                break
        manifest["status"] = "failed" if result.error else "succeeded"
    except KeyboardInterrupt:
        manifest["status"] = "interrupted"
        done = {s["name"] for s in manifest["steps"]}
        pending = [(name, notebook) for name, notebook in chosen if name not in done]
        first = not any(s["status"] == "interrupted" for s in manifest["steps"])
        for i, (name, notebook) in enumerate(pending):
            stopped_here = first and i == 0
            manifest["steps"].append({"name": name, "notebook": f"{notebook}.ipynb",
                                      "status": "interrupted" if stopped_here else "not run",
                                      "error": "interrupted by the user (Ctrl-C)" if stopped_here else None})
        raise
    finally:
        manifest["end"] = _now()
        manifest["duration_s"] = round(time.time() - t0, 3)
        manifest["reused"] = [s["name"] for s in manifest["steps"] if s.get("reused_from")]
        manifest["summaries"] = _collect_summaries(run_dir)
        manifest["extra_reports"] = _extra_reports(run_dir)
        write_json(manifest_path, manifest)
        result.status, result.manifest, result.steps = manifest["status"], manifest, manifest["steps"]
        report.write_index(params.outputs_dir)
        ctrl_c.restore()
    if len(manifest["reused"]) < len(manifest["steps"]):  # a fully reused run has nothing new to log
        _log_run_to_mlflow(params, run_dir, manifest)
    return result


class _CtrlC:
    """Remember a Ctrl-C (SIGINT) even when a library catches the KeyboardInterrupt it raises."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def restore(self) -> None:
        """Put the previous SIGINT handler back."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _freeze_params(params: Params, run_dir: Path) -> Path:
    """Write the merged, path-resolved params the run uses; every step reads this copy,
    so editing the params file during a run changes nothing."""
    import yaml

    return write_text(run_dir / "params.yaml", yaml.safe_dump(params.raw, sort_keys=False))


# --------------------------------------------------------------------------- incremental runs


def code_hash() -> str:
    """SHA-256 over the helper package's source: a code change invalidates reused steps."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".html", ".css") or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def step_key(notebook: str, upstream: str) -> str:
    """Key of a step: its notebook's bytes and everything upstream (params, data, code, steps)."""
    digest = hashlib.sha256(upstream.encode())
    digest.update((NOTEBOOK_DIR / f"{notebook}.ipynb").read_bytes())
    return digest.hexdigest()


def find_reusable(outputs_dir: Path, step: str, key: str, exclude: str = "") -> tuple[Path, dict[str, Any]] | None:
    """The newest successful execution of ``step`` with ``key`` whose files still exist."""
    for manifest_path in sorted((outputs_dir / "runs").glob("*/manifest.json"), reverse=True):
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
    record.update({"reused_from": origin, "start": _now(), "end": _now(), "duration_s": 0.0})
    return record


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _new_manifest(run_id: str, params: Params, overrides: list[str]) -> dict[str, Any]:
    from helpers.modeling.data import file_sha256

    data_path = Path(params.data.path)
    data_files = sorted(data_path.parent.glob(data_path.name)) if "*" in data_path.name else [data_path]
    return {
        "run_id": run_id,
        "status": "running",
        "start": _now(),
        "git": git_state(NOTEBOOK_DIR.parent),
        "params": {
            "file": str(Path(params.source).resolve()),
            "overrides": overrides,
            "hash": params.params_hash,
            "values": params.to_dict(),
        },
        "data": {str(f): file_sha256(f) for f in data_files},
        "packages": package_versions(),
        "steps": [],
    }


def _execute_step(
    step: str, notebook: str, params: Params, frozen: Path, run_dir: Path, progress: bool
) -> dict[str, Any]:
    """Run one notebook with papermill, render its HTML, and return its manifest record."""
    import papermill as pm

    from helpers.reports import pages as report

    source = NOTEBOOK_DIR / f"{notebook}.ipynb"
    output = run_dir / f"{notebook}.ipynb"
    before = {p.name for p in run_dir.iterdir()}
    started, t0 = _now(), time.time()
    record: dict[str, Any] = {"name": step, "notebook": output.name, "status": "running", "start": started}
    error = None
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters={"params_file": str(frozen), "run_dir": str(run_dir), "overrides": []},
            kernel_name=params.run.kernel,
            progress_bar=progress,
            execution_timeout=params.run.timeout,
            cwd=str(NOTEBOOK_DIR),
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # no kernel start-up chatter
        )
    except pm.PapermillExecutionError as exc:
        error = f"step {step} ({notebook}) failed at cell {exc.exec_count}: {exc.ename}: {_first_line(exc.evalue)}"
    except Exception as exc:  # kernel died, timeout, missing kernel
        error = f"step {step} ({notebook}) failed: {exc.__class__.__name__}: {_first_line(str(exc))}"
    record.update({"end": _now(), "duration_s": round(time.time() - t0, 3)})
    if output.is_file():
        record["html"] = report.notebook_to_html(output).name
    summary = run_dir / SUMMARY_FILE[step]
    record["summary"] = summary.name if summary.is_file() else None
    record["status"] = "failed" if error else "succeeded"
    record["error"] = error
    record["files"] = sorted({p.name for p in run_dir.iterdir() if not p.name.startswith(".")} - before)
    return record


def _first_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0][:400] if lines else ""


def _collect_summaries(run_dir: Path) -> dict[str, Any]:
    """Headline numbers of each step for the manifest and the index page."""
    out: dict[str, Any] = {}
    for step, name in SUMMARY_FILE.items():
        path = run_dir / name
        if path.is_file():
            out[step] = read_json(path).get("headline", {})
    return out


def _extra_reports(run_dir: Path) -> list[str]:
    """HTML pages a step wrote besides its rendered notebook (drift report, release page)."""
    notebooks = {f"{name}.html" for _, name in STEPS}
    return sorted(p.name for p in run_dir.glob("*.html") if p.name not in notebooks)


def _log_run_to_mlflow(params: Params, run_dir: Path, manifest: dict[str, Any]) -> None:
    """Log params, headline metrics and the HTML reports to the run's MLflow training run."""
    import mlflow

    from helpers.registry import store as registry

    registry.connect(params)
    evaluation = run_dir / SUMMARY_FILE["train"]
    trained_here = any(s["name"] == "train" and not s.get("reused_from") for s in manifest["steps"])
    run_id = read_json(evaluation).get("mlflow_run_id") if trained_here and evaluation.is_file() else None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else f"pipeline {manifest['run_id']}"):
        mlflow.set_tags({"driftgate.run_id": manifest["run_id"], "driftgate.status": manifest["status"],
                         "driftgate.git_commit": str(manifest["git"].get("commit"))})
        for step, headline in manifest.get("summaries", {}).items():
            numbers = {f"{step}.{k}": float(v) for k, v in headline.items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
            if numbers:
                mlflow.log_metrics(numbers)
        for html in sorted(run_dir.glob("*.html")):
            mlflow.log_artifact(str(html), artifact_path="reports")
        mlflow.log_artifact(str(run_dir / "manifest.json"), artifact_path="reports")
