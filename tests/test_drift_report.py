"""The drift figures, the self-contained HTML page and the JSON summary."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from helpers.core.config import DriftParams
from helpers.reports import drift_plots, drift_report
from helpers.reports.monitor_page import render_monitor_page
from helpers.stats.compare import compare
from helpers.stats.results import DriftReport

MAX_HTML_BYTES = 1_500_000


def _frames(n: int = 600, numeric: int = 3, categorical: int = 2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    base, target = {}, {}
    for i in range(numeric):
        base[f"num{i}"] = rng.normal(0, 1, n)
        target[f"num{i}"] = rng.normal(1.0 if i == 0 else 0.0, 1, n)
    for i in range(categorical):
        levels = [f"L{j}" for j in range(8)]
        base[f"cat{i}"] = rng.choice(levels, n)
        mix = np.r_[[0.5], np.full(7, 0.5 / 7)] if i == 0 else None
        target[f"cat{i}"] = rng.choice(levels, n, p=mix)
    b, t = pd.DataFrame(base), pd.DataFrame(target)
    t["when"] = pd.date_range("2022-01-03", periods=n, freq="h")
    return b, t


@pytest.fixture(scope="module")
def report() -> DriftReport:
    base, target = _frames()
    target.loc[:4, "num1"] = np.inf
    base["broken"] = np.linspace(0.5, 7.5, len(base))
    target["broken"] = "x"
    return compare(base, target, DriftParams(coefficient_sample=1200), time_column="when")


def test_figures_are_matplotlib_figures(report: DriftReport) -> None:
    for fig in (
        drift_plots.distributions(report),
        drift_plots.contributions(report),
        drift_plots.over_time(report),
        drift_plots.feature_figure(report.feature("num0")),
        drift_plots.feature_figure(report.feature("cat0")),
        drift_plots.feature_figure(report.feature("broken")),
    ):
        assert isinstance(fig, Figure)
        assert drift_plots.to_data_uri(fig).startswith("data:image/png;base64,")
    svg = drift_plots.to_data_uri(drift_plots.contributions(report), fmt="svg")
    assert svg.startswith("data:image/svg+xml;base64,")


def test_figures_without_time_or_coefficient_say_why() -> None:
    base, target = _frames(100)
    plain = compare(base, target.drop(columns="when"), DriftParams(coefficient_sample=0))
    texts = [t.get_text() for ax in drift_plots.over_time(plain).axes for t in ax.texts]
    assert any("no time column" in t for t in texts)
    texts = [t.get_text() for ax in drift_plots.contributions(plain).axes for t in ax.texts]
    assert any("turned off" in t for t in texts)


def test_relative_magnitude_puts_the_threshold_at_one() -> None:
    p = drift_plots.relative_magnitude({"test": "ks", "threshold": 0.05, "values": [0.05, 0.0025, None]})
    np.testing.assert_allclose(p[:2], [1.0, 2.0])
    assert np.isnan(p[2])
    d = drift_plots.relative_magnitude({"test": "psi", "threshold": 0.2, "values": [0.1, 0.4]})
    np.testing.assert_allclose(d, [0.5, 2.0])


def test_html_is_self_contained_small_and_complete(report: DriftReport, tmp_path: Path) -> None:
    path = drift_report.write_html(report, tmp_path / "drift.html", title="Test <report>")
    page = path.read_text(encoding="utf-8")
    assert path.stat().st_size < MAX_HTML_BYTES
    assert "<title>Test &lt;report&gt;</title>" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)  # works offline
    assert not re.search(r"<script(?! type=\"application/json\")", page)  # no code, only data
    assert ("DRIFT DETECTED" if report.drifted else "NO DRIFT") in page
    assert report.reason.replace(">", "&gt;").replace("<", "&lt;") in page
    assert f"<div class=\"v\">{report.coefficient:.3f}</div><div class=\"k\">drift coefficient" in page
    assert f"({report.n_drifted} of {report.n_compared})" in page
    # per-feature table lists drifted features first
    table = page.split("<h2>Per-feature decisions</h2>")[1].split("</table>")[0]
    order = re.findall(r'<a href="#f-[0-9a-f]+">([^<]+)</a>', table)
    assert order == [f.feature for f in report.features]
    assert order[: report.n_drifted] == report.drifted_features
    # every feature has a section; the bad one explains itself
    for f in report.features:
        assert f'id="f-{f.feature.encode().hex()}"' in page
    assert "type mismatch" in page and "5 infinite values in the target" in page
    assert page.count("data:image/png;base64,") == report.n_compared + 2  # features, contributions, over time


def test_html_embeds_the_json_summary_and_no_rows(report: DriftReport, tmp_path: Path) -> None:
    page = drift_report.render_html(report)
    match = re.search(r'<script type="application/json" id="drift-data">(.*?)</script>', page, re.S)
    assert match is not None
    embedded = json.loads(match.group(1))
    assert embedded == json.loads(json.dumps(report.to_dict()))
    base, _ = _frames()
    raw_values = [repr(float(v)) for v in base["num0"].iloc[:20]]
    assert not any(v in page for v in raw_values)  # aggregated data only


def test_json_is_strict_and_written_atomically(report: DriftReport, tmp_path: Path) -> None:
    path = drift_report.write_json(report, tmp_path / "out" / "drift.json")
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-finite {c} in JSON"))
    assert data["summary"]["drifted"] == report.drifted
    assert data["summary"]["share_drifted"] == pytest.approx(report.share_drifted)
    assert sorted(p.name for p in path.parent.iterdir()) == ["drift.json"]  # no temporary file left
    broken = next(f for f in data["features"] if f["feature"] == "broken")
    assert broken["statistic"] is None and broken["notes"]


def test_html_of_twenty_features_stays_under_the_size_limit(tmp_path: Path) -> None:
    base, target = _frames(n=3000, numeric=15, categorical=5, seed=3)
    report = compare(base, target, DriftParams(coefficient_sample=2000), time_column="when")
    path = drift_report.write_html(report, tmp_path / "big.html")
    assert path.stat().st_size < MAX_HTML_BYTES
    assert report.feature("num0").drifted and report.feature("cat0").drifted


def test_html_escapes_feature_names_and_keeps_them_in_the_data(tmp_path: Path) -> None:
    base, target = _frames(n=200, numeric=1, categorical=1)
    evil = "<script>alert('x')</script>"
    base[evil], target[evil] = base["num0"], target["num0"] + 2
    report = compare(base, target, DriftParams(coefficient_sample=0))
    page = drift_report.write_html(report, tmp_path / "evil.html", title=evil).read_text()
    assert "<script>alert" not in page and "</script>alert" not in page
    assert not re.search(r"<script(?! type=\"application/json\")", page)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert f"<title>{html.escape(evil, quote=False)}</title>".replace("'", "&#39;") in page
    match = re.search(r'<script type="application/json" id="drift-data">(.*?)</script>', page, re.S)
    assert match is not None and "<" not in match.group(1)
    assert evil in [f["feature"] for f in json.loads(match.group(1))["features"]]


def test_monitor_page_extends_the_drift_report(report: DriftReport) -> None:
    summary = {"model": "bikes", "champion": "3", "window": ["2026-11-30", "2026-12-01"], "rows": 744,
               "labelled_rows": 10, "versions_seen": ["3"], "decision": "drift", "reason": "features <drifted>",
               "performance": {"metrics": {"rmse": 70.123}},
               "prediction_drift": {"test": "psi", "statistic": 0.3, "drifted": True}}
    page = render_monitor_page(summary, report)
    head, sections = page.split("<h2>", 1)
    assert "DRIFT DETECTED" in head or "NO DRIFT" in head
    assert sections.startswith("Monitoring summary</h2>")
    assert sections.index("Monitoring summary") < sections.index("Per-feature decisions")
    assert "<tr><th>reason</th><td>features &lt;drifted&gt;</td></tr>" in page
    assert "<tr><th>rmse on labelled captures</th><td>70.12</td></tr>" in page
    assert "<title>Monitoring bikes v3: 2026-11-30 to 2026-12-01</title>" in page
    alone = render_monitor_page({**summary, "decision": "no decision"}, None)
    assert "Monitoring summary" in alone and "Per-feature decisions" not in alone and "drift-data" not in alone
