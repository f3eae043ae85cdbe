"""The parameter model: loading, overrides, and one clear line for every mistake."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from helpers.core import config
from helpers.core.config import load_params, schema, validation
from helpers.core.errors import ParamsError
from helpers.modeling.data import check_params_against_data
from support import ROOT, clean_env, driftgate_cmd, run_cli, write_params


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
    done = run_cli("run", "--params", str(path))
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


# --------------------------------------------------------------------------- declared ranges

RANGE_CASES = [  # (override, message after "<file>: "); each is also rejected by params/schema.json
    ("serve.port=70000", "serve.port: must lie between 0 and 65535, got 70000"),
    ("serve.port=-1", "serve.port: must lie between 0 and 65535, got -1"),
    ("alerts.smtp_port=0", "alerts.smtp_port: must lie between 1 and 65535, got 0"),
    ("alerts.smtp_port=65536", "alerts.smtp_port: must lie between 1 and 65535, got 65536"),
    ("drift.drift_share=1.5", "drift.drift_share: must lie between 0 and 1, got 1.5"),
    ("drift.coefficient_threshold=-0.1", "drift.coefficient_threshold: must lie between 0 and 1, got -0.1"),
    ("drift.thresholds.ks=2", "drift.thresholds.ks: must lie between 0 and 1, got 2"),
    ("drift.thresholds.chi2=-1", "drift.thresholds.chi2: must lie between 0 and 1, got -1"),
    ("drift.thresholds.psi=0", "drift.thresholds.psi: must be positive, got 0"),
    ("drift.thresholds.wasserstein=-0.1", "drift.thresholds.wasserstein: must be positive, got -0.1"),
    ("drift.bins=0", "drift.bins: must be at least 1, got 0"),
    ("drift.small_sample=-1", "drift.small_sample: must be at least 0, got -1"),
    ("drift.categorical_max_unique=-1", "drift.categorical_max_unique: must be at least 0, got -1"),
    ("drift.coefficient_sample=-1", "drift.coefficient_sample: must be at least 0, got -1"),
    ("drift.seed=-1", "drift.seed: must lie between 0 and 4294967295, got -1"),
    ("drift.column_types={hr: colour}", "drift.column_types.hr: str 'colour' is not one of 'numeric', 'categorical'"),
    ("drift.per_feature={hum: t-test}", "drift.per_feature.hum: str 't-test' is not one of 'ks', 'chi2'"),
    ("validation.max_missing_share=1.01", "validation.max_missing_share: must lie between 0 and 1, got 1.01"),
    ("validation.max_duplicate_share=-0.5", "validation.max_duplicate_share: must lie between 0 and 1, got -0.5"),
    ("validation.min_rows=-1", "validation.min_rows: must be at least 0, got -1"),
    ("validation.ranges={hr: [1]}", "validation.ranges.hr: expected 2 values, got 1"),
    ("split.test_size=0", "split.test_size: must lie between 0 and 1 (exclusive), got 0"),
    ("split.test_size=1", "split.test_size: must lie between 0 and 1 (exclusive), got 1"),
    ("split.seed=4294967296", "split.seed: must lie between 0 and 4294967295, got 4294967296"),
    ("monitor.retrain_test_share=1", "monitor.retrain_test_share: must lie between 0 and 1 (exclusive), got 1"),
    ("monitor.max_degradation=-1", "monitor.max_degradation: must be at least 0, got -1"),
    ("monitor.min_rows=-5", "monitor.min_rows: must be at least 0, got -5"),
    ("gates.lock_timeout=-1", "gates.lock_timeout: must be at least 0, got -1"),
    ("gates.lock_stale_after=0", "gates.lock_stale_after: must be positive, got 0"),
    ("gates.smoke_tolerance=-1.0e-9", "gates.smoke_tolerance: must be at least 0, got -1e-09"),
    ("gates.champion.min_improvement=-1", "gates.champion.min_improvement: must be at least 0, got -1"),
    ("gates.champion.captured_days=0", "gates.champion.captured_days: must be positive, got 0"),
    ("gates.champion.min_captured_rows=0", "gates.champion.min_captured_rows: must be at least 1, got 0"),
    ("alerts.timeout=0", "alerts.timeout: must be positive, got 0"),
    ("alerts.webhook_url=ftp://host/x", "alerts.webhook_url: 'ftp://host/x' is not an http:// or https:// URL"),
    ("run.timeout=0", "run.timeout: must be at least 1, got 0"),
    ("run.threads=0", "run.threads: must be at least 1, got 0"),
    ("serve.flush_interval=0", "serve.flush_interval: must be positive, got 0"),
    ("serve.alias_poll_interval=-1", "serve.alias_poll_interval: must be at least 0, got -1"),
    ("serve.max_batch_delay=1.5", "serve.max_batch_delay: must lie between 0 and 1, got 1.5"),
    ("serve.max_batch_rows=-1", "serve.max_batch_rows: must be at least 0, got -1"),
    ("serve.max_body_bytes=0", "serve.max_body_bytes: must be at least 1, got 0"),
    ("serve.max_pending_rows=0", "serve.max_pending_rows: must be at least 1, got 0"),
    ("serve.request_timeout=0", "serve.request_timeout: must be positive, got 0"),
    ("compute.scheduler=spark",
     "compute.scheduler: 'spark' is not pandas, local or a scheduler address like tcp://host:8786"),
    ("compute.scheduler=http://host:8786", "compute.scheduler: 'http://host:8786' is not pandas, local"),
    ("compute.n_workers=0", "compute.n_workers: must be at least 1, got 0"),
    ("compute.threads_per_worker=0", "compute.threads_per_worker: must be at least 1, got 0"),
    ("compute.partition_rows=0", "compute.partition_rows: must be at least 1, got 0"),
    ("compute.fine_bins=0", "compute.fine_bins: must be at least 1, got 0"),
    ("compute.memory_limit=lots", "compute.memory_limit: 'lots' is not auto or a size like 2GB"),
    ("data.time.origin=someday", "data.time.origin: expected a date like 2011-01-31, got str 'someday'"),
    ("gates.champion.metric=auc", "gates.champion.metric: unknown metric 'auc'"),
    ("gates.current_metrics={auc: {min: 0.5}}", "gates.current_metrics.auc: unknown metric for a regression task"),
]

CROSS_KEY_CASES = [  # need other keys (or a calendar) to decide: load_params only
    ("validation.ranges={hr: [5, 1]}", "validation.ranges.hr: low 5 is above high 1"),
    ("gates.metrics={r2: {min: 0.9, max: 0.5}}", "gates.metrics.r2: min 0.9 is above max 0.5"),
    ("monitor.metric=accuracy", "monitor.metric: unknown metric 'accuracy'; valid keys: mae, r2, rmse"),
    ("gates.champion.metric=f1", "gates.champion.metric: unknown metric 'f1'"),
    ("data.time={}", "data.time: give either column, or origin and day_column"),
    ("windows.baseline.end=2011-02-30", "windows.baseline.end: expected a date like 2011-01-31, got str '2011-02-30'"),
    ("windows.current={start: '2011-08-01', end: '2011-07-01'}",
     "windows.current: start 2011-08-01 must be before end 2011-07-01"),
]

BOUNDARY_CASES = [  # each list of overrides is valid, for load_params and for params/schema.json
    ["serve.port=0"], ["serve.port=65535"], ["alerts.smtp_port=1"], ["alerts.smtp_port=65535"],
    ["drift.drift_share=0"], ["drift.drift_share=1"], ["drift.coefficient_threshold=0"],
    ["drift.coefficient_threshold=1"], ["drift.thresholds={ks: 0, chi2: 1, psi: 1.0e-9}"],
    ["drift.bins=1", "drift.small_sample=0", "drift.categorical_max_unique=0", "drift.coefficient_sample=0"],
    ["drift.seed=0", "split.seed=4294967295"],
    ["drift.column_types={hr: categorical, instant: exclude, day: id, temp: numeric, dteday: datetime}"],
    ["drift.per_feature={hum: psi, season: chi2, temp: energy, hr: euclidean}"],
    ["validation.max_missing_share=1", "validation.max_duplicate_share=0", "validation.min_rows=0"],
    ["validation.ranges={hr: [3, 3]}"], ["gates.metrics={r2: {min: 0.5, max: 0.5}}"],
    ["split.test_size=0.01"], ["split.test_size=0.99"],
    ["monitor.retrain_test_share=0.01"], ["monitor.retrain_test_share=0.99"],
    ["monitor.max_degradation=0", "monitor.min_rows=0"],
    ["gates.lock_timeout=0", "gates.smoke_tolerance=0", "gates.champion.min_improvement=0",
     "gates.champion.min_captured_rows=1", "gates.champion.captured_days=0.01"],
    ["alerts.webhook_url=https://hooks.example.com/x", "alerts.timeout=0.1"],
    ["run.timeout=1", "run.threads=1"],
    ["serve.alias_poll_interval=0", "serve.max_batch_delay=0", "serve.max_batch_rows=0",
     "serve.max_body_bytes=1", "serve.max_pending_rows=1", "serve.flush_interval=0.001"],
    ["serve.max_batch_delay=1"],
    ["compute.scheduler=local"], ["compute.scheduler=pandas"], ["compute.scheduler=tcp://127.0.0.1:8786"],
    ["compute.scheduler=tls://scheduler.example.com:8786"], ["compute.scheduler=inproc://10.0.0.1/1234/1"],
    ["compute.n_workers=1", "compute.threads_per_worker=1", "compute.partition_rows=1", "compute.fine_bins=1"],
    ["compute.memory_limit=auto"], ["compute.memory_limit=512MiB"], ["compute.memory_limit=4 GB"],
    ["compute.memory_limit=1.5GB"],
    ["data.task=classification", "monitor.metric=f1", "gates.champion.metric=accuracy",
     "gates.metrics={roc_auc: {min: 0.7}}", "gates.current_metrics={accuracy: {min: 0.5}}"],
]


def _one_line_error(params_file: Path, overrides: list[str]) -> str:
    with pytest.raises(ParamsError) as caught:
        load_params(params_file, overrides)
    text = str(caught.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(("override", "message"), RANGE_CASES + CROSS_KEY_CASES,
                         ids=[o for o, _ in RANGE_CASES + CROSS_KEY_CASES])
def test_every_declared_constraint_rejects_a_bad_value_in_one_line(params_file: Path, override: str,
                                                                   message: str) -> None:
    text = _one_line_error(params_file, [override])
    assert text.startswith(f"{params_file}: {message}"), text


@pytest.mark.parametrize("overrides", BOUNDARY_CASES, ids=[" ".join(o) for o in BOUNDARY_CASES])
def test_boundary_values_are_accepted(params_file: Path, overrides: list[str]) -> None:
    load_params(params_file, overrides)
    assert _schema_errors(_raw_with(overrides)) == []


def test_the_data_time_may_be_a_column_instead_of_origin_and_day(params_file: Path) -> None:
    assert load_params(params_file, ["data.time={column: dteday}"]).data.time.column == "dteday"


def test_section_defaults_satisfy_their_own_constraints() -> None:
    section_types = [getattr(config, name) for name in config.__all__ if name.endswith(("Params", "Gate"))]
    section_types.append(config.DriftThresholds)
    for cls in section_types:
        for name, tp in schema.section_fields(cls).items():
            spec = next(f for f in dataclasses.fields(cls) if f.name == name)
            if spec.default is not dataclasses.MISSING and spec.default != "":
                validation.check_constraints(schema.split_annotated(tp)[1], spec.default, "defaults",
                                             f"{cls.__name__}.{name}")


def test_an_impossible_date_is_a_one_line_error_in_a_file_and_in_an_override(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("windows:\n  current: {start: 2011-13-01, end: 2011-14-01}\n")
    with pytest.raises(ParamsError, match=r"bad.yaml: not valid YAML \(ValueError: month must be in 1..12\)"):
        load_params(bad)


FIVE_BAD_OVERRIDES = [
    ("serve.port=70000", "serve.port: must lie between 0 and 65535"),
    ("compute.scheduler=spark", "compute.scheduler: 'spark' is not pandas, local"),
    ("drift.column_types={hr: colour}", "drift.column_types.hr: str 'colour' is not one of"),
    ("monitor.max_degradation=-1", "monitor.max_degradation: must be at least 0"),
    ("drift.drift_share=1.5", "drift.drift_share: must lie between 0 and 1"),
]


@pytest.mark.parametrize(("override", "message"), FIVE_BAD_OVERRIDES, ids=[o for o, _ in FIVE_BAD_OVERRIDES])
def test_driftgate_validate_rejects_bad_overrides_with_exit_code_2(override: str, message: str) -> None:
    done = run_cli("validate", "--params", "params/ci.yaml", "-p", override, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"driftgate: error: params/ci.yaml: {message}"), lines[0]


@pytest.mark.slow  # starts another driftgate process
def test_the_installed_command_exits_2_with_one_line_for_a_bad_override() -> None:
    env = {**clean_env(), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([*driftgate_cmd(), "validate", "--params", "params/ci.yaml", "-p", "serve.port=70000"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["driftgate: error: params/ci.yaml: serve.port: must lie between 0 and 65535, "
                                        "got 70000"]


# --------------------------------------------------------------------------- JSON Schema for editors

SCHEMA_FILE = ROOT / "params" / "schema.json"
PARAMS_FILES = sorted((ROOT / "params").glob("*.yaml"))


def _raw_with(overrides: list[str]) -> dict:
    raw = yaml.safe_load((ROOT / "params" / "ci.yaml").read_text())
    for item in overrides:
        config.apply_override(raw, item, where="ci.yaml")
    return raw


def _schema_errors(raw: dict) -> list[str]:
    document = json.loads(json.dumps(raw, default=str))  # YAML dates as the text an editor sees
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    return [error.message for error in validator.iter_errors(document)]


def test_committed_schema_json_is_generated_from_the_schema() -> None:
    assert SCHEMA_FILE.read_text() == config.params_json_schema_text(), (
        "params/schema.json is stale; regenerate it with PYTHONPATH=src python -c "
        "'from helpers.core.config import params_json_schema_text as t; print(t(), end=\"\")' > params/schema.json"
    )
    jsonschema.Draft202012Validator.check_schema(config.params_json_schema())


@pytest.mark.parametrize("path", PARAMS_FILES, ids=[p.name for p in PARAMS_FILES])
def test_every_params_file_names_and_fits_the_schema(path: Path) -> None:
    assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=schema.json"
    assert _schema_errors(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize(("override", "message"), RANGE_CASES, ids=[o for o, _ in RANGE_CASES])
def test_the_json_schema_rejects_what_load_params_rejects(override: str, message: str) -> None:
    assert _schema_errors(_raw_with([override])), f"params/schema.json accepts {override}"


def test_a_window_with_an_offset_on_one_bound_only_is_one_line(params_file: Path) -> None:
    with pytest.raises(ParamsError, match=r"windows.current: give both start and end a UTC offset, or neither"):
        load_params(params_file, ["windows.current.start=2011-07-01T00:00:00+02:00",
                                  "windows.current.end=2011-08-01"])


def test_metric_keys_left_out_take_the_tasks_default(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params" / "ci.yaml").read_text())
    raw["gates"]["champion"].pop("metric", None)
    raw.get("monitor", {}).pop("metric", None)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    regression = load_params(tmp_path / "p.yaml")
    assert regression.monitor.metric == regression.gates.champion.metric == "rmse"
    raw["data"]["task"], raw["gates"]["metrics"], raw["gates"]["current_metrics"] = "classification", {}, {}
    raw["model"] = {"type": "HistGradientBoostingClassifier"}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    classification = load_params(tmp_path / "p.yaml")
    assert classification.monitor.metric == classification.gates.champion.metric == "f1"
