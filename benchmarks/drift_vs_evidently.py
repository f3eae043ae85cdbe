"""Benchmark: Driftgate's drift report against Evidently's DataDriftPreset on the same data.

    .venv/bin/python benchmarks/drift_vs_evidently.py [--rows 100000 1000000] [--repeat N]
                                                      [--evidently-venv DIR] [--keep]

Synthetic data: 15 numeric and 5 categorical (10 levels) columns, 7 of them shifted (3 numeric
means, 2 numeric scales, 2 category mixes), ``rows`` rows on each side, seeded. For each size
the script times, each in a fresh child process after the data is loaded and the libraries are
imported:

* Driftgate: ``helpers.stats.compare.compare`` (every statistic, the drift coefficient) plus
  ``helpers.reports.drift_report.write_html``;
* Evidently: ``Report([DataDriftPreset()]).run`` plus ``save_html``.

It prints both times, their ratio, the peak memory of each child (``ru_maxrss``), the HTML sizes,
and whether both flag the same columns. With ``--repeat N`` the two run N times, one after the
other in turn (the machine's load changes alike for both), and the table shows the median ratio
of the N pairs and the median times. Evidently 0.7 needs pandas below 3, so the script
installs it with pip into a separate virtual environment under a temporary folder (or reuses
``--evidently-venv``); that step needs access to the package index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

EVIDENTLY = "evidently>=0.7,<0.8"
NUMERIC, CATEGORICAL, LEVELS = 15, 5, 10
MEAN_SHIFTED = ("num0", "num1", "num2")  # mean + 0.5 sd
SCALE_SHIFTED = ("num3", "num4")  # sd x 1.6
MIX_SHIFTED = ("cat0", "cat1")  # 10 equal levels -> half the rows on two levels
SHIFTED = (*MEAN_SHIFTED, *SCALE_SHIFTED, *MIX_SHIFTED)


# --------------------------------------------------------------------------- data


def make_frame(rows: int, seed: int, shifted: bool) -> Any:
    """One side of the synthetic data (numpy and pandas only, so both environments can run it)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(NUMERIC):
        name = f"num{i}"
        mean = 0.5 if shifted and name in MEAN_SHIFTED else 0.0
        scale = 1.6 if shifted and name in SCALE_SHIFTED else 1.0
        if i % 3 == 2:  # some skewed columns
            columns[name] = np.exp(rng.normal(mean * 0.5, 0.5 * scale, rows))
        else:
            columns[name] = rng.normal(10.0 + mean, scale, rows)
    levels = np.array([f"level_{j}" for j in range(LEVELS)])
    for i in range(CATEGORICAL):
        name = f"cat{i}"
        p = np.full(LEVELS, 1.0 / LEVELS)
        if shifted and name in MIX_SHIFTED:
            p = np.r_[[0.3, 0.2], np.full(LEVELS - 2, 0.5 / (LEVELS - 2))]
        columns[name] = levels[rng.choice(LEVELS, rows, p=p)]
    return pd.DataFrame(columns)


def write_data(folder: Path, rows: int) -> tuple[Path, Path]:
    """Write the reference and current sides as Parquet files."""
    reference, current = folder / f"reference_{rows}.parquet", folder / f"current_{rows}.parquet"
    make_frame(rows, seed=1, shifted=False).to_parquet(reference)
    make_frame(rows, seed=2, shifted=True).to_parquet(current)
    return reference, current


# --------------------------------------------------------------------------- workers (child processes)


def worker_driftgate(reference: str, current: str, html: str) -> dict[str, Any]:
    """Time Driftgate's full report: statistics, drift coefficient and HTML."""
    import pandas as pd
    import sklearn.ensemble  # noqa: F401  (imported before timing, like Evidently's imports)

    from helpers.core.config import DriftParams
    from helpers.reports import (
        drift_report,  # noqa: F401
    )
    from helpers.stats.compare import compare

    ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
    start = time.perf_counter()
    cpu = time.process_time()
    report = compare(ref, cur, DriftParams())
    statistics = time.perf_counter() - start
    drift_report.write_html(report, Path(html), title="Driftgate benchmark")
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "compare_seconds": statistics,
        "html_seconds": seconds - statistics,
        "flagged": sorted(report.drifted_features),
        "coefficient": report.coefficient,
    }


def worker_evidently(reference: str, current: str, html: str) -> dict[str, Any]:
    """Time Evidently's DataDriftPreset: ``Report.run`` plus ``save_html``."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
    start = time.perf_counter()
    cpu = time.process_time()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    snapshot.save_html(html)
    seconds = time.perf_counter() - start
    flagged = sorted(_evidently_flagged(snapshot.dict(), list(ref.columns)))
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "flagged": flagged}


def _evidently_flagged(result: dict[str, Any], columns: list[str]) -> list[str]:
    """Columns whose ValueDrift score crosses its threshold (p-values below, distances at or above)."""
    flagged = []
    for metric in result.get("metrics", []):
        config = metric.get("config", {})
        if config.get("type", "").split(":")[-1] != "ValueDrift":
            continue
        column, method = config.get("column"), str(config.get("method", ""))
        threshold, value = config.get("threshold"), metric.get("value")
        if column not in columns or threshold is None or value is None:
            continue
        is_pvalue = "p_value" in method
        if (value < threshold) if is_pvalue else (value >= threshold):
            flagged.append(column)
    return flagged


def run_worker(kind: str, reference: str, current: str, html: str) -> None:
    """Entry point of a child process: print the worker's result as JSON."""
    worker = worker_driftgate if kind == "driftgate" else worker_evidently
    print(json.dumps(worker(reference, current, html)))


