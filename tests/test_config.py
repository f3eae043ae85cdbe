"""The parameter model: loading, overrides, and one clear line for every mistake."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.core.config import load_params
from helpers.core.errors import ParamsError
from helpers.modeling.data import check_params_against_data
from support import ROOT, driftgate_cmd, write_params


def test_default_params_load_with_paths_resolved_against_the_file() -> None:
    params = load_params(ROOT / "params" / "default.yaml")
    assert Path(params.data.path) == ROOT / "data" / "bike_sharing_2011.csv"
    assert params.outputs_dir == ROOT / "outputs"
    assert params.model.hyperparameters["max_iter"] == 300
    assert "casual" not in params.data.features and "registered" not in params.data.features
    assert params.tracking_uri.startswith("sqlite:///") or params.tracking_uri


def test_overrides_are_parsed_as_yaml_values(params_file: Path) -> None:
    params = load_params(params_file, ["split.test_size=0.3", "model.hyperparameters.max_depth=4",
                                       "data.features=[temp, hum]"])
    assert params.split.test_size == 0.3
    assert params.model.hyperparameters["max_depth"] == 4
    assert params.data.features == ["temp", "hum"]


def test_params_hash_changes_with_any_value(params_file: Path) -> None:
    assert load_params(params_file).params_hash == load_params(params_file).params_hash
    assert load_params(params_file).params_hash != load_params(params_file, ["split.seed=1"]).params_hash


def test_tracking_uri_comes_from_the_environment_when_params_leave_it_null(
    params_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert load_params(params_file).tracking_uri == "http://127.0.0.1:5999"
    assert load_params(params_file, ["mlflow.tracking_uri=sqlite:///x.db"]).tracking_uri == "sqlite:///x.db"


BAD_CASES = [
    ({"split.tset_size": 0.2}, "split.tset_size: unknown key; did you mean 'test_size'?"),
    ({"modle": {}}, "modle: unknown key; did you mean 'model'?"),
    ({"split.test_size": "big"}, "split.test_size: expected a number, got str 'big'"),
    ({"model.hyperparameters": [1]}, "model.hyperparameters: expected a mapping"),
    ({"split.method": "shuffle"}, "split.method: str 'shuffle' is not one of 'time', 'random'"),
    ({"data.path": "/nonexistent/file.csv"}, "data.path: file not found: /nonexistent/file.csv"),
    ({"data.features": ["temp", "rain_mm"]}, "data.features: column 'rain_mm' not in"),
    ({"data.target": "riders"}, "data.target: column 'riders' not in"),
    ({"windows.current": {"start": "2012-01-01", "end": "2012-02-01"}},
     "windows.current: no rows between 2012-01-01 and 2012-02-01; the data covers 2011-01-01 to 2011-12-31"),
    ({"windows.baseline.start": "2011-13-01"}, "windows.baseline.start: expected a date like 2011-01-31"),
    ({"data.features": ["temp", "casual"]}, "data.features: casual listed in data.forbidden_features"),
    ({"gates.metrics": {"rsme": {"max": 1}}},
     "gates.metrics.rsme: unknown metric for a regression task; did you mean 'rmse'?"),
    ({"model.type": "HistGradientBoostingRegresor"},
     "model.type: 'HistGradientBoostingRegresor' is not a scikit-learn"),
    ({"model.hyperparameters": {"max_iters": 3}},
     "model.hyperparameters.max_iters: not a parameter of HistGradientBoostingRegressor; did you mean 'max_iter'?"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_CASES, ids=[next(iter(c)) for c, _ in BAD_CASES])
def test_bad_params_give_one_line_naming_file_and_key(tmp_path: Path, changes: dict, message: str) -> None:
    path = write_params(tmp_path, **changes)
    done = subprocess.run([*driftgate_cmd(), "run", "--params", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"driftgate: error: {path}: ")
    assert message in lines[0]
    assert not (tmp_path / "outputs").exists(), "nothing may be written for bad params"


def test_bad_override_is_reported_like_a_bad_file(params_file: Path) -> None:
    with pytest.raises(ParamsError, match=r"params.yaml: split.test_size: must lie between 0 and 1"):
        load_params(params_file, ["split.test_size=1.5"])
    with pytest.raises(ParamsError, match="write overrides as key.path=value"):
        load_params(params_file, ["split.test_size"])


def test_missing_params_file_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_params(broken)


def test_check_against_data_returns_the_frame_with_time(params_file: Path) -> None:
    frame = check_params_against_data(load_params(params_file))
    assert len(frame) == 8645 and "timestamp" in frame
