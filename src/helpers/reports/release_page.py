"""HTML pages recording release decisions and rollbacks (self-contained, offline).

The reports layer sits below the registry, so the page functions take any objects with the
attributes of the registry's ``Outcome``, ``GateResult`` and ``Rollback`` (the protocols
below); the templates ``release.html`` and ``rollback.html`` read those attributes.

Example
-------
>>> write_release_page(run_dir / "release.html", outcome, check=check)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from helpers.reports.render import write_page


class GateLike(Protocol):
    """One gate's result (``helpers.registry.gates.GateResult``)."""

    gate: str
    reason: str

    @property
    def status(self) -> str:
        """``PASS``, ``FAIL`` or ``WAIT``."""


class VersionTestLike(Protocol):
    """Challenger and champion metrics on the same rows (``helpers.registry.version_test.VersionTest``)."""

    rows: str
    n_rows: int
    span: str
    challenger_version: str
    challenger: dict[str, float]
    champion_version: str | None
    champion: dict[str, float] | None
    champion_error: str | None


class OutcomeLike(Protocol):
    """A release decision (``helpers.registry.release.Outcome``)."""

    decision: str
    reason: str
    model: str
    version: str
    champion_before: str | None
    champion_after: str | None
    previous: str | None
    results: list[Any]  # GateLike
    test: Any  # VersionTestLike
    decided_at: str
    run_id: str
    tracking_uri: str
    rechecked_from: str | None
    approval: dict[str, Any] | None
    lineage: dict[str, str]


class RollbackLike(Protocol):
    """What a rollback did (``helpers.registry.rollback.Rollback``)."""

    model: str
    from_version: str
    to_version: str
    previous: str | None
    reason: str
    by: str
    at: str


def write_release_page(path: Path, outcome: OutcomeLike, *, check: GateLike | None = None,
                       title: str | None = None) -> Path:
    """Write the release decision page for ``outcome`` to ``path``."""
    return write_page(path, "release.html", title=title or f"Release of {outcome.model} v{outcome.version}",
                      outcome=outcome, check=check, facts=release_facts(outcome),
                      test_note=version_test_note(outcome.test), shadow=shadow_facts(outcome.test))


def write_rollback_page(path: Path, done: RollbackLike) -> Path:
    """Write the page recording a rollback."""
    return write_page(path, "rollback.html", title=f"Rollback of {done.model}: v{done.from_version} -> "
                      f"v{done.to_version}", done=done, facts=rollback_facts(done))


def release_facts(outcome: OutcomeLike) -> list[tuple[str, str]]:
    """The decision's facts as (label, text) rows."""
    facts = [("model", outcome.model), ("version", outcome.version),
             ("champion before", outcome.champion_before or "none"),
             ("champion after", outcome.champion_after or "none"),
             ("previous", outcome.previous or "unchanged"), ("decided at (UTC)", outcome.decided_at),
             ("pipeline run", outcome.run_id or "-"), ("tracking URI", outcome.tracking_uri)]
    if outcome.approval:
        facts.append(("approved by", f"{outcome.approval['by']} at {outcome.approval['at']} "
                                     f"{outcome.approval.get('note') or ''}".strip()))
    if outcome.rechecked_from:
        facts.append(("re-compared", f"the champion changed from v{outcome.rechecked_from} during the release"))
    if getattr(outcome.test, "estimated", False):
        facts.append(("decision basis", "ESTIMATED performance: the captured rows lack enough feedback, so "
                                        "challenger and champion were compared by their estimated metrics "
                                        "(gates.champion.use_estimates)"))
    return [(label, _text(value)) for label, value in facts]


def shadow_facts(test: VersionTestLike) -> list[tuple[str, str]]:
    """The shadow comparison's facts (``compare_on: shadow``) as (label, text) rows; empty otherwise."""
    shadow = getattr(test, "shadow", None) or {}
    if not shadow:
        return []
    evidence = shadow.get("evidence")
    basis = {"realized": "REALIZED metrics of each version's captured predictions on the rows with feedback",
             "estimated": "ESTIMATED performance (too few rows with feedback; gates.champion.use_estimates)",
             None: "none yet: the champion gate waits for more evidence"}[evidence]
    agreement = shadow.get("agreement")
    facts = [("shadow version", f"v{test.challenger_version} (challenger) beside champion v{test.champion_version}"),
             ("rows both answered", f"{shadow.get('rows', 0)} rows of {shadow.get('requests', 0)} requests "
                                    f"in the last {shadow.get('days', 0):g} days"),
             ("rows with feedback", f"{shadow.get('labelled_rows', 0)} (gates.champion.min_rows "
                                    f"{shadow.get('min_rows')})"),
             ("decided on", basis),
             ("estimates used", "yes" if evidence == "estimated" else "no"),
             ("agreement", "-" if agreement is None else f"{agreement:.4f} ({shadow.get('agreement_measure')}), "
                                                         f"required >= {shadow.get('min_agreement', 0):g}")]
    waiting = getattr(test, "waiting", "")
    if waiting:
        facts.append(("waiting", waiting))
    return [(label, _text(value)) for label, value in facts]


def rollback_facts(done: RollbackLike) -> list[tuple[str, str]]:
    """The rollback's facts as (label, text) rows."""
    facts = [("model", done.model), ("taken out", f"v{done.from_version}"),
             ("champion again", f"v{done.to_version}"),
             ("previous now", f"v{done.previous}" if done.previous else "none"),
             ("reason", done.reason), ("by", done.by), ("at (UTC)", done.at)]
    return [(label, _text(value)) for label, value in facts]


def version_test_note(test: VersionTestLike) -> str:
    """Which rows both versions were scored on, and why the champion has no column (if so)."""
    note = f"{test.n_rows} {test.rows} rows, {test.span}"
    if getattr(test, "estimated", False):
        note += ("; no labels: the metrics are ESTIMATES (CBPE/DLE) on these rows, each version by its own "
                 "estimator, with their bands")
    if test.champion is None:
        note += "; " + (f"champion v{test.champion_version} could not be scored: {test.champion_error}"
                        if test.champion_error else "no champion yet (first release)")
    return note


def _text(value: Any) -> str:
    return "" if value is None else str(value)
