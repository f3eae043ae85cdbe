"""``driftgate monitor``: one monitoring pass over captured traffic (see :mod:`helpers.monitoring.monitor`)."""

from __future__ import annotations

import argparse

from helpers.cli.common import add_params_args
from helpers.core.catalogue import MONITORING_DASHBOARD, MONITORING_DIR
from helpers.core.config import Params, load_params
from helpers.core.errors import ParamsError
from helpers.monitoring.backfill import backfill_counts, run_backfill
from helpers.monitoring.monitor import resolve_window
from helpers.pipeline.retrain import monitor_and_retrain


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``monitor`` subcommand."""
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
    monitor.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run one monitoring pass and print its verdict."""
    params = load_params(args.params, args.overrides)
    if args.backfill:
        return backfill(args, params)
    window = resolve_window(args.period or params.monitor.period, args.start, args.end)
    result = monitor_and_retrain(params, args.params, args.overrides, window=window, retrain=args.retrain)
    summary = result.summary
    print(f"monitor {summary['model']} v{summary['champion']} {summary['window'][0]} .. {summary['window'][1]}: "
          f"{summary['decision']} ({summary['rows']} rows, {summary['labelled_rows']} with feedback)")
    print(f"reason: {summary['reason']}")
    print(f"report: {result.html}")
    if result.retrain is not None:
        release = summary["retrain"]["release"]
        print(f"retrained: run {result.retrain.run_id} {result.retrain.status}; "
              f"release {release.get('decision')} v{release.get('version')}")
    found = summary.get("drifted") or summary.get("degraded")
    return 1 if args.fail_on_drift and found else 0


def backfill(args: argparse.Namespace, params: Params) -> int:
    """Monitor every window of ``--from``..``--to`` and print one line per window."""
    if args.retrain:
        raise ParamsError("driftgate monitor: --backfill does not retrain; drop --retrain")
    results = run_backfill(params, args.start, args.end, args.period or params.monitor.period)
    for result in results:
        summary = result.summary
        print(f"{summary['window'][0]} .. {summary['window'][1]}: {summary['decision']} "
              f"({summary['rows']} rows, {summary['labelled_rows']} with feedback)")
    counts = ", ".join(f"{count} {decision}" for decision, count in backfill_counts(results).items())
    print(f"backfilled {len(results)} window(s): {counts}")
    print(f"dashboard: {params.outputs_dir / MONITORING_DIR / MONITORING_DASHBOARD}")
    found = any(r.found_problem for r in results)
    return 1 if args.fail_on_drift and found else 0
