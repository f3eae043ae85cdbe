"""Helpers for the live-evidence tests (shadow gate, automatic rollback): versions trained on chosen
months by the real train step (registered with their monitoring baseline and performance
estimator in a real MLflow SQLite store), and captured traffic written by the real capture writer,
with each version's real predictions in its role (champion, shadow, canary)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core import catalogue
from helpers.core.config import Params, load_params
from helpers.modeling import data as data_mod
from helpers.modeling.data import window
from helpers.pipeline import context as pipeline
from helpers.pipeline import train_step
from helpers.registry import store as registry
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
from helpers.serving.capture_store import CaptureWriter
from support import write_params

STALE = ("2011-01-01", "2011-05-01")  # January-April
LATEST = ("2011-04-01", "2011-07-01")  # April-June: better on July
ONE_WEEK = ("2011-01-03", "2011-01-17")  # two winter weeks: bad on July
REQUEST_ROWS = 40


@dataclass
class Version:
    """A registered version and its fitted model."""

    version: str
    model: Any
    summary: dict[str, Any]  # the train step's summary (evaluation.json)


def release_champion(params_file: Path, run_dir: Path) -> str:
    """Train on the params' baseline window and release it as champion, in process (what notebooks 03 and 04 do)."""
    ctx = pipeline.open_step("train", str(params_file), str(run_dir))
    rows = train_step.training_data(ctx)
    model = train_step.fit(ctx, rows.train)
    summary = train_step.register(ctx, model, rows, train_step.evaluate(ctx, model, rows))
    version = summary["model"]["version"]
    registry.promote(registry.connect(ctx.params), ctx.params.mlflow.model_name, version)
    return version


def register_version(folder: Path, label: str, baseline: tuple[str, str], **changes: Any) -> Version:
    """Train on ``baseline`` months with the train step and register the version (alias challenger)."""
    params_file = write_params(folder, name=f"{label}.yaml", **changes,
                               **{"windows.baseline.start": baseline[0], "windows.baseline.end": baseline[1]})
    ctx = pipeline.open_step("train", str(params_file), str(folder / f"run-{label}"))
    rows = train_step.training_data(ctx)
    model = train_step.fit(ctx, rows.train)
    summary = train_step.register(ctx, model, rows, train_step.evaluate(ctx, model, rows))
    return Version(str(summary["model"]["version"]), model, summary)


def month_rows(params: Params, start: str, end: str) -> pd.DataFrame:
    """The embedded data's rows of ``[start, end)``."""
    frame = data_mod.check_params_against_data(params)
    return window(frame, type(params.windows.current)(start=start, end=end))


def write_traffic(params: Params, rows: pd.DataFrame, roles: dict[str, Version], *, start: float,
                  labelled_requests: int | None = None, prefix: str = "r", labels: str = "target",
                  seconds_apart: float = 60.0) -> list[str]:
    """``rows`` as requests of :data:`REQUEST_ROWS` rows from ``start`` (epoch seconds), each
    scored by every version of ``roles`` (role -> version) under the same request id; feedback
    for the first ``labelled_requests`` requests (all when None): the true target, or the
    champion's own prediction (``labels="champion"``). Returns the request ids."""
    features = list(params.data.features)
    ids = []
    with CaptureWriter(params.outputs_dir / catalogue.CAPTURES_DIR, flush_interval=0.2) as writer:
        for i in range(0, len(rows), REQUEST_ROWS):
            chunk = rows.iloc[i:i + REQUEST_ROWS]
            inputs = chunk[features].reset_index(drop=True)
            request_id, when = f"{prefix}-{i // REQUEST_ROWS}", start + seconds_apart * (i // REQUEST_ROWS)
            ids.append(request_id)
            predicted = {}
            for role, version in roles.items():
                predicted[role] = np.asarray(version.model.predict(inputs))
                writer.submit(CaptureRecord.from_frame(request_id, inputs, predicted[role],
                                                       model_name=params.mlflow.model_name,
                                                       model_version=version.version, latency_ms=1.0,
                                                       timestamp=when, role=role))
            if labelled_requests is None or len(ids) <= labelled_requests:
                truth = predicted["champion"] if labels == "champion" else chunk[params.data.target].to_numpy()
                writer.submit(FeedbackRecord(params.mlflow.model_name, [request_id] * len(chunk),
                                             list(range(len(chunk))), [float(v) for v in truth],
                                             timestamp=when + 1))
    return ids


def hours_ago(hours: float) -> float:
    """Epoch seconds ``hours`` before now."""
    return time.time() - 3600 * hours


def params_with(params_file: Path, **changes: Any) -> Params:
    """The params of ``params_file`` with dotted-key overrides."""
    return load_params(params_file, [f"{key}={value}" for key, value in changes.items()])
