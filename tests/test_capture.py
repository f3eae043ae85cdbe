"""The capture store: background writing, bounded memory, failures, durability, readers."""
# ruff: noqa: F811  (the imported `registered` fixture is used as an argument)

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core.errors import DataError
from helpers.modeling.captures import (
    CAPTURE_COLUMNS,
    count_rows,
    day_dir,
    join_feedback,
    read_captures,
    read_feedback,
    read_labeled_captures,
    safe_component,
)
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.client import ServeClient
from helpers.serving.service import ScoringService
from serve_fixtures import RegisteredModels

SRC = Path(__file__).resolve().parents[1] / "src"


def _record(i: int, when: float, n: int = 1, model: str = "m", version: str = "1") -> CaptureRecord:
    inputs = pd.DataFrame({"hr": np.arange(n) + i, "weathersit": ["clear"] * n, "temp": np.linspace(0, 1, n)})
    return CaptureRecord.from_frame(
        f"r{i}", inputs, np.full(n, float(i)), model_name=model, model_version=version, latency_ms=1.5, timestamp=when
    )


def _ts(text: str) -> float:
    return pd.Timestamp(text, tz="UTC").timestamp()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_writer_partitions_by_model_and_day_and_reads_back(tmp_path: Path, fmt: str) -> None:
    with CaptureWriter(tmp_path, fmt=fmt, flush_interval=60) as writer:  # only close() writes
        writer.submit(_record(0, _ts("2011-07-01 10:00"), n=3))
        writer.submit(_record(1, _ts("2011-07-02 09:00")))
        writer.submit(_record(2, _ts("2011-07-02 23:59:59")))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob(f"*.{fmt}"))
    assert [f.rsplit("/", 1)[0] for f in files] == ["m/2011/07/01", "m/2011/07/02"]
    frame = read_captures(tmp_path, "m")
    assert list(frame.columns[: len(CAPTURE_COLUMNS)]) == list(CAPTURE_COLUMNS)
    assert {"hr", "weathersit", "temp", "prediction"} <= set(frame.columns)
    assert frame["request_id"].tolist() == ["r0", "r0", "r0", "r1", "r2"]
    assert frame["row"].tolist() == [0, 1, 2, 0, 0]
    assert frame["timestamp"].dt.tz is not None
    assert frame["weathersit"].tolist() == ["clear"] * 5
    assert frame["prediction"].tolist() == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert frame["model_version"].tolist() == ["1"] * 5


@pytest.mark.parametrize(
    ("start", "end", "ids"),
    [
        ("2011-07-02", None, ["r1", "r2"]),
        (None, "2011-07-02", ["r0"]),
        ("2011-07-01 10:00:00.5", "2011-07-02 12:00", ["r1"]),
        (dt.date(2011, 7, 3), None, []),
    ],
)
def test_read_captures_window(tmp_path: Path, start: object, end: object, ids: list[str]) -> None:
    with CaptureWriter(tmp_path) as writer:
        for i, when in enumerate(("2011-07-01 10:00", "2011-07-02 09:00", "2011-07-02 23:59:59")):
            writer.submit(_record(i, _ts(when)))
    assert read_captures(tmp_path, "m", start, end)["request_id"].tolist() == ids


def test_read_captures_of_an_empty_store_has_the_meta_columns(tmp_path: Path) -> None:
    frame = read_captures(tmp_path, "nothing-yet", "2011-01-01", "2011-02-01")
    assert frame.empty and list(frame.columns) == list(CAPTURE_COLUMNS)


def test_bad_window_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="start .* must be before end"):
        read_captures(tmp_path, "m", "2011-02-01", "2011-01-01")
    with pytest.raises(DataError, match="expected a date"):
        read_captures(tmp_path, "m", "not-a-date", None)


def test_background_writer_flushes_without_close(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, flush_interval=0.05).start()
    try:
        writer.submit(_record(0, _ts("2011-07-01")))
        assert writer.flush(timeout=10)
        assert count_rows(tmp_path, "m") == 1
        assert writer.stats()["captured_rows"] == 1
    finally:
        writer.close()


