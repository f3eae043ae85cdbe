"""Gated releases: version testing, the gates, the release under a lock, approval, rollback.

Two layers. Functions taking a :class:`~helpers.pipeline.StepContext` are what notebook 04
calls (:func:`version_test`, :func:`smoke_test`, :func:`run_gates`, :func:`release`,
:func:`verify_champion`, :func:`finish_deploy`). Functions taking params and an MLflow client
do the work and are what the CLI and the tests call (:func:`compare_versions`,
:func:`gate_results`, :func:`release_version`, :func:`approve`, :func:`rollback`,
:func:`status`).

Every decision is recorded as ``driftgate.*`` tags on the model version (decision, reason,
time, gate results, version test, champion before, release page) and as an HTML page.

Example
-------
>>> client = registry.connect(params)  # doctest: +SKIP
>>> rows = comparison_rows(params, frame, "current")  # doctest: +SKIP
>>> test = compare_versions(client, params, "4", rows, "current")  # doctest: +SKIP
>>> results = gate_results(params, evaluation, test, investigate=None, drift=None, smoke=smoke)  # doctest: +SKIP
>>> release_version(client, params, "4", results, test, rows=rows).decision  # doctest: +SKIP
'promoted'
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.config import Params
from helpers.core.errors import DataError, RegistryError
from helpers.modeling import data as data_mod
from helpers.modeling import train
from helpers.pipeline.runner import StepContext
from helpers.registry import gates
from helpers.registry import store as registry
from helpers.registry.gates import BLOCKED, PROMOTED, WAITING, GateResult
from helpers.reports.pages import write_index

ROLLED_BACK = "rolled back"
# Tags recorded on a model version.
DECISION, REASON, DECIDED_AT = "driftgate.decision", "driftgate.decision_reason", "driftgate.decided_at"
DECISION_RUN, GATES, VERSION_TEST = "driftgate.decision_run", "driftgate.gates", "driftgate.version_test"
CHAMPION_BEFORE, RELEASE_PAGE = "driftgate.champion_before", "driftgate.release_page"
APPROVED_BY, APPROVED_AT, APPROVAL_NOTE = "driftgate.approved_by", "driftgate.approved_at", "driftgate.approval_note"
ROLLBACK_REASON, ROLLED_BACK_AT = "driftgate.rollback_reason", "driftgate.rolled_back_at"
ROLLED_BACK_BY, ROLLED_BACK_TO = "driftgate.rolled_back_by", "driftgate.rolled_back_to"
RESTORED_AT, RESTORED_REASON = "driftgate.restored_at", "driftgate.restored_reason"
LAST_ROLLBACK = "driftgate.last_rollback"  # on the registered model
RELEASE_HTML = "release.html"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- version test


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
    rows of the baseline window, or captured rows with feedback (``captured``)."""
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
    from helpers.core.paths import capture_dir_for
    from helpers.serving.capture_read import read_labeled_captures

    rule = params.gates.champion
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=rule.captured_days)
    folder = capture_dir_for(params)
    labelled = read_labeled_captures(folder, params.mlflow.model_name, start=since)
    if len(labelled) < rule.min_captured_rows:
        raise DataError(
            f"only {len(labelled)} captured rows with feedback in the last {rule.captured_days:g} days under "
            f"{folder}; gates.champion.min_captured_rows is {rule.min_captured_rows}: send feedback, or set "
            "gates.champion.compare_on to current"
        )
    rows = labelled.rename(columns={"label": params.data.target})
    rows[data_mod.TIME] = pd.to_datetime(rows[data_mod.TIME], utc=True).dt.tz_convert(None)
    return rows.reset_index(drop=True)


def compare_versions(client: Any, params: Params, version: str, rows: pd.DataFrame, which: str) -> VersionTest:
    """Load ``version`` and the current champion from the registry and score both on ``rows``."""
    name = params.mlflow.model_name
    challenger = _score(f"models:/{name}/{version}", rows, params)
    champion_mv = registry.version_with_alias(client, name, registry.CHAMPION)
    test = VersionTest(rows=which, n_rows=len(rows), span=_span(rows),
                       challenger_version=str(version), challenger=challenger)
    if champion_mv is None:
        return test
    test.champion_version = str(champion_mv.version)
    try:
        test.champion = _score(f"models:/{name}/{champion_mv.version}", rows, params)
    except (KeyError, ValueError, TypeError) as exc:  # e.g. trained on other features
        test.champion_error = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
    return test


