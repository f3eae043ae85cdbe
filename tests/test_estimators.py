"""Any scikit-learn estimator by class name, with the feature preparation that suits it, and the
user's own model from ``model.factory``: fitted on a table with missing values, a boolean and a
high-cardinality string column; unseen categories at predict time; a factory model logged to a
real SQLite registry and loaded back where its package is gone; one-line factory errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from helpers.core.config import Params, load_params
from helpers.core.errors import ParamsError
from helpers.modeling import estimators, factory, preprocessing
from helpers.registry import store as registry
from release_fixtures import STALE, Store, reload_smoke, sqlite_template, train_version
from support import ROOT, clean_env, driftgate_cmd, write_params

FEATURES = ["city", "x", "flag", "shop", "z"]
TRAIN_ROWS = 600


def _table(n: int = 800) -> pd.DataFrame:
    """x and city with missing values, a bool flag, a 400-category shop; y and label depend on all."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=n)
    city = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    flag = rng.random(n) < 0.4
    shop_id = rng.integers(0, 400, n)
    z = rng.uniform(0, 1, n)
    y = 3.0 * x + 2.0 * (city == "north") + 1.5 * flag + 1.0 * (shop_id < 40) + z + rng.normal(0, 0.2, n)
    x[rng.random(n) < 0.1] = np.nan
    city[rng.random(n) < 0.1] = None
    return pd.DataFrame({"city": city, "x": x, "flag": flag, "shop": [f"shop{i}" for i in shop_id], "z": z,
                         "y": y, "label": (y > np.median(y)).astype(int)})


