"""Step 4, deploy: the version test, the smoke test, the gates, the release and the champion check.

Notebook 04 calls these in order; each takes the step's :class:`StepContext`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import CHAMPION, RELEASE_HTML
from helpers.pipeline.context import StepContext
from helpers.registry import gates, store
from helpers.registry.classes import proba_columns
from helpers.registry.gates import GateResult
from helpers.registry.release import Outcome, gate_results, release_version
from helpers.registry.version_test import VersionTest, compare_predictions, compare_versions, comparison_rows
from helpers.reports.release_page import write_release_page
from helpers.serving.smoke import smoke_test as serve_smoke_test


def version_test(ctx: StepContext) -> VersionTest:
    """Score the challenger of this run and the current champion on the same labelled rows."""
    evaluation = ctx.read_summary("train")
    client = store.connect(ctx.params)
    which = ctx.params.gates.champion.compare_on
    rows = comparison_rows(ctx.params, ctx.frame, which)
    return compare_versions(client, ctx.params, str(evaluation["model"]["version"]), rows, which)


def _test_rows(ctx: StepContext) -> pd.DataFrame:
    return comparison_rows(ctx.params, ctx.frame, "test")


def smoke_test(ctx: StepContext) -> GateResult:
    """Smoke test of this run's registered version: served over HTTP exactly as ``driftgate serve``
    runs it, its predictions must equal the train step's within ``gates.smoke_tolerance`` (a
    classifier's labels exactly, its class probabilities within the tolerance)."""
    evaluation = ctx.read_summary("train")
    expected = pd.read_parquet(ctx.run_dir / evaluation["predictions"]["test"])["predicted"].to_numpy()
    features = _test_rows(ctx)[ctx.params.data.features]
    uri = evaluation["model"]["uri"]
    proba = offline_probabilities(uri, features) if ctx.params.data.task == "classification" else None
    result = serve_smoke_test(uri, features, np.asarray(expected), tracking_uri=ctx.params.tracking_uri,
                              atol=ctx.params.gates.smoke_tolerance, expected_proba=proba)
    return gates.smoke_gate(result)


def offline_probabilities(uri: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The ``proba_<class>`` columns of the registered classifier ``uri`` on ``rows``, scored offline."""
    model = store.load(uri)
    return pd.DataFrame(model.predict_proba(rows), columns=proba_columns(store.model_classes(model)))


def run_gates(ctx: StepContext, test: VersionTest, smoke: GateResult) -> list[GateResult]:
    """All release gates configured in params, in a fixed order."""
    return gate_results(ctx.params, ctx.read_summary("train"), test,
                        investigate=_optional_summary(ctx, "investigate"),
                        drift=_optional_summary(ctx, "drift"), smoke=smoke)


def _optional_summary(ctx: StepContext, step: str) -> dict[str, Any] | None:
    return ctx.read_summary(step) if ctx.summary_path(step).is_file() else None


def release(ctx: StepContext, test: VersionTest, results: list[GateResult]) -> Outcome:
    """Decide on this run's version; move ``champion`` only when every gate passed."""
    evaluation = ctx.read_summary("train")
    client = store.connect(ctx.params)
    rows = comparison_rows(ctx.params, ctx.frame, test.rows)
    return release_version(client, ctx.params, str(evaluation["model"]["version"]), results, test,
                           rows=rows, run_id=ctx.run_dir.name, page=str(ctx.run_dir / RELEASE_HTML))


def verify_champion(ctx: StepContext) -> GateResult:
    """Load ``models:/<name>@champion`` and check it predicts exactly like its pinned version."""
    name = ctx.params.mlflow.model_name
    client = store.connect(ctx.params)
    champion = store.version_with_alias(client, name, CHAMPION)
    if champion is None:
        return GateResult("champion check", True, f"models:/{name}@champion: no champion yet, nothing is served")
    rows = _test_rows(ctx)[ctx.params.data.features]
    served = store.load(f"models:/{name}@champion")
    got = served.predict(rows)
    evaluation = ctx.read_summary("train")
    label = f"models:/{name}@champion (v{champion.version})"
    pinned = served
    if str(champion.version) == str(evaluation["model"]["version"]):
        expected = pd.read_parquet(ctx.run_dir / evaluation["predictions"]["test"])["predicted"].to_numpy()
    else:
        pinned = store.load(f"models:/{name}/{champion.version}")
        expected = pinned.predict(rows)
        label += ", unchanged"
    if ctx.params.data.task == "classification" and hasattr(served, "predict_proba"):
        return compare_predictions("champion check", label, got, expected, 1e-9,
                                   served.predict_proba(rows), pinned.predict_proba(rows))
    return compare_predictions("champion check", label, got, expected, 1e-9)


def finish_deploy(ctx: StepContext, outcome: Outcome, check: GateResult) -> dict[str, Any]:
    """Write ``deploy.json`` and ``release.html`` (the decision and every reason)."""
    page = write_release_page(ctx.run_dir / RELEASE_HTML, outcome, check=check)
    summary = {
        **outcome.to_dict(),
        "champion_check": check.to_dict(),
        "release_page": page.name,
        "headline": {"decision": outcome.decision, "version": outcome.version,
                     "champion": outcome.champion_after, "release_page": page.name},
    }
    ctx.write_summary(summary)
    return summary["headline"]