def _score(uri: str, rows: pd.DataFrame, params: Params) -> dict[str, float]:
    return train.evaluate(registry.load(uri), rows, params)[0]


def _span(rows: pd.DataFrame) -> str:
    if data_mod.TIME not in rows or rows.empty:
        return ""
    return f"{rows[data_mod.TIME].min():%Y-%m-%d %H:%M}..{rows[data_mod.TIME].max():%Y-%m-%d %H:%M}"


# --------------------------------------------------------------------------- gates


def gate_results(
    params: Params, evaluation: dict[str, Any], test: VersionTest, *,
    investigate: dict[str, Any] | None, drift: dict[str, Any] | None, smoke: GateResult,
    approval: dict[str, Any] | None = None,
) -> list[GateResult]:
    """Every gate configured in ``params.gates``, in a fixed order.

    ``evaluation`` is the train step's summary (its ``metrics`` by row set); ``investigate``
    and ``drift`` the upstream summaries (None when the step did not run).
    """
    rules = params.gates
    metrics = evaluation.get("metrics", {})
    results = gates.metric_gates(metrics.get("test", {}), rules.metrics, "test")
    results += gates.metric_gates(metrics.get("current", {}), rules.current_metrics, "current")
    results.append(champion_result(params, test))
    results.append(gates.validation_gate(investigate, rules.require_validation))
    results.append(gates.drift_gate(drift, rules.block_on_drift))
    results.append(smoke)
    results.append(gates.approval_gate(rules.require_approval, test.challenger_version, approval))
    return results


def champion_result(params: Params, test: VersionTest) -> GateResult:
    """The champion gate for a version test (fails when the champion could not be scored)."""
    if test.champion_error:
        return GateResult(gates.CHAMPION_GATE, False,
                          f"champion v{test.champion_version} cannot score the {test.rows} rows "
                          f"({test.champion_error}); compare by hand, then roll back or re-release")
    return gates.champion_gate(test.challenger, test.champion, params.gates.champion,
                               params.data.task, test.champion_version)


def compare_predictions(label: str, uri: str, got: np.ndarray, expected: np.ndarray, atol: float) -> GateResult:
    """Pass when ``got`` and ``expected`` have the same length and differ by at most ``atol``."""
    if len(got) != len(expected):
        return GateResult(label, False, f"{uri}: {len(got)} predictions, expected {len(expected)}")
    diff = float(np.max(np.abs(np.asarray(got, dtype=float) - np.asarray(expected, dtype=float)))) if len(got) else 0.0
    return GateResult(label, diff <= atol,
                      f"{uri} reloaded: {len(got)} predictions, max difference {diff:.3g} (tolerance {atol:g})")


def smoke_check(params: Params, uri: str, rows: pd.DataFrame, expected: np.ndarray) -> GateResult:
    """Smoke test of a registered version: served over HTTP by ``helpers.serve.smoke_test``
    when the scoring service is installed, else loaded back and scored in process; its
    predictions must equal ``expected`` within ``gates.smoke_tolerance``."""
    features = rows[params.data.features]
    atol = params.gates.smoke_tolerance
    try:
        from helpers.serving.smoke import smoke_test as serve_smoke_test
    except ImportError:
        got = registry.load(uri).predict(features)
        return compare_predictions("smoke test", uri, got, expected, atol)
    result = serve_smoke_test(uri, features, np.asarray(expected), tracking_uri=params.tracking_uri, atol=atol)
    return gates.smoke_gate(result)


# --------------------------------------------------------------------------- release


