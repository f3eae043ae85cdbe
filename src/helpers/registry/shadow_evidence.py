"""The version test on live evidence (``gates.champion.compare_on: shadow``).

The scoring service scores every request with the champion and, off the response path, with the
shadow version (``serve.shadow``); both predictions are captured for the same request id and row,
with their ``role`` and ``model_version``. The challenger is compared with the champion on the
captured rows of the last ``gates.champion.captured_days`` days that both answered (the shadow
rows' version must be the challenger's, the champion rows' the current champion's):

* with at least ``gates.champion.min_rows`` such rows that received feedback, by the realized
  metrics of each version's captured predictions (nothing is scored again);
* else, with ``gates.champion.use_estimates`` and at least ``min_rows`` rows both answered, by
  each version's estimated performance on them (:mod:`helpers.registry.estimates`);
* else the champion gate waits: "not enough evidence yet: N of M" (not a failure, so
  ``driftgate deploy --if-new-version`` can run again later, on more evidence).

The **agreement** of the two versions on every row both answered is checked against
``gates.champion.min_agreement``: for a classifier, the share of rows with the same label; for
a regressor, ``1 - sum|a - b| / sum(|a| + |b|)`` (the Bray-Curtis similarity of the two
prediction vectors: 1 when equal, 0 when one is zero wherever the other is not; scale-free, so
one threshold fits any target's units).

Example
-------
>>> rows = shadow_rows(params)  # doctest: +SKIP
>>> compare_on_shadow(client, params, "5", rows).shadow["agreement"]  # doctest: +SKIP
0.93
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import CHAMPION, PREDICTION
from helpers.core.config import Params
from helpers.core.paths import capture_dir_for
from helpers.modeling.captures import CAPTURE_COLUMNS, join_feedback, read_captures, read_feedback
from helpers.modeling.data import TIME
from helpers.modeling.metrics import metrics
from helpers.registry import store
from helpers.registry.classes import coerce_labels, probabilities
from helpers.registry.estimates import estimated_scores

SHADOW = "shadow"
SHADOW_PREFIX = "shadow_"  # the shadow version's outputs beside the champion's: shadow_prediction, ...
SHADOW_VERSION = "shadow_version"
LABEL = "label"


def shadow_rows(params: Params) -> pd.DataFrame:
    """Champion rows captured in the last ``captured_days`` days with the shadow's outputs of the
    same request and row beside them (``shadow_prediction``, ``shadow_proba_<class>``,
    ``shadow_version``) and the feedback ``label`` (NaN where none came yet)."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=params.gates.champion.captured_days)
    folder, name = capture_dir_for(params), params.mlflow.model_name
    captured = read_captures(folder, name, start=since, roles=("champion", SHADOW))
    outputs = [c for c in captured.columns if c == PREDICTION or c.startswith((f"{PREDICTION}_", "proba_"))]
    shadow = captured.loc[captured["role"] == SHADOW, ["request_id", "row", "model_version", *outputs]]
    shadow = shadow.rename(columns={"model_version": SHADOW_VERSION, **{c: SHADOW_PREFIX + c for c in outputs}})
    shadow = shadow.drop_duplicates(["request_id", "row", SHADOW_VERSION], keep="last")
    champion = captured.loc[captured["role"] == "champion"]
    pairs = champion.merge(shadow.astype({"row": champion["row"].dtype}), on=["request_id", "row"], how="inner")
    labelled = join_feedback(pairs, read_feedback(folder, name, since, None), how="left")
    labelled[TIME] = pd.to_datetime(labelled[TIME], utc=True).dt.tz_convert(None)
    return labelled.reset_index(drop=True)


def paired(rows: pd.DataFrame, champion: str, challenger: str) -> pd.DataFrame:
    """The rows the champion ``champion`` answered with ``challenger`` as its shadow."""
    if rows.empty:
        return rows
    keep = (rows["model_version"].astype(str) == str(champion)) & (rows[SHADOW_VERSION].astype(str) == str(challenger))
    return rows.loc[keep].reset_index(drop=True)


def side(rows: pd.DataFrame, shadow: bool) -> pd.DataFrame:
    """One version's outputs under the plain names (``prediction``, ``proba_<class>``) with the label."""
    if not shadow:
        return rows[[c for c in rows.columns if not c.startswith(SHADOW_PREFIX)]]
    outputs = {c: c.removeprefix(SHADOW_PREFIX) for c in rows.columns
               if c.startswith(SHADOW_PREFIX) and c != SHADOW_VERSION}
    kept = [c for c in rows.columns if c not in outputs.values() or c in CAPTURE_COLUMNS or c == LABEL]
    return rows[kept].rename(columns=outputs)


