"""Generated tables through the public API and the CLI: no crash, every failure one line.

Hypothesis draws a table's shape (column types, category counts, missing values, the form of its
time column, the kind of label, size, file format, model); NumPy fills it from a drawn seed. The
table and a params file are written to a folder and run through ``load_params``,
``check_params_against_data``, the drift comparison, the model's build, fit and evaluation, and
``driftgate validate`` / ``driftgate drift`` in process. Any failure must be a
:class:`~helpers.core.errors.DriftgateError` with a one-line message, never another exception.

The profile is derandomized: the same examples run everywhere (CI included).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from helpers.core.config import load_params
from helpers.core.errors import DriftgateError
from helpers.modeling.data import TIME, check_params_against_data, window
from helpers.modeling.estimators import build_model, check_model_params
from helpers.modeling.train import evaluate, labelled, split
from helpers.stats.compare import compare
from support import one_error_line, run_cli

# make test-fast sets DRIFTGATE_QUICK=1: a third of the examples while editing; make test (CI) runs all
EXAMPLES = 15 if os.environ.get("DRIFTGATE_QUICK") == "1" else 50
PROFILE = settings(
    derandomize=True,  # reproducible: CI sees the examples a developer sees
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[phase for phase in Phase if phase is not Phase.explain],  # shrink, but skip the slow explanation
)

COLUMN_KINDS = ("int", "float", "bool", "category", "date")
TIME_FORMS = ("datetime", "iso", "date", "iso_offset")  # naive datetimes, ISO text, dates only, ISO with offset
LABEL_KINDS = ("float", "str", "int", "bool")  # float: regression; the others: classification
MODELS = {
    "regression": {
        "HistGradientBoostingRegressor": {"max_iter": 15},
        "RandomForestRegressor": {"n_estimators": 8, "random_state": 0},
        "Ridge": {},
    },
    "classification": {
        "HistGradientBoostingClassifier": {"max_iter": 15},
        "RandomForestClassifier": {"n_estimators": 8, "random_state": 0},
        "LogisticRegression": {"max_iter": 300},
    },
}
START = pd.Timestamp("2023-01-01")
MISSING_SHARES = (0.0,) * 6 + (0.05, 0.3, 0.3, 0.6, 1.0)  # 1.0: an empty column, a user mistake


@dataclass
class Column:
    """One generated feature column."""

    kind: str
    missing: float  # share of missing cells; 1.0 makes the column empty
    cardinality: int = 2  # categories


@dataclass
class TableSpec:
    """Everything drawn for one example; NumPy fills the values from ``seed``."""

    rows: int
    columns: list[Column]
    time_form: str
    time_missing: float
    span_days: int
    label: str
    classes: int
    label_missing: float
    file_format: str
    model: str
    split_method: str
    coefficient_sample: int
    over_time: bool
    seed: int
    shuffled: bool = field(default=False)

    @property
    def task(self) -> str:
        return "regression" if self.label == "float" else "classification"


@st.composite
def table_specs(draw: st.DrawFn) -> TableSpec:
    """The shape of a table and the params that go with it."""
    columns = draw(st.lists(
        st.builds(Column, kind=st.sampled_from(COLUMN_KINDS),
                  missing=st.sampled_from(MISSING_SHARES), cardinality=st.integers(1, 40)),
        min_size=1, max_size=5,
    ))
    label = draw(st.sampled_from(LABEL_KINDS))
    task = "regression" if label == "float" else "classification"
    return TableSpec(
        rows=draw(st.integers(60, 400)),
        columns=columns,
        time_form=draw(st.sampled_from(TIME_FORMS)),
        time_missing=draw(st.sampled_from([0.0, 0.0, 0.02])),
        span_days=draw(st.integers(20, 400)),
        label=label,
        classes=2 if label == "bool" else draw(st.integers(2, 5)),
        label_missing=draw(st.sampled_from([0.0] * 5 + [0.02])),
        file_format=draw(st.sampled_from(["csv", "parquet"])),
        model=draw(st.sampled_from(sorted(MODELS[task]))),
        split_method=draw(st.sampled_from(["time", "random"])),
        coefficient_sample=draw(st.sampled_from([0, 0, 200])),
        over_time=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
        shuffled=draw(st.booleans()),
    )


# --------------------------------------------------------------------------- building the table


def _feature(column: Column, n: int, rng: np.random.Generator, parquet: bool) -> pd.Series:
    missing = rng.random(n) < column.missing
    if column.kind == "int":
        values = pd.Series(rng.integers(-50, 50, n), dtype="Int64")
    elif column.kind == "float":
        values = pd.Series(rng.normal(10, 3, n))
    elif column.kind == "bool":
        values = pd.Series(rng.random(n) < 0.4, dtype="boolean")
    elif column.kind == "category":
        values = pd.Series([f"c{i}" for i in rng.integers(0, column.cardinality, n)], dtype=object)
    else:
        values = pd.Series(START + pd.to_timedelta(rng.integers(0, 900, n), unit="D"))
    values = values.mask(missing)
    if not parquet and column.kind == "date":
        values = values.dt.strftime("%Y-%m-%d")
    return values


def _times(spec: TableSpec, rng: np.random.Generator) -> tuple[pd.Series, pd.Series]:
    """The time column as written, and the same instants as naive timestamps (for the windows)."""
    seconds = np.sort(rng.integers(0, spec.span_days * 86400, spec.rows))
    stamps = pd.Series(START + pd.to_timedelta(seconds, unit="s"))
    if spec.time_form == "date":
        stamps = stamps.dt.normalize()
    written: pd.Series
    if spec.time_form == "datetime":
        written = stamps.copy()
    elif spec.time_form == "iso":
        written = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S")
    elif spec.time_form == "date":
        written = stamps.dt.strftime("%Y-%m-%d")
    else:
        written = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S+01:00")
    missing = rng.random(spec.rows) < spec.time_missing
    return written.mask(missing), stamps


def _label(spec: TableSpec, features: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    signal = sum(pd.to_numeric(features[c], errors="coerce").fillna(0).astype(float)
                 for c in features if spec.columns[int(c[1:])].kind in ("int", "float"))
    noise = rng.normal(0, 1, spec.rows)
    if spec.task == "regression":
        values = pd.Series(np.asarray(signal, dtype=float) * 0.1 + noise)
    else:
        codes = rng.integers(0, spec.classes, spec.rows)
        if spec.label == "str":
            values = pd.Series([f"class {c}" for c in codes], dtype=object)
        elif spec.label == "int":
            values = pd.Series(codes * 3 + 1)
        else:
            values = pd.Series(codes == 1)
    return values.mask(rng.random(spec.rows) < spec.label_missing)


def build_table(spec: TableSpec) -> tuple[pd.DataFrame, pd.Series]:
    """The generated table (columns f0.., when, label) and its instants."""
    rng = np.random.default_rng(spec.seed)
    parquet = spec.file_format == "parquet"
    features = pd.DataFrame({f"f{i}": _feature(c, spec.rows, rng, parquet) for i, c in enumerate(spec.columns)})
    written, stamps = _times(spec, rng)
    table = features.assign(when=written, label=_label(spec, features, rng))
    if spec.shuffled:
        order = rng.permutation(spec.rows)
        table, stamps = table.iloc[order].reset_index(drop=True), stamps.iloc[order].reset_index(drop=True)
    return table, stamps


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _windows(stamps: pd.Series) -> dict[str, dict[str, str]]:
    """Baseline: the first 60 % of the instants; current: the rest (whole days, so dates match)."""
    ordered = stamps.sort_values()
    cut = ordered.iloc[int(len(ordered) * 0.6)].normalize()
    first, last = ordered.iloc[0].normalize(), ordered.iloc[-1].normalize() + pd.Timedelta(days=1)
    if cut <= first:
        cut = first + pd.Timedelta(days=1)
    day = "%Y-%m-%d"
    return {"baseline": {"start": first.strftime(day), "end": cut.strftime(day)},
            "current": {"start": cut.strftime(day), "end": max(last, cut + pd.Timedelta(days=1)).strftime(day)}}


def write_example(spec: TableSpec, folder: Path) -> tuple[Path, pd.DataFrame, pd.Series]:
    """Write the table and its params file; return the params path, the table and its instants."""
    table, stamps = build_table(spec)
    data = _write(table, folder / f"table.{spec.file_format}")
    metric = "rmse" if spec.task == "regression" else "accuracy"
    raw: dict[str, Any] = {
        "data": {"path": data.name, "target": "label", "task": spec.task, "features": list(table.columns[:-2]),
                 "time": {"column": "when"}},
        "windows": _windows(stamps),
        "split": {"method": spec.split_method, "test_size": 0.25, "seed": 7},
        "model": {"type": spec.model, "hyperparameters": MODELS[spec.task][spec.model]},
        "validation": {"min_rows": 10, "max_missing_share": 1.0},
        "drift": {"coefficient_sample": spec.coefficient_sample, "period": "W"},
        "gates": {"metrics": {}, "champion": {"metric": metric}},
        "monitor": {"metric": metric},
        "outputs": {"dir": "outputs"},
    }
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    return params, table, stamps


# --------------------------------------------------------------------------- the checks


def assert_one_line(exc: DriftgateError) -> None:
    text = str(exc)
    assert text.strip() and "\n" not in text.strip() and "Traceback" not in text, repr(text)


def through_the_api(params_file: Path, over_time: bool) -> None:
    """Params, data checks, drift, build, fit and evaluation, as the notebooks call them."""
    params = load_params(params_file)
    frame = check_params_against_data(params)
    baseline = window(frame, params.windows.baseline)
    current = window(frame, params.windows.current)
    features, target = params.data.features, params.data.target
    report = compare(baseline, current, params.drift, features=features,
                     time_column=TIME if over_time else None)
    assert len(report.features) == len(features)
    check_model_params(params)
    train_rows, test_rows = split(baseline, params.split)
    train_rows, _unlabelled = labelled(train_rows, params)  # as step 3 does: rows without a label stay out
    model = build_model(params, train_rows).fit(train_rows[features], train_rows[target])
    for rows in (test_rows, current):
        scores, predicted = evaluate(model, rows, params)
        assert len(predicted) == len(rows) and scores


@PROFILE
@given(spec=table_specs())
def test_public_api_on_generated_tables(spec: TableSpec) -> None:
    with tempfile.TemporaryDirectory() as folder:
        params_file, *_ = write_example(spec, Path(folder))
        try:
            through_the_api(params_file, spec.over_time)
        except DriftgateError as exc:
            assert_one_line(exc)


def _cli_outcome(*args: str) -> None:
    done = run_cli(*args)
    assert done.returncode in (0, 2), f"driftgate {' '.join(args)}: exit {done.returncode}\n{done.stderr[-3000:]}"
    if done.returncode == 2:
        one_error_line(done, 2)
    else:
        assert "Traceback" not in done.stderr, done.stderr[-3000:]


@PROFILE
@given(spec=table_specs())
def test_cli_on_generated_tables(spec: TableSpec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        params_file, table, stamps = write_example(spec, folder)
        _cli_outcome("validate", "--params", str(params_file))
        windows = _windows(stamps)
        cut = pd.Timestamp(windows["current"]["start"])
        early = _write(table[(stamps < cut).to_numpy()], folder / f"baseline.{spec.file_format}")
        late = _write(table[(stamps >= cut).to_numpy()], folder / f"target.{spec.file_format}")
        time_args = ["--time-column", "when"] if spec.over_time else []
        _cli_outcome("drift", "--baseline", str(early), "--target", str(late), *time_args,
                     "-p", f"drift.coefficient_sample={spec.coefficient_sample}",
                     "--json", str(folder / "drift.json"))
