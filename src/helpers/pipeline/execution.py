"""The steps of a run that are not reused: validation, kernels started ahead, papermill, HTML in
the background, and the run's MLflow log.

The runner imports this module only when a step must run, so an unchanged rerun (every step
reused) never loads papermill, Jupyter's client, scikit-learn or MLflow.

Example
-------
>>> execution.validate(params)  # doctest: +SKIP
>>> executor = Executor(params, notebooks, frozen, run_dir, progress=False)  # doctest: +SKIP
>>> record = executor.execute("drift", "02_drift_report.ipynb", later="train")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from helpers.core import catalogue as names
from helpers.core.catalogue import MANIFEST, STEP_NOTEBOOK, STEP_SUMMARY
from helpers.core.config import Params
from helpers.core.files import read_json
from helpers.modeling.data import check_params_against_data
from helpers.modeling.estimators import check_model_params
from helpers.pipeline.kernels import Background, WarmKernel
from helpers.pipeline.steps import HtmlJob, execute_step, finish_html
from helpers.registry import store


def validate(params: Params) -> None:
    """Check the data against the params and the model's settings (a one-line error if not)."""
    check_params_against_data(params)
    check_model_params(params)


class Executor:
    """Runs the steps of one run that are not reused. While a step runs, the next step's kernel
    starts; HTML pages and kernel shutdowns are done by a background thread."""

    def __init__(self, params: Params, notebooks: Path, frozen: Path, run_dir: Path, progress: bool) -> None:
        self.params, self.notebooks, self.frozen, self.run_dir, self.progress = (
            params, notebooks, frozen, run_dir, progress)
        self.background = Background()
        self.html_jobs: list[HtmlJob] = []
        self.warm = _Warm(params, notebooks)

    def skip(self, step: str) -> None:
        """``step`` is reused: shut down a kernel started for it."""
        self.warm.drop(step, self.background)

    def execute(self, step: str, notebook: str, later: str | None) -> dict[str, Any]:
        """Run ``step``'s notebook (starting ``later``'s kernel meanwhile); its manifest record."""
        kernel = self.warm.take(step)
        if later is not None:
            self.warm.start(later)
        record, job = execute_step(step, self.notebooks / notebook, self.params, self.frozen, self.run_dir,
                                   self.progress, kernel=kernel, background=self.background)
        self.html_jobs += [job] if job else []
        if "mlflow" not in sys.modules:  # the run is logged at the end: import MLflow meanwhile
            self.background.submit(_import_mlflow)
        return record

    def finish(self) -> None:
        """Wait for the HTML pages and put them in their steps' records."""
        finish_html(self.html_jobs, self.background)

    def close(self) -> None:
        """Shut down any kernel not used, finish the pages, stop the background thread."""
        self.warm.close(self.background)
        self.finish()
        self.background.close()


def _import_mlflow() -> None:
    """Import MLflow (in the background worker: never beside another import of that thread)."""
    with contextlib.suppress(Exception):
        store.quiet_mlflow()
        import mlflow  # noqa: F401


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


def log_run_to_mlflow(params: Params, run_dir: Path, manifest: dict[str, Any]) -> None:
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
