"""``driftgate run`` and ``driftgate index``: the notebook pipeline into a new run folder, and the
index page of every run.

An unchanged rerun (every step reused) imports neither papermill nor the modelling libraries:
:func:`helpers.pipeline.runner.run_pipeline` loads them only when a step runs.
"""

from __future__ import annotations

import argparse
import sys

from helpers.core.config import load_params
from helpers.pipeline.runner import RunResult, run_pipeline
from helpers.reports.pages import write_index


def run(args: argparse.Namespace) -> int:
    """Run the chosen steps; print the run folder, the reused steps and the release; exit code."""
    steps = [s.strip() for s in args.steps.split(",")] if args.steps else None
    result = run_pipeline(args.params, args.overrides, steps=steps, progress=not args.no_progress,
                          force=args.force)
    print(f"run {result.run_id}: {result.status} -> {result.run_dir}")
    reused = [f"{s['name']} (from {s['reused_from']})" for s in result.steps if s.get("reused_from")]
    if reused:
        print(f"reused unchanged steps: {', '.join(reused)}")
    if result.error:
        _print_failure(result)
        return 1
    _print_release(result)
    print(f"index: {result.run_dir.parent.parent / 'index.html'}")
    return 0


def _print_failure(result: RunResult) -> None:
    print(f"driftgate: error: {result.error}", file=sys.stderr)
    failed = next((s for s in result.steps if s["status"] == "failed"), {})
    if failed.get("html"):
        print(f"driftgate: the failed notebook: {result.run_dir / failed['html']}", file=sys.stderr)


def _print_release(result: RunResult) -> None:
    deploy = result.manifest.get("summaries", {}).get("deploy", {})
    reused_deploy = next((s.get("reused_from") for s in result.steps if s["name"] == "deploy"), None)
    if deploy and reused_deploy:
        print(f"release: unchanged since run {reused_deploy} ({deploy.get('decision')} v{deploy.get('version')} "
              "there); driftgate status shows the registry now")
    elif deploy:
        champion = f"v{deploy['champion']}" if deploy.get("champion") else "none yet"
        print(f"release: {deploy.get('decision')} v{deploy.get('version')}; champion: {champion}")


def index(args: argparse.Namespace) -> int:
    """Rewrite ``outputs/index.html``; print its path."""
    params = load_params(args.params, args.overrides)
    print(write_index(params.outputs_dir))
    return 0
