"""The run index page, the release pages from duck-typed objects, atomic writes, and the wheel's templates."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers.core import files
from helpers.reports import pages as report
from helpers.reports import release_page
from support import ROOT


def _manifest(folder: Path, run_id: str, status: str, **summaries: dict) -> None:
    run_dir = folder / "runs" / run_id
    run_dir.mkdir(parents=True)
    steps = [{"name": "investigate", "html": "01_investigate.html", "status": "succeeded", "error": None}]
    if status == "failed":
        steps.append({"name": "train", "html": "03_train_evaluate.html", "status": "failed",
                      "error": "step train (03_train_evaluate) failed at cell 4: ValueError: bad <value>"})
    manifest = {"run_id": run_id, "status": status, "start": "2026-11-30T10:00:00+00:00", "duration_s": 42.0,
                "steps": steps, "summaries": summaries, "extra_reports": ["drift_report.html"]}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def test_index_lists_runs_newest_first_with_headlines_and_escaped_errors(tmp_path: Path) -> None:
    _manifest(tmp_path, "20261130-100000-aaaaaa", "succeeded",
              train={"version": "1", "rmse": 68.77, "r2": 0.71},
              drift={"drifted": True, "share_drifted": 0.6, "coefficient": 0.93},
              deploy={"decision": "promoted", "version": "1"})
    _manifest(tmp_path, "20261130-110000-bbbbbb", "failed")
    page = report.write_index(tmp_path).read_text()
    assert page.index("20261130-110000-bbbbbb") < page.index("20261130-100000-aaaaaa")
    assert "v1 rmse 68.8, r2 0.71" in page
    assert "drift, 60% of features, coefficient 0.93" in page
    assert "promoted v1" in page and "42 s" in page
    assert "bad &lt;value&gt;" in page and "bad <value>" not in page
    assert 'href="runs/20261130-100000-aaaaaa/drift_report.html"' in page
    (tmp_path / "releases").mkdir()
    (tmp_path / "releases" / "20261130T120000-rollback-v1.html").write_text("<html></html>")
    page = report.write_index(tmp_path).read_text()
    assert "Approvals and rollbacks" in page and 'href="releases/20261130T120000-rollback-v1.html"' in page


def test_atomic_write_leaves_the_old_file_when_serialisation_fails(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    files.write_json(target, {"ok": 1})
    with pytest.raises(ValueError):
        files.write_json(target, {"bad": float("nan")})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    assert oct(os.stat(target).st_mode & 0o777) != oct(0o600)


def test_release_and_rollback_pages_take_any_objects_with_the_attributes(tmp_path: Path) -> None:
    gate = SimpleNamespace(gate="metric <rmse>", status="FAIL", reason="70 > 60")
    test = SimpleNamespace(rows="current", n_rows=744, span="a..b", challenger_version="4",
                           challenger={"rmse": 70.0}, champion_version="3", champion=None, champion_error="boom")
    outcome = SimpleNamespace(decision="blocked", reason="a gate failed", model="bikes", version="4",
                              champion_before="3", champion_after="3", previous=None, results=[gate], test=test,
                              decided_at="2026-11-30T10:00:00+00:00", run_id="", tracking_uri="sqlite:///m.db",
                              rechecked_from=None, approval=None, lineage={"driftgate.data_sha256": "ab12"})
    page = release_page.write_release_page(tmp_path / "release.html", outcome).read_text()
    assert "<title>Release of bikes v4</title>" in page and '<span class="blocked">BLOCKED</span> v4' in page
    assert '<td>metric &lt;rmse&gt;</td><td class="FAIL">FAIL</td>' in page
    assert "champion v3 could not be scored: boom" in page and "Champion check" not in page
    assert "<tr><th>driftgate.data_sha256</th><td>ab12</td></tr>" in page
    done = SimpleNamespace(model="bikes", from_version="4", to_version="3", previous=None, reason="<complaints>",
                           by="ops", at="now")
    page = release_page.write_rollback_page(tmp_path / "rollback.html", done).read_text()
    assert "<title>Rollback of bikes: v4 -&gt; v3</title>" in page
    assert '<span class="rolled">ROLLED BACK</span> &lt;complaints&gt;' in page
    assert "<tr><th>previous now</th><td>none</td></tr>" in page


def test_pages_markup_lives_in_templates_not_in_python() -> None:
    for source in Path(release_page.__file__).parent.glob("*.py"):
        text = source.read_text()
        assert not re.search(r"<(html|head|body|style|table|tr|div|h[1-3])\b|[a-z]\{[a-z-]+:[^};]+;", text), source.name


@pytest.mark.slow
def test_wheel_ships_the_templates_and_py_typed(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", str(tmp_path)],
                          cwd=source, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    wheel = next(tmp_path.glob("driftgate-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.name for p in (ROOT / "src" / "helpers" / "reports" / "templates").iterdir()}
    assert templates >= {"base.html", "style.css", "drift_report.html", "monitor.html", "index.html"}
    assert {f"helpers/reports/templates/{name}" for name in templates} <= names
    assert "helpers/py.typed" in names
