"""``driftgate monitor``: one monitoring pass over captured traffic (see :mod:`helpers.monitoring.monitor`)."""

from __future__ import annotations

import argparse

from helpers.core.catalogue import MONITORING_DASHBOARD, MONITORING_DIR
from helpers.core.config import Params, load_params
from helpers.core.errors import ParamsError
from helpers.monitoring.backfill import backfill_counts, run_backfill
from helpers.monitoring.monitor import resolve_window
from helpers.pipeline.retrain import monitor_and_retrain


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
