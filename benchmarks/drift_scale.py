"""Drift at scale: the in-memory path against a local Dask cluster, side by side in one run.

    .venv/bin/python benchmarks/drift_scale.py [--rows 10000000] [--columns 20] [--file-rows 500000]
                                               [--workers 2] [--skip-pandas] [--dir DIR] [--keep]

Writes ``--rows`` rows (half baseline, half target with a few shifted columns) x ``--columns``
columns (numeric measurements, integer codes, text categories) as Parquet files of
``--file-rows`` rows in a temporary folder, then runs, each in its own process:

* ``pandas``: ``read_table`` + :func:`helpers.stats.compare.compare` (every row in memory, exact);
* ``dask``: :func:`helpers.stats.scale.compare_at_scale` on a LocalCluster (``--workers`` worker
  processes of one thread each, ``compute.memory_limit`` 2GB; the scheduler and the nannies
  run inside the client process, so its figure covers them).

For each it prints the wall time, rows per second and the peak resident memory of every
process (``ru_maxrss`` of the client process, and of each worker through ``Client.run``),
then how the two reports agree: exact metrics (largest difference), KS and Wasserstein errors
against their stated bounds, and the drift coefficients.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EXACT = ("psi", "jensenshannon", "chi2_statistic", "chi2_pvalue", "euclidean")


def _mb(kilobytes: float) -> float:
    return kilobytes / 1024.0


def write_data(folder: Path, rows: int, columns: int, file_rows: int, seed: int = 0) -> dict[str, Any]:
    """``rows`` rows as Parquet files under ``folder/baseline`` and ``folder/target``."""
    rng = np.random.default_rng(seed)
    n_text = max(columns // 10, 1)
    n_codes = max(columns // 7, 1)
    n_numeric = columns - n_text - n_codes
    labels = np.array([f"cat-{i:02d}" for i in range(12)], dtype=object)
    written = 0
    for side, shift in (("baseline", 0.0), ("target", 0.25)):
        (folder / side).mkdir(parents=True, exist_ok=True)
        side_rows = rows // 2
        for start in range(0, side_rows, file_rows):
            n = min(file_rows, side_rows - start)
            data: dict[str, Any] = {}
            for j in range(n_numeric):
                moved = shift if j % 4 == 0 else 0.0
                data[f"x{j:02d}"] = rng.normal(10.0 * j + moved, 1.0 + j % 3, n) if j % 2 else rng.lognormal(
                    moved, 0.5, n)
            for j in range(n_codes):
                data[f"code{j}"] = rng.integers(0, 6 + j, n)
            for j in range(n_text):
                p = np.linspace(1.0, 2.0 + shift * j, len(labels))
                data[f"cat{j}"] = rng.choice(labels, n, p=p / p.sum())
            pd.DataFrame(data).to_parquet(folder / side / f"part-{start // file_rows:04d}.parquet",
                                          row_group_size=100_000)
            written += n
    return {"rows": written, "columns": columns, "numeric": n_numeric, "codes": n_codes, "text": n_text}


def run_pandas(folder: Path, out: Path) -> dict[str, Any]:
    """Read both sides into memory and compare them exactly."""
    from helpers.core.config import DriftParams
    from helpers.modeling.data import read_table
    from helpers.stats.compare import compare

    start = time.perf_counter()
    baseline = read_table(str(folder / "baseline" / "*.parquet"))
    target = read_table(str(folder / "target" / "*.parquet"))
    read = time.perf_counter() - start
    report = compare(baseline, target, DriftParams())
    wall = time.perf_counter() - start
    out.write_text(json.dumps(report.to_dict()))
    peak = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return {"path": "pandas", "wall": wall, "read": read, "rows": len(baseline) + len(target),
            "processes": {"client": peak}}


def run_dask(folder: Path, out: Path, workers: int) -> dict[str, Any]:
    """Compare on a local cluster; the workers report their own peak memory."""
    from helpers.core.config import ComputeParams, DriftParams
    from helpers.stats.dask_cluster import local_client
    from helpers.stats.scale import compare_at_scale

    compute = ComputeParams(scheduler="local", n_workers=workers, threads_per_worker=1, memory_limit="2GB",
                            progress=False)
    start = time.perf_counter()
    with local_client(compute) as client:
        ready = time.perf_counter() - start
        report = compare_at_scale(str(folder / "baseline" / "*.parquet"), str(folder / "target" / "*.parquet"),
                                  DriftParams(), compute, client=client)
        wall = time.perf_counter() - start
        peaks = client.run(_peak_kb)
    out.write_text(json.dumps(report.to_dict()))
    processes = {"client": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}
    processes.update({f"worker {i}": _mb(kb) for i, kb in enumerate(peaks.values())})
    return {"path": "dask", "wall": wall, "cluster_start": ready, "rows": report.baseline_rows + report.target_rows,
            "processes": processes}


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def agreement(exact: dict[str, Any], scaled: dict[str, Any]) -> dict[str, Any]:
    """Largest differences of exact metrics, and approximate ones against their bounds."""
    by_name = {f["feature"]: f for f in exact["features"]}
    worst = {"exact": 0.0, "counts_equal": True, "types_equal": True, "ks_within": True, "w_within": True,
             "ks_err": 0.0, "w_err": 0.0, "decisions_equal": True}
    for f in scaled["features"]:
        g = by_name[f["feature"]]
        worst["types_equal"] &= f["type"] == g["type"]
        worst["decisions_equal"] &= f["drifted"] == g["drifted"]
        if not f["compared"]:
            continue
        for key in EXACT:
            if key in g["metrics"]:
                worst["exact"] = max(worst["exact"], abs(f["metrics"][key] - g["metrics"][key]))
        for side in ("baseline", "target"):
            worst["counts_equal"] &= all(f[side][k] == g[side][k] for k in ("count", "missing", "rows"))
        if f["type"] == "numeric":
            ks_err = abs(f["metrics"]["ks_statistic"] - g["metrics"]["ks_statistic"])
            w_err = abs(f["metrics"]["wasserstein"] - g["metrics"]["wasserstein"])
            worst["ks_err"] = max(worst["ks_err"], ks_err)
            worst["w_err"] = max(worst["w_err"], w_err)
            worst["ks_within"] &= ks_err <= f["metrics"]["ks_error_bound"]
            worst["w_within"] &= w_err <= f["metrics"]["wasserstein_error_bound"]
    worst["coefficient"] = (exact["summary"]["coefficient"], scaled["summary"]["coefficient"])
    return worst


def _child(args: argparse.Namespace, path: str, folder: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", path, "--dir", str(folder), "--workers", str(args.workers)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{path} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_result(result: dict[str, Any]) -> None:
    rate = result["rows"] / result["wall"]
    extra = f" (cluster start {result['cluster_start']:.1f} s)" if "cluster_start" in result else ""
    extra += f" (reading {result['read']:.1f} s)" if "read" in result else ""
    print(f"{result['path']:>6}: {result['wall']:7.1f} s wall{extra}, {rate:,.0f} rows/s")
    for name, mb in result["processes"].items():
        print(f"        peak RSS {name:<9} {mb:8.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in all (half baseline, half target)")
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--file-rows", type=int, default=500_000, help="rows per Parquet file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-pandas", action="store_true", help="only the Dask path (data too big for memory)")
    parser.add_argument("--dir", help="data folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--child", choices=["pandas", "dask"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder = Path(args.dir)
        out = folder / f"report-{args.child}.json"
        result = run_pandas(folder, out) if args.child == "pandas" else run_dask(folder, out, args.workers)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="drift-scale-", dir=args.dir) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        info = write_data(folder, args.rows, args.columns, args.file_rows)
        print(f"data: {info['rows']:,} rows x {info['columns']} columns ({info['numeric']} numeric, "
              f"{info['codes']} integer codes, {info['text']} text) in {args.file_rows:,}-row Parquet files; "
              f"written in {time.perf_counter() - start:.0f} s")
        results = [] if args.skip_pandas else [_child(args, "pandas", folder)]
        results.append(_child(args, "dask", folder))
        for result in results:
            _print_result(result)
        if len(results) == 2:
            ratio = results[1]["wall"] / results[0]["wall"]
            print(f"dask / pandas wall time: {ratio:.2f}")
            exact = json.loads((folder / "report-pandas.json").read_text())
            scaled = json.loads((folder / "report-dask.json").read_text())
            print(f"agreement: {agreement(exact, scaled)}")
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="drift-scale-kept-"))
            for side in ("baseline", "target"):
                (folder / side).rename(kept / side)
            print(f"data kept in {kept}")


if __name__ == "__main__":
    main()