@dataclass
class Outcome:
    """A release decision and everything it was based on."""

    decision: str  # promoted | blocked | waiting
    reason: str
    model: str
    version: str
    champion_before: str | None
    champion_after: str | None
    previous: str | None
    results: list[GateResult]
    test: VersionTest
    decided_at: str
    run_id: str = ""
    page: str = ""
    tracking_uri: str = ""
    rechecked_from: str | None = None  # champion version the gates first compared with, when it changed
    approval: dict[str, Any] | None = None
    lineage: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """The decision as a small two-column table for notebooks."""
        rows = {
            "decision": f"{self.decision} v{self.version}",
            "reason": self.reason,
            "champion": f"{_v(self.champion_before)} -> {_v(self.champion_after)}",
            "previous": _v(self.previous),
            "decided at": self.decided_at,
        }
        if self.decision == WAITING:
            rows["next"] = f"driftgate approve {self.version}"
        return pd.DataFrame({"value": rows}).rename_axis(self.model)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``gates`` and ``version_test`` keys for the step summary)."""
        out = asdict(self)
        out["gates"] = [r.to_dict() for r in self.results]
        out["version_test"] = self.test.to_dict()
        del out["results"], out["test"]
        return out


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


def release_version(
    client: Any, params: Params, version: str, results: list[GateResult], test: VersionTest, *,
    rows: pd.DataFrame, run_id: str = "", page: str = "", approval: dict[str, Any] | None = None,
    expect: Callable[[Any], None] | None = None,
) -> Outcome:
    """Decide on ``version`` from its gate ``results`` and, when all pass, make it champion.

    Runs under the registry's release lock, so racing releases take turns. Inside the lock
    the champion is read again: if it changed since ``test`` was made (another release won),
    both versions are scored again on ``rows`` and the champion gate is redone, so a release
    is always judged against the champion it replaces. ``expect(client)`` may raise to refuse
    the release after the lock is taken (approval checks the version still waits). The
    decision is recorded as tags on the version.
    """
    name = params.mlflow.model_name
    rules = params.gates
    with registry.release_lock(client, name, wait=rules.lock_timeout, stale_after=rules.lock_stale_after) as lease:
        if expect is not None:
            expect(client)
        before_mv = registry.version_with_alias(client, name, registry.CHAMPION)
        before = None if before_mv is None else str(before_mv.version)
        rechecked_from = None
        if before != test.champion_version:
            rechecked_from = test.champion_version or "none"
            test = compare_versions(client, params, version, rows, test.rows)
            results = [champion_result(params, test) if r.gate == gates.CHAMPION_GATE else r for r in results]
        decision, reason = _explain(results, before, rechecked_from)
        previous = None
        if decision == PROMOTED:
            lease.check()
            previous = registry.promote(client, name, version)
        after_mv = registry.version_with_alias(client, name, registry.CHAMPION)
        mv = client.get_model_version(name, version)
        outcome = Outcome(
            decision=decision, reason=reason, model=name, version=str(version), champion_before=before,
            champion_after=None if after_mv is None else str(after_mv.version), previous=previous,
            results=results, test=test, decided_at=_now(), run_id=run_id, page=page,
            tracking_uri=params.tracking_uri, rechecked_from=rechecked_from, approval=approval,
            lineage={k: v for k, v in mv.tags.items() if k in _LINEAGE_SHOWN},
        )
        registry.tag_version(client, name, str(version), decision_tags(outcome))
    return outcome


_LINEAGE_SHOWN = ("driftgate.run_id", "driftgate.run_dir", "driftgate.git_commit", "driftgate.git_dirty",
                  "driftgate.data_path", "driftgate.data_sha256", "driftgate.params_hash",
                  "driftgate.baseline_window", "driftgate.current_window", "driftgate.reports",
                  "driftgate.mlflow_run_id")


def _explain(results: list[GateResult], champion: str | None, rechecked_from: str | None) -> tuple[str, str]:
    decision, reason = gates.verdict(results)
    if champion is None and decision != BLOCKED:
        reason = f"first release (no champion yet), judged by the absolute gates only: {reason}"
    if rechecked_from is not None:
        reason += (f" (the champion changed from v{rechecked_from} to v{champion or '-'} while this release "
                   "waited its turn: compared again with the new champion)")
    return decision, reason


def decision_tags(outcome: Outcome) -> dict[str, str]:
    """The tags recording ``outcome`` on its model version."""
    tags = {
        DECISION: outcome.decision,
        REASON: outcome.reason[:20000],
        DECIDED_AT: outcome.decided_at,
        DECISION_RUN: outcome.run_id,
        GATES: json.dumps([r.to_dict() for r in outcome.results]),
        VERSION_TEST: json.dumps(outcome.test.to_dict()),
        CHAMPION_BEFORE: outcome.champion_before or "",
        RELEASE_PAGE: outcome.page,
    }
    if outcome.approval:
        tags.update({APPROVED_BY: outcome.approval["by"], APPROVED_AT: outcome.approval["at"],
                     APPROVAL_NOTE: outcome.approval.get("note") or ""})
    return tags


# --------------------------------------------------------------------------- approval


def approve(params: Params, version: str, *, by: str | None = None, note: str = "") -> Outcome:
    """Approve a version waiting for approval and run its release.

    Its recorded gate results are checked again (every gate but approval must have passed);
    if the champion changed since, the versions are compared again on the params' rows. The
    release page goes to ``<outputs>/releases/``. Raises :class:`RegistryError` for a
    version that does not exist, was never gated, or is not waiting.
    """
    client = registry.connect(params)
    name = params.mlflow.model_name
    mv = registry.get_version(client, name, version)
    version = str(mv.version)
    _check_waiting(mv.tags, version)
    recorded = _recorded_gates(mv.tags, version)
    failed = [r for r in recorded if r.gate != gates.APPROVAL and not r.passed]
    if failed:
        raise RegistryError(f"v{version}: recorded gates failed ({'; '.join(r.gate for r in failed)}); "
                            "approval cannot override a failed gate")
    approval = {"by": by or _user(), "at": _now(), "note": note}
    results = [r for r in recorded if r.gate != gates.APPROVAL]
    results.append(gates.approval_gate(True, version, approval))
    test = VersionTest.from_dict(json.loads(mv.tags[VERSION_TEST]))
    rows = comparison_rows(params, data_mod.check_params_against_data(params), test.rows)
    page = releases_dir(params) / f"{_stamp()}-approve-v{version}.html"

    def still_waiting(c: Any) -> None:
        _check_waiting(c.get_model_version(name, version).tags, version)

    outcome = release_version(client, params, version, results, test, rows=rows,
                              run_id=mv.tags.get(DECISION_RUN, ""), page=str(page), approval=approval,
                              expect=still_waiting)
    from helpers.reports.release_page import write_release_page

    write_release_page(page, outcome, title=f"Approval of v{version}")
    write_index(params.outputs_dir)
    return outcome


def _check_waiting(tags: dict[str, str], version: str) -> None:
    decision = tags.get(DECISION)
    if decision == WAITING:
        return
    if decision is None:
        raise RegistryError(f"v{version} has no release decision yet: run its deploy step "
                            "(driftgate run) before approving it")
    raise RegistryError(f"v{version} is not waiting for approval: it was {decision} "
                        f"({tags.get(REASON, '')[:300]})")


def _recorded_gates(tags: dict[str, str], version: str) -> list[GateResult]:
    try:
        return [GateResult.from_dict(d) for d in json.loads(tags[GATES])]
    except (KeyError, ValueError, TypeError):
        raise RegistryError(f"v{version}: no readable gate results recorded (tag {GATES})") from None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")


def releases_dir(params: Params) -> Path:
    """Where approval and rollback pages go (run folders are never rewritten)."""
    return params.outputs_dir / "releases"


# --------------------------------------------------------------------------- rollback


@dataclass
class Rollback:
    """What a rollback did."""

    model: str
    from_version: str  # the champion taken out
    to_version: str  # the previous version, champion again
    previous: str | None  # the new ``previous`` alias (the champion before to_version), if any
    reason: str
    by: str
    at: str
    page: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def rollback(params: Params, *, reason: str = "", by: str | None = None) -> Rollback:
    """Move ``champion`` back to ``previous`` and record why, under the release lock.

    The new ``previous`` is the version that was champion before the restored one (so
    rollbacks can be repeated), or none. Tags record the reason on both versions and on the
    registered model; a page goes to ``<outputs>/releases/``.
    """
    client = registry.connect(params)
    name = params.mlflow.model_name
    registry.require_model(client, name)
    rules = params.gates
    done = Rollback(model=name, from_version="", to_version="", previous=None,
                    reason=reason.strip() or "no reason given", by=by or _user(), at=_now())
    with registry.release_lock(client, name, wait=rules.lock_timeout, stale_after=rules.lock_stale_after) as lease:
        champion = registry.version_with_alias(client, name, registry.CHAMPION)
        previous = registry.version_with_alias(client, name, registry.PREVIOUS)
        if champion is None:
            raise RegistryError(f"model {name!r} has no champion: nothing to roll back")
        if previous is None:
            raise RegistryError(f"model {name!r} has no previous version: champion v{champion.version} "
                                "is the first release, nothing to roll back to")
        done.from_version, done.to_version = str(champion.version), str(previous.version)
        done.previous = _earlier_champion(client, name, previous, exclude={done.from_version, done.to_version})
        lease.check()
        registry.demote(client, name, done.to_version, done.previous)
        _record_rollback(client, params, done)
    from helpers.reports.release_page import write_rollback_page

    page = releases_dir(params) / f"{_stamp()}-rollback-v{done.from_version}.html"
    done.page = str(page)
    write_rollback_page(page, done)
    client.set_model_version_tag(name, done.from_version, RELEASE_PAGE, done.page)
    write_index(params.outputs_dir)
    return done


def _earlier_champion(client: Any, name: str, mv: Any, exclude: set[str]) -> str | None:
    """The champion before ``mv`` was promoted, if it still exists and is not excluded."""
    from mlflow.exceptions import MlflowException

    earlier = mv.tags.get(CHAMPION_BEFORE) or None
    if earlier is None or earlier in exclude:
        return None
    try:
        client.get_model_version(name, earlier)
    except MlflowException:
        return None
    return earlier


def _record_rollback(client: Any, params: Params, done: Rollback) -> None:
    name = params.mlflow.model_name
    registry.tag_version(client, name, done.from_version, {
        DECISION: ROLLED_BACK, ROLLBACK_REASON: done.reason, ROLLED_BACK_AT: done.at,
        ROLLED_BACK_BY: done.by, ROLLED_BACK_TO: done.to_version,
    })
    registry.tag_version(client, name, done.to_version, {RESTORED_AT: done.at, RESTORED_REASON: done.reason})
    client.set_registered_model_tag(name, LAST_ROLLBACK, json.dumps(done.to_dict()))


# --------------------------------------------------------------------------- status


def status(params: Params) -> dict[str, Any]:
    """Champion, challenger and previous of the configured model, each with its metrics,
    runs, data windows, decision and report paths; JSON-ready."""
    client = registry.connect(params)
    name = params.mlflow.model_name
    model = registry.require_model(client, name)
    aliases = registry.alias_versions(client, name)
    versions = {alias: describe_version(client, name, v) for alias, v in aliases.items() if v is not None}
    last = model.tags.get(LAST_ROLLBACK)
    return {
        "model": name,
        "tracking_uri": params.tracking_uri,
        "aliases": aliases,
        "versions": versions,
        "last_rollback": json.loads(last) if last else None,
    }


def describe_version(client: Any, name: str, version: str) -> dict[str, Any]:
    """One version's lineage, metrics and release record."""
    mv = client.get_model_version(name, version)
    tags = dict(mv.tags)
    test = json.loads(tags[VERSION_TEST]) if tags.get(VERSION_TEST) else None
    return {
        "version": str(mv.version),
        "aliases": list(getattr(mv, "aliases", []) or []),
        "registered_at": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(timespec="seconds"),
        "mlflow_run_id": mv.run_id,
        "run_id": tags.get("driftgate.run_id"),
        "run_dir": tags.get("driftgate.run_dir"),
        "git_commit": tags.get("driftgate.git_commit"),
        "params_hash": tags.get("driftgate.params_hash"),
        "data": {"path": tags.get("driftgate.data_path"), "sha256": tags.get("driftgate.data_sha256"),
                 "baseline_window": tags.get("driftgate.baseline_window"),
                 "current_window": tags.get("driftgate.current_window")},
        "metrics": registry.run_metrics(client, mv.run_id),
        "version_test": test,
        "decision": tags.get(DECISION),
        "decision_reason": tags.get(REASON),
        "decided_at": tags.get(DECIDED_AT),
        "approved_by": tags.get(APPROVED_BY),
        "rollback": ({"reason": tags.get(ROLLBACK_REASON), "at": tags.get(ROLLED_BACK_AT),
                      "by": tags.get(ROLLED_BACK_BY), "to": tags.get(ROLLED_BACK_TO)}
                     if tags.get(ROLLED_BACK_AT) else None),
        "reports": [p for p in (tags.get("driftgate.reports") or "").split(",") if p],
        "release_page": tags.get(RELEASE_PAGE) or None,
    }


