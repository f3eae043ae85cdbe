"""The version test: the challenger and the champion scored on the same labelled rows.

The rows are the current window, the held-out test rows of the baseline window, or captured
rows that received feedback (``gates.champion.compare_on``). With ``compare_on: captured`` and
``use_estimates: true``, captured rows lacking enough feedback are compared by each version's
estimated performance on them instead (:mod:`helpers.registry.estimates`). With ``compare_on: shadow``
the versions are compared on the requests both answered live, the challenger as the shadow
(:mod:`helpers.registry.shadow_evidence`): no scoring again, and the gate waits for evidence.

Example
-------
>>> rows = comparison_rows(params, frame, "current")  # doctest: +SKIP
>>> compare_versions(client, params, "4", rows, "current").table  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import CHAMPION
from helpers.core.config import Params
from helpers.core.errors import DataError
from helpers.core.paths import capture_dir_for
from helpers.modeling import data as data_mod
from helpers.modeling import train
from helpers.modeling.captures import read_labeled_captures
from helpers.registry import store
from helpers.registry.classes import coerce_labels
from helpers.registry.estimates import estimated_scores, is_unlabelled, unlabelled_captured_rows
from helpers.registry.gates import GateResult
from helpers.registry.shadow_evidence import SHADOW, paired, shadow_evidence, shadow_rows


@dataclass
class VersionTest:
    """Challenger and champion metrics on the same labelled rows."""

    rows: str  # which rows: "current" window, "test" (held-out baseline rows) or "captured"
    n_rows: int
    span: str  # first..last timestamp of the rows
    challenger_version: str
    challenger: dict[str, float]
    champion_version: str | None = None
    champion: dict[str, float] | None = None
    champion_error: str | None = None  # the champion could not score these rows
    estimated: bool = False  # compared by estimated performance (captured rows without enough feedback)
    bands: dict[str, Any] = field(default_factory=dict)  # "challenger"/"champion" -> metric -> value, lower, upper
    waiting: str = ""  # compare_on shadow: why the champion gate cannot decide yet (too little evidence)
    shadow: dict[str, Any] = field(default_factory=dict)  # compare_on shadow: rows, labelled rows, agreement

    @property
    def table(self) -> pd.DataFrame:
        """Index: metric; one column per version."""
        columns = {f"challenger v{self.challenger_version}": self.challenger}
        if self.champion is not None:
            columns[f"champion v{self.champion_version}"] = self.champion
        return pd.DataFrame(columns).rename_axis(f"{self.rows} rows ({self.n_rows}, {self.span})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionTest:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def comparison_rows(params: Params, frame: pd.DataFrame, which: str) -> pd.DataFrame:
    """The labelled rows both versions are scored on: the current window, the held-out test
    rows of the baseline window, captured rows with feedback (``captured``), or captured rows the
    champion and the shadow version both answered (``shadow``, feedback where it came)."""
    if which == SHADOW:
        return shadow_rows(params)
    if which == "captured":
        return captured_rows(params)
    if which == "current":
        rows = data_mod.window(frame, params.windows.current)
    else:
        rows = train.split(data_mod.window(frame, params.windows.baseline), params.split)[1]
    if rows.empty:
        raise DataError(f"no {which} rows to compare the versions on; check windows.{which}")
    return rows


def captured_rows(params: Params) -> pd.DataFrame:
    """Rows the scoring service captured for the model in the last ``captured_days`` days that
    received feedback, with the feedback as the target column."""
    rule = params.gates.champion
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=rule.captured_days)
    folder = capture_dir_for(params)
    labelled = read_labeled_captures(folder, params.mlflow.model_name, start=since)
    if len(labelled) < rule.min_captured_rows and rule.use_estimates:
        return unlabelled_captured_rows(params, folder, since, len(labelled))
    if len(labelled) < rule.min_captured_rows:
        raise DataError(
            f"only {len(labelled)} captured rows with feedback in the last {rule.captured_days:g} days under "
            f"{folder}; gates.champion.min_captured_rows is {rule.min_captured_rows}: send feedback, or set "
            "gates.champion.compare_on to current (or gates.champion.use_estimates to true)"
        )
    rows = labelled.rename(columns={"label": params.data.target})
    rows[data_mod.TIME] = pd.to_datetime(rows[data_mod.TIME], utc=True).dt.tz_convert(None)
    return rows.reset_index(drop=True)


def compare_versions(client: Any, params: Params, version: str, rows: pd.DataFrame, which: str) -> VersionTest:
    """Load ``version`` and the current champion from the registry and score both on ``rows``."""
    if which == SHADOW:
        return compare_on_shadow(client, params, str(version), rows)
    name = params.mlflow.model_name
    by_estimate = is_unlabelled(rows, params)
    bands: dict[str, Any] = {}
    if by_estimate:
        challenger, bands["challenger"] = estimated_scores(client, params, str(version), rows)
    else:
        challenger = _score(f"models:/{name}/{version}", rows, params)
    champion_mv = store.version_with_alias(client, name, CHAMPION)
    test = VersionTest(rows=which, n_rows=len(rows), span=_span(rows),
                       challenger_version=str(version), challenger=challenger, estimated=by_estimate, bands=bands)
    if champion_mv is None:
        return test
    test.champion_version = str(champion_mv.version)
    try:
        if by_estimate:
            test.champion, bands["champion"] = estimated_scores(client, params, str(champion_mv.version), rows)
        else:
            test.champion = _score(f"models:/{name}/{champion_mv.version}", rows, params)
    except (KeyError, ValueError, TypeError, DataError) as exc:  # e.g. trained on other features
        test.champion_error = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
    return test


def compare_on_shadow(client: Any, params: Params, version: str, rows: pd.DataFrame) -> VersionTest:
    """The version test on the live evidence of :func:`shadow_rows`: ``version`` as the shadow of
    the current champion (realized metrics, else estimates when allowed, else ``waiting``)."""
    champion_mv = store.version_with_alias(client, params.mlflow.model_name, CHAMPION)
    if champion_mv is None:
        return VersionTest(rows=SHADOW, n_rows=0, span="", challenger_version=version, challenger={})
    champion = str(champion_mv.version)
    found = shadow_evidence(client, params, version, champion, rows)
    span = _span(paired(rows, champion, version))
    return VersionTest(rows=SHADOW, n_rows=found["n_rows"], span=span, challenger_version=version,
                       challenger=found["challenger"], champion_version=champion, champion=found["champion"],
                       estimated=found["estimated"], bands=found["bands"], waiting=found["waiting"],
                       shadow=found["shadow"])


def _score(uri: str, rows: pd.DataFrame, params: Params) -> dict[str, float]:
    model = store.load(uri)
    if params.data.task == "classification" and hasattr(model, "classes_"):  # feedback labels come as JSON
        target = params.data.target
        rows = rows.assign(**{target: coerce_labels(rows[target], list(model.classes_)).to_numpy()})
    return train.evaluate(model, rows, params)[0]


def _span(rows: pd.DataFrame) -> str:
    if data_mod.TIME not in rows or rows.empty:
        return ""
    return f"{rows[data_mod.TIME].min():%Y-%m-%d %H:%M}..{rows[data_mod.TIME].max():%Y-%m-%d %H:%M}"


def compare_predictions(
    label: str, uri: str, got: np.ndarray, expected: np.ndarray, atol: float,
    got_proba: np.ndarray | None = None, expected_proba: np.ndarray | None = None,
) -> GateResult:
    """Pass when ``got`` and ``expected`` have the same length and differ by at most ``atol``.

    Labels that are not numbers are compared exactly; given class probabilities, a classifier's
    labels must be equal and its probabilities within ``atol``.
    """
    if len(got) != len(expected):
        return GateResult(label, False, f"{uri}: {len(got)} predictions, expected {len(expected)}")
    if got_proba is not None and expected_proba is not None:
        return _compare_classifier(label, uri, got, expected, got_proba, expected_proba, atol)
    if not (_numeric(got) and _numeric(expected)):
        return _compare_labels(label, uri, got, expected)
    diff = float(np.max(np.abs(np.asarray(got, dtype=float) - np.asarray(expected, dtype=float)))) if len(got) else 0.0
    return GateResult(label, diff <= atol,
                      f"{uri} reloaded: {len(got)} predictions, max difference {diff:.3g} (tolerance {atol:g})")


def _numeric(values: np.ndarray) -> bool:
    kind = np.asarray(values).dtype.kind
    return kind in "iuf"


def _compare_labels(label: str, uri: str, got: np.ndarray, expected: np.ndarray) -> GateResult:
    wrong = int(sum(a != b for a, b in zip(np.asarray(got).tolist(), np.asarray(expected).tolist(), strict=True)))
    return GateResult(label, wrong == 0, f"{uri} reloaded: {len(got)} labels, {wrong} differ")


def _compare_classifier(label: str, uri: str, got: np.ndarray, expected: np.ndarray, got_proba: np.ndarray,
                        expected_proba: np.ndarray, atol: float) -> GateResult:
    got_p, expected_p = np.asarray(got_proba, dtype=float), np.asarray(expected_proba, dtype=float)
    if got_p.shape != expected_p.shape:
        return GateResult(label, False, f"{uri}: probabilities of shape {got_p.shape}, expected {expected_p.shape}")
    wrong = int(sum(a != b for a, b in zip(np.asarray(got).tolist(), np.asarray(expected).tolist(), strict=True)))
    diff = float(np.max(np.abs(got_p - expected_p))) if got_p.size else 0.0
    return GateResult(label, wrong == 0 and diff <= atol,
                      f"{uri} reloaded: {len(got)} labels, {wrong} differ; class probabilities differ by at most "
                      f"{diff:.3g} (tolerance {atol:g})")
