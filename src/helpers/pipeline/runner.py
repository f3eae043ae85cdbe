"""The step sequence: a new run folder, each notebook executed by papermill, the manifest.

A run is a new folder ``outputs/runs/<run_id>/`` holding the executed notebooks, their HTML,
the step summaries (``<step>.json``) and ``manifest.json``. The notebooks come from
``run.notebooks`` (by default ``notebooks/`` beside the params file's folder).

Example
-------
>>> result = run_pipeline("params/ci.yaml")  # doctest: +SKIP
>>> result.status, result.run_dir  # doctest: +SKIP
('succeeded', PosixPath('outputs/runs/20261130-101500-3fa2c1'))
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.core import catalogue as names
from helpers.core.catalogue import MANIFEST, RUNS_DIR, STEP_NOTEBOOK, STEP_SUMMARY, STEPS
from helpers.core.config import Params, hash_mapping, load_params
from helpers.core.errors import ParamsError
from helpers.core.files import read_json, write_json
from helpers.core.times import utc_now_iso
from helpers.modeling.data import check_params_against_data
from helpers.modeling.estimators import check_model_params
from helpers.pipeline.cache import code_hash, find_reusable, reuse_step, step_key
from helpers.pipeline.heartbeat import Heartbeat
from helpers.pipeline.kernels import Background, WarmKernel
from helpers.pipeline.manifest import collect_summaries, extra_reports, freeze_params, new_manifest, new_run_id
from helpers.pipeline.steps import execute_step, finish_html
from helpers.registry import store
from helpers.registry.state import registry_fingerprint
from helpers.reports.pages import write_index


def notebook_dir(params: Params) -> Path:
    """The folder holding the four step notebooks (``run.notebooks``); a one-line error when any
    of them is missing, for example after ``pip install driftgate`` outside the project."""
    folder = Path(params.run.notebooks)
    missing = [name for name in STEP_NOTEBOOK.values() if not (folder / name).is_file()]
    if missing:
        raise ParamsError(
            f"{params.source}: run.notebooks: {folder} lacks {', '.join(missing)}; run from the project folder "
            "that holds notebooks/, or set run.notebooks to the folder with the step notebooks"
        )
    return folder


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
    successful run is reused (its files are linked into the new folder) unless ``force``; the
    deploy step also needs the registry as that run left it. While a step runs, the next step's
    kernel starts and the last notebook's HTML is rendered; a heartbeat thread keeps the
    manifest's ``heartbeat`` fresh, so a run whose runner died reads as ``abandoned``.
    """
    t_setup = time.perf_counter()
    params = load_params(params_file, overrides)
    check_params_against_data(params)
    check_model_params(params)
    notebooks = notebook_dir(params)

    run_id, t0 = new_run_id(), time.time()
    run_dir = (params.outputs_dir / RUNS_DIR / run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=False)
    frozen = freeze_params(params, run_dir)
    manifest = new_manifest(run_id, params, overrides or [], project=notebooks.parent)
    manifest_path = run_dir / MANIFEST
    beat = Heartbeat(manifest_path, manifest)
    chosen = [(step, STEP_NOTEBOOK[step]) for step in STEPS if steps is None or step in steps]
    show_progress = params.run.progress if progress is None else progress
    result = RunResult(run_id=run_id, run_dir=run_dir, status="running", manifest=manifest)
    upstream = hash_mapping({"params": params.params_hash, "data": manifest["data"], "code": code_hash()})
    ctrl_c = _CtrlC()
    background, html_jobs, warm = Background(), [], _Warm(params, notebooks)
    manifest["timings"] = {"setup_s": round(time.perf_counter() - t_setup, 3)}
    beat.start()
    try:
        executed_before = force
        for index, (step, notebook) in enumerate(chosen):
            key = step_key(notebooks / notebook, upstream)
            cached = _reusable(params, step, key, run_id, force=executed_before if step == "deploy" else force)
            if cached is not None:
                warm.drop(step, background)
                record = reuse_step(cached, run_dir)
            else:
                kernel = warm.take(step)
                later = chosen[index + 1][0] if index + 1 < len(chosen) else None
                if later is not None:
                    warm.start(later)
                record, job = execute_step(step, notebooks / notebook, params, frozen, run_dir, show_progress,
                                           kernel=kernel, background=background)
                html_jobs += [job] if job else []
                if "mlflow" not in sys.modules:  # the runner logs the run at the end: import it meanwhile
                    background.submit(_import_mlflow)
                executed_before = True
            upstream = key
            record["key"] = _deploy_key(key, params) if step == "deploy" and record["status"] == "succeeded" else key
            if ctrl_c.pressed:  # a library below swallowed the KeyboardInterrupt: stop here all the same
                record.update(status="interrupted", error="interrupted by the user (Ctrl-C)")
            manifest["steps"].append(record)
            beat.write(manifest)
            if ctrl_c.pressed:
                raise KeyboardInterrupt
            if record["status"] != "succeeded":
                break
        finish_html(html_jobs, background)
        failed = next((s for s in manifest["steps"] if s["status"] != "succeeded"), None)
        if failed is not None:
            result.error, result.failed_step = failed["error"], failed["name"]
        manifest["status"] = "failed" if result.error else "succeeded"
    except KeyboardInterrupt:
        manifest["status"] = "interrupted"
        done = {s["name"] for s in manifest["steps"]}
        pending = [(name, notebook) for name, notebook in chosen if name not in done]
        first = not any(s["status"] == "interrupted" for s in manifest["steps"])
        for i, (name, notebook) in enumerate(pending):
            stopped_here = first and i == 0
            manifest["steps"].append({"name": name, "notebook": notebook,
                                      "status": "interrupted" if stopped_here else "not run",
                                      "error": "interrupted by the user (Ctrl-C)" if stopped_here else None})
        raise
    finally:
        warm.close(background)
        finish_html(html_jobs, background)
        background.close()
        manifest["end"] = utc_now_iso()
        manifest["duration_s"] = round(time.time() - t0, 3)
        manifest["reused"] = [s["name"] for s in manifest["steps"] if s.get("reused_from")]
        manifest["summaries"] = collect_summaries(run_dir)
        manifest["extra_reports"] = extra_reports(run_dir)
        beat.stop()
        write_json(manifest_path, manifest)
        result.status, result.manifest, result.steps = manifest["status"], manifest, manifest["steps"]
        t_index = time.perf_counter()
        write_index(params.outputs_dir)
        manifest["timings"]["index_s"] = round(time.perf_counter() - t_index, 3)
        ctrl_c.restore()
    if len(manifest["reused"]) < len(manifest["steps"]):  # a fully reused run has nothing new to log
        t_log = time.perf_counter()
        _log_run_to_mlflow(params, run_dir, manifest)
        manifest["timings"]["mlflow_log_s"] = round(time.perf_counter() - t_log, 3)
        write_json(manifest_path, manifest)
    return result


