"""The run index page and atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.core import files
from helpers.reports import pages as report


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
