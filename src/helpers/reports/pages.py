"""HTML rendering: executed notebooks to self-contained pages, and the run index page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from helpers.core.catalogue import INDEX_HTML, MONITORING_DASHBOARD, MONITORING_DIR
from helpers.core.files import read_json, write_text
from helpers.core.liveness import ABANDONED, abandoned_because, run_state
from helpers.reports.render import write_page

_REMOTE_SCRIPT = re.compile(
    r"<script[^>]+src=\"https?://[^\"]+\"[^>]*>\s*</script>"  # a script loaded from a CDN
    r"|<script type=\"module\">(?:(?!</script>).)*?https?://(?:(?!</script>).)*</script>",  # one importing it
    re.I | re.S,
)


def notebook_to_html(notebook: Path) -> Path:
    """Render an executed notebook as one offline HTML file beside it (images embedded).

    Errors stay visible: a failed cell's traceback is part of the page.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    body = _REMOTE_SCRIPT.sub("", body)  # MathJax/require.js from a CDN: not needed, not offline
    return write_text(notebook.with_suffix(".html"), body)


# --------------------------------------------------------------------------- index page


def write_index(outputs_dir: Path) -> Path:
    """Write ``outputs/index.html``: every run, newest first, with status, metrics, drift, gate."""
    outputs_dir = Path(outputs_dir)
    runs_dir = outputs_dir / "runs"
    manifests = []
    for path in sorted(runs_dir.glob("*/manifest.json"), reverse=True):
        try:
            manifests.append(read_json(path))
        except (OSError, ValueError):
            continue
    sections = [_page_list(outputs_dir, MONITORING_DIR, "Monitoring reports"),
                _page_list(outputs_dir, "releases", "Approvals and rollbacks")]
    dashboard = outputs_dir / MONITORING_DIR / MONITORING_DASHBOARD
    return write_page(outputs_dir / "index.html", "index.html", title="Driftgate runs", runs_dir=str(runs_dir),
                      rows=[index_row(m) for m in manifests], sections=[s for s in sections if s["pages"]],
                      dashboard=f"{MONITORING_DIR}/{MONITORING_DASHBOARD}" if dashboard.is_file() else None)


def index_row(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the index shows of one run (text only; the template makes the markup)."""
    run_id = str(manifest.get("run_id", "?"))
    summaries = manifest.get("summaries", {})
    steps = manifest.get("steps", [])
    links = [{"file": s["html"], "label": s["name"]} for s in steps if s.get("html")]
    links += [{"file": extra, "label": extra.removesuffix(".html").replace("_", " ")}
              for extra in manifest.get("extra_reports") or []]
    links.append({"file": "manifest.json", "label": "manifest"})
    status = run_state(manifest)
    error = next((s.get("error") for s in steps if s.get("error")), None)
    if status == ABANDONED:
        error = f"the runner stopped without finishing: {abandoned_because(manifest)}"
    return {
        "run_id": run_id,
        "status": status,
        "error": error,
        "start": str(manifest.get("start", "")),
        "duration": manifest.get("duration_s"),
        "metrics": metrics_text(summaries.get("train", {})),
        "drift": drift_text(summaries.get("drift", {})),
        "release": release_badge(summaries.get("deploy", {})),
        "links": links,
    }


def metrics_text(headline: dict[str, Any]) -> str:
    """``v3 rmse 68.8, r2 0.71`` from the train step's headline."""
    parts = [f"{k} {v:.3g}" for k, v in headline.items() if isinstance(v, int | float) and k != "version"]
    version = headline.get("version")
    prefix = f"v{version} " if version else ""
    return prefix + ", ".join(parts)


def drift_text(headline: dict[str, Any]) -> str:
    """``drift, 60% of features, coefficient 0.93`` from the drift step's headline."""
    if not headline:
        return ""
    share = headline.get("share_drifted")
    coefficient = headline.get("coefficient")
    bits = ["drift" if headline.get("drifted") else "no drift"]
    if share is not None:
        bits.append(f"{share:.0%} of features")
    if coefficient is not None:
        bits.append(f"coefficient {coefficient:.2f}")
    return ", ".join(bits)


def release_badge(headline: dict[str, Any]) -> dict[str, str] | None:
    """The release decision: its text, its CSS class and the run's release page (if any)."""
    if not headline:
        return None
    decision = str(headline.get("decision", ""))
    version = headline.get("version")
    return {"text": f"{decision} v{version}" if version else decision,
            "css": {"promoted": "promoted", "waiting": "running"}.get(decision, "blocked"),
            "page": str(headline.get("release_page") or "")}


def _page_list(outputs_dir: Path, folder: str, heading: str) -> dict[str, Any]:
    """The HTML pages in ``outputs/<folder>/``, newest first (their names sort by time); a folder's
    own ``index.html`` (the monitoring dashboard) is linked on its own."""
    pages = [p for p in (outputs_dir / folder).glob("*.html") if p.name != INDEX_HTML]
    return {"heading": heading, "folder": folder, "pages": sorted(pages, reverse=True)}