def test_memory_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, max_pending_rows=5)  # not started: nothing drains
    accepted = [writer.submit(_record(i, _ts("2011-07-01"), n=2)) for i in range(4)]
    assert accepted == [True, True, False, False]
    stats = writer.stats()
    assert stats["pending_rows"] == 4 and stats["dropped_rows"] == 4 and stats["healthy"] is False
    writer.close()
    assert count_rows(tmp_path, "m") == 4


def test_write_failure_is_reported_never_raised_and_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("a file where the capture folder should be")
    writer = CaptureWriter(blocker, flush_interval=0.05).start()
    assert writer.submit(_record(0, _ts("2011-07-01")))
    writer.flush(timeout=10)
    stats = writer.stats()
    assert stats["write_errors"] >= 1 and stats["last_error"] and stats["pending_rows"] == 1
    blocker.unlink()  # the disk "recovers": the kept rows are written at the next flush
    writer.flush(timeout=10)
    writer.close()
    assert count_rows(blocker, "m") == 1


def test_close_loses_nothing(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, flush_interval=30).start()
    for i in range(500):
        writer.submit(_record(i, _ts("2011-07-01") + i, n=1 + i % 3))
    writer.close()
    assert count_rows(tmp_path, "m") == sum(1 + i % 3 for i in range(500))
    assert not writer.submit(_record(0, _ts("2011-07-01")))  # closed: refused and counted


@pytest.mark.slow  # starts another Python process and kills it
def test_hard_kill_keeps_what_was_flushed(tmp_path: Path) -> None:
    """A SIGKILL loses at most the rows submitted within the last flush interval."""
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np, pandas as pd
        from helpers.serving.capture_records import CaptureRecord
        from helpers.serving.capture_store import CaptureWriter
        writer = CaptureWriter({str(tmp_path)!r}, flush_interval=0.1).start()
        for i in range(200):
            frame = pd.DataFrame({{"x": [float(i)]}})
            writer.submit(CaptureRecord.from_frame(f"r{{i}}", frame, np.array([1.0]), model_name="m",
                                                   model_version="1", latency_ms=1.0))
        time.sleep(1.0)  # ten flush intervals
        print("ready", flush=True)
        for i in range(200, 100000):  # keep writing until killed
            frame = pd.DataFrame({{"x": [float(i)]}})
            writer.submit(CaptureRecord.from_frame(f"r{{i}}", frame, np.array([1.0]), model_name="m",
                                                   model_version="1", latency_ms=1.0))
            time.sleep(0.001)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    frame = read_captures(tmp_path, "m")  # every file is whole: none half-written
    assert {f"r{i}" for i in range(200)} <= set(frame["request_id"])
    assert not list(tmp_path.rglob("*.parquet.tmp"))
    assert frame["request_id"].is_unique


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize("name", ["../../escape", "..", "a/b", "/abs", "ok-name_1.2"])
def test_captures_stay_under_the_capture_folder(tmp_path: Path, name: str) -> None:
    root = tmp_path / "captures"
    folder = day_dir(root, name, dt.date(2011, 7, 1))
    assert folder.is_relative_to(root.resolve())
    with CaptureWriter(root) as writer:
        writer.submit(_record(0, _ts("2011-07-01"), model=name))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.is_relative_to(root) for p in written)
    assert safe_component(name) == safe_component(safe_component(name))


def test_clashing_input_names_are_prefixed(tmp_path: Path) -> None:
    inputs = pd.DataFrame({"timestamp": [1.0], "prediction": [2.0], "x": [3.0]})
    with CaptureWriter(tmp_path) as writer:
        writer.submit(
            CaptureRecord.from_frame("r", inputs, np.array([9.0]), model_name="m", model_version="1", latency_ms=1.0)
        )
    frame = read_captures(tmp_path, "m")
    assert frame["input_timestamp"].tolist() == [1.0] and frame["input_prediction"].tolist() == [2.0]
    assert frame["prediction"].tolist() == [9.0] and frame["x"].tolist() == [3.0]


def test_several_outputs_and_changing_inputs(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path) as writer:
        writer.submit(
            CaptureRecord.from_frame(
                "a", pd.DataFrame({"x": [1.0, 2.0]}), np.ones((2, 2)), model_name="m", model_version="1", latency_ms=1.0
            )
        )
        writer.submit(
            CaptureRecord.from_frame(
                "b", pd.DataFrame({"y": ["u"]}), np.zeros((1, 2)), model_name="m", model_version="2", latency_ms=1.0
            )
        )
    frame = read_captures(tmp_path, "m")
    assert {"prediction_0", "prediction_1", "x", "y"} <= set(frame.columns)
    assert frame["y"].isna().sum() == 2 and frame["x"].isna().sum() == 1