NEW_ROWS = pd.DataFrame({  # unseen categories, and a missing value in every column
    "city": ["atlantis", None, "north"], "x": [0.5, np.nan, np.nan], "flag": [True, None, False],
    "shop": ["shop-new", "shop3", None], "z": [np.nan, 0.5, 0.2],
})


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin-wait: on busy cores one thread is far faster."""
    with threadpool_limits(limits=1):
        yield


def _params(params_file: Path, model_type: str, task: str, *extra: str) -> Params:
    target, metric = ("label", "accuracy") if task == "classification" else ("y", "rmse")
    return load_params(params_file, [
        f"model.type={model_type}", "model.hyperparameters={}", f"data.features=[{', '.join(FEATURES)}]",
        f"data.target={target}", f"data.task={task}", "gates.metrics={}", f"gates.champion.metric={metric}",
        f"monitor.metric={metric}", *extra,
    ])


# --------------------------------------------------------------------------- model.type, any family

ESTIMATORS = [  # class, task, family, the least held-out R² or accuracy (chance: 0 or 0.5; measured ~0.05 higher)
    ("LogisticRegression", "classification", "scaled", 0.8),
    ("RandomForestClassifier", "classification", "trees", 0.78),
    ("ExtraTreesRegressor", "regression", "trees", 0.75),
    ("Ridge", "regression", "scaled", 0.8),
    ("SVR", "regression", "scaled", 0.78),
    ("KNeighborsClassifier", "classification", "scaled", 0.72),
    ("HistGradientBoostingRegressor", "regression", "native", 0.78),
    ("HistGradientBoostingClassifier", "classification", "native", 0.78),
]


@pytest.mark.parametrize(("model_type", "task", "family", "least"), ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_estimator_fits_missing_values_and_predicts_unseen_categories(
    params_file: Path, model_type: str, task: str, family: str, least: float
) -> None:
    params = _params(params_file, model_type, task)
    frame = _table()
    train_rows, held = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:]
    model = estimators.build_model(params, train_rows).fit(train_rows[FEATURES], train_rows[params.data.target])
    assert preprocessing.estimator_family(model.named_steps["model"]) == family
    assert model.score(held[FEATURES], held[params.data.target]) >= least
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unknown categories" warning per request either
        predicted = model.predict(NEW_ROWS)
    assert len(predicted) == 3
    if task == "classification":
        assert set(predicted) <= {0, 1}
        assert np.allclose(model.predict_proba(NEW_ROWS).sum(axis=1), 1.0)
    else:
        assert np.isfinite(predicted).all()


def test_scaled_family_imputes_scales_and_bounds_one_hot_width(params_file: Path) -> None:
    frame = _table().iloc[:TRAIN_ROWS]
    model = estimators.build_model(_params(params_file, "Ridge", "regression"), frame).fit(frame[FEATURES], frame["y"])
    prepare = model.named_steps["prepare"]
    names = list(prepare.get_feature_names_out())
    out = pd.DataFrame(prepare.transform(NEW_ROWS), columns=names)
    shop_columns = [n for n in names if n.startswith("shop_")]
    assert len(shop_columns) == preprocessing.MAX_ONE_HOT and "shop_infrequent_sklearn" in shop_columns
    assert len(names) == 4 + preprocessing.MAX_ONE_HOT + 3  # 4 cities, shop, x, z, flag
    filled = frame["x"].fillna(frame["x"].median())
    assert out.loc[1, "x"] == pytest.approx((frame["x"].median() - filled.mean()) / filled.std(ddof=0))
    assert out.loc[0, [f"city_{c}" for c in ("east", "north", "south", "west")]].tolist() == [0, 0, 0, 0]
    assert out.loc[1, "city_north"] == 1  # missing: the most frequent city
    assert out.loc[0, "shop_infrequent_sklearn"] == 1  # unseen: with the rare shops
    assert out["flag"].tolist() == [1.0, 0.0, 0.0]  # missing flag: the most frequent, False


def test_tree_family_imputes_and_codes_unseen_categories(params_file: Path) -> None:
    frame = _table().iloc[:TRAIN_ROWS]
    params = _params(params_file, "RandomForestClassifier", "classification")
    model = estimators.build_model(params, frame).fit(frame[FEATURES], frame["label"])
    out = pd.DataFrame(model.named_steps["prepare"].transform(NEW_ROWS), columns=["city", "shop", "x", "z", "flag"])
    north = sorted(frame["city"].dropna().unique()).index("north")
    assert out["city"].tolist() == [preprocessing.UNKNOWN, north, north]
    assert out.loc[0, "shop"] == preprocessing.UNKNOWN
    assert out.loc[1, "x"] == pytest.approx(frame["x"].median())
    assert out.loc[0, "z"] == pytest.approx(frame["z"].median())


def test_native_family_codes_categories_within_max_bins(params_file: Path) -> None:
    frame = _table().iloc[:TRAIN_ROWS]
    params = _params(params_file, "HistGradientBoostingRegressor", "regression", "model.hyperparameters={max_bins: 64}")
    model = estimators.build_model(params, frame).fit(frame[FEATURES], frame["y"])
    assert model.named_steps["model"].categorical_features == [True, True, False, False, False]
    codes = model.named_steps["prepare"].transform(frame[FEATURES])
    assert codes[:, 1].max() == 63  # 400 shops: 63 frequent ones and one code for the rest
    out = model.named_steps["prepare"].transform(NEW_ROWS)
    assert out[0, 0] == out[1, 0] == preprocessing.UNKNOWN  # unseen and missing city
    assert np.isnan(out[1, 2]) and np.isnan(out[1, 4]) and out[0, 4] == 1.0  # x and flag stay missing


def test_boolean_columns_are_numbers() -> None:
    frame = pd.DataFrame({"a": [True, False], "b": pd.array([True, None], dtype="boolean"),
                          "c": [True, None], "d": ["yes", None], "e": [1, 2]})
    kinds = preprocessing.feature_kinds(frame, list(frame))
    assert (kinds.boolean, kinds.categorical, kinds.numeric) == (["a", "b", "c"], ["d"], ["e"])
    assert np.array_equal(preprocessing.as_float(frame[["b", "c"]]), [[1.0, 1.0], [np.nan, np.nan]], equal_nan=True)


@pytest.mark.parametrize("family", ["native", "trees", "scaled"])
def test_nullable_pandas_dtypes_work_in_every_family(family: str) -> None:
    frame = pd.DataFrame({"n": pd.array([1, None, 3, 4], dtype="Int64"),
                          "f": pd.array([1.5, None, 2, 1], dtype="Float64"),
                          "s": pd.array(["a", None, "b", "a"], dtype="string")})
    out = preprocessing.preparation(family, frame, list(frame)).fit_transform(frame)
    expected_row = {"native": [preprocessing.UNKNOWN, np.nan, np.nan], "trees": [0, 3, 1.5]}  # 0: "a", the mode
    if family in expected_row:
        assert np.array_equal(out[1], expected_row[family], equal_nan=True)
    else:
        assert out[1, :2].tolist() == [1, 0] and np.isfinite(out).all()


def test_classifier_without_predict_proba_is_refused_only_for_probability_gates(params_file: Path) -> None:
    auc_gate = "gates.metrics={roc_auc: {min: 0.6}}"
    with pytest.raises(ParamsError, match="model.type: SVC gives no predict_proba, needed for roc_auc; pick"):
        estimators.check_model_params(_params(params_file, "SVC", "classification", auc_gate))
    estimators.check_model_params(_params(params_file, "SVC", "classification", auc_gate,
                                          "model.hyperparameters={probability: true}"))
    estimators.check_model_params(_params(params_file, "SVC", "classification"))


# --------------------------------------------------------------------------- model.factory

USER_MODULE = '''
"""A user's own model: feature engineering in a custom transformer class."""
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder


