"""Classification end to end: metrics against scikit-learn, predictions with probabilities, rows
without a label, investigate tables, figures, the monitoring baseline, the target's drift, and a
full `driftgate run` on a generated table (slow).

Four label kinds: binary strings, binary booleans, multiclass integers, multiclass strings.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from helpers.core.config import Params, load_params
from helpers.modeling import investigate, train
from helpers.modeling.data import TIME, check_params_against_data
from helpers.modeling.estimators import build_model
from helpers.modeling.metrics import classification_metrics
from helpers.pipeline import drift_step, investigate_step, train_step
from helpers.pipeline.context import StepContext
from helpers.reports import plots
from helpers.stats.profile import FrameProfile
from support import ROOT, clean_env, driftgate_cmd, write_params

KINDS = ["binary_str", "binary_bool", "multi_int", "multi_str"]
CLASSES = {
    "binary_str": ["no", "yes"],
    "binary_bool": [False, True],
    "multi_int": [0, 1, 2],
    "multi_str": ["high", "low", "mid"],
}


def make_table(kind: str, n: int = 1500, missing: float = 0.03, seed: int = 0) -> pd.DataFrame:
    """A learnable table every 4 hours from 2022-01-01: two numbers, a city, a label of ``kind``
    that depends on them (the positive share grows with time), some labels missing."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    city = rng.choice(["north", "south", "east"], n)
    score = 1.5 * x1 - x2 + 0.8 * (city == "north") + np.linspace(0, 0.8, n) + rng.normal(scale=0.7, size=n)
    level = np.digitize(score, [-0.5, 1.0])
    labels = {
        "binary_str": np.where(score > 0.4, "yes", "no").astype(object),
        "binary_bool": (score > 0.4).astype(object),
        "multi_int": level.astype(float),
        "multi_str": np.array(["low", "mid", "high"], dtype=object)[level],
    }[kind]
    label = pd.Series(labels)
    label[rng.random(n) < missing] = None
    stamps = pd.date_range("2022-01-01", periods=n, freq="4h")
    return pd.DataFrame({"ts": stamps, "x1": x1, "x2": x2, "city": city, "label": label})


def classification_params(folder: Path, data: Path, **changes: object) -> Path:
    """A params file for the generated table: HistGradientBoostingClassifier, gates on f1 and
    roc_auc, outputs under ``folder``."""
    settings: dict[str, object] = {
        "data.path": str(data), "data.target": "label", "data.task": "classification",
        "data.features": ["x1", "x2", "city"], "data.forbidden_features": [], "data.time": {"column": "ts"},
        "windows.baseline": {"start": "2022-01-01", "end": "2022-06-01"},
        "windows.current": {"start": "2022-07-01", "end": "2022-09-01"},
        "model.type": "HistGradientBoostingClassifier",
        "model.hyperparameters": {"max_iter": 30, "random_state": 0},
        "validation": {"min_rows": 100, "max_missing_share": 0.1},
        "drift.coefficient_sample": 800,
        "gates.metrics": {"f1": {"min": 0.3}, "roc_auc": {"min": 0.6}},
        "gates.champion": {"metric": "f1", "compare_on": "current"},
        "monitor.metric": "f1",
        "mlflow.model_name": f"cls-{data.stem}",
    }
    settings.update(changes)
    return write_params(folder, **settings)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin-wait: on a busy machine one thread is faster."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(params=KINDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Params, pd.DataFrame]:
    kind = request.param
    data = tmp_path / f"{kind}.csv"
    make_table(kind).to_csv(data, index=False)
    params = load_params(classification_params(tmp_path, data))
    return kind, params, check_params_against_data(params)


def _fitted(params: Params, rows: pd.DataFrame) -> object:
    return build_model(params, rows).fit(rows[params.data.features], rows["label"])


# --------------------------------------------------------------------------- metrics


def _random_case(labels: list, n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(len(labels)), size=n)
    truth = np.asarray(labels)[rng.integers(0, len(labels), n)]
    predicted = np.asarray(labels)[proba.argmax(axis=1)]
    return truth, predicted, proba


@pytest.mark.parametrize("kind", KINDS)
def test_metrics_match_sklearn(kind: str) -> None:
    labels = CLASSES[kind]
    truth, predicted, proba = _random_case(labels)
    got = classification_metrics(truth, predicted, proba, labels)
    assert set(got) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier"}
    binary = len(labels) == 2
    average = {"average": "binary", "pos_label": labels[-1]} if binary else {"average": "macro"}
    expected = {
        "accuracy": skm.accuracy_score(truth, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted, **average),
        "recall": skm.recall_score(truth, predicted, **average),
        "f1": skm.f1_score(truth, predicted, **average),
        "log_loss": skm.log_loss(truth, proba, labels=labels),
    }
    if binary:
        expected["roc_auc"] = skm.roc_auc_score(truth == labels[-1], proba[:, 1])
        expected["brier"] = skm.brier_score_loss(truth == labels[-1], proba[:, 1])
    else:
        expected["roc_auc"] = skm.roc_auc_score(truth, proba, multi_class="ovr", average="macro", labels=labels)
        # sklearn's multiclass Brier sums over classes; ours averages over them
        expected["brier"] = skm.brier_score_loss(truth, proba, labels=labels) / len(labels)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name


