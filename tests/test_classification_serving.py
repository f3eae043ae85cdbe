"""Classifiers end to end: registered in a real SQLite registry, served over real HTTP, captured
with their class probabilities, gated on classification metrics, monitored on captured feedback.

Two classifiers are trained here on the bike data: a binary one with string labels ("no"/"yes":
more bikers than the median hour) and a multiclass one with int labels (0/1/2: demand terciles).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from helpers.core.config import ChampionGate, MetricGate, Params, load_params
from helpers.core.paths import capture_dir_for
from helpers.modeling.captures import read_captures, read_labeled_captures
from helpers.monitoring import monitor
from helpers.registry import gates, store, version_test
from helpers.registry.classes import coerce_labels, proba_columns
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.client import ServeClient
from helpers.serving.configure import service_from_params
from helpers.serving.models import load_model
from helpers.serving.protocol import JSON_TYPE, encode_frame
from helpers.serving.scorer import ScoreJob, score_jobs
from helpers.serving.service import ScoringService
from helpers.serving.smoke import smoke_test
from helpers.stats.profiling import profile_frame
from serve_fixtures import start_cli_server, stop_process
from support import DATA, clean_env, run_cli, write_params

FEATURES = ["season", "hr", "holiday", "weekday", "workingday", "weathersit", "temp", "atemp", "hum", "windspeed"]
LINEAGE = ("driftgate.run_id", "driftgate.git_commit", "driftgate.data_sha256", "driftgate.params_hash",
           "driftgate.reports")


@dataclass
class Classifier:
    """A trained and registered classifier and the rows held out for scoring."""

    params_file: Path
    params: Params
    model: object  # the fitted sklearn pipeline of version 1
    uri: str  # models:/<name>/1
    rows: pd.DataFrame  # held-out feature rows
    labels: np.ndarray  # their true labels

    @property
    def classes(self) -> list[object]:
        return store.model_classes(self.model)

    def proba(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        rows = self.rows if rows is None else rows
        return pd.DataFrame(self.model.predict_proba(rows), columns=proba_columns(self.classes))


def _data(folder: Path) -> Path:
    """The bike data with two classification targets: ``busy`` (no/yes) and ``level`` (0/1/2)."""
    frame = pd.read_csv(DATA)
    frame["busy"] = np.where(frame["bikers"] > frame["bikers"].median(), "yes", "no")
    frame["level"] = pd.qcut(frame["bikers"], 3, labels=False).astype(int)
    path = folder / "bikes_classes.csv"
    frame.to_csv(path, index=False)
    return path


def _pipeline(max_iter: int) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [c for c in FEATURES if c != "weathersit"]
    prep = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                               ["weathersit"]), ("num", "passthrough", numeric)])
    model = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.2, random_state=0)
    return Pipeline([("prep", prep), ("model", model)])


def _params_file(folder: Path, data: Path, target: str, name: str, metric: str, **changes: object) -> Path:
    return write_params(folder, name=f"{name}.yaml", **{
        "data.path": str(data), "data.target": target, "data.task": "classification",
        "model.type": "HistGradientBoostingClassifier", "model.hyperparameters": {"max_iter": 30},
        "validation.target_min": None,
        "gates.metrics": {"roc_auc": {"min": 0.7}}, "gates.champion": {"metric": metric, "compare_on": "test"},
        "monitor.metric": metric, "monitor.min_rows": 50, "mlflow.model_name": name,
        "serve.port": 0, "serve.flush_interval": 0.2, "serve.alias_poll_interval": 0, **changes,
    })


def _register(params: Params, model: object, train: pd.DataFrame, test: pd.DataFrame) -> str:
    """What the train step does: log test metrics and the monitoring baseline, register the model."""
    import mlflow

    from helpers.modeling.metrics import metrics

    store.connect(params)
    target = params.data.target
    baseline = train[FEATURES].copy()
    baseline["prediction"] = model.predict(train[FEATURES])
    proba = model.predict_proba(train[FEATURES])
    for j, column in enumerate(proba_columns(store.model_classes(model))):
        baseline[column] = proba[:, j]
    types = {c: "numeric" for c in baseline.columns} | {"weathersit": "categorical", "prediction": "categorical"}
    profile = profile_frame(baseline, types)
    scores = metrics("classification", test[target], model.predict(test[FEATURES]), model.predict_proba(test[FEATURES]))
    with mlflow.start_run():
        mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})
        mlflow.log_dict(profile.to_dict(), "baseline/monitoring_baseline.json")
        ref = store.log_model(model, train, params, dict.fromkeys(LINEAGE, "test"))
    return ref.version


def _classifier(folder: Path, data: Path, target: str, name: str, metric: str) -> Classifier:
    params_file = _params_file(folder, data, target, name, metric)
    params = load_params(params_file)
    frame = pd.read_csv(data)
    train, test, held = frame.iloc[:4000], frame.iloc[4000:5000], frame.iloc[6000:6300]
    models = [_pipeline(30).fit(train[FEATURES], train[target]), _pipeline(5).fit(train[FEATURES], train[target])]
    for model in models:
        _register(params, model, train, test)
    client = store.connect(params)
    client.set_registered_model_alias(name, "champion", "1")
    return Classifier(params_file, params, models[0], f"models:/{name}/1", held[FEATURES].reset_index(drop=True),
                      held[target].to_numpy())


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Classifier]:
    folder = tmp_path_factory.mktemp("classifiers")
    data = _data(folder)
    return {"binary": _classifier(folder, data, "busy", "busy-hours", "f1"),
            "multiclass": _classifier(folder, data, "level", "demand-level", "log_loss")}


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_pyfunc_answers_labels_by_default_and_probabilities_on_request(classifiers, kind) -> None:
    import mlflow.pyfunc
    from mlflow.models import get_model_info

    clf = classifiers[kind]
    model = mlflow.pyfunc.load_model(clf.uri)
    labels = model.predict(clf.rows)
    assert np.asarray(labels).tolist() == clf.model.predict(clf.rows).tolist()
    proba = model.predict(clf.rows, params={"output": "probabilities"})
    pd.testing.assert_frame_equal(proba, clf.proba())
    both = model.predict(clf.rows, params={"output": "both"})
    assert list(both.columns) == ["label", *proba_columns(clf.classes)]
    assert both["label"].tolist() == labels.tolist()
    info = get_model_info(clf.uri)
    assert info.metadata == {"task": "classification", "classes": clf.classes}
    assert info.signature.outputs.input_names() == ["label", *proba_columns(clf.classes)]
    assert info.signature.params.to_dict()[0]["name"] == "output"
    estimator = store.load(clf.uri)  # the version test and the champion check score the estimator
    assert estimator.predict_proba(clf.rows).tolist() == clf.model.predict_proba(clf.rows).tolist()
    assert store.logged_classes(clf.uri) == clf.classes


def test_classes_keep_their_type(classifiers) -> None:
    assert classifiers["binary"].classes == ["no", "yes"]
    assert classifiers["multiclass"].classes == [0, 1, 2]
    assert all(type(c) is int for c in classifiers["multiclass"].classes)
    assert coerce_labels(["2", 1.0, 0, "x"], [0, 1, 2]).tolist() == [2, 1, 0, "x"]
    assert coerce_labels(["true", 0, "False", 1.0], [False, True]).tolist() == [True, False, False, True]
    assert coerce_labels([" yes", "no"], ["no", "yes"]).tolist() == ["yes", "no"]


# --------------------------------------------------------------------------- serving


def _expected_answer(clf: Classifier, output: str, rows: pd.DataFrame) -> list[object]:
    labels = clf.model.predict(rows).tolist()
    proba = clf.proba(rows)
    if output == "label":
        return labels
    records = proba.to_dict(orient="records")
    if output == "probabilities":
        return records
    return [{"label": lab, **rec} for lab, rec in zip(labels, records, strict=True)]


def _assert_answer(got: list[object], expected: list[object]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        if isinstance(b, dict):
            assert list(a) == list(b)
            assert a.get("label") == b.get("label")
            assert np.allclose([a[k] for k in b if k != "label"], [b[k] for k in b if k != "label"], atol=1e-12)
        else:
            assert a == b


def _check_captures(clf: Classifier, capture_dir: Path, sent: pd.DataFrame) -> None:
    captured = read_captures(capture_dir, clf.params.mlflow.model_name)
    assert len(captured) == len(sent)
    inputs = captured[FEATURES]  # concurrent requests are captured in arrival order
    pd.testing.assert_frame_equal(inputs.sort_values(FEATURES).reset_index(drop=True),
                                  sent.sort_values(FEATURES).reset_index(drop=True), check_dtype=False)
    assert captured["prediction"].tolist() == clf.model.predict(inputs).tolist()
    columns = proba_columns(clf.classes)
    assert np.allclose(captured[columns].to_numpy(), clf.model.predict_proba(inputs), atol=1e-12)


@pytest.mark.slow  # a driftgate serve process per output value
@pytest.mark.parametrize("output", ["label", "probabilities", "both"])
def test_driftgate_serve_answers_each_output_and_captures_labels_and_probabilities(
    classifiers, tmp_path, output
) -> None:
    clf = classifiers["binary"]
    capture_dir = tmp_path / "captures"
    proc, url = start_cli_server(clf.params_file, "-p", f"serve.output={output}", "-p",
                                 f"serve.capture_dir={capture_dir}", env=clean_env())
    try:
        rows = clf.rows.head(40)
        with ServeClient(url) as client:
            response = client.request("POST", "/invocations", encode_frame(rows), {"Content-Type": JSON_TYPE})
            assert response.status == 200
            _assert_answer(response.json()["predictions"], _expected_answer(clf, output, rows))
            assert client.get_json("/health")["output"] == output
    finally:
        code, _out, err = stop_process(proc)
    assert code == 0, err[-2000:]
    _check_captures(clf, capture_dir, rows)


@pytest.mark.parametrize("output", ["label", "probabilities", "both"])
def test_multiclass_int_labels_over_http(classifiers, tmp_path, output) -> None:
    clf = classifiers["multiclass"]
    params = load_params(clf.params_file, [f"serve.output={output}", f"serve.capture_dir={tmp_path / 'cap'}"])
    with service_from_params(params, model_uri=f"models:/{params.mlflow.model_name}@champion") as service:
        assert service.model.classes == (0, 1, 2)
        with ServeClient(service.url) as client:
            prediction = client.predict(clf.rows)
            got = client.request("POST", "/invocations", encode_frame(clf.rows.head(5)), {"Content-Type": JSON_TYPE})
    _assert_answer(got.json()["predictions"], _expected_answer(clf, output, clf.rows.head(5)))
    if output != "probabilities":
        assert prediction.values.tolist() == clf.model.predict(clf.rows).tolist()
    if output != "label":
        assert np.allclose(prediction.probabilities.to_numpy(), clf.model.predict_proba(clf.rows), atol=1e-12)
    sent = pd.concat([clf.rows, clf.rows.head(5)], ignore_index=True)
    _check_captures(clf, tmp_path / "cap", sent)


def test_a_request_may_ask_for_another_output_in_its_params(classifiers) -> None:
    clf = classifiers["binary"]
    rows = clf.rows.head(4)
    split = json.loads(encode_frame(rows))
    with ScoringService(clf.uri, tracking_uri=clf.params.tracking_uri, port=0, output="label") as service, \
            ServeClient(service.url) as client:
        def post(document: dict) -> object:
            return client.request("POST", "/invocations", json.dumps(document).encode(), {"Content-Type": JSON_TYPE})

        plain = post(split).json()["predictions"]
        asked = post({**split, "params": {"output": "probabilities"}}).json()["predictions"]
        wrong = post({**split, "params": {"output": "scores"}})
    _assert_answer(plain, _expected_answer(clf, "label", rows))
    _assert_answer(asked, _expected_answer(clf, "probabilities", rows))
    assert wrong.status == 400 and "params.output" in wrong.json()["message"]


def test_regression_answers_are_unchanged_by_serve_output(registered) -> None:
    model = load_model(registered.uri("1"), tracking_uri=registered.tracking_uri)
    assert model.classes is None
    with ScoringService(registered.uri("1"), tracking_uri=registered.tracking_uri, port=0, model=model,
                        output="label") as service, ServeClient(service.url) as client:
        values = client.request("POST", "/invocations", encode_frame(registered.rows.head(3)),
                                {"Content-Type": JSON_TYPE}).json()["predictions"]
    assert np.allclose(values, registered.expected["1"][:3], atol=1e-9)


def test_micro_batching_stacks_probability_calls(classifiers) -> None:
    clf = classifiers["binary"]
    model = load_model(clf.uri, tracking_uri=clf.params.tracking_uri)
    pieces = [clf.rows.iloc[i : i + 7] for i in range(0, 35, 7)]
    jobs = [ScoreJob(model, encode_frame(p), JSON_TYPE, f"r{i}", time.time(), time.perf_counter())
            for i, p in enumerate(pieces)]
    assert score_jobs(jobs, max_rows=1000, output="both") == 1  # one model call for five requests
    for job, piece in zip(jobs, pieces, strict=True):
        assert job.error is None
        _assert_answer(json.loads(job.payload)["predictions"], _expected_answer(clf, "both", piece))


def test_concurrent_requests_share_model_calls(classifiers, tmp_path) -> None:
    clf = classifiers["binary"]
    writer = CaptureWriter(tmp_path / "captures", flush_interval=0.2)
    answers: dict[int, list[object]] = {}
    with ScoringService(clf.uri, tracking_uri=clf.params.tracking_uri, port=0, capture=writer,
                        max_batch_delay=0.05) as service:
        def send(i: int) -> None:
            with ServeClient(service.url) as client:
                answers[i] = client.request("POST", "/invocations", encode_frame(clf.rows.iloc[[i]]),
                                            {"Content-Type": JSON_TYPE}).json()["predictions"]

        threads = [threading.Thread(target=send, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        batching = service.health()["batching"]
    assert batching["requests"] == 12 and batching["model_calls"] <= 12
    for i, got in answers.items():
        _assert_answer(got, _expected_answer(clf, "both", clf.rows.iloc[[i]]))
    _check_captures(clf, tmp_path / "captures", clf.rows.iloc[:12])


def test_smoke_test_compares_labels_exactly_and_probabilities_within_tolerance(classifiers) -> None:
    clf = classifiers["binary"]
    rows, labels, proba = clf.rows.head(60), clf.model.predict(clf.rows.head(60)), clf.proba(clf.rows.head(60))
    ok = smoke_test(clf.uri, rows, labels, tracking_uri=clf.params.tracking_uri, expected_proba=proba)
    assert ok["passed"], ok["reason"]
    assert ok["max_abs_diff"] <= 1e-9 and ok["mismatched_labels"] == 0
    shifted = proba.copy()
    shifted.iloc[3, 0] += 1e-3
    off = smoke_test(clf.uri, rows, labels, tracking_uri=clf.params.tracking_uri, expected_proba=shifted)
    assert not off["passed"] and off["mismatched_rows"] == 1 and off["mismatched_labels"] == 0
    flipped = labels.copy()
    flipped[0] = "yes" if flipped[0] == "no" else "no"
    wrong = smoke_test(clf.uri, rows, flipped, tracking_uri=clf.params.tracking_uri, expected_proba=proba)
    assert not wrong["passed"] and wrong["mismatched_labels"] == 1


def test_champion_check_compares_labels_and_probabilities(classifiers) -> None:
    clf = classifiers["multiclass"]
    labels, proba = clf.model.predict(clf.rows), clf.model.predict_proba(clf.rows)
    same = version_test.compare_predictions("champion check", clf.uri, labels, labels.copy(), 1e-9, proba, proba)
    assert same.passed
    other = proba.copy()
    other[0, 0] += 1e-6
    assert not version_test.compare_predictions("c", clf.uri, labels, labels, 1e-9, proba, other).passed
    strings = classifiers["binary"].model.predict(classifiers["binary"].rows)
    assert version_test.compare_predictions("c", "u", strings, strings.copy(), 1e-9).passed
    flipped = strings.copy()
    flipped[:2] = np.where(flipped[:2] == "yes", "no", "yes")
    result = version_test.compare_predictions("c", "u", strings, flipped, 1e-9)
    assert not result.passed and "2 differ" in result.reason


# --------------------------------------------------------------------------- gates


def test_metric_gates_on_classification_metrics() -> None:
    passed = gates.metric_gates({"roc_auc": 0.81, "log_loss": 0.4}, {"roc_auc": MetricGate(min=0.7),
                                                                       "log_loss": MetricGate(max=0.5)})
    assert [r.passed for r in passed] == [True, True]
    failed = gates.metric_gates({"roc_auc": 0.65}, {"roc_auc": MetricGate(min=0.7)})
    assert not failed[0].passed and "outside [0.7, inf]" in failed[0].reason


def test_champion_gate_follows_each_metric_direction() -> None:
    f1 = ChampionGate(metric="f1")
    assert gates.champion_gate({"f1": 0.82}, {"f1": 0.80}, f1, "classification").passed
    assert not gates.champion_gate({"f1": 0.78}, {"f1": 0.80}, f1, "classification").passed
    loss = ChampionGate(metric="log_loss", min_improvement=0.01)
    assert gates.champion_gate({"log_loss": 0.30}, {"log_loss": 0.35}, loss, "classification").passed
    assert not gates.champion_gate({"log_loss": 0.345}, {"log_loss": 0.35}, loss, "classification").passed
    brier = ChampionGate(metric="brier")
    assert not gates.champion_gate({"brier": 0.2}, {"brier": 0.1}, brier, "classification").passed


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_version_test_and_gates_on_registered_classifiers(classifiers, kind) -> None:
    clf = classifiers[kind]
    params = clf.params
    frame = pd.read_csv(params.data.path).iloc[4000:5000]
    test = version_test.compare_versions(store.connect(params), params, "2", frame, "test")
    assert test.champion_version == "1"
    target = params.data.target
    champion = store.load(clf.uri)
    expected = skm.roc_auc_score(frame[target], champion.predict_proba(frame[FEATURES])[:, 1]) if kind == "binary" \
        else skm.roc_auc_score(frame[target], champion.predict_proba(frame[FEATURES]), multi_class="ovr")
    assert test.champion["roc_auc"] == pytest.approx(expected, rel=1e-12)
    result = gates.champion_gate(test.challenger, test.champion, params.gates.champion, "classification", "1")
    metric = params.gates.champion.metric
    better = test.challenger[metric] > test.champion[metric] if metric == "f1" \
        else test.challenger[metric] < test.champion[metric]
    assert result.passed == better
    auc = gates.metric_gates(test.challenger, params.gates.metrics, "test")[0]
    assert auc.passed == (test.challenger["roc_auc"] >= 0.7)


def test_version_test_on_captured_string_feedback(classifiers, tmp_path) -> None:
    clf = classifiers["binary"]
    params = load_params(clf.params_file, [f"serve.capture_dir={tmp_path / 'cap'}",
                                           "gates.champion.min_captured_rows=20"])
    writer = CaptureWriter(capture_dir_for(params), flush_interval=0.2)
    with ScoringService(f"models:/{params.mlflow.model_name}/1", tracking_uri=params.tracking_uri, port=0,
                        capture=writer) as service, ServeClient(service.url) as client:
        ids = [client.predict(clf.rows.iloc[[i]]).request_id for i in range(30)]
        client.feedback(ids, [str(v) for v in clf.labels[:30]])
    rows = version_test.captured_rows(params)
    test = version_test.compare_versions(store.connect(params), params, "1", rows, "captured")
    expected = skm.f1_score(clf.labels[:30], clf.model.predict(clf.rows.head(30)), pos_label="yes")
    assert test.challenger["f1"] == pytest.approx(expected, rel=1e-12)


def test_validate_rejects_a_metric_of_the_other_task(classifiers, tmp_path) -> None:
    clf = classifiers["binary"]
    ok = run_cli("validate", "--params", str(clf.params_file))
    assert ok.returncode == 0, ok.stderr
    wrong = run_cli("validate", "--params", str(clf.params_file), "-p", "gates.champion.metric=rmse")
    assert wrong.returncode != 0
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1 and "gates.champion.metric" in lines[0] and "rmse" in lines[0]
    gate = write_params(tmp_path, name="regression.yaml", **{"gates.metrics": {"roc_auc": {"min": 0.7}}})
    regression = run_cli("validate", "--params", str(gate))
    assert regression.returncode != 0
    assert "gates.metrics.roc_auc" in regression.stderr and len(regression.stderr.strip().splitlines()) == 1
    monitor_metric = run_cli("validate", "--params", str(clf.params_file), "-p", "monitor.metric=mae")
    assert monitor_metric.returncode != 0 and "monitor.metric" in monitor_metric.stderr


# --------------------------------------------------------------------------- monitoring


def test_monitor_computes_f1_on_captured_feedback_and_flags_degradation(classifiers, tmp_path) -> None:
    clf = classifiers["binary"]
    params = load_params(clf.params_file, [f"serve.capture_dir={tmp_path / 'cap'}",
                                           f"outputs.dir={tmp_path / 'out'}", "monitor.max_degradation=0.1",
                                           f"mlflow.tracking_uri={clf.params.tracking_uri}"])
    frame = pd.read_csv(params.data.path)
    later = frame.iloc[6000:6300]
    truth = later["busy"].to_numpy().copy()
    truth[::3] = np.where(truth[::3] == "yes", "no", "yes")  # a third of the feedback disagrees
    writer = CaptureWriter(capture_dir_for(params), flush_interval=0.2)
    with ScoringService(clf.uri.replace("/1", "@champion"), tracking_uri=params.tracking_uri, port=0,
                        capture=writer) as service, ServeClient(service.url) as client:
        ids = [client.predict(later[FEATURES].iloc[i : i + 10]).request_id for i in range(0, 300, 10)]
        labels = [truth[i : i + 10].tolist() for i in range(0, 300, 10)]
        client.feedback(ids, labels)
    result = monitor.run_monitor(params)
    summary = result.summary
    perf = summary["performance"]
    predicted = clf.model.predict(later[FEATURES])
    proba = clf.model.predict_proba(later[FEATURES])[:, 1]
    assert perf["rows"] == 300
    assert perf["metrics"]["f1"] == pytest.approx(skm.f1_score(truth, predicted, pos_label="yes"), rel=1e-9)
    assert perf["metrics"]["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "yes", proba), rel=1e-9)
    assert perf["degraded"] and summary["degraded"] and "f1" in perf["reason"]
    assert perf["limit"] == pytest.approx(perf["reference"]["f1"] * 0.9)
    assert summary["prediction_drift"]["feature"] == "prediction"
    assert summary["prediction_drift"]["type"] == "categorical"
    assert {f["feature"] for f in summary["probability_drift"]} == {"proba_no", "proba_yes"}
    assert all(f["type"] == "numeric" for f in summary["probability_drift"])
    labelled = read_labeled_captures(capture_dir_for(params), params.mlflow.model_name)
    assert sorted(set(labelled["label"])) == ["no", "yes"]
    assert json.loads(result.json.read_text())["performance"]["degraded"] is True


def test_monitor_puts_int_feedback_in_the_classes_type(classifiers) -> None:
    clf = classifiers["multiclass"]
    champion = monitor.load_champion(clf.params)
    assert champion.classes == [0, 1, 2]
    predicted = clf.model.predict(clf.rows)
    proba = clf.model.predict_proba(clf.rows)
    labelled = pd.DataFrame({"prediction": predicted, "label": [str(v) for v in clf.labels]})
    for j, column in enumerate(proba_columns(champion.classes)):
        labelled[column] = proba[:, j]
    perf = monitor.performance(monitor.typed_labels(labelled, champion), champion, clf.params)
    assert perf["metrics"]["log_loss"] == pytest.approx(skm.log_loss(clf.labels, proba, labels=[0, 1, 2]), rel=1e-9)
    assert perf["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(clf.labels, predicted))
    # log_loss: lower is better, so the limit lies above the champion's test value
    assert perf["limit"] == pytest.approx(perf["reference"]["log_loss"] * 1.25)


def test_feedback_of_mixed_label_types_is_kept_and_read_in_the_classes_type(tmp_path) -> None:
    from helpers.modeling.captures import read_feedback
    from helpers.serving.capture_records import FeedbackRecord

    with CaptureWriter(tmp_path, flush_interval=0.2) as writer:
        writer.submit(FeedbackRecord("m", ["a", "b", "c"], [0, 0, 0], [True, "false", None]))
    labels = read_feedback(tmp_path, "m").sort_values("request_id")["label"]
    assert labels.tolist()[:2] == ["True", "false"] and pd.isna(labels.iloc[2])  # JSON booleans and text
    typed = coerce_labels(labels, [False, True])
    assert typed.tolist()[:2] == [True, False] and pd.isna(typed.iloc[2])
