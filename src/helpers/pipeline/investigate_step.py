"""Step 1, investigate: the step summary and the baseline profile (notebook 01 shows the checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.core.catalogue import BASELINE_PROFILE
from helpers.core.files import write_json
from helpers.modeling import data as data_mod
from helpers.modeling import investigate
from helpers.pipeline.context import StepContext
from helpers.stats.column_types import infer_column_types
from helpers.stats.profiling import profile_frame


def finish_investigate(ctx: StepContext, checks: list[Any]) -> dict[str, Any]:
    """Write ``investigate.json`` and the baseline profile; return the summary."""
    summary = investigate.summary(ctx.frame, ctx.params, checks)
    summary["baseline_profile"] = write_baseline_profile(ctx).name
    summary["headline"] = {
        "rows": summary["rows"],
        "checks_failed": len(summary["failed_checks"]),
        "validation_passed": summary["validation_passed"],
    }
    ctx.write_summary(summary)
    return summary["headline"]


def write_baseline_profile(ctx: StepContext) -> Path:
    """Profile the baseline window's features and target (mergeable, JSON) for monitoring; a
    classification target is profiled as a category (class counts)."""
    baseline = data_mod.window(ctx.frame, ctx.params.windows.baseline)
    columns = [*ctx.params.data.features, ctx.params.data.target]
    types, _notes = infer_column_types(baseline, ctx.params.drift, columns)
    if ctx.params.data.task == "classification":
        types[ctx.params.data.target] = "categorical"
    prof = profile_frame(baseline[columns], types, bins=ctx.params.drift.bins)
    path = ctx.run_dir / BASELINE_PROFILE
    write_json(path, prof.to_dict())
    return path