def realized_metrics(rows: pd.DataFrame, params: Params, classes: list[Any] | None) -> dict[str, float]:
    """The metrics of the captured ``prediction`` (and class probabilities) against ``label``."""
    if params.data.task == "classification" and classes:
        truth = coerce_labels(rows[LABEL], classes).to_numpy()
        return metrics("classification", truth, rows[PREDICTION].to_numpy(), probabilities(rows, classes),
                       classes=classes)
    return metrics(params.data.task, rows[LABEL].to_numpy(dtype=float), rows[PREDICTION].to_numpy(dtype=float))


def agreement(champion: np.ndarray, shadow: np.ndarray, task: str) -> float | None:
    """Share of equal labels (classification), or ``1 - sum|a - b| / sum(|a| + |b|)`` (regression).

    Examples
    --------
    >>> agreement(np.array(["a", "b", "a", "a"]), np.array(["a", "b", "b", "a"]), "classification")
    0.75
    >>> round(agreement(np.array([100.0, 50.0]), np.array([110.0, 50.0]), "regression"), 4)
    0.9677
    """
    if len(champion) == 0:
        return None
    if task == "classification":
        return float(np.mean(pd.Series(champion).astype(str).to_numpy() == pd.Series(shadow).astype(str).to_numpy()))
    a, b = np.asarray(champion, dtype=float), np.asarray(shadow, dtype=float)
    scale = float(np.sum(np.abs(a) + np.abs(b)))
    return 1.0 if scale == 0 else 1.0 - float(np.sum(np.abs(a - b))) / scale


AGREEMENT_MEASURE = {"classification": "share of requests with the same label",
                     "regression": "1 - sum|a - b| / sum(|a| + |b|) of the two versions' predictions"}


def shadow_evidence(client: Any, params: Params, challenger: str, champion: str,
                    rows: pd.DataFrame) -> dict[str, Any]:
    """Both versions' metrics on the rows they both answered (realized, estimated, or none yet),
    the agreement and the counts: ``challenger``, ``champion``, ``bands``, ``estimated``,
    ``waiting`` (why the gate cannot decide yet, or ""), ``shadow`` (the facts for the page)."""
    rule, task, name = params.gates.champion, params.data.task, params.mlflow.model_name
    both = paired(rows, champion, challenger)
    labelled = both.loc[both[LABEL].notna()] if len(both) else both
    found: dict[str, Any] = {"challenger": {}, "champion": None, "bands": {}, "estimated": False, "waiting": "",
                             "n_rows": len(both)}
    shares = agreement(both[PREDICTION].to_numpy(), both[SHADOW_PREFIX + PREDICTION].to_numpy(), task) \
        if len(both) else None
    found["shadow"] = {"requests": int(both["request_id"].nunique()) if len(both) else 0, "rows": len(both),
                       "labelled_rows": len(labelled), "min_rows": rule.min_rows, "agreement": shares,
                       "agreement_measure": AGREEMENT_MEASURE.get(task, AGREEMENT_MEASURE["regression"]),
                       "min_agreement": rule.min_agreement, "evidence": None, "days": rule.captured_days}
    if len(labelled) >= rule.min_rows:
        classes = _classes(params, name, challenger), _classes(params, name, champion)
        found["challenger"] = realized_metrics(side(labelled, True), params, classes[0])
        found["champion"] = realized_metrics(side(labelled, False), params, classes[1])
        found["shadow"]["evidence"] = "realized"
    elif rule.use_estimates and len(both) >= rule.min_rows:
        found["challenger"], found["bands"]["challenger"] = estimated_scores(client, params, challenger, both)
        found["champion"], found["bands"]["champion"] = estimated_scores(client, params, champion, both)
        found["estimated"], found["shadow"]["evidence"] = True, "estimated"
    else:
        found["waiting"] = _not_enough(len(labelled), len(both), rule, champion, challenger)
    return found


def _classes(params: Params, name: str, version: str) -> list[Any] | None:
    if params.data.task != "classification":
        return None
    return store.logged_classes(f"models:/{name}/{version}")


def _not_enough(labelled: int, both: int, rule: Any, champion: str, challenger: str) -> str:
    text = (f"not enough evidence yet: {labelled} of {rule.min_rows} labelled rows answered by champion "
            f"v{champion} and challenger v{challenger} (as shadow) in the last {rule.captured_days:g} days")
    if rule.use_estimates:
        text += f" ({both} of {rule.min_rows} rows without labels for estimated performance)"
    return text + ": keep serving it with serve.shadow and run `driftgate deploy --if-new-version` later"


def current_champion(client: Any, params: Params) -> str | None:
    """The version holding ``champion`` now, or None."""
    mv = store.version_with_alias(client, params.mlflow.model_name, CHAMPION)
    return None if mv is None else str(mv.version)
