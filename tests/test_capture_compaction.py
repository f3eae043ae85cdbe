"""Compaction of the capture store: same reads before and after, atomic, idempotent, open period kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.cli.main import main
from helpers.core.errors import ParamsError
from helpers.modeling.captures import count_rows, read_captures, read_feedback, read_labeled_captures
from helpers.serving.capture_compaction import compact, parse_before
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.capture_wal import WriteAheadLog, convert_segment, recover

NOW = pd.Timestamp("2011-07-03 12:30", tz="UTC")


def _ts(text: str) -> float:
    return pd.Timestamp(text, tz="UTC").timestamp()


def _record(i: int, when: str, n: int = 2) -> CaptureRecord:
    inputs = pd.DataFrame({"hr": np.arange(n) + i, "weathersit": ["clear", "mist"][:n], "temp": np.linspace(0, 1, n)})
    return CaptureRecord.from_frame(f"r{i}", inputs, np.full(n, float(i)), model_name="m", model_version="1",
                                    latency_ms=1.0, timestamp=_ts(when))


def _fill(root: Path) -> None:
    """Many small flushes over three days (the last one holds the open period of NOW) and feedback."""
    stamps = ["2011-07-01 09:10", "2011-07-01 09:50", "2011-07-01 10:20", "2011-07-02 23:59:59",
              "2011-07-03 10:05", "2011-07-03 11:59", "2011-07-03 12:10", "2011-07-03 12:20"]
    with CaptureWriter(root, flush_interval=60) as writer:
        for i, when in enumerate(stamps):
            writer.submit(_record(i, when))
            writer.submit(FeedbackRecord("m", [f"r{i}"], [1], [float(i) + 0.5], timestamp=_ts(when) + 1))
            assert writer.flush()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))


def _reads(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    return (read_captures(root, "m"), read_feedback(root, "m"), read_labeled_captures(root, "m"),
            count_rows(root, "m"))


def _assert_same(before: tuple, after: tuple) -> None:
    for old, new in zip(before[:3], after[:3], strict=True):
        pd.testing.assert_frame_equal(old, new)
    assert before[3] == after[3]


def test_reads_are_the_same_before_and_after_compaction(tmp_path: Path) -> None:
    _fill(tmp_path)
    before = _reads(tmp_path)
    report = compact(tmp_path, period="day", now=NOW)
    # days 1 and 2 (the label of 23:59:59 arrived at midnight: it lives in day 3, the open period)
    assert report.files_merged == 4 + 3 and report.periods == 3
    _assert_same(before, _reads(tmp_path))
    files = _files(tmp_path)
    assert [f for f in files if "/01/" in f or "/02/" in f] == [
        "m/2011/07/01/captures-compacted-20110701.parquet", "m/2011/07/01/feedback-compacted-20110701.parquet",
        "m/2011/07/02/captures-compacted-20110702.parquet",
    ]
    assert len([f for f in files if "/03/" in f]) == 9  # today: the open period, untouched
    assert not list(tmp_path.rglob(".*.tmp"))


def test_compaction_is_idempotent(tmp_path: Path) -> None:
    _fill(tmp_path)
    compact(tmp_path, period="hour", now=NOW)
    files = {f: (tmp_path / f).stat().st_mtime_ns for f in _files(tmp_path)}
    again = compact(tmp_path, period="hour", now=NOW)
    assert again.files_merged == 0 and again.periods == 0
    assert {f: (tmp_path / f).stat().st_mtime_ns for f in _files(tmp_path)} == files


def test_hour_periods_leave_the_open_hour_alone(tmp_path: Path) -> None:
    _fill(tmp_path)
    before = _reads(tmp_path)
    compact(tmp_path, period="hour", now=NOW)
    _assert_same(before, _reads(tmp_path))
    day1 = [f.rsplit("/", 1)[1] for f in _files(tmp_path) if "/07/01/" in f and f.rsplit("/", 1)[1].startswith("cap")]
    assert day1 == ["captures-compacted-20110701T09.parquet", "captures-compacted-20110701T10.parquet"]
    day3 = [f.rsplit("/", 1)[1] for f in _files(tmp_path) if "/07/03/captures" in f]
    compacted = [n for n in day3 if n.startswith("captures-compacted-")]
    assert compacted == ["captures-compacted-20110703T10.parquet", "captures-compacted-20110703T11.parquet"]
    assert len(day3) == 4  # and the two files of 12:xx, the open hour


def test_before_limits_what_is_merged(tmp_path: Path) -> None:
    _fill(tmp_path)
    report = compact(tmp_path, before="2011-07-02", period="day", now=NOW)
    assert report.files_merged == 3 * 2
    assert len([f for f in _files(tmp_path) if "/07/02/" in f]) == 1  # the day after --before: untouched
    assert "captures-compacted-20110702" not in " ".join(_files(tmp_path))


def test_a_compaction_cut_between_rename_and_delete_counts_nothing_twice(tmp_path: Path) -> None:
    _fill(tmp_path)
    before = _reads(tmp_path)
    day1 = tmp_path / "m/2011/07/01"
    saved = tmp_path / "saved"
    shutil.copytree(day1, saved)
    compact(tmp_path, period="day", now=NOW)
    for path in saved.iterdir():  # the inputs are back: as if killed after the rename, before the deletes
        shutil.copy(path, day1 / path.name)
    shutil.rmtree(saved)
    _assert_same(before, _reads(tmp_path))  # the compacted file names them, so readers skip them
    report = compact(tmp_path, period="day", now=NOW)
    assert report.leftovers_removed == 6 and report.files_merged == 0
    assert len(list(day1.iterdir())) == 2
    _assert_same(before, _reads(tmp_path))


def test_late_files_join_the_period_file(tmp_path: Path) -> None:
    _fill(tmp_path)
    compact(tmp_path, period="day", now=NOW)
    with CaptureWriter(tmp_path, flush_interval=60) as writer:
        writer.submit(_record(50, "2011-07-01 20:00"))
    before = _reads(tmp_path)
    report = compact(tmp_path, period="day", now=NOW)
    assert report.files_merged == 1 and report.periods == 1
    _assert_same(before, _reads(tmp_path))
    assert len(list((tmp_path / "m/2011/07/01").glob("captures-*"))) == 1


def test_files_of_a_write_ahead_log_still_present_are_left_alone(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path).start()
    for i in range(3):
        wal.submit(_record(i, "2011-07-01 09:00")).result()
    (segment,) = seal_all(wal)
    convert_segment(segment.path, tmp_path, "parquet")  # files written, segment not yet deleted: a kill here
    segment.close()
    report = compact(tmp_path, period="day", now=NOW)
    assert report.skipped_live_log == 1 and report.files_merged == 0  # recovery may rewrite them
    assert recover(tmp_path).requests == 3  # rewrites the same names, deletes the segment
    report = compact(tmp_path, period="day", now=NOW)
    assert report.files_merged == 1
    frame = read_captures(tmp_path, "m")
    assert sorted(frame["request_id"]) == ["r0", "r0", "r1", "r1", "r2", "r2"]  # two rows each, once


def seal_all(wal: WriteAheadLog) -> list:
    wal.close()
    return wal.seal()


def test_bad_before_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ParamsError, match="--before"):
        parse_before("last tuesday")
    assert main(["captures", "compact", "--dir", str(tmp_path), "--before", "2011-13-45"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--before" in err and "Traceback" not in err
    assert main(["captures", "compact", "--dir", str(tmp_path), "--before", "2011-07-02"]) == 0
    assert "compacted 0 files" in capsys.readouterr().out
