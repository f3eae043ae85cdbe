"""The drift coefficient on captured traffic, the monitoring history, backfill and the dashboard.

A champion is trained for real (MLflow SQLite store) with a baseline sample; its captures are
written with the capture writer on past days: shifted traffic (July and August rows), unshifted
traffic (training rows) and a day with too few rows. The history's file handling is checked on
its own (append, replace, torn line) in the fast lane.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from helpers.core import catalogue
from helpers.core.config import load_params
from helpers.modeling.captures import read_captures
from helpers.modeling.data import window
from helpers.monitoring import backfill, history, monitor
from helpers.monitoring.baseline_sample import baseline_sample, load_baseline_sample
from helpers.pipeline import context as pipeline
from helpers.pipeline import train_step
from helpers.registry import store as registry
from helpers.reports import monitoring_dashboard as dashboard
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
from helpers.serving.capture_store import CaptureWriter
from helpers.stats.compare import compare
from support import one_error_line, run_cli, write_params

SAMPLE = 1200  # monitor.baseline_sample: fewer than the training rows, so the sample is drawn
FEEDBACK_DAY = "2026-01-05"
FIGURES = ("Drift coefficient", "Share of drifted features", "Drift statistic by feature", "Prediction drift",
           "Estimated and realized performance")


# --------------------------------------------------------------------------- the champion and its traffic


def _write_captures(params, model, version: str, traffic: dict[str, pd.DataFrame]) -> None:
    """Each day's rows as requests of 40 rows spread over the day, with the model's predictions."""
    features = list(params.data.features)
    with CaptureWriter(params.outputs_dir / catalogue.CAPTURES_DIR, flush_interval=0.2) as writer:
        for day, rows in traffic.items():
            start = pd.Timestamp(day, tz="UTC").timestamp()
            chunks = [rows.iloc[i:i + 40] for i in range(0, len(rows), 40)]
            for i, chunk in enumerate(chunks):
                inputs = chunk[features].reset_index(drop=True)
                when = start + 80_000 * i / max(len(chunks), 1)
                writer.submit(CaptureRecord.from_frame(f"{day}-{i}", inputs, np.asarray(model.predict(inputs)),
                                                       model_name=params.mlflow.model_name, model_version=version,
                                                       latency_ms=1.0, timestamp=when))
                if day == FEEDBACK_DAY:  # the labels of one day arrive an hour later
                    labels = chunk[params.data.target].tolist()
                    writer.submit(FeedbackRecord(params.mlflow.model_name, [f"{day}-{i}"] * len(labels),
                                                 list(range(len(labels))), labels, timestamp=when + 3600))


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("history")
    params_file = write_params(folder, **{"monitor.baseline_sample": SAMPLE})
    ctx = pipeline.open_step("train", str(params_file), str(folder / "train-run"))
    rows = train_step.training_data(ctx)
    model = train_step.fit(ctx, rows.train)
    summary = train_step.register(ctx, model, rows, train_step.evaluate(ctx, model, rows))
    version = summary["model"]["version"]
    registry.promote(registry.connect(ctx.params), ctx.params.mlflow.model_name, version)
    params = load_params(params_file)
    frame = ctx.frame
    span = type(params.windows.current)
    traffic = {"2026-01-05": window(frame, span(start="2011-07-01", end="2011-07-21")),
               "2026-01-06": window(frame, span(start="2011-08-01", end="2011-08-21")),
               "2026-01-07": rows.train.sample(400, random_state=1).sort_index(),
               "2026-01-08": rows.train.iloc[:10]}
    _write_captures(params, model, version, traffic)
    return {"params_file": params_file, "params": params, "train": rows.train, "run_id": summary["mlflow_run_id"],
            "version": version}


def _day(day: str) -> monitor.Window:
    return monitor.resolve_window("day", day, str(pd.Timestamp(day) + pd.Timedelta(days=1)))


def _step2_coefficient(params, day: str, sample: pd.DataFrame) -> float | None:
    """What step 2 computes on the same rows: the drift report of the captured rows against the sample."""
    win = _day(day)
    captured = read_captures(params.outputs_dir / catalogue.CAPTURES_DIR, params.mlflow.model_name,
                             win.start, win.end)
    features = list(params.data.features)
    return compare(sample, captured[features], params.drift, features=features).coefficient


@pytest.mark.slow
def test_training_logs_a_seeded_baseline_sample(champion: dict) -> None:
    params = champion["params"]
    sample = load_baseline_sample(champion["run_id"])
    assert sample is not None and list(sample.columns) == list(params.data.features)
    assert len(sample) == SAMPLE < len(champion["train"])
    expected = baseline_sample(champion["train"], list(params.data.features), SAMPLE, params.drift.seed)
    pd.testing.assert_frame_equal(sample, expected)
    assert mlflow.artifacts.list_artifacts(run_id=champion["run_id"], artifact_path="baseline")


@pytest.mark.slow
def test_coefficient_on_shifted_traffic_is_high_and_equals_step_2(champion: dict) -> None:
    params = champion["params"]
    result = monitor.run_monitor(params, window=_day("2026-01-05"))
    drift = result.summary["feature_drift"]
    sample = load_baseline_sample(champion["run_id"])
    assert drift["coefficient"] is not None and drift["coefficient"] > params.drift.coefficient_threshold
    assert drift["coefficient"] == pytest.approx(_step2_coefficient(params, "2026-01-05", sample), abs=1e-12)
    assert sum(drift["contributions"].values()) == pytest.approx(1.0)
    assert max(drift["contributions"], key=drift["contributions"].get) in {"temp", "atemp", "season"}
    assert "drift coefficient" in result.summary["reason"] and "not computed" not in result.summary["reason"]
    page = result.html.read_text()
    assert "profiles hold no rows" not in page
    assert "Drift coefficient: contribution by feature" in page and f"{drift['coefficient']:.3f}" in page


@pytest.mark.slow
def test_coefficient_on_unshifted_traffic_is_low_and_equals_step_2(champion: dict) -> None:
    params = champion["params"]
    result = monitor.run_monitor(params, window=_day("2026-01-07"))
    coefficient = result.summary["feature_drift"]["coefficient"]
    sample = load_baseline_sample(champion["run_id"])
    assert coefficient is not None and coefficient < 0.2
    assert coefficient == pytest.approx(_step2_coefficient(params, "2026-01-07", sample), abs=1e-12)


@pytest.mark.slow
def test_a_model_without_a_sample_keeps_the_old_message(champion: dict) -> None:
    params = champion["params"]
    old = replace(monitor.load_champion(params), sample=None)
    win = _day("2026-01-05")
    captured = read_captures(params.outputs_dir / catalogue.CAPTURES_DIR, params.mlflow.model_name,
                             win.start, win.end)
    report = monitor.feature_drift(captured, old, params)
    assert report.coefficient is None
    assert "drift coefficient not computed: profiles hold no rows to classify" in report.notes


@pytest.mark.slow
def test_rerunning_a_window_replaces_its_history_line(champion: dict) -> None:
    params = champion["params"]
    for _ in range(2):
        monitor.run_monitor(params, window=_day("2026-01-06"))
    path = history.history_path(params)
    keys = [history.window_key(json.loads(line)) for line in path.read_text().splitlines()]
    assert len(keys) == len(set(keys))
    record = next(r for r in history.read_history(path) if r["window"]["start"].startswith("2026-01-06"))
    assert record["status"] == "monitored" and record["rows"] > 100 and record["version"] == champion["version"]
    assert record["drift"]["coefficient"] > params.drift.coefficient_threshold
    assert set(record["features"]) == set(params.data.features)
    assert {"test", "statistic", "threshold", "p_value", "drifted", "contribution"} <= set(record["features"]["temp"])
    assert record["prediction_drift"]["statistic"] is not None
    perf = record["performance"]
    assert perf["metric"] == "rmse" and perf["limit"] == pytest.approx(perf["reference"] * 1.25)


@pytest.mark.slow
def test_backfill_records_one_line_per_day_and_renders_the_dashboard(champion: dict) -> None:
    params, outputs = champion["params"], champion["params"].outputs_dir
    done = run_cli("monitor", "--params", str(champion["params_file"]), "--backfill", "--from", "2026-01-04",
                   "--to", "2026-01-09", "--period", "day")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "backfilled 5 window(s)" in done.stdout and "dashboard:" in done.stdout
    records = history.read_history(history.history_path(params), params.mlflow.model_name)
    starts = [r["window"]["start"][:10] for r in records]
    assert starts == ["2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]
    by_day = dict(zip(starts, records, strict=True))
    assert by_day["2026-01-04"]["status"] == by_day["2026-01-08"]["status"] == history.TOO_FEW_ROWS
    assert by_day["2026-01-08"]["rows"] == 10 and by_day["2026-01-08"]["drift"]["coefficient"] is None
    assert by_day["2026-01-05"]["drift"]["coefficient"] > 0.5 > by_day["2026-01-07"]["drift"]["coefficient"]
    realized = by_day[FEEDBACK_DAY]["performance"]["realized"]["rmse"]["value"]
    assert by_day[FEEDBACK_DAY]["labelled_rows"] > 100 and realized > by_day[FEEDBACK_DAY]["performance"]["limit"]
    assert by_day["2026-01-07"]["performance"]["realized"] == {}
    # the dashboard: self-contained, every figure embedded, linked from the index
    dashboard = outputs / catalogue.MONITORING_DIR / catalogue.MONITORING_DASHBOARD
    html = dashboard.read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', html)
    assert images == list(FIGURES)
    assert not re.search(r'(src|href)="https?://', html)
    assert html.count("<tr>") == 1 + 5
    assert "monitoring/index.html" in (outputs / catalogue.INDEX_HTML).read_text()


# --------------------------------------------------------------------------- the history file


def _record(start: str, model: str = "m", coefficient: float = 0.1) -> dict:
    end = str(pd.Timestamp(start) + pd.Timedelta(days=1))
    return {"window": {"start": start, "end": end}, "model": model, "drift": {"coefficient": coefficient}}


def test_history_appends_and_replaces_a_rerun_window(tmp_path: Path) -> None:
    path = tmp_path / "monitoring" / "history.jsonl"
    history.append_record(path, _record("2026-01-02"))
    history.append_record(path, _record("2026-01-01"))
    history.append_record(path, _record("2026-01-01", model="other"))
    assert len(path.read_text().splitlines()) == 3
    history.append_record(path, _record("2026-01-02", coefficient=0.9))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["drift"]["coefficient"] == 0.9
    mine = history.read_history(path, "m")
    assert [r["window"]["start"] for r in mine] == ["2026-01-01", "2026-01-02"]
    assert mine[1]["drift"]["coefficient"] == 0.9
    assert len(history.read_history(path)) == 3


def test_history_readers_skip_a_torn_line_and_writers_repair_it(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history.append_record(path, _record("2026-01-01"))
    with path.open("a") as out:
        out.write('{"window": {"start": "2026-01-02", "end"')  # a crash in the middle of a line
    assert [r["window"]["start"] for r in history.read_history(path)] == ["2026-01-01"]
    history.append_record(path, _record("2026-01-03"))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["window"]["start"] for line in lines] == ["2026-01-01", "2026-01-03"]


def test_history_dedupes_by_window_when_reading_last_wins(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    lines = [_record("2026-01-01", coefficient=0.1), _record("2026-01-01", coefficient=0.7)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))  # e.g. two writers without the lock
    assert [r["drift"]["coefficient"] for r in history.read_history(path)] == [0.7]


def test_performance_record_copies_estimated_and_realized_defensively(params_file: Path) -> None:
    params = load_params(params_file)
    perf = {"estimated": {"rmse": {"value": 80.0, "lower": 70.0, "upper": 90.0}, "mae": "n/a"},
            "realized": {"rmse": 85.5, "r2": {"value": 0.6}}}
    record = history.performance_record(params, perf, {"rmse": 60.0})
    assert record["estimated"] == {"rmse": {"value": 80.0, "lower": 70.0, "upper": 90.0}}
    assert record["realized"] == {"rmse": {"value": 85.5, "lower": None, "upper": None},
                                  "r2": {"value": 0.6, "lower": None, "upper": None}}
    assert record["reference"] == 60.0 and record["limit"] == pytest.approx(75.0) and record["lower_is_better"]
    labelled_only = history.performance_record(params, {"rows": 12, "metrics": {"rmse": 70.0}}, {})
    assert labelled_only["realized"]["rmse"]["value"] == 70.0 and labelled_only["limit"] is None
    assert history.performance_record(params, None, {})["estimated"] == {}


def test_backfill_windows_cover_the_span_one_period_each() -> None:
    windows = backfill.backfill_windows("2026-01-01", "2026-01-03T12:00", "day")
    assert [(str(w.start), str(w.end)) for w in windows] == [
        ("2026-01-01 00:00:00+00:00", "2026-01-02 00:00:00+00:00"),
        ("2026-01-02 00:00:00+00:00", "2026-01-03 00:00:00+00:00"),
        ("2026-01-03 00:00:00+00:00", "2026-01-03 12:00:00+00:00")]
    assert len(backfill.backfill_windows("2026-01-01", "2026-01-02", "hour")) == 24
    assert len(backfill.backfill_windows("2026-01-01", "2026-01-29", "week")) == 4


def test_dashboard_draws_estimates_with_their_band_and_windows_without_rows(tmp_path: Path) -> None:
    records = []
    for i, day in enumerate(pd.date_range("2026-02-01", periods=6, freq="D", tz="UTC")):
        record = _record(str(day), coefficient=0.1 * i)
        record.update(status="monitored", decision="ok", rows=500, labelled_rows=0, version="3", report=f"p{i}.html",
                      features={"x": {"test": "ks", "statistic": 10.0 ** -i, "threshold": 0.05, "drifted": i > 1},
                                "c": {"test": "psi", "statistic": 0.05 * i, "threshold": 0.1, "drifted": i > 2}},
                      prediction_drift={"test": "wasserstein", "statistic": 0.02 * i, "threshold": 0.1,
                                        "drifted": i > 4},
                      performance={"metric": "f1", "reference": 0.8, "limit": 0.6,
                                   "estimated": {"f1": {"value": 0.8 - 0.04 * i, "lower": 0.75 - 0.04 * i,
                                                        "upper": 0.85 - 0.04 * i}},
                                   "realized": {"f1": {"value": 0.79 - 0.05 * i}} if i % 2 else {}})
        record["drift"].update(share_drifted=i / 6, coefficient_threshold=0.5, drift_share=0.5)
        records.append(record)
    records.insert(2, {**_record("2026-02-10"), "status": history.TOO_FEW_ROWS, "rows": 3, "drift": {}})
    path = dashboard.write_dashboard(sorted(records, key=history.window_key), tmp_path / "index.html")
    html = path.read_text()
    assert re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', html) == list(FIGURES)
    assert '<a href="p5.html">report</a>' in html and "0.6 [0.55, 0.65]" in html
    assert html.count("<tr>") == 1 + 7
    empty = dashboard.write_dashboard([], tmp_path / "empty.html").read_text()
    assert "No monitored window yet" in empty


def test_backfill_mistakes_are_one_line_errors(params_file: Path) -> None:
    base = ("monitor", "--params", str(params_file), "--backfill")
    one_error_line(run_cli(*base, "--to", "2026-01-02"), 2, "--from and --to")
    one_error_line(run_cli(*base, "--from", "2026-01-02", "--to", "2026-01-01"), 2, "must be before")
    one_error_line(run_cli(*base, "--from", "2020-01-01", "--to", "2026-01-01", "--period", "hour"), 2,
                   "at most 10000")
    one_error_line(run_cli(*base, "--retrain", "--from", "2026-01-01", "--to", "2026-01-02"), 2, "drop --retrain")