def _import_mlflow() -> None:
    """Import MLflow (in the background worker: never beside another import of that thread)."""
    with contextlib.suppress(Exception):
        store.quiet_mlflow()
        import mlflow  # noqa: F401


def _reusable(params: Params, step: str, key: str, run_id: str, force: bool) -> tuple[Path, dict[str, Any]] | None:
    """A cached execution of ``step`` to reuse (never when ``force``). The deploy step follows
    every executed step (its inputs changed), so it is looked up only after reused ones."""
    if force:
        return None
    return find_reusable(params.outputs_dir, step, _deploy_key(key, params) if step == "deploy" else key,
                         exclude=run_id)


def _deploy_key(key: str, params: Params) -> str:
    """The deploy step's key: its own key and the registry state (aliases, approvals, rollbacks).

    Looked up before the step, recorded after it: a rerun reuses the release only while the
    registry is as that release left it."""
    return hash_mapping({"step": key, "registry": registry_fingerprint(params)})


class _Warm:
    """At most one kernel started ahead, for a named step."""

    def __init__(self, params: Params, notebooks: Path) -> None:
        self.params, self.notebooks = params, notebooks
        self.step: str | None = None
        self.kernel: WarmKernel | None = None

    def start(self, step: str) -> None:
        """Start the kernel of ``step`` now (replacing none: call after :meth:`take`)."""
        self.step, self.kernel = step, WarmKernel(self.params.run.kernel, self.notebooks / STEP_NOTEBOOK[step], step)

    def take(self, step: str) -> WarmKernel | None:
        """The kernel started for ``step`` (None if none was)."""
        kernel = self.kernel if self.step == step else None
        if kernel is not None:
            self.step, self.kernel = None, None
        return kernel

    def drop(self, step: str, background: Background) -> None:
        """``step`` is reused: shut its kernel down in the background."""
        kernel = self.take(step)
        if kernel is not None:
            kernel.close(background)

    def close(self, background: Background) -> None:
        """Shut down any kernel not taken."""
        if self.kernel is not None:
            self.kernel.close(background)
        self.step, self.kernel = None, None


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


def _log_run_to_mlflow(params: Params, run_dir: Path, manifest: dict[str, Any]) -> None:
    """Log params, headline metrics and the HTML reports to the run's MLflow training run."""
    import mlflow

    store.connect(params)
    evaluation = run_dir / STEP_SUMMARY["train"]
    trained_here = any(s["name"] == "train" and not s.get("reused_from") for s in manifest["steps"])
    run_id = read_json(evaluation).get("mlflow_run_id") if trained_here and evaluation.is_file() else None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else f"pipeline {manifest['run_id']}"):
        mlflow.set_tags({names.LINEAGE_RUN_ID: manifest["run_id"], names.RUN_STATUS: manifest["status"],
                         names.LINEAGE_GIT_COMMIT: str(manifest["git"].get("commit"))})
        numbers = {f"{step}.{k}": float(v) for step, headline in manifest.get("summaries", {}).items()
                   for k, v in headline.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if numbers:
            mlflow.log_metrics(numbers)
        with tempfile.TemporaryDirectory(prefix="driftgate-reports-") as tmp:  # one upload, not one per page
            for page in [*sorted(run_dir.glob("*.html")), run_dir / MANIFEST]:
                _link_or_copy(page, Path(tmp) / page.name)
            mlflow.log_artifacts(tmp, artifact_path="reports")


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
