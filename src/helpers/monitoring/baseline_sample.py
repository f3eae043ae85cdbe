"""The baseline sample: seeded training rows kept with a model, for the drift coefficient on traffic.

Profiles are enough for per-feature drift, but the drift coefficient needs rows: a classifier
learns to tell baseline rows from target rows. At training time :func:`log_baseline_sample`
keeps at most ``monitor.baseline_sample`` training rows (features only, drawn with
``drift.seed``) as ``baseline/baseline_sample.parquet`` of the model's MLflow run; monitoring
loads it (:func:`load_baseline_sample`) and computes the coefficient of captured traffic
against it with the drift report's own code (:func:`traffic_coefficient`). Models trained
before the sample was kept have none: their reports say the coefficient was not computed.

Example
-------
>>> sample = load_baseline_sample(run_id)  # doctest: +SKIP
>>> traffic_coefficient(sample, captured, baseline_profile, ["temp", "season"], params.drift).value  # doctest: +SKIP
0.91
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import BASELINE_SAMPLE
from helpers.core.config import DriftParams, Params
from helpers.stats.coefficient import Coefficient, sample_rows
from helpers.stats.compare import table_coefficient
from helpers.stats.profile import FrameProfile, NumericProfile

ARTIFACT_FOLDER = "baseline"  # the MLflow run's folder holding the monitoring baseline and this sample


def baseline_sample(rows: pd.DataFrame, features: list[str], size: int, seed: int) -> pd.DataFrame:
    """At most ``size`` of ``rows`` (their ``features``), drawn without replacement with ``seed``,
    in their original order, with a fresh index."""
    positions = sample_rows(len(rows), size, np.random.default_rng(seed))
    return rows[features].iloc[positions].reset_index(drop=True)


def log_baseline_sample(run_dir: Path, rows: pd.DataFrame, params: Params) -> Path | None:
    """Write the baseline sample of the training ``rows`` to ``run_dir`` and log it to the active
    MLflow run under ``baseline/``; None (nothing kept) when ``monitor.baseline_sample`` is 0."""
    import mlflow

    size = params.monitor.baseline_sample
    if size <= 0 or rows.empty:
        return None
    path = Path(run_dir) / BASELINE_SAMPLE
    baseline_sample(rows, list(params.data.features), size, params.drift.seed).to_parquet(path, index=False)
    mlflow.log_artifact(str(path), artifact_path=ARTIFACT_FOLDER)
    return path


def load_baseline_sample(run_id: str) -> pd.DataFrame | None:
    """The baseline sample logged with MLflow run ``run_id``; None when the run has none
    (trained before samples were kept, or with ``monitor.baseline_sample: 0``)."""
    import mlflow

    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{ARTIFACT_FOLDER}/{BASELINE_SAMPLE}")
    except Exception:  # noqa: BLE001 (MLflow raises several types for a missing artifact)
        return None
    return pd.read_parquet(local)


def traffic_coefficient(sample: pd.DataFrame | None, captured: Any, baseline: FrameProfile, features: list[str],
                        params: DriftParams) -> Coefficient | None:
    """The drift coefficient of the captured rows against the baseline sample, computed as the
    drift report computes it (:func:`helpers.stats.compare.table_coefficient`), each feature typed
    as the baseline profile types it. None when there is no sample (the report then says the
    coefficient was not computed); a note when the captures came as a profile (no rows)."""
    if sample is None:
        return None
    if isinstance(captured, FrameProfile):
        return Coefficient(None, notes=["drift coefficient not computed: captures profiled partition by partition "
                                        "(compute.scheduler is not pandas) hold no rows to classify"])
    usable = [f for f in features if f in sample.columns and f in captured.columns]
    if not usable or captured.empty:
        note = "drift coefficient not computed: no captured feature is in the baseline sample"
        return Coefficient(None, notes=[note])
    types = {f: "numeric" if isinstance(baseline.columns.get(f), NumericProfile) else "categorical"
             for f in usable if f in baseline.columns}
    settings = replace(params, column_types={**types, **params.column_types})
    return table_coefficient(sample[usable], captured[usable].reset_index(drop=True), settings, features=usable)
