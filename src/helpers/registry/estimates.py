"""A registered version's performance estimator: the CBPE/DLE files its training run logged under
``baseline/`` (:mod:`helpers.modeling.performance_estimation`).

Example
-------
>>> est, note = version_estimator(run_id)  # doctest: +SKIP
>>> est.describe()["method"] if est else note  # doctest: +SKIP
'DLE'
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from helpers.core.catalogue import LOSS_MODELS, PERFORMANCE_ESTIMATOR
from helpers.core.errors import DataError
from helpers.modeling.performance_estimation import PerformanceEstimator, load_estimator
from helpers.registry.store import short_error

BASELINE_ARTIFACTS = "baseline"


def version_estimator(run_id: str) -> tuple[PerformanceEstimator | None, str]:
    """The estimator logged with MLflow run ``run_id``, or None and why not (a model trained
    before estimators were saved, or on too few held-out rows)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="driftgate-estimator-") as folder:
        try:
            document = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{BASELINE_ARTIFACTS}/{PERFORMANCE_ESTIMATOR}", dst_path=folder)
        except Exception as exc:
            return None, (f"run {run_id} has no {BASELINE_ARTIFACTS}/{PERFORMANCE_ESTIMATOR} (trained before "
                          f"estimators were saved, or on too few held-out rows): {exc.__class__.__name__}")
        local = Path(document).parent
        try:
            if _task(local) == "regression":
                models = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=f"{BASELINE_ARTIFACTS}/{LOSS_MODELS}", dst_path=str(local))
                if Path(models).parent != local:  # keep the pair together, whatever the store's layout
                    Path(models).replace(local / LOSS_MODELS)
            return load_estimator(local), "loaded"
        except (DataError, OSError, ValueError, KeyError) as exc:
            return None, f"run {run_id}: cannot load its performance estimator ({short_error(exc)})"
        except Exception as exc:  # an MLflow download error
            return None, f"run {run_id}: cannot download its performance estimator ({short_error(exc)})"


def _task(folder: Path) -> Any:
    return json.loads((folder / PERFORMANCE_ESTIMATOR).read_text()).get("task")
