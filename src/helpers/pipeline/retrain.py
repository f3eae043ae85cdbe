"""Retraining on captured traffic: when monitoring finds drift or degradation, run the pipeline on
the window's labelled captures, so the gates decide whether the retrained model replaces the champion.

Example
-------
>>> result = monitor_and_retrain(params, "params/default.yaml", window=resolve_window("day"))  # doctest: +SKIP
>>> result.retrain.status  # doctest: +SKIP
'succeeded'
"""

from __future__ import annotations

import pandas as pd

from helpers.core.catalogue import MONITORING_DIR
from helpers.core.config import Params
from helpers.core.errors import DataError
from helpers.core.files import write_json
from helpers.monitoring.monitor import MonitorResult, Window, resolve_window, run_monitor
from helpers.pipeline.runner import RunResult, run_pipeline
from helpers.reports.pages import write_index


def monitor_and_retrain(params: Params, params_file: str, overrides: list[str] | None = None, *,
                        window: Window | None = None, retrain: bool | None = None) -> MonitorResult:
    """Monitor one window (:func:`run_monitor`); on drift or degradation retrain when ``retrain``
    (default ``monitor.retrain``) says so, and record the retraining run in the summary."""
    result = run_monitor(params, window=window or resolve_window(params.monitor.period))
    wants_retrain = params.monitor.retrain if retrain is None else retrain
    if wants_retrain and result.found_problem:
        result.retrain = retrain_on_captures(params, params_file, overrides or [], result.labelled, result.window)
        result.summary["retrain"] = {"run_id": result.retrain.run_id, "status": result.retrain.status,
                                     "release": result.retrain.manifest.get("summaries", {}).get("deploy", {})}
        write_json(result.json, result.summary)
        write_index(params.outputs_dir)
    return result


def retrain_on_captures(params: Params, params_file: str, overrides: list[str], labelled: pd.DataFrame,
                        window: Window) -> RunResult:
    """Run the pipeline on the window's labelled captures: the earlier rows train, the latest
    ``monitor.retrain_test_share`` are the current window on which the gates compare models."""
    if len(labelled) < 2 * params.validation.min_rows:
        raise DataError(f"retraining needs labelled captures: {len(labelled)} rows with feedback in the window, "
                        f"at least {2 * params.validation.min_rows} wanted (validation.min_rows x 2)")
    frame = labelled[[*params.data.features, "label", "timestamp"]].rename(columns={"label": params.data.target})
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(None)
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    cut = frame["timestamp"].iloc[int(len(frame) * (1 - params.monitor.retrain_test_share))]
    path = params.outputs_dir / MONITORING_DIR / f"{params.mlflow.model_name}-{window.label}-retrain.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    first, last = frame["timestamp"].iloc[0], frame["timestamp"].iloc[-1] + pd.Timedelta(microseconds=1)
    return run_pipeline(params_file, [
        *overrides, f"data.path={path}", "data.time.column=timestamp", "data.time.origin=null",
        "data.time.day_column=null", "data.time.hour_column=null",
        f"windows.baseline.start={_iso(first)}", f"windows.baseline.end={_iso(cut)}",
        f"windows.current.start={_iso(cut)}", f"windows.current.end={_iso(last)}",
    ], progress=False)


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.to_pydatetime().isoformat()