class HourCycle(BaseEstimator, TransformerMixin):
    """Adds the hour of the day as a point on a circle."""

    def __init__(self, column="hr"):
        self.column = column

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = pd.DataFrame(X).copy()
        angle = 2 * np.pi * X[self.column] / 24
        X["hr_sin"], X["hr_cos"] = np.sin(angle), np.cos(angle)
        return X


def weather_codes(encoder):
    return ColumnTransformer([("weather", encoder, ["weathersit"])], remainder="passthrough")


def build(params):
    iterations = params.model.hyperparameters.get("max_iter", 30)
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return Pipeline([("hours", HourCycle()), ("encode", weather_codes(codes)),
                     ("model", HistGradientBoostingRegressor(max_iter=iterations))])


def build_plain():  # no argument; a lambda skops cannot save: cloudpickle
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return Pipeline([("hours", HourCycle()), ("encode", weather_codes(one_hot)),
                     ("square", FunctionTransformer(lambda X: X ** 2)), ("model", Ridge())])


def broken(params):
    raise ValueError("no column called weather_code\\nsecond line")


def not_a_model():
    return [1, 2, 3]


def classifier_without_proba():
    from sklearn.svm import LinearSVC
    return LinearSVC()
'''


def write_user_package(folder: Path) -> str:
    """A package ``userpkg_<random>`` in ``folder`` holding :data:`USER_MODULE`; its name."""
    name = f"userpkg_{uuid.uuid4().hex[:8]}"
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "models.py").write_text(textwrap.dedent(USER_MODULE))
    return name


@pytest.fixture
def isolated_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The factory import changes sys.path and PYTHONPATH: put both back after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))


def _forget(package: str, folder: Path) -> None:
    """Make ``package`` unimportable here: out of sys.modules and sys.path, its folder renamed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != folder.resolve()]
    (folder / package).rename(folder / f"{package}_gone")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("template"))


def _flavor(uri: str) -> dict:
    return mlflow.models.get_model_info(uri).flavors["sklearn"]


def test_factory_model_with_own_class_is_logged_with_its_code_and_loads_where_the_package_is_gone(
    tmp_path: Path, template: Path, isolated_paths: None
) -> None:
    package = write_user_package(tmp_path)
    params_file = Store(None, template).params(tmp_path, "own", **{"model.factory": f"{package}.models:build"})
    trained = train_version(params_file, STALE)
    assert type(trained.model.named_steps["hours"]).__module__ == f"{package}.models"
    assert str(tmp_path.resolve()) in os.environ["PYTHONPATH"].split(os.pathsep)  # for notebook kernels
    flavor = _flavor(trained.ref.uri)
    assert flavor["serialization_format"] == "skops"
    assert f"{package}.models.HourCycle" in flavor["skops_trusted_types"]
    frame = pd.read_csv(trained.params.data.path).head(300)[trained.params.data.features]
    expected = trained.model.predict(frame)

    _forget(package, tmp_path)
    loaded = mlflow.pyfunc.load_model(trained.ref.uri)
    assert np.allclose(loaded.predict(frame), expected, rtol=0, atol=1e-9)
    assert reload_smoke(trained).passed  # mlflow.sklearn, as the release gates and the service load it


def test_factory_model_skops_cannot_save_is_logged_with_cloudpickle(
    tmp_path: Path, template: Path, isolated_paths: None
) -> None:
    package = write_user_package(tmp_path)
    params_file = Store(None, template).params(tmp_path, "plain", **{"model.factory": f"{package}.models:build_plain"})
    trained = train_version(params_file, STALE)
    assert _flavor(trained.ref.uri)["serialization_format"] == "cloudpickle"
    folder = mlflow.artifacts.download_artifacts(trained.ref.uri, dst_path=str(tmp_path / "artifact"))
    assert "cloudpickle==" in Path(folder, "requirements.txt").read_text()
    assert (Path(folder) / "code" / package / "models.py").is_file()
    frame = pd.read_csv(trained.params.data.path).head(300)[trained.params.data.features]
    expected = trained.model.predict(frame)

    _forget(package, tmp_path)
    assert np.allclose(mlflow.pyfunc.load_model(trained.ref.uri).predict(frame), expected, rtol=0, atol=1e-9)


def test_built_in_models_ship_no_code_and_stay_in_skops(params_file: Path) -> None:
    frame = _table().iloc[:200]
    params = _params(params_file, "Ridge", "regression")
    model = estimators.build_model(params, frame).fit(frame[FEATURES], frame["y"])
    options = registry.model_files(model, frame[FEATURES].head(5), params)
    assert options["serialization_format"] == "skops" and "code_paths" not in options
    assert "helpers.modeling.preprocessing.as_text" in options["skops_trusted_types"]
    assert [r.split("==")[0] for r in options["pip_requirements"]] == list(registry.MODEL_PACKAGES)


def test_factory_wins_over_model_type_and_may_take_no_argument(tmp_path: Path, isolated_paths: None) -> None:
    package = write_user_package(tmp_path)
    params = load_params(write_params(tmp_path, **{"model.factory": f"{package}.models:build_plain",
                                                   "model.type": "RandomForestRegressor"}))
    estimators.check_model_params(params)
    model = estimators.build_model(params, pd.DataFrame())
    assert [name for name, _ in model.steps] == ["hours", "encode", "square", "model"]


def test_factory_classifier_needs_predict_proba_only_for_probability_gates(
    tmp_path: Path, isolated_paths: None
) -> None:
    package = write_user_package(tmp_path)
    changes = {"model.factory": f"{package}.models:classifier_without_proba", "data.task": "classification",
               "gates.metrics": {"accuracy": {"min": 0.5}}, "gates.champion.metric": "accuracy",
               "monitor.metric": "accuracy"}
    estimators.check_model_params(load_params(write_params(tmp_path, **changes)))
    changes["gates.metrics"] = {"roc_auc": {"min": 0.5}}
    with pytest.raises(ParamsError, match="LinearSVC, which has no predict_proba, needed for roc_auc"):
        estimators.check_model_params(load_params(write_params(tmp_path, **changes)))
    regression = load_params(write_params(tmp_path, **{"model.factory": changes["model.factory"]}))
    with pytest.raises(ParamsError, match="LinearSVC, which does not fit data.task=regression"):
        estimators.check_model_params(regression)


def test_user_code_paths_name_only_the_users_modules(tmp_path: Path, isolated_paths: None) -> None:
    package = write_user_package(tmp_path)
    params = load_params(write_params(tmp_path, **{"model.factory": f"{package}.models:build"}))
    model = factory.factory_model(params)
    assert factory.user_code_paths(model, params) == [str((tmp_path / package).resolve())]
    assert factory.model_modules(model) >= {package, "sklearn"}


# --------------------------------------------------------------------------- one-line errors from the CLI

FACTORY_ERRORS = {  # function path (PKG: the user package) -> start of the message after "model.factory: "
    "missing module": ("nosuch_package_xyz.models:build",
                       "cannot import module 'nosuch_package_xyz.models' (ModuleNotFoundError: No module named "
                       "'nosuch_package_xyz'); put it next to the params file or in the current folder, or pip "
                       "install it"),
    "missing function": ("PKG.models:nothing", "module 'PKG.models' ("),
    "function raises": ("PKG.models:broken",
                        "PKG.models:broken raised ValueError: no column called weather_code; fix the function"),
    "no predict": ("PKG.models:not_a_model",
                   "PKG.models:not_a_model returned list, which has no fit or predict method; return an unfitted "
                   "scikit-learn estimator or Pipeline"),
}


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, subprocess.CompletedProcess[str]]]:
    """``driftgate validate`` run (concurrently) in a subprocess on one bad factory per params file."""
    folder = tmp_path_factory.mktemp("factories")
    package = write_user_package(folder)
    env = {**clean_env(), "PYTHONPATH": str(ROOT / "src")}
    started = {}
    for case, (path, _) in FACTORY_ERRORS.items():
        params_file = write_params(folder, name=f"{case.replace(' ', '_')}.yaml",
                                   **{"model.factory": path.replace("PKG", package)})
        command = [*driftgate_cmd(), "validate", "--params", str(params_file)]
        started[case] = (command, subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True))
    done = {}
    for case, (command, process) in started.items():
        out, err = process.communicate(timeout=120)
        done[case] = (package, subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


@pytest.mark.slow  # starts another driftgate process
@pytest.mark.parametrize("case", list(FACTORY_ERRORS))
def test_bad_factory_is_one_line_exit_2(validated: dict, case: str) -> None:
    package, result = validated[case]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    params_file = Path(result.args[-1])
    expected = FACTORY_ERRORS[case][1].replace("PKG", package)
    assert lines[0].startswith(f"driftgate: error: {params_file}: model.factory: {expected}"), lines[0]
    if case == "missing function":
        assert lines[0].endswith("has no function 'nothing'; define it or fix the name after the colon")



@pytest.mark.parametrize("family", ["native", "trees", "scaled"])
def test_a_fitted_pipeline_without_bool_columns_shows_in_a_notebook(family: str) -> None:
    """Notebook 03 displays the fitted model: sklearn's HTML view must render for every family."""
    from helpers.modeling.preprocessing import preparation

    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "city": ["a", "b", "a", None]})
    prepared = preparation(family, frame, ["x", "city"]).fit(frame)
    assert "city" in prepared._repr_html_()
    assert [name for name, _, _ in prepared.transformers] == ["categorical", "numeric"]