# --------------------------------------------------------------------------- orchestration


def evidently_python(folder: Path, reuse: Path | None) -> Path:
    """The Python of a virtual environment holding Evidently (created with pip if needed)."""
    env = reuse or folder / "evidently-venv"
    python = env / "bin" / "python"
    if python.exists() and _has_evidently(python):
        return python
    print(f"installing {EVIDENTLY} into {env} ...", flush=True)
    venv.create(env, with_pip=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", EVIDENTLY, "pandas<3", "pyarrow"], check=True)
    return python


def _has_evidently(python: Path) -> bool:
    return subprocess.run([str(python), "-c", "import evidently"], capture_output=True).returncode == 0


def measure(python: Path, kind: str, reference: Path, current: Path, html: Path) -> dict[str, Any]:
    """Run one worker in a child process; add its peak memory and HTML size."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    command = [str(python), str(Path(__file__).resolve()), "--worker", kind, str(reference), str(current), str(html)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # reap it ourselves to get its resource usage
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024.0  # Linux reports KiB
    result["html_mb"] = html.stat().st_size / 1e6
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs per size (median ratio shown)")
    parser.add_argument("--evidently-venv", type=Path, help="reuse (or create) Evidently's environment here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (data and reports)")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "REF", "CUR", "HTML"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(*args.worker)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="driftgate-bench-"))
    try:
        ev_python = evidently_python(folder, args.evidently_venv)
        rows = [_bench_size(folder, n, ev_python, max(1, args.repeat)) for n in args.rows]
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    _print_table(rows)
    return 0


def _bench_size(folder: Path, n: int, ev_python: Path, repeat: int = 1) -> dict[str, Any]:
    print(f"{n:,} rows a side: writing data ... (load average {_load()})", flush=True)
    reference, current = write_data(folder, n)
    pairs = []
    for _ in range(repeat):
        ours = measure(Path(sys.executable), "driftgate", reference, current, folder / f"driftgate_{n}.html")
        print(
            f"  driftgate {ours['seconds']:.2f} s (statistics and coefficient {ours['compare_seconds']:.2f} s, "
            f"HTML {ours['html_seconds']:.2f} s; CPU {ours['cpu_seconds']:.2f} s), flags {ours['flagged']}",
            flush=True,
        )
        theirs = measure(ev_python, "evidently", reference, current, folder / f"evidently_{n}.html")
        print(f"  evidently {theirs['seconds']:.2f} s (CPU {theirs['cpu_seconds']:.2f} s), flags {theirs['flagged']}",
              flush=True)
        pairs.append((ours, theirs))
    return {"rows": n, "ours": _median_run([o for o, _ in pairs]), "theirs": _median_run([t for _, t in pairs]),
            "speed_up": _median([t["seconds"] / o["seconds"] for o, t in pairs]),
            "cpu_speed_up": _median([t["cpu_seconds"] / o["cpu_seconds"] for o, t in pairs])}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The last run with every number replaced by its median over ``runs``."""
    merged = dict(runs[-1])
    for key, value in runs[-1].items():
        if isinstance(value, int | float) and not isinstance(value, bool) and all(r.get(key) is not None for r in runs):
            merged[key] = _median([r[key] for r in runs])
    return merged


def _print_table(results: list[dict[str, Any]]) -> None:
    print()
    header = (
        f"{'rows/side':>10} {'driftgate s':>12} {'evidently s':>12} {'speed-up':>9} {'CPU speed-up':>13} "
        f"{'dg peak MB':>11} {'ev peak MB':>11} {'dg HTML MB':>11} {'ev HTML MB':>11}  same columns flagged"
    )
    print(header)
    for r in results:
        ours, theirs = r["ours"], r["theirs"]
        same = ours["flagged"] == theirs["flagged"]
        print(
            f"{r['rows']:>10,} {ours['seconds']:>12.2f} {theirs['seconds']:>12.2f} "
            f"{r['speed_up']:>8.1f}x {r['cpu_speed_up']:>12.1f}x "
            f"{_fmt(ours['peak_mb']):>11} {_fmt(theirs['peak_mb']):>11} "
            f"{ours['html_mb']:>11.2f} {theirs['html_mb']:>11.2f}  {'yes' if same else 'NO'}"
        )
        if not same:
            print(f"{'':>10} driftgate: {ours['flagged']}\n{'':>10} evidently: {theirs['flagged']}")
    print(f"\nshifted by construction: {sorted(SHIFTED)}; load average at the end {_load()} "
          f"on {os.cpu_count()} cores")
    print("speed-up is wall time; CPU speed-up compares process CPU time (steadier on a busy machine);")
    print("with --repeat, each is the median over the pairs of runs, and so are the times")


def _load() -> str:
    """The 1, 5 and 15 minute load averages (the machine may be shared: ratios count, not times)."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


if __name__ == "__main__":
    sys.exit(main())
