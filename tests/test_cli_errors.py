"""No traceback from a user mistake, ever: every command meets hostile input with one line.

A user mistake (bad params, bad data) prints one ``driftgate: error:`` line naming the file, the
key or the column and exits 2; an internal error prints one line naming the file that holds its
traceback and exits 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.cli import common
from helpers.modeling.checks import stray_text
from support import DATA, ROOT, clean_env, driftgate_cmd, one_error_line, run_cli, write_params

BIKES = pd.read_csv(DATA)
NO_ROWS = {"start": "2015-01-01", "end": "2015-02-01"}


def _csv(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda path: frame.to_csv(path, index=False)


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _truncated_parquet(path: Path) -> None:
    BIKES.to_parquet(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def _stray_text(path: Path) -> None:
    frame = BIKES.astype({"temp": object})
    frame.loc[[3, 40], "temp"] = "?"
    frame.to_csv(path, index=False)


def _one_class(path: Path) -> None:
    BIKES.assign(busy=True).to_csv(path, index=False)


# name: (file name, how to write it (None: leave it absent), params changes, fragments of the line)
HOSTILE: dict[str, tuple[str, Callable[[Path], None] | None, dict, list[str]]] = {
    "missing file": ("nothing.csv", None, {}, ["data.path", "nothing.csv", "not found"]),
    "folder": ("folder.csv", lambda p: p.mkdir(), {}, ["data.path", "folder.csv", "is a folder"]),
    "empty csv": ("empty.csv", _bytes(b""), {}, ["data.path", "empty.csv"]),
    "header only": ("header.csv", _bytes(",".join(BIKES.columns).encode() + b"\n"), {},
                    ["data.path", "header.csv", "no rows"]),
    "no target column": ("no_target.csv", _csv(BIKES.drop(columns="bikers")), {},
                         ["data.target", "'bikers'", "no_target.csv"]),
    "all-missing feature": ("nan.csv", _csv(BIKES.assign(temp=np.nan)), {},
                            ["data.features", "'temp'", "nan.csv", "no values"]),
    "text feature with a range": ("text.csv", _csv(BIKES.assign(temp="warm")), {},
                                  ["validation.ranges.temp", "'warm'", "text.csv"]),
    "numbers with stray text": ("stray.csv", _stray_text, {},
                                ["data.features", "'temp'", "'?'", "data row 4", "2 cell(s)", "na_values"]),
    "window without rows": ("bikes.csv", _csv(BIKES), {"windows.current": NO_ROWS},
                            ["windows.current", "no rows between 2015-01-01"]),
    "binary file named .csv": ("binary.csv", _bytes(np.random.default_rng(0).bytes(4000)), {},
                               ["data.path", "binary.csv", "data.read.encoding"]),
    "truncated parquet": ("cut.parquet", _truncated_parquet, {}, ["data.path", "cut.parquet", "cannot be read"]),
    "text target for regression": ("text_target.csv", _csv(BIKES.assign(bikers="many")), {},
                                   ["data.target", "regression needs numbers", "'many'"]),
    "no labels in a window": ("unlabelled.csv", _csv(BIKES.assign(bikers=BIKES.bikers.where(BIKES.day > 121))),
                              {}, ["data.target", "windows.baseline", "none of the"]),
    "one class": ("one_class.csv", _one_class,
                  {"data.target": "busy", "data.task": "classification", "validation.target_min": None,
                   "model.type": "HistGradientBoostingClassifier", "gates.metrics": {},
                   "gates.champion.metric": "accuracy", "monitor.metric": "accuracy"},
                  ["data.target", "one class", "True"]),
}


def _hostile(folder: Path, case: str) -> tuple[Path, Path, list[str]]:
    name, write, changes, fragments = HOSTILE[case]
    data = folder / name
    if write is not None:
        write(data)
    return write_params(folder, **{"data.path": str(data), **changes}), data, fragments


@pytest.mark.parametrize("case", list(HOSTILE))
def test_validate_meets_hostile_data_with_one_line(tmp_path: Path, case: str) -> None:
    params, _, fragments = _hostile(tmp_path, case)
    one_error_line(run_cli("validate", "--params", str(params)), 2, str(params), *fragments)


@pytest.mark.parametrize("case", ["header only", "all-missing feature", "window without rows", "truncated parquet"])
def test_run_stops_before_any_notebook(tmp_path: Path, case: str) -> None:
    params, _, fragments = _hostile(tmp_path, case)
    one_error_line(run_cli("run", "--params", str(params)), 2, *fragments)
    assert not (tmp_path / "outputs" / "runs").exists()


@pytest.mark.parametrize("case", ["missing file", "folder", "empty csv", "header only", "binary file named .csv",
                                  "truncated parquet"])
@pytest.mark.parametrize("side", ["--baseline", "--target"])
def test_drift_meets_hostile_tables_with_one_line(tmp_path: Path, case: str, side: str) -> None:
    _, data, _ = _hostile(tmp_path, case)
    tables = {"--baseline": str(DATA), "--target": str(DATA), side: str(data)}
    one_error_line(run_cli("drift", *[x for pair in tables.items() for x in pair]), 2, data.name)


def test_drift_tables_sharing_no_column(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    pd.DataFrame({"zz": [1, 2, 3]}).to_csv(other, index=False)
    one_error_line(run_cli("drift", "--baseline", str(other), "--target", str(DATA)), 2,
                   "share no column", "other.csv", "the baseline has zz")


def test_drift_compares_odd_but_valid_columns(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    BIKES.assign(temp=np.nan, hum="humid").to_csv(odd, index=False)
    done = run_cli("drift", "--baseline", str(DATA), "--target", str(odd), "--features", "temp,hum,hr",
                   "-p", "drift.coefficient_sample=0")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_drift_report_into_a_folder_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "report.html"
    folder.mkdir()
    one_error_line(run_cli("drift", "--baseline", str(DATA), "--target", str(DATA), "--html", str(folder),
                           "-p", "drift.coefficient_sample=0"), 2, str(folder), "is a folder")


@pytest.mark.parametrize("case", ["missing file", "folder", "header only", "truncated parquet"])
def test_replay_meets_hostile_data_with_one_line(tmp_path: Path, case: str) -> None:
    _, data, _ = _hostile(tmp_path, case)
    done = run_cli("replay", "--params", str(write_params(tmp_path)), "--data", str(data),
                   "--from", "2011-07-01", "--to", "2011-07-02", "--url", "http://127.0.0.1:9")
    one_error_line(done, 2, data.name)


def test_replay_window_without_rows(tmp_path: Path) -> None:
    done = run_cli("replay", "--params", str(write_params(tmp_path)), "--from", "2019-07-01", "--to", "2019-07-02",
                   "--url", "http://127.0.0.1:9")
    one_error_line(done, 2, DATA.name, "no rows from 2019-07-01")


def test_outputs_folder_that_is_a_file(tmp_path: Path) -> None:
    params = write_params(tmp_path)
    (tmp_path / "outputs").write_text("not a folder")
    one_error_line(run_cli("index", "--params", str(params)), 2, str(tmp_path / "outputs"), "a file is in the way")


@pytest.mark.parametrize("command", [["validate"], ["index"], ["status"], ["deploy"], ["monitor"], ["serve"],
                                     ["approve", "3"], ["rollback"], ["run"]])
def test_every_command_names_a_params_folder(tmp_path: Path, command: list[str]) -> None:
    one_error_line(run_cli(*command, "--params", str(tmp_path)), 2, str(tmp_path), "params file not found")


# --------------------------------------------------------------------------- internal errors


def _boom(*_: object, **__: object) -> None:
    raise RuntimeError("boom\nsecond line")


def _log_of(line: str) -> Path:
    return Path(line.split("the full traceback is in ")[1].split(" (rerun")[0])


def test_internal_error_writes_its_traceback_under_outputs_logs(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("helpers.cli.validate.check_model_params", _boom)
    done = run_cli("validate", "--params", str(write_params(tmp_path)))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("driftgate: internal error: RuntimeError: boom second line; ")
    assert "--debug" in lines[0]
    log = _log_of(lines[0])
    assert log.parent == tmp_path / "outputs" / "logs" and log.name.startswith("driftgate-validate-")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text
    assert "_boom" in text and "command=" in text


def test_internal_error_without_params_goes_to_the_temp_folder(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("helpers.cli.drift.compare", _boom)
    done = run_cli("drift", "--baseline", str(DATA), "--target", str(DATA))
    assert done.returncode == 1, done.stderr
    log = _log_of(done.stderr.strip())
    assert log.parent == tmp_path and "RuntimeError: boom" in log.read_text()


def test_internal_error_with_broken_params_goes_to_the_temp_folder(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("helpers.cli.validate.load_params", _boom)  # the loader itself is broken
    monkeypatch.setattr("helpers.cli.common.load_params", _boom)
    done = run_cli("validate", "--params", str(write_params(tmp_path)))
    assert done.returncode == 1
    assert _log_of(done.stderr.strip()).parent == tmp_path / "tmp"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    monkeypatch.setattr("helpers.cli.validate.check_model_params", _boom)
    args = ["validate", "--params", str(write_params(tmp_path))]
    done = run_cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "RuntimeError: boom" in done.stderr
    assert not (tmp_path / "outputs" / "logs").exists()


def test_debug_shows_where_a_user_error_was_raised(tmp_path: Path) -> None:
    params, _, _ = _hostile(tmp_path, "header only")
    done = run_cli("--debug", "validate", "--params", str(params))
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr and "checks.py" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("driftgate: error: ")


def test_os_error_without_a_path_is_internal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise ConnectionResetError("peer went away")

    monkeypatch.setattr("helpers.cli.validate.check_model_params", refuse)
    done = run_cli("validate", "--params", str(write_params(tmp_path)))
    assert done.returncode == 1
    assert done.stderr.startswith("driftgate: internal error: ConnectionResetError: peer went away; ")


def test_one_line_folds_line_breaks() -> None:
    assert common.one_line("  a\n  b\r\n\nc ") == "a b c"
    assert common.exception_name(pd.errors.EmptyDataError()) == "pandas.errors.EmptyDataError"


def test_stray_text_finds_the_first_text_cell_of_a_numeric_column() -> None:
    assert stray_text(pd.Series(["1.5", "2", "warm", None, "3", "4"], index=[9, 8, 7, 6, 5, 4])) == (2, "warm")
    assert stray_text(pd.Series(["a", "b", "3"])) is None  # a text column with a number in it
    assert stray_text(pd.Series([1.0, np.nan])) is None
    assert stray_text(pd.Series(["1", "2"])) is None


# --------------------------------------------------------------------------- real processes


def _driftgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*driftgate_cmd(), *args], capture_output=True, text=True, timeout=300,
                          env=clean_env(), cwd=ROOT)


@pytest.mark.slow  # starts another driftgate process
def test_hostile_data_in_a_real_process(tmp_path: Path) -> None:
    params, _, fragments = _hostile(tmp_path, "binary file named .csv")
    one_error_line(_driftgate("validate", "--params", str(params)), 2, *fragments)


@pytest.mark.slow  # starts another driftgate process
def test_internal_error_in_a_real_process(tmp_path: Path) -> None:
    params = write_params(tmp_path)
    script = ("import sys, helpers.cli.main as m, helpers.cli.validate as v\n"
              "def boom(*a, **k): raise KeyError('no such thing')\n"
              "v.check_model_params = boom\n"
              "sys.exit(m.main(sys.argv[1:]))\n")
    command = [sys.executable, "-c", script, "validate", "--params", str(params)]
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "KeyError: 'no such thing'" in done.stderr
    assert "Traceback" in _log_of(done.stderr.strip()).read_text()
    debug = subprocess.run([*command[:3], "--debug", *command[3:]], capture_output=True, text=True,
                           timeout=300, env=env)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_a_few_missing_labels_are_not_an_error(tmp_path: Path) -> None:
    """Rows without a label are left out of training and evaluation (and counted), not refused."""
    data = tmp_path / "some_unlabelled.csv"
    _csv(BIKES.assign(bikers=BIKES.bikers.where(BIKES.index % 50 != 5)))(data)
    done = run_cli("validate", "--params", str(write_params(tmp_path, **{"data.path": str(data)})))
    assert done.returncode == 0, done.stderr

