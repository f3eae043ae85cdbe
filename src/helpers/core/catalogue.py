"""The names Driftgate writes: run-folder files, step names, MLflow aliases and tag keys.

Every module takes these names from here, so a file or a tag is spelled once. A run folder
(``outputs/runs/<run_id>/``) holds the executed notebooks, their HTML, one summary per step and
the files below; the outputs folder holds the MLflow store, the index page and the alert log.

Example
-------
>>> STEP_SUMMARY["drift"]
'drift.json'
>>> LINEAGE_RUN_ID
'driftgate.run_id'
"""

from __future__ import annotations

# --------------------------------------------------------------------------- steps and notebooks

STEPS: tuple[str, ...] = ("investigate", "drift", "train", "deploy")
STEP_NOTEBOOK = {
    "investigate": "01_investigate.ipynb",
    "drift": "02_drift_report.ipynb",
    "train": "03_train_evaluate.ipynb",
    "deploy": "04_deploy.ipynb",
}
STEP_SUMMARY = {
    "investigate": "investigate.json",
    "drift": "drift.json",
    "train": "evaluation.json",
    "deploy": "deploy.json",
}

# --------------------------------------------------------------------------- run folder

MANIFEST = "manifest.json"
FROZEN_PARAMS = "params.yaml"  # the merged parameters every step of a run reads
BASELINE_PROFILE = "baseline_profile.json"
MONITORING_BASELINE = "monitoring_baseline.json"
BASELINE_SAMPLE = "baseline_sample.parquet"  # seeded training rows, for the drift coefficient on traffic
PERFORMANCE_ESTIMATOR = "performance_estimator.json"  # estimated performance without labels (CBPE/DLE)
LOSS_MODELS = "performance_estimator.skops"  # a regressor's DLE loss models, beside it
DRIFT_REPORT_HTML = "drift_report.html"
RELEASE_HTML = "release.html"
TEST_PREDICTIONS = "test_predictions.parquet"
CURRENT_PREDICTIONS = "current_predictions.parquet"
INTERACTIVE_RUN = "interactive"  # run folder used when a notebook is opened by hand

# --------------------------------------------------------------------------- outputs folder

RUNS_DIR = "runs"
INDEX_HTML = "index.html"
MLFLOW_DB = "mlflow.db"
ALERTS_FILE = "alerts.jsonl"
CAPTURES_DIR = "captures"
MONITORING_DIR = "monitoring"
MONITORING_HISTORY = "history.jsonl"  # in MONITORING_DIR: one JSON line per monitored window
MONITORING_DASHBOARD = "index.html"  # in MONITORING_DIR: the history plotted over time
RELEASES_DIR = "releases"

# --------------------------------------------------------------------------- captured traffic

PREDICTION = "prediction"  # the captured output column, as the scoring service names it
LABEL = "label"  # a classifier's label column in its answers (and the feedback column in captures)
PROBA_PREFIX = "proba_"  # one probability column per class: proba_<class>

# --------------------------------------------------------------------------- MLflow aliases

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)

# --------------------------------------------------------------------------- MLflow tags: lineage

LINEAGE_RUN_ID = "driftgate.run_id"
LINEAGE_RUN_DIR = "driftgate.run_dir"
LINEAGE_GIT_COMMIT = "driftgate.git_commit"
LINEAGE_GIT_DIRTY = "driftgate.git_dirty"
LINEAGE_DATA_PATH = "driftgate.data_path"
LINEAGE_DATA_SHA256 = "driftgate.data_sha256"
LINEAGE_PARAMS_HASH = "driftgate.params_hash"
LINEAGE_BASELINE_WINDOW = "driftgate.baseline_window"
LINEAGE_CURRENT_WINDOW = "driftgate.current_window"
LINEAGE_REPORTS = "driftgate.reports"
LINEAGE_MLFLOW_RUN_ID = "driftgate.mlflow_run_id"
RUN_STATUS = "driftgate.status"  # on the MLflow run that records a pipeline run

# --------------------------------------------------------------------------- MLflow tags: releases

DECISION = "driftgate.decision"
REASON = "driftgate.decision_reason"
DECIDED_AT = "driftgate.decided_at"
DECISION_RUN = "driftgate.decision_run"
GATES = "driftgate.gates"
VERSION_TEST = "driftgate.version_test"
CHAMPION_BEFORE = "driftgate.champion_before"
RELEASE_PAGE = "driftgate.release_page"
APPROVED_BY = "driftgate.approved_by"
APPROVED_AT = "driftgate.approved_at"
APPROVAL_NOTE = "driftgate.approval_note"
ROLLBACK_REASON = "driftgate.rollback_reason"
ROLLED_BACK_AT = "driftgate.rolled_back_at"
ROLLED_BACK_BY = "driftgate.rolled_back_by"
ROLLED_BACK_TO = "driftgate.rolled_back_to"
RESTORED_AT = "driftgate.restored_at"
RESTORED_REASON = "driftgate.restored_reason"
LAST_ROLLBACK = "driftgate.last_rollback"  # on the registered model
LOCK_HOLDER = "driftgate.lock_holder"  # on the release-lock model
LOCK_ACQUIRED = "driftgate.lock_acquired"
