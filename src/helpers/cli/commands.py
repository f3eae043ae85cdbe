"""Every ``driftgate`` subcommand's arguments, and the module that carries it out.

Building the parser imports nothing heavy: each subcommand's ``func`` is an :class:`Implementation`
naming a ``module:function``, imported only when that subcommand runs. So ``driftgate --help``,
``driftgate status`` or an unchanged ``driftgate run`` never load scipy, scikit-learn, MLflow or
uvicorn for the other commands.

Example
-------
>>> parser = argparse.ArgumentParser(prog="driftgate")  # doctest: +SKIP
>>> add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from typing import Any

from helpers.cli.common import add_params_args

CAPTURE_PERIODS = ("hour", "day")  # helpers.serving.capture_compaction.PERIODS (a test keeps them equal)


@dataclass(frozen=True)
class Implementation:
    """A subcommand's function, ``module:function``, imported when it is called."""

    module: str
    function: str

    def __call__(self, args: argparse.Namespace) -> Any:
        """Import the module and run the function on the parsed arguments."""
        return getattr(importlib.import_module(self.module), self.function)(args)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add every subcommand, in the order ``driftgate --help`` lists them."""
    add_pipeline(subparsers)
    add_drift(subparsers)
    add_serving(subparsers)
    add_release(subparsers)
    add_monitor(subparsers)
    add_deploy(subparsers)
    add_captures(subparsers)
    add_package(subparsers)


def add_pipeline(subparsers: argparse._SubParsersAction) -> None:
    """``run``, ``validate`` and ``index`` (:mod:`helpers.cli.run`, :mod:`helpers.cli.validate`)."""
    run = subparsers.add_parser("run", help="run the notebook pipeline into a new run folder")
    add_params_args(run)
    run.add_argument("--steps", help="comma-separated subset of steps: investigate,drift,train,deploy")
    run.add_argument("--no-progress", action="store_true", help="hide papermill's progress bars")
    run.add_argument("--force", action="store_true", help="rerun every step, even unchanged ones")
    run.set_defaults(func=Implementation("helpers.cli.run", "run"))

    validate = subparsers.add_parser("validate", help="check params and data without running anything")
    add_params_args(validate)
    validate.set_defaults(func=Implementation("helpers.cli.validate", "validate"))

    index = subparsers.add_parser("index", help="rewrite outputs/index.html from the run folders")
    add_params_args(index)
    index.set_defaults(func=Implementation("helpers.cli.run", "index"))


def add_drift(subparsers: argparse._SubParsersAction) -> None:
    """``drift`` (:mod:`helpers.cli.drift`)."""
    parser = subparsers.add_parser(
        "drift",
        help="drift report for any pair of CSV or Parquet tables",
        description="Compare a target table with a baseline table: per-feature tests, drift coefficient, report.",
    )
    parser.add_argument("--baseline", required=True, help="baseline CSV or Parquet file, or a glob of them")
    parser.add_argument("--target", required=True, help="target CSV or Parquet file, or a glob of them")
    parser.add_argument("--params", help="params YAML: a full params file, or one with drift:/alerts: sections")
    parser.add_argument("-p", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter, e.g. -p drift.correction=bonferroni (repeatable)")
    parser.add_argument("--features", help="comma-separated columns (default: data.features of a full params "
                        "file, else all common columns)")
    parser.add_argument("--time-column", help="a date/time column of the target: adds drift per drift.period")
    parser.add_argument("--html", help="write the self-contained HTML report here")
    parser.add_argument("--json", help="write the JSON summary (every number) here")
    parser.add_argument("--title", default="Drift report", help="title of the HTML report")
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is found (for CI gates)")
    parser.add_argument("--alert", action="store_true",
                        help="when drift is found, send an alert to the sinks of the alerts: section")
    parser.set_defaults(func=Implementation("helpers.cli.drift", "run"))


def add_serving(subparsers: argparse._SubParsersAction) -> None:
    """``serve`` and ``replay`` (:mod:`helpers.cli.serve`)."""
    serve = subparsers.add_parser("serve", help="serve the champion model over HTTP with capture")
    add_params_args(serve, example="serve.flush_interval=0.5")
    serve.add_argument("--model", help="model URI (default: models:/<mlflow.model_name>@champion)")
    serve.add_argument("--host", help="bind address (default serve.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default serve.port; 0 picks a free one)")
    serve.add_argument("--no-capture", action="store_true", help="do not capture requests")
    serve.set_defaults(func=Implementation("helpers.cli.serve", "cmd_serve"))

    replay = subparsers.add_parser("replay", help="send a data window to the service as traffic and feedback")
    add_params_args(replay, example="serve.flush_interval=0.5")
    replay.add_argument("--data", help="CSV or Parquet file (default data.path)")
    replay.add_argument("--from", dest="start", required=True, metavar="DATE", help="window start, e.g. 2011-07-01")
    replay.add_argument("--to", dest="end", required=True, metavar="DATE", help="window end (exclusive)")
    replay.add_argument("--rate", type=float, help="requests per second (default: as fast as answered)")
    replay.add_argument("--batch", type=int, default=1, help="rows per request (default 1)")
    replay.add_argument("--url", help="service URL (default http://<serve.host>:<serve.port>)")
    replay.add_argument("--no-feedback", action="store_true", help="send traffic only, no labels")
    replay.add_argument("--feedback-only", action="store_true",
                        help="send only the labels of traffic replayed earlier (same --from, --to, --batch)")
    replay.add_argument("--ca-file", help="PEM certificate authorities to verify an https:// service with")
    replay.set_defaults(func=Implementation("helpers.cli.serve", "cmd_replay"))


def add_release(subparsers: argparse._SubParsersAction) -> None:
    """``approve``, ``rollback`` and ``status`` (:mod:`helpers.cli.ops`)."""
    approve = subparsers.add_parser("approve", help="approve a version waiting for approval and release it")
    approve.add_argument("version", help="the model version number, e.g. 7 or v7")
    approve.add_argument("--by", help="who approves (default: the current user)")
    approve.add_argument("--note", default="", help="why, recorded with the approval")
    add_params_args(approve, example="mlflow.model_name=x")
    approve.set_defaults(func=Implementation("helpers.cli.ops", "cmd_approve"))

    rollback = subparsers.add_parser("rollback", help="move champion back to the previous version")
    rollback.add_argument("--reason", default="", help="why, recorded as a tag on both versions")
    rollback.add_argument("--by", help="who rolls back (default: the current user)")
    add_params_args(rollback, example="mlflow.model_name=x")
    rollback.set_defaults(func=Implementation("helpers.cli.ops", "cmd_rollback"))

    status = subparsers.add_parser("status", help="show champion, challenger and previous with lineage")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_params_args(status, example="mlflow.model_name=x")
    status.set_defaults(func=Implementation("helpers.cli.ops", "cmd_status"))


def add_monitor(subparsers: argparse._SubParsersAction) -> None:
    """``monitor`` (:mod:`helpers.cli.monitor`)."""
    monitor = subparsers.add_parser("monitor", help="compare captured traffic with the champion's baseline")
    add_params_args(monitor, example="monitor.max_degradation=0.3")
    monitor.add_argument("--period", choices=["hour", "day", "week", "month"],
                         help="window length ending now (default monitor.period)")
    monitor.add_argument("--from", dest="start", metavar="TIME", help="window start (UTC), e.g. 2026-11-30")
    monitor.add_argument("--to", dest="end", metavar="TIME", help="window end (UTC, exclusive; default now)")
    monitor.add_argument("--backfill", action="store_true",
                         help="monitor every --period window from --from to --to (past captures) into the "
                              "history, then render the dashboard")
    monitor.add_argument("--fail-on-drift", action="store_true",
                         help="exit 1 when drift or degraded performance is found (for CI)")
    retrain = monitor.add_mutually_exclusive_group()
    retrain.add_argument("--retrain", dest="retrain", action="store_true", default=None,
                         help="retrain on drift or degradation (default monitor.retrain)")
    retrain.add_argument("--no-retrain", dest="retrain", action="store_false")
    monitor.set_defaults(func=Implementation("helpers.cli.monitor", "run"))


def add_deploy(subparsers: argparse._SubParsersAction) -> None:
    """``deploy`` (:mod:`helpers.cli.deploy`)."""
    parser = subparsers.add_parser("deploy", help="release the newest challenger waiting for approval")
    add_params_args(parser, example="mlflow.model_name=x")
    parser.add_argument("--if-new-version", action="store_true",
                        help="do nothing (exit 0) unless a challenger newer than the champion exists")
    parser.set_defaults(func=Implementation("helpers.cli.deploy", "run"))


def add_captures(subparsers: argparse._SubParsersAction) -> None:
    """``captures compact`` and ``captures recover`` (:mod:`helpers.cli.captures`)."""
    captures = subparsers.add_parser("captures", help="maintain the capture store: compact, recover")
    sub = captures.add_subparsers(dest="action", required=True, metavar="ACTION")

    compact = sub.add_parser("compact", help="merge the per-flush files of past periods, one file per period")
    compact.add_argument("--before", metavar="DATE", help="only rows before this date or time (UTC)")
    compact.add_argument("--period", choices=CAPTURE_PERIODS, default="day",
                         help="span of one merged file (default day)")
    _add_capture_store_args(compact)
    compact.set_defaults(func=Implementation("helpers.cli.captures", "cmd_compact"))

    recover = sub.add_parser("recover", help="convert a write-ahead log left by a killed service")
    _add_capture_store_args(recover)
    recover.set_defaults(func=Implementation("helpers.cli.captures", "cmd_recover"))


def _add_capture_store_args(parser: argparse.ArgumentParser) -> None:
    add_params_args(parser, example="serve.capture_dir=/data/captures")
    parser.add_argument("--dir", help="the capture store (default serve.capture_dir from the params)")


def add_package(subparsers: argparse._SubParsersAction) -> None:
    """``package`` (:mod:`helpers.cli.package`)."""
    parser = subparsers.add_parser("package", help="write a deployable folder: model, pinned requirements, Dockerfile")
    add_params_args(parser, example="mlflow.model_name=x")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write (must not exist, or be empty)")
    parser.add_argument("--model", help="model URI (default: models:/<mlflow.model_name>@champion)")
    parser.add_argument("--force", action="store_true", help="replace an earlier package in DIR")
    parser.add_argument("--wheel", metavar="FILE", help="ship this driftgate wheel instead of building one")
    parser.set_defaults(func=Implementation("helpers.cli.package", "run"))