# --------------------------------------------------------------------------- feedback


def test_feedback_joins_captures_latest_label_wins(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path) as writer:
        writer.submit(_record(0, _ts("2011-07-01 10:00"), n=2))
        writer.submit(_record(1, _ts("2011-07-01 11:00")))
        writer.submit(_record(2, _ts("2011-07-03 11:00")))
        writer.submit(FeedbackRecord("m", ["r0", "r0", "r1"], [0, 1, 0], [5.0, 6.0, 7.0], timestamp=_ts("2011-07-04")))
        writer.submit(FeedbackRecord("m", ["r1", "unknown"], [0, 0], [8.0, 1.0], timestamp=_ts("2011-07-05")))
    feedback = read_feedback(tmp_path, "m")
    assert len(feedback) == 4 and set(feedback.columns) >= {"request_id", "row", "label", "timestamp"}
    joined = join_feedback(read_captures(tmp_path, "m"), feedback)
    assert sorted(zip(joined["request_id"], joined["row"], joined["label"], strict=True)) == [
        ("r0", 0, 5.0),
        ("r0", 1, 6.0),
        ("r1", 0, 8.0),
    ]
    labelled = read_labeled_captures(tmp_path, "m", "2011-07-01", "2011-07-02")  # labels arrived later
    assert len(labelled) == 3 and {"prediction", "label", "hr"} <= set(labelled.columns)
    left = join_feedback(read_captures(tmp_path, "m"), feedback, how="left")
    assert len(left) == 4 and left["label"].isna().sum() == 1


def test_feedback_over_http_is_stored_beside_captures(registered: RegisteredModels, tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path / "captures", flush_interval=0.1)
    with (
        ScoringService(
            registered.uri("1"), tracking_uri=registered.tracking_uri, port=0, capture=writer, alias_poll_interval=0
        ) as svc,
        ServeClient(svc.url) as client,
    ):
        single = client.predict(registered.rows.head(1)).request_id
        multi = client.predict(registered.rows.iloc[1:4]).request_id
        assert client.feedback([single, multi], [10.0, [11.0, 12.0, 13.0]]) == 4
        bad = client.request(
            "POST", "/feedback", b'{"request_ids": ["a"], "labels": []}', {"Content-Type": "application/json"}
        )
        assert bad.status == 400 and "same length" in bad.json()["message"]
    root = tmp_path / "captures"
    folders = {p.parent for p in root.rglob("*.parquet")}
    assert len(folders) == 1  # captures and feedback side by side in the day folder
    labelled = read_labeled_captures(root, registered.name)
    assert len(labelled) == 4
    assert labelled.sort_values(["request_id", "row"])["label"].tolist() in (
        [10.0, 11.0, 12.0, 13.0],
        [11.0, 12.0, 13.0, 10.0],
    )
    np.testing.assert_allclose(
        labelled.set_index(["request_id", "row"]).loc[(single, 0), "prediction"], registered.expected["1"][0]
    )


def test_capture_failure_never_fails_a_prediction_and_shows_in_health(
    registered: RegisteredModels, tmp_path: Path
) -> None:
    blocker = tmp_path / "captures"
    blocker.write_text("not a folder")
    writer = CaptureWriter(blocker, flush_interval=0.05)
    with (
        ScoringService(
            registered.uri("1"), tracking_uri=registered.tracking_uri, port=0, capture=writer, alias_poll_interval=0
        ) as svc,
        ServeClient(svc.url) as client,
    ):
        for i in range(5):
            assert np.allclose(client.predict(registered.rows.iloc[i : i + 1]).values, registered.expected["1"][i])
        writer.flush(timeout=10)
        health = client.get_json("/health")
    assert health["status"] == "degraded"
    assert health["capture"]["write_errors"] >= 1 and health["capture"]["last_error"]
    assert health["requests"]["predictions"] == 5 and health["requests"]["server_errors"] == 0
