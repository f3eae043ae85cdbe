"""Benchmark: Driftgate's estimated performance (CBPE, DLE) against NannyML's on the two demos.

    .venv/bin/python benchmarks/estimation_vs_nannyml.py [--nannyml-venv DIR] [--keep]

For each demo (the classification demo ``params/classification.yaml``, Seattle weather; the bike
demo ``params/default.yaml``) the script trains the demo's model on its baseline window, takes
the held-out test rows with their predictions as the reference, and every later row as traffic,
split into chunks of equal size (the weather demo trains on 2012-2013 and holds out 40 % of it at
random, instead of the last 20 % of 2012: NannyML cannot calibrate on a reference with a single
row of a class). For each chunk it computes the realized metric (labels known),
Driftgate's estimate (:mod:`helpers.modeling.performance_estimation`, labels unseen) and
NannyML's (``nannyml.CBPE`` / ``nannyml.DLE``, defaults), each fitted on the same reference.

It prints, per demo and metric: the mean absolute error of each estimate against the realized
value over the chunks, how often the realized value falls inside each band (Driftgate's at
``monitor.confidence`` 95 %; NannyML's confidence boundary, its estimate plus or minus three
sampling errors, and the same at 1.96), and the time each takes to fit and estimate every chunk
(in its own process after the data is loaded and the libraries are imported; CPU time too).

NannyML needs pandas below 3 (and imports statsmodels without requiring it), so the script
installs them with pip into a separate virtual environment under a temporary folder (or reuses
``--nannyml-venv``); that step needs access to the package index. NannyML's usage reporting is
turned off (``NML_DISABLE_USAGE_LOGGING``).
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

NANNYML = "nannyml==0.13.1"
ROOT = Path(__file__).resolve().parents[1]
DEMOS = {  # name: params file, chunk size (rows), metrics compared, params overrides
    # NannyML's calibration needs several reference rows of every class: the weather demo's own
    # held-out rows (the last 20 % of 2012, 73 days) hold one snow day and 2012 only five fog days,
    # so here the model learns 2012-2013 and both estimators calibrate on 40 % of it, drawn at random
    "weather": ("params/classification.yaml", 60, ["accuracy", "f1", "roc_auc"],
                ["windows.baseline.end=2014-01-01", "split.method=random", "split.test_size=0.4"]),
    "bike": ("params/default.yaml", 500, ["mae", "rmse"], []),
}


# --------------------------------------------------------------------------- data (main environment)


def write_demo(name: str, folder: Path) -> dict[str, Any]:
    """Train the demo's model; write ``<name>_reference.parquet`` (held-out rows: features,
    actual, predicted, probabilities) and ``<name>_analysis.parquet`` (the traffic, a whole
    number of chunks); return what the workers need to know."""
    from helpers.modeling import data as data_mod
    from helpers.modeling.train import predict
    from helpers.pipeline import context as pipeline
    from helpers.pipeline import train_step

    params_file, chunk, metrics, overrides = DEMOS[name]
    ctx = pipeline.open_step("train", str(ROOT / params_file), str(folder / f"{name}-run"), overrides)
    params = ctx.params
    rows = train_step.training_data(ctx)
    model = train_step.fit(ctx, rows.train)
    later = ctx.frame[ctx.frame[data_mod.TIME] >= str(params.windows.baseline.end)]
    later = later[later[params.data.target].notna()].reset_index(drop=True)
    later = later.iloc[: len(later) // chunk * chunk]
    meta = {"name": name, "task": params.data.task, "features": list(params.data.features), "chunk": chunk,
            "metrics": metrics, "params": str(ROOT / params_file), "overrides": overrides}
    for kind, frame in (("reference", rows.test), ("analysis", later)):
        predictions = predict(model, frame, params)
        table = frame[params.data.features].reset_index(drop=True).copy()
        for column in predictions.columns:
            if column != data_mod.TIME:
                table[column] = predictions[column].to_numpy()
        if kind == "reference":
            table = table[table["actual"].notna()].reset_index(drop=True)
        meta["classes"] = predictions.attrs.get("classes")
        table.to_parquet(folder / f"{name}_{kind}.parquet", index=False)
    meta["rows"] = {"reference": len(rows.test), "analysis": len(later)}
    return meta


def realized(meta: dict[str, Any], folder: Path) -> list[dict[str, float]]:
    """The realized metrics of every chunk."""
    import pandas as pd

    from helpers.modeling.metrics import metrics

    frame = pd.read_parquet(folder / f"{meta['name']}_analysis.parquet")
    out = []
    for start in range(0, len(frame), meta["chunk"]):
        part = frame.iloc[start: start + meta["chunk"]]
        if meta["task"] == "regression":
            out.append(metrics("regression", part["actual"], part["predicted"]))
        else:
            classes = meta["classes"]
            proba = part[[f"proba_{c}" for c in classes]].to_numpy()
            out.append(metrics("classification", part["actual"], part["predicted"], proba, classes=classes))
    return out


# --------------------------------------------------------------------------- workers (one process each)


def worker_driftgate(meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Fit Driftgate's estimator on the reference and estimate every chunk of the analysis."""
    import pandas as pd

    from helpers.core.config import load_params
    from helpers.modeling.performance_estimation import estimate, fit_estimator

    params = load_params(meta["params"], meta["overrides"])
    reference = pd.read_parquet(folder / f"{meta['name']}_reference.parquet")
    analysis = pd.read_parquet(folder / f"{meta['name']}_analysis.parquet").drop(columns=["actual"])
    analysis = analysis.rename(columns={"predicted": "prediction"})
    reference.attrs["classes"] = meta["classes"]
    wall, cpu = time.perf_counter(), time.process_time()
    est = fit_estimator(params, reference, reference)
    chunks = []
    for start in range(0, len(analysis), meta["chunk"]):
        found = estimate(est, analysis.iloc[start: start + meta["chunk"]], confidence=0.95)
        chunks.append({m: found[m].to_dict() for m in meta["metrics"] if m in found})
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, "chunks": chunks}


