"""HTML rendering: executed notebooks to self-contained pages, and the run index page."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from helpers.core.files import read_json, write_text

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

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem} table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4} .succeeded{color:#17702f;font-weight:600} .failed{color:#b3261e;font-weight:600}
.running,.interrupted{color:#8a6d00;font-weight:600} .promoted{color:#17702f} .blocked{color:#b3261e}
.muted{color:#777;font-size:.8rem} a{color:#0b57d0}
"""


def write_index(outputs_dir: Path) -> Path:
    """Write ``outputs/index.html``: every run, newest first, with status, metrics, drift, gate."""
    runs_dir = Path(outputs_dir) / "runs"
    manifests = []
    for path in sorted(runs_dir.glob("*/manifest.json"), reverse=True):
        try:
            manifests.append(read_json(path))
        except (OSError, ValueError):
            continue
    rows = "\n".join(_index_row(m) for m in manifests)
    monitoring = _page_links(Path(outputs_dir), "monitoring", "Monitoring reports")
    monitoring += _page_links(Path(outputs_dir), "releases", "Approvals and rollbacks")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Driftgate runs</title><style>{_STYLE}</style></head><body>
<h1>Driftgate runs</h1>
<p class="muted">{len(manifests)} run(s) in {html.escape(str(runs_dir))}, newest first.</p>
<table><thead><tr><th>run</th><th>status</th><th>started (UTC)</th><th>duration</th>
<th>metrics</th><th>drift</th><th>release</th><th>reports</th></tr></thead>
<tbody>
{rows}
</tbody></table>
{monitoring}
</body></html>
"""
    return write_text(Path(outputs_dir) / "index.html", page)


def _index_row(manifest: dict[str, Any]) -> str:
    run_id = manifest.get("run_id", "?")
    status = manifest.get("status", "?")
    summaries = manifest.get("summaries", {})
    links = [
        f'<a href="runs/{run_id}/{html.escape(s["html"])}">{html.escape(s["name"])}</a>'
        for s in manifest.get("steps", []) if s.get("html")
    ]
    for extra in manifest.get("extra_reports") or []:
        label = html.escape(extra.removesuffix(".html").replace("_", " "))
        links.append(f'<a href="runs/{run_id}/{html.escape(extra)}">{label}</a>')
    links.append(f'<a href="runs/{run_id}/manifest.json">manifest</a>')
    error = next((s.get("error") for s in manifest.get("steps", []) if s.get("error")), None)
    status_cell = f'<span class="{status}">{status}</span>'
    if error:
        status_cell += f'<div class="muted">{html.escape(error)}</div>'
    duration = manifest.get("duration_s")
    return (
        f"<tr><td>{html.escape(run_id)}</td><td>{status_cell}</td>"
        f"<td>{html.escape(str(manifest.get('start', '')))}</td>"
        f"<td>{'' if duration is None else f'{duration:.0f} s'}</td>"
        f"<td>{_metrics_cell(summaries.get('train', {}))}</td>"
        f"<td>{_drift_cell(summaries.get('drift', {}))}</td>"
        f"<td>{_release_cell(summaries.get('deploy', {}), run_id)}</td>"
        f"<td>{' · '.join(links)}</td></tr>"
    )


def _metrics_cell(headline: dict[str, Any]) -> str:
    parts = [f"{k} {v:.3g}" for k, v in headline.items() if isinstance(v, int | float) and k != "version"]
    version = headline.get("version")
    prefix = f"v{version} " if version else ""
    return html.escape(prefix + ", ".join(parts))


def _drift_cell(headline: dict[str, Any]) -> str:
    if not headline:
        return ""
    share = headline.get("share_drifted")
    coefficient = headline.get("coefficient")
    verdict = "drift" if headline.get("drifted") else "no drift"
    bits = [verdict]
    if share is not None:
        bits.append(f"{share:.0%} of features")
    if coefficient is not None:
        bits.append(f"coefficient {coefficient:.2f}")
    return html.escape(", ".join(bits))


def _release_cell(headline: dict[str, Any], run_id: str) -> str:
    """The release decision, linked to the run's release page when it has one."""
    if not headline:
        return ""
    decision = str(headline.get("decision", ""))
    css = {"promoted": "promoted", "waiting": "running"}.get(decision, "blocked")
    version = headline.get("version")
    text = f"{decision} v{version}" if version else decision
    cell = f'<span class="{css}">{html.escape(text)}</span>'
    page = headline.get("release_page")
    if page:
        cell = f'<a href="runs/{html.escape(run_id)}/{html.escape(str(page))}">{cell}</a>'
    return cell


def _page_links(outputs_dir: Path, folder: str, heading: str) -> str:
    """A list of the HTML pages in ``outputs/<folder>/``, newest first (their names sort by time)."""
    pages = sorted((outputs_dir / folder).glob("*.html"), reverse=True)
    if not pages:
        return ""
    items = "".join(f'<li><a href="{folder}/{p.name}">{html.escape(p.stem)}</a></li>' for p in pages)
    return f"<h2>{html.escape(heading)}</h2><ul>{items}</ul>"