def test_binary_metrics_by_hand_use_the_larger_label_as_positive() -> None:
    truth = np.array(["no", "yes", "yes", "no", "yes"], dtype=object)
    predicted = np.array(["yes", "yes", "no", "no", "yes"], dtype=object)
    p_yes = np.array([0.6, 0.9, 0.4, 0.2, 0.7])
    got = classification_metrics(truth, predicted, p_yes, ["no", "yes"])
    assert got["precision"] == pytest.approx(2 / 3)  # 2 true "yes" of 3 predicted
    assert got["recall"] == pytest.approx(2 / 3)  # 2 found of 3 actual
    assert got["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert got["roc_auc"] == pytest.approx(5 / 6)  # pairs (yes, no) ranked right: 5 of 6
    outcome = (truth == "yes").astype(float)
    assert got["brier"] == pytest.approx(np.mean((outcome - p_yes) ** 2))
    assert got["log_loss"] == pytest.approx(-np.mean(np.log(np.where(outcome == 1, p_yes, 1 - p_yes))))


def test_roc_auc_left_out_when_one_class_is_absent() -> None:
    got = classification_metrics(["a", "a"], ["a", "b"], np.array([[0.9, 0.1], [0.4, 0.6]]), ["a", "b"])
    assert "roc_auc" not in got and got["accuracy"] == 0.5 and np.isfinite(got["log_loss"])


def test_tidy_labels_restore_integers_and_booleans() -> None:
    assert train.tidy_labels(pd.Series([1.0, np.nan, 2.0])).tolist() == [1, 2]
    assert train.tidy_labels(pd.Series([1.0, np.nan, 2.0])).dtype == "int64"
    assert train.tidy_labels(pd.Series([True, None, False], dtype=object)).dtype == bool
    assert train.tidy_labels(pd.Series(["a", None, "b"])).tolist() == ["a", "b"]


# --------------------------------------------------------------------------- train and evaluate


def test_predictions_keep_labels_and_class_probabilities(case) -> None:
    kind, params, frame = case
    rows, unlabelled = train.labelled(frame, params)
    assert unlabelled == int(frame["label"].isna().sum()) > 0 and len(rows) == len(frame) - unlabelled
    model = _fitted(params, rows)
    assert train.classes(model) == CLASSES[kind]
    scores, predictions = train.evaluate(model, frame, params)
    probability_columns = [f"proba_{label}" for label in CLASSES[kind]]
    assert list(predictions.columns) == [TIME, "actual", "predicted", *probability_columns]
    assert len(predictions) == len(frame)  # unlabelled rows are predicted, with a missing actual
    assert predictions["actual"].isna().sum() == unlabelled
    assert np.allclose(predictions[probability_columns].sum(axis=1), 1.0)
    assert set(predictions["predicted"]) <= set(CLASSES[kind])
    known = rows["label"].to_numpy()
    labelled_predictions = model.predict(rows[params.data.features])
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(known, labelled_predictions))
    assert scores["log_loss"] == pytest.approx(
        skm.log_loss(known, model.predict_proba(rows[params.data.features]), labels=CLASSES[kind]))
    assert scores["roc_auc"] > 0.8


def test_predictions_read_back_from_parquet_give_the_same_metrics(case, tmp_path: Path) -> None:
    kind, params, frame = case
    model = _fitted(params, train.labelled(frame, params)[0])
    scores, predictions = train.evaluate(model, frame, params)
    predictions.to_parquet(tmp_path / "p.parquet")
    again = pd.read_parquet(tmp_path / "p.parquet")
    assert again.attrs["classes"] == CLASSES[kind]
    assert train.prediction_metrics(again, params) == pytest.approx(scores)


def test_permutation_importance_scores_classifiers_by_log_loss(case) -> None:
    kind, params, frame = case
    rows = train.labelled(frame, params)[0]
    model = _fitted(params, rows)
    scorer, features = train.importance_scoring(model, params), params.data.features
    expected = -skm.log_loss(rows["label"], model.predict_proba(rows[features]), labels=model.classes_)
    assert scorer(model, rows[features], rows["label"]) == pytest.approx(expected)
    importance = train.feature_importance(model, frame, params)
    assert list(importance.index[:1]) == ["x1"] and importance["x1"] > 0
    some = rows[rows["label"] != model.classes_[0]]  # rows lacking one of the model's classes
    assert train.feature_importance(model, some, params).notna().all()


