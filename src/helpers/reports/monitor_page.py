"""The monitoring page of one window of captured traffic.

Template ``monitor.html`` extends the drift report's template: the window's verdict,
performance and prediction drift come before the feature drift report's first section.

Example
-------
>>> html = render_monitor_page(summary, report)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from helpers.reports.drift_report import report_context
from helpers.reports.render import render
from helpers.stats.results import DriftReport


def render_monitor_page(summary: dict[str, Any], report: DriftReport | None) -> str:
    """The monitoring page for ``summary`` (a monitor run's summary) and its feature drift report;
    with no report (too few captured rows) the page holds the summary only."""
    title = f"Monitoring {summary['model']} v{summary['champion']}: {summary['window'][0]} to {summary['window'][1]}"
    context = report_context(report, title) if report is not None else {"title": title, "report": None}
    return render("monitor.html", **context, summary_rows=monitor_rows(summary),
                  estimate_rows=estimate_rows(summary.get("performance") or {}),
                  estimate_facts=estimate_facts(summary.get("performance") or {}))


def monitor_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary table: decision, reason, rows, versions, metrics on feedback, prediction drift."""
    rows = [("decision", summary.get("decision")), ("reason", summary.get("reason")),
            ("captured rows", summary.get("rows")), ("rows with feedback", summary.get("labelled_rows")),
            ("model versions seen", ", ".join(summary.get("versions_seen", [])))]
    perf = summary.get("performance") or {}
    for key, value in (perf.get("metrics") or {}).items():
        rows.append((f"{key} on labelled captures", f"{value:.4g}"))
    pred = summary.get("prediction_drift")
    if pred:
        rows.append(("prediction drift", f"{pred.get('test')} = {pred.get('statistic')} "
                                         f"({'drift' if pred.get('drifted') else 'no drift'})"))
    if summary.get("canary"):
        rows.append(("canary", canary_text(summary["canary"])))
    for action in summary.get("rollback") or []:
        rows.append(("automatic rollback", f"{action.get('action')} v{action.get('version')}: {action.get('reason')}"))
    return [(label, str(value)) for label, value in rows]


def canary_text(canary: dict[str, Any]) -> str:
    """The canary's rows in the window (``summary["canary"]``): version, rows, its metric (realized
    on the labelled rows, else estimated)."""
    metric = str(canary.get("metric") or "")
    realized = (canary.get("realized") or {}).get(metric)
    estimated = ((canary.get("estimated") or {}).get(metric) or {}).get("value")
    shown = f"{metric} {realized:.4g}" if realized is not None else \
        f"{metric} ~{estimated:.4g} (estimated)" if estimated is not None else "no metric"
    return (f"v{canary.get('version')}: {canary.get('rows')} rows, {canary.get('labelled_rows')} with feedback; "
            f"{shown}")


def estimate_rows(perf: dict[str, Any]) -> list[dict[str, str]]:
    """Estimated vs realized, one row per estimated metric: estimate, band, realized (on the
    labelled rows) and whether it fell inside the band estimated for those rows."""
    rows = []
    for name, est in (perf.get("estimated") or {}).items():
        real = (perf.get("realized") or {}).get(name)
        rows.append({"metric": name, "estimated": f"{est['value']:.4g}",
                     "band": f"{est['lower']:.4g} .. {est['upper']:.4g}",
                     "realized": "" if real is None else f"{real['value']:.4g} ({real['rows']} rows)",
                     "inside": "" if real is None else ("yes" if real["inside_band"] else "no")})
    return rows


def estimate_facts(perf: dict[str, Any]) -> list[tuple[str, str]]:
    """Which value the degradation check used, how the estimate was made, its calibration
    (nothing when the window had too few rows to judge)."""
    if not perf:
        return []
    judged = perf.get("judged_on")
    facts = [("degradation judged on", {"realized": "the realized metric (enough rows with feedback)",
                                        "estimated": "the estimated metric (too few rows with feedback)"}
              .get(judged or "", "nothing: no feedback and no estimate"))]
    info = perf.get("estimate") or {}
    if info:
        facts.append(("estimation", f"{info.get('method')} fitted on {info.get('fitted_on_rows')} held-out rows; "
                                    f"band at {info.get('confidence', 0):.0%}"))
    cal = info.get("calibration") or {}
    if cal:
        facts.append(("calibration", f"{cal['method']}, ECE {cal['ece']:.3f} (raw {cal['ece_raw']:.3f}); "
                                     f"{'POOR: above' if cal['poor'] else 'fine: within'} {cal['threshold']:.3f}"))
    coverage = perf.get("band_coverage") or {}
    if coverage.get("metrics"):
        facts.append(("realized inside the band", f"{coverage['inside']} of {coverage['metrics']} metrics"))
    if perf.get("estimate_note"):
        facts.append(("no estimate", perf["estimate_note"]))
    return facts
