"""HTML pages recording release decisions and rollbacks (self-contained, offline).

Example
-------
>>> write_release_page(run_dir / "release.html", outcome, check=check)  # doctest: +SKIP
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.core.files import write_text

if TYPE_CHECKING:
    from helpers.registry.gates import GateResult
    from helpers.registry.release import Outcome, Rollback

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:70rem}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;font-size:.9rem;margin:.4rem 0}
th,td{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.PASS,.promoted{color:#17702f;font-weight:600} .FAIL,.blocked,.rolled{color:#b3261e;font-weight:600}
.WAIT,.waiting{color:#8a6d00;font-weight:600} .muted{color:#777;font-size:.85rem}
.banner{padding:.8rem 1rem;border-radius:6px;background:#f6f6f6;margin:1rem 0} code{background:#f1f1f1;padding:0 .2rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _rows(pairs: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f"<table>{cells}</table>"


def gates_html(results: list[GateResult]) -> str:
    """The gate results as an HTML table with PASS / FAIL / WAIT."""
    body = "".join(f'<tr><td>{_e(r.gate)}</td><td class="{r.status}">{r.status}</td><td>{_e(r.reason)}</td></tr>'
                   for r in results)
    return f"<table><tr><th>gate</th><th>result</th><th>reason</th></tr>{body}</table>"


def version_test_html(outcome: Outcome) -> str:
    """Challenger and champion metrics side by side."""
    test = outcome.test
    header = f"<th>metric</th><th>challenger v{_e(test.challenger_version)}</th>"
    if test.champion is not None:
        header += f"<th>champion v{_e(test.champion_version)}</th>"
    body = ""
    for metric, value in test.challenger.items():
        old = None if test.champion is None else test.champion.get(metric, float("nan"))
        champion = "" if old is None else f'<td class="num">{old:.4g}</td>'
        body += f'<tr><td>{_e(metric)}</td><td class="num">{value:.4g}</td>{champion}</tr>'
    note = f"{test.n_rows} {test.rows} rows, {test.span}"
    if test.champion is None:
        note += "; " + (f"champion v{test.champion_version} could not be scored: {test.champion_error}"
                        if test.champion_error else "no champion yet (first release)")
    return f'<table><tr>{header}</tr>{body}</table><p class="muted">{_e(note)}</p>'


def write_release_page(path: Path, outcome: Outcome, *, check: GateResult | None = None,
                       title: str | None = None) -> Path:
    """Write the release decision page for ``outcome`` to ``path``."""
    heading = title or f"Release of {outcome.model} v{outcome.version}"
    banner = (f'<div class="banner"><span class="{_e(outcome.decision)}">{_e(outcome.decision.upper())}</span> '
              f"v{_e(outcome.version)} &mdash; {_e(outcome.reason)}</div>")
    if outcome.decision == "waiting":
        banner += (f"<p>The version waits as <code>challenger</code>. A reviewer releases it with "
                   f"<code>driftgate approve {_e(outcome.version)} --params &lt;params file&gt;</code>.</p>")
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
    sections = [f"<h1>{_e(heading)}</h1>", banner, _rows(facts),
                "<h2>Version test: the same rows, both versions</h2>", version_test_html(outcome),
                "<h2>Gates</h2>", gates_html(outcome.results)]
    if check is not None:
        sections += ["<h2>Champion check</h2>", gates_html([check])]
    if outcome.lineage:
        sections += ["<h2>Lineage of the version</h2>", _rows(sorted(outcome.lineage.items()))]
    sections.append('<p class="muted">Roll back with <code>driftgate rollback --reason "..."</code>; '
                    "see the state with <code>driftgate status</code>.</p>")
    return write_text(Path(path), _page(heading, "\n".join(sections)))


def write_rollback_page(path: Path, done: Rollback) -> Path:
    """Write the page recording a rollback."""
    heading = f"Rollback of {done.model}: v{done.from_version} -> v{done.to_version}"
    facts = [("model", done.model), ("taken out", f"v{done.from_version}"),
             ("champion again", f"v{done.to_version}"),
             ("previous now", f"v{done.previous}" if done.previous else "none"),
             ("reason", done.reason), ("by", done.by), ("at (UTC)", done.at)]
    body = (f"<h1>{_e(heading)}</h1>"
            f'<div class="banner"><span class="rolled">ROLLED BACK</span> {_e(done.reason)}</div>{_rows(facts)}')
    return write_text(Path(path), _page(heading, body))
