"""Wall time of `driftgate run` against the unavoidable floor, and of an unchanged rerun.

The floor: papermill running four trivial notebooks that only import the same libraries
(pandas, numpy, scipy, sklearn, matplotlib, mlflow, helpers) in a fresh kernel each, as the
pipeline does. The pipeline runs in a temporary folder: once (which also creates the MLflow
store), then `driftgate run --force` (every step executed: the measured run), then unchanged:
every step is reused (incremental runs), so it should take at most 10% of the forced run.

The `--force` run's manifest's step timings (kernel start, imports, data
load, the cells' work, HTML conversion; set-up, index page and MLflow logging of the runner) are
printed as a table.

    .venv/bin/python benchmarks/pipeline_floor.py [--params params/default.yaml] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = """import numpy, pandas, scipy.stats, sklearn.ensemble, matplotlib.pyplot, mlflow
import helpers.pipeline.runner, helpers.pipeline.context"""


def floor_once(folder: Path) -> float:
    """Seconds for papermill to run four import-only notebooks."""
    source = folder / "trivial.ipynb"
    nb = new_notebook(cells=[new_code_cell("params_file = ''"), new_code_cell(IMPORTS)])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, source)
    start = time.perf_counter()
    for i in range(4):
        pm.execute_notebook(str(source), str(folder / f"out{i}.ipynb"), parameters={"params_file": "x"},
                            kernel_name="python3", progress_bar=False)
    return time.perf_counter() - start


def pipeline_once(params: Path, folder: Path, *extra: str) -> float:
    """Seconds for `driftgate run` (subprocess, as a user runs it) into ``folder``."""
    driftgate = Path(sys.executable).with_name("driftgate")
    start = time.perf_counter()
    subprocess.run([str(driftgate), "run", "--params", str(params), "--no-progress",
                    "-p", f"outputs.dir={folder / 'outputs'}", *extra], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def newest_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the newest run under ``folder/outputs/runs``."""
    return json.loads(sorted((folder / "outputs" / "runs").glob("*/manifest.json"))[-1].read_text())


COLUMNS = ("papermill_s", "kernel_start_s", "imports_s", "load_s", "work_s", "html_s")


def breakdown(manifest: dict[str, Any], wall: float, cells: int = 3) -> str:
    """A table of where the cold run's time went, step by step (from the manifest's timings),
    with each step's slowest cells."""
    head = f"{'step':<12}" + "".join(f"{c.removesuffix('_s'):>12}" for c in COLUMNS) + f"{'step total':>12}"
    lines = [head]
    for step in manifest["steps"]:
        t = step.get("timings", {})
        row = "".join(f"{t[c]:12.2f}" if isinstance(t.get(c), int | float) else f"{'-':>12}" for c in COLUMNS)
        lines.append(f"{step['name']:<12}{row}{step.get('duration_s', 0.0):12.2f}")
    run = manifest.get("timings", {})
    steps_total = sum(s.get("duration_s", 0.0) for s in manifest["steps"])
    lines.append(f"runner: set-up {run.get('setup_s', 0):.2f} s, index page {run.get('index_s', 0):.2f} s, "
                 f"MLflow logging {run.get('mlflow_log_s', 0):.2f} s, steps {steps_total:.2f} s, "
                 f"process start and the rest {wall - steps_total - sum(run.values()):.2f} s (wall {wall:.2f} s)")
    for step in manifest["steps"]:
        slow = sorted(step.get("timings", {}).get("cells", []), key=lambda c: -c[1])[:cells]
        lines.append(f"  {step['name']:<11} slowest cells: " + "; ".join(f"{s:.2f} s {label}" for label, s in slow))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "params" / "default.yaml"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    floors, firsts, runs, reruns, tables = [], [], [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            floors.append(floor_once(Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            firsts.append(pipeline_once(Path(args.params), Path(tmp)))
            runs.append(pipeline_once(Path(args.params), Path(tmp), "--force"))
            tables.append(breakdown(newest_manifest(Path(tmp)), runs[-1]))
            reruns.append(pipeline_once(Path(args.params), Path(tmp)))
    floor, first, run, rerun = (statistics.median(x) for x in (floors, firsts, runs, reruns))
    print(f"params: {args.params}")
    print(f"floor (papermill, 4 import-only notebooks): {floor:6.1f} s")
    print(f"first driftgate run in a fresh folder (creates the MLflow store): {first:6.1f} s = {first / floor:.2f}x")
    print(f"driftgate run --force (4 real notebooks, HTML, MLflow): {run:6.1f} s")
    print(f"ratio run --force / floor: {run / floor:.2f}")
    print(f"unchanged rerun (every step reused): {rerun:6.1f} s = {rerun / run:.1%} of the --force run")
    print("\nwhere the --force run's time goes (seconds; the run nearest the median):")
    print(tables[min(range(len(runs)), key=lambda i: abs(runs[i] - run))])

if __name__ == "__main__":
    main()
