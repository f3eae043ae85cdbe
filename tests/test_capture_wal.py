"""Sync capture mode: the write-ahead log, group commit, exactly-once conversion, recovery, SIGKILL."""
# ruff: noqa: F811  (the imported `registered` fixture is used as an argument)

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.modeling.captures import WAL_DIR, count_rows, models_in, read_captures, read_feedback
from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.capture_wal import (
    CaptureNotDurable,
    WriteAheadLog,
    read_segment,
    recover,
    wait_durable,
)
from helpers.serving.client import ServeClient
from helpers.serving.service import ScoringService
from serve_fixtures import (
    RegisteredModels,
    registered,  # noqa: F401 (fixture)
    start_cli_server,
    stop_process,
    write_serve_params,
)

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC)}


def _record(i: int, model: str = "m") -> CaptureRecord:
    inputs = pd.DataFrame({"hr": [i], "weathersit": ["clear"], "temp": [i / 10]})
    return CaptureRecord.from_frame(f"r{i}", inputs, np.array([float(i)]), model_name=model, model_version="1",
                                    latency_ms=1.0)


def _segments(root: Path) -> list[Path]:
    return sorted((root / WAL_DIR).glob("wal-*.log"))


def _write_log_and_die(root: Path, n: int, *, extra: str = "") -> None:
    """A process that makes ``n`` records durable, then dies without converting its log."""
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np, pandas as pd
        from helpers.serving.capture_records import CaptureRecord, FeedbackRecord
        from helpers.serving.capture_wal import WriteAheadLog
        wal = WriteAheadLog({str(root)!r}).start()
        futures = []
        for i in range({n}):
            frame = pd.DataFrame({{"hr": [i], "weathersit": ["clear"], "temp": [i / 10]}})
            futures.append(wal.submit(CaptureRecord.from_frame(f"r{{i}}", frame, np.array([float(i)]),
                                      model_name="m", model_version="1", latency_ms=1.0)))
        futures.append(wal.submit(FeedbackRecord("m", ["r0", "r1"], [0, 0], [1.5, 2.5])))
        for future in futures:
            future.result()
        {extra}
        os._exit(0)  # no close, no conversion: as if killed
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=ENV, timeout=120)


# --------------------------------------------------------------------------- group commit


