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
    return render("monitor.html", **context, summary_rows=monitor_rows(summary))


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
    return [(label, str(value)) for label, value in rows]
