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

import importlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from helpers.core.catalogue import MANIFEST, RUNS_DIR, STEP_NOTEBOOK, STEPS
from helpers.core.config import Params, hash_mapping, load_params
from helpers.core.errors import ParamsError
from helpers.core.files import read_json, write_json
from helpers.core.times import utc_now_iso
from helpers.pipeline.cache import code_hash, find_reusable, reuse_step, step_key
from helpers.pipeline.heartbeat import Heartbeat
from helpers.pipeline.manifest import (
    collect_summaries,
    data_hashes,
    extra_reports,
    freeze_params,
    new_manifest,
    new_run_id,
)
from helpers.registry.state import registry_fingerprint
from helpers.reports.pages import write_index

# papermill, Jupyter's client, scikit-learn, MLflow: imported only when a step runs
EXECUTION = "helpers.pipeline.execution"


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
    manifest's ``heartbeat`` fresh, so a run whose runner died reads as ``abandoned``. When every
    step is reused, nothing that executes notebooks or trains models is even imported.
    """
    t_setup = time.perf_counter()
    params = load_params(params_file, overrides)
    notebooks = notebook_dir(params)
    chosen = [(step, STEP_NOTEBOOK[step]) for step in STEPS if steps is None or step in steps]
    data = _data_or_none(params)
    plan = _plan(params, notebooks, chosen, data, force)
    execution = None if all(p.cached is not None for p in plan) else _execution()
    if execution is not None:
        execution.validate(params)  # the same params, data and code passed it in the run reused

    run_id, t0 = new_run_id(), time.time()
    run_dir = (params.outputs_dir / RUNS_DIR / run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=False)
    frozen = freeze_params(params, run_dir)
    manifest = new_manifest(run_id, params, overrides or [], project=notebooks.parent, data=data,
                            timezone=None if execution else _reused_timezone(plan))
    manifest_path = run_dir / MANIFEST
    beat = Heartbeat(manifest_path, manifest)
    show_progress = params.run.progress if progress is None else progress
    result = RunResult(run_id=run_id, run_dir=run_dir, status="running", manifest=manifest)
    ctrl_c = _CtrlC()
    executor = execution.Executor(params, notebooks, frozen, run_dir, show_progress) if execution else None
    manifest["timings"] = {"setup_s": round(time.perf_counter() - t_setup, 3)}
    beat.start()
    try:
        for index, planned in enumerate(plan):
            if planned.cached is not None:
                if executor is not None:
                    executor.skip(planned.step)
                record = reuse_step(planned.cached, run_dir)
                record["key"] = planned.lookup_key
            else:
                later = next((p.step for p in plan[index + 1:] if p.cached is None), None)  # its kernel warms up
                record = executor.execute(planned.step, planned.notebook, later)
                record["key"] = planned.key
                if planned.step == "deploy" and record["status"] == "succeeded":
                    record["key"] = _deploy_key(planned.key, params)  # the registry as this release left it
            if ctrl_c.pressed:  # a library below swallowed the KeyboardInterrupt: stop here all the same
                record.update(status="interrupted", error="interrupted by the user (Ctrl-C)")
            manifest["steps"].append(record)
            beat.write(manifest)
            if ctrl_c.pressed:
                raise KeyboardInterrupt
            if record["status"] != "succeeded":
                break
        if executor is not None:
            executor.finish()
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
        if executor is not None:
            executor.close()
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
    if execution is not None and len(manifest["reused"]) < len(manifest["steps"]):  # else nothing new to log
        t_log = time.perf_counter()
        execution.log_run_to_mlflow(params, run_dir, manifest)
        manifest["timings"]["mlflow_log_s"] = round(time.perf_counter() - t_log, 3)
        write_json(manifest_path, manifest)
    return result


@dataclass
class Planned:
    """One chosen step: its key, and the earlier execution to reuse (None: it runs)."""

    step: str
    notebook: str
    key: str
    lookup_key: str
    cached: tuple[Path, dict[str, Any]] | None


def _plan(params: Params, notebooks: Path, chosen: list[tuple[str, str]], data: dict[str, str] | None,
          force: bool) -> list[Planned]:
    """Each chosen step's key and what can be reused, before anything runs. A step's key covers
    its notebook and everything upstream; the deploy step follows every executed step (its inputs
    changed), and is reused only while the registry is as its release left it."""
    if data is None:  # data that cannot be read: validation says why
        return [Planned(step, notebook, "", "", None) for step, notebook in chosen]
    upstream = hash_mapping({"params": params.params_hash, "data": data, "code": code_hash()})
    plan, executed_before = [], force
    for step, notebook in chosen:
        key = step_key(notebooks / notebook, upstream)
        skip_lookup = executed_before if step == "deploy" else force
        lookup_key = _deploy_key(key, params) if step == "deploy" and not skip_lookup else key
        cached = None if skip_lookup else find_reusable(params.outputs_dir, step, lookup_key)
        plan.append(Planned(step, notebook, key, lookup_key, cached))
        executed_before = executed_before or cached is None
        upstream = key
    return plan


def _data_or_none(params: Params) -> dict[str, str] | None:
    """The data files' hashes; None when one cannot be read (validation then names the problem)."""
    try:
        return data_hashes(params)
    except OSError:
        return None


def _reused_timezone(plan: list[Planned]) -> str | None:
    """The data's time zone as the run a fully reused run reuses recorded it (same params and
    data: the same zone), or None to compute it."""
    for planned in plan:
        if planned.cached is not None:
            try:
                zone = read_json(planned.cached[0] / MANIFEST).get("data_timezone")
            except (OSError, ValueError):
                continue
            if isinstance(zone, str):
                return zone
    return None


def _execution() -> ModuleType:
    """:mod:`helpers.pipeline.execution`, imported now: a step is about to run."""
    return importlib.import_module(EXECUTION)


def _deploy_key(key: str, params: Params) -> str:
    """The deploy step's key: its own key and the registry state (aliases, approvals, rollbacks).

    Looked up before the step, recorded after it: a rerun reuses the release only while the
    registry is as that release left it."""
    return hash_mapping({"step": key, "registry": registry_fingerprint(params)})


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