def test_group_commit_shares_fsyncs_and_resolves_every_future(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path).start()
    futures: list = []
    lock = threading.Lock()

    def client(first: int) -> None:
        for i in range(first, first + 50):
            future = wal.submit(_record(i))
            with lock:
                futures.append(future)

    threads = [threading.Thread(target=client, args=(k * 50,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for future in futures:
        assert future.result(timeout=30) is None
    stats = wal.stats()
    assert stats["records"] == 400
    assert stats["commits"] < 400  # records waiting during an fsync share the next one
    assert stats["errors"] == 0
    # an acknowledged record is in the log on disk: every id is in the segment's frames
    (segment,) = _segments(tmp_path)
    ids = {i for f in read_segment(segment).frames for i in f.table.column("request_id").to_pylist()}
    assert ids == {f"r{i}" for i in range(400)}
    wal.close()
    assert wal.submit(_record(0)).exception() is not None  # closed: refused, never acknowledged


def test_writer_in_sync_mode_converts_the_log_exactly_once(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path, mode="sync", flush_interval=0.05) as writer:
        for future in [writer.submit_durable(_record(i)) for i in range(30)]:
            wait_durable(future)
        wait_durable(writer.submit_durable(FeedbackRecord("m", ["r3"], [0], [7.0])))
        assert writer.flush()
        assert _segments(tmp_path) == []  # converted and deleted
        stats = writer.stats()
    assert stats["mode"] == "sync" and stats["captured_requests"] == 30 and stats["wal"]["records"] == 31
    frame = read_captures(tmp_path, "m")
    assert sorted(frame["request_id"]) == sorted(f"r{i}" for i in range(30))
    assert read_feedback(tmp_path, "m")["label"].tolist() == [7.0]
    assert models_in(tmp_path) == ["m"]  # the log folder is not a model
    with pytest.raises(CaptureNotDurable):  # a closed writer never acknowledges
        wait_durable(writer.submit_durable(_record(99)))


# --------------------------------------------------------------------------- recovery


def test_a_log_left_by_a_dead_process_is_replayed_once_on_start(tmp_path: Path) -> None:
    _write_log_and_die(tmp_path, 40)
    assert len(_segments(tmp_path)) == 1 and count_rows(tmp_path, "m") == 0
    with CaptureWriter(tmp_path, mode="async") as writer:  # either mode recovers
        assert writer.stats()["recovered"]["requests"] == 40
    frame = read_captures(tmp_path, "m")
    assert sorted(frame["request_id"]) == sorted(f"r{i}" for i in range(40))
    assert frame["request_id"].is_unique
    assert read_feedback(tmp_path, "m").set_index("request_id")["label"].to_dict() == {"r0": 1.5, "r1": 2.5}
    assert _segments(tmp_path) == []
    assert recover(tmp_path).segments == 0  # nothing left: idempotent


def test_converting_again_after_a_kill_before_the_delete_adds_no_duplicate(tmp_path: Path) -> None:
    _write_log_and_die(tmp_path, 25)
    (segment,) = _segments(tmp_path)
    saved = tmp_path / "saved.log"
    shutil.copy(segment, saved)
    assert recover(tmp_path).requests == 25
    shutil.copy(saved, segment)  # the kill came after the Parquet files were written, before the delete
    assert recover(tmp_path).requests == 25
    frame = read_captures(tmp_path, "m")
    assert len(frame) == 25 and frame["request_id"].is_unique
    assert count_rows(tmp_path, "m", "feedback") == 2


def test_a_torn_last_record_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    _write_log_and_die(tmp_path, 10)
    (segment,) = _segments(tmp_path)
    whole = segment.read_bytes()
    frames = read_segment(segment).frames
    assert read_segment(segment).torn_bytes == 0
    first = 12 + struct.unpack_from("<I", whole, 4)[0]  # magic, length, crc32, payload
    torn = whole[: first - 7]
    with open(segment, "ab") as handle:  # one more frame, cut before its end: a write torn by a kill
        handle.write(torn)
    contents = read_segment(segment)
    assert len(contents.frames) == len(frames) and contents.torn_bytes == len(torn)
    done = recover(tmp_path)
    assert done.requests == 10 and done.torn_bytes == len(torn)
    assert len(read_captures(tmp_path, "m")) == 10


def test_a_corrupt_checksum_ends_the_segment(tmp_path: Path) -> None:
    _write_log_and_die(tmp_path, 5)
    (segment,) = _segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # the last frame (the feedback) no longer matches its crc32
    segment.write_bytes(bytes(data))
    done = recover(tmp_path)
    assert done.requests == 5 and done.feedback_rows == 0 and done.torn_bytes > 0


def test_recovery_leaves_the_log_of_a_live_writer_alone(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path, mode="sync", flush_interval=60) as writer:
        wait_durable(writer.submit_durable(_record(1)))
        assert recover(tmp_path).segments == 0  # locked by its writer (this process)
        assert len(_segments(tmp_path)) == 1
    assert read_captures(tmp_path, "m")["request_id"].tolist() == ["r1"]


# --------------------------------------------------------------------------- the service


def test_service_in_sync_mode_answers_after_the_capture_is_on_disk(
    registered: RegisteredModels, tmp_path: Path
) -> None:
    root = tmp_path / "captures"
    writer = CaptureWriter(root, mode="sync", flush_interval=60)  # only the log, no conversion meanwhile
    service = ScoringService(
        registered.uri("1"), tracking_uri=registered.tracking_uri, port=0, capture=writer, alias_poll_interval=0
    )
    with service, ServeClient(service.url) as client:
        ids = [client.predict(registered.rows.iloc[i : i + 2]).request_id for i in range(5)]
        assert client.feedback([ids[0]], [3.0]) == 1
        (segment,) = _segments(root)
        frames = read_segment(segment).frames
        logged = {i for f in frames if f.kind == "captures" for i in f.table.column("request_id").to_pylist()}
        assert logged == set(ids)  # each answer came after its capture was fsynced
        assert [f.kind for f in frames].count("feedback") == 1
        assert service.health()["capture"]["mode"] == "sync"
    frame = read_captures(root, registered.name)
    assert sorted(set(frame["request_id"])) == sorted(ids) and len(frame) == 10
    np.testing.assert_allclose(
        frame.set_index(["request_id", "row"]).loc[(ids[0], 0), "prediction"], registered.expected["1"][0]
    )


@pytest.mark.slow  # starts driftgate serve twice and kills it
def test_sigkill_loses_no_acknowledged_request_in_sync_mode(registered: RegisteredModels, tmp_path: Path) -> None:
    params = write_serve_params(tmp_path, registered, capture_mode="sync", flush_interval=0.3)
    proc, url = start_cli_server(params)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    rows = registered.rows

    def client(k: int) -> None:
        with ServeClient(url, timeout=10) as session:
            i = 0
            while not stop.is_set():
                request_id = f"c{k}-{i}"
                try:
                    session.predict(rows.iloc[[i % len(rows)]], request_id=request_id)
                except Exception:
                    return  # the server died: this request was not acknowledged
                with lock:
                    acknowledged.append(request_id)
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        proc.wait(timeout=30)
    assert len(acknowledged) >= 300
    proc, _ = start_cli_server(params)  # starting on the capture folder replays the dead log
    code, _, err = stop_process(proc)
    assert code == 0, err
    frame = read_captures(tmp_path / "outputs" / "captures", registered.name)
    captured = frame["request_id"].tolist()
    assert set(acknowledged) <= set(captured)  # nothing acknowledged is lost
    assert frame["request_id"].is_unique  # nothing counted twice