def worker_nannyml(meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Fit NannyML's CBPE or DLE on the reference and estimate every chunk of the analysis."""
    import logging
    import warnings

    import nannyml as nml
    import pandas as pd

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    reference = pd.read_parquet(folder / f"{meta['name']}_reference.parquet")
    analysis = pd.read_parquet(folder / f"{meta['name']}_analysis.parquet").drop(columns=["actual"])
    wall, cpu = time.perf_counter(), time.process_time()
    if meta["task"] == "regression":
        calc = nml.DLE(feature_column_names=meta["features"], y_pred="predicted", y_true="actual",
                       metrics=meta["metrics"], chunk_size=meta["chunk"])
    else:
        classes = meta["classes"]
        multiclass = len(classes) > 2
        proba = {c: f"proba_{c}" for c in classes} if multiclass else f"proba_{classes[-1]}"
        calc = nml.CBPE(y_pred_proba=proba, y_pred="predicted", y_true="actual", metrics=meta["metrics"],
                        chunk_size=meta["chunk"],
                        problem_type="classification_multiclass" if multiclass else "classification_binary")
    calc.fit(reference)
    table = calc.estimate(analysis).filter(period="analysis").to_df()
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    chunks = []
    for _, row in table.iterrows():
        chunk = {}
        for m in meta["metrics"]:
            value, error = float(row[(m, "value")]), float(row[(m, "sampling_error")])
            chunk[m] = {"value": value, "lower": float(row[(m, "lower_confidence_boundary")]),
                        "upper": float(row[(m, "upper_confidence_boundary")]),
                        "lower_95": value - 1.96 * error, "upper_95": value + 1.96 * error}
        chunks.append(chunk)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "chunks": chunks}


def run_worker(kind: str, meta_file: str) -> None:
    """Entry point of a child process: print the worker's result as JSON."""
    meta = json.loads(Path(meta_file).read_text())
    worker = worker_driftgate if kind == "driftgate" else worker_nannyml
    print(json.dumps(worker(meta, Path(meta_file).parent)))


# --------------------------------------------------------------------------- orchestration


