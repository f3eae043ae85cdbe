"""Kernels started ahead of their step, and work done beside the critical path.

While step N runs, the kernel of step N+1 is already starting and importing what its notebook
imports (a silent request that does not count as a cell), so papermill finds it ready. An
executed notebook is converted to HTML in a background thread while the next step runs
(:meth:`Background.wait` joins those jobs before the manifest is final), and a finished kernel is
shut down in a thread of its own (a graceful shutdown waits seconds for the kernel to exit: it
must delay neither a page nor the end of the run; the process still waits for it before exiting).

Example
-------
>>> kernel = WarmKernel("python3", Path("notebooks/02_drift_report.ipynb"))  # doctest: +SKIP
>>> pm.execute_notebook(..., km=kernel.manager)  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import contextlib
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL",  # no kernel start-up chatter
                    "--HistoryManager.hist_file=:memory:"]  # as papermill starts its kernels
# What the step's helpers load inside functions, seconds each: MLflow and the model format; for
# deploy (warmed during the long train step) also MLflow's SQL store (the first MlflowClient call
# imports SQLAlchemy and Alembic) and its map of installed distributions, built (reading every
# package's metadata) the first time a model is loaded as a pyfunc. The train kernel warms during
# the shorter drift step and is often still importing when it ends: more there only moves seconds
# from the register cell to the kernel start (measured slower on a busy machine).
_DEPLOY_STORE = ["import mlflow.store.tracking.sqlalchemy_store", "import mlflow.store.model_registry.sqlalchemy_store",
                 "import mlflow.utils.requirements_utils",
                 "mlflow.utils.requirements_utils.warn_dependency_requirement_mismatches(['numpy'])"]
WARM_EXTRA = {"train": ["import mlflow", "import mlflow.sklearn", "import mlflow.models", "import skops.io"],
              "deploy": ["import mlflow", "import mlflow.sklearn", "import mlflow.pyfunc", "import skops.io",
                         *_DEPLOY_STORE]}


def notebook_imports(notebook: Path) -> list[str]:
    """The top-level ``import`` statements of a notebook's code cells, in order."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []
    found: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        try:
            tree = ast.parse("".join(source) if isinstance(source, list) else str(source))
        except SyntaxError:  # IPython magics: not plain Python
            continue
        found += [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    return found


class WarmKernel:
    """A kernel for ``notebook``, launched now in ``notebook``'s folder, that imports what the
    notebook imports before it answers papermill. ``manager`` is None when it could not start
    (papermill then starts its own, and reports any error as usual)."""

    def __init__(self, kernel_name: str, notebook: Path, step: str = "") -> None:
        self.manager: Any = None
        self._client: Any = None
        try:
            manager = KernelManager(kernel_name=kernel_name)
            manager.start_kernel(cwd=str(notebook.parent), extra_arguments=list(KERNEL_ARGUMENTS))
        except Exception:  # no such kernel, cannot launch: papermill will say so
            return
        self.manager = manager
        code = "\n".join([*notebook_imports(notebook), *WARM_EXTRA.get(step, [])])
        if code:
            client = manager.client()
            client.start_channels()
            # silent: no execution count, no output; the kernel answers papermill after it
            client.execute(f"try:\n{_indent(code)}\nexcept Exception:\n    pass", silent=True, store_history=False)
            self._client = client

    def release(self) -> Any:
        """The kernel manager for papermill (None if none); this object forgets it."""
        manager, self.manager = self.manager, None
        return manager

    def close(self, background: Background | None = None) -> None:
        """Stop the warming client and, if not handed over, shut the kernel down."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop_channels()
            self._client = None
        manager = self.release()
        if manager is not None:
            shutdown(manager) if background is None else background.stop_kernel(manager)


def _indent(code: str) -> str:
    return "\n".join(f"    {line}" for line in code.splitlines())


def shutdown(manager: Any) -> None:
    """Shut a kernel down as papermill would (gracefully), never raising."""
    with contextlib.suppress(Exception):
        if manager.is_alive():
            manager.shutdown_kernel(now=False)
    with contextlib.suppress(Exception):
        manager.cleanup_resources()


class Background:
    """Work that need not block the next step: one thread for jobs (HTML pages), one for kernel
    shutdowns (mostly waiting for a kernel process to exit)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftgate-background")
        self._kernels = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftgate-kernel-shutdown")
        self._futures: list[Future[Any]] = []

    def submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``job(*args)`` in the worker thread."""
        future = self._pool.submit(job, *args)
        self._futures.append(future)
        return future

    def stop_kernel(self, manager: Any) -> Future[Any]:
        """Shut the kernel of ``manager`` down gracefully (:func:`shutdown`) in the shutdown thread."""
        return self._kernels.submit(shutdown, manager)

    def wait(self) -> None:
        """Wait for every submitted job (their errors are their futures' to report); kernel
        shutdowns go on."""
        for future in self._futures:
            with contextlib.suppress(Exception):
                future.result()
        self._futures.clear()

    def close(self, wait_kernels: bool = False) -> None:
        """Wait for the jobs, then stop the worker threads. Kernels still shutting down finish in
        their thread, which the interpreter joins before it exits (``wait_kernels``: wait now)."""
        self.wait()
        self._pool.shutdown(wait=True)
        self._kernels.shutdown(wait=wait_kernels)
