"""One step of a run: its notebook executed by papermill in a (pre-started) kernel, its record.

The HTML of the executed notebook is rendered in the background while the next step runs;
:func:`finish_html` puts the page's name and time in the step's record once it is written.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from helpers.core.catalogue import STEP_NOTEBOOK, STEP_SUMMARY
from helpers.core.config import Params
from helpers.core.times import utc_now_iso
from helpers.pipeline.kernels import KERNEL_ARGUMENTS, Background, WarmKernel
from helpers.pipeline.timings import step_timings
from helpers.reports.pages import notebook_to_html

WARM_START_TIMEOUT = 300  # seconds a pre-started kernel may take to finish its imports
HtmlJob = tuple[dict[str, Any], Path, "Future[tuple[str, float]]"]
# the HTML pages of the step notebooks: one may still be written by the background thread
_PAGES = {name.removesuffix(".ipynb") + ".html" for name in STEP_NOTEBOOK.values()}


def execute_step(
    step: str, source: Path, params: Params, frozen: Path, run_dir: Path, progress: bool, *,
    kernel: WarmKernel | None, background: Background,
) -> tuple[dict[str, Any], HtmlJob | None]:
    """Run one notebook with papermill and return its manifest record, and the job rendering its
    HTML in ``background`` (None when papermill wrote no notebook)."""
    import papermill as pm

    notebook = source.stem
    output = run_dir / source.name
    before = {p.name for p in run_dir.iterdir()}
    started, t0 = utc_now_iso(), time.time()
    record: dict[str, Any] = {"name": step, "notebook": output.name, "status": "running", "start": started}
    manager = kernel.release() if kernel is not None else None
    error = None
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters={"params_file": str(frozen), "run_dir": str(run_dir), "overrides": []},
            kernel_name=params.run.kernel,
            progress_bar=progress,
            execution_timeout=params.run.timeout,
            cwd=str(source.parent),
            extra_arguments=list(KERNEL_ARGUMENTS),
            km=manager,
            # a warm kernel answers once its imports are done; a dead one is noticed at once anyway
            start_timeout=WARM_START_TIMEOUT if manager is not None else 60,
        )
    except pm.PapermillExecutionError as exc:
        error = f"step {step} ({notebook}) failed at cell {exc.exec_count}: {exc.ename}: {first_line(exc.evalue)}"
    except Exception as exc:  # kernel died, timeout, missing kernel
        error = f"step {step} ({notebook}) failed: {exc.__class__.__name__}: {first_line(str(exc))}"
    finally:
        if kernel is not None:
            kernel.close()
        if manager is not None:  # papermill shuts down only the kernels it started
            background.stop_kernel(manager)
    record.update({"end": utc_now_iso(), "duration_s": round(time.time() - t0, 3)})
    summary = run_dir / STEP_SUMMARY[step]
    record["summary"] = summary.name if summary.is_file() else None
    record["status"] = "failed" if error else "succeeded"
    record["error"] = error
    made = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")} - before
    record["files"] = sorted(name for name in made if name not in _PAGES)
    if not output.is_file():
        return record, None
    record["timings"] = {"papermill_s": record["duration_s"], **step_timings(output, step)}
    return record, (record, output, background.submit(_render, output))


def _render(notebook: Path) -> tuple[str, float]:
    started = time.perf_counter()
    name = notebook_to_html(notebook).name
    return name, time.perf_counter() - started


def finish_html(jobs: list[HtmlJob], background: Background) -> None:
    """Wait for the background work, then record each rendered page in its step's record (an
    error rendering a page is the step's error)."""
    background.wait()
    for record, notebook, future in jobs:
        try:
            name, seconds = future.result()
        except Exception as exc:
            record.update(status="failed", error=record.get("error") or
                          f"step {record['name']} ({notebook.stem}): HTML: {exc.__class__.__name__}: "
                          f"{first_line(str(exc))}")
            continue
        record["html"] = name
        record["files"] = sorted({*record.get("files", []), name})
        record.setdefault("timings", {})["html_s"] = round(seconds, 3)
    jobs.clear()


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, at most 400 characters."""
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0][:400] if lines else ""