def test_training_data_leaves_unlabelled_rows_out_of_training(case) -> None:
    kind, params, frame = case
    ctx = StepContext(step="train", params=params, run_dir=Path("."), frame=frame)
    rows = train_step.training_data(ctx)
    assert rows.train["label"].notna().all()
    assert rows.unlabelled["train"] > 0
    assert rows.unlabelled["current"] == int(rows.current["label"].isna().sum())
    table = train_step.split_table(rows)
    assert table.loc["train", "without label (left out)"] == rows.unlabelled["train"]
    assert any("left out of training" in note for note in rows.notes("label"))


def test_monitoring_baseline_profiles_prediction_as_category_and_probabilities_as_numbers(case, tmp_path) -> None:
    kind, params, frame = case
    ctx = StepContext(step="train", params=params, run_dir=tmp_path, frame=frame)
    rows = train_step.training_data(ctx)
    model = train_step.fit(ctx, rows.train)
    path = train_step.write_monitoring_baseline(ctx, model, rows.train)
    profile = json.loads(path.read_text())["columns"]
    assert profile["prediction"]["kind"] == "categorical" and profile["label"]["kind"] == "categorical"
    assert set(profile["prediction"]["counts"]) <= {str(c) for c in CLASSES[kind]}
    for label in CLASSES[kind]:
        assert profile[f"proba_{label}"]["kind"] == "numeric"
        assert profile[f"proba_{label}"]["count"] == len(rows.train)
    assert FrameProfile.from_dict(json.loads(path.read_text())).rows == len(rows.train)


# --------------------------------------------------------------------------- investigate and drift


def test_investigate_counts_classes_shares_and_missing_labels(case) -> None:
    kind, params, frame = case
    labels = train.tidy_labels(frame["label"])
    balance = investigate.class_balance(frame, params)
    assert balance["class"].tolist() == CLASSES[kind]
    assert balance["rows"].tolist() == [int((labels == c).sum()) for c in CLASSES[kind]]
    assert balance["share"].sum() == pytest.approx(1.0)
    target = investigate.target_summary(frame, params)
    assert target["missing"] == int(frame["label"].isna().sum())
    shares = dict(zip(balance["class"].astype(str), balance["share"], strict=True))
    assert target["shares"] == pytest.approx(shares)
    over_time = investigate.class_shares_over_time(frame, params)
    assert over_time[[str(c) for c in CLASSES[kind]]].sum(axis=1).to_numpy() == pytest.approx(1.0)
    checks = investigate.validation_checks(frame, params)
    summary = investigate.summary(frame, params, checks)
    assert summary["missing_per_feature"] == {"x1": 0, "x2": 0, "city": 0}
    assert any("no label value" in w for w in summary["warnings"])
    json.dumps(summary)  # JSON-ready


def test_imbalance_warning_names_the_rare_class(params_file: Path, tmp_path: Path) -> None:
    frame = make_table("binary_str", missing=0.0)
    frame["label"] = np.where(np.arange(len(frame)) % 20 == 0, "rare", "common")
    data = tmp_path / "rare.csv"
    frame.to_csv(data, index=False)
    params = load_params(classification_params(tmp_path, data))
    target = investigate.target_summary(check_params_against_data(params), params)
    assert target["imbalanced"] and target["smallest_share"] == pytest.approx(0.05)
    assert "rare has 5.0%" in target["warning"]


def test_baseline_profile_counts_the_classes(case, tmp_path: Path) -> None:
    kind, params, frame = case
    ctx = StepContext(step="investigate", params=params, run_dir=tmp_path, frame=frame)
    label = json.loads(investigate_step.write_baseline_profile(ctx).read_text())["columns"]["label"]
    assert label["kind"] == "categorical" and set(label["counts"]) == {str(c) for c in CLASSES[kind]}


def test_target_drift_compares_class_shares(case) -> None:
    kind, params, frame = case
    ctx = StepContext(step="drift", params=params, run_dir=Path("."), frame=frame)
    baseline, current = drift_step.drift_windows(ctx)
    report = drift_step.target_drift(ctx, baseline, current)
    feature = report.feature("label")
    assert feature.type == "categorical" and feature.compared
    assert sorted(feature.histogram["labels"]) == sorted(str(c) for c in CLASSES[kind])
    assert sum(feature.histogram["baseline"]) == int(baseline["label"].notna().sum())


# --------------------------------------------------------------------------- figures