def status_text(info: dict[str, Any]) -> str:
    """:func:`status` as readable lines."""
    lines = [f"model {info['model']} in {info['tracking_uri']}"]
    for alias in registry.ALIASES:
        version = info["aliases"].get(alias)
        if version is None:
            lines.append(f"{alias:<10} -")
            continue
        lines.extend(_version_lines(alias, info["versions"][alias]))
    if info.get("last_rollback"):
        rb = info["last_rollback"]
        lines.append(f"last rollback: v{rb['from_version']} -> v{rb['to_version']} at {rb['at']} by {rb['by']}: "
                     f"{rb['reason']}")
    return "\n".join(lines)


def _version_lines(alias: str, v: dict[str, Any]) -> list[str]:
    metrics = ", ".join(f"{k} {val:.4g}" for k, val in sorted(v["metrics"].items())
                        if k.startswith(("test_", "current_")))
    decision = v["decision"] or "not gated yet"
    out = [f"{alias:<10} v{v['version']}  {decision}  registered {v['registered_at']}",
           f"{'':<10} run {v['run_id'] or '-'} (MLflow run {v['mlflow_run_id']}), "
           f"commit {(v['git_commit'] or '-')[:12]}",
           f"{'':<10} data: baseline {v['data']['baseline_window']}, current {v['data']['current_window']}, "
           f"sha256 {(v['data']['sha256'] or '-')[:12]}",
           f"{'':<10} metrics: {metrics or '-'}"]
    if v["version_test"] and v["version_test"].get("champion") is not None:
        test = v["version_test"]
        metric_names = sorted(test["challenger"])
        side = ", ".join(f"{m} {test['challenger'][m]:.4g} vs {test['champion'][m]:.4g}" for m in metric_names)
        out.append(f"{'':<10} version test on {test['rows']} rows vs champion v{test['champion_version']}: {side}")
    if v["decision_reason"]:
        out.append(f"{'':<10} reason: {v['decision_reason']}")
    if v["rollback"]:
        out.append(f"{'':<10} rolled back at {v['rollback']['at']} by {v['rollback']['by']}: {v['rollback']['reason']}")
    for path in [*v["reports"], *([v["release_page"]] if v["release_page"] else [])]:
        out.append(f"{'':<10} report: {path}" + ("" if Path(path).exists() else " (not on this machine)"))
    return out


