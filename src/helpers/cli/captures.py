"""The ``driftgate captures`` commands: maintenance of the capture store.

    driftgate captures compact [--before DATE] [--period hour|day] [--params FILE] [-p ...]
    driftgate captures recover [--params FILE] [-p ...]

``compact`` merges the per-flush files of past periods into one Parquet file per period
(atomically; the current period is never touched). ``recover`` converts a write-ahead log left
by a killed ``sync``-mode service into the store (a service starting on the folder does the same).
The store is ``serve.capture_dir`` (default ``<outputs>/captures``) unless ``--dir`` names one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.cli.common import add_params_args
from helpers.core.config import load_params
from helpers.core.paths import capture_dir_for
from helpers.serving.capture_compaction import PERIODS, compact
from helpers.serving.capture_wal import recover


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``captures compact`` and ``captures recover`` to the ``driftgate`` subcommands."""
    captures = subparsers.add_parser("captures", help="maintain the capture store: compact, recover")
    sub = captures.add_subparsers(dest="action", required=True, metavar="ACTION")

    compact_cmd = sub.add_parser("compact", help="merge the per-flush files of past periods, one file per period")
    compact_cmd.add_argument("--before", metavar="DATE", help="only rows before this date or time (UTC)")
    compact_cmd.add_argument("--period", choices=PERIODS, default="day", help="span of one merged file (default day)")
    _add_common(compact_cmd)
    compact_cmd.set_defaults(func=_cmd_compact)

    recover_cmd = sub.add_parser("recover", help="convert a write-ahead log left by a killed service")
    _add_common(recover_cmd)
    recover_cmd.set_defaults(func=_cmd_recover)


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_params_args(parser, example="serve.capture_dir=/data/captures")
    parser.add_argument("--dir", help="the capture store (default serve.capture_dir from the params)")


def _capture_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else capture_dir_for(load_params(args.params, args.overrides))


def _cmd_compact(args: argparse.Namespace) -> int:
    folder = _capture_dir(args)
    report = compact(folder, before=args.before, period=args.period)
    print(f"driftgate captures: {folder}: {report.summary()}")
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    folder = _capture_dir(args)
    fmt = "parquet" if args.dir else load_params(args.params, args.overrides).serve.capture_format
    done = recover(folder, fmt)
    print(
        f"driftgate captures: {folder}: recovered {done.segments} log segments ({done.requests} requests, "
        f"{done.feedback_rows} feedback rows; {done.torn_bytes} bytes of torn tail dropped)"
    )
    return 0
