"""Replay: a data window sent to a live service as traffic and its labels as feedback."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core.config import load_params
from helpers.core.errors import DataError, ServeError
from helpers.modeling.captures import read_captures, read_labeled_captures
from helpers.modeling.data import window_rows
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.replay import replay
from helpers.serving.service import ScoringService
from serve_fixtures import (
    FEATURES,
    TARGET,
    RegisteredModels,
    cli_command,
    write_serve_params,
)

TOKEN = "replay-token"


@pytest.fixture
def live(registered: RegisteredModels, tmp_path: Path) -> Iterator[tuple[ScoringService, Path]]:
    """Champion v1 with capture under tmp_path/captures and a bearer token."""
    root = tmp_path / "captures"
    svc = ScoringService(
        registered.uri(),
        tracking_uri=registered.tracking_uri,
        port=0,
        capture=CaptureWriter(root, flush_interval=0.1),
        token=TOKEN,
        alias_poll_interval=0,
    )
    with svc:
        yield svc, root


def test_replay_sends_rows_and_labels(live: tuple[ScoringService, Path], registered: RegisteredModels) -> None:
    svc, root = live
    rows = registered.rows.head(30)
    labels = pd.Series(np.arange(30, dtype=float))
    summary = replay(svc.url, rows, labels, token=TOKEN, feedback_every=7)
    assert summary["requests"] == 30 and summary["rows"] == 30 and summary["feedback_rows"] == 30
    assert summary["errors"] == 0
    svc.stop()
    labelled = read_labeled_captures(root, registered.name).sort_values("timestamp", kind="stable")
    assert labelled["label"].tolist() == labels.tolist()
    np.testing.assert_allclose(labelled["prediction"], registered.expected["1"][:30])


def test_replay_in_batches(live: tuple[ScoringService, Path], registered: RegisteredModels) -> None:
    svc, root = live
    rows = registered.rows.head(10)
    summary = replay(svc.url, rows, list(range(10)), token=TOKEN, batch_size=4, rate=1000)
    assert summary["requests"] == 3 and summary["rows"] == 10 and summary["feedback_rows"] == 10
    svc.stop()
    labelled = read_labeled_captures(root, registered.name)
    assert sorted(labelled["label"].tolist()) == list(range(10))
    assert sorted(labelled.groupby("request_id").size().tolist()) == [2, 4, 4]


def test_replay_counts_refused_requests(live: tuple[ScoringService, Path], registered: RegisteredModels) -> None:
    svc, _ = live
    rows = registered.rows.head(4).astype({"hr": str})  # wrong type: every request is refused
    summary = replay(svc.url, rows, None, token=TOKEN)
    assert summary["errors"] == 4 and summary["requests"] == 0
    assert "'hr' expects long" in summary["first_error"]


def test_replay_without_a_service_is_a_serve_error(registered: RegisteredModels) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nobody listens once closed
    with pytest.raises(ServeError, match="cannot reach the scoring service"):
        replay(f"http://127.0.0.1:{port}", registered.rows.head(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch size"),
        ({"rate": 0}, "rate must be positive"),
        ({"labels": [1.0]}, "1 labels for 2 rows"),
    ],
)
def test_replay_argument_checks(kwargs: dict, message: str, registered: RegisteredModels) -> None:
    labels = kwargs.pop("labels", None)
    with pytest.raises(ServeError, match=message):
        replay("http://127.0.0.1:9", registered.rows.head(2), labels, **kwargs)


# --------------------------------------------------------------------------- windows


def test_window_rows_builds_time_from_params(registered: RegisteredModels, tmp_path: Path) -> None:
    params = load_params(write_serve_params(tmp_path, registered))
    rows = window_rows(params, params.data.path, "2011-07-01", "2011-07-03")
    assert len(rows) == 48  # two full days of hours
    assert rows["timestamp"].min() == pd.Timestamp("2011-07-01 00:00")
    assert rows["timestamp"].max() < pd.Timestamp("2011-07-03")
    assert set(FEATURES + [TARGET]) <= set(rows.columns)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("first of July", "2011-07-02", "expected a date"),
        ("2011-07-02", "2011-07-01", "must be before"),
        ("2013-01-01", "2013-02-01", "no rows from 2013-01-01"),
    ],
)
def test_window_rows_errors(start: str, end: str, message: str, registered: RegisteredModels, tmp_path: Path) -> None:
    params = load_params(write_serve_params(tmp_path, registered))
    with pytest.raises(DataError, match=message):
        window_rows(params, params.data.path, start, end)


def test_window_rows_missing_columns(registered: RegisteredModels, tmp_path: Path) -> None:
    params = load_params(write_serve_params(tmp_path, registered))
    data = tmp_path / "partial.csv"
    pd.read_csv(params.data.path).drop(columns=["temp"]).to_csv(data, index=False)
    with pytest.raises(DataError, match="temp"):
        window_rows(params, str(data), "2011-07-01", "2011-07-02")


# --------------------------------------------------------------------------- the CLI


@pytest.mark.slow  # starts another driftgate process
def test_cli_replay_one_day(live: tuple[ScoringService, Path], registered: RegisteredModels, tmp_path: Path) -> None:
    svc, root = live
    params = write_serve_params(tmp_path, registered)
    done = subprocess.run(
        cli_command("replay", "--params", str(params), "--from", "2011-07-01", "--to", "2011-07-02", "--url", svc.url),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DRIFTGATE_TOKEN": TOKEN},
    )
    assert done.returncode == 0, done.stderr
    assert "24 requests (24 rows)" in done.stdout and "24 labels sent" in done.stdout
    svc.stop()
    captured = read_captures(root, registered.name)
    assert len(captured) == 24 and sorted(captured["hr"]) == list(range(24))
    assert len(read_labeled_captures(root, registered.name)) == 24


@pytest.mark.slow  # starts another driftgate process
def test_cli_replay_mistakes_print_one_line(registered: RegisteredModels, tmp_path: Path) -> None:
    params = write_serve_params(tmp_path, registered)
    done = subprocess.run(
        cli_command("replay", "--params", str(params), "--from", "2011-07-02", "--to", "2011-07-01"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["driftgate: error: --from 2011-07-02 must be before --to 2011-07-01"]
