"""The ``driftgate`` command.

    driftgate run [--params FILE] [-p key=value ...]   run the four notebooks into a new run folder
    driftgate validate [--params FILE] [-p ...]         check params, data and notebooks, run nothing
    driftgate index                                     rewrite outputs/index.html
    driftgate drift --baseline A --target B ...         drift report for any pair of tables (cli.drift)
    driftgate serve / replay                            scoring service and traffic replay (cli.serve)
    driftgate monitor                                   captured traffic against the baseline (cli.monitor)
    driftgate status / approve / rollback               the release state, by hand (cli.ops)
    driftgate deploy --if-new-version                   release a waiting challenger (cli.deploy)
    driftgate captures compact / recover                maintain the capture store (cli.captures)
    driftgate package --out DIR                         a deployable folder: model, image recipe (cli.package)

User mistakes print one line and exit 2 (bad params or data) or 1; no traceback. An internal
error prints one line naming the file that holds its traceback; ``driftgate --debug COMMAND``
(or ``--debug`` after the command) prints the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from helpers.cli import captures, deploy, drift, monitor, ops, package, serve
from helpers.cli.common import add_debug_arg, add_params_args, dispatch
from helpers.core.config import load_params
from helpers.modeling.data import check_params_against_data
from helpers.modeling.estimators import check_model_params
from helpers.pipeline.runner import notebook_dir, run_pipeline
from helpers.reports.pages import write_index


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="driftgate", description="Notebook-first CI/CD for ML models.")
    add_debug_arg(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the notebook pipeline into a new run folder")
    add_params_args(run)
    run.add_argument("--steps", help="comma-separated subset of steps: investigate,drift,train,deploy")
    run.add_argument("--no-progress", action="store_true", help="hide papermill's progress bars")
    run.add_argument("--force", action="store_true", help="rerun every step, even unchanged ones")
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", help="check params and data without running anything")
    add_params_args(validate)
    validate.set_defaults(func=_cmd_validate)

    index = sub.add_parser("index", help="rewrite outputs/index.html from the run folders")
    add_params_args(index)
    index.set_defaults(func=_cmd_index)

    for module in (drift, serve, ops, monitor, deploy, captures, package):
        module.register(sub)
    for command in sub.choices.values():  # --debug also after the command; absent, the global value stays
        add_debug_arg(command, default=argparse.SUPPRESS)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    steps = [s.strip() for s in args.steps.split(",")] if args.steps else None
    result = run_pipeline(args.params, args.overrides, steps=steps, progress=not args.no_progress,
                          force=args.force)
    print(f"run {result.run_id}: {result.status} -> {result.run_dir}")
    reused = [f"{s['name']} (from {s['reused_from']})" for s in result.steps if s.get("reused_from")]
    if reused:
        print(f"reused unchanged steps: {', '.join(reused)}")
    if result.error:
        print(f"driftgate: error: {result.error}", file=sys.stderr)
        failed = next((s for s in result.steps if s["status"] == "failed"), {})
        if failed.get("html"):
            print(f"driftgate: the failed notebook: {result.run_dir / failed['html']}", file=sys.stderr)
        return 1
    deploy = result.manifest.get("summaries", {}).get("deploy", {})
    reused_deploy = next((s.get("reused_from") for s in result.steps if s["name"] == "deploy"), None)
    if deploy and reused_deploy:
        print(f"release: unchanged since run {reused_deploy} ({deploy.get('decision')} v{deploy.get('version')} "
              "there); driftgate status shows the registry now")
    elif deploy:
        champion = f"v{deploy['champion']}" if deploy.get("champion") else "none yet"
        print(f"release: {deploy.get('decision')} v{deploy.get('version')}; champion: {champion}")
    print(f"index: {result.run_dir.parent.parent / 'index.html'}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    params = load_params(args.params, args.overrides)
    frame = check_params_against_data(params)
    check_model_params(params)
    notebook_dir(params)
    print(f"{args.params}: valid ({len(frame)} rows, {len(params.data.features)} features)")
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    params = load_params(args.params, args.overrides)
    print(write_index(params.outputs_dir))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse and dispatch (see :func:`dispatch`)."""
    return dispatch(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
