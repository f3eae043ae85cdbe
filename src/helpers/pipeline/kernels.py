"""Kernels started ahead of their step, and work done beside the critical path.

While step N runs, the kernel of step N+1 is already starting and importing what its notebook
imports (a silent request that does not count as a cell), so papermill finds it ready. A kernel
is shut down, and an executed notebook converted to HTML, in a background thread while the next
step runs; :meth:`Background.wait` joins them all before the manifest is final.

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
# what the step's helpers import inside functions (MLflow and the model format): seconds each
WARM_EXTRA = {"train": ["import mlflow", "import mlflow.sklearn", "import mlflow.models", "import skops.io"],
              "deploy": ["import mlflow", "import mlflow.sklearn", "import mlflow.pyfunc", "import skops.io"]}


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
            shutdown(manager) if background is None else background.submit(shutdown, manager)


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
    """One worker thread for what need not block the next step (HTML, kernel shutdown)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftgate-background")
        self._futures: list[Future[Any]] = []

    def submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``job(*args)`` in the worker thread."""
        future = self._pool.submit(job, *args)
        self._futures.append(future)
        return future

    def wait(self) -> None:
        """Wait for every submitted job (their errors are their futures' to report)."""
        for future in self._futures:
            with contextlib.suppress(Exception):
                future.result()
        self._futures.clear()

    def close(self) -> None:
        """Wait, then stop the worker thread."""
        self.wait()
        self._pool.shutdown(wait=True)