def test_evaluation_and_target_figures(case) -> None:
    kind, params, frame = case
    model = _fitted(params, train.labelled(frame, params)[0])
    _, predictions = train.evaluate(model, frame, params)
    fig = plots.evaluation_figure(predictions, params, "test rows")
    matrix, roc, pr, calibration = fig.axes[:4]
    assert [ax.get_title() for ax in fig.axes][1:4] == [
        "ROC" if kind.startswith("binary") else "ROC (one vs rest)", "Precision-recall", "Reliability (calibration)"]
    assert matrix.get_title() == "Confusion matrix (test rows)"
    assert sum(int(t.get_text()) for t in matrix.texts) == int(predictions["actual"].notna().sum())
    assert [t.get_text() for t in matrix.get_yticklabels()] == [str(c) for c in CLASSES[kind]]
    curves = 1 if kind.startswith("binary") else 3
    assert len(roc.get_legend().get_texts()) == curves and len(pr.get_lines()) == curves
    assert len(calibration.get_lines()) == curves + 1  # and the diagonal
    target = plots.target_figure(frame, params)
    shares, counts = target.axes[:2]
    assert [t.get_text() for t in shares.get_legend().get_texts()] == [str(c) for c in CLASSES[kind]]
    assert [p.get_height() for p in counts.patches] == investigate.class_balance(frame, params)["rows"].tolist()


def test_regression_keeps_its_figures(params_file: Path) -> None:
    params = load_params(params_file)
    frame = check_params_against_data(params)
    predictions = pd.DataFrame({TIME: frame[TIME], "actual": frame["bikers"], "predicted": frame["bikers"] * 0.9})
    predictions["residual"] = predictions["actual"] - predictions["predicted"]
    assert len(plots.evaluation_figure(predictions, params).axes) == 3
    assert [ax.get_title() for ax in plots.target_figure(frame, params).axes] == [
        "bikers: mean per W period", "Distribution of bikers"]


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_driftgate_run_on_a_classification_table(tmp_path: Path) -> None:
    data = tmp_path / "churn.csv"
    make_table("binary_bool", n=2400, missing=0.02).to_csv(data, index=False)
    params = classification_params(tmp_path, data)
    done = subprocess.run([*driftgate_cmd(), "run", "--params", str(params), "--no-progress"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT, env=clean_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    run_dir = sorted((tmp_path / "outputs" / "runs").iterdir())[-1]
    for stem in ("01_investigate", "02_drift_report", "03_train_evaluate", "04_deploy"):
        cells = json.loads((run_dir / f"{stem}.ipynb").read_text())["cells"]
        assert any("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", [])), stem
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["task"] == "classification" and evaluation["metrics"]["test"]["roc_auc"] > 0.8
    assert evaluation["rows"]["without_label"]["train"] > 0 and evaluation["notes"]
    predictions = pd.read_parquet(run_dir / "test_predictions.parquet")
    assert {"proba_False", "proba_True"} <= set(predictions.columns)
    investigate_summary = json.loads((run_dir / "investigate.json").read_text())
    assert set(investigate_summary["target"]["shares"]) == {"False", "True"}
    drift = json.loads((run_dir / "drift.json").read_text())
    assert drift["target"]["type"] == "categorical"
    assert "release: promoted v1" in done.stdout, done.stdout


def test_roc_auc_of_a_multiclass_model_on_rows_holding_two_of_its_classes() -> None:
    """Five classes in the model, two in the rows: the AUC of those two, renormalised, as sklearn gives it."""
    rng = np.random.default_rng(3)
    labels = np.array(["drizzle", "fog", "rain", "snow", "sun"])
    proba = rng.dirichlet(np.ones(5), size=40)
    y_true = rng.choice(["fog", "sun"], size=40)
    got = classification_metrics(y_true, labels[proba.argmax(axis=1)], proba, labels)
    two = proba[:, [1, 4]] / proba[:, [1, 4]].sum(axis=1, keepdims=True)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true == "sun", two[:, 1]))


def test_a_label_the_model_never_saw_leaves_log_loss_out_and_counts_in_brier() -> None:
    labels = np.array(["fog", "rain", "sun"])
    proba = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]])
    y_true = np.array(["sun", "fog", "snow"])  # snow: unseen in training
    got = classification_metrics(y_true, np.array(["sun", "fog", "sun"]), proba, labels)
    assert "log_loss" not in got
    assert "roc_auc" in got  # ranked on the rows whose labels the model knows
    one_hot = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]], dtype=float)  # snow matches no column
    assert got["brier"] == pytest.approx(np.mean((one_hot - proba) ** 2))
    assert got["accuracy"] == pytest.approx(2 / 3)
