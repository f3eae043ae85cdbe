"""The monitoring dashboard: the history of every monitored window, plotted over time.

One self-contained page (template ``monitoring_dashboard.html``, figures as base64 PNG) at
``<outputs>/monitoring/index.html``, one section per model: the drift coefficient with its
threshold, the share of drifted features with ``drift.drift_share``, each feature's statistic as
a heat map, the prediction drift, the estimated and realized metric with the band and the
``monitor.max_degradation`` limit (a canary's metric as its own series), and a table of the
windows (newest first, the canary's rows and metric in a column of their own) linking each
window's monitoring page. The records come from :func:`helpers.monitoring.history.read_history`.

Example
-------
>>> write_dashboard(read_history(path), outputs / "monitoring" / "index.html")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from helpers.reports.drift_plots import to_data_uri
from helpers.reports.history_plots import history_figures
from helpers.reports.render import MISSING, format_number, write_page

FIGURE_TITLES = {
    "coefficient": "Drift coefficient",
    "share": "Share of drifted features",
    "features": "Drift statistic by feature",
    "prediction": "Prediction drift",
    "performance": "Estimated and realized performance",
}


def write_dashboard(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Render the dashboard of ``records`` (every model's, oldest first) to ``path``."""
    models = list(dict.fromkeys(str(r.get("model")) for r in records))
    sections = [model_section(model, [r for r in records if str(r.get("model")) == model]) for model in models]
    return write_page(path, "monitoring_dashboard.html", title="Monitoring dashboard", sections=sections,
                      generated=dt.datetime.now().astimezone().isoformat(timespec="seconds"))


def model_section(model: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One model's figures (data URIs, by title) and window rows (newest first)."""
    figures = history_figures(records)
    latest = records[-1] if records else {}
    return {"model": model,
            "cards": [("windows recorded", str(len(records))),
                      ("latest decision", str(latest.get("decision") or MISSING)),
                      ("latest drift coefficient", format_number((latest.get("drift") or {}).get("coefficient"))),
                      ("latest share drifted", _percent((latest.get("drift") or {}).get("share_drifted")))],
            "images": [(FIGURE_TITLES[name], to_data_uri(fig)) for name, fig in figures.items()],
            "rows": [window_row(r) for r in reversed(records)]}


def window_row(record: dict[str, Any]) -> dict[str, str]:
    """What the windows table shows of one record (text only)."""
    drift = record.get("drift") or {}
    perf = record.get("performance") or {}
    metric = perf.get("metric") or ""
    estimate = (perf.get("estimated") or {}).get(metric) or {}
    realized = (perf.get("realized") or {}).get(metric) or {}
    band = ""
    if estimate.get("lower") is not None and estimate.get("upper") is not None:
        band = f" [{format_number(estimate['lower'])}, {format_number(estimate['upper'])}]"
    pred = record.get("prediction_drift") or {}
    window = record.get("window") or {}
    return {"start": str(window.get("start", "")), "end": str(window.get("end", "")),
            "version": str(record.get("version") or ""), "rows": format_number(record.get("rows")),
            "labelled": format_number(record.get("labelled_rows")),
            "decision": str(record.get("decision") or record.get("status") or ""),
            "css": "drift" if record.get("decision") not in (None, "ok", "no decision") else "",
            "coefficient": format_number(drift.get("coefficient")), "share": _percent(drift.get("share_drifted")),
            "prediction": "" if not pred else f"{pred.get('test')} {format_number(pred.get('statistic'))}"
                                              f"{' drift' if pred.get('drifted') else ''}",
            "estimated": "" if estimate.get("value") is None else format_number(estimate["value"]) + band,
            "realized": "" if realized.get("value") is None else format_number(realized["value"]),
            "metric": metric, "canary": canary_cell(record.get("canary"), metric),
            "report": str(record.get("report") or "")}


def canary_cell(canary: dict[str, Any] | None, metric: str) -> str:
    """The canary's part of a window in the table: version, rows, realized (else estimated) metric."""
    if not canary:
        return ""
    realized = ((canary.get("realized") or {}).get(metric) or {}).get("value")
    estimated = ((canary.get("estimated") or {}).get(metric) or {}).get("value")
    shown = f"{metric} {format_number(realized)}" if realized is not None else \
        f"{metric} ~{format_number(estimated)} (estimated)" if estimated is not None else "no metric"
    return f"v{canary.get('version')}: {format_number(canary.get('rows'))} rows, {shown}"


def _percent(value: Any) -> str:
    return MISSING if value is None else f"{float(value):.0%}"