def nannyml_python(folder: Path, reuse: Path | None) -> Path:
    """The Python of a virtual environment holding NannyML (created with pip if needed)."""
    env = reuse or folder / "nannyml-venv"
    python = env / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import nannyml"], capture_output=True).returncode == 0:
        return python
    print(f"installing {NANNYML} into {env} ...", flush=True)
    venv.create(env, with_pip=True)
    packages = [NANNYML, "statsmodels", "pandas<3", "pyarrow"]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def measure(python: Path, kind: str, meta_file: Path) -> dict[str, Any]:
    """Run one worker in a child process (one OpenMP thread each, as Driftgate runs its notebooks)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
           "NML_DISABLE_USAGE_LOGGING": "1"}  # NannyML otherwise reports usage over the network
    done = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", kind, str(meta_file)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def score(chunks: list[dict[str, Any]], truth: list[dict[str, float]], metric: str, kept: list[int],
          lower: str = "lower", upper: str = "upper") -> tuple[float, float]:
    """Mean absolute error of the estimates and the share of chunks whose realized value is in the
    band, over the chunks ``kept``."""
    pairs = [(chunks[i][metric], truth[i][metric]) for i in kept]
    error = sum(abs(c["value"] - t) for c, t in pairs) / len(pairs)
    inside = sum(c[lower] <= t <= c[upper] for c, t in pairs) / len(pairs)
    return error, inside


def bench_demo(name: str, folder: Path, nml_python: Path) -> dict[str, Any]:
    """Both estimators on one demo: per metric error and coverage, and the times."""
    meta = write_demo(name, folder)
    meta_file = folder / f"{name}.json"
    meta_file.write_text(json.dumps(meta))
    truth = realized(meta, folder)
    ours = measure(Path(sys.executable), "driftgate", meta_file)
    theirs = measure(nml_python, "nannyml", meta_file)
    if len(theirs["chunks"]) != len(truth):
        raise RuntimeError(f"{name}: NannyML made {len(theirs['chunks'])} chunks, expected {len(truth)}")
    rows = []
    for metric in meta["metrics"]:
        kept = [i for i in range(len(truth)) if _finite(truth[i].get(metric))
                and _finite(ours["chunks"][i].get(metric, {}).get("value"))
                and _finite(theirs["chunks"][i].get(metric, {}).get("value"))]  # NannyML: NaN AUC without a class
        dg_err, dg_in = score(ours["chunks"], truth, metric, kept)
        nml_err, nml_in = score(theirs["chunks"], truth, metric, kept)
        _, nml_in95 = score(theirs["chunks"], truth, metric, kept, "lower_95", "upper_95")
        rows.append({"metric": metric, "chunks": len(kept), "dg_error": dg_err, "nml_error": nml_err,
                     "dg_inside": dg_in, "nml_inside": nml_in, "nml_inside_95": nml_in95})
    return {"demo": name, "chunks": len(truth), "chunk_rows": meta["chunk"],
            "reference_rows": meta["rows"]["reference"], "metrics": rows, "ours": ours, "theirs": theirs}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and value == value and abs(value) != float("inf")


def print_table(results: list[dict[str, Any]]) -> None:
    """The comparison, one line per demo and metric."""
    print()
    print(f"{'demo':<8} {'metric':<9} {'chunks':>6} {'DG MAE':>8} {'NML MAE':>8} {'DG in 95%':>10} "
          f"{'NML in ±3σ':>11} {'NML in 95%':>11} {'DG s':>7} {'NML s':>7} {'speed-up':>9} {'CPU x':>6}")
    for r in results:
        ours, theirs = r["ours"], r["theirs"]
        for m in r["metrics"]:
            print(f"{r['demo']:<8} {m['metric']:<9} {m['chunks']:>6} {m['dg_error']:>8.4g} {m['nml_error']:>8.4g} "
                  f"{m['dg_inside']:>10.0%} {m['nml_inside']:>11.0%} {m['nml_inside_95']:>11.0%} "
                  f"{ours['seconds']:>7.2f} {theirs['seconds']:>7.2f} {theirs['seconds'] / ours['seconds']:>8.1f}x "
                  f"{theirs['cpu_seconds'] / ours['cpu_seconds']:>5.1f}x")
    print("\nMAE: mean absolute error of the estimate against the realized metric over the chunks (lower is better).")
    print("in band: share of chunks whose realized metric lies inside the band. Times: fit + every chunk.")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nannyml-venv", type=Path, help="reuse (or create) NannyML's environment here")
    parser.add_argument("--demos", nargs="+", default=list(DEMOS), choices=list(DEMOS))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "META"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(*args.worker)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="driftgate-estimation-bench-"))
    try:
        nml_python = nannyml_python(folder, args.nannyml_venv)
        results = [bench_demo(name, folder, nml_python) for name in args.demos]
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
