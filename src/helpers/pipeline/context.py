"""The step context: what a notebook needs to do its step, and how it opens one.

Notebooks talk only through files in the run folder: each opens a :class:`StepContext` with
:func:`open_step`, reads upstream summaries and writes its own ``<step>.json``.

Example
-------
>>> ctx = open_step("drift", "../params/default.yaml")  # doctest: +SKIP
>>> ctx.read_summary("investigate")["headline"]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.core.catalogue import INTERACTIVE_RUN, STEP_SUMMARY
from helpers.core.config import Params, load_params
from helpers.core.errors import StepFailed
from helpers.core.files import read_json, write_json
from helpers.core.times import NAIVE, zone_name
from helpers.modeling.data import TIME, check_params_against_data
from helpers.pipeline import timings
from helpers.reports.plots import show_figures_inline


@dataclass
class StepContext:
    """What a notebook needs: validated params, its run folder, the data, upstream summaries."""

    step: str
    params: Params
    run_dir: Path
    frame: pd.DataFrame

    def summary_path(self, step: str | None = None) -> Path:
        """Path of a step's JSON summary in this run folder."""
        return self.run_dir / STEP_SUMMARY[step or self.step]

    def read_summary(self, step: str) -> dict[str, Any]:
        """An upstream step's summary; a clear error when that step has not run."""
        path = self.summary_path(step)
        if not path.is_file():
            raise StepFailed(
                f"{path}: missing; run the {step} step first (driftgate run, or its notebook)"
            )
        return read_json(path)

    def write_summary(self, payload: dict[str, Any]) -> Path:
        """Write this step's summary JSON atomically."""
        return write_json(self.summary_path(), payload)

    def describe(self) -> pd.DataFrame:
        """A small table saying what this step works on, with the zone its times and windows are in."""
        zone = zone_name(self.frame[TIME]) if TIME in self.frame else NAIVE
        rows = {
            "step": self.step,
            "params file": self.params.source,
            "params hash": self.params.params_hash[:12],
            "run folder": str(self.run_dir),
            "data": self.params.data.path,
            "rows": len(self.frame),
            "time zone": "naive (times carry no zone)" if zone == NAIVE else zone,
        }
        return pd.DataFrame({"value": rows}).rename_axis("what")


def open_step(step: str, params_file: str, run_dir: str = "", overrides: list[str] | None = None) -> StepContext:
    """Load and check params and data for ``step``; pick the run folder.

    An empty ``run_dir`` (a notebook opened by hand) uses ``outputs/interactive/``.
    """
    started = time.perf_counter()
    show_figures_inline()
    params = load_params(_find_params(params_file), overrides)
    _limit_threads(params.run.threads)
    frame = check_params_against_data(params)
    folder = Path(run_dir) if run_dir else params.outputs_dir / INTERACTIVE_RUN
    folder.mkdir(parents=True, exist_ok=True)
    if run_dir:  # a pipeline run: the runner adds this to the step's timings in the manifest
        timings.note(folder, step, load_s=time.perf_counter() - started)
    return StepContext(step=step, params=params, run_dir=folder.resolve(), frame=frame)


def _limit_threads(threads: int) -> None:
    """Cap OpenMP and BLAS threads for this process (a notebook kernel): HistGradientBoosting's
    OpenMP threads spin-wait, which on two busy cores costs far more than it gains."""
    if threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


def _find_params(params_file: str) -> Path:
    """Accept a path relative to the working folder, or (for the notebooks' default
    ``../params/...``) relative to a folder above it."""
    path = Path(params_file)
    if path.is_file() or path.is_absolute():
        return path
    relative = params_file.removeprefix("../")
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / relative).is_file():
            return folder / relative
    return path