# --------------------------------------------------------------------------- notebook 04 steps


def version_test(ctx: StepContext) -> VersionTest:
    """Score the challenger of this run and the current champion on the same labelled rows."""
    evaluation = ctx.read_summary("train")
    client = registry.connect(ctx.params)
    which = ctx.params.gates.champion.compare_on
    rows = comparison_rows(ctx.params, ctx.frame, which)
    return compare_versions(client, ctx.params, str(evaluation["model"]["version"]), rows, which)


def _test_rows(ctx: StepContext) -> pd.DataFrame:
    return comparison_rows(ctx.params, ctx.frame, "test")


def smoke_test(ctx: StepContext) -> GateResult:
    """Smoke test of this run's registered version against the predictions of the train step."""
    evaluation = ctx.read_summary("train")
    expected = pd.read_parquet(ctx.run_dir / evaluation["predictions"]["test"])["predicted"].to_numpy()
    return smoke_check(ctx.params, evaluation["model"]["uri"], _test_rows(ctx), expected)


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
    client = registry.connect(ctx.params)
    rows = comparison_rows(ctx.params, ctx.frame, test.rows)
    return release_version(client, ctx.params, str(evaluation["model"]["version"]), results, test,
                           rows=rows, run_id=ctx.run_dir.name, page=str(ctx.run_dir / RELEASE_HTML))


def verify_champion(ctx: StepContext) -> GateResult:
    """Load ``models:/<name>@champion`` and check it predicts exactly like its pinned version."""
    name = ctx.params.mlflow.model_name
    client = registry.connect(ctx.params)
    champion = registry.version_with_alias(client, name, registry.CHAMPION)
    if champion is None:
        return GateResult("champion check", True, f"models:/{name}@champion: no champion yet, nothing is served")
    rows = _test_rows(ctx)[ctx.params.data.features]
    got = registry.load(f"models:/{name}@champion").predict(rows)
    evaluation = ctx.read_summary("train")
    label = f"models:/{name}@champion (v{champion.version})"
    if str(champion.version) == str(evaluation["model"]["version"]):
        expected = pd.read_parquet(ctx.run_dir / evaluation["predictions"]["test"])["predicted"].to_numpy()
    else:
        expected = registry.load(f"models:/{name}/{champion.version}").predict(rows)
        label += ", unchanged"
    return compare_predictions("champion check", label, got, expected, 1e-9)


def finish_deploy(ctx: StepContext, outcome: Outcome, check: GateResult) -> dict[str, Any]:
    """Write ``deploy.json`` and ``release.html`` (the decision and every reason)."""
    from helpers.reports.release_page import write_release_page

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

